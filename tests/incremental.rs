//! Random edit sequences applied incrementally give the same text as the edits applied to a
//! plain rope, and the same tree as parsing the final text from scratch (around syntax errors,
//! the same extent and the same verdict: tree-sitter's recovery may shape ERROR nodes
//! differently when it reuses old subtrees).

use django_orm_lsp::store::{
    offset_at, parse_python, Document, PositionEncoding, TextChange, TextPosition,
};
use proptest::prelude::*;
use ropey::Rope;

const SEED: &str = "from blog.models import Entry\r\n\r\ndef f(blog):\n    qs = Entry.objects.filter(blog=blog)  # é\n    if len(qs) > 0:\r        return [e.title for e in qs]\n    return 'ü😀'\n";

/// Fragments that make and break syntax: brackets, quotes, indentation, every line break.
const FRAGMENTS: &[&str] = &[
    "(",
    ")",
    "[",
    "]",
    ":",
    "'",
    "\"\"\"",
    "\n",
    "\r\n",
    "\r",
    "    ",
    "x",
    "é",
    "😀",
    "def g():\n    return 1\n",
    "if x:\n",
    "len(qs)",
    "#",
    "\\",
    "",
];

#[derive(Clone, Debug)]
struct EditSpec {
    start: (u32, u32),
    len: u32,
    text: &'static str,
}

fn edit_strategy() -> impl Strategy<Value = EditSpec> {
    (
        0u32..12,
        0u32..50,
        0u32..8,
        proptest::sample::select(FRAGMENTS),
    )
        .prop_map(|(line, character, len, text)| EditSpec {
            start: (line, character),
            len,
            text,
        })
}

fn encodings() -> impl Strategy<Value = PositionEncoding> {
    prop_oneof![
        Just(PositionEncoding::Utf8),
        Just(PositionEncoding::Utf16),
        Just(PositionEncoding::Utf32)
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn incremental_parse_equals_full_parse(
        batches in proptest::collection::vec(proptest::collection::vec(edit_strategy(), 1..4), 1..8),
        encoding in encodings(),
    ) {
        let mut document = Document::new(SEED, 0);
        // The model: the same edits on a plain rope, each change against the previous result.
        let mut model = Rope::from_str(SEED);
        for (version, batch) in batches.iter().enumerate() {
            let mut changes = Vec::new();
            for spec in batch {
                let start = TextPosition::new(spec.start.0, spec.start.1);
                let end = TextPosition::new(spec.start.0, spec.start.1 + spec.len);
                let from = offset_at(&model, start, encoding);
                let to = offset_at(&model, end, encoding).max(from);
                let (from_char, to_char) = (model.byte_to_char(from), model.byte_to_char(to));
                model.remove(from_char..to_char);
                model.insert(from_char, spec.text);
                changes.push(TextChange { range: Some((start, end)), text: spec.text.to_string() });
            }
            document.apply_changes(&changes, version as i32 + 1, encoding);
        }
        let text = document.rope().to_string();
        prop_assert_eq!(&text, &model.to_string());
        let fresh = parse_python(&text).unwrap();
        let incremental = document.tree().unwrap();
        prop_assert_eq!(incremental.root_node().byte_range(), fresh.root_node().byte_range());
        prop_assert_eq!(incremental.root_node().has_error(), fresh.root_node().has_error());
        // tree-sitter's error recovery depends on the trees it reuses, so around a syntax error
        // the shape of ERROR nodes may differ from a fresh parse's; well-formed text must give
        // the very same tree.
        if !fresh.root_node().has_error() {
            prop_assert_eq!(incremental.root_node().to_sexp(), fresh.root_node().to_sexp());
        }
    }
}

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
