//! Files tenants name (#14 item 6) on the local control plane. The operator, started with
//! `--filepath-auth-root-path`, reads a ClusterTriggerAuthentication's `filePath` under it (the trigger
//! then authenticates with the file's key), and refuses on `Ready` a `filePath` outside it, one that leaves
//! it through a symbolic link, and a postgresql `sslrootcert` outside it. The admission webhooks, started
//! with the same flag, refuse the objects whose paths are outside it as written, with the operator's
//! message; a link only the operator can see through is left to the operator (a warning says so).

use std::time::Duration;

use anyhow::{Result, bail};
use keda_api::ScaledObject;
use keda_e2e::webhooks::{Webhooks, apply_until};
use keda_e2e::{KedaProcess, MetricServer, apply, client, ensure_crds, kubectl, namespace, root};
use kube::Api;

const T: Duration = Duration::from_secs(60);

fn condition(so: &ScaledObject, type_: &str) -> Option<(String, String)> {
    so.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.r#type == type_)
        .map(|c| (c.status.clone(), c.message.clone().unwrap_or_default()))
}

/// Deletes the test's ClusterTriggerAuthentications (cluster-scoped) when dropped.
struct ClusterAuths(Vec<String>);

impl Drop for ClusterAuths {
    fn drop(&mut self) {
        for name in &self.0 {
            let _ = kubectl(
                &[
                    "delete",
                    "clustertriggerauthentication",
                    name,
                    "--ignore-not-found",
                    "--wait=false",
                ],
                None,
            );
        }
    }
}

/// `revision` goes into an annotation and `pollingInterval`: a new revision changes the spec, so the
/// webhook judges it in full (an update that leaves the spec unchanged is admitted with a warning).
fn scaled_object(name: &str, trigger: &str, revision: &str) -> String {
    format!(
        "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata:\n  name: {name}\n  annotations: {{e2e/touch: \"{revision}\"}}\nspec:\n  scaleTargetRef: {{name: {name}}}\n  pollingInterval: {revision}\n  minReplicaCount: 1\n  advanced: {{horizontalPodAutoscalerConfig: {{behavior: {{scaleDown: {{stabilizationWindowSeconds: 60}}}}}}}}\n  triggers:\n{trigger}"
    )
}

fn api_trigger(url: &str, cta: &str) -> String {
    format!(
        "  - type: metrics-api\n    metadata: {{url: \"{url}\", valueLocation: value, targetValue: \"10\", activationTargetValue: \"5\", authMode: apiKey}}\n    authenticationRef: {{name: {cta}, kind: ClusterTriggerAuthentication}}\n"
    )
}

