//! `keda metrics-apiserver`: flags as upstream's keda-adapter (the chart's arguments work unchanged),
//! then `keda_metrics_apiserver::run`.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

#[derive(Args, Debug)]
pub struct MetricsApiserverArgs {
    /// Port of the HTTPS API (external.metrics.k8s.io, /healthz, /livez, /readyz).
    #[arg(long, default_value_t = 6443)]
    secure_port: u16,
    /// Address the HTTPS API listens on.
    #[arg(long, default_value = "0.0.0.0")]
    bind_address: IpAddr,
    /// Directory of the serving certificate (tls.crt, tls.key) and of the gRPC client's mTLS files
    /// (ca.crt, tls.crt, tls.key; Secret kedaorg-certs). Files are re-read when they change.
    #[arg(long, default_value = "/certs")]
    cert_dir: PathBuf,
    /// Serving certificate (default: <cert-dir>/tls.crt).
    #[arg(long)]
    tls_cert_file: Option<PathBuf>,
    /// Serving key (default: <cert-dir>/tls.key).
    #[arg(long)]
    tls_private_key_file: Option<PathBuf>,
    /// CA bundle whose client certificates authenticate their CN (added to the ConfigMap's client CA).
    #[arg(long)]
    client_ca_file: Option<PathBuf>,
    /// Front-proxy CA bundle, instead of the one in ConfigMap kube-system/extension-apiserver-authentication.
    #[arg(long)]
    requestheader_client_ca_file: Option<PathBuf>,
    /// Front-proxy certificate CNs allowed to name users in headers (comma-separated), instead of the ConfigMap's.
    #[arg(long, value_delimiter = ',')]
    requestheader_allowed_names: Option<Vec<String>>,
    /// Do not read ConfigMap kube-system/extension-apiserver-authentication (only the flags above count).
    #[arg(long, default_value_t = false, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    authentication_skip_lookup: bool,
    /// Seconds an authorization decision (SubjectAccessReview) is cached.
    #[arg(long, default_value = "10s", value_parser = crate::flags::parse_duration)]
    authorization_cache_ttl: Duration,
    /// Address of the operator's gRPC metrics service
    /// [default: keda-operator.<POD_NAMESPACE>.svc.cluster.local:9666].
    #[arg(long)]
    metrics_service_address: Option<String>,
    /// Host name expected in the operator's certificate and sent as :authority, when it differs from the address.
    #[arg(long)]
    metrics_service_grpc_authority: Option<String>,
    /// Deadline of one call to the operator.
    #[arg(long, default_value = "3s", value_parser = crate::flags::parse_duration)]
    metrics_service_timeout: Duration,
    /// Address of the Prometheus `/metrics` endpoint ("0" disables it) [default: :8080].
    #[arg(long)]
    metrics_bind_address: Option<String>,
    /// Upstream's flag for the `/metrics` port; used when --metrics-bind-address is not given.
    #[arg(long)]
    port: Option<u16>,
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
    /// Upstream's klog, client and profiling flags, accepted so the chart's arguments work; a value
    /// keda-rs does not act on is named in the warning at start ([`no_effect`]).
    #[arg(long, hide = true, num_args = 0..=1, default_missing_value = "true")]
    logtostderr: Option<String>,
    #[arg(long, hide = true)]
    stderrthreshold: Option<String>,
    #[arg(long, hide = true)]
    v: Option<String>,
    #[arg(long, hide = true, num_args = 0..=1, default_missing_value = "true")]
    disable_compression: Option<String>,
    #[arg(long, hide = true)]
    profiling_bind_address: Option<String>,
}

/// What upstream's metrics API server reads that keda-rs accepts without acting on, as this process
/// was started. keda-rs logs everything to stderr at the `--zap-log-level`: klog's `--logtostderr=true`
/// and `--stderrthreshold` ask for nothing else, `--v` above 0 (client-go's own verbose logs) does.
pub fn no_effect(args: &MetricsApiserverArgs, env: &dyn Fn(&str) -> Option<String>) -> Vec<String> {
    let mut n = crate::flags::NoEffect::default();
    n.flag(
        "v",
        args.v.as_deref(),
        |v| v.parse::<i64>().map_or(true, |n| n > 0),
        "no klog; use --zap-log-level",
    );
    n.flag_false(
        "logtostderr",
        args.logtostderr.as_deref(),
        "logs always go to stderr",
    );
    n.flag_false(
        "disable-compression",
        args.disable_compression.as_deref(),
        "API responses are never compressed",
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

pub fn run(args: MetricsApiserverArgs) -> anyhow::Result<()> {
    crate::logging::init(&args.log);
    crate::logging::starting("metrics-apiserver");
    crate::flags::warn_no_effect(&no_effect(&args, &crate::flags::process_env));
    let metrics_addr = match (&args.metrics_bind_address, args.port) {
        (Some(a), _) if a == "0" => None,
        (Some(a), _) => Some(crate::flags::parse_addr(a).map_err(anyhow::Error::msg)?),
        (None, Some(0)) => None,
        (None, Some(p)) => Some(SocketAddr::from(([0, 0, 0, 0], p))),
        (None, None) => Some(SocketAddr::from(([0, 0, 0, 0], 8080))),
    };
    let address = args
        .metrics_service_address
        .clone()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| {
            format!(
                "keda-operator.{}.svc.cluster.local:9666",
                crate::flags::own_namespace()
            )
        });
    let mut grpc = keda_metrics_apiserver::GrpcConfig::new(address, args.cert_dir.clone());
    grpc.authority = args
        .metrics_service_grpc_authority
        .clone()
        .filter(|s| !s.is_empty());
    grpc.timeout = args.metrics_service_timeout;
    let tls = crate::flags::service_tls(&crate::flags::process_env)
        .map_err(anyhow::Error::msg)?
        .protocols;
    grpc.tls = tls.clone();
    let config = keda_metrics_apiserver::Config {
        secure_addr: SocketAddr::new(args.bind_address, args.secure_port),
        metrics_addr,
        cert_file: args
            .tls_cert_file
            .clone()
            .unwrap_or_else(|| args.cert_dir.join("tls.crt")),
        key_file: args
            .tls_private_key_file
            .clone()
            .unwrap_or_else(|| args.cert_dir.join("tls.key")),
        client_ca_file: args.client_ca_file.clone(),
        requestheader_client_ca_file: args.requestheader_client_ca_file.clone(),
        requestheader_allowed_names: args.requestheader_allowed_names.clone(),
        authentication_skip_lookup: args.authentication_skip_lookup,
        authn_refresh: Duration::from_secs(30),
        authz_cache_ttl: args.authorization_cache_ttl,
        grpc,
        kube_api_rate: keda_kube::RateLimit::from_flags(args.kube_api_qps, args.kube_api_burst),
        tls,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(keda_metrics_apiserver::run(config))?;
    Ok(())
}
