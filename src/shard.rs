//! Sharded builds: which units of a build one shard of `count` builds.
//!
//! The selected neurons of each layer are cut into blocks of `block` consecutive
//! neurons (the graph stage's chunk, so a shard's chunks are the chunks a single build
//! forms, and its graphs are the same to the last bit). When the graph stage runs
//! neighbouring layers together (a band of `band` layers, see
//! `BatchConfig::band_layers`), block `c` of every layer of a band goes to one shard,
//! as it is one chunk. Blocks are taken in layer order and dealt out as contiguous runs
//! whose cost is about `1 / count` of the whole; a neuron of layer `l` costs `l + 1`
//! (every forward pass runs up to its layer). The owner of a neuron is therefore a pure
//! function of its id, the selection, the block, the band and `count`: every worker of
//! an array job needs only its own index.

use serde::{Deserialize, Serialize};

/// Shard `index` of `count` (from 0) of a build, cut in blocks of `block` neurons.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    /// This shard, `0..count`.
    pub index: u32,
    /// How many shards the build is cut into.
    pub count: u32,
    /// Consecutive selected neurons of a layer that always go to one shard.
    pub block: u32,
}

/// The most shards a build may be cut into.
pub const MAX_SHARDS: u32 = 1 << 16;

impl Shard {
    /// Parses `I/N` (shard `I` of `N`, from 0, as Slurm's `SLURM_ARRAY_TASK_ID` and
    /// Kubernetes' `JOB_COMPLETION_INDEX` count) with blocks of `block` neurons.
    pub fn parse(text: &str, block: usize) -> Result<Shard, String> {
        let (i, n) = text
            .split_once('/')
            .ok_or_else(|| format!("`{text}` is not I/N (for example 0/4)"))?;
        let number = |s: &str, what: &str| {
            s.trim()
                .parse::<u32>()
                .map_err(|_| format!("`{text}`: {what} `{s}` is not a whole number"))
        };
        let (index, count) = (number(i, "the shard")?, number(n, "the count")?);
        if count == 0 || count > MAX_SHARDS {
            return Err(format!("`{text}`: the count must be 1 to {MAX_SHARDS}"));
        }
        if index >= count {
            return Err(format!(
                "`{text}`: shards are numbered from 0 to {}",
                count - 1
            ));
        }
        if block == 0 || block > u32::MAX as usize {
            return Err(format!("`{text}`: the block size must be at least 1"));
        }
        Ok(Shard {
            index,
            count,
            block: block as u32,
        })
    }

    /// The neurons of each of `layers` (ascending) this shard builds, out of the
    /// selected `neurons` (ascending), with bands of `band` layers.
    pub fn select(&self, layers: &[usize], neurons: &[usize], band: usize) -> Vec<Vec<usize>> {
        let mut out = vec![Vec::new(); layers.len()];
        self.for_each_block(layers, neurons.len(), band, |li, pos, len, owner| {
            if owner == self.index {
                out[li].extend_from_slice(&neurons[pos..pos + len]);
            }
        });
        out
    }

    /// The shard that owns the neuron at position `pos` of the `selected` neurons of
    /// layer `layers[li]`, with bands of `band` layers.
    pub fn owner(
        &self,
        layers: &[usize],
        selected: usize,
        band: usize,
        li: usize,
        pos: usize,
    ) -> u32 {
        let block = self.block as usize;
        let mut owner = 0;
        self.for_each_block(layers, selected, band, |l, p, _, o| {
            if l == li && (p..p + block).contains(&pos) {
                owner = o;
            }
        });
        owner
    }

