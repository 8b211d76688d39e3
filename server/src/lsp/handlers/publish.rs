//! Push diagnostics: lint a snapshot off the async runtime, publish if still current.

use std::sync::Arc;

use tower_lsp_server::ls_types::Uri;
use tower_lsp_server::Client;

use crate::lsp::convert;
use crate::lsp::session::Session;

pub fn publish_diagnostics(client: &Client, session: &Arc<Session>, uri: Uri) {
    if session.pulls() {
        return;
    }
    let Some(snapshot) = session.snapshot(&uri) else {
        return;
    };
    let client = client.clone();
    let session = session.clone();
    tokio::spawn(async move {
        let version = snapshot.document.version;
        let current = session.clone();
        let lint = tokio::task::spawn_blocking(move || {
            // A newer version is already on its way: skip the work.
            if current.current_version(&snapshot.uri) != Some(version) {
                return None;
            }
            let rope = &snapshot.document.rope;
            let found = snapshot.diagnostics();
            Some(
                found
                    .iter()
                    .map(|d| convert::diagnostic(rope, d, snapshot.encoding))
                    .collect::<Vec<_>>(),
            )
        });
        let Ok(Some(diagnostics)) = lint.await else {
            return;
        };
        if session.current_version(&uri) == Some(version) {
            client
                .publish_diagnostics(uri, diagnostics, Some(version))
                .await;
        }
    });
}

/// After something every document depends on changed (the model index, the settings): push
/// fresh diagnostics for every open document, or ask a pulling client to pull again.
pub async fn refresh_all(client: &Client, session: &Arc<Session>) {
    if session.pulls() {
        let _ = client.workspace_diagnostic_refresh().await;
        return;
    }
    let uris: Vec<Uri> = session.documents.iter().map(|d| d.key().clone()).collect();
    for uri in uris {
        publish_diagnostics(client, session, uri);
    }
}

/// A document's text changed: publish its diagnostics, then take the text into the model index
/// off the keystroke's path; if that changes the index, every open document is re-checked.
pub fn document_changed(client: &Client, session: &Arc<Session>, uri: Uri) {
    publish_diagnostics(client, session, uri.clone());
    let client = client.clone();
    let session = session.clone();
    tokio::spawn(async move {
        let indexing = session.clone();
        let changed = tokio::task::spawn_blocking(move || indexing.index_document(&uri)).await;
        if changed.unwrap_or(false) {
            refresh_all(&client, &session).await;
        }
    });
}
