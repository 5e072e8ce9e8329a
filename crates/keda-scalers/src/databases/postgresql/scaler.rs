//! The scaler: the trigger's bounds and files, its shared connection, and one query per sample.

use std::sync::Arc;

use super::client::PostgresConnection;
use super::config::{PostgresConfig, TRIGGER_TYPE};
use super::connection_string::{
    CONNECT_TIMEOUT, client_config, connect_bound, split_ssl_params, unix_hosts,
};
use crate::files::FileUse;
use crate::{
    BuildContext, MetricSpec, Sample, Scaler, ScalerError, ScalerTimeouts, TimeoutDefaults,
    TriggerConfig, TriggerRef,
};

#[async_trait::async_trait]
impl TriggerConfig for PostgresConfig {
    fn metric_spec(&self) -> MetricSpec {
        MetricSpec::External {
            metric_name: crate::external_metric_name(self.index, "postgresql"),
            target_type: self.metric_type,
            target: self.target_query_value,
        }
    }

    fn activation_threshold(&self) -> Option<f64> {
        Some(self.activation_target_query_value)
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
    use crate::MetricTargetType;
    use crate::files::FileRoot;

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
