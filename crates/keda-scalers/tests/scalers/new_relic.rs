//! new-relic: upstream's parse table, and the scaler against a NerdGraph stand-in served over TLS on
//! loopback, reached through the real endpoint names (api.newrelic.com, api.eu.newrelic.com) pinned to
//! 127.0.0.1 with a test CA.
#![cfg(feature = "new-relic")]

use crate::support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use keda_scalers::http::{ClientOverrides, HttpClients};
use keda_scalers::{BuildContext, MetricSpec, Sample, ScalerError, TriggerInput, parse_trigger};
use serde_json::{Value, json};

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
        trigger_type: "new-relic",
        namespace: "default",
        name: None,
        metadata: &md,
        resolved_env: &env,
        auth_params: &auth,
        metric_type: None,
    })
}

const NRQL: &str =
    "SELECT average(cpuUsedCores) as result FROM K8sContainerSample WHERE containerName='coredns'";

// Upstream's testNewRelicMetadata: (metadata, auth params, field named by the error).
#[allow(clippy::type_complexity)]
const PARSE_TABLE: &[(&[(&str, &str)], &[(&str, &str)], Option<&str>)] = &[
    (&[], &[], Some("account")),
    (
        &[
            ("account", "0"),
            ("threshold", "100"),
            ("queryKey", "somekey"),
            ("nrql", NRQL),
        ],
        &[],
        None,
    ),
    (
        &[
            ("account", "0"),
            ("region", "EU"),
            ("threshold", "100"),
            ("activationThreshold", "20"),
            ("queryKey", "somekey"),
            ("nrql", NRQL),
        ],
        &[],
        None,
    ),
    (
        &[
            ("region", "EU"),
            ("threshold", "100"),
            ("queryKey", "somekey"),
            ("nrql", NRQL),
        ],
        &[("account", "0")],
        None,
    ),
    (
        &[
            ("account", "0"),
            ("threshold", "100"),
            ("queryKey", "somekey"),
            ("nrql", NRQL),
        ],
        &[("region", "EU")],
        None,
    ),
    (
        &[
            ("account", "ABC"),
            ("threshold", "100"),
            ("queryKey", "somekey"),
            ("nrql", NRQL),
        ],
        &[],
        Some("account"),
    ),
    (
        &[
            ("threshold", "100"),
            ("queryKey", "somekey"),
            ("nrql", NRQL),
        ],
        &[],
        Some("account"),
    ),
    (
        &[
            ("account", "0"),
            ("threshold", "one"),
            ("queryKey", "somekey"),
            ("nrql", NRQL),
        ],
        &[],
        Some("threshold"),
    ),
    (
        &[
            ("account", "0"),
            ("threshold", "100"),
            ("activationThreshold", "notanint"),
            ("queryKey", "somekey"),
            ("nrql", NRQL),
        ],
        &[],
        Some("activationThreshold"),
    ),
    (
        &[("account", "0"), ("queryKey", "somekey"), ("nrql", NRQL)],
        &[],
        Some("threshold"),
    ),
    (
        &[
            ("account", "0"),
            ("threshold", "100"),
            ("queryKey", "somekey"),
        ],
        &[],
        Some("nrql"),
    ),
    (
        &[
            ("account", "0"),
            ("threshold", "100"),
            ("queryKey", "somekey"),
            ("noDataError", "invalid"),
            ("nrql", NRQL),
        ],
        &[],
        Some("noDataError"),
    ),
    (
        &[
            ("account", "0"),
            ("threshold", "100"),
            ("queryKey", "somekey"),
            ("noDataError", "true"),
            ("nrql", NRQL),
        ],
        &[],
        None,
    ),
    (
        &[
            ("account", "0"),
            ("threshold", "100"),
            ("queryKey", "somekey"),
            ("noDataError", "false"),
            ("nrql", NRQL),
        ],
        &[],
        None,
    ),
    (
        &[
            ("account", "0"),
            ("threshold", "100"),
            ("queryKey", "somekey"),
            ("noDataError", "0"),
            ("nrql", NRQL),
        ],
        &[],
        None,
    ),
    (
        &[
            ("account", "0"),
            ("threshold", "100"),
            ("queryKey", "somekey"),
            ("noDataError", "1"),
            ("nrql", NRQL),
        ],
        &[],
        None,
    ),
    // Not in upstream's table: the key is required too.
    (
        &[("account", "0"), ("threshold", "100"), ("nrql", NRQL)],
        &[],
        Some("queryKey"),
    ),
];

#[test]
fn parse_table_like_upstream() {
    for (i, (md, auth, want_err)) in PARSE_TABLE.iter().enumerate() {
        match (parse_at(0, md, auth), want_err) {
            (Ok(_), None) => {}
            (Err(e), Some(field)) => assert_eq!(e.field(), Some(*field), "case {i}: {e}"),
            (Ok(_), Some(field)) => panic!("case {i}: expected an error about {field}"),
            (Err(e), None) => panic!("case {i}: unexpected error {e}"),
        }
    }
}

