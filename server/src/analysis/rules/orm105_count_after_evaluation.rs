//! ORM105 count-after-evaluation: `Entry.objects.filter(blog=b).count()` after `entries`, built
//! the same way, was already iterated: the rows are in memory, so `len(entries)` costs no query.
//! Never on `entries.count()` itself: Django already answers that from the cache.

use super::{Captures, Rule, RuleContext, RuleMeta};
use crate::analysis::diagnostic::{Edit, Fix, Severity};
use crate::analysis::evaluation::loaded_equal_queryset;
use crate::analysis::infer::{Semantics, Ty};
use crate::analysis::syntax::{has_no_arguments, method_call, strip_parens, KindOf};
use crate::settings::Settings;
use tree_sitter::Node;

pub static RULE: Rule = Rule {
    meta: &RuleMeta {
        code: "ORM105",
        name: "count-after-evaluation",
        severity: Severity::Info,
    },
    query: include_str!("../../../../queries/orm105_count_after_evaluation.scm"),
    check,
};

fn check<'a>(cx: &mut RuleContext<'_, 'a>, m: &Captures<'_, 'a>) {
    let (Some(call), Some(receiver), Some(method)) =
        (m.get("call"), m.get("receiver"), m.get("method"))
    else {
        return;
    };
    let Some(name) = loaded_name(cx.sem, call, receiver) else {
        return;
    };
    let method = cx.sem.text(method);
    let replacement = if method == "count" {
        format!("len({name})")
    } else {
        format!("bool({name})")
    };
    let fix = Fix::safe(
        format!("Replace with `{replacement}`"),
        vec![Edit::replace(call.byte_range(), &replacement)],
    );
    cx.report(
        call,
        format!(
            "`{method}()` queries again for rows already loaded in `{name}`; use `{replacement}`"
        ),
        Some(fix),
    );
}

/// The name holding already-loaded rows equal to what `receiver.count()` (or `exists()`) asks.
fn loaded_name<'a>(sem: &Semantics<'a>, call: Node<'a>, receiver: Node<'a>) -> Option<&'a str> {
    let receiver = strip_parens(receiver);
    if !has_no_arguments(call) || receiver.kind_name() == "identifier" {
        return None;
    }
    if !matches!(sem.ty(receiver), Ty::QuerySet(_) | Ty::Manager(_)) {
        return None;
    }
    loaded_equal_queryset(sem, call, receiver)
}

/// Whether ORM105 reports `call`: the rules about queries in loops then leave it alone, since
/// reading the loaded rows beats running the query anywhere.
pub fn owns<'a>(sem: &Semantics<'a>, settings: &Settings, call: Node<'a>) -> bool {
    settings.is_enabled(RULE.meta.code)
        && method_call(call, sem.source).is_some_and(|(receiver, method)| {
            matches!(method, "count" | "exists") && loaded_name(sem, call, receiver).is_some()
        })
}
