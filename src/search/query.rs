//! The query language: syntax tree, parser and printer (execution lives in
//! the private `compile` module). Grammar and semantics: `schema/QUERY.md`.
//!
//! ```text
//! query   = or ;
//! or      = and { "OR" and } ;
//! and     = unary { [ "AND" ] unary } ;
//! unary   = ( "NOT" | "-" ) unary | "(" or ")" | term ;
//! term    = role ":" value | number_field ( ":" range | cmp number ) | value ;
//! ```

use std::fmt;

use super::classes::Class;
use crate::n2g::normalize;

/// Where on a path a token condition looks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// `token:` the activating token (depth 0).
    Token,
    /// `context:` an important context token at any depth >= 1.
    Context,
    /// `after:` the context token at depth 1 (directly before the activating token).
    After,
    /// `any:` the activating token or a context token (bare values mean `any:`).
    Any,
}

impl Role {
    /// The field name of the role.
    pub fn name(self) -> &'static str {
        match self {
            Role::Token => "token",
            Role::Context => "context",
            Role::After => "after",
            Role::Any => "any",
        }
    }
}

/// What a token must be.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// Exactly this normalised token.
    Exact(String),
    /// Any token of the class.
    Class(Class),
    /// Any normalised token the regular expression matches (unanchored, `regex` crate).
    Regex(String),
}

/// A numeric field of a filter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NumField {
    /// `layer`: the neuron's layer (whole numbers only).
    Layer,
    /// `f1`: the neuron's firing F1.
    F1,
    /// `act`: the normalised activation of the matched path.
    Act,
}

impl NumField {
    /// The field name.
    pub fn name(self) -> &'static str {
        match self {
            NumField::Layer => "layer",
            NumField::F1 => "f1",
            NumField::Act => "act",
        }
    }
}

/// A numeric comparison.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Cmp {
    /// `< v`
    Lt(f64),
    /// `<= v`
    Le(f64),
    /// `= v` (also `field:v`)
    Eq(f64),
    /// `>= v`
    Ge(f64),
    /// `> v`
    Gt(f64),
    /// `field:a..b`, both ends included.
    Between(f64, f64),
}

impl Cmp {
    /// Whether `x` satisfies the comparison.
    pub fn holds(self, x: f64) -> bool {
        match self {
            Cmp::Lt(v) => x < v,
            Cmp::Le(v) => x <= v,
            Cmp::Eq(v) => x == v,
            Cmp::Ge(v) => x >= v,
            Cmp::Gt(v) => x > v,
            Cmp::Between(a, b) => a <= x && x <= b,
        }
    }
}

/// A parsed query.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    /// A token condition on one path.
    Match {
        /// Where on the path.
        role: Role,
        /// What token.
        value: Value,
    },
    /// A numeric filter (`layer`, `f1` hold for every path of a neuron; `act` per path).
    Filter {
        /// The field.
        field: NumField,
        /// The comparison.
        cmp: Cmp,
    },
    /// All hold on the same path.
    And(Vec<Expr>),
    /// At least one holds on the path.
    Or(Vec<Expr>),
    /// Neuron-level negation: no path of the neuron matches the inner query.
    Not(Box<Expr>),
}

/// A syntax error, displayed with the query and a caret under the position at fault.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// The query text.
    pub query: String,
    /// Byte offset of the error in `query`.
    pub position: usize,
    /// What went wrong / what was expected.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown: String = self
            .query
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let column = self.query[..self.position].chars().count();
        write!(
            f,
            "query error at column {}: {}\n  {}\n  {}^",
            column + 1,
            self.message,
            shown,
            " ".repeat(column)
        )
    }
}

impl std::error::Error for ParseError {}

/// The known field names, for error messages.
pub const KNOWN_FIELDS: &str = "token, context, after, any, layer, f1, act";

fn known_classes() -> String {
    Class::ALL.map(|c| c.to_string()).join(", ")
}

/// The deepest nesting of `(` and `NOT` / `-` a query may have: deeper queries are
/// refused with an error at the `(` or `NOT` that goes too deep (so parsing, running
/// and printing a query never exhaust the stack).
pub const MAX_DEPTH: usize = 100;

/// Parses a query.
pub fn parse(query: &str) -> Result<Expr, ParseError> {
    let mut p = Parser {
        s: query,
        pos: 0,
        depth: 0,
    };
    let e = p.or()?;
    p.skip_ws();
    if p.pos < query.len() {
        return Err(p.err_at(p.pos, "unexpected `)`: there is no `(` to close"));
    }
    Ok(e)
}

