//! `nsq`: the depth of one channel of an NSQ topic, summed over every nsqd that carries the topic.
//!
//! Each poll asks every `nsqLookupdHTTPAddresses` entry for `/lookup?topic=<topic>` (a 404 from one
//! lookupd is "not known there"; any other failure fails the poll), joins the producers'
//! `broadcast_address:http_port` into a set of nsqd nodes, and asks each node for
//! `/stats?format=json&include_clients=false&include_mem=false&topic=<topic>`. Per node, as upstream:
//! the channel's depth counts unless the channel is paused there (then it adds nothing); when the topic
//! has no channels, or not this one, the topic's own depth counts instead. No node for the topic means a
//! depth of 0. Active when the sum is strictly above `activationDepthThreshold`.
//!
//! Every request is bounded by `KEDA_HTTP_DEFAULT_TIMEOUT`; lookups and stats go out concurrently.

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::http::{ClientKey, ObservedSend};
use crate::input::METADATA_ENV;
use crate::{
    BuildContext, MetricSpec, MetricTargetType, Sample, Scaler, ScalerError, ScalerTimeouts,
    TimeoutDefaults, TriggerConfig, TriggerInput, TriggerRef,
};

pub const TRIGGER_TYPE: &str = "nsq";

/// One poll is a round of lookups then a round of stats requests, each round concurrent.
const REQUEST_ROUNDS: u32 = 2;

#[derive(Clone, Debug, PartialEq)]
pub struct NsqConfig {
    pub index: usize,
    /// `nsqLookupdHTTPAddresses`: `host:port` of each nsqlookupd's HTTP listener.
    pub lookupd_http_addresses: Vec<String>,
    pub topic: String,
    pub channel: String,
    pub depth_threshold: i64,
    pub activation_depth_threshold: i64,
    pub use_https: bool,
    pub unsafe_ssl: bool,
    pub metric_type: MetricTargetType,
}

pub fn parse(input: &TriggerInput<'_>) -> Result<Box<dyn TriggerConfig>, ScalerError> {
    Ok(Box::new(parse_config(input)?))
}

pub fn parse_config(input: &TriggerInput<'_>) -> Result<NsqConfig, ScalerError> {
    let metric_type = input.external_metric_type()?;
    let addresses: String = input
        .field("nsqLookupdHTTPAddresses")
        .order(METADATA_ENV)
        .required()?;
    let topic: String = input.field("topic").order(METADATA_ENV).required()?;
    let channel: String = input.field("channel").order(METADATA_ENV).required()?;
    let depth_threshold: i64 = input
        .field("depthThreshold")
        .order(METADATA_ENV)
        .default("10")
        .required()?;
    let activation_depth_threshold: i64 = input
        .field("activationDepthThreshold")
        .order(METADATA_ENV)
        .default("0")
        .required()?;
    let use_https: bool = input
        .field("useHttps")
        .order(METADATA_ENV)
        .default("false")
        .required()?;
    let unsafe_ssl: bool = input
        .field("unsafeSsl")
        .order(METADATA_ENV)
        .default("false")
        .required()?;
    let lookupd_http_addresses: Vec<String> = addresses
        .split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(str::to_owned)
        .collect();
    if lookupd_http_addresses.is_empty() {
        return Err(input.error(
            "nsqLookupdHTTPAddresses",
            "no nsqLookupdHTTPAddresses given",
        ));
    }
    if depth_threshold <= 0 {
        return Err(input.error(
            "depthThreshold",
            "depthThreshold must be a positive integer",
        ));
    }
    if activation_depth_threshold < 0 {
        return Err(input.error(
            "activationDepthThreshold",
            "activationDepthThreshold must be greater than or equal to 0",
        ));
    }
    Ok(NsqConfig {
        index: input.index,
        lookupd_http_addresses,
        topic,
        channel,
        depth_threshold,
        activation_depth_threshold,
        use_https,
        unsafe_ssl,
        metric_type,
    })
}

impl NsqConfig {
    fn scheme(&self) -> &'static str {
        if self.use_https { "https" } else { "http" }
    }

    /// `<scheme>://<lookupd>/lookup?topic=<topic>`.
    pub fn lookup_url(&self, lookupd: &str) -> String {
        format!(
            "{}://{lookupd}/lookup?topic={}",
            self.scheme(),
            query_escape(&self.topic)
        )
    }

    /// `<scheme>://<nsqd>/stats?…&topic=<topic>`, keys sorted as Go's `url.Values.Encode` writes them.
    /// The channel is left out of the query: nsqd then answers nothing for a topic lacking the channel,
    /// and the topic's depth is the fallback.
    pub fn stats_url(&self, nsqd: &str) -> String {
        format!(
            "{}://{nsqd}/stats?format=json&include_clients=false&include_mem=false&topic={}",
            self.scheme(),
            query_escape(&self.topic)
        )
    }
}

