//! AdmissionReview requests (JSON) in, allowed / denied with a message out, per kind, against in-memory
//! indexes, an in-memory object source and in-memory workloads.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{PodTemplateSpec, Service};
use k8s_openapi::api::networking::v1::Ingress;
use keda_check::advice::{Exposure, IngressInfo, ServiceInfo};
use keda_resolver::{Absent, AbsentPolicy, MemorySource, Resolver};
use keda_webhooks::{Index, Kind, MemoryCluster, Metrics, Webhook};
use serde_json::{Value, json};

const NS: &str = "team";

fn webhook() -> Webhook<MemorySource, MemoryCluster> {
    let index = Arc::new(Index::new());
    // Existing objects: ScaledObject `taken` on Deployment `busy`, an HPA `foreign` on Deployment `hpa-app`.
    let existing: keda_api::ScaledObject = serde_json::from_value(json!({
        "apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
        "metadata": {"name": "taken", "namespace": NS},
        "spec": {"scaleTargetRef": {"name": "busy"}, "triggers": [{"type": "cpu", "metadata": {"value": "50"}}]}
    }))
    .expect("ScaledObject");
    index.apply_scaled_object(&existing);
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
    let source = MemorySource::new(absent)
        .with_secret(NS, "creds", [("url", "http://api.example/metrics")])
        .with_trigger_authentication(
            NS,
            "api-auth",
            serde_json::from_value(
                json!({"secretTargetRef": [{"parameter": "url", "name": "creds", "key": "url"}]}),
            )
            .expect("TA spec"),
        );
    let mut cluster = MemoryCluster::default();
    let pod: PodTemplateSpec = serde_json::from_value(json!({"spec": {"containers": [
        {"name": "app", "image": "x", "resources": {"requests": {"memory": "64Mi"}}}
    ]}}))
    .expect("pod template");
    cluster
        .workloads
        .insert((NS.into(), "Deployment".into(), "web".into()), pod);
    // Graceful-shutdown pitfalls: `shop` sleeps 30 s in preStop with the default 30 s grace period and
    // sits behind an ALB Ingress; `shop-ok` has a 90 s grace period behind the same Ingress.
    for (name, grace) in [("shop", None), ("shop-ok", Some(90))] {
        let template: PodTemplateSpec = serde_json::from_value(json!({
            "metadata": {"labels": {"app": name}},
            "spec": {"terminationGracePeriodSeconds": grace, "containers": [
                {"name": "app", "image": "x", "lifecycle": {"preStop": {"exec": {"command": ["sleep", "30"]}}}}
            ]}
        }))
        .expect("pod template");
        cluster
            .workloads
            .insert((NS.into(), "Deployment".into(), name.into()), template);
    }
    let services = ["shop", "shop-ok"].map(|n| {
        let svc: Service = serde_json::from_value(json!({
            "metadata": {"name": n, "namespace": NS}, "spec": {"selector": {"app": n}}
        }))
        .expect("Service");
        ServiceInfo::from_service(&svc)
    });
    let ingress: Ingress = serde_json::from_value(json!({
        "metadata": {"name": "public", "namespace": NS, "annotations": {"kubernetes.io/ingress.class": "alb"}},
        "spec": {"rules": [{"http": {"paths": [
            {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "shop", "port": {"number": 80}}}},
            {"path": "/ok", "pathType": "Prefix", "backend": {"service": {"name": "shop-ok", "port": {"number": 80}}}}
        ]}}]}
    }))
    .expect("Ingress");
    cluster.exposure.insert(
        NS.into(),
        Exposure {
            services: services.to_vec(),
            ingresses: vec![IngressInfo::from_ingress(&ingress)],
            alb_classes: Default::default(),
        },
    );
    Webhook {
        index,
        resolver: Resolver::new(source, "keda"),
        cluster,
        metrics: Metrics::default(),
    }
}

