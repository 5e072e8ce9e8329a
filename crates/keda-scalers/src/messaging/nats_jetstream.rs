//! `nats-jetstream`: the lag of one JetStream consumer (`num_pending + num_ack_pending`), read from the NATS
//! server's monitoring endpoint (`/jsz?acc=<account>&config=true&consumers=true`).
//!
//! In a cluster (the answer's `meta_cluster.cluster_size` > 1) only the consumer's leader has its current
//! numbers, so like upstream the scaler asks `/varz` of the server it was given for the cluster's
//! `connect_urls` (or, when none are advertised, its `cluster.urls`), asks every node's `/varz` for its
//! `server_name` and `/jsz` for the consumer, and remembers the node whose name is the consumer's
//! `cluster.leader`. Later polls go straight to that node until the leader changes or the consumer is no
//! longer found there. Nodes are reached on the monitoring port of `natsServerMonitoringEndpoint`.
//!
//! Each request is bounded by `KEDA_HTTP_DEFAULT_TIMEOUT`, as upstream's client. A missing stream or
//! consumer is an error, as upstream; unlike upstream (which keeps the stream read by an earlier poll when
//! a later answer lacks it), every poll reads the stream from its own answer.

use std::sync::Arc;

use tokio::sync::Mutex;

use crate::http::{ClientKey, ObservedSend};
use crate::input::METADATA;
use crate::{
    BuildContext, MetricSpec, MetricTargetType, Sample, Scaler, ScalerError, ScalerTimeouts,
    Source, TimeoutDefaults, TriggerConfig, TriggerInput, TriggerRef,
};

pub const TRIGGER_TYPE: &str = "nats-jetstream";

const AUTH_THEN_METADATA: &[Source] = &[Source::AuthParams, Source::Metadata];

/// Requests of one clustered lookup of a 3-node cluster (`/jsz`, `/varz`, then `/varz` and `/jsz` per
/// node), each bounded by the HTTP timeout: the bound of one poll.
const CLUSTER_LOOKUP_REQUESTS: u32 = 8;

#[derive(Clone, Debug, PartialEq)]
pub struct NatsJetStreamConfig {
    pub index: usize,
    /// `account` as written (matched against the accounts' names).
    pub account: Option<String>,
    /// `accountID`, or `account` when no ID is given (matched against the accounts' IDs, and sent).
    pub account_id: String,
    pub stream: String,
    pub consumer: String,
    pub lag_threshold: i64,
    pub activation_lag_threshold: i64,
    pub use_https: bool,
    /// `natsServerMonitoringEndpoint`: `host:port` of the monitoring listener.
    pub endpoint: String,
    pub metric_type: MetricTargetType,
}

pub fn parse(input: &TriggerInput<'_>) -> Result<Box<dyn TriggerConfig>, ScalerError> {
    Ok(Box::new(parse_config(input)?))
}

pub fn parse_config(input: &TriggerInput<'_>) -> Result<NatsJetStreamConfig, ScalerError> {
    let metric_type = input.external_metric_type()?;
    let account: Option<String> = input
        .field("account")
        .order(AUTH_THEN_METADATA)
        .optional()?;
    let account_id: Option<String> = input
        .field("accountID")
        .order(AUTH_THEN_METADATA)
        .optional()?;
    let stream: String = input.field("stream").order(METADATA).required()?;
    let consumer: String = input.field("consumer").order(METADATA).required()?;
    let lag_threshold: i64 = input
        .field("lagThreshold")
        .order(METADATA)
        .default("10")
        .required()?;
    let activation_lag_threshold: i64 = input
        .field("activationLagThreshold")
        .order(METADATA)
        .default("0")
        .required()?;
    let use_https: bool = input
        .field("useHttps")
        .order(METADATA)
        .default("false")
        .required()?;
    let endpoint: String = input
        .field("natsServerMonitoringEndpoint")
        .order(AUTH_THEN_METADATA)
        .required()?;
    let account_id = match (account_id, &account) {
        (Some(id), _) => id,
        (None, Some(name)) => name.clone(),
        (None, None) => return Err(input.error("account", "no account name or id given")),
    };
    Ok(NatsJetStreamConfig {
        index: input.index,
        account,
        account_id,
        stream,
        consumer,
        lag_threshold,
        activation_lag_threshold,
        use_https,
        endpoint,
        metric_type,
    })
}

