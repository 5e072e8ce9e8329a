//! Which watch events reconcile: a change of what a reconcile acts on, never a status-only change.

use keda_api::ScaledObject;

/// What a reconcile depends on besides `status`: a status-only change (ours, every poll that changes a
/// condition) does not reconcile again. Deletion always changes it (deletionTimestamp is set first).
pub fn reconcile_fingerprint(so: &ScaledObject) -> Option<u64> {
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

#[cfg(test)]
mod tests {
    use keda_api::consts::FINALIZER;
    use kube::ResourceExt;

    use super::*;

    fn so(yaml: &str) -> ScaledObject {
        serde_yaml_ng::from_str(yaml).expect("valid ScaledObject")
    }

    #[test]
    fn status_only_changes_do_not_change_reconcile_fingerprint() {
        let base = so(
            "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {name: a, generation: 1}\nspec:\n  scaleTargetRef: {name: w}\n  triggers: [{type: cron, metadata: {}}]\n",
        );
        let mut status_only = base.clone();
        status_only.status = Some(Default::default());
        status_only.metadata.resource_version = Some("42".into());
        assert_eq!(
            reconcile_fingerprint(&base),
            reconcile_fingerprint(&status_only)
        );
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
                reconcile_fingerprint(&base),
                reconcile_fingerprint(&changed),
                "change {i}"
            );
        }
    }
}
