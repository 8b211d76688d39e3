//! ORM303 save-in-loop-field-copy: `for x in qs: x.p = x.p + 1; x.save()` computes each row's
//! values from its own columns, one UPDATE per row; `qs.update(p=F("p") + 1)` computes them in
//! the database, in one UPDATE.

use super::save_in_loop;
use super::{Captures, Rule, RuleContext, RuleMeta};
use crate::analysis::diagnostic::Severity;
use crate::analysis::writes::SavedValues;

pub static RULE: Rule = Rule {
    meta: &RuleMeta {
        code: "ORM303",
        name: "save-in-loop-field-copy",
        severity: Severity::Warning,
    },
    query: include_str!("../../../../queries/orm303_save_in_loop_field_copy.scm"),
    check,
};

fn check<'a>(cx: &mut RuleContext<'_, 'a>, m: &Captures<'_, 'a>) {
    save_in_loop::check(cx, m, SavedValues::OwnFields);
}
