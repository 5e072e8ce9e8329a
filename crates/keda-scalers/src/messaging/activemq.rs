//! `activemq`: the size of an ActiveMQ Classic queue, read through the broker's Jolokia agent
//! (`GET http://<managementEndpoint>/api/jolokia/read/org.apache.activemq:type=Broker,…/QueueSize`) with
//! basic authentication.
//!
//! The URL is upstream's template filled with `managementEndpoint`, `brokerName` and `destinationName`,
//! or a whole `restAPITemplate`, from which those three are read back (the host, and the `brokerName` and
//! `destinationName` keys of the MBean name). Upstream runs the template through Go's `html/template`,
//! so `{{.ManagementEndpoint}}`, `{{.BrokerName}}` and `{{.DestinationName}}` are filled in HTML-escaped;
//! keda-rs does the same for those three and rejects any other action. Jolokia refuses requests without
//! an `Origin` header: `corsHeader`, by default `http://<managementEndpoint>`.

use std::sync::Arc;

use super::jolokia::jolokia_value;
use crate::http::{ClientKey, ObservedSend};
use crate::input::METADATA;
use crate::{
    BuildContext, MetricSpec, MetricTargetType, Sample, Scaler, ScalerError, ScalerTimeouts,
    Source, TimeoutDefaults, TriggerConfig, TriggerInput, TriggerRef,
};

pub const TRIGGER_TYPE: &str = "activemq";

/// Upstream's template when no `restAPITemplate` is given.
pub const DEFAULT_REST_API_TEMPLATE: &str = "http://{{.ManagementEndpoint}}/api/jolokia/read/org.apache.activemq:type=Broker,brokerName={{.BrokerName}},destinationType=Queue,destinationName={{.DestinationName}}/QueueSize";

/// Upstream reads the credentials from authentication parameters, then env, then metadata.
const AUTH_ENV_METADATA: &[Source] = &[Source::AuthParams, Source::ResolvedEnv, Source::Metadata];

#[derive(Clone, PartialEq)]
pub struct ActiveMqConfig {
    pub index: usize,
    pub management_endpoint: String,
    pub broker_name: String,
    pub destination_name: String,
    /// `restAPITemplate`, or [`DEFAULT_REST_API_TEMPLATE`].
    pub rest_api_template: String,
    pub username: String,
    pub password: String,
    /// The `Origin` header sent (`corsHeader`, default `http://<managementEndpoint>`).
    pub cors_header: String,
    /// `targetQueueSize` (default 10).
    pub target_queue_size: i64,
    /// Active when the size is strictly above `activationTargetQueueSize` (default 0).
    pub activation_target_queue_size: i64,
    pub metric_type: MetricTargetType,
}

impl std::fmt::Debug for ActiveMqConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActiveMqConfig")
            .field("index", &self.index)
            .field("management_endpoint", &self.management_endpoint)
            .field("broker_name", &self.broker_name)
            .field("destination_name", &self.destination_name)
            .field("rest_api_template", &self.rest_api_template)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("cors_header", &self.cors_header)
            .field("target_queue_size", &self.target_queue_size)
            .field(
                "activation_target_queue_size",
                &self.activation_target_queue_size,
            )
            .field("metric_type", &self.metric_type)
            .finish()
    }
}

pub fn parse(input: &TriggerInput<'_>) -> Result<Box<dyn TriggerConfig>, ScalerError> {
    Ok(Box::new(parse_config(input)?))
}

