//! Parser tests: every construct of the query language and every error message.

use n2g_index::search::query::{Cmp, Expr, NumField, Role, Value};
use n2g_index::search::{parse, Class};

fn m(role: Role, v: &str) -> Expr {
    Expr::Match {
        role,
        value: Value::Exact(v.to_string()),
    }
}

fn ok(q: &str) -> Expr {
    parse(q).unwrap_or_else(|e| panic!("{q}: {e}"))
}

/// The error's message and the column (1-based) of its caret.
fn err(q: &str) -> (String, usize) {
    let e = parse(q).expect_err(q);
    let shown = e.to_string();
    let lines: Vec<&str> = shown.lines().collect();
    assert_eq!(lines.len(), 3, "{shown}");
    assert_eq!(lines[1], format!("  {q}"));
    let caret = lines[2].chars().count() - 3;
    assert!(lines[2].ends_with('^'));
    (e.message, caret)
}

#[test]
fn roles() {
    assert_eq!(ok("token:the"), m(Role::Token, "the"));
    assert_eq!(ok("context:capital"), m(Role::Context, "capital"));
    assert_eq!(ok("after:of"), m(Role::After, "of"));
    assert_eq!(ok("any:x"), m(Role::Any, "x"));
    assert_eq!(
        ok("paris"),
        m(Role::Any, "paris"),
        "a bare value means any:"
    );
}

#[test]
fn values_are_normalised() {
    assert_eq!(ok("token:Paris"), m(Role::Token, "paris"));
    assert_eq!(ok("token:\" Paris\""), m(Role::Token, "paris"));
    assert_eq!(ok("token:USA"), m(Role::Token, "USA"));
    assert_eq!(
        ok("token:\" 3\""),
        m(Role::Token, " 3"),
        "digits keep their space"
    );
}

#[test]
fn quoted_values_and_escapes() {
    assert_eq!(ok("token:\",\""), m(Role::Token, ","));
    assert_eq!(ok("after:\"\\n\""), m(Role::After, "\n"));
    assert_eq!(ok("token:\"\\t\\r\\\"\\\\\""), m(Role::Token, "\t\r\"\\"));
    assert_eq!(ok("token:\"\\u{a0}\""), m(Role::Token, "\u{a0}"));
    assert_eq!(ok("token:\"a (b)\""), m(Role::Token, "a (b)"));
}

#[test]
fn classes() {
    for c in Class::ALL {
        assert_eq!(
            ok(&format!("context:#{}", c.name())),
            Expr::Match {
                role: Role::Context,
                value: Value::Class(c)
            }
        );
    }
}

#[test]
fn regexes() {
    assert_eq!(
        ok("token:/^Par/"),
        Expr::Match {
            role: Role::Token,
            value: Value::Regex("^Par".into())
        }
    );
    assert_eq!(
        ok("token:/a\\/b/"),
        Expr::Match {
            role: Role::Token,
            value: Value::Regex("a/b".into())
        }
    );
    assert_eq!(
        ok("token:/\\d+/"),
        Expr::Match {
            role: Role::Token,
            value: Value::Regex("\\d+".into())
        }
    );
}

#[test]
fn boolean_structure() {
    let (a, b, c) = (
        m(Role::Token, "a"),
        m(Role::Token, "b"),
        m(Role::Token, "c"),
    );
    assert_eq!(ok("token:a token:b"), Expr::And(vec![a.clone(), b.clone()]));
    assert_eq!(
        ok("token:a AND token:b"),
        Expr::And(vec![a.clone(), b.clone()])
    );
    assert_eq!(
        ok("token:a OR token:b token:c"),
        Expr::Or(vec![a.clone(), Expr::And(vec![b.clone(), c.clone()])])
    );
    assert_eq!(
        ok("(token:a OR token:b) token:c"),
        Expr::And(vec![Expr::Or(vec![a.clone(), b.clone()]), c.clone()])
    );
    assert_eq!(ok("NOT token:a"), Expr::Not(Box::new(a.clone())));
    assert_eq!(ok("-token:a"), Expr::Not(Box::new(a.clone())));
    assert_eq!(
        ok("-(token:a OR token:b)"),
        Expr::Not(Box::new(Expr::Or(vec![a.clone(), b.clone()])))
    );
    assert_eq!(
        ok("token:a NOT(token:b)"),
        Expr::And(vec![a.clone(), Expr::Not(Box::new(b.clone()))])
    );
    assert_eq!(ok("  ( token:a )  "), a);
    assert_eq!(
        ok("token:- token:OR"),
        Expr::And(vec![m(Role::Token, "-"), m(Role::Token, "OR")])
    );
}

