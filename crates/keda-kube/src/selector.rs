//! Label selectors in the syntax `kubectl -l` and apimachinery's `ParseToLabelSelector` take:
//! comma-separated requirements `key`, `!key`, `key=value` (or `==`), `key!=value`,
//! `key in (a,b)` and `key notin (a,b)`; keys and values checked as Kubernetes checks label keys and
//! values. `<` and `>` are refused, as `ParseToLabelSelector` refuses them.

use std::collections::BTreeSet;

use kube::core::{Expression, Selector};

/// Why a selector does not parse.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("label selector {selector:?}: {reason}")]
pub struct SelectorError {
    pub selector: String,
    pub reason: String,
}

/// Parses `s`; an empty selector (also `""` written with its quotes, as upstream allows) is `None`:
/// everything matches.
pub fn parse_label_selector(s: &str) -> Result<Option<Selector>, SelectorError> {
    let trimmed = s.trim();
    if trimmed.is_empty() || trimmed == "\"\"" {
        return Ok(None);
    }
    let err = |reason: String| SelectorError {
        selector: s.to_owned(),
        reason,
    };
    let tokens = lex(trimmed);
    let mut p = Parser { tokens, at: 0 };
    let mut selector = Selector::default();
    loop {
        selector.extend(p.requirement().map_err(err)?);
        match p.next() {
            None => break,
            Some(Token::Comma) => continue,
            Some(t) => return Err(err(format!("expected ',' or the end, found {}", t.show()))),
        }
    }
    Ok(Some(selector))
}

#[derive(Clone, Debug, PartialEq)]
enum Token {
    Ident(String),
    Not,
    Eq,
    NotEq,
    Comma,
    Open,
    Close,
    Compare(char),
}

impl Token {
    fn show(&self) -> String {
        match self {
            Token::Ident(s) => format!("{s:?}"),
            Token::Not => "'!'".into(),
            Token::Eq => "'='".into(),
            Token::NotEq => "'!='".into(),
            Token::Comma => "','".into(),
            Token::Open => "'('".into(),
            Token::Close => "')'".into(),
            Token::Compare(c) => format!("'{c}'"),
        }
    }
}

fn lex(s: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {}
            ',' => out.push(Token::Comma),
            '(' => out.push(Token::Open),
            ')' => out.push(Token::Close),
            '<' | '>' => out.push(Token::Compare(c)),
            '=' => {
                chars.next_if_eq(&'=');
                out.push(Token::Eq);
            }
            '!' => out.push(if chars.next_if_eq(&'=').is_some() {
                Token::NotEq
            } else {
                Token::Not
            }),
            c => {
                let mut ident = String::from(c);
                while let Some(&n) = chars.peek() {
                    if n.is_whitespace() || "!=,()<>".contains(n) {
                        break;
                    }
                    ident.push(n);
                    chars.next();
                }
                out.push(Token::Ident(ident));
            }
        }
    }
    out
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.at).cloned();
        self.at += 1;
        t
    }

    fn key(&mut self) -> Result<String, String> {
        match self.next() {
            Some(Token::Ident(k)) => {
                check_key(&k)?;
                Ok(k)
            }
            Some(t) => Err(format!("expected a label key, found {}", t.show())),
            None => Err("expected a label key, found the end".into()),
        }
    }

    /// A value after `=` or `!=`: may be empty (`key=`).
    fn value(&mut self) -> Result<String, String> {
        match self.peek() {
            Some(Token::Ident(_)) => match self.next() {
                Some(Token::Ident(v)) => {
                    check_value(&v)?;
                    Ok(v)
                }
                _ => Err("expected a value".into()),
            },
            None | Some(Token::Comma) => Ok(String::new()),
            Some(t) => Err(format!("expected a value, found {}", t.show())),
        }
    }

    /// `( value, … )`; a value may be empty, the set may not.
    fn values(&mut self, key: &str, op: &str) -> Result<BTreeSet<String>, String> {
        if self.next() != Some(Token::Open) {
            return Err(format!("expected '(' after {key:?} {op}"));
        }
        let mut set = BTreeSet::new();
        let mut expect_value = true;
        loop {
            match self.next() {
                Some(Token::Ident(v)) if expect_value => {
                    check_value(&v)?;
                    set.insert(v);
                    expect_value = false;
                }
                Some(Token::Comma) => {
                    if expect_value {
                        set.insert(String::new());
                    }
                    expect_value = true;
                }
                Some(Token::Close) => {
                    if expect_value && !set.is_empty() {
                        set.insert(String::new());
                    }
                    break;
                }
                Some(t) => return Err(format!("unexpected {} in the values of {key:?}", t.show())),
                None => return Err(format!("missing ')' after the values of {key:?}")),
            }
        }
        if set.is_empty() {
            return Err(format!("{op} needs at least one value for {key:?}"));
        }
        Ok(set)
    }

    fn requirement(&mut self) -> Result<Expression, String> {
        if self.peek() == Some(&Token::Not) {
            self.next();
            return Ok(Expression::DoesNotExist(self.key()?));
        }
        let key = self.key()?;
        match self.peek().cloned() {
            None | Some(Token::Comma) => Ok(Expression::Exists(key)),
            Some(Token::Eq) => {
                self.next();
                Ok(Expression::Equal(key, self.value()?))
            }
            Some(Token::NotEq) => {
                self.next();
                Ok(Expression::NotEqual(key, self.value()?))
            }
            Some(Token::Ident(op)) if op == "in" || op == "notin" => {
                self.next();
                let values = self.values(&key, &op)?;
                Ok(if op == "in" {
                    Expression::In(key, values)
                } else {
                    Expression::NotIn(key, values)
                })
            }
            Some(Token::Compare(c)) => Err(format!(
                "'{c}' is not a label selector operator (=, ==, !=, in, notin, !key, key)"
            )),
            Some(t) => Err(format!(
                "expected an operator after {key:?}, found {}",
                t.show()
            )),
        }
    }
}

