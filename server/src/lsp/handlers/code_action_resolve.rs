//! `codeAction/resolve`: the edit of a "Show the rewritten loop" action, computed when the user
//! picks it. The edit carries a change annotation that asks for confirmation, so clients that
//! support it show the rewrite as a preview before applying it.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use tower_lsp_server::jsonrpc::{Error, ErrorCode, Result};
use tower_lsp_server::ls_types::*;

use super::code_action::{minimal_edit, LoopRewrite};
use crate::analysis::fix_region;
use crate::lsp::convert;
use crate::lsp::session::Session;

const ANNOTATION: &str = "django-orm-lsp.rewrite-loop";

pub async fn code_action_resolve(session: &Arc<Session>, action: CodeAction) -> Result<CodeAction> {
    let Some(rewrite) = action
        .data
        .clone()
        .and_then(|d| serde_json::from_value::<LoopRewrite>(d).ok())
    else {
        // Not one of ours to resolve: the action is complete as it is.
        return Ok(action);
    };
    let snapshot = session
        .snapshot(&rewrite.uri)
        .filter(|s| s.document.version == rewrite.version)
        .ok_or_else(|| Error {
            code: ErrorCode::ContentModified,
            message: "the document changed since the action was offered".into(),
            data: None,
        })?;
    let confirms = session.client_confirms_edits.load(Ordering::Relaxed);
    tokio::task::spawn_blocking(move || {
        let mut action = action;
        let settings = snapshot.settings.as_ref()?;
        let text = snapshot.document.text();
        let region = rewrite.start..rewrite.end;
        let fixed = fix_region(text, settings, &snapshot.file, region)?;
        let edit = convert::text_edit(
            &snapshot.document.rope,
            &minimal_edit(text, &fixed.text),
            snapshot.encoding,
        );
        action.edit = Some(if confirms {
            annotated(&snapshot.uri, edit)
        } else {
            convert::workspace_edit(&snapshot.uri, vec![edit])
        });
        Some(action)
    })
    .await
    .map_err(|_| Error::internal_error())?
    .ok_or_else(|| Error::invalid_params("the loop has nothing left to rewrite"))
}

/// The edit as one annotated change that needs the user's confirmation: a preview.
fn annotated(uri: &Uri, edit: TextEdit) -> WorkspaceEdit {
    WorkspaceEdit {
        document_changes: Some(DocumentChanges::Edits(vec![TextDocumentEdit {
            text_document: OptionalVersionedTextDocumentIdentifier {
                uri: uri.clone(),
                version: None,
            },
            edits: vec![OneOf::Right(AnnotatedTextEdit {
                text_edit: edit,
                annotation_id: ANNOTATION.into(),
            })],
        }])),
        change_annotations: Some(HashMap::from([(
            ANNOTATION.into(),
            ChangeAnnotation {
                label: "Rewrite the loop".into(),
                needs_confirmation: Some(true),
                description: Some("every safe fix of the loop's findings".into()),
            },
        )])),
        ..WorkspaceEdit::default()
    }
}
