//! Rendering one neuron's [`Graph`] as the paper draws it (DOT) or as text.
//!
//! The trie is collapsed by (depth, token), where depth is the distance from the activating
//! token in the text (IGNORE positions count, so `capital … paris` puts "capital" at depth
//! 2). IGNORE nodes are left out: a context token's edge goes to the nearest token it
//! supports; when IGNOREs were skipped the edge is dashed. The graph drawn is the merged
//! trie that [`Graph::predict`] uses, so generalisations made by IGNORE merging show as
//! extra (dashed) edges. The authors drew the unmerged lines and counted depth in kept
//! tokens; the distance here says more about the pattern.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::{dot_escape, visible};
use crate::n2g::TokenDictionary;
use crate::n2g::{Element, Graph, GraphPath};

/// A node of the collapsed graph.
#[derive(Default)]
struct Collapsed {
    /// Max END activation below an activator (depth 0) / max importance (context).
    weight: f32,
    /// Some trie node collapsed here ends a line.
    end: bool,
}

/// The display string of a dictionary id (`⟨#id⟩` for an id outside the dictionary).
pub(crate) fn token_text(dict: &TokenDictionary, id: u32) -> String {
    match dict.strings().get(id as usize) {
        Some(s) => visible(s),
        None => format!("⟨#{id}⟩"),
    }
}

