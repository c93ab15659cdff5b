//! Loading Hugging Face folders: `config.json`, `*.safetensors`, `tokenizer.json`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use serde_json::Value;

use super::gguf::file_stem;
use super::linear::Linear;
use super::llama::{Llama, LlamaBlock, LlamaConfig};
use super::tokenizer::TextTokenizer;
use super::{gpt2, gpt_neox, ops, Architecture, ModelInfo, Network, SUPPORTED_ARCHITECTURES};
use crate::error::{Error, Result};

/// A parsed `config.json` with field access that names the file and key on error.
pub(crate) struct HfConfig {
    path: PathBuf,
    value: Value,
}

impl HfConfig {
    fn read(path: PathBuf) -> Result<Self> {
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        let value: Value = serde_json::from_str(&text)
            .map_err(|e| Error::bad_model(&path, format!("not valid JSON: {e}")))?;
        if !value.is_object() {
            return Err(Error::bad_model(&path, "expected a JSON object"));
        }
        Ok(HfConfig { path, value })
    }

    /// A required unsigned integer field.
    pub fn usize(&self, key: &str) -> Result<usize> {
        self.opt_usize(key)?
            .ok_or_else(|| Error::bad_model(&self.path, format!("missing field `{key}`")))
    }

    /// An optional unsigned integer field (`null` counts as absent).
    pub fn opt_usize(&self, key: &str) -> Result<Option<usize>> {
        match self.value.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v.as_u64().map(|x| Some(x as usize)).ok_or_else(|| {
                Error::bad_model(
                    &self.path,
                    format!("field `{key}`: expected an unsigned integer, got {v}"),
                )
            }),
        }
    }

    /// An optional float field.
    pub fn opt_f64(&self, key: &str) -> Result<Option<f64>> {
        match self.value.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v.as_f64().map(Some).ok_or_else(|| {
                Error::bad_model(
                    &self.path,
                    format!("field `{key}`: expected a number, got {v}"),
                )
            }),
        }
    }

    /// An optional boolean field.
    pub fn opt_bool(&self, key: &str) -> Result<Option<bool>> {
        match self.value.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v.as_bool().map(Some).ok_or_else(|| {
                Error::bad_model(
                    &self.path,
                    format!("field `{key}`: expected true or false, got {v}"),
                )
            }),
        }
    }

    /// An optional string field.
    pub fn opt_str(&self, key: &str) -> Option<&str> {
        self.value.get(key).and_then(Value::as_str)
    }

    /// Whether the key is present and not null.
    pub fn has(&self, key: &str) -> bool {
        !matches!(self.value.get(key), None | Some(Value::Null))
    }

    /// An error about this config file.
    pub fn error(&self, message: impl Into<String>) -> Error {
        Error::bad_model(&self.path, message)
    }

    /// A token id field that may be an integer or a list of integers (first taken).
    fn token_id(&self, key: &str) -> Option<u32> {
        match self.value.get(key)? {
            Value::Number(n) => n.as_u64().map(|x| x as u32),
            Value::Array(a) => a.first()?.as_u64().map(|x| x as u32),
            _ => None,
        }
    }
}

/// The tensors of a folder's safetensors files, by name, as f32 on the device.
pub(crate) struct Weights {
    folder: PathBuf,
    tensors: HashMap<String, Tensor>,
    device: Device,
}

