//! One scale loop per ScaledObject: every `pollingInterval` it samples the triggers, keeps the latest
//! values for the metrics service, tracks health for fallback, and moves the target between 0 (or idle)
//! and min itself. The HPA does 1↔N.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use keda_api::ScaledObject;
use keda_api::common::TriggerActivityStatus;
use keda_api::consts::{condition_reasons, condition_types, event_reasons};
use keda_scalers::Scaler;
use keda_scalers::http::RequestLabels;
use keda_scaling::activation::{
    Decision, ScaleLoopInput, ScaleReason, decide, scaled_object_is_active,
};
use keda_scaling::fallback;
use kube::ResourceExt;
use kube::runtime::events::EventType;
use kube::runtime::reflector::ObjectRef;
use tokio::task::JoinHandle;

use crate::Context;
use crate::metrics::{LoopLabels, ScalerLabels};
use crate::status::set_condition;
use crate::target::Target;
use crate::triggers::ParsedTrigger;

/// The latest poll of one metric, served to the HPA when `useCachedMetrics` is set.
#[derive(Clone, Debug)]
pub struct MetricRecord {
    pub value: Option<f64>,
    pub active: bool,
    pub error: Option<String>,
    pub at: Instant,
}

type LoopKey = (String, String);
/// Built scalers of one object, by metric name.
type ObjectScalers = HashMap<String, Arc<dyn Scaler>>;

struct Running {
    generation: i64,
    handle: JoinHandle<()>,
}

/// The running loops and the latest values they saw.
#[derive(Default)]
pub struct Loops {
    running: Mutex<HashMap<LoopKey, Running>>,
    records: Mutex<HashMap<LoopKey, HashMap<String, MetricRecord>>>,
    /// The built scalers of each object's current generation, by metric name, so the metrics service
    /// can sample live without building its own clients.
    scalers: Mutex<HashMap<LoopKey, ObjectScalers>>,
}

impl Loops {
    /// Starts the loop for this generation of the object, replacing an older one. A loop for the same
    /// generation is left alone (reconciles repeat; the loop must not restart each time).
    pub fn ensure(
        &self,
        ctx: Arc<Context>,
        so: &ScaledObject,
        target: Target,
        triggers: Vec<ParsedTrigger>,
    ) {
        let key = (so.namespace().unwrap_or_default(), so.name_any());
        let generation = so.metadata.generation.unwrap_or(0);
        let Ok(mut running) = self.running.lock() else {
            return;
        };
        if let Some(r) = running.get(&key)
            && r.generation == generation
            && !r.handle.is_finished()
        {
            return;
        }
        if let Some(old) = running.remove(&key) {
            old.handle.abort();
        }
        let interval = Duration::from_secs(so.spec.polling_interval().max(1) as u64);
        let target = Target {
            pod_spec: None,
            ..target
        };
        let handle = tokio::spawn(run(ctx, key.clone(), target, triggers, interval));
        running.insert(key, Running { generation, handle });
    }

    pub fn stop(&self, ns: &str, name: &str) {
        let key = (ns.to_owned(), name.to_owned());
        if let Ok(mut running) = self.running.lock()
            && let Some(old) = running.remove(&key)
        {
            old.handle.abort();
        }
        if let Ok(mut records) = self.records.lock() {
            records.remove(&key);
        }
        if let Ok(mut scalers) = self.scalers.lock() {
            scalers.remove(&key);
        }
    }

    /// The built scaler serving `metric` of an object, if its loop has built it.
    pub fn scaler(&self, ns: &str, name: &str, metric: &str) -> Option<Arc<dyn Scaler>> {
        self.scalers
            .lock()
            .ok()?
            .get(&(ns.to_owned(), name.to_owned()))?
            .get(metric)
            .cloned()
    }

    fn publish_scalers(&self, key: &LoopKey, built: &[Built]) {
        let map = built
            .iter()
            .filter_map(|b| b.scaler.clone().map(|s| (b.trigger.metric_name.clone(), s)))
            .collect();
        if let Ok(mut scalers) = self.scalers.lock() {
            scalers.insert(key.clone(), map);
        }
    }

