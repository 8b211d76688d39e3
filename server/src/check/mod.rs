//! `django-orm-lsp check`: the CI front end. Finds the project's settings, walks the given
//! paths, runs the same analysis as the server on every Python file in parallel, and prints the
//! findings.

pub(crate) mod cache;
mod output;

use std::io::Write;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use rayon::prelude::*;
use ropey::Rope;

pub use output::OutputFormat;

use crate::analysis::{self, fix_all_with, Diagnostic, FileContext, FixMode};
use crate::files::{is_python, source_files, SourceFiles, EXCLUDED_DIRS};
use crate::settings::{pyproject, Options, ProjectSettings, Settings};
use crate::store::{self, position_at, PositionEncoding, MAX_PARSED_BYTES};
use crate::workspace::Workspace;

pub struct CheckOptions {
    pub paths: Vec<PathBuf>,
    pub format: OutputFormat,
    /// The settings file named with `--config`; otherwise the nearest pyproject.toml.
    pub config: Option<PathBuf>,
    /// Settings from the command line; they override the file's, key by key.
    pub overrides: Options,
    /// Print the effective settings instead of linting.
    pub show_settings: bool,
    /// Apply fixes (`--fix`, `--unsafe-fixes`): in place, or only shown with `diff`.
    pub fix: Option<FixMode>,
    /// Print what `fix` would change as a unified diff instead of writing it.
    pub diff: bool,
    /// Print counts per rule instead of the findings.
    pub statistics: bool,
    /// Write `# noqa: CODE` on the line of every finding instead of reporting it.
    pub add_noqa: bool,
    /// Neither read nor write the result cache.
    pub no_cache: bool,
}

/// The settings in force and the folder their paths are relative to: the one holding the
/// settings file, else the current directory.
struct Project {
    config: Option<PathBuf>,
    root: PathBuf,
    cwd: PathBuf,
    settings: ProjectSettings,
    index_inputs: std::sync::OnceLock<IndexInputs>,
}

/// What a run's model index reads: the projects the named paths belong to, whole.
struct IndexInputs {
    /// The project roots, deepest first (a file's module name is its path relative to the
    /// first that holds it).
    roots: Vec<PathBuf>,
    files: SourceFiles,
}

