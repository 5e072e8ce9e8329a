//! Whom the scalers' TLS clients trust and which TLS they speak: the one place their root store is built.
//!
//! Upstream's scalers trust the system's certificates plus every certificate file in the `--ca-dir`
//! directories (default `/custom/ca`), and speak at least `KEDA_HTTP_MIN_TLS_VERSION` with the TLS 1.2
//! cipher suites of `KEDA_HTTP_TLS_CIPHER_LIST`. [`ScalerTls`] holds the same for keda-rs: the system
//! store, the bundled Mozilla roots (so an image without a CA bundle still reaches SaaS APIs) and the
//! `--ca-dir` certificates; the HTTP clients, PostgreSQL, MySQL and Redis connections all take their
//! roots from it (a trigger's own CA is added on top, as upstream). rustls speaks no TLS below 1.2.
//!
//! The versions and suites themselves ([`TlsProtocols`], [`MinTlsVersion`], [`cipher_suites`]) are
//! keda-tls's, shared with keda-rs's own servers; they are re-exported here for the scalers' callers.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

pub use keda_tls::{CipherSuite, MinTlsVersion, TlsProtocols, cipher_suites};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme, SupportedCipherSuite,
};

/// Upstream's default `--ca-dir`.
pub const DEFAULT_CA_DIR: &str = "/custom/ca";

/// What [`ScalerTls`] is built from.
#[derive(Clone, Debug, Default)]
pub struct TlsSettings {
    /// Directories whose certificate files are trusted (`--ca-dir`); a missing one is skipped.
    pub ca_dirs: Vec<PathBuf>,
    pub min_version: MinTlsVersion,
    /// The TLS 1.2 suites offered, in order ([`cipher_suites`]); empty: rustls's defaults. TLS 1.3
    /// suites are not configurable, as in Go.
    pub tls12_suites: Vec<SupportedCipherSuite>,
}

/// The trust and TLS parameters of every scaler client.
#[derive(Debug)]
pub struct ScalerTls {
    /// System and `--ca-dir` certificates (Redis and MySQL take certificates, not trust anchors).
    certs: Vec<CertificateDer<'static>>,
    /// `certs` and the bundled Mozilla roots.
    roots: Arc<RootCertStore>,
    protocols: TlsProtocols,
}

/// The system's certificates, read once per process.
fn system_certs() -> &'static [CertificateDer<'static>] {
    static SYSTEM: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
    SYSTEM.get_or_init(|| rustls_native_certs::load_native_certs().certs)
}

/// The certificates of the files in `dir` (upstream's rule: every file but directories and the names a
/// mounted ConfigMap or Secret uses for its own links, `..data`), and one problem for each file that
/// could not be read or holds no certificate. A missing directory is no problem.
fn dir_certs(dir: &Path) -> (Vec<CertificateDer<'static>>, Vec<String>) {
    let mut certs = Vec::new();
    let mut problems = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return (certs, problems),
        Err(e) => {
            problems.push(format!("reading {}: {e}", dir.display()));
            return (certs, problems);
        }
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|e| !e.file_name().to_string_lossy().starts_with(".."))
        .map(|e| e.path())
        .filter(|p| !p.is_dir())
        .collect();
    paths.sort();
    for path in paths {
        let found: Vec<_> = match std::fs::read(&path) {
            Ok(pem) => CertificateDer::pem_slice_iter(&pem)
                .filter_map(Result::ok)
                .collect(),
            Err(e) => {
                problems.push(format!("reading {}: {e}", path.display()));
                continue;
            }
        };
        if found.is_empty() {
            problems.push(format!(
                "{} holds no PEM certificate; skipped",
                path.display()
            ));
        }
        certs.extend(found);
    }
    (certs, problems)
}

/// A PEM certificate bundle as certificates; an error when it holds none or a malformed one.
pub fn parse_pem(pem: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("not PEM certificates: {e}"))?;
    if certs.is_empty() {
        return Err("no PEM certificate".into());
    }
    Ok(certs)
}

impl ScalerTls {
    /// Reads the system store and the `--ca-dir` directories; returns what it skipped (to be logged:
    /// a file that is not a certificate does not stop the operator, as upstream).
    pub fn new(settings: &TlsSettings) -> (ScalerTls, Vec<String>) {
        let mut certs = system_certs().to_vec();
        let mut problems = Vec::new();
        for dir in &settings.ca_dirs {
            let (found, skipped) = dir_certs(dir);
            certs.extend(found);
            problems.extend(skipped);
        }
        let mut roots = RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        // Only usable roots are kept: Redis refuses a bundle with one it cannot use.
        let before = certs.len();
        certs.retain(|c| roots.add(c.clone()).is_ok());
        let bad = before - certs.len();
        if bad > 0 {
            problems.push(format!(
                "{bad} certificates of the system store or --ca-dir are not usable as roots"
            ));
        }
        let tls = ScalerTls {
            certs,
            roots: Arc::new(roots),
            protocols: TlsProtocols::new(settings.min_version, &settings.tls12_suites),
        };
        (tls, problems)
    }

