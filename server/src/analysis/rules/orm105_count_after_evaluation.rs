//! ORM105 count-after-evaluation: `Entry.objects.filter(blog=b).count()` after `entries`, built
//! the same way, was already iterated: the rows are in memory, so `len(entries)` costs no query.
//! Never on `entries.count()` itself: Django already answers that from the cache.

use tree_sitter::Node;

use super::{Captures, Rule, RuleContext, RuleMeta};
use crate::analysis::diagnostic::{Edit, Fix, Severity};
use crate::analysis::evaluation::{
    iterating_statement, rebound_between, runs_before, writes_between,
};
use crate::analysis::infer::Ty;
use crate::analysis::scope::BindingKind;
use crate::analysis::syntax::{has_no_arguments, normalized, strip_parens, walk, Parents};

pub static RULE: Rule = Rule {
    meta: &RuleMeta {
        code: "ORM105",
        name: "count-after-evaluation",
        severity: Severity::Warning,
    },
    query: include_str!("../../../../queries/orm105_count_after_evaluation.scm"),
    check,
};

fn check<'a>(cx: &mut RuleContext<'_, 'a>, m: &Captures<'_, 'a>) {
    let (Some(call), Some(receiver), Some(method)) =
        (m.get("call"), m.get("receiver"), m.get("method"))
    else {
        return;
    };
    let receiver = strip_parens(receiver);
    if !has_no_arguments(call) || receiver.kind() == "identifier" {
        return;
    }
    if !matches!(cx.sem.ty(receiver), Ty::QuerySet(_) | Ty::Manager(_)) {
        return;
    }
    let source = cx.sem.source;
    let receiver_tokens = normalized(receiver, source);
    let wanted = without_all(&receiver_tokens);
    let scope = cx.sem.scope_of(call);
    let held = scope.assignments().find_map(|(name, binding)| {
        let BindingKind::Assign { value, .. } = binding.kind else {
            return None;
        };
        if binding.name.end_byte() > call.start_byte()
            || without_all(&normalized(value, source)) != wanted
        {
            return None;
        }
        // The name must still hold that assignment at the call...
        let reaching = scope.reaching(name, call, &cx.sem.parents);
        if !reaching.complete
            || reaching.bindings.len() != 1
            || reaching.bindings[0].name.id() != binding.name.id()
        {
            return None;
        }
        // ...and have been evaluated on every path to it, with nothing written since.
        let evaluated = scope.references(name).iter().find_map(|r| {
            let statement = iterating_statement(*r, source, &cx.sem.parents)?;
            (r.start_byte() > binding.name.end_byte()
                && runs_before(statement, call, &cx.sem.parents))
            .then_some(statement)
        })?;
        let names = identifiers(value, source, &cx.sem.parents);
        let changed =
            rebound_between(
                &scope,
                &names,
                binding.statement.end_byte(),
                call.start_byte(),
            ) || writes_between(&scope, evaluated.start_byte(), call.start_byte(), source);
        (!changed).then_some(name)
    });
    let Some(name) = held else { return };
    let method = cx.sem.text(method);
    let replacement = if method == "count" {
        format!("len({name})")
    } else {
        format!("bool({name})")
    };
    let fix = Fix::safe(
        format!("Replace with `{replacement}`"),
        vec![Edit::replace(call.byte_range(), &replacement)],
    );
    cx.report(
        call,
        format!(
            "`{method}()` queries again for rows already loaded in `{name}`; use `{replacement}`"
        ),
        Some(fix),
    );
}

/// `Entry.objects.all()` and `Entry.objects` count the same rows.
fn without_all(tokens: &str) -> &str {
    tokens.strip_suffix(" . all ( )").unwrap_or(tokens)
}

fn identifiers<'s, 'a>(node: Node<'a>, source: &'s str, parents: &Parents<'a>) -> Vec<&'s str> {
    let mut names = Vec::new();
    walk(node, |n| {
        if n.kind() == "identifier"
            && parents.of(n).is_none_or(|p| {
                p.kind() != "attribute"
                    || p.child_by_field_name("object")
                        .is_some_and(|o| o.id() == n.id())
            })
        {
            names.push(&source[n.byte_range()]);
        }
        true
    });
    names
}
