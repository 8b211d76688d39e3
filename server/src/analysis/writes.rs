//! Writes in loops: what the write rules (ORM301–ORM306) share. A loop that writes one row per
//! iteration can become one statement, but only when nothing else in the loop would run in a
//! different order, and only when the model has no hook (an overridden `save()`, a signal
//! receiver) that the bulk statement would skip without saying so.

use tree_sitter::Node;

use super::diagnostic::{Applicability, Edit, Fix};
use super::imports::import_names;
use super::index::{string_value, FieldKind, Model, ModelId, ModelIndex};
use super::infer::{ModelRef, Semantics, Ty};
use super::loops::{construction_site, quote_style, row_loop, runs_at_most_once, RowLoop};
use super::scope::{Binding, BindingKind};
use super::syntax::{
    as_receiver, contains, enclosing_loops,
    field::{self, FieldOf},
    indentation, is_primary, line_ending, statement_end, strip_parens, walk, KindOf,
};
use crate::settings::Settings;

/// The innermost loop around `node` in its scope, when it is a `for` statement whose every
/// iteration may run `node` (not one that `node` runs in at most once: a write followed by
/// `break` or `return` is one write).
pub fn innermost_for<'a>(sem: &Semantics<'a>, node: Node<'a>) -> Option<Node<'a>> {
    let scope = sem.scope_of(node).scope;
    let innermost = *enclosing_loops(node, scope, &sem.parents).first()?;
    (innermost.kind_name() == "for_statement" && !runs_at_most_once(sem, node, innermost))
        .then_some(innermost)
}

/// The statements of a `for` loop's body when the loop can be rewritten as a whole: no `else:`
/// clause, not `async`, and nothing in it that jumps or fails part-way (`break`, `continue`,
/// `return`, `yield`, `raise`, `try`, `with`, `await`, `del`, `global`), which a single bulk
/// statement could not reproduce. Comments are left out; nested functions are not looked into.
pub fn plain_body<'a>(for_loop: Node<'a>) -> Option<Vec<Node<'a>>> {
    if for_loop.field(&field::ALTERNATIVE).is_some()
        || for_loop.child(0).is_some_and(|c| c.kind_name() == "async")
    {
        return None;
    }
    let body = for_loop.field(&field::BODY)?;
    let mut jumps = false;
    walk(body, |n| {
        jumps |= matches!(
            n.kind_name(),
            "break_statement"
                | "continue_statement"
                | "return_statement"
                | "yield"
                | "raise_statement"
                | "try_statement"
                | "with_statement"
                | "await"
                | "delete_statement"
                | "global_statement"
                | "nonlocal_statement"
                | "named_expression"
        );
        !jumps
            && !matches!(
                n.kind_name(),
                "function_definition" | "class_definition" | "lambda"
            )
    });
    if jumps {
        return None;
    }
    let mut cursor = body.walk();
    let statements = body
        .named_children(&mut cursor)
        .filter(|s| s.kind_name() != "comment")
        .collect();
    Some(statements)
}

/// `statement` is `call` on its own: its value is not used.
pub fn is_call_statement(statement: Node, call: Node) -> bool {
    statement.kind_name() == "expression_statement"
        && statement.named_child_count() == 1
        && statement
            .named_child(0)
            .is_some_and(|e| e.id() == call.id())
}

/// The statement directly in the loop's body that holds `node`.
pub fn body_statement<'a>(sem: &Semantics<'a>, for_loop: Node<'a>, node: Node<'a>) -> Node<'a> {
    let body = for_loop.field(&field::BODY);
    let mut current = node;
    while let Some(parent) = sem.parents.of(current) {
        if body.is_some_and(|b| b.id() == parent.id()) {
            break;
        }
        current = parent;
    }
    current
}

/// The edit that replaces the whole `for_loop` with `replacement` at the loop's indentation.
/// Comments inside the loop are kept, each on its own line above the new statement. A loop with
/// blank lines inside is left alone: they separate steps whose grouping one line cannot keep.
pub fn replace_loop<'a>(
    sem: &Semantics<'a>,
    for_loop: Node<'a>,
    replacement: &str,
) -> Option<Edit> {
    replace_statements(sem, for_loop, for_loop, replacement)
}

