//! The GPT-2 architecture.
//!
//! Pre-norm blocks with learned positions: `h = x + attn(ln_1(x))`,
//! `x' = h + c_proj(gelu_new(c_fc(ln_2(h))))`. The neuron activation is
//! `gelu_new(c_fc(.))` (tanh-approximated GELU, as `activation_function = gelu_new`).

use candle_core::{Device, Tensor};

use super::hf::{HfConfig, Weights};
use super::hook::{ln_normalized, Capture};
use super::linear::Linear;
use super::ops;
use super::{ForwardOutput, ForwardRequest, HookPoint};
use crate::error::Result;

/// The MLP non-linearities GPT-2-style configs name.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Gelu {
    /// `gelu_new`, `gelu_fast`, `gelu_pytorch_tanh`: tanh approximation.
    Tanh,
    /// `gelu`: exact, with erf.
    Erf,
}

impl Gelu {
    pub fn parse(config: &HfConfig, key: &str, default: &str) -> Result<Gelu> {
        match config.opt_str(key).unwrap_or(default) {
            "gelu_new" | "gelu_fast" | "gelu_pytorch_tanh" => Ok(Gelu::Tanh),
            "gelu" => Ok(Gelu::Erf),
            other => Err(config.error(format!(
                "field `{key}`: activation `{other}` is not supported (gelu, gelu_new, gelu_fast, gelu_pytorch_tanh)"
            ))),
        }
    }

    pub fn apply(self, x: &Tensor) -> Result<Tensor> {
        Ok(match self {
            Gelu::Tanh => x.gelu()?,
            Gelu::Erf => x.gelu_erf()?,
        })
    }
}

struct Block {
    ln_1: (Tensor, Tensor),
    c_attn: Linear,
    attn_proj: Linear,
    ln_2: (Tensor, Tensor),
    c_fc: Linear,
    mlp_proj: Linear,
}

/// A GPT-2 network.
pub(crate) struct Gpt2 {
    hidden: usize,
    inner: usize,
    n_heads: usize,
    eps: f32,
    act: Gelu,
    scale_by_layer: bool,
    wte: Tensor,
    wpe: Tensor,
    blocks: Vec<Block>,
    ln_f: (Tensor, Tensor),
    lm_head: Linear,
    device: Device,
}

impl Gpt2 {
    /// Loads from a Hugging Face folder (names with or without the `transformer.` prefix).
    pub fn load(config: &HfConfig, w: &Weights, device: &Device) -> Result<Gpt2> {
        let hidden = config.usize("n_embd")?;
        let n_layers = config.usize("n_layer")?;
        let n_heads = config.usize("n_head")?;
        let inner = config.opt_usize("n_inner")?.unwrap_or(4 * hidden);
        let n_pos = config.usize("n_positions")?;
        let vocab = config.usize("vocab_size")?;
        let prefix = if w.has("transformer.wte.weight") {
            "transformer."
        } else {
            ""
        };
        let p = |s: String| format!("{prefix}{s}");
        let wte = w.get(&p("wte.weight".into()), &[vocab, hidden])?;
        let wpe = w.get(&p("wpe.weight".into()), &[n_pos, hidden])?;
        let mut blocks = Vec::with_capacity(n_layers);
        for i in 0..n_layers {
            blocks.push(Block {
                ln_1: w.layer_norm(&p(format!("h.{i}.ln_1")), hidden)?,
                c_attn: w.conv1d(&p(format!("h.{i}.attn.c_attn")), hidden, 3 * hidden)?,
                attn_proj: w.conv1d(&p(format!("h.{i}.attn.c_proj")), hidden, hidden)?,
                ln_2: w.layer_norm(&p(format!("h.{i}.ln_2")), hidden)?,
                c_fc: w.conv1d(&p(format!("h.{i}.mlp.c_fc")), hidden, inner)?,
                mlp_proj: w.conv1d(&p(format!("h.{i}.mlp.c_proj")), inner, hidden)?,
            });
        }
        let ln_f = w.layer_norm(&p("ln_f".into()), hidden)?;
        let lm_head = if w.has("lm_head.weight") {
            w.linear("lm_head", vocab, hidden, false)?
        } else {
            Linear::tied(&wte)?
        };
        Ok(Gpt2 {
            hidden,
            inner,
            n_heads,
            eps: config.opt_f64("layer_norm_epsilon")?.unwrap_or(1e-5) as f32,
            act: Gelu::parse(config, "activation_function", "gelu_new")?,
            scale_by_layer: config
                .opt_bool("scale_attn_by_inverse_layer_idx")?
                .unwrap_or(false),
            wte,
            wpe,
            blocks,
            ln_f,
            lm_head,
            device: device.clone(),
        })
    }

