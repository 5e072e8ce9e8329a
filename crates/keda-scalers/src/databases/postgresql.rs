//! `postgresql`: the number in the first column of the first row of a query.
//!
//! The connection is either a whole connection string (`connection`, from the TriggerAuthentication or
//! `connectionFromEnv`; key=value pairs or a `postgres://` URL) or built from `host`, `port`, `userName`,
//! `dbName`, `sslmode` (TriggerAuthentication, then metadata) and `password` (TriggerAuthentication, then
//! `passwordFromEnv`). `sslmode` follows libpq: `disable`; `allow`/`prefer` (the default) and `require`
//! encrypt without checking the server certificate (`require` checks it against `sslrootcert` when one is
//! given); `verify-ca` checks the chain; `verify-full` also the host name. `sslcert`/`sslkey` are client
//! certificate files. Those files, and a Unix-socket directory given as `host`, are opened only under
//! `--filepath-auth-root-path` ([`crate::files`]); a malformed file is reported without its contents.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres::config::SslMode;
use tokio_postgres::{Client, SimpleQueryMessage};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::client_cache::ClientCache;
use crate::files::{FileRoot, FileUse};
use crate::input::{METADATA, Source};
use crate::tls::ScalerTls;
use crate::{
    BuildContext, MetricSpec, MetricTargetType, Sample, Scaler, ScalerError, ScalerTimeouts,
    TimeoutDefaults, TriggerConfig, TriggerInput, TriggerRef,
};

const TRIGGER_TYPE: &str = "postgresql";
const AUTH_ENV: &[Source] = &[Source::AuthParams, Source::ResolvedEnv];
const AUTH_METADATA: &[Source] = &[Source::AuthParams, Source::Metadata];
/// Used when the connection string sets no `connect_timeout` (or 0, which libpq reads as "wait forever").
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long opening a connection may take: `connect_timeout` per host, as libpq applies it, covering the
/// TLS handshake and authentication too (tokio-postgres bounds only the TCP connect).
pub fn connect_bound(config: &tokio_postgres::Config) -> Duration {
    let per_host = config
        .get_connect_timeout()
        .copied()
        .unwrap_or(CONNECT_TIMEOUT);
    let hosts = u32::try_from(config.get_hosts().len()).unwrap_or(u32::MAX);
    per_host.saturating_mul(hosts.max(1))
}

/// The connection string without its TLS parameters (see [`split_ssl_params`]), parsed, with keda-rs'
/// default `connect_timeout`.
fn client_config(rest: &str) -> Result<tokio_postgres::Config, String> {
    let mut config: tokio_postgres::Config = rest
        .parse()
        .map_err(|e: tokio_postgres::Error| e.to_string())?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    Ok(config)
}

/// A parsed `postgresql` trigger.
#[derive(Clone)]
pub struct PostgresConfig {
    pub index: usize,
    pub query: String,
    /// `targetQueryValue` (required, not 0).
    pub target_query_value: f64,
    /// `activationTargetQueryValue` (default 0).
    pub activation_target_query_value: f64,
    /// The connection string: as given, or built from the separate parameters (libpq key=value form).
    pub connection: String,
    pub metric_type: MetricTargetType,
}

impl fmt::Debug for PostgresConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresConfig")
            .field("index", &self.index)
            .field("query", &self.query)
            .field("target_query_value", &self.target_query_value)
            .field(
                "activation_target_query_value",
                &self.activation_target_query_value,
            )
            .field("connection", &"<redacted>")
            .field("metric_type", &self.metric_type)
            .finish()
    }
}

pub fn parse(input: &TriggerInput<'_>) -> Result<Box<dyn TriggerConfig>, ScalerError> {
    Ok(Box::new(parse_config(input)?))
}

