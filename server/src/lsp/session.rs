//! The server's state: open documents, what was negotiated at `initialize`, and the settings.

use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

use dashmap::DashMap;
use tower_lsp_server::ls_types::Uri;

use super::configuration::Configuration;
use crate::analysis::index::FileFacts;
use crate::analysis::{
    lint_incremental, lint_typed, prediction_holds, Diagnostic, FileContext, LintCache, WantedTree,
};
use crate::settings::Settings;
use crate::store::{Document, DocumentSnapshot, PositionEncoding};
use crate::workspace::Workspace;

/// One open document and its analysis state. The cache and the last result are shared with the
/// background lints of this document's snapshots.
pub struct OpenDocument {
    pub document: Document,
    pub analysis: Arc<Mutex<DocumentAnalysis>>,
    /// When the document was last opened, edited or asked about (`Session::touch`): the
    /// documents used least recently lose their syntax trees first.
    used: AtomicU64,
    /// What this text last gave the model index, so that taking it in again (after a scan of
    /// the workspace) needs no tree, which the document may have dropped.
    indexed: Mutex<Option<IndexedFacts>>,
}

/// A document's facts for the model index, valid for one text and one set of workspace roots
/// (which decide its module name).
#[derive(Clone)]
struct IndexedFacts {
    revision: u64,
    roots: Vec<std::path::PathBuf>,
    relative: std::path::PathBuf,
    facts: Arc<FileFacts>,
}

impl OpenDocument {
    pub fn new(document: Document) -> Self {
        Self {
            document,
            analysis: Arc::default(),
            used: AtomicU64::new(0),
            indexed: Mutex::default(),
        }
    }
}

/// Syntax trees are kept for the most recently used open documents only, up to this much source
/// between them: a tree takes about 28 bytes per byte of source (10 MB for a 365 KB file), and
/// they were most of the memory of a server with many large files open. Another document's tree
/// is parsed again when it is next needed: in full on its first edit (about 25 ms for 365 KB),
/// incrementally from then on; a re-check of it after the model index changes parses a
/// transient tree. The most recently used document keeps its tree whatever its size.
const TREE_BUDGET_BYTES: usize = 1 << 20;
/// And at most this many trees, however small their files.
const TREE_BUDGET_DOCUMENTS: usize = 8;

#[derive(Default)]
pub struct DocumentAnalysis {
    cache: LintCache,
    latest: Option<Latest>,
}

/// The findings of the last version linted.
struct Latest {
    version: i32,
    /// The fingerprint of the model index and settings used.
    used: u64,
    found: Arc<[Diagnostic]>,
    /// The collapse the findings were predicted under, until the document's tree confirms it
    /// (`Snapshot::confirm_prediction`).
    predicted: Option<Range<usize>>,
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
    /// The document's place in the workspace: the model index and its module name.
    pub file: FileContext,
    /// For a template document (whose findings come from the views): its name and folder.
    pub template: Option<super::template_documents::TemplateDocument>,
}

impl Snapshot {
    /// The findings for this snapshot's version and settings, computed once for both (push,
    /// pull and code actions all ask), re-linting only the statements that changed since the
    /// last version.
    pub fn diagnostics(&self) -> Arc<[Diagnostic]> {
        if let (Some(template), Some(settings)) = (&self.template, &self.settings) {
            return self.template_diagnostics(template, settings);
        }
        let Some(settings) = &self.settings else {
            return Arc::from([]);
        };
        let key = self.memo_key(settings);
        let mut analysis = self.analysis.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(latest) = analysis
            .latest
            .as_ref()
            .filter(|l| (l.version, l.used) == key)
        {
            return latest.found.clone();
        }
        if !self.document.parses() {
            return Arc::from([]);
        }
        // The tree is asked for only now, and only if the text alone does not tell: a document
        // whose tree was dropped parses one here, and a memoised result needs none.
        let linted = lint_typed(
            self.document.text(),
            settings,
            &self.file,
            &mut analysis.cache,
            |wanted| match wanted {
                WantedTree::Current => self.document.tree(),
                WantedTree::Mended => self.document.tree_mended(),
            },
        );
        let Some(linted) = linted else {
            return Arc::from([]);
        };
        let found: Arc<[Diagnostic]> = linted.found.into();
        analysis.remember(key, found.clone(), linted.predicted);
        found
    }

