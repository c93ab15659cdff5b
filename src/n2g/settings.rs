//! The graph stage's parameters and the per-neuron record it stores.

use serde::{Deserialize, Serialize};

use super::eval::Scores;
use super::graph::{EndActivation, Graph};

/// Every parameter of graph building. The defaults are the authors' except where the
/// `docs/N2G.md` lists a measured improvement; [`GraphSettings::authors`]
/// is the paper's configuration. Stored in the index; continuing a build with other
/// settings is refused.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GraphSettings {
    /// A position makes a line when its normalised activation is above this.
    pub activation_threshold: f32,
    /// A context token is kept when its importance is above this (the authors: 0.75).
    pub importance_threshold: f32,
    /// A token "fires" at or above this normalised activation (evaluation).
    pub fire_threshold: f32,
    /// Positions of a training window that are pruned and turned into lines: the max
    /// and up to `seeds_per_example - 1` other positions above the activation threshold
    /// (the authors used the max only: 1).
    pub seeds_per_example: usize,
    /// Also test every activating token alone (BOS + token) and give it a line without
    /// context when it fires so (not in the paper).
    pub token_alone: bool,
    /// Also substitute the activating tokens themselves (not in the paper, which
    /// substitutes important context words only).
    pub augment_activating: bool,
    /// Substitutes per important word (0 turns augmentation off).
    pub augment: usize,
    /// Prune candidate lengths, shortest first.
    pub prune_lengths: Vec<usize>,
    /// Accept a prune candidate when `(a - a0) / a0 > -prune_tolerance`.
    pub prune_tolerance: f32,
    /// Tokens of post-context appended after the max token.
    pub post_context: usize,
    /// Fraction of the top-k examples used for training.
    pub train_fraction: f32,
    /// Windows ranked after the top-k (the scan keeps top-k + this many per neuron)
    /// that train the graph but are never held out: more training data, the same
    /// held-out top examples (the authors: 0).
    pub extra_train: usize,
    /// Seed of the train/held-out split.
    pub seed: u64,
    /// What END nodes keep when several lines end there.
    pub end_activation: EndActivation,
    /// An END whose longest-match positions in the training windows fire less often
    /// than this share takes their mean activation (`Graph::quiet_rare_ends`; not in
    /// the paper: 0 turns it off).
    pub end_min_firing: f32,
    /// The token that masks context for importance.
    pub mask_token: u32,
    /// Random corpus windows for the false-positive rate.
    pub random_windows: usize,
}

impl Default for GraphSettings {
    fn default() -> Self {
        GraphSettings {
            activation_threshold: 0.5,
            importance_threshold: 0.9,
            fire_threshold: 0.5,
            seeds_per_example: 8,
            token_alone: true,
            augment_activating: true,
            augment: 5,
            prune_lengths: vec![5, 10, 15, 20, 25, 30],
            prune_tolerance: 0.5,
            post_context: 5,
            train_fraction: 0.5,
            extra_train: 10,
            seed: 0x4e32_4721,
            end_activation: EndActivation::default(),
            end_min_firing: 0.2,
            mask_token: 0,
            random_windows: 32,
        }
    }
}

impl GraphSettings {
    /// The paper's configuration: importance threshold
    /// 0.75, the max token of each training example only, no context-free check, only
    /// context words substituted, an END keeping its first line's activation (and never
    /// quieted on the training windows), and the top-k split in halves with no extra
    /// training windows. The substitute source stays the model's embedding neighbours
    /// (the authors' DistilBERT is a second model).
    pub fn authors() -> Self {
        GraphSettings {
            importance_threshold: 0.75,
            seeds_per_example: 1,
            token_alone: false,
            augment_activating: false,
            end_activation: EndActivation::First,
            end_min_firing: 0.0,
            extra_train: 0,
            ..GraphSettings::default()
        }
    }
}

/// A setting whose value cannot work: the field (as named in the struct) and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct InvalidSetting {
    /// The field, as the struct names it (`activation_threshold`, `chunk_neurons`, ...).
    pub field: &'static str,
    /// What is wrong, with the value and the accepted range.
    pub message: String,
}

impl InvalidSetting {
    /// An error for `field`.
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        InvalidSetting {
            field,
            message: message.into(),
        }
    }
}