impl NatsJetStreamConfig {
    fn scheme(&self) -> &'static str {
        if self.use_https { "https" } else { "http" }
    }

    /// The query of every `/jsz` request, keys sorted as Go's `url.Values.Encode` writes them.
    fn jsz_query(&self) -> String {
        format!(
            "acc={}&config=true&consumers=true",
            query_escape(&self.account_id)
        )
    }

    /// `<scheme>://<natsServerMonitoringEndpoint>/jsz?acc=…&config=true&consumers=true`.
    pub fn monitoring_url(&self) -> String {
        format!(
            "{}://{}/jsz?{}",
            self.scheme(),
            self.endpoint,
            self.jsz_query()
        )
    }

    /// The port of the monitoring endpoint, which every node of a cluster is asked on.
    fn monitoring_port(&self) -> Option<&str> {
        split_host_port(&self.endpoint).1
    }

    /// `/varz` of `host` (the endpoint's host when `None`) on the monitoring port.
    fn varz_url(&self, host: Option<&str>) -> String {
        match host {
            None => format!("{}://{}/varz", self.scheme(), self.endpoint),
            Some(h) => format!("{}://{}/varz", self.scheme(), self.join_port(h)),
        }
    }

    /// `/jsz` of the node advertised as `host` (its client URL's host), on the monitoring port.
    fn node_jsz_url(&self, host: &str) -> String {
        format!(
            "{}://{}/jsz?{}",
            self.scheme(),
            self.join_port(host),
            self.jsz_query()
        )
    }

    /// `/jsz` of a node known only by name: `<node>.<endpoint>` (a headless Service's pod DNS name).
    fn node_jsz_url_by_name(&self, node: &str) -> String {
        format!(
            "{}://{node}.{}/jsz?{}",
            self.scheme(),
            self.endpoint,
            self.jsz_query()
        )
    }

    fn join_port(&self, host: &str) -> String {
        let host = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]")
        } else {
            host.to_owned()
        };
        match self.monitoring_port() {
            Some(port) => format!("{host}:{port}"),
            None => host,
        }
    }

    fn is_account(&self, account: &AccountDetail) -> bool {
        account.id == self.account_id || self.account.as_deref() == Some(account.name.as_str())
    }
}

/// `host` and `port` of `host:port`, `[v6]:port`, or a bare host.
fn split_host_port(s: &str) -> (&str, Option<&str>) {
    if let Some(rest) = s.strip_prefix('[') {
        if let Some((host, after)) = rest.split_once(']') {
            return (host, after.strip_prefix(':'));
        }
        return (s, None);
    }
    match s.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => (host, Some(port)),
        _ => (s, None),
    }
}

/// The host of a client URL as the server advertises it (`nats-1.nats:4222`, `10.0.0.3:4222`, maybe with a
/// scheme).
fn url_host(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.split('/').next().unwrap_or(rest);
    split_host_port(rest).0
}

/// Go's `url.QueryEscape` (the account goes in the query; `$G` is `%24G`).
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

#[async_trait::async_trait]
impl TriggerConfig for NatsJetStreamConfig {
    fn metric_spec(&self) -> MetricSpec {
        MetricSpec::External {
            metric_name: crate::external_metric_name(
                self.index,
                &format!("nats-jetstream-{}", self.stream),
            ),
            target_type: self.metric_type,
            target: self.lag_threshold as f64,
        }
    }

    fn trigger(&self) -> TriggerRef {
        TriggerRef {
            index: self.index,
            trigger_type: TRIGGER_TYPE.into(),
        }
    }

    fn activation_threshold(&self) -> Option<f64> {
        Some(self.activation_lag_threshold as f64)
    }

    fn timeouts(&self, defaults: &TimeoutDefaults) -> ScalerTimeouts {
        ScalerTimeouts::http(defaults.http * CLUSTER_LOOKUP_REQUESTS)
    }

    async fn build(&self, ctx: &BuildContext) -> Result<Arc<dyn Scaler>, ScalerError> {
        let key = ClientKey {
            timeout: ctx.timeouts.http,
            unsafe_ssl: false,
            ca: None,
            cert_and_key: None,
        };
        let client = ctx.http.get(&key).map_err(|message| ScalerError::Backend {
            trigger: self.trigger(),
            action: "building the HTTP client",
            message,
        })?;
        let url = self.monitoring_url();
        if reqwest::Url::parse(&url).is_err() {
            return Err(ScalerError::Config {
                trigger: self.trigger(),
                field: "natsServerMonitoringEndpoint".into(),
                reason: format!("{url:?} is not a valid URL"),
            });
        }
        Ok(Arc::new(NatsJetStreamScaler {
            config: self.clone(),
            url,
            client,
            state: Mutex::new(LeaderState::default()),
        }))
    }
}

