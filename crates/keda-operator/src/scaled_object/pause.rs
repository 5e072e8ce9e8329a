//! Pausing: `paused` / `paused-replicas` stop the loop and delete the HPA (and set the target's
//! replicas); `paused-scale-in` / `paused-scale-out` pause one direction only, in the HPA's behavior
//! (keda-core), with the Paused condition and Events set here.

use std::time::Duration;

use keda_api::ScaledObject;
use keda_api::common::Condition;
use keda_api::consts::{condition_reasons, condition_types, event_reasons};
use kube::ResourceExt;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;

use super::hpa::delete_hpa;
use super::refusal::check_failed;
use super::stop_loop;
use crate::Context;
use crate::error::Error;
use crate::status::set_condition;

/// Upstream's message when a pause annotation is removed.
const UNPAUSED_MESSAGE: &str = "pause annotation removed for ScaledObject";

/// Whether the object's status says Paused=True.
pub(super) fn was_paused(so: &ScaledObject) -> bool {
    so.status
        .as_ref()
        .and_then(|s| crate::status::condition(s, condition_types::PAUSED))
        .is_some_and(|c| c.status == "True")
}

/// Whether only one direction is paused (`paused-scale-in` / `paused-scale-out`): the loop and the HPA
/// stay.
pub(super) fn is_one_way_paused(so: &ScaledObject) -> bool {
    so.is_paused_scale_in() || so.is_paused_scale_out()
}

/// The Paused condition of an object that is not fully paused: True while one direction is paused (as
/// upstream), False once the last pause annotation went.
pub(super) fn set_one_way_paused_condition(
    conditions: &mut Vec<Condition>,
    one_way_paused: bool,
    was_paused: bool,
) {
    if one_way_paused {
        set_condition(
            conditions,
            condition_types::PAUSED,
            "True",
            condition_reasons::SCALED_OBJECT_PAUSED,
            condition_reasons::SCALED_OBJECT_PAUSED_MESSAGE,
        );
    } else if was_paused {
        set_condition(
            conditions,
            condition_types::PAUSED,
            "False",
            condition_reasons::SCALED_OBJECT_UNPAUSED,
            UNPAUSED_MESSAGE,
        );
    }
}

/// The `keda_scaled_object_paused` gauge of an object that is not fully paused, and the Paused or
/// Unpaused Event when that changed.
pub(super) async fn report_one_way_pause(
    ctx: &Context,
    so: &ScaledObject,
    one_way_paused: bool,
    was_paused: bool,
) {
    ctx.metrics
        .scaled_object_paused
        .get_or_create(&crate::metrics::ObjectLabels {
            namespace: so.namespace().unwrap_or_default(),
            scaledObject: so.name_any(),
        })
        .set(if one_way_paused { 1.0 } else { 0.0 });
    if one_way_paused && !was_paused {
        ctx.event(
            so,
            EventType::Normal,
            event_reasons::SCALED_OBJECT_PAUSED,
            condition_reasons::SCALED_OBJECT_PAUSED_MESSAGE.to_owned(),
            "Pause",
        )
        .await;
    } else if !one_way_paused && was_paused {
        ctx.event(
            so,
            EventType::Normal,
            event_reasons::SCALED_OBJECT_UNPAUSED,
            UNPAUSED_MESSAGE.to_owned(),
            "Pause",
        )
        .await;
    }
}

/// `paused-replicas` / `paused`: stop the loop, delete the HPA, and with paused-replicas set the target.
pub(super) async fn pause(so: &ScaledObject, ctx: &Context) -> Result<Action, Error> {
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
    let was_paused = was_paused(so);
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
