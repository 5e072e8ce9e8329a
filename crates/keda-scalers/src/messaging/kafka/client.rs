//! The client shared by every trigger with the same bootstrap servers, credentials and TLS settings: a
//! connection per broker (opened on first use, reopened after a failure) and the four requests a poll
//! needs: Metadata for the trigger's topics only, FindCoordinator, OffsetFetch and ListOffsets.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use kafka_protocol::messages::describe_groups_request::DescribeGroupsRequest;
use kafka_protocol::messages::find_coordinator_request::FindCoordinatorRequest;
use kafka_protocol::messages::list_offsets_request::{
    ListOffsetsPartition, ListOffsetsRequest, ListOffsetsTopic,
};
use kafka_protocol::messages::metadata_request::{MetadataRequest, MetadataRequestTopic};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequest, OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::{BrokerId, GroupId, TopicName};
use kafka_protocol::protocol::StrBytes;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::config::{KafkaConnection, KafkaTls, Sasl};
use super::conn::{BrokerConn, Dialer, error_name};
use crate::client_cache::ClientCache;
use crate::tls::ScalerTls;
use crate::{ScalerError, TriggerRef};

/// Bound of one broker connection: TCP, TLS, ApiVersions and SASL.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Bound of one request on an open connection.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// A failed connection attempt is not repeated for this long: the triggers waiting for the same
/// broker get the same error at once instead of each waiting out its own connect timeout.
const RETRY_AFTER: Duration = Duration::from_secs(1);
/// How long a topic's partitions and leaders are reused without asking again. Partitions rarely change
/// and a changed leader fails the next ListOffsets, which drops the entry (`forget_topics`); without the
/// cache every poll of every trigger would send a Metadata request. (Kafka's own clients refresh after
/// `metadata.max.age.ms`, 5 minutes; a minute keeps new partitions visible sooner.)
pub const METADATA_MAX_AGE: Duration = Duration::from_secs(60);

/// Kafka clients, one per connection settings (bootstrap servers, SASL, TLS); the operator keeps one
/// set in `BuildContext::kafka`.
#[derive(Default)]
pub struct KafkaClients {
    cache: ClientCache<KafkaConnection, KafkaClient>,
}

impl KafkaClients {
    /// Number of live shared clients.
    pub fn len(&self) -> usize {
        self.cache.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The client for `conn`: the live one, or a new one connected to a bootstrap server.
    pub async fn get(
        &self,
        conn: &KafkaConnection,
        trust: &ScalerTls,
        trigger: &TriggerRef,
    ) -> Result<Arc<KafkaClient>, ScalerError> {
        self.cache
            .get_or_connect(conn, async {
                let client = KafkaClient::new(conn, trust, trigger)?;
                client
                    .any_conn()
                    .await
                    .map_err(|message| ScalerError::Backend {
                        trigger: trigger.clone(),
                        action: "connecting to kafka",
                        message,
                    })?;
                Ok(client)
            })
            .await
    }
}

/// One broker connection slot, so connecting to one broker never waits on another.
#[derive(Default)]
struct Slot {
    conn: Option<Arc<BrokerConn>>,
    failed: Option<(Instant, String)>,
}

/// A connection to a Kafka cluster, shared by the triggers with its settings.
pub struct KafkaClient {
    bootstrap: Vec<String>,
    dialer: Dialer,
    slots: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Slot>>>>,
    /// The coordinator's address per consumer group, until a request to it fails.
    coordinators: Mutex<HashMap<String, String>>,
    metadata: Mutex<MetadataCache>,
}

/// Partitions and leaders per topic as a Metadata answer gave them, with the brokers they name. Only
/// topics the broker described without error are kept: an unknown topic is asked about again next poll.
#[derive(Debug, Default)]
struct MetadataCache {
    brokers: HashMap<i32, String>,
    topics: HashMap<String, (Instant, Vec<(i32, i32)>)>,
}

impl MetadataCache {
    /// The answer for `topics` when every one of them is cached and younger than `max_age`.
    fn lookup(&self, topics: &[String], now: Instant, max_age: Duration) -> Option<Metadata> {
        let mut out = Metadata {
            brokers: self.brokers.clone(),
            topics: BTreeMap::new(),
        };
        for t in topics {
            let (at, parts) = self.topics.get(t)?;
            if now.saturating_duration_since(*at) >= max_age {
                return None;
            }
            out.topics.insert(t.clone(), Ok(parts.clone()));
        }
        Some(out)
    }

