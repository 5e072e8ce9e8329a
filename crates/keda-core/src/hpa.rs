//! The autoscaling/v2 HorizontalPodAutoscaler a ScaledObject owns, built exactly as upstream's operator
//! builds it, and the "does the live HPA need an update" check.
//!
//! The HPA handles 1↔N scaling; KEDA serves it one external metric per trigger (`s<index>-<name>`), or a
//! single `composite-metric` when `advanced.scalingModifiers` is set.

use std::collections::BTreeMap;

use k8s_openapi::api::autoscaling::v2::{
    ContainerResourceMetricSource, CrossVersionObjectReference, ExternalMetricSource,
    HPAScalingPolicy, HPAScalingRules, HorizontalPodAutoscaler, HorizontalPodAutoscalerBehavior,
    HorizontalPodAutoscalerSpec, MetricIdentifier, MetricSpec, MetricTarget, ResourceMetricSource,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use keda_api::ScaledObject;
use keda_api::consts::{annotations, labels, names};
use keda_api::scaled_object::ModifierMetricType;
use serde_json::Value;

use crate::Error;
use crate::quantity::{metric_quantity, milli_quantity_from_f64, quantities_equal};

/// HPA `selectPolicy` value that stops the HPA from scaling in that direction.
pub const SELECT_POLICY_DISABLED: &str = "Disabled";
/// Longest label value Kubernetes accepts.
const MAX_LABEL_VALUE_LEN: usize = 63;

/// `metric.target.type` of an HPA metric.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricTargetType {
    AverageValue,
    Value,
    /// Only valid for cpu and memory (Resource) metrics.
    Utilization,
}

impl MetricTargetType {
    pub fn as_str(self) -> &'static str {
        match self {
            MetricTargetType::AverageValue => "AverageValue",
            MetricTargetType::Value => "Value",
            MetricTargetType::Utilization => "Utilization",
        }
    }

    /// `triggers[].metricType` as upstream reads it: unset or empty means `AverageValue`.
    pub fn from_trigger(trigger_index: usize, metric_type: Option<&str>) -> Result<Self, Error> {
        match metric_type.unwrap_or_default() {
            "" | "AverageValue" => Ok(MetricTargetType::AverageValue),
            "Value" => Ok(MetricTargetType::Value),
            "Utilization" => Ok(MetricTargetType::Utilization),
            other => Err(Error::UnsupportedMetricType {
                trigger_index,
                metric_type: other.to_owned(),
                reason: "allowed values are AverageValue, Value and Utilization",
            }),
        }
    }
}

impl From<ModifierMetricType> for MetricTargetType {
    fn from(t: ModifierMetricType) -> Self {
        match t {
            ModifierMetricType::AverageValue => MetricTargetType::AverageValue,
            ModifierMetricType::Value => MetricTargetType::Value,
        }
    }
}

/// The resource of a cpu or memory trigger.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResourceName {
    Cpu,
    Memory,
}

impl ResourceName {
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceName::Cpu => "cpu",
            ResourceName::Memory => "memory",
        }
    }
}

/// Target of a cpu or memory metric.
#[derive(Clone, Debug, PartialEq)]
pub enum ResourceTarget {
    /// Percent of the pods' requests.
    Utilization(i32),
    /// Absolute per-pod value, passed through as written (e.g. `"500Mi"`).
    AverageValue(Quantity),
}

/// What one trigger contributes to the HPA.
#[derive(Clone, Debug, PartialEq)]
pub enum MetricKind {
    /// Served by KEDA's metrics server.
    External {
        /// Already in the `s<index>-<name>` form, see [`external_metric_name`].
        metric_name: String,
        target_type: MetricTargetType,
        target_value: f64,
    },
    /// cpu or memory, measured by metrics-server; `container` makes it a ContainerResource metric.
    Resource {
        name: ResourceName,
        container: Option<String>,
        target: ResourceTarget,
    },
}

/// One metric of one trigger (a trigger may produce several).
#[derive(Clone, Debug, PartialEq)]
pub struct TriggerMetric {
    pub trigger_index: usize,
    pub kind: MetricKind,
}

