//! The bounds every trigger reports through `TriggerConfig::timeouts` (what the operator waits for one
//! build and one sample), table-driven and without any backend.

use std::collections::BTreeMap;
use std::time::Duration;

use keda_scalers::{ScalerTimeouts, TimeoutDefaults, TriggerInput, parse_trigger};

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn timeouts(
    trigger_type: &str,
    md: &[(&str, &str)],
    auth: &[(&str, &str)],
    defaults: &TimeoutDefaults,
) -> ScalerTimeouts {
    let (md, auth, env) = (map(md), map(auth), BTreeMap::new());
    let metric_type = matches!(trigger_type, "cpu" | "memory").then_some("Utilization");
    let config = parse_trigger(&TriggerInput {
        index: 0,
        trigger_type,
        namespace: "default",
        name: None,
        metadata: &md,
        resolved_env: &env,
        auth_params: &auth,
        metric_type,
    })
    .unwrap_or_else(|e| panic!("{trigger_type} {md:?}: {e}"));
    config.timeouts(defaults)
}

const fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

const fn ms(m: u64) -> Duration {
    Duration::from_millis(m)
}

const PROM: &[(&str, &str)] = &[
    ("serverAddress", "http://prometheus:9090"),
    ("query", "up"),
    ("threshold", "5"),
];
const METRICS_API: &[(&str, &str)] = &[
    ("url", "http://api.example/m"),
    ("valueLocation", "v"),
    ("targetValue", "5"),
];
const DD_API: &[(&str, &str)] = &[("query", "avg:system.cpu.user{*}"), ("queryValue", "7")];
const DD_API_AUTH: &[(&str, &str)] = &[("apiKey", "a"), ("appKey", "b")];
const DD_AGENT: &[(&str, &str)] = &[
    ("useClusterAgentProxy", "true"),
    ("datadogMetricName", "nginx-hits"),
    ("datadogMetricNamespace", "default"),
    ("targetValue", "2"),
];
const DD_AGENT_AUTH: &[(&str, &str)] = &[
    ("token", "token"),
    ("datadogNamespace", "datadog"),
    ("datadogMetricsService", "datadog-cluster-agent-metrics-api"),
    ("authMode", "bearer"),
];

fn with(
    base: &[(&'static str, &'static str)],
    extra: &[(&'static str, &'static str)],
) -> Vec<(&'static str, &'static str)> {
    base.iter().chain(extra).copied().collect()
}

/// HTTP triggers: the trigger's `timeout` (milliseconds, or a Go duration; 0 or absent: the operator's
/// `KEDA_HTTP_DEFAULT_TIMEOUT`), as upstream's `prometheus_scaler.go`, `metrics_api_scaler.go` and
/// `datadog_scaler.go` pass it to `kedautil.CreateHTTPClient`. New Relic's client has its own 30 s.
#[test]
fn http_triggers_use_their_timeout_else_the_default() {
    // A default other than 3 s, to tell it from the built-in one.
    let defaults = TimeoutDefaults::from_http_millis(7000);
    #[allow(clippy::type_complexity)]
    let table: &[(&str, Vec<(&str, &str)>, &[(&str, &str)], Duration)] = &[
        (
            "prometheus",
            with(PROM, &[("timeout", "10000")]),
            &[],
            secs(10),
        ),
        (
            "prometheus",
            with(PROM, &[("timeout", "10s")]),
            &[],
            secs(10),
        ),
        (
            "prometheus",
            with(PROM, &[("timeout", "1m30s")]),
            &[],
            secs(90),
        ),
        (
            "prometheus",
            with(PROM, &[("timeout", "250ms")]),
            &[],
            ms(250),
        ),
        ("prometheus", with(PROM, &[("timeout", "0")]), &[], secs(7)),
        ("prometheus", with(PROM, &[]), &[], secs(7)),
        (
            "metrics-api",
            with(METRICS_API, &[("timeout", "6000")]),
            &[],
            secs(6),
        ),
        (
            "metrics-api",
            with(METRICS_API, &[("timeout", "0s")]),
            &[],
            secs(7),
        ),
        ("metrics-api", with(METRICS_API, &[]), &[], secs(7)),
        (
            "datadog",
            with(DD_API, &[("timeout", "2m30s")]),
            DD_API_AUTH,
            secs(150),
        ),
        (
            "datadog",
            with(DD_API, &[("timeout", "30")]),
            DD_API_AUTH,
            ms(30),
        ),
        ("datadog", with(DD_API, &[]), DD_API_AUTH, secs(7)),
        (
            "datadog",
            with(DD_AGENT, &[("timeout", "500ms")]),
            DD_AGENT_AUTH,
            ms(500),
        ),
        ("datadog", with(DD_AGENT, &[]), DD_AGENT_AUTH, secs(7)),
        (
            "new-relic",
            vec![
                ("nrql", "SELECT count(*) FROM Transaction"),
                ("threshold", "70"),
            ],
            &[("queryKey", "k"), ("account", "1234567")],
            secs(30),
        ),
    ];
    for (ty, md, auth, want) in table {
        let got = timeouts(ty, md, auth, &defaults);
        assert_eq!(
            got,
            ScalerTimeouts {
                build: None,
                sample: Some(*want)
            },
            "{ty} {md:?}"
        );
    }
}

#[test]
fn a_prometheus_timeout_of_10000_is_ten_seconds_not_the_3_s_default() {
    let defaults = TimeoutDefaults::default();
    assert_eq!(defaults.http, secs(3));
    let t = timeouts(
        "prometheus",
        &with(PROM, &[("timeout", "10000")]),
        &[],
        &defaults,
    );
    assert_eq!(t.sample, Some(secs(10)));
    let t = timeouts("prometheus", PROM, &[], &defaults);
    assert_eq!(t.sample, Some(secs(3)));
}

