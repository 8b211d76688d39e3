//! The workspace's model index, kept from the files on disk and the documents being edited.
//! Used by the server (scanned after `initialize`, updated as files change) and by `check`.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rayon::prelude::*;
use rustc_hash::FxHashMap;
use tree_sitter::Tree;

use crate::analysis::index::{extract, mentions_prefetch, module_name, FileFacts, ModelIndex};
use crate::analysis::program::{DiskState, Mentions, ModuleWords, Program};
use crate::analysis::templates::{self, TemplateFacts, TemplateIndex};
use crate::analysis::FileContext;
use crate::files::has_template_extension;
use crate::store::{parse_python, MAX_PARSED_BYTES};

/// Words without which a file cannot define a model, manager, QuerySet, signal receiver, REST
/// framework serializer, base of Django's list and detail views or the user-model setting, or
/// re-export one (those live under a `models` path). Files without any (and without a prefetch) are not parsed for the index.
const MODEL_EVIDENCE: &[&str] = &[
    "Model",
    "Manager",
    "QuerySet",
    "receiver",
    ".connect(",
    "AUTH_USER_MODEL",
    "Serializer",
    "AppConfig",
    "inclusion_tag",
    // A project's own bases of Django's generic views: what ORM410 follows to the template.
    "ListView",
    "DetailView",
];

pub struct Workspace {
    /// The workspace folders; a file's module name is its path relative to the first one that
    /// holds it.
    roots: Vec<PathBuf>,
    /// Facts of the files that can matter to the index, by path relative to their root.
    files: FxHashMap<PathBuf, Arc<FileFacts>>,
    /// Django templates by path as found (ORM410), each with its name.
    templates: FxHashMap<PathBuf, (String, Arc<TemplateFacts>)>,
    /// Template folders named in the settings' `DIRS`, besides every `templates` folder.
    template_dirs: Vec<String>,
    /// Per settings module, the `ENGINE` of `DATABASES["default"]` each assignment of
    /// `DATABASES` in it names (`None`: one not written as a literal).
    database_engines: FxHashMap<PathBuf, Vec<Option<String>>>,
    /// The Django release installed in the project's virtualenv (see `installed_django`).
    django_version: Option<(u32, u32)>,
    index: Arc<ModelIndex>,
    /// Every Python module's file, by dotted name: where calls into other modules are read.
    module_paths: Arc<FxHashMap<String, PathBuf>>,
    /// Summaries of those calls, for the current index.
    program: Arc<Program>,
    /// The files as they are on disk (who mentions which word).
    disk: Arc<DiskState>,
    /// Whether every file under the roots was read: only then does the index know what the
    /// program prefetches.
    scanned: bool,
}

impl Default for Workspace {
    fn default() -> Self {
        let index = ModelIndex::builtin();
        Self {
            roots: Vec::new(),
            files: FxHashMap::default(),
            templates: FxHashMap::default(),
            template_dirs: Vec::new(),
            database_engines: FxHashMap::default(),
            django_version: None,
            program: Arc::new(Program::standalone(index.clone())),
            index,
            module_paths: Arc::default(),
            disk: Arc::default(),
            scanned: false,
        }
    }
}

/// A file below a `templates` folder with a template's extension (what the editor's watcher
/// and the language-id fallback go by; `Workspace::template_name` also knows `DIRS`).
pub fn is_template(path: &Path) -> bool {
    has_template_extension(path) && path.components().any(|c| c.as_os_str() == "templates")
}

/// `settings.py`, or a module of a `settings` package (`settings/base.py`).
fn is_settings(path: &Path) -> bool {
    path.file_name().is_some_and(|n| n == "settings.py")
        || path
            .parent()
            .and_then(Path::file_name)
            .is_some_and(|n| n == "settings")
}

/// The `ENGINE` each assignment of `DATABASES` in a settings module names.
fn engines_named(source: &str, tree: &Tree) -> Vec<Option<String>> {
    crate::analysis::hover::sql::database_engines(source, tree.root_node())
}

