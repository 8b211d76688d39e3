use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use ropey::Rope;
use tree_sitter::{InputEdit, Point, Tree};

use super::position::{offset_at, PositionEncoding, TextPosition};
use super::reparse_rope;

/// Documents larger than this are kept (so edits still apply) but not parsed or linted: a
/// multi-megabyte Python file is generated code, and parsing it would stall every keystroke.
pub const MAX_PARSED_BYTES: usize = 4 * 1024 * 1024;

/// One entry of `didChange`'s `contentChanges`: a replacement of `range`, or of the whole text.
#[derive(Clone, Debug)]
pub struct TextChange {
    pub range: Option<(TextPosition, TextPosition)>,
    pub text: String,
}

#[derive(Clone, Debug)]
pub struct Document {
    rope: Rope,
    syntax: Syntax,
    version: i32,
    /// A Django template: text only, never parsed as Python.
    template: bool,
    /// Unique to this text: a new one on every open and every change, so a tree parsed from a
    /// snapshot is never given back to a document whose text changed meanwhile (a client may
    /// close and re-open a document with the same version number).
    revision: u64,
}

/// A document's syntax tree. Edits apply to the text and `Tree::edit` at once, in arrival
/// order; the text is parsed only when something needs its tree (a lint, a hover, a code
/// action), so a burst of edits costs one parse after it, not one per edit.
#[derive(Clone, Debug)]
enum Syntax {
    /// No tree kept: a template, a document too large or binary to parse, or one whose tree was
    /// dropped to save memory (`drop_tree`); a snapshot that needs one parses its own in full.
    None,
    /// The tree is kept. `parsed` is this text's tree once some snapshot of it needed one
    /// (shared by every snapshot of this text: one parse); until then `base` is what parsing
    /// starts from: the last parsed tree, `edit`ed to match this text, or `None` to parse in
    /// full (a whole-text replacement, or a document that had dropped its tree).
    /// `before_errors`: while the last parsed tree has syntax errors, the last one parsed
    /// without, edited likewise (see `DocumentSnapshot::tree_mended`).
    Kept {
        base: Option<Tree>,
        before_errors: Option<Tree>,
        parsed: Arc<OnceLock<Option<Tree>>>,
    },
}

impl Syntax {
    fn parse_from(base: Option<Tree>, before_errors: Option<Tree>) -> Self {
        Syntax::Kept {
            base,
            before_errors,
            parsed: Arc::default(),
        }
    }

    fn parsed(tree: Option<Tree>) -> Self {
        Syntax::Kept {
            base: None,
            before_errors: None,
            parsed: Arc::new(OnceLock::from(tree)),
        }
    }

    /// The trees to continue from: the latest (this text's if parsed, else the edited base)
    /// and, if that one has syntax errors, the last one without.
    fn latest(&self) -> (Option<Tree>, Option<Tree>) {
        let Syntax::Kept {
            base,
            before_errors,
            parsed,
        } = self
        else {
            return (None, None);
        };
        let latest = match parsed.get() {
            Some(tree) => tree.clone(),
            None => base.clone(),
        };
        let has_errors = |tree: &Tree| tree.root_node().has_error();
        let before_errors = match &latest {
            None => None,
            Some(latest) if !has_errors(latest) => None,
            // This text was parsed, with errors, from `base`: `base` is the last tree without
            // if it has none (`Tree::edit` leaves a tree's errors as they were parsed).
            Some(_) if parsed.get().is_some() => before_errors
                .clone()
                .or_else(|| base.clone().filter(|b| !has_errors(b))),
            Some(_) => before_errors.clone(),
        };
        (latest, before_errors)
    }
}

fn next_revision() -> u64 {
    static REVISIONS: AtomicU64 = AtomicU64::new(1);
    REVISIONS.fetch_add(1, Ordering::Relaxed)
}

