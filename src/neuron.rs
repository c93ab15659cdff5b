//! Neuron identifiers: `LAYER:INDEX`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// One MLP neuron of a model, written `LAYER:INDEX` (e.g. `3:1042`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct NeuronId {
    /// The layer (transformer block) index.
    pub layer: u16,
    /// The neuron index within the layer's MLP.
    pub index: u32,
}

impl NeuronId {
    /// A neuron id.
    pub fn new(layer: usize, index: usize) -> Self {
        NeuronId {
            layer: layer as u16,
            index: index as u32,
        }
    }

    /// A dense number for bitmaps: `layer * neurons_per_layer + index`.
    pub fn dense(self, neurons_per_layer: usize) -> u32 {
        self.layer as u32 * neurons_per_layer as u32 + self.index
    }

    /// The inverse of [`dense`](Self::dense).
    pub fn from_dense(n: u32, neurons_per_layer: usize) -> Self {
        NeuronId {
            layer: (n / neurons_per_layer as u32) as u16,
            index: n % neurons_per_layer as u32,
        }
    }
}

impl fmt::Display for NeuronId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.layer, self.index)
    }
}

impl FromStr for NeuronId {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (l, n) = s
            .split_once(':')
            .ok_or_else(|| format!("`{s}` is not a neuron: expected LAYER:INDEX, e.g. 3:1042"))?;
        let number = |part: &str, what: &str, max: u64| -> Result<u64, String> {
            let part = part.trim();
            match part.parse::<u64>() {
                Ok(v) if v <= max => Ok(v),
                Ok(_) => Err(format!(
                    "`{s}`: {what} `{part}` is out of range (at most {max})"
                )),
                Err(_) => Err(format!("`{s}`: {what} `{part}` is not a number")),
            }
        };
        let layer = number(l, "layer", u16::MAX as u64)? as u16;
        let index = number(n, "index", u32::MAX as u64)? as u32;
        Ok(NeuronId { layer, index })
    }
}

/// Serialises a value by its `Display` form (a neuron id as `"L:N"`).
pub(crate) fn as_display<T: std::fmt::Display, S: serde::Serializer>(
    value: &T,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_str(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        let n: NeuronId = "3:1042".parse().unwrap();
        assert_eq!(n, NeuronId::new(3, 1042));
        assert_eq!(n.to_string(), "3:1042");
        assert!("3".parse::<NeuronId>().is_err());
        assert!("a:1".parse::<NeuronId>().is_err());
        assert_eq!(" 3 : 7 ".parse::<NeuronId>(), Ok(NeuronId::new(3, 7)));
        let err = "99999:1".parse::<NeuronId>().unwrap_err();
        assert!(err.contains("out of range (at most 65535)"), "{err}");
        let err = "0:x1".parse::<NeuronId>().unwrap_err();
        assert!(err.contains("index `x1` is not a number"), "{err}");
        assert_eq!(NeuronId::from_dense(n.dense(1536), 1536), n);
    }
}
