//! NumPy `.npy` arrays inside a `.npz` archive (a zip file, entries stored or deflated):
//! the header is parsed by hand; little-endian `<f4` and `<f2` in C order are read,
//! anything else is refused by name.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use zip::ZipArchive;

use crate::error::{Error, Result};

/// The largest `.npy` header accepted (NumPy writes a few hundred bytes).
const MAX_HEADER: usize = 1 << 16;

/// An element type of an array.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NpyDtype {
    /// `<f4`.
    F32,
    /// `<f2`.
    F16,
}

impl NpyDtype {
    fn size(self) -> usize {
        match self {
            NpyDtype::F32 => 4,
            NpyDtype::F16 => 2,
        }
    }
}

/// A parsed `.npy` header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct NpyHeader {
    /// Element type.
    pub dtype: NpyDtype,
    /// Dimensions (C order).
    pub shape: Vec<usize>,
    /// Bytes before the data (magic, version, header).
    pub data_offset: usize,
}

impl NpyHeader {
    /// Bytes of data the shape needs (`None` on overflow).
    pub fn data_len(&self) -> Option<usize> {
        self.shape
            .iter()
            .try_fold(self.dtype.size(), |acc, &d| acc.checked_mul(d))
    }
}

/// The value after `'key':` in a header dict, up to the next top-level comma or `}`.
fn dict_value<'a>(dict: &'a str, key: &str) -> std::result::Result<&'a str, String> {
    let needle = format!("'{key}':");
    let start = dict
        .find(&needle)
        .ok_or_else(|| format!("no `{key}` in the header"))?
        + needle.len();
    let rest = dict[start..].trim_start();
    let end = if rest.starts_with('(') {
        rest.find(')').map(|i| i + 1)
    } else {
        rest.find([',', '}'])
    }
    .ok_or_else(|| format!("unterminated `{key}` in the header"))?;
    Ok(rest[..end].trim())
}

/// Parses the magic, version and header dict at the start of `bytes`, which must hold
/// the whole header (data may follow).
pub(crate) fn parse_header(bytes: &[u8]) -> std::result::Result<NpyHeader, String> {
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err("not a .npy array (no \\x93NUMPY magic)".into());
    }
    let (len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        v => return Err(format!(".npy format version {v} is not supported")),
    };
    if len > MAX_HEADER || start + len > bytes.len() {
        return Err(format!("header of {len} bytes is truncated or too long"));
    }
    let dict = std::str::from_utf8(&bytes[start..start + len])
        .map_err(|_| "header is not text".to_string())?;
    let descr = dict_value(dict, "descr")?.trim_matches(|c| c == '\'' || c == '"');
    let dtype = match descr {
        "<f4" => NpyDtype::F32,
        "<f2" => NpyDtype::F16,
        other => {
            return Err(format!(
                "dtype `{other}` is not supported (little-endian float32 `<f4` or float16 `<f2`)"
            ))
        }
    };
    match dict_value(dict, "fortran_order")? {
        "False" => {}
        "True" => return Err("Fortran-order arrays are not supported (C order only)".into()),
        other => return Err(format!("`fortran_order` is `{other}`")),
    }
    let shape_text = dict_value(dict, "shape")?;
    let inner = shape_text
        .strip_prefix('(')
        .and_then(|s| s.strip_suffix(')'))
        .ok_or_else(|| format!("`shape` is `{shape_text}`, not a tuple"))?;
    let shape = inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<usize>())
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|_| format!("`shape` is `{shape_text}`, not a tuple of sizes"))?;
    Ok(NpyHeader {
        dtype,
        shape,
        data_offset: start + len,
    })
}

/// The `.npy` arrays of one `.npz` file.
pub(crate) struct Npz {
    path: PathBuf,
    archive: ZipArchive<File>,
    file_len: u64,
}

