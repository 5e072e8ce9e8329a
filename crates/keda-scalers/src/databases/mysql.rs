//! `mysql`: the number in the first column of the first row of a query (MySQL or MariaDB).
//!
//! The connection is either `connectionString` (TriggerAuthentication, then `connectionStringFromEnv`) in
//! the Go driver's DSN form `user:password@tcp(host:port)/dbname?param=value`, or `host`, `port`,
//! `dbName` (metadata, then TriggerAuthentication), `username` (metadata, TriggerAuthentication,
//! `usernameFromEnv`) and `password` (TriggerAuthentication, then `passwordFromEnv`). A `unix(…)` socket
//! is opened only under `--filepath-auth-root-path` ([`crate::files`]).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{OptsBuilder, Pool, PoolConstraints, PoolOpts, Row, SslOpts, Value};

use crate::client_cache::ClientCache;
use crate::tls::ScalerTls;

use crate::files::{FileRoot, FileUse};
use crate::input::{METADATA, Source};
use crate::{
    BuildContext, MetricSpec, MetricTargetType, Sample, Scaler, ScalerError, ScalerTimeouts,
    TimeoutDefaults, TriggerConfig, TriggerInput, TriggerRef,
};

const TRIGGER_TYPE: &str = "mysql";
const AUTH_ENV: &[Source] = &[Source::AuthParams, Source::ResolvedEnv];
const METADATA_AUTH: &[Source] = &[Source::Metadata, Source::AuthParams];
const METADATA_AUTH_ENV: &[Source] = &[Source::Metadata, Source::AuthParams, Source::ResolvedEnv];
/// The Go driver's default dial timeout is the OS's; keep connection attempts bounded. Used when the DSN
/// sets no `timeout` (or 0).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How to reach the server.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum MySqlConnection {
    /// A Go-driver DSN, as given.
    Dsn(String),
    Fields {
        host: String,
        port: String,
        username: Option<String>,
        password: Option<String>,
        db_name: String,
    },
}

impl fmt::Debug for MySqlConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MySqlConnection::Dsn(_) => f.write_str("Dsn(<redacted>)"),
            MySqlConnection::Fields {
                host,
                port,
                username,
                password,
                db_name,
            } => f
                .debug_struct("Fields")
                .field("host", host)
                .field("port", port)
                .field("username", username)
                .field("password", &password.as_ref().map(|_| "<redacted>"))
                .field("db_name", db_name)
                .finish(),
        }
    }
}

/// A parsed `mysql` trigger.
#[derive(Clone, Debug)]
pub struct MySqlConfig {
    pub index: usize,
    pub query: String,
    /// `queryValue`: target per replica.
    pub query_value: f64,
    /// `activationQueryValue` (default 0).
    pub activation_query_value: f64,
    /// The database named in the metric (`dbName`, or the text after the last `/` of the DSN).
    pub db_name: String,
    pub connection: MySqlConnection,
    pub metric_type: MetricTargetType,
}

pub fn parse(input: &TriggerInput<'_>) -> Result<Box<dyn TriggerConfig>, ScalerError> {
    Ok(Box::new(parse_config(input)?))
}

pub fn parse_config(input: &TriggerInput<'_>) -> Result<MySqlConfig, ScalerError> {
    let metric_type = input.external_metric_type()?;
    let connection_string: Option<String> =
        input.field("connectionString").order(AUTH_ENV).optional()?;
    let username: Option<String> = input
        .field("username")
        .order(METADATA_AUTH_ENV)
        .optional()?;
    let password: Option<String> = input.field("password").order(AUTH_ENV).optional()?;
    let host: Option<String> = input.field("host").order(METADATA_AUTH).optional()?;
    let port: Option<String> = input.field("port").order(METADATA_AUTH).optional()?;
    let db_name: Option<String> = input.field("dbName").order(METADATA_AUTH).optional()?;
    let query: String = input.field("query").order(METADATA).required()?;
    let query_value: f64 = input.field("queryValue").order(METADATA).required()?;
    let activation_query_value: f64 = input
        .field("activationQueryValue")
        .order(METADATA)
        .default("0")
        .required()?;
    // `metricName` is accepted and ignored, as upstream (the name is generated).
    let _: Option<String> = input.field("metricName").order(METADATA).optional()?;
    let (db_name, connection) = match connection_string {
        Some(dsn) => (
            dsn.rsplit('/').next().unwrap_or_default().to_owned(),
            MySqlConnection::Dsn(dsn),
        ),
        None => {
            let db_name = db_name.unwrap_or_default();
            (
                db_name.clone(),
                MySqlConnection::Fields {
                    host: host.unwrap_or_default(),
                    port: port.unwrap_or_default(),
                    username,
                    password,
                    db_name,
                },
            )
        }
    };
    Ok(MySqlConfig {
        index: input.index,
        query,
        query_value,
        activation_query_value,
        db_name,
        connection,
        metric_type,
    })
}

