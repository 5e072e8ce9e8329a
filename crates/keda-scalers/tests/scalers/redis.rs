//! redis, redis-cluster and redis-sentinel: upstream's parse tables, then real servers (Debian's
//! redis-server: standalone, a 3-node cluster, a sentinel monitoring a primary) on loopback.

#![cfg(feature = "redis")]

use crate::{harness, support};

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use keda_scalers::{BuildContext, MetricSpec, Scaler, ScalerError, TriggerInput, parse_trigger};
use serde_json::Value;

#[test]
fn parse_table() {
    let n = harness::run("redis.yaml", |input| {
        let c = keda_scalers::databases::redis::parse_config(input)?;
        let mut m = harness::redis_connection_view(&c.connection);
        m.insert("listName".into(), Value::from(c.list_name));
        m.insert("listLength".into(), Value::from(c.list_length));
        m.insert(
            "activationListLength".into(),
            Value::from(c.activation_list_length),
        );
        Ok(m)
    });
    assert!(n >= 50, "only {n} cases");
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Parses and builds a trigger; returns its metric spec and the scaler.
async fn build(
    ctx: &BuildContext,
    trigger_type: &str,
    md: &[(&str, &str)],
    auth: &[(&str, &str)],
) -> Result<(MetricSpec, Arc<dyn Scaler>), ScalerError> {
    let (md, auth, env) = (map(md), map(auth), BTreeMap::new());
    let input = TriggerInput {
        index: 0,
        trigger_type,
        namespace: "default",
        name: None,
        metadata: &md,
        resolved_env: &env,
        auth_params: &auth,
        metric_type: None,
    };
    let config = parse_trigger(&input)?;
    let scaler = config.build(ctx).await?;
    Ok((config.metric_spec(), scaler))
}

async fn value_and_activity(scaler: &Arc<dyn Scaler>) -> (f64, bool) {
    let s = scaler.sample().await.expect("sample");
    (s.value, s.active)
}

/// Times `n` samples and prints the mean latency.
async fn mean_latency(label: &str, scaler: &Arc<dyn Scaler>, n: u32) -> Duration {
    let start = Instant::now();
    for _ in 0..n {
        scaler.sample().await.expect("sample");
    }
    let mean = start.elapsed() / n;
    println!("{label}: mean sample latency over {n} samples: {mean:?}");
    mean
}

fn assert_backend_error(result: Result<keda_scalers::Sample, ScalerError>) {
    match result {
        Err(e @ ScalerError::Backend { .. }) => assert!(!e.is_permanent()),
        other => panic!("expected a transient backend error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_list_length_activation_auth_and_failure() {
    let mut server = support::start_redis(&["--requirepass".into(), "s3cret".into()]);
    let port = server.addr.port();
    let address = server.addr.to_string();
    let cli = |args: &[&str]| {
        let mut all = vec!["-a", "s3cret", "--no-auth-warning"];
        all.extend_from_slice(args);
        support::redis_cli(port, &all)
    };
    let ctx = BuildContext::default();
    let md = [
        ("address", address.as_str()),
        ("listName", "jobs"),
        ("listLength", "4"),
        ("activationListLength", "2"),
    ];
    let auth = [("password", "s3cret")];
    let (spec, scaler) = build(&ctx, "redis", &md, &auth).await.expect("build");
    assert_eq!(
        spec,
        MetricSpec::External {
            metric_name: "s0-redis-jobs".into(),
            target_type: keda_scalers::MetricTargetType::AverageValue,
            target: 4.0
        }
    );
    // A missing key counts 0.
    assert_eq!(value_and_activity(&scaler).await, (0.0, false));
    cli(&["RPUSH", "jobs", "a", "b"]);
    // Equal to the activation threshold: not active (strict comparison).
    assert_eq!(value_and_activity(&scaler).await, (2.0, false));
    cli(&["RPUSH", "jobs", "c"]);
    assert_eq!(value_and_activity(&scaler).await, (3.0, true));

    // Sets, sorted sets and hashes are counted too; other types are an error.
    for (kind, args) in [
        ("set", vec!["SADD", "k-set", "a", "b", "c", "d"]),
        (
            "zset",
            vec!["ZADD", "k-zset", "1", "a", "2", "b", "3", "c", "4", "d"],
        ),
        (
            "hash",
            vec!["HSET", "k-hash", "a", "1", "b", "2", "c", "3", "d", "4"],
        ),
    ] {
        cli(&args);
        let key = args[1];
        let md = [("address", address.as_str()), ("listName", key)];
        let (_, s) = build(&ctx, "redis", &md, &auth).await.expect(kind);
        assert_eq!(value_and_activity(&s).await, (4.0, true), "{kind}");
    }
    cli(&["SET", "k-string", "x"]);
    let (_, s) = build(
        &ctx,
        "redis",
        &[("address", address.as_str()), ("listName", "k-string")],
        &auth,
    )
    .await
    .expect("build");
    assert_backend_error(s.sample().await);

    // databaseIndex selects the database.
    cli(&["-n", "3", "RPUSH", "jobs", "x"]);
    let (_, db3) = build(
        &ctx,
        "redis",
        &[
            ("host", "127.0.0.1"),
            ("port", &port.to_string()),
            ("listName", "jobs"),
            ("databaseIndex", "3"),
        ],
        &auth,
    )
    .await
    .expect("build db 3");
    assert_eq!(value_and_activity(&db3).await, (1.0, true));

    // Triggers with the same connection settings share one connection.
    let (_, again) = build(&ctx, "redis", &md, &auth).await.expect("build again");
    assert_eq!(value_and_activity(&again).await, (3.0, true));
    assert_eq!(ctx.redis.len(), 2, "one connection per distinct database");

    // A wrong password fails the build with a transient error.
    let err = build(
        &BuildContext::default(),
        "redis",
        &md,
        &[("password", "wrong")],
    )
    .await
    .err()
    .expect("wrong password must fail");
    assert!(matches!(err, ScalerError::Backend { .. }), "{err}");

    mean_latency("redis (standalone)", &scaler, 100).await;

    server.stop();
    assert_backend_error(scaler.sample().await);
    assert_backend_error(scaler.sample().await);
    let err = build(&BuildContext::default(), "redis", &md, &auth)
        .await
        .err()
        .expect("server is down");
    assert!(matches!(err, ScalerError::Backend { .. }), "{err}");

    // The same scaler recovers once a server is back on the address (empty: no persistence).
    let _restarted = support::start_redis_on(port, &["--requirepass".into(), "s3cret".into()]);
    support::wait_until("the scaler to reconnect", Duration::from_secs(10), || {
        block_on(scaler.sample()).is_ok()
    });
    cli(&["RPUSH", "jobs", "x", "y", "z", "w"]);
    assert_eq!(value_and_activity(&scaler).await, (4.0, true));
}

/// Runs a future to completion from a blocking closure inside the multi-threaded test runtime.
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(f))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_list_lengths_across_slots() {
    let mut nodes = support::start_redis_cluster(3);
    let port = nodes[0].addr.port();
    let addresses: Vec<String> = nodes.iter().map(|n| n.addr.to_string()).collect();
    let addresses = addresses.join(", ");
    let ctx = BuildContext::default();
    // Keys in different slots, so on different nodes.
    let keys = ["orders", "emails", "{user1}:jobs", "thumbnails"];
    let mut scalers = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        for _ in 0..=i {
            support::redis_cli(port, &["RPUSH", key, "item"]);
        }
        let (spec, s) = build(
            &ctx,
            "redis-cluster",
            &[("addresses", &addresses), ("listName", key)],
            &[],
        )
        .await
        .expect("build");
        assert_eq!(
            spec.metric_name(),
            keda_scalers::external_metric_name(0, &format!("redis-{key}"))
        );
        scalers.push(s);
    }
    for (i, s) in scalers.iter().enumerate() {
        assert_eq!(
            value_and_activity(s).await,
            ((i + 1) as f64, true),
            "{}",
            keys[i]
        );
    }
    assert_eq!(ctx.redis.len(), 1);
    // hosts + ports work as well.
    let hosts = ["127.0.0.1"; 3].join(",");
    let ports: Vec<String> = nodes.iter().map(|n| n.addr.port().to_string()).collect();
    let (_, by_hosts) = build(
        &BuildContext::default(),
        "redis-cluster",
        &[
            ("hosts", &hosts),
            ("ports", &ports.join(",")),
            ("listName", "emails"),
        ],
        &[],
    )
    .await
    .expect("build with hosts and ports");
    assert_eq!(value_and_activity(&by_hosts).await, (2.0, true));

    mean_latency("redis-cluster", &scalers[0], 100).await;

    for n in &mut nodes {
        n.stop();
    }
    for s in &scalers {
        assert_backend_error(s.sample().await);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_finds_the_primary() {
    let mut primary = support::start_redis(&[]);
    let primary_port = primary.addr.port();
    let sentinel = support::start_redis_sentinel(primary_port, "mymaster");
    let sentinel_addr = sentinel.addr.to_string();
    support::redis_cli(
        primary_port,
        &["RPUSH", "tasks", "1", "2", "3", "4", "5", "6"],
    );
    let ctx = BuildContext::default();
    let md = [
        ("addresses", sentinel_addr.as_str()),
        ("sentinelMaster", "mymaster"),
        ("listName", "tasks"),
        ("activationListLength", "5"),
    ];
    let (spec, scaler) = build(&ctx, "redis-sentinel", &md, &[])
        .await
        .expect("build");
    assert_eq!(spec.metric_name(), "s0-redis-tasks");
    assert_eq!(value_and_activity(&scaler).await, (6.0, true));
    support::redis_cli(primary_port, &["LPOP", "tasks"]);
    assert_eq!(value_and_activity(&scaler).await, (5.0, false));

    // No sentinelMaster: a configuration error at build.
    let err = build(
        &ctx,
        "redis-sentinel",
        &[("addresses", sentinel_addr.as_str()), ("listName", "tasks")],
        &[],
    )
    .await
    .err()
    .expect("sentinelMaster is needed");
    assert_eq!(err.field(), Some("sentinelMaster"));
    // An unknown master name: the sentinel cannot resolve it.
    let err = build(
        &ctx,
        "redis-sentinel",
        &[
            ("addresses", sentinel_addr.as_str()),
            ("sentinelMaster", "nope"),
            ("listName", "tasks"),
        ],
        &[],
    )
    .await
    .err()
    .expect("unknown master");
    assert!(matches!(err, ScalerError::Backend { .. }), "{err}");

    mean_latency("redis-sentinel", &scaler, 100).await;

    primary.stop();
    assert_backend_error(scaler.sample().await);
    assert_backend_error(scaler.sample().await);

    // The primary comes back: the scaler asks the sentinels again and reconnects.
    let _restarted = support::start_redis_on(primary_port, &[]);
    support::redis_cli(primary_port, &["RPUSH", "tasks", "a"]);
    support::wait_until("the scaler to reconnect", Duration::from_secs(10), || {
        block_on(scaler.sample()).is_ok()
    });
    assert_eq!(value_and_activity(&scaler).await, (1.0, false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_verification_and_client_certificates() {
    let ca = support::TestCa::new();
    let (cert, key) = ca.leaf(&["127.0.0.1"]);
    let (client_cert, client_key) = ca.leaf(&["keda-client"]);
    let ca_pem = ca.pem();
    let server = support::start_redis_tls(&cert, &key, &ca_pem, false);
    let address = server.addr.to_string();
    support::run(
        "redis-cli",
        &[
            "--tls",
            "--cacert",
            &server.dir.path().join("ca.pem").display().to_string(),
            "-p",
            &server.addr.port().to_string(),
            "RPUSH",
            "q",
            "a",
            "b",
        ],
    );
    let md = [
        ("address", address.as_str()),
        ("listName", "q"),
        ("enableTLS", "true"),
    ];
    // Verified against the CA from the TriggerAuthentication.
    let (_, s) = build(&BuildContext::default(), "redis", &md, &[("ca", &ca_pem)])
        .await
        .expect("verified TLS");
    assert_eq!(value_and_activity(&s).await, (2.0, true));
    // `tls: enable` in the TriggerAuthentication instead of enableTLS.
    let (_, s) = build(
        &BuildContext::default(),
        "redis",
        &[("address", address.as_str()), ("listName", "q")],
        &[("tls", "enable"), ("ca", &ca_pem)],
    )
    .await
    .expect("TLS from auth");
    assert_eq!(value_and_activity(&s).await, (2.0, true));
    // Not verifiable with the system roots, unless unsafeSsl.
    let err = build(&BuildContext::default(), "redis", &md, &[])
        .await
        .err()
        .expect("unknown CA");
    assert!(matches!(err, ScalerError::Backend { .. }), "{err}");
    let mut unsafe_md = md.to_vec();
    unsafe_md.push(("unsafeSsl", "true"));
    let (_, s) = build(&BuildContext::default(), "redis", &unsafe_md, &[])
        .await
        .expect("unsafeSsl");
    assert_eq!(value_and_activity(&s).await, (2.0, true));
    // Plain TCP to a TLS port fails.
    let err = build(&BuildContext::default(), "redis", &md[..2], &[])
        .await
        .err()
        .expect("plain to TLS");
    assert!(matches!(err, ScalerError::Backend { .. }), "{err}");
    // An encrypted key is refused with a configuration error naming keyPassword.
    let err = build(
        &BuildContext::default(),
        "redis",
        &md,
        &[
            ("ca", &ca_pem),
            ("cert", &client_cert),
            ("key", &client_key),
            ("keyPassword", "x"),
        ],
    )
    .await
    .err()
    .expect("keyPassword");
    assert_eq!(err.field(), Some("keyPassword"));

    // Mutual TLS: the client certificate and key come from the TriggerAuthentication.
    let mtls = support::start_redis_tls(&cert, &key, &ca_pem, true);
    let mtls_address = mtls.addr.to_string();
    let md = [
        ("address", mtls_address.as_str()),
        ("listName", "q"),
        ("enableTLS", "true"),
    ];
    let (_, s) = build(
        &BuildContext::default(),
        "redis",
        &md,
        &[
            ("ca", &ca_pem),
            ("cert", &client_cert),
            ("key", &client_key),
        ],
    )
    .await
    .expect("mutual TLS");
    assert_eq!(value_and_activity(&s).await, (0.0, false));
    let err = build(&BuildContext::default(), "redis", &md, &[("ca", &ca_pem)])
        .await
        .err()
        .expect("no client cert");
    assert!(matches!(err, ScalerError::Backend { .. }), "{err}");
}
