//! The protocol layer: the only module that knows LSP types. Each method's handler lives in
//! `handlers/`; notifications that change documents do so synchronously, in arrival order,
//! before their first `.await`; analysis runs on snapshots in blocking threads.

mod configuration;
mod convert;
mod handlers;
mod memory;
mod session;
mod template_documents;
mod transport;

use std::sync::atomic::Ordering;
use std::sync::Arc;

use tower_lsp_server::jsonrpc::Result;
use tower_lsp_server::ls_types::*;
use tower_lsp_server::{Client, LanguageServer, LspService, Server};

use session::Session;

pub struct Backend {
    client: Client,
    session: Arc<Session>,
}

/// Serves LSP over stdin/stdout until `exit`. Returns the process exit code: 0 after a
/// `shutdown` request, 1 when the client exits (or disconnects) without one, as the spec says.
pub fn serve() -> i32 {
    memory::one_malloc_arena();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime starts");
    let session = Arc::new(Session::default());
    let shared = session.clone();
    let (output_tx, output_rx) = std::sync::mpsc::channel();
    let writer =
        std::thread::spawn(move || transport::write_output(output_rx, std::io::stdout().lock()));
    runtime.block_on(async move {
        let (service, socket) = LspService::new(move |client| Backend {
            client,
            session: shared,
        });
        let (server_input, feed) = tokio::io::duplex(1 << 16);
        let (drain, server_output) = tokio::io::duplex(1 << 16);
        let (messages_tx, messages_rx) = tokio::sync::mpsc::unbounded_channel();
        let input_errors = output_tx.clone();
        let done = output_tx.clone();
        // Never joined: it may be blocked reading stdin when the client says `exit`.
        std::thread::spawn(move || {
            transport::read_input(std::io::stdin().lock(), messages_tx, input_errors)
        });
        tokio::spawn(transport::feed_server(messages_rx, feed));
        let drained = tokio::spawn(transport::drain_server(drain, output_tx));
        Server::new(server_input, server_output, socket)
            .serve(service)
            .await;
        // The server's output pipe is closed now: pass on what is left in it.
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), drained).await;
        // Everything is queued: the writer flushes it and stops (the input thread, blocked on
        // stdin, still holds a sender, so the channel alone would never close).
        let _ = done.send(Vec::new());
    });
    // Background lints still running must not keep the process alive.
    runtime.shutdown_background();
    let _ = writer.join();
    if session.shutdown_requested.load(Ordering::SeqCst) {
        0
    } else {
        1
    }
}

impl LanguageServer for Backend {
    async fn initialize(&self, params: InitializeParams) -> Result<InitializeResult> {
        for warning in handlers::initialize::configure(&self.session, &params) {
            self.client
                .show_message(MessageType::WARNING, warning)
                .await;
        }
        Ok(handlers::initialize::initialize(&self.session, params))
    }

    async fn initialized(&self, _: InitializedParams) {
        // Compile the rules' query now rather than on the first keystroke.
        tokio::task::spawn_blocking(crate::analysis::prepare);
        let version = env!("CARGO_PKG_VERSION");
        self.client
            .log_message(MessageType::INFO, format!("django-orm-lsp {version} ready"))
            .await;
        handlers::indexing::watch_python_files(&self.client, &self.session).await;
        tokio::spawn(handlers::indexing::index_workspace(
            self.client.clone(),
            self.session.clone(),
        ));
    }

    async fn shutdown(&self) -> Result<()> {
        self.session
            .shutdown_requested
            .store(true, Ordering::SeqCst);
        Ok(())
    }

    async fn did_open(&self, params: DidOpenTextDocumentParams) {
        handlers::did_open::did_open(&self.client, &self.session, params).await;
    }

    async fn did_change(&self, params: DidChangeTextDocumentParams) {
        handlers::did_change::did_change(&self.client, &self.session, params).await;
    }

    async fn did_save(&self, params: DidSaveTextDocumentParams) {
        handlers::publish::publish_diagnostics(
            &self.client,
            &self.session,
            params.text_document.uri,
        );
    }

    async fn did_close(&self, params: DidCloseTextDocumentParams) {
        handlers::did_close::did_close(&self.client, &self.session, params).await;
    }

    async fn did_change_watched_files(&self, params: DidChangeWatchedFilesParams) {
        handlers::indexing::did_change_watched_files(&self.client, &self.session, params).await;
    }

    async fn hover(&self, params: HoverParams) -> Result<Option<Hover>> {
        handlers::hover::hover(&self.session, params).await
    }

    async fn code_lens(&self, params: CodeLensParams) -> Result<Option<Vec<CodeLens>>> {
        handlers::code_lens::code_lens(&self.session, params).await
    }

    async fn execute_command(&self, params: ExecuteCommandParams) -> Result<Option<LSPAny>> {
        handlers::execute_command::execute_command(&self.client, &self.session, params).await
    }

    async fn did_change_configuration(&self, params: DidChangeConfigurationParams) {
        handlers::did_change_configuration::did_change_configuration(
            &self.client,
            &self.session,
            params,
        )
        .await;
    }

    async fn diagnostic(
        &self,
        params: DocumentDiagnosticParams,
    ) -> Result<DocumentDiagnosticReportResult> {
        handlers::diagnostic::diagnostic(&self.session, params).await
    }

    async fn code_action(&self, params: CodeActionParams) -> Result<Option<CodeActionResponse>> {
        handlers::code_action::code_action(&self.session, params).await
    }

    async fn code_action_resolve(&self, action: CodeAction) -> Result<CodeAction> {
        handlers::code_action_resolve::code_action_resolve(&self.session, action).await
    }
}
