//! The queries `prefetch_related()` runs after a QuerySet's own, as `prefetch_related_objects`
//! runs them: for each lookup in turn, one query per level not loaded already (by an earlier
//! lookup, or joined by `select_related()`), each selecting the related rows of every row of
//! the level above with `IN (...)`, and then the lookups of a `Prefetch`'s own QuerySet.

use tree_sitter::Node;

use super::{build, joins, split_arguments, Clause, Column, Condition, Query, SelectRelated};
use super::{Dialect, Release, Step, Table, Target, WhereNode};
use crate::analysis::index::{string_value, FieldKind, ModelId};
use crate::analysis::infer::{ModelRef, Semantics, Ty};
use crate::analysis::loops::reverse_query_name;
use crate::analysis::query_counts::joined_by;
use crate::analysis::syntax::{
    field::{self, FieldOf},
    text, KindOf,
};

/// A lookup `prefetch_related()` names: `"books__tags"`, or `Prefetch("books", queryset=...)`.
pub(super) struct Lookup<'a> {
    path: String,
    /// The QuerySet of a `Prefetch`, which loads the lookup's last level.
    queryset: Option<Node<'a>>,
    /// `Prefetch(..., to_attr="...")`: where the last level's rows are kept.
    to_attr: Option<String>,
}

/// One query a prefetch runs: the level it loads (`books__tags`) and its SQL, or why that is
/// not shown.
pub struct PrefetchQuery {
    pub lookup: String,
    pub sql: Result<String, String>,
}

/// `prefetch_related(...)`'s arguments added to `lookups` (`prefetch_related(None)` clears
/// them).
pub(super) fn add_lookups<'a>(
    lookups: &mut Vec<Lookup<'a>>,
    arguments: Node<'a>,
    source: &'a str,
) -> Result<(), String> {
    let (positional, keywords) = split_arguments(arguments, source)?;
    if !keywords.is_empty() {
        return Err("`prefetch_related()` with keyword arguments".into());
    }
    for argument in positional {
        if text(argument, source) == "None" {
            lookups.clear();
            continue;
        }
        if let Some(path) = string_value(argument, source) {
            lookups.push(Lookup {
                path,
                queryset: None,
                to_attr: None,
            });
            continue;
        }
        lookups.push(prefetch_object(argument, source)?);
    }
    Ok(())
}

/// `Prefetch("lookup", queryset=..., to_attr="...")`.
fn prefetch_object<'a>(call: Node<'a>, source: &'a str) -> Result<Lookup<'a>, String> {
    let declined = || "a prefetch lookup other than a literal or `Prefetch(...)`".to_string();
    let function = call
        .field(&field::FUNCTION)
        .filter(|_| call.kind_name() == "call")
        .ok_or_else(declined)?;
    let name = text(function, source);
    if name != "Prefetch" && !name.ends_with(".Prefetch") {
        return Err(declined());
    }
    let arguments = call.field(&field::ARGUMENTS).ok_or_else(declined)?;
    let (positional, keywords) = split_arguments(arguments, source)?;
    let mut parts: Vec<(&str, Node)> = ["lookup", "queryset", "to_attr"]
        .into_iter()
        .zip(positional)
        .collect();
    parts.extend(keywords);
    let mut lookup = Lookup {
        path: String::new(),
        queryset: None,
        to_attr: None,
    };
    for (name, value) in parts {
        let literal = || string_value(value, source).ok_or_else(declined);
        match name {
            "lookup" => lookup.path = literal()?,
            "queryset" if text(value, source) == "None" => {}
            "queryset" => lookup.queryset = Some(value),
            "to_attr" if text(value, source) == "None" => {}
            "to_attr" => lookup.to_attr = Some(literal()?),
            _ => return Err(format!("`Prefetch({name}=...)` is not rendered yet")),
        }
    }
    if lookup.path.is_empty() {
        return Err(declined());
    }
    Ok(lookup)
}

/// The prefetch queries of the QuerySet `expr` evaluates to, in the order Django runs them:
/// `None` when it is not a QuerySet of a known model, `Some(Err(reason))` when the levels are
/// not all known.
pub fn prefetch_queries_of<'a>(
    sem: &Semantics<'a>,
    expr: Node<'a>,
    target: Target,
) -> Option<Result<Vec<PrefetchQuery>, String>> {
    let model = super::model_of_queryset(sem, expr)?;
    Some(model.and_then(|model| prefetch_queries(sem, expr, model, target)))
}

