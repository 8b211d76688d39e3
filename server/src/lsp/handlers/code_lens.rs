//! Code lenses: `1 + 2N queries` above each loop over a QuerySet (and function) whose queries
//! the analysis counts (`analysis::query_counts`). Clicking one runs `SHOW_QUERIES`
//! (`execute_command.rs`) with the document and the lens's position.

use std::sync::Arc;

use tower_lsp_server::jsonrpc::{Error, Result};
use tower_lsp_server::ls_types::*;

use super::execute_command::SHOW_QUERIES;
use crate::analysis::query_counts::query_counts;
use crate::lsp::convert;
use crate::lsp::session::Session;

pub async fn code_lens(
    session: &Arc<Session>,
    params: CodeLensParams,
) -> Result<Option<Vec<CodeLens>>> {
    let Some(snapshot) = session.snapshot(&params.text_document.uri) else {
        return Ok(None);
    };
    let looked_at = snapshot.clone();
    let lenses = tokio::task::spawn_blocking(move || {
        let tree = snapshot.document.tree()?;
        let rope = &snapshot.document.rope;
        let counts = query_counts(snapshot.document.text(), tree, &snapshot.file);
        let lenses = counts
            .into_iter()
            .map(|count| {
                let start = count.range.start;
                let range = convert::range(rope, &(start..start), snapshot.encoding);
                CodeLens {
                    range,
                    // Clicked, it asks the server to show the queries it counts.
                    command: Some(Command {
                        title: count.title(),
                        command: SHOW_QUERIES.to_string(),
                        arguments: Some(vec![
                            serde_json::json!(snapshot.uri.as_str()),
                            serde_json::json!(range.start),
                        ]),
                    }),
                    data: None,
                }
            })
            .collect();
        Some(lenses)
    })
    .await
    .map_err(|_| Error::internal_error())?;
    session.keep_parsed_tree(&looked_at);
    Ok(lenses)
}
