//! Incremental linting: re-linting only the statements an edit changed gives the findings of
//! linting the whole file. (Incremental edits and reparsing against a fresh parse are fuzzed in
//! tests/fuzz.rs.)

mod common;

use django_orm_lsp::store::{Document, PositionEncoding, TextChange, TextPosition};
use proptest::prelude::*;

const VIEWS: &str = "from blog.models import Entry\n\nqs = Entry.objects.all()\nif qs:\n    pass\n\n\ndef count(blog):\n    entries = Entry.objects.filter(blog=blog)\n    return len(entries)\n\n\ndef show(blog):\n    for e in Entry.objects.all():\n        print(e)\n    return 1\n";

/// Lines that make and unmake findings, and edits that break and repair syntax.
const VIEW_FRAGMENTS: &[&str] = &[
    "    return list(qs)\n",
    "    print(len(entries))\n",
    "    if Entry.objects.filter(a=1).count() > 0:\n        pass\n",
    "entries = Entry.objects.all()\n",
    "print(list(qs))\n",
    "def extra():\n    return bool(Entry.objects.all())\n",
    "x",
    "(",
    "\n",
    "# noqa",
    "",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 150, ..ProptestConfig::default() })]

    /// Re-linting only the changed statements gives the findings of linting the whole file.
    #[test]
    fn incremental_lint_equals_full_lint(
        edits in proptest::collection::vec((0u32..20, 0u32..12, 0u32..6, proptest::sample::select(VIEW_FRAGMENTS)), 1..12),
    ) {
        let settings = django_orm_lsp::settings::Settings::default();
        let file = django_orm_lsp::analysis::FileContext::standalone();
        let mut document = Document::new(VIEWS, 0);
        let mut cache = django_orm_lsp::analysis::LintCache::default();
        for (version, (line, character, len, text)) in edits.into_iter().enumerate() {
            let start = TextPosition::new(line, character);
            let end = TextPosition::new(line, character + len);
            let change = TextChange { range: Some((start, end)), text: text.to_string() };
            document.apply_changes(&[change], version as i32 + 1, PositionEncoding::Utf8);
            let text = document.rope().to_string();
            let tree = document.tree().unwrap();
            let incremental = django_orm_lsp::analysis::lint_incremental(&text, tree, &settings, &file, &mut cache);
            let full = django_orm_lsp::analysis::lint(&text, tree, &settings, &file);
            prop_assert_eq!(incremental, full);
        }
    }
}

/// What the editor shows (the incremental lint, fresh and after a keystroke in the middle of
/// the file) is what `check` reports (the whole-file lint), on every fixture project with its
/// model index.
#[test]
fn the_editor_and_check_agree_on_every_fixture_file() {
    use django_orm_lsp::analysis::{lint, lint_incremental, LintCache};
    use django_orm_lsp::settings::Settings;
    use django_orm_lsp::workspace::Workspace;

    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures");
    let mut folders: Vec<_> = std::fs::read_dir(fixtures.join("projects"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    folders.extend([fixtures.join("demo_project"), fixtures.join("rules")]);
    let settings = Settings::default();
    let mut compared = 0;
    for folder in folders {
        let workspace = Workspace::scan(&folder, |_, _| {});
        for path in common::python_files(&folder) {
            let source = std::fs::read_to_string(&path).unwrap();
            let file = workspace.context_for(&path);
            let mut cache = LintCache::default();
            let middle = source[..source.len() / 2].rfind('\n').map_or(0, |i| i + 1);
            let typed = format!("{}#x\n{}", &source[..middle], &source[middle..]);
            for text in [&source, &typed] {
                let tree = django_orm_lsp::store::parse_python(text).unwrap();
                assert_eq!(
                    lint_incremental(text, &tree, &settings, &file, &mut cache),
                    lint(text, &tree, &settings, &file),
                    "{}",
                    path.display()
                );
                compared += 1;
            }
        }
    }
    assert!(compared > 50, "only {compared} texts compared");
}
