//! Operator benchmark on the local control plane (prints numbers; asserts nothing about time):
//! N Deployments + N ScaledObjects with a metrics-api trigger against a loopback HTTP server, first with
//! `pollingInterval: 30` and then, after patching every ScaledObject, with `pollingInterval: 1`.
//!
//! Prints for each run: operator RSS, CPU-seconds per 1,000 polls, scale-loop tick drift (from the
//! operator's own `keda_internal_scale_loop_latency_seconds`, sampled every 2 s over the window) and the API
//! writes made during the steady-state window, counted by the kube-apiserver (`apiserver_request_total`
//! deltas for the resources only the operator writes in the bench namespace), plus the time until all
//! objects are Ready with their HPAs.
//!
//! Run: `cargo xtask bench operator` (`BENCH_N`, `BENCH_STEADY_SECS` override 1000 and 120).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use keda_api::ScaledObject;
use keda_e2e::{KedaProcess, client, ensure_crds, namespace};
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};

/// Concurrent requests when creating or patching the objects (the operator is not involved).
const CONCURRENCY: usize = 32;

struct ProcStat {
    cpu_seconds: f64,
    rss_kib: u64,
    hwm_kib: u64,
    /// Heap and other private memory; the rest of the RSS is mapped files (the binary's code).
    anon_kib: u64,
}

fn proc_stat(pid: u32) -> ProcStat {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime + stime, in clock ticks (100 per second on Linux).
    let cpu_seconds = (field(11) + field(12)) / 100.0;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    ProcStat {
        cpu_seconds,
        rss_kib: kib("VmRSS:"),
        hwm_kib: kib("VmHWM:"),
        anon_kib: kib("RssAnon:"),
    }
}

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

/// Writes the kube-apiserver has served so far, per `resource[/subresource]`.
async fn apiserver_writes(c: &Client) -> Result<BTreeMap<String, f64>> {
    let req = http::Request::get("/metrics").body(Vec::new())?;
    let text = c
        .request_text(req)
        .await
        .context("reading the kube-apiserver's /metrics")?;
    let mut out = BTreeMap::new();
    for (series, v) in samples(&text, "apiserver_request_total") {
        if !matches!(
            label(series, "verb"),
            "POST" | "PUT" | "PATCH" | "DELETE" | "APPLY"
        ) {
            continue;
        }
        let mut key = label(series, "resource").to_owned();
        let sub = label(series, "subresource");
        if !sub.is_empty() {
            key = format!("{key}/{sub}");
        }
        *out.entry(key).or_insert(0.0) += v;
    }
    Ok(out)
}

