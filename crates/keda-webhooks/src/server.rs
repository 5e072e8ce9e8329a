//! The HTTPS server of the webhooks, and the plain HTTP servers of the probes and metrics.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use keda_resolver::ObjectSource;
use prometheus_client::registry::Registry;

use crate::Error;
use crate::cluster::Cluster;
use crate::webhook::{Kind, Webhook};

/// The router of the webhook paths.
pub fn router<S, C>(webhook: Arc<Webhook<S, C>>) -> Router
where
    S: ObjectSource + Send + Sync + 'static,
    C: Cluster + 'static,
{
    let mut router = Router::new();
    for kind in Kind::ALL {
        router = router.route(
            kind.path(),
            post(
                move |State(w): State<Arc<Webhook<S, C>>>, body: Bytes| async move {
                    let review = w.review(kind, &body).await;
                    match serde_json::to_vec(&review) {
                        Ok(json) => (
                            StatusCode::OK,
                            [(header::CONTENT_TYPE, "application/json")],
                            json,
                        )
                            .into_response(),
                        Err(e) => {
                            (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response()
                        }
                    }
                },
            ),
        );
    }
    router.with_state(webhook)
}

/// Serves `router` over TLS on `listener` until the process ends.
pub async fn serve_tls(
    listener: tokio::net::TcpListener,
    config: rustls::ServerConfig,
    router: Router,
) -> Result<(), Error> {
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "accepting a connection");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let acceptor = acceptor.clone();
        let router = router.clone();
        tokio::spawn(async move {
            let tls = match acceptor.accept(tcp).await {
                Ok(t) => t,
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
            };
            let service = hyper_util::service::TowerToHyperService::new(router);
            if let Err(e) =
                hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new())
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                    .await
            {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
}

/// `/healthz` (always ok) and `/readyz` (ok once the indexes and the Service / Ingress caches are synced).
pub fn health_router(ready: Arc<AtomicBool>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(move || {
                let ready = ready.clone();
                async move {
                    if ready.load(Ordering::SeqCst) {
                        (StatusCode::OK, "ok")
                    } else {
                        (StatusCode::SERVICE_UNAVAILABLE, "indexes not synced")
                    }
                }
            }),
        )
}

/// `/metrics` in the Prometheus text format.
pub fn metrics_router(registry: Arc<Registry>) -> Router {
    Router::new().route(
        "/metrics",
        get(move || {
            let registry = registry.clone();
            async move {
                let mut out = String::new();
                match prometheus_client::encoding::text::encode(&mut out, &registry) {
                    Ok(()) => (
                        StatusCode::OK,
                        [(
                            header::CONTENT_TYPE,
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        )],
                        out,
                    )
                        .into_response(),
                    Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
                }
            }
        }),
    )
}

/// Serves a plain HTTP router.
pub async fn serve_plain(
    addr: SocketAddr,
    router: Router,
    what: &'static str,
) -> Result<(), Error> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Bind { what, addr, source })?;
    axum::serve(listener, router)
        .await
        .map_err(|source| Error::Bind { what, addr, source })
}
