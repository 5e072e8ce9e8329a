//! keda-operator on the local control plane: the HPA it owns, activation 0↔1, cooldown, idle and min
//! replicas, fallback, pause annotations, restore on delete, StatefulSet targets, finalizer and leader
//! election. Each test runs its own operator process watching only the test's namespace.

use std::time::Duration;

use anyhow::Result;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::coordination::v1::Lease;
use keda_api::ScaledObject;
use keda_e2e::{
    KedaProcess, MetricServer, apply, client, ensure_crds, events_with_reason, namespace,
    spec_replicas, wait_for,
};
use kube::Api;
use kube::api::DeleteParams;

const T: Duration = Duration::from_secs(60);

fn deployment(name: &str, replicas: i32) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {name}}}\nspec:\n  replicas: {replicas}\n  selector: {{matchLabels: {{app: {name}}}}}\n  template:\n    metadata: {{labels: {{app: {name}}}}}\n    spec:\n      containers: [{{name: app, image: example/app:1}}]\n"
    )
}

/// A ScaledObject on `target` with one metrics-api trigger reading `url` (`value` field).
fn scaled_object(
    name: &str,
    target: &str,
    url: &str,
    extra_spec: &str,
    annotations: &str,
) -> String {
    format!(
        "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata:\n  name: {name}\n  annotations: {{{annotations}}}\nspec:\n  scaleTargetRef: {{name: {target}}}\n  pollingInterval: 1\n{extra_spec}  triggers:\n  - type: metrics-api\n    metadata: {{url: \"{url}\", valueLocation: value, targetValue: \"10\", activationTargetValue: \"5\"}}\n"
    )
}

fn condition(so: &ScaledObject, type_: &str) -> Option<(String, String)> {
    so.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.r#type == type_)
        .map(|c| (c.status.clone(), c.reason.clone().unwrap_or_default()))
}

fn cond_is(so: &ScaledObject, type_: &str, status: &str) -> bool {
    condition(so, type_).is_some_and(|(s, _)| s == status)
}

async fn wait_replicas(
    c: &kube::Client,
    ns: &str,
    name: &str,
    want: i32,
    timeout: Duration,
) -> Result<()> {
    let api: Api<Deployment> = Api::namespaced(c.clone(), ns);
    wait_for(&api, name, timeout, |d| {
        d.spec.as_ref().and_then(|s| s.replicas) == Some(want)
    })
    .await?;
    Ok(())
}

