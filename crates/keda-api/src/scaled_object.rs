//! ScaledObject: scales a Deployment, StatefulSet or any resource exposing `/scale`.

use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscalerBehavior;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;
use std::collections::BTreeMap;

use crate::common::{
    Condition, GroupVersionKindResource, HealthStatus, ScaleTriggers, TriggerActivityStatus,
};
use crate::consts::{annotations, names};

/// Default `pollingInterval` in seconds.
pub const DEFAULT_POLLING_INTERVAL: i32 = 30;
/// Default `cooldownPeriod` in seconds.
pub const DEFAULT_COOLDOWN_PERIOD: i32 = 300;
/// Default `maxReplicaCount`.
pub const DEFAULT_MAX_REPLICA_COUNT: i32 = 100;

/// ScaledObjectSpec is the spec for a ScaledObject resource.
#[skip_serializing_none]
#[derive(CustomResource, KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "keda.sh",
    version = "v1alpha1",
    kind = "ScaledObject",
    namespaced,
    status = "ScaledObjectStatus",
    shortname = "so",
    derive = "PartialEq",
    doc = "ScaledObject is a specification for a ScaledObject resource",
    printcolumn = r#"{"name":"ScaleTargetKind","type":"string","jsonPath":".status.scaleTargetKind"}"#,
    printcolumn = r#"{"name":"ScaleTargetName","type":"string","jsonPath":".spec.scaleTargetRef.name"}"#,
    printcolumn = r#"{"name":"Min","type":"integer","jsonPath":".spec.minReplicaCount"}"#,
    printcolumn = r#"{"name":"Max","type":"integer","jsonPath":".spec.maxReplicaCount"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Active","type":"string","jsonPath":".status.conditions[?(@.type==\"Active\")].status"}"#,
    printcolumn = r#"{"name":"Fallback","type":"string","jsonPath":".status.conditions[?(@.type==\"Fallback\")].status"}"#,
    printcolumn = r#"{"name":"Paused","type":"string","jsonPath":".status.conditions[?(@.type==\"Paused\")].status"}"#,
    printcolumn = r#"{"name":"Triggers","type":"string","jsonPath":".status.triggersTypes"}"#,
    printcolumn = r#"{"name":"Authentications","type":"string","jsonPath":".status.authenticationsTypes"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[x_kube(validation = kube::core::Rule::new(
    "!has(self.minReplicaCount) || self.minReplicaCount <= (has(self.maxReplicaCount) ? self.maxReplicaCount : 100)"
).message("minReplicaCount must be less than or equal to maxReplicaCount"))]
#[serde(rename_all = "camelCase")]
pub struct ScaledObjectSpec {
    /// The workload to scale; it must expose the `/scale` subresource.
    pub scale_target_ref: ScaleTarget,
    /// Seconds between two polls of the triggers. Default 30.
    #[schemars(range(min = 1))]
    pub polling_interval: Option<i32>,
    /// Seconds after creation before the first scale to zero may happen. Default 0.
    #[schemars(range(min = 0))]
    pub initial_cooldown_period: Option<i32>,
    /// Seconds to wait after the last active trigger before scaling to zero (or to idleReplicaCount).
    /// Only applies to that last step; 1↔N scale-down is governed by the HPA behavior. Default 300.
    #[schemars(range(min = 0))]
    pub cooldown_period: Option<i32>,
    /// Replica count while no trigger is active; must be less than minReplicaCount. Unset by default.
    #[schemars(range(min = 0))]
    pub idle_replica_count: Option<i32>,
    /// Lowest replica count. Default 0.
    #[schemars(range(min = 0))]
    pub min_replica_count: Option<i32>,
    /// Highest replica count, passed to the HPA. Default 100.
    #[schemars(range(min = 1))]
    pub max_replica_count: Option<i32>,
    /// Advanced options: HPA name and behavior, restore on delete, scaling modifiers.
    pub advanced: Option<AdvancedConfig>,
    /// Event sources that drive scaling. At least one.
    #[schemars(length(min = 1))]
    pub triggers: Vec<ScaleTriggers>,
    /// Replica count to use when triggers keep failing.
    pub fallback: Option<Fallback>,
}

