//! Pruning (N2G step 3) and the train/held-out split (step 2): pure functions over
//! token sequences.

/// Whether a token ends a "sentence": it contains `.`, `!` or a newline.
pub fn ends_sentence(token: &str) -> bool {
    token.contains(['.', '!', '\n'])
}

/// The start of the candidate of `len` tokens ending at `p` (never before `first`).
pub fn candidate_start(p: usize, len: usize, first: usize) -> usize {
    (p + 1).saturating_sub(len).max(first)
}

/// Post-context after `p`: tokens `p+1..` up to and including the end of p's sentence,
/// at most `max` of them; none when `p` itself ends its sentence.
pub fn post_context_end(tokens: &[&str], p: usize, max: usize) -> usize {
    if ends_sentence(tokens[p]) {
        return p + 1;
    }
    let mut end = p + 1;
    while end < tokens.len() && end - (p + 1) < max {
        end += 1;
        if ends_sentence(tokens[end - 1]) {
            break;
        }
    }
    end
}

/// Whether a prune candidate keeps the neuron firing at its last position: that position
/// is the argmax (first maximum, as numpy) over positions from `first`, and
/// `(a - a0) / a0 > -tolerance`.
pub fn accepts(acts: &[f32], first: usize, a0: f32, tolerance: f32) -> bool {
    let last = acts.len() - 1;
    let a = acts[last];
    if acts[first..last].iter().any(|&x| x >= a) {
        return false;
    }
    a0 > 0.0 && (a - a0) / a0 > -tolerance
}

/// A deterministic shuffle of `0..n` (SplitMix64 driven Fisher-Yates).
pub fn shuffled(n: usize, seed: u64) -> Vec<usize> {
    let mut state = seed;
    let mut next = || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let mut v: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = (next() % (i as u64 + 1)) as usize;
        v.swap(i, j);
    }
    v
}

/// Splits `n` examples into (train, held-out) indices, each sorted: a seeded shuffle,
/// the first `round(n * train_fraction)` train.
pub fn split(n: usize, train_fraction: f32, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let order = shuffled(n, seed);
    let n_train = ((n as f32) * train_fraction).round() as usize;
    let mut train = order[..n_train.min(n)].to_vec();
    let mut test = order[n_train.min(n)..].to_vec();
    train.sort_unstable();
    test.sort_unstable();
    (train, test)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_and_post_context() {
        assert_eq!(candidate_start(10, 5, 1), 6);
        assert_eq!(candidate_start(3, 5, 1), 1);
        let toks = [
            "<s>", "The", " cat", " sat", ".", " It", " ran", " far", " away", " now", " and", ".",
        ];
        // p = 2 (" cat"): the sentence ends at "." (4), included.
        assert_eq!(post_context_end(&toks, 2, 5), 5);
        // p = 4 ends its sentence: no post-context.
        assert_eq!(post_context_end(&toks, 4, 5), 5);
        // p = 5: at most 5 tokens, the sentence would end at 11.
        assert_eq!(post_context_end(&toks, 5, 5), 11);
        // p at the end.
        assert_eq!(post_context_end(&toks, 11, 5), 12);
    }

    #[test]
    fn acceptance_needs_the_same_argmax_and_half_the_activation() {
        assert!(accepts(&[9.0, 0.1, 0.2, 1.0], 1, 1.5, 0.5));
        assert!(!accepts(&[9.0, 0.1, 0.2, 0.7], 1, 1.5, 0.5)); // dropped by more than half
        assert!(!accepts(&[9.0, 1.2, 0.2, 1.0], 1, 1.5, 0.5)); // argmax moved
        assert!(!accepts(&[9.0, 1.0, 1.0], 1, 1.0, 0.5)); // tie: argmax is the first
    }

    #[test]
    fn split_is_deterministic_and_complete() {
        let (a, b) = split(20, 0.5, 7);
        assert_eq!((a.len(), b.len()), (10, 10));
        assert_eq!(split(20, 0.5, 7), (a.clone(), b.clone()));
        let mut all: Vec<usize> = a.iter().chain(&b).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..20).collect::<Vec<_>>());
        assert_ne!(split(20, 0.5, 8).0, a);
    }
}
