//! `workspace/didChangeConfiguration`, and pyproject.toml changing on disk: new settings, then
//! fresh diagnostics for every open document.

use std::sync::Arc;

use tower_lsp_server::ls_types::{DidChangeConfigurationParams, MessageType};
use tower_lsp_server::Client;

use super::publish::refresh_all;
use crate::lsp::session::Session;

pub async fn did_change_configuration(
    client: &Client,
    session: &Arc<Session>,
    params: DidChangeConfigurationParams,
) {
    let warning = session.change_configuration(&params.settings);
    settings_changed(client, session, warning).await;
}

/// For the file watcher: the workspace root's pyproject.toml was created, changed or deleted.
pub async fn pyproject_changed(client: &Client, session: &Arc<Session>) {
    let warning = session.reload_pyproject();
    settings_changed(client, session, warning).await;
}

async fn settings_changed(client: &Client, session: &Arc<Session>, warning: Option<String>) {
    if let Some(warning) = warning {
        let message = format!("django-orm-lsp: {warning}");
        client.show_message(MessageType::WARNING, message).await;
    }
    refresh_all(client, session).await;
}