async fn operator_metrics(http: &reqwest::Client, url: &str) -> String {
    match http.get(url).send().await {
        Ok(r) => r.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

struct Bench {
    client: Client,
    op_pid: u32,
    metrics_url: String,
    http: reqwest::Client,
    polls: Arc<AtomicU64>,
    steady: Duration,
    ns: String,
}

impl Bench {
    /// One steady-state window; prints its numbers.
    async fn window(&self, label: &str, polling: u64) -> Result<()> {
        let writes0 = apiserver_writes(&self.client).await?;
        let events0 = operator_events(&self.client, &self.ns).await?;
        let objects0 = object_versions(&self.client, &self.ns).await?;
        let s0 = proc_stat(self.op_pid);
        let polls0 = self.polls.load(Ordering::Relaxed);
        let start = Instant::now();
        let mut drifts = Vec::new();
        while start.elapsed() < self.steady {
            tokio::time::sleep(Duration::from_secs(2)).await;
            let text = operator_metrics(&self.http, &self.metrics_url).await;
            drifts.extend(
                samples(&text, "keda_internal_scale_loop_latency_seconds")
                    .into_iter()
                    .map(|(_, v)| v),
            );
        }
        let elapsed = start.elapsed().as_secs_f64();
        let s1 = proc_stat(self.op_pid);
        let polls = self.polls.load(Ordering::Relaxed) - polls0;
        let writes1 = apiserver_writes(&self.client).await?;
        let events = operator_events(&self.client, &self.ns).await? - events0;
        let objects1 = object_versions(&self.client, &self.ns).await?;
        let changed = objects1
            .iter()
            .filter(|(k, v)| objects0.get(*k) != Some(*v))
            .count();
        drifts.sort_by(f64::total_cmp);

        println!("-- {label}: pollingInterval {polling} s, steady window {elapsed:.0} s");
        println!(
            "  operator RSS now / peak:          {:.1} / {:.1} MiB ({:.1} MiB anonymous)",
            s1.rss_kib as f64 / 1024.0,
            s1.hwm_kib as f64 / 1024.0,
            s1.anon_kib as f64 / 1024.0
        );
        println!(
            "  polls in the window:              {polls} ({:.1}/s)",
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
        // Leases are renewed by kube-controller-manager and kube-scheduler too; the operator renews its
        // own every retry period (2 s), which is counted separately.
        let mut operator_writes = 0.0;
        let mut detail = Vec::new();
        for (resource, after) in &writes1 {
            let d = after - writes0.get(resource).copied().unwrap_or(0.0);
            if d <= 0.0 || resource.starts_with("leases") {
                continue;
            }
            if resource.starts_with("scaledobjects")
                || resource == "horizontalpodautoscalers"
                || resource == "deployments/scale"
            {
                operator_writes += d;
            }
            detail.push(format!("{resource} {d:.0}"));
        }
        println!(
            "  API writes by the operator:       {:.0} (ScaledObjects, HPAs, /scale: {operator_writes:.0}; Events: {events}; + its Lease renewals, {:.0})",
            operator_writes + events as f64,
            elapsed / 2.0,
        );
        println!(
            "  ScaledObjects/HPA specs changed in the bench namespace: {changed} (resourceVersion / generation)"
        );
        println!(
            "  all writes in the cluster (other tests may add to them): {}",
            if detail.is_empty() {
                "none".to_owned()
            } else {
                detail.join(", ")
            }
        );
        Ok(())
    }
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
    ensure_crds().await?;
    let c = client().await?;
    let ns = namespace(&c, "bench").await?;

    // The metric endpoint counts polls (keep-alive connections, as the scalers' shared client uses).
    let polls = Arc::new(AtomicU64::new(0));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/m", listener.local_addr()?);
    let counter = polls.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                continue;
            };
            let counter = counter.clone();
            tokio::spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut buf = [0u8; 2048];
                loop {
                    let n = sock.read(&mut buf).await.unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    counter.fetch_add(1, Ordering::Relaxed);
                    if buf[..n].starts_with(b"GET /slow") {
                        // T4's injected slow upstream.
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                    let body = "{\"value\": 3}";
                    let resp = format!(
                        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    if sock.write_all(resp.as_bytes()).await.is_err() {
                        break;
                    }
                }
            });
        }
    });

    let metrics_port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let metrics_addr = format!("127.0.0.1:{metrics_port}");
    let op = KedaProcess::operator_with(&ns, "bench-op", &metrics_addr, &[])?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?;
    let metrics_url = format!("http://{metrics_addr}/metrics");
    let up = Instant::now();
    while operator_metrics(&http, &metrics_url).await.is_empty()
        && up.elapsed() < Duration::from_secs(30)
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
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

    println!("operator benchmark: {n} ScaledObjects (metrics-api trigger), release build");
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
        "  operator RSS when all Ready:      {:.1} MiB ({:.1} MiB anonymous)",
        at_ready.rss_kib as f64 / 1024.0,
        at_ready.anon_kib as f64 / 1024.0
    );

    let bench = Bench {
        client: c.clone(),
        op_pid: op.pid(),
        metrics_url,
        http,
        ns: ns.clone(),
        polls,
        steady,
    };
    // First ticks are spread over one interval: let them pass before measuring.
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
    let op2 = KedaProcess::operator(&ns, "bench-op-2")?;
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
    // the bench namespace: delete the ScaledObjects first, then the namespace.
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
    let namespaces = Api::<k8s_openapi::api::core::v1::Namespace>::all(c);
    namespaces.delete(&ns, &Default::default()).await?;
    drop(op2);
    Ok(())
}
