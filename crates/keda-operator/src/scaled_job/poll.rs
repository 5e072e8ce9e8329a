//! One poll loop per ScaledJob. Every `pollingInterval` (the first poll at once, the period measured
//! from the start of one poll to the next, as upstream) it:
//!
//! 1. samples the triggers one after the other (a failing one is built again and retried once, then
//!    left out, as upstream: `KEDAScalerFailed`, `keda_scaled_job_errors_total`);
//! 2. combines them and counts running and pending Jobs (keda-core `scaled_job`), from the watch index
//!    plus the Jobs it created that the index has not shown yet — so a slow watch or a pod that stays
//!    Pending never makes it create the same Jobs twice (upstream #525, #6157);
//! 3. creates the Jobs the strategy asks for, removes finished Jobs beyond the history limits;
//! 4. writes the status only if it changed (`lastActiveTime` only when the activity changes), so a poll
//!    with an empty queue sends no request at all.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use keda_api::ScaleTriggers;
use keda_api::common::TriggerActivityStatus;
use keda_api::consts::{condition_reasons, condition_types, event_reasons};
use keda_api::scaled_job::ScaledJob;
use keda_core::scaled_job::jobs::{self, JobCounts};
use keda_core::scaled_job::{self as math, ScalerMetrics};
use keda_scalers::{MetricSpec, MetricTargetType, Scaler, TriggerConfig};
use kube::ResourceExt;
use kube::api::{Api, PostParams, PropagationPolicy};
use kube::runtime::events::EventType;
use kube::runtime::reflector::ObjectRef;
use tokio::task::JoinHandle;

use super::status::condition;
use super::{JobsContext, telemetry};
use crate::metrics::ScalerLabels;
use crate::status::set_condition;

/// How long a created Job the watch has not shown yet still counts. Far above any watch delay; a Job
/// deleted before it was ever seen stops counting after this.
const UNSEEN_JOB_TTL: Duration = Duration::from_secs(120);

type Key = (String, String);

/// One parsed trigger of a ScaledJob and, once built, its scaler.
pub struct JobTrigger {
    pub index: usize,
    pub trigger_type: String,
    /// `triggers[].name`.
    pub name: Option<String>,
    /// upstream's `scaler` label: the trigger's name, or the scaler's Go type name.
    pub scaler_label: String,
    pub metric_name: String,
    pub config: Box<dyn TriggerConfig>,
    scaler: Mutex<Option<Arc<dyn Scaler>>>,
}

impl JobTrigger {
    pub fn new(index: usize, trigger: &ScaleTriggers, config: Box<dyn TriggerConfig>) -> Self {
        JobTrigger {
            index,
            trigger_type: trigger.r#type.clone(),
            name: trigger.name.clone(),
            scaler_label: keda_scalers::scaler_label(&trigger.r#type, trigger.name.as_deref()),
            metric_name: config.metric_spec().metric_name(),
            config,
            scaler: Mutex::new(None),
        }
    }

    /// The `averageValue` target, `None` for other target types (counted as 0, as upstream), and
    /// whether the trigger is a resource metric (cpu/memory: no value for a ScaledJob).
    fn target(&self) -> Option<Option<f64>> {
        match self.config.metric_spec() {
            MetricSpec::External {
                target_type: MetricTargetType::AverageValue,
                target,
                ..
            } => Some(Some(target)),
            MetricSpec::External { .. } => Some(None),
            MetricSpec::Resource { .. } => None,
        }
    }

    fn set_scaler(&self, scaler: Option<Arc<dyn Scaler>>) {
        if let Ok(mut s) = self.scaler.lock() {
            *s = scaler;
        }
    }

    async fn sample_once(
        &self,
        build: &keda_scalers::BuildContext,
    ) -> Result<keda_scalers::Sample, String> {
        let built = self.scaler.lock().ok().and_then(|s| s.clone());
        let scaler = match built {
            Some(s) => s,
            None => {
                let s = keda_scalers::build_with_timeout(&*self.config, build)
                    .await
                    .map_err(|e| e.to_string())?;
                self.set_scaler(Some(s.clone()));
                s
            }
        };
        keda_scalers::sample_with_timeout(&*self.config, &*scaler, &build.timeouts)
            .await
            .result
            .map_err(|e| e.to_string())
    }

    /// One sample; on error the scaler is built again and asked once more (upstream's cache does the
    /// same), so a rotated credential or a dropped connection costs no failed poll.
    async fn sample(
        &self,
        build: &keda_scalers::BuildContext,
    ) -> Result<keda_scalers::Sample, String> {
        match self.sample_once(build).await {
            Ok(s) => Ok(s),
            Err(_) => {
                self.set_scaler(None);
                let second = self.sample_once(build).await;
                if second.is_err() {
                    self.set_scaler(None);
                }
                second
            }
        }
    }
}

/// What a loop keeps between polls.
#[derive(Default)]
struct PollState {
    /// The per-trigger series this loop writes, removed when it stops.
    series: Vec<ScalerLabels>,
    /// The last error reported per metric, so a persisting failure sends one Event, not one per poll.
    reported_errors: HashMap<String, String>,
    /// Jobs created by this loop that the watch has not shown yet, with when they were created.
    unseen: Vec<(String, Instant)>,
    /// The last poll that found the ScaledJob active.
    last_active: Option<Timestamp>,
}

struct Running {
    handle: JoinHandle<()>,
    inputs: u64,
    shared: Arc<Shared>,
}

struct Shared {
    triggers: Vec<JobTrigger>,
    state: Mutex<PollState>,
}

impl Shared {
    fn state(&self) -> std::sync::MutexGuard<'_, PollState> {
        match self.state.lock() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        }
    }
}

