//! The model runtime: loads a transformer and reads its MLP neuron activations.
//!
//! A neuron's activation is the MLP hidden value after the non-linearity, i.e. the input
//! of the down/out projection (TransformerLens `mlp.hook_post`):
//! `silu(gate(x)) * up(x)` for Llama, Mistral, Qwen 2 and Qwen 3,
//! `gelu_tanh(gate(x)) * up(x)` for Gemma and Gemma 2, `gelu_new(c_fc(x))` for GPT-2 and
//! `gelu(dense_h_to_4h(x))` for GPT-NeoX.
//!
//! Other values of a block can be read at the hook points TransformerLens names
//! ([`Hook`], [`Model::hook_activations`]): the residual stream entering the block
//! (`hook_resid_pre`), after the attention add (`hook_resid_mid`; GPT-NeoX's parallel
//! residual has none) and leaving it (`hook_resid_post`), the attention and MLP outputs
//! before their residual adds (`hook_attn_out`, `hook_mlp_out`, with the output
//! projection's bias and, for Gemma 2, after the post-norm), and the MLP's input after
//! its norm's normalization but before the norm's learned scale and bias
//! (`ln2.hook_normalized`: `x / rms(x)` for an RMSNorm, `(x - mean) / std` for a
//! LayerNorm, what TransformerLens gives with its default weight folding; GPT-NeoX's
//! parallel residual normalizes the block input).
//!
//! Supported inputs: GGUF files of the Llama (the default SmolLM2-135M-Instruct), Gemma,
//! Gemma 2, Qwen 2 and Qwen 3 families, and Hugging Face folders (`config.json`, `*.safetensors` or shards listed by
//! `model.safetensors.index.json`, `tokenizer.json`) of the architectures in
//! [`SUPPORTED_ARCHITECTURES`]. Weights stored as bf16 or f16 stay so in memory and
//! are computed with in f32. A forward pass runs only up to the highest requested
//! layer (and within it, up to the requested hook) and never computes the LM head
//! unless asked.

mod allocator;
mod device;
mod gemma;
mod gemma2;
mod gguf;
mod gguf_load;
mod gpt2;
mod gpt_neox;
mod hf;
mod hf_load;
mod hook;
mod linear;
mod llama;
mod mistral;
mod ops;
mod picks;
mod prefix;
mod qwen2;
mod qwen3;
mod sae;
mod safetensors;
mod tokenizer;
mod units;

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};

use crate::error::{Error, Result};
pub use allocator::keep_freed_memory;
pub use device::DeviceSpec;
pub use hook::{Hook, HookPoint};
pub(crate) use ops::top_k;
pub use picks::LayerPick;
pub use prefix::{PackedRow, PrefixPacking};
pub use sae::{InputNormalization, Sae, SaeArchitecture, SaeFormat, SaeInfo};
pub use tokenizer::{TextTokenizer, TokenizedText};
pub use units::{UnitKind, UnitSet};

/// The path (relative to the repository root) where `scripts/setup` puts the default model.
pub const DEFAULT_MODEL_PATH: &str = "data/models/SmolLM2-135M-Instruct.Q4_1.gguf";

/// Architectures the runtime can run, as named in a Hugging Face `config.json`.
pub const SUPPORTED_ARCHITECTURES: &str = "llama, gemma, gemma2, qwen2, qwen3 \
     (GGUF file or Hugging Face folder), mistral, gpt2, gpt_neox (Hugging Face folders)";

/// A transformer architecture.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Architecture {
    /// Llama family (gated SwiGLU MLP, RMSNorm, RoPE).
    Llama,
    /// GPT-2 (GELU MLP, LayerNorm, learned positions).
    Gpt2,
    /// GPT-NeoX / Pythia (GELU MLP, LayerNorm, partial RoPE, parallel residual).
    GptNeox,
    /// Mistral (Llama with a sliding window).
    Mistral,
    /// Gemma (GELU-tanh gated MLP, `1 + w` RMSNorm, scaled embeddings).
    Gemma,
    /// Gemma 2 (Gemma with sandwich norms, soft-capping, alternating sliding window).
    Gemma2,
    /// Qwen 2 and 2.5 (Llama with q/k/v biases).
    Qwen2,
    /// Qwen 3 (Llama with per-head q/k RMSNorm).
    Qwen3,
}

