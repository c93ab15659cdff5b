//! Opening a search index and answering queries.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tantivy::query::{BooleanQuery, Occur, Query, TermQuery, TermSetQuery};
use tantivy::schema::{IndexRecordOption, Value};
use tantivy::{Index, IndexReader, ReloadPolicy, TantivyDocument, Term};

use super::build::{self, GenerationPaths};
use super::collect::{top_neurons, MatchedDocs};
use super::columns::Columns;
use super::compile::Compiler;
use super::hit_paths::HitPaths;
use super::query::{parse, Expr};
use super::read_only::ReadOnlyDirectory;
use super::runs::DEFAULT_CHUNK_PATHS;
use super::schema::{self, Fields};
use super::store::Store;
use super::{NeuronPaths, Result, SearchError};
use crate::store::catch_panics;
use crate::NeuronId;

/// Above this many hits, a query reads their paths through a term set rather than a
/// union of one term query per neuron (equal results; see `run_query`).
pub const MANY_HITS: usize = 1024;

/// One neuron found by a query.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Hit {
    /// The neuron.
    #[serde(serialize_with = "crate::neuron::as_display")]
    pub neuron: NeuronId,
    /// Its layer.
    pub layer: u16,
    /// Its index within the layer.
    pub index: u32,
    /// The normalised activation of its best matching path (the rank).
    pub score: f32,
    /// Its firing F1.
    pub f1: f32,
    /// Every matching path, best activation first, each in text order: context tokens
    /// from the earliest to depth 1, then the activating token last; `*` is IGNORE.
    pub paths: HitPaths,
}

/// An opened search index (one generation of a search folder).
pub struct SearchIndex {
    dir: PathBuf,
    tantivy_dir: PathBuf,
    reader: IndexReader,
    fields: Fields,
    store: Store,
    /// The fast-field columns of the segments.
    columns: Arc<Columns>,
    /// Overlap counters of `similar`, kept between calls.
    scratch: Mutex<Vec<[u16; 2]>>,
}

impl SearchIndex {
    /// Builds a fresh index into the search folder `dir` from `neurons` (a new
    /// generation; readers of the old one are not disturbed) and opens it. A second
    /// build into the same folder while one runs fails with [`SearchError::Locked`].
    pub fn build(dir: &Path, neurons: impl IntoIterator<Item = NeuronPaths>) -> Result<Self> {
        Self::build_in_runs(dir, neurons, DEFAULT_CHUNK_PATHS)
    }

    /// [`build`](Self::build) with sorted runs of about `run_paths` paths each (whole
    /// neurons; at least one). Queries read each run from its best paths and stop early,
    /// so fewer, longer runs answer faster; shorter runs need less memory to build. The
    /// default is about a million paths.
    pub fn build_in_runs(
        dir: &Path,
        neurons: impl IntoIterator<Item = NeuronPaths>,
        run_paths: usize,
    ) -> Result<Self> {
        build::build(dir, neurons, run_paths)?;
        Self::open(dir)
    }

    /// Opens the live generation of the search folder `dir`, read-only: nothing in
    /// the folder is written or locked, so any number of readers open it at once,
    /// beside a build of a new generation, on a read-only file system too.
    pub fn open(dir: &Path) -> Result<Self> {
        let mut attempts = 0;
        loop {
            let generation = GenerationPaths::current(dir)?;
            match Self::open_once(dir, &generation) {
                Ok(index) => return Ok(index),
                // A build may have replaced (and removed) the generation while it was
                // being opened: then CURRENT names another one; open that.
                Err(e) => {
                    attempts += 1;
                    let moved = GenerationPaths::current(dir)
                        .map(|g| g.root != generation.root)
                        .unwrap_or(false);
                    if !moved || attempts >= 50 {
                        return Err(e);
                    }
                }
            }
        }
    }

    fn open_once(dir: &Path, generation: &GenerationPaths) -> Result<Self> {
        generation.check_format()?;
        let tantivy_dir = generation.root.join("tantivy");
        catch_panics(
            || Self::open_generation(dir, generation, &tantivy_dir),
            |m| SearchError::unreadable(&tantivy_dir, format!("panic while reading: {m}")),
        )
    }

    fn open_generation(
        dir: &Path,
        generation: &GenerationPaths,
        tantivy_dir: &Path,
    ) -> Result<Self> {
        let tantivy_dir = tantivy_dir.to_path_buf();
        let tv = |e: tantivy::TantivyError| {
            SearchError::unreadable(&tantivy_dir, format!("tantivy: {e}"))
        };
        let index = ReadOnlyDirectory::open(&tantivy_dir)
            .and_then(Index::open)
            .map_err(tv)?;
        let fields = schema::fields(&index.schema()).map_err(|m| SearchError::Tantivy {
            path: tantivy_dir.clone(),
            message: m,
        })?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(tv)?;
        let store = Store::new(&generation.root.join("search.redb"));
        store.open()?;
        let columns = Arc::new(Columns::open(&reader.searcher()).map_err(tv)?);
        Ok(SearchIndex {
            dir: dir.to_path_buf(),
            store,
            tantivy_dir,
            reader,
            fields,
            columns,
            scratch: Mutex::new(Vec::new()),
        })
    }