#[async_trait::async_trait]
impl TriggerConfig for MySqlConfig {
    fn metric_spec(&self) -> MetricSpec {
        MetricSpec::External {
            metric_name: crate::external_metric_name(
                self.index,
                &format!("mysql-{}", self.db_name),
            ),
            target_type: self.metric_type,
            target: self.query_value,
        }
    }

    fn activation_threshold(&self) -> Option<f64> {
        Some(self.activation_query_value)
    }

    fn trigger(&self) -> TriggerRef {
        TriggerRef {
            index: self.index,
            trigger_type: TRIGGER_TYPE.into(),
        }
    }

    /// Build: the DSN's `timeout` (connect and ping). Sample: a connection plus the query, bounded by the
    /// DSN's `readTimeout` as the Go driver's read deadline does, else by
    /// [`crate::timeouts::SQL_QUERY_TIMEOUT`] (upstream sets no bound).
    fn timeouts(&self, _defaults: &TimeoutDefaults) -> ScalerTimeouts {
        let t = connection_timeouts(&self.connection);
        ScalerTimeouts {
            build: Some(t.connect),
            sample: Some(
                t.connect
                    .saturating_add(t.read.unwrap_or(crate::timeouts::SQL_QUERY_TIMEOUT)),
            ),
        }
    }

    /// The socket of a `unix(…)` DSN (the driver's default when the address is empty).
    fn files(&self) -> Vec<FileUse> {
        match &self.connection {
            MySqlConnection::Dsn(dsn) => match parse_dsn(dsn) {
                Ok(d) if d.net == "unix" => vec![FileUse {
                    field: "connectionString",
                    path: unix_socket(&d.addr).to_owned(),
                }],
                _ => Vec::new(),
            },
            MySqlConnection::Fields { .. } => Vec::new(),
        }
    }

    async fn build(&self, ctx: &BuildContext) -> Result<Arc<dyn Scaler>, ScalerError> {
        let pool = ctx
            .mysql
            .get(&self.connection, &self.trigger(), &ctx.files, &ctx.tls)
            .await?;
        Ok(Arc::new(MySqlScaler {
            config: self.clone(),
            pool,
        }))
    }
}

/// The parts of a Go-driver DSN keda-rs uses.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Dsn {
    pub user: Option<String>,
    pub password: Option<String>,
    /// `tcp` (default) or `unix`.
    pub net: String,
    /// `host:port` for tcp, the socket path for unix (empty: the driver's default).
    pub addr: String,
    pub db_name: String,
    /// `?key=value` parameters, unescaped, in order.
    pub params: Vec<(String, String)>,
}

/// Parses `[user[:password]@][net[(addr)]]/dbname[?param=value&…]` like the Go MySQL driver (the last `/`
/// separates the database; the last `@` before it the credentials).
pub fn parse_dsn(dsn: &str) -> Result<Dsn, String> {
    let slash = dsn
        .rfind('/')
        .ok_or("the connection string has no '/' before the database name")?;
    let (left, right) = (&dsn[..slash], &dsn[slash + 1..]);
    let mut out = Dsn::default();
    let net_addr = match left.rfind('@') {
        Some(at) => {
            let credentials = &left[..at];
            match credentials.split_once(':') {
                Some((u, p)) => {
                    out.user = Some(u.to_owned());
                    out.password = Some(p.to_owned());
                }
                None => out.user = Some(credentials.to_owned()),
            }
            &left[at + 1..]
        }
        None => left,
    };
    match net_addr.find('(') {
        Some(open) => {
            let addr = net_addr[open + 1..]
                .strip_suffix(')')
                .ok_or("the address in the connection string is not closed with ')'")?;
            out.net = net_addr[..open].to_owned();
            out.addr = addr.to_owned();
        }
        None => out.net = net_addr.to_owned(),
    }
    if out.net.is_empty() {
        out.net = "tcp".into();
    }
    let (db, query) = right.split_once('?').unwrap_or((right, ""));
    out.db_name = unescape(db)?;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair
            .split_once('=')
            .ok_or_else(|| format!("parameter {pair:?} of the connection string has no '='"))?;
        out.params.push((unescape(k)?, unescape(v)?));
    }
    Ok(out)
}

