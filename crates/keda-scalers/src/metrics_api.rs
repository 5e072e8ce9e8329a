//! `metrics-api`: a number read from any HTTP endpoint (JSON, YAML, XML or Prometheus text).

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::http::{ClientKey, HttpAuth, ObservedSend, parse_auth};
use crate::input::METADATA;
use crate::{
    BuildContext, MetricSpec, MetricTargetType, Sample, Scaler, ScalerError, ScalerTimeouts,
    TimeoutDefaults, TriggerConfig, TriggerInput, TriggerRef,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Json,
    Xml,
    Yaml,
    Prometheus,
}

#[derive(Clone, Debug, PartialEq)]
pub struct MetricsApiConfig {
    pub index: usize,
    pub url: String,
    pub value_location: String,
    pub format: Format,
    pub target_value: f64,
    pub activation_target_value: f64,
    pub unsafe_ssl: bool,
    /// The HTTP client timeout; `None` (absent or 0): `KEDA_HTTP_DEFAULT_TIMEOUT`.
    pub timeout: Option<Duration>,
    pub auth: HttpAuth,
    pub metric_type: MetricTargetType,
}

pub fn parse(input: &TriggerInput<'_>) -> Result<Box<dyn TriggerConfig>, ScalerError> {
    Ok(Box::new(parse_config(input)?))
}

pub fn parse_config(input: &TriggerInput<'_>) -> Result<MetricsApiConfig, ScalerError> {
    let metric_type = input.external_metric_type()?;
    let target_value: f64 = input.field("targetValue").order(METADATA).required()?;
    let activation_target_value: f64 = input
        .field("activationTargetValue")
        .order(METADATA)
        .default("0")
        .required()?;
    let url: String = input.field("url").order(METADATA).required()?;
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(input.error("url", format!("{url:?} must be an http:// or https:// URL")));
    }
    let format = match input
        .field("format")
        .order(METADATA)
        .default("json")
        .one_of(&["prometheus", "json", "xml", "yaml"])
        .required::<String>()?
        .as_str()
    {
        "prometheus" => Format::Prometheus,
        "xml" => Format::Xml,
        "yaml" => Format::Yaml,
        _ => Format::Json,
    };
    let value_location: String = input.field("valueLocation").order(METADATA).required()?;
    let unsafe_ssl: bool = input
        .field("unsafeSsl")
        .order(METADATA)
        .default("false")
        .required()?;
    let aggregate: bool = input
        .field("aggregateFromKubeServiceEndpoints")
        .order(METADATA)
        .default("false")
        .required()?;
    if aggregate {
        return Err(input.error(
            "aggregateFromKubeServiceEndpoints",
            "is not supported by keda-rs yet",
        ));
    }
    input
        .field("aggregationType")
        .order(METADATA)
        .default("average")
        .one_of(&["average", "sum", "max", "min"])
        .required::<String>()?;
    // Upstream: zero means "use the global default".
    let timeout = input
        .field("timeout")
        .order(METADATA)
        .optional::<Duration>()?
        .filter(|t| !t.is_zero());
    let auth = parse_auth(input)?;
    Ok(MetricsApiConfig {
        index: input.index,
        url,
        value_location,
        format,
        target_value,
        activation_target_value,
        unsafe_ssl,
        timeout,
        auth,
        metric_type,
    })
}

#[async_trait::async_trait]
impl TriggerConfig for MetricsApiConfig {
    fn metric_spec(&self) -> MetricSpec {
        MetricSpec::External {
            metric_name: crate::external_metric_name(
                self.index,
                &format!("metric-api-{}", self.value_location),
            ),
            target_type: self.metric_type,
            target: self.target_value,
        }
    }

    fn trigger(&self) -> TriggerRef {
        TriggerRef {
            index: self.index,
            trigger_type: "metrics-api".into(),
        }
    }

    fn timeouts(&self, defaults: &TimeoutDefaults) -> ScalerTimeouts {
        ScalerTimeouts::http(self.timeout.unwrap_or(defaults.http))
    }

    async fn build(&self, ctx: &BuildContext) -> Result<Arc<dyn Scaler>, ScalerError> {
        let key = ClientKey {
            timeout: self.timeout.unwrap_or(ctx.timeouts.http),
            unsafe_ssl: self.unsafe_ssl,
            ca: self.auth.ca.clone(),
            cert_and_key: self.auth.tls.clone(),
        };
        let client = ctx.http.get(&key).map_err(|message| ScalerError::Backend {
            trigger: self.trigger(),
            action: "building the HTTP client",
            message,
        })?;
        Ok(Arc::new(MetricsApiScaler {
            config: self.clone(),
            client,
        }))
    }
}

struct MetricsApiScaler {
    config: MetricsApiConfig,
    client: reqwest::Client,
}