#[tokio::test]
async fn builds_the_hpa_as_upstream_does() -> Result<()> {
    ensure_crds().await?;
    let c = client().await?;
    let ns = namespace(&c, "op-hpa").await?;
    let _op = KedaProcess::operator(&ns, "op-a")?;
    let server = MetricServer::start(1.0).await?;
    apply(&ns, &deployment("example-app", 1))?;
    let extra = "  minReplicaCount: 1\n  maxReplicaCount: 5\n  advanced:\n    horizontalPodAutoscalerConfig:\n      behavior:\n        scaleDown:\n          stabilizationWindowSeconds: 600\n";
    apply(
        &ns,
        &scaled_object(
            "throughput",
            "example-app",
            &server.url,
            extra,
            "team: shop",
        ),
    )?;

    let sos: Api<ScaledObject> = Api::namespaced(c.clone(), &ns);
    let so = wait_for(&sos, "throughput", T, |so| cond_is(so, "Ready", "True")).await?;
    let status = so.status.clone().unwrap_or_default();
    assert_eq!(
        status.scale_target_kind.as_deref(),
        Some("apps/v1.Deployment")
    );
    assert_eq!(status.original_replica_count, Some(1));
    assert_eq!(status.hpa_name.as_deref(), Some("keda-hpa-throughput"));
    assert_eq!(
        status.external_metric_names,
        Some(vec!["s0-metric-api-value".to_owned()])
    );
    assert_eq!(status.triggers_types.as_deref(), Some("metrics-api"));
    assert!(
        so.metadata
            .finalizers
            .unwrap_or_default()
            .contains(&"finalizer.keda.sh".to_owned())
    );
    assert_eq!(
        so.metadata
            .labels
            .unwrap_or_default()
            .get("scaledobject.keda.sh/name")
            .map(String::as_str),
        Some("throughput")
    );

    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(c.clone(), &ns);
    let hpa = hpas.get("keda-hpa-throughput").await?;
    let spec = hpa.spec.clone().expect("hpa spec");
    assert_eq!((spec.min_replicas, spec.max_replicas), (Some(1), 5));
    assert_eq!(spec.scale_target_ref.kind, "Deployment");
    assert_eq!(spec.scale_target_ref.name, "example-app");
    let down = spec
        .behavior
        .and_then(|b| b.scale_down)
        .expect("scaleDown passed through");
    assert_eq!(down.stabilization_window_seconds, Some(600));
    let metrics = spec.metrics.expect("metrics");
    assert_eq!(metrics.len(), 1);
    let ext = metrics[0].external.as_ref().expect("external metric");
    assert_eq!(ext.metric.name, "s0-metric-api-value");
    let selector = ext
        .metric
        .selector
        .as_ref()
        .and_then(|s| s.match_labels.clone())
        .unwrap_or_default();
    assert_eq!(
        selector
            .get("scaledobject.keda.sh/name")
            .map(String::as_str),
        Some("throughput")
    );
    assert_eq!(ext.target.type_, "AverageValue");
    assert_eq!(
        ext.target.average_value.as_ref().map(|q| q.0.as_str()),
        Some("10")
    );
    let labels = hpa.metadata.labels.unwrap_or_default();
    assert_eq!(
        labels
            .get("app.kubernetes.io/managed-by")
            .map(String::as_str),
        Some("keda-operator")
    );
    assert_eq!(
        labels.get("app.kubernetes.io/part-of").map(String::as_str),
        Some("throughput")
    );
    assert_eq!(
        hpa.metadata
            .annotations
            .unwrap_or_default()
            .get("team")
            .map(String::as_str),
        Some("shop")
    );
    let owner = &hpa.metadata.owner_references.unwrap_or_default()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str(), owner.controller),
        ("ScaledObject", "throughput", Some(true))
    );

    // The HPA is the operator's: an edit is undone and a deleted one comes back, at once (the
    // HPA watch reconciles the owner; the periodic resync is 5 minutes away).
    let quick = Duration::from_secs(15);
    hpas.patch(
        "keda-hpa-throughput",
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(serde_json::json!({"spec": {"maxReplicas": 99}})),
    )
    .await?;
    wait_for(&hpas, "keda-hpa-throughput", quick, |h| {
        h.spec.as_ref().map(|s| s.max_replicas) == Some(5)
    })
    .await?;
    let uid = hpas.get("keda-hpa-throughput").await?.metadata.uid;
    hpas.delete("keda-hpa-throughput", &DeleteParams::default())
        .await?;
    wait_for(&hpas, "keda-hpa-throughput", quick, |h| {
        h.metadata.uid != uid
    })
    .await?;

    // Deleting the ScaledObject removes its finalizer and, through the ownerReference, the HPA.
    sos.delete("throughput", &DeleteParams::default()).await?;
    let deadline = std::time::Instant::now() + T;
    while sos.get_opt("throughput").await?.is_some()
        || hpas.get_opt("keda-hpa-throughput").await?.is_some()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "ScaledObject or HPA not removed"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Ok(())
}

