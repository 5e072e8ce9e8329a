//! datadog: upstream's parse tables, and both modes against TLS stand-ins on loopback reached through
//! their real names: the metrics query API (api.datadoghq.com, api.datadoghq.eu) and a Cluster Agent
//! external metrics service (<service>.<namespace>:<port>).
#![cfg(feature = "datadog")]

use crate::support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::Query;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::IntoResponse;
use axum::routing::get;
use keda_scalers::http::{ClientOverrides, HttpClients};
use keda_scalers::observability::datadog::{DatadogConfig, Mode, parse_config};
use keda_scalers::{BuildContext, Sample, ScalerError, TriggerInput, parse_trigger};
use serde_json::json;

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn parse_typed(
    index: usize,
    metric_type: Option<&str>,
    md: &[(&str, &str)],
    auth: &[(&str, &str)],
) -> Result<DatadogConfig, ScalerError> {
    let md = map(md);
    let auth = map(auth);
    let env = BTreeMap::new();
    parse_config(&TriggerInput {
        index,
        trigger_type: "datadog",
        namespace: "default",
        name: None,
        metadata: &md,
        resolved_env: &env,
        auth_params: &auth,
        metric_type,
    })
}

const Q: &str = "sum:trace.redis.command.hits{env:none,service:redis}.as_count()";
const KEYS: &[(&str, &str)] = &[
    ("apiKey", "apiKey"),
    ("appKey", "appKey"),
    ("datadogSite", "datadogSite"),
];

type Row = (
    Option<&'static str>,
    &'static [(&'static str, &'static str)],
    &'static [(&'static str, &'static str)],
    Option<&'static str>,
);