    /// Checks findings made without parsing this version (`Typed::predicted`) against its
    /// tree, parsing it if need be, and lints it again if the prediction fails. Whether the
    /// findings changed: then they must be published again. Called once typing pauses (with
    /// the indexing of the text, which parses it anyway).
    pub fn confirm_prediction(&self) -> bool {
        let Some(settings) = &self.settings else {
            return false;
        };
        // Linted first if the push of this version has not run yet (or the client pulls).
        self.diagnostics();
        let key = self.memo_key(settings);
        let predicted = {
            let analysis = self.analysis.lock().unwrap_or_else(|e| e.into_inner());
            analysis
                .latest
                .as_ref()
                .filter(|l| (l.version, l.used) == key)
                .and_then(|l| l.predicted.clone())
        };
        let Some(predicted) = predicted else {
            return false;
        };
        // Parsed without the lock: the next keystroke's lint need not wait for it.
        let Some(tree) = self.document.tree() else {
            return false;
        };
        let text = self.document.text();
        let holds = prediction_holds(text, tree, &predicted);
        let mut analysis = self.analysis.lock().unwrap_or_else(|e| e.into_inner());
        let Some(latest) = analysis
            .latest
            .as_mut()
            .filter(|l| (l.version, l.used) == key)
        else {
            return false;
        };
        latest.predicted = None;
        if holds {
            return false;
        }
        let before = latest.found.clone();
        let found: Arc<[Diagnostic]> =
            lint_incremental(text, tree, settings, &self.file, &mut analysis.cache).into();
        analysis.remember(key, found.clone(), None);
        found != before
    }
}

impl Snapshot {
    /// What a Python document's findings are memoised under: its version, and the
    /// fingerprint of the model index and settings used.
    fn memo_key(&self, settings: &Settings) -> (i32, u64) {
        (
            self.document.version,
            self.file.index.fingerprint() ^ settings.fingerprint(),
        )
    }
}

impl DocumentAnalysis {
    /// Memoises the findings of a version, unless a later one is memoised already.
    fn remember(
        &mut self,
        (version, used): (i32, u64),
        found: Arc<[Diagnostic]>,
        predicted: Option<Range<usize>>,
    ) {
        if self.latest.as_ref().is_none_or(|l| l.version <= version) {
            self.latest = Some(Latest {
                version,
                used,
                found,
                predicted,
            });
        }
    }
}

impl Snapshot {
    /// A template's findings, memoised like a Python document's (per version and index).
    fn template_diagnostics(
        &self,
        template: &super::template_documents::TemplateDocument,
        settings: &Settings,
    ) -> Arc<[Diagnostic]> {
        // Which Python files count (`include-tests`) is not in the template's own settings.
        let key = (
            self.document.version,
            self.file.index.fingerprint()
                ^ settings.fingerprint()
                ^ u64::from(template.include_tests),
        );
        let mut analysis = self.analysis.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(latest) = analysis
            .latest
            .as_ref()
            .filter(|l| (l.version, l.used) == key)
        {
            return latest.found.clone();
        }
        let found: Arc<[Diagnostic]> = super::template_documents::diagnostics(
            &path_of(&self.uri),
            template,
            self.document.text(),
            &self.file.index,
            settings,
        )
        .into();
        analysis.latest = Some(Latest {
            version: key.0,
            used: key.1,
            found: found.clone(),
            predicted: None,
        });
        found
    }
}