#[tokio::test]
async fn activates_from_zero_and_deactivates_after_cooldown() -> Result<()> {
    ensure_crds().await?;
    let c = client().await?;
    let ns = namespace(&c, "op-act").await?;
    let _op = KedaProcess::operator(&ns, "op-a")?;
    let server = MetricServer::start(0.0).await?;
    apply(&ns, &deployment("worker", 0))?;
    apply(
        &ns,
        &scaled_object("worker", "worker", &server.url, "  cooldownPeriod: 3\n", ""),
    )?;
    let sos: Api<ScaledObject> = Api::namespaced(c.clone(), &ns);
    wait_for(&sos, "worker", T, |so| cond_is(so, "Active", "False")).await?;
    assert_eq!(spec_replicas(&c, &ns, "worker").await?, 0);

    // 5 is not above the activation threshold of 5: still inactive.
    server.set(Some(5.0));
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        spec_replicas(&c, &ns, "worker").await?,
        0,
        "activation must be strictly greater than the threshold"
    );

    server.set(Some(6.0));
    wait_replicas(&c, &ns, "worker", 1, T).await?;
    let so = wait_for(&sos, "worker", T, |so| cond_is(so, "Active", "True")).await?;
    assert!(so.status.and_then(|s| s.last_active_time).is_some());

    server.set(Some(0.0));
    let started = std::time::Instant::now();
    wait_replicas(&c, &ns, "worker", 0, T).await?;
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "scaled to zero before the cooldown"
    );
    let events = keda_e2e::kubectl_ok(
        &[
            "get",
            "events",
            "-n",
            &ns,
            "-o",
            "jsonpath={.items[*].reason}",
        ],
        None,
    )?;
    assert!(events.contains("KEDAScaleTargetActivated"), "{events}");
    assert!(events.contains("KEDAScaleTargetDeactivated"), "{events}");
    assert!(events.contains("ScaledObjectReady"), "{events}");
    Ok(())
}

#[tokio::test]
async fn idle_and_min_replica_counts() -> Result<()> {
    ensure_crds().await?;
    let c = client().await?;
    let ns = namespace(&c, "op-idle").await?;
    let _op = KedaProcess::operator(&ns, "op-a")?;
    let server = MetricServer::start(0.0).await?;
    apply(&ns, &deployment("idle", 2))?;
    apply(&ns, &deployment("floor", 1))?;
    apply(
        &ns,
        &scaled_object(
            "idle",
            "idle",
            &server.url,
            "  idleReplicaCount: 0\n  minReplicaCount: 2\n  cooldownPeriod: 1\n",
            "",
        ),
    )?;
    apply(
        &ns,
        &scaled_object("floor", "floor", &server.url, "  minReplicaCount: 3\n", ""),
    )?;
    // Inactive: the idle object goes to idleReplicaCount, the other is raised to its minimum.
    wait_replicas(&c, &ns, "idle", 0, T).await?;
    wait_replicas(&c, &ns, "floor", 3, T).await?;
    // Active: from idle straight to minReplicaCount.
    server.set(Some(50.0));
    wait_replicas(&c, &ns, "idle", 2, T).await?;
    Ok(())
}

#[tokio::test]
async fn fallback_when_the_backend_fails_and_recovery() -> Result<()> {
    ensure_crds().await?;
    let c = client().await?;
    let ns = namespace(&c, "op-fb").await?;
    let _op = KedaProcess::operator(&ns, "op-a")?;
    let server = MetricServer::start(50.0).await?;
    apply(&ns, &deployment("api", 1))?;
    apply(
        &ns,
        &scaled_object(
            "api",
            "api",
            &server.url,
            "  minReplicaCount: 1\n  fallback: {failureThreshold: 2, replicas: 4}\n",
            "",
        ),
    )?;
    let sos: Api<ScaledObject> = Api::namespaced(c.clone(), &ns);
    wait_for(&sos, "api", T, |so| cond_is(so, "Fallback", "False")).await?;
    server.set(None);
    let so = wait_for(&sos, "api", T, |so| cond_is(so, "Fallback", "True")).await?;
    let health = so.status.and_then(|s| s.health).unwrap_or_default();
    let h = &health["s0-metric-api-value"];
    assert_eq!(h.status.as_deref(), Some("Failing"));
    assert!(h.number_of_failures.unwrap_or(0) > 2);
    // Failing triggers with a fallback never scale the target to zero or change Ready to False.
    assert_eq!(spec_replicas(&c, &ns, "api").await?, 1);
    server.set(Some(50.0));
    let so = wait_for(&sos, "api", T, |so| cond_is(so, "Fallback", "False")).await?;
    assert_eq!(
        so.status.and_then(|s| s.health).unwrap_or_default()["s0-metric-api-value"]
            .status
            .as_deref(),
        Some("Happy")
    );
    Ok(())
}

