//! `kafka`: the consumer lag of a consumer group, summed over the partitions of one topic (or of every
//! topic the group has committed offsets for), capped as upstream caps it.
//!
//! **Client.** The Kafka messages are encoded and decoded by the `kafka-protocol` crate (pure Rust,
//! generated from Kafka's own message definitions, every API and version); this module only frames
//! them over a tokio TCP or rustls stream and matches responses by correlation id (`conn`). It was
//! chosen over `rdkafka` (a C build of librdkafka, its own threads and a full consumer/producer machinery
//! for four read-only requests) and `rskafka` (a producer/consumer client that cannot read a group's
//! committed offsets). With kafka-protocol a poll sends exactly what it needs: Metadata for the
//! trigger's topics only (never the whole cluster, upstream's issue #7453), FindCoordinator (cached),
//! OffsetFetch and ListOffsets, with each API's version negotiated through ApiVersions. SASL PLAIN and
//! SCRAM-SHA-256/512 (`scram`) run over SaslAuthenticate; OAUTHBEARER and GSSAPI are parsed as upstream
//! but refused at build.
//!
//! **Sharing.** One [`KafkaClient`] per bootstrap servers, credentials and TLS settings, shared by every
//! trigger with them (`BuildContext::kafka`), holding one pipelined connection per broker: a thousand
//! ScaledObjects on one cluster use a connection or two per broker.
//!
//! One module per concern: `config` (the trigger's settings, parsed as upstream), `lag` (the lag of a
//! partition and the capped total: pure, with upstream's rules as table tests), `client` (the shared
//! client and its requests), `conn` (one broker connection) and `scram`.

mod client;
mod config;
mod conn;
mod lag;
mod scram;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

pub use client::{CONNECT_TIMEOUT, KafkaClient, KafkaClients, REQUEST_TIMEOUT};
pub use config::{
    KafkaConfig, KafkaConnection, KafkaTls, Sasl, check_aws_credentials, check_version,
    parse_config, parse_partition_limitation,
};
pub use lag::{
    INVALID_OFFSET, OffsetResetPolicy, PartitionLag, PartitionRules, PreviousOffsets, TotalRules,
    factors, metric_activation_threshold, next_balanced_factor, partition_lag, total_lag,
};

use crate::{
    BuildContext, MetricSpec, Sample, Scaler, ScalerError, ScalerTimeouts, TimeoutDefaults,
    TriggerConfig, TriggerInput, TriggerRef,
};

pub const TRIGGER_TYPE: &str = "kafka";

/// Bound of a build: one connection to a bootstrap server, with a second server's chance.
pub const BUILD_TIMEOUT: Duration = Duration::from_secs(2 * CONNECT_TIMEOUT.as_secs());
/// Bound of a poll: sarama's read timeout (30 s), which covers a reconnection plus the four requests.
pub const SAMPLE_TIMEOUT: Duration = Duration::from_secs(30);

pub fn parse(input: &TriggerInput<'_>) -> Result<Box<dyn TriggerConfig>, ScalerError> {
    Ok(Box::new(parse_config(input)?))
}

#[async_trait::async_trait]
impl TriggerConfig for KafkaConfig {
    fn metric_spec(&self) -> MetricSpec {
        MetricSpec::External {
            metric_name: self.metric_name(),
            target_type: self.metric_type,
            target: self.lag_threshold as f64,
        }
    }

    fn trigger(&self) -> TriggerRef {
        self.trigger.clone()
    }

    /// `activationLagThreshold` where the metric alone decides activity ([`metric_activation_threshold`]).
    fn activation_threshold(&self) -> Option<f64> {
        metric_activation_threshold(
            &self.partition_rules(),
            &self.total_rules(),
            self.activation_lag_threshold,
        )
    }

    fn timeouts(&self, _defaults: &TimeoutDefaults) -> ScalerTimeouts {
        ScalerTimeouts {
            build: Some(BUILD_TIMEOUT),
            sample: Some(SAMPLE_TIMEOUT),
        }
    }

    async fn build(&self, ctx: &BuildContext) -> Result<Arc<dyn Scaler>, ScalerError> {
        let query = LagQuery {
            trigger: self.trigger.clone(),
            group: self.consumer_group.clone(),
            topics: self.topic.iter().cloned().collect(),
            partition_limitation: self.partition_limitation.clone(),
            partition_rules: self.partition_rules(),
            total_rules: self.total_rules(),
            activation_lag_threshold: self.activation_lag_threshold,
            require_members: false,
            unknown_topic_is_error: true,
        };
        Ok(Arc::new(
            LagScaler::build(ctx, &self.connection, query).await?,
        ))
    }
}

/// What one poll asks: `kafka` and `apache-kafka` differ only in these settings.
#[derive(Clone, Debug)]
pub struct LagQuery {
    pub trigger: TriggerRef,
    pub group: String,
    /// Empty: the topics the group has committed offsets for.
    pub topics: Vec<String>,
    /// Only these partitions count; `None`: all.
    pub partition_limitation: Option<Vec<i32>>,
    pub partition_rules: PartitionRules,
    pub total_rules: TotalRules,
    pub activation_lag_threshold: i64,
    /// Without topics, the group must have active members (`apache-kafka`, as upstream's kafka-go
    /// scaler checks).
    pub require_members: bool,
    /// A named topic the cluster does not know fails the poll (`kafka`); otherwise it counts nothing
    /// (`apache-kafka`).
    pub unknown_topic_is_error: bool,
}