#[async_trait::async_trait]
impl Scaler for MetricsApiScaler {
    async fn sample(&self) -> Result<Sample, ScalerError> {
        let c = &self.config;
        let backend = |action: &'static str, message: String| ScalerError::Backend {
            trigger: c.trigger(),
            action,
            message,
        };
        let req = c.auth.apply(self.client.get(&c.url));
        let resp = req
            .observed_send()
            .await
            .map_err(|e| backend("requesting the metrics API", format!("{}: {e}", c.url)))?;
        let status = resp.status();
        let body = resp
            .bytes()
            .await
            .map_err(|e| backend("reading the metrics API response", e.to_string()))?;
        if !status.is_success() {
            return Err(backend(
                "requesting the metrics API",
                format!(
                    "{} answered {status}: {}",
                    c.url,
                    String::from_utf8_lossy(&body[..body.len().min(200)])
                ),
            ));
        }
        let value = value_from_response(&body, &c.value_location, c.format)
            .map_err(|m| backend("reading the value", m))?;
        Ok(Sample {
            value,
            active: crate::is_active(value, c.activation_target_value),
        })
    }
}

/// Extracts the number at `location` from a response body.
pub fn value_from_response(body: &[u8], location: &str, format: Format) -> Result<f64, String> {
    match format {
        Format::Json => {
            let text =
                std::str::from_utf8(body).map_err(|e| format!("response is not UTF-8: {e}"))?;
            if !gjson::valid(text) {
                return Err("response is not valid JSON".into());
            }
            let r = gjson::get(text, location);
            match r.kind() {
                gjson::Kind::Number => Ok(r.f64()),
                gjson::Kind::String => crate::quantity::value(r.str()).ok_or_else(|| {
                    format!("valueLocation {location:?} points to a string that is not parseable as a Quantity")
                }),
                kind => Err(format!(
                    "valueLocation {location:?} must point to a numeric value or a string parseable as a Quantity, got {}", kind_name(kind)
                )),
            }
        }
        Format::Yaml => {
            let v: Value = serde_yaml_ng::from_slice(body)
                .map_err(|e| format!("response is not valid YAML: {e}"))?;
            number_at_path(&v, location)
        }
        Format::Xml => number_at_path(&xml_to_value(body)?, location),
        Format::Prometheus => prometheus_value(body, location),
    }
}

fn kind_name(kind: gjson::Kind) -> &'static str {
    match kind {
        gjson::Kind::Null => "Null",
        gjson::Kind::False | gjson::Kind::True => "Boolean",
        gjson::Kind::Number => "Number",
        gjson::Kind::String => "String",
        gjson::Kind::Array => "Array",
        gjson::Kind::Object => "Object",
    }
}

fn number_at_path(root: &Value, location: &str) -> Result<f64, String> {
    let mut cur = root;
    for key in location.split('.') {
        cur = match cur {
            Value::Object(m) => m.get(key),
            Value::Array(a) => key.parse::<usize>().ok().and_then(|i| a.get(i)),
            _ => None,
        }
        .ok_or_else(|| format!("valueLocation {location:?}: key {key:?} not found"))?;
    }
    match cur {
        Value::Number(n) => n
            .as_f64()
            .ok_or_else(|| format!("valueLocation {location:?}: not a number")),
        Value::String(s) => crate::quantity::value(s.trim()).ok_or_else(|| {
            format!(
                "valueLocation {location:?} points to a string that is not parseable as a Quantity"
            )
        }),
        other => Err(format!(
            "valueLocation {location:?} must point to a number, got {other}"
        )),
    }
}