impl Npz {
    /// Opens an archive and reads its directory.
    pub fn open(path: &Path) -> Result<Npz> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let file_len = file.metadata().map_err(|e| Error::io(path, e))?.len();
        let archive = ZipArchive::new(file)
            .map_err(|e| Error::bad_model(path, format!("not a readable .npz (zip) file: {e}")))?;
        Ok(Npz {
            path: path.into(),
            archive,
            file_len,
        })
    }

    fn bad(&self, name: &str, message: impl std::fmt::Display) -> Error {
        Error::bad_model(&self.path, format!("array `{name}`: {message}"))
    }

    /// Whether the archive holds array `name`.
    pub fn has(&self, name: &str) -> bool {
        self.archive
            .index_for_name(&format!("{name}.npy"))
            .is_some()
    }

    /// Reads array `name` (entry `name.npy`): its header, and its data as f32 on the CPU
    /// when `data` is set.
    pub fn read(&mut self, name: &str, data: bool) -> Result<(NpyHeader, Option<Tensor>)> {
        let file_len = self.file_len;
        let path = self.path.clone();
        let mut entry = self
            .archive
            .by_name(&format!("{name}.npy"))
            .map_err(|e| Error::bad_model(&path, format!("array `{name}`: {e}")))?;
        // A deflated entry expands at most about 1032 times; a size beyond that (or a
        // stored entry larger than the file) is a damaged or hostile directory.
        let size = entry.size();
        if size > file_len.saturating_mul(1100).saturating_add(1 << 20) {
            drop(entry);
            return Err(self.bad(
                name,
                format!("declares {size} bytes in a file of {file_len}"),
            ));
        }
        let mut head = vec![0u8; 12];
        let got = read_up_to(&mut entry, &mut head).map_err(|e| Error::io(&path, e))?;
        head.truncate(got);
        let needed = match head.get(6) {
            Some(1) if got >= 10 => 10 + u16::from_le_bytes([head[8], head[9]]) as usize,
            Some(2 | 3) if got >= 12 => {
                12 + u32::from_le_bytes([head[8], head[9], head[10], head[11]]) as usize
            }
            _ => 0,
        };
        if needed > head.len() && needed <= MAX_HEADER + 12 {
            let mut rest = vec![0u8; needed - head.len()];
            let n = read_up_to(&mut entry, &mut rest).map_err(|e| Error::io(&path, e))?;
            head.extend_from_slice(&rest[..n]);
        }
        let header = parse_header(&head)
            .map_err(|m| Error::bad_model(&path, format!("array `{name}`: {m}")))?;
        if !data {
            return Ok((header, None));
        }
        let len = header
            .data_len()
            .filter(|&l| (l as u64) <= size)
            .ok_or_else(|| {
                Error::bad_model(
                    &path,
                    format!(
                        "array `{name}`: shape {:?} needs more bytes than the entry's {size}",
                        header.shape
                    ),
                )
            })?;
        let mut bytes = head.split_off(header.data_offset.min(head.len()));
        bytes.reserve_exact(len.saturating_sub(bytes.len()));
        bytes.truncate(len);
        let missing = len - bytes.len();
        let n = (&mut entry)
            .take(missing as u64)
            .read_to_end(&mut bytes)
            .map_err(|e| Error::bad_model(&path, format!("array `{name}`: {e}")))?;
        if n != missing {
            return Err(Error::bad_model(
                &path,
                format!(
                    "array `{name}`: truncated ({} of {len} data bytes)",
                    len - missing + n
                ),
            ));
        }
        let dtype = match header.dtype {
            NpyDtype::F32 => DType::F32,
            NpyDtype::F16 => DType::F16,
        };
        let t = Tensor::from_raw_buffer(&bytes, dtype, &header.shape, &Device::Cpu)?
            .to_dtype(DType::F32)?;
        Ok((header, Some(t)))
    }
}

/// Reads until `buf` is full or the reader ends; returns the bytes read.
fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            m => n += m,
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn npy(dict: &str) -> Vec<u8> {
        let mut v = b"\x93NUMPY\x01\x00".to_vec();
        v.extend_from_slice(&(dict.len() as u16).to_le_bytes());
        v.extend_from_slice(dict.as_bytes());
        v
    }

    #[test]
    fn headers_parse_and_unsupported_layouts_are_refused_by_name() {
        let h = parse_header(&npy(
            "{'descr': '<f4', 'fortran_order': False, 'shape': (32, 96), }   \n",
        ))
        .unwrap();
        assert_eq!(h.dtype, NpyDtype::F32);
        assert_eq!(h.shape, vec![32, 96]);
        assert_eq!(h.data_len(), Some(32 * 96 * 4));
        let h = parse_header(&npy(
            "{'descr': '<f2', 'fortran_order': False, 'shape': (7,), }",
        ))
        .unwrap();
        assert_eq!((h.dtype, h.shape), (NpyDtype::F16, vec![7]));
        let scalar = parse_header(&npy(
            "{'descr': '<f4', 'fortran_order': False, 'shape': (), }",
        ))
        .unwrap();
        assert!(scalar.shape.is_empty());
        for (dict, needle) in [
            (
                "{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }",
                ">f4",
            ),
            (
                "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }",
                "<f8",
            ),
            (
                "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }",
                "Fortran",
            ),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': (2, x), }",
                "shape",
            ),
            ("{'descr': '<f4', 'shape': (2,), }", "fortran_order"),
        ] {
            let e = parse_header(&npy(dict)).unwrap_err();
            assert!(e.contains(needle), "{e}");
        }
        assert!(parse_header(b"PK\x03\x04").unwrap_err().contains("magic"));
        let mut cut = npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }");
        cut.truncate(30);
        assert!(parse_header(&cut).unwrap_err().contains("truncated"));
    }
}
