//! Every wire-visible string of KEDA, defined once. Other crates and tests refer to these constants;
//! `tests/wire_strings.rs` pins their values so a typo cannot slip through.

/// Finalizer on ScaledObject, ScaledJob, TriggerAuthentication and ClusterTriggerAuthentication.
pub const FINALIZER: &str = "finalizer.keda.sh";

pub mod labels {
    /// Label the operator puts on a ScaledObject (and the selector of its external metrics).
    pub const SCALED_OBJECT_NAME: &str = "scaledobject.keda.sh/name";
    /// Label on Jobs (and their pod templates) created for a ScaledJob.
    pub const SCALED_JOB_NAME: &str = "scaledjob.keda.sh/name";
    pub const APP_NAME: &str = "app.kubernetes.io/name";
    pub const APP_VERSION: &str = "app.kubernetes.io/version";
    pub const APP_PART_OF: &str = "app.kubernetes.io/part-of";
    pub const APP_MANAGED_BY: &str = "app.kubernetes.io/managed-by";
    /// Value of `app.kubernetes.io/managed-by` on objects the operator creates.
    pub const MANAGED_BY_OPERATOR: &str = "keda-operator";
}

pub mod annotations {
    pub const PAUSED_REPLICAS: &str = "autoscaling.keda.sh/paused-replicas";
    pub const PAUSED: &str = "autoscaling.keda.sh/paused";
    pub const PAUSED_SCALE_IN: &str = "autoscaling.keda.sh/paused-scale-in";
    pub const PAUSED_SCALE_OUT: &str = "autoscaling.keda.sh/paused-scale-out";
    pub const FORCE_ACTIVATION: &str = "autoscaling.keda.sh/force-activation";
    pub const TRANSFER_HPA_OWNERSHIP: &str = "scaledobject.keda.sh/transfer-hpa-ownership";
    pub const HPA_EXCLUDED_LABELS: &str = "scaledobject.keda.sh/hpa-excluded-labels";
    pub const VALIDATIONS_HPA_OWNERSHIP: &str = "validations.keda.sh/hpa-ownership";
    pub const JOB_EXCLUDED_LABELS: &str = "scaledjob.keda.sh/job-excluded-labels";
    pub const SCALED_JOB_GENERATION: &str = "scaledjob.keda.sh/generation";
}

/// Condition types in `.status.conditions`.
pub mod condition_types {
    pub const READY: &str = "Ready";
    pub const ACTIVE: &str = "Active";
    pub const FALLBACK: &str = "Fallback";
    pub const PAUSED: &str = "Paused";
    pub const HPA_ACTIVE: &str = "HPAActive";
}

/// Condition reasons and the fixed messages upstream pairs with them.
pub mod condition_reasons {
    pub const SCALED_OBJECT_READY: &str = "ScaledObjectReady";
    pub const SCALED_OBJECT_READY_MESSAGE: &str =
        "ScaledObject is defined correctly and is ready for scaling";
    pub const SCALED_OBJECT_CHECK_FAILED: &str = "ScaledObjectCheckFailed";
    pub const TRIGGER_ERROR: &str = "TriggerError";
    pub const PARTIAL_TRIGGER_ERROR: &str = "PartialTriggerError";
    pub const ERROR_GETTING_CURRENT_REPLICAS: &str = "ErrorGettingCurrentReplicas";
    pub const SCALER_ACTIVE: &str = "ScalerActive";
    pub const SCALER_NOT_ACTIVE: &str = "ScalerNotActive";
    pub const SCALER_COOLDOWN: &str = "ScalerCooldown";
    pub const UNKNOWN_STATE: &str = "UnknownState";
    pub const FALLBACK_EXISTS: &str = "FallbackExists";
    pub const NO_FALLBACK_FOUND: &str = "NoFallbackFound";
    pub const SCALED_OBJECT_PAUSED: &str = "ScaledObjectPaused";
    pub const SCALED_OBJECT_PAUSED_MESSAGE: &str = "ScaledObject is paused";
    pub const SCALED_OBJECT_UNPAUSED: &str = "ScaledObjectUnpaused";
    pub const HPA_ACTIVE: &str = "HPAActive";
    pub const HPA_SCALING_DISABLED: &str = "ScalingDisabled";
    pub const HPA_METRICS_UNAVAILABLE: &str = "HPAMetricsUnavailable";
    pub const SCALED_JOB_READY: &str = "ScaledJobReady";
    pub const SCALED_JOB_CHECK_FAILED: &str = "ScaledJobCheckFailed";
    pub const SCALED_JOB_PAUSED: &str = "ScaledJobPaused";
    pub const SCALED_JOB_PAUSED_MESSAGE: &str = "ScaledJob is paused";
    pub const SCALED_JOB_UNPAUSED: &str = "ScaledJobUnpaused";
    pub const SCALED_JOB_UNPAUSED_MESSAGE: &str = "ScaledJob is unpaused";
}

