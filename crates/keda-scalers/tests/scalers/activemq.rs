//! activemq: upstream's parse table, then a real ActiveMQ Classic broker (the distribution
//! `hack/backends/activemq.sh` caches) on free loopback ports. The test puts messages into a queue through
//! the broker's own Jolokia agent (`sendTextMessage` on the queue's MBean) and checks the size the scaler
//! reads, its activation, the `restAPITemplate` form, and the errors of a wrong password and an unknown
//! queue.

#![cfg(feature = "activemq")]

use crate::{harness, support};

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use keda_scalers::{
    BuildContext, MetricSpec, MetricTargetType, Scaler, ScalerError, TriggerConfig,
};
use serde_json::{Value, json};
use support::{ServerProcess, TempDir, cached_backend, free_port};

const VERSION: &str = "5.18.3";

#[test]
fn parse_table() {
    let n = harness::run("activemq.yaml", |input| {
        let c = keda_scalers::messaging::activemq::parse_config(input)?;
        let mut m = serde_json::Map::new();
        m.insert(
            "managementEndpoint".into(),
            Value::from(c.management_endpoint.clone()),
        );
        m.insert("brokerName".into(), Value::from(c.broker_name.clone()));
        m.insert(
            "destinationName".into(),
            Value::from(c.destination_name.clone()),
        );
        m.insert("username".into(), Value::from(c.username.clone()));
        m.insert("password".into(), Value::from(c.password.clone()));
        m.insert("corsHeader".into(), Value::from(c.cors_header.clone()));
        m.insert("targetQueueSize".into(), Value::from(c.target_queue_size));
        m.insert(
            "activationTargetQueueSize".into(),
            Value::from(c.activation_target_queue_size),
        );
        m.insert(
            "url".into(),
            Value::from(c.monitoring_endpoint().unwrap_or_else(|e| e)),
        );
        Ok(m)
    });
    assert!(n >= 18, "only {n} cases");
}

/// A broker with only an OpenWire connector and the web console (Jolokia at `/api/jolokia`), both on
/// free loopback ports, its configuration and data in a scratch directory. Java is started directly
/// (as `bin/activemq` would) so that killing the process stops the broker.
struct Broker {
    process: ServerProcess,
    http: u16,
}

fn start_broker() -> Broker {
    let home = cached_backend(&format!("activemq-{VERSION}"), "activemq")
        .join(format!("apache-activemq-{VERSION}"));
    let dir = TempDir::new("activemq");
    let conf = dir.path().join("conf");
    std::fs::create_dir_all(&conf).expect("conf dir");
    for entry in std::fs::read_dir(home.join("conf")).expect("the distribution's conf") {
        let entry = entry.expect("conf entry");
        std::fs::copy(entry.path(), conf.join(entry.file_name())).expect("copy conf");
    }
    let (openwire, http) = (free_port(), free_port());
    let broker_xml = conf.join("activemq.xml");
    let xml = std::fs::read_to_string(&broker_xml).expect("activemq.xml");
    let start = xml.find("<transportConnectors>").expect("connectors");
    let end = xml.find("</transportConnectors>").expect("connectors end");
    let xml = format!(
        "{}<transportConnectors><transportConnector name=\"openwire\" uri=\"tcp://127.0.0.1:{openwire}\"/>{}",
        &xml[..start],
        &xml[end..]
    );
    std::fs::write(&broker_xml, xml).expect("write activemq.xml");
    let jetty_xml = conf.join("jetty.xml");
    let jetty = std::fs::read_to_string(&jetty_xml).expect("jetty.xml");
    assert!(
        jetty.contains("value=\"8161\""),
        "jetty.xml has no port 8161"
    );
    std::fs::write(
        &jetty_xml,
        jetty.replace("value=\"8161\"", &format!("value=\"{http}\"")),
    )
    .expect("write jetty.xml");
    let path = |p: &std::path::Path| p.display().to_string();
    let tmp = dir.path().join("tmp");
    std::fs::create_dir_all(&tmp).expect("tmp dir");
    let args: Vec<String> = vec![
        "-Xms64M".into(),
        "-Xmx512M".into(),
        format!(
            "-Djava.security.auth.login.config={}",
            path(&conf.join("login.config"))
        ),
        "-Djava.awt.headless=true".into(),
        format!("-Djava.io.tmpdir={}", path(&tmp)),
        format!(
            "-Dactivemq.classpath={}:{}/",
            path(&conf),
            path(&home.join("lib"))
        ),
        format!("-Dactivemq.home={}", path(&home)),
        format!("-Dactivemq.base={}", path(&home)),
        format!("-Dactivemq.conf={}", path(&conf)),
        format!("-Dactivemq.data={}", path(&dir.path().join("data"))),
        format!(
            "-Djolokia.conf=file:{}",
            path(&conf.join("jolokia-access.xml"))
        ),
        "-jar".into(),
        path(&home.join("bin/activemq.jar")),
        "start".into(),
    ];
    let process = ServerProcess::start(
        "activemq",
        "java",
        &args,
        http,
        dir,
        Duration::from_secs(90),
    );
    Broker { process, http }
}

