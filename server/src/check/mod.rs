//! `django-orm-lsp check`: the CI front end. Walks the given paths, runs the same analysis as
//! the server on every Python file in parallel, and prints the findings.

mod output;

use std::io::Write;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use ropey::Rope;

pub use output::OutputFormat;

use crate::analysis::{self, Diagnostic, FileContext};
use crate::settings::Settings;
use crate::store::{self, position_at, PositionEncoding, MAX_PARSED_BYTES};
use crate::workspace::Workspace;

/// Folders never worth linting (virtual environments, caches, build output), matched by name.
const EXCLUDED_DIRS: &[&str] = &[
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

pub struct CheckOptions {
    pub paths: Vec<PathBuf>,
    pub format: OutputFormat,
    pub settings: Settings,
}

/// A finding with 1-based lines and columns counted in Unicode scalar values.
pub struct Located {
    pub line: usize,
    pub column: usize,
    pub end_line: usize,
    pub end_column: usize,
}

pub struct FileReport {
    pub path: PathBuf,
    pub rope: Rope,
    pub diagnostics: Vec<Diagnostic>,
}

impl FileReport {
    pub fn locate(&self, range: &std::ops::Range<usize>) -> Located {
        let start = position_at(&self.rope, range.start, PositionEncoding::Utf32);
        let end = position_at(&self.rope, range.end, PositionEncoding::Utf32);
        Located {
            line: start.line as usize + 1,
            column: start.character as usize + 1,
            end_line: end.line as usize + 1,
            end_column: end.character as usize + 1,
        }
    }
}

/// Exit codes: 0 nothing found, 1 findings, 2 a usage or I/O error and no findings.
pub fn run(options: &CheckOptions) -> i32 {
    let mut errors = Vec::new();
    let files = collect_files(&options.paths, &mut errors);
    // Models first: every file's findings may depend on models defined anywhere.
    let root = std::env::current_dir().unwrap_or_default();
    let workspace = Workspace::from_paths(&root, &files, |_, _| {});
    let results: Vec<Result<FileReport, String>> = files
        .par_iter()
        .map(|path| check_file(path, &options.settings, &workspace.context_for(path)))
        .collect();
    let mut reports = Vec::new();
    for result in results {
        match result {
            Ok(report) if !report.diagnostics.is_empty() => reports.push(report),
            Ok(_) => {}
            Err(error) => errors.push(error),
        }
    }
    let stderr = std::io::stderr();
    let mut stderr = stderr.lock();
    for error in &errors {
        let _ = writeln!(stderr, "error: {error}");
    }
    let stdout = std::io::stdout();
    let mut stdout = stdout.lock();
    let _ = output::write(&mut stdout, options.format, &reports, files.len());
    let found = reports.iter().any(|r| !r.diagnostics.is_empty());
    if found {
        1
    } else if errors.is_empty() {
        0
    } else {
        2
    }
}

pub(crate) fn collect_files(paths: &[PathBuf], errors: &mut Vec<String>) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_file() {
            files.push(path.clone());
            continue;
        }
        if !path.is_dir() {
            errors.push(format!("{}: no such file or directory", path.display()));
            continue;
        }
        let walker = ignore::WalkBuilder::new(path)
            .require_git(false)
            .filter_entry(|e| {
                !(e.file_type().is_some_and(|t| t.is_dir())
                    && EXCLUDED_DIRS.contains(&e.file_name().to_str().unwrap_or("")))
            })
            .build();
        for entry in walker {
            match entry {
                Ok(e) if e.file_type().is_some_and(|t| t.is_file()) && is_python(e.path()) => {
                    files.push(e.into_path())
                }
                Ok(_) => {}
                Err(err) => errors.push(err.to_string()),
            }
        }
    }
    files.sort();
    files.dedup();
    files
}

fn is_python(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("py" | "pyi")
    )
}

/// Reads, parses and lints one file; `Err` is the one-line reason it was skipped.
pub fn check_file(
    path: &Path,
    settings: &Settings,
    file: &FileContext,
) -> Result<FileReport, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if bytes.len() > MAX_PARSED_BYTES {
        return Err(format!(
            "{}: skipped, larger than {} MiB",
            path.display(),
            MAX_PARSED_BYTES >> 20
        ));
    }
    if bytes.contains(&0) {
        return Err(format!("{}: skipped, binary file", path.display()));
    }
    let source = String::from_utf8(bytes)
        .map_err(|_| format!("{}: skipped, not valid UTF-8", path.display()))?;
    let tree = store::parse_python(&source)
        .ok_or_else(|| format!("{}: could not be parsed", path.display()))?;
    let diagnostics = analysis::lint(&source, &tree, settings, file);
    let rope = if diagnostics.is_empty() {
        Rope::new()
    } else {
        Rope::from_str(&source)
    };
    Ok(FileReport {
        path: path.to_path_buf(),
        rope,
        diagnostics,
    })
}