/// Kubernetes Event reasons, as upstream emits them.
pub mod event_reasons {
    pub const SCALED_OBJECT_READY: &str = "ScaledObjectReady";
    pub const SCALED_JOB_READY: &str = "ScaledJobReady";
    pub const SCALED_OBJECT_CHECK_FAILED: &str = "ScaledObjectCheckFailed";
    pub const SCALED_JOB_CHECK_FAILED: &str = "ScaledJobCheckFailed";
    pub const SCALED_OBJECT_UPDATE_FAILED: &str = "ScaledObjectUpdateFailed";
    pub const SCALED_JOB_UPDATE_FAILED: &str = "ScaledJobUpdateFailed";
    pub const SCALED_OBJECT_DELETED: &str = "ScaledObjectDeleted";
    pub const SCALED_OBJECT_PAUSED: &str = "ScaledObjectPaused";
    pub const SCALED_OBJECT_UNPAUSED: &str = "ScaledObjectUnpaused";
    pub const SCALED_OBJECT_FALLBACK_ACTIVATED: &str = "ScaledObjectFallbackActivated";
    pub const SCALED_OBJECT_FALLBACK_DEACTIVATED: &str = "ScaledObjectFallbackDeactivated";
    pub const SCALED_JOB_DELETED: &str = "ScaledJobDeleted";
    pub const SCALED_JOB_PAUSED: &str = "ScaledJobPaused";
    pub const SCALED_JOB_UNPAUSED: &str = "ScaledJobUnpaused";
    pub const SCALED_JOB_PAUSE_FAILED: &str = "ScaledJobPauseFailed";
    pub const SCALED_JOB_ROLLOUT_CLEANUP_STARTED: &str = "ScaledJobRolloutCleanupStarted";
    pub const SCALED_JOB_ROLLOUT_CLEANUP_COMPLETED: &str = "ScaledJobRolloutCleanupCompleted";
    pub const SCALED_JOB_ROLLOUT_CLEANUP_FAILED: &str = "ScaledJobRolloutCleanupFailed";
    pub const SCALED_JOB_ACTIVE: &str = "ScaledJobActive";
    pub const SCALED_JOB_INACTIVE: &str = "ScaledJobInactive";
    pub const KEDA_SCALER_INFO: &str = "KEDAScalerInfo";
    pub const KEDA_SCALERS_STARTED: &str = "KEDAScalersStarted";
    pub const KEDA_SCALERS_STOPPED: &str = "KEDAScalersStopped";
    pub const KEDA_SCALER_FAILED: &str = "KEDAScalerFailed";
    pub const KEDA_METRIC_SOURCE_FAILED: &str = "KEDAMetricSourceFailed";
    pub const KEDA_SCALE_TARGET_ACTIVATED: &str = "KEDAScaleTargetActivated";
    pub const KEDA_SCALE_TARGET_DEACTIVATED: &str = "KEDAScaleTargetDeactivated";
    pub const KEDA_SCALE_TARGET_ACTIVATION_FAILED: &str = "KEDAScaleTargetActivationFailed";
    pub const KEDA_SCALE_TARGET_DEACTIVATION_FAILED: &str = "KEDAScaleTargetDeactivationFailed";
    pub const KEDA_JOB_CREATE_FAILED: &str = "KEDAJobCreateFailed";
    pub const KEDA_JOBS_CREATED: &str = "KEDAJobsCreated";
    pub const TRIGGER_AUTHENTICATION_DELETED: &str = "TriggerAuthenticationDeleted";
    pub const TRIGGER_AUTHENTICATION_ADDED: &str = "TriggerAuthenticationAdded";
    pub const TRIGGER_AUTHENTICATION_FAILED: &str = "TriggerAuthenticationFailed";
    /// Upstream emits this reason for TriggerAuthentication updates too (a long-standing constant bug that
    /// users' alerts may match on); kept as is.
    pub const TRIGGER_AUTHENTICATION_UPDATED: &str = "ClusterTriggerAuthenticationUpdated";
    pub const CLUSTER_TRIGGER_AUTHENTICATION_DELETED: &str = "ClusterTriggerAuthenticationDeleted";
    pub const CLUSTER_TRIGGER_AUTHENTICATION_ADDED: &str = "ClusterTriggerAuthenticationAdded";
    pub const CLUSTER_TRIGGER_AUTHENTICATION_FAILED: &str = "ClusterTriggerAuthenticationFailed";
    pub const CLUSTER_TRIGGER_AUTHENTICATION_UPDATED: &str = "ClusterTriggerAuthenticationUpdated";
}

