//! Latency of the external-metrics endpoint at a fixed request rate (perf target T5), on loopback.
//!
//!     cargo run -p keda-metrics-apiserver --release --example bench [-- RATE SECONDS BACKEND_MS]
//!
//! Defaults: 1,000 req/s for 10 s, simulated backend call 5 ms. The full HTTPS stack runs (TLS,
//! HTTP/2, front-proxy authentication with X-Remote-User, SubjectAccessReview cache — the reviewer is
//! an in-memory fake); requests are sent open-loop over one HTTP/2 connection, as the aggregator does.
//! Scenarios:
//! - `cached`: in-memory provider answering at once (the operator's cache, without the gRPC hop);
//! - `uncached`: in-memory provider that waits BACKEND_MS first (a live scaler call);
//! - `grpc+uncached`: the real gRPC client over mTLS to an in-process `api.MetricsService` that waits
//!   BACKEND_MS per call (the production path with a live scaler behind it).
//!
//! "server" is the time inside the HTTP handler (request parsed → response built); "client" adds TLS,
//! HTTP/2 and the client on the same two cores. Numbers, never assertions.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use k8s_openapi::api::authorization::v1::{SubjectAccessReview, SubjectAccessReviewStatus};
use keda_metrics_apiserver::api::{Api, Kind};
use keda_metrics_apiserver::auth::{
    AuthnConfig, AuthzError, RequestHeaderConfig, ReviewSubjectAccess, SarAuthorizer,
};
use keda_metrics_apiserver::metrics::Metrics;
use keda_metrics_apiserver::server::Server;
use keda_metrics_apiserver::{GrpcConfig, GrpcProvider, MetricsProvider, StaticProvider};
use keda_proto::{ExternalMetricValueList, MetricsService, MetricsServiceServer, ScaledObjectRef};
use keda_tls::ReloadingCert;
use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair};

struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl Ca {
    fn new(cn: &str) -> anyhow::Result<Ca> {
        let key = KeyPair::generate()?;
        let mut p = CertificateParams::new(Vec::<String>::new())?;
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name.push(DnType::CommonName, cn);
        Ok(Ca {
            cert: p.self_signed(&key)?,
            key,
        })
    }

    fn leaf(&self, cn: &str, sans: &[&str]) -> anyhow::Result<(String, String)> {
        let key = KeyPair::generate()?;
        let mut p = CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>())?;
        p.distinguished_name.push(DnType::CommonName, cn);
        p.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let cert = p.signed_by(&key, &self.cert, &self.key)?;
        Ok((cert.pem(), key.serialize_pem()))
    }
}

/// Always allows; counts as the API server would answer a SubjectAccessReview.
struct Allow;

#[async_trait::async_trait]
impl ReviewSubjectAccess for Allow {
    async fn review(&self, r: SubjectAccessReview) -> Result<SubjectAccessReview, AuthzError> {
        tokio::time::sleep(Duration::from_millis(2)).await;
        Ok(SubjectAccessReview {
            status: Some(SubjectAccessReviewStatus {
                allowed: true,
                ..Default::default()
            }),
            ..r
        })
    }
}

/// The operator's side for the gRPC scenario: answers after `delay` (the time it really took is recorded).
struct Operator {
    delay: Duration,
    took: Samples,
}

type Samples = Arc<Mutex<Vec<Duration>>>;

/// The in-memory provider for the `uncached` scenario: waits `delay`, records how long that really took.
struct SlowProvider {
    inner: StaticProvider,
    delay: Duration,
    took: Samples,
}

#[async_trait::async_trait]
impl MetricsProvider for SlowProvider {
    async fn get_metrics(
        &self,
        namespace: &str,
        scaled_object: &str,
        metric_name: &str,
    ) -> Result<ExternalMetricValueList, keda_metrics_apiserver::ProviderError> {
        let t = Instant::now();
        tokio::time::sleep(self.delay).await;
        if let Ok(mut v) = self.took.lock() {
            v.push(t.elapsed());
        }
        self.inner
            .get_metrics(namespace, scaled_object, metric_name)
            .await
    }

    fn ready(&self) -> Result<(), String> {
        Ok(())
    }
}