// Upstream's testDatadogAPIMetadata: (trigger metricType, metadata, auth params, field named by the error).
const API_TABLE: &[Row] = &[
    (None, &[], &[], Some("appKey")),
    (
        None,
        &[
            ("query", Q),
            ("queryValue", "7"),
            ("metricUnavailableValue", "1.5"),
            ("type", "average"),
            ("age", "60"),
            ("timeWindowOffset", "30"),
            ("lastAvailablePointOffset", "1"),
        ],
        KEYS,
        None,
    ),
    (
        None,
        &[("query", Q), ("queryValue", "7"), ("timeout", "30s")],
        KEYS,
        None,
    ),
    (
        None,
        &[("query", Q), ("queryValue", "7"), ("timeout", "1m")],
        KEYS,
        None,
    ),
    (
        None,
        &[("query", Q), ("queryValue", "7"), ("timeout", "2m30s")],
        KEYS,
        None,
    ),
    (
        None,
        &[("query", Q), ("queryValue", "7"), ("timeout", "500ms")],
        KEYS,
        None,
    ),
    (
        None,
        &[("query", Q), ("queryValue", "7"), ("timeout", "0s")],
        KEYS,
        None,
    ),
    (
        None,
        &[("query", Q), ("queryValue", "7"), ("timeout", "30")],
        KEYS,
        None,
    ),
    (
        None,
        &[("query", Q), ("queryValue", "7"), ("timeout", "")],
        KEYS,
        None,
    ),
    (
        None,
        &[("query", Q), ("queryValue", "7"), ("timeout", "invalid")],
        KEYS,
        Some("timeout"),
    ),
    (
        None,
        &[("query", Q), ("queryValue", "7"), ("timeout", "-5s")],
        KEYS,
        Some("timeout"),
    ),
    (
        None,
        &[
            (
                "query",
                "sum:trace.redis.command.hits{env:none,service:redis}.as_count(),sum:trace.redis.command.hits{env:none,service:redis}.as_count()/2",
            ),
            ("queryValue", "7"),
            ("queryAggregator", "average"),
            ("metricUnavailableValue", "1.5"),
            ("type", "average"),
            ("age", "60"),
        ],
        KEYS,
        None,
    ),
    (
        None,
        &[("query", Q), ("queryValue", "7"), ("type", "average")],
        KEYS,
        None,
    ),
    (
        None,
        &[
            ("query", Q),
            ("queryValue", "7"),
            ("metricUnavailableValue", "1.5"),
            ("type", "average"),
            ("age", "60"),
            ("lastAvailablePointOffset", "1"),
        ],
        KEYS,
        None,
    ),
    (
        None,
        &[
            ("query", Q),
            ("queryValue", "7"),
            ("metricUnavailableValue", "1.5"),
            ("type", "average"),
            ("age", "60"),
            ("timeWindowOffset", "30"),
        ],
        KEYS,
        None,
    ),
    (
        None,
        &[("query", Q), ("queryValue", "7"), ("age", "60")],
        KEYS,
        None,
    ),
    (
        None,
        &[
            ("query", Q),
            ("queryValue", "7"),
            ("type", "invalid"),
            ("age", "60"),
        ],
        KEYS,
        Some("type"),
    ),
    (
        Some("AverageValue"),
        &[
            ("query", Q),
            ("queryValue", "7"),
            ("type", "average"),
            ("age", "60"),
        ],
        KEYS,
        Some("type"),
    ),
    (
        None,
        &[("queryValue", "7"), ("type", "average"), ("age", "60")],
        KEYS,
        Some("query"),
    ),
    (
        None,
        &[("query", Q), ("type", "average"), ("age", "60")],
        KEYS,
        Some("targetValue"),
    ),
    (
        None,
        &[
            ("query", Q),
            ("queryValue", "notanint"),
            ("type", "average"),
            ("age", "60"),
        ],
        KEYS,
        Some("targetValue"),
    ),
    (
        None,
        &[
            ("query", Q),
            ("queryValue", "notanint"),
            ("queryAggegrator", "1.0"),
            ("type", "average"),
            ("age", "60"),
        ],
        KEYS,
        Some("targetValue"),
    ),
    (
        None,
        &[
            ("query", Q),
            ("queryValue", "1"),
            ("activationQueryValue", "notanint"),
            ("type", "average"),
            ("age", "60"),
        ],
        KEYS,
        Some("activationQueryValue"),
    ),
    (
        None,
        &[
            ("query", "sum:trace.redis.command.hits"),
            ("queryValue", "7"),
            ("type", "average"),
            ("age", "60"),
        ],
        KEYS,
        Some("query"),
    ),
    (
        None,
        &[
            ("query", Q),
            ("queryValue", "7"),
            ("metricUnavailableValue", "notafloat"),
            ("type", "average"),
            ("age", "60"),
        ],
        KEYS,
        Some("metricUnavailableValue"),
    ),
    (None, &[("query", Q), ("queryValue", "7")], KEYS, None),
    (
        None,
        &[("query", Q), ("queryValue", "7")],
        &[("apiKey", "apiKey"), ("appKey", "appKey")],
        None,
    ),
    (
        None,
        &[("query", Q), ("queryValue", "7")],
        &[("appKey", "appKey")],
        Some("apiKey"),
    ),
    (
        None,
        &[("query", Q), ("queryValue", "7")],
        &[("apiKey", "apiKey")],
        Some("appKey"),
    ),
    (
        None,
        &[
            ("query", "sum:trace.redis.command.hits.as_count()"),
            ("queryValue", "7"),
        ],
        &[],
        Some("query"),
    ),
    (
        None,
        &[
            ("query", Q),
            ("queryValue", "7"),
            ("metricUnavailableValue", "2.5"),
        ],
        KEYS,
        None,
    ),
    // Not in upstream's table: the aggregator enum and the non-negative windows.
    (
        None,
        &[
            ("query", Q),
            ("queryValue", "7"),
            ("queryAggregator", "sum"),
        ],
        KEYS,
        Some("queryAggregator"),
    ),
    (
        None,
        &[("query", Q), ("queryValue", "7"), ("age", "-1")],
        KEYS,
        Some("age"),
    ),
    (
        None,
        &[
            ("query", Q),
            ("queryValue", "7"),
            ("lastAvailablePointOffset", "-1"),
        ],
        KEYS,
        Some("lastAvailablePointOffset"),
    ),
];

const CA_AUTH: &[(&str, &str)] = &[
    ("token", "token"),
    ("datadogNamespace", "datadog"),
    ("datadogMetricsService", "datadog-cluster-agent-metrics-api"),
    ("unsafeSsl", "true"),
    ("authMode", "bearer"),
];
const CA_AUTH_PORT: &[(&str, &str)] = &[
    ("token", "token"),
    ("datadogNamespace", "datadog"),
    ("datadogMetricsService", "datadog-cluster-agent-metrics-api"),
    ("datadogMetricsServicePort", "8080"),
    ("unsafeSsl", "true"),
    ("authMode", "bearer"),
];
const CA_AUTH_PLAIN: &[(&str, &str)] = &[
    ("token", "token"),
    ("datadogNamespace", "datadog"),
    ("datadogMetricsService", "datadog-cluster-agent-metrics-api"),
    ("authMode", "bearer"),
];
const CA_MD: &[(&str, &str)] = &[
    ("useClusterAgentProxy", "true"),
    ("datadogMetricName", "nginx-hits"),
    ("datadogMetricNamespace", "default"),
    ("targetValue", "2"),
];

