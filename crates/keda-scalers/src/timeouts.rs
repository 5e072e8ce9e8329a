//! How long the operator waits for one trigger: around `TriggerConfig::build` (connect) and around one
//! `Scaler::sample`.
//!
//! Upstream puts no deadline around a poll: each scaler is bounded by its own client. keda-rs keeps those
//! client timeouts and also reports them through [`TriggerConfig::timeouts`], so the caller can put one
//! outer bound around each step without cutting a trigger short:
//!
//! | trigger types | build | sample |
//! |---|---|---|
//! | `prometheus`, `metrics-api`, `datadog` | no IO | the trigger's `timeout` (milliseconds, or a Go duration such as `10s`; absent or 0: `KEDA_HTTP_DEFAULT_TIMEOUT`) |
//! | `metrics-api` with `aggregateFromKubeServiceEndpoints` | no IO | no outer bound: the EndpointSlice listing and each endpoint's request are bounded by the trigger's timeout, so one slow endpoint is left out of the aggregate (as upstream) instead of failing the poll |
//! | `new-relic` | no IO | 30 s, newrelic-client-go's own client timeout (upstream does not use `KEDA_HTTP_DEFAULT_TIMEOUT` here) |
//! | `redis*` | 15 s: two connection attempts of 5 s and a `PING` of 3 s (go-redis' dial and read timeouts) | a reconnection (10 s, a sentinel lookup included) plus 3 s per command |
//! | `postgresql` | the connection string's `connect_timeout` (default 10 s) per host | connect bound + [`SQL_QUERY_TIMEOUT`] |
//! | `mysql` | the DSN's `timeout` (default 10 s) | connect bound + the DSN's `readTimeout`, or [`SQL_QUERY_TIMEOUT`] |
//! | `kubernetes-workload`, `kubernetes-resource` | no IO | `KEDA_HTTP_DEFAULT_TIMEOUT` for the one pod LIST or ConfigMap/Secret GET (upstream reads its cache, unbounded) |
//! | `beanstalkd` | the trigger's `timeout` (the connect; milliseconds or a Go duration, default 30 ms as upstream) | `timeout` (a new connection after a failure) plus `KEDA_HTTP_DEFAULT_TIMEOUT` for the `stats-tube` round trip, which upstream leaves unbounded |
//! | `nats-jetstream` | no IO | 8 × `KEDA_HTTP_DEFAULT_TIMEOUT`: each request has the HTTP timeout, and finding a consumer's leader in a 3-node cluster takes up to 8 requests |
//! | `nsq` | no IO | 2 × `KEDA_HTTP_DEFAULT_TIMEOUT`: each request has the HTTP timeout; the `/lookup` requests go out together, then the nsqd `/stats` requests together |
//! | `rabbitmq` over AMQP | 30 s (amqp091-go's dial timeout) for TCP, TLS and the AMQP handshake | a reconnection (30 s) plus 10 s for the passive `queue.declare`, which upstream leaves unbounded |
//! | `rabbitmq` over HTTP | no IO | the trigger's `timeout` (absent or 0: `KEDA_HTTP_DEFAULT_TIMEOUT`) |
//! | `etcd` | no IO (channels connect on first use) | 5 s, upstream's bound of one `Get`, connecting and authenticating included |
//! | `kafka`, `apache-kafka` | 20 s: one connection to a bootstrap server (TCP, TLS, ApiVersions, SASL) is bounded by 10 s, so a second server gets its chance | 30 s (sarama's read timeout): a reconnection plus 10 s per request (Metadata, FindCoordinator, OffsetFetch and ListOffsets) |
//! | `cron`, `cpu`, `memory` | no IO | no IO (cpu and memory are read by the HPA, never sampled for a value) |
//!
//! Upstream lets SQL queries run without any limit; keda-rs bounds them (see [`SQL_QUERY_TIMEOUT`]). A
//! query that runs past the bound is abandoned, not cancelled: the server still finishes it. To stop it
//! there, set a server-side limit (PostgreSQL `options=-c statement_timeout=…`, MySQL `max_execution_time`).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::{BuildContext, SampleReport, Scaler, ScalerError, TriggerConfig};

