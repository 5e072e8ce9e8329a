//! The reconcile of a live object: resolve the target, check the object, resolve and parse its
//! triggers, write the HPA, set the status and Events, and start or keep the scale loop.

use std::sync::Arc;
use std::time::Duration;

use keda_api::ScaledObject;
use keda_api::common::triggers_and_authentications_types;
use keda_api::consts::{condition_reasons, condition_types, event_reasons};
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;

use super::adoption::restore_name_label;
use super::auth_status::update_auth_statuses;
use super::hpa::apply_hpa;
use super::pause::{
    is_one_way_paused, pause, report_one_way_pause, set_one_way_paused_condition, was_paused,
};
use super::refusal::{check_failed, validate};
use crate::Context;
use crate::error::Error;
use crate::metrics::ResourceKind;
use crate::scale_loop::Started;
use crate::status::set_condition;

/// Everything a reconcile of a live object does; a failed check ends it through [`check_failed`].
pub(super) async fn apply(so: Arc<ScaledObject>, ctx: Arc<Context>) -> Result<Action, Error> {
    let ns = so.namespace().unwrap_or_default();
    let name = so.name_any();
    let api: Api<ScaledObject> = Api::namespaced(ctx.client.clone(), &ns);
    let types: Vec<&str> = so.spec.triggers.iter().map(|t| t.r#type.as_str()).collect();
    ctx.metrics
        .register(ResourceKind::ScaledObject, &ns, &name, &types);

    restore_name_label(&api, &so).await?;

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
    let was_paused = was_paused(&so);
    let one_way_paused = is_one_way_paused(&so);
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
            set_one_way_paused_condition(c, one_way_paused, was_paused);
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
    report_one_way_pause(&ctx, &so, one_way_paused, was_paused).await;
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
