//! Kafka scaler benchmark on the local control plane (prints numbers; asserts nothing about time):
//! N ScaledObjects (default 1,000) with `pollingInterval: 1`, each with a `kafka` trigger on one of 10 topics
//! (3 partitions, a lag of 30) of one local broker (the scaler tests' Kafka 4.1.1, hack/backends/kafka.sh),
//! each targeting its own Deployment at 1 replica (lagThreshold 100 keeps every HPA at 1).
//!
//! The broker advertises a counting proxy as its PLAINTEXT listener, so every request the operator sends
//! passes through it: the proxy reads each request's Kafka header and counts it by API key, and counts the
//! connections opened. A poll of a trigger is one OffsetFetch (the committed offsets of its group), so
//! OffsetFetch requests per second are the polls per second. After every object is Ready and a warm-up, one
//! steady window prints: polls per second (expected N), operator CPU-seconds per 1,000 polls, RSS (and its
//! anonymous part), broker connections, and the requests per poll by API key (Metadata should stay near 0:
//! the clients fetch the metadata of their topics once, not per poll; upstream issue #7453).
//! Goal (issue 17): RSS ≤ 40 MiB and ≤ 0.3 CPU-s per 1,000 polls with the release build.
//!
//! Run: `cargo xtask bench kafka` (`BENCH_N`, `BENCH_STEADY_SECS`, `BENCH_WARMUP_SECS` override 1000, 60 and
//! 20; `KEDA_BIN` picks the `keda` binary).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use keda_api::ScaledObject;
use keda_e2e::bench::proc_stat;
use keda_e2e::{KedaProcess, client, ensure_crds, namespace};
use kube::Api;
use kube::api::{ListParams, PostParams};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

// The scaler tests' broker starter, as the e2e tests use it.
#[path = "../../../crates/keda-scalers/tests/support/kafka_broker.rs"]
mod kafka_broker;
#[path = "../../../crates/keda-scalers/tests/support/mod.rs"]
mod support;

const CONCURRENCY: usize = 32;
const TOPICS: usize = 10;
/// Kafka's API keys of the requests the scalers send.
const API_NAMES: &[(i16, &str)] = &[
    (0, "Produce"),
    (2, "ListOffsets"),
    (3, "Metadata"),
    (9, "OffsetFetch"),
    (10, "FindCoordinator"),
    (15, "DescribeGroups"),
    (17, "SaslHandshake"),
    (18, "ApiVersions"),
    (36, "SaslAuthenticate"),
];
const OFFSET_FETCH: i16 = 9;

#[derive(Default)]
struct Tally {
    requests: Mutex<BTreeMap<i16, u64>>,
    connections: AtomicU64,
}

impl Tally {
    fn snapshot(&self) -> BTreeMap<i16, u64> {
        self.requests.lock().map(|m| m.clone()).unwrap_or_default()
    }
}

/// Forwards client → broker frame by frame, counting each request by its API key; broker → client unchanged.
async fn proxy_connection(client: TcpStream, broker: String, tally: Arc<Tally>) -> Result<()> {
    let upstream = TcpStream::connect(&broker).await?;
    let (mut client_read, mut client_write) = client.into_split();
    let (mut up_read, mut up_write) = upstream.into_split();
    let back = tokio::spawn(async move { tokio::io::copy(&mut up_read, &mut client_write).await });
    let mut frame = Vec::new();
    loop {
        let mut len = [0u8; 4];
        if client_read.read_exact(&mut len).await.is_err() {
            break;
        }
        let n = i32::from_be_bytes(len).max(0) as usize;
        frame.resize(n, 0);
        client_read.read_exact(&mut frame).await?;
        if n >= 2 {
            let key = i16::from_be_bytes([frame[0], frame[1]]);
            if let Ok(mut m) = tally.requests.lock() {
                *m.entry(key).or_default() += 1;
            }
        }
        up_write.write_all(&len).await?;
        up_write.write_all(&frame).await?;
    }
    back.abort();
    Ok(())
}

fn deployment(i: usize) -> Result<Deployment> {
    Ok(serde_yaml_ng::from_str(&format!(
        "metadata: {{name: w{i}}}\nspec:\n  replicas: 1\n  selector: {{matchLabels: {{app: w{i}}}}}\n  template:\n    metadata: {{labels: {{app: w{i}}}}}\n    spec: {{containers: [{{name: a, image: x}}]}}\n"
    ))?)
}

fn scaled_object(i: usize, bootstrap: &str) -> Result<ScaledObject> {
    let t = i % TOPICS;
    Ok(serde_yaml_ng::from_str(&format!(
        "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {{name: so{i}}}\nspec:\n  scaleTargetRef: {{name: w{i}}}\n  pollingInterval: 1\n  minReplicaCount: 1\n  maxReplicaCount: 10\n  triggers:\n  - type: kafka\n    metadata: {{bootstrapServers: \"{bootstrap}\", consumerGroup: group-{t}, topic: topic-{t}, lagThreshold: \"100\"}}\n"
    ))?)
}

