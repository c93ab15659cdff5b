//! Execution plan: a query tree becomes a tantivy query over path documents.
//!
//! Token conditions, filters, AND and OR map to tantivy term, range and boolean
//! queries, so a conjunction holds on one path document. `NOT q` is neuron-level: the set
//! of neurons with a path matching `q` is found first, and `NOT q` matches every path of
//! every other neuron ([`Predicate::Exclude`]). Where `q` is a token condition on the
//! activating or context role (or an OR of them), that set is the union of the store's
//! token postings; otherwise `q` runs on the index.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use roaring::RoaringBitmap;
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
use super::store::{NeuronTable, Store, TOKEN_ACT, TOKEN_CTX};
use super::{Result, SearchError};

/// Above this many candidate neurons, `NOT` inside a conjunction is decided over all
/// neurons instead of the candidates only.
const RESTRICT_LIMIT: u64 = 4096;

/// A regex matching at most this many tokens becomes a union of term queries (read in
/// document order, so ranking can stop early); above, a term-set query.
const REGEX_UNION_LIMIT: usize = 64;

/// A `NOT` over a regex matching more tokens than this runs on the index instead of
/// unioning token postings.
const REGEX_POSTINGS_LIMIT: usize = 256;

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
    /// Token ids matched by each regex of the query so far.
    pub regexes: RefCell<HashMap<String, Vec<u32>>>,
}

/// A redb table of token postings.
type Postings = redb::TableDefinition<'static, u32, &'static [u8]>;

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
            Expr::Filter { field, cmp } => self.filter(*field, *cmp)?,
            Expr::And(items) => self.and(items)?,
            Expr::Or(items) => Box::new(BooleanQuery::new(
                items
                    .iter()
                    .map(|i| Ok((Occur::Should, self.compile(i)?)))
                    .collect::<Result<Vec<_>>>()?,
            )),
            Expr::Not(inner) => {
                let excluded = match self.postings(inner)? {
                    Some(set) => set,
                    None => self.neurons(&*self.compile(inner)?)?,
                };
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
        let from_postings = |e: &&Expr| match e {
            Expr::Not(inner) => self.postings_plan(inner).map(|s| s.is_some()),
            _ => Ok(false),
        };
        let mut cheap = true;
        for n in &nots {
            cheap &= from_postings(n)?;
        }
        if nots.is_empty() || positive.is_empty() || cheap {
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
            if let Some(excluded) = self.postings(inner)? {
                clauses.push(Box::new(Predicate::Exclude(Arc::new(excluded))));
                continue;
            }
            let inner = self.compile(inner)?;
            let excluded = if candidates.len() <= RESTRICT_LIMIT {
                let restrict = TermSetQuery::new(
                    candidates
                        .iter()
                        .map(|c| Term::from_field_u64(self.fields.ord, c as u64)),
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

    /// The neurons with a path matching `e`, from the store's token postings, where `e`
    /// is an exact value or a (small) regex on the activating or context role, or an OR
    /// of such; `None` for every other expression.
    fn postings(&self, e: &Expr) -> Result<Option<RoaringBitmap>> {
        let Some(plan) = self.postings_plan(e)? else {
            return Ok(None);
        };
        let mut set = RoaringBitmap::new();
        for (table, ids) in plan {
            for b in self.store.bitmaps(table, ids)? {
                set |= b;
            }
        }
        Ok(Some(set))
    }

    /// The postings (table, token ids) whose union is [`postings`](Self::postings).
    fn postings_plan(&self, e: &Expr) -> Result<Option<Vec<(Postings, Vec<u32>)>>> {
        match e {
            Expr::Match { role, value } => {
                let tables = match role {
                    Role::Token => &[TOKEN_ACT][..],
                    Role::Context => &[TOKEN_CTX][..],
                    Role::Any => &[TOKEN_ACT, TOKEN_CTX][..],
                    Role::After => return Ok(None),
                };
                let ids: Vec<u32> = match value {
                    Value::Exact(s) => self.store.token_id(s)?.into_iter().collect(),
                    Value::Class(_) => return Ok(None),
                    Value::Regex(r) => {
                        let ids = self.regex_ids(r)?;
                        if ids.len() > REGEX_POSTINGS_LIMIT {
                            return Ok(None);
                        }
                        ids
                    }
                };
                Ok(Some(tables.iter().map(|&t| (t, ids.clone())).collect()))
            }
            Expr::Or(items) => {
                let mut plan = Vec::new();
                for i in items {
                    match self.postings_plan(i)? {
                        Some(p) => plan.extend(p),
                        None => return Ok(None),
                    }
                }
                Ok(Some(plan))
            }
            _ => Ok(None),
        }
    }

    /// The ids of the vocabulary tokens `r` matches (remembered per query).
    fn regex_ids(&self, r: &str) -> Result<Vec<u32>> {
        if let Some(ids) = self.regexes.borrow().get(r) {
            return Ok(ids.clone());
        }
        let re = regex::Regex::new(r)
            .map_err(|e| SearchError::InvalidRequest(format!("invalid regex /{r}/: {e}")))?;
        let ids: Vec<u32> = self
            .store
            .vocab()?
            .iter()
            .enumerate()
            .filter(|(_, t)| re.is_match(t))
            .map(|(i, _)| i as u32)
            .collect();
        self.regexes.borrow_mut().insert(r.to_string(), ids.clone());
        Ok(ids)
    }

    fn filter(&self, field: NumField, cmp: Cmp) -> Result<Box<dyn Query>> {
        Ok(Box::new(match field {
            NumField::F1 => Predicate::F1(self.store.neurons()?.clone(), cmp),
            _ => Predicate::Act(cmp),
        }))
    }

    fn neurons(&self, q: &dyn Query) -> Result<RoaringBitmap> {
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
                let vocab = self.store.vocab()?;
                let terms: Vec<Term> = self
                    .regex_ids(r)?
                    .into_iter()
                    .map(|i| Term::from_field_text(field, &vocab[i as usize]))
                    .collect();
                match terms.len() {
                    0 => Box::new(EmptyQuery),
                    n if n <= REGEX_UNION_LIMIT => Box::new(BooleanQuery::new(
                        terms
                            .into_iter()
                            .map(|t| {
                                let q = TermQuery::new(t, IndexRecordOption::Basic);
                                (Occur::Should, Box::new(q) as Box<dyn Query>)
                            })
                            .collect(),
                    )),
                    _ => Box::new(TermSetQuery::new(terms)),
                }
            }
        })
    }
}