impl std::fmt::Display for Architecture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Architecture::Llama => "llama",
            Architecture::Gpt2 => "gpt2",
            Architecture::GptNeox => "gpt_neox",
            Architecture::Mistral => "mistral",
            Architecture::Gemma => "gemma",
            Architecture::Gemma2 => "gemma2",
            Architecture::Qwen2 => "qwen2",
            Architecture::Qwen3 => "qwen3",
        })
    }
}

/// How to load a model.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// The device to run on.
    pub device: DeviceSpec,
    /// Keep GGUF weights quantized and use quantized matmuls (less memory; slower on x86
    /// CPUs with candle 0.11 and not exact). Default: dequantize to f32 at load.
    pub quantized: bool,
    /// A `tokenizer.json` to use instead of the model's own tokenizer.
    pub tokenizer: Option<PathBuf>,
    /// Tokenize special tokens written in a text (`<|im_start|>`) as their characters
    /// rather than as their one id (see [`TextTokenizer::with_literal_special`]).
    /// Default: false, as the model's reference tokenizer does.
    pub literal_special: bool,
    /// An SAE (folder or file, see [`Sae::load`]) whose latents become the model's
    /// units ([`Model::with_sae`]).
    pub sae: Option<PathBuf>,
    /// The SAE's hook point when its file does not name it (Gemma Scope).
    pub hook: Option<Hook>,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            device: DeviceSpec::Cpu,
            quantized: false,
            tokenizer: None,
            literal_special: false,
            sae: None,
            hook: None,
        }
    }
}

/// What a loaded model is: shape, special tokens, where it came from.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct ModelInfo {
    /// The model file or folder.
    pub path: PathBuf,
    /// A readable name (file stem or `general.name`).
    pub name: String,
    /// The architecture.
    pub architecture: Architecture,
    /// Number of transformer blocks.
    pub n_layers: usize,
    /// MLP neurons per layer.
    pub n_neurons: usize,
    /// Residual stream width.
    pub hidden_size: usize,
    /// Vocabulary size of the embedding matrix.
    pub vocab_size: usize,
    /// The beginning-of-sequence token prepended by default, if the model has one.
    pub bos_id: Option<u32>,
    /// The end-of-sequence token.
    pub eos_id: Option<u32>,
    /// The padding token declared by the model, if any.
    pub pad_id: Option<u32>,
    /// The longest sequence (tokens) the model reads in one pass, when its file says.
    pub context_length: Option<usize>,
}

/// The activations of one layer for a batch, `[batch, seq_len, n_neurons]` row-major.
///
/// Sequences shorter than `seq_len` were right-padded; positions at or past
/// `lengths[b]` hold the padded values and must be ignored.
#[derive(Clone, Debug)]
pub struct LayerActivations {
    /// The layer.
    pub layer: usize,
    /// Number of sequences.
    pub batch: usize,
    /// Padded sequence length.
    pub seq_len: usize,
    /// Neurons per position (those asked for, when a pass computed only some).
    pub n_neurons: usize,
    /// Real length of each sequence.
    pub lengths: Vec<usize>,
    /// The values, `[batch, seq_len, n_neurons]`.
    pub data: Vec<f32>,
}

impl LayerActivations {
    /// All neurons at position `t` of sequence `b`.
    pub fn at(&self, b: usize, t: usize) -> &[f32] {
        let start = (b * self.seq_len + t) * self.n_neurons;
        &self.data[start..start + self.n_neurons]
    }

    /// One neuron's activation at position `t` of sequence `b`.
    pub fn get(&self, b: usize, t: usize, neuron: usize) -> f32 {
        self.data[(b * self.seq_len + t) * self.n_neurons + neuron]
    }
}

/// The most likely next tokens at one position, as `(token id, logit)`, best first.
pub type NextTokens = Vec<(u32, f32)>;

/// A loaded model: network, tokenizer and device.
pub struct Model {
    info: ModelInfo,
    tokenizer: TextTokenizer,
    network: Network,
    device: Device,
    /// An SAE whose latents are the units (see [`Model::with_sae`]).
    sae: Option<Sae>,
}

/// The per-architecture networks (Mistral and Qwen run as Llama variants, Gemma 2 as
/// a Gemma variant).
enum Network {
    Llama(llama::Llama),
    Gemma(gemma::Gemma),
    Gpt2(gpt2::Gpt2),
    GptNeox(gpt_neox::GptNeox),
}

