//! Drawing for the web: a neuron's [`Graph`] as an SVG picture in the paper's style, and
//! the activation histogram as an SVG bar chart. Both are self-contained SVG documents
//! (no external fonts, styles or scripts) that can be inlined in HTML or saved as files.
//!
//! The graph reads as the text reads: context tokens on the left, the activating tokens
//! in the rightmost column, each trie node collapsed by (distance from the activating
//! token, element), IGNORE drawn as `*`. Activating tokens are filled red by their
//! activation, context tokens blue by their importance; a node where a pattern ends has a
//! bold border, dashed when every pattern ending there is quiet (its activation is below
//! the firing threshold). Every node carries a `<title>` with its values (a hover tooltip
//! in browsers).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;

use super::graph::{shade, token_text, BLUE, RED};
use super::xml_escape;
use crate::n2g::{Element, Graph, TokenDictionary};

/// Activating tokens drawn at most (the strongest); the caption counts the rest.
pub const MAX_ACTIVATORS: usize = 40;
/// Width of one character of the 13 px monospace label font.
const CHAR_W: f32 = 7.8;
const NODE_H: f32 = 24.0;
const ROW_GAP: f32 = 8.0;
const COL_GAP: f32 = 40.0;
const PAD: f32 = 12.0;
const TITLE_H: f32 = 26.0;
/// Two legend lines.
const LEGEND_H: f32 = 44.0;
/// Rows of a column of activating tokens when a graph has no context.
const GRID_ROWS: usize = 10;
/// Gap between the columns of such a graph.
const GRID_GAP: f32 = 14.0;
/// The legend's lines: what the colours, borders and `*` mean.
const LEGEND: [&str; 2] = [
    "read left to right · red: activating token by activation · blue: context by importance",
    "bold border: a pattern ends · dashed: quiet pattern · *: any token",
];
/// Width of one character of the 11.5 px legend font.
const LEGEND_CHAR_W: f32 = 6.9;
/// Labels longer than this many characters are cut (the tooltip has the whole token).
const MAX_LABEL: usize = 24;
const FONT: &str = "ui-monospace, SFMono-Regular, Menlo, Consolas, 'DejaVu Sans Mono', monospace";

/// A collapsed node: (distance from the activating token, element).
type Key = (u16, Element);

/// A drawn node.
struct Node {
    /// Activation (depth 0) or max importance (context).
    weight: f32,
    /// Max END activation of the patterns ending here.
    end: Option<f32>,
    /// The visible token (`*` for IGNORE).
    text: String,
    x: f32,
    y: f32,
}

impl Node {
    fn label(&self) -> String {
        if self.text.chars().count() > MAX_LABEL {
            let cut: String = self.text.chars().take(MAX_LABEL - 1).collect();
            format!("{cut}…")
        } else {
            self.text.clone()
        }
    }

    fn width(&self) -> f32 {
        (self.label().chars().count() as f32 * CHAR_W + 16.0).max(30.0)
    }
}

/// The collapsed graph: nodes, edges (context → the node it precedes), and how many
/// activating tokens were left out.
struct Collapsed {
    nodes: BTreeMap<Key, Node>,
    edges: BTreeSet<(Key, Key)>,
    hidden: usize,
}

fn collapse(graph: &Graph, dict: &TokenDictionary) -> Collapsed {
    let mut activators = graph.activating();
    activators.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let hidden = activators.len().saturating_sub(MAX_ACTIVATORS);
    activators.truncate(MAX_ACTIVATORS);
    let activation: HashMap<u32, f32> = activators.into_iter().collect();
    let mut nodes: BTreeMap<Key, Node> = BTreeMap::new();
    let mut edges = BTreeSet::new();
    let mut key_of: HashMap<u32, Key> = HashMap::new();
    for v in graph.nodes() {
        let parent = key_of.get(&v.parent).copied();
        let weight = match (v.depth, v.element) {
            (0, Element::Token(t)) => match activation.get(&t) {
                Some(&a) => a,
                None => continue,
            },
            (0, Element::Ignore) => continue,
            _ if parent.is_none() => continue,
            (_, Element::Token(_)) => v.importance,
            (_, Element::Ignore) => 0.0,
        };
        let key = (v.depth, v.element);
        key_of.insert(v.id, key);
        let node = nodes.entry(key).or_insert_with(|| Node {
            weight,
            end: None,
            text: v
                .element
                .token()
                .map_or_else(|| "*".to_string(), |t| token_text(dict, t)),
            x: 0.0,
            y: 0.0,
        });
        node.weight = node.weight.max(weight);
        if let Some(end) = v.end {
            node.end = Some(node.end.map_or(end.activation, |e| e.max(end.activation)));
        }
        if let Some(parent) = parent {
            edges.insert((key, parent));
        }
    }
    Collapsed {
        nodes,
        edges,
        hidden,
    }
}

