//! prometheus: upstream's parse tables, request shape and auth modes against loopback stand-ins, and the
//! scaler against a real Prometheus (Debian's package) scraping a loopback exporter.
#![cfg(feature = "prometheus")]

use crate::support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::RawQuery;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use keda_scalers::{
    BuildContext, EmptyUpstreamResponse, MetricSpec, Sample, SampleReport, ScalerError,
    TriggerInput, parse_trigger, sample_with_timeout,
};

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn parse_at(
    index: usize,
    md: &[(&str, &str)],
    auth: &[(&str, &str)],
) -> Result<Box<dyn keda_scalers::TriggerConfig>, ScalerError> {
    let md = map(md);
    let auth = map(auth);
    let env = BTreeMap::new();
    parse_trigger(&TriggerInput {
        index,
        trigger_type: "prometheus",
        namespace: "default",
        name: None,
        metadata: &md,
        resolved_env: &env,
        auth_params: &auth,
        metric_type: None,
    })
}

async fn sample_with(
    ctx: &BuildContext,
    md: &[(&str, &str)],
    auth: &[(&str, &str)],
) -> Result<Sample, ScalerError> {
    parse_at(0, md, auth)?.build(ctx).await?.sample().await
}

// Upstream's testPromMetadata: (metadata, is_error, field named by the error).
#[allow(clippy::type_complexity)]
const PARSE_TABLE: &[(&[(&str, &str)], Option<&str>)] = &[
    (&[], Some("serverAddress")),
    (
        &[
            ("serverAddress", "http://localhost:9090"),
            ("metricName", "http_requests_total"),
            ("threshold", "100"),
            ("query", "up"),
        ],
        None,
    ),
    (
        &[
            ("serverAddress", "http://localhost:9090"),
            ("threshold", "100"),
            ("query", "up"),
            ("namespace", "foo"),
        ],
        None,
    ),
    (
        &[
            ("serverAddress", "http://localhost:9090"),
            ("metricName", "http_requests_total"),
            ("threshold", "100"),
            ("query", "up"),
            ("ignoreNullValues", "false"),
        ],
        None,
    ),
    (
        &[
            ("serverAddress", "http://localhost:9090"),
            ("metricName", "http_requests_total"),
            ("threshold", "100"),
            ("query", "up"),
            ("activationThreshold", "50"),
        ],
        None,
    ),
    (
        &[
            ("serverAddress", ""),
            ("metricName", "http_requests_total"),
            ("threshold", "100"),
            ("query", "up"),
        ],
        Some("serverAddress"),
    ),
    (
        &[
            ("serverAddress", "http://localhost:9090"),
            ("metricName", "http_requests_total"),
            ("query", "up"),
        ],
        Some("threshold"),
    ),
    (
        &[
            ("serverAddress", "http://localhost:9090"),
            ("metricName", "http_requests_total"),
            ("threshold", "one"),
            ("query", "up"),
        ],
        Some("threshold"),
    ),
    (
        &[
            ("serverAddress", "http://localhost:9090"),
            ("metricName", "http_requests_total"),
            ("threshold", "100"),
            ("activationThreshold", "one"),
            ("query", "up"),
        ],
        Some("activationThreshold"),
    ),
    (
        &[
            ("serverAddress", "http://localhost:9090"),
            ("metricName", "http_requests_total"),
            ("threshold", "100"),
            ("query", ""),
        ],
        Some("query"),
    ),
    (
        &[
            ("serverAddress", "http://localhost:9090"),
            ("metricName", "http_requests_total"),
            ("threshold", "100"),
            ("query", "up"),
            ("ignoreNullValues", "xxxx"),
        ],
        Some("ignoreNullValues"),
    ),
    (
        &[
            ("serverAddress", "https://localhost:9090"),
            ("metricName", "http_requests_total"),
            ("threshold", "100"),
            ("query", "up"),
            ("unsafeSsl", "true"),
        ],
        None,
    ),
    (
        &[
            ("serverAddress", "http://localhost:9090"),
            ("metricName", "http_requests_total"),
            ("threshold", "100"),
            ("query", "up"),
            ("customHeaders", "key1=value1,key2=value2"),
        ],
        None,
    ),
    (
        &[
            ("serverAddress", "http://localhost:9090"),
            ("metricName", "http_requests_total"),
            ("threshold", "100"),
            ("query", "up"),
            ("customHeaders", "key1=value1,key2"),
        ],
        Some("customHeaders"),
    ),
    (
        &[
            ("serverAddress", "http://localhost:9090"),
            ("metricName", "http_requests_total"),
            ("threshold", "100"),
            ("query", "up"),
            ("queryParameters", "key1=value1,key2=value2"),
        ],
        None,
    ),
    (
        &[
            ("serverAddress", "http://localhost:9090"),
            ("metricName", "http_requests_total"),
            ("threshold", "100"),
            ("query", "up"),
            ("queryParameters", "key1=value1,key2"),
        ],
        Some("queryParameters"),
    ),
    (
        &[
            ("serverAddress", "http://localhost:9090"),
            ("metricName", "http_requests_total"),
            ("threshold", "100"),
            ("query", "up"),
            ("timeout", "1000"),
        ],
        None,
    ),
    (
        &[
            ("serverAddress", "http://localhost:9090"),
            ("metricName", "http_requests_total"),
            ("threshold", "100"),
            ("query", "up"),
            ("timeout", "-1"),
        ],
        Some("timeout"),
    ),
    (
        &[
            ("serverAddress", "http://localhost:9090"),
            ("metricName", "http_requests_total"),
            ("threshold", "100"),
            ("query", "up"),
            ("timeout", "a"),
        ],
        Some("timeout"),
    ),
];

