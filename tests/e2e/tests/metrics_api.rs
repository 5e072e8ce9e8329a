//! `keda metrics-apiserver` on the local control plane, next to a real `keda operator`: the aggregation
//! layer serves `external.metrics.k8s.io/v1beta1` from it (APIService with our CA, no
//! insecureSkipTLSVerify), the real HPA controller scales a Deployment 1 → N → 1 from the external metric,
//! `kubectl get --raw` returns our value, and `/readyz` follows the gRPC connection to the operator.
//!
//! Both processes run here, inside the cluster's network namespace; the Service
//! `keda-operator-metrics-apiserver` has no selector and an EndpointSlice pointing at 10.200.0.1 (this
//! namespace's address) and the metrics-apiserver's port. There is one APIService
//! `v1beta1.external.metrics.k8s.io` per cluster: a test creates it under `cluster_scoped_lock` and
//! deletes it when done (an APIService without a server would block namespace deletion cluster-wide).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use k8s_openapi::api::apps::v1::Deployment;
use keda_e2e::{
    KedaProcess, MetricServer, apply, client, cluster_scoped_lock, ensure_crds, kubectl,
    kubectl_ok, namespace, root, wait_for,
};
use kube::Api;

// The scaler tests' real servers, started here inside the cluster's network namespace.
#[path = "../../../crates/keda-scalers/tests/support/kafka_broker.rs"]
mod kafka_broker;
#[path = "../../../crates/keda-scalers/tests/support/rabbitmq_server.rs"]
mod rabbitmq_server;
#[path = "../../../crates/keda-scalers/tests/support/mod.rs"]
mod support;

/// This network namespace's address, where the kube-apiserver reaches our process.
const NODE_IP: &str = "10.200.0.1";
const APISERVICE: &str = "v1beta1.external.metrics.k8s.io";
const SERVICE: &str = "keda-operator-metrics-apiserver";
const T: Duration = Duration::from_secs(120);

fn free_port(ip: &str) -> Result<u16> {
    Ok(std::net::TcpListener::bind((ip, 0))?.local_addr()?.port())
}

/// A CA (the APIService's caBundle) able to sign the one certificate both processes use, as Secret
/// kedaorg-certs has: the operator's gRPC server, the metrics-apiserver's HTTPS server and its gRPC
/// client certificate.
struct TestCa {
    cert: rcgen::Certificate,
    key: rcgen::KeyPair,
}

impl TestCa {
    fn new() -> Result<TestCa> {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
        let key = KeyPair::generate()?;
        let mut ca = CertificateParams::new(Vec::<String>::new())?;
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name.push(DnType::CommonName, "KEDA");
        ca.distinguished_name
            .push(DnType::OrganizationName, "KEDAORG");
        let cert = ca.self_signed(&key)?;
        Ok(TestCa { cert, key })
    }

    /// `(tls.crt, tls.key)` PEM for the namespace's Services.
    fn leaf(&self, ns: &str) -> Result<(String, String)> {
        use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, KeyPair};
        let mut sans = vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
            NODE_IP.to_owned(),
        ];
        for svc in ["keda-operator", SERVICE] {
            sans.push(svc.to_owned());
            sans.push(format!("{svc}.{ns}"));
            sans.push(format!("{svc}.{ns}.svc"));
            sans.push(format!("{svc}.{ns}.svc.cluster.local"));
        }
        let key = KeyPair::generate()?;
        let mut leaf = CertificateParams::new(sans)?;
        leaf.distinguished_name
            .push(DnType::CommonName, "keda-operator");
        leaf.distinguished_name
            .push(DnType::OrganizationName, "KEDAORG");
        leaf.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let leaf = leaf.signed_by(&key, &self.cert, &self.key)?;
        Ok((leaf.pem(), key.serialize_pem()))
    }

    /// Writes a new leaf (and this CA) into `dir` as the kubelet projects a Secret volume: the files
    /// go into a fresh timestamped directory and one symlink rename switches all three at once.
    fn project(&self, dir: &Path, ns: &str) -> Result<String> {
        let (crt, key) = self.leaf(ns)?;
        std::fs::create_dir_all(dir)?;
        let stamp = format!(
            "..{}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_nanos()
        );
        let data = dir.join(&stamp);
        std::fs::create_dir_all(&data)?;
        std::fs::write(data.join("ca.crt"), self.cert.pem())?;
        std::fs::write(data.join("tls.crt"), &crt)?;
        std::fs::write(data.join("tls.key"), key)?;
        let tmp = dir.join("..data_tmp");
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(&stamp, &tmp)?;
        std::fs::rename(&tmp, dir.join("..data"))?;
        for f in ["ca.crt", "tls.crt", "tls.key"] {
            let link = dir.join(f);
            if std::fs::symlink_metadata(&link).is_err() {
                std::os::unix::fs::symlink(Path::new("..data").join(f), &link)?;
            }
        }
        Ok(crt)
    }
}

