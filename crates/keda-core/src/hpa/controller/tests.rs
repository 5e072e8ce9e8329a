//! The worked examples of `reference/hpa-algorithm.md` (§4, §6.3, §10 E2–E6, E8) and the controller's own
//! unit tests it cites, as tables.

use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscalerBehavior;
use pretty_assertions::assert_eq;

use super::*;

fn metric(target: f64, target_type: MetricTargetType) -> ExternalMetric {
    ExternalMetric {
        name: "s0-metric".to_owned(),
        target_type,
        target_milli: (target * 1000.0) as i64,
    }
}

fn hpa(min: i32, max: i32, behavior: Option<&str>, metrics: Vec<ExternalMetric>) -> Hpa {
    Hpa {
        min_replicas: min,
        max_replicas: max,
        behavior: behavior.map(|yaml| {
            let b: HorizontalPodAutoscalerBehavior =
                serde_yaml_ng::from_str(yaml).expect("behavior parses");
            Behavior::from_spec(&b).expect("valid behavior")
        }),
        metrics,
    }
}

/// Syncs at `times` starting from `start` replicas, the metrics at each time from `at`; the replicas after
/// each sync.
fn replay(
    hpa: &Hpa,
    start: i32,
    times: &[i64],
    at: impl Fn(i64) -> Vec<Option<f64>>,
) -> Vec<(i64, i32)> {
    let mut memory = HpaMemory::default();
    let mut current = start;
    times
        .iter()
        .map(|&t| {
            let usage: Vec<Option<i64>> = at(t)
                .into_iter()
                .map(|v| v.map(|v| (v * 1000.0) as i64))
                .collect();
            let s = sync(hpa, &mut memory, t, current, &usage);
            if let Some(w) = s.write {
                current = w;
            }
            (t, current)
        })
        .collect()
}

fn every_15s(from: i64, to: i64) -> Vec<i64> {
    (from..=to).step_by(15).collect()
}

#[test]
fn proposals_of_one_external_metric() {
    use MetricTargetType::*;
    // (target, type, usage, current, proposal, what)
    let cases = [
        (
            2.222,
            AverageValue,
            8.6,
            3,
            4,
            "TestScaleUpPerPodCMExternal",
        ),
        (
            2.2,
            AverageValue,
            8.6,
            4,
            4,
            "TestTolerancePerPodCMExternal: 0.977 within",
        ),
        (
            10.0,
            AverageValue,
            500.0,
            48,
            48,
            "§4.3: 500/480 = 1.042 within, stops short of 50",
        ),
        (
            100.0,
            AverageValue,
            440.0,
            4,
            4,
            "1.10 is within (inclusive)",
        ),
        (100.0, AverageValue, 450.0, 4, 5, "1.125 → ceil(4.5)"),
        (70.0, AverageValue, 50.0, 1, 1, "E1: 0.71 → ceil(50/70)"),
        (100.0, Value, 150.0, 2, 3, "Value: ceil(1.5 × 2)"),
        (
            100.0,
            Value,
            150.0,
            0,
            2,
            "Value from 0: ceil(ratio), no tolerance",
        ),
        (100.0, Value, 105.0, 3, 3, "Value within tolerance"),
        (10.0, AverageValue, 0.0, 3, 0, "no load → 0"),
    ];
    for (target, kind, usage, current, want, what) in cases {
        let m = metric(target, kind);
        let got = metric_proposal(&m, (usage * 1000.0) as i64, current, 0.1, 0.1);
        assert_eq!(got, want, "{what}");
    }
}

#[test]
fn rate_limit_float_effects_match_the_controller() {
    let memory = HpaMemory::default();
    let percent = |value, select| Rules {
        stabilization_window_seconds: 0,
        select_policy: select,
        policies: vec![Policy {
            kind: PolicyType::Percent,
            value,
            period_seconds: 60,
        }],
        tolerance: 0.1,
    };
    // 25 × 1.12 = 28.000000000000004 → 29.
    assert_eq!(
        scale_up_limit(25, &memory, &percent(12, SelectPolicy::Max), 0),
        29
    );
    // 10 × 0.1 = 0.9999999999999998 → 0.
    assert_eq!(
        scale_down_limit(10, &memory, &percent(90, SelectPolicy::Max), 0),
        0
    );
    // TestCalculateScaleUpLimitWithScalingRules: Min of Pods 2 / Percent 50 from 1 → 2.
    let min_up = Rules {
        policies: vec![
            Policy {
                kind: PolicyType::Pods,
                value: 2,
                period_seconds: 60,
            },
            Policy {
                kind: PolicyType::Percent,
                value: 50,
                period_seconds: 60,
            },
        ],
        select_policy: SelectPolicy::Min,
        ..percent(0, SelectPolicy::Min)
    };
    assert_eq!(scale_up_limit(1, &memory, &min_up, 0), 2);
    // TestCalculateScaleDownLimitWithBehaviors: Min from 5 → 3 (Pods 2 vs Percent 50: max(3, 2)).
    assert_eq!(scale_down_limit(5, &memory, &min_up, 0), 3);
    assert_eq!(
        scale_up_limit(7, &memory, &percent(100, SelectPolicy::Disabled), 0),
        7
    );
}

