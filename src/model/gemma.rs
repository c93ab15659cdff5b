//! The Gemma family (Hugging Face `model_type = "gemma"`), and the network Gemma 2
//! shares (see `gemma2.rs` for what it adds).
//!
//! Pre-norm blocks as Llama's, with Gemma's particulars: the embeddings multiplied by
//! `sqrt(hidden_size)` rounded to the embedding's dtype (the product too, as Hugging
//! Face computes it in that dtype), RMSNorms that scale by `1 + w`, a GELU-tanh gated
//! MLP, `head_dim` from the config, and the LM head tied to the embeddings. The neuron
//! activation is `gelu_tanh(gate(.)) * up(.)`, the input of `down`. GGUF files
//! (`general.architecture = gemma`) load too.

use candle_core::{DType, Device, Tensor};

use super::gguf::{GgufShape, Loader};
use super::gpt2::Gelu;
use super::hf::{HfConfig, Weights};
use super::hook::{rms_normalized, Capture};
use super::linear::Linear;
use super::ops;
use super::{ForwardOutput, ForwardRequest, HookPoint};
use crate::error::Result;

/// Shape and constants of a Gemma or Gemma 2 model.
#[derive(Clone, Debug)]
pub(crate) struct GemmaConfig {
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub n_layers: usize,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub head_dim: usize,
    pub rms_eps: f64,
    pub rope_theta: f64,
    pub vocab_size: usize,
    /// The MLP non-linearity (`hidden_activation`, GELU-tanh by default).
    pub act: Gelu,
    /// The attention-score scale (`head_dim^-0.5`; Gemma 2: `query_pre_attn_scalar^-0.5`).
    pub scale: f64,
    /// Gemma 2's attention-logit soft-capping.
    pub attn_softcap: Option<f64>,
    /// Gemma 2's final-logit soft-capping.
    pub final_softcap: Option<f64>,
    /// The sliding window of each layer (`None`: full causal attention).
    pub windows: Vec<Option<usize>>,
}

/// One block's weights. Norm weights are the multipliers the norms apply, i.e. `1 + w`
/// of a Hugging Face checkpoint, f32.
#[derive(Debug)]
pub(crate) struct GemmaBlock {
    pub attn_norm: Tensor,
    pub q: Linear,
    pub k: Linear,
    pub v: Linear,
    pub o: Linear,
    /// Gemma 2's norm of the attention output.
    pub post_attn_norm: Option<Tensor>,
    /// The norm before the MLP (Gemma: `post_attention_layernorm`; Gemma 2:
    /// `pre_feedforward_layernorm`).
    pub ffn_norm: Tensor,
    /// Gemma 2's norm of the MLP output.
    pub post_ffn_norm: Option<Tensor>,
    pub gate: Linear,
    pub up: Linear,
    pub down: Linear,
}

/// A Gemma or Gemma 2 network.
#[derive(Debug)]
pub(crate) struct Gemma {
    pub config: GemmaConfig,
    /// `[vocab, hidden]`, f32 or the 16-bit file dtype.
    pub embed: Tensor,
    pub blocks: Vec<GemmaBlock>,
    /// The final norm's multiplier (`1 + w`).
    pub norm: Tensor,
    pub lm_head: Linear,
    pub device: Device,
}

/// Gemma's RMSNorm multiplier from a checkpoint weight: `1 + w`, in f32.
pub(crate) fn one_plus(w: &Weights, name: &str, size: usize) -> Result<Tensor> {
    Ok((w.get(name, &[size])? + 1.0)?)
}

/// The token embedding, kept in its dtype when 16-bit.
pub(crate) fn embedding(w: &Weights, vocab: usize, hidden: usize) -> Result<Tensor> {
    let embed = w.stored("model.embed_tokens.weight", &[vocab, hidden])?;
    Ok(match embed.dtype() {
        DType::BF16 | DType::F16 => embed,
        _ => embed.to_dtype(DType::F32)?,
    })
}

