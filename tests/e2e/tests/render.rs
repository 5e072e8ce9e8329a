//! `keda render` against the operator: for the same ScaledObjects, the HPA the built `keda render -o json`
//! prints equals, field by field, the HPA a real `keda operator` creates on the local control plane (name,
//! namespace, labels, annotations, owner references without their uid, spec). Only what the API server
//! sets itself is left out (uid, resourceVersion, generation, creationTimestamp, managedFields, status);
//! its defaulting (an HPA behavior's unset `selectPolicy`, `stabilizationWindowSeconds`) is applied to the
//! rendered HPA by a server-side dry run of it, as it was to the operator's.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use keda_e2e::{
    KedaProcess, MetricServer, apply, client, ensure_crds, kubectl_ok, namespace, root,
};
use kube::Api;
use serde_json::Value;

/// Three ScaledObjects in `ns`: a plain metrics-api one; one with HPA behavior, a custom HPA name and
/// scalingModifiers over two named triggers; a cron + metrics-api pair (the latter as a `Value` metric).
fn scaled_objects(ns: &str, url: &str) -> String {
    format!(
        r#"apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {{name: plain, namespace: {ns}}}
spec:
  scaleTargetRef: {{name: app-plain}}
  triggers:
  - type: metrics-api
    metadata: {{url: "{url}", valueLocation: value, targetValue: "10"}}
---
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {{name: advanced, namespace: {ns}, labels: {{team: orders}}}}
spec:
  scaleTargetRef: {{name: app-advanced}}
  minReplicaCount: 2
  maxReplicaCount: 20
  advanced:
    horizontalPodAutoscalerConfig:
      name: advanced-hpa
      behavior:
        scaleDown:
          stabilizationWindowSeconds: 60
          policies: [{{type: Percent, value: 50, periodSeconds: 30}}]
        scaleUp:
          selectPolicy: Max
          policies: [{{type: Pods, value: 3, periodSeconds: 15}}, {{type: Percent, value: 100, periodSeconds: 15}}]
    scalingModifiers:
      formula: "a + b"
      target: "12"
      activationTarget: "2"
      metricType: AverageValue
  triggers:
  - type: metrics-api
    name: a
    metadata: {{url: "{url}", valueLocation: value, targetValue: "5"}}
  - type: metrics-api
    name: b
    metadata: {{url: "{url}", valueLocation: value, targetValue: "5"}}
---
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {{name: cron-and-api, namespace: {ns}}}
spec:
  scaleTargetRef: {{name: app-cron}}
  minReplicaCount: 1
  maxReplicaCount: 7
  triggers:
  - type: cron
    metadata: {{timezone: UTC, start: "0 8 * * *", end: "0 18 * * *", desiredReplicas: "4"}}
  - type: metrics-api
    metricType: Value
    metadata: {{url: "{url}", valueLocation: value, targetValue: "7", activationTargetValue: "1"}}
"#
    )
}

fn deployment(name: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {name}}}\nspec:\n  replicas: 1\n  selector: {{matchLabels: {{app: {name}}}}}\n  template:\n    metadata: {{labels: {{app: {name}}}}}\n    spec:\n      containers: [{{name: app, image: example/app:1}}]\n---\n"
    )
}

/// The fields both sides must agree on: what the API server does not set itself.
fn comparable(hpa: &Value) -> Value {
    let meta = &hpa["metadata"];
    let owners: Vec<Value> = meta["ownerReferences"]
        .as_array()
        .map(|refs| {
            refs.iter()
                .map(|r| {
                    let mut r = r.clone();
                    if let Some(o) = r.as_object_mut() {
                        o.remove("uid");
                    }
                    r
                })
                .collect()
        })
        .unwrap_or_default();
    serde_json::json!({
        "apiVersion": hpa["apiVersion"],
        "kind": hpa["kind"],
        "name": meta["name"],
        "namespace": meta["namespace"],
        "labels": meta["labels"],
        "annotations": meta["annotations"],
        "ownerReferences": owners,
        "spec": hpa["spec"],
    })
}

/// `hpa` as the API server would store it (a server-side dry-run create), so its defaulting applies. The
/// owner's uid, which `keda render` cannot know, is a placeholder (owner uids are not compared).
fn defaulted(ns: &str, hpa: &Value) -> Result<Value> {
    let mut hpa = hpa.clone();
    if let Some(owners) = hpa["metadata"]["ownerReferences"].as_array_mut() {
        for o in owners {
            o["uid"] = Value::from("00000000-0000-0000-0000-000000000000");
        }
    }
    let out = kubectl_ok(
        &[
            "create",
            "--dry-run=server",
            "-n",
            ns,
            "-o",
            "json",
            "-f",
            "-",
        ],
        Some(&serde_json::to_string(&hpa)?),
    )?;
    Ok(serde_json::from_str(&out)?)
}

/// `keda render -o json` of `yaml`: the HPAs by name.
fn render(yaml: &str) -> Result<Vec<Value>> {
    let dir = root().join("target/keda-e2e-render");
    std::fs::create_dir_all(&dir)?;
    let file = dir.join(format!("{}.yaml", std::process::id()));
    std::fs::write(&file, yaml)?;
    let bin = std::env::var_os("KEDA_BIN")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| root().join("target/debug/keda"));
    let out = std::process::Command::new(&bin)
        .args(["render", "-o", "json"])
        .arg(&file)
        .output()
        .with_context(|| format!("running {} render", bin.display()));
    let _ = std::fs::remove_file(&file);
    let out = out?;
    if !out.status.success() {
        bail!(
            "keda render failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let list: Value = serde_json::from_slice(&out.stdout)?;
    Ok(list["items"].as_array().cloned().unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rendered_hpas_equal_the_operators() -> Result<()> {
    ensure_crds().await?;
    let c = client().await?;
    let ns = namespace(&c, "render").await?;
    let server = MetricServer::start(3.0).await?;
    let objects = scaled_objects(&ns, &server.url);

    let rendered = render(&objects)?;
    let names: Vec<&str> = rendered
        .iter()
        .filter_map(|o| o["metadata"]["name"].as_str())
        .collect();
    assert_eq!(
        names,
        ["keda-hpa-plain", "advanced-hpa", "keda-hpa-cron-and-api"],
        "rendered: {rendered:#?}"
    );

    // Before the operator creates them (a dry run of an existing name fails).
    let rendered = rendered
        .iter()
        .map(|h| defaulted(&ns, h))
        .collect::<Result<Vec<_>>>()?;

    let _operator = KedaProcess::operator(&ns, "render-op")?;
    apply(
        &ns,
        &["app-plain", "app-advanced", "app-cron"]
            .map(deployment)
            .concat(),
    )?;
    apply(&ns, &objects)?;

    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(c.clone(), &ns);
    let mut failures = Vec::new();
    for want in &rendered {
        let name = want["metadata"]["name"].as_str().unwrap_or_default();
        let want = comparable(want);
        // The operator may still be completing the object right after creating it: equal within 60 s.
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut last = Value::Null;
        loop {
            if let Some(hpa) = hpas.get_opt(name).await? {
                last = comparable(&serde_json::to_value(&hpa)?);
                if last == want {
                    break;
                }
            }
            if Instant::now() > deadline {
                failures.push(format!(
                    "{name}:\n--- keda render ---\n{}\n--- operator ---\n{}",
                    serde_yaml_ng::to_string(&want)?,
                    serde_yaml_ng::to_string(&last)?
                ));
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    Ok(())
}
