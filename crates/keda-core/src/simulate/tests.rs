//! The KEDA worked examples of `reference/hpa-algorithm.md` (§10 E1, E7, E9, E10) replayed end to end, and
//! the input errors.

use pretty_assertions::assert_eq;

use super::*;
use crate::hpa::TriggerMetric;

fn so(yaml: &str) -> ScaledObject {
    let mut so: ScaledObject = serde_yaml_ng::from_str(yaml).expect("test ScaledObject parses");
    so.metadata.uid = Some("uid".to_owned());
    so
}

fn trigger(index: usize, target: f64) -> Trigger {
    Trigger {
        index,
        trigger_type: "metrics-api".to_owned(),
        name: None,
        metric_name: format!("s{index}-metric"),
        target_type: MetricTargetType::AverageValue,
        target,
        activation_threshold: 0.0,
        use_cached_metrics: false,
    }
}

fn run(so: &ScaledObject, triggers: &[Trigger], csv: &str, start: i32, phase: i64) -> Vec<Entry> {
    let metrics: Vec<TriggerMetric> = triggers
        .iter()
        .map(|t| TriggerMetric::external(t.index, t.metric_name.clone(), t.target_type, t.target))
        .collect();
    let hpa = crate::hpa::build_hpa(so, &metrics, "test").expect("HPA builds");
    let series = Series::parse_csv(csv).expect("series parses");
    simulate(
        so,
        triggers,
        &hpa,
        &series,
        &Options {
            start_replicas: start,
            hpa_phase: phase,
        },
    )
    .expect("simulates")
}

/// Replicas after everything that happened at or before `t`.
fn replicas_at(timeline: &[Entry], start: i32, t: i64) -> i32 {
    timeline
        .iter()
        .take_while(|e| e.t <= t)
        .last()
        .map_or(start, |e| e.replicas)
}

const E1: &str = r#"
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: nr, namespace: default}
spec:
  scaleTargetRef: {name: app}
  pollingInterval: 120
  cooldownPeriod: 300
  idleReplicaCount: 0
  minReplicaCount: 1
  maxReplicaCount: 5
  advanced:
    horizontalPodAutoscalerConfig:
      behavior: {scaleDown: {stabilizationWindowSeconds: 600}}
  triggers: [{type: metrics-api, metadata: {}}]
"#;

#[test]
fn e1_seed_guide_burst_and_quiet_hour() {
    let timeline = run(
        &so(E1),
        &[trigger(0, 70.0)],
        "t,s0-metric\n0,50\n100,400\n400,100\n1000,0\n1500,0\n",
        1,
        15,
    );
    let want = [
        (15, 1),
        (90, 1),
        (105, 5),
        (390, 5),
        (405, 5),
        (975, 5),
        (990, 2),
        (1305, 2),
        (1319, 2),
        (1320, 0),
        (1500, 0),
    ];
    for (t, r) in want {
        assert_eq!(replicas_at(&timeline, 1, t), r, "t={t}");
    }
    let at_105 = timeline.iter().find(|e| e.t == 105).expect("sync at 105");
    assert_eq!(at_105.hpa_desired, Some(5));
    assert!(
        at_105.reason.contains("TooManyReplicas"),
        "{}",
        at_105.reason
    );
    let at_405 = timeline.iter().find(|e| e.t == 405).expect("sync at 405");
    assert!(
        at_405.reason.contains("ScaleDownStabilized"),
        "{}",
        at_405.reason
    );
    let cooldown = timeline.iter().find(|e| e.t == 1080).expect("KEDA at 1080");
    assert!(
        cooldown.reason.contains("ScalerCooldown"),
        "{}",
        cooldown.reason
    );
    assert!(
        cooldown.reason.contains("until t=1260"),
        "{}",
        cooldown.reason
    );
    let off = timeline
        .iter()
        .find(|e| e.t == 1320 && e.reason.starts_with("KEDA"))
        .expect("KEDA at 1320");
    assert!(
        off.reason.contains("KEDAScaleTargetDeactivated"),
        "{}",
        off.reason
    );
    let disabled = timeline.iter().find(|e| e.t == 1335).expect("sync at 1335");
    assert_eq!(disabled.hpa_desired, None);
    assert!(
        disabled.reason.contains("ScalingDisabled"),
        "{}",
        disabled.reason
    );
    // Every HPA sync has an entry.
    assert_eq!(
        timeline
            .iter()
            .filter(|e| e.reason.starts_with("HPA"))
            .count(),
        100
    );
}

