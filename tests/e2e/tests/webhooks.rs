//! `keda admission-webhooks` behind a ValidatingWebhookConfiguration `keda-admission` that calls it by
//! URL (https://10.200.0.1:<port>/…) and applies only to this test's namespace (label selector), so other
//! tests are not affected. Rejections, a warning on kubectl's stderr, an accepted object, and the
//! graceful-shutdown warnings about a Deployment behind an AWS ALB Ingress.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use keda_e2e::{
    KedaProcess, apply, client, cluster_scoped_lock, ensure_crds, kubectl, kubectl_ok, namespace,
    root,
};

const NODE_IP: &str = "10.200.0.1";
const WEBHOOK_CONFIG: &str = "keda-admission";
const LABEL: &str = "keda-rs-e2e-webhooks";

fn free_port(ip: &str) -> Result<u16> {
    Ok(std::net::TcpListener::bind((ip, 0))?.local_addr()?.port())
}

fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A test CA and a serving certificate for the node IP; returns the CA PEM.
fn write_certs(dir: &Path) -> Result<String> {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    std::fs::create_dir_all(dir)?;
    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "keda-rs e2e webhooks CA");
    let ca = ca.self_signed(&ca_key)?;
    let key = KeyPair::generate()?;
    let mut leaf = CertificateParams::new(vec![NODE_IP.to_owned(), "localhost".to_owned()])?;
    leaf.distinguished_name
        .push(DnType::CommonName, "keda-admission-webhooks");
    let leaf = leaf.signed_by(&key, &ca, &ca_key)?;
    std::fs::write(dir.join("tls.crt"), leaf.pem())?;
    std::fs::write(dir.join("tls.key"), key.serialize_pem())?;
    Ok(ca.pem())
}

/// Deletes the ValidatingWebhookConfiguration when dropped (also when the test fails).
struct WebhookConfigGuard;

impl Drop for WebhookConfigGuard {
    fn drop(&mut self) {
        let _ = kubectl(
            &[
                "delete",
                "validatingwebhookconfiguration",
                WEBHOOK_CONFIG,
                "--ignore-not-found",
                "--wait=false",
            ],
            None,
        );
    }
}

fn webhook_config(port: u16, ca_pem: &str, ns: &str) -> String {
    let ca = base64(ca_pem.as_bytes());
    let hook = |name: &str, path: &str, resource: &str| {
        format!(
            "- name: {name}\n  admissionReviewVersions: [v1]\n  sideEffects: None\n  failurePolicy: Fail\n  timeoutSeconds: 10\n  clientConfig:\n    url: https://{NODE_IP}:{port}{path}\n    caBundle: {ca}\n  namespaceSelector:\n    matchLabels: {{{LABEL}: {ns}}}\n  rules:\n  - apiGroups: [keda.sh]\n    apiVersions: [v1alpha1]\n    operations: [CREATE, UPDATE]\n    resources: [{resource}]\n"
        )
    };
    format!(
        "apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingWebhookConfiguration\nmetadata:\n  name: {WEBHOOK_CONFIG}\nwebhooks:\n{}{}{}",
        hook(
            "vscaledobject.kb.io",
            "/validate-keda-sh-v1alpha1-scaledobject",
            "scaledobjects"
        ),
        hook(
            "vscaledjob.kb.io",
            "/validate-keda-sh-v1alpha1-scaledjob",
            "scaledjobs"
        ),
        hook(
            "vtriggerauthentication.kb.io",
            "/validate-keda-sh-v1alpha1-triggerauthentication",
            "triggerauthentications"
        ),
    )
}

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

/// `kubectl apply` of `yaml` in `ns`: (success, stderr).
fn try_apply(ns: &str, yaml: &str) -> Result<(bool, String)> {
    let out = kubectl(&["apply", "-n", ns, "-f", "-"], Some(yaml))?;
    Ok((
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

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
    kubectl_ok(&["label", "namespace", &ns, &format!("{LABEL}={ns}")], None)?;

    let dir = root().join("target/keda-e2e-webhooks").join(&ns);
    let ca_pem = write_certs(&dir)?;
    let port = free_port(NODE_IP)?;
    let health_port = free_port("127.0.0.1")?;
    let health = format!("127.0.0.1:{health_port}");
    let mut process = KedaProcess::start(
        &format!("{ns}-webhooks"),
        &[
            "admission-webhooks",
            "--bind-address",
            NODE_IP,
            "--port",
            &port.to_string(),
            "--cert-dir",
            &dir.display().to_string(),
            "--health-probe-bind-address",
            &health,
            "--metrics-bind-address",
            "127.0.0.1:0",
        ],
        &[("KEDA_CLUSTER_OBJECT_NAMESPACE", ns.as_str())],
    )?;
    // Ready once the ScaledObject and HPA indexes are synced.
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if !process.is_running() {
            bail!("keda admission-webhooks exited:\n{}", process.log_tail());
        }
        if let Ok(r) = http.get(format!("http://{health}/readyz")).send().await
            && r.status().is_success()
        {
            break;
        }
        if Instant::now() > deadline {
            bail!("webhooks never became ready:\n{}", process.log_tail());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let _lock = cluster_scoped_lock()?;
    let _guard = WebhookConfigGuard;
    kubectl_ok(
        &["apply", "-f", "-"],
        Some(&webhook_config(port, &ca_pem, &ns)),
    )?;

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
    apply(&ns, &shop_objects())?;
    let (ok, stderr) = try_apply(&ns, &scaled_object("shop", "shop", "", API_TRIGGER))?;
    let grace_warning = "is not longer than the preStop sleep of container \"app\" (30 s)";
    let alb_warning = "the pods are behind the AWS ALB Ingress";
    if !ok
        || !stderr.contains("Deployment shop spec.template.spec.terminationGracePeriodSeconds")
        || !stderr.contains(grace_warning)
        || !stderr.contains(&format!("{alb_warning} {ns}/public (Service shop)"))
    {
        bail!(
            "ScaledObject on shop: success={ok}, expected the preStop and ALB warnings; stderr: {stderr}\nwebhook log:\n{}",
            process.log_tail()
        );
    }
    let (ok, stderr) = try_apply(&ns, &scaled_object("shop-ok", "shop-ok", "", API_TRIGGER))?;
    if !ok
        || stderr.contains("terminationGracePeriodSeconds")
        || stderr.contains("Kubernetes server version")
    {
        bail!(
            "ScaledObject on shop-ok: success={ok}, expected no workload or version warnings; stderr: {stderr}"
        );
    }

    drop(_guard);
    drop(_lock);
    process.terminate();
    let _ = kubectl(&["delete", "namespace", &ns, "--wait=false"], None);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
