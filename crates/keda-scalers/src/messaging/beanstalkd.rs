//! `beanstalkd`: the jobs of one tube, read with `stats-tube` over beanstalkd's text protocol.
//!
//! The value is `current-jobs-ready + current-jobs-reserved`, plus `current-jobs-delayed` with
//! `includeDelayed` (buried jobs never count), as upstream. A tube the server does not know (`NOT_FOUND`:
//! no job was ever put in it and nobody watches it) is 0 jobs, not an error.
//!
//! `timeout` (milliseconds, or a Go duration; default 30, i.e. 30 ms as upstream's typed config reads it)
//! bounds the TCP connect, as upstream's dial timeout. Upstream's `stats-tube` round trip has no bound of
//! its own; keda-rs bounds it with `KEDA_HTTP_DEFAULT_TIMEOUT`. One connection per trigger is kept open;
//! after a failure it is dropped and the next poll dials again (upstream's connection stays broken).

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufStream};
use tokio::net::TcpStream;
use tokio::sync::Mutex;

use crate::input::METADATA;
use crate::{
    BuildContext, MetricSpec, MetricTargetType, Sample, Scaler, ScalerError, ScalerTimeouts,
    TimeoutDefaults, TriggerConfig, TriggerInput, TriggerRef,
};

pub const TRIGGER_TYPE: &str = "beanstalkd";

/// Longest `stats-tube` answer accepted (a real one is well under 1 KiB).
const MAX_STATS_LEN: usize = 64 * 1024;

#[derive(Clone, Debug, PartialEq)]
pub struct BeanstalkdConfig {
    pub index: usize,
    /// `host:port`, as written.
    pub server: String,
    pub tube: String,
    pub value: f64,
    pub activation_value: f64,
    pub include_delayed: bool,
    /// Connect timeout.
    pub timeout: Duration,
    pub metric_type: MetricTargetType,
}

pub fn parse(input: &TriggerInput<'_>) -> Result<Box<dyn TriggerConfig>, ScalerError> {
    Ok(Box::new(parse_config(input)?))
}

pub fn parse_config(input: &TriggerInput<'_>) -> Result<BeanstalkdConfig, ScalerError> {
    let metric_type = input.external_metric_type()?;
    let server: String = input.field("server").order(METADATA).required()?;
    let tube: String = input.field("tube").order(METADATA).required()?;
    let value: f64 = input.field("value").order(METADATA).required()?;
    let activation_value: f64 = input
        .field("activationValue")
        .order(METADATA)
        .default("0")
        .required()?;
    let include_delayed: bool = input
        .field("includeDelayed")
        .order(METADATA)
        .default("false")
        .required()?;
    let timeout: Duration = input
        .field("timeout")
        .order(METADATA)
        .default("30")
        .required()?;
    Ok(BeanstalkdConfig {
        index: input.index,
        server,
        tube,
        value,
        activation_value,
        include_delayed,
        timeout,
        metric_type,
    })
}

impl BeanstalkdConfig {
    /// The metric name before the `s<index>-` prefix: `beanstalkd-<tube, query-escaped>`.
    pub fn metric_name(&self) -> String {
        format!("beanstalkd-{}", query_escape(&self.tube))
    }
}

/// Go's `url.QueryEscape`, which upstream applies to the tube in the metric name.
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
impl TriggerConfig for BeanstalkdConfig {
    fn metric_spec(&self) -> MetricSpec {
        MetricSpec::External {
            metric_name: crate::external_metric_name(self.index, &self.metric_name()),
            target_type: self.metric_type,
            target: self.value,
        }
    }

    fn activation_threshold(&self) -> Option<f64> {
        Some(self.activation_value)
    }

    fn trigger(&self) -> TriggerRef {
        TriggerRef {
            index: self.index,
            trigger_type: TRIGGER_TYPE.into(),
        }
    }

    fn timeouts(&self, defaults: &TimeoutDefaults) -> ScalerTimeouts {
        ScalerTimeouts {
            build: Some(self.timeout),
            // A poll may have to dial again before its one round trip.
            sample: Some(self.timeout + defaults.http),
        }
    }

    async fn build(&self, ctx: &BuildContext) -> Result<Arc<dyn Scaler>, ScalerError> {
        // The tube goes on a command line: whitespace would end it early or start another command.
        if self
            .tube
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(ScalerError::Config {
                trigger: self.trigger(),
                field: "tube".into(),
                reason: format!("{:?} is not a beanstalkd tube name", self.tube),
            });
        }
        let scaler = BeanstalkdScaler {
            config: self.clone(),
            command: format!("stats-tube {}\r\n", self.tube),
            read_timeout: ctx.timeouts.http,
            conn: Mutex::new(None),
        };
        // Dial now, as upstream does, so an unreachable server fails the build.
        let conn = scaler.connect().await?;
        *scaler.conn.lock().await = Some(conn);
        Ok(Arc::new(scaler))
    }
}

struct BeanstalkdScaler {
    config: BeanstalkdConfig,
    command: String,
    read_timeout: Duration,
    conn: Mutex<Option<BufStream<TcpStream>>>,
}

