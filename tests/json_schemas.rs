//! Every `--json` output of the CLI conforms to its JSON Schema in `schema/` (the schemas
//! are the documented interface; a JSON Schema validator, not this crate, judges), and
//! the schemas are strict enough to refuse an object missing a required field.

use std::path::Path;

use boon::{Compiler, Schemas};
use serde_json::Value;

mod common;
use common::{bin, root};

/// Runs the binary and returns its stdout, failing the test on a non-zero exit.
fn run(args: &[&str], index: Option<&Path>) -> String {
    let mut c = bin();
    c.args(args);
    if let Some(index) = index {
        c.arg("--index").arg(index);
    }
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Validates every document against `schema/<name>`: how many were checked, or the
/// first violation.
fn check(name: &str, docs: &[Value]) -> Result<usize, String> {
    let mut schemas = Schemas::new();
    let mut compiler = Compiler::new();
    let path = root().join("schema").join(name);
    let schema = compiler
        .compile(path.to_str().unwrap(), &mut schemas)
        .unwrap_or_else(|e| panic!("{name} is not a valid schema: {e}"));
    for (i, doc) in docs.iter().enumerate() {
        schemas
            .validate(doc, schema)
            .map_err(|e| format!("{name}, document {i}: {e}"))?;
    }
    Ok(docs.len())
}

/// [`check`], failing the test on a violation.
fn validate(name: &str, docs: &[Value]) -> usize {
    check(name, docs).unwrap_or_else(|e| panic!("{e}"))
}

fn parse(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

#[test]
fn json_outputs_conform_to_their_schemas() {
    let tmp = tempfile::tempdir().unwrap();
    let index = tmp.path().join("index");
    let out = common::small_build(&index, "0-15", &[]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = |text: String| -> Vec<Value> { text.lines().map(parse).collect() };

    let show = parse(&run(&["show", "0:3", "--json"], Some(&index)));
    assert_eq!(validate("show.schema.json", std::slice::from_ref(&show)), 1);
    let export = lines(run(&["export"], Some(&index)));
    assert_eq!(validate("show.schema.json", &export), 16);
    let export = lines(run(&["export", "--examples"], Some(&index)));
    assert_eq!(validate("show.schema.json", &export), 16);
    assert!(export[0]["examples"]
        .as_array()
        .is_some_and(|e| !e.is_empty()));

    let query = parse(&run(&["query", "layer:0", "--json"], Some(&index)));
    validate("query-result.schema.json", &[query]);
    let similar = parse(&run(&["similar", "0:3", "--json"], Some(&index)));
    validate("similar-result.schema.json", &[similar]);
    let all = parse(&run(
        &["similar", "--all", "--threshold", "0.5", "--json"],
        Some(&index),
    ));
    validate("similar-result.schema.json", &[all]);
    let activations = parse(&run(
        &[
            "activations",
            "--layer",
            "2",
            "--text",
            "The capital of France is Paris. 1,000 ✓",
            "--json",
        ],
        None,
    ));
    validate("activations.schema.json", &[activations]);
    let info = parse(&run(&["info", "--json"], Some(&index)));
    validate("info.schema.json", std::slice::from_ref(&info));
    // Oracle for the info view: the per-layer neuron count is what the build covered.
    assert_eq!(info["layers"][0]["neurons"], 16, "{info}");
    assert_eq!(info["graphs"], 16, "{info}");

    // The text faces of the same calls.
    let none = run(&["query", "token:zzzqqq"], Some(&index));
    assert!(none.contains("no neuron matches"), "{none}");
    let bad = bin()
        .args(["query", "tokn:x", "--index"])
        .arg(&index)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        !bad.status.success() && err.contains("known fields") && err.contains('^'),
        "{err}"
    );

    // The schemas have teeth: an object without its neuron id is refused.
    let mut broken = show.clone();
    broken.as_object_mut().unwrap().remove("neuron");
    let err = check("show.schema.json", &[broken]).unwrap_err();
    assert!(err.contains("neuron"), "{err}");
}
