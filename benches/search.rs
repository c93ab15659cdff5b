//! Scale benchmark of the search engine on a synthetic store.
//!
//! `cargo bench --bench search -- [NEURONS]` (or `N2G_BENCH_NEURONS`; default 1,000,000).
//! Neurons have realistic shape: Zipf(1.0) tokens over a 50k vocabulary, 1–20 activating
//! tokens, 0–40 context tokens at depths 1–6, 1–2 paths per activating token.
//! Prints: index build rate, disk bytes per neuron, query p50/p99 over 24 query shapes,
//! `similar` top-10 p50/p99, and `similar --all` time over 50,000 neurons.

use std::path::Path;
use std::time::Instant;

use n2g_index::search::{NeuronPaths, SearchIndex, SearchPath};
use n2g_index::NeuronId;

pub const VOCAB: usize = 50_000;
pub const LAYERS: u64 = 12;
const COMMON: &[&str] = &[
    "the", ",", ".", "of", "and", "to", "a", "in", "\n", "is", "that", "for", "it", "as", "was",
    "with", "be", "by", "on", "not", "he", "i", "this", "are", "or", "his", "from", "at", "which",
    "but", "\n\n", "(", ")", ":", "\"", "'s", "-", ";", "?", "!",
];

/// splitmix64: a small deterministic generator.
pub struct Rng(pub u64);

impl Rng {
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    pub fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

pub struct Synth {
    pub tokens: Vec<String>,
    cdf: Vec<f64>,
}

impl Synth {
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        let tokens = (0..VOCAB)
            .map(|r| match r {
                r if r < COMMON.len() => COMMON[r].to_string(),
                r if r % 20 == 0 => format!("{}", r / 20),
                r => format!("w{r}"),
            })
            .collect();
        let mut cdf = Vec::with_capacity(VOCAB);
        let mut total = 0.0;
        for r in 0..VOCAB {
            total += 1.0 / (r as f64 + 1.0);
            cdf.push(total);
        }
        for c in &mut cdf {
            *c /= total;
        }
        Synth { tokens, cdf }
    }

    fn zipf(&self, rng: &mut Rng) -> usize {
        let u = rng.unit();
        self.cdf.partition_point(|&c| c < u).min(VOCAB - 1)
    }

    pub fn neuron(&self, i: u64, per_layer: u64) -> NeuronPaths {
        let mut rng = Rng(i.wrapping_mul(0x2545_f491_4f6c_dd1d) ^ 0xfeed);
        let mut acts: Vec<usize> = (0..1 + rng.below(20))
            .map(|_| self.zipf(&mut rng))
            .collect();
        acts.sort_unstable();
        acts.dedup();
        let mut paths: Vec<Vec<Option<String>>> = Vec::new();
        for &a in &acts {
            for _ in 0..1 + rng.below(2) {
                paths.push(vec![Some(self.tokens[a].clone())]);
            }
        }
        for _ in 0..rng.below(41) {
            let c = self.zipf(&mut rng);
            let p = rng.below(paths.len() as u64) as usize;
            let depth = 1 + rng.below(6) as usize;
            let path = &mut paths[p];
            if path.len() <= depth {
                path.resize(depth + 1, None);
            }
            path[depth] = Some(self.tokens[c].clone());
        }
        NeuronPaths {
            neuron: NeuronId::new((i / per_layer) as usize, (i % per_layer) as usize),
            f1: rng.unit() as f32,
            paths: paths
                .into_iter()
                .map(|tokens| SearchPath {
                    tokens,
                    activation: (0.5 + 0.5 * rng.unit()) as f32,
                })
                .collect(),
        }
    }

    fn store(&self, n: u64) -> impl Iterator<Item = NeuronPaths> + '_ {
        let per_layer = n.div_ceil(LAYERS);
        (0..n).map(move |i| self.neuron(i, per_layer))
    }
}

fn du(p: &Path) -> u64 {
    let mut total = 0;
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            let m = e.metadata().unwrap();
            total += if m.is_dir() { du(&e.path()) } else { m.len() };
        }
    }
    total
}

fn percentiles(mut ms: Vec<f64>) -> (f64, f64, f64) {
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms[((ms.len() as f64 - 1.0) * q).round() as usize];
    (at(0.5), at(0.99), *ms.last().unwrap())
}

