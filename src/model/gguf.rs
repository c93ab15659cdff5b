//! Reading GGUF files (as llama.cpp's converter writes them): the header checked
//! against the file's length, typed metadata, the transformer shape, and named tensors
//! checked against their shapes. The architectures read their weights through these;
//! `gguf_load` picks the architecture and builds the model and tokenizer.

use std::collections::HashMap;
use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use candle_core::quantized::gguf_file::{Content, Value};
use candle_core::quantized::{QMatMul, QTensor};
use candle_core::{Device, Tensor};

use super::linear::Linear;
use crate::error::{Error, Result};

/// Reads the GGUF header and metadata of `path`, refusing truncated files.
pub(crate) fn read_content(path: &Path) -> Result<(Content, BufReader<File>)> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let file_len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    let mut reader = BufReader::new(file);
    let content = Content::read(&mut reader)
        .map_err(|e| Error::bad_model(path, format!("not a readable GGUF file: {e}")))?;
    // Every tensor's data must lie inside the file: a truncated download is refused
    // here rather than half-read later.
    for (name, info) in &content.tensor_infos {
        let elems = info.shape.elem_count();
        let block = info.ggml_dtype.block_size();
        if elems % block != 0 {
            return Err(Error::bad_model(
                path,
                format!("tensor `{name}`: {elems} elements is not a multiple of the {block}-element block"),
            ));
        }
        let bytes = (elems / block * info.ggml_dtype.type_size()) as u64;
        let end = content.tensor_data_offset + info.offset + bytes;
        if end > file_len {
            return Err(Error::bad_model(
                path,
                format!(
                    "truncated file: tensor `{name}` ends at byte {end} but the file has {file_len} bytes"
                ),
            ));
        }
    }
    Ok((content, reader))
}

/// Typed access to GGUF metadata with errors naming the key.
pub(crate) struct Metadata<'a> {
    path: &'a Path,
    values: &'a HashMap<String, Value>,
}

impl<'a> Metadata<'a> {
    pub fn new(path: &'a Path, content: &'a Content) -> Self {
        Metadata {
            path,
            values: &content.metadata,
        }
    }

    fn get(&self, key: &str) -> Result<&'a Value> {
        self.values
            .get(key)
            .ok_or_else(|| Error::bad_model(self.path, format!("missing metadata field `{key}`")))
    }

    /// The file the metadata belongs to.
    pub fn path(&self) -> &Path {
        self.path
    }

    fn bad(&self, key: &str, e: impl std::fmt::Display) -> Error {
        Error::bad_model(self.path, format!("metadata field `{key}`: {e}"))
    }

    pub fn string(&self, key: &str) -> Result<&'a str> {
        self.get(key)?
            .to_string()
            .map(String::as_str)
            .map_err(|e| self.bad(key, e))
    }

    pub fn opt_string(&self, key: &str) -> Option<&'a str> {
        self.values
            .get(key)
            .and_then(|v| v.to_string().ok())
            .map(String::as_str)
    }

    pub fn usize(&self, key: &str) -> Result<usize> {
        let v = self.get(key)?;
        let n = match v {
            Value::U8(x) => *x as u64,
            Value::U16(x) => *x as u64,
            Value::U32(x) => *x as u64,
            Value::U64(x) => *x,
            Value::I32(x) if *x >= 0 => *x as u64,
            Value::I64(x) if *x >= 0 => *x as u64,
            other => {
                return Err(self.bad(key, format!("expected an unsigned integer, got {other:?}")))
            }
        };
        Ok(n as usize)
    }

    pub fn opt_usize(&self, key: &str) -> Result<Option<usize>> {
        if self.values.contains_key(key) {
            self.usize(key).map(Some)
        } else {
            Ok(None)
        }
    }

    pub fn f64(&self, key: &str) -> Result<f64> {
        match self.get(key)? {
            Value::F32(x) => Ok(*x as f64),
            Value::F64(x) => Ok(*x),
            other => Err(self.bad(key, format!("expected a float, got {other:?}"))),
        }
    }

    pub fn opt_f64(&self, key: &str) -> Result<Option<f64>> {
        if self.values.contains_key(key) {
            self.f64(key).map(Some)
        } else {
            Ok(None)
        }
    }

    pub fn strings(&self, key: &str) -> Result<Vec<&'a str>> {
        let arr = self.get(key)?.to_vec().map_err(|e| self.bad(key, e))?;
        arr.iter()
            .map(|v| {
                v.to_string()
                    .map(String::as_str)
                    .map_err(|e| self.bad(key, e))
            })
            .collect()
    }

    pub fn opt_bool(&self, key: &str) -> Result<Option<bool>> {
        match self.values.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(self.bad(key, format!("expected true or false, got {other:?}"))),
        }
    }

    pub fn floats(&self, key: &str) -> Result<Vec<f64>> {
        let arr = self.get(key)?.to_vec().map_err(|e| self.bad(key, e))?;
        arr.iter()
            .map(|v| match v {
                Value::F32(x) => Ok(*x as f64),
                Value::F64(x) => Ok(*x),
                other => Err(self.bad(key, format!("expected floats, got {other:?}"))),
            })
            .collect()
    }

    pub fn opt_ints(&self, key: &str) -> Result<Option<Vec<i64>>> {
        let Some(v) = self.values.get(key) else {
            return Ok(None);
        };
        let arr = v.to_vec().map_err(|e| self.bad(key, e))?;
        arr.iter()
            .map(|v| match v {
                Value::I32(x) => Ok(*x as i64),
                Value::U32(x) => Ok(*x as i64),
                Value::I8(x) => Ok(*x as i64),
                Value::U8(x) => Ok(*x as i64),
                other => Err(self.bad(key, format!("expected integers, got {other:?}"))),
            })
            .collect::<Result<Vec<_>>>()
            .map(Some)
    }
}

