//! AMQP 0-9-1 through lapin: a passive `queue.declare` answers the ready messages of a queue.
//!
//! One connection per broker URL (credentials and vhost included) and TLS setting, shared by every
//! trigger with the same ones ([`AmqpConnections`]); each scaler has its own channel on it, reopened after
//! an error (the broker closes a channel on a missing queue), and the connection is reopened when it
//! broke. TLS is rustls with the scalers' roots and versions ([`ScalerTls`]), the trigger's CA and client
//! certificate; the TCP connect, the TLS handshake and the AMQP handshake are bounded by
//! [`AMQP_CONNECT_TIMEOUT`].

use std::sync::Arc;
use std::time::Duration;

use lapin::options::QueueDeclareOptions;
use lapin::tcp::{AsyncTcpStream, RustlsConnector};
use lapin::types::FieldTable;
use lapin::uri::{AMQPScheme, AMQPUri, SASLMechanism};
use lapin::{Channel, Connection, ConnectionProperties};
use rustls::pki_types::PrivateKeyDer;
use rustls::pki_types::pem::PemObject;

use super::{
    AMQP_CONNECT_TIMEOUT, AMQP_OPERATION_TIMEOUT, QueueStatus, RabbitMqConfig, TlsParams,
    redact_url,
};
use crate::client_cache::ClientCache;
use crate::tls::ScalerTls;
use crate::{BuildContext, Sample, Scaler, ScalerError, TriggerConfig, TriggerRef};

/// What makes two triggers share a connection: the final URI (credentials and vhost applied) and the
/// TLS settings.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct ConnectionKey {
    uri: String,
    tls: Option<TlsParams>,
    unsafe_ssl: bool,
}

/// The broker URI of `config`: `host` with `vhostName` and `username`/`password` applied (as upstream),
/// EXTERNAL authentication when a client certificate is the only credential, and the host name as written
/// (the URI parser would put `localhost` in place of an IP address).
fn broker_uri(config: &RabbitMqConfig) -> Result<(AMQPUri, String), String> {
    let url = reqwest::Url::parse(&config.host).map_err(|e| format!("not a valid URL: {e}"))?;
    let mut uri: AMQPUri = config.host.parse().map_err(|e: String| redact_url(&e))?;
    let host = url
        .host_str()
        .map(|h| h.trim_start_matches('[').trim_end_matches(']').to_owned())
        .ok_or("the URL names no host")?;
    uri.authority.host = host.clone();
    if let Some(vhost) = &config.vhost_name {
        uri.vhost = vhost.clone();
    }
    if let (Some(u), Some(p)) = (&config.username, &config.password) {
        uri.authority.userinfo.username = u.clone();
        uri.authority.userinfo.password = p.clone();
    }
    let client_cert_only = config
        .tls
        .as_ref()
        .is_some_and(|t| t.cert.is_some() && t.key.is_some())
        && config.username.is_none()
        && url.password().is_none();
    if client_cert_only && uri.query.auth_mechanism.is_none() {
        uri.query.auth_mechanism = Some(SASLMechanism::External);
    }
    Ok((uri, host))
}

/// The rustls configuration of an `amqps://` connection: upstream uses the trigger's TLS settings only
/// with `tls: enable` (then `unsafeSsl` skips verification), else the default trust.
fn tls_config(
    tls: &ScalerTls,
    params: Option<&TlsParams>,
    unsafe_ssl: bool,
) -> Result<rustls::ClientConfig, (&'static str, String)> {
    let builder = tls.builder().map_err(|e| ("tls", e))?;
    let params = params.cloned().unwrap_or_default();
    if params.key_password.is_some() {
        return Err((
            "keyPassword",
            "encrypted client keys are not supported by keda-rs; provide an unencrypted key".into(),
        ));
    }
    let builder = if unsafe_ssl {
        builder
            .dangerous()
            .with_custom_certificate_verifier(tls.accept_any())
    } else {
        let extra: Vec<&str> = params.ca.as_deref().into_iter().collect();
        let roots = tls
            .roots_with(&extra)
            .map_err(|e| ("ca", format!("parsing the CA: {e}")))?;
        builder.with_root_certificates(roots)
    };
    match (&params.cert, &params.key) {
        (Some(cert), Some(key)) => {
            let certs = crate::tls::parse_pem(cert).map_err(|e| ("cert", e))?;
            let key = PrivateKeyDer::from_pem_slice(key.as_bytes())
                .map_err(|e| ("key", format!("no PEM private key: {e}")))?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| ("cert", e.to_string()))
        }
        _ => Ok(builder.with_no_client_auth()),
    }
}

/// One broker connection, reopened after it broke.
pub(crate) struct AmqpConnection {
    uri: AMQPUri,
    host: String,
    tls: Option<Arc<rustls::ClientConfig>>,
    current: tokio::sync::Mutex<Option<Arc<Connection>>>,
}

impl AmqpConnection {
    /// The live connection, or a new one.
    async fn connection(&self) -> Result<Arc<Connection>, String> {
        let mut current = self.current.lock().await;
        if let Some(c) = current.as_ref().filter(|c| c.status().connected()) {
            return Ok(c.clone());
        }
        if let Some(old) = current.take() {
            // Best effort: a broken connection may not answer.
            let _ = tokio::time::timeout(Duration::from_secs(1), old.close(200, "".into())).await;
        }
        let conn = tokio::time::timeout(AMQP_CONNECT_TIMEOUT, self.open())
            .await
            .map_err(|_| format!("no connection within {AMQP_CONNECT_TIMEOUT:?}"))??;
        let conn = Arc::new(conn);
        *current = Some(conn.clone());
        Ok(conn)
    }