/// Go's `url.QueryEscape`.
fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// `host:port` as Go's `net.JoinHostPort` writes it (brackets around an IPv6 host).
fn join_host_port(host: &str, port: i64) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

#[async_trait::async_trait]
impl TriggerConfig for NsqConfig {
    fn metric_spec(&self) -> MetricSpec {
        MetricSpec::External {
            metric_name: crate::external_metric_name(
                self.index,
                &format!("nsq-{}-{}", self.topic, self.channel),
            ),
            target_type: self.metric_type,
            target: self.depth_threshold as f64,
        }
    }

    fn trigger(&self) -> TriggerRef {
        TriggerRef {
            index: self.index,
            trigger_type: TRIGGER_TYPE.into(),
        }
    }

    fn activation_threshold(&self) -> Option<f64> {
        Some(self.activation_depth_threshold as f64)
    }

    fn timeouts(&self, defaults: &TimeoutDefaults) -> ScalerTimeouts {
        ScalerTimeouts::http(defaults.http * REQUEST_ROUNDS)
    }

    async fn build(&self, ctx: &BuildContext) -> Result<Arc<dyn Scaler>, ScalerError> {
        let key = ClientKey {
            timeout: ctx.timeouts.http,
            unsafe_ssl: self.unsafe_ssl,
            ca: None,
            cert_and_key: None,
        };
        let client = ctx.http.get(&key).map_err(|message| ScalerError::Backend {
            trigger: self.trigger(),
            action: "building the HTTP client",
            message,
        })?;
        for addr in &self.lookupd_http_addresses {
            let url = self.lookup_url(addr);
            if reqwest::Url::parse(&url).is_err() {
                return Err(ScalerError::Config {
                    trigger: self.trigger(),
                    field: "nsqLookupdHTTPAddresses".into(),
                    reason: format!("{url:?} is not a valid URL"),
                });
            }
        }
        Ok(Arc::new(NsqScaler {
            config: self.clone(),
            client,
        }))
    }
}

/// One nsqd's `/stats` answer: the fields the scaler reads.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TopicStats {
    pub topic_name: String,
    pub depth: i64,
    pub channels: Vec<ChannelStats>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct ChannelStats {
    pub channel_name: String,
    pub depth: i64,
    pub paused: bool,
}

fn str_of(v: &serde_json::Value, key: &str) -> Result<String, String> {
    match v.get(key) {
        None | Some(serde_json::Value::Null) => Ok(String::new()),
        Some(serde_json::Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(format!("{key} is not a string: {other}")),
    }
}

fn int_of(v: &serde_json::Value, key: &str) -> Result<i64, String> {
    match v.get(key) {
        None | Some(serde_json::Value::Null) => Ok(0),
        Some(n) => n
            .as_i64()
            .ok_or_else(|| format!("{key} is not a whole number: {n}")),
    }
}

fn bool_of(v: &serde_json::Value, key: &str) -> Result<bool, String> {
    match v.get(key) {
        None | Some(serde_json::Value::Null) => Ok(false),
        Some(serde_json::Value::Bool(b)) => Ok(*b),
        Some(other) => Err(format!("{key} is not a boolean: {other}")),
    }
}

/// A list field; Go's decoder matches keys case-insensitively, so `producers`/`Producers` both count.
fn list_of<'a>(v: &'a serde_json::Value, key: &str) -> Result<&'a [serde_json::Value], String> {
    let found = v.as_object().and_then(|o| {
        o.get(key).or_else(|| {
            o.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, v)| v)
        })
    });
    match found {
        None | Some(serde_json::Value::Null) => Ok(&[]),
        Some(serde_json::Value::Array(items)) => Ok(items),
        Some(other) => Err(format!("{key} is not a list: {other}")),
    }
}

/// nsqd nodes (`broadcast_address:http_port`) of a `/lookup` answer.
pub fn producers_from_lookup(v: &serde_json::Value) -> Result<Vec<String>, String> {
    list_of(v, "producers")?
        .iter()
        .map(|p| {
            Ok(join_host_port(
                &str_of(p, "broadcast_address")?,
                int_of(p, "http_port")?,
            ))
        })
        .collect()
}

/// The topics of a `/stats?format=json` answer.
pub fn topics_from_stats(v: &serde_json::Value) -> Result<Vec<TopicStats>, String> {
    list_of(v, "topics")?
        .iter()
        .map(|t| {
            let channels = list_of(t, "channels")?
                .iter()
                .map(|c| {
                    Ok(ChannelStats {
                        channel_name: str_of(c, "channel_name")?,
                        depth: int_of(c, "depth")?,
                        paused: bool_of(c, "paused")?,
                    })
                })
                .collect::<Result<Vec<_>, String>>()?;
            Ok(TopicStats {
                topic_name: str_of(t, "topic_name")?,
                depth: int_of(t, "depth")?,
                channels,
            })
        })
        .collect()
}

