//! What the HTTP layer asks for a metric. The production implementation is the gRPC client to the
//! operator ([`crate::grpc::GrpcProvider`]); tests and benchmarks use [`StaticProvider`].

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use keda_proto::ExternalMetricValueList;

/// Why a metric could not be produced. Each variant maps to one Kubernetes Status reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// The request itself is wrong (400 BadRequest).
    #[error("{0}")]
    InvalidRequest(String),
    /// No such ScaledObject or metric (404 NotFound).
    #[error("{0}")]
    NotFound(String),
    /// The operator cannot be reached (503 ServiceUnavailable).
    #[error("{0}")]
    Unavailable(String),
    /// The operator did not answer in time (504 Timeout).
    #[error("{0}")]
    Timeout(String),
    /// The operator answered with an error (500 InternalError).
    #[error("{0}")]
    Failed(String),
}

impl ProviderError {
    /// A short category for metric labels and logs.
    pub fn category(&self) -> &'static str {
        match self {
            ProviderError::InvalidRequest(_) => "invalid_request",
            ProviderError::NotFound(_) => "not_found",
            ProviderError::Unavailable(_) => "unavailable",
            ProviderError::Timeout(_) => "timeout",
            ProviderError::Failed(_) => "failed",
        }
    }
}

/// The metrics source behind `external.metrics.k8s.io`.
#[async_trait]
pub trait MetricsProvider: Send + Sync + 'static {
    /// The values of `metric_name` (lowercase, e.g. `s0-metric-api-value`) of ScaledObject
    /// `namespace/scaled_object`.
    async fn get_metrics(
        &self,
        namespace: &str,
        scaled_object: &str,
        metric_name: &str,
    ) -> Result<ExternalMetricValueList, ProviderError>;

    /// `Ok` while the provider can answer (for `/readyz`); `Err` says why not.
    fn ready(&self) -> Result<(), String>;
}

#[async_trait]
impl<P: MetricsProvider + ?Sized> MetricsProvider for Arc<P> {
    async fn get_metrics(
        &self,
        namespace: &str,
        scaled_object: &str,
        metric_name: &str,
    ) -> Result<ExternalMetricValueList, ProviderError> {
        (**self)
            .get_metrics(namespace, scaled_object, metric_name)
            .await
    }

    fn ready(&self) -> Result<(), String> {
        (**self).ready()
    }
}

type Key = (String, String, String);

/// An in-memory provider: values set by the caller, optionally after a simulated backend delay.
/// For unit tests and benchmarks.
#[derive(Default)]
pub struct StaticProvider {
    values: RwLock<HashMap<Key, f64>>,
    delay: Option<Duration>,
    not_ready: RwLock<Option<String>>,
}

impl StaticProvider {
    pub fn new() -> Self {
        Self::default()
    }

    /// Every answer waits `delay` first, like a live call to a scaler backend.
    pub fn with_delay(delay: Duration) -> Self {
        StaticProvider {
            delay: Some(delay),
            ..Self::default()
        }
    }

    pub fn set(&self, namespace: &str, scaled_object: &str, metric: &str, value: f64) {
        if let Ok(mut v) = self.values.write() {
            v.insert(
                (namespace.into(), scaled_object.into(), metric.into()),
                value,
            );
        }
    }

    /// `Some(reason)` makes [`MetricsProvider::ready`] fail.
    pub fn set_not_ready(&self, reason: Option<&str>) {
        if let Ok(mut r) = self.not_ready.write() {
            *r = reason.map(str::to_owned);
        }
    }
}

#[async_trait]
impl MetricsProvider for StaticProvider {
    async fn get_metrics(
        &self,
        namespace: &str,
        scaled_object: &str,
        metric_name: &str,
    ) -> Result<ExternalMetricValueList, ProviderError> {
        if let Some(d) = self.delay {
            tokio::time::sleep(d).await;
        }
        let value = self.values.read().ok().and_then(|v| {
            v.get(&(namespace.into(), scaled_object.into(), metric_name.into()))
                .copied()
        });
        match value {
            Some(v) => Ok(ExternalMetricValueList {
                metadata: None,
                items: vec![keda_proto::external_metric_value(
                    metric_name,
                    v,
                    SystemTime::now(),
                )],
            }),
            None => Err(ProviderError::NotFound(format!(
                "no metric {metric_name} for ScaledObject {namespace}/{scaled_object}"
            ))),
        }
    }

    fn ready(&self) -> Result<(), String> {
        match self.not_ready.read().ok().and_then(|r| r.clone()) {
            Some(reason) => Err(reason),
            None => Ok(()),
        }
    }
}