#[test]
fn filters() {
    let f = |field, cmp| Expr::Filter { field, cmp };
    assert_eq!(ok("layer:3"), f(NumField::Layer, Cmp::Eq(3.0)));
    assert_eq!(ok("layer:0..2"), f(NumField::Layer, Cmp::Between(0.0, 2.0)));
    assert_eq!(ok("layer>=4"), f(NumField::Layer, Cmp::Ge(4.0)));
    assert_eq!(ok("f1>=0.6"), f(NumField::F1, Cmp::Ge(0.6)));
    assert_eq!(ok("f1<0.5"), f(NumField::F1, Cmp::Lt(0.5)));
    assert_eq!(ok("act>0.8"), f(NumField::Act, Cmp::Gt(0.8)));
    assert_eq!(ok("act<=1"), f(NumField::Act, Cmp::Le(1.0)));
    assert_eq!(ok("act=1"), f(NumField::Act, Cmp::Eq(1.0)));
    assert_eq!(ok("f1:0.5..1"), f(NumField::F1, Cmp::Between(0.5, 1.0)));
}

#[test]
fn printing_round_trips() {
    for q in [
        "token:the after:#digit",
        "token:Paris context:capital OR -(after:\",\" layer:0..2) f1>=0.6 act>0.8",
        "token:/a\\/b/ any:\"\\n\" --token:x",
    ] {
        let e = ok(q);
        assert_eq!(ok(&e.to_string()), e, "{q} → {e}");
    }
}

#[test]
fn error_messages() {
    let cases: &[(&str, &str, usize)] = &[
        ("", "expected a term such as token:Paris", 1),
        ("tokn:x", "unknown field `tokn` (known fields: token, context, after, any, layer, f1, act)", 1),
        ("token:", "expected a value after `token:`", 7),
        ("token: x", "expected a value after `token:` (quote values with spaces or parentheses)", 7),
        ("token:\"abc", "unterminated quoted value: expected a closing `\"`", 7),
        ("token:\"\"", "expected a non-empty value inside the quotes", 7),
        ("token:\"\\q\"", "unknown escape `\\q` (known: \\n \\t \\r \\\" \\\\ \\u{HEX})", 8),
        ("token:\"\\u{zz}\"", "expected a unicode escape like \\u{a0}", 8),
        ("token:/abc", "unterminated regex: expected a closing `/`", 7),
        ("token://", "expected a regex between the slashes", 7),
        ("token:#digt", "unknown class `#digt` (known classes: #digit, #number, #punct, #alpha, #upper, #space, #newline)", 7),
        ("token:#", "expected a class name after `#` (known classes: #digit, #number, #punct, #alpha, #upper, #space, #newline); write \"#\" to search for the token #", 8),
        ("token:a\"b", "unexpected `\"` inside a value: quote the whole value", 8),
        ("token:\"a\"b", "expected a space, `)` or the end of the query after the term", 10),
        ("(token:a", "expected `)` to close the `(` at column 1", 9),
        ("token:a)", "unexpected `)`: there is no `(` to close", 8),
        ("()", "expected a term inside `( )`", 2),
        ("token:a OR", "expected a term after `OR`", 11),
        ("OR token:a", "expected a term before this operator", 1),
        ("token:a AND", "expected a term after `AND`", 12),
        ("NOT", "expected a term after `NOT`", 4),
        ("- token:a", "expected a term right after `-` (write \"-\" to search for a hyphen)", 2),
        ("token>=3", "expected `:` after `token` (token:VALUE; comparisons are for layer, f1 and act)", 6),
        ("f1>=x", "expected a number after `f1>=`", 5),
        ("act>nan", "expected a number after `act>`", 5),
        ("layer:1.5", "expected a whole layer number (layer:3, layer:0..2)", 7),
        ("layer:3..x", "expected a number after `layer:`", 10),
        ("layer:3..1", "empty range: the start is above the end", 7),
    ];
    for (q, message, column) in cases {
        let (got, at) = err(q);
        assert_eq!(&got, message, "message of {q:?}");
        assert_eq!(at + 1, *column, "column of {q:?}");
    }
    let (got, _) = err("token:/a(/");
    assert!(got.starts_with("invalid regex: "), "{got}");
}
