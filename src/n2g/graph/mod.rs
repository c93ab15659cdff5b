//! The N2G graph: a trie of token patterns that make a neuron fire (algorithm steps 6–7).
//!
//! A [`Line`] is one firing position of a training text read backwards: the activating
//! token, then earlier tokens that matter for it (others become [`Element::Ignore`]).
//! [`Graph::build`] inserts the lines into a trie rooted at ROOT, merges IGNORE branches,
//! and stores the result as a compact arena: nodes in depth-first pre-order, each with its
//! children as a small sorted `Vec<(Element, u32)>`, its max importance and, when lines end
//! there, its END activation. Tokens are ids of the index's
//! [`TokenDictionary`](super::TokenDictionary), so a serialised graph holds no strings.
//!
//! IGNORE branches are merged as the authors' code does it, and prediction walks the trie
//! greedily (the exact token child, else the IGNORE child, else stop): what that means
//! for which texts a graph matches is set out in `docs/N2G.md` (step 9, "Trie and IGNORE merging"). Depth-0
//! nodes (the children of ROOT) are exactly the activating tokens.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

/// An element of a line / trie path. Token ids are ids of the index's TokenDictionary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Element {
    /// A normalised token (dictionary id).
    Token(u32),
    /// N2G's IGNORE: any token (sorts after every token).
    Ignore,
}

impl Element {
    /// The token id, or `None` for [`Element::Ignore`].
    pub fn token(self) -> Option<u32> {
        match self {
            Element::Token(t) => Some(t),
            Element::Ignore => None,
        }
    }
}

/// One line (algorithm step 6): `elements[0]` is the activating token at position k
/// (always a token), then earlier tokens walking backwards (kept as tokens if important
/// for k, else [`Element::Ignore`]), cut after the last kept element. `importance[i]` is
/// the importance of `elements[i]` for the activating token (1.0 for i = 0, 0.0 for
/// IGNORE). `activation` is the normalised activation at k (`act * scale / max_act`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Line {
    /// Activating token first, then the context walking backwards.
    pub elements: Vec<Element>,
    /// Importance of each element for the activating token.
    pub importance: Vec<f32>,
    /// Normalised activation at the activating token.
    pub activation: f32,
}

/// Builds the line for position `k` of a text: `tokens[j]` is the dictionary id of the
/// normalised token at j; `importance_for(j)` is the importance of token j for k; token j
/// is kept iff `importance_for(j) > threshold` (a NaN importance is never kept). `first` is
/// the lowest position usable as context (pass 1 to exclude a BOS at 0).
///
/// # Panics
/// When `k >= tokens.len()`.
pub fn make_line(
    tokens: &[u32],
    k: usize,
    first: usize,
    importance_for: impl Fn(usize) -> f32,
    threshold: f32,
    activation: f32,
) -> Line {
    let mut elements = vec![Element::Token(tokens[k])];
    let mut importance = vec![1.0];
    let mut kept = 1;
    for j in (first..k).rev() {
        let imp = importance_for(j);
        if imp > threshold {
            elements.push(Element::Token(tokens[j]));
            importance.push(imp);
            kept = elements.len();
        } else {
            elements.push(Element::Ignore);
            importance.push(0.0);
        }
    }
    elements.truncate(kept);
    importance.truncate(kept);
    Line {
        elements,
        importance,
        activation,
    }
}

/// What an END node keeps when several lines end at the same node (copies made by IGNORE
/// merging count as lines ending there).
///
/// The default is [`EndActivation::Mean`]: every line reaching the builder fired
/// (activation > 0.5), so Max, First and Mean predict exactly the same firing tokens and
/// differ only in the activation value, where the mean is the least-squares choice over
/// the lines that end at the node (it maximises variance explained on them), and unlike
/// First it does not depend on the order lines are inserted. Max gives an upper envelope;
/// First reproduces the authors' code.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EndActivation {
    /// The largest activation of the lines ending here.
    Max,
    /// The activation of the first line inserted (the authors' behaviour).
    First,
    /// The mean activation of the lines ending here.
    #[default]
    Mean,
}

/// END information of a node: lines end here.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct End {
    /// The activation predicted for a match ending here (see [`EndActivation`]).
    pub activation: f32,
    /// How many lines (IGNORE-merge copies included) end here.
    pub lines: u32,
}

/// One trie node of the arena.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct Node {
    /// Children sorted by element (IGNORE last), as arena indices.
    children: Vec<(Element, u32)>,
    /// Max importance over the lines through this node.
    importance: f32,
    /// Set when lines end here.
    end: Option<End>,
}

