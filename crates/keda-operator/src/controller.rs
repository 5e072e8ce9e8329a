//! The ScaledObject controller: finalizer, then resolve target and auth → validate → build the HPA (pure)
//! → apply → conditions; and on delete, stop the loop and optionally restore the replica count.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use keda_api::ScaledObject;
use keda_api::common::triggers_and_authentications_types;
use keda_api::consts::{FINALIZER, condition_reasons, condition_types, event_reasons, labels};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::{Resource, ResourceExt};

use crate::Context;
use crate::error::Error;
use crate::metrics::ResourceKind;
use crate::scale_loop::Started;
use crate::status::set_condition;

/// Upstream's message when a pause annotation is removed.
const UNPAUSED_MESSAGE: &str = "pause annotation removed for ScaledObject";

/// Entry point used by the kube-runtime Controller.
pub async fn reconcile(so: Arc<ScaledObject>, ctx: Arc<Context>) -> Result<Action, Error> {
    let ns = so.namespace().unwrap_or_default();
    let api: Api<ScaledObject> = Api::namespaced(ctx.client.clone(), &ns);
    // A new object gets the finalizer and the metrics label in one write and is applied in the same
    // reconcile (kube's helper would write the finalizer alone and wait for the next event).
    let so = match adoption_patch(&so) {
        Some(patch) => Arc::new(
            api.patch(
                &so.name_any(),
                &PatchParams::default(),
                &Patch::Json::<()>(patch),
            )
            .await
            .map_err(|e| {
                Error::kube(
                    format!(
                        "adding the finalizer to ScaledObject {ns}/{}",
                        so.name_any()
                    ),
                    e,
                )
            })?,
        ),
        None => so,
    };
    finalizer(&api, FINALIZER, so, |event| async {
        match event {
            Finalizer::Apply(so) => apply(so, ctx.clone()).await,
            Finalizer::Cleanup(so) => cleanup(so, ctx.clone()).await,
        }
    })
    .await
    .map_err(|e| Error::Finalizer(e.to_string()))
}

/// The JSON patch that adds `finalizer.keda.sh` and the `scaledobject.keda.sh/name` label to a live object
/// that lacks the finalizer; `None` when it has it or is being deleted. As kube's finalizer helper, the
/// patch tests the finalizer list it saw, so a concurrent change to it fails the write instead of being
/// overwritten.
pub fn adoption_patch(so: &ScaledObject) -> Option<json_patch::Patch> {
    if so.metadata.deletion_timestamp.is_some() || so.finalizers().iter().any(|f| f == FINALIZER) {
        return None;
    }
    let name = so.name_any();
    let mut ops = match so.metadata.finalizers.as_deref() {
        None | Some([]) => vec![
            serde_json::json!({"op": "test", "path": "/metadata/finalizers", "value": null}),
            serde_json::json!({"op": "add", "path": "/metadata/finalizers", "value": [FINALIZER]}),
        ],
        Some(current) => vec![
            serde_json::json!({"op": "test", "path": "/metadata/finalizers", "value": current}),
            serde_json::json!({"op": "add", "path": "/metadata/finalizers/-", "value": FINALIZER}),
        ],
    };
    if so.labels().get(labels::SCALED_OBJECT_NAME) != Some(&name) {
        ops.push(match so.metadata.labels {
            None => serde_json::json!({"op": "add", "path": "/metadata/labels",
                "value": {labels::SCALED_OBJECT_NAME: name}}),
            // JSON pointer escaping: '/' in the key is written "~1".
            Some(_) => serde_json::json!({"op": "add",
                "path": format!("/metadata/labels/{}", labels::SCALED_OBJECT_NAME.replace('~', "~0").replace('/', "~1")),
                "value": name}),
        });
    }
    serde_json::from_value(serde_json::Value::Array(ops)).ok()
}

/// What a reconcile depends on besides `status`: a status-only change (ours, every poll that changes a
/// condition) does not reconcile again. Deletion always changes it (deletionTimestamp is set first).
pub fn reconcile_inputs(so: &ScaledObject) -> Option<u64> {
    Some(metadata_fingerprint(&so.metadata))
}