#[tonic::async_trait]
impl MetricsService for Operator {
    async fn get_metrics(
        &self,
        request: tonic::Request<ScaledObjectRef>,
    ) -> Result<tonic::Response<ExternalMetricValueList>, tonic::Status> {
        let t = Instant::now();
        tokio::time::sleep(self.delay).await;
        if let Ok(mut v) = self.took.lock() {
            v.push(t.elapsed());
        }
        let r = request.into_inner();
        Ok(tonic::Response::new(ExternalMetricValueList {
            metadata: None,
            items: vec![keda_proto::external_metric_value(
                &r.metric_name,
                42.0,
                SystemTime::now(),
            )],
        }))
    }
}

async fn serve_operator(dir: &Path, delay: Duration, took: Samples) -> anyhow::Result<SocketAddr> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(dir.join("ca.crt"))? {
        roots.add(c?)?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()?;
    let certs =
        CertificateDer::pem_file_iter(dir.join("tls.crt"))?.collect::<Result<Vec<_>, _>>()?;
    let key = PrivateKeyDer::from_pem_file(dir.join("tls.key"))?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let acceptor = acceptor.clone();
            let took = took.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let svc =
                    TowerToHyperService::new(MetricsServiceServer::new(Operator { delay, took }));
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .http2_only()
                    .serve_connection(TokioIo::new(tls), svc)
                    .await;
            });
        }
    });
    Ok(addr)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

struct Setup {
    dir: std::path::PathBuf,
    serving_ca: String,
    front_proxy_ca: String,
    proxy_identity: String,
}

