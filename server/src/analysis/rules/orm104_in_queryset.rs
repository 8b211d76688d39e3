//! ORM104 in-queryset: `obj in qs` fetches every row to compare them in Python;
//! `qs.contains(obj)` asks the database about one primary key. Silent when `qs` is evaluated
//! elsewhere in the scope (membership then reads the cache).

use tree_sitter::Node;

use super::{Captures, Rule, RuleContext, RuleMeta};
use crate::analysis::diagnostic::{Edit, Severity};
use crate::analysis::evaluation::other_evaluations;
use crate::analysis::infer::{ModelRef, Semantics, Ty};
use crate::analysis::scope::BindingKind;
use crate::analysis::syntax::{
    as_receiver,
    field::{self, FieldOf},
    method_call, negated, strip_parens, text, walk, KindOf,
};
use crate::analysis::writes::fix_unless;

pub static RULE: Rule = Rule {
    meta: &RuleMeta {
        code: "ORM104",
        name: "in-queryset",
        severity: Severity::Info,
    },
    query: include_str!("../../../../queries/orm104_in_queryset.scm"),
    check,
};

/// `QuerySet.contains()` arrived in Django 4.0.
const CONTAINS_SINCE: (u32, u32) = (4, 0);

fn check<'a>(cx: &mut RuleContext<'_, 'a>, m: &Captures<'_, 'a>) {
    let Some(comparison) = m.get("comparison") else {
        return;
    };
    let mut cursor = comparison.walk();
    let parts: Vec<_> = comparison
        .children(&mut cursor)
        .filter(|c| c.kind_name() != "comment")
        .collect();
    let [needle, op, receiver] = parts.as_slice() else {
        return;
    };
    let negative = match op.kind_name() {
        "in" => false,
        "not in" => true,
        _ => return,
    };
    let Some(qs) = cx.sem.ty(*receiver).queryset().cloned() else {
        return;
    };
    if qs.locks {
        return;
    }
    let name = strip_parens(*receiver);
    if name.kind_name() == "identifier" && other_evaluations(cx.sem, name).any() {
        return;
    }
    // A QuerySet handed in by the caller may be one it keeps and hands in again: the first
    // `in` fills its cache and the next calls' are free. Whose it is decides; unsure, silent.
    if name.kind_name() == "identifier" && cx.sem.parameter_of(name).is_some() {
        return;
    }
    let message =
        "`in` fetches every row of the queryset to test membership in Python; ask the database";
    if qs.values || qs.sliced || qs.combined {
        // `contains()` and `filter()` refuse values(), sliced and combined (`union()`)
        // querysets: nothing safe to offer.
        cx.report(comparison, message, None);
        return;
    }
    let source = cx.sem.source;
    let receiver_text = as_receiver(*receiver, source);
    let test = if cx.settings.target_django >= CONTAINS_SINCE {
        format!("{receiver_text}.contains({})", text(*needle, source))
    } else {
        format!(
            "{receiver_text}.filter(pk={}.pk).exists()",
            as_receiver(*needle, source)
        )
    };
    let replacement = if negative {
        negated(&test, comparison, &cx.sem.parents)
    } else {
        test
    };
    // `contains()` raises where `in` answers False: for an unsaved object (ValueError) and for
    // anything but a model instance (TypeError). `filter(pk=obj.pk)` finds nothing for an unsaved
    // object, as `in` does, but may match an object of another model by its key.
    let hazard = if cx.settings.target_django >= CONTAINS_SINCE {
        (!saved_row(cx.sem, *needle))
            .then_some("`contains()` raises for an unsaved object, where `in` is False")
    } else {
        (!instance_of(cx.sem, *needle, qs.model.as_ref())).then_some(
            "`in` is False for an object of another model, which this may find by its key",
        )
    };
    let hazards: Vec<String> = hazard.into_iter().map(str::to_string).collect();
    let fix = fix_unless(
        format!("Replace with `{replacement}`"),
        &hazards,
        vec![Edit::replace(comparison.byte_range(), &replacement)],
    );
    cx.report(comparison, message, Some(fix));
}

/// Whether `needle` is an instance of `model`.
fn instance_of<'a>(sem: &Semantics<'a>, needle: Node<'a>, model: Option<&ModelRef>) -> bool {
    matches!(sem.ty(needle), Ty::Instance(m) if Some(&m) == model)
}

/// Whether `needle` is a name known to hold a row read from the database and not deleted since:
/// every binding that reaches it is a loop over a QuerySet's rows, or a `get()`, `latest()`,
/// `earliest()`, `create()`, `get_or_create()`, `update_or_create()` or `get_object_or_404()`
/// (not `first()`, which may give `None`), and the scope neither deletes it nor clears its key.
fn saved_row<'a>(sem: &Semantics<'a>, needle: Node<'a>) -> bool {
    let needle = strip_parens(needle);
    if needle.kind_name() != "identifier" || !matches!(sem.ty(needle), Ty::Instance(_)) {
        return false;
    }
    let name = sem.text(needle);
    let scope = sem.scope_of(needle);
    let reaching = scope.reaching(name, needle, &sem.parents);
    let fetched = reaching.complete
        && !reaching.bindings.is_empty()
        && reaching.bindings.iter().all(|b| match b.kind {
            BindingKind::ForTarget { iterable, .. }
            | BindingKind::ComprehensionTarget { iterable, .. } => {
                // The whole target, not one element of an unpacked row.
                let target = sem.parents.of(b.name).and_then(|p| p.field(&field::LEFT));
                target.is_some_and(|t| t.id() == b.name.id())
                    && matches!(sem.ty(iterable), Ty::QuerySet(qs) | Ty::Evaluated(qs) if !qs.values)
            }
            BindingKind::Assign { value, .. } => fetched_row(sem, value, false),
            BindingKind::Unpacked { value, index: 0 } => fetched_row(sem, value, true),
            _ => false,
        });
    fetched && !unsaved_in(sem, scope.scope, name)
}

/// `value` is a row the database gave: `qs.get(...)` and the like, or (`unpacked`) the object of
/// `qs.get_or_create(...)`.
fn fetched_row<'a>(sem: &Semantics<'a>, value: Node<'a>, unpacked: bool) -> bool {
    let value = strip_parens(value);
    if let Some((receiver, method)) = method_call(value, sem.source) {
        let fetching = if unpacked {
            matches!(method, "get_or_create" | "update_or_create")
        } else {
            matches!(method, "get" | "latest" | "earliest" | "create")
        };
        return fetching && sem.ty(receiver).is_query_source();
    }
    !unpacked
        && value
            .field(&field::FUNCTION)
            .is_some_and(|f| sem.text(f) == "get_object_or_404")
}

/// Whether the scope deletes `name`'s row (`delete()` clears its key) or sets its key.
fn unsaved_in<'a>(sem: &Semantics<'a>, scope: Node<'a>, name: &str) -> bool {
    let mut found = false;
    walk(scope, |n| {
        if n.kind_name() == "attribute"
            && n.field(&field::OBJECT).is_some_and(|o| sem.text(o) == name)
        {
            let attribute = n.field(&field::ATTRIBUTE).map_or("", |a| sem.text(a));
            let assigned = sem.parents.of(n).is_some_and(|p| {
                p.kind_name() == "assignment"
                    && p.field(&field::LEFT).is_some_and(|l| l.id() == n.id())
            });
            found |= attribute == "delete" || (assigned && matches!(attribute, "pk" | "id"));
        }
        !found
    });
    found
}
