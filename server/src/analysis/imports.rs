//! Imports that fixes need (`from django.db.models import F, Prefetch`): added once, merged into
//! an existing `from <module> import ...` line when the file has one, never duplicated.

use tree_sitter::Node;

use super::diagnostic::Edit;
use super::infer::Semantics;
use crate::analysis::syntax::{
    field::{self, FieldOf},
    KindOf,
};

/// A name the fix needs is already bound at module level to something else (`F = ...`,
/// `from sympy import F`): the fix cannot use it without shadowing.
#[derive(Debug, PartialEq, Eq)]
pub struct NameTaken;

/// The edit that makes each of `names` importable from `module`, or `None` when they all are.
pub fn import_names(
    sem: &Semantics,
    module: &str,
    names: &[&str],
) -> Result<Option<Edit>, NameTaken> {
    let root = sem.parents.root();
    let mut missing: Vec<&str> = Vec::new();
    let mut same_module: Option<Node> = None;
    let mut last_import: Option<Node> = None;
    let mut docstring: Option<Node> = None;
    let mut cursor = root.walk();
    let statements: Vec<Node> = root.named_children(&mut cursor).collect();
    for (i, statement) in statements.iter().enumerate() {
        match statement.kind_name() {
            "import_from_statement" | "future_import_statement" | "import_statement" => {
                last_import = Some(*statement)
            }
            "expression_statement"
                if i == 0
                    && statement
                        .named_child(0)
                        .is_some_and(|s| s.kind_name() == "string") =>
            {
                docstring = Some(*statement)
            }
            _ => {}
        }
        if statement.kind_name() == "import_from_statement"
            && from_module(sem, *statement) == module
        {
            let plain = !sem.text(*statement).contains('\\');
            if plain && same_module.is_none() {
                same_module = Some(*statement);
            }
        }
    }
    for name in names {
        match binding_of(sem, &statements, name) {
            Some(from) if from == module || from == "*" => {}
            Some(_) => return Err(NameTaken),
            None => missing.push(name),
        }
    }
    if missing.is_empty() {
        return Ok(None);
    }
    if let Some(statement) = same_module {
        let mut cursor = statement.walk();
        let last_name = statement
            .children_by_field_name("name", &mut cursor)
            .last()
            .filter(|n| n.kind_name() == "dotted_name" || n.kind_name() == "aliased_import");
        if let Some(last_name) = last_name {
            let at = last_name.end_byte();
            return Ok(Some(Edit::replace(
                at..at,
                format!(", {}", missing.join(", ")),
            )));
        }
    }
    let line = format!("from {module} import {}", missing.join(", "));
    let newline = if sem.source.contains("\r\n") {
        "\r\n"
    } else {
        "\n"
    };
    // On the line after the last import (after its trailing comment, if any).
    let after = last_import.or(docstring).map_or(0, |s| s.end_byte());
    let rest = &sem.source[after..];
    Ok(Some(match rest.find(['\n', '\r']) {
        Some(i) if after > 0 => {
            let eol = if rest[i..].starts_with("\r\n") { 2 } else { 1 };
            let at = after + i + eol;
            Edit::replace(at..at, format!("{line}{newline}"))
        }
        None if after > 0 => Edit::replace(
            sem.source.len()..sem.source.len(),
            format!("{newline}{line}{newline}"),
        ),
        _ => Edit::replace(0..0, format!("{line}{newline}")),
    }))
}

/// `django.db.models` of `from django.db.models import F`.
fn from_module<'a>(sem: &Semantics<'a>, statement: Node<'a>) -> &'a str {
    statement
        .field(&field::MODULE_NAME)
        .map_or("", |m| sem.text(m))
}

