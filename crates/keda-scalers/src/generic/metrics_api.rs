//! `metrics-api`: a number read from any HTTP endpoint (JSON, YAML, XML or Prometheus text).
//!
//! With `aggregateFromKubeServiceEndpoints: "true"` the URL names a Kubernetes Service
//! (`<service>.<namespace>[.svc…]`) and every ready endpoint behind it is asked instead, as upstream does:
//!
//! - endpoints: the EndpointSlices labelled `kubernetes.io/service-name=<service>` in `<namespace>`;
//!   endpoints whose `ready` condition is false are skipped (unset counts as ready); an address seen
//!   before, in any slice, is asked once;
//! - each endpoint is asked at `<scheme>://<address>[:<port>]<path>`: `<port>` is the URL's port (default
//!   80 for http, 443 for https) when the endpoint's slice lists that port number, else no port is written
//!   (the scheme's default is used). The URL's query, fragment and user info are not carried over;
//! - at most 5 requests at a time, each with the trigger's timeout and authentication;
//! - `aggregationType` (`average` by default, `sum`, `max`, `min`) folds the values of the endpoints that
//!   answered; endpoints that failed are left out (an average divides by the number that answered). It is
//!   an error when the Service has no ready endpoint or when no endpoint answered.
//!
//! Two differences from upstream, both where upstream cannot work: the namespace is read from the host
//! name without its port (upstream reads `svc.ns:8080` as namespace `ns:8080`), and IPv6 addresses are
//! written in brackets.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::http::{ClientKey, HttpAuth, ObservedSend, parse_auth};
use crate::input::METADATA;
use crate::service_endpoints::{EndpointSlice, ServiceEndpoints};
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

/// `aggregationType`: how the values of a Service's endpoints become one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Aggregation {
    Average,
    Sum,
    Max,
    Min,
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
    /// `aggregateFromKubeServiceEndpoints`: ask every ready endpoint of the Service the URL names.
    pub aggregate_from_service_endpoints: bool,
    /// `aggregationType` (default `average`); read whether or not aggregation is on, as upstream.
    pub aggregation: Aggregation,
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
    let aggregate_from_service_endpoints: bool = input
        .field("aggregateFromKubeServiceEndpoints")
        .order(METADATA)
        .default("false")
        .required()?;
    let aggregation = match input
        .field("aggregationType")
        .order(METADATA)
        .default("average")
        .one_of(&["average", "sum", "max", "min"])
        .required::<String>()?
        .as_str()
    {
        "sum" => Aggregation::Sum,
        "max" => Aggregation::Max,
        "min" => Aggregation::Min,
        _ => Aggregation::Average,
    };
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
        aggregate_from_service_endpoints,
        aggregation,
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

    fn activation_threshold(&self) -> Option<f64> {
        Some(self.activation_target_value)
    }

    fn trigger(&self) -> TriggerRef {
        TriggerRef {
            index: self.index,
            trigger_type: "metrics-api".into(),
        }
    }

    fn timeouts(&self, defaults: &TimeoutDefaults) -> ScalerTimeouts {
        let request = self.timeout.unwrap_or(defaults.http);
        if self.aggregate_from_service_endpoints {
            // A poll is one listing, then as many rounds of MAX_CONCURRENT_REQUESTS requests as the
            // Service needs; each step is bounded by `request` on its own (the listing in `sample`, the
            // requests by their client), and an endpoint that runs out of time is left out rather than
            // failing the poll, as upstream. A fixed bound around the whole poll would break that.
            return ScalerTimeouts {
                build: None,
                sample: None,
            };
        }
        ScalerTimeouts::http(request)
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
            request_timeout: key.timeout,
            endpoints: ctx.service_endpoints.clone(),
        }))
    }
}

/// Requests in flight at once when asking a Service's endpoints (upstream's limit).
pub const MAX_CONCURRENT_REQUESTS: usize = 5;

struct MetricsApiScaler {
    config: MetricsApiConfig,
    client: Arc<reqwest::Client>,
    /// The client's timeout, also the bound of listing a Service's EndpointSlices.
    request_timeout: Duration,
    endpoints: Option<Arc<dyn ServiceEndpoints>>,
}

