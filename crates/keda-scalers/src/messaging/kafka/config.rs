//! The `kafka` trigger's settings, read and checked as upstream's `kafkaMetadata` (typed config, then
//! `Validate`), with its messages.

use crate::input::{AUTH, METADATA, METADATA_AUTH, METADATA_ENV};
use crate::{MetricTargetType, ScalerError, TriggerInput, TriggerRef, external_metric_name};

use super::lag::{OffsetResetPolicy, PartitionRules, TotalRules};

/// How the client authenticates (`sasl`). OAUTHBEARER and GSSAPI are parsed as upstream (so `keda lint`
/// and the webhook agree with it) but refused when the scaler is built.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Sasl {
    Plain {
        username: String,
        password: String,
    },
    ScramSha256 {
        username: String,
        password: String,
    },
    ScramSha512 {
        username: String,
        password: String,
    },
    /// `oauthbearer` (token provider `bearer` or `aws_msk_iam`).
    OAuthBearer {
        token_provider: String,
    },
    Gssapi,
}

impl Sasl {
    /// The SASL mechanism name the broker knows.
    pub fn mechanism(&self) -> &'static str {
        match self {
            Sasl::Plain { .. } => "PLAIN",
            Sasl::ScramSha256 { .. } => "SCRAM-SHA-256",
            Sasl::ScramSha512 { .. } => "SCRAM-SHA-512",
            Sasl::OAuthBearer { .. } => "OAUTHBEARER",
            Sasl::Gssapi => "GSSAPI",
        }
    }
}

/// TLS towards the brokers (`tls: enable`). Certificates and keys are PEM text from the
/// TriggerAuthentication, as upstream.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct KafkaTls {
    pub unsafe_ssl: bool,
    pub ca: Option<String>,
    pub cert: Option<String>,
    pub key: Option<String>,
    pub key_password: Option<String>,
}

/// Where and as whom to connect: triggers with equal settings share one client.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct KafkaConnection {
    pub bootstrap_servers: Vec<String>,
    pub sasl: Option<Sasl>,
    pub tls: Option<KafkaTls>,
}

impl std::fmt::Debug for KafkaConnection {
    /// Without credentials or keys.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaConnection")
            .field("bootstrap_servers", &self.bootstrap_servers)
            .field("sasl", &self.sasl.as_ref().map(Sasl::mechanism))
            .field("tls", &self.tls.as_ref().map(|t| t.unsafe_ssl))
            .finish()
    }
}

/// A parsed `kafka` trigger.
#[derive(Clone, Debug, PartialEq)]
pub struct KafkaConfig {
    pub trigger: TriggerRef,
    pub metric_type: MetricTargetType,
    pub connection: KafkaConnection,
    pub consumer_group: String,
    /// `None`: every topic the group has committed offsets for.
    pub topic: Option<String>,
    /// Only these partitions count (`partitionLimitation`); `None`: all. Ignored without a topic.
    pub partition_limitation: Option<Vec<i32>>,
    pub lag_threshold: i64,
    pub activation_lag_threshold: i64,
    pub offset_reset_policy: OffsetResetPolicy,
    pub allow_idle_consumers: bool,
    pub exclude_persistent_lag: bool,
    pub scale_to_zero_on_invalid_offset: bool,
    pub limit_to_partitions_with_lag: bool,
    pub ensure_even_distribution_of_partitions: bool,
    /// `version` as written (checked as sarama's `ParseKafkaVersion`); keda-rs negotiates each API
    /// version with the broker instead of using it.
    pub version: Option<String>,
}

impl KafkaConfig {
    /// `s<index>-kafka-<topic>`, or `s<index>-kafka-<group>-topics` without a topic.
    pub fn metric_name(&self) -> String {
        let raw = match &self.topic {
            Some(t) => format!("kafka-{t}"),
            None => format!("kafka-{}-topics", self.consumer_group),
        };
        external_metric_name(self.trigger.index, &raw)
    }

    pub fn partition_rules(&self) -> PartitionRules {
        PartitionRules {
            offset_reset_policy: self.offset_reset_policy,
            scale_to_zero_on_invalid_offset: self.scale_to_zero_on_invalid_offset,
            exclude_persistent_lag: self.exclude_persistent_lag,
        }
    }