#[tokio::test]
async fn pause_annotations() -> Result<()> {
    ensure_crds().await?;
    let c = client().await?;
    let ns = namespace(&c, "op-pause").await?;
    let _op = KedaProcess::operator(&ns, "op-a")?;
    let server = MetricServer::start(50.0).await?;
    apply(&ns, &deployment("web", 1))?;
    apply(
        &ns,
        &scaled_object(
            "web",
            "web",
            &server.url,
            "  minReplicaCount: 1\n",
            "autoscaling.keda.sh/paused-replicas: \"4\"",
        ),
    )?;
    let sos: Api<ScaledObject> = Api::namespaced(c.clone(), &ns);
    let so = wait_for(&sos, "web", T, |so| cond_is(so, "Paused", "True")).await?;
    wait_replicas(&c, &ns, "web", 4, T).await?;
    assert_eq!(so.status.and_then(|s| s.paused_replica_count), Some(4));
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(c.clone(), &ns);
    assert!(
        hpas.get_opt("keda-hpa-web").await?.is_none(),
        "a paused ScaledObject has no HPA"
    );

    // Unpause: the HPA comes back and Paused turns False.
    apply(
        &ns,
        &scaled_object("web", "web", &server.url, "  minReplicaCount: 1\n", ""),
    )?;
    wait_for(&sos, "web", T, |so| cond_is(so, "Paused", "False")).await?;
    wait_for(&hpas, "keda-hpa-web", T, |_| true).await?;

    // paused: freeze at the current count, whatever the trigger says.
    apply(
        &ns,
        &scaled_object(
            "web",
            "web",
            &server.url,
            "  minReplicaCount: 0\n  cooldownPeriod: 1\n",
            "autoscaling.keda.sh/paused: \"true\"",
        ),
    )?;
    wait_for(&sos, "web", T, |so| cond_is(so, "Paused", "True")).await?;
    server.set(Some(0.0));
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        spec_replicas(&c, &ns, "web").await?,
        4,
        "paused object must not scale"
    );

    // paused-scale-in: the loop runs (HPA present) but never scales in to zero.
    apply(
        &ns,
        &scaled_object(
            "web",
            "web",
            &server.url,
            "  minReplicaCount: 0\n  cooldownPeriod: 1\n",
            "autoscaling.keda.sh/paused-scale-in: \"true\"",
        ),
    )?;
    wait_for(&hpas, "keda-hpa-web", T, |h| {
        h.spec
            .as_ref()
            .and_then(|s| s.behavior.as_ref())
            .and_then(|b| b.scale_down.as_ref())
            .and_then(|d| d.select_policy.as_deref())
            == Some("Disabled")
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        spec_replicas(&c, &ns, "web").await?,
        4,
        "paused-scale-in must not scale to zero"
    );
    // A one-way pause says Paused=True too (upstream), and keda_scaled_object_paused follows.
    let so = wait_for(&sos, "web", T, |so| cond_is(so, "Paused", "True")).await?;
    assert_eq!(
        condition(&so, "Paused").map(|(_, r)| r).as_deref(),
        Some("ScaledObjectPaused")
    );
    let paused_events = events_with_reason(&ns, "ScaledObjectPaused")?;
    assert!(paused_events >= 1, "no ScaledObjectPaused Event");

    // Removing the annotation unpauses with upstream's reason and Event.
    apply(
        &ns,
        &scaled_object(
            "web",
            "web",
            &server.url,
            "  minReplicaCount: 0\n  cooldownPeriod: 1\n",
            "",
        ),
    )?;
    let so = wait_for(&sos, "web", T, |so| cond_is(so, "Paused", "False")).await?;
    assert_eq!(
        condition(&so, "Paused").map(|(_, r)| r).as_deref(),
        Some("ScaledObjectUnpaused")
    );
    assert!(events_with_reason(&ns, "ScaledObjectUnpaused")? >= 1);
    Ok(())
}

