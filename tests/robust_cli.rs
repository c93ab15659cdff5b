//! The CLI against hostile and mistaken input: every case gets a clear error (or a
//! warning and a count) naming what is at fault, and read commands leave every file
//! of the index as it was.

use std::path::{Path, PathBuf};
use std::process::Output;

mod common;
use common::{bin, small_build};

fn run(cmd: &mut std::process::Command) -> (Output, String) {
    let out = cmd.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    (out, err)
}

fn assert_ok(cmd: &mut std::process::Command) -> Output {
    let (out, err) = run(cmd);
    assert!(out.status.success(), "{err}");
    out
}

/// Asserts that `cmd` fails with exit code 1 or 2 (an error, not a crash) and that its
/// stderr holds every needle.
fn assert_refused(cmd: &mut std::process::Command, needles: &[&str]) -> String {
    let (out, err) = run(cmd);
    let code = out.status.code();
    assert!(
        matches!(code, Some(1 | 2)),
        "{needles:?}: exit {code:?}: {err}"
    );
    for n in needles {
        assert!(err.contains(n), "{n:?} not in: {err}");
    }
    err
}

/// Path, size, modification time and bytes of every file under `dir`.
fn snapshot(dir: &Path) -> Vec<(PathBuf, u64, std::time::SystemTime, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            if m.is_dir() {
                stack.push(p);
            } else {
                out.push((
                    p.clone(),
                    m.len(),
                    m.modified().unwrap(),
                    std::fs::read(&p).unwrap(),
                ));
            }
        }
    }
    out.sort();
    out
}

/// An index with graphs and search: 8 neurons of layer 0 on one fortune file.
fn built_index(dir: &Path) -> PathBuf {
    let index = dir.join("index");
    assert_ok(&mut small_build(&index, "0-7", &[]));
    index
}

fn read_commands(index: &Path) -> Vec<Vec<String>> {
    let i = index.display().to_string();
    [
        vec!["show", "0:3", "--json"],
        vec!["info"],
        vec!["info", "--check"],
        vec!["export", "--examples"],
        vec!["query", "token:the OR #punct"],
        vec!["similar", "0:3"],
        vec!["similar", "--all"],
    ]
    .into_iter()
    .map(|c| {
        c.into_iter()
            .map(String::from)
            .chain(["--index".to_string(), i.clone()])
            .collect()
    })
    .collect()
}

#[test]
fn read_commands_write_nothing_and_ids_never_alias() {
    let tmp = tempfile::tempdir().unwrap();
    let index = built_index(tmp.path());
    let before = snapshot(&index);
    for args in read_commands(&index) {
        assert_ok(bin().args(&args));
    }
    // Ids outside the index's shape, including the ones a 32-bit key aliased to 0:0
    // and 1:0, are refused (never shown under the wrong label).
    for id in ["4096:0", "0:1048576", "1:0", "0:8", "65535:4294967295"] {
        assert_refused(
            bin().args(["show", id, "--index"]).arg(&index),
            &[&format!("neuron {id} is not in this index")],
        );
    }
    assert!(
        snapshot(&index) == before,
        "a read command changed a file of the index"
    );
    // Another user who can only read the folder answers every read command (when the
    // tests run as root, as `nobody`).
    if unsafe { libc::geteuid() } == 0 && Path::new("/usr/sbin/runuser").exists() {
        let exe = tmp.path().join("n2g-index");
        std::fs::copy(env!("CARGO_BIN_EXE_n2g-index"), &exe).unwrap();
        make_readable(tmp.path());
        for args in read_commands(&index) {
            let (out, err) = run(std::process::Command::new("/usr/sbin/runuser")
                .args(["-u", "nobody", "--"])
                .arg(&exe)
                .args(&args));
            assert!(out.status.success(), "{args:?} as nobody: {err}");
        }
        assert!(snapshot(&index) == before);
    }
}

fn make_readable(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path, m: u32| std::fs::set_permissions(p, std::fs::Permissions::from_mode(m));
    mode(dir, 0o755).unwrap();
    mode(&dir.join("n2g-index"), 0o755).unwrap();
}

#[test]
fn bad_numeric_options_are_named_before_anything_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let index = tmp.path().join("index");
    for (flag, value) in [
        ("--activation-threshold", "NaN"),
        ("--activation-threshold", "1e30"),
        ("--activation-threshold", "inf"),
        ("--fire-threshold", "NaN"),
        ("--fire-threshold", "inf"),
        ("--importance-threshold", "NaN"),
        ("--importance-threshold=-1", "--no-bos"),
        ("--end-min-firing", "NaN"),
        ("--graph-chunk", "0"),
        ("--top-k", "100000000"),
        ("--batch-size", "0"),
    ] {
        let named = flag.split('=').next().unwrap();
        assert_refused(&mut small_build(&index, "0-3", &[flag, value]), &[named]);
        assert!(!index.exists(), "{flag} {value}: the index was touched");
    }
}

