//! mysql: upstream's parse tables, then a real MariaDB (Debian's mariadb-server, a scratch datadir) with a
//! password user and TLS.

#![cfg(feature = "mysql")]

use crate::{harness, support};

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use keda_scalers::databases::mysql::MySqlConnection;
use keda_scalers::{BuildContext, MetricSpec, Scaler, ScalerError, TriggerInput, parse_trigger};
use serde_json::Value;

#[test]
fn parse_table() {
    let n = harness::run("mysql.yaml", |input| {
        let c = keda_scalers::databases::mysql::parse_config(input)?;
        let mut m = serde_json::Map::new();
        m.insert("dbName".into(), Value::from(c.db_name));
        m.insert("queryValue".into(), Value::from(c.query_value));
        m.insert(
            "activationQueryValue".into(),
            Value::from(c.activation_query_value),
        );
        match c.connection {
            MySqlConnection::Dsn(dsn) => {
                m.insert("dsn".into(), Value::from(dsn));
            }
            MySqlConnection::Fields {
                host,
                port,
                username,
                password,
                ..
            } => {
                m.insert("host".into(), Value::from(host));
                m.insert("port".into(), Value::from(port));
                m.insert("username".into(), harness::opt(&username));
                m.insert("password".into(), harness::opt(&password));
            }
        }
        Ok(m)
    });
    assert!(n >= 12, "only {n} cases");
}

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
    env: &[(&str, &str)],
) -> Result<(MetricSpec, Arc<dyn Scaler>), ScalerError> {
    let (md, auth, env) = (map(md), map(auth), map(env));
    let input = TriggerInput {
        index: 0,
        trigger_type: "mysql",
        namespace: "default",
        name: None,
        metadata: &md,
        resolved_env: &env,
        auth_params: &auth,
        metric_type: None,
    };
    let config = parse_trigger(&input)?;
    let scaler = config.build(ctx).await?;
    Ok((config.metric_spec(), scaler))
}

async fn sample(scaler: &Arc<dyn Scaler>) -> (f64, bool) {
    let s = scaler.sample().await.expect("sample");
    (s.value, s.active)
}

