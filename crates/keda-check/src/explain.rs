//! `keda explain` without IO: from the live ScaledObject, its HPA, the scale target's replicas, the
//! external metric values and the recent Events, why the target has its replicas now and what would change
//! them next. The KEDA side is the operator's own decision (`keda_core::activation::decide`, the fallback
//! rules of `keda_core::fallback`); the HPA side is what the HPA reports, with the controller model's
//! per-metric proposal (`keda_core::hpa::controller::metric_proposal`) to show the computation. Only
//! upstream fields are read, so upstream KEDA's objects are explained too.

use std::collections::BTreeMap;

use k8s_openapi::api::autoscaling::v2::{HorizontalPodAutoscaler, MetricStatus};
use k8s_openapi::api::core::v1::Event;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use keda_api::ScaledObject;
use keda_api::common::Condition;
use keda_api::consts::{annotations, condition_reasons, condition_types};
use keda_core::activation::{self, Decision, ScaleLoopInput, ScaleReason};
use keda_core::fallback;
use keda_core::hpa::MetricTargetType;
use keda_core::hpa::controller::{
    Behavior, DEFAULT_TOLERANCE, DOWNSCALE_STABILIZATION_SECONDS, ExternalMetric,
    SCALE_DOWN_STABILIZED, SYNC_PERIOD_SECONDS, metric_proposal, within,
};
use serde::Serialize;

/// How many Events the explanation keeps (the newest).
pub const MAX_EVENTS: usize = 10;

/// What `keda explain` read from the cluster.
pub struct Inputs<'a> {
    pub scaled_object: &'a ScaledObject,
    /// `None`: the HPA does not exist (yet, or any more).
    pub hpa: Option<&'a HorizontalPodAutoscaler>,
    /// The scale target's `/scale` `spec.replicas`; `None` when it could not be read.
    pub target_replicas: Option<i32>,
    /// Per external metric name, the value `external.metrics.k8s.io` returned (the sum of its items, as
    /// the HPA controller adds them) or why it could not be read.
    pub metric_values: &'a BTreeMap<String, Result<f64, String>>,
    /// Events about the ScaledObject and the HPA, any order.
    pub events: &'a [Event],
    pub now: Timestamp,
}

/// The rule that decides the target's replicas right now.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum State {
    /// `autoscaling.keda.sh/paused-replicas` or `paused`: neither KEDA nor the HPA scales the target.
    Paused { replicas: Option<i32> },
    /// A metric failed more than `failureThreshold` times in a row: the HPA is served a value that
    /// steers it to `replicas`.
    Fallback { replicas: i32 },
    /// Triggers fail and no fallback applies (yet).
    TriggerError,
    /// The HPA holds more replicas than the metrics ask for, within its scale-down stabilization window.
    Stabilizing {
        held: i32,
        asked: Option<i32>,
        window_seconds: i64,
        /// The hold ends at the latest here, if the metrics keep asking for fewer.
        until: String,
    },
    /// A trigger is active: KEDA keeps the target up and the HPA sizes it.
    Active,
    /// No trigger is active, but the cooldown since the last active poll is still running.
    CoolingDown {
        until: Option<String>,
        seconds_left: Option<i64>,
    },
    /// The cooldown is over: KEDA's next poll scales the target to `to`.
    ScaleInDue { to: i32 },
    /// The cooldown is over, but `paused-scale-in` keeps the target up.
    ScaleInPaused,
    /// KEDA has scaled the target in: to 0, or to `idleReplicaCount`.
    Idle { replicas: i32 },
    /// No trigger is active and the target runs `minReplicaCount` (> 0): the HPA holds it there.
    Inactive,
    /// The ScaledObject has no status yet (the operator has not reconciled it).
    Unknown,
}

impl State {
    /// The state's name as the JSON `kind`.
    pub fn kind(&self) -> &'static str {
        match self {
            State::Paused { .. } => "paused",
            State::Fallback { .. } => "fallback",
            State::TriggerError => "trigger_error",
            State::Stabilizing { .. } => "stabilizing",
            State::Active => "active",
            State::CoolingDown { .. } => "cooling_down",
            State::ScaleInDue { .. } => "scale_in_due",
            State::ScaleInPaused => "scale_in_paused",
            State::Idle { .. } => "idle",
            State::Inactive => "inactive",
            State::Unknown => "unknown",
        }
    }
}

