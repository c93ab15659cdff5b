//! The Gemma 2 family (Hugging Face `model_type = "gemma2"`): Gemma (see `gemma.rs`)
//! plus
//!
//! * norms around both sublayers: `x + post_attn_norm(attn(input_norm(x)))`, then
//!   `x + post_ffn_norm(mlp(pre_ffn_norm(x)))`;
//! * attention scores scaled by `query_pre_attn_scalar^-0.5` and soft-capped,
//!   `cap * tanh(s / cap)` with `attn_logit_softcapping`, before the mask;
//! * a sliding window (`sliding_window`) on the layers the config's `layer_types` mark
//!   `sliding_attention`, else on every even layer (0, 2, ...);
//! * logits soft-capped with `final_logit_softcapping`.
//!
//! The neuron is Gemma's, `gelu_tanh(gate(.)) * up(.)`. GGUF files
//! (`general.architecture = gemma2`) load too, see [`gguf_config`].

use candle_core::Device;

use super::gemma::{base_config, load_weights, Gemma, Gemma2Extras};
use super::gguf::{GgufShape, Metadata};
use super::hf::{HfConfig, Weights};
use crate::error::{Error, Result};

/// Hugging Face's Gemma 2 defaults, which llama.cpp also assumes when a GGUF lacks them.
const ATTN_SOFTCAP: f64 = 50.0;
const FINAL_SOFTCAP: f64 = 30.0;
const WINDOW: usize = 4096;
/// The layer count of Gemma 2 27B, the one size whose `query_pre_attn_scalar` is not
/// `head_dim` but `hidden / heads`.
const LAYERS_27B: usize = 46;

/// Gemma 2's settings from GGUF metadata (`gemma2.attn_logit_softcapping`,
/// `gemma2.final_logit_softcapping`, `gemma2.attention.sliding_window`, sliding on even
/// layers). GGUF does not store `query_pre_attn_scalar`: as llama.cpp, the scale is
/// `head_dim^-0.5`, or `(hidden / heads)^-0.5` for the 27B model, which are the values
/// the published checkpoints declare.
pub(crate) fn gguf_config(meta: &Metadata, shape: &GgufShape) -> Result<Gemma2Extras> {
    let positive = |key: &str, default: f64| -> Result<Option<f64>> {
        let v = meta.opt_f64(key)?.unwrap_or(default);
        if v > 0.0 {
            Ok(Some(v))
        } else {
            Err(Error::bad_model(
                meta.path(),
                format!("metadata field `{key}`: must be positive"),
            ))
        }
    };
    let window = meta
        .opt_usize("gemma2.attention.sliding_window")?
        .unwrap_or(WINDOW)
        .max(1);
    let scalar = if shape.n_layers == LAYERS_27B {
        shape.hidden / shape.n_heads
    } else {
        shape.head_dim
    };
    Ok(Gemma2Extras {
        scale: 1.0 / (scalar as f64).sqrt(),
        attn_softcap: positive("gemma2.attn_logit_softcapping", ATTN_SOFTCAP)?,
        final_softcap: positive("gemma2.final_logit_softcapping", FINAL_SOFTCAP)?,
        windows: (0..shape.n_layers)
            .map(|i| (i % 2 == 0).then_some(window))
            .collect(),
    })
}

/// A field that is Hugging Face's `default` when absent and disabled when `null`.
fn optional_or(config: &HfConfig, key: &str, default: f64) -> Result<Option<f64>> {
    let value = if config.present(key) {
        config.opt_f64(key)?
    } else {
        Some(default)
    };
    match value {
        Some(v) if v.is_nan() || v <= 0.0 => {
            Err(config.error(format!("field `{key}`: must be positive")))
        }
        v => Ok(v),
    }
}

/// Loads a Gemma 2 model from a Hugging Face folder.
pub(crate) fn load(config: &HfConfig, w: &Weights, device: &Device) -> Result<Gemma> {
    let mut c = base_config(config)?;
    let scalar = config.opt_f64("query_pre_attn_scalar")?.unwrap_or(256.0);
    if scalar.is_nan() || scalar <= 0.0 {
        return Err(config.error("field `query_pre_attn_scalar`: must be positive"));
    }
    c.scale = scalar.powf(-0.5);
    c.attn_softcap = optional_or(config, "attn_logit_softcapping", ATTN_SOFTCAP)?;
    c.final_softcap = optional_or(config, "final_logit_softcapping", FINAL_SOFTCAP)?;
    let window = if config.present("sliding_window") {
        config.opt_usize("sliding_window")?
    } else {
        Some(WINDOW)
    };
    c.windows = config.layer_windows(c.n_layers, window, |i| i % 2 == 0)?;
    load_weights(c, w, device, true)
}
