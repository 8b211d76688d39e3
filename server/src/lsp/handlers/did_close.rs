use std::sync::Arc;

use tower_lsp_server::ls_types::DidCloseTextDocumentParams;
use tower_lsp_server::Client;

use crate::lsp::session::Session;

pub async fn did_close(
    client: &Client,
    session: &Arc<Session>,
    params: DidCloseTextDocumentParams,
) {
    let uri = params.text_document.uri;
    if session.documents.remove(&uri).is_some() {
        crate::lsp::memory::release_wanted();
        super::publish::release_memory_when_idle();
    }
    if !session.pulls() {
        client.publish_diagnostics(uri, Vec::new(), None).await;
    }
}
