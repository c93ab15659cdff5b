//! The Llama architecture (SmolLM2, Llama 2/3 without rope scaling, ...).
//!
//! Pre-norm blocks: `h = x + attn(rms(x))`, `x' = h + down(silu(gate(rms(h))) * up(rms(h)))`.
//! The neuron activation is `silu(gate(.)) * up(.)`, the input of `down`.

use candle_core::{Device, Tensor};

use super::linear::Linear;
use super::ops;
use super::{ForwardOutput, ForwardRequest};
use crate::error::Result;

/// Shape and constants of a Llama model.
#[derive(Clone, Debug)]
pub(crate) struct LlamaConfig {
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub n_layers: usize,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub head_dim: usize,
    pub rms_eps: f64,
    pub rope_theta: f64,
    /// Per-frequency RoPE divisors (Llama 3.1 scaling), `head_dim / 2` of them.
    pub rope_divisors: Option<Vec<f64>>,
    pub vocab_size: usize,
    /// GGUF converters permute q/k rows so that RoPE rotates adjacent pairs
    /// (interleaved); Hugging Face weights rotate the two halves of each head.
    pub interleaved_rope: bool,
}

/// One transformer block's weights.
#[derive(Debug)]
pub(crate) struct LlamaBlock {
    pub attn_norm: Tensor,
    pub q: Linear,
    pub k: Linear,
    pub v: Linear,
    pub o: Linear,
    pub ffn_norm: Tensor,
    pub gate: Linear,
    pub up: Linear,
    pub down: Linear,
}

/// A Llama network.
#[derive(Debug)]
pub(crate) struct Llama {
    pub config: LlamaConfig,
    /// `[vocab, hidden]` f32.
    pub embed: Tensor,
    pub blocks: Vec<LlamaBlock>,
    pub norm: Tensor,
    pub lm_head: Linear,
    pub device: Device,
}

impl Llama {
    /// Runs the blocks up to the highest requested layer (all of them, plus the final
    /// norm and LM head, when logits are asked for).
    pub fn forward(&self, ids: &Tensor, request: &ForwardRequest) -> Result<ForwardOutput> {
        let cfg = &self.config;
        let (b, t) = ids.dims2()?;
        let last = if request.logits {
            cfg.n_layers - 1
        } else {
            *request.layers.last().expect("at least one layer")
        };
        let mut x =
            self.embed
                .index_select(&ids.flatten_all()?, 0)?
                .reshape((b, t, cfg.hidden_size))?;
        let mask = ops::pass_mask(t, request.tree, &self.device)?;
        let (cos, sin) = ops::pass_rope(
            (b, t),
            cfg.head_dim,
            cfg.rope_theta,
            cfg.rope_divisors.as_deref(),
            request.tree,
            &self.device,
        )?;
        let scale = 1.0 / (cfg.head_dim as f64).sqrt();
        let eps = cfg.rms_eps as f32;
        let mut activations = Vec::with_capacity(request.layers.len());
        for (layer, block) in self.blocks.iter().enumerate().take(last + 1) {
            let h = candle_nn::ops::rms_norm(&x, &block.attn_norm, eps)?;
            let q = ops::split_heads(&block.q.forward(&h)?, cfg.n_heads)?;
            let k = ops::split_heads(&block.k.forward(&h)?, cfg.n_kv_heads)?;
            let v = ops::split_heads(&block.v.forward(&h)?, cfg.n_kv_heads)?;
            let (q, k) = if cfg.interleaved_rope {
                (
                    candle_nn::rotary_emb::rope_i(&q, &cos, &sin)?,
                    candle_nn::rotary_emb::rope_i(&k, &cos, &sin)?,
                )
            } else {
                (
                    candle_nn::rotary_emb::rope(&q, &cos, &sin)?,
                    candle_nn::rotary_emb::rope(&k, &cos, &sin)?,
                )
            };
            let y = ops::attention(&q, &k, &v, &mask, scale)?;
            x = (x + block.o.forward(&y)?)?;
            let m = candle_nn::ops::rms_norm(&x, &block.ffn_norm, eps)?;
            let cols = request.neurons.filter(|_| layer == last);
            let act = (block.gate.forward_columns(&m, cols)?.silu()?
                * block.up.forward_columns(&m, cols)?)?;
            if request.layers.binary_search(&layer).is_ok() {
                activations.push(act.clone());
            }
            if layer == last && !request.logits {
                break;
            }
            x = (x + block.down.forward(&act)?)?;
        }
        let logits = if request.logits {
            let x = candle_nn::ops::rms_norm(&x, &self.norm, eps)?;
            Some(self.lm_head.forward(&x)?)
        } else {
            None
        };
        Ok(ForwardOutput {
            activations,
            logits,
        })
    }
}
