//! ORM205 deferred-field-access: in a loop over `qs.only("title")` (or `qs.defer("body")`),
//! reading a column the QuerySet left out loads it with one query per row. Load it with the
//! rows instead: add it to `only()` (or take it out of `defer()`) where the QuerySet is built.

use tree_sitter::Node;

use super::{Captures, Rule, RuleContext, RuleMeta};
use crate::analysis::diagnostic::{Edit, Fix, Severity};
use crate::analysis::index::{string_value, FieldKind, ModelId};
use crate::analysis::infer::{Semantics, Ty};
use crate::analysis::loops::{add_lookup, construction_site, per_row_loop, read_before_in_loop};
use crate::analysis::syntax::{
    field::{self, FieldOf},
    method_call, strip_parens, KindOf,
};

pub static RULE: Rule = Rule {
    meta: &RuleMeta {
        code: "ORM205",
        name: "deferred-field-access",
        severity: Severity::Warning,
    },
    query: include_str!("../../../../queries/orm205_deferred_field_access.scm"),
    check,
};

fn check<'a>(cx: &mut RuleContext<'_, 'a>, m: &Captures<'_, 'a>) {
    let (Some(access), Some(instance), Some(field)) =
        (m.get("access"), m.get("instance"), m.get("field"))
    else {
        return;
    };
    let sem = cx.sem;
    // `row.title = ...` sets the attribute: no load.
    let written = sem.parents.of(access).is_some_and(|p| {
        matches!(p.kind_name(), "assignment" | "augmented_assignment")
            && p.field(&field::LEFT).is_some_and(|l| l.id() == access.id())
    });
    if written {
        return;
    }
    let Some(row_loop) = per_row_loop(sem, instance) else {
        return;
    };
    let qs = &row_loop.queryset;
    if qs.only.is_none() && qs.defer.is_empty() {
        return;
    }
    let Some(column) = column_field(sem, row_loop.model, sem.text(field)) else {
        return;
    };
    // A foreign key's column is named either way: `only("author_id")` loads `author`'s key.
    let names_column = |f: &String| *f == column || f.strip_suffix("_id") == Some(&column);
    let left_out_by_only = qs
        .only
        .as_ref()
        .is_some_and(|only| !only.iter().any(names_column));
    let deferred = qs.defer.iter().any(names_column);
    if !(left_out_by_only || deferred) || read_before_in_loop(sem, &row_loop, access) {
        return;
    }
    let fix = construction_site(sem, row_loop.iterable).and_then(|site| {
        // A new `only()` would replace the fields of one the chain does not show.
        let edit = if left_out_by_only && !deferred && chain_calls(sem, site, "only") {
            add_lookup(sem, site, "only", &column)
        } else if deferred && qs.only.is_none() {
            undefer(sem, site, &column)?
        } else {
            return None;
        };
        let title = if left_out_by_only {
            format!("Add \"{column}\" to `only()` where the queryset is built")
        } else {
            format!("Take \"{column}\" out of `defer()` where the queryset is built")
        };
        Some(Fix::safe(title, vec![edit]))
    });
    let text = sem.text(access);
    cx.report(
        access,
        format!("`{text}` reads a column the queryset defers: one query per row; load `{column}` with the rows"),
        fix,
    );
}

/// The field whose column `attribute` reads on `model`: a concrete field, or `author` for
/// `author_id`. Not the primary key (always loaded) nor a relation object.
fn column_field(sem: &Semantics, model: ModelId, attribute: &str) -> Option<String> {
    let model = sem.index().model(model);
    if let Some(field) = model.field(attribute) {
        return (field.kind == FieldKind::Concrete).then(|| attribute.to_string());
    }
    let relation = attribute.strip_suffix("_id")?;
    model
        .field(relation)
        .filter(|f| matches!(f.kind, FieldKind::ForeignKey | FieldKind::OneToOne))
        .map(|_| relation.to_string())
}

/// The edit that takes `column` out of the `defer()` call of the chain at `site` (the whole
/// call when it defers nothing else). `None` when that call is not in the chain.
fn undefer<'a>(sem: &Semantics<'a>, site: Node<'a>, column: &str) -> Option<Edit> {
    let mut node = site;
    while let Some((receiver, method)) = method_call(node, sem.source) {
        if method == "defer" {
            let arguments = node.field(&field::ARGUMENTS)?;
            let mut cursor = arguments.walk();
            let all: Vec<Node> = arguments.named_children(&mut cursor).collect();
            if let Some(i) = all
                .iter()
                .position(|a| string_value(*a, sem.source).as_deref() == Some(column))
            {
                // `Entry.objects.defer("body")` keeps a call: a manager is not iterable.
                let on_manager = matches!(sem.ty(receiver), Ty::Manager(_));
                return Some(if all.len() == 1 && on_manager {
                    let name = node.field(&field::FUNCTION)?.field(&field::ATTRIBUTE)?;
                    Edit::replace(name.start_byte()..node.end_byte(), "all()")
                } else if all.len() == 1 {
                    Edit::replace(receiver.end_byte()..node.end_byte(), "")
                } else if i + 1 < all.len() {
                    Edit::replace(all[i].start_byte()..all[i + 1].start_byte(), "")
                } else {
                    Edit::replace(all[i - 1].end_byte()..all[i].end_byte(), "")
                });
            }
        }
        node = strip_parens(receiver);
    }
    None
}

/// Whether the call chain at `site` itself calls `method`.
fn chain_calls(sem: &Semantics, site: Node, method: &str) -> bool {
    let mut node = site;
    while let Some((receiver, name)) = method_call(node, sem.source) {
        if name == method {
            return true;
        }
        node = strip_parens(receiver);
    }
    false
}
