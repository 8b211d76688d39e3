//! ORM401 fk-id-through-relation: `entry.blog.id` loads the blog row (one query, unless it was
//! joined) to read a key `entry` already holds in its `blog_id` column.

use super::{orm201_single_field_iteration, Captures, Rule, RuleContext, RuleMeta};
use crate::analysis::diagnostic::{Applicability, Edit, Fix, Severity};
use crate::analysis::evaluation::{evaluated_before, evaluating_statement, rebound_between};
use crate::analysis::index::FieldKind;
use crate::analysis::infer::{ModelRef, Semantics, Ty};
use crate::analysis::loops::{back_reference, covers, row_loop};
use crate::analysis::syntax::{
    field::{self, FieldOf},
    is_truth_tested, strip_parens, KindOf,
};
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
    if is_written(cx.sem, access)
        || orm201_single_field_iteration::owns(cx.sem, cx.settings, access)
    {
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
        if n.kind_name() == "assignment"
            && n.field(&field::LEFT)
                .is_some_and(|l| cx.sem.text(l) == relation_access)
        {
            assigned = true;
        }
        !assigned
    });
    if assigned || already_loaded(cx.sem, access, instance, relation_name) {
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

/// Whether `access` is assigned to or deleted.
fn is_written<'a>(sem: &Semantics<'a>, access: Node<'a>) -> bool {
    sem.parents.of(access).is_some_and(|p| {
        matches!(p.kind_name(), "assignment" | "augmented_assignment")
            && p.field(&field::LEFT).is_some_and(|l| l.id() == access.id())
            || p.kind_name() == "delete_statement"
    })
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
    let own = access.field(&field::OBJECT).map(|o| o.id());
    let mut tests = Vec::new();
    let mut object_used = false;
    crate::analysis::syntax::walk(scope, |n| {
        if n.kind_name() == "attribute" && Some(n.id()) != own && sem.text(n) == relation_access {
            let key_read = sem.parents.of(n).is_some_and(|p| {
                p.kind_name() == "attribute"
                    && p.field(&field::ATTRIBUTE)
                        .is_some_and(|a| matches!(sem.text(a), "id" | "pk"))
            });
            let tested = is_truth_tested(n, sem.source, &sem.parents)
                || sem.parents.of(n).is_some_and(|p| {
                    p.kind_name() == "comparison_operator" && sem.text(p).contains("None")
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

/// Whether the relation is loaded already when `access` reads it. The instance is (a relation
/// of) a loop row whose QuerySet joins or prefetches the relation:
/// `period.indicator.result.project.id` in a loop over
/// `select_related("indicator__result__project")` reads a loaded object, as does `entry.blog.id`
/// in a loop over `blog.entry_set.all()`, whose rows Django gives `blog` itself. Or the instance
/// came with it from a caller, or a function called before has read it (see below).
fn already_loaded<'a>(
    sem: &Semantics<'a>,
    access: Node<'a>,
    instance: Node<'a>,
    relation: &str,
) -> bool {
    let mut path = vec![relation];
    let mut root = strip_parens(instance);
    while root.kind_name() == "attribute" {
        let (Some(object), Some(attribute)) =
            (root.field(&field::OBJECT), root.field(&field::ATTRIBUTE))
        else {
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
    // a loop over `records.select_related("alert")` hands `handle` its `alert` loaded; or with
    // an instance whose relation the caller has read before the call, which caches it there.
    let passed_loaded = || {
        sem.parameter_of(root).is_some_and(|parameter| {
            sem.arguments_passed_in_module(parameter)
                .into_iter()
                .any(|argument| {
                    argument.kind_name() == "identifier"
                        && (loaded_by_rows(argument) || read_before_the_call(sem, argument, &path))
                })
        })
    };
    loaded_by_rows(root) || passed_loaded() || read_by_a_callee(sem, access, root, &path)
}

/// Whether a call that has run whenever `access` runs (with `root`'s name not rebound since)
/// hands `root` to a function of this module whose body reads `param.<path>` first thing
/// (`self.re_run(record)` whose first statement reads `record.alert.signature`): the same
/// instance then holds the related object when `access` reads it.
fn read_by_a_callee<'a>(
    sem: &Semantics<'a>,
    access: Node<'a>,
    root: Node<'a>,
    path: &[&str],
) -> bool {
    if root.kind_name() != "identifier" {
        return false;
    }
    let name = sem.text(root);
    let scope = sem.scope_of(access);
    let mut found = false;
    crate::analysis::syntax::walk(scope.scope, |n| {
        if found || n.start_byte() >= access.start_byte() {
            return false;
        }
        if n.kind_name() == "identifier"
            && sem.text(n) == name
            && !rebound_between(&scope, &[name], n.end_byte(), access.start_byte())
        {
            found = sem
                .parents
                .of(n)
                .and_then(|holder| match holder.kind_name() {
                    "keyword_argument" => sem.parents.of(holder),
                    _ => Some(holder),
                })
                .filter(|list| list.kind_name() == "argument_list")
                .and_then(|list| sem.parents.of(list))
                .filter(|call| evaluated_before(*call, access, &sem.parents))
                .and_then(|call| sem.parameter_filled(call, n))
                .is_some_and(|parameter| read_first_thing(sem, parameter, path));
        }
        !found
    });
    found
}

/// Whether the function of `parameter` reads `parameter.<path>` every time it is called, before
/// anything in its body could return or raise. (Calling a generator or a coroutine function
/// runs none of its body.)
fn read_first_thing<'a>(sem: &Semantics<'a>, parameter: Node<'a>, path: &[&str]) -> bool {
    // The parameter's name, its `parameters` list (or a typed parameter first), the function.
    let mut function = parameter;
    for _ in 0..3 {
        match sem.parents.of(function) {
            Some(parent) => function = parent,
            None => return false,
        }
        if function.kind_name() == "function_definition" {
            break;
        }
    }
    let Some(body) = (function.kind_name() == "function_definition")
        .then(|| function.field(&field::BODY))
        .flatten()
    else {
        return false;
    };
    if sem.text(function).starts_with("async") || yields(body) {
        return false;
    }
    let relation_access = format!("{}.{}", sem.text(parameter), path.join("."));
    let scope = sem.scope_of(body);
    if !scope
        .bindings(sem.text(parameter))
        .iter()
        .all(|b| b.name.id() == parameter.id())
    {
        return false;
    }
    let mut cursor = body.walk();
    for statement in body.named_children(&mut cursor) {
        let mut read = false;
        let mut may_leave = false;
        crate::analysis::syntax::walk(statement, |n| {
            if matches!(
                n.kind_name(),
                "function_definition" | "lambda" | "class_definition"
            ) {
                return false;
            }
            may_leave |= matches!(n.kind_name(), "return_statement" | "raise_statement");
            read |= n.kind_name() == "attribute"
                && sem.text(n) == relation_access
                && evaluating_statement(n, &sem.parents).is_some_and(|s| s.id() == statement.id());
            !read
        });
        if read {
            return true;
        }
        if may_leave {
            return false;
        }
    }
    false
}

/// Whether `body` yields (outside functions defined in it): its function is a generator.
fn yields(body: Node) -> bool {
    let mut found = false;
    crate::analysis::syntax::walk(body, |n| {
        found |= n.kind_name() == "yield";
        !found
            && !matches!(
                n.kind_name(),
                "function_definition" | "lambda" | "class_definition"
            )
    });
    found
}

/// Whether the caller has read `argument.<path>` (`job.repository`) before passing `argument`,
/// on every path to the call, with the name not rebound since: the instance then holds that
/// relation in its cache.
fn read_before_the_call<'a>(sem: &Semantics<'a>, argument: Node<'a>, path: &[&str]) -> bool {
    let name = sem.text(argument);
    let relation_access = format!("{name}.{}", path.join("."));
    let scope = sem.scope_of(argument);
    let mut found = false;
    crate::analysis::syntax::walk(scope.scope, |n| {
        if found || n.start_byte() >= argument.start_byte() {
            return false;
        }
        found = n.kind_name() == "attribute"
            && sem.text(n) == relation_access
            && !is_written(sem, n)
            && evaluated_before(n, argument, &sem.parents)
            && !rebound_between(&scope, &[name], n.end_byte(), argument.start_byte());
        !found
    });
    found
}