/// A hash of the metadata a reconcile acts on: generation (spec changes), labels, annotations,
/// finalizers, owners and whether deletion started. Status and resourceVersion are left out.
pub fn metadata_fingerprint(m: &kube::api::ObjectMeta) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    m.generation.hash(&mut h);
    m.labels.hash(&mut h);
    m.annotations.hash(&mut h);
    m.finalizers.hash(&mut h);
    for owner in m.owner_references.iter().flatten() {
        owner.uid.hash(&mut h);
    }
    m.deletion_timestamp.is_some().hash(&mut h);
    h.finish()
}

pub fn error_policy(so: Arc<ScaledObject>, error: &Error, _ctx: Arc<Context>) -> Action {
    tracing::warn!(namespace = ?so.namespace(), name = %so.name_any(), category = error.category(), %error, "reconcile failed");
    Action::requeue(Duration::from_secs(10))
}

/// Stops the object's scale loop, if one runs, with upstream's `KEDAScalersStopped` Event.
async fn stop_loop(ctx: &Context, so: &ScaledObject) {
    let ns = so.namespace().unwrap_or_default();
    if ctx.loops.stop(ctx, &ns, &so.name_any()) {
        ctx.event(
            so,
            EventType::Normal,
            event_reasons::KEDA_SCALERS_STOPPED,
            "Stopped scalers watch".to_owned(),
            "Stop",
        )
        .await;
    }
}

/// Sets Ready=False `ScaledObjectCheckFailed` and Active=Unknown with `message`, stops the scale loop,
/// emits the Event on a change, and retries later.
async fn check_failed(ctx: &Context, so: &ScaledObject, message: String) -> Result<Action, Error> {
    let before = so
        .status
        .as_ref()
        .and_then(|s| crate::status::condition(s, condition_types::READY))
        .cloned();
    stop_loop(ctx, so).await;
    ctx.statuses
        .update(&ctx.client, so, |s| {
            let c = s.conditions.get_or_insert_with(Vec::new);
            set_condition(
                c,
                condition_types::READY,
                "False",
                condition_reasons::SCALED_OBJECT_CHECK_FAILED,
                &message,
            );
            // As upstream: whether the object would be active is unknown while it cannot be checked.
            set_condition(
                c,
                condition_types::ACTIVE,
                "Unknown",
                condition_reasons::UNKNOWN_STATE,
                "ScaledObject check failed",
            );
        })
        .await?;
    if before.as_ref().and_then(|c| c.message.as_deref()) != Some(message.as_str()) {
        ctx.event(
            so,
            EventType::Warning,
            event_reasons::SCALED_OBJECT_CHECK_FAILED,
            message,
            "Reconcile",
        )
        .await;
    }
    Ok(Action::requeue(Duration::from_secs(30)))
}

