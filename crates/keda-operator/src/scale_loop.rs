//! One scale loop per ScaledObject: every `pollingInterval` it samples the triggers, keeps the latest
//! values and each metric's health for the metrics service, applies fallback, and moves the target
//! between 0 (or idle) and min itself. The HPA does 1↔N.
//!
//! What a loop knows is shared ([`ObjectLoop`]): the metrics service answers the HPA from it (built
//! scalers, cached values, health, the last observed replica count) without any API request.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use keda_api::ScaledObject;
use keda_api::common::{HealthStatus, TriggerActivityStatus};
use keda_api::consts::{condition_reasons, condition_types, event_reasons};
use keda_core::activation::{Decision, ScaleLoopInput, ScaleReason, decide};
use keda_core::fallback::{self, MetricState};
use keda_scalers::http::RequestLabels;
use keda_scalers::{BuildContext, Scaler};
use kube::ResourceExt;
use kube::runtime::events::EventType;
use kube::runtime::reflector::ObjectRef;
use tokio::task::JoinHandle;

use crate::Context;
use crate::metrics::{LoopLabels, Metrics, ScalerLabels};
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

/// One trigger of a running loop: its parsed config and, once built, its scaler.
pub struct TriggerSlot {
    pub parsed: ParsedTrigger,
    scaler: Mutex<Option<Arc<dyn Scaler>>>,
    /// Set when the scaler pushed an activation ([`Scaler::activity`], `external-push`) that no poll has
    /// taken into account yet.
    pushed: Arc<AtomicBool>,
    /// Wakes the object's loop on a push.
    wake: Arc<tokio::sync::Notify>,
    /// Forwards the scaler's pushes while it is built.
    push_task: Mutex<Option<JoinHandle<()>>>,
}

impl TriggerSlot {
    fn new(parsed: ParsedTrigger, wake: Arc<tokio::sync::Notify>) -> Self {
        TriggerSlot {
            parsed,
            scaler: Mutex::new(None),
            pushed: Arc::new(AtomicBool::new(false)),
            wake,
            push_task: Mutex::new(None),
        }
    }

    fn built(&self) -> Option<Arc<dyn Scaler>> {
        self.scaler.lock().ok().and_then(|s| s.clone())
    }

    fn drop_scaler(&self) {
        self.stop_push();
        if let Ok(mut s) = self.scaler.lock() {
            *s = None;
        }
    }

    fn stop_push(&self) {
        if let Some(task) = self.push_task.lock().ok().and_then(|mut t| t.take()) {
            task.abort();
        }
    }

    /// Listens to the pushes of a newly built scaler: an activation marks this trigger active for the
    /// next poll and runs that poll now, as upstream asks the executor to check the object at once.
    /// Deactivations wait for the regular poll, as upstream ignores them.
    fn listen(&self, scaler: &dyn Scaler) {
        let Some(mut rx) = scaler.activity() else {
            return;
        };
        let (pushed, wake) = (self.pushed.clone(), self.wake.clone());
        let task = tokio::spawn(async move {
            while let Some(active) = rx.recv().await {
                if active {
                    pushed.store(true, Ordering::Relaxed);
                    wake.notify_one();
                }
            }
        });
        if let Ok(mut t) = self.push_task.lock()
            && let Some(old) = t.replace(task)
        {
            old.abort();
        }
    }

    /// Whether an activation was pushed since the last call.
    fn take_pushed(&self) -> bool {
        self.pushed.swap(false, Ordering::Relaxed)
    }

    /// The built scaler, building it first if needed (connect bounded by the trigger's build timeout).
    pub async fn scaler(&self, build: &BuildContext) -> Result<Arc<dyn Scaler>, String> {
        if let Some(s) = self.built() {
            return Ok(s);
        }
        let built = keda_scalers::build_with_timeout(&*self.parsed.config, build)
            .await
            .map_err(|e| e.to_string())?;
        if let Ok(mut s) = self.scaler.lock() {
            *s = Some(built.clone());
        }
        self.listen(&*built);
        Ok(built)
    }

