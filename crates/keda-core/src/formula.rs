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
//!
//! # Limits
//!
//! A formula is user input that the operator, the metrics server, the admission webhook and `keda lint`
//! all compile, so no formula may crash them. [`compile`] refuses, before any recursion, a formula longer
//! than [`MAX_FORMULA_BYTES`] bytes or of more than [`MAX_FORMULA_TOKENS`] tokens, and while parsing one
//! nested deeper than [`MAX_FORMULA_DEPTH`] levels. Real formulas are a line (`(a + b) / 2`, `max(a, b)`,
//! a ternary or two: well under 30 tokens and 5 levels), so the limits only stop input meant to hurt:
//! thousands of `(` or `-` that would otherwise overflow the stack.
//!
//! A level is one call of the parser's `expression`: the whole formula, each parenthesised
//! group, function argument, operand of a unary operator, branch of `?:`, right operand of `**`, and each
//! right operand of an operator that binds tighter than the one before it (`a || b && c == d + e * f`
//! uses 6).
//!
//! Operators of one level (`a + b + c + …`, `a < b <= c`) are kept as one flat chain, so the tree is at
//! most 3 nodes per level deep (a `?:` around a chain around a call or unary operator) and a clone, a
//! comparison or a drop of a formula recurses at most `3 * MAX_FORMULA_DEPTH + 1` times. The parser
//! recurses through 2 functions per level; evaluation runs on a heap stack and does not recurse at all.
//! `tests/formula_fuzz.rs` runs the worst cases, and arbitrary input up to 64 KiB, on a 256 KiB stack
//! in a debug build (the deepest formula needs about 192 KiB there).
//!
//! The limit errors are [`Error::InvalidScalingModifiers`] whose reason starts with [`FORMULA_FIELD`]:
//! `spec.advanced.scalingModifiers.formula: longer than 4096 bytes (5000)`,
//! `spec.advanced.scalingModifiers.formula: more than 1024 tokens` and
//! `spec.advanced.scalingModifiers.formula: nesting deeper than 64 levels (at column 65)`.

use std::collections::HashMap;

use keda_api::ScaledObject;

use crate::Error;
use crate::hpa::parse_go_float;

/// The value every trigger gets when a formula is validated, as upstream does.
pub const VALIDATION_VALUE: f64 = -1.0;

/// The formula's field, named by the limit errors (and by the shared validation's findings).
pub const FORMULA_FIELD: &str = "spec.advanced.scalingModifiers.formula";

/// Longest formula [`compile`] accepts, in bytes (UTF-8). A hundred times a real formula; checked before
/// anything else, so a huge input costs one comparison.
pub const MAX_FORMULA_BYTES: usize = 4096;

/// Most tokens (numbers, names, operators, parentheses, commas) in a formula: bounds the tree's size and so
/// the work of one evaluation. Enough for a sum over 500 triggers.
pub const MAX_FORMULA_TOKENS: usize = 1024;

/// Deepest nesting, in the parser's levels (see the module docs): bounds every recursion over a formula.
/// Real formulas use fewer than 10.
pub const MAX_FORMULA_DEPTH: usize = 64;

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
    if formula.len() > MAX_FORMULA_BYTES {
        return Err(limit(format!(
            "longer than {MAX_FORMULA_BYTES} bytes ({})",
            formula.len()
        )));
    }
    let tokens = lex(formula)?;
    // `lex` ends the list with `Tok::End`.
    if tokens.len() > MAX_FORMULA_TOKENS + 1 {
        return Err(limit(format!("more than {MAX_FORMULA_TOKENS} tokens")));
    }
    let mut parser = Parser {
        tokens,
        pos: 0,
        names: &names,
        depth: 0,
        error: None,
    };
    let Some(root) = parser.expression(0) else {
        return Err(parser
            .error
            .unwrap_or_else(|| syntax(1, "cannot parse".to_owned())));
    };
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

