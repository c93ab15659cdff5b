//! Reading safetensors files one tensor at a time: the header is parsed and checked
//! when a file is opened (every tensor's bytes must lie inside the file), and each
//! tensor is read from disk when asked for, so loading a model takes about its weights'
//! memory, not that plus a copy of its files.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use serde_json::Value;

use crate::error::{Error, Result};

/// The largest header accepted (the format's own limit is 100 MB).
const MAX_HEADER: u64 = 100 << 20;

/// Where one tensor lies in its file.
struct Entry {
    dtype: DType,
    shape: Vec<usize>,
    /// Byte range from the file's start.
    start: u64,
    len: usize,
}

/// One safetensors file with its parsed header.
pub(crate) struct SafetensorsFile {
    path: PathBuf,
    tensors: HashMap<String, Entry>,
}

/// A safetensors dtype name as a candle dtype.
fn dtype(name: &str) -> Option<DType> {
    Some(match name {
        "F64" => DType::F64,
        "F32" => DType::F32,
        "F16" => DType::F16,
        "BF16" => DType::BF16,
        "I64" => DType::I64,
        "U32" => DType::U32,
        "U8" => DType::U8,
        _ => return None,
    })
}

impl SafetensorsFile {
    /// Opens a file and checks its header against its length.
    pub fn open(path: &Path) -> Result<Self> {
        let bad =
            |m: String| Error::bad_model(path, format!("not a readable safetensors file: {m}"));
        let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
        let file_len = file.metadata().map_err(|e| Error::io(path, e))?.len();
        let mut len = [0u8; 8];
        file.read_exact(&mut len)
            .map_err(|_| bad("shorter than its 8-byte header length".into()))?;
        let header_len = u64::from_le_bytes(len);
        if header_len > MAX_HEADER || 8 + header_len > file_len {
            return Err(bad(format!(
                "header of {header_len} bytes in a file of {file_len}"
            )));
        }
        let mut header = vec![0u8; header_len as usize];
        file.read_exact(&mut header)
            .map_err(|e| Error::io(path, e))?;
        let header: Value = serde_json::from_slice(&header)
            .map_err(|e| bad(format!("header is not valid JSON: {e}")))?;
        let header = header
            .as_object()
            .ok_or_else(|| bad("header is not a JSON object".into()))?;
        let data_start = 8 + header_len;
        let mut tensors = HashMap::with_capacity(header.len());
        for (name, info) in header {
            if name == "__metadata__" {
                continue;
            }
            let entry = Self::entry(name, info, data_start, file_len).map_err(bad)?;
            tensors.insert(name.clone(), entry);
        }
        Ok(SafetensorsFile {
            path: path.into(),
            tensors,
        })
    }

    /// One header entry, checked: a known dtype, a size that matches the shape, bytes
    /// inside the file.
    fn entry(
        name: &str,
        info: &Value,
        data_start: u64,
        file_len: u64,
    ) -> std::result::Result<Entry, String> {
        let field = |key: &str| {
            info.get(key)
                .ok_or_else(|| format!("tensor `{name}`: no `{key}` in the header"))
        };
        let type_name = field("dtype")?.as_str().unwrap_or("");
        let dtype = dtype(type_name)
            .ok_or_else(|| format!("tensor `{name}`: dtype `{type_name}` is not supported"))?;
        let numbers = |key: &str| -> std::result::Result<Vec<u64>, String> {
            field(key)?
                .as_array()
                .and_then(|a| a.iter().map(Value::as_u64).collect())
                .ok_or_else(|| format!("tensor `{name}`: `{key}` is not a list of integers"))
        };
        let shape: Vec<usize> = numbers("shape")?.into_iter().map(|x| x as usize).collect();
        let offsets = numbers("data_offsets")?;
        let [begin, end] = offsets[..] else {
            return Err(format!(
                "tensor `{name}`: `data_offsets` needs two integers"
            ));
        };
        let elems: usize = shape.iter().product();
        if end < begin || (end - begin) as usize != elems * dtype.size_in_bytes() {
            return Err(format!(
                "tensor `{name}`: {} bytes for shape {shape:?} of {type_name}",
                end.saturating_sub(begin)
            ));
        }
        if data_start + end > file_len {
            return Err(format!(
                "truncated file: tensor `{name}` ends at byte {} but the file has {file_len} bytes",
                data_start + end
            ));
        }
        Ok(Entry {
            dtype,
            shape,
            start: data_start + begin,
            len: (end - begin) as usize,
        })
    }

    /// The names of the file's tensors.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tensors.keys().map(String::as_str)
    }

    /// The shape of a tensor, if the file has it.
    pub fn shape(&self, name: &str) -> Option<&[usize]> {
        self.tensors.get(name).map(|e| e.shape.as_slice())
    }

    /// Reads a tensor (in its file dtype) onto the CPU.
    pub fn load(&self, name: &str) -> Result<Tensor> {
        let e = self.tensors.get(name).ok_or_else(|| {
            Error::bad_model(&self.path, format!("no tensor `{name}` in the file"))
        })?;
        let mut file = File::open(&self.path).map_err(|err| Error::io(&self.path, err))?;
        file.seek(SeekFrom::Start(e.start))
            .map_err(|err| Error::io(&self.path, err))?;
        let mut bytes = vec![0u8; e.len];
        file.read_exact(&mut bytes)
            .map_err(|err| Error::io(&self.path, err))?;
        Ok(Tensor::from_raw_buffer(
            &bytes,
            e.dtype,
            &e.shape,
            &Device::Cpu,
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A safetensors file with one tensor described by `info` and `data` after it.
    fn write(dir: &Path, info: &str, data: &[u8]) -> PathBuf {
        let header = format!("{{\"__metadata__\":{{\"format\":\"pt\"}},\"w\":{info}}}");
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend_from_slice(data);
        let path = dir.join("t.safetensors");
        std::fs::write(&path, bytes).unwrap();
        path
    }

    #[test]
    fn tensors_load_in_their_dtype_and_bad_headers_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        // bf16 1.0 and -2.5 (0x3F80, 0xC020), little-endian.
        let info = r#"{"dtype":"BF16","shape":[2],"data_offsets":[0,4]}"#;
        let path = write(dir.path(), info, &[0x80, 0x3F, 0x20, 0xC0]);
        let t = SafetensorsFile::open(&path).unwrap().load("w").unwrap();
        assert_eq!(t.dtype(), DType::BF16);
        let v = t.to_dtype(DType::F32).unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(v, vec![1.0, -2.5]);
        let refused = |info: &str, data: &[u8], needle: &str| {
            let path = write(dir.path(), info, data);
            let err = SafetensorsFile::open(&path)
                .err()
                .expect("refused")
                .to_string();
            assert!(
                err.contains(needle) && err.contains("t.safetensors"),
                "{err}"
            );
        };
        let cut = r#"{"dtype":"BF16","shape":[2],"data_offsets":[0,4]}"#;
        refused(cut, &[0x80, 0x3F], "truncated");
        let size = r#"{"dtype":"F32","shape":[2],"data_offsets":[0,4]}"#;
        refused(size, &[0; 4], "bytes for shape");
        let dtype = r#"{"dtype":"F8_E5M2","shape":[4],"data_offsets":[0,4]}"#;
        refused(dtype, &[0; 4], "F8_E5M2");
    }
}