async fn apply(so: Arc<ScaledObject>, ctx: Arc<Context>) -> Result<Action, Error> {
    let ns = so.namespace().unwrap_or_default();
    let name = so.name_any();
    let api: Api<ScaledObject> = Api::namespaced(ctx.client.clone(), &ns);
    let types: Vec<&str> = so.spec.triggers.iter().map(|t| t.r#type.as_str()).collect();
    ctx.metrics
        .register(ResourceKind::ScaledObject, &ns, &name, &types);

    // The label lets the metrics API select this object's metrics.
    if so.labels().get(labels::SCALED_OBJECT_NAME) != Some(&name) {
        let patch =
            serde_json::json!({ "metadata": { "labels": { labels::SCALED_OBJECT_NAME: name } } });
        api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(|e| Error::kube(format!("labelling ScaledObject {ns}/{name}"), e))?;
    }

    if so.is_paused() {
        return pause(&so, &ctx).await;
    }

    let target_ref = &so.spec.scale_target_ref;
    let (target, replicas) = match ctx
        .targets
        .resolve(
            &ctx.client,
            &ns,
            target_ref.api_version(),
            target_ref.kind(),
            &target_ref.name,
        )
        .await
    {
        Ok(t) => t,
        Err(message) => return check_failed(&ctx, &so, message).await,
    };

    if let Err(message) = validate(&so) {
        return check_failed(&ctx, &so, message).await;
    }
    // As upstream, a formula that does not compile makes the object not Ready (never a loop that
    // silently treats it as "any trigger active").
    if let Err(e) = keda_core::formula::compile_scaling_modifiers(&so) {
        return check_failed(&ctx, &so, e.to_string()).await;
    }

    // A resolution failure stops the old loop like every other failure (check_failed).
    let (triggers, inputs) =
        match crate::triggers::resolve_and_parse(&ctx, &so, target.pod_spec.as_deref()).await {
            Ok(t) => t,
            Err(message) => return check_failed(&ctx, &so, message).await,
        };
    let metrics: Vec<_> = triggers.iter().map(|t| t.trigger_metric()).collect();
    let desired = match keda_core::hpa::build_hpa(&so, &metrics, crate::VERSION) {
        Ok(h) => h,
        Err(e) => return check_failed(&ctx, &so, e.to_string()).await,
    };
    let hpa_name = so.hpa_name();
    apply_hpa(&ctx, &so, &desired).await?;

    let names = keda_core::hpa::metric_names(&metrics);
    let (types, auths) = triggers_and_authentications_types(&so.spec.triggers);
    let was_ready = so
        .status
        .as_ref()
        .and_then(|s| crate::status::condition(s, condition_types::READY))
        .is_some_and(|c| c.status == "True");
    let was_paused = so
        .status
        .as_ref()
        .and_then(|s| crate::status::condition(s, condition_types::PAUSED))
        .is_some_and(|c| c.status == "True");
    let one_way_paused = so.is_paused_scale_in() || so.is_paused_scale_out();
    let valid_fallback = keda_core::fallback::has_valid_fallback(&so);
    let gvkr = target.gvkr();
    let composite = so
        .spec
        .scaling_modifiers()
        .map(|_| keda_api::consts::names::COMPOSITE_METRIC.to_owned());
    ctx.statuses
        .update(&ctx.client, &so, |s| {
            s.scale_target_kind = Some(gvkr.gvk_string());
            s.scale_target_gvkr = Some(gvkr.clone());
            if s.original_replica_count.is_none() {
                s.original_replica_count = Some(replicas);
            }
            s.external_metric_names = Some(names.external.clone()).filter(|v| !v.is_empty());
            s.resource_metric_names = Some(names.resource.clone()).filter(|v| !v.is_empty());
            s.composite_scaler_name = composite.clone();
            s.hpa_name = Some(hpa_name.clone());
            s.triggers_types = Some(types.clone());
            s.authentications_types = Some(auths.clone());
            s.paused_replica_count = None;
            let c = s.conditions.get_or_insert_with(Vec::new);
            // The scale loop owns Ready after the first poll (trigger errors); a fresh or failing object
            // becomes Ready here.
            let ready = c.iter().find(|c| c.r#type == condition_types::READY);
            if ready.is_none_or(|r| {
                r.status != "True"
                    && r.reason.as_deref() != Some(condition_reasons::TRIGGER_ERROR)
                    && r.reason.as_deref() != Some(condition_reasons::PARTIAL_TRIGGER_ERROR)
            }) {
                set_condition(
                    c,
                    condition_types::READY,
                    "True",
                    condition_reasons::SCALED_OBJECT_READY,
                    condition_reasons::SCALED_OBJECT_READY_MESSAGE,
                );
            }
            // paused-scale-in / paused-scale-out pause one direction only: the loop and the HPA stay,
            // and the object says Paused=True, as upstream.
            if one_way_paused {
                set_condition(
                    c,
                    condition_types::PAUSED,
                    "True",
                    condition_reasons::SCALED_OBJECT_PAUSED,
                    condition_reasons::SCALED_OBJECT_PAUSED_MESSAGE,
                );
            } else if was_paused {
                set_condition(
                    c,
                    condition_types::PAUSED,
                    "False",
                    condition_reasons::SCALED_OBJECT_UNPAUSED,
                    UNPAUSED_MESSAGE,
                );
            }
            if !valid_fallback {
                set_condition(
                    c,
                    condition_types::FALLBACK,
                    "False",
                    condition_reasons::NO_FALLBACK_FOUND,
                    "No fallbacks are active on this scaled object",
                );
            }
        })
        .await?;
    ctx.metrics
        .scaled_object_paused
        .get_or_create(&crate::metrics::ObjectLabels {
            namespace: ns.clone(),
            scaledObject: name.clone(),
        })
        .set(if one_way_paused { 1.0 } else { 0.0 });
    if one_way_paused && !was_paused {
        ctx.event(
            &so,
            EventType::Normal,
            event_reasons::SCALED_OBJECT_PAUSED,
            condition_reasons::SCALED_OBJECT_PAUSED_MESSAGE.to_owned(),
            "Pause",
        )
        .await;
    } else if !one_way_paused && was_paused {
        ctx.event(
            &so,
            EventType::Normal,
            event_reasons::SCALED_OBJECT_UNPAUSED,
            UNPAUSED_MESSAGE.to_owned(),
            "Pause",
        )
        .await;
    }
    if !was_ready {
        ctx.event(
            &so,
            EventType::Normal,
            event_reasons::SCALED_OBJECT_READY,
            "ScaledObject is ready for scaling".to_owned(),
            "Reconcile",
        )
        .await;
    }
    if ctx.loops.ensure(ctx.clone(), &so, target, triggers, inputs) == Started::New {
        ctx.event(
            &so,
            EventType::Normal,
            event_reasons::KEDA_SCALERS_STARTED,
            "Started scalers watch".to_owned(),
            "Start",
        )
        .await;
    }
    update_auth_statuses(&ctx, &so, false).await;
    Ok(Action::requeue(Duration::from_secs(300)))
}

/// Upstream's object checks that need no IO (the webhook and `keda lint` run the same rules).
pub fn validate(so: &ScaledObject) -> Result<(), String> {
    // The shared rulebook's subset that upstream's reconcile enforces, with its words.
    match keda_check::rules::reconcile_refusal(so) {
        Some(f) => Err(f.message),
        None => Ok(()),
    }
}

async fn apply_hpa(
    ctx: &Context,
    so: &ScaledObject,
    desired: &HorizontalPodAutoscaler,
) -> Result<(), Error> {
    let ns = so.namespace().unwrap_or_default();
    let api: Api<HorizontalPodAutoscaler> = Api::namespaced(ctx.client.clone(), &ns);
    let name = desired.name_any();
    // A rename (advanced.horizontalPodAutoscalerConfig.name changed) deletes the old HPA.
    if let Some(old) = so.status.as_ref().and_then(|s| s.hpa_name.as_ref())
        && *old != name
    {
        match api.delete(old, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => {
                return Err(Error::kube(
                    format!("deleting the renamed HPA {ns}/{old}"),
                    e,
                ));
            }
        }
    }
    match api
        .get_opt(&name)
        .await
        .map_err(|e| Error::kube(format!("reading HPA {ns}/{name}"), e))?
    {
        None => {
            api.create(&PostParams::default(), desired)
                .await
                .map_err(|e| Error::kube(format!("creating HPA {ns}/{name}"), e))?;
            tracing::info!(namespace = %ns, hpa = %name, "created HPA");
        }
        Some(existing) if keda_core::hpa::hpa_needs_update(&existing, desired) => {
            let mut updated = desired.clone();
            updated.metadata.resource_version = existing.metadata.resource_version.clone();
            api.replace(&name, &PostParams::default(), &updated)
                .await
                .map_err(|e| Error::kube(format!("updating HPA {ns}/{name}"), e))?;
            tracing::info!(namespace = %ns, hpa = %name, "updated HPA");
        }
        Some(_) => {}
    }
    Ok(())
}

async fn delete_hpa(ctx: &Context, so: &ScaledObject) -> Result<(), Error> {
    let ns = so.namespace().unwrap_or_default();
    let api: Api<HorizontalPodAutoscaler> = Api::namespaced(ctx.client.clone(), &ns);
    let name = so
        .status
        .as_ref()
        .and_then(|s| s.hpa_name.clone())
        .unwrap_or_else(|| so.hpa_name());
    match api.delete(&name, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(Error::kube(format!("deleting HPA {ns}/{name}"), e)),
    }
}

/// `paused-replicas` / `paused`: stop the loop, delete the HPA, and with paused-replicas set the target.
async fn pause(so: &ScaledObject, ctx: &Context) -> Result<Action, Error> {
    let ns = so.namespace().unwrap_or_default();
    let name = so.name_any();
    stop_loop(ctx, so).await;
    delete_hpa(ctx, so).await?;
    let mut paused_count = None;
    if let Some(parsed) = so.paused_replicas() {
        let count = match parsed {
            Ok(n) if n >= 0 => n,
            Ok(n) => {
                return check_failed(
                    ctx,
                    so,
                    format!("annotation autoscaling.keda.sh/paused-replicas: {n} is negative"),
                )
                .await;
            }
            Err(message) => return check_failed(ctx, so, message).await,
        };
        let t = &so.spec.scale_target_ref;
        match ctx
            .targets
            .resolve(&ctx.client, &ns, t.api_version(), t.kind(), &t.name)
            .await
        {
            Ok((target, current)) => {
                if current != count {
                    target.scale_to(&ctx.client, count).await?;
                }
            }
            Err(message) => return check_failed(ctx, so, message).await,
        }
        paused_count = Some(count);
    }
    let was_paused = so
        .status
        .as_ref()
        .and_then(|s| crate::status::condition(s, condition_types::PAUSED))
        .is_some_and(|c| c.status == "True");
    ctx.statuses
        .update(&ctx.client, so, |s| {
            s.paused_replica_count = paused_count;
            let c = s.conditions.get_or_insert_with(Vec::new);
            set_condition(
                c,
                condition_types::PAUSED,
                "True",
                condition_reasons::SCALED_OBJECT_PAUSED,
                condition_reasons::SCALED_OBJECT_PAUSED_MESSAGE,
            );
        })
        .await?;
    ctx.metrics
        .scaled_object_paused
        .get_or_create(&crate::metrics::ObjectLabels {
            namespace: ns,
            scaledObject: name,
        })
        .set(1.0);
    if !was_paused {
        ctx.event(
            so,
            EventType::Normal,
            event_reasons::SCALED_OBJECT_PAUSED,
            "ScaledObject is paused".to_owned(),
            "Pause",
        )
        .await;
    }
    Ok(Action::requeue(Duration::from_secs(300)))
}

async fn cleanup(so: Arc<ScaledObject>, ctx: Arc<Context>) -> Result<Action, Error> {
    let ns = so.namespace().unwrap_or_default();
    let name = so.name_any();
    stop_loop(&ctx, &so).await;
    ctx.metrics
        .unregister(ResourceKind::ScaledObject, &ns, &name);
    ctx.metrics.forget_scaled_object(&ns, &name);
    if so.spec.restore_to_original_replica_count()
        && let Some(original) = so.status.as_ref().and_then(|s| s.original_replica_count)
        && so
            .status
            .as_ref()
            .and_then(|s| s.scale_target_gvkr.as_ref())
            .is_some()
    {
        let t = &so.spec.scale_target_ref;
        // A target that is gone has nothing to restore.
        if let Ok((target, _)) = ctx
            .targets
            .resolve(&ctx.client, &ns, t.api_version(), t.kind(), &t.name)
            .await
        {
            target.scale_to(&ctx.client, original).await?;
            tracing::info!(namespace = %ns, scaledobject = %name, replicas = original, "restored the original replica count");
        }
    }
    ctx.statuses.forget(&ns, &name);
    update_auth_statuses(&ctx, &so, true).await;
    ctx.event(
        &so,
        EventType::Warning,
        event_reasons::SCALED_OBJECT_DELETED,
        "ScaledObject was deleted".to_owned(),
        "Delete",
    )
    .await;
    Ok(Action::await_change())
}

/// The object reference Events are about.
pub fn object_ref(so: &ScaledObject) -> k8s_openapi::api::core::v1::ObjectReference {
    so.object_ref(&())
}

/// Keeps `.status.scaledobjects` of every TriggerAuthentication / ClusterTriggerAuthentication the object
/// refers to: the comma-joined names of the ScaledObjects using it (from the controller's cache).
pub async fn update_auth_statuses(ctx: &Context, so: &ScaledObject, deleting: bool) {
    use keda_api::common::AuthenticationRefKind;
    let ns = so.namespace().unwrap_or_default();
    let mut refs: Vec<(AuthenticationRefKind, String)> = so
        .spec
        .triggers
        .iter()
        .filter_map(|t| {
            t.authentication_ref
                .as_ref()
                .map(|r| (r.kind(), r.name.clone()))
        })
        .collect();
    refs.sort_by(|a, b| (a.0 as u8, &a.1).cmp(&(b.0 as u8, &b.1)));
    refs.dedup();
    let all = ctx.scaled_objects.state();
    for (kind, name) in refs {
        let mut users: Vec<String> = all
            .iter()
            .filter(|o| {
                !(deleting && o.namespace() == so.namespace() && o.name_any() == so.name_any())
            })
            .filter(|o| {
                kind == AuthenticationRefKind::ClusterTriggerAuthentication
                    || o.namespace().as_deref() == Some(ns.as_str())
            })
            .filter(|o| {
                o.spec.triggers.iter().any(|t| {
                    t.authentication_ref
                        .as_ref()
                        .is_some_and(|r| r.kind() == kind && r.name == name)
                })
            })
            .map(|o| o.name_any())
            .collect();
        users.sort();
        users.dedup();
        let users = users.join(",");
        let auth_ns = match kind {
            AuthenticationRefKind::TriggerAuthentication => ns.as_str(),
            AuthenticationRefKind::ClusterTriggerAuthentication => "",
        };
        // With WATCH_LABEL_SELECTOR_FOR_TRIGGERAUTH, an object this operator does not watch is another
        // shard's (or missing, as for the resolver): not ours to write.
        if ctx.config.trigger_auth_label_selector.is_some()
            && !ctx.auth_statuses.knows(kind, auth_ns, &name)
        {
            continue;
        }
        // Steady state costs no write: only a value the object does not already show is written.
        if !ctx.auth_statuses.needs_write(kind, auth_ns, &name, &users) {
            continue;
        }
        let patch = serde_json::json!({ "status": { "scaledobjects": users } });
        let result = match kind {
            AuthenticationRefKind::TriggerAuthentication => {
                Api::<keda_api::TriggerAuthentication>::namespaced(ctx.client.clone(), &ns)
                    .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                    .map(|_| ())
            }
            AuthenticationRefKind::ClusterTriggerAuthentication => {
                Api::<keda_api::ClusterTriggerAuthentication>::all(ctx.client.clone())
                    .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                    .map(|_| ())
            }
        };
        match result {
            Ok(()) => ctx.auth_statuses.written(kind, auth_ns, &name, users),
            Err(e) => {
                tracing::debug!(error = %e, auth = %name, "updating the authentication's status failed")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn so(yaml: &str) -> ScaledObject {
        serde_yaml_ng::from_str(yaml).expect("valid ScaledObject")
    }

    #[test]
    fn validation_table() {
        let base = "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {name: a}\nspec:\n  scaleTargetRef: {name: w}\n";
        let cases = [
            ("  triggers: [{type: cron, metadata: {}}]\n", Ok(())),
            (
                "  minReplicaCount: 5\n  maxReplicaCount: 2\n  triggers: [{type: cron, metadata: {}}]\n",
                Err("MinReplicaCount=5 must be less than MaxReplicaCount=2"),
            ),
            (
                "  minReplicaCount: 1\n  idleReplicaCount: 1\n  triggers: [{type: cron, metadata: {}}]\n",
                Err("IdleReplicaCount=1 must be less than MinReplicaCount=1"),
            ),
            (
                "  idleReplicaCount: 0\n  minReplicaCount: 1\n  triggers: [{type: cron, metadata: {}}]\n",
                Ok(()),
            ),
            (
                "  triggers: [{type: cpu, useCachedMetrics: true, metadata: {}}]\n",
                Err("property \"useCachedMetrics\" is not supported for \"cpu\" scaler"),
            ),
            (
                "  triggers: [{type: cron, name: a, metadata: {}}, {type: cron, name: a, metadata: {}}]\n",
                Err(
                    "triggerName \"a\" is defined multiple times in the ScaledObject/ScaledJob, but it must be unique",
                ),
            ),
            (
                "  triggers: []\n",
                Err("no triggers defined in the ScaledObject/ScaledJob"),
            ),
        ];
        for (spec, want) in cases {
            let got = validate(&so(&format!("{base}{spec}")));
            assert_eq!(got, want.map_err(str::to_owned), "{spec}");
        }
    }

    #[test]
    fn adoption_patch_adds_finalizer_and_label_in_one_write() {
        let spec = "spec:\n  scaleTargetRef: {name: w}\n  triggers: [{type: cron, metadata: {}}]\n";
        let cases = [
            (
                "metadata: {name: a}\n",
                Some(serde_json::json!([
                    {"op": "test", "path": "/metadata/finalizers", "value": null},
                    {"op": "add", "path": "/metadata/finalizers", "value": ["finalizer.keda.sh"]},
                    {"op": "add", "path": "/metadata/labels", "value": {"scaledobject.keda.sh/name": "a"}},
                ])),
            ),
            (
                "metadata: {name: a, labels: {team: x}, finalizers: [other.io/f]}\n",
                Some(serde_json::json!([
                    {"op": "test", "path": "/metadata/finalizers", "value": ["other.io/f"]},
                    {"op": "add", "path": "/metadata/finalizers/-", "value": "finalizer.keda.sh"},
                    {"op": "add", "path": "/metadata/labels/scaledobject.keda.sh~1name", "value": "a"},
                ])),
            ),
            (
                "metadata: {name: a, labels: {scaledobject.keda.sh/name: a}}\n",
                Some(serde_json::json!([
                    {"op": "test", "path": "/metadata/finalizers", "value": null},
                    {"op": "add", "path": "/metadata/finalizers", "value": ["finalizer.keda.sh"]},
                ])),
            ),
            (
                "metadata: {name: a, finalizers: [finalizer.keda.sh]}\n",
                None,
            ),
            (
                "metadata: {name: a, deletionTimestamp: '2026-01-01T00:00:00Z', finalizers: [other.io/f]}\n",
                None,
            ),
        ];
        for (meta, want) in cases {
            let got = adoption_patch(&so(&format!(
                "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\n{meta}{spec}"
            )))
            .map(|p| serde_json::to_value(p).expect("serializes"));
            assert_eq!(got, want, "{meta}");
        }
    }

    #[test]
    fn status_only_changes_do_not_change_reconcile_inputs() {
        let base = so(
            "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {name: a, generation: 1}\nspec:\n  scaleTargetRef: {name: w}\n  triggers: [{type: cron, metadata: {}}]\n",
        );
        let mut status_only = base.clone();
        status_only.status = Some(Default::default());
        status_only.metadata.resource_version = Some("42".into());
        assert_eq!(reconcile_inputs(&base), reconcile_inputs(&status_only));
        let changes: [fn(&mut ScaledObject); 5] = [
            |so| so.metadata.generation = Some(2),
            |so| {
                so.annotations_mut()
                    .insert("autoscaling.keda.sh/paused".into(), "true".into());
            },
            |so| {
                so.labels_mut().insert("team".into(), "x".into());
            },
            |so| so.finalizers_mut().push(FINALIZER.into()),
            |so| {
                so.metadata.deletion_timestamp = Some(
                    k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(Default::default()),
                )
            },
        ];
        for (i, change) in changes.iter().enumerate() {
            let mut changed = base.clone();
            change(&mut changed);
            assert_ne!(
                reconcile_inputs(&base),
                reconcile_inputs(&changed),
                "change {i}"
            );
        }
    }
}
