//! How many Jobs a ScaledJob creates per poll.
//!
//! Per scaler: the queue length (sum of its metric values) and `maxValue = min(queue / target, max)`.
//! The scalers combine by `multipleScalersCalculation` ([`combine_scalers`]); then the scaling strategy
//! turns the queue, the running and the pending Jobs into the number of Jobs to create
//! ([`jobs_to_create`]). The Jobs themselves (building, counting, history, rollout) are in [`jobs`].

pub mod jobs;

use keda_api::ScaledJob;
use keda_api::scaled_job::{
    MultipleScalersCalculation, ScaledJobSpec, ScalingStrategy, ScalingStrategyKind,
};

/// Default `maxReplicaCount` of a ScaledJob.
pub const DEFAULT_MAX_REPLICA_COUNT: i64 = 100;

/// Effective maximum of Jobs on top of the always-running minimum: `max - min`, or `max` when min > max,
/// or 100 when max is unset (upstream does not subtract min in that case).
pub fn max_replica_count(spec: &ScaledJobSpec) -> i64 {
    match (spec.max_replica_count, spec.min_replica_count) {
        (Some(max), Some(min)) if min > max => i64::from(max),
        (Some(max), _) => i64::from(max) - min_replica_count(spec),
        (None, _) => DEFAULT_MAX_REPLICA_COUNT,
    }
}

/// Jobs kept running even without activity: `minReplicaCount`, capped at `maxReplicaCount`.
pub fn min_replica_count(spec: &ScaledJobSpec) -> i64 {
    match (spec.min_replica_count, spec.max_replica_count) {
        (Some(min), Some(max)) if min > max => i64::from(max),
        (Some(min), _) => i64::from(min),
        (None, _) => 0,
    }
}

/// What one scaler contributes.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ScalerMetrics {
    /// Sum of the scaler's metric values.
    pub queue_length: f64,
    /// Jobs this scaler alone asks for: `min(queue_length / target, maxReplicaCount())`.
    pub max_value: f64,
    pub is_active: bool,
}

/// upstream's `CalculateQueueLengthAndMaxValue` for one scaler: `values` are the samples of its (first)
/// metric, `targets` the `averageValue` targets of all its metric specs (`None` for `Value` targets, which
/// count as 0). The target is their average; a zero target gives `max_value` 0.
pub fn scaler_metrics(
    values: &[f64],
    targets: &[Option<f64>],
    is_active: bool,
    max_replica_count: i64,
) -> ScalerMetrics {
    let queue_length: f64 = values.iter().sum();
    let target = average_target(targets);
    let max_value = if target == 0.0 {
        0.0
    } else {
        (queue_length / target).min(max_replica_count as f64)
    };
    ScalerMetrics {
        queue_length,
        max_value,
        is_active,
    }
}

/// upstream's `GetTargetAverageValue`: the mean of the `averageValue` targets (a missing one counts as
/// 0), 0 without any.
pub fn average_target(targets: &[Option<f64>]) -> f64 {
    if targets.is_empty() {
        return 0.0;
    }
    targets.iter().map(|t| t.unwrap_or(0.0)).sum::<f64>() / targets.len() as f64
}

/// The ScaledJob's activity and scale after combining its scalers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct JobsActivity {
    /// Any counted scaler active, or `minReplicaCount > 0`.
    pub is_active: bool,
    /// `ceil(queue length)`: the "scaleTo" of the strategies.
    pub scale_to: i64,
    /// `ceil(min(max value, maxReplicaCount()))`: the "maxScale" of the strategies.
    pub max_scale: i64,
    /// The uncapped-to-integer max value, for logs.
    pub max_value: f64,
}