/// Redis: go-redis' 5 s dial and 3 s read timeouts, which upstream keeps (`redis_scaler.go` and
/// `redis_streams_scaler.go` set none); build opens the shared connection and pings it.
#[test]
fn redis_triggers_are_bounded_by_the_driver_timeouts() {
    let defaults = TimeoutDefaults::default();
    let one_command = ScalerTimeouts {
        build: Some(secs(15)),
        sample: Some(secs(13)),
    };
    let list = [("listName", "jobs"), ("sentinelMaster", "mymaster")];
    for ty in ["redis", "redis-cluster", "redis-sentinel"] {
        let md = with(&[("addresses", "redis-0:6379")], &list);
        assert_eq!(timeouts(ty, &md, &[], &defaults), one_command, "{ty}");
    }
    let stream = [
        ("addresses", "redis-0:6379"),
        ("stream", "s"),
        ("sentinelMaster", "mymaster"),
    ];
    for ty in [
        "redis-streams",
        "redis-cluster-streams",
        "redis-sentinel-streams",
    ] {
        let pending = with(&stream, &[("consumerGroup", "g")]);
        assert_eq!(timeouts(ty, &pending, &[], &defaults), one_command, "{ty}");
        assert_eq!(
            timeouts(ty, &stream, &[], &defaults),
            one_command,
            "{ty} length"
        );
        // The lag reads `INFO server`, `XINFO GROUPS` and, for a group not registered yet, `XLEN`.
        let lag = with(&stream, &[("consumerGroup", "g"), ("lagCount", "10")]);
        assert_eq!(
            timeouts(ty, &lag, &[], &defaults),
            ScalerTimeouts {
                build: Some(secs(15)),
                sample: Some(secs(19)),
            },
            "{ty} lag"
        );
    }
}

/// SQL: the connection's own connect timeout, and a query bound of 30 s where upstream has none (MySQL:
/// the DSN's `readTimeout` when set). `KEDA_HTTP_DEFAULT_TIMEOUT` plays no part.
#[test]
fn sql_triggers_use_the_connection_timeouts() {
    let defaults = TimeoutDefaults::from_http_millis(1000);
    let pg_md = [("query", "select 1"), ("targetQueryValue", "5")];
    let bounds = |build: u64, sample: u64| ScalerTimeouts {
        build: Some(secs(build)),
        sample: Some(secs(sample)),
    };
    let pg: &[(&str, ScalerTimeouts)] = &[
        ("host=db user=u dbname=d sslmode=disable", bounds(10, 40)),
        ("host=db user=u dbname=d connect_timeout=20", bounds(20, 50)),
        // libpq applies connect_timeout to each host in turn.
        ("host=a,b user=u dbname=d connect_timeout=5", bounds(10, 40)),
        // 0 is "wait forever" in libpq; keda-rs keeps its 10 s.
        ("host=db user=u dbname=d connect_timeout=0", bounds(10, 40)),
        (
            "postgresql://u@db/d?connect_timeout=3&sslmode=require",
            bounds(3, 33),
        ),
        // Does not parse: the build fails at once; the default bounds stand.
        ("test_conn_str", bounds(10, 40)),
    ];
    for (connection, want) in pg {
        let got = timeouts(
            "postgresql",
            &pg_md,
            &[("connection", connection)],
            &defaults,
        );
        assert_eq!(got, *want, "{connection}");
    }
    let fields = [
        ("host", "db"),
        ("port", "5432"),
        ("userName", "u"),
        ("dbName", "d"),
        ("sslmode", "disable"),
        ("password", "p"),
    ];
    assert_eq!(
        timeouts("postgresql", &pg_md, &fields, &defaults),
        bounds(10, 40)
    );

    let my_md = [("query", "select 1"), ("queryValue", "5")];
    let my: &[(&str, ScalerTimeouts)] = &[
        ("u:p@tcp(db:3306)/d", bounds(10, 40)),
        ("u:p@tcp(db:3306)/d?timeout=5s", bounds(5, 35)),
        (
            "u:p@tcp(db:3306)/d?timeout=5s&readTimeout=1m",
            bounds(5, 65),
        ),
        ("u:p@tcp(db:3306)/d?readTimeout=2s", bounds(10, 12)),
        ("u:p@tcp(db:3306)/d?timeout=0&readTimeout=0", bounds(10, 40)),
    ];
    for (dsn, want) in my {
        let got = timeouts("mysql", &my_md, &[("connectionString", dsn)], &defaults);
        assert_eq!(got, *want, "{dsn}");
    }
    let fields = [("host", "db"), ("port", "3306"), ("dbName", "d")];
    assert_eq!(
        timeouts("mysql", &with(&my_md, &fields), &[], &defaults),
        bounds(10, 40)
    );
}

#[test]
fn triggers_without_io_need_no_bound() {
    let defaults = TimeoutDefaults::default();
    let cron = [
        ("timezone", "UTC"),
        ("start", "0 9 * * *"),
        ("end", "0 18 * * *"),
        ("desiredReplicas", "3"),
    ];
    assert_eq!(
        timeouts("cron", &cron, &[], &defaults),
        ScalerTimeouts::NO_IO
    );
    for ty in ["cpu", "memory"] {
        assert_eq!(
            timeouts(ty, &[("value", "50")], &[], &defaults),
            ScalerTimeouts::NO_IO,
            "{ty}"
        );
    }
}
