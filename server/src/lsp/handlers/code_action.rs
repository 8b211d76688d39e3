//! Quick fixes per diagnostic, "disable for this line", and fix-all of the safe fixes.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use tower_lsp_server::jsonrpc::{Error, Result};
use tower_lsp_server::ls_types::*;

use super::initialize::FIX_ALL_KIND;
use crate::analysis::{apply_edits, count_errors, fix_all, loop_around, noqa, Diagnostic, Edit};
use crate::lsp::convert;
use crate::lsp::session::{Session, Snapshot};

pub async fn code_action(
    session: &Arc<Session>,
    params: CodeActionParams,
) -> Result<Option<CodeActionResponse>> {
    let Some(snapshot) = session.snapshot(&params.text_document.uri) else {
        return Ok(None);
    };
    let only = params.context.only;
    let request = Request {
        range: params.range,
        named: params.context.diagnostics,
    };
    let resolves = session.client_resolves_edits.load(Ordering::Relaxed);
    let looked_at = snapshot.clone();
    let actions = tokio::task::spawn_blocking(move || {
        let mut actions = actions(&snapshot, &request, only.as_deref());
        if resolves && wanted(only.as_deref(), CodeActionKind::REFACTOR_REWRITE.as_str()) {
            actions.extend(loop_rewrites(&snapshot, &request));
        }
        actions
    })
    .await
    .map_err(|_| Error::internal_error())?;
    session.keep_parsed_tree(&looked_at);
    Ok(Some(actions))
}

/// What a code action request asks about: a range, and the diagnostics the client names in its
/// context (Neovim names the cursor line's, wherever the cursor is on the line).
struct Request {
    range: Range,
    named: Vec<tower_lsp_server::ls_types::Diagnostic>,
}

impl Request {
    /// The findings the request is about: those whose range intersects the requested range, and
    /// those the client names (by code and range, as they were published).
    fn findings<'a>(&self, snapshot: &Snapshot, findings: &'a [Diagnostic]) -> Vec<&'a Diagnostic> {
        let rope = &snapshot.document.rope;
        let offset = |p: Position| convert::offset(rope, p, snapshot.encoding);
        let (start, end) = (offset(self.range.start), offset(self.range.end));
        let named: Vec<(std::ops::Range<usize>, String)> = self
            .named
            .iter()
            .filter_map(|n| match &n.code {
                Some(NumberOrString::String(code)) => {
                    Some((offset(n.range.start)..offset(n.range.end), code.clone()))
                }
                _ => None,
            })
            .collect();
        findings
            .iter()
            .filter(|d| {
                (d.range.start <= end && start <= d.range.end)
                    || named
                        .iter()
                        .any(|(range, code)| *range == d.range && code == d.code())
            })
            .collect()
    }
}

/// What a "rewrite this loop" action carries until `codeAction/resolve` computes its edit.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct LoopRewrite {
    pub uri: Uri,
    pub version: i32,
    pub start: usize,
    pub end: usize,
}

/// "Show the rewritten loop" for each loop around the range's findings that has two or more
/// safe fixes (one is the quick fix already): every fix of the loop applied at once, computed
/// only when the client resolves it.
fn loop_rewrites(snapshot: &Snapshot, request: &Request) -> Vec<CodeActionOrCommand> {
    let Some(tree) = snapshot.document.tree() else {
        return Vec::new();
    };
    let diagnostics = snapshot.diagnostics();
    let mut regions: Vec<std::ops::Range<usize>> = Vec::new();
    for d in request.findings(snapshot, &diagnostics) {
        if let Some(region) = loop_around(tree, d.range.start) {
            if !regions.contains(&region) {
                regions.push(region);
            }
        }
    }
    regions
        .into_iter()
        .filter_map(|region| {
            let fixes = diagnostics
                .iter()
                .filter(|d| region.start <= d.range.start && d.range.end <= region.end)
                .filter(|d| d.fix.as_ref().is_some_and(|f| f.is_safe()))
                .count();
            let data = LoopRewrite {
                uri: snapshot.uri.clone(),
                version: snapshot.document.version,
                start: region.start,
                end: region.end,
            };
            (fixes >= 2).then(|| {
                CodeActionOrCommand::CodeAction(CodeAction {
                    title: format!("Show the rewritten loop ({fixes} safe fixes)"),
                    kind: Some(CodeActionKind::REFACTOR_REWRITE),
                    data: serde_json::to_value(data).ok(),
                    ..CodeAction::default()
                })
            })
        })
        .collect()
}

/// `only` filters by kind, hierarchically: `source` admits `source.fixAll.django-orm-lsp`.
fn wanted(only: Option<&[CodeActionKind]>, kind: &str) -> bool {
    only.is_none_or(|kinds| {
        kinds.iter().any(|k| {
            kind == k.as_str()
                || kind
                    .strip_prefix(k.as_str())
                    .is_some_and(|rest| rest.starts_with('.'))
        })
    })
}