pub fn parse_config(input: &TriggerInput<'_>) -> Result<ActiveMqConfig, ScalerError> {
    let metric_type = input.external_metric_type()?;
    let management_endpoint: Option<String> = input
        .field("managementEndpoint")
        .order(METADATA)
        .optional()?;
    let destination_name: Option<String> =
        input.field("destinationName").order(METADATA).optional()?;
    let broker_name: Option<String> = input.field("brokerName").order(METADATA).optional()?;
    let username: String = input
        .field("username")
        .order(AUTH_ENV_METADATA)
        .required()?;
    let password: String = input
        .field("password")
        .order(AUTH_ENV_METADATA)
        .required()?;
    let cors_header: Option<String> = input.field("corsHeader").order(METADATA).optional()?;
    let template: Option<String> = input.field("restAPITemplate").order(METADATA).optional()?;
    let target_queue_size: i64 = input
        .field("targetQueueSize")
        .order(METADATA)
        .default("10")
        .required()?;
    let activation_target_queue_size: i64 = input
        .field("activationTargetQueueSize")
        .order(METADATA)
        .default("0")
        .required()?;

    let (management_endpoint, broker_name, destination_name, rest_api_template) = match template {
        Some(t) => {
            let (host, keys) = template_parts(&t)
                .map_err(|r| input.error("restAPITemplate", format!("unable to parse: {r}")))?;
            let key = |name: &str, what: &str| {
                keys.iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.clone())
                    .filter(|v| !v.is_empty())
                    .ok_or_else(|| {
                        input.error(
                            "restAPITemplate",
                            format!("no {what} given (the MBean name has no {name})"),
                        )
                    })
            };
            let destination = key("destinationName", "destinationName")?;
            let broker = key("brokerName", "brokerName")?;
            (host, broker, destination, t)
        }
        None => {
            let endpoint = management_endpoint
                .ok_or_else(|| input.error("managementEndpoint", "no management endpoint given"))?;
            let destination = destination_name
                .ok_or_else(|| input.error("destinationName", "no destination name given"))?;
            let broker =
                broker_name.ok_or_else(|| input.error("brokerName", "no broker name given"))?;
            (
                endpoint,
                broker,
                destination,
                DEFAULT_REST_API_TEMPLATE.to_owned(),
            )
        }
    };
    let cors_header = cors_header.unwrap_or_else(|| format!("http://{management_endpoint}"));
    Ok(ActiveMqConfig {
        index: input.index,
        management_endpoint,
        broker_name,
        destination_name,
        rest_api_template,
        username,
        password,
        cors_header,
        target_queue_size,
        activation_target_queue_size,
        metric_type,
    })
}

/// The host (with port) of a `restAPITemplate`, and the `key=value` pairs of the MBean name in its path
/// (what follows the first `:` up to the next `/`, comma-separated), decoded as a query string is.
fn template_parts(template: &str) -> Result<(String, Vec<(String, String)>), String> {
    let url = reqwest::Url::parse(template).map_err(|e| format!("{template:?}: {e}"))?;
    // As written (Go keeps the case and a default port; the parsed URL would not).
    let host = template
        .split_once("://")
        .map(|(_, rest)| rest.split(['/', '?', '#']).next().unwrap_or_default())
        .map(|authority| authority.rsplit_once('@').map_or(authority, |(_, h)| h))
        .unwrap_or_default()
        .to_owned();
    let path = percent_decode(url.path())?;
    let (_, mbean) = path
        .split_once(':')
        .ok_or_else(|| format!("{template:?}: the path holds no MBean name (no ':')"))?;
    let mbean = mbean.split('/').next().unwrap_or_default();
    let mut pairs = Vec::new();
    for part in mbean.split(',').filter(|p| !p.is_empty()) {
        let (k, v) = part.split_once('=').unwrap_or((part, ""));
        pairs.push((query_decode(k)?, query_decode(v)?));
    }
    Ok((host, pairs))
}

fn percent_decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let byte = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("invalid percent-encoding in {s:?}"))?;
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("{s:?} is not UTF-8 once decoded"))
}

/// A query-string component: `+` is a space, then percent-decoding (Go's `url.ParseQuery`).
fn query_decode(s: &str) -> Result<String, String> {
    percent_decode(&s.replace('+', " "))
}

/// Go's `html/template` escaping of a value placed in HTML text.
fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\'' => out.push_str("&#39;"),
            '"' => out.push_str("&#34;"),
            '+' => out.push_str("&#43;"),
            '\0' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