fn prefetch_queries<'a>(
    sem: &Semantics<'a>,
    expr: Node<'a>,
    model: ModelId,
    target: Target,
) -> Result<Vec<PrefetchQuery>, String> {
    let table = Table::of(sem.index(), model)?;
    let mut query = build(sem, expr, &table, target)?;
    if query.prefetches.is_empty() {
        return Ok(Vec::new());
    }
    super::methods::rendered_in(target.dialect)?;
    let joined = match &query.select_related {
        SelectRelated::Nothing => Vec::new(),
        SelectRelated::Named(names) => names.iter().flat_map(|n| joined_by("", n)).collect(),
        SelectRelated::Keys => {
            return Err("prefetches after a bare `select_related()` are not rendered yet".into())
        }
    };
    // `prefetch_related_objects` pops its lookups from the end of a list: first written, first.
    let mut pending: Vec<Lookup> = std::mem::take(&mut query.prefetches);
    pending.reverse();
    let mut done: Vec<String> = Vec::new();
    let mut queries = Vec::new();
    while let Some(lookup) = pending.pop() {
        let segments: Vec<&str> = lookup.path.split("__").collect();
        let mut current = model;
        for (level, segment) in segments.iter().enumerate() {
            let through = segments[..=level].join("__");
            let last = level + 1 == segments.len();
            let relation = Relation::of(sem, current, segment)?;
            current = relation.rows;
            let prefetch_to = match &lookup.to_attr {
                Some(to_attr) if last => {
                    let mut parts = segments[..level].to_vec();
                    parts.push(to_attr);
                    parts.join("__")
                }
                _ => through.clone(),
            };
            if joined.contains(&through) || done.contains(&prefetch_to) {
                continue;
            }
            done.push(prefetch_to.clone());
            let queryset = lookup.queryset.filter(|_| last);
            let (sql, below) = match relation.query(sem, queryset, target) {
                Ok((sql, below)) => (Ok(sql), below),
                Err(reason) if queryset.is_some_and(|q| prefetches(sem, q, relation.rows)) => {
                    // The `Prefetch`'s own lookups are not known either.
                    return Err(format!("the `Prefetch` of `{through}`: {reason}"));
                }
                Err(reason) => (Err(reason), Vec::new()),
            };
            queries.push(PrefetchQuery {
                lookup: through,
                sql,
            });
            for mut inner in below.into_iter().rev() {
                inner.path = format!("{prefetch_to}__{}", inner.path);
                pending.push(inner);
            }
        }
    }
    Ok(queries)
}

/// Whether the chain of `queryset` may call `prefetch_related()` (or is not known).
fn prefetches<'a>(sem: &Semantics<'a>, queryset: Node<'a>, model: ModelId) -> bool {
    match super::chain(sem, queryset, model) {
        Ok(steps) => steps
            .iter()
            .any(|step| matches!(step, Step::Call("prefetch_related", _))),
        Err(_) => true,
    }
}

/// A relation a prefetch level (or a related manager) follows, from the rows of the level
/// above (or the row) to `rows`.
pub(super) struct Relation {
    pub(super) rows: ModelId,
    /// The lookup from `rows` back to the level above, which `IN (...)` tests.
    pub(super) back: String,
    /// Through a many-to-many table, whose key to the level above is selected too.
    pub(super) many_to_many: bool,
    /// Reverse key or many-to-many: a related manager rather than one row, whose QuerySet is
    /// the model's `_default_manager`'s (a key's is `_base_manager`'s, always Django's).
    pub(super) to_many: bool,
    /// A key of the level above (`book.author`): since 5.2 its rows are selected by a tuple
    /// lookup, unordered.
    forward_key: bool,
}

impl Relation {
    pub(super) fn of(sem: &Semantics, model: ModelId, name: &str) -> Result<Self, String> {
        let index = sem.index();
        let owner = index.model(model);
        let relation = |rows, back: String, to_many, many_to_many| Relation {
            rows,
            back,
            many_to_many,
            forward_key: false,
            to_many,
        };
        if let Some(field) = owner.field(name) {
            let target = field.target.ok_or("the related model is not known")?;
            return match field.kind {
                FieldKind::ForeignKey | FieldKind::OneToOne => {
                    let key = field.to_field.clone().unwrap_or_else(|| "pk".into());
                    Ok(Relation {
                        forward_key: true,
                        ..relation(target, key, false, false)
                    })
                }
                FieldKind::ManyToMany => {
                    let back = index
                        .model(target)
                        .reverse
                        .iter()
                        .find(|r| r.source == model && r.field == field.name)
                        .and_then(|r| reverse_query_name(sem, r))
                        .ok_or("the reverse name of the many-to-many is not known")?;
                    Ok(relation(target, back, true, true))
                }
                _ => Err(format!("prefetching `{name}` is not rendered yet")),
            };
        }
        let reverse = owner
            .reverse(name)
            .ok_or_else(|| format!("`{name}` is not a relation of {}", owner.name))?;
        let field = index
            .model(reverse.source)
            .field(&reverse.field)
            .ok_or("the reverse relation's field is not known")?;
        let many_to_many = field.kind == FieldKind::ManyToMany;
        Ok(relation(
            reverse.source,
            reverse.field.clone(),
            reverse.many,
            many_to_many,
        ))
    }

