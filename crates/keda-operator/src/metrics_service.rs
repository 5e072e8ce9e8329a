//! The operator side of the metrics API: `api.MetricsService/GetMetrics` on :9666 (mutual TLS), served by
//! the leader. For each HPA request it answers from the scale loop's cache (`useCachedMetrics`) or samples
//! the scaler live, and applies fallback and `scalingModifiers` exactly as the scale loop sees them.

use std::sync::Arc;

use keda_api::ScaledObject;
use keda_api::consts::names::COMPOSITE_METRIC;
use keda_core::fallback::{self, FallbackMetric, FallbackTarget, MetricState};
use keda_core::hpa::MetricTargetType;
use keda_proto::{
    ExternalMetricValue, ExternalMetricValueList, ListMeta, Quantity, ScaledObjectRef,
};
use kube::Client;
use kube::runtime::reflector::{ObjectRef, Store};

use crate::metrics::Metrics;
use crate::scale_loop::{MetricRecord, ObjectLoop, ScaleLoops, TriggerSlot};
use crate::target::TargetResolver;

/// What `GetMetrics` reads, shared with the reconciles and scale loops that keep it up to date: the
/// watched ScaledObjects, the running loops (parsed triggers, built scalers, cached values, health,
/// replica count), and what a live sample or a `Value` fallback needs.
pub struct MetricsSource {
    /// Lists the target's ready pods for a `Value` metric in fallback; nothing else is requested.
    pub client: Client,
    pub scaled_objects: Store<ScaledObject>,
    pub loops: Arc<ScaleLoops>,
    pub targets: Arc<TargetResolver>,
    /// Builds a loop's scaler for a live sample when the loop has not built it yet.
    pub build: Arc<keda_scalers::BuildContext>,
    /// Counts the empty upstream answers of live samples.
    pub metrics: Arc<Metrics>,
}

/// Why a metric could not be served (becomes a gRPC status).
#[derive(Debug, thiserror::Error)]
pub enum MetricError {
    #[error("ScaledObject {0}/{1} not found")]
    ScaledObjectNotFound(String, String),
    #[error("metric {metric} not found in ScaledObject {namespace}/{name}")]
    MetricNotFound {
        namespace: String,
        name: String,
        metric: String,
    },
    #[error("scaler for {0} is not ready yet")]
    NotReady(String),
    #[error("{0}")]
    Scaler(String),
    #[error("{0}")]
    Invalid(String),
}

/// One metric value in thousandths, as the HPA receives it.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricValue {
    pub metric_name: String,
    pub milli: i64,
}

fn to_milli(v: f64) -> i64 {
    // Negative, NaN and infinite values are served as 0; others are truncated to thousandths, as
    // upstream's `int64(v * 1000)`.
    if !v.is_finite() || v <= 0.0 {
        0
    } else {
        (v * 1000.0).min(i64::MAX as f64) as i64
    }
}

/// A metric's value for one HPA fetch: the scale loop's cached poll (`useCachedMetrics`) or a live
/// sample through the loop's own scaler.
async fn raw_value(
    source: &MetricsSource,
    object: &(String, String),
    shared: &ObjectLoop,
    slot: &TriggerSlot,
) -> Result<f64, String> {
    let t = &slot.parsed;
    if t.use_cached_metrics {
        let rec = shared.state().records.get(&t.metric_name).cloned();
        return match rec {
            Some(MetricRecord { value: Some(v), .. }) => Ok(v),
            Some(MetricRecord { error: Some(e), .. }) => Err(e),
            _ => Err("no value yet".to_owned()),
        };
    }
    slot.sample(&source.build, &source.metrics, object)
        .await
        .map(|s| s.value)
}