    fn store(&mut self, meta: &Metadata, now: Instant) {
        self.brokers
            .extend(meta.brokers.iter().map(|(id, addr)| (*id, addr.clone())));
        for (t, parts) in &meta.topics {
            match parts {
                Ok(p) => {
                    self.topics.insert(t.clone(), (now, p.clone()));
                }
                Err(_) => {
                    self.topics.remove(t);
                }
            }
        }
    }

    fn forget(&mut self, topics: &[String]) {
        for t in topics {
            self.topics.remove(t);
        }
    }
}

/// What Metadata tells about the asked topics.
#[derive(Debug, Default)]
pub struct Metadata {
    pub brokers: HashMap<i32, String>,
    /// Partition → leader id, per topic; an error names the topic.
    pub topics: BTreeMap<String, Result<Vec<(i32, i32)>, String>>,
}

/// A partition's committed offset, or the broker's error for it.
pub type Committed = Result<i64, String>;

fn tls_config(
    tls: &KafkaTls,
    trust: &ScalerTls,
) -> Result<Arc<rustls::ClientConfig>, (&'static str, String)> {
    if tls.key_password.is_some() {
        return Err((
            "keyPassword",
            "encrypted client keys are not supported by keda-rs; provide an unencrypted key".into(),
        ));
    }
    let builder = trust.builder().map_err(|e| ("tls", e))?;
    let builder = if tls.unsafe_ssl {
        builder
            .dangerous()
            .with_custom_certificate_verifier(trust.accept_any())
    } else {
        let extra: Vec<&str> = tls.ca.iter().map(String::as_str).collect();
        builder.with_root_certificates(trust.roots_with(&extra).map_err(|e| ("ca", e))?)
    };
    let config = match (&tls.cert, &tls.key) {
        (Some(cert), Some(key)) => {
            let certs = CertificateDer::pem_slice_iter(cert.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| ("cert", format!("not a PEM certificate: {e}")))?;
            if certs.is_empty() {
                return Err(("cert", "no PEM certificate".into()));
            }
            let key = PrivateKeyDer::from_pem_slice(key.as_bytes())
                .map_err(|e| ("key", format!("not a PEM private key: {e}")))?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| ("cert", e.to_string()))?
        }
        _ => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

impl KafkaClient {
    fn new(
        conn: &KafkaConnection,
        trust: &ScalerTls,
        trigger: &TriggerRef,
    ) -> Result<KafkaClient, ScalerError> {
        let config_error = |field: &str, reason: String| ScalerError::Config {
            trigger: trigger.clone(),
            field: field.to_owned(),
            reason,
        };
        match &conn.sasl {
            Some(Sasl::OAuthBearer { .. }) | Some(Sasl::Gssapi) => {
                return Err(config_error(
                    "sasl",
                    format!(
                        "SASL {} is not supported by keda-rs yet; use plaintext, scram_sha256 or scram_sha512",
                        conn.sasl.as_ref().map(Sasl::mechanism).unwrap_or_default()
                    ),
                ));
            }
            _ => {}
        }
        let tls = match &conn.tls {
            Some(t) => Some(tls_config(t, trust).map_err(|(f, r)| config_error(f, r))?),
            None => None,
        };
        Ok(KafkaClient {
            bootstrap: conn.bootstrap_servers.clone(),
            dialer: Dialer {
                tls,
                sasl: conn.sasl.clone(),
                connect_timeout: CONNECT_TIMEOUT,
                request_timeout: REQUEST_TIMEOUT,
            },
            slots: Mutex::new(HashMap::new()),
            coordinators: Mutex::new(HashMap::new()),
            metadata: Mutex::new(MetadataCache::default()),
        })
    }

    /// Open broker connections (for tests and footprint checks).
    pub fn open_connections(&self) -> usize {
        let slots: Vec<_> = self
            .slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect();
        slots
            .iter()
            .filter(|s| {
                s.try_lock()
                    .map(|s| s.conn.as_ref().is_some_and(|c| !c.is_broken()))
                    .unwrap_or(true)
            })
            .count()
    }

    /// The connection to `addr`, opened when there is none (or it broke).
    pub(super) async fn conn(&self, addr: &str) -> Result<Arc<BrokerConn>, String> {
        let slot = self
            .slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(addr.to_owned())
            .or_default()
            .clone();
        let mut slot = slot.lock().await;
        if let Some(c) = &slot.conn
            && !c.is_broken()
        {
            return Ok(c.clone());
        }
        if let Some((at, e)) = &slot.failed
            && at.elapsed() < RETRY_AFTER
        {
            return Err(e.clone());
        }
        match BrokerConn::connect(addr, &self.dialer).await {
            Ok(c) => {
                slot.conn = Some(c.clone());
                slot.failed = None;
                Ok(c)
            }
            Err(e) => {
                slot.conn = None;
                slot.failed = Some((Instant::now(), e.clone()));
                Err(e)
            }
        }
    }

    /// Any usable connection: an open one, else the first bootstrap server that answers.
    pub(super) async fn any_conn(&self) -> Result<Arc<BrokerConn>, String> {
        let open: Vec<_> = self
            .slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect();
        for slot in open {
            if let Ok(s) = slot.try_lock()
                && let Some(c) = &s.conn
                && !c.is_broken()
            {
                return Ok(c.clone());
            }
        }
        let mut errors = Vec::new();
        for addr in &self.bootstrap {
            match self.conn(addr).await {
                Ok(c) => return Ok(c),
                Err(e) => errors.push(e),
            }
        }
        Err(format!(
            "no bootstrap server answered: {}",
            errors.join("; ")
        ))
    }

    /// Partitions and leaders of `topics` (only these: never the whole cluster's metadata), from the
    /// cache while it is younger than `METADATA_MAX_AGE`.
    pub async fn metadata(&self, topics: &[String]) -> Result<Metadata, String> {
        let cached = self
            .metadata
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .lookup(topics, Instant::now(), METADATA_MAX_AGE);
        if let Some(meta) = cached {
            return Ok(meta);
        }
        let meta = self.fetch_metadata(topics).await?;
        self.metadata
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .store(&meta, Instant::now());
        Ok(meta)
    }

    /// Drops `topics` from the metadata cache, so the next poll asks the broker again (after a request
    /// built from them failed: a moved leader, a deleted topic).
    pub fn forget_topics(&self, topics: &[String]) {
        self.metadata
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .forget(topics);
    }

    async fn fetch_metadata(&self, topics: &[String]) -> Result<Metadata, String> {
        let conn = self.any_conn().await?;
        let version = conn.version::<MetadataRequest>(METADATA.0, METADATA.1)?;
        let resp = conn
            .send(&metadata_request(topics, version), version)
            .await?;
        let mut out = Metadata::default();
        for b in &resp.brokers {
            out.brokers
                .insert(b.node_id.0, join_host_port(b.host.as_str(), b.port));
        }
        for t in &resp.topics {
            let Some(name) = &t.name else { continue };
            let entry = if t.error_code != 0 {
                Err(error_name(t.error_code))
            } else {
                Ok(t.partitions
                    .iter()
                    .map(|p| (p.partition_index, p.leader_id.0))
                    .collect())
            };
            out.topics.insert(name.0.to_string(), entry);
        }
        Ok(out)
    }

    /// The address of `group`'s coordinator (cached until a request to it fails).
    async fn coordinator(&self, group: &str) -> Result<String, String> {
        if let Some(addr) = self
            .coordinators
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(group)
        {
            return Ok(addr.clone());
        }
        let conn = self.any_conn().await?;
        let version =
            conn.version::<FindCoordinatorRequest>(FIND_COORDINATOR.0, FIND_COORDINATOR.1)?;
        let req = find_coordinator_request(group, version);
        let resp = conn.send(&req, version).await?;
        let (code, msg, host, port) = match resp.coordinators.first() {
            Some(c) if version >= 4 => (
                c.error_code,
                c.error_message.clone(),
                c.host.clone(),
                c.port,
            ),
            _ => (
                resp.error_code,
                resp.error_message.clone(),
                resp.host.clone(),
                resp.port,
            ),
        };
        if code != 0 {
            return Err(format!(
                "finding the coordinator of group {group}: {}{}",
                error_name(code),
                msg.map(|m| format!(" ({m})")).unwrap_or_default()
            ));
        }
        let addr = join_host_port(host.as_str(), port);
        self.coordinators
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(group.to_owned(), addr.clone());
        Ok(addr)
    }

    fn forget_coordinator(&self, group: &str) {
        self.coordinators
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(group);
    }

    /// The group's committed offsets: for `topics` (topic → partitions), or for every topic it has
    /// offsets for (`None`). Partitions without a committed offset answer -1.
    pub async fn committed_offsets(
        &self,
        group: &str,
        topics: Option<&BTreeMap<String, Vec<i32>>>,
    ) -> Result<BTreeMap<(String, i32), Committed>, String> {
        let addr = self.coordinator(group).await?;
        let result = self.offset_fetch(&addr, group, topics).await;
        if result.is_err() {
            // A moved or restarting coordinator: look it up again on the next poll.
            self.forget_coordinator(group);
        }
        result
    }

    /// The group's state and number of members (DescribeGroups at its coordinator).
    pub async fn describe_group(&self, group: &str) -> Result<(String, usize), String> {
        let addr = self.coordinator(group).await?;
        let result = async {
            let conn = self.conn(&addr).await?;
            let version =
                conn.version::<DescribeGroupsRequest>(DESCRIBE_GROUPS.0, DESCRIBE_GROUPS.1)?;
            let req = describe_groups_request(group);
            let resp = conn.send(&req, version).await?;
            let g = resp
                .groups
                .first()
                .ok_or_else(|| "error describing group: no group in the answer".to_owned())?;
            if g.error_code != 0 {
                return Err(format!(
                    "error describing group: {}",
                    error_name(g.error_code)
                ));
            }
            Ok((g.group_state.to_string(), g.members.len()))
        }
        .await;
        if result.is_err() {
            self.forget_coordinator(group);
        }
        result
    }

    async fn offset_fetch(
        &self,
        addr: &str,
        group: &str,
        topics: Option<&BTreeMap<String, Vec<i32>>>,
    ) -> Result<BTreeMap<(String, i32), Committed>, String> {
        let conn = self.conn(addr).await?;
        let version = conn.version::<OffsetFetchRequest>(OFFSET_FETCH.0, OFFSET_FETCH.1)?;
        let req = offset_fetch_request(group, topics, version);
        let resp = conn.send(&req, version).await?;
        let mut out = BTreeMap::new();
        let fail = |code: i16| {
            Err(format!(
                "error listing consumer group offsets: {}",
                error_name(code)
            ))
        };
        if version >= 8 {
            let Some(g) = resp.groups.first() else {
                return Err("error listing consumer group offsets: no group in the answer".into());
            };
            if g.error_code != 0 {
                return fail(g.error_code);
            }
            for t in &g.topics {
                for p in &t.partitions {
                    out.insert(
                        (t.name.0.to_string(), p.partition_index),
                        committed(p.error_code, p.committed_offset),
                    );
                }
            }
        } else {
            if resp.error_code != 0 {
                return fail(resp.error_code);
            }
            for t in &resp.topics {
                for p in &t.partitions {
                    out.insert(
                        (t.name.0.to_string(), p.partition_index),
                        committed(p.error_code, p.committed_offset),
                    );
                }
            }
        }
        Ok(out)
    }

    /// The log end (high watermark) of each partition, one request per leader, all at once.
    pub async fn latest_offsets(
        &self,
        meta: &Metadata,
        partitions: &BTreeMap<String, Vec<i32>>,
    ) -> Result<BTreeMap<(String, i32), i64>, String> {
        // Leader address → topic → partitions.
        let mut by_leader: BTreeMap<String, BTreeMap<String, Vec<i32>>> = BTreeMap::new();
        for (topic, parts) in partitions {
            let leaders: HashMap<i32, i32> = match meta.topics.get(topic) {
                Some(Ok(p)) => p.iter().copied().collect(),
                _ => HashMap::new(),
            };
            for &p in parts {
                let leader = leaders.get(&p).copied().unwrap_or(-1);
                let addr = meta.brokers.get(&leader).ok_or_else(|| {
                    format!("no leader for topic {topic} partition {p}: LEADER_NOT_AVAILABLE")
                })?;
                by_leader
                    .entry(addr.clone())
                    .or_default()
                    .entry(topic.clone())
                    .or_default()
                    .push(p);
            }
        }
        let requests = by_leader
            .iter()
            .map(|(addr, topics)| self.list_offsets(addr, topics));
        let mut out = BTreeMap::new();
        for r in futures::future::join_all(requests).await {
            out.extend(r?);
        }
        Ok(out)
    }

    async fn list_offsets(
        &self,
        addr: &str,
        topics: &BTreeMap<String, Vec<i32>>,
    ) -> Result<BTreeMap<(String, i32), i64>, String> {
        let conn = self.conn(addr).await?;
        let version = conn.version::<ListOffsetsRequest>(LIST_OFFSETS.0, LIST_OFFSETS.1)?;
        let req = list_offsets_request(topics);
        let resp = conn.send(&req, version).await?;
        let mut out = BTreeMap::new();
        for t in &resp.topics {
            for p in &t.partitions {
                if p.error_code != 0 {
                    return Err(format!(
                        "listing the latest offset of topic {} partition {}: {}",
                        t.name.0,
                        p.partition_index,
                        error_name(p.error_code)
                    ));
                }
                out.insert((t.name.0.to_string(), p.partition_index), p.offset);
            }
        }
        Ok(out)
    }
}

// The versions of each request this client builds (each also within what kafka-protocol encodes and what
// the broker speaks, see `BrokerConn::version`). OffsetFetch from v2: the first that can ask for all
// topics; Metadata and ListOffsets from v1: Kafka 4 dropped v0.
const METADATA: (i16, i16) = (1, 12);
const FIND_COORDINATOR: (i16, i16) = (0, 6);
const DESCRIBE_GROUPS: (i16, i16) = (0, 5);
const OFFSET_FETCH: (i16, i16) = (2, 9);
const LIST_OFFSETS: (i16, i16) = (1, 9);

fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_owned()))
}

