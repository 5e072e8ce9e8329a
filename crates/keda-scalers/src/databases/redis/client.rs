//! The connections to the three topologies, shared per connection settings, their timeouts, and the
//! decoding of replies.

use std::sync::Arc;
use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use ::redis::cluster_async::ClusterConnection;
use ::redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use ::redis::{
    AsyncConnectionConfig, ClientTlsConfig, Cmd, ConnectionAddr, IntoConnectionInfo,
    RedisConnectionInfo, RedisError, RedisResult, TlsCertificates, TlsMode, Value,
};

use super::connection::{RedisConnection, RedisKind, RedisTls, split_host_port};
use crate::client_cache::ClientCache;
use crate::tls::ScalerTls;
use crate::{ScalerError, ScalerTimeouts, TriggerRef};

/// go-redis defaults, which upstream keeps.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(3);

/// Bound of opening a shared connection at build: two connection attempts (or one sentinel lookup,
/// `2 × CONNECT_TIMEOUT`), then a `PING` within `RESPONSE_TIMEOUT`, with room for the retry delay.
pub const BUILD_TIMEOUT: Duration = Duration::from_secs(15);

/// Bound of one sample running `commands` commands: a reconnection (a sentinel lookup at worst,
/// `2 × CONNECT_TIMEOUT`) plus `RESPONSE_TIMEOUT` per command. Upstream relies on go-redis' per-command
/// timeouts in the same way.
pub fn sample_timeout(commands: u32) -> Duration {
    CONNECT_TIMEOUT * 2 + RESPONSE_TIMEOUT * commands
}

/// The bounds of a Redis trigger whose sample runs `commands` commands.
pub(crate) fn timeouts(commands: u32) -> ScalerTimeouts {
    ScalerTimeouts {
        build: Some(BUILD_TIMEOUT),
        sample: Some(sample_timeout(commands)),
    }
}
/// Live connections, shared by every trigger with the same connection settings; a connection closes
/// when the last scaler using it is dropped.
#[derive(Default)]
pub struct RedisClients(ClientCache<RedisConnection, RedisHandle>);

impl RedisClients {
    /// Number of live shared connections (for tests and telemetry).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A shared connection for `conn`, connecting (and checking the server answers) when needed.
    pub(crate) async fn get(
        &self,
        conn: &RedisConnection,
        trigger: &TriggerRef,
        tls: &ScalerTls,
    ) -> Result<Arc<RedisHandle>, ScalerError> {
        // Each step has its own driver timeout; this bounds the whole (cluster discovery, sentinel lookup).
        let connect = async {
            tokio::time::timeout(BUILD_TIMEOUT, RedisHandle::connect(conn, trigger, tls))
                .await
                .map_err(|_| ScalerError::Backend {
                    trigger: trigger.clone(),
                    action: "connecting to redis",
                    message: format!("no answer within {BUILD_TIMEOUT:?}"),
                })?
        };
        self.0.get_or_connect(conn, connect).await
    }
}

/// A connection to one of the three topologies.
pub(crate) enum RedisHandle {
    /// Reconnects by itself after a failure.
    Standalone(ConnectionManager),
    /// Follows slot moves and reconnects by itself.
    Cluster(ClusterConnection),
    /// Asks the sentinels for the current primary whenever the connection to it broke.
    Sentinel(Box<SentinelHandle>),
}

pub(crate) struct SentinelHandle {
    client: tokio::sync::Mutex<SentinelClient>,
    connection: tokio::sync::Mutex<Option<MultiplexedConnection>>,
    config: AsyncConnectionConfig,
}

impl SentinelHandle {
    async fn connection(&self) -> RedisResult<MultiplexedConnection> {
        let mut current = self.connection.lock().await;
        if let Some(c) = current.as_ref() {
            return Ok(c.clone());
        }
        let mut client = self.client.lock().await;
        // Bounded: the sentinel lookup has no timeout of its own.
        let c = tokio::time::timeout(
            CONNECT_TIMEOUT * 2,
            client.get_async_connection_with_config(&self.config),
        )
        .await
        .map_err(|_| {
            RedisError::from(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "no answer from the sentinels or the primary in time",
            ))
        })??;
        *current = Some(c.clone());
        Ok(c)
    }

    async fn query(&self, cmd: &Cmd) -> RedisResult<Value> {
        let mut con = self.connection().await?;
        let result = cmd.query_async(&mut con).await;
        if let Err(e) = &result
            && is_connection_error(e)
        {
            // The primary went away (or failed over): ask the sentinels again next time.
            *self.connection.lock().await = None;
        }
        result
    }
}

