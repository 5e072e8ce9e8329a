//! `keda lint` end to end: the built binary on the seed guide's manifests and broken variants of them.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

const SEED: &str = include_str!("../../keda-api/tests/fixtures/seed-values-dev.yaml");
const SO: &str = "ScaledObject default/example-app-newrelic-throughput-scaler";

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn lines(&self, severity: &str) -> Vec<&str> {
        self.stdout
            .lines()
            .filter(|l| l.starts_with(&format!("{severity} ")))
            .collect()
    }

    fn has_line(&self, parts: &[&str]) -> bool {
        self.stdout
            .lines()
            .any(|l| parts.iter().all(|p| l.contains(p)))
    }
}

fn keda_lint(args: &[&str], stdin: Option<&str>) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_keda"))
        .arg("lint")
        .args(args)
        .env_remove("KEDA_CLUSTER_OBJECT_NAMESPACE")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn keda");
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin");
        pipe.write_all(input.as_bytes()).expect("write stdin");
    }
    let out = child.wait_with_output().expect("keda lint runs");
    Run {
        code: out.status.code().expect("exit code"),
        stdout: String::from_utf8(out.stdout).expect("utf-8 stdout"),
        stderr: String::from_utf8(out.stderr).expect("utf-8 stderr"),
    }
}

fn stdin(input: &str) -> Run {
    keda_lint(&["-"], Some(input))
}

/// The seed set with `from` replaced by `to` (which must occur).
fn seed_with(from: &str, to: &str) -> String {
    assert!(SEED.contains(from), "{from:?} not in the seed fixture");
    SEED.replacen(from, to, 1)
}

/// The seed set without its documents of `kind`.
fn seed_without(kind: &str) -> String {
    SEED.split("\n---\n")
        .filter(|d| !d.contains(&format!("\nkind: {kind}\n")))
        .collect::<Vec<_>>()
        .join("\n---\n")
}

/// A temporary directory for one test, removed first if a previous run left it.
fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("keda-lint-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

#[test]
fn new_relic_is_registered_so_the_seed_cases_use_it() {
    assert!(
        keda_scalers::registered_types().any(|t| t == "new-relic"),
        "the seed guide's trigger type must be known to this build"
    );
}

#[test]
fn the_seed_guide_set_passes() {
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../keda-api/tests/fixtures/seed-values-dev.yaml"
    );
    let run = keda_lint(&[fixture], None);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(run.lines("error").is_empty(), "{}", run.stdout);
    // The guide's flapping pitfall: no scaleDown stabilization window in values_dev.yaml.
    assert!(run.has_line(&[
        "warning",
        SO,
        "spec.advanced.horizontalPodAutoscalerConfig.behavior.scaleDown.stabilizationWindowSeconds:",
        "[no-scale-down-stabilization]",
    ]));
    // idleReplicaCount 0 makes cooldownPeriod and pollingInterval meaningful: no warning for them.
    assert!(!run.stdout.contains("cooldown-without-scale-to-zero"));
    assert!(!run.stdout.contains("polling-interval-no-effect"));
}

#[test]
fn the_guides_stabilization_window_silences_the_flapping_warning() {
    let run = stdin(&seed_with(
        "    restoreToOriginalReplicaCount: true\n",
        "    restoreToOriginalReplicaCount: true\n    horizontalPodAutoscalerConfig:\n      behavior:\n        scaleDown:\n          stabilizationWindowSeconds: 600\n",
    ));
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(run.stdout, "", "no finding at all expected");
}

#[test]
fn missing_nrql_is_an_error_naming_object_trigger_and_field() {
    let run = stdin(&seed_with(
        "        nrql: SELECT rate(count(*), 10 SECOND) FROM Transaction WHERE appName='dev-example-app' SINCE 1 MINUTE AGO\n",
        "",
    ));
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(
        run.has_line(&[
            "error",
            SO,
            "spec.triggers[0].metadata.nrql:",
            "trigger 0 (new-relic)",
            "is required",
            "[trigger-parse]",
        ]),
        "{}",
        run.stdout
    );
}

#[test]
fn a_non_numeric_threshold_is_an_error() {
    let run = stdin(&seed_with("threshold: '70'", "threshold: 'seventy'"));
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(
        run.has_line(&[
            "error",
            SO,
            "spec.triggers[0].metadata.threshold:",
            "trigger 0 (new-relic)",
            "\"seventy\" is not a number",
        ]),
        "{}",
        run.stdout
    );
}