/// Which step of a request failed, and how.
type FetchError = (&'static str, String);

impl MetricsApiScaler {
    fn backend(&self, (action, message): FetchError) -> ScalerError {
        ScalerError::Backend {
            trigger: self.config.trigger(),
            action,
            message,
        }
    }

    /// One request to `url` with the trigger's authentication, and the value read from the answer.
    async fn fetch(&self, url: &str) -> Result<f64, FetchError> {
        let c = &self.config;
        let req = c.auth.apply(self.client.get(url));
        let resp = req
            .observed_send()
            .await
            .map_err(|e| ("requesting the metrics API", format!("{url}: {e}")))?;
        let status = resp.status();
        let body = resp
            .bytes()
            .await
            .map_err(|e| ("reading the metrics API response", e.to_string()))?;
        if !status.is_success() {
            return Err((
                "requesting the metrics API",
                format!(
                    "{url} answered {status}: {}",
                    String::from_utf8_lossy(&body[..body.len().min(200)])
                ),
            ));
        }
        value_from_response(&body, &c.value_location, c.format)
            .map_err(|m| ("reading the value", m))
    }

    /// Every ready endpoint of the Service the URL names, folded by `aggregationType`.
    async fn aggregated_value(&self) -> Result<f64, ScalerError> {
        use futures::StreamExt;
        const FINDING: &str = "finding the Service's endpoints";
        let c = &self.config;
        let Some(source) = &self.endpoints else {
            return Err(ScalerError::Config {
                trigger: c.trigger(),
                field: "aggregateFromKubeServiceEndpoints".into(),
                reason: "needs the Kubernetes API to list the Service's EndpointSlices, and this \
                         process has no access to it"
                    .into(),
            });
        };
        let service = ServiceUrl::parse(&c.url).map_err(|m| self.backend((FINDING, m)))?;
        let slices = tokio::time::timeout(
            self.request_timeout,
            source.endpoint_slices(&service.namespace, &service.name),
        )
        .await
        .map_err(|_| {
            self.backend((
                FINDING,
                format!(
                    "listing the EndpointSlices of Service {}/{}: no answer within {:?}",
                    service.namespace, service.name, self.request_timeout
                ),
            ))
        })?
        .map_err(|m| self.backend((FINDING, m)))?;
        let urls = service.endpoint_urls(&slices);
        if urls.is_empty() {
            return Err(self.backend((
                FINDING,
                format!(
                    "Service {}/{} has no ready endpoints",
                    service.namespace, service.name
                ),
            )));
        }
        let results: Vec<Result<f64, FetchError>> = futures::stream::iter(urls.iter().cloned())
            .map(|url| async move { self.fetch(&url).await })
            .buffered(MAX_CONCURRENT_REQUESTS)
            .collect()
            .await;
        let values: Vec<f64> = results
            .iter()
            .filter_map(|r| r.as_ref().ok())
            .copied()
            .collect();
        aggregate(c.aggregation, &values).ok_or_else(|| {
            let reasons: Vec<String> = results
                .iter()
                .filter_map(|r| r.as_ref().err())
                .take(3)
                .map(|(action, message)| format!("{action}: {message}"))
                .collect();
            self.backend((
                "requesting the metrics API",
                format!(
                    "no value from any of the {} endpoints of Service {}/{} ({}{})",
                    urls.len(),
                    service.namespace,
                    service.name,
                    reasons.join("; "),
                    if urls.len() > reasons.len() {
                        "; …"
                    } else {
                        ""
                    }
                ),
            ))
        })
    }
}

#[async_trait::async_trait]
impl Scaler for MetricsApiScaler {
    async fn sample(&self) -> Result<Sample, ScalerError> {
        let c = &self.config;
        let value = if c.aggregate_from_service_endpoints {
            self.aggregated_value().await?
        } else {
            self.fetch(&c.url).await.map_err(|e| self.backend(e))?
        };
        Ok(Sample {
            value,
            active: crate::is_active(value, c.activation_target_value),
        })
    }
}

/// Folds the values of the endpoints that answered; `None` when none did. `max` and `min` keep the first
/// value unless a later one compares greater (smaller), as upstream: a NaN met first stays, a later one is
/// passed over.
pub fn aggregate(aggregation: Aggregation, values: &[f64]) -> Option<f64> {
    let (&first, rest) = values.split_first()?;
    Some(match aggregation {
        Aggregation::Sum => values.iter().sum(),
        Aggregation::Average => values.iter().sum::<f64>() / values.len() as f64,
        Aggregation::Max => rest
            .iter()
            .fold(first, |acc, &v| if v > acc { v } else { acc }),
        Aggregation::Min => rest
            .iter()
            .fold(first, |acc, &v| if v < acc { v } else { acc }),
    })
}

/// The Service a metrics-api URL names, and how its endpoints are asked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceUrl {
    pub name: String,
    pub namespace: String,
    /// `http` or `https`.
    pub scheme: String,
    /// The URL's port, or the scheme's default.
    pub port: u16,
    /// The URL's path, as written (percent-encoded); `/` when empty.
    pub path: String,
}

