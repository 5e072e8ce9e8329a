//! `prometheus`: the value of one PromQL instant query (`GET <serverAddress>/api/v1/query`).
//!
//! Authentication: `authModes` bearer, basic, tls (client certificate, with `ca`) and custom header, as
//! upstream. Upstream also parses `apiKey` and `oauth` for this scaler but never sends them; keda-rs accepts
//! `apiKey` the same way and rejects `oauth` (see `http::parse_auth`). Cloud identities (Azure Monitor
//! workspaces, Google Managed Prometheus credentials, Amazon Managed Prometheus SigV4) are not supported
//! yet: their credentials are rejected at parse time with an error naming the parameter.

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;

use crate::http::{ClientKey, HttpAuth, ObservedSend, parse_auth, parse_key_values};
use crate::input::{METADATA, METADATA_AUTH};
use crate::{
    BuildContext, EmptyUpstreamResponse, MetricSpec, MetricTargetType, Sample, SampleReport,
    Scaler, ScalerError, ScalerTimeouts, TimeoutDefaults, TriggerConfig, TriggerInput, TriggerRef,
};

pub const TRIGGER_TYPE: &str = "prometheus";

#[derive(Clone, Debug, PartialEq)]
pub struct PrometheusConfig {
    pub index: usize,
    pub server_address: String,
    pub query: String,
    /// Extra URL query parameters, in the order written.
    pub query_parameters: Vec<(String, String)>,
    pub threshold: f64,
    pub activation_threshold: f64,
    /// Sent as the `namespace` query parameter (Thanos Querier / prom-label-proxy tenancy).
    pub namespace: Option<String>,
    pub custom_headers: Vec<(String, String)>,
    /// An empty result, an empty value, NaN or ±Inf read as 0 instead of an error.
    pub ignore_null_values: bool,
    pub unsafe_ssl: bool,
    /// The HTTP client timeout; `None` (absent or 0): `KEDA_HTTP_DEFAULT_TIMEOUT`.
    pub timeout: Option<Duration>,
    pub aws_region: Option<String>,
    pub identity_owner: Option<String>,
    pub auth: HttpAuth,
    pub metric_type: MetricTargetType,
}

pub fn parse(input: &TriggerInput<'_>) -> Result<Box<dyn TriggerConfig>, ScalerError> {
    Ok(Box::new(parse_config(input)?))
}

pub fn parse_config(input: &TriggerInput<'_>) -> Result<PrometheusConfig, ScalerError> {
    let metric_type = input.external_metric_type()?;
    let auth = parse_auth(input)?;
    let server_address: String = input.field("serverAddress").order(METADATA).required()?;
    let query: String = input.field("query").order(METADATA).required()?;
    let query_parameters = parse_key_values(input, "queryParameters")?;
    let threshold: f64 = input.field("threshold").order(METADATA).required()?;
    let activation_threshold: f64 = input
        .field("activationThreshold")
        .order(METADATA)
        .default("0")
        .required()?;
    let namespace: Option<String> = input.field("namespace").order(METADATA).optional()?;
    let custom_headers = parse_key_values(input, "customHeaders")?;
    let ignore_null_values: bool = input
        .field("ignoreNullValues")
        .order(METADATA)
        .default("true")
        .required()?;
    let unsafe_ssl: bool = input
        .field("unsafeSsl")
        .order(METADATA)
        .default("false")
        .required()?;
    let aws_region: Option<String> = input.field("awsRegion").order(METADATA_AUTH).optional()?;
    // Upstream: zero means "use the global default".
    let timeout = input
        .field("timeout")
        .order(METADATA)
        .optional::<Duration>()?
        .filter(|t| !t.is_zero());
    let identity_owner: Option<String> = input.field("identityOwner").order(METADATA).optional()?;
    if !auth_enabled(&auth) {
        reject_cloud_credentials(input)?;
    }
    Ok(PrometheusConfig {
        index: input.index,
        server_address,
        query,
        query_parameters,
        threshold,
        activation_threshold,
        namespace,
        custom_headers,
        ignore_null_values,
        unsafe_ssl,
        timeout,
        aws_region,
        identity_owner,
        auth,
        metric_type,
    })
}

