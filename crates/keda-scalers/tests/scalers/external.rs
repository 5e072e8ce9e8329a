//! `external` and `external-push` against a real gRPC server implementing upstream's
//! `externalscaler.proto` (tests/support/external_server.rs, answers controlled here): GetMetricSpec,
//! GetMetrics and IsActive, the StreamIsActive push and its latency, TLS and mutual TLS from the
//! TriggerAuthentication, one channel per address and TLS settings, a server restart; and upstream's
//! parse cases.

use crate::external_server;
use crate::{harness, support};

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use external_server::{Backend, ServerTls, serve};
use keda_proto::externalscaler::{MetricSpec as ServerSpec, MetricValue};
use keda_scalers::generic::external::parse_config;
use keda_scalers::{BuildContext, MetricSpec, MetricTargetType, Scaler, TriggerConfig};
use serde_json::Value;

#[test]
fn parse_tables_like_upstream() {
    let n = harness::run("external.yaml", |input| {
        let c = parse_config(input)?;
        let mut m = serde_json::Map::new();
        m.insert(
            "scalerAddress".into(),
            Value::from(c.channel.address.clone()),
        );
        m.insert("enableTLS".into(), Value::from(c.channel.enable_tls));
        m.insert("unsafeSsl".into(), Value::from(c.channel.unsafe_ssl));
        m.insert("caCert".into(), harness::opt(&c.channel.ca_cert));
        m.insert(
            "tlsClientCert".into(),
            harness::opt(&c.channel.tls_client_cert),
        );
        m.insert(
            "tlsClientKey".into(),
            harness::opt(&c.channel.tls_client_key),
        );
        m.insert("push".into(), Value::from(c.push));
        let md: serde_json::Map<String, Value> = c
            .scaler_metadata
            .iter()
            .map(|(k, v)| (k.clone(), Value::from(v.clone())))
            .collect();
        m.insert("scalerMetadata".into(), Value::Object(md));
        Ok(m)
    });
    assert!(n >= 3, "only {n} cases");
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A parsed trigger of `trigger_type` at `index` for object `ns/so`.
fn config(
    trigger_type: &str,
    index: usize,
    metadata: &[(&str, &str)],
    auth: &[(&str, &str)],
) -> Box<dyn TriggerConfig> {
    // Through the parse tables' case, which fills every field of TriggerInput.
    let case = harness::Case {
        name: String::new(),
        trigger_type: trigger_type.to_owned(),
        namespace: "shop".into(),
        metadata: map(metadata),
        auth: map(auth),
        env: BTreeMap::new(),
        error: None,
        expect: Default::default(),
        metrics: Vec::new(),
    };
    let c = keda_scalers::parse_trigger(&case.input(index)).expect("trigger parses");
    c.set_object("shop", "orders");
    c
}

fn ctx() -> BuildContext {
    BuildContext::default()
}

async fn built(c: &dyn TriggerConfig, ctx: &BuildContext) -> Arc<dyn Scaler> {
    c.build(ctx).await.expect("scaler builds")
}

#[tokio::test]
async fn metric_spec_values_and_activity_come_from_the_server() {
    let backend = Backend::default();
    backend.set(|a| {
        a.specs = vec![ServerSpec {
            metric_name: "queue/depth".into(),
            target_size: 0,
            target_size_float: 7.5,
        }];
        a.values = vec![
            MetricValue {
                metric_name: "queue/depth".into(),
                metric_value: 0,
                metric_value_float: 2.5,
            },
            // Only the deprecated integer: used because the float is 0.
            MetricValue {
                metric_name: "queue/depth".into(),
                metric_value: 4,
                metric_value_float: 0.0,
            },
        ];
        a.active = false;
    });
    let server = serve(&backend, 0, None).await;
    let addr = server.addr.to_string();
    let c = config(
        "external",
        2,
        &[("scalerAddress", &addr), ("queue", "orders")],
        &[],
    );
    let ctx = ctx();

    // Before the server was asked, the metric has the placeholder name.
    assert_eq!(c.metric_spec().metric_name(), "s2-external");
    c.resolve_metric_spec(&ctx).await.expect("GetMetricSpec");
    assert_eq!(
        c.metric_spec(),
        MetricSpec::External {
            metric_name: "s2-queue-depth".into(),
            target_type: MetricTargetType::AverageValue,
            target: 7.5,
        }
    );

    let scaler = built(&*c, &ctx).await;
    let s = scaler.sample().await.expect("sample");
    assert_eq!(s.value, 6.5);
    assert!(!s.active, "IsActive said false");
    // The server decides activity, whatever the value.
    backend.set(|a| {
        a.active = true;
        a.values.clear();
    });
    let s = scaler.sample().await.expect("sample");
    assert_eq!((s.value, s.active), (0.0, true));

    let seen = backend.seen();
    // GetMetrics is asked for the server's own name, without the s<index>- prefix.
    assert_eq!(seen.metric_names, vec!["queue/depth", "queue/depth"]);
    assert_eq!(seen.is_active_calls, 2);
    let r = seen.refs.last().expect("a ScaledObjectRef");
    assert_eq!((r.name.as_str(), r.namespace.as_str()), ("orders", "shop"));
    assert_eq!(
        r.scaler_metadata.get("queue").map(String::as_str),
        Some("orders")
    );
    assert_eq!(
        r.scaler_metadata.get("scalerAddress").map(String::as_str),
        Some(addr.as_str())
    );
}

#[tokio::test]
async fn the_deprecated_integer_target_counts_when_the_float_is_unset() {
    let backend = Backend::default();
    backend.set(|a| {
        a.specs = vec![
            ServerSpec {
                metric_name: "jobs".into(),
                target_size: 3,
                target_size_float: 0.0,
            },
            ServerSpec {
                metric_name: "ignored".into(),
                target_size: 9,
                target_size_float: 0.0,
            },
        ];
    });
    let server = serve(&backend, 0, None).await;
    let c = config(
        "external",
        0,
        &[("scalerAddress", &server.addr.to_string())],
        &[],
    );
    c.resolve_metric_spec(&ctx()).await.expect("GetMetricSpec");
    let MetricSpec::External {
        metric_name,
        target,
        ..
    } = c.metric_spec()
    else {
        panic!("external metric")
    };
    assert_eq!((metric_name.as_str(), target), ("s0-jobs", 3.0));
}

#[tokio::test]
async fn server_errors_and_unreachable_servers_are_backend_errors() {
    let backend = Backend::default();
    let server = serve(&backend, 0, None).await;
    let c = config(
        "external",
        0,
        &[("scalerAddress", &server.addr.to_string())],
        &[],
    );
    let ctx = ctx();
    let scaler = built(&*c, &ctx).await;
    backend.set(|a| a.fail = Some(tonic::Code::Unavailable));
    let err = scaler.sample().await.expect_err("the server fails");
    assert!(!err.is_permanent(), "{err}");
    assert!(err.to_string().contains("GetMetrics"), "{err}");

    backend.set(|a| {
        a.fail = None;
        a.specs.clear();
    });
    let fresh = config(
        "external",
        0,
        &[("scalerAddress", &server.addr.to_string())],
        &[],
    );
    let err = fresh
        .resolve_metric_spec(&ctx)
        .await
        .expect_err("no metric spec");
    assert!(err.to_string().contains("no metric spec"), "{err}");

    let port = support::free_port();
    let gone = config(
        "external",
        0,
        &[("scalerAddress", &format!("127.0.0.1:{port}"))],
        &[],
    );
    let started = Instant::now();
    let err = gone.build(&ctx).await.err().expect("nothing listens there");
    assert!(!err.is_permanent(), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5), "{err}");
}

