//! The `build` command for real: killed with SIGKILL mid-scan, re-run, and compared
//! with an uninterrupted run; a second build into a folder in use is refused; bad
//! corpus input gets errors naming the file and line.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use n2g_index::store::Store;

mod common;
use common::bin;

/// A small build: the first 8 neurons of layer 0 on one fortune file, with `extra`
/// options.
fn small_build(index: &Path, extra: &[&str]) -> Command {
    common::small_build(index, "0-7", extra)
}

/// Build arguments: one fortune file of the default corpus, three layers, so the scan
/// takes a few seconds and checkpoints often.
fn build_args(index: &Path) -> Vec<String> {
    [
        "build",
        "--corpus",
        "data/corpus/fortunes/wisdom",
        "--layers",
        "0-3",
        "--neurons",
        "0-255",
        "--batch-size",
        "4",
        "--checkpoint-every",
        "8",
        "--scan-only",
        "--quiet",
        "--index",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([index.display().to_string()])
    .collect()
}

fn dump(index: &Path) -> String {
    Store::open(index).unwrap().dump().unwrap()
}

/// Runs `cmd` and asserts that it succeeds (showing its stderr when not).
fn run_ok(cmd: &mut Command) -> std::process::Output {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs `cmd`, asserts that it fails, and that its stderr names every one of `needles`.
fn assert_refused(cmd: &mut Command, needles: &[&str]) {
    let out = cmd.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{needles:?} accepted");
    assert!(
        needles.iter().all(|n| err.contains(n)),
        "{needles:?}: {err}"
    );
}

/// Runs the binary with `args` and info logs, and kills it (SIGKILL on Unix) at the
/// first log line on which `kill_at` says so.
fn run_until_killed(args: Vec<String>, mut kill_at: impl FnMut(&str) -> bool) {
    let mut child = bin()
        .args(args)
        .env("N2G_LOG", "n2g_index=info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    for line in BufReader::new(stderr).lines() {
        if kill_at(&line.unwrap()) {
            child.kill().unwrap();
            break;
        }
    }
    child.wait().unwrap();
}

#[test]
fn killed_build_resumes_to_the_same_store() {
    let tmp = tempfile::tempdir().unwrap();
    let full = tmp.path().join("full");
    run_ok(bin().args(build_args(&full)));

    let killed = tmp.path().join("killed");
    // Kill as soon as the second checkpoint is committed: mid-scan, for real.
    let mut checkpoints = 0;
    run_until_killed(build_args(&killed), |line| {
        if line.contains("checkpoint committed") {
            assert!(
                line.contains("complete=false"),
                "scan finished before the kill: {line}"
            );
            checkpoints += 1;
        }
        checkpoints == 2
    });
    assert_eq!(checkpoints, 2);
    // A writer opens it (a reader would refuse a store killed mid-write; this repairs).
    let progress = Store::open_or_create(&killed)
        .unwrap()
        .scan_progress()
        .unwrap();
    assert!(!progress.complete && progress.batches_done >= 16);

    run_ok(bin().args(build_args(&killed)));
    assert_eq!(dump(&killed), dump(&full));
}

#[test]
fn continuing_with_other_options_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let index = tmp.path().join("idx");
    let mut args = build_args(&index);
    args.extend(["--max-batches".into(), "2".into()]);
    let out = bin().args(&args).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut other = build_args(&index);
    other[6] = "0-127".into(); // --neurons
    assert_refused(bin().args(&other), &["--neurons", "cannot be continued"]);
    let mut literal = args.clone();
    literal.push("--literal-special".into());
    assert_refused(
        bin().args(&literal),
        &[
            "--literal-special: stored false, now true",
            "cannot be continued",
        ],
    );
    let info = run_ok(bin().args(["info", "--index"]).arg(&index));
    let info = String::from_utf8_lossy(&info.stdout);
    assert!(
        info.contains("special tokens in the text as their ids"),
        "{info}"
    );
}

#[test]
fn bad_corpus_input_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let run = |corpus: &Path, extra: &[&str]| {
        let out = bin()
            .args([
                "build",
                "--layers",
                "0",
                "--neurons",
                "0-3",
                "--quiet",
                "--index",
            ])
            .arg(tmp.path().join("idx-bad"))
            .arg("--corpus")
            .arg(corpus)
            .args(extra)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // Missing path.
    let (ok, err) = run(&tmp.path().join("nope"), &[]);
    assert!(!ok && err.contains("nope"), "{err}");
    // Empty folder and zero-length file: no documents.
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let (ok, err) = run(&empty, &[]);
    assert!(!ok && err.contains("no documents"), "{err}");
    std::fs::write(empty.join("zero.txt"), "").unwrap();
    let (ok, err) = run(&empty, &[]);
    assert!(!ok && err.contains("no documents"), "{err}");
    // A .jsonl line that is not JSON, and one without the field.
    let jsonl = tmp.path().join("bad.jsonl");
    std::fs::write(
        &jsonl,
        "{\"text\": \"fine\"}\nnot json\n{\"body\": \"x\"}\n",
    )
    .unwrap();
    let (ok, err) = run(&jsonl, &[]);
    assert!(
        !ok && err.contains("bad.jsonl:2") && err.contains("not JSON"),
        "{err}"
    );
    let (ok, err) = run(&jsonl, &["--text-field", "body"]);
    assert!(
        !ok && err.contains("bad.jsonl:1") && err.contains("no field `body`"),
        "{err}"
    );
    std::fs::remove_dir_all(tmp.path().join("idx-bad")).ok();
    let (ok, err) = run(&jsonl, &["--skip-bad-lines"]);
    assert!(ok, "{err}");
}

#[test]
fn second_build_into_a_busy_index_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let index = tmp.path().join("busy");
    // Hold the store open in this process, as a running build would.
    let _held = Store::open_or_create(&index).unwrap();
    let out = bin().args(build_args(&index)).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("in use by another process"), "{err}");
    assert!(err.contains("n2g-index build, pid"), "{err}");
}