/// One of KEDA's (or the HPA's) rules and whether it holds now.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Rule {
    /// `paused`, `activation`, `cooldown`, `idle`, `fallback`, `stabilization`, `hpa_limits`.
    pub rule: &'static str,
    pub in_force: bool,
    pub detail: String,
}

/// One external metric of the HPA.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Metric {
    pub name: String,
    /// `AverageValue` or `Value`.
    pub target_type: &'static str,
    pub target: f64,
    /// From `external.metrics.k8s.io`, now.
    pub value: Option<f64>,
    pub error: Option<String>,
    /// The value in the HPA's `status.currentMetrics` (its last sync), as it prints it.
    pub hpa_current: Option<String>,
    /// Replicas this metric asks for (the controller's proposal), when the value is known.
    pub proposal: Option<i32>,
    /// The formula with the numbers.
    pub computation: Option<String>,
    /// `status.health` of the metric, when KEDA tracks it (fallback configured).
    pub failures: Option<i32>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HpaCondition {
    pub r#type: String,
    pub status: String,
    pub reason: Option<String>,
    pub message: Option<String>,
}

/// What the HPA reports.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Hpa {
    pub name: String,
    pub min_replicas: i32,
    pub max_replicas: i32,
    pub current_replicas: Option<i32>,
    pub desired_replicas: i32,
    pub last_scale_time: Option<String>,
    pub scale_down_stabilization_window_seconds: i64,
    pub conditions: Vec<HpaCondition>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EventLine {
    pub time: Option<String>,
    /// `ScaledObject/<name>` or `HorizontalPodAutoscaler/<name>`.
    pub object: String,
    pub r#type: String,
    pub reason: String,
    pub message: String,
    pub count: i32,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Target {
    pub kind: String,
    pub name: String,
    pub replicas: Option<i32>,
}

/// The whole explanation; `-o json` prints it as is.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Explanation {
    pub namespace: String,
    pub name: String,
    pub now: String,
    pub target: Target,
    pub state: State,
    /// One sentence: why the target has its replicas.
    pub summary: String,
    pub rules: Vec<Rule>,
    pub metrics: Vec<Metric>,
    pub hpa: Option<Hpa>,
    /// What would change the replicas next.
    pub next: Vec<String>,
    pub events: Vec<EventLine>,
}

fn condition<'a>(so: &'a ScaledObject, type_: &str) -> Option<&'a Condition> {
    so.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.r#type == type_)
}

fn describe(c: Option<&Condition>) -> String {
    match c {
        None => "not set".to_owned(),
        Some(c) => {
            let mut s = c.status.clone();
            if let Some(r) = c.reason.as_deref().filter(|r| !r.is_empty()) {
                s.push_str(&format!(" ({r}"));
                if let Some(m) = c.message.as_deref().filter(|m| !m.is_empty()) {
                    s.push_str(&format!(": {m}"));
                }
                s.push(')');
            }
            s
        }
    }
}

fn plus(t: Timestamp, secs: i64) -> Option<Timestamp> {
    t.checked_add(SignedDuration::from_secs(secs)).ok()
}

/// A number as the HPA prints quantities: no trailing `.0`.
fn num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

fn hpa_current(status: Option<&Vec<MetricStatus>>, name: &str) -> Option<String> {
    let m = status?.iter().find_map(|m| {
        m.external
            .as_ref()
            .filter(|e| e.metric.name == name)
            .map(|e| &e.current)
    })?;
    m.average_value
        .as_ref()
        .or(m.value.as_ref())
        .map(|q| q.0.clone())
}

/// The formula the controller applies to one metric, with the numbers, and its proposal.
fn computation(
    metric: &ExternalMetric,
    value: f64,
    current: i32,
    tolerance_up: f64,
    tolerance_down: f64,
) -> (i32, String) {
    let usage_milli = keda_core::quantity::f64_to_milli(value);
    let proposal = metric_proposal(metric, usage_milli, current, tolerance_up, tolerance_down);
    let target = metric.target_milli as f64 / 1000.0;
    let (formula, ratio) = match metric.target_type {
        MetricTargetType::Value => (
            format!(
                "ceil({current} × {} / {}) = {proposal}",
                num(value),
                num(target)
            ),
            value / target,
        ),
        _ => (
            format!("ceil({} / {}) = {proposal}", num(value), num(target)),
            value / (target * f64::from(current.max(1))),
        ),
    };
    let text = if current > 0 && within(ratio, tolerance_up, tolerance_down) {
        format!(
            "usage ratio {ratio:.3} is within the tolerance (-{tolerance_down}, +{tolerance_up}): stays at {current}"
        )
    } else {
        formula
    };
    (proposal, text)
}

