//! What the analyzer infers, asserted at marked places of fixture projects. Under a line of code,
//! `#> EXPRESSION => TYPE` names the expected type of the first occurrence of EXPRESSION in it:
//!
//! ```python
//! paid = Order.objects.paid()
//! #> paid => QuerySet[shop.Order]
//! ```
//!
//! `Unknown` means the analyzer must not claim to know.

mod common;

use std::path::Path;

use django_orm_lsp::analysis::hover::type_of_range;
use django_orm_lsp::store::parse_python;
use django_orm_lsp::workspace::Workspace;

fn markers(source: &str) -> Vec<(usize, std::ops::Range<usize>, String)> {
    let mut found = Vec::new();
    let mut code: Option<(usize, &str)> = None;
    let mut offset = 0;
    for (number, line) in source.split_inclusive('\n').enumerate() {
        let trimmed = line.trim_start();
        if let Some(marker) = trimmed.strip_prefix("#>") {
            let (expression, expected) = marker.split_once("=>").expect("`#> EXPRESSION => TYPE`");
            let expression = expression.trim();
            let (start, text) = code.expect("a marker follows a line of code");
            let column = text
                .find(expression)
                .unwrap_or_else(|| panic!("line {}: `{expression}` not in `{text}`", number + 1));
            found.push((
                number + 1,
                start + column..start + column + expression.len(),
                expected.trim().to_string(),
            ));
        } else if !trimmed.starts_with('#') && !trimmed.trim().is_empty() {
            code = Some((offset, line));
        }
        offset += line.len();
    }
    found
}

fn check_project(root: &Path) -> usize {
    let mut errors = Vec::new();
    let mut checked = 0;
    let workspace = Workspace::scan(root, |_, _| {});
    for path in common::python_files(root) {
        let source = std::fs::read_to_string(&path).unwrap();
        let tree = parse_python(&source).unwrap();
        let file = workspace.context_for(&path);
        for (line, range, expected) in markers(&source) {
            let actual = type_of_range(&source, &tree, &file, range.clone());
            checked += 1;
            if actual.as_deref() != Some(expected.as_str()) {
                errors.push(format!(
                    "{}:{line}: `{}` expected {expected}, got {}",
                    path.strip_prefix(root).unwrap().display(),
                    &source[range],
                    actual.unwrap_or_else(|| "no expression at the carets".into())
                ));
            }
        }
    }
    assert!(
        errors.is_empty(),
        "{} of {checked} markers differ:\n{}",
        errors.len(),
        errors.join("\n")
    );
    checked
}

#[test]
fn inferred_types_at_markers() {
    let projects = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/projects");
    let checked = check_project(&projects.join("shopfront"));
    assert!(checked >= 20, "only {checked} markers found");
    let checked = check_project(&projects.join("fieldwork"));
    assert!(checked >= 20, "only {checked} markers found in fieldwork");
    let checked = check_project(&projects.join("restconventions"));
    assert!(checked >= 1, "no markers found in restconventions");
    let checked = check_project(&projects.join("blogapp"));
    assert!(checked >= 1, "no markers found in blogapp");
    let checked = check_project(&projects.join("execsettings"));
    assert!(checked >= 2, "only {checked} markers found in execsettings");
    let checked = check_project(&projects.join("twousers"));
    assert!(checked >= 2, "only {checked} markers found in twousers");
}
