//! libpq's `sslmode` and certificate files, on rustls.

use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres::config::SslMode;

use super::connection_string::SslParams;
use crate::files::FileRoot;
use crate::tls::ScalerTls;

/// Checks the chain but not the host name (libpq's `verify-ca`).
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

enum Verification {
    None,
    Chain,
    Full,
}

/// A tenant-named file, read only under `--filepath-auth-root-path`.
fn read_file(files: &FileRoot, path: &str, what: &str) -> Result<Vec<u8>, String> {
    files.read(path).map_err(|e| format!("the {what}: {e}"))
}

/// The tokio-postgres mode and the rustls configuration for the TLS parameters, reading the files they name
/// through `files`. Errors name the parameter; a file that does not hold what it should is reported
/// without its contents.
pub(super) fn tls_setup(
    ssl: &SslParams,
    files: &FileRoot,
    tls: &ScalerTls,
) -> Result<(SslMode, rustls::ClientConfig), (&'static str, String)> {
    let mode = ssl.mode.as_deref().unwrap_or("prefer");
    let (pg_mode, verification) = match mode {
        "disable" => (SslMode::Disable, Verification::None),
        "allow" | "prefer" => (SslMode::Prefer, Verification::None),
        "require" if ssl.root_cert.is_some() => (SslMode::Require, Verification::Chain),
        "require" => (SslMode::Require, Verification::None),
        "verify-ca" => (SslMode::Require, Verification::Chain),
        "verify-full" => (SslMode::Require, Verification::Full),
        other => {
            return Err((
                "sslmode",
                format!(
                    "{other:?} must be one of disable, allow, prefer, require, verify-ca, verify-full"
                ),
            ));
        }
    };
    if ssl.password.is_some() {
        return Err((
            "sslpassword",
            "encrypted client keys are not supported by keda-rs; provide an unencrypted sslkey"
                .into(),
        ));
    }
    let provider = tls.provider().clone();
    let builder = tls.builder().map_err(|e| ("sslmode", e))?;
    let roots = || -> Result<Arc<RootCertStore>, (&'static str, String)> {
        let mut store = RootCertStore::empty();
        match ssl.root_cert.as_deref() {
            Some(path) if path != "system" => {
                let pem =
                    read_file(files, path, "root certificate").map_err(|m| ("sslrootcert", m))?;
                let not_pem = || {
                    (
                        "sslrootcert",
                        format!("{path:?} does not hold PEM certificates"),
                    )
                };
                for cert in CertificateDer::pem_slice_iter(&pem) {
                    store
                        .add(cert.map_err(|_| not_pem())?)
                        .map_err(|e| ("sslrootcert", format!("{path:?}: {e}")))?;
                }
            }
            // The system's roots, the bundled ones and `--ca-dir`'s.
            _ => return Ok(tls.roots()),
        }
        Ok(Arc::new(store))
    };
    let verifier: Arc<dyn ServerCertVerifier> = match verification {
        Verification::None => tls.accept_any(),
        Verification::Chain | Verification::Full => {
            let webpki = WebPkiServerVerifier::builder_with_provider(roots()?, provider.clone())
                .build()
                .map_err(|e| ("sslrootcert", format!("no usable root certificate: {e}")))?;
            match verification {
                Verification::Chain => Arc::new(ChainOnly(webpki)),
                _ => webpki,
            }
        }
    };
    let builder = builder
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let config = match (&ssl.cert, &ssl.key) {
        (Some(cert_path), Some(key_path)) => {
            let pem =
                read_file(files, cert_path, "client certificate").map_err(|m| ("sslcert", m))?;
            let certs = CertificateDer::pem_slice_iter(&pem)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| {
                    (
                        "sslcert",
                        format!("{cert_path:?} does not hold PEM certificates"),
                    )
                })?;
            let key_pem = read_file(files, key_path, "client key").map_err(|m| ("sslkey", m))?;
            let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| {
                (
                    "sslkey",
                    format!("{key_path:?} does not hold an unencrypted PEM private key"),
                )
            })?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| ("sslcert", format!("{cert_path:?}: {e}")))?
        }
        _ => builder.with_no_client_auth(),
    };
    Ok((pg_mode, config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssl_modes() {
        let mode = |m: &str| {
            tls_setup(
                &SslParams {
                    mode: Some(m.into()),
                    ..Default::default()
                },
                &FileRoot::unset(),
                &ScalerTls::default(),
            )
            .map(|(mode, _)| mode)
        };
        assert_eq!(mode("disable").unwrap(), SslMode::Disable);
        assert_eq!(mode("prefer").unwrap(), SslMode::Prefer);
        assert_eq!(mode("allow").unwrap(), SslMode::Prefer);
        assert_eq!(mode("require").unwrap(), SslMode::Require);
        assert_eq!(mode("bogus").unwrap_err().0, "sslmode");
        let missing_root = tls_setup(
            &SslParams {
                mode: Some("verify-ca".into()),
                root_cert: Some("/nonexistent/ca.pem".into()),
                ..Default::default()
            },
            &FileRoot::new("/nonexistent"),
            &ScalerTls::default(),
        );
        assert_eq!(missing_root.unwrap_err().0, "sslrootcert");
    }
}
