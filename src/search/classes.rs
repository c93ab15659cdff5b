//! Token classes (`#digit`, `#number`, ...) over normalised token strings.
//!
//! Every class is a predicate on the *normalised* token string `s`. Several classes first
//! strip surrounding whitespace (`t = s.trim()`), because normalisation keeps the leading
//! space of digit and punctuation tokens (`" 3"`, `" ("`). A token may be in several
//! classes. The definitions are repeated in `schema/QUERY.md`.

use std::fmt;
use std::str::FromStr;

/// A token class of the query language.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Class {
    /// `t` is non-empty and every character is an ASCII digit `0-9`.
    Digit,
    /// `t` is an optional `+`/`-`, then ASCII digit runs separated by single `.` or `,`
    /// (`3`, `-12`, `1,000.5`); it starts and ends with a digit after the sign.
    Number,
    /// `t` is non-empty and every character is neither alphanumeric nor whitespace
    /// (punctuation and symbols: `,`, `."`, `$`, `—`).
    Punct,
    /// `t` is non-empty and every character is alphabetic (any script).
    Alpha,
    /// `s` has at least one upper-case character and no lower-case one (`USA`, `A`).
    Upper,
    /// `s` is non-empty and every character is whitespace (newlines included).
    Space,
    /// `s` is whitespace only and contains at least one `\n`.
    Newline,
}

impl Class {
    /// Every class, in documentation order.
    pub const ALL: [Class; 7] = [
        Class::Digit,
        Class::Number,
        Class::Punct,
        Class::Alpha,
        Class::Upper,
        Class::Space,
        Class::Newline,
    ];

    /// The class name without `#`.
    pub fn name(self) -> &'static str {
        match self {
            Class::Digit => "digit",
            Class::Number => "number",
            Class::Punct => "punct",
            Class::Alpha => "alpha",
            Class::Upper => "upper",
            Class::Space => "space",
            Class::Newline => "newline",
        }
    }

    /// Whether the normalised token `s` is in this class.
    pub fn contains(self, s: &str) -> bool {
        let t = s.trim();
        match self {
            Class::Digit => !t.is_empty() && t.chars().all(|c| c.is_ascii_digit()),
            Class::Number => is_number(t),
            Class::Punct => {
                !t.is_empty()
                    && t.chars()
                        .all(|c| !c.is_alphanumeric() && !c.is_whitespace())
            }
            Class::Alpha => !t.is_empty() && t.chars().all(char::is_alphabetic),
            Class::Upper => s.chars().any(char::is_uppercase) && !s.chars().any(char::is_lowercase),
            Class::Space => !s.is_empty() && s.chars().all(char::is_whitespace),
            Class::Newline => s.contains('\n') && s.chars().all(char::is_whitespace),
        }
    }

    /// The classes that contain the normalised token `s`.
    pub fn of(s: &str) -> impl Iterator<Item = Class> + '_ {
        Class::ALL.into_iter().filter(move |c| c.contains(s))
    }
}

fn is_number(t: &str) -> bool {
    let body = t.strip_prefix(['+', '-']).unwrap_or(t);
    let mut previous_digit = false;
    let mut any = false;
    for c in body.chars() {
        if c.is_ascii_digit() {
            previous_digit = true;
            any = true;
        } else if (c == '.' || c == ',') && previous_digit {
            previous_digit = false;
        } else {
            return false;
        }
    }
    any && previous_digit
}

impl fmt::Display for Class {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.name())
    }
}

impl FromStr for Class {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        Class::ALL.into_iter().find(|c| c.name() == s).ok_or(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        assert!(Class::Digit.contains(" 42"));
        assert!(!Class::Digit.contains("4.2"));
        assert!(Class::Number.contains("-1,000.5"));
        assert!(!Class::Number.contains("1."));
        assert!(!Class::Number.contains("-"));
        assert!(Class::Punct.contains(" ,"));
        assert!(Class::Punct.contains(".\""));
        assert!(!Class::Punct.contains(" "));
        assert!(Class::Alpha.contains("paris"));
        assert!(!Class::Alpha.contains("don't"));
        assert!(Class::Upper.contains("USA"));
        assert!(!Class::Upper.contains("Usa"));
        assert!(Class::Space.contains("\n\n"));
        assert!(Class::Newline.contains(" \n"));
        assert!(!Class::Newline.contains(".\n"));
        assert_eq!(
            Class::of("7").collect::<Vec<_>>(),
            vec![Class::Digit, Class::Number]
        );
    }
}
