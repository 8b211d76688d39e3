//! What every fix must satisfy, whoever applies it.

use django_orm_lsp::analysis::{apply_edits, Edit};
use django_orm_lsp::store::parse_python;

/// Number of syntax errors (ERROR and MISSING nodes) in `source`.
pub fn syntax_errors(source: &str) -> usize {
    let tree = parse_python(source).expect("parses");
    let mut count = 0;
    let mut cursor = tree.walk();
    loop {
        let node = cursor.node();
        if node.is_error() || node.is_missing() {
            count += 1;
        }
        if cursor.goto_first_child() || cursor.goto_next_sibling() {
            continue;
        }
        loop {
            if !cursor.goto_parent() {
                return count;
            }
            if cursor.goto_next_sibling() {
                break;
            }
        }
    }
}

/// Applies `edits`, and asserts the result re-parses with no new syntax errors and that every
/// byte outside the edited ranges is unchanged.
pub fn apply_checked(source: &str, edits: &[Edit], what: &str) -> String {
    let fixed = apply_edits(source, edits)
        .unwrap_or_else(|| panic!("{what}: edits overlap or are out of bounds"));
    assert!(
        syntax_errors(&fixed) <= syntax_errors(source),
        "{what}: the fix introduces a syntax error:\n{fixed}"
    );
    let start = edits.iter().map(|e| e.range.start).min().unwrap_or(0);
    let end = edits.iter().map(|e| e.range.end).max().unwrap_or(0);
    let tail = source.len() - end;
    assert_eq!(
        &fixed[..start],
        &source[..start],
        "{what}: text before the fix changed"
    );
    assert_eq!(
        &fixed[fixed.len() - tail..],
        &source[end..],
        "{what}: text after the fix changed"
    );
    fixed
}
