//! `external` and `external-push`: a server implementing upstream's `externalscaler.proto`
//! (`proto/externalscaler.proto`) decides everything. `GetMetricSpec` names the HPA metric and its
//! target, `GetMetrics` gives the value, `IsActive` decides activation (no threshold: the server says
//! whether the workload should run). `external-push` additionally listens on `StreamIsActive`, so the
//! operator reacts to an activation the moment the server pushes it instead of at the next poll.
//!
//! The server is told which object asks (`ScaledObjectRef` name and namespace) and gets the trigger's
//! metadata as written, with `…FromEnv` values resolved, as upstream sends it.

mod channel;

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use keda_proto::externalscaler::external_scaler_client::ExternalScalerClient;
use keda_proto::externalscaler::{GetMetricsRequest, ScaledObjectRef};
use tonic::transport::Channel;

pub use channel::{ChannelKey, ExternalChannels, split_address};

use crate::input::{AUTH, METADATA};
use crate::{
    BuildContext, MetricSpec, MetricTargetType, Sample, Scaler, ScalerError, ScalerTimeouts,
    TimeoutDefaults, TriggerConfig, TriggerInput, TriggerRef,
};

/// The metric name a trigger reports before its server was asked (`keda lint`, the webhook); the
/// operator replaces it with the server's `GetMetricSpec` answer before it builds the HPA.
pub const UNRESOLVED_METRIC: &str = "external";

#[derive(Debug)]
pub struct ExternalConfig {
    pub index: usize,
    pub trigger_type: String,
    /// `external-push`: listen on `StreamIsActive` too.
    pub push: bool,
    pub metric_type: MetricTargetType,
    pub channel: ChannelKey,
    /// `ScaledObjectRef.scalerMetadata`: the trigger metadata with `…FromEnv` values resolved.
    pub scaler_metadata: HashMap<String, String>,
    /// The object the trigger belongs to (`ScaledObjectRef.name`/`namespace`), set by the operator.
    object: OnceLock<(String, String)>,
    /// The server's first metric spec, once asked.
    resolved: OnceLock<ResolvedMetric>,
}

/// The server's `GetMetricSpec` answer, as the HPA gets it.
#[derive(Clone, Debug, PartialEq)]
pub struct ResolvedMetric {
    /// As the server named it (what `GetMetrics` is asked for).
    pub server_name: String,
    pub target: f64,
}

pub fn parse(input: &TriggerInput<'_>) -> Result<Box<dyn TriggerConfig>, ScalerError> {
    Ok(Box::new(parse_config(input)?))
}

pub fn parse_config(input: &TriggerInput<'_>) -> Result<ExternalConfig, ScalerError> {
    let metric_type = input.external_metric_type()?;
    let address: String = input.field("scalerAddress").order(METADATA).required()?;
    split_address(&address).map_err(|e| input.error("scalerAddress", e))?;
    let enable_tls: bool = input
        .field("enableTLS")
        .order(METADATA)
        .default("false")
        .required()?;
    let unsafe_ssl: bool = input
        .field("unsafeSsl")
        .order(METADATA)
        .default("false")
        .required()?;
    let ca_cert: Option<String> = input.field("caCert").order(AUTH).optional()?;
    let tls_client_cert: Option<String> = input.field("tlsClientCert").order(AUTH).optional()?;
    let tls_client_key: Option<String> = input.field("tlsClientKey").order(AUTH).optional()?;
    // Everything is passed on, the keys above included; a `…FromEnv` key carries the resolved value and
    // is left out when the variable is unset or empty (upstream's rule).
    let mut scaler_metadata = HashMap::new();
    for (key, value) in input.metadata {
        if key.ends_with("FromEnv") {
            if let Some(v) = input.resolved_env.get(value).filter(|v| !v.is_empty()) {
                scaler_metadata.insert(key.clone(), v.clone());
            }
        } else {
            scaler_metadata.insert(key.clone(), value.clone());
        }
    }
    Ok(ExternalConfig {
        index: input.index,
        trigger_type: input.trigger_type.to_owned(),
        push: input.trigger_type == "external-push",
        metric_type,
        channel: ChannelKey {
            address,
            enable_tls,
            unsafe_ssl,
            ca_cert,
            tls_client_cert,
            tls_client_key,
        },
        scaler_metadata,
        object: OnceLock::new(),
        resolved: OnceLock::new(),
    })
}