/// `/jsz` with `consumers=true&config=true`: the fields the scaler reads (absent ones are empty or 0).
#[derive(Clone, Debug, Default)]
pub struct JszResponse {
    pub account_details: Vec<AccountDetail>,
    pub cluster_size: i64,
}

#[derive(Clone, Debug, Default)]
pub struct AccountDetail {
    pub id: String,
    pub name: String,
    pub streams: Vec<StreamDetail>,
}

#[derive(Clone, Debug, Default)]
pub struct StreamDetail {
    pub name: String,
    pub consumers: Vec<ConsumerDetail>,
}

#[derive(Clone, Debug, Default)]
pub struct ConsumerDetail {
    pub name: String,
    pub num_ack_pending: i64,
    pub num_pending: i64,
    /// `cluster.leader`: the server name of the consumer's leader (empty when not clustered).
    pub leader: String,
}

/// `/varz`: the fields the clustered lookup reads.
#[derive(Clone, Debug, Default)]
pub struct VarzResponse {
    pub connect_urls: Vec<String>,
    /// `cluster.urls`.
    pub cluster_urls: Vec<String>,
    pub server_name: String,
}

fn str_of(v: &serde_json::Value, key: &str) -> Result<String, String> {
    match v.get(key) {
        None | Some(serde_json::Value::Null) => Ok(String::new()),
        Some(serde_json::Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(format!("{key} is not a string: {other}")),
    }
}

/// A count; like upstream's decoder, a count that is not a whole number fails the answer.
fn int_of(v: &serde_json::Value, key: &str) -> Result<i64, String> {
    match v.get(key) {
        None | Some(serde_json::Value::Null) => Ok(0),
        Some(n) => n
            .as_i64()
            .ok_or_else(|| format!("{key} is not a whole number: {n}")),
    }
}

fn list_of<'a>(v: &'a serde_json::Value, key: &str) -> Result<&'a [serde_json::Value], String> {
    match v.get(key) {
        None | Some(serde_json::Value::Null) => Ok(&[]),
        Some(serde_json::Value::Array(items)) => Ok(items),
        Some(other) => Err(format!("{key} is not a list: {other}")),
    }
}

fn strings_of(v: &serde_json::Value, key: &str) -> Result<Vec<String>, String> {
    list_of(v, key)?
        .iter()
        .map(|u| {
            u.as_str()
                .map(str::to_owned)
                .ok_or_else(|| format!("{key} has a non-string item: {u}"))
        })
        .collect()
}

fn object_of<'a>(v: &'a serde_json::Value, key: &str) -> &'a serde_json::Value {
    v.get(key).unwrap_or(&serde_json::Value::Null)
}

impl JszResponse {
    /// The fields of a `/jsz` answer; a field of the wrong type fails it, as upstream's decoder.
    pub fn from_json(v: &serde_json::Value) -> Result<JszResponse, String> {
        let mut accounts = Vec::new();
        for a in list_of(v, "account_details")? {
            let mut streams = Vec::new();
            for s in list_of(a, "stream_detail")? {
                let mut consumers = Vec::new();
                for c in list_of(s, "consumer_detail")? {
                    consumers.push(ConsumerDetail {
                        name: str_of(c, "name")?,
                        num_ack_pending: int_of(c, "num_ack_pending")?,
                        num_pending: int_of(c, "num_pending")?,
                        leader: str_of(object_of(c, "cluster"), "leader")?,
                    });
                }
                streams.push(StreamDetail {
                    name: str_of(s, "name")?,
                    consumers,
                });
            }
            accounts.push(AccountDetail {
                id: str_of(a, "id")?,
                name: str_of(a, "name")?,
                streams,
            });
        }
        Ok(JszResponse {
            account_details: accounts,
            cluster_size: int_of(object_of(v, "meta_cluster"), "cluster_size")?,
        })
    }
}

impl VarzResponse {
    pub fn from_json(v: &serde_json::Value) -> Result<VarzResponse, String> {
        Ok(VarzResponse {
            connect_urls: strings_of(v, "connect_urls")?,
            cluster_urls: strings_of(object_of(v, "cluster"), "urls")?,
            server_name: str_of(v, "server_name")?,
        })
    }
}

