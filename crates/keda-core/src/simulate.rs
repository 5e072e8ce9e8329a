//! `keda simulate` without IO: a metric series replayed through KEDA's scale loop — the same
//! [`crate::activation::decide`], [`crate::fallback`] health tracking and fallback values and
//! `scalingModifiers` formula the operator runs — and through the HPA controller model
//! ([`crate::hpa::controller`]), on one clock of whole seconds from the ScaledObject's creation.
//!
//! Conventions (`reference/hpa-algorithm.md` §9): KEDA polls at `k × pollingInterval`, the HPA syncs at
//! `phase + 15 k` (phase 15: the first sync 15 s after the HPA appears); at equal times KEDA runs first.
//! The HPA reads the series at its sync, KEDA at its poll, a `useCachedMetrics` trigger gives the HPA the
//! value of the last poll. An empty cell is a failed query for whichever loop reads it, and every failed
//! query counts towards `fallback.failureThreshold`. Status and ready pods equal `spec.replicas` (instant
//! rollout).

use std::collections::BTreeMap;

use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use keda_api::ScaledObject;
use keda_api::common::HealthStatus;
use keda_api::consts::names::COMPOSITE_METRIC;

use crate::Error;
use crate::activation::{self, Decision, ScaleLoopInput, ScaleReason};
use crate::fallback::{self, FallbackMetric, FallbackTarget, MetricState};
use crate::hpa::MetricTargetType;
use crate::hpa::controller::{self, Hpa, HpaMemory, SYNC_PERIOD_SECONDS};

fn error(reason: impl Into<String>) -> Error {
    Error::Simulation {
        reason: reason.into(),
    }
}

/// One trigger of the ScaledObject as the operator's parse sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct Trigger {
    pub index: usize,
    pub trigger_type: String,
    /// `triggers[].name`: the formula's variable and a column name the series may use.
    pub name: Option<String>,
    /// `s<index>-<name>`: the HPA's external metric and the other column name the series may use.
    pub metric_name: String,
    pub target_type: MetricTargetType,
    pub target: f64,
    /// The value must exceed it for the trigger to be active.
    pub activation_threshold: f64,
    pub use_cached_metrics: bool,
}

/// A metric series: `t,<column>…` rows, each value holding from its `t` until the next row.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub columns: Vec<String>,
    /// (t in seconds, one value per column; `None` = a failed sample), strictly increasing in t.
    pub rows: Vec<(i64, Vec<Option<f64>>)>,
}

impl Series {
    /// Parses `t,<column>…` CSV. Errors name the line (1-based) and the column.
    pub fn parse_csv(text: &str) -> Result<Series, Error> {
        let mut lines = text
            .lines()
            .enumerate()
            .map(|(i, l)| (i + 1, l.trim()))
            .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'));
        let Some((_, header)) = lines.next() else {
            return Err(error(
                "the series is empty: expected a header `t,<trigger>…`",
            ));
        };
        let mut cells = header.split(',').map(str::trim);
        if cells.next() != Some("t") {
            return Err(error(format!(
                "the series header must start with `t` (seconds), found {header:?}"
            )));
        }
        let columns: Vec<String> = cells.map(str::to_owned).collect();
        if columns.is_empty() || columns.iter().any(String::is_empty) {
            return Err(error(format!(
                "the series header {header:?} must name one or more metrics after `t`"
            )));
        }
        let mut rows: Vec<(i64, Vec<Option<f64>>)> = Vec::new();
        for (line, text) in lines {
            let cells: Vec<&str> = text.split(',').map(str::trim).collect();
            if cells.len() != columns.len() + 1 {
                return Err(error(format!(
                    "line {line}: {} cells, the header has {}",
                    cells.len(),
                    columns.len() + 1
                )));
            }
            let t: i64 = cells[0].parse().map_err(|_| {
                error(format!(
                    "line {line}: t {:?} is not a whole number of seconds",
                    cells[0]
                ))
            })?;
            if t < 0 {
                return Err(error(format!("line {line}: t {t} is negative")));
            }
            if let Some((prev, _)) = rows.last()
                && t <= *prev
            {
                return Err(error(format!(
                    "line {line}: t {t} does not come after the previous row's {prev}"
                )));
            }
            let mut values = Vec::with_capacity(columns.len());
            for (cell, column) in cells[1..].iter().zip(&columns) {
                if cell.is_empty() {
                    values.push(None);
                    continue;
                }
                let v: f64 = cell.parse().map_err(|_| {
                    error(format!(
                        "line {line}, column {column}: {cell:?} is not a number (leave it empty for a failed sample)"
                    ))
                })?;
                if !v.is_finite() {
                    return Err(error(format!(
                        "line {line}, column {column}: {cell:?} is not a finite number"
                    )));
                }
                values.push(Some(v));
            }
            rows.push((t, values));
        }
        match rows.first() {
            None => Err(error("the series has a header but no rows")),
            Some((t, _)) if *t != 0 => Err(error(format!(
                "the series must start at t=0 (the ScaledObject's creation), its first row is t={t}"
            ))),
            Some(_) => Ok(Series { columns, rows }),
        }
    }