#[tokio::test]
async fn triggers_share_one_channel_per_address_and_tls_settings() {
    let backend = Backend::default();
    let server = serve(&backend, 0, None).await;
    let addr = server.addr.to_string();
    let ctx = ctx();
    let a = config("external", 0, &[("scalerAddress", &addr)], &[]);
    let b = config(
        "external-push",
        1,
        &[("scalerAddress", &addr), ("x", "y")],
        &[],
    );
    let other = config(
        "external",
        2,
        &[("scalerAddress", &addr), ("unsafeSsl", "true")],
        &[],
    );
    let sa = built(&*a, &ctx).await;
    let sb = built(&*b, &ctx).await;
    assert_eq!(ctx.external.len(), 1, "same address and TLS: one channel");
    sa.sample().await.expect("sample a");
    sb.sample().await.expect("sample b");
    // Another TLS setting is another channel (it would speak plaintext too, but it is not shared).
    let _so = other.build(&ctx).await.expect("builds");
    assert_eq!(ctx.external.len(), 2);
    drop((sa, sb, _so));
    assert_eq!(ctx.external.len(), 0, "channels go with their scalers");
}

#[tokio::test]
async fn tls_and_mutual_tls_from_the_trigger_authentication() {
    let ca = support::TestCa::new();
    let (cert, key) = ca.leaf(&["127.0.0.1"]);
    let ctx = ctx();

    // TLS: the server's CA from `caCert` (which alone switches TLS on, as upstream).
    let backend = Backend::default();
    backend.set(|a| a.active = true);
    let server = serve(
        &backend,
        0,
        Some(ServerTls {
            cert: cert.clone(),
            key: key.clone(),
            client_ca: None,
        }),
    )
    .await;
    let addr = server.addr.to_string();
    let c = config(
        "external",
        0,
        &[("scalerAddress", &addr)],
        &[("caCert", &ca.pem())],
    );
    let s = built(&*c, &ctx).await.sample().await.expect("TLS sample");
    assert!(s.active);
    // enableTLS without the CA: the test CA is not trusted.
    let c = config(
        "external",
        0,
        &[("scalerAddress", &addr), ("enableTLS", "true")],
        &[],
    );
    let err = c.build(&ctx).await.err().expect("untrusted server");
    assert!(!err.is_permanent(), "{err}");
    // unsafeSsl skips verification.
    let c = config(
        "external",
        0,
        &[
            ("scalerAddress", &addr),
            ("enableTLS", "true"),
            ("unsafeSsl", "true"),
        ],
        &[],
    );
    built(&*c, &ctx)
        .await
        .sample()
        .await
        .expect("unsafeSsl sample");
    // Plaintext against a TLS server fails.
    let c = config("external", 0, &[("scalerAddress", &addr)], &[]);
    assert!(c.build(&ctx).await.is_err(), "plaintext to a TLS server");

    // Mutual TLS: the server requires a client certificate signed by the CA.
    let mtls = serve(
        &backend,
        0,
        Some(ServerTls {
            cert,
            key,
            client_ca: Some(ca.pem()),
        }),
    )
    .await;
    let addr = mtls.addr.to_string();
    let c = config(
        "external",
        0,
        &[("scalerAddress", &addr)],
        &[("caCert", &ca.pem())],
    );
    assert!(c.build(&ctx).await.is_err(), "no client certificate");
    let (client_cert, client_key) = ca.leaf(&["keda-operator"]);
    let c = config(
        "external-push",
        0,
        &[("scalerAddress", &addr)],
        &[
            ("caCert", &ca.pem()),
            ("tlsClientCert", &client_cert),
            ("tlsClientKey", &client_key),
        ],
    );
    let scaler = built(&*c, &ctx).await;
    scaler.sample().await.expect("mTLS sample");
    // The push stream rides the same mutual-TLS channel.
    let mut rx = scaler.activity().expect("external-push has a stream");
    wait_for_listeners(&backend, 1).await;
    backend.push(true);
    let got = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("push within 5 s");
    assert_eq!(got, Some(true));
}

