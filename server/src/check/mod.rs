//! `django-orm-lsp check`: the CI front end. Finds the project's settings, walks the given
//! paths, runs the same analysis as the server on every Python file in parallel, and prints the
//! findings.

mod output;

use std::io::Write;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use rayon::prelude::*;
use ropey::Rope;

pub use output::OutputFormat;

use crate::analysis::{self, Diagnostic, FileContext};
use crate::settings::{pyproject, Options, ProjectSettings, Settings};
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
    /// The settings file named with `--config`; otherwise the nearest pyproject.toml.
    pub config: Option<PathBuf>,
    /// Settings from the command line; they override the file's, key by key.
    pub overrides: Options,
    /// Print the effective settings instead of linting.
    pub show_settings: bool,
}

/// The settings in force and the folder their paths are relative to: the one holding the
/// settings file, else the current directory.
struct Project {
    config: Option<PathBuf>,
    root: PathBuf,
    cwd: PathBuf,
    settings: ProjectSettings,
}

impl Project {
    fn load(cwd: PathBuf, options: &CheckOptions) -> (Self, Option<String>) {
        let config = match &options.config {
            Some(path) => Some(normalize(&cwd.join(path))),
            None => pyproject::discover(&cwd),
        };
        let (file_options, warning) = config
            .as_deref()
            .map_or_else(Default::default, pyproject::load);
        let root = config
            .as_deref()
            .and_then(Path::parent)
            .map_or_else(|| cwd.clone(), Path::to_path_buf);
        let settings = ProjectSettings::new(file_options.merged(options.overrides.clone()));
        let project = Self {
            config,
            root,
            cwd,
            settings,
        };
        (project, warning)
    }

    /// The settings for the file at `path` (as given or walked), `None` when it is excluded.
    fn settings_for(&self, path: &Path) -> Option<Settings> {
        self.settings.for_path(&self.root, &self.absolute(path))
    }

    fn is_excluded(&self, path: &Path) -> bool {
        self.absolute(path)
            .strip_prefix(&self.root)
            .is_ok_and(|relative| self.settings.is_excluded(relative))
    }

    fn absolute(&self, path: &Path) -> PathBuf {
        normalize(&self.cwd.join(path))
    }

    /// The model index for checking `paths`: the folders named, and the whole project for files
    /// named on their own (a view's models live elsewhere in the project).
    fn index(&self, paths: &[PathBuf]) -> Workspace {
        let mut roots: Vec<PathBuf> = paths
            .iter()
            .map(|p| {
                if p.is_dir() {
                    self.absolute(p)
                } else {
                    self.root.clone()
                }
            })
            .collect();
        roots.sort();
        roots.dedup();
        let files: Vec<PathBuf> = roots.iter().flat_map(|root| python_files(root)).collect();
        let templates: Vec<PathBuf> = roots.iter().flat_map(|root| template_files(root)).collect();
        Workspace::from_paths(std::slice::from_ref(&self.root), &files, |_, _| {})
            .with_templates(&files, &templates)
    }

    fn show(&self, out: &mut impl Write) -> std::io::Result<()> {
        match &self.config {
            Some(config) => writeln!(out, "# config: {}", config.display())?,
            None => writeln!(out, "# config: none found, defaults")?,
        }
        write!(out, "{}", self.settings)
    }
}

/// `path` with `.` and `..` resolved without touching the file system, so that it can be
/// compared with the project root.
fn normalize(path: &Path) -> PathBuf {
    let mut normal = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                normal.pop();
            }
            other => normal.push(other),
        }
    }
    normal
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

/// Exit codes: 0 nothing found (or `show_settings`), 1 findings, 2 a usage, I/O or
/// configuration error and no findings.
pub fn run(options: &CheckOptions) -> i32 {
    let cwd = match std::env::current_dir() {
        Ok(cwd) => cwd,
        Err(e) => {
            eprintln!("error: cannot read the current directory: {e}");
            return 2;
        }
    };
    let (project, warning) = Project::load(cwd, options);
    let mut errors: Vec<String> = warning.into_iter().collect();
    if options.show_settings {
        for error in &errors {
            eprintln!("error: {error}");
        }
        let _ = project.show(&mut std::io::stdout().lock());
        return 0;
    }
    // Models first: every file's findings may depend on models defined anywhere in the project,
    // excluded files included.
    let workspace = project.index(&options.paths);
    let project = Arc::new(project);
    let files = collect_files(&options.paths, &project, &mut errors);
    let results: Vec<Result<FileReport, String>> = files
        .par_iter()
        .map(|(path, settings)| {
            let file = workspace.context_for(&project.absolute(path));
            check_file(path, settings, &file)
        })
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

/// The Python files to lint and their settings. The project's `exclude` applies to files and
/// folders named on the command line too, as it does in the editor.
fn collect_files(
    paths: &[PathBuf],
    project: &Arc<Project>,
    errors: &mut Vec<String>,
) -> Vec<(PathBuf, Settings)> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_file() {
            files.extend(project.settings_for(path).map(|s| (path.clone(), s)));
            continue;
        }
        if !path.is_dir() {
            errors.push(format!("{}: no such file or directory", path.display()));
            continue;
        }
        if project.is_excluded(path) {
            continue;
        }
        let walked = project.clone();
        let walker = ignore::WalkBuilder::new(path)
            .require_git(false)
            .filter_entry(move |e| {
                let is_dir = e.file_type().is_some_and(|t| t.is_dir());
                !(is_dir
                    && (EXCLUDED_DIRS.contains(&e.file_name().to_str().unwrap_or(""))
                        || walked.is_excluded(e.path())))
            })
            .build();
        for entry in walker {
            match entry {
                Ok(e) if e.file_type().is_some_and(|t| t.is_file()) && is_python(e.path()) => {
                    files.extend(project.settings_for(e.path()).map(|s| (e.into_path(), s)))
                }
                Ok(_) => {}
                Err(err) => errors.push(err.to_string()),
            }
        }
    }
    files.sort_by(|a, b| a.0.cmp(&b.0));
    files.dedup_by(|a, b| a.0 == b.0);
    files
}

/// Every Python file under `root`, respecting `.gitignore` and skipping environments and caches
/// (but not the project's `exclude`: excluded files can still define models others use).
pub(crate) fn python_files(root: &Path) -> Vec<PathBuf> {
    files_where(root, is_python)
}

/// Every file under `root` that may be a Django template (by its extension; the workspace
/// decides by its folder), walked as `python_files` walks.
pub(crate) fn template_files(root: &Path) -> Vec<PathBuf> {
    files_where(root, crate::workspace::has_template_extension)
}

fn files_where(root: &Path, keep: fn(&Path) -> bool) -> Vec<PathBuf> {
    let walker = ignore::WalkBuilder::new(root)
        .require_git(false)
        .filter_entry(|e| {
            let is_dir = e.file_type().is_some_and(|t| t.is_dir());
            !(is_dir && EXCLUDED_DIRS.contains(&e.file_name().to_str().unwrap_or("")))
        })
        .build();
    let mut files: Vec<PathBuf> = walker
        .flatten()
        .filter(|e| e.file_type().is_some_and(|t| t.is_file()) && keep(e.path()))
        .map(|e| e.into_path())
        .collect();
    files.sort();
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