/// An immutable view of a document for analysis off the async runtime. Cloning a rope or a tree
/// is cheap (shared, reference-counted), so snapshots are taken on every change.
#[derive(Clone, Debug)]
pub struct DocumentSnapshot {
    pub rope: Rope,
    pub version: i32,
    /// A Django template (see `Document::template`).
    pub template: bool,
    revision: u64,
    /// This text's tree, parsed on first use (off the async runtime, where snapshots are
    /// analysed); shared with the document and its other snapshots when the document keeps its
    /// tree.
    tree: Arc<OnceLock<Option<Tree>>>,
    /// What parsing starts from (see `Syntax::Kept`).
    base: Option<Tree>,
    before_errors: Option<Tree>,
    /// The text is Python that may be parsed (not a template, nor too large or binary).
    parses: bool,
    /// The document keeps no tree: one parsed here is this snapshot's alone.
    transient: bool,
    /// The text, materialised once per snapshot for analysis (tree-sitter nodes index bytes).
    text: Arc<OnceLock<String>>,
}

impl DocumentSnapshot {
    pub fn text(&self) -> &str {
        self.text.get_or_init(|| self.rope.to_string())
    }

    /// The syntax tree, `None` for a template or an unparsed document. Parses the text on first
    /// use if no snapshot of it has yet: incrementally from the edited earlier tree, or in full
    /// if the document had dropped its tree (the same tree a fresh open gives).
    pub fn tree(&self) -> Option<&Tree> {
        self.tree_from(self.base.as_ref())
    }

    /// The syntax tree as `tree()` gives it, for when the caller expects the syntax error of
    /// the last parsed trees to be gone from this text: parsed (if no snapshot has yet) from the
    /// last tree without syntax errors, edited, rather than from the last tree. Where an open
    /// bracket or quote made tree-sitter's error recovery fold the rest of the module into an
    /// error, a reparse from that tree redoes the rest of the module (tens of milliseconds on
    /// a large one); from the tree before the error, it redoes what was typed since.
    pub fn tree_mended(&self) -> Option<&Tree> {
        self.tree_from(self.before_errors.as_ref().or(self.base.as_ref()))
    }

    fn tree_from(&self, base: Option<&Tree>) -> Option<&Tree> {
        self.tree
            .get_or_init(|| {
                self.parses
                    .then(|| reparse_rope(&self.rope, base))
                    .flatten()
            })
            .as_ref()
    }

    /// Whether this is Python text that may be parsed (not a template, nor too large or
    /// binary once parsed).
    pub fn parses(&self) -> bool {
        self.parses && !matches!(self.tree.get(), Some(None))
    }

    /// Whether this text has been parsed (by this snapshot or another of the same text).
    #[cfg(test)]
    pub(crate) fn is_parsed(&self) -> bool {
        self.tree.get().is_some()
    }

    /// Unique to the text (see `Document::revision`): equal revisions mean equal text.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// A tree this snapshot parsed for itself (the document had dropped its own), once parsed.
    pub fn parsed_tree(&self) -> Option<&Tree> {
        self.tree.get().filter(|_| self.transient)?.as_ref()
    }
}

/// Why a document is not analysed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unparsed {
    TooLarge,
    Binary,
}

impl Document {
    pub fn new(text: &str, version: i32) -> Self {
        let rope = Rope::from_str(text);
        let mut doc = Self {
            rope,
            syntax: Syntax::None,
            version,
            template: false,
            revision: next_revision(),
        };
        if doc.unparsed_reason().is_none() {
            doc.syntax = Syntax::parsed(reparse_rope(&doc.rope, None));
        }
        doc
    }

    /// A Django template document: edits apply to its text; it has no tree.
    pub fn template(text: &str, version: i32) -> Self {
        Self {
            rope: Rope::from_str(text),
            syntax: Syntax::None,
            version,
            template: true,
            revision: next_revision(),
        }
    }

    pub fn is_template(&self) -> bool {
        self.template
    }

    pub fn version(&self) -> i32 {
        self.version
    }

    pub fn rope(&self) -> &Rope {
        &self.rope
    }

    /// This text's tree, parsing it now if no snapshot has (for callers off the async runtime;
    /// the server asks its snapshots). `None` for a template, an unparsed document, or after
    /// `drop_tree` (`snapshot().tree()` parses one then).
    pub fn tree(&self) -> Option<&Tree> {
        match &self.syntax {
            Syntax::None => None,
            Syntax::Kept { base, parsed, .. } => parsed
                .get_or_init(|| {
                    self.unparsed_reason()
                        .is_none()
                        .then(|| reparse_rope(&self.rope, base.as_ref()))
                        .flatten()
                })
                .as_ref(),
        }
    }