    async fn open(&self) -> Result<Connection, String> {
        let runtime = lapin::runtime::default_runtime().map_err(|e| e.to_string())?;
        let host = self.host.clone();
        let port = self.uri.authority.port;
        let tls = match self.uri.scheme {
            AMQPScheme::AMQPS => Some(self.tls.clone().ok_or("no TLS configuration")?),
            AMQPScheme::AMQP => None,
        };
        // Runs on lapin's I/O thread; bounded so that thread never waits on a silent server forever.
        let connect = async move |_uri: AMQPUri, runtime| {
            let dial = async {
                let addrs: Vec<std::net::SocketAddr> =
                    tokio::net::lookup_host((host.as_str(), port))
                        .await?
                        .collect();
                let stream = AsyncTcpStream::connect(&runtime, addrs).await?;
                match &tls {
                    Some(config) => {
                        let connector = RustlsConnector::from(config.clone());
                        stream.into_rustls(&connector, &host).await
                    }
                    None => Ok(stream),
                }
            };
            match tokio::time::timeout(AMQP_CONNECT_TIMEOUT, dial).await {
                Ok(stream) => Ok(stream?),
                Err(_) => Err(std::io::Error::from(std::io::ErrorKind::TimedOut).into()),
            }
        };
        Connection::connector(
            self.uri.clone(),
            runtime,
            connect,
            // Upstream names each connection after its object; a shared one is named after the operator.
            ConnectionProperties::default().with_connection_name("keda-rs".into()),
        )
        .await
        .map_err(|e| redact_url(&e.to_string()))
    }

    async fn channel(&self) -> Result<Channel, String> {
        let conn = self.connection().await?;
        conn.create_channel()
            .await
            .map_err(|e| format!("opening a channel: {e}"))
    }
}

/// AMQP connections shared by triggers with the same broker, credentials, vhost and TLS settings; a
/// connection closes with the last scaler using it.
#[derive(Default)]
pub struct AmqpConnections(ClientCache<ConnectionKey, AmqpConnection>);

impl AmqpConnections {
    /// Number of live shared connections (for tests and telemetry).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

pub(super) struct AmqpScaler {
    config: RabbitMqConfig,
    connection: Arc<AmqpConnection>,
    channel: tokio::sync::Mutex<Option<Channel>>,
}

impl AmqpScaler {
    /// Opens (or shares) the connection now: upstream dials at build, so an unreachable broker or wrong
    /// credentials fail the build.
    pub(super) async fn new(
        config: &RabbitMqConfig,
        ctx: &BuildContext,
    ) -> Result<AmqpScaler, ScalerError> {
        let (uri, host) = broker_uri(config).map_err(|r| config.config_error("host", r))?;
        let use_trigger_tls = config.tls.is_some();
        let tls = match uri.scheme {
            AMQPScheme::AMQPS => Some(Arc::new(
                tls_config(
                    &ctx.tls,
                    config.tls.as_ref(),
                    use_trigger_tls && config.unsafe_ssl,
                )
                .map_err(|(f, r)| config.config_error(f, r))?,
            )),
            AMQPScheme::AMQP => None,
        };
        let key = ConnectionKey {
            uri: uri.to_string(),
            tls: config.tls.clone(),
            unsafe_ssl: use_trigger_tls && config.unsafe_ssl,
        };
        let trigger = config.trigger();
        let connection = ctx
            .rabbitmq
            .0
            .get_or_connect(&key, async {
                let conn = AmqpConnection {
                    uri,
                    host,
                    tls,
                    current: tokio::sync::Mutex::new(None),
                };
                conn.connection()
                    .await
                    .map_err(|m| connect_error(&trigger, m))?;
                Ok::<_, ScalerError>(conn)
            })
            .await?;
        // A shared connection may have broken since: reopened now, so the build fails as upstream's dial.
        connection
            .connection()
            .await
            .map_err(|m| connect_error(&config.trigger(), m))?;
        Ok(AmqpScaler {
            config: config.clone(),
            connection,
            channel: tokio::sync::Mutex::new(None),
        })
    }

    async fn messages(&self) -> Result<u32, (&'static str, String)> {
        let mut slot = self.channel.lock().await;
        let channel = match slot.take().filter(|c| c.status().connected()) {
            Some(c) => c,
            None => self
                .connection
                .channel()
                .await
                .map_err(|m| ("connecting to RabbitMQ", m))?,
        };
        let declare = channel.queue_declare(
            self.config.queue_name.as_str().into(),
            QueueDeclareOptions {
                passive: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        );
        let queue = tokio::time::timeout(AMQP_OPERATION_TIMEOUT, declare)
            .await
            .map_err(|_| {
                (
                    "inspecting RabbitMQ",
                    format!("no answer within {AMQP_OPERATION_TIMEOUT:?}"),
                )
            })?
            .map_err(|e| ("inspecting RabbitMQ", e.to_string()))?;
        // Kept only after a success: an error may have closed it.
        *slot = Some(channel);
        Ok(queue.message_count())
    }
}

fn connect_error(trigger: &TriggerRef, message: String) -> ScalerError {
    ScalerError::Backend {
        trigger: trigger.clone(),
        action: "connecting to RabbitMQ",
        message: redact_url(&message),
    }
}

#[async_trait::async_trait]
impl Scaler for AmqpScaler {
    async fn sample(&self) -> Result<Sample, ScalerError> {
        let messages = self
            .messages()
            .await
            .map_err(|(action, m)| self.config.backend_error(action, m))?;
        Ok(self.config.evaluate(QueueStatus {
            messages: i64::from(messages),
            ..QueueStatus::default()
        }))
    }
}