/// `KEDA_HTTP_DEFAULT_TIMEOUT`'s default (upstream's `GlobalHTTPTimeout`): 3 s.
pub const DEFAULT_HTTP_TIMEOUT: Duration = Duration::from_millis(3000);

/// Bound of one SQL query (`postgresql`, `mysql` without `readTimeout`), where upstream has none: the
/// default `pollingInterval`, so a hung query costs at most one poll.
pub const SQL_QUERY_TIMEOUT: Duration = Duration::from_secs(30);

/// Operator-wide settings the bounds derive from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeoutDefaults {
    /// `KEDA_HTTP_DEFAULT_TIMEOUT` (milliseconds in the environment): the HTTP client timeout of
    /// `prometheus`, `metrics-api` and `datadog` triggers without a `timeout` of their own.
    pub http: Duration,
}

impl Default for TimeoutDefaults {
    fn default() -> Self {
        TimeoutDefaults {
            http: DEFAULT_HTTP_TIMEOUT,
        }
    }
}

impl TimeoutDefaults {
    /// The defaults for `KEDA_HTTP_DEFAULT_TIMEOUT=<millis>`.
    pub fn from_http_millis(millis: u64) -> TimeoutDefaults {
        TimeoutDefaults {
            http: Duration::from_millis(millis),
        }
    }
}

/// The bounds of one trigger, from [`TriggerConfig::timeouts`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScalerTimeouts {
    /// Around `TriggerConfig::build`; `None` when building opens no connection (HTTP clients are created
    /// lazily and connect during sampling).
    pub build: Option<Duration>,
    /// Around one `Scaler::sample`; `None` when sampling does no IO (`cron`, `cpu`, `memory`).
    pub sample: Option<Duration>,
}

impl ScalerTimeouts {
    /// Neither step does IO.
    pub const NO_IO: ScalerTimeouts = ScalerTimeouts {
        build: None,
        sample: None,
    };

    /// An HTTP trigger: no IO at build, one request per sample bounded by `request`.
    pub fn http(request: Duration) -> ScalerTimeouts {
        ScalerTimeouts {
            build: None,
            sample: Some(request),
        }
    }
}

async fn bounded<T>(
    bound: Option<Duration>,
    config: &dyn TriggerConfig,
    action: &'static str,
    fut: impl Future<Output = Result<T, ScalerError>>,
) -> Result<T, ScalerError> {
    match bound {
        None => fut.await,
        Some(d) => tokio::time::timeout(d, fut)
            .await
            .unwrap_or_else(|_| Err(timed_out(config, action, d))),
    }
}

fn timed_out(config: &dyn TriggerConfig, action: &'static str, bound: Duration) -> ScalerError {
    ScalerError::Backend {
        trigger: config.trigger(),
        action,
        message: format!("no answer within {bound:?}"),
    }
}

/// `config.build(ctx)` within `config.timeouts(&ctx.timeouts).build`. Running out of time is a
/// `ScalerError::Backend` (transient) whose action is `building the scaler`.
pub async fn build_with_timeout(
    config: &dyn TriggerConfig,
    ctx: &BuildContext,
) -> Result<Arc<dyn Scaler>, ScalerError> {
    let bound = config.timeouts(&ctx.timeouts).build;
    bounded(bound, config, "building the scaler", config.build(ctx)).await
}

