//! Hover: the inferred type of the expression under the cursor, e.g.
//! `QuerySet[blog.Entry] · select_related: author`, and a QuerySet's SQL, as
//! `analysis::hover` writes them; on a finding whose fix rewrites a QuerySet, its SQL before
//! and after the fix.

use std::sync::Arc;

use tower_lsp_server::jsonrpc::{Error, Result};
use tower_lsp_server::ls_types::*;

use crate::analysis::hover::{fix_sql, hover_at};
use crate::lsp::convert;
use crate::lsp::session::Session;
use crate::settings::Settings;

pub async fn hover(session: &Arc<Session>, params: HoverParams) -> Result<Option<Hover>> {
    let position = params.text_document_position_params;
    let Some(snapshot) = session.snapshot(&position.text_document.uri) else {
        return Ok(None);
    };
    let looked_at = snapshot.clone();
    let hover = tokio::task::spawn_blocking(move || {
        let tree = snapshot.document.tree()?;
        let rope = &snapshot.document.rope;
        let offset = convert::offset(rope, position.position, snapshot.encoding);
        let default = Settings::default();
        let settings = snapshot.settings.as_ref().unwrap_or(&default);
        let text = snapshot.document.text();
        let inferred = hover_at(text, tree, &snapshot.file, offset, settings);
        // On a finding whose fix rewrites a QuerySet: its SQL before and after the fix.
        let findings = snapshot.diagnostics();
        let fixed = findings
            .iter()
            .filter(|f| f.range.contains(&offset))
            .find_map(|f| {
                Some((
                    f.range.clone(),
                    fix_sql(text, tree, &snapshot.file, f, settings)?,
                ))
            });
        let (range, shown) = match (inferred, fixed) {
            (Some((range, shown)), Some((_, fix))) => (range, format!("{shown}\n\n{fix}")),
            (Some(inferred), None) => inferred,
            (None, Some(fixed)) => fixed,
            (None, None) => return None,
        };
        Some(Hover {
            contents: HoverContents::Markup(MarkupContent {
                kind: MarkupKind::Markdown,
                value: format!("{shown}\n*django-orm-lsp*"),
            }),
            range: Some(convert::range(rope, &range, snapshot.encoding)),
        })
    })
    .await
    .map_err(|_| Error::internal_error())?;
    session.keep_parsed_tree(&looked_at);
    Ok(hover)
}
