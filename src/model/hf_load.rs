//! Loading a Hugging Face folder (`config.json`, `*.safetensors`, `tokenizer.json`) of a
//! supported architecture: its model and tokenizer.

use std::path::Path;

use candle_core::Device;

use super::gguf::file_stem;
use super::hf::{HfConfig, Weights};
use super::llama::Llama;
use super::tokenizer::TextTokenizer;
use super::{gemma, gemma2, gpt2, gpt_neox, mistral, qwen2, qwen3};
use super::{Architecture, ModelInfo, Network, SUPPORTED_ARCHITECTURES};
use crate::error::{Error, Result};

/// The config fields counting layers: each is at most the checkpoint's tensor count.
const LAYER_FIELDS: [&str; 2] = ["num_hidden_layers", "n_layer"];

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
        "mistral" => Architecture::Mistral,
        "gemma" => Architecture::Gemma,
        "gemma2" => Architecture::Gemma2,
        "qwen2" => Architecture::Qwen2,
        "qwen3" => Architecture::Qwen3,
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
    for key in LAYER_FIELDS {
        if let Some(n) = config
            .opt_usize(key)?
            .filter(|&n| n > weights.tensor_count())
        {
            return Err(config.error(format!(
                "field `{key}`: {n} layers, but the checkpoint holds {} tensors",
                weights.tensor_count()
            )));
        }
    }
    let network = match architecture {
        Architecture::Llama => Network::Llama(Llama::from_hf(&config, &weights, device)?),
        Architecture::Mistral => Network::Llama(mistral::load(&config, &weights, device)?),
        Architecture::Qwen2 => Network::Llama(qwen2::load(&config, &weights, device)?),
        Architecture::Qwen3 => Network::Llama(qwen3::load(&config, &weights, device)?),
        Architecture::Gemma => Network::Gemma(gemma::load(&config, &weights, device)?),
        Architecture::Gemma2 => Network::Gemma(gemma2::load(&config, &weights, device)?),
        Architecture::Gpt2 => Network::Gpt2(gpt2::Gpt2::load(&config, &weights, device)?),
        Architecture::GptNeox => {
            Network::GptNeox(gpt_neox::GptNeox::load(&config, &weights, device)?)
        }
    };
    drop(weights);
    let (n_layers, n_neurons, hidden, vocab) = network.shape();
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