#[test]
fn a_reference_to_a_missing_trigger_authentication_is_an_error() {
    let run = stdin(&seed_with(
        "      authenticationRef:\n        name: example-app-ta",
        "      authenticationRef:\n        name: example-app-typo",
    ));
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(
        run.has_line(&[
            "error",
            SO,
            "spec.triggers[0].authenticationRef:",
            "TriggerAuthentication default/example-app-typo not found",
            "[missing-reference]",
        ]),
        "{}",
        run.stdout
    );
    // Only that error: the parameters the missing object would supply are not reported again.
    assert_eq!(run.lines("error").len(), 1, "{}", run.stdout);
}

#[test]
fn an_unknown_trigger_type_is_an_error() {
    let run = stdin(&seed_with("- type: new-relic", "- type: new-relik"));
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(
        run.has_line(&[
            "error",
            SO,
            "spec.triggers[0].type:",
            "unknown trigger type \"new-relik\"",
            "[unknown-trigger-type]",
        ]),
        "{}",
        run.stdout
    );
}

#[test]
fn a_secret_key_that_does_not_exist_is_an_error() {
    let run = stdin(&seed_with("  apiKey: NRAK-", "  apiKeyy: NRAK-"));
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(
        run.has_line(&[
            "error",
            SO,
            "spec.triggers[0].authenticationRef:",
            "Secret default/keda-new-relic-secret has no key \"apiKey\"",
            "secretTargetRef[0] (parameter queryKey) of TriggerAuthentication default/example-app-ta",
        ]),
        "{}",
        run.stdout
    );
}

#[test]
fn secret_data_is_base64_and_checked_like_string_data() {
    // account "1234567" and region "US" as base64 `data`, apiKey in stringData.
    let set = seed_with(
        "stringData:\n  apiKey: NRAK-EXAMPLEEXAMPLEEXAMPLE\n  account: \"1234567\"\n  region: US\n",
        "data:\n  account: MTIzNDU2Nw==\n  region: VVM=\nstringData:\n  apiKey: NRAK-EXAMPLEEXAMPLEEXAMPLE\n",
    );
    let run = stdin(&set);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    // A non-numeric account from the Secret reaches the scaler's parse.
    let run = stdin(&set.replace("MTIzNDU2Nw==", "YWJj"));
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(
        run.has_line(&[
            "spec.triggers[0].metadata.account:",
            "\"abc\" is not an integer"
        ]),
        "{}",
        run.stdout
    );
}

#[test]
fn references_outside_the_set_are_assumed_with_a_warning() {
    // The Secret is not in the input: its parameters count as present.
    let run = stdin(&seed_without("Secret"));
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.has_line(&[
            "warning",
            SO,
            "spec.triggers[0].authenticationRef:",
            "Secret default/keda-new-relic-secret is not in the input: assumed to exist",
            "account, queryKey, region",
            "[assumed-reference]",
        ]),
        "{}",
        run.stdout
    );
    // No TriggerAuthentication at all in the input: the referenced one is assumed.
    let run = stdin(&seed_without("TriggerAuthentication"));
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.has_line(&[
            "warning",
            "TriggerAuthentication default/example-app-ta is not in the input",
            "[assumed-reference]",
        ]),
        "{}",
        run.stdout
    );
    // Values that are in the input are still checked.
    let run = stdin(&seed_without("Secret").replace("threshold: '70'", "threshold: x"));
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(
        run.has_line(&["spec.triggers[0].metadata.threshold:"]),
        "{}",
        run.stdout
    );
}

