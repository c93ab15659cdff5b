//! The GPT-NeoX architecture (Pythia).
//!
//! Partial rotary embeddings on the first `rotary_pct` of each head (half rotation),
//! fused per-head `query_key_value`, and the parallel residual
//! `x' = x + attn(ln1(x)) + mlp(ln2(x))` (or sequential when
//! `use_parallel_residual = false`). The neuron activation is `gelu(dense_h_to_4h(.))`.

use candle_core::{Device, Tensor};

use super::gpt2::Gelu;
use super::hf::{HfConfig, Weights};
use super::hook::{ln_normalized, Capture};
use super::linear::Linear;
use super::ops;
use super::{ForwardOutput, ForwardRequest, HookPoint};
use crate::error::{Error, Result};

struct Block {
    ln_1: (Tensor, Tensor),
    ln_2: (Tensor, Tensor),
    qkv: Linear,
    dense: Linear,
    up: Linear,
    down: Linear,
}

/// A GPT-NeoX network.
pub(crate) struct GptNeox {
    hidden: usize,
    inner: usize,
    n_heads: usize,
    rotary_dims: usize,
    rope_theta: f64,
    eps: f32,
    act: Gelu,
    parallel: bool,
    embed: Tensor,
    blocks: Vec<Block>,
    ln_f: (Tensor, Tensor),
    lm_head: Linear,
    device: Device,
}

impl GptNeox {
    /// Loads from a Hugging Face folder.
    pub fn load(config: &HfConfig, w: &Weights, device: &Device) -> Result<GptNeox> {
        let hidden = config.usize("hidden_size")?;
        let n_layers = config.usize("num_hidden_layers")?;
        let n_heads = config.usize("num_attention_heads")?;
        let inner = config.usize("intermediate_size")?;
        let vocab = config.usize("vocab_size")?;
        let head_dim = hidden / n_heads;
        if config.has("rope_scaling") {
            return Err(config.error("rope_scaling is not supported"));
        }
        let rotary_pct = match config.opt_f64("rotary_pct")? {
            Some(p) => p,
            None => config.opt_f64("partial_rotary_factor")?.unwrap_or(0.25),
        };
        let rotary_dims = (head_dim as f64 * rotary_pct) as usize;
        let bias = config.opt_bool("attention_bias")?.unwrap_or(true);
        let embed = w.get("gpt_neox.embed_in.weight", &[vocab, hidden])?;
        let mut blocks = Vec::with_capacity(n_layers);
        for i in 0..n_layers {
            let p = |s: &str| format!("gpt_neox.layers.{i}.{s}");
            blocks.push(Block {
                ln_1: w.layer_norm(&p("input_layernorm"), hidden)?,
                ln_2: w.layer_norm(&p("post_attention_layernorm"), hidden)?,
                qkv: w.linear(&p("attention.query_key_value"), 3 * hidden, hidden, bias)?,
                dense: w.linear(&p("attention.dense"), hidden, hidden, bias)?,
                up: w.linear(&p("mlp.dense_h_to_4h"), inner, hidden, true)?,
                down: w.linear(&p("mlp.dense_4h_to_h"), hidden, inner, true)?,
            });
        }
        let ln_f = w.layer_norm("gpt_neox.final_layer_norm", hidden)?;
        let lm_head = if w.has("embed_out.weight") {
            w.linear("embed_out", vocab, hidden, false)?
        } else {
            Linear::tied(&embed)?
        };
        let rope_theta = match config.opt_f64("rotary_emb_base")? {
            Some(t) => t,
            None => config.opt_f64("rope_theta")?.unwrap_or(10_000.0),
        };
        Ok(GptNeox {
            hidden,
            inner,
            n_heads,
            rotary_dims,
            rope_theta,
            eps: config.opt_f64("layer_norm_eps")?.unwrap_or(1e-5) as f32,
            act: Gelu::parse(config, "hidden_act", "gelu")?,
            parallel: config.opt_bool("use_parallel_residual")?.unwrap_or(true),
            embed,
            blocks,
            ln_f,
            lm_head,
            device: device.clone(),
        })
    }

    /// The token embedding matrix.
    pub fn embedding(&self) -> &Tensor {
        &self.embed
    }

    /// `(layers, neurons, hidden, vocab)`.
    pub fn shape(&self) -> (usize, usize, usize, usize) {
        (
            self.blocks.len(),
            self.inner,
            self.hidden,
            self.embed.dim(0).unwrap_or(0),
        )
    }

    fn attention(
        &self,
        block: &Block,
        x: &Tensor,
        mask: &Tensor,
        rope: &(Tensor, Tensor),
    ) -> Result<Tensor> {
        let (b, t, _) = x.dims3()?;
        let head_dim = self.hidden / self.n_heads;
        let h = candle_nn::ops::layer_norm(x, &block.ln_1.0, &block.ln_1.1, self.eps)?;
        // Hugging Face views the fused output as [b, t, heads, 3 * head_dim].
        let qkv = block
            .qkv
            .forward(&h)?
            .reshape((b, t, self.n_heads, 3 * head_dim))?;
        let part = |i: usize| -> Result<Tensor> {
            Ok(qkv
                .narrow(3, i * head_dim, head_dim)?
                .transpose(1, 2)?
                .contiguous()?)
        };
        let (q, k, v) = (part(0)?, part(1)?, part(2)?);
        let q = ops::rope_partial(&q, self.rotary_dims, &rope.0, &rope.1)?;
        let k = ops::rope_partial(&k, self.rotary_dims, &rope.0, &rope.1)?;
        let y = ops::attention(&q, &k, &v, mask, 1.0 / (head_dim as f64).sqrt())?;
        block.dense.forward(&y)
    }