pub fn parse_config(input: &TriggerInput<'_>) -> Result<PostgresConfig, ScalerError> {
    let metric_type = input.external_metric_type()?;
    let target_query_value: f64 = input
        .field("targetQueryValue")
        .order(METADATA)
        .default("0")
        .required()?;
    let activation_target_query_value: f64 = input
        .field("activationTargetQueryValue")
        .order(METADATA)
        .default("0")
        .required()?;
    let connection: Option<String> = input.field("connection").order(AUTH_ENV).optional()?;
    let query: String = input.field("query").order(METADATA).required()?;
    // Upstream lets a zero target through only for scaling-modifier metric sources, which keda-rs does
    // not distinguish at parse time.
    if target_query_value == 0.0 {
        return Err(input.error("targetQueryValue", "is required and must not be 0"));
    }
    let connection = match connection {
        Some(c) => c,
        None => {
            let mut pairs = Vec::new();
            for (field, key) in [
                ("host", "host"),
                ("port", "port"),
                ("userName", "user"),
                ("dbName", "dbname"),
                ("sslmode", "sslmode"),
            ] {
                let value: String = input.field(field).order(AUTH_METADATA).required()?;
                pairs.push(format!("{key}={}", escape_value(&value)));
            }
            let password: String = input
                .field("password")
                .order(AUTH_ENV)
                .optional()?
                .unwrap_or_default();
            pairs.push(format!("password={}", escape_value(&password)));
            pairs.join(" ")
        }
    };
    Ok(PostgresConfig {
        index: input.index,
        query,
        target_query_value,
        activation_target_query_value,
        connection,
        metric_type,
    })
}

/// Quotes a libpq key=value value when it holds whitespace, a quote or a backslash, so a value cannot
/// inject further parameters.
pub fn escape_value(s: &str) -> String {
    if !s
        .chars()
        .any(|c| c.is_whitespace() || c == '\'' || c == '\\')
    {
        return s.to_owned();
    }
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

#[async_trait::async_trait]
impl TriggerConfig for PostgresConfig {
    fn metric_spec(&self) -> MetricSpec {
        MetricSpec::External {
            metric_name: crate::external_metric_name(self.index, "postgresql"),
            target_type: self.metric_type,
            target: self.target_query_value,
        }
    }

    fn trigger(&self) -> TriggerRef {
        TriggerRef {
            index: self.index,
            trigger_type: TRIGGER_TYPE.into(),
        }
    }

    /// Build: [`connect_bound`]. Sample: a reconnection plus the query, which upstream does not bound
    /// ([`crate::timeouts::SQL_QUERY_TIMEOUT`]).
    fn timeouts(&self, _defaults: &TimeoutDefaults) -> ScalerTimeouts {
        // A connection string that does not parse fails the build at once.
        let connect = split_ssl_params(&self.connection)
            .and_then(|(rest, _)| client_config(&rest))
            .map(|config| connect_bound(&config))
            .unwrap_or(CONNECT_TIMEOUT);
        ScalerTimeouts {
            build: Some(connect),
            sample: Some(connect.saturating_add(crate::timeouts::SQL_QUERY_TIMEOUT)),
        }
    }

    /// `sslrootcert` (unless `system`), `sslcert`, `sslkey`, and Unix-socket directories given as hosts.
    /// A connection string that does not split or parse names no files (the build fails on it anyway).
    fn files(&self) -> Vec<FileUse> {
        let Ok((rest, ssl)) = split_ssl_params(&self.connection) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (field, path) in [
            ("sslrootcert", ssl.root_cert.filter(|p| p != "system")),
            ("sslcert", ssl.cert),
            ("sslkey", ssl.key),
        ] {
            if let Some(path) = path {
                out.push(FileUse { field, path });
            }
        }
        if let Ok(config) = client_config(&rest) {
            out.extend(unix_hosts(&config).map(|dir| FileUse {
                field: "host",
                path: dir.display().to_string(),
            }));
        }
        out
    }

    async fn build(&self, ctx: &BuildContext) -> Result<Arc<dyn Scaler>, ScalerError> {
        let connection = ctx
            .postgresql
            .get(&self.connection, &self.trigger(), &ctx.files, &ctx.tls)
            .await?;
        Ok(Arc::new(PostgresScaler {
            config: self.clone(),
            connection,
        }))
    }
}

/// TLS parameters taken out of a connection string (tokio-postgres knows only disable/prefer/require).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SslParams {
    pub mode: Option<String>,
    pub root_cert: Option<String>,
    pub cert: Option<String>,
    pub key: Option<String>,
    pub password: Option<String>,
}

impl SslParams {
    fn take(&mut self, key: &str, value: String) -> bool {
        let slot = match key {
            "sslmode" => &mut self.mode,
            "sslrootcert" => &mut self.root_cert,
            "sslcert" => &mut self.cert,
            "sslkey" => &mut self.key,
            "sslpassword" => &mut self.password,
            _ => return false,
        };
        *slot = Some(value);
        true
    }
}

