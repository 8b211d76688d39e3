//! Pull diagnostics (`textDocument/diagnostic`) for clients that ask for them.

use std::sync::Arc;

use tower_lsp_server::jsonrpc::{Error, Result};
use tower_lsp_server::ls_types::*;

use crate::lsp::handlers::publish;
use crate::lsp::session::Session;
use crate::lsp::{convert, memory};

pub async fn diagnostic(
    session: &Arc<Session>,
    params: DocumentDiagnosticParams,
) -> Result<DocumentDiagnosticReportResult> {
    // A refresh makes a pulling client ask for every open document at once: they take turns,
    // as pushed lints do, since a document without its tree parses a transient one.
    let turn = publish::lint_turn()
        .await
        .ok_or_else(Error::internal_error)?;
    let items = match session.snapshot(&params.text_document.uri) {
        None => Vec::new(),
        Some(snapshot) => tokio::task::spawn_blocking(move || {
            let rope = &snapshot.document.rope;
            let items = snapshot
                .diagnostics()
                .iter()
                .map(|d| convert::diagnostic(rope, d, snapshot.encoding))
                .collect();
            memory::release_transient_tree(&snapshot.document);
            items
        })
        .await
        .map_err(|_| Error::internal_error())?,
    };
    drop(turn);
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
