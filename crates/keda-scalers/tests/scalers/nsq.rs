//! nsq: upstream's parse table, then real nsqlookupd and two nsqd nodes (built by hack/backends/nsq.sh from
//! github.com/nsqio/nsq v1.3.0, one set of processes per test binary on free loopback ports), with topics,
//! channels and messages made over nsqd's HTTP API.

#![cfg(feature = "nsq")]

use crate::{harness, support};

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use keda_scalers::{
    BuildContext, MetricSpec, Scaler, ScalerError, TimeoutDefaults, TriggerConfig,
    sample_with_timeout,
};
use serde_json::Value;
use support::{ServerProcess, TempDir, cached_backend, free_port};

#[test]
fn parse_table() {
    let n = harness::run("nsq.yaml", |input| {
        let c = keda_scalers::messaging::nsq::parse_config(input)?;
        let mut m = serde_json::Map::new();
        m.insert(
            "nsqLookupdHTTPAddresses".into(),
            Value::from(c.lookupd_http_addresses),
        );
        m.insert("topic".into(), Value::from(c.topic));
        m.insert("channel".into(), Value::from(c.channel));
        m.insert("depthThreshold".into(), Value::from(c.depth_threshold));
        m.insert(
            "activationDepthThreshold".into(),
            Value::from(c.activation_depth_threshold),
        );
        m.insert("useHttps".into(), Value::from(c.use_https));
        m.insert("unsafeSsl".into(), Value::from(c.unsafe_ssl));
        Ok(m)
    });
    assert!(n >= 12, "only {n} cases");
}

fn start_lookupd(bin: &Path) -> (ServerProcess, u16) {
    let http = free_port();
    let tcp = free_port();
    let args = vec![
        format!("--http-address=127.0.0.1:{http}"),
        format!("--tcp-address=127.0.0.1:{tcp}"),
        "--broadcast-address=127.0.0.1".to_owned(),
    ];
    let server = ServerProcess::start(
        "nsqlookupd",
        bin.join("nsqlookupd").to_str().expect("utf-8 path"),
        &args,
        http,
        TempDir::new("nsqlookupd"),
        Duration::from_secs(20),
    );
    (server, tcp)
}

fn start_nsqd(bin: &Path, name: &str, lookupd_tcp: u16) -> ServerProcess {
    let http = free_port();
    let tcp = free_port();
    let dir = TempDir::new(name);
    let args = vec![
        format!("--http-address=127.0.0.1:{http}"),
        format!("--tcp-address=127.0.0.1:{tcp}"),
        format!("--lookupd-tcp-address=127.0.0.1:{lookupd_tcp}"),
        "--broadcast-address=127.0.0.1".to_owned(),
        format!("--data-path={}", dir.path().display()),
    ];
    ServerProcess::start(
        name,
        bin.join("nsqd").to_str().expect("utf-8 path"),
        &args,
        http,
        dir,
        Duration::from_secs(20),
    )
}

/// `POST http://<nsqd>/<path>` with `body`; panics unless nsqd answers 200.
async fn post(http: &reqwest::Client, nsqd: &ServerProcess, path: &str, body: &str) {
    let url = format!("http://{}/{path}", nsqd.addr);
    let resp = http
        .post(&url)
        .body(body.to_owned())
        .send()
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    assert!(resp.status().is_success(), "{url}: {}", resp.status());
}

