//! KEDA's scalers. Each trigger type goes through three steps, like Vector's components:
//!
//! 1. **parse** (pure): trigger metadata, resolved env and auth params → a typed config, or an error naming
//!    the field. The operator, the admission webhook and `keda lint` all call exactly this.
//! 2. **build** (IO): clients and connections, shared per backend and credentials.
//! 3. **sample**: one poll, returning the metric value and whether the trigger is active.
//!
//! Scalers return numbers; targets, activation of the workload, fallback and formulas live in
//! `keda-core`. Adding a scaler: see `docs/scalers.md`.

// Connection reuse of the database scalers, keyed by the settings that matter.
#[cfg(any(
    feature = "redis",
    feature = "postgresql",
    feature = "mysql",
    feature = "rabbitmq",
    feature = "kafka"
))]
mod client_cache;
pub mod config_data;
pub mod error;
pub mod files;
pub mod input;
pub mod pods;
pub mod quantity;
mod registry;
pub mod service_endpoints;
pub mod timeouts;
pub mod tls;

#[cfg(any(feature = "external", feature = "etcd"))]
mod grpc;
#[cfg(feature = "http-client")]
pub mod http;

// The scalers, one module each, grouped by family (`docs/scalers.md`); each behind its cargo feature,
// registered in `registry.rs`.
pub mod databases;
pub mod generic;
pub mod kubernetes;
pub mod messaging;
pub mod observability;

pub use error::{ScalerError, TriggerRef};
pub use input::{Source, TriggerInput};
// The metric vocabulary is the HPA's, defined once in the pure crate below the scalers: a scaler's
// metric spec is what the operator puts into the HPA, without translation.
pub use keda_core::activation::is_active;
pub use keda_core::hpa::{MetricTargetType, ResourceName, ResourceTarget, external_metric_name};
pub use registry::{
    ParseFn, Registration, check_files, parse_trigger, parse_trigger_confined, registered_types,
    resolve_files, scaler_label, upstream_scaler_name,
};
pub use timeouts::{ScalerTimeouts, TimeoutDefaults, build_with_timeout, sample_with_timeout};

use std::sync::Arc;

/// What the HPA is given for one trigger.
#[derive(Clone, Debug, PartialEq)]
pub enum MetricSpec {
    /// An external metric served by the metrics API server.
    External {
        /// `s<index>-<scaler-specific name>`.
        metric_name: String,
        target_type: MetricTargetType,
        /// Target per pod (AverageValue) or in total (Value).
        target: f64,
    },
    /// cpu or memory, evaluated by the HPA from the resource metrics API.
    Resource {
        resource: ResourceName,
        /// Set for a ContainerResource metric.
        container: Option<String>,
        target: ResourceTarget,
    },
}

impl MetricSpec {
    /// The metric name as the HPA and the metrics API server see it.
    pub fn metric_name(&self) -> String {
        match self {
            MetricSpec::External { metric_name, .. } => metric_name.clone(),
            MetricSpec::Resource { resource, .. } => resource.as_str().to_owned(),
        }
    }

    /// The metric as the HPA builder (`keda_core::hpa::build_hpa`) takes it, for trigger `index`. The
    /// operator and `keda render` both convert through here.
    pub fn trigger_metric(&self, index: usize) -> keda_core::hpa::TriggerMetric {
        use keda_core::hpa::TriggerMetric;
        match self {
            MetricSpec::External {
                metric_name,
                target_type,
                target,
            } => TriggerMetric::external(index, metric_name.clone(), *target_type, *target),
            // One vocabulary: the scaler's resource metric is the HPA's.
            MetricSpec::Resource {
                resource,
                container,
                target,
            } => TriggerMetric::resource(index, *resource, container.clone(), target.clone()),
        }
    }
}

/// The result of one poll.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    pub value: f64,
    /// The trigger wants the workload running (value above the activation threshold, strictly).
    pub active: bool,
}

/// One poll with what upstream counts about it besides the value (see [`Scaler::sample_report`]).
#[derive(Debug)]
pub struct SampleReport {
    pub result: Result<Sample, ScalerError>,
    /// Set when the backend answered with no data at all; the poll may still have succeeded (as 0).
    pub empty_upstream_response: Option<EmptyUpstreamResponse>,
}

/// Upstream's `keda_scaler_empty_upstream_responses_total`: the backend answered, but with nothing to read
/// (`prometheus`: an empty result list, or a series with an empty value). Counted whether
/// `ignoreNullValues` then made the poll 0 or an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EmptyUpstreamResponse {
    /// The trigger's `ignoreNullValues`, the counter's `ignoreNullValues` label (`"true"`/`"false"`).
    pub ignore_null_values: bool,
}

