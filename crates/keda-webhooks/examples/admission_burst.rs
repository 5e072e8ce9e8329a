//! Benchmark (prints numbers, asserts nothing): the webhook server on loopback with its indexes
//! pre-filled with 10,000 ScaledObjects (and their HPAs), driven with a burst of 10,000 ScaledObject
//! CREATE reviews over HTTPS. Prints p50 / p99 / max admission latency, throughput, and VmHWM / VmRSS.
//!
//!     cargo run --release -p keda-webhooks --example admission_burst [objects] [requests] [concurrency]

use std::sync::Arc;
use std::time::{Duration, Instant};

use keda_resolver::{MemorySource, Resolver};
use keda_webhooks::{Index, MemoryCluster, Metrics, Webhook, server, tls};
use serde_json::json;

fn status_kb(field: &str) -> String {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .map(|l| l.trim_start_matches(field).trim().to_owned())
        .unwrap_or_else(|| "?".into())
}

fn scaled_object(ns: &str, name: &str, target: &str) -> serde_json::Value {
    json!({"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"scaleTargetRef": {"name": target}, "minReplicaCount": 1, "maxReplicaCount": 10,
            "advanced": {"horizontalPodAutoscalerConfig": {"behavior": {"scaleDown": {"stabilizationWindowSeconds": 60}}}},
            "triggers": [{"type": "metrics-api", "name": "api",
                "metadata": {"url": "http://metrics.example/api", "valueLocation": "value", "targetValue": "10"}}]}})
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let objects = args.first().copied().unwrap_or(10_000);
    let requests = args.get(1).copied().unwrap_or(10_000);
    let concurrency = args.get(2).copied().unwrap_or(32);

    // Certificates for 127.0.0.1.
    let dir = std::env::temp_dir().join(format!("keda-webhooks-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let ck =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])?;
    std::fs::write(dir.join("tls.crt"), ck.cert.pem())?;
    std::fs::write(dir.join("tls.key"), ck.key_pair.serialize_pem())?;

    // Indexes pre-filled: 100 namespaces × objects/100 ScaledObjects, and one HPA per ScaledObject.
    let index = Arc::new(Index::new());
    let fill = Instant::now();
    for i in 0..objects {
        let ns = format!("ns-{}", i % 100);
        let so: keda_api::ScaledObject =
            serde_json::from_value(scaled_object(&ns, &format!("so-{i}"), &format!("app-{i}")))?;
        index.apply_scaled_object(&so);
        let hpa: k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler =
            serde_json::from_value(json!({
                "metadata": {"name": format!("keda-hpa-so-{i}"), "namespace": ns,
                    "ownerReferences": [{"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "name": format!("so-{i}"), "uid": "u"}]},
                "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": format!("app-{i}")}, "maxReplicas": 10}
            }))?;
        index.apply_hpa(&hpa);
    }
    println!(
        "indexed {objects} ScaledObjects + {objects} HPAs in {:?}; VmRSS {}",
        fill.elapsed(),
        status_kb("VmRSS:")
    );

    let webhook = Arc::new(Webhook {
        index: index.clone(),
        resolver: Resolver::new(MemorySource::default(), "keda"),
        cluster: MemoryCluster::default(),
        metrics: Metrics::default(),
    });
    let cert = Arc::new(tls::ReloadingCert::new(&dir, Duration::from_secs(5))?);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(server::serve_tls(
        listener,
        tls::server_config(cert)?,
        server::router(webhook),
    ));

    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ck.cert.pem().as_bytes())?)
        .build()?;
    let url = format!("https://{addr}/validate-keda-sh-v1alpha1-scaledobject");

    // Bodies built up front: new ScaledObjects (every 10th one targets an already-scaled workload).
    let bodies: Vec<Vec<u8>> = (0..requests)
        .map(|i| {
            let ns = format!("ns-{}", i % 100);
            let target = if i % 10 == 0 { format!("app-{}", (i * 7) % objects.max(1)) } else { format!("new-app-{i}") };
            serde_json::to_vec(&json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                "request": {"uid": format!("uid-{i}"),
                    "kind": {"group": "keda.sh", "version": "v1alpha1", "kind": "ScaledObject"},
                    "resource": {"group": "keda.sh", "version": "v1alpha1", "resource": "scaledobjects"},
                    "name": format!("burst-{i}"), "namespace": ns, "operation": "CREATE",
                    "userInfo": {"username": "bench"}, "dryRun": false,
                    "object": scaled_object(&ns, &format!("burst-{i}"), &target)}}))
            .unwrap_or_default()
        })
        .collect();
    let bodies = Arc::new(bodies);

    // Warm-up (connections, TLS sessions).
    for i in 0..concurrency.min(requests) {
        client
            .post(&url)
            .body(bodies[i].clone())
            .send()
            .await?
            .bytes()
            .await?;
    }

    // The client's share (request bodies, reqwest, its TLS sessions) is in this process too: what the
    // burst adds on top of this line is mostly the server's (connections, requests in flight, the index
    // growing as the watch would grow it).
    println!(
        "before the burst (index + {} KiB of request bodies + client): VmRSS {}",
        bodies.iter().map(Vec::len).sum::<usize>() / 1024,
        status_kb("VmRSS:")
    );
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (client, url, bodies, next, index) = (
            client.clone(),
            url.clone(),
            bodies.clone(),
            next.clone(),
            index.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut denied = 0usize;
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= bodies.len() {
                    break;
                }
                let t = Instant::now();
                let Ok(resp) = client.post(&url).body(bodies[i].clone()).send().await else {
                    continue;
                };
                let Ok(bytes) = resp.bytes().await else {
                    continue;
                };
                lat.push(t.elapsed());
                let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
                if v.pointer("/response/allowed") == Some(&json!(false)) {
                    denied += 1;
                } else if let Some(obj) = serde_json::from_slice::<serde_json::Value>(&bodies[i])
                    .ok()
                    .and_then(|b| b.pointer("/request/object").cloned())
                    .and_then(|o| serde_json::from_value::<keda_api::ScaledObject>(o).ok())
                {
                    // What the watch would do once the object is stored.
                    index.apply_scaled_object(&obj);
                }
            }
            (lat, denied)
        }));
    }
    let mut all = Vec::new();
    let mut denied = 0;
    for t in tasks {
        let (lat, d) = t.await?;
        all.extend(lat);
        denied += d;
    }
    let elapsed = start.elapsed();
    all.sort();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p).ceil() as usize).saturating_sub(1))
            .copied()
            .unwrap_or_default()
    };
    println!(
        "{} reviews ({denied} denied) in {elapsed:?} with {concurrency} connections: {:.0}/s; latency p50 {:?} p99 {:?} max {:?}",
        all.len(),
        all.len() as f64 / elapsed.as_secs_f64(),
        pct(0.50),
        pct(0.99),
        all.last().copied().unwrap_or_default()
    );
    let (sos, hpas) = index.len();
    println!(
        "index now {sos} ScaledObjects, {hpas} HPAs; VmHWM {} VmRSS {} (client and server in this process)",
        status_kb("VmHWM:"),
        status_kb("VmRSS:")
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
