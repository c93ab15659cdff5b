//! Reading the `cfg.json` of SAELens and sparsify folders: typed fields, each error
//! naming the file and field.

use std::io::Read;
use std::path::Path;

use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// The largest `cfg.json` read (real ones are a few kilobytes).
const MAX_CFG: u64 = 1 << 20;

/// A parsed `cfg.json` object.
pub(super) struct Cfg<'a> {
    pub path: &'a Path,
    pub map: Map<String, Value>,
}

impl<'a> Cfg<'a> {
    /// Reads and parses a JSON object file.
    pub fn read(path: &'a Path) -> Result<Cfg<'a>> {
        let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        let mut text = Vec::new();
        file.take(MAX_CFG + 1)
            .read_to_end(&mut text)
            .map_err(|e| Error::io(path, e))?;
        if text.len() as u64 > MAX_CFG {
            return Err(Error::bad_model(path, "longer than 1 MiB"));
        }
        let value: Value = serde_json::from_slice(&text)
            .map_err(|e| Error::bad_model(path, format!("not valid JSON: {e}")))?;
        match value {
            Value::Object(map) => Ok(Cfg { path, map }),
            _ => Err(Error::bad_model(path, "not a JSON object")),
        }
    }

    /// An error about field `field`.
    pub fn bad(&self, field: &str, message: impl std::fmt::Display) -> Error {
        Error::bad_model(self.path, format!("`{field}` {message}"))
    }

    /// The value at a dotted path (`metadata.hook_name`); `null` counts as absent.
    pub fn get(&self, field: &str) -> Option<&Value> {
        let mut parts = field.split('.');
        let mut v = self.map.get(parts.next()?)?;
        for p in parts {
            v = v.get(p)?;
        }
        (!v.is_null()).then_some(v)
    }

    /// A non-negative integer field (a float with no fraction is accepted).
    pub fn usize(&self, field: &str) -> Result<Option<usize>> {
        let Some(v) = self.get(field) else {
            return Ok(None);
        };
        if let Some(n) = v.as_u64() {
            return usize::try_from(n)
                .map(Some)
                .map_err(|_| self.bad(field, format!("is too large: {n}")));
        }
        match v.as_f64() {
            Some(f) if f >= 0.0 && f.fract() == 0.0 && f < 1e15 => Ok(Some(f as usize)),
            _ => Err(self.bad(field, format!("is not a non-negative integer: {v}"))),
        }
    }

    /// A required non-negative integer field.
    pub fn required_usize(&self, field: &str) -> Result<usize> {
        self.usize(field)?
            .ok_or_else(|| self.bad(field, "is missing"))
    }

    /// A boolean field.
    pub fn bool(&self, field: &str) -> Result<Option<bool>> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(v) => Err(self.bad(field, format!("is not true or false: {v}"))),
        }
    }

    /// A string field.
    pub fn str(&self, field: &str) -> Result<Option<&str>> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(v) => Err(self.bad(field, format!("is not a string: {v}"))),
        }
    }
}
