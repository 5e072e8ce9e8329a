//! A connection string: its TLS parameters split out (tokio-postgres knows only some), the rest parsed.

use std::time::Duration;

/// Used when the connection string sets no `connect_timeout` (or 0, which libpq reads as "wait forever").
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long opening a connection may take: `connect_timeout` per host, as libpq applies it, covering the
/// TLS handshake and authentication too (tokio-postgres bounds only the TCP connect).
pub fn connect_bound(config: &tokio_postgres::Config) -> Duration {
    let per_host = config
        .get_connect_timeout()
        .copied()
        .unwrap_or(CONNECT_TIMEOUT);
    let hosts = u32::try_from(config.get_hosts().len()).unwrap_or(u32::MAX);
    per_host.saturating_mul(hosts.max(1))
}

/// The connection string without its TLS parameters (see [`split_ssl_params`]), parsed, with keda-rs'
/// default `connect_timeout`.
pub(super) fn client_config(rest: &str) -> Result<tokio_postgres::Config, String> {
    let mut config: tokio_postgres::Config = rest
        .parse()
        .map_err(|e: tokio_postgres::Error| e.to_string())?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    Ok(config)
}

/// TLS parameters taken out of a connection string (tokio-postgres knows only disable/prefer/require).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SslParams {
    pub mode: Option<String>,
    pub root_cert: Option<String>,
    pub cert: Option<String>,
    pub key: Option<String>,
    pub password: Option<String>,
}

impl SslParams {
    fn take(&mut self, key: &str, value: String) -> bool {
        let slot = match key {
            "sslmode" => &mut self.mode,
            "sslrootcert" => &mut self.root_cert,
            "sslcert" => &mut self.cert,
            "sslkey" => &mut self.key,
            "sslpassword" => &mut self.password,
            _ => return false,
        };
        *slot = Some(value);
        true
    }
}

/// Splits the TLS parameters out of a connection string, returning the rest in a form tokio-postgres
/// parses. Errors never quote the string (it may hold a password).
pub fn split_ssl_params(conn: &str) -> Result<(String, SslParams), String> {
    let mut ssl = SslParams::default();
    let trimmed = conn.trim();
    if trimmed.starts_with("postgres://") || trimmed.starts_with("postgresql://") {
        let (base, query) = match trimmed.split_once('?') {
            Some((b, q)) => (b, q),
            None => (trimmed, ""),
        };
        let mut kept = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            if !ssl.take(&percent_decode(k)?, percent_decode(v)?) {
                kept.push(pair);
            }
        }
        let rest = if kept.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        return Ok((rest, ssl));
    }
    let mut kept = Vec::new();
    for (k, v) in parse_key_values(trimmed)? {
        if !ssl.take(&k, v.clone()) && !v.is_empty() {
            kept.push(format!(
                "{k}='{}'",
                v.replace('\\', "\\\\").replace('\'', "\\'")
            ));
        }
    }
    Ok((kept.join(" "), ssl))
}

fn percent_decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or("the connection URL has an invalid percent-encoding")?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "the connection URL is not UTF-8 once decoded".to_owned())
}

/// libpq `key=value` pairs: values may be single-quoted; a backslash escapes the next character.
fn parse_key_values(s: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            break;
        }
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| *c != '=' && !c.is_whitespace()) {
            key.push(c);
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next() != Some('=') {
            return Err(
                "the connection string is neither key=value pairs nor a postgres:// URL".into(),
            );
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'\'').is_some() {
            loop {
                match chars.next() {
                    Some('\'') => break,
                    Some('\\') => value.extend(chars.next()),
                    Some(c) => value.push(c),
                    None => {
                        return Err(format!(
                            "the value of {key:?} in the connection string has no closing quote"
                        ));
                    }
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                if c == '\\' {
                    value.extend(chars.next());
                } else {
                    value.push(c);
                }
            }
        }
        out.push((key, value));
    }
    Ok(out)
}

/// The Unix-socket directories among the hosts of a connection.
pub(super) fn unix_hosts(
    config: &tokio_postgres::Config,
) -> impl Iterator<Item = &std::path::Path> {
    config.get_hosts().iter().filter_map(|h| match h {
        #[cfg(unix)]
        tokio_postgres::config::Host::Unix(dir) => Some(dir.as_path()),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_values_round_trip_through_the_splitter() {
        let (rest, ssl) = split_ssl_params(
            r"host=db port = 5432 user='a b' password='it\'s' dbname=x sslmode=verify-full sslrootcert=/ca.pem",
        )
        .unwrap();
        assert_eq!(
            rest,
            r"host='db' port='5432' user='a b' password='it\'s' dbname='x'"
        );
        assert_eq!(ssl.mode.as_deref(), Some("verify-full"));
        assert_eq!(ssl.root_cert.as_deref(), Some("/ca.pem"));
        let parsed: tokio_postgres::Config = rest.parse().unwrap();
        assert_eq!(parsed.get_user(), Some("a b"));
        assert_eq!(parsed.get_password(), Some(&b"it's"[..]));
        // An empty value means unset (what the built string ends with when there is no password).
        let (rest, ssl) = split_ssl_params("host=h sslmode=disable password=").unwrap();
        assert_eq!(rest, "host='h'");
        assert_eq!(ssl.mode.as_deref(), Some("disable"));
        // As in libpq, blanks after '=' are skipped, so an empty value must come last or be quoted.
        let (rest, _) = split_ssl_params("password='' host=h").unwrap();
        assert_eq!(rest, "host='h'");
        assert!(split_ssl_params("test_conn_str").is_err());
        assert!(split_ssl_params("password='open").is_err());
    }

    #[test]
    fn url_ssl_parameters_are_taken_out() {
        let (rest, ssl) = split_ssl_params(
            "postgresql://u:p%40ss@h1:5432,h2/db?sslmode=verify-ca&application_name=keda&sslcert=%2Fc.pem",
        )
        .unwrap();
        assert_eq!(
            rest,
            "postgresql://u:p%40ss@h1:5432,h2/db?application_name=keda"
        );
        assert_eq!(ssl.mode.as_deref(), Some("verify-ca"));
        assert_eq!(ssl.cert.as_deref(), Some("/c.pem"));
        let (rest, ssl) = split_ssl_params("postgres://localhost:5432").unwrap();
        assert_eq!(rest, "postgres://localhost:5432");
        assert_eq!(ssl, SslParams::default());
    }
}
