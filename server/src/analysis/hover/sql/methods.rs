//! The query a QuerySet method that runs one runs (`count()`, `exists()`, `get()`,
//! `first()`, `last()`, `update()`, `create()`), as Django builds it from the QuerySet's own
//! query, and the one `row.save()` runs.

use tree_sitter::Node;

use super::{build, builds_expression, family, literal, split_arguments, Family};
use super::{Dialect, SelectRelated, Table, Target};
use crate::analysis::index::FieldKind;
use crate::analysis::infer::{ModelRef, Semantics, Ty};
use crate::analysis::scope::BindingKind;
use crate::analysis::syntax::{
    field::{self, FieldOf},
    strip_parens, text, KindOf,
};

/// The dialects whose queries of methods (and of prefetches, `prefetch.rs`) are checked against
/// what Django runs: SQLite's by `tests/query_counts.rs`, PostgreSQL's differing only where its
/// compiler prints the main query differently.
pub(super) fn rendered_in(dialect: Dialect) -> Result<(), String> {
    match dialect {
        Dialect::Sqlite | Dialect::Postgresql => Ok(()),
        Dialect::Mysql | Dialect::Oracle => Err(format!(
            "this query is not rendered for {} yet",
            dialect.name()
        )),
    }
}

/// `get()` fetches at most this many rows, to say how many matched (`MAX_GET_RESULTS`).
const MAX_GET_RESULTS: u64 = 21;

/// The SQL the call `call` runs: `None` when it is not a call of a QuerySet method on a
/// QuerySet (or manager) of a known model, `Some(Err(reason))` when its SQL cannot be shown
/// exactly.
pub fn sql_of_call<'a>(
    sem: &Semantics<'a>,
    call: Node<'a>,
    target: Target,
) -> Option<Result<String, String>> {
    let function = call.field(&field::FUNCTION)?;
    let arguments = call.field(&field::ARGUMENTS)?;
    if call.kind_name() != "call" || function.kind_name() != "attribute" {
        return None;
    }
    let receiver = strip_parens(function.field(&field::OBJECT)?);
    let method = text(function.field(&field::ATTRIBUTE)?, sem.source);
    let model = super::model_of_queryset(sem, receiver)?;
    Some(model.and_then(|model| {
        rendered_in(target.dialect)?;
        let table = Table::of(sem.index(), model)?;
        render(sem, receiver, method, arguments, &table, target)
    }))
}

fn render<'a>(
    sem: &Semantics<'a>,
    receiver: Node<'a>,
    method: &str,
    arguments: Node<'a>,
    table: &Table<'a>,
    target: Target,
) -> Result<String, String> {
    if method == "create" {
        return insert(sem, receiver, arguments, table, target);
    }
    let mut query = build(sem, receiver, table, target)?;
    if !query.prefetches.is_empty() {
        return Err(format!("`{method}()` with prefetches runs more queries"));
    }
    let takes_arguments = matches!(method, "get" | "update");
    if !takes_arguments && arguments.named_child_count() > 0 {
        return Err(format!("`{method}()` with arguments is not rendered yet"));
    }
    if query.limit.is_some() {
        return Err(format!("`{method}()` of a slice is not rendered yet"));
    }
    match method {
        "count" | "exists" => {
            if query.distinct || query.values.is_some() || !query.annotations.is_empty() {
                return Err(format!("`{method}()` of this QuerySet runs a subquery"));
            }
            // Both clear the SELECT list, `select_related()` and the ordering.
            query.select_related = SelectRelated::Nothing;
            query.order_by = Some(Vec::new());
            if method == "count" {
                query.select_only =
                    Some(format!("COUNT(*) AS {}", target.dialect.quote("__count")));
            } else {
                query.select_only = Some(format!("1 AS {}", target.dialect.quote("a")));
                query.limit = Some((0, Some(1)));
            }
        }
        "get" => {
            query.apply("filter", arguments)?;
            query.order_by = Some(Vec::new());
            query.limit = Some((0, Some(MAX_GET_RESULTS)));
        }
        "first" | "last" => {
            if !query.annotations.is_empty() {
                return Err(format!(
                    "`{method}()` after `annotate()` is not rendered yet"
                ));
            }
            let ordering = match &query.order_by {
                Some(names) if !names.is_empty() => names.clone(),
                // `order_by()` leaves no ordering, not even `Meta.ordering`.
                Some(_) => Vec::new(),
                None => table
                    .model
                    .ordering
                    .clone()
                    .unwrap_or_default()
                    .into_iter()
                    .collect::<Option<Vec<String>>>()
                    .ok_or("`Meta.ordering` holds an expression")?,
            };
            // An unordered QuerySet is ordered by its primary key first.
            let ordering = if ordering.is_empty() {
                vec!["pk".to_string()]
            } else {
                ordering
            };
            query.order_by = Some(if method == "last" {
                ordering.iter().map(|name| reversed(name)).collect()
            } else {
                ordering
            });
            query.limit = Some((0, Some(1)));
        }
        "update" => {
            if query.joins.joined() {
                return Err("`update()` filtered across relations runs a subquery".into());
            }
            let assignments = assignments(sem, arguments, table, target)?;
            let conditions = std::mem::take(&mut query.conditions).sql();
            let mut sql = format!(
                "UPDATE {} SET {}",
                target.dialect.quote(&table.name),
                assignments.join(", ")
            );
            if let Some(conditions) = conditions {
                sql.push_str(&format!(" WHERE {conditions}"));
            }
            return Ok(sql);
        }
        _ => return Err(format!("the SQL of `{method}()` is not rendered yet")),
    }
    query.sql(target)
}

