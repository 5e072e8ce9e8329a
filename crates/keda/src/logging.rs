//! Logs of the three processes: upstream's zap flags (`--zap-log-level`, `--zap-encoder`,
//! `--zap-time-encoding`, `--zap-devel`) mapped onto tracing-subscriber. `json` writes one object per
//! line with zap's keys (`level`, `ts`, `logger`, `msg`, then the event's and its spans' fields);
//! `console` is tracing-subscriber's text. Colour only when stderr is a terminal (and `NO_COLOR` is not
//! set), so a log file or a pipe never holds escape sequences. `RUST_LOG`, when set, chooses the levels
//! instead of `--zap-log-level`.

use std::fmt;
use std::io::IsTerminal;

use chrono::{DateTime, Utc};
use clap::Args;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::time::FormatTime;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// upstream's logging flags (controller-runtime's zap options), shared by the three processes.
#[derive(Args, Clone, Debug, Default)]
pub struct LogArgs {
    /// Log level: debug, info, error (upstream's names; warn too) or an integer ≥ 1 (1: debug, 2 and
    /// more: trace). `RUST_LOG`, when set, wins. [default: info]
    #[arg(long, value_name = "LEVEL", value_parser = parse_level)]
    pub zap_log_level: Option<Level>,
    /// Log format: console or json (zap's keys). [default: console]
    #[arg(long, value_name = "ENCODER", value_parser = parse_encoder)]
    pub zap_encoder: Option<Encoder>,
    /// Time format: rfc3339, rfc3339nano, iso8601, millis, nanos or epoch (any other value: epoch, as
    /// upstream). [default: rfc3339]
    #[arg(long, value_name = "ENCODING", value_parser = parse_time_encoding)]
    pub zap_time_encoding: Option<TimeEncoding>,
    /// Development defaults (console, debug) for what the flags above leave unset.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL", value_parser = crate::flags::parse_go_bool)]
    pub zap_devel: Option<bool>,
    /// upstream prints stack traces from this level on; keda-rs has none (named in the start warning).
    #[arg(long, hide = true)]
    pub zap_stacktrace_level: Option<String>,
}

/// A level as zap reads `--zap-log-level`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Error,
    Warn,
    Info,
    Debug,
    /// An integer ≥ 2 (zap's custom debug levels -2, -3, …).
    Verbose(u8),
}

impl Level {
    /// The filter this level stands for: keda-rs's own targets at the level, libraries (kube, hyper, …)
    /// at info when we debug (their debug output is per request) and at debug beyond.
    pub fn directives(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warn => "warn",
            Level::Info => "info",
            Level::Debug => "info,keda=debug",
            Level::Verbose(_) => "debug,keda=trace",
        }
    }
}