impl Network {
    /// `(layers, neurons per layer, hidden size, vocabulary)`.
    fn shape(&self) -> (usize, usize, usize, usize) {
        match self {
            Network::Llama(n) => n.shape(),
            Network::Gemma(n) => n.shape(),
            Network::Gpt2(n) => n.shape(),
            Network::GptNeox(n) => n.shape(),
        }
    }
}

/// What one forward pass should produce.
pub(crate) struct ForwardRequest<'a> {
    /// Layers whose hook values are kept (sorted, deduplicated).
    pub layers: &'a [usize],
    /// Which value of each requested layer is kept (the MLP neurons by default); the
    /// pass stops as soon as the last requested layer's hook is computed.
    pub hook: HookPoint,
    /// Also run the final norm and LM head.
    pub logits: bool,
    /// Prefix-tree rows instead of plain causal sequences.
    pub tree: Option<&'a TreeLayout>,
    /// Only these neurons (u32 indices, in this order) of the last layer: the pass
    /// computes just their rows of the MLP input projection(s); layers below the last
    /// are computed whole. Set only with no logits and the `MlpPost` hook.
    pub neurons: Option<&'a Tensor>,
}

/// Where the tokens of prefix-tree rows sit and what they may attend to.
pub(crate) struct TreeLayout {
    /// `[b * t]` u32: each token's position in its own sequence.
    pub positions: Tensor,
    /// `[b, 1, t, t]` additive mask: 0 where a token sees an ancestor or itself.
    pub mask: Tensor,
    /// The largest position.
    pub max_position: usize,
}

/// What one forward pass produced.
pub(crate) struct ForwardOutput {
    /// One `[batch, seq, width]` tensor (the hook's value) per requested layer, in
    /// request order.
    pub activations: Vec<Tensor>,
    /// `[batch, seq, vocab]` when asked for.
    pub logits: Option<Tensor>,
}

impl Model {
    /// Loads a GGUF file or a Hugging Face folder.
    pub fn load(path: impl AsRef<Path>, options: &LoadOptions) -> Result<Model> {
        let path = path.as_ref();
        let device = options.device.open()?;
        if !path.exists() {
            return Err(Error::io(
                path,
                std::io::Error::new(std::io::ErrorKind::NotFound, "no such file or folder"),
            ));
        }
        let (info, mut tokenizer, network) = if path.is_dir() {
            hf_load::load_folder(path, &device)?
        } else {
            gguf_load::load_gguf(path, &device, options.quantized)?
        };
        if let Some(tok) = &options.tokenizer {
            tokenizer = TextTokenizer::from_file(tok, info.bos_id)?;
        }
        let tokenizer = tokenizer.with_literal_special(options.literal_special);
        let model = Model {
            info,
            tokenizer,
            network,
            device,
            sae: None,
        };
        match &options.sae {
            Some(sae) => {
                let sae = Sae::load(sae, options.hook, &model.device)?;
                model.with_sae(sae)
            }
            None if options.hook.is_some() => Err(Error::InvalidOption {
                field: "hook",
                message: "a hook point is read by an SAE: give the SAE too".into(),
            }),
            None => Ok(model),
        }
    }

    /// Loads the default model fetched by `scripts/setup`, looked up from `root`.
    pub fn load_default(root: impl AsRef<Path>, options: &LoadOptions) -> Result<Model> {
        let path = root.as_ref().join(DEFAULT_MODEL_PATH);
        if !path.exists() {
            return Err(Error::MissingDefault {
                what: "default model",
                path,
            });
        }
        Model::load(path, options)
    }

    /// Shape and special tokens of the model.
    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// The model's tokenizer.
    pub fn tokenizer(&self) -> &TextTokenizer {
        &self.tokenizer
    }

