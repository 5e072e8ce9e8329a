//! The trigger's settings, and the connection string they make.

use std::fmt;

use crate::input::{METADATA, Source};
use crate::{MetricTargetType, ScalerError, TriggerConfig, TriggerInput};

pub(super) const TRIGGER_TYPE: &str = "postgresql";
const AUTH_ENV: &[Source] = &[Source::AuthParams, Source::ResolvedEnv];
const AUTH_METADATA: &[Source] = &[Source::AuthParams, Source::Metadata];

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
}
