//! Damaged SAE files: every file of every fixture SAE, truncated at many lengths and
//! overwritten at many offsets (with zeros, `0xff` and random bytes), is either refused
//! with an error naming a file or read and encoded, never a panic, in bounded time.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use candle_core::Device;
use n2g_index::model::{Hook, Sae};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/sae")
}

/// Copies a fixture folder into `to`.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        let dest = to.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_dir(&p, &dest);
        } else {
            std::fs::copy(&p, &dest).unwrap();
        }
    }
}

/// Every file under `dir`.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// The damaged versions of `bytes`: truncations and overwrites at spread offsets.
fn damages(bytes: &[u8], seed: u64) -> Vec<Vec<u8>> {
    let n = bytes.len();
    let mut state = seed | 1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut out = Vec::new();
    for k in [
        0,
        1,
        7,
        8,
        9,
        n / 10,
        n / 3,
        n / 2,
        n.saturating_sub(9),
        n.saturating_sub(1),
    ] {
        out.push(bytes[..k.min(n)].to_vec());
    }
    let offsets: Vec<usize> = [0, 4, 8, 12, 16, 40, 64, 100, 200]
        .into_iter()
        .chain((0..8).map(|i| n * (2 * i + 1) / 16))
        .filter(|&o| o < n)
        .collect();
    for &at in &offsets {
        for fill in 0..3u8 {
            let mut d = bytes.to_vec();
            for b in d.iter_mut().skip(at).take(8) {
                *b = match fill {
                    0 => 0,
                    1 => 0xff,
                    _ => next() as u8,
                };
            }
            out.push(d);
        }
    }
    out
}

#[test]
fn damaged_sae_files_are_refused_or_read_never_a_panic() {
    let tmp = tempfile::tempdir().unwrap();
    let cases: [(&str, Option<&str>); 6] = [
        ("saelens_standard", None),
        ("saelens_jumprelu", None),
        ("saelens_topk", None),
        ("gemma_scope", Some("blocks.1.hook_resid_post")),
        (
            "gemma_scope_compressed_f16",
            Some("blocks.1.hook_resid_post"),
        ),
        ("sparsify_topk/layers.1", None),
    ];
    let mut tried = 0;
    let mut refused = 0;
    for (name, hook) in cases {
        let hook: Option<Hook> = hook.map(|h| h.parse().unwrap());
        let original = fixtures().join(name);
        let work = tmp.path().join(name);
        copy_dir(&original, &work);
        for file in files(&work) {
            let bytes = std::fs::read(&file).unwrap();
            for (i, damaged) in damages(&bytes, tried as u64 + 1).into_iter().enumerate() {
                std::fs::write(&file, &damaged).unwrap();
                let clock = Instant::now();
                let outcome = std::panic::catch_unwind(|| {
                    let sae = Sae::load(&work, hook, &Device::Cpu)?;
                    let d_in = sae.info().d_in;
                    sae.encode_rows(&vec![0.5; 2 * d_in], None).map(|_| ())
                });
                let what = format!("{} damage {i}", file.display());
                match outcome {
                    Err(_) => panic!("{what}: panicked"),
                    Ok(Err(e)) => {
                        refused += 1;
                        let msg = e.to_string();
                        assert!(
                            msg.contains(work.to_str().unwrap()) || msg.contains("SAE"),
                            "{what}: the error names no file: {msg}"
                        );
                    }
                    Ok(Ok(())) => {}
                }
                assert!(
                    clock.elapsed() < Duration::from_secs(10),
                    "{what}: too slow"
                );
                tried += 1;
            }
            std::fs::write(&file, &bytes).unwrap();
        }
    }
    assert!(
        tried > 500 && refused > tried / 4,
        "{tried} damages, {refused} refused"
    );
}