#[test]
fn json_output_has_the_contract_shape() {
    let run = keda_lint(
        &["--output", "json", "-"],
        Some(&seed_with("threshold: '70'", "threshold: 'seventy'")),
    );
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON output");
    let results = doc["results"].as_array().expect("results array");
    assert!(!results.is_empty());
    let keys = [
        "code",
        "field",
        "kind",
        "message",
        "name",
        "namespace",
        "severity",
    ];
    for r in results {
        let obj = r.as_object().expect("result object");
        let mut got: Vec<&str> = obj.keys().map(String::as_str).collect();
        got.sort();
        assert_eq!(got, keys);
        assert!(obj.values().all(serde_json::Value::is_string));
        assert!(matches!(r["severity"].as_str(), Some("error" | "warning")));
    }
    let error = results
        .iter()
        .find(|r| r["severity"] == "error")
        .expect("an error");
    assert_eq!(error["kind"], "ScaledObject");
    assert_eq!(error["namespace"], "default");
    assert_eq!(error["name"], "example-app-newrelic-throughput-scaler");
    assert_eq!(error["field"], "spec.triggers[0].metadata.threshold");
    assert_eq!(error["code"], "trigger-parse");

    // A clean set gives an empty list.
    let run = keda_lint(
        &["-o", "json", "-"],
        Some("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n"),
    );
    assert_eq!(run.code, 0);
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON output");
    assert_eq!(doc, serde_json::json!({"results": []}));
}

#[test]
fn unreadable_input_exits_2() {
    let run = keda_lint(&["/nonexistent/keda-lint-input.yaml"], None);
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("/nonexistent/keda-lint-input.yaml"),
        "{}",
        run.stderr
    );
    assert_eq!(run.stdout, "");

    let run = stdin("apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {name: [x\n");
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("invalid YAML"), "{}", run.stderr);

    let dir = temp_dir("binary");
    std::fs::write(dir.join("bad.yaml"), [0xff, 0xfe, 0x00]).expect("write");
    let run = keda_lint(&[dir.to_str().expect("utf-8 path")], None);
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_schema_mismatch_is_an_error_with_its_path() {
    let run = stdin(&seed_with("maxReplicaCount:  5", "maxReplicaCount:  five"));
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(
        run.has_line(&["error", SO, "spec.maxReplicaCount:", "[invalid-object]"]),
        "{}",
        run.stdout
    );
}

#[test]
fn directories_are_read_recursively() {
    let dir = temp_dir("dir");
    let docs: Vec<&str> = SEED.split("\n---\n").collect();
    std::fs::create_dir_all(dir.join("keda/nested")).expect("mkdir");
    std::fs::create_dir_all(dir.join(".git")).expect("mkdir");
    std::fs::write(dir.join("keda/scaledobject.yaml"), docs[0]).expect("write");
    std::fs::write(dir.join("keda/nested/ta.yml"), docs[1]).expect("write");
    std::fs::write(dir.join("secret.yaml"), docs[2]).expect("write");
    // Not manifests: ignored.
    std::fs::write(dir.join("README.md"), "not: [yaml").expect("write");
    std::fs::write(dir.join(".git/config.yaml"), "{{ broken").expect("write");
    // JSON manifests are read too.
    std::fs::write(
        dir.join("cm.json"),
        r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"},"data":{"a":"b"}}"#,
    )
    .expect("write");
    let run = keda_lint(&[dir.to_str().expect("utf-8 path")], None);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(!run.stdout.contains("assumed-reference"), "{}", run.stdout);

    // Without the Secret file the set misses it: a warning, still exit 0.
    std::fs::remove_file(dir.join("secret.yaml")).expect("rm");
    let run = keda_lint(&[dir.join("keda").to_str().expect("utf-8 path")], None);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("[assumed-reference]"), "{}", run.stdout);
    let _ = std::fs::remove_dir_all(&dir);
}

const APP: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: api, namespace: shop}
spec:
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api, tier: web}}
    spec:
      containers:
      - name: api
        image: api:1
        env:
        - name: REDIS_ADDR
          valueFrom: {configMapKeyRef: {name: redis, key: address}}
        lifecycle:
          preStop:
            exec:
              command: [sleep, "50"]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: redis, namespace: shop}
data: {address: "redis.shop:6379"}
---
apiVersion: v1
kind: Service
metadata: {name: api, namespace: shop}
spec:
  selector: {app: api}
  ports: [{port: 80}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: api
  namespace: shop
  annotations:
    alb.ingress.kubernetes.io/scheme: internet-facing
spec:
  ingressClassName: alb
  rules:
  - http:
      paths:
      - path: /
        pathType: Prefix
        backend: {service: {name: api, port: {number: 80}}}
---
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: api, namespace: shop}
spec:
  scaleTargetRef: {name: api}
  minReplicaCount: 2
  cooldownPeriod: 120
  advanced:
    horizontalPodAutoscalerConfig:
      behavior: {scaleDown: {stabilizationWindowSeconds: 600}}
  triggers:
  - type: redis
    metadata: {addressFromEnv: REDIS_ADDR, listName: jobs, listLength: "5"}
