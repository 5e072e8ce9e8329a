//! The Grafana dashboard (`dashboards/keda-dashboard.json`) against real data: Debian's Prometheus scrapes
//! a running `keda operator` every second, and every panel query — Grafana template variables replaced
//! by this test's namespace, ScaledObject, scaler and metric — returns at least one series through
//! Prometheus' HTTP API. The template variables' own `label_values(...)` queries must offer those values.
//!
//! Panels built on kube-state-metrics (`kube_horizontalpodautoscaler_*`) cannot be served here: no
//! kube-state-metrics runs next to the local control plane. They are listed in
//! [`KUBE_STATE_METRICS_PANELS`], and the test checks that they use nothing but `kube_*` metrics (see
//! docs/chart.md for how they are covered).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use keda_api::ScaledObject;
use keda_e2e::{KedaProcess, MetricServer, apply, client, ensure_crds, namespace, root, wait_for};
use kube::Api;
use serde_json::Value;

/// Panels whose queries need kube-state-metrics (replicas of the HPA `keda-hpa-<scaledObject>`).
const KUBE_STATE_METRICS_PANELS: &[&str] = &[
    "Current/max replicas (time)",
    "Changes in replicas",
    "Current/max replicas",
];

const SCALED_OBJECT: &str = "orders";
/// The `scaler` label of the `keda_scaler_*` series: the trigger's name, or upstream's Go scaler type name
/// when unnamed (`metricsAPIScaler`). The HTTP request series carry the trigger type instead, as upstream.
const SCALER: &str = "metricsAPIScaler";
const METRIC: &str = "s0-metric-api-value";
/// `$__rate_interval`: Grafana's is max($__interval + scrape interval, 4 × scrape interval) = 4 s at a 1 s
/// scrape interval; a wider window keeps `rate` defined on a loaded machine.
const RATE_INTERVAL: &str = "10s";
const T: Duration = Duration::from_secs(120);

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind(("127.0.0.1", 0))?
        .local_addr()?
        .port())
}

/// Debian's `prometheus`, killed (and its data removed) when dropped.
struct Prometheus {
    child: Child,
    dir: PathBuf,
    url: String,
    log: PathBuf,
}