fn api_name(key: i16) -> String {
    API_NAMES
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, n)| (*n).to_owned())
        .unwrap_or_else(|| format!("api key {key}"))
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
    let steady = Duration::from_secs(env("BENCH_STEADY_SECS", 60));
    let warmup = Duration::from_secs(env("BENCH_WARMUP_SECS", 20));

    // The proxy listens first: the broker advertises it, and reaches itself through it too.
    let tally = Arc::new(Tally::default());
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let proxy = listener.local_addr()?.to_string();
    let (target_tx, target_rx) = tokio::sync::watch::channel(String::new());
    {
        let tally = tally.clone();
        tokio::spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    continue;
                };
                let mut rx = target_rx.clone();
                let Ok(broker) = rx.wait_for(|b| !b.is_empty()).await.map(|b| b.clone()) else {
                    continue;
                };
                tally.connections.fetch_add(1, Ordering::Relaxed);
                let tally = tally.clone();
                tokio::spawn(async move {
                    let _ = proxy_connection(sock, broker, tally).await;
                });
            }
        });
    }
    let advertised = proxy.clone();
    let broker =
        tokio::task::spawn_blocking(move || kafka_broker::start_advertising(Some(&advertised)))
            .await?;
    target_tx.send_replace(broker.plaintext.clone());
    let mut admin = kafka_broker::Admin::connect(&broker.plaintext).map_err(anyhow::Error::msg)?;
    for t in 0..TOPICS {
        let topic = format!("topic-{t}");
        admin.create_topic(&topic, 3);
        for p in 0..3 {
            admin.produce(&topic, p, 10);
        }
        admin.commit(&format!("group-{t}"), &topic, &[(0, 0), (1, 0), (2, 0)]);
    }
    println!("broker ready: {TOPICS} topics of 3 partitions, a lag of 30 each");

    ensure_crds().await?;
    let c = client().await?;
    let ns = namespace(&c, "bench-kafka").await?;
    let op = KedaProcess::operator(&ns, "bench-kafka-op")?;
    // Started, watching and leading, before any object exists.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let idle = proc_stat(op.pid());
    let deployments: Api<Deployment> = Api::namespaced(c.clone(), &ns);
    let sos: Api<ScaledObject> = Api::namespaced(c.clone(), &ns);
    let started = Instant::now();
    futures::stream::iter(0..n)
        .map(|i| {
            let (deployments, sos, proxy) = (deployments.clone(), sos.clone(), proxy.clone());
            async move {
                deployments
                    .create(&PostParams::default(), &deployment(i)?)
                    .await?;
                sos.create(&PostParams::default(), &scaled_object(i, &proxy)?)
                    .await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect::<()>()
        .await?;
    println!(
        "{n} Deployments + {n} ScaledObjects created in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    loop {
        let ready = sos
            .list(&ListParams::default())
            .await?
            .items
            .iter()
            .filter(|so| {
                so.status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|cs| cs.iter().any(|c| c.r#type == "Ready" && c.status == "True"))
            })
            .count();
        if ready == n {
            break;
        }
        if started.elapsed() > Duration::from_secs(600) {
            bail!(
                "{ready} of {n} ScaledObjects Ready after 600 s:\n{}",
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
    let before = tally.snapshot();
    let window = Instant::now();
    tokio::time::sleep(steady).await;
    let elapsed = window.elapsed().as_secs_f64();
    let end = proc_stat(op.pid());
    let after = tally.snapshot();
    let delta = |key: i16| {
        (after.get(&key).copied().unwrap_or(0) - before.get(&key).copied().unwrap_or(0)) as f64
    };
    let polls = delta(OFFSET_FETCH);
    if polls == 0.0 {
        bail!("no OffsetFetch reached the broker:\n{}", op.log_tail());
    }
    println!(
        "kafka benchmark: {n} ScaledObjects on {TOPICS} topics, one broker, pollingInterval 1"
    );
    println!(
        "  operator RSS before any object: {:.1} MiB ({:.1} MiB anonymous)",
        idle.rss_kib as f64 / 1024.0,
        idle.anon_kib as f64 / 1024.0
    );
    println!(
        "  steady window {elapsed:.0} s: {:.1} polls/s (expected {n}/s)",
        polls / elapsed
    );
    println!(
        "  operator: {:.3} CPU-s per 1,000 polls; RSS {:.1} MiB (anonymous {:.1} MiB, peak {:.1} MiB)",
        (end.cpu_seconds - cpu0) * 1000.0 / polls,
        end.rss_kib as f64 / 1024.0,
        end.anon_kib as f64 / 1024.0,
        end.hwm_kib as f64 / 1024.0
    );
    println!(
        "  broker connections opened through the proxy (operator and broker): {}",
        tally.connections.load(Ordering::Relaxed)
    );
    println!("  broker requests in the window (API: count, per poll):");
    for key in after.keys() {
        let d = delta(*key);
        if d > 0.0 {
            println!("    {}: {d:.0} ({:.3}/poll)", api_name(*key), d / polls);
        }
    }
    drop(op);
    keda_e2e::kubectl(&["delete", "namespace", &ns, "--wait=false"], None)?;
    Ok(())
}
