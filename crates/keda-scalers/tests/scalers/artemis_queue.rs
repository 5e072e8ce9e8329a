//! artemis-queue: upstream's parse table, then a real ActiveMQ Artemis broker (the distribution
//! `hack/backends/artemis.sh` caches): `artemis create` makes an instance in a scratch directory with
//! free loopback ports, a login and one anycast queue, and its `bin/artemis run` (which execs java) is
//! the broker. The test sends messages through the broker's own Jolokia agent (`sendMessage` on the
//! queue's MBean) and checks the count the scaler reads, its activation, the `restApiTemplate` form, and
//! the errors of a wrong password and an unknown queue.

#![cfg(feature = "artemis-queue")]

use crate::{harness, support};

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use keda_scalers::{
    BuildContext, MetricSpec, MetricTargetType, Scaler, ScalerError, TriggerConfig,
};
use serde_json::{Value, json};
use support::{ServerProcess, TempDir, cached_backend, free_port};

const VERSION: &str = "2.40.0";
const BROKER: &str = "keda-broker";

#[test]
fn parse_table() {
    let n = harness::run("artemis_queue.yaml", |input| {
        let c = keda_scalers::messaging::artemis_queue::parse_config(input)?;
        let mut m = serde_json::Map::new();
        m.insert(
            "managementEndpoint".into(),
            Value::from(c.management_endpoint.clone()),
        );
        m.insert("queueName".into(), Value::from(c.queue_name.clone()));
        m.insert("brokerName".into(), Value::from(c.broker_name.clone()));
        m.insert(
            "brokerAddress".into(),
            Value::from(c.broker_address.clone()),
        );
        m.insert("username".into(), Value::from(c.username.clone()));
        m.insert("password".into(), Value::from(c.password.clone()));
        m.insert("corsHeader".into(), Value::from(c.cors_header.clone()));
        m.insert("queueLength".into(), Value::from(c.queue_length));
        m.insert(
            "activationQueueLength".into(),
            Value::from(c.activation_queue_length),
        );
        m.insert("unsafeSsl".into(), Value::from(c.unsafe_ssl));
        m.insert("url".into(), Value::from(c.monitoring_endpoint()));
        Ok(m)
    });
    assert!(n >= 20, "only {n} cases");
}

struct Broker {
    process: ServerProcess,
    http: u16,
}

fn start_broker() -> Broker {
    let home = cached_backend(&format!("artemis-{VERSION}"), "artemis")
        .join(format!("apache-artemis-{VERSION}"));
    let dir = TempDir::new("artemis");
    let instance = dir.path().join("instance");
    let (core, http) = (free_port(), free_port());
    let artemis = home.join("bin/artemis").display().to_string();
    let (core, http_port) = (core.to_string(), http.to_string());
    support::run(
        &artemis,
        &[
            "create",
            &instance.display().to_string(),
            "--silent",
            "--user",
            "admin",
            "--password",
            "admin",
            "--require-login",
            "--name",
            BROKER,
            "--host",
            "127.0.0.1",
            "--default-port",
            &core,
            "--http-host",
            "127.0.0.1",
            "--http-port",
            &http_port,
            "--queues",
            "orders:anycast",
            "--no-amqp-acceptor",
            "--no-hornetq-acceptor",
            "--no-mqtt-acceptor",
            "--no-stomp-acceptor",
            "--no-autotune",
            "--no-fsync",
        ],
    );
    // Artemis blocks producers once the disk is 90% full (its default `max-disk-usage`); a test machine's
    // disk full of build output must not fail the test, so only a full disk blocks.
    let broker_xml = instance.join("etc/broker.xml");
    let xml = std::fs::read_to_string(&broker_xml).expect("broker.xml of the new instance");
    let xml = match (xml.find("<max-disk-usage>"), xml.find("</max-disk-usage>")) {
        (Some(a), Some(b)) => format!("{}<max-disk-usage>100{}", &xml[..a], &xml[b..]),
        _ => xml.replacen("</core>", "<max-disk-usage>100</max-disk-usage></core>", 1),
    };
    std::fs::write(&broker_xml, xml).expect("writing broker.xml");
    let process = ServerProcess::start(
        "artemis",
        &instance.join("bin/artemis").display().to_string(),
        &["run".to_owned()],
        http,
        dir,
        Duration::from_secs(90),
    );
    Broker { process, http }
}

fn mbean(queue: &str) -> String {
    format!(
        "org.apache.activemq.artemis:broker=\"{BROKER}\",component=addresses,address=\"{queue}\",subcomponent=queues,routing-type=\"anycast\",queue=\"{queue}\""
    )
}

