//! The conformance checks that need a backend, run over every HTTP-based scaler against one loopback
//! HTTPS stand-in that answers whatever the test sets (the parse-level checks every scaler passes are in
//! `compliance.rs`):
//!
//! * a failed, empty or malformed answer (HTTP 500, an empty body, text that is not JSON, an HTML error
//!   page with status 200) is an error that counts towards fallback, never a panic and never a silent 0;
//! * activation is strict: a value equal to the activation threshold is inactive, above it active;
//! * every registered type is placed: HTTP scalers here, the others (drivers with their own real-backend
//!   tests) named in [`NOT_HTTP`], so a new scaler cannot skip this file unnoticed.

use crate::support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::http::StatusCode;
use keda_scalers::http::{ClientOverrides, HttpClients};
use keda_scalers::{BuildContext, ScalerError, TriggerInput, parse_trigger, registered_types};
use serde_json::json;

/// Trigger types served by drivers rather than HTTP; each has a real-backend test of its own.
const NOT_HTTP: &[&str] = &[
    "cpu",
    "memory",
    "cron",
    "external",
    "external-push",
    "kubernetes-workload",
    "kubernetes-resource",
    "redis",
    "redis-cluster",
    "redis-sentinel",
    "redis-streams",
    "redis-cluster-streams",
    "redis-sentinel-streams",
    "postgresql",
    "mysql",
    "kafka",
    "apache-kafka",
    "beanstalkd",
    // HTTP, but a queue size is a whole number, which the activation check here (5.5) cannot give:
    // its answers are checked in messaging::activemq's unit tests and against a real broker
    // (tests/scalers/activemq.rs).
    "activemq",
    // The same (a message count); tests/scalers/artemis_queue.rs.
    "artemis-queue",
    // HTTP, but its lag is a whole number, which the activation check here (5.5) cannot give: its
    // stand-in checks (errors, empty and malformed answers) are in tests/scalers/nats_jetstream.rs.
    "nats-jetstream",
    // HTTP, but a depth is a whole number (the 5.5 activation check cannot give one) and a poll asks
    // nsqlookupd for the nsqd nodes before asking each of them, which one stand-in answering one body
    // cannot play: its answers are checked in messaging::nsq's unit tests and against real nsqlookupd and
    // nsqd (tests/scalers/nsq.rs).
    "nsq",
    "etcd",
];

/// One HTTP scaler: a trigger aimed at the stand-in, its activation parameter, and a well-formed answer
/// carrying a value.
struct HttpScaler {
    trigger_type: &'static str,
    metadata: Vec<(&'static str, &'static str)>,
    auth: Vec<(&'static str, &'static str)>,
    activation_key: &'static str,
    answer: fn(f64) -> String,
}

fn http_scalers() -> Vec<HttpScaler> {
    vec![
        // MessageRate: the publish rate is a float, and activity is the rate or the queue length
        // (0 here) above the threshold.
        HttpScaler {
            trigger_type: "rabbitmq",
            metadata: vec![
                ("host", "https://backend.test"),
                ("queueName", "orders"),
                ("mode", "MessageRate"),
                ("value", "10"),
            ],
            auth: vec![],
            activation_key: "activationValue",
            answer: |v| {
                json!({"name": "orders", "messages": 0,
                    "message_stats": {"publish_details": {"rate": v}}})
                .to_string()
            },
        },
        HttpScaler {
            trigger_type: "metrics-api",
            metadata: vec![
                ("url", "https://backend.test/metric"),
                ("valueLocation", "v"),
                ("targetValue", "10"),
            ],
            auth: vec![],
            activation_key: "activationTargetValue",
            answer: |v| json!({ "v": v }).to_string(),
        },
        HttpScaler {
            trigger_type: "prometheus",
            metadata: vec![
                ("serverAddress", "https://backend.test"),
                ("query", "sum(queue_depth)"),
                ("threshold", "10"),
            ],
            auth: vec![],
            activation_key: "activationThreshold",
            answer: |v| {
                json!({"status": "success", "data": {"resultType": "vector",
                    "result": [{"metric": {}, "value": [1_700_000_000.0, v.to_string()]}]}})
                .to_string()
            },
        },
        HttpScaler {
            trigger_type: "new-relic",
            metadata: vec![
                ("nrql", "SELECT count(*) FROM Transaction"),
                ("threshold", "10"),
            ],
            auth: vec![("queryKey", "NRAK-conformance"), ("account", "1234567")],
            activation_key: "activationThreshold",
            answer: |v| {
                json!({"data": {"actor": {"account": {"nrql": {"results": [{"count": v}]}}}}})
                    .to_string()
            },
        },
        HttpScaler {
            trigger_type: "datadog",
            metadata: vec![("query", "avg:queue.depth{*}"), ("queryValue", "10")],
            auth: vec![("apiKey", "dd-api"), ("appKey", "dd-app")],
            activation_key: "activationQueryValue",
            answer: |v| {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_millis() as f64)
                    .unwrap_or_default();
                json!({"status": "ok", "res_type": "time_series", "series": [{
                    "expression": "avg:queue.depth{*}", "metric": "queue.depth",
                    "pointlist": [[now - 10_000.0, v]], "length": 1}]})
                .to_string()
            },
        },
    ]
}

