//! Query counts on loops (the code lens `a + bN queries`), compared with real Django: every
//! public function of `tests/fixtures/query_counts/shelf/loops.py` holds one loop and runs
//! nothing else. Django runs each at 2 and at 5 rows (`tests/query_counts/count_queries.py`,
//! `CaptureQueriesContext` on SQLite); the lens on the function's outermost loop must give the
//! same number at both. The functions the module's `NO_LENS` names must get no lens: the
//! analyzer cannot count their queries (a condition, a helper, `__str__`, a cascade ...).
//!
//! Django comes from the virtual environments `tests/execution.rs` caches under
//! `.cache/execution/`; without python3 or PyPI the comparison prints `skipped: <reason>`, and
//! only what needs no Django (which loops get a lens) is checked.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use django_orm_lsp::analysis::query_counts::{query_counts, QueryCount};
use django_orm_lsp::store::parse_python;
use django_orm_lsp::workspace::Workspace;

fn project() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/query_counts")
}

/// The lens of each top-level function's outermost counted loop (`None`: no lens), and the
/// functions `NO_LENS` names.
fn lenses() -> (BTreeMap<String, Option<QueryCount>>, Vec<String>) {
    let root = project();
    let workspace = Workspace::scan(&root, |_, _| {});
    let path = root.join("shelf/loops.py");
    let source = std::fs::read_to_string(&path).unwrap();
    let tree = parse_python(&source).unwrap();
    let counts = query_counts(&source, &tree, &workspace.context_for(&path));
    let mut by_function = BTreeMap::new();
    let mut cursor = tree.root_node().walk();
    for definition in tree.root_node().named_children(&mut cursor) {
        if definition.kind() != "function_definition" {
            continue;
        }
        let name = definition.child_by_field_name("name").unwrap();
        let range = definition.byte_range();
        let outermost = counts
            .iter()
            .find(|c| range.start <= c.range.start && c.range.end <= range.end)
            .cloned();
        by_function.insert(source[name.byte_range()].to_string(), outermost);
    }
    let declined = source
        .lines()
        .skip_while(|l| !l.starts_with("NO_LENS"))
        .take_while(|l| *l != "}")
        .filter_map(|l| l.trim().strip_prefix('"')?.split('"').next())
        .map(str::to_string)
        .collect();
    (by_function, declined)
}

#[test]
fn loops_the_analyzer_cannot_count_get_no_lens() {
    let (lenses, declined) = lenses();
    assert!(declined.len() >= 10, "NO_LENS is read: {declined:?}");
    let wrong: Vec<String> = lenses
        .iter()
        .filter(|(function, lens)| {
            let expected = !declined.contains(function) && *function != "describe";
            lens.is_some() != expected
        })
        .map(|(function, lens)| {
            let shown = lens.as_ref().map_or("no lens".into(), QueryCount::title);
            format!("{function}: {shown}")
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "lens where none is due, or none where one is: {wrong:#?}"
    );
}

/// What Django counts for each function: `[at 2 rows, at 5 rows]`.
fn counted(interpreter: &Path) -> BTreeMap<String, serde_json::Value> {
    let output = Command::new(interpreter)
        .arg(project().join("../../query_counts/count_queries.py"))
        .arg(project())
        .arg("shelf")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "count_queries.py: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn lenses_equal_the_queries_django_runs() {
    let Some(installed) = common::django_env::installed() else {
        return;
    };
    let (lenses, _) = lenses();
    for django in installed {
        let counted = counted(&django.interpreter);
        let mut compared = 0;
        for (function, lens) in &lenses {
            let Some(lens) = lens else { continue };
            let queries = counted
                .get(function)
                .and_then(|c| serde_json::from_value::<[u32; 2]>(c.clone()).ok())
                .unwrap_or_else(|| {
                    panic!("{function}: Django counted {:?}", counted.get(function))
                });
            let predicted = [2, 5].map(|rows| lens.before + lens.per_row * rows);
            assert_eq!(
                predicted,
                queries,
                "{function} on Django {}: the lens says `{}`",
                django.label,
                lens.title()
            );
            compared += 1;
        }
        println!(
            "Django {}: {compared} lenses equal to the queries counted at 2 and 5 rows",
            django.label
        );
    }
}