const BASE: &[(&str, &str)] = &[
    ("serverAddress", "http://localhost:9090"),
    ("metricName", "http_requests_total"),
    ("threshold", "100"),
    ("query", "up"),
];

// Upstream's testPrometheusAuthMetadata (without the pod-identity rows, which TriggerInput does not carry):
// (extra metadata, auth params, field named by the error).
#[allow(clippy::type_complexity)]
const AUTH_TABLE: &[(&[(&str, &str)], &[(&str, &str)], Option<&str>)] = &[
    (
        &[("authModes", "tls")],
        &[("ca", "caaa"), ("cert", "ceert"), ("key", "keey")],
        None,
    ),
    (
        &[("authModes", "tls")],
        &[("cert", "ceert"), ("key", "keey")],
        None,
    ),
    (
        &[("authModes", "tls")],
        &[("ca", "caaa"), ("cert", "ceert")],
        Some("key"),
    ),
    (
        &[("authModes", "tls")],
        &[("ca", "caaa"), ("key", "keey")],
        Some("cert"),
    ),
    (
        &[("authModes", "bearer")],
        &[("bearerToken", "tooooken")],
        None,
    ),
    (&[("authModes", "bearer")], &[], Some("bearerToken")),
    (
        &[("authModes", "basic")],
        &[("username", "user"), ("password", "pass")],
        None,
    ),
    (&[("authModes", "basic")], &[], Some("username")),
    (
        &[("authModes", "tls, basic")],
        &[
            ("ca", "caaa"),
            ("cert", "ceert"),
            ("key", "keey"),
            ("username", "user"),
            ("password", "pass"),
        ],
        None,
    ),
    (
        &[("authModes", "tls,basic")],
        &[("username", "user"), ("password", "pass")],
        Some("cert"),
    ),
    (
        &[("authModes", "custom")],
        &[("customAuthHeader", "header"), ("customAuthValue", "value")],
        None,
    ),
    (
        &[("authModes", "custom")],
        &[("customAuthHeader", "")],
        Some("customAuthHeader"),
    ),
    (
        &[("authModes", "custom")],
        &[("customAuthValue", "")],
        Some("customAuthHeader"),
    ),
    (
        &[("authModes", "custom")],
        &[
            ("customAuthHeader", "header\n"),
            ("customAuthValue", "value\n"),
        ],
        None,
    ),
    // Not in upstream's table: bearer/basic/oauth are mutually exclusive, unknown modes are rejected.
    (
        &[("authModes", "bearer,basic")],
        &[("bearerToken", "t"), ("username", "u")],
        Some("authModes"),
    ),
    (&[("authModes", "kerberos")], &[], Some("authModes")),
];

