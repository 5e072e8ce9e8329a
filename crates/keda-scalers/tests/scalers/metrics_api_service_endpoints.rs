//! metrics-api with `aggregateFromKubeServiceEndpoints`: real HTTP servers on several loopback addresses
//! sharing one port (as the pods behind a Service share a target port), listed as the Service's
//! EndpointSlices by a test [`ServiceEndpoints`]. Every `aggregationType`, not-ready and duplicate
//! addresses, failing and slow endpoints, no endpoints, a failing listing, and the limit of requests in
//! flight.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use keda_scalers::generic::metrics_api::MAX_CONCURRENT_REQUESTS;
use keda_scalers::service_endpoints::{Endpoint, EndpointSlice, ServiceEndpoints};
use keda_scalers::{
    BuildContext, Sample, ScalerError, TriggerInput, build_with_timeout, parse_trigger,
    sample_with_timeout,
};
use tokio::net::TcpListener;

/// What one endpoint's server does on `GET /stats`.
#[derive(Clone)]
enum Behaviour {
    /// `{"queue":{"depth":<n>}}`.
    Value(f64),
    /// HTTP 500.
    Fails,
    /// Answers `{"queue":{"depth":1}}` after this long.
    Slow(Duration),
    /// Answers `{"queue":{"depth":1}}` after this long, counting requests in flight.
    Counted(Duration, Arc<InFlight>),
}

#[derive(Default)]
struct InFlight {
    now: AtomicUsize,
    max: AtomicUsize,
}

/// Binds one listener per address `127.0.0.<n>` for `hosts`, all on the same port; returns the port.
async fn bind_same_port(hosts: &[u8]) -> (u16, Vec<TcpListener>) {
    'attempt: for _ in 0..50 {
        let first = TcpListener::bind((Ipv4Addr::new(127, 0, 0, hosts[0]), 0))
            .await
            .expect("bind loopback");
        let port = first.local_addr().expect("local addr").port();
        let mut listeners = vec![first];
        for &h in &hosts[1..] {
            match TcpListener::bind((Ipv4Addr::new(127, 0, 0, h), port)).await {
                Ok(l) => listeners.push(l),
                Err(_) => continue 'attempt,
            }
        }
        return (port, listeners);
    }
    panic!("no port free on all of 127.0.0.{hosts:?}");
}

