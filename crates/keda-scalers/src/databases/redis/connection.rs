//! The connection settings every Redis trigger type shares, parsed from the trigger.

use std::fmt;

use crate::input::{ANY, AUTH, METADATA, Source};
use crate::{ScalerError, TriggerInput};

/// Trigger metadata, then authentication parameters, then `<key>FromEnv` (upstream's order for addresses
/// and the sentinel settings).
const METADATA_AUTH_ENV: &[Source] = &[Source::Metadata, Source::AuthParams, Source::ResolvedEnv];
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

    pub(super) fn default_port(self) -> u16 {
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