    /// Whether the document keeps a tree (parsed or to be parsed when needed), which the tree
    /// budget counts. Never parses.
    pub fn holds_tree(&self) -> bool {
        match &self.syntax {
            Syntax::None => false,
            // Text that turned out not to be parseable holds none.
            Syntax::Kept { parsed, .. } => !matches!(parsed.get(), Some(None)),
        }
    }

    pub fn len_bytes(&self) -> usize {
        self.rope.len_bytes()
    }

    /// Drops the syntax tree to save memory; returns whether there was one. The next change
    /// parses the text in full when needed (and keeps that tree); snapshots until then parse
    /// their own.
    pub fn drop_tree(&mut self) -> bool {
        matches!(
            std::mem::replace(&mut self.syntax, Syntax::None),
            Syntax::Kept { .. }
        )
    }

    /// Takes back the tree a snapshot of this very text parsed after `drop_tree`. Returns
    /// whether it did (not if the text changed since or a tree is already kept).
    pub fn keep_tree_of(&mut self, snapshot: &DocumentSnapshot) -> bool {
        if self.holds_tree() || snapshot.revision != self.revision {
            return false;
        }
        let Some(tree) = snapshot.parsed_tree() else {
            return false;
        };
        self.syntax = Syntax::parsed(Some(tree.clone()));
        true
    }

    /// Why the document has no tree, if it has none.
    pub fn unparsed_reason(&self) -> Option<Unparsed> {
        if self.rope.len_bytes() > MAX_PARSED_BYTES {
            Some(Unparsed::TooLarge)
        } else if self.rope.chunks().any(|c| c.as_bytes().contains(&0)) {
            Some(Unparsed::Binary)
        } else {
            None
        }
    }

    pub fn snapshot(&self) -> DocumentSnapshot {
        let (tree, base, before_errors, transient) = match &self.syntax {
            Syntax::Kept {
                base,
                before_errors,
                parsed,
            } => (parsed.clone(), base.clone(), before_errors.clone(), false),
            Syntax::None => (Arc::default(), None, None, true),
        };
        DocumentSnapshot {
            rope: self.rope.clone(),
            version: self.version,
            template: self.template,
            revision: self.revision,
            tree,
            base,
            before_errors,
            parses: !self.template && self.unparsed_reason().is_none(),
            transient,
            text: Arc::default(),
        }
    }

    /// Applies a batch of changes in order, each against the result of the previous one, and
    /// `edit`s the latest tree to match; the text is parsed when something needs its tree.
    pub fn apply_changes(
        &mut self,
        changes: &[TextChange],
        version: i32,
        encoding: PositionEncoding,
    ) {
        // A document that had dropped its tree is being edited: it keeps one again (parsed in
        // full when first needed). Text too large to parse never has one (binary text is found
        // out when parsed: checking costs a scan of the text, on every edit).
        let (mut base, mut before_errors) = self.syntax.latest();
        for change in changes {
            match change.range {
                None => {
                    self.rope = Rope::from_str(&change.text);
                    base = None;
                    before_errors = None;
                }
                Some((start, end)) => {
                    let edit = self.apply_range_change(start, end, &change.text, encoding);
                    for tree in base.iter_mut().chain(before_errors.iter_mut()) {
                        tree.edit(&edit);
                    }
                }
            }
        }
        self.version = version;
        self.revision = next_revision();
        self.syntax = if self.template || self.rope.len_bytes() > MAX_PARSED_BYTES {
            Syntax::None
        } else {
            Syntax::parse_from(base, before_errors)
        };
    }

    fn apply_range_change(
        &mut self,
        start: TextPosition,
        end: TextPosition,
        text: &str,
        encoding: PositionEncoding,
    ) -> InputEdit {
        let start_byte = offset_at(&self.rope, start, encoding);
        // A reversed range is treated as empty at its start rather than rejected.
        let old_end_byte = offset_at(&self.rope, end, encoding).max(start_byte);
        let start_position = self.point_at(start_byte);
        let old_end_position = self.point_at(old_end_byte);

        let start_char = self.rope.byte_to_char(start_byte);
        let old_end_char = self.rope.byte_to_char(old_end_byte);
        self.rope.remove(start_char..old_end_char);
        self.rope.insert(start_char, text);

        // The new end is measured on the new text: an inserted line break moves it to a new row.
        let new_end_byte = start_byte + text.len();
        InputEdit {
            start_byte,
            old_end_byte,
            new_end_byte,
            start_position,
            old_end_position,
            new_end_position: self.point_at(new_end_byte),
        }
    }

