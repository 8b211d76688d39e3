//! ORM301 create-in-loop: `M.objects.create(...)` (or `M(...).save()`) in a loop runs one INSERT
//! per object; `M.objects.bulk_create([M(...) for ...], batch_size=N)` inserts them in batches.

use tree_sitter::Node;

use super::{Captures, Rule, RuleContext, RuleMeta};
use crate::analysis::diagnostic::{Fix, Severity};
use crate::analysis::index::ModelId;
use crate::analysis::infer::{ModelRef, Semantics, Ty};
use crate::analysis::syntax::{
    as_receiver,
    field::{self, FieldOf},
    has_no_arguments, method_call, simple_assignment, strip_parens, KindOf,
};
use crate::analysis::writes::{
    body_statement, fix_unless, innermost_for, is_call_statement, names_bound_in, plain_body,
    read_outside_loop, replace_statements, save_hooks,
};

pub static RULE: Rule = Rule {
    meta: &RuleMeta {
        code: "ORM301",
        name: "create-in-loop",
        severity: Severity::Warning,
    },
    query: include_str!("../../../../queries/orm301_create_in_loop.scm"),
    check,
};

/// An object created in the loop: the model, how the file names its class and the manager to
/// insert through, and the constructor's arguments (`(title=row.x)`).
struct Created<'a> {
    model: ModelId,
    class: &'a str,
    manager: String,
    arguments: &'a str,
}

/// What the loop does with each created object.
enum Use<'a> {
    /// Nothing: `M.objects.create(...)` as a statement.
    Unused,
    /// `objs.append(M.objects.create(...))`, or `obj = ...` then `objs.append(obj)`: the fix
    /// keeps the list, `objs = M.objects.bulk_create([...])`.
    Collected { list: &'a str, via: Option<&'a str> },
}

fn check<'a>(cx: &mut RuleContext<'_, 'a>, m: &Captures<'_, 'a>) {
    let Some(call) = m.get("call") else {
        return;
    };
    let Some(created) = created(cx, call, m.get("instance")) else {
        return;
    };
    let Some(for_loop) = innermost_for(cx.sem, call) else {
        return;
    };
    let Some(used) = use_of(cx, call, for_loop) else {
        return;
    };
    if guarded_by_a_lookup(cx.sem, call, for_loop) {
        return;
    }
    let model = cx.sem.index().model(created.model);
    let what = match m.get("instance") {
        Some(_) => format!("{}(...).save", created.class),
        None => format!("{}.{}.create", created.class, created.manager),
    };
    if multi_table(cx.sem.index(), created.model, 0) {
        cx.report(
            call,
            format!("`{what}()` in a loop runs one INSERT per object; `bulk_create()` cannot replace it: {} uses multi-table inheritance", model.name),
            None,
        );
        return;
    }
    let fix = rewrite(cx, call, for_loop, &created, &used);
    cx.report(
        call,
        format!(
            "`{what}()` in a loop runs one INSERT per object; insert them with one `bulk_create()`"
        ),
        fix,
    );
}

/// The object `call` creates: `M.objects.create(...)` on a model's own manager (a relation's
/// manager also sets the relation, which `bulk_create()` would not), or `M(...).save()`.
fn created<'a>(
    cx: &RuleContext<'_, 'a>,
    call: Node<'a>,
    instance: Option<Node<'a>>,
) -> Option<Created<'a>> {
    let sem = cx.sem;
    let arguments = |c: Node<'a>| c.field(&field::ARGUMENTS).map(|a| sem.text(a));
    if let Some(instance) = instance {
        let class = instance.field(&field::FUNCTION)?;
        let Ty::ModelClass(ModelRef::Indexed(model)) = sem.ty(class) else {
            return None;
        };
        if !has_no_arguments(call) {
            return None;
        }
        let manager = sem.index().model(model).managers.first()?.name.clone();
        return Some(Created {
            model,
            class: sem.text(class),
            manager,
            arguments: arguments(instance)?,
        });
    }
    let (receiver, _) = method_call(call, sem.source)?;
    let Ty::Manager(manager) = sem.ty(receiver) else {
        return None;
    };
    let (false, Some(ModelRef::Indexed(model))) = (manager.related, manager.model) else {
        return None;
    };
    let class = receiver
        .field(&field::OBJECT)
        .filter(|o| sem.ty(*o) == Ty::ModelClass(ModelRef::Indexed(model)))?;
    Some(Created {
        model,
        class: sem.text(class),
        manager: sem.text(receiver.field(&field::ATTRIBUTE)?).to_string(),
        arguments: arguments(call)?,
    })
}

/// A create that runs only when a lookup found nothing (`if not ....exists():`, `except
/// M.DoesNotExist:`): ORM106's `get_or_create()` is the advice there, not a bulk insert.
fn guarded_by_a_lookup<'a>(sem: &Semantics<'a>, call: Node<'a>, for_loop: Node<'a>) -> bool {
    let mut node = call;
    while let Some(parent) = sem.parents.of(node) {
        if parent.id() == for_loop.id() {
            return false;
        }
        let guard = match parent.kind_name() {
            "except_clause" => return true,
            "if_statement" => parent.field(&field::CONDITION),
            _ => None,
        };
        if guard.is_some_and(|c| sem.text(c).contains(".exists()")) {
            return true;
        }
        node = parent;
    }
    false
}

