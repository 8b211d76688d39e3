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

    fn shifted(&self, delta: isize) -> Self {
        let shift = |b: usize| b.wrapping_add_signed(delta);
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

/// Another place that explains a finding (the serializer field behind a view's N+1), shown by
/// editors as related information. It is in another file, or in this one as the index read it:
/// a line and byte columns within it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Related {
    pub path: std::path::PathBuf,
    pub line: u32,
    pub columns: Range<u32>,
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
        let shift = |b: usize| b.wrapping_add_signed(delta);
        Self {
            rule: self.rule,
            range: shift(self.range.start)..shift(self.range.end),
            message: self.message.clone(),
            severity: self.severity,
            fix: self.fix.as_ref().map(|f| f.shifted(delta)),
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
