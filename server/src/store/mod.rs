//! Open documents: a rope for edits and positions, a tree-sitter tree kept in step with it.

mod document;
mod position;

pub use document::{Document, DocumentSnapshot, TextChange, Unparsed, MAX_PARSED_BYTES};
pub use position::{offset_at, position_at, PositionEncoding, TextPosition};

use std::cell::RefCell;
use tree_sitter::{Parser, Tree};

thread_local! {
    static PARSER: RefCell<Parser> = RefCell::new(python_parser());
}

fn python_parser() -> Parser {
    let mut parser = Parser::new();
    parser
        .set_language(&tree_sitter_python::LANGUAGE.into())
        .expect("the bundled tree-sitter-python grammar matches the tree-sitter version");
    parser
}

/// Parses Python source from scratch. The result is `None` only if tree-sitter gives up, which
/// it does not do without a timeout or cancellation flag.
pub fn parse_python(text: &str) -> Option<Tree> {
    PARSER.with(|p| p.borrow_mut().parse(text, None))
}

/// Reparses `text`, reusing `old` (already `edit`ed to match it) where unchanged.
pub fn reparse_python(text: &str, old: &Tree) -> Option<Tree> {
    PARSER.with(|p| p.borrow_mut().parse(text, Some(old)))
}

/// Reparses a rope, reusing `old` (already `edit`ed to match the rope) where unchanged.
pub(crate) fn reparse_rope(rope: &ropey::Rope, old: Option<&Tree>) -> Option<Tree> {
    PARSER.with(|p| {
        let mut parser = p.borrow_mut();
        let mut read = |byte: usize, _: tree_sitter::Point| -> &[u8] {
            if byte >= rope.len_bytes() {
                return &[];
            }
            let (chunk, chunk_start, _, _) = rope.chunk_at_byte(byte);
            &chunk.as_bytes()[byte - chunk_start..]
        };
        parser.parse_with_options(&mut read, old, None)
    })
}
