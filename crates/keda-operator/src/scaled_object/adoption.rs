//! Adoption: the finalizer and the `scaledobject.keda.sh/name` label, which the metrics API selects an
//! object's metrics by.

use std::sync::Arc;

use keda_api::ScaledObject;
use keda_api::consts::{FINALIZER, labels};
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};

use crate::error::Error;

/// A new object gets the finalizer and the metrics label in one write and is applied in the same
/// reconcile (kube's helper would write the finalizer alone and wait for the next event). Returns the
/// object as written, or as it was when it needed nothing.
pub(super) async fn adopt(
    api: &Api<ScaledObject>,
    so: Arc<ScaledObject>,
) -> Result<Arc<ScaledObject>, Error> {
    let Some(patch) = adoption_patch(&so) else {
        return Ok(so);
    };
    api.patch(
        &so.name_any(),
        &PatchParams::default(),
        &Patch::Json::<()>(patch),
    )
    .await
    .map(Arc::new)
    .map_err(|e| {
        Error::kube(
            format!(
                "adding the finalizer to ScaledObject {}/{}",
                so.namespace().unwrap_or_default(),
                so.name_any()
            ),
            e,
        )
    })
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

/// Puts the name label back on an adopted object that lost it: the metrics API selects this object's
/// metrics by it.
pub(super) async fn restore_name_label(
    api: &Api<ScaledObject>,
    so: &ScaledObject,
) -> Result<(), Error> {
    let name = so.name_any();
    if so.labels().get(labels::SCALED_OBJECT_NAME) == Some(&name) {
        return Ok(());
    }
    let ns = so.namespace().unwrap_or_default();
    let patch =
        serde_json::json!({ "metadata": { "labels": { labels::SCALED_OBJECT_NAME: name } } });
    api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|e| Error::kube(format!("labelling ScaledObject {ns}/{name}"), e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn so(yaml: &str) -> ScaledObject {
        serde_yaml_ng::from_str(yaml).expect("valid ScaledObject")
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
}
