//! gRPC channels to external scalers, one per address and TLS settings (upstream's connection pool),
//! shared by every trigger that names the same server with the same credentials.
//!
//! tonic channels connect lazily and connect again on the next call after the server went away, so a
//! restarted external scaler is reached by the next poll without rebuilding anything. The cache holds
//! channels weakly: a channel lives while a scaler uses it, so a rotated client certificate leaves no
//! channel behind once the scalers built with the old one are gone.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tonic::transport::Channel;

use crate::tls::ScalerTls;

/// What makes a distinct channel: upstream's `externalScalerConnectionPoolKey`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ChannelKey {
    /// `host:port` as written in `scalerAddress` (without a `dns:///` scheme).
    pub address: String,
    pub enable_tls: bool,
    pub unsafe_ssl: bool,
    pub ca_cert: Option<String>,
    pub tls_client_cert: Option<String>,
    pub tls_client_key: Option<String>,
}

impl ChannelKey {
    /// Upstream speaks TLS with `enableTLS`, or when a CA or a complete client key pair is given.
    pub fn uses_tls(&self) -> bool {
        self.enable_tls
            || self.ca_cert.is_some()
            || (self.tls_client_cert.is_some() && self.tls_client_key.is_some())
    }
}

/// The channels in use, keyed by [`ChannelKey`].
#[derive(Default)]
pub struct ExternalChannels {
    channels: Mutex<HashMap<ChannelKey, Weak<Channel>>>,
}

/// How long connecting (TCP and TLS) may take; a call on a channel that cannot connect fails then.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

impl ExternalChannels {
    /// The channel for `key`: the one a live scaler already uses, else a new (not yet connected) one.
    pub fn get(&self, key: &ChannelKey, tls: &ScalerTls) -> Result<Arc<Channel>, String> {
        let mut map = self
            .channels
            .lock()
            .map_err(|_| "gRPC channel cache poisoned".to_owned())?;
        if let Some(c) = map.get(key).and_then(Weak::upgrade) {
            return Ok(c);
        }
        map.retain(|_, w| w.strong_count() > 0);
        let channel = Arc::new(open(key, tls)?);
        map.insert(key.clone(), Arc::downgrade(&channel));
        Ok(channel)
    }

    /// Number of live channels.
    pub fn len(&self) -> usize {
        self.channels
            .lock()
            .map(|m| m.values().filter(|w| w.strong_count() > 0).count())
            .unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// `host` and `port` of an address as written (`host:port`, `[v6]:port`, `host`); gRPC's default port
/// is 443.
pub fn split_address(address: &str) -> Result<(String, u16), String> {
    let rest = address
        .strip_prefix("dns:///")
        .or_else(|| address.strip_prefix("passthrough:///"))
        .unwrap_or(address);
    let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .ok_or_else(|| format!("{address:?}: unclosed '['"))?;
        (host, after.strip_prefix(':'))
    } else {
        match rest.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') => (h, Some(p)),
            _ => (rest, None),
        }
    };
    if host.is_empty() || host.contains('/') {
        return Err(format!("{address:?} is not host:port"));
    }
    let port = match port {
        None => 443,
        Some(p) => p
            .parse()
            .map_err(|_| format!("{address:?}: port {p:?} is not a number"))?,
    };
    Ok((host.to_owned(), port))
}

fn open(key: &ChannelKey, tls: &ScalerTls) -> Result<Channel, String> {
    let (host, port) = split_address(&key.address)?;
    let tls_config = if key.uses_tls() {
        Some(Arc::new(client_tls(key, tls)?))
    } else {
        None
    };
    crate::grpc::lazy_channel(host, port, tls_config, |endpoint| {
        endpoint
            .connect_timeout(CONNECT_TIMEOUT)
            // A push stream may be silent for hours: pings find a server that vanished without closing.
            .http2_keep_alive_interval(Duration::from_secs(30))
            .keep_alive_timeout(Duration::from_secs(10))
            .keep_alive_while_idle(true)
    })
    .map_err(|e| format!("{:?}: {e}", key.address))
}

/// [`ScalerTls`]'s roots plus the trigger's `caCert` (or no verification with `unsafeSsl`), the client
/// certificate when both `tlsClientCert` and `tlsClientKey` are set (as upstream), ALPN `h2`.
fn client_tls(key: &ChannelKey, tls: &ScalerTls) -> Result<rustls::ClientConfig, String> {
    let builder = tls.builder()?;
    let builder = if key.unsafe_ssl {
        builder
            .dangerous()
            .with_custom_certificate_verifier(tls.accept_any())
    } else {
        let extra: Vec<&str> = key.ca_cert.iter().map(String::as_str).collect();
        let roots = tls
            .roots_with(&extra)
            .map_err(|e| format!("parsing caCert: {e}"))?;
        builder.with_root_certificates(roots)
    };
    let mut config = match (&key.tls_client_cert, &key.tls_client_key) {
        (Some(cert), Some(k)) => {
            use rustls::pki_types::PrivateKeyDer;
            use rustls::pki_types::pem::PemObject;
            let err = |e: String| format!("parsing tlsClientCert and tlsClientKey: {e}");
            let certs = crate::tls::parse_pem(cert).map_err(err)?;
            let k = PrivateKeyDer::from_pem_slice(k.as_bytes())
                .map_err(|e| err(format!("no PEM private key: {e}")))?;
            builder
                .with_client_auth_cert(certs, k)
                .map_err(|e| err(e.to_string()))?
        }
        _ => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_as_grpc_targets() {
        assert_eq!(
            split_address("myservice").expect("bare host"),
            ("myservice".into(), 443)
        );
        assert_eq!(
            split_address("svc.ns:6000").expect("host:port"),
            ("svc.ns".into(), 6000)
        );
        assert_eq!(
            split_address("dns:///svc:6000").expect("dns scheme"),
            ("svc".into(), 6000)
        );
        assert_eq!(split_address("[::1]:7").expect("v6"), ("::1".into(), 7));
        assert!(split_address("svc:port").is_err());
        assert!(split_address("http://svc:1").is_err());
    }

    #[test]
    fn tls_when_upstream_uses_it() {
        let key = ChannelKey {
            address: "a:1".into(),
            enable_tls: false,
            unsafe_ssl: false,
            ca_cert: None,
            tls_client_cert: None,
            tls_client_key: None,
        };
        assert!(!key.uses_tls());
        assert!(
            ChannelKey {
                enable_tls: true,
                ..key.clone()
            }
            .uses_tls()
        );
        assert!(
            ChannelKey {
                ca_cert: Some("x".into()),
                ..key.clone()
            }
            .uses_tls()
        );
        // A certificate without its key is not loaded upstream, so it does not switch TLS on.
        assert!(
            !ChannelKey {
                tls_client_cert: Some("x".into()),
                ..key.clone()
            }
            .uses_tls()
        );
    }
}
