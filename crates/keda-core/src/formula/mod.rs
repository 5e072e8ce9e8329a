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
//!
//! # Layout
//!
//! [`compile`] runs the three stages in order, one module each: `lex` (text to tokens), `parse` (tokens
//! to the `tree`, where the limits are enforced) and `eval` (the tree to a value, on a heap stack).
//! `scaling_modifiers` reads the ScaledObject fields around the formula.

use std::collections::HashMap;

use crate::Error;

mod eval;
mod lex;
mod parse;
mod scaling_modifiers;
#[cfg(test)]
mod tests;
mod tree;

pub use scaling_modifiers::{activation_target, compile_scaling_modifiers, trigger_names};

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
    root: tree::Node,
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
        match eval::eval_node(&self.root, vars)? {
            tree::Value::Nil if self.nil_preserving => Ok(None),
            v => eval::to_float(v).map(Some),
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
    let tokens = lex::lex(formula)?;
    // `lex` ends the list with `Tok::End`.
    if tokens.len() > MAX_FORMULA_TOKENS + 1 {
        return Err(limit(format!("more than {MAX_FORMULA_TOKENS} tokens")));
    }
    let root = parse::parse(tokens, &names)?;
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

fn syntax(column: usize, message: String) -> Error {
    Error::FormulaSyntax { column, message }
}

/// A formula beyond one of the limits (see the module docs).
fn limit(what: String) -> Error {
    Error::InvalidScalingModifiers {
        reason: format!("{FORMULA_FIELD}: {what}"),
    }
}
