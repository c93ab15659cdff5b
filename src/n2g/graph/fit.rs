//! Quieting the END nodes of a graph that its own training windows show to over-fire
//! (not in the paper; `--end-min-firing`, see `docs/N2G.md`).
//!
//! Lines are made only where the neuron fired, so every END predicts firing, and a
//! short pattern (an activating token with little or no context) predicts it wherever
//! the pattern appears. The training windows say how often that is right: for each END,
//! the positions of those windows where it is the longest match. An END whose matches
//! fire less often than a given share takes the mean true activation of its matches
//! (their least-squares value, below the fire threshold unless the few firing matches
//! are very strong), so it stops predicting firing where the windows showed it mostly
//! does not; being the longest match, it also overrides shorter patterns there. Other
//! ENDs keep the value their lines gave them.

use super::Graph;

/// Training texts as the graph stage reads them: dictionary ids (`None`: a token not in
/// the dictionary) and the neuron's normalised activation at each position.
pub type KnownText = (Vec<Option<u32>>, Vec<f32>);

impl Graph {
    /// Quiets rarely-firing ENDs (see the module docs): every END that is the longest
    /// match at some position `k >= from` of `texts`, and whose matches reach
    /// `fire_threshold` at fewer than `min_share` of them, takes the mean activation of
    /// those matches. ENDs never matched, or matched often enough where the neuron
    /// fires, keep their value. Which END matches a position depends on the trie alone,
    /// so one pass suffices, and the order of `texts` matters only to float rounding.
    pub fn quiet_rare_ends(
        &mut self,
        texts: &[KnownText],
        from: usize,
        fire_threshold: f32,
        min_share: f32,
    ) {
        // Per node: (sum of activations, matches, firing matches).
        let mut seen: Vec<(f64, u32, u32)> = vec![(0.0, 0, 0); self.nodes.len()];
        for (tokens, acts) in texts {
            for (k, &y) in acts.iter().enumerate().take(tokens.len()).skip(from) {
                if let Some(node) = self.matched_end(tokens, k) {
                    let slot = &mut seen[node as usize];
                    slot.0 += f64::from(y);
                    slot.1 += 1;
                    slot.2 += u32::from(y >= fire_threshold);
                }
            }
        }
        for (node, (sum, matches, firing)) in self.nodes.iter_mut().zip(seen) {
            let rare = matches > 0 && (firing as f32) < min_share * matches as f32;
            if let (Some(end), true) = (&mut node.end, rare) {
                end.activation = (sum / f64::from(matches)) as f32;
            }
        }
    }
}