/// The transformer shape a GGUF file declares under its `{arch}.` keys.
#[derive(Clone, Debug)]
pub(crate) struct GgufShape {
    pub hidden: usize,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub head_dim: usize,
    pub ff: usize,
    pub n_layers: usize,
    pub rms_eps: f64,
    pub rope_theta: f64,
    pub vocab: usize,
}

/// Reads the `{arch}.*` shape keys, refusing what the runtime does not implement
/// (partial rotary, value heads of another size, RoPE scaling).
pub(crate) fn read_shape(meta: &Metadata, arch: &str, path: &Path) -> Result<GgufShape> {
    let key = |k: &str| format!("{arch}.{k}");
    let bad = |m: String| Err(Error::bad_model(path, m));
    // Sizes must be at least 1 (a zero would divide by zero below and in the blocks).
    let opt_size = |k: &str| -> Result<Option<usize>> {
        match meta.opt_usize(&key(k))? {
            Some(0) => Err(Error::bad_model(
                path,
                format!("metadata field `{}`: must be at least 1", key(k)),
            )),
            v => Ok(v),
        }
    };
    let size = |k: &str| -> Result<usize> {
        opt_size(k)?
            .ok_or_else(|| Error::bad_model(path, format!("missing metadata field `{}`", key(k))))
    };
    let hidden = size("embedding_length")?;
    let n_heads = size("attention.head_count")?;
    let n_kv_heads = opt_size("attention.head_count_kv")?.unwrap_or(n_heads);
    // The head size is hidden / heads unless the file says otherwise (key_length).
    let head_dim = opt_size("attention.key_length")?.unwrap_or(hidden / n_heads);
    if let Some(v) = meta.opt_usize(&key("attention.value_length"))? {
        if v != head_dim {
            return bad(format!(
                "{arch}.attention.value_length = {v} differs from the key length {head_dim}: not supported"
            ));
        }
    }
    if let Some(rot) = meta.opt_usize(&key("rope.dimension_count"))? {
        if rot != head_dim {
            return bad(format!(
                "{arch}.rope.dimension_count = {rot} but head size is {head_dim}: partial rotary is not supported for {arch}"
            ));
        }
    }
    if meta
        .opt_string(&key("rope.scaling.type"))
        .is_some_and(|s| s != "none")
    {
        return bad(format!(
            "rope scaling ({arch}.rope.scaling.type) is not supported"
        ));
    }
    Ok(GgufShape {
        hidden,
        n_heads,
        n_kv_heads,
        head_dim,
        ff: size("feed_forward_length")?,
        n_layers: size("block_count")?,
        rms_eps: meta.f64(&key("attention.layer_norm_rms_epsilon"))?,
        rope_theta: meta.opt_f64(&key("rope.freq_base"))?.unwrap_or(10_000.0),
        vocab: 0,
    })
}

