//! Execution plan: a query tree becomes a tantivy query over path documents.
//!
//! Token conditions, filters, AND and OR map to tantivy term, range and boolean
//! queries, so a conjunction holds on one path document. `NOT q` is neuron-level: `q` is
//! run first to get the set of neurons with a matching path, and `NOT q` matches every
//! path of every other neuron ([`ExcludeNeurons`]).

use std::ops::Bound;
use std::sync::Arc;

use roaring::RoaringTreemap;
use tantivy::query::{
    BooleanQuery, ConstScorer, EmptyQuery, EnableScoring, Explanation, Occur, Query,
    RangeQuery, Scorer, TermQuery, TermSetQuery, Weight,
};
use tantivy::columnar::Column;
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::{DocId, DocSet, Score, Searcher, SegmentReader, Term, TERMINATED};

use super::collect::NeuronSet;
use super::query::{Cmp, Expr, NumField, Role, Value};
use super::schema::Fields;
use super::store::Store;
use super::{Result, SearchError};

/// Compiles query trees against one searcher.
pub(crate) struct Compiler<'a> {
    /// The searcher (NOT runs its inner query on it).
    pub searcher: &'a Searcher,
    /// The schema fields.
    pub fields: Fields,
    /// The store (its vocabulary expands regexes).
    pub store: &'a Store,
    /// The tantivy folder, for error messages.
    pub tantivy_dir: &'a std::path::Path,
}

impl Compiler<'_> {
    /// The tantivy query of `e`.
    pub fn compile(&self, e: &Expr) -> Result<Box<dyn Query>> {
        let f = &self.fields;
        Ok(match e {
            Expr::Match { role, value } => match role {
                Role::Token => self.value(f.tok, f.tok_class, value)?,
                Role::Context => self.value(f.ctx, f.ctx_class, value)?,
                Role::After => self.value(f.after, f.after_class, value)?,
                Role::Any => Box::new(BooleanQuery::new(vec![
                    (Occur::Should, self.value(f.tok, f.tok_class, value)?),
                    (Occur::Should, self.value(f.ctx, f.ctx_class, value)?),
                ])),
            },
            Expr::Filter { field, cmp } => filter(f, *field, *cmp),
            Expr::And(items) => Box::new(BooleanQuery::new(
                items
                    .iter()
                    .map(|i| Ok((Occur::Must, self.compile(i)?)))
                    .collect::<Result<Vec<_>>>()?,
            )),
            Expr::Or(items) => Box::new(BooleanQuery::new(
                items
                    .iter()
                    .map(|i| Ok((Occur::Should, self.compile(i)?)))
                    .collect::<Result<Vec<_>>>()?,
            )),
            Expr::Not(inner) => {
                let q = self.compile(inner)?;
                let excluded = self
                    .searcher
                    .search(&*q, &NeuronSet)
                    .map_err(|e| SearchError::tantivy(self.tantivy_dir, e))?;
                Box::new(ExcludeNeurons {
                    excluded: Arc::new(excluded),
                })
            }
        })
    }

    fn value(&self, field: Field, class_field: Field, v: &Value) -> Result<Box<dyn Query>> {
        let term = |f: Field, s: &str| -> Box<dyn Query> {
            Box::new(TermQuery::new(Term::from_field_text(f, s), IndexRecordOption::Basic))
        };
        Ok(match v {
            Value::Exact(s) => term(field, s),
            Value::Class(c) => term(class_field, c.name()),
            Value::Regex(r) => {
                let re = regex::Regex::new(r)
                    .map_err(|e| SearchError::InvalidRequest(format!("invalid regex /{r}/: {e}")))?;
                let terms: Vec<Term> = self
                    .store
                    .vocab()?
                    .iter()
                    .filter(|t| re.is_match(t))
                    .map(|t| Term::from_field_text(field, t))
                    .collect();
                if terms.is_empty() {
                    Box::new(EmptyQuery)
                } else {
                    Box::new(TermSetQuery::new(terms))
                }
            }
        })
    }
}

fn filter(f: &Fields, field: NumField, cmp: Cmp) -> Box<dyn Query> {
    let term = |v: f64| match field {
        NumField::Layer => Term::from_field_u64(f.layer, v as u64),
        NumField::F1 => Term::from_field_f64(f.f1, v),
        NumField::Act => Term::from_field_f64(f.act, v),
    };
    let (lo, hi) = match cmp {
        Cmp::Lt(v) => (Bound::Unbounded, Bound::Excluded(term(v))),
        Cmp::Le(v) => (Bound::Unbounded, Bound::Included(term(v))),
        Cmp::Eq(v) => (Bound::Included(term(v)), Bound::Included(term(v))),
        Cmp::Ge(v) => (Bound::Included(term(v)), Bound::Unbounded),
        Cmp::Gt(v) => (Bound::Excluded(term(v)), Bound::Unbounded),
        Cmp::Between(a, b) => (Bound::Included(term(a)), Bound::Included(term(b))),
    };
    if let (Bound::Unbounded, Bound::Unbounded) = (&lo, &hi) {
        unreachable!("every comparison bounds one side");
    }
    Box::new(RangeQuery::new(lo, hi))
}

/// Every path of every neuron not in `excluded` (neuron ids as `layer << 32 | index`).
#[derive(Clone, Debug)]
pub(crate) struct ExcludeNeurons {
    excluded: Arc<RoaringTreemap>,
}

impl Query for ExcludeNeurons {
    fn weight(&self, _: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        Ok(Box::new(self.clone()))
    }
}

impl Weight for ExcludeNeurons {
    fn scorer(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        let mut set = ExcludeDocSet {
            nid: reader.fast_fields().u64("nid")?,
            excluded: self.excluded.clone(),
            doc: 0,
            max_doc: reader.max_doc(),
        };
        set.find_next();
        Ok(Box::new(ConstScorer::new(set, boost)))
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        let mut s = self.scorer(reader, 1.0)?;
        if s.seek(doc) != doc {
            return Err(tantivy::TantivyError::InvalidArgument(format!(
                "document {doc} does not match"
            )));
        }
        Ok(Explanation::new("ExcludeNeurons", 1.0))
    }
}

struct ExcludeDocSet {
    nid: Column<u64>,
    excluded: Arc<RoaringTreemap>,
    doc: DocId,
    max_doc: DocId,
}

impl ExcludeDocSet {
    fn find_next(&mut self) -> DocId {
        while self.doc < self.max_doc {
            match self.nid.first(self.doc) {
                Some(n) if !self.excluded.contains(n) => return self.doc,
                _ => self.doc += 1,
            }
        }
        self.doc = TERMINATED;
        TERMINATED
    }
}

impl DocSet for ExcludeDocSet {
    fn advance(&mut self) -> DocId {
        if self.doc == TERMINATED {
            return TERMINATED;
        }
        self.doc += 1;
        self.find_next()
    }

    fn seek(&mut self, target: DocId) -> DocId {
        if self.doc == TERMINATED || target >= TERMINATED {
            self.doc = TERMINATED;
            return TERMINATED;
        }
        if target > self.doc {
            self.doc = target;
        }
        self.find_next()
    }

    fn doc(&self) -> DocId {
        self.doc
    }

    fn size_hint(&self) -> u32 {
        self.max_doc
    }
}
