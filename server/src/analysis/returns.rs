//! The part of a function's text that what it returns depends on: its header, its `return`
//! values, and the assignments those values read, transitively. Callers elsewhere in the file
//! are typed from it (`Semantics::returns_of`), so the lint cache keys them on it rather than on
//! the whole text: typing inside a helper re-lints its callers only when this part changes.

use std::hash::{Hash, Hasher};

use rustc_hash::{FxHashSet, FxHasher};
use tree_sitter::Node;

use super::syntax::{
    field::{self, FieldOf},
    text, walk, KindOf,
};

/// Bounds the closure over assignments on pathological input.
const MAX_ROUNDS: usize = 8;

/// The key of `definition` (a function, maybe decorated); `None` for anything else.
pub fn returns_key(definition: Node, source: &str) -> Option<u64> {
    let function = super::syntax::undecorated(definition);
    if function.kind_name() != "function_definition" {
        return None;
    }
    let body = function.field(&field::BODY)?;
    let mut hasher = FxHasher::default();
    source[definition.start_byte()..body.start_byte()].hash(&mut hasher);
    let mut returned = Vec::new();
    let mut assignments = Vec::new();
    walk(body, |n| {
        match n.kind_name() {
            "return_statement" | "yield" => returned.push(n),
            "assignment" => assignments.push(n),
            _ => {}
        }
        !matches!(
            n.kind_name(),
            "function_definition" | "lambda" | "class_definition"
        )
    });
    let mut names: FxHashSet<&str> = FxHashSet::default();
    for node in &returned {
        text(*node, source).hash(&mut hasher);
        add_names(*node, source, &mut names);
    }
    let mut included = vec![false; assignments.len()];
    for _ in 0..MAX_ROUNDS {
        let mut grew = false;
        for (i, assignment) in assignments.iter().enumerate() {
            let assigns_read_name = assignment
                .field(&field::LEFT)
                .is_some_and(|left| names.contains(text(left, source)));
            if !included[i] && assigns_read_name {
                included[i] = true;
                grew = true;
                add_names(*assignment, source, &mut names);
            }
        }
        if !grew {
            break;
        }
    }
    for (assignment, _) in assignments.iter().zip(&included).filter(|(_, i)| **i) {
        text(*assignment, source).hash(&mut hasher);
    }
    Some(hasher.finish())
}

fn add_names<'s>(node: Node, source: &'s str, names: &mut FxHashSet<&'s str>) {
    walk(node, |n| {
        if n.kind_name() == "identifier" {
            names.insert(text(n, source));
        }
        true
    });
}
