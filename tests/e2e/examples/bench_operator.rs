//! Operator benchmark on the local control plane (prints numbers; asserts nothing about time):
//! N Deployments (1 replica) + N ScaledObjects (`minReplicaCount: 1`) with a metrics-api trigger against a
//! loopback HTTP server answering 3 (target 10, so every HPA stays at 1 replica and keeps fetching), first
//! with `pollingInterval: 30` and then, after patching every ScaledObject, with `pollingInterval: 1`.
//!
//! Two keda processes run, as the chart runs them: `keda operator` (leader election, certificates issued
//! into Secret `kedaorg-certs` with `--enable-cert-rotation`, gRPC metrics service) and `keda
//! metrics-apiserver` behind APIService `v1beta1.external.metrics.k8s.io` (Service without selector +
//! EndpointSlice to this namespace's address, caBundle from the Secret). So the real HPA controller of
//! kube-controller-manager fetches every object's external metric each sync period (15 s on the local
//! control plane) through the aggregator → metrics-apiserver → operator gRPC `GetMetrics`. The APIService
//! exists once per cluster: the bench holds `cluster_scoped_lock` from before creating it until it is
//! deleted (e2e tests that need it wait meanwhile).
//!
//! Prints for each steady-state window: operator RSS, CPU-seconds per 1,000 polls (polls = every request
//! to the metric endpoint: the scale loops' polls and the live samples behind the HPA's fetches), scale-loop
//! tick drift (the operator's own `keda_internal_scale_loop_latency_seconds`, sampled every 2 s), the HPA
//! fetches per second counted by the metrics-apiserver itself (its `apiserver_request_total` for
//! `externalmetrics` and its gRPC client counter, on its `/metrics`), and the kube-apiserver requests per
//! second by verb and resource.
//!
//! Method for the request rates. The kube-apiserver's `apiserver_request_total` (deltas over the window
//! divided by its length) counts every request by verb, group, resource and subresource, but does not say
//! which client sent it (there is no audit log on the local control plane, and a baseline window without
//! the keda processes is not comparable: the HPAs then fail their fetches, change their conditions and emit
//! Events). So each keda process gets its own kubeconfig whose server is a counting TCP proxy in this bench
//! (`http://127.0.0.1:<port>`, one per process) in front of `kubectl proxy`, which forwards to the
//! kube-apiserver with the admin credentials the processes would otherwise use. The counting proxy forwards
//! bytes unchanged and reads only the HTTP/1.1 request heads, classifying each request exactly as the
//! kube-apiserver labels it (GET/LIST/WATCH by path and `watch=`, POST, PUT, PATCH, APPLY by
//! content type, DELETE/DELETECOLLECTION). The table shows, per verb and resource: all clients (the
//! kube-apiserver's counter), the operator, the metrics-apiserver, and the difference (others: the HPA
//! controller, kwok, the other controllers, this bench, e2e tests running meanwhile). The kube-apiserver
//! counts a WATCH when it ends while the proxy counts it when it starts, so "others" can be slightly negative
//! for watches. The kube-apiserver does not count the requests it proxies to the metrics-apiserver
//! (`external.metrics.k8s.io`) in `apiserver_request_total`: the fetches come from the metrics-apiserver's own
//! counter, with its mean time per fetch. The HPA controller fetches less often than once per HPA per sync
//! period when it cannot keep up: on the local control plane kube-controller-manager runs with its default
//! client rate limit (`--kube-api-qps` 20), and each sync also GETs the target's `/scale` (measured at
//! 1,000 objects: 20 syncs/s, i.e. every HPA every ~50 s). Leases (coordination.k8s.io) are left out of the
//! totals and printed on their own line: the operator renews its leader Lease every retry period (2 s) by
//! design. The goal (issue 13): under 1 request/s from the keda processes at 1,000 ScaledObjects with the
//! HPAs syncing every 15 s.
//!
//! Run: `cargo xtask bench operator` (`BENCH_N`, `BENCH_STEADY_SECS` override 1000 and 120; `KEDA_BIN`
//! picks the `keda` binary, e.g. a debug build: request counts do not depend on the build profile).
//! By hand: `cargo xtask cluster exec -- env KEDA_BIN=<keda> RUST_LOG=warn target/debug/examples/bench_operator`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use keda_api::ScaledObject;
use keda_e2e::apicount::{
    Counts, KubectlProxy, Tally, counting_proxy, proxied_kubeconfig, resource_key,
};
use keda_e2e::bench::{counting_endpoint, proc_stat};
use keda_e2e::{
    KedaProcess, NODE_IP, apply, client, cluster_scoped_lock, ensure_crds, free_port, kubectl,
    kubectl_ok, namespace, root,
};
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};