/// Prometheus metric names (without the `_total`-less aliases upstream removed in v2.17).
pub mod prometheus {
    pub const BUILD_INFO: &str = "keda_build_info";
    pub const SCALER_METRICS_VALUE: &str = "keda_scaler_metrics_value";
    pub const SCALER_METRICS_LATENCY_SECONDS: &str = "keda_scaler_metrics_latency_seconds";
    pub const SCALER_ACTIVE: &str = "keda_scaler_active";
    pub const SCALER_DETAIL_ERRORS_TOTAL: &str = "keda_scaler_detail_errors_total";
    pub const SCALED_OBJECT_ERRORS_TOTAL: &str = "keda_scaled_object_errors_total";
    pub const SCALED_JOB_ERRORS_TOTAL: &str = "keda_scaled_job_errors_total";
    pub const SCALED_OBJECT_PAUSED: &str = "keda_scaled_object_paused";
    pub const SCALER_EMPTY_UPSTREAM_RESPONSES_TOTAL: &str =
        "keda_scaler_empty_upstream_responses_total";
    pub const TRIGGER_REGISTERED_TOTAL: &str = "keda_trigger_registered_total";
    pub const RESOURCE_REGISTERED_TOTAL: &str = "keda_resource_registered_total";
    pub const INTERNAL_SCALE_LOOP_LATENCY_SECONDS: &str =
        "keda_internal_scale_loop_latency_seconds";
    pub const SCALER_HTTP_REQUESTS_TOTAL: &str = "keda_scaler_http_requests_total";
    pub const SCALER_HTTP_REQUEST_DURATION_SECONDS: &str =
        "keda_scaler_http_request_duration_seconds";
    pub const WEBHOOK_SCALED_OBJECT_VALIDATIONS_TOTAL: &str =
        "keda_webhook_scaled_object_validations_total";
    pub const WEBHOOK_SCALED_OBJECT_VALIDATION_ERRORS_TOTAL: &str =
        "keda_webhook_scaled_object_validation_errors_total";
}

/// Names the operator gives to objects and metrics.
pub mod names {
    /// Prefix of the HPA a ScaledObject owns: `keda-hpa-<scaledobject>`.
    pub const HPA_PREFIX: &str = "keda-hpa-";
    /// The single external metric that replaces all others when `scalingModifiers` is set.
    pub const COMPOSITE_METRIC: &str = "composite-metric";
    /// Lease used for leader election among operator replicas.
    pub const LEADER_ELECTION_LEASE: &str = "operator.keda.sh";
    /// Secret holding the CA and the serving/client certificate shared by the three processes.
    pub const CERT_SECRET: &str = "kedaorg-certs";
    pub const OPERATOR_SERVICE: &str = "keda-operator";
    pub const METRICS_APISERVER_SERVICE: &str = "keda-operator-metrics-apiserver";
    pub const ADMISSION_WEBHOOKS_SERVICE: &str = "keda-admission-webhooks";
    pub const VALIDATING_WEBHOOK_CONFIGURATION: &str = "keda-admission";
    pub const EXTERNAL_METRICS_APISERVICE: &str = "v1beta1.external.metrics.k8s.io";
    /// Event reporting component of the operator.
    pub const OPERATOR_COMPONENT: &str = "keda-operator";
}
