//! Side-by-side operator bench (`cargo xtask bench operator --against upstream`): the same workload on the
//! same local control plane, one implementation at a time, each on a fresh namespace: keda-rs, then upstream
//! KEDA 2.20.2 with its default client rate limit (QPS 20, burst 30, as its chart), then upstream again with
//! QPS 100 / burst 150.
//!
//! Workload: N Deployments and N ScaledObjects created all at once (32 concurrent requests), half with a
//! metrics-api trigger against a loopback HTTP server answering 3 (target 10, `minReplicaCount: 1`, one
//! replica), half with a cron trigger outside its window (Jan 1, 00:00–01:00 UTC; `minReplicaCount: 0`,
//! zero replicas); every object at `pollingInterval` S. Each operator runs as a host process watching
//! only its namespace, with the chart's flags except leader election, which is off as both binaries
//! default to: with `--leader-elect`, upstream at QPS 20 on the shared 2-core machine could not renew its
//! Lease within the 10 s deadline while creating 1,000 HPAs and exited ("leader election lost"), which
//! in a cluster is a pod restart, not a measurement. keda-rs issues its certificates into Secret
//! `kedaorg-certs`; upstream gets certificates from a CA made here, since its rotation never writes the
//! files out of cluster. Next to each operator run its metrics API server (behind the cluster's APIService
//! `v1beta1.external.metrics.k8s.io`, so the HPA controller reads its metrics) and its admission webhooks
//! (not registered with the apiserver: the burst goes straight to them). A quarter of the objects (the
//! metrics-api ones with i % 4 == 2) set `useCachedMetrics: true`.
//!
//! Measured per implementation, all from outside the process:
//! - `ready_s`: from the first create until every ScaledObject is Ready=True and every HPA exists.
//! - `rss_mib` / `anon_mib`: VmRSS / RssAnon at the end of the steady window; `peak_rss_mib`: VmHWM when
//!   all are Ready (the peak from start through creation).
//! - `cpu_s_per_1k_polls`: utime+stime over the steady window per 1,000 polls, where polls = requests the
//!   metric server answered in the window + the cron objects' nominal ticks (N/2 × window ÷ S; cron polls
//!   need no I/O, so they are not observable from outside).
//! - `drift_p99_ms`: p99 of `keda_internal_scale_loop_latency_seconds` (both operators export it: the
//!   delay of each scale-loop tick behind its schedule), sampled every 2 s over the window.
//! - `api_reads_per_s` / `api_writes_per_s`: the operator's own requests in the window, counted by a
//!   counting proxy in front of `kubectl proxy` (its kubeconfig points there); Leases (none without
//!   leader election) left out.
//! - The steady window starts one interval + 5 s after the HPA controller has synced every HPA (each
//!   has conditions): until then both operators copy its first results into the HPAActive condition.
//! - `metrics_p99_ms` / `metrics_cached_p99_ms`: p99 of `external.metrics.k8s.io` reads through the
//!   kube-apiserver's aggregation layer, 100 per second for 20 s, round-robin over the uncached and then
//!   the cached metrics-api objects (null if any failed); `metrics_apiserver_rss_mib`: its VmRSS after.
//! - `webhook_p99_ms` / `webhook_burst_rss_mib`: 10,000 AdmissionReviews (each ScaledObject updated to
//!   itself, allowed by both), 32 in flight, straight to the webhook server; p99 and its VmRSS after.
//!
//! Environment: `BENCH_N` (1000), `BENCH_POLLING` (30), `BENCH_STEADY_SECS` (max(330, 4 × S): longer than keda-rs's 5-minute resync of every object),
//! `BENCH_READY_LIMIT_SECS` (1800: then `ready_s` is null), `KEDA_BIN` (keda-rs), `UPSTREAM_KEDA_DIR` (hack/upstream/build.sh's output: `bin/`, `crd/`),
//! `BENCH_IMPLS` (comma-separated subset of keda-rs,upstream-2.20.2,upstream-2.20.2-qps100), `BENCH_KEEP=1`
//! (keep the other implementations' runs of an earlier operator.json with the same N and S), `BENCH_HEAP=1`
//! (`KEDA_BIN` is a `cargo build -p keda --features dhat-heap` binary: after the measurements keda-rs
//! is stopped with every object present and the top allocation sites of its heap are printed; its
//! profile is kept in `target/bench/dhat-heap.json`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::Namespace;
use keda_api::ScaledObject;
use keda_e2e::apicount::{KubectlProxy, Tally, counting_proxy, proxied_kubeconfig};
use keda_e2e::bench::{counting_endpoint, proc_stat};
use keda_e2e::metrics_stack::ApiServiceGuard;
use keda_e2e::versus::{self, Run};
use keda_e2e::{
    KedaProcess, NODE_IP, apply, client, ensure_crds, free_port, kubectl, kubectl_ok, namespace,
    root,
};
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};

const CONCURRENCY: usize = 32;
/// The chart's Service names (their `<name>.<ns>.svc` are in the serving certificates).
const METRICS_SERVICE: &str = "keda-operator-metrics-apiserver";
const WEBHOOK_SERVICE: &str = "keda-admission-webhooks";
const APISERVICE: &str = "v1beta1.external.metrics.k8s.io";
/// `external.metrics.k8s.io` reads per second, and for how long, per kind (cached, uncached).
const METRICS_RATE: u32 = 100;
const METRICS_SECS: u64 = 20;
const WEBHOOK_BURST: usize = 10_000;

