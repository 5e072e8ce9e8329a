//! `postgresql`: the number in the first column of the first row of a query.
//!
//! The connection is either a whole connection string (`connection`, from the TriggerAuthentication or
//! `connectionFromEnv`; key=value pairs or a `postgres://` URL) or built from `host`, `port`, `userName`,
//! `dbName`, `sslmode` (TriggerAuthentication, then metadata) and `password` (TriggerAuthentication, then
//! `passwordFromEnv`). `sslmode` follows libpq: `disable`; `allow`/`prefer` (the default) and `require`
//! encrypt without checking the server certificate (`require` checks it against `sslrootcert` when one is
//! given); `verify-ca` checks the chain; `verify-full` also the host name. `sslcert`/`sslkey` are client
//! certificate files. Those files, and a Unix-socket directory given as `host`, are opened only under
//! `--filepath-auth-root-path` ([`crate::files`]); a malformed file is reported without its contents.//!
//! One module per concern: `config` (the trigger's settings and the connection string they make),
//! `connection_string` (splitting and parsing a connection string), `tls` (libpq's `sslmode` on rustls),
//! `client` (the shared connections) and `scaler` (the trigger's bounds, files and one query per sample).

mod client;
mod config;
mod connection_string;
mod scaler;
mod tls;

pub use client::PostgresClients;
pub use config::{PostgresConfig, escape_value, parse, parse_config};
pub use connection_string::{CONNECT_TIMEOUT, SslParams, connect_bound, split_ssl_params};
