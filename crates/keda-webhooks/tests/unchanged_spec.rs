//! Issue 14 item 5: upgrading from upstream never freezes a workload. An UPDATE that leaves the spec of a
//! ScaledObject or ScaledJob as it is (labels, `autoscaling.keda.sh/paused`) is admitted with a warning
//! when only keda-rs's own checks object (a trigger type it does not support, an unsupported
//! authentication provider, a missing TriggerAuthentication); upstream's rejections stay rejections, and
//! a CREATE or a spec change is judged as before.

use std::sync::Arc;

use keda_resolver::{Absent, AbsentPolicy, MemorySource, Resolver};
use keda_webhooks::{Index, Kind, MemoryCluster, Metrics, Webhook};
use serde_json::{Value, json};

const NS: &str = "team";

fn webhook() -> Webhook<MemorySource, MemoryCluster> {
    let index = Arc::new(Index::new());
    // An HPA of someone else on Deployment `hpa-app`: upstream rejects a ScaledObject on it, on update too.
    let hpa: k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler =
        serde_json::from_value(json!({
            "metadata": {"name": "foreign", "namespace": NS},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "hpa-app"}, "maxReplicas": 3}
        }))
        .expect("HPA");
    index.apply_hpa(&hpa);
    let absent = AbsentPolicy {
        secret: Absent::Missing,
        config_map: Absent::Missing,
        trigger_authentication: Absent::Missing,
        cluster_trigger_authentication: Absent::Missing,
        service_account: Absent::Missing,
    };
    let source = MemorySource::new(absent).with_trigger_authentication(
        NS,
        "azure",
        serde_json::from_value(json!({"podIdentity": {"provider": "azure-workload"}}))
            .expect("TA spec"),
    );
    Webhook {
        index,
        resolver: Resolver::new(source, "keda"),
        cluster: MemoryCluster::default(),
        metrics: Metrics::default(),
    }
}

fn review(kind: Kind, operation: &str, object: &Value, old: Option<&Value>) -> Vec<u8> {
    let resource = match kind {
        Kind::ScaledObject => "scaledobjects",
        _ => "scaledjobs",
    };
    serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
            "kind": {"group": "keda.sh", "version": "v1alpha1", "kind": kind.name()},
            "resource": {"group": "keda.sh", "version": "v1alpha1", "resource": resource},
            "name": object["metadata"]["name"],
            "namespace": NS,
            "operation": operation,
            "userInfo": {"username": "test"},
            "object": object,
            "oldObject": old,
            "dryRun": false,
        }
    }))
    .expect("JSON")
}

