use std::sync::atomic::Ordering;

use tower_lsp_server::ls_types::*;

use super::execute_command::SHOW_QUERIES;
use crate::lsp::configuration::Configuration;
use crate::lsp::session::{path_of, Session};
use crate::store::PositionEncoding;
use crate::workspace::Workspace;

pub const FIX_ALL_KIND: &str = "source.fixAll.django-orm-lsp";

pub fn initialize(session: &Session, params: InitializeParams) -> InitializeResult {
    let offered = params
        .capabilities
        .general
        .as_ref()
        .and_then(|g| g.position_encodings.clone())
        .unwrap_or_default();
    // UTF-8 matches our byte offsets; UTF-32 is next cheapest; UTF-16 is the protocol default.
    let (encoding, kind) = if offered.contains(&PositionEncodingKind::UTF8) {
        (PositionEncoding::Utf8, PositionEncodingKind::UTF8)
    } else if offered.contains(&PositionEncodingKind::UTF32) {
        (PositionEncoding::Utf32, PositionEncodingKind::UTF32)
    } else {
        (PositionEncoding::Utf16, PositionEncodingKind::UTF16)
    };
    *session.encoding.write().unwrap_or_else(|e| e.into_inner()) = encoding;

    let capabilities = &params.capabilities;
    let shows_progress = capabilities
        .window
        .as_ref()
        .and_then(|w| w.work_done_progress)
        .unwrap_or(false);
    session
        .client_shows_progress
        .store(shows_progress, Ordering::Relaxed);
    let watches = capabilities
        .workspace
        .as_ref()
        .and_then(|w| w.did_change_watched_files.as_ref())
        .and_then(|w| w.dynamic_registration)
        .unwrap_or(false);
    session
        .client_watches_files
        .store(watches, Ordering::Relaxed);
    *session.workspace.write().unwrap_or_else(|e| e.into_inner()) =
        Workspace::unscanned(workspace_roots(&params));

    // The lenses count queries with the model index: asked again once it is built or changes.
    let refreshes_lenses = capabilities
        .workspace
        .as_ref()
        .and_then(|w| w.code_lens.as_ref())
        .and_then(|c| c.refresh_support)
        .unwrap_or(false);
    session
        .client_refreshes_lenses
        .store(refreshes_lenses, Ordering::Relaxed);

    // A clicked lens opens its queries in a tab.
    let shows_documents = capabilities
        .window
        .as_ref()
        .and_then(|w| w.show_document.as_ref())
        .is_some_and(|s| s.support);
    session
        .client_shows_documents
        .store(shows_documents, Ordering::Relaxed);

    let text_document = capabilities.text_document.as_ref();
    let resolves_edits = text_document
        .and_then(|t| t.code_action.as_ref())
        .and_then(|c| c.resolve_support.as_ref())
        .is_some_and(|r| r.properties.iter().any(|p| p == "edit"));
    session
        .client_resolves_edits
        .store(resolves_edits, Ordering::Relaxed);
    let confirms_edits = capabilities
        .workspace
        .as_ref()
        .and_then(|w| w.workspace_edit.as_ref())
        .and_then(|e| e.change_annotation_support.as_ref())
        .is_some();
    session
        .client_confirms_edits
        .store(confirms_edits, Ordering::Relaxed);

    // A client that pulls but cannot be asked to pull again (Neovim 0.10 and 0.11) would keep
    // what its first pull got, before the model index was ready, until its next edit: it is
    // pushed to instead, as every client accepts (ARCHITECTURE.md, "Diagnostics").
    let refresh = params
        .capabilities
        .workspace
        .as_ref()
        .and_then(|w| w.diagnostics.as_ref())
        .and_then(|d| d.refresh_support)
        .unwrap_or(false);
    let pulls = refresh
        && params
            .capabilities
            .text_document
            .as_ref()
            .is_some_and(|t| t.diagnostic.is_some());
    session.pull_diagnostics.store(pulls, Ordering::Relaxed);

    InitializeResult {
        capabilities: ServerCapabilities {
            position_encoding: Some(kind),
            text_document_sync: Some(TextDocumentSyncCapability::Options(
                TextDocumentSyncOptions {
                    open_close: Some(true),
                    change: Some(TextDocumentSyncKind::INCREMENTAL),
                    save: Some(TextDocumentSyncSaveOptions::Supported(true)),
                    ..TextDocumentSyncOptions::default()
                },
            )),
            hover_provider: Some(HoverProviderCapability::Simple(true)),
            code_lens_provider: Some(CodeLensOptions {
                resolve_provider: Some(false),
            }),
            execute_command_provider: Some(ExecuteCommandOptions {
                commands: vec![SHOW_QUERIES.to_string()],
                ..ExecuteCommandOptions::default()
            }),
            code_action_provider: Some(CodeActionProviderCapability::Options(CodeActionOptions {
                code_action_kinds: Some(vec![
                    CodeActionKind::QUICKFIX,
                    CodeActionKind::REFACTOR_REWRITE,
                    CodeActionKind::new(FIX_ALL_KIND),
                ]),
                resolve_provider: Some(resolves_edits),
                ..CodeActionOptions::default()
            })),
            diagnostic_provider: pulls.then(|| {
                DiagnosticServerCapabilities::Options(DiagnosticOptions {
                    identifier: Some("django-orm-lsp".into()),
                    inter_file_dependencies: false,
                    workspace_diagnostics: false,
                    ..DiagnosticOptions::default()
                })
            }),
            ..ServerCapabilities::default()
        },
        server_info: Some(ServerInfo {
            name: "django-orm-lsp".into(),
            version: Some(env!("CARGO_PKG_VERSION").into()),
        }),
        ..InitializeResult::default()
    }
}

/// The folders to index: every workspace folder, else the deprecated `rootUri`.
#[allow(deprecated)]
fn workspace_roots(params: &InitializeParams) -> Vec<std::path::PathBuf> {
    let folders = params.workspace_folders.iter().flatten().map(|f| &f.uri);
    let uris: Vec<&Uri> = if params
        .workspace_folders
        .as_ref()
        .is_some_and(|f| !f.is_empty())
    {
        folders.collect()
    } else {
        params.root_uri.iter().collect()
    };
    uris.into_iter()
        .filter(|uri| uri.to_file_path().is_some())
        .map(path_of)
        .collect()
}

/// The folder whose pyproject.toml configures the server: the first workspace folder, else the
/// deprecated `rootUri`.
#[allow(deprecated)]
fn workspace_root(params: &InitializeParams) -> Option<std::path::PathBuf> {
    let uri = params
        .workspace_folders
        .as_ref()
        .and_then(|f| f.first())
        .map(|f| &f.uri)
        .or(params.root_uri.as_ref())?;
    uri.to_file_path().map(|_| path_of(uri))
}

/// Loads the settings: pyproject.toml at the workspace root (the first workspace folder, else
/// `rootUri`), then `initializationOptions`. Returns one warning per source with unusable keys.
pub fn configure(session: &Session, params: &InitializeParams) -> Vec<String> {
    let root = workspace_root(params);
    let (configuration, warnings) =
        Configuration::new(root, params.initialization_options.as_ref());
    session.configure(configuration);

    warnings
        .into_iter()
        .map(|warning| format!("django-orm-lsp: {warning}"))
        .collect()
}
