//! Loading GGUF files (Llama, Qwen 2, Qwen 3, Gemma, Gemma 2, as llama.cpp's converter
//! writes them): metadata, weights and the tokenizer.

use std::collections::HashMap;
use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use candle_core::quantized::gguf_file::{Content, Value};
use candle_core::quantized::{QMatMul, QTensor};
use candle_core::{Device, Tensor};

use super::linear::Linear;
use super::llama::{Llama, LlamaBlock, LlamaConfig};
use super::tokenizer::TextTokenizer;
use super::{gemma, gemma2, Architecture, ModelInfo, Network, SUPPORTED_ARCHITECTURES};
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
fn read_shape(meta: &Metadata, arch: &str, path: &Path) -> Result<GgufShape> {
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

/// Loads a GGUF file of a supported architecture (`general.architecture` llama, qwen2,
/// qwen3, gemma or gemma2).
pub(crate) fn load_gguf(
    path: &Path,
    device: &Device,
    quantized: bool,
) -> Result<(ModelInfo, TextTokenizer, Network)> {
    let (content, mut reader) = read_content(path)?;
    let meta = Metadata::new(path, &content);
    let arch = meta.string("general.architecture")?;
    let architecture = match arch {
        "llama" => Architecture::Llama,
        "qwen2" => Architecture::Qwen2,
        "qwen3" => Architecture::Qwen3,
        "gemma" => Architecture::Gemma,
        "gemma2" => Architecture::Gemma2,
        _ => {
            return Err(Error::UnsupportedArchitecture {
                path: path.into(),
                found: arch.to_string(),
                supported: SUPPORTED_ARCHITECTURES,
            })
        }
    };
    let mut shape = read_shape(&meta, arch, path)?;
    if shape.n_layers > content.tensor_infos.len() {
        return Err(Error::bad_model(
            path,
            format!(
                "metadata field `{arch}.block_count`: {} layers, but the file holds {} tensors",
                shape.n_layers,
                content.tensor_infos.len()
            ),
        ));
    }
    refuse_unused_tensors(path, &content, shape.n_layers, architecture)?;
    let mut loader = Loader {
        content: &content,
        reader: &mut reader,
        path,
        device,
        quantized,
    };
    let embed_q = loader.qtensor("token_embd.weight", None)?;
    let vocab = embed_q.shape().dims()[0];
    if embed_q.shape().dims() != [vocab, shape.hidden] {
        return Err(Error::bad_model(
            path,
            format!(
                "tensor `token_embd.weight` has shape {:?}, expected [vocab, {}]",
                embed_q.shape().dims(),
                shape.hidden
            ),
        ));
    }
    shape.vocab = vocab;
    let embed = embed_q.dequantize(device)?;
    let network = match architecture {
        Architecture::Gemma => Network::Gemma(gemma::from_gguf(&mut loader, &shape, embed, None)?),
        Architecture::Gemma2 => {
            let extra = gemma2::gguf_config(&meta, &shape)?;
            Network::Gemma(gemma::from_gguf(&mut loader, &shape, embed, Some(extra))?)
        }
        _ => Network::Llama(llama_from_gguf(&mut loader, &shape, architecture, embed)?),
    };
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
        architecture,
        n_layers: shape.n_layers,
        n_neurons: shape.ff,
        hidden_size: shape.hidden,
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
    Ok((info, tokenizer.with_bos(bos_id), network))
}

/// A Llama, Qwen 2 or Qwen 3 network from GGUF tensors. llama.cpp's converter permutes
/// the q/k rows of Llama only (for the interleaved RoPE); Qwen keeps Hugging Face's
/// layout (half rotation), writes Qwen 2's q/k/v biases as `attn_{q,k,v}.bias` and
/// Qwen 3's head norms as `attn_{q,k}_norm.weight`.
fn llama_from_gguf(
    loader: &mut Loader,
    shape: &GgufShape,
    architecture: Architecture,
    embed: Tensor,
) -> Result<Llama> {
    let s = shape;
    let mut config = LlamaConfig {
        hidden_size: s.hidden,
        intermediate_size: s.ff,
        n_layers: s.n_layers,
        n_heads: s.n_heads,
        n_kv_heads: s.n_kv_heads,
        head_dim: s.head_dim,
        rms_eps: s.rms_eps,
        rope_theta: s.rope_theta,
        rope_divisors: None,
        vocab_size: s.vocab,
        interleaved_rope: architecture == Architecture::Llama,
        windows: vec![None; s.n_layers],
    };
    // Llama 3.1 RoPE scaling: llama.cpp's converter stores one divisor per frequency.
    if loader.has(ROPE_FREQS) {
        let divisors = loader
            .vector(ROPE_FREQS, s.head_dim / 2)?
            .to_vec1::<f32>()?;
        if let Some(bad) = divisors.iter().find(|d| !(d.is_finite() && **d > 0.0)) {
            return Err(Error::bad_model(
                loader.path,
                format!("tensor `{ROPE_FREQS}` holds {bad}: RoPE divisors must be positive"),
            ));
        }
        config.rope_divisors = Some(divisors.into_iter().map(f64::from).collect());
    }
    let bias = architecture == Architecture::Qwen2;
    let qk_norm = architecture == Architecture::Qwen3;
    let (hidden, ff) = (s.hidden, s.ff);
    let (q_dim, kv) = (s.n_heads * s.head_dim, s.n_kv_heads * s.head_dim);
    let mut blocks = Vec::with_capacity(s.n_layers);
    for i in 0..s.n_layers {
        let p = |t: &str| format!("blk.{i}.{t}");
        let mut norm = |t: &str| -> Result<Option<Tensor>> {
            qk_norm
                .then(|| loader.vector(&p(t), s.head_dim))
                .transpose()
        };
        let (q_norm, k_norm) = (norm("attn_q_norm.weight")?, norm("attn_k_norm.weight")?);
        blocks.push(LlamaBlock {
            attn_norm: loader.vector(&p("attn_norm.weight"), hidden)?,
            q: loader.linear_bias(&p("attn_q"), q_dim, hidden, bias)?,
            k: loader.linear_bias(&p("attn_k"), kv, hidden, bias)?,
            v: loader.linear_bias(&p("attn_v"), kv, hidden, bias)?,
            o: loader.linear(&p("attn_output.weight"), hidden, q_dim)?,
            q_norm,
            k_norm,
            ffn_norm: loader.vector(&p("ffn_norm.weight"), hidden)?,
            gate: loader.linear(&p("ffn_gate.weight"), ff, hidden)?,
            up: loader.linear(&p("ffn_up.weight"), ff, hidden)?,
            down: loader.linear(&p("ffn_down.weight"), hidden, ff)?,
        });
    }
    let norm = loader.vector("output_norm.weight", hidden)?;
    let lm_head = loader.lm_head(&embed, s.vocab, hidden)?;
    Ok(Llama {
        config,
        embed,
        blocks,
        norm,
        lm_head,
        device: loader.device.clone(),
    })
}

/// GGUF's tensor of Llama 3.1 RoPE divisors.
const ROPE_FREQS: &str = "rope_freqs.weight";

/// The tensors a block of `architecture` may hold (llama.cpp's names).
fn block_tensors(architecture: Architecture) -> Vec<&'static str> {
    let mut names = vec![
        "attn_norm.weight",
        "attn_q.weight",
        "attn_k.weight",
        "attn_v.weight",
        "attn_output.weight",
        "ffn_norm.weight",
        "ffn_gate.weight",
        "ffn_up.weight",
        "ffn_down.weight",
    ];
    match architecture {
        Architecture::Qwen2 => names.extend(["attn_q.bias", "attn_k.bias", "attn_v.bias"]),
        Architecture::Qwen3 => names.extend(["attn_q_norm.weight", "attn_k_norm.weight"]),
        Architecture::Gemma2 => {
            names.extend(["post_attention_norm.weight", "post_ffw_norm.weight"])
        }
        _ => {}
    }
    names
}