impl ActiveMqConfig {
    /// The URL polled: the template with its three actions filled in.
    pub fn monitoring_endpoint(&self) -> Result<String, String> {
        let mut out = String::new();
        let mut rest = self.rest_api_template.as_str();
        while let Some(start) = rest.find("{{") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after
                .find("}}")
                .ok_or("error parsing template: unclosed action")?;
            let value = match after[..end].trim() {
                ".ManagementEndpoint" => &self.management_endpoint,
                ".BrokerName" => &self.broker_name,
                ".DestinationName" => &self.destination_name,
                other => {
                    return Err(format!(
                        "error executing template: {other:?} is not one of .ManagementEndpoint, \
                         .BrokerName, .DestinationName"
                    ));
                }
            };
            out.push_str(&html_escape(value));
            rest = &after[end + 2..];
        }
        out.push_str(rest);
        Ok(out)
    }
}

#[async_trait::async_trait]
impl TriggerConfig for ActiveMqConfig {
    fn metric_spec(&self) -> MetricSpec {
        MetricSpec::External {
            metric_name: crate::external_metric_name(
                self.index,
                &format!("activemq-{}", self.destination_name),
            ),
            target_type: self.metric_type,
            target: self.target_queue_size as f64,
        }
    }

    fn trigger(&self) -> TriggerRef {
        TriggerRef {
            index: self.index,
            trigger_type: TRIGGER_TYPE.into(),
        }
    }

    fn activation_threshold(&self) -> Option<f64> {
        Some(self.activation_target_queue_size as f64)
    }

    /// Upstream's client has `KEDA_HTTP_DEFAULT_TIMEOUT` and no setting of its own.
    fn timeouts(&self, defaults: &TimeoutDefaults) -> ScalerTimeouts {
        ScalerTimeouts::http(defaults.http)
    }

    async fn build(&self, ctx: &BuildContext) -> Result<Arc<dyn Scaler>, ScalerError> {
        let url = self
            .monitoring_endpoint()
            .map_err(|reason| ScalerError::Config {
                trigger: self.trigger(),
                field: "restAPITemplate".into(),
                reason,
            })?;
        if reqwest::Url::parse(&url).is_err() {
            return Err(ScalerError::Config {
                trigger: self.trigger(),
                field: "managementEndpoint".into(),
                reason: format!("{url:?} is not a valid URL"),
            });
        }
        let key = ClientKey {
            timeout: ctx.timeouts.http,
            unsafe_ssl: false,
            ca: None,
            cert_and_key: None,
        };
        let client = ctx.http.get(&key).map_err(|message| ScalerError::Backend {
            trigger: self.trigger(),
            action: "building the HTTP client",
            message,
        })?;
        Ok(Arc::new(ActiveMqScaler {
            config: self.clone(),
            url,
            client,
        }))
    }
}

struct ActiveMqScaler {
    config: ActiveMqConfig,
    url: String,
    client: Arc<reqwest::Client>,
}

#[async_trait::async_trait]
impl Scaler for ActiveMqScaler {
    async fn sample(&self) -> Result<Sample, ScalerError> {
        let c = &self.config;
        let backend = |action: &'static str, message: String| ScalerError::Backend {
            trigger: c.trigger(),
            action,
            message,
        };
        let resp = self
            .client
            .get(&self.url)
            .basic_auth(&c.username, Some(&c.password))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(reqwest::header::ORIGIN, &c.cors_header)
            .observed_send()
            .await
            .map_err(|e| {
                backend(
                    "reading the ActiveMQ queue size",
                    format!("{}: {e}", self.url),
                )
            })?;
        let status = resp.status().as_u16();
        let body = resp
            .bytes()
            .await
            .map_err(|e| backend("reading the ActiveMQ queue size", e.to_string()))?;
        let size = jolokia_value(status, &body)
            .map_err(|m| backend("reading the ActiveMQ queue size", format!("ActiveMQ {m}")))?;
        Ok(Sample {
            value: size as f64,
            active: crate::is_active(size as f64, c.activation_target_queue_size as f64),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_html_escaped_as_go_templates_do() {
        assert_eq!(html_escape("a&b<'\"+"), "a&amp;b&lt;&#39;&#34;&#43;");
    }
}
