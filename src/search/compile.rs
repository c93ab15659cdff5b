//! Execution plan: a query tree becomes a tantivy query over path documents.
//!
//! Token conditions, filters, AND and OR map to tantivy term, range and boolean
//! queries, so a conjunction holds on one path document. `NOT q` is neuron-level: `q` is
//! run first to get the set of neurons with a matching path, and `NOT q` matches every
//! path of every other neuron ([`ExcludeNeurons`]).

use std::sync::Arc;

use roaring::RoaringTreemap;
use tantivy::columnar::Column;
use tantivy::query::{
    BooleanQuery, ConstScorer, EmptyQuery, EnableScoring, Explanation, Occur, Query, Scorer,
    TermQuery, TermSetQuery, Weight,
};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::{DocId, DocSet, Score, Searcher, SegmentReader, Term, TERMINATED};

use super::collect::NeuronSet;
use super::query::{Cmp, Expr, NumField, Role, Value};
use super::schema::Fields;
use super::store::Store;
use super::{Result, SearchError};

/// Above this many candidate neurons, `NOT` inside a conjunction is decided over all
/// neurons instead of the candidates only.
const RESTRICT_LIMIT: u64 = 4096;

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
            Expr::Filter {
                field: NumField::Layer,
                cmp,
            } => self.layers(*cmp)?,
            Expr::Filter { field, cmp } => filter(*field, *cmp),
            Expr::And(items) => self.and(items)?,
            Expr::Or(items) => Box::new(BooleanQuery::new(
                items
                    .iter()
                    .map(|i| Ok((Occur::Should, self.compile(i)?)))
                    .collect::<Result<Vec<_>>>()?,
            )),
            Expr::Not(inner) => {
                let q = self.compile(inner)?;
                let excluded = self.neurons(&*q)?;
                Box::new(Predicate::Exclude(Arc::new(excluded)))
            }
        })
    }

    /// A conjunction. When it has both positive and `NOT` clauses and the positive ones
    /// match few neurons, each `NOT` is decided only for those neurons (the result is
    /// the same: the positive clauses already exclude every other neuron).
    fn and(&self, items: &[Expr]) -> Result<Box<dyn Query>> {
        let (nots, positive): (Vec<&Expr>, Vec<&Expr>) =
            items.iter().partition(|e| matches!(e, Expr::Not(_)));
        let all = |qs: Vec<Box<dyn Query>>| -> Box<dyn Query> {
            Box::new(BooleanQuery::new(
                qs.into_iter().map(|q| (Occur::Must, q)).collect(),
            ))
        };
        if nots.is_empty() || positive.is_empty() {
            return Ok(all(items
                .iter()
                .map(|i| self.compile(i))
                .collect::<Result<_>>()?));
        }
        let pos = all(positive
            .iter()
            .map(|i| self.compile(i))
            .collect::<Result<_>>()?);
        let candidates = self.neurons(&*pos)?;
        if candidates.is_empty() {
            return Ok(Box::new(EmptyQuery));
        }
        let mut clauses = vec![pos];
        for n in nots {
            let Expr::Not(inner) = n else {
                unreachable!("partitioned")
            };
            let inner = self.compile(inner)?;
            let excluded = if candidates.len() <= RESTRICT_LIMIT {
                let restrict = TermSetQuery::new(
                    candidates
                        .iter()
                        .map(|c| Term::from_field_u64(self.fields.nid, c)),
                );
                self.neurons(&BooleanQuery::new(vec![
                    (Occur::Must, inner),
                    (Occur::Must, Box::new(restrict)),
                ]))?
            } else {
                self.neurons(&*inner)?
            };
            clauses.push(Box::new(Predicate::Exclude(Arc::new(excluded))));
        }
        Ok(all(clauses))
    }

    /// `layer` filters: the union of the postings of the layers that pass.
    fn layers(&self, cmp: Cmp) -> Result<Box<dyn Query>> {
        let mut terms: Vec<Box<dyn Query>> = self
            .store
            .layers()?
            .iter()
            .filter(|&&l| cmp.holds(l as f64))
            .map(|&l| {
                let t = Term::from_field_u64(self.fields.layer, l as u64);
                Box::new(TermQuery::new(t, IndexRecordOption::Basic)) as Box<dyn Query>
            })
            .collect();
        Ok(match terms.len() {
            0 => Box::new(EmptyQuery),
            1 => terms.pop().expect("one"),
            _ => Box::new(BooleanQuery::new(
                terms.into_iter().map(|q| (Occur::Should, q)).collect(),
            )),
        })
    }

    fn neurons(&self, q: &dyn Query) -> Result<RoaringTreemap> {
        self.searcher
            .search(q, &NeuronSet)
            .map_err(|e| SearchError::tantivy(self.tantivy_dir, e))
    }

    fn value(&self, field: Field, class_field: Field, v: &Value) -> Result<Box<dyn Query>> {
        let term = |f: Field, s: &str| -> Box<dyn Query> {
            Box::new(TermQuery::new(
                Term::from_field_text(f, s),
                IndexRecordOption::Basic,
            ))
        };
        Ok(match v {
            Value::Exact(s) => term(field, s),
            Value::Class(c) => term(class_field, c.name()),
            Value::Regex(r) => {
                let re = regex::Regex::new(r).map_err(|e| {
                    SearchError::InvalidRequest(format!("invalid regex /{r}/: {e}"))
                })?;
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

fn filter(field: NumField, cmp: Cmp) -> Box<dyn Query> {
    Box::new(Predicate::Range {
        field: match field {
            NumField::F1 => "f1",
            _ => "act",
        },
        cmp,
    })
}

/// A per-document test on fast fields, as a docset that never leads an intersection
/// (its size hint is the segment size): inside a conjunction it only checks the
/// documents the other clauses reach.
#[derive(Clone, Debug)]
pub(crate) enum Predicate {
    /// Every path of every neuron not in the set (`layer << 32 | index`).
    Exclude(Arc<RoaringTreemap>),
    /// A numeric comparison on a fast field (`f1`, `act`).
    Range {
        /// The fast field.
        field: &'static str,
        /// The comparison.
        cmp: Cmp,
    },
}

impl Query for Predicate {
    fn weight(&self, _: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        Ok(Box::new(self.clone()))
    }
}

impl Weight for Predicate {
    fn scorer(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        let ff = reader.fast_fields();
        let check = match self {
            Predicate::Exclude(set) => Check::Exclude(ff.u64("nid")?, set.clone()),
            Predicate::Range { field, cmp } => Check::F64(ff.f64(field)?, *cmp),
        };
        let mut set = PredicateDocSet {
            check,
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
        Ok(Explanation::new("Predicate", 1.0))
    }
}

enum Check {
    Exclude(Column<u64>, Arc<RoaringTreemap>),
    F64(Column<f64>, Cmp),
}

impl Check {
    fn holds(&self, doc: DocId) -> bool {
        match self {
            Check::Exclude(c, set) => c.first(doc).is_some_and(|n| !set.contains(n)),
            Check::F64(c, cmp) => c.first(doc).is_some_and(|v| cmp.holds(v)),
        }
    }
}

struct PredicateDocSet {
    check: Check,
    doc: DocId,
    max_doc: DocId,
}

impl PredicateDocSet {
    fn find_next(&mut self) -> DocId {
        while self.doc < self.max_doc {
            if self.check.holds(self.doc) {
                return self.doc;
            }
            self.doc += 1;
        }
        self.doc = TERMINATED;
        TERMINATED
    }
}

impl DocSet for PredicateDocSet {
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
