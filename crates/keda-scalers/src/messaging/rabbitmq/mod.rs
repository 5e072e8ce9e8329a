//! `rabbitmq`: the length or the message rates of a RabbitMQ queue.
//!
//! Two ways in, as upstream: AMQP 0-9-1 (a passive `queue.declare` answers the number of ready messages;
//! [`amqp`]) and the management plugin's HTTP API (`GET <host>/api/queues/<vhost>/<queue>`, or the
//! filtered listing when `useRegex` is set; [`management`]). `protocol: auto` (the default) picks one
//! from the scheme of `host`. Modes: `QueueLength` (default, target 20), `MessageRate` (publish rate),
//! `DeliverGetRate`, `PublishedToDeliveredRatio` and `ExpectedQueueConsumptionTime`; all but the first
//! need HTTP. The deprecated `queueLength` still sets a QueueLength target.
//!
//! `username`/`password` (TriggerAuthentication or `…FromEnv`) replace the credentials of the host URL, as
//! upstream. TLS (`tls: enable` with `ca`, `cert`, `key` as PEM in the TriggerAuthentication) applies to
//! `amqps://` and to the HTTP client; `unsafeSsl` skips server verification. Not supported yet, and
//! refused at parse time naming the parameter: OAuth2 client credentials and Azure Workload Identity.

mod amqp;
mod management;

use std::sync::Arc;
use std::time::Duration;

pub use amqp::AmqpConnections;

use crate::input::{AUTH, METADATA, METADATA_AUTH, Source};
use crate::{
    BuildContext, MetricSpec, MetricTargetType, Sample, Scaler, ScalerError, ScalerTimeouts,
    TimeoutDefaults, TriggerConfig, TriggerInput, TriggerRef,
};

pub const TRIGGER_TYPE: &str = "rabbitmq";
/// Upstream's default target when neither `mode`/`value` nor `queueLength` is given.
pub const DEFAULT_QUEUE_LENGTH: f64 = 20.0;
/// Opening an AMQP connection (TCP, TLS, AMQP handshake): amqp091-go's default dial timeout.
pub const AMQP_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// One passive `queue.declare`, where upstream has no bound.
pub const AMQP_OPERATION_TIMEOUT: Duration = Duration::from_secs(10);

const HOST_ORDER: &[Source] = &[Source::Metadata, Source::AuthParams, Source::ResolvedEnv];
const AUTH_ENV: &[Source] = &[Source::AuthParams, Source::ResolvedEnv];

/// What is measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    QueueLength,
    MessageRate,
    DeliverGetRate,
    PublishedToDeliveredRatio,
    ExpectedQueueConsumptionTime,
}

impl Mode {
    const NAMES: [(&'static str, Mode); 5] = [
        ("QueueLength", Mode::QueueLength),
        ("MessageRate", Mode::MessageRate),
        ("DeliverGetRate", Mode::DeliverGetRate),
        ("PublishedToDeliveredRatio", Mode::PublishedToDeliveredRatio),
        (
            "ExpectedQueueConsumptionTime",
            Mode::ExpectedQueueConsumptionTime,
        ),
    ];

    pub fn as_str(self) -> &'static str {
        Mode::NAMES
            .iter()
            .find(|(_, m)| *m == self)
            .map(|(n, _)| *n)
            .unwrap_or("QueueLength")
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    Amqp,
    Http,
}

/// How the queues matched by `useRegex` are combined.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    Sum,
    Max,
    Avg,
}

/// `tls: enable`: the PEM material of the TriggerAuthentication.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct TlsParams {
    pub ca: Option<String>,
    pub cert: Option<String>,
    pub key: Option<String>,
    pub key_password: Option<String>,
}

/// A parsed `rabbitmq` trigger.
#[derive(Clone)]
pub struct RabbitMqConfig {
    pub index: usize,
    pub queue_name: String,
    pub mode: Mode,
    /// The target (`value`, or the deprecated `queueLength`, or 20).
    pub value: f64,
    pub activation_value: f64,
    /// The URL as given (credentials included).
    pub host: String,
    pub protocol: Protocol,
    pub vhost_name: Option<String>,
    pub use_regex: bool,
    pub exclude_unacknowledged: bool,
    pub page_size: i64,
    pub operation: Operation,
    /// The HTTP client timeout (`None`: absent or 0, `KEDA_HTTP_DEFAULT_TIMEOUT`).
    pub timeout: Option<Duration>,
    pub username: Option<String>,
    pub password: Option<String>,
    /// Set with `tls: enable`.
    pub tls: Option<TlsParams>,
    pub unsafe_ssl: bool,
    pub metric_type: MetricTargetType,
}

