//! Where tensors live: the `--device` option and the candle device it opens.

use std::str::FromStr;

use candle_core::Device;

use crate::error::{Error, Result};

/// Where tensors live: `cpu`, `cuda:N` (cargo feature `cuda`) or `metal:N` (feature `metal`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DeviceSpec {
    /// The CPU (default).
    #[default]
    Cpu,
    /// An NVIDIA GPU by ordinal.
    Cuda(usize),
    /// An Apple GPU by ordinal.
    Metal(usize),
}

impl FromStr for DeviceSpec {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let (kind, ordinal) = match s.split_once(':') {
            Some((k, n)) => {
                let n = n.parse::<usize>().map_err(|_| {
                    Error::InvalidRequest(format!("--device {s}: `{n}` is not a device number"))
                })?;
                (k, n)
            }
            None => (s, 0),
        };
        match kind {
            "cpu" => Ok(DeviceSpec::Cpu),
            "cuda" => Ok(DeviceSpec::Cuda(ordinal)),
            "metal" => Ok(DeviceSpec::Metal(ordinal)),
            _ => Err(Error::InvalidRequest(format!(
                "--device {s}: expected cpu, cuda:N or metal:N"
            ))),
        }
    }
}

impl std::fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeviceSpec::Cpu => f.write_str("cpu"),
            DeviceSpec::Cuda(n) => write!(f, "cuda:{n}"),
            DeviceSpec::Metal(n) => write!(f, "metal:{n}"),
        }
    }
}

impl DeviceSpec {
    /// Opens the device; a GPU device fails clearly when the binary lacks its feature.
    pub fn open(self) -> Result<Device> {
        let missing = |feature: &str| {
            Error::InvalidRequest(format!(
                "device {self}: this build has no GPU support (cargo feature `{feature}`)"
            ))
        };
        Ok(match self {
            DeviceSpec::Cpu => Device::Cpu,
            DeviceSpec::Cuda(_) if !cfg!(feature = "cuda") => return Err(missing("cuda")),
            DeviceSpec::Metal(_) if !cfg!(feature = "metal") => return Err(missing("metal")),
            DeviceSpec::Cuda(n) => Device::new_cuda(n)?,
            DeviceSpec::Metal(n) => Device::new_metal(n)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_parse_print_and_name_the_missing_feature() {
        for s in ["cpu", "cuda:0", "cuda:3", "metal:1"] {
            assert_eq!(s.parse::<DeviceSpec>().unwrap().to_string(), s);
        }
        assert_eq!("cuda".parse::<DeviceSpec>().unwrap(), DeviceSpec::Cuda(0));
        assert!("cuda:x".parse::<DeviceSpec>().is_err());
        assert!("tpu".parse::<DeviceSpec>().is_err());
        if !cfg!(feature = "cuda") {
            let err = DeviceSpec::Cuda(0).open().unwrap_err().to_string();
            assert!(err.contains("cargo feature `cuda`"), "{err}");
        }
    }
}
