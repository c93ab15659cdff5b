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
