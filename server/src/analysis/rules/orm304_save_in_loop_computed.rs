//! ORM304 save-in-loop-computed: `for x in qs: x.d = modify(x.d); x.save()` needs Python for
//! each row's values, but not one UPDATE per row: the rows are collected and written with one
//! `bulk_update()` of the assigned fields (a few queries per batch).

use super::save_in_loop;
use super::{Captures, Rule, RuleContext, RuleMeta};
use crate::analysis::diagnostic::Severity;
use crate::analysis::writes::SavedValues;

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
    save_in_loop::check(cx, m, SavedValues::Computed);
}
