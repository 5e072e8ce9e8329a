//! The `redis`, `redis-cluster` and `redis-sentinel` trigger: its settings and one script per sample.

use std::sync::Arc;

use ::redis::Cmd;

use super::client::{RedisHandle, timeouts, value_int};
use super::connection::{RedisConnection, parse_connection};
use crate::input::METADATA;
use crate::{
    BuildContext, MetricSpec, MetricTargetType, Sample, Scaler, ScalerError, ScalerTimeouts,
    TimeoutDefaults, TriggerConfig, TriggerInput, TriggerRef,
};

/// Counts the entries of the key, whatever the collection type; a missing key counts 0. Evaluated as one
/// script so type and size are read atomically and in one round trip.
const COUNT_SCRIPT: &str = r"
local count_by_type = { list = 'LLEN', none = 'LLEN', set = 'SCARD', zset = 'ZCARD', hash = 'HLEN' }
local key_type = redis.call('TYPE', KEYS[1]).ok
local counter = count_by_type[key_type]
if not counter then
  return redis.error_reply('ERR unsupported key type: ' .. key_type)
end
return redis.call(counter, KEYS[1])
";

/// A parsed `redis`, `redis-cluster` or `redis-sentinel` trigger.
#[derive(Clone, Debug)]
pub struct RedisConfig {
    pub index: usize,
    pub trigger_type: String,
    pub list_name: String,
    /// Target per replica (`listLength`, default 5).
    pub list_length: i64,
    /// Active when the length is strictly above this (`activationListLength`, default 0).
    pub activation_list_length: i64,
    pub connection: RedisConnection,
    pub metric_type: MetricTargetType,
}

pub fn parse(input: &TriggerInput<'_>) -> Result<Box<dyn TriggerConfig>, ScalerError> {
    Ok(Box::new(parse_config(input)?))
}

pub fn parse_config(input: &TriggerInput<'_>) -> Result<RedisConfig, ScalerError> {
    let metric_type = input.external_metric_type()?;
    let connection = parse_connection(input)?;
    let list_length: i64 = input
        .field("listLength")
        .order(METADATA)
        .default("5")
        .required()?;
    let activation_list_length: i64 = input
        .field("activationListLength")
        .order(METADATA)
        .default("0")
        .required()?;
    let list_name: String = input.field("listName").order(METADATA).required()?;
    Ok(RedisConfig {
        index: input.index,
        trigger_type: input.trigger_type.to_owned(),
        list_name,
        list_length,
        activation_list_length,
        connection,
        metric_type,
    })
}

#[async_trait::async_trait]
impl TriggerConfig for RedisConfig {
    fn metric_spec(&self) -> MetricSpec {
        MetricSpec::External {
            metric_name: crate::external_metric_name(
                self.index,
                &format!("redis-{}", self.list_name),
            ),
            target_type: self.metric_type,
            target: self.list_length as f64,
        }
    }

    fn trigger(&self) -> TriggerRef {
        TriggerRef {
            index: self.index,
            trigger_type: self.trigger_type.clone(),
        }
    }

    fn activation_threshold(&self) -> Option<f64> {
        Some(self.activation_list_length as f64)
    }

    /// One command (`EVAL`) per sample.
    fn timeouts(&self, _defaults: &TimeoutDefaults) -> ScalerTimeouts {
        timeouts(1)
    }

    async fn build(&self, ctx: &BuildContext) -> Result<Arc<dyn Scaler>, ScalerError> {
        let handle = ctx
            .redis
            .get(&self.connection, &self.trigger(), &ctx.tls)
            .await?;
        let mut command = ::redis::cmd("EVAL");
        command.arg(COUNT_SCRIPT).arg(1).arg(&self.list_name);
        Ok(Arc::new(RedisScaler {
            config: self.clone(),
            handle,
            command,
        }))
    }
}

struct RedisScaler {
    config: RedisConfig,
    handle: Arc<RedisHandle>,
    command: Cmd,
}

#[async_trait::async_trait]
impl Scaler for RedisScaler {
    async fn sample(&self) -> Result<Sample, ScalerError> {
        let backend = |message: String| ScalerError::Backend {
            trigger: self.config.trigger(),
            action: "reading the list length",
            message,
        };
        let reply = self
            .handle
            .query(&self.command)
            .await
            .map_err(|e| backend(e.to_string()))?;
        let length =
            value_int(&reply).ok_or_else(|| backend(format!("unexpected reply {reply:?}")))?;
        Ok(Sample {
            value: length as f64,
            active: crate::is_active(length as f64, self.config.activation_list_length as f64),
        })
    }
}