/// The running poll loops, one per ScaledJob (by namespace and name).
#[derive(Default)]
pub struct JobScaleLoops {
    running: Mutex<HashMap<Key, Running>>,
}

/// Whether [`JobScaleLoops::ensure`] started a loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Started {
    New,
    Replaced,
    Unchanged,
}

impl JobScaleLoops {
    /// Starts the ScaledJob's loop for these inputs, replacing one with other inputs; one with the same
    /// inputs keeps running (a resync must not restart it).
    pub fn ensure(
        &self,
        ctx: Arc<JobsContext>,
        sj: &ScaledJob,
        triggers: Vec<JobTrigger>,
        inputs: u64,
    ) -> Started {
        let key = (sj.namespace().unwrap_or_default(), sj.name_any());
        let Ok(mut running) = self.running.lock() else {
            return Started::Unchanged;
        };
        if let Some(r) = running.get(&key)
            && r.inputs == inputs
            && !r.handle.is_finished()
        {
            return Started::Unchanged;
        }
        let (started, carried) = match running.remove(&key) {
            Some(old) => {
                old.handle.abort();
                let mut state = std::mem::take(&mut *old.shared.state());
                for labels in std::mem::take(&mut state.series) {
                    ctx.deps.metrics.remove_scaler_series(&labels);
                }
                (Started::Replaced, state)
            }
            None => (Started::New, PollState::default()),
        };
        // Jobs created but not yet seen still count after a restart of the loop.
        let shared = Arc::new(Shared {
            triggers,
            state: Mutex::new(PollState {
                unseen: carried.unseen,
                last_active: carried.last_active,
                ..Default::default()
            }),
        });
        let interval =
            Duration::from_secs(u64::from(sj.spec.polling_interval().max(1).unsigned_abs()));
        let handle = tokio::spawn(run(ctx, key.clone(), shared.clone(), interval));
        running.insert(
            key,
            Running {
                handle,
                inputs,
                shared,
            },
        );
        started
    }

    /// Stops the loop; returns whether one was running. Its per-trigger series go with it.
    pub fn stop(&self, ctx: &JobsContext, ns: &str, name: &str) -> bool {
        let old = self
            .running
            .lock()
            .ok()
            .and_then(|mut r| r.remove(&(ns.to_owned(), name.to_owned())));
        match old {
            Some(old) => {
                old.handle.abort();
                let series = std::mem::take(&mut old.shared.state().series);
                for labels in &series {
                    ctx.deps.metrics.remove_scaler_series(labels);
                }
                true
            }
            None => false,
        }
    }

    /// Forgets a loop that ended on its own (its object left the cache), unless replaced since.
    fn ended(&self, ctx: &JobsContext, key: &Key, shared: &Arc<Shared>) {
        let Ok(mut running) = self.running.lock() else {
            return;
        };
        if running
            .get(key)
            .is_some_and(|r| Arc::ptr_eq(&r.shared, shared))
        {
            running.remove(key);
            telemetry::forget(
                &ctx.deps.metrics,
                &key.0,
                &key.1,
                &std::mem::take(&mut shared.state().series),
            );
        }
    }