/// Splits the TLS parameters out of a connection string, returning the rest in a form tokio-postgres
/// parses. Errors never quote the string (it may hold a password).
pub fn split_ssl_params(conn: &str) -> Result<(String, SslParams), String> {
    let mut ssl = SslParams::default();
    let trimmed = conn.trim();
    if trimmed.starts_with("postgres://") || trimmed.starts_with("postgresql://") {
        let (base, query) = match trimmed.split_once('?') {
            Some((b, q)) => (b, q),
            None => (trimmed, ""),
        };
        let mut kept = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            if !ssl.take(&percent_decode(k)?, percent_decode(v)?) {
                kept.push(pair);
            }
        }
        let rest = if kept.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        return Ok((rest, ssl));
    }
    let mut kept = Vec::new();
    for (k, v) in parse_key_values(trimmed)? {
        if !ssl.take(&k, v.clone()) && !v.is_empty() {
            kept.push(format!(
                "{k}='{}'",
                v.replace('\\', "\\\\").replace('\'', "\\'")
            ));
        }
    }
    Ok((kept.join(" "), ssl))
}

fn percent_decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or("the connection URL has an invalid percent-encoding")?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "the connection URL is not UTF-8 once decoded".to_owned())
}

/// libpq `key=value` pairs: values may be single-quoted; a backslash escapes the next character.
fn parse_key_values(s: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            break;
        }
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| *c != '=' && !c.is_whitespace()) {
            key.push(c);
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next() != Some('=') {
            return Err(
                "the connection string is neither key=value pairs nor a postgres:// URL".into(),
            );
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'\'').is_some() {
            loop {
                match chars.next() {
                    Some('\'') => break,
                    Some('\\') => value.extend(chars.next()),
                    Some(c) => value.push(c),
                    None => {
                        return Err(format!(
                            "the value of {key:?} in the connection string has no closing quote"
                        ));
                    }
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                if c == '\\' {
                    value.extend(chars.next());
                } else {
                    value.push(c);
                }
            }
        }
        out.push((key, value));
    }
    Ok(out)
}

/// Checks the chain but not the host name (libpq's `verify-ca`).
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

enum Verification {
    None,
    Chain,
    Full,
}

/// The Unix-socket directories among the hosts of a connection.
fn unix_hosts(config: &tokio_postgres::Config) -> impl Iterator<Item = &std::path::Path> {
    config.get_hosts().iter().filter_map(|h| match h {
        #[cfg(unix)]
        tokio_postgres::config::Host::Unix(dir) => Some(dir.as_path()),
        _ => None,
    })
}

/// A tenant-named file, read only under `--filepath-auth-root-path`.
fn read_file(files: &FileRoot, path: &str, what: &str) -> Result<Vec<u8>, String> {
    files.read(path).map_err(|e| format!("the {what}: {e}"))
}