/// The tensors a GGUF of `architecture` may hold: anything else (biases, experts,
/// extra norms) belongs to a variant this runtime does not implement, and ignoring it
/// would give other activations than the model's, so the file is refused naming the
/// tensor.
fn refuse_unused_tensors(
    path: &Path,
    content: &Content,
    n_layers: usize,
    architecture: Architecture,
) -> Result<()> {
    let block = block_tensors(architecture);
    let known = |name: &str| -> bool {
        if matches!(
            name,
            "token_embd.weight" | "output_norm.weight" | "output.weight"
        ) || (name == ROPE_FREQS && architecture == Architecture::Llama)
        {
            return true;
        }
        let Some(rest) = name.strip_prefix("blk.") else {
            return false;
        };
        let Some((layer, tensor)) = rest.split_once('.') else {
            return false;
        };
        layer.parse::<usize>().is_ok_and(|l| l < n_layers) && block.contains(&tensor)
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
            "{} tensor(s) that a plain {architecture} block does not have ({}{}): this {architecture} variant is not supported",
            unused.len(),
            shown.join(", "),
            if unused.len() > shown.len() { ", ..." } else { "" }
        ),
    ))
}

/// Reads named tensors of one GGUF file, checking their shapes.
pub(crate) struct Loader<'a> {
    content: &'a Content,
    reader: &'a mut BufReader<File>,
    pub path: &'a Path,
    pub device: &'a Device,
    quantized: bool,
}

impl Loader<'_> {
    /// Whether the file holds a tensor of that name.
    pub fn has(&self, name: &str) -> bool {
        self.content.tensor_infos.contains_key(name)
    }

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
