//! One result type for every check: [`Finding`] (severity, field path, stable code, message). The
//! object it is about is the caller's: the webhook answers for the object under review, `keda lint`
//! prints kind, namespace and name in front.

/// How bad a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// The object is rejected (webhook) or does not work (lint exit 1).
    Error,
    /// Allowed but probably not what was meant.
    Warning,
    /// What the object would do, asked for (`keda lint --queue-length`); never a problem.
    Info,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }
}

/// One result of a validation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub severity: Severity,
    /// Path of the field in the object, like `spec.minReplicaCount` or `spec.triggers[1].name`.
    pub field: String,
    /// Stable identifier of the rule (see [`codes`]).
    pub code: &'static str,
    pub message: String,
}

impl Finding {
    pub fn error(field: impl Into<String>, code: &'static str, message: impl Into<String>) -> Self {
        Finding {
            severity: Severity::Error,
            field: field.into(),
            code,
            message: message.into(),
        }
    }

    pub fn warning(
        field: impl Into<String>,
        code: &'static str,
        message: impl Into<String>,
    ) -> Self {
        Finding {
            severity: Severity::Warning,
            field: field.into(),
            code,
            message: message.into(),
        }
    }
}

/// The stable code of every finding: upstream's webhook reason label where there is one. The webhook
/// reports an error's code as its rejection reason; `keda lint` prints it.
pub mod codes {
    pub const INCORRECT_REPLICAS: &str = "incorrect-replicas";
    pub const INCORRECT_FALLBACK: &str = "incorrect-fallback";
    pub const SCALING_MODIFIERS: &str = "scaling-modifiers";
    pub const SCALING_MODIFIERS_FALLBACK: &str = "scaling-modifiers-fallback";
    pub const INCORRECT_TRIGGERS: &str = "incorrect-triggers";
    pub const NAME_TOO_LONG: &str = "name-too-long";
    pub const HPA_NAME_TOO_LONG: &str = "hpa-name-too-long";
    pub const METRIC_TYPE_IN_SCALED_JOB: &str = "metric-type-in-scaled-job";
    pub const INVALID_POD_IDENTITY: &str = "invalid-pod-identity";
    pub const INVALID_OAUTH2: &str = "invalid-oauth2";
    /// Warning: `pollingInterval` is set but nothing uses it.
    pub const POLLING_INTERVAL_NO_EFFECT: &str = "polling-interval-no-effect";
    /// Warning: `cooldownPeriod` is set but the target never scales to zero or to idle.
    pub const COOLDOWN_WITHOUT_SCALE_TO_ZERO: &str = "cooldown-without-scale-to-zero";
    /// Warning: a workload's `terminationGracePeriodSeconds` does not cover a container's preStop sleep.
    pub const GRACE_PERIOD_SHORTER_THAN_PRESTOP: &str = "grace-period-shorter-than-prestop";
    /// Warning: pods behind an AWS ALB with `terminationGracePeriodSeconds` below its 60 s idle timeout.
    pub const ALB_GRACE_PERIOD: &str = "alb-grace-period";
    /// Warning: the API server's Kubernetes version is outside the supported window.
    pub const UNSUPPORTED_KUBERNETES_VERSION: &str = "unsupported-kubernetes-version";
    /// Warning: no `scaleDown.stabilizationWindowSeconds`; replicas may flap.
    pub const NO_SCALE_DOWN_STABILIZATION: &str = "no-scale-down-stabilization";
    /// Warning: a ScaledJob whose spec changes delete its Jobs (immediate rollout).
    pub const ROLLOUT_DELETES_JOBS: &str = "rollout-deletes-jobs";
    /// Info: the Jobs a ScaledJob would create for a given queue length.
    pub const SCALED_JOB_PROJECTION: &str = "scaled-job-projection";
    /// Warning: a ScaledJob's replica bounds allow more Jobs than they seem to.
    pub const SCALED_JOB_BOUNDS: &str = "scaled-job-bounds";
    /// A document of a KEDA (or referenced) kind does not match its schema, or a review does not decode.
    pub const INVALID_OBJECT: &str = "invalid-object";
    /// The trigger's parse step rejected its metadata or parameters.
    pub const TRIGGER_PARSE: &str = "trigger-parse";
    pub const UNKNOWN_TRIGGER_TYPE: &str = "unknown-trigger-type";
    /// Two ScaledObjects scale the same workload.
    pub const OTHER_SCALED_OBJECT: &str = "other-scaled-object";
    /// Two ScaledObjects would own the same HPA.
    pub const OTHER_SCALED_OBJECT_HPA: &str = "other-scaled-object-hpa";
    /// Warning: a referenced object is not in the input (or not readable by the checker) and is assumed
    /// to exist.
    pub const ASSUMED_REFERENCE: &str = "assumed-reference";
    /// Warning: something the resolution noticed (an env parameter whose variable is not set, a
    /// deprecated pod identity provider).
    pub const AUTH_NOTE: &str = "auth-note";
    /// Info (`keda render`): the object is paused, so the operator keeps no HPA for it.
    pub const PAUSED: &str = "paused";
    /// `keda render`: the operator's HPA builder refused the object.
    pub const HPA_BUILD: &str = "hpa-build";
    /// `keda render`: the operator's Job builder refused the ScaledJob.
    pub const JOB_BUILD: &str = "job-build";
}