/// The tokio-postgres mode and the rustls configuration for the TLS parameters, reading the files they name
/// through `files`. Errors name the parameter; a file that does not hold what it should is reported
/// without its contents.
fn tls_setup(
    ssl: &SslParams,
    files: &FileRoot,
    tls: &ScalerTls,
) -> Result<(SslMode, rustls::ClientConfig), (&'static str, String)> {
    let mode = ssl.mode.as_deref().unwrap_or("prefer");
    let (pg_mode, verification) = match mode {
        "disable" => (SslMode::Disable, Verification::None),
        "allow" | "prefer" => (SslMode::Prefer, Verification::None),
        "require" if ssl.root_cert.is_some() => (SslMode::Require, Verification::Chain),
        "require" => (SslMode::Require, Verification::None),
        "verify-ca" => (SslMode::Require, Verification::Chain),
        "verify-full" => (SslMode::Require, Verification::Full),
        other => {
            return Err((
                "sslmode",
                format!(
                    "{other:?} must be one of disable, allow, prefer, require, verify-ca, verify-full"
                ),
            ));
        }
    };
    if ssl.password.is_some() {
        return Err((
            "sslpassword",
            "encrypted client keys are not supported by keda-rs; provide an unencrypted sslkey"
                .into(),
        ));
    }
    let provider = tls.provider().clone();
    let builder = tls.builder().map_err(|e| ("sslmode", e))?;
    let roots = || -> Result<Arc<RootCertStore>, (&'static str, String)> {
        let mut store = RootCertStore::empty();
        match ssl.root_cert.as_deref() {
            Some(path) if path != "system" => {
                let pem =
                    read_file(files, path, "root certificate").map_err(|m| ("sslrootcert", m))?;
                let not_pem = || {
                    (
                        "sslrootcert",
                        format!("{path:?} does not hold PEM certificates"),
                    )
                };
                for cert in CertificateDer::pem_slice_iter(&pem) {
                    store
                        .add(cert.map_err(|_| not_pem())?)
                        .map_err(|e| ("sslrootcert", format!("{path:?}: {e}")))?;
                }
            }
            // The system's roots, the bundled ones and `--ca-dir`'s.
            _ => return Ok(tls.roots()),
        }
        Ok(Arc::new(store))
    };
    let verifier: Arc<dyn ServerCertVerifier> = match verification {
        Verification::None => tls.accept_any(),
        Verification::Chain | Verification::Full => {
            let webpki = WebPkiServerVerifier::builder_with_provider(roots()?, provider.clone())
                .build()
                .map_err(|e| ("sslrootcert", format!("no usable root certificate: {e}")))?;
            match verification {
                Verification::Chain => Arc::new(ChainOnly(webpki)),
                _ => webpki,
            }
        }
    };
    let builder = builder
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let config = match (&ssl.cert, &ssl.key) {
        (Some(cert_path), Some(key_path)) => {
            let pem =
                read_file(files, cert_path, "client certificate").map_err(|m| ("sslcert", m))?;
            let certs = CertificateDer::pem_slice_iter(&pem)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| {
                    (
                        "sslcert",
                        format!("{cert_path:?} does not hold PEM certificates"),
                    )
                })?;
            let key_pem = read_file(files, key_path, "client key").map_err(|m| ("sslkey", m))?;
            let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| {
                (
                    "sslkey",
                    format!("{key_path:?} does not hold an unencrypted PEM private key"),
                )
            })?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| ("sslcert", format!("{cert_path:?}: {e}")))?
        }
        _ => builder.with_no_client_auth(),
    };
    Ok((pg_mode, config))
}

/// One connection per connection string, reopened after it broke.
pub(crate) struct PostgresConnection {
    config: tokio_postgres::Config,
    /// [`connect_bound`] of `config`.
    connect_bound: Duration,
    tls: MakeRustlsConnect,
    client: tokio::sync::Mutex<Option<Arc<Client>>>,
}

impl PostgresConnection {
    /// The connection for `connection` (a connection string), opened now: upstream pings at build, so
    /// an unreachable server fails the build.
    async fn open(
        connection: &str,
        trigger: &TriggerRef,
        files: &FileRoot,
        tls: &ScalerTls,
    ) -> Result<PostgresConnection, ScalerError> {
        let config_error = |field: &str, reason: String| ScalerError::Config {
            trigger: trigger.clone(),
            field: field.to_owned(),
            reason,
        };
        let (rest, ssl) =
            split_ssl_params(connection).map_err(|r| config_error("connection", r))?;
        let (mode, tls) = tls_setup(&ssl, files, tls).map_err(|(f, r)| config_error(f, r))?;
        let mut config = client_config(&rest).map_err(|r| config_error("connection", r))?;
        for dir in unix_hosts(&config) {
            files
                .resolve(&dir.display().to_string())
                .map_err(|e| config_error("host", e.to_string()))?;
        }
        config.ssl_mode(mode);
        let conn = PostgresConnection {
            connect_bound: connect_bound(&config),
            config,
            tls: MakeRustlsConnect::new(tls),
            client: tokio::sync::Mutex::new(None),
        };
        conn.client()
            .await
            .map_err(|message| ScalerError::Backend {
                trigger: trigger.clone(),
                action: "connecting to postgresql",
                message,
            })?;
        Ok(conn)
    }

    async fn client(&self) -> Result<Arc<Client>, String> {
        let mut current = self.client.lock().await;
        if let Some(c) = current.as_ref().filter(|c| !c.is_closed()) {
            return Ok(c.clone());
        }
        *current = None;
        let (client, connection) =
            tokio::time::timeout(self.connect_bound, self.config.connect(self.tls.clone()))
                .await
                .map_err(|_| format!("no connection within {:?}", self.connect_bound))?
                .map_err(|e| describe(&e))?;
        tokio::spawn(async move {
            // Ends when the server closes the connection or the client is dropped; errors surface on the
            // client's next query.
            let _ = connection.await;
        });
        let client = Arc::new(client);
        *current = Some(client.clone());
        Ok(client)
    }