#[tokio::test]
async fn restores_the_original_replica_count_on_delete() -> Result<()> {
    ensure_crds().await?;
    let c = client().await?;
    let ns = namespace(&c, "op-restore").await?;
    let _op = KedaProcess::operator(&ns, "op-a")?;
    let server = MetricServer::start(0.0).await?;
    apply(&ns, &deployment("app", 3))?;
    let extra = "  cooldownPeriod: 1\n  advanced: {restoreToOriginalReplicaCount: true}\n";
    apply(&ns, &scaled_object("app", "app", &server.url, extra, ""))?;
    wait_replicas(&c, &ns, "app", 0, T).await?;
    let sos: Api<ScaledObject> = Api::namespaced(c.clone(), &ns);
    let so = sos.get("app").await?;
    assert_eq!(so.status.and_then(|s| s.original_replica_count), Some(3));
    sos.delete("app", &DeleteParams::default()).await?;
    wait_replicas(&c, &ns, "app", 3, T).await?;
    Ok(())
}

#[tokio::test]
async fn statefulset_target_and_missing_target() -> Result<()> {
    ensure_crds().await?;
    let c = client().await?;
    let ns = namespace(&c, "op-sts").await?;
    let _op = KedaProcess::operator(&ns, "op-a")?;
    let server = MetricServer::start(9.0).await?;
    apply(
        &ns,
        "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: db}\nspec:\n  replicas: 0\n  serviceName: db\n  selector: {matchLabels: {app: db}}\n  template:\n    metadata: {labels: {app: db}}\n    spec:\n      containers: [{name: db, image: example/db:1}]\n",
    )?;
    let so = "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {name: db}\nspec:\n  scaleTargetRef: {apiVersion: apps/v1, kind: StatefulSet, name: db}\n  pollingInterval: 1\n  triggers:\n  - type: metrics-api\n    metadata: {url: \"URL\", valueLocation: value, targetValue: \"10\"}\n";
    apply(&ns, &so.replace("URL", &server.url))?;
    let sets: Api<StatefulSet> = Api::namespaced(c.clone(), &ns);
    wait_for(&sets, "db", T, |s| {
        s.spec.as_ref().and_then(|s| s.replicas) == Some(1)
    })
    .await?;
    let sos: Api<ScaledObject> = Api::namespaced(c.clone(), &ns);
    let got = sos.get("db").await?;
    assert_eq!(
        got.status.and_then(|s| s.scale_target_kind).as_deref(),
        Some("apps/v1.StatefulSet")
    );

    apply(
        &ns,
        &scaled_object("ghost", "does-not-exist", &server.url, "", ""),
    )?;
    let ghost = wait_for(&sos, "ghost", T, |so| cond_is(so, "Ready", "False")).await?;
    let ready = ghost
        .status
        .and_then(|s| s.conditions)
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.r#type == "Ready")
        .expect("Ready");
    assert_eq!(ready.reason.as_deref(), Some("ScaledObjectCheckFailed"));
    assert_eq!(
        ready.message.as_deref(),
        Some("Target resource doesn't exist")
    );
    Ok(())
}