impl ExternalConfig {
    /// The `ScaledObjectRef` every call carries.
    pub fn object_ref(&self) -> ScaledObjectRef {
        let (namespace, name) = self.object.get().cloned().unwrap_or_default();
        ScaledObjectRef {
            name,
            namespace,
            scaler_metadata: self.scaler_metadata.clone(),
        }
    }

    /// The server's metric, if asked already.
    pub fn resolved_metric(&self) -> Option<&ResolvedMetric> {
        self.resolved.get()
    }

    fn backend_error(&self, action: &'static str, status: tonic::Status) -> ScalerError {
        ScalerError::Backend {
            trigger: self.trigger(),
            action,
            message: format!(
                "{} at {}: {}",
                status.code(),
                self.channel.address,
                status.message()
            ),
        }
    }

    fn client(&self, ctx: &BuildContext) -> Result<(Arc<Channel>, Client), ScalerError> {
        let channel = ctx
            .external
            .get(&self.channel, &ctx.tls)
            .map_err(|message| ScalerError::Backend {
                trigger: self.trigger(),
                action: "connecting to the external scaler",
                message,
            })?;
        let client = ExternalScalerClient::new((*channel).clone());
        Ok((channel, client))
    }

    /// Asks the server's `GetMetricSpec` once; upstream uses every spec it returns, keda-rs the first
    /// (one metric per trigger), which is what external scalers return in practice.
    async fn resolve(
        &self,
        client: &mut Client,
        timeout: Duration,
    ) -> Result<ResolvedMetric, ScalerError> {
        if let Some(r) = self.resolved.get() {
            return Ok(r.clone());
        }
        let mut request = tonic::Request::new(self.object_ref());
        request.set_timeout(timeout);
        let response = client
            .get_metric_spec(request)
            .await
            .map_err(|s| self.backend_error("calling GetMetricSpec", s))?
            .into_inner();
        let spec =
            response
                .metric_specs
                .into_iter()
                .next()
                .ok_or_else(|| ScalerError::Backend {
                    trigger: self.trigger(),
                    action: "calling GetMetricSpec",
                    message: format!("{} returned no metric spec", self.channel.address),
                })?;
        let resolved = ResolvedMetric {
            server_name: spec.metric_name,
            // targetSize is deprecated upstream; it counts only when targetSizeFloat is not set.
            target: if spec.target_size_float > 0.0 {
                spec.target_size_float
            } else {
                spec.target_size as f64
            },
        };
        Ok(self.resolved.get_or_init(|| resolved).clone())
    }
}

type Client = ExternalScalerClient<Channel>;

#[async_trait::async_trait]
impl TriggerConfig for ExternalConfig {
    fn metric_spec(&self) -> MetricSpec {
        let (name, target) = match self.resolved.get() {
            Some(r) => (r.server_name.as_str(), r.target),
            None => (UNRESOLVED_METRIC, 0.0),
        };
        MetricSpec::External {
            metric_name: crate::external_metric_name(self.index, name),
            target_type: self.metric_type,
            target,
        }
    }

    fn trigger(&self) -> TriggerRef {
        TriggerRef {
            index: self.index,
            trigger_type: self.trigger_type.clone(),
        }
    }

    /// One call per step, bounded like an HTTP request (`KEDA_HTTP_DEFAULT_TIMEOUT`): build may ask
    /// `GetMetricSpec`, a sample asks `GetMetrics` and `IsActive`.
    fn timeouts(&self, defaults: &TimeoutDefaults) -> ScalerTimeouts {
        ScalerTimeouts {
            build: Some(defaults.http),
            sample: Some(defaults.http * 2),
        }
    }

    fn pushes(&self) -> bool {
        self.push
    }

    fn set_object(&self, namespace: &str, name: &str) {
        let _ = self.object.set((namespace.to_owned(), name.to_owned()));
    }

    async fn resolve_metric_spec(&self, ctx: &BuildContext) -> Result<(), ScalerError> {
        let (_channel, mut client) = self.client(ctx)?;
        self.resolve(&mut client, ctx.timeouts.http)
            .await
            .map(|_| ())
    }