impl MetricsSource {
    /// Answers one `GetMetrics` request from what the operator already holds: the ScaledObject from its
    /// watch, and the object's scale loop (parsed triggers, built scalers, cached values, each metric's
    /// health, the last observed replica count). No API request is made, except listing the target's
    /// pods for a `Value` metric in fallback (upstream divides by the ready pods).
    pub async fn get_metrics(
        &self,
        ns: &str,
        name: &str,
        metric: &str,
    ) -> Result<Vec<MetricValue>, MetricError> {
        let so = self
            .scaled_objects
            .get(&ObjectRef::new(name).within(ns))
            .ok_or_else(|| MetricError::ScaledObjectNotFound(ns.to_owned(), name.to_owned()))?;
        let shared = self
            .loops
            .get(ns, name)
            .ok_or_else(|| MetricError::NotReady(format!("ScaledObject {ns}/{name}")))?;
        let slots = shared.triggers();
        let object = (ns.to_owned(), name.to_owned());
        let valid_fallback = fallback::has_valid_fallback(&so)
            .then_some(so.spec.fallback.as_ref())
            .flatten();
        let (health, current) = {
            let state = shared.state();
            (state.health.clone(), state.replicas)
        };
        let current = current.unwrap_or(1);
        let external: Vec<&Arc<TriggerSlot>> =
            slots.iter().filter(|s| !s.parsed.is_resource()).collect();

        if so.spec.scaling_modifiers().is_some() && metric.eq_ignore_ascii_case(COMPOSITE_METRIC) {
            let formula = keda_core::formula::compile_scaling_modifiers(&so)
                .map_err(|e| MetricError::Invalid(e.to_string()))?
                .ok_or_else(|| MetricError::Invalid("scalingModifiers without a formula".into()))?;
            let values = futures::future::join_all(
                external
                    .iter()
                    .map(|slot| raw_value(self, &object, &shared, slot)),
            )
            .await;
            let mut states = Vec::with_capacity(external.len());
            let mut first_error = None;
            for (slot, value) in external.iter().zip(values) {
                let state = match value {
                    Ok(v) => MetricState::Value {
                        value: v,
                        active: false,
                    },
                    Err(e) => {
                        let state = fallback::state_from_health(
                            valid_fallback,
                            health.get(&slot.parsed.metric_name),
                        );
                        if state.is_none() && first_error.is_none() {
                            first_error = Some(e);
                        }
                        state.unwrap_or(MetricState::Failed)
                    }
                };
                states.push((slot.parsed.name.as_deref(), state));
            }
            let fallback_active = states.iter().any(|(_, s)| *s == MetricState::Fallback);
            let ready = if fallback_active && value_metric_type(&so) {
                self.ready_pods(&so).await?
            } else {
                current
            };
            let summary = fallback::summarize(
                &states,
                false,
                Some(fallback::Composite {
                    formula: &formula,
                    activation_target: 0.0,
                    fallback_value: keda_core::fallback::composite_fallback_value(
                        &so, current, ready,
                    ),
                    nil_value: fallback::nil_formula_value(&so).ok(),
                }),
            );
            // In fallback the composite is the fallback value even though a trigger failed; otherwise a
            // failed trigger fails the fetch, as upstream.
            return match (summary.composite, first_error) {
                (Some(v), None) => Ok(vec![MetricValue {
                    metric_name: COMPOSITE_METRIC.to_owned(),
                    milli: to_milli(v),
                }]),
                (Some(v), Some(_)) if summary.fallback_active => Ok(vec![MetricValue {
                    metric_name: COMPOSITE_METRIC.to_owned(),
                    milli: to_milli(v),
                }]),
                (_, Some(e)) => Err(MetricError::Scaler(e)),
                (None, None) => Err(MetricError::Invalid(
                    "the scalingModifiers formula gave no value".to_owned(),
                )),
            };
        }

        let slot = external
            .iter()
            .find(|s| s.parsed.metric_name.eq_ignore_ascii_case(metric))
            .ok_or_else(|| MetricError::MetricNotFound {
                namespace: ns.to_owned(),
                name: name.to_owned(),
                metric: metric.to_owned(),
            })?;
        let t = &slot.parsed;
        match raw_value(self, &object, &shared, slot).await {
            Ok(v) => Ok(vec![MetricValue {
                metric_name: t.metric_name.clone(),
                milli: to_milli(v),
            }]),
            Err(e) => {
                let in_fallback =
                    fallback::state_from_health(valid_fallback, health.get(&t.metric_name))
                        == Some(MetricState::Fallback);
                let (true, Some(fb)) = (in_fallback, valid_fallback) else {
                    return Err(MetricError::Scaler(e));
                };
                let target = match t.trigger_metric().kind {
                    keda_core::hpa::MetricKind::External {
                        target_type,
                        target_value,
                        ..
                    } => FallbackTarget {
                        target_type,
                        value: target_value,
                    },
                    _ => return Err(MetricError::Scaler(e)),
                };
                let ready = if target.target_type == MetricTargetType::Value {
                    Some(self.ready_pods(&so).await?)
                } else {
                    None
                };
                match fallback::fallback_metric(&t.metric_name, fb, current, target, ready) {
                    Ok(FallbackMetric::Milli(m)) => Ok(vec![MetricValue {
                        metric_name: t.metric_name.clone(),
                        milli: m.max(0),
                    }]),
                    Ok(FallbackMetric::NilInFormula) => Err(MetricError::Scaler(e)),
                    Err(fe) => Err(MetricError::Scaler(format!("{e}; fallback: {fe}"))),
                }
            }
        }
    }

    /// Running and Ready pods of the object's target (only for a `Value` metric in fallback).
    async fn ready_pods(&self, so: &ScaledObject) -> Result<i32, MetricError> {
        let t = &so.spec.scale_target_ref;
        let ns = kube::ResourceExt::namespace(so).unwrap_or_default();
        let (target, _) = self
            .targets
            .resolve(&self.client, &ns, t.api_version(), t.kind(), &t.name)
            .await
            .map_err(MetricError::Scaler)?;
        target
            .ready_pods(&self.client)
            .await
            .map_err(|e| MetricError::Scaler(e.to_string()))
    }
}

