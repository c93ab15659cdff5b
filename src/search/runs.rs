//! Writing the tantivy part in sorted runs.
//!
//! Neurons are cut into chunks of about `chunk_paths` paths (whole neurons). Worker
//! threads sort each chunk's paths by the ranking key (activation descending, then the
//! neuron's F1 descending, then neuron id ascending) and write it as a one-segment index
//! of its own; at the end the chunk segments are stacked, in chunk order, into the one
//! segment of the generation. Each chunk is a *run* of that segment, sorted, so a query
//! finds each run's best neurons by reading its matches from the front and stopping
//! early (see `collect::top_neurons`).

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;

use tantivy::directory::MmapDirectory;
use tantivy::indexer::merge_filtered_segments;
use tantivy::{Index, IndexSettings, SingleSegmentIndexWriter, TantivyDocument};

use super::classes::Class;
use super::schema::{self, Fields};
use super::{NeuronPaths, Result, SearchError};

/// Default number of paths per run.
pub const DEFAULT_CHUNK_PATHS: usize = 1 << 20;

/// Token id of IGNORE inside a chunk.
const IGNORE: u32 = u32::MAX;

/// Memory hint of one chunk writer (sizes its term hash table).
const CHUNK_BUDGET: usize = 64 << 20;

/// A neuron of a chunk.
struct ChunkNeuron {
    ord: u32,
    nid: u64,
    layer: u16,
    f1: f32,
}

/// A path of a chunk: its tokens are `tokens[start..start + len]`.
struct ChunkPath {
    act: f32,
    neuron: u32,
    start: u32,
    len: u32,
}

#[derive(Default)]
struct Chunk {
    neurons: Vec<ChunkNeuron>,
    paths: Vec<ChunkPath>,
    tokens: Vec<u32>,
}

/// A chunk to write, with the token strings known when it was cut.
struct Job {
    number: usize,
    chunk: Chunk,
    vocab: Arc<Vec<Arc<str>>>,
}

/// Writes paths in sorted runs; see the module documentation.
pub(crate) struct RunWriter {
    tantivy_dir: PathBuf,
    chunks_dir: PathBuf,
    chunk_paths: usize,
    pending: Chunk,
    vocab: Vec<Arc<str>>,
    sent: usize,
    tx: Option<SyncSender<Job>>,
    workers: Vec<JoinHandle<Result<()>>>,
}

impl RunWriter {
    /// A writer into the (empty) tantivy folder `tantivy_dir`, cutting chunks of about
    /// `chunk_paths` paths (at least 1); scratch space goes to `chunks_dir`.
    pub fn new(tantivy_dir: &Path, chunks_dir: &Path, chunk_paths: usize) -> Result<Self> {
        fs::create_dir_all(chunks_dir).map_err(|e| SearchError::io(chunks_dir, e))?;
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
        let (tx, rx) = sync_channel::<Job>(0);
        let rx = Arc::new(std::sync::Mutex::new(rx));
        let workers = (0..threads)
            .map(|_| {
                let rx = rx.clone();
                let dir = chunks_dir.to_path_buf();
                std::thread::spawn(move || loop {
                    let job = rx.lock().expect("job queue").recv();
                    match job {
                        Ok(job) => write_chunk(&dir, job)?,
                        Err(_) => return Ok(()),
                    }
                })
            })
            .collect();
        Ok(RunWriter {
            tantivy_dir: tantivy_dir.to_path_buf(),
            chunks_dir: chunks_dir.to_path_buf(),
            chunk_paths: chunk_paths.max(1),
            pending: Chunk::default(),
            vocab: Vec::new(),
            sent: 0,
            tx: Some(tx),
            workers,
        })
    }

    /// Adds neuron `n` (its ordinal `ord`); `ids` are the token ids of its paths'
    /// tokens in order, and `strings` every token string by id so far.
    pub fn add(
        &mut self,
        ord: u32,
        n: &NeuronPaths,
        ids: &[u32],
        strings: &[String],
    ) -> Result<()> {
        let c = &mut self.pending;
        let neuron = c.neurons.len() as u32;
        c.neurons.push(ChunkNeuron {
            ord,
            nid: schema::nid(n.neuron),
            layer: n.neuron.layer,
            f1: n.f1,
        });
        let mut at = 0;
        for p in &n.paths {
            let start = u32::try_from(c.tokens.len())
                .map_err(|_| SearchError::Input("a chunk holds too many tokens".into()))?;
            for t in &p.tokens {
                c.tokens.push(match t {
                    Some(_) => {
                        at += 1;
                        ids[at - 1]
                    }
                    None => IGNORE,
                });
            }
            c.paths.push(ChunkPath {
                act: p.activation,
                neuron,
                start,
                len: p.tokens.len() as u32,
            });
        }
        for s in &strings[self.vocab.len()..] {
            self.vocab.push(Arc::from(s.as_str()));
        }
        if c.paths.len() >= self.chunk_paths {
            self.send()?;
        }
        Ok(())
    }

    fn send(&mut self) -> Result<()> {
        let chunk = std::mem::take(&mut self.pending);
        if chunk.paths.is_empty() {
            return Ok(());
        }
        let job = Job {
            number: self.sent,
            chunk,
            vocab: Arc::new(self.vocab.clone()),
        };
        self.sent += 1;
        let sent = self.tx.as_ref().map(|tx| tx.send(job).is_ok());
        if sent != Some(true) {
            // A worker failed: its error comes out of `finish`.
            return self
                .join()
                .and(Err(SearchError::Input("chunk writer stopped".into())));
        }
        Ok(())
    }

