//! ORM405 filter-on-prefetched: `blog.entries.filter(published=True)` in a loop over blogs runs
//! one query per row, prefetched or not: `filter()` always builds a new query. A `Prefetch`
//! with that filter loads the rows for every blog at once into an attribute.

use tree_sitter::Node;

use super::{Captures, Rule, RuleContext, RuleMeta};
use crate::analysis::diagnostic::{Edit, Fix, Severity};
use crate::analysis::imports::import_names;
use crate::analysis::infer::Semantics;
use crate::analysis::loops::{
    add_argument, per_row_loop, prefetch_site, quote_style, to_many_target, RowLoop,
};
use crate::analysis::syntax::{
    field::{self, FieldOf},
    is_truth_tested, normalized, single_argument_call, unused_name, walk, KindOf,
};

pub static RULE: Rule = Rule {
    meta: &RuleMeta {
        code: "ORM405",
        name: "filter-on-prefetched",
        severity: Severity::Warning,
    },
    query: include_str!("../../../../queries/orm405_filter_on_prefetched.scm"),
    check,
};

fn check<'a>(cx: &mut RuleContext<'_, 'a>, m: &Captures<'_, 'a>) {
    let (Some(call), Some(instance), Some(relation), Some(arguments)) = (
        m.get("call"),
        m.get("instance"),
        m.get("relation"),
        m.get("arguments"),
    ) else {
        return;
    };
    let sem = cx.sem;
    let Some(row_loop) = per_row_loop(sem, instance) else {
        return;
    };
    let relation = sem.text(relation);
    let Some(target) = to_many_target(sem, row_loop.model, relation) else {
        return;
    };
    // A filtered QuerySet kept to build more queries from runs none by itself.
    if !used_as_rows(sem, call) && !evaluated_by_chain(sem, call) {
        return;
    }
    let fix = prefetch_fix(sem, &row_loop, call, relation, arguments, target);
    cx.report(
        call,
        format!("`{relation}.filter(...)` runs a query for every row of the loop, even when `{relation}` is prefetched; prefetch the filtered rows with `Prefetch(\"{relation}\", queryset=..., to_attr=...)`"),
        fix,
    );
}

fn prefetch_fix<'a>(
    sem: &Semantics<'a>,
    row_loop: &RowLoop<'a>,
    call: Node<'a>,
    relation: &str,
    arguments: Node<'a>,
    target: crate::analysis::index::ModelId,
) -> Option<Fix> {
    // Arguments that read names could change per row, or not exist yet where the QuerySet is
    // built: only constant filters move there.
    let mut reads_names = false;
    walk(arguments, |n| {
        if n.kind_name() == "identifier" {
            let is_keyword = sem.parents.of(n).is_some_and(|p| {
                p.kind_name() == "keyword_argument"
                    && p.field(&field::NAME).is_some_and(|k| k.id() == n.id())
            });
            reads_names |= !is_keyword;
        }
        !reads_names
    });
    if reads_names || arguments.named_child_count() == 0 {
        return None;
    }
    let site = prefetch_site(sem, row_loop.iterable)?;
    let model_name = sem.model_class_name(target)?;
    let import = import_names(sem, "django.db.models", &["Prefetch"]).ok()?;
    // Every equal filter of the loop is rewritten; each must use the rows as a list would.
    let wanted = normalized(call, sem.source);
    let mut uses = Vec::new();
    walk(row_loop.node, |n| {
        if n.kind_name() == "call" && normalized(n, sem.source) == wanted {
            uses.push(n);
            return false;
        }
        true
    });
    if !uses.iter().all(|u| used_as_rows(sem, *u)) {
        return None;
    }
    let to_attr = unused_name(sem.source, &format!("filtered_{relation}"));
    let quote = quote_style(sem, site);
    let prefetch = format!(
        "Prefetch({quote}{relation}{quote}, queryset={model_name}.objects.filter{}, to_attr={quote}{to_attr}{quote})",
        sem.text(arguments)
    );
    let instance = sem.text(row_loop_instance(call)?);
    let mut edits: Vec<Edit> = import.into_iter().collect();
    edits.push(add_argument(sem, site, "prefetch_related", &prefetch));
    edits.extend(
        uses.iter()
            .map(|u| Edit::replace(u.byte_range(), format!("{instance}.{to_attr}"))),
    );
    Some(Fix::safe(
        format!(
            "Prefetch the filtered rows into `{instance}.{to_attr}` where the queryset is built"
        ),
        edits,
    ))
}

fn row_loop_instance(call: Node) -> Option<Node> {
    call.field(&field::FUNCTION)?
        .field(&field::OBJECT)?
        .field(&field::OBJECT)
}

/// `row.rel.filter(...).count()` and the like: one query per row too.
fn evaluated_by_chain<'a>(sem: &Semantics<'a>, call: Node<'a>) -> bool {
    sem.parents
        .of(call)
        .filter(|p| p.kind_name() == "attribute")
        .and_then(|attribute| sem.parents.of(attribute))
        .and_then(|outer| crate::analysis::syntax::method_call(outer, sem.source))
        .is_some_and(|(receiver, method)| {
            receiver.id() == call.id()
                && crate::analysis::loop_queries::QUERY_METHODS.contains(&method)
        })
}

/// The filtered rows only iterated, counted with `len()` or truth-tested: a list does the same.
fn used_as_rows<'a>(sem: &Semantics<'a>, call: Node<'a>) -> bool {
    let Some(parent) = sem.parents.of(call) else {
        return false;
    };
    match parent.kind_name() {
        "for_statement" | "for_in_clause" => parent
            .field(&field::RIGHT)
            .is_some_and(|r| r.id() == call.id()),
        "argument_list" => sem.parents.of(parent).is_some_and(|outer| {
            single_argument_call(outer, sem.source).is_some_and(|(f, _)| {
                matches!(f, "list" | "len" | "bool" | "sorted" | "set" | "tuple")
            })
        }),
        _ => is_truth_tested(call, sem.source, &sem.parents),
    }
}

/// Whether ORM405 reports `expr` (`row.relation.filter(...)` in a loop over rows): the counting
/// rules' advice (`count()`, `exists()`) would still query per row.
pub fn owns<'a>(sem: &Semantics<'a>, settings: &crate::settings::Settings, expr: Node<'a>) -> bool {
    if !settings.is_enabled(RULE.meta.code) {
        return false;
    }
    let Some((instance, relation, "filter")) =
        crate::analysis::syntax::relation_method_call(expr, sem.source)
    else {
        return false;
    };
    instance.kind_name() == "identifier"
        && per_row_loop(sem, instance)
            .is_some_and(|l| to_many_target(sem, l.model, sem.text(relation)).is_some())
}