macro_rules! ca_md {
    ($($k:expr => $v:expr),* $(,)?) => {
        &[
            ("useClusterAgentProxy", "true"),
            ("datadogMetricName", "nginx-hits"),
            ("datadogMetricNamespace", "default"),
            ("targetValue", "2"),
            $(($k, $v)),*
        ]
    };
}

// Upstream's testDatadogClusterAgentMetadata.
const CLUSTER_AGENT_TABLE: &[Row] = &[
    (None, &[], &[], Some("appKey")),
    (None, ca_md!("type" => "global"), CA_AUTH_PORT, None),
    (None, ca_md!("type" => "global"), CA_AUTH, None),
    (
        Some("AverageValue"),
        ca_md!("type" => "global"),
        CA_AUTH,
        Some("type"),
    ),
    (
        None,
        &[
            ("useClusterAgentProxy", "true"),
            ("datadogMetricNamespace", "default"),
            ("targetValue", "2"),
            ("type", "global"),
        ],
        CA_AUTH,
        Some("datadogMetricName"),
    ),
    (
        None,
        &[
            ("useClusterAgentProxy", "true"),
            ("datadogMetricName", "nginx-hits"),
            ("targetValue", "2"),
            ("type", "global"),
        ],
        CA_AUTH,
        Some("datadogMetricNamespace"),
    ),
    (
        None,
        ca_md!("type" => "global"),
        &[
            ("token", "token"),
            ("datadogNamespace", "datadog"),
            ("datadogMetricsService", "datadog-cluster-agent-metrics-api"),
            ("datadogMetricsServicePort", "notanint"),
            ("unsafeSsl", "true"),
            ("authMode", "bearer"),
        ],
        Some("datadogMetricsServicePort"),
    ),
    (
        None,
        &[
            ("useClusterAgentProxy", "true"),
            ("datadogMetricName", "nginx-hits"),
            ("datadogMetricNamespace", "default"),
            ("targetValue", "notanint"),
            ("type", "global"),
        ],
        CA_AUTH_PORT,
        Some("targetValue"),
    ),
    (
        None,
        ca_md!("type" => "notatype"),
        CA_AUTH_PORT,
        Some("type"),
    ),
    (
        None,
        &[
            ("useClusterAgentProxy", "true"),
            ("datadogMetricName", "test-metric"),
            ("datadogMetricNamespace", "application-metrics"),
            ("targetValue", "10"),
        ],
        &[
            ("token", "test-token"),
            ("datadogNamespace", "datadog-system"),
            ("datadogMetricsService", "datadog-cluster-agent-metrics-api"),
            ("datadogMetricsServicePort", "8443"),
            ("authMode", "bearer"),
        ],
        None,
    ),
    (
        None,
        &[
            ("useClusterAgentProxy", "true"),
            ("datadogMetricName", "custom-metric"),
            ("datadogMetricNamespace", "prod-metrics"),
            ("targetValue", "5"),
        ],
        &[
            ("token", "test-token"),
            ("datadogNamespace", "monitoring"),
            ("datadogMetricsService", "custom-datadog-service"),
            ("datadogMetricsServicePort", "9443"),
            ("authMode", "bearer"),
        ],
        None,
    ),
    (None, ca_md!("timeout" => "30s"), CA_AUTH_PLAIN, None),
    (None, ca_md!("timeout" => "1m"), CA_AUTH_PLAIN, None),
    (None, ca_md!("timeout" => "2m30s"), CA_AUTH_PLAIN, None),
    (None, ca_md!("timeout" => "500ms"), CA_AUTH_PLAIN, None),
    (None, ca_md!("timeout" => "0s"), CA_AUTH_PLAIN, None),
    (None, ca_md!("timeout" => "30"), CA_AUTH_PLAIN, None),
    (None, ca_md!("timeout" => ""), CA_AUTH_PLAIN, None),
    (
        None,
        ca_md!("timeout" => "invalid"),
        CA_AUTH_PLAIN,
        Some("timeout"),
    ),
    (
        None,
        ca_md!("timeout" => "-10s"),
        CA_AUTH_PLAIN,
        Some("timeout"),
    ),
    (
        None,
        ca_md!("metricUnavailableValue" => "5.0"),
        CA_AUTH_PLAIN,
        None,
    ),
    // Not in upstream's table: bearer needs its token, and bearer is the only mode.
    (
        None,
        CA_MD,
        &[
            ("datadogNamespace", "datadog"),
            ("datadogMetricsService", "datadog-cluster-agent-metrics-api"),
            ("authMode", "bearer"),
        ],
        Some("token"),
    ),
    (
        None,
        CA_MD,
        &[
            ("datadogNamespace", "datadog"),
            ("datadogMetricsService", "datadog-cluster-agent-metrics-api"),
            ("authMode", "basic"),
        ],
        Some("authMode"),
    ),
    (
        None,
        CA_MD,
        &[("datadogMetricsService", "datadog-cluster-agent-metrics-api")],
        Some("datadogNamespace"),
    ),
    (
        None,
        CA_MD,
        &[("datadogNamespace", "datadog")],
        Some("datadogMetricsService"),
    ),
];