    /// Stops counting Jobs this loop created that were deleted before the watch showed them (a rollout
    /// right after a poll): they will never appear.
    pub fn forget_created(&self, ns: &str, name: &str, deleted: &[String]) {
        let shared = self.running.lock().ok().and_then(|r| {
            r.get(&(ns.to_owned(), name.to_owned()))
                .map(|r| r.shared.clone())
        });
        if let Some(shared) = shared {
            shared
                .state()
                .unseen
                .retain(|(job, _)| !deleted.contains(job));
        }
    }

    pub fn count(&self) -> usize {
        self.running.lock().map(|r| r.len()).unwrap_or(0)
    }
}

async fn run(ctx: Arc<JobsContext>, key: Key, shared: Arc<Shared>, interval: Duration) {
    let mut next = tokio::time::Instant::now();
    loop {
        tokio::time::sleep_until(next).await;
        let started = tokio::time::Instant::now();
        telemetry::record_loop_latency(
            &ctx.deps.metrics,
            &key.0,
            &key.1,
            started.saturating_duration_since(next).as_secs_f64(),
        );
        let Some(sj) = ctx.scaled_jobs.get(&ObjectRef::new(&key.1).within(&key.0)) else {
            ctx.loops.ended(&ctx, &key, &shared);
            return;
        };
        if sj.metadata.deletion_timestamp.is_some() || jobs::is_paused(&sj) {
            // The reconcile stops the loop (and cleans up); nothing is created meanwhile.
            next = started + interval;
            continue;
        }
        // Boxed: a sleeping loop keeps only its small state, not the poll's futures.
        Box::pin(poll(&ctx, &key, &sj, &shared)).await;
        next = started + interval;
    }
}

/// What the triggers said in one poll.
struct Sampled {
    scalers: Vec<ScalerMetrics>,
    activity: BTreeMap<String, TriggerActivityStatus>,
    any_error: bool,
    new_failures: Vec<(String, String)>,
}

async fn sample_triggers(
    ctx: &JobsContext,
    key: &Key,
    shared: &Shared,
    max_replica_count: i64,
) -> Sampled {
    let metrics = &ctx.deps.metrics;
    let mut out = Sampled {
        scalers: Vec::new(),
        activity: BTreeMap::new(),
        any_error: false,
        new_failures: Vec::new(),
    };
    // Known before any series is written, so a loop stopped in the middle of a poll leaves none behind.
    let labels_of = |t: &JobTrigger| {
        telemetry::scaler_labels(&key.0, &key.1, &t.metric_name, &t.scaler_label, t.index)
    };
    shared.state().series = shared
        .triggers
        .iter()
        .filter(|t| t.target().is_some())
        .map(labels_of)
        .collect();
    for t in &shared.triggers {
        // cpu and memory have no value outside an HPA: they contribute nothing, as upstream.
        let Some(target) = t.target() else {
            continue;
        };
        let labels = labels_of(t);
        let started = Instant::now();
        let result = keda_scalers::http::observe(
            keda_scalers::http::RequestLabels {
                namespace: key.0.clone(),
                scaled_resource: key.1.clone(),
                scaler: t.trigger_type.clone(),
                trigger_name: t.name.clone().unwrap_or_default(),
                metric_name: t.metric_name.clone(),
            },
            ctx.deps.metrics.clone(),
            t.sample(&ctx.deps.build),
        )
        .await;
        match result {
            Ok(sample) => {
                telemetry::record_sample(
                    metrics,
                    &labels,
                    sample.value,
                    sample.active,
                    started.elapsed().as_secs_f64(),
                );
                out.scalers.push(math::scaler_metrics(
                    &[sample.value],
                    &[target],
                    sample.active,
                    max_replica_count,
                ));
                out.activity.insert(
                    t.metric_name.clone(),
                    TriggerActivityStatus {
                        is_active: sample.active,
                    },
                );
                shared.state().reported_errors.remove(&t.metric_name);
            }
            Err(e) => {
                out.any_error = true;
                telemetry::record_failure(metrics, &labels, &key.0, &key.1);
                tracing::warn!(namespace = %key.0, scaledjob = %key.1, trigger = t.index, error = %e, "scaler failed");
                let mut state = shared.state();
                if state.reported_errors.get(&t.metric_name) != Some(&e) {
                    state
                        .reported_errors
                        .insert(t.metric_name.clone(), e.clone());
                    out.new_failures.push((t.metric_name.clone(), e));
                }
            }
        }
    }
    out
}

