//! ORM103 count-for-existence: `qs.count() > 0` counts every matching row to learn whether there
//! is one; `qs.exists()` stops at the first. When `qs` is evaluated later in the scope anyway, the
//! better test is `if qs:`: one query that also fills the cache.

use tree_sitter::Node;

use super::{
    orm409_count_per_row, orm412_admin_list_n_plus_one, Captures, Rule, RuleContext, RuleMeta,
};
use crate::analysis::diagnostic::{Edit, Fix, Severity};
use crate::analysis::evaluation::{loaded_equal_queryset, other_evaluations};
use crate::analysis::syntax::{
    as_receiver, has_no_arguments, is_truth_tested, negated, parent_through_parens, strip_parens,
    KindOf, Parents,
};

pub static RULE: Rule = Rule {
    meta: &RuleMeta {
        code: "ORM103",
        name: "count-for-existence",
        severity: Severity::Info,
    },
    query: include_str!("../../../../queries/orm103_count_for_existence.scm"),
    check,
};

fn check<'a>(cx: &mut RuleContext<'_, 'a>, m: &Captures<'_, 'a>) {
    let (Some(count), Some(receiver)) = (m.get("count"), m.get("receiver")) else {
        return;
    };
    let receiver_ty = cx.sem.ty(receiver);
    if !has_no_arguments(count) || !receiver_ty.is_query_source() {
        return;
    }
    // Rows already loaded in an equal QuerySet: ORM105 owns this count (`len(name)` is free).
    if loaded_equal_queryset(cx.sem, count, strip_parens(receiver)).is_some() {
        return;
    }
    // A relation counted per row of a loop: ORM409 annotates the count instead.
    if orm409_count_per_row::owns(cx.sem, cx.settings, strip_parens(receiver)) {
        return;
    }
    // A relation counted per row of an admin changelist: ORM412's (the query per row is the
    // cost).
    if orm412_admin_list_n_plus_one::owns(cx.sem, cx.settings, strip_parens(receiver)) {
        return;
    }
    let parents = &cx.sem.parents;
    let Some((mut tested, mut exists)) = existence_test(count, cx.sem.source, parents) else {
        return;
    };
    // `not qs.count() == 0` tests for rows: the whole of it becomes `qs.exists()`, not
    // `not not qs.exists()`.
    if let Some(not) =
        parent_through_parens(tested, parents).filter(|p| p.kind_name() == "not_operator")
    {
        if !exists {
            (tested, exists) = (not, true);
        }
    }
    let name = strip_parens(receiver);
    // Only a QuerySet can stand in its own truth test; a manager is always true.
    let evaluated = if name.kind_name() == "identifier" && receiver_ty.is_queryset() {
        other_evaluations(cx.sem, name)
    } else {
        Default::default()
    };
    if evaluated.before {
        // `count()` reads the result cache of an evaluated queryset: it costs no query.
        return;
    }
    let receiver_text = as_receiver(receiver, cx.sem.source);
    let (replacement, message) = if evaluated.after {
        let truth = if !exists {
            negated(&receiver_text, tested, parents)
        } else if is_truth_tested(tested, cx.sem.source, parents) {
            receiver_text.clone()
        } else {
            format!("bool({receiver_text})")
        };
        let message = format!(
            "`count()` only to test for rows, and `{receiver_text}` is evaluated later: test `{truth}`, one query that also fills its cache"
        );
        (truth, message)
    } else {
        let call = format!("{receiver_text}.exists()");
        let replacement = if exists {
            call
        } else {
            negated(&call, tested, parents)
        };
        (
            replacement,
            "`count()` counts every matching row only to test for one; use `.exists()`".to_string(),
        )
    };
    let fix = Fix::safe(
        format!("Replace with `{replacement}`"),
        vec![Edit::replace(tested.byte_range(), &replacement)],
    );
    cx.report(tested, message, Some(fix));
}

/// The expression that tests `count` for rows, and whether it is true when rows exist:
/// `c > 0`, `c != 0`, `c >= 1`, `0 < c` (true), `c == 0`, `c < 1`, `c <= 0` (false), or the call
/// itself in a truth test (`if c:`, `not c`).
fn existence_test<'a>(
    count: Node<'a>,
    source: &str,
    parents: &Parents<'a>,
) -> Option<(Node<'a>, bool)> {
    let parent = parent_through_parens(count, parents)?;
    if parent.kind_name() != "comparison_operator" {
        return is_truth_tested(count, source, parents).then_some((count, true));
    }
    let mut cursor = parent.walk();
    let parts: Vec<Node> = parent
        .children(&mut cursor)
        .filter(|c| c.kind_name() != "comment")
        .collect();
    let [left, op, right] = parts.as_slice() else {
        return None;
    };
    let count_on_left = strip_parens(*left).id() == count.id();
    let literal = if count_on_left { right } else { left };
    if literal.kind_name() != "integer" {
        return None;
    }
    let value = &source[literal.byte_range()];
    // Normalise to `count <op> literal`.
    let op = match (count_on_left, op.kind_name()) {
        (true, o) => o,
        (false, "<") => ">",
        (false, ">") => "<",
        (false, "<=") => ">=",
        (false, ">=") => "<=",
        (false, o) => o,
    };
    let exists = match (op, value) {
        (">" | "!=", "0") | (">=", "1") => true,
        ("==" | "<=", "0") | ("<", "1") => false,
        _ => return None,
    };
    Some((parent, exists))
}
