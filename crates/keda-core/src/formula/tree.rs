//! The compiled formula: what the parser builds and the evaluator walks.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Func {
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
    pub(super) fn from_name(name: &str) -> Option<Func> {
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

    pub(super) fn name(self) -> &'static str {
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
pub(super) enum Node {
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
pub(super) struct Step {
    pub(super) op: &'static str,
    pub(super) rhs: Node,
    /// A comparison continuing a comparison chain: `a < b <= c` is `a < b && b <= c`, so this step
    /// compares the previous step's right operand with `rhs`, and only when the chain so far is true.
    pub(super) chained: bool,
}

/// A literal, and every intermediate value of an evaluation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Value {
    Int(i64),
    Float(f64),
    Bool(bool),
    Nil,
}

impl Value {
    /// The Go type name expr-lang prints in its messages.
    pub(super) fn type_name(self) -> &'static str {
        match self {
            Value::Int(_) => "int",
            Value::Float(_) => "float64",
            Value::Bool(_) => "bool",
            Value::Nil => "<nil>",
        }
    }

    pub(super) fn as_f64(self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(i as f64),
            Value::Float(f) => Some(f),
            _ => None,
        }
    }
}