/// Waits until nsqlookupd lists `n` producers of `topic` (nsqd registers over TCP, asynchronously).
async fn await_producers(http: &reqwest::Client, lookupd: &ServerProcess, topic: &str, n: usize) {
    let url = format!("http://{}/lookup?topic={topic}", lookupd.addr);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Ok(resp) = http.get(&url).send().await
            && let Ok(v) = resp.json::<Value>().await
            && v["producers"].as_array().map_or(0, Vec::len) == n
        {
            return;
        }
        assert!(Instant::now() < deadline, "{topic} never had {n} producers");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn signal(server: &ServerProcess, signal: &str) {
    let status = std::process::Command::new("kill")
        .args(["-s", signal, &server.pid().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -s {signal} failed");
}

fn config(metadata: &[(&str, &str)]) -> Box<dyn TriggerConfig> {
    // A case of the parse table with its inputs replaced: Case fills every field TriggerInput has.
    let mut case = harness::load("nsq.yaml")
        .into_iter()
        .next()
        .expect("the parse table has cases");
    case.metadata = metadata
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    case.auth = BTreeMap::new();
    case.env = BTreeMap::new();
    keda_scalers::parse_trigger(&case.input(0)).expect("trigger parses")
}

async fn sample(scaler: &Arc<dyn Scaler>) -> (f64, bool) {
    let s = scaler.sample().await.expect("sample");
    (s.value, s.active)
}

/// Polls until the scaler reads `want` (nsqd moves messages from a topic into its channels in the
/// background), then returns it.
async fn sample_until(scaler: &Arc<dyn Scaler>, want: (f64, bool)) -> (f64, bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = sample(scaler).await;
        if got == want || Instant::now() > deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn channel_depth_from_real_nsqd_nodes() {
    let bin = cached_backend("nsq-1.3.0", "nsq").join("bin");
    let (lookupd, lookupd_tcp) = start_lookupd(&bin);
    let nsqd_a = start_nsqd(&bin, "nsqd-a", lookupd_tcp);
    let mut nsqd_b = start_nsqd(&bin, "nsqd-b", lookupd_tcp);
    let http = reqwest::Client::new();
    let ctx = BuildContext::default();
    let lookupd_addr = lookupd.addr.to_string();
    let trigger =
        |topic: &'static str, channel: &'static str, extra: &[(&'static str, &'static str)]| {
            let mut md: Vec<(&str, &str)> = vec![
                ("nsqLookupdHTTPAddresses", lookupd_addr.as_str()),
                ("topic", topic),
                ("channel", channel),
                ("depthThreshold", "3"),
            ];
            md.extend_from_slice(extra);
            config(&md)
        };

    let plain = trigger("orders", "workers", &[]);
    assert_eq!(
        plain.metric_spec(),
        MetricSpec::External {
            metric_name: "s0-nsq-orders-workers".into(),
            target_type: keda_scalers::MetricTargetType::AverageValue,
            target: 3.0,
        }
    );
    let scaler = plain.build(&ctx).await.expect("build");
    // A topic no nsqd has: nsqlookupd answers 404, which upstream reads as no nodes, depth 0.
    assert_eq!(sample(&scaler).await, (0.0, false));

    // The topic and channel on both nodes; 3 messages on a, 2 on b: the channel depths are summed.
    for nsqd in [&nsqd_a, &nsqd_b] {
        post(&http, nsqd, "topic/create?topic=orders", "").await;
        post(
            &http,
            nsqd,
            "channel/create?topic=orders&channel=workers",
            "",
        )
        .await;
        post(&http, nsqd, "channel/create?topic=orders&channel=audit", "").await;
    }
    await_producers(&http, &lookupd, "orders", 2).await;
    for _ in 0..3 {
        post(&http, &nsqd_a, "pub?topic=orders", "job").await;
    }
    for _ in 0..2 {
        post(&http, &nsqd_b, "pub?topic=orders", "job").await;
    }
    assert_eq!(sample_until(&scaler, (5.0, true)).await, (5.0, true));

    // Activation is strictly above activationDepthThreshold.
    let at = trigger("orders", "workers", &[("activationDepthThreshold", "5")])
        .build(&ctx)
        .await
        .expect("build");
    assert_eq!(sample(&at).await, (5.0, false));
    let below = trigger("orders", "workers", &[("activationDepthThreshold", "4")])
        .build(&ctx)
        .await
        .expect("build");
    assert_eq!(sample(&below).await, (5.0, true));

    // A channel the topic does not have: upstream falls back to the topic's own depth, which is 0 here
    // since nsqd has handed every message to the existing channels.
    let unknown_channel = trigger("orders", "nobody", &[])
        .build(&ctx)
        .await
        .expect("build");
    assert_eq!(sample(&unknown_channel).await, (0.0, false));

    // A topic with no channel at all keeps its messages: its depth counts (upstream's bootstrap case).
    post(&http, &nsqd_a, "topic/create?topic=fresh", "").await;
    await_producers(&http, &lookupd, "fresh", 1).await;
    for _ in 0..4 {
        post(&http, &nsqd_a, "pub?topic=fresh", "job").await;
    }
    let fresh = trigger("fresh", "workers", &[])
        .build(&ctx)
        .await
        .expect("build");
    assert_eq!(sample_until(&fresh, (4.0, true)).await, (4.0, true));

    // Paused on a: a's depth no longer counts; paused on both: 0, inactive.
    post(
        &http,
        &nsqd_a,
        "channel/pause?topic=orders&channel=workers",
        "",
    )
    .await;
    assert_eq!(sample(&scaler).await, (2.0, true));
    post(
        &http,
        &nsqd_b,
        "channel/pause?topic=orders&channel=workers",
        "",
    )
    .await;
    assert_eq!(sample(&scaler).await, (0.0, false));
    post(
        &http,
        &nsqd_a,
        "channel/unpause?topic=orders&channel=workers",
        "",
    )
    .await;
    assert_eq!(sample(&scaler).await, (3.0, true));

    // nsqd b stops: nsqlookupd drops it as its connection closes, so only a counts (as upstream).
    nsqd_b.stop();
    assert_eq!(sample_until(&scaler, (3.0, true)).await, (3.0, true));

    // nsqd a hangs (SIGSTOP) while nsqlookupd still lists it: every poll fails as a backend error within
    // the bound, never hangs.
    signal(&nsqd_a, "STOP");
    let defaults = TimeoutDefaults::default();
    for _ in 0..2 {
        let started = Instant::now();
        let report = sample_with_timeout(plain.as_ref(), scaler.as_ref(), &defaults).await;
        match report.result {
            Err(ScalerError::Backend { action, .. }) => {
                assert_eq!(action, "reading the channel depth")
            }
            other => panic!("expected a backend error, got {other:?}"),
        }
        assert!(
            started.elapsed() < Duration::from_secs(7),
            "{:?}",
            started.elapsed()
        );
    }
    signal(&nsqd_a, "CONT");

    // nsqlookupd itself unreachable: a backend error too.
    let gone = format!("127.0.0.1:{}", free_port());
    let dead = config(&[
        ("nsqLookupdHTTPAddresses", gone.as_str()),
        ("topic", "orders"),
        ("channel", "workers"),
    ]);
    let dead_scaler = dead.build(&ctx).await.expect("build does no IO");
    match sample_with_timeout(dead.as_ref(), dead_scaler.as_ref(), &defaults)
        .await
        .result
    {
        Err(ScalerError::Backend { action, .. }) => {
            assert_eq!(action, "looking up the topic's nsqd nodes")
        }
        other => panic!("expected a backend error, got {other:?}"),
    }
    drop(nsqd_a);
}
