//! What ORM302, ORM303 and ORM304 share: a `save()` per row of a loop, reported by the rule
//! whose kind of values (constants, the row's own fields, Python) the loop assigns.

use super::{Captures, RuleContext};
use crate::analysis::writes::{save_loop, SavedValues};

pub fn check<'a>(cx: &mut RuleContext<'_, 'a>, m: &Captures<'_, 'a>, values: SavedValues) {
    let (Some(call), Some(instance)) = (m.get("call"), m.get("instance")) else {
        return;
    };
    let Some(save) = save_loop(cx.sem, call, instance) else {
        return;
    };
    if save.values != values {
        return;
    }
    let fix = save.fix(cx.sem, cx.settings);
    let message = save.message(cx.sem);
    cx.report(call, message, fix);
}
