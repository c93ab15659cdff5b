//! Helpers shared by the integration tests that run the `n2g-index` binary.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository root (where `data/` and `fixtures/` are).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The `n2g-index` binary, run in the repository root.
pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_n2g-index"));
    c.current_dir(root());
    c
}

/// One fortune file of the default corpus: a build on it takes seconds.
pub const SMALL_CORPUS: &str = "data/corpus/fortunes/wisdom";

/// A small build into `index`: `neurons` of layer 0 on [`SMALL_CORPUS`], quiet, with
/// `extra` options.
pub fn small_build(index: &Path, neurons: &str, extra: &[&str]) -> Command {
    let mut c = bin();
    c.args([
        "build",
        "--corpus",
        SMALL_CORPUS,
        "--layers",
        "0",
        "--neurons",
    ])
    .arg(neurons)
    .arg("--quiet")
    .args(extra)
    .arg("--index")
    .arg(index);
    c
}