    /// One sample, bounded by the trigger's own timeout (or the HTTP default for HTTP scalers). An
    /// empty upstream answer is counted in `keda_scaler_empty_upstream_responses_total` under `object`.
    pub async fn sample(
        &self,
        build: &BuildContext,
        metrics: &Metrics,
        object: &(String, String),
    ) -> Result<keda_scalers::Sample, String> {
        let scaler = self.scaler(build).await?;
        let report =
            keda_scalers::sample_with_timeout(&*self.parsed.config, &*scaler, &build.timeouts)
                .await;
        if let Some(empty) = report.empty_upstream_response {
            metrics.count_empty_upstream_response(&crate::metrics::EmptyResponseLabels {
                namespace: object.0.clone(),
                scaledResource: object.1.clone(),
                triggerName: self.parsed.name.clone().unwrap_or_default(),
                metricName: self.parsed.metric_name.clone(),
                resourceType: "ScaledObject".to_owned(),
                ignoreNullValues: empty.ignore_null_values.to_string(),
            });
        }
        report.result.map_err(|e| e.to_string())
    }
}

/// What a loop's polls left behind, read by the metrics service.
#[derive(Default)]
pub struct LoopState {
    /// The latest poll of each metric.
    pub records: HashMap<String, MetricRecord>,
    /// Consecutive failures per metric (kept only with a valid fallback), as in `status.health`.
    pub health: BTreeMap<String, HealthStatus>,
    /// The target's replica count as last read or written by the loop.
    pub replicas: Option<i32>,
    /// The label sets of this object's per-trigger Prometheus series, removed when the loop ends.
    pub series: Vec<ScalerLabels>,
    /// The last failure reported in an Event per metric, so a persisting error is reported once.
    reported_errors: HashMap<String, String>,
}

impl Drop for TriggerSlot {
    fn drop(&mut self) {
        self.stop_push();
    }
}

/// The shared part of one object's loop.
pub struct ObjectLoop {
    triggers: Mutex<Arc<[Arc<TriggerSlot>]>>,
    /// Notified by pushing scalers: the loop polls at once instead of at the next interval.
    wake: Arc<tokio::sync::Notify>,
    /// Fingerprint of the inputs (generation, resolved env and authentication) the triggers came from.
    inputs: AtomicU64,
    pub state: Mutex<LoopState>,
}

impl ObjectLoop {
    pub fn triggers(&self) -> Arc<[Arc<TriggerSlot>]> {
        match self.triggers.lock() {
            Ok(t) => t.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    fn replace_triggers(&self, triggers: Vec<ParsedTrigger>, inputs: u64) {
        let slots: Arc<[Arc<TriggerSlot>]> = triggers
            .into_iter()
            .map(|t| Arc::new(TriggerSlot::new(t, self.wake.clone())))
            .collect();
        let old = self
            .triggers
            .lock()
            .ok()
            .map(|mut t| std::mem::replace(&mut *t, slots));
        // The replaced scalers stop listening now (a poll in flight may still hold a slot).
        for slot in old.iter().flat_map(|o| o.iter()) {
            slot.stop_push();
        }
        self.inputs.store(inputs, Ordering::Relaxed);
    }

    /// Drops every built scaler: the next poll builds them again (upstream clears its scalers cache
    /// after any scaler error).
    fn drop_scalers(&self) {
        for slot in self.triggers().iter() {
            slot.drop_scaler();
        }
    }

    pub fn state(&self) -> std::sync::MutexGuard<'_, LoopState> {
        match self.state.lock() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        }
    }
}

struct Running {
    handle: JoinHandle<()>,
    shared: Arc<ObjectLoop>,
}

/// The running scale loops, one per ScaledObject (by namespace and name).
#[derive(Default)]
pub struct ScaleLoops {
    running: Mutex<HashMap<LoopKey, Running>>,
}

/// Whether [`ScaleLoops::ensure`] started a loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Started {
    /// No loop ran for the object before.
    New,
    /// A loop with other inputs was replaced.
    Replaced,
    /// The running loop already has these inputs.
    Unchanged,
}