impl std::fmt::Debug for RabbitMqConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RabbitMqConfig")
            .field("index", &self.index)
            .field("queue_name", &self.queue_name)
            .field("mode", &self.mode)
            .field("value", &self.value)
            .field("activation_value", &self.activation_value)
            .field("host", &redact_url(&self.host))
            .field("protocol", &self.protocol)
            .field("vhost_name", &self.vhost_name)
            .field("use_regex", &self.use_regex)
            .field("exclude_unacknowledged", &self.exclude_unacknowledged)
            .field("page_size", &self.page_size)
            .field("operation", &self.operation)
            .field("timeout", &self.timeout)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("tls", &self.tls.is_some())
            .field("unsafe_ssl", &self.unsafe_ssl)
            .field("metric_type", &self.metric_type)
            .finish()
    }
}

pub fn parse(input: &TriggerInput<'_>) -> Result<Box<dyn TriggerConfig>, ScalerError> {
    Ok(Box::new(parse_config(input)?))
}

/// Parameters upstream accepts that keda-rs cannot honour yet: refused rather than silently ignored.
const UNSUPPORTED_AUTH: &[(&str, &str)] = &[
    (
        "workloadIdentityResource",
        "Azure Workload Identity is not supported by keda-rs yet",
    ),
    (
        "oauthTokenURI",
        "OAuth2 authentication is not supported by keda-rs yet",
    ),
    (
        "clientID",
        "OAuth2 authentication is not supported by keda-rs yet",
    ),
    (
        "clientSecret",
        "OAuth2 authentication is not supported by keda-rs yet",
    ),
];

