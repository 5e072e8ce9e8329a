//! Flag values in upstream's (Go) spelling, shared by the subcommands.

use std::net::SocketAddr;
use std::time::Duration;

use keda_scalers::tls::{CipherSuite, MinTlsVersion, TlsProtocols, cipher_suites};

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
/// them, as it was started, and those honoured only in part: each is named with its value and why, in
/// one warning line at start ([`warn_no_effect`]). A value that asks for what keda-rs does anyway
/// (`--disable-compression=true`, `--logtostderr=true`, …) is not named.
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

    /// What the three processes share: what [`service_tls`] honours only in part (a value it refuses
    /// stops the start instead).
    pub fn service_tls(&mut self, env: &dyn Fn(&str) -> Option<String>) {
        if let Ok(tls) = service_tls(env) {
            for note in tls.notes {
                self.note(note);
            }
        }
    }

    /// A setting honoured only in part, named as `item` says (once: the operator's scalers and servers
    /// may both fall back to the same variable).
    pub fn note(&mut self, item: String) {
        if !self.0.contains(&item) {
            self.0.push(item);
        }
    }

    pub fn items(&self) -> &[String] {
        &self.0
    }
}

/// `value` of `var`, one of upstream's TLS versions (`""`: `empty`). TLS10 and TLS11 act as TLS12, which
/// `notes` says with `lowest` (what speaks TLS 1.2 and 1.3 then): rustls has nothing lower.
pub fn min_tls_version(
    var: &str,
    value: &str,
    empty: MinTlsVersion,
    lowest: &str,
    notes: &mut Vec<String>,
) -> Result<MinTlsVersion, String> {
    match value.to_ascii_uppercase().as_str() {
        "" => Ok(empty),
        "TLS12" => Ok(MinTlsVersion::Tls12),
        "TLS13" => Ok(MinTlsVersion::Tls13),
        "TLS10" | "TLS11" => {
            notes.push(format!(
                "{var}={value} (rustls speaks no TLS below 1.2: {lowest})"
            ));
            Ok(MinTlsVersion::Tls12)
        }
        _ => Err(format!(
            "{var}: {value:?} is not one of TLS10, TLS11, TLS12, TLS13"
        )),
    }
}

/// `value` of `var`, Go cipher suite names ([`cipher_suites`]): the TLS 1.2 suites rustls has; the
/// names it has not go in `notes` and are ignored (none left: rustls's TLS 1.2 suites).
pub fn tls_cipher_list(var: &str, value: &str, notes: &mut Vec<String>) -> Vec<CipherSuite> {
    let (suites, unsupported) = cipher_suites(value);
    if !unsupported.is_empty() {
        let fallback = match suites.is_empty() {
            true => "; rustls's TLS 1.2 suites are used",
            false => "",
        };
        notes.push(format!(
            "{var}: {} (not TLS 1.2 suites rustls has: ignored{fallback})",
            unsupported.join(", ")
        ));
    }
    suites
}

/// The TLS of this process's own servers (the webhook server, the metrics API server and the
/// operator's gRPC metrics service) and of the metrics API server's gRPC client, as upstream:
/// `KEDA_SERVICE_MIN_TLS_VERSION` (set but empty: TLS13) and `KEDA_SERVICE_TLS_CIPHER_LIST`, each
/// falling back to `KEDA_HTTP_MIN_TLS_VERSION` (default TLS12) or `KEDA_HTTP_TLS_CIPHER_LIST` when
/// unset.
#[derive(Debug)]
pub struct ServiceTls {
    pub protocols: TlsProtocols,
    /// What is honoured only in part, for the warning at start.
    pub notes: Vec<String>,
}