/// The edit that replaces the statements from `first` to `last` (siblings in one block, `last`
/// possibly `first`) with `replacement`, as `replace_loop` does.
pub fn replace_statements<'a>(
    sem: &Semantics<'a>,
    first: Node<'a>,
    last: Node<'a>,
    replacement: &str,
) -> Option<Edit> {
    let range = first.start_byte()..statement_end(sem.source, last);
    let text = &sem.source[range.clone()];
    if text.lines().skip(1).any(|l| l.trim().is_empty()) {
        return None;
    }
    let indent = indentation(sem.source, first)?;
    let newline = line_ending(sem.source, first);
    let mut lines: Vec<&str> = Vec::new();
    walk(sem.parents.of(first).unwrap_or(first), |n| {
        // A comment's node may end after the replaced range, on the `\r` it keeps.
        let inside = range.start <= n.start_byte() && n.start_byte() < range.end;
        if n.kind_name() == "comment" && inside {
            // In a CRLF file a comment's text ends with the `\r` of its line ending.
            lines.push(sem.text(n).trim_end_matches('\r'));
        }
        n.start_byte() < range.end && range.start < n.end_byte()
    });
    lines.push(replacement);
    Some(Edit::replace(
        range,
        lines.join(&format!("{newline}{indent}")),
    ))
}

/// Whether `name` is read in the loop's scope where the loop has finished (after it, or
/// anywhere in an enclosing loop): after the loop it holds the last row, which a bulk statement
/// never binds.
pub fn read_outside_loop<'a>(sem: &Semantics<'a>, for_loop: Node<'a>, name: &str) -> bool {
    let scope = sem.scope_of(for_loop);
    let nested = !enclosing_loops(for_loop, scope.scope, &sem.parents).is_empty();
    let is_loop_target = |b: &Binding| {
        matches!(b.kind, BindingKind::ForTarget { .. }) && b.statement.id() == for_loop.id()
    };
    let loop_target = scope.bindings(name).iter().any(is_loop_target);
    scope.references(name).iter().any(|r| {
        !contains(for_loop, *r)
            && (nested || r.start_byte() >= for_loop.end_byte())
            // A later `for name in ...` rebinds the loop's variable: that read is of another
            // loop's row.
            && (!loop_target
                || scope
                    .reaching(name, *r, &sem.parents)
                    .bindings
                    .iter()
                    .any(|b| is_loop_target(b)))
    })
}

/// A name for a new local that the scope of `node` neither binds nor reads.
pub fn fresh_local<'a>(
    sem: &Semantics<'a>,
    node: Node<'a>,
    candidates: &[String],
) -> Option<String> {
    let scope = sem.scope_of(node);
    candidates
        .iter()
        .find(|c| scope.references(c).is_empty() && scope.bindings(c).is_empty())
        .cloned()
}

/// Why `save()` called per row does more than a bulk `update()`/`bulk_update()`/`bulk_create()`:
/// an overridden `save()`, or receivers of the save signals (bulk writes send none), the
/// model's own or ones connected for every model.
pub fn save_hooks(index: &ModelIndex, model: &Model) -> Vec<String> {
    let mut hooks = Vec::new();
    if model.overrides_save {
        hooks.push(format!("{}.save() is overridden", model.name));
    }
    for signal in ["pre_save", "post_save"] {
        if model.signals.iter().any(|s| s == signal) {
            hooks.push(format!("{} has {signal} receivers", model.name));
        } else if index.has_any_sender_receivers(signal) {
            hooks.push(format!("{signal} receivers listen to every model"));
        }
    }
    hooks
}

/// `auto_now` fields that `save()` would set and a bulk write of `written` leaves as they are.
fn auto_now_left_out(model: &Model, written: &[String]) -> Vec<String> {
    model
        .fields
        .iter()
        .filter(|f| f.auto_now_on_save && !written.contains(&f.name))
        .map(|f| format!("{}.{} (auto_now) is not bumped", model.name, f.name))
        .collect()
}

/// A field a bulk write can set by name: a column of the model (not a many-to-many relation,
/// not a property the index cannot see).
fn is_writable_field(model: &Model, name: &str) -> bool {
    model.field(name).is_some_and(|f| {
        matches!(
            f.kind,
            FieldKind::Concrete | FieldKind::ForeignKey | FieldKind::OneToOne
        )
    })
}

