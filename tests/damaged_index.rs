//! A damaged index is refused with an error naming the file, never half-read and never
//! a crash: a value changed on disk fails its checksum, a truncated or overwritten
//! store stops every command (and `build` does not write into it), `info --check` finds
//! damage no query reads, and a damaged search index points to `reindex`, which mends it.

use std::path::{Path, PathBuf};
use std::process::Command;

mod common;
use common::{bin, SMALL_CORPUS};

fn build(index: &Path) -> Command {
    common::small_build(index, "0-7", &[])
}

/// The commands that read an index, as argument lists (`--index` appended).
const READERS: &[&[&str]] = &[
    &["info", "--check"],
    &["show", "0:1", "--json"],
    &["export", "--examples"],
    &["query", "layer:0"],
    &["similar", "0:1"],
];

/// What a command printed: `Ok(stdout)` on success, else `Err(stderr)`. Panics (a crash,
/// not a refusal) fail the test.
fn read(index: &Path, args: &[&str]) -> Result<String, String> {
    let out = bin().args(args).arg("--index").arg(index).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !stderr.contains("panicked") && out.status.code() != Some(101),
        "{args:?} crashed: {stderr}"
    );
    if out.status.success() {
        // Paths in the output name the index folder; the copies differ only there.
        Ok(String::from_utf8_lossy(&out.stdout).replace(&index.display().to_string(), "INDEX"))
    } else {
        Err(stderr)
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

fn search_file(index: &Path, name: &str) -> PathBuf {
    let current = std::fs::read_to_string(index.join("search/CURRENT")).unwrap();
    index.join("search").join(current.trim()).join(name)
}

#[test]
fn damaged_files_are_refused_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let good = tmp.path().join("good");
    let out = build(&good).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected: Vec<String> = READERS
        .iter()
        .map(|a| read(&good, a).unwrap_or_else(|e| panic!("{a:?} on the good index: {e}")))
        .collect();
    let store = |dir: &Path| dir.join("store.redb");
    let fresh = |name: &str| {
        let dir = tmp.path().join(name);
        copy_dir(&good, &dir);
        dir
    };

    // One value changed in place: every copy of the corpus path (the run description
    // holds it) gets one letter changed. postcard would read the changed string as
    // fine; the checksum refuses it, naming the record.
    let dir = fresh("changed");
    let mut bytes = std::fs::read(store(&dir)).unwrap();
    let needle = SMALL_CORPUS.as_bytes();
    let mut hits = 0;
    for i in 0..bytes.len() - needle.len() {
        if &bytes[i..i + needle.len()] == needle {
            bytes[i + needle.len() - 1] ^= 0x01; // "wisdom" -> "wisdol"
            hits += 1;
        }
    }
    assert!(hits > 0, "the corpus path is not in the store file");
    std::fs::write(store(&dir), &bytes).unwrap();
    let err = read(&dir, &["info"]).unwrap_err();
    assert!(
        err.contains("store.redb") && err.contains("meta `run` fails its checksum"),
        "{err}"
    );

    // A neuron record gone (as a damaged tree page could hide it, every checksum still
    // matching): `info --check` counts the records of the completed scan.
    let dir = fresh("missing");
    {
        let db = redb::Database::open(store(&dir)).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let def: redb::TableDefinition<u64, &[u8]> = redb::TableDefinition::new("neurons");
            let mut t = txn.open_table(def).unwrap();
            assert!(t.remove(3).unwrap().is_some(), "neuron 0:3 is key 3");
        }
        txn.commit().unwrap();
    }
    let err = read(&dir, &["info", "--check"]).unwrap_err();
    assert!(
        err.contains("7 neuron records") && err.contains("wrote 8"),
        "{err}"
    );

    // A truncated store: every reader and a resumed build refuse it, naming the file,
    // and the build leaves it as it was.
    let dir = fresh("truncated");
    let len = std::fs::metadata(store(&dir)).unwrap().len();
    std::fs::File::options()
        .write(true)
        .open(store(&dir))
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    let before = std::fs::read(store(&dir)).unwrap();
    for args in [READERS[0], READERS[1], READERS[2]] {
        let err = read(&dir, args).unwrap_err();
        assert!(
            err.contains("store.redb") && err.contains("damaged"),
            "{args:?}: {err}"
        );
    }
    let out = build(&dir).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("damaged"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        std::fs::read(store(&dir)).unwrap() == before,
        "build wrote into it"
    );

    // 64 bytes overwritten at spread offsets of the store and of the search index's
    // database: every reader either prints exactly what it printed before (the bytes
    // were in space it does not read) or refuses; never a crash or other output.
    let targets = [
        store(&good).strip_prefix(&good).unwrap().to_path_buf(),
        search_file(&good, "search.redb")
            .strip_prefix(&good)
            .unwrap()
            .to_path_buf(),
    ];
    let mut refused = 0;
    for target in &targets {
        let len = std::fs::metadata(good.join(target)).unwrap().len() as usize;
        for step in 0..12 {
            let dir = fresh("overwritten");
            let at = len * step / 12;
            let mut bytes = std::fs::read(dir.join(target)).unwrap();
            for (i, b) in bytes[at..(at + 64).min(len)].iter_mut().enumerate() {
                *b = (i as u8).wrapping_mul(37) ^ 0xA5;
            }
            std::fs::write(dir.join(target), &bytes).unwrap();
            for (args, want) in READERS.iter().zip(&expected) {
                match read(&dir, args) {
                    Ok(got) => assert!(
                        &got == want,
                        "{args:?} printed other output with {} overwritten at {at}",
                        target.display()
                    ),
                    Err(e) => {
                        assert!(e.contains(".redb"), "{args:?}, {at}: {e}");
                        refused += 1;
                    }
                }
            }
            std::fs::remove_dir_all(&dir).unwrap();
        }
    }
    // The first page of each file holds its header, so some runs must be refusals.
    assert!(refused > 0);

    assert!(
        expected[0].contains("match their checksums"),
        "{}",
        expected[0]
    );

    // One bit flipped in the middle of the largest tantivy segment file: `info --check`
    // finds it by tantivy's file checksums, naming the file, whatever the queries read.
    let dir = fresh("flipped");
    let tantivy = search_file(&dir, "tantivy");
    let largest = std::fs::read_dir(&tantivy)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x != "json" && x != "lock"))
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();
    let mut bytes = std::fs::read(&largest).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(&largest, &bytes).unwrap();
    let err = read(&dir, &["info", "--check"]).unwrap_err();
    let name = largest.file_name().unwrap().to_string_lossy().into_owned();
    assert!(err.contains(&name) && err.contains("checksum"), "{err}");

    // A damaged search index names `reindex`, which rebuilds it from the store.
    let dir = fresh("search");
    let meta = search_file(&dir, "tantivy/meta.json");
    std::fs::write(&meta, "{ not json").unwrap();
    let err = read(&dir, &["query", "layer:0"]).unwrap_err();
    assert!(err.contains("reindex") && err.contains("tantivy"), "{err}");
    let out = bin()
        .arg("reindex")
        .arg("--index")
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(read(&dir, &["query", "layer:0"]).unwrap(), expected[3]);
}
