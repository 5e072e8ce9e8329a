//! HTTP clients for HTTP-based scalers, shared per TLS and timeout settings (one connection pool per
//! distinct setting, not one per trigger), and upstream's common authentication modes. The cache holds
//! its clients weakly, like the SQL and Redis connection caches: a client lives as long as a scaler uses
//! it, so a rotated CA or client certificate (a new key) leaves no client behind once the scalers built
//! with the old one are dropped.
//!
//! Requests are observable: a scaler sends with [`ObservedSend::observed_send`], and while the operator
//! samples it inside [`observe`] each request is reported (who asked, status, duration) to the scope's
//! [`HttpObserver`] — upstream's `keda_scaler_http_*` metrics, without this crate knowing Prometheus.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use crate::input::{AUTH, METADATA_AUTH};
use crate::tls::ScalerTls;
use crate::{ScalerError, TriggerInput};

/// `KEDA_HTTP_DEFAULT_TIMEOUT` default, in milliseconds ([`crate::timeouts::DEFAULT_HTTP_TIMEOUT`]).
pub const DEFAULT_TIMEOUT_MS: u64 = 3000;

/// Settings that require a distinct client.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClientKey {
    pub timeout: Duration,
    pub unsafe_ssl: bool,
    /// PEM CA, client cert and key (mutual TLS), when set.
    pub ca: Option<String>,
    pub cert_and_key: Option<(String, String)>,
}

/// A cache of clients keyed by their settings, each kept while a scaler holds it.
#[derive(Default)]
pub struct HttpClients {
    clients: Mutex<HashMap<ClientKey, Weak<reqwest::Client>>>,
    overrides: ClientOverrides,
    /// Roots (system, bundled, `--ca-dir`), TLS versions and cipher suites of every client.
    tls: Arc<ScalerTls>,
    /// `KEDA_HTTP_DISABLE_KEEP_ALIVE`: no idle connection is kept, each request opens its own.
    disable_keep_alive: bool,
}

/// Where every client of an [`HttpClients`] connects and whom it trusts, beyond DNS and the built-in roots:
/// loopback stand-ins for SaaS APIs in tests, or a proxy with a private CA in an air-gapped cluster.
#[derive(Clone, Debug, Default)]
pub struct ClientOverrides {
    /// `(host, address)`: connect to `address` whenever a URL names `host`. A port written in the URL wins
    /// over the address's port.
    pub resolve: Vec<(String, std::net::SocketAddr)>,
    /// PEM CA certificates trusted in addition to the roots of [`ScalerTls`].
    pub extra_roots: Vec<String>,
}

impl HttpClients {
    /// A cache whose clients all apply `overrides`.
    pub fn with_overrides(overrides: ClientOverrides) -> HttpClients {
        HttpClients {
            overrides,
            ..HttpClients::default()
        }
    }

    /// These clients trust the roots of `tls` and speak its TLS versions and cipher suites.
    pub fn with_tls(mut self, tls: Arc<ScalerTls>) -> HttpClients {
        self.tls = tls;
        self
    }

    /// `keep_alive: false` (`KEDA_HTTP_DISABLE_KEEP_ALIVE=true`): no connection is reused.
    pub fn with_keep_alive(mut self, keep_alive: bool) -> HttpClients {
        self.disable_keep_alive = !keep_alive;
        self
    }

    /// The client for `key`: the one a live scaler already uses, else a new one. Entries whose clients
    /// were dropped are removed here, so the cache never holds more than the live clients and the keys
    /// that were dropped since the last call.
    pub fn get(&self, key: &ClientKey) -> Result<Arc<reqwest::Client>, String> {
        let mut map = self
            .clients
            .lock()
            .map_err(|_| "HTTP client cache poisoned".to_owned())?;
        if let Some(c) = map.get(key).and_then(Weak::upgrade) {
            return Ok(c);
        }
        map.retain(|_, w| w.strong_count() > 0);
        let mut builder = reqwest::Client::builder()
            .timeout(key.timeout)
            .pool_idle_timeout(Duration::from_secs(90))
            .use_preconfigured_tls(self.tls_config(key)?);
        if self.disable_keep_alive {
            builder = builder.pool_max_idle_per_host(0);
        }
        for (host, addr) in &self.overrides.resolve {
            builder = builder.resolve(host, *addr);
        }
        let client = Arc::new(
            builder
                .build()
                .map_err(|e| format!("building the HTTP client: {e}"))?,
        );
        map.insert(key.clone(), Arc::downgrade(&client));
        Ok(client)
    }

