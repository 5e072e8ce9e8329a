//! The typed registry: one line per trigger type, each behind its cargo feature.

use crate::TriggerConfig;
use crate::error::ScalerError;
use crate::files::{FileRefused, FileRoot};
use crate::input::TriggerInput;

/// Parses one trigger of a given type.
pub type ParseFn = fn(&TriggerInput<'_>) -> Result<Box<dyn TriggerConfig>, ScalerError>;

/// A trigger type and its parse step.
pub struct Registration {
    pub trigger_type: &'static str,
    pub parse: ParseFn,
    /// The name of upstream's Go scaler struct for this type (`fmt.Sprintf("%T")` without `*scalers.`),
    /// which upstream puts in the `scaler` label of its `keda_scaler_*` metrics when the trigger has no
    /// `name`. Several types share one struct (`redis-cluster` is a `redisScaler`).
    pub upstream_scaler_name: &'static str,
}

static REGISTRY: &[Registration] = &[
    #[cfg(feature = "cpu-memory")]
    Registration {
        trigger_type: "cpu",
        parse: crate::kubernetes::cpu_memory::parse,
        upstream_scaler_name: "cpuMemoryScaler",
    },
    #[cfg(feature = "cpu-memory")]
    Registration {
        trigger_type: "memory",
        parse: crate::kubernetes::cpu_memory::parse,
        upstream_scaler_name: "cpuMemoryScaler",
    },
    #[cfg(feature = "kubernetes-workload")]
    Registration {
        trigger_type: "kubernetes-workload",
        parse: crate::kubernetes::workload::parse,
        upstream_scaler_name: "kubernetesWorkloadScaler",
    },
    #[cfg(feature = "kubernetes-resource")]
    Registration {
        trigger_type: "kubernetes-resource",
        parse: crate::kubernetes::resource::parse,
        upstream_scaler_name: "kubernetesResourceScaler",
    },
    #[cfg(feature = "cron")]
    Registration {
        trigger_type: "cron",
        parse: crate::generic::cron::parse,
        upstream_scaler_name: "cronScaler",
    },
    #[cfg(feature = "external")]
    Registration {
        trigger_type: "external",
        parse: crate::generic::external::parse,
        upstream_scaler_name: "externalScaler",
    },
    #[cfg(feature = "external")]
    Registration {
        trigger_type: "external-push",
        parse: crate::generic::external::parse,
        upstream_scaler_name: "externalPushScaler",
    },
    #[cfg(feature = "metrics-api")]
    Registration {
        trigger_type: "metrics-api",
        parse: crate::generic::metrics_api::parse,
        upstream_scaler_name: "metricsAPIScaler",
    },
    #[cfg(feature = "prometheus")]
    Registration {
        trigger_type: "prometheus",
        parse: crate::observability::prometheus::parse,
        upstream_scaler_name: "prometheusScaler",
    },
    #[cfg(feature = "new-relic")]
    Registration {
        trigger_type: "new-relic",
        parse: crate::observability::new_relic::parse,
        upstream_scaler_name: "newrelicScaler",
    },
    #[cfg(feature = "datadog")]
    Registration {
        trigger_type: "datadog",
        parse: crate::observability::datadog::parse,
        upstream_scaler_name: "datadogScaler",
    },
    #[cfg(feature = "redis")]
    Registration {
        trigger_type: "redis",
        parse: crate::databases::redis::parse,
        upstream_scaler_name: "redisScaler",
    },
    #[cfg(feature = "redis")]
    Registration {
        trigger_type: "redis-cluster",
        parse: crate::databases::redis::parse,
        upstream_scaler_name: "redisScaler",
    },
    #[cfg(feature = "redis")]
    Registration {
        trigger_type: "redis-sentinel",
        parse: crate::databases::redis::parse,
        upstream_scaler_name: "redisScaler",
    },
    #[cfg(feature = "redis-streams")]
    Registration {
        trigger_type: "redis-streams",
        parse: crate::databases::redis_streams::parse,
        upstream_scaler_name: "redisStreamsScaler",
    },
    #[cfg(feature = "redis-streams")]
    Registration {
        trigger_type: "redis-cluster-streams",
        parse: crate::databases::redis_streams::parse,
        upstream_scaler_name: "redisStreamsScaler",
    },
    #[cfg(feature = "redis-streams")]
    Registration {
        trigger_type: "redis-sentinel-streams",
        parse: crate::databases::redis_streams::parse,
        upstream_scaler_name: "redisStreamsScaler",
    },
    #[cfg(feature = "postgresql")]
    Registration {
        trigger_type: "postgresql",
        parse: crate::databases::postgresql::parse,
        upstream_scaler_name: "postgreSQLScaler",
    },
    #[cfg(feature = "mysql")]
    Registration {
        trigger_type: "mysql",
        parse: crate::databases::mysql::parse,
        upstream_scaler_name: "mySQLScaler",
    },
    #[cfg(feature = "kafka")]
    Registration {
        trigger_type: "kafka",
        parse: crate::messaging::kafka::parse,
        upstream_scaler_name: "kafkaScaler",
    },
    #[cfg(feature = "apache-kafka")]
    Registration {
        trigger_type: "apache-kafka",
        parse: crate::messaging::apache_kafka::parse,
        upstream_scaler_name: "apacheKafkaScaler",
    },
    #[cfg(feature = "rabbitmq")]
    Registration {
        trigger_type: "rabbitmq",
        parse: crate::messaging::rabbitmq::parse,
        upstream_scaler_name: "rabbitMQScaler",
    },
    #[cfg(feature = "beanstalkd")]
    Registration {
        trigger_type: "beanstalkd",
        parse: crate::messaging::beanstalkd::parse,
        upstream_scaler_name: "BeanstalkdScaler",
    },
    #[cfg(feature = "activemq")]
    Registration {
        trigger_type: "activemq",
        parse: crate::messaging::activemq::parse,
        upstream_scaler_name: "activeMQScaler",
    },
    #[cfg(feature = "artemis-queue")]
    Registration {
        trigger_type: "artemis-queue",
        parse: crate::messaging::artemis_queue::parse,
        upstream_scaler_name: "artemisScaler",
    },
    #[cfg(feature = "nats-jetstream")]
    Registration {
        trigger_type: "nats-jetstream",
        parse: crate::messaging::nats_jetstream::parse,
        upstream_scaler_name: "natsJetStreamScaler",
    },
    #[cfg(feature = "nsq")]
    Registration {
        trigger_type: "nsq",
        parse: crate::messaging::nsq::parse,
        upstream_scaler_name: "nsqScaler",
    },
    #[cfg(feature = "etcd")]
    Registration {
        trigger_type: "etcd",
        parse: crate::databases::etcd::parse,
        upstream_scaler_name: "etcdScaler",
    },
];

/// Parses a trigger with its type's parse step; an unknown type is a permanent error.
pub fn parse_trigger(input: &TriggerInput<'_>) -> Result<Box<dyn TriggerConfig>, ScalerError> {
    match REGISTRY
        .iter()
        .find(|r| r.trigger_type == input.trigger_type)
    {
        Some(r) => (r.parse)(input),
        None => Err(ScalerError::UnknownType {
            trigger: input.trigger(),
        }),
    }
}

/// Trigger types this build supports.
pub fn registered_types() -> impl Iterator<Item = &'static str> {
    REGISTRY.iter().map(|r| r.trigger_type)
}

