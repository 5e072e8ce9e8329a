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

/// The composite metric's value while a trigger is in fallback: upstream's `doFallback` with the
/// `scalingModifiers` target, `target × replicas` (replicas by `fallback.behavior`; for a `Value`
/// metricType divided by `ready_pods`). `None` when it cannot be computed.
pub fn composite_fallback_value(so: &ScaledObject, current: i32, ready_pods: i32) -> Option<f64> {
    let fb = so.spec.fallback.as_ref()?;
    so.spec.scaling_modifiers()?;
    let target = FallbackTarget::for_scaled_object(
        so,
        FallbackTarget {
            target_type: MetricTargetType::AverageValue,
            value: 0.0,
        },
    )
    .ok()?;
    match fallback_metric(
        keda_api::consts::names::COMPOSITE_METRIC,
        fb,
        current,
        target,
        Some(ready_pods),
    ) {
        Ok(FallbackMetric::Milli(m)) => Some(m as f64 / 1000.0),
        _ => None,
    }
}

/// How one external metric came out of one poll once fallback is applied (upstream's
/// `GetMetricsWithFallback`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum MetricState {
    /// The scaler answered.
    Value { value: f64, active: bool },
    /// The scaler failed and the metric is not in fallback: an error of this poll.
    Failed,
    /// The scaler failed more than `failureThreshold` times in a row: the HPA is served the fallback
    /// value, and the metric counts as active and not as an error (upstream `isActiveOrFallback`).
    Fallback,
    /// As [`MetricState::Fallback`] with `behavior: scalingModifiers`: the metric is `nil` in the formula
    /// (where `??` can replace it); neither active nor an error.
    NilInFormula,
}

/// One poll's result for one metric, and its health afterwards. Health is tracked only for a valid
/// fallback (`valid_fallback`, see [`has_valid_fallback`]); otherwise it is `None` and a failure is
/// simply [`MetricState::Failed`].
pub fn track_metric(
    valid_fallback: Option<&Fallback>,
    previous: Option<&HealthStatus>,
    sample: Option<(f64, bool)>,
) -> (Option<HealthStatus>, MetricState) {
    match (sample, valid_fallback) {
        (Some((value, active)), fb) => (
            fb.map(|_| record_success()),
            MetricState::Value { value, active },
        ),
        (None, None) => (None, MetricState::Failed),
        (None, Some(fb)) => {
            let health = record_failure(previous);
            let failures = health.number_of_failures.unwrap_or(0);
            let state = if !should_fallback(failures, fb.failure_threshold) {
                MetricState::Failed
            } else if fb.behavior == FallbackBehavior::ScalingModifiers {
                MetricState::NilInFormula
            } else {
                MetricState::Fallback
            };
            (Some(health), state)
        }
    }
}

/// The state of a metric from its health alone, without a new sample (what the metrics service uses
/// between two polls of the scale loop): in fallback or not.
pub fn state_from_health(
    valid_fallback: Option<&Fallback>,
    health: Option<&HealthStatus>,
) -> Option<MetricState> {
    let fb = valid_fallback?;
    let h = health?;
    let failing = h.status.as_deref() == Some(HEALTH_FAILING)
        && should_fallback(h.number_of_failures.unwrap_or(0), fb.failure_threshold);
    failing.then_some(if fb.behavior == FallbackBehavior::ScalingModifiers {
        MetricState::NilInFormula
    } else {
        MetricState::Fallback
    })
}

/// What one poll says about the whole ScaledObject (upstream's `getScaledObjectState`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PollSummary {
    pub is_active: bool,
    pub is_error: bool,
    /// At least one metric is in [`MetricState::Fallback`]: drives the Fallback condition and its Events.
    pub fallback_active: bool,
    /// With scalingModifiers: the composite metric's value (`None` when it could not be computed).
    pub composite: Option<f64>,
}

/// The composite metric of a ScaledObject with `scalingModifiers`, as one poll needs it.
pub struct Composite<'a> {
    pub formula: &'a crate::formula::Formula,
    pub activation_target: f64,
    /// The value served while a metric is in fallback: `scalingModifiers.target × fallback replicas`
    /// (upstream `doFallback` with the composite target), computed by the caller.
    pub fallback_value: Option<f64>,
    /// `fallback.replicas × target`, for a formula that evaluates to nil; `None` without a fallback.
    pub nil_value: Option<f64>,
}

