//! The server's state: open documents and what was negotiated at `initialize`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use dashmap::DashMap;
use tower_lsp_server::ls_types::Uri;

use crate::analysis::{lint_incremental, Diagnostic, FileContext, LintCache};
use crate::settings::Settings;
use crate::store::{Document, DocumentSnapshot, PositionEncoding};
use crate::workspace::Workspace;

/// One open document and its analysis state. The cache and the last result are shared with the
/// background lints of this document's snapshots.
pub struct OpenDocument {
    pub document: Document,
    pub analysis: Arc<Mutex<DocumentAnalysis>>,
}

#[derive(Default)]
pub struct DocumentAnalysis {
    cache: LintCache,
    /// The findings of the last version linted, with the index and settings they were made with.
    latest: Option<(i32, u64, Arc<[Diagnostic]>)>,
}

/// What a background task needs to analyse a document version.
#[derive(Clone)]
pub struct Snapshot {
    pub uri: Uri,
    pub document: DocumentSnapshot,
    pub analysis: Arc<Mutex<DocumentAnalysis>>,
    pub settings: Arc<Settings>,
    pub encoding: PositionEncoding,
    /// The document's place in the workspace: the model index and its module name.
    pub file: FileContext,
}

impl Snapshot {
    /// The findings for this snapshot's version, computed once per version (push, pull and code
    /// actions all ask), re-linting only the statements that changed since the last version.
    pub fn diagnostics(&self) -> Arc<[Diagnostic]> {
        let Some(tree) = self.document.tree.as_ref() else {
            return Arc::from([]);
        };
        let mut analysis = self.analysis.lock().unwrap_or_else(|e| e.into_inner());
        let inputs = self.file.index.fingerprint() ^ self.settings.fingerprint();
        if let Some((version, used, found)) = &analysis.latest {
            if *version == self.document.version && *used == inputs {
                return found.clone();
            }
        }
        let found: Arc<[Diagnostic]> = lint_incremental(
            self.document.text(),
            tree,
            &self.settings,
            &self.file,
            &mut analysis.cache,
        )
        .into();
        if analysis
            .latest
            .as_ref()
            .is_none_or(|(v, _, _)| *v <= self.document.version)
        {
            analysis.latest = Some((self.document.version, inputs, found.clone()));
        }
        found
    }
}

#[derive(Default)]
pub struct Session {
    pub documents: DashMap<Uri, OpenDocument>,
    pub encoding: RwLock<PositionEncoding>,
    pub settings: RwLock<Arc<Settings>>,
    /// The client asks for diagnostics (`textDocument/diagnostic`): do not push them too.
    pub pull_diagnostics: AtomicBool,
    pub shutdown_requested: AtomicBool,
    pub client_shows_progress: AtomicBool,
    pub client_watches_files: AtomicBool,
    pub workspace: RwLock<Workspace>,
}

impl Session {
    pub fn encoding(&self) -> PositionEncoding {
        *self.encoding.read().unwrap_or_else(|e| e.into_inner())
    }

    pub fn settings(&self) -> Arc<Settings> {
        self.settings
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn pulls(&self) -> bool {
        self.pull_diagnostics.load(Ordering::Relaxed)
    }

    /// A snapshot of the document at `uri`; the map's guard is released before this returns.
    pub fn snapshot(&self, uri: &Uri) -> Option<Snapshot> {
        let entry = self.documents.get(uri)?;
        Some(Snapshot {
            uri: uri.clone(),
            document: entry.document.snapshot(),
            analysis: entry.analysis.clone(),
            settings: self.settings(),
            encoding: self.encoding(),
            file: self.file_context(uri),
        })
    }

    pub fn file_context(&self, uri: &Uri) -> FileContext {
        let workspace = self.workspace.read().unwrap_or_else(|e| e.into_inner());
        workspace.context_for(&path_of(uri))
    }

    /// Takes an open document's current text into the model index. Returns whether the index
    /// changed (then every open document may have new findings).
    pub fn index_document(&self, uri: &Uri) -> bool {
        let Some(snapshot) = self.snapshot(uri) else {
            return false;
        };
        let Some(tree) = snapshot.document.tree.as_ref() else {
            return false;
        };
        let mut workspace = self.workspace.write().unwrap_or_else(|e| e.into_inner());
        // A newer version's update may already have been applied; never go back to older text.
        if self.current_version(uri) != Some(snapshot.document.version) {
            return false;
        }
        workspace.update(&path_of(uri), snapshot.document.text(), tree)
    }

    pub fn current_version(&self, uri: &Uri) -> Option<i32> {
        self.documents.get(uri).map(|d| d.document.version())
    }
}

/// The file system path of a `file:` URI; for other schemes, the URI's path as written.
pub fn path_of(uri: &Uri) -> std::path::PathBuf {
    match uri.to_file_path() {
        Some(path) => path.into_owned(),
        None => std::path::PathBuf::from(uri.path().as_str()),
    }
}