/// The N2G graph of one neuron: a trie of lines after IGNORE merging (see the module docs).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Graph {
    /// Arena in depth-first pre-order; `nodes[0]` is ROOT.
    nodes: Vec<Node>,
    /// How END activations were combined.
    end: EndActivation,
}

impl Default for Graph {
    fn default() -> Self {
        Graph {
            nodes: vec![Node::default()],
            end: EndActivation::default(),
        }
    }
}

/// A root-to-END path of a graph.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GraphPath {
    /// Activating token first, then the context walking backwards.
    pub elements: Vec<Element>,
    /// The END activation.
    pub activation: f32,
    /// Node importance of each element (max over the lines through the node).
    pub importance: Vec<f32>,
}

/// A distinct (token, depth) context entry of a graph.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ContextToken {
    /// Dictionary id.
    pub token: u32,
    /// Distance from the activating token (1 = directly before it).
    pub depth: u16,
    /// Whether `depth == 1`, i.e. the token is directly before the activating token.
    pub adjacent: bool,
    /// Max importance over the trie nodes with this token and depth.
    pub importance: f32,
}

/// A non-root node seen from outside: what [`Graph::nodes`] yields.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NodeView {
    /// Arena index.
    pub id: u32,
    /// Arena index of the parent (0 = ROOT).
    pub parent: u32,
    /// Depth (0 = activating token).
    pub depth: u16,
    /// The element that leads here from the parent.
    pub element: Element,
    /// Max importance over the lines through this node.
    pub importance: f32,
    /// END information when lines end here.
    pub end: Option<End>,
}

/// Accumulated END activations while building.
#[derive(Clone, Copy, Debug)]
struct Acc {
    first: f32,
    max: f32,
    sum: f64,
    lines: u32,
}

impl Acc {
    fn one(activation: f32) -> Acc {
        Acc {
            first: activation,
            max: activation,
            sum: activation as f64,
            lines: 1,
        }
    }

    /// Adds `other` to `self`; `self` was there first.
    fn absorb(&mut self, other: &Acc) {
        self.max = self.max.max(other.max);
        self.sum += other.sum;
        self.lines += other.lines;
    }

    fn value(&self, mode: EndActivation) -> f32 {
        match mode {
            EndActivation::Max => self.max,
            EndActivation::First => self.first,
            EndActivation::Mean => (self.sum / self.lines as f64) as f32,
        }
    }
}

#[derive(Default)]
struct BuildNode {
    children: Vec<(Element, u32)>,
    importance: f32,
    end: Option<Acc>,
}

/// The mutable trie used while building; may hold unreachable (dropped) nodes.
struct Builder {
    nodes: Vec<BuildNode>,
}

impl Builder {
    fn child(&self, node: u32, e: Element) -> Option<u32> {
        let children = &self.nodes[node as usize].children;
        children
            .binary_search_by(|(k, _)| k.cmp(&e))
            .ok()
            .map(|i| children[i].1)
    }

    fn child_or_insert(&mut self, node: u32, e: Element) -> u32 {
        let new_id = self.nodes.len() as u32;
        let children = &mut self.nodes[node as usize].children;
        match children.binary_search_by(|(k, _)| k.cmp(&e)) {
            Ok(i) => children[i].1,
            Err(i) => {
                children.insert(i, (e, new_id));
                self.nodes.push(BuildNode::default());
                new_id
            }
        }
    }

    fn add_end(&mut self, node: u32, acc: Acc) {
        match &mut self.nodes[node as usize].end {
            Some(existing) => existing.absorb(&acc),
            slot @ None => *slot = Some(acc),
        }
    }

    fn insert(&mut self, line: &Line) {
        // Lines end with their last kept element; trailing IGNOREs of hand-made lines are cut.
        let len = line
            .elements
            .iter()
            .rposition(|e| *e != Element::Ignore)
            .map_or(0, |i| i + 1);
        if len == 0 || line.elements[0] == Element::Ignore || !line.activation.is_finite() {
            return;
        }
        let mut node = 0;
        for (i, &e) in line.elements[..len].iter().enumerate() {
            node = self.child_or_insert(node, e);
            let imp = match e {
                Element::Ignore => 0.0,
                Element::Token(_) => line.importance.get(i).copied().unwrap_or(0.0),
            };
            let n = &mut self.nodes[node as usize];
            n.importance = n.importance.max(imp);
        }
        self.add_end(node, Acc::one(line.activation));
    }