/// A fix that is safe when nothing in `hazards` applies, else unsafe with the reasons in its
/// title: "Replace the loop with `qs.delete()` (unsafe: Entry.delete() is overridden)".
pub fn fix_unless(title: String, hazards: &[String], edits: Vec<Edit>) -> Fix {
    if hazards.is_empty() {
        return Fix::safe(title, edits);
    }
    Fix {
        title: format!("{title} (unsafe: {})", hazards.join("; ")),
        applicability: Applicability::Unsafe,
        edits,
    }
}

/// What the values assigned to a row before its `save()` are built from, which decides how the
/// loop's UPDATEs can become one statement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum SavedValues {
    /// The same for every row (`entry.status = "done"`): `qs.update(status="done")` (ORM302).
    Constant,
    /// The row's own columns, constants and arithmetic (`entry.views = entry.views + 1`):
    /// `qs.update(views=F("views") + 1)` (ORM303).
    OwnFields,
    /// Anything else Python computes (`entry.slug = slugify(entry.title)`): the rows are
    /// collected and written with one `bulk_update()` (ORM304).
    Computed,
}

/// `row.field = value` or `row.field += value` in a loop that saves `row`.
struct RowAssignment<'a> {
    field: &'a str,
    value: Node<'a>,
    /// `+` for `+=`; `None` for a plain assignment.
    operator: Option<&'a str>,
}

/// `row.field = value` / `row.field op= value`, as a statement of its own.
fn row_assignment<'a>(
    sem: &Semantics<'a>,
    statement: Node<'a>,
    row: &str,
) -> Option<RowAssignment<'a>> {
    if statement.kind_name() != "expression_statement" || statement.named_child_count() != 1 {
        return None;
    }
    let assignment = statement.named_child(0)?;
    let operator = match assignment.kind_name() {
        "assignment" if assignment.field(&field::TYPE).is_none() => None,
        "augmented_assignment" => {
            let op = sem.text(assignment.field(&field::OPERATOR)?);
            Some(op.strip_suffix('=')?)
        }
        _ => return None,
    };
    let left = assignment.field(&field::LEFT)?;
    let value = assignment.field(&field::RIGHT)?;
    if left.kind_name() != "attribute" || value.kind_name() == "assignment" {
        return None;
    }
    let object = left.field(&field::OBJECT)?;
    if object.kind_name() != "identifier" || sem.text(object) != row {
        return None;
    }
    Some(RowAssignment {
        field: sem.text(left.field(&field::ATTRIBUTE)?),
        value,
        operator,
    })
}

/// Names the loop binds: its target and every name assigned in its body. A value that reads one
/// of them differs from row to row.
pub fn names_bound_in<'a>(sem: &Semantics<'a>, for_loop: Node<'a>) -> Vec<&'a str> {
    let mut names = Vec::new();
    walk(for_loop, |n| {
        let target = match n.kind_name() {
            "for_statement" | "for_in_clause" | "assignment" | "augmented_assignment" => {
                n.field(&field::LEFT)
            }
            "named_expression" => n.field(&field::NAME),
            _ => None,
        };
        if let Some(target) = target {
            let mut pending = vec![target];
            while let Some(t) = pending.pop() {
                match t.kind_name() {
                    "identifier" => names.push(sem.text(t)),
                    "pattern_list"
                    | "tuple_pattern"
                    | "list_pattern"
                    | "list_splat_pattern"
                    | "parenthesized_expression"
                    | "tuple"
                    | "list" => {
                        let mut cursor = t.walk();
                        pending.extend(t.named_children(&mut cursor));
                    }
                    _ => {}
                }
            }
        }
        true
    });
    names
}