/// The counters of a `stats-tube` answer the value is made of.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TubeStats {
    pub ready: u64,
    pub reserved: u64,
    pub delayed: u64,
}

impl TubeStats {
    /// Upstream's value: ready and reserved jobs, and delayed ones when asked.
    pub fn jobs(&self, include_delayed: bool) -> u64 {
        let mut jobs = self.ready + self.reserved;
        if include_delayed {
            jobs += self.delayed;
        }
        jobs
    }
}

/// Reads the counters from the YAML body of `OK <bytes>`.
pub fn parse_tube_stats(body: &[u8]) -> Result<TubeStats, String> {
    let doc: serde_yaml_ng::Value =
        serde_yaml_ng::from_slice(body).map_err(|e| format!("stats are not YAML: {e}"))?;
    let count = |key: &str| -> Result<u64, String> {
        match doc.get(key) {
            Some(v) => v
                .as_u64()
                .ok_or_else(|| format!("{key} is not a count: {v:?}")),
            None => Err(format!("stats have no {key}")),
        }
    };
    Ok(TubeStats {
        ready: count("current-jobs-ready")?,
        reserved: count("current-jobs-reserved")?,
        delayed: count("current-jobs-delayed")?,
    })
}

impl BeanstalkdScaler {
    fn backend(&self, action: &'static str, message: String) -> ScalerError {
        ScalerError::Backend {
            trigger: self.config.trigger(),
            action,
            message,
        }
    }

    async fn connect(&self) -> Result<BufStream<TcpStream>, ScalerError> {
        let server = &self.config.server;
        match tokio::time::timeout(self.config.timeout, TcpStream::connect(server.as_str())).await {
            Ok(Ok(stream)) => Ok(BufStream::new(stream)),
            Ok(Err(e)) => Err(self.backend("connecting to beanstalkd", format!("{server}: {e}"))),
            Err(_) => Err(self.backend(
                "connecting to beanstalkd",
                format!("{server}: no connection within {:?}", self.config.timeout),
            )),
        }
    }

    /// One `stats-tube` round trip; `None` for `NOT_FOUND`.
    async fn stats(&self, conn: &mut BufStream<TcpStream>) -> Result<Option<TubeStats>, String> {
        conn.write_all(self.command.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        conn.flush().await.map_err(|e| e.to_string())?;
        let mut line = String::new();
        // The status line is short; a peer that never ends it is not beanstalkd.
        let n = (&mut *conn)
            .take(256)
            .read_line(&mut line)
            .await
            .map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("connection closed by the server".into());
        }
        let status = line.trim_end();
        if status == "NOT_FOUND" {
            return Ok(None);
        }
        let Some(len) = status.strip_prefix("OK ") else {
            return Err(format!("unexpected answer {status:?}"));
        };
        let len: usize = len
            .parse()
            .map_err(|_| format!("unexpected answer {status:?}"))?;
        if len > MAX_STATS_LEN {
            return Err(format!("stats of {len} bytes, more than {MAX_STATS_LEN}"));
        }
        // The body and its trailing CRLF.
        let mut body = vec![0u8; len + 2];
        conn.read_exact(&mut body)
            .await
            .map_err(|e| e.to_string())?;
        body.truncate(len);
        parse_tube_stats(&body).map(Some)
    }
}

#[async_trait::async_trait]
impl Scaler for BeanstalkdScaler {
    async fn sample(&self) -> Result<Sample, ScalerError> {
        let mut guard = self.conn.lock().await;
        let mut conn = match guard.take() {
            Some(conn) => conn,
            None => self.connect().await?,
        };
        let stats = match tokio::time::timeout(self.read_timeout, self.stats(&mut conn)).await {
            Ok(Ok(stats)) => stats,
            Ok(Err(message)) => return Err(self.backend("reading tube stats", message)),
            Err(_) => {
                return Err(self.backend(
                    "reading tube stats",
                    format!("no answer within {:?}", self.read_timeout),
                ));
            }
        };
        // Only a connection that answered in full is kept; anything else may be mid-reply.
        *guard = Some(conn);
        let value = stats
            .map(|s| s.jobs(self.config.include_delayed))
            .unwrap_or(0) as f64;
        Ok(Sample {
            value,
            active: crate::is_active(value, self.config.activation_value),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_and_value() {
        let body = b"---\nname: default\ncurrent-jobs-urgent: 0\ncurrent-jobs-ready: 10\ncurrent-jobs-reserved: 2\ncurrent-jobs-delayed: 5\ncurrent-jobs-buried: 6\ntotal-jobs: 24\n";
        let stats = parse_tube_stats(body).expect("stats parse");
        assert_eq!(stats.jobs(false), 12);
        assert_eq!(stats.jobs(true), 17);
        assert!(parse_tube_stats(b"---\nname: x\n").is_err());
        assert!(parse_tube_stats(b"<html>").is_err());
    }

    #[test]
    fn metric_name_escapes_like_go() {
        assert_eq!(query_escape("a b$c/d_e.f~"), "a+b%24c%2Fd_e.f~");
    }
}
