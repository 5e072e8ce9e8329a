//! Fallback: while a trigger keeps failing, the metrics server hands the HPA a synthetic value that steers
//! it to a chosen replica count instead of an error.
//!
//! Per metric, `status.health[metric]` counts consecutive failures ([`record_success`],
//! [`record_failure`]). Once the count exceeds `failureThreshold` ([`should_fallback`]) the value served
//! is `target × replicas` ([`fallback_metric`]), which the HPA turns into about `replicas` pods.

use std::collections::BTreeMap;

use keda_api::ScaledObject;
use keda_api::common::HealthStatus;
use keda_api::scaled_object::{Fallback, FallbackBehavior};

use crate::Error;
use crate::hpa::{MetricTargetType, parse_go_float};

/// `status.health[*].status` of a metric whose last poll succeeded.
pub const HEALTH_HAPPY: &str = "Happy";
/// `status.health[*].status` of a metric whose last poll failed.
pub const HEALTH_FAILING: &str = "Failing";

/// Health after a successful poll: the failure count resets.
pub fn record_success() -> HealthStatus {
    HealthStatus {
        number_of_failures: Some(0),
        status: Some(HEALTH_HAPPY.to_owned()),
    }
}

/// Health after a failed poll: one more consecutive failure.
pub fn record_failure(previous: Option<&HealthStatus>) -> HealthStatus {
    let failures = previous.and_then(|h| h.number_of_failures).unwrap_or(0);
    HealthStatus {
        number_of_failures: Some(failures.saturating_add(1)),
        status: Some(HEALTH_FAILING.to_owned()),
    }
}

/// Fallback applies once a metric failed more than `failure_threshold` times in a row.
pub fn should_fallback(failures: i32, failure_threshold: i32) -> bool {
    failures > failure_threshold
}

/// Whether any metric is in fallback: drives the Fallback condition (`FallbackExists` /
/// `NoFallbackFound`) and its events.
pub fn fallback_exceeded(health: &BTreeMap<String, HealthStatus>, failure_threshold: i32) -> bool {
    health.values().any(|h| {
        h.status.as_deref() == Some(HEALTH_FAILING)
            && should_fallback(h.number_of_failures.unwrap_or(0), failure_threshold)
    })
}

/// Whether `spec.fallback` is set and valid (upstream's `isFallbackEnabled && HasValidFallback`):
/// non-negative threshold and replicas, and with scalingModifiers a target that parses as an integer
/// greater than 0. Health is tracked, and fallback applied, only when this holds.
pub fn has_valid_fallback(so: &ScaledObject) -> bool {
    let Some(fallback) = so.spec.fallback.as_ref() else {
        return false;
    };
    let modifiers_ok = so.spec.scaling_modifiers().is_none_or(|m| {
        m.target
            .as_deref()
            .and_then(|t| t.parse::<i64>().ok())
            .is_some_and(|t| t > 0)
    });
    fallback.failure_threshold >= 0 && fallback.replicas >= 0 && modifiers_ok
}

/// Keeps the health entries of metrics that still exist (upstream prunes them when it rebuilds the HPA).
pub fn prune_health(
    health: &BTreeMap<String, HealthStatus>,
    external_metric_names: &[String],
) -> BTreeMap<String, HealthStatus> {
    health
        .iter()
        .filter(|(name, _)| external_metric_names.contains(name))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The replica count fallback steers to, by `fallback.behavior`.
pub fn fallback_replicas(fallback: &Fallback, current_replicas: i32) -> i32 {
    match fallback.behavior {
        FallbackBehavior::Static | FallbackBehavior::ScalingModifiers => fallback.replicas,
        FallbackBehavior::CurrentReplicas => current_replicas,
        FallbackBehavior::CurrentReplicasIfHigher => current_replicas.max(fallback.replicas),
        FallbackBehavior::CurrentReplicasIfLower => current_replicas.min(fallback.replicas),
    }
}

/// What the metrics server returns for a metric in fallback.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FallbackMetric {
    /// Serve this value, in thousandths (`resource.NewMilliQuantity(milli, DecimalSI)`).
    Milli(i64),
    /// `behavior: scalingModifiers`: the metric becomes `nil` in the formula, where `??` can replace it.
    NilInFormula,
}

