//! Flag values in upstream's (Go) spelling, shared by the subcommands.

use std::net::SocketAddr;
use std::time::Duration;

/// `:8080` means all interfaces, as in Go.
pub fn parse_addr(s: &str) -> Result<SocketAddr, String> {
    let full = if s.starts_with(':') {
        format!("0.0.0.0{s}")
    } else {
        s.to_owned()
    };
    full.parse()
        .map_err(|e| format!("{s:?} is not an address like :8080 or 127.0.0.1:8080: {e}"))
}

/// Go-style durations with one unit: `250ms`, `15s`, `2m` (a bare number is seconds).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let (num, unit) = s.split_at(
        s.find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(s.len()),
    );
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 15s"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" | "" => n,
        "m" => n * 60.0,
        _ => return Err(format!("{s:?} is not a duration like 15s")),
    };
    Ok(Duration::from_secs_f64(secs))
}

/// The namespace this process runs in: `POD_NAMESPACE`, the service account's namespace file, or `keda`.
pub fn own_namespace() -> String {
    std::env::var("POD_NAMESPACE")
        .ok()
        .or_else(|| {
            std::fs::read_to_string("/var/run/secrets/kubernetes.io/serviceaccount/namespace").ok()
        })
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "keda".to_owned())
}

/// Go's `strconv.ParseBool`, as upstream's boolean flags read their value.
pub fn parse_go_bool(s: &str) -> Result<bool, String> {
    match s {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(format!("{s:?} is not a boolean (true or false)")),
    }
}

/// The flags and environment variables upstream reads that this process accepts without acting on
/// them, as it was started: each is named with its value and why, in one warning line at start
/// ([`warn_no_effect`]). A value that asks for what keda-rs does anyway (`--disable-compression=true`,
/// `KEDA_SERVICE_MIN_TLS_VERSION=TLS12`, …) is not named.
#[derive(Debug, Default)]
pub struct NoEffect(Vec<String>);

impl NoEffect {
    /// `--flag=value` when given with a value `differs` says keda-rs does not honour.
    pub fn flag(
        &mut self,
        flag: &str,
        value: Option<&str>,
        differs: impl Fn(&str) -> bool,
        why: &str,
    ) {
        if let Some(v) = value
            && differs(v)
        {
            self.0.push(format!("--{flag}={v} ({why})"));
        }
    }

    /// A boolean flag given as `true` (Go spellings).
    pub fn flag_true(&mut self, flag: &str, value: Option<&str>, why: &str) {
        self.flag(flag, value, |v| parse_go_bool(v) == Ok(true), why);
    }

    /// A boolean flag given as `false`.
    pub fn flag_false(&mut self, flag: &str, value: Option<&str>, why: &str) {
        self.flag(flag, value, |v| parse_go_bool(v) == Ok(false), why);
    }

    /// The variable `var` when `env` has it, non-empty, with a value `differs` says keda-rs does not
    /// honour. `show_value`: whether its value goes in the warning (not for addresses and the like).
    pub fn env(
        &mut self,
        env: &dyn Fn(&str) -> Option<String>,
        var: &str,
        differs: impl Fn(&str) -> bool,
        show_value: bool,
        why: &str,
    ) {
        if let Some(v) = env(var).filter(|v| !v.trim().is_empty())
            && differs(v.trim())
        {
            self.0.push(match show_value {
                true => format!("{var}={v} ({why})"),
                false => format!("{var} ({why})"),
            });
        }
    }