fn is_connection_error(e: &RedisError) -> bool {
    e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_timeout()
        || e.is_unrecoverable_error()
}

/// The client certificate, and the roots: the system's and `--ca-dir`'s ([`ScalerTls`]) and the trigger's
/// `ca`, as upstream (the driver would otherwise read the system's alone).
fn tls_certificates(tls: &RedisTls, trust: &ScalerTls) -> TlsCertificates {
    let client_tls = match (&tls.cert, &tls.key) {
        (Some(cert), Some(key)) => Some(ClientTlsConfig {
            client_cert: cert.as_bytes().to_vec(),
            client_key: key.as_bytes().to_vec(),
        }),
        _ => None,
    };
    TlsCertificates {
        client_tls,
        root_cert: Some(trust.certs_pem(tls.ca.as_deref()).into_bytes()),
    }
}

fn addr(host: String, port: u16, tls: Option<&RedisTls>) -> ConnectionAddr {
    match tls {
        Some(t) => ConnectionAddr::TcpTls {
            host,
            port,
            insecure: t.unsafe_ssl,
            tls_params: None,
        },
        None => ConnectionAddr::Tcp(host, port),
    }
}

impl RedisHandle {
    async fn connect(
        conn: &RedisConnection,
        trigger: &TriggerRef,
        tls: &ScalerTls,
    ) -> Result<Self, ScalerError> {
        let config_error = |field: &str, reason: String| ScalerError::Config {
            trigger: trigger.clone(),
            field: field.to_owned(),
            reason,
        };
        let backend = |action: &'static str, e: RedisError| ScalerError::Backend {
            trigger: trigger.clone(),
            action,
            message: e.to_string(),
        };
        if let Some(tls) = &conn.tls
            && tls.key_password.is_some()
        {
            return Err(config_error(
                "keyPassword",
                "encrypted client keys are not supported by keda-rs; provide an unencrypted key"
                    .into(),
            ));
        }
        let mut nodes = Vec::with_capacity(conn.addresses.len());
        for a in &conn.addresses {
            let (host, port) = split_host_port(a, conn.kind.default_port())
                .map_err(|r| config_error("address", r))?;
            nodes.push((host, port));
        }
        let certs = conn.tls.as_ref().map(|t| tls_certificates(t, tls));
        let mut redis_info = RedisConnectionInfo::default().set_db(conn.database_index);
        if let Some(u) = &conn.username {
            redis_info = redis_info.set_username(u);
        }
        if let Some(p) = &conn.password {
            redis_info = redis_info.set_password(p);
        }
        match conn.kind {
            RedisKind::Standalone => {
                let (host, port) = nodes.swap_remove(0);
                let info = addr(host, port, conn.tls.as_ref())
                    .into_connection_info()
                    .map_err(|e| backend("configuring the redis client", e))?
                    .set_redis_settings(redis_info);
                let client = match certs {
                    Some(c) => ::redis::Client::build_with_tls(info, c),
                    None => ::redis::Client::open(info),
                }
                .map_err(|e| backend("configuring the redis client", e))?;
                let manager = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(CONNECT_TIMEOUT))
                    .set_response_timeout(Some(RESPONSE_TIMEOUT))
                    .set_number_of_retries(1)
                    .set_max_delay(Duration::from_millis(500));
                let cm = client
                    .get_connection_manager_with_config(manager)
                    .await
                    .map_err(|e| backend("connecting to redis", e))?;
                let handle = RedisHandle::Standalone(cm);
                handle
                    .query(&::redis::cmd("PING"))
                    .await
                    .map_err(|e| backend("connecting to redis", e))?;
                Ok(handle)
            }
            RedisKind::Cluster => {
                let seeds = nodes
                    .into_iter()
                    .map(|(h, p)| addr(h, p, conn.tls.as_ref()))
                    .collect::<Vec<_>>();
                let mut builder = ::redis::cluster::ClusterClientBuilder::new(seeds)
                    .connection_timeout(CONNECT_TIMEOUT)
                    .response_timeout(RESPONSE_TIMEOUT)
                    .retries(1);
                if let Some(u) = &conn.username {
                    builder = builder.username(u);
                }
                if let Some(p) = &conn.password {
                    builder = builder.password(p);
                }
                if let Some(tls) = &conn.tls {
                    builder = builder.tls(if tls.unsafe_ssl {
                        TlsMode::Insecure
                    } else {
                        TlsMode::Secure
                    });
                    if let Some(c) = certs {
                        builder = builder.certs(c);
                    }
                }
                let client = builder
                    .build()
                    .map_err(|e| backend("configuring the redis cluster client", e))?;
                let con = client
                    .get_async_connection()
                    .await
                    .map_err(|e| backend("connecting to the redis cluster", e))?;
                let handle = RedisHandle::Cluster(con);
                handle
                    .query(&::redis::cmd("PING"))
                    .await
                    .map_err(|e| backend("connecting to the redis cluster", e))?;
                Ok(handle)
            }
            RedisKind::Sentinel => {
                let master = conn.sentinel_master.clone().ok_or_else(|| {
                    config_error(
                        "sentinelMaster",
                        "is required for redis-sentinel triggers (looked in metadata sentinelMaster, \
                         the TriggerAuthentication, metadata sentinelMasterFromEnv)"
                            .into(),
                    )
                })?;
                let sentinels = nodes
                    .into_iter()
                    .map(|(h, p)| addr(h, p, conn.tls.as_ref()))
                    .collect::<Vec<_>>();
                let mut builder =
                    SentinelClientBuilder::new(sentinels, master, SentinelServerType::Master)
                        .map_err(|e| backend("configuring the redis sentinel client", e))?
                        .set_client_to_redis_db(conn.database_index);
                if let Some(u) = &conn.username {
                    builder = builder.set_client_to_redis_username(u);
                }
                if let Some(p) = &conn.password {
                    builder = builder.set_client_to_redis_password(p);
                }
                if let Some(u) = &conn.sentinel_username {
                    builder = builder.set_client_to_sentinel_username(u);
                }
                if let Some(p) = &conn.sentinel_password {
                    builder = builder.set_client_to_sentinel_password(p);
                }
                if let Some(tls) = &conn.tls {
                    let mode = if tls.unsafe_ssl {
                        TlsMode::Insecure
                    } else {
                        TlsMode::Secure
                    };
                    builder = builder
                        .set_client_to_redis_tls_mode(mode)
                        .set_client_to_sentinel_tls_mode(mode);
                    if let Some(c) = certs {
                        builder = builder
                            .set_client_to_redis_certificates(c.clone())
                            .set_client_to_sentinel_certificates(c);
                    }
                }
                let client = builder
                    .build()
                    .map_err(|e| backend("configuring the redis sentinel client", e))?;
                let handle = RedisHandle::Sentinel(Box::new(SentinelHandle {
                    client: tokio::sync::Mutex::new(client),
                    connection: tokio::sync::Mutex::new(None),
                    config: AsyncConnectionConfig::new()
                        .set_connection_timeout(Some(CONNECT_TIMEOUT))
                        .set_response_timeout(Some(RESPONSE_TIMEOUT)),
                }));
                handle
                    .query(&::redis::cmd("PING"))
                    .await
                    .map_err(|e| backend("connecting to redis through the sentinels", e))?;
                Ok(handle)
            }
        }
    }

    /// Runs one command (routed by its key on a cluster).
    pub(crate) async fn query(&self, cmd: &Cmd) -> RedisResult<Value> {
        match self {
            RedisHandle::Standalone(cm) => cmd.query_async(&mut cm.clone()).await,
            RedisHandle::Cluster(c) => cmd.query_async(&mut c.clone()).await,
            RedisHandle::Sentinel(s) => s.query(cmd).await,
        }
    }

    /// `INFO server` of the server (of any one node on a cluster).
    #[cfg(feature = "redis-streams")]
    pub(crate) async fn server_info(&self) -> RedisResult<String> {
        let mut cmd = ::redis::cmd("INFO");
        cmd.arg("server");
        let value = match self {
            RedisHandle::Cluster(c) => {
                use ::redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
                c.clone()
                    .route_command(cmd, RoutingInfo::SingleNode(SingleNodeRoutingInfo::Random))
                    .await?
            }
            _ => self.query(&cmd).await?,
        };
        Ok(value_text(&value).unwrap_or_default())
    }
}

/// The text of a string-like reply.
pub(crate) fn value_text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::SimpleString(s) => Some(s.clone()),
        Value::VerbatimString { text, .. } => Some(text.clone()),
        Value::Okay => Some("OK".into()),
        _ => None,
    }
}

/// An integer reply (also accepted as a numeric string).
pub(crate) fn value_int(v: &Value) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
        other => value_text(other).and_then(|s| s.trim().parse().ok()),
    }
}
