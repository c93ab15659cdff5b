//! Sharded builds: three shards of layers 0–2 built as separate processes at once and
//! merged equal one build of the same neurons in every read output, also when the
//! builds skip dense units; slices by layer merge the same way; missing, overlapping, mismatched and unfinished shards are
//! refused by name; a merge run again writes the same index.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod common;
use common::{bin, SMALL_CORPUS};
use n2g_index::n2g::BatchConfig;

/// Build arguments shared by the single build and the shards.
fn build(index: &Path, layers: &str, extra: &[&str]) -> Command {
    let mut c = bin();
    c.args(["build", "--corpus", SMALL_CORPUS, "--layers", layers])
        .args(["--neurons", "0-31", "--graph-chunk", "8", "--quiet"])
        .args(extra)
        .arg("--index")
        .arg(index);
    c
}

fn ok(out: Output) -> Output {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn refused(out: Output, needles: &[&str]) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "expected a refusal naming {needles:?}"
    );
    for n in needles {
        assert!(err.contains(n), "{n:?} not in: {err}");
    }
    assert!(!err.contains("panicked"), "{err}");
}

/// Every read output of an index that does not name its folder.
fn reads(index: &Path) -> Vec<String> {
    let run = |args: &[&str]| {
        let out = ok(bin().args(args).arg("--index").arg(index).output().unwrap());
        String::from_utf8(out.stdout).unwrap()
    };
    vec![
        run(&["export"]),
        run(&["export", "--examples"]),
        run(&["query", "token:the", "--json"]),
        run(&["query", "any:/^[A-Z]/ layer:1..2"]),
        run(&["similar", "2:17", "--json"]),
        run(&["similar", "--all", "--threshold", "0.5", "--json"]),
        run(&["show", "1:30", "--json"]),
    ]
}

fn merge(shards: &[PathBuf], into: &Path) -> Output {
    bin()
        .arg("merge")
        .args(shards)
        .arg("--into")
        .arg(into)
        .arg("--quiet")
        .output()
        .unwrap()
}

/// Builds layers 0–2 with `extra` options into `tmp/single` and, at the same time, as
/// three shards into `tmp/shard0..2`; returns the shards' folders.
fn build_single_and_shards(tmp: &Path, extra: &[&str]) -> Vec<PathBuf> {
    let mut single = build(&tmp.join("single"), "0-2", extra).spawn().unwrap();
    let shards: Vec<PathBuf> = (0..3).map(|i| tmp.join(format!("shard{i}"))).collect();
    let children: Vec<_> = shards
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let shard = format!("{i}/3");
            let args = [extra, &["--shard", &shard]].concat();
            build(d, "0-2", &args).spawn().unwrap()
        })
        .collect();
    assert!(single.wait().unwrap().success());
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    shards
}

#[test]
fn merged_shards_equal_one_build() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = |name: &str| tmp.path().join(name);
    let shards = build_single_and_shards(tmp.path(), &[]);
    // Every shard holds part of the neurons, none all of them.
    for d in &shards {
        let out = ok(bin().args(["export", "--index"]).arg(d).output().unwrap());
        let lines = String::from_utf8(out.stdout).unwrap().lines().count();
        assert!(lines > 0 && lines < 96, "{}: {lines} neurons", d.display());
    }
    let expected = reads(&dir("single"));

    ok(merge(&shards, &dir("merged")));
    assert!(
        reads(&dir("merged")) == expected,
        "merged shards differ from one build"
    );
    // Again over the finished merge: the same index.
    ok(merge(&shards, &dir("merged")));
    assert!(reads(&dir("merged")) == expected);
    // A shard missing, or given twice.
    refused(
        merge(&shards[..2], &dir("m1")),
        &["unbuilt", "missing shards: 2/3"],
    );
    let twice = [shards.clone(), vec![shards[1].clone()]].concat();
    refused(merge(&twice, &dir("m2")), &["shards must not overlap"]);
    refused(merge(&shards, &shards[0]), &["is one of the shards"]);

    // A shard of other settings, and one whose graphs are unbuilt.
    let other = dir("other");
    ok(build(&other, "0-2", &["--shard", "1/3", "--top-k", "10"])
        .output()
        .unwrap());
    let mixed = vec![shards[0].clone(), other, shards[2].clone()];
    refused(merge(&mixed, &dir("m3")), &["other inputs", "--top-k"]);
    let unfinished = dir("unfinished");
    ok(
        build(&unfinished, "0-2", &["--shard", "1/3", "--scan-only"])
            .output()
            .unwrap(),
    );
    let mixed = vec![shards[0].clone(), unfinished, shards[2].clone()];
    refused(
        merge(&mixed, &dir("m4")),
        &["unfinished", "run its build again"],
    );

    // Slices by layer merge to the same index too.
    let (a, b) = (dir("layers01"), dir("layer2"));
    ok(build(&a, "0-1", &[]).output().unwrap());
    ok(build(&b, "2", &[]).output().unwrap());
    ok(merge(&[b, a], &dir("slices")));
    assert!(
        reads(&dir("slices")) == expected,
        "merged slices differ from one build"
    );
}

#[test]
fn bad_shard_options_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    for (shard, needle) in [
        ("3/3", "numbered from 0 to 2"),
        ("1", "not I/N"),
        ("0/0", "count must be"),
        ("x/2", "not a whole number"),
    ] {
        let out = build(&tmp.path().join("i"), "0-2", &["--shard", shard])
            .output()
            .unwrap();
        refused(out, &["--shard", needle]);
    }
    // More shards than blocks: 12 blocks of 8 neurons leave one of 13 shards empty.
    let neurons: Vec<usize> = (0..32).collect();
    let empty = (0..13)
        .find(|&index| {
            let shard = n2g_index::Shard {
                index,
                count: 13,
                block: 8,
            };
            shard
                .select(&[0, 1, 2], &neurons, BatchConfig::default().band_layers)
                .iter()
                .all(Vec::is_empty)
        })
        .unwrap();
    let empty = format!("{empty}/13");
    let out = build(&tmp.path().join("j"), "0-2", &["--shard", &empty])
        .output()
        .unwrap();
    refused(out, &["has no neurons", "use fewer shards"]);
}

/// The units an index skipped as dense, from `info --json`.
fn skipped_dense(index: &Path) -> serde_json::Value {
    let out = ok(bin()
        .args(["info", "--json", "--index"])
        .arg(index)
        .output()
        .unwrap());
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    info["skipped_dense"].clone()
}

#[test]
fn shards_skipping_dense_units_equal_one_build() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = |name: &str| tmp.path().join(name);
    // About a fifth of these neurons fire on more than 60% of tokens: skipped.
    let shards = build_single_and_shards(tmp.path(), &["--max-density", "0.6"]);
    let skipped = skipped_dense(&dir("single"));
    let names: Vec<&str> = skipped
        .as_array()
        .expect("a list of skipped units")
        .iter()
        .filter_map(|u| u.as_str())
        .collect();
    // A dense unit ahead of a layer's last block of 8 shifts every later neuron's chunk
    // if chunks were cut from what is left to build.
    let early = names.iter().any(|n| {
        let index: usize = n.split(':').nth(1).and_then(|i| i.parse().ok()).unwrap();
        index < 24
    });
    assert!(
        early,
        "no dense unit before a layer's last block: {names:?}"
    );
    ok(merge(&shards, &dir("merged")));
    assert_eq!(skipped_dense(&dir("merged")), skipped);
    assert!(
        reads(&dir("merged")) == reads(&dir("single")),
        "merged shards that skip dense units differ from one build"
    );
}
