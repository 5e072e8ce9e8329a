//! Deletion, behind the finalizer: stop the loop, forget the object's series and status copy, restore the
//! original replica count when asked to, and drop the object from its TriggerAuthentications' status.

use std::sync::Arc;

use keda_api::ScaledObject;
use keda_api::consts::event_reasons;
use kube::ResourceExt;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;

use super::auth_status::update_auth_statuses;
use super::stop_loop;
use crate::Context;
use crate::error::Error;
use crate::metrics::ResourceKind;

/// Upstream's finalizer: stops the loop, unregisters the object's series and, with
/// `advanced.restoreToOriginalReplicaCount`, scales the target back to the count it had before KEDA.
pub(super) async fn cleanup(so: Arc<ScaledObject>, ctx: Arc<Context>) -> Result<Action, Error> {
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