    /// The rustls configuration of the client for `key`: [`ScalerTls`]'s roots, the extra roots and the
    /// trigger's CA (or no verification with `unsafeSsl`), its client certificate.
    fn tls_config(&self, key: &ClientKey) -> Result<rustls::ClientConfig, String> {
        let builder = self.tls.builder()?;
        let builder = if key.unsafe_ssl {
            builder
                .dangerous()
                .with_custom_certificate_verifier(self.tls.accept_any())
        } else {
            let mut extra: Vec<&str> = self
                .overrides
                .extra_roots
                .iter()
                .map(String::as_str)
                .collect();
            extra.extend(key.ca.as_deref());
            let roots = self
                .tls
                .roots_with(&extra)
                .map_err(|e| format!("parsing the CA: {e}"))?;
            builder.with_root_certificates(roots)
        };
        let mut config = match &key.cert_and_key {
            Some((cert, k)) => {
                use rustls::pki_types::PrivateKeyDer;
                use rustls::pki_types::pem::PemObject;
                let err = |e: String| format!("parsing the client certificate and key: {e}");
                let certs = crate::tls::parse_pem(cert).map_err(err)?;
                let k = PrivateKeyDer::from_pem_slice(k.as_bytes())
                    .map_err(|e| err(format!("no PEM private key: {e}")))?;
                builder
                    .with_client_auth_cert(certs, k)
                    .map_err(|e| err(e.to_string()))?
            }
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(config)
    }

    /// Number of live clients (for tests and telemetry).
    pub fn len(&self) -> usize {
        self.clients
            .lock()
            .map(|m| m.values().filter(|w| w.strong_count() > 0).count())
            .unwrap_or(0)
    }

    /// Number of entries held, live or not yet removed (for tests).
    pub fn entries(&self) -> usize {
        self.clients.lock().map(|m| m.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Upstream's shared authentication modes (`authMode` / `authModes`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HttpAuth {
    pub api_key: Option<ApiKey>,
    pub basic: Option<(String, String)>,
    pub bearer: Option<String>,
    pub tls: Option<(String, String)>,
    pub ca: Option<String>,
    pub custom: Option<(String, String)>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ApiKey {
    pub key: String,
    /// `header` (default) or `query`.
    pub in_query: bool,
    /// Header or query parameter name; default `X-API-KEY` in a header, `api_key` in a query.
    pub param_name: Option<String>,
}

const MODES: &[&str] = &["apiKey", "basic", "tls", "bearer", "custom", "oauth"];

/// Parses `authMode(s)` and the parameters each mode needs.
pub fn parse_auth(input: &TriggerInput<'_>) -> Result<HttpAuth, ScalerError> {
    let mut auth = HttpAuth::default();
    let modes: Option<String> = input
        .field("authModes")
        .alias("authMode")
        .order(METADATA_AUTH)
        .optional()?;
    let modes: Vec<String> = modes
        .iter()
        .flat_map(|m| m.split(','))
        .map(|m| m.trim().to_owned())
        .filter(|m| !m.is_empty())
        .collect();
    for m in &modes {
        if !MODES.contains(&m.as_str()) {
            return Err(input.error(
                "authModes",
                format!("{m:?} must be one of {}", MODES.join(", ")),
            ));
        }
    }
    let exclusive = modes
        .iter()
        .filter(|m| ["bearer", "basic", "oauth"].contains(&m.as_str()))
        .count();
    if exclusive > 1 {
        return Err(input.error("authModes", "must contain only one of bearer, basic, oauth"));
    }
    for m in &modes {
        match m.as_str() {
            "apiKey" => {
                let key: String = input.field("apiKey").order(METADATA_AUTH).required()?;
                let method: String = input
                    .field("method")
                    .order(METADATA_AUTH)
                    .default("header")
                    .one_of(&["header", "query"])
                    .required()?;
                let param_name = input
                    .field("keyParamName")
                    .order(METADATA_AUTH)
                    .optional()?;
                auth.api_key = Some(ApiKey {
                    key,
                    in_query: method == "query",
                    param_name,
                });
            }
            "basic" => {
                let user: String = input.field("username").order(AUTH).required()?;
                let pass: String = input
                    .field("password")
                    .order(AUTH)
                    .optional()?
                    .unwrap_or_default();
                auth.basic = Some((user, pass));
            }
            "bearer" => {
                auth.bearer = Some(
                    input
                        .field("bearerToken")
                        .alias("token")
                        .order(AUTH)
                        .required()?,
                )
            }
            "tls" => {
                let cert: String = input.field("cert").order(AUTH).required()?;
                let key: String = input.field("key").order(AUTH).required()?;
                auth.tls = Some((cert, key));
            }
            "custom" => {
                let header: String = input.field("customAuthHeader").order(AUTH).required()?;
                let value: String = input.field("customAuthValue").order(AUTH).required()?;
                auth.custom = Some((header, value));
            }
            _ => {
                return Err(input.error(
                    "authModes",
                    format!("{m:?} is not supported by keda-rs yet"),
                ));
            }
        }
    }
    auth.ca = input.field("ca").order(AUTH).optional()?;
    Ok(auth)
}

impl HttpAuth {
    /// Adds the credentials to a request.
    pub fn apply(&self, mut req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        if let Some(k) = &self.api_key {
            if k.in_query {
                let name = k.param_name.as_deref().unwrap_or("api_key");
                req = req.query(&[(name, k.key.as_str())]);
            } else {
                let name = k.param_name.as_deref().unwrap_or("X-API-KEY");
                req = req.header(name, &k.key);
            }
        }
        if let Some((u, p)) = &self.basic {
            req = req.basic_auth(u, Some(p));
        }
        if let Some(t) = &self.bearer {
            req = req.bearer_auth(t);
        }
        if let Some((h, v)) = &self.custom {
            req = req.header(h.as_str(), v.as_str());
        }
        req
    }
}

/// Upstream's `map[string]string` metadata syntax, `k1=v1,k2=v2`: entries split on `,`, each must be exactly
/// one `key=value` (both trimmed). Order is kept; a missing or empty field is an empty list.
pub fn parse_key_values(
    input: &TriggerInput<'_>,
    field: &'static str,
) -> Result<Vec<(String, String)>, ScalerError> {
    let Some(raw) = input.field(field).optional::<String>()? else {
        return Ok(Vec::new());
    };
    raw.split(',')
        .map(|entry| {
            let entry = entry.trim();
            let mut parts = entry.split('=');
            match (parts.next(), parts.next(), parts.next()) {
                (Some(k), Some(v), None) => Ok((k.trim().to_owned(), v.trim().to_owned())),
                _ => Err(input.error(field, format!("expected format key=value, got {entry:?}"))),
            }
        })
        .collect()
}

/// Whom the requests of one sample are made for: upstream's labels of `keda_scaler_http_requests_total`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct RequestLabels {
    /// Namespace of the ScaledObject / ScaledJob.
    pub namespace: String,
    /// Name of the ScaledObject / ScaledJob.
    pub scaled_resource: String,
    /// The trigger type (`metrics-api`), as upstream's `scaler` label.
    pub scaler: String,
    /// `triggers[].name`, empty when unset.
    pub trigger_name: String,
    /// The external metric name (`s0-…`).
    pub metric_name: String,
}

/// How one request ended: upstream's `status_code` label is the code, or `error` when no response came.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HttpOutcome {
    Status(u16),
    Error,
}

impl HttpOutcome {
    pub fn status_code_label(self) -> String {
        match self {
            HttpOutcome::Status(code) => code.to_string(),
            HttpOutcome::Error => "error".to_owned(),
        }
    }
}

/// Told about every request a scaler sends inside an [`observe`] scope (the operator records metrics).
pub trait HttpObserver: Send + Sync {
    fn observe(&self, labels: &RequestLabels, outcome: HttpOutcome, duration: Duration);
}

#[derive(Clone)]
struct Scope {
    labels: Arc<RequestLabels>,
    observer: Arc<dyn HttpObserver>,
}

tokio::task_local! {
    static SCOPE: Scope;
}

/// Runs `fut` (typically one `Scaler::sample`) so that the requests it sends are reported to `observer`
/// with `labels`. Requests outside such a scope (for example while building a scaler) are not reported,
/// as upstream only counts requests made during metric collection.
pub async fn observe<F: Future>(
    labels: RequestLabels,
    observer: Arc<dyn HttpObserver>,
    fut: F,
) -> F::Output {
    SCOPE
        .scope(
            Scope {
                labels: Arc::new(labels),
                observer,
            },
            fut,
        )
        .await
}

/// `send`, reported to the observer of the enclosing [`observe`] scope. Every HTTP scaler sends this way.
pub trait ObservedSend {
    fn observed_send(
        self,
    ) -> impl Future<Output = Result<reqwest::Response, reqwest::Error>> + Send;
}

impl ObservedSend for reqwest::RequestBuilder {
    async fn observed_send(self) -> Result<reqwest::Response, reqwest::Error> {
        let scope = SCOPE.try_with(Scope::clone).ok();
        let started = Instant::now();
        let result = self.send().await;
        if let Some(scope) = scope {
            let outcome = match &result {
                Ok(resp) => HttpOutcome::Status(resp.status().as_u16()),
                Err(_) => HttpOutcome::Error,
            };
            scope
                .observer
                .observe(&scope.labels, outcome, started.elapsed());
        }
        result
    }
}

#[cfg(test)]
mod cache_tests {
    use super::*;

    fn key(ca: Option<&str>) -> ClientKey {
        ClientKey {
            timeout: Duration::from_secs(3),
            unsafe_ssl: false,
            ca: ca.map(str::to_owned),
            cert_and_key: None,
        }
    }

    #[test]
    fn clients_are_shared_while_used_and_dropped_after() {
        let cache = HttpClients::default();
        let a = cache.get(&key(None)).expect("client");
        let b = cache.get(&key(None)).expect("client");
        assert!(Arc::ptr_eq(&a, &b), "one client per setting");
        assert_eq!(cache.len(), 1);
        drop((a, b));
        assert_eq!(cache.len(), 0, "no scaler uses it any more");
        let _c = cache.get(&key(None)).expect("a new client");
        assert_eq!(cache.entries(), 1);
    }

    /// A client certificate or CA that rotates every so often: each rotation is a new key. The scalers
    /// built with the old one are dropped when the loop rebuilds them, and so is their client.
    #[test]
    fn rotated_certificates_do_not_accumulate_clients() {
        let cache = HttpClients::default();
        let mut live = Vec::new();
        for rotation in 0..20 {
            let ca_key = rcgen::KeyPair::generate().expect("key");
            let ca = rcgen::CertificateParams::new(vec![format!("ca-{rotation}")])
                .expect("params")
                .self_signed(&ca_key)
                .expect("CA");
            live = vec![cache.get(&key(Some(&ca.pem()))).expect("client")];
            assert!(
                cache.entries() <= 2,
                "rotation {rotation}: {}",
                cache.entries()
            );
        }
        assert_eq!(cache.len(), 1);
        drop(live);
        assert_eq!(cache.len(), 0);
    }
}

#[cfg(test)]
mod observe_tests {
    use super::*;

    #[derive(Default)]
    struct Recorder(Mutex<Vec<(RequestLabels, HttpOutcome)>>);

    impl HttpObserver for Recorder {
        fn observe(&self, labels: &RequestLabels, outcome: HttpOutcome, _duration: Duration) {
            if let Ok(mut seen) = self.0.lock() {
                seen.push((labels.clone(), outcome));
            }
        }
    }

    /// A loopback server answering every request with `status`; returns its URL.
    async fn serve(status: u16) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let mut buf = [0u8; 2048];
                let _ = sock.read(&mut buf).await;
                let resp = format!(
                    "HTTP/1.1 {status} X\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{{}}"
                );
                let _ = sock.write_all(resp.as_bytes()).await;
            }
        });
        format!("http://{addr}/")
    }

    fn labels() -> RequestLabels {
        RequestLabels {
            namespace: "shop".into(),
            scaled_resource: "web".into(),
            scaler: "metrics-api".into(),
            trigger_name: String::new(),
            metric_name: "s0-metric-api-value".into(),
        }
    }

    #[tokio::test]
    async fn requests_inside_a_scope_are_reported_with_their_status() {
        let url = serve(503).await;
        let recorder = Arc::new(Recorder::default());
        let client = reqwest::Client::new();
        let resp = observe(labels(), recorder.clone(), client.get(&url).observed_send())
            .await
            .expect("response");
        assert_eq!(resp.status().as_u16(), 503);
        let seen = recorder.0.lock().expect("lock").clone();
        assert_eq!(seen, vec![(labels(), HttpOutcome::Status(503))]);
        assert_eq!(seen[0].1.status_code_label(), "503");
    }

    #[tokio::test]
    async fn a_failed_request_is_reported_as_error() {
        // Nothing listens on a port just released.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let recorder = Arc::new(Recorder::default());
        let client = reqwest::Client::new();
        let result = observe(
            labels(),
            recorder.clone(),
            client
                .get(format!("http://127.0.0.1:{port}/"))
                .observed_send(),
        )
        .await;
        assert!(result.is_err());
        let seen = recorder.0.lock().expect("lock").clone();
        assert_eq!(seen, vec![(labels(), HttpOutcome::Error)]);
        assert_eq!(HttpOutcome::Error.status_code_label(), "error");
    }

    #[tokio::test]
    async fn requests_outside_a_scope_are_not_reported() {
        let url = serve(200).await;
        let recorder = Arc::new(Recorder::default());
        let client = reqwest::Client::new();
        client.get(&url).observed_send().await.expect("response");
        observe(labels(), recorder.clone(), async {}).await;
        assert!(recorder.0.lock().expect("lock").is_empty());
    }
}