    pub fn is_running(&self, ns: &str, name: &str) -> bool {
        self.running
            .lock()
            .map(|r| {
                r.get(&(ns.to_owned(), name.to_owned()))
                    .is_some_and(|r| !r.handle.is_finished())
            })
            .unwrap_or(false)
    }

    pub fn record(&self, ns: &str, name: &str, metric: &str) -> Option<MetricRecord> {
        self.records
            .lock()
            .ok()?
            .get(&(ns.to_owned(), name.to_owned()))?
            .get(metric)
            .cloned()
    }

    fn store_records(&self, key: &LoopKey, recs: HashMap<String, MetricRecord>) {
        if let Ok(mut records) = self.records.lock() {
            records.insert(key.clone(), recs);
        }
    }

    pub fn count(&self) -> usize {
        self.running.lock().map(|r| r.len()).unwrap_or(0)
    }
}

struct Built {
    trigger: ParsedTrigger,
    scaler: Option<Arc<dyn Scaler>>,
}

async fn run(
    ctx: Arc<Context>,
    key: LoopKey,
    target: Target,
    triggers: Vec<ParsedTrigger>,
    interval: Duration,
) {
    let mut built: Vec<Built> = triggers
        .into_iter()
        .map(|trigger| Built {
            trigger,
            scaler: None,
        })
        .collect();
    // The precise last-active time lives here; status.lastActiveTime is only refreshed now and then (see
    // `persist_last_active`). An object that was active when this loop started (e.g. on a new leader)
    // counts as active from now, so a stale persisted time can never make it scale to zero early.
    let mut last_active = ctx
        .scaled_objects
        .get(&ObjectRef::new(&key.1).within(&key.0))
        .and_then(|so| {
            let persisted = so
                .status
                .as_ref()
                .and_then(|s| s.last_active_time.as_ref())
                .map(|t| t.0);
            let was_active = so
                .status
                .as_ref()
                .and_then(|s| {
                    crate::status::condition(s, keda_api::consts::condition_types::ACTIVE)
                })
                .is_some_and(|c| c.status == "True");
            if was_active {
                Some(Timestamp::now())
            } else {
                persisted
            }
        });
    let mut observed: Option<Observed> = None;
    // Spread the first ticks over the interval so a restart does not poll every object at once.
    let offset = interval.mul_f64(fastrand::f64());
    let mut next = tokio::time::Instant::now() + offset;
    loop {
        tokio::time::sleep_until(next).await;
        let drift = tokio::time::Instant::now().saturating_duration_since(next);
        ctx.metrics
            .scale_loop_latency_seconds
            .get_or_create(&LoopLabels {
                namespace: key.0.clone(),
                r#type: "scaledobject".into(),
                resource: key.1.clone(),
            })
            .set(drift.as_secs_f64());
        let Some(so) = ctx
            .scaled_objects
            .get(&ObjectRef::new(&key.1).within(&key.0))
        else {
            return;
        };
        if so.metadata.deletion_timestamp.is_some() {
            return;
        }
        // Boxed: the tick's state (requests in flight, status write) is large and only needed while it
        // runs; inline, every sleeping loop would keep that much memory reserved.
        Box::pin(tick(
            &ctx,
            &key,
            &so,
            &target,
            &mut built,
            &mut last_active,
            &mut observed,
        ))
        .await;
        next = tokio::time::Instant::now() + interval;
    }
}