/// Combines the metrics of one poll. `metrics` are the external metrics with their trigger name (the
/// formula's variable); `only_resource_triggers` forces activity when every trigger is cpu/memory and
/// nothing failed, as upstream (those never scale from zero themselves).
pub fn summarize(
    metrics: &[(Option<&str>, MetricState)],
    only_resource_triggers: bool,
    composite: Option<Composite<'_>>,
) -> PollSummary {
    let mut is_error = metrics.iter().any(|(_, s)| *s == MetricState::Failed);
    let fallback_active = metrics.iter().any(|(_, s)| *s == MetricState::Fallback);
    let (mut is_active, composite_value) = match composite {
        None => (
            metrics.iter().any(|(_, s)| {
                matches!(
                    s,
                    MetricState::Fallback | MetricState::Value { active: true, .. }
                )
            }),
            None,
        ),
        Some(c) => {
            let value = if fallback_active {
                c.fallback_value
            } else {
                let vars: std::collections::HashMap<String, Option<f64>> = metrics
                    .iter()
                    .filter_map(|(name, s)| {
                        let v = match s {
                            MetricState::Value { value, .. } => Some(*value),
                            _ => None,
                        };
                        name.map(|n| (n.to_owned(), v))
                    })
                    .collect();
                match c.formula.eval(&vars) {
                    Ok(Some(v)) => Some(v),
                    Ok(None) => c.nil_value,
                    Err(_) => None,
                }
            };
            if value.is_none() {
                // A formula that cannot be computed is an error of the poll, never a silent activity.
                is_error = true;
            }
            (
                !is_error
                    && value.is_some_and(|v| crate::activation::is_active(v, c.activation_target)),
                value,
            )
        }
    };
    if only_resource_triggers && !is_error {
        is_active = true;
    }
    PollSummary {
        is_active,
        is_error,
        fallback_active,
        composite: composite_value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    #[test]
    fn composite_fallback_is_the_modifiers_target_times_the_fallback_replicas() {
        let so: keda_api::ScaledObject = serde_yaml_ng::from_str(
            r#"
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: w}
spec:
  scaleTargetRef: {name: web}
  fallback: {failureThreshold: 1, replicas: 6}
  advanced: {scalingModifiers: {formula: "a + b", target: "10"}}
  triggers: [{type: cron, name: a, metadata: {}}, {type: cron, name: b, metadata: {}}]
"#,
        )
        .expect("parses");
        assert_eq!(composite_fallback_value(&so, 2, 2), Some(60.0));
        let mut value_type = so.clone();
        if let Some(m) = value_type
            .spec
            .advanced
            .as_mut()
            .and_then(|a| a.scaling_modifiers.as_mut())
        {
            m.metric_type = Some(keda_api::scaled_object::ModifierMetricType::Value);
        }
        // Value: divided by the ready pods (6 × 10 / 3).
        assert_eq!(composite_fallback_value(&value_type, 2, 3), Some(20.0));
        assert_eq!(composite_fallback_value(&value_type, 2, 0), None);
        let mut no_fallback = so;
        no_fallback.spec.fallback = None;
        assert_eq!(composite_fallback_value(&no_fallback, 2, 2), None);
    }

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
    fn a_metric_enters_fallback_after_the_threshold_and_counts_as_active() {
        use MetricState::*;
        let fb = fallback(FallbackBehavior::Static, 5);
        let modifiers = keda_api::scaled_object::Fallback {
            behavior: FallbackBehavior::ScalingModifiers,
            ..fb.clone()
        };
        // failureThreshold 3: failures 1..=3 are errors, the 4th and later are fallback.
        let mut health = None;
        let mut states = Vec::new();
        for _ in 0..5 {
            let (h, s) = track_metric(Some(&fb), health.as_ref(), None);
            states.push(s);
            health = h;
        }
        assert_eq!(states, vec![Failed, Failed, Failed, Fallback, Fallback]);
        assert_eq!(
            state_from_health(Some(&fb), health.as_ref()),
            Some(Fallback)
        );
        assert_eq!(
            state_from_health(Some(&modifiers), health.as_ref()),
            Some(NilInFormula)
        );
        assert_eq!(state_from_health(None, health.as_ref()), None);
        let (h, s) = track_metric(Some(&fb), health.as_ref(), Some((2.0, true)));
        assert_eq!(
            (h, s),
            (
                Some(record_success()),
                Value {
                    value: 2.0,
                    active: true
                }
            )
        );
        assert_eq!(state_from_health(Some(&fb), Some(&record_success())), None);
        // Without a (valid) fallback nothing is tracked and a failure is an error.
        assert_eq!(track_metric(None, None, None), (None, Failed));
        assert_eq!(
            track_metric(None, None, Some((1.0, false))),
            (
                None,
                Value {
                    value: 1.0,
                    active: false
                }
            )
        );
        let (_, s) = track_metric(Some(&modifiers), health.as_ref(), None);
        assert_eq!(s, NilInFormula);
    }

    #[test]
    fn poll_summary_table() {
        use MetricState::*;
        let formula = crate::formula::compile("a + (b ?? 0)", ["a", "b"]).expect("compiles");
        let composite = |fallback_value, nil_value| {
            Some(Composite {
                formula: &formula,
                activation_target: 1.0,
                fallback_value,
                nil_value,
            })
        };
        let on = Value {
            value: 3.0,
            active: true,
        };
        let off = Value {
            value: 0.0,
            active: false,
        };
        // (metrics, only cpu/memory, composite?) -> (active, error, fallback, composite value)
        type Case<'a> = (
            Vec<(Option<&'a str>, MetricState)>,
            bool,
            bool,
            (bool, bool, bool, Option<f64>),
        );
        let cases: Vec<Case<'_>> = vec![
            (vec![(None, on)], false, false, (true, false, false, None)),
            (vec![(None, off)], false, false, (false, false, false, None)),
            (
                vec![(None, off), (None, Failed)],
                false,
                false,
                (false, true, false, None),
            ),
            (
                vec![(None, on), (None, Failed)],
                false,
                false,
                (true, true, false, None),
            ),
            // A metric in fallback is active and not an error (upstream isActiveOrFallback).
            (
                vec![(None, Fallback)],
                false,
                false,
                (true, false, true, None),
            ),
            (
                vec![(None, NilInFormula)],
                false,
                false,
                (false, false, false, None),
            ),
            // cpu/memory only: forced active unless something failed.
            (vec![], true, false, (true, false, false, None)),
            (
                vec![(None, Failed)],
                true,
                false,
                (false, true, false, None),
            ),
            // Composite: above / not above the activation target (1.0).
            (
                vec![
                    (
                        Some("a"),
                        Value {
                            value: 0.5,
                            active: false,
                        },
                    ),
                    (
                        Some("b"),
                        Value {
                            value: 1.0,
                            active: true,
                        },
                    ),
                ],
                false,
                true,
                (true, false, false, Some(1.5)),
            ),
            (
                vec![
                    (
                        Some("a"),
                        Value {
                            value: 0.5,
                            active: true,
                        },
                    ),
                    (
                        Some("b"),
                        Value {
                            value: 0.5,
                            active: true,
                        },
                    ),
                ],
                false,
                true,
                (false, false, false, Some(1.0)),
            ),
            // A failing trigger makes the poll an error and the composite inactive.
            (
                vec![(Some("a"), on), (Some("b"), Failed)],
                false,
                true,
                (false, true, false, Some(3.0)),
            ),
            // behavior scalingModifiers: nil replaced by `??`.
            (
                vec![(Some("a"), on), (Some("b"), NilInFormula)],
                false,
                true,
                (true, false, false, Some(3.0)),
            ),
            // In fallback the composite is the fallback value itself (upstream doFallback), here 50.
            (
                vec![(Some("a"), on), (Some("b"), Fallback)],
                false,
                true,
                (true, false, true, Some(50.0)),
            ),
        ];
        for (metrics, only_resource, with_composite, want) in cases {
            let got = summarize(
                &metrics,
                only_resource,
                if with_composite {
                    composite(Some(50.0), Some(20.0))
                } else {
                    None
                },
            );
            assert_eq!(
                (
                    got.is_active,
                    got.is_error,
                    got.fallback_active,
                    got.composite
                ),
                want,
                "{metrics:?} only_resource={only_resource}"
            );
        }
        // A formula that cannot be computed (nil without fallback) is an error, not activity.
        let nil_formula = crate::formula::compile("a ?? b", ["a", "b"]).expect("compiles");
        let got = summarize(
            &[(Some("a"), NilInFormula), (Some("b"), NilInFormula)],
            false,
            Some(Composite {
                formula: &nil_formula,
                activation_target: 0.0,
                fallback_value: None,
                nil_value: None,
            }),
        );
        assert!(
            got.is_error && !got.is_active && got.composite.is_none(),
            "{got:?}"
        );
    }
}
