//! `etcd`: the number stored under one key (`watchKey`), read with etcd's v3 gRPC API (`KV.Range`).
//!
//! The client is generated from `proto/etcd.proto` (the slice of etcd's API used here) and speaks gRPC
//! through tonic over this crate's TLS ([`crate::tls::ScalerTls`]), so `--ca-dir` and
//! `KEDA_HTTP_MIN_TLS_VERSION` apply as for every scaler. `endpoints` are tried in turn from the last one
//! that answered (upstream's client balances over them); one poll has upstream's 5 s for its `Get`,
//! connecting and authenticating included. With `username` and `password` the scaler first exchanges
//! them for a token (`Auth.Authenticate`) and sends it with each read, authenticating again when the
//! server no longer accepts it.
//!
//! A missing key or a value that is not a number is an error, as upstream. Upstream's etcd scaler is
//! also a push scaler (a watch on the key, restarted when no progress notification arrives within twice
//! `watchProgressNotifyInterval` seconds); keda-rs parses and validates `watchProgressNotifyInterval` but
//! only polls.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Mutex;
use tonic::transport::Channel;

use crate::input::{AUTH, METADATA};
use crate::{
    BuildContext, MetricSpec, MetricTargetType, Sample, Scaler, ScalerError, ScalerTimeouts,
    Source, TimeoutDefaults, TriggerConfig, TriggerInput, TriggerRef,
};

/// Generated from `proto/etcd.proto`.
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod pb {
    tonic::include_proto!("etcdserverpb");
}

pub const TRIGGER_TYPE: &str = "etcd";

/// Upstream's bound of one `Get` (and its client's dial timeout).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// etcd's client port, for endpoints written without one.
const DEFAULT_PORT: u16 = 2379;

const AUTH_ENV: &[Source] = &[Source::AuthParams, Source::ResolvedEnv];

#[derive(Clone, Debug, PartialEq)]
pub struct EtcdConfig {
    pub index: usize,
    /// As written, split at commas and trimmed.
    pub endpoints: Vec<String>,
    pub watch_key: String,
    pub value: f64,
    pub activation_value: f64,
    /// Seconds; validated as upstream (its watch uses it), not used by polling.
    pub watch_progress_notify_interval: i64,
    pub username: Option<String>,
    pub password: Option<String>,
    /// `tls: enable`.
    pub tls: bool,
    pub ca: Option<String>,
    pub cert: Option<String>,
    pub key: Option<String>,
    pub key_password: Option<String>,
    pub metric_type: MetricTargetType,
}

pub fn parse(input: &TriggerInput<'_>) -> Result<Box<dyn TriggerConfig>, ScalerError> {
    Ok(Box::new(parse_config(input)?))
}