struct Settings {
    n: usize,
    polling: u64,
    steady: Duration,
    /// Give up waiting for all Ready after this long (`ready_s` then stays null).
    ready_limit: Duration,
    url: String,
    polls: Arc<AtomicU64>,
    proxy: std::net::SocketAddr,
    upstream: PathBuf,
    /// BENCH_HEAP=1: keda-rs is a `--features dhat-heap` build; its heap profile is reported.
    heap_profile: bool,
}

/// `name{labels} value` samples of one metric in a Prometheus text exposition.
fn samples(text: &str, metric: &str) -> Vec<f64> {
    text.lines()
        .filter(|l| l.starts_with(metric) && l[metric.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse().ok())
        .collect()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[(((sorted.len() - 1) as f64) * p).round() as usize]
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// A CA and a leaf for the upstream operator's gRPC server and clients (it needs serverAuth and
/// clientAuth, and SANs for how it is reached).
fn write_upstream_certs(dir: &Path, ns: &str) -> Result<()> {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    };
    std::fs::create_dir_all(dir)?;
    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "keda-rs bench CA");
    let ca = ca.self_signed(&ca_key)?;
    let key = KeyPair::generate()?;
    let mut leaf = CertificateParams::new(vec![
        "127.0.0.1".to_owned(),
        "localhost".to_owned(),
        format!("keda-operator.{ns}.svc"),
        format!("keda-operator.{ns}.svc.cluster.local"),
        format!("{METRICS_SERVICE}.{ns}.svc"),
        format!("{WEBHOOK_SERVICE}.{ns}.svc"),
    ])?;
    leaf.distinguished_name
        .push(DnType::CommonName, "keda-operator");
    leaf.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let leaf = leaf.signed_by(&key, &ca, &ca_key)?;
    std::fs::write(dir.join("ca.crt"), ca.pem())?;
    std::fs::write(dir.join("tls.crt"), leaf.pem())?;
    std::fs::write(dir.join("tls.key"), key.serialize_pem())?;
    Ok(())
}

/// Upstream's six CRDs (keda.sh and eventing.keda.sh), applied server-side (the ScaledJob CRD is too
/// large for client-side apply's annotation); keda-rs's keda.sh CRDs are the same four.
fn apply_upstream_crds(upstream: &Path) -> Result<()> {
    let dir = upstream.join("crd");
    let mut yaml = String::new();
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .with_context(|| format!("reading upstream's CRDs in {}", dir.display()))?
        .collect::<std::io::Result<_>>()?;
    entries.sort_by_key(|e| e.path());
    for e in entries {
        yaml.push_str(&std::fs::read_to_string(e.path())?);
        yaml.push_str("\n---\n");
    }
    kubectl_ok(
        &["apply", "--server-side", "--force-conflicts", "-f", "-"],
        Some(&yaml),
    )?;
    kubectl_ok(
        &[
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "crd/cloudeventsources.eventing.keda.sh",
            "crd/clustercloudeventsources.eventing.keda.sh",
        ],
        None,
    )?;
    Ok(())
}

fn start_operator(
    implementation: &str,
    s: &Settings,
    ns: &str,
    dir: &Path,
    kubeconfig: &str,
    metrics_addr: &str,
    grpc: &str,
) -> Result<KedaProcess> {
    let dir_s = dir.display().to_string();
    let env = [
        ("WATCH_NAMESPACE", ns),
        ("KEDA_CLUSTER_OBJECT_NAMESPACE", ns),
        ("POD_NAMESPACE", ns),
        ("POD_NAME", "bench-operator"),
        ("KUBECONFIG", kubeconfig),
    ];
    if implementation == versus::KEDA_RS {
        let dhat_file = dir.join("dhat-heap.json").display().to_string();
        let env = [
            env[0],
            env[1],
            env[2],
            env[3],
            env[4],
            ("KEDA_DHAT_FILE", dhat_file.as_str()),
        ];
        return KedaProcess::start(
            &format!("{ns}-operator"),
            &[
                "operator",
                "--enable-cert-rotation=true",
                "--cert-secret-name=kedaorg-certs",
                "--enable-apiservice-patching=false",
                "--enable-webhook-patching=false",
                "--cert-dir",
                &dir_s,
                "--metrics-service-bind-address",
                grpc,
                "--metrics-bind-address",
                metrics_addr,
                "--health-probe-bind-address",
                "127.0.0.1:0",
            ],
            &env,
        );
    }
    write_upstream_certs(dir, ns)?;
    let health = format!("127.0.0.1:{}", free_port("127.0.0.1")?);
    let mut args = vec![
        "--zap-log-level=info",
        "--zap-encoder=console",
        "--zap-time-encoding=rfc3339",
        "--kubeconfig",
        kubeconfig,
        "--cert-dir",
        &dir_s,
        "--metrics-bind-address",
        metrics_addr,
        "--health-probe-bind-address",
        &health,
        "--metrics-service-bind-address",
        grpc,
    ];
    if implementation.ends_with("-qps100") {
        args.extend(["--kube-api-qps", "100", "--kube-api-burst", "150"]);
    }
    KedaProcess::start_exe(
        &s.upstream.join("bin/keda"),
        &format!("{ns}-operator"),
        &args,
        &env,
    )
}