    /// The token embedding matrix.
    pub fn embedding(&self) -> &Tensor {
        &self.wte
    }

    /// `(layers, neurons, hidden, vocab)`.
    pub fn shape(&self) -> (usize, usize, usize, usize) {
        (
            self.blocks.len(),
            self.inner,
            self.hidden,
            self.wte.dim(0).unwrap_or(0),
        )
    }

    /// Runs the blocks up to the requested hook of the highest requested layer (all of
    /// them, plus the final norm and LM head, when logits are asked for).
    pub fn forward(&self, ids: &Tensor, request: &ForwardRequest) -> Result<ForwardOutput> {
        let (b, t) = ids.dims2()?;
        let mut cap = Capture::new(request, self.blocks.len());
        let longest = request.tree.map_or(t, |l| l.max_position + 1);
        if longest > self.wpe.dim(0)? {
            return Err(crate::Error::InvalidRequest(format!(
                "sequence of {longest} tokens is longer than the model's {} positions",
                self.wpe.dim(0)?
            )));
        }
        let tok = self
            .wte
            .index_select(&ids.flatten_all()?, 0)?
            .reshape((b, t, self.hidden))?;
        let mut x = match request.tree {
            None => tok.broadcast_add(&self.wpe.narrow(0, 0, t)?)?,
            Some(l) => {
                (tok + self
                    .wpe
                    .index_select(&l.positions, 0)?
                    .reshape((b, t, self.hidden))?)?
            }
        };
        let mask = ops::pass_mask(t, request.tree, &self.device)?;
        for layer in 0..=cap.last() {
            let cols = request.neurons.filter(|_| layer == cap.last());
            match self.block(layer, &x, &mask, cols, &mut cap)? {
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

    /// Runs block `layer` on the residual stream `x`, offering its hook values to `cap`
    /// (`cols`: only these neurons). `None` when the pass is done.
    fn block(
        &self,
        layer: usize,
        x: &Tensor,
        mask: &Tensor,
        cols: Option<&Tensor>,
        cap: &mut Capture,
    ) -> Result<Option<Tensor>> {
        let block = &self.blocks[layer];
        if cap.offer(layer, HookPoint::ResidPre, || Ok(x.clone()))? {
            return Ok(None);
        }
        let a = self.attention(layer, x, mask)?;
        if cap.offer(layer, HookPoint::AttnOut, || Ok(a.clone()))? {
            return Ok(None);
        }
        let x = (x + a)?;
        if cap.offer(layer, HookPoint::ResidMid, || Ok(x.clone()))?
            || cap.offer(layer, HookPoint::Ln2Normalized, || {
                ln_normalized(&x, self.eps)
            })?
        {
            return Ok(None);
        }
        let m = candle_nn::ops::layer_norm(&x, &block.ln_2.0, &block.ln_2.1, self.eps)?;
        let act = self.act.apply(&block.c_fc.forward_columns(&m, cols)?)?;
        if cap.offer(layer, HookPoint::MlpPost, || Ok(act.clone()))? {
            return Ok(None);
        }
        let f = block.mlp_proj.forward(&act)?;
        cap.block_end(layer, x, f)
    }

    /// Block `layer`'s attention output (after `c_proj` and its bias).
    fn attention(&self, layer: usize, x: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let block = &self.blocks[layer];
        let h = candle_nn::ops::layer_norm(x, &block.ln_1.0, &block.ln_1.1, self.eps)?;
        let qkv = block.c_attn.forward(&h)?;
        let part = |i: usize| {
            ops::split_heads(&qkv.narrow(2, i * self.hidden, self.hidden)?, self.n_heads)
        };
        let (q, k, v) = (part(0)?, part(1)?, part(2)?);
        let mut scale = 1.0 / ((self.hidden / self.n_heads) as f64).sqrt();
        if self.scale_by_layer {
            scale /= (layer + 1) as f64;
        }
        let y = ops::attention(&q, &k, &v, mask, scale)?;
        block.attn_proj.forward(&y)
    }
}
