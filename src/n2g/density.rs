//! Dense units: a unit firing on a large share of the corpus's tokens (a known bad fit
//! for N2G, common among SAE latents) may have its graph skipped (`--max-density`).

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::store::{NeuronStats, Store};
use crate::NeuronId;

/// Meta key of the units whose graphs the last build skipped as dense ([`DenseSkip`]).
pub const KEY_DENSE_SKIPPED: &str = "dense_skipped";

/// The units a build skipped as dense, with the threshold it used.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DenseSkip {
    /// The largest density whose graph was built.
    pub max_density: f64,
    /// Each skipped unit with its density.
    pub units: Vec<(NeuronId, f64)>,
}

impl DenseSkip {
    /// Why `unit` has no graph, when this build skipped it as dense.
    pub fn reason(&self, unit: NeuronId) -> Option<String> {
        let (_, density) = self.units.iter().find(|(id, _)| *id == unit)?;
        Some(format!(
            "dense: fires on {:.1}% of the tokens, above the build's --max-density {}",
            density * 100.0,
            self.max_density
        ))
    }
}

/// The share of the scanned tokens (BOS excluded) on which a unit is above 0.
pub fn density(stats: &NeuronStats) -> f64 {
    if stats.count == 0 {
        0.0
    } else {
        stats.positive as f64 / stats.count as f64
    }
}

/// The scanned units denser than `max_density` (none when `None`), recorded in the
/// store so that `info` and `show` can say what was skipped.
pub fn dense_units(store: &Store, max_density: Option<f64>) -> Result<Vec<(NeuronId, f64)>> {
    let Some(max) = max_density else {
        if store.meta::<DenseSkip>(KEY_DENSE_SKIPPED)?.is_some() {
            store.put_meta(
                KEY_DENSE_SKIPPED,
                &DenseSkip {
                    max_density: 1.0,
                    units: Vec::new(),
                },
            )?;
        }
        return Ok(Vec::new());
    };
    let units: Vec<(NeuronId, f64)> = store
        .neuron_scans()?
        .into_iter()
        .map(|(id, scan)| (id, density(&scan.stats)))
        .filter(|&(_, d)| d > max)
        .collect();
    store.put_meta(
        KEY_DENSE_SKIPPED,
        &DenseSkip {
            max_density: max,
            units: units.clone(),
        },
    )?;
    Ok(units)
}

/// The first `n` units as `L:N (density)`, and how many more.
pub fn list_some(units: &[(NeuronId, f64)], n: usize) -> String {
    let mut s: Vec<String> = units
        .iter()
        .take(n)
        .map(|(id, d)| format!("{id} ({:.1}%)", d * 100.0))
        .collect();
    if units.len() > n {
        s.push(format!("and {} more", units.len() - n));
    }
    s.join(", ")
}
