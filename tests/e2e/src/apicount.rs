//! Counting the API requests of one keda process: a plain-HTTP TCP proxy per process in front of
//! `kubectl proxy` (which forwards to the kube-apiserver with the cluster's admin credentials), whose
//! kubeconfig the process is started with. The proxy forwards bytes unchanged and reads only the HTTP/1.1
//! request heads, classifying each request exactly as the kube-apiserver labels it in
//! `apiserver_request_total` (GET/LIST/WATCH by path and `watch=`, POST, PUT, PATCH, APPLY by content type,
//! DELETE/DELETECOLLECTION), by `resource[.group][/subresource]`. Used by the operator bench and by e2e
//! tests that assert what a process does not send.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Requests counted per (verb label, resource key).
pub type Counts = BTreeMap<(String, String), f64>;

/// `resource[.group][/subresource]`, as kubectl names resources; `(non-resource)` for discovery, `/version`….
pub fn resource_key(group: &str, resource: &str, sub: &str) -> String {
    if resource.is_empty() {
        return "(non-resource)".to_owned();
    }
    let mut key = resource.to_owned();
    if !group.is_empty() {
        key = format!("{key}.{group}");
    }
    if !sub.is_empty() {
        key = format!("{key}/{sub}");
    }
    key
}

/// The verb and resource of one request, as the kube-apiserver's request-info resolver labels it.
pub fn classify(method: &str, target: &str, content_type: &str) -> (String, String) {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let (group, rest) = match parts.as_slice() {
        ["api", _version, rest @ ..] => ("", rest),
        ["apis", group, _version, rest @ ..] => (*group, rest),
        _ => ("", &[][..]),
    };
    // Namespaced: namespaces/<ns>/<resource>/…; the Namespace object itself: namespaces/<name>[/status|finalize].
    let rest = match rest {
        ["namespaces", _ns, next, tail @ ..] if !matches!(*next, "status" | "finalize") => {
            let mut v = vec![*next];
            v.extend_from_slice(tail);
            v
        }
        other => other.to_vec(),
    };
    let resource = rest.first().copied().unwrap_or("");
    let named = rest.len() >= 2;
    let sub = rest.get(2).copied().unwrap_or("");
    let watch = query
        .split('&')
        .any(|kv| kv == "watch=true" || kv == "watch=1");
    let verb = match method {
        "GET" | "HEAD" if resource.is_empty() => "GET",
        "GET" | "HEAD" if watch => "WATCH",
        "GET" | "HEAD" if named => "GET",
        "GET" | "HEAD" => "LIST",
        "PATCH" if content_type.starts_with("application/apply-patch") => "APPLY",
        "DELETE" if !named && !resource.is_empty() => "DELETECOLLECTION",
        other => other,
    };
    (verb.to_owned(), resource_key(group, resource, sub))
}

/// Finds the HTTP/1.1 request heads in a client → server byte stream (bodies skipped by Content-Length or
/// chunked encoding).
#[derive(Default)]
pub struct RequestScanner {
    buf: Vec<u8>,
    state: ScanState,
}

#[derive(Default)]
enum ScanState {
    #[default]
    Head,
    Body(usize),
    ChunkSize,
    ChunkData(usize),
    Trailer,
}