/// Running and pending Jobs: the index's, plus the Jobs this loop created that it has not shown yet
/// (both running and pending: they have no pod yet).
fn count(
    ctx: &JobsContext,
    key: &Key,
    sj: &ScaledJob,
    shared: &Shared,
    labelled: &[Arc<Job>],
) -> JobCounts {
    let pods: HashMap<String, Vec<Arc<Pod>>> = labelled
        .iter()
        .filter(|j| jobs::finished(j).is_none())
        .filter_map(|j| j.metadata.name.clone())
        .map(|name| {
            let pods = ctx.index.pods_of(&key.0, &name);
            (name, pods)
        })
        .collect();
    let conditions = sj
        .spec
        .scaling_strategy
        .as_ref()
        .and_then(|s| s.pending_pod_conditions.clone())
        .unwrap_or_default();
    let mut counts = jobs::count_jobs(
        labelled.iter().map(|j| &**j),
        |j| {
            j.metadata
                .name
                .as_ref()
                .and_then(|n| pods.get(n))
                .map(|p| p.iter().map(|p| &**p).collect())
                .unwrap_or_default()
        },
        &conditions,
    );
    let mut state = shared.state();
    state.unseen.retain(|(name, at)| {
        at.elapsed() < UNSEEN_JOB_TTL
            && !labelled
                .iter()
                .any(|j| j.metadata.name.as_deref() == Some(name.as_str()))
    });
    let unseen = i64::try_from(state.unseen.len()).unwrap_or(i64::MAX);
    counts.running += unseen;
    counts.pending += unseen;
    counts
}

async fn poll(ctx: &JobsContext, key: &Key, sj: &ScaledJob, shared: &Shared) {
    let max = math::max_replica_count(&sj.spec);
    let min = math::min_replica_count(&sj.spec);
    let sampled = sample_triggers(ctx, key, shared, max).await;
    if !sampled.any_error {
        telemetry::touch_errors(&ctx.deps.metrics, &key.0, &key.1);
    }
    for (metric, error) in &sampled.new_failures {
        ctx.event(
            sj,
            EventType::Warning,
            event_reasons::KEDA_SCALER_FAILED,
            format!("{metric}: {error}"),
            event_reasons::KEDA_SCALER_FAILED,
        )
        .await;
    }
    let calculation = sj
        .spec
        .scaling_strategy
        .as_ref()
        .and_then(|s| s.multiple_scalers_calculation);
    let activity = math::combine_scalers(&sampled.scalers, calculation, min, max);

    let labelled = ctx.index.jobs_of(&key.0, &key.1);
    let counts = count(ctx, key, sj, shared, &labelled);
    let wanted = math::jobs_to_create(sj, &activity, counts.running, counts.pending);
    tracing::debug!(namespace = %key.0, scaledjob = %key.1, queue = activity.scale_to, max_scale = activity.max_scale, running = counts.running, pending = counts.pending, create = wanted, "polled");
    if wanted > 0 {
        create_jobs(ctx, key, sj, shared, wanted).await;
    }
    clean_up_history(ctx, key, sj, &labelled).await;
    write_status(ctx, sj, shared, &sampled, activity.is_active).await;
}

/// Creates `count` Jobs from the ScaledJob as the cache shows it now (labels, annotations and
/// generation included); each created one counts until the watch shows it.
async fn create_jobs(ctx: &JobsContext, key: &Key, sj: &ScaledJob, shared: &Shared, count: i64) {
    let job = match jobs::job_for(sj, ctx.deps.version) {
        Ok(j) => j,
        Err(e) => {
            tracing::warn!(namespace = %key.0, scaledjob = %key.1, error = %e, "cannot build the Job");
            return;
        }
    };
    let api: Api<Job> = Api::namespaced(ctx.deps.client.clone(), &key.0);
    let mut created = 0;
    for _ in 0..count {
        match api.create(&PostParams::default(), &job).await {
            Ok(made) => {
                created += 1;
                if let Some(name) = made.metadata.name {
                    shared.state().unseen.push((name, Instant::now()));
                }
            }
            Err(e) => {
                let generate_name = job.metadata.generate_name.clone().unwrap_or_default();
                tracing::warn!(namespace = %key.0, scaledjob = %key.1, error = %e, "creating a Job failed");
                ctx.event(
                    sj,
                    EventType::Warning,
                    event_reasons::KEDA_JOB_CREATE_FAILED,
                    format!("Failed to create job {generate_name}: {e}"),
                    event_reasons::KEDA_JOB_CREATE_FAILED,
                )
                .await;
                // The API refuses the rest for the same reason (quota, admission, a name too long).
                break;
            }
        }
    }
    if created > 0 {
        tracing::info!(namespace = %key.0, scaledjob = %key.1, created, "created Jobs");
        ctx.event(
            sj,
            EventType::Normal,
            event_reasons::KEDA_JOBS_CREATED,
            format!("Created {created} jobs"),
            event_reasons::KEDA_JOBS_CREATED,
        )
        .await;
    }
}

