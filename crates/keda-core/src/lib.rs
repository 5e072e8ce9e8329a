//! The pure scaling math of KEDA: everything the operator and the metrics server decide from numbers,
//! without IO.
//!
//! - [`hpa`]: the autoscaling/v2 HPA a ScaledObject owns, and whether an existing one needs an update.
//! - [`activation`]: the scale loop's 0↔1 (idle↔min) decision for a ScaledObject.
//! - [`fallback`]: failure counting and the synthetic metric value served while triggers keep failing.
//! - [`formula`]: the `scalingModifiers` expression language (an expr-lang subset).
//! - [`scaled_job`]: how many Jobs a ScaledJob creates per poll.
//! - [`simulate`]: a metric series replayed through all of the above and the HPA controller's algorithm.
//! - [`quantity`]: Kubernetes quantity strings exactly as upstream's Go code prints them.

pub mod activation;
pub mod fallback;
pub mod formula;
pub mod hpa;
pub mod quantity;
pub mod scaled_job;
pub mod simulate;

/// Everything that can go wrong in this crate. Each variant names the object or input it concerns.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// The object lacks a metadata field the output needs (an ownerReference needs name and uid).
    #[error("{kind} has no metadata.{field}")]
    MissingMetadata {
        kind: &'static str,
        field: &'static str,
    },
    /// No trigger produced a metric, so there is nothing to put into the HPA.
    #[error("no metric specs returned from scalers for ScaledObject {scaled_object}")]
    NoMetricSpecs { scaled_object: String },
    /// Two triggers produced the same external metric name; the HPA could not tell them apart.
    #[error("metricName {metric_name} defined multiple times in ScaledObject {scaled_object}")]
    DuplicateMetricName {
        metric_name: String,
        scaled_object: String,
    },
    /// A metric target type that the metric source does not support.
    #[error("trigger {trigger_index}: metric type {metric_type:?} is not supported: {reason}")]
    UnsupportedMetricType {
        trigger_index: usize,
        metric_type: String,
        reason: &'static str,
    },
    /// `advanced.scalingModifiers` is incomplete or has an unparsable number.
    #[error("invalid scalingModifiers: {reason}")]
    InvalidScalingModifiers { reason: String },
    /// The formula does not parse. `column` is 1-based, counted in characters.
    #[error("formula syntax error at column {column}: {message}")]
    FormulaSyntax { column: usize, message: String },
    /// The formula names something that is neither a trigger nor a known function.
    #[error("formula refers to unknown {what} {name:?} at column {column}")]
    FormulaUnknownName {
        what: &'static str,
        name: String,
        column: usize,
    },
    /// The formula parsed but failed while running (type mismatch, nil operand, integer division by zero).
    #[error("formula evaluation failed: {message}")]
    FormulaEval { message: String },
    /// An HPA (or its behavior) that the HPA controller model cannot replay.
    #[error("cannot replay the HPA: {reason}")]
    UnsupportedHpa { reason: String },
    /// `keda simulate`'s input (series, columns, object) does not allow a replay.
    #[error("{reason}")]
    Simulation { reason: String },
    /// Fallback was due but no value could be computed for it.
    #[error("cannot compute fallback for metric {metric_name}: {reason}")]
    FallbackUnavailable {
        metric_name: String,
        reason: &'static str,
    },
}

impl Error {
    /// A stable, low-cardinality label for metrics and Event reasons (never a Debug string).
    pub fn category(&self) -> &'static str {
        match self {
            Error::MissingMetadata { .. } => "missing-metadata",
            Error::NoMetricSpecs { .. } => "no-metric-specs",
            Error::DuplicateMetricName { .. } => "duplicate-metric-name",
            Error::UnsupportedMetricType { .. } => "unsupported-metric-type",
            Error::InvalidScalingModifiers { .. } => "invalid-scaling-modifiers",
            Error::FormulaSyntax { .. } | Error::FormulaUnknownName { .. } => "formula-invalid",
            Error::FormulaEval { .. } => "formula-eval",
            Error::FallbackUnavailable { .. } => "fallback-unavailable",
            Error::UnsupportedHpa { .. } => "unsupported-hpa",
            Error::Simulation { .. } => "simulation",
        }
    }

    /// True when the error comes from the object's spec: retrying without a spec change cannot help.
    pub fn is_permanent(&self) -> bool {
        !matches!(
            self,
            Error::FallbackUnavailable { .. } | Error::NoMetricSpecs { .. }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories_are_stable_and_transient_errors_are_marked() {
        let cases = [
            (
                Error::DuplicateMetricName {
                    metric_name: "s0-x".into(),
                    scaled_object: "so".into(),
                },
                "duplicate-metric-name",
                true,
            ),
            (
                Error::FallbackUnavailable {
                    metric_name: "s0-x".into(),
                    reason: "no ready pods",
                },
                "fallback-unavailable",
                false,
            ),
            (
                Error::FormulaSyntax {
                    column: 3,
                    message: "x".into(),
                },
                "formula-invalid",
                true,
            ),
        ];
        for (err, category, permanent) in cases {
            assert_eq!(err.category(), category, "{err}");
            assert_eq!(err.is_permanent(), permanent, "{err}");
        }
    }

    #[test]
    fn duplicate_metric_message_matches_upstream_wording() {
        let err = Error::DuplicateMetricName {
            metric_name: "s0-prometheus".into(),
            scaled_object: "app".into(),
        };
        assert_eq!(
            err.to_string(),
            "metricName s0-prometheus defined multiple times in ScaledObject app"
        );
    }
}
