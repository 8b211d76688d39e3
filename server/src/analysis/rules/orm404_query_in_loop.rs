//! ORM404 query-in-loop: `Author.objects.get(pk=entry.author_id)` inside a loop runs one query
//! per iteration with arguments that change each time. Fetch them together before the loop; for
//! `get(pk=...)` over a list of ids the fix builds a dictionary with `in_bulk()`.

use tree_sitter::Node;

use super::{orm105_count_after_evaluation, Captures, Rule, RuleContext, RuleMeta};
use crate::analysis::diagnostic::{Applicability, Edit, Fix, Severity};
use crate::analysis::infer::{Semantics, Ty};
use crate::analysis::loop_queries::query_in_loop;
use crate::analysis::scope::BindingKind;
use crate::analysis::syntax::{
    field::{self, FieldOf},
    insert_above, method_call, strip_parens, unused_name, KindOf,
};

pub static RULE: Rule = Rule {
    meta: &RuleMeta {
        code: "ORM404",
        name: "query-in-loop",
        severity: Severity::Warning,
    },
    query: include_str!("../../../../queries/orm404_query_in_loop.scm"),
    check,
};

fn check<'a>(cx: &mut RuleContext<'_, 'a>, m: &Captures<'_, 'a>) {
    let Some(call) = m.get("call") else {
        return;
    };
    let Some(query) = query_in_loop(cx.sem, call) else {
        return;
    };
    if orm105_count_after_evaluation::owns(cx.sem, cx.settings, call) {
        return;
    }
    if !query.looks_up_loop_values || query.writes_queried_model {
        return;
    }
    let text = short(cx.sem.text(call));
    let fix = in_bulk_fix(cx.sem, call, query.loop_node);
    cx.report(
        call,
        format!("`{text}` runs a query on every iteration of the loop; fetch the rows together before the loop"),
        fix,
    );
}

/// `for pk in ids: M.objects.get(pk=pk)` -> `m_by_pk = M.objects.in_bulk(ids)` above the loop
/// and `m_by_pk[pk]` in it.
fn in_bulk_fix<'a>(sem: &Semantics<'a>, call: Node<'a>, for_loop: Node<'a>) -> Option<Fix> {
    if for_loop.kind_name() != "for_statement" {
        return None;
    }
    let (manager, "get") = method_call(call, sem.source)? else {
        return None;
    };
    let Ty::Manager(manager_ty) = sem.ty(manager) else {
        return None;
    };
    let target = for_loop.field(&field::LEFT)?;
    let iterable = strip_parens(for_loop.field(&field::RIGHT)?);
    let arguments = call.field(&field::ARGUMENTS)?;
    let argument = arguments.named_child(0)?;
    let by_key = arguments.named_child_count() == 1
        && argument.kind_name() == "keyword_argument"
        && argument
            .field(&field::NAME)
            .is_some_and(|n| matches!(sem.text(n), "pk" | "id"))
        && argument
            .field(&field::VALUE)
            .is_some_and(|v| target.kind_name() == "identifier" && sem.text(v) == sem.text(target));
    if !by_key || !is_reiterable(sem, iterable) {
        return None;
    }
    let model = sem.model_label(manager_ty.model.as_ref()?);
    let model_name = model.rsplit('.').next().unwrap_or(&model).to_lowercase();
    let name = unused_name(sem.source, &format!("{model_name}_by_pk"));
    let fetch = format!(
        "{name} = {}.in_bulk({})",
        sem.text(manager),
        sem.text(iterable)
    );
    Some(Fix {
        title: format!(
            "Fetch them with `{fetch}` before the loop (unsafe: a missing row raises KeyError, not DoesNotExist)"
        ),
        applicability: Applicability::Unsafe,
        edits: vec![
            insert_above(sem.source, for_loop, &fetch)?,
            Edit::replace(call.byte_range(), format!("{name}[{}]", sem.text(target))),
        ],
    })
}

/// A name bound to a list, tuple or set (or a values list): iterating it for `in_bulk()` leaves
/// it whole for the loop, where a generator would be used up.
fn is_reiterable<'a>(sem: &Semantics<'a>, iterable: Node<'a>) -> bool {
    if matches!(iterable.kind_name(), "list" | "tuple" | "set") {
        return true;
    }
    if iterable.kind_name() != "identifier" {
        return false;
    }
    let scope = sem.scope_of(iterable);
    let reaching = scope.reaching(sem.text(iterable), iterable, &sem.parents);
    reaching.complete
        && !reaching.bindings.is_empty()
        && reaching.bindings.iter().all(|b| match b.kind {
            BindingKind::Assign { value, .. } => {
                matches!(
                    value.kind_name(),
                    "list" | "tuple" | "set" | "list_comprehension" | "set_comprehension"
                ) || matches!(sem.ty(value), Ty::QuerySet(_))
                    || value
                        .field(&field::FUNCTION)
                        .is_some_and(|f| matches!(sem.text(f), "list" | "set" | "tuple"))
            }
            _ => false,
        })
}

/// The call as a message shows it: its first line, shortened.
pub fn short(text: &str) -> String {
    let first = text.lines().next().unwrap_or(text);
    if first.len() < text.len() || first.chars().count() > 60 {
        let cut: String = first.chars().take(57).collect();
        format!("{cut}...")
    } else {
        first.to_string()
    }
}
