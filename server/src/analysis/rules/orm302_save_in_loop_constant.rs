//! ORM302 save-in-loop-constant: `for x in qs: x.a = 1; x.save()` runs one UPDATE per row with
//! the same value each time; `qs.update(a=1)` is one UPDATE.

use super::save_in_loop;
use super::{Captures, Rule, RuleContext, RuleMeta};
use crate::analysis::diagnostic::Severity;
use crate::analysis::writes::SavedValues;

pub static RULE: Rule = Rule {
    meta: &RuleMeta {
        code: "ORM302",
        name: "save-in-loop-constant",
        severity: Severity::Warning,
    },
    query: include_str!("../../../../queries/orm302_save_in_loop_constant.scm"),
    check,
};

fn check<'a>(cx: &mut RuleContext<'_, 'a>, m: &Captures<'_, 'a>) {
    save_in_loop::check(cx, m, SavedValues::Constant);
}