    /// Runs the blocks up to the requested hook of the highest requested layer (all of
    /// them, plus the final norm and LM head, when logits are asked for). Refuses
    /// `hook_resid_mid` on a parallel-residual model, which has none.
    pub fn forward(&self, ids: &Tensor, request: &ForwardRequest) -> Result<ForwardOutput> {
        if self.parallel && request.hook == HookPoint::ResidMid {
            return Err(Error::InvalidRequest(format!(
                "hook {} is not defined for gpt_neox with use_parallel_residual = true: \
                 attention and MLP both read the block input (use hook_resid_pre or \
                 hook_resid_post)",
                request.hook
            )));
        }
        let (b, t) = ids.dims2()?;
        let mut cap = Capture::new(request, self.blocks.len());
        let mut x =
            self.embed
                .index_select(&ids.flatten_all()?, 0)?
                .reshape((b, t, self.hidden))?;
        let mask = ops::pass_mask(t, request.tree, &self.device)?;
        let rope = ops::pass_rope(
            (b, t),
            self.rotary_dims,
            self.rope_theta,
            None,
            request.tree,
            &self.device,
        )?;
        let pass = (mask, rope);
        for layer in 0..=cap.last() {
            let cols = request.neurons.filter(|_| layer == cap.last());
            let next = if self.parallel {
                self.parallel_block(layer, &x, &pass, cols, &mut cap)?
            } else {
                self.sequential_block(layer, &x, &pass, cols, &mut cap)?
            };
            match next {
                Some(next) => x = next,
                None => break,
            }
        }
        let logits = if request.logits {
            let x = candle_nn::ops::layer_norm(&x, &self.ln_f.0, &self.ln_f.1, self.eps)?;
            Some(self.lm_head.forward(&x)?)
        } else {
            None
        };
        Ok(ForwardOutput {
            activations: cap.values,
            logits,
        })
    }

    /// Runs the MLP of block `layer` on its input `x`, offering the normalized input, the
    /// neurons and the output to `cap`: the output, or `None` when the pass is done.
    fn mlp(
        &self,
        layer: usize,
        x: &Tensor,
        cols: Option<&Tensor>,
        cap: &mut Capture,
    ) -> Result<Option<Tensor>> {
        let block = &self.blocks[layer];
        if cap.offer(layer, HookPoint::Ln2Normalized, || {
            ln_normalized(x, self.eps)
        })? {
            return Ok(None);
        }
        let m = candle_nn::ops::layer_norm(x, &block.ln_2.0, &block.ln_2.1, self.eps)?;
        let act = self.act.apply(&block.up.forward_columns(&m, cols)?)?;
        if cap.offer(layer, HookPoint::MlpPost, || Ok(act.clone()))? {
            return Ok(None);
        }
        let f = block.down.forward(&act)?;
        if cap.offer(layer, HookPoint::MlpOut, || Ok(f.clone()))? {
            return Ok(None);
        }
        Ok(Some(f))
    }

    /// `x + attn(ln1(x)) + mlp(ln2(x))`, offering the hook values to `cap`; the branch
    /// the requested hook does not need at the last layer is not run. `None` when the
    /// pass is done.
    fn parallel_block(
        &self,
        layer: usize,
        x: &Tensor,
        (mask, rope): &Pass,
        cols: Option<&Tensor>,
        cap: &mut Capture,
    ) -> Result<Option<Tensor>> {
        let block = &self.blocks[layer];
        if cap.offer(layer, HookPoint::ResidPre, || Ok(x.clone()))? {
            return Ok(None);
        }
        let mut attn = None;
        if cap.hook() == HookPoint::AttnOut {
            let a = self.attention(block, x, mask, rope)?;
            if cap.offer(layer, HookPoint::AttnOut, || Ok(a.clone()))? {
                return Ok(None);
            }
            attn = Some(a);
        }
        let Some(f) = self.mlp(layer, x, cols, cap)? else {
            return Ok(None);
        };
        let a = match attn {
            Some(a) => a,
            None => self.attention(block, x, mask, rope)?,
        };
        let x = ((x + a)? + f)?;
        if cap.offer(layer, HookPoint::ResidPost, || Ok(x.clone()))? {
            return Ok(None);
        }
        Ok(Some(x))
    }

    /// `h = x + attn(ln1(x))`, `h + mlp(ln2(h))`, offering the hook values to `cap`.
    /// `None` when the pass is done.
    fn sequential_block(
        &self,
        layer: usize,
        x: &Tensor,
        (mask, rope): &Pass,
        cols: Option<&Tensor>,
        cap: &mut Capture,
    ) -> Result<Option<Tensor>> {
        let block = &self.blocks[layer];
        if cap.offer(layer, HookPoint::ResidPre, || Ok(x.clone()))? {
            return Ok(None);
        }
        let a = self.attention(block, x, mask, rope)?;
        if cap.offer(layer, HookPoint::AttnOut, || Ok(a.clone()))? {
            return Ok(None);
        }
        let x = (x + a)?;
        if cap.offer(layer, HookPoint::ResidMid, || Ok(x.clone()))? {
            return Ok(None);
        }
        let Some(f) = self.mlp(layer, &x, cols, cap)? else {
            return Ok(None);
        };
        let x = (x + f)?;
        if cap.offer(layer, HookPoint::ResidPost, || Ok(x.clone()))? {
            return Ok(None);
        }
        Ok(Some(x))
    }
}

/// What every block of one pass shares: the attention mask and the RoPE tables.
type Pass = (Tensor, (Tensor, Tensor));
