//! `redis-streams`, `redis-cluster-streams`, `redis-sentinel-streams`: one number about a stream, chosen
//! by the metadata given:
//!
//! - a `consumerGroup` and a non-zero `lagCount`: the group's lag (entries not yet delivered to it; Redis
//!   7 or later), target `lagCount`;
//! - a `consumerGroup` otherwise: the group's pending entries (delivered, not acknowledged), target
//!   `pendingEntriesCount` (default 5);
//! - no `consumerGroup`: the stream length, target `streamLength` (default 5).
//!
//! In every mode the trigger is active when the number is strictly above `activationLagCount` (default 0).
//! Connection parameters are the `redis` ones.

use std::sync::Arc;

use ::redis::{Cmd, Value};

use crate::databases::redis::{
    RedisConnection, RedisHandle, parse_connection, value_int, value_text,
};
use crate::input::METADATA;
use crate::{
    BuildContext, MetricSpec, MetricTargetType, Sample, Scaler, ScalerError, ScalerTimeouts,
    TimeoutDefaults, TriggerConfig, TriggerInput, TriggerRef,
};

/// What is measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamMode {
    /// `XPENDING <stream> <group>`: entries delivered to the group and not acknowledged.
    PendingEntries,
    /// `XLEN <stream>`.
    StreamLength,
    /// The group's `lag` from `XINFO GROUPS` (Redis 7+).
    Lag,
}

/// A parsed Redis streams trigger.
#[derive(Clone, Debug)]
pub struct RedisStreamsConfig {
    pub index: usize,
    pub trigger_type: String,
    pub stream: String,
    pub consumer_group: Option<String>,
    pub mode: StreamMode,
    /// Target per replica for the mode: `pendingEntriesCount`, `streamLength` or `lagCount`.
    pub target: i64,
    /// `activationLagCount`, used whatever the mode.
    pub activation_lag_count: i64,
    pub connection: RedisConnection,
    pub metric_type: MetricTargetType,
}

pub fn parse(input: &TriggerInput<'_>) -> Result<Box<dyn TriggerConfig>, ScalerError> {
    Ok(Box::new(parse_config(input)?))
}

pub fn parse_config(input: &TriggerInput<'_>) -> Result<RedisStreamsConfig, ScalerError> {
    let metric_type = input.external_metric_type()?;
    let connection = parse_connection(input)?;
    let pending_entries_count: i64 = input
        .field("pendingEntriesCount")
        .order(METADATA)
        .default("5")
        .required()?;
    let stream_length: i64 = input
        .field("streamLength")
        .order(METADATA)
        .default("5")
        .required()?;
    let lag_count: i64 = input
        .field("lagCount")
        .order(METADATA)
        .default("0")
        .required()?;
    let stream: String = input.field("stream").order(METADATA).required()?;
    let consumer_group: Option<String> = input.field("consumerGroup").order(METADATA).optional()?;
    let activation_lag_count: i64 = input
        .field("activationLagCount")
        .order(METADATA)
        .default("0")
        .required()?;
    let (mode, target) = match (&consumer_group, lag_count) {
        (Some(_), 0) => (StreamMode::PendingEntries, pending_entries_count),
        (Some(_), lag) => (StreamMode::Lag, lag),
        (None, _) => (StreamMode::StreamLength, stream_length),
    };
    Ok(RedisStreamsConfig {
        index: input.index,
        trigger_type: input.trigger_type.to_owned(),
        stream,
        consumer_group,
        mode,
        target,
        activation_lag_count,
        connection,
        metric_type,
    })
}

#[async_trait::async_trait]
impl TriggerConfig for RedisStreamsConfig {
    fn metric_spec(&self) -> MetricSpec {
        MetricSpec::External {
            metric_name: crate::external_metric_name(
                self.index,
                &format!("redis-streams-{}", self.stream),
            ),
            target_type: self.metric_type,
            target: self.target as f64,
        }
    }

    fn trigger(&self) -> TriggerRef {
        TriggerRef {
            index: self.index,
            trigger_type: self.trigger_type.clone(),
        }
    }

    fn activation_threshold(&self) -> Option<f64> {
        Some(self.activation_lag_count as f64)
    }

    /// `XPENDING` or `XLEN`: one command; the lag: `INFO server`, `XINFO GROUPS`, and `XLEN` when the
    /// group is not registered yet.
    fn timeouts(&self, _defaults: &TimeoutDefaults) -> ScalerTimeouts {
        crate::databases::redis::timeouts(match self.mode {
            StreamMode::Lag => 3,
            StreamMode::PendingEntries | StreamMode::StreamLength => 1,
        })
    }

    async fn build(&self, ctx: &BuildContext) -> Result<Arc<dyn Scaler>, ScalerError> {
        let handle = ctx
            .redis
            .get(&self.connection, &self.trigger(), &ctx.tls)
            .await?;
        Ok(Arc::new(RedisStreamsScaler {
            config: self.clone(),
            handle,
        }))
    }
}

struct RedisStreamsScaler {
    config: RedisStreamsConfig,
    handle: Arc<RedisHandle>,
}

fn command(name: &str, args: &[&str]) -> Cmd {
    let mut c = ::redis::cmd(name);
    for a in args {
        c.arg(*a);
    }
    c
}

