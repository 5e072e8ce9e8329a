//! etcd: upstream's parse table, then a real etcd (Debian's `etcd-server`, keys written with `etcdctl` from
//! `etcd-client`): values, activation, missing keys, a dead endpoint before a live one, user and password
//! authentication, mutual TLS, and a stopped server.

#![cfg(feature = "etcd")]

use crate::{harness, support};

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use keda_scalers::{
    BuildContext, MetricSpec, Scaler, ScalerError, TimeoutDefaults, TriggerConfig,
    sample_with_timeout,
};
use serde_json::Value;
use support::{ServerProcess, TempDir, TestCa, free_port};

#[test]
fn parse_table() {
    let n = harness::run("etcd.yaml", |input| {
        let c = keda_scalers::databases::etcd::parse_config(input)?;
        let mut m = serde_json::Map::new();
        m.insert("endpoints".into(), Value::from(c.endpoints));
        m.insert("watchKey".into(), Value::from(c.watch_key));
        m.insert("value".into(), Value::from(c.value));
        m.insert("activationValue".into(), Value::from(c.activation_value));
        m.insert(
            "watchProgressNotifyInterval".into(),
            Value::from(c.watch_progress_notify_interval),
        );
        m.insert("tls".into(), Value::from(c.tls));
        m.insert("ca".into(), harness::opt(&c.ca));
        m.insert("cert".into(), harness::opt(&c.cert));
        m.insert("key".into(), harness::opt(&c.key));
        m.insert("keyPassword".into(), harness::opt(&c.key_password));
        m.insert("username".into(), harness::opt(&c.username));
        m.insert("password".into(), harness::opt(&c.password));
        Ok(m)
    });
    assert!(n >= 20, "only {n} cases");
}

struct Etcd {
    server: ServerProcess,
    /// `http(s)://127.0.0.1:<port>`.
    url: String,
    /// `etcdctl` flags reaching it (endpoint, and the TLS files when it speaks TLS).
    ctl: Vec<String>,
}

impl Etcd {
    fn ctl(&self, args: &[&str]) -> String {
        let mut all: Vec<&str> = self.ctl.iter().map(String::as_str).collect();
        all.extend_from_slice(args);
        support::run("etcdctl", &all)
    }
}

/// Starts a one-member etcd on free loopback ports. With `tls`, clients speak TLS with a certificate
/// of the CA (`--client-cert-auth`), and `etcdctl` gets the files it needs.
fn start_etcd(tls: Option<(&TestCa, &str, &str)>) -> Etcd {
    let (client, peer) = (free_port(), free_port());
    let dir = TempDir::new("etcd");
    let scheme = if tls.is_some() { "https" } else { "http" };
    let url = format!("{scheme}://127.0.0.1:{client}");
    let peer_url = format!("http://127.0.0.1:{peer}");
    let mut args: Vec<String> = vec![
        "--name".into(),
        "keda".into(),
        "--data-dir".into(),
        dir.path().join("data").display().to_string(),
        "--listen-client-urls".into(),
        url.clone(),
        "--advertise-client-urls".into(),
        url.clone(),
        "--listen-peer-urls".into(),
        peer_url.clone(),
        "--initial-advertise-peer-urls".into(),
        peer_url.clone(),
        "--initial-cluster".into(),
        format!("keda={peer_url}"),
    ];
    let mut ctl = vec![format!("--endpoints={url}"), "--dial-timeout=5s".into()];
    if let Some((ca, cert, key)) = tls {
        let write = |name: &str, pem: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, pem).expect("write a TLS file");
            path.display().to_string()
        };
        let (ca, cert, key) = (
            write("ca.pem", &ca.pem()),
            write("cert.pem", cert),
            write("key.pem", key),
        );
        args.extend([
            format!("--cert-file={cert}"),
            format!("--key-file={key}"),
            format!("--trusted-ca-file={ca}"),
            "--client-cert-auth".into(),
        ]);
        ctl.extend([
            format!("--cacert={ca}"),
            format!("--cert={cert}"),
            format!("--key={key}"),
        ]);
    }
    let server = ServerProcess::start("etcd", "etcd", &args, client, dir, Duration::from_secs(20));
    let etcd = Etcd { server, url, ctl };
    support::wait_until("etcd to serve", Duration::from_secs(20), || {
        let mut all: Vec<&str> = etcd.ctl.iter().map(String::as_str).collect();
        all.extend_from_slice(&["endpoint", "health"]);
        std::process::Command::new("etcdctl")
            .args(&all)
            .output()
            .is_ok_and(|o| o.status.success())
    });
    etcd
}

