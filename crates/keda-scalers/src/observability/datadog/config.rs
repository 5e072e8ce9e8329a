//! The trigger's settings: every parameter read and type-checked in both modes, then upstream's checks.

use std::time::Duration;

use crate::input::{AUTH, METADATA};
use crate::{MetricTargetType, ScalerError, TriggerConfig, TriggerInput};

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
