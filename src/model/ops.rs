//! Small tensor helpers shared by the architectures.

use candle_core::{CpuStorage, DType, Device, DeviceLocation, Layout, Storage, Tensor, D};
use rayon::prelude::*;

use super::TreeLayout;
use crate::error::Result;

/// `[t, t]` additive causal mask: 0 on and below the diagonal, -inf above.
pub(crate) fn causal_mask(t: usize, device: &Device) -> Result<Tensor> {
    let mask: Vec<f32> = (0..t)
        .flat_map(|i| (0..t).map(move |j| if j > i { f32::NEG_INFINITY } else { 0.0 }))
        .collect();
    Ok(Tensor::from_vec(mask, (t, t), device)?)
}

/// RoPE tables `(cos, sin)`, each `[t, dim/2]`, for rotary width `dim`. Frequency `i`
/// is `theta^(-2i/dim) / divisors[i]` when per-frequency divisors are given (Llama 3.1
/// scaling: GGUF's `rope_freqs.weight`, as llama.cpp applies it).
pub(crate) fn rope_tables(
    t: usize,
    dim: usize,
    theta: f64,
    divisors: Option<&[f64]>,
    device: &Device,
) -> Result<(Tensor, Tensor)> {
    let half = dim / 2;
    let inv_freq: Vec<f64> = (0..half)
        .map(|i| {
            let f = 1.0 / theta.powf(2.0 * i as f64 / dim as f64);
            divisors.map_or(f, |d| f / d[i])
        })
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
    divisors: Option<&[f64]>,
    tree: Option<&TreeLayout>,
    device: &Device,
) -> Result<(Tensor, Tensor)> {
    match tree {
        None => rope_tables(t, dim, theta, divisors, device),
        Some(l) => {
            let (cos, sin) = rope_tables(l.max_position + 1, dim, theta, divisors, device)?;
            let gather = |x: &Tensor| -> Result<Tensor> {
                Ok(x.index_select(&l.positions, 0)?
                    .reshape((b, t, dim / 2))?
                    .contiguous()?)
            };
            Ok((gather(&cos)?, gather(&sin)?))
        }
    }
}

/// Llama 3.1 RoPE scaling as per-frequency divisors (llama.cpp's converter writes
/// these as `rope_freqs.weight`; Hugging Face's `rope_type = "llama3"` computes the
/// same inverse frequencies): long wavelengths divided by `factor`, short ones kept,
/// the band between interpolated smoothly.
pub(crate) fn llama3_rope_divisors(
    dim: usize,
    theta: f64,
    factor: f64,
    low_freq_factor: f64,
    high_freq_factor: f64,
    original_context: f64,
) -> Vec<f64> {
    (0..dim / 2)
        .map(|i| {
            let wavelen = 2.0 * std::f64::consts::PI * theta.powf(2.0 * i as f64 / dim as f64);
            if wavelen < original_context / high_freq_factor {
                1.0
            } else if wavelen > original_context / low_freq_factor {
                factor
            } else {
                let smooth = (original_context / wavelen - low_freq_factor)
                    / (high_freq_factor - low_freq_factor);
                1.0 / ((1.0 - smooth) / factor + smooth)
            }
        })
        .collect()
}

/// The attention mask of a layer that sees only keys less than `window` positions
/// back (`0 <= pos(query) - pos(key) < window`, Hugging Face's sliding window),
/// measured by position: for prefix-tree rows, the tree's ancestor mask restricted to
/// ancestors at most `window - 1` positions before the token, whatever their columns.
pub(crate) fn pass_window_mask(
    (b, t): (usize, usize),
    tree: Option<&TreeLayout>,
    window: usize,
    device: &Device,
) -> Result<Tensor> {
    match tree {
        None => {
            let mask: Vec<f32> = (0..t)
                .flat_map(|i| {
                    (0..t).map(move |j| {
                        if j > i || i - j >= window {
                            f32::NEG_INFINITY
                        } else {
                            0.0
                        }
                    })
                })
                .collect();
            Ok(Tensor::from_vec(mask, (t, t), device)?)
        }
        Some(l) => {
            let pos = l.positions.to_dtype(DType::F32)?.reshape((b, t))?;
            // distance[r, i, j] = pos(i) - pos(j).
            let distance = pos.unsqueeze(2)?.broadcast_sub(&pos.unsqueeze(1)?)?;
            let far = distance.ge(window as f64)?;
            let blocked = Tensor::full(f32::NEG_INFINITY, (b, t, t), device)?;
            let mask = far.where_cond(&blocked, &l.mask.reshape((b, t, t))?)?;
            Ok(mask.reshape((b, 1, t, t))?)
        }
    }
}