impl ScaledObjectSpec {
    pub fn polling_interval(&self) -> i32 {
        self.polling_interval.unwrap_or(DEFAULT_POLLING_INTERVAL)
    }
    pub fn cooldown_period(&self) -> i32 {
        self.cooldown_period.unwrap_or(DEFAULT_COOLDOWN_PERIOD)
    }
    pub fn initial_cooldown_period(&self) -> i32 {
        self.initial_cooldown_period.unwrap_or(0)
    }
    pub fn min_replica_count(&self) -> i32 {
        self.min_replica_count.unwrap_or(0)
    }
    pub fn max_replica_count(&self) -> i32 {
        self.max_replica_count.unwrap_or(DEFAULT_MAX_REPLICA_COUNT)
    }
    /// `minReplicas` of the HPA: minReplicaCount when positive, else 1 (an HPA cannot hold zero).
    pub fn hpa_min_replicas(&self) -> i32 {
        match self.min_replica_count {
            Some(n) if n > 0 => n,
            _ => 1,
        }
    }
    pub fn restore_to_original_replica_count(&self) -> bool {
        self.advanced
            .as_ref()
            .and_then(|a| a.restore_to_original_replica_count)
            .unwrap_or(false)
    }
    /// The scaling modifiers, if any field of them is set.
    pub fn scaling_modifiers(&self) -> Option<&ScalingModifiers> {
        self.advanced
            .as_ref()
            .and_then(|a| a.scaling_modifiers.as_ref())
            .filter(|m| **m != ScalingModifiers::default())
    }
}

impl ScaledObject {
    /// Name of the HPA this object owns: `advanced.horizontalPodAutoscalerConfig.name` or `keda-hpa-<name>`.
    pub fn hpa_name(&self) -> String {
        self.spec
            .advanced
            .as_ref()
            .and_then(|a| a.horizontal_pod_autoscaler_config.as_ref())
            .and_then(|c| c.name.clone())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| {
                format!(
                    "{}{}",
                    names::HPA_PREFIX,
                    self.metadata.name.as_deref().unwrap_or_default()
                )
            })
    }

    fn annotation(&self, key: &str) -> Option<&str> {
        self.metadata
            .annotations
            .as_ref()?
            .get(key)
            .map(String::as_str)
    }

    /// Upstream's boolean annotation rule: absent = false, unparsable = true, otherwise the parsed value.
    fn bool_annotation(&self, key: &str) -> bool {
        self.annotation(key)
            .map(parse_bool_annotation)
            .unwrap_or(false)
    }

    /// `autoscaling.keda.sh/paused-replicas`, parsed. `Some(Err(..))` names the bad value.
    pub fn paused_replicas(&self) -> Option<Result<i32, String>> {
        self.annotation(annotations::PAUSED_REPLICAS).map(|v| {
            v.trim().parse::<i32>().map_err(|e| {
                format!(
                    "annotation {}: {v:?} is not a replica count: {e}",
                    annotations::PAUSED_REPLICAS
                )
            })
        })
    }
    /// Paused by `paused-replicas` (any value) or by a true `paused` annotation.
    pub fn is_paused(&self) -> bool {
        self.annotation(annotations::PAUSED_REPLICAS).is_some()
            || self.bool_annotation(annotations::PAUSED)
    }
    pub fn is_paused_scale_in(&self) -> bool {
        self.bool_annotation(annotations::PAUSED_SCALE_IN)
    }
    pub fn is_paused_scale_out(&self) -> bool {
        self.bool_annotation(annotations::PAUSED_SCALE_OUT)
    }
    pub fn is_force_activation(&self) -> bool {
        self.bool_annotation(annotations::FORCE_ACTIVATION)
    }
}

/// Go's `strconv.ParseBool` accepted spellings; anything else counts as true, as upstream does.
pub fn parse_bool_annotation(value: &str) -> bool {
    !matches!(value, "0" | "f" | "F" | "false" | "FALSE" | "False")
}

/// Reference to the scaled workload.
#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScaleTarget {
    /// Name of the workload, in the ScaledObject's namespace.
    #[schemars(length(min = 1))]
    pub name: String,
    /// API version of the workload. Default `apps/v1`.
    pub api_version: Option<String>,
    /// Kind of the workload. Default `Deployment`.
    pub kind: Option<String>,
    /// Container whose environment `*FromEnv` parameters read. Default: the first container.
    pub env_source_container_name: Option<String>,
}

