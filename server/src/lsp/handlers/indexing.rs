//! Indexing the workspace's models after `initialize`, with progress, and keeping the index in
//! step with files changed on disk.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use serde_json::json;
use tower_lsp_server::ls_types::*;
use tower_lsp_server::Client;

use super::publish::refresh_all;
use crate::lsp::session::{path_of, Session};
use crate::workspace::Workspace;

/// Scans the workspace folders in the background (requests are answered meanwhile), reporting
/// "Indexing models (n/N)" when the client shows progress, then re-checks open documents.
pub async fn index_workspace(client: Client, session: Arc<Session>) {
    let roots = session.roots();
    if roots.is_empty() {
        return;
    }
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(usize, usize)>();
    let progress = if session.client_shows_progress.load(Ordering::Relaxed) {
        let token = NumberOrString::String("django-orm-lsp/indexing".into());
        match client.create_work_done_progress(token.clone()).await {
            Ok(()) => Some(
                client
                    .progress(token, "Indexing models")
                    .with_percentage(0)
                    .begin()
                    .await,
            ),
            Err(_) => None,
        }
    } else {
        None
    };
    let scan_roots = roots.clone();
    let scan = tokio::task::spawn_blocking(move || {
        Workspace::scan_roots(&scan_roots, move |done, total| {
            let _ = tx.send((done, total));
        })
    });
    while let Some((done, total)) = rx.recv().await {
        if let Some(progress) = &progress {
            let percentage = (done * 100 / total.max(1)) as u32;
            progress
                .report_with_message(format!("Indexing models ({done}/{total})"), percentage)
                .await;
        }
    }
    let Ok(workspace) = scan.await else { return };
    let models = workspace.index().models().len();
    *session.workspace.write().unwrap_or_else(|e| e.into_inner()) = workspace;
    // Open documents hold newer text than the disk.
    let open: Vec<Uri> = session.documents.iter().map(|d| d.key().clone()).collect();
    let indexing = session.clone();
    let _ = tokio::task::spawn_blocking(move || {
        for uri in open {
            indexing.index_document(&uri);
        }
    })
    .await;
    if let Some(progress) = progress {
        progress
            .finish_with_message(format!("{models} models"))
            .await;
    }
    client
        .log_message(
            MessageType::INFO,
            format!(
                "django-orm-lsp: indexed {models} models under {}",
                roots
                    .iter()
                    .map(|r| r.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
        .await;
    refresh_all(&client, &session).await;
}

/// Asks the client to report changes to Python files, templates and `pyproject.toml` on disk
/// (edits in open documents arrive through `didChange` instead).
pub async fn watch_python_files(client: &Client, session: &Session) {
    if !session.client_watches_files.load(Ordering::Relaxed) {
        return;
    }
    let options = DidChangeWatchedFilesRegistrationOptions {
        watchers: ["**/*.py", "**/pyproject.toml", "**/templates/**"]
            .into_iter()
            .map(|glob| FileSystemWatcher {
                glob_pattern: GlobPattern::String(glob.into()),
                kind: None,
            })
            .collect(),
    };
    let registration = Registration {
        id: "django-orm-lsp/watch-python".into(),
        method: "workspace/didChangeWatchedFiles".into(),
        register_options: Some(json!(options)),
    };
    if let Err(error) = client.register_capability(vec![registration]).await {
        client
            .log_message(
                MessageType::WARNING,
                format!("django-orm-lsp: could not watch files: {error}"),
            )
            .await;
    }
}

pub async fn did_change_watched_files(
    client: &Client,
    session: &Arc<Session>,
    params: DidChangeWatchedFilesParams,
) {
    let pyproject = |uri: &Uri| uri.path().as_str().ends_with("/pyproject.toml");
    if params.changes.iter().any(|change| pyproject(&change.uri)) {
        super::did_change_configuration::pyproject_changed(client, session).await;
    }
    let python: Vec<std::path::PathBuf> = params
        .changes
        .iter()
        .filter(|change| change.uri.path().as_str().ends_with(".py"))
        .map(|change| path_of(&change.uri))
        .collect();
    let summaries_changed = {
        let mut workspace = session.workspace.write().unwrap_or_else(|e| e.into_inner());
        // Not short-circuited: each file's summaries are dropped.
        python.iter().fold(false, |changed, path| {
            workspace.forget_summaries_of(path) | changed
        })
    };
    let closed: Vec<Uri> = params
        .changes
        .into_iter()
        .map(|change| change.uri)
        .filter(|uri| {
            (uri.path().as_str().ends_with(".py") || crate::workspace::is_template(&path_of(uri)))
                && !session.documents.contains_key(uri)
        })
        .collect();
    if closed.is_empty() {
        if summaries_changed {
            refresh_all(client, session).await;
        }
        return;
    }
    let reloading = session.clone();
    let changed = tokio::task::spawn_blocking(move || {
        let mut workspace = reloading
            .workspace
            .write()
            .unwrap_or_else(|e| e.into_inner());
        {
            // Every file is reloaded, whether or not an earlier one already changed the index.
            let mut changed = false;
            for uri in &closed {
                changed |= workspace.reload(&path_of(uri));
            }
            changed
        }
    })
    .await
    .unwrap_or(false);
    if changed || summaries_changed {
        refresh_all(client, session).await;
    }
}
