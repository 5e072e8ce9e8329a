//! Whether the live HPA must be updated: the wanted HPA compared with what the API server returned, the
//! way apimachinery's `DeepDerivative` compares (fields KEDA leaves unset may hold the server's values).

use k8s_openapi::api::autoscaling::v2::{HorizontalPodAutoscaler, HorizontalPodAutoscalerSpec};
use serde_json::Value;

use super::server_defaults::with_server_defaults;
use crate::quantity::quantities_equal;

/// Whether `existing` (as read from the API server) must be updated to match `desired` (from
/// [`build_hpa`](super::build_hpa)). Follows upstream's checks — metric count, behavior, spec,
/// labels, annotations — with one improvement: behaviors are compared after the API server's
/// defaulting, so a user behavior that the server completed (e.g. only
/// `scaleDown.stabilizationWindowSeconds` set) does not cause an update on every reconcile, while
/// removing a paused-scale-in/out `Disabled` policy still does.
pub fn hpa_needs_update(
    existing: &HorizontalPodAutoscaler,
    desired: &HorizontalPodAutoscaler,
) -> bool {
    let (Some(want), Some(have)) = (desired.spec.as_ref(), existing.spec.as_ref()) else {
        return desired.spec.is_some();
    };
    let count = |s: &HorizontalPodAutoscalerSpec| s.metrics.as_ref().map_or(0, Vec::len);
    if count(want) != count(have) {
        return true;
    }
    let want_behavior = to_json(&want.behavior.clone().map(with_server_defaults));
    let have_behavior = to_json(&have.behavior.clone().map(with_server_defaults));
    if !(derives(&want_behavior, &have_behavior, None)
        && derives(&have_behavior, &want_behavior, None))
    {
        return true;
    }
    // Behavior was compared above; the rest of the spec only has to be a "derivative" of the live one
    // (fields we leave unset may hold server defaults).
    let strip = |s: &HorizontalPodAutoscalerSpec| {
        to_json(&HorizontalPodAutoscalerSpec {
            behavior: None,
            ..s.clone()
        })
    };
    if !derives(&strip(want), &strip(have), None) {
        return true;
    }
    let (dm, em) = (&desired.metadata, &existing.metadata);
    if !derives(&to_json(&dm.labels), &to_json(&em.labels), None) {
        return true;
    }
    (dm.annotations.is_none() && em.annotations.is_some())
        || !derives(&to_json(&dm.annotations), &to_json(&em.annotations), None)
}

fn to_json<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// Keys whose string values are Kubernetes quantities and compare by value.
fn is_quantity_key(key: &str) -> bool {
    matches!(key, "value" | "averageValue" | "tolerance")
}

