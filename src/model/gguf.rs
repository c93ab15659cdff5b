//! Loading Llama-family GGUF files: metadata, weights and the tokenizer.

use std::collections::HashMap;
use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use candle_core::quantized::gguf_file::{Content, Value};
use candle_core::quantized::{QMatMul, QTensor};
use candle_core::Device;

use super::linear::Linear;
use super::llama::{Llama, LlamaBlock, LlamaConfig};
use super::tokenizer::TextTokenizer;
use super::{Architecture, ModelInfo, SUPPORTED_ARCHITECTURES};
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

/// Loads a Llama-family GGUF file.
pub(crate) fn load_gguf(
    path: &Path,
    device: &Device,
    quantized: bool,
) -> Result<(ModelInfo, TextTokenizer, Llama)> {
    let (content, mut reader) = read_content(path)?;
    let meta = Metadata::new(path, &content);
    let arch = meta.string("general.architecture")?;
    if arch != "llama" {
        return Err(Error::UnsupportedArchitecture {
            path: path.into(),
            found: arch.to_string(),
            supported: SUPPORTED_ARCHITECTURES,
        });
    }
    let hidden = meta.usize("llama.embedding_length")?;
    let n_heads = meta.usize("llama.attention.head_count")?;
    let n_kv_heads = meta
        .opt_usize("llama.attention.head_count_kv")?
        .unwrap_or(n_heads);
    // The head size is hidden / heads unless the file says otherwise (key_length).
    let head_dim = meta
        .opt_usize("llama.attention.key_length")?
        .unwrap_or(hidden / n_heads);
    if let Some(v) = meta.opt_usize("llama.attention.value_length")? {
        if v != head_dim {
            return Err(Error::bad_model(
                path,
                format!("llama.attention.value_length = {v} differs from the key length {head_dim}: not supported"),
            ));
        }
    }
    if let Some(rot) = meta.opt_usize("llama.rope.dimension_count")? {
        if rot != head_dim {
            return Err(Error::bad_model(
                path,
                format!("llama.rope.dimension_count = {rot} but head size is {head_dim}: partial rotary is not supported for llama"),
            ));
        }
    }
    if meta
        .opt_string("llama.rope.scaling.type")
        .is_some_and(|s| s != "none")
    {
        return Err(Error::bad_model(
            path,
            "rope scaling (llama.rope.scaling.type) is not supported",
        ));
    }
    let n_layers = meta.usize("llama.block_count")?;
    refuse_unused_tensors(path, &content, n_layers)?;
    let rope_theta = if meta.values.contains_key("llama.rope.freq_base") {
        meta.f64("llama.rope.freq_base")?
    } else {
        10_000.0
    };
    let mut config = LlamaConfig {
        hidden_size: hidden,
        intermediate_size: meta.usize("llama.feed_forward_length")?,
        n_layers,
        n_heads,
        n_kv_heads,
        head_dim,
        rms_eps: meta.f64("llama.attention.layer_norm_rms_epsilon")?,
        rope_theta,
        rope_divisors: None,
        vocab_size: 0,
        interleaved_rope: true,
    };

    let mut loader = Loader {
        content: &content,
        reader: &mut reader,
        path,
        device,
        quantized,
    };
    let embed_q = loader.qtensor("token_embd.weight", None)?;
    let vocab = embed_q.shape().dims()[0];
    if embed_q.shape().dims() != [vocab, hidden] {
        return Err(Error::bad_model(
            path,
            format!(
                "tensor `token_embd.weight` has shape {:?}, expected [vocab, {hidden}]",
                embed_q.shape().dims()
            ),
        ));
    }
    let embed = embed_q.dequantize(device)?;
    // Llama 3.1 RoPE scaling: llama.cpp's converter stores one divisor per frequency.
    if content.tensor_infos.contains_key(ROPE_FREQS) {
        let divisors = loader.vector(ROPE_FREQS, head_dim / 2)?.to_vec1::<f32>()?;
        if let Some(bad) = divisors.iter().find(|d| !(d.is_finite() && **d > 0.0)) {
            return Err(Error::bad_model(
                path,
                format!("tensor `{ROPE_FREQS}` holds {bad}: RoPE divisors must be positive"),
            ));
        }
        config.rope_divisors = Some(divisors.into_iter().map(f64::from).collect());
    }
    let mut blocks = Vec::with_capacity(n_layers);
    let ff = config.intermediate_size;
    let q_dim = n_heads * head_dim;
    let kv = n_kv_heads * head_dim;
    for i in 0..n_layers {
        let p = |s: &str| format!("blk.{i}.{s}.weight");
        blocks.push(LlamaBlock {
            attn_norm: loader.vector(&p("attn_norm"), hidden)?,
            q: loader.linear(&p("attn_q"), q_dim, hidden)?,
            k: loader.linear(&p("attn_k"), kv, hidden)?,
            v: loader.linear(&p("attn_v"), kv, hidden)?,
            o: loader.linear(&p("attn_output"), hidden, q_dim)?,
            ffn_norm: loader.vector(&p("ffn_norm"), hidden)?,
            gate: loader.linear(&p("ffn_gate"), ff, hidden)?,
            up: loader.linear(&p("ffn_up"), ff, hidden)?,
            down: loader.linear(&p("ffn_down"), hidden, ff)?,
        });
    }
    let norm = loader.vector("output_norm.weight", hidden)?;
    let lm_head = if content.tensor_infos.contains_key("output.weight") {
        loader.linear("output.weight", vocab, hidden)?
    } else {
        // Tied embeddings (SmolLM2): the LM head is the embedding matrix.
        Linear::tied(&embed)?
    };
    let meta = Metadata::new(path, &content);
    let tokenizer = TextTokenizer::from_gguf_metadata(&meta, path)?;
    let bos_id = meta
        .opt_usize("tokenizer.ggml.bos_token_id")?
        .map(|x| x as u32);
    let info = ModelInfo {
        path: path.into(),
        name: meta
            .opt_string("general.name")
            .map(str::to_string)
            .unwrap_or_else(|| file_stem(path)),
        architecture: Architecture::Llama,
        n_layers,
        n_neurons: ff,
        hidden_size: hidden,
        vocab_size: vocab,
        bos_id,
        eos_id: meta
            .opt_usize("tokenizer.ggml.eos_token_id")?
            .map(|x| x as u32),
        pad_id: meta
            .opt_usize("tokenizer.ggml.padding_token_id")?
            .map(|x| x as u32),
        context_length: meta.opt_usize("llama.context_length").ok().flatten(),
    };
    config.vocab_size = vocab;
    let tokenizer = tokenizer.with_bos(bos_id);
    Ok((
        info,
        tokenizer,
        Llama {
            config,
            embed,
            blocks,
            norm,
            lm_head,
            device: device.clone(),
        },
    ))
}

