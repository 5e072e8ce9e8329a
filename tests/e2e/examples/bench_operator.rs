//! Operator benchmark on the local control plane (prints numbers; asserts nothing about time):
//! N Deployments + N ScaledObjects with a metrics-api trigger against a loopback HTTP server.
//! Prints: time until all are Ready with their HPAs, operator RSS, CPU-seconds per 1,000 polls,
//! and API writes during the steady-state window (from the operator's own request log is not available,
//! so writes are counted as resourceVersion changes of the ScaledObjects and HPAs).
//!
//! Run: `cargo xtask bench operator` (N=1000, polling 30 s; `BENCH_POLLING=1` for the 1 s run).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use keda_api::ScaledObject;
use keda_e2e::{KedaProcess, client, ensure_crds, kubectl_ok, namespace};
use kube::Api;
use kube::api::ListParams;

fn proc_stat(pid: u32) -> (f64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks = 100.0;
    let cpu = fields
        .get(11)
        .and_then(|u| u.parse::<f64>().ok())
        .unwrap_or(0.0)
        + fields
            .get(12)
            .and_then(|s| s.parse::<f64>().ok())
            .unwrap_or(0.0);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss_kb = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    (cpu / ticks, rss_kb)
}

#[tokio::main]
async fn main() -> Result<()> {
    let n: usize = std::env::var("BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let polling: u64 = std::env::var("BENCH_POLLING")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let steady: u64 = std::env::var("BENCH_STEADY_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(120);
    ensure_crds().await?;
    let c = client().await?;
    let ns = namespace(&c, "bench").await?;

    // The metric endpoint counts polls.
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

    let op = KedaProcess::operator(&ns, "bench-op")?;
    let mut yaml = String::new();
    for i in 0..n {
        yaml.push_str(&format!(
            "---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: w{i}}}\nspec:\n  replicas: 1\n  selector: {{matchLabels: {{app: w{i}}}}}\n  template:\n    metadata: {{labels: {{app: w{i}}}}}\n    spec: {{containers: [{{name: a, image: x}}]}}\n---\napiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {{name: so{i}}}\nspec:\n  scaleTargetRef: {{name: w{i}}}\n  pollingInterval: {polling}\n  minReplicaCount: 1\n  maxReplicaCount: 10\n  triggers:\n  - type: metrics-api\n    metadata: {{url: \"{url}\", valueLocation: value, targetValue: \"10\"}}\n"
        ));
    }
    let started = Instant::now();
    kubectl_ok(&["apply", "-n", &ns, "-f", "-"], Some(&yaml))?;
    let applied = started.elapsed();
    let sos: Api<ScaledObject> = Api::namespaced(c.clone(), &ns);
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(c.clone(), &ns);
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
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let (_, rss_ready) = proc_stat(op.pid());

    // Steady state: let the first ticks (spread over one interval) pass, then measure.
    tokio::time::sleep(Duration::from_secs(polling.min(30) + 2)).await;
    let rv_of = |so: &ScaledObject| so.metadata.resource_version.clone().unwrap_or_default();
    let before_so: Vec<String> = sos
        .list(&ListParams::default())
        .await?
        .items
        .iter()
        .map(rv_of)
        .collect();
    let before_hpa: Vec<String> = hpas
        .list(&ListParams::default())
        .await?
        .items
        .iter()
        .map(|h| h.metadata.resource_version.clone().unwrap_or_default())
        .collect();
    let (cpu0, _) = proc_stat(op.pid());
    let polls0 = polls.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(steady)).await;
    let (cpu1, rss_steady) = proc_stat(op.pid());
    let polls1 = polls.load(Ordering::Relaxed);
    let after_so: Vec<String> = sos
        .list(&ListParams::default())
        .await?
        .items
        .iter()
        .map(rv_of)
        .collect();
    let after_hpa: Vec<String> = hpas
        .list(&ListParams::default())
        .await?
        .items
        .iter()
        .map(|h| h.metadata.resource_version.clone().unwrap_or_default())
        .collect();
    let so_writes = before_so
        .iter()
        .zip(&after_so)
        .filter(|(a, b)| a != b)
        .count();
    let hpa_writes = before_hpa
        .iter()
        .zip(&after_hpa)
        .filter(|(a, b)| a != b)
        .count();
    let poll_count = polls1 - polls0;
    let log = std::fs::read_to_string(&op.log).unwrap_or_default();
    let drift_note = log.lines().filter(|l| l.contains("scaler failed")).count();

    println!(
        "operator benchmark: {n} ScaledObjects, pollingInterval {polling}s, steady window {steady}s"
    );
    println!(
        "  kubectl apply of {n} Deployments + {n} ScaledObjects: {:.1} s",
        applied.as_secs_f64()
    );
    println!(
        "  all Ready with their HPAs after:  {:.1} s",
        ready_after.as_secs_f64()
    );
    println!(
        "  operator RSS when all Ready:      {:.1} MiB",
        rss_ready as f64 / 1024.0
    );
    println!(
        "  operator RSS in steady state:     {:.1} MiB",
        rss_steady as f64 / 1024.0
    );
    println!("  polls in the window:              {poll_count}");
    println!(
        "  CPU-seconds per 1,000 polls:      {:.3}",
        if poll_count > 0 {
            (cpu1 - cpu0) / poll_count as f64 * 1000.0
        } else {
            f64::NAN
        }
    );
    println!("  ScaledObjects written in window:  {so_writes} (status changes)");
    println!("  HPAs written in window:           {hpa_writes}");
    println!("  scaler errors logged:             {drift_note}");
    kubectl_ok(&["delete", "namespace", &ns, "--wait=false"], None)?;
    Ok(())
}