impl Broker {
    fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.http)
    }

    /// One Jolokia request (admin/admin); its JSON answer.
    async fn jolokia(&self, body: Value) -> Value {
        reqwest::Client::new()
            .post(format!("http://{}/api/jolokia/", self.endpoint()))
            .basic_auth("admin", Some("admin"))
            .header("Origin", "http://localhost")
            .header("Content-Type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .expect("jolokia request")
            .json()
            .await
            .expect("jolokia JSON")
    }

    /// Waits until the web console has deployed Jolokia (the port listens before).
    async fn wait_for_jolokia(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let answer = reqwest::Client::new()
                .get(format!("http://{}/api/jolokia/version", self.endpoint()))
                .basic_auth("admin", Some("admin"))
                .header("Origin", "http://localhost")
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

    async fn add_queue(&self, queue: &str) {
        let answer = self
            .jolokia(json!({"type": "exec", "mbean": "org.apache.activemq:type=Broker,brokerName=localhost",
                "operation": "addQueue", "arguments": [queue]}))
            .await;
        assert_eq!(answer["status"], 200, "addQueue: {answer}");
    }

    async fn send(&self, queue: &str, count: usize) {
        for i in 0..count {
            let answer = self
                .jolokia(json!({"type": "exec",
                    "mbean": format!("org.apache.activemq:type=Broker,brokerName=localhost,destinationType=Queue,destinationName={queue}"),
                    "operation": "sendTextMessage(java.lang.String)", "arguments": [format!("job {i}")]}))
                .await;
            assert_eq!(answer["status"], 200, "sendTextMessage: {answer}");
        }
    }
}

fn config(
    metadata: &[(&str, &str)],
    auth: &[(&str, &str)],
) -> Result<Box<dyn TriggerConfig>, ScalerError> {
    // A case of the parse table with its inputs replaced: Case fills every field TriggerInput has.
    let mut case = harness::load("activemq.yaml")
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
async fn queue_size_from_a_real_broker() {
    let broker = start_broker();
    broker.wait_for_jolokia().await;
    broker.add_queue("orders").await;
    let endpoint = broker.endpoint();
    let ctx = BuildContext::default();
    let admin = [("username", "admin"), ("password", "admin")];
    let trigger = |activation: &'static str| {
        config(
            &[
                ("managementEndpoint", endpoint.as_str()),
                ("brokerName", "localhost"),
                ("destinationName", "orders"),
                ("targetQueueSize", "4"),
                ("activationTargetQueueSize", activation),
            ],
            &admin,
        )
        .expect("trigger parses")
    };

    let plain = trigger("2");
    assert_eq!(
        plain.metric_spec(),
        MetricSpec::External {
            metric_name: "s0-activemq-orders".into(),
            target_type: MetricTargetType::AverageValue,
            target: 4.0,
        }
    );
    let scaler = plain.build(&ctx).await.expect("build");
    assert_eq!(sample(&scaler).await.expect("sample"), (0.0, false));

    broker.send("orders", 3).await;
    assert_eq!(sample(&scaler).await.expect("sample"), (3.0, true));
    // Activation is strictly above the threshold.
    let at_threshold = trigger("3").build(&ctx).await.expect("build");
    assert_eq!(sample(&at_threshold).await.expect("sample"), (3.0, false));

    // The same queue through a whole restAPITemplate.
    let template = format!(
        "http://{endpoint}/api/jolokia/read/org.apache.activemq:type=Broker,brokerName=localhost,destinationType=Queue,destinationName=orders/QueueSize"
    );
    let by_template = config(&[("restAPITemplate", template.as_str())], &admin)
        .expect("template parses")
        .build(&ctx)
        .await
        .expect("build");
    assert_eq!(sample(&by_template).await.expect("sample"), (3.0, true));

    // A wrong password: Jolokia answers 401 with an HTML page, an error (never a silent 0).
    let wrong = config(
        &[
            ("managementEndpoint", endpoint.as_str()),
            ("brokerName", "localhost"),
            ("destinationName", "orders"),
        ],
        &[("username", "admin"), ("password", "wrong")],
    )
    .expect("parses")
    .build(&ctx)
    .await
    .expect("build");
    let err = sample(&wrong).await.expect_err("401");
    assert!(!err.is_permanent(), "{err}");

    // A queue the broker does not have: Jolokia's status 404 inside an HTTP 200.
    let missing = config(
        &[
            ("managementEndpoint", endpoint.as_str()),
            ("brokerName", "localhost"),
            ("destinationName", "nosuchqueue"),
        ],
        &admin,
    )
    .expect("parses")
    .build(&ctx)
    .await
    .expect("build");
    let err = sample(&missing).await.expect_err("unknown queue");
    assert!(err.to_string().contains("200 404"), "{err}");
}
