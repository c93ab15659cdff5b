//! Hook points: where in a block a unit's input is read, named as TransformerLens names
//! them (`blocks.L.hook_resid_pre`, `blocks.L.mlp.hook_post`, ...).

use std::fmt;
use std::str::FromStr;

use candle_core::{Tensor, D};

use super::{ForwardRequest, LayerActivations, Model};
use crate::error::{Error, Result};

/// A place inside a transformer block whose value a forward pass can return.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum HookPoint {
    /// `hook_resid_pre`: the residual stream entering the block, `[hidden]`.
    ResidPre,
    /// `hook_resid_mid`: the residual stream after the attention add, `[hidden]`
    /// (undefined for parallel-residual blocks such as GPT-NeoX).
    ResidMid,
    /// `hook_resid_post`: the residual stream leaving the block, `[hidden]`.
    ResidPost,
    /// `hook_attn_out`: the attention block's output before the residual add (after
    /// Gemma 2's post-attention norm), `[hidden]`.
    AttnOut,
    /// `hook_mlp_out`: the MLP block's output before the residual add (after Gemma 2's
    /// post-feed-forward norm), `[hidden]`.
    MlpOut,
    /// `mlp.hook_post`: the MLP hidden value after the non-linearity: the MLP neurons,
    /// `[intermediate]`.
    MlpPost,
    /// `ln2.hook_normalized`: the MLP's normalized input before the norm's learned
    /// scale (and bias), as TransformerLens gives it with its default weight folding:
    /// a transcoder's input, `[hidden]`.
    Ln2Normalized,
}

impl HookPoint {
    /// Every hook point, in block order.
    pub const ALL: [HookPoint; 7] = [
        HookPoint::ResidPre,
        HookPoint::Ln2Normalized,
        HookPoint::AttnOut,
        HookPoint::ResidMid,
        HookPoint::MlpPost,
        HookPoint::MlpOut,
        HookPoint::ResidPost,
    ];

    /// The name after `blocks.L.`, as TransformerLens writes it.
    pub fn name(self) -> &'static str {
        match self {
            HookPoint::ResidPre => "hook_resid_pre",
            HookPoint::ResidMid => "hook_resid_mid",
            HookPoint::ResidPost => "hook_resid_post",
            HookPoint::AttnOut => "hook_attn_out",
            HookPoint::MlpOut => "hook_mlp_out",
            HookPoint::MlpPost => "mlp.hook_post",
            HookPoint::Ln2Normalized => "ln2.hook_normalized",
        }
    }

    /// Whether the value is the MLP's hidden width (else the residual width).
    pub fn is_mlp_hidden(self) -> bool {
        self == HookPoint::MlpPost
    }
}

impl fmt::Display for HookPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A hook point of one block: `blocks.{layer}.{point}` (serialised as that string).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct Hook {
    /// The block.
    pub layer: usize,
    /// Where in the block.
    pub point: HookPoint,
}

impl Hook {
    /// The MLP neurons of `layer` (`blocks.{layer}.mlp.hook_post`).
    pub fn mlp_neurons(layer: usize) -> Hook {
        Hook {
            layer,
            point: HookPoint::MlpPost,
        }
    }
}

impl fmt::Display for Hook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "blocks.{}.{}", self.layer, self.point.name())
    }
}

impl From<Hook> for String {
    fn from(hook: Hook) -> String {
        hook.to_string()
    }
}

impl TryFrom<String> for Hook {
    type Error = Error;

    fn try_from(s: String) -> Result<Hook> {
        s.parse()
    }
}

impl FromStr for Hook {
    type Err = Error;

    /// Parses `blocks.L.NAME` (NAME one of [`HookPoint::name`]).
    fn from_str(s: &str) -> Result<Hook> {
        let bad = |why: &str| Error::InvalidOption {
            field: "hook",
            message: format!(
                "`{s}`: {why}; expected blocks.L.NAME with NAME one of {}",
                HookPoint::ALL.map(HookPoint::name).join(", ")
            ),
        };
        let rest = s
            .trim()
            .strip_prefix("blocks.")
            .ok_or_else(|| bad("does not start with `blocks.`"))?;
        let (layer, name) = rest
            .split_once('.')
            .ok_or_else(|| bad("no hook name after the layer"))?;
        let layer = layer
            .parse::<usize>()
            .map_err(|_| bad(&format!("`{layer}` is not a layer number")))?;
        let point = HookPoint::ALL
            .into_iter()
            .find(|p| p.name() == name)
            .ok_or_else(|| bad(&format!("unknown hook name `{name}`")))?;
        Ok(Hook { layer, point })
    }
}

impl Model {
    /// The width of a hook point's value: the MLP's hidden size for
    /// [`HookPoint::MlpPost`], else the residual width.
    pub fn hook_width(&self, point: HookPoint) -> usize {
        if point.is_mlp_hidden() {
            self.info.n_neurons
        } else {
            self.info.hidden_size
        }
    }

