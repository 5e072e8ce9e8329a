//! Snapshot of the wire-visible strings: a rename in code must not silently change what users' alerts,
//! dashboards, RBAC rules and tooling match on.

use keda_api::consts::*;

#[test]
fn wire_strings_are_upstreams() {
    let got = [
        FINALIZER,
        labels::SCALED_OBJECT_NAME,
        labels::SCALED_JOB_NAME,
        annotations::PAUSED_REPLICAS,
        annotations::PAUSED,
        annotations::PAUSED_SCALE_IN,
        annotations::PAUSED_SCALE_OUT,
        annotations::FORCE_ACTIVATION,
        annotations::TRANSFER_HPA_OWNERSHIP,
        annotations::HPA_EXCLUDED_LABELS,
        annotations::VALIDATIONS_HPA_OWNERSHIP,
        names::HPA_PREFIX,
        names::COMPOSITE_METRIC,
        names::LEADER_ELECTION_LEASE,
        names::CERT_SECRET,
        event_reasons::KEDA_SCALE_TARGET_ACTIVATED,
        event_reasons::KEDA_SCALE_TARGET_DEACTIVATED,
        event_reasons::TRIGGER_AUTHENTICATION_UPDATED,
        prometheus::SCALER_METRICS_VALUE,
        prometheus::SCALER_DETAIL_ERRORS_TOTAL,
        prometheus::INTERNAL_SCALE_LOOP_LATENCY_SECONDS,
        condition_reasons::SCALED_OBJECT_READY_MESSAGE,
    ];
    let want = [
        "finalizer.keda.sh",
        "scaledobject.keda.sh/name",
        "scaledjob.keda.sh/name",
        "autoscaling.keda.sh/paused-replicas",
        "autoscaling.keda.sh/paused",
        "autoscaling.keda.sh/paused-scale-in",
        "autoscaling.keda.sh/paused-scale-out",
        "autoscaling.keda.sh/force-activation",
        "scaledobject.keda.sh/transfer-hpa-ownership",
        "scaledobject.keda.sh/hpa-excluded-labels",
        "validations.keda.sh/hpa-ownership",
        "keda-hpa-",
        "composite-metric",
        "operator.keda.sh",
        "kedaorg-certs",
        "KEDAScaleTargetActivated",
        "KEDAScaleTargetDeactivated",
        "ClusterTriggerAuthenticationUpdated",
        "keda_scaler_metrics_value",
        "keda_scaler_detail_errors_total",
        "keda_internal_scale_loop_latency_seconds",
        "ScaledObject is defined correctly and is ready for scaling",
    ];
    assert_eq!(got, want);
}

#[test]
fn initial_conditions_match_upstream() {
    let c = keda_api::common::initial_conditions();
    let pairs: Vec<(&str, &str)> = c
        .iter()
        .map(|c| (c.r#type.as_str(), c.status.as_str()))
        .collect();
    assert_eq!(
        pairs,
        [
            ("Ready", "Unknown"),
            ("Active", "Unknown"),
            ("Fallback", "Unknown"),
            ("Paused", "False")
        ]
    );
}
