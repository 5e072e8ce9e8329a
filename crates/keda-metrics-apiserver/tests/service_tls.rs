//! `KEDA_SERVICE_MIN_TLS_VERSION` and `KEDA_SERVICE_TLS_CIPHER_LIST` on the HTTPS server, on loopback:
//! the TLS versions and cipher suites a client gets the server to speak.

mod common;

use std::sync::Arc;
use std::time::Duration;

use keda_metrics_apiserver::StaticProvider;
use keda_metrics_apiserver::api::Api;
use keda_metrics_apiserver::auth::{AuthnConfig, Authorizer, AuthzError, Decision, UserInfo};
use keda_metrics_apiserver::metrics::Metrics;
use keda_metrics_apiserver::server::Server;
use keda_tls::{MinTlsVersion, ReloadingCert, TlsProtocols, cipher_suites};
use rustls::pki_types::ServerName;
use rustls::pki_types::pem::PemObject;
use rustls::{CipherSuite, ProtocolVersion, SupportedProtocolVersion};

struct Nobody;

#[async_trait::async_trait]
impl Authorizer for Nobody {
    async fn authorize(
        &self,
        _user: &UserInfo,
        _attrs: &keda_metrics_apiserver::auth::Attributes,
    ) -> Result<Decision, AuthzError> {
        Ok(Decision {
            allowed: false,
            reason: String::new(),
        })
    }
}

/// Serves on a loopback port with `protocols`; returns the port and the serving CA.
async fn start(protocols: TlsProtocols) -> (u16, String) {
    let dir = common::temp_dir("service-tls");
    let ca = common::Ca::new("serving-ca");
    let leaf = ca.leaf("keda-operator-metrics-apiserver", &[], &["localhost"]);
    std::fs::write(dir.join("tls.crt"), &leaf.cert_pem).expect("write");
    std::fs::write(dir.join("tls.key"), &leaf.key_pem).expect("write");
    let api = Arc::new(Api::new(
        Arc::new(StaticProvider::new()),
        Arc::new(Nobody),
        Arc::new(Metrics::default()),
    ));
    let cert = Arc::new(
        ReloadingCert::from_files(
            dir.join("tls.crt"),
            dir.join("tls.key"),
            Duration::from_secs(2),
        )
        .expect("cert"),
    );
    let server =
        Arc::new(Server::new(api, cert, AuthnConfig::default(), protocols).expect("server"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(server.serve(listener));
    (port, ca.pem())
}

/// A handshake with a client speaking only `versions` and, when given, only the TLS 1.2 suites of
/// `tls12` (Go names): the version and suite agreed, or why there was none.
async fn handshake(
    port: u16,
    ca_pem: &str,
    versions: &[&'static SupportedProtocolVersion],
    tls12: Option<&str>,
) -> Result<(ProtocolVersion, CipherSuite), String> {
    let mut provider = rustls::crypto::ring::default_provider();
    if let Some(list) = tls12 {
        provider.cipher_suites.retain(|s| s.tls13().is_some());
        provider.cipher_suites.extend(cipher_suites(list).0);
    }
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(c.expect("pem")).expect("root");
    }
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
    let (port, ca) = start(TlsProtocols::new(MinTlsVersion::Tls13, &[])).await;
    let refused = handshake(port, &ca, TLS12, None).await;
    assert!(refused.is_err(), "{refused:?}");
    let (version, _) = handshake(port, &ca, TLS13, None).await.expect("TLS 1.3");
    assert_eq!(version, ProtocolVersion::TLSv1_3);

    // The default: TLS 1.2 as well.
    let (port, ca) = start(TlsProtocols::default()).await;
    let (version, _) = handshake(port, &ca, TLS12, None).await.expect("TLS 1.2");
    assert_eq!(version, ProtocolVersion::TLSv1_2);
}

#[tokio::test]
async fn cipher_list_limits_the_tls12_suites() {
    let (suites, _) = cipher_suites("TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256");
    let (port, ca) = start(TlsProtocols::new(MinTlsVersion::Tls12, &suites)).await;
    let refused = handshake(
        port,
        &ca,
        TLS12,
        Some("TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"),
    )
    .await;
    assert!(refused.is_err(), "{refused:?}");
    let agreed = handshake(
        port,
        &ca,
        TLS12,
        Some(
            "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
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
    // TLS 1.3 suites are not limited (as in Go).
    let (version, _) = handshake(port, &ca, TLS13, None).await.expect("TLS 1.3");
    assert_eq!(version, ProtocolVersion::TLSv1_3);
}