/// `SET "column" = value` of each keyword argument of `update()`, in the order written.
fn assignments(
    sem: &Semantics,
    arguments: Node,
    table: &Table,
    target: Target,
) -> Result<Vec<String>, String> {
    let (positional, keywords) = split_arguments(arguments, sem.source)?;
    if !positional.is_empty() || keywords.is_empty() {
        return Err("`update()` takes keyword arguments".into());
    }
    keywords
        .into_iter()
        .map(|(name, value)| {
            let (column, family) = assigned_column(sem, table, name)?;
            let value = value_sql(value, family, sem.source)?;
            Ok(format!("{} = {value}", target.dialect.quote(&column)))
        })
        .collect()
}

/// The column a keyword of `update()` or `create()` sets: a field, or a key by its attribute.
fn assigned_column(sem: &Semantics, table: &Table, name: &str) -> Result<(String, Family), String> {
    let by_attname = name
        .strip_suffix("_id")
        .and_then(|n| table.model.field(n))
        .filter(|f| matches!(f.kind, FieldKind::ForeignKey | FieldKind::OneToOne));
    let field = table.model.field(name).or(by_attname);
    match field {
        Some(field)
            if !matches!(
                field.kind,
                FieldKind::ManyToMany | FieldKind::GenericForeignKey | FieldKind::Unknown
            ) =>
        {
            Ok((super::column(field), family(sem.index(), Some(field))))
        }
        _ if name == "id" && table.pk == "id" => Ok(("id".into(), Family::Integer)),
        _ => Err(format!(
            "`{name}=` does not name a column of {}",
            table.model.name
        )),
    }
}

/// A value written to a column: a literal as `str()` prints it, `NULL`, or `%s` for a value
/// Python computes (`row.pages + 1`); an expression Django compiles (`F("pages") + 1`) is not
/// rendered.
fn value_sql(value: Node, family: Family, source: &str) -> Result<String, String> {
    let value = strip_parens(value);
    if text(value, source) == "None" {
        return Ok("NULL".into());
    }
    if matches!(value.kind_name(), "binary_operator" | "unary_operator") {
        let mut calls_expression = false;
        crate::analysis::syntax::walk(value, |node| {
            calls_expression |= node.kind_name() == "call" && builds_expression(node, source);
            !calls_expression
        });
        if calls_expression {
            return Err(format!(
                "the value `{}` is not rendered yet",
                text(value, source)
            ));
        }
        return Ok("%s".into());
    }
    literal(value, family, source)
}

/// `Model.objects.create(...)`: one INSERT of every column but an automatic primary key,
/// returning that key. Columns not given hold their default, a parameter too.
fn insert<'a>(
    sem: &Semantics<'a>,
    manager: Node<'a>,
    arguments: Node<'a>,
    table: &Table<'a>,
    target: Target,
) -> Result<String, String> {
    let is_default_manager = manager.kind_name() == "attribute"
        && manager
            .field(&field::ATTRIBUTE)
            .is_some_and(|a| text(a, sem.source) == "objects")
        && build(sem, manager, table, target).is_ok();
    if !is_default_manager {
        return Err("only `Model.objects.create()` is rendered".into());
    }
    insert_sql(table, given_values(sem, table, arguments)?, target)
}

/// The (column, value) of each keyword argument building a row (`create(...)`, `Model(...)`).
fn given_values(
    sem: &Semantics,
    table: &Table,
    arguments: Node,
) -> Result<Vec<(String, String)>, String> {
    let (positional, keywords) = split_arguments(arguments, sem.source)?;
    if !positional.is_empty() {
        return Err("a row built with positional arguments is not rendered yet".into());
    }
    keywords
        .into_iter()
        .map(|(name, value)| {
            let (column, family) = assigned_column(sem, table, name)?;
            Ok((column, value_sql(value, family, sem.source)?))
        })
        .collect()
}

