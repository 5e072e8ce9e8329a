//! `keda explain` on the local control plane: one ScaledObject (metrics-api trigger on a value the test
//! sets, 1 s polling, short cooldown and scale-down window, a fallback) walked through its states with the
//! real operator, metrics-apiserver and HPA controller; at each step `keda explain -o json` must name the
//! state and the facts behind it. Also its errors: an unknown object and a malformed argument.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use keda_e2e::metrics_stack::MetricsStack;
use keda_e2e::{MetricServer, apply, client, ensure_crds, kubectl_ok, namespace, root};

const NAME: &str = "web";

fn keda_bin() -> std::path::PathBuf {
    std::env::var_os("KEDA_BIN")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| root().join("target/debug/keda"))
}

/// Runs `keda explain ARGS…`: (exit code, stdout, stderr).
fn explain(args: &[&str]) -> Result<(i32, String, String)> {
    let out = std::process::Command::new(keda_bin())
        .arg("explain")
        .args(args)
        .output()
        .context("running keda explain")?;
    Ok((
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

/// Polls `keda explain -o json` until `ok` holds; fails with the last document and the processes' logs.
async fn explain_until(
    ns: &str,
    stack: &MetricsStack,
    what: &str,
    timeout: Duration,
    ok: impl Fn(&serde_json::Value) -> bool,
) -> Result<serde_json::Value> {
    let start = Instant::now();
    let mut last = String::new();
    while start.elapsed() < timeout {
        let (code, out, err) = explain(&[&format!("so/{NAME}"), "-n", ns, "-o", "json"])?;
        if code != 0 {
            last = format!("exit {code}: {err}");
        } else {
            let v: serde_json::Value = serde_json::from_str(&out)
                .with_context(|| format!("keda explain -o json printed {out}"))?;
            if ok(&v) {
                eprintln!(
                    "{what} after {:?}: {}",
                    start.elapsed(),
                    v["summary"].as_str().unwrap_or_default()
                );
                return Ok(v);
            }
            last = out;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    bail!(
        "keda explain did not report {what} within {timeout:?}; last:\n{last}\n{}",
        stack.logs()
    )
}

fn kind(v: &serde_json::Value) -> &str {
    v["state"]["kind"].as_str().unwrap_or_default()
}

fn in_force(v: &serde_json::Value, rule: &str) -> bool {
    v["rules"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|r| r["rule"] == rule && r["in_force"] == true)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_walks_the_states_of_a_scaled_object() -> Result<()> {
    ensure_crds().await?;
    let c = client().await?;
    let ns = namespace(&c, "explain").await?;

    // Errors first: they need no stack.
    let (code, _, err) = explain(&["so/missing", "-n", &ns])?;
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&format!("scaledobject {ns}/missing not found")),
        "{err}"
    );
    let (code, _, err) = explain(&["deployment/web", "-n", &ns])?;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("is not a ScaledObject"), "{err}");

    let stack = MetricsStack::start(&ns).await?;
    let server = MetricServer::start(35.0).await?;
    apply(
        &ns,
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  replicas: 0\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec:\n      containers: [{name: app, image: example/app:1}]\n",
    )?;
    apply(
        &ns,
        &format!(
            "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {{name: {NAME}}}\nspec:\n  scaleTargetRef: {{name: web}}\n  pollingInterval: 1\n  cooldownPeriod: 20\n  idleReplicaCount: 0\n  minReplicaCount: 1\n  maxReplicaCount: 10\n  fallback: {{failureThreshold: 3, replicas: 3}}\n  advanced:\n    horizontalPodAutoscalerConfig:\n      behavior:\n        scaleDown: {{stabilizationWindowSeconds: 45}}\n  triggers:\n  - type: metrics-api\n    metadata: {{url: \"{}\", valueLocation: value, targetValue: \"10\", activationTargetValue: \"5\"}}\n",
            server.url
        ),
    )?;
    let t = Duration::from_secs(150);

    // Active: KEDA activates 0 → 1, the HPA sizes ceil(35 / 10) = 4.
    let v = explain_until(&ns, &stack, "active at 4", t, |v| {
        kind(v) == "active" && v["target"]["replicas"] == 4 && v["hpa"]["desired_replicas"] == 4
    })
    .await?;
    assert!(in_force(&v, "activation"), "{v}");
    assert_eq!(v["hpa"]["name"], format!("keda-hpa-{NAME}"));
    assert_eq!(v["hpa"]["scale_down_stabilization_window_seconds"], 45);
    assert_eq!(v["metrics"][0]["name"], "s0-metric-api-value");
    assert_eq!(v["metrics"][0]["value"], 35.0);
    assert_eq!(v["metrics"][0]["target"], 10.0);
    assert_eq!(v["metrics"][0]["proposal"], 4);
    assert_eq!(v["metrics"][0]["computation"], "ceil(35 / 10) = 4");

    // Stabilization holding: the metric asks for 1, still active; the 45 s window keeps 4.
    server.set(Some(10.0));
    let v = explain_until(&ns, &stack, "stabilization holding", t, |v| {
        kind(v) == "stabilizing"
    })
    .await?;
    assert_eq!(v["state"]["held"], 4, "{v}");
    assert_eq!(v["state"]["asked"], 1, "{v}");
    assert_eq!(v["state"]["window_seconds"], 45, "{v}");
    assert!(
        v["state"]["until"].as_str().is_some_and(|u| !u.is_empty()),
        "{v}"
    );
    assert!(
        in_force(&v, "stabilization") && in_force(&v, "activation"),
        "{v}"
    );
    explain_until(&ns, &stack, "back to active at 1", t, |v| {
        kind(v) == "active" && v["target"]["replicas"] == 1
    })
    .await?;

    // Fallback: the backend fails more than 3 times; the HPA is steered to 3.
    server.set(None);
    let v = explain_until(&ns, &stack, "fallback at 3", t, |v| {
        kind(v) == "fallback" && v["target"]["replicas"] == 3
    })
    .await?;
    assert_eq!(v["state"]["replicas"], 3, "{v}");
    assert!(in_force(&v, "fallback"), "{v}");
    assert!(
        v["metrics"][0]["failures"].as_i64().is_some_and(|f| f > 3),
        "{v}"
    );

    // Cooling down: the backend answers 0 (below activation 5); the 20 s cooldown runs.
    server.set(Some(0.0));
    let v = explain_until(&ns, &stack, "cooling down", t, |v| {
        kind(v) == "cooling_down"
    })
    .await?;
    assert!(in_force(&v, "cooldown"), "{v}");
    assert!(
        v["state"]["seconds_left"]
            .as_i64()
            .is_some_and(|s| (0..=20).contains(&s)),
        "{v}"
    );

    // Idle: after the cooldown KEDA scales to idleReplicaCount 0.
    let v = explain_until(&ns, &stack, "idle at 0", t, |v| {
        kind(v) == "idle" && v["target"]["replicas"] == 0
    })
    .await?;
    assert!(in_force(&v, "idle"), "{v}");
    assert!(
        v["events"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|e| e["reason"] == "KEDAScaleTargetDeactivated"),
        "{v}"
    );

    // Paused: paused-replicas 2 holds the target at 2.
    kubectl_ok(
        &[
            "annotate",
            "-n",
            &ns,
            &format!("scaledobject/{NAME}"),
            "autoscaling.keda.sh/paused-replicas=2",
        ],
        None,
    )?;
    let v = explain_until(&ns, &stack, "paused at 2", t, |v| {
        kind(v) == "paused" && v["target"]["replicas"] == 2
    })
    .await?;
    assert_eq!(v["state"]["replicas"], 2, "{v}");
    assert!(in_force(&v, "paused"), "{v}");

    // The text form says the same in words.
    let (code, out, err) = explain(&[&format!("scaledobject/{NAME}"), "-n", &ns])?;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("State: paused"), "{out}");
    assert!(out.contains("paused-replicas"), "{out}");
    Ok(())
}
