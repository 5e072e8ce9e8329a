//! rabbitmq: upstream's parse tables, then a real RabbitMQ (Debian's rabbitmq-server with the management
//! plugin, one node per test binary on free loopback ports) over AMQP and the management HTTP API.

#![cfg(feature = "rabbitmq")]

use crate::rabbitmq_server;
use crate::{harness, support};

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use keda_scalers::messaging::rabbitmq::{Operation, Protocol, parse_config};
use keda_scalers::{BuildContext, Sample, Scaler, ScalerError, TriggerInput, parse_trigger};
use lapin::options::{BasicGetOptions, BasicPublishOptions};
use lapin::{BasicProperties, Connection, ConnectionProperties};
use rabbitmq_server::{Rabbit, RabbitTls};
use serde_json::{Value, json};

#[test]
fn parse_table() {
    let n = harness::run("rabbitmq.yaml", |input| {
        let c = parse_config(input)?;
        let mut m = serde_json::Map::new();
        m.insert("mode".into(), Value::from(c.mode.as_str()));
        m.insert("value".into(), Value::from(c.value));
        m.insert("activationValue".into(), Value::from(c.activation_value));
        m.insert(
            "protocol".into(),
            Value::from(match c.protocol {
                Protocol::Amqp => "amqp",
                Protocol::Http => "http",
            }),
        );
        m.insert("host".into(), Value::from(c.host.clone()));
        m.insert("vhostName".into(), harness::opt(&c.vhost_name));
        m.insert("useRegex".into(), Value::from(c.use_regex));
        m.insert(
            "excludeUnacknowledged".into(),
            Value::from(c.exclude_unacknowledged),
        );
        m.insert("pageSize".into(), Value::from(c.page_size));
        m.insert(
            "operation".into(),
            Value::from(match c.operation {
                Operation::Sum => "sum",
                Operation::Max => "max",
                Operation::Avg => "avg",
            }),
        );
        m.insert(
            "timeoutMs".into(),
            Value::from(c.timeout.map(|t| t.as_millis() as u64).unwrap_or(0)),
        );
        m.insert("username".into(), harness::opt(&c.username));
        m.insert("password".into(), harness::opt(&c.password));
        m.insert(
            "enableTLS".into(),
            Value::from(if c.tls.is_some() { "enable" } else { "disable" }),
        );
        let tls = c.tls.clone().unwrap_or_default();
        m.insert("ca".into(), harness::opt(&tls.ca));
        m.insert("cert".into(), harness::opt(&tls.cert));
        m.insert("key".into(), harness::opt(&tls.key));
        m.insert("keyPassword".into(), harness::opt(&tls.key_password));
        m.insert("unsafeSsl".into(), Value::from(c.unsafe_ssl));
        Ok(m)
    });
    assert!(n >= 60, "only {n} cases");
}

/// AMQP from the test's side (lapin), next to the node's management API in support.
trait Amqp {
    async fn queue_with(&self, vhost: &str, queue: &str, count: usize);
    async fn connect(&self, vhost: &str) -> Connection;
}

impl Amqp for Rabbit {
    /// Declares `queue` in `vhost` (URL-escaped) and publishes `count` messages to it over AMQP.
    async fn queue_with(&self, vhost: &str, queue: &str, count: usize) {
        self.api(
            reqwest::Method::PUT,
            &format!("queues/{vhost}/{queue}"),
            Some(json!({"durable": false, "auto_delete": false})),
        )
        .await;
        let conn = self.connect(vhost).await;
        let ch = conn.create_channel().await.expect("channel");
        for i in 0..count {
            ch.basic_publish(
                "".into(),
                queue.into(),
                BasicPublishOptions::default(),
                format!("message {i}").as_bytes(),
                BasicProperties::default(),
            )
            .await
            .expect("publish")
            .await
            .expect("published");
        }
        conn.close(200, "".into()).await.expect("close");
    }

    async fn connect(&self, vhost: &str) -> Connection {
        Connection::connect(&self.amqp_url(vhost), ConnectionProperties::default())
            .await
            .expect("AMQP connection for the test")
    }
}

static RABBIT: LazyLock<Rabbit> = LazyLock::new(|| Rabbit::start(None).0);

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

