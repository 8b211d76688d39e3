//! The inferred type of an expression, as shown by hover (and asserted by the inference tests),
//! and below a QuerySet's type the SQL it runs.

pub mod sql;

use std::ops::Range;

use tree_sitter::{Node, Tree};

use super::infer::{FileContext, ModelRef, Semantics, Ty};
use super::Diagnostic;
use crate::analysis::syntax::{
    field::{self, FieldOf},
    KindOf,
};
use crate::settings::Settings;

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

/// The SQL each QuerySet spanning exactly one of `ranges` runs, as `sql::sql_of` gives it (the
/// SQL corpus test compares it with Django's), read with one analysis of the file.
pub fn sql_of_ranges(
    source: &str,
    tree: &Tree,
    file: &FileContext,
    ranges: &[Range<usize>],
    target: sql::Target,
) -> Vec<Option<Result<String, String>>> {
    let facts = file.facts(source, tree);
    let sem =
        Semantics::new(source, tree.root_node(), &file.index, &facts).with_program(&file.program);
    ranges
        .iter()
        .map(|range| {
            let node = tree
                .root_node()
                .descendant_for_byte_range(range.start, range.end)
                .filter(|node| node.byte_range() == *range)?;
            sql::sql_of(&sem, node, target)
        })
        .collect()
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

/// Whose SQL hover (and a code lens's list of queries) shows: the dialect of the `ENGINE` the
/// settings modules name, else the `sql-dialect` setting, as the Django release of
/// `django_release` prints it. `Err` names a backend or release that is not rendered.
pub fn sql_target(file: &FileContext, settings: &Settings) -> Result<sql::Target, String> {
    let dialect = match file.index.database_engine() {
        Some(engine) => sql::Dialect::of_engine(engine)?,
        None => settings.sql_dialect,
    };
    let release = match django_release(file, settings) {
        (major, minor) if (major, minor) < (4, 2) => {
            return Err(format!(
                "SQL is rendered as Django 4.2 and later print it, not {major}.{minor}"
            ))
        }
        version if version < (5, 2) => sql::Release::Before5_2,
        _ => sql::Release::Since5_2,
    };
    Ok(sql::Target { dialect, release })
}

/// The Django release SQL is rendered for: the one installed in the project's virtualenv, else
/// the one the `target-django` setting names.
fn django_release(file: &FileContext, settings: &Settings) -> (u32, u32) {
    file.index
        .django_version()
        .unwrap_or(settings.target_django)
}

/// The footnote under SQL shown: the release it is rendered as (5.2 for a newer one, the
/// newest rendered) and the dialect.
fn printed_by(file: &FileContext, settings: &Settings, target: sql::Target) -> String {
    let (major, minor) = django_release(file, settings).min((5, 2));
    format!(
        "*SQL as Django {major}.{minor} prints it for {}*",
        target.dialect.name()
    )
}

/// What hover shows at byte `offset`: the expression the cursor is on (`Entry`,
/// `Entry.objects`, `Entry.objects.filter(...)` when on `filter`) and, as Markdown, its type if
/// known and, for a QuerySet, the SQL it runs with its prefetches' (for a call of `count()`,
/// `get()` and the like, the query the call runs), or why that is not shown, in the dialect of
/// the settings' `ENGINE`, else `settings`' `sql-dialect`.
pub fn hover_at(
    source: &str,
    tree: &Tree,
    file: &FileContext,
    offset: usize,
    settings: &Settings,
) -> Option<(Range<usize>, String)> {
    let leaf = tree.root_node().descendant_for_byte_range(offset, offset)?;
    if leaf.kind_name() != "identifier" {
        return None;
    }
    let facts = file.facts(source, tree);
    let sem =
        Semantics::new(source, tree.root_node(), &file.index, &facts).with_program(&file.program);
    let node = hovered_expression(leaf, &sem);
    let shown = sem.display(&sem.ty(node));
    let target = sql_target(file, settings);
    let any = sql::Target {
        dialect: settings.sql_dialect,
        release: sql::Release::Since5_2,
    };
    let sql = match &target {
        Ok(target) => {
            sql_with_prefetches(&sem, node, *target).or_else(|| method_sql(&sem, node, *target))
        }
        // Whether there is a query to say it of.
        Err(reason) => sql::sql_of(&sem, node, any)
            .or_else(|| method_sql(&sem, node, any))
            .map(|_| Err(reason.clone())),
    };
    let mut parts = Vec::new();
    parts.extend(shown.map(|shown| format!("```text\n{shown}\n```")));
    match sql {
        Some(Ok(sql)) => {
            let footnote = target.map_or_else(|_| String::new(), |t| printed_by(file, settings, t));
            parts.push(format!("```sql\n{sql}\n```\n{footnote}"))
        }
        Some(Err(reason)) => parts.push(format!("*SQL not shown: {reason}*")),
        None => {}
    }
    if parts.is_empty() {
        return None;
    }
    let markdown = parts.join("\n");
    Some((node.byte_range(), markdown))
}

/// What hover adds on a finding whose fix rewrites a QuerySet (`select_related(...)` or
/// `prefetch_related(...)` added where the loop's QuerySet is built): the SQL before the fix,
/// with the query each row runs (loading the related row a read needs, or the rows of a related
/// manager), and after it, with its prefetch queries. `None` when the fix changes no QuerySet
/// whose SQL renders both ways, so hover says nothing it cannot show.
pub fn fix_sql(
    source: &str,
    tree: &Tree,
    file: &FileContext,
    finding: &Diagnostic,
    settings: &Settings,
) -> Option<String> {
    let fix = finding.fix.as_ref()?;
    let [edit] = fix.edits.as_slice() else {
        return None;
    };
    let target = sql_target(file, settings).ok()?;
    let facts = file.facts(source, tree);
    let sem =
        Semantics::new(source, tree.root_node(), &file.index, &facts).with_program(&file.program);
    // The QuerySet the edit extends: the innermost one ending where the edit ends or after.
    let start = edit.range.start.saturating_sub(1);
    let mut node = tree.root_node().descendant_for_byte_range(start, start)?;
    let queryset = loop {
        if node.end_byte() >= edit.range.end && sem.ty(node).is_queryset() {
            break node;
        }
        node = sem.parents.of(node)?;
    };
    let before = sql_with_prefetches(&sem, queryset, target)?.ok()?;

    let fixed = super::apply_edits(source, std::slice::from_ref(edit))?;
    let fixed_tree = crate::store::parse_python(&fixed)?;
    let fixed_facts = file.facts(&fixed, &fixed_tree);
    let fixed_sem = Semantics::new(&fixed, fixed_tree.root_node(), &file.index, &fixed_facts)
        .with_program(&file.program);
    let grown = edit.content.len() as isize - edit.range.len() as isize;
    let end = queryset.end_byte().checked_add_signed(grown)?;
    let fixed_queryset = fixed_tree
        .root_node()
        .descendant_for_byte_range(queryset.start_byte(), end)?;
    if fixed_queryset.byte_range() != (queryset.start_byte()..end) {
        return None;
    }
    let after = sql_with_prefetches(&fixed_sem, fixed_queryset, target)?.ok()?;
    if after == before {
        return None;
    }
    // A read of a relation to one row loads it; `row.tags.all()` runs its related manager's.
    let per_row = tree
        .root_node()
        .descendant_for_byte_range(finding.range.start, finding.range.end)
        .and_then(|read| match read.kind_name() {
            "attribute" => {
                let object = read.field(&field::OBJECT)?;
                let relation = sem.text(read.field(&field::ATTRIBUTE)?);
                let Ty::Instance(ModelRef::Indexed(model)) = sem.ty(object) else {
                    return None;
                };
                sql::sql_of_related_row(sem.index(), model, relation, target.dialect)?.ok()
            }
            _ => sql::sql_of(&sem, read, target)?.ok(),
        });
    let mut shown = format!("**Before the fix**\n```sql\n{before}\n```\n");
    if let Some(per_row) = per_row {
        shown.push_str(&format!("then on each row\n```sql\n{per_row}\n```\n"));
    }
    shown.push_str(&format!(
        "**After it**\n```sql\n{after}\n```\n{}",
        printed_by(file, settings, target)
    ));
    Some(shown)
}

/// The SQL a call of a QuerySet method that runs a query (`count()`, `get()`, ...) runs.
fn method_sql<'a>(
    sem: &Semantics<'a>,
    call: Node<'a>,
    target: sql::Target,
) -> Option<Result<String, String>> {
    let method = call.field(&field::FUNCTION)?.field(&field::ATTRIBUTE)?;
    if !super::loop_queries::QUERY_METHODS.contains(&sem.text(method)) {
        return None;
    }
    sql::sql_of_call(sem, call, target)
}

