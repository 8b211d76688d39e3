//! What the analysis returns: plain data in byte offsets, no LSP types.

use std::ops::Range;

use super::rules::RuleMeta;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Error,
    Warning,
    Info,
    Hint,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
            Severity::Hint => "hint",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.to_ascii_lowercase().as_str() {
            "error" => Severity::Error,
            "warning" => Severity::Warning,
            "info" | "information" => Severity::Info,
            "hint" => Severity::Hint,
            _ => return None,
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Applicability {
    /// Keeps the program's meaning; applied by fix-all.
    Safe,
    /// May change behaviour (the title says why); offered, never applied in bulk.
    Unsafe,
}

impl Applicability {
    pub fn as_str(self) -> &'static str {
        match self {
            Applicability::Safe => "safe",
            Applicability::Unsafe => "unsafe",
        }
    }
}

/// Replace `range` of the file's bytes with `content`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Edit {
    pub range: Range<usize>,
    pub content: String,
}

impl Edit {
    pub fn replace(range: Range<usize>, content: impl Into<String>) -> Self {
        Self {
            range,
            content: content.into(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Fix {
    /// What the fix does, e.g. "Replace with `qs.count()`"; for unsafe fixes it ends with why.
    pub title: String,
    pub applicability: Applicability,
    /// Non-overlapping edits, sorted by start.
    pub edits: Vec<Edit>,
}

impl Fix {
    pub fn safe(title: impl Into<String>, edits: Vec<Edit>) -> Self {
        Self {
            title: title.into(),
            applicability: Applicability::Safe,
            edits,
        }
    }

    pub fn is_safe(&self) -> bool {
        self.applicability == Applicability::Safe
    }

    /// The fix with every offset from `at` on moved by `delta` bytes.
    fn shifted_from(&self, at: usize, delta: isize) -> Self {
        let shift = |b: usize| {
            if b >= at {
                b.wrapping_add_signed(delta)
            } else {
                b
            }
        };
        Self {
            title: self.title.clone(),
            applicability: self.applicability,
            edits: self
                .edits
                .iter()
                .map(|e| Edit::replace(shift(e.range.start)..shift(e.range.end), e.content.clone()))
                .collect(),
        }
    }

    pub fn span(&self) -> Option<Range<usize>> {
        let start = self.edits.iter().map(|e| e.range.start).min()?;
        let end = self.edits.iter().map(|e| e.range.end).max()?;
        Some(start..end)
    }
}

/// A place by line and columns, for files whose byte offsets are not at hand when it is shown
/// (the index trims files, a template may be edited since). The columns are kept in the three
/// units clients negotiate: bytes, UTF-16 code units and characters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Place {
    pub line: u32,
    pub bytes: Range<u32>,
    pub utf16: Range<u32>,
    pub chars: Range<u32>,
}

impl Place {
    /// The place of `start..end` in `source`, cut at the end of `start`'s line.
    pub fn new(source: &str, start: usize, end: usize) -> Self {
        let start = floor_boundary(source, start.min(source.len()));
        let line_start = source[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = source[start..]
            .find('\n')
            .map_or(source.len(), |i| start + i);
        let end = floor_boundary(source, end.clamp(start, line_end));
        let before = &source[line_start..start];
        let inside = &source[start..end];
        let span = |before: usize, inside: usize| before as u32..(before + inside) as u32;
        Self {
            line: source[..line_start].matches('\n').count() as u32,
            bytes: span(before.len(), inside.len()),
            utf16: span(before.encode_utf16().count(), inside.encode_utf16().count()),
            chars: span(before.chars().count(), inside.chars().count()),
        }
    }
}

fn floor_boundary(text: &str, mut at: usize) -> usize {
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// Another place that explains a finding (the serializer field or template line behind a
/// view's N+1), shown by editors as related information.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Related {
    pub path: std::path::PathBuf,
    pub place: Place,
    pub message: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Diagnostic {
    pub rule: &'static RuleMeta,
    pub range: Range<usize>,
    pub message: String,
    pub severity: Severity,
    pub fix: Option<Fix>,
    pub related: Vec<Related>,
}

impl Diagnostic {
    pub fn code(&self) -> &'static str {
        self.rule.code
    }

    /// The same diagnostic moved by `delta` bytes (used when a cached statement moved).
    pub(crate) fn shifted(&self, delta: isize) -> Self {
        self.shifted_from(0, delta)
    }

    /// The diagnostic with every offset from `at` on moved by `delta` bytes: text was inserted
    /// or removed just before `at`.
    pub(crate) fn shifted_from(&self, at: usize, delta: isize) -> Self {
        let shift = |b: usize| {
            if b >= at {
                b.wrapping_add_signed(delta)
            } else {
                b
            }
        };
        Self {
            rule: self.rule,
            range: shift(self.range.start)..shift(self.range.end),
            message: self.message.clone(),
            severity: self.severity,
            fix: self.fix.as_ref().map(|f| f.shifted_from(at, delta)),
            related: self.related.clone(),
        }
    }
}

/// Applies non-overlapping edits to `text`. Overlapping or out-of-bounds edits are skipped and
/// reported as `false`, so a bad fix can never produce a half-applied file.
pub fn apply_edits(text: &str, edits: &[Edit]) -> Option<String> {
    let mut sorted: Vec<&Edit> = edits.iter().collect();
    sorted.sort_by_key(|e| (e.range.start, e.range.end));
    let mut out = String::with_capacity(text.len());
    let mut cursor = 0;
    for edit in sorted {
        let r = &edit.range;
        if r.start < cursor || r.end > text.len() || r.start > r.end {
            return None;
        }
        if !text.is_char_boundary(r.start) || !text.is_char_boundary(r.end) {
            return None;
        }
        out.push_str(&text[cursor..r.start]);
        out.push_str(&edit.content);
        cursor = r.end;
    }
    out.push_str(&text[cursor..]);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_count_columns_in_each_unit() {
        let source = "x\n<p>Über 😀 {{ post.author }}</p>\n";
        let start = source.find("post").unwrap();
        let place = Place::new(source, start, start + "post.author".len());
        assert_eq!(place.line, 1);
        assert_eq!(place.bytes, 17..28);
        assert_eq!(place.utf16, 14..25);
        assert_eq!(place.chars, 13..24);
        // An end past the line stops at it; offsets inside a character are moved before it.
        let past = Place::new(source, start, source.len());
        assert_eq!(past.bytes.end, 35);
        assert_eq!(Place::new(source, 6, 7).bytes, 3..5);
    }
}