#[test]
fn parse_table_like_upstream() {
    for (i, (md, want_err)) in PARSE_TABLE.iter().enumerate() {
        match (parse_at(0, md, &[]), want_err) {
            (Ok(_), None) => {}
            (Err(e), Some(field)) => assert_eq!(e.field(), Some(*field), "case {i}: {e}"),
            (Ok(_), Some(field)) => panic!("case {i}: expected an error about {field}"),
            (Err(e), None) => panic!("case {i}: unexpected error {e}"),
        }
    }
    for (i, (extra, auth, want_err)) in AUTH_TABLE.iter().enumerate() {
        let md: Vec<(&str, &str)> = BASE.iter().chain(extra.iter()).copied().collect();
        match (parse_at(0, &md, auth), want_err) {
            (Ok(_), None) => {}
            (Err(e), Some(field)) => assert_eq!(e.field(), Some(*field), "auth case {i}: {e}"),
            (Ok(_), Some(field)) => panic!("auth case {i}: expected an error about {field}"),
            (Err(e), None) => panic!("auth case {i}: unexpected error {e}"),
        }
    }
}

#[test]
fn metric_names_like_upstream() {
    for (index, name) in [(0, "s0-prometheus"), (1, "s1-prometheus")] {
        let spec = parse_at(index, PARSE_TABLE[1].0, &[])
            .expect("parses")
            .metric_spec();
        assert_eq!(spec.metric_name(), name);
        let MetricSpec::External { target, .. } = spec else {
            panic!("external metric expected")
        };
        assert_eq!(target, 100.0);
    }
}

#[test]
fn cloud_credentials_are_refused_clearly() {
    let err = parse_at(0, BASE, &[("GoogleApplicationCredentials", "{}")]).unwrap_err();
    assert_eq!(err.field(), Some("GoogleApplicationCredentials"));
    assert!(
        err.to_string().contains("not supported by keda-rs"),
        "{err}"
    );
    let md: Vec<(&str, &str)> = BASE
        .iter()
        .copied()
        .chain([("awsRegion", "eu-west-1")])
        .collect();
    let err = parse_at(0, &md, &[("awsRoleArn", "arn:aws:iam::1:role/x")]).unwrap_err();
    assert_eq!(err.field(), Some("awsRoleArn"));
    // With explicit authModes upstream ignores cloud credentials, and so does keda-rs.
    let md: Vec<(&str, &str)> = BASE
        .iter()
        .copied()
        .chain([("authModes", "bearer")])
        .collect();
    assert!(
        parse_at(
            0,
            &md,
            &[("bearerToken", "t"), ("GoogleApplicationCredentials", "{}")]
        )
        .is_ok()
    );
}

/// What the stand-in saw of one request.
#[derive(Clone, Debug, Default)]
struct Seen {
    path: String,
    query: Vec<(String, String)>,
    raw_query: String,
    headers: HeaderMap,
}

fn decode_query(raw: &str) -> Vec<(String, String)> {
    raw.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).expect("utf8");
                out.push(u8::from_str_radix(hex, 16).expect("hex"));
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).expect("utf8")
}