/// Graph-stage arguments: two layers of a few neurons, small chunks.
fn graph_args(index: &Path) -> Vec<String> {
    [
        "build",
        "--corpus",
        "data/corpus/fortunes/wisdom",
        "--layers",
        "0-1",
        "--neurons",
        "0-47",
        "--graph-chunk",
        "8",
        "--quiet",
        "--index",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([index.display().to_string()])
    .collect()
}

fn export(index: &Path) -> String {
    let out = run_ok(bin().args(["export", "--index"]).arg(index));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn killed_graph_stage_resumes_without_recomputing() {
    let tmp = tempfile::tempdir().unwrap();
    let full = tmp.path().join("full");
    run_ok(bin().args(graph_args(&full)));

    let killed = tmp.path().join("killed");
    run_until_killed(graph_args(&killed), |line| {
        line.contains("graph chunk committed")
    });
    let built = Store::open_or_create(&killed)
        .unwrap()
        .graph_keys()
        .unwrap()
        .len();
    assert!((8..96).contains(&built), "{built} graphs at the kill");
    // The batch layout decides the results' last digits: another is refused.
    let mut other_chunk = graph_args(&killed);
    let at = other_chunk
        .iter()
        .position(|a| a == "--graph-chunk")
        .unwrap();
    other_chunk[at + 1] = "16".into();
    assert_refused(
        bin().args(other_chunk),
        &[
            "another batch layout",
            "8 neurons a chunk",
            "16 neurons a chunk",
        ],
    );
    // So does the band of layers run together (layers 0 and 1 are one band by default).
    let mut other_band = graph_args(&killed);
    other_band.splice(1..1, ["--graph-band".to_string(), "1".to_string()]);
    assert_refused(
        bin().args(other_band),
        &["bands of 2 layer(s)", "--graph-band 2"],
    );

    run_ok(bin().args(graph_args(&killed)));
    assert_eq!(export(&killed), export(&full));
    // The JSON lines are well formed and carry graph and eval for every neuron.
    let lines: Vec<serde_json::Value> = export(&full)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 96);
    assert!(lines
        .iter()
        .all(|v| v["graph"].is_object() && v["eval"].is_object()));
    // show --json marks each example's part in the split: the held-out ones are as many
    // as the evaluation used, all among the top 20; the 10 ranked after them train.
    let shown = run_ok(bin().args(["show", "1:5", "--json", "--index"]).arg(&full));
    let v: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
    let roles: Vec<&str> = v["examples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles.len(), 30);
    let held_out: Vec<usize> = (0..30).filter(|&i| roles[i] == "held_out").collect();
    assert_eq!(
        held_out.len() as u64,
        v["eval"]["test_examples"].as_u64().unwrap()
    );
    assert_eq!(held_out.len(), 10);
    assert!(held_out.iter().all(|&i| i < 20), "{held_out:?}");
}

#[test]
fn authors_flag_is_the_papers_settings_spelled_out() {
    let tmp = tempfile::tempdir().unwrap();
    let preset = tmp.path().join("preset");
    run_ok(&mut small_build(&preset, &["--authors"]));
    // The paper's values (docs/N2G.md, parameters table), written out by hand.
    let spelled = tmp.path().join("spelled");
    run_ok(&mut small_build(
        &spelled,
        &[
            "--importance-threshold",
            "0.75",
            "--seeds-per-example",
            "1",
            "--no-token-alone",
            "--no-augment-activating",
            "--end-activation",
            "first",
            "--end-min-firing",
            "0",
            "--extra-train",
            "0",
        ],
    ));
    assert_eq!(export(&preset), export(&spelled));
    let store = Store::open(&preset).unwrap();
    let settings: n2g_index::n2g::GraphSettings = store
        .meta(n2g_index::n2g::KEY_GRAPH_SETTINGS)
        .unwrap()
        .unwrap();
    assert_eq!(settings.importance_threshold, 0.75);
    assert_eq!(settings.seeds_per_example, 1);
    assert!(!settings.token_alone && !settings.augment_activating);
    assert_eq!(settings.extra_train, 0);
    assert_eq!(settings.end_min_firing, 0.0);
    assert_eq!(
        settings.end_activation,
        n2g_index::n2g::EndActivation::First
    );
    assert_eq!(store.run_meta().unwrap().unwrap().scan.top_k, 20);
    drop(store);
    // info names the preset, whichever way it was asked for.
    for index in [&preset, &spelled] {
        let out = run_ok(bin().args(["info", "--index"]).arg(index));
        let info = String::from_utf8_lossy(&out.stdout);
        assert!(
            info.contains("settings     the paper's (--authors): activation 0.5 · importance 0.75"),
            "{info}"
        );
    }
    // A preset and one of the options it sets do not mix.
    assert_refused(
        &mut small_build(
            &tmp.path().join("both"),
            &["--authors", "--extra-train", "5"],
        ),
        &["--extra-train", "--authors"],
    );
}

#[test]
fn graph_options_reach_the_stored_settings_and_bad_ones_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let index = tmp.path().join("index");
    for (option, value) in [
        ("--prune-tolerance", "1.5"),
        ("--train-fraction", "1"),
        ("--prune-lengths", "10,5"),
        ("--prune-lengths", "0,5"),
        ("--end-min-firing", "1.5"),
    ] {
        assert_refused(&mut small_build(&index, &[option, value]), &[option]);
        assert!(!index.exists(), "refused before touching the index");
    }
    run_ok(&mut small_build(
        &index,
        &[
            "--train-fraction",
            "0.6",
            "--prune-lengths",
            "10,20",
            "--prune-tolerance",
            "0.25",
            "--post-context",
            "3",
            "--split-seed",
            "42",
            "--end-min-firing",
            "0.35",
        ],
    ));
    let store = Store::open(&index).unwrap();
    let s: n2g_index::n2g::GraphSettings = store
        .meta(n2g_index::n2g::KEY_GRAPH_SETTINGS)
        .unwrap()
        .unwrap();
    assert_eq!(s.prune_lengths, vec![10, 20]);
    assert_eq!((s.prune_tolerance, s.post_context, s.seed), (0.25, 3, 42));
    assert_eq!(s.end_min_firing, 0.35);
    drop(store);
    // round(20 * 0.6) = 12 of the top 20 train, 8 are held out.
    let shown = run_ok(bin().args(["show", "0:3", "--json", "--index"]).arg(&index));
    let v: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
    let held_out = v["examples"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["role"] == "held_out")
        .count();
    assert_eq!(held_out, 8);
    assert_eq!(v["eval"]["test_examples"], 8);
}

/// An index continues with the band of layers it was started with when `--graph-band` is
/// left out, and refuses another one given explicitly.
#[test]
fn an_index_keeps_its_band_of_layers() {
    let tmp = tempfile::tempdir().unwrap();
    let index = tmp.path().join("idx");
    let args = |extra: &[&str]| {
        let mut c = bin();
        c.args(["build", "--corpus", common::SMALL_CORPUS, "--layers", "0-1"])
            .args(["--neurons", "0-3", "--quiet"])
            .args(extra)
            .arg("--index")
            .arg(&index);
        c
    };
    run_ok(&mut args(&["--graph-band", "1", "--scan-only"]));
    run_ok(&mut args(&[]));
    let band: Option<u32> = Store::open(&index).unwrap().meta("graph_band").unwrap();
    assert_eq!(band, Some(1));
    assert_eq!(export(&index).lines().count(), 8);
    // Given explicitly, another band is refused before anything is built.
    let other = tmp.path().join("other");
    run_ok(
        bin()
            .args(["build", "--corpus", common::SMALL_CORPUS, "--layers", "0-1"])
            .args(["--neurons", "0-3", "--quiet", "--scan-only", "--index"])
            .arg(&other),
    );
    assert_refused(
        bin()
            .args(["build", "--corpus", common::SMALL_CORPUS, "--layers", "0-1"])
            .args([
                "--neurons",
                "0-3",
                "--quiet",
                "--graph-band",
                "1",
                "--index",
            ])
            .arg(&other),
        &["bands of 2 layer(s)", "--graph-band 2"],
    );
}
