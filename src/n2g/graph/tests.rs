//! Hand-made tests of lines, trie insertion, IGNORE merging and prediction. Every expected
//! trie below was worked out by hand from the algorithm notes.

use super::*;

const A: u32 = 1;
const B: u32 = 2;
const C: u32 = 3;
const D: u32 = 4;
const E: u32 = 5;
/// A token that occurs in no line.
const X: u32 = 99;
const I: Element = Element::Ignore;

fn t(id: u32) -> Element {
    Element::Token(id)
}

fn line(elements: &[Element], activation: f32) -> Line {
    let importance = elements
        .iter()
        .enumerate()
        .map(|(i, e)| match (i, e) {
            (0, _) => 1.0,
            (_, Element::Ignore) => 0.0,
            _ => 0.9,
        })
        .collect();
    Line {
        elements: elements.to_vec(),
        importance,
        activation,
    }
}

/// Every node as (path from ROOT, END activation), sorted by path.
fn shape(g: &Graph) -> Vec<(Vec<Element>, Option<f32>)> {
    let views = g.nodes();
    let mut path_of: Vec<Vec<Element>> = vec![Vec::new(); g.nodes.len()];
    let mut out = Vec::new();
    for v in views {
        let mut p = path_of[v.parent as usize].clone();
        p.push(v.element);
        path_of[v.id as usize] = p.clone();
        out.push((p, v.end.map(|e| e.activation)));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn text(tokens: &[u32]) -> Vec<Option<u32>> {
    tokens.iter().map(|&t| Some(t)).collect()
}

fn close(a: f32, b: f32) -> bool {
    (a - b).abs() < 1e-6
}

#[test]
fn make_line_keeps_important_tokens_and_cuts_after_the_last() {
    // positions:    0(BOS) 1   2   3   4   5
    let tokens = [0, 10, 11, 12, 13, 14];
    let imp = |j: usize| match j {
        0 => 1.0,
        1 => 0.8,
        3 => 0.9,
        _ => 0.1,
    };
    let l = make_line(&tokens, 5, 1, imp, 0.75, 0.7);
    assert_eq!(l.elements, vec![t(14), I, t(12), I, t(10)]);
    assert_eq!(l.importance, vec![1.0, 0.0, 0.9, 0.0, 0.8]);
    assert_eq!(l.activation, 0.7);

    // Without position 1 the line is cut after position 3; the BOS is never used.
    let imp2 = |j: usize| if j == 3 || j == 0 { 0.9 } else { 0.1 };
    let l = make_line(&tokens, 5, 1, imp2, 0.75, 0.7);
    assert_eq!(l.elements, vec![t(14), I, t(12)]);
    assert_eq!(l.importance, vec![1.0, 0.0, 0.9]);

    // With first = 0 the BOS may be context.
    let l = make_line(&tokens, 5, 0, imp2, 0.75, 0.7);
    assert_eq!(l.elements, vec![t(14), I, t(12), I, I, t(0)]);

    // Importance equal to the threshold is not kept (strictly greater); NaN is not kept.
    let l = make_line(&tokens, 5, 1, |_| 0.75, 0.75, 0.7);
    assert_eq!(l.elements, vec![t(14)]);
    let l = make_line(&tokens, 5, 1, |_| f32::NAN, 0.75, 0.7);
    assert_eq!(l.elements, vec![t(14)]);

    // k at (or before) `first`: just the activating token, even if it is the excluded BOS.
    assert_eq!(
        make_line(&tokens, 1, 1, |_| 1.0, 0.5, 0.6).elements,
        vec![t(10)]
    );
    assert_eq!(
        make_line(&tokens, 0, 1, |_| 1.0, 0.5, 0.6).elements,
        vec![t(0)]
    );
}

#[test]
fn insertion_shares_prefixes_and_marks_activators() {
    let lines = [
        line(&[t(A), t(B)], 0.6),
        line(&[t(A), t(C)], 0.7),
        line(&[t(A), t(B), t(D)], 0.8),
        line(&[t(C)], 0.9),
    ];
    let g = Graph::build(&lines, EndActivation::Max);
    let expected = vec![
        (vec![t(A)], None),
        (vec![t(A), t(B)], Some(0.6)),
        (vec![t(A), t(B), t(D)], Some(0.8)),
        (vec![t(A), t(C)], Some(0.7)),
        (vec![t(C)], Some(0.9)),
    ];
    assert_eq!(shape(&g), expected);
    assert_eq!(g.node_count(), 5);
    // Activators are exactly the depth-0 nodes: A and C (C also occurs as context).
    assert_eq!(g.activating(), vec![(A, 0.8), (C, 0.9)]);
    let context: Vec<(u32, u16, bool)> = g
        .context()
        .iter()
        .map(|c| (c.token, c.depth, c.adjacent))
        .collect();
    assert_eq!(context, vec![(B, 1, true), (C, 1, true), (D, 2, false)]);
    assert!(!g.is_empty());
    assert!(Graph::build(&[], EndActivation::Max).is_empty());
}

#[test]
fn node_importance_is_the_max_over_lines() {
    let mut l1 = line(&[t(A), t(B)], 0.6);
    l1.importance[1] = 0.8;
    let mut l2 = line(&[t(A), t(B), t(C)], 0.6);
    l2.importance[1] = 0.95;
    let g = Graph::build(&[l1, l2], EndActivation::Max);
    let b = g.context().into_iter().find(|c| c.token == B).unwrap();
    assert_eq!(b.importance, 0.95);
    assert_eq!(g.paths()[0].importance, vec![1.0, 0.95]);
}

#[test]
fn merge_keeps_a_sibling_that_ends_a_line() {
    // [B, A] and [B, *, C]. Before merging, B has children A (END) and * → C (END).
    // A's only path minus A is the bare END, which is not copied (it would end a line on
    // IGNORE); A ends a line, so it stays. Nothing changes.
    let lines = [line(&[t(B), t(A)], 0.6), line(&[t(B), I, t(C)], 0.8)];
    let g = Graph::build(&lines, EndActivation::Max);
    let expected = vec![
        (vec![t(B)], None),
        (vec![t(B), t(A)], Some(0.6)),
        (vec![t(B), I], None),
        (vec![t(B), I, t(C)], Some(0.8)),
    ];
    assert_eq!(shape(&g), expected);
    assert_eq!(g.node_count(), 4);
}

#[test]
fn merge_moves_a_sibling_that_does_not_end_a_line() {
    // [B, A, C] and [B, *, D]. A's path minus A is C → END: copied under B/*; A has no END,
    // so it is dropped (with its subtree).
    let lines = [line(&[t(B), t(A), t(C)], 0.7), line(&[t(B), I, t(D)], 0.9)];
    let g = Graph::build(&lines, EndActivation::Max);
    let expected = vec![
        (vec![t(B)], None),
        (vec![t(B), I], None),
        (vec![t(B), I, t(C)], Some(0.7)),
        (vec![t(B), I, t(D)], Some(0.9)),
    ];
    assert_eq!(shape(&g), expected);
    assert_eq!(g.node_count(), 4);
    // The text that matched the dropped A still reaches its END through IGNORE, and any
    // token in A's place now does too.
    assert!(close(g.predict(&text(&[C, A, B]), 2), 0.7));
    assert!(close(g.predict(&text(&[C, X, B]), 2), 0.7));
    assert!(close(g.predict(&[Some(C), None, Some(B)], 2), 0.7));
    assert!(close(g.predict(&text(&[D, A, B]), 2), 0.9));
    // B alone ends no line.
    assert_eq!(g.predict(&text(&[E, A, B]), 2), 0.0);
}

#[test]
fn merge_is_applied_again_below_the_ignore_node() {
    // [B, A, C, D] and [B, *, *, E].
    // At B: A's remainder C → D → END goes under B/*; A is dropped.
    // At B/*: children C (→ D → END) and * (→ E → END); C's remainder D → END goes under
    // B/*/*; C is dropped.
    let lines = [
        line(&[t(B), t(A), t(C), t(D)], 0.6),
        line(&[t(B), I, I, t(E)], 0.9),
    ];
    let g = Graph::build(&lines, EndActivation::Max);
    let expected = vec![
        (vec![t(B)], None),
        (vec![t(B), I], None),
        (vec![t(B), I, I], None),
        (vec![t(B), I, I, t(D)], Some(0.6)),
        (vec![t(B), I, I, t(E)], Some(0.9)),
    ];
    assert_eq!(shape(&g), expected);
    assert!(close(g.predict(&text(&[D, C, A, B]), 3), 0.6));
    assert!(close(g.predict(&text(&[E, C, A, B]), 3), 0.9));
    let paths: Vec<Vec<Element>> = g.paths().into_iter().map(|p| p.elements).collect();
    assert_eq!(paths, vec![vec![t(B), I, I, t(D)], vec![t(B), I, I, t(E)]]);
}

#[test]
fn copies_combine_with_existing_ends() {
    // [B, A, C] (0.6, first) and [B, *, C] (0.8). After merging B/*/C holds both lines;
    // the copy arrives after both insertions, so "first" is the [B, *, C] line.
    let lines = [line(&[t(B), t(A), t(C)], 0.6), line(&[t(B), I, t(C)], 0.8)];
    let expect = |mode, value| {
        let g = Graph::build(&lines, mode);
        let s = shape(&g);
        let paths: Vec<&Vec<Element>> = s.iter().map(|(p, _)| p).collect();
        assert_eq!(paths, [&vec![t(B)], &vec![t(B), I], &vec![t(B), I, t(C)]]);
        assert!(close(s[2].1.unwrap(), value), "{mode:?}");
        assert_eq!(g.nodes().last().unwrap().end.unwrap().lines, 2);
    };
    expect(EndActivation::Max, 0.8);
    expect(EndActivation::First, 0.8);
    expect(EndActivation::Mean, 0.7);
}

#[test]
fn end_activation_policies_on_one_path() {
    let lines = [line(&[t(A), t(B)], 0.6), line(&[t(A), t(B)], 0.9)];
    let value = |mode| Graph::build(&lines, mode).predict(&text(&[B, A]), 1);
    assert!(close(value(EndActivation::Max), 0.9));
    assert!(close(value(EndActivation::First), 0.6));
    assert!(close(value(EndActivation::Mean), 0.75));
    assert_eq!(EndActivation::default(), EndActivation::Mean);
}

#[test]
fn prediction_needs_an_activator_at_k() {
    let lines = [line(&[t(B), I, t(C)], 0.8)];
    let g = Graph::build(&lines, EndActivation::Max);
    // C is only context: nothing fires on it.
    assert_eq!(g.predict(&text(&[X, X, C]), 2), 0.0);
    // A token absent from the dictionary at k never fires, even where IGNORE would match.
    assert_eq!(g.predict(&[Some(C), Some(X), None], 2), 0.0);
    assert_eq!(g.predict(&[Some(C), Some(X), Some(X)], 2), 0.0);
    assert!(close(g.predict(&text(&[C, X, B]), 2), 0.8));
    assert_eq!(g.predict_all(&text(&[C, X, B])), vec![0.0, 0.0, 0.8]);
}

#[test]
fn longest_match_wins_and_the_last_end_is_remembered() {
    let lines = [
        line(&[t(A)], 0.5),
        line(&[t(A), t(B)], 0.7),
        line(&[t(A), t(B), t(C)], 0.9),
        line(&[t(A), I, I, t(D)], 0.6),
    ];
    let g = Graph::build(&lines, EndActivation::Max);
    assert!(close(g.predict(&text(&[C, B, A]), 2), 0.9));
    assert!(close(g.predict(&text(&[X, C, B, A]), 3), 0.9));
    assert!(close(g.predict(&text(&[X, B, A]), 2), 0.7));
    assert!(close(g.predict(&text(&[B, A]), 1), 0.7));
    assert!(close(g.predict(&text(&[A]), 0), 0.5));
    // X X walk the IGNORE branch without an END, then D fails: A's own END is remembered.
    assert!(close(g.predict(&text(&[E, X, X, A]), 3), 0.5));
    assert!(close(g.predict(&text(&[D, X, X, A]), 3), 0.6));
    assert!(close(g.predict(&[Some(D), None, None, Some(A)], 3), 0.6));
}

#[test]
fn the_walk_is_greedy_and_never_backtracks() {
    // See the module docs: a kept sibling hides the IGNORE branch for texts matching it.
    let lines = [line(&[t(B), t(A)], 0.6), line(&[t(B), I, t(C)], 0.8)];
    let g = Graph::build(&lines, EndActivation::Max);
    assert!(close(g.predict(&text(&[C, A, B]), 2), 0.6));
    assert!(close(g.predict(&text(&[C, X, B]), 2), 0.8));
}

#[test]
fn prediction_edge_cases() {
    let g = Graph::build(&[line(&[t(A), t(B)], 0.7)], EndActivation::Max);
    assert_eq!(g.predict(&[], 0), 0.0);
    assert_eq!(g.predict(&text(&[B, A]), 5), 0.0);
    assert!(g.predict_all(&[]).is_empty());
    assert_eq!(g.predict(&[None, Some(u32::MAX)], 1), 0.0);
    assert_eq!(Graph::default().predict(&text(&[A]), 0), 0.0);
}

#[test]
fn odd_lines_are_normalised_or_skipped() {
    let lines = [
        line(&[t(A), t(B), I, I], 0.7), // trailing IGNOREs cut
        line(&[I, t(B)], 0.9),          // no activating token: skipped
        line(&[], 0.9),                 // empty: skipped
        line(&[t(C)], f32::NAN),        // no usable activation: skipped
    ];
    let g = Graph::build(&lines, EndActivation::Max);
    assert_eq!(
        shape(&g),
        vec![(vec![t(A)], None), (vec![t(A), t(B)], Some(0.7))]
    );
}

#[test]
fn paths_report_activation_and_importance() {
    let lines = [line(&[t(B), t(A)], 0.6), line(&[t(B), I, t(C)], 0.8)];
    let g = Graph::build(&lines, EndActivation::Max);
    let paths = g.paths();
    assert_eq!(paths.len(), 2);
    assert_eq!(paths[0].elements, vec![t(B), t(A)]);
    assert!(close(paths[0].activation, 0.6));
    assert_eq!(paths[1].elements, vec![t(B), I, t(C)]);
    assert_eq!(paths[1].importance, vec![1.0, 0.0, 0.9]);
}

#[test]
fn rarely_firing_ends_take_the_mean_of_their_matches() {
    // Lines [A] 0.8, [A, B] 0.9 and [D] 0.7. In the texts below (position 0 excluded)
    // the END of [A] is the longest match at five positions, activations 0.1, 0.3,
    // 0.05, 0.6 and 0.0 (one of five fires: a share of 0.2, mean 0.21); [A, B]'s END
    // matches once, at 0.95 (not counted for [A]); [D] never matches.
    let lines = [
        line(&[t(A)], 0.8),
        line(&[t(A), t(B)], 0.9),
        line(&[t(D)], 0.7),
    ];
    let texts = vec![
        (
            text(&[X, A, B, A, C, A]),
            vec![0.0, 0.1, 0.0, 0.95, 0.0, 0.3],
        ),
        (text(&[A, A, X, A]), vec![0.9, 0.05, 0.0, 0.6]),
        (text(&[C, A]), vec![0.0, 0.0]),
    ];
    let quieted = |from, min_share| {
        let mut g = Graph::build(&lines, EndActivation::Mean);
        g.quiet_rare_ends(&texts, from, 0.5, min_share);
        [
            g.predict(&text(&[X, A]), 1),
            g.predict(&text(&[B, A]), 1),
            g.predict(&text(&[D]), 0),
        ]
    };
    let expect = |got: [f32; 3], want: [f32; 3]| {
        assert!(
            got.iter().zip(&want).all(|(a, b)| close(*a, *b)),
            "{got:?} vs {want:?}"
        );
    };
    // A share of exactly 0.2 is not below 0.2: nothing changes.
    expect(quieted(1, 0.2), [0.8, 0.9, 0.7]);
    expect(quieted(1, 0.0), [0.8, 0.9, 0.7]);
    // Below 0.25: [A] predicts the mean of its matches, the others keep their lines'.
    expect(quieted(1, 0.25), [0.21, 0.9, 0.7]);
    // From position 0, the 0.9 there is a sixth match: two of six fire, above 0.25.
    expect(quieted(0, 0.25), [0.8, 0.9, 0.7]);
    // Below 0.5 (two of six) it is quieted to the mean of all six, 1.95 / 6.
    expect(quieted(0, 0.5), [0.325, 0.9, 0.7]);
}
