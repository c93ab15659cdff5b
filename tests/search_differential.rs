//! Differential tests of the search engine: random synthetic neurons and random queries
//! (built as syntax trees, printed to strings); every result equals a brute-force
//! evaluation over the input written here, independently of the engine.

use std::collections::BTreeSet;

use n2g_index::search::query::{Cmp, Expr, NumField, Role, Value};
use n2g_index::search::{Class, NeuronPaths, Relation, SearchIndex, SearchPath, MANY_HITS};
use n2g_index::NeuronId;
use proptest::prelude::*;

const VOCAB: &[&str] = &[
    "the", "paris", "capital", ",", " 3", "42", "USA", "\n", " ", "-", "1,000", "a", ".", "of",
];
const REGEXES: &[&str] = &["^p", "a", "^[0-9]", ",", "^.$", "^[A-Z]+$"];

// ---------- brute force ----------

fn class_holds(c: Class, s: &str) -> bool {
    let t = s.trim();
    let digit = |c: char| c.is_ascii_digit();
    match c {
        Class::Digit => !t.is_empty() && t.chars().all(digit),
        Class::Number => {
            let b = t
                .strip_prefix('-')
                .or_else(|| t.strip_prefix('+'))
                .unwrap_or(t);
            !b.is_empty()
                && b.split(['.', ','])
                    .all(|run| !run.is_empty() && run.chars().all(digit))
        }
        Class::Punct => {
            !t.is_empty()
                && t.chars()
                    .all(|c| !c.is_alphanumeric() && !c.is_whitespace())
        }
        Class::Alpha => !t.is_empty() && t.chars().all(|c| c.is_alphabetic()),
        Class::Upper => s.chars().any(|c| c.is_uppercase()) && s.chars().all(|c| !c.is_lowercase()),
        Class::Space => !s.is_empty() && s.chars().all(|c| c.is_whitespace()),
        Class::Newline => s.chars().any(|c| c == '\n') && s.chars().all(|c| c.is_whitespace()),
    }
}

fn value_holds(v: &Value, t: &str) -> bool {
    match v {
        Value::Exact(s) => s == t,
        Value::Class(c) => class_holds(*c, t),
        Value::Regex(r) => regex::Regex::new(r).unwrap().is_match(t),
    }
}

fn compare(c: &Cmp, x: f64) -> bool {
    match *c {
        Cmp::Lt(v) => x < v,
        Cmp::Le(v) => x <= v,
        Cmp::Eq(v) => x == v,
        Cmp::Ge(v) => x >= v,
        Cmp::Gt(v) => x > v,
        Cmp::Between(a, b) => x >= a && x <= b,
    }
}

/// Which paths of `n` the query matches.
fn brute_paths(e: &Expr, n: &NeuronPaths) -> Vec<bool> {
    let all = |b: bool| vec![b; n.paths.len()];
    match e {
        Expr::Match { role, value } => n
            .paths
            .iter()
            .map(|p| {
                let tok = value_holds(value, p.tokens[0].as_deref().unwrap());
                let ctx = p.tokens[1..]
                    .iter()
                    .flatten()
                    .any(|t| value_holds(value, t));
                let after = matches!(p.tokens.get(1), Some(Some(t)) if value_holds(value, t));
                match role {
                    Role::Token => tok,
                    Role::Context => ctx,
                    Role::After => after,
                    Role::Any => tok || ctx,
                }
            })
            .collect(),
        Expr::Filter { field, cmp } => match field {
            NumField::Layer => all(compare(cmp, n.neuron.layer as f64)),
            NumField::F1 => all(compare(cmp, n.f1 as f64)),
            NumField::Act => n
                .paths
                .iter()
                .map(|p| compare(cmp, p.activation as f64))
                .collect(),
        },
        Expr::And(items) => {
            let mut out = all(true);
            for i in items {
                for (o, b) in out.iter_mut().zip(brute_paths(i, n)) {
                    *o &= b;
                }
            }
            out
        }
        Expr::Or(items) => {
            let mut out = all(false);
            for i in items {
                for (o, b) in out.iter_mut().zip(brute_paths(i, n)) {
                    *o |= b;
                }
            }
            out
        }
        Expr::Not(inner) => all(!brute_paths(inner, n).into_iter().any(|b| b)),
    }
}

