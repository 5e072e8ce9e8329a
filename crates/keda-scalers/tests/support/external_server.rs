//! A gRPC server implementing upstream's `externalscaler.proto` (generated in keda-proto) whose answers
//! the test controls: the `external` / `external-push` scalers' real backend in tests and the push
//! latency bench. Plain, TLS or mutual TLS; stoppable and restartable on the same port.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use keda_proto::externalscaler::external_scaler_server::{ExternalScaler, ExternalScalerServer};
use keda_proto::externalscaler::{
    GetMetricSpecResponse, GetMetricsRequest, GetMetricsResponse, IsActiveResponse, MetricSpec,
    MetricValue, ScaledObjectRef,
};
use tonic::{Request, Response, Status};

/// What the server answers; change it between calls.
#[derive(Clone, Debug)]
pub struct Answers {
    pub active: bool,
    pub specs: Vec<MetricSpec>,
    pub values: Vec<MetricValue>,
    /// When set, every unary call fails with this status code.
    pub fail: Option<tonic::Code>,
}

impl Default for Answers {
    fn default() -> Self {
        Answers {
            active: false,
            specs: vec![MetricSpec {
                metric_name: "queue".into(),
                target_size: 0,
                target_size_float: 5.0,
            }],
            values: vec![],
            fail: None,
        }
    }
}

/// What the server saw.
#[derive(Clone, Debug, Default)]
pub struct Seen {
    pub refs: Vec<ScaledObjectRef>,
    /// `GetMetricsRequest.metricName` of each call.
    pub metric_names: Vec<String>,
    pub is_active_calls: usize,
    pub streams_opened: usize,
}

/// The state shared between the test and the server (survives a restart).
#[derive(Clone)]
pub struct Backend {
    pub answers: Arc<Mutex<Answers>>,
    pub seen: Arc<Mutex<Seen>>,
    push: tokio::sync::broadcast::Sender<bool>,
}

impl Default for Backend {
    fn default() -> Self {
        Backend {
            answers: Default::default(),
            seen: Default::default(),
            push: tokio::sync::broadcast::channel(1024).0,
        }
    }
}

impl Backend {
    pub fn set(&self, f: impl FnOnce(&mut Answers)) {
        f(&mut self.answers.lock().expect("answers lock"));
    }

    pub fn seen(&self) -> Seen {
        self.seen.lock().expect("seen lock").clone()
    }

    /// Sends `active` on every open `StreamIsActive`; returns how many streams got it.
    pub fn push(&self, active: bool) -> usize {
        self.push.send(active).unwrap_or(0)
    }

    /// Open `StreamIsActive` calls.
    pub fn listeners(&self) -> usize {
        self.push.receiver_count()
    }

    fn answers(&self) -> Result<Answers, Status> {
        let a = self.answers.lock().expect("answers lock").clone();
        match a.fail {
            Some(code) => Err(Status::new(code, "told to fail")),
            None => Ok(a),
        }
    }

    fn saw(&self, r: &ScaledObjectRef) {
        self.seen.lock().expect("seen lock").refs.push(r.clone());
    }
}

type PushStream = Pin<Box<dyn futures::Stream<Item = Result<IsActiveResponse, Status>> + Send>>;

#[tonic::async_trait]
impl ExternalScaler for Backend {
    async fn is_active(
        &self,
        request: Request<ScaledObjectRef>,
    ) -> Result<Response<IsActiveResponse>, Status> {
        self.saw(request.get_ref());
        self.seen.lock().expect("seen lock").is_active_calls += 1;
        let result = self.answers()?.active;
        Ok(Response::new(IsActiveResponse { result }))
    }

    type StreamIsActiveStream = PushStream;