    /// Checks every file of the live generation: each tantivy file against the checksum
    /// in its footer and each `search.redb` value against its own. Returns the number of
    /// tantivy files and of redb values checked, or an error naming what fails.
    pub fn verify(&self) -> Result<(usize, u64)> {
        let searcher = self.reader.searcher();
        let index = searcher.index();
        let files = catch_panics(
            || {
                let tv = |e: &dyn std::fmt::Display| {
                    SearchError::unreadable(&self.tantivy_dir, format!("tantivy: {e}"))
                };
                // Every file of the segments (not only those `.managed.json` lists,
                // which readers do not rely on), in name order.
                let mut files: Vec<std::path::PathBuf> = index
                    .searchable_segment_metas()
                    .map_err(|e| tv(&e))?
                    .iter()
                    .flat_map(|s| s.list_files())
                    .collect();
                files.sort();
                files.dedup();
                let directory = index.directory();
                let mut checked = 0;
                for file in &files {
                    if !tantivy::directory::Directory::exists(directory, file)
                        .map_err(|e| tv(&e))?
                    {
                        continue; // a segment component this index does not have
                    }
                    if !directory.validate_checksum(file).map_err(|e| tv(&e))? {
                        return Err(SearchError::unreadable(
                            self.tantivy_dir.join(file),
                            "the file fails its checksum",
                        ));
                    }
                    checked += 1;
                }
                Ok(checked)
            },
            |m| SearchError::unreadable(&self.tantivy_dir, format!("panic while reading: {m}")),
        )?;
        Ok((files, self.store.verify()?))
    }

    /// The search folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Number of path documents.
    pub fn num_paths(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    pub(crate) fn store(&self) -> &Store {
        &self.store
    }

    /// The kept overlap counters of `similar` (empty while another call holds them).
    pub(crate) fn take_scratch(&self) -> Vec<[u16; 2]> {
        self.scratch
            .try_lock()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default()
    }

    /// Gives the overlap counters back for the next call.
    pub(crate) fn put_scratch(&self, v: Vec<[u16; 2]>) {
        if let Ok(mut s) = self.scratch.try_lock() {
            *s = v;
        }
    }

    /// Parses and runs a query; the `limit` best neurons.
    pub fn query(&self, q: &str, limit: usize) -> Result<Vec<Hit>> {
        self.query_expr(&parse(q)?, limit)
    }

    /// Runs a parsed query; the `limit` best neurons.
    pub fn query_expr(&self, e: &Expr, limit: usize) -> Result<Vec<Hit>> {
        catch_panics(
            || self.run_query(e, limit),
            |m| SearchError::unreadable(&self.tantivy_dir, format!("panic while reading: {m}")),
        )
    }

    fn run_query(&self, e: &Expr, limit: usize) -> Result<Vec<Hit>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let tv = |e: tantivy::TantivyError| {
            SearchError::unreadable(&self.tantivy_dir, format!("tantivy: {e}"))
        };
        let searcher = self.reader.searcher();
        let compiler = Compiler {
            searcher: &searcher,
            fields: self.fields,
            store: &self.store,
            tantivy_dir: &self.tantivy_dir,
            columns: self.columns.clone(),
            regexes: Default::default(),
        };
        let q = compiler.compile(e)?;
        let table = self.store.neurons()?;
        let top = top_neurons(
            &searcher,
            &self.columns,
            &*q,
            self.store.runs()?,
            table,
            limit,
        )
        .map_err(tv)?;
        if top.is_empty() {
            return Ok(Vec::new());
        }
        let terms: Vec<Term> = top
            .iter()
            .map(|k| {
                let ord = table.ordinal(schema::neuron(k.nid)).unwrap_or(u32::MAX);
                Term::from_field_u64(self.fields.ord, ord as u64)
            })
            .collect();
        // The paths of the top neurons: a union of their terms for a few, a term set (one
        // bitset of the segment's documents) for many, where the union's cost per term
        // dominates (10,000 neurons of 1,000,000: 1.2 to 2 times faster, measured).
        let neurons: Box<dyn Query> = if terms.len() > MANY_HITS {
            Box::new(TermSetQuery::new(terms))
        } else {
            let each = terms.into_iter().map(|t| {
                (
                    Occur::Should,
                    Box::new(TermQuery::new(t, IndexRecordOption::Basic)) as Box<dyn Query>,
                )
            });
            Box::new(BooleanQuery::new(each.collect()))
        };
        let paths_query = BooleanQuery::new(vec![(Occur::Must, q), (Occur::Must, neurons)]);
        let docs = searcher
            .search(&paths_query, &MatchedDocs(&self.columns))
            .map_err(tv)?;
        // Each neuron's paths as they come, with their activations; ordered below.
        let mut by_neuron: HashMap<u64, (Vec<f64>, HitPaths)> = HashMap::new();
        for (ord, act, address) in docs {
            let nid = table
                .records
                .get(ord as usize)
                .map_or(u64::MAX, |r| schema::nid(r.id));
            let doc: TantivyDocument = searcher.doc(address).map_err(tv)?;
            let bytes = doc
                .get_first(self.fields.path)
                .and_then(|v| v.as_bytes())
                .unwrap_or_default();
            let tokens: Vec<Option<&str>> = postcard::from_bytes(bytes).map_err(|e| {
                SearchError::unreadable(
                    &self.tantivy_dir,
                    format!("stored path of {address:?}: {e}"),
                )
            })?;
            let (acts, paths) = by_neuron.entry(nid).or_default();
            acts.push(act);
            paths.push(tokens.iter().rev().map(|t| t.unwrap_or("*")));
        }
        Ok(top
            .into_iter()
            .map(|k| {
                let (acts, paths) = by_neuron.remove(&k.nid).unwrap_or_default();
                let mut order: Vec<usize> = (0..acts.len()).collect();
                order.sort_by(|&a, &b| {
                    acts[b]
                        .total_cmp(&acts[a])
                        .then_with(|| paths.get(a).cmp(&paths.get(b)))
                });
                let neuron = schema::neuron(k.nid);
                Hit {
                    neuron,
                    layer: neuron.layer,
                    index: neuron.index,
                    score: k.act as f32,
                    f1: k.f1 as f32,
                    paths: paths.reordered(&order),
                }
            })
            .collect())
    }
}