type Row = (NeuronId, f32, f32, Vec<Vec<String>>);

fn brute_query(e: &Expr, neurons: &[NeuronPaths]) -> Vec<Row> {
    let mut rows: Vec<Row> = Vec::new();
    for n in neurons {
        let m = brute_paths(e, n);
        let mut matched: Vec<(f32, Vec<String>)> = n
            .paths
            .iter()
            .zip(&m)
            .filter(|(_, &b)| b)
            .map(|(p, _)| {
                let drawn = p
                    .tokens
                    .iter()
                    .rev()
                    .map(|t| t.clone().unwrap_or("*".into()))
                    .collect();
                (p.activation, drawn)
            })
            .collect();
        if matched.is_empty() {
            continue;
        }
        matched.sort_by(|a, b| b.0.partial_cmp(&a.0).unwrap().then(a.1.cmp(&b.1)));
        let score = matched[0].0;
        rows.push((
            n.neuron,
            score,
            n.f1,
            matched.into_iter().map(|x| x.1).collect(),
        ));
    }
    rows.sort_by(|a, b| {
        b.1.partial_cmp(&a.1)
            .unwrap()
            .then(b.2.partial_cmp(&a.2).unwrap())
            .then(a.0.cmp(&b.0))
    });
    rows
}

fn sets(n: &NeuronPaths) -> (BTreeSet<&str>, BTreeSet<&str>) {
    let act = n
        .paths
        .iter()
        .map(|p| p.tokens[0].as_deref().unwrap())
        .collect();
    let ctx = n
        .paths
        .iter()
        .flat_map(|p| p.tokens[1..].iter().flatten().map(|s| s.as_str()))
        .collect();
    (act, ctx)
}

fn frac(i: usize, d: usize) -> f64 {
    if d == 0 {
        1.0
    } else {
        i as f64 / d as f64
    }
}

/// (activating, context, relation of `c` to `t`).
fn brute_relation(t: &NeuronPaths, c: &NeuronPaths, th: f64) -> (f64, f64, Relation, usize, usize) {
    let ((ta, tc), (ca, cc)) = (sets(t), sets(c));
    let ia = ta.intersection(&ca).count();
    let ic = tc.intersection(&cc).count();
    let a = frac(ia, ta.len().max(ca.len()));
    let x = frac(ic, tc.len().max(cc.len()));
    let rel = if a >= th && x >= th {
        Relation::Similar
    } else if ca.len() <= ta.len()
        && cc.len() <= tc.len()
        && frac(ia, ca.len()) >= th
        && frac(ic, cc.len()) >= th
    {
        Relation::Subset
    } else if ta.len() <= ca.len()
        && tc.len() <= cc.len()
        && frac(ia, ta.len()) >= th
        && frac(ic, tc.len()) >= th
    {
        Relation::Superset
    } else {
        Relation::Overlap
    };
    (a, x, rel, ia, ic)
}

// ---------- generators ----------

/// A path: an activating token, then up to 3 context tokens or IGNOREs.
fn arb_path() -> impl Strategy<Value = SearchPath> {
    let token = (0..VOCAB.len()).prop_map(|i| VOCAB[i].to_string());
    (
        token.clone(),
        prop::collection::vec(prop::option::weighted(0.7, token), 0..4),
        prop::sample::select(vec![0.2f32, 0.5, 0.8, 0.9, 1.0]),
    )
        .prop_map(|(first, rest, activation)| {
            let mut tokens = vec![Some(first)];
            tokens.extend(rest);
            SearchPath { tokens, activation }
        })
}

/// A neuron's F1 and `paths` paths.
fn arb_f1_paths(paths: std::ops::Range<usize>) -> impl Strategy<Value = (f32, Vec<SearchPath>)> {
    (
        prop::sample::select(vec![0.1f32, 0.5, 0.6, 0.9]),
        prop::collection::vec(arb_path(), paths),
    )
}