/// apimachinery's `DeepDerivative` over JSON: unset (null / missing) and empty strings in `want` match
/// anything, arrays in `want` may be shorter, quantities compare by value.
fn derives(want: &Value, have: &Value, key: Option<&str>) -> bool {
    match want {
        Value::Null => true,
        Value::String(s) if s.is_empty() => true,
        Value::String(s) if key.is_some_and(is_quantity_key) => {
            have.as_str().is_some_and(|h| quantities_equal(s, h))
        }
        Value::Array(items) => match have {
            Value::Array(have_items) => {
                items.len() <= have_items.len()
                    && items
                        .iter()
                        .zip(have_items)
                        .all(|(w, h)| derives(w, h, None))
            }
            _ => items.is_empty(),
        },
        Value::Object(fields) => fields.iter().all(|(k, w)| {
            let h = have.get(k).unwrap_or(&Value::Null);
            derives(w, h, Some(k))
        }),
        _ => want == have,
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::autoscaling::v2::{HPAScalingRules, HorizontalPodAutoscalerBehavior};
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
    use keda_api::ScaledObject;
    use keda_api::consts::annotations;

    use super::*;
    use crate::hpa::fixtures::{VERSION, new_relic_metric, seed_so};
    use crate::hpa::{MetricTargetType, TriggerMetric, build_hpa, hpa_behavior};

    fn hpa_of(s: &ScaledObject) -> HorizontalPodAutoscaler {
        build_hpa(s, &[new_relic_metric()], VERSION).expect("builds")
    }

    #[test]
    fn needs_update_only_on_real_change() {
        let base = seed_so();
        let desired = hpa_of(&base);
        assert!(!hpa_needs_update(&desired, &desired), "identical");

        // The API server fills defaults and may add foreign labels/annotations and a status.
        let mut live = desired.clone();
        if let Some(spec) = live.spec.as_mut() {
            spec.behavior = None;
        }
        live.metadata
            .labels
            .get_or_insert_with(Default::default)
            .insert("extra".into(), "x".into());
        live.metadata
            .annotations
            .get_or_insert_with(Default::default)
            .insert("extra".into(), "x".into());
        live.metadata.resource_version = Some("42".into());
        assert!(
            !hpa_needs_update(&live, &desired),
            "server additions are not a change"
        );

        // A quantity written differently but equal in value is not a change.
        let mut requantified = desired.clone();
        if let Some(t) = requantified
            .spec
            .as_mut()
            .and_then(|s| s.metrics.as_mut())
            .and_then(|m| m[0].external.as_mut())
        {
            t.target.average_value = Some(Quantity("70000m".into()));
        }
        assert!(!hpa_needs_update(&requantified, &desired));

        let mut changed = base.clone();
        changed.spec.max_replica_count = Some(6);
        assert!(hpa_needs_update(&desired, &hpa_of(&changed)), "max changed");

        let two = build_hpa(
            &base,
            &[
                new_relic_metric(),
                TriggerMetric::external(1, "s1-x", MetricTargetType::AverageValue, 1.0),
            ],
            VERSION,
        )
        .expect("builds");
        assert!(hpa_needs_update(&two, &desired), "metric removed");
        assert!(hpa_needs_update(&desired, &two), "metric added");

        let other_target = build_hpa(
            &base,
            &[TriggerMetric::external(
                0,
                "s0-new-relic",
                MetricTargetType::AverageValue,
                80.0,
            )],
            VERSION,
        )
        .expect("builds");
        assert!(hpa_needs_update(&desired, &other_target), "target changed");

        let mut relabelled = base.clone();
        relabelled
            .metadata
            .labels
            .get_or_insert_with(Default::default)
            .insert("tier".into(), "web".into());
        assert!(
            hpa_needs_update(&desired, &hpa_of(&relabelled)),
            "label added"
        );

        let mut unannotated = base.clone();
        unannotated.metadata.annotations = None;
        assert!(
            hpa_needs_update(&desired, &hpa_of(&unannotated)),
            "annotations removed"
        );

        let mut moved = base.clone();
        moved.spec.scale_target_ref.name = "other".into();
        assert!(
            hpa_needs_update(&desired, &hpa_of(&moved)),
            "target ref changed"
        );
    }

    #[test]
    fn needs_update_compares_behavior_after_server_defaulting() {
        let mut with_behavior = seed_so();
        with_behavior.spec.advanced = Some(keda_api::scaled_object::AdvancedConfig {
            horizontal_pod_autoscaler_config: Some(
                keda_api::scaled_object::HorizontalPodAutoscalerConfig {
                    behavior: Some(HorizontalPodAutoscalerBehavior {
                        scale_down: Some(HPAScalingRules {
                            stabilization_window_seconds: Some(600),
                            ..Default::default()
                        }),
                        scale_up: None,
                    }),
                    name: None,
                },
            ),
            ..Default::default()
        });
        let desired = hpa_of(&with_behavior);
        // What the API server returns for it: every rule completed with defaults.
        let mut live = desired.clone();
        if let Some(spec) = live.spec.as_mut() {
            spec.behavior = spec.behavior.clone().map(with_server_defaults);
        }
        assert!(
            !hpa_needs_update(&live, &desired),
            "defaulted behavior is the same behavior"
        );

        // paused-scale-in removed: the live HPA still has Disabled, the desired one has no behavior.
        let mut paused = seed_so();
        paused
            .metadata
            .annotations
            .get_or_insert_with(Default::default)
            .insert(annotations::PAUSED_SCALE_IN.into(), "true".into());
        let unpaused = hpa_of(&seed_so());
        let mut live_paused = unpaused.clone();
        let mut desired_paused = unpaused.clone();
        if let (Some(live), Some(want)) = (live_paused.spec.as_mut(), desired_paused.spec.as_mut())
        {
            live.behavior = hpa_behavior(&paused).map(with_server_defaults);
            want.behavior = hpa_behavior(&paused);
        }
        assert!(
            hpa_needs_update(&live_paused, &unpaused),
            "Disabled must be removed"
        );
        assert!(
            hpa_needs_update(&unpaused, &desired_paused),
            "Disabled must be added"
        );
        assert!(
            !hpa_needs_update(&live_paused, &desired_paused),
            "already Disabled"
        );
    }
}