/// A formula beyond one of the limits (see the module docs).
fn limit(what: String) -> Error {
    Error::InvalidScalingModifiers {
        reason: format!("{FORMULA_FIELD}: {what}"),
    }
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
    /// `first op1 rhs1 op2 rhs2 …`, folded from the left: the operators one level of the parser met
    /// (`a + b - c`, `a * b + c`, `a < b <= c`). Kept flat so that long chains cost no depth.
    Chain(Box<Node>, Vec<Step>),
    Cond(Box<Node>, Box<Node>, Box<Node>),
    Call(Func, Vec<Node>),
}

/// One operator of a [`Node::Chain`] with its right operand.
#[derive(Clone, Debug, PartialEq)]
struct Step {
    op: &'static str,
    rhs: Node,
    /// A comparison continuing a comparison chain: `a < b <= c` is `a < b && b <= c`, so this step
    /// compares the previous step's right operand with `rhs`, and only when the chain so far is true.
    chained: bool,
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
    /// `expression` calls under way: the nesting [`MAX_FORMULA_DEPTH`] bounds. Every recursion of the
    /// parser goes through `expression`.
    depth: usize,
    /// The first error met; the parse then returns `None` all the way up.
    error: Option<Error>,
}

impl Parser<'_> {
    fn peek(&self) -> &Token {
        static END: Token = Token {
            kind: Tok::End,
            column: 1,
        };
        self.tokens
            .get(self.pos)
            .or(self.tokens.last())
            .unwrap_or(&END)
    }

    fn advance(&mut self) -> Token {
        let t = self.peek().clone();
        if self.pos < self.tokens.len() {
            self.pos += 1;
        }
        t
    }

    /// `advance` without a copy of the token.
    fn skip(&mut self) {
        if self.pos < self.tokens.len() {
            self.pos += 1;
        }
    }

    /// Records why the parse stopped; the caller returns `None`.
    fn fail(&mut self, error: Error) {
        self.error.get_or_insert(error);
    }

    /// Consumes the next token if it is `kind`; records an error otherwise.
    fn expect(&mut self, kind: Tok) -> Option<()> {
        let t = self.advance();
        if t.kind == kind {
            return Some(());
        }
        self.fail(syntax(
            t.column,
            format!("expected {kind}, found {}", t.kind),
        ));
        None
    }

    /// One level of nesting (refused beyond [`MAX_FORMULA_DEPTH`]), by precedence climbing: an operand,
    /// then the operators binding at least `min_precedence` as one [`Node::Chain`], then at the top of an
    /// expression `?:`. `None` after an error, which [`Parser::fail`] recorded.
    ///
    /// `expression` and `primary` are the parser's only recursion, so their stack frames are kept small
    /// (a debug build gives every temporary its own slot): they return an `Option` and leave building
    /// errors to other functions.
    fn expression(&mut self, min_precedence: u32) -> Option<Node> {
        // An error ends the parse, so the level is only given back on success.
        self.depth += 1;
        if self.depth > MAX_FORMULA_DEPTH {
            self.too_deep();
            return None;
        }
        let first = self.primary()?;
        let mut steps = Vec::new();
        let mut previous: Option<&'static str> = None;
        while let Tok::Op(op) = self.peek().kind {
            let Some((precedence, right_assoc)) = binary_op(op) else {
                break;
            };
            if precedence < min_precedence {
                break;
            }
            if previous == Some("??") && op != "??" {
                self.mixed_coalesce(op);
                return None;
            }
            self.skip();
            let next_min = if right_assoc {
                precedence
            } else {
                precedence + 1
            };
            let mut step_op = op;
            let mut chained = false;
            loop {
                let rhs = self.expression(next_min)?;
                steps.push(Step {
                    op: step_op,
                    rhs,
                    chained,
                });
                // `a < b <= c` means `a < b && b <= c`, as in expr-lang.
                match self.peek().kind {
                    Tok::Op(next) if is_ordering(op) && is_ordering(next) => {
                        self.skip();
                        step_op = next;
                        chained = true;
                    }
                    _ => break,
                }
            }
            previous = Some(op);
        }
        let mut node = if steps.is_empty() {
            first
        } else {
            Node::Chain(Box::new(first), steps)
        };
        // `cond ? a : b`. The else branch is a whole expression, so it takes any `?:` that follows
        // (`a ? b : c ? d : e` is `a ? b : (c ? d : e)`): one `?:` per level is all there is.
        if min_precedence == 0 && matches!(self.peek().kind, Tok::Question) {
            self.skip();
            if matches!(self.peek().kind, Tok::Colon) {
                self.elvis();
                return None;
            }
            let then = self.expression(0)?;
            self.expect(Tok::Colon)?;
            let otherwise = self.expression(0)?;
            node = Node::Cond(Box::new(node), Box::new(then), Box::new(otherwise));
        }
        self.depth -= 1;
        Some(node)
    }

    /// An operand: unary operator, parenthesised expression, function call or [`Parser::leaf`].
    fn primary(&mut self) -> Option<Node> {
        let token = self.advance();
        match token.kind {
            Tok::Op(op) if unary_precedence(op).is_some() => {
                let precedence = unary_precedence(op).unwrap_or_default();
                Some(Node::Unary(op, Box::new(self.expression(precedence)?)))
            }
            Tok::LParen => {
                let inner = self.expression(0)?;
                self.expect(Tok::RParen)?;
                Some(inner)
            }
            Tok::Ident(ref name)
                if matches!(self.peek().kind, Tok::LParen)
                    && !matches!(name.as_str(), "true" | "false" | "nil") =>
            {
                let func = self.function(name, token.column)?;
                self.skip();
                let mut args = Vec::new();
                if !matches!(self.peek().kind, Tok::RParen) {
                    loop {
                        args.push(self.expression(0)?);
                        if !matches!(self.peek().kind, Tok::Comma) {
                            break;
                        }
                        self.skip();
                    }
                }
                self.expect(Tok::RParen)?;
                self.check_arity(func, args.len(), token.column)?;
                Some(Node::Call(func, args))
            }
            _ => self.leaf(token),
        }
    }

    /// A number, `true`, `false`, `nil` or a trigger name.
    fn leaf(&mut self, token: Token) -> Option<Node> {
        let result = match token.kind {
            Tok::Int(i) => Ok(Node::Literal(Value::Int(i))),
            Tok::Float(f) => Ok(Node::Literal(Value::Float(f))),
            Tok::Ident(name) => match name.as_str() {
                "true" => Ok(Node::Literal(Value::Bool(true))),
                "false" => Ok(Node::Literal(Value::Bool(false))),
                "nil" => Ok(Node::Literal(Value::Nil)),
                _ if self.names.contains(&name) => Ok(Node::Var(name)),
                _ => Err(Error::FormulaUnknownName {
                    what: "trigger",
                    name,
                    column: token.column,
                }),
            },
            other => Err(syntax(token.column, format!("unexpected {other}"))),
        };
        result.map_err(|e| self.fail(e)).ok()
    }

    fn function(&mut self, name: &str, column: usize) -> Option<Func> {
        let func = Func::from_name(name);
        if func.is_none() {
            self.fail(Error::FormulaUnknownName {
                what: "function",
                name: name.to_owned(),
                column,
            });
        }
        func
    }

    fn check_arity(&mut self, func: Func, args: usize, column: usize) -> Option<()> {
        let ok = match func {
            Func::Max | Func::Min => args > 0,
            _ => args == 1,
        };
        if !ok {
            self.fail(syntax(
                column,
                format!("wrong number of arguments ({args}) for {}", func.name()),
            ));
        }
        ok.then_some(())
    }

    fn too_deep(&mut self) {
        let column = self.peek().column;
        self.fail(limit(format!(
            "nesting deeper than {MAX_FORMULA_DEPTH} levels (at column {column})"
        )));
    }

    fn mixed_coalesce(&mut self, op: &str) {
        let column = self.peek().column;
        self.fail(syntax(
            column,
            format!(
                "operator {op:?} and coalesce expressions (??) cannot be mixed; wrap either in parentheses"
            ),
        ));
    }

    fn elvis(&mut self) {
        let column = self.peek().column;
        self.fail(syntax(
            column,
            "the ?: operator is not supported".to_owned(),
        ));
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

/// What is left to do while evaluating, innermost last. Evaluation runs on this heap stack, not on the
/// call stack, so no formula can exhaust the latter however it nests.
enum Task<'n> {
    /// Evaluate a node and push its value.
    Eval(&'n Node),
    /// Pop the operand, push `op operand`.
    Unary(&'static str),
    /// Pop the condition, then evaluate one of the branches.
    Branch(&'n Node, &'n Node),
    /// Pop the last `n` values (the arguments, in order), push the call's result.
    Call(Func, usize),
    /// The chain's value so far is on top: apply `steps[next..]`. `last` is the right operand of the
    /// last comparison, for a chained one.
    Chain {
        steps: &'n [Step],
        next: usize,
        last: Value,
    },
    /// The right operand of `step` (`steps[at]`) is on top, the chain's value so far below it.
    Apply {
        steps: &'n [Step],
        at: usize,
        step: &'n Step,
        last: Value,
    },
}

fn eval_node(root: &Node, vars: &HashMap<String, Option<f64>>) -> Result<Value, Error> {
    let mut tasks = vec![Task::Eval(root)];
    let mut values: Vec<Value> = Vec::new();
    // Never empty when popped: each task pops only what the tasks before it pushed.
    let pop = |values: &mut Vec<Value>| values.pop().unwrap_or(Value::Nil);
    while let Some(task) = tasks.pop() {
        match task {
            Task::Eval(node) => match node {
                Node::Literal(v) => values.push(*v),
                Node::Var(name) => values.push(
                    vars.get(name)
                        .copied()
                        .flatten()
                        .map_or(Value::Nil, Value::Float),
                ),
                Node::Unary(op, operand) => {
                    tasks.push(Task::Unary(op));
                    tasks.push(Task::Eval(operand));
                }
                Node::Cond(cond, then, otherwise) => {
                    tasks.push(Task::Branch(then, otherwise));
                    tasks.push(Task::Eval(cond));
                }
                Node::Call(func, args) => {
                    tasks.push(Task::Call(*func, args.len()));
                    tasks.extend(args.iter().rev().map(Task::Eval));
                }
                Node::Chain(first, steps) => {
                    tasks.push(Task::Chain {
                        steps,
                        next: 0,
                        last: Value::Nil,
                    });
                    tasks.push(Task::Eval(first));
                }
            },
            Task::Unary(op) => {
                let v = pop(&mut values);
                values.push(unary(op, v)?);
            }
            Task::Branch(then, otherwise) => {
                let cond = expect_bool(pop(&mut values), "as condition")?;
                tasks.push(Task::Eval(if cond { then } else { otherwise }));
            }
            Task::Call(func, n) => {
                let args = values.split_off(values.len().saturating_sub(n));
                values.push(call(func, &args)?);
            }
            Task::Chain { steps, next, last } => {
                // Steps that short-circuit take no right operand; stop at the first that needs one.
                let mut acc = pop(&mut values);
                let mut at = next;
                while let Some(step) = steps.get(at) {
                    match short_circuit(step, acc)? {
                        Some(v) => {
                            acc = v;
                            at += 1;
                        }
                        None => {
                            tasks.push(Task::Apply {
                                steps,
                                at,
                                step,
                                last,
                            });
                            tasks.push(Task::Eval(&step.rhs));
                            break;
                        }
                    }
                }
                values.push(acc);
            }
            Task::Apply {
                steps,
                at,
                step,
                last,
            } => {
                let rhs = pop(&mut values);
                let acc = pop(&mut values);
                let (acc, last) = apply_step(step, acc, rhs, last)?;
                values.push(acc);
                tasks.push(Task::Chain {
                    steps,
                    next: at + 1,
                    last,
                });
            }
        }
    }
    Ok(pop(&mut values))
}

fn unary(op: &str, v: Value) -> Result<Value, Error> {
    match (op, v) {
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

/// The value of `acc step.op …` when it does not depend on the right operand (`false && x`,
/// `true || x`, `1 ?? x`, a chained comparison after a false one), like expr-lang's short-circuits.
fn short_circuit(step: &Step, acc: Value) -> Result<Option<Value>, Error> {
    if step.chained {
        // `… && last op rhs`: the chain so far is a bool.
        return Ok((acc == Value::Bool(false)).then_some(acc));
    }
    Ok(match step.op {
        "&&" | "||" => {
            let left = expect_bool(acc, &format!("with {}", step.op))?;
            ((step.op == "&&") != left).then_some(Value::Bool(left))
        }
        "??" => (acc != Value::Nil).then_some(acc),
        _ => None,
    })
}

/// `acc step.op rhs`, and the right operand a chained comparison after this one compares.
fn apply_step(step: &Step, acc: Value, rhs: Value, last: Value) -> Result<(Value, Value), Error> {
    let op = step.op;
    let value = if step.chained {
        binary(op, last, rhs)?
    } else {
        match op {
            "&&" | "||" => Value::Bool(expect_bool(rhs, &format!("with {op}"))?),
            // `acc` was nil.
            "??" => rhs,
            _ => binary(op, acc, rhs)?,
        }
    };
    Ok((value, rhs))
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

    fn too_much(what: &str) -> Error {
        Error::InvalidScalingModifiers {
            reason: format!("spec.advanced.scalingModifiers.formula: {what}"),
        }
    }

    /// The inputs that used to overflow the stack (or, for nested comparison chains, grow the tree
    /// exponentially) and the limits that now stop them.
    #[test]
    fn limits_table() {
        let nested = |open: &str, inner: &str, close: &str, n: usize| {
            format!("{}{inner}{}", open.repeat(n), close.repeat(n))
        };
        let cases: Vec<(String, Error)> = vec![
            (
                nested("(", "a", ")", 64),
                too_much("nesting deeper than 64 levels (at column 65)"),
            ),
            (
                nested("(", "a", ")", 500),
                too_much("nesting deeper than 64 levels (at column 65)"),
            ),
            (
                nested("-", "a", "", 1000),
                too_much("nesting deeper than 64 levels (at column 65)"),
            ),
            (
                nested("- ", "a", "", 1000),
                too_much("nesting deeper than 64 levels (at column 129)"),
            ),
            (
                nested("!", "true", "", 1000),
                too_much("nesting deeper than 64 levels (at column 65)"),
            ),
            (
                nested("not ", "true", "", 1000),
                too_much("nesting deeper than 64 levels (at column 257)"),
            ),
            (
                nested("abs(", "a", ")", 300),
                too_much("nesting deeper than 64 levels (at column 257)"),
            ),
            // The first argument of the 64th `max` is the 65th level.
            (
                nested("max(a, ", "a", ")", 200),
                too_much("nesting deeper than 64 levels (at column 446)"),
            ),
            // `**` is right-associative: each operator is a level.
            (
                nested("2**", "2", "", 500),
                too_much("nesting deeper than 64 levels (at column 193)"),
            ),
            // The 64th `?:` is on level 64, so its then branch is the 65th.
            (
                nested("a ? 1 : ", "0", "", 250),
                too_much("nesting deeper than 64 levels (at column 509)"),
            ),
            (
                nested("(a < ", "a", " < a)", 100),
                too_much("nesting deeper than 64 levels (at column 161)"),
            ),
            // The token count is checked before parsing: long runs of `(` or `-` stop there.
            (
                nested("(", "a", ")", 2000),
                too_much("more than 1024 tokens"),
            ),
            (
                nested("-", "a", "", 4000),
                too_much("more than 1024 tokens"),
            ),
            (
                format!("a{}", "+a".repeat(600)),
                too_much("more than 1024 tokens"),
            ),
            (
                format!("a{}", " < a".repeat(600)),
                too_much("more than 1024 tokens"),
            ),
            (
                format!("a{}", "+a".repeat(5000)),
                too_much("longer than 4096 bytes (10001)"),
            ),
            (
                " ".repeat(65536),
                too_much("longer than 4096 bytes (65536)"),
            ),
            (
                nested("(", "a", ")", 100_000),
                too_much("longer than 4096 bytes (200001)"),
            ),
            ("é".repeat(2049), too_much("longer than 4096 bytes (4098)")),
        ];
        for (formula, want) in &cases {
            let head: String = formula.chars().take(40).collect();
            assert_eq!(
                compile(formula, NAMES).err().as_ref(),
                Some(want),
                "{head}…"
            );
            assert_eq!(
                validate(formula, NAMES).err().as_ref(),
                Some(want),
                "{head}…"
            );
        }
        assert_eq!(
            too_much("nesting deeper than 64 levels (at column 65)").to_string(),
            "invalid scalingModifiers: spec.advanced.scalingModifiers.formula: nesting deeper than 64 levels (at column 65)"
        );
    }

    /// Just inside the limits everything still compiles and evaluates.
    #[test]
    fn largest_formulas_within_the_limits() {
        let v = vars(Some(2.0), Some(3.0), Some(10.0));
        let nested = |open: &str, inner: &str, close: &str, n: usize| {
            format!("{}{inner}{}", open.repeat(n), close.repeat(n))
        };
        let cases: Vec<(String, f64)> = vec![
            (nested("(", "a", ")", 63), 2.0),
            (nested("-", "a", "", 62), 2.0),
            (nested("abs(", "a", ")", 63), 2.0),
            (nested("1**", "2", "", 63), 1.0),
            // 512 terms: 1023 tokens.
            (format!("a{}", "+a".repeat(511)), 1024.0),
            (format!("c{}", "-a*b".repeat(255)), 10.0 - 255.0 * 6.0),
            // A chain that alternates equality and ordering stays flat.
            (
                format!("a < b{} ? 1 : 0", " == true != false".repeat(100)),
                1.0,
            ),
            (nested("(a < ", "b", " < c) == true ? 1 : 0", 1), 1.0),
        ];
        for (formula, want) in &cases {
            let got = compile(formula, NAMES).and_then(|f| f.eval(&v));
            assert_eq!(got, Ok(Some(*want)), "{formula}");
        }
        // Nested comparison chains: the middle operand used to be copied per level (2^31 nodes here).
        let chains = compile(&nested("(a < ", "b", " < c)", 31), NAMES).expect("compiles");
        assert_eq!(
            chains.eval(&v),
            Err(Error::FormulaEval {
                message: "invalid operation: float64 < bool".into()
            })
        );
    }

    #[test]
    fn comparison_chains_keep_their_meaning() {
        let v = vars(Some(2.0), Some(3.0), Some(10.0));
        let cases: &[(&str, Option<f64>)] = &[
            ("a < b < c ? 1 : 0", Some(1.0)),
            ("a < c < b ? 1 : 0", Some(0.0)),
            ("c < a < b ? 1 : 0", Some(0.0)),
            ("a < b == true ? 1 : 0", Some(1.0)),
            ("a < b < c == true ? 1 : 0", Some(1.0)),
            ("b > a < c ? 1 : 0", Some(1.0)),
            ("a <= 2 <= b >= 3 > 2 ? 1 : 0", Some(1.0)),
            ("a + 1 < b + 1 < c + 1 ? 1 : 0", Some(1.0)),
            ("a < b || c < a ? 1 : 0", Some(1.0)),
            ("a > b && a < b ? 1 : 0", Some(0.0)),
        ];
        for (formula, want) in cases {
            assert_eq!(run(formula, &v), Ok(*want), "{formula}");
        }
        // A false comparison short-circuits the rest of the chain, as `&&` does.
        assert_eq!(run("c < a < true ? 1 : 0", &v), Ok(Some(0.0)));
        assert_eq!(
            run("a < c < true ? 1 : 0", &v),
            Err(Error::FormulaEval {
                message: "invalid operation: float64 < bool".into()
            })
        );
    }

    #[test]
    fn free_eval_matches_method() {
        let f = compile("max(a, b) - min(a, b)", NAMES).expect("compiles");
        let v = vars(Some(1.0), Some(4.0), None);
        assert_eq!(eval(&f, &v), Ok(Some(3.0)));
    }
}