    /// The row in force at `t`.
    fn at(&self, t: i64) -> &[Option<f64>] {
        let i = self.rows.partition_point(|(rt, _)| *rt <= t);
        &self.rows[i.saturating_sub(1)].1
    }

    /// The last time of the series: the simulation ends there.
    pub fn end(&self) -> i64 {
        self.rows.last().map_or(0, |(t, _)| *t)
    }
}

/// Options of one simulation.
#[derive(Clone, Debug, PartialEq)]
pub struct Options {
    /// `spec.replicas` of the target at t=0.
    pub start_replicas: i32,
    /// When the HPA's first sync happens (then every 15 s).
    pub hpa_phase: i64,
}

/// One line of the timeline.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Entry {
    pub t: i64,
    /// `spec.replicas` after this step.
    pub replicas: i32,
    /// The HPA's desired count at an HPA sync that computed one.
    pub hpa_desired: Option<i32>,
    /// The series' values read at `t`, by column (`null` for a failed sample).
    pub metrics: BTreeMap<String, Option<f64>>,
    pub reason: String,
}

/// Per trigger: which column feeds it.
fn columns_of(triggers: &[Trigger], series: &Series) -> Result<Vec<usize>, Error> {
    let mut used = vec![false; series.columns.len()];
    let mut out = Vec::with_capacity(triggers.len());
    for t in triggers {
        let found = series.columns.iter().position(|c| {
            *c == t.metric_name || t.name.as_deref().is_some_and(|n| !n.is_empty() && n == c)
        });
        let Some(i) = found else {
            let names = match &t.name {
                Some(n) if !n.is_empty() => format!("{n:?} or {:?}", t.metric_name),
                _ => format!("{:?}", t.metric_name),
            };
            return Err(error(format!(
                "the series has no column for trigger {} ({}): name one {names}",
                t.index, t.trigger_type
            )));
        };
        used[i] = true;
        out.push(i);
    }
    if let Some(i) = used.iter().position(|u| !u) {
        let known: Vec<String> = triggers
            .iter()
            .map(|t| match &t.name {
                Some(n) if !n.is_empty() => format!("{n} / {}", t.metric_name),
                _ => t.metric_name.clone(),
            })
            .collect();
        return Err(error(format!(
            "series column {:?} matches no trigger of the ScaledObject (triggers: {})",
            series.columns[i],
            known.join(", ")
        )));
    }
    Ok(out)
}

/// The state of the run between steps.
struct Run<'a> {
    so: &'a ScaledObject,
    triggers: &'a [Trigger],
    columns: Vec<usize>,
    hpa: Hpa,
    memory: HpaMemory,
    valid_fallback: Option<&'a keda_api::scaled_object::Fallback>,
    formula: Option<crate::formula::Formula>,
    health: BTreeMap<String, HealthStatus>,
    /// The last poll's sample per trigger (for `useCachedMetrics`).
    cached: Vec<Option<f64>>,
    replicas: i32,
    last_active: Option<i64>,
    /// The previous poll's decision and whether a trigger was in fallback: a poll gets an entry when
    /// either changes.
    last_decision: Option<(Decision, bool)>,
}

/// KEDA's clock: `lastActiveTime` and `creationTimestamp` are whole seconds while real polls run at
/// sub-second offsets, so a poll is modelled half a second after its whole second; the operator's strict
/// "elapsed > period" then deactivates on the poll exactly `cooldownPeriod` after the last active one,
/// as a cluster does (§8.3).
fn keda_time(t: i64) -> Timestamp {
    Timestamp::UNIX_EPOCH + SignedDuration::from_secs(t) + SignedDuration::from_millis(500)
}

fn whole_second(t: i64) -> Timestamp {
    Timestamp::UNIX_EPOCH + SignedDuration::from_secs(t)
}

