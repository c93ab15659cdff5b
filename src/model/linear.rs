//! A linear layer that is either dense f32 (weights stored transposed, `[in, out]`,
//! for a straight GEMM) or a quantized GGUF matmul.

use candle_core::quantized::QMatMul;
use candle_core::{Module, Tensor};

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
    /// A quantized matmul (GGUF blocks kept as they are).
    Quantized(QMatMul),
}

impl Linear {
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
    pub fn tied(embedding: &Tensor) -> Result<Self> {
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
            Linear::Quantized(q) => Ok(q.forward(x)?),
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
            Linear::Quantized(_) => {
                let y = self.forward(x)?;
                Ok(y.index_select(columns, y.rank() - 1)?)
            }
        }
    }
}