/// What one nsqd contributes to the depth, by upstream's rules (see the module docs).
pub fn node_depth(topics: &[TopicStats], topic: &str, channel: &str) -> i64 {
    let mut depth = 0i64;
    for t in topics.iter().filter(|t| t.topic_name == topic) {
        if t.channels.is_empty() {
            depth += t.depth;
            continue;
        }
        let mut seen = false;
        for c in t.channels.iter().filter(|c| c.channel_name == channel) {
            seen = true;
            if !c.paused {
                depth += c.depth;
            }
        }
        if !seen {
            depth += t.depth;
        }
    }
    depth
}

pub struct NsqScaler {
    config: NsqConfig,
    client: Arc<reqwest::Client>,
}

impl NsqScaler {
    fn backend(&self, action: &'static str, message: String) -> ScalerError {
        ScalerError::Backend {
            trigger: self.config.trigger(),
            action,
            message,
        }
    }

    /// The JSON object at `url`; `Ok(None)` on a 404 when `not_found_is_none`.
    async fn get_json(
        &self,
        url: &str,
        not_found_is_none: bool,
    ) -> Result<Option<serde_json::Value>, String> {
        let resp = self
            .client
            .get(url)
            .header("Accept", "application/json; charset=utf-8")
            .observed_send()
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        let status = resp.status();
        if not_found_is_none && status == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let body = resp.text().await.map_err(|e| format!("{url}: {e}"))?;
        if !status.is_success() {
            let snippet: String = body.chars().take(200).collect();
            return Err(format!("{url} answered {status}: {snippet}"));
        }
        match serde_json::from_str(&body) {
            Ok(v @ serde_json::Value::Object(_)) => Ok(Some(v)),
            Ok(_) => Err(format!("{url}: not a JSON object")),
            Err(e) => Err(format!("{url}: not JSON: {e}")),
        }
    }

    async fn nsqd_nodes(&self) -> Result<BTreeSet<String>, ScalerError> {
        const ACTION: &str = "looking up the topic's nsqd nodes";
        let lookups = self.config.lookupd_http_addresses.iter().map(|addr| {
            let url = self.config.lookup_url(addr);
            async move {
                let v = self.get_json(&url, true).await?;
                v.map(|v| producers_from_lookup(&v).map_err(|m| format!("{url}: {m}")))
                    .transpose()
            }
        });
        let mut nodes = BTreeSet::new();
        for result in futures::future::join_all(lookups).await {
            match result {
                Ok(Some(found)) => nodes.extend(found),
                // not known to this lookupd; another may know it
                Ok(None) => {}
                Err(m) => return Err(self.backend(ACTION, m)),
            }
        }
        Ok(nodes)
    }

    async fn depth(&self) -> Result<i64, ScalerError> {
        const ACTION: &str = "reading the channel depth";
        let nodes = self.nsqd_nodes().await?;
        let stats = nodes.iter().map(|node| {
            let url = self.config.stats_url(node);
            async move {
                let v = self.get_json(&url, false).await?.unwrap_or_default();
                topics_from_stats(&v).map_err(|m| format!("{url}: {m}"))
            }
        });
        let mut depth = 0i64;
        for result in futures::future::join_all(stats).await {
            let topics = result.map_err(|m| self.backend(ACTION, m))?;
            depth = depth.saturating_add(node_depth(
                &topics,
                &self.config.topic,
                &self.config.channel,
            ));
        }
        Ok(depth)
    }
}

#[async_trait::async_trait]
impl Scaler for NsqScaler {
    async fn sample(&self) -> Result<Sample, ScalerError> {
        let depth = self.depth().await?;
        Ok(Sample {
            value: depth as f64,
            active: crate::is_active(depth as f64, self.config.activation_depth_threshold as f64),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic(depth: i64, channels: &[(&str, i64, bool)]) -> TopicStats {
        TopicStats {
            topic_name: "t".into(),
            depth,
            channels: channels
                .iter()
                .map(|(n, d, p)| ChannelStats {
                    channel_name: (*n).into(),
                    depth: *d,
                    paused: *p,
                })
                .collect(),
        }
    }

    #[test]
    fn depth_rules() {
        assert_eq!(node_depth(&[topic(7, &[("c", 3, false)])], "t", "c"), 3);
        assert_eq!(node_depth(&[topic(7, &[("c", 3, true)])], "t", "c"), 0);
        assert_eq!(node_depth(&[topic(7, &[])], "t", "c"), 7);
        assert_eq!(node_depth(&[topic(7, &[("other", 3, false)])], "t", "c"), 7);
        assert_eq!(node_depth(&[topic(7, &[("c", 3, false)])], "x", "c"), 0);
    }

    #[test]
    fn lookup_answer() {
        let v = serde_json::json!({"producers": [{"broadcast_address": "::1", "http_port": 4151},
            {"broadcast_address": "n1", "http_port": 4151}]});
        assert_eq!(
            producers_from_lookup(&v).unwrap(),
            vec!["[::1]:4151".to_string(), "n1:4151".to_string()]
        );
    }
}
