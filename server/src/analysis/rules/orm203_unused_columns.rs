//! ORM203 unused-columns: a loop that reads two columns of a model with twenty still loads all
//! twenty for every row. When the rows never leave the loop, `.only(...)` loads just those.

use tree_sitter::Node;

use super::{Captures, Rule, RuleContext, RuleMeta};
use crate::analysis::diagnostic::{Applicability, Fix, Severity};
use crate::analysis::evaluation::other_evaluations;
use crate::analysis::index::{FieldKind, ModelId};
use crate::analysis::infer::{ModelRef, Semantics, Ty};
use crate::analysis::loops::{
    add_argument, construction_site, may_read_prefetch_cache, quote_style,
};
use crate::analysis::syntax::{
    field::{self, FieldOf},
    strip_parens, walk, KindOf,
};

pub static RULE: Rule = Rule {
    meta: &RuleMeta {
        code: "ORM203",
        name: "unused-columns",
        severity: Severity::Info,
    },
    query: include_str!("../../../../queries/orm203_unused_columns.scm"),
    check,
};

/// Models with fewer columns than this are cheap enough to load whole.
const MIN_COLUMNS: usize = 8;
/// Loops that read more columns than this are not "a few".
const MAX_READ: usize = 3;

fn check<'a>(cx: &mut RuleContext<'_, 'a>, m: &Captures<'_, 'a>) {
    let (Some(for_loop), Some(target), Some(iterable), Some(body)) = (
        m.get("loop"),
        m.get("target"),
        m.get("iterable"),
        m.get("body"),
    ) else {
        return;
    };
    let sem = cx.sem;
    let model = match sem.ty(iterable) {
        Ty::QuerySet(qs)
            if !qs.values && !qs.combined && qs.only.is_none() && qs.defer.is_empty() =>
        {
            match qs.model {
                Some(ModelRef::Indexed(model)) => model,
                _ => return,
            }
        }
        _ => return,
    };
    let inner = strip_parens(iterable);
    if inner.kind_name() == "identifier" && other_evaluations(sem, inner).any() {
        return;
    }
    // `only()` on `x.rel.all()` runs a query of its own where a prefetch filled the cache.
    if may_read_prefetch_cache(sem, iterable) {
        return;
    }
    let columns = sem
        .index()
        .model(model)
        .fields
        .iter()
        .filter(|f| {
            matches!(
                f.kind,
                FieldKind::Concrete | FieldKind::ForeignKey | FieldKind::OneToOne
            )
        })
        .count();
    if columns < MIN_COLUMNS || collects_one_column(sem, body) {
        return;
    }
    let Some(read) = columns_read(sem, model, sem.text(target), for_loop, body) else {
        return;
    };
    let loaded: Vec<&String> = read
        .iter()
        .filter(|c| !matches!(c.as_str(), "pk" | "id"))
        .collect();
    if loaded.is_empty() || read.len() > MAX_READ {
        return;
    }
    let quote = quote_style(sem, iterable);
    let arguments: Vec<String> = loaded
        .iter()
        .map(|c| format!("{quote}{c}{quote}"))
        .collect();
    let arguments = arguments.join(", ");
    let fix = construction_site(sem, iterable).map(|site| Fix {
        title: format!("Load only {arguments} where the queryset is built (unsafe: other code that reads another field of these rows loads it with one query per row)"),
        applicability: Applicability::Unsafe,
        edits: vec![add_argument(sem, site, "only", &arguments)],
    });
    cx.report(
        iterable,
        format!("The loop reads {} of {columns} columns of every row; load only those with `only({arguments})`", read.len()),
        fix,
    );
}

/// The columns read through `name` in the loop, when every use of `name` there is such a read
/// and the name is not read after the loop (the rows escape nowhere).
fn columns_read<'a>(
    sem: &Semantics<'a>,
    model: ModelId,
    name: &str,
    for_loop: Node<'a>,
    body: Node<'a>,
) -> Option<Vec<String>> {
    let scope = sem.scope_of(body);
    let used_after = scope
        .references(name)
        .iter()
        .any(|r| r.start_byte() >= for_loop.end_byte());
    if used_after {
        return None;
    }
    let fields = sem.index().model(model);
    let mut read: Vec<String> = Vec::new();
    let mut other_use = false;
    walk(body, |n| {
        if n.kind_name() != "identifier" || sem.text(n) != name {
            return !other_use;
        }
        let column = sem
            .parents
            .of(n)
            .filter(|p| {
                p.kind_name() == "attribute"
                    && p.field(&field::OBJECT).is_some_and(|o| o.id() == n.id())
                    && !is_written(sem, *p)
            })
            .and_then(|p| p.field(&field::ATTRIBUTE))
            .map(|a| sem.text(a))
            .and_then(|attribute| {
                let is_column = matches!(attribute, "pk" | "id")
                    || fields
                        .field(attribute)
                        .is_some_and(|f| f.kind == FieldKind::Concrete);
                if is_column {
                    return Some(attribute.to_string());
                }
                let relation = attribute.strip_suffix("_id")?;
                fields
                    .field(relation)
                    .filter(|f| matches!(f.kind, FieldKind::ForeignKey | FieldKind::OneToOne))
                    .map(|_| relation.to_string())
            });
        match column {
            Some(c) if !read.contains(&c) => read.push(c),
            Some(_) => {}
            None => other_use = true,
        }
        !other_use
    });
    (!other_use).then_some(read)
}

fn is_written<'a>(sem: &Semantics<'a>, attribute: Node<'a>) -> bool {
    sem.parents.of(attribute).is_some_and(|p| {
        (matches!(p.kind_name(), "assignment" | "augmented_assignment")
            && p.field(&field::LEFT)
                .is_some_and(|l| l.id() == attribute.id()))
            || p.kind_name() == "delete_statement"
    })
}

/// `for row in rows: names.append(row.title)`: ORM201's loop (`values_list()`).
fn collects_one_column(sem: &Semantics, body: Node) -> bool {
    let mut cursor = body.walk();
    let statements: Vec<Node> = body
        .named_children(&mut cursor)
        .filter(|s| s.kind_name() != "comment")
        .collect();
    let [statement] = statements.as_slice() else {
        return false;
    };
    let text = sem.text(*statement);
    statement.kind_name() == "expression_statement"
        && (text.contains(".append(") || text.contains(".add("))
}