/// Files that mark a project's root, where its module names start.
const PROJECT_MARKERS: &[&str] = &[pyproject::FILE_NAME, "manage.py"];

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
            index_inputs: std::sync::OnceLock::new(),
        };
        (project, warning)
    }

    /// The settings for the file at `path` (as given or walked), `None` when it is excluded.
    fn settings_for(&self, path: &Path) -> Option<Settings> {
        self.settings.for_path(&self.root, &self.absolute(path))
    }

    /// Whether the file at `path` is not checked only for being test code.
    fn is_left_out_test_code(&self, path: &Path) -> bool {
        self.settings
            .is_left_out_test_code(&self.root, &self.absolute(path))
    }

    fn is_excluded(&self, path: &Path) -> bool {
        self.absolute(path)
            .strip_prefix(&self.root)
            .is_ok_and(|relative| self.settings.is_excluded(relative))
    }

    fn absolute(&self, path: &Path) -> PathBuf {
        normalize(&self.cwd.join(path))
    }

    /// The model index for checking `paths`: the whole project of each (a view's models live
    /// in other apps), whatever folders or files are named.
    fn index(&self, paths: &[PathBuf]) -> Workspace {
        let inputs = self.index_inputs(paths);
        Workspace::from_paths(&inputs.roots, &inputs.files.python, |_, _| {})
            .with_templates(&inputs.files.python, &inputs.files.templates)
    }

    /// What the model index for `paths` reads, walked once per run (`paths` are the run's own,
    /// the same at every call).
    fn index_inputs(&self, paths: &[PathBuf]) -> &IndexInputs {
        self.index_inputs
            .get_or_init(|| self.walk_index_inputs(paths))
    }

    fn walk_index_inputs(&self, paths: &[PathBuf]) -> IndexInputs {
        let mut roots: Vec<PathBuf> = paths.iter().map(|p| self.project_root(p)).collect();
        roots.sort();
        roots.dedup();
        roots.sort_by_key(|root| std::cmp::Reverse(root.components().count()));
        let mut files = SourceFiles {
            python: Vec::new(),
            templates: Vec::new(),
        };
        // A root inside another is walked with it: walk the outermost ones only.
        for root in roots
            .iter()
            .filter(|root| !roots.iter().any(|r| r != *root && root.starts_with(r)))
        {
            let found = source_files(root);
            files.python.extend(found.python);
            files.templates.extend(found.templates);
        }
        files.python.sort();
        files.templates.sort();
        IndexInputs { roots, files }
    }

    /// The root of the project `path` belongs to: the nearest folder at or above it holding a
    /// pyproject.toml or a manage.py; else the settings' root when `path` is below it, else
    /// the folder named (or the named file's folder).
    fn project_root(&self, path: &Path) -> PathBuf {
        let absolute = self.absolute(path);
        let folder = if absolute.is_dir() {
            absolute.as_path()
        } else {
            absolute.parent().unwrap_or(&absolute)
        };
        let marked = folder
            .ancestors()
            .find(|f| PROJECT_MARKERS.iter().any(|m| f.join(m).is_file()));
        match marked {
            Some(root) => root.to_path_buf(),
            None if absolute.starts_with(&self.root) => self.root.clone(),
            None => folder.to_path_buf(),
        }
    }

    /// The cache's first key: the text the index reads, and this binary's version.
    fn inputs_key(&self, inputs: &IndexInputs) -> u64 {
        cache::with_version(Workspace::inputs_fingerprint(
            &inputs.roots,
            &inputs.files.python,
            &inputs.files.templates,
        ))
    }

    /// The result cache for this run, when findings are only reported (fixing writes files).
    fn cache(&self, options: &CheckOptions) -> Option<cache::Cache> {
        if options.no_cache || options.fix.is_some() || options.diff || options.add_noqa {
            return None;
        }
        let key = self.inputs_key(self.index_inputs(&options.paths));
        Some(cache::Cache::load(&self.root, key))
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
    /// The findings (after fixing, the ones that remain).
    pub diagnostics: Vec<Diagnostic>,
    /// What fixing changed, when it changed something.
    pub change: Option<Change>,
}

