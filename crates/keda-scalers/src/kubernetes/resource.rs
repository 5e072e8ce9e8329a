//! `kubernetes-resource`: a number kept in a ConfigMap or Secret of the ScaledObject's namespace, as
//! upstream reads it:
//!
//! - `resourceKind` (`ConfigMap` or `Secret`), `resourceName` and `key` name the value;
//! - `format`: `number` (default; the value itself), `json` or `yaml` (then `valueLocation` is the path:
//!   a GJSON path for json, dot-separated keys and list indexes for yaml);
//! - `valueType`: `float64` (default), `int64` or `quantity` (`500m`, `2Gi`), which decides how the text
//!   or the value at the path becomes a number;
//! - `targetValue` (above 0) and `activationTargetValue` (default 0); the metric is
//!   `s<index>-<configmap|secret>-<resourceName>-<key>`.
//!
//! As upstream's `Sscanf`, a number is read from the start of the text and what follows it is ignored
//! (`"3 replicas"` is 3). The object is read with one GET per poll ([`crate::config_data`]).

use std::sync::Arc;

use serde_json::Value;

use crate::config_data::{ConfigData, ConfigKind};
use crate::input::METADATA;
use crate::{
    BuildContext, MetricSpec, MetricTargetType, Sample, Scaler, ScalerError, ScalerTimeouts,
    TimeoutDefaults, TriggerConfig, TriggerInput, TriggerRef,
};

const TYPE: &str = "kubernetes-resource";

/// `format`: how the stored text holds the value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Number,
    Json,
    Yaml,
}

/// `valueType`: how the value becomes a number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueType {
    Float64,
    Int64,
    Quantity,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ResourceConfig {
    pub index: usize,
    /// The namespace of the object the trigger belongs to: where the ConfigMap or Secret is read.
    pub namespace: String,
    pub kind: ConfigKind,
    pub resource_name: String,
    pub key: String,
    pub format: Format,
    /// `valueLocation`; set exactly when `format` is json or yaml.
    pub value_location: Option<String>,
    pub value_type: ValueType,
    pub target_value: f64,
    pub activation_target_value: f64,
    pub metric_type: MetricTargetType,
}

pub fn parse(input: &TriggerInput<'_>) -> Result<Box<dyn TriggerConfig>, ScalerError> {
    Ok(Box::new(parse_config(input)?))
}

pub fn parse_config(input: &TriggerInput<'_>) -> Result<ResourceConfig, ScalerError> {
    let metric_type = input.external_metric_type()?;
    let kind = match input
        .field("resourceKind")
        .order(METADATA)
        .one_of(&["ConfigMap", "Secret"])
        .required::<String>()?
        .as_str()
    {
        "Secret" => ConfigKind::Secret,
        _ => ConfigKind::ConfigMap,
    };
    let resource_name: String = input.field("resourceName").order(METADATA).required()?;
    let key: String = input.field("key").order(METADATA).required()?;
    let format = match input
        .field("format")
        .order(METADATA)
        .default("number")
        .one_of(&["number", "json", "yaml"])
        .required::<String>()?
        .as_str()
    {
        "json" => Format::Json,
        "yaml" => Format::Yaml,
        _ => Format::Number,
    };
    let value_location: Option<String> = input.field("valueLocation").order(METADATA).optional()?;
    let value_type = match input
        .field("valueType")
        .order(METADATA)
        .default("float64")
        .one_of(&["float64", "int64", "quantity"])
        .required::<String>()?
        .as_str()
    {
        "int64" => ValueType::Int64,
        "quantity" => ValueType::Quantity,
        _ => ValueType::Float64,
    };
    let target_value: f64 = input.field("targetValue").order(METADATA).required()?;
    let activation_target_value: f64 = input
        .field("activationTargetValue")
        .order(METADATA)
        .default("0")
        .required()?;
    // Upstream's checks and messages, in its order.
    if target_value <= 0.0 {
        return Err(input.error("targetValue", "targetValue must be a float greater than 0"));
    }
    match (format, &value_location) {
        (Format::Number, Some(_)) => {
            return Err(input.error(
                "valueLocation",
                "valueLocation is only supported with json or yaml format",
            ));
        }
        (Format::Json, None) => {
            return Err(input.error("valueLocation", "valueLocation is required for json format"));
        }
        (Format::Yaml, None) => {
            return Err(input.error("valueLocation", "valueLocation is required for yaml format"));
        }
        _ => {}
    }
    Ok(ResourceConfig {
        index: input.index,
        namespace: input.namespace.to_owned(),
        kind,
        resource_name,
        key,
        format,
        value_location,
        value_type,
        target_value,
        activation_target_value,
        metric_type,
    })
}

