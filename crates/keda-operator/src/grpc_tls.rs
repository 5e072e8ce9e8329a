//! Mutual TLS for the gRPC metrics service that follows certificate changes without a restart.
//!
//! Every accepted connection is handshaken with the configuration in force at that moment; a new
//! configuration is swapped in when the mounted `kedaorg-certs` files change (kubelet replaces them
//! atomically) or when this operator renews the Secret itself. Established connections keep their
//! session, so a rotation never cuts a metrics request in flight.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use keda_scalers::tls::TlsProtocols;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio_rustls::TlsAcceptor;

use crate::metrics_service::TlsMaterial;

/// How often the certificate files are checked for changes (three `stat` calls).
pub const CHECK_EVERY: Duration = Duration::from_secs(2);

/// The server configuration for one set of PEM material: serve `tls.crt`, require a client
/// certificate signed by `ca.crt`, speak HTTP/2 over the TLS versions and suites of `protocols`
/// (`KEDA_SERVICE_MIN_TLS_VERSION`, `KEDA_SERVICE_TLS_CIPHER_LIST`).
pub fn server_config(
    m: &TlsMaterial,
    protocols: &TlsProtocols,
) -> Result<rustls::ServerConfig, String> {
    let certs = |what: &str, pem: &[u8]| {
        let certs = CertificateDer::pem_slice_iter(pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("{what}: {e}"))?;
        if certs.is_empty() {
            return Err(format!("{what}: no certificate"));
        }
        Ok(certs)
    };
    let mut roots = rustls::RootCertStore::empty();
    for c in certs("ca.crt", &m.ca_crt)? {
        roots.add(c).map_err(|e| format!("ca.crt: {e}"))?;
    }
    let verifier =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), protocols.provider().clone())
            .build()
            .map_err(|e| format!("client certificate verifier: {e}"))?;
    let key = PrivateKeyDer::from_pem_slice(&m.tls_key).map_err(|e| format!("tls.key: {e}"))?;
    let mut config = protocols
        .server_builder()
        .map_err(|e| e.to_string())?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs("tls.crt", &m.tls_crt)?, key)
        .map_err(|e| format!("tls.crt/tls.key: {e}"))?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}

fn stamps(dir: &Path) -> [Option<SystemTime>; 3] {
    ["ca.crt", "tls.crt", "tls.key"].map(|f| {
        std::fs::metadata(dir.join(f))
            .and_then(|m| m.modified())
            .ok()
    })
}

/// The acceptor in force, swapped when the material changes.
pub struct ReloadingTls {
    dir: PathBuf,
    protocols: TlsProtocols,
    acceptor: ArcSwap<TlsAcceptor>,
    seen: Mutex<[Option<SystemTime>; 3]>,
}