impl ScaleTarget {
    pub fn api_version(&self) -> &str {
        self.api_version
            .as_deref()
            .filter(|s| !s.is_empty())
            .unwrap_or("apps/v1")
    }
    pub fn kind(&self) -> &str {
        self.kind
            .as_deref()
            .filter(|s| !s.is_empty())
            .unwrap_or("Deployment")
    }
}

/// Fallback replicas used while triggers keep failing.
#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Fallback {
    /// Consecutive failures of a metric before fallback applies to it.
    #[schemars(range(min = 0))]
    pub failure_threshold: i32,
    /// Replica count the HPA is steered to while in fallback.
    #[schemars(range(min = 0))]
    pub replicas: i32,
    /// How the fallback replica count is chosen. Default `static`.
    #[serde(default)]
    pub behavior: FallbackBehavior,
}

/// How fallback picks its replica count.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum FallbackBehavior {
    /// Always `fallback.replicas`.
    #[default]
    Static,
    /// Keep the current replica count.
    CurrentReplicas,
    /// The higher of the current count and `fallback.replicas`.
    CurrentReplicasIfHigher,
    /// The lower of the current count and `fallback.replicas`.
    CurrentReplicasIfLower,
    /// A failing metric becomes nil in the scalingModifiers formula.
    ScalingModifiers,
}

/// AdvancedConfig specifies advance scaling options.
#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AdvancedConfig {
    /// Name and behavior of the HPA the operator creates.
    pub horizontal_pod_autoscaler_config: Option<HorizontalPodAutoscalerConfig>,
    /// On delete, set the target back to the replica count it had before KEDA took it over. Default false.
    pub restore_to_original_replica_count: Option<bool>,
    /// Combine the triggers' metrics into one with a formula.
    pub scaling_modifiers: Option<ScalingModifiers>,
}

/// Combines named triggers into the single `composite-metric`.
#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScalingModifiers {
    /// Expression over trigger names, e.g. `(trig_one + trig_two) / 2`.
    pub formula: Option<String>,
    /// Target value of the composite metric (a number > 0, as a string).
    pub target: Option<String>,
    /// Activation threshold of the composite metric. Default "0".
    pub activation_target: Option<String>,
    /// `AverageValue` (default) or `Value`.
    pub metric_type: Option<ModifierMetricType>,
}

/// Metric target types allowed for the composite metric.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ModifierMetricType {
    AverageValue,
    Value,
}

/// The HPA the operator creates.
#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HorizontalPodAutoscalerConfig {
    /// Copied verbatim into the HPA's `spec.behavior` (e.g. `scaleDown.stabilizationWindowSeconds`).
    pub behavior: Option<HorizontalPodAutoscalerBehavior>,
    /// HPA name. Default `keda-hpa-<scaledobject name>`.
    pub name: Option<String>,
}

/// ScaledObjectStatus is the status for a ScaledObject resource.
#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScaledObjectStatus {
    /// `group/version.Kind` of the target, e.g. `apps/v1.Deployment`.
    pub scale_target_kind: Option<String>,
    /// Group, version, kind and resource of the target.
    #[serde(rename = "scaleTargetGVKR")]
    pub scale_target_gvkr: Option<GroupVersionKindResource>,
    /// Replica count of the target when KEDA first took it over.
    pub original_replica_count: Option<i32>,
    /// Last time a trigger was active.
    pub last_active_time: Option<Time>,
    /// External metric names served to the HPA (`s<index>-<name>`).
    pub external_metric_names: Option<Vec<String>>,
    /// Resource metric names (cpu, memory).
    pub resource_metric_names: Option<Vec<String>>,
    /// `composite-metric` when scalingModifiers are used.
    pub composite_scaler_name: Option<String>,
    /// Ready, Active, Fallback, Paused (and HPAActive).
    pub conditions: Option<Vec<Condition>>,
    /// Per-metric failure counts used by fallback.
    pub health: Option<BTreeMap<String, HealthStatus>>,
    /// Per-metric activity at the last poll.
    pub triggers_activity: Option<BTreeMap<String, TriggerActivityStatus>>,
    /// Replica count set by the paused-replicas annotation.
    pub paused_replica_count: Option<i32>,
    /// Name of the HPA in use.
    pub hpa_name: Option<String>,
    /// Comma-joined unique trigger types.
    pub triggers_types: Option<String>,
    /// Comma-joined unique authenticationRef names.
    pub authentications_types: Option<String>,
}