/// The masks of one pass: causal (or the tree's), and one per sliding-window size the
/// layers use.
pub(crate) struct PassMasks {
    full: Tensor,
    windowed: Vec<(usize, Tensor)>,
}

impl PassMasks {
    /// Masks for ids of shape `(b, t)` and layers with these windows (`None`: full).
    pub fn new(
        (b, t): (usize, usize),
        tree: Option<&TreeLayout>,
        windows: &[Option<usize>],
        device: &Device,
    ) -> Result<PassMasks> {
        let mut windowed: Vec<(usize, Tensor)> = Vec::new();
        for &w in windows.iter().flatten() {
            if !windowed.iter().any(|(x, _)| *x == w) {
                windowed.push((w, pass_window_mask((b, t), tree, w, device)?));
            }
        }
        Ok(PassMasks {
            full: pass_mask(t, tree, device)?,
            windowed,
        })
    }

    /// The mask of a layer with this window.
    pub fn get(&self, window: Option<usize>) -> &Tensor {
        window
            .and_then(|w| self.windowed.iter().find(|(x, _)| *x == w))
            .map_or(&self.full, |(_, m)| m)
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
    capped_attention(q, k, v, mask, scale, None)
}

/// [`attention`] with the scores soft-capped before the mask (Gemma 2:
/// `cap * tanh(scores / cap)`) when `softcap` is given.
pub(crate) fn capped_attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    mask: &Tensor,
    scale: f64,
    softcap: Option<f64>,
) -> Result<Tensor> {
    let (b, n_heads, t, d) = q.dims4()?;
    let n_kv = k.dim(1)?;
    let rep = n_heads / n_kv;
    let q = q.contiguous()?.reshape((b, n_kv, rep * t, d))?;
    let scores = (matmul(&q, &k.t()?)? * scale)?;
    let scores = match softcap {
        Some(cap) => soft_cap(&scores, cap)?,
        None => scores,
    };
    let scores = scores.reshape((b, n_kv, rep, t, t))?;
    // [t, t] broadcasts as it is; [b, 1, t, t] needs a unit axis for the group.
    let mask = if mask.rank() == 4 {
        mask.unsqueeze(2)?
    } else {
        mask.clone()
    };
    let scores = scores.broadcast_add(&mask)?;
    let probs = candle_nn::ops::softmax_last_dim(&scores)?.reshape((b, n_kv, rep * t, t))?;
    let y = matmul(&probs, &v.contiguous()?)?.reshape((b, n_heads, t, d))?;
    Ok(y.transpose(1, 2)?.reshape((b, t, n_heads * d))?)
}

/// `cap * tanh(x / cap)`: Gemma 2's soft-capping of attention scores and logits.
pub(crate) fn soft_cap(x: &Tensor, cap: f64) -> Result<Tensor> {
    Ok(((x / cap)?.tanh()? * cap)?)
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

/// How [`matmul`] multiplies two operands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MatmulKernel {
    /// The `gemm` crate on the tensors' host memory, into an uninitialised output.
    HostGemm,
    /// candle's `Tensor::matmul`: the device's own backend (cuBLAS on CUDA, MPS on Metal,
    /// `gemm` after a zero-fill on the CPU).
    Candle,
}

/// The kernel [`matmul`] uses for operands of `dtype` (both) on the device at
/// `location`: the host `gemm` only for f32 on the CPU; candle everywhere else, since
/// the memory of a CUDA or Metal tensor cannot be read as a host slice.
pub(crate) fn matmul_kernel(location: DeviceLocation, dtype: DType) -> MatmulKernel {
    match (location, dtype) {
        (DeviceLocation::Cpu, DType::F32) => MatmulKernel::HostGemm,
        _ => MatmulKernel::Candle,
    }
}