    /// The first column of the first row of `query`, as a number.
    async fn query_number(&self, query: &str) -> Result<f64, (&'static str, String)> {
        let client = self
            .client()
            .await
            .map_err(|m| ("connecting to postgresql", m))?;
        let messages = client
            .simple_query(query)
            .await
            .map_err(|e| ("querying postgresql", describe(&e)))?;
        let row = messages
            .iter()
            .find_map(|m| match m {
                SimpleQueryMessage::Row(r) => Some(r),
                _ => None,
            })
            .ok_or((
                "querying postgresql",
                "the query returned no rows".to_owned(),
            ))?;
        let text = row.get(0).ok_or((
            "reading the query result",
            "the first column of the first row is NULL".to_owned(),
        ))?;
        text.trim().parse::<f64>().map_err(|_| {
            (
                "reading the query result",
                format!("{text:?} is not a number"),
            )
        })
    }
}

/// The error with its cause (tokio-postgres puts the server's message in the source).
fn describe(e: &tokio_postgres::Error) -> String {
    use std::error::Error as _;
    match e.source() {
        Some(s) => format!("{e}: {s}"),
        None => e.to_string(),
    }
}

/// Connections shared by triggers with the same connection string; a connection closes with the last
/// scaler using it.
#[derive(Default)]
pub struct PostgresClients(ClientCache<String, PostgresConnection>);

impl PostgresClients {
    /// Number of live shared connections (for tests and telemetry).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    async fn get(
        &self,
        connection: &str,
        trigger: &TriggerRef,
        files: &FileRoot,
        tls: &ScalerTls,
    ) -> Result<Arc<PostgresConnection>, ScalerError> {
        self.0
            .get_or_connect(
                connection,
                PostgresConnection::open(connection, trigger, files, tls),
            )
            .await
    }
}

struct PostgresScaler {
    config: PostgresConfig,
    connection: Arc<PostgresConnection>,
}

