//! ScaledJob benchmark on the local control plane (prints numbers; asserts nothing about time): N
//! ScaledJobs (default 200) with `pollingInterval: 1` and a metrics-api trigger against a loopback HTTP
//! server that counts every request and answers an empty queue (0), so every poll has nothing to do.
//!
//! One `keda operator` runs (leader election in the bench's namespace) with a kubeconfig whose server is a
//! counting proxy in front of `kubectl proxy` (see `keda_e2e::apicount`), so every API request it sends is
//! counted by verb and resource. After a warm-up the bench measures one steady window and prints: polls
//! per second (requests to the metric endpoint), operator CPU-seconds per 1,000 polls, RSS (and its
//! anonymous part), and the operator's API requests per poll by verb and resource, writes first — the goal
//! (issue 16) is zero writes per poll with an empty queue. The Lease renewals (every retry period, by
//! design) are printed on their own line and left out of the totals. Jobs in the namespace at the end must
//! be 0 (printed).
//!
//! Run: `cargo xtask bench scaledjob` (`BENCH_N`, `BENCH_STEADY_SECS`, `BENCH_WARMUP_SECS` override 200,
//! 60 and 20; `KEDA_BIN` picks the `keda` binary, e.g. a debug build: request counts do not depend on
//! the build profile).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use futures::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use keda_api::ScaledJob;
use keda_e2e::apicount::{Counts, KubectlProxy, Tally, counting_proxy, proxied_kubeconfig};
use keda_e2e::bench::{counting_endpoint, proc_stat};
use keda_e2e::{KedaProcess, client, ensure_crds, namespace, root};
use kube::Api;
use kube::api::{ListParams, PostParams};

/// Concurrent creates (the operator is not involved).
const CONCURRENCY: usize = 32;

fn is_write(verb: &str) -> bool {
    matches!(
        verb,
        "POST" | "PUT" | "PATCH" | "APPLY" | "DELETE" | "DELETECOLLECTION"
    )
}

fn delta(after: &Counts, before: &Counts) -> Counts {
    after
        .iter()
        .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0.0)))
        .filter(|(_, v)| *v > 0.0)
        .collect()
}

fn scaled_job(name: &str, url: &str) -> Result<ScaledJob> {
    Ok(serde_json::from_value(serde_json::json!({
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledJob",
        "metadata": {"name": name},
        "spec": {
            "pollingInterval": 1,
            "maxReplicaCount": 10,
            "jobTargetRef": {"template": {"spec": {
                "restartPolicy": "Never",
                "containers": [{"name": "worker", "image": "busybox"}]
            }}},
            "triggers": [{"type": "metrics-api", "metadata": {
                "url": url, "valueLocation": "value", "targetValue": "5"
            }}]
        }
    }))?)
}

