//! `apache-kafka`: upstream's experimental Kafka scaler (built on kafka-go there), with its own parameter
//! set: several topics in `topic`, SASL `aws_msk_iam`, no `unsafeSsl`, `sasl`/`tls` allowed in only one
//! place. It polls through the same shared client and lag arithmetic as `kafka`
//! ([`crate::messaging::kafka`]).
//!
//! Where upstream's behaviour differs from `kafka` it is kept: a listed topic the cluster does not know
//! counts nothing instead of failing, and without `topic` the group must have active members. One
//! difference is deliberate: without `topic`, upstream counts every topic of the cluster (lag 1 for
//! each partition the group never committed); keda-rs counts the topics the group has committed offsets
//! for, as `kafka` does.

use std::sync::Arc;

use crate::input::{AUTH, METADATA, METADATA_AUTH, METADATA_ENV};
use crate::messaging::kafka::{
    KafkaConnection, KafkaTls, LagQuery, LagScaler, OffsetResetPolicy, PartitionRules, Sasl,
    TotalRules, metric_activation_threshold, parse_partition_limitation,
};
use crate::{
    BuildContext, MetricSpec, MetricTargetType, Scaler, ScalerError, ScalerTimeouts,
    TimeoutDefaults, TriggerConfig, TriggerInput, TriggerRef, external_metric_name,
};

pub const TRIGGER_TYPE: &str = "apache-kafka";

/// A parsed `apache-kafka` trigger.
#[derive(Clone, Debug, PartialEq)]
pub struct ApacheKafkaConfig {
    pub trigger: TriggerRef,
    pub metric_type: MetricTargetType,
    pub connection: KafkaConnection,
    pub consumer_group: String,
    /// Empty: the group's topics.
    pub topics: Vec<String>,
    pub partition_limitation: Option<Vec<i32>>,
    pub lag_threshold: i64,
    pub activation_lag_threshold: i64,
    pub offset_reset_policy: OffsetResetPolicy,
    pub allow_idle_consumers: bool,
    pub exclude_persistent_lag: bool,
    pub scale_to_zero_on_invalid_offset: bool,
    pub limit_to_partitions_with_lag: bool,
    pub ensure_even_distribution_of_partitions: bool,
}

impl ApacheKafkaConfig {
    /// `s<index>-kafka-<topic,topic…>`, or `s<index>-kafka-<group>-topics` without topics.
    pub fn metric_name(&self) -> String {
        let raw = if self.topics.is_empty() {
            format!("kafka-{}-topics", self.consumer_group)
        } else {
            format!("kafka-{}", self.topics.join(","))
        };
        external_metric_name(self.trigger.index, &raw)
    }
}

fn list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

pub fn parse(input: &TriggerInput<'_>) -> Result<Box<dyn TriggerConfig>, ScalerError> {
    Ok(Box::new(parse_config(input)?))
}

