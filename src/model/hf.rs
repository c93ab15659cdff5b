//! Reading Hugging Face folders: `config.json` with field access that names the key,
//! and the weights of the folder's safetensors files. The architectures read their
//! weights through these; `hf_load` picks the architecture and builds the model.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use serde_json::Value;

use super::linear::Linear;
use super::ops;
use super::safetensors::SafetensorsFile;
use crate::error::{Error, Result};

/// Size fields of `config.json` that must be at least 1 (a zero would divide by zero).
const POSITIVE_FIELDS: &[&str] = &[
    "hidden_size",
    "intermediate_size",
    "num_attention_heads",
    "num_key_value_heads",
    "num_hidden_layers",
    "head_dim",
    "n_embd",
    "n_head",
    "n_layer",
    "n_inner",
    "vocab_size",
];

/// A parsed `config.json` with field access that names the file and key on error.
pub(crate) struct HfConfig {
    path: PathBuf,
    value: Value,
}

impl HfConfig {
    pub(crate) fn read(path: PathBuf) -> Result<Self> {
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

    /// An optional unsigned integer field (`null` counts as absent); the size fields of
    /// [`POSITIVE_FIELDS`] must be at least 1.
    pub fn opt_usize(&self, key: &str) -> Result<Option<usize>> {
        let n = match self.value.get(key) {
            None | Some(Value::Null) => return Ok(None),
            Some(v) => v.as_u64().ok_or_else(|| {
                Error::bad_model(
                    &self.path,
                    format!("field `{key}`: expected an unsigned integer, got {v}"),
                )
            })?,
        };
        if n == 0 && POSITIVE_FIELDS.contains(&key) {
            return Err(self.error(format!("field `{key}`: must be at least 1")));
        }
        usize::try_from(n)
            .map(Some)
            .map_err(|_| self.error(format!("field `{key}`: {n} is too large")))
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

    /// Whether the key is present, even as `null`.
    pub fn present(&self, key: &str) -> bool {
        self.value.get(key).is_some()
    }

    /// A raw field.
    pub fn raw(&self, key: &str) -> Option<&Value> {
        self.value.get(key)
    }

    /// The sliding window of each of `n_layers` layers (`None`: full attention), from
    /// the config's `layer_types` (`sliding_attention` / `full_attention`) when it has
    /// them, else `sliding(i)` for layer `i`; `window` is the window size (when `None`,
    /// every layer attends fully).
    pub fn layer_windows(
        &self,
        n_layers: usize,
        window: Option<usize>,
        sliding: impl Fn(usize) -> bool,
    ) -> Result<Vec<Option<usize>>> {
        let Some(window) = window else {
            return Ok(vec![None; n_layers]);
        };
        if window == 0 {
            return Err(self.error("field `sliding_window`: must be at least 1"));
        }
        let Some(types) = self.value.get("layer_types").filter(|v| !v.is_null()) else {
            return Ok((0..n_layers)
                .map(|i| sliding(i).then_some(window))
                .collect());
        };
        let types = types
            .as_array()
            .filter(|a| a.len() == n_layers)
            .ok_or_else(|| {
                self.error(format!(
                    "field `layer_types`: expected a list of {n_layers} layer types"
                ))
            })?;
        types
            .iter()
            .map(|t| match t.as_str() {
                Some("sliding_attention") => Ok(Some(window)),
                Some("full_attention") => Ok(None),
                _ => Err(self.error(format!(
                    "field `layer_types`: `{t}` is not supported (sliding_attention, full_attention)"
                ))),
            })
            .collect()
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
    pub(crate) fn token_id(&self, key: &str) -> Option<u32> {
        match self.value.get(key)? {
            Value::Number(n) => n.as_u64().map(|x| x as u32),
            Value::Array(a) => a.first()?.as_u64().map(|x| x as u32),
            _ => None,
        }
    }
}

/// The tensors of a folder's safetensors files (the shards that
/// `model.safetensors.index.json` lists, else every `*.safetensors`), read from disk
/// one by one: loading takes about the weights' memory, not that plus the files'.
pub(crate) struct Weights {
    folder: PathBuf,
    files: Vec<SafetensorsFile>,
    /// Tensor name -> index in `files` (a later file wins).
    names: HashMap<String, usize>,
    device: Device,
}

/// The shards of a sharded checkpoint, from its index's `weight_map`; each must exist.
fn index_shards(folder: &Path, index: &Path) -> Result<Vec<PathBuf>> {
    let text = std::fs::read_to_string(index).map_err(|e| Error::io(index, e))?;
    let value: Value = serde_json::from_str(&text)
        .map_err(|e| Error::bad_model(index, format!("not valid JSON: {e}")))?;
    let map = value
        .get("weight_map")
        .and_then(Value::as_object)
        .ok_or_else(|| Error::bad_model(index, "missing object field `weight_map`"))?;
    let mut files: Vec<PathBuf> = Vec::new();
    for (name, file) in map {
        let file = file.as_str().ok_or_else(|| {
            Error::bad_model(index, format!("weight_map[{name:?}]: expected a file name"))
        })?;
        let path = folder.join(file);
        if file.contains('/') || file.contains('\\') || !path.is_file() {
            return Err(Error::bad_model(
                index,
                format!("weight_map[{name:?}]: shard `{file}` is not in the folder"),
            ));
        }
        if !files.contains(&path) {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

impl Weights {
    /// How many tensors the folder's files hold.
    pub(crate) fn tensor_count(&self) -> usize {
        self.names.len()
    }

    pub(crate) fn read(folder: &Path, device: &Device) -> Result<Self> {
        let index = folder.join("model.safetensors.index.json");
        let files: Vec<PathBuf> = if index.exists() {
            index_shards(folder, &index)?
        } else {
            let mut files: Vec<PathBuf> = std::fs::read_dir(folder)
                .map_err(|e| Error::io(folder, e))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "safetensors"))
                .collect();
            files.sort();
            files
        };
        if files.is_empty() {
            return Err(Error::bad_model(
                folder,
                "no *.safetensors file in the folder",
            ));
        }
        let files: Vec<SafetensorsFile> = files
            .iter()
            .map(|f| SafetensorsFile::open(f))
            .collect::<Result<_>>()?;
        let mut names = HashMap::new();
        for (i, f) in files.iter().enumerate() {
            names.extend(f.names().map(|n| (n.to_string(), i)));
        }
        Ok(Weights {
            folder: folder.into(),
            files,
            names,
            device: device.clone(),
        })
    }

    /// A tensor in its file dtype on the device, with its shape checked.
    pub fn stored(&self, name: &str, shape: &[usize]) -> Result<Tensor> {
        let file = self
            .names
            .get(name)
            .map(|&i| &self.files[i])
            .ok_or_else(|| {
                Error::bad_model(
                    &self.folder,
                    format!("missing tensor `{name}` in the safetensors files"),
                )
            })?;
        let found = file.shape(name).unwrap_or_default();
        if found != shape {
            return Err(Error::bad_model(
                &self.folder,
                format!("tensor `{name}` has shape {found:?}, expected {shape:?}"),
            ));
        }
        Ok(file.load(name)?.to_device(&self.device)?)
    }

    /// Whether a tensor of that name exists.
    pub fn has(&self, name: &str) -> bool {
        self.names.contains_key(name)
    }

    /// A tensor as f32, with its shape checked.
    pub fn get(&self, name: &str, shape: &[usize]) -> Result<Tensor> {
        ops::to_f32(self.stored(name, shape)?, &self.device)
    }

    /// A PyTorch `nn.Linear` (`{name}.weight` `[out, in]`, optional `{name}.bias`), the
    /// weight kept in its file dtype when that is bf16 or f16.
    pub fn linear(&self, name: &str, out: usize, inp: usize, bias: bool) -> Result<Linear> {
        let w = self.stored(&format!("{name}.weight"), &[out, inp])?;
        let b = if bias {
            Some(self.get(&format!("{name}.bias"), &[out])?)
        } else {
            None
        };
        Linear::from_stored(w, b)
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
