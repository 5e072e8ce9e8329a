//! The typed registry: one line per trigger type, each behind its cargo feature.

use crate::TriggerConfig;
use crate::error::ScalerError;
use crate::input::TriggerInput;

/// Parses one trigger of a given type.
pub type ParseFn = fn(&TriggerInput<'_>) -> Result<Box<dyn TriggerConfig>, ScalerError>;

/// A trigger type and its parse step.
pub struct Registration {
    pub trigger_type: &'static str,
    pub parse: ParseFn,
}

static REGISTRY: &[Registration] = &[
    #[cfg(feature = "cpu-memory")]
    Registration {
        trigger_type: "cpu",
        parse: crate::cpu_memory::parse,
    },
    #[cfg(feature = "cpu-memory")]
    Registration {
        trigger_type: "memory",
        parse: crate::cpu_memory::parse,
    },
    #[cfg(feature = "cron")]
    Registration {
        trigger_type: "cron",
        parse: crate::cron::parse,
    },
    #[cfg(feature = "metrics-api")]
    Registration {
        trigger_type: "metrics-api",
        parse: crate::metrics_api::parse,
    },
    #[cfg(feature = "prometheus")]
    Registration {
        trigger_type: "prometheus",
        parse: crate::prometheus::parse,
    },
    #[cfg(feature = "new-relic")]
    Registration {
        trigger_type: "new-relic",
        parse: crate::new_relic::parse,
    },
    #[cfg(feature = "datadog")]
    Registration {
        trigger_type: "datadog",
        parse: crate::datadog::parse,
    },
    #[cfg(feature = "redis")]
    Registration {
        trigger_type: "redis",
        parse: crate::redis::parse,
    },
    #[cfg(feature = "redis")]
    Registration {
        trigger_type: "redis-cluster",
        parse: crate::redis::parse,
    },
    #[cfg(feature = "redis")]
    Registration {
        trigger_type: "redis-sentinel",
        parse: crate::redis::parse,
    },
    #[cfg(feature = "redis-streams")]
    Registration {
        trigger_type: "redis-streams",
        parse: crate::redis_streams::parse,
    },
    #[cfg(feature = "redis-streams")]
    Registration {
        trigger_type: "redis-cluster-streams",
        parse: crate::redis_streams::parse,
    },
    #[cfg(feature = "redis-streams")]
    Registration {
        trigger_type: "redis-sentinel-streams",
        parse: crate::redis_streams::parse,
    },
    #[cfg(feature = "postgresql")]
    Registration {
        trigger_type: "postgresql",
        parse: crate::postgresql::parse,
    },
    #[cfg(feature = "mysql")]
    Registration {
        trigger_type: "mysql",
        parse: crate::mysql::parse,
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
