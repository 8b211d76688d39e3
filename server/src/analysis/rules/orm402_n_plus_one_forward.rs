//! ORM402 n-plus-one-forward: in a loop over a QuerySet, reading a foreign key or one-to-one
//! relation of the row (`entry.author.name`) runs one query per row unless the QuerySet joins it
//! with `select_related("author")`. The fix adds the lookup where the QuerySet is built. A
//! `GenericForeignKey` read (`action.target`) is the same per-row query, which only
//! `prefetch_related("target")` batches.

use tree_sitter::Node;

use super::{
    orm201_single_field_iteration, orm403_n_plus_one_reverse, Captures, Rule, RuleContext, RuleMeta,
};
use crate::analysis::diagnostic::{Fix, Severity};
use crate::analysis::index::{FieldKind, ModelId};
use crate::analysis::loops::{
    add_lookup, back_reference, construction_site, covers, per_row_loop, read_before_in_loop,
    RowLoop,
};
use crate::analysis::syntax::{
    field::{self, FieldOf},
    KindOf,
};

pub static RULE: Rule = Rule {
    meta: &RuleMeta {
        code: "ORM402",
        name: "n-plus-one-forward",
        severity: Severity::Warning,
    },
    query: include_str!("../../../../queries/orm402_n_plus_one_forward.scm"),
    check,
};

fn check<'a>(cx: &mut RuleContext<'_, 'a>, m: &Captures<'_, 'a>) {
    let (Some(access), Some(instance)) = (m.get("access"), m.get("instance")) else {
        return;
    };
    let parents = &cx.sem.parents;
    // Assigning a relation (`entry.author = user`) costs no query; nor does deleting it.
    let parent = parents.of(access);
    let written = parent.is_some_and(|p| {
        (matches!(p.kind_name(), "assignment" | "augmented_assignment")
            && p.field(&field::LEFT).is_some_and(|l| l.id() == access.id()))
            || p.kind_name() == "delete_statement"
    });
    if written || orm201_single_field_iteration::owns(cx.sem, cx.settings, access) {
        return;
    }
    let Some(row_loop) = per_row_loop(cx.sem, instance) else {
        return;
    };
    if let Some(field) = generic_foreign_key(cx, row_loop.model, access) {
        report_generic_foreign_key(cx, &row_loop, access, &field);
        return;
    }
    let Some((chain, read)) = forward_chain(cx, row_loop.model, access) else {
        return;
    };
    let lookup = chain.join("__");
    let qs = &row_loop.queryset;
    if covers(&qs.select_related, &lookup) || covers(&qs.prefetch_related, &lookup) {
        return;
    }
    // `child.parent` in a loop over `parent.children.all()` is `parent`, set on every row.
    if back_reference(cx.sem, row_loop.iterable, row_loop.model).is_some_and(|key| key == chain[0])
    {
        return;
    }
    if read_before_in_loop(cx.sem, &row_loop, read) {
        return;
    }
    let fix = construction_site(cx.sem, row_loop.iterable).map(|site| {
        let edit = add_lookup(cx.sem, site, "select_related", &lookup);
        Fix::safe(
            format!("Add `select_related(\"{lookup}\")` where the queryset is built"),
            vec![edit],
        )
    });
    let text = cx.sem.text(read);
    cx.report(
        read,
        format!("`{text}` runs a query for every row of the loop; add `select_related(\"{lookup}\")` where the queryset is built"),
        fix,
    );
}

/// The name of the `GenericForeignKey` that `access` reads on a row of `model`, if it reads one.
fn generic_foreign_key(cx: &RuleContext, model: ModelId, access: Node) -> Option<String> {
    let name = cx.sem.text(access.field(&field::ATTRIBUTE)?);
    let field = cx.sem.index().model(model).field(name)?;
    (field.kind == FieldKind::GenericForeignKey).then(|| name.to_string())
}

/// `row.target` in a loop: a query per row for the object it points at, which only
/// `prefetch_related("target")` loads for all rows at once (one query per content type).
fn report_generic_foreign_key<'a>(
    cx: &mut RuleContext<'_, 'a>,
    row_loop: &RowLoop<'a>,
    access: Node<'a>,
    name: &str,
) {
    if covers(&row_loop.queryset.prefetch_related, name)
        || read_before_in_loop(cx.sem, row_loop, access)
    {
        return;
    }
    orm403_n_plus_one_reverse::report_query_per_row(cx, row_loop, access, name);
}

/// The forward relations read from `access` (`entry.author` in `entry.author.profile.city`):
/// their names and the node of the deepest read. A last hop only read for its `id`/`pk` is left
/// out: ORM401 turns that into a column read.
fn forward_chain<'a>(
    cx: &RuleContext<'_, 'a>,
    model: ModelId,
    access: Node<'a>,
) -> Option<(Vec<String>, Node<'a>)> {
    let index = cx.sem.index();
    // (relation name, its read, whether its key column holds the related row's id)
    let mut chain: Vec<(String, Node<'a>, bool)> = Vec::new();
    let mut current_model = model;
    let mut node = access;
    loop {
        let name = node.field(&field::ATTRIBUTE).map(|a| cx.sem.text(a))?;
        let model = index.model(current_model);
        // Forward keys, and the reverse side of a one-to-one (`author.profile`): both load one
        // row that `select_related` can join.
        let (target, key_is_id) = match model.field(name) {
            Some(f) if matches!(f.kind, FieldKind::ForeignKey | FieldKind::OneToOne) => {
                (f.target, f.to_field.is_none())
            }
            Some(_) => (None, false),
            None => match model.reverse(name) {
                Some(r) if !r.many => (Some(r.source), false),
                _ => (None, false),
            },
        };
        let Some(target) = target else {
            if chain.is_empty() {
                return None;
            }
            // `entry.author.id`: the key is on the row already (ORM401's case).
            if matches!(name, "id" | "pk")
                && chain.last().is_some_and(|(_, _, key_is_id)| *key_is_id)
            {
                chain.pop();
            }
            break;
        };
        chain.push((name.to_string(), node, key_is_id));
        current_model = target;
        match cx.sem.parents.of(node) {
            Some(parent)
                if parent.kind_name() == "attribute"
                    && parent
                        .field(&field::OBJECT)
                        .is_some_and(|o| o.id() == node.id()) =>
            {
                node = parent;
            }
            _ => break,
        }
    }
    let (_, read, _) = *chain.last()?;
    Some((chain.into_iter().map(|(name, _, _)| name).collect(), read))
}