fn event_time(e: &Event) -> Option<Timestamp> {
    e.series
        .as_ref()
        .and_then(|s| s.last_observed_time.as_ref())
        .map(|t| t.0)
        .or(e.last_timestamp.as_ref().map(|t| t.0))
        .or(e.event_time.as_ref().map(|t| t.0))
        .or(e.first_timestamp.as_ref().map(|t| t.0))
        .or(e.metadata.creation_timestamp.as_ref().map(|t| t.0))
}

fn events(events: &[Event]) -> Vec<EventLine> {
    let mut list: Vec<(Option<Timestamp>, EventLine)> = events
        .iter()
        .map(|e| {
            (
                event_time(e),
                EventLine {
                    time: event_time(e).map(|t| t.to_string()),
                    object: format!(
                        "{}/{}",
                        e.involved_object.kind.as_deref().unwrap_or_default(),
                        e.involved_object.name.as_deref().unwrap_or_default()
                    ),
                    r#type: e.type_.clone().unwrap_or_default(),
                    reason: e.reason.clone().unwrap_or_default(),
                    message: e.message.clone().unwrap_or_default(),
                    count: e
                        .series
                        .as_ref()
                        .and_then(|s| s.count)
                        .or(e.count)
                        .unwrap_or(1),
                },
            )
        })
        .collect();
    list.sort_by_key(|e| e.0);
    let skip = list.len().saturating_sub(MAX_EVENTS);
    list.into_iter().skip(skip).map(|(_, l)| l).collect()
}