/// Upstream's `PrometheusAuth.Disabled()`: no `authModes` given (`ca` alone does not count).
fn auth_enabled(auth: &HttpAuth) -> bool {
    auth.api_key.is_some()
        || auth.basic.is_some()
        || auth.bearer.is_some()
        || auth.tls.is_some()
        || auth.custom.is_some()
}

/// Without `authModes`, upstream switches to Google or AWS request signing when their credentials are
/// present. keda-rs does not implement those transports yet, so it refuses rather than send unsigned queries.
fn reject_cloud_credentials(input: &TriggerInput<'_>) -> Result<(), ScalerError> {
    let present = |map: &std::collections::BTreeMap<String, String>, key: &str| {
        map.get(key).is_some_and(|v| !v.trim().is_empty())
    };
    for key in ["credentialsFromEnv", "credentialsFromEnvFile"] {
        if present(input.metadata, key) {
            return Err(input.error(
                key,
                "Google Managed Prometheus authentication is not supported by keda-rs yet",
            ));
        }
    }
    if present(input.auth_params, "GoogleApplicationCredentials") {
        return Err(input.error(
            "GoogleApplicationCredentials",
            "Google Managed Prometheus authentication is not supported by keda-rs yet",
        ));
    }
    for key in ["awsRoleArn", "awsAccessKeyID", "awsAccessKeyId"] {
        if present(input.auth_params, key) {
            return Err(input.error(
                key,
                "Amazon Managed Prometheus (SigV4) authentication is not supported by keda-rs yet",
            ));
        }
    }
    Ok(())
}

impl PrometheusConfig {
    fn config_error(&self, field: &str, reason: String) -> ScalerError {
        ScalerError::Config {
            trigger: self.trigger(),
            field: field.to_owned(),
            reason,
        }
    }

    /// The instant-query URL at `time` (RFC 3339, UTC), built like upstream: `query` then `time`, then
    /// `namespace` (as written), then the extra parameters, each escaped like Go's `url.QueryEscape`.
    pub fn query_url(&self, time: &str) -> String {
        let mut url = format!(
            "{}/api/v1/query?query={}&time={}",
            self.server_address,
            query_escape(&self.query),
            time
        );
        if let Some(ns) = &self.namespace {
            url.push_str("&namespace=");
            url.push_str(ns);
        }
        for (k, v) in &self.query_parameters {
            url.push('&');
            url.push_str(&query_escape(k));
            url.push('=');
            url.push_str(&query_escape(v));
        }
        url
    }

    /// Custom headers first, then the one credential header upstream sends (bearer, else basic, else
    /// custom), replacing a custom header of the same name.
    fn headers(&self) -> Result<HeaderMap, ScalerError> {
        let mut headers = HeaderMap::new();
        for (name, value) in &self.custom_headers {
            let (n, v) = header(name, value)
                .map_err(|why| self.config_error("customHeaders", format!("{name:?}: {why}")))?;
            headers.append(n, v);
        }
        let auth = &self.auth;
        let credential = if let Some(token) = &auth.bearer {
            Some((AUTHORIZATION, format!("Bearer {token}"), "bearerToken"))
        } else if let Some((user, pass)) = &auth.basic {
            Some((AUTHORIZATION, basic_auth(user, pass), "username"))
        } else if let Some((name, value)) = &auth.custom {
            let n = HeaderName::from_bytes(name.as_bytes()).map_err(|e| {
                self.config_error(
                    "customAuthHeader",
                    format!("{name:?} is not a header name: {e}"),
                )
            })?;
            Some((n, value.clone(), "customAuthValue"))
        } else {
            None
        };
        if let Some((name, value, field)) = credential {
            let mut v = HeaderValue::from_str(&value).map_err(|e| {
                self.config_error(field, format!("is not a valid header value: {e}"))
            })?;
            v.set_sensitive(true);
            headers.insert(name, v);
        }
        Ok(headers)
    }
}

fn header(name: &str, value: &str) -> Result<(HeaderName, HeaderValue), String> {
    let n = HeaderName::from_bytes(name.as_bytes()).map_err(|e| format!("bad header name: {e}"))?;
    let v = HeaderValue::from_str(value).map_err(|e| format!("bad header value: {e}"))?;
    Ok((n, v))
}

