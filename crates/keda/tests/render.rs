//! `keda render` end to end: the built binary on the repository's examples and the guide's objects, and
//! the rendered HPA against what the operator's own path (its trigger parse, then `build_hpa`) produces.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn keda_render(args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_keda"))
        .arg("render")
        .args(args)
        .env_remove("KEDA_CLUSTER_OBJECT_NAMESPACE")
        .output()
        .expect("keda render runs");
    Run {
        code: out.status.code().expect("exit code"),
        stdout: String::from_utf8(out.stdout).expect("utf-8 stdout"),
        stderr: String::from_utf8(out.stderr).expect("utf-8 stderr"),
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn items(run: &Run) -> Vec<Value> {
    let list: Value = serde_json::from_str(&run.stdout).expect("-o json prints JSON");
    assert_eq!(list["kind"], "List", "{}", run.stdout);
    list["items"].as_array().expect("items").clone()
}

/// The plain manifests under examples/ (the chart's templates are Helm, not YAML) and the guide's objects.
fn inputs() -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![root().join("examples")];
    while let Some(dir) = dirs.pop() {
        for e in std::fs::read_dir(&dir).expect("read examples") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                if p.file_name().is_some_and(|n| n != "templates") {
                    dirs.push(p);
                }
            } else if p.extension().is_some_and(|x| x == "yaml")
                && std::fs::read_to_string(&p).is_ok_and(|t| t.contains("apiVersion: keda.sh/"))
            {
                out.push(p);
            }
        }
    }
    assert!(!out.is_empty(), "examples/ holds KEDA manifests");
    for f in [
        "seed-values-dev.yaml",
        "scaling-deployments.yaml",
        "scaling-jobs.yaml",
    ] {
        out.push(root().join("crates/keda-api/tests/fixtures").join(f));
    }
    out
}

#[test]
fn every_example_renders_one_object_per_scaled_object_and_scaled_job() {
    for path in inputs() {
        let text = std::fs::read_to_string(&path).expect("read");
        let scaled = text.matches("\nkind: ScaledObject\n").count()
            + text.matches("\nkind: ScaledJob\n").count();
        let paused = text.matches("autoscaling.keda.sh/paused: \"true\"").count()
            + text.matches("autoscaling.keda.sh/paused-replicas:").count();
        let run = keda_render(&[path.to_str().expect("utf-8 path"), "-o", "json"]);
        assert_eq!(run.code, 0, "{}: {}", path.display(), run.stderr);
        let items = items(&run);
        assert_eq!(
            items.len(),
            scaled - paused,
            "{}: {}\n{}",
            path.display(),
            run.stdout,
            run.stderr
        );
        for item in &items {
            match item["kind"].as_str() {
                Some("HorizontalPodAutoscaler") => {
                    assert_eq!(item["apiVersion"], "autoscaling/v2");
                    let metrics = item["spec"]["metrics"].as_array().expect("metrics");
                    assert!(!metrics.is_empty(), "{item}");
                }
                Some("Job") => assert_eq!(item["apiVersion"], "batch/v1"),
                other => panic!("{}: unexpected kind {other:?}", path.display()),
            }
        }
        if paused > 0 {
            assert!(
                run.stderr.contains("\"code\": \"paused\""),
                "{}",
                run.stderr
            );
        }
    }
}

#[test]
fn yaml_output_is_one_document_per_object() {
    let seed = root().join("crates/keda-api/tests/fixtures/seed-values-dev.yaml");
    let run = keda_render(&[seed.to_str().expect("path")]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout.matches("---\n").count(), 1, "{}", run.stdout);
    assert!(run.stdout.contains("kind: HorizontalPodAutoscaler\n"));
    assert!(
        run.stdout
            .contains("name: keda-hpa-example-app-newrelic-throughput-scaler\n")
    );
}