fn review_of(
    kind: Kind,
    operation: &str,
    object: Value,
    old: Option<Value>,
    dry_run: bool,
) -> Vec<u8> {
    let (group, version) = ("keda.sh", "v1alpha1");
    let resource = match kind {
        Kind::ScaledObject => "scaledobjects",
        Kind::ScaledJob => "scaledjobs",
        Kind::TriggerAuthentication => "triggerauthentications",
        Kind::ClusterTriggerAuthentication => "clustertriggerauthentications",
    };
    let review = json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
            "kind": {"group": group, "version": version, "kind": kind.name()},
            "resource": {"group": group, "version": version, "resource": resource},
            "name": object.pointer("/metadata/name").cloned().unwrap_or(Value::Null),
            "namespace": if kind == Kind::ClusterTriggerAuthentication { Value::Null } else { json!(NS) },
            "operation": operation,
            "userInfo": {"username": "test"},
            "object": object,
            "oldObject": old,
            "dryRun": dry_run,
        }
    });
    serde_json::to_vec(&review).expect("JSON")
}

fn so(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
           "metadata": {"name": name, "namespace": NS}, "spec": spec})
}

fn api_trigger() -> Value {
    json!({"type": "metrics-api", "name": "api", "metadata": {"targetValue": "5", "url": "http://api.example/m", "valueLocation": "a.b"}})
}

const WINDOW: &str = "stabilizationWindowSeconds";

fn advanced() -> Value {
    json!({"horizontalPodAutoscalerConfig": {"behavior": {"scaleDown": {WINDOW: 600}}}})
}

/// (allowed, message, warnings) of a review answer.
async fn run(
    w: &Webhook<MemorySource, MemoryCluster>,
    kind: Kind,
    body: &[u8],
) -> (bool, String, Vec<String>) {
    let review = w.review(kind, body).await;
    let v = serde_json::to_value(&review).expect("review encodes");
    let resp = v.get("response").expect("response");
    (
        resp["allowed"].as_bool().expect("allowed"),
        resp.pointer("/status/message")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned(),
        resp.get("warnings")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default(),
    )
}

