//! redis-streams, redis-cluster-streams and redis-sentinel-streams: upstream's parse tables, then real
//! servers (Debian's redis-server 7) with a stream, a consumer group and pending entries.

#![cfg(feature = "redis-streams")]

use crate::{harness, support};

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use keda_scalers::databases::redis_streams::StreamMode;
use keda_scalers::{BuildContext, MetricSpec, Scaler, ScalerError, TriggerInput, parse_trigger};
use serde_json::Value;

#[test]
fn parse_table() {
    let n = harness::run("redis_streams.yaml", |input| {
        let c = keda_scalers::databases::redis_streams::parse_config(input)?;
        let mut m = harness::redis_connection_view(&c.connection);
        let mode = match c.mode {
            StreamMode::PendingEntries => "pendingEntries",
            StreamMode::StreamLength => "streamLength",
            StreamMode::Lag => "lag",
        };
        m.insert("stream".into(), Value::from(c.stream));
        m.insert("consumerGroup".into(), harness::opt(&c.consumer_group));
        m.insert("mode".into(), Value::from(mode));
        m.insert("target".into(), Value::from(c.target));
        m.insert(
            "activationLagCount".into(),
            Value::from(c.activation_lag_count),
        );
        Ok(m)
    });
    assert!(n >= 80, "only {n} cases");
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

async fn build(
    ctx: &BuildContext,
    trigger_type: &str,
    md: &[(&str, &str)],
) -> Result<(MetricSpec, Arc<dyn Scaler>), ScalerError> {
    let (md, env) = (map(md), BTreeMap::new());
    let input = TriggerInput {
        index: 0,
        trigger_type,
        namespace: "default",
        name: None,
        metadata: &md,
        resolved_env: &env,
        auth_params: &env,
        metric_type: None,
    };
    let config = parse_trigger(&input)?;
    let scaler = config.build(ctx).await?;
    Ok((config.metric_spec(), scaler))
}

async fn sample(scaler: &Arc<dyn Scaler>) -> (f64, bool) {
    let s = scaler.sample().await.expect("sample");
    (s.value, s.active)
}

fn assert_backend_error(result: Result<keda_scalers::Sample, ScalerError>) {
    match result {
        Err(e @ ScalerError::Backend { .. }) => assert!(!e.is_permanent()),
        other => panic!("expected a transient backend error, got {other:?}"),
    }
}

async fn mean_latency(label: &str, scaler: &Arc<dyn Scaler>, n: u32) {
    let start = Instant::now();
    for _ in 0..n {
        scaler.sample().await.expect("sample");
    }
    println!(
        "{label}: mean sample latency over {n} samples: {:?}",
        start.elapsed() / n
    );
}

/// Adds `entries` to `stream`, creates `group` at the start, and delivers `delivered` entries to a
/// consumer of it without acknowledging them.
fn fill_stream(port: u16, stream: &str, group: &str, entries: usize, delivered: usize) {
    for i in 0..entries {
        support::redis_cli(port, &["XADD", stream, "*", "n", &i.to_string()]);
    }
    support::redis_cli(port, &["XGROUP", "CREATE", stream, group, "0"]);
    support::redis_cli(
        port,
        &[
            "XREADGROUP",
            "GROUP",
            group,
            "worker-1",
            "COUNT",
            &delivered.to_string(),
            "STREAMS",
            stream,
            ">",
        ],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_modes_activation_and_failure() {
    let mut server = support::start_redis(&[]);
    let port = server.addr.port();
    let address = server.addr.to_string();
    let ctx = BuildContext::default();
    fill_stream(port, "events", "workers", 7, 4);

    // No consumer group: the stream length.
    let (spec, length) = build(
        &ctx,
        "redis-streams",
        &[
            ("address", &address),
            ("stream", "events"),
            ("streamLength", "10"),
        ],
    )
    .await
    .expect("build");
    assert_eq!(spec.metric_name(), "s0-redis-streams-events");
    assert_eq!(
        spec,
        MetricSpec::External {
            metric_name: "s0-redis-streams-events".into(),
            target_type: keda_scalers::MetricTargetType::AverageValue,
            target: 10.0
        }
    );
    assert_eq!(sample(&length).await, (7.0, true));

    // A consumer group: its pending entries; activation compares with activationLagCount, strictly.
    let pending_md = [
        ("address", address.as_str()),
        ("stream", "events"),
        ("consumerGroup", "workers"),
        ("activationLagCount", "4"),
    ];
    let (spec, pending) = build(&ctx, "redis-streams", &pending_md)
        .await
        .expect("build");
    assert_eq!(spec.metric_name(), "s0-redis-streams-events");
    assert_eq!(sample(&pending).await, (4.0, false));
    support::redis_cli(
        port,
        &[
            "XREADGROUP",
            "GROUP",
            "workers",
            "worker-2",
            "COUNT",
            "1",
            "STREAMS",
            "events",
            ">",
        ],
    );
    assert_eq!(sample(&pending).await, (5.0, true));
    let first = support::redis_cli(port, &["XRANGE", "events", "-", "+", "COUNT", "1"]);
    let first_id = first
        .lines()
        .next()
        .expect("an entry id")
        .trim()
        .to_string();
    support::redis_cli(port, &["XACK", "events", "workers", &first_id]);
    assert_eq!(sample(&pending).await, (4.0, false));

    // lagCount: entries not yet delivered to the group (7 added, 5 delivered).
    let lag_md = [
        ("address", address.as_str()),
        ("stream", "events"),
        ("consumerGroup", "workers"),
        ("lagCount", "3"),
    ];
    let (spec, lag) = build(&ctx, "redis-streams", &lag_md).await.expect("build");
    assert!(matches!(spec, MetricSpec::External { target, .. } if target == 3.0));
    assert_eq!(sample(&lag).await, (2.0, true));
    // A group that does not exist yet lags by the whole stream; a stream that does not exist by nothing.
    let (_, no_group) = build(
        &ctx,
        "redis-streams",
        &[
            ("address", &address),
            ("stream", "events"),
            ("consumerGroup", "new"),
            ("lagCount", "3"),
        ],
    )
    .await
    .expect("build");
    assert_eq!(sample(&no_group).await, (7.0, true));
    let (_, no_stream) = build(
        &ctx,
        "redis-streams",
        &[
            ("address", &address),
            ("stream", "nothing"),
            ("consumerGroup", "g"),
            ("lagCount", "3"),
        ],
    )
    .await
    .expect("build");
    assert_eq!(sample(&no_stream).await, (0.0, false));
    // Pending entries of a missing group is a backend error (NOGROUP), as upstream.
    let (_, missing) = build(
        &ctx,
        "redis-streams",
        &[
            ("address", &address),
            ("stream", "nothing"),
            ("consumerGroup", "g"),
        ],
    )
    .await
    .expect("build");
    assert_backend_error(missing.sample().await);

    assert_eq!(ctx.redis.len(), 1);
    mean_latency("redis-streams (pending entries)", &pending, 100).await;
    mean_latency("redis-streams (lag)", &lag, 100).await;

    server.stop();
    for s in [&length, &pending, &lag] {
        assert_backend_error(s.sample().await);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_streams() {
    let mut nodes = support::start_redis_cluster(3);
    let port = nodes[0].addr.port();
    let addresses: Vec<String> = nodes.iter().map(|n| n.addr.to_string()).collect();
    let addresses = addresses.join(",");
    let ctx = BuildContext::default();
    let streams = ["orders", "emails", "thumbnails"];
    for (i, stream) in streams.iter().enumerate() {
        fill_stream(port, stream, "g", 5 + i, 2);
    }
    for (i, stream) in streams.iter().enumerate() {
        let (_, length) = build(
            &ctx,
            "redis-cluster-streams",
            &[("addresses", &addresses), ("stream", stream)],
        )
        .await
        .expect("build");
        assert_eq!(
            sample(&length).await,
            ((5 + i) as f64, true),
            "{stream} length"
        );
        let (_, pending) = build(
            &ctx,
            "redis-cluster-streams",
            &[
                ("addresses", &addresses),
                ("stream", stream),
                ("consumerGroup", "g"),
            ],
        )
        .await
        .expect("build");
        assert_eq!(sample(&pending).await, (2.0, true), "{stream} pending");
        let (_, lag) = build(
            &ctx,
            "redis-cluster-streams",
            &[
                ("addresses", &addresses),
                ("stream", stream),
                ("consumerGroup", "g"),
                ("lagCount", "1"),
            ],
        )
        .await
        .expect("build");
        assert_eq!(sample(&lag).await, ((3 + i) as f64, true), "{stream} lag");
        if i == 0 {
            mean_latency("redis-cluster-streams (lag)", &lag, 100).await;
        }
    }
    let (_, pending) = build(
        &ctx,
        "redis-cluster-streams",
        &[
            ("addresses", &addresses),
            ("stream", "orders"),
            ("consumerGroup", "g"),
        ],
    )
    .await
    .expect("build");
    for n in &mut nodes {
        n.stop();
    }
    assert_backend_error(pending.sample().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_streams() {
    let mut primary = support::start_redis(&[]);
    let primary_port = primary.addr.port();
    let sentinel = support::start_redis_sentinel(primary_port, "primary");
    let sentinel_addr = sentinel.addr.to_string();
    fill_stream(primary_port, "jobs", "g", 6, 1);
    let ctx = BuildContext::default();
    let (_, pending) = build(
        &ctx,
        "redis-sentinel-streams",
        &[
            ("addresses", &sentinel_addr),
            ("sentinelMaster", "primary"),
            ("stream", "jobs"),
            ("consumerGroup", "g"),
        ],
    )
    .await
    .expect("build");
    assert_eq!(sample(&pending).await, (1.0, true));
    let (_, lag) = build(
        &ctx,
        "redis-sentinel-streams",
        &[
            ("addresses", &sentinel_addr),
            ("sentinelMaster", "primary"),
            ("stream", "jobs"),
            ("consumerGroup", "g"),
            ("lagCount", "2"),
            ("activationLagCount", "5"),
        ],
    )
    .await
    .expect("build");
    assert_eq!(sample(&lag).await, (5.0, false));
    mean_latency("redis-sentinel-streams (pending entries)", &pending, 100).await;
    primary.stop();
    assert_backend_error(pending.sample().await);
    assert_backend_error(lag.sample().await);
    drop(sentinel);
}