/// The operator and the metrics-apiserver of one test namespace.
struct Stack {
    ns: String,
    dir: PathBuf,
    ca: TestCa,
    ca_pem: String,
    grpc_addr: String,
    https_port: u16,
    operator: KedaProcess,
    apiserver: KedaProcess,
    readyz: reqwest::Client,
}

impl Stack {
    async fn start(prefix: &str) -> Result<Stack> {
        ensure_crds().await?;
        let c = client().await?;
        let ns = namespace(&c, prefix).await?;
        let dir = root().join("target/keda-e2e-certs").join(&ns);
        let ca = TestCa::new()?;
        ca.project(&dir, &ns)?;
        let ca_pem = ca.cert.pem();
        let grpc_addr = format!("127.0.0.1:{}", free_port("127.0.0.1")?);
        let https_port = free_port("0.0.0.0")?;
        let operator = Self::operator(&ns, &dir, &grpc_addr, "op-a")?;
        let apiserver = KedaProcess::start(
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
                &grpc_addr,
                "--metrics-service-grpc-authority",
                &format!("keda-operator.{ns}.svc.cluster.local"),
                "--metrics-bind-address",
                "127.0.0.1:0",
            ],
            &[("POD_NAMESPACE", &ns)],
        )?;
        let readyz = reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(ca_pem.as_bytes())?)
            .timeout(Duration::from_secs(2))
            .build()?;
        Ok(Stack {
            ns,
            dir,
            ca,
            ca_pem,
            grpc_addr,
            https_port,
            operator,
            apiserver,
            readyz,
        })
    }

    fn operator(ns: &str, dir: &Path, grpc_addr: &str, identity: &str) -> Result<KedaProcess> {
        KedaProcess::operator_with(
            ns,
            identity,
            "127.0.0.1:0",
            &[
                "--metrics-service-bind-address",
                grpc_addr,
                "--cert-dir",
                &dir.display().to_string(),
            ],
        )
    }

    /// `/readyz` of the metrics-apiserver: `Some(true)` 200, `Some(false)` an error code, `None` no answer.
    async fn ready(&self) -> Option<bool> {
        let url = format!("https://127.0.0.1:{}/readyz", self.https_port);
        match self.readyz.get(url).send().await {
            Ok(r) => Some(r.status().is_success()),
            Err(_) => None,
        }
    }

    async fn wait_ready(&mut self, want: bool, timeout: Duration) -> Result<Duration> {
        let start = Instant::now();
        loop {
            if self.ready().await == Some(want) {
                return Ok(start.elapsed());
            }
            if !self.apiserver.is_running() {
                bail!("metrics-apiserver exited:\n{}", self.apiserver.log_tail());
            }
            if start.elapsed() > timeout {
                bail!(
                    "/readyz did not become {} within {timeout:?}\n--- metrics-apiserver ---\n{}\n--- operator ---\n{}",
                    if want { "ready" } else { "not ready" },
                    self.apiserver.log_tail(),
                    self.operator.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Registers this stack as the cluster's external metrics API (until the guard is dropped).
    fn register(&self) -> Result<ApiServiceGuard> {
        let lock = cluster_scoped_lock()?;
        let guard = ApiServiceGuard { _lock: lock };
        let ns = &self.ns;
        let port = self.https_port;
        apply(
            ns,
            &format!(
                "apiVersion: v1\nkind: Service\nmetadata: {{name: {SERVICE}}}\nspec:\n  ports:\n  - {{name: https, port: 443, targetPort: 6443, protocol: TCP}}\n---\n\
                 apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: {SERVICE}-e2e\n  labels: {{kubernetes.io/service-name: {SERVICE}}}\n\
                 addressType: IPv4\nendpoints:\n- addresses: [\"{NODE_IP}\"]\n  conditions: {{ready: true}}\nports:\n- {{name: https, port: {port}, protocol: TCP}}\n"
            ),
        )?;
        self.apply_apiservice(&self.ca_pem)?;
        Ok(guard)
    }

    /// The APIService pointing at this stack's Service, trusting `ca_pem` (what the operator's
    /// caBundle patching does after a CA change).
    fn apply_apiservice(&self, ca_pem: &str) -> Result<()> {
        let ca_bundle = serde_json::to_value(k8s_openapi::ByteString(ca_pem.as_bytes().to_vec()))?;
        let ns = &self.ns;
        kubectl_ok(
            &["apply", "--server-side", "--force-conflicts", "-f", "-"],
            Some(&format!(
                "apiVersion: apiregistration.k8s.io/v1\nkind: APIService\nmetadata: {{name: {APISERVICE}}}\nspec:\n  group: external.metrics.k8s.io\n  version: v1beta1\n  groupPriorityMinimum: 100\n  versionPriority: 100\n  caBundle: {ca_bundle}\n  service: {{name: {SERVICE}, namespace: {ns}, port: 443}}\n"
            )),
        )?;
        Ok(())
    }
}

/// Holds the cluster-scoped lock; deletes the APIService before releasing it.
struct ApiServiceGuard {
    _lock: std::fs::File,
}

impl Drop for ApiServiceGuard {
    fn drop(&mut self) {
        let _ = kubectl(
            &[
                "delete",
                "apiservice",
                APISERVICE,
                "--ignore-not-found",
                "--wait=false",
            ],
            None,
        );
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `kubectl get --raw PATH` as JSON, or the error kubectl printed. (Blocking: the tests run on a
/// multi-threaded runtime so the MetricServer keeps answering the operator meanwhile.)
fn get_raw(path: &str) -> Result<serde_json::Value, String> {
    let out = kubectl(&["get", "--raw", path], None).map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())
}

async fn wait_raw(
    path: &str,
    timeout: Duration,
    ok: impl Fn(&serde_json::Value) -> bool,
) -> Result<serde_json::Value> {
    let start = Instant::now();
    let mut last = String::new();
    while start.elapsed() < timeout {
        match get_raw(path) {
            Ok(v) if ok(&v) => return Ok(v),
            Ok(v) => last = v.to_string(),
            Err(e) => last = e,
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    bail!("GET {path}: no acceptable answer within {timeout:?}; last: {last}")
}

fn metric_path(ns: &str, so: &str) -> String {
    format!(
        "/apis/external.metrics.k8s.io/v1beta1/namespaces/{ns}/s0-metric-api-value?labelSelector=scaledobject.keda.sh%2Fname%3D{so}"
    )
}

async fn wait_replicas(c: &kube::Client, ns: &str, name: &str, want: i32) -> Result<Duration> {
    let start = Instant::now();
    let api: Api<Deployment> = Api::namespaced(c.clone(), ns);
    wait_for(&api, name, Duration::from_secs(180), |d| {
        d.spec.as_ref().and_then(|s| s.replicas) == Some(want)
    })
    .await
    .with_context(|| format!("waiting for {want} replicas of {ns}/{name}"))?;
    Ok(start.elapsed())
}

/// Deployment `example-app` (1 replica) and its ScaledObject: metrics-api trigger on `server`,
/// targetValue 10, min 1, max 10, 1 s polling, no scale-down stabilization; `extra_spec` adds spec lines.
fn deploy_example_app(ns: &str, server: &MetricServer, extra_spec: &str) -> Result<()> {
    apply(
        ns,
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: example-app}\nspec:\n  replicas: 1\n  selector: {matchLabels: {app: example-app}}\n  template:\n    metadata: {labels: {app: example-app}}\n    spec:\n      containers: [{name: app, image: example/app:1}]\n",
    )?;
    apply(
        ns,
        &format!(
            "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {{name: example-app}}\nspec:\n  scaleTargetRef: {{name: example-app}}\n  pollingInterval: 1\n  minReplicaCount: 1\n  maxReplicaCount: 10\n{extra_spec}  advanced:\n    horizontalPodAutoscalerConfig:\n      behavior:\n        scaleDown: {{stabilizationWindowSeconds: 0}}\n  triggers:\n  - type: metrics-api\n    metadata: {{url: \"{}\", valueLocation: value, targetValue: \"10\"}}\n",
            server.url
        ),
    )
}

/// The seed guide's path: Deployment + ScaledObject (metrics-api trigger, targetValue 10, min 1, max 10);
/// the HPA controller, reading our external metric through the aggregation layer, scales 1 → 4 → 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hpa_scales_a_deployment_through_the_external_metrics_api() -> Result<()> {
    let mut stack = Stack::start("metrics-api").await?;
    let _registered = stack.register()?;
    let ns = stack.ns.clone();
    let c = client().await?;
    stack.wait_ready(true, T).await?;

    // Discovery through the aggregator, as custom-metrics-apiserver serves it.
    let disco = wait_raw("/apis/external.metrics.k8s.io/v1beta1", T, |v| {
        v["kind"] == "APIResourceList"
    })
    .await?;
    assert_eq!(disco["groupVersion"], "external.metrics.k8s.io/v1beta1");
    assert_eq!(disco["resources"][0]["name"], "externalmetrics");
    assert_eq!(disco["resources"][0]["namespaced"], true);
    assert_eq!(disco["resources"][0]["kind"], "ExternalMetricValueList");
    kubectl_ok(
        &[
            "wait",
            "--for=condition=Available",
            "--timeout=60s",
            &format!("apiservice/{APISERVICE}"),
        ],
        None,
    )?;

    let server = MetricServer::start(5.0).await?;
    deploy_example_app(&ns, &server, "")?;

    // Our value, as the HPA controller reads it.
    let path = metric_path(&ns, "example-app");
    let v = wait_raw(&path, T, |v| v["items"][0]["value"] == "5").await?;
    assert_eq!(v["kind"], "ExternalMetricValueList");
    assert_eq!(v["apiVersion"], "external.metrics.k8s.io/v1beta1");
    assert_eq!(v["items"][0]["metricName"], "s0-metric-api-value");

    // Upstream's error without the ScaledObject label, as a Status.
    let err = get_raw(&format!(
        "/apis/external.metrics.k8s.io/v1beta1/namespaces/{ns}/s0-metric-api-value"
    ))
    .expect_err("a request without labelSelector must fail");
    assert!(
        err.contains("scaledObject name is not specified"),
        "unexpected error: {err}"
    );

    // 1 → ceil(35 / 10) = 4 → 1.
    server.set(Some(35.0));
    wait_raw(&path, T, |v| v["items"][0]["value"] == "35").await?;
    let up = wait_replicas(&c, &ns, "example-app", 4).await?;
    server.set(Some(5.0));
    let down = wait_replicas(&c, &ns, "example-app", 1).await?;
    eprintln!("scaled 1 → 4 in {up:?}, 4 → 1 in {down:?}");
    assert!(
        stack.apiserver.is_running(),
        "{}",
        stack.apiserver.log_tail()
    );
    Ok(())
}

/// `/readyz` is NotReady within 10 s of losing the operator and Ready again once it is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_follows_the_operator_connection() -> Result<()> {
    let mut stack = Stack::start("metrics-api-ready").await?;
    let first = stack.wait_ready(true, T).await?;
    eprintln!("ready {first:?} after start");

    // A crash: no Lease release.
    stack.operator.kill();
    let lost = stack.wait_ready(false, Duration::from_secs(30)).await?;
    eprintln!("NotReady {lost:?} after the operator was killed");
    assert!(
        lost <= Duration::from_secs(10),
        "/readyz took {lost:?} to notice the operator is gone"
    );

    // The operator comes back (it waits for the old Lease to expire before serving).
    let ns = stack.ns.clone();
    let dir = stack.dir.clone();
    let addr = stack.grpc_addr.clone();
    stack.operator = Stack::operator(&ns, &dir, &addr, "op-b")?;
    let back = stack.wait_ready(true, Duration::from_secs(60)).await?;
    eprintln!("Ready {back:?} after the operator restarted");

    // A graceful stop too.
    stack.operator.terminate();
    let lost = stack.wait_ready(false, Duration::from_secs(30)).await?;
    assert!(lost <= Duration::from_secs(10), "{lost:?}");
    assert!(
        stack.apiserver.is_running(),
        "{}",
        stack.apiserver.log_tail()
    );
    Ok(())
}

impl Stack {
    /// A stack registered as the cluster's external metrics API, Ready and Available through the aggregator.
    async fn serving(prefix: &str) -> Result<(Stack, ApiServiceGuard)> {
        let mut stack = Stack::start(prefix).await?;
        let registered = stack.register()?;
        stack.wait_ready(true, T).await?;
        wait_available()?;
        Ok((stack, registered))
    }
}

/// Waits until the aggregator reports our APIService Available.
fn wait_available() -> Result<()> {
    kubectl_ok(
        &[
            "wait",
            "--for=condition=Available",
            "--timeout=120s",
            &format!("apiservice/{APISERVICE}"),
        ],
        None,
    )?;
    Ok(())
}

/// Fallback reaches the HPA: after `failureThreshold` failures the external metric becomes
/// `fallback.replicas × targetValue`, so the real HPA controller sets exactly `fallback.replicas`; when the
/// backend answers again the HPA follows the real value back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fallback_values_reach_the_hpa() -> Result<()> {
    let (mut stack, _registered) = Stack::serving("metrics-api-fallback").await?;
    let ns = stack.ns.clone();
    let c = client().await?;

    let server = MetricServer::start(5.0).await?;
    deploy_example_app(
        &ns,
        &server,
        "  fallback: {failureThreshold: 2, replicas: 6}\n",
    )?;
    let path = metric_path(&ns, "example-app");
    wait_raw(&path, T, |v| v["items"][0]["value"] == "5").await?;

    server.set(None);
    wait_raw(&path, T, |v| v["items"][0]["value"] == "60").await?;
    let to_fallback = wait_replicas(&c, &ns, "example-app", 6).await?;
    server.set(Some(5.0));
    wait_raw(&path, T, |v| v["items"][0]["value"] == "5").await?;
    let back = wait_replicas(&c, &ns, "example-app", 1).await?;
    eprintln!("fallback: 1 → 6 in {to_fallback:?}, back to 1 in {back:?}");
    assert!(stack.operator.is_running(), "{}", stack.operator.log_tail());
    Ok(())
}

/// Issue 13 item 4: a metric in fallback counts as active (upstream `isActiveOrFallback`). With the
/// workload at 0 and the backend down, KEDA activates it and the HPA takes it to `fallback.replicas`;
/// the Fallback condition turns True and then False with upstream's two Events when the backend returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fallback_scales_a_workload_at_zero() -> Result<()> {
    let (mut stack, _registered) = Stack::serving("metrics-api-fallback-zero").await?;
    let ns = stack.ns.clone();
    let c = client().await?;
    let server = MetricServer::start(0.0).await?;
    apply(
        &ns,
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: worker}\nspec:\n  replicas: 0\n  selector: {matchLabels: {app: worker}}\n  template:\n    metadata: {labels: {app: worker}}\n    spec:\n      containers: [{name: app, image: example/app:1}]\n",
    )?;
    apply(
        &ns,
        &format!(
            "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {{name: worker}}\nspec:\n  scaleTargetRef: {{name: worker}}\n  pollingInterval: 1\n  cooldownPeriod: 5\n  minReplicaCount: 0\n  maxReplicaCount: 10\n  fallback: {{failureThreshold: 2, replicas: 3}}\n  advanced:\n    horizontalPodAutoscalerConfig:\n      behavior:\n        scaleDown: {{stabilizationWindowSeconds: 0}}\n  triggers:\n  - type: metrics-api\n    metadata: {{url: \"{}\", valueLocation: value, targetValue: \"10\", activationTargetValue: \"5\"}}\n",
            server.url
        ),
    )?;
    let sos: Api<keda_api::ScaledObject> = Api::namespaced(c.clone(), &ns);
    let fallback_is = |so: &keda_api::ScaledObject, status: &str| {
        so.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|c| c.iter().find(|c| c.r#type == "Fallback"))
            .is_some_and(|c| c.status == status)
    };
    wait_for(&sos, "worker", T, |so| fallback_is(so, "False")).await?;
    assert_eq!(keda_e2e::spec_replicas(&c, &ns, "worker").await?, 0);

    server.set(None);
    let to_fallback = wait_replicas(&c, &ns, "worker", 3).await?;
    let so = wait_for(&sos, "worker", T, |so| fallback_is(so, "True")).await?;
    let active = so
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.r#type == "Active"))
        .map(|c| c.status.clone());
    assert_eq!(
        active.as_deref(),
        Some("True"),
        "in fallback the object is active"
    );
    assert!(keda_e2e::events_with_reason(&ns, "ScaledObjectFallbackActivated")? >= 1);

    server.set(Some(0.0));
    wait_for(&sos, "worker", T, |so| fallback_is(so, "False")).await?;
    assert!(keda_e2e::events_with_reason(&ns, "ScaledObjectFallbackDeactivated")? >= 1);
    let back = wait_replicas(&c, &ns, "worker", 0).await?;
    eprintln!("fallback from zero: 0 → 3 in {to_fallback:?}, back to 0 in {back:?}");
    assert!(stack.operator.is_running(), "{}", stack.operator.log_tail());
    Ok(())
}

/// The certificate a TLS server at `addr` presents, as base64 without line breaks.
fn presented_certificate(addr: &str, dir: &Path) -> Result<String> {
    let out = std::process::Command::new("openssl")
        .args(["s_client", "-connect", addr, "-cert"])
        .arg(dir.join("tls.crt"))
        .arg("-key")
        .arg(dir.join("tls.key"))
        .stdin(std::process::Stdio::null())
        .output()
        .context("running openssl s_client")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let begin = "-----BEGIN CERTIFICATE-----";
    let end = "-----END CERTIFICATE-----";
    let (Some(b), Some(e)) = (text.find(begin), text.find(end)) else {
        bail!(
            "no certificate from {addr}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    Ok(pem_body(&text[b..e + end.len()]))
}

fn pem_body(pem: &str) -> String {
    pem.lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<String>()
}

async fn wait_presented(addr: &str, dir: &Path, want: &str) -> Result<Duration> {
    let start = Instant::now();
    loop {
        let got = presented_certificate(addr, dir)?;
        if got == pem_body(want) {
            return Ok(start.elapsed());
        }
        if start.elapsed() > Duration::from_secs(30) {
            bail!("{addr} still presents the old certificate after 30 s");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn failed_metric_events(ns: &str) -> Result<usize> {
    let out = kubectl_ok(
        &[
            "get",
            "events",
            "-n",
            ns,
            "--field-selector",
            "reason=FailedGetExternalMetric",
            "-o",
            "json",
        ],
        None,
    )?;
    let v: serde_json::Value = serde_json::from_str(&out)?;
    Ok(v["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|e| e["count"].as_u64().unwrap_or(1) as usize)
                .sum()
        })
        .unwrap_or(0))
}

/// Replacing the `kedaorg-certs` files (as the kubelet does when the Secret changes) is picked up by the
/// operator's gRPC server and the metrics-apiserver without restarts: a renewed leaf from the same CA (what
/// rotation does) costs no failed fetch at all, and a new CA (with the APIService's caBundle updated, as the
/// operator patches it) keeps the HPA scaling.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotated_certificates_are_used_without_restarts() -> Result<()> {
    let (mut stack, _registered) = Stack::serving("metrics-api-certs").await?;
    let ns = stack.ns.clone();
    let c = client().await?;
    let server = MetricServer::start(5.0).await?;
    deploy_example_app(&ns, &server, "")?;
    let path = metric_path(&ns, "example-app");
    wait_raw(&path, T, |v| v["items"][0]["value"] == "5").await?;
    let https = format!("127.0.0.1:{}", stack.https_port);
    let first = std::fs::read_to_string(stack.dir.join("tls.crt"))?;
    assert_eq!(
        presented_certificate(&stack.grpc_addr, &stack.dir)?,
        pem_body(&first)
    );
    let events_before = failed_metric_events(&ns)?;

    // Renewal: same CA, new leaf. Every fetch during and after the switch succeeds.
    let renewed = stack.ca.project(&stack.dir, &ns)?;
    let mut failures = Vec::new();
    let start = Instant::now();
    let mut fetches = 0;
    while start.elapsed() < Duration::from_secs(10) {
        fetches += 1;
        match get_raw(&path) {
            Ok(v) if v["items"][0]["value"] == "5" => {}
            Ok(v) => failures.push(v.to_string()),
            Err(e) => failures.push(e),
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(
        failures.is_empty(),
        "{} of {fetches} fetches failed during the renewal: {failures:?}",
        failures.len()
    );
    let grpc_took = wait_presented(&stack.grpc_addr, &stack.dir, &renewed).await?;
    let https_took = wait_presented(&https, &stack.dir, &renewed).await?;
    eprintln!(
        "renewed leaf served by the operator within {grpc_took:?} (after the 10 s fetch loop) and by the metrics-apiserver within {https_took:?}; {fetches} fetches, none failed"
    );
    assert_eq!(
        failed_metric_events(&ns)?,
        events_before,
        "the HPA controller failed to get the metric during the renewal"
    );

    // A new CA: the files change, then the APIService trusts the new CA. The HPA keeps scaling.
    let new_ca = TestCa::new()?;
    let leaf = new_ca.project(&stack.dir, &ns)?;
    stack.apply_apiservice(&new_ca.cert.pem())?;
    wait_presented(&stack.grpc_addr, &stack.dir, &leaf).await?;
    wait_presented(&https, &stack.dir, &leaf).await?;
    server.set(Some(35.0));
    wait_raw(&path, T, |v| v["items"][0]["value"] == "35").await?;
    let up = wait_replicas(&c, &ns, "example-app", 4).await?;
    eprintln!("after the CA change the HPA scaled 1 → 4 in {up:?}");

    assert!(stack.operator.is_running(), "{}", stack.operator.log_tail());
    assert!(
        stack.apiserver.is_running(),
        "{}",
        stack.apiserver.log_tail()
    );
    // Same processes all along (a restart would have failed fetches or changed nothing in the logs).
    let operator_log = std::fs::read_to_string(&stack.operator.log)?;
    assert!(
        operator_log
            .matches("gRPC metrics service certificates reloaded")
            .count()
            >= 2,
        "{operator_log}"
    );
    let apiserver_log = std::fs::read_to_string(&stack.apiserver.log)?;
    assert!(
        apiserver_log.contains("serving certificate reloaded"),
        "{apiserver_log}"
    );
    Ok(())
}

/// Deployment `worker` at 0 replicas and a ScaledObject (min 0, max 10, 1 s polling, 5 s cooldown, no
/// scale-down stabilization) with one trigger, `trigger_yaml` (indented as a list item under `triggers:`).
fn deploy_worker_from_zero(ns: &str, trigger_yaml: &str) -> Result<()> {
    apply(
        ns,
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: worker}\nspec:\n  replicas: 0\n  selector: {matchLabels: {app: worker}}\n  template:\n    metadata: {labels: {app: worker}}\n    spec:\n      containers: [{name: app, image: example/app:1}]\n",
    )?;
    apply(
        ns,
        &format!(
            "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {{name: worker}}\nspec:\n  scaleTargetRef: {{name: worker}}\n  pollingInterval: 1\n  cooldownPeriod: 5\n  minReplicaCount: 0\n  maxReplicaCount: 10\n  advanced:\n    horizontalPodAutoscalerConfig:\n      behavior:\n        scaleDown: {{stabilizationWindowSeconds: 0}}\n  triggers:\n{trigger_yaml}"
        ),
    )
}

/// Waits until the ScaledObject `worker` is Ready, then checks the Deployment is still at 0.
async fn ready_at_zero(c: &kube::Client, ns: &str) -> Result<()> {
    let sos: Api<keda_api::ScaledObject> = Api::namespaced(c.clone(), ns);
    wait_for(&sos, "worker", T, |so| {
        so.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.r#type == "Ready" && c.status == "True"))
    })
    .await?;
    // A few polls with nothing to do: still 0.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(keda_e2e::spec_replicas(c, ns, "worker").await?, 0);
    Ok(())
}

/// Kafka consumer lag drives a Deployment 0 → N → 0 through the real HPA controller: a real broker
/// (hack/backends/kafka.sh), a topic of 3 partitions, a group whose committed offsets the test moves.
/// 10 records per partition is a lag of 30; without allowIdleConsumers upstream caps the metric at
/// partitions × lagThreshold (3 × 5), so 3 replicas. Committing to the log end takes it back to 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_lag_scales_a_deployment_from_zero_and_back() -> Result<()> {
    let broker = tokio::task::spawn_blocking(kafka_broker::start).await?;
    let (mut stack, _registered) = Stack::serving("kafka").await?;
    let ns = stack.ns.clone();
    let c = client().await?;
    let mut admin = kafka_broker::Admin::connect(&broker.plaintext).map_err(anyhow::Error::msg)?;
    admin.create_topic("orders", 3);
    admin.commit("workers", "orders", &[(0, 0), (1, 0), (2, 0)]);
    deploy_worker_from_zero(
        &ns,
        &format!(
            "  - type: kafka\n    metadata: {{bootstrapServers: \"{}\", consumerGroup: workers, topic: orders, lagThreshold: \"5\", activationLagThreshold: \"0\"}}\n",
            broker.plaintext
        ),
    )?;
    ready_at_zero(&c, &ns).await?;

    for partition in 0..3 {
        admin.produce("orders", partition, 10);
    }
    let up = wait_replicas(&c, &ns, "worker", 3).await?;
    admin.commit("workers", "orders", &[(0, 10), (1, 10), (2, 10)]);
    let down = wait_replicas(&c, &ns, "worker", 0).await?;
    eprintln!("kafka: 0 → 3 in {up:?}, 3 → 0 in {down:?}");
    assert!(stack.operator.is_running(), "{}", stack.operator.log_tail());
    Ok(())
}

/// A RabbitMQ queue drives a Deployment 0 → N → 0 through the real HPA controller: a real node (Debian's
/// rabbitmq-server), the trigger reads the queue over AMQP; 12 messages at value 5 are 3 replicas, a purge
/// takes it back to 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_queue_scales_a_deployment_from_zero_and_back() -> Result<()> {
    let (rabbit, _) = tokio::task::spawn_blocking(|| rabbitmq_server::Rabbit::start(None)).await?;
    let (mut stack, _registered) = Stack::serving("rabbitmq").await?;
    let ns = stack.ns.clone();
    let c = client().await?;
    rabbit.declare("%2F", "jobs").await;
    deploy_worker_from_zero(
        &ns,
        &format!(
            "  - type: rabbitmq\n    metadata: {{host: \"{}\", protocol: amqp, queueName: jobs, mode: QueueLength, value: \"5\"}}\n",
            rabbit.amqp_url("")
        ),
    )?;
    ready_at_zero(&c, &ns).await?;

    rabbit.publish("%2F", "jobs", 12).await;
    let up = wait_replicas(&c, &ns, "worker", 3).await?;
    rabbit.purge("%2F", "jobs").await;
    let down = wait_replicas(&c, &ns, "worker", 0).await?;
    eprintln!("rabbitmq: 0 → 3 in {up:?}, 3 → 0 in {down:?}");
    assert!(stack.operator.is_running(), "{}", stack.operator.log_tail());
    Ok(())
}

/// The replica steps of a timeline: `(t, replicas)` at each change, starting with the first entry.
fn steps(timeline: impl IntoIterator<Item = (f64, i64)>) -> Vec<(f64, i64)> {
    let mut out: Vec<(f64, i64)> = Vec::new();
    for (t, r) in timeline {
        if out.last().is_none_or(|&(_, last)| last != r) {
            out.push((t, r));
        }
    }
    out
}

/// Issue 19: `keda simulate` against the real thing. One metric series drives a metrics-api trigger
/// (operator, metrics-apiserver, aggregation layer, kube-controller-manager's HPA controller) while a
/// watch records every `spec.replicas` of the target; `keda simulate` replays the same ScaledObject and
/// series. The two must pass through the same replica counts in the same order, each reached within one
/// HPA sync period plus one pollingInterval of the other (the real HPA's and KEDA's phases are not the
/// simulation's).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_hpa_follows_keda_simulate() -> Result<()> {
    use futures::StreamExt;
    use kube::api::{WatchEvent, WatchParams};

    const POLLING: u64 = 5;
    const SERIES: &[(u64, f64)] = &[(0, 0.0), (30, 25.0), (90, 55.0), (150, 12.0), (210, 0.0)];
    const END: u64 = 275;

    let (stack, _registered) = Stack::serving("metrics-api-simulate").await?;
    let ns = stack.ns.clone();
    let c = client().await?;
    let server = MetricServer::start(SERIES[0].1).await?;
    let so = format!(
        "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {{name: worker, namespace: {ns}}}\nspec:\n  scaleTargetRef: {{name: worker}}\n  pollingInterval: {POLLING}\n  cooldownPeriod: 30\n  minReplicaCount: 0\n  maxReplicaCount: 6\n  advanced:\n    horizontalPodAutoscalerConfig:\n      behavior:\n        scaleDown: {{stabilizationWindowSeconds: 0}}\n  triggers:\n  - type: metrics-api\n    metadata: {{url: \"{}\", valueLocation: value, targetValue: \"10\", activationTargetValue: \"2\"}}\n",
        server.url
    );

    // The simulation first (it is offline): the same object, the series until END.
    let dir = root().join("target/keda-e2e-simulate").join(&ns);
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("so.yaml"), &so)?;
    let mut csv = "t,s0-metric-api-value\n".to_owned();
    for (t, v) in SERIES.iter().chain(&[(END, SERIES[SERIES.len() - 1].1)]) {
        csv.push_str(&format!("{t},{v}\n"));
    }
    std::fs::write(dir.join("series.csv"), &csv)?;
    let bin = std::env::var_os("KEDA_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target/debug/keda"));
    let out = std::process::Command::new(&bin)
        .arg("simulate")
        .arg(dir.join("so.yaml"))
        .arg("--series")
        .arg(dir.join("series.csv"))
        .args(["--start-replicas", "0", "-o", "json"])
        .output()?;
    let _ = std::fs::remove_dir_all(&dir);
    if !out.status.success() {
        bail!(
            "keda simulate failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let simulated = steps(
        doc["timeline"]
            .as_array()
            .context("timeline")?
            .iter()
            .filter_map(|e| Some((e["t"].as_f64()?, e["replicas"].as_i64()?))),
    );

    // The real run: the target at 0, a watch on it, then the object and the series on the clock.
    apply(
        &ns,
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: worker}\nspec:\n  replicas: 0\n  selector: {matchLabels: {app: worker}}\n  template:\n    metadata: {labels: {app: worker}}\n    spec:\n      containers: [{name: app, image: example/app:1}]\n",
    )?;
    let deployments: Api<Deployment> = Api::namespaced(c.clone(), &ns);
    let observed = std::sync::Arc::new(std::sync::Mutex::new(Vec::<(Instant, i64)>::new()));
    let watch = {
        let observed = observed.clone();
        let deployments = deployments.clone();
        tokio::spawn(async move {
            let mut rv = "0".to_owned();
            loop {
                let params = WatchParams::default()
                    .fields("metadata.name=worker")
                    .timeout(60);
                let Ok(stream) = deployments.watch(&params, &rv).await else {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                };
                let mut stream = stream.boxed();
                while let Some(Ok(event)) = stream.next().await {
                    let d = match event {
                        WatchEvent::Added(d) | WatchEvent::Modified(d) => d,
                        _ => continue,
                    };
                    if let Some(v) = d.metadata.resource_version.clone() {
                        rv = v;
                    }
                    let replicas = d.spec.and_then(|s| s.replicas).unwrap_or(1);
                    if let Ok(mut o) = observed.lock() {
                        o.push((Instant::now(), i64::from(replicas)));
                    }
                }
            }
        })
    };
    apply(&ns, &so)?;
    let start = Instant::now();
    for &(t, v) in SERIES {
        tokio::time::sleep_until((start + Duration::from_secs(t)).into()).await;
        server.set(Some(v));
    }
    tokio::time::sleep_until((start + Duration::from_secs(END)).into()).await;
    watch.abort();
    let real = steps(
        observed
            .lock()
            .map_err(|_| anyhow::anyhow!("watch poisoned"))?
            .iter()
            .map(|&(at, r)| (at.saturating_duration_since(start).as_secs_f64(), r)),
    );
    eprintln!("simulated {simulated:?}\nreal      {real:?}");

    let tolerance = 15.0 + POLLING as f64;
    let counts = |s: &[(f64, i64)]| s.iter().map(|&(_, r)| r).collect::<Vec<_>>();
    assert_eq!(
        counts(&real),
        counts(&simulated),
        "replica counts differ\nsimulated {simulated:?}\nreal      {real:?}\n--- operator ---\n{}",
        stack.operator.log_tail()
    );
    for (s, r) in simulated.iter().zip(&real) {
        assert!(
            (s.0 - r.0).abs() <= tolerance,
            "{} replicas: simulated at {} s, real at {:.1} s (tolerance {tolerance} s)\nsimulated {simulated:?}\nreal      {real:?}",
            s.1,
            s.0,
            r.0
        );
    }
    // The run really went through the series: up to the maximum and back to zero.
    assert_eq!(counts(&simulated), [0, 1, 3, 6, 2, 1, 0], "{simulated:?}");
    Ok(())
}
