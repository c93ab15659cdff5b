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

use candle_core::{DType, Device, Tensor};

use super::hook::Hook;
use crate::error::{Error, Result};

mod cfg;
mod encode;
mod gemma_scope;
mod npy;
mod saelens;
mod sparsify;

/// The layouts [`Sae::load`] reads, for error messages.
const SUPPORTED: &str = "a SAELens folder (cfg.json + sae_weights.safetensors), a Gemma Scope \
params.npz (or a folder holding one), or an EleutherAI sparsify folder (cfg.json + \
sae.safetensors)";

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

impl std::fmt::Display for SaeFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SaeFormat::SaeLens => "SAELens",
            SaeFormat::GemmaScope => "Gemma Scope",
            SaeFormat::Sparsify => "sparsify",
        })
    }
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

impl std::fmt::Display for SaeArchitecture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SaeArchitecture::Relu => f.write_str("ReLU"),
            SaeArchitecture::JumpRelu => f.write_str("JumpReLU"),
            SaeArchitecture::TopK { k } => write!(f, "TopK k={k}"),
        }
    }
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
    /// The encoder, one row per latent: `[d_sae, d_in]`, f32.
    w_rows: Tensor,
    /// `[d_sae]`, f32.
    b_enc: Tensor,
    /// `[d_in]`, f32.
    b_dec: Tensor,
    /// JumpReLU thresholds, `[d_sae]`, f32.
    threshold: Option<Tensor>,
}

/// What a reader found: the description and the encoder weights (f32, on the CPU),
/// shapes already checked against each other.
struct Read {
    format: SaeFormat,
    architecture: SaeArchitecture,
    hook: Hook,
    d_in: usize,
    d_sae: usize,
    apply_b_dec_to_input: bool,
    normalization: InputNormalization,
    transcoder: bool,
    w_rows: Tensor,
    b_enc: Tensor,
    b_dec: Tensor,
    threshold: Option<Tensor>,
}

impl Sae {
    /// Reads an SAE folder or file. `hook` names the hook point when the file does not
    /// (Gemma Scope); when the file names one too, they must agree.
    pub fn load(path: &Path, hook: Option<Hook>, device: &Device) -> Result<Sae> {
        let (format, source) = detect(path)?;
        let read = match format {
            SaeFormat::SaeLens => saelens::read(&source, hook)?,
            SaeFormat::GemmaScope => gemma_scope::read(&source, hook)?,
            SaeFormat::Sparsify => sparsify::read(&source, hook)?,
        };
        let sha256 = super::model_sha256(&source)?;
        let to_device = |t: Tensor| -> Result<Tensor> { Ok(t.to_device(device)?) };
        Ok(Sae {
            info: SaeInfo {
                path: source,
                sha256,
                format: read.format,
                architecture: read.architecture,
                hook: read.hook,
                d_in: read.d_in,
                d_sae: read.d_sae,
                apply_b_dec_to_input: read.apply_b_dec_to_input,
                normalization: read.normalization,
                transcoder: read.transcoder,
            },
            w_rows: to_device(read.w_rows)?,
            b_enc: to_device(read.b_enc)?,
            b_dec: to_device(read.b_dec)?,
            threshold: read.threshold.map(to_device).transpose()?,
        })
    }

    /// What the SAE is.
    pub fn info(&self) -> &SaeInfo {
        &self.info
    }

    /// The latents `latents` (all when `None`), in that order, of hook values `x`
    /// (`[n, d_in]`, f32): `[n, latents.len()]` (or `[n, d_sae]`), f32.
    pub(crate) fn encode(&self, x: &Tensor, latents: Option<&[usize]>) -> Result<Tensor> {
        self.encode_tensor(x, latents)
    }

    /// [`Sae::encode`] on host rows: `rows` is `[n, d_in]` row-major; returns
    /// `[n, latents.len()]` (or `[n, d_sae]`) row-major. Latent ids must be below
    /// `d_sae` (repeats allowed).
    pub fn encode_rows(&self, rows: &[f32], latents: Option<&[usize]>) -> Result<Vec<f32>> {
        let d_in = self.info.d_in;
        if !rows.len().is_multiple_of(d_in) {
            return Err(Error::InvalidRequest(format!(
                "{} values are not whole rows of the SAE's input width {d_in}",
                rows.len()
            )));
        }
        let x = Tensor::from_slice(rows, (rows.len() / d_in, d_in), self.w_rows.device())?;
        Ok(self.encode(&x, latents)?.flatten_all()?.to_vec1::<f32>()?)
    }
}