#[test]
fn e7_scale_to_zero_after_cooldown_and_back() {
    let so = so(r#"
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: w}
spec:
  scaleTargetRef: {name: app}
  pollingInterval: 30
  cooldownPeriod: 300
  minReplicaCount: 0
  maxReplicaCount: 10
  triggers: [{type: metrics-api, metadata: {}}]
"#);
    let timeline = run(
        &so,
        &[trigger(0, 10.0)],
        "t,s0-metric\n0,25\n60,0\n600,30\n620,30\n",
        3,
        5,
    );
    for (t, r) in [
        (5, 3),
        (50, 3),
        (320, 3),
        (329, 3),
        (330, 0),
        (590, 0),
        (600, 1),
        (605, 3),
    ] {
        assert_eq!(replicas_at(&timeline, 3, t), r, "t={t}");
    }
}

#[test]
fn e9_idle_above_zero_fights_the_hpa() {
    let so = so(r#"
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: w}
spec:
  scaleTargetRef: {name: app}
  pollingInterval: 30
  minReplicaCount: 3
  idleReplicaCount: 1
  maxReplicaCount: 10
  triggers: [{type: metrics-api, metadata: {}}]
"#);
    let timeline = run(&so, &[trigger(0, 10.0)], "t,s0-metric\n0,0\n40,0\n", 3, 5);
    let steps: Vec<(i64, i32, &str)> = timeline
        .iter()
        .map(|e| (e.t, e.replicas, &e.reason[..3]))
        .collect();
    assert_eq!(
        steps,
        vec![
            (0, 1, "KED"),
            (5, 3, "HPA"),
            (20, 3, "HPA"),
            (30, 1, "KED"),
            (35, 3, "HPA"),
        ]
    );
    assert!(timeline[1].reason.contains("below Spec.MinReplicas"));
}

#[test]
fn e10_fallback_through_the_hpa() {
    let mut with_fallback = E1.replace(
        "  advanced:",
        "  fallback: {failureThreshold: 2, replicas: 3}\n  advanced:",
    );
    with_fallback.push('\n');
    let so = so(&with_fallback);
    let timeline = run(
        &so,
        &[trigger(0, 70.0)],
        "t,s0-metric\n0,50\n200,\n600,50\n1200,50\n",
        1,
        15,
    );
    for (t, r) in [
        (195, 1),
        (225, 1),
        (239, 1),
        (240, 3),
        (585, 3),
        (600, 3),
        (1170, 3),
        (1185, 1),
    ] {
        assert_eq!(replicas_at(&timeline, 1, t), r, "t={t}");
    }
    let no_decision = timeline.iter().find(|e| e.t == 210).expect("sync at 210");
    assert!(
        no_decision.reason.contains("FailedGetExternalMetric"),
        "{}",
        no_decision.reason
    );
    assert_eq!(no_decision.metrics["s0-metric"], None);
    let keda = timeline
        .iter()
        .find(|e| e.t == 240 && e.reason.starts_with("KEDA"))
        .expect("KEDA notes the fallback at 240");
    assert!(keda.reason.contains("fallback"), "{}", keda.reason);
}

#[test]
fn columns_by_trigger_name_and_bad_series_are_named() {
    let so = so(E1);
    let mut named = trigger(0, 70.0);
    named.name = Some("rps".to_owned());
    let hpa = crate::hpa::build_hpa(
        &so,
        &[TriggerMetric::external(
            0,
            "s0-metric",
            MetricTargetType::AverageValue,
            70.0,
        )],
        "test",
    )
    .expect("builds");
    let options = Options {
        start_replicas: 1,
        hpa_phase: 15,
    };
    let by_name = Series::parse_csv("t,rps\n0,500\n30,500\n").expect("parses");
    let timeline = simulate(&so, &[named.clone()], &hpa, &by_name, &options).expect("runs");
    assert_eq!(timeline.last().map(|e| e.replicas), Some(5));

    let err = |csv: &str| match Series::parse_csv(csv) {
        Ok(series) => simulate(&so, &[named.clone()], &hpa, &series, &options)
            .expect_err("refused")
            .to_string(),
        Err(e) => e.to_string(),
    };
    let cases = [
        ("", "the series is empty"),
        ("time,rps\n0,1\n", "must start with `t`"),
        ("t,rps\n0,1,2\n", "line 2: 3 cells, the header has 2"),
        (
            "t,rps\n0,abc\n",
            "line 2, column rps: \"abc\" is not a number",
        ),
        ("t,rps\n0,1\n0,2\n", "line 3: t 0 does not come after"),
        ("t,rps\n10,1\n", "must start at t=0"),
        ("t,rps\n0.5,1\n", "not a whole number of seconds"),
        (
            "t,other\n0,1\n",
            "no column for trigger 0 (metrics-api): name one \"rps\" or \"s0-metric\"",
        ),
        (
            "t,rps,extra\n0,1,2\n",
            "series column \"extra\" matches no trigger",
        ),
    ];
    for (csv, want) in cases {
        let got = err(csv);
        assert!(got.contains(want), "{csv:?}: {got}");
    }
}
