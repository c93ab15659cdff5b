//! The views of an index that every face shows: the CLI's `--json`, the web server's
//! API and the Python package serialise these same types, and `schema/*.schema.json`
//! is their contract. Each is plain data, built by [`crate::Index`].

use serde::Serialize;

use crate::n2g::GraphSettings;
use crate::store::{CorpusRecord, ModelRecord, ScanProgress, ScanSettings};

pub use crate::n2g::NeuronEval as EvalView;
pub use crate::search::{Hit, HitPath, HitPaths, SimilarHit, SimilarPair};

/// An activating token of a graph.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ActivatingView {
    /// Normalised token string.
    pub token: String,
    /// Highest normalised END activation below it.
    pub activation: f32,
}

/// A context token of a graph.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ContextView {
    /// Normalised token string.
    pub token: String,
    /// Distance from the activating token (1 = directly before it).
    pub depth: u16,
    /// Max importance.
    pub importance: f32,
}

/// A neuron's N2G graph.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GraphView {
    /// Activating tokens, strongest first.
    pub activating: Vec<ActivatingView>,
    /// Context tokens by depth.
    pub context: Vec<ContextView>,
    /// Every path from the activating token backwards, `*` for IGNORE.
    pub paths: Vec<Vec<String>>,
    /// END activation of each path.
    pub path_activations: Vec<f32>,
    /// Trie nodes.
    pub nodes: usize,
}

/// Which part of the graph stage's split a top example fell in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExampleRole {
    /// The graph was built from it.
    Train,
    /// Held out to evaluate the graph.
    HeldOut,
}

/// One top example of a neuron: a corpus window with the neuron's activations.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ExampleView {
    /// Window id in the corpus.
    pub window: u32,
    /// Token strings, BOS included as token 0.
    pub tokens: Vec<String>,
    /// Token ids.
    pub ids: Vec<u32>,
    /// Raw activations of the neuron, one per token.
    pub activations: Vec<f32>,
    /// Position of the maximum (never the BOS).
    pub argmax: usize,
    /// The maximum activation (raw).
    pub max: f32,
    /// Its role in the graph stage's split (absent before graphs are built).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<ExampleRole>,
}

/// Everything an index knows of one neuron (`show --json`, one line of `export`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NeuronView {
    /// `L:N`.
    pub neuron: String,
    /// Layer.
    pub layer: usize,
    /// Index within the layer.
    pub index: usize,
    /// What the unit is: an MLP neuron or an SAE latent (the index's `info` says which
    /// SAE).
    pub unit_kind: crate::model::UnitKind,
    /// Why the unit has no graph when the build skipped it as dense
    /// (`--max-density`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub graph_skipped: Option<String>,
    /// Largest activation over the corpus (BOS excluded).
    pub max_activation: f32,
    /// Mean activation over the corpus (BOS excluded).
    pub mean_activation: f64,
    /// Fraction of tokens with activation > 0.
    pub positive_fraction: f64,
    /// Tokens scanned.
    pub tokens: u64,
    /// Top examples, best first (absent when none were asked for).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub examples: Vec<ExampleView>,
    /// The N2G graph, once built.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub graph: Option<GraphView>,
    /// Its evaluation, once built.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eval: Option<EvalView>,
    /// Counts of the activation histogram over the corpus: bin 64 holds zero, bins
    /// below it negative and above it positive values on a log scale
    /// ([`crate::store::records::histogram_bin_edges`]).
    #[serde(skip)]
    pub histogram: Vec<u32>,
}

/// Per-layer means of the graphs' evaluation, graph beside the per-token baseline.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct LayerEvalView {
    /// The layer.
    pub layer: u16,
    /// Neurons with a graph.
    pub neurons: usize,
    /// Firing precision of the graphs.
    pub precision: f64,
    /// Firing recall of the graphs.
    pub recall: f64,
    /// Firing F1 of the graphs.
    pub f1: f64,
    /// Firing F1 of the per-token baseline.
    pub baseline_f1: f64,
    /// Non-firing F1 of the graphs.
    pub non_firing_f1: f64,
    /// `1 - MSE / Var` of the graphs.
    pub variance_explained: f64,
    /// `1 - MSE / Var` of the baseline.
    pub baseline_variance_explained: f64,
    /// False-positive rate on random windows.
    pub random_fpr: f64,
    /// The baseline's false-positive rate on random windows.
    pub random_fpr_baseline: f64,
    /// Lines per graph.
    pub lines: f64,
    /// Share of augmented variants that kept firing (0..1).
    pub variants_kept: f64,
}

/// Which preset a graph-settings record is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SettingsPreset {
    /// The defaults of `build`.
    Defaults,
    /// The paper's (`--authors`).
    Authors,
    /// Neither.
    Custom,
}

/// What an index holds (`info --json`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct InfoView {
    /// The index folder.
    pub index: String,
    /// The store's format version.
    pub format_version: u32,
    /// The units the index holds: MLP neurons, or an SAE's latents (which SAE, its
    /// SHA-256, hook, architecture and shape).
    pub units: crate::model::UnitSet,
    /// The density above which the build skipped graphs (`--max-density`), if it did.
    pub max_density: Option<f64>,
    /// The units whose graphs were skipped as dense, as `L:N`.
    pub skipped_dense: Vec<String>,
    /// The model it was built with.
    pub model: ModelRecord,
    /// The corpus it was built from.
    pub corpus: CorpusRecord,
    /// The scan's settings.
    pub scan: ScanSettings,
    /// How far the scan has gone.
    pub progress: ScanProgress,
    /// Neurons the scan covers.
    pub neurons: usize,
    /// Bytes on disk.
    pub size_bytes: u64,
    /// Neurons with a graph.
    pub graphs: usize,
    /// The graph stage's settings, once it has started.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub graph_settings: Option<GraphSettings>,
    /// Which preset those settings are.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preset: Option<SettingsPreset>,
    /// The mask token's string.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mask_token: Option<String>,
    /// Per-layer evaluation means.
    pub layers: Vec<LayerEvalView>,
}

/// What `info --check` verified.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CheckView {
    /// Values of the store per table, each matching its checksum.
    pub store: Vec<(String, u64)>,
    /// Tantivy files and redb values of the search index, when one is built.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub search: Option<(usize, u64)>,
}

/// Per-token activations of a text (`activations --json`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ActivationsView {
    /// The model's name.
    pub model: String,
    /// The units read: MLP neurons or SAE latents (which SAE, at which hook).
    pub units: crate::model::UnitSet,
    /// The layer.
    pub layer: usize,
    /// Whether token 0 is BOS.
    pub bos: bool,
    /// Token ids.
    pub ids: Vec<u32>,
    /// Token strings.
    pub tokens: Vec<String>,
    /// The neurons reported, one column each.
    pub neurons: Vec<usize>,
    /// `activations[t][j]`: token `t`, neuron `neurons[j]`.
    pub activations: Vec<Vec<f32>>,
}

/// What a neuron's graph predicts on a text, beside the neuron's real activations
/// (`predict --json`, `POST /api/predict`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PredictView {
    /// `L:N`.
    pub neuron: String,
    /// Whether token 0 is BOS (its values are 0 in `normalized` and `predicted`).
    pub bos: bool,
    /// Token strings.
    pub tokens: Vec<String>,
    /// Token ids.
    pub ids: Vec<u32>,
    /// The neuron's activation at each token, from the model.
    pub activations: Vec<f32>,
    /// The activation divided by the neuron's max over the corpus.
    pub normalized: Vec<f32>,
    /// The graph's prediction at each token, on the normalised scale.
    pub predicted: Vec<f32>,
}
