//! Property tests of the N2G graph (step 6–7) and of the step-8 scores.

use std::collections::HashMap;

use n2g_index::n2g::{score, TokenBaseline};
use n2g_index::n2g::{Element, EndActivation, Graph, Line};
use proptest::prelude::*;

/// Lines use token ids below this; FILLER occurs in no line.
const VOCAB: u32 = 6;
const FILLER: u32 = 1000;

fn arb_line() -> impl Strategy<Value = Line> {
    (
        0..VOCAB,
        prop::collection::vec(prop::option::weighted(0.5, 0..VOCAB), 0..4),
        prop::option::of(0..VOCAB),
        0.5f32..1.0,
        0.76f32..1.0,
    )
        .prop_map(|(first, middle, last, activation, imp)| {
            let mut elements = vec![Element::Token(first)];
            elements.extend(
                middle
                    .into_iter()
                    .map(|t| t.map_or(Element::Ignore, Element::Token)),
            );
            match last {
                Some(t) => elements.push(Element::Token(t)),
                // Cut after the last kept element, as make_line does.
                None => {
                    while elements.last() == Some(&Element::Ignore) {
                        elements.pop();
                    }
                }
            }
            let importance = elements
                .iter()
                .enumerate()
                .map(|(i, e)| match (i, e) {
                    (0, _) => 1.0,
                    (_, Element::Ignore) => 0.0,
                    _ => imp,
                })
                .collect();
            Line {
                elements,
                importance,
                activation,
            }
        })
}

fn arb_mode() -> impl Strategy<Value = EndActivation> {
    prop_oneof![
        Just(EndActivation::Max),
        Just(EndActivation::First),
        Just(EndActivation::Mean)
    ]
}

/// The text a line was read from: the activating token last, IGNORE positions filled
/// with `filler`.
fn text_of(line: &Line, filler: Option<u32>) -> Vec<Option<u32>> {
    line.elements
        .iter()
        .rev()
        .map(|e| match e {
            Element::Token(t) => Some(*t),
            Element::Ignore => filler,
        })
        .collect()
}