/// Concurrent requests when creating or patching the objects (the operator is not involved).
const CONCURRENCY: usize = 32;
const APISERVICE: &str = "v1beta1.external.metrics.k8s.io";
const METRICS_SERVICE: &str = "keda-operator-metrics-apiserver";

/// `name{labels} value` lines of a Prometheus text exposition, for one metric name.
fn samples<'a>(text: &'a str, metric: &str) -> Vec<(&'a str, f64)> {
    text.lines()
        .filter(|l| l.starts_with(metric) && l[metric.len()..].starts_with(['{', ' ']))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series, value.parse().ok()?))
        })
        .collect()
}

fn label<'a>(series: &'a str, name: &str) -> &'a str {
    let key = format!("{name}=\"");
    series
        .find(&key)
        .map(|i| &series[i + key.len()..])
        .and_then(|rest| rest.split('"').next())
        .unwrap_or("")
}

fn is_lease(resource: &str) -> bool {
    resource.starts_with("leases.coordination.k8s.io")
}

/// The verbs in the order they are printed, with the kube-apiserver's label and the Kubernetes verb name.
const VERBS: [(&str, &str); 9] = [
    ("GET", "get"),
    ("LIST", "list"),
    ("WATCH", "watch"),
    ("POST", "create"),
    ("PUT", "update"),
    ("PATCH", "patch"),
    ("APPLY", "apply"),
    ("DELETE", "delete"),
    ("DELETECOLLECTION", "deletecollection"),
];

fn verb_name(label: &str) -> String {
    VERBS
        .iter()
        .find(|(l, _)| *l == label)
        .map(|(_, n)| (*n).to_owned())
        .unwrap_or_else(|| label.to_lowercase())
}

fn verb_rank(label: &str) -> usize {
    VERBS
        .iter()
        .position(|(l, _)| *l == label)
        .unwrap_or(VERBS.len())
}

/// Requests the kube-apiserver has served so far, from its own `apiserver_request_total`.
async fn apiserver_requests(c: &Client) -> Result<Counts> {
    let req = http::Request::get("/metrics").body(Vec::new())?;
    let text = c
        .request_text(req)
        .await
        .context("reading the kube-apiserver's /metrics")?;
    let mut out = Counts::new();
    for (series, v) in samples(&text, "apiserver_request_total") {
        let key = resource_key(
            label(series, "group"),
            label(series, "resource"),
            label(series, "subresource"),
        );
        *out.entry((label(series, "verb").to_owned(), key))
            .or_insert(0.0) += v;
    }
    Ok(out)
}

fn delta(after: &Counts, before: &Counts) -> Counts {
    after
        .iter()
        .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0.0)))
        .filter(|(_, d)| *d != 0.0)
        .collect()
}

// ---------------------------------------------------------------------------------------------------------

/// The resourceVersion of every ScaledObject and the generation of every HPA in `ns` (only the operator
/// writes either; the HPA controller's status writes do not change the generation).
async fn object_versions(c: &Client, ns: &str) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    let sos: Api<ScaledObject> = Api::namespaced(c.clone(), ns);
    for so in sos.list(&ListParams::default()).await?.items {
        out.insert(
            format!("so/{}", so.metadata.name.unwrap_or_default()),
            so.metadata.resource_version.unwrap_or_default(),
        );
    }
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(c.clone(), ns);
    for h in hpas.list(&ListParams::default()).await?.items {
        out.insert(
            format!("hpa/{}", h.metadata.name.unwrap_or_default()),
            h.metadata.generation.unwrap_or_default().to_string(),
        );
    }
    Ok(out)
}

/// HPAs in `ns` that are ScalingActive and hold a current external metric value (so they fetch).
async fn fetching_hpas(c: &Client, ns: &str) -> Result<usize> {
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(c.clone(), ns);
    Ok(hpas
        .list(&ListParams::default())
        .await?
        .items
        .iter()
        .filter_map(|h| h.status.as_ref())
        .filter(|s| {
            s.conditions.as_ref().is_some_and(|c| {
                c.iter()
                    .any(|c| c.type_ == "ScalingActive" && c.status == "True")
            }) && s
                .current_metrics
                .as_ref()
                .is_some_and(|m| m.iter().any(|m| m.external.is_some()))
        })
        .count())
}