impl ScaleLoops {
    /// Starts the loop for these inputs of the object (see [`crate::triggers::inputs_fingerprint`]),
    /// replacing one with other inputs. A loop with the same inputs is left alone (reconciles repeat;
    /// the loop must not restart each time), so a resync that resolves a rotated credential restarts
    /// it, and one that resolves the same values does not.
    pub fn ensure(
        &self,
        ctx: Arc<Context>,
        so: &ScaledObject,
        target: Target,
        triggers: Vec<ParsedTrigger>,
        inputs: u64,
    ) -> Started {
        let key = (so.namespace().unwrap_or_default(), so.name_any());
        let Ok(mut running) = self.running.lock() else {
            return Started::Unchanged;
        };
        if let Some(r) = running.get(&key)
            && r.shared.inputs.load(Ordering::Relaxed) == inputs
            && !r.handle.is_finished()
        {
            return Started::Unchanged;
        }
        let started = match running.remove(&key) {
            Some(old) => {
                old.handle.abort();
                remove_series(&ctx, &old.shared.state());
                Started::Replaced
            }
            None => Started::New,
        };
        let interval = Duration::from_secs(so.spec.polling_interval().max(1) as u64);
        let target = Target {
            pod_spec: None,
            ..target
        };
        // Health survives a restart of the operator through status.health.
        let health = so
            .status
            .as_ref()
            .and_then(|s| s.health.clone())
            .unwrap_or_default();
        let shared = Arc::new(ObjectLoop {
            triggers: Mutex::new(Arc::from(Vec::new())),
            wake: Arc::new(tokio::sync::Notify::new()),
            inputs: AtomicU64::new(inputs),
            state: Mutex::new(LoopState {
                health,
                ..Default::default()
            }),
        });
        shared.replace_triggers(triggers, inputs);
        let handle = tokio::spawn(run(ctx, key.clone(), target, shared.clone(), interval));
        running.insert(key, Running { handle, shared });
        started
    }

    /// Stops the object's loop; returns whether one was running. Its Prometheus series go with it.
    pub fn stop(&self, ctx: &Context, ns: &str, name: &str) -> bool {
        let key = (ns.to_owned(), name.to_owned());
        let old = self.running.lock().ok().and_then(|mut r| r.remove(&key));
        match old {
            Some(old) => {
                old.handle.abort();
                remove_series(ctx, &old.shared.state());
                true
            }
            None => false,
        }
    }

    /// Forgets `shared`'s loop, which ended on its own (its object left the watch: deleted, or relabelled
    /// out of `WATCH_LABEL_SELECTOR`), with its Prometheus series; a loop started since for the same
    /// object is left alone.
    fn ended(&self, ctx: &Context, key: &LoopKey, shared: &Arc<ObjectLoop>) {
        let Ok(mut running) = self.running.lock() else {
            return;
        };
        if running
            .get(key)
            .is_some_and(|r| Arc::ptr_eq(&r.shared, shared))
        {
            running.remove(key);
            remove_series(ctx, &shared.state());
        }
    }

    /// The shared state of the object's running loop.
    pub fn get(&self, ns: &str, name: &str) -> Option<Arc<ObjectLoop>> {
        self.running
            .lock()
            .ok()?
            .get(&(ns.to_owned(), name.to_owned()))
            .filter(|r| !r.handle.is_finished())
            .map(|r| r.shared.clone())
    }

    pub fn is_running(&self, ns: &str, name: &str) -> bool {
        self.get(ns, name).is_some()
    }

    pub fn count(&self) -> usize {
        self.running.lock().map(|r| r.len()).unwrap_or(0)
    }
}

/// Removes the per-trigger series of an object that no longer has this loop.
fn remove_series(ctx: &Context, state: &LoopState) {
    for labels in &state.series {
        ctx.metrics.remove_scaler_series(labels);
    }
}

async fn run(
    ctx: Arc<Context>,
    key: LoopKey,
    target: Target,
    shared: Arc<ObjectLoop>,
    interval: Duration,
) {
    // The precise last-active time lives here; status.lastActiveTime is only refreshed now and then (see
    // `last_active_to_persist`). An object that was active when this loop started (e.g. on a new leader)
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
    let mut known_replicas: Option<KnownReplicas> = None;
    let mut refresh_auth = false;
    // Spread the first ticks over the interval so a restart does not poll every object at once.
    let offset = interval.mul_f64(fastrand::f64());
    let mut next = tokio::time::Instant::now() + offset;
    // However the loop ends (aborted on an edit or a stop), the push listeners end with it.
    let _pushes = StopPushes(shared.clone());
    loop {
        // Boxed, as the tick below: a sleeping loop should not keep the state of a scaler build or an
        // authentication refresh reserved (a heap profile at 1,000 objects showed ~5 KB per loop).
        if needs_push_listeners(&shared) {
            Box::pin(listen_to_pushes(&ctx, &shared)).await;
        }
        tokio::select! {
            _ = tokio::time::sleep_until(next) => {}
            // A pushed activation: poll now (the interval restarts after it).
            _ = shared.wake.notified() => {}
        }
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
            // No longer watched: another shard's now, or deleted without our cleanup.
            ctx.loops.ended(&ctx, &key, &shared);
            return;
        };
        if so.metadata.deletion_timestamp.is_some() {
            return;
        }
        if refresh_auth {
            refresh_auth = !Box::pin(refresh_triggers(&ctx, &so, &shared)).await;
        }
        // Boxed: the tick's state (requests in flight, status write) is large and only needed while it
        // runs; inline, every sleeping loop would keep that much memory reserved.
        let failed = Box::pin(tick(
            &ctx,
            &key,
            &so,
            &target,
            &shared,
            &mut last_active,
            &mut known_replicas,
        ))
        .await;
        if failed {
            // As upstream: after a scaler error every scaler is built again and authentication is
            // resolved again (TriggerAuthentication, Secrets, env) before the next poll, so a rotated
            // credential is picked up without an edit of the ScaledObject.
            shared.drop_scalers();
            refresh_auth = true;
        }
        next = tokio::time::Instant::now() + interval;
    }
}

