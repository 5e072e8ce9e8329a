//! Issue 16 (b): a spec change of a ScaledJob under the immediate rollout (the default) deletes its Jobs,
//! running ones too; the webhook says how many before it happens. A gradual rollout, a metadata-only
//! update and a ScaledJob without Jobs get no such warning.

use std::sync::Arc;

use keda_resolver::{AbsentPolicy, MemorySource, Resolver};
use keda_webhooks::{Index, Kind, MemoryCluster, Metrics, Webhook};
use serde_json::{Value, json};

const NS: &str = "team";

fn webhook(jobs: usize) -> Webhook<MemorySource, MemoryCluster> {
    let mut cluster = MemoryCluster::default();
    cluster
        .scaled_job_jobs
        .insert((NS.to_owned(), "runner".to_owned()), jobs);
    Webhook {
        index: Arc::new(Index::new()),
        resolver: Resolver::new(MemorySource::new(AbsentPolicy::assume_all()), "keda"),
        cluster,
        metrics: Metrics::default(),
    }
}

fn scaled_job(rollout: Option<&str>) -> Value {
    let mut sj = json!({"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledJob",
        "metadata": {"name": "runner", "namespace": NS},
        "spec": {"jobTargetRef": {"template": {"spec": {"containers": [{"name": "c", "image": "x"}]}}},
                 "triggers": [{"type": "cron", "metadata": {"timezone": "Etc/UTC", "start": "0 * * * *", "end": "30 * * * *", "desiredReplicas": "2"}}]}});
    if let Some(strategy) = rollout {
        sj["spec"]["rollout"] = json!({"strategy": strategy});
    }
    sj
}

/// (allowed, warnings) of an UPDATE from `old` to `new`.
async fn update(
    w: &Webhook<MemorySource, MemoryCluster>,
    old: &Value,
    new: &Value,
) -> (bool, Vec<String>) {
    let body = serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "0d3c5a52-2a8e-4a5c-9d0e-6f1c2b3a4d5e",
            "kind": {"group": "keda.sh", "version": "v1alpha1", "kind": "ScaledJob"},
            "resource": {"group": "keda.sh", "version": "v1alpha1", "resource": "scaledjobs"},
            "name": "runner",
            "namespace": NS,
            "operation": "UPDATE",
            "userInfo": {"username": "test"},
            "object": new,
            "oldObject": old,
            "dryRun": false,
        }
    }))
    .expect("JSON");
    let v = serde_json::to_value(w.review(Kind::ScaledJob, &body).await).expect("review encodes");
    let warnings = v["response"]["warnings"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    (
        v["response"]["allowed"].as_bool().expect("allowed"),
        warnings,
    )
}

fn rollout_warnings(warnings: &[String]) -> Vec<&String> {
    warnings
        .iter()
        .filter(|w| w.starts_with("spec.rollout.strategy:"))
        .collect()
}

#[tokio::test]
async fn a_spec_change_under_the_immediate_rollout_names_the_jobs_it_deletes() {
    for rollout in [None, Some("immediate")] {
        let w = webhook(3);
        let old = scaled_job(rollout);
        let mut new = old.clone();
        new["spec"]["maxReplicaCount"] = json!(20);
        let (allowed, warnings) = update(&w, &old, &new).await;
        assert!(allowed, "{warnings:?}");
        let said = rollout_warnings(&warnings);
        assert_eq!(said.len(), 1, "{rollout:?}: {warnings:?}");
        assert!(said[0].contains("deletes the 3 Job(s)"), "{}", said[0]);
        assert!(said[0].contains("gradual"), "{}", said[0]);
    }
}

#[tokio::test]
async fn no_rollout_warning_when_nothing_would_be_deleted() {
    // Gradual rollout: running Jobs finish with their old spec.
    let w = webhook(3);
    let old = scaled_job(Some("gradual"));
    let mut new = old.clone();
    new["spec"]["maxReplicaCount"] = json!(20);
    let (_, warnings) = update(&w, &old, &new).await;
    assert!(rollout_warnings(&warnings).is_empty(), "{warnings:?}");

    // A metadata-only update keeps the generation: nothing is deleted.
    let old = scaled_job(None);
    let mut new = old.clone();
    new["metadata"]["labels"] = json!({"team": "a"});
    let (_, warnings) = update(&w, &old, &new).await;
    assert!(rollout_warnings(&warnings).is_empty(), "{warnings:?}");

    // No Jobs to delete.
    let w = webhook(0);
    let mut new = old.clone();
    new["spec"]["maxReplicaCount"] = json!(20);
    let (_, warnings) = update(&w, &old, &new).await;
    assert!(rollout_warnings(&warnings).is_empty(), "{warnings:?}");
}