/// The (major, minor) release of Django installed in the project's virtualenv, one in a root
/// (`.venv`, `venv`, `env`), read from `django/__init__.py`'s `VERSION = (5, 2, ...)`. Not
/// `VIRTUAL_ENV`: what the server shows must not depend on the shell that started it.
fn installed_django(roots: &[PathBuf]) -> Option<(u32, u32)> {
    let mut venvs = roots
        .iter()
        .flat_map(|root| [".venv", "venv", "env"].map(|name| root.join(name)));
    venvs.find_map(|venv| {
        // `lib/python3.X/site-packages` on Unix, `Lib/site-packages` on Windows.
        let mut site_packages = vec![venv.join("Lib").join("site-packages")];
        if let Ok(entries) = std::fs::read_dir(venv.join("lib")) {
            site_packages.extend(entries.flatten().map(|e| e.path().join("site-packages")));
        }
        site_packages.iter().find_map(|dir| {
            let init = std::fs::read_to_string(dir.join("django").join("__init__.py")).ok()?;
            django_version(&init)
        })
    })
}

/// `VERSION = (5, 2, 0, "final", 0)` in Django's `__init__.py`.
fn django_version(init: &str) -> Option<(u32, u32)> {
    let line = init.lines().find_map(|l| l.strip_prefix("VERSION = ("))?;
    let mut parts = line.split(',').map(|p| p.trim().parse::<u32>());
    Some((parts.next()?.ok()?, parts.next()?.ok()?))
}

/// A file the index holds: its path relative to its root, and its facts (`None`: a file that
/// cannot matter to the index).
type IndexedFile = Option<(PathBuf, Arc<FileFacts>)>;

impl Workspace {
    /// A workspace whose files are not read yet: module names are known, models are not.
    pub fn unscanned(roots: Vec<PathBuf>) -> Self {
        Self {
            roots,
            ..Self::default()
        }
    }

    /// Indexes every Python file under `root` (respecting `.gitignore`), in parallel;
    /// `progress(done, total)` is called as files are read.
    pub fn scan(root: &Path, progress: impl Fn(usize, usize) + Sync) -> Self {
        Self::scan_roots(&[root.to_path_buf()], progress)
    }

    /// Indexes every Python file under each of `roots`.
    pub fn scan_roots(roots: &[PathBuf], progress: impl Fn(usize, usize) + Sync) -> Self {
        let (mut paths, mut templates) = (Vec::new(), Vec::new());
        for root in roots {
            let found = crate::files::source_files(root);
            paths.extend(found.python);
            templates.extend(found.templates);
        }
        Self::from_paths(roots, &paths, progress).with_templates(&paths, &templates)
    }

    /// Reads the template folders that settings files name in `TEMPLATES[...]["DIRS"]` (among
    /// `python_paths`), then the templates among `candidates` into the index. Unreadable or
    /// non-UTF-8 files are left out: a template the analyzer cannot read is one it knows
    /// nothing about.
    pub fn with_templates(mut self, python_paths: &[PathBuf], candidates: &[PathBuf]) -> Self {
        self.template_dirs = python_paths
            .iter()
            .filter(|p| is_settings(p))
            .filter_map(|p| std::fs::read_to_string(p).ok())
            .flat_map(|source| {
                parse_python(&source).map_or_else(Vec::new, |tree| {
                    templates::dirs_from_settings(&source, tree.root_node())
                })
            })
            .collect();
        self.template_dirs.sort();
        self.template_dirs.dedup();
        self.database_engines = python_paths
            .iter()
            .filter(|p| is_settings(p))
            .filter_map(|p| {
                let source = std::fs::read_to_string(p).ok()?;
                let tree = parse_python(&source)?;
                Some((p.clone(), engines_named(&source, &tree)))
            })
            .collect();
        self.django_version = installed_django(&self.roots);
        let read: Vec<(PathBuf, (String, Arc<TemplateFacts>))> = candidates
            .par_iter()
            .filter_map(|path| {
                let name = self.template_name(path)?;
                let source = std::fs::read_to_string(path)
                    .ok()
                    .filter(|s| s.len() <= MAX_PARSED_BYTES)?;
                let facts = Arc::new(templates::extract(&source));
                Some((path.clone(), (name, facts)))
            })
            .collect();
        self.templates.extend(read);
        self.rebuild();
        self
    }

