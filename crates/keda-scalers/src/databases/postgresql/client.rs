//! The connections, one per connection string, shared by the triggers that use it.

use std::sync::Arc;
use std::time::Duration;

use tokio_postgres::{Client, SimpleQueryMessage};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::connection_string::{client_config, connect_bound, split_ssl_params, unix_hosts};
use super::tls::tls_setup;
use crate::client_cache::ClientCache;
use crate::files::FileRoot;
use crate::tls::ScalerTls;
use crate::{ScalerError, TriggerRef};

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
    pub(super) async fn query_number(&self, query: &str) -> Result<f64, (&'static str, String)> {
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

    pub(super) async fn get(
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