pub fn parse_config(input: &TriggerInput<'_>) -> Result<RabbitMqConfig, ScalerError> {
    let metric_type = input.external_metric_type()?;
    let queue_name: String = input.field("queueName").order(METADATA).required()?;
    let mode: String = input
        .field("mode")
        .order(METADATA)
        .default("Unknown")
        .required()?;
    let queue_length: f64 = input
        .field("queueLength")
        .order(METADATA)
        .default("0")
        .required()?;
    let value: f64 = input
        .field("value")
        .order(METADATA)
        .default("0")
        .required()?;
    let activation_value: f64 = input
        .field("activationValue")
        .order(METADATA)
        .default("0")
        .required()?;
    let host: String = input.field("host").order(HOST_ORDER).required()?;
    let protocol: String = input
        .field("protocol")
        .order(METADATA_AUTH)
        .default("auto")
        .required()?;
    let vhost_name: Option<String> = input.field("vhostName").order(METADATA_AUTH).optional()?;
    let use_regex: bool = input
        .field("useRegex")
        .order(METADATA)
        .default("false")
        .required()?;
    let exclude_unacknowledged: bool = input
        .field("excludeUnacknowledged")
        .order(METADATA)
        .default("false")
        .required()?;
    let page_size: i64 = input
        .field("pageSize")
        .order(METADATA)
        .default("100")
        .required()?;
    let operation: String = input
        .field("operation")
        .order(METADATA)
        .default("sum")
        .required()?;
    let timeout: Option<Duration> = input.field("timeout").order(METADATA).optional()?;
    let username: Option<String> = input.field("username").order(AUTH_ENV).optional()?;
    let password: Option<String> = input.field("password").order(AUTH_ENV).optional()?;
    let ca: Option<String> = input.field("ca").order(AUTH).optional()?;
    let cert: Option<String> = input.field("cert").order(AUTH).optional()?;
    let key: Option<String> = input.field("key").order(AUTH).optional()?;
    let key_password: Option<String> = input.field("keyPassword").order(AUTH).optional()?;
    let tls: String = input
        .field("tls")
        .order(AUTH)
        .default("disable")
        .required()?;
    let unsafe_ssl: bool = input
        .field("unsafeSsl")
        .order(METADATA)
        .default("false")
        .required()?;
    for (field, reason) in UNSUPPORTED_AUTH {
        if input
            .field(field)
            .order(AUTH)
            .optional::<String>()?
            .is_some()
        {
            return Err(input.error(field, *reason));
        }
    }

    // Upstream's checks, in its order.
    if !["amqp", "http", "auto"].contains(&protocol.as_str()) {
        return Err(input.error(
            "protocol",
            format!("the protocol has to be either `amqp`, `http`, or `auto` but is `{protocol}`"),
        ));
    }
    if tls != "enable" && tls != "disable" {
        return Err(input.error(
            "tls",
            format!("incorrect value for TLS given: {tls} (enable or disable)"),
        ));
    }
    match (&cert, &key) {
        (Some(_), None) => {
            return Err(input.error("key", "both key and certificate must be provided"));
        }
        (None, Some(_)) => {
            return Err(input.error("cert", "both key and certificate must be provided"));
        }
        _ => {}
    }
    if page_size < 1 {
        return Err(input.error("pageSize", "pageSize should be 1 or greater"));
    }
    match (&username, &password) {
        (Some(_), None) => {
            return Err(input.error("password", "username and password must be given together"));
        }
        (None, Some(_)) => {
            return Err(input.error("username", "username and password must be given together"));
        }
        _ => {}
    }
    let protocol = match protocol.as_str() {
        "amqp" => Protocol::Amqp,
        "http" => Protocol::Http,
        _ => match url_scheme(&host).as_deref() {
            Some("amqp" | "amqps") => Protocol::Amqp,
            Some("http" | "https") => Protocol::Http,
            other => {
                return Err(input.error(
                    "host",
                    format!(
                        "unknown host URL scheme: `{}` (protocol auto needs amqp, amqps, http or https)",
                        other.unwrap_or("")
                    ),
                ));
            }
        },
    };
    if use_regex && protocol != Protocol::Http {
        return Err(input.error(
            "useRegex",
            "configure useRegex=true only with HTTP protocol",
        ));
    }
    if exclude_unacknowledged && protocol != Protocol::Http {
        return Err(input.error(
            "excludeUnacknowledged",
            "configure excludeUnacknowledged=true only with HTTP protocol",
        ));
    }
    // Upstream reads `operation` only when combining the queues of a regex, and fails each poll on an
    // unknown one; keda-rs reports it at parse time instead.
    let operation = match operation.as_str() {
        "sum" => Operation::Sum,
        "max" => Operation::Max,
        "avg" => Operation::Avg,
        other if use_regex => {
            return Err(input.error(
                "operation",
                format!("operation mode {other} must be one of sum, avg, max"),
            ));
        }
        _ => Operation::Sum,
    };

    let unknown = mode == "Unknown";
    let (mode, value) = if queue_length == 0.0 && unknown && value == 0.0 {
        (Mode::QueueLength, DEFAULT_QUEUE_LENGTH)
    } else if queue_length != 0.0 {
        if !unknown || value != 0.0 {
            return Err(input.error(
                "queueLength",
                "queueLength is deprecated; use mode and value",
            ));
        }
        (Mode::QueueLength, queue_length)
    } else {
        if unknown {
            return Err(input.error("mode", "mode must be specified"));
        }
        if value == 0.0 {
            return Err(input.error("value", "value must be specified"));
        }
        let Some((_, m)) = Mode::NAMES.iter().find(|(n, _)| *n == mode) else {
            return Err(input.error(
                "mode",
                format!(
                    "trigger mode {mode} must be one of QueueLength, MessageRate, DeliverGetRate, \
                     PublishedToDeliveredRatio or ExpectedQueueConsumptionTime"
                ),
            ));
        };
        if *m != Mode::QueueLength && protocol != Protocol::Http {
            return Err(input.error(
                "mode",
                format!("protocol amqp not supported; must be HTTP to use trigger mode {mode}"),
            ));
        }
        if protocol == Protocol::Amqp && timeout.is_some_and(|t| !t.is_zero()) {
            return Err(input.error("timeout", "AMQP protocol doesn't support custom timeouts"));
        }
        (*m, value)
    };

    Ok(RabbitMqConfig {
        index: input.index,
        queue_name,
        mode,
        value,
        activation_value,
        host,
        protocol,
        vhost_name,
        use_regex,
        exclude_unacknowledged,
        page_size,
        operation,
        timeout: timeout.filter(|t| !t.is_zero()),
        username,
        password,
        tls: (tls == "enable").then_some(TlsParams {
            ca,
            cert,
            key,
            key_password,
        }),
        unsafe_ssl,
        metric_type,
    })
}