fn check_table(name: &str, table: &[Row]) {
    for (i, (metric_type, md, auth, want_err)) in table.iter().enumerate() {
        // Upstream's table helper validates with the mode the table is about; keda-rs picks the mode from
        // useClusterAgentProxy, which every cluster-agent row sets (except the empty first row, which is an
        // API-mode error upstream too).
        match (parse_typed(0, *metric_type, md, auth), want_err) {
            (Ok(_), None) => {}
            (Err(e), Some(field)) => assert_eq!(e.field(), Some(*field), "{name} case {i}: {e}"),
            (Ok(_), Some(field)) => panic!("{name} case {i}: expected an error about {field}"),
            (Err(e), None) => panic!("{name} case {i}: unexpected error {e}"),
        }
    }
}

#[test]
fn parse_tables_like_upstream() {
    check_table("api", API_TABLE);
    check_table("cluster agent", CLUSTER_AGENT_TABLE);
}

#[test]
fn metric_names_and_urls_like_upstream() {
    let (_, md, auth, _) = API_TABLE[1];
    assert_eq!(
        parse_typed(0, None, md, auth).expect("api").metric_name,
        "s0-datadog-sum-trace-redis-command-hits"
    );
    assert_eq!(
        parse_typed(1, None, md, auth).expect("api").metric_name,
        "s1-datadog-sum-trace-redis-command-hits"
    );
    let (_, md, auth, _) = CLUSTER_AGENT_TABLE[1];
    let cfg = parse_typed(0, None, md, auth).expect("cluster agent");
    assert_eq!(cfg.metric_name, "datadogmetric@default:nginx-hits");
    assert_eq!(
        cfg.metric_spec_name(),
        "datadogmetric@default:nginx-hits",
        "not index-prefixed, as upstream"
    );
    let Mode::ClusterAgent(ca) = &cfg.mode else {
        panic!("cluster agent mode expected")
    };
    assert_eq!(
        ca.service_url(),
        "https://datadog-cluster-agent-metrics-api.datadog:8080/apis/external.metrics.k8s.io/v1beta1"
    );
    // The service's namespace in the host, the metric's namespace in the path (upstream issue #6769).
    let (_, md, auth, _) = CLUSTER_AGENT_TABLE[9];
    let cfg = parse_typed(0, None, md, auth).expect("cluster agent");
    let Mode::ClusterAgent(ca) = &cfg.mode else {
        panic!("cluster agent mode expected")
    };
    assert_eq!(
        ca.metric_url(&cfg.metric_name),
        "https://datadog-cluster-agent-metrics-api.datadog-system:8443/apis/external.metrics.k8s.io/v1beta1/namespaces/application-metrics/datadogmetric@application-metrics:test-metric"
    );
    // Trigger metricType drives the HPA target type; the deprecated metadata type is only validated.
    let cfg =
        parse_typed(0, Some("Value"), &[("query", Q), ("queryValue", "7")], KEYS).expect("parses");
    assert_eq!(cfg.metric_type, keda_scalers::MetricTargetType::Value);
    let cfg = parse_typed(
        0,
        None,
        &[("query", Q), ("queryValue", "7"), ("type", "global")],
        KEYS,
    )
    .expect("parses");
    assert_eq!(
        cfg.metric_type,
        keda_scalers::MetricTargetType::AverageValue
    );
}

