//! A real Apache Kafka 4.1.1 broker (KRaft, broker and controller in one JVM, from hack/backends/kafka.sh) and a
//! blocking client to set up its data (topics, records, committed offsets of a group without members).
//! Shared by the kafka scaler tests and the end-to-end test that scales a Deployment from consumer lag.

// Each test binary uses part of it.
#![allow(dead_code)]

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

use crate::support;

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
    start_advertising(None)
}

/// [`start`], with the PLAINTEXT listener advertised at `plaintext` (`host:port`) instead of its own
/// address, so clients that follow the broker's metadata go there (a bench puts a counting proxy there).
pub fn start_advertising(plaintext: Option<&str>) -> Broker {
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
         advertised.listeners=PLAINTEXT://{advertised},SASL_PLAINTEXT://127.0.0.1:{sasl},SSL://127.0.0.1:{tls}\n\
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
        advertised = plaintext
            .map(str::to_owned)
            .unwrap_or_else(|| format!("127.0.0.1:{port}")),
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
        let req =
            FindCoordinatorRequest::default().with_key(StrBytes::from_static_str("keda-rs-probe"));
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