/// What upstream keeps between polls: the consumer's leader and the `/jsz` URL of its node.
#[derive(Debug, Default)]
struct LeaderState {
    consumer_leader: String,
    leader_url: String,
}

struct NatsJetStreamScaler {
    config: NatsJetStreamConfig,
    url: String,
    client: Arc<reqwest::Client>,
    state: Mutex<LeaderState>,
}

/// The stream this trigger names, and the consumer in it, as found in one `/jsz` answer.
struct Found<'a> {
    stream: Option<&'a StreamDetail>,
    consumer: Option<&'a ConsumerDetail>,
}

fn find<'a>(config: &NatsJetStreamConfig, resp: &'a JszResponse) -> Found<'a> {
    let mut found = Found {
        stream: None,
        consumer: None,
    };
    for account in resp.account_details.iter().filter(|a| config.is_account(a)) {
        for stream in account.streams.iter().filter(|s| s.name == config.stream) {
            found.stream = Some(stream);
            if let Some(c) = stream.consumers.iter().find(|c| c.name == config.consumer) {
                found.consumer = Some(c);
                return found;
            }
        }
    }
    found
}

/// The lag of the consumer in one `/jsz` answer: `num_pending + num_ack_pending`.
pub fn lag_from_jsz(config: &NatsJetStreamConfig, resp: &JszResponse) -> Result<i64, String> {
    let found = find(config, resp);
    match (found.stream, found.consumer) {
        (None, _) => Err(format!("stream {:?} not found", config.stream)),
        (Some(_), None) => Err(format!(
            "consumer {:?} not found in stream {:?}",
            config.consumer, config.stream
        )),
        (Some(_), Some(c)) => Ok(c.num_pending + c.num_ack_pending),
    }
}

impl NatsJetStreamScaler {
    fn backend(&self, action: &'static str, message: String) -> ScalerError {
        ScalerError::Backend {
            trigger: self.config.trigger(),
            action,
            message,
        }
    }

    async fn get_json(
        &self,
        url: &str,
        action: &'static str,
    ) -> Result<serde_json::Value, ScalerError> {
        let resp = self
            .client
            .get(url)
            .observed_send()
            .await
            .map_err(|e| self.backend(action, format!("{url}: {e}")))?;
        let status = resp.status();
        let body = resp
            .text()
            .await
            .map_err(|e| self.backend(action, format!("{url}: {e}")))?;
        if !status.is_success() {
            let snippet: String = body.chars().take(200).collect();
            return Err(self.backend(action, format!("{url} answered {status}: {snippet}")));
        }
        match serde_json::from_str(&body) {
            Ok(v @ serde_json::Value::Object(_)) => Ok(v),
            Ok(_) => Err(self.backend(action, format!("{url}: not a JSON object"))),
            Err(e) => Err(self.backend(action, format!("{url}: not JSON: {e}"))),
        }
    }

    async fn jsz(&self, url: &str) -> Result<JszResponse, ScalerError> {
        const ACTION: &str = "reading JetStream monitoring data";
        let v = self.get_json(url, ACTION).await?;
        JszResponse::from_json(&v).map_err(|m| self.backend(ACTION, format!("{url}: {m}")))
    }

    async fn varz(&self, url: &str) -> Result<VarzResponse, ScalerError> {
        const ACTION: &str = "reading NATS server details";
        let v = self.get_json(url, ACTION).await?;
        VarzResponse::from_json(&v).map_err(|m| self.backend(ACTION, format!("{url}: {m}")))
    }