/// A parsed trigger: knows its metric without any IO, and can build the live scaler.
#[async_trait::async_trait]
pub trait TriggerConfig: Send + Sync + std::fmt::Debug {
    fn metric_spec(&self) -> MetricSpec;
    /// Which trigger this is (index in its object, type), as errors name it.
    fn trigger(&self) -> TriggerRef;
    /// The threshold a sample's value must exceed (strictly, [`is_active`], which the scaler's own
    /// sample uses too) for the trigger to be active, for scalers whose activity follows from the value
    /// alone; `None` for the others (cron's schedule, servers that answer `IsActive` themselves,
    /// `rabbitmq`'s rate modes, Kafka settings under which activation counts lag the metric leaves out).
    /// `keda simulate` replays a metric series through it.
    fn activation_threshold(&self) -> Option<f64> {
        None
    }
    /// How long to wait for [`TriggerConfig::build`] and for one [`Scaler::sample`] of this trigger: its
    /// own `timeout` where upstream has one, `defaults.http` for HTTP triggers without one, the driver
    /// bounds for Redis and SQL (table in [`timeouts`]). The scaler's own clients use the same bounds.
    /// [`build_with_timeout`] and [`sample_with_timeout`] apply them.
    fn timeouts(&self, defaults: &TimeoutDefaults) -> ScalerTimeouts;
    /// Files of the operator's filesystem this trigger would open (TLS files, Unix sockets), as written,
    /// each with the field that names it. Every one must lie under `--filepath-auth-root-path`
    /// ([`files::FileRoot`]); [`check_files`] checks them after parse, and the build opens them only
    /// through [`BuildContext::files`]. Default: none.
    fn files(&self) -> Vec<files::FileUse> {
        Vec::new()
    }
    /// Tells the config which object (namespace, name) its trigger belongs to. Only scalers whose backend
    /// is told who asks use it (`external` sends upstream's `ScaledObjectRef`); default: ignored.
    fn set_object(&self, _namespace: &str, _name: &str) {}
    /// For triggers whose HPA metric only the backend knows (`external`: the server's
    /// `GetMetricSpec`): asks it, after which [`TriggerConfig::metric_spec`] gives the backend's name and
    /// target. The operator calls this before it builds the HPA; default: nothing to ask.
    async fn resolve_metric_spec(&self, _ctx: &BuildContext) -> Result<(), ScalerError> {
        Ok(())
    }
    /// Whether the built scaler pushes activity ([`Scaler::activity`]): the operator then builds it as
    /// soon as the object's loop starts, to listen from the start. Default: no.
    fn pushes(&self) -> bool {
        false
    }
    /// Builds the scaler; connections are opened here, not in parse.
    async fn build(&self, ctx: &BuildContext) -> Result<Arc<dyn Scaler>, ScalerError>;
}

/// A built scaler, polled by the scale loop (and by the metrics service when metrics are not cached).
#[async_trait::async_trait]
pub trait Scaler: Send + Sync {
    async fn sample(&self) -> Result<Sample, ScalerError>;

    /// [`Scaler::sample`] with what upstream counts about the poll. Scalers for which upstream records
    /// empty upstream responses (`prometheus`) override it; the default reports nothing more.
    async fn sample_report(&self) -> SampleReport {
        SampleReport {
            result: self.sample().await,
            empty_upstream_response: None,
        }
    }

    /// Activity the backend pushes (`external-push`: the server's `StreamIsActive`), for the operator to
    /// act on at once instead of at the next poll. The scaler keeps the stream open (reconnecting with
    /// backoff) until the receiver is dropped. Default: none, the scaler is only polled.
    fn activity(&self) -> Option<tokio::sync::mpsc::Receiver<bool>> {
        None
    }
}

/// Resources shared by every scaler the operator builds: HTTP clients are reused per TLS/timeout settings.
#[derive(Default)]
pub struct BuildContext {
    /// `KEDA_HTTP_DEFAULT_TIMEOUT` and other operator-wide bounds; HTTP clients of triggers without a
    /// `timeout` use `timeouts.http`.
    pub timeouts: TimeoutDefaults,
    /// `--filepath-auth-root-path`: the only directory a build may open files (and Unix sockets) under.
    /// Unset (the default) refuses every file.
    pub files: files::FileRoot,
    /// Whom TLS connections to Redis, PostgreSQL and MySQL trust and which TLS they speak (`--ca-dir`,
    /// `KEDA_HTTP_MIN_TLS_VERSION`, `KEDA_HTTP_TLS_CIPHER_LIST`). The HTTP clients hold the same
    /// ([`http::HttpClients::with_tls`]).
    pub tls: Arc<tls::ScalerTls>,
    #[cfg(feature = "http-client")]
    pub http: http::HttpClients,
    /// Redis connections, shared per connection settings.
    #[cfg(feature = "redis")]
    pub redis: databases::redis::RedisClients,
    /// PostgreSQL connections, shared per connection string.
    #[cfg(feature = "postgresql")]
    pub postgresql: databases::postgresql::PostgresClients,
    /// MySQL connection pools, shared per connection settings.
    #[cfg(feature = "mysql")]
    pub mysql: databases::mysql::MySqlPools,
    /// gRPC channels to external scalers, shared per address and TLS settings.
    #[cfg(feature = "external")]
    pub external: generic::external::ExternalChannels,
    /// RabbitMQ AMQP connections, shared per broker, credentials, vhost and TLS settings.
    #[cfg(feature = "rabbitmq")]
    pub rabbitmq: messaging::rabbitmq::AmqpConnections,
    /// Kafka clients, shared per bootstrap servers, credentials and TLS settings.
    #[cfg(feature = "kafka")]
    pub kafka: messaging::kafka::KafkaClients,
    /// The EndpointSlices of a Service (`metrics-api` with `aggregateFromKubeServiceEndpoints`). The
    /// operator sets one backed by the Kubernetes API; `None` where there is no API access (sampling such
    /// a trigger then fails with an error naming the option).
    pub service_endpoints: Option<Arc<dyn service_endpoints::ServiceEndpoints>>,
    /// The pods of a namespace by label selector (`kubernetes-workload`). The operator sets one backed by
    /// the Kubernetes API; `None` where there is no API access (building such a trigger then fails).
    pub pods: Option<Arc<dyn pods::Pods>>,
    /// Keys of ConfigMaps and Secrets (`kubernetes-resource`). The operator sets one backed by the
    /// Kubernetes API; `None` where there is no API access (building such a trigger then fails).
    pub config_data: Option<Arc<dyn config_data::ConfigData>>,
}