/// A Prometheus HTTP API stand-in: records each request and answers one instant-query vector of `value`.
async fn prometheus_stand_in(value: &'static str) -> (std::net::SocketAddr, Arc<Mutex<Vec<Seen>>>) {
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let log = seen.clone();
    let app = Router::new().fallback(
        move |uri: axum::http::Uri, RawQuery(raw): RawQuery, headers: HeaderMap| {
            let log = log.clone();
            async move {
                let raw = raw.unwrap_or_default();
                log.lock().expect("lock").push(Seen {
                    path: uri.path().to_owned(),
                    query: decode_query(&raw),
                    raw_query: raw,
                    headers,
                });
                if uri.path() != "/api/v1/query" {
                    return (StatusCode::NOT_FOUND, String::from("404 page not found"));
                }
                (
                    StatusCode::OK,
                    format!(
                        r#"{{"status":"success","data":{{"resultType":"vector","result":[{{"metric":{{}},"value":[1700000000.123,"{value}"]}}]}}}}"#
                    ),
                )
            }
        },
    );
    (support::serve_http(app).await, seen)
}

#[tokio::test]
async fn request_shape_headers_parameters_and_auth_modes() {
    let (addr, seen) = prometheus_stand_in("12.5").await;
    let server = format!("http://{addr}");
    let ctx = BuildContext::default();
    let s = sample_with(
        &ctx,
        &[
            ("serverAddress", &server),
            ("query", "sum(rate(http_requests_total{job=\"a b\"}[5m]))"),
            ("threshold", "10"),
            ("activationThreshold", "12.5"),
            ("namespace", "team-a"),
            (
                "customHeaders",
                "X-Client-Id=cid, X-Tenant-Id = tid,X-Organization-Token=oid",
            ),
            ("queryParameters", "first=foo,second=b&r"),
        ],
        &[],
    )
    .await
    .expect("sample");
    assert_eq!(s.value, 12.5);
    assert!(!s.active, "activation is strictly greater-than");
    let req = seen.lock().expect("lock").pop().expect("one request");
    assert_eq!(req.path, "/api/v1/query");
    let keys: Vec<&str> = req.query.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        ["query", "time", "namespace", "first", "second"],
        "{}",
        req.raw_query
    );
    assert_eq!(
        req.query[0].1,
        "sum(rate(http_requests_total{job=\"a b\"}[5m]))"
    );
    // Go's url.QueryEscape: space as '+', everything reserved %-escaped.
    assert!(
        req.raw_query.starts_with(
            "query=sum%28rate%28http_requests_total%7Bjob%3D%22a+b%22%7D%5B5m%5D%29%29&time="
        ),
        "{}",
        req.raw_query
    );
    let t = &req.query[1].1;
    let parsed = chrono::DateTime::parse_from_rfc3339(t).expect("time is RFC 3339");
    assert!(
        t.ends_with('Z') && !t.contains('.'),
        "second precision UTC like Go: {t}"
    );
    assert!((chrono::Utc::now().timestamp() - parsed.timestamp()).abs() <= 5);
    assert_eq!(req.query[2].1, "team-a");
    assert_eq!(req.query[3].1, "foo");
    assert_eq!(req.query[4].1, "b&r");
    for (h, v) in [
        ("x-client-id", "cid"),
        ("x-tenant-id", "tid"),
        ("x-organization-token", "oid"),
    ] {
        assert_eq!(
            req.headers.get(h).and_then(|v| v.to_str().ok()),
            Some(v),
            "{h}"
        );
    }
    assert!(req.headers.get("authorization").is_none());

    // bearer, basic and custom: exactly the one credential header upstream sends.
    let base = [
        ("serverAddress", server.as_str()),
        ("query", "up"),
        ("threshold", "1"),
    ];
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str, &'a str);
    let cases: &[Case] = &[
        (
            "bearer",
            &[("bearerToken", "t0k")],
            "authorization",
            "Bearer t0k",
        ),
        (
            "basic",
            &[("username", "alice"), ("password", "s3cret")],
            "authorization",
            "Basic YWxpY2U6czNjcmV0",
        ),
        (
            "custom",
            &[
                ("customAuthHeader", "X-Scope-OrgID"),
                ("customAuthValue", "tenant-1"),
            ],
            "x-scope-orgid",
            "tenant-1",
        ),
    ];
    for (mode, auth, header, value) in cases {
        let md: Vec<(&str, &str)> = base.iter().copied().chain([("authModes", *mode)]).collect();
        let s = sample_with(&ctx, &md, auth).await.expect(mode);
        assert_eq!((s.value, s.active), (12.5, true));
        let req = seen.lock().expect("lock").pop().expect("request");
        assert_eq!(
            req.headers.get(*header).and_then(|v| v.to_str().ok()),
            Some(*value),
            "{mode}"
        );
    }
    // A bearer token replaces a custom Authorization header, as Go's Header.Set does.
    let md: Vec<(&str, &str)> = base
        .iter()
        .copied()
        .chain([
            ("authModes", "bearer"),
            ("customHeaders", "Authorization=nope"),
        ])
        .collect();
    sample_with(&ctx, &md, &[("bearerToken", "t0k")])
        .await
        .expect("sample");
    let req = seen.lock().expect("lock").pop().expect("request");
    let auths: Vec<_> = req.headers.get_all("authorization").iter().collect();
    assert_eq!(auths, ["Bearer t0k"]);

    // A wrong path is a transient error carrying the status, as upstream reports it.
    let err = sample_with(
        &ctx,
        &[
            ("serverAddress", &format!("{server}/prefix")),
            ("query", "up"),
            ("threshold", "1"),
        ],
        &[],
    )
    .await
    .unwrap_err();
    assert!(!err.is_permanent());
    assert!(err.to_string().contains("status: 404"), "{err}");

    // An unusable server address is a permanent error at build.
    let err = sample_with(
        &ctx,
        &[
            ("serverAddress", "localhost:9090"),
            ("query", "up"),
            ("threshold", "1"),
        ],
        &[],
    )
    .await
    .unwrap_err();
    assert_eq!(err.field(), Some("serverAddress"), "{err}");
}