    pub fn total_rules(&self) -> TotalRules {
        TotalRules {
            lag_threshold: self.lag_threshold,
            allow_idle_consumers: self.allow_idle_consumers,
            limit_to_partitions_with_lag: self.limit_to_partitions_with_lag,
            ensure_even_distribution_of_partitions: self.ensure_even_distribution_of_partitions,
        }
    }
}

/// A comma-separated list, trimmed, empty items dropped.
pub(crate) fn split_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The most partitions one range of `partitionLimitation` may name (Kafka clusters stay far below).
const MAX_PARTITIONS: i64 = 1_000_000;

/// `partitionLimitation`: `1,2,3`, ranges `1-4`, or both (`1-4,8,10-12`).
pub fn parse_partition_limitation(s: &str) -> Result<Vec<i32>, String> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim) {
        let int = |v: &str| {
            v.trim()
                .parse::<i32>()
                .map_err(|_| format!("invalid partition limitation: {part}"))
        };
        if part.contains('-') {
            let bounds: Vec<&str> = part.split('-').collect();
            if bounds.len() != 2 {
                return Err(format!("invalid partition limitation range: {part}"));
            }
            let (start, end) = (int(bounds[0])?, int(bounds[1])?);
            // A typo such as `0-2147483647` must not allocate gigabytes.
            if i64::from(end) - i64::from(start) >= MAX_PARTITIONS {
                return Err(format!(
                    "invalid partition limitation range: {part} (more than {MAX_PARTITIONS} partitions)"
                ));
            }
            out.extend(start..=end);
        } else {
            out.push(int(part)?);
        }
    }
    Ok(out)
}

/// sarama's `ParseKafkaVersion`: `x.y.z`, or `0.x.y.z` for versions before 1.0.
pub fn check_version(s: &str) -> Result<(), String> {
    let parts: Vec<&str> = s.split('.').collect();
    let numeric = parts
        .iter()
        .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    let shape = if s.starts_with('0') { 4 } else { 3 };
    if s.len() < 5 || !numeric || parts.len() != shape {
        return Err(format!(
            "error parsing kafka version: invalid version `{s}`"
        ));
    }
    Ok(())
}

