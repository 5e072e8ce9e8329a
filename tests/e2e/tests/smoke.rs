//! The local control plane is a real Kubernetes: pods run on the kwok node, the HPA controller acts, and
//! the keda.sh CRDs are served with upstream's names, shortNames, printer columns and validation.

use anyhow::Result;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{Node, Pod};
use keda_e2e::{client, ensure_crds, kubectl, kubectl_ok, namespace, wait_for};
use kube::api::{ListParams, PostParams};
use kube::{Api, ResourceExt};
use std::time::Duration;

fn deployment(name: &str, replicas: i32) -> Result<Deployment> {
    Ok(serde_json::from_value(serde_json::json!({
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": "example/app:1", "resources": {"requests": {"cpu": "100m"}}}]}
            }
        }
    }))?)
}

#[tokio::test]
async fn kwok_node_is_ready() -> Result<()> {
    let nodes: Api<Node> = Api::all(client().await?);
    let list = nodes.list(&ListParams::default()).await?;
    let ready = list.items.iter().filter(|n| {
        n.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
    });
    assert!(
        ready.count() >= 1,
        "no Ready node: {:?}",
        list.items.iter().map(|n| n.name_any()).collect::<Vec<_>>()
    );
    Ok(())
}

#[tokio::test]
async fn deployment_pods_become_running() -> Result<()> {
    let c = client().await?;
    let ns = namespace(&c, "smoke-deploy").await?;
    let deploys: Api<Deployment> = Api::namespaced(c.clone(), &ns);
    deploys
        .create(&PostParams::default(), &deployment("web", 2)?)
        .await?;
    wait_for(&deploys, "web", Duration::from_secs(60), |d| {
        d.status.as_ref().and_then(|s| s.ready_replicas) == Some(2)
    })
    .await?;
    let pods: Api<Pod> = Api::namespaced(c, &ns);
    let list = pods.list(&ListParams::default().labels("app=web")).await?;
    assert_eq!(list.items.len(), 2);
    for p in &list.items {
        let status = p.status.as_ref().expect("pod status");
        assert_eq!(
            status.phase.as_deref(),
            Some("Running"),
            "pod {}",
            p.name_any()
        );
        assert!(
            p.spec.as_ref().and_then(|s| s.node_name.clone()).is_some(),
            "pod {} not scheduled",
            p.name_any()
        );
    }
    Ok(())
}

#[tokio::test]
async fn hpa_controller_acts_on_an_hpa() -> Result<()> {
    let c = client().await?;
    let ns = namespace(&c, "smoke-hpa").await?;
    let deploys: Api<Deployment> = Api::namespaced(c.clone(), &ns);
    deploys
        .create(&PostParams::default(), &deployment("web", 1)?)
        .await?;
    let hpa: HorizontalPodAutoscaler = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "web"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "minReplicas": 1, "maxReplicas": 3,
            "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}}]
        }
    }))?;
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(c, &ns);
    hpas.create(&PostParams::default(), &hpa).await?;
    // No resource-metrics API exists here, so the real controller must report that it cannot get the metric.
    let seen = wait_for(&hpas, "web", Duration::from_secs(90), |h| {
        h.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| {
                c.iter()
                    .any(|c| c.type_ == "ScalingActive" && c.status == "False")
            })
    })
    .await?;
    let conds = seen.status.and_then(|s| s.conditions).unwrap_or_default();
    let active = conds
        .iter()
        .find(|c| c.type_ == "ScalingActive")
        .expect("ScalingActive condition");
    assert_eq!(active.reason.as_deref(), Some("FailedGetResourceMetric"));
    Ok(())
}

