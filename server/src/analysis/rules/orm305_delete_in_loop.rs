//! ORM305 delete-in-loop: `for x in qs: x.delete()` runs one DELETE per row after loading them
//! all; `qs.delete()` is one query (plus the collector's queries for cascades and signals, which
//! the loop ran per row too).

use tree_sitter::Node;

use super::{Captures, Rule, RuleContext, RuleMeta};
use crate::analysis::diagnostic::{Fix, Severity};
use crate::analysis::index::ModelId;
use crate::analysis::infer::Ty;
use crate::analysis::loops::{construction_site, per_row_loop, RowLoop};
use crate::analysis::syntax::{
    as_receiver,
    field::{self, FieldOf},
    has_no_arguments, strip_parens, KindOf,
};
use crate::analysis::writes::{
    fix_unless, innermost_for, is_call_statement, plain_body, read_outside_loop, replace_loop,
};

pub static RULE: Rule = Rule {
    meta: &RuleMeta {
        code: "ORM305",
        name: "delete-in-loop",
        severity: Severity::Warning,
    },
    query: include_str!("../../../../queries/orm305_delete_in_loop.scm"),
    check,
};

fn check<'a>(cx: &mut RuleContext<'_, 'a>, m: &Captures<'_, 'a>) {
    let (Some(call), Some(instance)) = (m.get("call"), m.get("instance")) else {
        return;
    };
    let Some(rows) = per_row_loop(cx.sem, instance) else {
        return;
    };
    if innermost_for(cx.sem, call).is_none_or(|l| l.id() != rows.node.id()) {
        return;
    }
    // `if expired(row): row.delete()` deletes some rows, decided in Python: no one DELETE of
    // the queryset says that.
    let in_loop_body = cx
        .sem
        .parents
        .of(call)
        .and_then(|statement| cx.sem.parents.of(statement))
        .is_some_and(|block| Some(block) == rows.node.field(&field::BODY));
    if !in_loop_body || override_arguments(cx, rows.model, call) {
        return;
    }
    let fix = rewrite(cx, &rows, call, cx.sem.text(instance));
    let row = cx.sem.text(instance);
    cx.report(
        call,
        format!("`{row}.delete()` in a loop runs one DELETE per row; call `.delete()` once on the queryset"),
        fix,
    );
}

/// Whether `call` passes an overridden `delete()` arguments that Django's own `Model.delete()`
/// does not take (`tile.delete(request, index=False)`: anything but `using=`/`keep_parents=`).
/// They drive the override's work for that row, which `QuerySet.delete()` neither takes nor
/// runs: the delete is per row on purpose.
fn override_arguments(cx: &RuleContext, model: ModelId, call: Node) -> bool {
    if !cx.sem.index().model(model).overrides_delete {
        return false;
    }
    let Some(arguments) = call.field(&field::ARGUMENTS) else {
        return false;
    };
    let mut cursor = arguments.walk();
    let passed: Vec<Node> = arguments
        .named_children(&mut cursor)
        .filter(|a| a.kind_name() != "comment")
        .collect();
    passed.iter().any(|argument| {
        argument.kind_name() != "keyword_argument"
            || argument
                .field(&field::NAME)
                .is_none_or(|name| !matches!(cx.sem.text(name), "using" | "keep_parents"))
    })
}

/// `qs.delete()` in place of the loop, when the loop does nothing else and `qs` can be deleted
/// as a whole.
fn rewrite<'a>(
    cx: &RuleContext<'_, 'a>,
    rows: &RowLoop<'a>,
    call: Node<'a>,
    row: &str,
) -> Option<Fix> {
    let sem = cx.sem;
    let [statement] = plain_body(rows.node)?[..] else {
        return None;
    };
    if !is_call_statement(statement, call) || !has_no_arguments(call) {
        return None;
    }
    // Django refuses `delete()` on a sliced, combined or `distinct()` queryset, and on values.
    let Ty::QuerySet(qs) = sem.ty(rows.iterable) else {
        return None;
    };
    let built = construction_site(sem, rows.iterable).map_or("", |site| sem.text(site));
    let distinct = [sem.text(rows.iterable), built]
        .iter()
        .any(|t| t.contains("distinct("));
    if qs.sliced || qs.values || qs.combined || distinct {
        return None;
    }
    if read_outside_loop(sem, rows.node, row) {
        return None;
    }
    let iterable = strip_parens(rows.iterable);
    // A named queryset read later would be a fresh query after `delete()`, where the loop left
    // its cache filled with the deleted rows.
    if iterable.kind_name() == "identifier" && read_outside_loop(sem, rows.node, sem.text(iterable))
    {
        return None;
    }
    let replacement = format!("{}.delete()", as_receiver(rows.iterable, sem.source));
    let edit = replace_loop(sem, rows.node, &replacement)?;
    let model = sem.index().model(rows.model);
    let hazards: Vec<String> = model
        .overrides_delete
        .then(|| format!("{}.delete() is overridden", model.name))
        .into_iter()
        .collect();
    Some(fix_unless(
        format!("Replace the loop with `{replacement}`"),
        &hazards,
        vec![edit],
    ))
}
