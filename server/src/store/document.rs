use std::sync::Arc;

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
    tree: Option<Tree>,
    version: i32,
    /// A Django template: text only, never parsed as Python.
    template: bool,
}

/// An immutable view of a document for analysis off the async runtime. Cloning a rope or a tree
/// is cheap (shared, reference-counted), so snapshots are taken on every change.
#[derive(Clone, Debug)]
pub struct DocumentSnapshot {
    pub rope: Rope,
    pub tree: Option<Tree>,
    pub version: i32,
    /// A Django template (see `Document::template`).
    pub template: bool,
    /// The text, materialised once per snapshot for analysis (tree-sitter nodes index bytes).
    text: Arc<std::sync::OnceLock<String>>,
}

impl DocumentSnapshot {
    pub fn text(&self) -> &str {
        self.text.get_or_init(|| self.rope.to_string())
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
            tree: None,
            version,
            template: false,
        };
        doc.reparse(None);
        doc
    }

    /// A Django template document: edits apply to its text; it has no tree.
    pub fn template(text: &str, version: i32) -> Self {
        Self {
            rope: Rope::from_str(text),
            tree: None,
            version,
            template: true,
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

    pub fn tree(&self) -> Option<&Tree> {
        self.tree.as_ref()
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
        DocumentSnapshot {
            rope: self.rope.clone(),
            tree: self.tree.clone(),
            version: self.version,
            template: self.template,
            text: Arc::default(),
        }
    }

    /// Applies a batch of changes in order, each against the result of the previous one, then
    /// reparses once with the edited old tree.
    pub fn apply_changes(
        &mut self,
        changes: &[TextChange],
        version: i32,
        encoding: PositionEncoding,
    ) {
        let mut reusable = self.tree.is_some();
        for change in changes {
            match change.range {
                None => {
                    self.rope = Rope::from_str(&change.text);
                    reusable = false;
                }
                Some((start, end)) => {
                    let edit = self.apply_range_change(start, end, &change.text, encoding);
                    if let Some(tree) = self.tree.as_mut() {
                        tree.edit(&edit);
                    }
                }
            }
        }
        self.version = version;
        let old = if reusable { self.tree.take() } else { None };
        self.reparse(old.as_ref());
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

    fn reparse(&mut self, old: Option<&Tree>) {
        self.tree = match self.unparsed_reason() {
            _ if self.template => None,
            Some(_) => None,
            None => reparse_rope(&self.rope, old),
        };
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
    fn binary_and_huge_documents_are_not_parsed() {
        let doc = Document::new("x = '\0'", 1);
        assert!(doc.tree().is_none());
        assert_eq!(doc.unparsed_reason(), Some(Unparsed::Binary));
        let doc = Document::new(&"x = 1\n".repeat(MAX_PARSED_BYTES / 6 + 1), 1);
        assert_eq!(doc.unparsed_reason(), Some(Unparsed::TooLarge));
    }
}
