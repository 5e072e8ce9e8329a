//! The production [`MetricsProvider`]: the operator's gRPC `api.MetricsService` over mTLS.
//!
//! - One HTTP/2 connection, opened lazily and re-opened after it breaks; every connect resolves the
//!   address again and reloads the certificates if their files changed, so a new leader behind the
//!   Service, or rotated certificates, are picked up without a restart.
//! - Each `GetMetrics` has a 3 s deadline (sent as `grpc-timeout`); within it, transport failures and
//!   UNAVAILABLE are retried with backoff 0.25 s → 2 s (×2), as upstream's client does.
//! - A prober calls `grpc.health.v1.Health/Check` every 2 s. Any answer from the server (SERVING, or
//!   UNIMPLEMENTED from a server without the health service) counts as reachable; a failure makes
//!   `/readyz` fail at once, and so does a prober that went quiet (no answer for 6 s).

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use hyper_util::rt::TokioIo;
use keda_proto::{ExternalMetricValueList, MetricsServiceClient, ScaledObjectRef};
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tonic::Code;
use tonic::transport::{Channel, Endpoint};

use crate::metrics::Metrics;
use crate::provider::{MetricsProvider, ProviderError};
use crate::tls::MtlsFiles;

/// Settings of the client.
#[derive(Debug, Clone)]
pub struct GrpcConfig {
    /// `host:port` of the operator's metrics service (`--metrics-service-address`).
    pub address: String,
    /// Host name to expect in the server certificate and to send as `:authority`
    /// (`--metrics-service-grpc-authority`); default: the host of `address`.
    pub authority: Option<String>,
    /// Directory with `ca.crt`, `tls.crt`, `tls.key`.
    pub cert_dir: PathBuf,
    /// Deadline of one `GetMetrics` (3 s).
    pub timeout: Duration,
    /// How often the prober checks the connection (2 s).
    pub probe_period: Duration,
    /// Without an answer for this long, the provider is not ready (6 s).
    pub stale_after: Duration,
    /// TLS versions and suites of the connection (`KEDA_SERVICE_MIN_TLS_VERSION`,
    /// `KEDA_SERVICE_TLS_CIPHER_LIST`, as upstream's client); default TLS 1.2 and 1.3.
    pub tls: keda_tls::TlsProtocols,
}