async fn wait_for_listeners(backend: &Backend, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while backend.listeners() < n {
        assert!(
            Instant::now() < deadline,
            "StreamIsActive not opened: {} listeners",
            backend.listeners()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The bound: an activation pushed by the server reaches the operator within 200 ms.
#[tokio::test]
async fn a_push_arrives_within_200_ms() {
    let backend = Backend::default();
    let server = serve(&backend, 0, None).await;
    let c = config(
        "external-push",
        0,
        &[("scalerAddress", &server.addr.to_string())],
        &[],
    );
    let scaler = built(&*c, &ctx()).await;
    let mut rx = scaler.activity().expect("external-push has a stream");
    wait_for_listeners(&backend, 1).await;
    let mut latencies = Vec::new();
    for i in 0..50 {
        let active = i % 2 == 0;
        let sent = Instant::now();
        assert_eq!(backend.push(active), 1);
        let got = tokio::time::timeout(Duration::from_secs(2), rx.recv())
            .await
            .expect("push delivered")
            .expect("stream open");
        latencies.push(sent.elapsed());
        assert_eq!(got, active);
    }
    latencies.sort();
    let median = latencies[latencies.len() / 2];
    let max = latencies[latencies.len() - 1];
    println!("push -> activity latency over 50 pushes: median {median:?}, max {max:?}");
    assert!(max < Duration::from_millis(200), "max {max:?}");
    // Only external-push listens.
    let polled = config(
        "external",
        0,
        &[("scalerAddress", &server.addr.to_string())],
        &[],
    );
    assert!(built(&*polled, &ctx()).await.activity().is_none());
    // Dropping the receiver closes the stream on the server.
    drop(rx);
    let deadline = Instant::now() + Duration::from_secs(5);
    while backend.listeners() > 0 {
        assert!(Instant::now() < deadline, "stream still open");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn after_a_server_restart_the_next_poll_and_the_stream_recover() {
    let backend = Backend::default();
    backend.set(|a| a.active = true);
    let server = serve(&backend, 0, None).await;
    let addr = server.addr;
    let c = config(
        "external-push",
        0,
        &[("scalerAddress", &addr.to_string())],
        &[],
    );
    let ctx = ctx();
    let scaler = built(&*c, &ctx).await;
    scaler.sample().await.expect("before the restart");
    let mut rx = scaler.activity().expect("stream");
    wait_for_listeners(&backend, 1).await;
    let opened = backend.seen().streams_opened;

    server.stop().await;
    assert!(scaler.sample().await.is_err(), "server down");
    // Same port, new process-equivalent: new listener, no state of the old connections.
    let _again = serve(&backend, addr.port(), None).await;
    let s = scaler
        .sample()
        .await
        .expect("the first poll after the restart");
    assert!(s.active);

    // The stream is opened again after upstream's first backoff (2 s).
    let started = Instant::now();
    while backend.seen().streams_opened == opened {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "StreamIsActive not opened again"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    println!(
        "StreamIsActive reopened {:?} after the restart",
        started.elapsed()
    );
    backend.push(true);
    let got = tokio::time::timeout(Duration::from_secs(2), rx.recv())
        .await
        .expect("push after the restart");
    assert_eq!(got, Some(true));
}
