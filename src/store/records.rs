//! The records kept in the store, serialised with postcard (see `schema/STORE.md`).

use serde::{Deserialize, Serialize};

use crate::model::Architecture;
use crate::shard::Shard;
use crate::NeuronId;

/// The model an index was built with.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelRecord {
    /// Readable name.
    pub name: String,
    /// The file or folder given at build time.
    pub path: String,
    /// SHA-256 of the model file (or of a folder's files, in name order).
    pub sha256: String,
    /// Architecture.
    pub architecture: Architecture,
    /// Transformer blocks.
    pub n_layers: u32,
    /// MLP neurons per layer.
    pub n_neurons: u32,
    /// The BOS id prepended to windows, if any.
    pub bos_id: Option<u32>,
}

/// The corpus an index was built from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CorpusRecord {
    /// The paths given at build time.
    pub paths: Vec<String>,
    /// The files read, in order.
    pub files: Vec<String>,
    /// SHA-256 over file names, contents and reading options.
    pub fingerprint: String,
    /// Documents read.
    pub documents: u64,
    /// Bytes read.
    pub bytes: u64,
    /// Invalid UTF-8 sequences replaced.
    pub invalid_utf8: u64,
    /// Bad `.jsonl` lines skipped.
    pub skipped_lines: u64,
}

/// The scan options that decide the store's content.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanSettings {
    /// Selected layers, ascending.
    pub layers: Vec<u32>,
    /// Selected neuron indices (the same in every selected layer), ascending.
    pub neurons: Vec<u32>,
    /// Examples kept per neuron: the top-k plus `extra_train`.
    pub top_k: u32,
    /// Of `top_k`, the examples ranked after the top-k that only train graphs.
    pub extra_train: u32,
    /// Tokens per window, BOS not counted.
    pub window: u32,
    /// Windows per forward batch.
    pub batch_size: u32,
    /// Whether windows start with BOS.
    pub bos: bool,
    /// Whether special tokens written in the corpus (`<|im_start|>`) were tokenized as
    /// their characters rather than as their one id.
    pub literal_special: bool,
    /// The part of `layers` × `neurons` this store builds, when the build is one shard
    /// of several (`None`: all of it).
    pub shard: Option<Shard>,
}

impl ScanSettings {
    /// The neurons this store covers in each of `layers` (same order), its graphs built
    /// in bands of `band` layers (see `BatchConfig::band_layers`).
    pub fn layer_neurons(&self, band: usize) -> Vec<Vec<u32>> {
        match &self.shard {
            None => vec![self.neurons.clone(); self.layers.len()],
            Some(shard) => {
                let layers: Vec<usize> = self.layers.iter().map(|&l| l as usize).collect();
                let neurons: Vec<usize> = self.neurons.iter().map(|&n| n as usize).collect();
                shard
                    .select(&layers, &neurons, band)
                    .into_iter()
                    .map(|of_layer| of_layer.into_iter().map(|n| n as u32).collect())
                    .collect()
            }
        }
    }

    /// Whether `neuron` is one of the neurons this store covers (bands of `band`
    /// layers).
    pub fn covers(&self, neuron: NeuronId, band: usize) -> bool {
        let li = self.layers.iter().position(|&l| l == neuron.layer as u32);
        let pos = self.neurons.binary_search(&neuron.index).ok();
        let (Some(li), Some(pos)) = (li, pos) else {
            return false;
        };
        self.shard.as_ref().is_none_or(|s| {
            let layers: Vec<usize> = self.layers.iter().map(|&l| l as usize).collect();
            s.owner(&layers, self.neurons.len(), band, li, pos) == s.index
        })
    }

    /// The layers as `0,1,2`.
    pub fn layer_list(&self) -> String {
        let layers: Vec<String> = self.layers.iter().map(u32::to_string).collect();
        layers.join(",")
    }

    /// How many neurons this store covers (bands of `band` layers).
    pub fn neuron_count(&self, band: usize) -> usize {
        self.layer_neurons(band).iter().map(Vec::len).sum()
    }
}

/// What a store is: format, model, corpus and scan settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunMeta {
    /// The on-disk format version ([`super::FORMAT_VERSION`]).
    pub format_version: u32,
    /// The model.
    pub model: ModelRecord,
    /// The corpus.
    pub corpus: CorpusRecord,
    /// The scan settings.
    pub scan: ScanSettings,
}

/// How far the scan has gone (committed with the top-k state of every checkpoint).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanProgress {
    /// Batches of the deterministic batch plan already folded in.
    pub batches_done: u64,
    /// Batches in the plan.
    pub batches_total: u64,
    /// Windows folded in.
    pub windows_done: u64,
    /// Windows in the corpus.
    pub windows_total: u64,
    /// Tokens folded in (BOS included).
    pub tokens_done: u64,
    /// Tokens in the corpus (BOS included).
    pub tokens_total: u64,
    /// Whether the scan has finished.
    pub complete: bool,
}

