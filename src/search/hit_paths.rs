//! [`HitPaths`]: the matching paths of a query hit, every token's text in one buffer.
//!
//! A query of 10,000 hits carries about 650,000 path tokens. As a `Vec<Vec<String>>`
//! that is as many heap blocks, scattered: making them dominated a large query, and
//! reading them back (to JSON, to Python) stalled on memory more than it worked. One
//! text buffer and two offset tables hold the same paths in three allocations.

use std::cmp::Ordering;
use std::fmt;

use serde::ser::{Serialize, SerializeSeq, Serializer};

/// A list of paths, each a list of tokens (`*` is IGNORE), stored contiguously.
///
/// Equal lists of paths have equal representations, so `==` compares the paths.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct HitPaths {
    /// Every token's text, concatenated in order.
    text: String,
    /// For each token, the end of its text in `text`.
    token_ends: Vec<u32>,
    /// For each path, the end of its tokens in `token_ends`.
    path_ends: Vec<u32>,
}

/// One path of a [`HitPaths`]: its tokens in text order.
#[derive(Clone, Copy)]
pub struct HitPath<'a> {
    /// The text of the list, from this path's first token on.
    text: &'a str,
    /// Where the text of the path's first token starts in `text`'s list.
    start: u32,
    /// The ends of this path's tokens, in the list's `text`.
    ends: &'a [u32],
}

impl HitPaths {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of paths.
    pub fn len(&self) -> usize {
        self.path_ends.len()
    }

    /// Whether there is no path.
    pub fn is_empty(&self) -> bool {
        self.path_ends.is_empty()
    }

    /// Number of tokens over all paths.
    pub fn token_count(&self) -> usize {
        self.token_ends.len()
    }

    /// Appends a path made of `tokens`.
    ///
    /// # Panics
    /// When the text of all paths together passes 4 GiB.
    pub fn push<'t>(&mut self, tokens: impl IntoIterator<Item = &'t str>) {
        for token in tokens {
            self.text.push_str(token);
            self.token_ends.push(offset(self.text.len()));
        }
        self.path_ends.push(offset(self.token_ends.len()));
    }

    /// Path `i`, if there is one.
    pub fn get(&self, i: usize) -> Option<HitPath<'_>> {
        let end = *self.path_ends.get(i)? as usize;
        let first = if i == 0 {
            0
        } else {
            self.path_ends[i - 1] as usize
        };
        let start = if first == 0 {
            0
        } else {
            self.token_ends[first - 1]
        };
        Some(HitPath {
            text: &self.text,
            start,
            ends: &self.token_ends[first..end],
        })
    }

    /// The first path, if any.
    pub fn first(&self) -> Option<HitPath<'_>> {
        self.get(0)
    }

    /// The paths in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = HitPath<'_>> + '_ {
        (0..self.len()).map(|i| self.get(i).expect("index below len"))
    }

    /// The same paths in the order `order` gives (indices into this list).
    ///
    /// # Panics
    /// When an index of `order` is out of range.
    pub fn reordered(&self, order: &[usize]) -> HitPaths {
        let mut out = HitPaths {
            text: String::with_capacity(self.text.len()),
            token_ends: Vec::with_capacity(self.token_ends.len()),
            path_ends: Vec::with_capacity(order.len()),
        };
        for &i in order {
            let path = self.get(i).expect("a path of the list");
            out.push(path.iter());
        }
        out
    }

    /// The paths as owned strings.
    pub fn to_vecs(&self) -> Vec<Vec<String>> {
        self.iter().map(|p| p.to_vec()).collect()
    }
}

/// A text offset or count as stored.
fn offset(n: usize) -> u32 {
    u32::try_from(n).expect("hit paths hold at most 4 GiB of text")
}

impl<'a> HitPath<'a> {
    /// Number of tokens.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether the path has no token.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Token `i`, if there is one.
    pub fn get(&self, i: usize) -> Option<&'a str> {
        let end = *self.ends.get(i)? as usize;
        let start = if i == 0 { self.start } else { self.ends[i - 1] } as usize;
        Some(&self.text[start..end])
    }

    /// The last token (the activating one), if any.
    pub fn last(&self) -> Option<&'a str> {
        self.len().checked_sub(1).and_then(|i| self.get(i))
    }

    /// The tokens in text order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &'a str> + DoubleEndedIterator + 'a {
        let (text, start, ends) = (self.text, self.start as usize, self.ends);
        (0..ends.len()).map(move |i| {
            let from = if i == 0 { start } else { ends[i - 1] as usize };
            &text[from..ends[i] as usize]
        })
    }

    /// The tokens as owned strings.
    pub fn to_vec(&self) -> Vec<String> {
        self.iter().map(str::to_string).collect()
    }
}

impl PartialEq for HitPath<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for HitPath<'_> {}

impl PartialOrd for HitPath<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for HitPath<'_> {
    /// Token by token, as `Vec<String>` compares.
    fn cmp(&self, other: &Self) -> Ordering {
        self.iter().cmp(other.iter())
    }
}

impl fmt::Debug for HitPath<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl fmt::Debug for HitPaths {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<'t, P: IntoIterator<Item = &'t str>> FromIterator<P> for HitPaths {
    fn from_iter<I: IntoIterator<Item = P>>(paths: I) -> Self {
        let mut out = HitPaths::new();
        for path in paths {
            out.push(path);
        }
        out
    }
}

impl Serialize for HitPath<'_> {
    /// An array of strings.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.len()))?;
        for token in self.iter() {
            seq.serialize_element(token)?;
        }
        seq.end()
    }
}

impl Serialize for HitPaths {
    /// An array of paths, each an array of strings (as `Vec<Vec<String>>` would be).
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.len()))?;
        for path in self.iter() {
            seq.serialize_element(&path)?;
        }
        seq.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<Vec<&'static str>> {
        vec![
            vec!["capital", "*", "Paris"],
            vec![],
            vec!["é", ""],
            vec!["x"],
        ]
    }

    #[test]
    fn holds_what_a_nested_vec_holds() {
        let nested = sample();
        let paths: HitPaths = nested.iter().map(|p| p.iter().copied()).collect();
        assert_eq!(paths.len(), 4);
        assert_eq!(paths.token_count(), 6);
        assert_eq!(paths.to_vecs(), nested);
        assert_eq!(paths.get(2).unwrap().get(0), Some("é"));
        assert_eq!(paths.get(2).unwrap().last(), Some(""));
        assert!(paths.get(1).unwrap().is_empty());
        assert!(paths.get(4).is_none());
        assert_eq!(format!("{paths:?}"), format!("{nested:?}"));
        assert_eq!(
            serde_json::to_string(&paths).unwrap(),
            serde_json::to_string(&nested).unwrap()
        );
    }

    #[test]
    fn reorders_and_compares_as_vectors_do() {
        let nested = sample();
        let paths: HitPaths = nested.iter().map(|p| p.iter().copied()).collect();
        let order = [3, 0, 2, 1];
        let want: Vec<_> = order.iter().map(|&i| nested[i].clone()).collect();
        assert_eq!(paths.reordered(&order).to_vecs(), want);
        for i in 0..nested.len() {
            for j in 0..nested.len() {
                let (a, b) = (paths.get(i).unwrap(), paths.get(j).unwrap());
                assert_eq!(a.cmp(&b), nested[i].cmp(&nested[j]), "{i} {j}");
            }
        }
        assert_eq!(HitPaths::new(), HitPaths::default());
        assert!(HitPaths::new().first().is_none());
    }
}