/// controller-runtime's rule: debug, info, error, or an integer > 0; `warn` is accepted as well.
pub fn parse_level(s: &str) -> Result<Level, String> {
    match s.to_ascii_lowercase().as_str() {
        "debug" => Ok(Level::Debug),
        "info" => Ok(Level::Info),
        "warn" | "warning" => Ok(Level::Warn),
        "error" | "panic" => Ok(Level::Error),
        other => match other.parse::<i64>() {
            Ok(1) => Ok(Level::Debug),
            Ok(n) if n > 1 => Ok(Level::Verbose(u8::try_from(n).unwrap_or(u8::MAX))),
            _ => Err(format!(
                "invalid log level {s:?}: debug, info, warn, error or an integer > 0"
            )),
        },
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Encoder {
    #[default]
    Console,
    Json,
}

pub fn parse_encoder(s: &str) -> Result<Encoder, String> {
    match s.to_ascii_lowercase().as_str() {
        "console" => Ok(Encoder::Console),
        "json" => Ok(Encoder::Json),
        _ => Err(format!("invalid encoder value {s:?}: console or json")),
    }
}

/// zap's time encoders.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TimeEncoding {
    /// `2006-01-02T15:04:05Z07:00`
    #[default]
    Rfc3339,
    /// RFC 3339 with the nanoseconds, trailing zeros dropped.
    Rfc3339Nano,
    /// `2006-01-02T15:04:05.000Z0700`
    Iso8601,
    /// Milliseconds since the epoch (a float).
    Millis,
    /// Nanoseconds since the epoch (an integer).
    Nanos,
    /// Seconds since the epoch (a float).
    Epoch,
}

/// controller-runtime's mapping: an unknown name is epoch; `nano` is taken for `nanos`.
pub fn parse_time_encoding(s: &str) -> Result<TimeEncoding, String> {
    Ok(match s.to_ascii_lowercase().as_str() {
        "rfc3339" => TimeEncoding::Rfc3339,
        "rfc3339nano" => TimeEncoding::Rfc3339Nano,
        "iso8601" => TimeEncoding::Iso8601,
        "millis" => TimeEncoding::Millis,
        "nanos" | "nano" => TimeEncoding::Nanos,
        _ => TimeEncoding::Epoch,
    })
}

impl TimeEncoding {
    /// The `ts` value of a JSON line: a string, or a number for the epoch encodings (as zap writes them).
    pub fn json(self, t: DateTime<Utc>) -> serde_json::Value {
        let secs = t.timestamp() as f64 + f64::from(t.timestamp_subsec_nanos()) / 1e9;
        match self {
            TimeEncoding::Epoch => serde_json::json!(secs),
            TimeEncoding::Millis => serde_json::json!(
                t.timestamp_millis() as f64
                    + f64::from(t.timestamp_subsec_nanos() % 1_000_000) / 1e6
            ),
            TimeEncoding::Nanos => serde_json::json!(t.timestamp_nanos_opt().unwrap_or_default()),
            _ => serde_json::Value::String(self.text(t)),
        }
    }

    /// The time as text (console lines).
    pub fn text(self, t: DateTime<Utc>) -> String {
        match self {
            TimeEncoding::Rfc3339 => t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            TimeEncoding::Rfc3339Nano => {
                let nanos = format!("{:09}", t.timestamp_subsec_nanos());
                let nanos = nanos.trim_end_matches('0');
                let dot = if nanos.is_empty() { "" } else { "." };
                format!("{}{dot}{nanos}Z", t.format("%Y-%m-%dT%H:%M:%S"))
            }
            TimeEncoding::Iso8601 => t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
            TimeEncoding::Epoch | TimeEncoding::Millis | TimeEncoding::Nanos => {
                self.json(t).to_string()
            }
        }
    }
}

/// What [`LogArgs`] resolve to.
#[derive(Clone, Debug, PartialEq)]
pub struct LogSettings {
    /// An `EnvFilter` directive string.
    pub filter: String,
    pub encoder: Encoder,
    pub time: TimeEncoding,
}

impl LogArgs {
    /// The settings, with `rust_log` (the `RUST_LOG` variable) choosing the levels when it is set.
    pub fn settings(&self, rust_log: Option<&str>) -> LogSettings {
        let devel = self.zap_devel == Some(true);
        let level = self
            .zap_log_level
            .unwrap_or(if devel { Level::Debug } else { Level::Info });
        LogSettings {
            filter: match rust_log.map(str::trim).filter(|s| !s.is_empty()) {
                Some(r) => r.to_owned(),
                None => level.directives().to_owned(),
            },
            encoder: self.zap_encoder.unwrap_or_default(),
            time: self.zap_time_encoding.unwrap_or_default(),
        }
    }
}

/// Whether stderr takes colour: a terminal, and `NO_COLOR` not set.
fn colour() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Installs the process's logger (stderr). Later calls do nothing.
pub fn init(args: &LogArgs) {
    let settings = args.settings(std::env::var("RUST_LOG").ok().as_deref());
    let filter = tracing_subscriber::EnvFilter::try_new(&settings.filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match settings.encoder {
        Encoder::Json => builder
            .fmt_fields(JsonFields::new())
            .event_format(ZapJson {
                time: settings.time,
            })
            .try_init(),
        Encoder::Console => builder
            .with_ansi(colour())
            .with_timer(ZapTime(settings.time))
            .try_init(),
    };
}

/// The first line of a process: which one, and its version (upstream logs its version at start too,
/// with logger `setup`, as these lines are).
pub fn starting(process: &str) {
    tracing::info!(
        target: "setup",
        version = env!("CARGO_PKG_VERSION"),
        "Starting keda-rs {process}"
    );
}

/// How a process that ends with an error says so: a log line once the logger runs (so a JSON log stays
/// JSON), stderr before.
pub fn fatal(process: &str, error: &anyhow::Error) {
    let text = error_chain(error);
    if tracing::dispatcher::has_been_set() {
        tracing::error!(target: "setup", error = text, "keda {process} stopped");
    } else {
        eprintln!("keda {process}: {text}");
    }
}

/// An error and its causes, each once: a cause whose text the message before it already holds (many
/// errors print their source) is left out.
pub fn error_chain(error: &anyhow::Error) -> String {
    let mut text = String::new();
    let mut last = String::new();
    for cause in error.chain() {
        let msg = cause.to_string();
        if !last.contains(&msg) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&msg);
        }
        last = msg;
    }
    text
}