#[tokio::test]
async fn keda_crds_are_served_like_upstream() -> Result<()> {
    ensure_crds().await?;
    let resources = kubectl_ok(
        &["api-resources", "--api-group", "keda.sh", "--no-headers"],
        None,
    )?;
    let rows: Vec<Vec<&str>> = resources
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    let want = [
        (
            "clustertriggerauthentications",
            "cta,clustertriggerauth",
            "false",
            "ClusterTriggerAuthentication",
        ),
        ("scaledjobs", "sj", "true", "ScaledJob"),
        ("scaledobjects", "so", "true", "ScaledObject"),
        (
            "triggerauthentications",
            "ta,triggerauth",
            "true",
            "TriggerAuthentication",
        ),
    ];
    assert_eq!(rows.len(), want.len(), "api-resources:\n{resources}");
    for (row, (plural, short, namespaced, kind)) in rows.iter().zip(want) {
        assert_eq!(
            row.as_slice(),
            [plural, short, "keda.sh/v1alpha1", namespaced, kind],
            "api-resources:\n{resources}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn seed_guide_objects_apply_and_print_upstream_columns() -> Result<()> {
    ensure_crds().await?;
    let c = client().await?;
    let ns = namespace(&c, "smoke-crd").await?;
    let fixture = keda_e2e::root().join("crates/keda-api/tests/fixtures/seed-values-dev.yaml");
    let path = fixture.to_string_lossy();
    kubectl_ok(&["apply", "-n", &ns, "-f", &path], None)?;
    let table = kubectl_ok(&["get", "so", "-n", &ns, "-o", "wide"], None)?;
    let header: Vec<&str> = table
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        [
            "NAME",
            "SCALETARGETKIND",
            "SCALETARGETNAME",
            "MIN",
            "MAX",
            "READY",
            "ACTIVE",
            "FALLBACK",
            "PAUSED",
            "TRIGGERS",
            "AUTHENTICATIONS",
            "AGE"
        ]
    );
    let cell = |col: &str| keda_e2e::table_cell(&table, 0, col);
    assert_eq!(
        cell("NAME").as_deref(),
        Some("example-app-newrelic-throughput-scaler"),
        "{table}"
    );
    assert_eq!(
        cell("SCALETARGETNAME").as_deref(),
        Some("example-app"),
        "{table}"
    );
    assert_eq!(
        (cell("MIN").as_deref(), cell("MAX").as_deref()),
        (Some("1"), Some("5")),
        "{table}"
    );
    let ta = kubectl_ok(
        &[
            "get",
            "triggerauth",
            "-n",
            &ns,
            "example-app-ta",
            "-o",
            "wide",
        ],
        None,
    )?;
    assert!(
        ta.lines().next().unwrap_or_default().starts_with("NAME"),
        "{ta}"
    );
    assert!(ta.contains("keda-new-relic-secret"), "Secret column: {ta}");
    // The stored object is what was applied: read it back and compare the spec.
    let got = kubectl_ok(
        &[
            "get",
            "so",
            "-n",
            &ns,
            "example-app-newrelic-throughput-scaler",
            "-o",
            "json",
        ],
        None,
    )?;
    let so: keda_api::ScaledObject = serde_json::from_str(&got)?;
    assert_eq!(so.spec.polling_interval, Some(120));
    assert_eq!(
        so.spec
            .fallback
            .as_ref()
            .map(|f| (f.failure_threshold, f.replicas)),
        Some((2, 3))
    );
    assert_eq!(
        so.spec.triggers[0]
            .metadata
            .get("threshold")
            .map(String::as_str),
        Some("70")
    );
    Ok(())
}

#[tokio::test]
async fn api_server_enforces_the_min_max_rule() -> Result<()> {
    ensure_crds().await?;
    let c = client().await?;
    let ns = namespace(&c, "smoke-cel").await?;
    let bad = "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {name: bad}\nspec:\n  scaleTargetRef: {name: web}\n  minReplicaCount: 5\n  maxReplicaCount: 2\n  triggers: [{type: cron, metadata: {}}]\n";
    let out = kubectl(&["apply", "-n", &ns, "-f", "-"], Some(bad))?;
    assert!(!out.status.success(), "min > max was accepted");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("minReplicaCount must be less than or equal to maxReplicaCount"),
        "{err}"
    );
    let no_triggers = "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {name: bad2}\nspec:\n  scaleTargetRef: {name: web}\n  triggers: []\n";
    let out = kubectl(&["apply", "-n", &ns, "-f", "-"], Some(no_triggers))?;
    assert!(!out.status.success(), "empty triggers were accepted");
    Ok(())
}