/// What `value`, assigned to a field of `row` (of `model`) in a loop binding `bound`, is built
/// from. `F()` expressions support `+ - * / % **` and negation; anything else on a column, and
/// every call, needs Python.
fn saved_value(
    sem: &Semantics,
    value: Node,
    row: &str,
    model: &Model,
    bound: &[&str],
) -> SavedValues {
    let mut pending = vec![(value, 0u32)];
    let mut found = SavedValues::Constant;
    while let Some((node, depth)) = pending.pop() {
        if depth > 64 {
            return SavedValues::Computed;
        }
        let kind = match node.kind_name() {
            "integer" | "float" | "true" | "false" | "none" => SavedValues::Constant,
            "string" => {
                let mut cursor = node.walk();
                let interpolated = node
                    .named_children(&mut cursor)
                    .any(|c| c.kind_name() == "interpolation");
                if interpolated {
                    SavedValues::Computed
                } else {
                    SavedValues::Constant
                }
            }
            "identifier" if bound.contains(&sem.text(node)) => SavedValues::Computed,
            "identifier" => SavedValues::Constant,
            "attribute" => {
                let (Some(object), Some(name)) =
                    (node.field(&field::OBJECT), node.field(&field::ATTRIBUTE))
                else {
                    return SavedValues::Computed;
                };
                if object.kind_name() == "identifier" && sem.text(object) == row {
                    match model.field(sem.text(name)) {
                        Some(f) if f.kind == FieldKind::Concrete => SavedValues::OwnFields,
                        // A relation's column would be `F("rel__f")`, which `update()` refuses.
                        _ => return SavedValues::Computed,
                    }
                } else {
                    match saved_value(sem, object, row, model, bound) {
                        SavedValues::Constant => SavedValues::Constant,
                        _ => return SavedValues::Computed,
                    }
                }
            }
            "parenthesized_expression" => {
                pending.extend(node.named_child(0).map(|c| (c, depth + 1)));
                continue;
            }
            "binary_operator" | "unary_operator" => {
                let operator = node.field(&field::OPERATOR).map_or("", |o| sem.text(o));
                let arithmetic = match node.kind_name() {
                    "binary_operator" => matches!(operator, "+" | "-" | "*" | "/" | "%" | "**"),
                    _ => operator == "-",
                };
                let mut cursor = node.walk();
                let operands: Vec<Node> = node.named_children(&mut cursor).collect();
                if !arithmetic {
                    // Any operator on constants is a constant; on columns it needs Python.
                    let all_constant = operands
                        .iter()
                        .all(|o| saved_value(sem, *o, row, model, bound) == SavedValues::Constant);
                    if !all_constant {
                        return SavedValues::Computed;
                    }
                    continue;
                }
                pending.extend(operands.into_iter().map(|o| (o, depth + 1)));
                continue;
            }
            _ => return SavedValues::Computed,
        };
        found = found.max(kind);
    }
    found
}

/// A `row.save()` on the variable of a `for` loop over a QuerySet, with what the loop assigns to
/// the row before it.
pub struct SaveLoop<'a> {
    rows: RowLoop<'a>,
    call: Node<'a>,
    pub row: &'a str,
    pub values: SavedValues,
}

/// The save loop of `call` (`row.save(...)`, `instance` being `row`), if `row` is the variable of
/// the innermost loop around it and that loop iterates a QuerySet.
pub fn save_loop<'a>(
    sem: &Semantics<'a>,
    call: Node<'a>,
    instance: Node<'a>,
) -> Option<SaveLoop<'a>> {
    let rows = row_loop(sem, instance)?;
    if innermost_for(sem, call)?.id() != rows.node.id() {
        return None;
    }
    let row = sem.text(instance);
    let model = sem.index().model(rows.model);
    let bound = names_bound_in(sem, rows.node);
    let body = rows.node.field(&field::BODY)?;
    let mut values = SavedValues::Constant;
    let mut assigned_any = false;
    let mut copies = false;
    // An assignment under a condition, or a loop that can stop early, writes some rows only:
    // one `update()` of the whole QuerySet would write them all.
    let mut some_rows_only = false;
    walk(body, |n| {
        if let Some(assignment) = row_assignment(sem, n, row) {
            assigned_any = true;
            // `row.pk = None` then `save()` INSERTs a copy of each row: no update at all.
            copies |= matches!(assignment.field, "pk" | "id");
            values = values.max(assigned_value(sem, &assignment, row, model, &bound));
            some_rows_only |= sem.parents.of(n).is_some_and(|b| b.id() != body.id());
        }
        some_rows_only |= matches!(n.kind_name(), "break_statement" | "return_statement");
        !matches!(
            n.kind_name(),
            "function_definition" | "class_definition" | "lambda"
        )
    });
    // Nothing assigned: the save is for its side effects (its own logic, `auto_now`
    // timestamps, signals), which no bulk write repeats.
    if copies || !assigned_any {
        return None;
    }
    if some_rows_only {
        values = SavedValues::Computed;
    }
    Some(SaveLoop {
        rows,
        call,
        row,
        values,
    })
}

