//! django-orm-lsp: finds Django ORM performance anti-patterns and rewrites them.
//!
//! Three layers, one direction: `lsp` (the only module that knows LSP types) → `store`
//! (documents: rope + tree, incremental edits, position encodings) → `analysis` (plain data in
//! byte offsets). `check` is the CLI front end over the same `analysis`.

pub mod analysis;
pub mod check;
pub mod files;
pub mod lsp;
pub mod settings;
pub mod store;
pub mod workspace;
