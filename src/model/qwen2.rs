//! The Qwen 2 family (Qwen 2 and Qwen 2.5, Hugging Face `model_type = "qwen2"`): the
//! Llama block with biases on the q, k and v projections (none on o) and a large RoPE
//! base. The neuron is Llama's, `silu(gate(.)) * up(.)`.
//!
//! A sliding window applies only with `use_sliding_window = true`: on the layers the
//! config's `layer_types` mark `sliding_attention`, else on layers from
//! `max_window_layers` on, as Hugging Face's configuration derives them.

use candle_core::Device;

use super::hf::{HfConfig, Weights};
use super::llama::{load_hf, HfVariant, Llama};
use crate::error::Result;

/// The sliding window of each layer of a Qwen 2 or Qwen 3 config.
pub(crate) fn qwen_windows(config: &HfConfig, n_layers: usize) -> Result<Vec<Option<usize>>> {
    let window = if config.opt_bool("use_sliding_window")?.unwrap_or(false) {
        config.opt_usize("sliding_window")?
    } else {
        None
    };
    let from = config.opt_usize("max_window_layers")?.unwrap_or(n_layers);
    config.layer_windows(n_layers, window, |i| i >= from)
}

/// Loads a Qwen 2 / 2.5 model from a Hugging Face folder.
pub(crate) fn load(config: &HfConfig, w: &Weights, device: &Device) -> Result<Llama> {
    let n_layers = config.usize("num_hidden_layers")?;
    let variant = HfVariant {
        qkv_bias: true,
        o_bias: false,
        qk_norm: false,
        windows: qwen_windows(config, n_layers)?,
    };
    load_hf(config, w, device, variant)
}
