//! What a scaler's parse step reads, and the declarative per-field lookup upstream scalers share:
//! each field names the sources it may come from, in order (trigger metadata, `<key>FromEnv` resolved
//! against the scale target's container env, authentication parameters); values are trimmed and an empty
//! value counts as missing; then defaults, enums, mutually exclusive values and deprecations apply.

use std::collections::BTreeMap;

use crate::MetricTargetType;
use crate::error::{ScalerError, TriggerRef};

/// One source a parameter can be read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// `triggers[].metadata[<key>]`.
    Metadata,
    /// `triggers[].metadata[<key>FromEnv]` names an env var of the scale target's container.
    ResolvedEnv,
    /// Parameters resolved from the TriggerAuthentication / ClusterTriggerAuthentication.
    AuthParams,
}

/// Only trigger metadata (upstream's default order).
pub const METADATA: &[Source] = &[Source::Metadata];
/// Trigger metadata, then `<key>FromEnv`.
pub const METADATA_ENV: &[Source] = &[Source::Metadata, Source::ResolvedEnv];
/// Trigger metadata, then `<key>FromEnv`, then authentication parameters.
pub const ANY: &[Source] = &[Source::Metadata, Source::ResolvedEnv, Source::AuthParams];
/// Trigger metadata, then authentication parameters.
pub const METADATA_AUTH: &[Source] = &[Source::Metadata, Source::AuthParams];
/// Only authentication parameters (secrets).
pub const AUTH: &[Source] = &[Source::AuthParams];

/// Everything a scaler's parse step may look at. Pure data: parse never does IO.
#[derive(Clone, Copy, Debug)]
pub struct TriggerInput<'a> {
    /// Position of the trigger in `spec.triggers` (the `s<index>-` of metric names).
    pub index: usize,
    pub trigger_type: &'a str,
    /// Namespace of the ScaledObject or ScaledJob the trigger belongs to (`kubernetes-workload` counts
    /// the pods of this namespace and names its metric after it).
    pub namespace: &'a str,
    /// `triggers[].name`.
    pub name: Option<&'a str>,
    pub metadata: &'a BTreeMap<String, String>,
    /// Environment of the scale target's container (after envFrom and `$(VAR)` expansion).
    pub resolved_env: &'a BTreeMap<String, String>,
    pub auth_params: &'a BTreeMap<String, String>,
    /// `triggers[].metricType` as written (None = AverageValue).
    pub metric_type: Option<&'a str>,
}

impl<'a> TriggerInput<'a> {
    pub fn trigger(&self) -> TriggerRef {
        TriggerRef {
            index: self.index,
            trigger_type: self.trigger_type.to_owned(),
        }
    }

    /// A configuration error about `field`.
    pub fn error(&self, field: &str, reason: impl Into<String>) -> ScalerError {
        ScalerError::Config {
            trigger: self.trigger(),
            field: field.to_owned(),
            reason: reason.into(),
        }
    }

    /// Declares a field; chain `.order()`, `.alias()`, `.default()`… then read it.
    pub fn field(&self, name: &'static str) -> Field<'_, 'a> {
        Field {
            input: self,
            names: vec![name],
            order: METADATA,
            default: None,
            deprecated: None,
            allowed: None,
        }
    }

    /// The first non-empty, trimmed value of any of `names` in the given source order.
    fn lookup(&self, names: &[&str], order: &[Source]) -> Option<(String, &'static str)> {
        for source in order {
            for name in names {
                let found = match source {
                    Source::Metadata => self.metadata.get(*name),
                    Source::AuthParams => self.auth_params.get(*name),
                    Source::ResolvedEnv => self
                        .metadata
                        .get(&format!("{name}FromEnv"))
                        .and_then(|var| self.resolved_env.get(var.trim())),
                };
                if let Some(v) = found.map(|v| v.trim()).filter(|v| !v.is_empty()) {
                    let from = match source {
                        Source::Metadata => "metadata",
                        Source::ResolvedEnv => "env",
                        Source::AuthParams => "auth",
                    };
                    return Some((v.to_owned(), from));
                }
            }
        }
        None
    }

    /// The trigger's `metricType` for an external metric: AverageValue (default) or Value.
    pub fn external_metric_type(&self) -> Result<MetricTargetType, ScalerError> {
        match self.metric_type.map(str::trim).unwrap_or("") {
            "" | "AverageValue" => Ok(MetricTargetType::AverageValue),
            "Value" => Ok(MetricTargetType::Value),
            "Utilization" => Err(self.error(
                "metricType",
                "Utilization is only supported for cpu and memory triggers; use AverageValue or Value",
            )),
            other => Err(self.error(
                "metricType",
                format!("{other:?} is not a metric type; use AverageValue or Value"),
            )),
        }
    }
}

