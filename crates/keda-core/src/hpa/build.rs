//! The HPA KEDA wants for a ScaledObject: metadata (labels, annotations, owner), target, replica bounds,
//! behavior (with paused directions disabled) and one metric spec per trigger metric.

use std::collections::BTreeMap;

use k8s_openapi::api::autoscaling::v2::{
    ContainerResourceMetricSource, CrossVersionObjectReference, ExternalMetricSource,
    HorizontalPodAutoscaler, HorizontalPodAutoscalerBehavior, HorizontalPodAutoscalerSpec,
    MetricIdentifier, MetricSpec, MetricTarget, ResourceMetricSource,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use keda_api::ScaledObject;
use keda_api::consts::{annotations, labels, names};

use super::metric::{MetricKind, MetricTargetType, ResourceTarget, TriggerMetric};
use crate::Error;
use crate::quantity::{metric_quantity, milli_quantity_from_f64};

/// HPA `selectPolicy` value that stops the HPA from scaling in that direction.
pub const SELECT_POLICY_DISABLED: &str = "Disabled";
/// Longest label value Kubernetes accepts.
const MAX_LABEL_VALUE_LEN: usize = 63;

/// The HPA metric list: one spec per trigger metric, external ones selected by the ScaledObject label,
/// sorted by type (ContainerResource < External < Resource) so reconciles produce the same order.
/// With scalingModifiers the external metrics are replaced by one `composite-metric`.
pub fn build_metric_specs(
    so: &ScaledObject,
    metrics: &[TriggerMetric],
) -> Result<Vec<MetricSpec>, Error> {
    let so_name = so.metadata.name.clone().unwrap_or_default();
    if metrics.is_empty() {
        return Err(Error::NoMetricSpecs {
            scaled_object: format!(
                "{}/{so_name}",
                so.metadata.namespace.as_deref().unwrap_or_default()
            ),
        });
    }
    let mut seen: Vec<&str> = Vec::new();
    let mut specs = Vec::with_capacity(metrics.len());
    for m in metrics {
        if let MetricKind::External { metric_name, .. } = &m.kind {
            if seen.contains(&metric_name.as_str()) {
                return Err(Error::DuplicateMetricName {
                    metric_name: metric_name.clone(),
                    scaled_object: so_name,
                });
            }
            seen.push(metric_name);
        }
        specs.push(metric_spec(&so_name, m)?);
    }
    // Stable sort: metrics of the same type keep trigger order.
    specs.sort_by(|a, b| a.type_.cmp(&b.type_));

    if let Some((target_type, target)) = composite_target(so)? {
        // Upstream keeps only plain Resource specs (ContainerResource ones are dropped) and appends the
        // composite metric after them.
        let mut kept: Vec<MetricSpec> =
            specs.into_iter().filter(|s| s.resource.is_some()).collect();
        kept.push(external_spec(
            &so_name,
            names::COMPOSITE_METRIC,
            target_type,
            milli_quantity_from_f64(target),
        ));
        specs = kept;
    }
    Ok(specs)
}

/// The composite metric's target type and value when the ScaledObject uses scalingModifiers.
pub fn composite_target(so: &ScaledObject) -> Result<Option<(MetricTargetType, f64)>, Error> {
    let Some(modifiers) = so.spec.scaling_modifiers() else {
        return Ok(None);
    };
    let raw = modifiers.target.as_deref().unwrap_or_default();
    let target = parse_go_float(raw).ok_or_else(|| Error::InvalidScalingModifiers {
        reason: format!("target {raw:?} is not a number"),
    })?;
    if target.is_nan() || target <= 0.0 {
        return Err(Error::InvalidScalingModifiers {
            reason: format!("target {raw:?} must be greater than 0"),
        });
    }
    let target_type = modifiers
        .metric_type
        .map_or(MetricTargetType::AverageValue, MetricTargetType::from);
    Ok(Some((target_type, target)))
}

/// Go's `strconv.ParseFloat(s, 64)` for the inputs users write (Rust accepts the same decimal forms).
pub(crate) fn parse_go_float(s: &str) -> Option<f64> {
    s.parse::<f64>().ok()
}

fn metric_spec(so_name: &str, m: &TriggerMetric) -> Result<MetricSpec, Error> {
    match &m.kind {
        MetricKind::External {
            metric_name,
            target_type,
            target_value,
        } => {
            if *target_type == MetricTargetType::Utilization {
                return Err(Error::UnsupportedMetricType {
                    trigger_index: m.trigger_index,
                    metric_type: target_type.as_str().to_owned(),
                    reason: "'Utilization' metric type is unsupported for external metrics, allowed values are 'Value' or 'AverageValue'",
                });
            }
            Ok(external_spec(
                so_name,
                metric_name,
                *target_type,
                metric_quantity(*target_value),
            ))
        }
        MetricKind::Resource {
            name,
            container,
            target,
        } => {
            let target = match target {
                ResourceTarget::Utilization(pct) => MetricTarget {
                    type_: MetricTargetType::Utilization.as_str().to_owned(),
                    average_utilization: Some(*pct),
                    ..Default::default()
                },
                ResourceTarget::AverageValue(q) => MetricTarget {
                    type_: MetricTargetType::AverageValue.as_str().to_owned(),
                    average_value: Some(q.clone()),
                    ..Default::default()
                },
            };
            let name = name.as_str().to_owned();
            Ok(match container {
                Some(container) => MetricSpec {
                    type_: "ContainerResource".to_owned(),
                    container_resource: Some(ContainerResourceMetricSource {
                        container: container.clone(),
                        name,
                        target,
                    }),
                    ..Default::default()
                },
                None => MetricSpec {
                    type_: "Resource".to_owned(),
                    resource: Some(ResourceMetricSource { name, target }),
                    ..Default::default()
                },
            })
        }
    }
}

fn external_spec(
    so_name: &str,
    metric_name: &str,
    target_type: MetricTargetType,
    quantity: Quantity,
) -> MetricSpec {
    let mut target = MetricTarget {
        type_: target_type.as_str().to_owned(),
        ..Default::default()
    };
    match target_type {
        MetricTargetType::Value => target.value = Some(quantity),
        _ => target.average_value = Some(quantity),
    }
    MetricSpec {
        type_: "External".to_owned(),
        external: Some(ExternalMetricSource {
            metric: MetricIdentifier {
                name: metric_name.to_owned(),
                // The metrics server finds the ScaledObject of a request through this label.
                selector: Some(LabelSelector {
                    match_labels: Some(BTreeMap::from([(
                        labels::SCALED_OBJECT_NAME.to_owned(),
                        so_name.to_owned(),
                    )])),
                    match_expressions: None,
                }),
            },
            target,
        }),
        ..Default::default()
    }
}

/// `spec.behavior` of the HPA: `advanced.horizontalPodAutoscalerConfig.behavior` verbatim, with
/// `selectPolicy: Disabled` on the paused direction(s).
pub fn hpa_behavior(so: &ScaledObject) -> Option<HorizontalPodAutoscalerBehavior> {
    let mut behavior = so
        .spec
        .advanced
        .as_ref()
        .and_then(|a| a.horizontal_pod_autoscaler_config.as_ref())
        .and_then(|c| c.behavior.clone());
    if so.is_paused_scale_in() {
        behavior
            .get_or_insert_with(Default::default)
            .scale_down
            .get_or_insert_with(Default::default)
            .select_policy = Some(SELECT_POLICY_DISABLED.to_owned());
    }
    if so.is_paused_scale_out() {
        behavior
            .get_or_insert_with(Default::default)
            .scale_up
            .get_or_insert_with(Default::default)
            .select_policy = Some(SELECT_POLICY_DISABLED.to_owned());
    }
    behavior
}

/// Labels of the HPA: the four `app.kubernetes.io/*` labels, then the ScaledObject's own labels (which
/// win on conflict) minus those listed in `scaledobject.keda.sh/hpa-excluded-labels`.
pub fn hpa_labels(so: &ScaledObject, keda_version: &str) -> BTreeMap<String, String> {
    let so_name = so.metadata.name.clone().unwrap_or_default();
    let mut out = BTreeMap::from([
        (labels::APP_NAME.to_owned(), label_value(&so.hpa_name())),
        (labels::APP_VERSION.to_owned(), keda_version.to_owned()),
        (labels::APP_PART_OF.to_owned(), so_name),
        (
            labels::APP_MANAGED_BY.to_owned(),
            labels::MANAGED_BY_OPERATOR.to_owned(),
        ),
    ]);
    let excluded: Vec<&str> = so
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(annotations::HPA_EXCLUDED_LABELS))
        .map(|v| v.split(',').collect())
        .unwrap_or_default();
    for (k, v) in so.metadata.labels.iter().flatten() {
        if !excluded.contains(&k.as_str()) {
            out.insert(k.clone(), v.clone());
        }
    }
    out
}

