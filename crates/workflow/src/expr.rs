//! Conditions on sequence flows (条件表达式): the small part of JUEL that modelers write, e.g.
//! `${amount > 1000 && type == "enterprise"}` or `${approved}`.
//!
//! Hand-written because the grammar is tiny and the errors must name the flow; a general expression
//! crate would accept far more than a condition should (assignments, function calls).

use std::fmt;

use serde_json::Value;

/// A parsed condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A literal value.
    Literal(Value),
    /// A form field, read from the instance's data.
    Field(String),
    /// `!x`, `not x`.
    Not(Box<Expr>),
    /// `empty x`: null, missing, empty string.
    Empty(Box<Expr>),
    /// `a && b`.
    And(Box<Expr>, Box<Expr>),
    /// `a || b`.
    Or(Box<Expr>, Box<Expr>),
    /// A comparison.
    Compare(CompareOp, Box<Expr>, Box<Expr>),
}

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    /// `==`, `eq`
    Eq,
    /// `!=`, `ne`
    Ne,
    /// `<`, `lt`
    Lt,
    /// `<=`, `le`
    Le,
    /// `>`, `gt`
    Gt,
    /// `>=`, `ge`
    Ge,
}

/// Why a condition did not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExprError {
    /// Character offset in the expression.
    pub at: usize,
    /// What was wrong.
    pub message: String,
}

impl fmt::Display for ExprError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (at character {})", self.message, self.at + 1)
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(f64),
    Str(String),
    Ident(String),
    Op(&'static str),
    LParen,
    RParen,
}

fn lex(src: &str) -> Result<Vec<(usize, Tok)>, ExprError> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let two: String = chars[i..chars.len().min(i + 2)].iter().collect();
        let op2 = ["&&", "||", "==", "!=", "<=", ">="].into_iter().find(|o| *o == two);
        if let Some(op) = op2 {
            out.push((start, Tok::Op(op)));
            i += 2;
            continue;
        }
        match c {
            '(' => out.push((start, Tok::LParen)),
            ')' => out.push((start, Tok::RParen)),
            '<' => out.push((start, Tok::Op("<"))),
            '>' => out.push((start, Tok::Op(">"))),
            '!' => out.push((start, Tok::Op("!"))),
            '"' | '\'' => {
                let mut s = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err(ExprError { at: start, message: "unterminated string".into() }),
                        Some(&q) if q == c => break,
                        Some('\\') => {
                            let Some(&n) = chars.get(i + 1) else {
                                return Err(ExprError { at: i, message: "unterminated string".into() });
                            };
                            s.push(n);
                            i += 2;
                            continue;
                        }
                        Some(&ch) => s.push(ch),
                    }
                    i += 1;
                }
                out.push((start, Tok::Str(s)));
            }
            d if d.is_ascii_digit() || (d == '-' && chars.get(i + 1).is_some_and(|n| n.is_ascii_digit())) => {
                let mut j = i + 1;
                while j < chars.len() && (chars[j].is_ascii_digit() || chars[j] == '.') {
                    j += 1;
                }
                let text: String = chars[i..j].iter().collect();
                let n = text.parse::<f64>().map_err(|_| ExprError { at: start, message: format!("bad number {text}") })?;
                out.push((start, Tok::Num(n)));
                i = j;
                continue;
            }
            a if a.is_alphabetic() || a == '_' => {
                let mut j = i + 1;
                while j < chars.len() && (chars[j].is_alphanumeric() || chars[j] == '_' || chars[j] == '.') {
                    j += 1;
                }
                out.push((start, Tok::Ident(chars[i..j].iter().collect())));
                i = j;
                continue;
            }
            other => return Err(ExprError { at: start, message: format!("unexpected character '{other}'") }),
        }
        i += 1;
    }
    Ok(out)
}

struct Parser {
    toks: Vec<(usize, Tok)>,
    pos: usize,
    end: usize,
    depth: usize,
}

