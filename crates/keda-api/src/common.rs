//! Types shared by ScaledObject and ScaledJob: triggers, authentication references, conditions.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;
use std::collections::BTreeMap;

use crate::consts::condition_types;

/// One event source that drives scaling.
#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScaleTriggers {
    /// Scaler type, for example `prometheus`, `cron`, `kafka` or `cpu`.
    #[schemars(length(min = 1))]
    pub r#type: String,
    /// Optional trigger name, unique within the object; required to refer to the trigger in
    /// `advanced.scalingModifiers.formula`.
    pub name: Option<String>,
    /// Serve the HPA the value sampled by the last scale-loop poll instead of querying the scaler on
    /// every HPA request. Default false; not allowed for cpu, memory and cron triggers.
    pub use_cached_metrics: Option<bool>,
    /// Scaler parameters. A key `<key>FromEnv` reads `<key>` from the named environment variable of the
    /// scale target's container.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// TriggerAuthentication or ClusterTriggerAuthentication that supplies secret parameters.
    pub authentication_ref: Option<AuthenticationRef>,
    /// HPA metric target type: `AverageValue` (default), `Value`, or `Utilization` (cpu and memory only).
    pub metric_type: Option<String>,
}

impl ScaleTriggers {
    /// `useCachedMetrics`, defaulting to false.
    pub fn use_cached_metrics(&self) -> bool {
        self.use_cached_metrics.unwrap_or(false)
    }
}

/// Reference to the authentication object of a trigger.
#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthenticationRef {
    /// Name of the TriggerAuthentication (same namespace) or ClusterTriggerAuthentication.
    pub name: String,
    /// Kind of the referenced object; defaults to `TriggerAuthentication`.
    pub kind: Option<AuthenticationRefKind>,
}

impl AuthenticationRef {
    /// The kind, with upstream's default applied.
    pub fn kind(&self) -> AuthenticationRefKind {
        self.kind.unwrap_or_default()
    }
}

/// Kinds an `authenticationRef` may point to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum AuthenticationRefKind {
    #[default]
    TriggerAuthentication,
    ClusterTriggerAuthentication,
}

/// A status condition as upstream KEDA writes it (no `lastTransitionTime`, no `observedGeneration`).
#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Condition {
    /// Type of condition: Ready, Active, Fallback, Paused or HPAActive.
    pub r#type: String,
    /// Status of the condition, one of True, False, Unknown.
    pub status: String,
    /// The reason for the condition's last transition.
    pub reason: Option<String>,
    /// A human readable message indicating details about the transition.
    pub message: Option<String>,
}

/// The conditions every ScaledObject and ScaledJob starts with, as upstream initialises them.
pub fn initial_conditions() -> Vec<Condition> {
    [
        (condition_types::READY, "Unknown"),
        (condition_types::ACTIVE, "Unknown"),
        (condition_types::FALLBACK, "Unknown"),
        (condition_types::PAUSED, "False"),
    ]
    .into_iter()
    .map(|(t, s)| Condition {
        r#type: t.to_owned(),
        status: s.to_owned(),
        reason: None,
        message: None,
    })
    .collect()
}

/// Group, version, kind and resource of a scale target.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct GroupVersionKindResource {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub resource: String,
}

impl GroupVersionKindResource {
    /// `group/version.Kind`, the form upstream writes into `status.scaleTargetKind` (`apps/v1.Deployment`).
    pub fn gvk_string(&self) -> String {
        format!("{}/{}.{}", self.group, self.version, self.kind)
    }
}

/// Whether a trigger's metric was active at the last poll.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TriggerActivityStatus {
    #[serde(default)]
    pub is_active: bool,
}

/// Health of one metric, used by fallback.
#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HealthStatus {
    /// Consecutive failed polls.
    pub number_of_failures: Option<i32>,
    /// `Happy` or `Failing`.
    pub status: Option<String>,
}

/// Comma-joined unique trigger types and authentication names, as written to `status.triggersTypes` and
/// `status.authenticationsTypes` (in first-seen order).
pub fn triggers_and_authentications_types(triggers: &[ScaleTriggers]) -> (String, String) {
    let mut types: Vec<&str> = Vec::new();
    let mut auths: Vec<&str> = Vec::new();
    for t in triggers {
        if !types.contains(&t.r#type.as_str()) {
            types.push(&t.r#type);
        }
        if let Some(a) = &t.authentication_ref
            && !auths.contains(&a.name.as_str())
        {
            auths.push(&a.name);
        }
    }
    (types.join(","), auths.join(","))
}