struct Parser<'a> {
    s: &'a str,
    pos: usize,
    /// Levels of `(` and `NOT` around the current position.
    depth: usize,
}

fn ends_value(c: char) -> bool {
    c.is_whitespace() || c == '(' || c == ')'
}

impl<'a> Parser<'a> {
    fn err_at(&self, position: usize, message: impl Into<String>) -> ParseError {
        ParseError {
            query: self.s.to_string(),
            position,
            message: message.into(),
        }
    }

    fn rest(&self) -> &'a str {
        &self.s[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn skip_ws(&mut self) {
        let trimmed = self.rest().trim_start();
        self.pos = self.s.len() - trimmed.len();
    }

    fn at_end_of_group(&self) -> bool {
        matches!(self.peek(), None | Some(')'))
    }

    fn keyword(&self, kw: &str) -> bool {
        self.rest().strip_prefix(kw).is_some_and(|after| {
            after
                .chars()
                .next()
                .is_none_or(|c| c.is_whitespace() || c == '(' || c == ')')
        })
    }

    fn or(&mut self) -> Result<Expr, ParseError> {
        let mut items = vec![self.and()?];
        loop {
            self.skip_ws();
            if !self.keyword("OR") {
                break;
            }
            self.pos += 2;
            self.skip_ws();
            if self.at_end_of_group() || self.keyword("OR") {
                return Err(self.err_at(self.pos, "expected a term after `OR`"));
            }
            items.push(self.and()?);
        }
        Ok(if items.len() == 1 {
            items.pop().expect("one item")
        } else {
            Expr::Or(items)
        })
    }

    fn and(&mut self) -> Result<Expr, ParseError> {
        let mut items = vec![self.unary()?];
        loop {
            self.skip_ws();
            if self.at_end_of_group() || self.keyword("OR") {
                break;
            }
            if self.keyword("AND") {
                self.pos += 3;
                self.skip_ws();
                if self.at_end_of_group() || self.keyword("OR") || self.keyword("AND") {
                    return Err(self.err_at(self.pos, "expected a term after `AND`"));
                }
            }
            items.push(self.unary()?);
        }
        Ok(if items.len() == 1 {
            items.pop().expect("one item")
        } else {
            Expr::And(items)
        })
    }

    /// `unary`: a run of `NOT` / `-` prefixes (read in a loop), then a group or a term.
    fn unary(&mut self) -> Result<Expr, ParseError> {
        let mut nots = 0;
        loop {
            self.skip_ws();
            let at = self.pos;
            if self.keyword("NOT") {
                self.pos += 3;
                self.skip_ws();
                if self.at_end_of_group() {
                    return Err(self.err_at(self.pos, "expected a term after `NOT`"));
                }
            } else if self.peek() == Some('-') {
                self.pos += 1;
                if self.peek().is_none_or(|c| c.is_whitespace() || c == ')') {
                    return Err(self.err_at(
                        self.pos,
                        "expected a term right after `-` (write \"-\" to search for a hyphen)",
                    ));
                }
            } else {
                break;
            }
            nots += 1;
            self.enter(at)?;
        }
        let inner = self.primary();
        self.depth -= nots;
        let mut e = inner?;
        for _ in 0..nots {
            e = Expr::Not(Box::new(e));
        }
        Ok(e)
    }

    /// One more level of nesting (a `NOT` or a `(` at `at`), refused past
    /// [`MAX_DEPTH`].
    fn enter(&mut self, at: usize) -> Result<(), ParseError> {
        if self.depth >= MAX_DEPTH {
            return Err(self.err_at(
                at,
                format!(
                    "the query nests deeper than {MAX_DEPTH} levels of `(` and `NOT`: simplify it"
                ),
            ));
        }
        self.depth += 1;
        Ok(())
    }

    /// A parenthesised group or a term.
    fn primary(&mut self) -> Result<Expr, ParseError> {
        self.skip_ws();
        let start = self.pos;
        if self.keyword("OR") || self.keyword("AND") {
            return Err(self.err_at(start, "expected a term before this operator"));
        }
        match self.peek() {
            None => Err(self.err_at(start, "expected a term such as token:Paris")),
            Some(')') => Err(self.err_at(start, "expected a term before `)`")),
            Some('(') => {
                self.enter(start)?;
                let group = self.group(start);
                self.depth -= 1;
                group
            }
            Some(_) => {
                let e = self.term()?;
                if !self.peek().is_none_or(|c| c.is_whitespace() || c == ')') {
                    return Err(self.err_at(
                        self.pos,
                        "expected a space, `)` or the end of the query after the term",
                    ));
                }
                Ok(e)
            }
        }
    }

    /// `( or )`, the `(` at `start`.
    fn group(&mut self, start: usize) -> Result<Expr, ParseError> {
        self.pos += 1;
        self.skip_ws();
        if self.peek() == Some(')') {
            return Err(self.err_at(self.pos, "expected a term inside `( )`"));
        }
        let e = self.or()?;
        self.skip_ws();
        if self.peek() != Some(')') {
            let column = self.s[..start].chars().count() + 1;
            return Err(self.err_at(
                self.pos,
                format!("expected `)` to close the `(` at column {column}"),
            ));
        }
        self.pos += 1;
        Ok(e)
    }

    fn term(&mut self) -> Result<Expr, ParseError> {
        let start = self.pos;
        let ident_len = self
            .rest()
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(self.rest().len());
        let name = &self.rest()[..ident_len];
        let after = self.rest()[ident_len..].chars().next();
        let starts_with_letter = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic());
        let is_field = starts_with_letter && matches!(after, Some(':' | '<' | '>' | '='));
        if !is_field {
            let value = self.value(None)?;
            return Ok(Expr::Match {
                role: Role::Any,
                value,
            });
        }
        let role = match name {
            "token" => Some(Role::Token),
            "context" => Some(Role::Context),
            "after" => Some(Role::After),
            "any" => Some(Role::Any),
            _ => None,
        };
        let num = match name {
            "layer" => Some(NumField::Layer),
            "f1" => Some(NumField::F1),
            "act" => Some(NumField::Act),
            _ => None,
        };
        if role.is_none() && num.is_none() {
            return Err(self.err_at(
                start,
                format!("unknown field `{name}` (known fields: {KNOWN_FIELDS})"),
            ));
        }
        self.pos += ident_len;
        if let Some(role) = role {
            if after != Some(':') {
                return Err(self.err_at(
                    self.pos,
                    format!("expected `:` after `{name}` ({name}:VALUE; comparisons are for layer, f1 and act)"),
                ));
            }
            self.pos += 1;
            let value = self.value(Some(name))?;
            return Ok(Expr::Match { role, value });
        }
        let field = num.expect("numeric field");
        let op_start = self.pos;
        let cmp_len = ["<=", ">=", "<", ">", "=", ":"]
            .into_iter()
            .find(|op| self.rest().starts_with(op))
            .map(str::len)
            .unwrap_or(0);
        let op = &self.rest()[..cmp_len];
        self.pos += cmp_len;
        let num_start = self.pos;
        let len = self.rest().find(ends_value).unwrap_or(self.rest().len());
        let text = &self.rest()[..len];
        let number = |t: &str, at: usize| -> Result<f64, ParseError> {
            let v: f64 = t
                .parse()
                .ok()
                .filter(|v: &f64| v.is_finite())
                .ok_or_else(|| self.err_at(at, format!("expected a number after `{name}{op}`")))?;
            if field == NumField::Layer && (v < 0.0 || v.fract() != 0.0 || v > 65535.0) {
                return Err(self.err_at(at, "expected a whole layer number (layer:3, layer:0..2)"));
            }
            Ok(v)
        };
        let cmp = match op {
            ":" => match text.split_once("..") {
                Some((a, b)) => {
                    let lo = number(a, num_start)?;
                    let hi = number(b, num_start + a.len() + 2)?;
                    if lo > hi {
                        return Err(
                            self.err_at(num_start, "empty range: the start is above the end")
                        );
                    }
                    Cmp::Between(lo, hi)
                }
                None => Cmp::Eq(number(text, num_start)?),
            },
            "<" => Cmp::Lt(number(text, num_start)?),
            "<=" => Cmp::Le(number(text, num_start)?),
            "=" => Cmp::Eq(number(text, num_start)?),
            ">=" => Cmp::Ge(number(text, num_start)?),
            ">" => Cmp::Gt(number(text, num_start)?),
            _ => unreachable!("numeric field followed by an operator"),
        };
        debug_assert!(op_start < num_start);
        self.pos += len;
        Ok(Expr::Filter { field, cmp })
    }

