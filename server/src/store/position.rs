//! Byte offsets <-> (line, character) in the negotiated encoding, over a rope.
//!
//! Lines end at `\n`, `\r\n` or `\r` (ropey built with `cr_lines` only, never `unicode_lines`).
//! Every conversion clamps: a line past the end maps to the end of the text, a character past
//! the end of its line maps to the end of that line (before its line break).

use ropey::Rope;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum PositionEncoding {
    Utf8,
    #[default]
    Utf16,
    Utf32,
}

/// A zero-based line and a character offset counted in the document's [`PositionEncoding`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct TextPosition {
    pub line: u32,
    pub character: u32,
}

impl TextPosition {
    pub fn new(line: u32, character: u32) -> Self {
        Self { line, character }
    }
}

/// Byte offset of the end of `line`'s content, before its line break.
fn line_content_end_byte(rope: &Rope, line: usize) -> usize {
    let start = rope.line_to_byte(line);
    let slice = rope.line(line);
    let mut len = slice.len_bytes();
    // A line's slice includes its break: drop "\r\n", "\n" or "\r".
    if len > 0 && slice.byte(len - 1) == b'\n' {
        len -= 1;
    }
    if len > 0 && slice.byte(len - 1) == b'\r' {
        len -= 1;
    }
    start + len
}

pub fn offset_at(rope: &Rope, pos: TextPosition, encoding: PositionEncoding) -> usize {
    let line = pos.line as usize;
    if line >= rope.len_lines() {
        return rope.len_bytes();
    }
    let line_start = rope.line_to_byte(line);
    let line_end = line_content_end_byte(rope, line);
    let character = pos.character as usize;
    match encoding {
        PositionEncoding::Utf8 => {
            let mut b = (line_start + character).min(line_end);
            // Never split a character: round down to its first byte.
            while b > line_start && !rope.byte_slice(..).is_char_boundary(b) {
                b -= 1;
            }
            b
        }
        PositionEncoding::Utf32 => {
            let start_char = rope.byte_to_char(line_start);
            let end_char = rope.byte_to_char(line_end);
            rope.char_to_byte((start_char + character).min(end_char))
        }
        PositionEncoding::Utf16 => {
            let start_char = rope.byte_to_char(line_start);
            let end_char = rope.byte_to_char(line_end);
            let start_cu = rope.char_to_utf16_cu(start_char);
            let end_cu = rope.char_to_utf16_cu(end_char);
            let ch = rope.utf16_cu_to_char((start_cu + character).min(end_cu));
            rope.char_to_byte(ch)
        }
    }
}

pub fn position_at(rope: &Rope, offset: usize, encoding: PositionEncoding) -> TextPosition {
    let offset = offset.min(rope.len_bytes());
    let line = rope.byte_to_line(offset);
    let line_start = rope.line_to_byte(line);
    let character = match encoding {
        PositionEncoding::Utf8 => offset - line_start,
        PositionEncoding::Utf32 => rope.byte_to_char(offset) - rope.byte_to_char(line_start),
        PositionEncoding::Utf16 => {
            rope.char_to_utf16_cu(rope.byte_to_char(offset))
                - rope.char_to_utf16_cu(rope.byte_to_char(line_start))
        }
    };
    TextPosition::new(line as u32, character as u32)
}

trait ByteBoundary {
    fn is_char_boundary(&self, byte: usize) -> bool;
}

impl ByteBoundary for ropey::RopeSlice<'_> {
    fn is_char_boundary(&self, byte: usize) -> bool {
        byte >= self.len_bytes() || (self.byte(byte) & 0b1100_0000) != 0b1000_0000
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(text: &str, enc: PositionEncoding) {
        let rope = Rope::from_str(text);
        // Every character boundary except the middle of a "\r\n" line break.
        let inside_crlf =
            |o: usize| o > 0 && text[..o].ends_with('\r') && text[o..].starts_with('\n');
        for (offset, _) in text
            .char_indices()
            .chain([(text.len(), ' ')])
            .filter(|(o, _)| !inside_crlf(*o))
        {
            let pos = position_at(&rope, offset, enc);
            assert_eq!(
                offset_at(&rope, pos, enc),
                offset,
                "{text:?} {offset} {pos:?} {enc:?}"
            );
        }
    }

    #[test]
    fn positions_roundtrip_in_every_encoding() {
        for text in ["", "a\nb", "x = 'é😀'\r\ny\rz\n", "😀😀\n\n\r\n"] {
            for enc in [
                PositionEncoding::Utf8,
                PositionEncoding::Utf16,
                PositionEncoding::Utf32,
            ] {
                roundtrip(text, enc);
            }
        }
    }

    #[test]
    fn only_lf_crlf_and_cr_break_lines() {
        let rope = Rope::from_str("a\u{2028}b\u{85}c\x0cd\re\r\nf\ng");
        assert_eq!(rope.len_lines(), 4);
        assert_eq!(
            position_at(&rope, rope.len_bytes(), PositionEncoding::Utf32),
            TextPosition::new(3, 1)
        );
    }

    #[test]
    fn out_of_range_positions_clamp() {
        let rope = Rope::from_str("ab\r\ncd");
        let enc = PositionEncoding::Utf16;
        assert_eq!(offset_at(&rope, TextPosition::new(0, 99), enc), 2);
        assert_eq!(offset_at(&rope, TextPosition::new(9, 0), enc), 6);
        // The middle of a surrogate pair or a multi-byte character rounds down.
        let rope = Rope::from_str("😀x");
        assert_eq!(offset_at(&rope, TextPosition::new(0, 1), enc), 0);
        assert_eq!(
            offset_at(&rope, TextPosition::new(0, 2), PositionEncoding::Utf8),
            0
        );
    }
}
