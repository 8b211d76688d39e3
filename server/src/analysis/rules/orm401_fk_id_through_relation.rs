//! ORM401 fk-id-through-relation: `entry.blog.id` loads the blog row (one query, unless it was
//! joined) to read a key `entry` already holds in its `blog_id` column.

use super::{orm201_single_field_iteration, Captures, Rule, RuleContext, RuleMeta};
use crate::analysis::diagnostic::{Applicability, Edit, Fix, Severity};
use crate::analysis::index::FieldKind;
use crate::analysis::infer::{ModelRef, Semantics, Ty};
use crate::analysis::loops::{back_reference, covers, row_loop};
use crate::analysis::syntax::{is_truth_tested, strip_parens};
use tree_sitter::Node;

pub static RULE: Rule = Rule {
    meta: &RuleMeta {
        code: "ORM401",
        name: "fk-id-through-relation",
        severity: Severity::Warning,
    },
    query: include_str!("../../../../queries/orm401_fk_id_through_relation.scm"),
    check,
};

fn check<'a>(cx: &mut RuleContext<'_, 'a>, m: &Captures<'_, 'a>) {
    let (Some(access), Some(instance), Some(relation)) =
        (m.get("access"), m.get("instance"), m.get("relation"))
    else {
        return;
    };
    // Writing `entry.blog.id = ...` changes the blog object; `blog_id` would be another thing.
    let written = cx.sem.parents.of(access).is_some_and(|p| {
        matches!(p.kind(), "assignment" | "augmented_assignment")
            && p.child_by_field_name("left")
                .is_some_and(|l| l.id() == access.id())
            || p.kind() == "delete_statement"
    });
    if written || orm201_single_field_iteration::owns(cx.sem, cx.settings, access) {
        return;
    }
    let Ty::Instance(ModelRef::Indexed(model)) = cx.sem.ty(instance) else {
        return;
    };
    let relation_name = cx.sem.text(relation);
    let Some(field) = cx.sem.index().model(model).field(relation_name) else {
        return;
    };
    // With `to_field`, `<name>_id` holds that field's value, not the related row's key. A
    // target the index could not pin down (an ambiguous string reference) leaves it unsure.
    if !matches!(field.kind, FieldKind::ForeignKey | FieldKind::OneToOne)
        || field.to_field.is_some()
        || field.target.is_none()
    {
        return;
    }
    // After `entry.blog = Blog(...)`, the object may be saved later: `entry.blog.id` is then set
    // while `entry.blog_id` stays empty. Whoever assigns the relation in this scope keeps it.
    let relation_access = format!("{}.{relation_name}", cx.sem.text(instance));
    let scope = cx.sem.scope_of(access);
    let mut assigned = false;
    crate::analysis::syntax::walk(scope.scope, |n| {
        if n.kind() == "assignment"
            && n.child_by_field_name("left")
                .is_some_and(|l| cx.sem.text(l) == relation_access)
        {
            assigned = true;
        }
        !assigned
    });
    if assigned || joined_by_the_loop(cx.sem, instance, relation_name) {
        return;
    }
    let Some(tests) = key_only_tests(cx.sem, scope.scope, access, &relation_access) else {
        return;
    };
    let written_access = cx.sem.text(access);
    let replacement = format!("{}.{relation_name}_id", cx.sem.text(instance));
    let mut edits = vec![Edit::replace(access.byte_range(), &replacement)];
    edits.extend(
        tests
            .iter()
            .map(|t| Edit::replace(t.byte_range(), &replacement)),
    );
    let (message, title) = if tests.is_empty() {
        (
            format!("`{written_access}` loads the related row to read a key the instance already has; use `{replacement}`"),
            format!("Replace with `{replacement}`"),
        )
    } else {
        (
            format!("`{relation_access}` is loaded only to be tested and to read its key; use `{replacement}` for both"),
            format!("Replace `{relation_access}` with `{replacement}` in the test and here"),
        )
    };
    // `entry.blog.id` raises when the key is empty; `entry.blog_id` is `None` there: the same
    // only for a key that cannot be NULL, or a read under a test of the relation.
    let fix = if field.may_be_null && tests.is_empty() {
        Fix {
            title: format!("{title} (`{written_access}` raises when the key is empty, `{replacement}` gives None)"),
            applicability: Applicability::Unsafe,
            edits,
        }
    } else {
        Fix::safe(title, edits)
    };
    cx.report(access, message, Some(fix));
}

/// The other reads of the relation in the scope: `None` when one uses the related object itself
/// (`entry.blog.name`, `render(entry.blog)`): it is loaded anyway, and `.id` then reads it from
/// the cache. Otherwise the truth tests and `None` checks among them (`if entry.blog:`), which
/// load the row only to test it: `blog_id` serves them as well. (`.pk` reads are findings of
/// their own.)
fn key_only_tests<'a>(
    sem: &Semantics<'a>,
    scope: Node<'a>,
    access: Node<'a>,
    relation_access: &str,
) -> Option<Vec<Node<'a>>> {
    let own = access.child_by_field_name("object").map(|o| o.id());
    let mut tests = Vec::new();
    let mut object_used = false;
    crate::analysis::syntax::walk(scope, |n| {
        if n.kind() == "attribute" && Some(n.id()) != own && sem.text(n) == relation_access {
            let key_read = sem.parents.of(n).is_some_and(|p| {
                p.kind() == "attribute"
                    && p.child_by_field_name("attribute")
                        .is_some_and(|a| matches!(sem.text(a), "id" | "pk"))
            });
            let tested = is_truth_tested(n, sem.source, &sem.parents)
                || sem.parents.of(n).is_some_and(|p| {
                    p.kind() == "comparison_operator" && sem.text(p).contains("None")
                });
            if tested {
                tests.push(n);
            }
            object_used |= !key_read && !tested;
        }
        !object_used
    });
    (!object_used).then_some(tests)
}

/// Whether the instance is (a relation of) a loop row whose QuerySet joins or prefetches the
/// relation: `period.indicator.result.project.id` in a loop over
/// `select_related("indicator__result__project")` reads a loaded object, as does `entry.blog.id`
/// in a loop over `blog.entry_set.all()`, whose rows Django gives `blog` itself.
fn joined_by_the_loop<'a>(sem: &Semantics<'a>, instance: Node<'a>, relation: &str) -> bool {
    let mut path = vec![relation];
    let mut root = strip_parens(instance);
    while root.kind() == "attribute" {
        let (Some(object), Some(attribute)) = (
            root.child_by_field_name("object"),
            root.child_by_field_name("attribute"),
        ) else {
            return false;
        };
        path.push(sem.text(attribute));
        root = strip_parens(object);
    }
    path.reverse();
    let lookup = path.join("__");
    let loaded_by_rows = |row: Node<'a>| {
        row_loop(sem, row).is_some_and(|rows| {
            covers(&rows.queryset.select_related, &lookup)
                || covers(&rows.queryset.prefetch_related, &lookup)
                || back_reference(sem, rows.iterable, rows.model).is_some_and(|key| key == lookup)
        })
    };
    // A parameter that a call in this module fills with such a row: `self.handle(record)` in
    // a loop over `records.select_related("alert")` hands `handle` its `alert` loaded.
    let passed_rows = || {
        sem.parameter_of(root).is_some_and(|parameter| {
            sem.arguments_passed_in_module(parameter)
                .into_iter()
                .any(|argument| argument.kind() == "identifier" && loaded_by_rows(argument))
        })
    };
    loaded_by_rows(root) || passed_rows()
}
