//! kafka: upstream's parse tables, then one real Apache Kafka broker (KRaft, broker and controller in
//! one JVM, from the Maven artifacts `hack/backends/kafka.sh` caches) shared by every test of this file.
//! The tests create topics, produce records and commit group offsets themselves (`admin` below: a
//! small blocking client on kafka-protocol, independent of the scaler's own), then check the lag the
//! scaler reports. The JVM stops when the test binary exits (a shell wrapper waits on a pipe from it);
//! `KEDA_RS_KEEP_KAFKA=1` keeps its scratch directory (server.properties, kafka.log) for a look.

#![cfg(feature = "kafka")]

use crate::{harness, support};

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use keda_scalers::messaging::kafka::{KafkaConfig, parse_config};
use keda_scalers::{
    BuildContext, MetricSpec, MetricTargetType, Scaler, ScalerError, TriggerConfig, TriggerInput,
    parse_trigger,
};
use serde_json::{Map, Value};

fn view(c: &KafkaConfig) -> Map<String, Value> {
    let mut m = Map::new();
    let conn = &c.connection;
    m.insert(
        "bootstrapServers".into(),
        Value::from(conn.bootstrap_servers.clone()),
    );
    m.insert(
        "consumerGroup".into(),
        Value::from(c.consumer_group.clone()),
    );
    m.insert("topic".into(), harness::opt(&c.topic));
    m.insert(
        "partitionLimitation".into(),
        c.partition_limitation
            .clone()
            .map(Value::from)
            .unwrap_or(Value::Null),
    );
    m.insert(
        "offsetResetPolicy".into(),
        Value::from(c.offset_reset_policy.as_str()),
    );
    m.insert(
        "allowIdleConsumers".into(),
        Value::from(c.allow_idle_consumers),
    );
    m.insert(
        "excludePersistentLag".into(),
        Value::from(c.exclude_persistent_lag),
    );
    m.insert(
        "limitToPartitionsWithLag".into(),
        Value::from(c.limit_to_partitions_with_lag),
    );
    m.insert(
        "ensureEvenDistributionOfPartitions".into(),
        Value::from(c.ensure_even_distribution_of_partitions),
    );
    m.insert("lagThreshold".into(), Value::from(c.lag_threshold));
    let tls = conn.tls.clone().unwrap_or_default();
    m.insert("enableTLS".into(), Value::from(conn.tls.is_some()));
    m.insert("unsafeSsl".into(), Value::from(tls.unsafe_ssl));
    m.insert("ca".into(), harness::opt(&tls.ca));
    m.insert("cert".into(), harness::opt(&tls.cert));
    m.insert("key".into(), harness::opt(&tls.key));
    m.insert("keyPassword".into(), harness::opt(&tls.key_password));
    use keda_scalers::messaging::kafka::Sasl;
    let (sasl, provider) = match &conn.sasl {
        None => ("", ""),
        Some(Sasl::Plain { .. }) => ("plaintext", ""),
        Some(Sasl::ScramSha256 { .. }) => ("scram_sha256", ""),
        Some(Sasl::ScramSha512 { .. }) => ("scram_sha512", ""),
        Some(Sasl::OAuthBearer { token_provider }) => ("oauthbearer", token_provider.as_str()),
        Some(Sasl::Gssapi) => ("gssapi", ""),
    };
    m.insert("sasl".into(), Value::from(sasl));
    m.insert("tokenProvider".into(), Value::from(provider));
    m
}