/// The INSERT of a new row of `table`'s model, `given` holding the values known.
fn insert_sql(
    table: &Table,
    mut given: Vec<(String, String)>,
    target: Target,
) -> Result<String, String> {
    let pk = table.model.fields.iter().find(|f| f.primary_key);
    // Django leaves an automatic key to the database and reads it back.
    let automatic = pk.is_none_or(|f| f.class.ends_with("AutoField"));
    let mut columns = Vec::new();
    let mut values = Vec::new();
    for (_, column) in &table.columns {
        if automatic && *column == table.pk {
            continue;
        }
        let value = match given.iter().position(|(c, _)| c == column) {
            Some(i) => given.remove(i).1,
            None => "%s".to_string(),
        };
        columns.push(target.dialect.quote(column));
        values.push(value);
    }
    if let Some((column, _)) = given.first() {
        return Err(format!("`{column}` is set twice or is not a column"));
    }
    let mut sql = format!(
        "INSERT INTO {} ({}) VALUES ({})",
        target.dialect.quote(&table.name),
        columns.join(", "),
        values.join(", ")
    );
    if automatic {
        sql.push_str(&format!(
            " RETURNING {}",
            table.qualified(&table.pk, target.dialect)
        ));
    }
    Ok(sql)
}

/// The query `row.save()` runs (a model without a `save()` override or signals, as the caller
/// checks): an UPDATE of every column by the primary key for a row a loop over a QuerySet
/// fetched whole, an INSERT for an instance built in place (`Stamp(book=book).save()`).
pub fn sql_of_save<'a>(
    sem: &Semantics<'a>,
    call: Node<'a>,
    target: Target,
) -> Option<Result<String, String>> {
    let function = call.field(&field::FUNCTION)?;
    let instance = strip_parens(function.field(&field::OBJECT)?);
    let Ty::Instance(ModelRef::Indexed(model)) = sem.ty(instance) else {
        return None;
    };
    let arguments = call.field(&field::ARGUMENTS)?;
    if arguments.named_child_count() > 0 {
        return Some(Err("`save()` with arguments is not rendered yet".into()));
    }
    Some(rendered_in(target.dialect).and_then(|()| {
        let table = Table::of(sem.index(), model)?;
        match instance.kind_name() {
            "call" => built_here(sem, instance, &table, target),
            "identifier" => fetched_row(sem, instance, &table, target),
            _ => Err("a save of this instance is not rendered yet".into()),
        }
    }))
}

/// `Model(field=value, ...)`: the INSERT its first save runs.
fn built_here(
    sem: &Semantics,
    built: Node,
    table: &Table,
    target: Target,
) -> Result<String, String> {
    let arguments = built
        .field(&field::ARGUMENTS)
        .ok_or("the instance is not readable")?;
    insert_sql(table, given_values(sem, table, arguments)?, target)
}

/// A row of `for row in <QuerySet>`: the UPDATE of its every column but the key.
fn fetched_row<'a>(
    sem: &Semantics<'a>,
    row: Node<'a>,
    table: &Table<'a>,
    target: Target,
) -> Result<String, String> {
    let scope = sem.scope_of(row);
    let reaching = scope.reaching(text(row, sem.source), row, &sem.parents);
    let iterable = match reaching.bindings.as_slice() {
        [binding] if reaching.complete => match binding.kind {
            BindingKind::ForTarget { iterable, .. } => iterable,
            _ => return Err("a save of an instance not fetched by the loop".into()),
        },
        _ => return Err("a save of an instance not fetched by the loop".into()),
    };
    let rows = build(sem, iterable, table, target)?;
    if rows.only.is_some() || !rows.defer.is_empty() || rows.values.is_some() {
        return Err("a save of a row fetched with `only()`/`defer()` is not rendered yet".into());
    }
    let assignments: Vec<String> = table
        .columns
        .iter()
        .filter(|(_, column)| *column != table.pk)
        .map(|(_, column)| format!("{} = %s", target.dialect.quote(column)))
        .collect();
    Ok(format!(
        "UPDATE {} SET {} WHERE {} = %s",
        target.dialect.quote(&table.name),
        assignments.join(", "),
        table.qualified(&table.pk, target.dialect)
    ))
}

/// An ordering term the other way round (`reverse()`).
fn reversed(name: &str) -> String {
    match name.strip_prefix('-') {
        Some(ascending) => ascending.to_string(),
        None => format!("-{name}"),
    }
}