fn config(metadata: &[(&str, &str)], auth: &[(&str, &str)]) -> Box<dyn TriggerConfig> {
    let map = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    // A case of the parse table with its inputs replaced: Case fills every field TriggerInput has.
    let mut case = harness::load("etcd.yaml")
        .into_iter()
        .next()
        .expect("the parse table has cases");
    case.metadata = map(metadata);
    case.auth = map(auth);
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
async fn key_values_from_a_real_etcd() {
    let mut etcd = start_etcd(None);
    let endpoint = etcd.url.trim_start_matches("http://").to_owned();
    let ctx = BuildContext::default();
    etcd.ctl(&["put", "/jobs/pending", "7.5"]);
    etcd.ctl(&["put", "garbage", "lots"]);

    let plain = config(
        &[
            ("endpoints", &endpoint),
            ("watchKey", "/jobs/pending"),
            ("value", "5"),
        ],
        &[],
    );
    assert_eq!(
        plain.metric_spec(),
        MetricSpec::External {
            metric_name: "s0-etcd--jobs-pending".into(),
            target_type: keda_scalers::MetricTargetType::AverageValue,
            target: 5.0,
        }
    );
    let scaler = plain.build(&ctx).await.expect("build");
    assert_eq!(sample(&scaler).await, (7.5, true));
    etcd.ctl(&["put", "/jobs/pending", "3"]);
    assert_eq!(sample(&scaler).await, (3.0, true));

    // Activation strictly above activationValue.
    let with = |activation: &'static str| {
        config(
            &[
                ("endpoints", &endpoint),
                ("watchKey", "/jobs/pending"),
                ("value", "5"),
                ("activationValue", activation),
            ],
            &[],
        )
    };
    assert_eq!(
        sample(&with("3").build(&ctx).await.expect("build")).await,
        (3.0, false)
    );
    assert_eq!(
        sample(&with("2.5").build(&ctx).await.expect("build")).await,
        (3.0, true)
    );

    // A missing key and a value that is not a number are errors, as upstream.
    let missing = config(
        &[
            ("endpoints", &endpoint),
            ("watchKey", "nope"),
            ("value", "5"),
        ],
        &[],
    );
    let err = backend_error(&missing.build(&ctx).await.expect("build")).await;
    assert!(err.contains("watchKey nope doesn't exist"), "{err}");
    let garbage = config(
        &[
            ("endpoints", &endpoint),
            ("watchKey", "garbage"),
            ("value", "5"),
        ],
        &[],
    );
    let err = backend_error(&garbage.build(&ctx).await.expect("build")).await;
    assert!(err.contains("not a number"), "{err}");

    // A dead endpoint first: the next one answers.
    let dead = format!("127.0.0.1:{}", free_port());
    let endpoints = format!("{dead},{endpoint}");
    let failover = config(
        &[
            ("endpoints", &endpoints),
            ("watchKey", "/jobs/pending"),
            ("value", "5"),
        ],
        &[],
    );
    assert_eq!(
        sample(&failover.build(&ctx).await.expect("build")).await,
        (3.0, true)
    );

    // Users: the scaler authenticates; wrong passwords are errors.
    etcd.ctl(&["user", "add", "root:rootpw"]);
    etcd.ctl(&["user", "add", "reader:readerpw"]);
    etcd.ctl(&["role", "add", "readers"]);
    etcd.ctl(&[
        "role",
        "grant-permission",
        "readers",
        "read",
        "/jobs/pending",
    ]);
    etcd.ctl(&["user", "grant-role", "reader", "readers"]);
    etcd.ctl(&["auth", "enable"]);
    let as_user = |user: &'static str, password: &'static str| {
        config(
            &[
                ("endpoints", &endpoint),
                ("watchKey", "/jobs/pending"),
                ("value", "5"),
            ],
            &[("username", user), ("password", password)],
        )
    };
    let reader_config = as_user("reader", "readerpw");
    let reader = reader_config.build(&ctx).await.expect("build");
    assert_eq!(sample(&reader).await, (3.0, true));
    assert_eq!(sample(&reader).await, (3.0, true));
    let err = backend_error(&as_user("reader", "wrong").build(&ctx).await.expect("build")).await;
    assert!(
        err.to_lowercase().contains("authentication failed"),
        "{err}"
    );
    // Without credentials the server refuses the read.
    backend_error(&scaler).await;

    // The server goes away: a backend error within the bound, never a hang.
    etcd.server.stop();
    let started = Instant::now();
    let report = sample_with_timeout(
        reader_config.as_ref(),
        reader.as_ref(),
        &TimeoutDefaults::default(),
    )
    .await;
    match report.result {
        Err(ScalerError::Backend { .. }) => {}
        other => panic!("expected a backend error, got {other:?}"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(7),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn mutual_tls() {
    let ca = TestCa::new();
    let (server_cert, server_key) = ca.leaf(&["127.0.0.1"]);
    let etcd = start_etcd(Some((&ca, &server_cert, &server_key)));
    etcd.ctl(&["put", "depth", "4"]);
    let endpoint = etcd.url.clone();
    let (client_cert, client_key) = ca.leaf(&["keda"]);
    let ca_pem = ca.pem();
    let ctx = BuildContext::default();
    let md = [
        ("endpoints", endpoint.as_str()),
        ("watchKey", "depth"),
        ("value", "2"),
    ];
    let mtls = config(
        &md,
        &[
            ("tls", "enable"),
            ("ca", &ca_pem),
            ("cert", &client_cert),
            ("key", &client_key),
        ],
    );
    assert_eq!(
        sample(&mtls.build(&ctx).await.expect("build")).await,
        (4.0, true)
    );
    // Without a client certificate the server refuses the connection.
    let no_cert = config(&md, &[("tls", "enable"), ("ca", &ca_pem)]);
    backend_error(&no_cert.build(&ctx).await.expect("build")).await;
    // Not trusting the server's CA fails too.
    let untrusted = config(
        &md,
        &[
            ("tls", "enable"),
            ("cert", &client_cert),
            ("key", &client_key),
        ],
    );
    backend_error(&untrusted.build(&ctx).await.expect("build")).await;
    // Encrypted keys are refused at build, naming the field.
    let encrypted = config(
        &md,
        &[
            ("tls", "enable"),
            ("cert", &client_cert),
            ("key", &client_key),
            ("keyPassword", "pw"),
        ],
    );
    match encrypted.build(&ctx).await {
        Err(e) => assert_eq!(e.field(), Some("keyPassword"), "{e}"),
        Ok(_) => panic!("keyPassword accepted"),
    }
}