impl RequestScanner {
    /// Feeds bytes; returns the requests whose heads completed.
    pub fn feed(&mut self, data: &[u8]) -> Vec<(String, String)> {
        let mut found = Vec::new();
        self.buf.extend_from_slice(data);
        loop {
            match self.state {
                ScanState::Head => {
                    let Some(end) = find(&self.buf, b"\r\n\r\n") else {
                        break;
                    };
                    let head = String::from_utf8_lossy(&self.buf[..end]).into_owned();
                    self.buf.drain(..end + 4);
                    let mut lines = head.split("\r\n");
                    let mut first = lines.next().unwrap_or("").split_whitespace();
                    let (method, target) = (first.next().unwrap_or(""), first.next().unwrap_or(""));
                    let (mut length, mut chunked, mut content_type) =
                        (0usize, false, String::new());
                    for line in lines {
                        let Some((name, value)) = line.split_once(':') else {
                            continue;
                        };
                        let value = value.trim();
                        match name.trim().to_ascii_lowercase().as_str() {
                            "content-length" => length = value.parse().unwrap_or(0),
                            "transfer-encoding" => {
                                chunked = value.to_ascii_lowercase().contains("chunked")
                            }
                            "content-type" => content_type = value.to_ascii_lowercase(),
                            _ => {}
                        }
                    }
                    if !method.is_empty() {
                        found.push(classify(method, target, &content_type));
                    }
                    self.state = if chunked {
                        ScanState::ChunkSize
                    } else if length > 0 {
                        ScanState::Body(length)
                    } else {
                        ScanState::Head
                    };
                }
                ScanState::Body(n) | ScanState::ChunkData(n) => {
                    let take = n.min(self.buf.len());
                    self.buf.drain(..take);
                    let left = n - take;
                    let chunk = matches!(self.state, ScanState::ChunkData(_));
                    self.state = match (left, chunk) {
                        (0, false) => ScanState::Head,
                        (0, true) => ScanState::ChunkSize,
                        (left, false) => ScanState::Body(left),
                        (left, true) => ScanState::ChunkData(left),
                    };
                    if left > 0 {
                        break;
                    }
                }
                ScanState::ChunkSize => {
                    let Some(end) = find(&self.buf, b"\r\n") else {
                        break;
                    };
                    let line = String::from_utf8_lossy(&self.buf[..end]).into_owned();
                    self.buf.drain(..end + 2);
                    let size =
                        usize::from_str_radix(line.split(';').next().unwrap_or("").trim(), 16)
                            .unwrap_or(0);
                    self.state = if size == 0 {
                        ScanState::Trailer
                    } else {
                        ScanState::ChunkData(size + 2)
                    };
                }
                ScanState::Trailer => {
                    let Some(end) = find(&self.buf, b"\r\n") else {
                        break;
                    };
                    self.buf.drain(..end + 2);
                    if end == 0 {
                        self.state = ScanState::Head;
                    }
                }
            }
        }
        found
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Requests one keda process sent, counted by the proxy in front of it.
#[derive(Default)]
pub struct Tally(Mutex<Counts>);

impl Tally {
    pub fn add(&self, key: (String, String)) {
        if let Ok(mut m) = self.0.lock() {
            *m.entry(key).or_insert(0.0) += 1.0;
        }
    }

    pub fn snapshot(&self) -> Counts {
        self.0.lock().map(|m| m.clone()).unwrap_or_default()
    }
}

/// A plain-HTTP listener on loopback that forwards every connection to `upstream` byte for byte and counts
/// the requests it sees in `tally`.
pub async fn counting_proxy(upstream: std::net::SocketAddr, tally: Arc<Tally>) -> Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let Ok((client, _)) = listener.accept().await else {
                continue;
            };
            let tally = tally.clone();
            tokio::spawn(async move {
                let Ok(server) = tokio::net::TcpStream::connect(upstream).await else {
                    return;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                let (mut cr, mut cw) = client.into_split();
                let (mut sr, mut sw) = server.into_split();
                let down = tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut sr, &mut cw).await;
                    let _ = cw.shutdown().await;
                });
                let mut scanner = RequestScanner::default();
                let mut buf = vec![0u8; 16 * 1024];
                loop {
                    let n = match cr.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    for key in scanner.feed(&buf[..n]) {
                        tally.add(key);
                    }
                    if sw.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
                let _ = sw.shutdown().await;
                let _ = down.await;
            });
        }
    });
    Ok(format!("http://{addr}"))
}

/// `kubectl proxy` on a free loopback port (admin credentials of the cluster's KUBECONFIG); killed on drop.
pub struct KubectlProxy {
    child: std::process::Child,
    pub addr: std::net::SocketAddr,
}