/// Explains the ScaledObject of `inputs` (see the module docs).
pub fn explain(inputs: &Inputs<'_>) -> Explanation {
    let so = inputs.scaled_object;
    let now = inputs.now;
    let spec = &so.spec;
    let status = so.status.as_ref();
    let current = inputs.target_replicas;
    let cur = current.unwrap_or(0);

    // KEDA's side: the operator's decision for a poll that finds what the status reports.
    let active_cond = condition(so, condition_types::ACTIVE);
    let ready_cond = condition(so, condition_types::READY);
    let is_active = active_cond.is_some_and(|c| c.status == "True");
    let is_error = ready_cond.is_some_and(|c| {
        matches!(
            c.reason.as_deref(),
            Some(condition_reasons::TRIGGER_ERROR | condition_reasons::PARTIAL_TRIGGER_ERROR)
        )
    });
    let loop_input = ScaleLoopInput::from_scaled_object(so, cur, is_active, is_error, now);
    let decision = activation::decide(&loop_input);
    let cooldown_end = activation::cooldown_end(&loop_input);

    // Fallback, from status.health as the operator keeps it.
    let valid_fallback = fallback::has_valid_fallback(so).then_some(spec.fallback.as_ref());
    let valid_fallback = valid_fallback.flatten();
    let empty = BTreeMap::new();
    let health = status.and_then(|s| s.health.as_ref()).unwrap_or(&empty);
    let in_fallback =
        valid_fallback.is_some_and(|fb| fallback::fallback_exceeded(health, fb.failure_threshold));

    // The HPA's side.
    let hpa = inputs.hpa.map(|h| {
        let spec = h.spec.as_ref();
        let hs = h.status.as_ref();
        let window = spec
            .and_then(|s| s.behavior.as_ref())
            .and_then(|b| Behavior::from_spec(b).ok())
            .map_or(DOWNSCALE_STABILIZATION_SECONDS, |b| {
                b.scale_down.stabilization_window_seconds
            });
        Hpa {
            name: h.metadata.name.clone().unwrap_or_default(),
            min_replicas: spec.and_then(|s| s.min_replicas).unwrap_or(1),
            max_replicas: spec.map_or(0, |s| s.max_replicas),
            current_replicas: hs.and_then(|s| s.current_replicas),
            desired_replicas: hs.map_or(0, |s| s.desired_replicas),
            last_scale_time: hs
                .and_then(|s| s.last_scale_time.as_ref())
                .map(|t| t.0.to_string()),
            scale_down_stabilization_window_seconds: window,
            conditions: hs
                .and_then(|s| s.conditions.as_ref())
                .into_iter()
                .flatten()
                .map(|c| HpaCondition {
                    r#type: c.type_.clone(),
                    status: c.status.clone(),
                    reason: c.reason.clone(),
                    message: c.message.clone(),
                })
                .collect(),
        }
    });
    let behavior = inputs
        .hpa
        .and_then(|h| h.spec.as_ref())
        .and_then(|s| s.behavior.as_ref())
        .and_then(|b| Behavior::from_spec(b).ok());
    let (tol_up, tol_down) = behavior
        .as_ref()
        .map_or((DEFAULT_TOLERANCE, DEFAULT_TOLERANCE), |b| {
            (b.scale_up.tolerance, b.scale_down.tolerance)
        });

    // The metrics, with what each asks for.
    let hpa_name = hpa.as_ref().map(|h| h.name.clone()).unwrap_or_default();
    let mut metrics = Vec::new();
    for m in inputs
        .hpa
        .and_then(|h| h.spec.as_ref())
        .and_then(|s| s.metrics.as_ref())
        .into_iter()
        .flatten()
    {
        let Ok(Some(em)) = ExternalMetric::from_spec(&hpa_name, m) else {
            continue;
        };
        let read = inputs.metric_values.get(&em.name);
        let value = read.and_then(|r| r.as_ref().ok()).copied();
        let (proposal, computation) = match value {
            Some(v) if cur > 0 => {
                let (p, c) = computation(&em, v, cur, tol_up, tol_down);
                (Some(p), Some(c))
            }
            _ => (None, None),
        };
        metrics.push(Metric {
            name: em.name.clone(),
            target_type: em.target_type.as_str(),
            target: em.target_milli as f64 / 1000.0,
            value,
            error: match read {
                None => Some("not read".to_owned()),
                Some(Err(e)) => Some(e.clone()),
                Some(Ok(_)) => None,
            },
            hpa_current: hpa_current(
                inputs
                    .hpa
                    .and_then(|h| h.status.as_ref())
                    .and_then(|s| s.current_metrics.as_ref()),
                &em.name,
            ),
            proposal,
            computation,
            failures: health.get(&em.name).and_then(|h| h.number_of_failures),
        });
    }
    let asked = metrics.iter().filter_map(|m| m.proposal).max();

    let hpa_condition = |t: &str| {
        hpa.as_ref()
            .and_then(|h| h.conditions.iter().find(|c| c.r#type == t))
    };
    let stabilized = cur > 0
        && hpa_condition("AbleToScale")
            .is_some_and(|c| c.reason.as_deref() == Some(SCALE_DOWN_STABILIZED));
    let window = hpa.as_ref().map_or(DOWNSCALE_STABILIZATION_SECONDS, |h| {
        h.scale_down_stabilization_window_seconds
    });

    // The state: pause, then fallback, then the operator's decision, with the HPA's hold on top of an
    // active (or min-holding) target.
    let keda_state = match decision {
        Decision::Paused => State::Paused {
            replicas: so.paused_replicas().and_then(Result::ok),
        },
        _ if in_fallback => State::Fallback {
            replicas: valid_fallback.map_or(0, |fb| fallback::fallback_replicas(fb, cur)),
        },
        _ if status.is_none_or(|s| s.conditions.is_none()) => State::Unknown,
        Decision::ScaleTo {
            reason: ScaleReason::Activate,
            ..
        }
        | Decision::KeepActive
        | Decision::ScaleOutPaused
        | Decision::PartialTriggerError => State::Active,
        Decision::TriggerError | Decision::KeepFallbackToHpa => State::TriggerError,
        Decision::Cooldown => State::CoolingDown {
            until: cooldown_end.map(|t| t.to_string()),
            seconds_left: cooldown_end.map(|t| t.duration_since(now).as_secs().max(0)),
        },
        Decision::ScaleTo {
            replicas,
            reason: ScaleReason::Deactivate(_),
        } => State::ScaleInDue { to: replicas },
        Decision::ScaleInPaused => State::ScaleInPaused,
        Decision::ScaleTo {
            reason: ScaleReason::EnforceMin,
            ..
        } => State::Inactive,
        Decision::Nothing => {
            if spec.idle_replica_count.is_some_and(|idle| cur <= idle) || cur == 0 {
                State::Idle { replicas: cur }
            } else {
                State::Inactive
            }
        }
    };
    let state = match keda_state {
        State::Active | State::Inactive if stabilized => State::Stabilizing {
            held: cur,
            asked,
            window_seconds: window,
            until: plus(now, window).map_or_else(String::new, |t| t.to_string()),
        },
        s => s,
    };

    // The rules, each with whether it holds now.
    let mut rules = Vec::new();
    let paused_note = [annotations::PAUSED_REPLICAS, annotations::PAUSED]
        .iter()
        .filter_map(|k| {
            so.metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(*k))
                .map(|v| format!("{k}={v:?}"))
        })
        .collect::<Vec<_>>();
    rules.push(Rule {
        rule: "paused",
        in_force: so.is_paused(),
        detail: if paused_note.is_empty() {
            "no pause annotation".to_owned()
        } else {
            format!("annotation {}", paused_note.join(", "))
        },
    });
    let last_active = status
        .and_then(|s| s.last_active_time.as_ref())
        .map(|t| t.0.to_string());
    rules.push(Rule {
        rule: "activation",
        in_force: is_active,
        detail: format!(
            "Active condition {}; lastActiveTime {}",
            describe(active_cond),
            last_active.as_deref().unwrap_or("never")
        ),
    });
    let cooling = decision == Decision::Cooldown;
    rules.push(Rule {
        rule: "cooldown",
        in_force: cooling,
        detail: match (loop_input.last_active_time, cooldown_end) {
            (Some(_), Some(end)) => format!(
                "cooldownPeriod {} s after lastActiveTime: {} at {end}",
                loop_input.cooldown_period,
                if now > end { "ended" } else { "runs until" }
            ),
            (None, Some(end)) => format!(
                "never active: initialCooldownPeriod {} s after creation, {} at {end}",
                loop_input.initial_cooldown_period,
                if now > end { "ended" } else { "runs until" }
            ),
            _ => format!("cooldownPeriod {} s", loop_input.cooldown_period),
        },
    });
    rules.push(Rule {
        rule: "idle",
        in_force: matches!(state, State::Idle { .. }),
        detail: match spec.idle_replica_count {
            Some(idle) => format!(
                "idleReplicaCount {idle}: while no trigger is active the target runs {idle}, otherwise at least minReplicaCount {}",
                spec.min_replica_count()
            ),
            None => format!(
                "no idleReplicaCount: while no trigger is active the target runs minReplicaCount {}",
                spec.min_replica_count()
            ),
        },
    });
    rules.push(Rule {
        rule: "fallback",
        in_force: in_fallback,
        detail: match (spec.fallback.as_ref(), valid_fallback) {
            (None, _) => "no fallback configured".to_owned(),
            (Some(_), None) => "fallback configured but not valid for this object".to_owned(),
            (Some(_), Some(fb)) => {
                let counts = health
                    .iter()
                    .map(|(m, h)| {
                        format!(
                            "{m}: {} failure(s) ({})",
                            h.number_of_failures.unwrap_or(0),
                            h.status.as_deref().unwrap_or("unknown")
                        )
                    })
                    .collect::<Vec<_>>();
                format!(
                    "after more than failureThreshold {} consecutive failures the HPA is steered to {} replicas ({}); Fallback condition {}",
                    fb.failure_threshold,
                    fallback::fallback_replicas(fb, cur),
                    if counts.is_empty() {
                        "no failures recorded".to_owned()
                    } else {
                        counts.join(", ")
                    },
                    describe(condition(so, condition_types::FALLBACK))
                )
            }
        },
    });
    rules.push(Rule {
        rule: "stabilization",
        in_force: stabilized,
        detail: format!(
            "the HPA scales down only to the highest recommendation of the last {window} s (behavior.scaleDown.stabilizationWindowSeconds{})",
            if behavior.is_some() {
                ""
            } else {
                ", the controller's default"
            }
        ),
    });
    let limited = hpa_condition("ScalingLimited");
    rules.push(Rule {
        rule: "hpa_limits",
        in_force: limited.is_some_and(|c| c.status == "True"),
        detail: match &hpa {
            Some(h) => format!(
                "minReplicas {}, maxReplicas {}; ScalingLimited {}",
                h.min_replicas,
                h.max_replicas,
                limited.map_or("not reported".to_owned(), |c| format!(
                    "{} ({}: {})",
                    c.status,
                    c.reason.as_deref().unwrap_or(""),
                    c.message.as_deref().unwrap_or("")
                ))
            ),
            None => "no HPA".to_owned(),
        },
    });

    let replicas = current.map_or("an unknown number of".to_owned(), |r| r.to_string());
    let min_up = spec.min_replica_count().max(1);
    let (summary, next) = match &state {
        State::Paused { replicas: r } => (
            format!(
                "paused by annotation: KEDA does not scale the target{} and the HPA is out of the way; it runs {replicas} replicas",
                r.map_or(String::new(), |r| format!(" (held at paused-replicas {r})"))
            ),
            vec![format!(
                "removing the annotations {} and {} resumes autoscaling",
                annotations::PAUSED_REPLICAS,
                annotations::PAUSED
            )],
        ),
        State::Fallback { replicas: r } => (
            format!(
                "in fallback: a trigger failed more than failureThreshold times in a row, so the HPA is served a value that steers it to {r} replicas; the target runs {replicas}"
            ),
            vec![
                "once the trigger answers again its failure count resets and the HPA follows the real value"
                    .to_owned(),
            ],
        ),
        State::TriggerError => (
            format!("the triggers fail (Ready {}); the target keeps {replicas} replicas", describe(ready_cond)),
            vec!["fix the trigger's source; with spec.fallback the HPA would be steered to fallback.replicas".to_owned()],
        ),
        State::Stabilizing { held, asked, window_seconds, until } => (
            format!(
                "the HPA holds {held} replicas although the metrics ask for {}: scale-down stabilization keeps the highest recommendation of the last {window_seconds} s",
                asked.map_or("fewer".to_owned(), |a| a.to_string())
            ),
            vec![format!(
                "if the metrics keep asking for fewer, the HPA scales down once the higher recommendations are older than {window_seconds} s: at the latest at {until} (it checks every {SYNC_PERIOD_SECONDS} s)"
            )],
        ),
        State::Active => (
            format!(
                "a trigger is active: KEDA keeps the target up and the HPA sizes it to {replicas} replicas{}",
                asked.map_or(String::new(), |a| format!(" (the metrics ask for {a})"))
            ),
            vec![
                format!(
                    "the HPA follows the metrics within minReplicas..maxReplicas on each sync (every {SYNC_PERIOD_SECONDS} s)"
                ),
                format!(
                    "when no trigger is active any more, KEDA waits cooldownPeriod {} s after the last active poll, then scales to {}",
                    loop_input.cooldown_period,
                    spec.idle_replica_count.unwrap_or(spec.min_replica_count())
                ),
            ],
        ),
        State::CoolingDown { until, seconds_left } => (
            format!(
                "no trigger is active, but the cooldown runs{}: the target keeps {replicas} replicas",
                until.as_ref().map_or(String::new(), |u| format!(
                    " until {u} ({} s left)",
                    seconds_left.unwrap_or(0)
                ))
            ),
            vec![format!(
                "unless a trigger becomes active, KEDA's first poll after the cooldown scales the target to {}",
                spec.idle_replica_count.unwrap_or(spec.min_replica_count())
            )],
        ),
        State::ScaleInDue { to } => (
            format!("no trigger is active and the cooldown is over: the target runs {replicas} replicas"),
            vec![format!(
                "KEDA's next poll (every pollingInterval {} s) scales the target to {to}",
                spec.polling_interval()
            )],
        ),
        State::ScaleInPaused => (
            format!(
                "no trigger is active and the cooldown is over, but {} keeps the target at {replicas} replicas",
                annotations::PAUSED_SCALE_IN
            ),
            vec![format!("removing {} lets KEDA scale the target in", annotations::PAUSED_SCALE_IN)],
        ),
        State::Idle { replicas: r } => (
            format!(
                "no trigger is active: KEDA scaled the target in to {r} ({}) and the HPA does not scale from there",
                if spec.idle_replica_count.is_some() { "idleReplicaCount" } else { "zero" }
            ),
            vec![format!(
                "a trigger becoming active (a value above its activation threshold) scales the target to {min_up}, then the HPA sizes it"
            )],
        ),
        State::Inactive => (
            format!(
                "no trigger is active: the target runs {replicas} replicas, the HPA keeps at least minReplicas"
            ),
            vec![format!(
                "the HPA follows the metrics on each sync (every {SYNC_PERIOD_SECONDS} s)"
            )],
        ),
        State::Unknown => (
            "the ScaledObject has no status yet: the operator has not reconciled it".to_owned(),
            vec!["wait for the operator (is it running and watching this namespace?)".to_owned()],
        ),
    };

    let namespace = so.metadata.namespace.clone().unwrap_or_default();
    Explanation {
        name: so.metadata.name.clone().unwrap_or_default(),
        namespace,
        now: now.to_string(),
        target: Target {
            kind: spec.scale_target_ref.kind().to_owned(),
            name: spec.scale_target_ref.name.clone(),
            replicas: current,
        },
        state,
        summary,
        rules,
        metrics,
        hpa,
        next,
        events: events(inputs.events),
    }
}

impl Explanation {
    /// The explanation in plain words, for a terminal.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let mut line = |s: String| {
            out.push_str(&s);
            out.push('\n');
        };
        line(format!(
            "ScaledObject {}/{} → {} {}: {} replicas",
            self.namespace,
            self.name,
            self.target.kind,
            self.target.name,
            self.target
                .replicas
                .map_or("unknown".to_owned(), |r| r.to_string())
        ));
        line(format!("State: {}", self.state.kind()));
        line(format!("Why: {}", self.summary));
        line("Next:".to_owned());
        for n in &self.next {
            line(format!("  - {n}"));
        }
        line("Metrics:".to_owned());
        if self.metrics.is_empty() {
            line("  (no external metrics in the HPA)".to_owned());
        }
        for m in &self.metrics {
            let value = match (&m.value, &m.error) {
                (Some(v), _) => num(*v),
                (None, Some(e)) => format!("unavailable ({e})"),
                (None, None) => "unavailable".to_owned(),
            };
            let mut s = format!(
                "  {}: value {value}, target {} {}",
                m.name,
                m.target_type,
                num(m.target)
            );
            if let Some(c) = &m.hpa_current {
                s.push_str(&format!(", HPA last saw {c}"));
            }
            if let Some(c) = &m.computation {
                s.push_str(&format!("; {c}"));
            }
            if let Some(f) = m.failures {
                s.push_str(&format!("; {f} consecutive failure(s)"));
            }
            line(s);
        }
        match &self.hpa {
            None => line("HPA: not found".to_owned()),
            Some(h) => {
                line(format!(
                    "HPA {}: current {}, desired {}, min {}, max {}, last scale {}, scale-down window {} s",
                    h.name,
                    h.current_replicas.map_or("-".to_owned(), |r| r.to_string()),
                    h.desired_replicas,
                    h.min_replicas,
                    h.max_replicas,
                    h.last_scale_time.as_deref().unwrap_or("never"),
                    h.scale_down_stabilization_window_seconds
                ));
                for c in &h.conditions {
                    line(format!(
                        "  {} {} {}: {}",
                        c.r#type,
                        c.status,
                        c.reason.as_deref().unwrap_or(""),
                        c.message.as_deref().unwrap_or("")
                    ));
                }
            }
        }
        line("Rules:".to_owned());
        for r in &self.rules {
            line(format!(
                "  [{}] {}: {}",
                if r.in_force { "x" } else { " " },
                r.rule,
                r.detail
            ));
        }
        line("Events:".to_owned());
        if self.events.is_empty() {
            line("  (none)".to_owned());
        }
        for e in &self.events {
            line(format!(
                "  {} {} {} {}{}: {}",
                e.time.as_deref().unwrap_or("-"),
                e.object,
                e.r#type,
                e.reason,
                if e.count > 1 {
                    format!(" (×{})", e.count)
                } else {
                    String::new()
                },
                e.message
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests;