#[tokio::test]
async fn scaled_object_table() {
    let w = webhook();
    // (case, object, dry run, expected: None = allowed, Some(fragment) = denied with it)
    let cases: Vec<(&str, Value, bool, Option<&str>)> = vec![
        (
            "valid",
            so(
                "ok",
                json!({"scaleTargetRef": {"name": "web"}, "advanced": advanced(), "triggers": [api_trigger()]}),
            ),
            false,
            None,
        ),
        (
            "min > max",
            so(
                "a",
                json!({"scaleTargetRef": {"name": "a"}, "minReplicaCount": 5, "maxReplicaCount": 2, "advanced": advanced(), "triggers": [api_trigger()]}),
            ),
            false,
            Some("MinReplicaCount=5 must be less than MaxReplicaCount=2"),
        ),
        (
            "idle >= min",
            so(
                "a",
                json!({"scaleTargetRef": {"name": "a"}, "minReplicaCount": 2, "idleReplicaCount": 2, "advanced": advanced(), "triggers": [api_trigger()]}),
            ),
            false,
            Some("IdleReplicaCount=2 must be less than MinReplicaCount=2"),
        ),
        (
            "duplicate target",
            so(
                "second",
                json!({"scaleTargetRef": {"name": "busy"}, "advanced": advanced(), "triggers": [api_trigger()]}),
            ),
            false,
            Some(
                "the workload 'busy' of type 'apps/v1.Deployment' is already managed by the ScaledObject 'taken'",
            ),
        ),
        (
            "duplicate HPA name",
            so(
                "other",
                json!({"scaleTargetRef": {"name": "o"}, "advanced": {"horizontalPodAutoscalerConfig": {"name": "keda-hpa-taken", "behavior": {"scaleDown": {WINDOW: 60}}}}, "triggers": [api_trigger()]}),
            ),
            false,
            Some("the HPA 'keda-hpa-taken' is already managed by the ScaledObject 'taken'"),
        ),
        (
            "foreign HPA",
            so(
                "h",
                json!({"scaleTargetRef": {"name": "hpa-app"}, "advanced": advanced(), "triggers": [api_trigger()]}),
            ),
            false,
            Some("is already managed by the hpa 'foreign'"),
        ),
        (
            "transfer without name",
            json!({"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
            "metadata": {"name": "h", "namespace": NS, "annotations": {"scaledobject.keda.sh/transfer-hpa-ownership": "true"}},
            "spec": {"scaleTargetRef": {"name": "hpa-app"}, "advanced": advanced(), "triggers": [api_trigger()]}}),
            false,
            Some("horizontalPodAutoscalerConfig.name is missing"),
        ),
        (
            "transfer with name",
            json!({"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
            "metadata": {"name": "h", "namespace": NS, "annotations": {"scaledobject.keda.sh/transfer-hpa-ownership": "true"}},
            "spec": {"scaleTargetRef": {"name": "hpa-app"}, "advanced": {"horizontalPodAutoscalerConfig": {"name": "foreign", "behavior": {"scaleDown": {WINDOW: 60}}}}, "triggers": [api_trigger()]}}),
            false,
            None,
        ),
        (
            "ownership validation off",
            json!({"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
            "metadata": {"name": "h", "namespace": NS, "annotations": {"validations.keda.sh/hpa-ownership": "false"}},
            "spec": {"scaleTargetRef": {"name": "hpa-app"}, "advanced": advanced(), "triggers": [api_trigger()]}}),
            false,
            None,
        ),
        (
            "cpu without request",
            so(
                "c",
                json!({"scaleTargetRef": {"name": "web"}, "minReplicaCount": 1, "triggers": [{"type": "cpu", "metricType": "Utilization", "metadata": {"value": "50"}}]}),
            ),
            false,
            Some(
                "the scaledobject has a cpu trigger but the container app doesn't have the cpu request defined",
            ),
        ),
        (
            "cpu without request, dry run",
            so(
                "c",
                json!({"scaleTargetRef": {"name": "web"}, "minReplicaCount": 1, "triggers": [{"type": "cpu", "metricType": "Utilization", "metadata": {"value": "50"}}]}),
            ),
            true,
            None,
        ),
        (
            "memory with request",
            so(
                "c",
                json!({"scaleTargetRef": {"name": "web"}, "minReplicaCount": 1, "triggers": [{"type": "memory", "metricType": "Utilization", "metadata": {"value": "50"}}]}),
            ),
            false,
            None,
        ),
        (
            "only cpu, scale to zero",
            so(
                "c",
                json!({"scaleTargetRef": {"name": "web"}, "minReplicaCount": 0, "triggers": [{"type": "memory", "metricType": "Utilization", "metadata": {"value": "50"}}]}),
            ),
            false,
            Some("scale to zero doesn't work in this case"),
        ),
        (
            "duplicate trigger names",
            so(
                "t",
                json!({"scaleTargetRef": {"name": "t"}, "advanced": advanced(), "triggers": [api_trigger(), api_trigger()]}),
            ),
            false,
            Some("triggerName \"api\" is defined multiple times"),
        ),
        (
            "no triggers",
            so(
                "t",
                json!({"scaleTargetRef": {"name": "t"}, "triggers": []}),
            ),
            false,
            Some("no triggers defined"),
        ),
        (
            "bad trigger",
            so(
                "t",
                json!({"scaleTargetRef": {"name": "t"}, "advanced": advanced(), "triggers": [{"type": "metrics-api", "metadata": {"targetValue": "5", "valueLocation": "a"}}]}),
            ),
            false,
            Some("spec.triggers[0].metadata.url"),
        ),
        (
            "unknown trigger type",
            so(
                "t",
                json!({"scaleTargetRef": {"name": "t"}, "advanced": advanced(), "triggers": [{"type": "no-such-scaler", "metadata": {}}]}),
            ),
            false,
            Some("spec.triggers[0].type"),
        ),
        (
            "missing TriggerAuthentication",
            so(
                "t",
                json!({"scaleTargetRef": {"name": "t"}, "advanced": advanced(), "triggers": [{"type": "metrics-api", "authenticationRef": {"name": "nope"}, "metadata": {"targetValue": "5", "valueLocation": "a"}}]}),
            ),
            false,
            Some("TriggerAuthentication team/nope not found"),
        ),
        (
            "existing TriggerAuthentication",
            so(
                "t",
                json!({"scaleTargetRef": {"name": "t"}, "advanced": advanced(), "triggers": [{"type": "metrics-api", "authenticationRef": {"name": "api-auth"}, "metadata": {"targetValue": "5", "valueLocation": "a", "url": "http://x/"}}]}),
            ),
            false,
            None,
        ),
        (
            "missing ClusterTriggerAuthentication",
            so(
                "t",
                json!({"scaleTargetRef": {"name": "t"}, "advanced": advanced(), "triggers": [{"type": "metrics-api", "authenticationRef": {"name": "nope", "kind": "ClusterTriggerAuthentication"}, "metadata": {"targetValue": "5", "valueLocation": "a", "url": "http://x/"}}]}),
            ),
            false,
            Some("ClusterTriggerAuthentication nope not found"),
        ),
        (
            "formula with unknown name",
            so(
                "f",
                json!({"scaleTargetRef": {"name": "f"}, "advanced": {"scalingModifiers": {"formula": "api + nope", "target": "2"}, "horizontalPodAutoscalerConfig": {"behavior": {"scaleDown": {WINDOW: 60}}}}, "triggers": [api_trigger()]}),
            ),
            false,
            Some("nope"),
        ),
        (
            "formula ok",
            so(
                "f",
                json!({"scaleTargetRef": {"name": "f"}, "advanced": {"scalingModifiers": {"formula": "api * 2", "target": "2"}, "horizontalPodAutoscalerConfig": {"behavior": {"scaleDown": {WINDOW: 60}}}}, "triggers": [api_trigger()]}),
            ),
            false,
            None,
        ),
        (
            "fallback with only cpu",
            so(
                "f",
                json!({"scaleTargetRef": {"name": "f"}, "minReplicaCount": 1, "fallback": {"failureThreshold": 3, "replicas": 2}, "triggers": [{"type": "cpu", "metricType": "Utilization", "metadata": {"value": "50"}}]}),
            ),
            true,
            Some("fallback needs at least one trigger that is not cpu or memory"),
        ),
        (
            "name too long",
            so(
                &"n".repeat(64),
                json!({"scaleTargetRef": {"name": "f"}, "advanced": advanced(), "triggers": [api_trigger()]}),
            ),
            false,
            Some("metadata.name"),
        ),
    ];
    for (case, object, dry_run, want) in cases {
        let body = review_of(Kind::ScaledObject, "CREATE", object, None, dry_run);
        let (allowed, message, _) = run(&w, Kind::ScaledObject, &body).await;
        match want {
            None => assert!(allowed, "{case}: denied with {message:?}"),
            Some(fragment) => {
                assert!(!allowed, "{case}: allowed");
                assert!(
                    message.contains(fragment),
                    "{case}: message {message:?} lacks {fragment:?}"
                );
            }
        }
    }
}