    /// What the three processes share: upstream's TLS settings of its own servers
    /// (`KEDA_SERVICE_MIN_TLS_VERSION`, `KEDA_SERVICE_TLS_CIPHER_LIST`); keda-rs's servers accept TLS
    /// 1.2 and 1.3 with rustls's cipher suites.
    pub fn service_tls(&mut self, env: &dyn Fn(&str) -> Option<String>) {
        let why = "keda-rs's servers accept TLS 1.2 and 1.3 with rustls's cipher suites";
        self.env(
            env,
            "KEDA_SERVICE_MIN_TLS_VERSION",
            |v| !v.eq_ignore_ascii_case("TLS12"),
            true,
            why,
        );
        self.env(env, "KEDA_SERVICE_TLS_CIPHER_LIST", |_| true, true, why);
        // Upstream's servers fall back to the scalers' settings when theirs are not set.
        let fallback = "upstream's servers use it without KEDA_SERVICE_*; keda-rs's accept TLS 1.2 and \
                        1.3 with rustls's cipher suites";
        if env("KEDA_SERVICE_MIN_TLS_VERSION").is_none() {
            self.env(
                env,
                "KEDA_HTTP_MIN_TLS_VERSION",
                |v| v.eq_ignore_ascii_case("TLS13"),
                true,
                fallback,
            );
        }
        if env("KEDA_SERVICE_TLS_CIPHER_LIST").is_none() {
            self.env(env, "KEDA_HTTP_TLS_CIPHER_LIST", |_| true, true, fallback);
        }
    }

    /// A setting honoured only in part, named as `item` says.
    pub fn note(&mut self, item: String) {
        self.0.push(item);
    }

    pub fn items(&self) -> &[String] {
        &self.0
    }
}

/// The one warning line naming what [`NoEffect`] found (nothing when every setting takes effect).
pub fn warn_no_effect(items: &[String]) {
    if !items.is_empty() {
        tracing::warn!(
            target: "setup",
            "accepted without effect (not implemented by keda-rs): {}",
            items.join("; ")
        );
    }
}

/// The process environment, for [`NoEffect::env`].
pub fn process_env(var: &str) -> Option<String> {
    std::env::var(var).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_spellings() {
        assert_eq!(parse_addr(":8080").unwrap().to_string(), "0.0.0.0:8080");
        assert_eq!(parse_addr("127.0.0.1:0").unwrap().port(), 0);
        assert!(parse_addr("8080").is_err());
        assert_eq!(parse_duration("15s").unwrap(), Duration::from_secs(15));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert!(parse_duration("2h").is_err());
        assert_eq!(parse_go_bool("True"), Ok(true));
        assert_eq!(parse_go_bool("0"), Ok(false));
        assert!(parse_go_bool("yes").is_err());
    }

    #[test]
    fn no_effect_names_only_what_asks_for_something_else() {
        let env = |v: &str| match v {
            "KEDA_SERVICE_MIN_TLS_VERSION" => Some("TLS13".to_owned()),
            "KEDA_SERVICE_TLS_CIPHER_LIST" => Some(String::new()),
            _ => None,
        };
        let mut n = NoEffect::default();
        n.flag_true("enable-opentelemetry-metrics", Some("true"), "no exporter");
        n.flag_true("enable-high-cardinality-metrics-labels", Some("false"), "-");
        n.flag_false("disable-compression", Some("true"), "-");
        n.flag("profiling-bind-address", None, |_| true, "-");
        n.service_tls(&env);
        assert_eq!(
            n.items(),
            [
                "--enable-opentelemetry-metrics=true (no exporter)",
                "KEDA_SERVICE_MIN_TLS_VERSION=TLS13 (keda-rs's servers accept TLS 1.2 and 1.3 with rustls's cipher suites)"
            ]
        );
        let mut fallback = NoEffect::default();
        fallback
            .service_tls(&|v: &str| (v == "KEDA_HTTP_MIN_TLS_VERSION").then(|| "TLS13".to_owned()));
        assert_eq!(fallback.items().len(), 1, "{:?}", fallback.items());
        assert!(
            fallback.items()[0].starts_with("KEDA_HTTP_MIN_TLS_VERSION=TLS13 (upstream's servers")
        );
        let mut quiet = NoEffect::default();
        quiet.service_tls(&|v: &str| {
            (v == "KEDA_SERVICE_MIN_TLS_VERSION").then(|| "tls12".to_owned())
        });
        assert!(quiet.items().is_empty());
    }
}