/// What one assignment's value is built from; `row.f += v` reads `row.f` too.
fn assigned_value(
    sem: &Semantics,
    assignment: &RowAssignment,
    row: &str,
    model: &Model,
    bound: &[&str],
) -> SavedValues {
    let value = saved_value(sem, assignment.value, row, model, bound);
    match assignment.operator {
        None => value,
        Some("+" | "-" | "*" | "/" | "%" | "**")
            if model
                .field(assignment.field)
                .is_some_and(|f| f.kind == FieldKind::Concrete) =>
        {
            value.max(SavedValues::OwnFields)
        }
        Some(_) => SavedValues::Computed,
    }
}

impl<'a> SaveLoop<'a> {
    /// One `update()` in place of the loop when the values allow it, else the rows collected and
    /// written with one `bulk_update()` after the loop, else nothing.
    pub fn fix(&self, sem: &Semantics<'a>, settings: &Settings) -> Option<Fix> {
        let statements = plain_body(self.rows.node)?;
        let (save, assignments) = statements.split_last()?;
        if !is_call_statement(*save, self.call) {
            return None;
        }
        let model = sem.index().model(self.rows.model);
        let update_fields = self.update_fields(sem)?;
        let mut fields: Vec<String> = Vec::new();
        let mut row_assignments = Vec::new();
        for statement in assignments {
            if let Some(assignment) = row_assignment(sem, *statement, self.row) {
                if !is_writable_field(model, assignment.field) {
                    return None;
                }
                if !fields.iter().any(|f| f == assignment.field) {
                    fields.push(assignment.field.to_string());
                }
                row_assignments.push(assignment);
            } else if !assigns_a_local(*statement) {
                // A call or any other statement would run before earlier rows are saved.
                return None;
            }
        }
        if fields.is_empty() {
            return None;
        }
        if let Some(listed) = &update_fields {
            let mut listed = listed.clone();
            let mut assigned = fields.clone();
            listed.sort();
            assigned.sort();
            if listed != assigned {
                return None;
            }
        }
        let mut hazards = save_hooks(sem.index(), model);
        // `save(update_fields=...)` only bumps the `auto_now` fields it lists.
        if update_fields.is_none() {
            hazards.extend(auto_now_left_out(model, &fields));
        }
        // Each field once: `update(a=1, a=2)` repeats a keyword, and only the last value counts.
        let each_field_once = row_assignments.len() == fields.len();
        if self.values <= SavedValues::OwnFields
            && row_assignments.len() == assignments.len()
            && each_field_once
        {
            if let Some(fix) = self.update_fix(sem, &row_assignments, &hazards) {
                return Some(fix);
            }
        }
        self.bulk_update_fix(sem, settings, &fields, &hazards)
    }

    /// The fields of `save(update_fields=[...])`: `Some(None)` for a bare `save()`, `None` for
    /// arguments the fix cannot carry over (`using=`, `force_update=`, a computed list).
    fn update_fields(&self, sem: &Semantics) -> Option<Option<Vec<String>>> {
        let args = self.call.field(&field::ARGUMENTS)?;
        let mut cursor = args.walk();
        let arguments: Vec<Node> = args
            .named_children(&mut cursor)
            .filter(|a| a.kind_name() != "comment")
            .collect();
        match arguments.as_slice() {
            [] => Some(None),
            [keyword]
                if keyword.kind_name() == "keyword_argument"
                    && keyword
                        .field(&field::NAME)
                        .is_some_and(|n| sem.text(n) == "update_fields") =>
            {
                let list = keyword.field(&field::VALUE)?;
                if !matches!(list.kind_name(), "list" | "tuple") {
                    return None;
                }
                let mut cursor = list.walk();
                let names: Option<Vec<String>> = list
                    .named_children(&mut cursor)
                    .map(|n| string_value(n, sem.source))
                    .collect();
                names.map(Some)
            }
            _ => None,
        }
    }

    /// Whether Django can run `update()` on the iterated QuerySet: not on a list of its rows, nor
    /// on one that is sliced, combined, `values()`, `distinct()` or annotated.
    fn queryset_updatable(&self, sem: &Semantics<'a>) -> bool {
        let Ty::QuerySet(qs) = sem.ty(self.rows.iterable) else {
            return false;
        };
        let built = construction_site(sem, self.rows.iterable).map_or("", |s| sem.text(s));
        // Django refuses `update()` after `distinct(*fields)`, and on annotations that
        // aggregate; `extra()` may add either.
        let refused = [sem.text(self.rows.iterable), built].iter().any(|t| {
            ["distinct(", "annotate(", "alias(", "extra("]
                .iter()
                .any(|m| t.contains(m))
        });
        !(qs.sliced || qs.values || qs.combined || refused)
    }