fn assert_backend_error(result: Result<keda_scalers::Sample, ScalerError>) {
    match result {
        Err(e @ ScalerError::Backend { .. }) => assert!(!e.is_permanent()),
        other => panic!("expected a transient backend error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_values_activation_tls_and_failure() {
    // TLS material for the server, from a throwaway CA.
    let certs = support::TempDir::new("mariadb-certs");
    let ca = support::TestCa::new();
    let (cert, key) = ca.leaf(&["127.0.0.1"]);
    let file = |name: &str, content: &str| {
        let path = certs.path().join(name);
        std::fs::write(&path, content).expect("write TLS file");
        path.display().to_string()
    };
    let tls_args = vec![
        format!("--ssl-cert={}", file("server.crt", &cert)),
        format!("--ssl-key={}", file("server.key", &key)),
        format!("--ssl-ca={}", file("ca.pem", &ca.pem())),
    ];
    let mut db = support::start_mariadb(&tls_args);
    let port = db.server.addr.port().to_string();
    db.sql(
        "CREATE DATABASE stats;
         CREATE USER 'keda'@'%' IDENTIFIED BY 'pa ss';
         GRANT ALL ON stats.* TO 'keda'@'%';
         CREATE TABLE stats.jobs (id INT AUTO_INCREMENT PRIMARY KEY, state VARCHAR(16) NOT NULL);
         INSERT INTO stats.jobs (state) VALUES ('pending'), ('pending'), ('pending'), ('done');",
    );
    let ctx = BuildContext::default();
    let query = "SELECT COUNT(*) FROM jobs WHERE state = 'pending'";

    // Separate parameters; the password from the TriggerAuthentication.
    let md = [
        ("query", query),
        ("queryValue", "2"),
        ("activationQueryValue", "3"),
        ("host", "127.0.0.1"),
        ("port", port.as_str()),
        ("username", "keda"),
        ("dbName", "stats"),
    ];
    let auth = [("password", "pa ss")];
    let (spec, scaler) = build(&ctx, &md, &auth, &[]).await.expect("build");
    assert_eq!(
        spec,
        MetricSpec::External {
            metric_name: "s0-mysql-stats".into(),
            target_type: keda_scalers::MetricTargetType::AverageValue,
            target: 2.0
        }
    );
    assert_eq!(sample(&scaler).await, (3.0, false));
    db.sql("INSERT INTO stats.jobs (state) VALUES ('pending')");
    assert_eq!(sample(&scaler).await, (4.0, true));

    // A Go-driver DSN from the container env; decimal, double and text results are numbers.
    let dsn = format!("keda:pa ss@tcp(127.0.0.1:{port})/stats?timeout=5s");
    let env = [("MYSQL_CONN", dsn.as_str())];
    let mut dsn_scalers = Vec::new();
    for (q, want) in [
        ("SELECT 2.5", 2.5),
        ("SELECT CAST(0.25 AS DOUBLE)", 0.25),
        ("SELECT '7'", 7.0),
        ("SELECT 12, 'x'", 12.0),
    ] {
        let (spec, s) = build(
            &ctx,
            &[
                ("query", q),
                ("queryValue", "1"),
                ("connectionStringFromEnv", "MYSQL_CONN"),
            ],
            &[],
            &env,
        )
        .await
        .expect("build from DSN");
        assert_eq!(spec.metric_name(), "s0-mysql-stats?timeout=5s");
        assert_eq!(sample(&s).await.0, want, "{q}");
        dsn_scalers.push(s);
    }
    assert_eq!(ctx.mysql.len(), 2, "one pool per connection setting");

    // NULL, no rows and SQL errors are transient errors of the poll.
    for q in [
        "SELECT NULL",
        "SELECT 1 FROM DUAL WHERE 1 = 0",
        "SELECT * FROM missing_table",
        "SELECT 'many'",
    ] {
        let (_, s) = build(
            &ctx,
            &[
                ("query", q),
                ("queryValue", "1"),
                ("connectionStringFromEnv", "MYSQL_CONN"),
            ],
            &[],
            &env,
        )
        .await
        .expect("build");
        assert_backend_error(s.sample().await);
    }
    assert_eq!(sample(&scaler).await, (4.0, true));

    // TLS: skip-verify encrypts without checking the (test CA) certificate; tls=true checks it against the
    // system roots and fails.
    let tls_query = "SELECT IF(VARIABLE_VALUE <> '', 1, 0) FROM information_schema.SESSION_STATUS WHERE VARIABLE_NAME = 'Ssl_cipher'";
    let tls_dsn = format!("keda:pa ss@tcp(127.0.0.1:{port})/stats?tls=skip-verify");
    let (_, tls) = build(
        &ctx,
        &[("query", tls_query), ("queryValue", "1")],
        &[("connectionString", tls_dsn.as_str())],
        &[],
    )
    .await
    .expect("build with TLS");
    assert_eq!(sample(&tls).await, (1.0, true), "the session is encrypted");
    let verified = format!("keda:pa ss@tcp(127.0.0.1:{port})/stats?tls=true");
    let err = build(
        &ctx,
        &[("query", tls_query), ("queryValue", "1")],
        &[("connectionString", verified.as_str())],
        &[],
    )
    .await
    .err()
    .expect("unknown CA");
    assert!(matches!(err, ScalerError::Backend { .. }), "{err}");

    // Wrong password: the build fails transiently; a port that is not a number is a configuration error.
    let err = build(&BuildContext::default(), &md, &[("password", "wrong")], &[])
        .await
        .err()
        .expect("wrong password");
    assert!(matches!(err, ScalerError::Backend { .. }), "{err}");
    let mut bad = md.to_vec();
    bad.retain(|(k, _)| *k != "port");
    bad.push(("port", "test_port"));
    let err = build(&BuildContext::default(), &bad, &auth, &[])
        .await
        .err()
        .expect("bad port");
    assert_eq!(err.field(), Some("port"), "{err}");

    let n = 100;
    let start = Instant::now();
    for _ in 0..n {
        scaler.sample().await.expect("sample");
    }
    println!(
        "mysql (mariadb): mean sample latency over {n} samples: {:?}",
        start.elapsed() / n
    );

    db.server.stop();
    assert_backend_error(scaler.sample().await);
    assert_backend_error(scaler.sample().await);
}