/// A name cut to a valid label value: at most 63 bytes, not ending in a non-alphanumeric character.
fn label_value(name: &str) -> String {
    if name.len() <= MAX_LABEL_VALUE_LEN {
        return name.to_owned();
    }
    let mut end = MAX_LABEL_VALUE_LEN;
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    name[..end]
        .trim_end_matches(|c: char| !c.is_alphanumeric())
        .to_owned()
}

/// The HPA for `so`: name, namespace, labels, annotations (all of the ScaledObject's), a controller
/// ownerReference (so garbage collection removes it with the ScaledObject), target, min/max replicas,
/// behavior and metrics.
pub fn build_hpa(
    so: &ScaledObject,
    metrics: &[TriggerMetric],
    keda_version: &str,
) -> Result<HorizontalPodAutoscaler, Error> {
    let name = so.metadata.name.clone().ok_or(Error::MissingMetadata {
        kind: "ScaledObject",
        field: "name",
    })?;
    let uid = so.metadata.uid.clone().ok_or(Error::MissingMetadata {
        kind: "ScaledObject",
        field: "uid",
    })?;
    let metric_specs = build_metric_specs(so, metrics)?;
    let target = &so.spec.scale_target_ref;
    Ok(HorizontalPodAutoscaler {
        metadata: ObjectMeta {
            name: Some(so.hpa_name()),
            namespace: so.metadata.namespace.clone(),
            labels: Some(hpa_labels(so, keda_version)),
            annotations: so.metadata.annotations.clone(),
            owner_references: Some(vec![OwnerReference {
                api_version: keda_api::API_VERSION.to_owned(),
                kind: "ScaledObject".to_owned(),
                name,
                uid,
                controller: Some(true),
                block_owner_deletion: Some(true),
            }]),
            ..Default::default()
        },
        spec: Some(HorizontalPodAutoscalerSpec {
            behavior: hpa_behavior(so),
            max_replicas: so.spec.max_replica_count(),
            metrics: Some(metric_specs),
            min_replicas: Some(so.spec.hpa_min_replicas()),
            scale_target_ref: CrossVersionObjectReference {
                api_version: Some(target.api_version().to_owned()),
                kind: target.kind().to_owned(),
                name: target.name.clone(),
            },
        }),
        status: None,
    })
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;
    use serde_json::{Value, json};

    use super::*;
    use crate::hpa::fixtures::{VERSION, new_relic_metric, seed_so, so};
    use crate::hpa::{MetricNames, ResourceName, metric_names};

    #[test]
    fn seed_guide_scaled_object_produces_upstream_hpa() {
        let hpa = build_hpa(&seed_so(), &[new_relic_metric()], VERSION).expect("builds");
        let want = json!({
            "metadata": {
                "name": "keda-hpa-example-app-newrelic",
                "namespace": "example",
                "labels": {
                    "app.kubernetes.io/instance": "example-app",
                    "app.kubernetes.io/managed-by": "keda-operator",
                    "app.kubernetes.io/name": "keda-hpa-example-app-newrelic",
                    "app.kubernetes.io/part-of": "example-app-newrelic",
                    "app.kubernetes.io/version": "2.20.2"
                },
                "annotations": {"team": "payments"},
                "ownerReferences": [{
                    "apiVersion": "keda.sh/v1alpha1",
                    "kind": "ScaledObject",
                    "name": "example-app-newrelic",
                    "uid": "1234-abcd",
                    "controller": true,
                    "blockOwnerDeletion": true
                }]
            },
            "spec": {
                "minReplicas": 1,
                "maxReplicas": 5,
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "example-app"},
                "metrics": [{
                    "type": "External",
                    "external": {
                        "metric": {
                            "name": "s0-new-relic",
                            "selector": {"matchLabels": {"scaledobject.keda.sh/name": "example-app-newrelic"}}
                        },
                        "target": {"type": "AverageValue", "averageValue": "70"}
                    }
                }]
            }
        });
        let mut got = serde_json::to_value(&hpa).expect("serializes");
        // apiVersion/kind come from the Resource impl; compare the object body only.
        if let Some(obj) = got.as_object_mut() {
            obj.remove("apiVersion");
            obj.remove("kind");
        }
        assert_eq!(got, want);
    }

    #[test]
    fn min_max_and_target_defaults() {
        let s = so(r#"
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: w, namespace: ns, uid: u}
spec:
  scaleTargetRef: {name: web, apiVersion: apps/v1, kind: StatefulSet}
  minReplicaCount: 0
  triggers: [{type: cron, metadata: {}}]
"#);
        let hpa = build_hpa(&s, &[new_relic_metric()], VERSION).expect("builds");
        let spec = hpa.spec.expect("spec");
        assert_eq!(spec.min_replicas, Some(1), "an HPA cannot hold 0");
        assert_eq!(spec.max_replicas, 100);
        assert_eq!(spec.scale_target_ref.kind, "StatefulSet");
        assert_eq!(
            spec.scale_target_ref.api_version.as_deref(),
            Some("apps/v1")
        );
        assert_eq!(hpa.metadata.annotations, None);
    }

    #[test]
    fn behavior_is_copied_verbatim() {
        let s = so(r#"
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: w, namespace: ns, uid: u}
spec:
  scaleTargetRef: {name: web}
  advanced:
    horizontalPodAutoscalerConfig:
      behavior:
        scaleDown:
          stabilizationWindowSeconds: 600
          policies:
            - {type: Percent, value: 50, periodSeconds: 60}
  triggers: [{type: cron, metadata: {}}]
"#);
        let hpa = build_hpa(&s, &[new_relic_metric()], VERSION).expect("builds");
        let behavior = hpa.spec.and_then(|s| s.behavior).expect("behavior");
        assert_eq!(
            serde_json::to_value(&behavior).expect("json"),
            json!({"scaleDown": {
                "stabilizationWindowSeconds": 600,
                "policies": [{"type": "Percent", "value": 50, "periodSeconds": 60}]
            }})
        );
    }

    #[test]
    fn paused_scale_in_and_out_disable_select_policy() {
        struct Case {
            annotations: &'static str,
            behavior: &'static str,
            want: Value,
        }
        let cases = [
            Case {
                annotations: r#"{"autoscaling.keda.sh/paused-scale-in": "true"}"#,
                behavior: "",
                want: json!({"scaleDown": {"selectPolicy": "Disabled"}}),
            },
            Case {
                annotations: r#"{"autoscaling.keda.sh/paused-scale-out": "true"}"#,
                behavior: "",
                want: json!({"scaleUp": {"selectPolicy": "Disabled"}}),
            },
            Case {
                annotations: r#"{"autoscaling.keda.sh/paused-scale-in": "yes"}"#,
                behavior: "behavior: {scaleDown: {stabilizationWindowSeconds: 600}}",
                want: json!({"scaleDown": {"stabilizationWindowSeconds": 600, "selectPolicy": "Disabled"}}),
            },
            Case {
                annotations: r#"{"autoscaling.keda.sh/paused-scale-in": "false"}"#,
                behavior: "behavior: {scaleDown: {stabilizationWindowSeconds: 600}}",
                want: json!({"scaleDown": {"stabilizationWindowSeconds": 600}}),
            },
        ];
        for c in cases {
            let s = so(&format!(
                r#"
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {{name: w, namespace: ns, uid: u, annotations: {}}}
spec:
  scaleTargetRef: {{name: web}}
  advanced:
    horizontalPodAutoscalerConfig: {{ {} }}
  triggers: [{{type: cron, metadata: {{}}}}]
"#,
                c.annotations, c.behavior
            ));
            let got = serde_json::to_value(hpa_behavior(&s)).expect("json");
            assert_eq!(got, c.want, "annotations {}", c.annotations);
        }
    }

    #[test]
    fn labels_exclusion_override_and_truncation() {
        let long = "a".repeat(60);
        let s = so(&format!(
            r#"
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata:
  name: {long}
  namespace: ns
  uid: u
  labels: {{keep: "1", drop: "2", app.kubernetes.io/version: mine}}
  annotations: {{scaledobject.keda.sh/hpa-excluded-labels: "drop,other"}}
spec:
  scaleTargetRef: {{name: web}}
  triggers: [{{type: cron, metadata: {{}}}}]
"#
        ));
        let got = hpa_labels(&s, VERSION);
        // "keda-hpa-" + 60 × "a" is 69 bytes: cut to 63.
        assert_eq!(
            got["app.kubernetes.io/name"],
            format!("keda-hpa-{}", "a".repeat(54))
        );
        assert_eq!(got["keep"], "1");
        assert!(!got.contains_key("drop"));
        assert_eq!(got["app.kubernetes.io/version"], "mine", "SO labels win");
        assert_eq!(
            label_value(&format!("{}-.-b", "x".repeat(61))),
            "x".repeat(61)
        );
    }

    fn resource(i: usize, name: ResourceName, container: Option<&str>) -> TriggerMetric {
        TriggerMetric::resource(
            i,
            name,
            container.map(str::to_owned),
            ResourceTarget::Utilization(50),
        )
    }

    #[test]
    fn metrics_are_sorted_by_type_and_stable() {
        let metrics = [
            resource(0, ResourceName::Cpu, None),
            TriggerMetric::external(1, "s1-b", MetricTargetType::Value, 0.5),
            resource(2, ResourceName::Memory, Some("app")),
            TriggerMetric::external(3, "s3-a", MetricTargetType::AverageValue, 1.5),
            resource(4, ResourceName::Memory, None),
        ];
        let specs = build_metric_specs(&seed_so(), &metrics).expect("builds");
        let order: Vec<(String, String)> = specs
            .iter()
            .map(|s| {
                let name = s
                    .external
                    .as_ref()
                    .map(|e| e.metric.name.clone())
                    .or_else(|| s.resource.as_ref().map(|r| r.name.clone()))
                    .or_else(|| s.container_resource.as_ref().map(|r| r.name.clone()))
                    .unwrap_or_default();
                (s.type_.clone(), name)
            })
            .collect();
        let want: Vec<(String, String)> = [
            ("ContainerResource", "memory"),
            ("External", "s1-b"),
            ("External", "s3-a"),
            ("Resource", "cpu"),
            ("Resource", "memory"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        assert_eq!(order, want);
        let value_target = &specs[1].external.as_ref().expect("external").target;
        assert_eq!(value_target.type_, "Value");
        assert_eq!(value_target.value, Some(Quantity("500m".into())));
        assert_eq!(value_target.average_value, None);
        let avg = &specs[2].external.as_ref().expect("external").target;
        assert_eq!(avg.average_value, Some(Quantity("1.500".into())));
        assert_eq!(
            specs[3]
                .resource
                .as_ref()
                .expect("cpu")
                .target
                .average_utilization,
            Some(50)
        );
        assert_eq!(
            metric_names(&metrics),
            MetricNames {
                external: vec!["s1-b".into(), "s3-a".into()],
                resource: vec!["cpu".into(), "memory".into()],
            }
        );
    }

    #[test]
    fn metric_errors() {
        let dup = build_metric_specs(
            &seed_so(),
            &[
                TriggerMetric::external(0, "s0-x", MetricTargetType::AverageValue, 1.0),
                TriggerMetric::external(0, "s0-x", MetricTargetType::AverageValue, 2.0),
            ],
        );
        assert_eq!(
            dup,
            Err(Error::DuplicateMetricName {
                metric_name: "s0-x".into(),
                scaled_object: "example-app-newrelic".into()
            })
        );
        let util = build_metric_specs(
            &seed_so(),
            &[TriggerMetric::external(
                2,
                "s2-x",
                MetricTargetType::Utilization,
                1.0,
            )],
        );
        assert!(
            matches!(
                util,
                Err(Error::UnsupportedMetricType {
                    trigger_index: 2,
                    ..
                })
            ),
            "{util:?}"
        );
        assert!(matches!(
            build_metric_specs(&seed_so(), &[]),
            Err(Error::NoMetricSpecs { .. })
        ));
        let mut no_uid = seed_so();
        no_uid.metadata.uid = None;
        assert_eq!(
            build_hpa(&no_uid, &[new_relic_metric()], VERSION).err(),
            Some(Error::MissingMetadata {
                kind: "ScaledObject",
                field: "uid"
            })
        );
    }

    fn modifiers_so(modifiers: &str) -> ScaledObject {
        so(&format!(
            r#"
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {{name: w, namespace: ns, uid: u}}
spec:
  scaleTargetRef: {{name: web}}
  advanced:
    scalingModifiers: {modifiers}
  triggers: [{{type: cron, name: a, metadata: {{}}}}, {{type: cron, name: b, metadata: {{}}}}]
"#
        ))
    }

    #[test]
    fn scaling_modifiers_replace_external_metrics_with_composite() {
        let metrics = [
            TriggerMetric::external(0, "s0-a", MetricTargetType::AverageValue, 5.0),
            resource(1, ResourceName::Cpu, None),
            TriggerMetric::external(2, "s2-b", MetricTargetType::AverageValue, 7.0),
            resource(3, ResourceName::Memory, Some("c")),
        ];
        let cases = [
            (
                r#"{formula: "a + b", target: "1.5"}"#,
                json!({"type": "AverageValue", "averageValue": "1500m"}),
            ),
            (
                r#"{formula: "a + b", target: "20", metricType: Value}"#,
                json!({"type": "Value", "value": "20"}),
            ),
        ];
        for (modifiers, want_target) in cases {
            let specs = build_metric_specs(&modifiers_so(modifiers), &metrics).expect("builds");
            assert_eq!(
                specs.len(),
                2,
                "{modifiers}: Resource kept, externals merged"
            );
            assert_eq!(specs[0].type_, "Resource");
            let composite = specs[1].external.as_ref().expect("composite");
            assert_eq!(composite.metric.name, "composite-metric");
            assert_eq!(
                serde_json::to_value(&composite.metric.selector).expect("json"),
                json!({"matchLabels": {"scaledobject.keda.sh/name": "w"}})
            );
            assert_eq!(
                serde_json::to_value(&composite.target).expect("json"),
                want_target
            );
        }
        for bad in [
            r#"{formula: "a", target: "x"}"#,
            r#"{formula: "a", target: "0"}"#,
            r#"{formula: "a"}"#,
        ] {
            assert!(
                matches!(
                    build_metric_specs(&modifiers_so(bad), &metrics),
                    Err(Error::InvalidScalingModifiers { .. })
                ),
                "{bad}"
            );
        }
    }
}