    /// The name views render a template file by (`blog/list.html`), if it is below a
    /// `templates` folder or a folder the settings' `DIRS` name.
    pub fn template_name(&self, path: &Path) -> Option<String> {
        if !has_template_extension(path) {
            return None;
        }
        templates::template_name(&self.relative(path), &self.template_dirs)
    }

    /// Takes a template's new text into the index. Returns whether the index changed.
    pub fn update_template(&mut self, path: &Path, source: &str) -> bool {
        let Some(name) = self.template_name(path) else {
            return false;
        };
        let facts = Arc::new(templates::extract(source));
        if self
            .templates
            .get(path)
            .is_some_and(|(_, old)| **old == *facts)
        {
            return false;
        }
        self.templates.insert(path.to_path_buf(), (name, facts));
        self.rebuild();
        true
    }

    /// Indexes the given files (paths under `roots`).
    pub fn from_paths(
        roots: &[PathBuf],
        paths: &[PathBuf],
        progress: impl Fn(usize, usize) + Sync,
    ) -> Self {
        let mut workspace = Self::unscanned(roots.to_vec());
        let done = std::sync::atomic::AtomicUsize::new(0);
        let total = paths.len();
        // Each file is read once: for the index (the files that may matter to it) and for the
        // words it mentions (who could call a function: `program::Mentions`).
        let read: Vec<(IndexedFile, (String, ModuleWords))> = paths
            .par_iter()
            .filter_map(|path| {
                let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                if n % 64 == 0 || n == total {
                    progress(n, total);
                }
                let relative = workspace.relative(path);
                let source = std::fs::read_to_string(path)
                    .ok()
                    .filter(|s| s.len() <= MAX_PARSED_BYTES)?;
                let words = (module_name(&relative).0, ModuleWords::of(&source));
                if !may_matter(&relative, &source) {
                    return Some((None, words));
                }
                let relevant = model_relevant_text(&source);
                let facts = parse_python(&relevant)
                    .map(|tree| Arc::new(facts_of(path, &relative, &relevant, &tree)));
                Some((facts.map(|f| (relative, f)), words))
            })
            .collect();
        let (files, words): (Vec<_>, Vec<_>) = read.into_iter().unzip();
        workspace.files = files.into_iter().flatten().collect();
        workspace.disk = Arc::new(DiskState::with_mentions(Mentions::new(words)));
        workspace.module_paths = Arc::new(Program::module_paths(
            paths.iter().map(|p| (p.clone(), workspace.relative(p))),
        ));
        workspace.scanned = true;
        workspace.rebuild();
        workspace
    }

    /// A fingerprint of everything `from_paths(roots, paths).with_templates(paths, templates)`
    /// reads: the parts of each module the index keeps, the settings modules (template
    /// `DIRS`) and the templates. Equal fingerprints, equal indexes: what `check`'s cache
    /// relies on to skip building one.
    pub fn inputs_fingerprint(roots: &[PathBuf], paths: &[PathBuf], templates: &[PathBuf]) -> u64 {
        let workspace = Self::unscanned(roots.to_vec());
        let mut parts: Vec<(PathBuf, u64)> = paths
            .par_iter()
            .chain(templates.par_iter())
            .filter_map(|path| {
                let source = std::fs::read_to_string(path).ok()?;
                let read = if has_template_extension(path) || is_settings(path) {
                    source
                } else if may_matter(&workspace.relative(path), &source) {
                    model_relevant_text(&source)
                } else {
                    return None;
                };
                Some((path.clone(), crate::analysis::program::text_hash(&read)))
            })
            .collect();
        parts.sort();
        let mut hasher = rustc_hash::FxHasher::default();
        parts.hash(&mut hasher);
        hasher.finish()
    }

