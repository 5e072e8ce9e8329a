//! Tokens to the tree: precedence climbing with expr-lang's operator table, refusing nesting beyond
//! [`MAX_FORMULA_DEPTH`].

use super::lex::{Tok, Token};
use super::tree::{Func, Node, Step, Value};
use super::{MAX_FORMULA_DEPTH, limit, syntax};
use crate::Error;

/// The tree of a whole formula; every name must be one of `names` or a known function.
pub(super) fn parse(tokens: Vec<Token>, names: &[String]) -> Result<Node, Error> {
    let mut parser = Parser {
        tokens,
        pos: 0,
        names,
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
    Ok(root)
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
