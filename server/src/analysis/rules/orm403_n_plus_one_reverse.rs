//! ORM403 n-plus-one-reverse: in a loop over a QuerySet, `row.entry_set.all()` (a reverse
//! foreign key or a many-to-many) runs one query per row unless the QuerySet prefetches it with
//! `prefetch_related("entry_set")`. The fix adds the lookup where the QuerySet is built.

use tree_sitter::Node;

use super::{Captures, Rule, RuleContext, RuleMeta};
use crate::analysis::diagnostic::{Fix, Severity};
use crate::analysis::index::FieldKind;
use crate::analysis::loops::{
    add_lookup, covers, per_row_loop, prefetch_site, read_before_in_loop, RowLoop,
};
use crate::analysis::syntax::{
    is_truth_tested, parent_through_parens, single_argument_call, KindOf,
};

pub static RULE: Rule = Rule {
    meta: &RuleMeta {
        code: "ORM403",
        name: "n-plus-one-reverse",
        severity: Severity::Warning,
    },
    query: include_str!("../../../../queries/orm403_n_plus_one_reverse.scm"),
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
    let name = cx.sem.text(relation);
    let model = cx.sem.index().model(row_loop.model);
    let many = model
        .field(name)
        .is_some_and(|f| f.kind == FieldKind::ManyToMany && f.target.is_some())
        || model.reverse(name).is_some_and(|r| r.many);
    if !many || covers(&row_loop.queryset.prefetch_related, name) {
        return;
    }
    // Counting and membership per row are the counting rules' (and a count annotation's) case.
    let source = cx.sem.source;
    let parents = &cx.sem.parents;
    let counted = is_truth_tested(call, source, parents)
        || parent_through_parens(call, parents).is_some_and(|p| {
            p.kind_name() == "comparison_operator"
                || (p.kind_name() == "argument_list"
                    && parents.of(p).is_some_and(|c| {
                        single_argument_call(c, source)
                            .is_some_and(|(f, _)| matches!(f, "len" | "bool"))
                    }))
        });
    if counted || read_before_in_loop(cx.sem, &row_loop, call) {
        return;
    }
    report_query_per_row(cx, &row_loop, call, name);
}

/// Reports `read`, a query per row of `row_loop` that `prefetch_related(lookup)` batches, with
/// the fix that adds the lookup where the QuerySet is built (ORM402 reports a generic key so).
pub(super) fn report_query_per_row<'a>(
    cx: &mut RuleContext<'_, 'a>,
    row_loop: &RowLoop<'a>,
    read: Node<'a>,
    lookup: &str,
) {
    let fix = prefetch_site(cx.sem, row_loop.iterable).map(|site| {
        let edit = add_lookup(cx.sem, site, "prefetch_related", lookup);
        Fix::safe(
            format!("Add `prefetch_related(\"{lookup}\")` where the queryset is built"),
            vec![edit],
        )
    });
    let text = cx.sem.text(read);
    cx.report(
        read,
        format!("`{text}` runs a query for every row of the loop; add `prefetch_related(\"{lookup}\")` where the queryset is built"),
        fix,
    );
}