/// A field being declared. Reading methods apply the declaration and report errors naming the field.
pub struct Field<'i, 'a> {
    input: &'i TriggerInput<'a>,
    names: Vec<&'static str>,
    order: &'static [Source],
    default: Option<&'static str>,
    deprecated: Option<&'static str>,
    allowed: Option<&'static [&'static str]>,
}

impl Field<'_, '_> {
    /// Sources to read, in order (default: trigger metadata only).
    pub fn order(mut self, order: &'static [Source]) -> Self {
        self.order = order;
        self
    }
    /// Another accepted key for the same parameter, tried after the earlier ones.
    pub fn alias(mut self, name: &'static str) -> Self {
        self.names.push(name);
        self
    }
    /// Value used when the field is missing.
    pub fn default(mut self, value: &'static str) -> Self {
        self.default = Some(value);
        self
    }
    /// The key was removed upstream: setting it is an error with this hint.
    pub fn deprecated(mut self, hint: &'static str) -> Self {
        self.deprecated = Some(hint);
        self
    }
    /// Allowed values (checked after trimming).
    pub fn one_of(mut self, values: &'static [&'static str]) -> Self {
        self.allowed = Some(values);
        self
    }

    fn name(&self) -> &'static str {
        self.names[0]
    }

    /// The raw value after lookup, deprecation, default and enum checks; `None` when missing.
    pub fn raw(&self) -> Result<Option<String>, ScalerError> {
        let found = self.input.lookup(&self.names, self.order).map(|(v, _)| v);
        if let (Some(_), Some(hint)) = (&found, self.deprecated) {
            return Err(self
                .input
                .error(self.name(), format!("is no longer supported: {hint}")));
        }
        let value = found.or_else(|| self.default.map(str::to_owned));
        if let (Some(v), Some(allowed)) = (&value, self.allowed)
            && !allowed.contains(&v.as_str())
        {
            return Err(self.input.error(
                self.name(),
                format!("{v:?} must be one of {}", allowed.join(", ")),
            ));
        }
        Ok(value)
    }

    /// The value, or an error saying where it was looked for.
    pub fn required<T: FieldValue>(&self) -> Result<T, ScalerError> {
        match self.raw()? {
            Some(v) => T::parse_field(&v).map_err(|why| self.input.error(self.name(), why)),
            None => Err(self.input.error(
                self.name(),
                format!("is required (looked in {})", self.where_looked()),
            )),
        }
    }

    /// The value if present (or defaulted).
    pub fn optional<T: FieldValue>(&self) -> Result<Option<T>, ScalerError> {
        self.raw()?
            .map(|v| T::parse_field(&v).map_err(|why| self.input.error(self.name(), why)))
            .transpose()
    }

    fn where_looked(&self) -> String {
        self.order
            .iter()
            .map(|s| match s {
                Source::Metadata => format!("metadata {}", self.names.join("/")),
                Source::ResolvedEnv => format!("metadata {}FromEnv", self.names[0]),
                Source::AuthParams => "the TriggerAuthentication".to_owned(),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Types a field can be parsed into, with upstream's (Go's) spelling rules.
pub trait FieldValue: Sized {
    fn parse_field(s: &str) -> Result<Self, String>;
}

impl FieldValue for String {
    fn parse_field(s: &str) -> Result<Self, String> {
        Ok(s.to_owned())
    }
}

impl FieldValue for f64 {
    fn parse_field(s: &str) -> Result<Self, String> {
        match s.parse::<f64>() {
            Ok(v) if v.is_finite() => Ok(v),
            _ => Err(format!("{s:?} is not a number")),
        }
    }
}

impl FieldValue for i64 {
    fn parse_field(s: &str) -> Result<Self, String> {
        s.parse::<i64>()
            .map_err(|_| format!("{s:?} is not an integer"))
    }
}

impl FieldValue for bool {
    /// Go's `strconv.ParseBool` spellings.
    fn parse_field(s: &str) -> Result<Self, String> {
        match s {
            "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
            "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
            _ => Err(format!("{s:?} is not a boolean (true or false)")),
        }
    }
}

impl FieldValue for std::time::Duration {
    /// A plain number is milliseconds (upstream's `timeout` convention); Go duration strings such as `5s`,
    /// `1m30s` or `250ms` are accepted too.
    fn parse_field(s: &str) -> Result<Self, String> {
        if let Ok(ms) = s.parse::<u64>() {
            return Ok(std::time::Duration::from_millis(ms));
        }
        parse_go_duration(s)
            .ok_or_else(|| format!("{s:?} is not a duration (milliseconds, or like 5s)"))
    }
}

fn parse_go_duration(s: &str) -> Option<std::time::Duration> {
    let mut total = 0f64;
    let mut rest = s;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let num_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let (num, tail) = rest.split_at(num_len);
        let value: f64 = num.parse().ok()?;
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let factor = match unit {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += value * factor;
        rest = tail;
    }
    // Not `from_secs_f64`, which panics past `Duration::MAX` (`99999999999999999999s`).
    std::time::Duration::try_from_secs_f64(total).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn lookup_follows_the_declared_order_and_trims() {
        let md = map(&[
            ("host", "  "),
            ("hostFromEnv", "REDIS_HOST"),
            ("port", " 6379 "),
        ]);
        let env = map(&[("REDIS_HOST", "redis.svc")]);
        let auth = map(&[("host", "from-auth"), ("password", "s3cret")]);
        let input = TriggerInput {
            index: 0,
            trigger_type: "redis",
            namespace: "default",
            name: None,
            metadata: &md,
            resolved_env: &env,
            auth_params: &auth,
            metric_type: None,
        };
        // Empty metadata counts as missing, so `<key>FromEnv` is used next.
        assert_eq!(
            input.field("host").order(ANY).required::<String>().unwrap(),
            "redis.svc"
        );
        assert_eq!(
            input
                .field("host")
                .order(&[Source::AuthParams, Source::Metadata])
                .required::<String>()
                .unwrap(),
            "from-auth"
        );
        assert_eq!(input.field("port").required::<i64>().unwrap(), 6379);
        assert_eq!(
            input
                .field("password")
                .order(METADATA)
                .optional::<String>()
                .unwrap(),
            None
        );
        assert_eq!(
            input
                .field("password")
                .order(AUTH)
                .optional::<String>()
                .unwrap()
                .as_deref(),
            Some("s3cret")
        );
        let err = input
            .field("listName")
            .order(METADATA_ENV)
            .required::<String>()
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "trigger 0 (redis): listName: is required (looked in metadata listName, metadata listNameFromEnv)"
        );
        assert!(err.is_permanent());
    }

    #[test]
    fn defaults_enums_deprecations_and_types() {
        let md = map(&[
            ("format", "xml"),
            ("bad", "yaml2"),
            ("old", "x"),
            ("n", "7.5"),
            ("b", "T"),
            ("t", "1m30s"),
        ]);
        let empty = BTreeMap::new();
        let input = TriggerInput {
            index: 2,
            trigger_type: "metrics-api",
            namespace: "default",
            name: None,
            metadata: &md,
            resolved_env: &empty,
            auth_params: &empty,
            metric_type: Some("Utilization"),
        };
        let fmts = &["json", "xml", "yaml", "prometheus"];
        assert_eq!(
            input
                .field("format")
                .one_of(fmts)
                .default("json")
                .required::<String>()
                .unwrap(),
            "xml"
        );
        assert_eq!(
            input
                .field("missing")
                .one_of(fmts)
                .default("json")
                .required::<String>()
                .unwrap(),
            "json"
        );
        let err = input
            .field("bad")
            .one_of(fmts)
            .required::<String>()
            .unwrap_err();
        assert_eq!(err.field(), Some("bad"));
        assert!(
            err.to_string()
                .contains("must be one of json, xml, yaml, prometheus"),
            "{err}"
        );
        assert!(
            input
                .field("old")
                .deprecated("use new instead")
                .optional::<String>()
                .is_err()
        );
        assert!(
            input
                .field("absent")
                .deprecated("use new instead")
                .optional::<String>()
                .unwrap()
                .is_none()
        );
        assert_eq!(input.field("n").required::<f64>().unwrap(), 7.5);
        assert!(input.field("n").required::<i64>().is_err());
        assert!(input.field("b").required::<bool>().unwrap());
        assert_eq!(
            input
                .field("t")
                .required::<std::time::Duration>()
                .unwrap()
                .as_secs(),
            90
        );
        assert!(input.external_metric_type().is_err());
    }
}