impl TriggerMetric {
    pub fn external(
        trigger_index: usize,
        metric_name: impl Into<String>,
        target_type: MetricTargetType,
        target_value: f64,
    ) -> Self {
        TriggerMetric {
            trigger_index,
            kind: MetricKind::External {
                metric_name: metric_name.into(),
                target_type,
                target_value,
            },
        }
    }

    pub fn resource(
        trigger_index: usize,
        name: ResourceName,
        container: Option<String>,
        target: ResourceTarget,
    ) -> Self {
        TriggerMetric {
            trigger_index,
            kind: MetricKind::Resource {
                name,
                container,
                target,
            },
        }
    }
}

/// upstream's `NormalizeString`: characters that are not allowed in metric names become `-`.
pub fn normalize_string(s: &str) -> String {
    s.replace(['/', '.', ':', '%', '(', ')'], "-")
}

/// The external metric name of a trigger: `s<index>-<normalized name>`, e.g. `s0-new-relic`.
pub fn external_metric_name(trigger_index: usize, raw_name: &str) -> String {
    format!("s{trigger_index}-{}", normalize_string(raw_name))
}

/// Names written to `status.externalMetricNames` and `status.resourceMetricNames`, in trigger order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MetricNames {
    pub external: Vec<String>,
    /// Only plain Resource metrics; upstream leaves ContainerResource metrics out of this list.
    pub resource: Vec<String>,
}

/// The metric names of `metrics` for the ScaledObject status.
pub fn metric_names(metrics: &[TriggerMetric]) -> MetricNames {
    let mut names = MetricNames::default();
    for m in metrics {
        match &m.kind {
            MetricKind::External { metric_name, .. } => names.external.push(metric_name.clone()),
            MetricKind::Resource {
                name,
                container: None,
                ..
            } => names.resource.push(name.as_str().to_owned()),
            MetricKind::Resource { .. } => {}
        }
    }
    names
}

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

/// Whether `existing` (as read from the API server) must be updated to match `desired` (from
/// [`build_hpa`]). Follows upstream's checks — metric count, behavior, spec, labels, annotations — with
/// one improvement: behaviors are compared after the API server's defaulting, so a user behavior that the
/// server completed (e.g. only `scaleDown.stabilizationWindowSeconds` set) does not cause an update on
/// every reconcile, while removing a paused-scale-in/out `Disabled` policy still does.
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

/// What the API server stores for a behavior (autoscaling/v2 `SetDefaults_HorizontalPodAutoscalerBehavior`):
/// every unset field of both rules filled with the Kubernetes defaults.
fn with_server_defaults(
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

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;
    use serde_json::json;

    const VERSION: &str = "2.20.2";

    fn so(yaml: &str) -> ScaledObject {
        serde_yaml_ng::from_str(yaml).expect("test ScaledObject parses")
    }

    /// The seed guide's ScaledObject: New Relic trigger, min 1, max 5.
    fn seed_so() -> ScaledObject {
        so(r#"
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata:
  name: example-app-newrelic
  namespace: example
  uid: 1234-abcd
  labels:
    app.kubernetes.io/instance: example-app
  annotations:
    team: payments
spec:
  scaleTargetRef:
    name: example-app
  minReplicaCount: 1
  maxReplicaCount: 5
  triggers:
    - type: new-relic
      metadata:
        threshold: "70"
"#)
    }

    fn new_relic_metric() -> TriggerMetric {
        TriggerMetric::external(
            0,
            external_metric_name(0, "new-relic"),
            MetricTargetType::AverageValue,
            70.0,
        )
    }

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

    #[test]
    fn metric_names_and_normalisation() {
        let cases = [
            (0, "new-relic", "s0-new-relic"),
            (1, "rabbitmq-queue.name", "s1-rabbitmq-queue-name"),
            (
                2,
                "http://host:80/path%20(x)",
                "s2-http---host-80-path-20-x-",
            ),
        ];
        for (i, raw, want) in cases {
            assert_eq!(external_metric_name(i, raw), want);
        }
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
        assert_eq!(
            MetricTargetType::from_trigger(0, None),
            Ok(MetricTargetType::AverageValue)
        );
        assert_eq!(
            MetricTargetType::from_trigger(0, Some("Value")),
            Ok(MetricTargetType::Value)
        );
        assert!(MetricTargetType::from_trigger(1, Some("Bogus")).is_err());
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
