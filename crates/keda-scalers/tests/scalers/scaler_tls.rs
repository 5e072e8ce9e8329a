//! Scaler TLS settings (`--ca-dir`, `KEDA_HTTP_MIN_TLS_VERSION`, `KEDA_HTTP_TLS_CIPHER_LIST`,
//! `KEDA_HTTP_DISABLE_KEEP_ALIVE`) against loopback servers.

use crate::support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use keda_scalers::http::{ClientKey, HttpClients};
use keda_scalers::tls::{MinTlsVersion, ScalerTls, TlsSettings, cipher_suites};
use keda_scalers::{BuildContext, ScalerError, TriggerInput, parse_trigger};

fn app() -> Router {
    Router::new().route("/json", get(|| async { r#"{"queue":{"depth":42}}"# }))
}

/// A build context whose scalers (HTTP ones included) use `settings`.
fn context(settings: &TlsSettings) -> BuildContext {
    let (tls, _) = ScalerTls::new(settings);
    let tls = Arc::new(tls);
    BuildContext {
        http: HttpClients::default().with_tls(tls.clone()),
        tls,
        ..Default::default()
    }
}

/// A metrics-api trigger on `addr`, built and sampled with `ctx`.
async fn sample(ctx: &BuildContext, addr: SocketAddr) -> Result<f64, ScalerError> {
    let md: BTreeMap<String, String> = [
        ("url", format!("https://{addr}/json")),
        ("valueLocation", "queue.depth".to_owned()),
        ("targetValue", "10".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let empty = BTreeMap::new();
    let input = TriggerInput {
        index: 0,
        trigger_type: "metrics-api",
        namespace: "default",
        name: None,
        metadata: &md,
        resolved_env: &empty,
        auth_params: &empty,
        metric_type: None,
    };
    let scaler = parse_trigger(&input)?.build(ctx).await?;
    Ok(scaler.sample().await?.value)
}

/// A CA written in a fresh directory (with a file that is no certificate beside it), and a server
/// certificate it signed for 127.0.0.1.
fn ca_dir() -> (support::TempDir, (String, String)) {
    let ca = support::TestCa::new();
    let dir = support::TempDir::new("ca-dir");
    std::fs::write(dir.path().join("private-ca.crt"), ca.pem()).expect("write CA");
    std::fs::write(dir.path().join("README"), "not a certificate").expect("write");
    (dir, ca.leaf(&["127.0.0.1"]))
}

#[tokio::test]
async fn a_ca_in_a_ca_dir_is_trusted_by_http_scalers() {
    let (dir, (cert, key)) = ca_dir();
    let addr = support::serve_tls(app(), 0, &cert, &key, None).await;
    let with_dir = TlsSettings {
        ca_dirs: vec![dir.path().to_owned(), dir.path().join("absent")],
        ..Default::default()
    };
    let (_, skipped) = ScalerTls::new(&with_dir);
    assert_eq!(skipped.len(), 1, "the README: {skipped:?}");
    assert_eq!(
        sample(&context(&with_dir), addr).await.expect("trusted"),
        42.0
    );
    // Without the directory the server's CA is unknown.
    let err = sample(&context(&TlsSettings::default()), addr)
        .await
        .expect_err("unknown CA");
    assert!(matches!(err, ScalerError::Backend { .. }), "{err}");
}

#[tokio::test]
async fn a_tls12_only_server_is_refused_when_the_minimum_is_tls13() {
    let (dir, (cert, key)) = ca_dir();
    let addr =
        support::serve_tls_versions(app(), 0, &cert, &key, None, &[&rustls::version::TLS12]).await;
    let settings = |min_version, ciphers: &str| TlsSettings {
        ca_dirs: vec![dir.path().to_owned()],
        min_version,
        tls12_suites: cipher_suites(ciphers).0,
    };
    assert_eq!(
        sample(&context(&settings(MinTlsVersion::Tls12, "")), addr)
            .await
            .expect("TLS 1.2"),
        42.0
    );
    let err = sample(&context(&settings(MinTlsVersion::Tls13, "")), addr)
        .await
        .expect_err("TLS 1.3 required");
    assert!(matches!(err, ScalerError::Backend { .. }), "{err}");
    // The server's key is ECDSA: only the listed ECDSA suite can be agreed on, an RSA one cannot.
    assert_eq!(
        sample(
            &context(&settings(
                MinTlsVersion::Tls12,
                "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"
            )),
            addr
        )
        .await
        .expect("ECDSA suite"),
        42.0
    );
    let err = sample(
        &context(&settings(
            MinTlsVersion::Tls12,
            "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        )),
        addr,
    )
    .await
    .expect_err("no common suite");
    assert!(matches!(err, ScalerError::Backend { .. }), "{err}");
}

/// A plain HTTP/1.1 server that keeps connections open; returns its address and the connections it
/// accepted.
async fn counting_server() -> (SocketAddr, Arc<AtomicUsize>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("addr");
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                while let Ok(n) = sock.read(&mut chunk).await {
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        buf.drain(..end + 4);
                        let resp = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}";
                        if sock.write_all(resp.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    (addr, accepted)
}

async fn two_requests(clients: HttpClients) -> usize {
    let (addr, accepted) = counting_server().await;
    let client = clients
        .get(&ClientKey {
            timeout: Duration::from_secs(3),
            unsafe_ssl: false,
            ca: None,
            cert_and_key: None,
        })
        .expect("client");
    for _ in 0..2 {
        let resp = client
            .get(format!("http://{addr}/"))
            .send()
            .await
            .expect("response");
        resp.bytes().await.expect("body");
    }
    accepted.load(Ordering::SeqCst)
}

#[tokio::test]
async fn without_keep_alive_each_request_opens_a_connection() {
    assert_eq!(two_requests(HttpClients::default()).await, 1, "kept alive");
    assert_eq!(
        two_requests(HttpClients::default().with_keep_alive(false)).await,
        2
    );
}
