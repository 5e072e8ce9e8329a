//! A `keda admission-webhooks` process for one test, behind a ValidatingWebhookConfiguration
//! `keda-admission` that calls it by URL (https://10.200.0.1:<port>/…) and applies only to the test's
//! namespace (label selector), so other tests are not affected.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use crate::{KedaProcess, NODE_IP, cluster_scoped_lock, free_port, kubectl, kubectl_ok, root};

/// The cluster's one ValidatingWebhookConfiguration name (as the chart's).
pub const WEBHOOK_CONFIG: &str = "keda-admission";
/// Namespace label the configuration selects: `<LABEL>=<namespace>`.
pub const LABEL: &str = "keda-rs-e2e-webhooks";

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

/// A test CA and a serving certificate for the node IP in `dir`; returns the CA PEM.
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

/// A running `keda admission-webhooks` serving on the node IP with a test certificate; killed on drop.
pub struct Webhooks {
    pub process: KedaProcess,
    pub port: u16,
    ca_pem: String,
    dir: PathBuf,
}

impl Webhooks {
    /// Starts the webhooks for namespace `ns` (its KEDA namespace too) with `extra_args` and `env`, and
    /// waits until `/readyz` answers (its caches have listed).
    pub async fn start(ns: &str, extra_args: &[&str], env: &[(&str, &str)]) -> Result<Webhooks> {
        let dir = root().join("target/keda-e2e-webhooks").join(ns);
        let ca_pem = write_certs(&dir)?;
        let port = free_port(NODE_IP)?;
        let health = format!("127.0.0.1:{}", free_port("127.0.0.1")?);
        let port_text = port.to_string();
        let dir_text = dir.display().to_string();
        let mut args = vec![
            "admission-webhooks",
            "--bind-address",
            NODE_IP,
            "--port",
            &port_text,
            "--cert-dir",
            &dir_text,
            "--health-probe-bind-address",
            &health,
            "--metrics-bind-address",
            "127.0.0.1:0",
        ];
        args.extend_from_slice(extra_args);
        let mut all_env = vec![("KEDA_CLUSTER_OBJECT_NAMESPACE", ns)];
        all_env.extend_from_slice(env);
        let mut process = KedaProcess::start(&format!("{ns}-webhooks"), &args, &all_env)?;
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
        Ok(Webhooks {
            process,
            port,
            ca_pem,
            dir,
        })
    }

    /// Labels `ns` and registers `keda-admission` to call this process for it, holding the cluster-scoped
    /// lock until the returned guard is dropped (which deletes the configuration).
    pub fn register(&self, ns: &str) -> Result<Registration> {
        kubectl_ok(&["label", "namespace", ns, &format!("{LABEL}={ns}")], None)?;
        let lock = cluster_scoped_lock()?;
        let registration = Registration { _lock: lock };
        kubectl_ok(
            &["apply", "-f", "-"],
            Some(&webhook_config(self.port, &self.ca_pem, ns)),
        )?;
        Ok(registration)
    }
}

impl Drop for Webhooks {
    fn drop(&mut self) {
        self.process.terminate();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `keda-admission` registered for one namespace; deleted (then the cluster-scoped lock released) on drop,
/// also when the test fails.
pub struct Registration {
    _lock: std::fs::File,
}

impl Drop for Registration {
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

/// `kubectl apply` of `yaml` in `ns`: (success, stderr).
pub fn try_apply(ns: &str, yaml: &str) -> Result<(bool, String)> {
    let out = kubectl(&["apply", "-n", ns, "-f", "-"], Some(yaml))?;
    Ok((
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

/// Applies `yaml` until `accept(success, stderr)` holds (the API server picks a new webhook
/// configuration up asynchronously, and the webhook's caches follow their watches), deleting a stored
/// `kind`/`name` between attempts; fails after `timeout` with the last stderr.
pub async fn apply_until(
    ns: &str,
    yaml: &str,
    delete: Option<(&str, &str)>,
    timeout: Duration,
    accept: impl Fn(bool, &str) -> bool,
) -> Result<String> {
    let deadline = Instant::now() + timeout;
    loop {
        let (ok, stderr) = try_apply(ns, yaml)?;
        if accept(ok, &stderr) {
            return Ok(stderr);
        }
        if Instant::now() > deadline {
            bail!("no acceptable answer within {timeout:?}: success={ok}, stderr: {stderr}");
        }
        if let Some((kind, name)) = delete {
            let _ = kubectl(
                &["delete", kind, name, "-n", ns, "--ignore-not-found"],
                None,
            );
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}
