//! postgresql: upstream's parse tables, then a real PostgreSQL (Debian's postgresql, initdb into a scratch
//! dir, run as the `postgres` system user) with password authentication and TLS.

#![cfg(feature = "postgresql")]

use crate::{harness, support};

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use keda_scalers::files::FileRoot;
use keda_scalers::{BuildContext, MetricSpec, Scaler, ScalerError, TriggerInput, parse_trigger};
use serde_json::Value;

#[test]
fn parse_table() {
    let n = harness::run("postgresql.yaml", |input| {
        let c = keda_scalers::databases::postgresql::parse_config(input)?;
        let mut m = serde_json::Map::new();
        m.insert("connection".into(), Value::from(c.connection));
        m.insert("query".into(), Value::from(c.query));
        m.insert("targetQueryValue".into(), Value::from(c.target_query_value));
        m.insert(
            "activationTargetQueryValue".into(),
            Value::from(c.activation_target_query_value),
        );
        Ok(m)
    });
    assert!(n >= 20, "only {n} cases");
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
        trigger_type: "postgresql",
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

/// `%`-encodes a URL userinfo part.
fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_values_activation_tls_and_failure() {
    let mut pg = support::start_postgres();
    let port = pg.server.addr.port().to_string();
    pg.psql(
        "CREATE TABLE tasks (id serial PRIMARY KEY, state text NOT NULL);
         INSERT INTO tasks (state) SELECT 'pending' FROM generate_series(1, 3);
         INSERT INTO tasks (state) VALUES ('done');",
    );
    // The TLS files below are written into the scratch dir: the operator's --filepath-auth-root-path.
    let ctx = BuildContext {
        files: FileRoot::new(&pg.server.dir.path().display().to_string()),
        ..Default::default()
    };
    let query = "SELECT COUNT(*) FROM tasks WHERE state = 'pending'";

    // Separate parameters; the password (with a space) comes from the TriggerAuthentication.
    let md = [
        ("query", query),
        ("targetQueryValue", "2"),
        ("activationTargetQueryValue", "3"),
        ("host", "127.0.0.1"),
        ("port", port.as_str()),
        ("userName", "keda"),
        ("dbName", "postgres"),
        ("sslmode", "disable"),
    ];
    let auth = [("password", pg.password.as_str())];
    let (spec, scaler) = build(&ctx, &md, &auth, &[]).await.expect("build");
    assert_eq!(
        spec,
        MetricSpec::External {
            metric_name: "s0-postgresql".into(),
            target_type: keda_scalers::MetricTargetType::AverageValue,
            target: 2.0
        }
    );
    // Equal to the activation threshold: not active.
    assert_eq!(sample(&scaler).await, (3.0, false));
    pg.psql("INSERT INTO tasks (state) VALUES ('pending')");
    assert_eq!(sample(&scaler).await, (4.0, true));

    // A URL connection string from the container env; numeric, float and text results are read as numbers.
    let url = format!(
        "postgresql://keda:{}@127.0.0.1:{port}/postgres?sslmode=prefer&application_name=keda",
        url_encode(&pg.password)
    );
    let env = [("PG_CONN", url.as_str())];
    let mut url_scalers = Vec::new();
    for (q, want) in [
        ("SELECT 2.5::numeric", 2.5),
        ("SELECT 0.25::float8", 0.25),
        ("SELECT '7'", 7.0),
        ("SELECT 12::bigint, 'x'", 12.0),
    ] {
        let (_, s) = build(
            &ctx,
            &[
                ("query", q),
                ("targetQueryValue", "1"),
                ("connectionFromEnv", "PG_CONN"),
            ],
            &[],
            &env,
        )
        .await
        .expect("build from URL");
        assert_eq!(sample(&s).await.0, want, "{q}");
        url_scalers.push(s);
    }
    // Triggers on the same connection string share one connection; it closes with its last scaler.
    assert_eq!(ctx.postgresql.len(), 2);
    drop(url_scalers);
    assert_eq!(ctx.postgresql.len(), 1);

    // NULL, no rows and SQL errors are transient errors of the poll, as upstream.
    for q in [
        "SELECT NULL::int",
        "SELECT 1 WHERE false",
        "SELECT * FROM missing_table",
        "SELECT 'many'",
    ] {
        let (_, s) = build(
            &ctx,
            &[
                ("query", q),
                ("targetQueryValue", "1"),
                ("connectionFromEnv", "PG_CONN"),
            ],
            &[],
            &env,
        )
        .await
        .expect("build");
        assert_backend_error(s.sample().await);
    }
    // The connection is still usable after a failed query.
    assert_eq!(sample(&scaler).await, (4.0, true));

    // Wrong password, or TLS required by a server without TLS: the build fails, transiently.
    for (auth, mode) in [
        ([("password", "wrong")], "disable"),
        ([("password", pg.password.as_str())], "require"),
    ] {
        let mut md = md.to_vec();
        md.retain(|(k, _)| *k != "sslmode");
        md.push(("sslmode", mode));
        let err = build(&BuildContext::default(), &md, &auth, &[])
            .await
            .err()
            .expect("must fail");
        assert!(matches!(err, ScalerError::Backend { .. }), "{err}");
    }
    // An unknown sslmode names the field.
    let mut bad = md.to_vec();
    bad.retain(|(k, _)| *k != "sslmode");
    bad.push(("sslmode", "sometimes"));
    let err = build(&BuildContext::default(), &bad, &auth, &[])
        .await
        .err()
        .expect("bad sslmode");
    assert_eq!(err.field(), Some("sslmode"), "{err}");

    // TLS: a certificate for 127.0.0.1 from a test CA, enabled with a reload.
    let ca = support::TestCa::new();
    let (cert, key) = ca.leaf(&["127.0.0.1"]);
    let dir = pg.server.dir.path().to_path_buf();
    let data = dir.join("data");
    std::fs::write(data.join("server.crt"), &cert).expect("write cert");
    std::fs::write(data.join("server.key"), &key).expect("write key");
    let owner = support::run("stat", &["-c", "%U", &data.display().to_string()]);
    for f in ["server.crt", "server.key"] {
        let path = data.join(f).display().to_string();
        support::run("chown", &[owner.trim(), &path]);
        support::run("chmod", &["600", &path]);
    }
    pg.psql("ALTER SYSTEM SET ssl = on");
    pg.psql("SELECT pg_reload_conf()");
    support::wait_until("TLS to be on", std::time::Duration::from_secs(10), || {
        pg.psql("SHOW ssl").trim() == "on"
    });
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).expect("write CA");
    let other_ca_file = dir.join("other-ca.pem");
    std::fs::write(&other_ca_file, support::TestCa::new().pem()).expect("write other CA");
    let tls_query =
        "SELECT CASE WHEN ssl THEN 1 ELSE 0 END FROM pg_stat_ssl WHERE pid = pg_backend_pid()";
    let base = format!(
        "host=127.0.0.1 port={port} user=keda dbname=postgres password='{}'",
        pg.password
    );
    for (extra, ok) in [
        ("sslmode=require".to_string(), true),
        (
            format!("sslmode=verify-ca sslrootcert={}", ca_file.display()),
            true,
        ),
        (
            format!("sslmode=verify-full sslrootcert={}", ca_file.display()),
            true,
        ),
        (
            format!(
                "sslmode=verify-full sslrootcert={}",
                other_ca_file.display()
            ),
            false,
        ),
        (
            format!("sslmode=require sslrootcert={}", other_ca_file.display()),
            false,
        ),
    ] {
        let conn = format!("{base} {extra}");
        let result = build(
            &ctx,
            &[("query", tls_query), ("targetQueryValue", "1")],
            &[("connection", conn.as_str())],
            &[],
        )
        .await;
        match (ok, result) {
            (true, Ok((_, s))) => assert_eq!(sample(&s).await, (1.0, true), "{extra}: encrypted"),
            (false, Err(ScalerError::Backend { .. })) => {}
            (ok, other) => panic!("{extra}: expected ok={ok}, got {:?}", other.map(|_| ())),
        }
    }

    confinement(&pg, &ca, &base, tls_query).await;

    let n = 100;
    let start = Instant::now();
    for _ in 0..n {
        scaler.sample().await.expect("sample");
    }
    println!(
        "postgresql: mean sample latency over {n} samples: {:?}",
        start.elapsed() / n
    );

    pg.stop();
    assert_backend_error(scaler.sample().await);
    // Reconnecting fails too while the server is down.
    assert_backend_error(scaler.sample().await);
}