pub fn shapes(s: &Synth, rng: &mut Rng) -> Vec<String> {
    let q = |t: &str| format!("{t:?}");
    let common = |rng: &mut Rng| q(&s.tokens[rng.below(10) as usize]);
    let mid = |rng: &mut Rng| q(&s.tokens[100 + rng.below(1900) as usize]);
    let rare = |rng: &mut Rng| q(&s.tokens[5000 + rng.below(45000) as usize]);
    let (c, c2, m, m2, m3, r, r2) = (
        common(rng),
        common(rng),
        mid(rng),
        mid(rng),
        mid(rng),
        rare(rng),
        rare(rng),
    );
    let d = 1 + rng.below(9);
    vec![
        format!("token:{c}"),
        format!("token:{m}"),
        format!("token:{r}"),
        format!("context:{m}"),
        format!("after:{m}"),
        format!("any:{m}"),
        format!("token:{m} context:{c}"),
        format!("token:{c} after:#digit"),
        format!("token:{m} after:{c2}"),
        format!("token:{m} OR token:{m2}"),
        format!("(token:{m} OR token:{m2}) context:{c}"),
        format!("token:{m} -context:{c}"),
        "token:#digit".to_string(),
        format!("context:#punct token:{m}"),
        format!("token:/^w{d}[0-9]$/"),
        format!("token:{m} layer:3"),
        format!("token:{c} f1>=0.6"),
        format!("token:{c} act>=0.8"),
        format!("token:{m} layer:0..2 f1>=0.5"),
        format!("any:{c} any:{m}"),
        format!("NOT token:{c} context:{m3}"),
        format!("token:{r} OR context:{r2}"),
        format!("context:#newline token:{m}"),
        format!("token:\",\" after:{m}"),
    ]
}

fn main() {
    let n: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.replace('_', "").parse().ok())
        .or_else(|| std::env::var("N2G_BENCH_NEURONS").ok()?.parse().ok())
        .unwrap_or(1_000_000);
    let synth = Synth::new();
    let root = tempfile::tempdir().expect("temp dir");
    let dir = root.path().join("search");
    println!(
        "n2g-index search benchmark: {n} neurons, {} cores",
        std::thread::available_parallelism().map_or(1, |c| c.get())
    );

    let t = Instant::now();
    let index = SearchIndex::build(&dir, synth.store(n)).expect("build");
    let secs = t.elapsed().as_secs_f64();
    let paths = index.num_paths();
    println!(
        "build: {secs:.1} s, {:.0} neurons/s ({paths} paths, {:.1} per neuron)",
        n as f64 / secs,
        paths as f64 / n as f64
    );
    let bytes = du(&dir);
    println!(
        "disk: {bytes} bytes, {:.0} bytes per neuron",
        bytes as f64 / n as f64
    );

    let mut rng = Rng(7);
    let mut all = Vec::new();
    let mut worst = (0.0, String::new());
    let shape_count = shapes(&synth, &mut Rng(1)).len();
    let mut per_shape = vec![Vec::new(); shape_count];
    for q in shapes(&synth, &mut Rng(99)) {
        index.query(&q, 20).expect("warm-up");
    }
    for _ in 0..10 {
        for (i, q) in shapes(&synth, &mut rng).into_iter().enumerate() {
            let t = Instant::now();
            let hits = index.query(&q, 20).expect("query");
            let ms = t.elapsed().as_secs_f64() * 1e3;
            std::hint::black_box(hits);
            if ms > worst.0 {
                worst = (ms, q.clone());
            }
            all.push(ms);
            per_shape[i].push(ms);
        }
    }
    let (p50, p99, max) = percentiles(all.clone());
    println!(
        "query: {} runs over {shape_count} shapes, p50 {p50:.2} ms, p99 {p99:.2} ms, max {max:.2} ms (slowest: {})",
        all.len(),
        worst.1
    );
    for (i, (q, v)) in shapes(&synth, &mut Rng(1))
        .into_iter()
        .zip(per_shape)
        .enumerate()
    {
        let (p50, _, max) = percentiles(v);
        println!(
            "  shape {:>2} p50 {p50:>7.2} ms  max {max:>7.2} ms  e.g. {q}",
            i + 1
        );
    }

    let mut sims = Vec::new();
    let per_layer = n.div_ceil(LAYERS);
    for _ in 0..200 {
        let i = rng.below(n);
        let id = NeuronId::new((i / per_layer) as usize, (i % per_layer) as usize);
        let t = Instant::now();
        std::hint::black_box(index.similar(id, 10).expect("similar"));
        sims.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let (p50, p99, max) = percentiles(sims);
    println!("similar top-10: 200 runs, p50 {p50:.2} ms, p99 {p99:.2} ms, max {max:.2} ms");
    drop(index);

    let m = 50_000.min(n);
    let dir2 = root.path().join("search-all");
    let small = SearchIndex::build(&dir2, synth.store(m)).expect("build");
    let t = Instant::now();
    let pairs = small.similar_all(0.9).expect("similar_all");
    println!(
        "similar --all over {m} neurons: {:.2} s, {} pairs",
        t.elapsed().as_secs_f64(),
        pairs.len()
    );
}