/// `a b` over the last two dimensions, `[..., m, k] x [..., k, n]` with the same leading
/// dimensions. On the CPU, for f32 operands whose matrices are evenly spaced in memory
/// (any strides within a matrix), it calls the `gemm` crate (candle's own CPU matmul
/// kernel) straight into an uninitialised output: candle zero-fills every matmul output
/// first, on one thread, which cost about 5% of a forward pass. Anything else goes
/// through candle (see [`matmul_kernel`]).
pub(crate) fn matmul(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let rank = a.rank();
    if rank < 2 || b.rank() != rank || a.dims()[..rank - 2] != b.dims()[..rank - 2] {
        return Ok(a.matmul(b)?);
    }
    if a.dtype() != b.dtype()
        || matmul_kernel(a.device().location(), a.dtype()) != MatmulKernel::HostGemm
    {
        return device_matmul(a, b);
    }
    let (m, k, n) = (a.dims()[rank - 2], a.dims()[rank - 1], b.dims()[rank - 1]);
    let batch: usize = a.dims()[..rank - 2].iter().product();
    let (a_storage, a_layout) = a.storage_and_layout();
    let (b_storage, b_layout) = b.storage_and_layout();
    let (Storage::Cpu(CpuStorage::F32(a_data)), Storage::Cpu(CpuStorage::F32(b_data))) =
        (&*a_storage, &*b_storage)
    else {
        return Ok(a.matmul(b)?);
    };
    let (Some(sa), Some(sb)) = (MatrixStrides::of(a_layout), MatrixStrides::of(b_layout)) else {
        drop((a_storage, b_storage));
        return matmul(&a.contiguous()?, &b.contiguous()?);
    };
    if k == 0 || b.dims()[rank - 2] != k {
        drop((a_storage, b_storage));
        return Ok(a.matmul(b)?);
    }
    let dst = gemm_f32(
        (batch, m, k, n),
        (a_data, a_layout.start_offset(), sa),
        (b_data, b_layout.start_offset(), sb),
    );
    let mut dims = a.dims().to_vec();
    dims[rank - 1] = n;
    Ok(Tensor::from_vec(dst, dims, a.device())?)
}

/// candle's matmul. On a CPU it takes any layout; cuBLAS and MPS need each operand's
/// batch axes to nest and one unit stride per matrix, so on another device a layout
/// they refuse is made contiguous and the product tried once more.
fn device_matmul(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let retry = !a.device().is_cpu() && (!a.is_contiguous() || !b.is_contiguous());
    match a.matmul(b) {
        Ok(y) => Ok(y),
        Err(_) if retry => Ok(a.contiguous()?.matmul(&b.contiguous()?)?),
        Err(e) => Err(e.into()),
    }
}

/// Where the matrices of a `[..., rows, cols]` layout lie: matrix `i` starts `i * skip`
/// elements in, and element `(r, c)` of it `r * row + c * col` further.
#[derive(Clone, Copy)]
struct MatrixStrides {
    skip: usize,
    row: usize,
    col: usize,
}

impl MatrixStrides {
    /// `None` when the matrices are not evenly spaced (e.g. a sliced batch axis); a
    /// broadcast batch (stride 0) is fine: it reads the same matrix again.
    fn of(layout: &Layout) -> Option<MatrixStrides> {
        let (dims, strides) = (layout.dims(), layout.stride());
        let rank = dims.len();
        let mut skip = 0;
        // The stride the next outer batch axis must have for the axes to nest.
        let mut outer: Option<usize> = None;
        for j in (0..rank - 2).rev() {
            if dims[j] == 1 {
                continue;
            }
            match outer {
                None => skip = strides[j],
                Some(expected) if strides[j] != expected => return None,
                Some(_) => {}
            }
            outer = Some(strides[j] * dims[j]);
        }
        Some(MatrixStrides {
            skip,
            row: strides[rank - 2],
            col: strides[rank - 1],
        })
    }
}