// Upstream's TestDatadogMetadataValidateUseFiller.
#[test]
fn metric_unavailable_value_like_upstream() {
    for cluster_agent in [false, true] {
        for (raw, want) in [
            (None, None),
            (Some("0"), Some(0.0)),
            (Some("1.5"), Some(1.5)),
            (Some("-1.0"), Some(-1.0)),
            (Some("0.1"), Some(0.1)),
        ] {
            let mut md: Vec<(&str, &str)> = if cluster_agent {
                vec![
                    ("useClusterAgentProxy", "true"),
                    ("datadogMetricName", "test-metric"),
                    ("datadogMetricNamespace", "test-namespace"),
                    ("queryValue", "7"),
                ]
            } else {
                vec![("query", Q), ("queryValue", "7")]
            };
            if let Some(r) = raw {
                md.push(("metricUnavailableValue", r));
            }
            let auth: &[(&str, &str)] = if cluster_agent {
                &[
                    ("datadogMetricsService", "datadog-metrics-service"),
                    ("datadogNamespace", "default"),
                ]
            } else {
                KEYS
            };
            let cfg = parse_typed(0, None, &md, auth).expect("parses");
            assert_eq!(
                cfg.fill_value, want,
                "cluster agent {cluster_agent}, {raw:?}"
            );
        }
    }
}

trait SpecName {
    fn metric_spec_name(&self) -> String;
}

impl SpecName for DatadogConfig {
    fn metric_spec_name(&self) -> String {
        use keda_scalers::TriggerConfig;
        self.metric_spec().metric_name()
    }
}

#[allow(clippy::field_reassign_with_default)]
fn context(http: HttpClients) -> BuildContext {
    let mut ctx = BuildContext::default();
    ctx.http = http;
    ctx
}

async fn sample(
    ctx: &BuildContext,
    md: &[(&str, &str)],
    auth: &[(&str, &str)],
) -> Result<Sample, ScalerError> {
    let md = map(md);
    let auth = map(auth);
    let env = BTreeMap::new();
    let config = parse_trigger(&TriggerInput {
        index: 0,
        trigger_type: "datadog",
        namespace: "default",
        name: None,
        metadata: &md,
        resolved_env: &env,
        auth_params: &auth,
        metric_type: None,
    })?;
    config.build(ctx).await?.sample().await
}

const API_KEY: &str = "dd-api-0123456789abcdef";
const APP_KEY: &str = "dd-app-fedcba9876543210";

/// One series in the documented `/api/v1/query` shape, with its points.
fn series(expression: &str, points: serde_json::Value) -> serde_json::Value {
    json!({
        "aggr": "sum",
        "display_name": expression,
        "end": 1700000089000i64,
        "expression": expression,
        "interval": 10,
        "length": points.as_array().map(|p| p.len()).unwrap_or(0),
        "metric": "trace.redis.command.hits",
        "pointlist": points,
        "query_index": 0,
        "scope": "env:none,service:redis",
        "start": 1700000000000i64,
        "tag_set": [],
        "unit": null
    })
}

struct QueryParams {
    from: i64,
    to: i64,
    query: String,
}

/// `from` and `to` (integer seconds) and `query`, all required, as the API reference documents.
fn query_params(q: &std::collections::HashMap<String, String>) -> Option<QueryParams> {
    Some(QueryParams {
        from: q.get("from")?.parse().ok()?,
        to: q.get("to")?.parse().ok()?,
        query: q.get("query")?.clone(),
    })
}