#[tokio::test]
async fn warnings_are_returned() {
    let w = webhook();
    let body = review_of(
        Kind::ScaledObject,
        "CREATE",
        so(
            "w",
            json!({"scaleTargetRef": {"name": "w"}, "minReplicaCount": 1, "cooldownPeriod": 300, "triggers": [api_trigger()]}),
        ),
        None,
        false,
    );
    let (allowed, _, warnings) = run(&w, Kind::ScaledObject, &body).await;
    assert!(allowed);
    assert!(
        warnings
            .iter()
            .any(|m| m.contains("cooldownPeriod has no effect")),
        "{warnings:?}"
    );
    assert!(
        warnings
            .iter()
            .any(|m| m.contains("no scale-down stabilization window")),
        "{warnings:?}"
    );
}

#[tokio::test]
async fn graceful_shutdown_and_server_version_warnings() {
    let mut w = webhook();
    let review = |target: &str| {
        review_of(
            Kind::ScaledObject,
            "CREATE",
            so(
                target,
                json!({"scaleTargetRef": {"name": target}, "advanced": advanced(), "triggers": [api_trigger()]}),
            ),
            None,
            false,
        )
    };
    let (allowed, _, warnings) = run(&w, Kind::ScaledObject, &review("shop")).await;
    assert!(allowed, "{warnings:?}");
    let has = |ws: &[String], s: &str| ws.iter().any(|m| m.contains(s));
    assert!(
        has(
            &warnings,
            "Deployment shop spec.template.spec.terminationGracePeriodSeconds: terminationGracePeriodSeconds 30 (the default) is not longer than the preStop sleep of container \"app\" (30 s)"
        ),
        "{warnings:?}"
    );
    assert!(
        has(
            &warnings,
            "behind the AWS ALB Ingress team/public (Service shop)"
        ),
        "{warnings:?}"
    );
    let (allowed, _, warnings) = run(&w, Kind::ScaledObject, &review("shop-ok")).await;
    assert!(allowed && warnings.is_empty(), "{warnings:?}");
    // A target that does not exist: allowed, no workload warnings.
    let (allowed, _, warnings) = run(&w, Kind::ScaledObject, &review("absent")).await;
    assert!(
        allowed && !has(&warnings, "terminationGracePeriodSeconds"),
        "{warnings:?}"
    );

    // The API server's version: inside the window nothing, outside it a warning.
    w.cluster.server_version = Some(("1".into(), "35".into()));
    let (_, _, warnings) = run(&w, Kind::ScaledObject, &review("shop-ok")).await;
    assert!(warnings.is_empty(), "{warnings:?}");
    w.cluster.server_version = Some(("1".into(), "29".into()));
    let (allowed, _, warnings) = run(&w, Kind::ScaledObject, &review("shop-ok")).await;
    assert!(
        allowed && has(&warnings, "Kubernetes server version 1.29 is outside"),
        "{warnings:?}"
    );
}

