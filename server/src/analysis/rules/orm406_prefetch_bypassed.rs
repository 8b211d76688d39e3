//! ORM406 prefetch-bypassed: `blog.entries.get(...)` in a loop over blogs that prefetch
//! `entries` ignores the prefetched rows and queries once per row. (`count()` and `exists()`
//! on a prefetched relation read the prefetched rows, and `filter()` is ORM405's.)

use super::{Captures, Rule, RuleContext, RuleMeta};
use crate::analysis::diagnostic::Severity;
use crate::analysis::loops::{per_row_loop, surely_covers, to_many_target};

pub static RULE: Rule = Rule {
    meta: &RuleMeta {
        code: "ORM406",
        name: "prefetch-bypassed",
        severity: Severity::Warning,
    },
    query: include_str!("../../../../queries/orm406_prefetch_bypassed.scm"),
    check,
};

fn check<'a>(cx: &mut RuleContext<'_, 'a>, m: &Captures<'_, 'a>) {
    let (Some(call), Some(instance), Some(relation)) =
        (m.get("call"), m.get("instance"), m.get("relation"))
    else {
        return;
    };
    let Some(row_loop) = per_row_loop(cx.sem, instance) else {
        return;
    };
    let relation = cx.sem.text(relation);
    if to_many_target(cx.sem, row_loop.model, relation).is_none()
        || !surely_covers(&row_loop.queryset.prefetch_related, relation)
    {
        return;
    }
    cx.report(
        call,
        format!("`{relation}.get(...)` ignores the prefetched `{relation}` and runs a query for every row; pick the row from `{}.{relation}.all()` in Python", cx.sem.text(instance)),
        None,
    );
}
