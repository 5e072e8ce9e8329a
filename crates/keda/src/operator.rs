//! `keda operator`: flags and environment as upstream's keda-operator, then `keda_operator::run`.

use std::time::Duration;

use clap::Args;

#[derive(Args, Debug)]
pub struct OperatorArgs {
    /// Address of the Prometheus `/metrics` endpoint.
    #[arg(long, default_value = ":8080")]
    metrics_bind_address: String,
    /// Address of `/healthz` and `/readyz`.
    #[arg(long, default_value = ":8081")]
    health_probe_bind_address: String,
    /// Elect a leader on Lease `operator.keda.sh`, so only one replica acts.
    #[arg(long, default_value_t = false, num_args = 0..=1, default_missing_value = "true")]
    leader_elect: bool,
    /// How long a standby waits, after it last saw the Lease change, before taking it over (upstream's
    /// environment variable; client-go's default).
    #[arg(long, env = "KEDA_OPERATOR_LEADER_ELECTION_LEASE_DURATION", default_value = "15s", value_parser = crate::flags::parse_duration)]
    leader_elect_lease_duration: Duration,
    /// The leader stops acting when it could not renew the Lease within this time (less than the lease
    /// duration).
    #[arg(long, env = "KEDA_OPERATOR_LEADER_ELECTION_RENEW_DEADLINE", default_value = "10s", value_parser = crate::flags::parse_duration)]
    leader_elect_renew_deadline: Duration,
    /// How often the Lease is renewed, or tried by a standby.
    #[arg(long, env = "KEDA_OPERATOR_LEADER_ELECTION_RETRY_PERIOD", default_value = "2s", value_parser = crate::flags::parse_duration)]
    leader_elect_retry_period: Duration,
    /// Namespaces to watch (comma-separated); empty watches all.
    #[arg(long, env = "WATCH_NAMESPACE", default_value = "")]
    watch_namespace: String,
    /// KEDA's own namespace (Lease, ClusterTriggerAuthentication objects).
    #[arg(long, env = "KEDA_CLUSTER_OBJECT_NAMESPACE")]
    cluster_object_namespace: Option<String>,
    /// Timeout of one scaler poll, in milliseconds.
    #[arg(long, env = "KEDA_HTTP_DEFAULT_TIMEOUT", default_value_t = 3000)]
    http_default_timeout: u64,
    /// ScaledObject reconciles run at once (upstream's variable). Bounds the burst of API requests, and so
    /// the memory, when many objects arrive together. Default 32, not upstream's 5: a reconcile waits on a
    /// few API round trips, and 5 at a time makes 1,000 new objects take minutes (measured: 226 s).
    #[arg(
        long,
        env = "KEDA_SCALEDOBJECT_CTRL_MAX_RECONCILES",
        default_value_t = 32
    )]
    scaledobject_max_reconciles: u16,
    /// Address of the gRPC metrics service the metrics API server calls (leader only).
    #[arg(long, default_value = ":9666")]
    metrics_service_bind_address: String,
    /// Directory with ca.crt, tls.crt and tls.key (Secret kedaorg-certs mounted). Without the files the
    /// gRPC metrics service is not started.
    #[arg(long, default_value = "/certs")]
    cert_dir: std::path::PathBuf,
    /// Issue and renew the certificates in Secret `--cert-secret-name` and patch the CA into the
    /// APIService and webhook configuration.
    #[arg(long, default_value_t = false, num_args = 0..=1, default_missing_value = "true")]
    enable_cert_rotation: bool,
    #[arg(long, default_value = "kedaorg-certs")]
    cert_secret_name: String,
    #[arg(long, default_value = "keda-operator")]
    operator_service_name: String,
    #[arg(long, default_value = "keda-operator-metrics-apiserver")]
    metrics_server_service_name: String,
    #[arg(long, default_value = "keda-admission-webhooks")]
    webhooks_service_name: String,
    #[arg(long, default_value = "cluster.local")]
    k8s_cluster_domain: String,
    #[arg(long, default_value_t = true, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    enable_apiservice_patching: bool,
    #[arg(long, default_value_t = true, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    enable_webhook_patching: bool,
    /// Name of the leader-election Lease.
    #[arg(long, default_value = "operator.keda.sh")]
    leader_election_id: String,
    /// The only directory whose files tenants may name (postgresql `sslrootcert`/`sslcert`/`sslkey`,
    /// Unix sockets, a ClusterTriggerAuthentication's `filePath`), symbolic links followed. Empty: none.
    #[arg(long, default_value = "")]
    filepath_auth_root_path: String,
    /// Only ScaledObjects (and their HPAs) with these labels are watched and reconciled (upstream's
    /// `WATCH_LABEL_SELECTOR`, kubectl syntax: `shard=a`, `tier in (gold,silver)`, `!canary`), so
    /// operators with disjoint selectors, each with its own `--leader-election-id`, share a cluster.
    /// Empty: all.
    #[arg(long, env = "WATCH_LABEL_SELECTOR", default_value = "")]
    watch_label_selector: String,
    /// Only TriggerAuthentications and ClusterTriggerAuthentications with these labels are watched and
    /// used (upstream's `WATCH_LABEL_SELECTOR_FOR_TRIGGERAUTH`); a trigger that refers to another one
    /// fails as if it did not exist. Empty: all.
    #[arg(
        long = "watch-label-selector-for-triggerauth",
        env = "WATCH_LABEL_SELECTOR_FOR_TRIGGERAUTH",
        default_value = ""
    )]
    watch_label_selector_for_trigger_auth: String,
    /// Requests per second to the Kubernetes API once the burst is spent (client-go's client-side
    /// limit). Neither this nor `--kube-api-burst` given: no client-side limit (the API server's
    /// priority and fairness applies); only one given: upstream's default for the other (20, 30).
    #[arg(long, value_name = "QPS")]
    kube_api_qps: Option<f64>,
    /// Requests to the Kubernetes API that may go at once.
    #[arg(long, value_name = "N")]
    kube_api_burst: Option<i64>,
    /// The ValidatingWebhookConfiguration whose `caBundle` certificate rotation patches.
    #[arg(long, default_value = "keda-admission")]
    validating_webhook_name: String,
    /// Upstream flags the chart passes that keda-rs accepts without acting on them: kube-rs negotiates
    /// compression itself, Prometheus metrics are always on, HTTP pools are managed per scaler backend,
    /// there is no Go profiler and no OpenTelemetry exporter yet, and extra CAs are not loaded yet.
    #[arg(long, hide = true)]
    disable_compression: Option<String>,
    #[arg(long, hide = true)]
    k8s_cluster_name: Option<String>,
    #[arg(long, hide = true)]
    enable_prometheus_metrics: Option<String>,
    #[arg(long, hide = true)]
    http_max_idle_conns: Option<String>,
    #[arg(long, hide = true)]
    http_max_idle_conns_per_host: Option<String>,
    #[arg(long, hide = true)]
    http_idle_conn_timeout: Option<String>,
    #[arg(long, hide = true)]
    zap_stacktrace_level: Option<String>,
    #[arg(long, hide = true)]
    ca_dir: Vec<String>,
    #[arg(long, hide = true)]
    profiling_bind_address: Option<String>,
    #[arg(long, hide = true)]
    enable_opentelemetry_metrics: Option<String>,
    /// Upstream's logging flags, accepted so the chart's arguments work; keda-rs logs with `RUST_LOG`.
    #[arg(long)]
    zap_log_level: Option<String>,
    #[arg(long)]
    zap_encoder: Option<String>,
    #[arg(long)]
    zap_time_encoding: Option<String>,
}