#[tokio::test]
async fn mutual_tls_auth_mode() {
    let ca = support::TestCa::new();
    let (server_cert, server_key) = ca.leaf(&["127.0.0.1"]);
    let (client_cert, client_key) = ca.leaf(&["keda-operator"]);
    let app = Router::new().route(
        "/api/v1/query",
        get(|| async {
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"3"]}]}}"#
        }),
    );
    let addr = support::serve_tls(app, 0, &server_cert, &server_key, Some(&ca.pem())).await;
    let server = format!("https://{addr}");
    let md = [
        ("serverAddress", server.as_str()),
        ("query", "up"),
        ("threshold", "1"),
        ("authModes", "tls"),
    ];
    let ctx = BuildContext::default();
    let s = sample_with(
        &ctx,
        &md,
        &[
            ("ca", &ca.pem()),
            ("cert", &client_cert),
            ("key", &client_key),
        ],
    )
    .await
    .expect("mutual TLS sample");
    assert_eq!(s.value, 3.0);
    // Trusting the server but presenting no client certificate: the server refuses the handshake.
    let err = sample_with(
        &ctx,
        &[
            ("serverAddress", &server),
            ("query", "up"),
            ("threshold", "1"),
            ("authModes", "bearer"),
        ],
        &[("ca", &ca.pem()), ("bearerToken", "t")],
    )
    .await
    .unwrap_err();
    assert_eq!(err.category(), "backend", "{err}");
}

#[tokio::test]
async fn unsafe_ssl() {
    // A server whose certificate nothing trusts.
    let ca = support::TestCa::new();
    let (cert, key) = ca.leaf(&["127.0.0.1"]);
    let app = Router::new().route(
        "/api/v1/query",
        get(|| async {
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"5"]}]}}"#
        }),
    );
    let addr = support::serve_tls(app, 0, &cert, &key, None).await;
    let server = format!("https://{addr}");
    let ctx = BuildContext::default();
    let md = |unsafe_ssl: &'static str| {
        vec![
            ("serverAddress", server.clone()),
            ("query", "up".to_owned()),
            ("threshold", "1".to_owned()),
            ("unsafeSsl", unsafe_ssl.to_owned()),
        ]
    };
    let run = |pairs: Vec<(&'static str, String)>| {
        let ctx = &ctx;
        async move {
            let r: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
            sample_with(ctx, &r, &[]).await
        }
    };
    let err = run(md("false")).await.unwrap_err();
    assert_eq!(err.category(), "backend", "{err}");
    let s = run(md("true")).await.expect("unsafeSsl skips verification");
    assert_eq!(s.value, 5.0);
}

