//! Refusal: the object checks that need no IO, and what a failed check (of these, of the target or of a
//! trigger) does to the object.

use std::time::Duration;

use keda_api::ScaledObject;
use keda_api::consts::{condition_reasons, condition_types, event_reasons};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;

use super::stop_loop;
use crate::Context;
use crate::error::Error;
use crate::status::set_condition;

/// Upstream's object checks that need no IO (the webhook and `keda lint` run the same rules).
pub fn validate(so: &ScaledObject) -> Result<(), String> {
    // The shared rulebook's subset that upstream's reconcile enforces, with its words.
    match keda_check::rules::reconcile_refusal(so) {
        Some(f) => Err(f.message),
        None => Ok(()),
    }
}

/// Sets Ready=False `ScaledObjectCheckFailed` and Active=Unknown with `message`, stops the scale loop,
/// emits the Event on a change, and retries later.
pub(super) async fn check_failed(
    ctx: &Context,
    so: &ScaledObject,
    message: String,
) -> Result<Action, Error> {
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
}
