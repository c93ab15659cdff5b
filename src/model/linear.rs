//! A linear layer that is dense f32 (weights stored transposed, `[in, out]`, for a
//! straight GEMM), dense in a 16-bit file dtype (bf16/f16, converted to f32 block by
//! block at each use), or a quantized GGUF matmul.

use candle_core::quantized::QMatMul;
use candle_core::{DType, Module, Tensor};

use super::ops::matmul;
use crate::error::Result;

/// `y = x W^T + b` over the last dimension of `x`.
#[derive(Debug, Clone)]
pub(crate) enum Linear {
    /// Dense weights, transposed to `[in, out]`, with an optional bias.
    Dense {
        /// `W^T`, `[in, out]`: contiguous, or a transposed view of a tied embedding.
        weight_t: Tensor,
        /// `[out]`.
        bias: Option<Tensor>,
    },
    /// Weights kept in their 16-bit file dtype, `[out, in]`: each use converts
    /// [`STORED_BLOCK`] elements at a time to f32 and multiplies in f32, so a model
    /// takes half the memory of its f32 copy and computes the same values.
    Stored {
        /// `W`, `[out, in]`, bf16 or f16.
        weight: Tensor,
        /// `[out]`, f32.
        bias: Option<Tensor>,
    },
    /// A quantized matmul (GGUF blocks kept as they are) with an optional f32 bias.
    Quantized {
        /// The quantized weight.
        matmul: QMatMul,
        /// `[out]`.
        bias: Option<Tensor>,
    },
}

/// Weight elements converted to f32 at a time by a [`Linear::Stored`] layer (64 MiB).
pub(crate) const STORED_BLOCK: usize = 16 << 20;

impl Linear {
    /// From a PyTorch-layout weight `[out, in]` in its file dtype: kept as it is when
    /// bf16 or f16 ([`Linear::Stored`]), else as dense f32.
    pub fn from_stored(weight: Tensor, bias: Option<Tensor>) -> Result<Self> {
        match weight.dtype() {
            DType::BF16 | DType::F16 => Ok(Linear::Stored { weight, bias }),
            _ => Self::from_out_in(weight.to_dtype(DType::F32)?, bias),
        }
    }

    /// From a PyTorch-layout weight `[out, in]`.
    pub fn from_out_in(weight: Tensor, bias: Option<Tensor>) -> Result<Self> {
        Ok(Linear::Dense {
            weight_t: weight.t()?.contiguous()?,
            bias,
        })
    }

    /// The LM head of tied embeddings: a transposed view of the `[vocab, hidden]`
    /// embedding matrix, sharing its memory (a transposed copy would take another
    /// 113 MB on SmolLM2, for a head that only next-token predictions use).
    /// A 16-bit embedding stays in its dtype ([`Linear::Stored`], sharing it too).
    pub fn tied(embedding: &Tensor) -> Result<Self> {
        if matches!(embedding.dtype(), DType::BF16 | DType::F16) {
            return Ok(Linear::Stored {
                weight: embedding.clone(),
                bias: None,
            });
        }
        Ok(Linear::Dense {
            weight_t: embedding.t()?,
            bias: None,
        })
    }

    /// From an already transposed weight `[in, out]` (GPT-2's Conv1D layout).
    pub fn from_in_out(weight_t: Tensor, bias: Option<Tensor>) -> Result<Self> {
        Ok(Linear::Dense {
            weight_t: weight_t.contiguous()?,
            bias,
        })
    }

    /// Applies the layer to `[..., in]`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            Linear::Dense { weight_t, bias } => {
                let dims = x.dims().to_vec();
                let last = *dims.last().expect("linear input has a last dimension");
                let rows = x.elem_count() / last;
                let y = matmul(&x.reshape((rows, last))?, weight_t)?;
                let mut out_dims = dims;
                *out_dims.last_mut().expect("non-empty") = y.dim(1)?;
                let y = y.reshape(out_dims)?;
                Ok(match bias {
                    Some(b) => y.broadcast_add(b)?,
                    None => y,
                })
            }
            Linear::Stored { weight, bias } => {
                let (out, inp) = weight.dims2()?;
                let dims = x.dims().to_vec();
                let rows = x.elem_count() / inp;
                let x2 = x.reshape((rows, inp))?;
                let step = (STORED_BLOCK / inp.max(1)).max(1);
                let mut parts = Vec::with_capacity(out.div_ceil(step));
                for start in (0..out).step_by(step) {
                    let n = step.min(out - start);
                    let w = weight.narrow(0, start, n)?.to_dtype(DType::F32)?;
                    parts.push(matmul(&x2, &w.t()?)?);
                }
                let y = if parts.len() == 1 {
                    parts.pop().expect("one part")
                } else {
                    Tensor::cat(&parts, 1)?
                };
                let mut out_dims = dims;
                *out_dims.last_mut().expect("non-empty") = out;
                let y = y.reshape(out_dims)?;
                Ok(match bias {
                    Some(b) => y.broadcast_add(b)?,
                    None => y,
                })
            }
            Linear::Quantized { matmul, bias } => {
                let y = matmul.forward(x)?;
                Ok(match bias {
                    Some(b) => y.broadcast_add(b)?,
                    None => y,
                })
            }
        }
    }

    /// Applies the layer to `[..., in]` for the outputs `columns` only (u32 indices), in
    /// their order: `forward(x)` restricted to those columns, at a fraction of the cost
    /// when few are asked for.
    pub fn forward_columns(&self, x: &Tensor, columns: Option<&Tensor>) -> Result<Tensor> {
        let Some(columns) = columns else {
            return self.forward(x);
        };
        match self {
            Linear::Dense { weight_t, bias } => {
                let picked = Linear::Dense {
                    weight_t: weight_t.index_select(columns, 1)?,
                    bias: bias
                        .as_ref()
                        .map(|b| b.index_select(columns, 0))
                        .transpose()?,
                };
                picked.forward(x)
            }
            Linear::Stored { weight, bias } => {
                let picked = Linear::Stored {
                    weight: weight.index_select(columns, 0)?,
                    bias: bias
                        .as_ref()
                        .map(|b| b.index_select(columns, 0))
                        .transpose()?,
                };
                picked.forward(x)
            }
            Linear::Quantized { .. } => {
                let y = self.forward(x)?;
                Ok(y.index_select(columns, y.rank() - 1)?)
            }
        }
    }
}
