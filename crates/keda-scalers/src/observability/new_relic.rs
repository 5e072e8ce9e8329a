//! `new-relic`: the first numeric value of the first row of an NRQL query, run through NerdGraph
//! (`POST https://api.newrelic.com/graphql`, or the region's endpoint) with a user API key.
//!
//! Like upstream's client (newrelic-client-go), the NRQL and the account go in GraphQL variables, an
//! unknown region falls back to US, and the `NEW_RELIC_NERDGRAPH_BASE_URL` environment variable of the
//! operator overrides the endpoint. Upstream iterates a Go map to find "the first" numeric field, which
//! picks an arbitrary one when a row has several; keda-rs takes the first in the response's order.

use std::sync::Arc;
use std::time::Duration;

use crate::http::{ClientKey, ObservedSend};
use crate::input::METADATA;
use crate::{
    BuildContext, MetricSpec, MetricTargetType, Sample, Scaler, ScalerError, ScalerTimeouts,
    Source, TimeoutDefaults, TriggerConfig, TriggerInput, TriggerRef,
};

pub const TRIGGER_TYPE: &str = "new-relic";

/// The NerdGraph document sent for every poll; the NRQL and account are its variables.
pub const NRQL_QUERY_DOCUMENT: &str = "query ($accountId: Int!, $query: Nrql!) { actor { account(id: $accountId) { nrql(query: $query) { results } } } }";

/// newrelic-client-go's HTTP timeout. Upstream's New Relic scaler has no `timeout` parameter and does not
/// pass `KEDA_HTTP_DEFAULT_TIMEOUT` to its client, so this is its bound whatever the operator's default.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);

/// Upstream's client reads this to replace the region's NerdGraph URL.
pub const NERDGRAPH_URL_ENV: &str = "NEW_RELIC_NERDGRAPH_BASE_URL";

const AUTH_THEN_METADATA: &[Source] = &[Source::AuthParams, Source::Metadata];

#[derive(Clone, Debug, PartialEq)]
pub struct NewRelicConfig {
    pub index: usize,
    pub account: i64,
    /// As written (default `US`); see [`NewRelicConfig::nerdgraph_url`].
    pub region: String,
    pub query_key: String,
    /// No rows, or no numeric value in the first row, is an error instead of 0.
    pub no_data_error: bool,
    pub nrql: String,
    pub threshold: f64,
    pub activation_threshold: f64,
    pub metric_type: MetricTargetType,
}

pub fn parse(input: &TriggerInput<'_>) -> Result<Box<dyn TriggerConfig>, ScalerError> {
    Ok(Box::new(parse_config(input)?))
}

pub fn parse_config(input: &TriggerInput<'_>) -> Result<NewRelicConfig, ScalerError> {
    let metric_type = input.external_metric_type()?;
    let account: i64 = input
        .field("account")
        .order(AUTH_THEN_METADATA)
        .required()?;
    let region: String = input
        .field("region")
        .order(AUTH_THEN_METADATA)
        .default("US")
        .required()?;
    let query_key: String = input
        .field("queryKey")
        .order(AUTH_THEN_METADATA)
        .required()?;
    let no_data_error: bool = input
        .field("noDataError")
        .order(METADATA)
        .default("false")
        .required()?;
    let nrql: String = input.field("nrql").order(METADATA).required()?;
    let threshold: f64 = input.field("threshold").order(METADATA).required()?;
    let activation_threshold: f64 = input
        .field("activationThreshold")
        .order(METADATA)
        .default("0")
        .required()?;
    Ok(NewRelicConfig {
        index: input.index,
        account,
        region,
        query_key,
        no_data_error,
        nrql,
        threshold,
        activation_threshold,
        metric_type,
    })
}

