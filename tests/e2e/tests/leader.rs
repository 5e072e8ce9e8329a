//! Leader election of `keda operator` with two replicas on the local control plane (issue 14, items 1–2).
//!
//! - Every replica is Ready (`/readyz` 200) once its cache has synced, leader or not; only the leader
//!   serves gRPC. The metrics API server reaches the operators through a stand-in for the operator
//!   Service (a TCP proxy that sends each new connection to the next of the two pods, as kube-proxy may
//!   send it to either Ready endpoint; a pod that does not listen resets the connection). When the leader
//!   is killed, the standby serves the external metric again within the lease duration plus the
//!   detection and start-up time derived from the lease settings below.
//! - Never two leaders: each operator talks to the API server through its own recording proxy (plain
//!   HTTP in front of `kubectl proxy`), which notes the time of every request head and can stop
//!   forwarding (a blocked port). A leader cut off from the API server, or paused with SIGSTOP, makes its
//!   last write before the standby's first write (the Lease take-over), and exits.
//!
//! Timing asserts are orderings of events or generous bounds derived from the lease settings.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use keda_e2e::metrics_stack::{ApiServiceGuard, register_apiservice, write_certs};
use keda_e2e::{
    KedaProcess, MetricServer, apply, client, ensure_crds, free_port, kubectl, kubectl_ok,
    namespace, root, wait_for,
};
use kube::Api;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Shorter than the defaults (15 s / 10 s / 2 s) so a fail-over takes seconds, with the same rules:
/// lease > renew deadline > 1.2 × retry period. The leader's last write is at least
/// `LEASE - RENEW` before a standby may take over.
const LEASE: Duration = Duration::from_secs(12);
const RENEW: Duration = Duration::from_secs(8);
const RETRY: Duration = Duration::from_secs(1);
/// Time to start acting after taking over (reconcile, first poll, gRPC start, the metrics API server's
/// reconnect backoff of at most 2 s, kubectl round trips), generous for a loaded 2-core machine.
const SLACK: Duration = Duration::from_secs(15);
const T: Duration = Duration::from_secs(120);
const LEASE_NAME: &str = "operator.keda.sh";
const APISERVICE: &str = "v1beta1.external.metrics.k8s.io";

fn secs(d: Duration) -> String {
    format!("{}s", d.as_secs())
}

/// `keda operator` with leader election in `ns` (identity `id`), probes on `health_port`; `grpc` =
/// (address, certificate directory) of its metrics service; `kubeconfig` overrides the cluster's.
fn operator(
    ns: &str,
    id: &str,
    health_port: u16,
    grpc: Option<(&str, &Path)>,
    kubeconfig: Option<&str>,
) -> Result<KedaProcess> {
    let (lease, renew, retry) = (secs(LEASE), secs(RENEW), secs(RETRY));
    let health = format!("127.0.0.1:{health_port}");
    let dir;
    let mut args = vec![
        "operator",
        "--leader-elect",
        "--leader-elect-lease-duration",
        &lease,
        "--leader-elect-renew-deadline",
        &renew,
        "--leader-elect-retry-period",
        &retry,
        "--metrics-bind-address",
        "127.0.0.1:0",
        "--health-probe-bind-address",
        &health,
    ];
    if let Some((addr, cert_dir)) = grpc {
        dir = cert_dir.display().to_string();
        args.extend_from_slice(&["--metrics-service-bind-address", addr, "--cert-dir", &dir]);
    } else {
        // No certificates there: no gRPC service (not needed by these tests).
        args.extend_from_slice(&["--metrics-service-bind-address", "127.0.0.1:0"]);
    }
    let mut env = vec![
        ("WATCH_NAMESPACE", ns),
        ("KEDA_CLUSTER_OBJECT_NAMESPACE", ns),
        ("POD_NAME", id),
    ];
    if let Some(k) = kubeconfig {
        env.push(("KUBECONFIG", k));
    }
    KedaProcess::start(&format!("{ns}-{id}"), &args, &env)
}

