//! ORM306 m2m-write-in-loop: `group.permissions.add(p)` for each `p` writes the relation one row
//! (and one `m2m_changed` pair) per iteration; `group.permissions.add(*perms)` writes them all at
//! once. With the other side fixed (`g.permissions.add(perm)` for each group), the reverse
//! accessor does the same: `perm.group_set.add(*groups)`.

use tree_sitter::Node;

use super::{Captures, Rule, RuleContext, RuleMeta};
use crate::analysis::diagnostic::{Applicability, Fix, Severity};
use crate::analysis::index::{FieldKind, ModelId};
use crate::analysis::infer::{ModelRef, Semantics, Ty};
use crate::analysis::syntax::{
    as_receiver,
    field::{self, FieldOf},
    strip_parens, KindOf,
};
use crate::analysis::writes::{
    fix_unless, innermost_for, is_call_statement, model_class_name, names_bound_in, plain_body,
    read_outside_loop, replace_loop,
};

pub static RULE: Rule = Rule {
    meta: &RuleMeta {
        code: "ORM306",
        name: "m2m-write-in-loop",
        severity: Severity::Warning,
    },
    query: include_str!("../../../../queries/orm306_m2m_write_in_loop.scm"),
    check,
};

/// A many-to-many relation seen from one side: the model that declares the field, the field,
/// and the model it points to.
struct ManyToMany {
    source: ModelId,
    field: String,
    target: ModelId,
}

fn check<'a>(cx: &mut RuleContext<'_, 'a>, m: &Captures<'_, 'a>) {
    let (Some(call), Some(owner), Some(relation), Some(manager), Some(argument)) = (
        m.get("call"),
        m.get("owner"),
        m.get("relation"),
        m.get("manager"),
        m.get("argument"),
    ) else {
        return;
    };
    let sem = cx.sem;
    if matches!(
        argument.kind_name(),
        "keyword_argument" | "list_splat" | "dictionary_splat"
    ) {
        return;
    }
    let Ty::Manager(related) = sem.ty(manager) else {
        return;
    };
    let (true, Ty::Instance(ModelRef::Indexed(owner_model))) = (related.related, sem.ty(owner))
    else {
        return;
    };
    let Some(for_loop) = innermost_for(sem, call) else {
        return;
    };
    let bound = names_bound_in(sem, for_loop);
    let (owner_varies, argument_varies) = (
        may_vary(sem, owner, &bound),
        may_vary(sem, argument, &bound),
    );
    if owner_varies == argument_varies {
        return;
    }
    let Some(method) = m.get("method").map(|n| sem.text(n)) else {
        return;
    };
    let relation_name = sem.text(relation);
    if many_to_many(cx, owner_model, relation_name).is_some_and(|m2m| !manager_takes_many(cx, &m2m))
    {
        return;
    }
    let write = RelationWrite {
        call,
        owner,
        argument,
        manager,
        method,
        relation: relation_name,
        owner_model,
        owner_varies,
    };
    let written = format!("{}.{method}()", sem.text(manager));
    let fix = rewrite(cx, &write, for_loop);
    cx.report(
        call,
        format!("`{written}` in a loop writes the relation one row at a time; pass all the objects to one call"),
        fix,
    );
}

/// One `add()`/`remove()` call in a loop: `owner.relation.method(argument)`.
struct RelationWrite<'a> {
    call: Node<'a>,
    owner: Node<'a>,
    argument: Node<'a>,
    manager: Node<'a>,
    method: &'a str,
    relation: &'a str,
    owner_model: ModelId,
    /// The owner changes from one iteration to the next (then the argument does not).
    owner_varies: bool,
}

/// One call in place of the loop, when the loop only makes this write for each item.
fn rewrite<'a>(
    cx: &RuleContext<'_, 'a>,
    write: &RelationWrite<'a>,
    for_loop: Node<'a>,
) -> Option<Fix> {
    let sem = cx.sem;
    let target = loop_target(sem, for_loop)?;
    let [statement] = plain_body(for_loop)?[..] else {
        return None;
    };
    if !is_call_statement(statement, write.call) || read_outside_loop(sem, for_loop, target) {
        return None;
    }
    let iterable = for_loop.field(&field::RIGHT)?;
    let items = as_receiver(strip_parens(iterable), sem.source);
    let method = write.method;
    if !write.owner_varies {
        // The owner is fixed: pass every item to one call.
        if sem.text(write.argument) != target {
            return None;
        }
        let m2m = many_to_many(cx, write.owner_model, write.relation);
        let replacement = format!("{}.{method}(*{items})", sem.text(write.manager));
        return one_call(cx, for_loop, &replacement, m2m.as_ref());
    }
    if sem.text(write.owner) != target {
        return None;
    }
    let m2m = many_to_many(cx, write.owner_model, write.relation)?;
    // A relation to its own model is symmetrical unless declared otherwise, which the index
    // does not record: which side is which is not known.
    if m2m.source == m2m.target {
        return None;
    }
    // The item is fixed and the owners vary: the other side of the relation, in one call.
    let forward = m2m.source == write.owner_model;
    let other_side = if forward { m2m.target } else { m2m.source };
    if sem.ty(write.argument) != Ty::Instance(ModelRef::Indexed(other_side)) {
        return None;
    }
    let item = as_receiver(write.argument, sem.source);
    let accessor = if forward {
        sem.index()
            .model(m2m.target)
            .reverse
            .iter()
            .find(|r| r.source == m2m.source && r.field == m2m.field)
            .map(|r| r.name.clone())
    } else {
        Some(m2m.field.clone())
    };
    match accessor {
        Some(accessor) => {
            let replacement = format!("{item}.{accessor}.{method}(*{items})");
            one_call(cx, for_loop, &replacement, Some(&m2m))
        }
        None if method == "add" => through_rows(cx, for_loop, &m2m, iterable, target, &item),
        None => None,
    }
}

