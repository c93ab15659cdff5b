//! Tokenizing long documents in pieces, so that memory stays bounded whatever the
//! length of a document (a corpus file may be one line of many megabytes).
//!
//! A document longer than [`PIECE_BYTES`] is cut before a space that follows a
//! non-space and precedes a letter (where the pre-tokenizers of byte-level BPE models
//! always start a new pre-token), and only at cuts where the tokens of the text around
//! the cut equal the tokens of its two sides (checked on [`SEAM_BYTES`] each side).
//! The pieces' tokens, concatenated, are then the tokens of the whole document, so
//! the windows are the same as tokenizing it whole. A tokenizer for which no cut
//! passes the check (one that adds a prefix to every text, say) tokenizes the
//! document whole, as does a stretch with no such space.

use rayon::prelude::*;

use crate::error::Result;
use crate::model::TextTokenizer;

/// Documents longer than this many bytes are tokenized in pieces of about this size.
pub const PIECE_BYTES: usize = 64 * 1024;

/// Bytes each side of a cut tokenized to check it.
pub const SEAM_BYTES: usize = 256;

/// Candidate cuts tried per piece before a piece is extended to the next stretch.
const TRIES: usize = 8;

/// The token ids of `text` (no BOS), tokenized in pieces when it is long.
pub fn encode_in_pieces(tokenizer: &TextTokenizer, text: &str) -> Result<Vec<u32>> {
    encode_with_pieces(tokenizer, text, PIECE_BYTES)
}

/// [`encode_in_pieces`] with pieces of about `piece` bytes (for tests).
pub fn encode_with_pieces(tokenizer: &TextTokenizer, text: &str, piece: usize) -> Result<Vec<u32>> {
    let piece = piece.max(2 * SEAM_BYTES);
    if text.len() <= 2 * piece {
        return Ok(tokenizer.encode(text, false)?.ids);
    }
    let cuts = piece_cuts(tokenizer, text, piece)?;
    let mut bounds = Vec::with_capacity(cuts.len() + 2);
    bounds.push(0);
    bounds.extend(cuts);
    bounds.push(text.len());
    let parts: Vec<Vec<u32>> = bounds
        .par_windows(2)
        .map(|w| tokenizer.encode(&text[w[0]..w[1]], false).map(|t| t.ids))
        .collect::<Result<_>>()?;
    Ok(parts.concat())
}

/// Whether a cut before byte `i` of `text` is a candidate: a single space there, a
/// non-space before it and a letter after it.
fn candidate(text: &str, i: usize) -> bool {
    let bytes = text.as_bytes();
    if i == 0 || i + 1 >= bytes.len() || bytes[i] != b' ' {
        return false;
    }
    let before = text[..i].chars().next_back();
    let after = text[i + 1..].chars().next();
    before.is_some_and(|c| !c.is_whitespace()) && after.is_some_and(char::is_alphabetic)
}

/// The largest char boundary of `text` at or below `i`.
fn floor_boundary(text: &str, mut i: usize) -> usize {
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Whether the tokens around the cut before byte `i` equal those of its two sides.
fn seam_holds(tokenizer: &TextTokenizer, text: &str, i: usize) -> Result<bool> {
    let lo = floor_boundary(text, i.saturating_sub(SEAM_BYTES));
    let hi = floor_boundary(text, (i + SEAM_BYTES).min(text.len()));
    let whole = tokenizer.encode(&text[lo..hi], false)?.ids;
    let mut sides = tokenizer.encode(&text[lo..i], false)?.ids;
    sides.extend(tokenizer.encode(&text[i..hi], false)?.ids);
    Ok(whole == sides)
}

/// Where [`encode_with_pieces`] cuts `text` (byte offsets, ascending, about `piece`
/// bytes apart; none when the text is short or no cut passes the check).
pub fn piece_cuts(tokenizer: &TextTokenizer, text: &str, piece: usize) -> Result<Vec<usize>> {
    let piece = piece.max(2 * SEAM_BYTES);
    let mut out = Vec::new();
    let mut from = 0;
    while text.len() - from > 2 * piece {
        let mut tries = 0;
        let mut found = None;
        let mut i = from + piece;
        while i + piece < text.len() && tries < TRIES {
            if candidate(text, i) {
                tries += 1;
                if seam_holds(tokenizer, text, i)? {
                    found = Some(i);
                    break;
                }
                // The next candidate is sought a little further on.
                i += SEAM_BYTES;
                continue;
            }
            i += 1;
        }
        match found {
            Some(c) => {
                out.push(c);
                from = c;
            }
            // Cuts failed their check: this tokenizer is not local; tokenize whole.
            None if tries >= TRIES && out.is_empty() => return Ok(Vec::new()),
            None if tries >= TRIES => return Ok(out),
            // No candidate in the rest: the rest is one piece.
            None => return Ok(out),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_are_single_spaces_before_letters() {
        let t = "ab cd  ef 12 x.";
        let found: Vec<usize> = (0..t.len()).filter(|&i| candidate(t, i)).collect();
        // "ab| cd": yes; "cd | ef": no (two spaces); "ef| 12": no (digit); "12| x": yes.
        assert_eq!(found, vec![2, 12]);
    }
}