/// One poll as the operator runs it, with what it reports besides the value.
async fn report_with(ctx: &BuildContext, md: &[(&str, &str)]) -> SampleReport {
    let config = parse_at(0, md, &[]).expect("parse");
    let scaler = config.build(ctx).await.expect("build");
    sample_with_timeout(&*config, &*scaler, &ctx.timeouts).await
}

/// Upstream counts `keda_scaler_empty_upstream_responses_total` when the result list, or the value list
/// of its one series, is empty: before applying `ignoreNullValues`, so for a 0 and for an error alike.
#[tokio::test]
async fn empty_responses_are_reported() {
    let app = Router::new()
        .route(
            "/empty/api/v1/query",
            get(|| async { r#"{"status":"success","data":{"resultType":"vector","result":[]}}"# }),
        )
        .route(
            "/novalue/api/v1/query",
            get(|| async { r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{}}]}}"# }),
        )
        .route(
            "/nan/api/v1/query",
            get(|| async {
                r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"NaN"]}]}}"#
            }),
        )
        .route(
            "/fine/api/v1/query",
            get(|| async {
                r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"4"]}]}}"#
            }),
        );
    let addr = support::serve_http(app).await;
    let ctx = BuildContext::default();
    let empty = |ignore_null_values| Some(EmptyUpstreamResponse { ignore_null_values });
    for path in ["empty", "novalue"] {
        let server = format!("http://{addr}/{path}");
        for ignore in [true, false] {
            let md = [
                ("serverAddress", server.as_str()),
                ("query", "up"),
                ("threshold", "1"),
                ("ignoreNullValues", if ignore { "true" } else { "false" }),
            ];
            let report = report_with(&ctx, &md).await;
            match &report.result {
                Ok(s) => assert!(ignore && s.value == 0.0, "{path}: {s:?}"),
                Err(e) => assert!(!ignore && e.to_string().contains("is empty"), "{path}: {e}"),
            }
            assert_eq!(report.empty_upstream_response, empty(ignore), "{path}");
        }
    }
    for (path, value) in [("nan", 0.0), ("fine", 4.0)] {
        let server = format!("http://{addr}/{path}");
        let md = [
            ("serverAddress", server.as_str()),
            ("query", "up"),
            ("threshold", "1"),
        ];
        let report = report_with(&ctx, &md).await;
        assert_eq!(report.result.expect(path).value, value);
        assert_eq!(report.empty_upstream_response, None, "{path}");
    }
    // A failed request is not an empty response.
    let md = [
        ("serverAddress", "http://127.0.0.1:1"),
        ("query", "up"),
        ("threshold", "1"),
    ];
    let report = report_with(&ctx, &md).await;
    assert!(report.result.is_err());
    assert_eq!(report.empty_upstream_response, None);
}