/// The loop's variable, when it is one name.
fn loop_target<'a>(sem: &Semantics<'a>, for_loop: Node<'a>) -> Option<&'a str> {
    let target = for_loop.field(&field::LEFT)?;
    (target.kind_name() == "identifier").then(|| sem.text(target))
}

/// Whether `node` may be another object on each iteration: it reads a name the loop binds, or
/// calls something, which may return another object each time (`next(items)`,
/// `Tag.objects.create(...)`). Only what is fixed can go into one call for the whole loop.
fn may_vary(sem: &Semantics, node: Node, bound: &[&str]) -> bool {
    let mut calls = false;
    crate::analysis::syntax::walk(node, |n| {
        calls |= n.kind_name() == "call";
        !calls
    });
    calls || reads_any(sem, node, bound)
}

/// Whether `node` reads one of `names`.
fn reads_any(sem: &Semantics, node: Node, names: &[&str]) -> bool {
    let mut pending = vec![node];
    while let Some(n) = pending.pop() {
        match n.kind_name() {
            "identifier" if names.contains(&sem.text(n)) => return true,
            // `x.name` reads `x`; `f(name=x)` reads `x`: the names themselves are not reads.
            "attribute" => pending.extend(n.field(&field::OBJECT)),
            "keyword_argument" => pending.extend(n.field(&field::VALUE)),
            _ => {
                let mut cursor = n.walk();
                pending.extend(n.named_children(&mut cursor));
            }
        }
    }
    false
}

/// The many-to-many relation `relation` of `model`: its own field, or the reverse accessor of
/// another model's field. `None` for a foreign key's reverse manager.
fn many_to_many(cx: &RuleContext, model: ModelId, relation: &str) -> Option<ManyToMany> {
    let index = cx.sem.index();
    if let Some(field) = index.model(model).field(relation) {
        if field.kind != FieldKind::ManyToMany {
            return None;
        }
        return Some(ManyToMany {
            source: model,
            field: relation.to_string(),
            target: field.target?,
        });
    }
    let reverse = index.model(model).reverse(relation)?;
    let field = index.model(reverse.source).field(&reverse.field)?;
    (field.kind == FieldKind::ManyToMany).then(|| ManyToMany {
        source: reverse.source,
        field: reverse.field.clone(),
        target: model,
    })
}

/// Whether the relation's managers are known to take several objects in one `add()`/`remove()`:
/// those of Django's field and of the packages' fields that keep its managers' signature
/// (modelcluster, taggit, sortedm2m, which adds them in the order given). A field class of the
/// project (or of an unknown package) may bring a manager of its own that refuses them (awx's
/// `OrderedManyToManyField` raises, to keep its positions): one call is no advice there.
fn manager_takes_many(cx: &RuleContext, m2m: &ManyToMany) -> bool {
    let Some(field) = cx.sem.index().model(m2m.source).field(&m2m.field) else {
        return false;
    };
    let class = field.class.rsplit('.').next().unwrap_or(&field.class);
    matches!(
        class,
        "ManyToManyField" | "ParentalManyToManyField" | "TaggableManager" | "SortedManyToManyField"
    )
}

/// The loop replaced by one `add(*items)`/`remove(*items)`: safe unless `m2m_changed` receivers
/// may count on one signal per object.
fn one_call<'a>(
    cx: &RuleContext<'_, 'a>,
    for_loop: Node<'a>,
    replacement: &str,
    m2m: Option<&ManyToMany>,
) -> Option<Fix> {
    let edit = replace_loop(cx.sem, for_loop, replacement)?;
    // A foreign key's reverse manager (`m2m` is `None`) updates the rows in one query either way.
    let hazards: Vec<String> = match m2m {
        Some(m2m) if cx.sem.index().m2m_receivers_for(&m2m.field) => {
            vec!["m2m_changed receivers then run once for all the objects".to_string()]
        }
        _ => Vec::new(),
    };
    Some(fix_unless(
        format!("Replace the loop with `{replacement}`"),
        &hazards,
        vec![edit],
    ))
}

/// No reverse accessor (`related_name="+"`): the rows of the relation's table, inserted in one
/// `bulk_create()` that skips rows already there. It sends no `m2m_changed`: always unsafe.
fn through_rows<'a>(
    cx: &RuleContext<'_, 'a>,
    for_loop: Node<'a>,
    m2m: &ManyToMany,
    iterable: Node<'a>,
    target: &str,
    item: &str,
) -> Option<Fix> {
    let sem = cx.sem;
    let index = sem.index();
    // A custom through model has columns of its own (and maybe more required ones).
    if index.model(m2m.source).field(&m2m.field)?.custom_through {
        return None;
    }
    let class = model_class_name(sem, iterable, m2m.source)?;
    // Django names the columns of an automatic through table after the two models.
    let source_column = format!("{}_id", index.model(m2m.source).name.to_lowercase());
    let target_column = format!("{}_id", index.model(m2m.target).name.to_lowercase());
    let through = format!("{class}.{}.through", m2m.field);
    let replacement = format!(
        "{through}.objects.bulk_create([{through}({source_column}={target}.pk, {target_column}={item}.pk) for {target} in {}], ignore_conflicts=True)",
        as_receiver(strip_parens(iterable), sem.source)
    );
    let edit = replace_loop(sem, for_loop, &replacement)?;
    Some(Fix {
        title: format!(
            "Replace the loop with `{replacement}` (unsafe: bulk_create() sends no m2m_changed)"
        ),
        applicability: Applicability::Unsafe,
        edits: vec![edit],
    })
}
