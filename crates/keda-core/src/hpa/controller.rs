//! The replica decision of the HorizontalPodAutoscaler controller of Kubernetes 1.35 (kube-controller-manager)
//! for the HPAs KEDA builds, without IO: one [`sync`] per 15 s, with the controller's per-HPA memory
//! ([`HpaMemory`]: recommendations and scale events). `keda simulate` replays a metric series through it.
//!
//! Semantics (and the worked examples the tests reproduce) are in `reference/hpa-algorithm.md`, §2–§6:
//! the min/max branches, the external-metric proposals (AverageValue and Value) with the tolerance, the
//! invalid-metric rule, the normalization without `behavior` (300 s max-stabilization, 2×/4 scale-up
//! limit) and with it (API defaults, stabilization windows, policies, `selectPolicy`, tolerances).
//! Float arithmetic is done in the controller's order, so results match bit for bit.

use k8s_openapi::api::autoscaling::v2::{
    HPAScalingRules, HorizontalPodAutoscaler, HorizontalPodAutoscalerBehavior, MetricSpec,
};

use super::MetricTargetType;
use crate::Error;

/// `--horizontal-pod-autoscaler-sync-period` default.
pub const SYNC_PERIOD_SECONDS: i64 = 15;
/// `--horizontal-pod-autoscaler-tolerance` default (both directions).
pub const DEFAULT_TOLERANCE: f64 = 0.1;
/// `--horizontal-pod-autoscaler-downscale-stabilization` default.
pub const DOWNSCALE_STABILIZATION_SECONDS: i64 = 300;
/// The AbleToScale reason of a scale-down held by the stabilization window (the controller's string).
pub const SCALE_DOWN_STABILIZED: &str = "ScaleDownStabilized";
const SCALE_UP_LIMIT_FACTOR: f64 = 2.0;
const SCALE_UP_LIMIT_MINIMUM: f64 = 4.0;