    /// A tree-sitter point for a byte offset: the row is the rope's line, the column counts bytes.
    /// (Nothing in this crate reads points back; tree-sitter only needs them to be consistent.)
    fn point_at(&self, byte: usize) -> Point {
        let row = self.rope.byte_to_line(byte);
        Point::new(row, byte - self.rope.line_to_byte(row))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(l0: u32, c0: u32, l1: u32, c1: u32, text: &str) -> TextChange {
        TextChange {
            range: Some((TextPosition::new(l0, c0), TextPosition::new(l1, c1))),
            text: text.into(),
        }
    }

    fn sexp(doc: &Document) -> String {
        doc.tree().unwrap().root_node().to_sexp()
    }

    #[test]
    fn a_batch_applies_each_change_to_the_previous_result() {
        let mut doc = Document::new("def f():\n    return 1\n", 1);
        // Both ranges refer to the text as left by the change before them.
        let batch = [
            change(1, 11, 1, 12, "2\n    x = 'é'"),
            change(2, 9, 2, 10, "ü"),
        ];
        doc.apply_changes(&batch, 2, PositionEncoding::Utf16);
        let text = doc.rope().to_string();
        assert_eq!(text, "def f():\n    return 2\n    x = 'ü'\n");
        assert_eq!(sexp(&doc), sexp(&Document::new(&text, 0)));
    }

    #[test]
    fn edits_parse_only_when_a_tree_is_needed_and_every_snapshot_shares_that_parse() {
        let mut doc = Document::new("def f():\n    return 1\n", 1);
        for (i, digit) in ["2", "3", "4"].into_iter().enumerate() {
            doc.apply_changes(
                &[change(1, 11, 1, 12, digit)],
                i as i32 + 2,
                PositionEncoding::Utf16,
            );
        }
        // Nothing parsed yet: the tree kept is the first text's, edited three times.
        let Syntax::Kept { parsed, base, .. } = &doc.syntax else {
            panic!("the document keeps a tree");
        };
        assert!(parsed.get().is_none() && base.is_some());
        let (first, second) = (doc.snapshot(), doc.snapshot());
        let fresh = Document::new("def f():\n    return 4\n", 0);
        assert_eq!(first.tree().unwrap().root_node().to_sexp(), sexp(&fresh));
        // The other snapshot and the document got that one parse.
        assert!(second.tree.get().is_some() && parsed.get().is_some());
        assert!(first.parsed_tree().is_none());
        // The next edit continues from the parsed tree.
        doc.apply_changes(&[change(1, 11, 1, 12, "x")], 9, PositionEncoding::Utf16);
        assert_eq!(
            sexp(&doc),
            sexp(&Document::new("def f():\n    return x\n", 0))
        );
    }

    /// While edits leave the text broken, the last tree without errors is kept and edited
    /// along; once they mend it, parsing from that tree gives the tree of a fresh parse.
    #[test]
    fn the_tree_before_an_error_is_kept_for_when_the_error_is_mended() {
        let mut doc = Document::new("def f():\n    x = g\n\n\ndef h():\n    return 1\n", 1);
        let typing = ["(", "'", "b", "'"];
        for (i, typed) in typing.into_iter().enumerate() {
            let at = 9 + i as u32;
            doc.apply_changes(
                &[change(1, at, 1, at, typed)],
                i as i32 + 2,
                PositionEncoding::Utf8,
            );
            // Only the opening bracket's text is parsed: it has errors.
            if i == 0 {
                assert!(doc.snapshot().tree().unwrap().root_node().has_error());
            }
        }
        let Syntax::Kept { before_errors, .. } = &doc.syntax else {
            panic!("the document keeps a tree");
        };
        assert!(before_errors.is_some());
        doc.apply_changes(&[change(1, 13, 1, 13, ")")], 9, PositionEncoding::Utf8);
        let text = doc.rope().to_string();
        assert_eq!(
            text,
            "def f():\n    x = g('b')\n\n\ndef h():\n    return 1\n"
        );
        let snapshot = doc.snapshot();
        let mended = snapshot.tree_mended().unwrap().root_node().to_sexp();
        assert_eq!(mended, sexp(&Document::new(&text, 0)));
        // A tree without errors needs no other kept.
        doc.apply_changes(&[change(1, 12, 1, 12, "c")], 10, PositionEncoding::Utf8);
        let Syntax::Kept { before_errors, .. } = &doc.syntax else {
            panic!("the document keeps a tree");
        };
        assert!(before_errors.is_none());
    }

    #[test]
    fn full_replacement_and_out_of_range_edits() {
        let mut doc = Document::new("x = 1\r\n", 1);
        doc.apply_changes(
            &[change(40, 0, 50, 3, "y = 2\r\n")],
            2,
            PositionEncoding::Utf8,
        );
        assert_eq!(doc.rope().to_string(), "x = 1\r\ny = 2\r\n");
        let replace = TextChange {
            range: None,
            text: "z = 3\n".into(),
        };
        doc.apply_changes(&[replace], 3, PositionEncoding::Utf8);
        assert_eq!(doc.rope().to_string(), "z = 3\n");
        assert_eq!(doc.version(), 3);
    }

    #[test]
    fn templates_take_edits_but_are_never_parsed() {
        let mut doc = Document::template("{% for p in posts %}\n", 1);
        doc.apply_changes(
            &[change(1, 0, 1, 0, "{{ p.author }}")],
            2,
            PositionEncoding::Utf16,
        );
        assert_eq!(
            doc.rope().to_string(),
            "{% for p in posts %}\n{{ p.author }}"
        );
        assert!(doc.tree().is_none() && doc.is_template());
    }

    #[test]
    fn a_dropped_tree_is_parsed_again_when_needed() {
        let text = "def f():\n    return 1\n";
        let mut doc = Document::new(text, 1);
        let fresh = sexp(&doc);
        assert!(doc.drop_tree() && doc.tree().is_none() && !doc.drop_tree());
        // A snapshot parses its own, the same as a fresh parse; the document stays without.
        let snapshot = doc.snapshot();
        assert!(snapshot.parsed_tree().is_none());
        assert_eq!(snapshot.tree().unwrap().root_node().to_sexp(), fresh);
        assert!(snapshot.parsed_tree().is_some() && doc.tree().is_none());
        // The document may take that tree back while its text is the snapshot's.
        assert!(doc.keep_tree_of(&snapshot));
        assert_eq!(sexp(&doc), fresh);
        assert!(!doc.keep_tree_of(&snapshot));

        // An edit after the tree was dropped parses in full, and keeps the tree.
        doc.drop_tree();
        let stale = doc.snapshot();
        doc.apply_changes(&[change(1, 11, 1, 12, "2")], 2, PositionEncoding::Utf16);
        let text = doc.rope().to_string();
        assert_eq!(sexp(&doc), sexp(&Document::new(&text, 0)));
        // A snapshot of the text before the edit cannot hand its tree to the document.
        assert!(stale.tree().is_some());
        doc.drop_tree();
        assert!(!doc.keep_tree_of(&stale) && doc.tree().is_none());
    }

    #[test]
    fn snapshots_of_documents_with_trees_or_without_text_to_parse_do_not_parse() {
        let doc = Document::new("x = 1\n", 1);
        let snapshot = doc.snapshot();
        assert!(snapshot.tree().is_some() && snapshot.parsed_tree().is_none());
        let template = Document::template("{{ x }}", 1).snapshot();
        assert!(template.tree().is_none() && template.parsed_tree().is_none());
        let mut binary = Document::new("x = '\0'", 1);
        binary.drop_tree();
        assert!(binary.snapshot().tree().is_none());
    }

    #[test]
    fn binary_and_huge_documents_are_not_parsed() {
        let doc = Document::new("x = '\0'", 1);
        assert!(doc.tree().is_none());
        assert_eq!(doc.unparsed_reason(), Some(Unparsed::Binary));
        let mut doc = Document::new(&"x = 1\n".repeat(MAX_PARSED_BYTES / 6 + 1), 1);
        assert_eq!(doc.unparsed_reason(), Some(Unparsed::TooLarge));
        // Edited, it still holds no tree for the budget to count.
        doc.apply_changes(&[change(0, 0, 0, 0, "y = 2\n")], 2, PositionEncoding::Utf8);
        assert!(!doc.holds_tree() && doc.tree().is_none());
    }
}
