//! ORM104 in-queryset: `obj in qs` fetches every row to compare them in Python;
//! `qs.contains(obj)` asks the database about one primary key. Silent when `qs` is evaluated
//! elsewhere in the scope (membership then reads the cache).

use super::{Captures, Rule, RuleContext, RuleMeta};
use crate::analysis::diagnostic::{Edit, Fix, Severity};
use crate::analysis::evaluation::other_evaluations;
use crate::analysis::syntax::{as_receiver, negated, strip_parens, text};

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
        .filter(|c| c.kind() != "comment")
        .collect();
    let [needle, op, receiver] = parts.as_slice() else {
        return;
    };
    let negative = match op.kind() {
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
    if name.kind() == "identifier" && other_evaluations(cx.sem, name).any() {
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
    let fix = Fix::safe(
        format!("Replace with `{replacement}`"),
        vec![Edit::replace(comparison.byte_range(), &replacement)],
    );
    cx.report(comparison, message, Some(fix));
}