fn metadata_request(topics: &[String], version: i16) -> MetadataRequest {
    let req = MetadataRequest::default().with_topics(Some(
        topics
            .iter()
            .map(|t| MetadataRequestTopic::default().with_name(Some(topic_name(t))))
            .collect(),
    ));
    // A poll must never create the topic it asks about (v4 introduced the flag; before, the broker's
    // auto.create.topics.enable decides).
    if version >= 4 {
        req.with_allow_auto_topic_creation(false)
    } else {
        req
    }
}

fn find_coordinator_request(group: &str, version: i16) -> FindCoordinatorRequest {
    let key = StrBytes::from_string(group.to_owned());
    // v4 asks for a list of keys.
    if version >= 4 {
        FindCoordinatorRequest::default().with_coordinator_keys(vec![key])
    } else {
        FindCoordinatorRequest::default().with_key(key)
    }
}

fn describe_groups_request(group: &str) -> DescribeGroupsRequest {
    DescribeGroupsRequest::default()
        .with_groups(vec![GroupId(StrBytes::from_string(group.to_owned()))])
}

fn offset_fetch_request(
    group: &str,
    topics: Option<&BTreeMap<String, Vec<i32>>>,
    version: i16,
) -> OffsetFetchRequest {
    let group_id = GroupId(StrBytes::from_string(group.to_owned()));
    // v8 moved to a list of groups.
    if version >= 8 {
        let topics = topics.map(|t| {
            t.iter()
                .map(|(name, parts)| {
                    OffsetFetchRequestTopics::default()
                        .with_name(topic_name(name))
                        .with_partition_indexes(parts.clone())
                })
                .collect()
        });
        OffsetFetchRequest::default().with_groups(vec![
            OffsetFetchRequestGroup::default()
                .with_group_id(group_id)
                .with_topics(topics),
        ])
    } else {
        let topics = topics.map(|t| {
            t.iter()
                .map(|(name, parts)| {
                    OffsetFetchRequestTopic::default()
                        .with_name(topic_name(name))
                        .with_partition_indexes(parts.clone())
                })
                .collect()
        });
        OffsetFetchRequest::default()
            .with_group_id(group_id)
            .with_topics(topics)
    }
}