    pub fn roots(&self) -> &[PathBuf] {
        &self.roots
    }

    pub fn index(&self) -> Arc<ModelIndex> {
        self.index.clone()
    }

    /// Where `path` sits in this workspace: the index and its module name.
    pub fn context_for(&self, path: &Path) -> FileContext {
        let relative = self.relative(path);
        let (module, is_package) = module_name(&relative);
        FileContext::new(self.index.clone(), module, is_package).with_program(self.program.clone())
    }

    /// After `path` changed on disk: summaries that read it are dropped, and a new file's
    /// module becomes callable. Returns whether open documents' findings may change.
    pub fn forget_summaries_of(&mut self, path: &Path) -> bool {
        let (module, _) = module_name(&self.relative(path));
        let known = self.module_paths.get(&module).is_some_and(|p| p == path);
        if !known {
            Arc::make_mut(&mut self.module_paths).insert(module, path.to_path_buf());
        }
        // Who mentions what may have changed: read again when next asked.
        let mentions_read = self.disk.mentions_read();
        self.disk = Arc::default();
        let stale = !known || mentions_read || self.program.has_read(path);
        self.program = Arc::new(self.new_program());
        stale
    }

    fn new_program(&self) -> Program {
        Program::new(
            self.index.clone(),
            self.module_paths.clone(),
            self.disk.clone(),
        )
    }

    fn relative(&self, path: &Path) -> PathBuf {
        match self
            .roots
            .iter()
            .find_map(|root| path.strip_prefix(root).ok())
        {
            Some(relative) => relative.to_path_buf(),
            None if self.roots.is_empty() => {
                path.file_name().map(PathBuf::from).unwrap_or_default()
            }
            // Outside every root: the path as given still names its packages.
            None => path.to_path_buf(),
        }
    }

    /// Takes a file's new text into the index. Returns whether the index changed (then every
    /// open document's findings may change).
    pub fn update(&mut self, path: &Path, source: &str, tree: &Tree) -> bool {
        let engines_changed = is_settings(path) && {
            let engines = engines_named(source, tree);
            self.database_engines
                .insert(path.to_path_buf(), engines.clone())
                != Some(engines)
        };
        let applied = match self.facts_for(path, source, tree) {
            Some((relative, facts)) => self.apply(relative, facts),
            None => false,
        };
        if engines_changed && !applied {
            self.rebuild();
        }
        engines_changed || applied
    }

    /// What the index would hold for `path` with this text (its path relative to the root and
    /// its facts), or `None` when the file cannot matter to the index. Needs no exclusive access,
    /// so the server computes it without blocking readers.
    pub fn facts_for(
        &self,
        path: &Path,
        source: &str,
        tree: &Tree,
    ) -> Option<(PathBuf, Arc<FileFacts>)> {
        let relative = self.indexes(path, source)?;
        let facts = Arc::new(facts_of(path, &relative, source, tree));
        Some((relative, facts))
    }

    /// `path` relative to its root when the index takes a file with this text: one it already
    /// holds, or one that may matter to it.
    pub fn indexes(&self, path: &Path, source: &str) -> Option<PathBuf> {
        let relative = self.relative(path);
        (self.files.contains_key(&relative) || may_matter(&relative, source)).then_some(relative)
    }

    /// Takes a file's facts into the index. Returns whether the index changed.
    pub fn apply(&mut self, relative: PathBuf, facts: Arc<FileFacts>) -> bool {
        if self.files.get(&relative).is_some_and(|old| **old == *facts) {
            return false;
        }
        self.files.insert(relative, facts);
        self.rebuild();
        true
    }

