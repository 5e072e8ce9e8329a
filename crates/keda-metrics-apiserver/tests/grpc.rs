//! The gRPC client against an in-process `api.MetricsService` server with mTLS (the shape of the
//! operator's server): answers, error mapping, readiness when the server goes away and comes back,
//! and rejection of a server whose certificate is not from the shared CA.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use keda_metrics_apiserver::metrics::Metrics;
use keda_metrics_apiserver::{GrpcConfig, GrpcProvider, MetricsProvider, ProviderError};
use keda_proto::{ExternalMetricValueList, MetricsService, MetricsServiceServer, ScaledObjectRef};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::task::JoinSet;

struct Operator;

#[tonic::async_trait]
impl MetricsService for Operator {
    async fn get_metrics(
        &self,
        request: tonic::Request<ScaledObjectRef>,
    ) -> Result<tonic::Response<ExternalMetricValueList>, tonic::Status> {
        let r = request.into_inner();
        if (r.namespace.as_str(), r.name.as_str()) != ("ns", "web") {
            return Err(tonic::Status::not_found(format!(
                "ScaledObject {}/{} not found",
                r.namespace, r.name
            )));
        }
        if r.metric_name == "s0-slow" {
            tokio::time::sleep(Duration::from_secs(10)).await;
        }
        Ok(tonic::Response::new(ExternalMetricValueList {
            metadata: None,
            items: vec![keda_proto::external_metric_value(
                &r.metric_name,
                42.5,
                SystemTime::now(),
            )],
        }))
    }
}

/// Serves the operator's metrics service with mTLS on `addr` until the returned set is dropped.
async fn serve(addr: SocketAddr, dir: &Path) -> (SocketAddr, JoinSet<()>) {
    let ca = CertificateDer::pem_file_iter(dir.join("ca.crt"))
        .expect("ca")
        .collect::<Result<Vec<_>, _>>()
        .expect("ca");
    let mut roots = rustls::RootCertStore::empty();
    for c in ca {
        roots.add(c).expect("root");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .expect("verifier");
    let certs = CertificateDer::pem_file_iter(dir.join("tls.crt"))
        .expect("cert")
        .collect::<Result<Vec<_>, _>>()
        .expect("cert");
    let key = PrivateKeyDer::from_pem_file(dir.join("tls.key")).expect("key");
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)
        .expect("server config");
    config.alpn_protocols = vec![b"h2".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
    let local = listener.local_addr().expect("addr");
    let mut set = JoinSet::new();
    set.spawn(async move {
        let mut conns = JoinSet::new();
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let acceptor = acceptor.clone();
            conns.spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let svc = TowerToHyperService::new(MetricsServiceServer::new(Operator));
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .http2_only()
                    .serve_connection(TokioIo::new(tls), svc)
                    .await;
            });
        }
    });
    (local, set)
}

fn config(addr: SocketAddr, dir: &Path) -> GrpcConfig {
    let mut c = GrpcConfig::new(addr.to_string(), dir);
    c.authority = Some("keda-operator.keda.svc.cluster.local".into());
    c.probe_period = Duration::from_millis(200);
    c.stale_after = Duration::from_secs(1);
    c
}

async fn wait_ready(p: &GrpcProvider, want: bool, within: Duration) -> Duration {
    let start = Instant::now();
    while p.ready().is_ok() != want {
        assert!(
            start.elapsed() < within,
            "readiness did not become {want} within {within:?}: {:?}",
            p.ready()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    start.elapsed()
}

#[tokio::test]
async fn metrics_readiness_and_reconnect() {
    let dir = common::temp_dir("grpc");
    let ca = common::Ca::new("KEDA");
    ca.write_dir(
        &dir,
        &ca.leaf(
            "keda-operator",
            &["KEDAORG"],
            &["keda-operator.keda.svc.cluster.local", "localhost"],
        ),
    );
    let (addr, server) = serve("127.0.0.1:0".parse().expect("addr"), &dir).await;
    let metrics = Arc::new(Metrics::default());
    let p = GrpcProvider::start(config(addr, &dir), metrics.clone()).expect("client");
    wait_ready(&p, true, Duration::from_secs(5)).await;

    let list = p
        .get_metrics("ns", "web", "s0-metric-api-value")
        .await
        .expect("metric");
    assert_eq!(list.items.len(), 1);
    assert_eq!(list.items[0].metric_name, "s0-metric-api-value");
    assert_eq!(
        list.items[0].value.as_ref().map(|q| q.string.as_str()),
        Some("42500m")
    );
    match p.get_metrics("ns", "nope", "s0-x").await {
        Err(ProviderError::NotFound(m)) => assert!(m.contains("ns/nope"), "{m}"),
        other => panic!("want NotFound, got {other:?}"),
    }
    // A slow operator: the 3 s deadline.
    let t = Instant::now();
    match p.get_metrics("ns", "web", "s0-slow").await {
        Err(ProviderError::Timeout(_)) => {}
        other => panic!("want Timeout, got {other:?}"),
    }
    assert!(
        t.elapsed() < Duration::from_millis(3500),
        "{:?}",
        t.elapsed()
    );

    wait_ready(&p, true, Duration::from_secs(2)).await;

    // The operator goes away: not ready quickly, calls fail as unavailable within the deadline.
    drop(server);
    let took = wait_ready(&p, false, Duration::from_secs(3)).await;
    eprintln!("not ready {took:?} after the server stopped");
    let t = Instant::now();
    match p.get_metrics("ns", "web", "s0-metric-api-value").await {
        Err(ProviderError::Unavailable(m)) => assert!(m.contains("unreachable"), "{m}"),
        other => panic!("want Unavailable, got {other:?}"),
    }
    assert!(t.elapsed() < Duration::from_millis(3500));

    // It comes back on the same address (a new leader behind the Service): ready again.
    let (_, _server) = serve(addr, &dir).await;
    wait_ready(&p, true, Duration::from_secs(5)).await;
    let list = p
        .get_metrics("ns", "web", "s0-metric-api-value")
        .await
        .expect("metric");
    assert_eq!(list.items.len(), 1);
    let text = metrics.encode();
    assert!(text.contains("grpc_code=\"OK\""), "{text}");
    assert!(text.contains("grpc_code=\"NotFound\""), "{text}");
    assert!(
        text.contains("keda_internal_metricsservice_grpc_client_connected 1"),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_server_outside_the_shared_ca_is_refused() {
    let server_dir = common::temp_dir("grpc-rogue-server");
    let client_dir = common::temp_dir("grpc-rogue-client");
    let rogue = common::Ca::new("rogue");
    rogue.write_dir(
        &server_dir,
        &rogue.leaf(
            "keda-operator",
            &[],
            &["keda-operator.keda.svc.cluster.local"],
        ),
    );
    let ca = common::Ca::new("KEDA");
    ca.write_dir(&client_dir, &ca.leaf("keda-operator", &[], &["localhost"]));
    let (addr, _server) = serve("127.0.0.1:0".parse().expect("addr"), &server_dir).await;
    let p = GrpcProvider::start(config(addr, &client_dir), Arc::new(Metrics::default()))
        .expect("client");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(p.ready().is_err());
    assert!(matches!(
        p.get_metrics("ns", "web", "s0-x").await,
        Err(ProviderError::Unavailable(_))
    ));
    let _ = std::fs::remove_dir_all(&server_dir);
    let _ = std::fs::remove_dir_all(&client_dir);
}
