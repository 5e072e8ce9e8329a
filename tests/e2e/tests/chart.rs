//! The Helm chart (charts/keda), the seed guide's application chart (examples/example-app) and the Grafana
//! dashboard (dashboards/keda-dashboard.json).
//!
//! Rendering checks use `helm lint` / `helm template` only; `guide_install_on_the_local_control_plane`
//! installs the chart the way the guide does (`helm upgrade --install ... --wait`) on the local control
//! plane, where kwok makes the pods Running without pulling images, then runs the real `keda` processes in
//! place of those pods behind the chart's Services (`keda_e2e::ChartProcesses`, as `cargo xtask demo`
//! does) and uninstalls it again; `example_app_guide_values_make_the_guides_hpa` applies the example app's
//! guide values next to a running operator. Run with
//! `bash hack/cluster.sh exec -- cargo test -p keda-e2e --test chart` (or `cargo xtask e2e`).

use anyhow::{Context, Result, bail};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use keda_e2e::{
    ChartProcesses, KedaProcess, cluster_scoped_lock, ensure_crds, kubectl, kubectl_ok, namespace,
    root, table_cell, wait_for,
};
use kube::Api;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// helm's built-in default Kubernetes version (v1.20 for this build) is below the chart's kubeVersion;
/// render for the version the local control plane runs.
const KUBE_VERSION: &str = "v1.35.4";
const NAMESPACE: &str = "keda";
const RELEASE: &str = "keda";

/// The values changes of the seed guide.
const GUIDE_VALUES: &str = "\
operator:
  revisionHistoryLimit: 2
  replicaCount: 2
prometheus:
  metricServer:
    enabled: true
  operator:
    enabled: true
";

const DEPLOYMENTS: [&str; 3] = [
    "keda-operator",
    "keda-operator-metrics-apiserver",
    "keda-admission-webhooks",
];

fn chart() -> PathBuf {
    root().join("charts/keda")
}

fn example_app() -> PathBuf {
    root().join("examples/example-app")
}

fn path_str(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// Writes `text` to a file under target/keda-e2e-chart/ and returns its path.
fn values_file(name: &str, text: &str) -> Result<PathBuf> {
    let dir = root().join("target/keda-e2e-chart");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("{}-{name}.yaml", std::process::id()));
    std::fs::write(&path, text)?;
    Ok(path)
}

fn helm(args: &[&str]) -> Result<Output> {
    Command::new("helm").args(args).output().context(
        "running helm (is the cluster's bin dir on PATH? use `bash hack/cluster.sh exec -- ...`)",
    )
}

fn helm_ok(args: &[&str]) -> Result<String> {
    let out = helm(args)?;
    if !out.status.success() {
        bail!(
            "helm {} failed:\n{}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `helm template` → the rendered objects as JSON values.
fn render(chart: &Path, release: &str, values: &[&Path], sets: &[&str]) -> Result<Vec<Value>> {
    let chart = path_str(chart);
    let mut args: Vec<String> = [
        "template",
        release,
        &chart,
        "--namespace",
        NAMESPACE,
        "--kube-version",
        KUBE_VERSION,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for v in values {
        args.push("--values".into());
        args.push(path_str(v));
    }
    for s in sets {
        args.push("--set".into());
        args.push(s.to_string());
    }
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    parse_documents(&helm_ok(&refs)?)
}

fn parse_documents(yaml: &str) -> Result<Vec<Value>> {
    let mut docs = Vec::new();
    for doc in serde_yaml_ng::Deserializer::from_str(yaml) {
        let v: Value = serde::Deserialize::deserialize(doc).context("parsing rendered YAML")?;
        if !v.is_null() {
            docs.push(v);
        }
    }
    Ok(docs)
}

fn of_kind<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| d["kind"] == kind).collect()
}

fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> Result<&'a Value> {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .with_context(|| {
            let names: Vec<String> = of_kind(docs, kind)
                .iter()
                .map(|d| d["metadata"]["name"].to_string())
                .collect();
            format!("no {kind} {name} rendered; {kind}s: {names:?}")
        })
}