    /// Re-reads a file from disk (created, changed or deleted). Returns whether the index changed.
    pub fn reload(&mut self, path: &Path) -> bool {
        if self.template_name(path).is_some() {
            return match std::fs::read_to_string(path) {
                Ok(source) if source.len() <= MAX_PARSED_BYTES => {
                    self.update_template(path, &source)
                }
                _ => {
                    let removed = self.templates.remove(path).is_some();
                    if removed {
                        self.rebuild();
                    }
                    removed
                }
            };
        }
        match std::fs::read_to_string(path)
            .ok()
            .filter(|s| s.len() <= MAX_PARSED_BYTES)
        {
            Some(source) => match parse_python(&source) {
                Some(tree) => self.update(path, &source, &tree),
                None => false,
            },
            None => {
                let removed = self.files.remove(&self.relative(path)).is_some()
                    | self.database_engines.remove(path).is_some();
                if removed {
                    self.rebuild();
                }
                removed
            }
        }
    }

    fn rebuild(&mut self) {
        let mut hasher = rustc_hash::FxHasher::default();
        let mut templates: Vec<_> = self.templates.iter().collect();
        templates.sort_by(|a, b| a.0.cmp(b.0));
        templates.hash(&mut hasher);
        let mut index = ModelIndex::build(self.files.values().cloned().collect());
        if !self.scanned {
            index = index.partial();
        }
        let templates = TemplateIndex::new(
            self.templates
                .iter()
                .map(|(path, (name, facts))| (name.clone(), path.clone(), facts.clone())),
        );
        // One engine when every assignment of `DATABASES` names it; else none known.
        let engines: Vec<&Option<String>> = self.database_engines.values().flatten().collect();
        let engine = match engines.split_first() {
            Some((Some(first), rest)) if rest.iter().all(|e| e.as_ref() == Some(first)) => {
                Some(first.clone())
            }
            _ => None,
        };
        let index = index
            .with_templates(Arc::new(templates), hasher.finish())
            .with_database_engine(engine)
            .with_django_version(self.django_version);
        self.index = Arc::new(index);
        self.program = Arc::new(self.new_program());
    }
}

fn may_matter(relative: &Path, source: &str) -> bool {
    relative.components().any(|c| {
        c.as_os_str()
            .to_str()
            .is_some_and(|s| s.starts_with("models"))
    }) || MODEL_EVIDENCE.iter().any(|word| source.contains(word))
        || mentions_prefetch(source)
}

/// The parts of a module the index reads — imports, classes that may be models, managers or
/// QuerySets, `@receiver` and `@register.inclusion_tag` functions, `.connect(...)` calls,
/// `AUTH_USER_MODEL`, `if`/`try` blocks (which may hold imports), and any statement that may
/// prefetch — so a scan parses a
/// third of a large codebase's text. Top-level statements are told apart by indentation: a line
/// starting a statement at column 0 decides, with the indented lines after it, whether they are
/// kept. A line left out stays as an empty line, so the facts' line numbers are the file's
/// (serializer fields are shown by line).
fn model_relevant_text(source: &str) -> String {
    let mut kept = String::with_capacity(source.len() / 2);
    let mut after_kept_decorator = false;
    for (first_line, statement) in top_level_statements(source) {
        let decorator_kept = after_kept_decorator;
        after_kept_decorator = false;
        let keep = match first_line {
            None => false,
            Some(line) if line.starts_with("import ") || line.starts_with("from ") => true,
            Some(line) if line.starts_with("class ") => may_be_model_class(&line[6..]),
            Some(line) if line.starts_with('@') => {
                after_kept_decorator = line.contains("receiver") || line.contains("inclusion_tag");
                after_kept_decorator || decorator_kept
            }
            Some(line) if line.starts_with("def ") || line.starts_with("async def ") => {
                decorator_kept
            }
            Some(line) => {
                [
                    "if ", "try:", "else:", "elif ", "except", "finally:", "with ",
                ]
                .iter()
                .any(|k| line.starts_with(k))
                    || line.contains("AUTH_USER_MODEL")
                    || line.contains(".connect(")
            }
        };
        if keep || mentions_prefetch(statement) {
            kept.push_str(statement);
        } else {
            kept.extend(statement.matches('\n'));
        }
    }
    kept
}