/// Serves each `(host, behaviour)` on `127.0.0.<host>:<port>`; returns the port.
async fn serve(endpoints: &[(u8, Behaviour)]) -> u16 {
    let hosts: Vec<u8> = endpoints.iter().map(|(h, _)| *h).collect();
    let (port, listeners) = bind_same_port(&hosts).await;
    for (listener, (_, behaviour)) in listeners.into_iter().zip(endpoints) {
        let behaviour = behaviour.clone();
        let app = Router::new().route(
            "/stats",
            get(move || {
                let behaviour = behaviour.clone();
                async move {
                    match behaviour {
                        Behaviour::Value(v) => {
                            (StatusCode::OK, format!(r#"{{"queue":{{"depth":{v}}}}}"#))
                        }
                        Behaviour::Fails => (StatusCode::INTERNAL_SERVER_ERROR, "boom".to_owned()),
                        Behaviour::Slow(d) => {
                            tokio::time::sleep(d).await;
                            (StatusCode::OK, r#"{"queue":{"depth":1}}"#.to_owned())
                        }
                        Behaviour::Counted(d, counter) => {
                            let now = counter.now.fetch_add(1, Ordering::SeqCst) + 1;
                            counter.max.fetch_max(now, Ordering::SeqCst);
                            tokio::time::sleep(d).await;
                            counter.now.fetch_sub(1, Ordering::SeqCst);
                            (StatusCode::OK, r#"{"queue":{"depth":1}}"#.to_owned())
                        }
                    }
                }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
    }
    port
}

fn ip(host: u8) -> String {
    IpAddr::from(Ipv4Addr::new(127, 0, 0, host)).to_string()
}

fn endpoint(hosts: &[u8], ready: Option<bool>) -> Endpoint {
    Endpoint {
        addresses: hosts.iter().map(|h| ip(*h)).collect(),
        ready,
    }
}

/// The Service `apps/metrics` with `slices`; any other Service has none. Records what was asked.
struct TestService {
    slices: Result<Vec<EndpointSlice>, String>,
    asked: Mutex<Vec<(String, String)>>,
}

impl TestService {
    fn new(slices: Vec<EndpointSlice>) -> Arc<TestService> {
        Arc::new(TestService {
            slices: Ok(slices),
            asked: Mutex::default(),
        })
    }
}

#[async_trait::async_trait]
impl ServiceEndpoints for TestService {
    async fn endpoint_slices(
        &self,
        namespace: &str,
        service: &str,
    ) -> Result<Vec<EndpointSlice>, String> {
        if let Ok(mut asked) = self.asked.lock() {
            asked.push((namespace.to_owned(), service.to_owned()));
        }
        if (namespace, service) == ("apps", "metrics") {
            self.slices.clone()
        } else {
            Ok(Vec::new())
        }
    }
}

async fn sample(
    source: Arc<TestService>,
    port: u16,
    md: &[(&str, &str)],
) -> Result<Sample, ScalerError> {
    let url = format!("http://metrics.apps.svc.cluster.local:{port}/stats");
    let mut all: BTreeMap<String, String> = [
        ("url", url.as_str()),
        ("valueLocation", "queue.depth"),
        ("targetValue", "10"),
        ("activationTargetValue", "50"),
        ("aggregateFromKubeServiceEndpoints", "true"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (k, v) in md {
        all.insert(k.to_string(), v.to_string());
    }
    let empty = BTreeMap::new();
    let input = TriggerInput {
        index: 0,
        trigger_type: "metrics-api",
        namespace: "default",
        name: None,
        metadata: &all,
        resolved_env: &empty,
        auth_params: &empty,
        metric_type: None,
    };
    let config = parse_trigger(&input)?;
    let ctx = BuildContext {
        service_endpoints: Some(source),
        ..Default::default()
    };
    let scaler = build_with_timeout(&*config, &ctx).await?;
    sample_with_timeout(&*config, &*scaler, &ctx.timeouts)
        .await
        .result
}

/// Three ready endpoints (10, 20, 60) and a not-ready one that would answer 1000, in a slice that lists
/// another port too; then `extra_ready`; then a second slice with the first address again, and no ports.
fn slices(port: u16, extra_ready: &[u8]) -> Vec<EndpointSlice> {
    let mut endpoints = vec![
        endpoint(&[1], Some(true)),
        endpoint(&[2], None),
        endpoint(&[3], Some(true)),
        endpoint(&[4], Some(false)),
    ];
    endpoints.extend(extra_ready.iter().map(|h| endpoint(&[*h], Some(true))));
    vec![
        EndpointSlice {
            ports: vec![Some(1), Some(i32::from(port))],
            endpoints,
        },
        EndpointSlice {
            ports: Vec::new(),
            endpoints: vec![endpoint(&[1], Some(true))],
        },
    ]
}

#[tokio::test]
async fn every_aggregation_type_over_the_ready_endpoints() {
    let port = serve(&[
        (1, Behaviour::Value(10.0)),
        (2, Behaviour::Value(20.0)),
        (3, Behaviour::Value(60.0)),
        (4, Behaviour::Value(1000.0)),
    ])
    .await;
    let slices = slices(port, &[]);
    for (aggregation, value, active) in [
        (None, 30.0, false),
        (Some("average"), 30.0, false),
        (Some("sum"), 90.0, true),
        (Some("max"), 60.0, true),
        (Some("min"), 10.0, false),
    ] {
        let source = TestService::new(slices.clone());
        let md: Vec<(&str, &str)> = aggregation
            .map(|a| ("aggregationType", a))
            .into_iter()
            .collect();
        let s = sample(source.clone(), port, &md)
            .await
            .unwrap_or_else(|e| panic!("{aggregation:?}: {e}"));
        assert_eq!((s.value, s.active), (value, active), "{aggregation:?}");
        assert_eq!(
            *source.asked.lock().unwrap(),
            [("apps".to_owned(), "metrics".to_owned())],
            "the Service and namespace come from the URL's host"
        );
    }
}

#[tokio::test]
async fn endpoints_that_fail_or_time_out_are_left_out() {
    let port = serve(&[
        (1, Behaviour::Value(10.0)),
        (2, Behaviour::Value(20.0)),
        (3, Behaviour::Value(60.0)),
        (4, Behaviour::Value(1000.0)),
        (5, Behaviour::Fails),
        (6, Behaviour::Slow(Duration::from_secs(3))),
    ])
    .await;
    let slices = slices(port, &[5, 6]);
    for (aggregation, value) in [
        ("average", 30.0),
        ("sum", 90.0),
        ("max", 60.0),
        ("min", 10.0),
    ] {
        let s = sample(
            TestService::new(slices.clone()),
            port,
            &[("aggregationType", aggregation), ("timeout", "300")],
        )
        .await
        .unwrap_or_else(|e| panic!("{aggregation}: {e}"));
        assert_eq!(
            s.value, value,
            "{aggregation}: the average divides by the endpoints that answered"
        );
    }

    // No endpoint answers: an error (transient), never a value of 0.
    let only_failing = vec![EndpointSlice {
        ports: vec![Some(i32::from(port))],
        endpoints: vec![endpoint(&[5], Some(true)), endpoint(&[6], None)],
    }];
    for aggregation in ["average", "sum", "max", "min"] {
        let err = sample(
            TestService::new(only_failing.clone()),
            port,
            &[("aggregationType", aggregation), ("timeout", "300")],
        )
        .await
        .expect_err(aggregation);
        assert!(matches!(err, ScalerError::Backend { .. }), "{err}");
        let text = err.to_string();
        assert!(
            text.contains("no value from any of the 2 endpoints of Service apps/metrics")
                && text.contains("500"),
            "{text}"
        );
    }
}

#[tokio::test]
async fn no_ready_endpoint_and_a_failing_listing_are_errors() {
    let port = serve(&[(4, Behaviour::Value(1000.0))]).await;
    let not_ready = vec![EndpointSlice {
        ports: vec![Some(i32::from(port))],
        endpoints: vec![endpoint(&[4], Some(false))],
    }];
    let err = sample(TestService::new(not_ready), port, &[])
        .await
        .expect_err("no ready endpoint");
    assert!(
        matches!(&err, ScalerError::Backend { message, .. } if message == "Service apps/metrics has no ready endpoints"),
        "{err}"
    );

    let broken = Arc::new(TestService {
        slices: Err("listing the EndpointSlices of Service apps/metrics: forbidden".into()),
        asked: Mutex::default(),
    });
    let err = sample(broken, port, &[]).await.expect_err("listing fails");
    assert!(
        matches!(&err, ScalerError::Backend { message, .. } if message.ends_with("forbidden")),
        "{err}"
    );

    // A URL host without a namespace names no Service.
    let md: BTreeMap<String, String> = [
        ("url", format!("http://metrics:{port}/stats")),
        ("valueLocation", "queue.depth".into()),
        ("targetValue", "10".into()),
        ("aggregateFromKubeServiceEndpoints", "true".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let empty = BTreeMap::new();
    let config = parse_trigger(&TriggerInput {
        index: 0,
        trigger_type: "metrics-api",
        namespace: "default",
        name: None,
        metadata: &md,
        resolved_env: &empty,
        auth_params: &empty,
        metric_type: None,
    })
    .expect("parse accepts any http URL, as upstream");
    let source = TestService::new(Vec::new());
    let ctx = BuildContext {
        service_endpoints: Some(source.clone()),
        ..Default::default()
    };
    let err = config
        .build(&ctx)
        .await
        .expect("build")
        .sample()
        .await
        .expect_err("no namespace in the host");
    assert!(err.to_string().contains("<service>.<namespace>"), "{err}");
    assert!(source.asked.lock().unwrap().is_empty());
}

#[tokio::test]
async fn at_most_five_requests_in_flight() {
    let counter = Arc::new(InFlight::default());
    let hosts: Vec<u8> = (10..18).collect();
    let endpoints: Vec<(u8, Behaviour)> = hosts
        .iter()
        .map(|h| {
            (
                *h,
                Behaviour::Counted(Duration::from_millis(500), counter.clone()),
            )
        })
        .collect();
    let port = serve(&endpoints).await;
    let slices = vec![EndpointSlice {
        ports: vec![Some(i32::from(port))],
        endpoints: hosts.iter().map(|h| endpoint(&[*h], None)).collect(),
    }];
    let s = sample(
        TestService::new(slices),
        port,
        &[("aggregationType", "sum"), ("timeout", "5000")],
    )
    .await
    .unwrap();
    assert_eq!(s.value, 8.0, "every endpoint answered once");
    let max = counter.max.load(Ordering::SeqCst);
    assert!(
        (2..=MAX_CONCURRENT_REQUESTS).contains(&max),
        "requests were sent in parallel, at most {MAX_CONCURRENT_REQUESTS} at a time: {max} at once"
    );
}