fn value_metric_type(so: &ScaledObject) -> bool {
    so.spec
        .scaling_modifiers()
        .and_then(|m| m.metric_type)
        .is_some_and(|t| t == keda_api::scaled_object::ModifierMetricType::Value)
}

/// The tonic service.
pub struct MetricsGrpc {
    pub source: Arc<MetricsSource>,
}

#[tonic::async_trait]
impl keda_proto::MetricsService for MetricsGrpc {
    async fn get_metrics(
        &self,
        request: tonic::Request<ScaledObjectRef>,
    ) -> Result<tonic::Response<ExternalMetricValueList>, tonic::Status> {
        let r = request.into_inner();
        let served = self
            .source
            .get_metrics(&r.namespace, &r.name, &r.metric_name)
            .await
            .map_err(|e| match e {
                MetricError::ScaledObjectNotFound(..) | MetricError::MetricNotFound { .. } => {
                    tonic::Status::not_found(e.to_string())
                }
                MetricError::NotReady(_) => tonic::Status::unavailable(e.to_string()),
                MetricError::Invalid(_) => tonic::Status::failed_precondition(e.to_string()),
                MetricError::Scaler(_) => tonic::Status::internal(e.to_string()),
            })?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let items = served
            .into_iter()
            .map(|s| ExternalMetricValue {
                metric_name: s.metric_name,
                metric_labels: Default::default(),
                timestamp: Some(keda_proto::Time {
                    seconds: now.as_secs() as i64,
                    nanos: 0,
                }),
                window: None,
                value: Some(Quantity {
                    string: keda_proto::milli_quantity_string(s.milli),
                }),
            })
            .collect();
        Ok(tonic::Response::new(ExternalMetricValueList {
            metadata: Some(ListMeta::default()),
            items,
        }))
    }
}

/// PEM material for the service's mutual TLS.
#[derive(Clone, Debug)]
pub struct TlsMaterial {
    pub ca_crt: Vec<u8>,
    pub tls_crt: Vec<u8>,
    pub tls_key: Vec<u8>,
}

impl TlsMaterial {
    /// `ca.crt`, `tls.crt` and `tls.key` from a directory (the mounted `kedaorg-certs` Secret).
    pub fn from_dir(dir: &std::path::Path) -> Result<TlsMaterial, crate::Error> {
        let read = |f: &str| {
            std::fs::read(dir.join(f)).map_err(|source| crate::Error::Serve {
                what: "gRPC metrics service (reading certificates)",
                addr: dir.join(f).display().to_string(),
                source,
            })
        };
        Ok(TlsMaterial {
            ca_crt: read("ca.crt")?,
            tls_crt: read("tls.crt")?,
            tls_key: read("tls.key")?,
        })
    }
}

impl From<&crate::certs::CertBundle> for TlsMaterial {
    fn from(b: &crate::certs::CertBundle) -> Self {
        TlsMaterial {
            ca_crt: b.ca_crt.clone().into_bytes(),
            tls_crt: b.tls_crt.clone().into_bytes(),
            tls_key: b.tls_key.clone().into_bytes(),
        }
    }
}

const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Serves the metrics service with mutual TLS: clients need a certificate signed by the same CA.
/// Each connection is handshaken with the certificates in force when it arrives (see [`ReloadingTls`]).
///
/// [`ReloadingTls`]: crate::grpc_tls::ReloadingTls
pub async fn serve(
    source: Arc<MetricsSource>,
    addr: std::net::SocketAddr,
    tls: Arc<crate::grpc_tls::ReloadingTls>,
) -> Result<(), crate::Error> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| crate::Error::Serve {
            what: "gRPC metrics service",
            addr: addr.to_string(),
            source,
        })?;
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(async move {
        loop {
            let (tcp, peer) = match listener.accept().await {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "gRPC accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            };
            let _ = tcp.set_nodelay(true);
            let acceptor = tls.acceptor();
            let tx = tx.clone();
            tokio::spawn(async move {
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(stream)) => {
                        let _ = tx.send(Ok::<_, std::io::Error>(stream)).await;
                    }
                    Ok(Err(e)) => tracing::debug!(%peer, error = %e, "gRPC TLS handshake failed"),
                    Err(_) => tracing::debug!(%peer, "gRPC TLS handshake timed out"),
                }
            });
        }
    });
    let incoming = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|conn| (conn, rx))
    });
    tonic::transport::Server::builder()
        .add_service(keda_proto::MetricsServiceServer::new(MetricsGrpc {
            source,
        }))
        .serve_with_incoming(incoming)
        .await
        .map_err(|e| crate::Error::Invalid(format!("gRPC metrics service on {addr}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::to_milli;

    #[test]
    fn values_become_milli_quantities_and_never_negative() {
        assert_eq!(to_milli(70.0), 70_000);
        // Truncated as upstream's int64(v * 1000).
        assert_eq!(to_milli(1.6666), 1666);
        assert_eq!(to_milli(-3.0), 0);
        assert_eq!(to_milli(f64::NAN), 0);
        assert_eq!(to_milli(f64::INFINITY), 0);
    }
}
