//! kafka: upstream's parse tables, then one real Apache Kafka broker (KRaft, broker and controller in
//! one JVM, from the Maven artifacts `hack/backends/kafka.sh` caches) shared by every test of this file.
//! The tests create topics, produce records and commit group offsets themselves (`admin` below: a
//! small blocking client on kafka-protocol, independent of the scaler's own), then check the lag the
//! scaler reports. The JVM stops when the test binary exits (a shell wrapper waits on a pipe from it);
//! `KEDA_RS_KEEP_KAFKA=1` keeps its scratch directory (server.properties, kafka.log) for a look.

#![cfg(feature = "kafka")]

#[path = "parse_tables/harness.rs"]
mod harness;
mod support;

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

/// The broker of this test binary and a client to set up its data.
mod broker {
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::process::{Child, ChildStdin, Command, Stdio};
    use std::sync::Mutex;
    use std::time::{Duration, Instant};

    use bytes::{BufMut, Bytes, BytesMut};
    use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreateTopicsRequest};
    use kafka_protocol::messages::offset_commit_request::{
        OffsetCommitRequest, OffsetCommitRequestPartition, OffsetCommitRequestTopic,
    };
    use kafka_protocol::messages::produce_request::{
        PartitionProduceData, ProduceRequest, TopicProduceData,
    };
    use kafka_protocol::messages::{
        CreateTopicsResponse, FindCoordinatorRequest, FindCoordinatorResponse, GroupId,
        OffsetCommitResponse, ProduceResponse, RequestHeader, ResponseHeader, TopicName,
    };
    use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, StrBytes};
    use kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };

    use super::support;

    /// The requests the setup sends, with their API keys.
    trait Request: Encodable + HeaderVersion {
        const KEY: i16;
        type Response: Decodable + HeaderVersion;
    }
    impl Request for ProduceRequest {
        const KEY: i16 = 0;
        type Response = ProduceResponse;
    }
    impl Request for OffsetCommitRequest {
        const KEY: i16 = 8;
        type Response = OffsetCommitResponse;
    }
    impl Request for FindCoordinatorRequest {
        const KEY: i16 = 10;
        type Response = FindCoordinatorResponse;
    }
    impl Request for CreateTopicsRequest {
        const KEY: i16 = 19;
        type Response = CreateTopicsResponse;
    }

    pub const PLAIN_USER: (&str, &str) = ("alice", "alice-secret");
    pub const SCRAM_USER: (&str, &str) = ("bob", "bob-secret");

    pub struct Broker {
        /// `127.0.0.1:<port>` of the PLAINTEXT listener.
        pub plaintext: String,
        /// `127.0.0.1:<port>` of the SASL_PLAINTEXT listener (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512).
        pub sasl: String,
        /// `127.0.0.1:<port>` of the SSL listener, which requires a client certificate.
        pub tls: String,
        /// The CA of the broker's certificate, and a client certificate and key it signed (PEM).
        pub ca: String,
        pub client_cert: String,
        pub client_key: String,
        // The shell wrapper kills the JVM when this pipe closes (the test binary exits).
        _stdin: Mutex<ChildStdin>,
        _child: Mutex<Child>,
        _dir: support::TempDir,
    }

    /// Starts the broker: format the KRaft storage (with the SCRAM users), then run it.
    pub fn start() -> Broker {
        let home = support::cached_backend("kafka-4.1.1", "kafka");
        let classpath = format!("{}/libs/*", home.display());
        let dir = support::TempDir::new("kafka");
        let (port, controller, sasl, tls) = (
            support::free_port(),
            support::free_port(),
            support::free_port(),
            support::free_port(),
        );
        let ca = support::TestCa::new();
        let (server_cert, server_key) = ca.leaf(&["127.0.0.1", "localhost"]);
        let (client_cert, client_key) = ca.leaf(&["keda-client"]);
        let keystore = dir.path().join("server.pem");
        std::fs::write(&keystore, format!("{server_key}\n{server_cert}")).expect("keystore");
        let truststore = dir.path().join("ca.pem");
        std::fs::write(&truststore, ca.pem()).expect("truststore");
        let props = format!(
            "process.roles=broker,controller\n\
             node.id=1\n\
             controller.quorum.bootstrap.servers=127.0.0.1:{controller}\n\
             listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller},SASL_PLAINTEXT://127.0.0.1:{sasl},SSL://127.0.0.1:{tls}\n\
             advertised.listeners=PLAINTEXT://127.0.0.1:{port},SASL_PLAINTEXT://127.0.0.1:{sasl},SSL://127.0.0.1:{tls}\n\
             controller.listener.names=CONTROLLER\n\
             inter.broker.listener.name=PLAINTEXT\n\
             listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,SSL:SSL\n\
             ssl.keystore.type=PEM\n\
             ssl.keystore.location={keystore}\n\
             ssl.truststore.type=PEM\n\
             ssl.truststore.location={truststore}\n\
             ssl.client.auth=required\n\
             sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512\n\
             listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_{pu}=\"{pp}\";\n\
             listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;\n\
             listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;\n\
             log.dirs={logs}\n\
             num.partitions=1\n\
             offsets.topic.replication.factor=1\n\
             offsets.topic.num.partitions=1\n\
             transaction.state.log.replication.factor=1\n\
             transaction.state.log.min.isr=1\n\
             share.coordinator.state.topic.replication.factor=1\n\
             share.coordinator.state.topic.min.isr=1\n\
             group.initial.rebalance.delay.ms=0\n\
             auto.create.topics.enable=false\n",
            pu = PLAIN_USER.0,
            pp = PLAIN_USER.1,
            logs = dir.path().join("data").display(),
            keystore = keystore.display(),
            truststore = truststore.display(),
        );
        let config = dir.path().join("server.properties");
        std::fs::write(&config, props).expect("write server.properties");
        let config = config.display().to_string();
        let scram256 = format!(
            "SCRAM-SHA-256=[name={},password={}]",
            SCRAM_USER.0, SCRAM_USER.1
        );
        let scram512 = format!(
            "SCRAM-SHA-512=[name={},password={}]",
            SCRAM_USER.0, SCRAM_USER.1
        );
        let jvm = ["-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"];
        let out = Command::new("java")
            .args(jvm)
            .args(["-cp", &classpath, "kafka.tools.StorageTool", "format"])
            .args([
                "-t",
                "MkU3OEVBNTcwNTJENDM2Qg",
                "-c",
                &config,
                "--standalone",
            ])
            .args(["--add-scram", &scram256, "--add-scram", &scram512])
            .output()
            .expect("running java (apt-get install default-jre-headless)");
        assert!(
            out.status.success(),
            "kafka storage format failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let log = dir.path().join("kafka.log");
        let script = format!(
            "java {} -cp '{classpath}' kafka.Kafka '{config}' >'{}' 2>&1 </dev/null & j=$!; \
             read _; kill $j; wait $j; [ -n \"$KEDA_RS_KEEP_KAFKA\" ] || rm -rf '{}'",
            jvm.join(" "),
            log.display(),
            dir.path().display()
        );
        let mut child = Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::piped())
            .spawn()
            .expect("starting kafka");
        let stdin = child.stdin.take().expect("stdin");
        let broker = Broker {
            plaintext: format!("127.0.0.1:{port}"),
            sasl: format!("127.0.0.1:{sasl}"),
            tls: format!("127.0.0.1:{tls}"),
            ca: ca.pem(),
            client_cert,
            client_key,
            _stdin: Mutex::new(stdin),
            _child: Mutex::new(child),
            _dir: dir,
        };
        // Ready when it answers requests and the group coordinator is up.
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let ready = Admin::connect(&broker.plaintext).and_then(|mut a| a.coordinator_ready());
            match ready {
                Ok(()) => break,
                Err(e) if Instant::now() > deadline => {
                    let tail = std::fs::read_to_string(&log).unwrap_or_default();
                    let lines: Vec<&str> = tail.lines().collect();
                    panic!(
                        "kafka did not become ready: {e}\n{}",
                        lines[lines.len().saturating_sub(40)..].join("\n")
                    );
                }
                Err(_) => std::thread::sleep(Duration::from_millis(300)),
            }
        }
        broker
    }

    /// A blocking client with fixed request versions, for test setup only.
    pub struct Admin {
        stream: TcpStream,
        next: i32,
    }

    impl Admin {
        pub fn connect(addr: &str) -> Result<Admin, String> {
            let stream = TcpStream::connect(addr).map_err(|e| e.to_string())?;
            stream
                .set_read_timeout(Some(Duration::from_secs(30)))
                .map_err(|e| e.to_string())?;
            Ok(Admin { stream, next: 1 })
        }

        fn send<R: Request>(&mut self, req: &R, version: i16) -> Result<R::Response, String> {
            self.next += 1;
            let header = RequestHeader::default()
                .with_request_api_key(R::KEY)
                .with_request_api_version(version)
                .with_correlation_id(self.next)
                .with_client_id(Some(StrBytes::from_static_str("keda-rs-test")));
            let mut buf = BytesMut::new();
            buf.put_i32(0);
            header
                .encode(&mut buf, R::header_version(version))
                .map_err(|e| e.to_string())?;
            req.encode(&mut buf, version).map_err(|e| e.to_string())?;
            let len = (buf.len() - 4) as i32;
            buf[..4].copy_from_slice(&len.to_be_bytes());
            self.stream.write_all(&buf).map_err(|e| e.to_string())?;
            let mut len = [0u8; 4];
            self.stream
                .read_exact(&mut len)
                .map_err(|e| e.to_string())?;
            let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
            self.stream
                .read_exact(&mut body)
                .map_err(|e| e.to_string())?;
            let mut body = Bytes::from(body);
            let header = ResponseHeader::decode(&mut body, R::Response::header_version(version))
                .map_err(|e| e.to_string())?;
            assert_eq!(header.correlation_id, self.next);
            R::Response::decode(&mut body, version).map_err(|e| e.to_string())
        }

        fn coordinator_ready(&mut self) -> Result<(), String> {
            let req = FindCoordinatorRequest::default()
                .with_key(StrBytes::from_static_str("keda-rs-probe"));
            let resp = self.send(&req, 3)?;
            if resp.error_code != 0 {
                return Err(format!("FindCoordinator: error {}", resp.error_code));
            }
            Ok(())
        }

        pub fn create_topic(&mut self, name: &str, partitions: i32) {
            let req = CreateTopicsRequest::default()
                .with_timeout_ms(30_000)
                .with_topics(vec![
                    CreatableTopic::default()
                        .with_name(TopicName(StrBytes::from_string(name.to_owned())))
                        .with_num_partitions(partitions)
                        .with_replication_factor(1),
                ]);
            let resp = self.send(&req, 4).expect("CreateTopics");
            let code = resp.topics[0].error_code;
            assert!(code == 0 || code == 36, "CreateTopics {name}: error {code}");
        }

        /// Appends `n` records to `topic`/`partition`.
        pub fn produce(&mut self, topic: &str, partition: i32, n: usize) {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("clock")
                .as_millis() as i64;
            let records: Vec<Record> = (0..n)
                .map(|i| Record {
                    transactional: false,
                    control: false,
                    delete_horizon: false,
                    partition_leader_epoch: -1,
                    producer_id: -1,
                    producer_epoch: -1,
                    timestamp_type: TimestampType::Creation,
                    offset: i as i64,
                    // One batch needs offset − sequence constant; base sequence -1: no idempotence.
                    sequence: i as i32 - 1,
                    timestamp: now,
                    key: None,
                    value: Some(Bytes::from(format!("message {i}"))),
                    headers: Default::default(),
                })
                .collect();
            let mut batch = BytesMut::new();
            RecordBatchEncoder::encode(
                &mut batch,
                &records,
                &RecordEncodeOptions {
                    version: 2,
                    compression: Compression::None,
                },
            )
            .expect("encode records");
            let req = ProduceRequest::default()
                .with_acks(-1)
                .with_timeout_ms(30_000)
                .with_topic_data(vec![
                    TopicProduceData::default()
                        .with_name(TopicName(StrBytes::from_string(topic.to_owned())))
                        .with_partition_data(vec![
                            PartitionProduceData::default()
                                .with_index(partition)
                                .with_records(Some(batch.freeze())),
                        ]),
                ]);
            // A new topic's leader may not be ready yet: retry the errors that say so.
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                let resp = self.send(&req, 8).expect("Produce");
                let part = &resp.responses[0].partition_responses[0];
                match part.error_code {
                    0 => return,
                    3 | 5 | 6 if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(100))
                    }
                    code => panic!(
                        "Produce to {topic}/{partition}: error {code} {:?} {:?}",
                        part.error_message, part.record_errors
                    ),
                }
            }
        }

        /// Commits `offsets` (partition, offset) of `topic` for `group`, as a group without members does.
        pub fn commit(&mut self, group: &str, topic: &str, offsets: &[(i32, i64)]) {
            let req = OffsetCommitRequest::default()
                .with_group_id(GroupId(StrBytes::from_string(group.to_owned())))
                .with_generation_id_or_member_epoch(-1)
                .with_member_id(StrBytes::from_static_str(""))
                .with_topics(vec![
                    OffsetCommitRequestTopic::default()
                        .with_name(TopicName(StrBytes::from_string(topic.to_owned())))
                        .with_partitions(
                            offsets
                                .iter()
                                .map(|&(p, o)| {
                                    OffsetCommitRequestPartition::default()
                                        .with_partition_index(p)
                                        .with_committed_offset(o)
                                })
                                .collect(),
                        ),
                ]);
            let resp = self.send(&req, 7).expect("OffsetCommit");
            for p in &resp.topics[0].partitions {
                assert_eq!(p.error_code, 0, "OffsetCommit {group}/{topic}: {p:?}");
            }
        }
    }
}

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
