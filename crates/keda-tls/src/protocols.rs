//! Which TLS versions and cipher suites a side speaks, from upstream's Go-named settings.
//!
//! The same type serves keda-rs's own servers and the metrics API server's gRPC client
//! (`KEDA_SERVICE_MIN_TLS_VERSION`, `KEDA_SERVICE_TLS_CIPHER_LIST`) and the scalers' clients
//! (`KEDA_HTTP_MIN_TLS_VERSION`, `KEDA_HTTP_TLS_CIPHER_LIST`). rustls speaks no TLS below 1.2.

use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, SupportedCipherSuite, SupportedProtocolVersion};

pub use rustls::SupportedCipherSuite as CipherSuite;

/// The lowest TLS version spoken (`KEDA_SERVICE_MIN_TLS_VERSION`, `KEDA_HTTP_MIN_TLS_VERSION`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MinTlsVersion {
    #[default]
    Tls12,
    Tls13,
}

/// Go's names of cipher suites (`KEDA_*_TLS_CIPHER_LIST`, comma- or colon-separated) as rustls suites:
/// the TLS 1.2 suites rustls has, and the names it has not (CBC and RSA key exchange suites, unknown
/// names). Go's TLS 1.3 names are accepted and change nothing, as in Go.
pub fn cipher_suites(list: &str) -> (Vec<SupportedCipherSuite>, Vec<String>) {
    let mut suites = Vec::new();
    let mut unsupported = Vec::new();
    for name in list
        .split([',', ':'])
        .map(str::trim)
        .filter(|n| !n.is_empty())
    {
        if matches!(
            name,
            "TLS_AES_128_GCM_SHA256" | "TLS_AES_256_GCM_SHA384" | "TLS_CHACHA20_POLY1305_SHA256"
        ) {
            continue;
        }
        match rustls::crypto::ring::ALL_CIPHER_SUITES
            .iter()
            .find(|s| s.tls13().is_none() && format!("{:?}", s.suite()) == name)
        {
            Some(s) if !suites.contains(s) => suites.push(*s),
            Some(_) => {}
            None => unsupported.push(name.to_owned()),
        }
    }
    (suites, unsupported)
}

/// The TLS versions and cipher suites one side speaks, as rustls takes them: the scalers' clients
/// (`KEDA_HTTP_MIN_TLS_VERSION`, `KEDA_HTTP_TLS_CIPHER_LIST`) or keda-rs's own servers and the metrics
/// API server's gRPC client (`KEDA_SERVICE_MIN_TLS_VERSION`, `KEDA_SERVICE_TLS_CIPHER_LIST`).
#[derive(Clone, Debug)]
pub struct TlsProtocols {
    provider: Arc<CryptoProvider>,
    versions: &'static [&'static SupportedProtocolVersion],
}

impl TlsProtocols {
    /// TLS `min_version` and up; `tls12_suites` (from [`cipher_suites`]) replace rustls's TLS 1.2 suites
    /// when not empty, the TLS 1.3 suites are always offered (as in Go).
    pub fn new(min_version: MinTlsVersion, tls12_suites: &[SupportedCipherSuite]) -> TlsProtocols {
        let mut provider = rustls::crypto::ring::default_provider();
        if !tls12_suites.is_empty() {
            provider.cipher_suites.retain(|s| s.tls13().is_some());
            provider.cipher_suites.extend(tls12_suites.iter().copied());
        }
        static TLS13_ONLY: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13];
        let versions = match min_version {
            MinTlsVersion::Tls12 => rustls::DEFAULT_VERSIONS,
            MinTlsVersion::Tls13 => TLS13_ONLY,
        };
        TlsProtocols {
            provider: Arc::new(provider),
            versions,
        }
    }

    /// The crypto provider, holding the cipher suites.
    pub fn provider(&self) -> &Arc<CryptoProvider> {
        &self.provider
    }

    /// The TLS versions spoken.
    pub fn versions(&self) -> &'static [&'static SupportedProtocolVersion] {
        self.versions
    }

    /// A server configuration builder with these versions and suites.
    pub fn server_builder(
        &self,
    ) -> Result<rustls::ConfigBuilder<rustls::ServerConfig, rustls::WantsVerifier>, rustls::Error>
    {
        rustls::ServerConfig::builder_with_provider(self.provider.clone())
            .with_protocol_versions(self.versions)
    }

    /// A client configuration builder with these versions and suites.
    pub fn client_builder(
        &self,
    ) -> Result<rustls::ConfigBuilder<ClientConfig, rustls::WantsVerifier>, rustls::Error> {
        ClientConfig::builder_with_provider(self.provider.clone())
            .with_protocol_versions(self.versions)
    }
}

impl Default for TlsProtocols {
    /// TLS 1.2 and 1.3 with rustls's suites.
    fn default() -> TlsProtocols {
        TlsProtocols::new(MinTlsVersion::Tls12, &[])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_cipher_names_map_to_rustls_tls12_suites() {
        let (suites, unsupported) = cipher_suites(
            "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256:\
             TLS_AES_128_GCM_SHA256,TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,NOPE,",
        );
        let names: Vec<String> = suites.iter().map(|s| format!("{:?}", s.suite())).collect();
        assert_eq!(
            names,
            [
                "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
                "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"
            ]
        );
        assert_eq!(unsupported, ["TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", "NOPE"]);
        assert_eq!(cipher_suites(""), (vec![], vec![]));
    }
}