/// Multiply-adds up to which a product of a batch runs on one thread.
const SMALL_PRODUCT: usize = 1 << 21;

/// A raw pointer that may cross threads (each thread touches its own elements).
struct SendPtr(*mut f32);
// SAFETY: used only for disjoint writes and shared reads, see `gemm_f32`.
unsafe impl Send for SendPtr {}
unsafe impl Sync for SendPtr {}

impl SendPtr {
    /// The pointer (a method, so that closures capture the whole `Sync` wrapper).
    fn get(&self) -> *mut f32 {
        self.0
    }
}

/// `batch` products of `[m, k] x [k, n]` into a new contiguous `[batch, m, n]` buffer.
fn gemm_f32(
    (batch, m, k, n): (usize, usize, usize, usize),
    (a, a_start, sa): (&[f32], usize, MatrixStrides),
    (b, b_start, sb): (&[f32], usize, MatrixStrides),
) -> Vec<f32> {
    if batch == 0 || m == 0 || n == 0 {
        return Vec::new();
    }
    let last = |s: MatrixStrides, start: usize, rows: usize, cols: usize| {
        start + (batch - 1) * s.skip + (rows - 1) * s.row + (cols - 1) * s.col
    };
    // Every element either operand can be read at lies inside its buffer.
    assert!(last(sa, a_start, m, k) < a.len(), "lhs out of bounds");
    assert!(last(sb, b_start, k, n) < b.len(), "rhs out of bounds");
    let threads = candle_core::utils::get_num_threads();
    let parallelism = if threads > 1 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    let mut dst: Vec<f32> = Vec::with_capacity(batch * m * n);
    let out = SendPtr(dst.as_mut_ptr());
    let lhs = SendPtr(a[a_start..].as_ptr() as *mut f32);
    let rhs = SendPtr(b[b_start..].as_ptr() as *mut f32);
    let product = |i: usize, parallelism: gemm::Parallelism| {
        // SAFETY: the reads stay in `a` and `b` (asserted above); the writes fill the
        // `[m, n]` row-major block `i` of `dst`'s capacity, which no other call touches.
        // With `read_dst = false` and `k > 0`, gemm writes every element of it
        // (`dst = beta * a b`) without reading.
        unsafe {
            gemm::gemm(
                m,
                n,
                k,
                out.get().add(i * m * n),
                1,
                n as isize,
                false,
                lhs.get().add(i * sa.skip),
                sa.col as isize,
                sa.row as isize,
                rhs.get().add(i * sb.skip),
                sb.col as isize,
                sb.row as isize,
                0.0f32,
                1.0f32,
                false,
                false,
                false,
                parallelism,
            );
        }
    };
    if batch > 1 && threads > 1 && m * n * k <= SMALL_PRODUCT {
        // Many small products (attention's, one per row and KV head): one thread each,
        // spread over the pool, instead of splitting every small product across threads.
        (0..batch)
            .into_par_iter()
            .for_each(|i| product(i, gemm::Parallelism::None));
    } else {
        (0..batch).for_each(|i| product(i, parallelism));
    }
    // SAFETY: every block was written above.
    unsafe { dst.set_len(batch * m * n) };
    dst
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `[..., m, k] x [..., k, n]` by the definition, in f64, from plain element reads.
    fn naive(a: &Tensor, b: &Tensor) -> Vec<f64> {
        let rank = a.rank();
        let (m, k, n) = (a.dims()[rank - 2], a.dims()[rank - 1], b.dims()[rank - 1]);
        let batch: usize = a.dims()[..rank - 2].iter().product();
        let a = a.to_dtype(DType::F64).unwrap().flatten_all().unwrap();
        let b = b.to_dtype(DType::F64).unwrap().flatten_all().unwrap();
        let (a, b) = (a.to_vec1::<f64>().unwrap(), b.to_vec1::<f64>().unwrap());
        let mut out = Vec::new();
        for i in 0..batch {
            for r in 0..m {
                for c in 0..n {
                    out.push(
                        (0..k)
                            .map(|j| a[i * m * k + r * k + j] * b[i * k * n + j * n + c])
                            .sum(),
                    );
                }
            }
        }
        out
    }

    fn check(a: &Tensor, b: &Tensor) {
        let got = matmul(a, b).unwrap();
        let mut dims = a.dims().to_vec();
        *dims.last_mut().unwrap() = b.dims()[b.rank() - 1];
        assert_eq!(got.dims(), dims.as_slice());
        let got = got.to_dtype(DType::F64).unwrap().flatten_all().unwrap();
        let got = got.to_vec1::<f64>().unwrap();
        let want = naive(a, b);
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() < 1e-4 * (1.0 + w.abs()), "{g} vs {w}");
        }
    }

    fn values(dims: &[usize], seed: u32) -> Tensor {
        let n: usize = dims.iter().product();
        let v: Vec<f32> = (0..n as u32)
            .map(|i| ((i.wrapping_mul(2_654_435_761) ^ seed) % 1000) as f32 / 500.0 - 1.0)
            .collect();
        Tensor::from_vec(v, dims, &Device::Cpu).unwrap()
    }

    #[test]
    fn only_f32_on_the_cpu_takes_the_host_gemm() {
        use DeviceLocation::{Cpu, Cuda, Metal};
        assert_eq!(matmul_kernel(Cpu, DType::F32), MatmulKernel::HostGemm);
        for dtype in [DType::F16, DType::BF16, DType::F64] {
            assert_eq!(matmul_kernel(Cpu, dtype), MatmulKernel::Candle, "{dtype:?}");
        }
        for location in [Cuda { gpu_id: 0 }, Cuda { gpu_id: 3 }, Metal { gpu_id: 0 }] {
            for dtype in [DType::F32, DType::F16, DType::BF16] {
                let kernel = matmul_kernel(location, dtype);
                assert_eq!(kernel, MatmulKernel::Candle, "{location:?} {dtype:?}");
            }
        }
    }

    #[test]
    fn the_candle_path_matches_the_definition_too() {
        // f64 on the CPU goes through candle, as every operand on a GPU does.
        let (a, b) = (values(&[2, 5, 4], 15), values(&[2, 4, 3], 16));
        let (a, b) = (
            a.to_dtype(DType::F64).unwrap(),
            b.to_dtype(DType::F64).unwrap(),
        );
        assert_eq!(
            matmul_kernel(a.device().location(), a.dtype()),
            MatmulKernel::Candle
        );
        check(
            &a,
            &b.transpose(1, 2)
                .unwrap()
                .contiguous()
                .unwrap()
                .t()
                .unwrap(),
        );
        // Mixed types are candle's to refuse, not read as f32 slices.
        assert!(matmul(&values(&[3, 4], 17), &b.get(0).unwrap()).is_err());
    }

    #[test]
    fn matmul_matches_the_definition_for_any_layout() {
        // Plain, and a transposed right-hand side (attention's q k^T).
        check(&values(&[7, 5], 1), &values(&[5, 3], 2));
        let k = values(&[2, 3, 6, 4], 3);
        check(&values(&[2, 3, 5, 4], 4), &k.t().unwrap());
        // A transposed left-hand side and batch axes of one.
        check(&values(&[1, 4, 6], 5).t().unwrap(), &values(&[1, 4, 2], 6));
        // A broadcast batch (stride 0) and a sliced batch (not evenly spaced).
        let shared = values(&[1, 5, 3], 7).broadcast_as((4, 5, 3)).unwrap();
        check(&values(&[4, 2, 5], 8), &shared);
        let sliced = values(&[3, 4, 5, 3], 9).narrow(1, 1, 2).unwrap();
        check(&values(&[3, 2, 6, 5], 10), &sliced);
        // Batch axes swapped (they no longer nest).
        let swapped = values(&[3, 2, 5, 4], 11).transpose(0, 1).unwrap();
        check(&swapped, &values(&[2, 3, 4, 2], 12));
        // A batch of products too large to run one per thread.
        let (m, k, n) = (130, 128, 130);
        assert!(m * k * n > SMALL_PRODUCT);
        check(&values(&[2, m, k], 13), &values(&[2, k, n], 14));
    }
}