/// A window of corpus tokens kept because it is in some neuron's top-k.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowRecord {
    /// Document index in corpus order.
    pub doc: u32,
    /// Offset of the first non-BOS token in the document's tokens.
    pub start: u32,
    /// Token ids, BOS included when the scan used it.
    pub ids: Vec<u32>,
}

/// One top-k example of a neuron.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Example {
    /// Window id.
    pub window: u32,
    /// Position of the window's maximum activation (BOS is position 0 and never chosen).
    pub position: u16,
    /// The maximum activation (raw).
    pub activation: f32,
    /// The neuron's raw activation at every position of the window (BOS included),
    /// kept so that evaluation and display need no second forward pass.
    pub activations: Vec<f32>,
}

/// Number of histogram bins (see [`histogram_bin`]).
pub const HISTOGRAM_BINS: usize = 129;

/// The histogram bin of an activation: bin 64 holds |x| < 2^-8; above it, bins
/// 65..=128 hold positive values on a log2 scale with 4 bins an octave from 2^-8 to
/// 2^8 (the last bin also holds everything larger, and NaN); below it, bins 63..=0
/// mirror them for negative values.
pub fn histogram_bin(x: f32) -> usize {
    // Exponent and the two top mantissa bits of |x| as one integer: a log2 scale with
    // four bins an octave. Branch-free (selects only), so loops over it vectorise.
    let bits = x.to_bits();
    let magnitude = ((bits & 0x7fff_ffff) >> 21) as i32 - ((127 - 8) << 2);
    let m = magnitude.clamp(-1, 63);
    let negative = (bits >> 31) as i32;
    // m = -1 (|x| < 2^-8) gives 64 either way.
    let signed = if negative == 1 { -m - 1 } else { m + 1 };
    (64 + signed) as usize
}

/// The lower edge of a histogram bin's magnitude (for plots).
pub fn histogram_bin_edges(bin: usize) -> (f32, f32) {
    if bin == 64 {
        return (-(2f32.powi(-8)), 2f32.powi(-8));
    }
    let m = if bin > 64 { bin - 65 } else { 63 - bin } as i32;
    let lo = 2f32.powi(m / 4 - 8) * (1.0 + (m % 4) as f32 / 4.0);
    let hi = 2f32.powi(m / 4 - 8) * (1.0 + (m % 4 + 1) as f32 / 4.0);
    if bin > 64 {
        (lo, hi)
    } else {
        (-hi, -lo)
    }
}

/// Per-neuron statistics over every non-BOS token of the corpus.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NeuronStats {
    /// Largest activation (the normaliser of everything later).
    pub max: f32,
    /// Sum of activations (mean = sum / count).
    pub sum: f64,
    /// Tokens seen.
    pub count: u64,
    /// Tokens with activation > 0.
    pub positive: u64,
    /// Token counts per [`histogram_bin`].
    pub histogram: Vec<u32>,
}

impl Default for NeuronStats {
    fn default() -> Self {
        NeuronStats {
            max: f32::NEG_INFINITY,
            sum: 0.0,
            count: 0,
            positive: 0,
            histogram: vec![0; HISTOGRAM_BINS],
        }
    }
}

impl NeuronStats {
    /// Mean activation.
    pub fn mean(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum / self.count as f64
        }
    }
}

/// What the scan keeps for one neuron.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NeuronScan {
    /// Top-k windows by maximum activation, best first (ties: lower window id first).
    pub examples: Vec<Example>,
    /// Statistics over the corpus.
    pub stats: NeuronStats,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_bins_are_ordered_and_cover_their_values() {
        let xs = [
            -300.0f32, -5.0, -1.0, -0.01, 0.0, 0.001, 0.01, 0.3, 1.0, 1.3, 5.0, 255.0, 1e6,
        ];
        let bins: Vec<usize> = xs.iter().map(|&x| histogram_bin(x)).collect();
        for w in bins.windows(2) {
            assert!(w[0] <= w[1], "{bins:?}");
        }
        assert_eq!(histogram_bin(0.0), 64);
        assert_eq!(histogram_bin(1e6), 128);
        assert_eq!(histogram_bin(-1e6), 0);
        for &x in &[0.01f32, 0.3, 1.0, 1.3, 5.0, 255.0, -0.3, -5.0] {
            let (lo, hi) = histogram_bin_edges(histogram_bin(x));
            assert!(
                lo <= x && x < hi || (x < 0.0 && lo < x && x <= hi),
                "{x} not in [{lo}, {hi})"
            );
        }
    }
}