impl Run<'_> {
    /// One query of trigger `i` at `t` (a KEDA poll, or an HPA fetch that is not cached), with its
    /// health updated as the operator does.
    fn query(&mut self, i: usize, sample: Option<f64>) -> MetricState {
        let t = &self.triggers[i];
        let sample = sample.map(|v| (v, activation::is_active(v, t.activation_threshold)));
        let (health, state) =
            fallback::track_metric(self.valid_fallback, self.health.get(&t.metric_name), sample);
        if let Some(h) = health {
            self.health.insert(t.metric_name.clone(), h);
        }
        state
    }

    fn composite(&self) -> Option<fallback::Composite<'_>> {
        self.formula.as_ref().map(|formula| fallback::Composite {
            formula,
            activation_target: crate::formula::activation_target(self.so).unwrap_or(0.0),
            fallback_value: fallback::composite_fallback_value(
                self.so,
                self.replicas,
                self.replicas,
            ),
            nil_value: fallback::nil_formula_value(self.so).ok(),
        })
    }

    fn states_summary(&self, states: &[MetricState]) -> fallback::PollSummary {
        let named: Vec<(Option<&str>, MetricState)> = self
            .triggers
            .iter()
            .zip(states)
            .map(|(t, s)| (t.name.as_deref(), *s))
            .collect();
        fallback::summarize(&named, false, self.composite())
    }

    /// KEDA's poll at `t`: the scale loop's decision, applied. Returns the reason when it wrote or its
    /// decision changed.
    fn poll(&mut self, t: i64, row: &[Option<f64>]) -> Option<String> {
        let mut states = Vec::with_capacity(self.triggers.len());
        for i in 0..self.triggers.len() {
            let sample = row[self.columns[i]];
            self.cached[i] = sample;
            states.push(self.query(i, sample));
        }
        let summary = self.states_summary(&states);
        let mut input = ScaleLoopInput::from_scaled_object(
            self.so,
            self.replicas,
            summary.is_active,
            summary.is_error,
            keda_time(t),
        );
        input.creation_time = Some(whole_second(0));
        input.last_active_time = self.last_active.map(whole_second);
        let decision = activation::decide(&input);
        if decision.refreshes_last_active_time() {
            self.last_active = Some(t);
        }
        let changed = self.last_decision != Some((decision, summary.fallback_active));
        self.last_decision = Some((decision, summary.fallback_active));
        let before = self.replicas;
        let why = match decision {
            Decision::ScaleTo { replicas, reason } => {
                self.replicas = replicas;
                let what = match reason {
                    ScaleReason::Activate => "KEDAScaleTargetActivated: active",
                    ScaleReason::Deactivate(_) => {
                        "KEDAScaleTargetDeactivated: inactive for cooldownPeriod"
                    }
                    ScaleReason::EnforceMin => "below minReplicaCount",
                };
                return Some(format!("KEDA: {what}, {before} → {replicas}"));
            }
            Decision::KeepActive => "active".to_owned(),
            Decision::Cooldown => {
                let since = self.last_active.unwrap_or(0);
                let period = if self.last_active.is_some() {
                    self.so.spec.cooldown_period()
                } else {
                    self.so.spec.initial_cooldown_period()
                };
                let from = if self.last_active.is_some() {
                    "the last active poll"
                } else {
                    "creation (initialCooldownPeriod)"
                };
                format!(
                    "ScalerCooldown: inactive, cooling down until t={} ({period} s after {from} at t={since}); the first poll from then scales in",
                    since + i64::from(period),
                )
            }
            Decision::PartialTriggerError => {
                "active, some triggers failed (PartialTriggerError)".to_owned()
            }
            Decision::KeepFallbackToHpa => {
                "triggers failing: the HPA applies the fallback".to_owned()
            }
            Decision::TriggerError => "triggers failing, no fallback (TriggerError)".to_owned(),
            Decision::Nothing => "inactive; nothing to change".to_owned(),
            Decision::Paused => "paused".to_owned(),
            Decision::ScaleOutPaused => "active, scale-out paused".to_owned(),
            Decision::ScaleInPaused => "inactive, scale-in paused".to_owned(),
        };
        let fallback_note = if summary.fallback_active {
            " (a trigger is in fallback)"
        } else {
            ""
        };
        changed.then(|| format!("KEDA: {why}{fallback_note}"))
    }

    /// The value the metrics server answers for one HPA metric at `t`, in thousandths; `None` is an error.
    fn served(&mut self, metric: usize, row: &[Option<f64>]) -> Option<i64> {
        let name = self.hpa.metrics[metric].name.clone();
        if name == COMPOSITE_METRIC {
            let mut states = Vec::with_capacity(self.triggers.len());
            for i in 0..self.triggers.len() {
                states.push(self.fetch(i, row));
            }
            let summary = self.states_summary(&states);
            if summary.is_error {
                return None;
            }
            return summary.composite.map(crate::quantity::f64_to_milli);
        }
        let i = self.triggers.iter().position(|t| t.metric_name == name)?;
        match self.fetch(i, row) {
            MetricState::Value { value, .. } => Some(crate::quantity::f64_to_milli(value)),
            MetricState::Failed | MetricState::NilInFormula => None,
            MetricState::Fallback => {
                let t = &self.triggers[i];
                let fb = self.valid_fallback?;
                let target = FallbackTarget {
                    target_type: t.target_type,
                    value: t.target,
                };
                match fallback::fallback_metric(
                    &t.metric_name,
                    fb,
                    self.replicas,
                    target,
                    Some(self.replicas),
                ) {
                    Ok(FallbackMetric::Milli(m)) => Some(m),
                    _ => None,
                }
            }
        }
    }

    /// An HPA fetch of trigger `i`: the cached poll value for `useCachedMetrics`, else a live query.
    fn fetch(&mut self, i: usize, row: &[Option<f64>]) -> MetricState {
        if self.triggers[i].use_cached_metrics {
            let t = &self.triggers[i];
            return match self.cached[i] {
                Some(v) => MetricState::Value {
                    value: v,
                    active: activation::is_active(v, t.activation_threshold),
                },
                None => fallback::state_from_health(
                    self.valid_fallback,
                    self.health.get(&t.metric_name),
                )
                .unwrap_or(MetricState::Failed),
            };
        }
        self.query(i, row[self.columns[i]])
    }

    /// The HPA's sync at `t`.
    fn sync(&mut self, t: i64, row: &[Option<f64>]) -> (Option<i32>, String) {
        let current = self.replicas;
        // Only a sync that computes reads metrics (§3): not while scaling is disabled or out of range.
        let reads =
            current != 0 && current >= self.hpa.min_replicas && current <= self.hpa.max_replicas;
        let usage: Vec<Option<i64>> = if reads {
            (0..self.hpa.metrics.len())
                .map(|m| self.served(m, row))
                .collect()
        } else {
            vec![None; self.hpa.metrics.len()]
        };
        let result = controller::sync(&self.hpa, &mut self.memory, t, current, &usage);
        let mut reason = format!("HPA: {}", result.explain(current));
        if let Some(w) = result.write {
            self.replicas = w;
            reason.push_str(&format!("; SuccessfulRescale {current} → {w}"));
        }
        (result.desired(), reason)
    }
}