#[test]
fn findings_that_prevent_rendering_are_reported_as_lint_reports_them() {
    let dir = std::env::temp_dir().join(format!("keda-render-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let bad = dir.join("bad.yaml");
    std::fs::write(
        &bad,
        "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {name: bad, namespace: ns}\nspec:\n  scaleTargetRef: {name: w}\n  minReplicaCount: 5\n  maxReplicaCount: 2\n  triggers: [{type: cron-typo, metadata: {}}]\n---\napiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {name: good, namespace: ns}\nspec:\n  scaleTargetRef: {name: v}\n  triggers: [{type: cpu, metricType: Utilization, metadata: {value: '50'}}]\n",
    )
    .expect("write");
    let run = keda_render(&[bad.to_str().expect("path"), "-o", "json"]);
    let lint = Command::new(env!("CARGO_BIN_EXE_keda"))
        .args(["lint", bad.to_str().expect("path")])
        .output()
        .expect("keda lint runs");
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let results: Value = serde_json::from_str(&run.stderr).expect("findings as lint's JSON");
    let lint_text = String::from_utf8(lint.stdout).expect("utf-8");
    let results = results["results"].as_array().expect("results");
    assert!(results.len() >= 2, "{results:?}");
    for r in results {
        assert_eq!(r["name"], "bad", "{r}");
        // The same findings keda lint prints.
        assert!(
            lint_text.contains(r["message"].as_str().expect("message")),
            "{r} not in lint's output:\n{lint_text}"
        );
    }
    assert!(results.iter().any(|r| r["code"] == "unknown-trigger-type"));
    assert!(results.iter().any(|r| r["code"] == "incorrect-replicas"));
    // The valid object still renders.
    let items = items(&run);
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["metadata"]["name"], "keda-hpa-good");
}

#[test]
fn unreadable_input_exits_2_naming_the_path() {
    let run = keda_render(&["/nonexistent/so.yaml"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("/nonexistent/so.yaml"),
        "{}",
        run.stderr
    );
}

/// A ScaledObject as read from a cluster (uid set), with labels, an excluded label, annotations, a
/// renamed HPA, behavior and two kinds of trigger.
const KNOWN: &str = r#"
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata:
  name: checkout
  namespace: shop
  uid: 6f1c1f55-3a51-4a1e-9b0e-1d1c0a7e2f10
  labels: {team: payments, tier: web}
  annotations:
    scaledobject.keda.sh/hpa-excluded-labels: tier
spec:
  scaleTargetRef: {name: checkout}
  minReplicaCount: 2
  maxReplicaCount: 12
  advanced:
    horizontalPodAutoscalerConfig:
      name: checkout-hpa
      behavior:
        scaleDown:
          stabilizationWindowSeconds: 600
        scaleUp:
          selectPolicy: Min
          policies: [{type: Pods, value: 2, periodSeconds: 30}]
  triggers:
    - type: new-relic
      metadata:
        nrql: SELECT count(*) FROM Transaction
        threshold: '70.5'
        activationThreshold: '3'
      authenticationRef: {name: nr}
    - type: cpu
      metricType: Utilization
      metadata: {value: '60', containerName: app}
"#;

const KNOWN_AUTH: &str = r#"
---
apiVersion: keda.sh/v1alpha1
kind: TriggerAuthentication
metadata: {name: nr, namespace: shop}
spec:
  secretTargetRef:
    - {parameter: queryKey, name: nr, key: key}
    - {parameter: account, name: nr, key: account}
    - {parameter: region, name: nr, key: region}
---
apiVersion: v1
kind: Secret
metadata: {name: nr, namespace: shop}
stringData: {key: secret-key, account: '12345', region: EU}
"#;

#[test]
fn the_rendered_hpa_is_the_one_the_operator_builds_field_by_field() {
    let dir = std::env::temp_dir().join(format!("keda-render-known-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let input = dir.join("so.yaml");
    std::fs::write(&input, format!("{KNOWN}{KNOWN_AUTH}")).expect("write");
    let run = keda_render(&[input.to_str().expect("path"), "-o", "json"]);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let items = items(&run);
    assert_eq!(items.len(), 1);
    let rendered = &items[0];

    // The operator's path: the resolved parameters, its trigger parse, its conversion, its builder.
    let mut so: keda_api::ScaledObject = serde_yaml_ng::from_str(KNOWN).expect("parses");
    // It adopts the object first (finalizer, name label), in one write, before it builds the HPA.
    let adoption = keda_operator::scaled_object::adoption::adoption_patch(&so).expect("adopts");
    let mut stored = serde_json::to_value(&so).expect("serialises");
    // The API server tests the missing finalizer list as null.
    stored["metadata"]["finalizers"] = Value::Null;
    json_patch::patch(&mut stored, &adoption).expect("the adoption patch applies");
    so = serde_json::from_value(stored).expect("parses");
    let resolved = vec![
        keda_operator::triggers::ResolvedTrigger {
            env: BTreeMap::new(),
            auth_params: BTreeMap::from(
                [
                    ("queryKey", "secret-key"),
                    ("account", "12345"),
                    ("region", "EU"),
                ]
                .map(|(k, v)| (k.to_owned(), v.to_owned())),
            ),
        },
        keda_operator::triggers::ResolvedTrigger {
            env: BTreeMap::new(),
            auth_params: BTreeMap::new(),
        },
    ];
    let parsed = keda_operator::triggers::parse_all(&so, &resolved, &Default::default())
        .expect("the operator parses the triggers");
    let metrics: Vec<_> = parsed.iter().map(|t| t.trigger_metric()).collect();
    let hpa = keda_core::hpa::build_hpa(&so, &metrics, keda_operator::VERSION)
        .expect("the operator builds the HPA");
    let operator = serde_json::to_value(&hpa).expect("serialises");

    // Field by field, so a difference names its field.
    let mut fields = Vec::new();
    leaves("", &operator, &mut fields);
    let mut rendered_fields = Vec::new();
    leaves("", rendered, &mut rendered_fields);
    assert_eq!(rendered_fields, fields);

    // And what those fields are, so the comparison is about a real HPA.
    for (pointer, want) in [
        ("/metadata/name", "checkout-hpa"),
        ("/metadata/namespace", "shop"),
        ("/metadata/labels/team", "payments"),
        ("/metadata/labels/app.kubernetes.io~1part-of", "checkout"),
        ("/metadata/labels/scaledobject.keda.sh~1name", "checkout"),
        (
            "/metadata/ownerReferences/0/uid",
            "6f1c1f55-3a51-4a1e-9b0e-1d1c0a7e2f10",
        ),
        ("/spec/metrics/0/type", "ContainerResource"),
        ("/spec/metrics/1/external/metric/name", "s0-new-relic"),
        ("/spec/metrics/1/external/target/averageValue", "70.500"),
        ("/spec/behavior/scaleUp/selectPolicy", "Min"),
    ] {
        assert_eq!(
            rendered.pointer(pointer).and_then(Value::as_str),
            Some(want),
            "{pointer}"
        );
    }
    assert_eq!(
        rendered.pointer("/metadata/labels/tier"),
        None,
        "excluded label"
    );
    assert_eq!(rendered["spec"]["minReplicas"], 2);
    assert_eq!(rendered["spec"]["maxReplicas"], 12);
    assert_eq!(
        rendered["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"],
        600
    );
}

/// Every leaf of a JSON value as (JSON pointer, value).
fn leaves(prefix: &str, v: &Value, out: &mut Vec<(String, Value)>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                leaves(&format!("{prefix}/{k}"), v, out);
            }
        }
        Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                leaves(&format!("{prefix}/{i}"), v, out);
            }
        }
        _ => out.push((prefix.to_owned(), v.clone())),
    }
}