impl Prometheus {
    /// Scrapes `target` every second as job `keda-operator`, with target label `namespace="keda"` as a
    /// Prometheus Operator PodMonitor would add: the operator's own `namespace` label then reads
    /// `exported_namespace`, which is what the dashboard queries.
    fn start(name: &str, target: &str) -> Result<Prometheus> {
        let bin = "/usr/bin/prometheus";
        if !std::path::Path::new(bin).exists() {
            bail!(
                "{bin} is missing: install Debian's `prometheus` (tests/backends/debian-packages.txt; `cargo xtask test` does)"
            );
        }
        let port = free_port()?;
        let dir = std::env::temp_dir().join(format!("keda-e2e-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: keda-operator\n    scrape_interval: 1s\n    static_configs:\n      - targets: ['{target}']\n        labels: {{namespace: keda}}\n"
        );
        let config_path = dir.join("prometheus.yml");
        std::fs::write(&config_path, config)?;
        let logs = root().join("target/keda-e2e-logs");
        std::fs::create_dir_all(&logs)?;
        let log = logs.join(format!("{name}.log"));
        let out = std::fs::File::create(&log)?;
        let child = Command::new(bin)
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .context("starting prometheus")?;
        Ok(Prometheus {
            child,
            dir,
            url: format!("http://127.0.0.1:{port}"),
            log,
        })
    }

    async fn wait_ready(&mut self, http: &reqwest::Client) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(r) = http.get(format!("{}/-/ready", self.url)).send().await
                && r.status().is_success()
            {
                return Ok(());
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                bail!("prometheus exited ({status}):\n{}", self.log_tail());
            }
            if Instant::now() > deadline {
                bail!("prometheus not ready within 60 s:\n{}", self.log_tail());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// `/api/v1/query` at the current time: the result vector (or matrix).
    async fn query(&self, http: &reqwest::Client, promql: &str) -> Result<Vec<Value>> {
        let body: Value = http
            .get(format!("{}/api/v1/query", self.url))
            .query(&[("query", promql)])
            .send()
            .await?
            .json()
            .await?;
        if body["status"] != "success" {
            bail!("query {promql:?} failed: {body}");
        }
        Ok(body["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default())
    }

    /// `/api/v1/label/<label>/values?match[]=<selector>`.
    async fn label_values(
        &self,
        http: &reqwest::Client,
        selector: &str,
        label: &str,
    ) -> Result<Vec<String>> {
        let body: Value = http
            .get(format!("{}/api/v1/label/{label}/values", self.url))
            .query(&[("match[]", selector)])
            .send()
            .await?
            .json()
            .await?;
        if body["status"] != "success" {
            bail!("label values of {label} for {selector:?} failed: {body}");
        }
        Ok(body["data"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect())
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Every panel of the dashboard (rows' nested panels too), as (title, queries).
fn panels(dash: &Value) -> Vec<(String, Vec<String>)> {
    fn walk(list: &Value, out: &mut Vec<(String, Vec<String>)>) {
        for p in list.as_array().into_iter().flatten() {
            let queries: Vec<String> = p["targets"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|t| t["expr"].as_str().map(str::to_owned))
                .collect();
            if !queries.is_empty() {
                out.push((p["title"].as_str().unwrap_or_default().to_owned(), queries));
            }
            walk(&p["panels"], out);
        }
    }
    let mut out = Vec::new();
    walk(&dash["panels"], &mut out);
    out
}

/// The metric names a PromQL expression selects: identifiers directly followed by a `{…}` matcher
/// (every selector of the dashboard has one; functions are followed by `(`, labels by `=`).
fn metric_names(expr: &str) -> BTreeSet<String> {
    let bytes = expr.as_bytes();
    let is_ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b':';
    let mut names = BTreeSet::new();
    let mut depth = 0;
    let mut quote: Option<u8> = None;
    let mut escaped = false;
    for (i, &c) in bytes.iter().enumerate() {
        if let Some(q) = quote {
            match c {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                _ if c == q => quote = None,
                _ => {}
            }
            continue;
        }
        match c {
            b'"' | b'\'' | b'`' => quote = Some(c),
            b'{' => {
                if depth == 0 {
                    let start = bytes[..i]
                        .iter()
                        .rposition(|&b| !is_ident(b))
                        .map_or(0, |p| p + 1);
                    if start < i {
                        names.insert(expr[start..i].to_owned());
                    }
                }
                depth += 1;
            }
            b'}' => depth -= 1,
            _ => {}
        }
    }
    names
}

/// Grafana's template variables replaced by concrete values (longest names first, `${x}` and `$x`).
fn substitute(expr: &str, vars: &[(&str, &str)]) -> String {
    let mut vars = vars.to_vec();
    vars.sort_by_key(|(name, _)| std::cmp::Reverse(name.len()));
    let mut out = expr.to_owned();
    for (name, value) in vars {
        out = out.replace(&format!("${{{name}}}"), value);
        out = out.replace(&format!("${name}"), value);
    }
    out
}

#[test]
fn promql_helpers() {
    assert_eq!(
        metric_names(
            r#"sum by (h) (kube_a{namespace=~"$namespace", x="{\"}"}) / sum(rate(keda_b_total{y='}'}[5m]))"#
        ),
        BTreeSet::from(["kube_a".to_owned(), "keda_b_total".to_owned()])
    );
    assert_eq!(
        substitute(
            r#"x{a=~"$scaledObject", b=~"$scaler", c=~"keda-hpa-${scaledObject}"}[$__rate_interval]"#,
            &[
                ("scaler", "s"),
                ("scaledObject", "so"),
                ("__rate_interval", "4s")
            ]
        ),
        r#"x{a=~"so", b=~"s", c=~"keda-hpa-so"}[4s]"#
    );
}

fn deployment(name: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {name}}}\nspec:\n  replicas: 1\n  selector: {{matchLabels: {{app: {name}}}}}\n  template:\n    metadata: {{labels: {{app: {name}}}}}\n    spec:\n      containers: [{{name: app, image: example/app:1}}]\n"
    )
}

#[tokio::test]
async fn every_dashboard_panel_has_data() -> Result<()> {
    let path = root().join("dashboards/keda-dashboard.json");
    let dash: Value = serde_json::from_str(&std::fs::read_to_string(&path)?)
        .with_context(|| format!("{} is not JSON", path.display()))?;

    ensure_crds().await?;
    let c = client().await?;
    let ns = namespace(&c, "dash").await?;
    let metrics_port = free_port()?;
    let metrics_addr = format!("127.0.0.1:{metrics_port}");
    let mut op = KedaProcess::operator_with(&ns, "dash-op", &metrics_addr, &[])?;
    let server = MetricServer::start(7.0).await?;
    apply(&ns, &deployment("orders-app"))?;
    apply(
        &ns,
        &format!(
            "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {{name: {SCALED_OBJECT}}}\nspec:\n  scaleTargetRef: {{name: orders-app}}\n  pollingInterval: 1\n  minReplicaCount: 1\n  maxReplicaCount: 3\n  triggers:\n  - type: metrics-api\n    metadata: {{url: \"{}\", valueLocation: value, targetValue: \"10\", activationTargetValue: \"5\"}}\n",
            server.url
        ),
    )?;
    // Counted in keda_resource_registered_total{type="trigger_authentication"}; nothing uses it.
    apply(
        &ns,
        "apiVersion: v1\nkind: Secret\nmetadata: {name: creds}\nstringData: {key: k}\n---\napiVersion: keda.sh/v1alpha1\nkind: TriggerAuthentication\nmetadata: {name: creds}\nspec:\n  secretTargetRef:\n  - {parameter: apiKey, name: creds, key: key}\n",
    )?;
    let sos: Api<ScaledObject> = Api::namespaced(c.clone(), &ns);
    wait_for(&sos, SCALED_OBJECT, T, |so| {
        so.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.r#type == "Ready" && c.status == "True"))
    })
    .await?;

    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let mut prom = Prometheus::start(&format!("{ns}-prometheus"), &metrics_addr)?;
    prom.wait_ready(&http).await?;

    let vars = [
        ("namespace", ns.as_str()),
        ("scaledObject", SCALED_OBJECT),
        ("scaler", SCALER),
        ("metric", METRIC),
        ("__rate_interval", RATE_INTERVAL),
        ("__interval", "1s"),
    ];

    // Split the panels: the operator's metrics must have data; kube-state-metrics panels are listed.
    let mut kube_panels = BTreeSet::new();
    let mut queries = Vec::new();
    for (title, exprs) in panels(&dash) {
        let names: BTreeSet<String> = exprs.iter().flat_map(|e| metric_names(e)).collect();
        assert!(!names.is_empty(), "panel {title:?} selects no metric");
        if KUBE_STATE_METRICS_PANELS.contains(&title.as_str()) {
            assert!(
                names.iter().all(|n| n.starts_with("kube_")),
                "kube-state-metrics panel {title:?} also uses {names:?}"
            );
            kube_panels.insert(title);
        } else {
            assert!(
                names.iter().all(|n| n.starts_with("keda_")),
                "panel {title:?} uses {names:?}: list it in KUBE_STATE_METRICS_PANELS only if it needs kube-state-metrics"
            );
            for e in exprs {
                queries.push((title.clone(), substitute(&e, &vars)));
            }
        }
    }
    assert_eq!(
        kube_panels,
        KUBE_STATE_METRICS_PANELS
            .iter()
            .map(|t| (*t).to_owned())
            .collect::<BTreeSet<_>>(),
        "KUBE_STATE_METRICS_PANELS names panels the dashboard does not have"
    );
    assert!(!queries.is_empty());

    // Template variables: each `label_values(selector, label)` offers the value used above.
    let mut variables = Vec::new();
    for v in dash["templating"]["list"].as_array().into_iter().flatten() {
        if v["type"] != "query" {
            continue;
        }
        let q = v["query"]["query"]
            .as_str()
            .or(v["query"].as_str())
            .context("variable query")?;
        let inner = q
            .strip_prefix("label_values(")
            .and_then(|q| q.strip_suffix(')'))
            .with_context(|| format!("variable query {q:?} is not label_values(…)"))?;
        let (selector, label) = inner.rsplit_once(',').context("label_values arguments")?;
        let name = v["name"].as_str().context("variable name")?;
        let want = vars
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, value)| *value)
            .with_context(|| format!("no value for variable {name}"))?;
        variables.push((
            name.to_owned(),
            substitute(selector.trim(), &vars),
            label.trim().to_owned(),
            want,
        ));
    }

    // Poll until everything has data: the first scrapes and two samples per rate window take a few seconds.
    let deadline = Instant::now() + T;
    loop {
        let mut missing = Vec::new();
        for (title, q) in &queries {
            if prom.query(&http, q).await?.is_empty() {
                missing.push(format!("panel {title:?}: {q}"));
            }
        }
        for (name, selector, label, want) in &variables {
            let offered = prom.label_values(&http, selector, label).await?;
            if !offered.iter().any(|v| v == want) {
                missing.push(format!(
                    "variable {name}: {label} of {selector} offers {offered:?}, not {want:?}"
                ));
            }
        }
        if missing.is_empty() {
            break;
        }
        if !op.is_running() {
            bail!("the operator exited:\n{}", op.log_tail());
        }
        if Instant::now() > deadline {
            bail!(
                "no data after {T:?}:\n{}\n--- operator ---\n{}\n--- prometheus ---\n{}",
                missing.join("\n"),
                op.log_tail(),
                prom.log_tail()
            );
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }

    // The registered-object gauges and the scalers' HTTP metrics, through the same scrape.
    let sel = format!(r#"exported_namespace="{ns}""#);
    for (q, want) in [
        (
            format!(r#"keda_resource_registered_total{{{sel}, type="scaled_object"}}"#),
            1.0,
        ),
        (
            format!(r#"keda_resource_registered_total{{{sel}, type="trigger_authentication"}}"#),
            1.0,
        ),
    ] {
        let deadline = Instant::now() + T;
        loop {
            let result = prom.query(&http, &q).await?;
            let value = result
                .first()
                .and_then(|r| r["value"][1].as_str())
                .and_then(|v| v.parse::<f64>().ok());
            if value == Some(want) {
                break;
            }
            if Instant::now() > deadline {
                bail!("{q} is {result:?}, want {want}");
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
    for q in [
        r#"keda_trigger_registered_total{type="metrics-api"} >= 1"#.to_owned(),
        format!(
            r#"keda_scaler_http_requests_total{{{sel}, scaled_resource="{SCALED_OBJECT}", scaler="metrics-api", trigger_name="", metric_name="{METRIC}", status_code="200"}} > 0"#
        ),
        r#"keda_scaler_http_request_duration_seconds_count{scaler="metrics-api", status_code="200"} > 0"#
            .to_owned(),
    ] {
        assert!(
            !prom.query(&http, &q).await?.is_empty(),
            "{q}: no series\n--- operator ---\n{}",
            op.log_tail()
        );
    }

    op.terminate();
    Ok(())
}
