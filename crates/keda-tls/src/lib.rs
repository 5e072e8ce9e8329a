//! TLS that keda-rs's processes share, in one place so that the webhooks, the metrics API server, the
//! operator and the scalers' clients speak the same versions and reload certificates the same way.
//!
//! * [`TlsProtocols`]: the TLS versions and cipher suites one side speaks, from upstream's Go-named
//!   settings (`KEDA_SERVICE_MIN_TLS_VERSION` / `KEDA_SERVICE_TLS_CIPHER_LIST` for keda-rs's servers,
//!   `KEDA_HTTP_*` for the scalers' clients).
//! * [`ReloadingCert`]: a serving certificate re-read from its PEM files when they change, so a rotated
//!   Secret is served without a restart; [`server_config`] puts it into a rustls server configuration.
//!
//! It depends on rustls only (no Kubernetes, no scalers), so any process can take it.

mod protocols;
mod serving;

pub use protocols::{CipherSuite, MinTlsVersion, TlsProtocols, cipher_suites};
pub use serving::{
    ReloadingCert, TlsError, load_certified_key, load_certs, load_key, self_signed, server_config,
};
