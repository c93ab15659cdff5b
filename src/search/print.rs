//! Printing query trees back to query text, in a canonical form that
//! [`parse`](super::query::parse) reads back to the same tree.

use std::fmt;

use super::query::{Cmp, Expr, Value};

fn write_quoted(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    f.write_str("\"")?;
    for c in s.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\t' => f.write_str("\\t")?,
            '\r' => f.write_str("\\r")?,
            c if c.is_control() => write!(f, "\\u{{{:x}}}", c as u32)?,
            c => write!(f, "{c}")?,
        }
    }
    f.write_str("\"")
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Exact(s) => write_quoted(f, s),
            Value::Class(c) => write!(f, "{c}"),
            Value::Regex(r) => {
                f.write_str("/")?;
                let mut chars = r.chars();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            f.write_str("\\")?;
                            if let Some(n) = chars.next() {
                                write!(f, "{n}")?;
                            }
                        }
                        '/' => f.write_str("\\/")?,
                        c => write!(f, "{c}")?,
                    }
                }
                f.write_str("/")
            }
        }
    }
}

impl fmt::Display for Expr {
    /// Prints the query in a canonical form that [`parse`](crate::search::parse) reads back to the same tree.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Match { role, value } => write!(f, "{}:{value}", role.name()),
            Expr::Filter { field, cmp } => {
                let n = field.name();
                match cmp {
                    Cmp::Lt(v) => write!(f, "{n}<{v}"),
                    Cmp::Le(v) => write!(f, "{n}<={v}"),
                    Cmp::Eq(v) => write!(f, "{n}:{v}"),
                    Cmp::Ge(v) => write!(f, "{n}>={v}"),
                    Cmp::Gt(v) => write!(f, "{n}>{v}"),
                    Cmp::Between(a, b) => write!(f, "{n}:{a}..{b}"),
                }
            }
            Expr::And(items) => {
                for (i, e) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" ")?;
                    }
                    match e {
                        Expr::And(_) | Expr::Or(_) => write!(f, "({e})")?,
                        e => write!(f, "{e}")?,
                    }
                }
                Ok(())
            }
            Expr::Or(items) => {
                for (i, e) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" OR ")?;
                    }
                    match e {
                        Expr::Or(_) => write!(f, "({e})")?,
                        e => write!(f, "{e}")?,
                    }
                }
                Ok(())
            }
            Expr::Not(e) => match **e {
                Expr::And(_) | Expr::Or(_) => write!(f, "-({e})"),
                _ => write!(f, "-{e}"),
            },
        }
    }
}