/// A Datadog metrics query API stand-in: checks method, path, query parameters and key headers as the
/// API reference documents them, and answers per query text.
async fn datadog_api(ca: &support::TestCa) -> (BuildContext, Arc<Mutex<Vec<(String, i64, i64)>>>) {
    let seen: Arc<Mutex<Vec<(String, i64, i64)>>> = Arc::default();
    let log = seen.clone();
    let app = Router::new().route(
        "/api/v1/query",
        get(
            move |headers: HeaderMap,
                  uri: Uri,
                  Query(params): Query<std::collections::HashMap<String, String>>| {
                let log = log.clone();
                async move {
                    let h = |n: &str| {
                        headers
                            .get(n)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("")
                            .to_owned()
                    };
                    if h("dd-api-key") != API_KEY || h("dd-application-key") != APP_KEY {
                        return (
                            StatusCode::FORBIDDEN,
                            json!({"errors": ["Forbidden"]}).to_string(),
                        )
                            .into_response();
                    }
                    if h("accept") != "application/json" {
                        return (StatusCode::NOT_ACCEPTABLE, "accept application/json")
                            .into_response();
                    }
                    let Some(p) = query_params(&params) else {
                        return (
                            StatusCode::BAD_REQUEST,
                            json!({"errors": [format!("from, to and query are required: {uri}")]})
                                .to_string(),
                        )
                            .into_response();
                    };
                    log.lock().expect("lock").push((h("host"), p.from, p.to));
                    let body = |series: Vec<serde_json::Value>| {
                        json!({
                            "status": "ok",
                            "res_type": "time_series",
                            "resp_version": 1,
                            "query": p.query,
                            "from_date": p.from * 1000,
                            "to_date": p.to * 1000,
                            "series": series,
                            "values": [],
                            "times": [],
                            "message": "",
                            "group_by": []
                        })
                        .to_string()
                    };
                    let ok = |series| (StatusCode::OK, body(series)).into_response();
                    match p.query.as_str() {
                        "avg:queue.depth{queue:orders}" => ok(vec![series(
                            &p.query,
                            json!([
                                [1700000000000.0, 40.0],
                                [1700000010000.0, 41.0],
                                [1700000020000.0, 42.0],
                                [1700000030000.0, null]
                            ]),
                        )]),
                        "avg:queue.depth{*} by {queue}" => ok(vec![
                            series(
                                &p.query,
                                json!([[1700000000000.0, 10.0], [1700000010000.0, 20.0]]),
                            ),
                            series(
                                &p.query,
                                json!([[1700000000000.0, 30.0], [1700000010000.0, 40.0]]),
                            ),
                        ]),
                        "avg:nothing{*}" => ok(vec![]),
                        "avg:unavailable{*}" => (
                            StatusCode::UNPROCESSABLE_ENTITY,
                            json!({"errors": ["metric unavailable"]}).to_string(),
                        )
                            .into_response(),
                        "avg:limited{*}" => {
                            let mut r = (
                                StatusCode::TOO_MANY_REQUESTS,
                                json!({"errors": ["Too many requests"]}).to_string(),
                            )
                                .into_response();
                            let hs = r.headers_mut();
                            hs.insert("X-Ratelimit-Limit", HeaderValue::from_static("300"));
                            hs.insert("X-Ratelimit-Period", HeaderValue::from_static("3600"));
                            hs.insert("X-Ratelimit-Reset", HeaderValue::from_static("42"));
                            r
                        }
                        other => (
                            StatusCode::BAD_REQUEST,
                            json!({"errors": [format!("Error parsing query: {other}")]})
                                .to_string(),
                        )
                            .into_response(),
                    }
                }
            },
        ),
    );
    let (cert, key) = ca.leaf(&["api.datadoghq.com", "api.datadoghq.eu"]);
    let addr = support::serve_tls(app, 0, &cert, &key, None).await;
    let ctx = context(HttpClients::with_overrides(ClientOverrides {
        resolve: vec![
            ("api.datadoghq.com".into(), addr),
            ("api.datadoghq.eu".into(), addr),
        ],
        extra_roots: vec![ca.pem()],
    }));
    (ctx, seen)
}

