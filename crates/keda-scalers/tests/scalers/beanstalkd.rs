//! beanstalkd: upstream's parse table, then a real beanstalkd (Debian's `beanstalkd`, one process per test
//! binary on a free loopback port) with ready, reserved, buried and delayed jobs.

#![cfg(feature = "beanstalkd")]

use crate::{harness, support};

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use keda_scalers::{
    BuildContext, MetricSpec, Scaler, ScalerError, TimeoutDefaults, TriggerConfig,
    sample_with_timeout,
};
use serde_json::Value;
use support::{ServerProcess, TempDir, free_port};

#[test]
fn parse_table() {
    let n = harness::run("beanstalkd.yaml", |input| {
        let c = keda_scalers::messaging::beanstalkd::parse_config(input)?;
        let mut m = serde_json::Map::new();
        m.insert("server".into(), Value::from(c.server));
        m.insert("tube".into(), Value::from(c.tube));
        m.insert("value".into(), Value::from(c.value));
        m.insert("activationValue".into(), Value::from(c.activation_value));
        m.insert("includeDelayed".into(), Value::from(c.include_delayed));
        m.insert(
            "timeoutMs".into(),
            Value::from(c.timeout.as_millis() as u64),
        );
        Ok(m)
    });
    assert!(n >= 12, "only {n} cases");
}

fn start_beanstalkd() -> ServerProcess {
    let port = free_port();
    let args: Vec<String> = ["-l", "127.0.0.1", "-p", &port.to_string()]
        .iter()
        .map(|s| s.to_string())
        .collect();
    ServerProcess::start(
        "beanstalkd",
        "beanstalkd",
        &args,
        port,
        TempDir::new("beanstalkd"),
        Duration::from_secs(10),
    )
}

/// A blocking client speaking the same text protocol, to put and reserve jobs.
struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Client {
    fn connect(server: &ServerProcess) -> Client {
        let stream = TcpStream::connect(server.addr).expect("connect to beanstalkd");
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("set read timeout");
        Client {
            reader: BufReader::new(stream.try_clone().expect("clone stream")),
            writer: stream,
        }
    }

    fn command(&mut self, line: &str, data: Option<&str>) -> String {
        self.writer
            .write_all(format!("{line}\r\n").as_bytes())
            .expect("send command");
        if let Some(data) = data {
            self.writer
                .write_all(format!("{data}\r\n").as_bytes())
                .expect("send job body");
        }
        let mut answer = String::new();
        self.reader.read_line(&mut answer).expect("read answer");
        answer.trim_end().to_owned()
    }

    fn use_tube(&mut self, tube: &str) {
        assert_eq!(
            self.command(&format!("use {tube}"), None),
            format!("USING {tube}")
        );
    }

    /// Puts a job with `delay` seconds; returns its id.
    fn put(&mut self, delay: u32) -> u64 {
        let answer = self.command(&format!("put 100 {delay} 600 3"), Some("job"));
        answer
            .strip_prefix("INSERTED ")
            .and_then(|id| id.parse().ok())
            .unwrap_or_else(|| panic!("put answered {answer:?}"))
    }

    /// Reserves a job of `tube` (which this client then holds); returns its id.
    fn reserve(&mut self, tube: &str) -> u64 {
        assert!(
            self.command(&format!("watch {tube}"), None)
                .starts_with("WATCHING")
        );
        let answer = self.command("reserve-with-timeout 0", None);
        let mut parts = answer.split(' ');
        assert_eq!(parts.next(), Some("RESERVED"), "{answer}");
        let id = parts.next().and_then(|id| id.parse().ok()).expect("job id");
        let len: usize = parts.next().and_then(|n| n.parse().ok()).expect("job size");
        let mut body = vec![0; len + 2];
        self.reader.read_exact(&mut body).expect("job body");
        id
    }
}

