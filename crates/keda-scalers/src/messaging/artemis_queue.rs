//! `artemis-queue`: the message count of an ActiveMQ Artemis queue, read through the broker's Jolokia agent
//! (`GET http://<managementEndpoint>/console/jolokia/read/org.apache.activemq.artemis:broker="…",…/MessageCount`)
//! with basic authentication and, when set, TLS (`unsafeSsl`, `ca`, `cert`/`key`).
//!
//! The URL is upstream's template with `<<managementEndpoint>>`, `<<brokerName>>`, `<<brokerAddress>>`
//! and `<<queueName>>` replaced, or a whole `restApiTemplate`, from which those four are read back (the
//! host, and the `broker`, `address` and `queue` keys of the MBean name, quotes included as upstream keeps
//! them, so they show in the metric name). Jolokia refuses requests without an `Origin` header:
//! `corsHeader`, by default `http://<managementEndpoint>`.

use std::sync::Arc;

use super::jolokia::jolokia_value;
use crate::http::{ClientKey, ObservedSend};
use crate::input::{AUTH, METADATA};
use crate::{
    BuildContext, MetricSpec, MetricTargetType, Sample, Scaler, ScalerError, ScalerTimeouts,
    Source, TimeoutDefaults, TriggerConfig, TriggerInput, TriggerRef,
};

pub const TRIGGER_TYPE: &str = "artemis-queue";

/// Upstream's template when no `restApiTemplate` is given.
pub const DEFAULT_REST_API_TEMPLATE: &str = "http://<<managementEndpoint>>/console/jolokia/read/org.apache.activemq.artemis:broker=\"<<brokerName>>\",component=addresses,address=\"<<brokerAddress>>\",subcomponent=queues,routing-type=\"anycast\",queue=\"<<queueName>>\"/MessageCount";

/// Upstream reads the credentials from authentication parameters, then metadata, then env.
const AUTH_METADATA_ENV: &[Source] = &[Source::AuthParams, Source::Metadata, Source::ResolvedEnv];

#[derive(Clone, PartialEq)]
pub struct ArtemisConfig {
    pub index: usize,
    pub management_endpoint: String,
    pub queue_name: String,
    pub broker_name: String,
    pub broker_address: String,
    /// `restApiTemplate`, or [`DEFAULT_REST_API_TEMPLATE`].
    pub rest_api_template: String,
    pub username: String,
    pub password: String,
    /// The `Origin` header sent (`corsHeader`, default `http://<managementEndpoint>`).
    pub cors_header: String,
    /// `queueLength` (default 10).
    pub queue_length: i64,
    /// Active when the count is strictly above `activationQueueLength` (default 10, as upstream).
    pub activation_queue_length: i64,
    pub unsafe_ssl: bool,
    pub ca: Option<String>,
    pub cert_and_key: Option<(String, String)>,
    pub metric_type: MetricTargetType,
}

impl std::fmt::Debug for ArtemisConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArtemisConfig")
            .field("index", &self.index)
            .field("management_endpoint", &self.management_endpoint)
            .field("queue_name", &self.queue_name)
            .field("broker_name", &self.broker_name)
            .field("broker_address", &self.broker_address)
            .field("rest_api_template", &self.rest_api_template)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("cors_header", &self.cors_header)
            .field("queue_length", &self.queue_length)
            .field("activation_queue_length", &self.activation_queue_length)
            .field("unsafe_ssl", &self.unsafe_ssl)
            .field("ca", &self.ca.as_ref().map(|_| "<set>"))
            .field(
                "cert_and_key",
                &self.cert_and_key.as_ref().map(|_| "<redacted>"),
            )
            .field("metric_type", &self.metric_type)
            .finish()
    }
}

pub fn parse(input: &TriggerInput<'_>) -> Result<Box<dyn TriggerConfig>, ScalerError> {
    Ok(Box::new(parse_config(input)?))
}