/// The source cut at each line that starts a top-level statement (`None`: the lines before the
/// first), with that line.
fn top_level_statements(source: &str) -> Vec<(Option<&str>, &str)> {
    let mut statements: Vec<(Option<&str>, &str)> = Vec::new();
    let mut start = 0;
    let mut first_line = None;
    // The triple quote of a string still open at the line's start: a docstring's lines at
    // column 0 are text, not statements.
    let mut open_string: Option<&str> = None;
    let mut at = 0;
    for line in source.split_inclusive('\n') {
        let starts_statement = open_string.is_none()
            && line
                .chars()
                .next()
                .is_some_and(|c| !c.is_whitespace() && !matches!(c, '#' | ')' | ']' | '}'));
        open_string = string_open_after(line, open_string);
        if starts_statement {
            if at > start {
                statements.push((first_line, &source[start..at]));
            }
            start = at;
            first_line = Some(line);
        }
        at += line.len();
    }
    if at > start {
        statements.push((first_line, &source[start..at]));
    }
    statements
}

/// The triple quote left open at the end of `line`, given the one open at its start: each
/// `"""` or `'''` opens a string or closes the open one. (Quotes inside one-line strings and
/// comments are rare enough on such lines to be ignored.)
fn string_open_after<'q>(line: &str, mut open: Option<&'q str>) -> Option<&'q str> {
    let mut rest = line;
    loop {
        let next = match open {
            Some(quote) => rest.find(quote).map(|at| (at, quote)),
            None => ["\"\"\"", "'''"]
                .into_iter()
                .filter_map(|q| rest.find(q).map(|at| (at, q)))
                .min_by_key(|(at, _)| *at),
        };
        let Some((at, quote)) = next else {
            return open;
        };
        open = if open.is_some() { None } else { Some(quote) };
        rest = &rest[at + quote.len()..];
    }
}

/// A class header whose bases are not plainly something else (a test case, an exception).
fn may_be_model_class(header: &str) -> bool {
    let Some(bases) = header.split_once('(').map(|(_, rest)| rest) else {
        return true;
    };
    let mentions_model = ["Model", "Manager", "QuerySet", "models."]
        .iter()
        .any(|w| bases.contains(w));
    let plainly_other = ["Test", "Exception", "Error", "Warning"]
        .iter()
        .any(|w| bases.contains(w));
    mentions_model || !plainly_other
}