#[test]
fn parse_table() {
    let n = harness::run("kafka.yaml", |input| Ok(view(&parse_config(input)?)));
    assert!(n >= 150, "only {n} cases");
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn parse(
    index: usize,
    md: &[(&str, &str)],
    auth: &[(&str, &str)],
    metric_type: Option<&str>,
) -> Result<Box<dyn TriggerConfig>, ScalerError> {
    let (md, auth, env) = (map(md), map(auth), BTreeMap::new());
    parse_trigger(&TriggerInput {
        index,
        trigger_type: "kafka",
        namespace: "default",
        name: None,
        metadata: &md,
        resolved_env: &env,
        auth_params: &auth,
        metric_type,
    })
}

#[test]
fn metric_spec_and_errors_name_the_trigger() {
    let md = [
        ("bootstrapServers", "b:9092"),
        ("consumerGroup", "g"),
        ("topic", "orders.v1"),
        ("lagThreshold", "7"),
    ];
    let spec = parse(3, &md, &[], Some("Value"))
        .expect("parses")
        .metric_spec();
    assert_eq!(
        spec,
        MetricSpec::External {
            metric_name: "s3-kafka-orders-v1".into(),
            target_type: MetricTargetType::Value,
            target: 7.0,
        }
    );
    let err = parse(2, &[("bootstrapServers", "b:9092")], &[], None).expect_err("no group");
    let text = err.to_string();
    assert!(
        text.contains("trigger 2 (kafka)") && text.contains("consumerGroup"),
        "{text}"
    );
    let err = parse(
        1,
        &[
            ("bootstrapServers", "b:9092"),
            ("consumerGroup", "g"),
            ("lagThreshold", "0"),
        ],
        &[],
        None,
    )
    .expect_err("lagThreshold 0");
    assert_eq!(err.field(), Some("lagThreshold"));
    assert!(err.to_string().contains("must be positive number"), "{err}");
}

use crate::kafka_broker as broker;

fn broker() -> &'static broker::Broker {
    static BROKER: OnceLock<broker::Broker> = OnceLock::new();
    BROKER.get_or_init(broker::start)
}

fn admin() -> broker::Admin {
    broker::Admin::connect(&broker().plaintext).expect("admin connection")
}

