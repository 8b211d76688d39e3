//! ORM304 save-in-loop-computed: `for x in qs: x.d = modify(x.d); x.save()` needs Python for
//! each row's values, but not one UPDATE per row: the rows are collected and written with one
//! `bulk_update()` of the assigned fields (a few queries per batch).

use super::{Captures, Rule, RuleContext, RuleMeta};
use crate::analysis::diagnostic::Severity;
use crate::analysis::writes::{save_loop, SavedValues};

pub static RULE: Rule = Rule {
    meta: &RuleMeta {
        code: "ORM304",
        name: "save-in-loop-computed",
        severity: Severity::Warning,
    },
    query: include_str!("../../../../queries/orm304_save_in_loop_computed.scm"),
    check,
};

fn check<'a>(cx: &mut RuleContext<'_, 'a>, m: &Captures<'_, 'a>) {
    let (Some(call), Some(instance)) = (m.get("call"), m.get("instance")) else {
        return;
    };
    let Some(save) = save_loop(cx.sem, call, instance) else {
        return;
    };
    if save.values != SavedValues::Computed {
        return;
    }
    let fix = save.fix(cx.sem, cx.settings);
    let message = save.message(cx.sem);
    cx.report(call, message, fix);
}