/// The console format's timestamps in the chosen encoding.
struct ZapTime(TimeEncoding);

impl FormatTime for ZapTime {
    fn format_time(&self, w: &mut Writer<'_>) -> fmt::Result {
        write!(w, "{}", self.0.text(Utc::now()))
    }
}

/// One JSON object per event: `level`, `ts`, `logger` (the target), `msg`, then the fields of the
/// event's spans (outermost first) and of the event, the event's winning on a clash.
pub struct ZapJson {
    pub time: TimeEncoding,
}

/// zap's lower-case level names; tracing's TRACE (only enabled at `--zap-log-level` ≥ 2) is written as
/// `debug`, the most verbose name zap consumers know.
fn level_name(level: &tracing::Level) -> &'static str {
    match *level {
        tracing::Level::ERROR => "error",
        tracing::Level::WARN => "warn",
        tracing::Level::INFO => "info",
        _ => "debug",
    }
}

impl<S> FormatEvent<S, JsonFields> for ZapJson
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, JsonFields>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let mut fields = Fields::default();
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                let ext = span.extensions();
                if let Some(stored) = ext.get::<FormattedFields<JsonFields>>()
                    && let Ok(serde_json::Value::Object(map)) =
                        serde_json::from_str::<serde_json::Value>(stored)
                {
                    for (k, v) in map {
                        fields.set(k, v);
                    }
                }
            }
        }
        event.record(&mut fields);
        let msg = fields.message.take().unwrap_or_default();
        let line = format_line(
            level_name(meta.level()),
            self.time.json(Utc::now()),
            fields.log_target.as_deref().unwrap_or(meta.target()),
            &msg,
            fields.pairs,
        );
        writeln!(writer, "{line}")
    }
}

/// The JSON text of one line, keys in zap's order; a field named like one of the four keys is dropped.
pub fn format_line(
    level: &str,
    ts: serde_json::Value,
    logger: &str,
    msg: &str,
    fields: Vec<(String, serde_json::Value)>,
) -> String {
    let s = |v: &str| serde_json::Value::String(v.to_owned()).to_string();
    let mut line = format!(
        "{{\"level\":{},\"ts\":{ts},\"logger\":{},\"msg\":{}",
        s(level),
        s(logger),
        s(msg)
    );
    for (k, v) in fields {
        if matches!(k.as_str(), "level" | "ts" | "logger" | "msg") {
            continue;
        }
        line.push(',');
        line.push_str(&s(&k));
        line.push(':');
        line.push_str(&v.to_string());
    }
    line.push('}');
    line
}

/// Fields in the order first seen; a later value replaces an earlier one under the same name.
#[derive(Default)]
struct Fields {
    message: Option<String>,
    /// The target of a `log` record (its event's own target is `log`).
    log_target: Option<String>,
    pairs: Vec<(String, serde_json::Value)>,
}

