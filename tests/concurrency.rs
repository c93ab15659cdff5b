//! Many readers beside one writer (`docs/CONCURRENCY.md`): reader processes loop over
//! `query`, `show`, `similar` and `export` while `reindex` runs again and again on the
//! same index, and `info` / `show` while a build resumes into another. Expected: no
//! read fails, and every answer from the reindexed index equals the answer before the
//! loop (reindexing the same graphs commits the same state each time). A second writer
//! is refused naming the first.
//!
//! `N2G_CONCURRENCY_SECS` sets how long readers loop (default 10); `scripts/concurrency`
//! runs it longer.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod common;
use common::{bin, small_build};

fn output(args: &[String]) -> Result<Vec<u8>, String> {
    let out = bin().args(args).output().map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(out.stdout)
    } else {
        Err(format!(
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn args(index: &Path, words: &[&str]) -> Vec<String> {
    words
        .iter()
        .map(|s| s.to_string())
        .chain(["--index".to_string(), index.display().to_string()])
        .collect()
}

fn seconds() -> u64 {
    std::env::var("N2G_CONCURRENCY_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10)
}

/// Loops `f` on `threads` threads until `stop`; returns the failures.
fn readers(
    threads: usize,
    stop: &Arc<AtomicBool>,
    reads: &Arc<AtomicUsize>,
    f: impl Fn(usize) -> Result<(), String> + Send + Sync + 'static,
) -> Vec<std::thread::JoinHandle<Vec<String>>> {
    let f = Arc::new(f);
    (0..threads)
        .map(|t| {
            let (stop, reads, f) = (stop.clone(), reads.clone(), f.clone());
            std::thread::spawn(move || {
                let mut failures = Vec::new();
                let mut i = t;
                while !stop.load(Ordering::Relaxed) {
                    if let Err(e) = f(i) {
                        failures.push(e);
                    }
                    reads.fetch_add(1, Ordering::Relaxed);
                    i += threads;
                }
                failures
            })
        })
        .collect()
}

#[test]
fn readers_never_fail_beside_a_writer() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    assert!(small_build(&a, "0-7", &[]).status().unwrap().success());
    let reads_of_a: Vec<Vec<String>> = vec![
        args(&a, &["query", "token:the OR #punct", "--json"]),
        args(&a, &["show", "0:3", "--json"]),
        args(&a, &["similar", "0:3", "--json"]),
        args(&a, &["export"]),
    ];
    // The committed state's answers, read before any writer runs.
    let expected: Vec<Vec<u8>> = reads_of_a.iter().map(|r| output(r).unwrap()).collect();

    // Index b: a scan stopped part-way, resumed below while readers read it.
    let b = tmp.path().join("b");
    let scan_b = |extra: &[&str]| {
        let mut c = bin();
        c.args(["build", "--corpus", common::SMALL_CORPUS, "--layers", "0-3"])
            .args([
                "--neurons",
                "0-255",
                "--batch-size",
                "4",
                "--checkpoint-every",
                "4",
            ])
            .args(["--scan-only", "--quiet", "--index"])
            .arg(&b)
            .args(extra);
        c
    };
    let stopped = scan_b(&["--max-batches", "8"]).status().unwrap();
    assert_eq!(stopped.code(), Some(3), "the scan stops part-way");

    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicUsize::new(0));
    let expected = Arc::new(expected);
    let reads_of_a = Arc::new(reads_of_a);
    let mut handles = {
        let (expected, reads_of_a) = (expected.clone(), reads_of_a.clone());
        readers(6, &stop, &reads, move |i| {
            let r = i % reads_of_a.len();
            let got = output(&reads_of_a[r])?;
            if got != expected[r] {
                return Err(format!(
                    "{:?}: an answer of no committed state",
                    reads_of_a[r]
                ));
            }
            Ok(())
        })
    };
    let b2 = b.clone();
    handles.extend(readers(2, &stop, &reads, move |i| {
        let words: &[&str] = if i % 2 == 0 {
            &["info"]
        } else {
            &["show", "1:7", "--json"]
        };
        output(&args(&b2, words)).map(|_| ())
    }));

    // The writers: reindex of a, again and again; the scan of b resumed to its end.
    let started = Instant::now();
    let mut reindexes = 0;
    let mut scan = Some(scan_b(&[]).spawn().unwrap());
    let mut writer_errors = Vec::new();
    while started.elapsed() < Duration::from_secs(seconds()) {
        match output(&args(&a, &["reindex"])) {
            Ok(_) => reindexes += 1,
            Err(e) => writer_errors.push(e),
        }
        if let Some(mut child) = scan.take() {
            match child.try_wait().unwrap() {
                Some(status) => assert!(status.success(), "the resumed scan failed"),
                None => scan = Some(child),
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    let failures: Vec<String> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    if let Some(mut child) = scan {
        assert!(child.wait().unwrap().success(), "the resumed scan failed");
    }
    let n = reads.load(Ordering::Relaxed);
    assert!(writer_errors.is_empty(), "{writer_errors:?}");
    assert!(
        failures.is_empty(),
        "{} of {n} reads failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert!(
        reindexes >= 2 && n >= 20,
        "{reindexes} reindexes, {n} reads"
    );
    eprintln!("{n} reads, {reindexes} reindexes, 0 failures");
}

#[test]
fn a_second_writer_is_refused_naming_the_first() {
    let tmp = tempfile::tempdir().unwrap();
    let index: PathBuf = tmp.path().join("index");
    // Hold the writer lock in this process, as a running build does.
    let held = n2g_index::store::Store::open_or_create(&index).unwrap();
    let me = format!("n2g-index build, pid {}", std::process::id());
    for words in [&["reindex"][..], &["build", "--scan-only", "--quiet"][..]] {
        let out = bin().args(args(&index, words)).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(
            err.contains("in use by another process") && err.contains(&me),
            "{err}"
        );
    }
    // Readers are not refused: the store has no build recorded yet, and says so.
    let out = bin().args(args(&index, &["info"])).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no build recorded"), "{err}");
    drop(held);
}
