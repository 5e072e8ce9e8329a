//! tonic channels over the scalers' own TCP and rustls TLS (their roots, `caCert`, client certificates,
//! `unsafeSsl`), for the gRPC scalers (external, etcd).
//!
//! The connector decides where to connect and whether TLS is spoken. The endpoint's URI stays `http`,
//! because tonic refuses `https` without its own TLS once any crate in the build turns that on (the
//! operator does); the origin gives requests their scheme and `:authority`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tonic::transport::{Channel, Endpoint};

/// A channel to `host:port` that connects on first use (and again after the server went away), with
/// TLS when `tls` is set. `configure` adds the caller's timeouts and keepalive to the endpoint.
/// Errors name what is wrong with the host.
pub(crate) fn lazy_channel(
    host: String,
    port: u16,
    tls: Option<Arc<rustls::ClientConfig>>,
    configure: impl FnOnce(Endpoint) -> Endpoint,
) -> Result<Channel, String> {
    let server_name = ServerName::try_from(host.clone())
        .map_err(|e| format!("{host:?} is no TLS server name: {e}"))?;
    let authority = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let origin: http::Uri = format!("{scheme}://{authority}")
        .parse()
        .map_err(|e| format!("{authority}: {e}"))?;
    let endpoint = Endpoint::from_shared(format!("http://{authority}"))
        .map_err(|e| format!("{authority}: {e}"))?
        .origin(origin)
        .tcp_nodelay(true);
    Ok(
        configure(endpoint).connect_with_connector_lazy(Connector(Arc::new(Target {
            host,
            port,
            server_name,
            tls,
        }))),
    )
}

struct Target {
    host: String,
    port: u16,
    server_name: ServerName<'static>,
    tls: Option<Arc<rustls::ClientConfig>>,
}

/// A connection: TCP, or TLS over it.
enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl tokio::io::AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl tokio::io::AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// tonic's connector: each resolved address of the host in turn, then TLS when asked for.
#[derive(Clone)]
struct Connector(Arc<Target>);

impl tower_service::Service<http::Uri> for Connector {
    type Response = TokioIo<Stream>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: http::Uri) -> Self::Future {
        let t = self.0.clone();
        Box::pin(async move {
            let mut last: Option<std::io::Error> = None;
            for addr in tokio::net::lookup_host((t.host.as_str(), t.port)).await? {
                let tcp = match TcpStream::connect(addr).await {
                    Ok(tcp) => tcp,
                    Err(e) => {
                        last = Some(e);
                        continue;
                    }
                };
                let _ = tcp.set_nodelay(true);
                let stream = match &t.tls {
                    None => Stream::Plain(tcp),
                    Some(config) => Stream::Tls(Box::new(
                        tokio_rustls::TlsConnector::from(config.clone())
                            .connect(t.server_name.clone(), tcp)
                            .await?,
                    )),
                };
                return Ok(TokioIo::new(stream));
            }
            Err(last
                .map(BoxError::from)
                .unwrap_or_else(|| format!("{} resolves to no address", t.host).into()))
        })
    }
}
