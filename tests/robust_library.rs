//! Library-level guards against silent wrong answers and unbounded work: neuron keys
//! that cannot alias, settings checked before anything runs, long documents tokenized
//! in pieces with exactly the tokens of the whole, and parsers that answer every input.

use n2g_index::corpus::{piece_cuts, tokenize_windows, Corpus, CorpusSpec};
use n2g_index::n2g::{BatchConfig, GraphSettings};
use n2g_index::scan::ScanOptions;
use n2g_index::search::query::MAX_DEPTH;
use n2g_index::store::{key_neuron, neuron_key};
use n2g_index::{LoadOptions, Model, NeuronId};
use proptest::prelude::*;

mod common;
use common::root;

proptest! {
    /// Every id has its own key (the expected behaviour: keys are injective), and the
    /// key gives the id back.
    #[test]
    fn neuron_keys_never_alias(a in (any::<u16>(), any::<u32>()), b in (any::<u16>(), any::<u32>())) {
        let (x, y) = (NeuronId { layer: a.0, index: a.1 }, NeuronId { layer: b.0, index: b.1 });
        prop_assert_eq!(key_neuron(neuron_key(x)), x);
        prop_assert_eq!(neuron_key(x) == neuron_key(y), x == y);
        // Keys order as ids do (layer, then index), as the tables are read.
        prop_assert_eq!(neuron_key(x).cmp(&neuron_key(y)), x.cmp(&y));
    }
}

#[test]
fn formerly_aliasing_ids_have_distinct_keys() {
    for (a, b) in [((4096, 0), (0, 0)), ((0, 1 << 20), (1, 0))] {
        let (a, b) = (NeuronId::new(a.0, a.1), NeuronId::new(b.0, b.1));
        assert_ne!(neuron_key(a), neuron_key(b), "{a} and {b}");
    }
}

/// Each case: a field set to a value outside its range, and the field the error must
/// name.
#[test]
fn settings_out_of_range_are_named() {
    let d = GraphSettings::default;
    let cases: Vec<(GraphSettings, &str)> = vec![
        (
            GraphSettings {
                activation_threshold: f32::NAN,
                ..d()
            },
            "activation_threshold",
        ),
        (
            GraphSettings {
                activation_threshold: 1e30,
                ..d()
            },
            "activation_threshold",
        ),
        (
            GraphSettings {
                activation_threshold: -0.1,
                ..d()
            },
            "activation_threshold",
        ),
        (
            GraphSettings {
                importance_threshold: f32::NAN,
                ..d()
            },
            "importance_threshold",
        ),
        (
            GraphSettings {
                fire_threshold: f32::NAN,
                ..d()
            },
            "fire_threshold",
        ),
        (
            GraphSettings {
                fire_threshold: f32::INFINITY,
                ..d()
            },
            "fire_threshold",
        ),
        (
            GraphSettings {
                fire_threshold: 0.0,
                ..d()
            },
            "fire_threshold",
        ),
        (
            GraphSettings {
                prune_tolerance: f32::NEG_INFINITY,
                ..d()
            },
            "prune_tolerance",
        ),
        (
            GraphSettings {
                train_fraction: 1.0,
                ..d()
            },
            "train_fraction",
        ),
        (
            GraphSettings {
                end_min_firing: f32::NAN,
                ..d()
            },
            "end_min_firing",
        ),
        (
            GraphSettings {
                seeds_per_example: 0,
                ..d()
            },
            "seeds_per_example",
        ),
        (
            GraphSettings {
                prune_lengths: vec![5, 5],
                ..d()
            },
            "prune_lengths",
        ),
        (
            GraphSettings {
                prune_lengths: vec![],
                ..d()
            },
            "prune_lengths",
        ),
    ];
    for (s, field) in cases {
        let e = s.validate().expect_err(field);
        assert_eq!(e.field, field, "{e}");
    }
    GraphSettings::default().validate().unwrap();
    GraphSettings::authors().validate().unwrap();
    let batch = BatchConfig {
        chunk_neurons: 0,
        ..BatchConfig::default()
    };
    assert_eq!(batch.validate().unwrap_err().field, "chunk_neurons");
    BatchConfig::default().validate().unwrap();
    BatchConfig::unbatched().validate().unwrap();
    let scan = ScanOptions {
        batch_size: 0,
        ..ScanOptions::new(vec![0], vec![0], 20)
    };
    assert_eq!(scan.validate().unwrap_err().field, "batch_size");
    let scan = ScanOptions::new(vec![0], vec![0], usize::MAX);
    assert_eq!(scan.validate().unwrap_err().field, "top_k");
}

/// Fortunes joined into one line by single spaces, with stretches that are hard to cut
/// (runs of spaces, digits, punctuation, non-ASCII), repeated to `bytes`.
fn long_line(bytes: usize) -> String {
    let corpus = Corpus::read(&CorpusSpec::new(vec![root().join(common::SMALL_CORPUS)])).unwrap();
    let mut text = String::new();
    let mut i = 0;
    while text.len() < bytes {
        let doc = &corpus.documents[i % corpus.documents.len()].text;
        text.push_str(&doc.split_whitespace().collect::<Vec<_>>().join(" "));
        text.push_str(match i % 5 {
            0 => " ",
            1 => "   ",
            2 => " 1234 ",
            3 => " — «élan» ",
            _ => ".\t",
        });
        i += 1;
    }
    text
}

