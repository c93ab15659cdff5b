//! Loading a GGUF file of a supported architecture (`general.architecture` llama,
//! qwen2, qwen3, gemma or gemma2): its model and tokenizer.

use std::path::Path;

use candle_core::quantized::gguf_file::Content;
use candle_core::{Device, Tensor};

use super::gguf::{file_stem, read_content, read_shape, GgufShape, Loader, Metadata};
use super::llama::{Llama, LlamaBlock, LlamaConfig};
use super::tokenizer::TextTokenizer;
use super::{gemma, gemma2, Architecture, ModelInfo, Network, SUPPORTED_ARCHITECTURES};
use crate::error::{Error, Result};

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
    let mut loader = Loader::new(&content, &mut reader, path, device, quantized);
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