    /// The crypto provider (cipher suites) of every scaler client.
    pub fn provider(&self) -> &Arc<CryptoProvider> {
        self.protocols.provider()
    }

    /// The trusted roots: the system's, the bundled ones and `--ca-dir`'s.
    pub fn roots(&self) -> Arc<RootCertStore> {
        self.roots.clone()
    }

    /// [`ScalerTls::roots`] and the PEM certificates of `extra` (a trigger's `ca`).
    pub fn roots_with(&self, extra: &[&str]) -> Result<Arc<RootCertStore>, String> {
        if extra.is_empty() {
            return Ok(self.roots());
        }
        let mut roots = (*self.roots).clone();
        for pem in extra {
            for cert in parse_pem(pem)? {
                roots
                    .add(cert)
                    .map_err(|e| format!("not a usable CA: {e}"))?;
            }
        }
        Ok(Arc::new(roots))
    }

    /// The system and `--ca-dir` certificates (without the bundled roots, which are no certificates).
    pub fn certs(&self) -> &[CertificateDer<'static>] {
        &self.certs
    }

    /// [`ScalerTls::certs`] as one PEM bundle, followed by `extra` (Redis takes its roots this way).
    pub fn certs_pem(&self, extra: Option<&str>) -> String {
        use base64::Engine as _;
        let mut out = String::new();
        for cert in &self.certs {
            let b64 = base64::engine::general_purpose::STANDARD.encode(cert.as_ref());
            out.push_str("-----BEGIN CERTIFICATE-----\n");
            for line in b64.as_bytes().chunks(64) {
                out.push_str(&String::from_utf8_lossy(line));
                out.push('\n');
            }
            out.push_str("-----END CERTIFICATE-----\n");
        }
        if let Some(extra) = extra {
            out.push_str(extra);
            out.push('\n');
        }
        out
    }

    /// A client configuration builder with the versions and suites of this process, to which the caller
    /// adds its verifier and client certificate.
    pub fn builder(
        &self,
    ) -> Result<rustls::ConfigBuilder<ClientConfig, rustls::WantsVerifier>, String> {
        self.protocols
            .client_builder()
            .map_err(|e| format!("setting up TLS: {e}"))
    }

    /// A verifier that accepts any server certificate (`unsafeSsl`, libpq's `require`).
    pub fn accept_any(&self) -> Arc<dyn ServerCertVerifier> {
        Arc::new(AcceptAnyCertificate(self.provider().clone()))
    }
}

impl Default for ScalerTls {
    /// The system store and the bundled roots, TLS 1.2 and 1.3 with rustls's suites.
    fn default() -> ScalerTls {
        ScalerTls::new(&TlsSettings::default()).0
    }
}

/// Accepts any server certificate (signatures are still checked).
#[derive(Debug)]
pub(crate) struct AcceptAnyCertificate(pub(crate) Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listed_suites_replace_the_tls12_ones_only() {
        let (suites, _) = cipher_suites("TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384");
        let (tls, _) = ScalerTls::new(&TlsSettings {
            tls12_suites: suites,
            ..Default::default()
        });
        let tls12: Vec<_> = tls
            .provider()
            .cipher_suites
            .iter()
            .filter(|s| s.tls13().is_none())
            .collect();
        assert_eq!(tls12.len(), 1);
        assert_eq!(
            tls.provider().cipher_suites.len(),
            4,
            "and the 3 TLS 1.3 suites"
        );
    }

    #[test]
    fn ca_dirs_add_their_certificates_and_skip_what_is_not_one() {
        let dir = std::env::temp_dir().join(format!("keda-rs-ca-dir-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sub")).expect("dir");
        let key = rcgen::KeyPair::generate().expect("key");
        let ca = rcgen::CertificateParams::new(vec!["ca".to_owned()])
            .expect("params")
            .self_signed(&key)
            .expect("CA");
        std::fs::write(dir.join("ca.crt"), ca.pem()).expect("write");
        std::fs::write(dir.join("notes.txt"), "not a certificate").expect("write");
        std::fs::write(dir.join("..data"), ca.pem()).expect("write");
        let (base, _) = ScalerTls::new(&TlsSettings::default());
        let (tls, problems) = ScalerTls::new(&TlsSettings {
            ca_dirs: vec![dir.clone(), dir.join("missing")],
            ..Default::default()
        });
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(tls.certs().len(), base.certs().len() + 1);
        assert_eq!(tls.roots().len(), base.roots().len() + 1);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("notes.txt"), "{problems:?}");
        let pem = tls.certs_pem(None);
        assert_eq!(parse_pem(&pem).expect("bundle").len(), tls.certs().len());
    }
}