const MAX_DEPTH: usize = 64;

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|t| &t.1)
    }

    fn at(&self) -> usize {
        self.toks.get(self.pos).map(|t| t.0).unwrap_or(self.end)
    }

    fn err<T>(&self, message: impl Into<String>) -> Result<T, ExprError> {
        Err(ExprError { at: self.at(), message: message.into() })
    }

    fn is_word(&self, words: &[&str]) -> bool {
        matches!(self.peek(), Some(Tok::Ident(w)) if words.contains(&w.as_str()))
    }

    fn or(&mut self) -> Result<Expr, ExprError> {
        let mut left = self.and()?;
        while matches!(self.peek(), Some(Tok::Op("||"))) || self.is_word(&["or"]) {
            self.pos += 1;
            let right = self.and()?;
            left = Expr::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, ExprError> {
        let mut left = self.unary()?;
        while matches!(self.peek(), Some(Tok::Op("&&"))) || self.is_word(&["and"]) {
            self.pos += 1;
            let right = self.unary()?;
            left = Expr::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, ExprError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return self.err("expression nested too deeply");
        }
        let e = if matches!(self.peek(), Some(Tok::Op("!"))) || self.is_word(&["not"]) {
            self.pos += 1;
            Expr::Not(Box::new(self.unary()?))
        } else if self.is_word(&["empty"]) {
            self.pos += 1;
            Expr::Empty(Box::new(self.unary()?))
        } else {
            self.comparison()?
        };
        self.depth -= 1;
        Ok(e)
    }

    fn comparison(&mut self) -> Result<Expr, ExprError> {
        let left = self.atom()?;
        let op = match self.peek() {
            Some(Tok::Op("==")) => Some(CompareOp::Eq),
            Some(Tok::Op("!=")) => Some(CompareOp::Ne),
            Some(Tok::Op("<")) => Some(CompareOp::Lt),
            Some(Tok::Op("<=")) => Some(CompareOp::Le),
            Some(Tok::Op(">")) => Some(CompareOp::Gt),
            Some(Tok::Op(">=")) => Some(CompareOp::Ge),
            Some(Tok::Ident(w)) => match w.as_str() {
                "eq" => Some(CompareOp::Eq),
                "ne" => Some(CompareOp::Ne),
                "lt" => Some(CompareOp::Lt),
                "le" => Some(CompareOp::Le),
                "gt" => Some(CompareOp::Gt),
                "ge" => Some(CompareOp::Ge),
                _ => None,
            },
            _ => None,
        };
        let Some(op) = op else { return Ok(left) };
        self.pos += 1;
        let right = self.atom()?;
        Ok(Expr::Compare(op, Box::new(left), Box::new(right)))
    }

    fn atom(&mut self) -> Result<Expr, ExprError> {
        let Some(tok) = self.peek().cloned() else { return self.err("expression ends too early") };
        self.pos += 1;
        match tok {
            Tok::Num(n) => Ok(Expr::Literal(serde_json::Number::from_f64(n).map(Value::Number).unwrap_or(Value::Null))),
            Tok::Str(s) => Ok(Expr::Literal(Value::String(s))),
            Tok::Ident(w) => Ok(match w.as_str() {
                "true" => Expr::Literal(Value::Bool(true)),
                "false" => Expr::Literal(Value::Bool(false)),
                "null" => Expr::Literal(Value::Null),
                "and" | "or" | "not" | "empty" | "eq" | "ne" | "lt" | "le" | "gt" | "ge" => {
                    self.pos -= 1;
                    return self.err(format!("unexpected '{w}'"));
                }
                _ => Expr::Field(w),
            }),
            Tok::LParen => {
                self.depth += 1;
                if self.depth > MAX_DEPTH {
                    return self.err("expression nested too deeply");
                }
                let e = self.or()?;
                self.depth -= 1;
                if !matches!(self.peek(), Some(Tok::RParen)) {
                    return self.err("missing ')'");
                }
                self.pos += 1;
                Ok(e)
            }
            Tok::RParen | Tok::Op(_) => {
                self.pos -= 1;
                self.err("expected a value or field name")
            }
        }
    }
}

impl Expr {
    /// Parses `${…}`, `#{…}` or a bare expression.
    pub fn parse(source: &str) -> Result<Expr, ExprError> {
        let trimmed = source.trim();
        let inner = trimmed.strip_prefix("${").or_else(|| trimmed.strip_prefix("#{")).and_then(|s| s.strip_suffix('}')).unwrap_or(trimmed);
        let offset = if inner.len() < trimmed.len() { 2 } else { 0 };
        let shift = |e: ExprError| ExprError { at: e.at + offset, message: e.message };
        Self::parse_inner(inner).map_err(shift)
    }

    fn parse_inner(inner: &str) -> Result<Expr, ExprError> {
        let toks = lex(inner)?;
        if toks.is_empty() {
            return Err(ExprError { at: 0, message: "empty condition".into() });
        }
        let mut p = Parser { end: inner.chars().count(), toks, pos: 0, depth: 0 };
        let e = p.or()?;
        if p.pos != p.toks.len() {
            return p.err("unexpected text after the condition");
        }
        Ok(e)
    }

    /// Every field the condition reads (the first segment of dotted names).
    pub fn fields(&self) -> Vec<&str> {
        let mut out = Vec::new();
        self.collect_fields(&mut out);
        out
    }

    fn collect_fields<'a>(&'a self, out: &mut Vec<&'a str>) {
        match self {
            Expr::Literal(_) => {}
            Expr::Field(f) => out.push(f.split('.').next().unwrap_or(f)),
            Expr::Not(e) | Expr::Empty(e) => e.collect_fields(out),
            Expr::And(a, b) | Expr::Or(a, b) | Expr::Compare(_, a, b) => {
                a.collect_fields(out);
                b.collect_fields(out);
            }
        }
    }

    /// Evaluates against the instance's data; a missing field reads as null.
    pub fn eval(&self, data: &serde_json::Map<String, Value>) -> bool {
        truthy(&self.value(data))
    }

    fn value(&self, data: &serde_json::Map<String, Value>) -> Value {
        match self {
            Expr::Literal(v) => v.clone(),
            Expr::Field(path) => lookup(data, path),
            Expr::Not(e) => Value::Bool(!e.eval(data)),
            Expr::Empty(e) => Value::Bool(match e.value(data) {
                Value::Null => true,
                Value::String(s) => s.is_empty(),
                Value::Array(a) => a.is_empty(),
                _ => false,
            }),
            Expr::And(a, b) => Value::Bool(a.eval(data) && b.eval(data)),
            Expr::Or(a, b) => Value::Bool(a.eval(data) || b.eval(data)),
            Expr::Compare(op, a, b) => Value::Bool(compare(*op, &a.value(data), &b.value(data))),
        }
    }
}

