//! KEDA's validating admission webhooks.
//!
//! * One validator per kind ([`webhook::Webhook::scaled_object`], [`webhook::Webhook::scaled_job`],
//!   [`webhook::trigger_authentication`]) on upstream's paths ([`webhook::Kind::path`]). Each object goes
//!   through the one checking pipeline (`keda_check::Checker`, also run by `keda lint`): rules with
//!   upstream's messages, advice, env and authentication resolved by `keda_resolver::Resolver`, every
//!   trigger through the scaler registry's parse. A missing TriggerAuthentication /
//!   ClusterTriggerAuthentication is rejected. Secrets, ConfigMaps and ServiceAccounts are never read
//!   (`keda_resolver::AuthObjectsOnly`): values from them count as present and unknown, and the parse
//!   judges the rest with placeholders (`keda_check::parse`).
//! * Lookups of other ScaledObjects and HPAs go to an in-memory [`index::Index`] fed by watches
//!   ([`watch`]); the Services, Ingresses and ALB IngressClasses the ALB check reads come from watches
//!   too, stored as the little the check reads ([`exposure`]); the scale target (GET) and LimitRanges
//!   are read on demand ([`cluster::Cluster`]). Deployments are never watched.
//! * Warnings: the shared findings, the scale target's graceful-shutdown pitfalls
//!   (`keda_check::advice::workload_warnings`, as `keda lint`), and an API server outside the
//!   supported Kubernetes versions (`keda_check::advice::kubernetes_version`, read once at start).
//! * A body that does not decode is a denied review (HTTP 200), never an HTTP 500.
//! * The serving certificate is reloaded when its files change ([`tls::ReloadingCert`]).

pub mod cluster;
pub mod exposure;
pub mod index;
pub mod metrics;
pub mod server;
pub mod tls;
pub mod watch;
pub mod webhook;

pub use cluster::{Cluster, KubeCluster, MemoryCluster};
pub use index::Index;
pub use metrics::Metrics;
pub use webhook::{Kind, Outcome, Webhook};

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("serving {what} on {addr}: {source}")]
    Bind {
        what: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("TLS {path}: {message}")]
    Tls { path: String, message: String },
    #[error("connecting to the API server: {0}")]
    Kube(String),
}

/// What `keda admission-webhooks` runs with.
#[derive(Clone, Debug)]
pub struct Config {
    pub webhook_addr: SocketAddr,
    pub health_addr: SocketAddr,
    pub metrics_addr: SocketAddr,
    /// Directory with `tls.crt` and `tls.key`.
    pub cert_dir: PathBuf,
    /// Namespace of the Secrets and ConfigMaps that ClusterTriggerAuthentications refer to.
    pub cluster_object_namespace: String,
    pub restrict_secret_access: bool,
    /// The operator's `--filepath-auth-root-path`, so file paths in triggers and ClusterTriggerAuthentication
    /// `filePath` are refused here as the operator refuses them (checked as written: the files are the
    /// operator's).
    pub file_root: keda_scalers::files::FileRoot,
    /// Client-side limit of Kubernetes API requests (`--kube-api-qps`, `--kube-api-burst`).
    pub kube_api_rate: Option<keda_kube::RateLimit>,
    /// TLS versions and suites of the webhook server (`KEDA_SERVICE_MIN_TLS_VERSION`,
    /// `KEDA_SERVICE_TLS_CIPHER_LIST`).
    pub tls: keda_scalers::tls::TlsProtocols,
}

/// Runs the webhooks until the process ends (or a server fails).
pub async fn run(config: Config) -> Result<(), Error> {
    let client = keda_kube::infer_client(config.kube_api_rate)
        .await
        .map_err(|e| Error::Kube(e.to_string()))?;
    let cert = Arc::new(tls::ReloadingCert::new(
        &config.cert_dir,
        Duration::from_secs(5),
    )?);
    let tls_config = tls::server_config(cert, &config.tls)?;

    let index = Arc::new(Index::new());
    let exposure = Arc::new(exposure::ExposureCache::new());
    let synced = Arc::new(AtomicBool::new(false));
    let metrics = Metrics::default();
    let mut registry = prometheus_client::registry::Registry::default();
    metrics.register(&mut registry);

    // No Secret, ConfigMap or ServiceAccount is read: the chart grants the webhook none of them.
    let resolver = keda_resolver::Resolver::new(
        keda_resolver::AuthObjectsOnly(keda_resolver::KubeSource::new(client.clone())),
        config.cluster_object_namespace.clone(),
    )
    .with_restrict_secret_access(config.restrict_secret_access)
    .with_file_root(
        config.file_root.clone(),
        keda_resolver::FileAccess::CheckOnly,
    );
    // Read once at start: API server upgrades are rare, and a restart reads it again.
    let server_version = match client.apiserver_version().await {
        Ok(info) => {
            if let Some(f) = keda_check::advice::kubernetes_version(&info.major, &info.minor) {
                tracing::warn!(version = %info.git_version, "{}", f.message);
            }
            Some((info.major, info.minor))
        }
        Err(e) => {
            tracing::warn!(error = %e, "reading the API server's version");
            None
        }
    };
    let webhook = Arc::new(Webhook {
        index: index.clone(),
        resolver,
        cluster: KubeCluster {
            client: client.clone(),
            exposure: exposure.clone(),
            server_version,
        },
        metrics,
    });

    let listener = tokio::net::TcpListener::bind(config.webhook_addr)
        .await
        .map_err(|source| Error::Bind {
            what: "admission webhooks",
            addr: config.webhook_addr,
            source,
        })?;
    tracing::info!(addr = %config.webhook_addr, "serving admission webhooks");
    // Ready once the indexes and the ALB check's caches have listed.
    let ready = Arc::new(AtomicBool::new(false));
    let watches = futures::future::join3(
        watch::run(client.clone(), index, synced.clone()),
        exposure::run(client, exposure.clone()),
        mark_ready(synced, exposure, ready.clone()),
    );
    tokio::select! {
        r = server::serve_tls(listener, tls_config, server::router(webhook)) => r,
        r = server::serve_plain(config.health_addr, server::health_router(ready), "health probes") => r,
        r = server::serve_plain(config.metrics_addr, server::metrics_router(Arc::new(registry)), "metrics") => r,
        _ = watches => Ok(()),
    }
}

/// Sets `ready` once the indexes (`indexes_synced`) and the exposure caches have listed.
async fn mark_ready(
    indexes_synced: Arc<AtomicBool>,
    exposure: Arc<exposure::ExposureCache>,
    ready: Arc<AtomicBool>,
) {
    use std::sync::atomic::Ordering;
    while !(indexes_synced.load(Ordering::SeqCst) && exposure.synced()) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    ready.store(true, Ordering::SeqCst);
    // Keeps the join of the watches pending like them.
    std::future::pending::<()>().await;
}