    /// Adds the subtree at `src` below `parent` under key `e`, sharing existing nodes.
    fn copy_under(&mut self, src: u32, parent: u32, e: Element) {
        let dst = self.child_or_insert(parent, e);
        let importance = self.nodes[src as usize].importance;
        let n = &mut self.nodes[dst as usize];
        n.importance = n.importance.max(importance);
        if let Some(acc) = self.nodes[src as usize].end {
            self.add_end(dst, acc);
        }
        let children = self.nodes[src as usize].children.clone();
        for (ce, c) in children {
            self.copy_under(c, dst, ce);
        }
    }

    /// Step 6's IGNORE merge, breadth-first from ROOT (see the module docs).
    fn merge_ignores(&mut self) {
        let mut queue = VecDeque::from([0u32]);
        while let Some(node) = queue.pop_front() {
            if let Some(ignore) = self.child(node, Element::Ignore) {
                let siblings: Vec<u32> = self.nodes[node as usize]
                    .children
                    .iter()
                    .filter(|(e, _)| *e != Element::Ignore)
                    .map(|&(_, c)| c)
                    .collect();
                for &sibling in &siblings {
                    let children = self.nodes[sibling as usize].children.clone();
                    for (e, c) in children {
                        self.copy_under(c, ignore, e);
                    }
                }
                let children = std::mem::take(&mut self.nodes[node as usize].children);
                self.nodes[node as usize].children = children
                    .into_iter()
                    .filter(|&(e, c)| e == Element::Ignore || self.nodes[c as usize].end.is_some())
                    .collect();
            }
            queue.extend(self.nodes[node as usize].children.iter().map(|&(_, c)| c));
        }
    }

    /// The reachable trie as a compact pre-order arena.
    fn finish(self, mode: EndActivation) -> Graph {
        let mut nodes: Vec<Node> = Vec::new();
        // (old id, slot in the parent's children to patch)
        let mut stack: Vec<(u32, Option<(usize, usize)>)> = vec![(0, None)];
        while let Some((old, patch)) = stack.pop() {
            let new_id = nodes.len();
            if let Some((parent, slot)) = patch {
                nodes[parent].children[slot].1 = new_id as u32;
            }
            let b = &self.nodes[old as usize];
            nodes.push(Node {
                children: b.children.clone(),
                importance: b.importance,
                end: b.end.map(|acc| End {
                    activation: acc.value(mode),
                    lines: acc.lines,
                }),
            });
            for (slot, &(_, c)) in b.children.iter().enumerate().rev() {
                stack.push((c, Some((new_id, slot))));
            }
        }
        Graph { nodes, end: mode }
    }
}

impl Graph {
    /// Builds the graph of a neuron from its lines: insert every line, then merge IGNORE
    /// branches (step 6). Lines starting with IGNORE, empty lines and lines with a
    /// non-finite activation are skipped; trailing IGNOREs are cut.
    pub fn build(lines: &[Line], end: EndActivation) -> Graph {
        let mut builder = Builder {
            nodes: vec![BuildNode::default()],
        };
        for line in lines {
            builder.insert(line);
        }
        builder.merge_ignores();
        builder.finish(end)
    }

    /// How END activations were combined when the graph was built.
    pub fn end_activation(&self) -> EndActivation {
        self.end
    }

    fn child(&self, node: u32, e: Element) -> Option<u32> {
        let children = &self.nodes.get(node as usize)?.children;
        children
            .binary_search_by(|(k, _)| k.cmp(&e))
            .ok()
            .map(|i| children[i].1)
    }

    fn end_at(&self, node: u32) -> Option<End> {
        self.nodes.get(node as usize).and_then(|n| n.end)
    }

    /// Step 7: the predicted normalised activation at position `k` of a text. `None` is a
    /// token absent from the dictionary (it matches only IGNORE). Walks backwards from `k`
    /// taking the exact token child, else the IGNORE child, else stopping; the node matched
    /// at `k` must be an activator (else 0). Returns the END activation of the last
    /// (deepest) END passed, or 0. Out-of-range `k` gives 0.
    pub fn predict(&self, tokens: &[Option<u32>], k: usize) -> f32 {
        self.matched_end(tokens, k)
            .and_then(|node| self.end_at(node))
            .map_or(0.0, |e| e.activation)
    }

