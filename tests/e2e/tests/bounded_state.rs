//! Steady state costs no repeated API traffic (#14 item 7), counted by a proxy in front of each keda
//! process (`keda_e2e::apicount`):
//! * the operator writes a TriggerAuthentication's `status.scaledobjects` when its value changes, not on
//!   every reconcile of every ScaledObject that uses it;
//! * the admission webhooks read Services and Ingresses from their watches: admissions that run the ALB
//!   check list nothing.
//!
//! The proxies run on the test's runtime: multi-threaded, so a blocking `kubectl` does not stall them.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use keda_api::{ScaledObject, TriggerAuthentication};
use keda_e2e::apicount::ApiCounter;
use keda_e2e::webhooks::{Webhooks, apply_until};
use keda_e2e::{KedaProcess, MetricServer, apply, client, ensure_crds, kubectl, namespace, root};
use kube::Api;

const T: Duration = Duration::from_secs(60);
const TA_STATUS: &str = "triggerauthentications.keda.sh/status";

fn ready(so: &ScaledObject) -> bool {
    so.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.r#type == "Ready" && c.status == "True"))
}

fn scaled_object(name: &str, url: &str, touch: u32) -> String {
    format!(
        "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata:\n  name: {name}\n  annotations: {{e2e/touch: \"{touch}\"}}\nspec:\n  scaleTargetRef: {{name: {name}}}\n  pollingInterval: 5\n  minReplicaCount: 1\n  triggers:\n  - type: metrics-api\n    metadata: {{url: \"{url}\", valueLocation: value, targetValue: \"10\", authMode: apiKey}}\n    authenticationRef: {{name: api}}\n"
    )
}

fn deployment(name: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {name}}}\nspec:\n  replicas: 1\n  selector: {{matchLabels: {{app: {name}}}}}\n  template:\n    metadata: {{labels: {{app: {name}}}}}\n    spec:\n      containers: [{{name: app, image: example/app:1}}]\n"
    )
}

async fn wait_users(c: &kube::Client, ns: &str, want: &str) -> Result<()> {
    let tas: Api<TriggerAuthentication> = Api::namespaced(c.clone(), ns);
    keda_e2e::wait_for(&tas, "api", T, |ta| {
        ta.status.as_ref().and_then(|s| s.scaled_objects.as_deref()) == Some(want)
    })
    .await?;
    Ok(())
}

/// Each annotation change of a ScaledObject reconciles it (the HPA then carries the annotation): five
/// reconciles of each of two users of one TriggerAuthentication add no status write; a new user and a
/// deleted one are still written.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn trigger_authentication_status_is_written_only_on_change() -> Result<()> {
    ensure_crds().await?;
    let c = client().await?;
    let ns = namespace(&c, "ta-writes").await?;
    let dir = root().join("target/keda-e2e-apicount").join(&ns);
    let counter = ApiCounter::start(&dir, "operator").await?;
    let _op = KedaProcess::operator_with_env(
        &ns,
        "op-ta",
        "127.0.0.1:0",
        &[],
        &[("KUBECONFIG", counter.kubeconfig.as_str())],
    )?;
    let server = MetricServer::start_with_key(1.0, Some("s3cret")).await?;
    apply(
        &ns,
        "apiVersion: v1\nkind: Secret\nmetadata: {name: api}\nstringData: {key: s3cret}\n---\napiVersion: keda.sh/v1alpha1\nkind: TriggerAuthentication\nmetadata: {name: api}\nspec:\n  secretTargetRef: [{parameter: apiKey, name: api, key: key}]\n",
    )?;
    for name in ["one", "two"] {
        apply(&ns, &deployment(name))?;
        apply(&ns, &scaled_object(name, &server.url, 0))?;
    }
    let sos: Api<ScaledObject> = Api::namespaced(c.clone(), &ns);
    for name in ["one", "two"] {
        keda_e2e::wait_for(&sos, name, T, ready).await?;
    }
    wait_users(&c, &ns, "one,two").await?;
    let settled = counter.tally.count("PATCH", TA_STATUS);
    if settled == 0 {
        bail!("the operator never wrote the TriggerAuthentication status through the proxy");
    }

    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(c.clone(), &ns);
    for touch in 1..=5 {
        for name in ["one", "two"] {
            apply(&ns, &scaled_object(name, &server.url, touch))?;
            let want = touch.to_string();
            keda_e2e::wait_for(&hpas, &format!("keda-hpa-{name}"), T, |h| {
                h.metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get("e2e/touch"))
                    == Some(&want)
            })
            .await?;
        }
    }
    let after = counter.tally.count("PATCH", TA_STATUS);
    if after != settled {
        bail!(
            "10 reconciles with unchanged users wrote the TriggerAuthentication status {} more times",
            after - settled
        );
    }

    // Changes are still written: a new user, a deleted one.
    apply(&ns, &deployment("three"))?;
    apply(&ns, &scaled_object("three", &server.url, 0))?;
    wait_users(&c, &ns, "one,three,two").await?;
    kubectl(
        &["delete", "scaledobject", "one", "-n", &ns, "--wait=false"],
        None,
    )?;
    wait_users(&c, &ns, "three,two").await?;
    if counter.tally.count("PATCH", TA_STATUS) == after {
        bail!("the changed users were not written");
    }

    let _ = kubectl(&["delete", "namespace", &ns, "--wait=false"], None);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// A Deployment behind an ALB Ingress created after the webhooks started: the warning reaches kubectl