"#;

#[test]
fn the_guides_graceful_shutdown_and_cooldown_pitfalls_are_warnings() {
    let run = stdin(APP);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.has_line(&[
            "warning ScaledObject shop/api spec.cooldownPeriod:",
            "[cooldown-without-scale-to-zero]",
        ]),
        "{}",
        run.stdout
    );
    assert!(
        run.has_line(&[
            "warning Deployment shop/api spec.template.spec.terminationGracePeriodSeconds:",
            "30 (the default)",
            "preStop sleep of container \"api\" (50 s)",
            "[grace-period-shorter-than-prestop]",
        ]),
        "{}",
        run.stdout
    );
    assert!(
        run.has_line(&[
            "warning Deployment shop/api spec.template.spec.terminationGracePeriodSeconds:",
            "AWS ALB Ingress shop/api (Service api)",
            "[alb-grace-period]",
        ]),
        "{}",
        run.stdout
    );
    assert_eq!(run.lines("warning").len(), 3, "{}", run.stdout);

    // The guide's fix: a grace period above both the preStop sleep and the ALB idle timeout.
    let fixed = APP.replace(
        "      containers:\n",
        "      terminationGracePeriodSeconds: 65\n      containers:\n",
    );
    let run = stdin(&fixed);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(!run.stdout.contains("grace-period"), "{}", run.stdout);
    assert!(!run.stdout.contains("alb-grace-period"), "{}", run.stdout);

    // Without the Ingress, no ALB warning.
    let no_alb = APP.replace("kind: Ingress", "kind: IngressNotReally");
    let run = stdin(&no_alb);
    assert!(!run.stdout.contains("alb-grace-period"), "{}", run.stdout);
}

#[test]
fn from_env_is_resolved_against_the_scale_target() {
    // The ConfigMap key that REDIS_ADDR reads is missing: an error on the scale target reference.
    let run = stdin(&APP.replace("data: {address:", "data: {addr:"));
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(
        run.has_line(&[
            "error ScaledObject shop/api spec.scaleTargetRef:",
            "ConfigMap shop/redis has no key \"address\" (referenced by env REDIS_ADDR of container \"api\")",
        ]),
        "{}",
        run.stdout
    );
    // REDIS_ADDR set by nothing: the trigger has no address.
    let run = stdin(&APP.replace("addressFromEnv: REDIS_ADDR", "addressFromEnv: NOT_SET"));
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(
        run.has_line(&["spec.triggers[0].metadata.address:", "trigger 0 (redis)"]),
        "{}",
        run.stdout
    );
    // The Deployment outside the input: its env is assumed.
    let only_so = APP
        .split("\n---\n")
        .filter(|d| d.contains("kind: ScaledObject"))
        .collect::<String>();
    let run = stdin(&only_so);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.has_line(&[
            "warning ScaledObject shop/api spec.scaleTargetRef:",
            "Deployment shop/api is not in the input",
            "[assumed-reference]",
        ]),
        "{}",
        run.stdout
    );
}

#[test]
fn object_validations_of_the_webhook_apply() {
    let run = stdin(&seed_with("maxReplicaCount:  5", "maxReplicaCount:  0"));
    assert_eq!(run.code, 1);
    assert!(
        run.has_line(&["spec.minReplicaCount:", "[incorrect-replicas]"]),
        "{}",
        run.stdout
    );

    let two = format!(
        "{SEED}\n---\n{}",
        SEED.split("\n---\n")
            .next()
            .expect("first document")
            .replace(
                "name: example-app-newrelic-throughput-scaler",
                "name: second"
            )
    );
    let run = stdin(&two);
    assert_eq!(run.code, 1);
    assert!(
        run.has_line(&[
            "error ScaledObject default/second spec.scaleTargetRef:",
            "already managed by the ScaledObject \"example-app-newrelic-throughput-scaler\"",
            "[other-scaled-object]",
        ]),
        "{}",
        run.stdout
    );
}