pub fn parse_config(input: &TriggerInput<'_>) -> Result<KafkaConfig, ScalerError> {
    let metric_type = input.external_metric_type()?;
    let bootstrap_servers = split_list(
        &input
            .field("bootstrapServers")
            .order(METADATA_ENV)
            .required::<String>()?,
    );
    let consumer_group: String = input
        .field("consumerGroup")
        .order(METADATA_ENV)
        .required()?;
    let topic: Option<String> = input.field("topic").order(METADATA_ENV).optional()?;
    let partition_limitation: Option<String> = input
        .field("partitionLimitation")
        .order(METADATA)
        .optional()?;
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
        .one_of(&["latest", "earliest"])
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
    let version: Option<String> = input.field("version").order(METADATA).optional()?;

    let tls_mode: String = input
        .field("tls")
        .order(METADATA_AUTH)
        .one_of(&["enable", "disable"])
        .default("disable")
        .required()?;
    let unsafe_ssl = flag("unsafeSsl")?;
    let ca: Option<String> = input.field("ca").order(AUTH).optional()?;
    let cert: Option<String> = input.field("cert").order(AUTH).optional()?;
    let key: Option<String> = input.field("key").order(AUTH).optional()?;
    let key_password: Option<String> = input.field("keyPassword").order(AUTH).optional()?;

    let sasl_mode: Option<String> = input
        .field("sasl")
        .order(METADATA_AUTH)
        .one_of(&[
            "none",
            "plaintext",
            "scram_sha256",
            "scram_sha512",
            "oauthbearer",
            "gssapi",
        ])
        .optional()?;
    let username: Option<String> = input.field("username").order(AUTH).optional()?;
    let password: Option<String> = input.field("password").order(AUTH).optional()?;
    let token_provider: Option<String> = input
        .field("saslTokenProvider")
        .order(METADATA_AUTH)
        .one_of(&["bearer", "aws_msk_iam"])
        .optional()?;
    let _scopes: Option<String> = input.field("scopes").order(AUTH).optional()?;
    let token_endpoint: Option<String> = input
        .field("oauthTokenEndpointUri")
        .order(AUTH)
        .optional()?;
    let extensions: Option<String> = input.field("oauthExtensions").order(AUTH).optional()?;
    let keytab: Option<String> = input.field("keytab").order(AUTH).optional()?;
    let realm: Option<String> = input.field("realm").order(AUTH).optional()?;
    let kerberos_config: Option<String> = input.field("kerberosConfig").order(AUTH).optional()?;
    let _service: Option<String> = input.field("kerberosServiceName").order(AUTH).optional()?;
    let _disable_fast: bool = input
        .field("kerberosDisableFAST")
        .order(AUTH)
        .default("false")
        .required()?;
    let aws_region: Option<String> = input.field("awsRegion").order(METADATA).optional()?;

    // Upstream's Validate, in its order.
    if lag_threshold <= 0 {
        return Err(input.error("lagThreshold", "\"lagThreshold\" must be positive number"));
    }
    if activation_lag_threshold < 0 {
        return Err(input.error(
            "activationLagThreshold",
            "\"activationLagThreshold\" must be a non-negative number",
        ));
    }
    let mut partition_limitation = match partition_limitation {
        Some(s) => Some(
            parse_partition_limitation(&s).map_err(|r| input.error("partitionLimitation", r))?,
        ),
        None => None,
    };
    if topic.is_none() {
        partition_limitation = None;
    }
    if allow_idle_consumers && limit_to_partitions_with_lag {
        return Err(input.error(
            "allowIdleConsumers",
            "allowIdleConsumers and limitToPartitionsWithLag cannot be set simultaneously",
        ));
    }
    if topic.is_none() && limit_to_partitions_with_lag {
        return Err(input.error(
            "topic",
            "topic must be specified when using limitToPartitionsWithLag",
        ));
    }
    if limit_to_partitions_with_lag && ensure_even_distribution_of_partitions {
        return Err(input.error(
            "ensureEvenDistributionOfPartitions",
            "limitToPartitionsWithLag and ensureEvenDistributionOfPartitions cannot be set simultaneously",
        ));
    }
    if topic.is_none() && ensure_even_distribution_of_partitions {
        return Err(input.error(
            "topic",
            "topic must be specified when using ensureEvenDistributionOfPartitions",
        ));
    }
    let tls = if tls_mode == "enable" {
        if cert.is_some() && key.is_none() {
            return Err(input.error("key", "key must be provided with cert"));
        }
        if key.is_some() && cert.is_none() {
            return Err(input.error("cert", "cert must be provided with key"));
        }
        Some(KafkaTls {
            unsafe_ssl,
            ca,
            cert,
            key,
            key_password,
        })
    } else {
        None
    };
    let credentials = || -> Result<(String, String), ScalerError> {
        let user = username
            .clone()
            .ok_or_else(|| input.error("username", "no username given"))?;
        let pass = password
            .clone()
            .ok_or_else(|| input.error("password", "no password given"))?;
        Ok((user, pass))
    };
    let sasl = match sasl_mode.as_deref() {
        None | Some("none") => None,
        Some("plaintext") => {
            let (username, password) = credentials()?;
            Some(Sasl::Plain { username, password })
        }
        Some("scram_sha256") => {
            let (username, password) = credentials()?;
            Some(Sasl::ScramSha256 { username, password })
        }
        Some("scram_sha512") => {
            let (username, password) = credentials()?;
            Some(Sasl::ScramSha512 { username, password })
        }
        Some("oauthbearer") => {
            let provider = token_provider.unwrap_or_else(|| "bearer".to_owned());
            if provider == "aws_msk_iam" {
                if tls.is_none() {
                    return Err(input.error("tls", "TLS is required for AWS MSK authentication"));
                }
                if aws_region.is_none() {
                    return Err(input.error("awsRegion", "no awsRegion given"));
                }
                check_aws_credentials(input)?;
            } else {
                let oauth = |field: &str, reason: &str| {
                    input.error(
                        field,
                        format!("error parsing OAuth token provider configuration: {reason}"),
                    )
                };
                if username.is_none() {
                    return Err(oauth("username", "no username given"));
                }
                if password.is_none() {
                    return Err(oauth("password", "no password given"));
                }
                if token_endpoint.is_none() {
                    return Err(oauth(
                        "oauthTokenEndpointUri",
                        "no oauth token endpoint uri given",
                    ));
                }
                if let Some(ext) = &extensions
                    && ext.split(',').any(|kv| kv.split('=').count() != 2)
                {
                    return Err(oauth(
                        "oauthExtensions",
                        "invalid OAuthBearer extension, must be of format key=value",
                    ));
                }
            }
            Some(Sasl::OAuthBearer {
                token_provider: provider,
            })
        }
        _ => {
            // gssapi
            if username.is_none() {
                return Err(input.error("username", "no username given"));
            }
            if password.is_some() == keytab.is_some() {
                return Err(input.error(
                    "password",
                    "exactly one of 'password' or 'keytab' must be provided for GSSAPI authentication",
                ));
            }
            if realm.is_none() {
                return Err(input.error("realm", "no realm given"));
            }
            if kerberos_config.is_none() {
                return Err(input.error(
                    "kerberosConfig",
                    "no Kerberos configuration file (kerberosConfig) given",
                ));
            }
            Some(Sasl::Gssapi)
        }
    };
    if let Some(v) = &version {
        check_version(v).map_err(|r| input.error("version", r))?;
    }
    if bootstrap_servers.is_empty() {
        return Err(input.error("bootstrapServers", "no bootstrap servers given"));
    }
    Ok(KafkaConfig {
        trigger: input.trigger(),
        metric_type,
        connection: KafkaConnection {
            bootstrap_servers,
            sasl,
            tls,
        },
        consumer_group,
        topic,
        partition_limitation,
        lag_threshold,
        activation_lag_threshold,
        offset_reset_policy,
        allow_idle_consumers,
        exclude_persistent_lag,
        scale_to_zero_on_invalid_offset,
        limit_to_partitions_with_lag,
        ensure_even_distribution_of_partitions,
        version,
    })
}