impl Weights {
    fn read(folder: &Path, device: &Device) -> Result<Self> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(folder)
            .map_err(|e| Error::io(folder, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "safetensors"))
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(Error::bad_model(
                folder,
                "no *.safetensors file in the folder",
            ));
        }
        let mut tensors = HashMap::new();
        for file in &files {
            let bytes = std::fs::read(file).map_err(|e| Error::io(file, e))?;
            let loaded =
                candle_core::safetensors::load_buffer(&bytes, &Device::Cpu).map_err(|e| {
                    Error::bad_model(file, format!("not a readable safetensors file: {e}"))
                })?;
            tensors.extend(loaded);
        }
        Ok(Weights {
            folder: folder.into(),
            tensors,
            device: device.clone(),
        })
    }

    /// Whether a tensor of that name exists.
    pub fn has(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    /// A tensor as f32, with its shape checked.
    pub fn get(&self, name: &str, shape: &[usize]) -> Result<Tensor> {
        let t = self.tensors.get(name).ok_or_else(|| {
            Error::bad_model(
                &self.folder,
                format!("missing tensor `{name}` in the safetensors files"),
            )
        })?;
        if t.dims() != shape {
            return Err(Error::bad_model(
                &self.folder,
                format!(
                    "tensor `{name}` has shape {:?}, expected {shape:?}",
                    t.dims()
                ),
            ));
        }
        ops::to_f32(t.clone(), &self.device)
    }

    /// A PyTorch `nn.Linear` (`{name}.weight` `[out, in]`, optional `{name}.bias`).
    pub fn linear(&self, name: &str, out: usize, inp: usize, bias: bool) -> Result<Linear> {
        let w = self.get(&format!("{name}.weight"), &[out, inp])?;
        let b = if bias {
            Some(self.get(&format!("{name}.bias"), &[out])?)
        } else {
            None
        };
        Linear::from_out_in(w, b)
    }

    /// A GPT-2 `Conv1D` (`{name}.weight` `[in, out]`, `{name}.bias`).
    pub fn conv1d(&self, name: &str, inp: usize, out: usize) -> Result<Linear> {
        let w = self.get(&format!("{name}.weight"), &[inp, out])?;
        let b = self.get(&format!("{name}.bias"), &[out])?;
        Linear::from_in_out(w, Some(b))
    }

    /// A LayerNorm's `(weight, bias)`.
    pub fn layer_norm(&self, name: &str, size: usize) -> Result<(Tensor, Tensor)> {
        Ok((
            self.get(&format!("{name}.weight"), &[size])?,
            self.get(&format!("{name}.bias"), &[size])?,
        ))
    }
}

/// Loads a Hugging Face model folder of a supported architecture.
pub(crate) fn load_folder(
    folder: &Path,
    device: &Device,
) -> Result<(ModelInfo, TextTokenizer, Network)> {
    let config_path = folder.join("config.json");
    if !config_path.exists() {
        return Err(Error::bad_model(
            folder,
            "not a model: expected a .gguf file or a folder with config.json",
        ));
    }
    let config = HfConfig::read(config_path)?;
    let model_type = config.opt_str("model_type").unwrap_or("").to_string();
    let architecture = match model_type.as_str() {
        "llama" => Architecture::Llama,
        "gpt2" => Architecture::Gpt2,
        "gpt_neox" => Architecture::GptNeox,
        other => {
            return Err(Error::UnsupportedArchitecture {
                path: folder.into(),
                found: if other.is_empty() {
                    "(no model_type)".into()
                } else {
                    other.into()
                },
                supported: SUPPORTED_ARCHITECTURES,
            })
        }
    };
    let weights = Weights::read(folder, device)?;
    let (network, n_layers, n_neurons, hidden, vocab) = match architecture {
        Architecture::Llama => {
            let net = load_llama(&config, &weights, device)?;
            let c = &net.config;
            let shape = (c.n_layers, c.intermediate_size, c.hidden_size, c.vocab_size);
            (Network::Llama(net), shape.0, shape.1, shape.2, shape.3)
        }
        Architecture::Gpt2 => {
            let net = gpt2::Gpt2::load(&config, &weights, device)?;
            let s = net.shape();
            (Network::Gpt2(net), s.0, s.1, s.2, s.3)
        }
        Architecture::GptNeox => {
            let net = gpt_neox::GptNeox::load(&config, &weights, device)?;
            let s = net.shape();
            (Network::GptNeox(net), s.0, s.1, s.2, s.3)
        }
    };
    let bos_id = config.token_id("bos_token_id");
    let tokenizer_path = folder.join("tokenizer.json");
    if !tokenizer_path.exists() {
        return Err(Error::bad_model(
            folder,
            "no tokenizer.json in the folder (pass --tokenizer PATH)",
        ));
    }
    let tokenizer = TextTokenizer::from_file(&tokenizer_path, bos_id)?;
    let info = ModelInfo {
        path: folder.into(),
        name: file_stem(folder),
        architecture,
        n_layers,
        n_neurons,
        hidden_size: hidden,
        vocab_size: vocab,
        bos_id,
        eos_id: config.token_id("eos_token_id"),
        pad_id: config.token_id("pad_token_id"),
        context_length: ["max_position_embeddings", "n_positions", "n_ctx"]
            .into_iter()
            .find_map(|k| config.opt_usize(k).ok().flatten()),
    };
    Ok((info, tokenizer, network))
}