/// What binds `name` at module level: the module an import takes it from, `*` for a star import
/// of `django.db.models`, `?` for anything else (an assignment, a definition, a renamed import).
fn binding_of<'a>(sem: &Semantics<'a>, statements: &[Node<'a>], name: &str) -> Option<&'a str> {
    for statement in statements {
        match statement.kind_name() {
            "import_from_statement" => {
                let module = from_module(sem, *statement);
                let mut cursor = statement.walk();
                for child in statement.named_children(&mut cursor) {
                    if child.kind_name() == "wildcard_import" && module == "django.db.models" {
                        return Some("*");
                    }
                }
                let mut cursor = statement.walk();
                for imported in statement.children_by_field_name("name", &mut cursor) {
                    let bound = match imported.kind_name() {
                        "aliased_import" => imported.field(&field::ALIAS),
                        _ => Some(imported),
                    };
                    if bound.is_some_and(|b| sem.text(b) == name) {
                        let original = imported.field(&field::NAME).unwrap_or(imported);
                        // `from x import F as G` binds G; `from ... import Count as F` binds F
                        // to something else.
                        return Some(if sem.text(original) == name {
                            module
                        } else {
                            "?"
                        });
                    }
                }
            }
            "expression_statement" => {
                let assigned = statement
                    .named_child(0)
                    .filter(|a| a.kind_name() == "assignment")
                    .and_then(|a| a.field(&field::LEFT));
                if assigned.is_some_and(|l| sem.text(l) == name) {
                    return Some("?");
                }
            }
            "function_definition" | "class_definition"
                if statement
                    .field(&field::NAME)
                    .is_some_and(|n| sem.text(n) == name) =>
            {
                return Some("?");
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::diagnostic::apply_edits;
    use crate::analysis::index::FileFacts;
    use crate::analysis::index::ModelIndex;

    fn with_imports(source: &str, names: &[&str]) -> Result<String, NameTaken> {
        let tree = crate::store::parse_python(source).unwrap();
        let index = ModelIndex::default();
        let facts = FileFacts::default();
        let sem = Semantics::new(source, tree.root_node(), &index, &facts);
        Ok(match import_names(&sem, "django.db.models", names)? {
            Some(edit) => apply_edits(source, &[edit]).unwrap(),
            None => source.to_string(),
        })
    }

    #[test]
    fn merges_into_the_existing_line() {
        assert_eq!(
            with_imports("from django.db.models import Q\nx = 1\n", &["F", "Sum"]).unwrap(),
            "from django.db.models import Q, F, Sum\nx = 1\n"
        );
        assert_eq!(
            with_imports("from django.db.models import (\n    Q,\n)\n", &["F"]).unwrap(),
            "from django.db.models import (\n    Q, F,\n)\n"
        );
    }

    #[test]
    fn adds_a_line_after_the_last_import() {
        assert_eq!(
            with_imports("\"\"\"Doc.\"\"\"\nimport os\nfrom blog.models import Entry\n\nx = 1\n", &["F"]).unwrap(),
            "\"\"\"Doc.\"\"\"\nimport os\nfrom blog.models import Entry\nfrom django.db.models import F\n\nx = 1\n"
        );
        assert_eq!(
            with_imports("\"\"\"Doc.\"\"\"\nx = 1\n", &["F"]).unwrap(),
            "\"\"\"Doc.\"\"\"\nfrom django.db.models import F\nx = 1\n"
        );
        assert_eq!(
            with_imports("x = 1\n", &["F"]).unwrap(),
            "from django.db.models import F\nx = 1\n"
        );
        assert_eq!(
            with_imports("import os  # why\nx = 1\n", &["F"]).unwrap(),
            "import os  # why\nfrom django.db.models import F\nx = 1\n"
        );
        assert_eq!(
            with_imports("import os", &["F"]).unwrap(),
            "import os\nfrom django.db.models import F\n"
        );
    }

    #[test]
    fn never_duplicates() {
        let source = "from django.db.models import F, Q\n";
        assert_eq!(with_imports(source, &["F"]).unwrap(), source);
        let star = "from django.db.models import *\n";
        assert_eq!(with_imports(star, &["Sum"]).unwrap(), star);
    }

    #[test]
    fn refuses_a_name_bound_to_something_else() {
        assert_eq!(
            with_imports("from sympy import F\n", &["F"]),
            Err(NameTaken)
        );
        assert_eq!(with_imports("F = 3\n", &["F"]), Err(NameTaken));
        assert_eq!(
            with_imports("from django.db.models import Count as F\n", &["F"]),
            Err(NameTaken)
        );
    }
}