    async fn build(&self, ctx: &BuildContext) -> Result<Arc<dyn Scaler>, ScalerError> {
        let (channel, mut client) = self.client(ctx)?;
        let metric = self.resolve(&mut client, ctx.timeouts.http).await?;
        Ok(Arc::new(ExternalScaler {
            trigger: self.trigger(),
            address: self.channel.address.clone(),
            push: self.push,
            object: self.object_ref(),
            metric_name: metric.server_name,
            rpc_timeout: ctx.timeouts.http,
            client,
            _channel: channel,
        }))
    }
}

/// A built `external` / `external-push` trigger.
pub struct ExternalScaler {
    trigger: TriggerRef,
    address: String,
    push: bool,
    object: ScaledObjectRef,
    /// The server's name of the metric (without the `s<index>-` prefix, which the server never sees).
    metric_name: String,
    rpc_timeout: Duration,
    client: Client,
    /// Keeps the shared channel in the cache while this scaler lives.
    _channel: Arc<Channel>,
}

impl ExternalScaler {
    fn backend_error(&self, action: &'static str, status: tonic::Status) -> ScalerError {
        ScalerError::Backend {
            trigger: self.trigger.clone(),
            action,
            message: format!(
                "{} at {}: {}",
                status.code(),
                self.address,
                status.message()
            ),
        }
    }
}

#[async_trait::async_trait]
impl Scaler for ExternalScaler {
    /// `GetMetrics` then `IsActive`, as upstream's `GetMetricsAndActivity`. The values the server
    /// returns are summed, as the HPA sums the items of an external metric.
    async fn sample(&self) -> Result<Sample, ScalerError> {
        let mut client = self.client.clone();
        let mut request = tonic::Request::new(GetMetricsRequest {
            scaled_object_ref: Some(self.object.clone()),
            metric_name: self.metric_name.clone(),
        });
        request.set_timeout(self.rpc_timeout);
        let metrics = client
            .get_metrics(request)
            .await
            .map_err(|s| self.backend_error("calling GetMetrics", s))?
            .into_inner();
        // metricValue is deprecated upstream; it counts only when metricValueFloat is not set.
        let value = metrics
            .metric_values
            .iter()
            .map(|v| {
                if v.metric_value_float > 0.0 {
                    v.metric_value_float
                } else {
                    v.metric_value as f64
                }
            })
            .sum();
        let mut request = tonic::Request::new(self.object.clone());
        request.set_timeout(self.rpc_timeout);
        let active = client
            .is_active(request)
            .await
            .map_err(|s| self.backend_error("calling IsActive", s))?
            .into_inner()
            .result;
        Ok(Sample { value, active })
    }

    fn activity(&self) -> Option<tokio::sync::mpsc::Receiver<bool>> {
        if !self.push {
            return None;
        }
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        tokio::spawn(listen(self.client.clone(), self.object.clone(), tx));
        Some(rx)
    }
}

/// First wait after the stream ended or failed; doubled after each wait up to [`MAX_BACKOFF`], and back
/// to this after a stream the server closed cleanly (upstream's numbers).
pub const FIRST_BACKOFF: Duration = Duration::from_secs(2);
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// Follows `StreamIsActive` until the receiver is dropped, opening it again after each end or error.
async fn listen(client: Client, object: ScaledObjectRef, tx: tokio::sync::mpsc::Sender<bool>) {
    let mut backoff = FIRST_BACKOFF;
    loop {
        let ended_cleanly = tokio::select! {
            _ = tx.closed() => return,
            clean = follow(client.clone(), object.clone(), &tx) => clean,
        };
        if ended_cleanly {
            backoff = FIRST_BACKOFF;
        }
        tokio::select! {
            _ = tx.closed() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// One `StreamIsActive` call, forwarding each message; returns whether the server ended it cleanly.
async fn follow(
    mut client: Client,
    object: ScaledObjectRef,
    tx: &tokio::sync::mpsc::Sender<bool>,
) -> bool {
    let mut stream = match client.stream_is_active(object).await {
        Ok(s) => s.into_inner(),
        Err(_) => return false,
    };
    loop {
        match stream.message().await {
            Ok(Some(m)) => {
                if tx.send(m.result).await.is_err() {
                    return true;
                }
            }
            Ok(None) => return true,
            Err(_) => return false,
        }
    }
}
