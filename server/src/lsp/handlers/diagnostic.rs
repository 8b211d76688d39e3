//! Pull diagnostics (`textDocument/diagnostic`) for clients that ask for them.

use std::sync::Arc;

use tower_lsp_server::jsonrpc::{Error, Result};
use tower_lsp_server::ls_types::*;

use crate::lsp::convert;
use crate::lsp::session::Session;

pub async fn diagnostic(
    session: &Arc<Session>,
    params: DocumentDiagnosticParams,
) -> Result<DocumentDiagnosticReportResult> {
    let items = match session.snapshot(&params.text_document.uri) {
        None => Vec::new(),
        Some(snapshot) => tokio::task::spawn_blocking(move || {
            let rope = &snapshot.document.rope;
            snapshot
                .diagnostics()
                .iter()
                .map(|d| convert::diagnostic(rope, d, snapshot.encoding))
                .collect()
        })
        .await
        .map_err(|_| Error::internal_error())?,
    };
    Ok(DocumentDiagnosticReportResult::Report(
        DocumentDiagnosticReport::Full(RelatedFullDocumentDiagnosticReport {
            related_documents: None,
            full_document_diagnostic_report: FullDocumentDiagnosticReport {
                result_id: None,
                items,
            },
        }),
    ))
}
