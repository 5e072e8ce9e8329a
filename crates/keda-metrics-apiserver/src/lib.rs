//! keda-rs metrics API server: serves `external.metrics.k8s.io/v1beta1` to the HPA controller through
//! the kube-apiserver aggregation layer and answers each request by asking the operator over gRPC.
//!
//! Layers, each usable alone:
//! - [`api::Api`]: routing, discovery documents, the external-metrics endpoint, probes, Status errors;
//!   depends only on a [`provider::MetricsProvider`] and an [`auth::Authorizer`].
//! - [`auth`]: front-proxy / client-certificate authentication and SubjectAccessReview authorization.
//! - [`grpc::GrpcProvider`]: the operator's `api.MetricsService` over mTLS (the production provider).
//! - [`server`]: TLS listener (hot-reloaded serving certificate) and the `/metrics` listener.
//!
//! `keda metrics-apiserver` parses flags into a [`Config`] and calls [`run`].

pub mod api;
pub mod auth;
pub mod grpc;
pub mod metrics;
pub mod provider;
pub mod server;
pub mod tls;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;

pub use grpc::{GrpcConfig, GrpcProvider};
pub use provider::{MetricsProvider, ProviderError, StaticProvider};

/// Settings of the process (see `keda metrics-apiserver --help` for the flags).
#[derive(Debug, Clone)]
pub struct Config {
    /// HTTPS address (`--bind-address`, `--secure-port`).
    pub secure_addr: SocketAddr,
    /// Plain-HTTP `/metrics` address; `None` disables it.
    pub metrics_addr: Option<SocketAddr>,
    /// Serving certificate and key (reloaded when they change).
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    /// Extra CA bundle whose client certificates authenticate their CN (`--client-ca-file`).
    pub client_ca_file: Option<PathBuf>,
    /// Front-proxy CA bundle overriding the ConfigMap's (`--requestheader-client-ca-file`).
    pub requestheader_client_ca_file: Option<PathBuf>,
    /// Allowed front-proxy CNs overriding the ConfigMap's (`--requestheader-allowed-names`).
    pub requestheader_allowed_names: Option<Vec<String>>,
    /// Do not read ConfigMap kube-system/extension-apiserver-authentication.
    pub authentication_skip_lookup: bool,
    /// How often the authentication settings are re-read.
    pub authn_refresh: Duration,
    /// Lifetime of cached authorization decisions.
    pub authz_cache_ttl: Duration,
    /// The operator's metrics service.
    pub grpc: GrpcConfig,
    /// Client-side limit of Kubernetes API requests (`--kube-api-qps`, `--kube-api-burst`).
    pub kube_api_rate: Option<keda_kube::RateLimit>,
    /// TLS versions and suites of the HTTPS server (`KEDA_SERVICE_MIN_TLS_VERSION`,
    /// `KEDA_SERVICE_TLS_CIPHER_LIST`; the gRPC client's are in [`GrpcConfig::tls`]).
    pub tls: keda_tls::TlsProtocols,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("connecting to the Kubernetes API")]
    Kube(#[source] kube::Error),
    #[error("listening on {addr} ({what}): {source}")]
    Listen {
        what: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Tls(#[from] keda_tls::TlsError),
    #[error(transparent)]
    Grpc(#[from] grpc::GrpcError),
}

/// Builds the authentication settings from the ConfigMap data (if any) and the flag files.
pub fn authn_config(
    config: &Config,
    configmap: Option<&BTreeMap<String, String>>,
) -> Result<auth::AuthnConfig, String> {
    let mut authn = match configmap {
        Some(data) => auth::AuthnConfig::from_configmap(data)?,
        None => auth::AuthnConfig::default(),
    };
    if let Some(path) = &config.requestheader_client_ca_file {
        authn.requestheader_ca_pem = std::fs::read_to_string(path)
            .map_err(|e| format!("reading {}: {e}", path.display()))?;
        if authn.requestheader.username_headers.is_empty() {
            authn.requestheader.username_headers = vec!["X-Remote-User".into()];
            authn.requestheader.group_headers = vec!["X-Remote-Group".into()];
            authn.requestheader.extra_headers_prefixes = vec!["X-Remote-Extra-".into()];
        }
    }
    if let Some(names) = &config.requestheader_allowed_names {
        authn.requestheader.allowed_names = names.clone();
    }
    if let Some(path) = &config.client_ca_file {
        match std::fs::read_to_string(path) {
            Ok(pem) => {
                if !authn.client_ca_pem.is_empty() && !authn.client_ca_pem.ends_with('\n') {
                    authn.client_ca_pem.push('\n');
                }
                authn.client_ca_pem.push_str(&pem);
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "client CA file not readable")
            }
        }
    }
    Ok(authn)
}

async fn read_configmap(client: &kube::Client) -> Result<Option<BTreeMap<String, String>>, String> {
    use auth::configmap_keys::{NAME, NAMESPACE};
    let api: kube::Api<ConfigMap> = kube::Api::namespaced(client.clone(), NAMESPACE);
    match api.get_opt(NAME).await {
        Ok(cm) => Ok(cm.map(|c| c.data.unwrap_or_default())),
        Err(e) => Err(format!("reading ConfigMap {NAMESPACE}/{NAME}: {e}")),
    }
}

/// Keeps the server's authentication settings current.
async fn refresh_authn(config: Config, client: kube::Client, server: Arc<server::Server>) {
    let mut warned = false;
    loop {
        let data = if config.authentication_skip_lookup {
            Ok(None)
        } else {
            read_configmap(&client).await
        };
        match data.and_then(|d| authn_config(&config, d.as_ref())) {
            Ok(authn) => {
                warned = false;
                if let Err(e) = server.set_authn(authn) {
                    tracing::warn!(error = %e, "new client authentication settings not usable");
                }
            }
            Err(e) if !warned => {
                warned = true;
                tracing::warn!(error = %e, "client authentication settings not refreshed; keeping the last ones");
            }
            Err(_) => {}
        }
        tokio::time::sleep(config.authn_refresh).await;
    }
}

/// Runs the metrics API server until SIGTERM/SIGINT.
pub async fn run(config: Config) -> Result<(), Error> {
    let client = keda_kube::infer_client(config.kube_api_rate)
        .await
        .map_err(Error::Kube)?;
    let metrics = Arc::new(metrics::Metrics::default());
    let provider = GrpcProvider::start(config.grpc.clone(), metrics.clone())?;
    let api = Arc::new(api::Api::new(
        provider,
        Arc::new(auth::SarAuthorizer::new(
            client.clone(),
            config.authz_cache_ttl,
        )),
        metrics.clone(),
    ));
    let cert = Arc::new(keda_tls::ReloadingCert::from_files_or_self_signed(
        config.cert_file.clone(),
        config.key_file.clone(),
        Duration::from_secs(2),
        tls::SELF_SIGNED_NAMES,
    )?);
    // Start with what can be read now; the refresher retries the ConfigMap until it succeeds.
    let initial = match if config.authentication_skip_lookup {
        Ok(None)
    } else {
        read_configmap(&client).await
    } {
        Ok(data) => authn_config(&config, data.as_ref()).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "client authentication settings unusable; all requests are anonymous until fixed");
            auth::AuthnConfig::default()
        }),
        Err(e) => {
            tracing::warn!(error = %e, "all requests are anonymous until the ConfigMap can be read");
            authn_config(&config, None).unwrap_or_default()
        }
    };
    let server = Arc::new(server::Server::new(api, cert, initial, config.tls.clone())?);
    let listener = server::bind(config.secure_addr)
        .await
        .map_err(|source| Error::Listen {
            what: "https",
            addr: config.secure_addr,
            source,
        })?;
    tracing::info!(addr = %listener.local_addr().unwrap_or(config.secure_addr), operator = %config.grpc.address, "keda-rs metrics API server serving");
    if let Some(addr) = config.metrics_addr {
        let l = server::bind(addr).await.map_err(|source| Error::Listen {
            what: "metrics",
            addr,
            source,
        })?;
        tokio::spawn(server::serve_metrics(l, metrics.clone()));
    }
    tokio::spawn(refresh_authn(config.clone(), client, server.clone()));
    tokio::select! {
        () = server.clone().serve(listener) => {}
        () = shutdown_signal() => {}
    }
    tracing::info!("keda-rs metrics API server stopped");
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