/// The scheme of a URL as Go's `url.Parse` finds it (lower-cased); `None` when there is none.
fn url_scheme(raw: &str) -> Option<String> {
    let (scheme, _) = raw.split_once(':')?;
    let mut chars = scheme.chars();
    let first = chars.next()?;
    if !first.is_ascii_alphabetic()
        || !chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    {
        return None;
    }
    Some(scheme.to_ascii_lowercase())
}

/// Go's `url.QueryEscape`: unreserved bytes kept, space as `+`, everything else `%XX`.
pub fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(b))
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// `user:password@` in a URL replaced, so errors and logs never carry credentials (upstream's
/// anonymisation).
pub fn redact_url(s: &str) -> String {
    let Some(at) = s.find('@') else {
        return s.to_owned();
    };
    let start = s[..at].rfind("//").map(|i| i + 2).unwrap_or(0);
    if s[start..at].contains('/') {
        return s.to_owned();
    }
    format!("{}user:password@{}", &s[..start], &s[at + 1..])
}

/// The numbers one poll reads.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct QueueStatus {
    pub messages: i64,
    pub publish_rate: f64,
    pub deliver_get_rate: f64,
}

impl RabbitMqConfig {
    /// The metric value and activity for `status`, as upstream computes them per mode (always strictly
    /// above `activationValue`; the rate modes have upstream's extra conditions).
    pub fn evaluate(&self, status: QueueStatus) -> Sample {
        let act = self.activation_value;
        let messages = status.messages as f64;
        let (publish, deliver) = (status.publish_rate, status.deliver_get_rate);
        let (value, active) = match self.mode {
            Mode::QueueLength => (messages, crate::is_active(messages, act)),
            Mode::MessageRate => (
                publish,
                crate::is_active(publish, act) || crate::is_active(messages, act),
            ),
            Mode::DeliverGetRate => (deliver, crate::is_active(deliver, act)),
            Mode::PublishedToDeliveredRatio => {
                let ratio = if publish > 0.0 && deliver == 0.0 {
                    act
                } else if publish > 0.0 && deliver > 0.0 {
                    publish / deliver
                } else {
                    0.0
                };
                (
                    ratio,
                    crate::is_active(ratio, act) || (publish > 0.0 && deliver == 0.0),
                )
            }
            Mode::ExpectedQueueConsumptionTime => {
                let eta = if deliver == 0.0 {
                    act
                } else {
                    (publish - deliver) / deliver + messages / deliver
                };
                (eta, crate::is_active(eta, act) || deliver == 0.0)
            }
        };
        Sample { value, active }
    }

    fn backend_error(&self, action: &'static str, message: String) -> ScalerError {
        ScalerError::Backend {
            trigger: self.trigger(),
            action,
            message: redact_url(&message),
        }
    }

    fn config_error(&self, field: &str, reason: String) -> ScalerError {
        ScalerError::Config {
            trigger: self.trigger(),
            field: field.to_owned(),
            reason,
        }
    }
}

#[async_trait::async_trait]
impl TriggerConfig for RabbitMqConfig {
    fn metric_spec(&self) -> MetricSpec {
        MetricSpec::External {
            metric_name: crate::external_metric_name(
                self.index,
                &format!("rabbitmq-{}", query_escape(&self.queue_name)),
            ),
            target_type: self.metric_type,
            target: self.value,
        }
    }

    fn trigger(&self) -> TriggerRef {
        TriggerRef {
            index: self.index,
            trigger_type: TRIGGER_TYPE.into(),
        }
    }

