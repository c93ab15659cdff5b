//! The encoder: input normalization, `b_dec` subtraction, and ReLU / JumpReLU over the
//! selected latents only, or TopK over all latents.

use candle_core::{DType, Tensor};

use super::{InputNormalization, Sae, SaeArchitecture};
use crate::error::{Error, Result};
use crate::model::ops::{matmul, top_k};

/// Pre-activations a TopK encode holds at a time, in elements (64 MiB of f32): the
/// rows are encoded in blocks of `TOPK_BLOCK / d_sae` (at least one).
const TOPK_BLOCK: usize = 16 << 20;

impl Sae {
    /// See [`Sae::encode`]. ReLU and JumpReLU compute the requested latents' encoder
    /// rows only; TopK computes every pre-activation (a latent is kept when it is among
    /// its token's `k` largest; among equal values the lower latent id is kept), then
    /// returns the requested ones, ReLU'd, 0 where not kept.
    pub(super) fn encode_tensor(&self, x: &Tensor, latents: Option<&[usize]>) -> Result<Tensor> {
        let (d_in, d_sae) = (self.info.d_in, self.info.d_sae);
        let n = match x.dims() {
            &[n, w] if w == d_in => n,
            dims => {
                return Err(Error::InvalidRequest(format!(
                    "SAE input has shape {dims:?}, expected [n, {d_in}] (the SAE reads {})",
                    self.info.hook
                )))
            }
        };
        if let Some(&bad) = latents.and_then(|ids| ids.iter().find(|&&i| i >= d_sae)) {
            return Err(Error::InvalidRequest(format!(
                "SAE latent {bad} is out of range: the SAE has {d_sae} latents"
            )));
        }
        let m = latents.map_or(d_sae, <[usize]>::len);
        let device = self.w_rows.device();
        if n == 0 || m == 0 {
            return Ok(Tensor::zeros((n, m), DType::F32, device)?);
        }
        let x = self.prepare(&x.to_dtype(DType::F32)?.to_device(device)?)?;
        if let SaeArchitecture::TopK { k } = self.info.architecture {
            return self.encode_top_k(&x, k, latents);
        }
        let (w, b, threshold) = match latents {
            None => (
                self.w_rows.clone(),
                self.b_enc.clone(),
                self.threshold.clone(),
            ),
            Some(ids) => {
                let ids: Vec<u32> = ids.iter().map(|&i| i as u32).collect();
                let idx = Tensor::from_vec(ids, m, device)?;
                let select = |t: &Tensor| t.index_select(&idx, 0);
                (
                    select(&self.w_rows)?,
                    select(&self.b_enc)?,
                    self.threshold.as_ref().map(select).transpose()?,
                )
            }
        };
        let pre = matmul(&x, &w.t()?)?.broadcast_add(&b)?;
        let acts = pre.relu()?;
        match (self.info.architecture, threshold) {
            (SaeArchitecture::JumpRelu, Some(t)) => {
                let mask = pre.broadcast_gt(&t)?.to_dtype(DType::F32)?;
                Ok((acts * mask)?)
            }
            _ => Ok(acts),
        }
    }

    /// The encoder's input: normalized as the file says, minus `b_dec` when it says so.
    fn prepare(&self, x: &Tensor) -> Result<Tensor> {
        let x = match self.info.normalization {
            InputNormalization::None => x.clone(),
            InputNormalization::ConstantNormRescale => {
                // Each row to norm sqrt(d_in); a zero row stays zero.
                let norm = x.sqr()?.sum_keepdim(1)?.sqrt()?;
                let scale = norm
                    .maximum(f32::MIN_POSITIVE)?
                    .recip()?
                    .affine((self.info.d_in as f64).sqrt(), 0.0)?;
                x.broadcast_mul(&scale)?
            }
            InputNormalization::Scale { factor } => x.affine(factor, 0.0)?,
        };
        if self.info.apply_b_dec_to_input {
            Ok(x.broadcast_sub(&self.b_dec)?)
        } else {
            Ok(x)
        }
    }

    /// TopK: all pre-activations of a block of rows, the `k` largest of each row kept
    /// on the host.
    fn encode_top_k(&self, x: &Tensor, k: usize, latents: Option<&[usize]>) -> Result<Tensor> {
        let n = x.dim(0)?;
        let d_sae = self.info.d_sae;
        let block = (TOPK_BLOCK / d_sae).max(1);
        let w_t = self.w_rows.t()?;
        let m = latents.map_or(d_sae, <[usize]>::len);
        let mut out = Vec::with_capacity(n * m);
        // kept[i] == row: latent i is among row's k largest.
        let mut kept = vec![usize::MAX; d_sae];
        for start in (0..n).step_by(block) {
            let rows = block.min(n - start);
            let pre = matmul(&x.narrow(0, start, rows)?, &w_t)?.broadcast_add(&self.b_enc)?;
            let pre = pre.flatten_all()?.to_vec1::<f32>()?;
            for (r, row) in pre.chunks_exact(d_sae).enumerate() {
                let tag = start + r;
                for (i, _) in top_k(row, k) {
                    kept[i as usize] = tag;
                }
                let act = |i: usize| {
                    if kept[i] == tag {
                        row[i].max(0.0)
                    } else {
                        0.0
                    }
                };
                match latents {
                    None => out.extend((0..d_sae).map(act)),
                    Some(ids) => out.extend(ids.iter().map(|&i| act(i))),
                }
            }
        }
        Ok(Tensor::from_vec(out, (n, m), x.device())?)
    }
}
