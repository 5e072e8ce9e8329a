//! `advanced.scalingModifiers.formula`: the subset of the expr-lang language (upstream's formula engine)
//! that composite metrics use.
//!
//! Supported: integer and float literals (`1_000`, `0x1F`, `2.5`, `1e3`), `true`, `false`, `nil`, trigger
//! names (float or nil), `+ - * / % ** ^`, unary `- + ! not`, comparisons (chained `a < b < c` as
//! expr-lang does), `&& || and or`, `c ? a : b`, `??`, parentheses, comments, and the functions
//! `max min abs ceil floor round float int`. Precedence and typing follow expr-lang: `/` always gives a
//! float, `%` needs integers, `??` binds tightest and cannot be mixed with other operators unparenthesised.
//!
//! As upstream, the result is passed through `float(...)`; a formula containing `??` may instead yield
//! `nil` (reported as `None`), which fallback then replaces.

use std::collections::HashMap;

use keda_api::ScaledObject;

use crate::Error;
use crate::hpa::parse_go_float;

/// The value every trigger gets when a formula is validated, as upstream does.
pub const VALIDATION_VALUE: f64 = -1.0;

/// A parsed formula whose names all resolve.
#[derive(Clone, Debug, PartialEq)]
pub struct Formula {
    source: String,
    root: Node,
    /// Upstream keeps a nil result (instead of failing in `float(nil)`) when the formula contains `??`.
    nil_preserving: bool,
}

impl Formula {
    /// The formula as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Runs the formula. Names missing from `vars` are `nil`, as with upstream's map environment.
    pub fn eval(&self, vars: &HashMap<String, Option<f64>>) -> Result<Option<f64>, Error> {
        match eval_node(&self.root, vars)? {
            Value::Nil if self.nil_preserving => Ok(None),
            v => to_float(v).map(Some),
        }
    }
}

/// Parses `formula` and checks that every name is one of `trigger_names` or a known function.
pub fn compile<I, S>(formula: &str, trigger_names: I) -> Result<Formula, Error>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let names: Vec<String> = trigger_names
        .into_iter()
        .map(|s| s.as_ref().to_owned())
        .collect();
    let tokens = lex(formula)?;
    let mut parser = Parser {
        tokens,
        pos: 0,
        names: &names,
    };
    let root = parser.expression(0)?;
    let end = parser.peek();
    if end.kind != Tok::End {
        return Err(syntax(end.column, format!("unexpected {}", end.kind)));
    }
    Ok(Formula {
        source: formula.to_owned(),
        root,
        nil_preserving: formula.contains("??"),
    })
}

/// Runs `formula` with `vars`; see [`Formula::eval`].
pub fn eval(formula: &Formula, vars: &HashMap<String, Option<f64>>) -> Result<Option<f64>, Error> {
    formula.eval(vars)
}

/// Compiles and then runs the formula once with every trigger set to -1, as upstream's validation does,
/// which catches type errors on the evaluated path (e.g. `%` on floats).
pub fn validate<I, S>(formula: &str, trigger_names: I) -> Result<Formula, Error>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let names: Vec<String> = trigger_names
        .into_iter()
        .map(|s| s.as_ref().to_owned())
        .collect();
    let compiled = compile(formula, &names)?;
    let vars = names
        .into_iter()
        .map(|n| (n, Some(VALIDATION_VALUE)))
        .collect();
    compiled.eval(&vars)?;
    Ok(compiled)
}