/// One poll of every trigger, then the activation decision and status.
async fn tick(
    ctx: &Context,
    key: &LoopKey,
    so: &ScaledObject,
    target: &Target,
    built: &mut [Built],
    last_active: &mut Option<Timestamp>,
    observed: &mut Option<Observed>,
) {
    let samples = futures::future::join_all(built.iter_mut().map(|b| async {
        if b.scaler.is_none() {
            match b.trigger.config.build(&ctx.build).await {
                Ok(s) => b.scaler = Some(s),
                Err(e) => return (Err(e.to_string()), Duration::ZERO),
            }
        }
        let Some(scaler) = b.scaler.clone() else {
            return (Err("scaler not built".to_owned()), Duration::ZERO);
        };
        let started = Instant::now();
        // Requests the scaler sends are counted in `keda_scaler_http_*` under this object and trigger.
        let sample = keda_scalers::http::observe(
            RequestLabels {
                namespace: key.0.clone(),
                scaled_resource: key.1.clone(),
                scaler: b.trigger.trigger_type.clone(),
                trigger_name: b.trigger.name.clone().unwrap_or_default(),
                metric_name: b.trigger.metric_name.clone(),
            },
            ctx.metrics.clone(),
            scaler.sample(),
        );
        let result = match tokio::time::timeout(ctx.config.scaler_timeout, sample).await {
            Ok(Ok(s)) => Ok(s),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no answer within {:?}", ctx.config.scaler_timeout)),
        };
        if result.is_err() {
            // Rebuild (and so re-resolve connections) on the next poll, as upstream does after an error.
            b.scaler = None;
        }
        (result, started.elapsed())
    }))
    .await;

    let mut records = HashMap::new();
    let mut any_active = false;
    let mut any_error = false;
    let mut formula_vars = HashMap::new();
    let mut activity = BTreeMap::new();
    let mut active_metrics = Vec::new();
    for (b, (result, latency)) in built.iter().zip(&samples) {
        let t = &b.trigger;
        let labels = ScalerLabels {
            namespace: key.0.clone(),
            metric: t.metric_name.clone(),
            scaledObject: key.1.clone(),
            scaler: t.scaler_name.clone(),
            triggerIndex: t.index.to_string(),
            r#type: "scaledobject".into(),
        };
        let record = match result {
            Ok(sample) => {
                ctx.metrics
                    .scaler_metrics_value
                    .get_or_create(&labels)
                    .set(sample.value);
                ctx.metrics
                    .scaler_active
                    .get_or_create(&labels)
                    .set(if sample.active { 1.0 } else { 0.0 });
                ctx.metrics
                    .scaler_metrics_latency_seconds
                    .get_or_create(&labels)
                    .set(latency.as_secs_f64());
                // As upstream, the error counter exists (at 0) from the first poll, so rates are defined.
                let _ = ctx
                    .metrics
                    .scaler_detail_errors_total
                    .get_or_create(&labels);
                if sample.active && !t.is_resource() {
                    any_active = true;
                    active_metrics.push(t.metric_name.clone());
                }
                if let Some(name) = &t.name {
                    formula_vars.insert(name.clone(), Some(sample.value));
                }
                MetricRecord {
                    value: Some(sample.value),
                    active: sample.active,
                    error: None,
                    at: Instant::now(),
                }
            }
            Err(e) => {
                any_error = true;
                ctx.metrics
                    .scaler_detail_errors_total
                    .get_or_create(&labels)
                    .inc();
                tracing::warn!(namespace = %key.0, scaledobject = %key.1, trigger = t.index, error = %e, "scaler failed");
                if let Some(name) = &t.name {
                    formula_vars.insert(name.clone(), None);
                }
                MetricRecord {
                    value: None,
                    active: false,
                    error: Some(e.clone()),
                    at: Instant::now(),
                }
            }
        };
        if !t.is_resource() {
            activity.insert(
                t.metric_name.clone(),
                TriggerActivityStatus {
                    is_active: record.active,
                },
            );
        }
        records.insert(t.metric_name.clone(), record);
    }
    {
        // Created at 0 on the first poll, as upstream, so its rate is defined before any error.
        let object_errors =
            ctx.metrics
                .scaled_object_errors_total
                .get_or_create(&crate::metrics::ObjectLabels {
                    namespace: key.0.clone(),
                    scaledObject: key.1.clone(),
                });
        if any_error {
            object_errors.inc();
        }
    }
    ctx.loops.store_records(key, records.clone());
    ctx.loops.publish_scalers(key, built);

    let only_resource = !built.is_empty() && built.iter().all(|b| b.trigger.is_resource());
    let composite = match keda_scaling::formula::compile_scaling_modifiers(so) {
        Ok(Some(formula)) => match (
            formula.eval(&formula_vars),
            keda_scaling::formula::activation_target(so),
        ) {
            (Ok(Some(v)), Ok(act)) => Some((v, act)),
            _ => Some((f64::NAN, 0.0)),
        },
        _ => None,
    };
    let is_active = scaled_object_is_active(any_active, any_error, only_resource, composite);

    // The replica count read at most every REPLICAS_REFRESH; any scaling decision is re-checked against a
    // fresh read first, so a stale count can delay a reaction to someone else's change but never cause a
    // wrong write.
    let cached = observed.filter(|o| o.at.elapsed() < REPLICAS_REFRESH);
    let mut current = match cached {
        Some(o) => o.replicas,
        None => match read_replicas(ctx, so, target, observed).await {
            Some(r) => r,
            None => return,
        },
    };
    let now = Timestamp::now();
    let decide_with = |current: i32| {
        let mut input = ScaleLoopInput::from_scaled_object(so, current, is_active, any_error, now);
        input.last_active_time = match (*last_active, input.last_active_time) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        decide(&input)
    };
    let mut decision = decide_with(current);
    if cached.is_some() && matches!(decision, Decision::ScaleTo { .. }) {
        current = match read_replicas(ctx, so, target, observed).await {
            Some(r) => r,
            None => return,
        };
        decision = decide_with(current);
    }
    let mut scaled_ok = true;
    if let Decision::ScaleTo { replicas, reason } = decision {
        let kind = format!(
            "{}/{}.{}",
            target.resource.group, target.resource.version, target.resource.kind
        );
        let (ok_reason, fail_reason) = match reason {
            ScaleReason::Activate => (
                event_reasons::KEDA_SCALE_TARGET_ACTIVATED,
                event_reasons::KEDA_SCALE_TARGET_ACTIVATION_FAILED,
            ),
            _ => (
                event_reasons::KEDA_SCALE_TARGET_DEACTIVATED,
                event_reasons::KEDA_SCALE_TARGET_DEACTIVATION_FAILED,
            ),
        };
        match target.scale_to(&ctx.client, replicas).await {
            Ok(()) => {
                *observed = Some(Observed {
                    replicas,
                    at: Instant::now(),
                });
                let note = match reason {
                    ScaleReason::Activate => format!(
                        "Scaled {kind} {}/{} from {current} to {replicas}, triggered by {}",
                        key.0,
                        target.name,
                        active_metrics.join(";")
                    ),
                    _ => format!(
                        "Deactivated {kind} {}/{} from {current} to {replicas}",
                        key.0, target.name
                    ),
                };
                tracing::info!(namespace = %key.0, scaledobject = %key.1, from = current, to = replicas, ?reason, "scaled target");
                if reason != ScaleReason::EnforceMin {
                    ctx.event(so, EventType::Normal, ok_reason, note, "Scale")
                        .await;
                }
            }
            Err(e) => {
                scaled_ok = false;
                *observed = None;
                ctx.event(so, EventType::Warning, fail_reason, e.to_string(), "Scale")
                    .await;
            }
        }
    }

    let fallback_cfg = so.spec.fallback.clone();
    let result = ctx
        .statuses
        .update(&ctx.client, so, |s| {
            let conditions = s.conditions.get_or_insert_with(Vec::new);
            let was_active = is_active_condition(conditions);
            if let Some(c) = decision.active_condition(so.is_force_activation()) {
                set_condition(
                    conditions,
                    condition_types::ACTIVE,
                    c.status,
                    c.reason,
                    c.message,
                );
            }
            match decision.ready_condition() {
                Some(c) => {
                    set_condition(
                        conditions,
                        condition_types::READY,
                        c.status,
                        c.reason,
                        c.message,
                    );
                }
                None => {
                    set_condition(
                        conditions,
                        condition_types::READY,
                        "True",
                        condition_reasons::SCALED_OBJECT_READY,
                        condition_reasons::SCALED_OBJECT_READY_MESSAGE,
                    );
                }
            }
            if decision.refreshes_last_active_time() && scaled_ok {
                *last_active = Some(now);
            }
            let active_now = s.conditions.as_deref().is_some_and(is_active_condition);
            if let Some(t) = last_active_to_persist(
                s.last_active_time.as_ref().map(|t| t.0),
                was_active,
                active_now,
                *last_active,
            ) {
                s.last_active_time = Some(Time(t));
            }
            s.triggers_activity = Some(activity.clone());
            if let Some(fb) = &fallback_cfg {
                let health = s.health.get_or_insert_with(BTreeMap::new);
                for (metric, rec) in &records {
                    let h = if rec.error.is_some() {
                        fallback::record_failure(health.get(metric))
                    } else {
                        fallback::record_success()
                    };
                    health.insert(metric.clone(), h);
                }
                health.retain(|m, _| records.contains_key(m));
                let conditions = s.conditions.get_or_insert_with(Vec::new);
                if fallback::fallback_exceeded(health, fb.failure_threshold) {
                    set_condition(
                        conditions,
                        condition_types::FALLBACK,
                        "True",
                        condition_reasons::FALLBACK_EXISTS,
                        "At least one trigger is falling back on this scaled object",
                    );
                } else {
                    set_condition(
                        conditions,
                        condition_types::FALLBACK,
                        "False",
                        condition_reasons::NO_FALLBACK_FOUND,
                        "No fallbacks are active on this scaled object",
                    );
                }
            }
        })
        .await;
    if let Err(e) = result {
        tracing::warn!(error = %e, "status update failed");
    }
}

