//! Helpers shared by the end-to-end tests; each test binary uses the parts it needs.
#![allow(dead_code)]

pub mod django_env;
pub mod fixes;
pub mod lsp_client;
pub mod synthetic;
pub mod temp;

/// Every `.py` file below `dir`, sorted.
pub fn python_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(python_files(&path));
        } else if path.extension().is_some_and(|e| e == "py") {
            out.push(path);
        }
    }
    out.sort();
    out
}