fn unescape(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let b = s
                    .get(i + 1..i + 3)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or("the connection string has an invalid %-escape")?;
                out.push(b);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| "the connection string is not UTF-8 once unescaped".into())
}

/// Go driver parameters that only change client-side behaviour keda-rs does not have.
const IGNORED_PARAMS: &[&str] = &[
    "allowAllFiles",
    "allowCleartextPasswords",
    "allowFallbackToPlaintext",
    "allowNativePasswords",
    "allowOldPasswords",
    "charset",
    "checkConnLiveness",
    "clientFoundRows",
    "collation",
    "columnsWithAlias",
    "connectionAttributes",
    "interpolateParams",
    "loc",
    "maxAllowedPacket",
    "multiStatements",
    "parseTime",
    "readTimeout",
    "rejectReadOnly",
    "serverPubKey",
    "writeTimeout",
];

/// Splits `host:port` (port 3306 when absent; empty host: this machine).
fn host_port(addr: &str) -> Result<(String, u16), String> {
    let (host, port) = match addr.strip_prefix('[') {
        Some(rest) => {
            let (h, after) = rest
                .split_once(']')
                .ok_or_else(|| format!("address {addr:?}: missing ']'"))?;
            (h, after.strip_prefix(':'))
        }
        None => match addr.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (addr, None),
        },
    };
    let port = match port {
        None | Some("") => 3306,
        Some(p) => p
            .parse()
            .map_err(|_| format!("port {p:?} is not a port number"))?,
    };
    let host = if host.is_empty() { "127.0.0.1" } else { host };
    Ok((host.to_owned(), port))
}

/// A Go-driver DSN duration parameter; 0 means unset, as in the driver.
fn dsn_duration(value: &str) -> Result<Option<Duration>, String> {
    <Duration as crate::input::FieldValue>::parse_field(value).map(|d| (!d.is_zero()).then_some(d))
}

/// The DSN's `timeout` and `readTimeout`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionTimeouts {
    /// `timeout` (default [`CONNECT_TIMEOUT`]): to get a connection, and at build to ping it.
    pub connect: Duration,
    /// `readTimeout`, when set: the Go driver's read deadline, so the longest a query waits.
    pub read: Option<Duration>,
}

/// The timeouts written in a connection's DSN; defaults for separate fields or a DSN that does not parse
/// (building then fails at once).
pub fn connection_timeouts(conn: &MySqlConnection) -> ConnectionTimeouts {
    let mut out = ConnectionTimeouts {
        connect: CONNECT_TIMEOUT,
        read: None,
    };
    if let MySqlConnection::Dsn(dsn) = conn
        && let Ok(d) = parse_dsn(dsn)
    {
        for (k, v) in &d.params {
            match k.as_str() {
                "timeout" => {
                    out.connect = dsn_duration(v).ok().flatten().unwrap_or(CONNECT_TIMEOUT);
                }
                "readTimeout" => out.read = dsn_duration(v).ok().flatten(),
                _ => {}
            }
        }
    }
    out
}

/// The socket path of a `unix(addr)` DSN: `addr`, or the Go driver's default.
fn unix_socket(addr: &str) -> &str {
    if addr.is_empty() {
        "/tmp/mysql.sock"
    } else {
        addr
    }
}