/// The config fields Gemma and Gemma 2 share (Hugging Face's defaults where absent).
pub(crate) fn base_config(config: &HfConfig) -> Result<GemmaConfig> {
    let hidden = config.usize("hidden_size")?;
    let n_heads = config.usize("num_attention_heads")?;
    let head_dim = config.opt_usize("head_dim")?.unwrap_or(256);
    let n_layers = config.usize("num_hidden_layers")?;
    if config.opt_bool("attention_bias")?.unwrap_or(false) {
        return Err(config.error("attention_bias = true is not supported for Gemma"));
    }
    if config.has("rope_scaling") {
        return Err(config.error("rope_scaling is not supported for Gemma"));
    }
    Ok(GemmaConfig {
        hidden_size: hidden,
        intermediate_size: config.usize("intermediate_size")?,
        n_layers,
        n_heads,
        n_kv_heads: config.opt_usize("num_key_value_heads")?.unwrap_or(n_heads),
        head_dim,
        rms_eps: config.opt_f64("rms_norm_eps")?.unwrap_or(1e-6),
        rope_theta: config.opt_f64("rope_theta")?.unwrap_or(10_000.0),
        vocab_size: config.usize("vocab_size")?,
        act: Gelu::parse(config, "hidden_activation", "gelu_pytorch_tanh")?,
        scale: 1.0 / (head_dim as f64).sqrt(),
        attn_softcap: None,
        final_softcap: None,
        windows: vec![None; n_layers],
    })
}

/// Reads the blocks, final norm and tied LM head of a Gemma-kind checkpoint; `sandwich`
/// for Gemma 2's extra norms around attention and MLP.
pub(crate) fn load_weights(
    config: GemmaConfig,
    w: &Weights,
    device: &Device,
    sandwich: bool,
) -> Result<Gemma> {
    let c = &config;
    let (hidden, ff) = (c.hidden_size, c.intermediate_size);
    let q_dim = c.n_heads * c.head_dim;
    let kv_dim = c.n_kv_heads * c.head_dim;
    let embed = embedding(w, c.vocab_size, hidden)?;
    let mut blocks = Vec::with_capacity(c.n_layers);
    for i in 0..c.n_layers {
        let p = |s: &str| format!("model.layers.{i}.{s}");
        let norm = |s: &str| one_plus(w, &p(s), hidden);
        let (post_attn_norm, ffn_norm, post_ffn_norm) = if sandwich {
            (
                Some(norm("post_attention_layernorm.weight")?),
                norm("pre_feedforward_layernorm.weight")?,
                Some(norm("post_feedforward_layernorm.weight")?),
            )
        } else {
            (None, norm("post_attention_layernorm.weight")?, None)
        };
        blocks.push(GemmaBlock {
            attn_norm: norm("input_layernorm.weight")?,
            q: w.linear(&p("self_attn.q_proj"), q_dim, hidden, false)?,
            k: w.linear(&p("self_attn.k_proj"), kv_dim, hidden, false)?,
            v: w.linear(&p("self_attn.v_proj"), kv_dim, hidden, false)?,
            o: w.linear(&p("self_attn.o_proj"), hidden, q_dim, false)?,
            post_attn_norm,
            ffn_norm,
            post_ffn_norm,
            gate: w.linear(&p("mlp.gate_proj"), ff, hidden, false)?,
            up: w.linear(&p("mlp.up_proj"), ff, hidden, false)?,
            down: w.linear(&p("mlp.down_proj"), hidden, ff, false)?,
        });
    }
    let norm = one_plus(w, "model.norm.weight", hidden)?;
    let lm_head = Linear::tied(&embed)?;
    Ok(Gemma {
        config,
        embed,
        blocks,
        norm,
        lm_head,
        device: device.clone(),
    })
}

/// What Gemma 2 adds to a Gemma config.
pub(crate) struct Gemma2Extras {
    pub scale: f64,
    pub attn_softcap: Option<f64>,
    pub final_softcap: Option<f64>,
    pub windows: Vec<Option<usize>>,
}