/// One external metric of the HPA, in spec order.
#[derive(Clone, Debug, PartialEq)]
pub struct ExternalMetric {
    pub name: String,
    pub target_type: MetricTargetType,
    /// The target in thousandths (`MilliValue()` of the spec's quantity).
    pub target_milli: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SelectPolicy {
    Max,
    Min,
    Disabled,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PolicyType {
    Pods,
    Percent,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    pub kind: PolicyType,
    pub value: i32,
    pub period_seconds: i64,
}

/// One direction of `spec.behavior` with the API defaults filled in.
#[derive(Clone, Debug, PartialEq)]
pub struct Rules {
    pub stabilization_window_seconds: i64,
    pub select_policy: SelectPolicy,
    pub policies: Vec<Policy>,
    pub tolerance: f64,
}

/// `spec.behavior` as the controller sees it after API defaulting (§6.1).
#[derive(Clone, Debug, PartialEq)]
pub struct Behavior {
    pub scale_up: Rules,
    pub scale_down: Rules,
}

/// What the controller reads of an HPA.
#[derive(Clone, Debug, PartialEq)]
pub struct Hpa {
    pub min_replicas: i32,
    pub max_replicas: i32,
    /// `None`: the path without behavior (§5), which is what KEDA's HPA takes by default.
    pub behavior: Option<Behavior>,
    pub metrics: Vec<ExternalMetric>,
}

fn unsupported(reason: String) -> Error {
    Error::UnsupportedHpa { reason }
}

fn rules(
    spec: Option<&HPAScalingRules>,
    direction: &str,
    default_window: i64,
    default_policies: &[Policy],
) -> Result<Rules, Error> {
    let select_policy = match spec.and_then(|r| r.select_policy.as_deref()) {
        None | Some("Max") => SelectPolicy::Max,
        Some("Min") => SelectPolicy::Min,
        Some("Disabled") => SelectPolicy::Disabled,
        Some(other) => {
            return Err(unsupported(format!(
                "behavior.{direction}.selectPolicy {other:?} is not Max, Min or Disabled"
            )));
        }
    };
    let policies = match spec.and_then(|r| r.policies.as_ref()) {
        None => default_policies.to_vec(),
        Some(list) => list
            .iter()
            .map(|p| {
                let kind = match p.type_.as_str() {
                    "Pods" => PolicyType::Pods,
                    "Percent" => PolicyType::Percent,
                    other => {
                        return Err(unsupported(format!(
                            "behavior.{direction}.policies: type {other:?} is not Pods or Percent"
                        )));
                    }
                };
                Ok(Policy {
                    kind,
                    value: p.value,
                    period_seconds: i64::from(p.period_seconds),
                })
            })
            .collect::<Result<_, _>>()?,
    };
    let tolerance = match spec.and_then(|r| r.tolerance.as_ref()) {
        None => DEFAULT_TOLERANCE,
        Some(q) => crate::quantity::parse_quantity(&q.0)
            .filter(|t| *t >= 0.0)
            .ok_or_else(|| {
                unsupported(format!(
                    "behavior.{direction}.tolerance {:?} is not a quantity ≥ 0",
                    q.0
                ))
            })?,
    };
    Ok(Rules {
        stabilization_window_seconds: spec
            .and_then(|r| r.stabilization_window_seconds)
            .map_or(default_window, i64::from),
        select_policy,
        policies,
        tolerance,
    })
}

impl Behavior {
    /// `spec.behavior` with the API server's defaults (scaleUp: window 0, Max, Pods 4 / Percent 100 per
    /// 15 s; scaleDown: window from the controller flag (300 s), Max, Percent 100 per 15 s).
    pub fn from_spec(b: &HorizontalPodAutoscalerBehavior) -> Result<Behavior, Error> {
        let up_defaults = [
            Policy {
                kind: PolicyType::Pods,
                value: 4,
                period_seconds: 15,
            },
            Policy {
                kind: PolicyType::Percent,
                value: 100,
                period_seconds: 15,
            },
        ];
        let down_defaults = [Policy {
            kind: PolicyType::Percent,
            value: 100,
            period_seconds: 15,
        }];
        Ok(Behavior {
            scale_up: rules(b.scale_up.as_ref(), "scaleUp", 0, &up_defaults)?,
            scale_down: rules(
                b.scale_down.as_ref(),
                "scaleDown",
                DOWNSCALE_STABILIZATION_SECONDS,
                &down_defaults,
            )?,
        })
    }
}

impl ExternalMetric {
    /// The controller's view of one metric of HPA `hpa_name`; `None` when it is not an External metric.
    pub fn from_spec(hpa_name: &str, m: &MetricSpec) -> Result<Option<ExternalMetric>, Error> {
        let Some(external) = &m.external else {
            return Ok(None);
        };
        let target = &external.target;
        let (target_type, quantity) = match target.type_.as_str() {
            "AverageValue" => (MetricTargetType::AverageValue, &target.average_value),
            "Value" => (MetricTargetType::Value, &target.value),
            other => {
                return Err(unsupported(format!(
                    "HPA {hpa_name}: metric {} has target type {other:?}",
                    external.metric.name
                )));
            }
        };
        let value = quantity
            .as_ref()
            .and_then(|q| crate::quantity::parse_quantity(&q.0))
            .ok_or_else(|| {
                unsupported(format!(
                    "HPA {hpa_name}: metric {} has no readable target",
                    external.metric.name
                ))
            })?;
        Ok(Some(ExternalMetric {
            name: external.metric.name.clone(),
            target_type,
            // `MilliValue()` rounds up; targets are printed with three decimals, so this is exact.
            target_milli: (value * 1000.0).round() as i64,
        }))
    }
}

impl Hpa {
    /// The controller's view of an HPA KEDA built. Only External metrics can be replayed: cpu and memory
    /// come from pods, which a series does not describe.
    pub fn from_hpa(hpa: &HorizontalPodAutoscaler) -> Result<Hpa, Error> {
        let name = hpa.metadata.name.clone().unwrap_or_default();
        let spec = hpa
            .spec
            .as_ref()
            .ok_or_else(|| unsupported(format!("HPA {name} has no spec")))?;
        let mut metrics = Vec::new();
        for m in spec.metrics.iter().flatten() {
            match ExternalMetric::from_spec(&name, m)? {
                Some(metric) => metrics.push(metric),
                None => {
                    return Err(unsupported(format!(
                        "HPA {name}: a {} metric is measured from pods, which a series cannot replay",
                        m.type_
                    )));
                }
            }
        }
        Ok(Hpa {
            min_replicas: spec.min_replicas.unwrap_or(1),
            max_replicas: spec.max_replicas,
            behavior: spec
                .behavior
                .as_ref()
                .map(Behavior::from_spec)
                .transpose()?,
            metrics,
        })
    }
}

/// What the controller remembers about one HPA between syncs (in memory only; lost on restart or when
/// the HPA is deleted).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HpaMemory {
    /// (recommendation, time) pairs.
    recommendations: Vec<(i32, i64)>,
    /// (|change|, time) of the controller's own scale-ups and scale-downs (only with behavior).
    up_events: Vec<(i32, i64)>,
    down_events: Vec<(i32, i64)>,
    initialized: bool,
}

/// How a sync ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// `cur == 0` with `minReplicas ≠ 0`: nothing computed (KEDA's business).
    ScalingDisabled,
    /// Outside min..max: straight to the bound, no metrics read.
    OutOfRange { desired: i32, reason: &'static str },
    /// No decision (§4.5): the named metric failed and the valid ones do not allow staying or going up.
    NoDecision { failed_metric: String },
    /// A decision through normalization.
    Decided {
        /// The proposal P: the maximum over the valid metrics.
        proposal: i32,
        /// The metric that gave P when above the current count, for "<name> above target".
        above: Option<String>,
        /// After stabilization (S or R).
        stabilized: i32,
        /// The AbleToScale reason of the stabilization.
        stabilization_reason: &'static str,
        desired: i32,
        /// The ScalingLimited reason (`DesiredWithinRange` when not clamped).
        limit_reason: &'static str,
    },
}

/// The result of one sync.
#[derive(Clone, Debug, PartialEq)]
pub struct Sync {
    pub outcome: Outcome,
    /// The replica count written to `/scale`, when it changed.
    pub write: Option<i32>,
}

impl Sync {
    /// The desired count of this sync (`status.desiredReplicas`), when one was computed.
    pub fn desired(&self) -> Option<i32> {
        match &self.outcome {
            Outcome::OutOfRange { desired, .. } | Outcome::Decided { desired, .. } => {
                Some(*desired)
            }
            _ => None,
        }
    }

