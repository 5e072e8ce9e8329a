//! `kubernetes-workload` on the local control plane: a real operator counts the pods of its ScaledObject's
//! namespace that `podSelector` matches (its own LIST per poll against the API server), and the real HPA
//! controller, reading that count through the aggregation layer and `keda metrics-apiserver`, sizes the
//! target: with `value: 1` the target gets one replica per matching pod. The pods are a second
//! Deployment's ("workers"), made Running by kwok; scaling the workers moves the target, and
//! `activationValue` keeps the target at 0 until more than that many workers exist.
//!
//! Pods that must not count are present throughout: the same labels in another namespace, other labels in
//! the same namespace, and finished pods with the workers' labels (a Job pod that Succeeded and one that
//! Failed).
//!
//! Both keda processes run here ([`MetricsStack`]), and the APIService `v1beta1.external.metrics.k8s.io`
//! (one per cluster) points at them while the test holds `cluster_scoped_lock`.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use keda_e2e::metrics_stack::MetricsStack;
use keda_e2e::{apply, client, ensure_crds, kubectl, kubectl_ok, namespace, root, wait_for};
use kube::Api;
use kube::api::ListParams;

const T: Duration = Duration::from_secs(180);

fn deployment(name: &str, labels: &str, replicas: i32) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {name}}}\nspec:\n  replicas: {replicas}\n  selector: {{matchLabels: {labels}}}\n  template:\n    metadata: {{labels: {labels}}}\n    spec:\n      containers: [{{name: app, image: example/app:1}}]\n"
    )
}

fn scale(ns: &str, name: &str, replicas: i32) -> Result<()> {
    kubectl_ok(
        &[
            "scale",
            "-n",
            ns,
            &format!("deployment/{name}"),
            &format!("--replicas={replicas}"),
        ],
        None,
    )?;
    Ok(())
}

/// The pods of `ns` matching `selector`, by phase.
async fn phases(c: &kube::Client, ns: &str, selector: &str) -> Result<Vec<String>> {
    let pods: Api<Pod> = Api::namespaced(c.clone(), ns);
    Ok(pods
        .list(&ListParams::default().labels(selector))
        .await?
        .items
        .into_iter()
        .map(|p| p.status.and_then(|s| s.phase).unwrap_or_default())
        .collect())
}