fn arb_neurons() -> impl Strategy<Value = Vec<NeuronPaths>> {
    prop::collection::btree_map((0u16..3, 0u32..12), arb_f1_paths(0..5), 1..14).prop_map(|m| {
        m.into_iter()
            .map(|((l, i), (f1, paths))| NeuronPaths {
                neuron: NeuronId { layer: l, index: i },
                f1,
                paths,
            })
            .collect()
    })
}

/// More than [`MANY_HITS`] neurons of layers 0–2 (neuron `i` is `i % 3 : i / 3`), each
/// with a path or more.
fn arb_many_neurons() -> impl Strategy<Value = Vec<NeuronPaths>> {
    let neuron = arb_f1_paths(1..4);
    prop::collection::vec(neuron, MANY_HITS + 200..MANY_HITS + 400).prop_map(|all| {
        all.into_iter()
            .enumerate()
            .map(|(i, (f1, paths))| NeuronPaths {
                neuron: NeuronId {
                    layer: (i % 3) as u16,
                    index: (i / 3) as u32,
                },
                f1,
                paths,
            })
            .collect()
    })
}

fn arb_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => (0..VOCAB.len()).prop_map(|i| Value::Exact(VOCAB[i].to_string())),
        1 => Just(Value::Exact("zzz".to_string())),
        2 => prop::sample::select(Class::ALL.to_vec()).prop_map(Value::Class),
        1 => prop::sample::select(REGEXES.to_vec()).prop_map(|r| Value::Regex(r.to_string())),
    ]
}

fn arb_leaf() -> impl Strategy<Value = Expr> {
    let role = prop::sample::select(vec![Role::Token, Role::Context, Role::After, Role::Any]);
    let levels = prop::sample::select(vec![0.2f64, 0.5, 0.6, 0.85, 0.9]);
    prop_oneof![
        6 => (role, arb_value()).prop_map(|(role, value)| Expr::Match { role, value }),
        1 => (0u16..3).prop_map(|l| Expr::Filter { field: NumField::Layer, cmp: Cmp::Eq(l as f64) }),
        1 => (0u16..2).prop_map(|l| Expr::Filter { field: NumField::Layer, cmp: Cmp::Between(l as f64, l as f64 + 1.0) }),
        1 => levels.clone().prop_map(|v| Expr::Filter { field: NumField::F1, cmp: Cmp::Ge(v) }),
        1 => levels.clone().prop_map(|v| Expr::Filter { field: NumField::Act, cmp: Cmp::Gt(v) }),
        1 => levels.prop_map(|v| Expr::Filter { field: NumField::Act, cmp: Cmp::Le(v) }),
    ]
}

fn arb_expr() -> impl Strategy<Value = Expr> {
    arb_leaf().prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            3 => prop::collection::vec(inner.clone(), 2..4).prop_map(Expr::And),
            2 => prop::collection::vec(inner.clone(), 2..4).prop_map(Expr::Or),
            1 => inner.prop_map(|e| Expr::Not(Box::new(e))),
        ]
    })
}