/// A Service's ports as (name, port, targetPort).
fn service_ports(svc: &Value) -> Vec<(String, i64, i64)> {
    svc["spec"]["ports"]
        .as_array()
        .map(|ports| {
            ports
                .iter()
                .map(|p| {
                    (
                        p["name"].as_str().unwrap_or_default().to_owned(),
                        p["port"].as_i64().unwrap_or_default(),
                        p["targetPort"].as_i64().unwrap_or_default(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn ports(list: &[(&str, i64, i64)]) -> Vec<(String, i64, i64)> {
    list.iter()
        .map(|(n, p, t)| ((*n).to_owned(), *p, *t))
        .collect()
}

fn container(deploy: &Value) -> &Value {
    &deploy["spec"]["template"]["spec"]["containers"][0]
}

fn args(deploy: &Value) -> Vec<String> {
    container(deploy)["args"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn chart_app_version() -> Result<String> {
    let chart: Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(chart().join("Chart.yaml"))?)?;
    chart["appVersion"]
        .as_str()
        .map(str::to_owned)
        .context("Chart.yaml has no appVersion")
}

/// Rules of ClusterRoles that let a subject list or watch Secrets cluster-wide.
fn secret_list_watch_rules(docs: &[Value]) -> Vec<String> {
    let mut found = Vec::new();
    for role in of_kind(docs, "ClusterRole") {
        for rule in role["rules"].as_array().into_iter().flatten() {
            let has = |field: &str, wanted: &[&str]| {
                rule[field]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|v| wanted.iter().any(|w| v == *w)))
            };
            if has("apiGroups", &["", "*"])
                && has("resources", &["secrets", "*"])
                && has("verbs", &["list", "watch", "*"])
            {
                found.push(format!("{}: {rule}", role["metadata"]["name"]));
            }
        }
    }
    found
}

#[test]
fn chart_lints_clean() -> Result<()> {
    let guide = values_file("guide-lint", GUIDE_VALUES)?;
    let chart = path_str(&chart());
    for extra in [vec![], vec!["--values", guide.to_str().unwrap_or_default()]] {
        let mut args = vec![
            "lint",
            "--strict",
            chart.as_str(),
            "--kube-version",
            KUBE_VERSION,
        ];
        args.extend(extra);
        let out = helm_ok(&args)?;
        assert!(
            out.contains("0 chart(s) failed")
                && !out.contains("[WARNING]")
                && !out.contains("[ERROR]"),
            "helm {}:\n{out}",
            args.join(" ")
        );
    }
    let app = path_str(&example_app());
    let dev = path_str(&example_app().join("values_dev.yaml"));
    let out = helm_ok(&["lint", "--strict", &app, "--values", &dev])?;
    assert!(out.contains("0 chart(s) failed"), "{out}");
    Ok(())
}

#[test]
fn values_schema_rejects_wrong_types_and_accepts_upstream_values() -> Result<()> {
    let chart = path_str(&chart());
    for (name, bad, key) in [
        (
            "bad-replicas",
            "operator:\n  replicaCount: \"two\"\n",
            "replicaCount",
        ),
        (
            "bad-policy",
            "webhooks:\n  failurePolicy: Sometimes\n",
            "failurePolicy",
        ),
        (
            "bad-port",
            "prometheus:\n  operator:\n    port: eighty\n",
            "port",
        ),
    ] {
        let file = values_file(name, bad)?;
        let out = helm(&["lint", "--strict", &chart, "--values", &path_str(&file)])?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!out.status.success(), "lint accepted {bad:?}:\n{text}");
        assert!(
            text.contains(key),
            "lint error does not name {key}:\n{text}"
        );
    }
    // A values file written for the upstream chart (its image keys and defaults) still lints and
    // renders the keda-rs image everywhere.
    let upstream = values_file(
        "upstream-style",
        "image:\n  keda:\n    registry: ghcr.io\n    repository: kedacore/keda\n    tag: \"\"\n  \
         metricsApiServer:\n    registry: ghcr.io\n    repository: kedacore/keda-metrics-apiserver\n    tag: \"\"\n  \
         webhooks:\n    registry: ghcr.io\n    repository: kedacore/keda-admission-webhooks\n    tag: \"\"\n  \
         pullPolicy: Always\nserviceAccount:\n  operator:\n    create: true\n    name: keda-operator\n\
         permissions:\n  operator:\n    restrict:\n      secret: false\nsomeFutureUpstreamKey: {}\n",
    )?;
    helm_ok(&["lint", "--strict", &chart, "--values", &path_str(&upstream)])?;
    let docs = render(&self::chart(), RELEASE, &[&upstream], &[])?;
    let image = format!("ghcr.io/keda-rs/keda:{}", chart_app_version()?);
    for name in DEPLOYMENTS {
        assert_eq!(
            container(find(&docs, "Deployment", name)?)["image"],
            image.as_str(),
            "{name}"
        );
    }
    // A per-component override that is not upstream's default wins.
    let docs = render(
        &self::chart(),
        RELEASE,
        &[],
        &[
            "image.webhooks.repository=acme/keda-rs",
            "image.webhooks.tag=dev",
            "global.image.registry=mirror.local",
        ],
    )?;
    assert_eq!(
        container(find(&docs, "Deployment", "keda-admission-webhooks")?)["image"],
        "mirror.local/acme/keda-rs:dev"
    );
    assert_eq!(
        container(find(&docs, "Deployment", "keda-operator")?)["image"],
        format!("mirror.local/keda-rs/keda:{}", chart_app_version()?).as_str()
    );
    Ok(())
}

#[test]
fn guide_values_render_upstream_objects() -> Result<()> {
    let guide = values_file("guide-render", GUIDE_VALUES)?;
    let docs = render(&chart(), RELEASE, &[&guide], &[])?;
    let image = format!("ghcr.io/keda-rs/keda:{}", chart_app_version()?);

    // Three Deployments of one image, one subcommand each.
    let names: BTreeSet<&str> = of_kind(&docs, "Deployment")
        .iter()
        .filter_map(|d| d["metadata"]["name"].as_str())
        .collect();
    assert_eq!(names, DEPLOYMENTS.into_iter().collect());
    for (name, subcommand, replicas, history) in [
        ("keda-operator", "operator", 2, 2),
        (
            "keda-operator-metrics-apiserver",
            "metrics-apiserver",
            1,
            10,
        ),
        ("keda-admission-webhooks", "admission-webhooks", 1, 10),
    ] {
        let d = find(&docs, "Deployment", name)?;
        assert_eq!(d["metadata"]["namespace"], NAMESPACE, "{name}");
        assert_eq!(d["spec"]["replicas"], replicas, "{name} replicas");
        assert_eq!(
            d["spec"]["revisionHistoryLimit"], history,
            "{name} revisionHistoryLimit"
        );
        assert_eq!(
            d["spec"]["selector"]["matchLabels"],
            json!({"app": name}),
            "{name}"
        );
        assert_eq!(
            d["spec"]["template"]["metadata"]["labels"]["app"], name,
            "{name}"
        );
        let c = container(d);
        assert_eq!(c["image"], image.as_str(), "{name}");
        assert_eq!(c["command"], json!(["/keda"]), "{name}");
        assert_eq!(
            args(d).first().map(String::as_str),
            Some(subcommand),
            "{name}"
        );
        let volumes = &d["spec"]["template"]["spec"]["volumes"];
        assert!(
            volumes.as_array().is_some_and(|v| v
                .iter()
                .any(|v| v["secret"]["secretName"] == "kedaorg-certs")),
            "{name} does not mount Secret kedaorg-certs: {volumes}"
        );
    }
    let operator_args = args(find(&docs, "Deployment", "keda-operator")?);
    for want in [
        "--leader-elect",
        "--enable-cert-rotation=true",
        "--cert-secret-name=kedaorg-certs",
        "--metrics-bind-address=:8080",
    ] {
        assert!(
            operator_args.iter().any(|a| a == want),
            "operator args lack {want}: {operator_args:?}"
        );
    }
    let adapter_args = args(find(
        &docs,
        "Deployment",
        "keda-operator-metrics-apiserver",
    )?);
    assert!(
        adapter_args
            .iter()
            .any(|a| a == "--metrics-service-address=keda-operator.keda.svc.cluster.local:9666"),
        "{adapter_args:?}"
    );

    // Services: upstream's names, ports and selectors; 8080 where the guide enabled metrics.
    for (name, want) in [
        (
            "keda-operator",
            ports(&[("metricsservice", 9666, 9666), ("metrics", 8080, 8080)]),
        ),
        (
            "keda-operator-metrics-apiserver",
            ports(&[("https", 443, 6443), ("metrics", 8080, 8080)]),
        ),
        ("keda-admission-webhooks", ports(&[("https", 443, 9443)])),
    ] {
        let svc = find(&docs, "Service", name)?;
        assert_eq!(service_ports(svc), want, "Service {name}");
        assert_eq!(
            svc["spec"]["selector"],
            json!({"app": name}),
            "Service {name}"
        );
    }
    assert_eq!(of_kind(&docs, "Service").len(), 3);

    // APIService: no insecureSkipTLSVerify (and no caBundle: the operator patches it in).
    let api = find(&docs, "APIService", "v1beta1.external.metrics.k8s.io")?;
    let spec = api["spec"].as_object().context("APIService spec")?;
    assert!(!spec.contains_key("insecureSkipTLSVerify"), "{api}");
    assert!(!spec.contains_key("caBundle"), "{api}");
    assert_eq!(
        api["spec"]["service"],
        json!({"name": "keda-operator-metrics-apiserver", "namespace": NAMESPACE, "port": 443})
    );
    assert_eq!(api["spec"]["group"], "external.metrics.k8s.io");
    assert_eq!(api["spec"]["version"], "v1beta1");
    assert_eq!(api["spec"]["groupPriorityMinimum"], 100);
    assert_eq!(api["spec"]["versionPriority"], 100);

    // ValidatingWebhookConfiguration keda-admission.
    let vwc = find(&docs, "ValidatingWebhookConfiguration", "keda-admission")?;
    let hooks = vwc["webhooks"].as_array().context("webhooks")?;
    let paths: BTreeSet<&str> = hooks
        .iter()
        .filter_map(|h| h["clientConfig"]["service"]["path"].as_str())
        .collect();
    let want: BTreeSet<&str> = [
        "/validate-keda-sh-v1alpha1-scaledobject",
        "/validate-keda-sh-v1alpha1-scaledjob",
        "/validate-keda-sh-v1alpha1-triggerauthentication",
        "/validate-keda-sh-v1alpha1-clustertriggerauthentication",
    ]
    .into_iter()
    .collect();
    assert_eq!(paths, want);
    for h in hooks {
        assert_eq!(h["failurePolicy"], "Ignore", "{h}");
        assert_eq!(h["sideEffects"], "None", "{h}");
        assert_eq!(h["admissionReviewVersions"], json!(["v1"]), "{h}");
        assert_eq!(
            h["clientConfig"]["service"]["name"], "keda-admission-webhooks",
            "{h}"
        );
        assert_eq!(h["clientConfig"]["service"]["namespace"], NAMESPACE, "{h}");
        assert!(h["clientConfig"].get("caBundle").is_none(), "{h}");
    }

    // The TLS Secret is the operator's to create, not the chart's.
    assert!(
        of_kind(&docs, "Secret").is_empty(),
        "the chart renders a Secret"
    );

    // Least-privilege RBAC: nothing may list or watch Secrets cluster-wide; leases in KEDA's namespace.
    let bad = secret_list_watch_rules(&docs);
    assert!(
        bad.is_empty(),
        "ClusterRole rules granting list/watch on secrets: {bad:#?}"
    );
    let role = find(&docs, "Role", "keda-operator-certs")?;
    assert_eq!(role["metadata"]["namespace"], NAMESPACE);
    assert!(
        role["rules"]
            .as_array()
            .is_some_and(|r| r.iter().any(|r| r["resources"] == json!(["leases"]))),
        "{role}"
    );
    for (kind, name) in [
        ("ClusterRole", "keda-operator"),
        ("ClusterRoleBinding", "keda-operator"),
        ("ClusterRole", "keda-operator-external-metrics-reader"),
        (
            "ClusterRoleBinding",
            "keda-operator-hpa-controller-external-metrics",
        ),
        ("ClusterRoleBinding", "keda-operator-system-auth-delegator"),
        ("RoleBinding", "keda-operator-auth-reader"),
        ("ServiceAccount", "keda-operator"),
        ("ServiceAccount", "keda-metrics-server"),
        ("ServiceAccount", "keda-webhook"),
    ] {
        find(&docs, kind, name)?;
    }
    Ok(())
}

/// `--filepath-auth-root-path` goes to the operator the way kedacore/charts passes it (`extraArgs.keda`),
/// and the webhooks get the same value (unless `extraArgs.webhooks` sets their own), so they refuse the
/// file paths the operator refuses. Without it neither gets the flag (no file may be named).
#[test]
fn the_file_root_reaches_the_operator_and_the_webhooks() -> Result<()> {
    let flag = |docs: &[Value], name: &str| -> Result<Vec<String>> {
        Ok(args(find(docs, "Deployment", name)?)
            .into_iter()
            .filter(|a| a.starts_with("--filepath-auth-root-path"))
            .collect())
    };
    let docs = render(&chart(), RELEASE, &[], &[])?;
    assert!(flag(&docs, "keda-operator")?.is_empty());
    assert!(flag(&docs, "keda-admission-webhooks")?.is_empty());
    let docs = render(
        &chart(),
        RELEASE,
        &[],
        &["extraArgs.keda.filepath-auth-root-path=/mnt/auth"],
    )?;
    for name in ["keda-operator", "keda-admission-webhooks"] {
        assert_eq!(
            flag(&docs, name)?,
            ["--filepath-auth-root-path=/mnt/auth"],
            "{name}"
        );
    }
    let docs = render(
        &chart(),
        RELEASE,
        &[],
        &[
            "extraArgs.keda.filepath-auth-root-path=/mnt/auth",
            "extraArgs.webhooks.filepath-auth-root-path=/other",
        ],
    )?;
    assert_eq!(
        flag(&docs, "keda-admission-webhooks")?,
        ["--filepath-auth-root-path=/other"]
    );
    Ok(())
}

#[test]
fn metrics_ports_only_when_enabled() -> Result<()> {
    // Defaults: prometheus.*.enabled false → no 8080 anywhere, no scrape annotations.
    let docs = render(&chart(), RELEASE, &[], &[])?;
    for (name, want) in [
        ("keda-operator", ports(&[("metricsservice", 9666, 9666)])),
        (
            "keda-operator-metrics-apiserver",
            ports(&[("https", 443, 6443)]),
        ),
        ("keda-admission-webhooks", ports(&[("https", 443, 9443)])),
    ] {
        let svc = find(&docs, "Service", name)?;
        assert_eq!(service_ports(svc), want, "Service {name}");
        assert!(
            svc["metadata"]["annotations"]
                .get("prometheus.io/scrape")
                .is_none(),
            "{svc}"
        );
    }
    for name in DEPLOYMENTS {
        let c = container(find(&docs, "Deployment", name)?);
        let container_ports: Vec<&Value> = c["ports"].as_array().into_iter().flatten().collect();
        assert!(
            container_ports.iter().all(|p| p["name"] != "metrics"),
            "{name} declares a metrics port: {container_ports:?}"
        );
    }
    assert_eq!(
        find(&docs, "Deployment", "keda-operator")?["spec"]["replicas"],
        1
    );

    // All three enabled, webhooks with failurePolicy Fail.
    let docs = render(
        &chart(),
        RELEASE,
        &[],
        &[
            "prometheus.operator.enabled=true",
            "prometheus.metricServer.enabled=true",
            "prometheus.webhooks.enabled=true",
            "webhooks.failurePolicy=Fail",
        ],
    )?;
    assert_eq!(
        service_ports(find(&docs, "Service", "keda-admission-webhooks")?),
        ports(&[("https", 443, 9443), ("metrics", 8080, 8080)])
    );
    let op = find(&docs, "Service", "keda-operator")?;
    assert_eq!(
        op["metadata"]["annotations"]["prometheus.io/scrape"],
        "true"
    );
    assert_eq!(op["metadata"]["annotations"]["prometheus.io/port"], "8080");
    let vwc = find(&docs, "ValidatingWebhookConfiguration", "keda-admission")?;
    assert!(
        vwc["webhooks"]
            .as_array()
            .is_some_and(|h| h.iter().all(|h| h["failurePolicy"] == "Fail"))
    );

    // Prometheus Operator objects replace the scrape annotations.
    let docs = render(
        &chart(),
        RELEASE,
        &[],
        &[
            "prometheus.operator.enabled=true",
            "prometheus.operator.serviceMonitor.enabled=true",
            "prometheus.metricServer.enabled=true",
            "prometheus.metricServer.podMonitor.enabled=true",
        ],
    )?;
    let sm = find(&docs, "ServiceMonitor", "keda-operator")?;
    assert_eq!(sm["spec"]["endpoints"][0]["port"], "metrics");
    assert_eq!(
        sm["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"],
        "keda-operator"
    );
    find(&docs, "PodMonitor", "keda-operator-metrics-apiserver")?;
    assert!(
        find(&docs, "Service", "keda-operator")?["metadata"]["annotations"]
            .get("prometheus.io/scrape")
            .is_none()
    );
    Ok(())
}

#[test]
fn optional_objects_follow_their_values() -> Result<()> {
    // cert-manager: CA injection annotation instead of runtime patching, and no insecureSkipTLSVerify.
    let docs = render(
        &chart(),
        RELEASE,
        &[],
        &["certificates.certManager.enabled=true"],
    )?;
    let api = find(&docs, "APIService", "v1beta1.external.metrics.k8s.io")?;
    assert_eq!(
        api["metadata"]["annotations"]["cert-manager.io/inject-ca-from"],
        "keda/keda-operator-tls-certificates"
    );
    assert!(api["spec"].get("insecureSkipTLSVerify").is_none());
    let cert = find(&docs, "Certificate", "keda-operator-tls-certificates")?;
    assert_eq!(cert["spec"]["secretName"], "kedaorg-certs");
    assert!(
        args(find(&docs, "Deployment", "keda-operator")?)
            .iter()
            .any(|a| a == "--enable-cert-rotation=false")
    );

    // PodDisruptionBudget, NetworkPolicy, restricted Secret access, disabled components.
    let docs = render(
        &chart(),
        RELEASE,
        &[],
        &[
            "podDisruptionBudget.operator.minAvailable=1",
            "networkPolicy.enabled=true",
            "networkPolicy.flavor=kubernetes",
            "permissions.operator.restrict.secret=true",
            "rbac.scaledRefKinds[0].apiGroup=argoproj.io",
            "rbac.scaledRefKinds[0].kind=rollouts",
        ],
    )?;
    let pdb = find(&docs, "PodDisruptionBudget", "keda-operator")?;
    assert_eq!(pdb["spec"]["minAvailable"], 1);
    assert_eq!(
        pdb["spec"]["selector"]["matchLabels"],
        json!({"app": "keda-operator"})
    );
    assert_eq!(of_kind(&docs, "NetworkPolicy").len(), 3);
    let operator_role = find(&docs, "ClusterRole", "keda-operator")?;
    assert!(
        !operator_role["rules"].to_string().contains("secrets"),
        "restrict.secret leaves a cluster-wide Secret rule: {operator_role}"
    );
    assert!(secret_list_watch_rules(&docs).is_empty());

    let docs = render(
        &chart(),
        RELEASE,
        &[],
        &[
            "metricsServer.enabled=false",
            "webhooks.enabled=false",
            "watchNamespace=team-a",
        ],
    )?;
    let names: Vec<&str> = of_kind(&docs, "Deployment")
        .iter()
        .filter_map(|d| d["metadata"]["name"].as_str())
        .collect();
    assert_eq!(names, ["keda-operator"]);
    assert!(of_kind(&docs, "APIService").is_empty());
    assert!(of_kind(&docs, "ValidatingWebhookConfiguration").is_empty());
    // watchNamespace: the operator's ClusterRole is bound per namespace, not cluster-wide.
    assert!(find(&docs, "ClusterRoleBinding", "keda-operator").is_err());
    let bindings: BTreeSet<&str> = of_kind(&docs, "RoleBinding")
        .iter()
        .filter(|b| b["metadata"]["name"] == "keda-operator")
        .filter_map(|b| b["metadata"]["namespace"].as_str())
        .collect();
    assert_eq!(bindings, ["keda", "team-a"].into_iter().collect());
    Ok(())
}

#[test]
fn example_app_without_keda_renders_no_keda_objects() -> Result<()> {
    let dev = example_app().join("values_dev.yaml");
    let demo = example_app().join("values_demo.yaml");
    for (values, sets) in [
        (vec![], vec![]),
        (vec![dev.as_path()], vec!["keda.enabled=false"]),
        (vec![demo.as_path()], vec!["keda.enabled=false"]),
    ] {
        let docs = render(&example_app(), "example-app", &values, &sets)?;
        let keda: Vec<&Value> = docs
            .iter()
            .filter(|d| {
                d["apiVersion"]
                    .as_str()
                    .is_some_and(|v| v.starts_with("keda.sh/"))
            })
            .collect();
        assert!(
            keda.is_empty(),
            "keda.sh objects with KEDA disabled: {keda:?}"
        );
        let deploy = find(&docs, "Deployment", "example-app")?;
        // Without KEDA the chart owns the replica count.
        assert_eq!(deploy["spec"]["replicas"], 1);
        find(&docs, "Service", "example-app")?;
    }
    Ok(())
}

#[test]
fn example_app_dev_values_render_the_seed_objects() -> Result<()> {
    let dev = example_app().join("values_dev.yaml");
    let docs = render(&example_app(), "example-app", &[&dev], &[])?;
    let fixture = parse_documents(&std::fs::read_to_string(
        root().join("crates/keda-api/tests/fixtures/seed-values-dev.yaml"),
    )?)?;
    for kind in ["ScaledObject", "TriggerAuthentication"] {
        let want = of_kind(&fixture, kind);
        let got = of_kind(&docs, kind);
        assert_eq!(got.len(), 1, "{kind}s rendered: {got:?}");
        assert_eq!(want.len(), 1);
        assert_eq!(got[0]["apiVersion"], "keda.sh/v1alpha1");
        assert_eq!(
            got[0]["metadata"]["name"], want[0]["metadata"]["name"],
            "{kind} name"
        );
        assert_eq!(got[0]["spec"], want[0]["spec"], "{kind} spec");
    }
    // The HPA owns the replica count while KEDA is on.
    let deploy = find(&docs, "Deployment", "example-app")?;
    assert!(deploy["spec"].get("replicas").is_none(), "{deploy}");

    // The rendered objects are valid keda.sh objects for keda-rs's own types.
    let so: keda_api::ScaledObject = serde_json::from_value(
        find(
            &docs,
            "ScaledObject",
            "example-app-newrelic-throughput-scaler",
        )?
        .clone(),
    )
    .context("the rendered ScaledObject does not parse as keda_api::ScaledObject")?;
    assert_eq!(so.spec.scale_target_ref.name, "example-app");
    assert_eq!(so.spec.polling_interval, Some(120));
    assert_eq!(so.spec.idle_replica_count, Some(0));
    assert_eq!(
        (so.spec.min_replica_count, so.spec.max_replica_count),
        (Some(1), Some(5))
    );
    assert_eq!(so.spec.triggers.len(), 1);
    assert_eq!(so.spec.triggers[0].r#type, "new-relic");
    assert_eq!(
        so.spec.triggers[0].metadata.get("nrql").map(String::as_str),
        Some(
            "SELECT rate(count(*), 10 SECOND) FROM Transaction WHERE appName='dev-example-app' SINCE 1 MINUTE AGO"
        )
    );
    let fallback = so.spec.fallback.as_ref().context("fallback")?;
    assert_eq!((fallback.failure_threshold, fallback.replicas), (2, 3));
    let _: keda_api::TriggerAuthentication =
        serde_json::from_value(find(&docs, "TriggerAuthentication", "example-app-ta")?.clone())
            .context("the rendered TriggerAuthentication does not parse")?;
    Ok(())
}

/// Metric names of upstream KEDA (operator) and of kube-state-metrics' HPA series.
const UPSTREAM_METRICS: &[&str] = &[
    "keda_build_info",
    "keda_scaler_metrics_value",
    "keda_scaler_metrics_latency_seconds",
    "keda_scaler_active",
    "keda_scaler_detail_errors_total",
    "keda_scaled_object_errors_total",
    "keda_scaled_job_errors_total",
    "keda_scaled_object_paused",
    "keda_scaler_empty_upstream_responses_total",
    "keda_trigger_registered_total",
    "keda_resource_registered_total",
    "keda_internal_scale_loop_latency_seconds",
    "keda_cloudeventsource_events_emitted_total",
    "keda_cloudeventsource_events_queued",
    "keda_scaler_http_requests_total",
    "keda_scaler_http_request_duration_seconds",
    "kube_horizontalpodautoscaler_info",
    "kube_horizontalpodautoscaler_metadata_generation",
    "kube_horizontalpodautoscaler_spec_max_replicas",
    "kube_horizontalpodautoscaler_spec_min_replicas",
    "kube_horizontalpodautoscaler_spec_target_metric",
    "kube_horizontalpodautoscaler_status_condition",
    "kube_horizontalpodautoscaler_status_current_replicas",
    "kube_horizontalpodautoscaler_status_desired_replicas",
    "kube_horizontalpodautoscaler_status_target_metric",
    "kube_horizontalpodautoscaler_labels",
    "kube_horizontalpodautoscaler_annotations",
];

/// PromQL aggregation operators and keywords (function names are recognised by the `(` after them).
const PROMQL_WORDS: &[&str] = &[
    "sum",
    "avg",
    "min",
    "max",
    "count",
    "stddev",
    "stdvar",
    "topk",
    "bottomk",
    "quantile",
    "group",
    "count_values",
    "limitk",
    "limit_ratio",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "and",
    "or",
    "unless",
    "offset",
    "inf",
    "nan",
];

#[derive(Debug, PartialEq)]
enum Token {
    Ident(String),
    Punct(char),
}

/// The metric names a PromQL expression (or a Grafana `label_values(<selector>, <label>)` query) reads.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut expr = expr.trim();
    if let Some(inner) = expr
        .strip_prefix("label_values(")
        .and_then(|s| s.strip_suffix(')'))
    {
        // Only the selector before the last top-level comma names a metric.
        let mut depth = 0;
        let mut last_comma = None;
        for (i, ch) in inner.char_indices() {
            match ch {
                '{' | '(' | '[' => depth += 1,
                '}' | ')' | ']' => depth -= 1,
                ',' if depth == 0 => last_comma = Some(i),
                _ => {}
            }
        }
        match last_comma {
            Some(i) => expr = &inner[..i],
            None => return BTreeSet::new(),
        }
    }
    // Tokens outside string literals, label matchers `{...}` and range selectors `[...]`.
    let mut tokens = Vec::new();
    let mut ident = String::new();
    let (mut braces, mut brackets, mut in_string) = (0, 0, false);
    for ch in expr.chars() {
        let is_ident = ch.is_ascii_alphanumeric() || ch == '_' || ch == ':' || ch == '$';
        if (in_string || braces > 0 || brackets > 0 || !is_ident) && !ident.is_empty() {
            tokens.push(Token::Ident(std::mem::take(&mut ident)));
        }
        match ch {
            '"' => in_string = !in_string,
            _ if in_string => {}
            '{' => braces += 1,
            '}' => braces -= 1,
            '[' => brackets += 1,
            ']' => brackets -= 1,
            _ if braces > 0 || brackets > 0 => {}
            _ if is_ident => ident.push(ch),
            c if c.is_whitespace() => {}
            c => tokens.push(Token::Punct(c)),
        }
    }
    if !ident.is_empty() {
        tokens.push(Token::Ident(ident));
    }
    let mut names = BTreeSet::new();
    let mut i = 0;
    while i < tokens.len() {
        if let Token::Ident(word) = &tokens[i] {
            let next_is_paren = tokens.get(i + 1) == Some(&Token::Punct('('));
            let label_list = matches!(
                word.as_str(),
                "by" | "without" | "on" | "ignoring" | "group_left" | "group_right"
            );
            if label_list && next_is_paren {
                // Skip the label list up to its closing parenthesis.
                while i < tokens.len() && tokens[i] != Token::Punct(')') {
                    i += 1;
                }
            } else if !next_is_paren
                && !PROMQL_WORDS.contains(&word.as_str())
                && !word.starts_with('$')
                && !word.starts_with(|c: char| c.is_ascii_digit())
            {
                names.insert(word.clone());
            }
        }
        i += 1;
    }
    names
}

#[test]
fn promql_metric_name_extraction() {
    assert_eq!(
        metric_names(
            r#"sum by (job) (rate(keda_scaler_detail_errors_total{exported_namespace=~"$namespace"}[$__rate_interval]))"#
        ),
        ["keda_scaler_detail_errors_total".to_owned()]
            .into_iter()
            .collect()
    );
    assert_eq!(
        metric_names(r#"label_values(keda_scaler_metrics_value{scaledObject=~"$so"}, scaler)"#),
        ["keda_scaler_metrics_value".to_owned()]
            .into_iter()
            .collect()
    );
    assert_eq!(
        metric_names(
            "sum by (a, b) (x_total) / on (a) group_left sum without (c) (y_total offset 5m) > bool 1"
        ),
        ["x_total".to_owned(), "y_total".to_owned()]
            .into_iter()
            .collect()
    );
    assert_eq!(
        metric_names(r#"histogram_quantile(0.9, rate(h_bucket{le!="+Inf"}[5m])) * unknown_metric"#),
        ["h_bucket".to_owned(), "unknown_metric".to_owned()]
            .into_iter()
            .collect()
    );
}

#[test]
fn dashboard_uses_upstream_metric_names() -> Result<()> {
    let path = root().join("dashboards/keda-dashboard.json");
    let dash: Value = serde_json::from_str(&std::fs::read_to_string(&path)?)
        .with_context(|| format!("{} is not JSON", path.display()))?;
    assert_eq!(dash["title"], "KEDA");
    let vars: Vec<&str> = dash["templating"]["list"]
        .as_array()
        .context("templating.list")?
        .iter()
        .filter_map(|v| v["name"].as_str())
        .collect();
    assert_eq!(
        vars,
        [
            "datasource",
            "namespace",
            "scaledObject",
            "scaler",
            "metric"
        ]
    );

    // Every query: panel targets and variable queries.
    let mut queries: Vec<String> = Vec::new();
    let mut titles = BTreeSet::new();
    for panel in dash["panels"].as_array().context("panels")? {
        titles.insert(panel["title"].as_str().unwrap_or_default().to_owned());
        for t in panel["targets"].as_array().into_iter().flatten() {
            queries.push(
                t["expr"]
                    .as_str()
                    .context("target without expr")?
                    .to_owned(),
            );
        }
    }
    for v in dash["templating"]["list"].as_array().into_iter().flatten() {
        if v["type"] == "query" {
            let q = v["query"]["query"]
                .as_str()
                .or(v["query"].as_str())
                .context("variable query")?;
            queries.push(q.to_owned());
        }
    }
    for want in [
        "Metric Server",
        "Scale Target",
        "Scaler Total Errors",
        "Scaler Errors",
        "Scaled Object Errors",
        "Scaler Metric Value",
        "Changes in replicas",
        "Current/max replicas",
    ] {
        assert!(titles.contains(want), "no panel {want:?}: {titles:?}");
    }
    let mut used = BTreeSet::new();
    for q in &queries {
        let names = metric_names(q);
        assert!(!names.is_empty(), "no metric found in {q}");
        for n in &names {
            assert!(
                UPSTREAM_METRICS.contains(&n.as_str()),
                "{n} (in {q}) is not an upstream metric name"
            );
        }
        if names.iter().any(|n| n.starts_with("keda_")) {
            assert!(
                q.contains("exported_namespace"),
                "KEDA query without exported_namespace: {q}"
            );
        }
        used.extend(names);
    }
    for must in [
        "keda_scaler_metrics_value",
        "keda_scaler_detail_errors_total",
        "keda_scaled_object_errors_total",
        "kube_horizontalpodautoscaler_status_current_replicas",
        "kube_horizontalpodautoscaler_spec_max_replicas",
    ] {
        assert!(used.contains(must), "the dashboard never queries {must}");
    }

    // With promtool around (Debian's prometheus package), check that every expression parses.
    if Command::new("promtool").arg("--version").output().is_ok() {
        let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
        for (i, q) in queries
            .iter()
            .filter(|q| !q.starts_with("label_values"))
            .enumerate()
        {
            let expr = q.replace("$__rate_interval", "5m").replace('$', "v_");
            rules.push_str(&format!(
                "      - record: dashboard:{i}\n        expr: {}\n",
                serde_json::to_string(&expr)?
            ));
        }
        let file = values_file("dashboard-rules", &rules)?;
        let out = Command::new("promtool")
            .args(["check", "rules", &path_str(&file)])
            .output()?;
        assert!(
            out.status.success(),
            "promtool rejects a dashboard query:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// values_demo.yaml (what `cargo xtask demo` deploys): the guide's values shape with a Redis list trigger,
/// scale to zero, and a short HPA scale-down.
#[test]
fn example_app_demo_values_render_a_redis_scaled_object() -> Result<()> {
    let demo = example_app().join("values_demo.yaml");
    let docs = render(
        &example_app(),
        "example-app",
        &[&demo],
        &["keda.scaledObject[0].triggers[0].metadata.address=127.0.0.1:16379"],
    )?;
    let so = find(&docs, "ScaledObject", "example-app-redis-queue-scaler")?;
    assert_eq!(so["spec"]["scaleTargetRef"]["name"], "example-app");
    assert_eq!(so["spec"]["minReplicaCount"], 0);
    assert_eq!(so["spec"]["maxReplicaCount"], 5);
    assert_eq!(
        so["spec"]["triggers"],
        json!([{"type": "redis", "metadata": {
            "address": "127.0.0.1:16379", "listName": "jobs", "listLength": "10",
            "activationListLength": "0"}}])
    );
    assert_eq!(
        so["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"],
        10
    );
    assert!(of_kind(&docs, "TriggerAuthentication").is_empty());
    // KEDA owns the replica count.
    assert!(
        find(&docs, "Deployment", "example-app")?["spec"]
            .get("replicas")
            .is_none()
    );
    Ok(())
}

/// The guide's application chart values (values_dev.yaml plus the guide's
/// `horizontalPodAutoscalerConfig.behavior.scaleDown.stabilizationWindowSeconds: 600`), rendered and
/// applied next to a running `keda operator`: the HPA is the guide's. New Relic is not reachable from
/// here, so the trigger fails when it samples, not when it parses: the HPA is created all the same.
#[tokio::test]
async fn example_app_guide_values_make_the_guides_hpa() -> Result<()> {
    ensure_crds().await?;
    let client = keda_e2e::client().await?;
    let ns = namespace(&client, "chart-example-app").await?;
    let mut operator = KedaProcess::operator(&ns, "op")?;
    let dev = example_app().join("values_dev.yaml");
    let docs = render(
        &example_app(),
        "example-app",
        &[&dev],
        &[
            "keda.scaledObject[0].advanced.horizontalPodAutoscalerConfig.behavior.scaleDown.stabilizationWindowSeconds=600",
        ],
    )?;
    // The Secret the TriggerAuthentication reads, with a dummy key.
    let secret = json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "keda-new-relic-secret"},
        "type": "Opaque",
        "stringData": {"apiKey": "NRAK-DUMMYDUMMYDUMMYDUMMY", "account": "1234567", "region": "US"},
    });
    let mut items = vec![secret];
    items.extend(docs);
    keda_e2e::apply(
        &ns,
        &serde_json::to_string(&json!({"apiVersion": "v1", "kind": "List", "items": items}))?,
    )?;

    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), &ns);
    let name = "keda-hpa-example-app-newrelic-throughput-scaler";
    let hpa = match wait_for(&hpas, name, Duration::from_secs(60), |_| true).await {
        Ok(h) => h,
        Err(e) => bail!("{e:#}\n--- operator ---\n{}", operator.log_tail()),
    };
    assert!(operator.is_running(), "{}", operator.log_tail());
    let spec = hpa.spec.context("HPA without spec")?;
    assert_eq!(spec.scale_target_ref.name, "example-app");
    assert_eq!(spec.scale_target_ref.kind, "Deployment");
    assert_eq!(spec.min_replicas, Some(1));
    assert_eq!(spec.max_replicas, 5);
    let behavior = serde_json::to_value(spec.behavior.context("HPA without behavior")?)?;
    // The guide's HPA, as `kubectl get hpa -o yaml` shows it.
    assert_eq!(
        behavior["scaleDown"],
        json!({
            "policies": [{"periodSeconds": 15, "type": "Percent", "value": 100}],
            "selectPolicy": "Max",
            "stabilizationWindowSeconds": 600,
        }),
        "{behavior}"
    );
    // Scale-up left to Kubernetes' defaults.
    assert_eq!(
        behavior["scaleUp"],
        json!({
            "policies": [
                {"periodSeconds": 15, "type": "Pods", "value": 4},
                {"periodSeconds": 15, "type": "Percent", "value": 100},
            ],
            "selectPolicy": "Max",
            "stabilizationWindowSeconds": 0,
        }),
        "{behavior}"
    );
    operator.terminate();
    let _ = kubectl(&["delete", "namespace", &ns, "--wait=false"], None);
    Ok(())
}

/// Uninstalls the release when dropped, so a failed assertion does not leave the APIService behind.
struct Release {
    installed: bool,
}

impl Release {
    fn uninstall(&mut self) -> Result<()> {
        if !self.installed {
            return Ok(());
        }
        self.installed = false;
        helm_ok(&[
            "uninstall",
            RELEASE,
            "--namespace",
            NAMESPACE,
            "--wait",
            "--timeout",
            "120s",
        ])?;
        Ok(())
    }
}

impl Drop for Release {
    fn drop(&mut self) {
        if let Err(e) = self.uninstall() {
            eprintln!("cleanup: {e:#}");
        }
    }
}

#[tokio::test]
async fn guide_install_on_the_local_control_plane() -> Result<()> {
    keda_e2e::client().await?; // fails with a hint when no cluster is configured
    // Only one APIService v1beta1.external.metrics.k8s.io and one keda-admission can exist.
    let _lock = cluster_scoped_lock()?;
    let values = values_file("guide-install", GUIDE_VALUES)?;
    let chart = path_str(&chart());
    let mut release = Release { installed: true };
    helm_ok(&[
        "upgrade",
        "--install",
        "--create-namespace",
        "--namespace",
        NAMESPACE,
        RELEASE,
        &chart,
        "--values",
        &path_str(&values),
        "--wait",
        "--timeout",
        "180s",
    ])?;

    // kubectl get deploy -n keda: all three ready, the operator 2/2.
    let table = kubectl_ok(&["get", "deploy", "-n", NAMESPACE], None)?;
    let mut ready = BTreeMap::new();
    for row in 0..table.lines().count().saturating_sub(1) {
        if let (Some(name), Some(r)) = (
            table_cell(&table, row, "NAME"),
            table_cell(&table, row, "READY"),
        ) {
            ready.insert(name, r);
        }
    }
    let want: BTreeMap<String, String> = [
        ("keda-admission-webhooks", "1/1"),
        ("keda-operator", "2/2"),
        ("keda-operator-metrics-apiserver", "1/1"),
    ]
    .into_iter()
    .map(|(a, b)| (a.to_owned(), b.to_owned()))
    .collect();
    assert_eq!(ready, want, "kubectl get deploy -n keda:\n{table}");
    let all = kubectl_ok(&["get", "all", "-n", NAMESPACE], None)?;
    assert_eq!(
        all.lines()
            .filter(|l| l.starts_with("pod/") && l.contains("Running"))
            .count(),
        4,
        "kubectl get all -n keda:\n{all}"
    );

    // kubectl get service -n keda -o wide: the guide's table.
    let table = kubectl_ok(&["get", "service", "-n", NAMESPACE, "-o", "wide"], None)?;
    let mut rows = Vec::new();
    for row in 0..table.lines().count().saturating_sub(1) {
        let cell = |c: &str| table_cell(&table, row, c).unwrap_or_default();
        rows.push((
            cell("NAME"),
            cell("TYPE"),
            cell("PORT(S)"),
            cell("SELECTOR"),
        ));
    }
    let want: Vec<(String, String, String, String)> = [
        (
            "keda-admission-webhooks",
            "ClusterIP",
            "443/TCP",
            "app=keda-admission-webhooks",
        ),
        (
            "keda-operator",
            "ClusterIP",
            "9666/TCP,8080/TCP",
            "app=keda-operator",
        ),
        (
            "keda-operator-metrics-apiserver",
            "ClusterIP",
            "443/TCP,8080/TCP",
            "app=keda-operator-metrics-apiserver",
        ),
    ]
    .into_iter()
    .map(|(a, b, c, d)| (a.to_owned(), b.to_owned(), c.to_owned(), d.to_owned()))
    .collect();
    assert_eq!(rows, want, "kubectl get service -n keda -o wide:\n{table}");

    // kubectl api-resources --api-group keda.sh: the four kinds.
    let out = kubectl(
        &["api-resources", "--api-group", "keda.sh", "--no-headers"],
        None,
    )?;
    let resources = String::from_utf8_lossy(&out.stdout);
    let kinds: BTreeSet<&str> = resources
        .lines()
        .filter_map(|l| l.split_whitespace().last())
        .collect();
    assert_eq!(
        kinds,
        [
            "ClusterTriggerAuthentication",
            "ScaledJob",
            "ScaledObject",
            "TriggerAuthentication"
        ]
        .into_iter()
        .collect(),
        "kubectl api-resources --api-group keda.sh:\n{resources}{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The APIService as installed: no insecureSkipTLSVerify.
    let api: Value = serde_json::from_str(&kubectl_ok(
        &[
            "get",
            "apiservice",
            "v1beta1.external.metrics.k8s.io",
            "-o",
            "json",
        ],
        None,
    )?)?;
    assert!(
        api["spec"]
            .get("insecureSkipTLSVerify")
            .is_none_or(|v| v == false),
        "{api}"
    );
    assert_eq!(
        api["spec"]["service"]["name"],
        "keda-operator-metrics-apiserver"
    );

    // Then the real keda processes in place of those pods, the chart's Services pointed at them: the
    // aggregation layer answers through the chart's APIService and Service, and the chart's
    // ValidatingWebhookConfiguration reaches the webhooks (scoped to this namespace while e2e tests run
    // in others).
    let mut processes = ChartProcesses::start(NAMESPACE, Some(NAMESPACE)).await?;
    let list = processes
        .wait_external_metrics_api(Duration::from_secs(90))
        .await?;
    assert_eq!(
        list["groupVersion"], "external.metrics.k8s.io/v1beta1",
        "{list}"
    );
    assert_eq!(list["kind"], "APIResourceList", "{list}");
    let api: Value = serde_json::from_str(&kubectl_ok(
        &[
            "get",
            "apiservice",
            "v1beta1.external.metrics.k8s.io",
            "-o",
            "json",
        ],
        None,
    )?)?;
    assert!(
        api["spec"]["caBundle"]
            .as_str()
            .is_some_and(|b| !b.is_empty()),
        "the operator did not patch the CA into the APIService: {api}"
    );
    let bad = "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {name: chart-webhook-check}\nspec:\n  scaleTargetRef: {name: nothing}\n  triggers:\n  - type: cron\n    metadata: {timezone: Etc/UTC, start: 0 8 * * *, end: 0 9 * * *, desiredReplicas: '2'}\n    authenticationRef: {name: no-such-trigger-auth}\n";
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = kubectl(
            &["apply", "--dry-run=server", "-n", NAMESPACE, "-f", "-"],
            Some(bad),
        )?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() && stderr.contains("admission webhook") {
            assert!(stderr.contains("denied the request"), "{stderr}");
            break;
        }
        processes.check_running()?;
        assert!(
            Instant::now() < deadline,
            "the chart's webhook did not reject a ScaledObject with a missing TriggerAuthentication \
             (success: {}): {stderr}\n--- admission-webhooks ---\n{}",
            out.status.success(),
            processes.webhooks.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    chart_identities_do_their_work(&mut processes).await?;
    drop(processes);

    // helm uninstall removes the cluster-scoped objects again (the CRDs stay, as Helm's crds/ does).
    release.uninstall()?;
    for (kind, name) in [
        ("apiservice", "v1beta1.external.metrics.k8s.io"),
        ("validatingwebhookconfiguration", "keda-admission"),
        ("clusterrole", "keda-operator"),
    ] {
        let out = kubectl(&["get", kind, name], None)?;
        assert!(
            !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("NotFound"),
            "{kind} {name} is still there after helm uninstall"
        );
    }
    kubectl_ok(&["get", "crd", "scaledobjects.keda.sh"], None)?;
    Ok(())
}

/// What each process must be allowed to do with only its chart identity (the processes run with the
/// release's ServiceAccount tokens): the webhook GETs TriggerAuthentications but no Secret and still judges
/// the rest of a trigger whose parameters come from a Secret; the operator reads that Secret, reconciles
/// the ScaledObject (Ready, its HPA) and serves the metric; the metrics API server (authn/authz delegated to
/// the API server) answers the HPA's question with it.
async fn chart_identities_do_their_work(processes: &mut ChartProcesses) -> Result<()> {
    let result = chart_identities_checks(processes).await;
    // Cleaned up whatever happened, so a failure does not leave a Deployment in the release namespace.
    let _ = kubectl(
        &[
            "delete",
            "-n",
            NAMESPACE,
            "scaledobject/identity-app",
            "--wait=true",
            "--timeout=60s",
            "--ignore-not-found",
        ],
        None,
    );
    let _ = kubectl(
        &[
            "delete",
            "-n",
            NAMESPACE,
            "deployment/identity-app",
            "secret/identity-api-key",
            "triggerauthentication/identity-ta",
            "--ignore-not-found",
        ],
        None,
    );
    result
}

async fn chart_identities_checks(processes: &mut ChartProcesses) -> Result<()> {
    use keda_api::ScaledObject;
    let server = keda_e2e::MetricServer::start_with_key(7.0, Some("chart-k3y")).await?;
    keda_e2e::apply(
        NAMESPACE,
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: identity-app}\nspec:\n  replicas: 1\n  selector: {matchLabels: {app: identity-app}}\n  template:\n    metadata: {labels: {app: identity-app}}\n    spec:\n      containers: [{name: app, image: example/app:1}]\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: identity-api-key}\nstringData: {key: chart-k3y}\n---\napiVersion: keda.sh/v1alpha1\nkind: TriggerAuthentication\nmetadata: {name: identity-ta}\nspec:\n  secretTargetRef:\n  - {parameter: apiKey, name: identity-api-key, key: key}\n",
    )?;
    let so = format!(
        "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {{name: identity-app}}\nspec:\n  scaleTargetRef: {{name: identity-app}}\n  pollingInterval: 1\n  triggers:\n  - type: metrics-api\n    metadata: {{url: \"{}\", valueLocation: value, targetValue: \"2\", authMode: apiKey}}\n    authenticationRef: {{name: identity-ta}}\n",
        server.url
    );
    // The same trigger without its URL: the webhook reads the TriggerAuthentication, stands in for the
    // Secret's value it may not read, and rejects the missing field (with a 403 on the
    // TriggerAuthentication it would only have warned and skipped the parse).
    let no_url = so.replace(&format!("url: \"{}\", ", server.url), "");
    let out = kubectl(
        &["apply", "--dry-run=server", "-n", NAMESPACE, "-f", "-"],
        Some(&no_url),
    )?;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    anyhow::ensure!(
        !out.status.success() && stderr.contains("denied the request") && stderr.contains("url"),
        "a trigger without url was not rejected by the chart's webhook: {stderr}\n--- admission-webhooks ---\n{}",
        processes.webhooks.log_tail()
    );
    let out = kubectl(&["apply", "-n", NAMESPACE, "-f", "-"], Some(&so))?;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    anyhow::ensure!(
        out.status.success() && !stderr.to_lowercase().contains("forbidden"),
        "the chart's webhook did not admit a valid ScaledObject cleanly: {stderr}\n--- admission-webhooks ---\n{}",
        processes.webhooks.log_tail()
    );

    // The operator, as keda-operator: the Secret behind the TriggerAuthentication, Ready, the HPA.
    let client = keda_e2e::client().await?;
    let sos: Api<ScaledObject> = Api::namespaced(client.clone(), NAMESPACE);
    let ready = wait_for(&sos, "identity-app", Duration::from_secs(60), |so| {
        so.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.r#type == "Ready" && c.status == "True"))
    })
    .await;
    if let Err(e) = ready {
        bail!(
            "the operator with the chart's identity did not make the ScaledObject Ready: {e:#}\n--- operator ---\n{}",
            processes.operator.log_tail()
        );
    }
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), NAMESPACE);
    wait_for(
        &hpas,
        "keda-hpa-identity-app",
        Duration::from_secs(30),
        |_| true,
    )
    .await?;

    // The metrics API server, as keda-metrics-server, through the aggregation layer: the value the
    // operator read with the key from the Secret.
    let path = format!(
        "/apis/external.metrics.k8s.io/v1beta1/namespaces/{NAMESPACE}/s0-metric-api-value?labelSelector=scaledobject.keda.sh%2Fname%3Didentity-app"
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        // Off this thread: the metric server answering the operator runs on this test's runtime.
        let raw = path.clone();
        let out =
            tokio::task::spawn_blocking(move || kubectl(&["get", "--raw", &raw], None)).await??;
        if out.status.success() {
            let list: Value = serde_json::from_slice(&out.stdout)?;
            anyhow::ensure!(list["items"][0]["value"] == "7", "{list}");
            break;
        }
        processes.check_running()?;
        anyhow::ensure!(
            Instant::now() < deadline,
            "{path} did not answer with the chart's identities: {}\n--- metrics-apiserver ---\n{}\n--- operator ---\n{}",
            String::from_utf8_lossy(&out.stderr),
            processes.metrics_apiserver.log_tail(),
            processes.operator.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Ok(())
}

const TEST_CRD: &str = "\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.chart-test.keda-rs.dev
spec:
  group: chart-test.keda-rs.dev
  scope: Namespaced
  names:
    kind: Widget
    listKind: WidgetList
    plural: widgets
    singular: widget
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          x-kubernetes-preserve-unknown-fields: true
";

fn copy_dir(from: &Path, to: &Path, skip: &str) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        if entry.file_name() == skip {
            continue;
        }
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target, "")?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

/// Deletes what the adoption test created if it fails half-way.
struct AdoptionCleanup {
    release: String,
    namespace: String,
}

impl Drop for AdoptionCleanup {
    fn drop(&mut self) {
        let _ = helm(&[
            "uninstall",
            &self.release,
            "--namespace",
            &self.namespace,
            "--wait",
        ]);
        let _ = kubectl(
            &[
                "delete",
                "crd",
                "widgets.chart-test.keda-rs.dev",
                "--ignore-not-found",
            ],
            None,
        );
        let _ = kubectl(
            &[
                "delete",
                "namespace",
                &self.namespace,
                "--ignore-not-found",
                "--wait=false",
            ],
            None,
        );
    }
}

/// Upgrading a release of the upstream chart, whose CRDs are templates owned by the release, keeps the
/// CRDs (and the objects in them) instead of deleting them: charts/keda renders a crds/ CRD that the
/// release already owns. A stand-in CRD and a stand-in "upstream" chart keep the real keda.sh CRDs,
/// which other tests use, out of it.
#[tokio::test]
async fn upgrade_from_a_chart_with_templated_crds_keeps_them() -> Result<()> {
    keda_e2e::client().await?;
    let _lock = cluster_scoped_lock()?;
    let id = std::process::id();
    let release = format!("adopt-{id}");
    let namespace = format!("chart-adopt-{id}");
    let work = root().join(format!("target/keda-e2e-chart/{id}-adopt"));
    let _ = std::fs::remove_dir_all(&work);
    // The "upstream" chart: the CRD as a template.
    let upstream = work.join("upstream");
    std::fs::create_dir_all(upstream.join("templates"))?;
    std::fs::write(
        upstream.join("Chart.yaml"),
        "apiVersion: v2\nname: keda\nversion: 2.20.2\n",
    )?;
    std::fs::write(upstream.join("templates/crd.yaml"), TEST_CRD)?;
    // charts/keda with the stand-in CRD as its crds/ directory.
    let ours = work.join("keda");
    copy_dir(&chart(), &ours, "crds")?;
    std::fs::create_dir_all(ours.join("crds"))?;
    std::fs::write(
        ours.join("crds/chart-test.keda-rs.dev_widgets.yaml"),
        TEST_CRD,
    )?;

    let _ = kubectl(
        &[
            "delete",
            "crd",
            "widgets.chart-test.keda-rs.dev",
            "--ignore-not-found",
        ],
        None,
    )?;
    let _cleanup = AdoptionCleanup {
        release: release.clone(),
        namespace: namespace.clone(),
    };
    helm_ok(&[
        "install",
        &release,
        &path_str(&upstream),
        "--namespace",
        &namespace,
        "--create-namespace",
        "--wait",
    ])?;
    kubectl_ok(
        &[
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "crd/widgets.chart-test.keda-rs.dev",
        ],
        None,
    )?;
    kubectl_ok(
        &["apply", "-n", &namespace, "-f", "-"],
        Some(
            "apiVersion: chart-test.keda-rs.dev/v1\nkind: Widget\nmetadata:\n  name: w1\nspec:\n  size: 3\n",
        ),
    )?;

    let operator = format!("adopt-{id}-operator");
    helm_ok(&[
        "upgrade",
        &release,
        &path_str(&ours),
        "--namespace",
        &namespace,
        "--set",
        &format!("operator.name={operator}"),
        "--set",
        "metricsServer.enabled=false",
        "--set",
        "webhooks.enabled=false",
        "--wait",
        "--timeout",
        "120s",
    ])?;
    let crd: Value = serde_json::from_str(&kubectl_ok(
        &["get", "crd", "widgets.chart-test.keda-rs.dev", "-o", "json"],
        None,
    )?)?;
    assert_eq!(
        crd["metadata"]["annotations"]["meta.helm.sh/release-name"],
        release.as_str(),
        "{crd}"
    );
    kubectl_ok(&["get", "widget", "w1", "-n", &namespace], None)
        .context("the Widget did not survive the upgrade")?;
    let manifest = helm_ok(&["get", "manifest", &release, "--namespace", &namespace])?;
    assert!(
        manifest.contains("name: widgets.chart-test.keda-rs.dev"),
        "the upgraded release no longer manages the CRD"
    );
    Ok(())
}