    fn join(&mut self) -> Result<()> {
        self.tx = None;
        let mut result = Ok(());
        for w in self.workers.drain(..) {
            let r = w
                .join()
                .unwrap_or_else(|_| Err(SearchError::Input("a chunk writer panicked".into())));
            if result.is_ok() {
                result = r;
            }
        }
        result
    }

    /// Writes the last chunk, stacks every chunk into the tantivy folder and returns the
    /// run lengths (documents per run, in document order).
    pub fn finish(mut self) -> Result<Vec<u32>> {
        self.send()?;
        self.join()?;
        let tv = |e: tantivy::TantivyError| SearchError::tantivy(&self.tantivy_dir, e);
        let mut segments = Vec::new();
        let mut runs = Vec::new();
        for number in 0..self.sent {
            let index = Index::open_in_dir(chunk_dir(&self.chunks_dir, number)).map_err(tv)?;
            for s in index.searchable_segments().map_err(tv)? {
                runs.push(s.meta().max_doc());
                segments.push(s);
            }
        }
        if segments.is_empty() {
            Index::create_in_dir(&self.tantivy_dir, schema::schema().0).map_err(tv)?;
        } else {
            let out = MmapDirectory::open(&self.tantivy_dir)
                .map_err(|e| SearchError::tantivy(&self.tantivy_dir, e))?;
            let filters = segments.iter().map(|_| None).collect();
            merge_filtered_segments(&segments, IndexSettings::default(), filters, out)
                .map_err(tv)?;
        }
        drop(segments);
        fs::remove_dir_all(&self.chunks_dir).map_err(|e| SearchError::io(&self.chunks_dir, e))?;
        Ok(runs)
    }
}

impl Drop for RunWriter {
    fn drop(&mut self) {
        // after an error elsewhere: let the workers stop before the folder goes
        let _ = self.join();
    }
}

fn chunk_dir(dir: &Path, number: usize) -> PathBuf {
    dir.join(format!("chunk-{number:06}"))
}

/// The ranking key of a path as one integer, ascending = best first.
fn sort_key(act: f32, rank: u32) -> u64 {
    let bits = act.to_bits();
    // total order of f32 as u32, then reversed (highest activation first)
    let up = if bits >> 31 == 1 {
        !bits
    } else {
        bits | 1 << 31
    };
    ((!up as u64) << 32) | rank as u64
}

fn write_chunk(dir: &Path, job: Job) -> Result<()> {
    let Job {
        number,
        chunk,
        vocab,
    } = job;
    let path = chunk_dir(dir, number);
    fs::create_dir_all(&path).map_err(|e| SearchError::io(&path, e))?;
    let tv = |e: tantivy::TantivyError| SearchError::tantivy(&path, e);
    // neurons by F1 descending, then id ascending
    let mut by_rank: Vec<u32> = (0..chunk.neurons.len() as u32).collect();
    by_rank.sort_unstable_by(|&a, &b| {
        let (a, b) = (&chunk.neurons[a as usize], &chunk.neurons[b as usize]);
        b.f1.total_cmp(&a.f1).then(a.nid.cmp(&b.nid))
    });
    let mut rank = vec![0u32; chunk.neurons.len()];
    for (r, &n) in by_rank.iter().enumerate() {
        rank[n as usize] = r as u32;
    }
    let mut order: Vec<(u64, u32)> = chunk
        .paths
        .iter()
        .enumerate()
        .map(|(i, p)| (sort_key(p.act, rank[p.neuron as usize]), i as u32))
        .collect();
    order.sort_unstable();
    let (schema, f) = schema::schema();
    let index = Index::create_in_dir(&path, schema).map_err(tv)?;
    let mut writer: SingleSegmentIndexWriter =
        SingleSegmentIndexWriter::new(index, CHUNK_BUDGET).map_err(tv)?;
    let mut tokens: Vec<Option<&str>> = Vec::new();
    for (_, i) in order {
        let p = &chunk.paths[i as usize];
        let n = &chunk.neurons[p.neuron as usize];
        tokens.clear();
        tokens.extend(
            chunk.tokens[p.start as usize..(p.start + p.len) as usize]
                .iter()
                .map(|&t| (t != IGNORE).then(|| &*vocab[t as usize])),
        );
        writer
            .add_document(path_doc(&f, n, p.act, &tokens))
            .map_err(tv)?;
    }
    writer.finalize().map_err(tv)?;
    Ok(())
}

/// The tantivy document of one path.
fn path_doc(f: &Fields, n: &ChunkNeuron, act: f32, tokens: &[Option<&str>]) -> TantivyDocument {
    let mut doc = TantivyDocument::default();
    doc.add_u64(f.ord, n.ord as u64);
    doc.add_u64(f.layer, n.layer as u64);
    doc.add_f64(f.act, act as f64);
    let first = tokens[0].expect("checked by the caller");
    doc.add_text(f.tok, first);
    for c in Class::of(first) {
        doc.add_text(f.tok_class, c.name());
    }
    if let Some(Some(t)) = tokens.get(1) {
        doc.add_text(f.after, t);
        for c in Class::of(t) {
            doc.add_text(f.after_class, c.name());
        }
    }
    let mut ctx: Vec<&str> = tokens[1..].iter().flatten().copied().collect();
    ctx.sort_unstable();
    ctx.dedup();
    let mut classes: Vec<Class> = ctx.iter().flat_map(|t| Class::of(t)).collect();
    classes.sort_unstable();
    classes.dedup();
    for t in ctx {
        doc.add_text(f.ctx, t);
    }
    for c in classes {
        doc.add_text(f.ctx_class, c.name());
    }
    // the same bytes as a `Vec<Option<String>>`
    doc.add_bytes(
        f.path,
        &postcard::to_allocvec(tokens).expect("postcard into a Vec"),
    );
    doc
}
