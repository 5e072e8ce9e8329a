//! The ScaledObject path under what goes wrong in production: a rotated credential, a formula that does
//! not compile, an authentication provider keda-rs cannot use yet, and per-object Prometheus series that
//! must disappear with their object. Each test runs its own operator watching only its namespace.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use k8s_openapi::api::apps::v1::Deployment;
use keda_api::ScaledObject;
use keda_e2e::{
    KedaProcess, MetricServer, apply, client, ensure_crds, free_port, namespace, wait_for,
};
use kube::Api;
use kube::api::DeleteParams;

const T: Duration = Duration::from_secs(60);

fn deployment(name: &str, replicas: i32) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {name}}}\nspec:\n  replicas: {replicas}\n  selector: {{matchLabels: {{app: {name}}}}}\n  template:\n    metadata: {{labels: {{app: {name}}}}}\n    spec:\n      containers: [{{name: app, image: example/app:1}}]\n"
    )
}

fn condition(so: &ScaledObject, type_: &str) -> Option<keda_api::common::Condition> {
    so.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.r#type == type_)
        .cloned()
}

fn cond_is(so: &ScaledObject, type_: &str, status: &str) -> bool {
    condition(so, type_).is_some_and(|c| c.status == status)
}

/// Debian's `redis-server` on a loopback port, without persistence, killed when dropped.
struct Redis {
    port: u16,
    child: Child,
}

impl Redis {
    fn start(password: &str) -> Result<Redis> {
        let port = free_port("127.0.0.1")?;
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--requirepass",
                password,
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting redis-server (Debian package redis-server; `cargo xtask test` installs it)")?;
        let redis = Redis { port, child };
        let start = Instant::now();
        while redis
            .cli(password, &["PING"])
            .map(|o| o.trim() != "PONG")
            .unwrap_or(true)
        {
            if start.elapsed() > Duration::from_secs(10) {
                bail!("redis-server on port {port} did not answer PING");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(redis)
    }

    fn cli(&self, password: &str, args: &[&str]) -> Result<String> {
        let out = Command::new("redis-cli")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "--no-auth-warning",
                "-a",
                password,
            ])
            .args(args)
            .output()
            .context("running redis-cli (Debian package redis-tools)")?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn redis_secret(password: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: redis-auth}}\nstringData: {{password: {password}}}\n"
    )
}

/// Issue 13 item 1: the server's password changes, then the Secret; the loop fails, resolves the
/// TriggerAuthentication and Secret again and is Active again within two polling intervals, with no edit
/// of the ScaledObject and no restart of the operator.
#[tokio::test]
async fn a_rotated_secret_reaches_the_scale_loop() -> Result<()> {
    ensure_crds().await?;
    let c = client().await?;
    let ns = namespace(&c, "trust-rotate").await?;
    let mut op = KedaProcess::operator(&ns, "op-a")?;
    let redis = Redis::start("old-password")?;
    redis.cli("old-password", &["RPUSH", "jobs", "a", "b", "c"])?;
    apply(&ns, &deployment("worker", 0))?;
    apply(
        &ns,
        &format!(
            "{}---\napiVersion: keda.sh/v1alpha1\nkind: TriggerAuthentication\nmetadata: {{name: redis-ta}}\nspec:\n  secretTargetRef:\n  - {{parameter: password, name: redis-auth, key: password}}\n",
            redis_secret("old-password")
        ),
    )?;
    let polling = 5u64;
    apply(
        &ns,
        &format!(
            "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {{name: worker}}\nspec:\n  scaleTargetRef: {{name: worker}}\n  pollingInterval: {polling}\n  cooldownPeriod: 300\n  triggers:\n  - type: redis\n    metadata: {{address: \"127.0.0.1:{}\", listName: jobs, listLength: \"1\"}}\n    authenticationRef: {{name: redis-ta}}\n",
            redis.port
        ),
    )?;
    let sos: Api<ScaledObject> = Api::namespaced(c.clone(), &ns);
    let before = wait_for(&sos, "worker", T, |so| cond_is(so, "Active", "True")).await?;
    let generation = before.metadata.generation;

    // The password changes on the server first: polls fail with an authentication error.
    redis.cli(
        "old-password",
        &["CONFIG", "SET", "requirepass", "new-password"],
    )?;
    // Connections authenticated before the change stay authenticated: drop them, as a real rotation
    // (or a server restart) does.
    redis.cli("new-password", &["CLIENT", "KILL", "TYPE", "normal"])?;
    wait_for(&sos, "worker", T, |so| {
        condition(so, "Ready").is_some_and(|c| {
            c.reason.as_deref() == Some("PartialTriggerError") || c.status == "False"
        }) || cond_is(so, "Active", "False")
    })
    .await
    .context("the loop never noticed the changed password")?;

    // Then the Secret: no edit of the ScaledObject, no restart.
    apply(&ns, &redis_secret("new-password"))?;
    let rotated = Instant::now();
    let after = wait_for(&sos, "worker", Duration::from_secs(2 * polling + 2), |so| {
        cond_is(so, "Active", "True") && cond_is(so, "Ready", "True")
    })
    .await
    .context("the rotated Secret did not reach the scale loop within two polling intervals")?;
    eprintln!(
        "Active again {:?} after the Secret changed",
        rotated.elapsed()
    );
    assert_eq!(
        after.metadata.generation, generation,
        "the ScaledObject was not edited"
    );
    assert!(op.is_running(), "{}", op.log_tail());
    Ok(())
}