    /// Calls `f(layer position, first neuron position, length, owner)` for every block,
    /// in layer order.
    fn for_each_block(
        &self,
        layers: &[usize],
        selected: usize,
        band: usize,
        mut f: impl FnMut(usize, usize, usize, u32),
    ) {
        let block = (self.block as usize).max(1);
        let band = band.max(1);
        let total: u128 = layers
            .iter()
            .map(|&l| (l as u128 + 1) * selected as u128)
            .sum();
        if total == 0 {
            return;
        }
        let mut before: u128 = 0;
        let mut first = 0;
        while first < layers.len() {
            // The layers of one band: consecutive entries with the same band.
            let mut end = first + 1;
            while end < layers.len() && layers[end] / band == layers[first] / band {
                end += 1;
            }
            for pos in (0..selected).step_by(block) {
                let len = block.min(selected - pos);
                let cost: u128 = layers[first..end]
                    .iter()
                    .map(|&l| (l as u128 + 1) * len as u128)
                    .sum();
                let owner = ((2 * before + cost) * self.count as u128) / (2 * total);
                let owner = owner.min(self.count as u128 - 1) as u32;
                for li in first..end {
                    f(li, pos, len, owner);
                }
                before += cost;
            }
            first = end;
        }
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_reads_i_of_n_and_names_bad_input() {
        let s = Shard::parse("2/5", 32).unwrap();
        assert_eq!((s.index, s.count, s.block), (2, 5, 32));
        for bad in ["5/5", "1", "a/2", "0/0", "-1/3", "1/2/3"] {
            assert!(Shard::parse(bad, 32).is_err(), "{bad}");
        }
    }

    /// The `count` shards of a build in blocks of `block` units.
    fn shards(count: u32, block: u32) -> impl Iterator<Item = Shard> {
        (0..count).map(move |index| Shard {
            index,
            count,
            block,
        })
    }

    #[test]
    fn shards_partition_the_units_in_whole_blocks() {
        let layers = [0, 1, 2, 7];
        let neurons: Vec<usize> = (0..100).map(|i| i * 3).collect();
        for count in [1, 2, 3, 5, 8, 40] {
            let mut seen = vec![vec![0u32; neurons.len()]; layers.len()];
            for shard in shards(count, 16) {
                let index = shard.index;
                for (li, of_layer) in shard.select(&layers, &neurons, 1).iter().enumerate() {
                    for n in of_layer {
                        let pos = neurons.binary_search(n).unwrap();
                        seen[li][pos] += 1;
                        assert_eq!(shard.owner(&layers, neurons.len(), 1, li, pos), index);
                        // Blocks are whole: the block's first neuron has the same owner.
                        let first = pos / 16 * 16;
                        assert_eq!(shard.owner(&layers, neurons.len(), 1, li, first), index);
                    }
                }
            }
            assert!(seen.iter().flatten().all(|&c| c == 1), "count {count}");
        }
    }

    #[test]
    fn shares_of_cost_are_balanced() {
        // 30 layers of 1536 neurons in blocks of 32: each of 8 shards gets 1/8 of the
        // cost within one block of the deepest layer.
        let layers: Vec<usize> = (0..30).collect();
        let neurons: Vec<usize> = (0..1536).collect();
        let total: usize = layers.iter().map(|l| (l + 1) * 1536).sum();
        for shard in shards(8, 32) {
            let index = shard.index;
            let cost: usize = shard
                .select(&layers, &neurons, 1)
                .iter()
                .zip(&layers)
                .map(|(n, l)| n.len() * (l + 1))
                .sum();
            let share = total / 8;
            assert!(
                cost.abs_diff(share) <= 32 * 30,
                "shard {index}: {cost} vs {share}"
            );
        }
    }

    #[test]
    fn a_band_of_layers_goes_to_one_shard_block_by_block() {
        // Bands of 2: layers 2 and 3 are one band, 7 another (6 and 7 share a band, but
        // 6 is not selected).
        let layers = [2, 3, 7];
        let neurons: Vec<usize> = (0..100).collect();
        for count in [1, 2, 3, 5, 9] {
            let mut seen = vec![vec![0u32; neurons.len()]; layers.len()];
            for shard in shards(count, 16) {
                let index = shard.index;
                let owned = shard.select(&layers, &neurons, 2);
                // Block c of layer 2 and block c of layer 3 have one owner.
                assert_eq!(owned[0], owned[1], "count {count} shard {index}");
                for (li, of_layer) in owned.iter().enumerate() {
                    for &n in of_layer {
                        seen[li][n] += 1;
                        assert_eq!(shard.owner(&layers, neurons.len(), 2, li, n), index);
                    }
                }
            }
            assert!(seen.iter().flatten().all(|&c| c == 1), "count {count}");
        }
    }
}