fn actions(
    snapshot: &Snapshot,
    request: &Request,
    only: Option<&[CodeActionKind]>,
) -> Vec<CodeActionOrCommand> {
    let Some(tree) = snapshot.document.tree() else {
        return Vec::new();
    };
    let (rope, encoding, uri) = (&snapshot.document.rope, snapshot.encoding, &snapshot.uri);
    let text = snapshot.document.text();
    let diagnostics = snapshot.diagnostics();
    let mut actions = Vec::new();

    if wanted(only, CodeActionKind::QUICKFIX.as_str()) {
        for d in request.findings(snapshot, &diagnostics) {
            let lsp_diagnostic = convert::diagnostic(rope, d, encoding);
            let action = |title: String, edits: &[Edit], preferred: bool| {
                let edits = edits
                    .iter()
                    .map(|e| convert::text_edit(rope, e, encoding))
                    .collect();
                CodeActionOrCommand::CodeAction(CodeAction {
                    title,
                    kind: Some(CodeActionKind::QUICKFIX),
                    diagnostics: Some(vec![lsp_diagnostic.clone()]),
                    edit: Some(convert::workspace_edit(uri, edits)),
                    is_preferred: Some(preferred),
                    ..CodeAction::default()
                })
            };
            if let Some(fix) = d.fix.as_ref().filter(|f| keeps_syntax(text, tree, f)) {
                let title = if fix.is_safe() {
                    fix.title.clone()
                } else {
                    format!("{} (unsafe)", fix.title)
                };
                actions.push(action(title, &fix.edits, fix.is_safe()));
            }
            if let Some(edit) = noqa::suppression_edit(text, tree, d.range.start, d.code()) {
                actions.push(action(
                    format!("Disable {} for this line", d.code()),
                    &[edit],
                    false,
                ));
            }
        }
    }

    let any_safe_fix = diagnostics
        .iter()
        .any(|d| d.fix.as_ref().is_some_and(|f| f.is_safe()));
    if any_safe_fix && wanted(only, FIX_ALL_KIND) {
        let fixed = snapshot
            .settings
            .as_ref()
            .and_then(|settings| fix_all(text, settings, &snapshot.file));
        if let Some(fixed) = fixed {
            let edit = convert::text_edit(rope, &minimal_edit(text, &fixed), encoding);
            actions.push(CodeActionOrCommand::CodeAction(CodeAction {
                title: "django-orm-lsp: apply all safe fixes".into(),
                kind: Some(CodeActionKind::new(FIX_ALL_KIND)),
                edit: Some(convert::workspace_edit(uri, vec![edit])),
                ..CodeAction::default()
            }));
        }
    }
    actions
}

/// Whether applying `fix` leaves no more syntax errors than `text` has. Fixes are built to keep
/// Python valid, but text that is not Python (syntax errors, statements run together on one
/// line that tree-sitter accepts) can make one land in the wreckage: each offered fix is
/// re-parsed first, a few milliseconds for the fixes under the cursor.
fn keeps_syntax(text: &str, tree: &tree_sitter::Tree, fix: &crate::analysis::Fix) -> bool {
    let before = count_errors(tree.root_node());
    apply_edits(text, &fix.edits)
        .and_then(|fixed| crate::store::parse_python(&fixed))
        .is_some_and(|fixed| count_errors(fixed.root_node()) <= before)
}

/// One edit turning `old` into `new`: everything between their common prefix and suffix.
pub(super) fn minimal_edit(old: &str, new: &str) -> Edit {
    let mut prefix = old
        .bytes()
        .zip(new.bytes())
        .take_while(|(a, b)| a == b)
        .count();
    while !old.is_char_boundary(prefix) || !new.is_char_boundary(prefix) {
        prefix -= 1;
    }
    let max_suffix = old.len().min(new.len()) - prefix;
    let mut suffix = old
        .bytes()
        .rev()
        .zip(new.bytes().rev())
        .take(max_suffix)
        .take_while(|(a, b)| a == b)
        .count();
    while !old.is_char_boundary(old.len() - suffix) || !new.is_char_boundary(new.len() - suffix) {
        suffix -= 1;
    }
    Edit::replace(prefix..old.len() - suffix, &new[prefix..new.len() - suffix])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::apply_edits;

    #[test]
    fn on_broken_text_a_fix_that_adds_errors_is_not_offered() {
        use crate::analysis::Fix;
        let broken = "x = (\ny = len(qs)\n";
        let tree = crate::store::parse_python(broken).unwrap();
        let at = broken.find("len(qs)").unwrap();
        let good = Fix::safe("count", vec![Edit::replace(at..at + 7, "qs.count()")]);
        let bad = Fix::safe("break", vec![Edit::replace(at..at + 7, "qs.count(((")]);
        assert!(keeps_syntax(broken, &tree, &good));
        assert!(!keeps_syntax(broken, &tree, &bad));
    }

    #[test]
    fn minimal_edit_reproduces_the_new_text() {
        for (old, new) in [
            ("abc", "abc"),
            ("len(x) + 1", "x.count() + 1"),
            ("ééa", "éa"),
            ("", "x"),
            ("aaaa", "aa"),
        ] {
            let edit = minimal_edit(old, new);
            assert_eq!(apply_edits(old, &[edit]).unwrap(), new);
        }
    }
}
