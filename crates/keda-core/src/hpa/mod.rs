//! The autoscaling/v2 HorizontalPodAutoscaler a ScaledObject owns, built exactly as upstream's operator
//! builds it, and the "does the live HPA need an update" check.
//!
//! The HPA handles 1↔N scaling; KEDA serves it one external metric per trigger (`s<index>-<name>`), or a
//! single `composite-metric` when `advanced.scalingModifiers` is set.
//!
//! - `metric`: what one trigger contributes (its metric kind, target and external metric name).
//! - `build`: the HPA KEDA wants, from the ScaledObject and its trigger metrics.
//! - [`controller`]: the HPA controller's own replica decision (Kubernetes 1.35), for `keda simulate`.
//! - `update`: whether the live HPA differs from the wanted one, compared as the API server stores it
//!   (`server_defaults`).

mod build;
pub mod controller;
#[cfg(test)]
mod fixtures;
mod metric;
mod server_defaults;
mod update;

pub(crate) use build::parse_go_float;
pub use build::{
    SELECT_POLICY_DISABLED, build_hpa, build_metric_specs, composite_target, hpa_behavior,
    hpa_labels,
};
pub use metric::{
    MetricKind, MetricNames, MetricTargetType, ResourceName, ResourceTarget, TriggerMetric,
    external_metric_name, metric_names, normalize_string,
};
pub use update::hpa_needs_update;