async fn scenario(
    name: &str,
    setup: &Setup,
    provider: Arc<dyn MetricsProvider>,
    rate: u64,
    secs: u64,
    backend: Option<Samples>,
) -> anyhow::Result<()> {
    let server_side: Arc<Mutex<Vec<Duration>>> = Arc::new(Mutex::new(Vec::new()));
    let sink = server_side.clone();
    let mut api = Api::new(
        provider,
        Arc::new(SarAuthorizer::new(Allow, Duration::from_secs(10))),
        Arc::new(Metrics::default()),
    );
    api.latency_hook = Some(Arc::new(move |kind, took| {
        if kind == Kind::ExternalMetric
            && let Ok(mut v) = sink.lock()
        {
            v.push(took);
        }
    }));
    let authn = AuthnConfig {
        requestheader_ca_pem: setup.front_proxy_ca.clone(),
        requestheader: RequestHeaderConfig {
            allowed_names: vec!["front-proxy-client".into()],
            username_headers: vec!["X-Remote-User".into()],
            uid_headers: vec![],
            group_headers: vec!["X-Remote-Group".into()],
            extra_headers_prefixes: vec!["X-Remote-Extra-".into()],
        },
        client_ca_pem: String::new(),
    };
    let cert = Arc::new(ReloadingCert::from_files(
        setup.dir.join("tls.crt"),
        setup.dir.join("tls.key"),
        Duration::from_secs(2),
    )?);
    let server = Arc::new(Server::new(Arc::new(api), cert, authn, Default::default())?);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let task = tokio::spawn(server.serve(listener));

    let client = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(setup.serving_ca.as_bytes())?)
        .identity(reqwest::Identity::from_pem(
            setup.proxy_identity.as_bytes(),
        )?)
        .build()?;
    let url = format!(
        "https://localhost:{port}/apis/external.metrics.k8s.io/v1beta1/namespaces/bench/s0-metric-api-value?labelSelector=scaledobject.keda.sh%2Fname%3Dweb"
    );
    let send = |client: reqwest::Client, url: String| async move {
        let t = Instant::now();
        let r = client
            .get(url)
            .header(
                "X-Remote-User",
                "system:serviceaccount:kube-system:horizontal-pod-autoscaler",
            )
            .header("X-Remote-Group", "system:serviceaccounts")
            .send()
            .await;
        let ok = match r {
            Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
            Err(_) => false,
        };
        (ok, t.elapsed())
    };
    // Warm up: connection, TLS, the authorization cache.
    for _ in 0..50 {
        send(client.clone(), url.clone()).await;
    }
    if let Ok(mut v) = server_side.lock() {
        v.clear();
    }
    if let Some(b) = &backend
        && let Ok(mut v) = b.lock()
    {
        v.clear();
    }

    let total = rate * secs;
    let mut ticker = tokio::time::interval(Duration::from_nanos(1_000_000_000 / rate));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..total {
        ticker.tick().await;
        tasks.spawn(send(client.clone(), url.clone()));
    }
    let mut client_side = Vec::with_capacity(total as usize);
    let mut failed = 0u64;
    while let Some(r) = tasks.join_next().await {
        match r {
            Ok((true, d)) => client_side.push(d),
            _ => failed += 1,
        }
    }
    let elapsed = started.elapsed();
    task.abort();
    let mut server = server_side.lock().map(|v| v.clone()).unwrap_or_default();
    server.sort();
    client_side.sort();
    let mut backend_took = backend
        .as_ref()
        .and_then(|b| b.lock().ok().map(|v| v.clone()))
        .unwrap_or_default();
    backend_took.sort();
    println!(
        "{name:<14} {total} requests in {:.2} s ({:.0} req/s), {failed} failed",
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64()
    );
    println!(
        "  server-side  p50 {}  p99 {}  max {}",
        ms(percentile(&server, 0.50)),
        ms(percentile(&server, 0.99)),
        ms(server.last().copied().unwrap_or_default()),
    );
    if !backend_took.is_empty() {
        let (b50, b99) = (
            percentile(&backend_took, 0.50),
            percentile(&backend_took, 0.99),
        );
        println!(
            "  backend      p50 {}  p99 {}  (the simulated call as measured; server-side minus backend: p50 {}  p99 {})",
            ms(b50),
            ms(b99),
            ms(percentile(&server, 0.50).saturating_sub(b50)),
            ms(percentile(&server, 0.99).saturating_sub(b99)),
        );
    }
    println!(
        "  client-side  p50 {}  p99 {}  (loopback TLS + HTTP/2 + client)",
        ms(percentile(&client_side, 0.50)),
        ms(percentile(&client_side, 0.99)),
    );
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rate: u64 = args
        .first()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000)
        .max(1);
    let secs: u64 = args
        .get(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(10)
        .max(1);
    let backend = Duration::from_millis(args.get(2).and_then(|s| s.parse().ok()).unwrap_or(5));

    let dir = std::env::temp_dir().join(format!("keda-ma-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let ca = Ca::new("KEDA")?;
    let (cert, key) = ca.leaf(
        "keda-operator",
        &[
            "localhost",
            "127.0.0.1",
            "keda-operator.keda.svc.cluster.local",
        ],
    )?;
    std::fs::write(dir.join("ca.crt"), ca.cert.pem())?;
    std::fs::write(dir.join("tls.crt"), &cert)?;
    std::fs::write(dir.join("tls.key"), &key)?;
    let fp = Ca::new("front-proxy-ca")?;
    let (pc, pk) = fp.leaf("front-proxy-client", &[])?;
    let setup = Setup {
        dir: dir.clone(),
        serving_ca: ca.cert.pem(),
        front_proxy_ca: fp.cert.pem(),
        proxy_identity: format!("{pc}{pk}"),
    };
    println!(
        "external-metrics endpoint, {rate} req/s for {secs} s, one HTTP/2 connection, simulated backend {} ms",
        backend.as_millis()
    );

    let cached = Arc::new(StaticProvider::new());
    cached.set("bench", "web", "s0-metric-api-value", 42.0);
    scenario("cached", &setup, cached, rate, secs, None).await?;

    let took: Samples = Arc::default();
    let uncached = Arc::new(SlowProvider {
        inner: StaticProvider::new(),
        delay: backend,
        took: took.clone(),
    });
    uncached
        .inner
        .set("bench", "web", "s0-metric-api-value", 42.0);
    scenario("uncached", &setup, uncached, rate, secs, Some(took)).await?;

    let took: Samples = Arc::default();
    let op = serve_operator(&dir, backend, took.clone()).await?;
    let mut gc = GrpcConfig::new(op.to_string(), &dir);
    gc.authority = Some("keda-operator.keda.svc.cluster.local".into());
    let grpc = GrpcProvider::start(gc, Arc::new(Metrics::default()))?;
    let start = Instant::now();
    while grpc.ready().is_err() && start.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    scenario("grpc+uncached", &setup, grpc, rate, secs, Some(took)).await?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