/// A built `kafka` or `apache-kafka` trigger.
pub struct LagScaler {
    query: LagQuery,
    client: Arc<KafkaClient>,
    /// Committed offsets seen at the previous poll (`excludePersistentLag`).
    previous: Mutex<PreviousOffsets>,
}

impl LagScaler {
    /// Takes (or opens) the shared client of `connection`.
    pub async fn build(
        ctx: &BuildContext,
        connection: &KafkaConnection,
        query: LagQuery,
    ) -> Result<LagScaler, ScalerError> {
        let client = ctx.kafka.get(connection, &ctx.tls, &query.trigger).await?;
        Ok(LagScaler {
            query,
            client,
            previous: Mutex::new(PreviousOffsets::new()),
        })
    }

    /// The shared client (tests check that triggers share it).
    pub fn client(&self) -> &Arc<KafkaClient> {
        &self.client
    }

    fn backend(&self, action: &'static str, message: String) -> ScalerError {
        ScalerError::Backend {
            trigger: self.query.trigger.clone(),
            action,
            message,
        }
    }

    /// The topics to count: the trigger's, or the group's.
    async fn topics(&self) -> Result<Vec<String>, ScalerError> {
        let q = &self.query;
        if !q.topics.is_empty() {
            return Ok(q.topics.clone());
        }
        if q.require_members {
            let (state, members) = self
                .client
                .describe_group(&q.group)
                .await
                .map_err(|e| self.backend("describing group", e))?;
            if members == 0 {
                return Err(self.backend(
                    "describing group",
                    format!(
                        "no active members in group {}, group-state is {state}",
                        q.group
                    ),
                ));
            }
        }
        let all = self
            .client
            .committed_offsets(&q.group, None)
            .await
            .map_err(|e| self.backend("listing the consumer group's offsets", e))?;
        let mut topics: Vec<String> = all.keys().map(|(t, _)| t.clone()).collect();
        topics.dedup();
        Ok(topics)
    }

    async fn lag(&self) -> Result<(i64, i64), ScalerError> {
        let q = &self.query;
        let topics = self.topics().await?;
        if topics.is_empty() {
            // A group without committed offsets and no topic named: nothing it consumes can lag.
            // (Upstream would describe every topic of the cluster here.)
            return Ok((0, 0));
        }
        let meta = self
            .client
            .metadata(&topics)
            .await
            .map_err(|e| self.backend("describing topics", e))?;
        let mut partitions: BTreeMap<String, Vec<i32>> = BTreeMap::new();
        for (topic, parts) in &meta.topics {
            let parts = match parts {
                Ok(p) => p,
                Err(_) if !q.unknown_topic_is_error => continue,
                Err(e) => {
                    return Err(self.backend(
                        "describing topics",
                        format!("error describing topics: topic {topic}: {e}"),
                    ));
                }
            };
            let active: Vec<i32> = parts
                .iter()
                .map(|(p, _)| *p)
                .filter(|p| {
                    q.partition_limitation
                        .as_ref()
                        .is_none_or(|only| only.contains(p))
                })
                .collect();
            if active.is_empty() {
                if !q.unknown_topic_is_error {
                    continue;
                }
                return Err(self.backend(
                    "describing topics",
                    format!("expected at least one active partition within the topic '{topic}'"),
                ));
            }
            partitions.insert(topic.clone(), active);
        }
        if partitions.is_empty() {
            return Ok((0, 0));
        }
        let (committed, latest) = tokio::join!(
            self.client.committed_offsets(&q.group, Some(&partitions)),
            self.client.latest_offsets(&meta, &partitions),
        );
        let committed = committed.map_err(|e| self.backend("listing consumer group offsets", e))?;
        let latest = latest.map_err(|e| {
            // The leaders may have moved or the topic changed: describe them afresh next time.
            self.client.forget_topics(&topics);
            self.backend("listing the latest offsets", e)
        })?;

        let mut previous = self.previous.lock().unwrap_or_else(PoisonError::into_inner);
        let mut lags = Vec::with_capacity(latest.len());
        for ((topic, partition), log_end) in &latest {
            let offset = match committed.get(&(topic.clone(), *partition)) {
                Some(Ok(o)) => *o,
                Some(Err(e)) => {
                    return Err(self.backend(
                        "listing consumer group offsets",
                        format!(
                            "error finding offset block for topic {topic} and partition {partition}: {e}"
                        ),
                    ));
                }
                None => {
                    return Err(self.backend(
                        "listing consumer group offsets",
                        format!(
                            "error finding offset block for topic {topic} and partition {partition}"
                        ),
                    ));
                }
            };
            lags.push(partition_lag(
                &q.partition_rules,
                topic,
                *partition,
                offset,
                Some(*log_end),
                &mut previous,
            ));
        }
        Ok(total_lag(&q.total_rules, &lags))
    }
}

#[async_trait::async_trait]
impl Scaler for LagScaler {
    async fn sample(&self) -> Result<Sample, ScalerError> {
        let (total, with_persistent) = self.lag().await?;
        Ok(Sample {
            value: total as f64,
            active: crate::is_active(
                with_persistent as f64,
                self.query.activation_lag_threshold as f64,
            ),
        })
    }
}