    async fn stream_is_active(
        &self,
        request: Request<ScaledObjectRef>,
    ) -> Result<Response<PushStream>, Status> {
        self.saw(request.get_ref());
        self.seen.lock().expect("seen lock").streams_opened += 1;
        let rx = self.push.subscribe();
        let stream = futures::stream::unfold(rx, |mut rx| async move {
            loop {
                match rx.recv().await {
                    Ok(result) => return Some((Ok(IsActiveResponse { result }), rx)),
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                }
            }
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn get_metric_spec(
        &self,
        request: Request<ScaledObjectRef>,
    ) -> Result<Response<GetMetricSpecResponse>, Status> {
        self.saw(request.get_ref());
        Ok(Response::new(GetMetricSpecResponse {
            metric_specs: self.answers()?.specs,
        }))
    }

    async fn get_metrics(
        &self,
        request: Request<GetMetricsRequest>,
    ) -> Result<Response<GetMetricsResponse>, Status> {
        let r = request.into_inner();
        if let Some(o) = &r.scaled_object_ref {
            self.saw(o);
        }
        self.seen
            .lock()
            .expect("seen lock")
            .metric_names
            .push(r.metric_name.clone());
        Ok(Response::new(GetMetricsResponse {
            metric_values: self.answers()?.values,
        }))
    }
}

/// TLS of a served endpoint: the server's certificate and key, and the CA its clients must be signed by
/// (mutual TLS) if any.
#[derive(Clone)]
pub struct ServerTls {
    pub cert: String,
    pub key: String,
    pub client_ca: Option<String>,
}

/// One running server; dropping it (or [`Served::stop`]) stops it and closes its connections.
pub struct Served {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    /// Owns the listener.
    accept: Option<tokio::task::JoinHandle<()>>,
    /// A second handle on each accepted socket, to cut connections as a dying process would (tonic's
    /// own shutdown waits for open streams to end).
    sockets: Arc<Mutex<Vec<std::net::TcpStream>>>,
}

impl Served {
    /// Stops accepting and closes every connection (streams end with an error on the client side).
    pub async fn stop(mut self) {
        self.shutdown().await;
    }

    async fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        for task in [self.task.take(), self.accept.take()].into_iter().flatten() {
            task.abort();
            let _ = task.await;
        }
        self.cut();
    }

    fn cut(&self) {
        for s in self.sockets.lock().expect("sockets lock").drain(..) {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        for task in [self.task.take(), self.accept.take()].into_iter().flatten() {
            task.abort();
        }
        self.cut();
    }
}

/// Serves `backend` on `127.0.0.1:<port>` (0: a free port).
pub async fn serve(backend: &Backend, port: u16, tls: Option<ServerTls>) -> Served {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    let acceptor = tls.map(|t| {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(t.cert.as_bytes())
            .collect::<Result<_, _>>()
            .expect("server certificate PEM");
        let key = PrivateKeyDer::from_pem_slice(t.key.as_bytes()).expect("server key PEM");
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .expect("TLS versions");
        let builder = match t.client_ca {
            Some(ca) => {
                let mut roots = rustls::RootCertStore::empty();
                for c in CertificateDer::pem_slice_iter(ca.as_bytes()) {
                    roots.add(c.expect("client CA PEM")).expect("add client CA");
                }
                builder.with_client_cert_verifier(
                    rustls::server::WebPkiClientVerifier::builder_with_provider(
                        Arc::new(roots),
                        provider,
                    )
                    .build()
                    .expect("client verifier"),
                )
            }
            None => builder.with_no_client_auth(),
        };
        let mut config = builder
            .with_single_cert(certs, key)
            .expect("server TLS config");
        config.alpn_protocols = vec![b"h2".to_vec()];
        tokio_rustls::TlsAcceptor::from(Arc::new(config))
    });
    // Accepted (and handshaken) connections go to tonic through a channel.
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Conn>>(16);
    let sockets: Arc<Mutex<Vec<std::net::TcpStream>>> = Default::default();
    let kept = sockets.clone();
    let accept = tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let _ = tcp.set_nodelay(true);
            let std = tcp.into_std().expect("socket");
            kept.lock()
                .expect("sockets lock")
                .push(std.try_clone().expect("clone socket"));
            let tcp = tokio::net::TcpStream::from_std(std).expect("socket back");
            let tx = tx.clone();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let conn = match acceptor {
                    None => Conn::Plain(tcp),
                    Some(a) => match a.accept(tcp).await {
                        Ok(s) => Conn::Tls(Box::new(s)),
                        Err(_) => return,
                    },
                };
                let _ = tx.send(Ok(conn)).await;
            });
        }
    });
    let incoming =
        futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|c| (c, rx)) });
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let service = ExternalScalerServer::new(backend.clone());
    let task = tokio::spawn(async move {
        let server = tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming_shutdown(incoming, async {
                let _ = stop_rx.await;
            });
        let _ = server.await;
    });
    Served {
        addr,
        stop: Some(stop_tx),
        task: Some(task),
        accept: Some(accept),
        sockets,
    }
}

/// A served connection, plain or TLS.
pub enum Conn {
    Plain(tokio::net::TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<tokio::net::TcpStream>>),
}

impl tonic::transport::server::Connected for Conn {
    type ConnectInfo = ();
    fn connect_info(&self) -> Self::ConnectInfo {}
}

impl tokio::io::AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl tokio::io::AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_flush(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