/// White → `full` colour at intensity `x` (clamped to 0..=1).
pub(crate) fn shade(full: (u8, u8, u8), x: f32) -> (u8, u8, u8) {
    let x = if x.is_finite() {
        x.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let mix = |c: u8| (255.0 - (255.0 - c as f32) * x).round() as u8;
    (mix(full.0), mix(full.1), mix(full.2))
}

/// Full colour of an activating token (and of activation in general).
pub(crate) const RED: (u8, u8, u8) = (230, 0, 0);
/// Full colour of a context token's importance.
pub(crate) const BLUE: (u8, u8, u8) = (0, 60, 230);

/// Collapsed nodes keyed by (depth, token) and edges (from, to) → skipped IGNOREs.
type Collapse = (
    BTreeMap<(u16, u32), Collapsed>,
    BTreeMap<((u16, u32), (u16, u32)), bool>,
);

fn collapse(graph: &Graph) -> Collapse {
    let mut nodes: BTreeMap<(u16, u32), Collapsed> = BTreeMap::new();
    let mut edges = BTreeMap::new();
    let activation: BTreeMap<u32, f32> = graph.activating().into_iter().collect();
    let views = graph.nodes();
    // Nearest non-IGNORE node (itself included) of every arena node, as a collapsed key.
    let mut anchor: Vec<Option<(u16, u32)>> =
        vec![None; views.iter().map(|v| v.id as usize + 1).max().unwrap_or(0)];
    for v in &views {
        let up = anchor.get(v.parent as usize).copied().flatten();
        let Element::Token(t) = v.element else {
            anchor[v.id as usize] = up;
            continue;
        };
        let key = (v.depth, t);
        anchor[v.id as usize] = Some(key);
        let node = nodes.entry(key).or_default();
        node.end |= v.end.is_some();
        if v.depth == 0 {
            node.weight = activation.get(&t).copied().unwrap_or(0.0);
        } else {
            node.weight = node.weight.max(v.importance);
        }
        if let Some(to) = up.filter(|_| v.depth > 0) {
            let skipped = v.depth > to.0 + 1;
            edges.insert((key, to), skipped);
        }
    }
    (nodes, edges)
}

/// Graphviz DOT of a graph: activating tokens (depth 0) filled red by activation, context
/// tokens blue by importance, edges from a context token to the token it supports (dashed
/// across IGNOREs), line ends with a thick border. Labels show spaces and newlines visibly
/// and are escaped for DOT.
pub fn to_dot(graph: &Graph, dict: &TokenDictionary, title: &str) -> String {
    let (nodes, edges) = collapse(graph);
    let id = |(depth, token): (u16, u32)| format!("d{depth}_t{token}");
    let mut out = String::new();
    let title = dot_escape(&visible_title(title));
    let _ = writeln!(out, "digraph \"{title}\" {{");
    let _ = writeln!(
        out,
        "  graph [rankdir=RL, splines=spline, ranksep=1.5, nodesep=0.2, label=\"{title}\", labelloc=t];"
    );
    let _ = writeln!(
        out,
        "  node [shape=box, style=\"rounded,filled\", fontname=\"Helvetica\", penwidth=1];"
    );
    let mut depth = None;
    for (&key, node) in &nodes {
        if depth != Some(key.0) {
            if depth.is_some() {
                out.push_str("  }\n");
            }
            let _ = writeln!(out, "  subgraph depth_{} {{\n    rank=same;", key.0);
            depth = Some(key.0);
        }
        let (colour, what) = if key.0 == 0 {
            (RED, "activation")
        } else {
            (BLUE, "importance")
        };
        let (r, g, b) = shade(colour, node.weight);
        let font = if node.weight > 0.6 { "white" } else { "black" };
        let pen = if node.end { ", penwidth=3" } else { "" };
        let label = dot_escape(&token_text(dict, key.1));
        let _ = writeln!(
            out,
            "    {} [label=\"{label}\", fillcolor=\"#{r:02x}{g:02x}{b:02x}\", fontcolor={font}{pen}, tooltip=\"{what} {:.2}\"];",
            id(key),
            node.weight
        );
    }
    if depth.is_some() {
        out.push_str("  }\n");
    }
    for (&(from, to), &skipped) in &edges {
        let style = if skipped { " [style=dashed]" } else { "" };
        let _ = writeln!(out, "  {} -> {}{style};", id(from), id(to));
    }
    out.push_str("}\n");
    out
}

/// Titles keep their spaces; only control characters are made visible.
fn visible_title(title: &str) -> String {
    title
        .chars()
        .map(|c| {
            if c == ' ' {
                c.to_string()
            } else {
                visible(&c.to_string())
            }
        })
        .collect()
}

/// A token for the terminal, with a truecolor background when `color` is set.
fn paint(text: &str, colour: (u8, u8, u8), x: f32, color: bool) -> String {
    if !color {
        return text.to_string();
    }
    let (r, g, b) = shade(colour, x);
    let fg = if x > 0.6 { 255 } else { 0 };
    format!("\x1b[48;2;{r};{g};{b}m\x1b[38;2;{fg};{fg};{fg}m{text}\x1b[0m")
}

/// One path in reading order: earliest context first, `…` for IGNORE.
fn chain(path: &GraphPath, dict: &TokenDictionary, color: bool) -> String {
    let mut words = Vec::with_capacity(path.elements.len());
    for (i, e) in path.elements.iter().enumerate().rev() {
        let importance = path.importance.get(i).copied().unwrap_or(0.0);
        words.push(match *e {
            Element::Ignore => "…".to_string(),
            Element::Token(t) if i == 0 => paint(&token_text(dict, t), RED, path.activation, color),
            Element::Token(t) => paint(&token_text(dict, t), BLUE, importance, color),
        });
    }
    words.join(" ")
}

/// The graph for the terminal: each activating token (highest activation first) with its
/// activation, then every pattern ending in it, drawn in reading order like
/// `capital … paris  (0.92)` (best first; `[no context] paris` when the token alone
/// fires; `[quiet]` before a pattern whose activation is below `fire_threshold`, an END
/// quieted because it mostly matched where the neuron did not fire). With `color`,
/// truecolor ANSI backgrounds: red by activation, blue by importance.
pub fn to_text(graph: &Graph, dict: &TokenDictionary, fire_threshold: f32, color: bool) -> String {
    let mut activators = graph.activating();
    activators.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut by_activator: BTreeMap<u32, Vec<GraphPath>> = BTreeMap::new();
    for path in graph.paths() {
        if let Some(Element::Token(t)) = path.elements.first() {
            by_activator.entry(*t).or_default().push(path);
        }
    }
    let mut out = String::new();
    for (token, activation) in activators {
        let name = paint(&token_text(dict, token), RED, activation, color);
        let _ = writeln!(out, "{name}  ({activation:.2})");
        let mut paths = by_activator.remove(&token).unwrap_or_default();
        paths.sort_by(|a, b| {
            b.activation
                .total_cmp(&a.activation)
                .then_with(|| a.elements.cmp(&b.elements))
        });
        for path in &paths {
            // A path of the activating token alone fires without any context.
            let alone = if path.activation < fire_threshold {
                "[quiet] "
            } else if path.elements.len() == 1 {
                "[no context] "
            } else {
                ""
            };
            let _ = writeln!(
                out,
                "    {alone}{}  ({:.2})",
                chain(path, dict, color),
                path.activation
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::n2g::{EndActivation, Line};

    fn dict() -> TokenDictionary {
        TokenDictionary::from_strings(
            ["paris", "capital", "the", " ,", "say \"hi\"\n", "\\"]
                .map(String::from)
                .to_vec(),
        )
    }

    fn graph() -> Graph {
        use Element::{Ignore as I, Token as T};
        let lines = [
            Line {
                elements: vec![T(0), I, T(1)],
                importance: vec![1.0, 0.0, 0.9],
                activation: 0.9,
            },
            Line {
                elements: vec![T(0), T(2)],
                importance: vec![1.0, 0.8],
                activation: 0.6,
            },
            Line {
                elements: vec![T(4), T(5)],
                importance: vec![1.0, 0.8],
                activation: 0.7,
            },
        ];
        Graph::build(&lines, EndActivation::Max)
    }

    #[test]
    fn dot_collapses_and_escapes() {
        let dot = to_dot(&graph(), &dict(), "layer \"3\":7");
        assert!(dot.starts_with("digraph \"layer \\\"3\\\":7\" {"), "{dot}");
        // Activator: red, thick border only where a line ends on it (none here).
        assert!(
            dot.contains("d0_t0 [label=\"paris\", fillcolor=\"#e91a1a\""),
            "{dot}"
        );
        assert!(!dot.contains(
            "d0_t0 [label=\"paris\", fillcolor=\"#e91a1a\", fontcolor=white, penwidth=3"
        ));
        // Context: capital at distance 2 (IGNORE left out), dashed edge; the adjacent "the" solid.
        assert!(dot.contains("d2_t1 [label=\"capital\""), "{dot}");
        assert!(dot.contains("d2_t1 -> d0_t0 [style=dashed];"), "{dot}");
        assert!(dot.contains("d1_t2 -> d0_t0;"), "{dot}");
        assert!(
            dot.contains("penwidth=3, tooltip=\"importance 0.90\""),
            "{dot}"
        );
        // Labels: quotes and backslashes escaped, space and newline shown.
        assert!(dot.contains("label=\"say␣\\\"hi\\\"↵\""), "{dot}");
        assert!(dot.contains("label=\"\\\\\""), "{dot}");
        assert!(!dot.contains("Ignore"));
        assert_eq!(dot.matches("->").count(), 3);
    }

    #[test]
    fn text_lists_activators_best_first() {
        let text = to_text(&graph(), &dict(), 0.5, false);
        let expected = "paris  (0.90)\n    capital … paris  (0.90)\n    the paris  (0.60)\n\
                        say␣\"hi\"↵  (0.70)\n    \\ say␣\"hi\"↵  (0.70)\n";
        assert_eq!(text, expected);
        let coloured = to_text(&graph(), &dict(), 0.5, true);
        assert!(coloured.contains("\x1b[48;2;"));
        assert!(coloured.contains("\x1b[0m"));
    }

    #[test]
    fn a_token_that_fires_alone_is_marked() {
        let line = Line {
            elements: vec![Element::Token(2)],
            importance: vec![1.0],
            activation: 0.5,
        };
        let graph = Graph::build(&[line], EndActivation::Max);
        assert_eq!(
            to_text(&graph, &dict(), 0.5, false),
            "the  (0.50)\n    [no context] the  (0.50)\n"
        );
        // Above its activation the threshold makes it a quieted pattern.
        assert_eq!(
            to_text(&graph, &dict(), 0.6, false),
            "the  (0.50)\n    [quiet] the  (0.50)\n"
        );
    }
}
