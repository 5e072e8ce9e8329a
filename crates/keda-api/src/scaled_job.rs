//! ScaledJob: runs one Kubernetes Job per unit of work.

use k8s_openapi::api::batch::v1::JobSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;
use std::collections::BTreeMap;

use crate::common::{Condition, ScaleTriggers, TriggerActivityStatus};

/// ScaledJobSpec is the spec for a ScaledJob resource.
#[skip_serializing_none]
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "keda.sh",
    version = "v1alpha1",
    kind = "ScaledJob",
    namespaced,
    status = "ScaledJobStatus",
    shortname = "sj",
    derive = "PartialEq",
    doc = "ScaledJob is the Schema for the scaledjobs API",
    printcolumn = r#"{"name":"Min","type":"integer","jsonPath":".spec.minReplicaCount"}"#,
    printcolumn = r#"{"name":"Max","type":"integer","jsonPath":".spec.maxReplicaCount"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Active","type":"string","jsonPath":".status.conditions[?(@.type==\"Active\")].status"}"#,
    printcolumn = r#"{"name":"Paused","type":"string","jsonPath":".status.conditions[?(@.type==\"Paused\")].status"}"#,
    printcolumn = r#"{"name":"Triggers","type":"string","jsonPath":".status.triggersTypes"}"#,
    printcolumn = r#"{"name":"Authentications","type":"string","jsonPath":".status.authenticationsTypes"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ScaledJobSpec {
    /// The Job to create for each unit of work (a full `batch/v1` JobSpec).
    pub job_target_ref: JobSpec,
    /// Seconds between two polls of the triggers. Default 30.
    #[schemars(range(min = 1))]
    pub polling_interval: Option<i32>,
    /// Completed Jobs to keep. Default 100.
    #[schemars(range(min = 0))]
    pub successful_jobs_history_limit: Option<i32>,
    /// Failed Jobs to keep. Default 100.
    #[schemars(range(min = 0))]
    pub failed_jobs_history_limit: Option<i32>,
    /// Deprecated: use `rollout.strategy`.
    pub rollout_strategy: Option<RolloutStrategy>,
    /// What happens to running Jobs when the ScaledJob changes.
    pub rollout: Option<Rollout>,
    /// Container whose environment `*FromEnv` parameters read. Default: the first container.
    pub env_source_container_name: Option<String>,
    /// Jobs kept running at all times. Default 0.
    #[schemars(range(min = 0))]
    pub min_replica_count: Option<i32>,
    /// Most Jobs running at once. Default 100.
    #[schemars(range(min = 1))]
    pub max_replica_count: Option<i32>,
    /// How many Jobs to create for the observed queue.
    pub scaling_strategy: Option<ScalingStrategy>,
    /// Event sources that drive scaling. At least one.
    #[schemars(length(min = 1))]
    pub triggers: Vec<ScaleTriggers>,
}

impl ScaledJobSpec {
    pub fn polling_interval(&self) -> i32 {
        self.polling_interval.unwrap_or(30)
    }
    pub fn successful_jobs_history_limit(&self) -> i32 {
        self.successful_jobs_history_limit.unwrap_or(100)
    }
    pub fn failed_jobs_history_limit(&self) -> i32 {
        self.failed_jobs_history_limit.unwrap_or(100)
    }
}

/// Rollout strategies of a ScaledJob.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum RolloutStrategy {
    /// Leave running Jobs alone on change.
    Gradual,
    /// Delete Jobs of older generations on change (the default behaviour).
    Immediate,
}

/// Deletion propagation used when old Jobs are removed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum PropagationPolicy {
    Foreground,
    Background,
}

/// Rollout of a changed ScaledJob.
#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Rollout {
    /// `gradual` or `immediate` (default behaviour).
    pub strategy: Option<RolloutStrategy>,
    /// `foreground` or `background` (default).
    pub propagation_policy: Option<PropagationPolicy>,
}

/// ScalingStrategy defines the strategy of Scaling.
#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScalingStrategy {
    /// `default`, `custom`, `accurate` or `eager`.
    pub strategy: Option<ScalingStrategyKind>,
    /// `custom` only: subtracted from the queue length. Default 0.
    pub custom_scaling_queue_length_deduction: Option<i32>,
    /// `custom` only: fraction of running Jobs subtracted (a float as a string).
    pub custom_scaling_running_job_percentage: Option<String>,
    /// Pod condition types a Job's pod must all have to count as not pending.
    pub pending_pod_conditions: Option<Vec<String>>,
    /// How several triggers combine: `min`, `avg`, `sum` or `max` (default).
    pub multiple_scalers_calculation: Option<MultipleScalersCalculation>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum ScalingStrategyKind {
    Default,
    Custom,
    Accurate,
    Eager,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum MultipleScalersCalculation {
    Min,
    Avg,
    Sum,
    Max,
}

/// ScaledJobStatus defines the observed state of ScaledJob.
#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScaledJobStatus {
    pub last_active_time: Option<Time>,
    pub conditions: Option<Vec<Condition>>,
    /// Upstream spells this key with a capital P.
    #[serde(rename = "Paused")]
    pub paused: Option<String>,
    pub triggers_types: Option<String>,
    pub authentications_types: Option<String>,
    pub external_metric_names: Option<Vec<String>>,
    pub triggers_activity: Option<BTreeMap<String, TriggerActivityStatus>>,
}
