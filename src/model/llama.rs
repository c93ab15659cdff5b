//! The Llama architecture (SmolLM2, Llama 2/3/3.1, ...), which Mistral, Qwen 2 and
//! Qwen 3 share with small variations (a sliding window, q/k/v biases, q/k norms).
//!
//! Pre-norm blocks: `h = x + attn(rms(x))`, `x' = h + down(silu(gate(rms(h))) * up(rms(h)))`.
//! The neuron activation is `silu(gate(.)) * up(.)`, the input of `down`.

use candle_core::{DType, Device, Tensor};
use serde_json::Value;

use super::hf::{HfConfig, Weights};
use super::hook::{rms_normalized, Capture};
use super::linear::Linear;
use super::ops;
use super::{ForwardOutput, ForwardRequest, HookPoint};
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
    /// The sliding window of each layer (`None`: full causal attention).
    pub windows: Vec<Option<usize>>,
}

/// One transformer block's weights.
#[derive(Debug)]
pub(crate) struct LlamaBlock {
    pub attn_norm: Tensor,
    pub q: Linear,
    pub k: Linear,
    pub v: Linear,
    pub o: Linear,
    /// Qwen 3's RMSNorm over each head of q and k (before RoPE), `[head_dim]`.
    pub q_norm: Option<Tensor>,
    pub k_norm: Option<Tensor>,
    pub ffn_norm: Tensor,
    pub gate: Linear,
    pub up: Linear,
    pub down: Linear,
}

/// A Llama network.
#[derive(Debug)]
pub(crate) struct Llama {
    pub config: LlamaConfig,
    /// `[vocab, hidden]`, f32 or the 16-bit file dtype.
    pub embed: Tensor,
    pub blocks: Vec<LlamaBlock>,
    pub norm: Tensor,
    pub lm_head: Linear,
    pub device: Device,
}

impl Llama {
    /// `(layers, neurons per layer, hidden size, vocabulary)`.
    pub fn shape(&self) -> (usize, usize, usize, usize) {
        let c = &self.config;
        (c.n_layers, c.intermediate_size, c.hidden_size, c.vocab_size)
    }

    /// Runs the blocks up to the requested hook of the highest requested layer (all of
    /// them, plus the final norm and LM head, when logits are asked for).
    pub fn forward(&self, ids: &Tensor, request: &ForwardRequest) -> Result<ForwardOutput> {
        let cfg = &self.config;
        let (b, t) = ids.dims2()?;
        let mut cap = Capture::new(request, cfg.n_layers);
        let mut x = self
            .embed
            .index_select(&ids.flatten_all()?, 0)?
            .to_dtype(DType::F32)?
            .reshape((b, t, cfg.hidden_size))?;
        let (cos, sin) = ops::pass_rope(
            (b, t),
            cfg.head_dim,
            cfg.rope_theta,
            cfg.rope_divisors.as_deref(),
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
            Some(self.lm_head.forward(&x)?)
        } else {
            None
        };
        Ok(ForwardOutput {
            activations: cap.values,
            logits,
        })
    }

    /// Runs block `layer` on the residual stream `x`, offering its hook values to `cap`
    /// (`cols`: only these neurons). `None` when the pass is done.
    fn block(
        &self,
        layer: usize,
        x: &Tensor,
        pass: &Pass,
        cols: Option<&Tensor>,
        cap: &mut Capture,
    ) -> Result<Option<Tensor>> {
        let block = &self.blocks[layer];
        let eps = self.config.rms_eps as f32;
        if cap.offer(layer, HookPoint::ResidPre, || Ok(x.clone()))? {
            return Ok(None);
        }
        let a = self.attention(layer, x, pass)?;
        if cap.offer(layer, HookPoint::AttnOut, || Ok(a.clone()))? {
            return Ok(None);
        }
        let x = (x + a)?;
        if cap.offer(layer, HookPoint::ResidMid, || Ok(x.clone()))?
            || cap.offer(layer, HookPoint::Ln2Normalized, || rms_normalized(&x, eps))?
        {
            return Ok(None);
        }
        let m = candle_nn::ops::rms_norm(&x, &block.ffn_norm, eps)?;
        let act = (block.gate.forward_columns(&m, cols)?.silu()?
            * block.up.forward_columns(&m, cols)?)?;
        if cap.offer(layer, HookPoint::MlpPost, || Ok(act.clone()))? {
            return Ok(None);
        }
        let f = block.down.forward(&act)?;
        cap.block_end(layer, x, f)
    }