/// The files a connection names are opened only under the build context's root: `sslrootcert`,
/// `sslcert`/`sslkey` and a Unix-socket host inside it work against the real server; outside it, through
/// a symbolic link out of it, or with no root at all the build fails on the field, before connecting, and
/// the error does not quote the file. `base` connects over TCP with the password.
async fn confinement(pg: &support::Postgres, ca: &support::TestCa, base: &str, tls_query: &str) {
    let dir = pg.server.dir.path();
    let root_dir = dir.join("tls");
    std::fs::create_dir_all(&root_dir).expect("root dir");
    let inside = root_dir.join("ca.pem");
    std::fs::write(&inside, ca.pem()).expect("CA inside");
    let outside = dir.join("ca-outside.pem");
    std::fs::write(&outside, ca.pem()).expect("CA outside");
    std::os::unix::fs::symlink(&outside, root_dir.join("link.pem")).expect("link out");
    let (client_cert, client_key) = ca.leaf(&["keda"]);
    std::fs::write(root_dir.join("client.pem"), &client_cert).expect("client cert");
    std::fs::write(root_dir.join("client.key"), &client_key).expect("client key");
    let not_pem = root_dir.join("notes.txt");
    std::fs::write(&not_pem, "-----BEGIN PRIVATE NOTES\ntop secret line\n").expect("notes");
    let rooted = BuildContext {
        files: FileRoot::new(&root_dir.display().to_string()),
        ..Default::default()
    };
    let unrooted = BuildContext::default();
    let port = pg.server.addr.port();
    let socket_dir = dir.display().to_string();
    /// Ok, or the field and a fragment of the reason.
    type Want = Result<(), (&'static str, &'static str)>;
    let cases: Vec<(String, &BuildContext, Want)> = vec![
        (
            format!("sslmode=verify-full sslrootcert={}", inside.display()),
            &rooted,
            Ok(()),
        ),
        // Relative to the root, and with a `..` that stays inside.
        (
            "sslmode=verify-full sslrootcert=ca.pem".into(),
            &rooted,
            Ok(()),
        ),
        (
            format!(
                "sslmode=verify-full sslrootcert={}/../tls/ca.pem",
                root_dir.display()
            ),
            &rooted,
            Ok(()),
        ),
        (
            "sslmode=verify-full sslrootcert=ca.pem sslcert=client.pem sslkey=client.key".into(),
            &rooted,
            Ok(()),
        ),
        (
            format!("sslmode=verify-full sslrootcert={}", outside.display()),
            &rooted,
            Err(("sslrootcert", "is outside --filepath-auth-root-path")),
        ),
        (
            "sslmode=verify-full sslrootcert=../ca-outside.pem".into(),
            &rooted,
            Err(("sslrootcert", "is outside --filepath-auth-root-path")),
        ),
        (
            "sslmode=verify-full sslrootcert=link.pem".into(),
            &rooted,
            Err(("sslrootcert", "through a symbolic link")),
        ),
        // The operator's own client certificate (here: any file outside the root) is never presented.
        (
            format!(
                "sslmode=verify-full sslrootcert=ca.pem sslcert={} sslkey=client.key",
                outside.display()
            ),
            &rooted,
            Err(("sslcert", "is outside --filepath-auth-root-path")),
        ),
        (
            "sslmode=verify-full sslrootcert=ca.pem sslcert=client.pem sslkey=notes.txt".into(),
            &rooted,
            Err(("sslkey", "does not hold an unencrypted PEM private key")),
        ),
        (
            "sslmode=verify-full sslrootcert=ca.pem".into(),
            &unrooted,
            Err((
                "sslrootcert",
                "the operator runs without --filepath-auth-root-path",
            )),
        ),
    ];
    for (extra, ctx, want) in cases {
        let conn = format!("{base} {extra}");
        let metadata = [("query", tls_query), ("targetQueryValue", "1")];
        let auth = [("connection", conn.as_str())];
        let result = build(ctx, &metadata, &auth, &[]).await;
        match (want, result) {
            (Ok(()), Ok((_, s))) => assert_eq!(sample(&s).await, (1.0, true), "{extra}"),
            (Err((field, reason)), Err(e)) => {
                assert_eq!(e.field(), Some(field), "{extra}: {e}");
                let text = e.to_string();
                assert!(text.contains(reason), "{extra}: {text}");
                assert!(!text.contains("top secret"), "{extra}: {text}");
            }
            (want, got) => panic!("{extra}: expected {want:?}, got {:?}", got.map(|_| ())),
        }
    }
    // A Unix-socket host: connected to under the root, refused outside it.
    let socket_conn =
        format!("host={socket_dir} port={port} user=keda dbname=postgres sslmode=disable");
    let metadata = [("query", "SELECT 5"), ("targetQueryValue", "1")];
    let auth = [("connection", socket_conn.as_str())];
    let under_root = BuildContext {
        files: FileRoot::new(&socket_dir),
        ..Default::default()
    };
    let (_, s) = build(&under_root, &metadata, &auth, &[])
        .await
        .expect("socket under the root");
    assert_eq!(sample(&s).await, (5.0, true));
    let err = build(&rooted, &metadata, &auth, &[])
        .await
        .err()
        .expect("socket outside the root");
    assert_eq!(err.field(), Some("host"), "{err}");
}