/// upstream's `IsScaledJobActive`: combines active scalers by `multipleScalersCalculation` (default max).
/// `min` and `max` pick the scaler with the smallest / largest queue (first one wins ties); `avg` and `sum`
/// aggregate queue and max value over active scalers.
pub fn combine_scalers(
    scalers: &[ScalerMetrics],
    calculation: Option<MultipleScalersCalculation>,
    min_replica_count: i64,
    max_replica_count: i64,
) -> JobsActivity {
    let mut queue_length = 0.0;
    let mut max_value = 0.0;
    let mut is_active = false;
    let active = scalers.iter().filter(|s| s.is_active);
    match calculation.unwrap_or(MultipleScalersCalculation::Max) {
        MultipleScalersCalculation::Min => {
            for s in active {
                // A queue of 0 counts as "none chosen yet", as upstream.
                if queue_length == 0.0 || s.queue_length < queue_length {
                    queue_length = s.queue_length;
                    max_value = s.max_value;
                    is_active = true;
                }
            }
        }
        MultipleScalersCalculation::Avg => {
            let (mut count, mut queue_sum, mut max_sum) = (0usize, 0.0, 0.0);
            for s in active {
                queue_sum += s.queue_length;
                max_sum += s.max_value;
                count += 1;
            }
            if count > 0 {
                queue_length = queue_sum / count as f64;
                max_value = max_sum / count as f64;
                is_active = true;
            }
        }
        MultipleScalersCalculation::Sum => {
            for s in active {
                queue_length += s.queue_length;
                max_value += s.max_value;
                is_active = true;
            }
        }
        MultipleScalersCalculation::Max => {
            for s in active {
                if s.queue_length > queue_length {
                    queue_length = s.queue_length;
                    max_value = s.max_value;
                    is_active = true;
                }
            }
        }
    }
    if min_replica_count > 0 {
        is_active = true;
    }
    let max_value = max_value.min(max_replica_count as f64);
    JobsActivity {
        is_active,
        scale_to: queue_length.ceil() as i64,
        max_scale: max_value.ceil() as i64,
        max_value,
    }
}

/// A ScaledJob scaling strategy with its parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Strategy {
    /// Create up to `maxScale - running`.
    Default,
    /// `min(maxScale - deduction - int(running × percentage), maxReplicaCount())`.
    Custom {
        queue_length_deduction: i64,
        running_job_percentage: f64,
    },
    /// Counts pending Jobs as already serving the queue.
    Accurate,
    /// Fills up to `maxReplicaCount()` as soon as there is work.
    Eager,
}

impl Strategy {
    /// `scalingStrategy` as upstream reads it: `custom` with an unparsable (or unset)
    /// `customScalingRunningJobPercentage` falls back to `default`.
    pub fn from_spec(strategy: Option<&ScalingStrategy>) -> Strategy {
        let Some(s) = strategy else {
            return Strategy::Default;
        };
        match s.strategy {
            Some(ScalingStrategyKind::Custom) => {
                let percentage = s
                    .custom_scaling_running_job_percentage
                    .as_deref()
                    .and_then(|p| p.parse::<f64>().ok());
                match percentage {
                    Some(running_job_percentage) => Strategy::Custom {
                        queue_length_deduction: s
                            .custom_scaling_queue_length_deduction
                            .map_or(0, i64::from),
                        running_job_percentage,
                    },
                    None => Strategy::Default,
                }
            }
            Some(ScalingStrategyKind::Accurate) => Strategy::Accurate,
            Some(ScalingStrategyKind::Eager) => Strategy::Eager,
            Some(ScalingStrategyKind::Default) | None => Strategy::Default,
        }
    }

    /// `(effective max scale, scale to)` for `running` Jobs above the minimum and `pending` ones.
    pub fn effective_max_scale(
        self,
        max_scale: i64,
        running: i64,
        pending: i64,
        max_replica_count: i64,
        scale_to: i64,
    ) -> (i64, i64) {
        match self {
            Strategy::Default => (max_scale - running, scale_to),
            Strategy::Custom {
                queue_length_deduction,
                running_job_percentage,
            } => {
                // Go's int64(float64) conversion truncates toward zero.
                let running_share = (running as f64 * running_job_percentage) as i64;
                (
                    (max_scale - queue_length_deduction - running_share).min(max_replica_count),
                    scale_to,
                )
            }
            Strategy::Accurate => {
                if max_scale + running - pending > max_replica_count {
                    (max_replica_count - running, scale_to)
                } else {
                    (max_scale - pending, scale_to)
                }
            }
            Strategy::Eager => (
                (max_replica_count - running - pending).min(max_scale),
                max_replica_count,
            ),
        }
    }
}

/// upstream's `getScalingDecision`: below `minReplicaCount` running Jobs, the missing ones; otherwise the
/// strategy applied to the Jobs above the minimum. Returns `(effective max scale, scale to)`.
pub fn scaling_decision(
    spec: &ScaledJobSpec,
    running: i64,
    pending: i64,
    scale_to: i64,
    max_scale: i64,
) -> (i64, i64) {
    let min = min_replica_count(spec);
    if running < min {
        let missing = min - running;
        return (missing, missing);
    }
    Strategy::from_spec(spec.scaling_strategy.as_ref()).effective_max_scale(
        max_scale,
        running - min,
        pending,
        max_replica_count(spec),
        scale_to,
    )
}

