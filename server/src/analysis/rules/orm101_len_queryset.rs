//! ORM101 len-queryset: `len(qs)` fetches every row to count them; `qs.count()` asks the
//! database for `COUNT(*)`. Silent when `qs` is evaluated elsewhere in the scope: then `len`
//! fills the result cache that the other use reads.

use super::{
    orm405_filter_on_prefetched, orm409_count_per_row, Captures, Rule, RuleContext, RuleMeta,
};
use crate::analysis::diagnostic::{Edit, Fix, Severity};
use crate::analysis::evaluation::other_evaluations;
use crate::analysis::loops::prefetched_relation;
use crate::analysis::syntax::{as_receiver, method_call, strip_parens, KindOf};

pub static RULE: Rule = Rule {
    meta: &RuleMeta {
        code: "ORM101",
        name: "len-queryset",
        severity: Severity::Info,
    },
    query: include_str!("../../../../queries/orm101_len_queryset.scm"),
    check,
};

fn check<'a>(cx: &mut RuleContext<'_, 'a>, m: &Captures<'_, 'a>) {
    let (Some(call), Some(receiver)) = (m.get("call"), m.get("receiver")) else {
        return;
    };
    if !cx.sem.ty(receiver).is_countable_queryset() {
        return;
    }
    let inner = strip_parens(receiver);
    if inner.kind_name() == "identifier" && other_evaluations(cx.sem, inner).any() {
        return;
    }
    if orm405_filter_on_prefetched::owns(cx.sem, cx.settings, inner) {
        return;
    }
    if let Some((manager, "all")) = method_call(inner, cx.sem.source) {
        // A prefetched relation is counted from memory either way; an unprefetched one per row
        // is ORM409's.
        if prefetched_relation(cx.sem, manager)
            || orm409_count_per_row::owns(cx.sem, cx.settings, manager)
        {
            return;
        }
    }
    let replacement = format!("{}.count()", as_receiver(receiver, cx.sem.source));
    let fix = Fix::safe(
        format!("Replace with `{replacement}`"),
        vec![Edit::replace(call.byte_range(), &replacement)],
    );
    cx.report(
        call,
        "`len()` fetches every row of the queryset to count them; use `.count()`",
        Some(fix),
    );
}