/// GGUF's tensor of Llama 3.1 RoPE divisors.
const ROPE_FREQS: &str = "rope_freqs.weight";

/// The tensors a Llama GGUF may hold: anything else (biases, experts, extra norms)
/// belongs to a variant this runtime does not implement, and ignoring it would give
/// other activations than the model's, so the file is refused naming the tensor.
fn refuse_unused_tensors(path: &Path, content: &Content, n_layers: usize) -> Result<()> {
    const BLOCK: [&str; 9] = [
        "attn_norm",
        "attn_q",
        "attn_k",
        "attn_v",
        "attn_output",
        "ffn_norm",
        "ffn_gate",
        "ffn_up",
        "ffn_down",
    ];
    let known = |name: &str| -> bool {
        if matches!(
            name,
            "token_embd.weight" | "output_norm.weight" | "output.weight" | ROPE_FREQS
        ) {
            return true;
        }
        let Some(rest) = name.strip_prefix("blk.") else {
            return false;
        };
        let Some((layer, tensor)) = rest.split_once('.') else {
            return false;
        };
        layer.parse::<usize>().is_ok_and(|l| l < n_layers)
            && tensor
                .strip_suffix(".weight")
                .is_some_and(|t| BLOCK.contains(&t))
    };
    let mut unused: Vec<&str> = content
        .tensor_infos
        .keys()
        .map(String::as_str)
        .filter(|n| !known(n))
        .collect();
    if unused.is_empty() {
        return Ok(());
    }
    unused.sort_unstable();
    let shown: Vec<&str> = unused.iter().take(5).copied().collect();
    Err(Error::bad_model(
        path,
        format!(
            "{} tensor(s) that a plain Llama block does not have ({}{}): this Llama variant is not supported",
            unused.len(),
            shown.join(", "),
            if unused.len() > shown.len() { ", ..." } else { "" }
        ),
    ))
}

/// Reads named tensors of one GGUF file, checking their shapes.
struct Loader<'a> {
    content: &'a Content,
    reader: &'a mut BufReader<File>,
    path: &'a Path,
    device: &'a Device,
    quantized: bool,
}

impl Loader<'_> {
    fn qtensor(&mut self, name: &str, shape: Option<&[usize]>) -> Result<QTensor> {
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
    fn linear(&mut self, name: &str, rows: usize, cols: usize) -> Result<Linear> {
        let q = self.qtensor(name, Some(&[rows, cols]))?;
        if self.quantized {
            Ok(Linear::Quantized(QMatMul::from_qtensor(q)?))
        } else {
            Linear::from_out_in(q.dequantize(self.device)?, None)
        }
    }

    /// A 1-D f32 weight (norm scale).
    fn vector(&mut self, name: &str, len: usize) -> Result<candle_core::Tensor> {
        Ok(self.qtensor(name, Some(&[len]))?.dequantize(self.device)?)
    }
}

/// The file name without extension.
pub(crate) fn file_stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}
