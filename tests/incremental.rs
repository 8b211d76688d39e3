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

/// Statements that read one another: `export`'s parameter is typed from its calls, and a large
/// class's methods read what `setUp` assigns to `self.entries`. Padded past the size from
/// which a class is linted method by method.
fn reading_one_another() -> String {
    let mut text = "from django.db import models\nfrom blog.models import Entry\n\n\ndef export(rows):\n    for row in rows:\n        print(row.blog.name)\n\n\ndef view():\n    export(Entry.objects.all())\n\n\nclass Shelf(models.Model):\n    def rows(self):\n        return Entry.objects.all()\n\n\ndef use_shelf(shelf: Shelf):\n    for e in shelf.rows():\n        print(e.blog.name)\n\n\nclass Report:\n    def setUp(self):\n        self.entries = Entry.objects.all()\n\n    def total(self):\n        return len(self.entries)\n\n    def helper(self, rows):\n        return [r.blog for r in rows]\n\n    def use(self):\n        return self.helper(Entry.objects.all())\n".to_string();
    for i in 0..700 {
        text.push_str(&format!(
            "\n    def padding_{i}(self):\n        return {i}\n"
        ));
    }
    text
}

/// Lines that change what one statement tells another.
const READING_FRAGMENTS: &[&str] = &[
    "    export([])\n",
    "    export(Entry.objects.select_related('blog'))\n",
    "        self.entries = []\n",
    "        self.entries = list(Entry.objects.all())\n",
    "        self.helper(Entry.objects.select_related('blog'))\n",
    "        self.helper(rows=[])\n",
    "        return Entry.objects.select_related('blog')\n",
    "    chosen = export\n",
    "        chosen = self.helper\n",
    "export",
    "(",
    ")",
    "\n",
    "",
];

/// Findings around comments: a note above a function and in one, a comment after a finding,
/// one that silences a finding, one in a loop a fix rewrites.
const COMMENTED: &str = "from blog.models import Entry\n# a note about the module\n\n\ndef count(blog):\n    qs = Entry.objects.all()\n    other = qs.filter(blog=blog)\n    n = len(qs)  # counted\n    m = len(other)  # noqa: ORM101\n    # a note in a function\n    for e in qs:  # each\n        e.blog = blog\n        e.save()\n    return n + m  # no\n";

/// Keystrokes into (and out of) comments: letters, suppressions (both spellings) typed whole or
/// a few letters at a time, a `#`, a line break, deletions.
const COMMENT_FRAGMENTS: &[&str] = &[
    "x",
    "y",
    "z",
    "q",
    "noqa",
    "noq",
    "a",
    "#",
    " ",
    "\n",
    "",
    "",
    "orm: ignore[ORM101]",
    "]",
];

/// Applies each edit (line, character, length replaced, text) to `text` in turn, linting
/// incrementally with one cache after each, the way the editor does (`lint_typed`: what the
/// text alone tells first, which may spare the parse or say which tree to parse from; findings
/// made without parsing are checked against the tree, and linted again if the check fails):
/// the findings must be the whole-file lint's, of a fresh parse.
fn edit_and_compare(
    text: &str,
    file: &django_orm_lsp::analysis::FileContext,
    edits: Vec<(u32, u32, u32, &str)>,
) -> Result<(), TestCaseError> {
    use django_orm_lsp::analysis::{
        lint, lint_incremental, lint_typed, prediction_holds, LintCache, WantedTree,
    };
    let settings = django_orm_lsp::settings::Settings::default();
    let mut document = Document::new(text, 0);
    let mut cache = LintCache::default();
    for (version, (line, character, len, text)) in edits.into_iter().enumerate() {
        let start = TextPosition::new(line, character);
        let end = TextPosition::new(line, character + len);
        let change = TextChange {
            range: Some((start, end)),
            text: text.to_string(),
        };
        document.apply_changes(&[change], version as i32 + 1, PositionEncoding::Utf8);
        let snapshot = document.snapshot();
        let text = snapshot.text();
        let typed = lint_typed(text, &settings, file, &mut cache, |wanted| match wanted {
            WantedTree::Current => snapshot.tree(),
            WantedTree::Mended => snapshot.tree_mended(),
        })
        .unwrap();
        let incremental = match &typed.predicted {
            Some(region) if !prediction_holds(text, snapshot.tree().unwrap(), region) => {
                lint_incremental(text, snapshot.tree().unwrap(), &settings, file, &mut cache)
            }
            _ => typed.found,
        };
        let full = lint(
            text,
            &django_orm_lsp::store::parse_python(text).unwrap(),
            &settings,
            file,
        );
        prop_assert_eq!(incremental, full);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 150, ..ProptestConfig::default() })]

    /// The same, when statements read one another through call sites and `self` attributes,
    /// in a workspace (parameters are typed from their calls only there).
    #[test]
    fn incremental_lint_follows_what_statements_read_from_one_another(
        edits in proptest::collection::vec((0u32..38, 0u32..12, 0u32..6, proptest::sample::select(READING_FRAGMENTS)), 1..10),
    ) {
        let models = "from django.db import models\n\nclass Blog(models.Model):\n    name = models.CharField(max_length=10)\n\nclass Entry(models.Model):\n    blog = models.ForeignKey(Blog, on_delete=models.CASCADE)\n";
        let views = reading_one_another();
        let project = common::temp::project(&[("blog/models.py", models.as_bytes()), ("blog/views.py", views.as_bytes())]);
        let workspace = django_orm_lsp::workspace::Workspace::scan(project.path(), |_, _| {});
        let file = workspace.context_for(&project.path().join("blog/views.py"));
        edit_and_compare(&views, &file, edits)?;
    }

    /// The same while typing goes into comments (on the lines that have one), which the
    /// editor answers from the last lint without parsing where a comment cannot change what
    /// it found.
    #[test]
    fn typing_in_comments_gives_the_whole_lint(
        edits in proptest::collection::vec((proptest::sample::select(&[1u32, 7, 8, 9, 10, 13][..]), 20u32..60, 0u32..4, proptest::sample::select(COMMENT_FRAGMENTS)), 1..12),
    ) {
        let models = "from django.db import models\n\nclass Blog(models.Model):\n    name = models.CharField(max_length=10)\n\nclass Entry(models.Model):\n    blog = models.ForeignKey(Blog, on_delete=models.CASCADE)\n";
        let project = common::temp::project(&[("blog/models.py", models.as_bytes()), ("blog/views.py", COMMENTED.as_bytes())]);
        let workspace = django_orm_lsp::workspace::Workspace::scan(project.path(), |_, _| {});
        let file = workspace.context_for(&project.path().join("blog/views.py"));
        edit_and_compare(COMMENTED, &file, edits)?;
    }

    /// Re-linting only the changed statements gives the findings of linting the whole file.
    #[test]
    fn incremental_lint_equals_full_lint(
        edits in proptest::collection::vec((0u32..20, 0u32..12, 0u32..6, proptest::sample::select(VIEW_FRAGMENTS)), 1..12),
    ) {
        let file = django_orm_lsp::analysis::FileContext::standalone();
        edit_and_compare(VIEWS, &file, edits)?;
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