/// Places the nodes: one column per distance, the activating tokens (strongest first)
/// rightmost; each context node as near the mean height of the nodes it precedes as
/// the column allows. Returns the picture's width and the bottom of the lowest node.
fn layout(c: &mut Collapsed) -> (f32, f32) {
    let max_depth = c.nodes.keys().map(|k| k.0).max().unwrap_or(0) as usize;
    if max_depth == 0 {
        return grid(c);
    }
    let mut columns: Vec<Vec<Key>> = vec![Vec::new(); max_depth + 1];
    for k in c.nodes.keys() {
        columns[k.0 as usize].push(*k);
    }
    let mut targets: HashMap<Key, Vec<Key>> = HashMap::new();
    for &(from, to) in &c.edges {
        targets.entry(from).or_default().push(to);
    }
    let top = PAD + TITLE_H;
    let mut y_of: HashMap<Key, f32> = HashMap::new();
    let mut bottom = top;
    for (d, column) in columns.iter().enumerate() {
        let mut wanted: Vec<(f32, f32, Key)> = column
            .iter()
            .map(|k| {
                let weight = c.nodes[k].weight;
                let ys: Vec<f32> = targets
                    .get(k)
                    .map(|t| t.iter().filter_map(|t| y_of.get(t).copied()).collect())
                    .unwrap_or_default();
                let y = if d == 0 || ys.is_empty() {
                    f32::NEG_INFINITY
                } else {
                    ys.iter().sum::<f32>() / ys.len() as f32
                };
                (y, weight, *k)
            })
            .collect();
        wanted.sort_by(|a, b| {
            a.0.total_cmp(&b.0)
                .then(b.1.total_cmp(&a.1))
                .then(a.2.cmp(&b.2))
        });
        let mut next = top;
        for (want, _, k) in wanted {
            let y = want.max(next);
            y_of.insert(k, y);
            next = y + NODE_H + ROW_GAP;
            bottom = bottom.max(y + NODE_H);
        }
    }
    let mut x = PAD;
    for d in (0..=max_depth).rev() {
        let width = columns[d]
            .iter()
            .map(|k| c.nodes[k].width())
            .fold(0.0, f32::max);
        for k in &columns[d] {
            let node = c.nodes.get_mut(k).expect("column keys are nodes");
            node.x = x + (width - node.width()) / 2.0;
            node.y = y_of[k];
        }
        x += width + COL_GAP;
    }
    (x - COL_GAP + PAD, bottom)
}

/// Places the activating tokens of a graph without context: strongest first, in
/// columns of [`GRID_ROWS`] read top to bottom, then left to right.
fn grid(c: &mut Collapsed) -> (f32, f32) {
    let mut keys: Vec<Key> = c.nodes.keys().copied().collect();
    keys.sort_by(|a, b| {
        c.nodes[b]
            .weight
            .total_cmp(&c.nodes[a].weight)
            .then(a.cmp(b))
    });
    let top = PAD + TITLE_H;
    let (mut x, mut bottom) = (PAD, top);
    for column in keys.chunks(GRID_ROWS) {
        let width = column
            .iter()
            .map(|k| c.nodes[k].width())
            .fold(0.0, f32::max);
        for (row, k) in column.iter().enumerate() {
            let node = c.nodes.get_mut(k).expect("grid keys are nodes");
            node.x = x + (width - node.width()) / 2.0;
            node.y = top + row as f32 * (NODE_H + ROW_GAP);
            bottom = bottom.max(node.y + NODE_H);
        }
        x += width + GRID_GAP;
    }
    (x - GRID_GAP + PAD, bottom)
}

/// The tooltip of a node.
fn tooltip(key: Key, node: &Node, fire_threshold: f32) -> String {
    let mut t = match key {
        (0, _) => format!(
            "activating token {}: activation {:.2}",
            node.text, node.weight
        ),
        (d, Element::Ignore) => format!("any token, {d} before the activating token"),
        (d, _) => format!(
            "context token {}, {d} before the activating token: importance {:.2}",
            node.text, node.weight
        ),
    };
    if let Some(end) = node.end {
        let quiet = if end < fire_threshold { ", quiet" } else { "" };
        let _ = write!(t, "; a pattern ends here (activation {end:.2}{quiet})");
    }
    t
}