    /// The diagnostic's message: the bulk write the loop should become.
    pub fn message(&self, sem: &Semantics<'a>) -> String {
        let advice = match self.values {
            _ if !self.queryset_updatable(sem) || self.values == SavedValues::Computed => {
                "collect the rows and write them with one `bulk_update()`"
            }
            SavedValues::Constant => "call `.update()` once on the queryset",
            _ => "call `.update()` once on the queryset, with `F()` for the row's own fields",
        };
        format!(
            "`{}.save()` in a loop runs one UPDATE per row; {advice}",
            self.row
        )
    }

    /// `qs.update(a=1, p=F("p") + 1)` in place of the loop.
    fn update_fix(
        &self,
        sem: &Semantics<'a>,
        assignments: &[RowAssignment<'a>],
        hazards: &[String],
    ) -> Option<Fix> {
        if !self.queryset_updatable(sem) {
            return None;
        }
        let model = sem.index().model(self.rows.model);
        if read_outside_loop(sem, self.rows.node, self.row) {
            return None;
        }
        let iterable = strip_parens(self.rows.iterable);
        if iterable.kind_name() == "identifier"
            && read_outside_loop(sem, self.rows.node, sem.text(iterable))
        {
            return None;
        }
        let quote = quote_style(sem, self.rows.node);
        let mut arguments = Vec::new();
        let mut uses_f = false;
        for (i, assignment) in assignments.iter().enumerate() {
            let reads = row_fields_read(sem, assignment.value, self.row);
            // In one UPDATE a value reading a column that another assignment sets sees the old
            // or the new value depending on the database (MySQL assigns left to right).
            let changed_by_other = assignments
                .iter()
                .enumerate()
                .any(|(j, other)| j != i && reads.iter().any(|(_, field)| *field == other.field));
            if changed_by_other {
                return None;
            }
            let arithmetic = assignment.operator.is_some()
                || !(reads.len() == 1 && strip_parens(assignment.value).id() == reads[0].0.id());
            let numeric = |field: &str| {
                model.field(field).is_some_and(|f| {
                    let class = f.class.rsplit('.').next().unwrap_or("");
                    class.ends_with("IntegerField")
                        || matches!(class, "FloatField" | "DecimalField")
                })
            };
            let touches_fields = !reads.is_empty() || assignment.operator.is_some();
            // `F("name") + "x"` is numeric addition in SQL: only numbers take arithmetic.
            if touches_fields
                && arithmetic
                && (!reads.iter().all(|(_, f)| numeric(f))
                    || (assignment.operator.is_some() && !numeric(assignment.field))
                    || has_string(assignment.value))
            {
                return None;
            }
            uses_f |= touches_fields;
            let value = with_f_expressions(sem, assignment.value, &reads, quote);
            let value = match assignment.operator {
                None => value,
                Some(op) => {
                    let right = strip_parens(assignment.value);
                    let operand = if is_primary(right)
                        || right.kind_name() == "integer"
                        || right.kind_name() == "float"
                    {
                        value
                    } else {
                        format!("({value})")
                    };
                    format!("F({quote}{}{quote}) {op} {operand}", assignment.field)
                }
            };
            arguments.push(format!("{}={value}", assignment.field));
        }
        let import = if uses_f {
            import_names(sem, "django.db.models", &["F"]).ok()?
        } else {
            None
        };
        let replacement = format!(
            "{}.update({})",
            as_receiver(self.rows.iterable, sem.source),
            arguments.join(", ")
        );
        if replacement.contains(['\n', '\r']) {
            return None;
        }
        let mut edits: Vec<Edit> = import.into_iter().collect();
        edits.push(replace_loop(sem, self.rows.node, &replacement)?);
        Some(fix_unless(
            format!("Replace the loop with `{replacement}`"),
            hazards,
            edits,
        ))
    }

    /// The loop kept, `row.save()` replaced by collecting the row, and one `bulk_update()` of
    /// exactly the assigned fields after the loop.
    fn bulk_update_fix(
        &self,
        sem: &Semantics<'a>,
        settings: &Settings,
        fields: &[String],
        hazards: &[String],
    ) -> Option<Fix> {
        let model = sem.index().model(self.rows.model);
        let class = model_class_name(sem, self.rows.iterable, self.rows.model)?;
        let manager = &model.managers.first()?.name;
        let collected = fresh_local(
            sem,
            self.rows.node,
            &["to_update".to_string(), format!("{}_to_update", self.row)],
        )?;
        let indent = indentation(sem.source, self.rows.node)?;
        let newline = line_ending(sem.source, self.rows.node);
        let save = body_statement(sem, self.rows.node, self.call);
        let quote = quote_style(sem, self.rows.node);
        let field_list = fields
            .iter()
            .map(|f| format!("{quote}{f}{quote}"))
            .collect::<Vec<_>>()
            .join(", ");
        let bulk = format!(
            "{class}.{manager}.bulk_update({collected}, [{field_list}], batch_size={})",
            settings.bulk_batch_size
        );
        let start = self.rows.node.start_byte();
        let end = statement_end(sem.source, self.rows.node);
        let edits = vec![
            Edit::replace(start..start, format!("{collected} = []{newline}{indent}")),
            Edit::replace(
                save.byte_range(),
                format!("{collected}.append({})", self.row),
            ),
            Edit::replace(end..end, format!("{newline}{indent}{bulk}")),
        ];
        Some(fix_unless(
            format!("Collect the rows and call `{bulk}` after the loop"),
            hazards,
            edits,
        ))
    }
}

/// `name = value` (or `name += value`) to a plain local: computing a value for the row.
fn assigns_a_local(statement: Node) -> bool {
    statement.kind_name() == "expression_statement"
        && statement.named_child(0).is_some_and(|a| {
            matches!(a.kind_name(), "assignment" | "augmented_assignment")
                && a.field(&field::LEFT)
                    .is_some_and(|l| l.kind_name() == "identifier")
                && a.field(&field::RIGHT).is_some()
        })
}

/// The reads `row.field` in `value`, with the field's name.
fn row_fields_read<'a>(
    sem: &Semantics<'a>,
    value: Node<'a>,
    row: &str,
) -> Vec<(Node<'a>, &'a str)> {
    let mut reads = Vec::new();
    walk(value, |n| {
        if n.kind_name() == "attribute" {
            if let (Some(object), Some(name)) =
                (n.field(&field::OBJECT), n.field(&field::ATTRIBUTE))
            {
                if object.kind_name() == "identifier" && sem.text(object) == row {
                    reads.push((n, sem.text(name)));
                    return false;
                }
            }
        }
        true
    });
    reads
}