/// The metric target a fallback value is computed against: the trigger's own target, or with
/// scalingModifiers the composite target (see [`FallbackTarget::for_scaled_object`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FallbackTarget {
    pub target_type: MetricTargetType,
    pub value: f64,
}

impl FallbackTarget {
    /// The target fallback normalises by: with scalingModifiers, `scalingModifiers.target` and
    /// `metricType` (the HPA only sees the composite metric); otherwise the trigger's `trigger_target`.
    pub fn for_scaled_object(
        so: &ScaledObject,
        trigger_target: FallbackTarget,
    ) -> Result<FallbackTarget, Error> {
        let Some(modifiers) = so.spec.scaling_modifiers() else {
            return Ok(trigger_target);
        };
        let raw = modifiers.target.as_deref().unwrap_or_default();
        let value = parse_go_float(raw).ok_or_else(|| Error::InvalidScalingModifiers {
            reason: format!("target {raw:?} is not a number"),
        })?;
        Ok(FallbackTarget {
            target_type: modifiers
                .metric_type
                .map_or(MetricTargetType::AverageValue, MetricTargetType::from),
            value,
        })
    }
}

/// upstream's `doFallback`: `int64(target × 1000 × replicas)`, where replicas follows the behavior and,
/// for a `Value` target, is divided by the number of ready pods (the HPA multiplies a Value metric by the
/// pod count, so this keeps the result at `replicas`). `ready_replicas` is only read for `Value` targets;
/// zero or unknown ready pods make fallback impossible for them.
pub fn fallback_metric(
    metric_name: &str,
    fallback: &Fallback,
    current_replicas: i32,
    target: FallbackTarget,
    ready_replicas: Option<i32>,
) -> Result<FallbackMetric, Error> {
    if fallback.behavior == FallbackBehavior::ScalingModifiers {
        return Ok(FallbackMetric::NilInFormula);
    }
    let mut replicas = f64::from(fallback_replicas(fallback, current_replicas));
    if target.target_type == MetricTargetType::Value {
        let unavailable = |reason| Error::FallbackUnavailable {
            metric_name: metric_name.to_owned(),
            reason,
        };
        match ready_replicas {
            None => return Err(unavailable("the number of ready pods is unknown")),
            Some(0) => return Err(unavailable("readyReplicas is zero, cannot do fallback")),
            Some(ready) => replicas /= f64::from(ready),
        }
    }
    Ok(FallbackMetric::Milli(crate::quantity::f64_to_milli(
        target.value * replicas,
    )))
}

/// The composite value when a scalingModifiers formula evaluates to `nil` (every input failed and `??`
/// had nothing left): `fallback.replicas × scalingModifiers.target`.
pub fn nil_formula_value(so: &ScaledObject) -> Result<f64, Error> {
    let fallback = so
        .spec
        .fallback
        .as_ref()
        .ok_or_else(|| Error::InvalidScalingModifiers {
            reason: "formula evaluated to nil but no fallback is configured".to_owned(),
        })?;
    let raw = so
        .spec
        .scaling_modifiers()
        .and_then(|m| m.target.as_deref())
        .unwrap_or_default();
    let target = parse_go_float(raw).ok_or_else(|| Error::InvalidScalingModifiers {
        reason: format!("formula evaluated to nil and target {raw:?} is not a valid float"),
    })?;
    Ok(f64::from(fallback.replicas) * target)
}