impl KubectlProxy {
    pub fn start() -> Result<KubectlProxy> {
        use std::io::BufRead;
        let mut child = std::process::Command::new("kubectl")
            .args(["proxy", "--address=127.0.0.1", "--port=0"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            // It logs the watches its clients cancel on exit ("context canceled").
            .stderr(std::process::Stdio::null())
            .spawn()
            .context("starting kubectl proxy (is the cluster's bin dir on PATH?)")?;
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().context("kubectl proxy stdout")?)
            .read_line(&mut line)?;
        // "Starting to serve on 127.0.0.1:41234"
        let addr = line
            .trim()
            .rsplit(' ')
            .next()
            .and_then(|a| a.parse().ok())
            .with_context(|| format!("kubectl proxy said {line:?}"))?;
        Ok(KubectlProxy { child, addr })
    }
}

impl Drop for KubectlProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A kubeconfig for a keda process whose server is `server` (a counting proxy); returns its path.
pub fn proxied_kubeconfig(dir: &std::path::Path, name: &str, server: &str) -> Result<String> {
    let path = dir.join(format!("{name}.kubeconfig"));
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: bench\n  cluster: {{server: \"{server}\"}}\nusers:\n- name: bench\n  user: {{}}\ncontexts:\n- name: bench\n  context: {{cluster: bench, user: bench}}\ncurrent-context: bench\n"
        ),
    )?;
    Ok(path.display().to_string())
}

impl Tally {
    /// Requests counted for `verb` (a kube-apiserver label: `LIST`, `PATCH`, …) on `resource`
    /// ([`resource_key`] form).
    pub fn count(&self, verb: &str, resource: &str) -> u64 {
        self.snapshot()
            .get(&(verb.to_owned(), resource.to_owned()))
            .copied()
            .unwrap_or(0.0) as u64
    }
}

/// A `kubectl proxy` and a counting proxy in front of it: start a keda process with
/// `KUBECONFIG=`[`ApiCounter::kubeconfig`] and read what it sent from [`ApiCounter::tally`].
pub struct ApiCounter {
    _kubectl_proxy: KubectlProxy,
    pub tally: Arc<Tally>,
    pub kubeconfig: String,
}

impl ApiCounter {
    /// `dir` holds the kubeconfig (`<name>.kubeconfig`).
    pub async fn start(dir: &std::path::Path, name: &str) -> Result<ApiCounter> {
        std::fs::create_dir_all(dir)?;
        let kubectl_proxy = KubectlProxy::start()?;
        let tally = Arc::new(Tally::default());
        let server = counting_proxy(kubectl_proxy.addr, tally.clone()).await?;
        let kubeconfig = proxied_kubeconfig(dir, name, &server)?;
        Ok(ApiCounter {
            _kubectl_proxy: kubectl_proxy,
            tally,
            kubeconfig,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_classified_as_the_apiserver_labels_them() {
        let cases = [
            (
                "GET",
                "/api/v1/namespaces/a/services",
                "",
                ("LIST", "services"),
            ),
            (
                "GET",
                "/api/v1/services?watch=true&resourceVersion=1",
                "",
                ("WATCH", "services"),
            ),
            (
                "GET",
                "/api/v1/namespaces/a/services/web",
                "",
                ("GET", "services"),
            ),
            (
                "PATCH",
                "/apis/keda.sh/v1alpha1/namespaces/a/triggerauthentications/t/status",
                "application/merge-patch+json",
                ("PATCH", "triggerauthentications.keda.sh/status"),
            ),
            (
                "PATCH",
                "/apis/keda.sh/v1alpha1/namespaces/a/scaledobjects/s/status",
                "application/apply-patch+yaml",
                ("APPLY", "scaledobjects.keda.sh/status"),
            ),
            ("GET", "/version", "", ("GET", "(non-resource)")),
        ];
        for (method, target, ct, (verb, resource)) in cases {
            assert_eq!(
                classify(method, target, ct),
                (verb.to_owned(), resource.to_owned()),
                "{method} {target}"
            );
        }
        let mut scanner = RequestScanner::default();
        let found = scanner.feed(
            b"PATCH /api/v1/namespaces/a/services/s HTTP/1.1\r\ncontent-length: 2\r\n\r\n{}GET /api/v1/pods HTTP/1.1\r\n\r\n",
        );
        assert_eq!(
            found,
            vec![
                ("PATCH".to_owned(), "services".to_owned()),
                ("LIST".to_owned(), "pods".to_owned())
            ]
        );
    }
}