pub fn parse_config(input: &TriggerInput<'_>) -> Result<ApacheKafkaConfig, ScalerError> {
    let metric_type = input.external_metric_type()?;
    let bootstrap_servers = list(
        &input
            .field("bootstrapServers")
            .order(METADATA_ENV)
            .required::<String>()?,
    );
    let consumer_group: String = input
        .field("consumerGroup")
        .order(METADATA_ENV)
        .required()?;
    let topics = input
        .field("topic")
        .order(METADATA_ENV)
        .optional::<String>()?
        .map(|t| list(&t))
        .unwrap_or_default();
    let partition_limitation = match input
        .field("partitionLimitation")
        .order(METADATA)
        .optional::<String>()?
    {
        Some(s) => Some(
            parse_partition_limitation(&s).map_err(|r| input.error("partitionLimitation", r))?,
        ),
        None => None,
    };
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
    let offset_reset_policy = match input
        .field("offsetResetPolicy")
        .order(METADATA)
        .one_of(&["earliest", "latest"])
        .default("latest")
        .required::<String>()?
        .as_str()
    {
        "earliest" => OffsetResetPolicy::Earliest,
        _ => OffsetResetPolicy::Latest,
    };
    let flag = |name: &'static str| -> Result<bool, ScalerError> {
        input
            .field(name)
            .order(METADATA)
            .default("false")
            .required()
    };
    let allow_idle_consumers = flag("allowIdleConsumers")?;
    let exclude_persistent_lag = flag("excludePersistentLag")?;
    let scale_to_zero_on_invalid_offset = flag("scaleToZeroOnInvalidOffset")?;
    let limit_to_partitions_with_lag = flag("limitToPartitionsWithLag")?;
    let ensure_even_distribution_of_partitions = flag("ensureEvenDistributionOfPartitions")?;
    let sasl_mode: String = input
        .field("sasl")
        .order(METADATA_AUTH)
        .one_of(&[
            "none",
            "plaintext",
            "scram_sha256",
            "scram_sha512",
            "gssapi",
            "aws_msk_iam",
        ])
        .default("none")
        .required()?;
    let username: Option<String> = input.field("username").order(AUTH).optional()?;
    let password: Option<String> = input.field("password").order(AUTH).optional()?;
    let aws_region: Option<String> = input.field("awsRegion").order(METADATA).optional()?;
    let tls_mode: String = input
        .field("tls")
        .order(METADATA_AUTH)
        .one_of(&["enable", "disable"])
        .default("disable")
        .required()?;
    let cert: Option<String> = input.field("cert").order(AUTH).optional()?;
    let key: Option<String> = input.field("key").order(AUTH).optional()?;
    let key_password: Option<String> = input.field("keyPassword").order(AUTH).optional()?;
    let ca: Option<String> = input.field("ca").order(AUTH).optional()?;

    // Upstream's Validate.
    if lag_threshold <= 0 {
        return Err(input.error("lagThreshold", "lagThreshold must be a positive number"));
    }
    if activation_lag_threshold < 0 {
        return Err(input.error(
            "activationLagThreshold",
            "activationLagThreshold must be a positive number",
        ));
    }
    if allow_idle_consumers && limit_to_partitions_with_lag {
        return Err(input.error(
            "allowIdleConsumers",
            "allowIdleConsumers and limitToPartitionsWithLag cannot be set simultaneously",
        ));
    }
    if topics.is_empty() && limit_to_partitions_with_lag {
        return Err(input.error(
            "topic",
            "topic must be specified when using limitToPartitionsWithLag",
        ));
    }
    let partition_limitation = if topics.is_empty() {
        None
    } else {
        partition_limitation
    };
    let tls_enabled = tls_mode == "enable";
    if tls_enabled && cert.is_some() != key.is_some() {
        let field = if cert.is_some() { "key" } else { "cert" };
        return Err(input.error(field, "can't set only one of cert or key when using TLS"));
    }
    let sasl = match sasl_mode.as_str() {
        "plaintext" => match (&username, &password) {
            (Some(u), Some(p)) => Some(Sasl::Plain {
                username: u.clone(),
                password: p.clone(),
            }),
            _ => {
                let field = if username.is_none() {
                    "username"
                } else {
                    "password"
                };
                return Err(input.error(
                    field,
                    "username and password must be set when using SASL/PLAINTEXT",
                ));
            }
        },
        // Upstream checks no credentials for SCRAM; the broker refuses empty ones.
        "scram_sha256" => Some(Sasl::ScramSha256 {
            username: username.clone().unwrap_or_default(),
            password: password.clone().unwrap_or_default(),
        }),
        "scram_sha512" => Some(Sasl::ScramSha512 {
            username: username.clone().unwrap_or_default(),
            password: password.clone().unwrap_or_default(),
        }),
        "aws_msk_iam" => {
            if aws_region.is_none() {
                return Err(
                    input.error("awsRegion", "awsRegion must be set when using AWS MSK IAM")
                );
            }
            if !tls_enabled {
                return Err(input.error("tls", "TLS must be enabled when using AWS MSK IAM"));
            }
            Some(Sasl::OAuthBearer {
                token_provider: "aws_msk_iam".into(),
            })
        }
        "gssapi" => Some(Sasl::Gssapi),
        _ => None,
    };
    // parseApacheKafkaAuthParams: each of sasl and tls in one place only (raw values, as upstream).
    for field in ["sasl", "tls"] {
        let set = |m: &std::collections::BTreeMap<String, String>| {
            m.get(field).is_some_and(|v| !v.is_empty())
        };
        if set(input.metadata) && set(input.auth_params) {
            return Err(input.error(
                field,
                format!(
                    "unable to set `{field}` in both ScaledObject and TriggerAuthentication together"
                ),
            ));
        }
    }
    if sasl_mode == "aws_msk_iam" {
        crate::messaging::kafka::check_aws_credentials(input)?;
    }
    if bootstrap_servers.is_empty() {
        return Err(input.error("bootstrapServers", "no bootstrap servers given"));
    }
    let tls = tls_enabled.then_some(KafkaTls {
        unsafe_ssl: false,
        ca,
        cert,
        key,
        key_password,
    });
    Ok(ApacheKafkaConfig {
        trigger: input.trigger(),
        metric_type,
        connection: KafkaConnection {
            bootstrap_servers,
            sasl,
            tls,
        },
        consumer_group,
        topics,
        partition_limitation,
        lag_threshold,
        activation_lag_threshold,
        offset_reset_policy,
        allow_idle_consumers,
        exclude_persistent_lag,
        scale_to_zero_on_invalid_offset,
        limit_to_partitions_with_lag,
        ensure_even_distribution_of_partitions,
    })
}

impl ApacheKafkaConfig {
    fn partition_rules(&self) -> PartitionRules {
        PartitionRules {
            offset_reset_policy: self.offset_reset_policy,
            scale_to_zero_on_invalid_offset: self.scale_to_zero_on_invalid_offset,
            exclude_persistent_lag: self.exclude_persistent_lag,
        }
    }

    fn total_rules(&self) -> TotalRules {
        TotalRules {
            lag_threshold: self.lag_threshold,
            allow_idle_consumers: self.allow_idle_consumers,
            limit_to_partitions_with_lag: self.limit_to_partitions_with_lag,
            ensure_even_distribution_of_partitions: self.ensure_even_distribution_of_partitions,
        }
    }
}

#[async_trait::async_trait]
impl TriggerConfig for ApacheKafkaConfig {
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
            build: Some(crate::messaging::kafka::BUILD_TIMEOUT),
            sample: Some(crate::messaging::kafka::SAMPLE_TIMEOUT),
        }
    }

    async fn build(&self, ctx: &BuildContext) -> Result<Arc<dyn Scaler>, ScalerError> {
        let query = LagQuery {
            trigger: self.trigger.clone(),
            group: self.consumer_group.clone(),
            topics: self.topics.clone(),
            partition_limitation: self.partition_limitation.clone(),
            partition_rules: self.partition_rules(),
            total_rules: self.total_rules(),
            activation_lag_threshold: self.activation_lag_threshold,
            require_members: true,
            unknown_topic_is_error: false,
        };
        Ok(Arc::new(
            LagScaler::build(ctx, &self.connection, query).await?,
        ))
    }
}