#[test]
fn long_lines_tokenize_in_pieces_to_the_tokens_of_the_whole() {
    let model = Model::load_default(root(), &LoadOptions::default()).unwrap();
    let tok = model.tokenizer();
    let text = long_line(300_000);
    // The oracle: the text tokenized in one piece.
    let whole = tok.encode(&text, false).unwrap().ids;
    for piece in [1024, 4096, 64 * 1024] {
        let cuts = piece_cuts(tok, &text, piece).unwrap();
        assert!(
            cuts.len() >= text.len() / (3 * piece.max(512)),
            "{piece}: {cuts:?}"
        );
        let pieces = n2g_index::corpus::encode_with_pieces(tok, &text, piece).unwrap();
        assert!(pieces == whole, "piece size {piece}: tokens differ");
    }
    // Windows of a corpus holding the long line (and a short document) are the whole
    // text's tokens cut every `window` tokens.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("long.txt"), &text).unwrap();
    std::fs::write(dir.path().join("short.txt"), "A short one.").unwrap();
    let corpus = Corpus::read(&CorpusSpec::new(vec![dir.path().to_path_buf()])).unwrap();
    let windows = tokenize_windows(&corpus, tok, 64, true).unwrap();
    let bos = tok.bos_id().unwrap();
    let expected: Vec<Vec<u32>> = corpus
        .documents
        .iter()
        .flat_map(|d| {
            let ids = tok.encode(&d.text, false).unwrap().ids;
            ids.chunks(64)
                .map(|c| std::iter::once(bos).chain(c.iter().copied()).collect())
                .collect::<Vec<_>>()
        })
        .collect();
    let got: Vec<Vec<u32>> = windows.iter().map(|w| w.ids.to_vec()).collect();
    assert_eq!(got.len(), expected.len());
    assert!(got == expected, "windows differ from tokenizing whole");
}

/// Query strings built from the grammar's pieces and from arbitrary characters.
fn query_text() -> impl Strategy<Value = String> {
    let atom = prop_oneof![
        Just("token:a".to_string()),
        Just("context:\"x y\"".to_string()),
        Just("after:#digit".to_string()),
        Just("/a.b/".to_string()),
        Just("layer>=1".to_string()),
        Just("f1:0.2..0.9".to_string()),
        Just("(".to_string()),
        Just(")".to_string()),
        Just("NOT".to_string()),
        Just("-".to_string()),
        Just("OR".to_string()),
        Just("AND".to_string()),
        Just("\"".to_string()),
        Just("\\u{".to_string()),
        "[ -~]{0,6}",
        "\\PC{0,4}",
    ];
    prop::collection::vec(atom, 0..40).prop_map(|parts| parts.join(" "))
}

/// Cases per property: `N2G_FUZZ_CASES` (default 2000; `scripts/fuzz_parsers` runs
/// many more).
fn fuzz_cases() -> u32 {
    std::env::var("N2G_FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(fuzz_cases()))]

    /// Every query parses or gets an error with a position inside the text (displayed
    /// without panicking); a parsed one prints to a query that parses back the same.
    #[test]
    fn query_parser_answers_every_input(q in query_text()) {
        check_query(&q);
    }

    /// Neuron ids: an answer for every string, the parsed id printing back to itself.
    #[test]
    fn neuron_id_parser_answers_every_input(s in "\\PC{0,12}|[0-9 :]{0,24}") {
        if let Ok(n) = s.parse::<NeuronId>() {
            prop_assert_eq!(n.to_string().parse::<NeuronId>(), Ok(n));
        }
    }
}

fn check_query(q: &str) {
    let started = std::time::Instant::now();
    let parsed = n2g_index::search::parse(q);
    // Bounded time: parsing is linear, so any short query parses in far less.
    assert!(
        started.elapsed() < std::time::Duration::from_secs(1),
        "{q:?} took {:?}",
        started.elapsed()
    );
    match parsed {
        Ok(e) => {
            let printed = e.to_string();
            assert_eq!(
                n2g_index::search::parse(&printed).as_ref(),
                Ok(&e),
                "{q:?} -> {printed:?}"
            );
        }
        Err(err) => {
            assert!(err.position <= q.len() && q.is_char_boundary(err.position));
            let _ = err.to_string();
        }
    }
}

#[test]
fn deep_nesting_is_refused_at_the_level_too_deep() {
    let paren = format!("{}token:a{}", "(".repeat(8000), ")".repeat(8000));
    let nots = format!("{}token:a", "NOT ".repeat(20_000));
    let minus = format!("{}token:a", "-".repeat(20_000));
    for (q, step) in [(&paren, 1), (&nots, 4), (&minus, 1)] {
        let e = n2g_index::search::parse(q).unwrap_err();
        assert!(e.message.contains("nests deeper than"), "{}", e.message);
        // The (MAX_DEPTH + 1)-th opener is the one refused.
        assert_eq!(e.position, MAX_DEPTH * step);
    }
    // MAX_DEPTH levels still parse (and print back).
    check_query(&format!(
        "{}token:a{}",
        "(".repeat(MAX_DEPTH),
        ")".repeat(MAX_DEPTH)
    ));
    check_query(&format!("{}token:a", "NOT ".repeat(MAX_DEPTH)));
}
