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
