use std::sync::Arc;

use tower_lsp_server::ls_types::{DidChangeTextDocumentParams, MessageType};
use tower_lsp_server::Client;

use super::publish::document_changed;
use crate::lsp::convert::text_position;
use crate::lsp::session::Session;
use crate::store::TextChange;

pub async fn did_change(
    client: &Client,
    session: &Arc<Session>,
    params: DidChangeTextDocumentParams,
) {
    let uri = params.text_document.uri;
    let changes: Vec<TextChange> = params
        .content_changes
        .into_iter()
        .map(|c| TextChange {
            range: c
                .range
                .map(|r| (text_position(r.start), text_position(r.end))),
            text: c.text,
        })
        .collect();
    let encoding = session.encoding();
    // The whole mutation happens here, before any `.await`, so changes apply in arrival order.
    // Nothing is parsed here: the text is parsed once something needs its tree, so a burst
    // of edits costs one parse after it. `Some(whether the edit gave the document back a tree
    // it had dropped)`.
    let applied = session.documents.get_mut(&uri).map(|mut open| {
        let had_tree = open.document.holds_tree();
        open.document
            .apply_changes(&changes, params.text_document.version, encoding);
        !had_tree && open.document.holds_tree()
    });
    if let Some(gained_tree) = applied {
        // Still before any `.await`: the edited document keeps its tree; only a tree it takes
        // anew can take the others over budget (a keystroke in a document that has one cannot).
        session.touch(&uri);
        if gained_tree {
            session.limit_trees();
        }
        document_changed(client, session, uri);
    } else {
        let message = format!(
            "django-orm-lsp: ignoring a change to {}, which is not open",
            uri.as_str()
        );
        client.log_message(MessageType::WARNING, message).await;
    }
}
