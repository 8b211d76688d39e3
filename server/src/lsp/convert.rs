//! Analysis results (byte offsets) to LSP types (positions in the negotiated encoding).

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::LazyLock;

use ropey::Rope;
use serde_json::json;
use tower_lsp_server::ls_types::{
    self as lsp, CodeDescription, DiagnosticSeverity, NumberOrString, Position, TextEdit, Uri,
    WorkspaceEdit,
};

use crate::analysis::{rules, Diagnostic, Edit, Severity};
use crate::store::{offset_at, position_at, PositionEncoding, TextPosition};

pub const SOURCE: &str = "django-orm-lsp";

pub fn position(rope: &Rope, offset: usize, encoding: PositionEncoding) -> Position {
    let p = position_at(rope, offset, encoding);
    Position::new(p.line, p.character)
}

pub fn range(
    rope: &Rope,
    range: &std::ops::Range<usize>,
    encoding: PositionEncoding,
) -> lsp::Range {
    lsp::Range::new(
        position(rope, range.start, encoding),
        position(rope, range.end, encoding),
    )
}

pub fn text_position(p: Position) -> TextPosition {
    TextPosition::new(p.line, p.character)
}

pub fn offset(rope: &Rope, p: Position, encoding: PositionEncoding) -> usize {
    offset_at(rope, text_position(p), encoding)
}

pub fn text_edit(rope: &Rope, edit: &Edit, encoding: PositionEncoding) -> TextEdit {
    TextEdit::new(range(rope, &edit.range, encoding), edit.content.clone())
}

pub fn workspace_edit(uri: &Uri, edits: Vec<TextEdit>) -> WorkspaceEdit {
    WorkspaceEdit {
        changes: Some(HashMap::from([(uri.clone(), edits)])),
        ..WorkspaceEdit::default()
    }
}

/// Each rule's docs page, parsed once.
fn docs_uri(code: &str) -> Option<Uri> {
    static URIS: LazyLock<Vec<(&'static str, Uri)>> = LazyLock::new(|| {
        rules::ALL
            .iter()
            .filter_map(|r| Some((r.meta.code, Uri::from_str(&r.meta.docs_url()).ok()?)))
            .collect()
    });
    URIS.iter()
        .find(|(c, _)| *c == code)
        .map(|(_, uri)| uri.clone())
}

fn severity(s: Severity) -> DiagnosticSeverity {
    match s {
        Severity::Error => DiagnosticSeverity::ERROR,
        Severity::Warning => DiagnosticSeverity::WARNING,
        Severity::Info => DiagnosticSeverity::INFORMATION,
        Severity::Hint => DiagnosticSeverity::HINT,
    }
}

/// An LSP diagnostic; its `data` carries the rule's name and the fix, as edits in the same
/// encoding, for clients that apply fixes from diagnostics directly.
pub fn diagnostic(rope: &Rope, d: &Diagnostic, encoding: PositionEncoding) -> lsp::Diagnostic {
    let fix = d.fix.as_ref().map(|f| {
        json!({
            "title": f.title,
            "applicability": f.applicability.as_str(),
            "edits": f.edits.iter().map(|e| text_edit(rope, e, encoding)).collect::<Vec<_>>(),
        })
    });
    lsp::Diagnostic {
        range: range(rope, &d.range, encoding),
        severity: Some(severity(d.severity)),
        code: Some(NumberOrString::String(d.code().to_string())),
        code_description: docs_uri(d.rule.code).map(|href| CodeDescription { href }),
        source: Some(SOURCE.to_string()),
        message: d.message.clone(),
        data: Some(json!({ "name": d.rule.name, "fix": fix })),
        related_information: related_information(d, encoding),
        ..lsp::Diagnostic::default()
    }
}

/// Related places are in other files, by line and columns in the negotiated encoding.
fn related_information(
    d: &Diagnostic,
    encoding: PositionEncoding,
) -> Option<Vec<lsp::DiagnosticRelatedInformation>> {
    let related: Vec<_> = d
        .related
        .iter()
        .filter_map(|r| {
            let uri = Uri::from_file_path(&r.path)?;
            let columns = match encoding {
                PositionEncoding::Utf8 => &r.place.bytes,
                PositionEncoding::Utf16 => &r.place.utf16,
                PositionEncoding::Utf32 => &r.place.chars,
            };
            let line = r.place.line;
            Some(lsp::DiagnosticRelatedInformation {
                location: lsp::Location::new(
                    uri,
                    lsp::Range::new(
                        Position::new(line, columns.start),
                        Position::new(line, columns.end),
                    ),
                ),
                message: r.message.clone(),
            })
        })
        .collect();
    (!related.is_empty()).then_some(related)
}
