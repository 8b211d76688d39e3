//! Quick fixes per diagnostic, "disable for this line", and fix-all of the safe fixes.

use std::sync::Arc;

use tower_lsp_server::jsonrpc::{Error, Result};
use tower_lsp_server::ls_types::*;

use super::initialize::FIX_ALL_KIND;
use crate::analysis::{fix_all, noqa, Edit};
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
    let range = params.range;
    let actions = tokio::task::spawn_blocking(move || actions(&snapshot, range, only.as_deref()))
        .await
        .map_err(|_| Error::internal_error())?;
    Ok(Some(actions))
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
    range: Range,
    only: Option<&[CodeActionKind]>,
) -> Vec<CodeActionOrCommand> {
    let Some(tree) = snapshot.document.tree.as_ref() else {
        return Vec::new();
    };
    let (rope, encoding, uri) = (&snapshot.document.rope, snapshot.encoding, &snapshot.uri);
    let text = snapshot.document.text();
    let start = convert::offset(rope, range.start, encoding);
    let end = convert::offset(rope, range.end, encoding);
    let diagnostics = snapshot.diagnostics();
    let mut actions = Vec::new();

    if wanted(only, CodeActionKind::QUICKFIX.as_str()) {
        for d in diagnostics
            .iter()
            .filter(|d| d.range.start <= end && start <= d.range.end)
        {
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
            if let Some(fix) = &d.fix {
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

/// One edit turning `old` into `new`: everything between their common prefix and suffix.
fn minimal_edit(old: &str, new: &str) -> Edit {
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