    /// A value: quoted, regex, class or bare word. `field` names the field for messages.
    fn value(&mut self, field: Option<&str>) -> Result<Value, ParseError> {
        let start = self.pos;
        match self.peek() {
            None => Err(self.err_at(
                start,
                format!("expected a value after `{}:`", field.unwrap_or("any")),
            )),
            Some(c) if c.is_whitespace() || c == ')' || c == '(' => Err(self.err_at(
                start,
                format!(
                    "expected a value after `{}:` (quote values with spaces or parentheses)",
                    field.unwrap_or("any")
                ),
            )),
            Some('"') => {
                let raw = self.quoted()?;
                if raw.is_empty() {
                    return Err(self.err_at(start, "expected a non-empty value inside the quotes"));
                }
                Ok(Value::Exact(normalize(&raw)))
            }
            Some('/') => self.regex(),
            Some('#') => {
                self.pos += 1;
                let len = self.rest().find(ends_value).unwrap_or(self.rest().len());
                let name = &self.rest()[..len];
                match name.parse::<Class>() {
                    Ok(c) => {
                        self.pos += len;
                        Ok(Value::Class(c))
                    }
                    Err(()) if name.is_empty() => Err(self.err_at(
                        self.pos,
                        format!("expected a class name after `#` (known classes: {}); write \"#\" to search for the token #", known_classes()),
                    )),
                    Err(()) => Err(self.err_at(
                        start,
                        format!("unknown class `#{name}` (known classes: {})", known_classes()),
                    )),
                }
            }
            Some(_) => {
                let len = self.rest().find(ends_value).unwrap_or(self.rest().len());
                let raw = &self.rest()[..len];
                if let Some(q) = raw.find('"') {
                    return Err(self.err_at(
                        start + q,
                        "unexpected `\"` inside a value: quote the whole value",
                    ));
                }
                self.pos += len;
                Ok(Value::Exact(normalize(raw)))
            }
        }
    }