/// E2: a burst with behavior `{}` (API defaults) and without behavior.
#[test]
fn e2_burst_with_default_behavior_and_without() {
    let times = every_15s(0, 60);
    let burst = |_| vec![Some(500.0)];
    let with = hpa(
        1,
        100,
        Some("{}"),
        vec![metric(10.0, MetricTargetType::AverageValue)],
    );
    assert_eq!(
        replay(&with, 1, &times, burst),
        vec![(0, 5), (15, 10), (30, 20), (45, 40), (60, 50)]
    );
    let without = hpa(
        1,
        100,
        None,
        vec![metric(10.0, MetricTargetType::AverageValue)],
    );
    assert_eq!(
        replay(&without, 1, &times, burst),
        vec![(0, 4), (15, 8), (30, 16), (45, 32), (60, 50)]
    );
}

/// E3: without behavior the max-stabilization holds the first, higher proposal on the way up.
#[test]
fn e3_no_behavior_overshoots_the_proposal() {
    let m = || vec![metric(10.0, MetricTargetType::AverageValue)];
    let series = |t| vec![Some(if t == 0 { 100.0 } else { 50.0 })];
    let times = every_15s(0, 330);
    let got = replay(&hpa(1, 20, None, m()), 1, &times, series);
    let want: Vec<(i64, i32)> = times
        .iter()
        .map(|&t| {
            (
                t,
                match t {
                    0 => 4,
                    15 => 8,
                    _ if t < 315 => 10,
                    _ => 5,
                },
            )
        })
        .collect();
    assert_eq!(got, want);
    // With behavior {} the same series gives 5 at t=0 and stays there.
    let got = replay(&hpa(1, 20, Some("{}"), m()), 1, &times, series);
    assert!(got.iter().all(|(_, r)| *r == 5), "{got:?}");
}

/// E4: Pods vs Percent policies with selectPolicy Min and Max, up and down.
#[test]
fn e4_policies_and_select_policy() {
    let m = || vec![metric(10.0, MetricTargetType::AverageValue)];
    let up = |select: &str| {
        format!(
            "scaleUp: {{selectPolicy: {select}, policies: [{{type: Pods, value: 4, periodSeconds: 60}}, {{type: Percent, value: 50, periodSeconds: 60}}]}}"
        )
    };
    let times = every_15s(0, 180);
    let pick = |got: Vec<(i64, i32)>| -> Vec<(i64, i32)> {
        got.into_iter()
            .filter(|(t, _)| [0, 15, 45, 60, 120, 180].contains(t))
            .collect()
    };
    let min = hpa(1, 50, Some(&up("Min")), m());
    assert_eq!(
        pick(replay(&min, 10, &times, |_| vec![Some(400.0)])),
        vec![(0, 14), (15, 14), (45, 14), (60, 18), (120, 22), (180, 26)]
    );
    let max = hpa(1, 50, Some(&up("Max")), m());
    assert_eq!(
        pick(replay(&max, 10, &times, |_| vec![Some(400.0)])),
        vec![(0, 15), (15, 15), (45, 15), (60, 23), (120, 35), (180, 40)]
    );
    let down = hpa(
        1,
        50,
        Some(
            "scaleDown: {stabilizationWindowSeconds: 0, selectPolicy: Min, policies: [{type: Pods, value: 2, periodSeconds: 60}, {type: Percent, value: 50, periodSeconds: 60}]}",
        ),
        m(),
    );
    assert_eq!(
        pick(replay(&down, 10, &times, |_| vec![Some(20.0)])),
        vec![(0, 8), (15, 8), (45, 8), (60, 6), (120, 4), (180, 2)]
    );
}