pub fn parse_config(input: &TriggerInput<'_>) -> Result<ArtemisConfig, ScalerError> {
    let metric_type = input.external_metric_type()?;
    let metadata = |name: &'static str| input.field(name).order(METADATA).optional::<String>();
    let management_endpoint = metadata("managementEndpoint")?;
    let queue_name = metadata("queueName")?;
    let broker_name = metadata("brokerName")?;
    let broker_address = metadata("brokerAddress")?;
    let username: String = input
        .field("username")
        .order(AUTH_METADATA_ENV)
        .required()?;
    let password: String = input
        .field("password")
        .order(AUTH_METADATA_ENV)
        .required()?;
    let template = metadata("restApiTemplate")?;
    let queue_length: i64 = input
        .field("queueLength")
        .order(METADATA)
        .default("10")
        .required()?;
    let activation_queue_length: i64 = input
        .field("activationQueueLength")
        .order(METADATA)
        .default("10")
        .required()?;
    let cors_header = metadata("corsHeader")?;
    let unsafe_ssl: bool = input
        .field("unsafeSsl")
        .order(METADATA)
        .default("false")
        .required()?;
    let ca: Option<String> = input.field("ca").order(AUTH).optional()?;
    let cert: Option<String> = input.field("cert").order(AUTH).optional()?;
    let key: Option<String> = input.field("key").order(AUTH).optional()?;
    let key_password: Option<String> = input.field("keyPassword").order(AUTH).optional()?;

    let (management_endpoint, broker_name, broker_address, queue_name, rest_api_template) =
        match template {
            Some(t) => {
                let parts = |r: String| {
                    input.error(
                        "restApiTemplate",
                        format!("can't parse restApiTemplate : {r}"),
                    )
                };
                let (host, keys) = template_parts(&t).map_err(parts)?;
                let key = |name: &str, what: &str| {
                    keys.iter()
                        .find(|(k, _)| k == name)
                        .map(|(_, v)| v.clone())
                        .filter(|v| !v.is_empty() && v != "\"\"")
                        .ok_or_else(|| parts(format!("no {what} given")))
                };
                let address = key("address", "brokerAddress")?;
                let queue = key("queue", "queueName")?;
                let broker = key("broker", "brokerName")?;
                (host, broker, address, queue, t)
            }
            None => {
                let endpoint = management_endpoint.ok_or_else(|| {
                    input.error("managementEndpoint", "no management endpoint given")
                })?;
                let queue =
                    queue_name.ok_or_else(|| input.error("queueName", "no queue name given"))?;
                let broker =
                    broker_name.ok_or_else(|| input.error("brokerName", "no broker name given"))?;
                let address = broker_address
                    .ok_or_else(|| input.error("brokerAddress", "no broker address given"))?;
                (
                    endpoint,
                    broker,
                    address,
                    queue,
                    DEFAULT_REST_API_TEMPLATE.to_owned(),
                )
            }
        };
    let cors_header = cors_header.unwrap_or_else(|| format!("http://{management_endpoint}"));
    let cert_and_key = match (cert, key) {
        (Some(c), Some(k)) => Some((c, k)),
        (None, None) => None,
        (Some(_), None) => return Err(input.error("key", "both cert and key must be provided")),
        (None, Some(_)) => return Err(input.error("cert", "both cert and key must be provided")),
    };
    if key_password.is_some() {
        return Err(input.error(
            "keyPassword",
            "encrypted client keys are not supported by keda-rs; provide an unencrypted key",
        ));
    }
    Ok(ArtemisConfig {
        index: input.index,
        management_endpoint,
        queue_name,
        broker_name,
        broker_address,
        rest_api_template,
        username,
        password,
        cors_header,
        queue_length,
        activation_queue_length,
        unsafe_ssl,
        ca,
        cert_and_key,
        metric_type,
    })
}

/// The host (with port, as written) of a `restApiTemplate`, and the `key=value` pairs of the MBean name in
/// its path as written (what follows the first `:` up to the next `/`), decoded as a query string is once
/// empty quotes (`""`) are dropped — upstream's reading.
fn template_parts(template: &str) -> Result<(String, Vec<(String, String)>), String> {
    reqwest::Url::parse(template).map_err(|e| format!("{template:?}: {e}"))?;
    let (_, rest) = template
        .split_once("://")
        .ok_or_else(|| format!("{template:?} has no scheme"))?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let (_, mbean) = path
        .split_once(':')
        .ok_or_else(|| format!("{template:?}: the path holds no MBean name (no ':')"))?;
    let mbean = mbean
        .split('/')
        .next()
        .unwrap_or_default()
        .replace("\"\"", "");
    let mut pairs = Vec::new();
    for part in mbean.split(',').filter(|p| !p.is_empty()) {
        let (k, v) = part.split_once('=').unwrap_or((part, ""));
        pairs.push((query_decode(k)?, query_decode(v)?));
    }
    Ok((host.to_owned(), pairs))
}

