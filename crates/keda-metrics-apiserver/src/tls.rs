//! TLS material: the HTTPS server configuration (keda-tls's reloading serving certificate, optional
//! client certificates) and the mTLS client configuration for the operator's gRPC service.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use keda_tls::{ReloadingCert, TlsError, TlsProtocols, load_certs, load_key};
use rustls::server::WebPkiClientVerifier;

use crate::auth::Authenticator;

/// The names of the self-signed certificate served until the serving certificate's files appear.
pub const SELF_SIGNED_NAMES: &[&str] = &["localhost", "keda-operator-metrics-apiserver"];

fn mtime(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// The HTTPS server configuration: our certificate, optional client certificates from either CA
/// (which CA signed one decides what it proves, see [`Authenticator::identify`]), HTTP/2 and HTTP/1.1,
/// the TLS versions and suites of `protocols` (`KEDA_SERVICE_MIN_TLS_VERSION`,
/// `KEDA_SERVICE_TLS_CIPHER_LIST`).
pub fn server_config(
    cert: Arc<ReloadingCert>,
    authn: &Authenticator,
    protocols: &TlsProtocols,
) -> Result<rustls::ServerConfig, TlsError> {
    let client_certs = if authn.all_roots.is_empty() {
        None
    } else {
        let mut roots = rustls::RootCertStore::empty();
        for c in &authn.all_roots {
            roots
                .add(c.clone())
                .map_err(|e| TlsError::Config(format!("client CA: {e}")))?;
        }
        let verifier = WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            protocols.provider().clone(),
        )
        .allow_unauthenticated()
        .build()
        .map_err(|e| TlsError::Config(format!("client certificate verifier: {e}")))?;
        Some(verifier)
    };
    keda_tls::server_config(cert, protocols, client_certs)
}

/// The mTLS files the operator and the metrics API server share (Secret `kedaorg-certs`).
#[derive(Debug, Clone)]
pub struct MtlsFiles {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl MtlsFiles {
    pub fn in_dir(dir: &Path) -> Self {
        MtlsFiles {
            ca: dir.join("ca.crt"),
            cert: dir.join("tls.crt"),
            key: dir.join("tls.key"),
        }
    }

    pub fn stamps(&self) -> [Option<SystemTime>; 3] {
        [mtime(&self.ca), mtime(&self.cert), mtime(&self.key)]
    }

    /// A client configuration trusting only `ca.crt`, presenting `tls.crt`, speaking HTTP/2 over the
    /// TLS versions and suites of `protocols` (upstream's client uses the `KEDA_SERVICE_*` ones too).
    pub fn client_config(
        &self,
        protocols: &TlsProtocols,
    ) -> Result<rustls::ClientConfig, TlsError> {
        let mut roots = rustls::RootCertStore::empty();
        for c in load_certs(&self.ca)? {
            roots.add(c).map_err(|e| TlsError::Parse {
                path: self.ca.display().to_string(),
                message: e.to_string(),
            })?;
        }
        let mut config = protocols
            .client_builder()
            .map_err(|e| TlsError::Config(e.to_string()))?
            .with_root_certificates(roots)
            .with_client_auth_cert(load_certs(&self.cert)?, load_key(&self.key)?)
            .map_err(|e| TlsError::Parse {
                path: self.key.display().to_string(),
                message: e.to_string(),
            })?;
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(config)
    }
}