#[tokio::test]
async fn one_leader_acts_and_a_standby_takes_over() -> Result<()> {
    ensure_crds().await?;
    let c = client().await?;
    let ns = namespace(&c, "op-ha").await?;
    let mut a = KedaProcess::operator(&ns, "op-a")?;
    let leases: Api<Lease> = Api::namespaced(c.clone(), &ns);
    let holder = |l: &Lease| {
        l.spec
            .as_ref()
            .and_then(|s| s.holder_identity.clone())
            .unwrap_or_default()
    };
    wait_for(&leases, "operator.keda.sh", T, |l| holder(l) == "op-a").await?;
    let mut b = KedaProcess::operator(&ns, "op-b")?;
    let server = MetricServer::start(9.0).await?;
    apply(&ns, &deployment("w", 0))?;
    apply(&ns, &scaled_object("w", "w", &server.url, "", ""))?;
    wait_replicas(&c, &ns, "w", 1, T).await?;
    assert_eq!(holder(&leases.get("operator.keda.sh").await?), "op-a");
    assert!(
        !std::fs::read_to_string(&b.log)?.contains("became leader"),
        "standby must not lead:\n{}",
        b.log_tail()
    );

    // A crash (no release): the standby takes over once it has seen the Lease unchanged for the 15 s
    // lease duration, i.e. at most 15 s plus one jittered 2 s retry period after the kill (+ slack).
    a.kill();
    let killed = std::time::Instant::now();
    wait_for(&leases, "operator.keda.sh", Duration::from_secs(40), |l| {
        holder(l) == "op-b"
    })
    .await?;
    let took = killed.elapsed();
    assert!(
        took <= Duration::from_secs(15 + 3 + 5),
        "takeover took {took:?}, lease duration is 15 s"
    );
    // The new leader acts: scale to zero once inactive.
    server.set(Some(0.0));
    apply(
        &ns,
        &scaled_object("w", "w", &server.url, "  cooldownPeriod: 1\n", ""),
    )?;
    wait_replicas(&c, &ns, "w", 0, T).await?;

    // A graceful stop releases the Lease so the next replica acquires it at once.
    let mut c2 = KedaProcess::operator(&ns, "op-c")?;
    b.terminate();
    let stopped = std::time::Instant::now();
    wait_for(&leases, "operator.keda.sh", Duration::from_secs(20), |l| {
        holder(l) == "op-c"
    })
    .await?;
    assert!(
        stopped.elapsed() < Duration::from_secs(8),
        "release on SIGTERM should hand over within a few retry periods"
    );
    assert!(c2.is_running());
    Ok(())
}

#[tokio::test]
async fn trigger_authentication_supplies_secret_parameters() -> Result<()> {
    ensure_crds().await?;
    let c = client().await?;
    let ns = namespace(&c, "op-auth").await?;
    let _op = KedaProcess::operator(&ns, "op-a")?;
    let server = MetricServer::start_with_key(9.0, Some("s3cret-key")).await?;
    apply(&ns, &deployment("app", 0))?;
    apply(
        &ns,
        "apiVersion: v1\nkind: Secret\nmetadata: {name: api-secret}\nstringData: {key: s3cret-key}\n---\napiVersion: keda.sh/v1alpha1\nkind: TriggerAuthentication\nmetadata: {name: api-ta}\nspec:\n  secretTargetRef:\n  - {parameter: apiKey, name: api-secret, key: key}\n",
    )?;
    let so = "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {name: app}\nspec:\n  scaleTargetRef: {name: app}\n  pollingInterval: 1\n  triggers:\n  - type: metrics-api\n    metadata: {url: \"URL\", valueLocation: value, targetValue: \"10\", authMode: apiKey}\n    authenticationRef: {name: api-ta}\n";
    apply(&ns, &so.replace("URL", &server.url))?;
    wait_replicas(&c, &ns, "app", 1, T).await?;
    let sos: Api<ScaledObject> = Api::namespaced(c.clone(), &ns);
    let got = sos.get("app").await?;
    assert_eq!(
        got.status.and_then(|s| s.authentications_types).as_deref(),
        Some("api-ta")
    );

    // A reference to a TriggerAuthentication that does not exist is reported on Ready.
    apply(
        &ns,
        &so.replace("URL", &server.url)
            .replace("name: app}\nspec", "name: broken}\nspec")
            .replace("api-ta", "no-such-ta"),
    )?;
    let broken = wait_for(&sos, "broken", T, |so| cond_is(so, "Ready", "False")).await?;
    let ready = broken
        .status
        .and_then(|s| s.conditions)
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.r#type == "Ready")
        .expect("Ready");
    assert!(
        ready
            .message
            .as_deref()
            .unwrap_or_default()
            .contains("no-such-ta"),
        "{ready:?}"
    );
    Ok(())
}

