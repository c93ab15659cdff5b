use super::*;
use crate::n2g::{EndActivation, Line};

fn dict() -> TokenDictionary {
    TokenDictionary::from_strings(
        ["paris", "capital", "the", "<a&b>", "say \"hi\"", "'"]
            .map(String::from)
            .to_vec(),
    )
}

/// `capital * paris` (0.9), `the paris` (0.6), `' <a&b>` (0.7).
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
            importance: vec![1.0, 0.4],
            activation: 0.6,
        },
        Line {
            elements: vec![T(3), T(5)],
            importance: vec![1.0, 0.8],
            activation: 0.7,
        },
    ];
    Graph::build(&lines, EndActivation::Max)
}

/// The node groups of a parsed SVG by their label text.
fn nodes<'a>(doc: &'a roxmltree::Document<'a>) -> HashMap<String, roxmltree::Node<'a, 'a>> {
    doc.descendants()
        .filter(|n| n.attribute("class").is_some_and(|c| c.starts_with("node")))
        .map(|g| {
            let text = g.children().find(|c| c.has_tag_name("text")).unwrap();
            (text.text().unwrap_or("").to_string(), g)
        })
        .collect()
}

fn rect<'a>(g: roxmltree::Node<'a, 'a>) -> roxmltree::Node<'a, 'a> {
    g.children().find(|c| c.has_tag_name("rect")).unwrap()
}

fn x_of(g: roxmltree::Node) -> f32 {
    rect(g).attribute("x").unwrap().parse().unwrap()
}

#[test]
fn graph_svg_is_well_formed_with_every_token_escaped() {
    let svg = graph_svg(&graph(), &dict(), 0.5, "neuron <3>:7 & co");
    let doc = roxmltree::Document::parse(&svg).unwrap_or_else(|e| panic!("{e}\n{svg}"));
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    let title = doc
        .root_element()
        .children()
        .find(|c| c.has_tag_name("title"));
    assert_eq!(title.and_then(|t| t.text()), Some("neuron <3>:7 & co"));
    let nodes = nodes(&doc);
    let mut labels: Vec<&str> = nodes.keys().map(String::as_str).collect();
    labels.sort_unstable();
    // Two activators, three context tokens, one IGNORE drawn as `*`.
    assert_eq!(labels, ["'", "*", "<a&b>", "capital", "paris", "the"]);
    assert!(!svg.contains("<a&b>"), "raw token in the markup");
    // Tooltips name the values.
    let tip = |label: &str| {
        nodes[label]
            .children()
            .find(|c| c.has_tag_name("title"))
            .and_then(|t| t.text())
            .unwrap()
            .to_string()
    };
    assert!(tip("paris").contains("activation 0.90"), "{}", tip("paris"));
    assert!(
        tip("capital").contains("importance 0.90"),
        "{}",
        tip("capital")
    );
}

#[test]
fn graph_reads_left_to_right_coloured_by_value() {
    let svg = graph_svg(&graph(), &dict(), 0.5, "g");
    let doc = roxmltree::Document::parse(&svg).unwrap();
    let nodes = nodes(&doc);
    // Context before the token it precedes, farther context farther left.
    assert!(x_of(nodes["capital"]) < x_of(nodes["*"]));
    assert!(x_of(nodes["*"]) < x_of(nodes["paris"]));
    assert!(x_of(nodes["the"]) < x_of(nodes["paris"]));
    assert!(x_of(nodes["'"]) < x_of(nodes["<a&b>"]));
    // Red by activation: 0.9 of (230, 0, 0) over white is (233, 26, 26); blue by
    // importance: 0.9 of (0, 60, 230) is (26, 80, 233); 0.4 is (153, 177, 245).
    assert_eq!(rect(nodes["paris"]).attribute("fill"), Some("#e91a1a"));
    assert_eq!(rect(nodes["capital"]).attribute("fill"), Some("#1a50e9"));
    assert_eq!(rect(nodes["the"]).attribute("fill"), Some("#99b1f5"));
    // Edges: capital→*, *→paris, the→paris, '→<a&b>.
    assert_eq!(svg.matches("class=\"edge\"").count(), 4);
}

