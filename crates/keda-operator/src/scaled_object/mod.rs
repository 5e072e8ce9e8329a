//! The ScaledObject controller. A reconcile first adopts a new object (`adoption`: finalizer and name
//! label in one write), then, behind the finalizer:
//!
//! - `apply`: resolve the target, check the object (`refusal`: Ready=False and no loop when a check
//!   fails), resolve and parse the triggers, build the HPA and write it (`hpa`), set the conditions and
//!   Events, start or keep the scale loop;
//! - `pause`: the `paused` / `paused-replicas` annotations (loop stopped, HPA deleted) and the one-way
//!   `paused-scale-in` / `paused-scale-out` ones (conditions and Events only);
//! - `finalize`: on delete, stop the loop, forget the object's series and status, and optionally restore
//!   the original replica count;
//! - `auth_status`: `.status.scaledobjects` of the TriggerAuthentications the object uses.
//!
//! `fingerprint` decides which watch events reconcile at all.

pub mod adoption;
mod apply;
mod auth_status;
mod finalize;
mod fingerprint;
mod hpa;
mod pause;
mod refusal;

use std::sync::Arc;
use std::time::Duration;

use keda_api::ScaledObject;
use keda_api::consts::{FINALIZER, event_reasons};
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::{Resource, ResourceExt};

pub use adoption::adoption_patch;
pub use auth_status::update_auth_statuses;
pub use fingerprint::{metadata_fingerprint, reconcile_fingerprint};
pub use refusal::validate;

use crate::Context;
use crate::error::Error;

/// Entry point used by the kube-runtime Controller.
pub async fn reconcile(so: Arc<ScaledObject>, ctx: Arc<Context>) -> Result<Action, Error> {
    let ns = so.namespace().unwrap_or_default();
    let api: Api<ScaledObject> = Api::namespaced(ctx.client.clone(), &ns);
    let so = adoption::adopt(&api, so).await?;
    finalizer(&api, FINALIZER, so, |event| async {
        match event {
            Finalizer::Apply(so) => apply::apply(so, ctx.clone()).await,
            Finalizer::Cleanup(so) => finalize::cleanup(so, ctx.clone()).await,
        }
    })
    .await
    .map_err(|e| Error::Finalizer(e.to_string()))
}

pub fn error_policy(so: Arc<ScaledObject>, error: &Error, _ctx: Arc<Context>) -> Action {
    tracing::warn!(namespace = ?so.namespace(), name = %so.name_any(), category = error.category(), %error, "reconcile failed");
    Action::requeue(Duration::from_secs(10))
}

/// The object reference Events are about.
pub fn object_ref(so: &ScaledObject) -> k8s_openapi::api::core::v1::ObjectReference {
    so.object_ref(&())
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