/// Writes one node: a rounded box filled by value, its label, and its tooltip.
fn write_node(out: &mut String, key: Key, node: &Node, fire_threshold: f32) {
    let (class, fill, ink) = match key {
        (_, Element::Ignore) => ("ignore", (244, 244, 246), "#6b7280"),
        (0, _) => {
            let ink = if node.weight > 0.6 {
                "#ffffff"
            } else {
                "#111111"
            };
            ("activating", shade(RED, node.weight), ink)
        }
        _ => {
            let ink = if node.weight > 0.6 {
                "#ffffff"
            } else {
                "#111111"
            };
            ("context", shade(BLUE, node.weight), ink)
        }
    };
    let quiet = node.end.is_some_and(|e| e < fire_threshold);
    let (stroke, width, dash, extra) = match (node.end, quiet) {
        (Some(_), true) => ("#6b7280", 2.2, " stroke-dasharray=\"4 3\"", " end quiet"),
        (Some(_), false) => ("#111111", 2.6, "", " end"),
        (None, _) => ("#9ca3af", 1.0, "", ""),
    };
    let (r, g, b) = fill;
    let w = node.width();
    let _ = writeln!(
        out,
        "<g class=\"node {class}{extra}\"><title>{}</title>\
         <rect x=\"{:.1}\" y=\"{:.1}\" width=\"{w:.1}\" height=\"{NODE_H}\" rx=\"5\" \
         fill=\"#{r:02x}{g:02x}{b:02x}\" stroke=\"{stroke}\" stroke-width=\"{width}\"{dash}/>\
         <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"{ink}\"{}>{}</text></g>",
        xml_escape(&tooltip(key, node, fire_threshold)),
        node.x,
        node.y,
        node.x + w / 2.0,
        node.y + NODE_H / 2.0 + 4.5,
        if node.end.is_some() {
            " font-weight=\"700\""
        } else {
            ""
        },
        xml_escape(&node.label()),
    );
}

/// A neuron's graph as a standalone SVG document (see the module docs): `title` on top,
/// a two-line legend below, patterns whose END activation is below `fire_threshold`
/// marked quiet. At most [`MAX_ACTIVATORS`] activating tokens are drawn; the caption
/// says how many more there are. An empty graph gives a small picture saying so.
pub fn graph_svg(
    graph: &Graph,
    dict: &TokenDictionary,
    fire_threshold: f32,
    title: &str,
) -> String {
    let mut c = collapse(graph, dict);
    let (mut width, bottom) = layout(&mut c);
    let legend = LEGEND[0].chars().count() as f32 * LEGEND_CHAR_W + 2.0 * PAD;
    width = width.max(legend);
    let empty = c.nodes.is_empty();
    let height = if empty {
        PAD + TITLE_H + NODE_H + PAD
    } else {
        bottom + PAD + LEGEND_H
    };
    let mut out = String::with_capacity(256 + c.nodes.len() * 420);
    let _ = write!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"n2g-graph\" width=\"{width:.0}\" \
         height=\"{height:.0}\" viewBox=\"0 0 {width:.0} {height:.0}\" role=\"img\" \
         aria-label=\"{t}\" font-family=\"{FONT}\" font-size=\"13\">\n<title>{t}</title>\n\
         <rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n\
         <text x=\"{PAD}\" y=\"{:.0}\" font-size=\"14\" font-weight=\"600\" fill=\"#111111\">{t}</text>\n",
        PAD + 15.0,
        t = xml_escape(title),
    );
    if empty {
        let _ = writeln!(
            out,
            "<text x=\"{PAD}\" y=\"{:.0}\" fill=\"#6b7280\">empty graph: no pattern of the training examples made the neuron fire</text>",
            PAD + TITLE_H + 16.0
        );
        out.push_str("</svg>\n");
        return out;
    }
    for (from, to) in &c.edges {
        let (a, b) = (&c.nodes[from], &c.nodes[to]);
        let (x1, y1) = (a.x + a.width(), a.y + NODE_H / 2.0);
        let (x2, y2) = (b.x, b.y + NODE_H / 2.0);
        let mid = (x1 + x2) / 2.0;
        let _ = writeln!(
            out,
            "<path class=\"edge\" d=\"M{x1:.1} {y1:.1} C{mid:.1} {y1:.1} {mid:.1} {y2:.1} {x2:.1} {y2:.1}\" fill=\"none\" stroke=\"#9ca3af\" stroke-width=\"1.3\"/>"
        );
    }
    for (key, node) in &c.nodes {
        write_node(&mut out, *key, node, fire_threshold);
    }
    let more = if c.hidden > 0 {
        format!(" · {} more activating tokens not drawn", c.hidden)
    } else {
        String::new()
    };
    let _ = writeln!(
        out,
        "<text class=\"legend\" x=\"{PAD}\" y=\"{:.0}\" font-size=\"11.5\" fill=\"#4b5563\">{}</text>\n\
         <text class=\"legend\" x=\"{PAD}\" y=\"{:.0}\" font-size=\"11.5\" fill=\"#4b5563\">{}{}</text>",
        height - PAD - 16.0,
        LEGEND[0],
        height - PAD,
        LEGEND[1],
        xml_escape(&more)
    );
    out.push_str("</svg>\n");
    out
}