/// Upstream's Go scaler struct name for a trigger type (`prometheusScaler`, `redisScaler`, …); `None` for
/// a type this build does not register.
pub fn upstream_scaler_name(trigger_type: &str) -> Option<&'static str> {
    REGISTRY
        .iter()
        .find(|r| r.trigger_type == trigger_type)
        .map(|r| r.upstream_scaler_name)
}

/// The `scaler` label of upstream's `keda_scaler_metrics_value`, `keda_scaler_metrics_latency_seconds`,
/// `keda_scaler_active` and `keda_scaler_detail_errors_total` (pkg/scaling/scale_handler.go): the
/// trigger's `name` when set and non-empty, else the Go struct name of its scaler. A type this build does
/// not know keeps its trigger type (it never gets a scaler, so upstream would not label it at all).
pub fn scaler_label(trigger_type: &str, trigger_name: Option<&str>) -> String {
    match trigger_name {
        Some(name) if !name.is_empty() => name.to_owned(),
        _ => upstream_scaler_name(trigger_type)
            .unwrap_or(trigger_type)
            .to_owned(),
    }
}

/// [`parse_trigger`], then [`check_files`]: what the operator's reconcile, the admission webhook and
/// `keda lint` call, so a file path outside `--filepath-auth-root-path` gets the same error from all
/// three.
pub fn parse_trigger_confined(
    input: &TriggerInput<'_>,
    files: &FileRoot,
) -> Result<Box<dyn TriggerConfig>, ScalerError> {
    let config = parse_trigger(input)?;
    check_files(config.as_ref(), files)?;
    Ok(config)
}

/// Every file the trigger would open ([`TriggerConfig::files`]) must lie under `files`, as written
/// ([`FileRoot::check`], pure). The error names the field.
pub fn check_files(config: &dyn TriggerConfig, files: &FileRoot) -> Result<(), ScalerError> {
    confine(config, |path| files.check(path).map(drop))
}

/// [`check_files`] with symbolic links followed ([`FileRoot::resolve`]): reads the filesystem, so only
/// where the files are (the operator).
pub fn resolve_files(config: &dyn TriggerConfig, files: &FileRoot) -> Result<(), ScalerError> {
    confine(config, |path| files.resolve(path).map(drop))
}

fn confine(
    config: &dyn TriggerConfig,
    check: impl Fn(&str) -> Result<(), FileRefused>,
) -> Result<(), ScalerError> {
    for f in config.files() {
        check(&f.path).map_err(|e| ScalerError::Config {
            trigger: config.trigger(),
            field: f.field.to_owned(),
            reason: e.to_string(),
        })?;
    }
    Ok(())
}