/// Deletes the finished Jobs beyond the history limits (Background propagation); the first failure
/// ends this poll's cleanup, as upstream.
async fn clean_up_history(ctx: &JobsContext, key: &Key, sj: &ScaledJob, labelled: &[Arc<Job>]) {
    let refs: Vec<&Job> = labelled.iter().map(|j| &**j).collect();
    for job in jobs::history_to_delete(&refs, &sj.spec) {
        let name = job.metadata.name.clone().unwrap_or_default();
        if let Err(e) = super::reconcile::delete_job(
            &ctx.deps.client,
            &key.0,
            &name,
            PropagationPolicy::Background,
        )
        .await
        {
            tracing::warn!(namespace = %key.0, scaledjob = %key.1, job = %name, error = %e, "removing a finished Job beyond the history limit failed");
            return;
        }
        tracing::info!(namespace = %key.0, scaledjob = %key.1, job = %name, "removed a finished Job beyond the history limit");
    }
}

/// Ready and Active as upstream's poll sets them, `triggersActivity`, and `lastActiveTime` when the
/// activity changes (set to now on becoming active, to the last active poll on becoming inactive).
async fn write_status(
    ctx: &JobsContext,
    sj: &ScaledJob,
    shared: &Shared,
    sampled: &Sampled,
    is_active: bool,
) {
    let now = Timestamp::now();
    let last_active = {
        let mut state = shared.state();
        if is_active {
            state.last_active = Some(now);
        }
        state.last_active
    };
    let result = ctx
        .statuses
        .update(&ctx.deps.client, sj, |s| {
            let was_active =
                condition(Some(s), condition_types::ACTIVE).is_some_and(|c| c.status == "True");
            let c = s.conditions.get_or_insert_with(Vec::new);
            let (status, reason, message) = match (sampled.any_error, is_active) {
                (false, _) => (
                    "True",
                    condition_reasons::SCALED_JOB_READY,
                    "ScaledJob is defined correctly and is ready for scaling",
                ),
                (true, true) => (
                    "Unknown",
                    condition_reasons::PARTIAL_TRIGGER_ERROR,
                    "Some triggers defined in ScaledJob are not working correctly",
                ),
                (true, false) => (
                    "False",
                    condition_reasons::TRIGGER_ERROR,
                    "Triggers defined in ScaledJob are not working correctly",
                ),
            };
            set_condition(c, condition_types::READY, status, reason, message);
            if is_active {
                set_condition(
                    c,
                    condition_types::ACTIVE,
                    "True",
                    condition_reasons::SCALER_ACTIVE,
                    "Scaling is performed because triggers are active",
                );
            } else {
                set_condition(
                    c,
                    condition_types::ACTIVE,
                    "False",
                    condition_reasons::SCALER_NOT_ACTIVE,
                    "Scaling is not performed because triggers are not active",
                );
            }
            if (is_active != was_active || s.last_active_time.is_none())
                && let Some(t) = last_active
            {
                s.last_active_time = Some(Time(t));
            }
            // Left out when no trigger answered: the API server refuses an empty map written as null.
            s.triggers_activity = Some(sampled.activity.clone()).filter(|a| !a.is_empty());
        })
        .await;
    match result {
        Ok((before, _)) => {
            let was_active = condition(Some(&before), condition_types::ACTIVE)
                .is_some_and(|c| c.status == "True");
            let change = match (was_active, is_active) {
                (false, true) => Some((
                    event_reasons::SCALED_JOB_ACTIVE,
                    "Scaling is performed because triggers are active",
                )),
                (true, false) => Some((
                    event_reasons::SCALED_JOB_INACTIVE,
                    "Scaling is not performed because triggers are not active",
                )),
                _ => None,
            };
            if let Some((reason, note)) = change {
                ctx.event(sj, EventType::Normal, reason, note.to_owned(), reason)
                    .await;
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "ScaledJob status update failed");
            ctx.event(
                sj,
                EventType::Warning,
                event_reasons::SCALED_JOB_UPDATE_FAILED,
                e.to_string(),
                event_reasons::SCALED_JOB_UPDATE_FAILED,
            )
            .await;
        }
    }
}