/// The SQL of the QuerySet `node` and below it each query its prefetches run, under a comment
/// naming the level (or why it is not shown).
fn sql_with_prefetches<'a>(
    sem: &Semantics<'a>,
    node: Node<'a>,
    target: sql::Target,
) -> Option<Result<String, String>> {
    let mut shown = match sql::sql_of(sem, node, target)? {
        Ok(sql) => sql,
        Err(reason) => return Some(Err(reason)),
    };
    match sql::prefetch_queries_of(sem, node, target)? {
        Ok(prefetches) => {
            for prefetch in prefetches {
                shown.push_str(&format!(
                    "\n\n-- prefetch_related(\"{}\"): one more query, for all the rows above\n",
                    prefetch.lookup
                ));
                match prefetch.sql {
                    Ok(sql) => shown.push_str(&sql),
                    Err(reason) => shown.push_str(&format!("-- SQL not shown: {reason}")),
                }
            }
        }
        Err(reason) => shown.push_str(&format!("\n\n-- prefetches not shown: {reason}")),
    }
    Some(Ok(shown))
}

/// An attribute name stands for the attribute access; a method name for the call.
fn hovered_expression<'a>(leaf: Node<'a>, sem: &Semantics<'a>) -> Node<'a> {
    let Some(parent) = sem.parents.of(leaf) else {
        return leaf;
    };
    let is_attribute_name = parent.kind_name() == "attribute"
        && parent
            .field(&field::ATTRIBUTE)
            .is_some_and(|a| a.id() == leaf.id());
    if !is_attribute_name {
        return leaf;
    }
    match sem.parents.of(parent) {
        Some(call)
            if call.kind_name() == "call"
                && call
                    .field(&field::FUNCTION)
                    .is_some_and(|f| f.id() == parent.id()) =>
        {
            call
        }
        _ => parent,
    }
}