fn config(metadata: &[(&str, &str)]) -> Box<dyn TriggerConfig> {
    // A case of the parse table with its inputs replaced: Case fills every field TriggerInput has.
    let mut case = harness::load("beanstalkd.yaml")
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

#[tokio::test]
async fn tube_jobs_from_a_real_beanstalkd() {
    let mut server = start_beanstalkd();
    let addr = server.addr.to_string();
    let ctx = BuildContext::default();
    let trigger = |extra: &[(&'static str, &'static str)]| {
        let mut md: Vec<(&str, &str)> = vec![
            ("server", addr.as_str()),
            ("tube", "orders"),
            ("value", "2"),
            ("timeout", "2s"),
        ];
        md.extend_from_slice(extra);
        config(&md)
    };

    let plain = trigger(&[]);
    assert_eq!(
        plain.metric_spec(),
        MetricSpec::External {
            metric_name: "s0-beanstalkd-orders".into(),
            target_type: keda_scalers::MetricTargetType::AverageValue,
            target: 2.0,
        }
    );
    let scaler = plain.build(&ctx).await.expect("build");
    // A tube nobody has used yet: the server answers NOT_FOUND, upstream counts 0 jobs.
    assert_eq!(sample(&scaler).await, (0.0, false));

    let mut producer = Client::connect(&server);
    producer.use_tube("orders");
    for _ in 0..5 {
        producer.put(0);
    }
    producer.put(3600);
    producer.put(3600);
    // Two reserved (held by the worker), one of them then buried: 3 ready, 1 reserved, 1 buried, 2 delayed.
    let mut worker = Client::connect(&server);
    worker.reserve("orders");
    let buried = worker.reserve("orders");
    assert_eq!(
        worker.command(&format!("bury {buried} 100"), None),
        "BURIED"
    );
    // Another tube's jobs do not count.
    let mut other = Client::connect(&server);
    other.use_tube("other");
    other.put(0);

    // Ready + reserved; the same connection answers poll after poll.
    assert_eq!(sample(&scaler).await, (4.0, true));
    assert_eq!(sample(&scaler).await, (4.0, true));
    let delayed = trigger(&[("includeDelayed", "true")])
        .build(&ctx)
        .await
        .expect("build");
    assert_eq!(sample(&delayed).await, (6.0, true));

    // Activation is strictly above activationValue.
    let at = trigger(&[("activationValue", "4")])
        .build(&ctx)
        .await
        .expect("build");
    assert_eq!(sample(&at).await, (4.0, false));
    let below = trigger(&[("activationValue", "3")])
        .build(&ctx)
        .await
        .expect("build");
    assert_eq!(sample(&below).await, (4.0, true));

    // A tube name that would break the command line is refused before any IO.
    let bad = config(&[("server", &addr), ("tube", "a b"), ("value", "1")]);
    match bad.build(&ctx).await {
        Err(e @ ScalerError::Config { .. }) => assert_eq!(e.field(), Some("tube")),
        Err(e) => panic!("expected a configuration error, got {e}"),
        Ok(_) => panic!("a tube with a space was accepted"),
    }

    // The server goes away: polls fail as backend errors within the bound, and keep failing (each poll
    // dials again), never hang.
    server.stop();
    let defaults = TimeoutDefaults::default();
    for _ in 0..2 {
        let started = Instant::now();
        let report = sample_with_timeout(plain.as_ref(), scaler.as_ref(), &defaults).await;
        match report.result {
            Err(ScalerError::Backend { .. }) => {}
            other => panic!("expected a backend error, got {other:?}"),
        }
        assert!(
            started.elapsed() < Duration::from_secs(6),
            "{:?}",
            started.elapsed()
        );
    }
    match plain.build(&ctx).await {
        Err(ScalerError::Backend { action, .. }) => assert_eq!(action, "connecting to beanstalkd"),
        Err(e) => panic!("expected a backend error, got {e}"),
        Ok(_) => panic!("built against a stopped server"),
    }
}