fn basic_auth(user: &str, pass: &str) -> String {
    format!("Basic {}", base64(format!("{user}:{pass}").as_bytes()))
}

/// Standard base64 with padding (RFC 4648), for the basic-auth header.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
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

#[async_trait::async_trait]
impl TriggerConfig for PrometheusConfig {
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

    fn timeouts(&self, defaults: &TimeoutDefaults) -> ScalerTimeouts {
        ScalerTimeouts::http(self.timeout.unwrap_or(defaults.http))
    }

    async fn build(&self, ctx: &BuildContext) -> Result<Arc<dyn Scaler>, ScalerError> {
        let probe = self.query_url("2000-01-01T00:00:00Z");
        match reqwest::Url::parse(&probe) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => {}
            Ok(u) => {
                return Err(self.config_error(
                    "serverAddress",
                    format!("scheme {:?} is not http or https", u.scheme()),
                ));
            }
            Err(e) => {
                return Err(self.config_error(
                    "serverAddress",
                    format!("{:?} does not make a valid URL: {e}", self.server_address),
                ));
            }
        }
        let headers = self.headers()?;
        // Upstream replaces the whole transport when a CA or client certificate is configured through
        // authModes, which drops `unsafeSsl`; without authModes the CA is not used at all.
        let enabled = auth_enabled(&self.auth);
        let custom_tls = enabled && (self.auth.ca.is_some() || self.auth.tls.is_some());
        let key = ClientKey {
            timeout: self.timeout.unwrap_or(ctx.timeouts.http),
            unsafe_ssl: self.unsafe_ssl && !custom_tls,
            ca: if enabled { self.auth.ca.clone() } else { None },
            cert_and_key: self.auth.tls.clone(),
        };
        let client = ctx.http.get(&key).map_err(|message| ScalerError::Backend {
            trigger: self.trigger(),
            action: "building the HTTP client",
            message,
        })?;
        Ok(Arc::new(PrometheusScaler {
            config: self.clone(),
            headers,
            client,
        }))
    }
}

struct PrometheusScaler {
    config: PrometheusConfig,
    headers: HeaderMap,
    client: Arc<reqwest::Client>,
}

#[async_trait::async_trait]
impl Scaler for PrometheusScaler {
    async fn sample(&self) -> Result<Sample, ScalerError> {
        self.sample_report().await.result
    }

    async fn sample_report(&self) -> SampleReport {
        let (result, empty) = self.query().await;
        SampleReport {
            result,
            empty_upstream_response: empty.then_some(EmptyUpstreamResponse {
                ignore_null_values: self.config.ignore_null_values,
            }),
        }
    }
}

impl PrometheusScaler {
    /// One query, and whether Prometheus answered with nothing to read.
    async fn query(&self) -> (Result<Sample, ScalerError>, bool) {
        let c = &self.config;
        let body = match self.fetch().await {
            Ok(body) => body,
            Err(e) => return (Err(e), false),
        };
        let read = read_response(body.as_ref(), &c.query, c.ignore_null_values);
        let result = read
            .value
            .map(|value| Sample {
                value,
                active: crate::is_active(value, c.activation_threshold),
            })
            .map_err(|message| ScalerError::Backend {
                trigger: c.trigger(),
                action: "reading the Prometheus result",
                message,
            });
        (result, read.empty)
    }

    /// The body of a successful query.
    async fn fetch(&self) -> Result<impl AsRef<[u8]>, ScalerError> {
        let c = &self.config;
        let backend = |action: &'static str, message: String| ScalerError::Backend {
            trigger: c.trigger(),
            action,
            message,
        };
        let time = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
        let url = c.query_url(&time);
        let resp = self
            .client
            .get(&url)
            .headers(self.headers.clone())
            .observed_send()
            .await
            .map_err(|e| backend("querying Prometheus", format!("{}: {e}", c.server_address)))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(backend(
                "querying Prometheus",
                format!(
                    "prometheus query api returned error. status: {}",
                    status.as_u16()
                ),
            ));
        }
        resp.bytes()
            .await
            .map_err(|e| backend("reading the Prometheus response", e.to_string()))
    }
}

