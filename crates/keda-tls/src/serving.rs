//! The serving certificate: PEM files read into rustls, re-read when they change, and the server
//! configuration that presents it.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::danger::ClientCertVerifier;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::TlsProtocols;

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

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.display().to_string(),
        source,
    })
}

/// The PEM certificates of `path`; an error when it holds none.
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

/// The PEM private key of `path`.
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

fn mtime(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Modification times of the certificate and key files; `None` for a missing one.
type Stamps = (Option<SystemTime>, Option<SystemTime>);

struct Loaded {
    key: Arc<CertifiedKey>,
    stamps: Stamps,
    checked: Instant,
}

/// The serving certificate. Every handshake checks (at most every `check_every`) whether the files
/// changed and loads the new pair; a pair that does not load (often half written) keeps the previous
/// one in use, and so does a missing file.
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

impl ReloadingCert {
    /// `tls.crt` and `tls.key` in `dir` (a mounted `kubernetes.io/tls` Secret); they must load now.
    pub fn new(dir: &Path, check_every: Duration) -> Result<Self, TlsError> {
        Self::from_files(dir.join("tls.crt"), dir.join("tls.key"), check_every)
    }

    /// `cert` and `key`; they must load now.
    pub fn from_files(
        cert: PathBuf,
        key: PathBuf,
        check_every: Duration,
    ) -> Result<Self, TlsError> {
        let stamps = (mtime(&cert), mtime(&key));
        let loaded = load_certified_key(&cert, &key)?;
        Ok(Self::serving(cert, key, check_every, loaded, stamps))
    }

    /// `cert` and `key`; while neither exists, a self-signed certificate for `names` is served until
    /// both appear (a process that must answer before its certificate is issued).
    pub fn from_files_or_self_signed(
        cert: PathBuf,
        key: PathBuf,
        check_every: Duration,
        names: &[&str],
    ) -> Result<Self, TlsError> {
        let stamps = (mtime(&cert), mtime(&key));
        let loaded = if stamps.0.is_none() && stamps.1.is_none() {
            tracing::warn!(
                cert = %cert.display(),
                "no serving certificate; using a self-signed one until the files appear"
            );
            self_signed(names)?
        } else {
            load_certified_key(&cert, &key)?
        };
        Ok(Self::serving(cert, key, check_every, loaded, stamps))
    }

    fn serving(
        cert: PathBuf,
        key: PathBuf,
        check_every: Duration,
        loaded: CertifiedKey,
        stamps: Stamps,
    ) -> Self {
        ReloadingCert {
            cert,
            key,
            check_every,
            current: RwLock::new(Loaded {
                key: Arc::new(loaded),
                stamps,
                checked: Instant::now(),
            }),
        }
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

/// An HTTPS server configuration: `cert`, the TLS versions and suites of `protocols`
/// (`KEDA_SERVICE_MIN_TLS_VERSION`, `KEDA_SERVICE_TLS_CIPHER_LIST`), HTTP/2 and HTTP/1.1, and client
/// certificates checked by `client_certs` (none asked for without one).
pub fn server_config(
    cert: Arc<ReloadingCert>,
    protocols: &TlsProtocols,
    client_certs: Option<Arc<dyn ClientCertVerifier>>,
) -> Result<rustls::ServerConfig, TlsError> {
    let builder = protocols
        .server_builder()
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let builder = match client_certs {
        Some(verifier) => builder.with_client_cert_verifier(verifier),
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_cert_resolver(cert);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(test: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("keda-tls-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        dir
    }

    fn write_pair(dir: &Path, name: &str) {
        let ck = rcgen::generate_simple_self_signed(vec![name.to_owned()]).expect("cert");
        std::fs::write(dir.join("tls.crt"), ck.cert.pem()).expect("write");
        std::fs::write(dir.join("tls.key"), ck.key_pair.serialize_pem()).expect("write");
    }

    /// Sets the modification time of `files` in `dir` to `t`, so that a change is seen even when the
    /// file system's clock resolution is coarse.
    fn touch(dir: &Path, files: &[&str], t: SystemTime) {
        for f in files {
            let file = std::fs::File::options()
                .write(true)
                .open(dir.join(f))
                .expect("open");
            file.set_modified(t).expect("touch");
        }
    }

    #[test]
    fn serving_certificate_is_reloaded_when_the_files_change() {
        let dir = temp_dir("reload");
        write_pair(&dir, "one.example");
        let r = ReloadingCert::new(&dir, Duration::ZERO).expect("loads");
        let first = r.current().expect("cert").cert[0].clone();
        assert_eq!(r.current().expect("cert").cert[0], first);
        // A new pair with a different mtime.
        std::thread::sleep(Duration::from_millis(20));
        write_pair(&dir, "two.example");
        let t = SystemTime::now() + Duration::from_secs(5);
        touch(&dir, &["tls.crt", "tls.key"], t);
        let second = r.current().expect("cert").cert[0].clone();
        assert_ne!(second, first);
        // A broken pair keeps the last good one.
        std::fs::write(dir.join("tls.key"), "garbage").expect("write");
        touch(&dir, &["tls.key"], t + Duration::from_secs(5));
        assert_eq!(r.current().expect("cert").cert[0], second);
        // So does a missing file.
        std::fs::remove_file(dir.join("tls.key")).expect("remove");
        assert_eq!(r.current().expect("cert").cert[0], second);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn missing_files_are_an_error_unless_a_self_signed_certificate_may_stand_in() {
        let dir = temp_dir("missing");
        let err = ReloadingCert::new(&dir, Duration::ZERO).expect_err("no files");
        assert!(matches!(err, TlsError::Read { .. }), "{err}");
        assert!(err.to_string().contains("tls.crt"), "{err}");

        let r = ReloadingCert::from_files_or_self_signed(
            dir.join("tls.crt"),
            dir.join("tls.key"),
            Duration::ZERO,
            &["localhost"],
        )
        .expect("self-signed");
        let stand_in = r.current().expect("cert").cert[0].clone();
        // The real pair replaces the stand-in once both files exist.
        write_pair(&dir, "real.example");
        let real = r.current().expect("cert").cert[0].clone();
        assert_ne!(real, stand_in);
        assert_eq!(
            real,
            load_certs(&dir.join("tls.crt")).expect("certs")[0],
            "the files' certificate is served"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_key_of_another_certificate_names_both_files() {
        let dir = temp_dir("mismatch");
        write_pair(&dir, "one.example");
        let other =
            rcgen::generate_simple_self_signed(vec!["two.example".to_owned()]).expect("cert");
        std::fs::write(dir.join("tls.key"), other.key_pair.serialize_pem()).expect("write");
        let err =
            load_certified_key(&dir.join("tls.crt"), &dir.join("tls.key")).expect_err("mismatch");
        let _ = std::fs::remove_dir_all(&dir);
        let message = err.to_string();
        assert!(
            message.contains("tls.key") && message.contains("does not match"),
            "{message}"
        );
        assert!(message.contains("tls.crt"), "{message}");
    }
}
