//! Gemma Scope `params.npz`: `W_enc [d_in, d_sae]`, `W_dec [d_sae, d_in]`, `b_enc`,
//! `b_dec`, `threshold`; JumpReLU. Gemma Scope's published encoder does not subtract
//! `b_dec` from the input: `pre = x W_enc + b_enc`, `(pre > threshold) * relu(pre)`.
//! The file names no hook point: the caller gives it.

use std::path::Path;

use candle_core::Tensor;

use super::npy::Npz;
use super::{
    expect_shape, finite_f32, resolve_hook, InputNormalization, Read, SaeArchitecture, SaeFormat,
};
use crate::error::{Error, Result};
use crate::model::hook::Hook;

/// Reads a `params.npz`.
pub(super) fn read(path: &Path, given: Option<Hook>) -> Result<Read> {
    let hook = resolve_hook(path, None, given)?;
    let mut npz = Npz::open(path)?;
    for name in ["W_enc", "W_dec", "b_enc", "b_dec", "threshold"] {
        if !npz.has(name) {
            return Err(Error::bad_model(
                path,
                format!(
                    "no array `{name}` (a Gemma Scope params.npz holds W_enc, W_dec, b_enc, \
                     b_dec and threshold)"
                ),
            ));
        }
    }
    let (enc_header, _) = npz.read("W_enc", false)?;
    let [d_in, d_sae] = enc_header.shape[..] else {
        return Err(Error::bad_model(
            path,
            format!(
                "array `W_enc` has shape {:?}, expected [d_in, d_sae]",
                enc_header.shape
            ),
        ));
    };
    if d_in == 0 || d_sae == 0 {
        return Err(Error::bad_model(path, "array `W_enc` is empty"));
    }
    let (dec_header, _) = npz.read("W_dec", false)?;
    if dec_header.shape != [d_sae, d_in] {
        return Err(Error::bad_model(
            path,
            format!(
                "array `W_dec` has shape {:?}, expected {:?}",
                dec_header.shape,
                [d_sae, d_in]
            ),
        ));
    }
    let mut load = |name: &str, shape: &[usize]| -> Result<Tensor> {
        let (_, t) = npz.read(name, true)?;
        let t = t.ok_or_else(|| Error::bad_model(path, format!("array `{name}` has no data")))?;
        expect_shape(path, name, &t, shape)?;
        finite_f32(path, name, t)
    };
    let b_enc = load("b_enc", &[d_sae])?;
    let b_dec = load("b_dec", &[d_in])?;
    let threshold = load("threshold", &[d_sae])?;
    let w_enc = load("W_enc", &[d_in, d_sae])?;
    Ok(Read {
        format: SaeFormat::GemmaScope,
        architecture: SaeArchitecture::JumpRelu,
        hook,
        d_in,
        d_sae,
        apply_b_dec_to_input: false,
        normalization: InputNormalization::None,
        transcoder: false,
        w_rows: w_enc.t()?.contiguous()?,
        b_enc,
        b_dec,
        threshold: Some(threshold),
    })
}