/// An instant-query response as upstream reads it.
#[derive(Clone, Debug, PartialEq)]
pub struct PromResponse {
    pub value: Result<f64, String>,
    /// The result list, or the value list of its one series, was empty: upstream counts it in
    /// `keda_scaler_empty_upstream_responses_total`, whatever `ignoreNullValues` then made of it.
    pub empty: bool,
}

/// The value of an instant-query response, as upstream reads it: zero or one series; an empty result or
/// value list, NaN and ±Inf are 0 with `ignore_null_values`, errors otherwise.
pub fn value_from_response(
    body: &[u8],
    query: &str,
    ignore_null_values: bool,
) -> Result<f64, String> {
    read_response(body, query, ignore_null_values).value
}

/// [`value_from_response`], and whether the response was empty.
pub fn read_response(body: &[u8], query: &str, ignore_null_values: bool) -> PromResponse {
    let mut empty = false;
    let value = parse_value(body, query, ignore_null_values, &mut empty);
    PromResponse { value, empty }
}

fn parse_value(
    body: &[u8],
    query: &str,
    ignore_null_values: bool,
    empty: &mut bool,
) -> Result<f64, String> {
    let doc: Value =
        serde_json::from_slice(body).map_err(|e| format!("response is not valid JSON: {e}"))?;
    let result = match doc.get("data").and_then(|d| d.get("result")) {
        None | Some(Value::Null) => &[][..],
        Some(Value::Array(items)) => items.as_slice(),
        Some(other) => {
            return Err(format!(
                "data.result must be a list of series, got {}",
                kind(other)
            ));
        }
    };
    if let Some(bad) = result.iter().find(|e| !(e.is_object() || e.is_null())) {
        return Err(format!(
            "data.result must be a list of series (resultType vector), got an element {}",
            kind(bad)
        ));
    }
    let mut lost = |what: &str| {
        *empty = true;
        if ignore_null_values {
            Ok(0.0)
        } else {
            Err(format!(
                "prometheus metrics 'prometheus' target may be lost, the {what} is empty"
            ))
        }
    };
    let series = match result {
        [] => return lost("result"),
        [one] => one,
        _ => {
            return Err(format!(
                "prometheus query {query} returned multiple elements"
            ));
        }
    };
    let pair = match series.get("value") {
        None | Some(Value::Null) => &[][..],
        Some(Value::Array(v)) => v.as_slice(),
        Some(other) => return Err(format!("value must be a list, got {}", kind(other))),
    };
    let raw = match pair {
        [] => return lost("value list"),
        [_] => {
            return Err(format!(
                "prometheus query {query} didn't return enough values"
            ));
        }
        [_, raw, ..] => raw,
    };
    let v = match raw {
        // Upstream leaves its initial -1 in place for a null sample value.
        Value::Null => -1.0,
        Value::String(s) => s
            .parse::<f64>()
            .map_err(|_| format!("prometheus value {s:?} is not a number"))?,
        other => {
            return Err(format!(
                "prometheus value must be a string, got {}",
                kind(other)
            ));
        }
    };
    if v.is_nan() || v.is_infinite() {
        if ignore_null_values {
            return Ok(0.0);
        }
        return Err(format!("prometheus query returns {v}"));
    }
    Ok(v)
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_like_go() {
        assert_eq!(
            query_escape("sum(rate(x{a=\"b c\"}[5m])) / 2~_.-"),
            "sum%28rate%28x%7Ba%3D%22b+c%22%7D%5B5m%5D%29%29+%2F+2~_.-"
        );
        assert_eq!(query_escape("é"), "%C3%A9");
    }

    #[test]
    fn base64_matches_rfc4648() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"alice:s3cret"), "YWxpY2U6czNjcmV0");
    }

    // Upstream's testPromQueryResult table.
    #[test]
    fn results_like_upstream() {
        let cases: &[(&str, &str, bool, Result<f64, ()>)] = &[
            ("no results", "{}", true, Ok(0.0)),
            ("no values", r#"{"data":{"result":[]}}"#, true, Ok(0.0)),
            (
                "no values but shouldn't ignore",
                r#"{"data":{"result":[]}}"#,
                false,
                Err(()),
            ),
            (
                "value is empty list",
                r#"{"data":{"result":[{"value": []}]}}"#,
                true,
                Ok(0.0),
            ),
            (
                "value is empty list but shouldn't ignore",
                r#"{"data":{"result":[{"value": []}]}}"#,
                false,
                Err(()),
            ),
            (
                "valid value",
                r#"{"data":{"result":[{"value": ["1", "2"]}]}}"#,
                true,
                Ok(2.0),
            ),
            (
                "not enough values",
                r#"{"data":{"result":[{"value": ["1"]}]}}"#,
                true,
                Err(()),
            ),
            (
                "multiple results",
                r#"{"data":{"result":[{},{}]}}"#,
                true,
                Err(()),
            ),
            (
                "+Inf",
                r#"{"data":{"result":[{"value": ["1", "+Inf"]}]}}"#,
                true,
                Ok(0.0),
            ),
            (
                "+Inf but shouldn't ignore",
                r#"{"data":{"result":[{"value": ["1", "+Inf"]}]}}"#,
                false,
                Err(()),
            ),
            (
                "-Inf",
                r#"{"data":{"result":[{"value": ["1", "-Inf"]}]}}"#,
                true,
                Ok(0.0),
            ),
            (
                "-Inf but shouldn't ignore",
                r#"{"data":{"result":[{"value": ["1", "-Inf"]}]}}"#,
                false,
                Err(()),
            ),
            (
                "NaN",
                r#"{"data":{"result":[{"value": ["1", "NaN"]}]}}"#,
                true,
                Ok(0.0),
            ),
            (
                "NaN but shouldn't ignore",
                r#"{"data":{"result":[{"value": ["1", "NaN"]}]}}"#,
                false,
                Err(()),
            ),
            (
                "scalar result",
                r#"{"data":{"resultType":"scalar","result":[1700000000,"3"]}}"#,
                true,
                Err(()),
            ),
            ("not json", "<html>", true, Err(())),
        ];
        for (name, body, ignore, want) in cases {
            let got = value_from_response(body.as_bytes(), "up", *ignore);
            match (want, &got) {
                (Ok(w), Ok(g)) => assert_eq!(w, g, "{name}"),
                (Err(()), Err(_)) => {}
                _ => panic!("{name}: want {want:?}, got {got:?}"),
            }
        }
        assert_eq!(
            value_from_response(br#"{"data":{"result":[{},{}]}}"#, "up", true),
            Err("prometheus query up returned multiple elements".into())
        );
    }

    // Upstream records an empty upstream response exactly where it checks for an empty result list or an
    // empty value list, before looking at ignoreNullValues; NaN, a null value or several series are not.
    #[test]
    fn empty_responses_are_flagged_like_upstream() {
        let cases: &[(&str, bool, bool)] = &[
            ("{}", true, true),
            (r#"{"data":{"result":[]}}"#, true, true),
            (r#"{"data":{"result":[]}}"#, false, true),
            (r#"{"data":{"result":[{}]}}"#, true, true),
            (r#"{"data":{"result":[{"value": []}]}}"#, false, true),
            (
                r#"{"data":{"result":[{"value": ["1", "2"]}]}}"#,
                true,
                false,
            ),
            (
                r#"{"data":{"result":[{"value": ["1", "NaN"]}]}}"#,
                true,
                false,
            ),
            (
                r#"{"data":{"result":[{"value": ["1", null]}]}}"#,
                true,
                false,
            ),
            (r#"{"data":{"result":[{"value": ["1"]}]}}"#, true, false),
            (r#"{"data":{"result":[{},{}]}}"#, true, false),
            ("<html>", true, false),
        ];
        for (body, ignore, empty) in cases {
            let read = read_response(body.as_bytes(), "up", *ignore);
            assert_eq!(read.empty, *empty, "{body} (ignoreNullValues {ignore})");
            assert_eq!(
                read.value,
                value_from_response(body.as_bytes(), "up", *ignore)
            );
            if *empty {
                assert_eq!(read.value.is_ok(), *ignore, "{body}");
            }
        }
    }
}