#[test]
fn metric_names_like_upstream() {
    for (index, name) in [(0, "s0-new-relic"), (1, "s1-new-relic")] {
        let spec = parse_at(index, PARSE_TABLE[1].0, PARSE_TABLE[1].1)
            .expect("parses")
            .metric_spec();
        assert_eq!(spec.metric_name(), name);
    }
}

#[test]
fn auth_params_win_over_metadata() {
    // Upstream reads account, region and queryKey from the TriggerAuthentication first.
    let cfg = keda_scalers::observability::new_relic::parse_config(&TriggerInput {
        index: 0,
        trigger_type: "new-relic",
        namespace: "default",
        name: None,
        metadata: &map(&[
            ("account", "1"),
            ("queryKey", "md-key"),
            ("region", "US"),
            ("threshold", "1"),
            ("nrql", NRQL),
        ]),
        resolved_env: &BTreeMap::new(),
        auth_params: &map(&[("account", "2"), ("queryKey", "auth-key"), ("region", "EU")]),
        metric_type: None,
    })
    .expect("parses");
    assert_eq!(
        (cfg.account, cfg.query_key.as_str(), cfg.region.as_str()),
        (2, "auth-key", "EU")
    );
}

const ACCOUNT: i64 = 1234567;
const KEY: &str = "NRAK-TESTKEY0123456789";
const SEED_NRQL: &str = "SELECT rate(count(*), 10 SECOND) FROM Transaction WHERE appName='dev-example-app' SINCE 1 MINUTE AGO";

/// A NerdGraph stand-in. It checks every request as New Relic documents NerdGraph calls (POST /graphql,
/// `API-Key`, JSON body with a GraphQL document and its variables) and answers by NRQL text.
async fn nerdgraph(
    ca: &support::TestCa,
) -> (BuildContext, Arc<Mutex<Vec<String>>>, std::net::SocketAddr) {
    let hosts: Arc<Mutex<Vec<String>>> = Arc::default();
    let log = hosts.clone();
    let app = Router::new().route(
        "/graphql",
        post(move |headers: HeaderMap, body: String| {
            let log = log.clone();
            async move {
                let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
                log.lock().expect("lock").push(h("host"));
                if h("api-key") != KEY {
                    return (
                        StatusCode::UNAUTHORIZED,
                        json!({"errors": [{"message": "Invalid API key", "extensions": {"errorClass": "UNAUTHORIZED", "error_code": "BAD_API_KEY"}}]}).to_string(),
                    );
                }
                if h("content-type") != "application/json" {
                    return (StatusCode::UNSUPPORTED_MEDIA_TYPE, "content-type must be application/json".into());
                }
                let doc: Value = match serde_json::from_str(&body) {
                    Ok(v) => v,
                    Err(e) => return (StatusCode::BAD_REQUEST, format!("body is not JSON: {e}")),
                };
                let Some(obj) = doc.as_object() else {
                    return (StatusCode::BAD_REQUEST, "body must be an object".into());
                };
                let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
                keys.sort();
                let query: String = doc["query"].as_str().unwrap_or("").split_whitespace().collect();
                let well_formed = keys == ["query", "variables"]
                    && query.starts_with("query(")
                    && query.contains("$accountId:Int!")
                    && query.contains("$query:Nrql!")
                    && query.contains("{actor{account(id:$accountId){nrql(query:$query){")
                    && query.contains("results")
                    && doc["variables"]["accountId"].as_i64() == Some(ACCOUNT)
                    && doc["variables"]["accountId"].is_i64();
                if !well_formed {
                    return (StatusCode::BAD_REQUEST, format!("unexpected GraphQL request {doc}"));
                }
                let results = match doc["variables"]["query"].as_str().unwrap_or("") {
                    SEED_NRQL => json!([{"rate": 85.5}]),
                    "SELECT count(*) FROM Empty" => json!([]),
                    "SELECT count(*) FROM Facets FACET appName" => {
                        json!([{"facet": "orders", "appName": "orders", "count": 12}, {"facet": "mail", "count": 3}])
                    }
                    "SELECT latest(name) FROM Strings" => json!([{"latest.name": "x"}]),
                    other => {
                        return (
                            StatusCode::OK,
                            json!({
                                "data": {"actor": {"account": {"nrql": null}}},
                                "errors": [{"message": format!("NRQL Syntax Error: Error at line 1 position 1, unexpected '{other}'"), "path": ["actor", "account", "nrql"]}]
                            })
                            .to_string(),
                        );
                    }
                };
                (
                    StatusCode::OK,
                    json!({"data": {"actor": {"account": {"nrql": {"results": results}}}}}).to_string(),
                )
            }
        }),
    );
    let (cert, key) = ca.leaf(&["api.newrelic.com", "api.eu.newrelic.com"]);
    let addr = support::serve_tls(app, 0, &cert, &key, None).await;
    let overrides = ClientOverrides {
        resolve: vec![
            ("api.newrelic.com".into(), addr),
            ("api.eu.newrelic.com".into(), addr),
        ],
        extra_roots: vec![ca.pem()],
    };
    (context(HttpClients::with_overrides(overrides)), hosts, addr)
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
    parse_at(0, md, auth)?.build(ctx).await?.sample().await
}