#[tokio::main]
async fn main() -> Result<()> {
    let env = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let n = env("BENCH_N", 200) as usize;
    let steady = Duration::from_secs(env("BENCH_STEADY_SECS", 60));
    let warmup = Duration::from_secs(env("BENCH_WARMUP_SECS", 20));
    ensure_crds().await?;
    let c = client().await?;
    let ns = namespace(&c, "bench-sj").await?;

    // The metric endpoint: an empty queue, every request counted.
    let (base, polls) = counting_endpoint(0.0).await?;
    let url = format!("{base}/queue");

    let kubectl_proxy = KubectlProxy::start()?;
    let tally = Arc::new(Tally::default());
    let dir = root().join("target/keda-e2e-certs").join(&ns);
    std::fs::create_dir_all(&dir)?;
    let kubeconfig = proxied_kubeconfig(
        &dir,
        "operator",
        &counting_proxy(kubectl_proxy.addr, tally.clone()).await?,
    )?;
    let op = KedaProcess::operator_with_env(
        &ns,
        "bench-sj-op",
        "127.0.0.1:0",
        &[],
        &[("KUBECONFIG", kubeconfig.as_str())],
    )?;

    let started = Instant::now();
    let api: Api<ScaledJob> = Api::namespaced(c.clone(), &ns);
    let objects: Vec<ScaledJob> = (0..n)
        .map(|i| scaled_job(&format!("sj-{i:04}"), &url))
        .collect::<Result<_>>()?;
    let created: Vec<Result<ScaledJob, kube::Error>> = futures::stream::iter(objects)
        .map(|sj| {
            let api = api.clone();
            async move { api.create(&PostParams::default(), &sj).await }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    if let Some(Err(e)) = created.into_iter().find(Result::is_err) {
        bail!("creating the ScaledJobs: {e}");
    }
    println!(
        "{n} ScaledJobs created in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    // The window starts once the operator has reconciled every object (finalizer, status, Events are
    // one-time writes), plus the warm-up.
    loop {
        let ready = api
            .list(&ListParams::default())
            .await?
            .items
            .iter()
            .filter(|sj| {
                sj.status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|cs| cs.iter().any(|c| c.r#type == "Ready" && c.status == "True"))
            })
            .count();
        if ready == n {
            break;
        }
        if started.elapsed() > Duration::from_secs(300) {
            bail!(
                "{ready} of {n} ScaledJobs Ready after 300 s:\n{}",
                op.log_tail()
            );
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    println!(
        "all Ready after {:.1} s; warming up {} s",
        started.elapsed().as_secs_f64(),
        warmup.as_secs()
    );
    tokio::time::sleep(warmup).await;

    let cpu0 = proc_stat(op.pid()).cpu_seconds;
    let polls0 = polls.load(Ordering::Relaxed);
    let counts0 = tally.snapshot();
    let window = Instant::now();
    tokio::time::sleep(steady).await;
    let elapsed = window.elapsed().as_secs_f64();
    let end = proc_stat(op.pid());
    let (cpu1, rss, anon) = (end.cpu_seconds, end.rss_kib, end.anon_kib);
    let window_polls = (polls.load(Ordering::Relaxed) - polls0) as f64;
    let counts = delta(&tally.snapshot(), &counts0);

    println!(
        "steady window {elapsed:.0} s: {:.1} polls/s (expected {n}/s)",
        window_polls / elapsed
    );
    if window_polls == 0.0 {
        bail!("no polls reached the metric endpoint:\n{}", op.log_tail());
    }
    println!(
        "operator: {:.3} CPU-s per 1,000 polls; RSS {:.1} MiB (anonymous {:.1} MiB)",
        (cpu1 - cpu0) * 1000.0 / window_polls,
        rss as f64 / 1024.0,
        anon as f64 / 1024.0
    );
    let (mut writes, mut reads, mut lease) = (0.0, 0.0, 0.0);
    let mut rows: Vec<(&(String, String), &f64)> = counts.iter().collect();
    rows.sort_by_key(|((verb, _), _)| !is_write(verb));
    println!("operator API requests in the window (verb resource: count, per poll):");
    for ((verb, resource), count) in rows {
        println!(
            "  {verb} {resource}: {count:.0} ({:.4}/poll)",
            count / window_polls
        );
        if resource.starts_with("leases.coordination.k8s.io") {
            lease += count;
        } else if is_write(verb) {
            writes += count;
        } else {
            reads += count;
        }
    }
    println!(
        "operator writes per poll (Leases excluded): {:.4} ({writes:.0} in {window_polls:.0} polls); reads per second: {:.2}; Lease requests: {lease:.0}",
        writes / window_polls,
        reads / elapsed
    );
    let jobs = Api::<Job>::namespaced(c.clone(), &ns)
        .list_metadata(&ListParams::default())
        .await?
        .items
        .len();
    println!("Jobs in the namespace: {jobs} (an empty queue creates none)");

    drop(op);
    keda_e2e::kubectl(&["delete", "namespace", &ns, "--wait=false"], None)?;
    Ok(())
}
