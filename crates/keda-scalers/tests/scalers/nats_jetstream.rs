//! nats-jetstream: upstream's parse table, then real NATS servers (Debian's `nats-server` with JetStream on
//! free loopback ports): one standalone server, and a three-node cluster whose consumer leader the scaler
//! has to find. Streams, consumers and messages are made with async-nats.

#![cfg(feature = "nats-jetstream")]

use crate::{harness, support};

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer};
use futures::StreamExt;
use keda_scalers::http::{ClientOverrides, HttpClients};
use keda_scalers::{
    BuildContext, MetricSpec, Scaler, ScalerError, TimeoutDefaults, TriggerConfig,
    sample_with_timeout,
};
use serde_json::Value;
use support::{ServerProcess, TempDir, free_port};

#[test]
fn parse_table() {
    let n = harness::run("nats_jetstream.yaml", |input| {
        let c = keda_scalers::messaging::nats_jetstream::parse_config(input)?;
        let mut m = serde_json::Map::new();
        m.insert("monitoringURL".into(), Value::from(c.monitoring_url()));
        m.insert("account".into(), harness::opt(&c.account));
        m.insert("accountID".into(), Value::from(c.account_id));
        m.insert("lagThreshold".into(), Value::from(c.lag_threshold));
        m.insert(
            "activationLagThreshold".into(),
            Value::from(c.activation_lag_threshold),
        );
        Ok(m)
    });
    assert!(n >= 17, "only {n} cases");
}

struct Nats {
    server: ServerProcess,
    client_port: u16,
    monitor_port: u16,
}