pub fn parse_config(input: &TriggerInput<'_>) -> Result<EtcdConfig, ScalerError> {
    let metric_type = input.external_metric_type()?;
    let endpoints: String = input.field("endpoints").order(METADATA).required()?;
    let endpoints: Vec<String> = endpoints
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(str::to_owned)
        .collect();
    if endpoints.is_empty() {
        return Err(input.error("endpoints", "no endpoint given"));
    }
    let watch_key: String = input.field("watchKey").order(METADATA).required()?;
    let value: f64 = input.field("value").order(METADATA).required()?;
    let activation_value: f64 = input
        .field("activationValue")
        .order(METADATA)
        .default("0")
        .required()?;
    let watch_progress_notify_interval: i64 = input
        .field("watchProgressNotifyInterval")
        .order(METADATA)
        .default("600")
        .required()?;
    let username: Option<String> = input.field("username").order(AUTH_ENV).optional()?;
    let password: Option<String> = input.field("password").order(AUTH_ENV).optional()?;
    let tls: String = input
        .field("tls")
        .order(AUTH)
        .default("disable")
        .required()?;
    let cert: Option<String> = input.field("cert").order(AUTH).optional()?;
    let key: Option<String> = input.field("key").order(AUTH).optional()?;
    let key_password: Option<String> = input.field("keyPassword").order(AUTH).optional()?;
    let ca: Option<String> = input.field("ca").order(AUTH).optional()?;

    // Upstream's checks, in its order.
    if watch_progress_notify_interval <= 0 {
        return Err(input.error(
            "watchProgressNotifyInterval",
            "watchProgressNotifyInterval must be greater than 0",
        ));
    }
    let tls = match tls.as_str() {
        "enable" => {
            if cert.is_none() && key.is_some() {
                return Err(input.error("cert", "cert must be provided with key"));
            }
            if key.is_none() && cert.is_some() {
                return Err(input.error("key", "key must be provided with cert"));
            }
            true
        }
        "disable" => false,
        other => {
            return Err(input.error("tls", format!("incorrect value for TLS given: {other}")));
        }
    };
    if password.is_some() && username.is_none() {
        return Err(input.error("username", "username must be provided with password"));
    }
    if username.is_some() && password.is_none() {
        return Err(input.error("password", "password must be provided with username"));
    }
    Ok(EtcdConfig {
        index: input.index,
        endpoints,
        watch_key,
        value,
        activation_value,
        watch_progress_notify_interval,
        username,
        password,
        tls,
        ca,
        cert,
        key,
        key_password,
        metric_type,
    })
}

/// Where one endpoint is reached: host, port and whether TLS is spoken (`tls: enable`, or `https://`).
fn split_endpoint(endpoint: &str, tls: bool) -> Result<(String, u16, bool), String> {
    let (rest, tls) = if let Some(r) = endpoint.strip_prefix("https://") {
        (r, true)
    } else if let Some(r) = endpoint.strip_prefix("http://") {
        (r, tls)
    } else {
        (endpoint, tls)
    };
    let rest = rest.trim_end_matches('/');
    let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .ok_or_else(|| format!("{endpoint:?}: unclosed '['"))?;
        (host, after.strip_prefix(':'))
    } else {
        match rest.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') => (h, Some(p)),
            _ => (rest, None),
        }
    };
    if host.is_empty() || host.contains('/') {
        return Err(format!("{endpoint:?} is not host:port"));
    }
    let port = match port {
        None => DEFAULT_PORT,
        Some(p) => p
            .parse()
            .map_err(|_| format!("{endpoint:?}: port {p:?} is not a number"))?,
    };
    Ok((host.to_owned(), port, tls))
}

impl EtcdConfig {
    fn config_error(&self, field: &str, reason: String) -> ScalerError {
        ScalerError::Config {
            trigger: self.trigger(),
            field: field.into(),
            reason,
        }
    }

    /// The rustls client of `tls: enable`: this process's roots plus `ca`, the client certificate when
    /// given, ALPN `h2`.
    fn client_tls(&self, tls: &crate::tls::ScalerTls) -> Result<rustls::ClientConfig, ScalerError> {
        let builder = tls.builder().map_err(|e| self.config_error("tls", e))?;
        let extra: Vec<&str> = self.ca.iter().map(String::as_str).collect();
        let roots = tls
            .roots_with(&extra)
            .map_err(|e| self.config_error("ca", format!("parsing ca: {e}")))?;
        let builder = builder.with_root_certificates(roots);
        let mut config = match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => {
                use rustls::pki_types::PrivateKeyDer;
                use rustls::pki_types::pem::PemObject;
                let certs = crate::tls::parse_pem(cert)
                    .map_err(|e| self.config_error("cert", format!("parsing cert: {e}")))?;
                let key = PrivateKeyDer::from_pem_slice(key.as_bytes())
                    .map_err(|e| self.config_error("key", format!("no PEM private key: {e}")))?;
                builder
                    .with_client_auth_cert(certs, key)
                    .map_err(|e| self.config_error("cert", e.to_string()))?
            }
            _ => builder.with_no_client_auth(),
        };
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(config)
    }
}