#[test]
fn ends_are_bold_and_quiet_ends_dashed() {
    // At threshold 0.65 the pattern `the paris` (0.6) is quiet, the others fire.
    let svg = graph_svg(&graph(), &dict(), 0.65, "g");
    let doc = roxmltree::Document::parse(&svg).unwrap();
    let nodes = nodes(&doc);
    let stroke = |label: &str| -> f32 {
        rect(nodes[label])
            .attribute("stroke-width")
            .unwrap()
            .parse()
            .unwrap()
    };
    assert!(stroke("capital") > stroke("paris"), "END node bold");
    assert!(stroke("'") > stroke("*"));
    let dashed = |label: &str| rect(nodes[label]).attribute("stroke-dasharray").is_some();
    assert!(dashed("the"));
    assert!(!dashed("capital") && !dashed("'") && !dashed("paris"));
    assert!(nodes["the"].attribute("class").unwrap().contains("quiet"));
}

#[test]
fn an_empty_graph_says_so_and_many_activators_are_capped() {
    let empty = graph_svg(&Graph::default(), &dict(), 0.5, "e");
    roxmltree::Document::parse(&empty).unwrap();
    assert!(empty.contains("empty graph"));
    let strings: Vec<String> = (0..100).map(|i| format!("t{i}")).collect();
    let lines: Vec<Line> = (0..100u32)
        .map(|i| Line {
            elements: vec![Element::Token(i)],
            importance: vec![1.0],
            activation: 0.5 + i as f32 / 400.0,
        })
        .collect();
    let g = Graph::build(&lines, EndActivation::Max);
    let svg = graph_svg(&g, &TokenDictionary::from_strings(strings), 0.5, "many");
    let doc = roxmltree::Document::parse(&svg).unwrap();
    let drawn = nodes(&doc);
    assert_eq!(drawn.len(), MAX_ACTIVATORS);
    // The strongest are kept: t99 down to t60.
    assert!(drawn.contains_key("t99") && drawn.contains_key("t60"));
    assert!(!drawn.contains_key("t59"));
    assert!(svg.contains("60 more activating tokens not drawn"));
    // Without context, columns of GRID_ROWS read top to bottom, strongest first: t99
    // heads the first column, t89 the second (its x further right, its y the same).
    let y_of = |g: roxmltree::Node| -> f32 { rect(g).attribute("y").unwrap().parse().unwrap() };
    let at = |t: &str| (x_of(drawn[t]), y_of(drawn[t]));
    assert_eq!(GRID_ROWS, 10);
    assert_eq!(at("t99").1, at("t89").1);
    assert!(at("t99").0 < at("t89").0 && at("t89").0 < at("t79").0);
    assert!(at("t99").1 < at("t98").1 && at("t98").0 == at("t99").0);
    let rows: BTreeSet<i32> = drawn.values().map(|g| y_of(*g) as i32).collect();
    assert_eq!(rows.len(), GRID_ROWS);
    // Everything, the legend included, lies inside the picture.
    let width: f32 = doc
        .root_element()
        .attribute("width")
        .unwrap()
        .parse()
        .unwrap();
    for g in drawn.values() {
        let w: f32 = rect(*g).attribute("width").unwrap().parse().unwrap();
        assert!(x_of(*g) >= 0.0 && x_of(*g) + w <= width);
    }
    assert!(LEGEND[0].chars().count() as f32 * LEGEND_CHAR_W <= width);
}

#[test]
fn histogram_bars_follow_the_counts() {
    let mut counts = vec![0u32; 129];
    counts[64] = 1000; // zero
    counts[70] = 10; // positive
    counts[60] = 100; // negative
    let svg = histogram_svg(&counts);
    let doc = roxmltree::Document::parse(&svg).unwrap();
    let bars: Vec<_> = doc
        .descendants()
        .filter(|n| n.attribute("class") == Some("bar"))
        .collect();
    assert_eq!(bars.len(), 3);
    let height = |b: &roxmltree::Node| -> f32 { b.attribute("height").unwrap().parse().unwrap() };
    let x = |b: &roxmltree::Node| -> f32 { b.attribute("x").unwrap().parse().unwrap() };
    // Left to right: negative, zero, positive; taller with more tokens.
    assert!(x(&bars[0]) < x(&bars[1]) && x(&bars[1]) < x(&bars[2]));
    assert!(height(&bars[1]) > height(&bars[0]) && height(&bars[0]) > height(&bars[2]));
    assert_eq!(bars[0].attribute("fill"), Some("#9ca3af"));
    assert_eq!(bars[2].attribute("fill"), Some("#dc2626"));
    assert!(bars[1]
        .children()
        .any(|c| c.text() == Some("-0.0039 to 0.0039: 1000 tokens")));
}