/// Client options for a connection and the time to wait for a connection (the DSN's `timeout`); errors
/// name the field to fix. A Unix socket must lie under `files` and is connected to by its resolved path.
pub fn client_options(
    conn: &MySqlConnection,
    files: &FileRoot,
    tls: &ScalerTls,
) -> Result<(OptsBuilder, Duration), (&'static str, String)> {
    let base = OptsBuilder::default().prefer_socket(false).pool_opts(
        PoolOpts::default()
            .with_constraints(PoolConstraints::new(0, 4).unwrap_or_default())
            .with_inactive_connection_ttl(Duration::from_secs(300)),
    );
    match conn {
        MySqlConnection::Fields {
            host,
            port,
            username,
            password,
            db_name,
        } => {
            let (host, port) = host_port(&format!("{host}:{port}")).map_err(|r| ("port", r))?;
            let opts = base
                .ip_or_hostname(host)
                .tcp_port(port)
                .user(username.clone())
                .pass(password.clone())
                .db_name((!db_name.is_empty()).then(|| db_name.clone()));
            Ok((opts, CONNECT_TIMEOUT))
        }
        MySqlConnection::Dsn(dsn) => {
            let field = "connectionString";
            let d = parse_dsn(dsn).map_err(|r| (field, r))?;
            let mut opts = base
                .user(d.user)
                .pass(d.password)
                .db_name((!d.db_name.is_empty()).then_some(d.db_name));
            opts = match d.net.as_str() {
                "tcp" | "tcp4" | "tcp6" => {
                    let (host, port) = host_port(&d.addr).map_err(|r| (field, r))?;
                    opts.ip_or_hostname(host).tcp_port(port)
                }
                "unix" => {
                    let path = files
                        .resolve(unix_socket(&d.addr))
                        .map_err(|e| (field, e.to_string()))?;
                    opts.socket(Some(path.display().to_string()))
                }
                other => {
                    return Err((
                        field,
                        format!("network {other:?} is not supported; use tcp or unix"),
                    ));
                }
            };
            let mut init = Vec::new();
            let mut connect_timeout = CONNECT_TIMEOUT;
            for (k, v) in d.params {
                match k.as_str() {
                    "tls" => {
                        opts = match v.as_str() {
                            // The bundled roots (the driver's), the system's and `--ca-dir`'s.
                            "true" => opts.ssl_opts(SslOpts::default().with_root_certs(
                                tls.certs().iter().map(|c| c.to_vec().into()).collect(),
                            )),
                            "skip-verify" | "preferred" => opts.ssl_opts(
                                SslOpts::default().with_danger_accept_invalid_certs(true),
                            ),
                            "false" | "" => opts.ssl_opts(None::<SslOpts>),
                            other => {
                                return Err((
                                    field,
                                    format!(
                                        "tls={other:?}: use true, skip-verify, preferred or false \
                                         (named TLS configurations are not supported)"
                                    ),
                                ));
                            }
                        }
                    }
                    "timeout" => {
                        connect_timeout = dsn_duration(&v)
                            .map_err(|r| (field, format!("timeout: {r}")))?
                            .unwrap_or(CONNECT_TIMEOUT);
                    }
                    k if IGNORED_PARAMS.contains(&k) => {}
                    // The driver sets any other parameter as a session variable.
                    _ => init.push(format!("SET {k}={v}")),
                }
            }
            Ok((opts.init(init), connect_timeout))
        }
    }
}

/// Connection pools shared by triggers with the same connection settings; a pool closes with the last
/// scaler using it.
#[derive(Default)]
pub struct MySqlPools(ClientCache<MySqlConnection, SharedPool>);

impl MySqlPools {
    /// Number of live shared pools (for tests and telemetry).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    async fn get(
        &self,
        conn: &MySqlConnection,
        trigger: &TriggerRef,
        files: &FileRoot,
        tls: &ScalerTls,
    ) -> Result<Arc<SharedPool>, ScalerError> {
        self.0
            .get_or_connect(conn, SharedPool::connect(conn, trigger, files, tls))
            .await
    }
}

/// A pool and how long to wait for one of its connections.
pub(crate) struct SharedPool {
    pool: Pool,
    connect_timeout: Duration,
}

