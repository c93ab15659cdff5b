//! Hook points: where in a block a unit's input is read, named as TransformerLens names
//! them (`blocks.L.hook_resid_pre`, `blocks.L.mlp.hook_post`, ...).

use std::fmt;
use std::str::FromStr;

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