/// A Gemma (`extras` `None`) or Gemma 2 network from GGUF tensors. llama.cpp's converter
/// writes every norm weight with Gemma's `+ 1` folded in, so they are used as they are;
/// q/k keep Hugging Face's layout (half-rotation RoPE); the embedding is scaled in f32,
/// as llama.cpp does; the LM head is the embedding.
pub(crate) fn from_gguf(
    loader: &mut Loader,
    shape: &GgufShape,
    embed: Tensor,
    extras: Option<Gemma2Extras>,
) -> Result<Gemma> {
    let s = shape;
    let mut config = GemmaConfig {
        hidden_size: s.hidden,
        intermediate_size: s.ff,
        n_layers: s.n_layers,
        n_heads: s.n_heads,
        n_kv_heads: s.n_kv_heads,
        head_dim: s.head_dim,
        rms_eps: s.rms_eps,
        rope_theta: s.rope_theta,
        vocab_size: s.vocab,
        act: Gelu::Tanh,
        scale: 1.0 / (s.head_dim as f64).sqrt(),
        attn_softcap: None,
        final_softcap: None,
        windows: vec![None; s.n_layers],
    };
    let sandwich = extras.is_some();
    if let Some(e) = extras {
        config.scale = e.scale;
        config.attn_softcap = e.attn_softcap;
        config.final_softcap = e.final_softcap;
        config.windows = e.windows;
    }
    let (hidden, ff) = (s.hidden, s.ff);
    let (q_dim, kv) = (s.n_heads * s.head_dim, s.n_kv_heads * s.head_dim);
    let mut blocks = Vec::with_capacity(s.n_layers);
    for i in 0..s.n_layers {
        let p = |t: &str| format!("blk.{i}.{t}.weight");
        let mut norm = |t: &str| loader.vector(&p(t), hidden);
        let attn_norm = norm("attn_norm")?;
        let ffn_norm = norm("ffn_norm")?;
        let (post_attn_norm, post_ffn_norm) = if sandwich {
            (
                Some(norm("post_attention_norm")?),
                Some(norm("post_ffw_norm")?),
            )
        } else {
            (None, None)
        };
        blocks.push(GemmaBlock {
            attn_norm,
            q: loader.linear(&p("attn_q"), q_dim, hidden)?,
            k: loader.linear(&p("attn_k"), kv, hidden)?,
            v: loader.linear(&p("attn_v"), kv, hidden)?,
            o: loader.linear(&p("attn_output"), hidden, q_dim)?,
            post_attn_norm,
            ffn_norm,
            post_ffn_norm,
            gate: loader.linear(&p("ffn_gate"), ff, hidden)?,
            up: loader.linear(&p("ffn_up"), ff, hidden)?,
            down: loader.linear(&p("ffn_down"), hidden, ff)?,
        });
    }
    let norm = loader.vector("output_norm.weight", hidden)?;
    let lm_head = loader.lm_head(&embed, s.vocab, hidden)?;
    Ok(Gemma {
        config,
        embed,
        blocks,
        norm,
        lm_head,
        device: loader.device.clone(),
    })
}

/// Loads a Gemma model from a Hugging Face folder.
pub(crate) fn load(config: &HfConfig, w: &Weights, device: &Device) -> Result<Gemma> {
    load_weights(base_config(config)?, w, device, false)
}

impl Gemma {
    /// `(layers, neurons per layer, hidden size, vocabulary)`.
    pub fn shape(&self) -> (usize, usize, usize, usize) {
        let c = &self.config;
        (c.n_layers, c.intermediate_size, c.hidden_size, c.vocab_size)
    }

    /// The embeddings of `ids` times `sqrt(hidden)`, both rounded to the embedding's
    /// dtype, as f32 `[b, t, hidden]`.
    fn embed(&self, ids: &Tensor) -> Result<Tensor> {
        let (b, t) = ids.dims2()?;
        let e = self.embed.index_select(&ids.flatten_all()?, 0)?;
        let normalizer = (self.config.hidden_size as f64).sqrt() as f32;
        let normalizer = Tensor::new(&[normalizer], &self.device)?.to_dtype(e.dtype())?;
        Ok(e.broadcast_mul(&normalizer)?
            .to_dtype(DType::F32)?
            .reshape((b, t, self.config.hidden_size))?)
    }

