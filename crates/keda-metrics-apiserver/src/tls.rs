//! TLS material: the serving certificate (reloaded from disk when its files change, without a restart),
//! the server configuration that asks for optional client certificates, and the mTLS client
//! configuration for the operator's gRPC service.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;

use keda_scalers::tls::TlsProtocols;

use crate::auth::Authenticator;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: String, message: String },
    #[error("{0}")]
    Config(String),
}

pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.display().to_string(),
        source,
    })
}

pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let data = read(path)?;
    let certs = CertificateDer::pem_slice_iter(&data)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Parse {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Parse {
            path: path.display().to_string(),
            message: "no certificate in the file".into(),
        });
    }
    Ok(certs)
}

pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let data = read(path)?;
    PrivateKeyDer::from_pem_slice(&data).map_err(|e| TlsError::Parse {
        path: path.display().to_string(),
        message: e.to_string(),
    })
}

/// A certificate chain and key read from PEM files.
pub fn load_certified_key(cert: &Path, key: &Path) -> Result<CertifiedKey, TlsError> {
    let chain = load_certs(cert)?;
    let key_der = load_key(key)?;
    CertifiedKey::from_der(chain, key_der, &provider()).map_err(|e| TlsError::Parse {
        path: key.display().to_string(),
        message: format!("does not match {}: {e}", cert.display()),
    })
}

fn mtime(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

struct Loaded {
    key: Arc<CertifiedKey>,
    stamps: (Option<SystemTime>, Option<SystemTime>),
    checked: Instant,
}

/// The serving certificate. Every handshake checks (at most every `check_every`) whether the files
/// changed and loads the new pair; a broken pair keeps the previous one in use. Without files a
/// self-signed certificate is used until they appear.
pub struct ReloadingCert {
    cert: PathBuf,
    key: PathBuf,
    check_every: Duration,
    current: RwLock<Loaded>,
}

impl std::fmt::Debug for ReloadingCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReloadingCert")
            .field("cert", &self.cert)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

/// A throwaway self-signed certificate for `names`.
pub fn self_signed(names: &[&str]) -> Result<CertifiedKey, TlsError> {
    let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    let ck = rcgen::generate_simple_self_signed(names)
        .map_err(|e| TlsError::Config(format!("generating a self-signed certificate: {e}")))?;
    let key = PrivateKeyDer::try_from(ck.key_pair.serialize_der())
        .map_err(|e| TlsError::Config(format!("self-signed key: {e}")))?;
    CertifiedKey::from_der(vec![ck.cert.der().clone()], key, &provider())
        .map_err(|e| TlsError::Config(format!("self-signed certificate: {e}")))
}

impl ReloadingCert {
    pub fn new(cert: PathBuf, key: PathBuf, check_every: Duration) -> Result<Self, TlsError> {
        let stamps = (mtime(&cert), mtime(&key));
        let loaded = if stamps.0.is_none() && stamps.1.is_none() {
            tracing::warn!(
                cert = %cert.display(),
                "no serving certificate; using a self-signed one until the files appear"
            );
            self_signed(&["localhost", "keda-operator-metrics-apiserver"])?
        } else {
            load_certified_key(&cert, &key)?
        };
        Ok(ReloadingCert {
            cert,
            key,
            check_every,
            current: RwLock::new(Loaded {
                key: Arc::new(loaded),
                stamps,
                checked: Instant::now(),
            }),
        })
    }

    /// The certificate to present now, reloading it first when the files changed.
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
            if stamps != cur.stamps && stamps.0.is_some() && stamps.1.is_some() {
                match load_certified_key(&self.cert, &self.key) {
                    Ok(k) => {
                        tracing::info!(cert = %self.cert.display(), "serving certificate reloaded");
                        cur.key = Arc::new(k);
                        cur.stamps = stamps;
                    }
                    // Often a half-written pair: retry at the next check, keep serving the old one.
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

/// The HTTPS server configuration: our certificate, optional client certificates from either CA
/// (which CA signed one decides what it proves, see [`Authenticator::identify`]), HTTP/2 and HTTP/1.1,
/// the TLS versions and suites of `protocols` (`KEDA_SERVICE_MIN_TLS_VERSION`,
/// `KEDA_SERVICE_TLS_CIPHER_LIST`).
pub fn server_config(
    cert: Arc<ReloadingCert>,
    authn: &Authenticator,
    protocols: &TlsProtocols,
) -> Result<rustls::ServerConfig, TlsError> {
    let builder = protocols
        .server_builder()
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let builder = if authn.all_roots.is_empty() {
        builder.with_no_client_auth()
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
        builder.with_client_cert_verifier(verifier)
    };
    let mut config = builder.with_cert_resolver(cert);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn write_pair(dir: &Path, name: &str) {
        let ck = rcgen::generate_simple_self_signed(vec![name.to_owned()]).expect("cert");
        std::fs::write(dir.join("tls.crt"), ck.cert.pem()).expect("write");
        std::fs::write(dir.join("tls.key"), ck.key_pair.serialize_pem()).expect("write");
    }

    #[test]
    fn serving_certificate_is_reloaded_when_the_files_change() {
        let dir = std::env::temp_dir().join(format!("keda-ma-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        write_pair(&dir, "one.example");
        let r = ReloadingCert::new(dir.join("tls.crt"), dir.join("tls.key"), Duration::ZERO)
            .expect("loads");
        let first = r.current().expect("cert").cert[0].clone();
        assert_eq!(r.current().expect("cert").cert[0], first);
        // A new pair with a different mtime.
        std::thread::sleep(Duration::from_millis(20));
        write_pair(&dir, "two.example");
        let t = SystemTime::now() + Duration::from_secs(5);
        for f in ["tls.crt", "tls.key"] {
            let file = std::fs::File::options()
                .write(true)
                .open(dir.join(f))
                .expect("open");
            file.set_modified(t).expect("touch");
        }
        assert_ne!(r.current().expect("cert").cert[0], first);
        // A broken pair keeps the last good one.
        std::fs::write(dir.join("tls.key"), "garbage").expect("write");
        let file = std::fs::File::options()
            .write(true)
            .open(dir.join("tls.key"))
            .expect("open");
        file.set_modified(t + Duration::from_secs(5))
            .expect("touch");
        assert!(r.current().is_some());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