/// E5: the tolerance suppresses small changes; a configured scaleUp tolerance narrows the band.
#[test]
fn e5_tolerance() {
    let m = || vec![metric(100.0, MetricTargetType::AverageValue)];
    let series = |t| {
        vec![Some(match t {
            0 => 400.0,
            15 => 420.0,
            30 => 440.0,
            45 => 450.0,
            _ => 380.0,
        })]
    };
    let times = every_15s(0, 60);
    assert_eq!(
        replay(&hpa(1, 10, None, m()), 4, &times, series),
        vec![(0, 4), (15, 4), (30, 4), (45, 5), (60, 5)]
    );
    let narrow = hpa(1, 10, Some("scaleUp: {tolerance: '0.02'}"), m());
    assert_eq!(
        replay(&narrow, 4, &times[..2], series),
        vec![(0, 4), (15, 5)]
    );
}

/// E6: Value grows by the ratio per sync; AverageValue goes straight to ceil(value / target).
#[test]
fn e6_value_vs_average_value() {
    let times = every_15s(0, 45);
    let value = hpa(1, 10, None, vec![metric(100.0, MetricTargetType::Value)]);
    assert_eq!(
        replay(&value, 2, &times, |_| vec![Some(150.0)]),
        vec![(0, 3), (15, 5), (30, 8), (45, 10)]
    );
    let avg = hpa(
        1,
        10,
        None,
        vec![metric(50.0, MetricTargetType::AverageValue)],
    );
    assert_eq!(
        replay(&avg, 2, &times, |_| vec![Some(150.0)]),
        vec![(0, 3), (15, 3), (30, 3), (45, 3)]
    );
}

/// E8: one of two metrics failing never lets the HPA scale down.
#[test]
fn e8_a_failing_metric_blocks_scale_down() {
    let mut a = metric(10.0, MetricTargetType::AverageValue);
    a.name = "s0-a".to_owned();
    let mut b = a.clone();
    b.name = "s1-b".to_owned();
    let h = hpa(1, 10, None, vec![a, b]);
    let series = |t| match t {
        0 => vec![Some(60.0), None],
        15 => vec![Some(20.0), None],
        45 => vec![None, None],
        _ => vec![Some(20.0), Some(30.0)],
    };
    let times = every_15s(0, 315);
    let got = replay(&h, 4, &times, series);
    for (t, r) in &got {
        assert_eq!(*r, if *t < 315 { 6 } else { 3 }, "t={t}: {got:?}");
    }
    let mut memory = HpaMemory::default();
    let _ = sync(&h, &mut memory, 0, 4, &[Some(60_000), None]);
    let s = sync(&h, &mut memory, 15, 6, &[Some(20_000), None]);
    assert_eq!(
        s.outcome,
        Outcome::NoDecision {
            failed_metric: "s1-b".to_owned()
        }
    );
}

#[test]
fn out_of_range_and_disabled_branches() {
    let h = hpa(
        2,
        5,
        None,
        vec![metric(10.0, MetricTargetType::AverageValue)],
    );
    let mut memory = HpaMemory::default();
    assert_eq!(
        sync(&h, &mut memory, 0, 0, &[Some(1)]).outcome,
        Outcome::ScalingDisabled
    );
    let s = sync(&h, &mut memory, 15, 1, &[Some(100_000)]);
    assert_eq!(s.write, Some(2), "below min: to min, no metrics");
    let s = sync(&h, &mut memory, 30, 9, &[Some(0)]);
    assert_eq!(s.write, Some(5), "above max: to max");
    assert_eq!(
        s.explain(9),
        "Current number of replicas above Spec.MaxReplicas"
    );
}

#[test]
fn behavior_defaults_and_errors() {
    let b: HorizontalPodAutoscalerBehavior =
        serde_yaml_ng::from_str("scaleDown: {stabilizationWindowSeconds: 600}").expect("parses");
    let b = Behavior::from_spec(&b).expect("valid");
    assert_eq!(b.scale_down.stabilization_window_seconds, 600);
    assert_eq!(b.scale_down.select_policy, SelectPolicy::Max);
    assert_eq!(b.scale_down.policies.len(), 1);
    assert_eq!(b.scale_up.stabilization_window_seconds, 0);
    assert_eq!(b.scale_up.policies.len(), 2);
    assert_eq!(b.scale_up.tolerance, DEFAULT_TOLERANCE);
    let bad: HorizontalPodAutoscalerBehavior =
        serde_yaml_ng::from_str("scaleUp: {selectPolicy: Fastest}").expect("parses");
    let e = Behavior::from_spec(&bad).expect_err("refused");
    assert!(
        e.to_string().contains("scaleUp.selectPolicy \"Fastest\""),
        "{e}"
    );
}