/// The RoPE divisors of a Llama config's `rope_scaling`: none for plain RoPE, Llama 3.1
/// scaling (`rope_type = "llama3"`) supported, any other kind refused (it would give
/// other activations than the model's).
fn llama_rope_divisors(config: &HfConfig, head_dim: usize, theta: f64) -> Result<Option<Vec<f64>>> {
    let Some(scaling) = config.value.get("rope_scaling").filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let kind = scaling
        .get("rope_type")
        .or_else(|| scaling.get("type"))
        .and_then(Value::as_str)
        .unwrap_or("");
    match kind {
        "default" => Ok(None),
        "llama3" => {
            let field = |key: &str| {
                scaling.get(key).and_then(Value::as_f64).ok_or_else(|| {
                    config.error(format!(
                        "rope_scaling: missing or non-numeric field `{key}`"
                    ))
                })
            };
            Ok(Some(ops::llama3_rope_divisors(
                head_dim,
                theta,
                field("factor")?,
                field("low_freq_factor")?,
                field("high_freq_factor")?,
                field("original_max_position_embeddings")?,
            )))
        }
        other => Err(config.error(format!(
            "rope_scaling type `{other}` is not supported (supported: llama3)"
        ))),
    }
}

/// A Llama model from Hugging Face weights (q/k not permuted: half-rotation RoPE).
fn load_llama(config: &HfConfig, w: &Weights, device: &Device) -> Result<Llama> {
    if let Some(act) = config.opt_str("hidden_act") {
        if act != "silu" {
            return Err(config.error(format!(
                "hidden_act `{act}`: only silu is supported for llama"
            )));
        }
    }
    let hidden = config.usize("hidden_size")?;
    let n_heads = config.usize("num_attention_heads")?;
    let n_kv_heads = config.opt_usize("num_key_value_heads")?.unwrap_or(n_heads);
    let head_dim = config.opt_usize("head_dim")?.unwrap_or(hidden / n_heads);
    let rope_theta = config.opt_f64("rope_theta")?.unwrap_or(10_000.0);
    let ff = config.usize("intermediate_size")?;
    let n_layers = config.usize("num_hidden_layers")?;
    let vocab = config.usize("vocab_size")?;
    let bias = config.opt_bool("attention_bias")?.unwrap_or(false);
    let mlp_bias = config.opt_bool("mlp_bias")?.unwrap_or(false);
    let cfg = LlamaConfig {
        hidden_size: hidden,
        intermediate_size: ff,
        n_layers,
        n_heads,
        n_kv_heads,
        head_dim,
        rms_eps: config.opt_f64("rms_norm_eps")?.unwrap_or(1e-6),
        rope_theta,
        rope_divisors: llama_rope_divisors(config, head_dim, rope_theta)?,
        vocab_size: vocab,
        interleaved_rope: false,
    };
    let embed = w.get("model.embed_tokens.weight", &[vocab, hidden])?;
    let mut blocks = Vec::with_capacity(n_layers);
    for i in 0..n_layers {
        let p = |s: &str| format!("model.layers.{i}.{s}");
        blocks.push(LlamaBlock {
            attn_norm: w.get(&p("input_layernorm.weight"), &[hidden])?,
            q: w.linear(&p("self_attn.q_proj"), n_heads * head_dim, hidden, bias)?,
            k: w.linear(&p("self_attn.k_proj"), n_kv_heads * head_dim, hidden, bias)?,
            v: w.linear(&p("self_attn.v_proj"), n_kv_heads * head_dim, hidden, bias)?,
            o: w.linear(&p("self_attn.o_proj"), hidden, n_heads * head_dim, bias)?,
            ffn_norm: w.get(&p("post_attention_layernorm.weight"), &[hidden])?,
            gate: w.linear(&p("mlp.gate_proj"), ff, hidden, mlp_bias)?,
            up: w.linear(&p("mlp.up_proj"), ff, hidden, mlp_bias)?,
            down: w.linear(&p("mlp.down_proj"), hidden, ff, mlp_bias)?,
        });
    }
    let norm = w.get("model.norm.weight", &[hidden])?;
    let tied = config.opt_bool("tie_word_embeddings")?.unwrap_or(false) || !w.has("lm_head.weight");
    let lm_head = if tied {
        Linear::tied(&embed)?
    } else {
        w.linear("lm_head", vocab, hidden, false)?
    };
    Ok(Llama {
        config: cfg,
        embed,
        blocks,
        norm,
        lm_head,
        device: device.clone(),
    })
}
