//! Corpus input: plain text, `.jsonl` / `.jsonl.gz` and fortune files, read in a
//! deterministic order and cut into token windows.
//!
//! - A folder is read recursively, files sorted by path.
//! - `.jsonl` and `.jsonl.gz`: one JSON object a line, the text in `--text-field`.
//! - Fortune files (entries separated by lines holding only `%`): one document an entry.
//!   With `--format auto` a file without a `.jsonl` extension is a fortune file when it
//!   has a line holding only `%`, else plain text (one document a file).
//! - Invalid UTF-8 is replaced (U+FFFD) and counted.

mod pieces;
mod windows;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use pieces::{encode_in_pieces, encode_with_pieces, piece_cuts, PIECE_BYTES};
pub use windows::{tokenize_windows, Window, Windows};

use crate::error::{Error, Result};

/// The relative path (from the repository root) where `scripts/setup` puts the corpus.
pub const DEFAULT_CORPUS_PATH: &str = "data/corpus/fortunes";

/// How to read corpus files.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum CorpusFormat {
    /// By extension and content (see the module docs).
    #[default]
    Auto,
    /// One document per file.
    Text,
    /// JSON lines (gzipped when the name ends in `.gz`).
    Jsonl,
    /// Fortune files: entries separated by lines holding only `%`.
    Fortune,
}

/// Which files make the corpus and how they are read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CorpusSpec {
    /// Files or folders.
    pub paths: Vec<PathBuf>,
    /// How to read them.
    pub format: CorpusFormat,
    /// The JSON field holding the text in `.jsonl` files.
    pub text_field: String,
    /// Skip (and count) `.jsonl` lines that are not JSON objects with the text field,
    /// instead of stopping with an error naming the file and line.
    pub skip_bad_lines: bool,
}

impl CorpusSpec {
    /// A spec with default options for `paths`.
    pub fn new(paths: Vec<PathBuf>) -> Self {
        CorpusSpec {
            paths,
            format: CorpusFormat::Auto,
            text_field: "text".into(),
            skip_bad_lines: false,
        }
    }
}

/// One document of the corpus.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Document {
    /// Index of its file in [`Corpus::files`].
    pub file: u32,
    /// 1-based line (jsonl) or entry number (fortune) within the file; 1 for text files.
    pub number: u32,
    /// The text.
    pub text: String,
}

/// A corpus read into memory: its documents and what reading them found.
#[derive(Clone, Debug)]
pub struct Corpus {
    /// The files read, in order.
    pub files: Vec<PathBuf>,
    /// The documents, in order.
    pub documents: Vec<Document>,
    /// Invalid UTF-8 sequences replaced by U+FFFD.
    pub invalid_utf8: u64,
    /// `.jsonl` lines skipped with `skip_bad_lines`.
    pub skipped_lines: u64,
    /// SHA-256 over the files' relative paths, contents and the reading options.
    pub fingerprint: String,
    /// Total bytes read.
    pub bytes: u64,
    /// Folder entries skipped with a warning: links to nothing, FIFOs, devices, sockets
    /// and links back into a folder already read.
    pub skipped_entries: Vec<PathBuf>,
}