impl SharedPool {
    async fn connect(
        conn: &MySqlConnection,
        trigger: &TriggerRef,
        files: &FileRoot,
        tls: &ScalerTls,
    ) -> Result<SharedPool, ScalerError> {
        let (opts, connect_timeout) =
            client_options(conn, files, tls).map_err(|(field, reason)| ScalerError::Config {
                trigger: trigger.clone(),
                field: field.to_owned(),
                reason,
            })?;
        let pool = SharedPool {
            pool: Pool::new(opts),
            connect_timeout,
        };
        // Upstream pings at build: an unreachable server fails the build. Connecting and the ping share
        // the DSN's `timeout`.
        let ping = async {
            let mut c = pool.pool.get_conn().await.map_err(|e| e.to_string())?;
            c.ping().await.map_err(|e| e.to_string())
        };
        tokio::time::timeout(connect_timeout, ping)
            .await
            .unwrap_or_else(|_| Err(format!("no connection within {connect_timeout:?}")))
            .map_err(|message| ScalerError::Backend {
                trigger: trigger.clone(),
                action: "connecting to mysql",
                message,
            })?;
        Ok(pool)
    }

    async fn connection(&self) -> Result<mysql_async::Conn, String> {
        tokio::time::timeout(self.connect_timeout, self.pool.get_conn())
            .await
            .map_err(|_| format!("no connection within {:?}", self.connect_timeout))?
            .map_err(|e| e.to_string())
    }
}

struct MySqlScaler {
    config: MySqlConfig,
    pool: Arc<SharedPool>,
}

/// A query result cell as a number, as the Go driver scans into a float64.
fn value_number(v: &Value) -> Result<f64, String> {
    match v {
        Value::NULL => Err("the first column of the first row is NULL".into()),
        Value::Int(i) => Ok(*i as f64),
        Value::UInt(u) => Ok(*u as f64),
        Value::Float(f) => Ok(f64::from(*f)),
        Value::Double(d) => Ok(*d),
        Value::Bytes(b) => {
            let s = String::from_utf8_lossy(b);
            s.trim()
                .parse::<f64>()
                .map_err(|_| format!("{s:?} is not a number"))
        }
        other => Err(format!("{other:?} is not a number")),
    }
}

impl MySqlScaler {
    async fn query(&self) -> Result<f64, (&'static str, String)> {
        let mut conn = self
            .pool
            .connection()
            .await
            .map_err(|m| ("connecting to mysql", m))?;
        let row: Option<Row> = conn
            .query_first(self.config.query.as_str())
            .await
            .map_err(|e| ("querying mysql", e.to_string()))?;
        let row = row.ok_or(("querying mysql", "the query returned no rows".to_owned()))?;
        let cell = row.as_ref(0).ok_or((
            "reading the query result",
            "the query returned no columns".to_owned(),
        ))?;
        value_number(cell).map_err(|m| ("reading the query result", m))
    }
}