impl ResourceConfig {
    /// The number in `raw`, the stored text of the key.
    pub fn value_of(&self, raw: &str) -> Result<f64, String> {
        let location = self.value_location.as_deref().unwrap_or_default();
        match self.format {
            Format::Number => match self.value_type {
                ValueType::Float64 => scan_float(raw)
                    .ok_or_else(|| format!("error parsing value as float64: {raw:?}")),
                ValueType::Int64 => scan_int(raw)
                    .map(|i| i as f64)
                    .ok_or_else(|| format!("error parsing value as int64: {raw:?}")),
                ValueType::Quantity => quantity(raw),
            },
            Format::Json => {
                let r = gjson::get(raw, location);
                if !r.exists() {
                    return Err(format!("path {location} not found in json"));
                }
                match (self.value_type, r.kind()) {
                    (ValueType::Int64, gjson::Kind::Number) => Ok(r.i64() as f64),
                    (_, gjson::Kind::Number) => Ok(r.f64()),
                    (ValueType::Float64 | ValueType::Quantity, gjson::Kind::String) => {
                        quantity(r.str())
                    }
                    (_, kind) => Err(type_error(json_kind(kind))),
                }
            }
            Format::Yaml => {
                let root: Value =
                    serde_yaml_ng::from_str(raw).map_err(|e| format!("error parsing YAML: {e}"))?;
                let at = value_at_path(&root, location)
                    .ok_or_else(|| format!("path {location} not found in yaml"))?;
                match at {
                    Value::Number(n) => n.as_f64().ok_or_else(|| type_error(&n.to_string())),
                    Value::String(s) if self.value_type == ValueType::Quantity => quantity(s),
                    Value::String(s) => scan_float(s).ok_or_else(|| type_error(s)),
                    other => Err(type_error(&other.to_string())),
                }
            }
        }
    }
}

fn type_error(got: &str) -> String {
    format!(
        "valueLocation must point to value of type number or a string representing a Quantity, got: '{got}'"
    )
}

fn json_kind(kind: gjson::Kind) -> &'static str {
    match kind {
        gjson::Kind::Null => "Null",
        gjson::Kind::False => "False",
        gjson::Kind::True => "True",
        gjson::Kind::Number => "Number",
        gjson::Kind::String => "String",
        gjson::Kind::Array | gjson::Kind::Object => "JSON",
    }
}

fn quantity(s: &str) -> Result<f64, String> {
    crate::quantity::value(s.trim())
        .ok_or_else(|| format!("error parsing value as quantity: {s:?} is not a quantity"))
}

/// Dot-separated keys of mappings and indexes of lists.
fn value_at_path<'v>(root: &'v Value, path: &str) -> Option<&'v Value> {
    path.split('.').try_fold(root, |cur, key| match cur {
        Value::Object(m) => m.get(key),
        Value::Array(a) => key.parse::<usize>().ok().and_then(|i| a.get(i)),
        _ => None,
    })
}

/// The float at the start of `s` (after spaces), as Go's `Sscanf("%f")` reads it; the rest is ignored.
fn scan_float(s: &str) -> Option<f64> {
    let token = s.trim_start().split(char::is_whitespace).next()?;
    (1..=token.len())
        .rev()
        .filter(|&n| token.is_char_boundary(n))
        .find_map(|n| token[..n].parse::<f64>().ok())
}

/// The integer at the start of `s` (after spaces), as Go's `Sscanf("%d")` reads it.
fn scan_int(s: &str) -> Option<i64> {
    let t = s.trim_start();
    let sign = usize::from(t.starts_with(['+', '-']));
    let digits = t[sign..].bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    t[..sign + digits].parse().ok()
}

#[async_trait::async_trait]
impl TriggerConfig for ResourceConfig {
    fn metric_spec(&self) -> MetricSpec {
        MetricSpec::External {
            metric_name: crate::external_metric_name(
                self.index,
                &format!(
                    "{}-{}-{}",
                    self.kind.as_str().to_lowercase(),
                    self.resource_name,
                    self.key
                ),
            ),
            target_type: self.metric_type,
            target: self.target_value,
        }
    }

    fn activation_threshold(&self) -> Option<f64> {
        Some(self.activation_target_value)
    }

    fn trigger(&self) -> TriggerRef {
        TriggerRef {
            index: self.index,
            trigger_type: TYPE.into(),
        }
    }

    /// One GET per sample, bounded like an HTTP request (upstream reads its cache, unbounded).
    fn timeouts(&self, defaults: &TimeoutDefaults) -> ScalerTimeouts {
        ScalerTimeouts::http(defaults.http)
    }

    async fn build(&self, ctx: &BuildContext) -> Result<Arc<dyn Scaler>, ScalerError> {
        let Some(source) = ctx.config_data.clone() else {
            return Err(ScalerError::Config {
                trigger: self.trigger(),
                field: "resourceName".into(),
                reason: "reading a ConfigMap or Secret needs the Kubernetes API, and this process \
                         has no access to it"
                    .into(),
            });
        };
        Ok(Arc::new(ResourceScaler {
            config: self.clone(),
            source,
        }))
    }
}

struct ResourceScaler {
    config: ResourceConfig,
    source: Arc<dyn ConfigData>,
}

#[async_trait::async_trait]
impl Scaler for ResourceScaler {
    async fn sample(&self) -> Result<Sample, ScalerError> {
        let c = &self.config;
        let backend = |message| ScalerError::Backend {
            trigger: c.trigger(),
            action: match c.kind {
                ConfigKind::ConfigMap => "getting metric value from ConfigMap",
                ConfigKind::Secret => "getting metric value from Secret",
            },
            message,
        };
        let raw = self
            .source
            .value(c.kind, &c.namespace, &c.resource_name, &c.key)
            .await
            .map_err(backend)?
            .ok_or_else(|| {
                backend(format!(
                    "key {} not found in {} {}/{}",
                    c.key,
                    c.kind.as_str(),
                    c.namespace,
                    c.resource_name
                ))
            })?;
        let value = c.value_of(&raw).map_err(backend)?;
        Ok(Sample {
            value,
            active: crate::is_active(value, c.activation_target_value),
        })
    }
}