/// through the watches, for create and every update, and the webhooks list Services and Ingresses only
/// when their watches start.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_alb_check_reads_services_and_ingresses_from_watches() -> Result<()> {
    ensure_crds().await?;
    let c = client().await?;
    let ns = namespace(&c, "alb-watch").await?;
    let dir = root().join("target/keda-e2e-apicount").join(&ns);
    let counter = ApiCounter::start(&dir, "webhooks").await?;
    let webhooks =
        Webhooks::start(&ns, &[], &[("KUBECONFIG", counter.kubeconfig.as_str())]).await?;
    let registration = webhooks.register(&ns)?;
    let listed = |resource: &str| counter.tally.count("LIST", resource);
    let at_start = (listed("services"), listed("ingresses.networking.k8s.io"));
    if at_start != (1, 1) {
        bail!(
            "expected one LIST of Services and of Ingresses at start, got {at_start:?}; all requests: {:?}",
            counter.tally.snapshot()
        );
    }

    apply(
        &ns,
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: shop}\nspec:\n  replicas: 1\n  selector: {matchLabels: {app: shop}}\n  template:\n    metadata: {labels: {app: shop}}\n    spec:\n      containers: [{name: app, image: example/app:1}]\n---\napiVersion: v1\nkind: Service\nmetadata: {name: shop}\nspec:\n  selector: {app: shop}\n  ports: [{port: 80, targetPort: 8080}]\n---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: public\n  annotations: {alb.ingress.kubernetes.io/scheme: internet-facing}\nspec:\n  rules:\n  - http:\n      paths:\n      - {path: /, pathType: Prefix, backend: {service: {name: shop, port: {number: 80}}}}\n",
    )?;
    let alb_warning = format!("the pods are behind the AWS ALB Ingress {ns}/public (Service shop)");
    let so = |touch: u32| {
        format!(
            "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata:\n  name: shop\n  annotations: {{e2e/touch: \"{touch}\"}}\nspec:\n  scaleTargetRef: {{name: shop}}\n  advanced: {{horizontalPodAutoscalerConfig: {{behavior: {{scaleDown: {{stabilizationWindowSeconds: 60}}}}}}}}\n  triggers:\n  - type: metrics-api\n    metadata: {{url: \"http://127.0.0.1:1/m\", valueLocation: value, targetValue: \"10\"}}\n"
        )
    };
    let started = Instant::now();
    apply_until(&ns, &so(0), None, Duration::from_secs(30), |ok, stderr| {
        ok && stderr.contains(&alb_warning)
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e}\nwebhook log:\n{}", webhooks.process.log_tail()))?;
    println!(
        "ALB warning through the watches after {:?}",
        started.elapsed()
    );
    let admissions = 5;
    for touch in 1..=admissions {
        let stderr =
            apply_until(&ns, &so(touch), None, Duration::from_secs(10), |ok, _| ok).await?;
        if !stderr.contains(&alb_warning) {
            bail!("update {touch}: no ALB warning; stderr: {stderr}");
        }
    }
    let now = (listed("services"), listed("ingresses.networking.k8s.io"));
    if now != at_start {
        bail!("admissions listed Services / Ingresses: {at_start:?} at start, {now:?} after");
    }

    drop(registration);
    drop(webhooks);
    let _ = kubectl(&["delete", "namespace", &ns, "--wait=false"], None);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