/// NerdGraph endpoint of a region, matched case-insensitively as newrelic-client-go does (`gov` and
/// `fedramp` are the same region); anything else is US.
pub fn region_url(region: &str) -> &'static str {
    match region.to_ascii_lowercase().as_str() {
        "eu" => "https://api.eu.newrelic.com/graphql",
        "jp" => "https://api.jp.newrelic.com/graphql",
        "gov" | "fedramp" => "https://gov-api.newrelic.com/graphql",
        "staging" => "https://staging-api.newrelic.com/graphql",
        "local" => "http://localhost:3000/graphql",
        _ => "https://api.newrelic.com/graphql",
    }
}

impl NewRelicConfig {
    /// The endpoint polled: the operator's `NEW_RELIC_NERDGRAPH_BASE_URL` when set, else the region's.
    pub fn nerdgraph_url(&self) -> String {
        match std::env::var(NERDGRAPH_URL_ENV) {
            Ok(url) if !url.trim().is_empty() => url.trim().to_owned(),
            _ => region_url(&self.region).to_owned(),
        }
    }

    /// The JSON body of the NerdGraph request.
    pub fn request_body(&self) -> serde_json::Value {
        serde_json::json!({
            "query": NRQL_QUERY_DOCUMENT,
            "variables": { "accountId": self.account, "query": self.nrql },
        })
    }
}

#[async_trait::async_trait]
impl TriggerConfig for NewRelicConfig {
    fn metric_spec(&self) -> MetricSpec {
        MetricSpec::External {
            metric_name: crate::external_metric_name(self.index, TRIGGER_TYPE),
            target_type: self.metric_type,
            target: self.threshold,
        }
    }

    fn activation_threshold(&self) -> Option<f64> {
        Some(self.activation_threshold)
    }

    fn trigger(&self) -> TriggerRef {
        TriggerRef {
            index: self.index,
            trigger_type: TRIGGER_TYPE.into(),
        }
    }

    fn timeouts(&self, _defaults: &TimeoutDefaults) -> ScalerTimeouts {
        ScalerTimeouts::http(CLIENT_TIMEOUT)
    }

    async fn build(&self, ctx: &BuildContext) -> Result<Arc<dyn Scaler>, ScalerError> {
        let key = ClientKey {
            timeout: CLIENT_TIMEOUT,
            unsafe_ssl: false,
            ca: None,
            cert_and_key: None,
        };
        let client = ctx.http.get(&key).map_err(|message| ScalerError::Backend {
            trigger: self.trigger(),
            action: "building the HTTP client",
            message,
        })?;
        let url = self.nerdgraph_url();
        if reqwest::Url::parse(&url).is_err() {
            return Err(ScalerError::Config {
                trigger: self.trigger(),
                field: "region".into(),
                reason: format!("NerdGraph URL {url:?} is not a valid URL"),
            });
        }
        Ok(Arc::new(NewRelicScaler {
            body: self.request_body().to_string(),
            url,
            config: self.clone(),
            client,
        }))
    }
}

struct NewRelicScaler {
    config: NewRelicConfig,
    url: String,
    body: String,
    client: Arc<reqwest::Client>,
}

#[async_trait::async_trait]
impl Scaler for NewRelicScaler {
    async fn sample(&self) -> Result<Sample, ScalerError> {
        let c = &self.config;
        let backend = |action: &'static str, message: String| ScalerError::Backend {
            trigger: c.trigger(),
            action,
            message,
        };
        let resp = self
            .client
            .post(&self.url)
            .header("API-Key", &c.query_key)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(reqwest::header::ACCEPT, "application/json")
            .body(self.body.clone())
            .observed_send()
            .await
            .map_err(|e| backend("querying NerdGraph", format!("{}: {e}", self.url)))?;
        let status = resp.status();
        let body = resp
            .text()
            .await
            .map_err(|e| backend("reading the NerdGraph response", e.to_string()))?;
        let value = value_from_response(status.as_u16(), &body, &c.nrql, c.no_data_error)
            .map_err(|m| backend("running NRQL", m))?;
        Ok(Sample {
            value,
            active: crate::is_active(value, c.activation_threshold),
        })
    }
}

