//! `datadog`: a metric query through the Datadog API (`GET https://api.<site>/api/v1/query`), or a
//! `DatadogMetric` read through the Datadog Cluster Agent's external metrics API
//! (`useClusterAgentProxy: "true"`).
//!
//! Two upstream quirks are kept on purpose: the deprecated metadata `type` (`average`/`global`) is
//! validated but the HPA target type comes from the trigger's `metricType` only; and a `targetValue` (or
//! `queryValue`) of exactly -1 counts as missing.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::http::{ClientKey, ObservedSend};
use crate::input::{AUTH, METADATA};
use crate::{
    BuildContext, MetricSpec, MetricTargetType, Sample, Scaler, ScalerError, ScalerTimeouts,
    TimeoutDefaults, TriggerConfig, TriggerInput, TriggerRef,
};

pub const TRIGGER_TYPE: &str = "datadog";

/// Sites the Datadog API client pinned by upstream (datadog-api-client-go v1.16.0) accepts for `site`.
pub const DATADOG_SITES: &[&str] = &[
    "datadoghq.com",
    "us3.datadoghq.com",
    "us5.datadoghq.com",
    "datadoghq.eu",
    "ddog-gov.com",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Aggregator {
    Average,
    Max,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ApiMode {
    pub query: String,
    /// Required when the query returns several series; without it upstream takes the max of one series.
    pub aggregator: Option<Aggregator>,
    pub activation_query_value: f64,
    /// Window length in seconds.
    pub age: i64,
    /// Seconds between now and the end of the window.
    pub time_window_offset: i64,
    /// Points to skip back from the last non-null point.
    pub last_available_point_offset: i64,
    pub api_key: String,
    pub app_key: String,
    pub site: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ClusterAgentMode {
    /// Service and namespace of the Cluster Agent's metrics API, and its port.
    pub service: String,
    pub service_namespace: String,
    pub port: i64,
    /// The `DatadogMetric` object's namespace and name.
    pub metric_namespace: String,
    pub metric_name: String,
    pub activation_target_value: f64,
    pub unsafe_ssl: bool,
    pub bearer_token: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Mode {
    Api(ApiMode),
    ClusterAgent(ClusterAgentMode),
}

#[derive(Clone, Debug, PartialEq)]
pub struct DatadogConfig {
    pub index: usize,
    /// The external metric name (`s<i>-datadog-<query up to '{'>`, or `datadogmetric@<ns>:<name>`).
    pub metric_name: String,
    pub target_value: f64,
    pub metric_type: MetricTargetType,
    /// `metricUnavailableValue`: the value used when Datadog has no data (and for HTTP 422).
    pub fill_value: Option<f64>,
    /// The HTTP client timeout; `None` (absent or 0): `KEDA_HTTP_DEFAULT_TIMEOUT`.
    pub timeout: Option<Duration>,
    pub mode: Mode,
}

pub fn parse(input: &TriggerInput<'_>) -> Result<Box<dyn TriggerConfig>, ScalerError> {
    Ok(Box::new(parse_config(input)?))
}

pub fn parse_config(input: &TriggerInput<'_>) -> Result<DatadogConfig, ScalerError> {
    let metric_type = input.external_metric_type()?;
    // Every parameter is read (and type-checked) first, in both modes, as upstream's typed config does.
    let datadog_namespace: Option<String> =
        input.field("datadogNamespace").order(AUTH).optional()?;
    let metrics_service: Option<String> = input
        .field("datadogMetricsService")
        .order(AUTH)
        .optional()?;
    let port: i64 = input
        .field("datadogMetricsServicePort")
        .order(AUTH)
        .default("8443")
        .required()?;
    let unsafe_ssl: bool = input
        .field("unsafeSsl")
        .order(AUTH)
        .default("false")
        .required()?;
    let auth_mode: Option<String> = input.field("authMode").order(AUTH).optional()?;
    let token: Option<String> = input.field("token").order(AUTH).optional()?;
    let metric_name: Option<String> = input
        .field("datadogMetricName")
        .order(METADATA)
        .optional()?;
    let metric_namespace: Option<String> = input
        .field("datadogMetricNamespace")
        .order(METADATA)
        .optional()?;
    let activation_target_value: f64 = input
        .field("activationTargetValue")
        .order(METADATA)
        .default("0")
        .required()?;
    let api_key: Option<String> = input.field("apiKey").order(AUTH).optional()?;
    let app_key: Option<String> = input.field("appKey").order(AUTH).optional()?;
    let site: String = input
        .field("datadogSite")
        .order(AUTH)
        .default("datadoghq.com")
        .required()?;
    let query: Option<String> = input.field("query").order(METADATA).optional()?;
    let aggregator = input
        .field("queryAggregator")
        .order(METADATA)
        .one_of(&["average", "max"])
        .optional::<String>()?
        .map(|a| {
            if a == "average" {
                Aggregator::Average
            } else {
                Aggregator::Max
            }
        });
    let activation_query_value: f64 = input
        .field("activationQueryValue")
        .order(METADATA)
        .default("0")
        .required()?;
    let age: i64 = input
        .field("age")
        .order(METADATA)
        .default("90")
        .required()?;
    let time_window_offset: i64 = input
        .field("timeWindowOffset")
        .order(METADATA)
        .default("0")
        .required()?;
    let last_available_point_offset: i64 = input
        .field("lastAvailablePointOffset")
        .order(METADATA)
        .default("0")
        .required()?;
    let use_cluster_agent: bool = input
        .field("useClusterAgentProxy")
        .order(METADATA)
        .default("false")
        .required()?;
    // Read for compatibility; upstream overwrites it with the generated name.
    let _hpa_metric_name: Option<String> =
        input.field("hpaMetricName").order(METADATA).optional()?;
    let fill_value: Option<f64> = input
        .field("metricUnavailableValue")
        .order(METADATA)
        .optional()?;
    let target_value: f64 = input
        .field("targetValue")
        .alias("queryValue")
        .order(METADATA)
        .default("-1")
        .required()?;
    let timeout = input
        .field("timeout")
        .order(METADATA)
        .optional::<Duration>()?
        .filter(|t| !t.is_zero());

    // Upstream's Validate().
    if age < 0 {
        return Err(input.error("age", "should not be smaller than 0 seconds"));
    }
    if time_window_offset < 0 {
        return Err(input.error("timeWindowOffset", "should not be smaller than 0 seconds"));
    }
    if last_available_point_offset < 0 {
        return Err(input.error("lastAvailablePointOffset", "should not be smaller than 0"));
    }
    if let Some(q) = &query
        && !has_scope(q)
    {
        return Err(input.error(
            "query",
            "malformed Datadog query: missing query scope (a filter between '{' and '}')",
        ));
    }
    let mut bearer_token = None;
    if let Some(mode) = &auth_mode {
        if mode.trim() != "bearer" {
            return Err(input.error(
                "authMode",
                format!("{mode:?} is not supported; the only mode is bearer"),
            ));
        }
        match &token {
            Some(t) => bearer_token = Some(t.clone()),
            None => return Err(input.error("token", "is required when authMode is bearer")),
        }
    }

    let mode = if use_cluster_agent {
        let service = metrics_service.ok_or_else(|| {
            input.error(
                "datadogMetricsService",
                "datadog metrics service is required (TriggerAuthentication)",
            )
        })?;
        let metric_name = metric_name
            .ok_or_else(|| input.error("datadogMetricName", "datadog metric name is required"))?;
        let service_namespace = datadog_namespace.ok_or_else(|| {
            input.error(
                "datadogNamespace",
                "datadog namespace is required (TriggerAuthentication)",
            )
        })?;
        let metric_namespace = metric_namespace.ok_or_else(|| {
            input.error(
                "datadogMetricNamespace",
                "datadog metric namespace is required",
            )
        })?;
        check_target_and_type(input, target_value)?;
        Mode::ClusterAgent(ClusterAgentMode {
            service,
            service_namespace,
            port,
            metric_namespace,
            metric_name,
            activation_target_value,
            unsafe_ssl,
            bearer_token,
        })
    } else {
        // Upstream only logs an `age` under 60: Datadog may have no point in a shorter window.
        let app_key =
            app_key.ok_or_else(|| input.error("appKey", "is required (TriggerAuthentication)"))?;
        let api_key =
            api_key.ok_or_else(|| input.error("apiKey", "is required (TriggerAuthentication)"))?;
        check_target_and_type(input, target_value)?;
        let query = query.ok_or_else(|| input.error("query", "is required"))?;
        if !query.contains('{') {
            return Err(input.error("query", "must contain '{' character"));
        }
        Mode::Api(ApiMode {
            query,
            aggregator,
            activation_query_value,
            age,
            time_window_offset,
            last_available_point_offset,
            api_key,
            app_key,
            site,
        })
    };
    let metric_name = match &mode {
        Mode::Api(api) => {
            let head = api.query.split('{').next().unwrap_or_default();
            crate::external_metric_name(input.index, &format!("datadog-{head}"))
        }
        Mode::ClusterAgent(ca) => {
            format!("datadogmetric@{}:{}", ca.metric_namespace, ca.metric_name)
        }
    };
    Ok(DatadogConfig {
        index: input.index,
        metric_name,
        target_value,
        metric_type,
        fill_value,
        timeout,
        mode,
    })
}

/// Upstream's `.*\{.*\}.*` on a query: some line has a `{` followed by a `}`.
fn has_scope(query: &str) -> bool {
    query
        .lines()
        .any(|l| l.find('{').is_some_and(|i| l[i..].contains('}')))
}

/// The required target and the deprecated metadata `type`, checked in upstream's order.
fn check_target_and_type(input: &TriggerInput<'_>, target_value: f64) -> Result<(), ScalerError> {
    if target_value == -1.0 {
        return Err(input.error("targetValue", "no targetValue or queryValue given"));
    }
    if let Some(t) = input.metadata.get("type") {
        if input.metric_type.is_some_and(|m| !m.trim().is_empty()) {
            return Err(input.error(
                "type",
                "only one of trigger.metadata.type or trigger.metricType should be defined",
            ));
        }
        if !matches!(t.to_lowercase().as_str(), "average" | "global") {
            return Err(input.error("type", "has to be global or average"));
        }
    }
    Ok(())
}

impl DatadogConfig {
    fn config_error(&self, field: &str, reason: String) -> ScalerError {
        ScalerError::Config {
            trigger: self.trigger(),
            field: field.to_owned(),
            reason,
        }
    }
}

impl ApiMode {
    /// `https://api.<site>`.
    pub fn base_url(&self) -> String {
        format!("https://api.{}", self.site)
    }
}

impl ClusterAgentMode {
    /// The Cluster Agent's external metrics API root, on the service's (not the metric's) namespace.
    pub fn service_url(&self) -> String {
        format!(
            "https://{}.{}:{}/apis/external.metrics.k8s.io/v1beta1",
            self.service, self.service_namespace, self.port
        )
    }

    /// The metric's URL: `<service_url>/namespaces/<metric namespace>/<external metric name>`.
    pub fn metric_url(&self, external_metric_name: &str) -> String {
        format!(
            "{}/namespaces/{}/{}",
            self.service_url(),
            self.metric_namespace,
            external_metric_name
        )
    }
}

#[async_trait::async_trait]
impl TriggerConfig for DatadogConfig {
    fn metric_spec(&self) -> MetricSpec {
        MetricSpec::External {
            metric_name: self.metric_name.clone(),
            target_type: self.metric_type,
            target: self.target_value,
        }
    }

    fn trigger(&self) -> TriggerRef {
        TriggerRef {
            index: self.index,
            trigger_type: TRIGGER_TYPE.into(),
        }
    }

    /// Upstream uses the trigger's `timeout` (else `KEDA_HTTP_DEFAULT_TIMEOUT`) in both modes.
    fn timeouts(&self, defaults: &TimeoutDefaults) -> ScalerTimeouts {
        ScalerTimeouts::http(self.timeout.unwrap_or(defaults.http))
    }

    async fn build(&self, ctx: &BuildContext) -> Result<Arc<dyn Scaler>, ScalerError> {
        let (url, unsafe_ssl) = match &self.mode {
            Mode::Api(api) => {
                if !DATADOG_SITES.contains(&api.site.as_str()) {
                    return Err(self.config_error(
                        "datadogSite",
                        format!("{:?} must be one of {}", api.site, DATADOG_SITES.join(", ")),
                    ));
                }
                (format!("{}/api/v1/query", api.base_url()), false)
            }
            Mode::ClusterAgent(ca) => (ca.metric_url(&self.metric_name), ca.unsafe_ssl),
        };
        if let Err(e) = reqwest::Url::parse(&url) {
            let field = match self.mode {
                Mode::Api(_) => "datadogSite",
                Mode::ClusterAgent(_) => "datadogMetricsService",
            };
            return Err(self.config_error(field, format!("{url:?} is not a valid URL: {e}")));
        }
        let timeout = self.timeout.unwrap_or(ctx.timeouts.http);
        let key = ClientKey {
            timeout,
            unsafe_ssl,
            ca: None,
            cert_and_key: None,
        };
        let client = ctx.http.get(&key).map_err(|message| ScalerError::Backend {
            trigger: self.trigger(),
            action: "building the HTTP client",
            message,
        })?;
        Ok(Arc::new(DatadogScaler {
            config: self.clone(),
            url,
            client,
            timeout,
        }))
    }
}

struct DatadogScaler {
    config: DatadogConfig,
    url: String,
    client: Arc<reqwest::Client>,
    /// The client's timeout, for error messages.
    timeout: Duration,
}

#[async_trait::async_trait]
impl Scaler for DatadogScaler {
    async fn sample(&self) -> Result<Sample, ScalerError> {
        let c = &self.config;
        let backend = |action: &'static str, message: String| ScalerError::Backend {
            trigger: c.trigger(),
            action,
            message,
        };
        match &c.mode {
            Mode::Api(api) => {
                let to = chrono::Utc::now().timestamp() - api.time_window_offset;
                let from = to - api.age;
                let resp = self
                    .client
                    .get(&self.url)
                    .query(&[
                        ("from", from.to_string()),
                        ("to", to.to_string()),
                        ("query", api.query.clone()),
                    ])
                    .header(reqwest::header::ACCEPT, "application/json")
                    .header("DD-API-KEY", &api.api_key)
                    .header("DD-APPLICATION-KEY", &api.app_key)
                    .observed_send()
                    .await
                    .map_err(|e| {
                        let what = if e.is_timeout() {
                            format!(
                                "KEDA reached a network timeout (HTTP client timeout: {:?}): {e}",
                                self.timeout
                            )
                        } else {
                            e.to_string()
                        };
                        backend("querying the Datadog API", what)
                    })?;
                let status = resp.status().as_u16();
                let header = |name: &str| {
                    resp.headers()
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_owned()
                };
                let rate_limit = [
                    header("X-Ratelimit-Limit"),
                    header("X-Ratelimit-Period"),
                    header("X-Ratelimit-Reset"),
                ];
                let body = resp
                    .bytes()
                    .await
                    .map_err(|e| backend("reading the Datadog API response", e.to_string()))?;
                let value = api_value(status, &rate_limit, &body, api, c.fill_value)
                    .map_err(|m| backend("reading Datadog metrics", m))?;
                Ok(Sample {
                    value,
                    active: crate::is_active(value, api.activation_query_value),
                })
            }
            Mode::ClusterAgent(ca) => {
                let mut req = self.client.get(&self.url);
                if let Some(token) = &ca.bearer_token {
                    req = req.bearer_auth(token);
                }
                let resp = req.observed_send().await.map_err(|e| {
                    backend(
                        "requesting the Datadog Cluster Agent",
                        format!("{}: {e}", self.url),
                    )
                })?;
                let status = resp.status().as_u16();
                let body = resp
                    .text()
                    .await
                    .map_err(|e| backend("reading the Cluster Agent response", e.to_string()))?;
                let value = cluster_agent_value(status, &body, c.fill_value)
                    .map_err(|m| backend("getting the metric value", m))?;
                Ok(Sample {
                    value,
                    active: crate::is_active(value, ca.activation_target_value),
                })
            }
        }
    }
}

/// The value of a `/api/v1/query` answer, as upstream computes it. `rate_limit` holds the
/// `X-Ratelimit-{Limit,Period,Reset}` headers.
pub fn api_value(
    status: u16,
    rate_limit: &[String; 3],
    body: &[u8],
    api: &ApiMode,
    fill_value: Option<f64>,
) -> Result<f64, String> {
    if let (422, Some(v)) = (status, fill_value) {
        return Ok(v);
    }
    match status {
        200 => {}
        403 => {
            return Err("unauthorized to connect to Datadog. Check that your Datadog API and App keys are correct and that your App key has the correct permissions".into());
        }
        429 => {
            let [limit, period, reset] = rate_limit;
            return Err(format!(
                "your Datadog account reached the {limit} queries per {period} seconds rate limit, next limit reset will happen in {reset} seconds"
            ));
        }
        other => {
            let text = String::from_utf8_lossy(&body[..body.len().min(200)]);
            return Err(format!(
                "error when retrieving Datadog metrics: {other}: {text}"
            ));
        }
    }
    let doc: Value = serde_json::from_slice(body)
        .map_err(|e| format!("error when retrieving Datadog metrics: invalid JSON: {e}"))?;
    if doc.get("status").and_then(Value::as_str) == Some("error") {
        return Err(match doc.get("error").and_then(Value::as_str) {
            Some(msg) => format!("error when retrieving Datadog metrics: {msg}"),
            None => "error when retrieving Datadog metrics".into(),
        });
    }
    let series = match doc.get("series") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(s)) => s.iter().collect(),
        Some(_) => return Err("series must be a list".into()),
    };
    let unavailable = || match fill_value {
        Some(v) => Ok(v),
        None => Err("no Datadog metrics returned for the given time window".to_owned()),
    };
    if series.is_empty() {
        return unavailable();
    }
    if series.len() > 1 && api.aggregator.is_none() {
        return Err("query returned more than 1 series; modify the query to return only 1 series or add a queryAggregator".into());
    }
    let mut results = Vec::with_capacity(series.len());
    for s in series {
        let points: Vec<Vec<Option<f64>>> = match s.get("pointlist") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(p)) => p
                .iter()
                .map(|pt| match pt {
                    Value::Array(xs) => Ok(xs.iter().map(Value::as_f64).collect()),
                    Value::Null => Ok(Vec::new()),
                    _ => Err("pointlist entries must be [timestamp, value] lists".to_owned()),
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err("pointlist must be a list".into()),
        };
        let value_of = |p: &Vec<Option<f64>>| p.get(1).copied().flatten();
        // The last point with a value; with none, the last point.
        let mut index = points.len() as i64 - 1;
        if let Some(j) = points.iter().rposition(|p| value_of(p).is_some()) {
            index = j as i64;
        }
        if index < api.last_available_point_offset {
            return Err("index is smaller than the lastAvailablePointOffset".into());
        }
        index -= api.last_available_point_offset;
        match usize::try_from(index)
            .ok()
            .and_then(|i| points.get(i))
            .and_then(value_of)
        {
            Some(v) => results.push(v),
            None => return unavailable(),
        }
    }
    Ok(match api.aggregator {
        Some(Aggregator::Average) => results.iter().sum::<f64>() / results.len() as f64,
        _ => results.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    })
}

/// The value of an `ExternalMetricValueList` from the Cluster Agent (`items[0].value`, a number or a
/// Quantity string). A 422 reads as `fill_value` when one is set.
pub fn cluster_agent_value(
    status: u16,
    body: &str,
    fill_value: Option<f64>,
) -> Result<f64, String> {
    let valid = gjson::valid(body);
    if status != 200 {
        let message = if valid {
            let m = gjson::get(body, "message");
            if m.kind() == gjson::Kind::String {
                m.str().to_owned()
            } else {
                String::new()
            }
        } else {
            String::new()
        };
        if status == 422
            && let Some(v) = fill_value
        {
            return Ok(v);
        }
        if message.is_empty() {
            return Err(format!("unexpected status code {status}"));
        }
        return Err(format!("status {status}: {message}"));
    }
    if !valid {
        return Err("the Cluster Agent's response is not valid JSON".into());
    }
    let r = gjson::get(body, "items.0.value");
    match r.kind() {
        gjson::Kind::Number => Ok(r.f64()),
        gjson::Kind::String => crate::quantity::value(r.str()).ok_or_else(|| {
            format!(
                "the metric value must be of type number or a string representing a Quantity got: '{}'",
                r.str()
            )
        }),
        _ => Err("the metric value must be of type number or a string representing a Quantity".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(aggregator: Option<Aggregator>, offset: i64) -> ApiMode {
        ApiMode {
            query: "avg:x{*}".into(),
            aggregator,
            activation_query_value: 0.0,
            age: 90,
            time_window_offset: 0,
            last_available_point_offset: offset,
            api_key: "k".into(),
            app_key: "a".into(),
            site: "datadoghq.com".into(),
        }
    }

    fn no_limits() -> [String; 3] {
        Default::default()
    }

    #[test]
    fn scopes() {
        for ok in [
            "avg:system.cpu.user{*}.rollup(sum, 30)",
            "top(per_second(abs(sum:http.requests{service:myapp,dc:us-west-2}.rollup(max, 2))), 5, 'mean', 'desc')",
            "sum:trace.express.request.hits{*}.as_rate()/avg:kubernetes.cpu.requests{*}.rollup(10)",
        ] {
            assert!(has_scope(ok), "{ok}");
        }
        for bad in ["", "min:system.cpu.user", "a}{", "a{\n}"] {
            assert!(!has_scope(bad), "{bad}");
        }
    }

    #[test]
    fn api_points() {
        let body = br#"{"status":"ok","series":[{"pointlist":[[1,1.0],[2,2.0],[3,null]]},{"pointlist":[[1,5.0],[2,6.0]]}]}"#;
        let lim = no_limits();
        assert!(api_value(200, &lim, body, &api(None, 0), None).is_err());
        assert_eq!(
            api_value(200, &lim, body, &api(Some(Aggregator::Max), 0), None),
            Ok(6.0)
        );
        assert_eq!(
            api_value(200, &lim, body, &api(Some(Aggregator::Average), 0), None),
            Ok(4.0)
        );
        assert_eq!(
            api_value(200, &lim, body, &api(Some(Aggregator::Average), 1), None),
            Ok(3.0)
        );
        assert!(api_value(200, &lim, body, &api(Some(Aggregator::Max), 2), None).is_err());
        let empty = br#"{"status":"ok","series":[]}"#;
        assert!(api_value(200, &lim, empty, &api(None, 0), None).is_err());
        assert_eq!(
            api_value(200, &lim, empty, &api(None, 0), Some(1.5)),
            Ok(1.5)
        );
        let nulls = br#"{"series":[{"pointlist":[[1,null]]}]}"#;
        assert_eq!(
            api_value(200, &lim, nulls, &api(None, 0), Some(2.0)),
            Ok(2.0)
        );
        assert_eq!(
            api_value(422, &lim, b"{}", &api(None, 0), Some(7.0)),
            Ok(7.0)
        );
        assert!(api_value(422, &lim, b"{}", &api(None, 0), None).is_err());
        assert!(
            api_value(403, &lim, b"{}", &api(None, 0), Some(1.0))
                .unwrap_err()
                .contains("unauthorized")
        );
        let limits = ["300".to_owned(), "3600".to_owned(), "12".to_owned()];
        assert_eq!(
            api_value(429, &limits, b"{}", &api(None, 0), None),
            Err("your Datadog account reached the 300 queries per 3600 seconds rate limit, next limit reset will happen in 12 seconds".into())
        );
        let err = br#"{"status":"error","error":"bad query"}"#;
        assert_eq!(
            api_value(200, &lim, err, &api(None, 0), None),
            Err("error when retrieving Datadog metrics: bad query".into())
        );
    }

    #[test]
    fn cluster_agent_values() {
        let list = |v: &str| {
            format!(
                r#"{{"kind":"ExternalMetricValueList","apiVersion":"external.metrics.k8s.io/v1beta1","metadata":{{}},"items":[{{"metricName":"m","metricLabels":null,"timestamp":"2024-01-01T00:00:00Z","value":{v}}}]}}"#
            )
        };
        assert_eq!(cluster_agent_value(200, &list("\"2500m\""), None), Ok(2.5));
        assert_eq!(cluster_agent_value(200, &list("12"), None), Ok(12.0));
        assert!(cluster_agent_value(200, &list("\"abc\""), None).is_err());
        assert_eq!(
            cluster_agent_value(422, r#"{"message":"not ready"}"#, Some(3.0)),
            Ok(3.0)
        );
        assert_eq!(
            cluster_agent_value(422, r#"{"message":"not ready"}"#, None),
            Err("status 422: not ready".into())
        );
        assert_eq!(
            cluster_agent_value(500, "oops", None),
            Err("unexpected status code 500".into())
        );
    }
}
