//! ORM204 iterator-for-large-scan: `for row in Model.objects.all(): writer.writerow(...)` keeps
//! every row of the table in the QuerySet's cache until the loop ends, though each row is only
//! written out once. `.iterator()` streams them in chunks instead. Hint severity: on a small
//! table the cache costs nothing.

use tree_sitter::Node;

use super::{Captures, Rule, RuleContext, RuleMeta};
use crate::analysis::diagnostic::{Applicability, Edit, Fix, Severity};
use crate::analysis::infer::{Semantics, Ty};
use crate::analysis::syntax::{has_no_arguments, method_call, KindOf};

pub static RULE: Rule = Rule {
    meta: &RuleMeta {
        code: "ORM204",
        name: "iterator-for-large-scan",
        severity: Severity::Hint,
    },
    query: include_str!("../../../../queries/orm204_iterator_for_large_scan.scm"),
    check,
};

/// Calls that send a row out of the process without keeping it.
const STREAMING_METHODS: &[&str] = &["write", "writerow", "writerows", "send"];

fn check<'a>(cx: &mut RuleContext<'_, 'a>, m: &Captures<'_, 'a>) {
    let (Some(iterable), Some(body)) = (m.get("iterable"), m.get("body")) else {
        return;
    };
    let sem = cx.sem;
    let Some((manager, "all")) = method_call(iterable, sem.source) else {
        return;
    };
    let whole_table = matches!(sem.ty(manager), Ty::Manager(m) if !m.related && m.model.is_some());
    if !whole_table || !has_no_arguments(iterable) || !only_streams(sem, body) {
        return;
    }
    let replacement = format!("{}.iterator()", sem.text(iterable));
    let fix = Fix {
        title: format!("Replace with `{replacement}` (unsafe: the rows are no longer cached, so iterating the same QuerySet again queries again)"),
        applicability: Applicability::Unsafe,
        edits: vec![Edit::replace(iterable.byte_range(), &replacement)],
    };
    cx.report(
        iterable,
        "The loop streams every row of the table out once but the QuerySet caches them all; use `.iterator()`",
        Some(fix),
    );
}

/// Every statement of the body yields or writes something out.
fn only_streams(sem: &Semantics, body: Node) -> bool {
    let mut cursor = body.walk();
    let statements: Vec<Node> = body
        .named_children(&mut cursor)
        .filter(|s| s.kind_name() != "comment")
        .collect();
    !statements.is_empty()
        && statements.iter().all(|s| {
            s.kind_name() == "expression_statement"
                && s.named_child(0).is_some_and(|e| {
                    e.kind_name() == "yield"
                        || method_call(e, sem.source)
                            .is_some_and(|(_, name)| STREAMING_METHODS.contains(&name))
                })
        })
}
