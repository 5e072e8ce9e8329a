//! `keda admission-webhooks` behind a ValidatingWebhookConfiguration `keda-admission` that calls it by
//! URL (https://10.200.0.1:<port>/…) and applies only to this test's namespace (label selector), so other
//! tests are not affected. Rejections, a warning on kubectl's stderr, an accepted object, and the
//! graceful-shutdown warnings about a Deployment behind an AWS ALB Ingress.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use keda_e2e::webhooks::{Webhooks, try_apply};
use keda_e2e::{apply, client, ensure_crds, kubectl, kubectl_ok, namespace};

fn scaled_object(name: &str, target: &str, spec: &str, triggers: &str) -> String {
    format!(
        "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {{name: {name}}}\nspec:\n  scaleTargetRef: {{name: {target}}}\n  advanced: {{horizontalPodAutoscalerConfig: {{behavior: {{scaleDown: {{stabilizationWindowSeconds: 60}}}}}}}}\n{spec}  triggers:\n{triggers}"
    )
}

/// Deployments `shop` (preStop sleep 30 s, grace period 30 s) and `shop-ok` (the same sleep, grace
/// period 90 s), their Services, and one Ingress annotated for the AWS Load Balancer Controller that
/// routes to both.
fn shop_objects() -> String {
    let mut out = String::new();
    for (name, grace) in [("shop", 30), ("shop-ok", 90)] {
        out.push_str(&format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {name}}}\nspec:\n  replicas: 1\n  selector: {{matchLabels: {{app: {name}}}}}\n  template:\n    metadata: {{labels: {{app: {name}}}}}\n    spec:\n      terminationGracePeriodSeconds: {grace}\n      containers:\n      - name: app\n        image: example/app:1\n        lifecycle: {{preStop: {{exec: {{command: [sleep, \"30\"]}}}}}}\n---\napiVersion: v1\nkind: Service\nmetadata: {{name: {name}}}\nspec:\n  selector: {{app: {name}}}\n  ports: [{{port: 80, targetPort: 8080}}]\n---\n"
        ));
    }
    out.push_str(
        "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: public\n  annotations:\n    alb.ingress.kubernetes.io/scheme: internet-facing\n    alb.ingress.kubernetes.io/target-type: ip\nspec:\n  rules:\n  - http:\n      paths:\n      - {path: /, pathType: Prefix, backend: {service: {name: shop, port: {number: 80}}}}\n      - {path: /ok, pathType: Prefix, backend: {service: {name: shop-ok, port: {number: 80}}}}\n",
    );
    out
}

const API_TRIGGER: &str = "  - type: metrics-api\n    name: api\n    metadata: {url: \"http://127.0.0.1:1/m\", valueLocation: value, targetValue: \"10\"}\n";

fn expect_rejected(ns: &str, case: &str, yaml: &str, fragment: &str) -> Result<()> {
    let (ok, stderr) = try_apply(ns, yaml)?;
    if ok || !stderr.contains(fragment) {
        bail!(
            "{case}: expected a rejection containing {fragment:?}; success={ok}, stderr: {stderr}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn webhook_rejects_warns_and_accepts() -> Result<()> {
    ensure_crds().await?;
    let c = client().await?;
    let ns = namespace(&c, "webhooks").await?;
    // Ready once the ScaledObject and HPA indexes and the Service / Ingress caches are synced.
    let webhooks = Webhooks::start(&ns, &[], &[]).await?;
    let process = &webhooks.process;
    let registration = webhooks.register(&ns)?;

    apply(
        &ns,
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  replicas: 1\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec:\n      containers: [{name: app, image: example/app:1}]\n",
    )?;

    // The API server picks the configuration up asynchronously: retry the first rejection. (min > max is
    // refused by the CRD's CEL rule before the webhook is called, so idle >= min is the first case.)
    let idle = scaled_object(
        "idle",
        "b",
        "  minReplicaCount: 2\n  idleReplicaCount: 2\n",
        API_TRIGGER,
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match expect_rejected(
            &ns,
            "idle >= min",
            &idle,
            "IdleReplicaCount=2 must be less than MinReplicaCount=2",
        ) {
            Ok(()) => break,
            Err(e) if Instant::now() > deadline => {
                bail!("{e}\nwebhook log:\n{}", process.log_tail())
            }
            Err(_) => {
                let _ = kubectl(
                    &[
                        "delete",
                        "scaledobject",
                        "idle",
                        "-n",
                        &ns,
                        "--ignore-not-found",
                    ],
                    None,
                );
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }

    expect_rejected(
        &ns,
        "duplicate trigger names",
        &scaled_object("dup", "c", "", &format!("{API_TRIGGER}{API_TRIGGER}")),
        "is used more than once",
    )?;
    expect_rejected(
        &ns,
        "metrics-api without url",
        &scaled_object(
            "nourl",
            "d",
            "",
            "  - type: metrics-api\n    metadata: {valueLocation: value, targetValue: \"10\"}\n",
        ),
        "spec.triggers[0].metadata.url",
    )?;
    expect_rejected(
        &ns,
        "missing TriggerAuthentication",
        &scaled_object(
            "noauth",
            "e",
            "",
            "  - type: metrics-api\n    authenticationRef: {name: missing-auth}\n    metadata: {url: \"http://127.0.0.1:1/m\", valueLocation: value, targetValue: \"10\"}\n",
        ),
        "missing-auth not found",
    )?;
    expect_rejected(
        &ns,
        "bad TriggerAuthentication",
        "apiVersion: keda.sh/v1alpha1\nkind: TriggerAuthentication\nmetadata: {name: bad}\nspec:\n  podIdentity: {provider: aws, roleArn: 'arn:aws:iam::1:role/x', identityOwner: workload}\n",
        "roleArn cannot be set",
    )?;

    // A valid object is accepted, with a warning on kubectl's stderr.
    let (ok, stderr) = try_apply(
        &ns,
        &scaled_object(
            "web",
            "web",
            "  minReplicaCount: 1\n  cooldownPeriod: 120\n",
            API_TRIGGER,
        ),
    )?;
    if !ok || !stderr.contains("Warning:") || !stderr.contains("cooldownPeriod has no effect") {
        bail!(
            "valid ScaledObject: success={ok}, expected a cooldownPeriod warning; stderr: {stderr}"
        );
    }
    // A second ScaledObject on the same Deployment is rejected (the index saw the first through its watch).
    let second = scaled_object("web-2", "web", "", API_TRIGGER);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match expect_rejected(
            &ns,
            "second ScaledObject on web",
            &second,
            "is already managed by the ScaledObject 'web'",
        ) {
            Ok(()) => break,
            Err(e) if Instant::now() > deadline => bail!("{e}"),
            Err(_) => {
                let _ = kubectl(
                    &[
                        "delete",
                        "scaledobject",
                        "web-2",
                        "-n",
                        &ns,
                        "--ignore-not-found",
                    ],
                    None,
                );
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        }
    }
    // The rejections never stored anything.
    let stored = kubectl_ok(&["get", "scaledobjects", "-n", &ns, "-o", "name"], None)?;
    if stored.trim() != "scaledobject.keda.sh/web" {
        bail!("unexpected ScaledObjects stored: {stored}");
    }

    // The seed guide's graceful-shutdown pitfalls, read from the cluster: a preStop sleep of 30 s with a
    // 30 s grace period behind an ALB Ingress warns twice; a 90 s grace period behind it warns not at all.
    // The Service and Ingress reach the webhook through its watches: retry until they have.
    apply(&ns, &shop_objects())?;
    let grace_warning = "is not longer than the preStop sleep of container \"app\" (30 s)";
    let alb_warning = format!("the pods are behind the AWS ALB Ingress {ns}/public (Service shop)");
    keda_e2e::webhooks::apply_until(
        &ns,
        &scaled_object("shop", "shop", "", API_TRIGGER),
        None,
        Duration::from_secs(15),
        |ok, stderr| {
            ok && stderr
                .contains("Deployment shop spec.template.spec.terminationGracePeriodSeconds")
                && stderr.contains(grace_warning)
                && stderr.contains(&alb_warning)
        },
    )
    .await
    .map_err(|e| {
        anyhow::anyhow!(
            "ScaledObject on shop: expected the preStop and ALB warnings: {e}\nwebhook log:\n{}",
            process.log_tail()
        )
    })?;
    let (ok, stderr) = try_apply(&ns, &scaled_object("shop-ok", "shop-ok", "", API_TRIGGER))?;
    if !ok
        || stderr.contains("terminationGracePeriodSeconds")
        || stderr.contains("Kubernetes server version")
    {
        bail!(
            "ScaledObject on shop-ok: success={ok}, expected no workload or version warnings; stderr: {stderr}"
        );
    }

    drop(registration);
    drop(webhooks);
    let _ = kubectl(&["delete", "namespace", &ns, "--wait=false"], None);
    Ok(())
}
