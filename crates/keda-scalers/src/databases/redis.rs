//! `redis`, `redis-cluster`, `redis-sentinel`: the length of a list (or the size of a set, sorted set or
//! hash) under one key.
//!
//! This module also holds what the three Redis topologies share with `redis-streams`: the connection
//! parameters (`address`/`addresses` or `host`+`port`/`hosts`+`ports`, credentials, sentinel settings,
//! TLS) and the connections, cached per connection settings in [`RedisClients`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use ::redis::cluster_async::ClusterConnection;
use ::redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use ::redis::{
    AsyncConnectionConfig, ClientTlsConfig, Cmd, ConnectionAddr, IntoConnectionInfo,
    RedisConnectionInfo, RedisError, RedisResult, TlsCertificates, TlsMode, Value,
};

use crate::client_cache::ClientCache;
use crate::input::{ANY, AUTH, METADATA, Source};
use crate::tls::ScalerTls;
use crate::{
    BuildContext, MetricSpec, MetricTargetType, Sample, Scaler, ScalerError, ScalerTimeouts,
    TimeoutDefaults, TriggerConfig, TriggerInput, TriggerRef,
};

/// Trigger metadata, then authentication parameters, then `<key>FromEnv` (upstream's order for addresses
/// and the sentinel settings).
const METADATA_AUTH_ENV: &[Source] = &[Source::Metadata, Source::AuthParams, Source::ResolvedEnv];

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

/// The Redis topology a trigger type talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RedisKind {
    Standalone,
    Cluster,
    Sentinel,
}

impl RedisKind {
    /// `redis`/`redis-streams` → standalone, `redis-cluster*` → cluster, `redis-sentinel*` → sentinel.
    pub fn from_trigger_type(trigger_type: &str) -> RedisKind {
        if trigger_type.starts_with("redis-cluster") {
            RedisKind::Cluster
        } else if trigger_type.starts_with("redis-sentinel") {
            RedisKind::Sentinel
        } else {
            RedisKind::Standalone
        }
    }

    fn default_port(self) -> u16 {
        match self {
            RedisKind::Sentinel => 26379,
            _ => 6379,
        }
    }
}

/// TLS settings, present when TLS is enabled (`enableTLS: "true"` or auth `tls: enable`).
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct RedisTls {
    /// Skip verification of the server certificate.
    pub unsafe_ssl: bool,
    /// PEM CA certificate (replaces the system roots).
    pub ca: Option<String>,
    /// PEM client certificate and key for mutual TLS.
    pub cert: Option<String>,
    pub key: Option<String>,
    /// Password of an encrypted client key (not supported when connecting).
    pub key_password: Option<String>,
}

impl fmt::Debug for RedisTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisTls")
            .field("unsafe_ssl", &self.unsafe_ssl)
            .field("ca", &self.ca.as_ref().map(|_| "<set>"))
            .field("cert", &self.cert.as_ref().map(|_| "<set>"))
            .field("key", &self.key.as_ref().map(|_| "<redacted>"))
            .field(
                "key_password",
                &self.key_password.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// How to reach Redis; also the key of the connection cache.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RedisConnection {
    pub kind: RedisKind,
    /// `host:port` of the server (standalone, first entry used), the seed nodes (cluster) or the sentinels.
    pub addresses: Vec<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub sentinel_username: Option<String>,
    pub sentinel_password: Option<String>,
    pub sentinel_master: Option<String>,
    /// `databaseIndex` (ignored by Redis Cluster, which only has database 0).
    pub database_index: i64,
    pub tls: Option<RedisTls>,
}

impl fmt::Debug for RedisConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConnection")
            .field("kind", &self.kind)
            .field("addresses", &self.addresses)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("sentinel_username", &self.sentinel_username)
            .field(
                "sentinel_password",
                &self.sentinel_password.as_ref().map(|_| "<redacted>"),
            )
            .field("sentinel_master", &self.sentinel_master)
            .field("database_index", &self.database_index)
            .field("tls", &self.tls)
            .finish()
    }
}

/// Comma-separated list, each element trimmed (empty elements are kept, as upstream).
fn split_list(s: &str) -> Vec<String> {
    s.split(',').map(|p| p.trim().to_owned()).collect()
}