    /// The device the model runs on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Unit activations of `layers` for a batch of token-id sequences: every MLP
    /// neuron of each layer, or every SAE latent when the model carries an SAE (whose
    /// hook layer must then be the one layer asked for).
    ///
    /// Sequences may differ in length: they are right-padded, which does not change a
    /// causal model's values at real positions. The pass stops at the highest requested
    /// layer. Returns one [`LayerActivations`] per distinct layer, in ascending order.
    pub fn activations<S: AsRef<[u32]>>(
        &self,
        batch: &[S],
        layers: &[usize],
    ) -> Result<Vec<LayerActivations>> {
        let mut layers = layers.to_vec();
        layers.sort_unstable();
        layers.dedup();
        if layers.is_empty() {
            return Err(Error::InvalidRequest("no layer requested".into()));
        }
        for &l in &layers {
            self.check_unit_layer(l)?;
        }
        let (ids, lengths) = self.pad_batch(batch)?;
        if let Some(latents) = self.sae_forward(&ids, None, None)? {
            return Ok(vec![self.host_activations(&latents, layers[0], lengths)?]);
        }
        let out = self.forward(
            &ids,
            &ForwardRequest {
                layers: &layers,
                hook: HookPoint::MlpPost,
                logits: false,
                tree: None,
                neurons: None,
            },
        )?;
        out.activations
            .iter()
            .zip(&layers)
            .map(|(act, &layer)| self.host_activations(act, layer, lengths.clone()))
            .collect()
    }

    /// The activations of `neurons` (units: MLP neurons or SAE latents, in that order)
    /// of one layer for a batch of token-id sequences: [`Model::activations`]
    /// restricted to those columns (`LayerActivations::get(b, t, i)` is `neurons[i]`),
    /// computing only their rows of the layer's MLP input projection (or their
    /// encoder columns, for ReLU and JumpReLU SAEs).
    pub fn neuron_activations<S: AsRef<[u32]>>(
        &self,
        batch: &[S],
        layer: usize,
        neurons: &[usize],
    ) -> Result<LayerActivations> {
        self.check_unit_layer(layer)?;
        self.check_units(neurons)?;
        let (ids, lengths) = self.pad_batch(batch)?;
        if let Some(latents) = self.sae_forward(&ids, None, Some(neurons))? {
            return self.host_activations(&latents, layer, lengths);
        }
        let columns = self.neuron_columns(neurons)?;
        let out = self.forward(
            &ids,
            &ForwardRequest {
                layers: &[layer],
                hook: HookPoint::MlpPost,
                logits: false,
                tree: None,
                neurons: Some(&columns),
            },
        )?;
        self.host_activations(&out.activations[0], layer, lengths)
    }

    /// An error unless the model has `layer`.
    pub(crate) fn check_layer(&self, layer: usize) -> Result<()> {
        if layer >= self.info.n_layers {
            return Err(Error::InvalidRequest(format!(
                "layer {layer} out of range: the model has layers 0..={}",
                self.info.n_layers - 1
            )));
        }
        Ok(())
    }

    /// `neurons` as a u32 index tensor on the model's device, checked against the
    /// layer width.
    pub(crate) fn neuron_columns(&self, neurons: &[usize]) -> Result<Tensor> {
        if neurons.is_empty() {
            return Err(Error::InvalidRequest("no neuron requested".into()));
        }
        if let Some(&n) = neurons.iter().find(|&&n| n >= self.info.n_neurons) {
            return Err(Error::InvalidRequest(format!(
                "neuron {n} out of range: layers have neurons 0..={}",
                self.info.n_neurons - 1
            )));
        }
        let ids: Vec<u32> = neurons.iter().map(|&n| n as u32).collect();
        Ok(Tensor::new(ids.as_slice(), &self.device)?)
    }

    /// For every position of every sequence, the `k` most likely next tokens as
    /// `(token id, logit)`, best first. Runs the whole model and the LM head.
    pub fn next_token_top_k(&self, batch: &[Vec<u32>], k: usize) -> Result<Vec<Vec<NextTokens>>> {
        let (ids, lengths) = self.pad_batch(batch)?;
        let out = self.forward(
            &ids,
            &ForwardRequest {
                layers: &[],
                logits: true,
                hook: HookPoint::MlpPost,
                tree: None,
                neurons: None,
            },
        )?;
        let logits = out.logits.expect("logits were requested");
        let logits = logits.to_dtype(DType::F32)?.to_device(&Device::Cpu)?;
        let (_, t, v) = logits.dims3()?;
        let flat = logits.flatten_all()?.to_vec1::<f32>()?;
        Ok(lengths
            .iter()
            .enumerate()
            .map(|(b, &len)| {
                (0..len)
                    .map(|p| {
                        let row = &flat[(b * t + p) * v..(b * t + p + 1) * v];
                        ops::top_k(row, k)
                    })
                    .collect()
            })
            .collect())
    }