#[tokio::test]
async fn api_mode_stand_in() {
    let ca = support::TestCa::new();
    let (ctx, seen) = datadog_api(&ca).await;
    let keys = [("apiKey", API_KEY), ("appKey", APP_KEY)];

    let s = sample(
        &ctx,
        &[
            ("query", "avg:queue.depth{queue:orders}"),
            ("queryValue", "10"),
        ],
        &keys,
    )
    .await
    .expect("sample");
    assert_eq!((s.value, s.active), (42.0, true), "last non-null point");
    let (host, from, to) = seen.lock().expect("lock").pop().expect("request");
    assert_eq!(host, "api.datadoghq.com");
    let now = chrono::Utc::now().timestamp();
    assert!((now - 5..=now).contains(&to), "to={to} now={now}");
    assert_eq!(to - from, 90, "default age");

    // Window offsets, the EU site, point offset, activation (strict).
    let s = sample(
        &ctx,
        &[
            ("query", "avg:queue.depth{queue:orders}"),
            ("queryValue", "10"),
            ("age", "120"),
            ("timeWindowOffset", "30"),
            ("lastAvailablePointOffset", "1"),
            ("activationQueryValue", "41"),
        ],
        &[
            ("apiKey", API_KEY),
            ("appKey", APP_KEY),
            ("datadogSite", "datadoghq.eu"),
        ],
    )
    .await
    .expect("sample");
    assert_eq!((s.value, s.active), (41.0, false));
    let (host, from, to) = seen.lock().expect("lock").pop().expect("request");
    assert_eq!(host, "api.datadoghq.eu");
    assert!((now - 40..=now - 29).contains(&to), "to={to} now={now}");
    assert_eq!(to - from, 120);

    // Several series need an aggregator: max, average.
    let multi = "avg:queue.depth{*} by {queue}";
    let err = sample(&ctx, &[("query", multi), ("queryValue", "1")], &keys)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("more than 1 series"), "{err}");
    for (agg, want) in [("max", 40.0), ("average", 30.0)] {
        let s = sample(
            &ctx,
            &[
                ("query", multi),
                ("queryValue", "1"),
                ("queryAggregator", agg),
            ],
            &keys,
        )
        .await
        .expect(agg);
        assert_eq!(s.value, want, "{agg}");
    }

    // No series, and HTTP 422: metricUnavailableValue when set, an error otherwise.
    for query in ["avg:nothing{*}", "avg:unavailable{*}"] {
        let err = sample(&ctx, &[("query", query), ("queryValue", "1")], &keys)
            .await
            .unwrap_err();
        assert_eq!(err.category(), "backend", "{err}");
        let s = sample(
            &ctx,
            &[
                ("query", query),
                ("queryValue", "1"),
                ("metricUnavailableValue", "2.5"),
            ],
            &keys,
        )
        .await
        .expect(query);
        assert_eq!((s.value, s.active), (2.5, true), "{query}");
    }

    // 429 with its rate-limit headers, 403 for wrong keys, 400 for a bad query.
    let err = sample(
        &ctx,
        &[("query", "avg:limited{*}"), ("queryValue", "1")],
        &keys,
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("reached the 300 queries per 3600 seconds rate limit, next limit reset will happen in 42 seconds"),
        "{err}"
    );
    let err = sample(
        &ctx,
        &[
            ("query", "avg:queue.depth{queue:orders}"),
            ("queryValue", "1"),
        ],
        &[("apiKey", API_KEY), ("appKey", "wrong")],
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("unauthorized to connect to Datadog"),
        "{err}"
    );
    let err = sample(
        &ctx,
        &[("query", "avg:what{*}"), ("queryValue", "1")],
        &keys,
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("400"), "{err}");

    // A site the API client does not know is a permanent error at build.
    let err = sample(
        &ctx,
        &[
            ("query", "avg:queue.depth{queue:orders}"),
            ("queryValue", "1"),
        ],
        &[
            ("apiKey", API_KEY),
            ("appKey", APP_KEY),
            ("datadogSite", "datadogSite"),
        ],
    )
    .await
    .unwrap_err();
    assert_eq!(err.field(), Some("datadogSite"), "{err}");
}