/// Parses the connection parameters shared by every Redis trigger type (`databaseIndex` included).
pub fn parse_connection(input: &TriggerInput<'_>) -> Result<RedisConnection, ScalerError> {
    let kind = RedisKind::from_trigger_type(input.trigger_type);
    let mut addresses: Vec<String> = input
        .field("address")
        .alias("addresses")
        .order(METADATA_AUTH_ENV)
        .optional::<String>()?
        .map(|s| split_list(&s))
        .unwrap_or_default();
    let hosts: Vec<String> = input
        .field("host")
        .alias("hosts")
        .order(ANY)
        .optional::<String>()?
        .map(|s| split_list(&s))
        .unwrap_or_default();
    let ports: Vec<String> = input
        .field("port")
        .alias("ports")
        .order(ANY)
        .optional::<String>()?
        .map(|s| split_list(&s))
        .unwrap_or_default();
    let username = input.field("username").order(ANY).optional()?;
    let password = input.field("password").order(ANY).optional()?;
    let sentinel_username = input
        .field("sentinelUsername")
        .order(METADATA_AUTH_ENV)
        .optional()?;
    let sentinel_password = input
        .field("sentinelPassword")
        .order(METADATA_AUTH_ENV)
        .optional()?;
    let sentinel_master = input
        .field("sentinelMaster")
        .order(METADATA_AUTH_ENV)
        .optional()?;
    let unsafe_ssl: bool = input
        .field("unsafeSsl")
        .order(METADATA)
        .default("false")
        .required()?;
    let cert = input.field("Cert").alias("cert").order(AUTH).optional()?;
    let key = input.field("key").order(AUTH).optional()?;
    let key_password = input.field("keyPassword").order(AUTH).optional()?;
    let ca = input.field("ca").order(AUTH).optional()?;
    let database_index: i64 = input
        .field("databaseIndex")
        .order(METADATA)
        .default("0")
        .required()?;

    // host(s) and port(s) pair up into further addresses.
    if !hosts.is_empty() && !ports.is_empty() {
        if hosts.len() != ports.len() {
            return Err(input.error(
                "hosts",
                format!(
                    "{} hosts but {} ports given; the number of hosts must equal the number of ports",
                    hosts.len(),
                    ports.len()
                ),
            ));
        }
        addresses.extend(hosts.iter().zip(&ports).map(|(h, p)| join_host_port(h, p)));
    }
    if addresses.first().is_none_or(|a| a.is_empty()) {
        return Err(input.error(
            "address",
            "no addresses or hosts given; set address (comma-separated host:port list) or host and port",
        ));
    }

    let enable_tls: Option<bool> = input.field("enableTLS").order(METADATA).optional()?;
    let auth_tls: Option<String> = input
        .field("tls")
        .order(AUTH)
        .one_of(&["enable", "disable"])
        .optional()?;
    let tls_enabled = match (enable_tls, auth_tls) {
        (Some(_), Some(_)) => {
            return Err(input.error(
                "tls",
                "TLS is set both with enableTLS in the trigger metadata and with tls in the \
                 TriggerAuthentication; set only one",
            ));
        }
        (Some(b), None) => b,
        (None, Some(t)) => t == "enable",
        (None, None) => false,
    };
    let tls = tls_enabled.then_some(RedisTls {
        unsafe_ssl,
        ca,
        cert,
        key,
        key_password,
    });
    Ok(RedisConnection {
        kind,
        addresses,
        username,
        password,
        sentinel_username,
        sentinel_password,
        sentinel_master,
        database_index,
        tls,
    })
}

/// `host:port`, bracketing IPv6 literals.
fn join_host_port(host: &str, port: &str) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Splits `host:port` (`[v6]:port`, `:port` for localhost, or a bare host with the default port).
pub fn split_host_port(addr: &str, default_port: u16) -> Result<(String, u16), String> {
    let (host, port) = if let Some(rest) = addr.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("{addr:?}: missing ']' in address"))?;
        match after.strip_prefix(':') {
            Some(p) => (host, Some(p)),
            None if after.is_empty() => (host, None),
            None => return Err(format!("{addr:?} is not host:port")),
        }
    } else {
        match addr.rsplit_once(':') {
            Some((h, _)) if h.contains(':') => {
                return Err(format!(
                    "{addr:?}: too many colons; write IPv6 addresses as [address]:port"
                ));
            }
            Some((h, p)) => (h, Some(p)),
            None => (addr, None),
        }
    };
    let port = match port {
        None => default_port,
        Some(p) => p
            .parse::<u16>()
            .map_err(|_| format!("{addr:?}: port {p:?} is not a port number"))?,
    };
    let host = if host.is_empty() { "localhost" } else { host };
    Ok((host.to_owned(), port))
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

/// Counts the entries of the key, whatever the collection type; a missing key counts 0. Evaluated as one
/// script so type and size are read atomically and in one round trip.
const COUNT_SCRIPT: &str = r"
local count_by_type = { list = 'LLEN', none = 'LLEN', set = 'SCARD', zset = 'ZCARD', hash = 'HLEN' }
local key_type = redis.call('TYPE', KEYS[1]).ok
local counter = count_by_type[key_type]
if not counter then
  return redis.error_reply('ERR unsupported key type: ' .. key_type)