/// An exporter on loopback for the real Prometheus to scrape.
async fn exporter() -> std::net::SocketAddr {
    let app = Router::new().route(
        "/metrics",
        get(|| async {
            "# TYPE queue_depth gauge\nqueue_depth{queue=\"orders\"} 42\nqueue_depth{queue=\"billing\"} 7\n"
        }),
    );
    support::serve_http(app).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_prometheus() {
    let target = exporter().await;
    let mut prometheus = support::start_prometheus(&[target]);
    let server = format!("http://{}", prometheus.addr);
    let ctx = BuildContext::default();
    let md = |query: &'static str, extra: &[(&'static str, &'static str)]| {
        let mut v: Vec<(String, String)> = vec![
            ("serverAddress".into(), server.clone()),
            ("query".into(), query.into()),
            ("threshold".into(), "10".into()),
        ];
        v.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        v
    };
    let run = |pairs: Vec<(String, String)>| {
        let ctx = &ctx;
        async move {
            let refs: Vec<(&str, &str)> = pairs
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            sample_with(ctx, &refs, &[]).await
        }
    };

    // Wait for the first scrapes to land.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let s = run(md("queue_depth{queue=\"orders\"}", &[])).await;
        if let Ok(s) = s
            && s.value == 42.0
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus never returned the scraped value: {s:?}\n{}",
            prometheus.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    let s = run(md("queue_depth{queue=\"orders\"}", &[]))
        .await
        .expect("sample");
    assert_eq!((s.value, s.active), (42.0, true));
    let s = run(md(
        "queue_depth{queue=\"orders\"}",
        &[("activationThreshold", "42")],
    ))
    .await
    .expect("sample");
    assert_eq!((s.value, s.active), (42.0, false), "strictly greater-than");
    let s = run(md("sum(queue_depth)", &[])).await.expect("sum");
    assert_eq!(s.value, 49.0);

    // Custom headers, query parameters and namespace do not disturb a plain Prometheus.
    let s = run(md(
        "queue_depth{queue=\"billing\"}",
        &[
            ("customHeaders", "X-Scope-OrgID=team-a"),
            ("queryParameters", "dedup=true"),
            ("namespace", "default"),
        ],
    ))
    .await
    .expect("sample with extras");
    assert_eq!(s.value, 7.0);

    // An empty result: 0 by default, an error with ignoreNullValues false.
    let s = run(md("queue_depth{queue=\"nope\"}", &[]))
        .await
        .expect("empty result");
    assert_eq!((s.value, s.active), (0.0, false));
    let err = run(md(
        "queue_depth{queue=\"nope\"}",
        &[("ignoreNullValues", "false")],
    ))
    .await
    .unwrap_err();
    assert!(err.to_string().contains("the result is empty"), "{err}");
    assert!(!err.is_permanent());
    // Both count as an empty upstream response.
    let pairs = md("queue_depth{queue=\"nope\"}", &[]);
    let refs: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let report = report_with(&ctx, &refs).await;
    assert_eq!(
        report.empty_upstream_response,
        Some(EmptyUpstreamResponse {
            ignore_null_values: true
        })
    );

    // NaN: 0 when ignored, an error otherwise.
    let s = run(md("queue_depth{queue=\"orders\"} / 0 * 0", &[]))
        .await
        .expect("NaN ignored");
    assert_eq!(s.value, 0.0);
    let err = run(md(
        "queue_depth{queue=\"orders\"} / 0 * 0",
        &[("ignoreNullValues", "false")],
    ))
    .await
    .unwrap_err();
    assert!(err.to_string().contains("NaN"), "{err}");

    // Two series: an error.
    let err = run(md("queue_depth", &[])).await.unwrap_err();
    assert!(
        err.to_string().contains("returned multiple elements"),
        "{err}"
    );

    // A PromQL syntax error is answered 400.
    let err = run(md("queue_depth{", &[])).await.unwrap_err();
    assert!(err.to_string().contains("status: 400"), "{err}");

    // Latency of one sample against the local server, with a built scaler (connection reused).
    let pairs = md("queue_depth{queue=\"orders\"}", &[]);
    let refs: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let scaler = parse_at(0, &refs, &[])
        .expect("parse")
        .build(&ctx)
        .await
        .expect("build");
    let mut times = Vec::with_capacity(100);
    for _ in 0..100 {
        let start = Instant::now();
        let s = scaler.sample().await.expect("sample");
        times.push(start.elapsed());
        assert_eq!(s.value, 42.0);
    }
    times.sort();
    println!(
        "prometheus sample latency over 100 samples: median {:?}, p90 {:?}, max {:?}",
        times[50], times[90], times[99]
    );

    // A stopped server is a transient error.
    prometheus.stop();
    let err = scaler.sample().await.unwrap_err();
    assert!(!err.is_permanent(), "{err}");
    assert_eq!(err.category(), "backend");
}