#[async_trait::async_trait]
impl TriggerConfig for EtcdConfig {
    fn metric_spec(&self) -> MetricSpec {
        MetricSpec::External {
            metric_name: crate::external_metric_name(
                self.index,
                &format!("etcd-{}", self.watch_key),
            ),
            target_type: self.metric_type,
            target: self.value,
        }
    }

    fn activation_threshold(&self) -> Option<f64> {
        Some(self.activation_value)
    }

    fn trigger(&self) -> TriggerRef {
        TriggerRef {
            index: self.index,
            trigger_type: TRIGGER_TYPE.into(),
        }
    }

    fn timeouts(&self, _defaults: &TimeoutDefaults) -> ScalerTimeouts {
        // Channels connect lazily: the build does no IO.
        ScalerTimeouts::http(REQUEST_TIMEOUT)
    }

    async fn build(&self, ctx: &BuildContext) -> Result<Arc<dyn Scaler>, ScalerError> {
        if self.key_password.is_some() {
            return Err(self.config_error(
                "keyPassword",
                "encrypted client keys are not supported by keda-rs; provide an unencrypted key"
                    .into(),
            ));
        }
        let mut tls_config: Option<Arc<rustls::ClientConfig>> = None;
        let mut channels = Vec::with_capacity(self.endpoints.len());
        for endpoint in &self.endpoints {
            let (host, port, tls) = split_endpoint(endpoint, self.tls)
                .map_err(|e| self.config_error("endpoints", e))?;
            let tls = if tls {
                if tls_config.is_none() {
                    tls_config = Some(Arc::new(self.client_tls(&ctx.tls)?));
                }
                tls_config.clone()
            } else {
                None
            };
            let channel = crate::grpc::lazy_channel(host, port, tls, |endpoint| {
                endpoint.connect_timeout(REQUEST_TIMEOUT)
            })
            .map_err(|e| self.config_error("endpoints", format!("{endpoint:?}: {e}")))?;
            channels.push((endpoint.clone(), channel));
        }
        Ok(Arc::new(EtcdScaler {
            config: self.clone(),
            channels,
            next: AtomicUsize::new(0),
            token: Mutex::new(None),
        }))
    }
}

struct EtcdScaler {
    config: EtcdConfig,
    /// One lazily connected channel per endpoint, as written.
    channels: Vec<(String, Channel)>,
    /// The endpoint to try first: the last one that answered.
    next: AtomicUsize,
    /// The auth token of `username`/`password`, once obtained.
    token: Mutex<Option<String>>,
}

/// The value stored under the key, as upstream reads it (`strconv.ParseFloat`).
pub fn value_of(key: &str, kvs: &[pb::KeyValue]) -> Result<f64, String> {
    let Some(kv) = kvs.first() else {
        return Err(format!("watchKey {key} doesn't exist"));
    };
    let text = String::from_utf8_lossy(&kv.value);
    text.parse::<f64>()
        .map_err(|_| format!("the value of {key}, {text:?}, is not a number"))
}

/// Failures worth trying the next endpoint for: the server could not be reached or is not serving.
fn endpoint_down(status: &tonic::Status) -> bool {
    matches!(
        status.code(),
        tonic::Code::Unavailable | tonic::Code::DeadlineExceeded | tonic::Code::Unknown
    )
}

/// The server no longer accepts the token (expired, or the server restarted with simple tokens).
fn token_rejected(status: &tonic::Status) -> bool {
    status.code() == tonic::Code::Unauthenticated || status.message().contains("invalid auth token")
}

impl EtcdScaler {
    fn backend(&self, action: &'static str, message: String) -> ScalerError {
        ScalerError::Backend {
            trigger: self.config.trigger(),
            action,
            message,
        }
    }