/// One `scaler.sample_report()` within `config.timeouts(defaults).sample`, where `scaler` was built from
/// `config`. Running out of time gives a `ScalerError::Backend` (transient) whose action is
/// `sampling the scaler`, and no empty-response report.
pub async fn sample_with_timeout(
    config: &dyn TriggerConfig,
    scaler: &dyn Scaler,
    defaults: &TimeoutDefaults,
) -> SampleReport {
    let Some(bound) = config.timeouts(defaults).sample else {
        return scaler.sample_report().await;
    };
    match tokio::time::timeout(bound, scaler.sample_report()).await {
        Ok(report) => report,
        Err(_) => SampleReport {
            result: Err(timed_out(config, "sampling the scaler", bound)),
            empty_upstream_response: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EmptyUpstreamResponse, MetricSpec, MetricTargetType, Sample, TriggerRef};

    /// A trigger whose build and sample take `delay`, bounded by `bound`.
    #[derive(Debug)]
    struct Slow {
        delay: Duration,
        bound: Option<Duration>,
    }

    #[async_trait::async_trait]
    impl TriggerConfig for Slow {
        fn metric_spec(&self) -> MetricSpec {
            MetricSpec::External {
                metric_name: "s0-slow".into(),
                target_type: MetricTargetType::AverageValue,
                target: 1.0,
            }
        }

        fn trigger(&self) -> TriggerRef {
            TriggerRef {
                index: 0,
                trigger_type: "slow".into(),
            }
        }

        fn timeouts(&self, _defaults: &TimeoutDefaults) -> ScalerTimeouts {
            ScalerTimeouts {
                build: self.bound,
                sample: self.bound,
            }
        }

        async fn build(&self, _ctx: &BuildContext) -> Result<Arc<dyn Scaler>, ScalerError> {
            tokio::time::sleep(self.delay).await;
            Ok(Arc::new(SlowScaler(self.delay)))
        }
    }

    struct SlowScaler(Duration);

    #[async_trait::async_trait]
    impl Scaler for SlowScaler {
        async fn sample(&self) -> Result<Sample, ScalerError> {
            self.sample_report().await.result
        }

        async fn sample_report(&self) -> SampleReport {
            tokio::time::sleep(self.0).await;
            SampleReport {
                result: Ok(Sample {
                    value: 1.0,
                    active: true,
                }),
                empty_upstream_response: Some(EmptyUpstreamResponse {
                    ignore_null_values: true,
                }),
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn steps_within_their_bound_complete() {
        let ctx = BuildContext::default();
        let config = Slow {
            delay: Duration::from_secs(9),
            bound: Some(Duration::from_secs(10)),
        };
        let scaler = build_with_timeout(&config, &ctx).await.expect("build");
        let report = sample_with_timeout(&config, &*scaler, &ctx.timeouts).await;
        assert_eq!(report.result.expect("sample").value, 1.0);
        assert!(report.empty_upstream_response.is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn steps_past_their_bound_are_transient_errors() {
        let ctx = BuildContext::default();
        let config = Slow {
            delay: Duration::from_secs(11),
            bound: Some(Duration::from_secs(10)),
        };
        let Err(err) = build_with_timeout(&config, &ctx).await else {
            panic!("build outlived its bound");
        };
        assert_eq!(err.category(), "backend");
        assert_eq!(
            err.to_string(),
            "trigger 0 (slow): building the scaler: no answer within 10s"
        );
        let scaler = SlowScaler(Duration::from_secs(11));
        let report = sample_with_timeout(&config, &scaler, &ctx.timeouts).await;
        let err = report.result.expect_err("sample outlived its bound");
        assert!(!err.is_permanent());
        assert_eq!(
            err.to_string(),
            "trigger 0 (slow): sampling the scaler: no answer within 10s"
        );
        assert_eq!(report.empty_upstream_response, None);
    }

    #[tokio::test(start_paused = true)]
    async fn steps_without_io_are_not_bounded() {
        let ctx = BuildContext::default();
        let config = Slow {
            delay: Duration::from_secs(3600),
            bound: None,
        };
        let scaler = build_with_timeout(&config, &ctx).await.expect("build");
        let report = sample_with_timeout(&config, &*scaler, &ctx.timeouts).await;
        assert!(report.result.is_ok());
    }

    #[test]
    fn the_http_default_is_keda_http_default_timeout() {
        assert_eq!(TimeoutDefaults::default().http, Duration::from_secs(3));
        assert_eq!(
            TimeoutDefaults::from_http_millis(10_000).http,
            Duration::from_secs(10)
        );
        assert_eq!(BuildContext::default().timeouts, TimeoutDefaults::default());
    }
}