/// (allowed, message, warnings) of a review answer.
async fn run(
    w: &Webhook<MemorySource, MemoryCluster>,
    kind: Kind,
    body: &[u8],
) -> (bool, String, Vec<String>) {
    let v = serde_json::to_value(w.review(kind, body).await).expect("review encodes");
    let resp = &v["response"];
    let warnings = resp["warnings"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    (
        resp["allowed"].as_bool().expect("allowed"),
        resp.pointer("/status/message")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned(),
        warnings,
    )
}

fn so(name: &str, target: &str, triggers: Value) -> Value {
    json!({"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
           "metadata": {"name": name, "namespace": NS},
           "spec": {"scaleTargetRef": {"name": target}, "minReplicaCount": 1, "triggers": triggers}})
}

fn ibmmq() -> Value {
    json!([{"type": "ibmmq", "metadata": {"host": "https://mq.example:9443/ibmmq/rest/v2/admin/action/qmgr/QM1/mqsc", "queueName": "ORDERS", "queueDepth": "10"}}])
}

fn paused(object: &Value) -> Value {
    let mut new = object.clone();
    new["metadata"]["annotations"] = json!({"autoscaling.keda.sh/paused": "true"});
    new["metadata"]["labels"] = json!({"team": "a"});
    new
}

const ADMITTED: &str = "admitted because this update leaves the spec unchanged";

#[tokio::test]
async fn an_unknown_trigger_type_is_admitted_on_a_metadata_only_update() {
    let w = webhook();
    let old = so("orders", "web", ibmmq());
    let new = paused(&old);

    // A CREATE is refused, as before.
    let (allowed, message, _) = run(
        &w,
        Kind::ScaledObject,
        &review(Kind::ScaledObject, "CREATE", &old, None),
    )
    .await;
    assert!(!allowed);
    assert!(
        message.contains("unknown trigger type \"ibmmq\""),
        "{message}"
    );

    // Labels and the paused annotation: admitted, the refusal as a warning that says why and what
    // keda-rs does.
    let (allowed, message, warnings) = run(
        &w,
        Kind::ScaledObject,
        &review(Kind::ScaledObject, "UPDATE", &new, Some(&old)),
    )
    .await;
    assert!(allowed, "{message}");
    let warning = warnings
        .iter()
        .find(|w| w.contains("unknown trigger type \"ibmmq\""))
        .unwrap_or_else(|| panic!("no warning about ibmmq in {warnings:?}"));
    assert!(warning.contains(ADMITTED), "{warning}");
    assert!(warning.contains("Ready=False"), "{warning}");
    assert!(warning.starts_with("spec.triggers[0].type"), "{warning}");

    // A spec change is judged as a CREATE: still refused.
    let mut changed = new.clone();
    changed["spec"]["maxReplicaCount"] = json!(5);
    let (allowed, message, warnings) = run(
        &w,
        Kind::ScaledObject,
        &review(Kind::ScaledObject, "UPDATE", &changed, Some(&old)),
    )
    .await;
    assert!(!allowed);
    assert!(
        message.contains("unknown trigger type \"ibmmq\""),
        "{message}"
    );
    assert!(
        !warnings.iter().any(|w| w.contains(ADMITTED)),
        "{warnings:?}"
    );
}

#[tokio::test]
async fn unsupported_and_missing_authentication_is_admitted_on_a_metadata_only_update() {
    let w = webhook();
    let trigger = |auth: &str| {
        json!([{"type": "metrics-api", "authenticationRef": {"name": auth},
                "metadata": {"url": "http://api.example/m", "valueLocation": "v", "targetValue": "5"}}])
    };
    for auth in ["azure", "missing"] {
        let old = so("api", "web", trigger(auth));
        let (allowed, message, warnings) = run(
            &w,
            Kind::ScaledObject,
            &review(Kind::ScaledObject, "UPDATE", &paused(&old), Some(&old)),
        )
        .await;
        assert!(allowed, "{auth}: {message}");
        let named = if auth == "azure" {
            "azure-workload"
        } else {
            "missing"
        };
        assert!(warnings.iter().any(|w| w.contains(named)), "{warnings:?}");
        // A spec change is refused when the webhook refuses the authentication (a missing one is; an
        // unsupported provider may be a warning only, depending on the webhook's checks).
        let mut changed = paused(&old);
        changed["spec"]["maxReplicaCount"] = json!(5);
        let (allowed, message, _) = run(
            &w,
            Kind::ScaledObject,
            &review(Kind::ScaledObject, "UPDATE", &changed, Some(&old)),
        )
        .await;
        if auth == "missing" {
            assert!(!allowed);
            assert!(message.contains("missing"), "{message}");
        }
    }
}

#[tokio::test]
async fn upstream_rejections_stay_rejections_on_a_metadata_only_update() {
    let w = webhook();
    // Another HPA manages the target: upstream refuses every update of this object, so does keda-rs,
    // while the ibmmq trigger's refusal becomes a warning.
    let old = so("taken", "hpa-app", ibmmq());
    let (allowed, message, warnings) = run(
        &w,
        Kind::ScaledObject,
        &review(Kind::ScaledObject, "UPDATE", &paused(&old), Some(&old)),
    )
    .await;
    assert!(!allowed);
    assert!(
        message.contains("already managed by the hpa 'foreign'"),
        "{message}"
    );
    assert!(!message.contains("ibmmq"), "{message}");
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("ibmmq") && w.contains(ADMITTED)),
        "{warnings:?}"
    );
    // Duplicate trigger names (upstream's incorrect-triggers).
    let old = so(
        "dup",
        "web",
        json!([{"type": "ibmmq", "name": "a", "metadata": {}}, {"type": "ibmmq", "name": "a", "metadata": {}}]),
    );
    let (allowed, message, _) = run(
        &w,
        Kind::ScaledObject,
        &review(Kind::ScaledObject, "UPDATE", &paused(&old), Some(&old)),
    )
    .await;
    assert!(!allowed);
    assert!(message.contains("is defined multiple times"), "{message}");
}

#[tokio::test]
async fn a_scaled_job_with_an_unknown_trigger_type_is_admitted_on_a_metadata_only_update() {
    let w = webhook();
    let old = json!({"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledJob",
        "metadata": {"name": "j", "namespace": NS},
        "spec": {"jobTargetRef": {"template": {"spec": {"containers": [{"name": "c", "image": "x"}]}}},
                 "triggers": ibmmq()}});
    let (allowed, _, _) = run(
        &w,
        Kind::ScaledJob,
        &review(Kind::ScaledJob, "CREATE", &old, None),
    )
    .await;
    assert!(!allowed);
    let (allowed, message, warnings) = run(
        &w,
        Kind::ScaledJob,
        &review(Kind::ScaledJob, "UPDATE", &paused(&old), Some(&old)),
    )
    .await;
    assert!(allowed, "{message}");
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("ibmmq") && w.contains(ADMITTED)),
        "{warnings:?}"
    );
    let mut changed = paused(&old);
    changed["spec"]["pollingInterval"] = json!(10);
    let (allowed, _, _) = run(
        &w,
        Kind::ScaledJob,
        &review(Kind::ScaledJob, "UPDATE", &changed, Some(&old)),
    )
    .await;
    assert!(!allowed);
}