async fn build(
    ctx: &BuildContext,
    md: &[(&str, &str)],
    auth: &[(&str, &str)],
) -> Result<Arc<dyn Scaler>, ScalerError> {
    let (md, auth, env) = (map(md), map(auth), BTreeMap::new());
    let input = TriggerInput {
        index: 3,
        trigger_type: "rabbitmq",
        namespace: "default",
        name: None,
        metadata: &md,
        resolved_env: &env,
        auth_params: &auth,
        metric_type: None,
    };
    parse_trigger(&input)?.build(ctx).await
}

/// Polls `scaler` until its value is `want` (the management API's numbers lag by a statistics interval).
async fn eventually(scaler: &Arc<dyn Scaler>, want: f64) -> Sample {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let s = scaler.sample().await.expect("sample");
        if s.value == want {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "value stayed {} (want {want})",
            s.value
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn rabbit() -> &'static Rabbit {
    &RABBIT
}

#[tokio::test]
async fn queue_length_over_amqp_and_http() {
    let r = rabbit();
    r.queue_with("%2F", "orders", 5).await;
    let ctx = BuildContext::default();
    let amqp_host = r.amqp_url("");
    let amqp = build(
        &ctx,
        &[
            ("queueName", "orders"),
            ("host", &amqp_host),
            ("mode", "QueueLength"),
            ("value", "2"),
        ],
        &[],
    )
    .await
    .expect("amqp scaler");
    let s = amqp.sample().await.expect("sample");
    assert_eq!(
        s,
        Sample {
            value: 5.0,
            active: true
        }
    );
    let http_host = r.http_url();
    let http = build(&ctx, &[("queueName", "orders"), ("host", &http_host)], &[])
        .await
        .expect("http scaler");
    assert_eq!(
        eventually(&http, 5.0).await,
        Sample {
            value: 5.0,
            active: true
        }
    );
    // A second trigger on the same broker shares the AMQP connection.
    let again = build(&ctx, &[("queueName", "orders"), ("host", &amqp_host)], &[])
        .await
        .expect("second amqp scaler");
    assert_eq!(again.sample().await.expect("sample").value, 5.0);
    assert_eq!(ctx.rabbitmq.len(), 1);
    drop((amqp, again));
    assert_eq!(ctx.rabbitmq.len(), 0, "closed with its last scaler");
}

#[tokio::test]
async fn vhost_from_the_url_or_vhost_name() {
    let r = rabbit();
    r.api(reqwest::Method::PUT, "vhosts/tenant-a", None).await;
    r.api(
        reqwest::Method::PUT,
        "permissions/tenant-a/guest",
        Some(json!({"configure": ".*", "write": ".*", "read": ".*"})),
    )
    .await;
    r.queue_with("tenant-a", "jobs", 3).await;
    // The same queue name in the default vhost holds a different number.
    r.queue_with("%2F", "jobs", 1).await;
    let ctx = BuildContext::default();
    let in_url = r.amqp_url("tenant-a");
    let bare = r.amqp_url("");
    let http_in_url = format!("{}/tenant-a", r.http_url());
    let http_bare = r.http_url();
    for (host, vhost_name) in [
        (in_url.as_str(), None),
        (bare.as_str(), Some("tenant-a")),
        (http_in_url.as_str(), None),
        (http_bare.as_str(), Some("tenant-a")),
    ] {
        let mut md = vec![("queueName", "jobs"), ("host", host)];
        md.extend(vhost_name.map(|v| ("vhostName", v)));
        let scaler = build(&ctx, &md, &[]).await.expect("scaler");
        eventually(&scaler, 3.0).await;
    }
    let default_vhost = build(&ctx, &[("queueName", "jobs"), ("host", &http_bare)], &[])
        .await
        .expect("scaler");
    eventually(&default_vhost, 1.0).await;
}

#[tokio::test]
async fn regex_queues_are_combined_by_operation() {
    let r = rabbit();
    r.queue_with("%2F", "rx-small", 2).await;
    r.queue_with("%2F", "rx-large", 4).await;
    r.queue_with("%2F", "unrelated-rx", 10).await;
    let ctx = BuildContext::default();
    let host = r.http_url();
    for (operation, want) in [("sum", 6.0), ("max", 4.0), ("avg", 3.0)] {
        let scaler = build(
            &ctx,
            &[
                ("queueName", "^rx-"),
                ("host", &host),
                ("useRegex", "true"),
                ("operation", operation),
                ("mode", "QueueLength"),
                ("value", "5"),
            ],
            &[],
        )
        .await
        .expect("scaler");
        eventually(&scaler, want).await;
    }
    // No queue matches: 0, inactive.
    let none = build(
        &ctx,
        &[
            ("queueName", "^nothing-matches$"),
            ("host", &host),
            ("useRegex", "true"),
        ],
        &[],
    )
    .await
    .expect("scaler");
    assert_eq!(
        none.sample().await.expect("sample"),
        Sample {
            value: 0.0,
            active: false
        }
    );
}

#[tokio::test]
async fn exclude_unacknowledged_counts_ready_messages_only() {
    let r = rabbit();
    r.queue_with("%2F", "unacked", 4).await;
    // A consumer takes one message and never acknowledges it.
    let conn = r.connect("").await;
    let ch = conn.create_channel().await.expect("channel");
    let taken = ch
        .basic_get("unacked".into(), BasicGetOptions { no_ack: false })
        .await
        .expect("basic.get");
    assert!(taken.is_some(), "a message to hold");
    let ctx = BuildContext::default();
    let host = r.http_url();
    let all = build(&ctx, &[("queueName", "unacked"), ("host", &host)], &[])
        .await
        .expect("scaler");
    eventually(&all, 4.0).await;
    let ready = build(
        &ctx,
        &[
            ("queueName", "unacked"),
            ("host", &host),
            ("excludeUnacknowledged", "true"),
        ],
        &[],
    )
    .await
    .expect("scaler");
    eventually(&ready, 3.0).await;
    // AMQP's passive declare counts ready messages only, as upstream's.
    let amqp_host = r.amqp_url("");
    let amqp = build(&ctx, &[("queueName", "unacked"), ("host", &amqp_host)], &[])
        .await
        .expect("scaler");
    assert_eq!(amqp.sample().await.expect("sample").value, 3.0);
    conn.close(200, "".into()).await.expect("close");
}

#[tokio::test]
async fn message_rate_reads_the_publish_rate() {
    let r = rabbit();
    r.queue_with("%2F", "rates", 0).await;
    let ctx = BuildContext::default();
    let host = r.http_url();
    let scaler = build(
        &ctx,
        &[
            ("queueName", "rates"),
            ("host", &host),
            ("mode", "MessageRate"),
            ("value", "10"),
        ],
        &[],
    )
    .await
    .expect("scaler");
    // Nothing published yet: no message_stats at all, read as 0 (as upstream), inactive.
    assert_eq!(
        scaler.sample().await.expect("sample"),
        Sample {
            value: 0.0,
            active: false
        }
    );
    // Publish ~20 messages a second for a while; the broker's rate follows.
    let conn = r.connect("").await;
    let ch = conn.create_channel().await.expect("channel");
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = None;
    while Instant::now() < deadline {
        for _ in 0..2 {
            ch.basic_publish(
                "".into(),
                "rates".into(),
                BasicPublishOptions::default(),
                b"tick",
                BasicProperties::default(),
            )
            .await
            .expect("publish");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        let s = scaler.sample().await.expect("sample");
        if s.value > 0.0 {
            seen = Some(s);
            break;
        }
    }
    let s = seen.expect("a publish rate above 0 within 20 s");
    assert!(s.active);
    let api = r.api(reqwest::Method::GET, "queues/%2F/rates", None).await;
    let rate = api["message_stats"]["publish_details"]["rate"]
        .as_f64()
        .expect("rate");
    assert!(
        rate > 0.0 && s.value < 1000.0,
        "scaler {} api {rate}",
        s.value
    );
    conn.close(200, "".into()).await.expect("close");
}

#[tokio::test]
async fn activation_is_strictly_above_the_threshold() {
    let r = rabbit();
    r.queue_with("%2F", "activation", 3).await;
    let ctx = BuildContext::default();
    let host = r.amqp_url("");
    for (threshold, active) in [("3", false), ("2.5", true)] {
        let scaler = build(
            &ctx,
            &[
                ("queueName", "activation"),
                ("host", &host),
                ("activationValue", threshold),
            ],
            &[],
        )
        .await
        .expect("scaler");
        assert_eq!(
            scaler.sample().await.expect("sample"),
            Sample { value: 3.0, active }
        );
    }
}

#[tokio::test]
async fn credentials_from_the_trigger_authentication_replace_the_urls() {
    let r = rabbit();
    r.api(
        reqwest::Method::PUT,
        "users/keda",
        Some(json!({"password": "s3cr3t:/@", "tags": "monitoring"})),
    )
    .await;
    r.api(
        reqwest::Method::PUT,
        "permissions/%2F/keda",
        Some(json!({"configure": ".*", "write": ".*", "read": ".*"})),
    )
    .await;
    r.queue_with("%2F", "authq", 2).await;
    let ctx = BuildContext::default();
    let amqp = format!("amqp://nobody:nothing@127.0.0.1:{}", r.amqp);
    let http = format!("http://127.0.0.1:{}", r.http);
    for host in [&amqp, &http] {
        let scaler = build(
            &ctx,
            &[("queueName", "authq"), ("host", host)],
            &[("username", "keda"), ("password", "s3cr3t:/@")],
        )
        .await
        .expect("scaler");
        eventually(&scaler, 2.0).await;
    }
}

#[tokio::test]
async fn a_wrong_password_is_a_backend_error_naming_the_trigger() {
    let r = rabbit();
    r.queue_with("%2F", "authfail", 1).await;
    let ctx = BuildContext::default();
    let amqp = format!("amqp://guest:bad-secret@127.0.0.1:{}", r.amqp);
    let err = build(&ctx, &[("queueName", "authfail"), ("host", &amqp)], &[])
        .await
        .err()
        .expect("AMQP refuses the login at build");
    assert!(matches!(err, ScalerError::Backend { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.starts_with("trigger 3 (rabbitmq): "), "{msg}");
    assert!(
        !msg.contains("bad-secret"),
        "no credentials in errors: {msg}"
    );
    let http = format!("http://guest:bad-secret@127.0.0.1:{}", r.http);
    let scaler = build(&ctx, &[("queueName", "authfail"), ("host", &http)], &[])
        .await
        .expect("HTTP builds without IO");
    let err = scaler.sample().await.expect_err("401");
    assert!(matches!(err, ScalerError::Backend { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.starts_with("trigger 3 (rabbitmq): "), "{msg}");
    assert!(msg.contains("401"), "{msg}");
    assert!(
        !msg.contains("bad-secret"),
        "no credentials in errors: {msg}"
    );
}

#[tokio::test]
async fn the_shared_connection_closes_with_its_last_scaler() {
    let r = rabbit();
    r.api(reqwest::Method::PUT, "vhosts/closing", None).await;
    r.api(
        reqwest::Method::PUT,
        "permissions/closing/guest",
        Some(json!({"configure": ".*", "write": ".*", "read": ".*"})),
    )
    .await;
    r.queue_with("closing", "q", 1).await;
    let keda_connections = || async {
        let list = r
            .api(reqwest::Method::GET, "vhosts/closing/connections", None)
            .await;
        list.as_array()
            .map(|a| {
                a.iter()
                    .filter(|c| c["client_properties"]["connection_name"] == "keda-rs")
                    .count()
            })
            .unwrap_or(0)
    };
    let wait_for = |want: usize| async move {
        let deadline = Instant::now() + Duration::from_secs(15);
        while keda_connections().await != want {
            assert!(
                Instant::now() < deadline,
                "never {want} keda-rs connections"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    let ctx = BuildContext::default();
    let host = r.amqp_url("closing");
    let a = build(&ctx, &[("queueName", "q"), ("host", &host)], &[])
        .await
        .expect("scaler");
    let b = build(&ctx, &[("queueName", "q"), ("host", &host)], &[])
        .await
        .expect("scaler");
    assert_eq!(a.sample().await.expect("sample").value, 1.0);
    assert_eq!(b.sample().await.expect("sample").value, 1.0);
    wait_for(1).await;
    drop(a);
    assert_eq!(b.sample().await.expect("still open").value, 1.0);
    drop(b);
    wait_for(0).await;
}

#[tokio::test]
async fn a_missing_queue_fails_the_poll_and_the_channel_recovers() {
    let r = rabbit();
    let ctx = BuildContext::default();
    let host = r.amqp_url("");
    let scaler = build(
        &ctx,
        &[("queueName", "appears-later"), ("host", &host)],
        &[],
    )
    .await
    .expect("scaler");
    let err = scaler.sample().await.expect_err("no such queue");
    assert!(matches!(err, ScalerError::Backend { .. }), "{err}");
    assert!(
        err.to_string().contains("NOT_FOUND") || err.to_string().contains("404"),
        "{err}"
    );
    r.queue_with("%2F", "appears-later", 2).await;
    assert_eq!(
        scaler
            .sample()
            .await
            .expect("sample after the queue exists")
            .value,
        2.0
    );
}

#[tokio::test]
async fn a_stopped_broker_is_a_backend_error_within_the_timeout() {
    let (mut own, _) = Rabbit::start(None);
    own.queue_with("%2F", "q", 1).await;
    let ctx = BuildContext::default();
    let amqp_host = own.amqp_url("");
    let http_host = own.http_url();
    let amqp = build(&ctx, &[("queueName", "q"), ("host", &amqp_host)], &[])
        .await
        .expect("scaler");
    let http = build(&ctx, &[("queueName", "q"), ("host", &http_host)], &[])
        .await
        .expect("scaler");
    assert_eq!(amqp.sample().await.expect("sample").value, 1.0);
    eventually(&http, 1.0).await;
    own.stop();
    for scaler in [&amqp, &http] {
        let started = Instant::now();
        let err = scaler.sample().await.expect_err("broker gone");
        assert!(matches!(err, ScalerError::Backend { .. }), "{err}");
        assert!(err.to_string().starts_with("trigger 3 (rabbitmq)"), "{err}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
    }
    // And a build against it fails the same way.
    let started = Instant::now();
    let err = build(&ctx, &[("queueName", "q"), ("host", &amqp_host)], &[])
        .await
        .err()
        .expect("no broker");
    assert!(matches!(err, ScalerError::Backend { .. }), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn tls_with_the_trigger_authentications_ca_and_client_certificate() {
    let ca = support::TestCa::new();
    let (cert, key) = ca.leaf(&["127.0.0.1", "localhost"]);
    let (own, ports) = Rabbit::start(Some(&RabbitTls {
        cert,
        key,
        ca: ca.pem(),
    }));
    let (amqps, https) = ports.expect("TLS ports");
    own.queue_with("%2F", "secure", 2).await;
    let (client_cert, client_key) = ca.leaf(&["keda-client"]);
    let ctx = BuildContext::default();
    let amqps_host = format!("amqps://guest:guest@127.0.0.1:{amqps}");
    let https_host = format!("https://guest:guest@127.0.0.1:{https}");
    let tls_auth = [
        ("tls", "enable"),
        ("ca", ca.pem().leak() as &str),
        ("cert", client_cert.leak() as &str),
        ("key", client_key.leak() as &str),
    ];
    for host in [&amqps_host, &https_host] {
        let scaler = build(&ctx, &[("queueName", "secure"), ("host", host)], &tls_auth)
            .await
            .expect("TLS scaler");
        eventually(&scaler, 2.0).await;
        // Without the CA the server is not trusted.
        let untrusted = async {
            build(&ctx, &[("queueName", "secure"), ("host", host)], &[])
                .await?
                .sample()
                .await
        };
        let err = untrusted.await.expect_err("unknown CA");
        assert!(matches!(err, ScalerError::Backend { .. }), "{err}");
        // unsafeSsl with tls enabled skips verification.
        let insecure = build(
            &ctx,
            &[
                ("queueName", "secure"),
                ("host", host),
                ("unsafeSsl", "true"),
            ],
            &[("tls", "enable")],
        )
        .await
        .expect("unsafeSsl scaler");
        eventually(&insecure, 2.0).await;
    }
    drop(own);
}
