use super::*;

const NOW: &str = "2026-01-01T12:00:00Z";

fn now() -> Timestamp {
    NOW.parse().expect("timestamp")
}

/// A ScaledObject `web` (metrics-api trigger, min 0, cooldown 300) with `extra` spec lines, annotations
/// and status lines (YAML, already indented).
fn so(annotations: &str, extra_spec: &str, status: &str) -> ScaledObject {
    serde_yaml_ng::from_str(&format!(
        "apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata:
  name: web
  namespace: shop
  creationTimestamp: \"2026-01-01T00:00:00Z\"
  annotations: {{{annotations}}}
spec:
  scaleTargetRef: {{name: web}}
  maxReplicaCount: 10
{extra_spec}  triggers:
  - type: metrics-api
    metadata: {{url: \"http://x/\", valueLocation: value, targetValue: \"10\"}}
{status}"
    ))
    .expect("ScaledObject parses")
}

fn status(active: &str, reason: &str, last_active_secs_ago: Option<i64>, extra: &str) -> String {
    let last = last_active_secs_ago
        .map(|s| format!("  lastActiveTime: \"{}\"\n", plus(now(), -s).expect("ts")))
        .unwrap_or_default();
    format!(
        "status:
  conditions:
  - {{type: Ready, status: \"True\", reason: ScaledObjectReady}}
  - {{type: Active, status: \"{active}\", reason: {reason}}}
  - {{type: Fallback, status: \"False\"}}
{last}{extra}"
    )
}

/// HPA `keda-hpa-web` (target 10 AverageValue on s0-metric-api-value) with `able` as the AbleToScale reason.
fn hpa(current: i32, desired: i32, able: &str, behavior: &str) -> HorizontalPodAutoscaler {
    serde_yaml_ng::from_str(&format!(
        "apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {{name: keda-hpa-web, namespace: shop}}
spec:
  scaleTargetRef: {{apiVersion: apps/v1, kind: Deployment, name: web}}
  minReplicas: 1
  maxReplicas: 10
{behavior}  metrics:
  - type: External
    external:
      metric: {{name: s0-metric-api-value, selector: {{matchLabels: {{scaledobject.keda.sh/name: web}}}}}}
      target: {{type: AverageValue, averageValue: \"10\"}}
status:
  currentReplicas: {current}
  desiredReplicas: {desired}
  currentMetrics:
  - type: External
    external:
      metric: {{name: s0-metric-api-value}}
      current: {{averageValue: \"8750m\"}}
  conditions:
  - {{type: AbleToScale, status: \"True\", reason: {able}, message: m}}
  - {{type: ScalingActive, status: \"True\", reason: ValidMetricFound, message: m}}
  - {{type: ScalingLimited, status: \"False\", reason: DesiredWithinRange, message: m}}
"
    ))
    .expect("HPA parses")
}

fn values(v: Option<f64>) -> BTreeMap<String, Result<f64, String>> {
    BTreeMap::from([(
        "s0-metric-api-value".to_owned(),
        v.ok_or_else(|| "the external metrics API is not available".to_owned()),
    )])
}

fn run(
    so: &ScaledObject,
    hpa: Option<&HorizontalPodAutoscaler>,
    replicas: i32,
    value: Option<f64>,
) -> Explanation {
    let values = values(value);
    explain(&Inputs {
        scaled_object: so,
        hpa,
        target_replicas: Some(replicas),
        metric_values: &values,
        events: &[],
        now: now(),
    })
}

fn at(secs: i64) -> String {
    plus(now(), secs).expect("ts").to_string()
}

#[test]
fn each_state_is_explained() {
    let window_60 = "  behavior:\n    scaleDown: {stabilizationWindowSeconds: 60}\n";
    let h_ready = hpa(4, 4, "ReadyForNewScale", "");
    let h_stab = hpa(4, 4, "ScaleDownStabilized", window_60);
    let h_one = hpa(1, 1, "ReadyForNewScale", "");
    type Case<'a> = (
        &'a str,
        ScaledObject,
        Option<&'a HorizontalPodAutoscaler>,
        i32,
        Option<f64>,
        State,
        &'a [&'a str],
    );
    let cases: Vec<Case> = vec![
        (
            "active",
            so("", "", &status("True", "ScalerActive", Some(1), "")),
            Some(&h_ready),
            4,
            Some(35.0),
            State::Active,
            &["activation"],
        ),
        (
            "cooling down",
            so("", "", &status("False", "ScalerCooldown", Some(100), "")),
            Some(&h_one),
            1,
            Some(0.0),
            State::CoolingDown {
                until: Some(at(200)),
                seconds_left: Some(200),
            },
            &["cooldown"],
        ),
        (
            "cooldown over, the next poll scales in",
            so("", "", &status("False", "ScalerCooldown", Some(400), "")),
            Some(&h_one),
            1,
            Some(0.0),
            State::ScaleInDue { to: 0 },
            &[],
        ),
        (
            "idle at idleReplicaCount",
            so(
                "",
                "  minReplicaCount: 2\n  idleReplicaCount: 0\n",
                &status("False", "ScalerNotActive", Some(4000), ""),
            ),
            Some(&h_one),
            0,
            Some(0.0),
            State::Idle { replicas: 0 },
            &["idle"],
        ),
        (
            "inactive at minReplicaCount",
            so(
                "",
                "  minReplicaCount: 2\n",
                &status("False", "ScalerNotActive", Some(4000), ""),
            ),
            Some(&h_one),
            2,
            Some(0.0),
            State::Inactive,
            &[],
        ),
        (
            "fallback",
            so(
                "",
                "  fallback: {failureThreshold: 2, replicas: 6}\n",
                &status(
                    "True",
                    "ScalerActive",
                    Some(1),
                    "  health:\n    s0-metric-api-value: {numberOfFailures: 3, status: Failing}\n",
                ),
            ),
            Some(&h_ready),
            6,
            Some(60.0),
            State::Fallback { replicas: 6 },
            &["activation", "fallback"],
        ),
        (
            "failures below the threshold are not fallback yet",
            so(
                "",
                "  fallback: {failureThreshold: 5, replicas: 6}\n",
                &status(
                    "True",
                    "ScalerActive",
                    Some(1),
                    "  health:\n    s0-metric-api-value: {numberOfFailures: 3, status: Failing}\n",
                ),
            ),
            Some(&h_ready),
            4,
            Some(35.0),
            State::Active,
            &["activation"],
        ),
        (
            "paused with paused-replicas",
            so(
                "autoscaling.keda.sh/paused-replicas: \"2\"",
                "",
                &status("True", "ScalerActive", Some(1), ""),
            ),
            None,
            2,
            None,
            State::Paused { replicas: Some(2) },
            &["paused", "activation"],
        ),
        (
            "paused by paused: true",
            so(
                "autoscaling.keda.sh/paused: \"true\"",
                "",
                &status("False", "ScalerNotActive", None, ""),
            ),
            None,
            3,
            None,
            State::Paused { replicas: None },
            &["paused"],
        ),
        (
            "stabilization window holding a scale-down",
            so("", "", &status("True", "ScalerActive", Some(1), "")),
            Some(&h_stab),
            4,
            Some(5.0),
            State::Stabilizing {
                held: 4,
                asked: Some(1),
                window_seconds: 60,
                until: at(60),
            },
            &["activation", "stabilization"],
        ),
        (
            "no status yet",
            so("", "", ""),
            None,
            1,
            None,
            State::Unknown,
            &[],
        ),
    ];
    for (name, object, h, replicas, value, want, in_force) in cases {
        let e = run(&object, h, replicas, value);
        assert_eq!(e.state, want, "{name}");
        let got: Vec<&str> = e
            .rules
            .iter()
            .filter(|r| r.in_force)
            .map(|r| r.rule)
            .collect();
        assert_eq!(got, in_force, "{name}: rules in force");
        assert!(!e.summary.is_empty() && !e.next.is_empty(), "{name}");
        assert!(
            e.text().contains(&format!("State: {}", want.kind())),
            "{name}"
        );
    }
}

#[test]
fn metrics_show_the_hpa_computation() {
    let object = so("", "", &status("True", "ScalerActive", Some(1), ""));
    let h = hpa(4, 4, "ReadyForNewScale", "");
    let e = run(&object, Some(&h), 4, Some(35.0));
    let m = &e.metrics[0];
    assert_eq!(m.name, "s0-metric-api-value");
    assert_eq!(
        (m.target_type, m.target, m.value),
        ("AverageValue", 10.0, Some(35.0))
    );
    assert_eq!(m.proposal, Some(4));
    assert_eq!(m.computation.as_deref(), Some("ceil(35 / 10) = 4"));
    assert_eq!(m.hpa_current.as_deref(), Some("8750m"));
    // 38 over 4 × 10: ratio 0.95 is within the 10 % tolerance, the controller stays.
    let e = run(&object, Some(&h), 4, Some(38.0));
    assert_eq!(e.metrics[0].proposal, Some(4));
    assert!(
        e.metrics[0]
            .computation
            .as_deref()
            .is_some_and(|c| c.contains("within the tolerance")),
        "{:?}",
        e.metrics[0].computation
    );
    // A Value target multiplies by the current count.
    let mut hv = h.clone();
    if let Some(t) = hv
        .spec
        .as_mut()
        .and_then(|s| s.metrics.as_mut())
        .and_then(|m| m[0].external.as_mut())
    {
        t.target.type_ = "Value".to_owned();
        t.target.value = t.target.average_value.take();
    }
    let e = run(&object, Some(&hv), 2, Some(35.0));
    assert_eq!(
        e.metrics[0].computation.as_deref(),
        Some("ceil(2 × 35 / 10) = 7")
    );
    assert_eq!(e.metrics[0].proposal, Some(7));
}

#[test]
fn an_unavailable_metrics_api_is_reported_not_fatal() {
    let object = so("", "", &status("True", "ScalerActive", Some(1), ""));
    let h = hpa(4, 4, "ReadyForNewScale", "");
    let e = run(&object, Some(&h), 4, None);
    assert_eq!(e.state, State::Active);
    assert_eq!(e.metrics[0].value, None);
    assert_eq!(
        e.metrics[0].error.as_deref(),
        Some("the external metrics API is not available")
    );
    assert!(
        e.text()
            .contains("unavailable (the external metrics API is not available)")
    );
}

#[test]
fn events_are_the_newest_in_order() {
    let object = so("", "", &status("True", "ScalerActive", Some(1), ""));
    let evs: Vec<Event> = (0..15)
        .rev()
        .map(|i| {
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": format!("e{i}"), "namespace": "shop"},
                "involvedObject": {"kind": if i % 2 == 0 {"ScaledObject"} else {"HorizontalPodAutoscaler"},
                                   "name": if i % 2 == 0 {"web"} else {"keda-hpa-web"}},
                "type": "Normal",
                "reason": format!("R{i}"),
                "message": "m",
                "count": 1,
                "lastTimestamp": at(-100 + i),
            }))
            .expect("event")
        })
        .collect();
    let values = values(Some(1.0));
    let e = explain(&Inputs {
        scaled_object: &object,
        hpa: None,
        target_replicas: Some(1),
        metric_values: &values,
        events: &evs,
        now: now(),
    });
    let reasons: Vec<&str> = e.events.iter().map(|e| e.reason.as_str()).collect();
    assert_eq!(
        reasons,
        [
            "R5", "R6", "R7", "R8", "R9", "R10", "R11", "R12", "R13", "R14"
        ]
    );
    assert_eq!(e.events[9].object, "ScaledObject/web");
    assert_eq!(e.events[8].object, "HorizontalPodAutoscaler/keda-hpa-web");
}

#[test]
fn json_document_has_the_stable_keys() {
    let object = so("", "", &status("False", "ScalerCooldown", Some(100), ""));
    let h = hpa(1, 1, "ReadyForNewScale", "");
    let e = run(&object, Some(&h), 1, Some(0.0));
    let v = serde_json::to_value(&e).expect("serialises");
    for key in [
        "namespace",
        "name",
        "now",
        "target",
        "state",
        "summary",
        "rules",
        "metrics",
        "hpa",
        "next",
        "events",
    ] {
        assert!(v.get(key).is_some(), "missing {key}: {v}");
    }
    assert_eq!(v["state"]["kind"], "cooling_down");
    assert_eq!(v["state"]["seconds_left"], 200);
    assert_eq!(v["hpa"]["scale_down_stabilization_window_seconds"], 300);
    assert_eq!(v["target"]["replicas"], 1);
}