/// Occurrences of Events the operator reported in `ns` so far (each repeat of an Event is a write).
async fn operator_events(c: &Client, ns: &str) -> Result<i64> {
    let events: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(c.clone(), ns);
    Ok(events
        .list(&ListParams::default())
        .await?
        .items
        .iter()
        .filter(|e| e.reporting_component.as_deref() == Some("keda-operator"))
        .map(|e| {
            e.series
                .as_ref()
                .and_then(|s| s.count)
                .or(e.count)
                .unwrap_or(1)
                .max(1) as i64
        })
        .sum())
}

async fn get_text(http: &reqwest::Client, url: &str) -> String {
    match http.get(url).send().await {
        Ok(r) => r.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// The metrics-apiserver's own counters.
#[derive(Default)]
struct Fetches {
    /// `externalmetrics` requests served, of them not 200, and the seconds they took in total.
    requests: f64,
    failed: f64,
    seconds: f64,
    /// gRPC GetMetrics calls to the operator and the seconds they took in total.
    grpc: f64,
    grpc_seconds: f64,
}

fn fetch_counters(text: &str) -> Fetches {
    let sum = |metric: &str, key: &str, value: &str| -> f64 {
        samples(text, metric)
            .iter()
            .filter(|(s, _)| label(s, key) == value)
            .map(|(_, v)| v)
            .sum()
    };
    let (mut all, mut failed) = (0.0, 0.0);
    for (series, v) in samples(text, "apiserver_request_total") {
        if label(series, "resource") == "externalmetrics" {
            all += v;
            if label(series, "code") != "200" {
                failed += v;
            }
        }
    }
    Fetches {
        requests: all,
        failed,
        seconds: sum(
            "apiserver_request_duration_seconds_sum",
            "resource",
            "externalmetrics",
        ),
        grpc: sum(
            "keda_internal_metricsservice_grpc_client_started_total",
            "grpc_method",
            "GetMetrics",
        ),
        grpc_seconds: sum(
            "keda_internal_metricsservice_grpc_client_handling_seconds_sum",
            "grpc_method",
            "GetMetrics",
        ),
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn by_verb(counts: &Counts, elapsed: f64) -> String {
    let mut verbs: BTreeMap<(usize, String), f64> = BTreeMap::new();
    for ((verb, resource), v) in counts {
        if !is_lease(resource) {
            *verbs.entry((verb_rank(verb), verb.clone())).or_insert(0.0) += v;
        }
    }
    let total: f64 = verbs.values().sum();
    let detail: Vec<String> = verbs
        .iter()
        .map(|((_, verb), v)| format!("{} {:.3}", verb_name(verb), v / elapsed))
        .collect();
    format!(
        "{:.3} req/s{}",
        total / elapsed,
        if detail.is_empty() {
            String::new()
        } else {
            format!(" ({})", detail.join(", "))
        }
    )
}

struct Bench {
    client: Client,
    op_pid: u32,
    metrics_url: String,
    apiserver_metrics_url: String,
    http: reqwest::Client,
    polls: Arc<AtomicU64>,
    steady: Duration,
    ns: String,
    n: usize,
    operator_tally: Arc<Tally>,
    apiserver_tally: Arc<Tally>,
}

impl Bench {
    /// One steady-state window; prints its numbers.
    async fn window(&self, name: &str, polling: u64) -> Result<()> {
        let events0 = operator_events(&self.client, &self.ns).await?;
        let objects0 = object_versions(&self.client, &self.ns).await?;
        // The bench's own reads happen outside the counted interval: counters are read last here, first below.
        let fetch0 = fetch_counters(&get_text(&self.http, &self.apiserver_metrics_url).await);
        let s0 = proc_stat(self.op_pid);
        let polls0 = self.polls.load(Ordering::Relaxed);
        let op0 = self.operator_tally.snapshot();
        let ma0 = self.apiserver_tally.snapshot();
        let all0 = apiserver_requests(&self.client).await?;
        let start = Instant::now();
        let mut drifts = Vec::new();
        while start.elapsed() < self.steady {
            tokio::time::sleep(Duration::from_secs(2)).await;
            let text = get_text(&self.http, &self.metrics_url).await;
            drifts.extend(
                samples(&text, "keda_internal_scale_loop_latency_seconds")
                    .into_iter()
                    .map(|(_, v)| v),
            );
        }
        let all1 = apiserver_requests(&self.client).await?;
        let op1 = self.operator_tally.snapshot();
        let ma1 = self.apiserver_tally.snapshot();
        let elapsed = start.elapsed().as_secs_f64();
        let s1 = proc_stat(self.op_pid);
        let polls = self.polls.load(Ordering::Relaxed) - polls0;
        let fetch1 = fetch_counters(&get_text(&self.http, &self.apiserver_metrics_url).await);
        let events = operator_events(&self.client, &self.ns).await? - events0;
        let objects1 = object_versions(&self.client, &self.ns).await?;
        let fetching = fetching_hpas(&self.client, &self.ns).await?;
        let changed = objects1
            .iter()
            .filter(|(k, v)| objects0.get(*k) != Some(*v))
            .count();
        drifts.sort_by(f64::total_cmp);

        println!("-- {name}: pollingInterval {polling} s, steady window {elapsed:.0} s");
        println!(
            "  operator RSS now / peak:          {:.1} / {:.1} MiB ({:.1} MiB anonymous)",
            s1.rss_kib as f64 / 1024.0,
            s1.hwm_kib as f64 / 1024.0,
            s1.anon_kib as f64 / 1024.0
        );
        println!(
            "  polls in the window:              {polls} ({:.1}/s: scale loops + live samples for the HPA's fetches)",
            polls as f64 / elapsed
        );
        let cpu = s1.cpu_seconds - s0.cpu_seconds;
        println!(
            "  operator CPU:                     {cpu:.2} s ({:.1} mCPU average)",
            cpu / elapsed * 1000.0
        );
        println!(
            "  CPU-seconds per 1,000 polls:      {:.3}",
            if polls > 0 {
                cpu / polls as f64 * 1000.0
            } else {
                f64::NAN
            }
        );
        println!(
            "  tick drift p50 / p99 / max:       {:.1} / {:.1} / {:.1} ms ({} samples)",
            percentile(&drifts, 0.5) * 1000.0,
            percentile(&drifts, 0.99) * 1000.0,
            drifts.last().copied().unwrap_or(f64::NAN) * 1000.0,
            drifts.len()
        );
        println!(
            "  HPA fetches (metrics-apiserver):  {:.2}/s ({:.0} in the window, {:.0} not 200; {:.2} gRPC GetMetrics/s); {fetching}/{} HPAs ScalingActive with an external value",
            (fetch1.requests - fetch0.requests) / elapsed,
            fetch1.requests - fetch0.requests,
            fetch1.failed - fetch0.failed,
            (fetch1.grpc - fetch0.grpc) / elapsed,
            self.n,
        );
        println!(
            "  mean time per fetch / GetMetrics: {:.1} / {:.1} ms (nominal fetch rate: {:.2}/s, one per HPA per 15 s sync)",
            (fetch1.seconds - fetch0.seconds) / (fetch1.requests - fetch0.requests) * 1000.0,
            (fetch1.grpc_seconds - fetch0.grpc_seconds) / (fetch1.grpc - fetch0.grpc) * 1000.0,
            self.n as f64 / 15.0,
        );
        println!(
            "  Events by the operator:           {events}; ScaledObjects/HPA specs changed in the bench namespace: {changed}"
        );

        let all = delta(&all1, &all0);
        let op = delta(&op1, &op0);
        let ma = delta(&ma1, &ma0);
        let mut keys: Vec<&(String, String)> =
            all.keys().chain(op.keys()).chain(ma.keys()).collect();
        keys.sort_by(|a, b| (verb_rank(&a.0), &a.0, &a.1).cmp(&(verb_rank(&b.0), &b.0, &b.1)));
        keys.dedup();
        let rate = |m: &Counts, k: &(String, String)| m.get(k).copied().unwrap_or(0.0) / elapsed;
        println!(
            "  kube-apiserver requests/s by verb and resource (leases apart; keda columns counted by the proxies):"
        );
        println!(
            "    {:<17} {:<48} {:>9} {:>9} {:>9} {:>9}",
            "verb", "resource", "all", "operator", "metr-api", "others"
        );
        // Rows of other clients only below 0.05/s (mostly watch restarts of the control plane) are summed.
        let (mut quiet_rows, mut quiet_rate) = (0, 0.0);
        for k in keys.iter().filter(|k| !is_lease(&k.1)) {
            let (a, o, m) = (rate(&all, k), rate(&op, k), rate(&ma, k));
            if o == 0.0 && m == 0.0 && a.abs() < 0.05 {
                quiet_rows += 1;
                quiet_rate += a;
                continue;
            }
            println!(
                "    {:<17} {:<48} {a:>9.3} {o:>9.3} {m:>9.3} {:>9.3}",
                verb_name(&k.0),
                k.1,
                a - o - m
            );
        }
        if quiet_rows > 0 {
            println!(
                "    + {quiet_rows} rows of other clients only, under 0.05/s each: {quiet_rate:.3} req/s together"
            );
        }
        let mut keda = op.clone();
        for (k, v) in &ma {
            *keda.entry(k.clone()).or_insert(0.0) += v;
        }
        println!(
            "  keda processes, Lease excluded:   {}  (goal: < 1 req/s)",
            by_verb(&keda, elapsed)
        );
        println!(
            "    operator:                       {}",
            by_verb(&op, elapsed)
        );
        println!(
            "    metrics-apiserver:              {}",
            by_verb(&ma, elapsed)
        );
        println!(
            "    all clients (kube-apiserver):   {}",
            by_verb(&all, elapsed)
        );
        let leases = |m: &Counts| {
            let mut verbs: Vec<String> = Vec::new();
            let mut total = 0.0;
            for ((verb, resource), v) in m {
                if is_lease(resource) {
                    total += v;
                    verbs.push(format!("{} {:.3}", verb_name(verb), v / elapsed));
                }
            }
            format!("{:.3} req/s ({})", total / elapsed, verbs.join(", "))
        };
        println!(
            "  Leases: operator {}; all clients {}",
            leases(&op),
            leases(&all)
        );
        Ok(())
    }
}

/// Holds the cluster-scoped lock while the bench's APIService exists; deletes the APIService when dropped.
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

/// `keda operator` for the bench namespace, as the chart runs it (certificates issued into `kedaorg-certs`).
fn start_operator(
    ns: &str,
    identity: &str,
    metrics_addr: &str,
    grpc_addr: &str,
    cert_dir: &str,
    kubeconfig: &str,
) -> Result<KedaProcess> {
    KedaProcess::start(
        &format!("{ns}-{identity}"),
        &[
            "operator",
            "--leader-elect",
            "--enable-cert-rotation=true",
            "--cert-secret-name=kedaorg-certs",
            // The bench creates the APIService with the Secret's CA; other tests own keda-admission.
            "--enable-apiservice-patching=false",
            "--enable-webhook-patching=false",
            "--cert-dir",
            cert_dir,
            "--metrics-service-bind-address",
            grpc_addr,
            "--metrics-bind-address",
            metrics_addr,
            "--health-probe-bind-address",
            "127.0.0.1:0",
        ],
        &[
            ("WATCH_NAMESPACE", ns),
            ("KEDA_CLUSTER_OBJECT_NAMESPACE", ns),
            ("POD_NAMESPACE", ns),
            ("POD_NAME", identity),
            ("KUBECONFIG", kubeconfig),
        ],
    )
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
    let steady = Duration::from_secs(env("BENCH_STEADY_SECS", 120));
    // KedaProcess starts this binary (default: the workspace's debug build).
    let keda_bin = std::env::var("KEDA_BIN")
        .unwrap_or_else(|_| root().join("target/debug/keda").display().to_string());
    ensure_crds().await?;
    let c = client().await?;
    let ns = namespace(&c, "bench").await?;

    // The metric endpoint counts polls (the scale loops' and the live samples behind the HPA's fetches).
    let (base, polls) = counting_endpoint(3.0).await?;
    let url = format!("{base}/m");

    // Each keda process talks to the kube-apiserver through its own counting proxy.
    let kubectl_proxy = KubectlProxy::start()?;
    let operator_tally = Arc::new(Tally::default());
    let apiserver_tally = Arc::new(Tally::default());
    let dir = root().join("target/keda-e2e-certs").join(&ns);
    std::fs::create_dir_all(&dir)?;
    let dir_s = dir.display().to_string();
    let operator_kubeconfig = proxied_kubeconfig(
        &dir,
        "operator",
        &counting_proxy(kubectl_proxy.addr, operator_tally.clone()).await?,
    )?;
    let apiserver_kubeconfig = proxied_kubeconfig(
        &dir,
        "metrics-apiserver",
        &counting_proxy(kubectl_proxy.addr, apiserver_tally.clone()).await?,
    )?;

    // Only one APIService v1beta1.external.metrics.k8s.io per cluster: hold the lock until it is deleted.
    let guard = ApiServiceGuard {
        _lock: cluster_scoped_lock()?,
    };
    let metrics_port = free_port("127.0.0.1")?;
    let metrics_addr = format!("127.0.0.1:{metrics_port}");
    let grpc_addr = format!("127.0.0.1:{}", free_port("127.0.0.1")?);
    let op = start_operator(
        &ns,
        "bench-op",
        &metrics_addr,
        &grpc_addr,
        &dir_s,
        &operator_kubeconfig,
    )?;

    // The certificates the operator issues, written out as the chart mounts Secret kedaorg-certs.
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(c.clone(), &ns);
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
    let https_port = free_port(NODE_IP)?;
    let apiserver_metrics_port = free_port("127.0.0.1")?;
    let metrics_apiserver = KedaProcess::start(
        &format!("{ns}-metrics-apiserver"),
        &[
            "metrics-apiserver",
            "--secure-port",
            &https_port.to_string(),
            "--bind-address",
            NODE_IP,
            "--cert-dir",
            &dir_s,
            "--client-ca-file",
            &dir.join("ca.crt").display().to_string(),
            "--metrics-service-address",
            &grpc_addr,
            "--metrics-service-grpc-authority",
            &format!("keda-operator.{ns}.svc.cluster.local"),
            "--metrics-bind-address",
            &format!("127.0.0.1:{apiserver_metrics_port}"),
        ],
        &[
            ("POD_NAMESPACE", &ns),
            ("KUBECONFIG", &apiserver_kubeconfig),
        ],
    )?;
    apply(
        &ns,
        &format!(
            "apiVersion: v1\nkind: Service\nmetadata: {{name: {METRICS_SERVICE}}}\nspec:\n  ports:\n  - {{name: https, port: 443, targetPort: 6443, protocol: TCP}}\n---\n\
             apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: {METRICS_SERVICE}-bench\n  labels: {{kubernetes.io/service-name: {METRICS_SERVICE}}}\n\
             addressType: IPv4\nendpoints:\n- addresses: [\"{NODE_IP}\"]\n  conditions: {{ready: true}}\nports:\n- {{name: https, port: {https_port}, protocol: TCP}}\n"
        ),
    )?;
    let ca_bundle = serde_json::to_value(&certs["ca.crt"])?;
    kubectl_ok(
        &["apply", "--server-side", "--force-conflicts", "-f", "-"],
        Some(&format!(
            "apiVersion: apiregistration.k8s.io/v1\nkind: APIService\nmetadata: {{name: {APISERVICE}}}\nspec:\n  group: external.metrics.k8s.io\n  version: v1beta1\n  groupPriorityMinimum: 100\n  versionPriority: 100\n  caBundle: {ca_bundle}\n  service: {{name: {METRICS_SERVICE}, namespace: {ns}, port: 443}}\n"
        )),
    )?;
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
                "external.metrics.k8s.io/v1beta1 did not answer within 120 s: {}\n--- metrics-apiserver ---\n{}\n--- operator ---\n{}",
                String::from_utf8_lossy(&out.stderr),
                metrics_apiserver.log_tail(),
                op.log_tail()
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?;
    let metrics_url = format!("http://{metrics_addr}/metrics");
    let apiserver_metrics_url = format!("http://127.0.0.1:{apiserver_metrics_port}/metrics");
    let idle = proc_stat(op.pid());

    let deployments: Api<Deployment> = Api::namespaced(c.clone(), &ns);
    let sos: Api<ScaledObject> = Api::namespaced(c.clone(), &ns);
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(c.clone(), &ns);
    let started = Instant::now();
    futures::stream::iter(0..n)
        .map(|i| {
            let (deployments, sos, url) = (deployments.clone(), sos.clone(), url.clone());
            async move {
                let d: Deployment = serde_yaml_ng::from_str(&format!(
                    "metadata: {{name: w{i}}}\nspec:\n  replicas: 1\n  selector: {{matchLabels: {{app: w{i}}}}}\n  template:\n    metadata: {{labels: {{app: w{i}}}}}\n    spec: {{containers: [{{name: a, image: x}}]}}\n"
                ))?;
                deployments.create(&PostParams::default(), &d).await?;
                // One object polls a slow upstream (500 ms per answer): it must not delay the others.
                let url = if i == 0 { url.replace("/m", "/slow") } else { url };
                let so: ScaledObject = serde_yaml_ng::from_str(&format!(
                    "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {{name: so{i}}}\nspec:\n  scaleTargetRef: {{name: w{i}}}\n  pollingInterval: 30\n  minReplicaCount: 1\n  maxReplicaCount: 10\n  triggers:\n  - type: metrics-api\n    metadata: {{url: \"{url}\", valueLocation: value, targetValue: \"10\"}}\n"
                ))?;
                sos.create(&PostParams::default(), &so).await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect::<()>()
        .await?;
    let created = started.elapsed();
    let ready_after = loop {
        let list = sos.list(&ListParams::default()).await?;
        let ready = list
            .items
            .iter()
            .filter(|so| {
                so.status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|c| c.iter().any(|c| c.r#type == "Ready" && c.status == "True"))
            })
            .count();
        let hpa_count = hpas.list(&ListParams::default()).await?.items.len();
        if ready == n && hpa_count == n {
            break started.elapsed();
        }
        if started.elapsed() > Duration::from_secs(900) {
            println!("gave up: {ready}/{n} Ready, {hpa_count} HPAs after 900 s");
            break started.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let at_ready = proc_stat(op.pid());
    // Every HPA fetching its metric, or 120 s.
    let fetching_after = loop {
        let fetching = fetching_hpas(&c, &ns).await?;
        if fetching == n || started.elapsed() > ready_after + Duration::from_secs(120) {
            break (fetching, started.elapsed());
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };

    println!(
        "operator benchmark: {n} ScaledObjects (metrics-api trigger), keda binary {keda_bin}, operator + metrics-apiserver"
    );
    println!(
        "  operator RSS before any object:   {:.1} MiB ({:.1} MiB anonymous)",
        idle.rss_kib as f64 / 1024.0,
        idle.anon_kib as f64 / 1024.0
    );
    println!(
        "  created {n} Deployments + {n} ScaledObjects in {:.1} s ({CONCURRENCY} concurrent requests)",
        created.as_secs_f64()
    );
    println!(
        "  all Ready with their HPAs:        {:.1} s after the first create ({:.1} s after the last)",
        ready_after.as_secs_f64(),
        (ready_after - created).as_secs_f64()
    );
    println!(
        "  HPAs fetching their metric:       {}/{n} {:.1} s after the first create",
        fetching_after.0,
        fetching_after.1.as_secs_f64()
    );
    println!(
        "  operator RSS when all Ready:      {:.1} MiB ({:.1} MiB anonymous)",
        at_ready.rss_kib as f64 / 1024.0,
        at_ready.anon_kib as f64 / 1024.0
    );

    let bench = Bench {
        client: c.clone(),
        op_pid: op.pid(),
        metrics_url,
        apiserver_metrics_url,
        http,
        ns: ns.clone(),
        n,
        polls,
        steady,
        operator_tally,
        apiserver_tally,
    };
    // First ticks are spread over one interval, and each HPA writes its status after its first fetches:
    // let them pass before measuring.
    tokio::time::sleep(Duration::from_secs(32)).await;
    bench.window("run 1", 30).await?;

    let patch = serde_json::json!({"spec": {"pollingInterval": 1}});
    futures::stream::iter(0..n)
        .map(|i| {
            let (sos, patch) = (sos.clone(), patch.clone());
            async move {
                sos.patch(
                    &format!("so{i}"),
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect::<()>()
        .await?;
    tokio::time::sleep(Duration::from_secs(10)).await;
    bench.window("run 2", 1).await?;

    let log = std::fs::read_to_string(&op.log).unwrap_or_default();
    let errors = log.lines().filter(|l| l.contains("ERROR")).count();
    println!("  operator log lines at ERROR:      {errors}");

    // T10: a restart with every object at 1 s polling; the first ticks are spread, so no poll fails.
    let mut op = op;
    op.terminate();
    let restarted = Instant::now();
    let op2 = start_operator(
        &ns,
        "bench-op-2",
        "127.0.0.1:0",
        &grpc_addr,
        &dir_s,
        &operator_kubeconfig,
    )?;
    let polls_before = bench.polls.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(30)).await;
    let log = std::fs::read_to_string(&op2.log).unwrap_or_default();
    let failed = log.lines().filter(|l| l.contains("scaler failed")).count();
    println!(
        "-- restart (SIGTERM, new process takes the Lease at once): {} polls in the first {:.0} s, {failed} failed polls",
        bench.polls.load(Ordering::Relaxed) - polls_before,
        restarted.elapsed().as_secs_f64()
    );
    // The operator must outlive its ScaledObjects (it removes their finalizers), and its Lease lives in
    // the bench namespace: delete the ScaledObjects first, then the APIService (an APIService without its
    // server blocks namespace deletion cluster-wide), then the namespace.
    let deleting = Instant::now();
    sos.delete_collection(&Default::default(), &ListParams::default())
        .await?;
    let mut left = n;
    while left > 0 && deleting.elapsed() < Duration::from_secs(600) {
        tokio::time::sleep(Duration::from_secs(1)).await;
        left = sos.list_metadata(&ListParams::default()).await?.items.len();
    }
    println!(
        "-- cleanup: {n} ScaledObjects deleted (HPAs removed, finalizers released by the operator) in {:.1} s, {left} left",
        deleting.elapsed().as_secs_f64()
    );
    drop(guard);
    let namespaces = Api::<k8s_openapi::api::core::v1::Namespace>::all(c);
    namespaces.delete(&ns, &Default::default()).await?;
    drop(metrics_apiserver);
    drop(op2);
    drop(kubectl_proxy);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_labelled_as_the_kube_apiserver_does() {
        let c = classify;
        let s = |v: &str, r: &str| (v.to_owned(), r.to_owned());
        assert_eq!(
            c("GET", "/apis/apps/v1/namespaces/a/deployments/w1/scale", ""),
            s("GET", "deployments.apps/scale")
        );
        assert_eq!(
            c(
                "GET",
                "/apis/keda.sh/v1alpha1/namespaces/a/scaledobjects?watch=true&timeoutSeconds=290",
                ""
            ),
            s("WATCH", "scaledobjects.keda.sh")
        );
        assert_eq!(
            c("GET", "/apis/keda.sh/v1alpha1/scaledobjects?limit=500", ""),
            s("LIST", "scaledobjects.keda.sh")
        );
        assert_eq!(
            c(
                "PATCH",
                "/apis/keda.sh/v1alpha1/namespaces/a/scaledobjects/x/status?fieldManager=k",
                "application/apply-patch+yaml"
            ),
            s("APPLY", "scaledobjects.keda.sh/status")
        );
        assert_eq!(
            c(
                "PUT",
                "/apis/coordination.k8s.io/v1/namespaces/a/leases/operator.keda.sh",
                "application/json"
            ),
            s("PUT", "leases.coordination.k8s.io")
        );
        assert_eq!(
            c(
                "POST",
                "/apis/authorization.k8s.io/v1/subjectaccessreviews",
                "application/json"
            ),
            s("POST", "subjectaccessreviews.authorization.k8s.io")
        );
        assert_eq!(
            c(
                "GET",
                "/api/v1/namespaces/kube-system/configmaps/extension-apiserver-authentication",
                ""
            ),
            s("GET", "configmaps")
        );
        assert_eq!(c("GET", "/api/v1/namespaces/a", ""), s("GET", "namespaces"));
        assert_eq!(
            c("GET", "/apis/keda.sh/v1alpha1", ""),
            s("GET", "(non-resource)")
        );
        assert_eq!(c("GET", "/version", ""), s("GET", "(non-resource)"));
    }

    #[test]
    fn request_heads_are_found_across_bodies_and_chunks() {
        let mut sc = RequestScanner::default();
        let stream = b"PATCH /api/v1/namespaces/a/events/e HTTP/1.1\r\ncontent-type: application/merge-patch+json\r\ncontent-length: 6\r\n\r\nGET /xGET /api/v1/namespaces/a/secrets/s HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nDELETE /api/v1/namespaces/a/pods HTTP/1.1\r\n\r\n";
        let mut found = Vec::new();
        // Byte by byte: heads split across reads.
        for b in stream.iter() {
            found.extend(sc.feed(std::slice::from_ref(b)));
        }
        assert_eq!(
            found,
            vec![
                ("PATCH".to_owned(), "events".to_owned()),
                ("GET".to_owned(), "secrets".to_owned()),
                ("DELETECOLLECTION".to_owned(), "pods".to_owned()),
            ]
        );
    }
}
