//! The HTTPS listener (TLS, per-connection client identity, HTTP/1.1 and HTTP/2) and the plain-HTTP
//! `/metrics` listener.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use keda_tls::{ReloadingCert, TlsError, TlsProtocols};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::api::{Api, Body};
use crate::auth::{Authenticator, AuthnConfig};
use crate::metrics::Metrics;
use crate::tls::server_config;

struct Snapshot {
    authn: Arc<Authenticator>,
    acceptor: TlsAcceptor,
}

/// The secure server: the API behind TLS, with the authentication settings swappable at run time.
pub struct Server {
    api: Arc<Api>,
    cert: Arc<ReloadingCert>,
    protocols: TlsProtocols,
    state: ArcSwap<Snapshot>,
}

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

impl Server {
    /// The server of `api` with `cert`, speaking `protocols` (`KEDA_SERVICE_MIN_TLS_VERSION`,
    /// `KEDA_SERVICE_TLS_CIPHER_LIST`).
    pub fn new(
        api: Arc<Api>,
        cert: Arc<ReloadingCert>,
        authn: AuthnConfig,
        protocols: TlsProtocols,
    ) -> Result<Self, TlsError> {
        let snapshot = Self::snapshot(&cert, authn, &protocols)?;
        Ok(Server {
            api,
            cert,
            protocols,
            state: ArcSwap::from_pointee(snapshot),
        })
    }

    fn snapshot(
        cert: &Arc<ReloadingCert>,
        authn: AuthnConfig,
        protocols: &TlsProtocols,
    ) -> Result<Snapshot, TlsError> {
        let authn = Arc::new(Authenticator::new(authn).map_err(TlsError::Config)?);
        let config = server_config(cert.clone(), &authn, protocols)?;
        Ok(Snapshot {
            authn,
            acceptor: TlsAcceptor::from(Arc::new(config)),
        })
    }

    /// The authentication settings in force.
    pub fn authn_config(&self) -> AuthnConfig {
        self.state.load().authn.config.clone()
    }

    /// Switches to new authentication settings for connections accepted from now on.
    pub fn set_authn(&self, authn: AuthnConfig) -> Result<(), TlsError> {
        if self.state.load().authn.config == authn {
            return Ok(());
        }
        let snapshot = Self::snapshot(&self.cert, authn, &self.protocols)?;
        self.state.store(Arc::new(snapshot));
        tracing::info!("client authentication settings updated");
        Ok(())
    }

    /// Accepts connections until the task is dropped.
    pub async fn serve(self: Arc<Self>, listener: TcpListener) {
        loop {
            let (tcp, peer) = match listener.accept().await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let server = self.clone();
            tokio::spawn(async move { server.connection(tcp, peer).await });
        }
    }

    async fn connection(self: Arc<Self>, tcp: tokio::net::TcpStream, peer: SocketAddr) {
        let _ = tcp.set_nodelay(true);
        let snapshot = self.state.load_full();
        let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, snapshot.acceptor.accept(tcp)).await
        {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                tracing::debug!(%peer, error = %e, "TLS handshake failed");
                return;
            }
            Err(_) => {
                tracing::debug!(%peer, "TLS handshake timed out");
                return;
            }
        };
        let identity = snapshot.authn.identify(tls.get_ref().1.peer_certificates());
        let api = self.api.clone();
        let authn = snapshot.authn.clone();
        let identity = Arc::new(identity);
        let service = hyper::service::service_fn(move |req: Request<Incoming>| {
            let (api, authn, identity) = (api.clone(), authn.clone(), identity.clone());
            async move {
                let user = authn.user(&identity, req.headers());
                Ok::<_, Infallible>(api.handle(&user, req.method(), req.uri()).await)
            }
        });
        let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
        if let Err(e) = builder.serve_connection(TokioIo::new(tls), service).await {
            tracing::debug!(%peer, error = %e, "connection ended with an error");
        }
    }
}

/// Binds `addr` (port 0 picks a free one).
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Serves `GET /metrics` (Prometheus text) over plain HTTP until the task is dropped.
pub async fn serve_metrics(listener: TcpListener, metrics: Arc<Metrics>) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let metrics = metrics.clone();
                async move {
                    let mut resp: Response<Body> = if req.uri().path() == "/metrics" {
                        let mut r = Response::new(Full::new(Bytes::from(metrics.encode())));
                        r.headers_mut().insert(
                            http::header::CONTENT_TYPE,
                            http::HeaderValue::from_static(
                                "text/plain; version=0.0.4; charset=utf-8",
                            ),
                        );
                        r
                    } else {
                        Response::new(Full::new(Bytes::from_static(b"404 page not found\n")))
                    };
                    if req.uri().path() != "/metrics" {
                        *resp.status_mut() = StatusCode::NOT_FOUND;
                    }
                    Ok::<_, Infallible>(resp)
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tcp), service)
                .await;
        });
    }
}