impl ServiceUrl {
    /// Reads `<scheme>://<service>.<namespace>[.more][:port]<path>`: the host's first label is the Service,
    /// the second its namespace.
    pub fn parse(url: &str) -> Result<ServiceUrl, String> {
        let parsed = reqwest::Url::parse(url).map_err(|e| format!("url {url:?}: {e}"))?;
        let host = parsed.host_str().unwrap_or_default();
        let mut labels = host.split('.');
        let (Some(name), Some(namespace)) = (labels.next(), labels.next()) else {
            return Err(format!(
                "url host {host:?} must be <service>.<namespace>[.svc.cluster.local]"
            ));
        };
        for (what, value) in [("Service", name), ("namespace", namespace)] {
            if !is_dns_label(value) {
                return Err(format!(
                    "url host {host:?}: {value:?} is not a valid {what} name"
                ));
            }
        }
        let scheme = parsed.scheme().to_owned();
        let port = parsed
            .port_or_known_default()
            .unwrap_or(if scheme == "https" { 443 } else { 80 });
        Ok(ServiceUrl {
            name: name.to_owned(),
            namespace: namespace.to_owned(),
            scheme,
            port,
            path: parsed.path().to_owned(),
        })
    }

    /// The URL of each ready endpoint in `slices`, each address once, in the order found.
    pub fn endpoint_urls(&self, slices: &[EndpointSlice]) -> Vec<String> {
        let mut seen: Vec<&str> = Vec::new();
        let mut urls = Vec::new();
        for slice in slices {
            let port = if slice.ports.contains(&Some(i32::from(self.port))) {
                format!(":{}", self.port)
            } else {
                String::new()
            };
            for endpoint in slice.endpoints.iter().filter(|e| e.ready != Some(false)) {
                for address in &endpoint.addresses {
                    if seen.contains(&address.as_str()) {
                        continue;
                    }
                    seen.push(address);
                    let host = if address.contains(':') {
                        format!("[{address}]")
                    } else {
                        address.clone()
                    };
                    urls.push(format!("{}://{host}{port}{}", self.scheme, self.path));
                }
            }
        }
        urls
    }
}

/// An RFC 1123 label, what Service and namespace names are.
fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
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