impl Broker {
    fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.http)
    }

    /// Waits until the console has deployed Jolokia (the port listens before).
    async fn wait_for_jolokia(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let answer = reqwest::Client::new()
                .get(format!(
                    "http://{}/console/jolokia/version",
                    self.endpoint()
                ))
                .basic_auth("admin", Some("admin"))
                .header("Origin", format!("http://{}", self.endpoint()))
                .send()
                .await;
            if answer.is_ok_and(|r| r.status().is_success()) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "Jolokia did not answer within 60s:\n{}",
                self.process.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Sends `count` text messages to `queue` (admin/admin) through Jolokia.
    async fn send(&self, queue: &str, count: usize) {
        for i in 0..count {
            let answer: Value = reqwest::Client::new()
                .post(format!("http://{}/console/jolokia/", self.endpoint()))
                .basic_auth("admin", Some("admin"))
                .header("Origin", format!("http://{}", self.endpoint()))
                .header("Content-Type", "application/json")
                .body(
                    json!({"type": "exec", "mbean": mbean(queue),
                        "operation": "sendMessage(java.util.Map,int,java.lang.String,boolean,java.lang.String,java.lang.String)",
                        "arguments": [{}, 3, format!("job {i}"), false, "admin", "admin"]})
                    .to_string(),
                )
                .send()
                .await
                .expect("jolokia request")
                .json()
                .await
                .expect("jolokia JSON");
            assert_eq!(answer["status"], 200, "sendMessage: {answer}");
        }
    }
}

fn config(
    metadata: &[(&str, &str)],
    auth: &[(&str, &str)],
) -> Result<Box<dyn TriggerConfig>, ScalerError> {
    // A case of the parse table with its inputs replaced: Case fills every field TriggerInput has.
    let mut case = harness::load("artemis_queue.yaml")
        .into_iter()
        .next()
        .expect("the parse table has cases");
    let map = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    case.metadata = map(metadata);
    case.auth = map(auth);
    case.env = BTreeMap::new();
    keda_scalers::parse_trigger(&case.input(0))
}

async fn sample(scaler: &Arc<dyn Scaler>) -> Result<(f64, bool), ScalerError> {
    scaler.sample().await.map(|s| (s.value, s.active))
}

#[tokio::test]
async fn message_count_from_a_real_broker() {
    let broker = start_broker();
    broker.wait_for_jolokia().await;
    let endpoint = broker.endpoint();
    let ctx = BuildContext::default();
    let admin = [("username", "admin"), ("password", "admin")];
    let trigger = |queue: &'static str, activation: &'static str| {
        config(
            &[
                ("managementEndpoint", endpoint.as_str()),
                ("brokerName", BROKER),
                ("brokerAddress", queue),
                ("queueName", queue),
                ("queueLength", "4"),
                ("activationQueueLength", activation),
            ],
            &admin,
        )
        .expect("trigger parses")
    };

    let plain = trigger("orders", "2");
    assert_eq!(
        plain.metric_spec(),
        MetricSpec::External {
            metric_name: "s0-artemis-orders".into(),
            target_type: MetricTargetType::AverageValue,
            target: 4.0,
        }
    );
    let scaler = plain.build(&ctx).await.expect("build");
    assert_eq!(sample(&scaler).await.expect("sample"), (0.0, false));

    broker.send("orders", 3).await;
    assert_eq!(sample(&scaler).await.expect("sample"), (3.0, true));
    // Activation is strictly above the threshold.
    let at_threshold = trigger("orders", "3").build(&ctx).await.expect("build");
    assert_eq!(sample(&at_threshold).await.expect("sample"), (3.0, false));

    // The same queue through a whole restApiTemplate (quotes as upstream's documentation writes them).
    let template = format!(
        "http://{endpoint}/console/jolokia/read/{}/MessageCount",
        mbean("orders")
    );
    let by_template = config(
        &[
            ("restApiTemplate", template.as_str()),
            ("activationQueueLength", "0"),
        ],
        &admin,
    )
    .expect("template parses");
    assert_eq!(
        by_template.metric_spec().metric_name(),
        "s0-artemis-\"orders\"",
        "upstream keeps the quotes of the template's queue"
    );
    let by_template = by_template.build(&ctx).await.expect("build");
    assert_eq!(sample(&by_template).await.expect("sample"), (3.0, true));

    // A wrong password: Jolokia answers 403 with an HTML page, an error (never a silent 0).
    let wrong = config(
        &[
            ("managementEndpoint", endpoint.as_str()),
            ("brokerName", BROKER),
            ("brokerAddress", "orders"),
            ("queueName", "orders"),
        ],
        &[("username", "admin"), ("password", "wrong")],
    )
    .expect("parses")
    .build(&ctx)
    .await
    .expect("build");
    let err = sample(&wrong).await.expect_err("wrong password");
    assert!(!err.is_permanent(), "{err}");

    // A queue the broker does not have: Jolokia's status 404 inside an HTTP 200.
    let missing = trigger("nosuchqueue", "0")
        .build(&ctx)
        .await
        .expect("build");
    let err = sample(&missing).await.expect_err("unknown queue");
    assert!(err.to_string().contains("200 404"), "{err}");
}
