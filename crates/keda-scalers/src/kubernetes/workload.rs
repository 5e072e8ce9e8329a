//! `kubernetes-workload`: the number of pods in the ScaledObject's (or ScaledJob's) namespace that
//! `podSelector` matches, as upstream counts them:
//!
//! - pods in phase `Succeeded` or `Failed` never count; every other phase does (`Pending`, `Running`,
//!   `Unknown`, and a pod with no phase yet);
//! - with `groupByNode: "true"` the value is the number of distinct nodes those pods run on, pods not yet
//!   scheduled left out;
//! - `value` is the target per replica (must be above 0), `activationValue` the activation threshold
//!   (active when the count is strictly above it); the metric is `s<index>-workload-<namespace>`.
//!
//! Only the trigger's own namespace is read. The pods come from [`BuildContext::pods`]: in the operator one
//! LIST per poll, scoped to the namespace, the label selector and unfinished phases, and nothing is
//! cached between polls. Upstream reads them from a cache that watches every Pod of the cluster, so its
//! memory grows with pods no trigger selects (kedacore/keda#7728); the trade here is one API request per
//! poll, counted against the operator's `--kube-api-qps`, for memory that does not depend on the size of
//! the cluster (why not a watch or a metadata-only list: `crate::pods`).
//!
//! `podSelector` is parsed when the trigger is, as upstream parses it, in kubectl syntax (`app=a`,
//! `app!=a`, `app in (a,b)`, `app notin (a,b)`, `app`, `!app`, comma-separated). One difference: `<` and
//! `>` requirements, which upstream's parser accepts, are refused, as `kubectl -l` and
//! `WATCH_LABEL_SELECTOR` refuse them here.

use std::sync::Arc;

use crate::input::METADATA;
use crate::pods::{FINISHED_PHASES, PodSummary, Pods};
use crate::{
    BuildContext, MetricSpec, MetricTargetType, Sample, Scaler, ScalerError, ScalerTimeouts,
    TimeoutDefaults, TriggerConfig, TriggerInput, TriggerRef,
};

const TYPE: &str = "kubernetes-workload";

#[derive(Clone, Debug, PartialEq)]
pub struct WorkloadConfig {
    pub index: usize,
    /// The namespace of the object the trigger belongs to: the only one whose pods count.
    pub namespace: String,
    /// `podSelector` as written.
    pub pod_selector: String,
    /// `podSelector` as the API's `labelSelector` parameter takes it (empty: every pod).
    pub selector: String,
    /// `value`: target per replica.
    pub value: f64,
    /// `activationValue` (default 0).
    pub activation_value: f64,
    /// `groupByNode`: count distinct nodes instead of pods.
    pub group_by_node: bool,
    pub metric_type: MetricTargetType,
}

pub fn parse(input: &TriggerInput<'_>) -> Result<Box<dyn TriggerConfig>, ScalerError> {
    Ok(Box::new(parse_config(input)?))
}

pub fn parse_config(input: &TriggerInput<'_>) -> Result<WorkloadConfig, ScalerError> {
    let metric_type = input.external_metric_type()?;
    let pod_selector: String = input.field("podSelector").order(METADATA).required()?;
    let value: f64 = input
        .field("value")
        .order(METADATA)
        .default("0")
        .required()?;
    let activation_value: f64 = input
        .field("activationValue")
        .order(METADATA)
        .default("0")
        .required()?;
    let group_by_node: bool = input
        .field("groupByNode")
        .order(METADATA)
        .default("false")
        .required()?;
    // Upstream's message; its exception for triggers used only as a metric source does not exist here.
    if value <= 0.0 {
        return Err(input.error("value", "value must be a float greater than 0"));
    }
    let selector = keda_kube::parse_label_selector(&pod_selector)
        .map_err(|e| input.error("podSelector", format!("error parsing pod selector: {e}")))?
        .map(|s| s.to_string())
        .unwrap_or_default();
    Ok(WorkloadConfig {
        index: input.index,
        namespace: input.namespace.to_owned(),
        pod_selector,
        selector,
        value,
        activation_value,
        group_by_node,
        metric_type,
    })
}