impl Corpus {
    /// Reads every file of `spec`, in a deterministic order.
    pub fn read(spec: &CorpusSpec) -> Result<Corpus> {
        if spec.paths.is_empty() {
            return Err(Error::InvalidRequest("no corpus path given".into()));
        }
        let mut listing = Listing::default();
        for path in &spec.paths {
            collect_path(path, &mut listing)?;
        }
        let Listing { files, skipped, .. } = listing;
        let mut hasher = Sha256::new();
        hasher.update(format!("{:?}|{}|", spec.format, spec.text_field).as_bytes());
        let mut corpus = Corpus {
            files: Vec::new(),
            documents: Vec::new(),
            invalid_utf8: 0,
            skipped_lines: 0,
            fingerprint: String::new(),
            bytes: 0,
            skipped_entries: skipped,
        };
        for (i, file) in files.iter().enumerate() {
            let bytes = read_file(file)?;
            corpus.bytes += bytes.len() as u64;
            let name = file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            hasher.update((name.len() as u64).to_le_bytes());
            hasher.update(name.as_bytes());
            hasher.update((bytes.len() as u64).to_le_bytes());
            hasher.update(&bytes);
            let (text, bad) = decode_lossy(&bytes);
            corpus.invalid_utf8 += bad;
            let format = match spec.format {
                CorpusFormat::Auto => detect_format(file, &text),
                f => f,
            };
            let file_index = i as u32;
            match format {
                CorpusFormat::Jsonl => {
                    read_jsonl(file, file_index, &text, spec, &mut corpus)?;
                }
                CorpusFormat::Fortune => {
                    for (n, entry) in fortune_entries(&text).into_iter().enumerate() {
                        corpus.documents.push(Document {
                            file: file_index,
                            number: n as u32 + 1,
                            text: entry,
                        });
                    }
                }
                CorpusFormat::Text | CorpusFormat::Auto => {
                    if !text.trim().is_empty() {
                        corpus.documents.push(Document {
                            file: file_index,
                            number: 1,
                            text,
                        });
                    }
                }
            }
        }
        corpus.files = files;
        if corpus.documents.is_empty() {
            let list: Vec<String> = spec.paths.iter().map(|p| p.display().to_string()).collect();
            return Err(Error::InvalidRequest(format!(
                "the corpus has no documents ({}; {} file(s) read)",
                list.join(", "),
                corpus.files.len()
            )));
        }
        if !corpus.skipped_entries.is_empty() {
            tracing::warn!(
                "{} corpus folder entries skipped (links to nothing, FIFOs, devices, link loops)",
                corpus.skipped_entries.len()
            );
        }
        corpus.fingerprint = format!("{:x}", hasher.finalize());
        Ok(corpus)
    }

    /// Where a document came from, as `file:number`.
    pub fn describe(&self, doc: &Document) -> String {
        format!("{}:{}", self.files[doc.file as usize].display(), doc.number)
    }
}

/// What was left out while listing the corpus files.
#[derive(Debug, Default)]
struct Listing {
    /// The files, in order.
    files: Vec<PathBuf>,
    /// Entries of folders skipped (dangling links, FIFOs, devices, sockets, loops).
    skipped: Vec<PathBuf>,
    /// Folders already listed (canonical), so that a link loop is listed once.
    seen: std::collections::HashSet<PathBuf>,
}

/// A path given as corpus: a regular file or a folder, else an error naming it.
fn collect_path(path: &Path, out: &mut Listing) -> Result<()> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if meta.is_file() {
        out.files.push(path.to_path_buf());
        return Ok(());
    }
    if !meta.is_dir() {
        return Err(Error::InvalidRequest(format!(
            "{}: not a corpus file or folder (a device, FIFO or socket); give text, .jsonl or fortune files, or folders of them",
            path.display()
        )));
    }
    collect_dir(path, out)
}

/// Appends the files under the folder `path`, sorted, to `out`; entries that are not
/// files or folders (or whose link leads nowhere) are skipped with a warning.
fn collect_dir(path: &Path, out: &mut Listing) -> Result<()> {
    if let Ok(canonical) = path.canonicalize() {
        if !out.seen.insert(canonical) {
            tracing::warn!("{}: skipped (a link back into the corpus)", path.display());
            out.skipped.push(path.to_path_buf());
            return Ok(());
        }
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(|e| Error::io(path, e))?
        .map(|e| e.map(|e| e.path()).map_err(|err| Error::io(path, err)))
        .collect::<Result<_>>()?;
    entries.sort();
    for entry in entries {
        let name = entry.file_name().map(|n| n.to_string_lossy().into_owned());
        if name.is_some_and(|n| n.starts_with('.')) {
            continue;
        }
        match std::fs::metadata(&entry) {
            Ok(m) if m.is_file() => out.files.push(entry),
            Ok(m) if m.is_dir() => collect_dir(&entry, out)?,
            Ok(_) => {
                tracing::warn!("{}: skipped (not a file or folder)", entry.display());
                out.skipped.push(entry);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                tracing::warn!("{}: skipped (a link to nothing)", entry.display());
                out.skipped.push(entry);
            }
            Err(e) => return Err(Error::io(&entry, e)),
        }
    }
    Ok(())
}

/// The bytes of a file, gunzipped when its name ends in `.gz`.
fn read_file(path: &Path) -> Result<Vec<u8>> {
    let raw = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    if path.extension().is_some_and(|e| e == "gz") {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| Error::io(path, e))?;
        return Ok(out);
    }
    Ok(raw)
}

