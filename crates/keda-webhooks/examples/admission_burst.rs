//! Benchmark (prints numbers, asserts nothing) for T14, "admission webhook RSS ≤ 50 MiB during a
//! 10,000-object create burst": a burst of ScaledObject CREATE reviews over HTTPS against the webhook
//! server, which runs alone in a child process so that its memory is measured apart from the client's.
//!
//!     cargo run --release -p keda-webhooks --example admission_burst [existing] [requests] [concurrency]
//!
//! Defaults: 0 existing, 10,000 requests, 32 connections. The cluster starts with `existing`
//! ScaledObjects (and their HPAs) in the webhook's index; then each CREATE the webhook allows is stored,
//! and the parent (standing in for the API server and the operator) sends the child the watch events
//! of the new ScaledObject and of the HPA the operator creates for it, as the watches would. So with the
//! defaults the index starts empty and ends with every accepted object of the burst: what upstream's
//! webhook held when it reached 748 MiB at ~9k ScaledObjects. One request in a hundred (after the first
//! 200) targets a workload another burst object already scales, and is denied.
//!
//! The parent prints p50 / p99 / max admission latency and throughput, and the child's VmRSS / VmHWM
//! (from `/proc/<pid>/status`) before and after the burst. The child is this same executable, run with
//! `ADMISSION_BURST_ROLE=server`; it prints `ready <port>` once it serves, reads watch events on stdin,
//! answers `sync` with `index <ScaledObjects> <HPAs>`, and exits when stdin closes.

use std::io::{BufRead, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use keda_resolver::{MemorySource, Resolver};
use keda_webhooks::{Index, MemoryCluster, Metrics, Webhook, server, tls};
use serde_json::json;

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

const ROLE_ENV: &str = "ADMISSION_BURST_ROLE";
const CERT_DIR_ENV: &str = "ADMISSION_BURST_CERT_DIR";
const EXISTING_ENV: &str = "ADMISSION_BURST_EXISTING";
const PATH: &str = "/validate-keda-sh-v1alpha1-scaledobject";

fn scaled_object(ns: &str, name: &str, target: &str) -> serde_json::Value {
    json!({"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"scaleTargetRef": {"name": target}, "minReplicaCount": 1, "maxReplicaCount": 10,
            "advanced": {"horizontalPodAutoscalerConfig": {"behavior": {"scaleDown": {"stabilizationWindowSeconds": 60}}}},
            "triggers": [{"type": "metrics-api", "name": "api",
                "metadata": {"url": "http://metrics.example/api", "valueLocation": "value", "targetValue": "10"}}]}})
}

/// The HPA the operator creates for a ScaledObject.
fn hpa(ns: &str, so: &str, target: &str) -> serde_json::Value {
    json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": format!("keda-hpa-{so}"), "namespace": ns,
            "ownerReferences": [{"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "name": so, "uid": "u"}]},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target}, "maxReplicas": 10}})
}

fn main() -> Res<()> {
    // The runtime `keda admission-webhooks` builds, in both processes.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    if std::env::var(ROLE_ENV).as_deref() == Ok("server") {
        runtime.block_on(serve())
    } else {
        runtime.block_on(drive())
    }
}

// ---------------------------------------------------------------------------------------------
// The child: the webhook server and its index, nothing else.

async fn serve() -> Res<()> {
    let dir = std::path::PathBuf::from(std::env::var(CERT_DIR_ENV)?);
    let existing: usize = std::env::var(EXISTING_ENV)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);

    // The existing objects: 100 namespaces × existing/100 ScaledObjects, and one HPA each.
    let index = Arc::new(Index::new());
    for i in 0..existing {
        let ns = format!("ns-{}", i % 100);
        let (so, target) = (format!("so-{i}"), format!("app-{i}"));
        index.apply_scaled_object(&serde_json::from_value(scaled_object(&ns, &so, &target))?);
        index.apply_hpa(&serde_json::from_value(hpa(&ns, &so, &target))?);
    }

    let webhook = Arc::new(Webhook {
        index: index.clone(),
        resolver: Resolver::new(MemorySource::default(), "keda"),
        cluster: MemoryCluster::default(),
        metrics: Metrics::default(),
    });
    let cert = Arc::new(tls::ReloadingCert::new(&dir, Duration::from_secs(5))?);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    tokio::spawn(server::serve_tls(
        listener,
        tls::server_config(cert, &Default::default())?,
        server::router(webhook),
    ));

    // The watches: one event a line, `<kind> <object JSON>`, decoded into the typed object as the
    // watcher decodes it.
    std::thread::spawn(move || {
        let mut out = std::io::stdout();
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            match line.split_once(' ') {
                Some(("ScaledObject", obj)) => {
                    if let Ok(so) = serde_json::from_str::<keda_api::ScaledObject>(obj) {
                        index.apply_scaled_object(&so);
                    }
                }
                Some(("HorizontalPodAutoscaler", obj)) => {
                    if let Ok(hpa) = serde_json::from_str::<HorizontalPodAutoscaler>(obj) {
                        index.apply_hpa(&hpa);
                    }
                }
                _ if line == "sync" => {
                    let (sos, hpas) = index.len();
                    let _ = writeln!(out, "index {sos} {hpas}");
                    let _ = out.flush();
                }
                _ => {}
            }
        }
        // The parent is gone.
        std::process::exit(0);
    });

    let mut out = std::io::stdout();
    writeln!(out, "ready {port}")?;
    out.flush()?;
    std::future::pending::<()>().await;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The parent: the API server's side (HTTPS client, storage, watch events) and the measurements.