    /// The answer to read the lag from: the node polled last time when its consumer leader is unchanged,
    /// else (in a cluster) the leader's node, found by asking every node.
    async fn monitoring_data(&self, state: &mut LeaderState) -> Result<JszResponse, ScalerError> {
        let cached_leader = std::mem::take(&mut state.consumer_leader);
        let url = if state.leader_url.is_empty() {
            self.url.clone()
        } else {
            state.leader_url.clone()
        };
        let resp = self.jsz(&url).await?;
        let consumer = find(&self.config, &resp).consumer;
        match consumer {
            Some(c) => state.consumer_leader = c.leader.clone(),
            // Nothing found where the cache pointed: forget the leader's node.
            None if !cached_leader.is_empty() => state.leader_url.clear(),
            None => {}
        }
        if consumer.is_some() && !cached_leader.is_empty() && cached_leader == state.consumer_leader
        {
            return Ok(resp);
        }
        if resp.cluster_size <= 1 {
            return Ok(resp);
        }

        let server = self.varz(&self.config.varz_url(None)).await?;
        let advertised = !server.connect_urls.is_empty();
        let urls = if advertised {
            server.connect_urls
        } else {
            server.cluster_urls
        };
        for url in &urls {
            let (node, node_url) = if advertised {
                let host = url_host(url);
                let info = self.varz(&self.config.varz_url(Some(host))).await?;
                (info.server_name, self.config.node_jsz_url(host))
            } else {
                let node = url_host(url)
                    .split('.')
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                let node_url = self.config.node_jsz_url_by_name(&node);
                (node, node_url)
            };
            let node_resp = self.jsz(&node_url).await?;
            if let Some(c) = find(&self.config, &node_resp).consumer
                && c.leader == node
            {
                state.consumer_leader = c.leader.clone();
                state.leader_url = node_url;
                return Ok(node_resp);
            }
        }
        Err(self.backend(
            "finding the consumer's leader",
            format!(
                "leader node not found for consumer {}",
                self.config.consumer
            ),
        ))
    }
}

#[async_trait::async_trait]
impl Scaler for NatsJetStreamScaler {
    async fn sample(&self) -> Result<Sample, ScalerError> {
        let mut state = self.state.lock().await;
        let resp = self.monitoring_data(&mut state).await?;
        let lag = lag_from_jsz(&self.config, &resp)
            .map_err(|m| self.backend("reading the consumer lag", m))?;
        Ok(Sample {
            value: lag as f64,
            active: crate::is_active(lag as f64, self.config.activation_lag_threshold as f64),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(endpoint: &str, https: bool) -> NatsJetStreamConfig {
        NatsJetStreamConfig {
            index: 0,
            account: Some("$G".into()),
            account_id: "$G".into(),
            stream: "s".into(),
            consumer: "c".into(),
            lag_threshold: 10,
            activation_lag_threshold: 0,
            use_https: https,
            endpoint: endpoint.into(),
            metric_type: MetricTargetType::AverageValue,
        }
    }

    #[test]
    fn urls_like_upstream() {
        let c = config("nats.nats:8222", true);
        assert_eq!(
            c.monitoring_url(),
            "https://nats.nats:8222/jsz?acc=%24G&config=true&consumers=true"
        );
        assert_eq!(c.varz_url(None), "https://nats.nats:8222/varz");
        assert_eq!(
            c.varz_url(Some(url_host("nats-1.nats.svc:4222"))),
            "https://nats-1.nats.svc:8222/varz"
        );
        assert_eq!(
            c.node_jsz_url(url_host("10.0.0.3:4222")),
            "https://10.0.0.3:8222/jsz?acc=%24G&config=true&consumers=true"
        );
        assert_eq!(
            c.node_jsz_url_by_name(url_host("nats-2.nats:6222").split('.').next().unwrap_or("")),
            "https://nats-2.nats.nats:8222/jsz?acc=%24G&config=true&consumers=true"
        );
        let plain = config("localhost", false);
        assert_eq!(plain.varz_url(Some("n1")), "http://n1/varz");
        assert_eq!(url_host("nats://[::1]:4222"), "::1");
        assert_eq!(config("h:8222", false).join_port("::1"), "[::1]:8222");
    }

    #[test]
    fn lag_is_pending_plus_ack_pending() {
        let c = config("h:8222", false);
        let resp = JszResponse::from_json(
            &serde_json::from_str(
                r#"{"account_details":[{"id":"$G","name":"$G","stream_detail":[{"name":"s",
                "consumer_detail":[{"name":"other","num_pending":100},
                {"name":"c","num_pending":3,"num_ack_pending":2,"cluster":{"leader":"n1"}}]}]}]}"#,
            )
            .expect("json"),
        )
        .expect("a /jsz answer");
        assert_eq!(lag_from_jsz(&c, &resp), Ok(5));
        let missing = JszResponse::from_json(
            &serde_json::from_str(r#"{"account_details":[{"id":"$G","stream_detail":[]}]}"#)
                .expect("json"),
        )
        .expect("a /jsz answer");
        assert!(
            JszResponse::from_json(&serde_json::json!({"account_details": [{"stream_detail": [{
            "consumer_detail": [{"num_pending": 5.5}]}]}]}))
            .is_err()
        );
        assert!(lag_from_jsz(&c, &missing).is_err());
    }
}
