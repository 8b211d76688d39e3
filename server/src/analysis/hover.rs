//! The inferred type of an expression, as shown by hover (and asserted by the inference tests),
//! and below a QuerySet's type the SQL it runs.

pub mod sql;

use std::ops::Range;

use tree_sitter::{Node, Tree};

use super::infer::{FileContext, Semantics};

/// The type of the expression spanning exactly `range`, e.g. `QuerySet[blog.Entry]`; `None` when
/// no expression spans it, `Some("Unknown")` when the analyzer does not know.
pub fn type_of_range(
    source: &str,
    tree: &Tree,
    file: &FileContext,
    range: Range<usize>,
) -> Option<String> {
    at_exact_range(source, tree, file, range, |sem, node| {
        sem.display(&sem.ty(node))
            .unwrap_or_else(|| "Unknown".to_string())
    })
}

/// The SQL the QuerySet spanning exactly `range` runs, as `sql::sql_of` gives it (the SQL
/// corpus test compares it with Django's).
pub fn sql_of_range(
    source: &str,
    tree: &Tree,
    file: &FileContext,
    range: Range<usize>,
    target: sql::Target,
) -> Option<Result<String, String>> {
    at_exact_range(source, tree, file, range, |sem, node| {
        sql::sql_of(sem, node, target)
    })
    .flatten()
}

/// `read` of the expression spanning exactly `range`; `None` when no expression spans it.
fn at_exact_range<T>(
    source: &str,
    tree: &Tree,
    file: &FileContext,
    range: Range<usize>,
    read: impl for<'a> FnOnce(&Semantics<'a>, Node<'a>) -> T,
) -> Option<T> {
    let node = tree
        .root_node()
        .descendant_for_byte_range(range.start, range.end)?;
    if node.byte_range() != range {
        return None;
    }
    let facts = file.facts(source, tree);
    let sem =
        Semantics::new(source, tree.root_node(), &file.index, &facts).with_program(&file.program);
    Some(read(&sem, node))
}

/// What hover renders SQL for until the settings' `ENGINE` and the installed Django are read:
/// PostgreSQL (the issue's default) on the newest release.
const HOVER_TARGET: sql::Target = sql::Target {
    dialect: sql::Dialect::Postgresql,
    release: sql::Release::Since5_2,
};

/// What hover shows at byte `offset`: the expression the cursor is on (`Entry`,
/// `Entry.objects`, `Entry.objects.filter(...)` when on `filter`) and, as Markdown, its type if
/// known and, for a QuerySet, the SQL it runs (or why that is not shown).
pub fn hover_at(
    source: &str,
    tree: &Tree,
    file: &FileContext,
    offset: usize,
) -> Option<(Range<usize>, String)> {
    let leaf = tree.root_node().descendant_for_byte_range(offset, offset)?;
    if leaf.kind() != "identifier" {
        return None;
    }
    let facts = file.facts(source, tree);
    let sem =
        Semantics::new(source, tree.root_node(), &file.index, &facts).with_program(&file.program);
    let node = hovered_expression(leaf, &sem);
    let shown = sem.display(&sem.ty(node))?;
    let mut markdown = format!("```text\n{shown}\n```");
    match sql::sql_of(&sem, node, HOVER_TARGET) {
        Some(Ok(sql)) => markdown.push_str(&format!(
            "\n```sql\n{sql}\n```\n*SQL as Django 5.2 prints it for {}*",
            HOVER_TARGET.dialect.name()
        )),
        Some(Err(reason)) => markdown.push_str(&format!("\n*SQL not shown: {reason}*")),
        None => {}
    }
    Some((node.byte_range(), markdown))
}

/// An attribute name stands for the attribute access; a method name for the call.
fn hovered_expression<'a>(leaf: Node<'a>, sem: &Semantics<'a>) -> Node<'a> {
    let Some(parent) = sem.parents.of(leaf) else {
        return leaf;
    };
    let is_attribute_name = parent.kind() == "attribute"
        && parent
            .child_by_field_name("attribute")
            .is_some_and(|a| a.id() == leaf.id());
    if !is_attribute_name {
        return leaf;
    }
    match sem.parents.of(parent) {
        Some(call)
            if call.kind() == "call"
                && call
                    .child_by_field_name("function")
                    .is_some_and(|f| f.id() == parent.id()) =>
        {
            call
        }
        _ => parent,
    }
}