/// Issue 13 item 3: a formula that does not compile (or is nested beyond the bound) gives Ready=False with
/// the reason, and no scale loop treats the object as "any trigger active".
#[tokio::test]
async fn an_invalid_formula_is_reported_on_ready() -> Result<()> {
    ensure_crds().await?;
    let c = client().await?;
    let ns = namespace(&c, "trust-formula").await?;
    let _op = KedaProcess::operator(&ns, "op-a")?;
    let server = MetricServer::start(50.0).await?;
    apply(&ns, &deployment("web", 0))?;
    let deep = format!("{}a{}", "(".repeat(500), ")".repeat(500));
    for (name, formula) in [("syntax", "a +".to_owned()), ("deep", deep)] {
        apply(
            &ns,
            &format!(
                "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {{name: {name}}}\nspec:\n  scaleTargetRef: {{name: web}}\n  pollingInterval: 1\n  advanced:\n    scalingModifiers: {{formula: \"{formula}\", target: \"10\"}}\n  triggers:\n  - type: metrics-api\n    name: a\n    metadata: {{url: \"{}\", valueLocation: value, targetValue: \"10\"}}\n",
                server.url
            ),
        )?;
        let sos: Api<ScaledObject> = Api::namespaced(c.clone(), &ns);
        let so = wait_for(&sos, name, T, |so| cond_is(so, "Ready", "False")).await?;
        let ready = condition(&so, "Ready").expect("Ready");
        assert_eq!(
            ready.reason.as_deref(),
            Some("ScaledObjectCheckFailed"),
            "{ready:?}"
        );
        assert!(
            ready
                .message
                .as_deref()
                .unwrap_or_default()
                .contains("formula"),
            "{name}: {ready:?}"
        );
        assert!(
            cond_is(&so, "Active", "Unknown"),
            "{name}: {:?}",
            condition(&so, "Active")
        );
    }
    // The metric server says 50 (active), but nothing may scale the target from a broken formula.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let d: Api<Deployment> = Api::namespaced(c.clone(), &ns);
    assert_eq!(d.get("web").await?.spec.and_then(|s| s.replicas), Some(0));
    Ok(())
}

