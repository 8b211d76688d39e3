use std::sync::Arc;

use tower_lsp_server::ls_types::{DidOpenTextDocumentParams, MessageType};
use tower_lsp_server::Client;

use super::publish::document_changed;
use crate::lsp::session::{path_of, OpenDocument, Session};
use crate::store::{Document, MAX_PARSED_BYTES};

pub async fn did_open(client: &Client, session: &Arc<Session>, params: DidOpenTextDocumentParams) {
    let item = params.text_document;
    let document = if is_template_document(&item.language_id, &path_of(&item.uri)) {
        Document::template(&item.text, item.version)
    } else {
        Document::new(&item.text, item.version)
    };
    let skipped = document.unparsed_reason();
    session
        .documents
        .insert(item.uri.clone(), OpenDocument::new(document));
    session.touch(&item.uri);
    session.limit_trees();
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

/// Language ids editors give Django templates; an HTML file below a `templates` folder is one
/// too whatever the editor calls it. They are analysed as templates, never as Python.
pub const TEMPLATE_LANGUAGE_IDS: &[&str] = &["html", "django-html", "htmldjango", "jinja-html"];

fn is_template_document(language_id: &str, path: &std::path::Path) -> bool {
    TEMPLATE_LANGUAGE_IDS.contains(&language_id)
        || (language_id != "python" && crate::workspace::is_template(path))
}