    /// Block `layer`'s attention output (after `o`, before the residual add).
    fn attention(&self, layer: usize, x: &Tensor, pass: &Pass) -> Result<Tensor> {
        let cfg = &self.config;
        let block = &self.blocks[layer];
        let eps = cfg.rms_eps as f32;
        let h = candle_nn::ops::rms_norm(x, &block.attn_norm, eps)?;
        let mut q = ops::split_heads(&block.q.forward(&h)?, cfg.n_heads)?;
        let mut k = ops::split_heads(&block.k.forward(&h)?, cfg.n_kv_heads)?;
        if let (Some(qn), Some(kn)) = (&block.q_norm, &block.k_norm) {
            q = candle_nn::ops::rms_norm(&q, qn, eps)?;
            k = candle_nn::ops::rms_norm(&k, kn, eps)?;
        }
        let v = ops::split_heads(&block.v.forward(&h)?, cfg.n_kv_heads)?;
        let rope = if cfg.interleaved_rope {
            candle_nn::rotary_emb::rope_i
        } else {
            candle_nn::rotary_emb::rope
        };
        let q = rope(&q, &pass.cos, &pass.sin)?;
        let k = rope(&k, &pass.cos, &pass.sin)?;
        let scale = 1.0 / (cfg.head_dim as f64).sqrt();
        let y = ops::attention(&q, &k, &v, pass.masks.get(cfg.windows[layer]), scale)?;
        block.o.forward(&y)
    }
}

/// What every block of one pass shares: attention masks and RoPE tables.
struct Pass {
    masks: ops::PassMasks,
    cos: Tensor,
    sin: Tensor,
}

/// The RoPE divisors of a Llama config's `rope_scaling`: none for plain RoPE, Llama 3.1
/// scaling (`rope_type = "llama3"`) supported, any other kind refused (it would give
/// other activations than the model's).
fn llama_rope_divisors(config: &HfConfig, head_dim: usize, theta: f64) -> Result<Option<Vec<f64>>> {
    let Some(scaling) = config.raw("rope_scaling").filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let kind = scaling
        .get("rope_type")
        .or_else(|| scaling.get("type"))
        .and_then(Value::as_str)
        .unwrap_or("");
    match kind {
        "default" => Ok(None),
        "llama3" => {
            let field = |key: &str| {
                scaling.get(key).and_then(Value::as_f64).ok_or_else(|| {
                    config.error(format!(
                        "rope_scaling: missing or non-numeric field `{key}`"
                    ))
                })
            };
            Ok(Some(ops::llama3_rope_divisors(
                head_dim,
                theta,
                field("factor")?,
                field("low_freq_factor")?,
                field("high_freq_factor")?,
                field("original_max_position_embeddings")?,
            )))
        }
        other => Err(config.error(format!(
            "rope_scaling type `{other}` is not supported (supported: llama3)"
        ))),
    }
}

/// How a family's Hugging Face checkpoint departs from Llama's.
pub(crate) struct HfVariant {
    /// Biases on q, k and v.
    pub qkv_bias: bool,
    /// A bias on o.
    pub o_bias: bool,
    /// Per-head `self_attn.q_norm` / `k_norm` RMSNorms (Qwen 3).
    pub qk_norm: bool,
    /// The sliding window of each layer.
    pub windows: Vec<Option<usize>>,
}

impl Llama {
    /// A Llama model from a Hugging Face folder (`attention_bias` for q/k/v/o biases).
    pub fn from_hf(config: &HfConfig, w: &Weights, device: &Device) -> Result<Llama> {
        let bias = config.opt_bool("attention_bias")?.unwrap_or(false);
        let n_layers = config.usize("num_hidden_layers")?;
        let variant = HfVariant {
            qkv_bias: bias,
            o_bias: bias,
            qk_norm: false,
            windows: vec![None; n_layers],
        };
        load_hf(config, w, device, variant)
    }
}