/// UTF-8 with invalid sequences replaced, and how many were replaced.
pub fn decode_lossy(bytes: &[u8]) -> (String, u64) {
    if let Ok(s) = std::str::from_utf8(bytes) {
        return (s.to_string(), 0);
    }
    let mut out = String::with_capacity(bytes.len());
    let mut bad = 0;
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        if !chunk.invalid().is_empty() {
            out.push('\u{FFFD}');
            bad += 1;
        }
    }
    (out, bad)
}

fn detect_format(path: &Path, text: &str) -> CorpusFormat {
    let name = path.to_string_lossy();
    if name.ends_with(".jsonl") || name.ends_with(".jsonl.gz") {
        CorpusFormat::Jsonl
    } else if text.lines().any(|l| l.trim_end_matches('\r') == "%") {
        CorpusFormat::Fortune
    } else {
        CorpusFormat::Text
    }
}

/// The entries of a fortune file: text between lines holding only `%`, trailing
/// whitespace removed, empty entries dropped.
pub fn fortune_entries(text: &str) -> Vec<String> {
    let mut entries = Vec::new();
    let mut current = String::new();
    for line in text.split_inclusive('\n') {
        let bare = line.trim_end_matches(['\n', '\r']);
        if bare == "%" {
            push_entry(&mut entries, &mut current);
        } else {
            current.push_str(line);
        }
    }
    push_entry(&mut entries, &mut current);
    entries
}

fn push_entry(entries: &mut Vec<String>, current: &mut String) {
    let entry = current.trim_end();
    if !entry.trim().is_empty() {
        entries.push(entry.to_string());
    }
    current.clear();
}

fn read_jsonl(
    path: &Path,
    file: u32,
    text: &str,
    spec: &CorpusSpec,
    corpus: &mut Corpus,
) -> Result<()> {
    let reader = BufReader::new(text.as_bytes());
    for (n, line) in reader.lines().enumerate() {
        let line = line.map_err(|e| Error::io(path, e))?;
        let number = n + 1;
        if line.trim().is_empty() {
            continue;
        }
        let problem = match serde_json::from_str::<serde_json::Value>(&line) {
            Err(e) => Some(format!("not JSON ({e})")),
            Ok(v) => match v.get(&spec.text_field) {
                Some(serde_json::Value::String(s)) => {
                    if !s.trim().is_empty() {
                        corpus.documents.push(Document {
                            file,
                            number: number as u32,
                            text: s.clone(),
                        });
                    }
                    None
                }
                Some(_) => Some(format!("field `{}` is not a string", spec.text_field)),
                None => Some(format!("no field `{}`", spec.text_field)),
            },
        };
        if let Some(problem) = problem {
            if spec.skip_bad_lines {
                corpus.skipped_lines += 1;
            } else {
                return Err(Error::InvalidRequest(format!(
                    "{}:{number}: {problem} (use --skip-bad-lines to skip such lines)",
                    path.display()
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fortune_entries_split_on_percent_lines() {
        let text = "one\nline\n%\n\n%\ntwo\n%\r\nthree";
        assert_eq!(fortune_entries(text), vec!["one\nline", "two", "three"]);
    }

    #[test]
    fn invalid_utf8_is_replaced_and_counted() {
        let (s, bad) = decode_lossy(b"ok \xff\xfe then \xc3 end");
        // Each maximal invalid sequence becomes one U+FFFD, as String::from_utf8_lossy.
        assert_eq!(bad, 3);
        assert_eq!(s, String::from_utf8_lossy(b"ok \xff\xfe then \xc3 end"));
    }
}
