//! metrics-api against a real HTTP server on loopback: formats, auth modes, activation, errors.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use keda_scalers::{
    BuildContext, MetricSpec, ScalerError, TimeoutDefaults, TriggerInput, build_with_timeout,
    parse_trigger, sample_with_timeout,
};

/// How long `/slow` takes to answer: more than the 3 s `KEDA_HTTP_DEFAULT_TIMEOUT`.
const SLOW_ANSWER: Duration = Duration::from_secs(4);

async fn serve() -> SocketAddr {
    let app = Router::new()
        .route("/json", get(|| async { r#"{"queue":{"depth":42}}"# }))
        .route(
            "/prom",
            get(|| async { "# TYPE jobs gauge\njobs{queue=\"mail\"} 7\njobs{queue=\"sms\"} 0\n" }),
        )
        .route(
            "/key",
            get(|h: HeaderMap| async move {
                if h.get("X-API-KEY").and_then(|v| v.to_str().ok()) == Some("k-123") {
                    (StatusCode::OK, r#"{"v":3}"#)
                } else {
                    (StatusCode::UNAUTHORIZED, "no")
                }
            }),
        )
        .route(
            "/basic",
            get(|h: HeaderMap| async move {
                // "alice:s3cret" in base64.
                if h.get("authorization").and_then(|v| v.to_str().ok())
                    == Some("Basic YWxpY2U6czNjcmV0")
                {
                    (StatusCode::OK, "v: 9\n")
                } else {
                    (StatusCode::UNAUTHORIZED, "no")
                }
            }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(SLOW_ANSWER).await;
                r#"{"queue":{"depth":42}}"#
            }),
        )
        .route(
            "/broken",
            get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "boom") }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

async fn sample(
    md: &[(&str, &str)],
    auth: &[(&str, &str)],
) -> Result<(MetricSpec, keda_scalers::Sample), ScalerError> {
    let md = map(md);
    let auth = map(auth);
    let env = BTreeMap::new();
    let input = TriggerInput {
        index: 0,
        trigger_type: "metrics-api",
        namespace: "default",
        name: None,
        metadata: &md,
        resolved_env: &env,
        auth_params: &auth,
        metric_type: None,
    };
    let config = parse_trigger(&input)?;
    let scaler = config.build(&BuildContext::default()).await?;
    Ok((config.metric_spec(), scaler.sample().await?))
}

#[tokio::test]
async fn formats_auth_and_activation() {
    let addr = serve().await;
    let url = |p: &str| format!("http://{addr}{p}");

    let (spec, s) = sample(
        &[
            ("url", &url("/json")),
            ("valueLocation", "queue.depth"),
            ("targetValue", "10"),
        ],
        &[],
    )
    .await
    .unwrap();
    assert_eq!(spec.metric_name(), "s0-metric-api-queue-depth");
    assert_eq!((s.value, s.active), (42.0, true));

    let (_, s) = sample(
        &[
            ("url", &url("/json")),
            ("valueLocation", "queue.depth"),
            ("targetValue", "10"),
            ("activationTargetValue", "42"),
        ],
        &[],
    )
    .await
    .unwrap();
    assert_eq!(
        (s.value, s.active),
        (42.0, false),
        "activation is strictly greater-than"
    );

    let (_, s) = sample(
        &[
            ("url", &url("/prom")),
            ("format", "prometheus"),
            ("valueLocation", "jobs{queue=\"mail\"}"),
            ("targetValue", "1"),
        ],
        &[],
    )
    .await
    .unwrap();
    assert_eq!(s.value, 7.0);

    let (_, s) = sample(
        &[
            ("url", &url("/key")),
            ("valueLocation", "v"),
            ("targetValue", "1"),
            ("authMode", "apiKey"),
        ],
        &[("apiKey", "k-123")],
    )
    .await
    .unwrap();
    assert_eq!(s.value, 3.0);

    let (_, s) = sample(
        &[
            ("url", &url("/basic")),
            ("format", "yaml"),
            ("valueLocation", "v"),
            ("targetValue", "1"),
            ("authMode", "basic"),
        ],
        &[("username", "alice"), ("password", "s3cret")],
    )
    .await
    .unwrap();
    assert_eq!(s.value, 9.0);
}

#[tokio::test]
async fn backend_failures_are_transient_errors() {
    let addr = serve().await;
    let err = sample(
        &[
            ("url", &format!("http://{addr}/broken")),
            ("valueLocation", "v"),
            ("targetValue", "1"),
        ],
        &[],
    )
    .await
    .unwrap_err();
    assert!(!err.is_permanent(), "{err}");
    assert!(err.to_string().contains("500"), "{err}");

    let err = sample(
        &[
            ("url", &format!("http://{addr}/key")),
            ("valueLocation", "v"),
            ("targetValue", "1"),
            ("authMode", "apiKey"),
        ],
        &[("apiKey", "wrong")],
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("401"), "{err}");

    // Nothing listens on port 1 of loopback.
    let err = sample(
        &[
            ("url", "http://127.0.0.1:1/x"),
            ("valueLocation", "v"),
            ("targetValue", "1"),
        ],
        &[],
    )
    .await
    .unwrap_err();
    assert_eq!(err.category(), "backend");
}

#[tokio::test]
async fn configuration_errors_name_the_field() {
    for (md, field) in [
        (vec![("valueLocation", "v"), ("targetValue", "1")], "url"),
        (
            vec![
                ("url", "ftp://x"),
                ("valueLocation", "v"),
                ("targetValue", "1"),
            ],
            "url",
        ),
        (
            vec![("url", "http://x"), ("targetValue", "1")],
            "valueLocation",
        ),
        (
            vec![("url", "http://x"), ("valueLocation", "v")],
            "targetValue",
        ),
        (
            vec![
                ("url", "http://x"),
                ("valueLocation", "v"),
                ("targetValue", "ten"),
            ],
            "targetValue",
        ),
        (
            vec![
                ("url", "http://x"),
                ("valueLocation", "v"),
                ("targetValue", "1"),
                ("format", "csv"),
            ],
            "format",
        ),
        (
            vec![
                ("url", "http://x"),
                ("valueLocation", "v"),
                ("targetValue", "1"),
                ("authMode", "apiKey"),
            ],
            "apiKey",
        ),
        (
            vec![
                ("url", "http://x"),
                ("valueLocation", "v"),
                ("targetValue", "1"),
                ("authModes", "basic,bearer"),
            ],
            "authModes",
        ),
    ] {
        let err = sample(&md, &[]).await.unwrap_err();
        assert_eq!(err.field(), Some(field), "{md:?}: {err}");
        assert!(err.is_permanent());
    }
}

/// One poll the way the operator runs it: build and sample within the trigger's bounds, with the
/// operator's `KEDA_HTTP_DEFAULT_TIMEOUT` in `ctx`.
async fn poll(ctx: &BuildContext, md: &[(&str, &str)]) -> Result<f64, ScalerError> {
    let md = map(md);
    let env = BTreeMap::new();
    let config = parse_trigger(&TriggerInput {
        index: 0,
        trigger_type: "metrics-api",
        namespace: "default",
        name: None,
        metadata: &md,
        resolved_env: &env,
        auth_params: &env,
        metric_type: None,
    })?;
    let scaler = build_with_timeout(&*config, ctx).await?;
    let report = sample_with_timeout(&*config, &*scaler, &ctx.timeouts).await;
    assert_eq!(report.empty_upstream_response, None);
    report.result.map(|s| s.value)
}

#[tokio::test]
async fn the_triggers_timeout_outlasts_the_operator_default() {
    let addr = serve().await;
    let url = format!("http://{addr}/slow");
    let ctx = BuildContext::default();
    assert_eq!(ctx.timeouts, TimeoutDefaults::default());
    let md = |timeout: Option<&'static str>| {
        let mut md = vec![
            ("url", url.as_str()),
            ("valueLocation", "queue.depth"),
            ("targetValue", "10"),
        ];
        md.extend(timeout.map(|t| ("timeout", t)));
        md
    };
    // With a 5 s operator default, a trigger without a timeout waits for the answer.
    let patient_ctx = BuildContext {
        timeouts: TimeoutDefaults::from_http_millis(5000),
        ..Default::default()
    };
    let (with_timeout, without) = (md(Some("6000")), md(None));
    let started = Instant::now();
    let (patient, hasty, by_default) = tokio::join!(
        poll(&ctx, &with_timeout),
        async {
            let r = poll(&ctx, &without).await;
            (r, started.elapsed())
        },
        poll(&patient_ctx, &without),
    );
    assert_eq!(
        patient.expect("timeout 6000 waits for the 4 s answer"),
        42.0
    );
    let (hasty, hasty_took) = hasty;
    let err = hasty.expect_err("the 3 s default gives up before the 4 s answer");
    assert_eq!(err.category(), "backend", "{err}");
    assert!(hasty_took < SLOW_ANSWER, "gave up after {hasty_took:?}");
    assert_eq!(by_default.expect("5 s default"), 42.0);
}