/// A model of the Llama kind from Hugging Face weights (q/k not permuted:
/// half-rotation RoPE), with a family's variations.
pub(crate) fn load_hf(
    config: &HfConfig,
    w: &Weights,
    device: &Device,
    variant: HfVariant,
) -> Result<Llama> {
    if let Some(act) = config.opt_str("hidden_act") {
        if act != "silu" {
            return Err(config.error(format!(
                "hidden_act `{act}`: only silu is supported for {}",
                config.opt_str("model_type").unwrap_or("llama")
            )));
        }
    }
    let hidden = config.usize("hidden_size")?;
    let n_heads = config.usize("num_attention_heads")?;
    let n_kv_heads = config.opt_usize("num_key_value_heads")?.unwrap_or(n_heads);
    let head_dim = config.opt_usize("head_dim")?.unwrap_or(hidden / n_heads);
    let rope_theta = config.opt_f64("rope_theta")?.unwrap_or(10_000.0);
    let ff = config.usize("intermediate_size")?;
    let n_layers = config.usize("num_hidden_layers")?;
    let vocab = config.usize("vocab_size")?;
    let mlp_bias = config.opt_bool("mlp_bias")?.unwrap_or(false);
    let cfg = LlamaConfig {
        hidden_size: hidden,
        intermediate_size: ff,
        n_layers,
        n_heads,
        n_kv_heads,
        head_dim,
        rms_eps: config.opt_f64("rms_norm_eps")?.unwrap_or(1e-6),
        rope_theta,
        rope_divisors: llama_rope_divisors(config, head_dim, rope_theta)?,
        vocab_size: vocab,
        interleaved_rope: false,
        windows: variant.windows,
    };
    let embed = w.stored("model.embed_tokens.weight", &[vocab, hidden])?;
    let embed = match embed.dtype() {
        DType::BF16 | DType::F16 => embed,
        _ => embed.to_dtype(DType::F32)?,
    };
    let (qkv_bias, o_bias) = (variant.qkv_bias, variant.o_bias);
    let mut blocks = Vec::with_capacity(n_layers);
    for i in 0..n_layers {
        let p = |s: &str| format!("model.layers.{i}.{s}");
        let norm = |name: &str| -> Result<Option<Tensor>> {
            variant
                .qk_norm
                .then(|| w.get(name, &[head_dim]))
                .transpose()
        };
        blocks.push(LlamaBlock {
            attn_norm: w.get(&p("input_layernorm.weight"), &[hidden])?,
            q: w.linear(&p("self_attn.q_proj"), n_heads * head_dim, hidden, qkv_bias)?,
            k: w.linear(
                &p("self_attn.k_proj"),
                n_kv_heads * head_dim,
                hidden,
                qkv_bias,
            )?,
            v: w.linear(
                &p("self_attn.v_proj"),
                n_kv_heads * head_dim,
                hidden,
                qkv_bias,
            )?,
            o: w.linear(&p("self_attn.o_proj"), hidden, n_heads * head_dim, o_bias)?,
            q_norm: norm(&p("self_attn.q_norm.weight"))?,
            k_norm: norm(&p("self_attn.k_norm.weight"))?,
            ffn_norm: w.get(&p("post_attention_layernorm.weight"), &[hidden])?,
            gate: w.linear(&p("mlp.gate_proj"), ff, hidden, mlp_bias)?,
            up: w.linear(&p("mlp.up_proj"), ff, hidden, mlp_bias)?,
            down: w.linear(&p("mlp.down_proj"), hidden, ff, mlp_bias)?,
        });
    }
    let norm = w.get("model.norm.weight", &[hidden])?;
    let tied = config.opt_bool("tie_word_embeddings")?.unwrap_or(false) || !w.has("lm_head.weight");
    let lm_head = if tied {
        Linear::tied(&embed)?
    } else {
        w.linear("lm_head", vocab, hidden, false)?
    };
    Ok(Llama {
        config: cfg,
        embed,
        blocks,
        norm,
        lm_head,
        device: device.clone(),
    })
}