/// The seed set with a named trigger and `scalingModifiers.formula` set to `formula`.
fn seed_with_formula(formula: &str) -> String {
    seed_with(
        "    restoreToOriginalReplicaCount: true\n",
        &format!(
            "    restoreToOriginalReplicaCount: true\n    scalingModifiers:\n      formula: '{formula}'\n      target: '5'\n"
        ),
    )
    .replacen("    - type: new-relic\n", "    - type: new-relic\n      name: nr\n", 1)
}

#[test]
fn scaling_modifier_formulas_are_compiled() {
    let run = stdin(&seed_with_formula("max(nr, 1) * 2"));
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(run.lines("error").is_empty(), "{}", run.stdout);

    let cases = [
        (
            "nr +".to_owned(),
            "formula syntax error at column 5: unexpected end of formula",
        ),
        (
            "nr + other".to_owned(),
            "formula refers to unknown trigger \"other\" at column 6",
        ),
        (
            format!("{}nr{}", "(".repeat(200), ")".repeat(200)),
            "nesting deeper than 64 levels (at column 65)",
        ),
        (
            format!("{}nr", "-".repeat(5000)),
            "longer than 4096 bytes (5002)",
        ),
    ];
    for (formula, message) in cases {
        let run = stdin(&seed_with_formula(&formula));
        assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
        assert!(
            run.has_line(&[
                "error",
                SO,
                "spec.advanced.scalingModifiers.formula:",
                message,
                "[scaling-modifiers]",
            ]),
            "{}",
            run.stdout
        );
        assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    }
}

#[test]
fn garbage_never_panics() {
    let inputs = [
        "",
        "---\n---\n",
        "just a string",
        "[1, 2, 3]",
        "kind: ScaledObject\n",
        "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\n",
        "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {name: x}\nspec: {scaleTargetRef: {name: y}, triggers: [{type: cron}]}\n",
        "apiVersion: keda.sh/v1alpha1\nkind: TriggerAuthentication\nmetadata: {name: x}\nspec: 7\n",
        "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: {a: '!!notbase64'}\n",
        "apiVersion: v1\nkind: List\nitems: [{apiVersion: v1, kind: Service, metadata: {name: s}}]\n",
        "a: &a [*a]\n",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec: {template: {spec: {containers: 5}}}\n",
    ];
    for input in inputs {
        let run = stdin(input);
        assert!(
            matches!(run.code, 0..=2),
            "exit {} for {input:?}: {}",
            run.code,
            run.stderr
        );
        assert!(
            !run.stderr.contains("panicked"),
            "{input:?}: {}",
            run.stderr
        );
    }
}

/// File paths tenants write are checked against `--filepath-auth-root-path` as the operator checks them
/// (the same message): a postgresql `sslrootcert` in a Secret of the set, and a ClusterTriggerAuthentication
/// `filePath` (whose parameters only the operator can read: a warning says so).
#[test]
fn file_paths_outside_the_root_are_errors() {
    let set = |sslrootcert: &str, file_path: &str| {
        format!(
            "apiVersion: v1
kind: Secret
metadata: {{name: pg, namespace: shop}}
stringData:
  connection: host=db user=keda dbname=app sslmode=verify-full sslrootcert={sslrootcert}
---
apiVersion: keda.sh/v1alpha1
kind: TriggerAuthentication
metadata: {{name: pg, namespace: shop}}
spec:
  secretTargetRef: [{{parameter: connection, name: pg, key: connection}}]
---
apiVersion: keda.sh/v1alpha1
kind: ClusterTriggerAuthentication
metadata: {{name: files}}
spec:
  filePath: {file_path}
---
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {{name: jobs, namespace: shop}}
spec:
  scaleTargetRef: {{name: worker}}
  triggers:
  - type: postgresql
    metadata: {{query: SELECT 1, targetQueryValue: '1'}}
    authenticationRef: {{name: pg}}
  - type: metrics-api
    metadata: {{url: 'http://api/m', valueLocation: v, targetValue: '1'}}
    authenticationRef: {{name: files, kind: ClusterTriggerAuthentication}}
"
        )
    };
    let root = ["--filepath-auth-root-path", "/mnt/auth", "-"];
    let inside = keda_lint(&root, Some(&set("/mnt/auth/ca.pem", "team/creds.json")));
    assert_eq!(
        inside.lines("error"),
        Vec::<&str>::new(),
        "{}",
        inside.stdout
    );
    assert!(
        inside.has_line(&[
            "warning",
            "filePath \"team/creds.json\" is read by the operator"
        ]),
        "{}",
        inside.stdout
    );

    let outside = keda_lint(&root, Some(&set("/certs/ca.crt", "../../etc/passwd")));
    assert_eq!(outside.code, 1, "{}", outside.stdout);
    assert!(
        outside.has_line(&[
            "error ScaledObject shop/jobs spec.triggers[0].metadata.sslrootcert:",
            "trigger 0 (postgresql): sslrootcert: \"/certs/ca.crt\" is outside --filepath-auth-root-path (/mnt/auth)",
        ]),
        "{}",
        outside.stdout
    );
    assert!(
        outside.has_line(&[
            "error ScaledObject shop/jobs spec.triggers[1].authenticationRef:",
            "trigger 1 (metrics-api): ClusterTriggerAuthentication files: filePath: \"../../etc/passwd\" is outside --filepath-auth-root-path (/mnt/auth)",
        ]),
        "{}",
        outside.stdout
    );

    // Without the flag no file may be named, as the operator without it.
    let unset = keda_lint(&["-"], Some(&set("/mnt/auth/ca.pem", "team/creds.json")));
    assert!(
        unset.has_line(&[
            "spec.triggers[0].metadata.sslrootcert:",
            "no file may be read: the operator runs without --filepath-auth-root-path",
        ]),
        "{}",
        unset.stdout
    );
}

