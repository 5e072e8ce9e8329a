//! What the operator, the metrics API server and the admission webhooks share about talking to the
//! Kubernetes API: a client with client-go's client-side rate limit ([`RateLimit`], upstream's
//! `--kube-api-qps` and `--kube-api-burst`) and label selectors written as `kubectl -l` takes them
//! ([`parse_label_selector`], upstream's `WATCH_LABEL_SELECTOR`). Also how each registers its Prometheus
//! metrics ([`metrics::RegistryExt`]).

pub mod metrics;
mod rate_limit;
mod selector;

pub use kube::core::Selector;
pub use rate_limit::{RateLimit, RateLimitLayer, RateLimited};
pub use selector::{SelectorError, parse_label_selector};

/// A client for the API server `config` points at, every request of which waits for `limit` (none:
/// no client-side limit).
pub fn client(config: kube::Config, limit: Option<RateLimit>) -> Result<kube::Client, kube::Error> {
    Ok(kube::client::ClientBuilder::try_from(config)?
        .with_layer(&RateLimitLayer::new(limit))
        .build())
}

/// [`client`] for the configuration found as kubectl finds it (in-cluster, then `KUBECONFIG`).
pub async fn infer_client(limit: Option<RateLimit>) -> Result<kube::Client, kube::Error> {
    let config = kube::Config::infer()
        .await
        .map_err(kube::Error::InferConfig)?;
    client(config, limit)
}