#[derive(Default)]
pub struct Session {
    pub documents: DashMap<Uri, OpenDocument>,
    pub encoding: RwLock<PositionEncoding>,
    configuration: RwLock<Configuration>,
    /// The client asks for diagnostics (`textDocument/diagnostic`) and accepts
    /// `workspace/diagnostic/refresh` (to pull again after the index or settings change): do
    /// not push them too. Other clients are pushed to.
    pub pull_diagnostics: AtomicBool,
    pub shutdown_requested: AtomicBool,
    pub client_shows_progress: AtomicBool,
    pub client_watches_files: AtomicBool,
    /// The client accepts `workspace/codeLens/refresh`: asked to fetch lenses again after the
    /// model index or the settings change.
    pub client_refreshes_lenses: AtomicBool,
    /// The client opens a document the server names (`window/showDocument`).
    pub client_shows_documents: AtomicBool,
    /// The client resolves a code action's `edit` lazily (`codeAction/resolve`).
    pub client_resolves_edits: AtomicBool,
    /// The client can ask the user to confirm an annotated edit (a refactor preview).
    pub client_confirms_edits: AtomicBool,
    pub workspace: RwLock<Workspace>,
    /// Documents whose latest text is waiting to be taken into the model index.
    pub indexing_pending: dashmap::DashSet<Uri>,
    /// Orders `OpenDocument::used`.
    clock: AtomicU64,
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
        // The map's guard is released before any other lock is taken.
        let (document, analysis) = {
            let entry = self.documents.get(uri)?;
            (entry.document.snapshot(), entry.analysis.clone())
        };
        // One reading of the configuration, its guard released before the workspace's is taken.
        let (settings, settings_generation, include_tests) = {
            let configuration = self.configuration();
            (
                configuration.for_uri(uri),
                configuration.generation(),
                configuration.includes_tests(),
            )
        };
        let template = if document.template {
            let path = path_of(uri);
            let workspace = self.workspace.read().unwrap_or_else(|e| e.into_inner());
            let root = workspace
                .roots()
                .iter()
                .find(|r| path.starts_with(r))
                .cloned();
            root.zip(workspace.template_name(&path))
                .map(|(root, name)| super::template_documents::TemplateDocument {
                    name,
                    root,
                    include_tests,
                })
        } else {
            None
        };
        Some(Snapshot {
            uri: uri.clone(),
            document,
            analysis,
            settings,
            settings_generation,
            encoding: self.encoding(),
            file: self.file_context(uri),
            template,
        })
    }

    /// The workspace folders.
    pub fn roots(&self) -> Vec<std::path::PathBuf> {
        self.workspace
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .roots()
            .to_vec()
    }

    /// Identifies the model index in force: findings made with another one are stale.
    pub fn index_fingerprint(&self) -> u64 {
        self.workspace
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .index()
            .fingerprint()
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
        let path = path_of(uri);
        if snapshot.document.template {
            let mut workspace = self.workspace.write().unwrap_or_else(|e| e.into_inner());
            if self.current_version(uri) != Some(snapshot.document.version) {
                return false;
            }
            return workspace.update_template(&path, snapshot.document.text());
        }
        let revision = snapshot.document.revision();
        let roots = self.roots();
        let cached = self.documents.get(uri).and_then(|open| {
            let indexed = open.indexed.lock().unwrap_or_else(|e| e.into_inner());
            indexed
                .clone()
                .filter(|i| i.revision == revision && i.roots == roots)
        });
        let (relative, facts) = match cached {
            // The facts stand for this text, but whether the index takes the file also depends
            // on what it holds now (a rescan may have dropped it).
            Some(indexed) => {
                let workspace = self.workspace.read().unwrap_or_else(|e| e.into_inner());
                if workspace.indexes(&path, snapshot.document.text()).is_none() {
                    return false;
                }
                (indexed.relative, indexed.facts)
            }
            None => {
                let Some(tree) = snapshot.document.tree() else {
                    return false;
                };
                super::memory::release_transient_tree(&snapshot.document);
                let computed = {
                    let workspace = self.workspace.read().unwrap_or_else(|e| e.into_inner());
                    workspace.facts_for(&path, snapshot.document.text(), tree)
                };
                let Some((relative, facts)) = computed else {
                    return false;
                };
                if let Some(open) = self.documents.get(uri) {
                    *open.indexed.lock().unwrap_or_else(|e| e.into_inner()) = Some(IndexedFacts {
                        revision,
                        roots,
                        relative: relative.clone(),
                        facts: facts.clone(),
                    });
                }
                (relative, facts)
            }
        };
        let mut workspace = self.workspace.write().unwrap_or_else(|e| e.into_inner());
        // A newer version's update may already have been applied; never go back to older text.
        if self.current_version(uri) != Some(snapshot.document.version) {
            return false;
        }
        workspace.apply(relative, facts)
    }

    /// The document is in use (opened, edited, hovered, asked for code actions): its tree is
    /// among the last to be dropped.
    pub fn touch(&self, uri: &Uri) {
        if let Some(open) = self.documents.get(uri) {
            let now = self.clock.fetch_add(1, Ordering::Relaxed) + 1;
            open.used.store(now, Ordering::Relaxed);
        }
    }

    /// Drops the syntax trees of the least recently used documents beyond the budget
    /// (`TREE_BUDGET_BYTES`, `TREE_BUDGET_DOCUMENTS`). Synchronous: no map guard is held across
    /// documents, and snapshots already taken keep their own reference to a dropped tree.
    pub fn limit_trees(&self) {
        // Collected first: taking one entry's write guard while iterating the map could deadlock.
        let mut kept: Vec<(u64, usize, Uri)> = self
            .documents
            .iter()
            .filter(|open| open.document.holds_tree())
            .map(|open| {
                let used = open.used.load(Ordering::Relaxed);
                (used, open.document.len_bytes(), open.key().clone())
            })
            .collect();
        kept.sort_by_key(|&(used, _, _)| std::cmp::Reverse(used));
        let mut bytes = 0;
        for (i, (_, len, uri)) in kept.into_iter().enumerate() {
            bytes += len;
            if i == 0 || (i < TREE_BUDGET_DOCUMENTS && bytes <= TREE_BUDGET_BYTES) {
                continue;
            }
            if let Some(mut open) = self.documents.get_mut(&uri) {
                if open.document.drop_tree() {
                    super::memory::release_wanted();
                }
            }
        }
    }

    /// After a request about a document (hover, code actions) parsed a tree its document had
    /// dropped: the document is being looked at, so it keeps that tree (if its text is still
    /// the snapshot's), and the least recently used others give theirs up.
    pub fn keep_parsed_tree(&self, snapshot: &Snapshot) {
        if snapshot.document.parsed_tree().is_none() {
            self.touch(&snapshot.uri);
            return;
        }
        let kept = match self.documents.get_mut(&snapshot.uri) {
            Some(mut open) => open.document.keep_tree_of(&snapshot.document),
            None => false,
        };
        self.touch(&snapshot.uri);
        if kept {
            self.limit_trees();
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(name: &str) -> Uri {
        format!("file:///project/{name}.py").parse().unwrap()
    }

    fn open(session: &Session, name: &str, text: &str) {
        let uri = uri(name);
        let document = OpenDocument::new(Document::new(text, 1));
        session.documents.insert(uri.clone(), document);
        session.touch(&uri);
        session.limit_trees();
    }

    fn with_trees(session: &Session) -> Vec<String> {
        let mut names: Vec<String> = session
            .documents
            .iter()
            .filter(|open| open.document.holds_tree())
            .map(|open| {
                open.key()
                    .path()
                    .as_str()
                    .trim_start_matches("/project/")
                    .to_string()
            })
            .collect();
        names.sort();
        names
    }

    /// Typing inside an open bracket that swallows the definitions after it: those keystrokes
    /// are answered without parsing the document, the one that closes it parses it, every
    /// answer is what a whole lint of the text finds, and the parse once typing pauses
    /// confirms the last prediction.
    #[test]
    fn a_keystroke_inside_an_open_bracket_is_answered_without_parsing_the_document() {
        use crate::store::{TextChange, TextPosition};
        let mut text = String::from("from django.db import models\n\n\nclass Entry(models.Model):\n    title = models.CharField(max_length=9)\n");
        for i in 0..4 {
            text.push_str(&format!(
                "\n\ndef view_{i}(request):\n    \n    return len(Entry.objects.all())\n"
            ));
        }
        let session = Session::default();
        open(&session, "views", &text);
        session.index_document(&uri("views"));
        let line = text
            .lines()
            .position(|l| l == "def view_1(request):")
            .unwrap() as u32
            + 1;
        let typed = "x = Entry.objects.filter(title='a')";
        let mut unparsed = Vec::new();
        for (at, character) in typed.char_indices() {
            let position = TextPosition::new(line, 4 + at as u32);
            let change = TextChange {
                range: Some((position, position)),
                text: character.to_string(),
            };
            session
                .documents
                .get_mut(&uri("views"))
                .unwrap()
                .document
                .apply_changes(&[change], at as i32 + 2, PositionEncoding::Utf8);
            let snapshot = session.snapshot(&uri("views")).unwrap();
            let found = snapshot.diagnostics();
            if !snapshot.document.is_parsed() {
                unparsed.push(&typed[..=at]);
            }
            let text = snapshot.document.text();
            let settings = snapshot.settings.as_ref().unwrap();
            let tree = crate::store::parse_python(text).unwrap();
            let whole = crate::analysis::lint(text, &tree, settings, &snapshot.file);
            assert_eq!(*found, *whole, "{}", &typed[..=at]);
            // The other views keep their findings; the one typed has its own back once it parses.
            assert!(found.len() >= 3, "{}", &typed[..=at]);
            if at + 1 == typed.len() - 1 {
                // Before the closing bracket: confirmed by the tree, nothing to publish again.
                assert!(!snapshot.confirm_prediction());
                assert!(snapshot.document.is_parsed());
            }
        }
        let quote = typed.find('\'').unwrap();
        assert!(unparsed.contains(&&typed[..=quote]), "{unparsed:?}");
        assert!(
            unparsed.contains(&"x = Entry.objects.filter(title='a'"),
            "{unparsed:?}"
        );
        assert!(!unparsed.contains(&typed), "{unparsed:?}");
    }

    /// Findings made under a collapse the tree does not show are made again from the tree:
    /// what `confirm_prediction` reports, so that they are published again.
    #[test]
    fn a_prediction_the_tree_does_not_confirm_is_linted_again() {
        let text = "from django.db import models\n\n\nclass Entry(models.Model):\n    title = models.CharField(max_length=9)\n\n\ndef view(request):\n    return len(Entry.objects.all())\n";
        let session = Session::default();
        open(&session, "views", text);
        session.index_document(&uri("views"));
        let snapshot = session.snapshot(&uri("views")).unwrap();
        let found = snapshot.diagnostics();
        assert_eq!(found.len(), 1);
        // As if this version's findings had been predicted, wrongly: the module does not
        // collapse around the view, and its finding was dropped.
        {
            let mut analysis = snapshot.analysis.lock().unwrap();
            let latest = analysis.latest.as_mut().unwrap();
            latest.predicted = Some(text.find("def view").unwrap()..text.len());
            latest.found = Arc::from([]);
        }
        assert!(snapshot.diagnostics().is_empty());
        assert!(snapshot.confirm_prediction());
        assert_eq!(*snapshot.diagnostics(), *found);
        // Confirmed once: nothing more to do for this version.
        assert!(!snapshot.confirm_prediction());
    }

    #[test]
    fn trees_are_kept_for_the_most_recently_used_documents_within_the_budget() {
        let session = Session::default();
        let large = "x = 1\n".repeat(TREE_BUDGET_BYTES / 6 / 2 - 10);
        for name in ["a", "b", "c"] {
            open(&session, name, &large);
        }
        // Two fit in the budget; the oldest gave its tree up.
        assert_eq!(with_trees(&session), ["b.py", "c.py"]);

        // Asked about (hover, code actions), `a` parses a tree and keeps it; `b` is now the
        // least recently used.
        let snapshot = session.snapshot(&uri("a")).unwrap();
        assert!(snapshot.document.tree().is_some());
        session.keep_parsed_tree(&snapshot);
        assert_eq!(with_trees(&session), ["a.py", "c.py"]);

        // The most recently used document keeps its tree whatever its size.
        open(
            &session,
            "huge",
            &"x = 1\n".repeat(TREE_BUDGET_BYTES / 6 + 10),
        );
        assert_eq!(with_trees(&session), ["huge.py"]);

        // However small the files, at most TREE_BUDGET_DOCUMENTS trees.
        for i in 0..TREE_BUDGET_DOCUMENTS + 2 {
            open(&session, &format!("small{i}"), "y = 2\n");
        }
        assert_eq!(with_trees(&session).len(), TREE_BUDGET_DOCUMENTS);
        assert!(!with_trees(&session).contains(&"small0.py".to_string()));
    }
}