/// The number of Jobs to create this poll: `min(scaleTo, max(effective max scale, 0))`, and none while
/// the ScaledJob is inactive.
pub fn jobs_to_create(job: &ScaledJob, activity: &JobsActivity, running: i64, pending: i64) -> i64 {
    if !activity.is_active {
        return 0;
    }
    let (effective_max, scale_to) = scaling_decision(
        &job.spec,
        running,
        pending,
        activity.scale_to,
        activity.max_scale,
    );
    if effective_max <= 0 {
        return 0;
    }
    scale_to.min(effective_max).max(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    fn spec(min: Option<i32>, max: Option<i32>, strategy: &str) -> ScaledJobSpec {
        let job: ScaledJob = serde_yaml_ng::from_str(&format!(
            r#"
apiVersion: keda.sh/v1alpha1
kind: ScaledJob
metadata: {{name: j}}
spec:
  jobTargetRef: {{template: {{spec: {{containers: [{{name: c, image: busybox}}]}}}}}}
  scalingStrategy: {strategy}
  triggers: [{{type: rabbitmq, metadata: {{}}}}]
"#
        ))
        .expect("parses");
        ScaledJobSpec {
            min_replica_count: min,
            max_replica_count: max,
            ..job.spec
        }
    }

    fn strategy(yaml: &str) -> Strategy {
        Strategy::from_spec(spec(None, None, yaml).scaling_strategy.as_ref())
    }

    #[test]
    fn effective_replica_counts() {
        let cases = [
            (None, None, 100, 0),
            (Some(2), Some(10), 8, 2),
            (Some(10), Some(5), 5, 5),
            (Some(5), None, 100, 5),
            (None, Some(7), 7, 0),
            // upstream's table (reference §10 A): (min, max, Max', Min').
            (Some(0), Some(10), 10, 0),
            (None, Some(10), 10, 0),
            (Some(1), Some(10), 9, 1),
            (Some(1), None, 100, 1),
            (Some(10), Some(1), 1, 1),
        ];
        for (min, max, want_max, want_min) in cases {
            let s = spec(min, max, "{}");
            assert_eq!(max_replica_count(&s), want_max, "min {min:?} max {max:?}");
            assert_eq!(min_replica_count(&s), want_min, "min {min:?} max {max:?}");
        }
    }

    #[test]
    fn strategy_selection() {
        let cases = [
            ("{}", Strategy::Default),
            ("{strategy: default}", Strategy::Default),
            ("{strategy: accurate}", Strategy::Accurate),
            ("{strategy: eager}", Strategy::Eager),
            (
                r#"{strategy: custom, customScalingQueueLengthDeduction: 10, customScalingRunningJobPercentage: "0"}"#,
                Strategy::Custom {
                    queue_length_deduction: 10,
                    running_job_percentage: 0.0,
                },
            ),
            (
                r#"{strategy: custom, customScalingRunningJobPercentage: "0.5"}"#,
                Strategy::Custom {
                    queue_length_deduction: 0,
                    running_job_percentage: 0.5,
                },
            ),
            // Unparsable or missing percentage: default.
            (
                r#"{strategy: custom, customScalingQueueLengthDeduction: 1, customScalingRunningJobPercentage: ""}"#,
                Strategy::Default,
            ),
            ("{strategy: custom}", Strategy::Default),
            (
                r#"{strategy: custom, customScalingRunningJobPercentage: "half"}"#,
                Strategy::Default,
            ),
        ];
        for (yaml, want) in cases {
            assert_eq!(strategy(yaml), want, "{yaml}");
        }
    }

    #[test]
    fn strategy_formulas() {
        let custom = |d, p| Strategy::Custom {
            queue_length_deduction: d,
            running_job_percentage: p,
        };
        // (strategy, maxScale, running, pending, maxReplicaCount, scaleTo) -> (effective max, scale to)
        let cases = [
            (Strategy::Default, [3, 2, 0, 5, 1], (1, 1)),
            (Strategy::Default, [2, 0, 0, 5, 1], (2, 1)),
            (custom(1, 0.5), [3, 2, 0, 5, 1], (1, 1)),
            (custom(1, 0.5), [10, 0, 0, 10, 1], (9, 1)),
            (custom(2, 0.0), [3, 2, 0, 5, 1], (1, 1)),
            (custom(-2, 0.0), [3, 2, 0, 4, 1], (4, 1)),
            (custom(0, 0.5), [10, 2, 0, 100, 1], (9, 1)),
            (custom(0, 0.5), [10, 0, 0, 100, 1], (10, 1)),
            (custom(0, 0.5), [10, 3, 0, 100, 1], (9, 1)),
            (Strategy::Accurate, [3, 2, 0, 5, 1], (3, 1)),
            (Strategy::Accurate, [5, 2, 0, 5, 1], (3, 1)),
            (Strategy::Accurate, [3, 4, 2, 10, 1], (1, 1)),
            (Strategy::Accurate, [5, 4, 2, 5, 1], (1, 1)),
            (Strategy::Accurate, [3, 3, 3, 5, 1], (0, 1)),
            (Strategy::Accurate, [15, 15, 15, 20, 1], (0, 1)),
            (Strategy::Accurate, [10, 10, 10, 15, 1], (0, 1)),
            (Strategy::Accurate, [20, 15, 10, 20, 1], (5, 1)),
            (Strategy::Eager, [4, 3, 0, 10, 1], (4, 10)),
            (Strategy::Eager, [4, 0, 3, 10, 1], (4, 10)),
            (Strategy::Eager, [4, 7, 0, 10, 1], (3, 10)),
            (Strategy::Eager, [4, 1, 6, 10, 1], (3, 10)),
            (Strategy::Eager, [15, 0, 0, 10, 1], (10, 10)),
        ];
        for (s, [max_scale, running, pending, max_rc, scale_to], want) in cases {
            assert_eq!(
                s.effective_max_scale(max_scale, running, pending, max_rc, scale_to),
                want,
                "{s:?} {max_scale} {running} {pending} {max_rc} {scale_to}"
            );
        }
    }

    #[test]
    fn scaling_decision_respects_min_replicas() {
        let s = spec(Some(2), None, "{}");
        assert_eq!(
            scaling_decision(&s, 0, 0, 0, 0),
            (2, 2),
            "start the minimum"
        );
        assert_eq!(
            scaling_decision(&s, 1, 0, 0, 0),
            (1, 1),
            "top up the minimum"
        );
        let s1 = spec(Some(1), None, "{}");
        assert_eq!(
            scaling_decision(&s1, 1, 0, 2, 2),
            (2, 2),
            "strategy on jobs above min"
        );
    }

    fn m(queue_length: f64, target: f64, is_active: bool, max: i64) -> ScalerMetrics {
        scaler_metrics(&[queue_length], &[Some(target)], is_active, max)
    }

    #[test]
    fn per_scaler_queue_and_max_value() {
        assert_eq!(m(20.0, 2.0, true, 99).max_value, 10.0);
        assert_eq!(m(20.0, 1.0, true, 5).max_value, 5.0, "capped");
        assert_eq!(m(20.0, 0.0, true, 5).max_value, 0.0, "zero target");
        let s = scaler_metrics(&[3.0, 4.0], &[Some(5.0), Some(5.0), Some(3.0)], false, 100);
        assert_eq!(s.queue_length, 7.0);
        assert!((s.max_value - 7.0 / (13.0 / 3.0)).abs() < 1e-12);
        assert!(!s.is_active);
        assert_eq!(scaler_metrics(&[1.0], &[], true, 100).max_value, 0.0);
        assert_eq!(
            scaler_metrics(&[4.0], &[None, Some(4.0)], true, 100).max_value,
            2.0
        );
    }

    #[test]
    fn multiple_scalers_calculation() {
        use MultipleScalersCalculation::*;
        // Four scalers (queue, target, active): (20,1,T) (10,2,T) (5,3,T) (7,4,F).
        let scalers = |max| {
            vec![
                m(20.0, 1.0, true, max),
                m(10.0, 2.0, true, max),
                m(5.0, 3.0, true, max),
                m(7.0, 4.0, false, max),
            ]
        };
        // (calculation, maxReplicaCount, scaleTo, maxScale)
        let cases = [
            (None, 100, 20, 20),
            (Some(Max), 100, 20, 20),
            (Some(Min), 100, 5, 2),
            (Some(Avg), 100, 12, 9),
            (Some(Sum), 100, 35, 27),
            (Some(Sum), 25, 35, 25),
        ];
        for (calc, max, scale_to, max_scale) in cases {
            let got = combine_scalers(&scalers(max), calc, 0, max);
            assert!(got.is_active, "{calc:?}");
            assert_eq!(
                (got.scale_to, got.max_scale),
                (scale_to, max_scale),
                "{calc:?} max {max}"
            );
        }
        let idle = [m(0.0, 1.0, false, 100), m(3.0, 1.0, false, 100)];
        let got = combine_scalers(&idle, None, 0, 100);
        assert_eq!((got.is_active, got.scale_to, got.max_scale), (false, 0, 0));
        assert!(
            combine_scalers(&idle, None, 1, 100).is_active,
            "min > 0 is always active"
        );
        // One scaler, min 1, max 100 → maxReplicaCount() 99: queue 20 / target 2.
        let got = combine_scalers(&[m(20.0, 2.0, true, 99)], None, 1, 99);
        assert_eq!((got.scale_to, got.max_scale), (20, 10));
    }

    fn job(strategy: &str, min: Option<i32>, max: Option<i32>) -> ScaledJob {
        let mut j: ScaledJob = serde_yaml_ng::from_str(
            r#"
apiVersion: keda.sh/v1alpha1
kind: ScaledJob
metadata: {name: j}
spec:
  jobTargetRef: {template: {spec: {containers: [{name: c, image: busybox}]}}}
  triggers: [{type: rabbitmq, metadata: {}}]
"#,
        )
        .expect("parses");
        j.spec = spec(min, max, strategy);
        j
    }

    #[test]
    fn jobs_to_create_end_to_end() {
        let activity = |scale_to, max_scale, is_active| JobsActivity {
            is_active,
            scale_to,
            max_scale,
            max_value: max_scale as f64,
        };
        // (strategy, min, max, activity, running, pending) -> jobs
        let cases = [
            ("{}", None, None, activity(5, 5, true), 0, 0, 5),
            ("{}", None, None, activity(5, 5, true), 3, 0, 2),
            ("{}", None, None, activity(5, 5, true), 6, 0, 0),
            ("{}", None, None, activity(5, 5, false), 0, 0, 0),
            (
                "{strategy: accurate}",
                None,
                Some(10),
                activity(4, 4, true),
                3,
                3,
                1,
            ),
            (
                "{strategy: eager}",
                None,
                Some(10),
                activity(2, 4, true),
                0,
                0,
                4,
            ),
            (
                "{strategy: eager}",
                None,
                Some(10),
                activity(2, 4, true),
                7,
                0,
                3,
            ),
            ("{}", Some(2), Some(10), activity(0, 0, true), 0, 0, 2),
            (
                r#"{strategy: custom, customScalingQueueLengthDeduction: 1, customScalingRunningJobPercentage: "0.5"}"#,
                None,
                Some(10),
                activity(10, 10, true),
                4,
                0,
                7,
            ),
        ];
        for (strategy, min, max, act, running, pending, want) in cases {
            assert_eq!(
                jobs_to_create(&job(strategy, min, max), &act, running, pending),
                want,
                "{strategy} min {min:?} max {max:?} running {running} pending {pending}"
            );
        }
    }

    /// upstream's `GetTargetAverageValue` cases (reference §10 B).
    #[test]
    fn average_target_of_metric_specs() {
        let cases: [(&[Option<f64>], f64); 4] = [
            (&[], 0.0),
            (&[Some(1.0), Some(1.0)], 1.0),
            (&[Some(5.0), Some(5.0), Some(3.0)], 4.333333333333333),
            (&[Some(5.0), Some(5.0), Some(4.0)], 4.666666666666667),
        ];
        for (targets, want) in cases {
            assert_eq!(average_target(targets), want, "{targets:?}");
        }
    }

    /// upstream's last aggregation case (reference §10 C): min 1 keeps an active scaler whose queue is 0
    /// active, with nothing to scale to.
    #[test]
    fn min_above_zero_is_active_with_an_empty_queue() {
        let got = combine_scalers(&[m(0.0, 1.0, true, 99)], None, 1, 99);
        assert_eq!((got.is_active, got.scale_to, got.max_scale), (true, 0, 0));
    }

    /// The reference's per-poll table (§5): spec, triggers (queue, target), running, pending → Jobs
    /// created, through every step (per-scaler metrics, aggregation, strategy).
    #[test]
    fn jobs_created_per_poll_reference_table() {
        struct Row {
            strategy: &'static str,
            min: Option<i32>,
            max: Option<i32>,
            calc: &'static str,
            triggers: &'static [(f64, f64)],
            running: i64,
            pending: i64,
            want: (i64, i64, i64),
        }
        let row = |strategy, min, max, triggers, running, pending, want| Row {
            strategy,
            min,
            max,
            calc: "",
            triggers,
            running,
            pending,
            want,
        };
        let custom_half = r#"{strategy: custom, customScalingQueueLengthDeduction: 1, customScalingRunningJobPercentage: "0.5"}"#;
        let custom_unset = r#"{strategy: custom, customScalingQueueLengthDeduction: 5}"#;
        let rows = [
            // (queue Q, max scale M, created)
            row("{}", None, Some(3), &[(10.0, 1.0)], 0, 0, (10, 3, 3)),
            row("{}", None, Some(3), &[(10.0, 2.0)], 0, 0, (10, 3, 3)),
            row("{}", None, Some(3), &[(10.0, 1.0)], 1, 0, (10, 3, 2)),
            row("{}", None, Some(3), &[(4.0, 5.0)], 0, 0, (4, 1, 1)),
            row("{}", None, Some(100), &[(10.0, 1.0)], 0, 0, (10, 10, 10)),
            row("{}", Some(2), Some(10), &[(3.0, 1.0)], 0, 0, (3, 3, 2)),
            row("{}", Some(2), Some(10), &[(3.0, 1.0)], 2, 0, (3, 3, 3)),
            row("{}", Some(2), Some(10), &[(20.0, 1.0)], 2, 0, (20, 8, 8)),
            row("{}", Some(5), Some(3), &[(10.0, 1.0)], 0, 0, (10, 3, 3)),
            row("{}", Some(5), Some(3), &[(10.0, 1.0)], 3, 0, (10, 3, 3)),
            row("{}", Some(5), Some(3), &[(10.0, 1.0)], 6, 0, (10, 3, 0)),
            row("{}", Some(4), Some(4), &[(10.0, 1.0)], 4, 0, (10, 0, 0)),
            row("{}", None, Some(100), &[(3.0, 0.5)], 0, 0, (3, 6, 3)),
            row(
                "{strategy: accurate}",
                None,
                Some(10),
                &[(6.0, 1.0)],
                4,
                2,
                (6, 6, 4),
            ),
            row(
                "{strategy: accurate}",
                None,
                Some(10),
                &[(8.0, 1.0)],
                6,
                1,
                (8, 8, 4),
            ),
            row(
                "{strategy: eager}",
                None,
                Some(10),
                &[(6.0, 1.0)],
                3,
                0,
                (6, 6, 6),
            ),
            row(
                "{strategy: eager}",
                None,
                Some(10),
                &[(3.0, 1.0)],
                3,
                3,
                (3, 3, 3),
            ),
            row(custom_half, None, None, &[(10.0, 1.0)], 4, 0, (10, 10, 7)),
            row(custom_unset, None, None, &[(10.0, 1.0)], 4, 0, (10, 10, 6)),
            Row {
                calc: "max",
                ..row(
                    "{}",
                    None,
                    None,
                    &[(10.0, 10.0), (5.0, 1.0)],
                    0,
                    0,
                    (10, 1, 1),
                )
            },
            Row {
                calc: "min",
                ..row("{}", None, None, &[(0.0, 1.0), (5.0, 1.0)], 0, 0, (5, 5, 5))
            },
        ];
        for r in rows {
            let mut sj = job(r.strategy, r.min, r.max);
            sj.spec
                .scaling_strategy
                .get_or_insert_with(Default::default)
                .multiple_scalers_calculation = match r.calc {
                "min" => Some(MultipleScalersCalculation::Min),
                "max" => Some(MultipleScalersCalculation::Max),
                _ => None,
            };
            let max = max_replica_count(&sj.spec);
            let scalers: Vec<ScalerMetrics> = r
                .triggers
                .iter()
                .map(|&(q, t)| m(q, t, true, max))
                .collect();
            let calc = sj
                .spec
                .scaling_strategy
                .as_ref()
                .and_then(|s| s.multiple_scalers_calculation);
            let activity = combine_scalers(&scalers, calc, min_replica_count(&sj.spec), max);
            let created = jobs_to_create(&sj, &activity, r.running, r.pending);
            assert_eq!(
                (activity.scale_to, activity.max_scale, created),
                r.want,
                "{} min {:?} max {:?} {:?} R {} P {}",
                r.strategy,
                r.min,
                r.max,
                r.triggers,
                r.running,
                r.pending
            );
        }
    }
}