/// A topic of `partitions` partitions holding `records[p]` records in partition p; a unique name.
fn topic_with(prefix: &str, records: &[usize]) -> String {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let name = format!(
        "{prefix}-{}",
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let mut a = admin();
    a.create_topic(&name, records.len() as i32);
    for (p, &n) in records.iter().enumerate() {
        if n > 0 {
            a.produce(&name, p as i32, n);
        }
    }
    name
}

async fn build(
    ctx: &BuildContext,
    md: &[(&str, &str)],
    auth: &[(&str, &str)],
) -> Result<Arc<dyn Scaler>, ScalerError> {
    parse(0, md, auth, None)?.build(ctx).await
}

/// (value, active) of one sample of a trigger on the plaintext listener.
async fn sample(ctx: &BuildContext, md: &[(&str, &str)]) -> (f64, bool) {
    let mut all = vec![("bootstrapServers", broker().plaintext.as_str())];
    all.extend_from_slice(md);
    let scaler = build(ctx, &all, &[]).await.expect("build");
    let s = scaler.sample().await.expect("sample");
    (s.value, s.active)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lag_per_partition_and_the_offset_reset_policy() {
    // Log ends 10, 5, 3; the group committed 4 and 5, nothing on partition 2.
    let topic = topic_with("lag", &[10, 5, 3]);
    admin().commit("g-lag", &topic, &[(0, 4), (1, 5)]);
    let ctx = BuildContext::default();
    let t = |extra: &'static [(&'static str, &'static str)]| {
        let mut md = vec![("consumerGroup", "g-lag"), ("topic", topic.as_str())];
        md.extend_from_slice(extra);
        md
    };
    // latest: a partition without a committed offset counts 1 → 6 + 0 + 1.
    assert_eq!(sample(&ctx, &t(&[])).await, (7.0, true));
    // earliest: it counts its whole log → 6 + 0 + 3.
    assert_eq!(
        sample(&ctx, &t(&[("offsetResetPolicy", "earliest")])).await,
        (9.0, true)
    );
    // scaleToZeroOnInvalidOffset: it counts 0, with either policy.
    assert_eq!(
        sample(&ctx, &t(&[("scaleToZeroOnInvalidOffset", "true")])).await,
        (6.0, true)
    );
    assert_eq!(
        sample(
            &ctx,
            &t(&[
                ("scaleToZeroOnInvalidOffset", "true"),
                ("offsetResetPolicy", "earliest")
            ])
        )
        .await,
        (6.0, true)
    );
    // Activation is strictly above activationLagThreshold.
    assert_eq!(
        sample(&ctx, &t(&[("activationLagThreshold", "7")])).await,
        (7.0, false)
    );
    assert_eq!(
        sample(&ctx, &t(&[("activationLagThreshold", "6")])).await,
        (7.0, true)
    );
    // partitionLimitation: only partition 0, then partitions 1 and 2.
    assert_eq!(
        sample(&ctx, &t(&[("partitionLimitation", "0")])).await,
        (6.0, true)
    );
    assert_eq!(
        sample(&ctx, &t(&[("partitionLimitation", "1-2")])).await,
        (1.0, true)
    );
    // Caught up everywhere: 0 and inactive.
    admin().commit("g-lag", &topic, &[(0, 10), (1, 5), (2, 3)]);
    assert_eq!(sample(&ctx, &t(&[])).await, (0.0, false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caps_idle_consumers_and_partitions_with_lag() {
    // Lags 6, 0, 2 at lagThreshold 1.
    let topic = topic_with("caps", &[10, 5, 3]);
    admin().commit("g-caps", &topic, &[(0, 4), (1, 5), (2, 1)]);
    let ctx = BuildContext::default();
    let t = |extra: &'static [(&'static str, &'static str)]| {
        let mut md = vec![
            ("consumerGroup", "g-caps"),
            ("topic", topic.as_str()),
            ("lagThreshold", "1"),
        ];
        md.extend_from_slice(extra);
        md
    };
    // No more consumers than partitions: 3 × 1.
    assert_eq!(sample(&ctx, &t(&[])).await, (3.0, true));
    // Idle consumers allowed: the whole lag.
    assert_eq!(
        sample(&ctx, &t(&[("allowIdleConsumers", "true")])).await,
        (8.0, true)
    );
    // No more consumers than partitions with lag: 2 × 1.
    assert_eq!(
        sample(&ctx, &t(&[("limitToPartitionsWithLag", "true")])).await,
        (2.0, true)
    );
    // ensureEvenDistributionOfPartitions with threshold 3: lag 8 needs 3 consumers, a divisor of 3.
    assert_eq!(
        sample(
            &ctx,
            &[
                ("consumerGroup", "g-caps"),
                ("topic", topic.as_str()),
                ("lagThreshold", "3"),
                ("ensureEvenDistributionOfPartitions", "true"),
            ]
        )
        .await,
        (9.0, true)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_lag_is_excluded_after_the_first_poll() {
    let topic = topic_with("persistent", &[10, 4]);
    admin().commit("g-persist", &topic, &[(0, 4), (1, 4)]);
    let ctx = BuildContext::default();
    let md = [
        ("bootstrapServers", broker().plaintext.as_str()),
        ("consumerGroup", "g-persist"),
        ("topic", topic.as_str()),
        ("excludePersistentLag", "true"),
    ];
    let scaler = build(&ctx, &md, &[]).await.expect("build");
    let s = scaler.sample().await.expect("first");
    assert_eq!(
        (s.value, s.active),
        (6.0, true),
        "first poll counts the lag"
    );
    let s = scaler.sample().await.expect("second");
    // The consumer did not move: left out of the metric, but still active.
    assert_eq!((s.value, s.active), (0.0, true), "stuck partition");
    admin().commit("g-persist", &topic, &[(0, 7)]);
    let s = scaler.sample().await.expect("third");
    assert_eq!((s.value, s.active), (3.0, true), "moved again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_topic_every_topic_of_the_group_counts() {
    let a = topic_with("all-a", &[5, 5]);
    let b = topic_with("all-b", &[8]);
    let _unrelated = topic_with("all-c", &[100]);
    admin().commit("g-all", &a, &[(0, 1), (1, 5)]);
    admin().commit("g-all", &b, &[(0, 2)]);
    let ctx = BuildContext::default();
    // 4 + 0 + 6; the unrelated topic's 100 records do not count.
    assert_eq!(
        sample(
            &ctx,
            &[("consumerGroup", "g-all"), ("allowIdleConsumers", "true")]
        )
        .await,
        (10.0, true)
    );
    let config = parse(
        0,
        &[("bootstrapServers", "x:1"), ("consumerGroup", "g-all")],
        &[],
        None,
    )
    .expect("parse");
    assert_eq!(config.metric_spec().metric_name(), "s0-kafka-g-all-topics");
    // A group that never committed: nothing lags.
    assert_eq!(
        sample(&ctx, &[("consumerGroup", "g-never")]).await,
        (0.0, false)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn triggers_share_one_client_and_few_connections() {
    let topic = topic_with("shared", &[3, 3]);
    admin().commit("g-shared", &topic, &[(0, 1), (1, 1)]);
    let ctx = BuildContext::default();
    let md = [
        ("bootstrapServers", broker().plaintext.as_str()),
        ("consumerGroup", "g-shared"),
        ("topic", topic.as_str()),
    ];
    let mut scalers = Vec::new();
    for _ in 0..200 {
        scalers.push(build(&ctx, &md, &[]).await.expect("build"));
    }
    assert_eq!(ctx.kafka.len(), 1, "one client for one broker and settings");
    let started = Instant::now();
    let polls = futures::future::join_all(scalers.iter().map(|s| s.sample())).await;
    let elapsed = started.elapsed();
    for p in polls {
        assert_eq!(p.expect("sample").value, 4.0);
    }
    println!("200 concurrent polls on one shared client: {elapsed:?}");
    // Reach the client through a fresh build: the same one, still one connection per broker address.
    let client = ctx
        .kafka
        .get(
            &parse_config(&TriggerInput {
                index: 0,
                trigger_type: "kafka",
                namespace: "default",
                name: None,
                metadata: &map(&md),
                resolved_env: &BTreeMap::new(),
                auth_params: &BTreeMap::new(),
                metric_type: None,
            })
            .expect("parse")
            .connection,
            &ctx.tls,
            &keda_scalers::TriggerRef {
                index: 0,
                trigger_type: "kafka".into(),
            },
        )
        .await
        .expect("client");
    assert_eq!(
        client.open_connections(),
        1,
        "the bootstrap server is the broker"
    );
    drop(scalers);
    drop(client);
    assert_eq!(ctx.kafka.len(), 0, "closed with its last trigger");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_errors_are_transient_and_bounded() {
    let ctx = BuildContext::default();
    // Nothing listens: refused at once.
    let closed = format!("127.0.0.1:{}", support::free_port());
    let err = build(
        &ctx,
        &[("bootstrapServers", &closed), ("consumerGroup", "g")],
        &[],
    )
    .await
    .err()
    .expect("refused");
    assert!(
        matches!(err, ScalerError::Backend { .. }) && err.to_string().contains("trigger 0 (kafka)"),
        "{err}"
    );
    // A listener that never answers: the build gives up within its bound, not hangs.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = silent.local_addr().expect("addr").to_string();
    let config = parse(
        0,
        &[("bootstrapServers", &addr), ("consumerGroup", "g")],
        &[],
        None,
    )
    .expect("parse");
    let bound = config
        .timeouts(&Default::default())
        .build
        .expect("build bound");
    let started = Instant::now();
    let err = keda_scalers::build_with_timeout(config.as_ref(), &ctx)
        .await
        .err()
        .expect("silent broker");
    assert!(!err.is_permanent(), "{err}");
    assert!(started.elapsed() <= bound + Duration::from_secs(1));
    drop(silent);
    // A topic that does not exist: a backend error naming it, on every poll.
    let scaler = build(
        &ctx,
        &[
            ("bootstrapServers", broker().plaintext.as_str()),
            ("consumerGroup", "g"),
            ("topic", "no-such-topic"),
        ],
        &[],
    )
    .await
    .expect("build");
    for _ in 0..2 {
        let err = scaler.sample().await.expect_err("unknown topic");
        assert!(
            !err.is_permanent() && err.to_string().contains("UNKNOWN_TOPIC_OR_PARTITION"),
            "{err}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sasl_plain_and_scram() {
    let topic = topic_with("sasl", &[5]);
    admin().commit("g-sasl", &topic, &[(0, 2)]);
    let ctx = BuildContext::default();
    let sasl = broker().sasl.as_str();
    let md = [
        ("bootstrapServers", sasl),
        ("consumerGroup", "g-sasl"),
        ("topic", topic.as_str()),
    ];
    let (pu, pp) = broker::PLAIN_USER;
    let (su, sp) = broker::SCRAM_USER;
    for (mode, user, pass) in [
        ("plaintext", pu, pp),
        ("scram_sha256", su, sp),
        ("scram_sha512", su, sp),
    ] {
        let auth = [("sasl", mode), ("username", user), ("password", pass)];
        let scaler = build(&ctx, &md, &auth)
            .await
            .unwrap_or_else(|e| panic!("{mode}: {e}"));
        let s = scaler.sample().await.expect(mode);
        assert_eq!((s.value, s.active), (3.0, true), "{mode}");
        // A wrong password is refused by the broker: a backend error naming SASL.
        let bad = [("sasl", mode), ("username", user), ("password", "wrong")];
        let err = build(&ctx, &md, &bad).await.err().expect("wrong password");
        assert!(
            matches!(err, ScalerError::Backend { .. }) && err.to_string().contains("SASL"),
            "{mode}: {err}"
        );
    }
    // Without SASL the SASL listener answers ApiVersions only, then drops the connection.
    match build(&ctx, &md, &[]).await {
        Err(e) => assert!(!e.is_permanent(), "{e}"),
        Ok(s) => assert!(s.sample().await.is_err(), "unauthenticated poll"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_a_client_certificate() {
    let topic = topic_with("tls", &[4]);
    admin().commit("g-tls", &topic, &[(0, 1)]);
    let ctx = BuildContext::default();
    let b = broker();
    let md = [
        ("bootstrapServers", b.tls.as_str()),
        ("consumerGroup", "g-tls"),
        ("topic", topic.as_str()),
    ];
    let with_cert = [
        ("tls", "enable"),
        ("ca", b.ca.as_str()),
        ("cert", b.client_cert.as_str()),
        ("key", b.client_key.as_str()),
    ];
    let scaler = build(&ctx, &md, &with_cert).await.expect("mTLS build");
    let s = scaler.sample().await.expect("mTLS sample");
    assert_eq!((s.value, s.active), (3.0, true));
    // unsafeSsl: the broker's certificate is not checked (no ca given).
    let mut unsafe_md = md.to_vec();
    unsafe_md.push(("unsafeSsl", "true"));
    let scaler = build(
        &ctx,
        &unsafe_md,
        &[
            ("tls", "enable"),
            ("cert", b.client_cert.as_str()),
            ("key", b.client_key.as_str()),
        ],
    )
    .await
    .expect("unsafeSsl build");
    assert_eq!(scaler.sample().await.expect("unsafeSsl sample").value, 3.0);
    // Without the CA the broker's certificate is not trusted.
    let err = build(
        &ctx,
        &md,
        &[
            ("tls", "enable"),
            ("cert", b.client_cert.as_str()),
            ("key", b.client_key.as_str()),
        ],
    )
    .await
    .err()
    .expect("untrusted broker");
    assert!(
        !err.is_permanent() && err.to_string().contains("TLS"),
        "{err}"
    );
    // Without a client certificate the broker refuses the handshake.
    let refused = build(&ctx, &md, &[("tls", "enable"), ("ca", b.ca.as_str())]).await;
    match refused {
        Err(e) => assert!(!e.is_permanent(), "{e}"),
        Ok(s) => assert!(s.sample().await.is_err(), "no client certificate"),
    }
    // An encrypted key is refused at build, naming keyPassword.
    let mut with_password = with_cert.to_vec();
    with_password.push(("keyPassword", "secret"));
    let err = build(&ctx, &md, &with_password)
        .await
        .err()
        .expect("keyPassword");
    assert_eq!(err.field(), Some("keyPassword"), "{err}");
}

#[cfg(feature = "apache-kafka")]
mod apache {
    use keda_scalers::messaging::apache_kafka::parse_config;
    use keda_scalers::messaging::kafka::Sasl;
    use serde_json::{Map, Value};

    use super::*;

    #[test]
    fn parse_table() {
        let n = harness::run("apache_kafka.yaml", |input| {
            let c = parse_config(input)?;
            let mut m = Map::new();
            let conn = &c.connection;
            m.insert(
                "bootstrapServers".into(),
                Value::from(conn.bootstrap_servers.clone()),
            );
            m.insert(
                "consumerGroup".into(),
                Value::from(c.consumer_group.clone()),
            );
            m.insert("topic".into(), Value::from(c.topics.clone()));
            m.insert(
                "partitionLimitation".into(),
                c.partition_limitation
                    .clone()
                    .map(Value::from)
                    .unwrap_or(Value::Null),
            );
            m.insert(
                "offsetResetPolicy".into(),
                Value::from(c.offset_reset_policy.as_str()),
            );
            m.insert(
                "allowIdleConsumers".into(),
                Value::from(c.allow_idle_consumers),
            );
            m.insert(
                "excludePersistentLag".into(),
                Value::from(c.exclude_persistent_lag),
            );
            m.insert(
                "limitToPartitionsWithLag".into(),
                Value::from(c.limit_to_partitions_with_lag),
            );
            m.insert(
                "ensureEvenDistributionOfPartitions".into(),
                Value::from(c.ensure_even_distribution_of_partitions),
            );
            m.insert("enableTLS".into(), Value::from(conn.tls.is_some()));
            let sasl = match &conn.sasl {
                None => "",
                Some(Sasl::Plain { .. }) => "plaintext",
                Some(Sasl::ScramSha256 { .. }) => "scram_sha256",
                Some(Sasl::ScramSha512 { .. }) => "scram_sha512",
                Some(Sasl::OAuthBearer { .. }) => "aws_msk_iam",
                Some(Sasl::Gssapi) => "gssapi",
            };
            m.insert("sasl".into(), Value::from(sasl));
            Ok(m)
        });
        assert!(n >= 100, "only {n} cases");
    }

    fn trigger(md: &[(&str, &str)]) -> Box<dyn TriggerConfig> {
        let (md, env, auth) = (map(md), BTreeMap::new(), BTreeMap::new());
        parse_trigger(&TriggerInput {
            index: 0,
            trigger_type: "apache-kafka",
            namespace: "default",
            name: None,
            metadata: &md,
            resolved_env: &env,
            auth_params: &auth,
            metric_type: None,
        })
        .expect("parse")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn several_topics_share_the_kafka_client() {
        let a = topic_with("apache-a", &[6, 2]);
        let b = topic_with("apache-b", &[5]);
        admin().commit("g-apache", &a, &[(0, 1), (1, 2)]);
        admin().commit("g-apache", &b, &[(0, 4)]);
        let ctx = BuildContext::default();
        let topics = format!("{a},{b},apache-missing");
        let config = trigger(&[
            ("bootstrapServers", broker().plaintext.as_str()),
            ("consumerGroup", "g-apache"),
            ("topic", topics.as_str()),
            ("allowIdleConsumers", "true"),
        ]);
        assert_eq!(
            config.metric_spec().metric_name(),
            format!("s0-kafka-{a},{b},apache-missing")
        );
        let scaler = config.build(&ctx).await.expect("build");
        // 5 + 0 + 1; a listed topic the cluster does not know counts nothing, as upstream.
        let s = scaler.sample().await.expect("sample");
        assert_eq!((s.value, s.active), (6.0, true));
        // A kafka trigger on the same broker shares the client.
        let _kafka = build(
            &ctx,
            &[
                ("bootstrapServers", broker().plaintext.as_str()),
                ("consumerGroup", "g-apache"),
                ("topic", a.as_str()),
            ],
            &[],
        )
        .await
        .expect("kafka build");
        assert_eq!(ctx.kafka.len(), 1);
        // Without topics the group needs active members (a group that only commits has none).
        let scaler = trigger(&[
            ("bootstrapServers", broker().plaintext.as_str()),
            ("consumerGroup", "g-apache"),
        ])
        .build(&ctx)
        .await
        .expect("build");
        let err = scaler.sample().await.expect_err("no members");
        assert!(
            !err.is_permanent()
                && err
                    .to_string()
                    .contains("no active members in group g-apache"),
            "{err}"
        );
    }
}
