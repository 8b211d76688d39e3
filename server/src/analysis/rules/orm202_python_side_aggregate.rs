//! ORM202 python-side-aggregate: `sum(row.total for row in rows)` loads every row to add one
//! column in Python; `rows.aggregate(Sum("total"))` asks the database for one number.

use tree_sitter::Node;

use super::{Captures, Rule, RuleContext, RuleMeta};
use crate::analysis::columns::{iterated_column, nullable_read, single_clause_parts};
use crate::analysis::diagnostic::{Applicability, Edit, Fix, Severity};
use crate::analysis::evaluation::other_evaluations;
use crate::analysis::imports::import_names;
use crate::analysis::index::string_value;
use crate::analysis::infer::{ModelRef, Semantics, Ty};
use crate::analysis::loops::quote_style;
use crate::analysis::syntax::{
    as_receiver,
    field::{self, FieldOf},
    method_call, strip_parens, KindOf,
};

pub static RULE: Rule = Rule {
    meta: &RuleMeta {
        code: "ORM202",
        name: "python-side-aggregate",
        severity: Severity::Info,
    },
    query: include_str!("../../../../queries/orm202_python_side_aggregate.scm"),
    check,
};

fn check<'a>(cx: &mut RuleContext<'_, 'a>, m: &Captures<'_, 'a>) {
    let (Some(call), Some(function), Some(argument)) =
        (m.get("call"), m.get("function"), m.get("argument"))
    else {
        return;
    };
    let sem = cx.sem;
    let Some((queryset, lookup)) = aggregated_column(sem, argument) else {
        return;
    };
    // What Python's sum() does with a NULL that SQL's SUM skips: it raises.
    let nulls = match single_clause_parts(argument) {
        Some((element, _, iterable)) => {
            let read = nullable_read(sem, iterable, element);
            match read.relation {
                Some(relation) => Some(format!(
                    "where `{relation}` is empty, `{}` raises AttributeError",
                    sem.text(element)
                )),
                None => read.column.then(|| {
                    format!("a NULL `{lookup}` makes `sum()` raise TypeError; SUM skips it")
                }),
            }
        }
        None => lookup_may_be_null(sem, queryset, &lookup)
            .then(|| format!("a NULL `{lookup}` makes `sum()` raise TypeError; SUM skips it")),
    };
    let function = sem.text(function);
    let aggregate = match function {
        "sum" => "Sum",
        "max" => "Max",
        _ => "Min",
    };
    let quote = quote_style(sem, call);
    let alias = format!("{lookup}__{}", function);
    let mut value = format!(
        "{}.aggregate({aggregate}({quote}{lookup}{quote}))[{quote}{alias}{quote}]",
        as_receiver(queryset, sem.source)
    );
    // SUM over no rows is NULL where Python's sum() is 0.
    if function == "sum" {
        value = format!("{value} or 0");
        if needs_parentheses(sem, call) {
            value = format!("({value})");
        }
    }
    let fix = match import_names(sem, "django.db.models", &[aggregate]) {
        Ok(import) => {
            let mut edits: Vec<Edit> = import.into_iter().collect();
            edits.push(Edit::replace(call.byte_range(), &value));
            let why = match (function, nulls) {
                ("sum", None) => None,
                ("sum", Some(nulls)) => Some(nulls),
                (_, _) => Some(format!(
                    "with no rows it gives None where `{function}()` raises ValueError"
                )),
            };
            Some(Fix {
                title: match &why {
                    None => format!("Replace with `{value}`"),
                    Some(why) => format!("Replace with `{value}` (unsafe: {why})"),
                },
                applicability: if why.is_none() {
                    Applicability::Safe
                } else {
                    Applicability::Unsafe
                },
                edits,
            })
        }
        Err(_) => None,
    };
    cx.report(
        call,
        format!("`{function}()` loads every row to compute in Python what the database can; use `aggregate({aggregate}({quote}{lookup}{quote}))`"),
        fix,
    );
}

/// The QuerySet and the column `argument` feeds to the aggregate: `row.f for row in qs` or
/// `qs.values_list("f", flat=True)`.
fn aggregated_column<'a>(sem: &Semantics<'a>, argument: Node<'a>) -> Option<(Node<'a>, String)> {
    if matches!(
        argument.kind_name(),
        "generator_expression" | "list_comprehension"
    ) {
        let (element, target, iterable) = single_clause_parts(argument)?;
        let lookup = iterated_column(sem, element, target, iterable)?;
        return Some((iterable, lookup));
    }
    let (receiver, "values_list") = method_call(argument, sem.source)? else {
        return None;
    };
    let arguments = argument.field(&field::ARGUMENTS)?;
    if arguments.named_child_count() != 2 {
        return None;
    }
    let column = string_value(arguments.named_child(0)?, sem.source)?;
    let flat = arguments.named_child(1)?;
    let is_flat = flat.kind_name() == "keyword_argument"
        && flat
            .field(&field::NAME)
            .is_some_and(|n| sem.text(n) == "flat")
        && flat
            .field(&field::VALUE)
            .is_some_and(|v| sem.text(v) == "True");
    let rows_of_a_model = match sem.ty(receiver) {
        Ty::QuerySet(qs) => !qs.values && !qs.sliced && !qs.combined && qs.model.is_some(),
        Ty::Manager(manager) => manager.model.is_some(),
        _ => false,
    };
    if !is_flat || !rows_of_a_model || column.is_empty() {
        return None;
    }
    let inner = strip_parens(receiver);
    if inner.kind_name() == "identifier" && other_evaluations(sem, inner).any() {
        return None;
    }
    Some((receiver, column))
}

/// `x or 0` binds looser than anything but `lambda` and conditionals: keep it grouped unless
/// the call stands alone (an argument, an assignment's value, a return).
fn needs_parentheses<'a>(sem: &Semantics<'a>, call: Node<'a>) -> bool {
    !sem.parents.of(call).is_some_and(|p| {
        matches!(
            p.kind_name(),
            "argument_list"
                | "assignment"
                | "return_statement"
                | "expression_statement"
                | "parenthesized_expression"
                | "keyword_argument"
        )
    })
}

/// Whether `qs.values_list(lookup, flat=True)` may give a NULL: a nullable column or relation on
/// the way, or one the index does not know.
fn lookup_may_be_null<'a>(sem: &Semantics<'a>, queryset: Node<'a>, lookup: &str) -> bool {
    let model = match sem.ty(queryset) {
        Ty::QuerySet(qs) => qs.model,
        Ty::Manager(manager) => manager.model,
        _ => None,
    };
    let Some(ModelRef::Indexed(mut model)) = model else {
        return true;
    };
    for name in lookup.split("__") {
        let fields = sem.index().model(model);
        if matches!(name, "pk" | "id") && fields.field(name).is_none() {
            return false;
        }
        let Some(field) = fields
            .field(name)
            .or_else(|| name.strip_suffix("_id").and_then(|key| fields.field(key)))
        else {
            return true;
        };
        if field.may_be_null {
            return true;
        }
        match field.target {
            Some(target) => model = target,
            None => return false,
        }
    }
    false
}
