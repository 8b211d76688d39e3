use std::sync::Arc;

use tower_lsp_server::ls_types::{DidOpenTextDocumentParams, MessageType};
use tower_lsp_server::Client;

use super::publish::document_changed;
use crate::lsp::session::{OpenDocument, Session};
use crate::store::{Document, MAX_PARSED_BYTES};

pub async fn did_open(client: &Client, session: &Arc<Session>, params: DidOpenTextDocumentParams) {
    let item = params.text_document;
    let document = Document::new(&item.text, item.version);
    let skipped = document.unparsed_reason();
    session.documents.insert(
        item.uri.clone(),
        OpenDocument {
            document,
            analysis: Arc::default(),
        },
    );
    document_changed(client, session, item.uri.clone());
    if let Some(reason) = skipped {
        let why = match reason {
            crate::store::Unparsed::TooLarge => {
                format!("it is larger than {} MiB", MAX_PARSED_BYTES >> 20)
            }
            crate::store::Unparsed::Binary => "it contains NUL bytes (binary content)".to_string(),
        };
        let message = format!(
            "django-orm-lsp: not analysing {} because {why}",
            item.uri.as_str()
        );
        client.log_message(MessageType::WARNING, message).await;
    }
}
