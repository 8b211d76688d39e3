//! The server's state: open documents, what was negotiated at `initialize`, and the settings.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

use dashmap::DashMap;
use tower_lsp_server::ls_types::Uri;

use super::configuration::Configuration;
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
    /// (document version, settings generation, findings).
    latest: Option<(i32, u64, Arc<[Diagnostic]>)>,
}

/// What a background task needs to analyse a document version.
#[derive(Clone)]
pub struct Snapshot {
    pub uri: Uri,
    pub document: DocumentSnapshot,
    pub analysis: Arc<Mutex<DocumentAnalysis>>,
    /// `None`: the configuration excludes this document.
    pub settings: Option<Settings>,
    pub settings_generation: u64,
    pub encoding: PositionEncoding,
}

impl Snapshot {
    /// The findings for this snapshot's version and settings, computed once for both (push,
    /// pull and code actions all ask), re-linting only the statements that changed since the
    /// last version.
    pub fn diagnostics(&self) -> Arc<[Diagnostic]> {
        let (Some(tree), Some(settings)) = (self.document.tree.as_ref(), &self.settings) else {
            return Arc::from([]);
        };
        let key = (self.document.version, self.settings_generation);
        let mut analysis = self.analysis.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((version, generation, found)) = &analysis.latest {
            if (*version, *generation) == key {
                return found.clone();
            }
        }
        let found: Arc<[Diagnostic]> =
            lint_incremental(self.document.text(), tree, settings, &mut analysis.cache).into();
        if analysis
            .latest
            .as_ref()
            .is_none_or(|(version, generation, _)| (*version, *generation) <= key)
        {
            analysis.latest = Some((key.0, key.1, found.clone()));
        }
        found
    }
}

#[derive(Default)]
pub struct Session {
    pub documents: DashMap<Uri, OpenDocument>,
    pub encoding: RwLock<PositionEncoding>,
    configuration: RwLock<Configuration>,
    /// The client asks for diagnostics (`textDocument/diagnostic`): do not push them too.
    pub pull_diagnostics: AtomicBool,
    /// The client accepts `workspace/diagnostic/refresh` (to pull again after settings change).
    pub diagnostic_refresh: AtomicBool,
    pub shutdown_requested: AtomicBool,
}

impl Session {
    pub fn encoding(&self) -> PositionEncoding {
        *self.encoding.read().unwrap_or_else(|e| e.into_inner())
    }

    fn configuration(&self) -> RwLockReadGuard<'_, Configuration> {
        self.configuration.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Bumped whenever the settings change: findings computed under an older one are stale.
    pub fn settings_generation(&self) -> u64 {
        self.configuration().generation()
    }

    pub fn configure(&self, configuration: Configuration) {
        *self.configuration_mut() = configuration;
    }

    /// Re-reads pyproject.toml at the workspace root, for when it changed on disk; returns a
    /// warning for the user if it has unusable settings. Re-publishing is the caller's part.
    pub fn reload_pyproject(&self) -> Option<String> {
        self.configuration_mut().reload_pyproject()
    }

    /// Applies the settings of a `workspace/didChangeConfiguration`; returns a warning for the
    /// user if some are unusable.
    pub fn change_configuration(&self, settings: &serde_json::Value) -> Option<String> {
        self.configuration_mut().change(settings)
    }

    fn configuration_mut(&self) -> RwLockWriteGuard<'_, Configuration> {
        self.configuration
            .write()
            .unwrap_or_else(|e| e.into_inner())
    }

    pub fn pulls(&self) -> bool {
        self.pull_diagnostics.load(Ordering::Relaxed)
    }

    /// A snapshot of the document at `uri`; the map's guard is released before this returns.
    pub fn snapshot(&self, uri: &Uri) -> Option<Snapshot> {
        let entry = self.documents.get(uri)?;
        let configuration = self.configuration();
        Some(Snapshot {
            uri: uri.clone(),
            document: entry.document.snapshot(),
            analysis: entry.analysis.clone(),
            settings: configuration.for_uri(uri),
            settings_generation: configuration.generation(),
            encoding: self.encoding(),
        })
    }

    pub fn current_version(&self, uri: &Uri) -> Option<i32> {
        self.documents.get(uri).map(|d| d.document.version())
    }
}