/// A Datadog Cluster Agent external metrics stand-in on `port`.
async fn cluster_agent(ca: &support::TestCa, port: u16, host: &str) -> Arc<Mutex<Vec<String>>> {
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let log = seen.clone();
    let app = Router::new().fallback(move |method: Method, uri: Uri, headers: HeaderMap| {
        let log = log.clone();
        async move {
            log.lock().expect("lock").push(uri.path().to_owned());
            let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
            if method != Method::GET {
                return (StatusCode::METHOD_NOT_ALLOWED, String::new()).into_response();
            }
            if h("authorization") != "Bearer ca-token" {
                return (
                    StatusCode::UNAUTHORIZED,
                    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": "Unauthorized", "reason": "Unauthorized", "code": 401}).to_string(),
                )
                    .into_response();
            }
            let prefix = "/apis/external.metrics.k8s.io/v1beta1/namespaces/";
            let Some(rest) = uri.path().strip_prefix(prefix) else {
                return (StatusCode::NOT_FOUND, "404 page not found".to_owned()).into_response();
            };
            let list = |name: &str, value: serde_json::Value| {
                json!({
                    "kind": "ExternalMetricValueList",
                    "apiVersion": "external.metrics.k8s.io/v1beta1",
                    "metadata": {},
                    "items": [{
                        "metricName": name,
                        "metricLabels": null,
                        "timestamp": "2024-01-01T00:00:00Z",
                        "value": value
                    }]
                })
                .to_string()
            };
            match rest {
                "apps/datadogmetric@apps:nginx-hits" => {
                    (StatusCode::OK, list("datadogmetric@apps:nginx-hits", json!("2500m"))).into_response()
                }
                "apps/datadogmetric@apps:plain" => {
                    (StatusCode::OK, list("datadogmetric@apps:plain", json!(7))).into_response()
                }
                "apps/datadogmetric@apps:not-ready" => (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": "DatadogMetric is not ready", "code": 422}).to_string(),
                )
                    .into_response(),
                _ => (
                    StatusCode::NOT_FOUND,
                    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": format!("{rest} not found"), "code": 404}).to_string(),
                )
                    .into_response(),
            }
        }
    });
    let (cert, key) = ca.leaf(&[host]);
    support::serve_tls(app, port, &cert, &key, None).await;
    seen
}

#[tokio::test]
async fn cluster_agent_stand_in() {
    let ca = support::TestCa::new();
    let port = support::free_port();
    let host = "datadog-cluster-agent-metrics-api.datadog";
    let seen = cluster_agent(&ca, port, host).await;
    let ctx = context(HttpClients::with_overrides(ClientOverrides {
        resolve: vec![(
            host.into(),
            std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        )],
        extra_roots: vec![],
    }));
    let port_s = port.to_string();
    let auth = |unsafe_ssl: &'static str| {
        vec![
            ("datadogNamespace", "datadog"),
            ("datadogMetricsService", "datadog-cluster-agent-metrics-api"),
            ("datadogMetricsServicePort", port_s.as_str()),
            ("unsafeSsl", unsafe_ssl),
            ("authMode", "bearer"),
            ("token", "ca-token"),
        ]
    };
    let md = |name: &'static str, extra: &[(&'static str, &'static str)]| {
        let mut v = vec![
            ("useClusterAgentProxy", "true"),
            ("datadogMetricName", name),
            ("datadogMetricNamespace", "apps"),
            ("targetValue", "2"),
        ];
        v.extend_from_slice(extra);
        v
    };

    let s = sample(&ctx, &md("nginx-hits", &[]), &auth("true"))
        .await
        .expect("sample");
    assert_eq!((s.value, s.active), (2.5, true), "Quantity 2500m");
    assert_eq!(
        seen.lock().expect("lock").pop().as_deref(),
        Some("/apis/external.metrics.k8s.io/v1beta1/namespaces/apps/datadogmetric@apps:nginx-hits")
    );
    let s = sample(
        &ctx,
        &md("plain", &[("activationTargetValue", "7")]),
        &auth("true"),
    )
    .await
    .expect("sample");
    assert_eq!((s.value, s.active), (7.0, false));

    // 422: the fill value when set, else an error carrying the Status message.
    let s = sample(
        &ctx,
        &md("not-ready", &[("metricUnavailableValue", "1")]),
        &auth("true"),
    )
    .await
    .expect("fill");
    assert_eq!(s.value, 1.0);
    let err = sample(&ctx, &md("not-ready", &[]), &auth("true"))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("DatadogMetric is not ready"),
        "{err}"
    );
    let err = sample(&ctx, &md("missing", &[]), &auth("true"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("status 404"), "{err}");

    // Without authMode no token is sent.
    let mut no_auth = auth("true");
    no_auth.retain(|(k, _)| *k != "authMode");
    let err = sample(&ctx, &md("nginx-hits", &[]), &no_auth)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("Unauthorized"), "{err}");

    // The self-signed certificate is refused unless unsafeSsl.
    let before = seen.lock().expect("lock").len();
    let err = sample(&ctx, &md("nginx-hits", &[]), &auth("false"))
        .await
        .unwrap_err();
    assert_eq!(err.category(), "backend", "{err}");
    assert_eq!(
        seen.lock().expect("lock").len(),
        before,
        "no request got through"
    );
}