    /// The arena index of the END node whose activation [`Graph::predict`] returns at
    /// `k`: the deepest END passed on the walk, if any.
    fn matched_end(&self, tokens: &[Option<u32>], k: usize) -> Option<u32> {
        let Some(Some(t)) = tokens.get(k) else {
            return None;
        };
        let mut node = self.child(0, Element::Token(*t))?;
        let mut best = self.end_at(node).map(|_| node);
        for token in tokens[..k].iter().rev() {
            let next = token
                .and_then(|t| self.child(node, Element::Token(t)))
                .or_else(|| self.child(node, Element::Ignore));
            let Some(next) = next else { break };
            node = next;
            if self.end_at(node).is_some() {
                best = Some(node);
            }
        }
        best
    }

    /// [`Graph::predict`] at every position of a text.
    pub fn predict_all(&self, tokens: &[Option<u32>]) -> Vec<f32> {
        (0..tokens.len()).map(|k| self.predict(tokens, k)).collect()
    }

    /// Every non-root node in pre-order (parents before children).
    pub fn nodes(&self) -> Vec<NodeView> {
        let mut views: Vec<Option<NodeView>> = vec![None; self.nodes.len()];
        for (i, node) in self.nodes.iter().enumerate() {
            let depth = match (i, views[i]) {
                (0, _) => 0,
                (_, Some(v)) => v.depth + 1,
                (_, None) => continue, // unreachable (not produced by `build`)
            };
            for &(element, c) in &node.children {
                let Some(child) = self.nodes.get(c as usize) else {
                    continue;
                };
                if (c as usize) <= i {
                    continue; // not pre-order: ignore rather than loop
                }
                views[c as usize] = Some(NodeView {
                    id: c,
                    parent: i as u32,
                    depth,
                    element,
                    importance: child.importance,
                    end: child.end,
                });
            }
        }
        views.into_iter().flatten().collect()
    }

    /// Every root-to-END path (after merging), in depth-first order.
    pub fn paths(&self) -> Vec<GraphPath> {
        let mut out = Vec::new();
        let mut elements = Vec::new();
        let mut importance = Vec::new();
        self.collect_paths(0, &mut elements, &mut importance, &mut out);
        out
    }

    fn collect_paths(
        &self,
        node: u32,
        elements: &mut Vec<Element>,
        importance: &mut Vec<f32>,
        out: &mut Vec<GraphPath>,
    ) {
        let Some(n) = self.nodes.get(node as usize) else {
            return;
        };
        if let Some(end) = n.end.filter(|_| node != 0) {
            out.push(GraphPath {
                elements: elements.clone(),
                activation: end.activation,
                importance: importance.clone(),
            });
        }
        for &(e, c) in &n.children {
            if c <= node {
                continue;
            }
            elements.push(e);
            importance.push(self.nodes.get(c as usize).map_or(0.0, |n| n.importance));
            self.collect_paths(c, elements, importance, out);
            elements.pop();
            importance.pop();
        }
    }

    /// Depth-0 activator tokens with the max END activation below them, sorted by token id.
    pub fn activating(&self) -> Vec<(u32, f32)> {
        let mut best: BTreeMap<u32, f32> = BTreeMap::new();
        let mut activator_of: Vec<Option<u32>> = vec![None; self.nodes.len()];
        for v in self.nodes() {
            let activator = if v.depth == 0 {
                v.element.token()
            } else {
                activator_of[v.parent as usize]
            };
            activator_of[v.id as usize] = activator;
            if let (Some(t), Some(end)) = (activator, v.end) {
                let entry = best.entry(t).or_insert(end.activation);
                *entry = entry.max(end.activation);
            }
        }
        best.into_iter().collect()
    }

    /// Distinct (token, depth ≥ 1) context entries with their max importance, sorted by
    /// depth, then token.
    pub fn context(&self) -> Vec<ContextToken> {
        let mut best: BTreeMap<(u16, u32), f32> = BTreeMap::new();
        for v in self.nodes() {
            if let (true, Some(t)) = (v.depth >= 1, v.element.token()) {
                let entry = best.entry((v.depth, t)).or_insert(v.importance);
                *entry = entry.max(v.importance);
            }
        }
        best.into_iter()
            .map(|((depth, token), importance)| ContextToken {
                token,
                depth,
                adjacent: depth == 1,
                importance,
            })
            .collect()
    }

    /// Whether the graph has no activators (it predicts 0 everywhere).
    pub fn is_empty(&self) -> bool {
        self.nodes
            .first()
            .is_none_or(|root| root.children.is_empty())
    }

    /// Number of trie nodes, IGNORE nodes included, ROOT excluded.
    pub fn node_count(&self) -> usize {
        self.nodes.len().saturating_sub(1)
    }
}

mod fit;
pub use fit::KnownText;

#[cfg(test)]
mod tests;