impl std::fmt::Debug for ReloadingTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReloadingTls")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl ReloadingTls {
    /// Starts with `initial`; later changes of the files in `dir` replace it. Every configuration
    /// speaks `protocols`.
    pub fn new(
        initial: &TlsMaterial,
        dir: PathBuf,
        protocols: TlsProtocols,
    ) -> Result<Self, String> {
        let config = server_config(initial, &protocols)?;
        let seen = stamps(&dir);
        Ok(ReloadingTls {
            dir,
            protocols,
            acceptor: ArcSwap::from_pointee(TlsAcceptor::from(Arc::new(config))),
            seen: Mutex::new(seen),
        })
    }

    pub fn acceptor(&self) -> Arc<TlsAcceptor> {
        self.acceptor.load_full()
    }

    /// Uses `m` for connections accepted from now on. A broken set is refused and the current one kept.
    pub fn set(&self, m: &TlsMaterial) -> Result<(), String> {
        let config = server_config(m, &self.protocols)?;
        self.acceptor
            .store(Arc::new(TlsAcceptor::from(Arc::new(config))));
        Ok(())
    }

    /// Loads the files again when any of them changed since the last look. Returns whether a new
    /// configuration is in force. A half-written set is retried at the next check.
    pub fn reload_if_changed(&self) -> bool {
        let now = stamps(&self.dir);
        let Ok(mut seen) = self.seen.lock() else {
            return false;
        };
        if now == *seen || now.iter().any(Option::is_none) {
            return false;
        }
        let loaded = TlsMaterial::from_dir(&self.dir)
            .map_err(|e| e.to_string())
            .and_then(|m| self.set(&m));
        match loaded {
            Ok(()) => {
                *seen = now;
                tracing::info!(dir = %self.dir.display(), "gRPC metrics service certificates reloaded");
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, "new gRPC certificates not usable yet; keeping the current ones");
                false
            }
        }
    }

    /// Checks the files every [`CHECK_EVERY`] until the task is dropped.
    pub async fn watch_files(self: Arc<Self>) {
        let mut tick = tokio::time::interval(CHECK_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            self.reload_if_changed();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn material(ca_name: &str) -> TlsMaterial {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(rcgen::DnType::CommonName, ca_name);
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let leaf = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .signed_by(&key, &ca_cert, &ca_key)
            .unwrap();
        TlsMaterial {
            ca_crt: ca_cert.pem().into_bytes(),
            tls_crt: leaf.pem().into_bytes(),
            tls_key: key.serialize_pem().into_bytes(),
        }
    }

    #[test]
    fn broken_material_is_refused_with_the_file_named() {
        let good = material("KEDA");
        assert!(server_config(&good, &TlsProtocols::default()).is_ok());
        let mut bad = good.clone();
        bad.tls_key = b"not a key".to_vec();
        assert!(
            server_config(&bad, &TlsProtocols::default())
                .unwrap_err()
                .contains("tls.key")
        );
        let mut no_ca = good;
        no_ca.ca_crt = Vec::new();
        assert!(
            server_config(&no_ca, &TlsProtocols::default())
                .unwrap_err()
                .contains("ca.crt")
        );
    }

    /// A handshake (on loopback) of a client presenting `m`'s certificate and speaking only `versions`
    /// with a server of `config`: the version agreed, or why there was none.
    async fn handshake(
        m: &TlsMaterial,
        config: rustls::ServerConfig,
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> Result<rustls::ProtocolVersion, String> {
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_slice_iter(&m.ca_crt) {
            roots.add(c.unwrap()).unwrap();
        }
        let chain = CertificateDer::pem_slice_iter(&m.tls_crt)
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_slice(&m.tls_key).unwrap();
        let client = rustls::ClientConfig::builder_with_protocol_versions(versions)
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let server = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            acceptor.accept(tcp).await.map(|_| ())
        });
        let a = tokio::net::TcpStream::connect(addr).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let tls = tokio_rustls::TlsConnector::from(Arc::new(client))
            .connect(name, a)
            .await
            .map_err(|e| e.to_string())?;
        server.await.unwrap().map_err(|e| e.to_string())?;
        Ok(tls.get_ref().1.protocol_version().unwrap())
    }

    #[tokio::test]
    async fn min_tls13_refuses_a_tls12_only_client() {
        use keda_scalers::tls::MinTlsVersion;
        let m = material("KEDA");
        let tls13 = TlsProtocols::new(MinTlsVersion::Tls13, &[]);
        let tls12_only = &[&rustls::version::TLS12];
        let refused = handshake(&m, server_config(&m, &tls13).unwrap(), tls12_only).await;
        assert!(refused.is_err(), "{refused:?}");
        let tls13_only = &[&rustls::version::TLS13];
        let agreed = handshake(&m, server_config(&m, &tls13).unwrap(), tls13_only).await;
        assert_eq!(agreed, Ok(rustls::ProtocolVersion::TLSv1_3));
        let default = server_config(&m, &TlsProtocols::default()).unwrap();
        let agreed = handshake(&m, default, tls12_only).await;
        assert_eq!(agreed, Ok(rustls::ProtocolVersion::TLSv1_2));
    }

    #[test]
    fn changed_files_are_loaded_and_half_written_ones_are_not() {
        let dir = std::env::temp_dir().join(format!("keda-grpc-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let write = |m: &TlsMaterial| {
            std::fs::write(dir.join("ca.crt"), &m.ca_crt).unwrap();
            std::fs::write(dir.join("tls.crt"), &m.tls_crt).unwrap();
            std::fs::write(dir.join("tls.key"), &m.tls_key).unwrap();
        };
        let first = material("first");
        write(&first);
        let tls = ReloadingTls::new(&first, dir.clone(), TlsProtocols::default()).unwrap();
        assert!(!tls.reload_if_changed(), "nothing changed yet");
        let before = tls.acceptor();

        // mtime granularity: make sure the new files get a different stamp.
        std::thread::sleep(Duration::from_millis(20));
        let second = material("second");
        std::fs::write(dir.join("tls.key"), b"half written").unwrap();
        assert!(!tls.reload_if_changed(), "a broken pair must be refused");
        assert!(Arc::ptr_eq(&before, &tls.acceptor()));

        std::thread::sleep(Duration::from_millis(20));
        write(&second);
        assert!(tls.reload_if_changed());
        assert!(!Arc::ptr_eq(&before, &tls.acceptor()));
        assert!(!tls.reload_if_changed(), "loaded once");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