/// Replays `series` through the scale loop of `so` (whose parsed `triggers` are given) and through the
/// HPA KEDA built for it (`hpa`, from [`crate::hpa::build_hpa`]).
pub fn simulate(
    so: &ScaledObject,
    triggers: &[Trigger],
    hpa: &HorizontalPodAutoscaler,
    series: &Series,
    options: &Options,
) -> Result<Vec<Entry>, Error> {
    if so.is_paused() {
        return Err(error(
            "the ScaledObject is paused: neither KEDA nor its HPA scales it",
        ));
    }
    let columns = columns_of(triggers, series)?;
    let model = Hpa::from_hpa(hpa)?;
    let formula = crate::formula::compile_scaling_modifiers(so)?;
    let polling = i64::from(so.spec.polling_interval()).max(1);
    let mut run = Run {
        so,
        triggers,
        columns,
        hpa: model,
        memory: HpaMemory::default(),
        valid_fallback: fallback::has_valid_fallback(so)
            .then_some(so.spec.fallback.as_ref())
            .flatten(),
        formula,
        health: BTreeMap::new(),
        cached: vec![None; triggers.len()],
        replicas: options.start_replicas,
        last_active: None,
        last_decision: None,
    };
    let metrics_at = |row: &[Option<f64>]| -> BTreeMap<String, Option<f64>> {
        series
            .columns
            .iter()
            .cloned()
            .zip(row.iter().copied())
            .collect()
    };
    let mut timeline = Vec::new();
    for t in 0..=series.end() {
        let row = series.at(t);
        if t % polling == 0
            && let Some(reason) = run.poll(t, row)
        {
            timeline.push(Entry {
                t,
                replicas: run.replicas,
                hpa_desired: None,
                metrics: metrics_at(row),
                reason,
            });
        }
        if t >= options.hpa_phase && (t - options.hpa_phase) % SYNC_PERIOD_SECONDS == 0 {
            let (desired, reason) = run.sync(t, row);
            timeline.push(Entry {
                t,
                replicas: run.replicas,
                hpa_desired: desired,
                metrics: metrics_at(row),
                reason,
            });
        }
    }
    Ok(timeline)
}

#[cfg(test)]
mod tests;