fn has_string(value: Node) -> bool {
    let mut found = false;
    walk(value, |n| {
        found |= matches!(n.kind_name(), "string" | "concatenated_string");
        !found
    });
    found
}

/// `value`'s source with each `row.field` read written `F("field")`.
fn with_f_expressions(sem: &Semantics, value: Node, reads: &[(Node, &str)], quote: char) -> String {
    let mut out = String::new();
    let mut cursor = value.start_byte();
    for (read, field) in reads {
        out.push_str(&sem.source[cursor..read.start_byte()]);
        out.push_str(&format!("F({quote}{field}{quote})"));
        cursor = read.end_byte();
    }
    out.push_str(&sem.source[cursor..value.end_byte()]);
    out
}

/// How this file names the model class `model`: the class at the root of the QuerySet chain the
/// loop iterates (`Entry` in `Entry.objects.filter(...)`), directly or where the iterated name
/// is built.
pub fn model_class_name<'a>(
    sem: &Semantics<'a>,
    iterable: Node<'a>,
    model: ModelId,
) -> Option<&'a str> {
    let mut node = construction_site(sem, iterable).unwrap_or(iterable);
    for _ in 0..64 {
        node = strip_parens(node);
        node = match node.kind_name() {
            "call" => node.field(&field::FUNCTION)?,
            "attribute" => node.field(&field::OBJECT)?,
            "subscript" => node.field(&field::VALUE)?,
            "identifier" => {
                return (sem.ty(node) == Ty::ModelClass(ModelRef::Indexed(model)))
                    .then(|| sem.text(node));
            }
            _ => return None,
        };
    }
    None
}