    /// One line about the sync, with the controller's own words where it has them.
    pub fn explain(&self, current: i32) -> String {
        match &self.outcome {
            Outcome::ScalingDisabled => {
                "ScalingDisabled: scaling is disabled since the replica count of the target is zero"
                    .to_owned()
            }
            Outcome::OutOfRange { reason, .. } => (*reason).to_owned(),
            Outcome::NoDecision { failed_metric } => format!(
                "FailedGetExternalMetric: the HPA was unable to compute the replica count: {failed_metric} failed"
            ),
            Outcome::Decided {
                proposal,
                above,
                stabilized,
                stabilization_reason,
                desired,
                limit_reason,
            } => {
                let mut text = match (above, proposal.cmp(&current)) {
                    (Some(m), std::cmp::Ordering::Greater) => {
                        format!("proposal {proposal} ({m} above target)")
                    }
                    (_, std::cmp::Ordering::Less) => {
                        format!("proposal {proposal} (All metrics below target)")
                    }
                    _ => format!("proposal {proposal}, the current count"),
                };
                if stabilized != proposal {
                    text.push_str(&format!(", {stabilization_reason} → {stabilized}"));
                }
                if desired != stabilized {
                    text.push_str(&format!(", {limit_reason} → {desired}"));
                }
                text
            }
        }
    }
}

/// The tolerance band test, inclusive at both ends (§4.3): a usage ratio inside it keeps the count.
pub fn within(ratio: f64, up: f64, down: f64) -> bool {
    (1.0 - down) <= ratio && ratio <= (1.0 + up)
}

/// Go's `int32(math.Ceil(x))` for the ranges that occur, capped at the int32 bounds.
fn ceil_i32(x: f64) -> i32 {
    let c = x.ceil();
    if c.is_nan() {
        0
    } else {
        c.clamp(f64::from(i32::MIN), f64::from(i32::MAX)) as i32
    }
}

/// The proposal of one external metric (§4.1, §4.2). `current` is `spec.replicas`; status and ready pods
/// are taken to be equal to it (instant rollout).
pub fn metric_proposal(
    metric: &ExternalMetric,
    usage_milli: i64,
    current: i32,
    tolerance_up: f64,
    tolerance_down: f64,
) -> i32 {
    let usage = usage_milli as f64;
    let target = metric.target_milli as f64;
    match metric.target_type {
        MetricTargetType::Value => {
            let ratio = usage / target;
            if current == 0 {
                ceil_i32(ratio)
            } else if within(ratio, tolerance_up, tolerance_down) {
                current
            } else {
                ceil_i32(ratio * f64::from(current))
            }
        }
        _ => {
            let status = current;
            let ratio = usage / (target * f64::from(status));
            if within(ratio, tolerance_up, tolerance_down) {
                status
            } else {
                ceil_i32(usage / target)
            }
        }
    }
}

/// Σ of the changes in `events` strictly younger than `period` seconds.
fn changes_within(events: &[(i32, i64)], period: i64, now: i64) -> i32 {
    events
        .iter()
        .filter(|(_, t)| *t > now - period)
        .map(|(c, _)| *c)
        .sum()
}

fn scale_up_limit(current: i32, memory: &HpaMemory, rules: &Rules, now: i64) -> i32 {
    if rules.select_policy == SelectPolicy::Disabled {
        return current;
    }
    let mut result = if rules.select_policy == SelectPolicy::Min {
        i32::MAX
    } else {
        i32::MIN
    };
    for p in &rules.policies {
        let added = changes_within(&memory.up_events, p.period_seconds, now);
        let removed = changes_within(&memory.down_events, p.period_seconds, now);
        let start = current - added + removed;
        let proposed = match p.kind {
            PolicyType::Pods => start + p.value,
            PolicyType::Percent => ceil_i32(f64::from(start) * (1.0 + f64::from(p.value) / 100.0)),
        };
        result = if rules.select_policy == SelectPolicy::Min {
            result.min(proposed)
        } else {
            result.max(proposed)
        };
    }
    result
}

fn scale_down_limit(current: i32, memory: &HpaMemory, rules: &Rules, now: i64) -> i32 {
    if rules.select_policy == SelectPolicy::Disabled {
        return current;
    }
    let mut result = if rules.select_policy == SelectPolicy::Min {
        i32::MIN
    } else {
        i32::MAX
    };
    for p in &rules.policies {
        let added = changes_within(&memory.up_events, p.period_seconds, now);
        let removed = changes_within(&memory.down_events, p.period_seconds, now);
        let start = current - added + removed;
        let proposed = match p.kind {
            PolicyType::Pods => start - p.value,
            // Go's int32(float) truncates towards zero.
            PolicyType::Percent => (f64::from(start) * (1.0 - f64::from(p.value) / 100.0)) as i32,
        };
        result = if rules.select_policy == SelectPolicy::Min {
            result.max(proposed)
        } else {
            result.min(proposed)
        };
    }
    result
}

/// §5: max-stabilization over 300 s (inclusive), then the min / 2×-or-4 clamp.
fn normalize_without_behavior(
    hpa: &Hpa,
    memory: &mut HpaMemory,
    current: i32,
    proposal: i32,
    now: i64,
) -> (i32, &'static str, i32, &'static str) {
    let cutoff = now - DOWNSCALE_STABILIZATION_SECONDS;
    let stabilized = memory
        .recommendations
        .iter()
        .filter(|(_, t)| *t >= cutoff)
        .map(|(r, _)| *r)
        .fold(proposal, i32::max);
    memory.recommendations.retain(|(_, t)| *t >= cutoff);
    memory.recommendations.push((proposal, now));
    let able = if stabilized != proposal {
        SCALE_DOWN_STABILIZED
    } else {
        "ReadyForNewScale"
    };
    let up_limit = (SCALE_UP_LIMIT_FACTOR * f64::from(current)).max(SCALE_UP_LIMIT_MINIMUM) as i32;
    let (max_allowed, max_reason) = if hpa.max_replicas > up_limit {
        (up_limit, "ScaleUpLimit")
    } else {
        (hpa.max_replicas, "TooManyReplicas")
    };
    let (desired, limit) = if stabilized < hpa.min_replicas {
        (hpa.min_replicas, "TooFewReplicas")
    } else if stabilized > max_allowed {
        (max_allowed, max_reason)
    } else {
        (stabilized, "DesiredWithinRange")
    };
    (stabilized, able, desired, limit)
}

/// §6.2 and §6.3: windows (strict), then the policies' rate limits and min/max.
fn normalize_with_behavior(
    hpa: &Hpa,
    behavior: &Behavior,
    memory: &mut HpaMemory,
    current: i32,
    proposal: i32,
    now: i64,
) -> (i32, &'static str, i32, &'static str) {
    let up_window = behavior.scale_up.stabilization_window_seconds;
    let down_window = behavior.scale_down.stabilization_window_seconds;
    let mut up = proposal;
    let mut down = proposal;
    for (r, t) in &memory.recommendations {
        if *t > now - up_window {
            up = up.min(*r);
        }
        if *t > now - down_window {
            down = down.max(*r);
        }
    }
    let obsolete = now - up_window.max(down_window);
    memory.recommendations.retain(|(_, t)| *t >= obsolete);
    memory.recommendations.push((proposal, now));
    let mut stabilized = current;
    if stabilized < up {
        stabilized = up;
    }
    if stabilized > down {
        stabilized = down;
    }
    let able = if stabilized == proposal {
        "ReadyForNewScale"
    } else if proposal >= current {
        "ScaleUpStabilized"
    } else {
        SCALE_DOWN_STABILIZED
    };
    let (desired, limit) = if stabilized > current {
        let limit = scale_up_limit(current, memory, &behavior.scale_up, now).max(current);
        let (max_allowed, reason) = if hpa.max_replicas > limit {
            (limit, "ScaleUpLimit")
        } else {
            (hpa.max_replicas, "TooManyReplicas")
        };
        if stabilized > max_allowed {
            (max_allowed, reason)
        } else {
            (stabilized, "DesiredWithinRange")
        }
    } else if stabilized < current {
        let limit = scale_down_limit(current, memory, &behavior.scale_down, now).min(current);
        let (min_allowed, reason) = if hpa.min_replicas < limit {
            (limit, "ScaleDownLimit")
        } else {
            (hpa.min_replicas, "TooFewReplicas")
        };
        if stabilized < min_allowed {
            (min_allowed, reason)
        } else {
            (stabilized, "DesiredWithinRange")
        }
    } else {
        (stabilized, "DesiredWithinRange")
    };
    (stabilized, able, desired, limit)
}

/// One reconcile of the HPA at `now` (seconds) with the target at `current` replicas. `usage_milli` holds
/// one value per metric of `hpa.metrics` (thousandths of the served value), `None` for a failed fetch.
pub fn sync(
    hpa: &Hpa,
    memory: &mut HpaMemory,
    now: i64,
    current: i32,
    usage_milli: &[Option<i64>],
) -> Sync {
    if !memory.initialized {
        memory.initialized = true;
        memory.recommendations.push((current, now));
    }
    let min = hpa.min_replicas;
    let outcome = if current == 0 && min != 0 {
        return Sync {
            outcome: Outcome::ScalingDisabled,
            write: None,
        };
    } else if current > hpa.max_replicas {
        Outcome::OutOfRange {
            desired: hpa.max_replicas,
            reason: "Current number of replicas above Spec.MaxReplicas",
        }
    } else if current < min {
        Outcome::OutOfRange {
            desired: min,
            reason: "Current number of replicas below Spec.MinReplicas",
        }
    } else {
        let (tol_up, tol_down) = match &hpa.behavior {
            Some(b) => (b.scale_up.tolerance, b.scale_down.tolerance),
            None => (DEFAULT_TOLERANCE, DEFAULT_TOLERANCE),
        };
        let mut proposal = 0;
        let mut above = None;
        let mut invalid = 0;
        let mut first_invalid = None;
        for (m, usage) in hpa.metrics.iter().zip(usage_milli) {
            match usage {
                Some(u) => {
                    let p = metric_proposal(m, *u, current, tol_up, tol_down);
                    if p > proposal {
                        proposal = p;
                        above = Some(m.name.clone());
                    }
                }
                None => {
                    invalid += 1;
                    first_invalid.get_or_insert_with(|| m.name.clone());
                }
            }
        }
        if invalid >= hpa.metrics.len() || (invalid > 0 && proposal < current) {
            return Sync {
                outcome: Outcome::NoDecision {
                    failed_metric: first_invalid.unwrap_or_default(),
                },
                write: None,
            };
        }
        let (stabilized, stabilization_reason, desired, limit_reason) = match &hpa.behavior {
            None => normalize_without_behavior(hpa, memory, current, proposal, now),
            Some(b) => normalize_with_behavior(hpa, b, memory, current, proposal, now),
        };
        Outcome::Decided {
            proposal,
            above,
            stabilized,
            stabilization_reason,
            desired,
            limit_reason,
        }
    };
    let sync = Sync {
        write: None,
        outcome,
    };
    let desired = sync.desired().unwrap_or(current);
    if desired == current {
        return sync;
    }
    if let Some(b) = &hpa.behavior {
        // Scale events are kept only with behavior; those older than the longest period are never read.
        let (events, periods) = if desired > current {
            (&mut memory.up_events, &b.scale_up.policies)
        } else {
            (&mut memory.down_events, &b.scale_down.policies)
        };
        let longest = periods.iter().map(|p| p.period_seconds).max().unwrap_or(0);
        events.retain(|(_, t)| *t > now - longest);
        events.push(((desired - current).abs(), now));
    }
    Sync {
        write: Some(desired),
        ..sync
    }
}

#[cfg(test)]
mod tests;
