//! The server's state: open documents and what was negotiated at `initialize`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use dashmap::DashMap;
use tower_lsp_server::ls_types::Uri;

use crate::analysis::{lint_incremental, Diagnostic, LintCache};
use crate::settings::Settings;
use crate::store::{Document, DocumentSnapshot, PositionEncoding};

/// One open document and its analysis state. The cache and the last result are shared with the
/// background lints of this document's snapshots.
pub struct OpenDocument {
    pub document: Document,
    pub analysis: Arc<Mutex<DocumentAnalysis>>,
}

#[derive(Default)]
pub struct DocumentAnalysis {
    cache: LintCache,
    latest: Option<(i32, Arc<[Diagnostic]>)>,
}

/// What a background task needs to analyse a document version.
#[derive(Clone)]
pub struct Snapshot {
    pub uri: Uri,
    pub document: DocumentSnapshot,
    pub analysis: Arc<Mutex<DocumentAnalysis>>,
    pub settings: Arc<Settings>,
    pub encoding: PositionEncoding,
}

impl Snapshot {
    /// The findings for this snapshot's version, computed once per version (push, pull and code
    /// actions all ask), re-linting only the statements that changed since the last version.
    pub fn diagnostics(&self) -> Arc<[Diagnostic]> {
        let Some(tree) = self.document.tree.as_ref() else {
            return Arc::from([]);
        };
        let mut analysis = self.analysis.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((version, found)) = &analysis.latest {
            if *version == self.document.version {
                return found.clone();
            }
        }
        let found: Arc<[Diagnostic]> = lint_incremental(
            self.document.text(),
            tree,
            &self.settings,
            &mut analysis.cache,
        )
        .into();
        if analysis
            .latest
            .as_ref()
            .is_none_or(|(v, _)| *v <= self.document.version)
        {
            analysis.latest = Some((self.document.version, found.clone()));
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
        })
    }

    pub fn current_version(&self, uri: &Uri) -> Option<i32> {
        self.documents.get(uri).map(|d| d.document.version())
    }
}
