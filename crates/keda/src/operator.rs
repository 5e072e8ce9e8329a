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
    /// Directory whose certificate files scalers trust for TLS, beside the system's and the bundled
    /// roots (repeatable; a missing directory is skipped, a file that is no certificate is logged).
    #[arg(long, default_value = keda_scalers::tls::DEFAULT_CA_DIR)]
    ca_dir: Vec<String>,
    /// The ValidatingWebhookConfiguration whose `caBundle` certificate rotation patches.
    #[arg(long, default_value = "keda-admission")]
    validating_webhook_name: String,
    #[command(flatten)]
    log: crate::logging::LogArgs,
    /// Upstream flags accepted so the chart's arguments work; a value keda-rs does not act on is named
    /// in the warning at start ([`no_effect`]).
    #[arg(long, hide = true, num_args = 0..=1, default_missing_value = "true")]
    disable_compression: Option<String>,
    #[arg(long, hide = true)]
    k8s_cluster_name: Option<String>,
    #[arg(long, hide = true, num_args = 0..=1, default_missing_value = "true")]
    enable_prometheus_metrics: Option<String>,
    #[arg(long, hide = true)]
    http_max_idle_conns: Option<String>,
    #[arg(long, hide = true)]
    http_max_idle_conns_per_host: Option<String>,
    #[arg(long, hide = true)]
    http_idle_conn_timeout: Option<String>,
    #[arg(long, hide = true)]
    profiling_bind_address: Option<String>,
    #[arg(long, hide = true, num_args = 0..=1, default_missing_value = "true")]
    enable_opentelemetry_metrics: Option<String>,
    #[arg(long, hide = true, num_args = 0..=1, default_missing_value = "true")]
    enable_high_cardinality_metrics_labels: Option<String>,
}