    async fn authenticate(&self, channel: &Channel) -> Result<Option<String>, tonic::Status> {
        let (Some(name), Some(password)) = (&self.config.username, &self.config.password) else {
            return Ok(None);
        };
        let resp = pb::auth_client::AuthClient::new(channel.clone())
            .authenticate(pb::AuthenticateRequest {
                name: name.clone(),
                password: password.clone(),
            })
            .await?;
        Ok(Some(resp.into_inner().token))
    }

    /// One `Range` of the key on `channel`, authenticating first when needed (and once more when the
    /// token is refused).
    async fn range(&self, channel: &Channel) -> Result<pb::RangeResponse, tonic::Status> {
        let mut token = self.token.lock().await;
        if token.is_none() {
            *token = self.authenticate(channel).await?;
        }
        let mut retried = false;
        loop {
            let mut request = tonic::Request::new(pb::RangeRequest {
                key: self.config.watch_key.as_bytes().to_vec(),
                ..Default::default()
            });
            if let Some(t) = token.as_deref() {
                let value = t
                    .parse()
                    .map_err(|_| tonic::Status::internal("the auth token is not a header value"))?;
                request.metadata_mut().insert("token", value);
            }
            match pb::kv_client::KvClient::new(channel.clone())
                .range(request)
                .await
            {
                Ok(resp) => return Ok(resp.into_inner()),
                Err(status) if token.is_some() && !retried && token_rejected(&status) => {
                    retried = true;
                    *token = self.authenticate(channel).await?;
                }
                Err(status) => return Err(status),
            }
        }
    }

    async fn read(&self) -> Result<f64, ScalerError> {
        let n = self.channels.len();
        let start = self.next.load(Ordering::Relaxed) % n;
        let mut failures = Vec::new();
        for i in 0..n {
            let at = (start + i) % n;
            let (endpoint, channel) = &self.channels[at];
            match self.range(channel).await {
                Ok(resp) => {
                    self.next.store(at, Ordering::Relaxed);
                    return value_of(&self.config.watch_key, &resp.kvs)
                        .map_err(|m| self.backend("reading the key", m));
                }
                Err(status) if endpoint_down(&status) => {
                    failures.push(format!("{endpoint}: {}", status.message()));
                }
                Err(status) => {
                    return Err(self.backend(
                        "reading the key",
                        format!("{endpoint}: {:?}: {}", status.code(), status.message()),
                    ));
                }
            }
        }
        Err(self.backend("connecting to etcd", failures.join("; ")))
    }
}

#[async_trait::async_trait]
impl Scaler for EtcdScaler {
    async fn sample(&self) -> Result<Sample, ScalerError> {
        let value = tokio::time::timeout(REQUEST_TIMEOUT, self.read())
            .await
            .map_err(|_| {
                self.backend(
                    "reading the key",
                    format!("no answer within {REQUEST_TIMEOUT:?}"),
                )
            })??;
        Ok(Sample {
            value,
            active: crate::is_active(value, self.config.activation_value),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        assert_eq!(
            split_endpoint("172.0.0.1:2379", false),
            Ok(("172.0.0.1".into(), 2379, false))
        );
        assert_eq!(
            split_endpoint("https://etcd.svc:2380", false),
            Ok(("etcd.svc".into(), 2380, true))
        );
        assert_eq!(
            split_endpoint("http://etcd", true),
            Ok(("etcd".into(), 2379, true))
        );
        assert_eq!(
            split_endpoint("[::1]:7", false),
            Ok(("::1".into(), 7, false))
        );
        assert!(split_endpoint("etcd:port", false).is_err());
    }

    #[test]
    fn values() {
        let kv = |v: &str| pb::KeyValue {
            value: v.as_bytes().to_vec(),
            ..Default::default()
        };
        assert_eq!(value_of("k", &[kv("5.5")]), Ok(5.5));
        assert_eq!(
            value_of("k", &[]),
            Err("watchKey k doesn't exist".to_owned())
        );
        assert!(value_of("k", &[kv("lots")]).is_err());
    }
}
