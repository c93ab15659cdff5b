//! Comparing the run description of a store with the one a build is started with.

use super::RunMeta;

/// The fields of two run descriptions that differ, named.
pub(crate) fn run_differences(a: &RunMeta, b: &RunMeta) -> Vec<String> {
    let mut d = Vec::new();
    let mut check = |name: &str, x: String, y: String| {
        if x != y {
            d.push(format!("{name}: stored {x}, now {y}"));
        }
    };
    check(
        "model sha256",
        a.model.sha256.clone(),
        b.model.sha256.clone(),
    );
    check(
        "corpus fingerprint",
        a.corpus.fingerprint.clone(),
        b.corpus.fingerprint.clone(),
    );
    check(
        "--layers",
        format!("{:?}", a.scan.layers),
        format!("{:?}", b.scan.layers),
    );
    check(
        "--neurons",
        summarize(&a.scan.neurons),
        summarize(&b.scan.neurons),
    );
    // `top_k` counts the examples kept: the top-k plus the training-only ones.
    let top_k = |s: &super::ScanSettings| s.top_k.saturating_sub(s.extra_train).to_string();
    check("--top-k", top_k(&a.scan), top_k(&b.scan));
    check(
        "--extra-train",
        a.scan.extra_train.to_string(),
        b.scan.extra_train.to_string(),
    );
    check(
        "--window",
        a.scan.window.to_string(),
        b.scan.window.to_string(),
    );
    check(
        "--batch-size",
        a.scan.batch_size.to_string(),
        b.scan.batch_size.to_string(),
    );
    check("BOS", a.scan.bos.to_string(), b.scan.bos.to_string());
    check(
        "--shard",
        format!("{:?}", a.scan.shard),
        format!("{:?}", b.scan.shard),
    );
    check(
        "--literal-special",
        a.scan.literal_special.to_string(),
        b.scan.literal_special.to_string(),
    );
    d
}

fn summarize(xs: &[u32]) -> String {
    match (xs.first(), xs.last()) {
        (Some(f), Some(l)) => format!("{} neurons {f}..={l}", xs.len()),
        _ => "none".into(),
    }
}