/// What upstream's operator reads (flags the chart passes, environment variables) that keda-rs accepts
/// without acting on, as this process was started (`env`: the environment).
pub fn no_effect(args: &OperatorArgs, env: &dyn Fn(&str) -> Option<String>) -> Vec<String> {
    let mut n = crate::flags::NoEffect::default();
    n.flag_false(
        "disable-compression",
        args.disable_compression.as_deref(),
        "API responses are never compressed",
    );
    n.flag(
        "k8s-cluster-name",
        args.k8s_cluster_name.as_deref(),
        |v| v != "kubernetes-default",
        "upstream names the cluster in CloudEvents; keda-rs sends none",
    );
    n.flag_false(
        "enable-prometheus-metrics",
        args.enable_prometheus_metrics.as_deref(),
        "Prometheus metrics are always served",
    );
    n.flag_true(
        "enable-opentelemetry-metrics",
        args.enable_opentelemetry_metrics.as_deref(),
        "no OpenTelemetry exporter",
    );
    n.flag_true(
        "enable-high-cardinality-metrics-labels",
        args.enable_high_cardinality_metrics_labels.as_deref(),
        "no per-request HTTP duration metric",
    );
    n.flag(
        "http-max-idle-conns",
        args.http_max_idle_conns.as_deref(),
        |v| v != "0",
        "scaler HTTP pools are not bounded across hosts",
    );
    n.flag(
        "http-max-idle-conns-per-host",
        args.http_max_idle_conns_per_host.as_deref(),
        |v| v != "1000",
        "scaler HTTP pools keep idle connections per host without a bound",
    );
    n.flag(
        "http-idle-conn-timeout",
        args.http_idle_conn_timeout.as_deref(),
        |v| crate::flags::parse_duration(v) != Ok(Duration::from_secs(90)),
        "idle scaler HTTP connections are closed after 90s",
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
    n.env(
        env,
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        |_| true,
        false,
        "no OpenTelemetry exporter",
    );
    n.env(
        env,
        "KEDA_CHECK_UNEXPECTED_SCALERS_PARAMS",
        |v| v == "enabled",
        true,
        "unexpected trigger parameters are not reported",
    );
    n.env(
        env,
        "KEDA_BOUND_SERVICE_ACCOUNT_TOKEN_EXPIRY",
        |_| true,
        true,
        "boundServiceAccountToken is not implemented",
    );
    n.env(
        env,
        "RAW_METRICS_MODE",
        |_| true,
        true,
        "no raw metrics stream",
    );
    n.service_tls(env);
    // A value refused here stops the start instead ([`scaler_tls`]).
    if let Ok(tls) = scaler_tls(args, env) {
        for note in tls.notes {
            n.note(note);
        }
    }
    n.items().to_vec()
}

/// The scalers' TLS and HTTP settings: `--ca-dir`, `KEDA_HTTP_MIN_TLS_VERSION`,
/// `KEDA_HTTP_TLS_CIPHER_LIST`, `KEDA_HTTP_DISABLE_KEEP_ALIVE`.
#[derive(Debug)]
pub struct ScalerTlsEnv {
    pub settings: keda_scalers::tls::TlsSettings,
    pub keep_alive: bool,
    /// What is honoured only in part, for the warning at start.
    pub notes: Vec<String>,
}

/// [`ScalerTlsEnv`] from the flags and `env`; a value that is not one upstream reads is refused with
/// the variable's name (upstream logs it and uses its default).
pub fn scaler_tls(
    args: &OperatorArgs,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<ScalerTlsEnv, String> {
    use crate::flags::{min_tls_version, tls_cipher_list};
    use keda_scalers::tls::{MinTlsVersion, TlsSettings};
    let get = |var: &str| env(var).map(|v| v.trim().to_owned()).unwrap_or_default();
    let mut notes = Vec::new();
    let drivers = "not applied to redis and mysql triggers, whose drivers speak TLS 1.2 and 1.3 \
                   with rustls's suites";
    let var = "KEDA_HTTP_MIN_TLS_VERSION";
    let min_version = min_tls_version(
        var,
        &get(var),
        MinTlsVersion::Tls12,
        "scalers use TLS 1.2 and 1.3",
        &mut notes,
    )?;
    if min_version == MinTlsVersion::Tls13 {
        notes.push(format!("{var}={} ({drivers})", get(var)));
    }
    let var = "KEDA_HTTP_TLS_CIPHER_LIST";
    let tls12_suites = tls_cipher_list(var, &get(var), &mut notes);
    if !tls12_suites.is_empty() {
        notes.push(format!("{var} ({drivers})"));
    }
    let var = "KEDA_HTTP_DISABLE_KEEP_ALIVE";
    let keep_alive = match get(var).as_str() {
        "" => true,
        v => !crate::flags::parse_go_bool(v).map_err(|e| format!("{var}: {e}"))?,
    };
    Ok(ScalerTlsEnv {
        settings: TlsSettings {
            ca_dirs: args.ca_dir.iter().map(std::path::PathBuf::from).collect(),
            min_version,
            tls12_suites,
        },
        keep_alive,
        notes,
    })
}

/// A label selector from `var`, or an error that names the variable.
fn selector(var: &str, value: &str) -> anyhow::Result<Option<keda_kube::Selector>> {
    keda_kube::parse_label_selector(value).map_err(|e| anyhow::anyhow!("{var}: {e}"))
}

pub fn run(args: OperatorArgs) -> anyhow::Result<()> {
    crate::logging::init(&args.log);
    crate::logging::starting("operator");
    crate::flags::warn_no_effect(&no_effect(&args, &crate::flags::process_env));
    let tls_env = scaler_tls(&args, &crate::flags::process_env).map_err(anyhow::Error::msg)?;
    let service_tls =
        crate::flags::service_tls(&crate::flags::process_env).map_err(anyhow::Error::msg)?;
    let (scaler_tls, skipped) = keda_scalers::tls::ScalerTls::new(&tls_env.settings);
    for problem in skipped {
        tracing::warn!(target: "setup", "scaler TLS roots (--ca-dir): {problem}");
    }
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
        scaler_tls: std::sync::Arc::new(scaler_tls),
        http_keep_alive: tls_env.keep_alive,
        service_tls: service_tls.protocols,
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: OperatorArgs,
    }

    fn parse(args: &[&str]) -> Result<OperatorArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("keda-operator").chain(args.iter().copied()))
            .map(|c| c.args)
    }

    #[test]
    fn the_charts_arguments_parse() {
        // kedacore/charts' operator arguments with non-default values.
        let args = parse(&[
            "--leader-elect",
            "--disable-compression=true",
            "--zap-log-level=debug",
            "--zap-encoder=json",
            "--zap-time-encoding=rfc3339",
            "--zap-stacktrace-level=error",
            "--enable-webhook-patching=true",
            "--cert-dir=/certs",
            "--enable-cert-rotation=true",
            "--k8s-cluster-name=kubernetes-default",
            "--enable-prometheus-metrics=true",
            "--metrics-bind-address=:8080",
            "--enable-opentelemetry-metrics",
            "--profiling-bind-address=:8082",
            "--ca-dir=/custom/ca",
            "--http-max-idle-conns=0",
            "--http-max-idle-conns-per-host=1000",
            "--http-idle-conn-timeout=90s",
            "--kube-api-qps=50",
            "--kube-api-burst=80",
            "--validating-webhook-name=shard-a-admission",
        ]);
        let args = match args {
            Ok(a) => a,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(
            keda_kube::RateLimit::from_flags(args.kube_api_qps, args.kube_api_burst),
            Some(keda_kube::RateLimit {
                qps: 50.0,
                burst: 80
            })
        );
        assert_eq!(args.validating_webhook_name, "shard-a-admission");
        assert_eq!(args.log.zap_log_level, Some(crate::logging::Level::Debug));
        let env = |v: &str| match v {
            "KEDA_SCALEDJOB_CTRL_MAX_RECONCILES" => Some("3".to_owned()),
            "KEDA_HTTP_MIN_TLS_VERSION" => Some("TLS12".to_owned()),
            "OTEL_EXPORTER_OTLP_ENDPOINT" => Some("http://user:secret@collector:4318".to_owned()),
            _ => None,
        };
        let named = no_effect(&args, &env);
        let names: Vec<&str> = named
            .iter()
            .map(|n| n.split(['=', ' ']).next().unwrap_or_default())
            .collect();
        assert_eq!(
            names,
            [
                "--enable-opentelemetry-metrics",
                "--zap-stacktrace-level",
                "--profiling-bind-address",
                "OTEL_EXPORTER_OTLP_ENDPOINT",
            ]
        );
        assert!(!named.iter().any(|n| n.contains("secret")), "{named:?}");
    }

    #[test]
    fn defaults_take_effect_and_name_nothing() {
        let args = match parse(&[]) {
            Ok(a) => a,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(no_effect(&args, &|_| None), Vec::<String>::new());
        assert_eq!(
            keda_kube::RateLimit::from_flags(args.kube_api_qps, args.kube_api_burst),
            None
        );
        assert_eq!(args.validating_webhook_name, "keda-admission");
    }

    #[test]
    fn scaler_tls_settings_from_flags_and_environment() {
        use keda_scalers::tls::MinTlsVersion;
        let env_of = |pairs: &'static [(&'static str, &'static str)]| {
            move |v: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == v)
                    .map(|(_, val)| (*val).to_owned())
            }
        };
        let args = parse(&[]).expect("defaults");
        let t = scaler_tls(&args, &|_| None).expect("defaults");
        assert_eq!(t.settings.ca_dirs, [std::path::PathBuf::from("/custom/ca")]);
        assert_eq!(t.settings.min_version, MinTlsVersion::Tls12);
        assert!(t.settings.tls12_suites.is_empty());
        assert!(t.keep_alive && t.notes.is_empty());

        let args = parse(&["--ca-dir=/a", "--ca-dir", "/b"]).expect("ca dirs");
        let env = env_of(&[
            ("KEDA_HTTP_MIN_TLS_VERSION", "TLS13"),
            (
                "KEDA_HTTP_TLS_CIPHER_LIST",
                "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_RSA_WITH_AES_128_CBC_SHA",
            ),
            ("KEDA_HTTP_DISABLE_KEEP_ALIVE", "true"),
        ]);
        let t = scaler_tls(&args, &env).expect("valid");
        assert_eq!(t.settings.ca_dirs.len(), 2);
        assert_eq!(t.settings.min_version, MinTlsVersion::Tls13);
        assert_eq!(t.settings.tls12_suites.len(), 1);
        assert!(!t.keep_alive);
        let named = no_effect(&args, &env);
        assert!(
            named.iter().any(|n| n.starts_with("KEDA_HTTP_TLS_CIPHER_LIST: TLS_RSA_WITH_AES_128_CBC_SHA (")),
            "{named:?}"
        );
        assert!(
            named
                .iter()
                .any(|n| n.starts_with("KEDA_HTTP_MIN_TLS_VERSION=TLS13 (not applied to redis")),
            "{named:?}"
        );

        // Below TLS 1.2: TLS 1.2, and said so.
        let t =
            scaler_tls(&args, &env_of(&[("KEDA_HTTP_MIN_TLS_VERSION", "TLS10")])).expect("TLS10");
        assert_eq!(t.settings.min_version, MinTlsVersion::Tls12);
        assert!(t.notes[0].contains("no TLS below 1.2"), "{:?}", t.notes);
        // Values upstream does not read are refused, naming the variable.
        for (var, value) in [
            ("KEDA_HTTP_MIN_TLS_VERSION", "TLS1.3"),
            ("KEDA_HTTP_DISABLE_KEEP_ALIVE", "yes"),
        ] {
            let env = |v: &str| (v == var).then(|| value.to_owned());
            let e = scaler_tls(&args, &env).expect_err(value);
            assert!(e.starts_with(var), "{e}");
        }
    }

    #[test]
    fn bad_values_are_refused() {
        assert!(parse(&["--zap-log-level=verbose"]).is_err());
        assert!(parse(&["--zap-encoder=text"]).is_err());
        assert!(parse(&["--kube-api-qps=fast"]).is_err());
        assert!(selector("WATCH_LABEL_SELECTOR", "shard=a").is_ok_and(|s| s.is_some()));
        assert!(selector("WATCH_LABEL_SELECTOR", "").is_ok_and(|s| s.is_none()));
        let e = selector("WATCH_LABEL_SELECTOR", "shard>1").err();
        assert!(e.is_some_and(|e| e.to_string().starts_with("WATCH_LABEL_SELECTOR: ")));
    }
}