impl RedisStreamsScaler {
    fn group(&self) -> &str {
        self.config.consumer_group.as_deref().unwrap_or_default()
    }

    async fn stream_length(&self) -> Result<i64, String> {
        let reply = self
            .handle
            .query(&command("XLEN", &[&self.config.stream]))
            .await
            .map_err(|e| e.to_string())?;
        value_int(&reply).ok_or_else(|| format!("unexpected XLEN reply {reply:?}"))
    }

    async fn pending_entries(&self) -> Result<i64, String> {
        // The summary form answers [count, smallest id, greatest id, [[consumer, count]…]].
        let reply = self
            .handle
            .query(&command("XPENDING", &[&self.config.stream, self.group()]))
            .await
            .map_err(|e| e.to_string())?;
        match &reply {
            Value::Array(items) => items.first().and_then(value_int),
            _ => None,
        }
        .ok_or_else(|| format!("unexpected XPENDING reply {reply:?}"))
    }

    async fn lag(&self) -> Result<i64, String> {
        let info = self
            .handle
            .server_info()
            .await
            .map_err(|_| "could not find the Redis version".to_owned())?;
        let major = redis_major_version(&info)?;
        if major < 7 {
            return Err(format!(
                "Redis 7 or later is needed for lagCount (server is version {major})"
            ));
        }
        let groups = self
            .handle
            .query(&command("XINFO", &["GROUPS", &self.config.stream]))
            .await;
        match groups {
            // The stream does not exist yet: nothing to catch up on.
            Err(e) if e.to_string().contains("no such key") => Ok(0),
            Ok(reply) => match group_lag(&reply, self.group()) {
                Some(lag) => Ok(lag),
                // The group is not registered yet (consumers start with it, and there are none at zero
                // replicas): what it would lag is the whole stream.
                None => self.stream_length().await,
            },
            Err(_) => self.stream_length().await,
        }
    }
}

/// The major version from `INFO` text (`redis_version:7.2.4`).
fn redis_major_version(info: &str) -> Result<i64, String> {
    let version = info
        .lines()
        .find_map(|l| l.trim().strip_prefix("redis_version:"))
        .ok_or("could not find the Redis version number")?;
    version
        .split('.')
        .next()
        .and_then(|m| m.trim().parse().ok())
        .ok_or_else(|| format!("Redis version {version:?} is not a number"))
}

/// The `lag` of `group` in an `XINFO GROUPS` reply (a list of field/value lists or maps); `None` when the
/// group is not listed. A nil lag (Redis cannot tell, after deletions) counts as 0.
fn group_lag(reply: &Value, group: &str) -> Option<i64> {
    let Value::Array(groups) = reply else {
        return None;
    };
    groups.iter().find_map(|g| {
        let pairs: Vec<(&Value, &Value)> = match g {
            Value::Array(flat) => flat
                .chunks(2)
                .filter_map(|c| Some((c.first()?, c.get(1)?)))
                .collect(),
            Value::Map(m) => m.iter().map(|(k, v)| (k, v)).collect(),
            _ => return None,
        };
        let field = |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| value_text(k).as_deref() == Some(name))
                .map(|(_, v)| *v)
        };
        if field("name").and_then(value_text).as_deref() != Some(group) {
            return None;
        }
        Some(field("lag").and_then(value_int).unwrap_or(0))
    })
}

#[async_trait::async_trait]
impl Scaler for RedisStreamsScaler {
    async fn sample(&self) -> Result<Sample, ScalerError> {
        let (action, result) = match self.config.mode {
            StreamMode::PendingEntries => (
                "reading the pending entries count",
                self.pending_entries().await,
            ),
            StreamMode::StreamLength => ("reading the stream length", self.stream_length().await),
            StreamMode::Lag => ("reading the consumer group lag", self.lag().await),
        };
        let count = result.map_err(|message| ScalerError::Backend {
            trigger: self.config.trigger(),
            action,
            message,
        })?;
        Ok(Sample {
            value: count as f64,
            active: crate::is_active(count as f64, self.config.activation_lag_count as f64),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn versions_are_read_from_info() {
        assert_eq!(
            redis_major_version("# Server\r\nredis_version:7.0.15\r\nredis_mode:standalone\r\n"),
            Ok(7)
        );
        assert_eq!(redis_major_version("redis_version:6.2.1"), Ok(6));
        assert!(redis_major_version("# Server\r\n").is_err());
        assert!(redis_major_version("redis_version:x.1").is_err());
    }

    #[test]
    fn lag_is_found_by_group_name() {
        let reply = Value::Array(vec![
            Value::Array(vec![bulk("name"), bulk("a"), bulk("lag"), Value::Int(3)]),
            Value::Array(vec![bulk("name"), bulk("b"), bulk("lag"), Value::Nil]),
            Value::Map(vec![
                (bulk("name"), bulk("c")),
                (bulk("lag"), Value::Int(9)),
            ]),
        ]);
        assert_eq!(group_lag(&reply, "a"), Some(3));
        assert_eq!(group_lag(&reply, "b"), Some(0));
        assert_eq!(group_lag(&reply, "c"), Some(9));
        assert_eq!(group_lag(&reply, "d"), None);
    }
}
