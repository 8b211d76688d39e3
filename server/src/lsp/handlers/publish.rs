//! Push diagnostics: lint a snapshot (blocking in place, off the runtime's other tasks), publish
//! if still current.

use std::sync::atomic::Ordering;
use std::sync::{Arc, LazyLock};

use tokio::sync::Semaphore;

use tower_lsp_server::ls_types::Uri;
use tower_lsp_server::Client;

use crate::lsp::session::Session;
use crate::lsp::{convert, memory};

/// Lints running at once: one per core.
static LINT_SLOTS: LazyLock<usize> =
    LazyLock::new(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
static LINTS: LazyLock<Semaphore> = LazyLock::new(|| Semaphore::new(*LINT_SLOTS));

/// A turn to lint (pushed or pulled diagnostics, re-indexing a document): when it ends, the
/// memory freed meanwhile goes back to the system if no other lint runs or waits.
pub struct LintTurn(Option<tokio::sync::SemaphorePermit<'static>>);

impl Drop for LintTurn {
    fn drop(&mut self) {
        // The permit first: giving memory back waits until every lint slot is free.
        self.0.take();
        release_memory_when_idle();
    }
}

pub async fn lint_turn() -> Option<LintTurn> {
    LINTS
        .acquire()
        .await
        .ok()
        .map(|permit| LintTurn(Some(permit)))
}

pub fn publish_diagnostics(client: &Client, session: &Arc<Session>, uri: Uri) {
    if session.pulls() {
        return;
    }
    // What is current now; the snapshot itself is taken once this task may run, so that lints
    // waiting for their turn hold no syntax tree (twenty documents opened at once would
    // otherwise keep twenty trees alive, whatever the tree budget).
    let Some(version) = session.current_version(&uri) else {
        return;
    };
    let generation = session.settings_generation();
    let index = session.index_fingerprint();
    let client = client.clone();
    let session = session.clone();
    tokio::spawn(async move {
        let is_current = move |session: &Session, uri: &Uri| {
            session.current_version(uri) == Some(version)
                && session.settings_generation() == generation
                && session.index_fingerprint() == index
        };
        // Re-checking every open document after an index change would otherwise lint them all
        // at once, each with its transient parse and scope data: bounded, memory stays flat.
        let Some(turn) = lint_turn().await else {
            return;
        };
        // A newer version, settings or model index is already on its way: skip the work.
        if !is_current(&session, &uri) {
            return;
        }
        let Some(snapshot) = session.snapshot(&uri) else {
            return;
        };
        let current = session.clone();
        // On this worker thread, which hands its other tasks to another meanwhile, rather than
        // on the blocking pool: two thread handoffs less between a keystroke and its findings,
        // and the lint usually runs on the thread that applied the keystroke (a spawned task
        // starts on its spawner's worker), its data still in that core's caches. Timed inside
        // the server while typing into query.py, one run each: the lint's p50 1.34 ms here,
        // 2.15 ms on the pool. A panic stays in this spawned task, as it stayed in the blocking
        // one.
        let linted = tokio::task::block_in_place(move || {
            // The snapshot must be of what this task was spawned for, and still current.
            let taken = (
                snapshot.document.version,
                snapshot.settings_generation,
                snapshot.file.index.fingerprint(),
            );
            if taken != (version, generation, index) || !is_current(&current, &snapshot.uri) {
                return None;
            }
            let rope = &snapshot.document.rope;
            let found = snapshot.diagnostics();
            let converted = found
                .iter()
                .map(|d| convert::diagnostic(rope, d, snapshot.encoding))
                .collect::<Vec<_>>();
            memory::release_transient_tree(&snapshot.document);
            Some(converted)
        });
        drop(turn);
        let Some(diagnostics) = linted else {
            return;
        };
        if is_current(&session, &uri) {
            client
                .publish_diagnostics(uri, diagnostics, Some(version))
                .await;
        }
    });
}

/// If something freed memory in bulk and no lint is running (nor waiting: a released permit
/// goes straight to a waiter), gives the free memory back off the runtime.
pub fn release_memory_when_idle() {
    if LINTS.available_permits() == *LINT_SLOTS && memory::take_release_wanted() {
        tokio::task::spawn_blocking(memory::release_free_memory);
    }
}

/// After something every document depends on changed (the model index, the settings): pushes fresh diagnostics
/// for every open document, or asks a pulling client to pull again; asks for lenses again.
pub async fn refresh_all(client: &Client, session: &Arc<Session>) {
    if session.client_refreshes_lenses.load(Ordering::Relaxed) {
        // Not awaited: the diagnostics need not wait for the client's answer. An error changes
        // nothing: the client asks for lenses again on its next edit.
        let client = client.clone();
        tokio::spawn(async move {
            let _ = client.code_lens_refresh().await;
        });
    }
    if session.pulls() {
        // An error here changes nothing: the client gets the new findings on its next pull.
        let _ = client.workspace_diagnostic_refresh().await;
        return;
    }
    // The old index (and, after a scan, its parse data) is freed by now or soon.
    memory::release_wanted();
    // Collected first: no map guard may be held while publishing.
    let uris: Vec<Uri> = session.documents.iter().map(|d| d.key().clone()).collect();
    for uri in uris {
        publish_diagnostics(client, session, uri);
    }
}

/// A document's findings changed for the same version (a prediction failed): pushed again, or
/// a pulling client is asked to pull again.
async fn findings_corrected(client: &Client, session: &Arc<Session>, uri: Uri) {
    if session.pulls() {
        // An error here changes nothing: the client gets the findings on its next pull.
        let _ = client.workspace_diagnostic_refresh().await;
        return;
    }
    publish_diagnostics(client, session, uri);
}

/// How long a burst of keystrokes may go on before the edited text is taken into the model
/// index. Indexing a 5,000-line file per keystroke measurably slowed the diagnostics of the next
/// keystroke on two cores; a model edit reaching other documents a moment later costs nothing.
const INDEX_DELAY: std::time::Duration = std::time::Duration::from_millis(150);

/// A document's text changed: publish its diagnostics, then, once typing pauses, take the text
/// into the model index; if that changes the index, every open document is re-checked. Else
/// findings made without parsing the document (inside an open bracket) are checked against its
/// tree, which indexing parsed, and published again if they were wrong.
pub fn document_changed(client: &Client, session: &Arc<Session>, uri: Uri) {
    publish_diagnostics(client, session, uri.clone());
    // One pending indexing per document covers every edit made before it runs.
    if !session.indexing_pending.insert(uri.clone()) {
        return;
    }
    let client = client.clone();
    let session = session.clone();
    tokio::spawn(async move {
        tokio::time::sleep(INDEX_DELAY).await;
        session.indexing_pending.remove(&uri);
        let indexing = session.clone();
        // Indexing a document whose tree was dropped parses one: bounded like the lints.
        let Some(turn) = lint_turn().await else {
            return;
        };
        let checked = tokio::task::spawn_blocking(move || {
            let index_changed = indexing.index_document(&uri);
            let findings_changed = !index_changed
                && indexing.snapshot(&uri).is_some_and(|snapshot| {
                    let changed = snapshot.confirm_prediction();
                    memory::release_transient_tree(&snapshot.document);
                    changed
                });
            (uri, index_changed, findings_changed)
        })
        .await;
        drop(turn);
        match checked {
            Ok((_, true, _)) => refresh_all(&client, &session).await,
            Ok((uri, false, true)) => findings_corrected(&client, &session, uri).await,
            _ => {}
        }
    });
}