/// A query-string component (Go's `url.ParseQuery`): `+` is a space, then percent-decoding.
fn query_decode(s: &str) -> Result<String, String> {
    let s = s.replace('+', " ");
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

impl ArtemisConfig {
    /// The URL polled: the template with its four placeholders replaced (in one pass, as Go's
    /// `strings.Replacer`, so a value holding a placeholder is left as it is).
    pub fn monitoring_endpoint(&self) -> String {
        let placeholders = [
            ("<<managementEndpoint>>", &self.management_endpoint),
            ("<<queueName>>", &self.queue_name),
            ("<<brokerName>>", &self.broker_name),
            ("<<brokerAddress>>", &self.broker_address),
        ];
        let mut out = String::new();
        let mut rest = self.rest_api_template.as_str();
        'scan: while !rest.is_empty() {
            for (placeholder, value) in placeholders {
                if let Some(after) = rest.strip_prefix(placeholder) {
                    out.push_str(value);
                    rest = after;
                    continue 'scan;
                }
            }
            let c = rest.chars().next().unwrap_or_default();
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
        out
    }
}

#[async_trait::async_trait]
impl TriggerConfig for ArtemisConfig {
    fn metric_spec(&self) -> MetricSpec {
        MetricSpec::External {
            metric_name: crate::external_metric_name(
                self.index,
                &format!("artemis-{}", self.queue_name),
            ),
            target_type: self.metric_type,
            target: self.queue_length as f64,
        }
    }

    fn trigger(&self) -> TriggerRef {
        TriggerRef {
            index: self.index,
            trigger_type: TRIGGER_TYPE.into(),
        }
    }

    fn activation_threshold(&self) -> Option<f64> {
        Some(self.activation_queue_length as f64)
    }

    /// Upstream's client has `KEDA_HTTP_DEFAULT_TIMEOUT` and no setting of its own.
    fn timeouts(&self, defaults: &TimeoutDefaults) -> ScalerTimeouts {
        ScalerTimeouts::http(defaults.http)
    }

    async fn build(&self, ctx: &BuildContext) -> Result<Arc<dyn Scaler>, ScalerError> {
        let url = self.monitoring_endpoint();
        if reqwest::Url::parse(&url).is_err() {
            return Err(ScalerError::Config {
                trigger: self.trigger(),
                field: "managementEndpoint".into(),
                reason: format!("{url:?} is not a valid URL"),
            });
        }
        let key = ClientKey {
            timeout: ctx.timeouts.http,
            unsafe_ssl: self.unsafe_ssl,
            ca: self.ca.clone(),
            cert_and_key: self.cert_and_key.clone(),
        };
        let client = ctx.http.get(&key).map_err(|message| ScalerError::Backend {
            trigger: self.trigger(),
            action: "building the HTTP client",
            message,
        })?;
        Ok(Arc::new(ArtemisScaler {
            config: self.clone(),
            url,
            client,
        }))
    }
}

struct ArtemisScaler {
    config: ArtemisConfig,
    url: String,
    client: Arc<reqwest::Client>,
}

#[async_trait::async_trait]
impl Scaler for ArtemisScaler {
    async fn sample(&self) -> Result<Sample, ScalerError> {
        let c = &self.config;
        let backend = |message: String| ScalerError::Backend {
            trigger: c.trigger(),
            action: "reading the artemis queue's message count",
            message,
        };
        let resp = self
            .client
            .get(&self.url)
            .basic_auth(&c.username, Some(&c.password))
            .header(reqwest::header::ORIGIN, &c.cors_header)
            .observed_send()
            .await
            .map_err(|e| backend(format!("{}: {e}", self.url)))?;
        let status = resp.status().as_u16();
        let body = resp.bytes().await.map_err(|e| backend(e.to_string()))?;
        let count = jolokia_value(status, &body).map_err(|m| backend(format!("artemis {m}")))?;
        Ok(Sample {
            value: count as f64,
            active: crate::is_active(count as f64, c.activation_queue_length as f64),
        })
    }
}