impl Fields {
    fn set(&mut self, name: String, value: serde_json::Value) {
        if name == "message" {
            self.message = Some(match value {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            });
            return;
        }
        // `log` records (from libraries that use the log crate) carry where they come from as fields.
        if let Some(what) = name.strip_prefix("log.") {
            if what == "target"
                && let serde_json::Value::String(t) = value
            {
                self.log_target = Some(t);
            }
            return;
        }
        match self.pairs.iter_mut().find(|(k, _)| *k == name) {
            Some(slot) => slot.1 = value,
            None => self.pairs.push((name, value)),
        }
    }
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.set(field.name().to_owned(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.set(field.name().to_owned(), value.into());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.set(field.name().to_owned(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.set(field.name().to_owned(), value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.set(field.name().to_owned(), serde_json::json!(value));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.set(field.name().to_owned(), value.to_string().into());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.set(field.name().to_owned(), format!("{value:?}").into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn levels_as_controller_runtime_reads_them() {
        assert_eq!(parse_level("debug"), Ok(Level::Debug));
        assert_eq!(parse_level("INFO"), Ok(Level::Info));
        assert_eq!(parse_level("error"), Ok(Level::Error));
        assert_eq!(parse_level("warn"), Ok(Level::Warn));
        assert_eq!(parse_level("1"), Ok(Level::Debug));
        assert_eq!(parse_level("3"), Ok(Level::Verbose(3)));
        for bad in ["0", "-1", "verbose", ""] {
            assert!(parse_level(bad).is_err(), "{bad:?}");
        }
        assert_eq!(parse_encoder("JSON"), Ok(Encoder::Json));
        assert!(parse_encoder("text").is_err());
        assert_eq!(parse_time_encoding("nanos"), Ok(TimeEncoding::Nanos));
        assert_eq!(parse_time_encoding("whatever"), Ok(TimeEncoding::Epoch));
    }

    #[test]
    fn flags_map_to_a_filter_and_rust_log_wins() {
        let args = LogArgs {
            zap_log_level: Some(Level::Debug),
            zap_encoder: Some(Encoder::Json),
            ..Default::default()
        };
        let s = args.settings(None);
        assert_eq!(s.filter, "info,keda=debug");
        assert_eq!(s.encoder, Encoder::Json);
        assert_eq!(s.time, TimeEncoding::Rfc3339);
        assert_eq!(
            args.settings(Some("warn,kube=debug")).filter,
            "warn,kube=debug"
        );
        assert_eq!(args.settings(Some(" ")).filter, "info,keda=debug");
        let error = LogArgs {
            zap_log_level: Some(Level::Error),
            ..Default::default()
        };
        assert_eq!(error.settings(None).filter, "error");
        let devel = LogArgs {
            zap_devel: Some(true),
            ..Default::default()
        };
        assert_eq!(devel.settings(None).filter, "info,keda=debug");
        assert_eq!(LogArgs::default().settings(None).filter, "info");
        assert_eq!(LogArgs::default().settings(None).encoder, Encoder::Console);
        for level in [
            Level::Error,
            Level::Warn,
            Level::Info,
            Level::Debug,
            Level::Verbose(2),
        ] {
            assert!(tracing_subscriber::EnvFilter::try_new(level.directives()).is_ok());
        }
    }

    #[test]
    fn zap_time_encodings() {
        let t = Utc
            .timestamp_opt(1_715_335_200, 123_450_000)
            .single()
            .unwrap_or_default();
        let text = |e: TimeEncoding| e.text(t);
        assert_eq!(text(TimeEncoding::Rfc3339), "2024-05-10T10:00:00Z");
        assert_eq!(
            text(TimeEncoding::Rfc3339Nano),
            "2024-05-10T10:00:00.12345Z"
        );
        assert_eq!(text(TimeEncoding::Iso8601), "2024-05-10T10:00:00.123Z");
        assert_eq!(
            TimeEncoding::Nanos.json(t),
            serde_json::json!(1_715_335_200_123_450_000_i64)
        );
        let number = |v: serde_json::Value| v.as_f64().unwrap_or_default();
        assert!((number(TimeEncoding::Epoch.json(t)) - 1_715_335_200.123_45).abs() < 1e-6);
        assert!((number(TimeEncoding::Millis.json(t)) - 1_715_335_200_123.45).abs() < 1e-3);
        let whole = Utc
            .timestamp_opt(1_715_335_200, 0)
            .single()
            .unwrap_or_default();
        assert_eq!(
            TimeEncoding::Rfc3339Nano.text(whole),
            "2024-05-10T10:00:00Z"
        );
    }

    #[test]
    fn each_cause_once() {
        let e = anyhow::Error::new(std::io::Error::other("no such file"))
            .context("reading the kubeconfig");
        assert_eq!(error_chain(&e), "reading the kubeconfig: no such file");
        let repeated = anyhow::anyhow!("connecting: no such file").context("starting");
        assert_eq!(error_chain(&repeated), "starting: connecting: no such file");
    }

    #[test]
    fn a_json_line_has_zaps_keys_first() {
        let line = format_line(
            "info",
            serde_json::json!("2024-05-10T10:00:00Z"),
            "keda_operator::leader",
            "became leader",
            vec![
                ("lease".into(), serde_json::json!("operator.keda.sh")),
                ("msg".into(), serde_json::json!("dropped")),
                ("attempt".into(), serde_json::json!(2)),
            ],
        );
        assert_eq!(
            line,
            r#"{"level":"info","ts":"2024-05-10T10:00:00Z","logger":"keda_operator::leader","msg":"became leader","lease":"operator.keda.sh","attempt":2}"#
        );
    }
}
