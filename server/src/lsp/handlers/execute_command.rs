//! `workspace/executeCommand`: `django-orm-lsp.showQueries`, which a code lens runs when
//! clicked, shows the queries the lens counts as a SQL document (`analysis::query_counts`): in
//! an editor tab when the client can open documents (`window/showDocument`; the text is written
//! to a file in the temporary directory), else in a message.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use serde_json::Value;
use tower_lsp_server::jsonrpc::{Error, Result};
use tower_lsp_server::ls_types::*;
use tower_lsp_server::Client;

use crate::analysis::hover::sql_target;
use crate::analysis::query_counts::queries_shown;
use crate::lsp::convert;
use crate::lsp::session::Session;
use crate::settings::Settings;

pub const SHOW_QUERIES: &str = "django-orm-lsp.showQueries";

pub async fn execute_command(
    client: &Client,
    session: &Arc<Session>,
    params: ExecuteCommandParams,
) -> Result<Option<Value>> {
    if params.command != SHOW_QUERIES {
        return Err(Error::invalid_params(format!(
            "unknown command `{}`",
            params.command
        )));
    }
    let (uri, position) = match params.arguments.as_slice() {
        [uri, position] => (
            uri.as_str().and_then(|u| u.parse::<Uri>().ok()),
            serde_json::from_value::<Position>(position.clone()).ok(),
        ),
        _ => (None, None),
    };
    let (Some(uri), Some(position)) = (uri, position) else {
        return Err(Error::invalid_params(format!(
            "{SHOW_QUERIES} takes a document URI and a position"
        )));
    };
    let Some(snapshot) = session.snapshot(&uri) else {
        return Err(Error::invalid_params(format!(
            "{} is not open",
            uri.as_str()
        )));
    };
    let looked_at = snapshot.clone();
    let shown = tokio::task::spawn_blocking(move || {
        let tree = snapshot.document.tree()?;
        let offset = convert::offset(&snapshot.document.rope, position, snapshot.encoding);
        let default = Settings::default();
        let settings = snapshot.settings.as_ref().unwrap_or(&default);
        let text = snapshot.document.text();
        let target = sql_target(&snapshot.file, settings);
        queries_shown(text, tree, &snapshot.file, offset, target)
    })
    .await
    .map_err(|_| Error::internal_error())?;
    session.keep_parsed_tree(&looked_at);
    let Some(shown) = shown else {
        // The code changed since the lens was drawn: the editor asks for lenses again.
        client
            .show_message(
                MessageType::INFO,
                "The loop changed: no count to show there now.",
            )
            .await;
        return Ok(None);
    };
    if session.client_shows_documents.load(Ordering::Relaxed) {
        if let Some(document) = written(&uri, position, &shown) {
            let shown_document = ShowDocumentParams {
                uri: document,
                external: Some(false),
                take_focus: Some(true),
                selection: None,
            };
            if client.show_document(shown_document).await.unwrap_or(false) {
                return Ok(None);
            }
        }
    }
    client.show_message(MessageType::INFO, shown).await;
    Ok(None)
}

/// The queries written to `<temp>/django-orm-lsp-queries/<file>-<line>.sql`, named after the
/// lens so that clicking it again shows the same tab.
fn written(uri: &Uri, position: Position, shown: &str) -> Option<Uri> {
    let folder = std::env::temp_dir().join("django-orm-lsp-queries");
    std::fs::create_dir_all(&folder).ok()?;
    let stem = uri
        .path()
        .as_str()
        .rsplit('/')
        .next()
        .and_then(|name| name.strip_suffix(".py"))
        .unwrap_or("queries")
        .to_string();
    let path = folder.join(format!("{stem}-{}.sql", position.line + 1));
    std::fs::write(&path, shown).ok()?;
    format!("file://{}", path.display()).parse().ok()
}
