//! The Mistral family (Hugging Face `model_type = "mistral"`): the Llama block with
//! sliding-window attention on every layer when the config's `sliding_window` is set
//! (keys less than `sliding_window` positions back). The neuron is Llama's,
//! `silu(gate(.)) * up(.)`.

use candle_core::Device;

use super::hf::{HfConfig, Weights};
use super::llama::{load_hf, HfVariant, Llama};
use crate::error::Result;

/// Loads a Mistral model from a Hugging Face folder.
pub(crate) fn load(config: &HfConfig, w: &Weights, device: &Device) -> Result<Llama> {
    let n_layers = config.usize("num_hidden_layers")?;
    let window = config.opt_usize("sliding_window")?;
    let bias = config.opt_bool("attention_bias")?.unwrap_or(false);
    let variant = HfVariant {
        qkv_bias: bias,
        o_bias: bias,
        qk_norm: false,
        windows: config.layer_windows(n_layers, window, |_| true)?,
    };
    load_hf(config, w, device, variant)
}
