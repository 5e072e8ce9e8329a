//! One ScaledJob reconcile: finalizer → pause → validate (keda-check's rules, as the webhook and
//! `keda lint`) → resolve and parse the triggers → roll out Jobs of earlier generations → (re)start the
//! poll loop → conditions and Events. Unlike upstream, the rollout runs after the triggers parse, so an
//! update that cannot work deletes no running Job.

use std::sync::Arc;
use std::time::Duration;

use keda_api::common::triggers_and_authentications_types;
use keda_api::consts::{FINALIZER, condition_reasons, condition_types, event_reasons};
use keda_api::scaled_job::ScaledJob;
use keda_core::scaled_job::jobs::{self, Rollout};
use kube::api::{Api, DeleteParams, PropagationPolicy};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::{Client, ResourceExt};

use super::poll::{JobTrigger, Started};
use super::status::condition;
use super::{Error, JobsContext, telemetry};
use crate::status::set_condition;

/// Ready's message after a successful reconcile (upstream's words, "to scaling" included).
pub const READY_MESSAGE: &str = "ScaledJob is defined correctly and is ready to scaling";
/// The Event when a ScaledJob becomes ready.
pub const READY_EVENT_MESSAGE: &str = "ScaledJob is ready for scaling";
/// Ready's message while paused.
pub const PAUSED_READY_MESSAGE: &str = "ScaledJob is paused, skipping reconcile loop";
/// How often every ScaledJob is reconciled without a change (re-resolving its authentication).
const RESYNC: Duration = Duration::from_secs(300);

pub async fn reconcile(sj: Arc<ScaledJob>, ctx: Arc<JobsContext>) -> Result<Action, Error> {
    let ns = sj.namespace().unwrap_or_default();
    if !ctx.deps.scope.includes(&ns) {
        return Ok(Action::await_change());
    }
    let api: Api<ScaledJob> = Api::namespaced(ctx.deps.client.clone(), &ns);
    finalizer(&api, FINALIZER, sj, |event| async {
        match event {
            Finalizer::Apply(sj) => apply(sj, ctx.clone()).await,
            Finalizer::Cleanup(sj) => cleanup(sj, ctx.clone()).await,
        }
    })
    .await
    .map_err(|e| Error::Finalizer(e.to_string()))
}

