//! The language end to end: every case compiles a formula and runs it, so the lexer, parser and
//! evaluator are tested together, as users meet them.

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
