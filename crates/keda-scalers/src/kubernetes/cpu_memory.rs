//! `cpu` and `memory`: no polling; they become Resource (or ContainerResource) metrics of the HPA.

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use std::sync::Arc;

use crate::input::METADATA;
use crate::{
    BuildContext, MetricSpec, ResourceName, ResourceTarget, Scaler, ScalerError, TriggerConfig,
    TriggerInput,
};

#[derive(Clone, Debug, PartialEq)]
pub struct ResourceConfig {
    pub index: usize,
    pub resource: ResourceName,
    pub container: Option<String>,
    pub target: ResourceTarget,
}

pub fn parse(input: &TriggerInput<'_>) -> Result<Box<dyn TriggerConfig>, ScalerError> {
    Ok(Box::new(parse_config(input)?))
}

pub fn parse_config(input: &TriggerInput<'_>) -> Result<ResourceConfig, ScalerError> {
    let resource = match input.trigger_type {
        "cpu" => ResourceName::Cpu,
        _ => ResourceName::Memory,
    };
    input
        .field("type")
        .order(METADATA)
        .deprecated("the 'type' setting was removed in v2.18; use the trigger's metricType instead")
        .optional::<String>()?;
    let value: String = input.field("value").order(METADATA).required()?;
    let container = input
        .field("containerName")
        .order(METADATA)
        .optional::<String>()?;
    let target = match input.metric_type.map(str::trim).unwrap_or("") {
        "Utilization" => {
            let pct = value.parse::<i32>().map_err(|_| {
                input.error("value", format!("{value:?} is not a whole percentage"))
            })?;
            ResourceTarget::Utilization(pct)
        }
        "AverageValue" => {
            if !crate::quantity::is_quantity(&value) {
                return Err(input.error(
                    "value",
                    format!("{value:?} is not a Kubernetes quantity (like 500m or 512Mi)"),
                ));
            }
            ResourceTarget::AverageValue(Quantity(value))
        }
        other => {
            return Err(input.error(
                "metricType",
                format!("unknown metric type {other:?}, allowed values are 'Utilization' or 'AverageValue'"),
            ));
        }
    };
    Ok(ResourceConfig {
        index: input.index,
        resource,
        container,
        target,
    })
}

#[async_trait::async_trait]
impl TriggerConfig for ResourceConfig {
    fn metric_spec(&self) -> MetricSpec {
        MetricSpec::Resource {
            resource: self.resource,
            container: self.container.clone(),
            target: self.target.clone(),
        }
    }

    fn trigger(&self) -> crate::TriggerRef {
        crate::TriggerRef {
            index: self.index,
            trigger_type: self.resource.as_str().into(),
        }
    }

    /// The HPA reads cpu and memory from the resource metrics API; keda-rs never polls for them.
    fn timeouts(&self, _defaults: &crate::TimeoutDefaults) -> crate::ScalerTimeouts {
        crate::ScalerTimeouts::NO_IO
    }

    async fn build(&self, _ctx: &BuildContext) -> Result<Arc<dyn Scaler>, ScalerError> {
        Ok(Arc::new(ResourceScaler))
    }
}

/// The HPA reads cpu and memory itself; for KEDA's activation such a trigger always counts as active.
struct ResourceScaler;

#[async_trait::async_trait]
impl Scaler for ResourceScaler {
    async fn sample(&self) -> Result<crate::Sample, ScalerError> {
        Ok(crate::Sample {
            value: 0.0,
            active: true,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn parse_with(
        ty: &str,
        metric_type: Option<&str>,
        md: &[(&str, &str)],
    ) -> Result<ResourceConfig, ScalerError> {
        let md: BTreeMap<String, String> = md
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let empty = BTreeMap::new();
        parse_config(&TriggerInput {
            index: 1,
            trigger_type: ty,
            namespace: "default",
            name: None,
            metadata: &md,
            resolved_env: &empty,
            auth_params: &empty,
            metric_type,
        })
    }

    #[test]
    fn parse_table() {
        let ok = parse_with("cpu", Some("Utilization"), &[("value", "50")]).unwrap();
        assert_eq!(ok.target, ResourceTarget::Utilization(50));
        assert_eq!(ok.resource, ResourceName::Cpu);
        let ok = parse_with(
            "memory",
            Some("AverageValue"),
            &[("value", "512Mi"), ("containerName", "app")],
        )
        .unwrap();
        assert_eq!(
            ok.target,
            ResourceTarget::AverageValue(Quantity("512Mi".into()))
        );
        assert_eq!(ok.container.as_deref(), Some("app"));
        for (ty, mt, md, field) in [
            ("cpu", None, vec![("value", "50")], "metricType"),
            ("cpu", Some("Value"), vec![("value", "50")], "metricType"),
            (
                "cpu",
                Some("Utilization"),
                vec![("value", "fifty")],
                "value",
            ),
            ("cpu", Some("Utilization"), vec![], "value"),
            (
                "memory",
                Some("AverageValue"),
                vec![("value", "12 Mi")],
                "value",
            ),
            (
                "cpu",
                Some("Utilization"),
                vec![("value", "50"), ("type", "Utilization")],
                "type",
            ),
        ] {
            let err = parse_with(ty, mt, &md).unwrap_err();
            assert_eq!(err.field(), Some(field), "{ty} {mt:?} {md:?}: {err}");
        }
    }
}
