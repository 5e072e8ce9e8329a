//! The management plugin's HTTP API: one queue (`/api/queues/<vhost>/<queue>`) or the queues whose names
//! match a regex (`/api/queues/<vhost>?use_regex=true&name=…`), combined by `operation`.

use std::sync::Arc;

use serde_json::Value;

use super::{Operation, QueueStatus, RabbitMqConfig, query_escape, redact_url};
use crate::http::{ClientKey, ObservedSend};
use crate::{BuildContext, Sample, Scaler, ScalerError};

/// The vhost path (`/<vhost>`, escaped) and the path in front of it, from the path of the host URL (as
/// written, escaped) and `vhostName`: the last segment of the path is the vhost, the rest a prefix (a
/// management API behind a path); an empty vhost is the default one, `/%2F`. `vhostName` wins.
pub fn vhost_and_prefix(raw_path: &str, vhost_name: Option<&str>) -> (String, String) {
    let parts: Vec<&str> = raw_path.split('/').collect();
    let last = parts.last().copied().unwrap_or("");
    let mut vhost = format!("/{last}");
    let prefix: Vec<&str> = parts[..parts.len().saturating_sub(1)]
        .iter()
        .copied()
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    let prefix = if prefix.is_empty() {
        String::new()
    } else {
        format!("/{}", prefix.join("/"))
    };
    if let Some(name) = vhost_name {
        vhost = format!("/{}", query_escape(name));
    }
    if vhost == "/" || vhost == "/%2F" {
        vhost = "/%2F".to_owned();
    }
    (vhost, prefix)
}

