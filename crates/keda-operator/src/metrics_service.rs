//! The operator side of the metrics API: `api.MetricsService/GetMetrics` on :9666 (mutual TLS), served by
//! the leader. For each HPA request it answers from the scale loop's cache (`useCachedMetrics`) or samples
//! the scaler live, and applies fallback and `scalingModifiers` exactly as the scale loop sees them.

use std::collections::HashMap;
use std::sync::Arc;

use keda_api::ScaledObject;
use keda_api::consts::names::COMPOSITE_METRIC;
use keda_proto::{
    ExternalMetricValue, ExternalMetricValueList, ListMeta, Quantity, ScaledObjectRef,
};
use keda_scaling::fallback::{self, FallbackMetric, FallbackTarget};
use keda_scaling::hpa::MetricTargetType;
use kube::runtime::reflector::ObjectRef;

use crate::Context;
use crate::triggers::ParsedTrigger;

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
pub struct Served {
    pub metric_name: String,
    pub milli: i64,
}

struct Source<'a> {
    trigger: &'a ParsedTrigger,
    target: FallbackTarget,
}

fn to_milli(v: f64) -> i64 {
    // Negative, NaN and infinite values are served as 0 (upstream v2.20.2).
    if !v.is_finite() || v <= 0.0 {
        0
    } else {
        (v * 1000.0).round().min(i64::MAX as f64) as i64
    }
}

impl Context {
    /// The triggers of the object's current generation, parsed as the reconciler parsed them.
    async fn parsed(&self, so: &ScaledObject) -> Result<Vec<ParsedTrigger>, MetricError> {
        let t = &so.spec.scale_target_ref;
        let ns = kube::ResourceExt::namespace(so).unwrap_or_default();
        let pod_spec = match self
            .targets
            .resolve(&self.client, &ns, t.api_version(), t.kind(), &t.name)
            .await
        {
            Ok((target, _)) => target.pod_spec,
            Err(_) => None,
        };
        let resolved = self
            .resolve_triggers(so, pod_spec.as_deref())
            .await
            .map_err(MetricError::Invalid)?;
        crate::triggers::parse_all(so, &resolved).map_err(MetricError::Invalid)
    }

    /// The value of one metric of one trigger: cached or live.
    async fn raw_value(&self, ns: &str, name: &str, t: &ParsedTrigger) -> Result<f64, String> {
        if t.use_cached_metrics
            && let Some(rec) = self.loops.record(ns, name, &t.metric_name)
        {
            return match (rec.value, rec.error) {
                (Some(v), _) => Ok(v),
                (None, Some(e)) => Err(e),
                (None, None) => Err("no value yet".to_owned()),
            };
        }
        let scaler = match self.loops.scaler(ns, name, &t.metric_name) {
            Some(s) => s,
            None => t
                .config
                .build(&self.build)
                .await
                .map_err(|e| e.to_string())?,
        };
        match tokio::time::timeout(self.config.scaler_timeout, scaler.sample()).await {
            Ok(Ok(s)) => Ok(s.value),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no answer within {:?}", self.config.scaler_timeout)),
        }
    }

    fn in_fallback(so: &ScaledObject, metric: &str) -> bool {
        let (Some(fb), Some(health)) = (
            so.spec.fallback.as_ref(),
            so.status.as_ref().and_then(|s| s.health.as_ref()),
        ) else {
            return false;
        };
        health
            .get(metric)
            .and_then(|h| h.number_of_failures)
            .is_some_and(|n| fallback::should_fallback(n, fb.failure_threshold))
    }

