//! The project's files on disk as both `check` and the workspace walk them: which folders are
//! never worth reading, which files are Python or may be templates. Below both, so that
//! neither depends on the other for it.

use std::path::{Path, PathBuf};

/// Folders never worth linting (virtual environments, caches, build output), matched by name.
pub const EXCLUDED_DIRS: &[&str] = &[
    ".git",
    ".hg",
    ".svn",
    ".venv",
    "venv",
    ".tox",
    ".nox",
    ".mypy_cache",
    ".pytest_cache",
    ".ruff_cache",
    "__pycache__",
    "__pypackages__",
    "node_modules",
    "site-packages",
    "build",
    "dist",
    "_build",
    "buck-out",
];

/// Every Python file under `root`, respecting `.gitignore` and skipping environments and caches
/// (but not the project's `exclude`: excluded files can still define models others use).
pub fn python_files(root: &Path) -> Vec<PathBuf> {
    source_files(root).python
}

/// What the model index reads under a folder, found in one walk.
pub struct SourceFiles {
    pub python: Vec<PathBuf>,
    /// Files that may be Django templates (by their extension; the workspace decides by their
    /// folder).
    pub templates: Vec<PathBuf>,
}

/// The Python files and possible templates under `root`, walked as `python_files` says.
pub fn source_files(root: &Path) -> SourceFiles {
    let walker = ignore::WalkBuilder::new(root)
        .require_git(false)
        .filter_entry(|e| {
            let is_dir = e.file_type().is_some_and(|t| t.is_dir());
            !(is_dir && EXCLUDED_DIRS.contains(&e.file_name().to_str().unwrap_or("")))
        })
        .build();
    let mut found = SourceFiles {
        python: Vec::new(),
        templates: Vec::new(),
    };
    for entry in walker.flatten() {
        if !entry.file_type().is_some_and(|t| t.is_file()) {
            continue;
        }
        if is_python(entry.path()) {
            found.python.push(entry.into_path());
        } else if has_template_extension(entry.path()) {
            found.templates.push(entry.into_path());
        }
    }
    found.python.sort();
    found.templates.sort();
    found
}

pub fn is_python(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("py" | "pyi")
    )
}

/// Files that may be Django templates, by their extension (the workspace decides by their
/// folder).
pub fn has_template_extension(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("html" | "htm" | "txt" | "xml" | "djhtml")
    )
}