/// Percent-decoding of URL user info (invalid sequences are kept as written).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = (bytes[i] == b'%')
            .then(|| s.get(i + 1..i + 3))
            .flatten()
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match hex {
            Some(b) => {
                out.push(b);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The request URL (without credentials) and the basic-auth credentials for `config`.
pub fn request(config: &RabbitMqConfig) -> Result<(String, Option<(String, String)>), String> {
    let mut url = reqwest::Url::parse(&config.host).map_err(|e| format!("not a valid URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("scheme {:?} is not http or https", url.scheme()));
    }
    let mut credentials = (!url.username().is_empty()).then(|| {
        (
            percent_decode(url.username()),
            percent_decode(url.password().unwrap_or("")),
        )
    });
    if let (Some(u), Some(p)) = (&config.username, &config.password) {
        credentials = Some((u.clone(), p.clone()));
    }
    let (vhost, prefix) = vhost_and_prefix(url.path(), config.vhost_name.as_deref());
    // Credentials travel in the Authorization header, never in the URL (errors quote the URL).
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url.set_query(None);
    url.set_fragment(None);
    url.set_path("");
    let base = url.as_str().trim_end_matches('/');
    let queue = query_escape(&config.queue_name);
    let request = if config.use_regex {
        format!(
            "{base}{prefix}/api/queues{vhost}?page=1&use_regex=true&pagination=false&name={queue}&page_size={}",
            config.page_size
        )
    } else {
        format!("{base}{prefix}/api/queues{vhost}/{queue}")
    };
    Ok((request, credentials))
}

/// One queue of the API's answer; absent numbers are 0, as upstream decodes them.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct QueueInfo {
    messages: i64,
    ready: i64,
    publish_rate: f64,
    deliver_get_rate: f64,
}

fn queue_info(v: &Value) -> Result<QueueInfo, String> {
    if !v.is_object() {
        return Err(format!("expected a queue object, got {}", kind(v)));
    }
    let int = |key: &str| -> Result<i64, String> {
        match v.get(key) {
            None | Some(Value::Null) => Ok(0),
            Some(n) => n
                .as_i64()
                .ok_or_else(|| format!("{key} is not an integer: {n}")),
        }
    };
    let rate = |details: &str| -> Result<f64, String> {
        match v.pointer(&format!("/message_stats/{details}/rate")) {
            None | Some(Value::Null) => Ok(0.0),
            Some(n) => n
                .as_f64()
                .ok_or_else(|| format!("message_stats.{details}.rate is not a number: {n}")),
        }
    };
    Ok(QueueInfo {
        messages: int("messages")?,
        ready: int("messages_ready")?,
        publish_rate: rate("publish_details")?,
        deliver_get_rate: rate("deliver_get_details")?,
    })
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The queues of a regex listing combined by `operation` (an empty listing is all zeros). The message
/// counts average as integers, as upstream's.
fn combine(queues: &[QueueInfo], operation: Operation) -> QueueInfo {
    if queues.is_empty() {
        return QueueInfo::default();
    }
    let sum = queues.iter().fold(QueueInfo::default(), |a, q| QueueInfo {
        messages: a.messages + q.messages,
        ready: a.ready + q.ready,
        publish_rate: a.publish_rate + q.publish_rate,
        deliver_get_rate: a.deliver_get_rate + q.deliver_get_rate,
    });
    match operation {
        Operation::Sum => sum,
        Operation::Avg => {
            let n = queues.len() as i64;
            QueueInfo {
                messages: sum.messages / n,
                ready: sum.ready / n,
                publish_rate: sum.publish_rate / n as f64,
                deliver_get_rate: sum.deliver_get_rate / n as f64,
            }
        }
        Operation::Max => queues.iter().fold(QueueInfo::default(), |a, q| QueueInfo {
            messages: a.messages.max(q.messages),
            ready: a.ready.max(q.ready),
            publish_rate: a.publish_rate.max(q.publish_rate),
            deliver_get_rate: a.deliver_get_rate.max(q.deliver_get_rate),
        }),
    }
}

/// The queue status in an API answer (`body` of a 200).
pub fn read_status(config: &RabbitMqConfig, body: &str) -> Result<QueueStatus, String> {
    let doc: Value =
        serde_json::from_str(body).map_err(|e| format!("the answer is not JSON: {e}"))?;
    let info = if config.use_regex {
        let items = doc
            .get("items")
            .and_then(Value::as_array)
            .ok_or_else(|| format!("expected an object with items, got {}", kind(&doc)))?;
        if doc.get("page_count").and_then(Value::as_i64).unwrap_or(0) > 1 {
            return Err("regex matches more queues than can be recovered at once".into());
        }
        let queues = items
            .iter()
            .map(queue_info)
            .collect::<Result<Vec<_>, _>>()?;
        combine(&queues, config.operation)
    } else {
        queue_info(&doc)?
    };
    Ok(QueueStatus {
        messages: if config.exclude_unacknowledged {
            info.ready
        } else {
            info.messages
        },
        publish_rate: info.publish_rate,
        deliver_get_rate: info.deliver_get_rate,
    })
}

pub(super) struct HttpScaler {
    config: RabbitMqConfig,
    url: String,
    credentials: Option<(String, String)>,
    client: Arc<reqwest::Client>,
}

impl HttpScaler {
    pub(super) fn new(config: &RabbitMqConfig, ctx: &BuildContext) -> Result<Self, ScalerError> {
        let (url, credentials) = request(config).map_err(|r| config.config_error("host", r))?;
        if config
            .tls
            .as_ref()
            .is_some_and(|t| t.key_password.is_some())
        {
            return Err(config.config_error(
                "keyPassword",
                "encrypted client keys are not supported by keda-rs; provide an unencrypted key"
                    .into(),
            ));
        }
        let tls = config.tls.clone().unwrap_or_default();
        let key = ClientKey {
            timeout: config.timeout.unwrap_or(ctx.timeouts.http),
            unsafe_ssl: config.unsafe_ssl,
            ca: tls.ca,
            cert_and_key: tls.cert.zip(tls.key),
        };
        let client = ctx
            .http
            .get(&key)
            .map_err(|m| config.config_error("tls", m))?;
        Ok(HttpScaler {
            config: config.clone(),
            url,
            credentials,
            client,
        })
    }

    async fn status(&self) -> Result<QueueStatus, ScalerError> {
        let err = |m: String| self.config.backend_error("inspecting RabbitMQ", m);
        let mut req = self.client.get(&self.url);
        if let Some((u, p)) = &self.credentials {
            req = req.basic_auth(u, Some(p));
        }
        let resp = req.observed_send().await.map_err(|e| err(format!("{e}")))?;
        let status = resp.status();
        let body = resp
            .text()
            .await
            .map_err(|e| err(format!("reading the answer: {e}")))?;
        if status != reqwest::StatusCode::OK {
            let body: String = body.chars().take(512).collect();
            return Err(err(format!(
                "error requesting RabbitMQ API status: {status}, response: {body}, from: {}",
                redact_url(&self.url)
            )));
        }
        read_status(&self.config, &body).map_err(err)
    }
}

#[async_trait::async_trait]
impl Scaler for HttpScaler {
    async fn sample(&self) -> Result<Sample, ScalerError> {
        Ok(self.config.evaluate(self.status().await?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Upstream's `getVhostAndPathFromURLTestData`.
    #[test]
    fn vhost_and_prefix_as_upstream() {
        let cases: &[(&str, &str, &str, &str)] = &[
            ("myVhost", "", "/myVhost", ""),
            ("%2FmyVhost", "", "/%2FmyVhost", ""),
            ("/", "", "/%2F", ""),
            ("//", "", "/%2F", ""),
            ("/%2F", "", "/%2F", ""),
            ("", "", "/%2F", ""),
            ("sub1/myVhost", "", "/myVhost", "/sub1"),
            ("sub1/", "overridenVhost", "/overridenVhost", "/sub1"),
            ("myVhost", "overridenVhost", "/overridenVhost", ""),
            ("sub1/%2FmyVhost", "", "/%2FmyVhost", "/sub1"),
            ("sub1/", "", "/%2F", "/sub1"),
            ("sub1/", "myVhost", "/myVhost", "/sub1"),
            ("sub1//", "", "/%2F", "/sub1"),
            ("sub1/%2F", "", "/%2F", "/sub1"),
            ("sub1/sub2/myVhost", "", "/myVhost", "/sub1/sub2"),
            (
                "sub1/sub2/myVhost",
                "overridenVhost",
                "/overridenVhost",
                "/sub1/sub2",
            ),
            ("sub1/sub2/%2FmyVhost", "", "/%2FmyVhost", "/sub1/sub2"),
            ("sub1/sub2/", "", "/%2F", "/sub1/sub2"),
            ("sub1/sub2/", "myVhost", "/myVhost", "/sub1/sub2"),
            ("sub1/myVhost", "overridenVhost", "/overridenVhost", "/sub1"),
            ("sub1/sub2//", "", "/%2F", "/sub1/sub2"),
            ("sub1/sub2/%2F", "", "/%2F", "/sub1/sub2"),
        ];
        for (raw, name, vhost, prefix) in cases {
            let name = (!name.is_empty()).then_some(*name);
            assert_eq!(
                vhost_and_prefix(raw, name),
                ((*vhost).to_owned(), (*prefix).to_owned()),
                "{raw:?} {name:?}"
            );
        }
        // `vhostName: /` is the default vhost, escaped.
        assert_eq!(vhost_and_prefix("", Some("/")).0, "/%2F");
    }

    fn queues(v: &[(i64, i64, f64, f64)]) -> Vec<QueueInfo> {
        v.iter()
            .map(
                |&(messages, ready, publish_rate, deliver_get_rate)| QueueInfo {
                    messages,
                    ready,
                    publish_rate,
                    deliver_get_rate,
                },
            )
            .collect()
    }

    /// Upstream's `TestGetSum`, `TestGetAverage`, `TestGetMaximum`.
    #[test]
    fn operations_as_upstream() {
        let two = queues(&[(10, 5, 1.0, 2.0), (20, 15, 3.0, 4.0)]);
        assert_eq!(
            combine(&two, Operation::Sum),
            queues(&[(30, 20, 4.0, 6.0)])[0]
        );
        let trunc = queues(&[(5, 3, 1.0, 3.0), (6, 4, 3.0, 5.0)]);
        assert_eq!(
            combine(&trunc, Operation::Avg),
            queues(&[(5, 3, 2.0, 4.0)])[0]
        );
        let mixed = queues(&[(30, 5, 1.0, 9.0), (10, 20, 7.0, 3.0)]);
        assert_eq!(
            combine(&mixed, Operation::Max),
            queues(&[(30, 20, 7.0, 9.0)])[0]
        );
        assert_eq!(combine(&[], Operation::Avg), QueueInfo::default());
    }
}
