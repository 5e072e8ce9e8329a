//! Real manifests must survive deserialise → serialise without losing or changing a field.

use keda_api::{ClusterTriggerAuthentication, ScaledJob, ScaledObject, TriggerAuthentication};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Every leaf of `want` must be in `got` with an equal value. `got` may hold more (defaults such as
/// `fallback.behavior: static` that the API server would fill in as well).
fn assert_contains(want: &Value, got: &Value, path: &str) {
    match (want, got) {
        (Value::Object(w), Value::Object(g)) => {
            for (k, v) in w {
                let child = format!("{path}.{k}");
                let g = g.get(k).unwrap_or_else(|| panic!("lost field {child}"));
                assert_contains(v, g, &child);
            }
        }
        (Value::Array(w), Value::Array(g)) => {
            assert_eq!(w.len(), g.len(), "array length at {path}");
            for (i, (w, g)) in w.iter().zip(g).enumerate() {
                assert_contains(w, g, &format!("{path}[{i}]"));
            }
        }
        // Quantities may be written as numbers (`cpu: 1`) and come back as strings.
        (Value::Number(n), Value::String(s)) => assert_eq!(n.to_string(), *s, "value at {path}"),
        (w, g) => assert_eq!(w, g, "value at {path}"),
    }
}

fn roundtrip<K: DeserializeOwned + serde::Serialize + PartialEq + std::fmt::Debug>(
    doc: &Value,
) -> usize {
    let typed: K = serde_json::from_value(doc.clone()).expect("fixture deserialises");
    let back = serde_json::to_value(&typed).expect("serialises");
    assert_contains(doc, &back, "");
    let again: K = serde_json::from_value(back).expect("re-deserialises");
    assert_eq!(typed, again);
    1
}

fn check_fixture(text: &str) -> usize {
    let mut keda_docs = 0;
    for de in serde_yaml_ng::Deserializer::from_str(text) {
        let doc = Value::deserialize(de).expect("fixture is YAML");
        let kind = doc["kind"].as_str().unwrap_or_default();
        keda_docs += match kind {
            "ScaledObject" => roundtrip::<ScaledObject>(&doc),
            "ScaledJob" => roundtrip::<ScaledJob>(&doc),
            "TriggerAuthentication" => roundtrip::<TriggerAuthentication>(&doc),
            "ClusterTriggerAuthentication" => roundtrip::<ClusterTriggerAuthentication>(&doc),
            _ => 0,
        };
    }
    keda_docs
}

#[test]
fn seed_guide_values_dev() {
    assert_eq!(
        check_fixture(include_str!("fixtures/seed-values-dev.yaml")),
        2
    );
}

#[test]
fn scaling_deployments_page() {
    assert_eq!(
        check_fixture(include_str!("fixtures/scaling-deployments.yaml")),
        3
    );
}

#[test]
fn scaling_jobs_page() {
    assert_eq!(check_fixture(include_str!("fixtures/scaling-jobs.yaml")), 1);
}

#[test]
fn authentication_page() {
    assert_eq!(
        check_fixture(include_str!("fixtures/authentication.yaml")),
        3
    );
}

#[test]
fn accessors_apply_upstream_defaults() {
    let doc: Value = serde_yaml_ng::from_str(
        "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {name: web}\nspec:\n  scaleTargetRef: {name: web}\n  triggers: [{type: cron, metadata: {}}]\n",
    )
    .expect("yaml");
    let so: ScaledObject = serde_json::from_value(doc).expect("typed");
    assert_eq!(so.spec.polling_interval(), 30);
    assert_eq!(so.spec.cooldown_period(), 300);
    assert_eq!(so.spec.min_replica_count(), 0);
    assert_eq!(so.spec.max_replica_count(), 100);
    assert_eq!(so.spec.hpa_min_replicas(), 1);
    assert_eq!(so.spec.scale_target_ref.kind(), "Deployment");
    assert_eq!(so.spec.scale_target_ref.api_version(), "apps/v1");
    assert_eq!(so.hpa_name(), "keda-hpa-web");
    assert!(!so.is_paused());
}

#[test]
fn pause_annotations_follow_upstream_bool_rules() {
    let with = |k: &str, v: &str| -> ScaledObject {
        let text = format!(
            "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata:\n  name: web\n  annotations: {{\"{k}\": \"{v}\"}}\nspec:\n  scaleTargetRef: {{name: web}}\n  triggers: [{{type: cron, metadata: {{}}}}]\n"
        );
        serde_yaml_ng::from_str(&text).expect("yaml")
    };
    assert!(with("autoscaling.keda.sh/paused", "true").is_paused());
    assert!(!with("autoscaling.keda.sh/paused", "false").is_paused());
    // Go's ParseBool fails on "yes": upstream then treats the annotation as true.
    assert!(with("autoscaling.keda.sh/paused", "yes").is_paused());
    assert!(with("autoscaling.keda.sh/paused-replicas", "0").is_paused());
    assert_eq!(
        with("autoscaling.keda.sh/paused-replicas", "3").paused_replicas(),
        Some(Ok(3))
    );
    assert!(matches!(
        with("autoscaling.keda.sh/paused-replicas", "x").paused_replicas(),
        Some(Err(_))
    ));
    assert!(with("autoscaling.keda.sh/paused-scale-in", "1").is_paused_scale_in());
    assert!(!with("autoscaling.keda.sh/paused-scale-out", "F").is_paused_scale_out());
    assert!(with("autoscaling.keda.sh/force-activation", "TRUE").is_force_activation());
}