#[tokio::test]
async fn updates_of_itself_and_finalizer_removal() {
    let w = webhook();
    // The existing ScaledObject updating itself is not a duplicate of itself.
    let taken = so(
        "taken",
        json!({"scaleTargetRef": {"name": "busy"}, "minReplicaCount": 1, "triggers": [{"type": "cpu", "metricType": "Utilization", "metadata": {"value": "50"}}]}),
    );
    let (allowed, message, _) = run(
        &w,
        Kind::ScaledObject,
        &review_of(
            Kind::ScaledObject,
            "UPDATE",
            taken.clone(),
            Some(taken.clone()),
            false,
        ),
    )
    .await;
    assert!(allowed, "{message}");
    // An invalid object whose update only removes a finalizer passes.
    let mut old = so(
        "bad",
        json!({"scaleTargetRef": {"name": "busy"}, "triggers": []}),
    );
    old["metadata"]["finalizers"] = json!(["finalizer.keda.sh"]);
    let mut new = old.clone();
    new["metadata"]["finalizers"] = json!([]);
    let (allowed, message, _) = run(
        &w,
        Kind::ScaledObject,
        &review_of(Kind::ScaledObject, "UPDATE", new.clone(), Some(old), false),
    )
    .await;
    assert!(allowed, "{message}");
    // The same object as a change of spec is validated.
    let (allowed, _, _) = run(
        &w,
        Kind::ScaledObject,
        &review_of(
            Kind::ScaledObject,
            "UPDATE",
            new.clone(),
            Some(so(
                "bad",
                json!({"scaleTargetRef": {"name": "x"}, "triggers": []}),
            )),
            false,
        ),
    )
    .await;
    assert!(!allowed);
}