end
return redis.call(counter, KEYS[1])
";

/// A parsed `redis`, `redis-cluster` or `redis-sentinel` trigger.
#[derive(Clone, Debug)]
pub struct RedisConfig {
    pub index: usize,
    pub trigger_type: String,
    pub list_name: String,
    /// Target per replica (`listLength`, default 5).
    pub list_length: i64,
    /// Active when the length is strictly above this (`activationListLength`, default 0).
    pub activation_list_length: i64,
    pub connection: RedisConnection,
    pub metric_type: MetricTargetType,
}

pub fn parse(input: &TriggerInput<'_>) -> Result<Box<dyn TriggerConfig>, ScalerError> {
    Ok(Box::new(parse_config(input)?))
}

pub fn parse_config(input: &TriggerInput<'_>) -> Result<RedisConfig, ScalerError> {
    let metric_type = input.external_metric_type()?;
    let connection = parse_connection(input)?;
    let list_length: i64 = input
        .field("listLength")
        .order(METADATA)
        .default("5")
        .required()?;
    let activation_list_length: i64 = input
        .field("activationListLength")
        .order(METADATA)
        .default("0")
        .required()?;
    let list_name: String = input.field("listName").order(METADATA).required()?;
    Ok(RedisConfig {
        index: input.index,
        trigger_type: input.trigger_type.to_owned(),
        list_name,
        list_length,
        activation_list_length,
        connection,
        metric_type,
    })
}

#[async_trait::async_trait]
impl TriggerConfig for RedisConfig {
    fn metric_spec(&self) -> MetricSpec {
        MetricSpec::External {
            metric_name: crate::external_metric_name(
                self.index,
                &format!("redis-{}", self.list_name),
            ),
            target_type: self.metric_type,
            target: self.list_length as f64,
        }
    }

    fn trigger(&self) -> TriggerRef {
        TriggerRef {
            index: self.index,
            trigger_type: self.trigger_type.clone(),
        }
    }

    /// One command (`EVAL`) per sample.
    fn timeouts(&self, _defaults: &TimeoutDefaults) -> ScalerTimeouts {
        timeouts(1)
    }

    async fn build(&self, ctx: &BuildContext) -> Result<Arc<dyn Scaler>, ScalerError> {
        let handle = ctx
            .redis
            .get(&self.connection, &self.trigger(), &ctx.tls)
            .await?;
        let mut command = ::redis::cmd("EVAL");
        command.arg(COUNT_SCRIPT).arg(1).arg(&self.list_name);
        Ok(Arc::new(RedisScaler {
            config: self.clone(),
            handle,
            command,
        }))
    }
}

struct RedisScaler {
    config: RedisConfig,
    handle: Arc<RedisHandle>,
    command: Cmd,
}

#[async_trait::async_trait]
impl Scaler for RedisScaler {
    async fn sample(&self) -> Result<Sample, ScalerError> {
        let backend = |message: String| ScalerError::Backend {
            trigger: self.config.trigger(),
            action: "reading the list length",
            message,
        };
        let reply = self
            .handle
            .query(&self.command)
            .await
            .map_err(|e| backend(e.to_string()))?;
        let length =
            value_int(&reply).ok_or_else(|| backend(format!("unexpected reply {reply:?}")))?;
        Ok(Sample {
            value: length as f64,
            active: length > self.config.activation_list_length,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_forms() {
        assert_eq!(
            split_host_port("redis:6380", 6379),
            Ok(("redis".into(), 6380))
        );
        assert_eq!(
            split_host_port(":7001", 6379),
            Ok(("localhost".into(), 7001))
        );
        assert_eq!(split_host_port("redis", 26379), Ok(("redis".into(), 26379)));
        assert_eq!(
            split_host_port("[::1]:7000", 6379),
            Ok(("::1".into(), 7000))
        );
        assert!(split_host_port("::1:7000", 6379).is_err());
        assert!(split_host_port("redis:port", 6379).is_err());
        assert_eq!(join_host_port("::1", "7000"), "[::1]:7000");
    }

    #[test]
    fn kinds_follow_the_trigger_type() {
        assert_eq!(RedisKind::from_trigger_type("redis"), RedisKind::Standalone);
        assert_eq!(
            RedisKind::from_trigger_type("redis-streams"),
            RedisKind::Standalone
        );
        assert_eq!(
            RedisKind::from_trigger_type("redis-cluster-streams"),
            RedisKind::Cluster
        );
        assert_eq!(
            RedisKind::from_trigger_type("redis-sentinel"),
            RedisKind::Sentinel
        );
    }
}
