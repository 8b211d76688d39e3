//! Column reads on a model instance (`row.title`, `row.author_id`, `row.author.name`): what the
//! rules that fetch fewer columns (`values_list`, `aggregate`, `only`) turn into lookups.

use tree_sitter::Node;

use super::evaluation::other_evaluations;
use super::index::{FieldKind, ModelId, ModelIndex};
use super::infer::{ModelRef, Semantics, Ty};
use super::loops::{built_from_a_model, construction_site};
use super::syntax::{
    field::{self, FieldOf},
    strip_parens, KindOf,
};

/// `expr` read as a column through `instance` of `model`: its lookup (`title`, `author_id`,
/// `author__name`), or `None` when it is not a plain column of a model the index knows
/// (a relation object, a property, a method, a file field).
pub fn column_lookup<'a>(
    sem: &Semantics<'a>,
    model: ModelId,
    instance: Node<'a>,
    expr: Node<'a>,
) -> Option<String> {
    // Collect the attribute names from the instance outwards.
    let mut names = Vec::new();
    let mut node = expr;
    while node.kind_name() == "attribute" {
        names.push(sem.text(node.field(&field::ATTRIBUTE)?));
        node = node.field(&field::OBJECT)?;
    }
    if node.id() != instance.id() || names.is_empty() {
        return None;
    }
    names.reverse();
    lookup_of(sem.index(), model, &names)
}

/// The column `element` reads from the rows of `iterable`, when the rows are model instances of
/// a QuerySet that nothing else in the scope evaluates (its result cache would serve both).
pub fn iterated_column<'a>(
    sem: &Semantics<'a>,
    element: Node<'a>,
    target: Node<'a>,
    iterable: Node<'a>,
) -> Option<String> {
    let model = queryset_rows(sem, iterable)?;
    let instance = innermost_object(element);
    if instance.kind_name() != "identifier" || sem.text(instance) != sem.text(target) {
        return None;
    }
    let lookup = column_lookup(sem, model, instance, element)?;
    let inner = strip_parens(iterable);
    // A relation of one row (`entry.tags.all()`) queries per row wherever it sits: prefetching
    // is the fix there (ORM403), not a narrower per-row query.
    // `distinct()` over whole rows keeps rows that one column would merge.
    let distinct = construction_site(sem, inner)
        .is_some_and(|site| sem.text(site).contains("distinct("))
        || sem.text(inner).contains("distinct(");
    if distinct {
        return None;
    }
    let per_model = if inner.kind_name() == "identifier" {
        !other_evaluations(sem, inner).any()
    } else {
        built_from_a_model(sem, inner)
    };
    per_model.then_some(lookup)
}

/// The model of the rows of a QuerySet that can take `values_list()`.
pub fn queryset_rows<'a>(sem: &Semantics<'a>, iterable: Node<'a>) -> Option<ModelId> {
    match sem.ty(iterable) {
        Ty::QuerySet(qs) if !qs.values && !qs.sliced && !qs.combined => match qs.model {
            Some(ModelRef::Indexed(model)) => Some(model),
            _ => None,
        },
        _ => None,
    }
}

fn innermost_object(mut node: Node) -> Node {
    while node.kind_name() == "attribute" {
        match node.field(&field::OBJECT) {
            Some(object) => node = object,
            None => break,
        }
    }
    node
}

/// One `for` clause and no `if`: the comprehension is exactly the column's values.
pub fn is_single_clause(comprehension: Node) -> bool {
    comprehension.named_child_count() == 2
}

/// The element, target and iterable of `[element for target in iterable]` with one clause.
pub fn single_clause_parts(comprehension: Node) -> Option<(Node, Node, Node)> {
    if !is_single_clause(comprehension) {
        return None;
    }
    let element = comprehension.field(&field::BODY)?;
    let clause = comprehension
        .named_child(1)
        .filter(|c| c.kind_name() == "for_in_clause")?;
    let target = clause
        .field(&field::LEFT)
        .filter(|t| t.kind_name() == "identifier")?;
    Some((element, target, clause.field(&field::RIGHT)?))
}

fn lookup_of(index: &ModelIndex, model: ModelId, names: &[&str]) -> Option<String> {
    let (first, rest) = names.split_first()?;
    let fields = index.model(model);
    if rest.is_empty() {
        if matches!(*first, "pk" | "id") && fields.field(first).is_none() {
            return Some(first.to_string());
        }
        if let Some(field) = fields.field(first) {
            return field.plain_value.then(|| first.to_string());
        }
        let relation = first.strip_suffix("_id")?;
        return fields
            .field(relation)
            .filter(|f| matches!(f.kind, FieldKind::ForeignKey | FieldKind::OneToOne))
            .map(|_| first.to_string());
    }
    let relation = fields
        .field(first)
        .filter(|f| matches!(f.kind, FieldKind::ForeignKey | FieldKind::OneToOne))?;
    // `row.author.id` is the key column on the row itself.
    if rest.len() == 1 && matches!(rest[0], "id" | "pk") && relation.to_field.is_none() {
        return Some(format!("{first}_id"));
    }
    let inner = lookup_of(index, relation.target?, rest)?;
    Some(format!("{first}__{inner}"))
}

/// Where reading `element` (`row.author.name`, `row.author.id`, `row.rating`) from the rows of
/// `iterable` in Python can differ from the database's value for its lookup.
#[derive(Default)]
pub struct NullableRead {
    /// A relation on the way may be empty: Python raises `AttributeError` on its `None` where
    /// the join (or the key column, for `row.author.id`) gives NULL.
    pub relation: Option<String>,
    /// The column read may hold NULL: Python sees `None`, which `sum()` cannot add.
    pub column: bool,
}

pub fn nullable_read<'a>(
    sem: &Semantics<'a>,
    iterable: Node<'a>,
    element: Node<'a>,
) -> NullableRead {
    let mut read = NullableRead::default();
    let Some(mut model) = queryset_rows(sem, iterable) else {
        return read;
    };
    let mut names = Vec::new();
    let mut node = element;
    while node.kind_name() == "attribute" {
        let Some(name) = node.field(&field::ATTRIBUTE) else {
            return read;
        };
        names.push(sem.text(name));
        let Some(object) = node.field(&field::OBJECT) else {
            return read;
        };
        node = object;
    }
    names.reverse();
    let Some((last, relations)) = names.split_last() else {
        return read;
    };
    let index = sem.index();
    for name in relations {
        let Some(field) = index.model(model).field(name) else {
            return read;
        };
        if field.may_be_null && read.relation.is_none() {
            read.relation = Some((*name).to_string());
        }
        let Some(target) = field.target else {
            return read;
        };
        model = target;
    }
    let fields = index.model(model);
    read.column = fields
        .field(last)
        .or_else(|| last.strip_suffix("_id").and_then(|key| fields.field(key)))
        .is_some_and(|f| f.may_be_null);
    read
}
