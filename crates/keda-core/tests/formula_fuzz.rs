//! Formulas cannot crash anything: for arbitrary input (random text, token soup, generated expressions,
//! deep repetitions) up to 64 KiB, compile, validate, evaluate, clone and drop return — Ok or Err — on a
//! 256 KiB stack, which proves the parser's and evaluator's recursion bounds (a stack overflow aborts the
//! test binary). 256 cases per property (`PROPTEST_CASES` overrides).

use std::collections::HashMap;

use keda_core::Error;
use keda_core::formula::{FORMULA_FIELD, MAX_FORMULA_BYTES, MAX_FORMULA_DEPTH, compile, validate};
use proptest::prelude::*;

const NAMES: [&str; 3] = ["a", "b", "c"];
const SMALL_STACK: usize = 256 * 1024;
const MAX_INPUT: usize = 64 * 1024;

fn config() -> ProptestConfig {
    ProptestConfig {
        // 256 unless `PROPTEST_CASES` says otherwise (for a longer run by hand).
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(256),
        // Failures are kept by hand, as table cases in src/formula/tests.rs; nothing is written to the tree.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// The variables each compiled formula is evaluated with: normal, validation, nil, and non-finite values.
fn variable_sets() -> Vec<HashMap<String, Option<f64>>> {
    [
        Some(2.0),
        Some(-1.0),
        None,
        Some(0.0),
        Some(f64::NAN),
        Some(f64::INFINITY),
        Some(f64::MAX),
    ]
    .into_iter()
    .map(|v| NAMES.iter().map(|n| ((*n).to_owned(), v)).collect())
    .collect()
}

/// Everything a caller does with a formula, on a small stack; panics (in the test) if the thread
/// panicked. An overflow would abort the process.
fn exercise_on_small_stack(formula: String) {
    let handle = std::thread::Builder::new()
        .name("formula".into())
        .stack_size(SMALL_STACK)
        .spawn(move || exercise(&formula))
        .expect("spawn a thread");
    if let Err(panic) = handle.join() {
        std::panic::resume_unwind(panic);
    }
}

fn exercise(formula: &str) {
    let compiled = compile(formula, NAMES);
    if formula.len() > MAX_FORMULA_BYTES {
        assert_eq!(
            compiled,
            Err(Error::InvalidScalingModifiers {
                reason: format!(
                    "{FORMULA_FIELD}: longer than {MAX_FORMULA_BYTES} bytes ({})",
                    formula.len()
                )
            })
        );
    }
    let _ = validate(formula, NAMES);
    if let Ok(f) = compiled {
        for vars in variable_sets() {
            let _ = f.eval(&vars);
        }
        let copy = f.clone();
        assert_eq!(copy, f);
        assert!(!format!("{copy:?}").is_empty());
    }
}

/// Characters a formula is made of, plus a few that it should not contain.
fn formula_char() -> impl Strategy<Value = char> {
    prop_oneof![
        4 => prop::sample::select(
            "()+-*/%^<>=!&|?:,._ \t\n0123456789abcxeEnotdirulf$'\"#`"
                .chars()
                .collect::<Vec<_>>()
        ),
        1 => any::<char>(),
        1 => prop::sample::select(vec!['é', 'ß', '漢', '🦀', '\u{0}', '\u{200b}', '\u{feff}', 'ǅ', '٣']),
    ]
}

/// Tokens and fragments, glued into a "token soup".
fn token() -> impl Strategy<Value = String> {
    let fixed = prop::sample::select(vec![
        "(",
        ")",
        "+",
        "-",
        "*",
        "/",
        "%",
        "**",
        "^",
        "<",
        ">",
        "<=",
        ">=",
        "==",
        "!=",
        "!",
        "not",
        "&&",
        "||",
        "and",
        "or",
        "??",
        "?",
        ":",
        ",",
        "a",
        "b",
        "c",
        "d",
        "nil",
        "true",
        "false",
        "max(",
        "min(",
        "abs(",
        "ceil(",
        "floor(",
        "round(",
        "float(",
        "int(",
        "sqrt(",
        "len(",
        "0",
        "1",
        "-1",
        "2.5",
        ".5",
        "1e3",
        "1e308",
        "1e309",
        "1e-400",
        "0x7fffffffffffffff",
        "0x8000000000000000",
        "9223372036854775807",
        "9223372036854775808",
        "0b",
        "0o777",
        "1_000",
        "1__",
        "0x",
        "1e",
        "1.e5",
        "NaN",
        "Inf",
        "//",
        "/*",
        "*/",
        "\n",
        " ",
        "é",
        "🦀",
        "'s'",
        "\"",
        "$a",
        "_",
    ])
    .prop_map(str::to_owned);
    prop_oneof![
        6 => fixed,
        1 => any::<i64>().prop_map(|i| i.to_string()),
        1 => any::<f64>().prop_map(|f| format!("{f:e}")),
    ]
}

/// A generated piece, most often once, else repeated up to 64 KiB (cheaper than generating that much:
/// proptest is not optimised in a debug build).
fn repeated(piece: impl Strategy<Value = String>) -> impl Strategy<Value = String> {
    let times = prop_oneof![3 => Just(1usize), 1 => 2..256usize];
    (piece, times).prop_map(|(piece, times)| {
        let times = times.min(MAX_INPUT / piece.len().max(1)).max(1);
        piece.repeat(times)
    })
}

/// Well-formed-ish expressions: random trees of the language's constructs.
fn expression() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        prop::sample::select(vec![
            "a", "b", "c", "nil", "true", "false", "0", "1", "2.5", "-1"
        ])
        .prop_map(str::to_owned),
        any::<i32>().prop_map(|i| i.to_string()),
    ];
    leaf.prop_recursive(12, 256, 6, |inner| {
        let op = prop::sample::select(vec![
            "+", "-", "*", "/", "%", "**", "^", "<", ">", "<=", ">=", "==", "!=", "&&", "||", "??",
        ]);
        let func = prop::sample::select(vec![
            "max", "min", "abs", "ceil", "floor", "round", "float", "int", "nope",
        ]);
        prop_oneof![
            (inner.clone(), op, inner.clone()).prop_map(|(l, op, r)| format!("{l} {op} {r}")),
            inner.clone().prop_map(|e| format!("({e})")),
            (
                prop::sample::select(vec!["-", "+", "!", "not "]),
                inner.clone()
            )
                .prop_map(|(op, e)| format!("{op}{e}")),
            (inner.clone(), inner.clone(), inner.clone())
                .prop_map(|(c, t, e)| format!("{c} ? {t} : {e}")),
            (func, prop::collection::vec(inner.clone(), 0..4))
                .prop_map(|(f, args)| format!("{f}({})", args.join(", "))),
            prop::collection::vec(
                (inner, prop::sample::select(vec!["<", "<=", ">", ">="])),
                2..5
            )
            .prop_map(|parts| parts
                .into_iter()
                .map(|(e, op)| format!("{e} {op} "))
                .collect::<String>()
                + "c"),
        ]
    })
}