#[async_trait::async_trait]
impl Scaler for PostgresScaler {
    async fn sample(&self) -> Result<Sample, ScalerError> {
        let value = self
            .connection
            .query_number(&self.config.query)
            .await
            .map_err(|(action, message)| ScalerError::Backend {
                trigger: self.config.trigger(),
                action,
                message,
            })?;
        Ok(Sample {
            value,
            active: crate::is_active(value, self.config.activation_target_query_value),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_escaped_only_when_needed() {
        assert_eq!(escape_value("simple"), "simple");
        assert_eq!(escape_value("with space"), "'with space'");
        assert_eq!(escape_value("a\tb=c"), "'a\tb=c'");
        assert_eq!(escape_value("x\nhost=evil"), "'x\nhost=evil'");
        assert_eq!(escape_value("it's"), r"'it\'s'");
        assert_eq!(escape_value(r"a\b"), r"'a\\b'");
        assert_eq!(escape_value(r"a\'b"), r"'a\\\'b'");
        assert_eq!(escape_value(""), "");
    }

    #[test]
    fn key_values_round_trip_through_the_splitter() {
        let (rest, ssl) = split_ssl_params(
            r"host=db port = 5432 user='a b' password='it\'s' dbname=x sslmode=verify-full sslrootcert=/ca.pem",
        )
        .unwrap();
        assert_eq!(
            rest,
            r"host='db' port='5432' user='a b' password='it\'s' dbname='x'"
        );
        assert_eq!(ssl.mode.as_deref(), Some("verify-full"));
        assert_eq!(ssl.root_cert.as_deref(), Some("/ca.pem"));
        let parsed: tokio_postgres::Config = rest.parse().unwrap();
        assert_eq!(parsed.get_user(), Some("a b"));
        assert_eq!(parsed.get_password(), Some(&b"it's"[..]));
        // An empty value means unset (what the built string ends with when there is no password).
        let (rest, ssl) = split_ssl_params("host=h sslmode=disable password=").unwrap();
        assert_eq!(rest, "host='h'");
        assert_eq!(ssl.mode.as_deref(), Some("disable"));
        // As in libpq, blanks after '=' are skipped, so an empty value must come last or be quoted.
        let (rest, _) = split_ssl_params("password='' host=h").unwrap();
        assert_eq!(rest, "host='h'");
        assert!(split_ssl_params("test_conn_str").is_err());
        assert!(split_ssl_params("password='open").is_err());
    }

    #[test]
    fn url_ssl_parameters_are_taken_out() {
        let (rest, ssl) = split_ssl_params(
            "postgresql://u:p%40ss@h1:5432,h2/db?sslmode=verify-ca&application_name=keda&sslcert=%2Fc.pem",
        )
        .unwrap();
        assert_eq!(
            rest,
            "postgresql://u:p%40ss@h1:5432,h2/db?application_name=keda"
        );
        assert_eq!(ssl.mode.as_deref(), Some("verify-ca"));
        assert_eq!(ssl.cert.as_deref(), Some("/c.pem"));
        let (rest, ssl) = split_ssl_params("postgres://localhost:5432").unwrap();
        assert_eq!(rest, "postgres://localhost:5432");
        assert_eq!(ssl, SslParams::default());
    }

    #[test]
    fn ssl_modes() {
        let mode = |m: &str| {
            tls_setup(
                &SslParams {
                    mode: Some(m.into()),
                    ..Default::default()
                },
                &FileRoot::unset(),
                &ScalerTls::default(),
            )
            .map(|(mode, _)| mode)
        };
        assert_eq!(mode("disable").unwrap(), SslMode::Disable);
        assert_eq!(mode("prefer").unwrap(), SslMode::Prefer);
        assert_eq!(mode("allow").unwrap(), SslMode::Prefer);
        assert_eq!(mode("require").unwrap(), SslMode::Require);
        assert_eq!(mode("bogus").unwrap_err().0, "sslmode");
        let missing_root = tls_setup(
            &SslParams {
                mode: Some("verify-ca".into()),
                root_cert: Some("/nonexistent/ca.pem".into()),
                ..Default::default()
            },
            &FileRoot::new("/nonexistent"),
            &ScalerTls::default(),
        );
        assert_eq!(missing_root.unwrap_err().0, "sslrootcert");
    }

    #[test]
    fn the_files_a_connection_would_open() {
        let config = |connection: &str| PostgresConfig {
            index: 0,
            query: "SELECT 1".into(),
            target_query_value: 1.0,
            activation_target_query_value: 0.0,
            connection: connection.into(),
            metric_type: MetricTargetType::AverageValue,
        };
        let uses = |connection: &str| -> Vec<(&'static str, String)> {
            config(connection)
                .files()
                .into_iter()
                .map(|f| (f.field, f.path))
                .collect()
        };
        assert_eq!(uses("host=db sslmode=require"), vec![]);
        assert_eq!(
            uses("host=db sslmode=verify-full sslrootcert=system"),
            vec![]
        );
        assert_eq!(
            uses("host=db sslmode=verify-ca sslrootcert=/certs/ca.crt sslcert=c.pem sslkey=k.pem"),
            vec![
                ("sslrootcert", "/certs/ca.crt".to_owned()),
                ("sslcert", "c.pem".to_owned()),
                ("sslkey", "k.pem".to_owned()),
            ]
        );
        assert_eq!(
            uses("postgresql://u@%2Fvar%2Frun%2Fpostgresql/db?sslrootcert=%2Fetc%2Fca.pem"),
            vec![
                ("sslrootcert", "/etc/ca.pem".to_owned()),
                ("host", "/var/run/postgresql".to_owned()),
            ]
        );
        assert_eq!(
            uses("host=db,/tmp port=5432"),
            vec![("host", "/tmp".to_owned())]
        );
        // Checked against the root as written: the error names the field and keeps the reason.
        let root = FileRoot::new("/mnt/auth");
        let err = crate::check_files(
            &config("host=db sslmode=verify-ca sslrootcert=/certs/ca.crt"),
            &root,
        )
        .expect_err("outside");
        assert_eq!(
            err.to_string(),
            "trigger 0 (postgresql): sslrootcert: \"/certs/ca.crt\" is outside \
             --filepath-auth-root-path (/mnt/auth)"
        );
        assert!(
            crate::check_files(
                &config("host=db sslmode=verify-ca sslrootcert=/mnt/auth/ca.crt sslcert=tls/c.pem sslkey=tls/k.pem"),
                &root
            )
            .is_ok()
        );
        let err = crate::check_files(&config("host=/run/postgresql"), &root).expect_err("socket");
        assert_eq!(err.field(), Some("host"));
        let err = crate::check_files(
            &config("host=db sslcert=c.pem sslkey=k.pem"),
            &FileRoot::unset(),
        )
        .expect_err("no root");
        assert_eq!(
            err.to_string(),
            "trigger 0 (postgresql): sslcert: no file may be read: the operator runs without \
             --filepath-auth-root-path"
        );
    }
}