#[test]
fn queries_nested_too_deep_get_an_error_not_a_crash() {
    let tmp = tempfile::tempdir().unwrap();
    let index = built_index(tmp.path());
    let queries = [
        format!("{}token:a{}", "(".repeat(8000), ")".repeat(8000)),
        format!("{}token:a", "NOT ".repeat(20_000)),
        format!("{}token:a", "-".repeat(20_000)),
    ];
    for q in &queries {
        assert_refused(
            bin().args(["query", "--index"]).arg(&index).args(["--", q]),
            &["nests deeper than 100 levels"],
        );
    }
}

#[test]
fn odd_corpora_and_folders_are_refused_or_skipped() {
    let tmp = tempfile::tempdir().unwrap();
    let build = |corpus: &Path, index: &Path, extra: &[&str]| {
        let mut c = bin();
        c.args([
            "build",
            "--layers",
            "0",
            "--neurons",
            "0-3",
            "--scan-only",
            "--quiet",
        ])
        .arg("--corpus")
        .arg(corpus)
        .arg("--index")
        .arg(index)
        .args(extra);
        c
    };
    let index = tmp.path().join("i1");
    assert_refused(
        &mut build(Path::new("/dev/null"), &index, &[]),
        &["/dev/null", "not a corpus file or folder"],
    );
    let fifo = tmp.path().join("fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    assert_refused(
        &mut build(&fifo, &index, &[]),
        &["fifo", "not a corpus file or folder"],
    );
    // A folder with a dangling link and a FIFO: both skipped with a warning and counted.
    let folder = tmp.path().join("corpus");
    std::fs::create_dir(&folder).unwrap();
    std::fs::copy(
        common::root().join(common::SMALL_CORPUS),
        folder.join("wisdom"),
    )
    .unwrap();
    std::os::unix::fs::symlink(tmp.path().join("gone"), folder.join("dangling")).unwrap();
    std::fs::rename(&fifo, folder.join("pipe")).unwrap();
    let mut cmd = build(&folder, &index, &[]);
    let (out, err) = run(&mut cmd);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("dangling: skipped (a link to nothing)"),
        "{err}"
    );
    assert!(
        err.contains("pipe: skipped (not a file or folder)"),
        "{err}"
    );
    assert!(err.contains("2 corpus folder entries skipped"), "{err}");

    // A non-empty folder that is not an index is refused (and left alone) unless --force.
    let other = tmp.path().join("other");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("notes.txt"), "mine").unwrap();
    let corpus = common::root().join(common::SMALL_CORPUS);
    assert_refused(
        &mut build(&corpus, &other, &[]),
        &[
            "not empty and is not an n2g-index index",
            "notes.txt",
            "--force",
        ],
    );
    assert_eq!(std::fs::read_dir(&other).unwrap().count(), 1);
    assert_ok(&mut build(&corpus, &other, &["--force"]));
    assert_eq!(std::fs::read(other.join("notes.txt")).unwrap(), b"mine");
    // A 0-byte store.redb is not taken for a store, by writers or readers.
    let empty = tmp.path().join("empty-store");
    std::fs::create_dir(&empty).unwrap();
    std::fs::write(empty.join("store.redb"), "").unwrap();
    assert_refused(
        &mut build(&corpus, &empty, &[]),
        &["store.redb", "empty (0 bytes)"],
    );
    assert_eq!(
        std::fs::metadata(empty.join("store.redb")).unwrap().len(),
        0
    );
    assert_refused(
        bin().args(["info", "--index"]).arg(&empty),
        &["empty (0 bytes)"],
    );
}

#[test]
fn other_top_k_is_named_with_the_numbers_given() {
    let tmp = tempfile::tempdir().unwrap();
    let index = tmp.path().join("index");
    assert_ok(&mut small_build(
        &index,
        "0-3",
        &["--scan-only", "--top-k", "20"],
    ));
    // The scan keeps 20 + 10 extra training windows; the message speaks of --top-k.
    assert_refused(
        &mut small_build(&index, "0-3", &["--scan-only", "--top-k", "5"]),
        &["--top-k: stored 20, now 5"],
    );
    let err = assert_refused(
        &mut small_build(&index, "0-3", &["--scan-only", "--extra-train", "3"]),
        &["--extra-train: stored 10, now 3"],
    );
    assert!(!err.contains("--top-k"), "{err}");
}

#[test]
fn texts_longer_than_the_context_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("long.txt");
    // " a" is one token for the default model; 9,000 of them exceed its 8,192 context.
    std::fs::write(&file, " a".repeat(9000)).unwrap();
    assert_refused(
        bin()
            .args(["activations", "--layer", "0", "--file"])
            .arg(&file),
        &["longer than the model's context of 8192 tokens"],
    );
}
