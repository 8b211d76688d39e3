//! Writes in loops: what the write rules (ORM301–ORM306) share. A loop that writes one row per
//! iteration can become one statement, but only when nothing else in the loop would run in a
//! different order, and only when the model has no hook (an overridden `save()`, a signal
//! receiver) that the bulk statement would skip without saying so.

use tree_sitter::Node;

use super::diagnostic::{Applicability, Edit, Fix};
use super::index::{FieldKind, Model};
use super::infer::Semantics;
use super::syntax::{contains, enclosing_loops, walk};

/// The innermost loop around `node` in its scope, when it is a `for` statement: the loop whose
/// every iteration runs `node` once.
pub fn innermost_for<'a>(sem: &Semantics<'a>, node: Node<'a>) -> Option<Node<'a>> {
    let scope = sem.scope_of(node).scope;
    let innermost = *enclosing_loops(node, scope, &sem.parents).first()?;
    (innermost.kind() == "for_statement").then_some(innermost)
}

/// The statements of a `for` loop's body when the loop can be rewritten as a whole: no `else:`
/// clause, not `async`, and nothing in it that jumps or fails part-way (`break`, `continue`,
/// `return`, `yield`, `raise`, `try`, `with`, `await`, `del`, `global`), which a single bulk
/// statement could not reproduce. Comments are left out; nested functions are not looked into.
pub fn plain_body<'a>(for_loop: Node<'a>) -> Option<Vec<Node<'a>>> {
    if for_loop.child_by_field_name("alternative").is_some()
        || for_loop.child(0).is_some_and(|c| c.kind() == "async")
    {
        return None;
    }
    let body = for_loop.child_by_field_name("body")?;
    let mut jumps = false;
    walk(body, |n| {
        jumps |= matches!(
            n.kind(),
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
        !jumps && !matches!(n.kind(), "function_definition" | "class_definition" | "lambda")
    });
    if jumps {
        return None;
    }
    let mut cursor = body.walk();
    let statements = body
        .named_children(&mut cursor)
        .filter(|s| s.kind() != "comment")
        .collect();
    Some(statements)
}

/// `statement` is `call` on its own: its value is not used.
pub fn is_call_statement(statement: Node, call: Node) -> bool {
    statement.kind() == "expression_statement"
        && statement.named_child_count() == 1
        && statement.named_child(0).is_some_and(|e| e.id() == call.id())
}

/// The statement directly in the loop's body that holds `node`.
pub fn body_statement<'a>(sem: &Semantics<'a>, for_loop: Node<'a>, node: Node<'a>) -> Node<'a> {
    let body = for_loop.child_by_field_name("body");
    let mut current = node;
    while let Some(parent) = sem.parents.of(current) {
        if body.is_some_and(|b| b.id() == parent.id()) {
            break;
        }
        current = parent;
    }
    current
}

/// The whitespace before `node` on its line, if only whitespace precedes it there.
pub fn indentation<'a>(sem: &Semantics<'a>, node: Node) -> Option<&'a str> {
    let start = node.start_byte();
    let line_start = sem.source[..start].rfind(['\n', '\r']).map_or(0, |i| i + 1);
    let indent = &sem.source[line_start..start];
    indent.chars().all(|c| c == ' ' || c == '\t').then_some(indent)
}

/// The line ending the line of `node` uses (`\r\n` files keep theirs), `\n` by default.
pub fn line_ending(sem: &Semantics, node: Node) -> &'static str {
    match sem.source[node.start_byte()..].find('\n') {
        Some(i) if sem.source[..node.start_byte() + i].ends_with('\r') => "\r\n",
        _ => "\n",
    }
}

/// The edit that replaces the whole `for_loop` with `replacement` at the loop's indentation.
/// Comments inside the loop are kept, each on its own line above the new statement. A loop with
/// blank lines inside is left alone: they separate steps whose grouping one line cannot keep.
pub fn replace_loop(sem: &Semantics, for_loop: Node, replacement: &str) -> Option<Edit> {
    let text = sem.text(for_loop);
    if text.lines().skip(1).any(|l| l.trim().is_empty()) {
        return None;
    }
    let indent = indentation(sem, for_loop)?;
    let newline = line_ending(sem, for_loop);
    let mut lines: Vec<&str> = Vec::new();
    walk(for_loop, |n| {
        if n.kind() == "comment" {
            lines.push(sem.text(n));
        }
        true
    });
    lines.push(replacement);
    Some(Edit::replace(
        for_loop.byte_range(),
        lines.join(&format!("{newline}{indent}")),
    ))
}

/// Whether `name` is read in the loop's scope where the loop has finished (after it, or
/// anywhere in an enclosing loop): after the loop it holds the last row, which a bulk statement
/// never binds.
pub fn read_outside_loop<'a>(sem: &Semantics<'a>, for_loop: Node<'a>, name: &str) -> bool {
    let scope = sem.scope_of(for_loop);
    let nested = !enclosing_loops(for_loop, scope.scope, &sem.parents).is_empty();
    scope
        .references(name)
        .iter()
        .any(|r| !contains(for_loop, *r) && (nested || r.start_byte() >= for_loop.end_byte()))
}

/// A name for a new local that the scope of `node` neither binds nor reads.
pub fn fresh_name<'a>(sem: &Semantics<'a>, node: Node<'a>, candidates: &[String]) -> Option<String> {
    let scope = sem.scope_of(node);
    candidates
        .iter()
        .find(|c| scope.references(c).is_empty() && scope.bindings(c).is_empty())
        .cloned()
}

/// Why `save()` called per row does more than a bulk `update()`/`bulk_update()`: an overridden
/// `save()`, or receivers of the save signals (bulk writes send none).
pub fn save_hooks(model: &Model) -> Vec<String> {
    let mut hooks = Vec::new();
    if model.overrides_save {
        hooks.push(format!("{}.save() is overridden", model.name));
    }
    for signal in ["pre_save", "post_save"] {
        if model.signals.iter().any(|s| s == signal) {
            hooks.push(format!("{} has {signal} receivers", model.name));
        }
    }
    hooks
}

/// `auto_now` fields that `save()` would set and a bulk write of `written` leaves as they are.
pub fn auto_now_left_out(model: &Model, written: &[String]) -> Vec<String> {
    model
        .fields
        .iter()
        .filter(|f| f.auto_now_on_save && !written.contains(&f.name))
        .map(|f| format!("{}.{} (auto_now) is not bumped", model.name, f.name))
        .collect()
}

/// A field a bulk write can set by name: a column of the model (not a many-to-many relation,
/// not a property the index cannot see).
pub fn is_writable_field(model: &Model, name: &str) -> bool {
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
