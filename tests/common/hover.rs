//! Hover as the SQL tests read it.

use django_orm_lsp::analysis::hover::hover_at;
use django_orm_lsp::analysis::hover::sql::Dialect;
use django_orm_lsp::analysis::FileContext;
use django_orm_lsp::settings::Settings;
use tree_sitter::Tree;

/// The default settings, with `dialect` for the SQL shown.
pub fn in_dialect(dialect: Dialect) -> Settings {
    Settings {
        sql_dialect: dialect,
        ..Settings::default()
    }
}

/// What hover shows at `offset` of `source`, its SQL as `dialect` prints it; empty where
/// there is no hover.
pub fn shown_at(
    source: &str,
    tree: &Tree,
    file: &FileContext,
    offset: usize,
    dialect: Dialect,
) -> String {
    hover_at(source, tree, file, offset, &in_dialect(dialect))
        .map_or_else(String::new, |(_, shown)| shown)
}