/// Stops the loop's push listeners when the loop ends.
struct StopPushes(Arc<ObjectLoop>);

impl Drop for StopPushes {
    fn drop(&mut self) {
        for slot in self.0.triggers().iter() {
            slot.stop_push();
        }
    }
}

/// Whether a push scaler (`external-push`) is waiting to be built (see [`listen_to_pushes`]).
fn needs_push_listeners(shared: &ObjectLoop) -> bool {
    shared
        .triggers()
        .iter()
        .any(|slot| slot.parsed.config.pushes() && slot.built().is_none())
}

/// Builds the scalers that push activity (`external-push`) and are not built yet, so they listen from
/// the start of the loop rather than from its first poll (which may be a whole interval away). A build
/// that fails is tried again before the next wait.
async fn listen_to_pushes(ctx: &Context, shared: &ObjectLoop) {
    for slot in shared.triggers().iter() {
        if slot.parsed.config.pushes() && slot.built().is_none() {
            let _ = slot.scaler(&ctx.build).await;
        }
    }
}

/// Resolves authentication and env again and re-parses the triggers; returns whether it succeeded (the
/// old triggers stay in use otherwise, and it is tried again after the next failed poll).
async fn refresh_triggers(ctx: &Context, so: &ScaledObject, shared: &ObjectLoop) -> bool {
    let ns = so.namespace().unwrap_or_default();
    ctx.resolver.source.invalidate_namespace(&ns);
    ctx.resolver
        .source
        .invalidate_namespace(&ctx.resolver.cluster_object_namespace);
    let t = &so.spec.scale_target_ref;
    // The pod template is read again only here (the loop does not keep it): env may have changed too.
    let pod_spec = match ctx
        .targets
        .resolve(&ctx.client, &ns, t.api_version(), t.kind(), &t.name)
        .await
    {
        Ok((target, _)) => target.pod_spec,
        Err(message) => {
            tracing::warn!(namespace = %ns, scaledobject = %so.name_any(), error = %message, "reading the scale target again failed");
            return false;
        }
    };
    match crate::triggers::resolve_and_parse(ctx, so, pod_spec.as_deref()).await {
        Ok((triggers, inputs)) => {
            if inputs != shared.inputs.load(Ordering::Relaxed) {
                tracing::info!(namespace = %ns, scaledobject = %so.name_any(), "authentication or environment changed; triggers rebuilt with the new values");
                shared.replace_triggers(triggers, inputs);
            }
            true
        }
        Err(message) => {
            tracing::warn!(namespace = %ns, scaledobject = %so.name_any(), error = %message, "resolving the triggers again failed");
            false
        }
    }
}

/// One trigger's sample in a poll.
struct Polled {
    slot: Arc<TriggerSlot>,
    result: Result<keda_scalers::Sample, String>,
    latency: Duration,
}

