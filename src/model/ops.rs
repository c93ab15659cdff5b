//! Small tensor helpers shared by the architectures.

use candle_core::{DType, Device, Tensor, D};

use super::TreeLayout;
use crate::error::Result;

/// `[t, t]` additive causal mask: 0 on and below the diagonal, -inf above.
pub(crate) fn causal_mask(t: usize, device: &Device) -> Result<Tensor> {
    let mask: Vec<f32> = (0..t)
        .flat_map(|i| (0..t).map(move |j| if j > i { f32::NEG_INFINITY } else { 0.0 }))
        .collect();
    Ok(Tensor::from_vec(mask, (t, t), device)?)
}

/// RoPE tables `(cos, sin)`, each `[t, dim/2]`, for rotary width `dim`.
pub(crate) fn rope_tables(
    t: usize,
    dim: usize,
    theta: f64,
    device: &Device,
) -> Result<(Tensor, Tensor)> {
    let half = dim / 2;
    let inv_freq: Vec<f64> = (0..half)
        .map(|i| 1.0 / theta.powf(2.0 * i as f64 / dim as f64))
        .collect();
    let mut cos = Vec::with_capacity(t * half);
    let mut sin = Vec::with_capacity(t * half);
    for p in 0..t {
        for f in &inv_freq {
            let angle = p as f64 * f;
            cos.push(angle.cos() as f32);
            sin.push(angle.sin() as f32);
        }
    }
    Ok((
        Tensor::from_vec(cos, (t, half), device)?,
        Tensor::from_vec(sin, (t, half), device)?,
    ))
}

/// The attention mask of a pass: the tree's ancestor mask, else causal.
pub(crate) fn pass_mask(t: usize, tree: Option<&TreeLayout>, device: &Device) -> Result<Tensor> {
    match tree {
        Some(l) => Ok(l.mask.clone()),
        None => causal_mask(t, device),
    }
}

/// RoPE tables for a pass: `[t, dim/2]` by position, or `[b, t, dim/2]` gathered at
/// each token's tree position.
pub(crate) fn pass_rope(
    (b, t): (usize, usize),
    dim: usize,
    theta: f64,
    tree: Option<&TreeLayout>,
    device: &Device,
) -> Result<(Tensor, Tensor)> {
    match tree {
        None => rope_tables(t, dim, theta, device),
        Some(l) => {
            let (cos, sin) = rope_tables(l.max_position + 1, dim, theta, device)?;
            let gather = |x: &Tensor| -> Result<Tensor> {
                Ok(x.index_select(&l.positions, 0)?
                    .reshape((b, t, dim / 2))?
                    .contiguous()?)
            };
            Ok((gather(&cos)?, gather(&sin)?))
        }
    }
}

/// Scaled dot-product causal attention with grouped KV heads.
///
/// `q`: `[b, n_heads, t, d]`, `k`/`v`: `[b, n_kv, t, d]`, `mask` `[t, t]` or
/// `[b, 1, t, t]`. Returns `[b, t, n_heads * d]`. The queries of the heads that share a
/// KV head are stacked (`[b, n_kv, rep * t, d]`), so grouped heads need no copies of
/// the keys and values and each product is one larger matmul.
pub(crate) fn attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    mask: &Tensor,
    scale: f64,
) -> Result<Tensor> {
    let (b, n_heads, t, d) = q.dims4()?;
    let n_kv = k.dim(1)?;
    let rep = n_heads / n_kv;
    let q = q.contiguous()?.reshape((b, n_kv, rep * t, d))?;
    let scores = (q.matmul(&k.t()?)? * scale)?.reshape((b, n_kv, rep, t, t))?;
    // [t, t] broadcasts as it is; [b, 1, t, t] needs a unit axis for the group.
    let mask = if mask.rank() == 4 {
        mask.unsqueeze(2)?
    } else {
        mask.clone()
    };
    let scores = scores.broadcast_add(&mask)?;
    let probs = candle_nn::ops::softmax_last_dim(&scores)?.reshape((b, n_kv, rep * t, t))?;
    let y = probs
        .matmul(&v.contiguous()?)?
        .reshape((b, n_heads, t, d))?;
    Ok(y.transpose(1, 2)?.reshape((b, t, n_heads * d))?)
}

/// Splits `[b, t, heads * d]` into `[b, heads, t, d]` (contiguous).
pub(crate) fn split_heads(x: &Tensor, heads: usize) -> Result<Tensor> {
    let (b, t, hd) = x.dims3()?;
    Ok(x.reshape((b, t, heads, hd / heads))?
        .transpose(1, 2)?
        .contiguous()?)
}

/// Applies non-interleaved ("rotate half", GPT-NeoX / Hugging Face) RoPE to the first
/// `rot` dims of `[b, h, t, d]`, leaving the rest as they are.
pub(crate) fn rope_partial(x: &Tensor, rot: usize, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
    let d = x.dim(D::Minus1)?;
    if rot == d {
        return Ok(candle_nn::rotary_emb::rope(x, cos, sin)?);
    }
    let rotated = x.narrow(D::Minus1, 0, rot)?.contiguous()?;
    let rotated = candle_nn::rotary_emb::rope(&rotated, cos, sin)?;
    let pass = x.narrow(D::Minus1, rot, d - rot)?;
    Ok(Tensor::cat(&[&rotated, &pass], D::Minus1)?.contiguous()?)
}

/// The `k` largest values of `row` as `(index, value)`, largest first (ties: lower index).
pub(crate) fn top_k(row: &[f32], k: usize) -> Vec<(u32, f32)> {
    let mut idx: Vec<u32> = (0..row.len() as u32).collect();
    let k = k.min(row.len());
    if k == 0 {
        return Vec::new();
    }
    let cmp = |a: &u32, b: &u32| row[*b as usize].total_cmp(&row[*a as usize]).then(a.cmp(b));
    idx.select_nth_unstable_by(k - 1, cmp);
    idx.truncate(k);
    idx.sort_by(cmp);
    idx.into_iter().map(|i| (i, row[i as usize])).collect()
}

/// Converts a loaded tensor to f32 on `device`.
pub(crate) fn to_f32(t: Tensor, device: &Device) -> Result<Tensor> {
    Ok(t.to_dtype(DType::F32)?.to_device(device)?)
}