/// The operator issues `kedaorg-certs` and serves `api.MetricsService/GetMetrics` over mutual TLS with it:
/// the value the HPA would get, cached or live, with fallback once the backend keeps failing.
#[tokio::test]
async fn grpc_metrics_service_with_issued_certificates() -> Result<()> {
    use k8s_openapi::api::core::v1::Secret;
    ensure_crds().await?;
    let c = client().await?;
    let ns = namespace(&c, "op-grpc").await?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let addr = format!("127.0.0.1:{port}");
    let _op = KedaProcess::operator_with(
        &ns,
        "op-a",
        "127.0.0.1:0",
        &[
            "--enable-cert-rotation",
            "--enable-apiservice-patching=false",
            "--enable-webhook-patching=false",
            "--metrics-service-bind-address",
            &addr,
        ],
    )?;
    let secrets: Api<Secret> = Api::namespaced(c.clone(), &ns);
    let secret = wait_for(&secrets, "kedaorg-certs", T, |_| true).await?;
    let data = secret.data.unwrap_or_default();
    let get = |k: &str| {
        String::from_utf8(data.get(k).map(|b| b.0.clone()).unwrap_or_default()).unwrap_or_default()
    };
    for k in ["ca.crt", "tls.crt", "tls.key"] {
        assert!(!get(k).is_empty(), "{k} missing from kedaorg-certs");
    }

    let server = MetricServer::start(42.0).await?;
    apply(&ns, &deployment("app", 2))?;
    let extra = "  minReplicaCount: 1\n  fallback: {failureThreshold: 1, replicas: 5}\n";
    apply(&ns, &scaled_object("app", "app", &server.url, extra, ""))?;
    let sos: Api<ScaledObject> = Api::namespaced(c.clone(), &ns);
    wait_for(&sos, "app", T, |so| cond_is(so, "Ready", "True")).await?;

    let tls = tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(get("ca.crt")))
        .identity(tonic::transport::Identity::from_pem(
            get("tls.crt"),
            get("tls.key"),
        ))
        .domain_name(format!("keda-operator.{ns}.svc"));
    let channel = tonic::transport::Channel::from_shared(format!("https://{addr}"))?
        .tls_config(tls)?
        .connect()
        .await?;
    let mut grpc = keda_proto::MetricsServiceClient::new(channel);
    let ask = |metric: &str| keda_proto::ScaledObjectRef {
        name: "app".into(),
        namespace: ns.clone(),
        metric_name: metric.into(),
    };
    let list = grpc
        .get_metrics(ask("s0-metric-api-value"))
        .await?
        .into_inner();
    assert_eq!(list.items.len(), 1);
    assert_eq!(list.items[0].metric_name, "s0-metric-api-value");
    assert_eq!(
        list.items[0].value.as_ref().map(|q| q.string.as_str()),
        Some("42")
    );
    // Metric names match case-insensitively, as upstream.
    let upper = grpc
        .get_metrics(ask("S0-METRIC-API-VALUE"))
        .await?
        .into_inner();
    assert_eq!(upper.items.len(), 1);
    let missing = grpc.get_metrics(ask("s9-nope")).await.unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);

    // Backend down long enough: the HPA gets target × fallback.replicas (10 × 5 = 50).
    server.set(None);
    wait_for(&sos, "app", T, |so| cond_is(so, "Fallback", "True")).await?;
    let list = grpc
        .get_metrics(ask("s0-metric-api-value"))
        .await?
        .into_inner();
    assert_eq!(
        list.items[0].value.as_ref().map(|q| q.string.as_str()),
        Some("50")
    );

    // A client without a certificate from the CA is refused.
    let anon = tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(get("ca.crt")))
        .domain_name(format!("keda-operator.{ns}.svc"));
    let refused = match tonic::transport::Channel::from_shared(format!("https://{addr}"))?
        .tls_config(anon)?
        .connect()
        .await
    {
        Ok(ch) => keda_proto::MetricsServiceClient::new(ch)
            .get_metrics(ask("s0-metric-api-value"))
            .await
            .is_err(),
        Err(_) => true,
    };
    assert!(
        refused,
        "a client without a certificate must not get metrics"
    );
    Ok(())
}