/// Names usable in a ScaledObject's formula: named triggers other than cpu and memory.
pub fn trigger_names(so: &ScaledObject) -> Vec<String> {
    so.spec
        .triggers
        .iter()
        .filter(|t| t.r#type != "cpu" && t.r#type != "memory")
        .filter_map(|t| t.name.clone().filter(|n| !n.is_empty()))
        .collect()
}

/// upstream's `ValidateAndCompileScalingModifiers`: formula and target are required, the target is a
/// float > 0, and the formula validates against the ScaledObject's trigger names. `Ok(None)` when the
/// ScaledObject has no scalingModifiers.
pub fn compile_scaling_modifiers(so: &ScaledObject) -> Result<Option<Formula>, Error> {
    let Some(modifiers) = so.spec.scaling_modifiers() else {
        return Ok(None);
    };
    let invalid = |reason: String| Error::InvalidScalingModifiers { reason };
    let formula = modifiers
        .formula
        .as_deref()
        .filter(|f| !f.is_empty())
        .ok_or_else(|| invalid("formula is mandatory".to_owned()))?;
    let target = modifiers
        .target
        .as_deref()
        .filter(|t| !t.is_empty())
        .ok_or_else(|| invalid("formula is given but target is empty".to_owned()))?;
    match parse_go_float(target) {
        Some(t) if t > 0.0 => {}
        _ => return Err(invalid(format!("target {target:?} is not a number > 0"))),
    }
    if let Some(activation) = modifiers
        .activation_target
        .as_deref()
        .filter(|a| !a.is_empty())
        && parse_go_float(activation).is_none()
    {
        return Err(invalid(format!(
            "activationTarget {activation:?} is not a number"
        )));
    }
    validate(formula, trigger_names(so)).map(Some)
}

/// `scalingModifiers.activationTarget` as a number (default 0).
pub fn activation_target(so: &ScaledObject) -> Result<f64, Error> {
    let raw = so
        .spec
        .scaling_modifiers()
        .and_then(|m| m.activation_target.as_deref())
        .unwrap_or_default();
    if raw.is_empty() {
        return Ok(0.0);
    }
    parse_go_float(raw).ok_or_else(|| Error::InvalidScalingModifiers {
        reason: format!("activationTarget {raw:?} is not a number"),
    })
}

fn syntax(column: usize, message: String) -> Error {
    Error::FormulaSyntax { column, message }
}

fn eval_error(message: String) -> Error {
    Error::FormulaEval { message }
}

// ---------------------------------------------------------------------------------------------------
// Lexer

#[derive(Clone, Debug, PartialEq)]
enum Tok {
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
struct Token {
    kind: Tok,
    /// 1-based, in characters.
    column: usize,
}

const TWO_CHAR_OPS: [&str; 8] = ["**", "==", "!=", "<=", ">=", "&&", "||", "??"];
const ONE_CHAR_OPS: [&str; 9] = ["+", "-", "*", "/", "%", "^", "<", ">", "!"];

fn lex(src: &str) -> Result<Vec<Token>, Error> {
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

// ---------------------------------------------------------------------------------------------------
// Parser: precedence climbing with expr-lang's operator table.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Func {
    Max,
    Min,
    Abs,
    Ceil,
    Floor,
    Round,
    Float,
    Int,
}

impl Func {
    fn from_name(name: &str) -> Option<Func> {
        Some(match name {
            "max" => Func::Max,
            "min" => Func::Min,
            "abs" => Func::Abs,
            "ceil" => Func::Ceil,
            "floor" => Func::Floor,
            "round" => Func::Round,
            "float" => Func::Float,
            "int" => Func::Int,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Func::Max => "max",
            Func::Min => "min",
            Func::Abs => "abs",
            Func::Ceil => "ceil",
            Func::Floor => "floor",
            Func::Round => "round",
            Func::Float => "float",
            Func::Int => "int",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Node {
    Literal(Value),
    Var(String),
    Unary(&'static str, Box<Node>),
    Binary(&'static str, Box<Node>, Box<Node>),
    Cond(Box<Node>, Box<Node>, Box<Node>),
    Call(Func, Vec<Node>),
}

/// Binary operators: precedence and right associativity.
fn binary_op(op: &str) -> Option<(u32, bool)> {
    Some(match op {
        "||" => (10, false),
        "&&" => (15, false),
        "==" | "!=" | "<" | ">" | "<=" | ">=" => (20, false),
        "+" | "-" => (30, false),
        "*" | "/" | "%" => (60, false),
        "**" | "^" => (100, true),
        "??" => (500, false),
        _ => return None,
    })
}

fn unary_precedence(op: &str) -> Option<u32> {
    match op {
        "!" => Some(50),
        "-" | "+" => Some(90),
        _ => None,
    }
}

fn is_ordering(op: &str) -> bool {
    matches!(op, "<" | ">" | "<=" | ">=")
}

struct Parser<'a> {
    tokens: Vec<Token>,
    pos: usize,
    names: &'a [String],
}

impl Parser<'_> {
    fn peek(&self) -> Token {
        self.tokens
            .get(self.pos)
            .or(self.tokens.last())
            .cloned()
            .unwrap_or(Token {
                kind: Tok::End,
                column: 1,
            })
    }

    fn advance(&mut self) -> Token {
        let t = self.peek();
        if self.pos < self.tokens.len() {
            self.pos += 1;
        }
        t
    }

    fn expect(&mut self, kind: Tok) -> Result<(), Error> {
        let t = self.advance();
        if t.kind == kind {
            Ok(())
        } else {
            Err(syntax(
                t.column,
                format!("expected {kind}, found {}", t.kind),
            ))
        }
    }

    fn expression(&mut self, min_precedence: u32) -> Result<Node, Error> {
        let mut left = self.primary()?;
        let mut previous: Option<&'static str> = None;
        loop {
            let token = self.peek();
            let Tok::Op(op) = token.kind else { break };
            let Some((precedence, right_assoc)) = binary_op(op) else {
                break;
            };
            if precedence < min_precedence {
                break;
            }
            if previous == Some("??") && op != "??" {
                return Err(syntax(
                    token.column,
                    format!(
                        "operator {op:?} and coalesce expressions (??) cannot be mixed; wrap either in parentheses"
                    ),
                ));
            }
            self.advance();
            left = if is_ordering(op) {
                self.comparison_chain(left, op, precedence)?
            } else {
                let next_min = if right_assoc {
                    precedence
                } else {
                    precedence + 1
                };
                let right = self.expression(next_min)?;
                Node::Binary(op, Box::new(left), Box::new(right))
            };
            previous = Some(op);
        }
        if min_precedence == 0 {
            left = self.conditional(left)?;
        }
        Ok(left)
    }

    /// `a < b <= c` means `a < b && b <= c`, as in expr-lang.
    fn comparison_chain(
        &mut self,
        mut left: Node,
        mut op: &'static str,
        precedence: u32,
    ) -> Result<Node, Error> {
        let mut root: Option<Node> = None;
        loop {
            let right = self.expression(precedence + 1)?;
            let cmp = Node::Binary(op, Box::new(left), Box::new(right.clone()));
            root = Some(match root {
                None => cmp,
                Some(r) => Node::Binary("&&", Box::new(r), Box::new(cmp)),
            });
            left = right;
            match self.peek().kind {
                Tok::Op(next) if is_ordering(next) => {
                    self.advance();
                    op = next;
                }
                _ => break,
            }
        }
        // `root` is always set: the loop body runs at least once.
        Ok(root.unwrap_or(left))
    }

    fn conditional(&mut self, mut node: Node) -> Result<Node, Error> {
        while self.peek().kind == Tok::Question {
            self.advance();
            let after = self.peek();
            if after.kind == Tok::Colon {
                return Err(syntax(
                    after.column,
                    "the ?: operator is not supported".to_owned(),
                ));
            }
            let then = self.expression(0)?;
            self.expect(Tok::Colon)?;
            let otherwise = self.expression(0)?;
            node = Node::Cond(Box::new(node), Box::new(then), Box::new(otherwise));
        }
        Ok(node)
    }

    fn primary(&mut self) -> Result<Node, Error> {
        let token = self.advance();
        if let Tok::Op(op) = token.kind
            && let Some(precedence) = unary_precedence(op)
        {
            let operand = self.expression(precedence)?;
            return Ok(Node::Unary(op, Box::new(operand)));
        }
        match token.kind {
            Tok::LParen => {
                let inner = self.expression(0)?;
                self.expect(Tok::RParen)?;
                Ok(inner)
            }
            Tok::Int(i) => Ok(Node::Literal(Value::Int(i))),
            Tok::Float(f) => Ok(Node::Literal(Value::Float(f))),
            Tok::Ident(name) => match name.as_str() {
                "true" => Ok(Node::Literal(Value::Bool(true))),
                "false" => Ok(Node::Literal(Value::Bool(false))),
                "nil" => Ok(Node::Literal(Value::Nil)),
                _ if self.peek().kind == Tok::LParen => self.call(&name, token.column),
                _ if self.names.contains(&name) => Ok(Node::Var(name)),
                _ => Err(Error::FormulaUnknownName {
                    what: "trigger",
                    name,
                    column: token.column,
                }),
            },
            other => Err(syntax(token.column, format!("unexpected {other}"))),
        }
    }

    fn call(&mut self, name: &str, column: usize) -> Result<Node, Error> {
        let func = Func::from_name(name).ok_or_else(|| Error::FormulaUnknownName {
            what: "function",
            name: name.to_owned(),
            column,
        })?;
        self.expect(Tok::LParen)?;
        let mut args = Vec::new();
        if self.peek().kind != Tok::RParen {
            loop {
                args.push(self.expression(0)?);
                if self.peek().kind == Tok::Comma {
                    self.advance();
                } else {
                    break;
                }
            }
        }
        self.expect(Tok::RParen)?;
        let arity_ok = match func {
            Func::Max | Func::Min => !args.is_empty(),
            _ => args.len() == 1,
        };
        if !arity_ok {
            return Err(syntax(
                column,
                format!("wrong number of arguments ({}) for {name}", args.len()),
            ));
        }
        Ok(Node::Call(func, args))
    }
}

// ---------------------------------------------------------------------------------------------------
// Evaluation

#[derive(Clone, Copy, Debug, PartialEq)]
enum Value {
    Int(i64),
    Float(f64),
    Bool(bool),
    Nil,
}

impl Value {
    /// The Go type name expr-lang prints in its messages.
    fn type_name(self) -> &'static str {
        match self {
            Value::Int(_) => "int",
            Value::Float(_) => "float64",
            Value::Bool(_) => "bool",
            Value::Nil => "<nil>",
        }
    }

    fn as_f64(self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(i as f64),
            Value::Float(f) => Some(f),
            _ => None,
        }
    }
}

fn to_float(v: Value) -> Result<f64, Error> {
    v.as_f64()
        .ok_or_else(|| eval_error(format!("invalid operation: float({})", v.type_name())))
}

fn invalid_binary(op: &str, l: Value, r: Value) -> Error {
    eval_error(format!(
        "invalid operation: {} {op} {}",
        l.type_name(),
        r.type_name()
    ))
}

fn expect_bool(v: Value, context: &str) -> Result<bool, Error> {
    match v {
        Value::Bool(b) => Ok(b),
        other => Err(eval_error(format!(
            "non-bool value ({}) used {context}",
            other.type_name()
        ))),
    }
}

fn eval_node(node: &Node, vars: &HashMap<String, Option<f64>>) -> Result<Value, Error> {
    match node {
        Node::Literal(v) => Ok(*v),
        Node::Var(name) => Ok(vars
            .get(name)
            .copied()
            .flatten()
            .map_or(Value::Nil, Value::Float)),
        Node::Unary(op, operand) => {
            let v = eval_node(operand, vars)?;
            match (*op, v) {
                ("!", Value::Bool(b)) => Ok(Value::Bool(!b)),
                ("-", Value::Int(i)) => Ok(Value::Int(i.wrapping_neg())),
                ("-", Value::Float(f)) => Ok(Value::Float(-f)),
                ("+", Value::Int(_) | Value::Float(_)) => Ok(v),
                _ => Err(eval_error(format!(
                    "invalid operation: {op}{}",
                    v.type_name()
                ))),
            }
        }
        Node::Cond(cond, then, otherwise) => {
            if expect_bool(eval_node(cond, vars)?, "as condition")? {
                eval_node(then, vars)
            } else {
                eval_node(otherwise, vars)
            }
        }
        Node::Binary(op, l, r) => match *op {
            "&&" | "||" => {
                let left = expect_bool(eval_node(l, vars)?, &format!("with {op}"))?;
                // Short-circuit like expr-lang.
                if (*op == "&&") != left {
                    return Ok(Value::Bool(left));
                }
                Ok(Value::Bool(expect_bool(
                    eval_node(r, vars)?,
                    &format!("with {op}"),
                )?))
            }
            "??" => match eval_node(l, vars)? {
                Value::Nil => eval_node(r, vars),
                v => Ok(v),
            },
            _ => binary(op, eval_node(l, vars)?, eval_node(r, vars)?),
        },
        Node::Call(func, args) => {
            let values = args
                .iter()
                .map(|a| eval_node(a, vars))
                .collect::<Result<Vec<_>, _>>()?;
            call(*func, &values)
        }
    }
}

fn binary(op: &str, l: Value, r: Value) -> Result<Value, Error> {
    use Value::{Bool, Float, Int, Nil};
    match op {
        "==" | "!=" => {
            let equal = match (l, r) {
                (Nil, Nil) => true,
                (Bool(a), Bool(b)) => a == b,
                (Int(a), Int(b)) => a == b,
                _ => match (l.as_f64(), r.as_f64()) {
                    (Some(a), Some(b)) => a == b,
                    _ => false,
                },
            };
            Ok(Bool(equal == (op == "==")))
        }
        "<" | ">" | "<=" | ">=" => {
            let ordering = match (l, r) {
                (Int(a), Int(b)) => Some(a.cmp(&b)),
                _ => match (l.as_f64(), r.as_f64()) {
                    (Some(a), Some(b)) => a.partial_cmp(&b),
                    _ => return Err(invalid_binary(op, l, r)),
                },
            };
            let result = ordering.is_some_and(|o| match op {
                "<" => o.is_lt(),
                ">" => o.is_gt(),
                "<=" => o.is_le(),
                _ => o.is_ge(),
            });
            Ok(Bool(result))
        }
        "+" | "-" | "*" => match (l, r) {
            (Int(a), Int(b)) => Ok(Int(match op {
                "+" => a.wrapping_add(b),
                "-" => a.wrapping_sub(b),
                _ => a.wrapping_mul(b),
            })),
            _ => match (l.as_f64(), r.as_f64()) {
                (Some(a), Some(b)) => Ok(Float(match op {
                    "+" => a + b,
                    "-" => a - b,
                    _ => a * b,
                })),
                _ => Err(invalid_binary(op, l, r)),
            },
        },
        "/" => match (l.as_f64(), r.as_f64()) {
            (Some(a), Some(b)) => Ok(Float(a / b)),
            _ => Err(invalid_binary(op, l, r)),
        },
        "**" | "^" => match (l.as_f64(), r.as_f64()) {
            (Some(a), Some(b)) => Ok(Float(a.powf(b))),
            _ => Err(invalid_binary(op, l, r)),
        },
        "%" => match (l, r) {
            (Int(_), Int(0)) => Err(eval_error("integer divide by zero".to_owned())),
            (Int(a), Int(b)) => Ok(Int(a.wrapping_rem(b))),
            _ => Err(invalid_binary(op, l, r)),
        },
        _ => Err(eval_error(format!("unknown operator {op}"))),
    }
}

fn call(func: Func, args: &[Value]) -> Result<Value, Error> {
    let invalid = |v: Value| {
        eval_error(format!(
            "invalid argument for {} (type {})",
            func.name(),
            v.type_name()
        ))
    };
    let first = args.first().copied().unwrap_or(Value::Nil);
    match func {
        Func::Max | Func::Min => {
            let mut best: Option<Value> = None;
            for &arg in args {
                let x = arg.as_f64().ok_or_else(|| invalid(arg))?;
                // The first extreme value wins ties, keeping its int/float type.
                let better = best.and_then(Value::as_f64).is_none_or(|b| match func {
                    Func::Max => x > b,
                    _ => x < b,
                });
                if better {
                    best = Some(arg);
                }
            }
            best.ok_or_else(|| invalid(Value::Nil))
        }
        Func::Abs => match first {
            Value::Int(i) => Ok(Value::Int(i.wrapping_abs())),
            Value::Float(f) => Ok(Value::Float(f.abs())),
            v => Err(invalid(v)),
        },
        Func::Ceil | Func::Floor | Func::Round => match first {
            Value::Int(i) => Ok(Value::Float(i as f64)),
            Value::Float(f) => Ok(Value::Float(match func {
                Func::Ceil => f.ceil(),
                Func::Floor => f.floor(),
                // Go's math.Round: half away from zero, like f64::round.
                _ => f.round(),
            })),
            v => Err(invalid(v)),
        },
        Func::Float => to_float(first).map(Value::Float),
        Func::Int => match first {
            Value::Int(_) => Ok(first),
            // Go's int(float64) truncates toward zero.
            Value::Float(f) => Ok(Value::Int(f as i64)),
            v => Err(eval_error(format!(
                "invalid operation: int({})",
                v.type_name()
            ))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    const NAMES: [&str; 3] = ["a", "b", "c"];

    fn vars(a: Option<f64>, b: Option<f64>, c: Option<f64>) -> HashMap<String, Option<f64>> {
        HashMap::from([("a".into(), a), ("b".into(), b), ("c".into(), c)])
    }

    fn run(formula: &str, v: &HashMap<String, Option<f64>>) -> Result<Option<f64>, Error> {
        compile(formula, NAMES)?.eval(v)
    }

    #[test]
    fn evaluation_table() {
        let v = vars(Some(2.0), Some(3.0), Some(10.0));
        let cases: &[(&str, Option<f64>)] = &[
            // arithmetic and precedence
            ("a + b * c", Some(32.0)),
            ("(a + b) * c", Some(50.0)),
            ("c - b - a", Some(5.0)),
            ("c / a / 5", Some(1.0)),
            ("7 / 2", Some(3.5)),
            ("7 % 3", Some(1.0)),
            ("-a + b", Some(1.0)),
            ("- - a", Some(2.0)),
            ("+a", Some(2.0)),
            ("2 ** 3 ** 2", Some(512.0)),
            ("-2 ** 2", Some(-4.0)),
            ("a ^ b", Some(8.0)),
            ("1_000 + 0x10 + 0b11 + 0o7", Some(1026.0)),
            ("1e3 + .5", Some(1000.5)),
            ("(a + b + c) / 3 // average", Some(5.0)),
            ("a /* two */ * b", Some(6.0)),
            // comparisons, logic and ternary
            ("a < b ? 1 : 0", Some(1.0)),
            ("a > b ? 1 : 0", Some(0.0)),
            ("a <= 2 && b >= 3 ? 1 : 0", Some(1.0)),
            ("a == 2 and not (b != 3) ? 1 : 0", Some(1.0)),
            ("a == 1 || b == 3 ? c : 0", Some(10.0)),
            ("a == 1 or false ? c : 0", Some(0.0)),
            ("!true ? 1 : 2", Some(2.0)),
            ("a < b < c ? 1 : 0", Some(1.0)),
            ("c < b < a ? 1 : 0", Some(0.0)),
            ("a > 1 ? b > 5 ? 1 : 2 : 3", Some(2.0)),
            ("a == 2.0 ? 1 : 0", Some(1.0)),
            ("a == nil ? 1 : 0", Some(0.0)),
            // functions
            ("max(a, b, c)", Some(10.0)),
            ("min(a, b, c)", Some(2.0)),
            ("max(a)", Some(2.0)),
            ("abs(a - c)", Some(8.0)),
            ("abs(-4)", Some(4.0)),
            ("ceil(c / b)", Some(4.0)),
            ("floor(c / b)", Some(3.0)),
            ("round(2.5)", Some(3.0)),
            ("round(-2.5)", Some(-3.0)),
            ("int(c / b)", Some(3.0)),
            ("int(-3.9)", Some(-3.0)),
            ("float(7) / 2", Some(3.5)),
            ("int(c) % int(b)", Some(1.0)),
            // nil coalescing
            ("a ?? 5", Some(2.0)),
        ];
        for (formula, want) in cases {
            assert_eq!(run(formula, &v), Ok(*want), "{formula}");
        }
    }

    #[test]
    fn nil_handling() {
        let failing_a = vars(None, Some(3.0), Some(10.0));
        let cases: &[(&str, Result<Option<f64>, ()>)] = &[
            ("a ?? 5", Ok(Some(5.0))),
            ("(a ?? b) + c", Ok(Some(13.0))),
            ("a ?? nil", Ok(None)),
            ("a ?? b ?? c", Ok(Some(3.0))),
            ("a == nil ? b : a", Ok(Some(3.0))),
            // Without `??` the float() wrapper rejects nil, like upstream.
            ("a", Err(())),
            ("a + b", Err(())),
            ("nil", Err(())),
        ];
        for (formula, want) in cases {
            let got = run(formula, &failing_a).map_err(|_| ());
            assert_eq!(got, *want, "{formula}");
        }
        // A name missing from the variables is nil too.
        let f = compile("a ?? 1", NAMES).expect("compiles");
        assert_eq!(f.eval(&HashMap::new()), Ok(Some(1.0)));
    }

    #[test]
    fn compile_errors_name_the_position() {
        let cases: &[(&str, Error)] = &[
            (
                "a + d",
                Error::FormulaUnknownName {
                    what: "trigger",
                    name: "d".into(),
                    column: 5,
                },
            ),
            (
                "sqrt(a)",
                Error::FormulaUnknownName {
                    what: "function",
                    name: "sqrt".into(),
                    column: 1,
                },
            ),
            (
                "a +",
                Error::FormulaSyntax {
                    column: 4,
                    message: "unexpected end of formula".into(),
                },
            ),
            (
                "(a + b",
                Error::FormulaSyntax {
                    column: 7,
                    message: "expected ')', found end of formula".into(),
                },
            ),
            (
                "a b",
                Error::FormulaSyntax {
                    column: 3,
                    message: "unexpected name \"b\"".into(),
                },
            ),
            (
                "a # b",
                Error::FormulaSyntax {
                    column: 3,
                    message: "unexpected character '#'".into(),
                },
            ),
            (
                "a ?? 1 + 2",
                Error::FormulaSyntax {
                    column: 8,
                    message: "operator \"+\" and coalesce expressions (??) cannot be mixed; wrap either in parentheses".into(),
                },
            ),
            (
                "12abc",
                Error::FormulaSyntax {
                    column: 1,
                    message: "bad number syntax: \"12a\"".into(),
                },
            ),
        ];
        for (formula, want) in cases {
            assert_eq!(
                compile(formula, NAMES).err().as_ref(),
                Some(want),
                "{formula}"
            );
        }
        for formula in ["", "a ? b", "max()", "abs(a, b)", "a ?: b", "'x'", "a = b"] {
            assert!(
                matches!(compile(formula, NAMES), Err(Error::FormulaSyntax { .. })),
                "{formula:?} should not compile"
            );
        }
    }

    #[test]
    fn runtime_type_errors() {
        let v = vars(Some(2.0), Some(3.0), Some(10.0));
        let cases = [
            ("a % 2", "invalid operation: float64 % int"),
            ("5 % 0", "integer divide by zero"),
            ("a && b ? 1 : 0", "non-bool value (float64) used with &&"),
            ("a ? 1 : 0", "non-bool value (float64) used as condition"),
            ("true", "invalid operation: float(bool)"),
            ("!a", "invalid operation: !float64"),
            ("max(a, true)", "invalid argument for max (type bool)"),
        ];
        for (formula, message) in cases {
            assert_eq!(
                run(formula, &v),
                Err(Error::FormulaEval {
                    message: message.into()
                }),
                "{formula}"
            );
        }
    }

    #[test]
    fn validation_runs_with_minus_one() {
        assert!(validate("a + b", NAMES).is_ok());
        assert!(validate("a / b", NAMES).is_ok());
        assert!(
            validate("a > 0 ? a : b % 2", NAMES).is_err(),
            "-1 takes the % branch"
        );
        assert!(validate("a ?? 0", NAMES).is_ok());
        assert!(validate("x + 1", NAMES).is_err());
    }

    fn so(modifiers: &str, triggers: &str) -> ScaledObject {
        serde_yaml_ng::from_str(&format!(
            r#"
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {{name: w}}
spec:
  scaleTargetRef: {{name: web}}
  advanced: {{scalingModifiers: {modifiers}}}
  triggers: {triggers}
"#
        ))
        .expect("parses")
    }

    #[test]
    fn scaling_modifiers_validation() {
        let triggers = r#"[{type: prometheus, name: a, metadata: {}}, {type: kafka, name: b, metadata: {}}, {type: cpu, name: c, metadata: {}}, {type: cron, metadata: {}}]"#;
        let s = so(
            r#"{formula: "(a + b) / 2", target: "5", activationTarget: "1.5"}"#,
            triggers,
        );
        assert_eq!(trigger_names(&s), vec!["a".to_owned(), "b".to_owned()]);
        let f = compile_scaling_modifiers(&s)
            .expect("valid")
            .expect("has modifiers");
        assert_eq!(f.source(), "(a + b) / 2");
        assert_eq!(
            f.eval(&HashMap::from([
                ("a".into(), Some(4.0)),
                ("b".into(), Some(8.0))
            ])),
            Ok(Some(6.0))
        );
        assert_eq!(activation_target(&s), Ok(1.5));

        let bad = [
            r#"{target: "5"}"#,
            r#"{formula: "a"}"#,
            r#"{formula: "a", target: "0"}"#,
            r#"{formula: "a", target: "x"}"#,
            r#"{formula: "a", target: "5", activationTarget: "x"}"#,
        ];
        for m in bad {
            assert!(
                matches!(
                    compile_scaling_modifiers(&so(m, triggers)),
                    Err(Error::InvalidScalingModifiers { .. })
                ),
                "{m}"
            );
        }
        // cpu triggers are not formula variables.
        assert!(matches!(
            compile_scaling_modifiers(&so(r#"{formula: "a + c", target: "5"}"#, triggers)),
            Err(Error::FormulaUnknownName { .. })
        ));
        let without: ScaledObject = so("{}", triggers);
        assert_eq!(compile_scaling_modifiers(&without), Ok(None));
        assert_eq!(activation_target(&without), Ok(0.0));
    }

    #[test]
    fn free_eval_matches_method() {
        let f = compile("max(a, b) - min(a, b)", NAMES).expect("compiles");
        let v = vars(Some(1.0), Some(4.0), None);
        assert_eq!(eval(&f, &v), Ok(Some(3.0)));
    }
}
