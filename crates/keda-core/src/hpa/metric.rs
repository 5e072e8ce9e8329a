//! What one trigger contributes to the HPA: a metric, its target and, for external metrics, the
//! `s<index>-<name>` name KEDA serves it under.

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use keda_api::scaled_object::ModifierMetricType;

use crate::Error;

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

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;

    use super::*;

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

    #[test]
    fn metric_type_of_a_trigger() {
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
}