#[cfg(test)]
mod aggregation_tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::service_endpoints::Endpoint;

    fn parse_md(md: &[(&str, &str)]) -> Result<MetricsApiConfig, ScalerError> {
        let mut all: BTreeMap<String, String> = [
            ("url", "http://metrics.apps.svc.cluster.local:8080/stats"),
            ("valueLocation", "queue.depth"),
            ("targetValue", "10"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        for (k, v) in md {
            all.insert(k.to_string(), v.to_string());
        }
        let empty = BTreeMap::new();
        parse_config(&TriggerInput {
            index: 0,
            trigger_type: "metrics-api",
            namespace: "default",
            name: None,
            metadata: &all,
            resolved_env: &empty,
            auth_params: &empty,
            metric_type: None,
        })
    }

    #[test]
    fn parse_table() {
        use Aggregation::*;
        // Metadata on top of a valid trigger, and Ok((aggregate, aggregation)) or Err(field).
        type Case = (
            &'static [(&'static str, &'static str)],
            Result<(bool, Aggregation), &'static str>,
        );
        let cases: &[Case] = &[
            (&[], Ok((false, Average))),
            (
                &[("aggregateFromKubeServiceEndpoints", "true")],
                Ok((true, Average)),
            ),
            (
                &[("aggregateFromKubeServiceEndpoints", "True")],
                Ok((true, Average)),
            ),
            (
                &[("aggregateFromKubeServiceEndpoints", "1")],
                Ok((true, Average)),
            ),
            (
                &[("aggregateFromKubeServiceEndpoints", "false")],
                Ok((false, Average)),
            ),
            (
                &[("aggregateFromKubeServiceEndpoints", "yes")],
                Err("aggregateFromKubeServiceEndpoints"),
            ),
            (
                &[
                    ("aggregateFromKubeServiceEndpoints", "true"),
                    ("aggregationType", "sum"),
                ],
                Ok((true, Sum)),
            ),
            (
                &[
                    ("aggregateFromKubeServiceEndpoints", "true"),
                    ("aggregationType", "max"),
                ],
                Ok((true, Max)),
            ),
            (
                &[
                    ("aggregateFromKubeServiceEndpoints", "true"),
                    ("aggregationType", "min"),
                ],
                Ok((true, Min)),
            ),
            (
                &[
                    ("aggregateFromKubeServiceEndpoints", "true"),
                    ("aggregationType", "average"),
                ],
                Ok((true, Average)),
            ),
            // Read and checked even when aggregation is off, as upstream's typed config does.
            (&[("aggregationType", "max")], Ok((false, Max))),
            (&[("aggregationType", "median")], Err("aggregationType")),
            (
                &[
                    ("aggregateFromKubeServiceEndpoints", "true"),
                    ("aggregationType", "Sum"),
                ],
                Err("aggregationType"),
            ),
            (
                &[
                    ("aggregateFromKubeServiceEndpoints", "true"),
                    ("aggregationType", "count"),
                ],
                Err("aggregationType"),
            ),
        ];
        for (md, want) in cases {
            let got = parse_md(md);
            match (want, got) {
                (Ok(w), Ok(c)) => assert_eq!(
                    (c.aggregate_from_service_endpoints, c.aggregation),
                    *w,
                    "{md:?}"
                ),
                (Err(field), Err(e)) => assert_eq!(e.field(), Some(*field), "{md:?}: {e}"),
                (w, g) => panic!("{md:?}: wanted {w:?}, got {g:?}"),
            }
        }
    }

    #[test]
    fn aggregation_table() {
        use Aggregation::*;
        let cases: &[(Aggregation, &[f64], Option<f64>)] = &[
            (Average, &[10.0, 20.0, 60.0], Some(30.0)),
            (Sum, &[10.0, 20.0, 60.0], Some(90.0)),
            (Max, &[10.0, 60.0, 20.0], Some(60.0)),
            (Min, &[20.0, 10.0, 60.0], Some(10.0)),
            (Average, &[7.5], Some(7.5)),
            (Max, &[-3.0, -1.0], Some(-1.0)),
            (Min, &[0.0, -2.5], Some(-2.5)),
            // Nothing answered: no value, whatever the type (never 0, never NaN from 0/0).
            (Average, &[], None),
            (Sum, &[], None),
            (Max, &[], None),
            (Min, &[], None),
        ];
        for (aggregation, values, want) in cases {
            assert_eq!(
                aggregate(*aggregation, values),
                *want,
                "{aggregation:?} {values:?}"
            );
        }
        // NaN: kept when met first by max/min, passed over later (Go's comparisons).
        assert!(aggregate(Max, &[f64::NAN, 3.0]).is_some_and(f64::is_nan));
        assert_eq!(aggregate(Max, &[3.0, f64::NAN, 4.0]), Some(4.0));
        assert_eq!(aggregate(Min, &[3.0, f64::NAN, 1.0]), Some(1.0));
    }

    #[test]
    fn service_url_table() {
        let ok = |url: &str, name: &str, ns: &str, scheme: &str, port: u16, path: &str| {
            assert_eq!(
                ServiceUrl::parse(url),
                Ok(ServiceUrl {
                    name: name.into(),
                    namespace: ns.into(),
                    scheme: scheme.into(),
                    port,
                    path: path.into(),
                }),
                "{url}"
            );
        };
        ok(
            "http://metrics.apps.svc.cluster.local:8080/stats?x=1#f",
            "metrics",
            "apps",
            "http",
            8080,
            "/stats",
        );
        ok(
            "http://metrics.apps/stats",
            "metrics",
            "apps",
            "http",
            80,
            "/stats",
        );
        ok(
            "https://metrics.apps.svc/a/b",
            "metrics",
            "apps",
            "https",
            443,
            "/a/b",
        );
        ok(
            "http://metrics.apps:9090",
            "metrics",
            "apps",
            "http",
            9090,
            "/",
        );
        ok(
            "https://metrics.apps:80/",
            "metrics",
            "apps",
            "https",
            80,
            "/",
        );
        ok("http://Metrics.Apps/x", "metrics", "apps", "http", 80, "/x");
        for bad in [
            "http://metrics:8080/stats",
            "http://[fd00::1]:8080/stats",
            "http://metrics..x/stats",
            "http://metrics.-apps/stats",
            "http://a_b.apps/stats",
            "not a url",
        ] {
            assert!(ServiceUrl::parse(bad).is_err(), "{bad}");
        }
    }

    fn endpoint(addresses: &[&str], ready: Option<bool>) -> Endpoint {
        Endpoint {
            addresses: addresses.iter().map(|a| a.to_string()).collect(),
            ready,
        }
    }

    #[test]
    fn endpoint_urls_follow_ready_endpoints_ports_and_path() {
        let service = ServiceUrl::parse("http://metrics.apps.svc:8080/stats?q=1").unwrap();
        let slices = vec![
            EndpointSlice {
                ports: vec![Some(9090), Some(8080)],
                endpoints: vec![
                    endpoint(&["10.0.0.1"], Some(true)),
                    endpoint(&["10.0.0.2"], None),
                    endpoint(&["10.0.0.3"], Some(false)),
                    endpoint(&["10.0.0.4", "10.0.0.1"], Some(true)),
                ],
            },
            // The slice does not list the URL's port: no port is written (the scheme's default).
            EndpointSlice {
                ports: vec![Some(9090), None],
                endpoints: vec![
                    endpoint(&["10.0.1.1"], Some(true)),
                    // Seen in the first slice: asked once, with that slice's port.
                    endpoint(&["10.0.0.2"], Some(true)),
                ],
            },
            EndpointSlice {
                ports: vec![Some(8080)],
                endpoints: vec![endpoint(&["fd00::5"], Some(true))],
            },
            EndpointSlice {
                ports: vec![],
                endpoints: vec![],
            },
        ];
        assert_eq!(
            service.endpoint_urls(&slices),
            [
                "http://10.0.0.1:8080/stats",
                "http://10.0.0.2:8080/stats",
                "http://10.0.0.4:8080/stats",
                "http://10.0.1.1/stats",
                "http://[fd00::5]:8080/stats",
            ]
        );
        // Readiness is per endpoint entry: an address not ready in one slice is still asked when another
        // slice lists it as ready.
        let again = vec![
            EndpointSlice {
                ports: vec![Some(8080)],
                endpoints: vec![endpoint(&["10.0.0.3"], Some(false))],
            },
            EndpointSlice {
                ports: vec![Some(8080)],
                endpoints: vec![endpoint(&["10.0.0.3"], Some(true))],
            },
        ];
        assert_eq!(
            service.endpoint_urls(&again),
            ["http://10.0.0.3:8080/stats"]
        );
        assert!(service.endpoint_urls(&[]).is_empty());
        // https without a port looks for 443.
        let tls = ServiceUrl::parse("https://metrics.apps/m").unwrap();
        let slices = vec![EndpointSlice {
            ports: vec![Some(443)],
            endpoints: vec![endpoint(&["10.0.0.1"], None)],
        }];
        assert_eq!(tls.endpoint_urls(&slices), ["https://10.0.0.1:443/m"]);
    }

    #[test]
    fn timeouts_leave_aggregated_polls_to_their_steps() {
        let defaults = TimeoutDefaults::default();
        let single = parse_md(&[]).unwrap();
        assert_eq!(
            single.timeouts(&defaults),
            ScalerTimeouts::http(defaults.http)
        );
        let aggregated = parse_md(&[("aggregateFromKubeServiceEndpoints", "true")]).unwrap();
        assert_eq!(aggregated.timeouts(&defaults).sample, None);
    }

    #[tokio::test]
    async fn sampling_without_an_endpoint_source_names_the_option() {
        let config = parse_md(&[("aggregateFromKubeServiceEndpoints", "true")]).unwrap();
        let scaler = config.build(&BuildContext::default()).await.unwrap();
        let err = scaler.sample().await.expect_err("no endpoint source");
        assert_eq!(
            err.field(),
            Some("aggregateFromKubeServiceEndpoints"),
            "{err}"
        );
    }
}