/// Upstream resolves AWS credentials for MSK IAM at parse time: static keys or a role.
pub fn check_aws_credentials(input: &TriggerInput<'_>) -> Result<(), ScalerError> {
    let get = |name: &'static str| input.field(name).order(AUTH).optional::<String>();
    let role = get("awsRoleArn")?;
    let key_id = get("awsAccessKeyID")?;
    let secret = get("awsSecretAccessKey")?;
    if role.is_some() || (key_id.is_some() && secret.is_some()) {
        return Ok(());
    }
    if key_id.is_some() {
        return Err(input.error("awsSecretAccessKey", "awsSecretAccessKey not found"));
    }
    Err(input.error(
        "awsAccessKeyID",
        "awsAccessKeyID not found: give awsAccessKeyID and awsSecretAccessKey, or awsRoleArn",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Upstream's TestKafkaParsePartitionLimitation.
    #[test]
    fn partition_limitation() {
        let ok: &[(&str, &[i32])] = &[
            ("1", &[1]),
            ("1,2,3,4", &[1, 2, 3, 4]),
            (" 1 , 2 , 3 ", &[1, 2, 3]),
            ("1-4", &[1, 2, 3, 4]),
            ("3-3", &[3]),
            (" 1 - 4 ", &[1, 2, 3, 4]),
            ("1-4,8,10-12", &[1, 2, 3, 4, 8, 10, 11, 12]),
        ];
        for (input, want) in ok {
            assert_eq!(
                parse_partition_limitation(input).as_deref(),
                Ok(*want),
                "{input}"
            );
        }
        for bad in ["a,b,c", "1-2-3", "a-3", "1-b", "0-2147483647"] {
            assert!(parse_partition_limitation(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn versions_as_sarama_reads_them() {
        for ok in ["1.0.0", "2.8.1", "3.9.0", "0.10.2.0", "0.11.0.2"] {
            assert_eq!(check_version(ok), Ok(()), "{ok}");
        }
        for bad in ["1.2.3.4", "1.0", "0.10.2", "abc", "1.x.0", "1..0"] {
            assert!(check_version(bad).is_err(), "{bad}");
        }
    }
}