fn lookup(data: &serde_json::Map<String, Value>, path: &str) -> Value {
    let mut parts = path.split('.');
    let Some(first) = parts.next() else { return Value::Null };
    let mut cur = data.get(first).cloned().unwrap_or(Value::Null);
    for p in parts {
        cur = cur.get(p).cloned().unwrap_or(Value::Null);
    }
    cur
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::String(s) => s == "true",
        _ => false,
    }
}

fn as_number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn compare(op: CompareOp, a: &Value, b: &Value) -> bool {
    use std::cmp::Ordering;
    let ord = match (as_number(a), as_number(b)) {
        (Some(x), Some(y)) if a.is_number() || b.is_number() => x.partial_cmp(&y),
        _ => match (a, b) {
            (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
            (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
            (Value::Null, Value::Null) => Some(Ordering::Equal),
            _ => None,
        },
    };
    match (op, ord) {
        (CompareOp::Eq, o) => o == Some(Ordering::Equal),
        (CompareOp::Ne, o) => o != Some(Ordering::Equal),
        (_, None) => false,
        (CompareOp::Lt, Some(o)) => o == Ordering::Less,
        (CompareOp::Le, Some(o)) => o != Ordering::Greater,
        (CompareOp::Gt, Some(o)) => o == Ordering::Greater,
        (CompareOp::Ge, Some(o)) => o != Ordering::Less,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn data(v: Value) -> serde_json::Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn evaluates_camunda_style_conditions() {
        let d = data(json!({"amount": 1500, "kind": "enterprise", "approved": true, "note": ""}));
        assert!(Expr::parse("${amount > 1000}").unwrap().eval(&d));
        assert!(!Expr::parse("${amount <= 1000}").unwrap().eval(&d));
        assert!(Expr::parse("${kind == \"enterprise\" && approved}").unwrap().eval(&d));
        assert!(Expr::parse("${kind eq 'enterprise' and not (amount lt 100)}").unwrap().eval(&d));
        assert!(Expr::parse("${empty note || missing > 3}").unwrap().eval(&d));
        assert!(!Expr::parse("${!approved}").unwrap().eval(&d));
        assert!(Expr::parse("${missing == null}").unwrap().eval(&d));
        assert!(Expr::parse("${amount >= -2.5}").unwrap().eval(&d));
    }

    #[test]
    fn lists_fields_for_upload_checks() {
        let e = Expr::parse("${a > 1 && (b.c == 'x' || !d)}").unwrap();
        assert_eq!(e.fields(), vec!["a", "b", "d"]);
    }

    #[test]
    fn refuses_bad_syntax_with_position() {
        for bad in ["${}", "${a >}", "${(a > 1}", "${a > 1 b}", "${'x}", "${a ? b}", "${and}"] {
            assert!(Expr::parse(bad).is_err(), "{bad} should not parse");
        }
        let err = Expr::parse("${a > 1 b}").unwrap_err();
        assert_eq!(err.at, 8);
    }

    proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,80}") {
            let _ = Expr::parse(&s).map(|e| e.eval(&serde_json::Map::new()));
        }

        #[test]
        fn deep_nesting_is_refused_not_overflowed(n in 60usize..400) {
            let src = format!("{}a{}", "(".repeat(n), ")".repeat(n));
            let _ = Expr::parse(&src);
            let nots = format!("{}a", "!".repeat(n));
            let _ = Expr::parse(&nots);
        }
    }
}