    /// Answers one `GetMetrics` request.
    pub async fn get_metrics(
        &self,
        ns: &str,
        name: &str,
        metric: &str,
    ) -> Result<Vec<Served>, MetricError> {
        let so = self
            .scaled_objects
            .get(&ObjectRef::new(name).within(ns))
            .ok_or_else(|| MetricError::ScaledObjectNotFound(ns.to_owned(), name.to_owned()))?;
        let triggers = self.parsed(&so).await?;
        let current = so
            .status
            .as_ref()
            .and_then(|s| s.original_replica_count)
            .unwrap_or(1);
        let current = match self
            .targets
            .resolve(
                &self.client,
                ns,
                so.spec.scale_target_ref.api_version(),
                so.spec.scale_target_ref.kind(),
                &so.spec.scale_target_ref.name,
            )
            .await
        {
            Ok((_, replicas)) => replicas,
            Err(_) => current,
        };
        let external: Vec<Source<'_>> = triggers
            .iter()
            .filter_map(|t| match t.trigger_metric().kind {
                keda_scaling::hpa::MetricKind::External {
                    target_type,
                    target_value,
                    ..
                } => Some(Source {
                    trigger: t,
                    target: FallbackTarget {
                        target_type,
                        value: target_value,
                    },
                }),
                _ => None,
            })
            .collect();

        if so.spec.scaling_modifiers().is_some() && metric.eq_ignore_ascii_case(COMPOSITE_METRIC) {
            let formula = keda_scaling::formula::compile_scaling_modifiers(&so)
                .map_err(|e| MetricError::Invalid(e.to_string()))?
                .ok_or_else(|| MetricError::Invalid("scalingModifiers without a formula".into()))?;
            let mut vars = HashMap::new();
            for s in &external {
                let Some(var) = s.trigger.name.clone() else {
                    continue;
                };
                let value = match self.raw_value(ns, name, s.trigger).await {
                    Ok(v) => Some(v),
                    Err(e) if Self::in_fallback(&so, &s.trigger.metric_name) => {
                        tracing::debug!(error = %e, "metric in fallback inside the formula");
                        match so.spec.fallback.as_ref().map(|fb| {
                            fallback::fallback_metric(
                                &s.trigger.metric_name,
                                fb,
                                current,
                                s.target,
                                Some(current.max(1)),
                            )
                        }) {
                            Some(Ok(FallbackMetric::Milli(m))) => Some(m as f64 / 1000.0),
                            _ => None,
                        }
                    }
                    Err(e) => return Err(MetricError::Scaler(e)),
                };
                vars.insert(var, value);
            }
            let value = match formula
                .eval(&vars)
                .map_err(|e| MetricError::Invalid(e.to_string()))?
            {
                Some(v) => v,
                None => fallback::nil_formula_value(&so)
                    .map_err(|e| MetricError::Invalid(e.to_string()))?,
            };
            return Ok(vec![Served {
                metric_name: COMPOSITE_METRIC.to_owned(),
                milli: to_milli(value),
            }]);
        }

        let source = external
            .iter()
            .find(|s| s.trigger.metric_name.eq_ignore_ascii_case(metric))
            .ok_or_else(|| MetricError::MetricNotFound {
                namespace: ns.to_owned(),
                name: name.to_owned(),
                metric: metric.to_owned(),
            })?;
        match self.raw_value(ns, name, source.trigger).await {
            Ok(v) => Ok(vec![Served {
                metric_name: source.trigger.metric_name.clone(),
                milli: to_milli(v),
            }]),
            Err(e) if Self::in_fallback(&so, &source.trigger.metric_name) => {
                let fb = so
                    .spec
                    .fallback
                    .as_ref()
                    .ok_or_else(|| MetricError::Scaler(e.clone()))?;
                let ready = if source.target.target_type == MetricTargetType::Value {
                    Some(current)
                } else {
                    None
                };
                match fallback::fallback_metric(
                    &source.trigger.metric_name,
                    fb,
                    current,
                    source.target,
                    ready,
                ) {
                    Ok(FallbackMetric::Milli(m)) => Ok(vec![Served {
                        metric_name: source.trigger.metric_name.clone(),
                        milli: m,
                    }]),
                    Ok(FallbackMetric::NilInFormula) => Err(MetricError::Scaler(e)),
                    Err(fe) => Err(MetricError::Scaler(format!("{e}; fallback: {fe}"))),
                }
            }
            Err(e) => Err(MetricError::Scaler(e)),
        }
    }
}

/// The tonic service.
pub struct MetricsGrpc {
    pub ctx: Arc<Context>,
}

#[tonic::async_trait]
impl keda_proto::MetricsService for MetricsGrpc {
    async fn get_metrics(
        &self,
        request: tonic::Request<ScaledObjectRef>,
    ) -> Result<tonic::Response<ExternalMetricValueList>, tonic::Status> {
        let r = request.into_inner();
        let served = self
            .ctx
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
    ctx: Arc<Context>,
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
        .add_service(keda_proto::MetricsServiceServer::new(MetricsGrpc { ctx }))
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
        assert_eq!(to_milli(1.6666), 1667);
        assert_eq!(to_milli(-3.0), 0);
        assert_eq!(to_milli(f64::NAN), 0);
        assert_eq!(to_milli(f64::INFINITY), 0);
    }
}