/// Reads named tensors of one GGUF file, checking their shapes.
pub(crate) struct Loader<'a> {
    content: &'a Content,
    reader: &'a mut BufReader<File>,
    pub path: &'a Path,
    pub device: &'a Device,
    quantized: bool,
}

impl<'a> Loader<'a> {
    /// A loader of the tensors of the GGUF file `path` (its `content` read by
    /// [`read_content`], `reader` positioned anywhere), dequantized to f32 unless
    /// `quantized`.
    pub(crate) fn new(
        content: &'a Content,
        reader: &'a mut BufReader<File>,
        path: &'a Path,
        device: &'a Device,
        quantized: bool,
    ) -> Self {
        Loader {
            content,
            reader,
            path,
            device,
            quantized,
        }
    }

    /// Whether the file holds a tensor of that name.
    pub fn has(&self, name: &str) -> bool {
        self.content.tensor_infos.contains_key(name)
    }

    pub(crate) fn qtensor(&mut self, name: &str, shape: Option<&[usize]>) -> Result<QTensor> {
        let t = self
            .content
            .tensor(self.reader, name, self.device)
            .map_err(|e| Error::bad_model(self.path, format!("tensor `{name}`: {e}")))?;
        if let Some(expect) = shape {
            if t.shape().dims() != expect {
                return Err(Error::bad_model(
                    self.path,
                    format!(
                        "tensor `{name}` has shape {:?}, expected {expect:?}",
                        t.shape().dims()
                    ),
                ));
            }
        }
        Ok(t)
    }

    /// A `[rows, cols]` (out, in) weight as a linear layer.
    pub fn linear(&mut self, name: &str, rows: usize, cols: usize) -> Result<Linear> {
        self.with_bias(name, None, rows, cols)
    }

    /// `{prefix}.weight` `[rows, cols]` and, when `bias`, `{prefix}.bias` `[rows]`.
    pub fn linear_bias(
        &mut self,
        prefix: &str,
        rows: usize,
        cols: usize,
        bias: bool,
    ) -> Result<Linear> {
        let b = bias
            .then(|| self.vector(&format!("{prefix}.bias"), rows))
            .transpose()?;
        self.with_bias(&format!("{prefix}.weight"), b, rows, cols)
    }

    fn with_bias(
        &mut self,
        name: &str,
        bias: Option<Tensor>,
        rows: usize,
        cols: usize,
    ) -> Result<Linear> {
        let q = self.qtensor(name, Some(&[rows, cols]))?;
        if self.quantized {
            Ok(Linear::Quantized {
                matmul: QMatMul::from_qtensor(q)?,
                bias,
            })
        } else {
            Linear::from_out_in(q.dequantize(self.device)?, bias)
        }
    }

    /// The LM head: `output.weight`, else the embedding matrix (tied).
    pub fn lm_head(&mut self, embed: &Tensor, vocab: usize, hidden: usize) -> Result<Linear> {
        if self.has("output.weight") {
            self.linear("output.weight", vocab, hidden)
        } else {
            Linear::tied(embed)
        }
    }

    /// A 1-D f32 weight (norm scale, bias).
    pub fn vector(&mut self, name: &str, len: usize) -> Result<Tensor> {
        Ok(self.qtensor(name, Some(&[len]))?.dequantize(self.device)?)
    }
}

/// The file name without extension.
pub(crate) fn file_stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}