    /// The values at `hook` for a batch of token-id sequences, `[batch, seq_len,
    /// hook_width]` (`n_neurons` is the hook's width).
    ///
    /// Sequences are right-padded as in [`Model::activations`]; the pass stops as soon
    /// as the hook is computed. Refuses a layer the model lacks and a hook point the
    /// architecture does not define (GPT-NeoX's parallel residual has no
    /// `hook_resid_mid`).
    pub fn hook_activations<S: AsRef<[u32]>>(
        &self,
        batch: &[S],
        hook: Hook,
    ) -> Result<LayerActivations> {
        self.check_layer(hook.layer)?;
        let (ids, lengths) = self.pad_batch(batch)?;
        let out = self.forward(
            &ids,
            &ForwardRequest {
                layers: &[hook.layer],
                logits: false,
                hook: hook.point,
                tree: None,
                neurons: None,
            },
        )?;
        self.host_activations(&out.activations[0], hook.layer, lengths)
    }
}

/// Collects the hook values of one forward pass, block by block, and says when the pass
/// may stop.
pub(crate) struct Capture<'a> {
    layers: &'a [usize],
    hook: HookPoint,
    last: usize,
    logits: bool,
    /// The kept values, one per requested layer, in layer order.
    pub values: Vec<Tensor>,
}

impl<'a> Capture<'a> {
    /// For `request` on a network of `n_layers` blocks.
    pub fn new(request: &'a ForwardRequest, n_layers: usize) -> Capture<'a> {
        let last = if request.logits {
            n_layers - 1
        } else {
            *request.layers.last().expect("at least one layer")
        };
        Capture {
            layers: request.layers,
            hook: request.hook,
            last,
            logits: request.logits,
            values: Vec::with_capacity(request.layers.len()),
        }
    }

    /// The last block the pass runs.
    pub fn last(&self) -> usize {
        self.last
    }

    /// The hook point whose values are kept.
    pub fn hook(&self) -> HookPoint {
        self.hook
    }

    /// Offers the value at `point` of block `layer`, computed by `value` only when it is
    /// kept. True when the pass is done (the last requested hook is computed and no
    /// logits are asked for).
    pub fn offer(
        &mut self,
        layer: usize,
        point: HookPoint,
        value: impl FnOnce() -> Result<Tensor>,
    ) -> Result<bool> {
        if point != self.hook {
            return Ok(false);
        }
        if self.layers.binary_search(&layer).is_ok() {
            self.values.push(value()?);
        }
        Ok(layer == self.last && !self.logits)
    }

    /// The end of a pre-norm block: offers the MLP output `mlp_out`, adds it to the
    /// residual `x` and offers the block's output. `None` when the pass is done, else
    /// the residual stream leaving block `layer`.
    pub fn block_end(
        &mut self,
        layer: usize,
        x: Tensor,
        mlp_out: Tensor,
    ) -> Result<Option<Tensor>> {
        if self.offer(layer, HookPoint::MlpOut, || Ok(mlp_out.clone()))? {
            return Ok(None);
        }
        let x = (x + mlp_out)?;
        if self.offer(layer, HookPoint::ResidPost, || Ok(x.clone()))? {
            return Ok(None);
        }
        Ok(Some(x))
    }
}

/// `x / sqrt(mean(x²) + eps)` over the last dimension: an RMSNorm before its scale
/// (`ln2.hook_normalized` of an RMSNorm).
pub(crate) fn rms_normalized(x: &Tensor, eps: f32) -> Result<Tensor> {
    let ones = Tensor::ones(x.dim(D::Minus1)?, x.dtype(), x.device())?;
    Ok(candle_nn::ops::rms_norm(x, &ones, eps)?)
}

/// `(x - mean) / sqrt(var + eps)` over the last dimension: a LayerNorm before its scale
/// and bias (`ln2.hook_normalized` of a LayerNorm).
pub(crate) fn ln_normalized(x: &Tensor, eps: f32) -> Result<Tensor> {
    let ones = Tensor::ones(x.dim(D::Minus1)?, x.dtype(), x.device())?;
    Ok(candle_nn::ops::layer_norm(
        x,
        &ones,
        &ones.zeros_like()?,
        eps,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hook_names_round_trip() {
        for point in HookPoint::ALL {
            let hook = Hook { layer: 12, point };
            let text = hook.to_string();
            assert_eq!(text.parse::<Hook>().unwrap(), hook, "{text}");
        }
        assert_eq!(
            "blocks.3.hook_resid_pre".parse::<Hook>().unwrap(),
            Hook {
                layer: 3,
                point: HookPoint::ResidPre
            }
        );
    }

    #[test]
    fn bad_hook_names_are_refused_by_name() {
        for bad in [
            "resid_pre",
            "blocks.x.hook_resid_pre",
            "blocks.3",
            "blocks.3.hook_z",
        ] {
            let e = bad.parse::<Hook>().unwrap_err().to_string();
            assert!(e.contains(bad) && e.contains("hook_resid_pre"), "{e}");
        }
    }
}