impl GrpcConfig {
    pub fn new(address: impl Into<String>, cert_dir: impl Into<PathBuf>) -> Self {
        GrpcConfig {
            address: address.into(),
            authority: None,
            cert_dir: cert_dir.into(),
            timeout: Duration::from_secs(3),
            probe_period: Duration::from_secs(2),
            stale_after: Duration::from_secs(6),
            tls: Default::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GrpcError {
    #[error("invalid metrics service address {address:?}: {message}")]
    Address { address: String, message: String },
}

/// Splits `host:port`, `[v6]:port` or a URL with a port.
fn host_port(address: &str) -> Result<(String, u16), String> {
    let rest = address
        .split_once("://")
        .map(|(_, r)| r)
        .unwrap_or(address)
        .trim_end_matches('/');
    let (host, port) = rest
        .rsplit_once(':')
        .ok_or_else(|| "expected host:port".to_owned())?;
    let port: u16 = port.parse().map_err(|_| format!("bad port {port:?}"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err("empty host".into());
    }
    Ok((host.to_owned(), port))
}

/// Modification times of ca.crt, tls.crt, tls.key when the client configuration was built.
type FileStamps = [Option<std::time::SystemTime>; 3];

struct Target {
    host: String,
    port: u16,
    server_name: ServerName<'static>,
    files: MtlsFiles,
    protocols: keda_tls::TlsProtocols,
    tls: Mutex<Option<(FileStamps, Arc<rustls::ClientConfig>)>>,
}

impl Target {
    /// The TLS client configuration, reloaded when a file's mtime changed.
    fn tls(&self) -> Result<Arc<rustls::ClientConfig>, String> {
        let stamps = self.files.stamps();
        let mut guard = self.tls.lock().map_err(|_| "poisoned".to_owned())?;
        if let Some((s, c)) = guard.as_ref()
            && *s == stamps
        {
            return Ok(c.clone());
        }
        match self.files.client_config(&self.protocols) {
            Ok(c) => {
                let c = Arc::new(c);
                if guard.is_some() {
                    tracing::info!("gRPC client certificates reloaded");
                }
                *guard = Some((stamps, c.clone()));
                Ok(c)
            }
            // Keep using the last good one while files are being replaced.
            Err(e) => match guard.as_ref() {
                Some((_, c)) => {
                    tracing::warn!(error = %e, "new gRPC client certificates not usable yet");
                    Ok(c.clone())
                }
                None => Err(e.to_string()),
            },
        }
    }
}

/// Connects TCP + TLS to the target for tonic's channel (the URI tonic passes is ignored).
#[derive(Clone)]
struct Connector(Arc<Target>);

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl tower_service::Service<http::Uri> for Connector {
    type Response = TokioIo<TlsStream<TcpStream>>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: http::Uri) -> Self::Future {
        let t = self.0.clone();
        Box::pin(async move {
            let config = t.tls()?;
            let mut last: Option<std::io::Error> = None;
            let addrs = tokio::net::lookup_host((t.host.as_str(), t.port)).await?;
            for addr in addrs {
                match TcpStream::connect(addr).await {
                    Ok(tcp) => {
                        let _ = tcp.set_nodelay(true);
                        let tls = TlsConnector::from(config.clone())
                            .connect(t.server_name.clone(), tcp)
                            .await?;
                        return Ok(TokioIo::new(tls));
                    }
                    Err(e) => last = Some(e),
                }
            }
            Err(last
                .map(BoxError::from)
                .unwrap_or_else(|| format!("{} resolves to no address", t.host).into()))
        })
    }
}

#[derive(Default)]
struct Health {
    /// When the server last answered, if the last attempt succeeded.
    answered: Option<Instant>,
    last_error: String,
}

/// The gRPC client to the operator.
pub struct GrpcProvider {
    client: MetricsServiceClient<Channel>,
    channel: Channel,
    config: GrpcConfig,
    health: Mutex<Health>,
    metrics: Arc<Metrics>,
}

/// `grpc.health.v1` messages (the standard health service), for the prober.
#[derive(Clone, PartialEq, prost::Message)]
struct HealthCheckRequest {
    #[prost(string, tag = "1")]
    service: String,
}

#[derive(Clone, PartialEq, prost::Message)]
struct HealthCheckResponse {
    #[prost(int32, tag = "1")]
    status: i32,
}

const SERVING: i32 = 1;

/// Whether the status comes from our own deadline (tonic enforces the `grpc-timeout` we send).
fn is_deadline(s: &tonic::Status) -> bool {
    if s.code() == Code::DeadlineExceeded {
        return true;
    }
    let mut source = std::error::Error::source(s);
    while let Some(e) = source {
        if e.is::<tonic::TimeoutExpired>() {
            return true;
        }
        source = e.source();
    }
    false
}

/// A status produced on our side from a transport failure (connect, TLS, broken connection), not
/// sent by the server: tonic keeps the underlying error as the source only for those.
fn is_transport_failure(s: &tonic::Status) -> bool {
    matches!(
        s.code(),
        Code::Unavailable | Code::Unknown | Code::Cancelled | Code::Internal
    ) && std::error::Error::source(s).is_some()
        && !is_deadline(s)
}

/// Worth another try within the deadline: transport failures and UNAVAILABLE (also when the server
/// says so, e.g. a scaler that is not built yet), as upstream's retry policy.
fn is_retryable(s: &tonic::Status) -> bool {
    s.code() == Code::Unavailable || is_transport_failure(s)
}

fn provider_error(s: &tonic::Status, address: &str) -> ProviderError {
    let msg = format!(
        "rpc error: code = {} desc = {}",
        crate::metrics::grpc_code_name(s.code()),
        s.message()
    );
    match s.code() {
        Code::NotFound => ProviderError::NotFound(s.message().to_owned()),
        Code::InvalidArgument => ProviderError::InvalidRequest(s.message().to_owned()),
        _ if is_deadline(s) => ProviderError::Timeout(format!(
            "no answer from the KEDA operator's metrics service at {address} in time: {msg}"
        )),
        _ if is_transport_failure(s) => ProviderError::Unavailable(format!(
            "KEDA operator's metrics service at {address} is unreachable: {msg}"
        )),
        Code::Unavailable => ProviderError::Unavailable(msg),
        _ => ProviderError::Failed(msg),
    }
}

impl GrpcProvider {
    /// Builds the client (no connection yet) and starts the prober on the current runtime.
    pub fn start(config: GrpcConfig, metrics: Arc<Metrics>) -> Result<Arc<Self>, GrpcError> {
        let bad = |message: String| GrpcError::Address {
            address: config.address.clone(),
            message,
        };
        let (host, port) = host_port(&config.address).map_err(bad)?;
        let name_host = match &config.authority {
            Some(a) if !a.is_empty() => host_port(a).map(|(h, _)| h).unwrap_or_else(|_| a.clone()),
            _ => host.clone(),
        };
        let server_name = ServerName::try_from(name_host.clone())
            .map_err(|e| bad(format!("{name_host:?} is not a valid TLS server name: {e}")))?;
        let origin_authority = match &config.authority {
            Some(a) if !a.is_empty() => a.clone(),
            _ => config.address.clone(),
        };
        let origin: http::Uri = format!("https://{origin_authority}")
            .parse()
            .map_err(|e| bad(format!("{e}")))?;
        let endpoint = Endpoint::from_shared(format!("http://{host}:{port}"))
            .map_err(|e| bad(e.to_string()))?
            .origin(origin)
            .connect_timeout(config.timeout)
            .http2_keep_alive_interval(Duration::from_secs(30))
            .keep_alive_timeout(Duration::from_secs(10))
            .keep_alive_while_idle(true);
        let target = Arc::new(Target {
            host,
            port,
            server_name,
            files: MtlsFiles::in_dir(&config.cert_dir),
            protocols: config.tls.clone(),
            tls: Mutex::new(None),
        });
        let channel = endpoint.connect_with_connector_lazy(Connector(target));
        let provider = Arc::new(GrpcProvider {
            client: MetricsServiceClient::new(channel.clone()),
            channel,
            config,
            health: Mutex::new(Health {
                answered: None,
                last_error: "no connection to the KEDA operator yet".into(),
            }),
            metrics,
        });
        tokio::spawn(prober(Arc::downgrade(&provider)));
        Ok(provider)
    }

    fn record(&self, result: Result<(), String>) {
        let Ok(mut h) = self.health.lock() else {
            return;
        };
        let was = h.answered.is_some();
        match result {
            Ok(()) => {
                h.answered = Some(Instant::now());
                if !was {
                    tracing::info!(address = %self.config.address, "connected to the KEDA operator's metrics service");
                }
                self.metrics.grpc_connected.set(1);
            }
            Err(e) => {
                h.answered = None;
                if was || h.last_error != e {
                    tracing::warn!(address = %self.config.address, error = %e, "KEDA operator's metrics service is not reachable");
                }
                h.last_error = e;
                self.metrics.grpc_connected.set(0);
            }
        }
    }

    /// One health probe: `Ok` when the server answered.
    pub async fn probe(&self) -> Result<(), String> {
        let mut grpc = tonic::client::Grpc::new(self.channel.clone());
        let call = async {
            grpc.ready()
                .await
                .map_err(|e| tonic::Status::unavailable(format!("channel not ready: {e}")))?;
            let codec =
                tonic_prost::ProstCodec::<HealthCheckRequest, HealthCheckResponse>::default();
            let path = http::uri::PathAndQuery::from_static("/grpc.health.v1.Health/Check");
            let mut req = tonic::Request::new(HealthCheckRequest::default());
            req.set_timeout(self.config.probe_period);
            grpc.unary(req, path, codec).await
        };
        match tokio::time::timeout(self.config.probe_period, call).await {
            Err(_) => Err(format!("no answer within {:?}", self.config.probe_period)),
            Ok(Ok(resp)) if resp.get_ref().status == SERVING => Ok(()),
            Ok(Ok(resp)) => Err(format!("health status {}", resp.get_ref().status)),
            // A server without the health service still answered.
            Ok(Err(s)) if matches!(s.code(), Code::Unimplemented | Code::NotFound) => Ok(()),
            Ok(Err(s)) => Err(format!(
                "{}: {}",
                crate::metrics::grpc_code_name(s.code()),
                s.message()
            )),
        }
    }

    /// `GetMetrics` with the deadline and retries described in the module docs.
    pub async fn get(&self, r: ScaledObjectRef) -> Result<ExternalMetricValueList, tonic::Status> {
        let method = keda_proto::GET_METRICS_METHOD;
        self.metrics.grpc_started(method);
        let started = Instant::now();
        let deadline = started + self.config.timeout;
        let mut backoff = Duration::from_millis(250);
        let mut last: Option<tonic::Status> = None;
        let result = loop {
            let now = Instant::now();
            let remaining = deadline.saturating_duration_since(now);
            if remaining.is_zero() {
                break Err(
                    last.unwrap_or_else(|| tonic::Status::deadline_exceeded("deadline exceeded"))
                );
            }
            let mut req = tonic::Request::new(r.clone());
            req.set_timeout(remaining);
            let mut client = self.client.clone();
            match tokio::time::timeout(remaining, client.get_metrics(req)).await {
                Err(_) => {
                    break Err(tonic::Status::deadline_exceeded(format!(
                        "no answer within {:?}",
                        self.config.timeout
                    )));
                }
                Ok(Ok(resp)) => break Ok(resp.into_inner()),
                Ok(Err(s)) if is_deadline(&s) => break Err(s),
                Ok(Err(s)) if is_retryable(&s) && now + backoff < deadline => {
                    tracing::debug!(error = %s, ?backoff, "GetMetrics failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                    last = Some(s);
                }
                Ok(Err(s)) => break Err(s),
            }
        };
        let code = match &result {
            Ok(_) => Code::Ok,
            Err(s) => s.code(),
        };
        self.metrics.observe_grpc(method, code, started.elapsed());
        match &result {
            Ok(_) => self.record(Ok(())),
            Err(s) if is_transport_failure(s) => self.record(Err(s.message().to_owned())),
            // A slow answer says more about the scaler than about the connection: the prober decides.
            Err(s) if is_deadline(s) => {}
            // The server answered (with an error about this metric).
            Err(_) => self.record(Ok(())),
        }
        result
    }
}

async fn prober(provider: std::sync::Weak<GrpcProvider>) {
    loop {
        let Some(p) = provider.upgrade() else {
            return;
        };
        let period = p.config.probe_period;
        let r = p.probe().await;
        p.record(r);
        drop(p);
        tokio::time::sleep(period).await;
    }
}

#[async_trait]
impl MetricsProvider for GrpcProvider {
    async fn get_metrics(
        &self,
        namespace: &str,
        scaled_object: &str,
        metric_name: &str,
    ) -> Result<ExternalMetricValueList, ProviderError> {
        self.get(ScaledObjectRef {
            name: scaled_object.to_owned(),
            namespace: namespace.to_owned(),
            metric_name: metric_name.to_owned(),
        })
        .await
        .map_err(|s| provider_error(&s, &self.config.address))
    }

    fn ready(&self) -> Result<(), String> {
        let h = self
            .health
            .lock()
            .map_err(|_| "health state poisoned".to_owned())?;
        match h.answered {
            Some(at) if at.elapsed() < self.config.stale_after => Ok(()),
            Some(at) => Err(format!(
                "no answer from the KEDA operator for {:?}",
                at.elapsed()
            )),
            None => Err(h.last_error.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(
            host_port("keda-operator.keda.svc.cluster.local:9666").expect("ok"),
            ("keda-operator.keda.svc.cluster.local".into(), 9666)
        );
        assert_eq!(
            host_port("127.0.0.1:1").expect("ok"),
            ("127.0.0.1".into(), 1)
        );
        assert_eq!(host_port("[::1]:9666").expect("ok"), ("::1".into(), 9666));
        assert_eq!(
            host_port("https://op:9666/").expect("ok"),
            ("op".into(), 9666)
        );
        assert!(host_port("op").is_err());
        assert!(host_port(":9666").is_err());
    }
}