/// The value a trigger contributes to the formula: `None` (nil) when `behavior: scalingModifiers` is set
/// and its metric is past the failure threshold, so `??` can substitute it.
pub fn formula_input(so: &ScaledObject, metric_name: &str, value: f64) -> Option<f64> {
    let Some(fallback) = so.spec.fallback.as_ref() else {
        return Some(value);
    };
    if fallback.behavior != FallbackBehavior::ScalingModifiers {
        return Some(value);
    }
    let failures = so
        .status
        .as_ref()
        .and_then(|s| s.health.as_ref())
        .and_then(|h| h.get(metric_name))
        .and_then(|h| h.number_of_failures);
    match failures {
        Some(n) if should_fallback(n, fallback.failure_threshold) => None,
        _ => Some(value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    fn fallback(behavior: FallbackBehavior, replicas: i32) -> Fallback {
        Fallback {
            failure_threshold: 3,
            replicas,
            behavior,
        }
    }

    fn avg(value: f64) -> FallbackTarget {
        FallbackTarget {
            target_type: MetricTargetType::AverageValue,
            value,
        }
    }

    #[test]
    fn health_counting() {
        let first = record_failure(None);
        assert_eq!(first.number_of_failures, Some(1));
        assert_eq!(first.status.as_deref(), Some("Failing"));
        let second = record_failure(Some(&first));
        assert_eq!(second.number_of_failures, Some(2));
        let reset = record_success();
        assert_eq!(reset.number_of_failures, Some(0));
        assert_eq!(reset.status.as_deref(), Some("Happy"));
        assert_eq!(record_failure(Some(&reset)).number_of_failures, Some(1));

        assert!(!should_fallback(3, 3), "strictly more than the threshold");
        assert!(should_fallback(4, 3));
        assert!(should_fallback(1, 0));

        let health = BTreeMap::from([
            ("s0-a".to_owned(), record_success()),
            (
                "s1-b".to_owned(),
                HealthStatus {
                    number_of_failures: Some(4),
                    status: Some(HEALTH_FAILING.into()),
                },
            ),
        ]);
        assert!(fallback_exceeded(&health, 3));
        assert!(!fallback_exceeded(&health, 4));
        let pruned = prune_health(&health, &["s1-b".to_owned(), "s2-c".to_owned()]);
        assert_eq!(pruned.keys().collect::<Vec<_>>(), vec!["s1-b"]);
    }

    #[test]
    fn fallback_value_for_every_behavior() {
        use FallbackBehavior::*;
        // (behavior, fallback.replicas, current, target, ready pods, expected)
        let value = |v| FallbackTarget {
            target_type: MetricTargetType::Value,
            value: v,
        };
        let cases: Vec<(
            FallbackBehavior,
            i32,
            i32,
            FallbackTarget,
            Option<i32>,
            FallbackMetric,
        )> = vec![
            (Static, 5, 2, avg(10.0), None, FallbackMetric::Milli(50_000)),
            (Static, 5, 9, avg(0.5), None, FallbackMetric::Milli(2_500)),
            (
                CurrentReplicas,
                5,
                2,
                avg(10.0),
                None,
                FallbackMetric::Milli(20_000),
            ),
            (
                CurrentReplicasIfHigher,
                5,
                2,
                avg(10.0),
                None,
                FallbackMetric::Milli(50_000),
            ),
            (
                CurrentReplicasIfHigher,
                5,
                8,
                avg(10.0),
                None,
                FallbackMetric::Milli(80_000),
            ),
            (
                CurrentReplicasIfLower,
                5,
                2,
                avg(10.0),
                None,
                FallbackMetric::Milli(20_000),
            ),
            (
                CurrentReplicasIfLower,
                5,
                8,
                avg(10.0),
                None,
                FallbackMetric::Milli(50_000),
            ),
            (
                ScalingModifiers,
                5,
                8,
                avg(10.0),
                None,
                FallbackMetric::NilInFormula,
            ),
            // Value targets: divided by ready pods (5 × 10 / 4 = 12.5).
            (
                Static,
                5,
                2,
                value(10.0),
                Some(4),
                FallbackMetric::Milli(12_500),
            ),
            // Truncated like Go's int64 conversion: 1 × 1/3 × 1000 = 333.33… → 333.
            (
                Static,
                1,
                0,
                value(1.0),
                Some(3),
                FallbackMetric::Milli(333),
            ),
        ];
        for (behavior, replicas, current, target, ready, want) in cases {
            let got = fallback_metric(
                "s0-x",
                &fallback(behavior, replicas),
                current,
                target,
                ready,
            );
            assert_eq!(
                got,
                Ok(want),
                "{behavior:?} replicas={replicas} current={current} {target:?}"
            );
        }
        assert_eq!(
            fallback_replicas(&fallback(CurrentReplicasIfLower, 5), 3),
            3
        );
    }

    #[test]
    fn value_target_needs_ready_pods() {
        let target = FallbackTarget {
            target_type: MetricTargetType::Value,
            value: 10.0,
        };
        for ready in [None, Some(0)] {
            let got = fallback_metric(
                "s0-x",
                &fallback(FallbackBehavior::Static, 5),
                1,
                target,
                ready,
            );
            assert!(
                matches!(&got, Err(Error::FallbackUnavailable { metric_name, .. }) if metric_name == "s0-x"),
                "{ready:?}: {got:?}"
            );
        }
    }

    fn so(yaml_spec_tail: &str) -> ScaledObject {
        serde_yaml_ng::from_str(&format!(
            r#"
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {{name: w}}
spec:
  scaleTargetRef: {{name: web}}
  triggers: [{{type: cron, name: a, metadata: {{}}}}]
{yaml_spec_tail}
"#
        ))
        .expect("parses")
    }

    #[test]
    fn validity_and_modifier_targets() {
        let cases = [
            ("", false),
            ("  fallback: {failureThreshold: 3, replicas: 5}", true),
            ("  fallback: {failureThreshold: -1, replicas: 5}", false),
            ("  fallback: {failureThreshold: 3, replicas: -1}", false),
            (
                "  fallback: {failureThreshold: 3, replicas: 5}\n  advanced: {scalingModifiers: {formula: a, target: \"10\"}}",
                true,
            ),
            (
                "  fallback: {failureThreshold: 3, replicas: 5}\n  advanced: {scalingModifiers: {formula: a, target: \"2.5\"}}",
                false,
            ),
        ];
        for (tail, want) in cases {
            assert_eq!(has_valid_fallback(&so(tail)), want, "{tail}");
        }
        let s = so(
            "  fallback: {failureThreshold: 3, replicas: 5}\n  advanced: {scalingModifiers: {formula: a, target: \"10\", metricType: Value}}",
        );
        assert_eq!(
            FallbackTarget::for_scaled_object(&s, avg(1.0)),
            Ok(FallbackTarget {
                target_type: MetricTargetType::Value,
                value: 10.0
            })
        );
        assert_eq!(
            FallbackTarget::for_scaled_object(&so(""), avg(1.0)),
            Ok(avg(1.0))
        );
        assert_eq!(nil_formula_value(&s), Ok(50.0));
        assert!(
            nil_formula_value(&so(
                "  advanced: {scalingModifiers: {formula: a, target: \"10\"}}"
            ))
            .is_err()
        );
    }

    #[test]
    fn failing_metric_becomes_nil_for_scaling_modifiers_behavior() {
        let s = so(
            r#"  fallback: {failureThreshold: 2, replicas: 5, behavior: scalingModifiers}
  advanced: {scalingModifiers: {formula: "a ?? 1", target: "10"}}
status:
  health:
    s0-a: {numberOfFailures: 3, status: Failing}
    s1-b: {numberOfFailures: 2, status: Failing}"#,
        );
        assert_eq!(formula_input(&s, "s0-a", 7.0), None);
        assert_eq!(
            formula_input(&s, "s1-b", 7.0),
            Some(7.0),
            "at the threshold"
        );
        assert_eq!(formula_input(&s, "s2-c", 7.0), Some(7.0), "no health entry");
        let static_behavior = so("  fallback: {failureThreshold: 0, replicas: 5}");
        assert_eq!(formula_input(&static_behavior, "s0-a", 7.0), Some(7.0));
    }
}
