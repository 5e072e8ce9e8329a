//! The serving certificate, re-read from `tls.crt` / `tls.key` when their modification times change.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use keda_scalers::tls::TlsProtocols;

use crate::Error;

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn mtime(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Reads a PEM certificate chain and key into a [`CertifiedKey`].
pub fn load(cert: &Path, key: &Path) -> Result<CertifiedKey, Error> {
    let tls = |path: &Path, message: String| Error::Tls {
        path: path.display().to_string(),
        message,
    };
    let cert_pem = std::fs::read(cert).map_err(|e| tls(cert, e.to_string()))?;
    let key_pem = std::fs::read(key).map_err(|e| tls(key, e.to_string()))?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| tls(cert, e.to_string()))?;
    if chain.is_empty() {
        return Err(tls(cert, "no certificate in the file".into()));
    }
    let key_der = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| tls(key, e.to_string()))?;
    CertifiedKey::from_der(chain, key_der, &provider()).map_err(|e| tls(key, e.to_string()))
}

struct Current {
    key: Arc<CertifiedKey>,
    stamps: (Option<SystemTime>, Option<SystemTime>),
    checked: Instant,
}

/// A [`ResolvesServerCert`] that checks the files at most every `check_every` and loads a changed pair;
/// a pair that does not load (half written) keeps the previous one in use.
pub struct ReloadingCert {
    cert: PathBuf,
    key: PathBuf,
    check_every: Duration,
    current: RwLock<Current>,
}

impl std::fmt::Debug for ReloadingCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReloadingCert")
            .field("cert", &self.cert)
            .finish_non_exhaustive()
    }
}

impl ReloadingCert {
    pub fn new(dir: &Path, check_every: Duration) -> Result<Self, Error> {
        let cert = dir.join("tls.crt");
        let key = dir.join("tls.key");
        let loaded = load(&cert, &key)?;
        Ok(ReloadingCert {
            current: RwLock::new(Current {
                key: Arc::new(loaded),
                stamps: (mtime(&cert), mtime(&key)),
                checked: Instant::now(),
            }),
            cert,
            key,
            check_every,
        })
    }

    pub fn current(&self) -> Option<Arc<CertifiedKey>> {
        {
            let cur = self.current.read().ok()?;
            if cur.checked.elapsed() < self.check_every {
                return Some(cur.key.clone());
            }
        }
        let mut cur = self.current.write().ok()?;
        if cur.checked.elapsed() >= self.check_every {
            cur.checked = Instant::now();
            let stamps = (mtime(&self.cert), mtime(&self.key));
            if stamps != cur.stamps {
                match load(&self.cert, &self.key) {
                    Ok(k) => {
                        tracing::info!(cert = %self.cert.display(), "serving certificate reloaded");
                        cur.key = Arc::new(k);
                        cur.stamps = stamps;
                    }
                    Err(e) => tracing::warn!(error = %e, "new serving certificate not usable yet"),
                }
            }
        }
        Some(cur.key.clone())
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current()
    }
}

/// The server configuration: the reloading certificate, the TLS versions and suites of `protocols`
/// (`KEDA_SERVICE_MIN_TLS_VERSION`, `KEDA_SERVICE_TLS_CIPHER_LIST`), HTTP/1.1 and HTTP/2.
pub fn server_config(
    cert: Arc<ReloadingCert>,
    protocols: &TlsProtocols,
) -> Result<rustls::ServerConfig, Error> {
    let mut config = protocols
        .server_builder()
        .map_err(|e| Error::Tls {
            path: String::new(),
            message: e.to_string(),
        })?
        .with_no_client_auth()
        .with_cert_resolver(cert);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}
