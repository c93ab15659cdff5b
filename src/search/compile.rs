//! Execution plan: a query tree becomes a tantivy query over path documents.
//!
//! Token conditions, filters, AND and OR map to tantivy term, range and boolean
//! queries, so a conjunction holds on one path document. `NOT q` is neuron-level: the set
//! of neurons with a path matching `q` is found first, and `NOT q` matches every path of
//! every other neuron ([`Condition::Exclude`]). Where `q` is a token condition on the
//! activating or context role (or an OR of them), that set is the union of the store's
//! token postings; otherwise `q` runs on the index.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use roaring::RoaringBitmap;
use tantivy::query::{BooleanQuery, EmptyQuery, Occur, Query, TermQuery, TermSetQuery};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::{Searcher, Term};

use super::collect::NeuronSet;
use super::columns::Columns;
use super::predicate::{ActRange, Condition, Filtered};
use super::query::{Cmp, Expr, NumField, Role, Value};
use super::schema::Fields;
use super::store::{Store, TOKEN_ACT, TOKEN_CTX};
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
    /// The fast-field columns of the index.
    pub columns: Arc<Columns>,
    /// Token ids matched by each regex of the query so far.
    pub regexes: RefCell<HashMap<String, Vec<u32>>>,
}

/// A redb table of token postings.
type Postings = redb::TableDefinition<'static, u32, &'static [u8]>;

/// Token postings to union: (table, token ids).
type Plan = Vec<(Postings, Vec<u32>)>;

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
            Expr::Filter {
                field: NumField::F1,
                cmp,
            } => self.filtered(
                None,
                vec![Condition::F1(self.store.columns()?.clone(), *cmp)],
            ),
            Expr::Filter { cmp, .. } => Box::new(ActRange {
                cmp: *cmp,
                runs: self.store.runs()?.clone(),
                columns: self.columns.clone(),
            }),
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
                self.filtered(None, vec![Condition::Exclude(Arc::new(excluded))])
            }
        })
    }

    /// A conjunction. Token conditions and `act` intersect as docsets; `f1`, `layer`
    /// and `NOT` become conditions tested on the documents of the others ([`Filtered`];
    /// a `layer` filter reads the layer postings instead when no other clause does). A `NOT` whose neurons cannot come from token postings is decided,
    /// when the other clauses match few neurons, only for those neurons (the result is
    /// the same: the other clauses already exclude every other neuron).
    fn and(&self, items: &[Expr]) -> Result<Box<dyn Query>> {
        let mut clauses: Vec<Box<dyn Query>> = Vec::new();
        let mut conditions = Vec::new();
        let mut slow_nots = Vec::new();
        let mut layers = Vec::new();
        for item in items {
            match item {
                Expr::Filter {
                    field: NumField::Layer,
                    cmp,
                } => layers.push(*cmp),
                Expr::Not(inner) => match self.postings(inner)? {
                    Some(set) => conditions.push(Condition::Exclude(Arc::new(set))),
                    None => slow_nots.push(&**inner),
                },
                Expr::Filter {
                    field: NumField::F1,
                    cmp,
                } => conditions.push(Condition::F1(self.store.columns()?.clone(), *cmp)),
                _ => clauses.push(self.compile(item)?),
            }
        }
        // A layer test reads the layer postings only when nothing else leads.
        if clauses.is_empty() && !layers.is_empty() {
            clauses.push(self.layers(layers.remove(0))?);
        }
        for cmp in layers {
            conditions.push(Condition::Layer(self.store.columns()?.clone(), cmp));
        }
        let inner = match clauses.len() {
            0 => None,
            1 => clauses.pop(),
            _ => Some(Box::new(BooleanQuery::new(
                clauses.into_iter().map(|q| (Occur::Must, q)).collect(),
            )) as Box<dyn Query>),
        };
        if slow_nots.is_empty() {
            return Ok(self.filtered(inner, conditions));
        }
        let candidates = match &inner {
            Some(_) => Some(self.neurons(
                &self.filtered(inner.as_ref().map(|q| q.box_clone()), conditions.clone()),
            )?),
            None => None,
        };
        if candidates.as_ref().is_some_and(|c| c.is_empty()) {
            return Ok(Box::new(EmptyQuery));
        }
        for n in slow_nots {
            let q = self.compile(n)?;
            let excluded = match &candidates {
                Some(c) if c.len() <= RESTRICT_LIMIT => {
                    let restrict = TermSetQuery::new(
                        c.iter()
                            .map(|o| Term::from_field_u64(self.fields.ord, o as u64)),
                    );
                    self.neurons(&BooleanQuery::new(vec![
                        (Occur::Must, q),
                        (Occur::Must, Box::new(restrict)),
                    ]))?
                }
                _ => self.neurons(&*q)?,
            };
            conditions.push(Condition::Exclude(Arc::new(excluded)));
        }
        Ok(self.filtered(inner, conditions))
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
    fn postings_plan(&self, e: &Expr) -> Result<Option<Plan>> {
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

    /// `inner` restricted by `conditions` (no wrapper when there are none).
    fn filtered(
        &self,
        inner: Option<Box<dyn Query>>,
        conditions: Vec<Condition>,
    ) -> Box<dyn Query> {
        match inner {
            Some(q) if conditions.is_empty() => q,
            inner => Box::new(Filtered {
                inner,
                conditions,
                columns: self.columns.clone(),
            }),
        }
    }

    fn neurons(&self, q: &dyn Query) -> Result<RoaringBitmap> {
        self.searcher
            .search(q, &NeuronSet(&self.columns))
            .map_err(|e| SearchError::unreadable(self.tantivy_dir, format!("tantivy: {e}")))
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
