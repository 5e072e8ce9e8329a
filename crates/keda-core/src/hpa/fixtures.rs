//! ScaledObjects and metrics the HPA tests share.

use keda_api::ScaledObject;

use super::{MetricTargetType, TriggerMetric, external_metric_name};

pub(super) const VERSION: &str = "2.20.2";

pub(super) fn so(yaml: &str) -> ScaledObject {
    serde_yaml_ng::from_str(yaml).expect("test ScaledObject parses")
}

/// The seed guide's ScaledObject: New Relic trigger, min 1, max 5.
pub(super) fn seed_so() -> ScaledObject {
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

pub(super) fn new_relic_metric() -> TriggerMetric {
    TriggerMetric::external(
        0,
        external_metric_name(0, "new-relic"),
        MetricTargetType::AverageValue,
        70.0,
    )
}