fn holder(l: &Lease) -> String {
    l.spec
        .as_ref()
        .and_then(|s| s.holder_identity.clone())
        .unwrap_or_default()
}

/// `/readyz` of an operator: `Some(code)`, or `None` without an answer.
async fn readyz(port: u16) -> Option<u16> {
    let url = format!("http://127.0.0.1:{port}/readyz");
    let c = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .ok()?;
    c.get(url).send().await.ok().map(|r| r.status().as_u16())
}

async fn wait_readyz(port: u16, p: &mut KedaProcess) -> Result<()> {
    let start = Instant::now();
    while readyz(port).await != Some(200) {
        if !p.is_running() {
            bail!("{} exited:\n{}", p.name, p.log_tail());
        }
        if start.elapsed() > T {
            bail!("{} never became ready:\n{}", p.name, p.log_tail());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}

fn deployment(name: &str, replicas: i32) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {name}}}\nspec:\n  replicas: {replicas}\n  selector: {{matchLabels: {{app: {name}}}}}\n  template:\n    metadata: {{labels: {{app: {name}}}}}\n    spec:\n      containers: [{{name: app, image: example/app:1}}]\n"
    )
}

/// A ScaledObject on Deployment `name`: metrics-api trigger on `url`, 1 s polling, targetValue 10,
/// activation above 5, no scale-down stabilization; `extra` adds spec lines.
fn scaled_object(name: &str, url: &str, extra: &str) -> String {
    format!(
        "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {{name: {name}}}\nspec:\n  scaleTargetRef: {{name: {name}}}\n  pollingInterval: 1\n  maxReplicaCount: 10\n{extra}  advanced:\n    horizontalPodAutoscalerConfig:\n      behavior:\n        scaleDown: {{stabilizationWindowSeconds: 0}}\n  triggers:\n  - type: metrics-api\n    metadata: {{url: \"{url}\", valueLocation: value, targetValue: \"10\", activationTargetValue: \"5\"}}\n"
    )
}

async fn wait_replicas(c: &kube::Client, ns: &str, name: &str, want: i32) -> Result<()> {
    let api: Api<Deployment> = Api::namespaced(c.clone(), ns);
    wait_for(&api, name, T, |d| {
        d.spec.as_ref().and_then(|s| s.replicas) == Some(want)
    })
    .await
    .with_context(|| format!("waiting for {want} replicas of {ns}/{name}"))?;
    Ok(())
}

// ------------------------------------------------------------------------------------------------
// Item 1: every replica is Ready; the standby serves metrics after the leader is killed.

/// The operator Service as kube-proxy makes it with two Ready endpoints: each new connection goes to the
/// next backend; when that one does not listen, the client's connection is reset.
async fn service_proxy(backends: Vec<String>) -> Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?.to_string();
    let next = Arc::new(AtomicUsize::new(0));
    tokio::spawn(async move {
        loop {
            let Ok((mut client, _)) = listener.accept().await else {
                continue;
            };
            let backend = backends[next.fetch_add(1, Ordering::SeqCst) % backends.len()].clone();
            tokio::spawn(async move {
                match tokio::net::TcpStream::connect(&backend).await {
                    Ok(mut server) => {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                    Err(_) => {
                        let _ = client.set_zero_linger();
                    }
                }
            });
        }
    });
    Ok(addr)
}

/// Registers the metrics API server on `port` as the cluster's external metrics API.
fn register(ns: &str, port: u16, ca_pem: &str) -> Result<ApiServiceGuard> {
    let guard = ApiServiceGuard::acquire()?;
    register_apiservice(ns, port, ca_pem)?;
    kubectl_ok(
        &[
            "wait",
            "--for=condition=Available",
            "--timeout=120s",
            &format!("apiservice/{APISERVICE}"),
        ],
        None,
    )?;
    Ok(guard)
}