    /// Runs the blocks up to the requested hook of the highest requested layer (all of
    /// them, plus the final norm, the LM head and Gemma 2's logit soft-capping, when
    /// logits are asked for).
    pub fn forward(&self, ids: &Tensor, request: &ForwardRequest) -> Result<ForwardOutput> {
        let cfg = &self.config;
        let (b, t) = ids.dims2()?;
        let mut cap = Capture::new(request, cfg.n_layers);
        let mut x = self.embed(ids)?;
        let (cos, sin) = ops::pass_rope(
            (b, t),
            cfg.head_dim,
            cfg.rope_theta,
            None,
            request.tree,
            &self.device,
        )?;
        let pass = Pass {
            masks: ops::PassMasks::new((b, t), request.tree, &cfg.windows, &self.device)?,
            cos,
            sin,
        };
        for layer in 0..=cap.last() {
            let cols = request.neurons.filter(|_| layer == cap.last());
            match self.block(layer, &x, &pass, cols, &mut cap)? {
                Some(next) => x = next,
                None => break,
            }
        }
        let logits = if request.logits {
            let x = candle_nn::ops::rms_norm(&x, &self.norm, cfg.rms_eps as f32)?;
            let logits = self.lm_head.forward(&x)?;
            Some(match cfg.final_softcap {
                Some(cap) => ops::soft_cap(&logits, cap)?,
                None => logits,
            })
        } else {
            None
        };
        Ok(ForwardOutput {
            activations: cap.values,
            logits,
        })
    }

    /// Runs block `layer` on the residual stream `x`, offering its hook values to `cap`
    /// (`cols`: only these neurons). `None` when the pass is done. Gemma 2's attention
    /// and MLP outputs are taken after their post-norms, as TransformerLens does.
    fn block(
        &self,
        layer: usize,
        x: &Tensor,
        pass: &Pass,
        cols: Option<&Tensor>,
        cap: &mut Capture,
    ) -> Result<Option<Tensor>> {
        let (cfg, block) = (&self.config, &self.blocks[layer]);
        let eps = cfg.rms_eps as f32;
        let norm = |x: &Tensor, w: &Tensor| candle_nn::ops::rms_norm(x, w, eps);
        if cap.offer(layer, HookPoint::ResidPre, || Ok(x.clone()))? {
            return Ok(None);
        }
        let mut a = self.attention(layer, x, pass)?;
        if let Some(n) = &block.post_attn_norm {
            a = norm(&a, n)?;
        }
        if cap.offer(layer, HookPoint::AttnOut, || Ok(a.clone()))? {
            return Ok(None);
        }
        let x = (x + a)?;
        if cap.offer(layer, HookPoint::ResidMid, || Ok(x.clone()))?
            || cap.offer(layer, HookPoint::Ln2Normalized, || rms_normalized(&x, eps))?
        {
            return Ok(None);
        }
        let m = norm(&x, &block.ffn_norm)?;
        let act = (cfg.act.apply(&block.gate.forward_columns(&m, cols)?)?
            * block.up.forward_columns(&m, cols)?)?;
        if cap.offer(layer, HookPoint::MlpPost, || Ok(act.clone()))? {
            return Ok(None);
        }
        let mut f = block.down.forward(&act)?;
        if let Some(n) = &block.post_ffn_norm {
            f = norm(&f, n)?;
        }
        cap.block_end(layer, x, f)
    }

    /// Block `layer`'s attention output (after `o`, before Gemma 2's post-norm).
    fn attention(&self, layer: usize, x: &Tensor, pass: &Pass) -> Result<Tensor> {
        let (cfg, block) = (&self.config, &self.blocks[layer]);
        let h = candle_nn::ops::rms_norm(x, &block.attn_norm, cfg.rms_eps as f32)?;
        let q = ops::split_heads(&block.q.forward(&h)?, cfg.n_heads)?;
        let k = ops::split_heads(&block.k.forward(&h)?, cfg.n_kv_heads)?;
        let v = ops::split_heads(&block.v.forward(&h)?, cfg.n_kv_heads)?;
        let q = candle_nn::rotary_emb::rope(&q, &pass.cos, &pass.sin)?;
        let k = candle_nn::rotary_emb::rope(&k, &pass.cos, &pass.sin)?;
        let mask = pass.masks.get(cfg.windows[layer]);
        let y = ops::capped_attention(&q, &k, &v, mask, cfg.scale, cfg.attn_softcap)?;
        block.o.forward(&y)
    }
}

/// What every block of one pass shares: attention masks and RoPE tables.
struct Pass {
    masks: ops::PassMasks,
    cos: Tensor,
    sin: Tensor,
}