    /// `activationValue` in the modes where [`RabbitMqConfig::evaluate`] compares the metric alone with
    /// it; the other modes also activate on numbers the metric does not carry (the queue length, a
    /// stopped consumer).
    fn activation_threshold(&self) -> Option<f64> {
        matches!(self.mode, Mode::QueueLength | Mode::DeliverGetRate)
            .then_some(self.activation_value)
    }

    /// HTTP: the trigger's `timeout`, else `KEDA_HTTP_DEFAULT_TIMEOUT`. AMQP: the connection is opened at
    /// build ([`AMQP_CONNECT_TIMEOUT`]); a poll may reopen it and then declares ([`AMQP_OPERATION_TIMEOUT`]).
    fn timeouts(&self, defaults: &TimeoutDefaults) -> ScalerTimeouts {
        match self.protocol {
            Protocol::Http => ScalerTimeouts::http(self.timeout.unwrap_or(defaults.http)),
            Protocol::Amqp => ScalerTimeouts {
                build: Some(AMQP_CONNECT_TIMEOUT),
                sample: Some(AMQP_CONNECT_TIMEOUT.saturating_add(AMQP_OPERATION_TIMEOUT)),
            },
        }
    }

    async fn build(&self, ctx: &BuildContext) -> Result<Arc<dyn Scaler>, ScalerError> {
        match self.protocol {
            Protocol::Http => Ok(Arc::new(management::HttpScaler::new(self, ctx)?)),
            Protocol::Amqp => Ok(Arc::new(amqp::AmqpScaler::new(self, ctx).await?)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_redacted() {
        assert_eq!(
            redact_url("https://user1:password1@domain.com"),
            "https://user:password@domain.com"
        );
        assert_eq!(
            redact_url("the queue https://u:p_-@domain.com/api/virtual is unavailable"),
            "the queue https://user:password@domain.com/api/virtual is unavailable"
        );
        assert_eq!(redact_url("nothing to replace"), "nothing to replace");
        assert_eq!(redact_url("http://h/a@b"), "http://h/a@b");
    }

    #[test]
    fn schemes_as_go_finds_them() {
        assert_eq!(url_scheme("amqps://").as_deref(), Some("amqps"));
        assert_eq!(url_scheme("HTTP://h").as_deref(), Some("http"));
        assert_eq!(url_scheme("something://").as_deref(), Some("something"));
        assert_eq!(url_scheme("plainHost"), None);
        assert_eq!(url_scheme("1x://h"), None);
    }

    /// Where `activation_threshold` reports one, the scaler's activity is the value against it for any
    /// queue status; where it reports none, some status makes them differ.
    #[test]
    fn activation_threshold_matches_evaluate() {
        let statuses: Vec<QueueStatus> = [0, 2, 3, 4, 50]
            .into_iter()
            .flat_map(|messages| {
                [0.0, 1.5, 3.0, 9.0].into_iter().flat_map(move |publish| {
                    [0.0, 0.5, 3.0, 4.0]
                        .into_iter()
                        .map(move |deliver| QueueStatus {
                            messages,
                            publish_rate: publish,
                            deliver_get_rate: deliver,
                        })
                })
            })
            .collect();
        for (mode, _) in Mode::NAMES {
            let md: std::collections::BTreeMap<String, String> = [
                ("host", "http://rabbitmq:15672/"),
                ("queueName", "q"),
                ("mode", mode),
                ("value", "5"),
                ("activationValue", "3"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
            let empty = std::collections::BTreeMap::new();
            let config = parse_config(&TriggerInput {
                index: 0,
                trigger_type: TRIGGER_TYPE,
                namespace: "default",
                name: None,
                metadata: &md,
                resolved_env: &empty,
                auth_params: &empty,
                metric_type: None,
            })
            .unwrap_or_else(|e| panic!("{mode}: {e}"));
            let differs = statuses.iter().find(|s| {
                let sample = config.evaluate(**s);
                sample.active != crate::is_active(sample.value, 3.0)
            });
            match config.activation_threshold() {
                Some(t) => {
                    assert_eq!(t, 3.0, "{mode}");
                    assert_eq!(differs, None, "{mode}");
                }
                None => assert!(differs.is_some(), "{mode}: refused needlessly"),
            }
        }
    }
}
