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
        "is defined multiple times",
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

/// Issue 14 item 5: upgrading from upstream never freezes a workload. A ScaledObject upstream KEDA
/// admitted whose trigger type keda-rs does not support (`ibmmq`), with the HPA upstream made for it:
/// the operator says Ready=False naming the type and leaves the HPA and the replicas alone; with the
/// webhook registered, `kubectl annotate … autoscaling.keda.sh/paused=true` is admitted with a warning on
/// kubectl's stderr (and the pause then works as upstream's: the HPA is deleted, the replicas stay), while
/// a spec change is refused.
#[tokio::test]
async fn an_unsupported_trigger_type_from_upstream_stays_editable() -> Result<()> {
    use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
    use keda_api::ScaledObject;
    use kube::Api;

    const T: Duration = Duration::from_secs(60);
    ensure_crds().await?;
    let c = client().await?;
    let ns = namespace(&c, "webhooks-upgrade").await?;
    let ready = |so: &ScaledObject, status: &str| {
        so.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.r#type == "Ready"))
            .is_some_and(|c| c.status == status)
    };

    // What upstream KEDA left behind: the ScaledObject (admitted by upstream's webhook, which does not
    // know which trigger types keda-rs supports) and its HPA, owned by it.
    apply(
        &ns,
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  replicas: 2\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec:\n      containers: [{name: app, image: example/app:1}]\n",
    )?;
    let orders = scaled_object(
        "orders",
        "web",
        "  minReplicaCount: 1\n",
        "  - type: ibmmq\n    metadata: {host: \"https://mq.example:9443/ibmmq/rest/v2/admin/action/qmgr/QM1/mqsc\", queueName: ORDERS, queueDepth: \"10\"}\n",
    );
    apply(&ns, &orders)?;
    let uid = kubectl_ok(
        &[
            "get",
            "scaledobject",
            "orders",
            "-n",
            &ns,
            "-o",
            "jsonpath={.metadata.uid}",
        ],
        None,
    )?;
    apply(
        &ns,
        &format!(
            "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata:\n  name: keda-hpa-orders\n  labels: {{app.kubernetes.io/managed-by: keda-operator, scaledobject.keda.sh/name: orders}}\n  ownerReferences: [{{apiVersion: keda.sh/v1alpha1, kind: ScaledObject, name: orders, uid: {uid}, controller: true, blockOwnerDeletion: true}}]\nspec:\n  scaleTargetRef: {{apiVersion: apps/v1, kind: Deployment, name: web}}\n  minReplicas: 1\n  maxReplicas: 100\n  metrics:\n  - type: External\n    external:\n      metric: {{name: s0-ibmmq-orders, selector: {{matchLabels: {{scaledobject.keda.sh/name: orders}}}}}}\n      target: {{type: AverageValue, averageValue: \"10\"}}\n"
        ),
    )?;
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(c.clone(), &ns);
    let hpa_before = hpas.get("keda-hpa-orders").await?.spec;

    // The operator: Ready=False naming the type; the HPA and the replicas stay as upstream left them.
    let mut operator = keda_e2e::KedaProcess::operator(&ns, "op-a")?;
    let sos: Api<ScaledObject> = Api::namespaced(c.clone(), &ns);
    let so = keda_e2e::wait_for(&sos, "orders", T, |so| ready(so, "False")).await?;
    let message = so
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.r#type == "Ready"))
        .and_then(|c| c.message.clone())
        .unwrap_or_default();
    if !message.contains("unknown trigger type \"ibmmq\"") {
        bail!("Ready=False without the trigger type: {message:?}");
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    if hpas.get("keda-hpa-orders").await?.spec != hpa_before {
        bail!("the operator changed the HPA of a ScaledObject it cannot run");
    }
    if keda_e2e::spec_replicas(&c, &ns, "web").await? != 2 {
        bail!("the operator scaled a workload whose ScaledObject it cannot run");
    }

    // The webhook, registered now: a spec change is refused (retried until the API server calls it)…
    let webhooks = Webhooks::start(&ns, &[], &[]).await?;
    let registration = webhooks.register(&ns)?;
    let changed = orders.replace("minReplicaCount: 1", "minReplicaCount: 2");
    keda_e2e::webhooks::apply_until(
        &ns,
        &changed,
        None,
        Duration::from_secs(30),
        |ok, stderr| !ok && stderr.contains("unknown trigger type \"ibmmq\""),
    )
    .await
    .map_err(|e| {
        anyhow::anyhow!(
            "spec change: {e}\nwebhook log:\n{}",
            webhooks.process.log_tail()
        )
    })?;
    // …and the pause annotation is admitted, with the refusal as a warning.
    let out = kubectl(
        &[
            "annotate",
            "scaledobject",
            "orders",
            "-n",
            &ns,
            "autoscaling.keda.sh/paused=true",
        ],
        None,
    )?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success()
        || !stderr.contains("Warning:")
        || !stderr.contains("unknown trigger type \"ibmmq\"")
        || !stderr.contains("admitted because this update leaves the spec unchanged")
    {
        bail!(
            "annotate paused: success={}, expected the admitted warning; stderr: {stderr}",
            out.status.success()
        );
    }
    // The pause works as upstream's: Paused=True, the HPA deleted, the replicas left as they are.
    keda_e2e::wait_for(&sos, "orders", T, |so| {
        so.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.r#type == "Paused"))
            .is_some_and(|c| c.status == "True")
    })
    .await?;
    let deadline = Instant::now() + T;
    while hpas.get_opt("keda-hpa-orders").await?.is_some() {
        if Instant::now() > deadline {
            bail!("the paused ScaledObject's HPA was not deleted");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    if keda_e2e::spec_replicas(&c, &ns, "web").await? != 2 {
        bail!("pausing changed the replicas");
    }
    let stored = kubectl_ok(
        &[
            "get",
            "scaledobject",
            "orders",
            "-n",
            &ns,
            "-o",
            "jsonpath={.spec.minReplicaCount}",
        ],
        None,
    )?;
    if stored.trim() != "1" {
        bail!("the refused spec change was stored: minReplicaCount {stored}");
    }

    operator.terminate();
    drop(registration);
    drop(webhooks);
    let _ = kubectl(&["delete", "namespace", &ns, "--wait=false"], None);
    Ok(())
}
