//! Runs a parse table (`tests/parse_tables/<scaler>.yaml`): every case goes through the registry's parse
//! step; rejected cases must name the expected field with a permanent error, accepted cases must match the
//! listed properties of the scaler's typed config and the listed metric names.
//!
//! Case format: `name`, `type` (trigger type), optionally `namespace` (the object's; default `default`),
//! `metadata`, `auth`, `env` (maps of strings), then either
//! `error: <field>` or `expect: {property: value}`, and optionally `metrics: [{index, name}]`.

#![allow(dead_code)]

use std::collections::BTreeMap;

use keda_scalers::{ScalerError, TriggerInput, parse_trigger};
use serde_json::{Map, Value};

pub struct Case {
    pub name: String,
    pub trigger_type: String,
    /// The object's namespace (`namespace` in the case; default `default`).
    pub namespace: String,
    pub metadata: BTreeMap<String, String>,
    pub auth: BTreeMap<String, String>,
    pub env: BTreeMap<String, String>,
    pub error: Option<String>,
    pub expect: Map<String, Value>,
    pub metrics: Vec<(usize, String)>,
}

impl Case {
    pub fn input(&self, index: usize) -> TriggerInput<'_> {
        TriggerInput {
            index,
            trigger_type: &self.trigger_type,
            namespace: &self.namespace,
            name: None,
            metadata: &self.metadata,
            resolved_env: &self.env,
            auth_params: &self.auth,
            metric_type: None,
        }
    }
}

fn string_map(v: Option<&Value>) -> BTreeMap<String, String> {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    let s = match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    (k.clone(), s)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Loads `tests/parse_tables/<file>`.
pub fn load(file: &str) -> Vec<Case> {
    let path = format!("{}/tests/parse_tables/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    let doc: Value =
        serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("parsing {path}: {e}"));
    doc["cases"]
        .as_array()
        .unwrap_or_else(|| panic!("{path}: no cases"))
        .iter()
        .map(|c| Case {
            name: c["name"].as_str().expect("case name").to_owned(),
            trigger_type: c["type"].as_str().expect("case type").to_owned(),
            namespace: c
                .get("namespace")
                .and_then(Value::as_str)
                .unwrap_or("default")
                .to_owned(),
            metadata: string_map(c.get("metadata")),
            auth: string_map(c.get("auth")),
            env: string_map(c.get("env")),
            error: c.get("error").and_then(Value::as_str).map(str::to_owned),
            expect: c
                .get("expect")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default(),
            metrics: c
                .get("metrics")
                .and_then(Value::as_array)
                .map(|ms| {
                    ms.iter()
                        .map(|m| {
                            (
                                m["index"].as_u64().expect("metric index") as usize,
                                m["name"].as_str().expect("metric name").to_owned(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default(),
        })
        .collect()
}

/// Runs every case of `file`; `view` turns an accepted input into the properties `expect` refers to.
/// Returns the number of cases run. All failures are reported together.
pub fn run(
    file: &str,
    view: impl Fn(&TriggerInput<'_>) -> Result<Map<String, Value>, ScalerError>,
) -> usize {
    let cases = load(file);
    let mut failures = Vec::new();
    for case in &cases {
        let label = format!("{file}: {} ({})", case.name, case.trigger_type);
        let input = case.input(0);
        let parsed = parse_trigger(&input);
        match (&case.error, parsed) {
            (Some(field), Ok(_)) => failures.push(format!(
                "{label}: accepted, expected an error about {field}"
            )),
            (Some(field), Err(e)) => {
                if e.field() != Some(field.as_str()) || !e.is_permanent() {
                    failures.push(format!(
                        "{label}: expected a configuration error about {field}, got {e}"
                    ));
                }
            }
            (None, Err(e)) => failures.push(format!("{label}: rejected: {e}")),
            (None, Ok(_)) => {
                let props = match view(&input) {
                    Ok(p) => p,
                    Err(e) => {
                        failures.push(format!("{label}: typed parse rejected: {e}"));
                        continue;
                    }
                };
                for (key, want) in &case.expect {
                    match props.get(key) {
                        Some(got) if got == want => {}
                        Some(got) => {
                            failures.push(format!("{label}: {key}: expected {want}, got {got}"))
                        }
                        None => failures.push(format!("{label}: the view has no property {key}")),
                    }
                }
                for (index, name) in &case.metrics {
                    match parse_trigger(&case.input(*index)) {
                        Ok(c) if c.metric_spec().metric_name() == *name => {}
                        Ok(c) => failures.push(format!(
                            "{label}: metric at index {index}: expected {name}, got {}",
                            c.metric_spec().metric_name()
                        )),
                        Err(e) => failures.push(format!("{label}: index {index}: {e}")),
                    }
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    cases.len()
}

/// A string property: `""` when unset, as upstream's zero values.
pub fn opt(s: &Option<String>) -> Value {
    Value::String(s.clone().unwrap_or_default())
}

/// The connection properties of the Redis tables.
#[cfg(feature = "redis")]
pub fn redis_connection_view(
    c: &keda_scalers::databases::redis::RedisConnection,
) -> Map<String, Value> {
    let tls = c.tls.clone().unwrap_or_default();
    let mut m = Map::new();
    m.insert("addresses".into(), Value::from(c.addresses.clone()));
    m.insert("username".into(), opt(&c.username));
    m.insert("password".into(), opt(&c.password));
    m.insert("sentinelUsername".into(), opt(&c.sentinel_username));
    m.insert("sentinelPassword".into(), opt(&c.sentinel_password));
    m.insert("sentinelMaster".into(), opt(&c.sentinel_master));
    m.insert("databaseIndex".into(), Value::from(c.database_index));
    m.insert("enableTLS".into(), Value::Bool(c.tls.is_some()));
    m.insert("unsafeSsl".into(), Value::Bool(tls.unsafe_ssl));
    m.insert("ca".into(), opt(&tls.ca));
    m.insert("cert".into(), opt(&tls.cert));
    m.insert("key".into(), opt(&tls.key));
    m.insert("keyPassword".into(), opt(&tls.key_password));
    m
}