/// A label name part or value: up to 63 characters, alphanumeric at both ends, `-`, `_`, `.` inside.
fn is_label_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

/// A DNS-1123 subdomain (a key's prefix).
fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253
        && s.split('.').all(|part| {
            let b = part.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        })
}

fn check_key(k: &str) -> Result<(), String> {
    let ok = match k.split_once('/') {
        Some((prefix, name)) => is_dns_subdomain(prefix) && is_label_name(name),
        None => is_label_name(k),
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{k:?} is not a label key (an optional DNS subdomain and '/', then up to 63 characters: \
             alphanumeric at both ends, '-', '_' or '.' inside)"
        ))
    }
}

fn check_value(v: &str) -> Result<(), String> {
    if v.is_empty() || is_label_name(v) {
        Ok(())
    } else {
        Err(format!(
            "{v:?} is not a label value (up to 63 characters: alphanumeric at both ends, '-', '_' or '.' inside)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::SelectorExt;
    use std::collections::BTreeMap;

    fn parsed(s: &str) -> String {
        match parse_label_selector(s) {
            Ok(Some(sel)) => sel.to_string(),
            Ok(None) => "<all>".into(),
            Err(e) => format!("error: {}", e.reason),
        }
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn kubectl_syntax() {
        let cases = [
            ("", "<all>"),
            ("  ", "<all>"),
            ("\"\"", "<all>"),
            ("shard=a", "shard=a"),
            ("shard == a", "shard=a"),
            ("shard!=a", "shard!=a"),
            ("shard", "shard"),
            ("!canary", "!canary"),
            ("tier in (gold, silver)", "tier in (gold,silver)"),
            ("tier notin (bronze)", "tier notin (bronze)"),
            (
                "environment=production,tier in (gold,silver),!canary",
                "environment=production,tier in (gold,silver),!canary",
            ),
            ("keda.sh/shard=a", "keda.sh/shard=a"),
            ("shard=", "shard="),
            ("tier in (gold,)", "tier in (,gold)"),
        ];
        for (input, want) in cases {
            assert_eq!(parsed(input), want, "{input:?}");
        }
    }

    #[test]
    fn refusals() {
        for input in [
            "shard=a,",
            ",shard=a",
            "shard=a b",
            "tier in gold",
            "tier in ()",
            "tier in (gold",
            "replicas>1",
            "replicas < 3",
            "Shard.Example.COM/x=y",
            "-bad=a",
            "shard=-a",
            "shard=a=b",
            "!",
            "!shard=a",
            "tier inn (a)",
            &format!("k={}", "v".repeat(64)),
        ] {
            assert!(
                parse_label_selector(input).is_err(),
                "{input:?} parsed as {}",
                parsed(input)
            );
        }
        let e = parse_label_selector("replicas>1").err();
        assert!(e.is_some_and(|e| {
            e.to_string()
                .contains("'>' is not a label selector operator")
        }),);
    }

    #[test]
    fn matching() {
        let sel = parse_label_selector("shard=a,tier in (gold,silver),!canary")
            .ok()
            .flatten()
            .unwrap_or_default();
        assert!(sel.matches(&labels(&[("shard", "a"), ("tier", "gold")])));
        assert!(!sel.matches(&labels(&[("shard", "b"), ("tier", "gold")])));
        assert!(!sel.matches(&labels(&[("shard", "a"), ("tier", "bronze")])));
        assert!(!sel.matches(&labels(&[("shard", "a"), ("tier", "gold"), ("canary", "")])));
        let not = parse_label_selector("shard!=a")
            .ok()
            .flatten()
            .unwrap_or_default();
        assert!(not.matches(&labels(&[])), "!= matches a missing label");
    }
}