/// A label selector from `var`, or an error that names the variable.
fn selector(var: &str, value: &str) -> anyhow::Result<Option<keda_kube::Selector>> {
    keda_kube::parse_label_selector(value).map_err(|e| anyhow::anyhow!("{var}: {e}"))
}

pub fn run(args: OperatorArgs) -> anyhow::Result<()> {
    crate::init_tracing();
    let watch_label_selector = selector("WATCH_LABEL_SELECTOR", &args.watch_label_selector)?;
    let trigger_auth_label_selector = selector(
        "WATCH_LABEL_SELECTOR_FOR_TRIGGERAUTH",
        &args.watch_label_selector_for_trigger_auth,
    )?;
    let namespace = args
        .cluster_object_namespace
        .clone()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(crate::flags::own_namespace);
    let identity = std::env::var("POD_NAME")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| format!("keda-operator-{}", std::process::id()));
    let config = keda_operator::OperatorConfig {
        namespace: namespace.clone(),
        watch_namespace: Some(args.watch_namespace).filter(|s| !s.is_empty()),
        watch_label_selector,
        trigger_auth_label_selector,
        kube_api_rate: keda_kube::RateLimit::from_flags(args.kube_api_qps, args.kube_api_burst),
        leader_elect: args.leader_elect,
        lease_name: args.leader_election_id.clone(),
        lease_duration: args.leader_elect_lease_duration,
        renew_deadline: args.leader_elect_renew_deadline,
        retry_period: args.leader_elect_retry_period,
        identity,
        metrics_bind_address: crate::flags::parse_addr(&args.metrics_bind_address)
            .map_err(anyhow::Error::msg)?,
        health_probe_bind_address: crate::flags::parse_addr(&args.health_probe_bind_address)
            .map_err(anyhow::Error::msg)?,
        scaler_timeout: Duration::from_millis(args.http_default_timeout.max(1)),
        max_reconciles: args.scaledobject_max_reconciles.max(1),
        metrics_service: Some((
            crate::flags::parse_addr(&args.metrics_service_bind_address)
                .map_err(anyhow::Error::msg)?,
            args.cert_dir.clone(),
        )),
        cert_rotation: args
            .enable_cert_rotation
            .then(|| keda_operator::certs::CertConfig {
                namespace: namespace.clone(),
                secret_name: args.cert_secret_name.clone(),
                services: vec![
                    args.operator_service_name.clone(),
                    args.metrics_server_service_name.clone(),
                    args.webhooks_service_name.clone(),
                ],
                cluster_domain: args.k8s_cluster_domain.clone(),
                patch_apiservice: args.enable_apiservice_patching,
                patch_webhooks: args.enable_webhook_patching,
                webhook_name: args.validating_webhook_name.clone(),
            }),
        file_root: keda_scalers::files::FileRoot::new(&args.filepath_auth_root_path),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = runtime.block_on(keda_operator::run(config));
    // The process ends now, without waiting for tasks still running (after a lost Lease they can no
    // longer write anyway: the operator's client refuses).
    runtime.shutdown_background();
    result?;
    Ok(())
}