/// What the stand-in answers next: status and body (always `content-type: application/json`, as a
/// misbehaving proxy would claim too).
type Answer = Arc<Mutex<(StatusCode, String)>>;

/// One HTTPS stand-in for every host the HTTP scalers use, and a context whose clients reach it.
async fn stand_in() -> (BuildContext, Answer) {
    let ca = support::TestCa::new();
    let answer: Answer = Arc::new(Mutex::new((StatusCode::OK, String::new())));
    let current = answer.clone();
    let app = Router::new().fallback(move || {
        let current = current.clone();
        async move {
            let (status, body) = current.lock().expect("lock").clone();
            (status, [("content-type", "application/json")], body)
        }
    });
    let hosts = ["backend.test", "api.newrelic.com", "api.datadoghq.com"];
    let (cert, key) = ca.leaf(&hosts);
    let addr = support::serve_tls(app, 0, &cert, &key, None).await;
    let overrides = ClientOverrides {
        resolve: hosts.iter().map(|h| (h.to_string(), addr)).collect(),
        extra_roots: vec![ca.pem()],
    };
    let ctx = BuildContext {
        http: HttpClients::with_overrides(overrides),
        ..Default::default()
    };
    (ctx, answer)
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

async fn sample(
    ctx: &BuildContext,
    scaler: &HttpScaler,
    extra: &[(&str, &str)],
) -> Result<keda_scalers::Sample, ScalerError> {
    let mut metadata = map(&scaler.metadata);
    metadata.extend(map(extra));
    let auth = map(&scaler.auth);
    let env = BTreeMap::new();
    let input = TriggerInput {
        index: 0,
        trigger_type: scaler.trigger_type,
        namespace: "default",
        name: None,
        metadata: &metadata,
        resolved_env: &env,
        auth_params: &auth,
        metric_type: None,
    };
    let config = parse_trigger(&input)
        .unwrap_or_else(|e| panic!("{}: trigger rejected: {e}", scaler.trigger_type));
    config.build(ctx).await?.sample().await
}

#[test]
fn every_registered_type_is_placed() {
    let http: Vec<&str> = http_scalers().iter().map(|s| s.trigger_type).collect();
    for ty in registered_types() {
        assert!(
            http.contains(&ty) != NOT_HTTP.contains(&ty),
            "{ty}: add it to http_scalers() (an HTTP scaler) or NOT_HTTP (a driver with its own real-backend test)"
        );
    }
}

#[tokio::test]
async fn failed_empty_and_malformed_answers_are_errors() {
    let (ctx, answer) = stand_in().await;
    let bad = [
        (StatusCode::INTERNAL_SERVER_ERROR, "backend exploded"),
        (StatusCode::OK, ""),
        (StatusCode::OK, "not json {"),
        (
            StatusCode::OK,
            "<html><body><h1>502 Bad Gateway</h1></body></html>",
        ),
    ];
    for scaler in http_scalers() {
        // The stand-in and the trigger work: a well-formed answer is read.
        *answer.lock().expect("lock") = (StatusCode::OK, (scaler.answer)(3.0));
        let got = sample(&ctx, &scaler, &[]).await;
        assert_eq!(
            got.as_ref().map(|s| s.value).ok(),
            Some(3.0),
            "{}: {got:?}",
            scaler.trigger_type
        );
        for (status, body) in bad {
            *answer.lock().expect("lock") = (status, body.to_owned());
            match sample(&ctx, &scaler, &[]).await {
                Ok(s) => panic!(
                    "{}: answer {status} {body:?} gave {s:?} instead of an error",
                    scaler.trigger_type
                ),
                Err(e) => assert!(
                    !e.is_permanent(),
                    "{}: a bad answer must count towards fallback (transient), got a permanent error: {e}",
                    scaler.trigger_type
                ),
            }
        }
    }
}

#[tokio::test]
async fn activation_is_strictly_above_the_threshold() {
    let (ctx, answer) = stand_in().await;
    for scaler in http_scalers() {
        for (value, active) in [(4.0, false), (5.0, false), (5.5, true)] {
            *answer.lock().expect("lock") = (StatusCode::OK, (scaler.answer)(value));
            let got = sample(&ctx, &scaler, &[(scaler.activation_key, "5")])
                .await
                .unwrap_or_else(|e| panic!("{}: {e}", scaler.trigger_type));
            assert_eq!(
                (got.value, got.active),
                (value, active),
                "{}: value {value} with {}=5",
                scaler.trigger_type,
                scaler.activation_key
            );
        }
    }
}
