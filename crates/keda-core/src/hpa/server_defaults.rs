//! The API server's defaulting of an HPA behavior, so that a behavior KEDA wrote and the completed one
//! the server returns compare equal.

use k8s_openapi::api::autoscaling::v2::{
    HPAScalingPolicy, HPAScalingRules, HorizontalPodAutoscalerBehavior,
};

/// What the API server stores for a behavior (autoscaling/v2 `SetDefaults_HorizontalPodAutoscalerBehavior`):
/// every unset field of both rules filled with the Kubernetes defaults.
pub(super) fn with_server_defaults(
    mut behavior: HorizontalPodAutoscalerBehavior,
) -> HorizontalPodAutoscalerBehavior {
    let policy = |type_: &str, value: i32| HPAScalingPolicy {
        type_: type_.to_owned(),
        value,
        period_seconds: 15,
    };
    let fill = |rules: Option<HPAScalingRules>, defaults: HPAScalingRules| {
        let rules = rules.unwrap_or_default();
        HPAScalingRules {
            policies: rules.policies.or(defaults.policies),
            select_policy: rules.select_policy.or(defaults.select_policy),
            stabilization_window_seconds: rules
                .stabilization_window_seconds
                .or(defaults.stabilization_window_seconds),
            tolerance: rules.tolerance,
        }
    };
    behavior.scale_up = Some(fill(
        behavior.scale_up,
        HPAScalingRules {
            policies: Some(vec![policy("Pods", 4), policy("Percent", 100)]),
            select_policy: Some("Max".to_owned()),
            stabilization_window_seconds: Some(0),
            tolerance: None,
        },
    ));
    behavior.scale_down = Some(fill(
        behavior.scale_down,
        HPAScalingRules {
            policies: Some(vec![policy("Percent", 100)]),
            select_policy: Some("Max".to_owned()),
            // Left unset: kube-controller-manager's --horizontal-pod-autoscaler-downscale-stabilization applies.
            stabilization_window_seconds: None,
            tolerance: None,
        },
    ));
    behavior
}