/// The format of `path` and the file or folder to read: a folder with `cfg.json` and
/// `sae_weights.safetensors` (SAELens) or `sae.safetensors` (sparsify), a `.npz` file
/// or a folder holding `params.npz` (Gemma Scope); one of those files stands for its
/// folder.
fn detect(path: &Path) -> Result<(SaeFormat, PathBuf)> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if meta.is_file() {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.ends_with(".npz") {
            return Ok((SaeFormat::GemmaScope, path.into()));
        }
        if matches!(
            name,
            "cfg.json" | "sae_weights.safetensors" | "sae.safetensors"
        ) {
            if let Some(parent) = path.parent().filter(|p| p.is_dir()) {
                return detect(parent);
            }
        }
        return Err(Error::bad_model(
            path,
            format!("not an SAE file; expected {SUPPORTED}"),
        ));
    }
    let has = |name: &str| path.join(name).is_file();
    if has("cfg.json") && has("sae_weights.safetensors") {
        return Ok((SaeFormat::SaeLens, path.into()));
    }
    if has("cfg.json") && has("sae.safetensors") {
        return Ok((SaeFormat::Sparsify, path.into()));
    }
    if has("params.npz") {
        return Ok((SaeFormat::GemmaScope, path.join("params.npz")));
    }
    let found = if has("cfg.json") {
        "cfg.json without sae_weights.safetensors or sae.safetensors"
    } else {
        "no cfg.json or params.npz"
    };
    Err(Error::bad_model(
        path,
        format!("not an SAE folder ({found}); expected {SUPPORTED}"),
    ))
}

/// The hook point of an SAE: the caller's and the file's must agree; either alone is
/// taken; with neither, the caller is asked for `--hook`. `file` is the hook the file
/// names and where (`cfg.json` field, folder name).
fn resolve_hook(path: &Path, file: Option<(Hook, String)>, given: Option<Hook>) -> Result<Hook> {
    match (file, given) {
        (Some((f, _)), Some(g)) if f == g => Ok(g),
        (Some((f, source)), Some(g)) => Err(Error::InvalidOption {
            field: "hook",
            message: format!(
                "{}: the SAE reads `{f}` ({source}) but `{g}` was given; drop --hook or give `{f}`",
                path.display()
            ),
        }),
        (Some((f, _)), None) => Ok(f),
        (None, Some(g)) => Ok(g),
        (None, None) => Err(Error::InvalidOption {
            field: "hook",
            message: format!(
                "{}: the file does not say which hook point it reads; give it with --hook \
                 (e.g. blocks.12.hook_resid_post)",
                path.display()
            ),
        }),
    }
}

/// Refuses a tensor whose shape is not `expected`, naming the file and tensor.
fn expect_shape(path: &Path, name: &str, t: &Tensor, expected: &[usize]) -> Result<()> {
    if t.dims() != expected {
        return Err(Error::bad_model(
            path,
            format!(
                "tensor `{name}` has shape {:?}, expected {expected:?}",
                t.dims()
            ),
        ));
    }
    Ok(())
}

/// Converts a loaded tensor to f32 and refuses NaN or infinite values, naming the file
/// and tensor.
fn finite_f32(path: &Path, name: &str, t: Tensor) -> Result<Tensor> {
    if !matches!(
        t.dtype(),
        DType::F32 | DType::F16 | DType::BF16 | DType::F64
    ) {
        return Err(Error::bad_model(
            path,
            format!("tensor `{name}` is {:?}, not floating point", t.dtype()),
        ));
    }
    let t = t.to_dtype(DType::F32)?;
    // A NaN or an infinity makes a sum of absolute values non-finite (real weights sum
    // to far below f32's range). Summed a block of rows at a time, so the check holds
    // at most 64 MiB more than the tensor.
    let rows = match t.dims().first() {
        _ if t.elem_count() == 0 => 0,
        Some(&r) => r,
        None => 1,
    };
    let per_row = (t.elem_count() / rows).max(1);
    let block = ((16 << 20) / per_row).max(1);
    let mut start = 0;
    while start < rows {
        let part = if t.rank() == 0 {
            t.clone()
        } else {
            t.narrow(0, start, block.min(rows - start))?
        };
        if !part.abs()?.sum_all()?.to_scalar::<f32>()?.is_finite() {
            return Err(Error::bad_model(
                path,
                format!("tensor `{name}` holds NaN or infinite values"),
            ));
        }
        start += block;
    }
    Ok(t)
}

/// Checks `k` of a TopK SAE against its width.
fn check_k(path: &Path, field: &str, k: usize, d_sae: usize) -> Result<()> {
    if k == 0 || k > d_sae {
        return Err(Error::bad_model(
            path,
            format!("`{field}` is {k}; a TopK SAE needs 1 <= k <= d_sae ({d_sae})"),
        ));
    }
    Ok(())
}
