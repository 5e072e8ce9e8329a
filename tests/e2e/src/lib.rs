//! Support for end-to-end tests on the local control plane (`cargo xtask cluster up`).
//!
//! Tests run inside the cluster's network namespace (`cargo xtask e2e` does that) with `KUBECONFIG` set and
//! the cluster's `kubectl` on PATH. Each test gets a fresh namespace; the cluster itself is shared.

pub mod apicount;
pub mod bench;
pub mod load;
pub mod metrics_stack;
pub mod versus;
pub mod webhooks;

use anyhow::{Context, Result, bail};
use k8s_openapi::api::core::v1::{Event, Namespace};
use kube::api::{ListParams, PostParams};
use kube::{Api, Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt::Debug;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::OnceCell;

/// A client for the local cluster; fails with a clear hint when no cluster is configured.
pub async fn client() -> Result<Client> {
    if std::env::var_os("KUBECONFIG").is_none() {
        bail!(
            "KUBECONFIG is not set: run e2e tests with `cargo xtask e2e` (it starts the local control plane)"
        );
    }
    Client::try_default()
        .await
        .context("connecting to the local control plane")
}

/// The workspace root, for fixtures and the built `keda` binary.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A fresh namespace named `<prefix>-<pid>-<n>`.
pub async fn namespace(client: &Client, prefix: &str) -> Result<String> {
    static N: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    let ns: Namespace = serde_json::from_value(serde_json::json!({"metadata": {"name": name}}))?;
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .with_context(|| format!("creating namespace {name}"))?;
    // The ServiceAccount admission plugin refuses pods until the namespace's default ServiceAccount exists.
    let sa: Api<k8s_openapi::api::core::v1::ServiceAccount> =
        Api::namespaced(client.clone(), &name);
    let deadline = Instant::now() + Duration::from_secs(30);
    while sa.get_opt("default").await?.is_none() {
        if Instant::now() > deadline {
            bail!(
                "namespace {name}: default ServiceAccount never appeared (is kube-controller-manager running?)"
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(name)
}

/// Runs kubectl with the given arguments (stdin from `input`), returning its output whatever the status.
pub fn kubectl(args: &[&str], input: Option<&str>) -> Result<Output> {
    use std::io::Write;
    let mut cmd = Command::new("kubectl");
    cmd.args(args)
        .stdin(if input.is_some() {
            std::process::Stdio::piped()
        } else {
            std::process::Stdio::null()
        })
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd
        .spawn()
        .context("starting kubectl (is the cluster's bin dir on PATH?)")?;
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin.write_all(text.as_bytes())?;
    }
    Ok(child.wait_with_output()?)
}

/// Like [`kubectl`], but fails (with stderr) unless kubectl succeeds; returns stdout.
pub fn kubectl_ok(args: &[&str], input: Option<&str>) -> Result<String> {
    let out = kubectl(args, input)?;
    if !out.status.success() {
        bail!(
            "kubectl {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Installs the keda.sh CRDs (once per test process) and waits until they are Established.
pub async fn ensure_crds() -> Result<()> {
    static DONE: OnceCell<()> = OnceCell::const_new();
    DONE.get_or_try_init(|| async {
        let yaml = keda_api::crds_yaml()?;
        // Server-side apply: the ScaledJob CRD is too large for the last-applied annotation of a client-side apply.
        kubectl_ok(
            &["apply", "--server-side", "--force-conflicts", "-f", "-"],
            Some(&yaml),
        )?;
        // Poll the CRDs' Established condition through the API: `kubectl wait` fails outright when it reads
        // a CRD whose status has no conditions yet.
        use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
        let crds: Api<CustomResourceDefinition> = Api::all(client().await?);
        let deadline = Instant::now() + Duration::from_secs(60);
        for name in [
            "scaledobjects.keda.sh",
            "scaledjobs.keda.sh",
            "triggerauthentications.keda.sh",
            "clustertriggerauthentications.keda.sh",
        ] {
            loop {
                let established = crds.get_opt(name).await?.and_then(|c| c.status).and_then(|s| s.conditions).is_some_and(
                    |c| c.iter().any(|c| c.type_ == "Established" && c.status == "True"),
                );
                if established {
                    break;
                }
                if Instant::now() > deadline {
                    bail!("CRD {name} not Established within 60 s");
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        Ok::<(), anyhow::Error>(())
    })
    .await?;
    Ok(())
}

/// Polls `name` until `cond` holds. On timeout, fails with the object as YAML, its conditions and the
/// Events about it, so a failing test explains itself.
pub async fn wait_for<K>(
    api: &Api<K>,
    name: &str,
    timeout: Duration,
    cond: impl Fn(&K) -> bool,
) -> Result<K>
where
    K: Resource + Clone + Debug + DeserializeOwned + Serialize,
    K::DynamicType: Default,
{
    let deadline = Instant::now() + timeout;
    let mut last = None;
    loop {
        if let Some(obj) = api.get_opt(name).await? {
            if cond(&obj) {
                return Ok(obj);
            }
            last = Some(obj);
        }
        if Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let kind = K::kind(&K::DynamicType::default()).into_owned();
    let shown = match &last {
        Some(obj) => {
            serde_yaml_ng::to_string(obj).unwrap_or_else(|e| format!("<unprintable: {e}>"))
        }
        None => "<object does not exist>".to_owned(),
    };
    let events = match last.as_ref().and_then(|o| o.namespace()) {
        Some(ns) => recent_events(api, &ns, name).await,
        None => String::new(),
    };
    bail!(
        "timed out after {timeout:?} waiting for {kind} {name}\n--- object ---\n{shown}--- events ---\n{events}"
    )
}

async fn recent_events<K: Clone>(api: &Api<K>, ns: &str, name: &str) -> String {
    let events: Api<Event> = Api::namespaced(Client::from(api.clone()), ns);
    match events
        .list(&ListParams::default().fields(&format!("involvedObject.name={name}")))
        .await
    {
        Ok(list) => list
            .items
            .iter()
            .map(|e| {
                format!(
                    "{} {} {}\n",
                    e.type_.as_deref().unwrap_or(""),
                    e.reason.as_deref().unwrap_or(""),
                    e.message.as_deref().unwrap_or("")
                )
            })
            .collect(),
        Err(e) => format!("<listing events failed: {e}>"),
    }
}

/// The cell in column `col` of data row `row` of a kubectl table, using the header's column offsets
/// (cells may be empty, so splitting on whitespace would shift columns).
pub fn table_cell(table: &str, row: usize, col: &str) -> Option<String> {
    let mut lines = table.lines();
    let header = lines.next()?;
    let line = lines.nth(row)?;
    let starts: Vec<usize> = header
        .char_indices()
        .filter(|&(i, ch)| ch != ' ' && (i == 0 || header.as_bytes()[i - 1] == b' '))
        .map(|(i, _)| i)
        .collect();
    let idx = starts
        .iter()
        .position(|&s| header[s..].split(' ').next() == Some(col))?;
    let start = starts[idx];
    let end = starts
        .get(idx + 1)
        .copied()
        .unwrap_or(line.len())
        .min(line.len());
    line.get(start..end).map(|s| s.trim().to_owned())
}

/// A `keda` process (operator, …) started by a test, killed when dropped. Its output goes to
/// `target/keda-e2e-logs/<name>.log`, whose tail is printed if the process dies early.
pub struct KedaProcess {
    pub name: String,
    child: std::process::Child,
    pub log: PathBuf,
}

impl KedaProcess {
    /// Starts `keda <args>` with extra environment.
    pub fn start(name: &str, args: &[&str], env: &[(&str, &str)]) -> Result<KedaProcess> {
        KedaProcess::spawn(name, args, env, false)
    }

    /// Starts another executable (upstream KEDA's, for the side-by-side bench) the same way, with its
    /// output in `target/keda-e2e-logs/<name>.log` and killed when dropped.
    pub fn start_exe(
        exe: &std::path::Path,
        name: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Result<KedaProcess> {
        if !exe.exists() {
            bail!("{} is missing", exe.display());
        }
        KedaProcess::spawn_exe(exe.to_path_buf(), name, args, env, false)
    }

    fn spawn(
        name: &str,
        args: &[&str],
        env: &[(&str, &str)],
        own_group: bool,
    ) -> Result<KedaProcess> {
        let bin = std::env::var_os("KEDA_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| root().join("target/debug/keda"));
        if !bin.exists() {
            bail!(
                "{} is missing: build it with `cargo build -p keda` (cargo xtask e2e does)",
                bin.display()
            );
        }
        KedaProcess::spawn_exe(bin, name, args, env, own_group)
    }

    fn spawn_exe(
        bin: PathBuf,
        name: &str,
        args: &[&str],
        env: &[(&str, &str)],
        own_group: bool,
    ) -> Result<KedaProcess> {
        use std::os::unix::process::CommandExt;
        let dir = root().join("target/keda-e2e-logs");
        std::fs::create_dir_all(&dir)?;
        let log = dir.join(format!("{name}.log"));
        let out = std::fs::File::create(&log)?;
        let mut cmd = Command::new(&bin);
        cmd.args(args)
            .envs(env.iter().copied())
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info,kube=warn".into()),
            )
            .stdin(std::process::Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out);
        if own_group {
            cmd.process_group(0);
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {} {}", bin.display(), args.join(" ")))?;
        Ok(KedaProcess {
            name: name.to_owned(),
            child,
            log,
        })
    }

    /// An operator that watches only `namespace` and keeps its leader Lease there, so tests never
    /// interfere with each other.
    pub fn operator(namespace: &str, identity: &str) -> Result<KedaProcess> {
        KedaProcess::operator_with(namespace, identity, "127.0.0.1:0", &[])
    }

    /// [`KedaProcess::operator`] with its Prometheus metrics on `metrics_addr` and more flags.
    pub fn operator_with(
        namespace: &str,
        identity: &str,
        metrics_addr: &str,
        extra_args: &[&str],
    ) -> Result<KedaProcess> {
        KedaProcess::operator_with_env(namespace, identity, metrics_addr, extra_args, &[])
    }

    /// [`KedaProcess::operator_with`] with more environment (`KUBECONFIG` of an
    /// [`apicount::ApiCounter`], …).
    pub fn operator_with_env(
        namespace: &str,
        identity: &str,
        metrics_addr: &str,
        extra_args: &[&str],
        extra_env: &[(&str, &str)],
    ) -> Result<KedaProcess> {
        let mut args = vec![
            "operator",
            "--leader-elect",
            "--metrics-bind-address",
            metrics_addr,
            "--health-probe-bind-address",
            "127.0.0.1:0",
        ];
        args.extend_from_slice(extra_args);
        let mut env = vec![
            ("WATCH_NAMESPACE", namespace),
            ("KEDA_CLUSTER_OBJECT_NAMESPACE", namespace),
            ("POD_NAME", identity),
        ];
        env.extend_from_slice(extra_env);
        KedaProcess::start(&format!("{namespace}-{identity}"), &args, &env)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGTERM (graceful: the operator releases its Lease), then wait.
    pub fn terminate(&mut self) {
        self.terminate_within(Duration::from_secs(10));
    }

    /// SIGTERM, then SIGKILL if it has not exited after `grace`.
    pub fn terminate_within(&mut self, grace: Duration) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline && self.is_running() {
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGKILL: a crash, no Lease release.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for KedaProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A value the test controls, served over HTTP on loopback as `{"value": N}` (or HTTP 500 when failing),
/// for the metrics-api trigger.
pub struct MetricServer {
    pub url: String,
    value: std::sync::Arc<std::sync::Mutex<Option<f64>>>,
}

impl MetricServer {
    pub async fn start(initial: f64) -> Result<MetricServer> {
        MetricServer::start_with_key(initial, None).await
    }

    /// Like [`MetricServer::start`], but requests without header `X-API-KEY: <key>` get HTTP 401.
    pub async fn start_with_key(initial: f64, key: Option<&str>) -> Result<MetricServer> {
        let required = key.map(|k| format!("x-api-key: {k}").to_lowercase());
        let value = std::sync::Arc::new(std::sync::Mutex::new(Some(initial)));
        let shared = value.clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    continue;
                };
                let current = shared.lock().map(|v| *v).unwrap_or(None);
                let required = required.clone();
                tokio::spawn(async move {
                    use tokio::io::{AsyncReadExt, AsyncWriteExt};
                    let mut buf = [0u8; 4096];
                    let n = sock.read(&mut buf).await.unwrap_or(0);
                    let request = String::from_utf8_lossy(&buf[..n]).to_lowercase();
                    let authorised = required
                        .as_ref()
                        .is_none_or(|h| request.contains(h.as_str()));
                    let (status, body) = match current {
                        _ if !authorised => {
                            ("401 Unauthorized", "missing or wrong X-API-KEY".to_owned())
                        }
                        Some(v) => ("200 OK", format!("{{\"value\": {v}}}")),
                        None => ("500 Internal Server Error", "backend down".to_owned()),
                    };
                    let resp = format!(
                        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = sock.write_all(resp.as_bytes()).await;
                });
            }
        });
        Ok(MetricServer {
            url: format!("http://{addr}/metric"),
            value,
        })
    }

    /// `None` makes the endpoint fail (HTTP 500).
    pub fn set(&self, v: Option<f64>) {
        if let Ok(mut g) = self.value.lock() {
            *g = v;
        }
    }
}

/// Applies a YAML manifest in `namespace` with kubectl (server-side).
pub fn apply(namespace: &str, yaml: &str) -> Result<()> {
    kubectl_ok(
        &[
            "apply",
            "--server-side",
            "--force-conflicts",
            "-n",
            namespace,
            "-f",
            "-",
        ],
        Some(yaml),
    )?;
    Ok(())
}

/// The replica count of a Deployment's spec.
pub async fn spec_replicas(client: &Client, namespace: &str, name: &str) -> Result<i32> {
    let api: Api<k8s_openapi::api::apps::v1::Deployment> =
        Api::namespaced(client.clone(), namespace);
    Ok(api
        .get(name)
        .await?
        .spec
        .and_then(|s| s.replicas)
        .unwrap_or(1))
}

/// Serializes tests that create or delete cluster-scoped objects which exist only once per cluster: the
/// APIService `v1beta1.external.metrics.k8s.io`, the ValidatingWebhookConfiguration `keda-admission`, the
/// chart's ClusterRoles. Takes an exclusive `flock` on `target/keda-e2e-cluster-scoped.lock` (waiting while
/// another test, in this or another process, holds it); the lock is released when the returned file is
/// dropped. Hold it from before creating such an object until after it is deleted.
pub fn cluster_scoped_lock() -> Result<std::fs::File> {
    let path = root().join("target/keda-e2e-cluster-scoped.lock");
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    file.lock()
        .with_context(|| format!("locking {}", path.display()))?;
    Ok(file)
}

/// This network namespace's address (`hack/cluster.sh`): where the kube-apiserver, which runs in here
/// too, reaches processes started by a test or the demo.
pub const NODE_IP: &str = "10.200.0.1";

/// A TCP port that is free on `ip` right now.
pub fn free_port(ip: &str) -> Result<u16> {
    Ok(std::net::TcpListener::bind((ip, 0))?.local_addr()?.port())
}

impl KedaProcess {
    /// Like [`KedaProcess::start`], but in a process group of its own, so a Ctrl-C in the terminal reaches
    /// only the caller, which can then clean up in order (the operator must outlive its ScaledObjects'
    /// finalizers) before stopping the process.
    pub fn start_in_own_group(
        name: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Result<KedaProcess> {
        KedaProcess::spawn(name, args, env, true)
    }
}

/// A kubeconfig that authenticates as ServiceAccount `namespace/name` (a bound token from the TokenRequest
/// API, as a pod of the chart gets mounted) against the current cluster; returns its path. The keda
/// processes of [`ChartProcesses`] run with the chart's identities this way, so a missing RBAC rule
/// fails the test as it would fail in a cluster.
pub fn service_account_kubeconfig(
    dir: &std::path::Path,
    namespace: &str,
    name: &str,
) -> Result<String> {
    let token = kubectl_ok(
        &["create", "token", name, "-n", namespace, "--duration=2h"],
        None,
    )?;
    let view: serde_json::Value = serde_json::from_str(&kubectl_ok(
        &[
            "config",
            "view",
            "--raw",
            "--minify",
            "--flatten",
            "-o",
            "json",
        ],
        None,
    )?)?;
    let cluster = &view["clusters"][0]["cluster"];
    let server = cluster["server"]
        .as_str()
        .context("the current kubeconfig names no server")?;
    let ca = cluster["certificate-authority-data"]
        .as_str()
        .context("the current kubeconfig has no certificate-authority-data")?;
    let config = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "local", "cluster": {"server": server, "certificate-authority-data": ca}}],
        "users": [{"name": name, "user": {"token": token.trim()}}],
        "contexts": [{"name": name, "context": {"cluster": "local", "user": name, "namespace": namespace}}],
        "current-context": name,
    });
    let path = dir.join(format!("{namespace}-{name}.kubeconfig"));
    std::fs::write(&path, serde_json::to_string_pretty(&config)?)?;
    Ok(path.display().to_string())
}

/// The real `keda operator`, `keda metrics-apiserver` and `keda admission-webhooks`, running here (inside
/// the cluster's network namespace) in place of the pods of a `charts/keda` release, which kwok only
/// pretends to run. [`ChartProcesses::start`] scales the release's Deployments to 0, drops the selectors
/// of its Services and gives each Service an EndpointSlice to this namespace's address and the process's
/// port, so the API server reaches the processes exactly as it would reach the pods. Each process
/// authenticates as the release's ServiceAccount for it ([`service_account_kubeconfig`]), never as admin: the APIService
/// `v1beta1.external.metrics.k8s.io` through Service `keda-operator-metrics-apiserver`, the
/// ValidatingWebhookConfiguration `keda-admission` through Service `keda-admission-webhooks`. The operator
/// issues Secret `kedaorg-certs` and patches its CA into both (`--enable-cert-rotation`, as the chart
/// runs it); the other two processes read the Secret's files, as the chart mounts them.
///
/// Hold [`cluster_scoped_lock`] for as long as the release exists. The processes stop when this is
/// dropped; the release stays (uninstall it with helm, after dropping this, or its APIService answers 503).
pub struct ChartProcesses {
    pub namespace: String,
    pub operator: KedaProcess,
    pub metrics_apiserver: KedaProcess,
    pub webhooks: KedaProcess,
    cert_dir: PathBuf,
}

/// An EndpointSlice name that is not the endpointslice controller's.
const LOCAL_SLICE_SUFFIX: &str = "keda-rs-local";

impl ChartProcesses {
    /// Starts the processes for the release in `namespace` (Services named as the chart's defaults).
    /// `scope`: `Some(ns)` makes the operator watch only `ns` and narrows the webhook configuration's
    /// namespaceSelector to `ns`, so e2e tests running at the same time in other namespaces are left alone;
    /// `None` acts on every namespace, as the chart does.
    pub async fn start(namespace: &str, scope: Option<&str>) -> Result<ChartProcesses> {
        let client = client().await?;
        // The chart's pods are kwok's fakes: replace them.
        kubectl_ok(
            &[
                "scale",
                "deployment",
                "--all",
                "--replicas=0",
                "-n",
                namespace,
            ],
            None,
        )?;
        if let Some(ns) = scope {
            let vwc: serde_json::Value = serde_json::from_str(&kubectl_ok(
                &[
                    "get",
                    "validatingwebhookconfiguration",
                    keda_api::consts::names::VALIDATING_WEBHOOK_CONFIGURATION,
                    "-o",
                    "json",
                ],
                None,
            )?)?;
            let hooks = vwc["webhooks"].as_array().map(Vec::len).unwrap_or(0);
            let patch: Vec<serde_json::Value> = (0..hooks)
                .map(|i| {
                    serde_json::json!({
                        "op": "replace",
                        "path": format!("/webhooks/{i}/namespaceSelector"),
                        "value": {"matchLabels": {"kubernetes.io/metadata.name": ns}},
                    })
                })
                .collect();
            kubectl_ok(
                &[
                    "patch",
                    "validatingwebhookconfiguration",
                    keda_api::consts::names::VALIDATING_WEBHOOK_CONFIGURATION,
                    "--type=json",
                    "-p",
                    &serde_json::to_string(&patch)?,
                ],
                None,
            )?;
        }

        let cert_dir = root()
            .join("target/keda-e2e-certs")
            .join(format!("{namespace}-chart-{}", std::process::id()));
        std::fs::create_dir_all(&cert_dir)?;
        let grpc_port = free_port(NODE_IP)?;
        let operator_metrics_port = free_port(NODE_IP)?;
        let https_port = free_port(NODE_IP)?;
        let apiserver_metrics_port = free_port(NODE_IP)?;
        let webhook_port = free_port(NODE_IP)?;
        let at = |port: u16| format!("{NODE_IP}:{port}");
        let cert_dir_s = cert_dir.display().to_string();
        let identity = format!("keda-operator-local-{}", std::process::id());
        // The chart's identities (its default ServiceAccount names).
        let operator_kubeconfig =
            service_account_kubeconfig(&cert_dir, namespace, "keda-operator")?;
        let metrics_kubeconfig =
            service_account_kubeconfig(&cert_dir, namespace, "keda-metrics-server")?;
        let webhooks_kubeconfig = service_account_kubeconfig(&cert_dir, namespace, "keda-webhook")?;
        let watch = scope.unwrap_or("");
        let mut operator = KedaProcess::start_in_own_group(
            &format!("{namespace}-chart-operator"),
            &[
                "operator",
                "--leader-elect",
                "--enable-cert-rotation=true",
                "--cert-secret-name=kedaorg-certs",
                "--cert-dir",
                &cert_dir_s,
                "--metrics-service-bind-address",
                &at(grpc_port),
                "--metrics-bind-address",
                &at(operator_metrics_port),
                "--health-probe-bind-address",
                "127.0.0.1:0",
            ],
            &[
                ("WATCH_NAMESPACE", watch),
                ("KEDA_CLUSTER_OBJECT_NAMESPACE", namespace),
                ("POD_NAMESPACE", namespace),
                ("POD_NAME", &identity),
                ("KUBECONFIG", &operator_kubeconfig),
            ],
        )?;

        // The certificates the operator issues, written out as the chart mounts Secret kedaorg-certs.
        let secrets: Api<k8s_openapi::api::core::v1::Secret> =
            Api::namespaced(client.clone(), namespace);
        let deadline = Instant::now() + Duration::from_secs(60);
        let data = loop {
            if let Some(data) = secrets.get_opt("kedaorg-certs").await?.and_then(|s| s.data)
                && ["ca.crt", "tls.crt", "tls.key"]
                    .iter()
                    .all(|k| data.contains_key(*k))
            {
                break data;
            }
            if !operator.is_running() {
                bail!(
                    "keda operator exited before issuing Secret kedaorg-certs:\n{}",
                    operator.log_tail()
                );
            }
            if Instant::now() > deadline {
                bail!(
                    "keda operator did not issue Secret {namespace}/kedaorg-certs within 60 s:\n{}",
                    operator.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        };
        for (key, value) in &data {
            std::fs::write(cert_dir.join(key), &value.0)?;
        }

        let metrics_apiserver = KedaProcess::start_in_own_group(
            &format!("{namespace}-chart-metrics-apiserver"),
            &[
                "metrics-apiserver",
                "--secure-port",
                &https_port.to_string(),
                "--bind-address",
                NODE_IP,
                "--cert-dir",
                &cert_dir_s,
                "--client-ca-file",
                &cert_dir.join("ca.crt").display().to_string(),
                "--metrics-service-address",
                &at(grpc_port),
                "--metrics-service-grpc-authority",
                &format!("keda-operator.{namespace}.svc.cluster.local"),
                "--metrics-bind-address",
                &at(apiserver_metrics_port),
            ],
            &[
                ("POD_NAMESPACE", namespace),
                ("KUBECONFIG", &metrics_kubeconfig),
            ],
        )?;
        let webhooks = KedaProcess::start_in_own_group(
            &format!("{namespace}-chart-admission-webhooks"),
            &[
                "admission-webhooks",
                "--port",
                &webhook_port.to_string(),
                "--bind-address",
                NODE_IP,
                "--cert-dir",
                &cert_dir_s,
                "--health-probe-bind-address",
                "127.0.0.1:0",
                "--metrics-bind-address",
                "127.0.0.1:0",
            ],
            &[
                ("KEDA_CLUSTER_OBJECT_NAMESPACE", namespace),
                ("POD_NAMESPACE", namespace),
                ("KUBECONFIG", &webhooks_kubeconfig),
            ],
        )?;
        let processes = ChartProcesses {
            namespace: namespace.to_owned(),
            operator,
            metrics_apiserver,
            webhooks,
            cert_dir,
        };

        // Each Service's ports by name → the process's port.
        for (service, ports) in [
            (
                "keda-operator",
                vec![
                    ("metricsservice", grpc_port),
                    ("metrics", operator_metrics_port),
                ],
            ),
            (
                "keda-operator-metrics-apiserver",
                vec![("https", https_port), ("metrics", apiserver_metrics_port)],
            ),
            ("keda-admission-webhooks", vec![("https", webhook_port)]),
        ] {
            point_service_here(namespace, service, &ports)?;
        }
        Ok(processes)
    }

    /// Fails with the processes' logs unless all three still run.
    pub fn check_running(&mut self) -> Result<()> {
        for p in [
            &mut self.operator,
            &mut self.metrics_apiserver,
            &mut self.webhooks,
        ] {
            if !p.is_running() {
                bail!(
                    "{} exited:\n{}\n(log: {})",
                    p.name,
                    p.log_tail(),
                    p.log.display()
                );
            }
        }
        Ok(())
    }

    /// Waits until the aggregation layer serves `external.metrics.k8s.io/v1beta1` through the chart's
    /// APIService and Service, i.e. `kubectl get --raw /apis/external.metrics.k8s.io/v1beta1` answers.
    /// Returns that answer.
    pub async fn wait_external_metrics_api(
        &mut self,
        timeout: Duration,
    ) -> Result<serde_json::Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let out = kubectl(
                &["get", "--raw", "/apis/external.metrics.k8s.io/v1beta1"],
                None,
            )?;
            if out.status.success()
                && let Ok(v) = serde_json::from_slice::<serde_json::Value>(&out.stdout)
            {
                return Ok(v);
            }
            self.check_running()?;
            if Instant::now() > deadline {
                bail!(
                    "external.metrics.k8s.io/v1beta1 did not answer within {timeout:?}: {}\n--- metrics-apiserver ---\n{}\n--- operator ---\n{}",
                    String::from_utf8_lossy(&out.stderr),
                    self.metrics_apiserver.log_tail(),
                    self.operator.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// SIGTERM to the three processes (the operator releases its Lease), then wait for them.
    pub fn stop(&mut self) {
        for p in [
            &mut self.webhooks,
            &mut self.metrics_apiserver,
            &mut self.operator,
        ] {
            if p.is_running() {
                p.terminate();
            }
        }
    }
}

impl Drop for ChartProcesses {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.cert_dir);
    }
}

/// Drops the selector of Service `service` and gives it an EndpointSlice to [`NODE_IP`] with the given
/// (port name, port) pairs; port names the Service does not have are left out.
pub fn point_service_here(namespace: &str, service: &str, ports: &[(&str, u16)]) -> Result<()> {
    let svc: serde_json::Value = serde_json::from_str(&kubectl_ok(
        &["get", "service", service, "-n", namespace, "-o", "json"],
        None,
    )?)?;
    if svc["spec"].get("selector").is_some() {
        kubectl_ok(
            &[
                "patch",
                "service",
                service,
                "-n",
                namespace,
                "--type=json",
                "-p",
                r#"[{"op":"remove","path":"/spec/selector"}]"#,
            ],
            None,
        )?;
    }
    let names: Vec<&str> = svc["spec"]["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["name"].as_str())
        .collect();
    let slice_ports: Vec<serde_json::Value> = ports
        .iter()
        .filter(|(name, _)| names.contains(name))
        .map(|(name, port)| serde_json::json!({"name": name, "port": port, "protocol": "TCP"}))
        .collect();
    let slice = serde_json::json!({
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": format!("{service}-{LOCAL_SLICE_SUFFIX}"),
            "labels": {
                "kubernetes.io/service-name": service,
                "endpointslice.kubernetes.io/managed-by": "keda-rs.dev-local",
            },
        },
        "addressType": "IPv4",
        "endpoints": [{"addresses": [NODE_IP], "conditions": {"ready": true}}],
        "ports": slice_ports,
    });
    apply(namespace, &serde_json::to_string(&slice)?)
}

/// How many Events with `reason` exist in `namespace` (kubectl's field selector on `reason`).
pub fn events_with_reason(namespace: &str, reason: &str) -> Result<usize> {
    let out = kubectl_ok(
        &[
            "get",
            "events",
            "-n",
            namespace,
            "--field-selector",
            &format!("reason={reason}"),
            "-o",
            "json",
        ],
        None,
    )?;
    let v: serde_json::Value = serde_json::from_str(&out)?;
    Ok(v["items"].as_array().map_or(0, Vec::len))
}
