//! Token normalisation (N2G's rule) and the per-index token dictionary.
//!
//! Graphs store tokens as ids into a [`TokenDictionary`] of *normalised* token strings,
//! so " Paris" and "Paris" are one graph token, and the search engine normalises query
//! values with the same [`normalize`].

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// Python's `str.istitle()`: at least one cased character; upper-case characters only
/// after uncased ones, lower-case characters only after cased ones.
pub fn is_title(s: &str) -> bool {
    let mut cased_seen = false;
    let mut previous_cased = false;
    for c in s.chars() {
        if c.is_uppercase() {
            if previous_cased {
                return false;
            }
            previous_cased = true;
            cased_seen = true;
        } else if c.is_lowercase() {
            if !previous_cased {
                return false;
            }
            previous_cased = true;
            cased_seen = true;
        } else {
            previous_cased = false;
        }
    }
    cased_seen
}

/// N2G's token normalisation: a title-case token longer than one character is
/// lower-cased; a token longer than one character that contains a letter loses its
/// surrounding whitespace. Everything else (punctuation, digits, single characters,
/// whitespace tokens) is kept as it is.
pub fn normalize(token: &str) -> String {
    let mut out = token.to_string();
    if out.chars().count() > 1 && is_title(&out) {
        out = out.to_lowercase();
    }
    if out.chars().count() > 1 && out.chars().any(char::is_alphabetic) {
        out = out.trim().to_string();
    }
    out
}

/// Normalised token strings of one index, each with a dense id.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenDictionary {
    strings: Vec<String>,
    #[serde(skip)]
    index: HashMap<String, u32>,
}

impl TokenDictionary {
    /// An empty dictionary.
    pub fn new() -> Self {
        Self::default()
    }

    /// Rebuilds the lookup map after deserialisation.
    pub fn from_strings(strings: Vec<String>) -> Self {
        let index = strings
            .iter()
            .enumerate()
            .map(|(i, s)| (s.clone(), i as u32))
            .collect();
        TokenDictionary { strings, index }
    }

    /// The id of a normalised string, adding it when new.
    pub fn intern(&mut self, normalized: &str) -> u32 {
        if let Some(&id) = self.index.get(normalized) {
            return id;
        }
        let id = self.strings.len() as u32;
        self.strings.push(normalized.to_string());
        self.index.insert(normalized.to_string(), id);
        id
    }

    /// The id of a normalised string, if present.
    pub fn get(&self, normalized: &str) -> Option<u32> {
        self.index.get(normalized).copied()
    }

    /// The string of an id.
    pub fn str(&self, id: u32) -> &str {
        self.strings.get(id as usize).map_or("", String::as_str)
    }

    /// Number of strings.
    pub fn len(&self) -> usize {
        self.strings.len()
    }

    /// Whether the dictionary is empty.
    pub fn is_empty(&self) -> bool {
        self.strings.is_empty()
    }

    /// All strings, by id.
    pub fn strings(&self) -> &[String] {
        &self.strings
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation_follows_the_n2g_rule() {
        // Expected values worked out by hand from the rule (and Python's istitle).
        assert_eq!(normalize(" Paris"), "paris");
        assert_eq!(normalize("Paris"), "paris");
        assert_eq!(normalize(" paris"), "paris");
        assert_eq!(normalize("PARIS"), "PARIS");
        assert_eq!(normalize(" PARIS"), "PARIS");
        assert_eq!(normalize("McDonald"), "McDonald");
        assert_eq!(normalize("A"), "A");
        assert_eq!(normalize(" A"), "a");
        assert_eq!(normalize(" ,"), " ,");
        assert_eq!(normalize("\n"), "\n");
        assert_eq!(normalize("  "), "  ");
        assert_eq!(normalize(" 42"), " 42");
        assert_eq!(normalize("The"), "the");
        assert_eq!(normalize(" the"), "the");
    }

    #[test]
    fn istitle_matches_python() {
        assert!(is_title("Hello World"));
        assert!(is_title(" Hello"));
        assert!(!is_title("hello"));
        assert!(!is_title("HeLLo"));
        assert!(!is_title("123"));
        assert!(!is_title("A1b"));
        assert!(is_title("Élan"));
    }

    #[test]
    fn dictionary_interns_once() {
        let mut d = TokenDictionary::new();
        let a = d.intern("paris");
        let b = d.intern("the");
        assert_eq!(d.intern("paris"), a);
        assert_ne!(a, b);
        assert_eq!(d.str(b), "the");
        let copy = TokenDictionary::from_strings(d.strings().to_vec());
        assert_eq!(copy.get("the"), Some(b));
    }
}