/// Lines with the same length and activating token: the only ones whose END can be
/// reached by a text made from `line` (copies keep depth and activator).
fn group<'a>(lines: &'a [Line], line: &Line) -> Vec<&'a Line> {
    lines
        .iter()
        .filter(|m| m.elements.len() == line.elements.len() && m.elements[0] == line.elements[0])
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// (a) Every training line is predicted at its activating token: exactly its own
    /// activation when no other line has its length and activating token; with Max never
    /// below its own activation and never above its group's max.
    #[test]
    fn training_lines_are_predicted(
        lines in prop::collection::vec(arb_line(), 1..10),
        mode in arb_mode(),
    ) {
        let g = Graph::build(&lines, mode);
        let max_g = Graph::build(&lines, EndActivation::Max);
        for line in &lines {
            let k = line.elements.len() - 1;
            let peers = group(&lines, line);
            for filler in [Some(FILLER), None] {
                let text = text_of(line, filler);
                let p = g.predict(&text, k);
                if peers.len() == 1 {
                    prop_assert!((p - line.activation).abs() < 1e-6,
                        "{line:?}: predicted {p}, graph {:?}", g.paths());
                }
                let p = max_g.predict(&text, k);
                let top = peers.iter().map(|m| m.activation).fold(f32::MIN, f32::max);
                prop_assert!(p >= line.activation - 1e-6, "{line:?}: {p} < own");
                prop_assert!(p <= top + 1e-6, "{line:?}: {p} > group max {top}");
                prop_assert!(peers.iter().any(|m| (m.activation - p).abs() < 1e-6));
            }
        }
    }

    /// After merging, every token node that has an IGNORE sibling ends a line, every path
    /// ends on a token, and the activators are the lines' first tokens.
    #[test]
    fn merged_trie_invariants(lines in prop::collection::vec(arb_line(), 0..10)) {
        let g = Graph::build(&lines, EndActivation::Max);
        let views = g.nodes();
        let mut has_ignore: HashMap<u32, bool> = HashMap::new();
        for v in &views {
            *has_ignore.entry(v.parent).or_default() |= v.element == Element::Ignore;
        }
        for v in &views {
            if v.element != Element::Ignore && has_ignore[&v.parent] {
                prop_assert!(v.end.is_some(), "{v:?} has an IGNORE sibling but no END");
            }
            if v.element == Element::Ignore {
                prop_assert!(v.end.is_none());
            }
        }
        prop_assert_eq!(views.len(), g.node_count());
        for p in g.paths() {
            prop_assert!(matches!(p.elements.last(), Some(Element::Token(_))));
            prop_assert_eq!(p.elements.len(), p.importance.len());
        }
        let mut firsts: Vec<u32> = lines.iter().filter_map(|l| l.elements[0].token()).collect();
        firsts.sort();
        firsts.dedup();
        let activators: Vec<u32> = g.activating().into_iter().map(|(t, _)| t).collect();
        prop_assert_eq!(activators, firsts);
        prop_assert_eq!(g.is_empty(), lines.is_empty());
    }

    /// (b) postcard serialise → deserialise is the identity.
    #[test]
    fn postcard_round_trip(lines in prop::collection::vec(arb_line(), 0..10), mode in arb_mode()) {
        let g = Graph::build(&lines, mode);
        let bytes = postcard::to_allocvec(&g).unwrap();
        let back: Graph = postcard::from_bytes(&bytes).unwrap();
        prop_assert_eq!(&back, &g);
        prop_assert_eq!(back.paths(), g.paths());
    }

    /// (c) predict never panics, on any token sequence and any position.
    #[test]
    fn predict_never_panics(
        lines in prop::collection::vec(arb_line(), 0..8),
        text in prop::collection::vec(
            prop_oneof![
                3 => (0..VOCAB + 2).prop_map(Some),
                1 => any::<u32>().prop_map(Some),
                1 => Just(None),
            ],
            0..24,
        ),
        k in 0usize..32,
    ) {
        let g = Graph::build(&lines, EndActivation::Mean);
        let p = g.predict(&text, k);
        prop_assert!(p.is_finite());
        if k >= text.len() {
            prop_assert_eq!(p, 0.0);
        }
        let all = g.predict_all(&text);
        prop_assert_eq!(all.len(), text.len());
        for (i, &a) in all.iter().enumerate() {
            prop_assert!(a == 0.0 || (0.5..1.0).contains(&a), "{a}");
            prop_assert_eq!(a, g.predict(&text, i));
        }
    }

    /// (d) score agrees with a brute-force count.
    #[test]
    fn score_matches_brute_force(
        pairs in prop::collection::vec((0.0f32..1.0, 0.0f32..1.0), 0..40),
        threshold in prop_oneof![Just(0.5f32), 0.0f32..1.0],
    ) {
        let predicted: Vec<f32> = pairs.iter().map(|p| p.0).collect();
        let truth: Vec<f32> = pairs.iter().map(|p| p.1).collect();
        let s = score(&predicted, &truth, threshold);
        for firing in [true, false] {
            let class = |x: f32| (x >= threshold) == firing;
            let mut tp = 0usize;
            let mut pred = 0usize;
            let mut actual = 0usize;
            for i in 0..pairs.len() {
                if class(predicted[i]) && class(truth[i]) { tp += 1; }
                if class(predicted[i]) { pred += 1; }
                if class(truth[i]) { actual += 1; }
            }
            let precision = if pred == 0 { 1.0 } else { tp as f64 / pred as f64 };
            let recall = if actual == 0 { 1.0 } else { tp as f64 / actual as f64 };
            let f1 = if precision + recall == 0.0 { 0.0 } else { 2.0 * precision * recall / (precision + recall) };
            let got = if firing { s.firing } else { s.non_firing };
            prop_assert_eq!(got.support, actual);
            prop_assert!((got.precision - precision).abs() < 1e-12);
            prop_assert!((got.recall - recall).abs() < 1e-12);
            prop_assert!((got.f1 - f1).abs() < 1e-12);
        }
        let n = pairs.len() as f64;
        if n > 0.0 {
            let mean = truth.iter().map(|&t| t as f64).sum::<f64>() / n;
            let var = truth.iter().map(|&t| (t as f64 - mean).powi(2)).sum::<f64>() / n;
            let mse = pairs.iter().map(|&(p, t)| (p as f64 - t as f64).powi(2)).sum::<f64>() / n;
            if var > 1e-9 {
                prop_assert!((s.variance_explained - (1.0 - mse / var)).abs() < 1e-6 * (1.0 + mse / var));
            }
        }
        prop_assert_eq!(s.tokens, pairs.len());
    }

    /// The per-token baseline predicts the max activation seen on each token.
    #[test]
    fn baseline_matches_brute_force(
        texts in prop::collection::vec(
            prop::collection::vec((prop::option::weighted(0.9, 0u32..8), 0.0f32..1.0), 0..10),
            0..5,
        ),
        query in prop::collection::vec(prop::option::of(0u32..10), 0..10),
    ) {
        let split: Vec<(Vec<Option<u32>>, Vec<f32>)> =
            texts.iter().map(|t| t.iter().cloned().unzip()).collect();
        let b = TokenBaseline::fit(split.iter().map(|(t, a)| (&t[..], &a[..])));
        let got = b.predict(&query);
        for (q, g) in query.iter().zip(got) {
            let expected = texts
                .iter()
                .flatten()
                .filter(|(t, _)| t.is_some() && t == q)
                .map(|&(_, a)| a)
                .fold(None, |m: Option<f32>, a| Some(m.map_or(a, |m| m.max(a))))
                .unwrap_or(0.0);
            prop_assert_eq!(g, expected);
        }
    }
}