/// Checks that `x` is finite and in `lo..=hi` (`lo..hi` when `hi_open`; `lo` excluded
/// when `lo_open`).
pub fn check_range(
    field: &'static str,
    x: f32,
    (lo, lo_open): (f32, bool),
    (hi, hi_open): (f32, bool),
) -> Result<(), InvalidSetting> {
    let above = if lo_open { x > lo } else { x >= lo };
    let below = if hi_open { x < hi } else { x <= hi };
    if x.is_finite() && above && below {
        return Ok(());
    }
    Err(InvalidSetting::new(
        field,
        format!(
            "must be a number in {}{lo}, {hi}{} (got {x})",
            if lo_open { "(" } else { "[" },
            if hi_open { ")" } else { "]" }
        ),
    ))
}

/// Checks that `n` is in `lo..=hi`.
pub fn check_count(
    field: &'static str,
    n: usize,
    lo: usize,
    hi: usize,
) -> Result<(), InvalidSetting> {
    if (lo..=hi).contains(&n) {
        return Ok(());
    }
    Err(InvalidSetting::new(
        field,
        format!("must be a whole number from {lo} to {hi} (got {n})"),
    ))
}

/// The longest prune candidate and post-context accepted (tokens).
pub const MAX_CONTEXT_TOKENS: usize = 1 << 16;

impl GraphSettings {
    /// Checks every field for range and finiteness before anything runs: the first
    /// field whose value cannot work, named. Normalised activations and importances lie
    /// in [0, 1], so thresholds outside it (or NaN, infinite) would silently make every
    /// graph empty or every score perfect.
    pub fn validate(&self) -> Result<(), InvalidSetting> {
        let unit = (0.0, false);
        check_range(
            "activation_threshold",
            self.activation_threshold,
            unit,
            (1.0, true),
        )?;
        check_range(
            "importance_threshold",
            self.importance_threshold,
            unit,
            (1.0, false),
        )?;
        check_range(
            "fire_threshold",
            self.fire_threshold,
            (0.0, true),
            (1.0, false),
        )?;
        check_count("seeds_per_example", self.seeds_per_example, 1, 1024)?;
        check_count("augment", self.augment, 0, 1024)?;
        if self.prune_lengths.is_empty()
            || self.prune_lengths[0] == 0
            || self.prune_lengths.windows(2).any(|w| w[0] >= w[1])
            || self.prune_lengths.iter().any(|&l| l > MAX_CONTEXT_TOKENS)
        {
            return Err(InvalidSetting::new(
                "prune_lengths",
                format!(
                    "must be increasing lengths from 1 to {MAX_CONTEXT_TOKENS} (got {:?})",
                    self.prune_lengths
                ),
            ));
        }
        check_range("prune_tolerance", self.prune_tolerance, unit, (1.0, true))?;
        check_count("post_context", self.post_context, 0, MAX_CONTEXT_TOKENS)?;
        check_range(
            "train_fraction",
            self.train_fraction,
            (0.0, true),
            (1.0, true),
        )?;
        check_count("extra_train", self.extra_train, 0, 1 << 20)?;
        check_range("end_min_firing", self.end_min_firing, unit, (1.0, false))?;
        check_count("random_windows", self.random_windows, 0, 1 << 20)?;
        Ok(())
    }
}

/// The evaluation of one neuron's graph (N2G step 8) beside the per-token baseline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NeuronEval {
    /// The graph on the held-out top examples.
    pub graph: Scores,
    /// The per-token baseline on the same tokens.
    pub baseline: Scores,
    /// Share of non-firing tokens of random corpus windows where the graph predicts firing.
    pub random_fpr: f64,
    /// The same for the baseline.
    pub random_fpr_baseline: f64,
    /// Tokens of random windows evaluated.
    pub random_tokens: u64,
    /// Training examples.
    pub train_examples: u32,
    /// Held-out examples.
    pub test_examples: u32,
    /// Lines inserted into the trie.
    pub lines: u32,
    /// Augmented variants run.
    pub variants: u32,
    /// Variants that kept the neuron firing (positive examples).
    pub positive_variants: u32,
    /// The neuron's max activation over the corpus (the normaliser).
    pub max_activation: f32,
}

/// What the graph stage stores per neuron.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NeuronGraph {
    /// The graph (token ids into the index's dictionary).
    pub graph: Graph,
    /// Its evaluation.
    pub eval: NeuronEval,
}
