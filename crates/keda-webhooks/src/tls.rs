//! The serving certificate (keda-tls's [`ReloadingCert`]: `tls.crt` / `tls.key` re-read when they
//! change) and the webhook server's TLS configuration.

use std::sync::Arc;

pub use keda_tls::ReloadingCert;
use keda_tls::{TlsError, TlsProtocols};

use crate::Error;

impl From<TlsError> for Error {
    fn from(e: TlsError) -> Error {
        let (path, message) = match e {
            TlsError::Read { path, source } => (path, source.to_string()),
            TlsError::Parse { path, message } => (path, message),
            TlsError::Config(message) => (String::new(), message),
        };
        Error::Tls { path, message }
    }
}

/// The server configuration: the reloading certificate, the TLS versions and suites of `protocols`
/// (`KEDA_SERVICE_MIN_TLS_VERSION`, `KEDA_SERVICE_TLS_CIPHER_LIST`), HTTP/1.1 and HTTP/2, no client
/// certificates (the kube-apiserver is not asked for one).
pub fn server_config(
    cert: Arc<ReloadingCert>,
    protocols: &TlsProtocols,
) -> Result<rustls::ServerConfig, Error> {
    Ok(keda_tls::server_config(cert, protocols, None)?)
}
