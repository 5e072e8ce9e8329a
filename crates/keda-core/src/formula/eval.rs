//! The tree to a value, typed as expr-lang types it (Go's int and float64 kept apart, `/` and `**` giving
//! floats, `%` needing ints, `&&` and `?:` needing bools), on a heap stack instead of recursion.

use std::collections::HashMap;

use super::tree::{Func, Node, Step, Value};
use crate::Error;

pub(super) fn to_float(v: Value) -> Result<f64, Error> {
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

pub(super) fn eval_node(root: &Node, vars: &HashMap<String, Option<f64>>) -> Result<Value, Error> {
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

fn eval_error(message: String) -> Error {
    Error::FormulaEval { message }
}
