//! `keda admission-webhooks`: flags as upstream's keda-admission-webhooks, then `keda_webhooks::run`.

use std::net::SocketAddr;

use clap::Args;

#[derive(Args, Debug)]
pub struct AdmissionWebhooksArgs {
    /// Port of the HTTPS webhook server.
    #[arg(long, default_value_t = 9443)]
    port: u16,
    /// Address the webhook server binds (with `--port`).
    #[arg(long, default_value = "0.0.0.0")]
    bind_address: std::net::IpAddr,
    /// Directory with tls.crt and tls.key; reloaded when the files change.
    #[arg(long, default_value = "/certs")]
    cert_dir: std::path::PathBuf,
    /// Address of `/healthz` and `/readyz`.
    #[arg(long, default_value = ":8081")]
    health_probe_bind_address: String,
    /// Address of the Prometheus `/metrics` endpoint.
    #[arg(long, default_value = ":8080")]
    metrics_bind_address: String,
    /// Namespace whose Secrets and ConfigMaps ClusterTriggerAuthentications read (KEDA's namespace).
    #[arg(long, env = keda_resolver::CLUSTER_OBJECT_NAMESPACE_ENV)]
    cluster_object_namespace: Option<String>,
    /// The operator's `--filepath-auth-root-path` (the chart passes the operator's value): file paths in
    /// triggers and ClusterTriggerAuthentication `filePath` outside it are rejected, as the operator
    /// refuses them. Empty: every such path is rejected.
    #[arg(long, default_value = "")]
    filepath_auth_root_path: String,
    /// Requests per second to the Kubernetes API once the burst is spent (client-go's client-side
    /// limit). Neither this nor `--kube-api-burst` given: no client-side limit; only one given:
    /// upstream's default for the other (20, 30).
    #[arg(long, value_name = "QPS")]
    kube_api_qps: Option<f64>,
    /// Requests to the Kubernetes API that may go at once.
    #[arg(long, value_name = "N")]
    kube_api_burst: Option<i64>,
    #[command(flatten)]
    log: crate::logging::LogArgs,
    /// Upstream flags accepted so the chart's arguments work; a value keda-rs does not act on is named
    /// in the warning at start ([`no_effect`]).
    #[arg(long, hide = true, num_args = 0..=1, default_missing_value = "true")]
    cache_miss_to_direct_client: Option<String>,
    #[arg(long, hide = true)]
    profiling_bind_address: Option<String>,
}

/// What upstream's webhooks read that keda-rs accepts without acting on, as this process was started.
pub fn no_effect(
    args: &AdmissionWebhooksArgs,
    env: &dyn Fn(&str) -> Option<String>,
) -> Vec<String> {
    let mut n = crate::flags::NoEffect::default();
    n.flag_true(
        "cache-miss-to-direct-client",
        args.cache_miss_to_direct_client.as_deref(),
        "lookups always use the watched indexes",
    );
    n.flag(
        "zap-stacktrace-level",
        args.log.zap_stacktrace_level.as_deref(),
        |_| true,
        "no stack traces",
    );
    n.flag(
        "profiling-bind-address",
        args.profiling_bind_address.as_deref(),
        |v| !v.is_empty(),
        "no Go profiler",
    );
    n.service_tls(env);
    n.items().to_vec()
}

pub fn run(args: AdmissionWebhooksArgs) -> anyhow::Result<()> {
    crate::logging::init(&args.log);
    crate::logging::starting("admission-webhooks");
    crate::flags::warn_no_effect(&no_effect(&args, &crate::flags::process_env));
    let tls = crate::flags::service_tls(&crate::flags::process_env).map_err(anyhow::Error::msg)?;
    let config = keda_webhooks::Config {
        webhook_addr: SocketAddr::new(args.bind_address, args.port),
        health_addr: crate::flags::parse_addr(&args.health_probe_bind_address)
            .map_err(anyhow::Error::msg)?,
        metrics_addr: crate::flags::parse_addr(&args.metrics_bind_address)
            .map_err(anyhow::Error::msg)?,
        cert_dir: args.cert_dir,
        cluster_object_namespace: args
            .cluster_object_namespace
            .filter(|s| !s.is_empty())
            .or_else(keda_resolver::cluster_object_namespace_from_env)
            .unwrap_or_else(|| "keda".to_owned()),
        restrict_secret_access: keda_resolver::restrict_secret_access_from_env(),
        file_root: keda_scalers::files::FileRoot::new(&args.filepath_auth_root_path),
        kube_api_rate: keda_kube::RateLimit::from_flags(args.kube_api_qps, args.kube_api_burst),
        tls: tls.protocols,
    };
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(keda_webhooks::run(config))?;
    Ok(())
}