/// One poll of every trigger, then fallback, the activation decision and status. Returns whether a
/// scaler failed.
async fn tick(
    ctx: &Context,
    key: &LoopKey,
    so: &ScaledObject,
    target: &Target,
    shared: &ObjectLoop,
    last_active: &mut Option<Timestamp>,
    known_replicas: &mut Option<KnownReplicas>,
) -> bool {
    let slots = shared.triggers();
    let polled: Vec<Polled> = futures::future::join_all(slots.iter().map(|slot| async move {
        let started = Instant::now();
        // Requests the scaler sends are counted in `keda_scaler_http_*` under this object and trigger.
        let t = &slot.parsed;
        let result = keda_scalers::http::observe(
            RequestLabels {
                namespace: key.0.clone(),
                scaled_resource: key.1.clone(),
                scaler: t.trigger_type.clone(),
                trigger_name: t.name.clone().unwrap_or_default(),
                metric_name: t.metric_name.clone(),
            },
            ctx.metrics.clone(),
            slot.sample(&ctx.build, &ctx.metrics, key),
        )
        .await
        // A pushed activation counts for this poll even if the server's IsActive says otherwise by now:
        // upstream scales on the push itself; deactivation comes from the regular polls.
        .map(|mut sample| {
            if slot.take_pushed() {
                sample.active = true;
            }
            sample
        });
        Polled {
            slot: slot.clone(),
            result,
            latency: started.elapsed(),
        }
    }))
    .await;
    let any_failed = polled.iter().any(|p| p.result.is_err());

    // Deployments and StatefulSets: the count from the watch. Other kinds: `/scale` read at most every
    // REPLICAS_REFRESH. Any scaling decision is re-checked against a fresh read first, so a stale count can
    // delay a reaction to someone else's change but never cause a wrong write.
    let watched = ctx.replicas.get(target);
    if let Some(replicas) = watched {
        *known_replicas = Some(KnownReplicas {
            replicas,
            at: Instant::now(),
        });
    }
    let cached = known_replicas.filter(|o| o.at.elapsed() < REPLICAS_REFRESH);
    let mut current = match cached {
        Some(o) => o.replicas,
        None => match read_replicas(ctx, so, target, known_replicas).await {
            Some(r) => r,
            None => return any_failed,
        },
    };

    let valid_fallback = fallback::has_valid_fallback(so)
        .then_some(so.spec.fallback.as_ref())
        .flatten();
    let uses_modifiers = so.spec.scaling_modifiers().is_some();
    let mut records = HashMap::new();
    let mut states: Vec<(Option<&str>, MetricState)> = Vec::new();
    let mut activity = BTreeMap::new();
    let mut active_metrics = Vec::new();
    let mut new_failures: Vec<(String, String)> = Vec::new();
    let health = {
        let mut state = shared.state();
        let mut health = BTreeMap::new();
        let mut series = Vec::with_capacity(polled.len());
        for p in &polled {
            let t = &p.slot.parsed;
            let labels = ScalerLabels {
                namespace: key.0.clone(),
                metric: t.metric_name.clone(),
                scaledObject: key.1.clone(),
                scaler: t.scaler_label.clone(),
                triggerIndex: t.index.to_string(),
                r#type: "scaledobject".into(),
            };
            series.push(labels.clone());
            // As upstream, the error counter exists (at 0) from the first poll, so rates are defined.
            let _ = ctx
                .metrics
                .scaler_detail_errors_total
                .get_or_create(&labels);
            if t.is_resource() {
                // cpu/memory: evaluated by the HPA itself; always active for KEDA, never sampled.
                if !uses_modifiers {
                    ctx.metrics.scaler_active.get_or_create(&labels).set(1.0);
                }
                continue;
            }
            let sample = p.result.as_ref().ok().map(|s| (s.value, s.active));
            let (h, metric_state) =
                fallback::track_metric(valid_fallback, state.health.get(&t.metric_name), sample);
            if let Some(h) = h {
                health.insert(t.metric_name.clone(), h);
            }
            let active_or_fallback = matches!(
                metric_state,
                MetricState::Fallback | MetricState::Value { active: true, .. }
            );
            match &p.result {
                Ok(s) => {
                    ctx.metrics
                        .scaler_metrics_value
                        .get_or_create(&labels)
                        .set(s.value);
                    ctx.metrics
                        .scaler_metrics_latency_seconds
                        .get_or_create(&labels)
                        .set(p.latency.as_secs_f64());
                    state.reported_errors.remove(&t.metric_name);
                }
                Err(e) => {
                    ctx.metrics
                        .scaler_detail_errors_total
                        .get_or_create(&labels)
                        .inc();
                    tracing::warn!(namespace = %key.0, scaledobject = %key.1, trigger = t.index, error = %e, "scaler failed");
                    if state.reported_errors.get(&t.metric_name) != Some(e) {
                        state
                            .reported_errors
                            .insert(t.metric_name.clone(), e.clone());
                        new_failures.push((t.metric_name.clone(), e.clone()));
                    }
                }
            }
            if !uses_modifiers {
                ctx.metrics
                    .scaler_active
                    .get_or_create(&labels)
                    .set(if active_or_fallback { 1.0 } else { 0.0 });
            }
            if active_or_fallback {
                active_metrics.push(t.metric_name.clone());
            }
            activity.insert(
                t.metric_name.clone(),
                TriggerActivityStatus {
                    is_active: active_or_fallback,
                },
            );
            states.push((t.name.as_deref(), metric_state));
            records.insert(
                t.metric_name.clone(),
                MetricRecord {
                    value: p.result.as_ref().ok().map(|s| s.value),
                    active: active_or_fallback,
                    error: p.result.as_ref().err().cloned(),
                    at: Instant::now(),
                },
            );
        }
        state.records = records;
        state.health = health.clone();
        state.series = series;
        health
    };

    let only_resource = !slots.is_empty() && slots.iter().all(|s| s.parsed.is_resource());
    let compiled = match keda_core::formula::compile_scaling_modifiers(so) {
        Ok(f) => f,
        Err(e) => {
            // The reconcile refuses such an object (Ready=False); a loop never runs it silently.
            tracing::warn!(namespace = %key.0, scaledobject = %key.1, error = %e, "scalingModifiers do not compile");
            None
        }
    };
    let composite = compiled.as_ref().map(|formula| fallback::Composite {
        formula,
        activation_target: keda_core::formula::activation_target(so).unwrap_or(0.0),
        fallback_value: fallback::composite_fallback_value(so, current, current),
        nil_value: fallback::nil_formula_value(so).ok(),
    });
    let summary = fallback::summarize(&states, only_resource, composite);
    if let Some(value) = summary.composite {
        let labels = ScalerLabels {
            namespace: key.0.clone(),
            metric: keda_api::consts::names::COMPOSITE_METRIC.to_owned(),
            scaledObject: key.1.clone(),
            scaler: keda_api::consts::names::COMPOSITE_METRIC.to_owned(),
            triggerIndex: "0".to_owned(),
            r#type: "scaledobject".into(),
        };
        ctx.metrics
            .scaler_metrics_value
            .get_or_create(&labels)
            .set(value);
        ctx.metrics
            .scaler_active
            .get_or_create(&labels)
            .set(if summary.is_active { 1.0 } else { 0.0 });
        shared.state().series.push(labels);
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
        if summary.is_error {
            object_errors.inc();
        }
    }
    for (metric, error) in new_failures {
        let reason = if uses_modifiers {
            event_reasons::KEDA_METRIC_SOURCE_FAILED
        } else {
            event_reasons::KEDA_SCALER_FAILED
        };
        ctx.event(
            so,
            EventType::Warning,
            reason,
            format!("{metric}: {error}"),
            "Poll",
        )
        .await;
    }

    let now = Timestamp::now();
    let decide_with = |current: i32| {
        let mut input = ScaleLoopInput::from_scaled_object(
            so,
            current,
            summary.is_active,
            summary.is_error,
            now,
        );
        input.last_active_time = match (*last_active, input.last_active_time) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        decide(&input)
    };
    let mut decision = decide_with(current);
    if cached.is_some() && matches!(decision, Decision::ScaleTo { .. }) {
        current = match read_replicas(ctx, so, target, known_replicas).await {
            Some(r) => r,
            None => return any_failed,
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
                *known_replicas = Some(KnownReplicas {
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
                *known_replicas = None;
                ctx.event(so, EventType::Warning, fail_reason, e.to_string(), "Scale")
                    .await;
            }
        }
    }
    shared.state().replicas = known_replicas.map(|o| o.replicas);

    let mut fallback_change = None;
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
            // Health and the Fallback condition are kept only for a valid fallback (upstream's
            // HasValidFallback); otherwise the reconcile sets Fallback=False NoFallbackFound.
            if let Some(fb) = valid_fallback {
                s.health = Some(health.clone()).filter(|h| !h.is_empty());
                let conditions = s.conditions.get_or_insert_with(Vec::new);
                let was = conditions
                    .iter()
                    .any(|c| c.r#type == condition_types::FALLBACK && c.status == "True");
                let now_in_fallback = fallback::fallback_exceeded(&health, fb.failure_threshold);
                if now_in_fallback {
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
                if was != now_in_fallback {
                    fallback_change = Some(now_in_fallback);
                }
            }
            if let Some(hpa) = ctx.hpa_health(&key.0, so) {
                set_condition(
                    s.conditions.get_or_insert_with(Vec::new),
                    condition_types::HPA_ACTIVE,
                    hpa.status,
                    &hpa.reason,
                    &hpa.message,
                );
            }
        })
        .await;
    match result {
        Ok(_) => match fallback_change {
            Some(true) => {
                ctx.event(
                    so,
                    EventType::Normal,
                    event_reasons::SCALED_OBJECT_FALLBACK_ACTIVATED,
                    "ScaledObject fallback is active".to_owned(),
                    "Fallback",
                )
                .await
            }
            Some(false) => {
                ctx.event(
                    so,
                    EventType::Normal,
                    event_reasons::SCALED_OBJECT_FALLBACK_DEACTIVATED,
                    "ScaledObject fallback is no longer active".to_owned(),
                    "Fallback",
                )
                .await
            }
            None => {}
        },
        Err(e) => tracing::warn!(error = %e, "status update failed"),
    }
    any_failed
}

/// How long a read replica count is trusted before `/scale` is read again.
const REPLICAS_REFRESH: Duration = Duration::from_secs(60);

/// The target's replica count as last read or written by this loop.
#[derive(Clone, Copy, Debug)]
struct KnownReplicas {
    replicas: i32,
    at: Instant,
}

/// Reads `/scale`; on failure sets Ready=False `ErrorGettingCurrentReplicas` and returns `None`.
async fn read_replicas(
    ctx: &Context,
    so: &ScaledObject,
    target: &Target,
    known_replicas: &mut Option<KnownReplicas>,
) -> Option<i32> {
    match target.current_replicas(&ctx.client).await {
        Ok(r) => {
            *known_replicas = Some(KnownReplicas {
                replicas: r,
                at: Instant::now(),
            });
            Some(r)
        }
        Err(e) => {
            *known_replicas = None;
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
                        &format!("Error getting current replicas count for ScaleTarget: {e}"),
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

    /// Pushes come from a scaler's activity stream; this one is fed by the test.
    struct Pushing(Mutex<Option<tokio::sync::mpsc::Receiver<bool>>>);

    #[async_trait::async_trait]
    impl Scaler for Pushing {
        async fn sample(&self) -> Result<keda_scalers::Sample, keda_scalers::ScalerError> {
            Ok(keda_scalers::Sample {
                value: 0.0,
                active: false,
            })
        }

        fn activity(&self) -> Option<tokio::sync::mpsc::Receiver<bool>> {
            self.0.lock().ok()?.take()
        }
    }

    fn cron_trigger() -> ParsedTrigger {
        let so: ScaledObject = serde_yaml_ng::from_str(
            "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {name: a, namespace: n}\nspec:\n  scaleTargetRef: {name: w}\n  triggers: [{type: cron, metadata: {timezone: UTC, start: '0 9 * * *', end: '0 18 * * *', desiredReplicas: '2'}}]\n",
        )
        .expect("parses");
        let resolved = [crate::triggers::ResolvedTrigger {
            env: BTreeMap::new(),
            auth_params: BTreeMap::new(),
        }];
        crate::triggers::parse_all(&so, &resolved, &Default::default())
            .expect("cron parses")
            .remove(0)
    }

    #[tokio::test]
    async fn a_pushed_activation_wakes_the_loop_and_counts_once() {
        let wake = Arc::new(tokio::sync::Notify::new());
        let slot = TriggerSlot::new(cron_trigger(), wake.clone());
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        slot.listen(&Pushing(Mutex::new(Some(rx))));

        tx.send(true).await.expect("listening");
        tokio::time::timeout(Duration::from_secs(5), wake.notified())
            .await
            .expect("an activation wakes the loop");
        assert!(slot.take_pushed(), "the next poll counts it");
        assert!(!slot.take_pushed(), "only once");

        // A deactivation waits for the regular poll, as upstream ignores it.
        tx.send(false).await.expect("listening");
        assert!(
            tokio::time::timeout(Duration::from_millis(300), wake.notified())
                .await
                .is_err(),
            "a deactivation woke the loop"
        );
        assert!(!slot.take_pushed());

        // Dropping the scaler (after a failed poll, or a new loop) stops listening.
        slot.drop_scaler();
        tokio::time::timeout(Duration::from_secs(5), tx.closed())
            .await
            .expect("the stream's receiver is dropped");
    }
}