/// Issue 16 (c): `--queue-length` reports what a ScaledJob would create on its first two polls, by
/// upstream's math (the worked examples of its scaling-strategy reference), as `info` lines that never
/// fail the run.
#[test]
fn queue_length_projects_the_jobs_a_scaled_job_creates() {
    let cases: &[(&str, &str, &str, &str)] = &[
        // (spec lines, target, queue, what the info line says)
        (
            "  minReplicaCount: 2\n  maxReplicaCount: 10\n",
            "1",
            "3",
            "creates 2 Job(s) on the first poll and 3 more on the next",
        ),
        (
            "  minReplicaCount: 5\n  maxReplicaCount: 3\n",
            "1",
            "10",
            "creates 3 Job(s) on the first poll and 3 more on the next",
        ),
        (
            "  maxReplicaCount: 100\n",
            "0.5",
            "3",
            "creates 3 Job(s) on the first poll",
        ),
        (
            "  maxReplicaCount: 10\n  scalingStrategy: {strategy: eager}\n",
            "1",
            "6",
            "creates 6 Job(s) on the first poll and 4 more on the next",
        ),
    ];
    for (spec, target, queue, said) in cases {
        let manifest = format!(
            "apiVersion: keda.sh/v1alpha1\nkind: ScaledJob\nmetadata: {{name: runner, namespace: ci}}\nspec:\n  jobTargetRef: {{template: {{spec: {{containers: [{{name: c, image: x}}]}}}}}}\n  rollout: {{strategy: gradual}}\n{spec}  triggers:\n  - type: metrics-api\n    metadata: {{url: 'http://api.example/q', valueLocation: depth, targetValue: '{target}'}}\n"
        );
        let run = keda_lint(&["--queue-length", queue, "-"], Some(&manifest));
        assert_eq!(run.code, 0, "{spec}: {}{}", run.stdout, run.stderr);
        let info = run.lines("info");
        assert_eq!(info.len(), 1, "{spec}: {}", run.stdout);
        assert!(
            info[0].contains(said) && info[0].ends_with("[scaled-job-projection]"),
            "{spec}: {}",
            info[0]
        );
    }
    // Without the flag, no projection.
    let run = stdin(
        "apiVersion: keda.sh/v1alpha1\nkind: ScaledJob\nmetadata: {name: runner, namespace: ci}\nspec:\n  jobTargetRef: {template: {spec: {containers: [{name: c, image: x}]}}}\n  triggers:\n  - type: metrics-api\n    metadata: {url: 'http://api.example/q', valueLocation: depth, targetValue: '1'}\n",
    );
    assert!(run.lines("info").is_empty(), "{}", run.stdout);
    assert!(
        run.has_line(&["warning", "[rollout-deletes-jobs]"]),
        "{}",
        run.stdout
    );
}