    fn quoted(&mut self) -> Result<String, ParseError> {
        let open = self.pos;
        self.pos += 1;
        let mut out = String::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(self.err_at(open, "unterminated quoted value: expected a closing `\"`"));
            };
            let at = self.pos;
            self.pos += c.len_utf8();
            match c {
                '"' => return Ok(out),
                '\\' => {
                    let Some(e) = self.peek() else {
                        return Err(
                            self.err_at(open, "unterminated quoted value: expected a closing `\"`")
                        );
                    };
                    self.pos += e.len_utf8();
                    match e {
                        'n' => out.push('\n'),
                        't' => out.push('\t'),
                        'r' => out.push('\r'),
                        '"' => out.push('"'),
                        '\\' => out.push('\\'),
                        'u' => out.push(self.unicode_escape(at)?),
                        other => {
                            return Err(self.err_at(
                                at,
                                format!("unknown escape `\\{other}` (known: \\n \\t \\r \\\" \\\\ \\u{{HEX}})"),
                            ))
                        }
                    }
                }
                c => out.push(c),
            }
        }
    }

    fn unicode_escape(&mut self, at: usize) -> Result<char, ParseError> {
        let bad = |p: &Self| p.err_at(at, "expected a unicode escape like \\u{a0}");
        let rest = self.rest();
        let body = rest.strip_prefix('{').ok_or_else(|| bad(self))?;
        let close = body.find('}').ok_or_else(|| bad(self))?;
        let c = u32::from_str_radix(&body[..close], 16)
            .ok()
            .and_then(char::from_u32)
            .ok_or_else(|| bad(self))?;
        self.pos += close + 2;
        Ok(c)
    }

    fn regex(&mut self) -> Result<Value, ParseError> {
        let open = self.pos;
        self.pos += 1;
        let mut src = String::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(self.err_at(open, "unterminated regex: expected a closing `/`"));
            };
            self.pos += c.len_utf8();
            match c {
                '/' => break,
                '\\' => match self.peek() {
                    Some('/') => {
                        self.pos += 1;
                        src.push('/');
                    }
                    Some(e) => {
                        self.pos += e.len_utf8();
                        src.push('\\');
                        src.push(e);
                    }
                    None => {
                        return Err(self.err_at(open, "unterminated regex: expected a closing `/`"))
                    }
                },
                c => src.push(c),
            }
        }
        if src.is_empty() {
            return Err(self.err_at(open, "expected a regex between the slashes"));
        }
        if let Err(e) = regex::Regex::new(&src) {
            let text = e.to_string();
            let reason = text
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("");
            let reason = reason.trim().trim_start_matches("error: ");
            return Err(self.err_at(open, format!("invalid regex: {reason}")));
        }
        Ok(Value::Regex(src))
    }
}
