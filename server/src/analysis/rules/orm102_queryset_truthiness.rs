//! ORM102 queryset-truthiness: `if qs:` fetches every row to learn whether there is one;
//! `qs.exists()` asks for `SELECT 1 ... LIMIT 1`. Silent when `qs` is evaluated elsewhere in the
//! scope (the truth test then fills the cache the other use reads).

use tree_sitter::Node;

use super::{orm405_filter_on_prefetched, Captures, Rule, RuleContext, RuleMeta};
use crate::analysis::diagnostic::{Edit, Fix, Severity};
use crate::analysis::evaluation::other_evaluations;
use crate::analysis::syntax::{
    as_receiver,
    field::{self, FieldOf},
    parent_through_parens, single_argument_call, strip_parens, KindOf,
};

pub static RULE: Rule = Rule {
    meta: &RuleMeta {
        code: "ORM102",
        name: "queryset-truthiness",
        severity: Severity::Info,
    },
    query: include_str!("../../../../queries/orm102_queryset_truthiness.scm"),
    check,
};

fn check<'a>(cx: &mut RuleContext<'_, 'a>, m: &Captures<'_, 'a>) {
    let Some(condition) = m.get("condition") else {
        return;
    };
    // `if a and not qs:` -> `a`, `not qs`; the `not` operand is its own match.
    let mut pending = vec![condition];
    while let Some(node) = pending.pop() {
        let node = strip_parens(node);
        match node.kind_name() {
            "boolean_operator" => {
                pending.extend(node.field(&field::RIGHT));
                pending.extend(node.field(&field::LEFT));
            }
            "not_operator" => {}
            _ => check_operand(cx, node),
        }
    }
}

fn check_operand<'a>(cx: &mut RuleContext<'_, 'a>, operand: Node<'a>) {
    if !cx.sem.ty(operand).is_countable_queryset() {
        return;
    }
    if operand.kind_name() == "identifier" && other_evaluations(cx.sem, operand).any() {
        return;
    }
    if orm405_filter_on_prefetched::owns(cx.sem, cx.settings, operand)
        || crate::analysis::loops::reads_prefetch_cache(cx.sem, operand)
    {
        return;
    }
    let receiver = as_receiver(operand, cx.sem.source);
    let replacement = format!("{receiver}.exists()");
    // `bool(qs)` becomes `qs.exists()`, not `bool(qs.exists())`.
    let parents = &cx.sem.parents;
    let bool_call = parent_through_parens(operand, parents)
        .and_then(|args| parents.of(args))
        .filter(|call| {
            single_argument_call(*call, cx.sem.source).is_some_and(|(f, _)| f == "bool")
        });
    let replaced = bool_call.unwrap_or(operand);
    let fix = Fix::safe(
        format!("Replace with `{replacement}`"),
        vec![Edit::replace(replaced.byte_range(), &replacement)],
    );
    cx.report(
        replaced,
        "Testing a queryset for truth fetches every row; use `.exists()`",
        Some(fix),
    );
}
