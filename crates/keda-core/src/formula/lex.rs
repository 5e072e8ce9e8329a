//! Text to tokens. Every token keeps its column, which the parser's errors report.

use super::syntax;
use crate::Error;

#[derive(Clone, Debug, PartialEq)]
pub(super) enum Tok {
    Int(i64),
    Float(f64),
    Ident(String),
    Op(&'static str),
    LParen,
    RParen,
    Comma,
    Question,
    Colon,
    End,
}

impl std::fmt::Display for Tok {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Tok::Int(i) => write!(f, "number {i}"),
            Tok::Float(x) => write!(f, "number {x}"),
            Tok::Ident(s) => write!(f, "name {s:?}"),
            Tok::Op(op) => write!(f, "operator {op:?}"),
            Tok::LParen => f.write_str("'('"),
            Tok::RParen => f.write_str("')'"),
            Tok::Comma => f.write_str("','"),
            Tok::Question => f.write_str("'?'"),
            Tok::Colon => f.write_str("':'"),
            Tok::End => f.write_str("end of formula"),
        }
    }
}

#[derive(Clone, Debug)]
pub(super) struct Token {
    pub(super) kind: Tok,
    /// 1-based, in characters.
    pub(super) column: usize,
}

const TWO_CHAR_OPS: [&str; 8] = ["**", "==", "!=", "<=", ">=", "&&", "||", "??"];
const ONE_CHAR_OPS: [&str; 9] = ["+", "-", "*", "/", "%", "^", "<", ">", "!"];

pub(super) fn lex(src: &str) -> Result<Vec<Token>, Error> {
    let chars: Vec<char> = src.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let column = i + 1;
        let next = chars.get(i + 1).copied();
        let push = |tokens: &mut Vec<Token>, kind| tokens.push(Token { kind, column });
        if c.is_whitespace() {
            i += 1;
        } else if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let close = (i + 2..chars.len().saturating_sub(1))
                .find(|&j| chars[j] == '*' && chars[j + 1] == '/')
                .ok_or_else(|| syntax(column, "unclosed comment".to_owned()))?;
            i = close + 2;
        } else if c.is_ascii_digit() || (c == '.' && next.is_some_and(|n| n.is_ascii_digit())) {
            let (kind, len) = lex_number(&chars[i..], column)?;
            push(&mut tokens, kind);
            i += len;
        } else if c.is_alphabetic() || c == '_' || c == '$' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '$')
            {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let kind = match word.as_str() {
                "and" => Tok::Op("&&"),
                "or" => Tok::Op("||"),
                "not" => Tok::Op("!"),
                _ => Tok::Ident(word),
            };
            push(&mut tokens, kind);
        } else {
            let pair: String = chars[i..(i + 2).min(chars.len())].iter().collect();
            if let Some(op) = TWO_CHAR_OPS.iter().find(|op| **op == pair) {
                push(&mut tokens, Tok::Op(op));
                i += 2;
                continue;
            }
            let kind = match c {
                '(' => Tok::LParen,
                ')' => Tok::RParen,
                ',' => Tok::Comma,
                '?' => Tok::Question,
                ':' => Tok::Colon,
                '"' | '\'' | '`' => {
                    return Err(syntax(column, "strings are not supported".to_owned()));
                }
                _ => match ONE_CHAR_OPS.iter().find(|op| op.starts_with(c)) {
                    Some(op) => Tok::Op(op),
                    None => return Err(syntax(column, format!("unexpected character {c:?}"))),
                },
            };
            push(&mut tokens, kind);
            i += 1;
        }
    }
    tokens.push(Token {
        kind: Tok::End,
        column: chars.len() + 1,
    });
    Ok(tokens)
}

/// One number literal at the start of `chars`: the token and how many characters it used.
fn lex_number(chars: &[char], column: usize) -> Result<(Tok, usize), Error> {
    let radix = match (chars.first(), chars.get(1).map(char::to_ascii_lowercase)) {
        (Some('0'), Some('x')) => 16,
        (Some('0'), Some('o')) => 8,
        (Some('0'), Some('b')) => 2,
        _ => 10,
    };
    let mut i = if radix == 10 { 0 } else { 2 };
    let digit = |c: char| c == '_' || c.is_digit(radix);
    while chars.get(i).copied().is_some_and(digit) {
        i += 1;
    }
    let mut is_float = false;
    if radix == 10 {
        if chars.get(i) == Some(&'.') {
            is_float = true;
            i += 1;
            while chars.get(i).copied().is_some_and(digit) {
                i += 1;
            }
        }
        if matches!(chars.get(i), Some('e' | 'E')) {
            is_float = true;
            i += 1;
            if matches!(chars.get(i), Some('+' | '-')) {
                i += 1;
            }
            while chars.get(i).copied().is_some_and(digit) {
                i += 1;
            }
        }
    }
    let text: String = chars[..i].iter().filter(|c| **c != '_').collect();
    if chars
        .get(i)
        .is_some_and(|c| c.is_alphanumeric() || *c == '_')
    {
        let word: String = chars[..=i].iter().collect();
        return Err(syntax(column, format!("bad number syntax: {word:?}")));
    }
    let bad = || syntax(column, format!("invalid number literal {text:?}"));
    let kind = if is_float {
        Tok::Float(text.parse::<f64>().map_err(|_| bad())?)
    } else if radix == 10 {
        Tok::Int(text.parse::<i64>().map_err(|_| bad())?)
    } else {
        Tok::Int(i64::from_str_radix(&text[2..], radix).map_err(|_| bad())?)
    };
    Ok((kind, i))
}
