//! The tantivy schema: one document per graph path.
//!
//! The documents of the one segment come in *runs* (their lengths are the store's
//! `runs`); within a run, documents are sorted by the ranking key, best first:
//! activation descending, then the neuron's F1 descending, then neuron id ascending. So
//! the first matching document of a neuron in its run is its best matching path, and a
//! run's first `k` distinct matching neurons are its `k` best.

use tantivy::schema::{
    Field, IndexRecordOption, NumericOptions, Schema, TextFieldIndexing, TextOptions, STORED,
};

/// The fields of a path document.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Fields {
    /// The neuron's ordinal in the store's neuron table, indexed and fast.
    pub ord: Field,
    /// The layer, indexed (one posting per layer).
    pub layer: Field,
    /// The path's normalised activation, fast.
    pub act: Field,
    /// The activating token.
    pub tok: Field,
    /// Every context token (depth >= 1).
    pub ctx: Field,
    /// The context token at depth 1.
    pub after: Field,
    /// Class names of `tok`.
    pub tok_class: Field,
    /// Class names of every context token.
    pub ctx_class: Field,
    /// Class names of the depth-1 token.
    pub after_class: Field,
    /// The path itself (postcard `Vec<Option<String>>`), stored.
    pub path: Field,
}

const TEXT_FIELDS: [&str; 6] = [
    "tok",
    "ctx",
    "after",
    "tok_class",
    "ctx_class",
    "after_class",
];

/// The schema and its fields.
pub(crate) fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let text = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer("raw")
            .set_index_option(IndexRecordOption::Basic)
            .set_fieldnorms(false),
    );
    let ord = b.add_u64_field("ord", NumericOptions::default().set_indexed().set_fast());
    let layer = b.add_u64_field("layer", NumericOptions::default().set_indexed());
    let act = b.add_f64_field("act", NumericOptions::default().set_fast());
    let t: Vec<Field> = TEXT_FIELDS
        .iter()
        .map(|n| b.add_text_field(n, text.clone()))
        .collect();
    let path = b.add_bytes_field("path", STORED);
    let fields = Fields {
        ord,
        layer,
        act,
        tok: t[0],
        ctx: t[1],
        after: t[2],
        tok_class: t[3],
        ctx_class: t[4],
        after_class: t[5],
        path,
    };
    (b.build(), fields)
}

/// The fields of an opened index's schema (checked by name).
pub(crate) fn fields(schema: &Schema) -> Result<Fields, String> {
    let get = |n: &str| {
        schema
            .get_field(n)
            .map_err(|_| format!("the tantivy schema has no field `{n}`"))
    };
    Ok(Fields {
        ord: get("ord")?,
        layer: get("layer")?,
        act: get("act")?,
        tok: get("tok")?,
        ctx: get("ctx")?,
        after: get("after")?,
        tok_class: get("tok_class")?,
        ctx_class: get("ctx_class")?,
        after_class: get("after_class")?,
        path: get("path")?,
    })
}

/// `layer << 32 | index`.
pub(crate) fn nid(n: crate::NeuronId) -> u64 {
    (n.layer as u64) << 32 | n.index as u64
}

/// The inverse of [`nid`].
pub(crate) fn neuron(nid: u64) -> crate::NeuronId {
    crate::NeuronId {
        layer: (nid >> 32) as u16,
        index: nid as u32,
    }
}