fn facts_of(path: &Path, relative: &Path, source: &str, tree: &Tree) -> FileFacts {
    let (module, is_package) = module_name(relative);
    FileFacts {
        path: Some(path.to_path_buf()),
        ..extract(source, tree, &module, is_package)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docstring_lines_at_column_zero_are_not_statements() {
        let source = "class Job(models.Model):\n    def cycle(self):\n        \"\"\"Deletes jobs\ninto chunks.\"\"\"\n        return 1\n\n\nclass Note(models.Model):\n    pass\n";
        let kept = model_relevant_text(source);
        assert_eq!(kept, source, "the class is kept whole, docstring included");
    }

    #[test]
    fn the_scan_keeps_what_the_index_reads() {
        let source = "import os\nfrom django.db import (\n    models,\n)\n\n\ndef helper():\n    return 1\n\n\nclass Entry(models.Model):\n    title = models.CharField()\n\n    class Meta:\n        abstract = True\n\n\nclass EntryTests(TestCase):\n    def test(self):\n        pass\n\n\n@receiver(post_save, sender=Entry)\ndef on_save(**kwargs):\n    pass\n\nAUTH_USER_MODEL = 'a.B'\n";
        let kept = model_relevant_text(source);
        assert!(
            kept.contains("    models,\n)")
                && kept.contains("class Entry")
                && kept.contains("abstract = True")
        );
        assert!(
            kept.contains("@receiver")
                && kept.contains("def on_save")
                && kept.contains("AUTH_USER_MODEL")
        );
        assert!(!kept.contains("helper") && !kept.contains("EntryTests"));
        let tree = parse_python(&kept).unwrap();
        let path = Path::new("blog/models.py");
        let facts = facts_of(path, path, &kept, &tree);
        assert_eq!(facts.classes.len(), 1);
        assert_eq!(facts.receivers.len(), 1);
        assert_eq!(facts.auth_user_model.as_deref(), Some("a.B"));
    }

    #[test]
    fn the_scan_keeps_every_statement_that_prefetches() {
        let source = "import os


def helper():
    return 1


def groups(users):
    return users.prefetch_related(\n        \"groups__permissions\",\n    )\n";
        let kept = model_relevant_text(source);
        assert!(!kept.contains("helper") && kept.contains("def groups"));
        assert_eq!(kept.lines().count(), source.lines().count());
        let tree = parse_python(&kept).unwrap();
        let path = Path::new("blog/views.py");
        let facts = facts_of(path, path, &kept, &tree);
        assert_eq!(facts.prefetch_lookups, ["groups__permissions"]);
        assert!(may_matter(path, source));
    }

    #[test]
    fn only_a_scanned_workspace_knows_what_the_program_prefetches() {
        let source =
            "def groups(users):\n    return users.prefetch_related(\"groups__permissions\")\n";
        let tree = parse_python(source).unwrap();
        let path = Path::new("blog/views.py");
        let mut unscanned = Workspace::unscanned(Vec::new());
        unscanned.update(path, source, &tree);
        assert_eq!(unscanned.index().prefetched_below("groups"), ["*"]);
        let mut scanned = Workspace::from_paths(&[], &[], |_, _| {});
        scanned.update(path, source, &tree);
        assert_eq!(scanned.index().prefetched_below("groups"), ["permissions"]);
        assert!(scanned.index().prefetched_below("permissions").is_empty());
    }

    #[test]
    fn a_changed_settings_module_changes_the_engine_and_an_installed_django_is_read() {
        let root = std::env::temp_dir().join(format!("dol-engine-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let django = root.join("venv/lib/python3.12/site-packages/django");
        std::fs::create_dir_all(&django).unwrap();
        std::fs::create_dir_all(root.join("proj")).unwrap();
        std::fs::write(
            django.join("__init__.py"),
            "VERSION = (5, 1, 4, \"final\", 0)\n",
        )
        .unwrap();
        let settings = root.join("proj/settings.py");
        let engine = |name: &str| {
            format!("DATABASES = {{\"default\": {{\"ENGINE\": \"django.db.backends.{name}\"}}}}\n")
        };
        std::fs::write(&settings, engine("sqlite3")).unwrap();
        let mut workspace = Workspace::scan(&root, |_, _| {});
        let index = workspace.index();
        assert_eq!(index.database_engine(), Some("django.db.backends.sqlite3"));
        assert_eq!(index.django_version(), Some((5, 1)));

        std::fs::write(&settings, engine("postgresql")).unwrap();
        assert!(workspace.reload(&settings), "the engine changed");
        let engine_now = workspace.index().database_engine().map(str::to_string);
        assert_eq!(engine_now.as_deref(), Some("django.db.backends.postgresql"));
        assert!(!workspace.reload(&settings), "nothing changed");
        std::fs::remove_file(&settings).unwrap();
        assert!(workspace.reload(&settings), "the settings are gone");
        assert_eq!(workspace.index().database_engine(), None);
        let _ = std::fs::remove_dir_all(&root);
    }
}