const PG_TRIGGER: &str = "  - type: postgresql\n    metadata: {query: SELECT 1, targetQueryValue: \"1\"}\n    authenticationRef: {name: pg}\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn file_paths_are_confined_to_the_root() -> Result<()> {
    ensure_crds().await?;
    let c = client().await?;
    let ns = namespace(&c, "files").await?;
    let dir = root().join("target/keda-e2e-files").join(&ns);
    let auth_root = dir.join("auth");
    std::fs::create_dir_all(&auth_root)?;
    std::fs::write(
        auth_root.join("creds.json"),
        r#"{"apiKey": "k3y-from-file"}"#,
    )?;
    std::fs::write(dir.join("outside.json"), r#"{"apiKey": "k3y-outside"}"#)?;
    std::os::unix::fs::symlink(dir.join("outside.json"), auth_root.join("link.json"))?;
    // As the operator shows it: `.` and `..` applied.
    let root_arg = std::fs::canonicalize(&auth_root)?.display().to_string();
    let server = MetricServer::start_with_key(7.0, Some("k3y-from-file")).await?;
    let _op = KedaProcess::operator_with(
        &ns,
        "op-files",
        "127.0.0.1:0",
        &["--filepath-auth-root-path", &root_arg],
    )?;

    let cta = |suffix: &str| format!("{ns}-{suffix}");
    let _ctas = ClusterAuths(vec![cta("file"), cta("escape"), cta("link")]);
    for (suffix, path) in [
        ("file", "creds.json"),
        ("escape", "../outside.json"),
        ("link", "link.json"),
    ] {
        apply(
            &ns,
            &format!(
                "apiVersion: keda.sh/v1alpha1\nkind: ClusterTriggerAuthentication\nmetadata: {{name: {}}}\nspec:\n  filePath: {path}\n",
                cta(suffix)
            ),
        )?;
    }
    apply(
        &ns,
        "apiVersion: v1\nkind: Secret\nmetadata: {name: pg}\nstringData:\n  connection: host=127.0.0.1 port=1 user=keda dbname=app sslmode=verify-full sslrootcert=/certs/tls.crt\n---\napiVersion: keda.sh/v1alpha1\nkind: TriggerAuthentication\nmetadata: {name: pg}\nspec:\n  secretTargetRef: [{parameter: connection, name: pg, key: connection}]\n",
    )?;
    let objects = [
        ("from-file", api_trigger(&server.url, &cta("file"))),
        ("escape", api_trigger(&server.url, &cta("escape"))),
        ("link", api_trigger(&server.url, &cta("link"))),
        ("pg", PG_TRIGGER.to_owned()),
    ];
    for (name, trigger) in &objects {
        apply(
            &ns,
            &format!(
                "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {name}}}\nspec:\n  replicas: 1\n  selector: {{matchLabels: {{app: {name}}}}}\n  template:\n    metadata: {{labels: {{app: {name}}}}}\n    spec:\n      containers: [{{name: app, image: example/app:1}}]\n"
            ),
        )?;
        apply(&ns, &scaled_object(name, trigger, "1"))?;
    }

    // The file under the root is read: the scaler authenticates with its key (401 otherwise) and the
    // object becomes active (7 > 5).
    let sos: Api<ScaledObject> = Api::namespaced(c.clone(), &ns);
    keda_e2e::wait_for(&sos, "from-file", T, |so| {
        condition(so, "Ready").is_some_and(|(s, _)| s == "True")
            && condition(so, "Active").is_some_and(|(s, _)| s == "True")
    })
    .await?;

    let outside = format!("is outside --filepath-auth-root-path ({root_arg})");
    let refusals = [
        (
            "escape",
            format!(
                "trigger 0 (metrics-api): ClusterTriggerAuthentication {}: filePath: \"../outside.json\" {outside}",
                cta("escape")
            ),
        ),
        (
            "link",
            format!(
                "trigger 0 (metrics-api): ClusterTriggerAuthentication {}: filePath: \"link.json\" leads outside --filepath-auth-root-path ({root_arg}) through a symbolic link",
                cta("link")
            ),
        ),
        (
            "pg",
            format!("trigger 0 (postgresql): sslrootcert: \"/certs/tls.crt\" {outside}"),
        ),
    ];
    for (name, want) in &refusals {
        let so = keda_e2e::wait_for(&sos, name, T, |so| {
            condition(so, "Ready").is_some_and(|(s, m)| s == "False" && m.contains(want.as_str()))
        })
        .await?;
        let (_, message) = condition(&so, "Ready").unwrap_or_default();
        if message.contains("k3y-outside") {
            bail!("{name}: the Ready message quotes the file: {message}");
        }
    }

    // The webhooks with the same root refuse what is outside it as written in the objects they read
    // (not Secrets), with the operator's message.
    let webhooks = Webhooks::start(&ns, &["--filepath-auth-root-path", &root_arg], &[]).await?;
    let _registration = webhooks.register(&ns)?;
    for ((name, trigger), (_, want)) in objects[1..].iter().zip(&refusals) {
        if *name == "link" || *name == "pg" {
            continue;
        }
        apply_until(
            &ns,
            &scaled_object(name, trigger, "2"),
            None,
            Duration::from_secs(30),
            |ok, stderr| !ok && stderr.contains(want.as_str()),
        )
        .await
        .map_err(|e| {
            anyhow::anyhow!("{name}: {e}\nwebhook log:\n{}", webhooks.process.log_tail())
        })?;
    }
    // The webhook reads no Secrets (docs/chart.md, RBAC): a path inside a Secret's connection string
    // is the operator's to refuse (above), and the webhook admits the trigger.
    let (_, pg_trigger) = &objects[3];
    apply_until(
        &ns,
        &scaled_object("pg", pg_trigger, "2"),
        None,
        Duration::from_secs(30),
        |ok, _| ok,
    )
    .await?;
    // Only the operator sees where a link leads: the webhook accepts with a warning.
    let (_, link_trigger) = &objects[2];
    apply_until(
        &ns,
        &scaled_object("link", link_trigger, "2"),
        None,
        Duration::from_secs(30),
        |ok, stderr| ok && stderr.contains("filePath \"link.json\" is read by the operator"),
    )
    .await?;

    drop(_registration);
    drop(webhooks);
    let _ = kubectl(&["delete", "namespace", &ns, "--wait=false"], None);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