/// The lower bound shown under a histogram tick, if `bin` starts at one of the marked
/// magnitudes.
fn tick_label(lo: f32) -> Option<&'static str> {
    const MARKS: [(f32, &str); 10] = [
        (0.0625, "1/16"),
        (0.25, "¼"),
        (1.0, "1"),
        (4.0, "4"),
        (16.0, "16"),
        (-0.0625, "−1/16"),
        (-0.25, "−¼"),
        (-1.0, "−1"),
        (-4.0, "−4"),
        (-16.0, "−16"),
    ];
    MARKS.iter().find(|(v, _)| *v == lo).map(|(_, s)| *s)
}

/// The activation histogram (`counts[b]` tokens in bin `b` of
/// [`crate::store::records::histogram_bin_edges`]) as an SVG bar chart: bar heights on a log
/// scale of the count, negative bins grey, the zero bin dark, positive bins red; ticks
/// at 0 and at powers of four; each bar's range and count in its tooltip.
pub fn histogram_svg(counts: &[u32]) -> String {
    const BAR: f32 = 4.0;
    const H: f32 = 90.0;
    let width = counts.len() as f32 * BAR + 2.0 * PAD;
    let height = H + PAD + 30.0;
    let top = counts.iter().copied().max().unwrap_or(0);
    let scale = |n: u32| ((n as f32).ln_1p() / (top as f32).ln_1p().max(1e-9)) * H;
    let mut out = String::with_capacity(4096);
    let _ = writeln!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"n2g-histogram\" width=\"{width:.0}\" \
         height=\"{height:.0}\" viewBox=\"0 0 {width:.0} {height:.0}\" role=\"img\" \
         aria-label=\"activation histogram\" font-family=\"system-ui, sans-serif\" font-size=\"10.5\">\
         <title>activation histogram (log scale of counts)</title>"
    );
    let base = PAD + H;
    let _ = writeln!(
        out,
        "<line x1=\"{PAD}\" y1=\"{base}\" x2=\"{:.0}\" y2=\"{base}\" stroke=\"#9ca3af\"/>",
        width - PAD
    );
    for (b, &n) in counts.iter().enumerate() {
        let x = PAD + b as f32 * BAR;
        let (lo, hi) = crate::store::records::histogram_bin_edges(b);
        if let Some(label) = tick_label(lo).or((lo < 0.0 && hi > 0.0).then_some("0")) {
            let _ = writeln!(
                out,
                "<line x1=\"{x:.1}\" y1=\"{base}\" x2=\"{x:.1}\" y2=\"{:.0}\" stroke=\"#9ca3af\"/>\
                 <text x=\"{x:.1}\" y=\"{:.0}\" text-anchor=\"middle\" fill=\"#4b5563\">{label}</text>",
                base + 4.0,
                base + 16.0
            );
        }
        if n == 0 {
            continue;
        }
        let fill = if lo < 0.0 && hi > 0.0 {
            "#374151"
        } else if lo >= 0.0 {
            "#dc2626"
        } else {
            "#9ca3af"
        };
        let h = scale(n).max(1.0);
        let _ = writeln!(
            out,
            "<rect class=\"bar\" x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{h:.1}\" fill=\"{fill}\"><title>{lo:.4} to {hi:.4}: {n} tokens</title></rect>",
            base - h,
            BAR - 0.6
        );
    }
    let _ = writeln!(
        out,
        "<text x=\"{:.0}\" y=\"{:.0}\" text-anchor=\"end\" fill=\"#6b7280\">activation (log scale) · bar height: log count</text></svg>",
        width - PAD,
        height - 2.0
    );
    out
}

#[cfg(test)]
mod tests;
