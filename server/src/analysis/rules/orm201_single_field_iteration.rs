//! ORM201 single-field-iteration: `[row.title for row in rows]` loads every column of every row
//! to keep one; `rows.values_list("title", flat=True)` selects only that column.

use tree_sitter::Node;

use super::{Captures, Rule, RuleContext, RuleMeta};
use crate::analysis::columns::{
    is_single_clause, iterated_column, nullable_read, single_clause_parts,
};
use crate::analysis::diagnostic::{Applicability, Edit, Fix, Severity};
use crate::analysis::infer::Semantics;
use crate::analysis::loops::quote_style;
use crate::analysis::scope::BindingKind;
use crate::analysis::syntax::{
    as_receiver,
    field::{self, FieldOf},
    single_argument_call, KindOf,
};
use crate::analysis::writes::replace_loop;
use crate::settings::Settings;

pub static RULE: Rule = Rule {
    meta: &RuleMeta {
        code: "ORM201",
        name: "single-field-iteration",
        severity: Severity::Info,
    },
    query: include_str!("../../../../queries/orm201_single_field_iteration.scm"),
    check,
};

fn check<'a>(cx: &mut RuleContext<'_, 'a>, m: &Captures<'_, 'a>) {
    let (Some(element), Some(target), Some(iterable)) =
        (m.get("element"), m.get("target"), m.get("iterable"))
    else {
        return;
    };
    let sem = cx.sem;
    let Some(lookup) = iterated_column(sem, element, target, iterable) else {
        return;
    };
    let quote = quote_style(sem, iterable);
    let values = format!(
        "{}.values_list({quote}{lookup}{quote}, flat=True)",
        as_receiver(iterable, sem.source)
    );
    if let Some(comprehension) = m.get("comprehension") {
        if is_aggregated(sem, comprehension) || !is_single_clause(comprehension) {
            return;
        }
        let wrapper = if comprehension.kind_name() == "set_comprehension" {
            "set"
        } else {
            "list"
        };
        let replacement = format!("{wrapper}({values})");
        let fix = labelled(
            sem,
            iterable,
            element,
            format!("Replace with `{replacement}`"),
            vec![Edit::replace(comprehension.byte_range(), &replacement)],
        );
        cx.report(
            element,
            format!("Every column of every row is loaded to keep `{lookup}`; use `values_list({quote}{lookup}{quote}, flat=True)`"),
            Some(fix),
        );
        return;
    }
    let (Some(for_loop), Some(collection), Some(method)) =
        (m.get("loop"), m.get("collection"), m.get("method"))
    else {
        return;
    };
    let body = for_loop.field(&field::BODY);
    let single_statement = body.is_some_and(|b| {
        let mut cursor = b.walk();
        b.named_children(&mut cursor)
            .filter(|s| s.kind_name() != "comment")
            .count()
            == 1
    });
    if !single_statement || for_loop.field(&field::ALTERNATIVE).is_some() {
        return;
    }
    let extend = match (sem.text(method), collection_kind(sem, collection)) {
        ("append", Some("list")) => "extend",
        ("add", Some("set")) => "update",
        _ => return,
    };
    let replacement = format!("{}.{extend}({values})", sem.text(collection));
    let fix = replace_loop(sem, for_loop, &replacement).map(|edit| {
        labelled(
            sem,
            iterable,
            element,
            format!("Replace the loop with `{replacement}`"),
            vec![edit],
        )
    });
    cx.report(
        element,
        format!("Every column of every row is loaded to keep `{lookup}`; use `values_list({quote}{lookup}{quote}, flat=True)`"),
        fix,
    );
}

/// Safe, unless the read goes through a relation that may be empty: `row.author.id` raises
/// `AttributeError` on a row without an author, where `values_list("author_id")` gives `None`.
fn labelled<'a>(
    sem: &Semantics<'a>,
    iterable: Node<'a>,
    element: Node<'a>,
    title: String,
    edits: Vec<Edit>,
) -> Fix {
    match nullable_read(sem, iterable, element).relation {
        None => Fix::safe(title, edits),
        Some(relation) => Fix {
            title: format!(
                "{title} (unsafe: where `{relation}` is empty, `{}` raises AttributeError and `values_list()` gives None)",
                sem.text(element)
            ),
            applicability: Applicability::Unsafe,
            edits,
        },
    }
}

/// `sum([row.total for row in rows])`: ORM202's case (an aggregate in SQL).
fn is_aggregated<'a>(sem: &Semantics<'a>, comprehension: Node<'a>) -> bool {
    let Some(arguments) = sem.parents.of(comprehension) else {
        return false;
    };
    sem.parents.of(arguments).is_some_and(|call| {
        single_argument_call(call, sem.source)
            .is_some_and(|(f, _)| matches!(f, "sum" | "max" | "min"))
    })
}

/// Whether `name` is a list or a set built in this scope (`names = []`, `seen = set()`), so
/// `extend`/`update` mean what `append`/`add` did.
fn collection_kind<'a>(sem: &Semantics<'a>, name: Node<'a>) -> Option<&'static str> {
    let scope = sem.scope_of(name);
    let reaching = scope.reaching(sem.text(name), name, &sem.parents);
    if !reaching.complete || reaching.bindings.is_empty() {
        return None;
    }
    let mut kind = None;
    for binding in &reaching.bindings {
        let BindingKind::Assign { value, .. } = binding.kind else {
            return None;
        };
        let this = match value.kind_name() {
            "list" | "list_comprehension" => "list",
            "set" | "set_comprehension" => "set",
            "call" => match sem.text(value.field(&field::FUNCTION)?) {
                "list" => "list",
                "set" => "set",
                _ => return None,
            },
            _ => return None,
        };
        if kind.is_some_and(|k| k != this) {
            return None;
        }
        kind = Some(this);
    }
    kind
}

/// Whether ORM201 reports the comprehension or loop whose element is `read` (a relation read
/// inside it): the N+1 rules then leave it alone, since fetching one column needs no join.
pub fn owns<'a>(sem: &Semantics<'a>, settings: &Settings, read: Node<'a>) -> bool {
    if !settings.is_enabled(RULE.meta.code) {
        return false;
    }
    let mut element = read;
    while let Some(parent) = sem.parents.of(element) {
        if parent.kind_name() != "attribute" {
            break;
        }
        element = parent;
    }
    let Some(comprehension) = sem.parents.of(element) else {
        return false;
    };
    if !matches!(
        comprehension.kind_name(),
        "list_comprehension" | "set_comprehension"
    ) || comprehension
        .field(&field::BODY)
        .is_none_or(|b| b.id() != element.id())
        || !is_single_clause(comprehension)
        || is_aggregated(sem, comprehension)
    {
        return false;
    }
    single_clause_parts(comprehension).is_some_and(|(_, target, iterable)| {
        iterated_column(sem, element, target, iterable).is_some()
    })
}