/// The external metric as the HPA controller fetches it: its value, or the error.
fn fetch(ns: &str, so: &str) -> Result<String, String> {
    let path = format!(
        "/apis/external.metrics.k8s.io/v1beta1/namespaces/{ns}/s0-metric-api-value?labelSelector=scaledobject.keda.sh%2Fname%3D{so}"
    );
    let out = kubectl(&["get", "--raw", &path], None).map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_owned());
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
    v["items"][0]["value"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("no value in {v}"))
}

async fn wait_fetch(ns: &str, so: &str, want: &str) -> Result<()> {
    let start = Instant::now();
    let mut last = String::new();
    while start.elapsed() < T {
        match fetch(ns, so) {
            Ok(v) if v == want => return Ok(()),
            Ok(v) => last = v,
            Err(e) => last = e,
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    bail!("the external metric never became {want}; last: {last}")
}

struct Cleanup(PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_replicas_are_ready_and_the_standby_serves_metrics_after_the_leader_is_killed()
-> Result<()> {
    ensure_crds().await?;
    let c = client().await?;
    let ns = namespace(&c, "leader-ready").await?;
    let dir = root().join("target/keda-e2e-certs").join(&ns);
    let _cleanup = Cleanup(dir.clone());
    let ca_pem = write_certs(&dir, &ns)?;
    let grpc_a = format!("127.0.0.1:{}", free_port("127.0.0.1")?);
    let grpc_b = format!("127.0.0.1:{}", free_port("127.0.0.1")?);
    let (health_a, health_b) = (free_port("127.0.0.1")?, free_port("127.0.0.1")?);
    let leases: Api<Lease> = Api::namespaced(c.clone(), &ns);

    let mut a = operator(&ns, "op-a", health_a, Some((&grpc_a, &dir)), None)?;
    wait_for(&leases, LEASE_NAME, T, |l| holder(l) == "op-a").await?;
    let mut b = operator(&ns, "op-b", health_b, Some((&grpc_b, &dir)), None)?;

    // Both Ready, the standby included, while op-a holds the Lease.
    wait_readyz(health_a, &mut a).await?;
    wait_readyz(health_b, &mut b).await?;
    assert_eq!(holder(&leases.get(LEASE_NAME).await?), "op-a");
    // Only the leader serves gRPC (as upstream: its server is a leader-election runnable).
    assert!(
        tokio::net::TcpStream::connect(&grpc_b).await.is_err(),
        "the standby must not serve gRPC"
    );

    let service = service_proxy(vec![grpc_a.clone(), grpc_b.clone()]).await?;
    let https_port = free_port("0.0.0.0")?;
    let mut apiserver = KedaProcess::start(
        &format!("{ns}-metrics-apiserver"),
        &[
            "metrics-apiserver",
            "--secure-port",
            &https_port.to_string(),
            "--bind-address",
            "0.0.0.0",
            "--cert-dir",
            &dir.display().to_string(),
            "--client-ca-file",
            &dir.join("ca.crt").display().to_string(),
            "--metrics-service-address",
            &service,
            "--metrics-service-grpc-authority",
            &format!("keda-operator.{ns}.svc.cluster.local"),
            "--metrics-bind-address",
            "127.0.0.1:0",
        ],
        &[("POD_NAMESPACE", &ns)],
    )?;
    let _registered = register(&ns, https_port, &ca_pem)?;

    let server = MetricServer::start(5.0).await?;
    apply(&ns, &deployment("example-app", 1))?;
    apply(
        &ns,
        &scaled_object("example-app", &server.url, "  minReplicaCount: 1\n"),
    )?;
    wait_fetch(&ns, "example-app", "5").await?;
    // Through the Service stand-in, fetches keep working while both replicas are endpoints.
    for _ in 0..5 {
        assert_eq!(fetch(&ns, "example-app").as_deref(), Ok("5"));
    }

    // A crash: no release. The new value can only come from op-b's own scale loop.
    a.kill();
    let killed = Instant::now();
    server.set(Some(7.0));
    let mut first_failure = None;
    let mut last_error = String::new();
    let served = loop {
        match fetch(&ns, "example-app") {
            Ok(v) if v == "7" => break killed.elapsed(),
            Ok(_) => {}
            Err(e) => {
                first_failure.get_or_insert(killed.elapsed());
                last_error = e;
            }
        }
        if killed.elapsed() > T {
            bail!(
                "op-b never served the metric; last: {last_error}\n--- op-b ---\n{}\n--- metrics-apiserver ---\n{}",
                b.log_tail(),
                apiserver.log_tail()
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let failing = first_failure.map(|f| served.saturating_sub(f));
    eprintln!(
        "leader killed: fetches failed from {first_failure:?} for {failing:?}; op-b served the new value {served:?} after the kill (lease {LEASE:?}, retry {RETRY:?})"
    );
    // op-b takes over once it has seen op-a's last renewal unchanged for LEASE: at most LEASE plus one
    // (jittered) retry period after the kill, then it starts serving.
    let bound = LEASE + RETRY.mul_f64(2.4) + SLACK;
    assert!(
        served <= bound,
        "op-b served {served:?} after the kill (bound {bound:?})"
    );
    assert_eq!(holder(&leases.get(LEASE_NAME).await?), "op-b");
    assert_eq!(readyz(health_b).await, Some(200));

    // The real HPA controller scales from op-b's metric: ceil(35 / 10) = 4.
    server.set(Some(35.0));
    wait_replicas(&c, &ns, "example-app", 4).await?;
    assert!(b.is_running(), "{}", b.log_tail());
    assert!(apiserver.is_running(), "{}", apiserver.log_tail());
    Ok(())
}

// ------------------------------------------------------------------------------------------------
// Item 2: never two leaders.

/// `kubectl proxy` on a free loopback port (the cluster's admin credentials); killed on drop.
struct KubectlProxy {
    child: std::process::Child,
    addr: String,
}

impl KubectlProxy {
    fn start() -> Result<KubectlProxy> {
        use std::io::BufRead;
        let mut child = std::process::Command::new("kubectl")
            .args(["proxy", "--address=127.0.0.1", "--port=0"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .context("starting kubectl proxy")?;
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().context("kubectl proxy stdout")?)
            .read_line(&mut line)?;
        // "Starting to serve on 127.0.0.1:41234"
        let addr = line
            .trim()
            .rsplit(' ')
            .next()
            .filter(|a| a.contains(':'))
            .with_context(|| format!("kubectl proxy said {line:?}"))?
            .to_owned();
        Ok(KubectlProxy { child, addr })
    }
}

impl Drop for KubectlProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One request head seen by an [`ApiProxy`].
#[derive(Clone, Debug)]
struct Seen {
    at: Instant,
    method: String,
    path: String,
}

impl Seen {
    fn is_write(&self) -> bool {
        !matches!(self.method.as_str(), "GET" | "HEAD" | "OPTIONS")
    }
}

/// The request heads in a client → server HTTP/1.1 byte stream (bodies skipped by Content-Length, which
/// is how kube-rs sends them).
#[derive(Default)]
struct Heads {
    pending: Vec<u8>,
    body_left: usize,
}

impl Heads {
    fn feed(&mut self, data: &[u8], out: &mut Vec<(String, String)>) -> Result<(), String> {
        self.pending.extend_from_slice(data);
        loop {
            if self.body_left > 0 {
                let n = self.body_left.min(self.pending.len());
                self.pending.drain(..n);
                self.body_left -= n;
                if self.body_left > 0 {
                    return Ok(());
                }
            }
            let Some(end) = self.pending.windows(4).position(|w| w == b"\r\n\r\n") else {
                return Ok(());
            };
            let head = String::from_utf8_lossy(&self.pending[..end]).into_owned();
            self.pending.drain(..end + 4);
            let mut lines = head.split("\r\n");
            let mut first = lines.next().unwrap_or_default().split_whitespace();
            let method = first.next().unwrap_or_default().to_owned();
            let path = first.next().unwrap_or_default().to_owned();
            for line in lines {
                let Some((name, value)) = line.split_once(':') else {
                    continue;
                };
                match name.trim().to_ascii_lowercase().as_str() {
                    "content-length" => self.body_left = value.trim().parse().unwrap_or(0),
                    "transfer-encoding" => {
                        return Err(format!("chunked request body ({method} {path})"));
                    }
                    _ => {}
                }
            }
            out.push((method, path));
        }
    }
}

/// A plain-HTTP proxy in front of `kubectl proxy` for one operator: records every request head with the
/// time it arrived, and when blocked forwards nothing in either direction (requests are still recorded:
/// an attempted write counts).
struct ApiProxy {
    url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    broken: Arc<Mutex<Option<String>>>,
    blocked: Arc<AtomicBool>,
}

impl ApiProxy {
    async fn start(upstream: String) -> Result<ApiProxy> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let broken: Arc<Mutex<Option<String>>> = Arc::default();
        let blocked = Arc::new(AtomicBool::new(false));
        let (s, br, bl) = (seen.clone(), broken.clone(), blocked.clone());
        tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                let (seen, broken, blocked) = (s.clone(), br.clone(), bl.clone());
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    let server = if blocked.load(Ordering::SeqCst) {
                        None
                    } else {
                        tokio::net::TcpStream::connect(&upstream).await.ok()
                    };
                    let (mut cr, mut cw) = client.into_split();
                    let mut sw = match server {
                        Some(server) => {
                            let (mut sr, sw) = server.into_split();
                            let blocked = blocked.clone();
                            tokio::spawn(async move {
                                let mut buf = vec![0u8; 16 * 1024];
                                loop {
                                    let n = match sr.read(&mut buf).await {
                                        Ok(0) | Err(_) => break,
                                        Ok(n) => n,
                                    };
                                    if blocked.load(Ordering::SeqCst) {
                                        continue;
                                    }
                                    if cw.write_all(&buf[..n]).await.is_err() {
                                        break;
                                    }
                                }
                                let _ = cw.shutdown().await;
                            });
                            Some(sw)
                        }
                        None => None,
                    };
                    let mut heads = Heads::default();
                    let mut buf = vec![0u8; 16 * 1024];
                    loop {
                        let n = match cr.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        let at = Instant::now();
                        let mut found = Vec::new();
                        if let Err(e) = heads.feed(&buf[..n], &mut found)
                            && let Ok(mut b) = broken.lock()
                        {
                            b.get_or_insert(e);
                        }
                        if let Ok(mut s) = seen.lock() {
                            s.extend(found.into_iter().map(|(method, path)| Seen {
                                at,
                                method,
                                path,
                            }));
                        }
                        if blocked.load(Ordering::SeqCst) {
                            continue;
                        }
                        if let Some(w) = sw.as_mut()
                            && w.write_all(&buf[..n]).await.is_err()
                        {
                            break;
                        }
                    }
                    if let Some(mut w) = sw {
                        let _ = w.shutdown().await;
                    }
                });
            }
        });
        Ok(ApiProxy {
            url,
            seen,
            broken,
            blocked,
        })
    }

    fn block(&self) {
        self.blocked.store(true, Ordering::SeqCst);
    }

    fn writes(&self) -> Result<Vec<Seen>> {
        if let Some(e) = self.broken.lock().ok().and_then(|b| b.clone()) {
            bail!("the recording proxy lost track of requests: {e}");
        }
        Ok(self
            .seen
            .lock()
            .map(|s| s.iter().filter(|r| r.is_write()).cloned().collect())
            .unwrap_or_default())
    }

    /// A kubeconfig whose server is this proxy.
    fn kubeconfig(&self, dir: &Path, name: &str) -> Result<String> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(format!("{name}.kubeconfig"));
        std::fs::write(
            &path,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: p\n  cluster: {{server: \"{}\"}}\nusers:\n- name: p\n  user: {{}}\ncontexts:\n- name: p\n  context: {{cluster: p, user: p}}\ncurrent-context: p\n",
                self.url
            ),
        )?;
        Ok(path.display().to_string())
    }
}

/// Two operators, each behind its own [`ApiProxy`]; op-a leads and has scaled Deployment `w` to 1
/// (active metric), op-b stands by.
struct Pair {
    ns: String,
    c: kube::Client,
    leases: Api<Lease>,
    server: MetricServer,
    a: KedaProcess,
    b: KedaProcess,
    proxy_a: ApiProxy,
    proxy_b: ApiProxy,
    _kubectl_proxy: KubectlProxy,
    _cleanup: Cleanup,
}

impl Pair {
    async fn start(prefix: &str) -> Result<Pair> {
        ensure_crds().await?;
        let c = client().await?;
        let ns = namespace(&c, prefix).await?;
        let dir = root().join("target/keda-e2e-kubeconfigs").join(&ns);
        let cleanup = Cleanup(dir.clone());
        let kubectl_proxy = KubectlProxy::start()?;
        let proxy_a = ApiProxy::start(kubectl_proxy.addr.clone()).await?;
        let proxy_b = ApiProxy::start(kubectl_proxy.addr.clone()).await?;
        let leases: Api<Lease> = Api::namespaced(c.clone(), &ns);
        let mut a = operator(
            &ns,
            "op-a",
            free_port("127.0.0.1")?,
            None,
            Some(&proxy_a.kubeconfig(&dir, "op-a")?),
        )?;
        wait_for(&leases, LEASE_NAME, T, |l| holder(l) == "op-a")
            .await
            .with_context(|| a.log_tail())?;
        let b = operator(
            &ns,
            "op-b",
            free_port("127.0.0.1")?,
            None,
            Some(&proxy_b.kubeconfig(&dir, "op-b")?),
        )?;
        let server = MetricServer::start(9.0).await?;
        apply(&ns, &deployment("w", 0))?;
        apply(
            &ns,
            &scaled_object("w", &server.url, "  cooldownPeriod: 1\n"),
        )?;
        wait_replicas(&c, &ns, "w", 1).await?;
        assert!(a.is_running(), "{}", a.log_tail());
        Ok(Pair {
            ns,
            c,
            leases,
            server,
            a,
            b,
            proxy_a,
            proxy_b,
            _kubectl_proxy: kubectl_proxy,
            _cleanup: cleanup,
        })
    }

    /// Waits until op-b holds the Lease; returns op-b's first write (the take-over), after checking that
    /// the standby wrote nothing before it.
    async fn wait_takeover(&mut self, since: Instant) -> Result<Seen> {
        let start = Instant::now();
        loop {
            if holder(&self.leases.get(LEASE_NAME).await?) == "op-b" {
                break;
            }
            if start.elapsed() > LEASE + RENEW + T {
                bail!(
                    "op-b never took over\n--- op-b ---\n{}\n--- op-a ---\n{}",
                    self.b.log_tail(),
                    self.a.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let writes = self.proxy_b.writes()?;
        let first = writes.first().context("op-b took over without a write")?;
        assert!(
            first.path.contains("/leases/") && first.at > since,
            "the standby's first write must be the Lease take-over, after op-a was cut off: {first:?}"
        );
        Ok(first.clone())
    }

    /// op-b acts as leader: the metric goes to 0 and it scales `w` to 0 after the 1 s cooldown.
    async fn check_b_acts(&mut self) -> Result<()> {
        self.server.set(Some(0.0));
        wait_replicas(&self.c, &self.ns, "w", 0).await?;
        assert!(self.b.is_running(), "{}", self.b.log_tail());
        Ok(())
    }
}

/// Every write op-a sent reached its proxy before op-b's first write.
fn assert_no_overlap(a_writes: &[Seen], b_first: &Seen) {
    let last = a_writes.last().expect("op-a wrote while it led");
    assert!(
        last.at < b_first.at,
        "op-a wrote {last:?} at or after op-b's take-over {b_first:?}"
    );
    eprintln!(
        "op-a's last write ({} {}) was {:?} before op-b's first ({} {})",
        last.method,
        last.path,
        b_first.at - last.at,
        b_first.method,
        b_first.path
    );
}

/// Waits for `p` to exit; returns when it was seen gone.
async fn wait_exit(p: &mut KedaProcess, within: Duration) -> Result<Instant> {
    let start = Instant::now();
    while p.is_running() {
        if start.elapsed() > within {
            bail!("{} still runs {within:?} later:\n{}", p.name, p.log_tail());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(Instant::now())
}

/// The API server stops answering op-a (its port is blocked) for longer than the renew deadline: op-a's
/// renewals time out, it stops writing and exits before op-b takes over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_cut_off_from_the_api_server_stops_before_the_standby_takes_over() -> Result<()> {
    let mut p = Pair::start("leader-cut").await?;
    p.proxy_a.block();
    let blocked = Instant::now();
    let exited = wait_exit(&mut p.a, RENEW + SLACK).await?;
    eprintln!(
        "op-a exited {:?} after it was cut off (renew deadline {RENEW:?})",
        exited - blocked
    );
    let b_first = p.wait_takeover(blocked).await?;
    assert!(
        exited < b_first.at,
        "op-a was still running when op-b took over"
    );
    let a_writes = p.proxy_a.writes()?;
    assert_no_overlap(&a_writes, &b_first);
    // Cut off, op-a went on trying to renew only until its renew deadline.
    let last = a_writes.last().map(|w| w.at).unwrap_or(blocked);
    assert!(
        last <= blocked + RENEW,
        "op-a wrote {:?} after it was cut off",
        last - blocked
    );
    assert!(
        std::fs::read_to_string(&p.a.log)?.contains("could not renew the leader Lease"),
        "{}",
        p.a.log_tail()
    );
    p.check_b_acts().await
}

/// op-a is paused (SIGSTOP) past the lease duration, op-b takes over and acts, then op-a resumes: its
/// loops and its renewal wake up with work due, and nothing reaches the API server; op-a exits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_leader_writes_nothing_when_it_resumes() -> Result<()> {
    let mut p = Pair::start("leader-stop").await?;
    let pid = p.a.pid().to_string();
    signal("-STOP", &pid)?;
    let stopped = Instant::now();
    let b_first = p.wait_takeover(stopped).await;
    let b_first = match b_first {
        Ok(b) => b,
        Err(e) => {
            let _ = signal("-CONT", &pid);
            return Err(e);
        }
    };
    // While op-a sleeps, op-b acts: the metric goes to 0 and it scales `w` to 0. op-a's loop for `w`
    // now has a scale-down due as well.
    let acted = p.check_b_acts().await;
    signal("-CONT", &pid)?;
    let resumed = Instant::now();
    acted?;
    wait_exit(&mut p.a, RETRY + SLACK).await?;
    let a_writes = p.proxy_a.writes()?;
    let after: Vec<&Seen> = a_writes.iter().filter(|w| w.at >= resumed).collect();
    assert!(
        after.is_empty(),
        "op-a wrote after it resumed ({:?} after the pause): {after:?}",
        resumed - stopped
    );
    assert_no_overlap(&a_writes, &b_first);
    // Deployment `w` stays where op-b put it.
    tokio::time::sleep(RETRY * 2).await;
    let w: Api<Deployment> = Api::namespaced(p.c.clone(), &p.ns);
    assert_eq!(
        w.get("w").await?.spec.and_then(|s| s.replicas),
        Some(0),
        "op-a must not have scaled w"
    );
    Ok(())
}

/// Sends a signal with `kill` (SIGSTOP/SIGCONT to a test's own child).
fn signal(signal: &str, pid: &str) -> Result<()> {
    let status = std::process::Command::new("kill")
        .args([signal, pid])
        .status()?;
    if !status.success() {
        bail!("kill {signal} {pid} failed");
    }
    Ok(())
}