/// The metric value of a NerdGraph answer: HTTP or GraphQL errors fail; otherwise the first numeric field
/// of the first row, or 0 (an error with `no_data_error`) when there is none.
pub fn value_from_response(
    status: u16,
    body: &str,
    nrql: &str,
    no_data_error: bool,
) -> Result<f64, String> {
    let valid = gjson::valid(body);
    let messages = if valid {
        graphql_errors(body)
    } else {
        Vec::new()
    };
    if !(200..300).contains(&status) {
        let detail = if messages.is_empty() {
            body.chars().take(200).collect::<String>()
        } else {
            messages.join(", ")
        };
        return Err(match status {
            401 => format!("unauthorized (check the queryKey): {detail}"),
            _ => format!("NerdGraph answered {status}: {detail}"),
        });
    }
    if !valid {
        return Err("NerdGraph response is not valid JSON".into());
    }
    if !messages.is_empty() {
        return Err(format!(
            "error running NRQL {nrql}: {}",
            messages.join(", ")
        ));
    }
    let results = gjson::get(body, "data.actor.account.nrql.results");
    let rows = results.array();
    let Some(first) = rows.first() else {
        return if no_data_error {
            Err(format!("query returned no results: {nrql}"))
        } else {
            Ok(0.0)
        };
    };
    let mut found = None;
    first.each(|_, v| {
        if v.kind() == gjson::Kind::Number {
            found = Some(v.f64());
            false
        } else {
            true
        }
    });
    match found {
        Some(v) => Ok(v),
        None if no_data_error => Err(format!("query returned no numeric results: {nrql}")),
        None => Ok(0.0),
    }
}

/// GraphQL `errors[].message`, minus the deprecation warnings upstream's client ignores.
fn graphql_errors(body: &str) -> Vec<String> {
    let messages: Vec<String> = gjson::get(body, "errors")
        .array()
        .iter()
        .map(|e| e.get("message").str().to_owned())
        .filter(|m| !m.is_empty())
        .collect();
    if !messages.is_empty()
        && messages
            .iter()
            .all(|m| m.starts_with("This field is deprecated!"))
    {
        return Vec::new();
    }
    messages
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_like_the_client() {
        assert_eq!(region_url("US"), "https://api.newrelic.com/graphql");
        assert_eq!(region_url("eu"), "https://api.eu.newrelic.com/graphql");
        assert_eq!(region_url("EU"), "https://api.eu.newrelic.com/graphql");
        assert_eq!(
            region_url("FedRAMP"),
            "https://gov-api.newrelic.com/graphql"
        );
        assert_eq!(region_url("mars"), "https://api.newrelic.com/graphql");
    }

    #[test]
    fn answers() {
        let ok = |rows: &str| {
            format!(r#"{{"data":{{"actor":{{"account":{{"nrql":{{"results":{rows}}}}}}}}}}}"#)
        };
        assert_eq!(
            value_from_response(200, &ok(r#"[{"facet":"a","z":3.5,"a":1}]"#), "q", true),
            Ok(3.5)
        );
        assert_eq!(value_from_response(200, &ok("[]"), "q", false), Ok(0.0));
        assert!(value_from_response(200, &ok("[]"), "q", true).is_err());
        assert_eq!(
            value_from_response(200, &ok(r#"[{"s":"x"}]"#), "q", false),
            Ok(0.0)
        );
        assert_eq!(
            value_from_response(200, &ok(r#"[{"s":"x"}]"#), "q", true),
            Err("query returned no numeric results: q".into())
        );
        let err = value_from_response(
            200,
            r#"{"data":null,"errors":[{"message":"NRQL Syntax Error"}]}"#,
            "q",
            false,
        )
        .unwrap_err();
        assert!(err.contains("NRQL Syntax Error"), "{err}");
        let err = value_from_response(
            401,
            r#"{"errors":[{"message":"Invalid API key"}]}"#,
            "q",
            false,
        )
        .unwrap_err();
        assert!(err.contains("Invalid API key"), "{err}");
        assert!(value_from_response(502, "bad gateway", "q", false).is_err());
    }
}