/// One construct repeated `n` times around a body: the inputs that used to overflow the stack.
fn repetition() -> impl Strategy<Value = String> {
    let pattern = prop::sample::select(vec![
        ("(", ")"),
        ("-", ""),
        ("- ", ""),
        ("!", ""),
        ("not ", ""),
        ("abs(", ")"),
        ("max(a, ", ")"),
        ("a ? 1 : ", ""),
        ("a ? (", ") : 0"),
        ("2 ** ", ""),
        ("(a < ", " < c)"),
        ("", " + a"),
        ("", " < a"),
        ("", " == a < b"),
        ("a ?? ", ""),
        ("(", ""),
        ("", ")"),
        ("/*", ""),
    ]);
    let count = prop_oneof![0..200usize, 60..70usize, 0..MAX_INPUT];
    (pattern, count, expression()).prop_map(|((open, close), n, body)| {
        let per = (open.len() + close.len()).max(1);
        let n = n.min((MAX_INPUT - body.len().min(MAX_INPUT)) / per);
        format!("{}{body}{}", open.repeat(n), close.repeat(n))
    })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_text_never_crashes(s in repeated(prop::collection::vec(formula_char(), 0..1024)
        .prop_map(String::from_iter)))
    {
        exercise_on_small_stack(s);
    }

    #[test]
    fn any_string_never_crashes(s in any::<String>()) {
        exercise_on_small_stack(s);
    }

    #[test]
    fn token_soup_never_crashes(s in repeated(prop::collection::vec(token(), 0..1024)
        .prop_map(|tokens| tokens.join(" "))))
    {
        exercise_on_small_stack(s);
    }

    #[test]
    fn generated_expressions_never_crash(e in expression()) {
        exercise_on_small_stack(e);
    }

    #[test]
    fn deep_repetitions_never_crash(s in repetition()) {
        prop_assert!(s.len() <= MAX_INPUT);
        exercise_on_small_stack(s);
    }
}

/// The deepest formulas the limits allow, each construct at its worst, compile and evaluate on the small
/// stack; one level more is refused with the nesting error.
#[test]
fn worst_cases_within_the_limits_fit_a_small_stack() {
    // Per level: a call (the deepest parser frames), a chain and a conditional (3 tree levels).
    let worst = |levels: usize| {
        (1..levels).fold("a".to_owned(), |inner, _| {
            format!("abs({inner}) + 1 > 0 ? 1 : 0")
        })
    };
    let nested = |open: &str, inner: &str, close: &str, n: usize| {
        format!("{}{inner}{}", open.repeat(n), close.repeat(n))
    };
    let cases = [
        worst(MAX_FORMULA_DEPTH),
        nested("(", "a", ")", MAX_FORMULA_DEPTH - 1),
        nested("-", "a", "", MAX_FORMULA_DEPTH - 1),
        nested("max(a, ", "a", ")", MAX_FORMULA_DEPTH - 1),
        nested("2 ** ", "1", "", MAX_FORMULA_DEPTH - 1),
        nested("a > 0 ? 1 : ", "0", "", MAX_FORMULA_DEPTH - 1),
        // Two levels per comparison: the parenthesis and the chain's operand.
        format!(
            "({})",
            nested("(a < ", "b", " < c)", MAX_FORMULA_DEPTH / 2 - 1)
        ),
    ];
    for formula in cases {
        let head: String = formula.chars().take(30).collect();
        let f = compile(&formula, NAMES).unwrap_or_else(|e| panic!("{head}…: {e}"));
        let deeper = format!("({formula})");
        assert!(
            matches!(
                compile(&deeper, NAMES),
                Err(Error::InvalidScalingModifiers { ref reason }) if reason.contains("nesting deeper than 64 levels")
            ),
            "{head}…"
        );
        drop(f);
        exercise_on_small_stack(formula);
    }
    assert_eq!(
        compile(&worst(MAX_FORMULA_DEPTH), NAMES).and_then(|f| f.eval(&variable_sets()[0])),
        Ok(Some(1.0))
    );
}
