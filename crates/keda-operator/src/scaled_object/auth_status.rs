//! `.status.scaledobjects` of the TriggerAuthentications and ClusterTriggerAuthentications a ScaledObject
//! uses, written only when the value changes.

use keda_api::ScaledObject;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};

use crate::Context;

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