/// [`ServiceTls`] from `env`; a version that is not one upstream reads is refused with the variable's
/// name (upstream logs it and uses its default).
pub fn service_tls(env: &dyn Fn(&str) -> Option<String>) -> Result<ServiceTls, String> {
    let lowest = "keda-rs's servers accept TLS 1.2 and 1.3";
    let mut notes = Vec::new();
    let min_version = match env("KEDA_SERVICE_MIN_TLS_VERSION") {
        Some(v) => min_tls_version(
            "KEDA_SERVICE_MIN_TLS_VERSION",
            v.trim(),
            MinTlsVersion::Tls13,
            lowest,
            &mut notes,
        )?,
        None => min_tls_version(
            "KEDA_HTTP_MIN_TLS_VERSION",
            env("KEDA_HTTP_MIN_TLS_VERSION").unwrap_or_default().trim(),
            MinTlsVersion::Tls12,
            lowest,
            &mut notes,
        )?,
    };
    let (var, list) = match env("KEDA_SERVICE_TLS_CIPHER_LIST") {
        Some(v) => ("KEDA_SERVICE_TLS_CIPHER_LIST", v),
        None => (
            "KEDA_HTTP_TLS_CIPHER_LIST",
            env("KEDA_HTTP_TLS_CIPHER_LIST").unwrap_or_default(),
        ),
    };
    let tls12_suites = tls_cipher_list(var, &list, &mut notes);
    Ok(ServiceTls {
        protocols: TlsProtocols::new(min_version, &tls12_suites),
        notes,
    })
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
            ["--enable-opentelemetry-metrics=true (no exporter)"]
        );
        // What is honoured only in part, once.
        let mut partly = NoEffect::default();
        let env = |v: &str| match v {
            "KEDA_HTTP_MIN_TLS_VERSION" => Some("TLS11".to_owned()),
            "KEDA_HTTP_TLS_CIPHER_LIST" => Some("TLS_RSA_WITH_AES_128_CBC_SHA".to_owned()),
            _ => None,
        };
        partly.service_tls(&env);
        partly.service_tls(&env);
        assert_eq!(
            partly.items(),
            [
                "KEDA_HTTP_MIN_TLS_VERSION=TLS11 (rustls speaks no TLS below 1.2: keda-rs's servers accept TLS 1.2 and 1.3)",
                "KEDA_HTTP_TLS_CIPHER_LIST: TLS_RSA_WITH_AES_128_CBC_SHA (not TLS 1.2 suites rustls has: ignored; rustls's TLS 1.2 suites are used)"
            ]
        );
        // A refused value is not named here: it stops the start ([`service_tls`]).
        let mut refused = NoEffect::default();
        refused.service_tls(&|v: &str| {
            (v == "KEDA_SERVICE_MIN_TLS_VERSION").then(|| "TLS1.3".to_owned())
        });
        assert!(refused.items().is_empty());
    }

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |var: &str| pairs.iter().find(|(k, _)| k == var).map(|(_, v)| v.clone())
    }

    /// The TLS versions and the TLS 1.2 suites of `t`.
    fn spoken(t: &ServiceTls) -> (Vec<String>, Vec<String>) {
        let versions = t.protocols.versions().iter();
        let suites = t.protocols.provider().cipher_suites.iter();
        (
            versions.map(|v| format!("{:?}", v.version)).collect(),
            suites
                .filter(|s| s.tls13().is_none())
                .map(|s| format!("{:?}", s.suite()))
                .collect(),
        )
    }

    #[test]
    fn service_tls_falls_back_to_the_scalers_variables_as_upstream() {
        let t = service_tls(&|_| None).expect("defaults");
        let rustls_default = spoken(&ServiceTls {
            protocols: TlsProtocols::default(),
            notes: vec![],
        });
        assert_eq!(spoken(&t), rustls_default);
        assert_eq!(rustls_default.0, ["TLSv1_3", "TLSv1_2"]);
        assert!(t.notes.is_empty());

        // Unset KEDA_SERVICE_*: the KEDA_HTTP_* values.
        let http = [
            ("KEDA_HTTP_MIN_TLS_VERSION", "TLS13"),
            (
                "KEDA_HTTP_TLS_CIPHER_LIST",
                "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
            ),
        ];
        let t = service_tls(&env_of(&http)).expect("fallback");
        assert_eq!(
            spoken(&t),
            (
                vec!["TLSv1_3".to_owned()],
                vec!["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256".to_owned()]
            )
        );

        // Set KEDA_SERVICE_*: they win, even empty (version: TLS13, list: rustls's suites).
        let mut both = http.to_vec();
        both.extend([
            ("KEDA_SERVICE_MIN_TLS_VERSION", "TLS12"),
            (
                "KEDA_SERVICE_TLS_CIPHER_LIST",
                "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256",
            ),
        ]);
        let t = service_tls(&env_of(&both)).expect("service");
        assert_eq!(
            spoken(&t),
            (
                rustls_default.0.clone(),
                vec!["TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384".to_owned()]
            )
        );
        let mut empty = http.to_vec();
        empty.extend([
            ("KEDA_SERVICE_MIN_TLS_VERSION", ""),
            ("KEDA_SERVICE_TLS_CIPHER_LIST", ""),
        ]);
        let t = service_tls(&env_of(&empty)).expect("empty");
        assert_eq!(
            spoken(&t),
            (vec!["TLSv1_3".to_owned()], rustls_default.1.clone())
        );
        assert!(t.notes.is_empty());

        // Below TLS 1.2: TLS 1.2, and said so.
        let t = service_tls(&env_of(&[("KEDA_SERVICE_MIN_TLS_VERSION", "TLS10")])).expect("TLS10");
        assert_eq!(spoken(&t), rustls_default);
        assert!(
            t.notes[0]
                .starts_with("KEDA_SERVICE_MIN_TLS_VERSION=TLS10 (rustls speaks no TLS below 1.2")
        );
    }

    #[test]
    fn service_tls_refuses_what_upstream_does_not_read_naming_the_variable() {
        for (var, value) in [
            ("KEDA_SERVICE_MIN_TLS_VERSION", "TLS1.3"),
            ("KEDA_HTTP_MIN_TLS_VERSION", "1.2"),
        ] {
            let e = service_tls(&env_of(&[(var, value)])).expect_err(value);
            assert!(e.starts_with(&format!("{var}: ")), "{e}");
        }
        // KEDA_SERVICE_MIN_TLS_VERSION set: KEDA_HTTP_MIN_TLS_VERSION is not the servers' to refuse.
        let t = service_tls(&env_of(&[
            ("KEDA_SERVICE_MIN_TLS_VERSION", "TLS13"),
            ("KEDA_HTTP_MIN_TLS_VERSION", "bogus"),
        ]));
        assert!(t.is_ok(), "{t:?}");
    }
}