/// `VmRSS` / `VmHWM` (in KiB) of a process.
fn mem_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// The child's stdout, read a line at a time.
struct ChildLines(std::io::BufReader<std::process::ChildStdout>);

impl ChildLines {
    fn next(&mut self) -> Res<String> {
        let mut line = String::new();
        tokio::task::block_in_place(|| self.0.read_line(&mut line))?;
        if line.is_empty() {
            return Err("the server process ended".into());
        }
        Ok(line.trim_end().to_owned())
    }
}

/// One CREATE of the burst: the review, and the watch events that follow if it is allowed.
struct Create {
    review: bytes::Bytes,
    events: String,
}

fn creates(requests: usize) -> Vec<Create> {
    (0..requests)
        .map(|i| {
            let ns = format!("ns-{}", i % 100);
            let name = format!("burst-{i}");
            // One in a hundred targets the workload of burst-0 (same namespace), already scaled.
            let target = if i % 100 == 0 && i >= 200 {
                "new-app-0".to_owned()
            } else {
                format!("new-app-{i}")
            };
            let object = scaled_object(&ns, &name, &target);
            let review = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                "request": {"uid": format!("uid-{i}"),
                    "kind": {"group": "keda.sh", "version": "v1alpha1", "kind": "ScaledObject"},
                    "resource": {"group": "keda.sh", "version": "v1alpha1", "resource": "scaledobjects"},
                    "name": name, "namespace": ns, "operation": "CREATE",
                    "userInfo": {"username": "bench"}, "dryRun": false,
                    "object": object}});
            Create {
                review: serde_json::to_vec(&review).unwrap_or_default().into(),
                events: format!(
                    "ScaledObject {object}\nHorizontalPodAutoscaler {}\n",
                    hpa(&ns, &name, &target)
                ),
            }
        })
        .collect()
}