#[tokio::test]
async fn nerdgraph_stand_in() {
    let ca = support::TestCa::new();
    let (ctx, hosts, addr) = nerdgraph(&ca).await;
    let account = ACCOUNT.to_string();

    // The seed guide's trigger: noDataError 'true', its NRQL, threshold '70'; queryKey, account and
    // region from the TriggerAuthentication.
    let seed_md = [
        ("noDataError", "true"),
        ("nrql", SEED_NRQL),
        ("threshold", "70"),
    ];
    let config = parse_at(
        0,
        &seed_md,
        &[("queryKey", KEY), ("account", &account), ("region", "EU")],
    )
    .expect("seed trigger parses");
    let MetricSpec::External {
        metric_name,
        target,
        ..
    } = config.metric_spec()
    else {
        panic!("external metric expected")
    };
    assert_eq!((metric_name.as_str(), target), ("s0-new-relic", 70.0));
    let s = config
        .build(&ctx)
        .await
        .expect("build")
        .sample()
        .await
        .expect("sample");
    assert_eq!((s.value, s.active), (85.5, true));
    assert_eq!(
        hosts.lock().expect("lock").pop().as_deref(),
        Some("api.eu.newrelic.com")
    );

    // Default region US, activation strictly greater-than.
    let base = |nrql: &'static str| {
        vec![
            ("account", account.as_str()),
            ("nrql", nrql),
            ("threshold", "70"),
        ]
    };
    let mut md = base(SEED_NRQL);
    md.push(("activationThreshold", "85.5"));
    let s = sample(&ctx, &md, &[("queryKey", KEY)])
        .await
        .expect("sample");
    assert_eq!((s.value, s.active), (85.5, false));
    assert_eq!(
        hosts.lock().expect("lock").pop().as_deref(),
        Some("api.newrelic.com")
    );

    // The first numeric field of the first row.
    let s = sample(
        &ctx,
        &base("SELECT count(*) FROM Facets FACET appName"),
        &[("queryKey", KEY)],
    )
    .await
    .expect("facets");
    assert_eq!(s.value, 12.0);

    // No rows: 0, or an error with noDataError.
    let s = sample(
        &ctx,
        &base("SELECT count(*) FROM Empty"),
        &[("queryKey", KEY)],
    )
    .await
    .expect("empty");
    assert_eq!((s.value, s.active), (0.0, false));
    let mut md = base("SELECT count(*) FROM Empty");
    md.push(("noDataError", "true"));
    let err = sample(&ctx, &md, &[("queryKey", KEY)]).await.unwrap_err();
    assert!(
        err.to_string().contains("query returned no results"),
        "{err}"
    );
    assert!(!err.is_permanent());

    // A row without numbers: likewise.
    let s = sample(
        &ctx,
        &base("SELECT latest(name) FROM Strings"),
        &[("queryKey", KEY)],
    )
    .await
    .expect("strings");
    assert_eq!(s.value, 0.0);
    let mut md = base("SELECT latest(name) FROM Strings");
    md.push(("noDataError", "true"));
    let err = sample(&ctx, &md, &[("queryKey", KEY)]).await.unwrap_err();
    assert!(err.to_string().contains("no numeric results"), "{err}");

    // GraphQL errors and a bad key are transient errors carrying New Relic's message.
    let err = sample(&ctx, &base("SELEKT nonsense"), &[("queryKey", KEY)])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("NRQL Syntax Error"), "{err}");
    assert_eq!(err.category(), "backend");
    let err = sample(&ctx, &base(SEED_NRQL), &[("queryKey", "wrong")])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("Invalid API key"), "{err}");

    // Without the test CA, the stand-in's certificate is not trusted.
    let untrusted = context(HttpClients::with_overrides(ClientOverrides {
        resolve: vec![("api.newrelic.com".into(), addr)],
        extra_roots: vec![],
    }));
    let before = hosts.lock().expect("lock").len();
    let err = sample(&untrusted, &base(SEED_NRQL), &[("queryKey", KEY)])
        .await
        .unwrap_err();
    assert_eq!(err.category(), "backend", "{err}");
    assert_eq!(
        hosts.lock().expect("lock").len(),
        before,
        "no request got through"
    );
}