    /// The token embedding matrix, `[vocab, hidden]`: f32, or the checkpoint's bf16 or
    /// f16 (unscaled: Gemma multiplies it by `sqrt(hidden)` in the forward pass).
    pub fn embedding_matrix(&self) -> &Tensor {
        match &self.network {
            Network::Llama(n) => &n.embed,
            Network::Gemma(n) => &n.embed,
            Network::Gpt2(n) => n.embedding(),
            Network::GptNeox(n) => n.embedding(),
        }
    }

    /// The pad token if the model declares one, else EOS, else id 0: the neutral
    /// token N2G masks context with.
    pub fn mask_token(&self) -> u32 {
        self.info.pad_id.or(self.info.eos_id).unwrap_or(0)
    }

    /// Pads a batch on the right into a `[batch, max_len]` id tensor.
    pub(super) fn pad_batch<S: AsRef<[u32]>>(&self, batch: &[S]) -> Result<(Tensor, Vec<usize>)> {
        if batch.is_empty() {
            return Err(Error::InvalidRequest("empty batch".into()));
        }
        let max_len = batch.iter().map(|s| s.as_ref().len()).max().unwrap_or(0);
        if max_len == 0 {
            return Err(Error::InvalidRequest("empty sequence in batch".into()));
        }
        if let Some(context) = self.info.context_length.filter(|&c| max_len > c) {
            return Err(Error::InvalidRequest(format!(
                "a sequence of {max_len} tokens is longer than the model's context of {context} tokens: shorten the text (or use a smaller --window)"
            )));
        }
        let vocab = self.info.vocab_size as u32;
        let pad = self.info.eos_id.unwrap_or(0).min(vocab - 1);
        let mut flat = Vec::with_capacity(batch.len() * max_len);
        for seq in batch {
            let seq = seq.as_ref();
            if seq.is_empty() {
                return Err(Error::InvalidRequest("empty sequence in batch".into()));
            }
            if let Some(&bad) = seq.iter().find(|&&id| id >= vocab) {
                return Err(Error::InvalidRequest(format!(
                    "token id {bad} out of range (vocabulary size {vocab})"
                )));
            }
            flat.extend_from_slice(seq);
            flat.extend(std::iter::repeat_n(pad, max_len - seq.len()));
        }
        let lengths = batch.iter().map(|s| s.as_ref().len()).collect();
        let ids = Tensor::from_vec(flat, (batch.len(), max_len), &self.device)?;
        Ok((ids, lengths))
    }

    pub(crate) fn forward(&self, ids: &Tensor, request: &ForwardRequest) -> Result<ForwardOutput> {
        match &self.network {
            Network::Llama(n) => n.forward(ids, request),
            Network::Gemma(n) => n.forward(ids, request),
            Network::Gpt2(n) => n.forward(ids, request),
            Network::GptNeox(n) => n.forward(ids, request),
        }
    }
}

/// The `k` highest-activating neurons of one position, as `(neuron, value)`, best first.
pub fn top_neurons(row: &[f32], k: usize) -> Vec<(usize, f32)> {
    ops::top_k(row, k)
        .into_iter()
        .map(|(i, v)| (i as usize, v))
        .collect()
}

/// SHA-256 of a model file, or of a folder's files (names and contents, in name order).
pub fn model_sha256(path: &Path) -> Result<String> {
    use sha2::{Digest, Sha256};
    use std::io::Read;
    let mut files = Vec::new();
    if path.is_dir() {
        for e in std::fs::read_dir(path).map_err(|e| Error::io(path, e))? {
            let p = e.map_err(|e| Error::io(path, e))?.path();
            if p.is_file() {
                files.push(p);
            }
        }
        files.sort();
    } else {
        files.push(path.to_path_buf());
    }
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    for f in files {
        if path.is_dir() {
            hasher.update(
                f.file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .as_bytes(),
            );
        }
        let mut file = std::fs::File::open(&f).map_err(|e| Error::io(&f, e))?;
        loop {
            let n = file.read(&mut buf).map_err(|e| Error::io(&f, e))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
    }
    Ok(format!("{:x}", hasher.finalize()))
}