async fn drive() -> Res<()> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let existing = args.first().copied().unwrap_or(0);
    let requests = args.get(1).copied().unwrap_or(10_000);
    let concurrency = args.get(2).copied().unwrap_or(32).max(1);

    // Certificates for 127.0.0.1.
    let dir = std::env::temp_dir().join(format!("keda-webhooks-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let ck =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])?;
    std::fs::write(dir.join("tls.crt"), ck.cert.pem())?;
    std::fs::write(dir.join("tls.key"), ck.key_pair.serialize_pem())?;

    let started = Instant::now();
    let mut child = std::process::Command::new(std::env::current_exe()?)
        .env(ROLE_ENV, "server")
        .env(CERT_DIR_ENV, &dir)
        .env(EXISTING_ENV, existing.to_string())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    let pid = child.id();
    let result = burst(
        &mut child,
        &ck.cert.pem(),
        existing,
        requests,
        concurrency,
        started,
    )
    .await;
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    if let Err(e) = &result {
        eprintln!("admission_burst (server pid {pid}): {e}");
    }
    result
}

async fn burst(
    child: &mut std::process::Child,
    ca_pem: &str,
    existing: usize,
    requests: usize,
    concurrency: usize,
    started: Instant,
) -> Res<()> {
    let pid = child.id();
    let mut lines = ChildLines(std::io::BufReader::new(
        child.stdout.take().ok_or("no stdout")?,
    ));
    let stdin = child.stdin.take().ok_or("no stdin")?;
    let port = lines
        .next()?
        .strip_prefix("ready ")
        .and_then(|p| p.parse::<u16>().ok())
        .ok_or("the server did not print `ready <port>`")?;
    let (rss, hwm) = mem_kib(pid);
    println!(
        "server (pid {pid}, its own process) ready in {:?} with {existing} existing ScaledObjects + {existing} HPAs indexed: VmRSS {} VmHWM {}",
        started.elapsed(),
        mib(rss),
        mib(hwm)
    );

    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem.as_bytes())?)
        .pool_max_idle_per_host(concurrency)
        .build()?;
    let url = format!("https://127.0.0.1:{port}{PATH}");
    let creates = Arc::new(creates(requests));

    // Warm-up: open the connections (TLS handshakes) the burst uses. Nothing is stored.
    let warm = (0..concurrency.min(requests)).map(|i| {
        let (client, url, body) = (client.clone(), url.clone(), creates[i].review.clone());
        async move { client.post(url).body(body).send().await?.bytes().await }
    });
    for r in futures::future::join_all(warm).await {
        r?;
    }

    // The watch events go to the child from one writer thread, in the order the creates were allowed.
    let (events, rx) = std::sync::mpsc::channel::<String>();
    let writer = std::thread::spawn(move || -> std::io::Result<std::process::ChildStdin> {
        let mut w = std::io::BufWriter::new(stdin);
        while let Ok(ev) = rx.recv() {
            w.write_all(ev.as_bytes())?;
            while let Ok(more) = rx.try_recv() {
                w.write_all(more.as_bytes())?;
            }
            w.flush()?;
        }
        w.into_inner().map_err(|e| e.into_error())
    });

    let (rss0, hwm0) = mem_kib(pid);
    println!(
        "server before the burst ({concurrency} connections open): VmRSS {} VmHWM {}",
        mib(rss0),
        mib(hwm0)
    );

    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (client, url, creates, next, events) = (
            client.clone(),
            url.clone(),
            creates.clone(),
            next.clone(),
            events.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let (mut denied, mut failed) = (0usize, 0usize);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(create) = creates.get(i) else { break };
                let t = Instant::now();
                let bytes = match client.post(&url).body(create.review.clone()).send().await {
                    Ok(resp) => resp.bytes().await,
                    Err(e) => Err(e),
                };
                let Ok(bytes) = bytes else {
                    failed += 1;
                    continue;
                };
                lat.push(t.elapsed());
                let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
                if v.pointer("/response/allowed") == Some(&json!(true)) {
                    // Stored: the watches see the ScaledObject, then the HPA the operator creates.
                    let _ = events.send(create.events.clone());
                } else {
                    denied += 1;
                }
            }
            (lat, denied, failed)
        }));
    }
    drop(events);
    let mut all = Vec::new();
    let (mut denied, mut failed) = (0, 0);
    for t in tasks {
        let (lat, d, f) = t.await?;
        all.extend(lat);
        denied += d;
        failed += f;
    }
    let elapsed = start.elapsed();
    all.sort();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p).ceil() as usize).saturating_sub(1))
            .copied()
            .unwrap_or_default()
    };
    println!(
        "{} reviews ({denied} denied, {failed} failed) in {elapsed:?} with {concurrency} connections: {:.0}/s; latency p50 {:?} p99 {:?} max {:?}",
        all.len(),
        all.len() as f64 / elapsed.as_secs_f64(),
        pct(0.50),
        pct(0.99),
        all.last().copied().unwrap_or_default()
    );

    // Wait until the child applied every watch event, then read its memory.
    let mut stdin = tokio::task::block_in_place(|| writer.join())
        .map_err(|_| "the watch writer panicked")??;
    writeln!(stdin, "sync")?;
    stdin.flush()?;
    let index = lines.next()?;
    let (sos, hpas) = index
        .strip_prefix("index ")
        .and_then(|s| s.split_once(' '))
        .ok_or("the server did not answer `sync`")?;
    let (rss1, hwm1) = mem_kib(pid);
    println!(
        "index: {existing} existing + {} created = {sos} ScaledObjects, {hpas} HPAs",
        all.len() - denied
    );
    println!(
        "server after the burst: VmRSS {} VmHWM {} (T14: VmHWM ≤ 50 MiB)",
        mib(rss1),
        mib(hwm1)
    );
    Ok(())
}
