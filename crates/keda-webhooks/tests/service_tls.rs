//! `KEDA_SERVICE_MIN_TLS_VERSION` and `KEDA_SERVICE_TLS_CIPHER_LIST` on the webhook server, on loopback:
//! the TLS versions and cipher suites a client gets the server to speak.

use std::sync::Arc;
use std::time::Duration;

use keda_scalers::tls::{MinTlsVersion, TlsProtocols, cipher_suites};
use keda_webhooks::{server, tls};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{CipherSuite, ProtocolVersion, SupportedProtocolVersion};

/// Serves an empty router on a loopback port with `protocols`; returns the port and the certificate.
async fn start(name: &str, protocols: TlsProtocols) -> (u16, CertificateDer<'static>) {
    let dir = std::env::temp_dir().join(format!(
        "keda-webhooks-service-tls-{name}-{}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).expect("dir");
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("cert");
    std::fs::write(dir.join("tls.crt"), ck.cert.pem()).expect("write");
    std::fs::write(dir.join("tls.key"), ck.key_pair.serialize_pem()).expect("write");
    let cert = Arc::new(tls::ReloadingCert::new(&dir, Duration::from_secs(5)).expect("cert"));
    let config = tls::server_config(cert, &protocols).expect("config");
    let _ = std::fs::remove_dir_all(&dir);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(server::serve_tls(listener, config, axum::Router::new()));
    (port, ck.cert.der().clone())
}

/// A handshake with a client speaking only `versions` and, when given, only the TLS 1.2 suites of
/// `tls12` (Go names): the version and suite agreed, or why there was none.
async fn handshake(
    port: u16,
    cert: &CertificateDer<'static>,
    versions: &[&'static SupportedProtocolVersion],
    tls12: Option<&str>,
) -> Result<(ProtocolVersion, CipherSuite), String> {
    let mut provider = rustls::crypto::ring::default_provider();
    if let Some(list) = tls12 {
        provider.cipher_suites.retain(|s| s.tls13().is_some());
        provider.cipher_suites.extend(cipher_suites(list).0);
    }
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.clone()).expect("root");
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(versions)
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let name = ServerName::try_from("localhost").expect("name");
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|e| e.to_string())?;
    let conn = tls.get_ref().1;
    Ok((
        conn.protocol_version().expect("version"),
        conn.negotiated_cipher_suite().expect("suite").suite(),
    ))
}

const TLS12: &[&SupportedProtocolVersion] = &[&rustls::version::TLS12];
const TLS13: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13];

#[tokio::test]
async fn min_tls13_refuses_a_tls12_only_client() {
    let (port, cert) = start("tls13", TlsProtocols::new(MinTlsVersion::Tls13, &[])).await;
    let refused = handshake(port, &cert, TLS12, None).await;
    assert!(refused.is_err(), "{refused:?}");
    let (version, _) = handshake(port, &cert, TLS13, None).await.expect("TLS 1.3");
    assert_eq!(version, ProtocolVersion::TLSv1_3);

    // The default: TLS 1.2 as well.
    let (port, cert) = start("default", TlsProtocols::default()).await;
    let (version, _) = handshake(port, &cert, TLS12, None).await.expect("TLS 1.2");
    assert_eq!(version, ProtocolVersion::TLSv1_2);
}

#[tokio::test]
async fn cipher_list_limits_the_tls12_suites() {
    let (suites, _) = cipher_suites("TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256");
    let (port, cert) = start("ciphers", TlsProtocols::new(MinTlsVersion::Tls12, &suites)).await;
    let refused = handshake(
        port,
        &cert,
        TLS12,
        Some("TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"),
    )
    .await;
    assert!(refused.is_err(), "{refused:?}");
    let agreed = handshake(
        port,
        &cert,
        TLS12,
        Some(
            "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384:TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        ),
    )
    .await
    .expect("the listed suite");
    assert_eq!(
        agreed,
        (
            ProtocolVersion::TLSv1_2,
            CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
        )
    );
    let (version, _) = handshake(port, &cert, TLS13, None).await.expect("TLS 1.3");
    assert_eq!(version, ProtocolVersion::TLSv1_3);
}