// ---------- properties ----------

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    #[test]
    fn queries_match_brute_force(neurons in arb_neurons(), queries in prop::collection::vec(arb_expr(), 8), run in prop::sample::select(vec![1usize, 3, 8, 1 << 20])) {
        let dir = tempfile::tempdir().unwrap();
        let index = SearchIndex::build_in_runs(dir.path(), neurons.clone(), run).unwrap();
        for q in &queries {
            let text = q.to_string();
            prop_assert_eq!(&n2g_index::search::parse(&text).unwrap(), q, "round trip of {}", text);
            let want = brute_query(q, &neurons);
            let got: Vec<Row> = index
                .query(&text, 1000)
                .unwrap()
                .into_iter()
                .map(|h| (h.neuron, h.score, h.f1, h.paths.to_vecs()))
                .collect();
            prop_assert_eq!(&got, &want, "query {}", text);
            let top3: Vec<NeuronId> = index.query(&text, 3).unwrap().iter().map(|h| h.neuron).collect();
            let want3: Vec<NeuronId> = want.iter().take(3).map(|r| r.0).collect();
            prop_assert_eq!(top3, want3, "query {} limit 3", text);
        }
    }

    #[test]
    fn similarity_matches_brute_force(neurons in arb_neurons(), pick in any::<prop::sample::Index>(), th in prop::sample::select(vec![0.34f64, 0.5, 0.9, 1.0])) {
        let dir = tempfile::tempdir().unwrap();
        let index = SearchIndex::build(dir.path(), neurons.clone()).unwrap();
        let t = &neurons[pick.index(neurons.len())];
        let mut want: Vec<(f64, f64, NeuronId, Relation)> = neurons
            .iter()
            .filter(|c| c.neuron != t.neuron)
            .filter_map(|c| {
                let (a, x, rel, ia, ic) = brute_relation(t, c, th);
                (ia + ic > 0).then_some((a, x, c.neuron, rel))
            })
            .collect();
        want.sort_by(|p, q| (q.0 + q.1).partial_cmp(&(p.0 + p.1)).unwrap().then(q.0.partial_cmp(&p.0).unwrap()).then(p.2.cmp(&q.2)));
        want.truncate(5);
        let got: Vec<(f32, f32, NeuronId, Relation)> = index
            .similar_with(t.neuron, 5, th)
            .unwrap()
            .into_iter()
            .map(|h| (h.activating, h.context, h.neuron, h.relation))
            .collect();
        let want: Vec<(f32, f32, NeuronId, Relation)> = want.into_iter().map(|(a, x, n, r)| (a as f32, x as f32, n, r)).collect();
        prop_assert_eq!(got, want);

        let mut pairs = Vec::new();
        for (i, x) in neurons.iter().enumerate() {
            for y in &neurons[i + 1..] {
                if x.paths.is_empty() || y.paths.is_empty() {
                    continue;
                }
                let (a, c, rel, _, _) = brute_relation(x, y, th);
                let (p, q, r) = match rel {
                    Relation::Similar => (x.neuron, y.neuron, "similar"),
                    Relation::Subset => (y.neuron, x.neuron, "subset"),
                    Relation::Superset => (x.neuron, y.neuron, "subset"),
                    Relation::Overlap => continue,
                };
                pairs.push((p, q, a as f32, c as f32, r));
            }
        }
        pairs.sort_by_key(|u| (u.0, u.1));
        let got: Vec<_> = index
            .similar_all(th)
            .unwrap()
            .into_iter()
            .map(|p| (p.a, p.b, p.activating, p.context, p.relation.name()))
            .collect();
        prop_assert_eq!(got, pairs);
    }
}

proptest! {
    // Enough neurons that a broad query's hits pass MANY_HITS, where their paths are
    // read through a term set rather than a union of one term per neuron.
    #![proptest_config(ProptestConfig { cases: 3, ..ProptestConfig::default() })]

    #[test]
    fn queries_of_many_hits_match_brute_force(neurons in arb_many_neurons(), queries in prop::collection::vec(arb_expr(), 4)) {
        let dir = tempfile::tempdir().unwrap();
        let index = SearchIndex::build(dir.path(), neurons.clone()).unwrap();
        let broad = ["layer:0..2", "NOT token:zzz", "any:/a/", "f1>=0.5 OR act>0.5"];
        let mut most = 0;
        for text in broad.iter().map(|b| b.to_string()).chain(queries.iter().map(|q| q.to_string())) {
            let want = brute_query(&n2g_index::search::parse(&text).unwrap(), &neurons);
            let got: Vec<Row> = index
                .query(&text, 5000)
                .unwrap()
                .into_iter()
                .map(|h| (h.neuron, h.score, h.f1, h.paths.to_vecs()))
                .collect();
            prop_assert_eq!(&got, &want, "query {}", text);
            most = most.max(got.len());
        }
        prop_assert!(most > MANY_HITS, "no query had more than {} hits", MANY_HITS);
    }
}
