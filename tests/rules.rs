//! Per-rule fixtures: `tests/fixtures/rules/<CODE>*.py`. A line that must be reported ends with
//! `# expect: ORM101` (several codes comma-separated); every other line must be silent. The
//! findings, their fixes and the fixed lines are snapshotted in `tests/snapshots/`.

mod common;

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;

use common::fixes::{apply_checked, syntax_errors};
use std::sync::Arc;

use django_orm_lsp::analysis::index::{extract, ModelIndex};
use django_orm_lsp::analysis::{fix_all, lint, Diagnostic, FileContext};
use django_orm_lsp::settings::Settings;
use django_orm_lsp::store::parse_python;

fn line_of(source: &str, offset: usize) -> usize {
    source[..offset].matches('\n').count() + 1
}

fn line_span(source: &str, start: usize, end: usize) -> &str {
    let from = source[..start].rfind('\n').map_or(0, |i| i + 1);
    let to = source[end..].find('\n').map_or(source.len(), |i| end + i);
    &source[from..to]
}

fn expected_codes(source: &str) -> BTreeMap<usize, Vec<String>> {
    let mut expected = BTreeMap::new();
    for (i, line) in source.lines().enumerate() {
        if let Some((_, codes)) = line.split_once("# expect: ") {
            let mut codes: Vec<String> = codes.split(',').map(|c| c.trim().to_string()).collect();
            codes.sort();
            expected.insert(i + 1, codes);
        }
    }
    expected
}

/// The codes reported on each line, sorted, in the shape of `expected_codes`.
fn reported_codes(source: &str, diagnostics: &[Diagnostic]) -> BTreeMap<usize, Vec<String>> {
    let mut reported: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    for d in diagnostics {
        reported
            .entry(line_of(source, d.range.start))
            .or_default()
            .push(d.code().to_string());
    }
    for codes in reported.values_mut() {
        codes.sort();
    }
    reported
}

fn fixture_settings(source: &str) -> Settings {
    let mut settings = Settings::default();
    if let Some(rest) = source
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("# fixture-settings: target-django="))
    {
        settings.target_django = Settings::parse_django_version(rest).expect("a version");
    }
    settings
}

fn render(source: &str, diagnostics: &[Diagnostic], name: &str) -> String {
    let mut out = String::new();
    for d in diagnostics {
        let line = line_of(source, d.range.start);
        let column = source[..d.range.start]
            .rsplit('\n')
            .next()
            .unwrap()
            .chars()
            .count()
            + 1;
        writeln!(
            out,
            "{line}:{column} {} {}: {}",
            d.code(),
            d.severity.as_str(),
            d.message
        )
        .unwrap();
        let Some(fix) = &d.fix else {
            writeln!(out, "  no fix").unwrap();
            continue;
        };
        writeln!(out, "  fix ({}): {}", fix.applicability.as_str(), fix.title).unwrap();
        let fixed = apply_checked(source, &fix.edits, &format!("{name}:{line} {}", d.code()));
        let span = fix.span().unwrap();
        let delta = fixed.len() as isize - source.len() as isize;
        for old in line_span(source, span.start, span.end).lines() {
            writeln!(out, "  - {old}").unwrap();
        }
        for new in line_span(&fixed, span.start, span.end.saturating_add_signed(delta)).lines() {
            writeln!(out, "  + {new}").unwrap();
        }
    }
    out
}

fn check_fixture(path: &Path) {
    let name = path.file_stem().unwrap().to_str().unwrap();
    let source = std::fs::read_to_string(path).unwrap();
    let tree = parse_python(&source).unwrap();
    // The fixture's own models are indexed, as a workspace with that one file would be.
    let facts = Arc::new(extract(&source, &tree, name, false));
    let file = FileContext::new(Arc::new(ModelIndex::build(vec![facts])), name, false);
    let diagnostics = lint(&source, &tree, &fixture_settings(&source), &file);

    assert_eq!(
        reported_codes(&source, &diagnostics),
        expected_codes(&source),
        "{name}: reported lines differ from the `# expect:` markers"
    );

    // All safe fixes of the file applied together, as fix-all does, must also leave valid code.
    if let Some(fixed) = fix_all(&source, &fixture_settings(&source), &file) {
        assert!(
            syntax_errors(&fixed) <= syntax_errors(&source),
            "{name}: fixing everything introduces a syntax error:\n{fixed}"
        );
    }

    insta::assert_snapshot!(name, render(&source, &diagnostics, name));
}

#[test]
fn rule_fixtures() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/rules");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();
    assert!(paths.len() >= 5, "fixtures missing in {}", dir.display());
    for path in paths
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "py"))
    {
        check_fixture(path);
    }
}

#[test]
fn every_rule_has_a_fixture_and_a_docs_page() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for rule in django_orm_lsp::analysis::rules::ALL {
        let code = rule.meta.code;
        assert!(
            root.join(format!("tests/fixtures/rules/{code}.py"))
                .is_file(),
            "{code} has no fixture"
        );
        assert!(
            root.join(format!("docs/rules/{code}.md")).is_file(),
            "{code} has no docs page"
        );
    }
}

/// Fixture projects: every file is linted with the project's model index, and `# expect:`
/// markers in any of its files must match exactly.
#[test]
fn rule_fixture_projects() {
    let projects = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/projects");
    let mut checked_markers = 0;
    for project in std::fs::read_dir(&projects)
        .unwrap()
        .map(|e| e.unwrap().path())
    {
        let workspace = django_orm_lsp::workspace::Workspace::scan(&project, |_, _| {});
        let mut errors = Vec::new();
        for path in common::python_files(&project) {
            let source = std::fs::read_to_string(&path).unwrap();
            let tree = parse_python(&source).unwrap();
            let diagnostics = lint(
                &source,
                &tree,
                &Settings::default(),
                &workspace.context_for(&path),
            );
            let relative = path.strip_prefix(&project).unwrap().display().to_string();
            // Every fix in a project must leave valid code and the bytes around it unchanged.
            for d in &diagnostics {
                if let Some(fix) = &d.fix {
                    apply_checked(&source, &fix.edits, &format!("{relative} {}", d.code()));
                }
            }
            let actual = reported_codes(&source, &diagnostics);
            let expected = expected_codes(&source);
            if !diagnostics.is_empty() {
                let relative = path.strip_prefix(&project).unwrap().display().to_string();
                let name = format!(
                    "{}__{}",
                    project.file_name().unwrap().to_string_lossy(),
                    relative.replace(['/', '\\'], "__")
                );
                insta::assert_snapshot!(name.clone(), render(&source, &diagnostics, &name));
            }
            checked_markers += expected.len();
            if actual != expected {
                errors.push(format!(
                    "{relative}: reported {actual:?}, expected {expected:?}"
                ));
            }
        }
        assert!(
            errors.is_empty(),
            "{}:\n{}",
            project.display(),
            errors.join("\n")
        );
    }
    assert!(
        checked_markers >= 7,
        "only {checked_markers} expectations in the fixture projects"
    );
}