fn list_offsets_request(topics: &BTreeMap<String, Vec<i32>>) -> ListOffsetsRequest {
    ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(
            topics
                .iter()
                .map(|(name, parts)| {
                    ListOffsetsTopic::default()
                        .with_name(topic_name(name))
                        .with_partitions(
                            parts
                                .iter()
                                .map(|&p| {
                                    // -1: the latest offset (the log end).
                                    ListOffsetsPartition::default()
                                        .with_partition_index(p)
                                        .with_timestamp(-1)
                                })
                                .collect(),
                        )
                })
                .collect(),
        )
}

fn committed(code: i16, offset: i64) -> Committed {
    if code != 0 {
        Err(error_name(code))
    } else {
        Ok(offset)
    }
}

fn join_host_port(host: &str, port: i32) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

#[cfg(test)]
mod tests {
    use kafka_protocol::protocol::Encodable;

    use super::*;

    fn encodes<R: Encodable>(name: &str, req: &R, version: i16) {
        let mut buf = bytes::BytesMut::new();
        if let Err(e) = req.encode(&mut buf, version) {
            panic!("{name} v{version}: {e}");
        }
    }

    /// Every request is valid in every version this client may pick, so older brokers (which pick a
    /// lower version in ApiVersions) get well-formed requests too; the real broker of tests/scalers/kafka.rs
    /// only exercises the highest.
    #[test]
    fn metadata_cache_serves_fresh_described_topics_only() {
        let t0 = Instant::now();
        let age = Duration::from_secs(60);
        let mut cache = MetadataCache::default();
        let topics = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        assert!(cache.lookup(&topics(&["a"]), t0, age).is_none(), "empty");
        let mut answer = Metadata::default();
        answer.brokers.insert(1, "b1:9092".into());
        answer.topics.insert("a".into(), Ok(vec![(0, 1), (1, 1)]));
        answer
            .topics
            .insert("gone".into(), Err("UNKNOWN_TOPIC_OR_PARTITION".into()));
        cache.store(&answer, t0);

        let hit = cache
            .lookup(&topics(&["a"]), t0 + Duration::from_secs(59), age)
            .expect("fresh");
        assert_eq!(hit.topics["a"], Ok(vec![(0, 1), (1, 1)]));
        assert_eq!(hit.brokers[&1], "b1:9092");
        assert!(
            cache.lookup(&topics(&["a"]), t0 + age, age).is_none(),
            "expired"
        );
        assert!(
            cache.lookup(&topics(&["a", "gone"]), t0, age).is_none(),
            "errors are not kept"
        );
        assert!(
            cache.lookup(&topics(&["a", "b"]), t0, age).is_none(),
            "one missing topic asks again"
        );
        cache.forget(&topics(&["a"]));
        assert!(
            cache.lookup(&topics(&["a"]), t0, age).is_none(),
            "forgotten"
        );
    }

    #[test]
    fn every_request_encodes_in_every_version_it_may_use() {
        let topics: BTreeMap<String, Vec<i32>> = [("orders".to_owned(), vec![0, 1, 2])].into();
        for v in METADATA.0..=METADATA.1 {
            encodes("Metadata", &metadata_request(&["orders".into()], v), v);
        }
        for v in FIND_COORDINATOR.0..=FIND_COORDINATOR.1 {
            encodes("FindCoordinator", &find_coordinator_request("g", v), v);
        }
        for v in DESCRIBE_GROUPS.0..=DESCRIBE_GROUPS.1 {
            encodes("DescribeGroups", &describe_groups_request("g"), v);
        }
        for v in OFFSET_FETCH.0..=OFFSET_FETCH.1 {
            encodes(
                "OffsetFetch",
                &offset_fetch_request("g", Some(&topics), v),
                v,
            );
            encodes(
                "OffsetFetch (all topics)",
                &offset_fetch_request("g", None, v),
                v,
            );
        }
        for v in LIST_OFFSETS.0..=LIST_OFFSETS.1 {
            encodes("ListOffsets", &list_offsets_request(&topics), v);
        }
    }
}