/// How the loop uses the created object; `None` when it uses it for more than collecting it
/// (then the loop needs each object saved before going on, and the rule stays silent).
fn use_of<'a>(cx: &RuleContext<'_, 'a>, call: Node<'a>, for_loop: Node<'a>) -> Option<Use<'a>> {
    let sem = cx.sem;
    let parent = sem.parents.of(call)?;
    if parent.kind_name() == "expression_statement" {
        return Some(Use::Unused);
    }
    if let Some(list) = appended_to(cx, parent) {
        return Some(Use::Collected { list, via: None });
    }
    let statement = sem.parents.of(parent)?;
    let (name, value) = simple_assignment(statement)?;
    if value.id() != call.id() || name.kind_name() != "identifier" {
        return None;
    }
    let name = sem.text(name);
    // Every other read of the name in the loop must be `objs.append(name)`.
    let scope = sem.scope_of(call);
    let mut list = None;
    for read in scope.references(name) {
        if read.start_byte() < for_loop.start_byte() || read.end_byte() > for_loop.end_byte() {
            continue;
        }
        let appended = sem
            .parents
            .of(*read)
            .and_then(|args| appended_to(cx, args))?;
        if list.replace(appended).is_some() {
            return None;
        }
    }
    list.map(|list| Use::Collected {
        list,
        via: Some(name),
    })
}

/// The list `objs` when `arguments` are those of `objs.append(<one argument>)`.
fn appended_to<'a>(cx: &RuleContext<'_, 'a>, arguments: Node<'a>) -> Option<&'a str> {
    if arguments.kind_name() != "argument_list" || arguments.named_child_count() != 1 {
        return None;
    }
    let append = cx.sem.parents.of(arguments)?;
    let (list, "append") = method_call(append, cx.sem.source)? else {
        return None;
    };
    (list.kind_name() == "identifier").then(|| cx.sem.text(list))
}

/// `M.objects.bulk_create([M(...) for row in rows], batch_size=N)` in place of the loop (and of
/// the `objs = []` before it when the loop collects the objects).
fn rewrite<'a>(
    cx: &RuleContext<'_, 'a>,
    call: Node<'a>,
    for_loop: Node<'a>,
    created: &Created<'a>,
    used: &Use<'a>,
) -> Option<Fix> {
    let sem = cx.sem;
    let statements = plain_body(for_loop)?;
    let statement = body_statement(sem, for_loop, call);
    let (target, iterable) = (
        for_loop.field(&field::LEFT)?,
        for_loop.field(&field::RIGHT)?,
    );
    // After the loop its variables hold the last item; a comprehension binds nothing outside.
    let targets: Vec<&str> = names_bound_in(sem, for_loop);
    if targets.iter().any(|t| read_outside_loop(sem, for_loop, t)) {
        return None;
    }
    if sem.scope_of(for_loop).scope.kind_name() == "class_definition" {
        return None;
    }
    let comprehension = format!(
        "[{}{} for {} in {}]",
        created.class,
        created.arguments,
        sem.text(target),
        // `for x in a if c else b` reads differently inside a comprehension: parenthesised.
        as_receiver(strip_parens(iterable), sem.source),
    );
    let bulk = format!(
        "{}.{}.bulk_create({comprehension}, batch_size={})",
        created.class, created.manager, cx.settings.bulk_batch_size
    );
    if bulk.contains(['\n', '\r']) {
        return None;
    }
    let model = sem.index().model(created.model);
    let mut hazards = save_hooks(sem.index(), model);
    let (first, replacement) = match used {
        Use::Unused => {
            if statements.len() != 1 || !is_call_statement(statement, call) {
                return None;
            }
            (for_loop, bulk)
        }
        Use::Collected { list, via } => {
            let fits = match (via, statements.as_slice()) {
                (None, [only]) => only.id() == statement.id() && is_append(sem, *only),
                (Some(_), [assign, append]) => {
                    assign.id() == statement.id() && is_append(sem, *append)
                }
                _ => false,
            };
            if !fits {
                return None;
            }
            let before = for_loop.prev_named_sibling()?;
            let (name, value) = simple_assignment(before)?;
            if sem.text(name) != *list
                || value.kind_name() != "list"
                || value.named_child_count() != 0
            {
                return None;
            }
            if read_outside_loop(sem, for_loop, list) {
                hazards.push(
                    "the created objects get their pk only on PostgreSQL, MariaDB and SQLite 3.35+"
                        .to_string(),
                );
            }
            (before, format!("{list} = {bulk}"))
        }
    };
    let edit = replace_statements(sem, first, for_loop, &replacement)?;
    Some(fix_unless(
        format!("Replace the loop with `{replacement}`"),
        &hazards,
        vec![edit],
    ))
}

/// `objs.append(...)` as a statement of its own.
fn is_append(sem: &Semantics, statement: Node) -> bool {
    statement.kind_name() == "expression_statement"
        && statement
            .named_child(0)
            .and_then(|call| method_call(call, sem.source))
            .is_some_and(|(_, method)| method == "append")
}

/// Whether rows of `model` live in more than one table: a concrete model with concrete parents.
/// A proxy's rows are its concrete model's, so a proxy of a plain model bulk-creates fine.
fn multi_table(index: &crate::analysis::index::ModelIndex, model: usize, depth: usize) -> bool {
    let m = index.model(model);
    if !m.proxy {
        return !m.concrete_parents.is_empty();
    }
    depth < 8
        && m.concrete_parents
            .iter()
            .any(|parent| multi_table(index, *parent, depth + 1))
}