/// A file's text before and after its fixes.
pub struct Change {
    pub before: String,
    pub after: String,
    /// How many findings' fixes were applied.
    pub applied: usize,
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
    let cache = project.cache(options);
    let project = Arc::new(project);
    let (files, test_files_left_out) = collect_files(&options.paths, &project, &mut errors);
    // Models first: every file's findings may depend on models defined anywhere in the project,
    // excluded files included. Built here, never inside a parallel task: a task waiting for it
    // could pick up another file's task that needs it too.
    let workspace = std::sync::OnceLock::new();
    let index = || {
        workspace.get_or_init(|| {
            // Some file is linted: compile the rules' query while the index is built.
            std::thread::spawn(crate::analysis::prepare);
            project.index(&options.paths)
        })
    };
    if options.add_noqa {
        return add_noqa(&files, &project, index(), &errors);
    }
    // The cache answers first (`None`: lint the file); the index is built only when some file
    // is linted or the cache holds only for an unchanged index.
    let mut answers: Vec<Option<Result<FileReport, String>>> = match (&cache, options.fix) {
        (Some(cache), None) => files
            .par_iter()
            .map(|(path, settings)| cached_report(path, settings, cache, &project))
            .collect(),
        _ => files.iter().map(|_| None).collect(),
    };
    let from_cache = |a: &Option<Result<FileReport, String>>| matches!(a, Some(Ok(_)));
    if let Some(cache) = &cache {
        let fingerprint = || cache::with_version(index().index().fingerprint());
        if answers.iter().any(from_cache) && !cache.holds(fingerprint) {
            answers
                .iter_mut()
                .filter(|a| from_cache(a))
                .for_each(|a| *a = None);
        }
    }
    if answers.iter().any(Option::is_none) {
        index();
    }
    let write = !options.diff;
    let results: Vec<Result<FileReport, String>> = files
        .par_iter()
        .zip(answers)
        .map(|((path, settings), answer)| {
            if let Some(answer) = answer {
                return answer;
            }
            let workspace = workspace.get().expect("built above for every file to lint");
            let context = workspace.context_for(&project.absolute(path));
            match (options.fix, &cache) {
                (Some(mode), _) => fix_file(path, settings, &context, mode, write),
                (None, Some(cache)) => lint_into_cache(path, settings, &context, cache, &project),
                (None, None) => check_file(path, settings, &context),
            }
        })
        .collect();
    if let Some(cache) = cache {
        let built = workspace.get();
        // The findings of an index built from files that changed after the key was taken must
        // not be filed under that key (the index read the same list of files).
        let key = match built {
            Some(_) => {
                let now = project.inputs_key(project.index_inputs(&options.paths));
                (now == cache.key()).then_some(now)
            }
            None => Some(cache.key()),
        };
        cache.save(
            key,
            built.map(|w| cache::with_version(w.index().fingerprint())),
        );
    }
    let mut reports = Vec::new();
    for result in results {
        match result {
            Ok(report) if !report.diagnostics.is_empty() || report.change.is_some() => {
                reports.push(report)
            }
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
    let changed: Vec<&Change> = reports.iter().filter_map(|r| r.change.as_ref()).collect();
    let applied: usize = changed.iter().map(|c| c.applied).sum();
    if options.diff {
        for report in &reports {
            if let Some(change) = &report.change {
                let _ = output::write_diff(&mut stdout, &report.path, change);
            }
        }
        let _ = writeln!(
            stderr,
            "{}",
            output::fixed_summary("Would fix", applied, changed.len())
        );
        return if !changed.is_empty() {
            1
        } else if errors.is_empty() {
            0
        } else {
            2
        };
    }
    let findings: Vec<&FileReport> = reports
        .iter()
        .filter(|r| !r.diagnostics.is_empty())
        .collect();
    let left_out = output::LeftOut {
        test_files: test_files_left_out,
    };
    let _ = if options.statistics {
        output::write_statistics(
            &mut stdout,
            options.format,
            &findings,
            options.fix,
            &left_out,
        )
    } else {
        output::write(
            &mut stdout,
            options.format,
            &findings,
            files.len(),
            &left_out,
        )
    };
    // Machine-readable formats keep stdout to themselves; what they left out goes to stderr.
    if options.format != OutputFormat::Text {
        if let Some(note) = left_out.note() {
            let _ = writeln!(stderr, "note: {note}");
        }
    }
    if options.fix.is_some() {
        let summary = output::fixed_summary("Fixed", applied, changed.len());
        // Machine-readable formats keep stdout to themselves.
        let _ = if options.format == OutputFormat::Text {
            writeln!(stdout, "{summary}")
        } else {
            writeln!(stderr, "{summary}")
        };
    }
    if !findings.is_empty() {
        1
    } else if errors.is_empty() {
        0
    } else {
        2
    }
}

/// `--add-noqa`: a baseline. Every finding's line gets `# noqa: CODE` (added to a `# noqa: ...`
/// list already there), so that from now on only new findings are reported. Exit 0, or 1 when
/// some line could not take a comment (its findings remain), or 2 on errors alone.
fn add_noqa(
    files: &[(PathBuf, Settings)],
    project: &Project,
    workspace: &Workspace,
    errors: &[String],
) -> i32 {
    let results: Vec<Result<NoqaReport, String>> = files
        .par_iter()
        .map(|(path, settings)| {
            let file = workspace.context_for(&project.absolute(path));
            add_noqa_file(path, settings, &file)
        })
        .collect();
    let stderr = std::io::stderr();
    let mut stderr = stderr.lock();
    for error in errors {
        let _ = writeln!(stderr, "error: {error}");
    }
    let (mut added, mut changed, mut skipped, mut failed) = (0, 0, 0, !errors.is_empty());
    for result in results {
        match result {
            Ok(report) => {
                added += report.added;
                changed += usize::from(report.added > 0);
                for (line, codes) in &report.skipped {
                    skipped += 1;
                    let _ = writeln!(
                        stderr,
                        "warning: {}:{line}: cannot add `# noqa: {codes}`: the line continues \
                         (a backslash, or a string that goes on to the next line); \
                         suppress it by hand",
                        report.path.display()
                    );
                }
            }
            Err(error) => {
                failed = true;
                let _ = writeln!(stderr, "error: {error}");
            }
        }
    }
    println!(
        "Added {added} noqa code{} to {changed} file{}.",
        if added == 1 { "" } else { "s" },
        if changed == 1 { "" } else { "s" }
    );
    if skipped > 0 {
        1
    } else if failed && added == 0 {
        2
    } else {
        0
    }
}

struct NoqaReport {
    path: PathBuf,
    added: usize,
    /// Lines (1-based) that could not take a comment, with the codes they needed.
    skipped: Vec<(usize, String)>,
}

fn add_noqa_file(
    path: &Path,
    settings: &Settings,
    file: &FileContext,
) -> Result<NoqaReport, String> {
    let source = read_source(path)?;
    let tree = store::parse_python(&source)
        .ok_or_else(|| format!("{}: could not be parsed", path.display()))?;
    // ORM900 is left out: a baseline that suppresses its own stale suppressions hides them.
    let diagnostics: Vec<Diagnostic> = analysis::lint(&source, &tree, settings, file)
        .into_iter()
        .filter(|d| d.code() != analysis::rules::orm900_unused_noqa::RULE.meta.code)
        .collect();
    // The codes reported on each line, keyed by where the line starts.
    let mut lines: Vec<(usize, Vec<&'static str>)> = Vec::new();
    for d in &diagnostics {
        let start = source[..d.range.start]
            .rfind(['\n', '\r'])
            .map_or(0, |i| i + 1);
        match lines.iter_mut().find(|(s, _)| *s == start) {
            Some((_, codes)) if !codes.contains(&d.code()) => codes.push(d.code()),
            Some(_) => {}
            None => lines.push((start, vec![d.code()])),
        }
    }
    let mut report = NoqaReport {
        path: path.to_path_buf(),
        added: 0,
        skipped: Vec::new(),
    };
    let mut edits = Vec::new();
    for (start, mut codes) in lines {
        codes.sort_unstable();
        let list = codes.join(", ");
        match analysis::noqa::suppression_edit(&source, &tree, start, &list) {
            Some(edit) => {
                edits.push(edit);
                report.added += codes.len();
            }
            None => {
                let line = source[..start].matches('\n').count() + 1;
                report.skipped.push((line, list));
            }
        }
    }
    if edits.is_empty() {
        return Ok(report);
    }
    let unchanged = |report: NoqaReport| {
        Err(format!(
            "{}: left unchanged, the noqa comments would not parse as Python ({} codes)",
            report.path.display(),
            report.added
        ))
    };
    let Some(text) = analysis::apply_edits(&source, &edits) else {
        return unchanged(report);
    };
    let errors = |t: &str| {
        store::parse_python(t).map_or(usize::MAX, |t| analysis::count_errors(t.root_node()))
    };
    if errors(&text) > errors(&source) {
        return unchanged(report);
    }
    std::fs::write(path, text)
        .map_err(|e| format!("{}: cannot write the noqa comments: {e}", path.display()))?;
    Ok(report)
}

/// The Python files to lint and their settings, and how many test files were left out (they
/// are counted, not linted: a default run does no work on code whose findings it hides). The
/// project's `exclude` and `include-tests` apply to files and folders named on the command line
/// too, as they do in the editor.
fn collect_files(
    paths: &[PathBuf],
    project: &Arc<Project>,
    errors: &mut Vec<String>,
) -> (Vec<(PathBuf, Settings)>, usize) {
    let mut files = Vec::new();
    let mut test_files = Vec::new();
    let mut take = |path: PathBuf| match project.settings_for(&path) {
        Some(settings) => files.push((path, settings)),
        None if project.is_left_out_test_code(&path) => test_files.push(project.absolute(&path)),
        None => {}
    };
    for path in paths {
        if path.is_file() {
            take(path.clone());
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
                    take(e.into_path())
                }
                Ok(_) => {}
                Err(err) => errors.push(err.to_string()),
            }
        }
    }
    files.sort_by(|a, b| a.0.cmp(&b.0));
    files.dedup_by(|a, b| a.0 == b.0);
    test_files.sort();
    test_files.dedup();
    (files, test_files.len())
}

/// Reads, parses and lints one file; `Err` is the one-line reason it was skipped.
pub fn check_file(
    path: &Path,
    settings: &Settings,
    file: &FileContext,
) -> Result<FileReport, String> {
    let source = read_source(path)?;
    lint_source(path, source, settings, file, None)
}

/// The report of `path` from the cache when its text and settings are the cached ones (whether
/// the cache holds for this run's model index is `Cache::holds`'s to say); `None` when the file
/// must be linted, `Some(Err)` when it cannot be read.
fn cached_report(
    path: &Path,
    settings: &Settings,
    cache: &cache::Cache,
    project: &Project,
) -> Option<Result<FileReport, String>> {
    let source = match read_source(path) {
        Ok(source) => source,
        Err(error) => return Some(Err(error)),
    };
    let text = cache::text_hash(&source);
    let diagnostics = cache.get(&project.absolute(path), text, settings.fingerprint())?;
    let rope = if diagnostics.is_empty() {
        Rope::new()
    } else {
        Rope::from_str(&source)
    };
    Some(Ok(FileReport {
        path: path.to_path_buf(),
        rope,
        diagnostics,
        change: None,
    }))
}

/// `check_file`, with the findings kept in the cache for the next run.
fn lint_into_cache(
    path: &Path,
    settings: &Settings,
    file: &FileContext,
    cache: &cache::Cache,
    project: &Project,
) -> Result<FileReport, String> {
    let source = read_source(path)?;
    let text = cache::text_hash(&source);
    let (report, read) = crate::analysis::program::recording_dependencies(|| {
        lint_source(path, source, settings, file, None)
    });
    let report = report?;
    cache.put(
        &project.absolute(path),
        text,
        settings.fingerprint(),
        &report.diagnostics,
        read,
    );
    Ok(report)
}

/// Reads one file as UTF-8 text; `Err` is the one-line reason it was skipped.
fn read_source(path: &Path) -> Result<String, String> {
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
    String::from_utf8(bytes).map_err(|_| format!("{}: skipped, not valid UTF-8", path.display()))
}

/// Lints `source`, after applying the fixes `fix` allows when it is given.
fn lint_source(
    path: &Path,
    source: String,
    settings: &Settings,
    file: &FileContext,
    fix: Option<FixMode>,
) -> Result<FileReport, String> {
    let fixed = fix.and_then(|mode| fix_all_with(&source, settings, file, mode));
    let (text, change) = match fixed {
        Some(fixed) => (
            fixed.text.clone(),
            Some(Change {
                before: source,
                after: fixed.text,
                applied: fixed.applied,
            }),
        ),
        None => (source, None),
    };
    let tree = store::parse_python(&text)
        .ok_or_else(|| format!("{}: could not be parsed", path.display()))?;
    let diagnostics = analysis::lint(&text, &tree, settings, file);
    let rope = if diagnostics.is_empty() {
        Rope::new()
    } else {
        Rope::from_str(&text)
    };
    Ok(FileReport {
        path: path.to_path_buf(),
        rope,
        diagnostics,
        change,
    })
}

/// Fixes one file in place (or not, for `--diff`) and lints what remains.
fn fix_file(
    path: &Path,
    settings: &Settings,
    file: &FileContext,
    mode: FixMode,
    write: bool,
) -> Result<FileReport, String> {
    let source = read_source(path)?;
    let report = lint_source(path, source, settings, file, Some(mode))?;
    if let (true, Some(change)) = (write, &report.change) {
        std::fs::write(path, &change.after)
            .map_err(|e| format!("{}: cannot write the fixes: {e}", path.display()))?;
    }
    Ok(report)
}
