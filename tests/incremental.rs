//! Incremental linting: re-linting only the statements an edit changed gives the findings of
//! linting the whole file. (Incremental edits and reparsing against a fresh parse are fuzzed in
//! tests/fuzz.rs.)

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