/// A per-document test on fast fields, as a docset that never leads an intersection
/// (its size hint is the segment size): inside a conjunction it only checks the
/// documents the other clauses reach.
#[derive(Clone, Debug)]
pub(crate) enum Predicate {
    /// Every path of every neuron not in the set (ordinals).
    Exclude(Arc<RoaringBitmap>),
    /// The neuron's F1 (from the neuron table) passes the comparison.
    F1(Arc<NeuronTable>, Cmp),
    /// The path's activation passes the comparison.
    Act(Cmp),
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
            Predicate::Exclude(set) => Check::Exclude(ff.u64("ord")?, set.clone()),
            Predicate::F1(table, cmp) => Check::F1(ff.u64("ord")?, table.clone(), *cmp),
            Predicate::Act(cmp) => Check::Act(ff.f64("act")?, *cmp),
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
    Exclude(Column<u64>, Arc<RoaringBitmap>),
    F1(Column<u64>, Arc<NeuronTable>, Cmp),
    Act(Column<f64>, Cmp),
}

impl Check {
    fn holds(&self, doc: DocId) -> bool {
        match self {
            Check::Exclude(c, set) => c.first(doc).is_some_and(|n| !set.contains(n as u32)),
            Check::F1(c, table, cmp) => c
                .first(doc)
                .and_then(|n| table.records.get(n as usize))
                .is_some_and(|r| cmp.holds(r.f1 as f64)),
            Check::Act(c, cmp) => c.first(doc).is_some_and(|v| cmp.holds(v)),
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