#[async_trait::async_trait]
impl Scaler for MySqlScaler {
    async fn sample(&self) -> Result<Sample, ScalerError> {
        let value = self
            .query()
            .await
            .map_err(|(action, message)| ScalerError::Backend {
                trigger: self.config.trigger(),
                action,
                message,
            })?;
        Ok(Sample {
            value,
            active: crate::is_active(value, self.config.activation_query_value),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dsns_parse_like_the_go_driver() {
        let d = parse_dsn("user:p@ss:w@tcp(db.svc:3307)/stats?tls=skip-verify&time_zone=%27UTC%27")
            .unwrap();
        assert_eq!(d.user.as_deref(), Some("user"));
        assert_eq!(d.password.as_deref(), Some("p@ss:w"));
        assert_eq!(d.net, "tcp");
        assert_eq!(d.addr, "db.svc:3307");
        assert_eq!(d.db_name, "stats");
        assert_eq!(
            d.params,
            vec![
                ("tls".into(), "skip-verify".into()),
                ("time_zone".into(), "'UTC'".into())
            ]
        );
        let d = parse_dsn("/db").unwrap();
        assert_eq!((d.user, d.net.as_str(), d.addr.as_str()), (None, "tcp", ""));
        let d = parse_dsn("root@unix(/run/mysqld.sock)/").unwrap();
        assert_eq!(
            (d.net.as_str(), d.addr.as_str()),
            ("unix", "/run/mysqld.sock")
        );
        assert!(parse_dsn("no-slash").is_err());
        assert!(parse_dsn("u@tcp(h:1/db").is_err());
    }

    #[test]
    fn options_from_fields_and_dsns() {
        let o: mysql_async::Opts = client_options(
            &MySqlConnection::Fields {
                host: "h".into(),
                port: "3307".into(),
                username: Some("u".into()),
                password: Some("p".into()),
                db_name: "d".into(),
            },
            &FileRoot::unset(),
            &ScalerTls::default(),
        )
        .unwrap()
        .0
        .into();
        assert_eq!((o.ip_or_hostname(), o.tcp_port()), ("h", 3307));
        assert_eq!(
            (o.user(), o.pass(), o.db_name()),
            (Some("u"), Some("p"), Some("d"))
        );
        let bad_port = client_options(
            &MySqlConnection::Fields {
                host: "h".into(),
                port: "test_port".into(),
                username: None,
                password: None,
                db_name: "d".into(),
            },
            &FileRoot::unset(),
            &ScalerTls::default(),
        );
        assert_eq!(bad_port.err().map(|e| e.0), Some("port"));
        let (o, timeout) = client_options(
            &MySqlConnection::Dsn("u:p@tcp(127.0.0.1)/d?tls=true&sql_mode=ANSI&timeout=2s".into()),
            &FileRoot::unset(),
            &ScalerTls::default(),
        )
        .unwrap();
        assert_eq!(timeout, Duration::from_secs(2));
        let o: mysql_async::Opts = o.into();
        assert_eq!((o.ip_or_hostname(), o.tcp_port()), ("127.0.0.1", 3306));
        assert!(o.ssl_opts().is_some());
        assert_eq!(o.init(), ["SET sql_mode=ANSI".to_owned()]);
        assert!(
            client_options(
                &MySqlConnection::Dsn("u@pipe(x)/d".into()),
                &FileRoot::unset(),
                &ScalerTls::default(),
            )
            .is_err()
        );
    }

    #[test]
    fn unix_sockets_are_confined() {
        let config = |dsn: &str| MySqlConfig {
            index: 1,
            query: "SELECT 1".into(),
            query_value: 1.0,
            activation_query_value: 0.0,
            db_name: "d".into(),
            connection: MySqlConnection::Dsn(dsn.into()),
            metric_type: MetricTargetType::AverageValue,
        };
        let paths = |dsn: &str| -> Vec<String> {
            config(dsn).files().into_iter().map(|f| f.path).collect()
        };
        assert_eq!(paths("u:p@tcp(db:3306)/d"), Vec::<String>::new());
        assert_eq!(
            paths("u@unix(/run/mysqld/mysqld.sock)/d"),
            ["/run/mysqld/mysqld.sock"]
        );
        assert_eq!(paths("u@unix/d"), ["/tmp/mysql.sock"]);
        let root = FileRoot::new("/mnt/auth");
        let err = crate::check_files(&config("u@unix(/run/mysqld/mysqld.sock)/d"), &root)
            .expect_err("outside");
        assert_eq!(
            err.to_string(),
            "trigger 1 (mysql): connectionString: \"/run/mysqld/mysqld.sock\" is outside \
             --filepath-auth-root-path (/mnt/auth)"
        );
        assert!(crate::check_files(&config("u@unix(/mnt/auth/my.sock)/d"), &root).is_ok());
        // The build resolves it too: a socket outside the root is never connected to.
        let refused = client_options(
            &MySqlConnection::Dsn("u@unix(/run/mysqld/mysqld.sock)/d".into()),
            &root,
            &ScalerTls::default(),
        );
        assert_eq!(refused.err().map(|e| e.0), Some("connectionString"));
    }

    #[test]
    fn cells_become_numbers() {
        assert_eq!(value_number(&Value::Bytes(b"12.5".to_vec())), Ok(12.5));
        assert_eq!(value_number(&Value::Int(-3)), Ok(-3.0));
        assert!(value_number(&Value::NULL).is_err());
        assert!(value_number(&Value::Bytes(b"abc".to_vec())).is_err());
    }
}