/// One implementation's metrics API server (behind the APIService `v1beta1.external.metrics.k8s.io`, which
/// is deleted on drop) and admission webhooks (called directly, not registered with the apiserver), run
/// as the chart runs them next to the operator.
struct Companions {
    metrics_apiserver: KedaProcess,
    webhooks: KedaProcess,
    /// `https://keda-admission-webhooks.<ns>.svc:<port>/validate-keda-sh-v1alpha1-scaledobject`, resolved to
    /// the webhook's address.
    webhook_url: String,
    webhook_addr: std::net::SocketAddr,
    ca_pem: Vec<u8>,
    /// Only one APIService per cluster: held until it is deleted.
    _apiservice: ApiServiceGuard,
}

async fn wait_http_ok(url: &str, process: &mut KedaProcess, what: &str) -> Result<()> {
    let http = reqwest::Client::new();
    let waiting = Instant::now();
    loop {
        if let Ok(r) = http.get(url).send().await
            && r.status().is_success()
        {
            return Ok(());
        }
        if !process.is_running() || waiting.elapsed() > Duration::from_secs(120) {
            bail!(
                "{what} did not answer {url} within 120 s:\n{}",
                process.log_tail()
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn start_companions(
    c: &Client,
    implementation: &str,
    s: &Settings,
    ns: &str,
    dir: &Path,
    grpc: &str,
    op: &mut KedaProcess,
) -> Result<Companions> {
    let apiservice = ApiServiceGuard::acquire()?;
    let dir_s = dir.display().to_string();
    let file = |name: &str| dir.join(name).display().to_string();
    let admin_kubeconfig =
        std::env::var("KUBECONFIG").context("KUBECONFIG is not set (run through cargo xtask)")?;
    if implementation == versus::KEDA_RS {
        // The certificates the operator issues, written out as the chart mounts Secret kedaorg-certs.
        let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(c.clone(), ns);
        let waiting = Instant::now();
        let certs = loop {
            if let Some(data) = secrets.get_opt("kedaorg-certs").await?.and_then(|s| s.data)
                && ["ca.crt", "tls.crt", "tls.key"]
                    .iter()
                    .all(|k| data.contains_key(*k))
            {
                break data;
            }
            if waiting.elapsed() > Duration::from_secs(60) {
                bail!(
                    "the operator did not issue Secret {ns}/kedaorg-certs within 60 s:\n{}",
                    op.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        };
        for (key, value) in &certs {
            std::fs::write(dir.join(key), &value.0)?;
        }
    }
    let env = [
        ("WATCH_NAMESPACE", ns),
        ("KEDA_CLUSTER_OBJECT_NAMESPACE", ns),
        ("POD_NAMESPACE", ns),
    ];
    let https_port = free_port(NODE_IP)?.to_string();
    let apiserver_health = format!("127.0.0.1:{}", free_port("127.0.0.1")?);
    let webhook_port = free_port(NODE_IP)?;
    let webhook_port_s = webhook_port.to_string();
    let webhook_health = format!("127.0.0.1:{}", free_port("127.0.0.1")?);
    let webhook_metrics = format!("127.0.0.1:{}", free_port("127.0.0.1")?);
    let authority = format!("keda-operator.{ns}.svc.cluster.local");
    let (mut metrics_apiserver, mut webhooks, apiserver_ready) =
        if implementation == versus::KEDA_RS {
            let m = KedaProcess::start(
                &format!("{ns}-metrics-apiserver"),
                &[
                    "metrics-apiserver",
                    "--secure-port",
                    &https_port,
                    "--bind-address",
                    NODE_IP,
                    "--cert-dir",
                    &dir_s,
                    "--client-ca-file",
                    &file("ca.crt"),
                    "--metrics-service-address",
                    grpc,
                    "--metrics-service-grpc-authority",
                    &authority,
                    "--metrics-bind-address",
                    &apiserver_health,
                ],
                &env,
            )?;
            let w = KedaProcess::start(
                &format!("{ns}-webhooks"),
                &[
                    "admission-webhooks",
                    "--bind-address",
                    NODE_IP,
                    "--port",
                    &webhook_port_s,
                    "--cert-dir",
                    &dir_s,
                    "--health-probe-bind-address",
                    &webhook_health,
                    "--metrics-bind-address",
                    &webhook_metrics,
                ],
                &env,
            )?;
            (m, w, format!("http://{apiserver_health}/metrics"))
        } else {
            let env = [
                env[0],
                env[1],
                env[2],
                ("KUBECONFIG", admin_kubeconfig.as_str()),
            ];
            let port = free_port("127.0.0.1")?.to_string();
            let m = KedaProcess::start_exe(
                &s.upstream.join("bin/keda-adapter"),
                &format!("{ns}-metrics-apiserver"),
                &[
                    "--secure-port",
                    &https_port,
                    "--bind-address",
                    NODE_IP,
                    "--cert-dir",
                    &dir_s,
                    "--tls-cert-file",
                    &file("tls.crt"),
                    "--tls-private-key-file",
                    &file("tls.key"),
                    "--client-ca-file",
                    &file("ca.crt"),
                    "--metrics-service-address",
                    grpc,
                    "--port",
                    &port,
                    "--lister-kubeconfig",
                    &admin_kubeconfig,
                    "--authentication-kubeconfig",
                    &admin_kubeconfig,
                    "--authorization-kubeconfig",
                    &admin_kubeconfig,
                ],
                &env,
            )?;
            let w = KedaProcess::start_exe(
                &s.upstream.join("bin/keda-admission-webhooks"),
                &format!("{ns}-webhooks"),
                &[
                    "--zap-log-level=info",
                    "--zap-encoder=console",
                    "--cert-dir",
                    &dir_s,
                    "--port",
                    &webhook_port_s,
                    "--health-probe-bind-address",
                    &webhook_health,
                    "--metrics-bind-address",
                    &webhook_metrics,
                ],
                &env,
            )?;
            (m, w, format!("http://127.0.0.1:{port}/metrics"))
        };
    wait_http_ok(
        &apiserver_ready,
        &mut metrics_apiserver,
        "the metrics API server",
    )
    .await?;
    wait_http_ok(
        &format!("http://{webhook_health}/readyz"),
        &mut webhooks,
        "the webhooks",
    )
    .await?;
    apply(
        ns,
        &format!(
            "apiVersion: v1\nkind: Service\nmetadata: {{name: {METRICS_SERVICE}}}\nspec:\n  ports:\n  - {{name: https, port: 443, targetPort: 6443, protocol: TCP}}\n---\n\
             apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: {METRICS_SERVICE}-bench\n  labels: {{kubernetes.io/service-name: {METRICS_SERVICE}}}\n\
             addressType: IPv4\nendpoints:\n- addresses: [\"{NODE_IP}\"]\n  conditions: {{ready: true}}\nports:\n- {{name: https, port: {https_port}, protocol: TCP}}\n"
        ),
    )?;
    let ca_pem = std::fs::read(dir.join("ca.crt"))?;
    let ca_bundle = serde_json::to_value(k8s_openapi::ByteString(ca_pem.clone()))?;
    kubectl_ok(
        &["apply", "--server-side", "--force-conflicts", "-f", "-"],
        Some(&format!(
            "apiVersion: apiregistration.k8s.io/v1\nkind: APIService\nmetadata: {{name: {APISERVICE}}}\nspec:\n  group: external.metrics.k8s.io\n  version: v1beta1\n  groupPriorityMinimum: 100\n  versionPriority: 100\n  caBundle: {ca_bundle}\n  service: {{name: {METRICS_SERVICE}, namespace: {ns}, port: 443}}\n"
        )),
    )?;
    let companions = Companions {
        metrics_apiserver,
        webhooks,
        webhook_url: format!(
            "https://{WEBHOOK_SERVICE}.{ns}.svc:{webhook_port}/validate-keda-sh-v1alpha1-scaledobject"
        ),
        webhook_addr: std::net::SocketAddr::new(NODE_IP.parse()?, webhook_port),
        ca_pem,
        _apiservice: apiservice,
    };
    let waiting = Instant::now();
    loop {
        let out = kubectl(
            &["get", "--raw", "/apis/external.metrics.k8s.io/v1beta1"],
            None,
        )?;
        if out.status.success() {
            break;
        }
        if waiting.elapsed() > Duration::from_secs(120) {
            bail!(
                "external.metrics.k8s.io/v1beta1 did not answer within 120 s: {}\n--- metrics API server ---\n{}",
                String::from_utf8_lossy(&out.stderr),
                companions.metrics_apiserver.log_tail(),
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Ok(companions)
}

/// p99 of `external.metrics.k8s.io` reads through the aggregation layer at [`METRICS_RATE`] per second for
/// [`METRICS_SECS`], first of the uncached metrics-api objects, then of the cached ones; RSS of the metrics
/// API server after both.
async fn measure_metrics(
    c: &Client,
    ns: &str,
    s: &Settings,
    companions: &Companions,
    run: &mut Run,
) -> Result<()> {
    let path = |i: usize| {
        format!(
            "/apis/external.metrics.k8s.io/v1beta1/namespaces/{ns}/s0-metric-api-value?labelSelector=scaledobject.keda.sh%2Fname%3Dso{i}"
        )
    };
    let uncached: Vec<String> = (0..s.n).filter(|i| i % 4 == 0).map(path).collect();
    let cached: Vec<String> = (0..s.n).filter(|i| i % 4 == 2).map(path).collect();
    for (field, paths, label) in [
        ("metrics_p99_ms", uncached, "uncached"),
        ("metrics_cached_p99_ms", cached, "cached"),
    ] {
        if paths.is_empty() {
            continue;
        }
        let l =
            keda_e2e::load::paced_gets(c, &paths, METRICS_RATE, Duration::from_secs(METRICS_SECS))
                .await?;
        println!(
            "  external metrics, {label}: {} ok, {} failed; p50 {:.1} ms, p99 {:.1} ms{}",
            l.ok_ms.len(),
            l.failed,
            l.p(0.5),
            l.p(0.99),
            l.first_error
                .as_deref()
                .map(|e| format!(" (first failure: {e})"))
                .unwrap_or_default()
        );
        // A p99 over failures would flatter a server that fails fast.
        if l.failed == 0 {
            run.set(field, l.p(0.99));
        }
    }
    let m = proc_stat(companions.metrics_apiserver.pid());
    run.set("metrics_apiserver_rss_mib", mib(m.rss_kib));
    println!(
        "  metrics API server RSS {:.1} MiB ({:.1} anonymous)",
        mib(m.rss_kib),
        mib(m.anon_kib)
    );
    Ok(())
}

/// [`WEBHOOK_BURST`] AdmissionReviews (updates of the namespace's ScaledObjects to themselves, which
/// both webhooks allow) sent straight to the webhook server, 32 at a time; p99 and RSS after.
async fn measure_webhooks(
    c: &Client,
    ns: &str,
    companions: &Companions,
    run: &mut Run,
) -> Result<()> {
    let sos: Api<ScaledObject> = Api::namespaced(c.clone(), ns);
    let reviews: Vec<serde_json::Value> = sos
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .enumerate()
        .map(|(i, mut so)| {
            so.metadata.managed_fields = None;
            let mut v = serde_json::to_value(&so)?;
            v["apiVersion"] = "keda.sh/v1alpha1".into();
            v["kind"] = "ScaledObject".into();
            Ok(keda_e2e::load::scaled_object_update_review(
                &format!("bench-{i}"),
                &v,
            ))
        })
        .collect::<Result<_>>()?;
    if reviews.is_empty() {
        bail!("no ScaledObjects in {ns} to review");
    }
    let before = proc_stat(companions.webhooks.pid());
    let host = format!("{WEBHOOK_SERVICE}.{ns}.svc");
    let b = keda_e2e::load::webhook_burst(
        &companions.webhook_url,
        &host,
        companions.webhook_addr,
        &companions.ca_pem,
        &reviews,
        WEBHOOK_BURST,
        CONCURRENCY,
    )
    .await?;
    let after = proc_stat(companions.webhooks.pid());
    println!(
        "  webhook burst: {} allowed, {} denied, {} failed; p50 {:.1} ms, p99 {:.1} ms; RSS {:.1} MiB before, {:.1} after (peak {:.1}){}{}",
        b.allowed,
        b.denied,
        b.latencies.failed,
        b.latencies.p(0.5),
        b.latencies.p(0.99),
        mib(before.rss_kib),
        mib(after.rss_kib),
        mib(after.hwm_kib),
        b.first_denial
            .as_deref()
            .map(|e| format!(" (first denial: {e})"))
            .unwrap_or_default(),
        b.latencies
            .first_error
            .as_deref()
            .map(|e| format!(" (first failure: {e})"))
            .unwrap_or_default()
    );
    if b.latencies.failed == 0 && b.denied == 0 {
        run.set("webhook_p99_ms", b.latencies.p(0.99));
        run.set("webhook_burst_rss_mib", mib(after.rss_kib));
    }
    Ok(())
}

/// The top program points of a dhat heap profile (`keda` built with `--features dhat-heap`) by bytes
/// live at the end (t-end: the operator stopped at steady state with all objects present), each with its
/// innermost frames from this workspace's crates (`keda…`) or, if none, its innermost frames.
fn heap_report(path: &Path, top: usize) -> Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the heap profile {}", path.display()))?;
    let v: serde_json::Value = serde_json::from_str(&text)?;
    let frames: Vec<&str> = v["ftbl"]
        .as_array()
        .context("dhat profile without ftbl")?
        .iter()
        .map(|f| f.as_str().unwrap_or(""))
        .collect();
    let mut pps: Vec<(u64, u64, Vec<usize>)> = v["pps"]
        .as_array()
        .context("dhat profile without pps")?
        .iter()
        .map(|pp| {
            (
                pp["eb"].as_u64().unwrap_or(0),
                pp["ebk"].as_u64().unwrap_or(0),
                pp["fs"]
                    .as_array()
                    .map(|fs| {
                        fs.iter()
                            .filter_map(|f| f.as_u64())
                            .map(|f| f as usize)
                            .collect()
                    })
                    .unwrap_or_default(),
            )
        })
        .collect();
    let total: u64 = pps.iter().map(|p| p.0).sum();
    pps.sort_by_key(|p| std::cmp::Reverse(p.0));
    let mut out = format!(
        "  heap live at the end: {:.1} MiB in {} blocks; top {top} allocation sites:\n",
        total as f64 / 1048576.0,
        pps.iter().map(|p| p.1).sum::<u64>()
    );
    for (bytes, blocks, fs) in pps.iter().take(top) {
        let names: Vec<&str> = fs.iter().filter_map(|i| frames.get(*i).copied()).collect();
        let ours: Vec<&str> = names
            .iter()
            .filter(|f| f.contains(" keda_") || f.contains(" keda::"))
            .take(3)
            .copied()
            .collect();
        let shown = if ours.is_empty() {
            names.iter().skip(1).take(3).copied().collect()
        } else {
            ours
        };
        out.push_str(&format!(
            "    {:6.2} MiB {:5.1}% {blocks:>7} blocks  {}\n",
            *bytes as f64 / 1048576.0,
            *bytes as f64 * 100.0 / total.max(1) as f64,
            shown
                .iter()
                .map(|f| f.split_once(": ").map_or(*f, |(_, f)| f))
                .collect::<Vec<_>>()
                .join(" <- ")
        ));
    }
    Ok(out)
}

async fn create_workload(c: &Client, ns: &str, s: &Settings) -> Result<()> {
    let deployments: Api<Deployment> = Api::namespaced(c.clone(), ns);
    let sos: Api<ScaledObject> = Api::namespaced(c.clone(), ns);
    let polling = s.polling;
    futures::stream::iter(0..s.n)
        .map(|i| {
            let (deployments, sos, url) = (deployments.clone(), sos.clone(), s.url.clone());
            async move {
                let cron = i % 2 == 1;
                let replicas = if cron { 0 } else { 1 };
                let d: Deployment = serde_yaml_ng::from_str(&format!(
                    "metadata: {{name: w{i}}}\nspec:\n  replicas: {replicas}\n  selector: {{matchLabels: {{app: w{i}}}}}\n  template:\n    metadata: {{labels: {{app: w{i}}}}}\n    spec: {{containers: [{{name: a, image: x}}]}}\n"
                ))?;
                deployments.create(&PostParams::default(), &d).await?;
                let trigger = if cron {
                    "  minReplicaCount: 0\n  triggers:\n  - type: cron\n    metadata: {timezone: UTC, start: \"0 0 1 1 *\", end: \"0 1 1 1 *\", desiredReplicas: \"1\"}\n".to_owned()
                } else {
                    let cached = i % 4 == 2;
                    format!("  minReplicaCount: 1\n  triggers:\n  - type: metrics-api\n    useCachedMetrics: {cached}\n    metadata: {{url: \"{url}\", valueLocation: value, targetValue: \"10\"}}\n")
                };
                let so: ScaledObject = serde_yaml_ng::from_str(&format!(
                    "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {{name: so{i}}}\nspec:\n  scaleTargetRef: {{name: w{i}}}\n  pollingInterval: {polling}\n  maxReplicaCount: 10\n{trigger}"
                ))?;
                sos.create(&PostParams::default(), &so).await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect::<()>()
        .await
}

async fn ready_count(c: &Client, ns: &str) -> Result<(usize, usize)> {
    let sos: Api<ScaledObject> = Api::namespaced(c.clone(), ns);
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(c.clone(), ns);
    let ready = sos
        .list(&ListParams::default())
        .await?
        .items
        .iter()
        .filter(|so| {
            so.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|c| c.iter().any(|c| c.r#type == "Ready" && c.status == "True"))
        })
        .count();
    let hpa = hpas
        .list_metadata(&ListParams::default())
        .await?
        .items
        .len();
    Ok((ready, hpa))
}

/// Leaves nothing behind after a failed run: the ScaledObjects' finalizers are dropped (their operator is
/// gone) and the namespace is deleted without waiting.
async fn discard(c: &Client, ns: &str) {
    let sos: Api<ScaledObject> = Api::namespaced(c.clone(), ns);
    let _ = sos
        .delete_collection(&Default::default(), &ListParams::default())
        .await;
    let patch = serde_json::json!({"metadata": {"finalizers": null}});
    if let Ok(list) = sos.list_metadata(&ListParams::default()).await {
        futures::stream::iter(list.items.into_iter().filter_map(|o| o.metadata.name))
            .for_each_concurrent(CONCURRENCY, |name| {
                let (sos, patch) = (sos.clone(), patch.clone());
                async move {
                    let _ = sos
                        .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                        .await;
                }
            })
            .await;
    }
    let _ = Api::<Namespace>::all(c.clone())
        .delete(ns, &Default::default())
        .await;
}

async fn one(c: &Client, implementation: &str, s: &Settings) -> Result<Run> {
    let ns = namespace(c, "vs").await?;
    let result = measure(c, implementation, s, &ns).await;
    if result.is_err() {
        discard(c, &ns).await;
    }
    result
}

async fn measure(c: &Client, implementation: &str, s: &Settings, ns: &str) -> Result<Run> {
    let mut run = Run::new(implementation);
    let ns = ns.to_owned();
    println!("== {implementation} in namespace {ns}");
    let dir = root().join("target/keda-e2e-certs").join(&ns);
    std::fs::create_dir_all(&dir)?;
    let tally = Arc::new(Tally::default());
    let kubeconfig = proxied_kubeconfig(
        &dir,
        "operator",
        &counting_proxy(s.proxy, tally.clone()).await?,
    )?;
    let metrics_addr = format!("127.0.0.1:{}", free_port("127.0.0.1")?);
    let grpc = format!("127.0.0.1:{}", free_port("127.0.0.1")?);
    let mut op = start_operator(
        implementation,
        s,
        &ns,
        &dir,
        &kubeconfig,
        &metrics_addr,
        &grpc,
    )?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?;
    let metrics_url = format!("http://{metrics_addr}/metrics");
    let get = |url: String| {
        let http = http.clone();
        async move {
            match http.get(&url).send().await {
                Ok(r) if r.status().is_success() => r.text().await.ok(),
                _ => None,
            }
        }
    };
    // Up when its metrics endpoint answers; then 20 s for its caches and controllers to start: upstream
    // starts its ScaledObject workers about 9 s after serving metrics, and ScaledObjects created before
    // then were seen never reconciled (95 of 1,000 within 30 min).
    let waiting = Instant::now();
    while get(metrics_url.clone()).await.is_none() {
        if !op.is_running() || waiting.elapsed() > Duration::from_secs(60) {
            bail!(
                "{implementation} did not serve {metrics_url} within 60 s:\n{}",
                op.log_tail()
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    tokio::time::sleep(Duration::from_secs(20)).await;
    let companions = start_companions(c, implementation, s, &ns, &dir, &grpc, &mut op).await?;
    let idle = proc_stat(op.pid());
    println!(
        "  idle RSS {:.1} MiB ({:.1} anonymous)",
        mib(idle.rss_kib),
        mib(idle.anon_kib)
    );

    let started = Instant::now();
    create_workload(c, &ns, s).await?;
    println!(
        "  created {n} Deployments + {n} ScaledObjects in {:.1} s",
        started.elapsed().as_secs_f64(),
        n = s.n
    );
    let limit = s.ready_limit;
    loop {
        let (ready, hpa) = ready_count(c, &ns).await?;
        if ready == s.n && hpa == s.n {
            run.set("ready_s", started.elapsed().as_secs_f64());
            break;
        }
        if !op.is_running() {
            bail!("{implementation} exited:\n{}", op.log_tail());
        }
        if started.elapsed() > limit {
            println!(
                "  gave up: {ready}/{} Ready, {hpa} HPAs after {limit:?}",
                s.n
            );
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let at_ready = proc_stat(op.pid());
    run.set("peak_rss_mib", mib(at_ready.hwm_kib));
    println!(
        "  all Ready with HPAs after {:.1} s; RSS {:.1} MiB, peak {:.1} MiB",
        run.get("ready_s").unwrap_or(f64::NAN),
        mib(at_ready.rss_kib),
        mib(at_ready.hwm_kib)
    );

    // Steady state: the HPA controller has synced every HPA (each has conditions; until then the
    // operators mirror its first results into the ScaledObjects' HPAActive condition), then one interval
    // more for the first ticks.
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(c.clone(), &ns);
    let syncing = Instant::now();
    loop {
        let unsynced = hpas
            .list(&ListParams::default())
            .await?
            .items
            .iter()
            .filter(|h| {
                h.status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_none_or(|c| c.is_empty())
            })
            .count();
        if unsynced == 0 || syncing.elapsed() > Duration::from_secs(300) {
            println!(
                "  HPA controller synced all but {unsynced} HPAs {:.1} s after all were Ready",
                syncing.elapsed().as_secs_f64()
            );
            break;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    tokio::time::sleep(Duration::from_secs(s.polling + 5)).await;
    let s0 = proc_stat(op.pid());
    let polls0 = s.polls.load(Ordering::Relaxed);
    let t0 = tally.snapshot();
    let start = Instant::now();
    let mut drifts = Vec::new();
    while start.elapsed() < s.steady {
        tokio::time::sleep(Duration::from_secs(2)).await;
        if let Some(text) = get(metrics_url.clone()).await {
            drifts.extend(samples(&text, "keda_internal_scale_loop_latency_seconds"));
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let t1 = tally.snapshot();
    let http_polls = (s.polls.load(Ordering::Relaxed) - polls0) as f64;
    let s1 = proc_stat(op.pid());
    let cron_ticks = (s.n / 2) as f64 * elapsed / s.polling as f64;
    let cpu = s1.cpu_seconds - s0.cpu_seconds;
    run.set("rss_mib", mib(s1.rss_kib));
    run.set("anon_mib", mib(s1.anon_kib));
    run.set(
        "cpu_s_per_1k_polls",
        cpu / (http_polls + cron_ticks) * 1000.0,
    );
    drifts.sort_by(f64::total_cmp);
    run.set("drift_p99_ms", percentile(&drifts, 0.99) * 1000.0);
    let delta: keda_e2e::apicount::Counts = t1
        .iter()
        .map(|(k, v)| (k.clone(), v - t0.get(k).copied().unwrap_or(0.0)))
        .collect();
    let (reads, writes) = versus::reads_writes(&delta);
    run.set("api_reads_per_s", reads / elapsed);
    run.set("api_writes_per_s", writes / elapsed);
    println!(
        "  steady {elapsed:.0} s: CPU {cpu:.2} s for {http_polls:.0} HTTP polls + {cron_ticks:.0} cron ticks; RSS {:.1} MiB ({:.1} anonymous); API {:.3} reads/s, {:.3} writes/s; drift p99 {:.1} ms ({} samples)",
        mib(s1.rss_kib),
        mib(s1.anon_kib),
        reads / elapsed,
        writes / elapsed,
        percentile(&drifts, 0.99) * 1000.0,
        drifts.len()
    );

    let mut by_request: Vec<String> = delta
        .iter()
        .filter(|(_, v)| **v > 0.0)
        .map(|((verb, resource), v)| format!("{verb} {resource} {:.3}/s", v / elapsed))
        .collect();
    by_request.sort();
    println!("  operator requests: {}", by_request.join(", "));

    measure_metrics(c, &ns, s, &companions, &mut run).await?;
    measure_webhooks(c, &ns, &companions, &mut run).await?;
    drop(companions);
    if s.heap_profile && implementation == versus::KEDA_RS {
        // A heap-profiling build writes its profile on a normal exit: stop it with every object present,
        // then drop the finalizers it can no longer remove.
        op.terminate_within(Duration::from_secs(600));
        print!("{}", heap_report(&dir.join("dhat-heap.json"), 25)?);
        let kept = root().join("target/bench/dhat-heap.json");
        std::fs::create_dir_all(root().join("target/bench"))?;
        std::fs::rename(dir.join("dhat-heap.json"), &kept)?;
        println!("  profile kept in {}", kept.display());
        discard(c, &ns).await;
        return Ok(run);
    }

    // The operator must outlive its ScaledObjects (it removes their finalizers); then the namespace goes,
    // and the next implementation starts on a quiet control plane.
    let deleting = Instant::now();
    let sos: Api<ScaledObject> = Api::namespaced(c.clone(), &ns);
    // At 10,000 objects a 2-core control plane can drop these requests (the results are measured by
    // now): a failed delete is sent again, a failed count is read again.
    let mut delete_sent = false;
    let mut left = s.n;
    while left > 0 && deleting.elapsed() < Duration::from_secs(900) && op.is_running() {
        if !delete_sent {
            match sos
                .delete_collection(&Default::default(), &ListParams::default())
                .await
            {
                Ok(_) => delete_sent = true,
                Err(e) => println!("  deleting the ScaledObjects: {e}; trying again"),
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        match sos.list_metadata(&ListParams::default()).await {
            Ok(list) => left = list.items.len(),
            Err(e) => println!("  counting the ScaledObjects left: {e}; trying again"),
        }
    }
    println!(
        "  deleted the ScaledObjects in {:.1} s ({left} left)",
        deleting.elapsed().as_secs_f64()
    );
    op.terminate();
    let namespaces = Api::<Namespace>::all(c.clone());
    namespaces.delete(&ns, &Default::default()).await?;
    let deleting = Instant::now();
    while namespaces.get_opt(&ns).await?.is_some() && deleting.elapsed() < Duration::from_secs(600)
    {
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(run)
}

#[tokio::main]
async fn main() -> Result<()> {
    let env = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let n = env("BENCH_N", 1000) as usize;
    let polling = env("BENCH_POLLING", 30).max(1);
    // The window must hold keda-rs's periodic reconcile of every object (every 300 s) or its reads are
    // missed: a 121 s window reported 0 reads/s where a 332 s one counts 9.1.
    let steady = Duration::from_secs(env("BENCH_STEADY_SECS", (4 * polling).max(330)));
    let upstream = PathBuf::from(
        std::env::var("UPSTREAM_KEDA_DIR")
            .context("UPSTREAM_KEDA_DIR is not set (the output of hack/upstream/build.sh)")?,
    );
    let all = [versus::KEDA_RS, versus::BASELINE, "upstream-2.20.2-qps100"];
    let impls: Vec<&str> = match std::env::var("BENCH_IMPLS") {
        Ok(list) => {
            let wanted: Vec<&str> = list.split(',').map(str::trim).collect();
            if let Some(bad) = wanted.iter().find(|w| !all.contains(w)) {
                bail!("BENCH_IMPLS: unknown implementation {bad:?}; known: {all:?}");
            }
            all.into_iter().filter(|i| wanted.contains(i)).collect()
        }
        Err(_) => all.to_vec(),
    };
    ensure_crds().await?;
    apply_upstream_crds(&upstream)?;
    let c = client().await?;
    let (base, polls) = counting_endpoint(3.0).await?;
    let proxy = KubectlProxy::start()?;
    let settings = Settings {
        n,
        polling,
        steady,
        ready_limit: Duration::from_secs(env("BENCH_READY_LIMIT_SECS", 1800)),
        url: format!("{base}/m"),
        polls,
        proxy: proxy.addr,
        upstream,
        heap_profile: std::env::var("BENCH_HEAP").is_ok_and(|v| v == "1"),
    };
    println!(
        "side-by-side operator bench: {n} ScaledObjects (half metrics-api, half cron), pollingInterval {polling} s, steady window {} s",
        steady.as_secs()
    );
    let out = root().join("target/bench");
    // BENCH_KEEP=1: the implementations not run now keep their entries of an earlier operator.json with
    // the same objects and polling interval (a table completed in parts says so in docs/performance.md).
    let mut kept = Vec::new();
    if std::env::var("BENCH_KEEP").is_ok_and(|v| v == "1")
        && let Ok(text) = std::fs::read_to_string(out.join("operator.json"))
    {
        kept = versus::previous_runs(&serde_json::from_str(&text)?, n, polling);
        kept.retain(|r| !impls.contains(&r.implementation.as_str()));
        for r in &kept {
            println!(
                "keeping the earlier run of {} from operator.json",
                r.implementation
            );
        }
    }
    let mut fresh: Vec<Run> = Vec::new();
    std::fs::create_dir_all(&out)?;
    // The files are rewritten after each implementation, so a run cut short keeps what it measured.
    for implementation in &impls {
        fresh.push(one(&c, implementation, &settings).await?);
        if settings.heap_profile {
            // A profiling build's numbers are not keda-rs's: nothing is written.
            continue;
        }
        let runs: Vec<Run> = all
            .iter()
            .filter_map(|name| {
                fresh
                    .iter()
                    .chain(&kept)
                    .find(|r| r.implementation == *name)
                    .cloned()
            })
            .collect();
        std::fs::write(
            out.join("operator.json"),
            serde_json::to_string_pretty(&versus::to_json(n, polling, &runs))? + "\n",
        )?;
        std::fs::write(out.join("operator.svg"), versus::svg(n, polling, &runs))?;
        if fresh.len() == impls.len() {
            println!();
            print!("{}", versus::table(&runs));
            println!("(null / '-': not measured, or a pass with failures: see the lines above)");
        }
    }
    println!(
        "wrote {} and {}",
        out.join("operator.json").display(),
        out.join("operator.svg").display()
    );
    Ok(())
}