/// Waits until `ns` has exactly `want` Running pods matching `selector` (and none starting or stopping).
async fn wait_running(c: &kube::Client, ns: &str, selector: &str, want: usize) -> Result<()> {
    let deadline = Instant::now() + T;
    loop {
        let got = phases(c, ns, selector).await?;
        let running = got.iter().filter(|p| *p == "Running").count();
        let finished = got
            .iter()
            .filter(|p| *p == "Succeeded" || *p == "Failed")
            .count();
        if running == want && running + finished == got.len() {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{ns}: pods {selector}: want {want} Running, have {got:?}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The external metric as the HPA controller reads it, in whole units.
fn metric(ns: &str) -> Option<String> {
    let path = format!(
        "/apis/external.metrics.k8s.io/v1beta1/namespaces/{ns}/s0-workload-{ns}?labelSelector=scaledobject.keda.sh%2Fname%3Dtarget"
    );
    let out = kubectl(&["get", "--raw", &path], None).ok()?;
    if !out.status.success() {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    v["items"][0]["value"].as_str().map(str::to_owned)
}

async fn wait_metric(stack: &MetricsStack, ns: &str, want: &str) -> Result<()> {
    let deadline = Instant::now() + T;
    let mut last = None;
    while Instant::now() < deadline {
        last = tokio::task::spawn_blocking({
            let ns = ns.to_owned();
            move || metric(&ns)
        })
        .await?;
        if last.as_deref() == Some(want) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    bail!(
        "metric s0-workload-{ns} never became {want}; last {last:?}\n{}",
        stack.logs()
    )
}

async fn wait_replicas(
    stack: &MetricsStack,
    c: &kube::Client,
    ns: &str,
    want: i32,
) -> Result<Duration> {
    let start = Instant::now();
    let api: Api<Deployment> = Api::namespaced(c.clone(), ns);
    wait_for(&api, "target", T, |d| {
        d.spec.as_ref().and_then(|s| s.replicas) == Some(want)
    })
    .await
    .with_context(|| {
        format!(
            "waiting for {want} replicas of {ns}/target\n{}",
            stack.logs()
        )
    })?;
    Ok(start.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hpa_follows_the_matching_pods_of_the_namespace() -> Result<()> {
    ensure_crds().await?;
    let c = client().await?;
    let ns = namespace(&c, "kworkload").await?;
    let other_ns = namespace(&c, "kworkload-other").await?;

    // What must never count: the workers' labels in another namespace, other labels here, and finished
    // pods with the workers' labels (Job pods: kwok lets one succeed and fails the other).
    apply(&other_ns, &deployment("workers", "{app: workers}", 3))?;
    apply(&ns, &deployment("others", "{app: others}", 2))?;
    apply(
        &ns,
        "apiVersion: batch/v1\nkind: Job\nmetadata: {name: done}\nspec:\n  backoffLimit: 0\n  template:\n    metadata: {labels: {app: workers}}\n    spec:\n      restartPolicy: Never\n      containers: [{name: app, image: example/app:1}]\n---\n\
         apiVersion: batch/v1\nkind: Job\nmetadata: {name: failed}\nspec:\n  backoffLimit: 0\n  template:\n    metadata:\n      labels: {app: workers}\n      annotations: {keda-rs.dev/outcome: fail}\n    spec:\n      restartPolicy: Never\n      containers: [{name: app, image: example/app:1}]\n",
    )?;
    apply(&ns, &deployment("workers", "{app: workers}", 0))?;
    apply(&ns, &deployment("target", "{app: target}", 0))?;
    wait_running(&c, &other_ns, "app=workers", 3).await?;
    wait_running(&c, &ns, "app=others", 2).await?;
    let deadline = Instant::now() + T;
    loop {
        let mut got = phases(&c, &ns, "app=workers").await?;
        got.sort();
        if got == ["Failed", "Succeeded"] {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the Job pods did not finish: {got:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    let stack = MetricsStack::start(&ns).await?;
    // activationValue 1: active only with 2 or more workers; value 1: one target replica per worker.
    apply(
        &ns,
        "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {name: target}\nspec:\n  scaleTargetRef: {name: target}\n  pollingInterval: 1\n  cooldownPeriod: 1\n  minReplicaCount: 0\n  maxReplicaCount: 10\n  advanced:\n    horizontalPodAutoscalerConfig:\n      behavior:\n        scaleDown: {stabilizationWindowSeconds: 0}\n  triggers:\n  - type: kubernetes-workload\n    metadata: {podSelector: 'app in (workers)', value: '1', activationValue: '1'}\n",
    )?;

    // Nothing that matches runs: 0, whatever runs elsewhere or has finished.
    wait_metric(&stack, &ns, "0").await?;

    // One worker: counted, but not above activationValue, so the target stays at 0.
    scale(&ns, "workers", 1)?;
    wait_running(&c, &ns, "app=workers", 1).await?;
    wait_metric(&stack, &ns, "1").await?;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let api: Api<Deployment> = Api::namespaced(c.clone(), &ns);
    let replicas = api.get("target").await?.spec.and_then(|s| s.replicas);
    anyhow::ensure!(
        replicas == Some(0),
        "one worker is not above activationValue 1, yet target has {replicas:?} replicas"
    );

    // Three workers: active, and the HPA gives one replica per worker.
    scale(&ns, "workers", 3)?;
    wait_running(&c, &ns, "app=workers", 3).await?;
    wait_metric(&stack, &ns, "3").await?;
    let up = wait_replicas(&stack, &c, &ns, 3).await?;
    scale(&ns, "workers", 5)?;
    let up5 = wait_replicas(&stack, &c, &ns, 5).await?;
    scale(&ns, "workers", 2)?;
    let down = wait_replicas(&stack, &c, &ns, 2).await?;

    // No worker: inactive, the target goes back to 0 after the cooldown.
    scale(&ns, "workers", 0)?;
    wait_metric(&stack, &ns, "0").await?;
    let off = wait_replicas(&stack, &c, &ns, 0).await?;
    eprintln!("0 → 3 in {up:?}, 3 → 5 in {up5:?}, 5 → 2 in {down:?}, 2 → 0 in {off:?}");

    let _ = kubectl(
        &[
            "delete",
            "namespace",
            &ns,
            &other_ns,
            "--wait=false",
            "--ignore-not-found",
        ],
        None,
    );
    Ok(())
}

/// The chart's operator identity (ServiceAccount keda-operator, which `keda_e2e::ChartProcesses` runs the
/// operator as) may list pods in every namespace: the rendered ClusterRole keda-operator, bound
/// cluster-wide, grants `list` on `pods`, which `kubernetes-workload` needs for its LIST per poll. A
/// real API server's authorizer judges the rendered rules.
#[tokio::test]
async fn the_charts_operator_role_lets_it_list_pods() -> Result<()> {
    let c = client().await?;
    let ns = namespace(&c, "kworkload-rbac").await?;
    let out = std::process::Command::new("helm")
        .args([
            "template",
            "keda",
            &root().join("charts/keda").display().to_string(),
            "--namespace",
            &ns,
            "--kube-version",
            "v1.35.4",
            "--show-only",
            "templates/operator/rbac.yaml",
        ])
        .output()
        .context("running helm (the cluster's bin dir must be on PATH: cargo xtask e2e)")?;
    anyhow::ensure!(
        out.status.success(),
        "helm template: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rendered = String::from_utf8(out.stdout)?;
    let mut role = None;
    for doc in serde_yaml_ng::Deserializer::from_str(&rendered) {
        let v: serde_json::Value = serde::Deserialize::deserialize(doc)?;
        if v["kind"] == "ClusterRole" && v["metadata"]["name"] == "keda-operator" {
            role = Some(v);
        }
    }
    let mut role = role.context("the chart renders no ClusterRole keda-operator")?;
    // A name of this test's own (the real one may belong to an installed release), bound only in `ns`.
    let name = format!("{ns}-chart-operator");
    role["metadata"] = serde_json::json!({"name": name});
    kubectl_ok(&["apply", "-f", "-"], Some(&serde_json::to_string(&role)?))?;
    let result = async {
        apply(
            &ns,
            &format!(
                "apiVersion: v1\nkind: ServiceAccount\nmetadata: {{name: keda-operator}}\n---\n\
                 apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {{name: keda-operator}}\n\
                 roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: {name}}}\n\
                 subjects: [{{kind: ServiceAccount, name: keda-operator, namespace: {ns}}}]\n"
            ),
        )?;
        let who = format!("--as=system:serviceaccount:{ns}:keda-operator");
        let can = |verb: &str| kubectl(&["auth", "can-i", verb, "pods", "-n", &ns, &who], None);
        let list = can("list")?;
        anyhow::ensure!(
            String::from_utf8_lossy(&list.stdout).trim() == "yes",
            "the chart's operator ClusterRole does not allow listing pods: {}{}",
            String::from_utf8_lossy(&list.stdout),
            String::from_utf8_lossy(&list.stderr)
        );
        // And not more than reading them.
        let delete = can("delete")?;
        anyhow::ensure!(
            String::from_utf8_lossy(&delete.stdout).trim() == "no",
            "the chart's operator ClusterRole allows deleting pods"
        );
        Ok(())
    }
    .await;
    let _ = kubectl(
        &["delete", "clusterrole", &name, "--ignore-not-found"],
        None,
    );
    let _ = kubectl(
        &[
            "delete",
            "namespace",
            &ns,
            "--wait=false",
            "--ignore-not-found",
        ],
        None,
    );
    result
}

/// `kubernetes-resource` through the same path: the operator GETs ConfigMap `scaling` of the ScaledObject's
/// namespace each poll and reads `depth` from the JSON under key `queue`; the real HPA follows the number
/// (targetValue 1: one replica per unit), and 0 deactivates the target.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hpa_follows_a_number_kept_in_a_configmap() -> Result<()> {
    ensure_crds().await?;
    let c = client().await?;
    let ns = namespace(&c, "kresource").await?;
    let configmap = |depth: u32| {
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: scaling}}\ndata:\n  queue: '{{\"depth\": {depth}}}'\n"
        )
    };
    apply(&ns, &configmap(0))?;
    apply(&ns, &deployment("target", "{app: target}", 0))?;
    let stack = MetricsStack::start(&ns).await?;
    apply(
        &ns,
        "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {name: target}\nspec:\n  scaleTargetRef: {name: target}\n  pollingInterval: 1\n  cooldownPeriod: 1\n  minReplicaCount: 0\n  maxReplicaCount: 10\n  advanced:\n    horizontalPodAutoscalerConfig:\n      behavior:\n        scaleDown: {stabilizationWindowSeconds: 0}\n  triggers:\n  - type: kubernetes-resource\n    metadata: {resourceKind: ConfigMap, resourceName: scaling, key: queue, format: json, valueLocation: depth, targetValue: '1'}\n",
    )?;
    let path = format!(
        "/apis/external.metrics.k8s.io/v1beta1/namespaces/{ns}/s0-configmap-scaling-queue?labelSelector=scaledobject.keda.sh%2Fname%3Dtarget"
    );
    let read = |path: String| {
        let out = kubectl(&["get", "--raw", &path], None).ok()?;
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        v["items"][0]["value"].as_str().map(str::to_owned)
    };
    let deadline = Instant::now() + T;
    loop {
        let p = path.clone();
        let got = tokio::task::spawn_blocking(move || read(p)).await?;
        if got.as_deref() == Some("0") {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "{path}: last {got:?}\n{}",
            stack.logs()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    apply(&ns, &configmap(4))?;
    let up = wait_replicas(&stack, &c, &ns, 4).await?;
    apply(&ns, &configmap(2))?;
    let down = wait_replicas(&stack, &c, &ns, 2).await?;
    apply(&ns, &configmap(0))?;
    let off = wait_replicas(&stack, &c, &ns, 0).await?;
    eprintln!("0 → 4 in {up:?}, 4 → 2 in {down:?}, 2 → 0 in {off:?}");
    let _ = kubectl(
        &[
            "delete",
            "namespace",
            &ns,
            "--wait=false",
            "--ignore-not-found",
        ],
        None,
    );
    Ok(())
}