/// Issue 13 item 8: an authentication provider keda-rs does not implement yet is loud (Ready=False naming
/// it), never an unauthenticated request.
#[tokio::test]
async fn an_unsupported_pod_identity_is_named_on_ready() -> Result<()> {
    ensure_crds().await?;
    let c = client().await?;
    let ns = namespace(&c, "trust-identity").await?;
    let _op = KedaProcess::operator(&ns, "op-a")?;
    let server = MetricServer::start(50.0).await?;
    apply(&ns, &deployment("web", 0))?;
    apply(
        &ns,
        &format!(
            "apiVersion: keda.sh/v1alpha1\nkind: TriggerAuthentication\nmetadata: {{name: azure}}\nspec:\n  podIdentity: {{provider: azure-workload}}\n---\napiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {{name: web}}\nspec:\n  scaleTargetRef: {{name: web}}\n  pollingInterval: 1\n  triggers:\n  - type: metrics-api\n    metadata: {{url: \"{}\", valueLocation: value, targetValue: \"10\"}}\n    authenticationRef: {{name: azure}}\n",
            server.url
        ),
    )?;
    let sos: Api<ScaledObject> = Api::namespaced(c.clone(), &ns);
    let so = wait_for(&sos, "web", T, |so| cond_is(so, "Ready", "False")).await?;
    let message = condition(&so, "Ready")
        .and_then(|c| c.message)
        .unwrap_or_default();
    assert!(message.contains("azure-workload"), "{message}");
    let d: Api<Deployment> = Api::namespaced(c.clone(), &ns);
    assert_eq!(d.get("web").await?.spec.and_then(|s| s.replicas), Some(0));
    Ok(())
}

async fn scrape(url: &str) -> Result<String> {
    Ok(reqwest::get(url).await?.text().await?)
}

/// Issue 13 item 7: per-object series carry upstream's `scaler` label (the trigger's name, else the Go
/// type name) and are deleted with their ScaledObject.
#[tokio::test]
async fn per_object_series_go_away_with_their_object() -> Result<()> {
    ensure_crds().await?;
    let c = client().await?;
    let ns = namespace(&c, "trust-series").await?;
    let port = free_port("127.0.0.1")?;
    let addr = format!("127.0.0.1:{port}");
    let _op = KedaProcess::operator_with(&ns, "op-a", &addr, &[])?;
    let server = MetricServer::start(3.0).await?;
    apply(&ns, &deployment("web", 1))?;
    apply(
        &ns,
        &format!(
            "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {{name: web}}\nspec:\n  scaleTargetRef: {{name: web}}\n  pollingInterval: 1\n  minReplicaCount: 1\n  triggers:\n  - type: metrics-api\n    metadata: {{url: \"{0}\", valueLocation: value, targetValue: \"10\"}}\n  - type: metrics-api\n    name: named\n    metadata: {{url: \"{0}\", valueLocation: value, targetValue: \"10\"}}\n",
            server.url
        ),
    )?;
    let url = format!("http://{addr}/metrics");
    let object = "scaledObject=\"web\"";
    let start = Instant::now();
    let text = loop {
        let text = scrape(&url).await.unwrap_or_default();
        if text
            .lines()
            .filter(|l| l.starts_with("keda_scaler_metrics_value{") && l.contains(object))
            .count()
            == 2
        {
            break text;
        }
        if start.elapsed() > T {
            bail!("no keda_scaler_metrics_value series for web:\n{text}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let values: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("keda_scaler_metrics_value{") && l.contains(object))
        .collect();
    assert!(
        values
            .iter()
            .any(|l| l.contains("scaler=\"metricsAPIScaler\"")),
        "{values:?}"
    );
    assert!(
        values.iter().any(|l| l.contains("scaler=\"named\"")),
        "{values:?}"
    );

    let sos: Api<ScaledObject> = Api::namespaced(c.clone(), &ns);
    sos.delete("web", &DeleteParams::default()).await?;
    let start = Instant::now();
    loop {
        let text = scrape(&url).await?;
        let left: Vec<&str> = text
            .lines()
            .filter(|l| !l.starts_with('#') && l.contains(object))
            .collect();
        if left.is_empty() {
            break;
        }
        if start.elapsed() > T {
            bail!("series of the deleted ScaledObject are still exported: {left:?}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Ok(())
}