#[tokio::test]
async fn bodies_that_do_not_parse_are_denied_reviews() {
    let w = webhook();
    for body in [
        &b"not json"[..],
        b"{}",
        b"{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\"}",
    ] {
        let (allowed, message, _) = run(&w, Kind::ScaledObject, body).await;
        assert!(!allowed);
        assert!(!message.is_empty());
    }
    // A request whose object is not a ScaledObject: denied, with the uid echoed.
    let body = review_of(
        Kind::ScaledObject,
        "CREATE",
        json!({"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "metadata": {"name": "x"}, "spec": {"triggers": "nope"}}),
        None,
        false,
    );
    let review = w.review(Kind::ScaledObject, &body).await;
    let v = serde_json::to_value(&review).expect("encodes");
    assert_eq!(v["response"]["uid"], "705ab4f5-6393-11e8-b7cc-42010a800002");
    assert_eq!(v["response"]["allowed"], false);
    assert!(
        v["response"]["status"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("does not decode")
    );
}

#[tokio::test]
async fn scaled_job_and_authentication_tables() {
    let w = webhook();
    let job = |triggers: Value| {
        json!({"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledJob", "metadata": {"name": "j", "namespace": NS},
        "spec": {"jobTargetRef": {"template": {"spec": {"containers": [{"name": "c", "image": "x"}]}}}, "triggers": triggers}})
    };
    let cases: Vec<(Kind, Value, Option<&str>)> = vec![
        (Kind::ScaledJob, job(json!([api_trigger()])), None),
        (
            Kind::ScaledJob,
            job(
                json!([{"type": "metrics-api", "metricType": "Value", "metadata": {"targetValue": "5", "url": "http://x/", "valueLocation": "a"}}]),
            ),
            Some("metricType cannot be set"),
        ),
        (
            Kind::ScaledJob,
            job(json!([{"type": "metrics-api", "metadata": {"url": "http://x/"}}])),
            Some("spec.triggers[0].metadata."),
        ),
        (
            Kind::TriggerAuthentication,
            json!({"apiVersion": "keda.sh/v1alpha1", "kind": "TriggerAuthentication", "metadata": {"name": "t", "namespace": NS},
            "spec": {"secretTargetRef": [{"parameter": "a", "name": "s", "key": "k"}]}}),
            None,
        ),
        (
            Kind::TriggerAuthentication,
            json!({"apiVersion": "keda.sh/v1alpha1", "kind": "TriggerAuthentication", "metadata": {"name": "t", "namespace": NS},
            "spec": {"podIdentity": {"provider": "aws", "roleArn": "arn:x", "identityOwner": "workload"}}}),
            Some("roleArn cannot be set"),
        ),
        (
            Kind::ClusterTriggerAuthentication,
            json!({"apiVersion": "keda.sh/v1alpha1", "kind": "ClusterTriggerAuthentication", "metadata": {"name": "t"},
            "spec": {"oauth2": {"type": "clientCredentials", "clientId": "c", "tokenUrl": "ftp://x"}}}),
            Some("tokenUrl"),
        ),
        (
            Kind::ClusterTriggerAuthentication,
            json!({"apiVersion": "keda.sh/v1alpha1", "kind": "ClusterTriggerAuthentication", "metadata": {"name": "t"},
            "spec": {"podIdentity": {"provider": "azure-workload", "identityId": ""}}}),
            Some("identityId"),
        ),
    ];
    for (i, (kind, object, want)) in cases.into_iter().enumerate() {
        let (allowed, message, _) =
            run(&w, kind, &review_of(kind, "CREATE", object, None, false)).await;
        match want {
            None => assert!(allowed, "case {i}: denied with {message:?}"),
            Some(fragment) => {
                assert!(!allowed, "case {i}: allowed");
                assert!(
                    message.contains(fragment),
                    "case {i}: {message:?} lacks {fragment:?}"
                );
            }
        }
    }
}

#[tokio::test]
async fn metrics_count_validations_and_errors() {
    let w = webhook();
    let bad = so(
        "a",
        json!({"scaleTargetRef": {"name": "a"}, "minReplicaCount": 5, "maxReplicaCount": 2, "triggers": [api_trigger()]}),
    );
    run(
        &w,
        Kind::ScaledObject,
        &review_of(Kind::ScaledObject, "CREATE", bad, None, false),
    )
    .await;
    let mut registry = prometheus_client::registry::Registry::default();
    w.metrics.register(&mut registry);
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).expect("encode");
    assert!(
        text.contains(
            "keda_webhook_scaled_object_validations_total{namespace=\"team\",action=\"create\"} 1"
        ),
        "{text}"
    );
    assert!(text.contains("keda_webhook_scaled_object_validation_errors_total{namespace=\"team\",action=\"create\",reason=\"incorrect-replicas\"} 1"), "{text}");
}

/// File paths are judged as the operator judges them (`--filepath-auth-root-path`, as written): a
/// postgresql `sslrootcert` outside the root and a ClusterTriggerAuthentication `filePath` outside it are
/// denied with the operator's message; inside, the postgresql trigger is accepted and the `filePath`
/// parameters, which only the operator can read, leave the trigger unjudged with a warning.
#[tokio::test]
async fn file_paths_outside_the_root_are_denied() {
    use keda_resolver::FileAccess;
    use keda_scalers::files::FileRoot;
    let webhook_with = |sslrootcert: &str, file_path: &str| {
        let mut w = webhook();
        let source = MemorySource::new(AbsentPolicy::default())
            .with_secret(
                NS,
                "pg",
                [(
                    "connection",
                    format!(
                        "host=db user=keda dbname=app sslmode=verify-full sslrootcert={sslrootcert}"
                    )
                    .as_str(),
                )],
            )
            .with_trigger_authentication(
                NS,
                "pg",
                serde_json::from_value(json!({"secretTargetRef": [
                    {"parameter": "connection", "name": "pg", "key": "connection"}]}))
                .expect("TA spec"),
            )
            .with_cluster_trigger_authentication(
                "files",
                serde_json::from_value(json!({"filePath": file_path})).expect("CTA spec"),
            );
        w.resolver = Resolver::new(source, "keda")
            .with_file_root(FileRoot::new("/mnt/auth"), FileAccess::CheckOnly);
        w
    };
    let object = |trigger: Value| {
        so(
            "files",
            json!({"scaleTargetRef": {"name": "web"}, "advanced": advanced(), "triggers": [trigger]}),
        )
    };
    let pg = json!({"type": "postgresql", "metadata": {"query": "SELECT 1", "targetQueryValue": "1"},
                    "authenticationRef": {"name": "pg"}});
    let cta = json!({"type": "metrics-api", "metadata": {"targetValue": "5", "url": "http://api.example/m", "valueLocation": "a"},
                     "authenticationRef": {"name": "files", "kind": "ClusterTriggerAuthentication"}});

    let w = webhook_with("/mnt/auth/ca.pem", "team/creds.json");
    let (allowed, message, _) = run(
        &w,
        Kind::ScaledObject,
        &review_of(
            Kind::ScaledObject,
            "CREATE",
            object(pg.clone()),
            None,
            false,
        ),
    )
    .await;
    assert!(allowed, "{message}");
    let (allowed, message, warnings) = run(
        &w,
        Kind::ScaledObject,
        &review_of(
            Kind::ScaledObject,
            "CREATE",
            object(cta.clone()),
            None,
            false,
        ),
    )
    .await;
    assert!(allowed, "{message}");
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("filePath \"team/creds.json\" is read by the operator")),
        "{warnings:?}"
    );

    let w = webhook_with(
        "/certs/ca.crt",
        "/var/run/secrets/kubernetes.io/serviceaccount/token",
    );
    let (allowed, message, _) = run(
        &w,
        Kind::ScaledObject,
        &review_of(Kind::ScaledObject, "CREATE", object(pg), None, false),
    )
    .await;
    assert!(!allowed);
    assert!(
        message.contains(
            "spec.triggers[0].metadata.sslrootcert: trigger 0 (postgresql): sslrootcert: \"/certs/ca.crt\" is outside --filepath-auth-root-path (/mnt/auth)"
        ),
        "{message}"
    );
    let (allowed, message, _) = run(
        &w,
        Kind::ScaledObject,
        &review_of(Kind::ScaledObject, "CREATE", object(cta), None, false),
    )
    .await;
    assert!(!allowed);
    assert!(
        message.contains(
            "trigger 0 (metrics-api): ClusterTriggerAuthentication files: filePath: \"/var/run/secrets/kubernetes.io/serviceaccount/token\" is outside --filepath-auth-root-path (/mnt/auth)"
        ),
        "{message}"
    );
}