/// The value for the listed pods: unfinished pods, or the distinct nodes they are scheduled on.
pub fn count(pods: &[PodSummary], group_by_node: bool) -> f64 {
    let unfinished = pods.iter().filter(|p| {
        !p.phase
            .as_deref()
            .is_some_and(|ph| FINISHED_PHASES.contains(&ph))
    });
    if group_by_node {
        let nodes: std::collections::BTreeSet<&str> = unfinished
            .filter_map(|p| p.node_name.as_deref())
            .filter(|n| !n.is_empty())
            .collect();
        nodes.len() as f64
    } else {
        unfinished.count() as f64
    }
}

#[async_trait::async_trait]
impl TriggerConfig for WorkloadConfig {
    fn metric_spec(&self) -> MetricSpec {
        MetricSpec::External {
            metric_name: crate::external_metric_name(
                self.index,
                &format!("workload-{}", self.namespace),
            ),
            target_type: self.metric_type,
            target: self.value,
        }
    }

    fn activation_threshold(&self) -> Option<f64> {
        Some(self.activation_value)
    }

    fn trigger(&self) -> TriggerRef {
        TriggerRef {
            index: self.index,
            trigger_type: TYPE.into(),
        }
    }

    /// One LIST per sample, bounded like an HTTP request (upstream reads its cache, unbounded).
    fn timeouts(&self, defaults: &TimeoutDefaults) -> ScalerTimeouts {
        ScalerTimeouts::http(defaults.http)
    }

    async fn build(&self, ctx: &BuildContext) -> Result<Arc<dyn Scaler>, ScalerError> {
        let Some(pods) = ctx.pods.clone() else {
            return Err(ScalerError::Config {
                trigger: self.trigger(),
                field: "podSelector".into(),
                reason:
                    "listing pods needs the Kubernetes API, and this process has no access to it"
                        .into(),
            });
        };
        Ok(Arc::new(WorkloadScaler {
            config: self.clone(),
            pods,
        }))
    }
}

struct WorkloadScaler {
    config: WorkloadConfig,
    pods: Arc<dyn Pods>,
}

#[async_trait::async_trait]
impl Scaler for WorkloadScaler {
    async fn sample(&self) -> Result<Sample, ScalerError> {
        let c = &self.config;
        let pods = self
            .pods
            .pods(&c.namespace, &c.selector)
            .await
            .map_err(|message| ScalerError::Backend {
                trigger: c.trigger(),
                action: "inspecting kubernetes workload",
                message,
            })?;
        let value = count(&pods, c.group_by_node);
        Ok(Sample {
            value,
            active: crate::is_active(value, c.activation_value),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(phase: Option<&str>, node: Option<&str>) -> PodSummary {
        PodSummary {
            phase: phase.map(str::to_owned),
            node_name: node.map(str::to_owned),
        }
    }

    /// Upstream's TestWorkloadPhase: only Succeeded and Failed are left out.
    #[test]
    fn finished_phases_do_not_count() {
        for (phase, counted) in [
            (Some("Running"), true),
            (Some("Pending"), true),
            (Some("Unknown"), true),
            (None, true),
            (Some("Succeeded"), false),
            (Some("Failed"), false),
        ] {
            let want = if counted { 1.0 } else { 0.0 };
            assert_eq!(count(&[pod(phase, None)], false), want, "{phase:?}");
        }
    }

    /// Upstream's TestWorkloadGroupByNode: 4 unfinished pods on 2 nodes (one pod unscheduled, a failed
    /// pod on a third node).
    #[test]
    fn group_by_node_counts_distinct_nodes_of_scheduled_unfinished_pods() {
        let pods = [
            pod(Some("Running"), Some("node-a")),
            pod(Some("Running"), Some("node-a")),
            pod(Some("Running"), Some("node-b")),
            pod(Some("Pending"), None),
            pod(Some("Failed"), Some("node-c")),
        ];
        assert_eq!(count(&pods, false), 4.0);
        assert_eq!(count(&pods, true), 2.0);
    }
}
