//! ORM407 unconstrained-subquery: before Django 3.2, `todos.exclude(assignees__done=True)` across
//! a to-many relation becomes `NOT (id IN (SELECT todo_id FROM assignee WHERE done))`: a subquery
//! over the whole related table, unconstrained by the outer filters, that grows with the system.
//! Fetching those ids first is a second, cheap query. Info severity: on small tables the subquery
//! is fine. Django 3.2 writes a correlated `NOT EXISTS` instead (django/django#13606), which the
//! database evaluates per outer row: for that target the rule is silent.

use tree_sitter::Node;

use super::{Captures, Rule, RuleContext, RuleMeta};
use crate::analysis::diagnostic::{Applicability, Edit, Fix, Severity};
use crate::analysis::index::{FieldKind, ModelId};
use crate::analysis::infer::{ModelRef, Semantics, Ty};
use crate::analysis::loops::{quote_style, reverse_query_name};
use crate::analysis::syntax::{
    enclosing_statement,
    field::{self, FieldOf},
    insert_above, unused_name, walk, KindOf,
};

pub static RULE: Rule = Rule {
    meta: &RuleMeta {
        code: "ORM407",
        name: "unconstrained-subquery",
        severity: Severity::Info,
    },
    query: include_str!("../../../../queries/orm407_unconstrained_subquery.scm"),
    check,
};

/// The first Django that excludes across a to-many relation with a correlated `NOT EXISTS`.
const CORRELATED_SINCE: (u32, u32) = (3, 2);

fn check<'a>(cx: &mut RuleContext<'_, 'a>, m: &Captures<'_, 'a>) {
    let (Some(call), Some(receiver), Some(method), Some(arguments)) = (
        m.get("call"),
        m.get("receiver"),
        m.get("method"),
        m.get("arguments"),
    ) else {
        return;
    };
    if cx.settings.target_django >= CORRELATED_SINCE {
        return;
    }
    let sem = cx.sem;
    let model = match sem.ty(receiver) {
        Ty::QuerySet(qs) => qs.model,
        Ty::Manager(manager) => manager.model,
        _ => None,
    };
    let Some(ModelRef::Indexed(model)) = model else {
        return;
    };
    let excluding = sem.text(method) == "exclude";
    // exclude(rel__f=...) and exclude(Q(rel__f=...)); filter(~Q(rel__f=...)).
    let mut negated_lookups = Vec::new();
    let mut cursor = arguments.walk();
    for argument in arguments.named_children(&mut cursor) {
        match argument.kind_name() {
            "keyword_argument" if excluding => negated_lookups.push(argument),
            _ => walk(argument, |n| {
                if n.kind_name() == "keyword_argument"
                    && (excluding || under_negation(sem, n, argument))
                {
                    negated_lookups.push(n);
                }
                true
            }),
        }
    }
    for lookup in negated_lookups {
        let Some(name) = lookup.field(&field::NAME).map(|n| sem.text(n)) else {
            continue;
        };
        if !crosses_to_many(sem, model, name) {
            continue;
        }
        let only_argument = excluding
            && arguments.named_child_count() == 1
            && arguments
                .named_child(0)
                .is_some_and(|a| a.id() == lookup.id());
        let fix = only_argument
            .then(|| precompute_fix(sem, call, arguments, lookup, model, name))
            .flatten();
        let first = name.split("__").next().unwrap_or(name);
        cx.report(
            lookup,
            format!("Excluding across the to-many relation `{first}` is a subquery over the whole related table; fetch the ids first and exclude them with `pk__in`"),
            fix,
        );
    }
}

/// The lookup goes through a to-many relation of `model` (named in query-name form) to one of
/// the related rows' fields.
fn crosses_to_many(sem: &Semantics, model: ModelId, lookup: &str) -> bool {
    let Some((first, _)) = lookup.split_once("__") else {
        return false;
    };
    let model = sem.index().model(model);
    match model.field(first) {
        Some(field) => field.kind == FieldKind::ManyToMany && field.target.is_some(),
        None => model
            .reverse
            .iter()
            .any(|r| r.many && reverse_query_name(sem, r).as_deref() == Some(first)),
    }
}

/// Inside `~Q(...)` within `argument`.
fn under_negation<'a>(sem: &Semantics<'a>, node: Node<'a>, argument: Node<'a>) -> bool {
    let mut current = node;
    while let Some(parent) = sem.parents.of(current) {
        if parent.kind_name() == "unary_operator" && sem.text(parent).starts_with('~') {
            return true;
        }
        if parent.id() == argument.id() {
            return false;
        }
        current = parent;
    }
    false
}

/// `qs.exclude(assignees__done=True)` -> `assignee_ids = list(Assignee.objects.filter(done=True)
/// .values_list("todo_id", flat=True))` above the statement and `qs.exclude(pk__in=assignee_ids)`,
/// for a reverse foreign key whose related model this file names.
fn precompute_fix<'a>(
    sem: &Semantics<'a>,
    call: Node<'a>,
    arguments: Node<'a>,
    lookup: Node<'a>,
    model: ModelId,
    name: &str,
) -> Option<Fix> {
    let (first, rest) = name.split_once("__")?;
    if rest.is_empty() || rest.ends_with("isnull") {
        return None;
    }
    let reverse = sem
        .index()
        .model(model)
        .reverse
        .iter()
        .find(|r| r.many && reverse_query_name(sem, r).as_deref() == Some(first))?;
    let key = sem.index().model(reverse.source).field(&reverse.field)?;
    if key.kind != FieldKind::ForeignKey || key.to_field.is_some() {
        return None;
    }
    let related = sem.model_class_name(reverse.source)?;
    let value = sem.text(lookup.field(&field::VALUE)?);
    let statement = enclosing_statement(call, &sem.parents);
    let quote = quote_style(sem, call);
    let ids = unused_name(sem.source, &format!("{first}_ids"));
    let precompute = format!(
        "{ids} = list({related}.objects.filter({rest}={value}).values_list({quote}{}_id{quote}, flat=True))",
        reverse.field
    );
    Some(Fix {
        title: format!("Fetch the ids first with `{precompute}` (unsafe: a second query, and the ids are read before the statement runs)"),
        applicability: Applicability::Unsafe,
        edits: vec![
            insert_above(sem.source, statement, &precompute)?,
            Edit::replace(arguments.byte_range(), format!("(pk__in={ids})")),
        ],
    })
}
