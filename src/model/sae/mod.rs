//! Sparse autoencoders (and transcoders) over a hook point: their latents are units
//! N2G explains as it explains MLP neurons.
//!
//! Read from SAELens folders (`cfg.json` + `sae_weights.safetensors`), Gemma Scope
//! `params.npz` files and EleutherAI sparsify folders (`cfg.json` + `sae.safetensors`).
//! The encoder runs in f32 on the model's device: `x` (the hook's value, normalized as
//! the file says, minus `b_dec` when the file says so) times the selected encoder
//! columns plus `b_enc`, then ReLU, JumpReLU (`pre > threshold`) or TopK (the `k`
//! largest pre-activations of all latents, ReLU'd; the others 0).

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};

use super::hook::Hook;
use crate::error::{Error, Result};

/// The file layout an SAE was read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SaeFormat {
    /// A SAELens folder: `cfg.json` + `sae_weights.safetensors`.
    SaeLens,
    /// A Gemma Scope `params.npz`.
    GemmaScope,
    /// An EleutherAI sparsify folder: `cfg.json` + `sae.safetensors`.
    Sparsify,
}

/// The activation function of an SAE's encoder.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SaeArchitecture {
    /// `relu(pre)`.
    Relu,
    /// `pre` where `pre > threshold`, else 0 (per-latent thresholds).
    JumpRelu,
    /// The `k` largest pre-activations over all latents, ReLU'd; the others 0.
    TopK {
        /// Latents kept per token.
        k: usize,
    },
}

/// How the hook's value is scaled before encoding.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum InputNormalization {
    /// Used as is.
    None,
    /// Each token's vector rescaled to norm `sqrt(d_in)` (SAELens
    /// `constant_norm_rescale`).
    ConstantNormRescale,
    /// Multiplied by a constant (SAELens `expected_average_only_in`).
    Scale {
        /// The factor.
        factor: f64,
    },
}

/// What an SAE file is: where it came from, what it reads, its shape.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SaeInfo {
    /// The folder or file it was read from.
    pub path: PathBuf,
    /// SHA-256 of the files read (as [`crate::model::model_sha256`] hashes a folder).
    pub sha256: String,
    /// The file layout.
    pub format: SaeFormat,
    /// The encoder's activation function.
    pub architecture: SaeArchitecture,
    /// The hook point whose value it encodes.
    pub hook: Hook,
    /// Input width.
    pub d_in: usize,
    /// Number of latents.
    pub d_sae: usize,
    /// Whether `b_dec` is subtracted from the input before encoding.
    pub apply_b_dec_to_input: bool,
    /// How the input is scaled first.
    pub normalization: InputNormalization,
    /// A transcoder (its decoder predicts another hook; only the encoder is used here).
    pub transcoder: bool,
}

/// A loaded SAE's encoder, on the model's device.
#[derive(Debug)]
pub struct Sae {
    info: SaeInfo,
}

impl Sae {
    /// Reads an SAE folder or file. `hook` names the hook point when the file does not
    /// (Gemma Scope); when the file names one too, they must agree.
    pub fn load(path: &Path, hook: Option<Hook>, device: &Device) -> Result<Sae> {
        let _ = (hook, device);
        Err(Error::InvalidRequest(format!(
            "{}: SAE reading is not built yet",
            path.display()
        )))
    }

    /// What the SAE is.
    pub fn info(&self) -> &SaeInfo {
        &self.info
    }

    /// The latents `latents` (all when `None`), in that order, of hook values `x`
    /// (`[n, d_in]`, f32): `[n, latents.len()]` (or `[n, d_sae]`), f32.
    pub(crate) fn encode(&self, x: &Tensor, latents: Option<&[usize]>) -> Result<Tensor> {
        let _ = (x, latents);
        Err(Error::InvalidRequest(
            "SAE encoding is not built yet".into(),
        ))
    }
}