/// A simple element tree: nested elements become objects, text-only elements strings; repeated
/// elements become arrays. Enough for `a.b.c` paths.
fn xml_to_value(body: &[u8]) -> Result<Value, String> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_reader(body);
    reader.config_mut().trim_text(true);
    let mut stack: Vec<(String, serde_json::Map<String, Value>, String)> =
        vec![(String::new(), serde_json::Map::new(), String::new())];
    let mut buf = Vec::new();
    loop {
        match reader
            .read_event_into(&mut buf)
            .map_err(|e| format!("response is not valid XML: {e}"))?
        {
            Event::Start(e) => {
                let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                stack.push((name, serde_json::Map::new(), String::new()));
            }
            Event::Text(t) => {
                if let Some(top) = stack.last_mut() {
                    top.2.push_str(&String::from_utf8_lossy(t.as_ref()));
                }
            }
            Event::End(_) => {
                let (name, children, text) = stack.pop().ok_or("unbalanced XML")?;
                let value = if children.is_empty() {
                    Value::String(text)
                } else {
                    Value::Object(children)
                };
                let parent = &mut stack.last_mut().ok_or("unbalanced XML")?.1;
                match parent.get_mut(&name) {
                    Some(Value::Array(a)) => a.push(value),
                    Some(existing) => {
                        let first = existing.take();
                        *existing = Value::Array(vec![first, value]);
                    }
                    None => {
                        parent.insert(name, value);
                    }
                }
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    let (_, root, _) = stack.pop().ok_or("empty XML")?;
    Ok(Value::Object(root))
}

/// `name{label="v",…}` against Prometheus text exposition; the first matching sample wins.
fn prometheus_value(body: &[u8], selector: &str) -> Result<f64, String> {
    let (name, wanted) = parse_selector(selector)?;
    let text = String::from_utf8_lossy(body);
    let mut family_seen = false;
    for line in text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let (series, rest) = match line.find('{') {
            Some(i) if line[..i].trim() == name => {
                let close = line
                    .rfind('}')
                    .ok_or_else(|| format!("bad sample line {line:?}"))?;
                (Some(parse_labels(&line[i + 1..close])?), &line[close + 1..])
            }
            _ => match line.split_once(char::is_whitespace) {
                Some((n, rest)) if n == name => (Some(Vec::new()), rest),
                _ => (None, ""),
            },
        };
        let Some(labels) = series else { continue };
        family_seen = true;
        if wanted.iter().all(|w| labels.contains(w)) {
            let v = rest
                .split_whitespace()
                .next()
                .ok_or_else(|| format!("no value in {line:?}"))?;
            return v
                .parse::<f64>()
                .map_err(|_| format!("value {v:?} of {name} is not a number"));
        }
    }
    if family_seen {
        Err(format!("value {selector} not found"))
    } else {
        Err(format!("metric '{name}' not found"))
    }
}

fn parse_selector(s: &str) -> Result<(String, Vec<(String, String)>), String> {
    match s.find('{') {
        Some(i) => {
            let close = s
                .rfind('}')
                .ok_or_else(|| format!("valueLocation {s:?}: missing '}}'"))?;
            Ok((s[..i].trim().to_owned(), parse_labels(&s[i + 1..close])?))
        }
        None => Ok((s.trim().to_owned(), Vec::new())),
    }
}

fn parse_labels(s: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        let eq = rest.find('=').ok_or_else(|| format!("bad labels {s:?}"))?;
        let key = rest[..eq].trim().to_owned();
        let after = rest[eq + 1..].trim_start();
        let after = after
            .strip_prefix('"')
            .ok_or_else(|| format!("bad labels {s:?}"))?;
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, n)) = chars.next() {
                        value.push(if n == 'n' { '\n' } else { n });
                    }
                }
                '"' => {
                    end = Some(i);
                    break;
                }
                c => value.push(c),
            }
        }
        let end = end.ok_or_else(|| format!("unterminated label value in {s:?}"))?;
        out.push((key, value));
        rest = after[end + 1..]
            .trim_start()
            .trim_start_matches(',')
            .trim_start();
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_paths_are_gjson() {
        let body =
            br#"{"tasks":{"pending":12,"list":[{"n":"3"},{"n":"4.5k"}]},"s":"abc","flag":true}"#;
        assert_eq!(
            value_from_response(body, "tasks.pending", Format::Json),
            Ok(12.0)
        );
        assert_eq!(
            value_from_response(body, "tasks.list.1.n", Format::Json),
            Ok(4500.0)
        );
        assert_eq!(
            value_from_response(body, "tasks.list.#", Format::Json),
            Ok(2.0)
        );
        assert!(value_from_response(body, "s", Format::Json).is_err());
        assert!(value_from_response(body, "flag", Format::Json).is_err());
        assert!(value_from_response(body, "missing", Format::Json).is_err());
        assert!(value_from_response(b"{not json", "a", Format::Json).is_err());
    }

    #[test]
    fn yaml_xml_and_prometheus() {
        assert_eq!(
            value_from_response(
                b"components:\n  queue:\n    depth: 7\n",
                "components.queue.depth",
                Format::Yaml
            ),
            Ok(7.0)
        );
        assert_eq!(
            value_from_response(b"list:\n  - 1\n  - '250m'\n", "list.1", Format::Yaml),
            Ok(0.25)
        );
        let xml = b"<stats><queue><depth>9</depth></queue><x>1</x></stats>";
        assert_eq!(
            value_from_response(xml, "stats.queue.depth", Format::Xml),
            Ok(9.0)
        );
        assert!(value_from_response(xml, "stats.nope", Format::Xml).is_err());
        let prom = b"# HELP q Queue\n# TYPE q gauge\nq{queue=\"a\"} 3\nq{queue=\"b\",zone=\"x\"} 5\nplain 1.5\n";
        assert_eq!(
            value_from_response(prom, "q{queue=\"b\"}", Format::Prometheus),
            Ok(5.0)
        );
        assert_eq!(
            value_from_response(prom, "plain", Format::Prometheus),
            Ok(1.5)
        );
        assert_eq!(
            value_from_response(prom, "q{queue=\"c\"}", Format::Prometheus),
            Err("value q{queue=\"c\"} not found".into())
        );
        assert_eq!(
            value_from_response(prom, "nope", Format::Prometheus),
            Err("metric 'nope' not found".into())
        );
    }
}
