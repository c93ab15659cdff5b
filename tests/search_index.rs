//! Search index life cycle: build, reopen, format check, build lock, reading while a new
//! generation is built, and the CLI's JSON output.

use n2g_index::search::{NeuronPaths, SearchError, SearchIndex, SearchPath};
use n2g_index::NeuronId;

fn path(tokens: &[Option<&str>], activation: f32) -> SearchPath {
    SearchPath {
        tokens: tokens.iter().map(|t| t.map(str::to_string)).collect(),
        activation,
    }
}

fn sample() -> Vec<NeuronPaths> {
    vec![
        NeuronPaths {
            neuron: NeuronId::new(3, 1042),
            f1: 0.8,
            paths: vec![
                path(&[Some("paris"), None, Some("capital")], 0.9),
                path(&[Some("paris"), Some("in")], 0.6),
            ],
        },
        NeuronPaths {
            neuron: NeuronId::new(1, 7),
            f1: 0.5,
            paths: vec![
                path(&[Some("the"), Some(" 3")], 1.0),
                path(&[Some("paris")], 0.7),
            ],
        },
    ]
}

#[test]
fn build_query_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let index = SearchIndex::build(dir.path(), sample()).unwrap();
    let hits = index.query("token:Paris context:capital", 10).unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].neuron, NeuronId::new(3, 1042));
    assert_eq!(hits[0].paths.to_vecs(), vec![vec!["capital", "*", "paris"]]);
    assert_eq!(hits[0].score, 0.9);
    let hits = SearchIndex::open(dir.path())
        .unwrap()
        .query("token:the after:#digit", 10)
        .unwrap();
    assert_eq!(
        hits.iter().map(|h| h.neuron).collect::<Vec<_>>(),
        vec![NeuronId::new(1, 7)]
    );
    let ranked = index.query("token:paris", 10).unwrap();
    assert_eq!(
        ranked
            .iter()
            .map(|h| h.neuron.to_string())
            .collect::<Vec<_>>(),
        vec!["3:1042", "1:7"]
    );
    assert!(matches!(
        index.query("token:(", 10),
        Err(SearchError::Query(_))
    ));
    assert!(index.query("token:nothing", 10).unwrap().is_empty());
}

#[test]
fn missing_and_format_mismatch() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        SearchIndex::open(dir.path()),
        Err(SearchError::Missing { .. })
    ));
    SearchIndex::build(dir.path(), sample()).unwrap();
    let generation = std::fs::read_to_string(dir.path().join("CURRENT")).unwrap();
    let format = dir.path().join(generation.trim()).join("FORMAT");
    std::fs::write(&format, "n2g-index search format 0\n").unwrap();
    let err = SearchIndex::open(dir.path())
        .err()
        .expect("format mismatch");
    let message = err.to_string();
    assert!(
        message.contains("FORMAT") && message.contains("format 0") && message.contains("reindex"),
        "{message}"
    );
}

#[test]
fn a_second_build_waits_for_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path()).unwrap();
    let lock = std::fs::File::create(dir.path().join("LOCK")).unwrap();
    lock.lock().unwrap();
    let err = SearchIndex::build(dir.path(), sample())
        .err()
        .expect("locked");
    assert!(matches!(err, SearchError::Locked { .. }), "{err}");
    assert!(err.to_string().contains("another build"));
    drop(lock);
    SearchIndex::build(dir.path(), sample()).unwrap();
}

#[test]
fn readers_keep_working_while_a_new_generation_is_built() {
    let dir = tempfile::tempdir().unwrap();
    let old = SearchIndex::build(dir.path(), sample()).unwrap();
    let mut next = sample();
    next[0].paths.clear();
    let new = SearchIndex::build(dir.path(), next).unwrap();
    assert_eq!(
        old.query("token:paris", 10).unwrap().len(),
        2,
        "the old reader still sees its generation"
    );
    assert_eq!(new.query("token:paris", 10).unwrap().len(), 1);
    let generations = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("gen-")
        })
        .count();
    assert_eq!(generations, 1, "old generations are removed");
}

#[test]
fn duplicate_neurons_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut input = sample();
    input.push(input[0].clone());
    let err = SearchIndex::build(dir.path(), input)
        .err()
        .expect("duplicate");
    assert!(err.to_string().contains("3:1042 appears twice"), "{err}");
}

#[test]
fn views_serialise_as_the_cli_prints_them() {
    // `query --json` and `similar --json` print these types with serde: the neuron as
    // "L:N", the relation by name.
    let dir = tempfile::tempdir().unwrap();
    let index = SearchIndex::build(&dir.path().join("search"), sample()).unwrap();
    let v = serde_json::to_value(index.query("token:Paris", 20).unwrap()).unwrap();
    assert_eq!(v[0]["neuron"], "3:1042");
    assert_eq!(v[0]["layer"], 3);
    assert_eq!(v[0]["index"], 1042);
    assert_eq!(
        v[0]["paths"][0],
        serde_json::json!(["capital", "*", "paris"])
    );
    assert!(index.query("token:nothing", 20).unwrap().is_empty());
    let err = index.query("tokn:x", 20).unwrap_err().to_string();
    assert!(err.contains("known fields") && err.contains('^'), "{err}");
    let v = serde_json::to_value(index.similar(NeuronId::new(3, 1042), 10).unwrap()).unwrap();
    assert_eq!(v[0]["neuron"], "1:7");
    assert_eq!(v[0]["activating"], 0.5);
    assert_eq!(v[0]["relation"], "overlap");
    let v = serde_json::to_value(index.similar_all(0.5).unwrap()).unwrap();
    assert!(v.as_array().unwrap().is_empty(), "{v}");
}