/// How long a read replica count is trusted before `/scale` is read again.
const REPLICAS_REFRESH: Duration = Duration::from_secs(60);

/// The target's replica count as last read or written by this loop.
#[derive(Clone, Copy, Debug)]
struct Observed {
    replicas: i32,
    at: Instant,
}

/// Reads `/scale`; on failure sets Ready=False `ErrorGettingCurrentReplicas` and returns `None`.
async fn read_replicas(
    ctx: &Context,
    so: &ScaledObject,
    target: &Target,
    observed: &mut Option<Observed>,
) -> Option<i32> {
    match target.current_replicas(&ctx.client).await {
        Ok(r) => {
            *observed = Some(Observed {
                replicas: r,
                at: Instant::now(),
            });
            Some(r)
        }
        Err(e) => {
            *observed = None;
            tracing::warn!(error = %e, "reading current replicas failed");
            let _ = ctx
                .statuses
                .update(&ctx.client, so, |s| {
                    let c = s.conditions.get_or_insert_with(Vec::new);
                    set_condition(
                        c,
                        condition_types::READY,
                        "False",
                        condition_reasons::ERROR_GETTING_CURRENT_REPLICAS,
                        &e.to_string(),
                    );
                })
                .await;
            None
        }
    }
}

fn is_active_condition(conditions: &[keda_api::common::Condition]) -> bool {
    conditions
        .iter()
        .any(|c| c.r#type == condition_types::ACTIVE && c.status == "True")
}

/// What `status.lastActiveTime` becomes in this status write, if anything. It changes only together with
/// the object's activity: when it becomes active (now) and when it stops (its last active poll). A
/// steadily active object so costs no write per poll (upstream writes one each time); the loop keeps the
/// precise time in memory, and a new leader counts a persisted Active=True as active from its start.
fn last_active_to_persist(
    persisted: Option<Timestamp>,
    was_active: bool,
    active_now: bool,
    last_active: Option<Timestamp>,
) -> Option<Timestamp> {
    let newest = last_active?;
    if persisted.is_some_and(|p| p >= newest) {
        return None;
    }
    (persisted.is_none() || was_active != active_now).then_some(newest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_active_time_is_written_only_when_activity_changes() {
        let t0 = Timestamp::from_second(1_800_000_000).unwrap();
        let at = |s: i64| {
            t0.checked_add(k8s_openapi::jiff::SignedDuration::from_secs(s))
                .unwrap()
        };
        // (persisted, was active, active now, in memory) → written
        let table = [
            (None, false, true, Some(at(0)), Some(at(0))),
            (Some(at(0)), true, true, Some(at(30)), None),
            (Some(at(0)), true, true, Some(at(3600)), None),
            (Some(at(0)), true, false, Some(at(90)), Some(at(90))),
            (Some(at(90)), false, true, Some(at(400)), Some(at(400))),
            (Some(at(90)), false, false, Some(at(90)), None),
            (None, false, false, None, None),
            // Never moves backwards (a newer time persisted by another leader).
            (Some(at(100)), true, false, Some(at(90)), None),
            // An object first seen inactive but with a known activity gets it persisted once.
            (None, false, false, Some(at(5)), Some(at(5))),
        ];
        for (persisted, was, now, memory, want) in table {
            assert_eq!(
                last_active_to_persist(persisted, was, now, memory),
                want,
                "{persisted:?} {was} {now} {memory:?}"
            );
        }
    }
}
