//! The scaler: the HTTP client the build picks (per timeout and TLS setting) and one request per sample.

use std::sync::Arc;
use std::time::Duration;

use super::config::{DatadogConfig, Mode};
use super::request::{api_query, cluster_agent_metric};
use super::response::{api_value, cluster_agent_value, rate_limit};
use super::{DATADOG_SITES, TRIGGER_TYPE};
use crate::http::{ClientKey, ObservedSend};
use crate::{
    BuildContext, MetricSpec, Sample, Scaler, ScalerError, ScalerTimeouts, TimeoutDefaults,
    TriggerConfig, TriggerRef,
};

impl DatadogConfig {
    fn config_error(&self, field: &str, reason: String) -> ScalerError {
        ScalerError::Config {
            trigger: self.trigger(),
            field: field.to_owned(),
            reason,
        }
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

    /// `activationQueryValue` (API) or `activationTargetValue` (Cluster Agent), as [`Scaler::sample`]
    /// compares them.
    fn activation_threshold(&self) -> Option<f64> {
        Some(match &self.mode {
            Mode::Api(api) => api.activation_query_value,
            Mode::ClusterAgent(ca) => ca.activation_target_value,
        })
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
                (api.query_url(), false)
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
                let resp = api_query(&self.client, &self.url, api, chrono::Utc::now().timestamp())
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
                let rate_limit = rate_limit(resp.headers());
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
                let resp = cluster_agent_metric(&self.client, &self.url, ca)
                    .observed_send()
                    .await
                    .map_err(|e| {
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
