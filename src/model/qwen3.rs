//! The Qwen 3 family (Hugging Face `model_type = "qwen3"`): the Llama block with an
//! RMSNorm over each head of q and of k (`self_attn.q_norm` / `k_norm`, `[head_dim]`)
//! before RoPE, an explicit `head_dim`, and no attention biases unless
//! `attention_bias` says so. Sliding windows as for Qwen 2. The neuron is Llama's,
//! `silu(gate(.)) * up(.)`.

use candle_core::Device;

use super::hf::{HfConfig, Weights};
use super::llama::{load_hf, HfVariant, Llama};
use super::qwen2::qwen_windows;
use crate::error::Result;

/// Loads a Qwen 3 model from a Hugging Face folder.
pub(crate) fn load(config: &HfConfig, w: &Weights, device: &Device) -> Result<Llama> {
    let n_layers = config.usize("num_hidden_layers")?;
    let bias = config.opt_bool("attention_bias")?.unwrap_or(false);
    let variant = HfVariant {
        qkv_bias: bias,
        o_bias: bias,
        qk_norm: true,
        windows: qwen_windows(config, n_layers)?,
    };
    load_hf(config, w, device, variant)
}