    /// The manager whose QuerySet the relation starts from is Django's own: a reverse key's
    /// or a many-to-many's uses the related model's default manager, which may be custom.
    pub(super) fn check_manager(&self, table: &Table) -> Result<(), String> {
        let plain = match table.model.managers.as_slice() {
            [only] => {
                only.name == "objects"
                    && only.classes.is_empty()
                    && only.queryset_methods.is_empty()
            }
            _ => false,
        };
        if self.to_many && !plain {
            return Err(format!(
                "{} declares managers, which may change the query",
                table.model.name
            ));
        }
        Ok(())
    }

    /// The level's query: its QuerySet (the `Prefetch`'s, else the manager's) filtered on
    /// `back__in` the rows above, and the lookups that QuerySet prefetches in turn.
    fn query<'a>(
        &self,
        sem: &Semantics<'a>,
        queryset: Option<Node<'a>>,
        target: Target,
    ) -> Result<(String, Vec<Lookup<'a>>), String> {
        let table = Table::of(sem.index(), self.rows)?;
        let mut query = match queryset {
            Some(queryset) => {
                let model = match sem.ty(queryset) {
                    Ty::QuerySet(q) => q.model,
                    Ty::Manager(m) => m.model,
                    _ => None,
                };
                if model != Some(ModelRef::Indexed(self.rows)) {
                    return Err("its QuerySet is not known to be of the related model".into());
                }
                let query = build(sem, queryset, &table, target)?;
                if query.limit.is_some() {
                    return Err("a sliced `Prefetch` QuerySet is not rendered yet".into());
                }
                if self.many_to_many && query.joins.joined() {
                    // Django's sticky filter would reuse its joins.
                    return Err("a `Prefetch` QuerySet with joins over a many-to-many".into());
                }
                query
            }
            None => {
                self.check_manager(&table)?;
                Query::new(sem, &table, target.dialect)
            }
        };
        let rows = match target.release {
            Release::Since5_2 if self.forward_key => RowsOf::EachAsTuples,
            _ => RowsOf::Each,
        };
        let column = query.filter_on_rows(&self.back, rows)?;
        if rows == RowsOf::EachAsTuples {
            // `clear_ordering()`: one row per key, in any order.
            query.order_by = Some(Vec::new());
        }
        if self.many_to_many {
            let attname = column
                .rsplit('.')
                .next()
                .unwrap_or_default()
                .trim_matches('"');
            let alias = target
                .dialect
                .quote(&format!("_prefetch_related_val_{attname}"));
            query.extra_select = Some(format!("({column}) AS {alias}"));
        }
        let below = std::mem::take(&mut query.prefetches);
        Ok((query.sql(target)?, below))
    }
}

/// Whose related rows a query selects: one row's (a related manager), or every row's of the
/// level above (a prefetch), listed with `IN`, or since 5.2 for a key with `TupleIn`.
#[derive(Clone, Copy, PartialEq)]
pub(super) enum RowsOf {
    One,
    Each,
    EachAsTuples,
}

impl<'s, 'a> Query<'s, 'a> {
    /// `filter(<back>=<the row>)` or `filter(<back>__in=<the rows above>)`: the rows' keys
    /// are not known, so a list of them ends in `...`. Returns the column tested.
    pub(super) fn filter_on_rows(&mut self, back: &str, rows: RowsOf) -> Result<String, String> {
        let path = joins::resolve(self.sem, self.table.id, &[back])?;
        if !path.rest.is_empty() {
            return Err(format!("`{back}` is not a relation"));
        }
        let inner = self.joins.inner();
        let used = self.joins.setup(0, &path.hops, Some(&[]));
        let (target, alias, _) = self.joins.trim(&path.hops, path.target, used.clone());
        // One condition under AND: the joins it needs are INNER (`JoinPromoter`).
        self.joins.demote(&used);
        self.joins.demote(&inner);
        let column = self.joins.column(alias, &target.column);
        let sql = match (rows, self.dialect) {
            (RowsOf::One, _) => format!("{column} = %s"),
            (RowsOf::Each, _) => format!("{column} IN (%s, ...)"),
            // SQLite and Oracle compare no tuples: Django's fallback tests each key in turn.
            (RowsOf::EachAsTuples, Dialect::Sqlite | Dialect::Oracle) => {
                format!("({column} = %s OR ...)")
            }
            (RowsOf::EachAsTuples, _) => format!("({column}) IN ((%s), ...)"),
        };
        self.conditions.add(WhereNode {
            or: false,
            negated: false,
            children: vec![Clause::Condition(Condition {
                sql,
                aggregate: false,
                column: Some(Column {
                    sql: column.clone(),
                    alias,
                    pk: target.pk,
                }),
            })],
        });
        Ok(column)
    }
}
