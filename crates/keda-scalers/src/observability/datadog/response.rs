//! A value from an answer: the query API's series (or its error, rate limit and missing data) and the
//! Cluster Agent's `ExternalMetricValueList`.

use serde_json::Value;

use super::config::{Aggregator, ApiMode};

/// The `X-Ratelimit-{Limit,Period,Reset}` headers of a query API answer (empty when absent), which a 429
/// error names.
pub(super) fn rate_limit(headers: &reqwest::header::HeaderMap) -> [String; 3] {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    [
        header("X-Ratelimit-Limit"),
        header("X-Ratelimit-Period"),
        header("X-Ratelimit-Reset"),
    ]
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