/// Starts `nats-server -js` on free loopback ports; `extra` adds arguments (cluster settings).
fn start_nats(name: &str, extra: &[String]) -> Nats {
    let (client_port, monitor_port) = (free_port(), free_port());
    let dir = TempDir::new(&format!("nats-{name}"));
    let mut args: Vec<String> = [
        "-js",
        "-a",
        "127.0.0.1",
        "-p",
        &client_port.to_string(),
        "-m",
        &monitor_port.to_string(),
        "--server_name",
        name,
        "-sd",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.push(dir.path().join("store").display().to_string());
    args.extend(extra.iter().cloned());
    let server = ServerProcess::start(
        name,
        "nats-server",
        &args,
        monitor_port,
        dir,
        Duration::from_secs(15),
    );
    Nats {
        server,
        client_port,
        monitor_port,
    }
}

async fn jetstream_of(nats: &Nats) -> jetstream::Context {
    let client = async_nats::ConnectOptions::new()
        .ignore_discovered_servers()
        .connect(format!("127.0.0.1:{}", nats.client_port))
        .await
        .expect("connect to nats-server");
    jetstream::new(client)
}

fn orders_stream(replicas: usize) -> jetstream::stream::Config {
    jetstream::stream::Config {
        name: "orders".into(),
        subjects: vec!["orders.>".into()],
        num_replicas: replicas,
        ..Default::default()
    }
}

/// Stream `orders` (subjects `orders.>`) with `replicas`, a durable pull consumer `workers` with explicit
/// acks, and `count` messages.
async fn orders(js: &jetstream::Context, replicas: usize, count: usize) -> consumer::PullConsumer {
    let stream = js
        .create_stream(orders_stream(replicas))
        .await
        .expect("create stream");
    let consumer = stream
        .create_consumer(consumer::pull::Config {
            durable_name: Some("workers".into()),
            ack_policy: consumer::AckPolicy::Explicit,
            ..Default::default()
        })
        .await
        .expect("create consumer");
    for i in 0..count {
        js.publish(format!("orders.{i}"), "order".into())
            .await
            .expect("publish")
            .await
            .expect("publish acknowledged");
    }
    consumer
}

fn config(metadata: &[(&str, &str)]) -> Box<dyn TriggerConfig> {
    // A case of the parse table with its inputs replaced: Case fills every field TriggerInput has.
    let mut case = harness::load("nats_jetstream.yaml")
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

async fn backend_error(scaler: &Arc<dyn Scaler>) -> String {
    match scaler.sample().await {
        Err(e @ ScalerError::Backend { .. }) => e.to_string(),
        other => panic!("expected a backend error, got {other:?}"),
    }
}

#[tokio::test]
async fn consumer_lag_from_a_real_server() {
    let mut nats = start_nats("solo", &[]);
    let js = jetstream_of(&nats).await;
    let consumer = orders(&js, 1, 5).await;
    let endpoint = format!("127.0.0.1:{}", nats.monitor_port);
    let ctx = BuildContext::default();
    let trigger = |extra: &[(&'static str, &'static str)]| {
        let mut md: Vec<(&str, &str)> = vec![
            ("natsServerMonitoringEndpoint", endpoint.as_str()),
            ("account", "$G"),
            ("stream", "orders"),
            ("consumer", "workers"),
            ("lagThreshold", "3"),
        ];
        md.extend_from_slice(extra);
        config(&md)
    };

    let plain = trigger(&[]);
    assert_eq!(
        plain.metric_spec(),
        MetricSpec::External {
            metric_name: "s0-nats-jetstream-orders".into(),
            target_type: keda_scalers::MetricTargetType::AverageValue,
            target: 3.0,
        }
    );
    let scaler = plain.build(&ctx).await.expect("build");
    assert_eq!(sample(&scaler).await, (5.0, true));

    // Two delivered and not acked are still lag (num_ack_pending); one acked is not.
    let mut batch = consumer
        .fetch()
        .max_messages(2)
        .messages()
        .await
        .expect("fetch");
    let mut delivered = Vec::new();
    while let Some(m) = batch.next().await {
        delivered.push(m.expect("message"));
    }
    assert_eq!(delivered.len(), 2);
    assert_eq!(sample(&scaler).await, (5.0, true));
    delivered[0].ack().await.expect("ack");
    let deadline = Instant::now() + Duration::from_secs(5);
    while sample(&scaler).await.0 != 4.0 {
        assert!(Instant::now() < deadline, "the acked message still counts");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The account by ID only; activation strictly above activationLagThreshold.
    let by_id = config(&[
        ("natsServerMonitoringEndpoint", endpoint.as_str()),
        ("accountID", "$G"),
        ("stream", "orders"),
        ("consumer", "workers"),
    ]);
    assert_eq!(
        sample(&by_id.build(&ctx).await.expect("build")).await,
        (4.0, true)
    );
    let at = trigger(&[("activationLagThreshold", "4")])
        .build(&ctx)
        .await
        .expect("build");
    assert_eq!(sample(&at).await, (4.0, false));
    let below = trigger(&[("activationLagThreshold", "3")])
        .build(&ctx)
        .await
        .expect("build");
    assert_eq!(sample(&below).await, (4.0, true));

    // Unknown consumer, stream or account: errors, as upstream.
    let no_consumer = config(&[
        ("natsServerMonitoringEndpoint", endpoint.as_str()),
        ("account", "$G"),
        ("stream", "orders"),
        ("consumer", "nobody"),
    ]);
    let err = backend_error(&no_consumer.build(&ctx).await.expect("build")).await;
    assert!(
        err.contains(r#"consumer "nobody" not found in stream "orders""#),
        "{err}"
    );
    for (key, value) in [("stream", "missing"), ("account", "NOPE")] {
        let mut md = vec![
            ("natsServerMonitoringEndpoint", endpoint.as_str()),
            ("account", "$G"),
            ("stream", "orders"),
            ("consumer", "workers"),
        ];
        md.retain(|(k, _)| *k != key);
        md.push((key, value));
        let err = backend_error(&config(&md).build(&ctx).await.expect("build")).await;
        assert!(err.contains("not found"), "{key}: {err}");
    }

    // The server goes away: a backend error within the bound, never a hang.
    nats.server.stop();
    let started = Instant::now();
    let report =
        sample_with_timeout(plain.as_ref(), scaler.as_ref(), &TimeoutDefaults::default()).await;
    match report.result {
        Err(ScalerError::Backend { .. }) => {}
        other => panic!("expected a backend error, got {other:?}"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

/// Three clustered servers. Each advertises its client URL as `n<i>.nats.test:<port>`; the scaler reaches
/// every node's monitoring port through that host name, which the test's HTTP clients resolve to the
/// node's loopback monitoring address (the monitoring endpoint is given without a port, so the resolved
/// address's port is used, as a per-pod DNS name would be).
#[tokio::test]
async fn clustered_consumer_is_read_from_its_leader() {
    let names = ["n1", "n2", "n3"];
    let route_ports: Vec<u16> = names.iter().map(|_| free_port()).collect();
    let routes = route_ports
        .iter()
        .map(|p| format!("nats://127.0.0.1:{p}"))
        .collect::<Vec<_>>()
        .join(",");
    let mut nodes: Vec<Nats> = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let advertise = format!("{name}.nats.test:{}", 4222 + i);
        nodes.push(start_nats(
            name,
            &[
                "--cluster_name".into(),
                "keda".into(),
                "--cluster".into(),
                format!("nats://127.0.0.1:{}", route_ports[i]),
                "--routes".into(),
                routes.clone(),
                "--client_advertise".into(),
                advertise,
            ],
        ));
    }
    let monitors: Vec<(String, SocketAddr)> = names
        .iter()
        .zip(&nodes)
        .map(|(n, node)| {
            (
                format!("{n}.nats.test"),
                SocketAddr::from(([127, 0, 0, 1], node.monitor_port)),
            )
        })
        .collect();
    let ctx = BuildContext {
        http: HttpClients::with_overrides(ClientOverrides {
            resolve: monitors.clone(),
            extra_roots: vec![],
        }),
        ..Default::default()
    };

    // JetStream needs its meta leader, and every peer known to it, before a 3-replica stream can be made.
    let js = jetstream_of(&nodes[0]).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match tokio::time::timeout(Duration::from_secs(5), js.create_stream(orders_stream(3))).await
        {
            Ok(Ok(_)) => break,
            _ if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(250)).await,
            Ok(Err(e)) => panic!("JetStream cluster not ready: {e}"),
            Err(_) => panic!("JetStream cluster not ready: no answer"),
        }
    }
    let mut consumer = orders(&js, 3, 6).await;
    let leader = consumer
        .info()
        .await
        .expect("consumer info")
        .cluster
        .as_ref()
        .and_then(|c| c.leader.clone())
        .expect("consumer leader");
    // Point the trigger at a node that is not the leader.
    let entry = names.iter().position(|n| *n != leader).expect("a follower");
    let endpoint = format!("{}.nats.test", names[entry]);
    let trigger = config(&[
        ("natsServerMonitoringEndpoint", endpoint.as_str()),
        ("account", "$G"),
        ("stream", "orders"),
        ("consumer", "workers"),
    ]);
    let scaler = trigger.build(&ctx).await.expect("build");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match scaler.sample().await {
            Ok(s) if s.value == 6.0 => {
                assert!(s.active);
                break;
            }
            other if Instant::now() > deadline => panic!("lag of 6 not read: {other:?}"),
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    // The leader's node is remembered: with the node the trigger names stopped, polls still read it.
    nodes[entry].server.stop();
    assert_eq!(sample(&scaler).await, (6.0, true));
    // A fresh scaler has to start at the stopped node and fails as a backend error.
    let fresh = trigger.build(&ctx).await.expect("build");
    backend_error(&fresh).await;
}

/// Answers no NATS server gives but a proxy in front of one may: each is a backend error (transient),
/// never a panic or a silent 0. (The shared HTTP conformance harness checks activation with a fractional
/// value, which a whole-number lag cannot give, so these checks live here.)
#[tokio::test]
async fn bad_monitoring_answers_are_backend_errors() {
    use axum::Router;
    use axum::http::StatusCode;
    use std::sync::Mutex;

    type Answer = Arc<Mutex<(StatusCode, String)>>;
    let answer: Answer = Arc::new(Mutex::new((StatusCode::OK, String::new())));
    let current = answer.clone();
    let app = Router::new().fallback(move || {
        let current = current.clone();
        async move {
            let (status, body) = current.lock().expect("lock").clone();
            (status, [("content-type", "application/json")], body)
        }
    });
    let addr = support::serve_http(app).await;
    let endpoint = addr.to_string();
    let trigger = config(&[
        ("natsServerMonitoringEndpoint", endpoint.as_str()),
        ("account", "$G"),
        ("stream", "orders"),
        ("consumer", "workers"),
    ]);
    let scaler = trigger
        .build(&BuildContext::default())
        .await
        .expect("build");
    let good = |pending: &str| {
        format!(
            r#"{{"account_details":[{{"id":"$G","name":"$G","stream_detail":[{{"name":"orders",
            "consumer_detail":[{{"name":"workers","num_pending":{pending},"num_ack_pending":1}}]}}]}}]}}"#
        )
    };
    *answer.lock().expect("lock") = (StatusCode::OK, good("4"));
    assert_eq!(sample(&scaler).await, (5.0, true));
    for (status, body) in [
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "backend exploded".to_owned(),
        ),
        (StatusCode::OK, String::new()),
        (StatusCode::OK, "not json {".to_owned()),
        (
            StatusCode::OK,
            "<html><body><h1>502 Bad Gateway</h1></body></html>".to_owned(),
        ),
        (StatusCode::OK, "[]".to_owned()),
        (StatusCode::OK, good("4.5")),
    ] {
        *answer.lock().expect("lock") = (status, body.clone());
        let err = backend_error(&scaler).await;
        assert!(
            err.contains("reading JetStream monitoring data"),
            "{body}: {err}"
        );
    }
}