async fn apply(sj: Arc<ScaledJob>, ctx: Arc<JobsContext>) -> Result<Action, Error> {
    let ns = sj.namespace().unwrap_or_default();
    let name = sj.name_any();
    let (types, auths) = triggers_and_authentications_types(&sj.spec.triggers);
    let trigger_types: Vec<&str> = sj.spec.triggers.iter().map(|t| t.r#type.as_str()).collect();
    telemetry::register(&ctx.deps.metrics, &ns, &name, &trigger_types);

    let current = ctx.statuses.current(&sj).await;
    let was_paused =
        condition(Some(&current), condition_types::PAUSED).is_some_and(|c| c.status == "True");
    let set_types = |s: &mut keda_api::scaled_job::ScaledJobStatus| {
        s.triggers_types = Some(types.clone());
        s.authentications_types = Some(auths.clone());
    };

    if jobs::is_paused(&sj) {
        stop_loop(&ctx, &sj).await;
        ctx.statuses
            .update(&ctx.deps.client, &sj, |s| {
                let c = s.conditions.get_or_insert_with(Vec::new);
                set_condition(
                    c,
                    condition_types::PAUSED,
                    "True",
                    condition_reasons::SCALED_JOB_PAUSED,
                    condition_reasons::SCALED_JOB_PAUSED_MESSAGE,
                );
                set_condition(
                    c,
                    condition_types::READY,
                    "True",
                    condition_reasons::SCALED_JOB_READY,
                    PAUSED_READY_MESSAGE,
                );
                set_types(s);
            })
            .await?;
        if !was_paused {
            ctx.event(
                &sj,
                EventType::Normal,
                event_reasons::SCALED_JOB_PAUSED,
                condition_reasons::SCALED_JOB_PAUSED_MESSAGE.to_owned(),
                condition_reasons::SCALED_JOB_PAUSED_MESSAGE,
            )
            .await;
        }
        return Ok(Action::await_change());
    }

    if let Some(finding) = keda_check::rules::scaled_job(&sj)
        .into_iter()
        .find(|f| f.severity == keda_check::Severity::Error)
    {
        return check_failed(&ctx, &sj, finding.message, was_paused).await;
    }
    if sj.spec.triggers.iter().any(|t| t.use_cached_metrics()) {
        tracing::info!(namespace = %ns, scaledjob = %name, "useCachedMetrics is not supported for ScaledJobs and is ignored");
    }
    let (triggers, inputs) = match resolve_and_parse(&ctx, &sj).await {
        Ok(t) => t,
        Err(message) => return check_failed(&ctx, &sj, message, was_paused).await,
    };
    if let Err(message) = roll_out(&ctx, &sj).await {
        return check_failed(&ctx, &sj, message, was_paused).await;
    }
    if ctx.loops.ensure(ctx.clone(), &sj, triggers, inputs) == Started::New {
        ctx.event(
            &sj,
            EventType::Normal,
            event_reasons::KEDA_SCALERS_STARTED,
            "Started scalers watch".to_owned(),
            "ScalersWatchStarted",
        )
        .await;
    }
    let (before, _) = ctx
        .statuses
        .update(&ctx.deps.client, &sj, |s| {
            let c = s.conditions.get_or_insert_with(Vec::new);
            if was_paused {
                set_condition(
                    c,
                    condition_types::PAUSED,
                    "False",
                    condition_reasons::SCALED_JOB_UNPAUSED,
                    condition_reasons::SCALED_JOB_UNPAUSED_MESSAGE,
                );
            }
            // The poll writes Ready with its own message; a resync leaves a ready object's alone.
            let ready = c
                .iter()
                .any(|c| c.r#type == condition_types::READY && c.status == "True");
            if !ready || was_paused {
                set_condition(
                    c,
                    condition_types::READY,
                    "True",
                    condition_reasons::SCALED_JOB_READY,
                    READY_MESSAGE,
                );
            }
            set_types(s);
        })
        .await?;
    if was_paused {
        ctx.event(
            &sj,
            EventType::Normal,
            event_reasons::SCALED_JOB_UNPAUSED,
            condition_reasons::SCALED_JOB_UNPAUSED_MESSAGE.to_owned(),
            condition_reasons::SCALED_JOB_UNPAUSED_MESSAGE,
        )
        .await;
    }
    if condition(Some(&before), condition_types::READY).is_none_or(|c| c.status != "True") {
        ctx.event(
            &sj,
            EventType::Normal,
            event_reasons::SCALED_JOB_READY,
            READY_EVENT_MESSAGE.to_owned(),
            READY_EVENT_MESSAGE,
        )
        .await;
    }
    Ok(Action::requeue(RESYNC))
}

/// Ready=False `ScaledJobCheckFailed` with `message`, Active=Unknown, the loop stopped (no Jobs from a
/// spec that does not work), the Event when the message is new; retried later.
async fn check_failed(
    ctx: &JobsContext,
    sj: &ScaledJob,
    message: String,
    was_paused: bool,
) -> Result<Action, Error> {
    stop_loop(ctx, sj).await;
    let (before, _) = ctx
        .statuses
        .update(&ctx.deps.client, sj, |s| {
            let c = s.conditions.get_or_insert_with(Vec::new);
            if was_paused {
                set_condition(
                    c,
                    condition_types::PAUSED,
                    "False",
                    condition_reasons::SCALED_JOB_UNPAUSED,
                    condition_reasons::SCALED_JOB_UNPAUSED_MESSAGE,
                );
            }
            set_condition(
                c,
                condition_types::READY,
                "False",
                condition_reasons::SCALED_JOB_CHECK_FAILED,
                &message,
            );
            set_condition(
                c,
                condition_types::ACTIVE,
                "Unknown",
                condition_reasons::UNKNOWN_STATE,
                "ScaledJob check failed",
            );
        })
        .await?;
    if condition(Some(&before), condition_types::READY).and_then(|c| c.message.as_deref())
        != Some(message.as_str())
    {
        ctx.event(
            sj,
            EventType::Warning,
            event_reasons::SCALED_JOB_CHECK_FAILED,
            message.clone(),
            &message,
        )
        .await;
    }
    Ok(Action::requeue(Duration::from_secs(30)))
}

/// Stops the ScaledJob's loop, if one runs, with upstream's `KEDAScalersStopped` Event.
async fn stop_loop(ctx: &JobsContext, sj: &ScaledJob) {
    let ns = sj.namespace().unwrap_or_default();
    if ctx.loops.stop(ctx, &ns, &sj.name_any()) {
        ctx.event(
            sj,
            EventType::Normal,
            event_reasons::KEDA_SCALERS_STOPPED,
            "Stopped scalers watch".to_owned(),
            "ScalersWatchStopped",
        )
        .await;
    }
}

/// Deletion: the loop stops, the series and the status copy go, upstream's `ScaledJobDeleted` Warning.
/// The Jobs stay: the garbage collector removes them (they are owned) with the deleter's propagation.
async fn cleanup(sj: Arc<ScaledJob>, ctx: Arc<JobsContext>) -> Result<Action, Error> {
    let ns = sj.namespace().unwrap_or_default();
    let name = sj.name_any();
    stop_loop(&ctx, &sj).await;
    telemetry::forget(&ctx.deps.metrics, &ns, &name, &[]);
    ctx.statuses.forget(&ns, &name);
    ctx.event(
        &sj,
        EventType::Warning,
        event_reasons::SCALED_JOB_DELETED,
        "ScaledJob was deleted".to_owned(),
        "ScaledJob was deleted",
    )
    .await;
    Ok(Action::await_change())
}

/// The env of `jobTargetRef`'s container (`envSourceContainerName`, default the first) and every
/// trigger's authentication, then each trigger's parse — the code `keda lint` and the webhook run.
/// Returns the triggers and a fingerprint of the inputs (generation, env, authentication): the loop
/// restarts only when it changes.
pub async fn resolve_and_parse(
    ctx: &JobsContext,
    sj: &ScaledJob,
) -> Result<(Vec<JobTrigger>, u64), String> {
    use std::hash::{Hash, Hasher};
    let ns = sj.namespace().unwrap_or_default();
    let resolver = &ctx.deps.resolver;
    let pod_spec = sj.spec.job_target_ref.template.spec.as_ref();
    let env = match pod_spec {
        Some(spec) => resolver
            .container_env(&ns, spec, sj.spec.env_source_container_name.as_deref())
            .await
            .map_err(|e| format!("resolving the environment of jobTargetRef: {e}"))?,
        None => Default::default(),
    };
    let mut h = std::collections::hash_map::DefaultHasher::new();
    sj.metadata.generation.hash(&mut h);
    env.vars.hash(&mut h);
    let mut out = Vec::with_capacity(sj.spec.triggers.len());
    for (index, t) in sj.spec.triggers.iter().enumerate() {
        let auth = resolver
            .auth_params(&ns, t, &env, pod_spec)
            .await
            .map_err(|e| format!("trigger {index} ({}): {e}", t.r#type))?;
        auth.params.hash(&mut h);
        let input = keda_scalers::TriggerInput {
            index,
            trigger_type: &t.r#type,
            namespace: &ns,
            name: t.name.as_deref(),
            metadata: &t.metadata,
            resolved_env: &env.vars,
            auth_params: &auth.params,
            metric_type: t.metric_type.as_deref(),
        };
        let config = keda_scalers::parse_trigger_confined(&input, &ctx.deps.files)
            .map_err(|e| e.to_string())?;
        keda_scalers::resolve_files(config.as_ref(), &ctx.deps.files).map_err(|e| e.to_string())?;
        config.set_object(&ns, &sj.name_any());
        out.push(JobTrigger::new(index, t, config));
    }
    Ok((out, h.finish()))
}

/// Under the immediate rollout (the default), deletes the Jobs of earlier generations, finished or
/// not, as upstream. The Events keep upstream's words; the completion also says how many of the deleted
/// Jobs were still running and why. `Err` is Ready's message when a delete failed.
async fn roll_out(ctx: &JobsContext, sj: &ScaledJob) -> Result<(), String> {
    let Rollout::Immediate { propagation } = jobs::rollout(&sj.spec) else {
        return Ok(());
    };
    let ns = sj.namespace().unwrap_or_default();
    let generation = sj.metadata.generation.unwrap_or(0);
    let all = ctx.index.jobs_of(&ns, &sj.name_any());
    let refs: Vec<&k8s_openapi::api::batch::v1::Job> = all.iter().map(|j| &**j).collect();
    let outdated = jobs::outdated_jobs(&refs, generation);
    if outdated.is_empty() {
        return Ok(());
    }
    let running = outdated
        .iter()
        .filter(|j| jobs::finished(j).is_none())
        .count();
    let started = format!(
        "Deleting {} jobs owned by the previous version of the scaledJob",
        outdated.len()
    );
    ctx.event(
        sj,
        EventType::Normal,
        event_reasons::SCALED_JOB_ROLLOUT_CLEANUP_STARTED,
        started.clone(),
        &started,
    )
    .await;
    let policy = match propagation {
        jobs::Propagation::Foreground => PropagationPolicy::Foreground,
        jobs::Propagation::Background => PropagationPolicy::Background,
    };
    for job in &outdated {
        let job_name = job.metadata.name.clone().unwrap_or_default();
        if let Err(e) = delete_job(&ctx.deps.client, &ns, &job_name, policy.clone()).await {
            let note = format!("Failed to delete job {job_name}: {e}");
            ctx.event(
                sj,
                EventType::Warning,
                event_reasons::SCALED_JOB_ROLLOUT_CLEANUP_FAILED,
                note.clone(),
                &note,
            )
            .await;
            return Err(format!("Not able to delete job: {job_name}"));
        }
    }
    let deleted: Vec<String> = outdated
        .iter()
        .filter_map(|j| j.metadata.name.clone())
        .collect();
    ctx.loops.forget_created(&ns, &sj.name_any(), &deleted);
    let completed = format!(
        "Deleted {} jobs owned by the previous version of the scaledJob",
        outdated.len()
    );
    let note = format!(
        "{completed}: {running} of them were still running; the spec changed (generation {generation}) and rollout.strategy is immediate (the default). Set rollout.strategy: gradual to let running Jobs finish"
    );
    tracing::info!(namespace = %ns, scaledjob = %sj.name_any(), deleted = outdated.len(), running, "rolled out Jobs of earlier generations");
    ctx.event(
        sj,
        EventType::Normal,
        event_reasons::SCALED_JOB_ROLLOUT_CLEANUP_COMPLETED,
        note,
        &completed,
    )
    .await;
    Ok(())
}

/// Deletes a Job; one that is already gone counts as deleted.
pub async fn delete_job(
    client: &Client,
    namespace: &str,
    name: &str,
    propagation: PropagationPolicy,
) -> Result<(), kube::Error> {
    let api: Api<k8s_openapi::api::batch::v1::Job> = Api::namespaced(client.clone(), namespace);
    let params = DeleteParams {
        propagation_policy: Some(propagation),
        ..Default::default()
    };
    match api.delete(name, &params).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}
