//! Summaries across files: what a function of another module returns, given what its arguments
//! are (`chunked(Entry.objects.filter(...))` yields lists of entries; `pagination(request,
//! entries)` returns a page of entries first). The model index knows what every module
//! declares; this reads the body of a function only when some caller needs it, from the file as
//! saved, and keeps the answer for the index's lifetime.
//!
//! Each answer records the files it read (their path and text hash), so whoever caches a
//! finding that used it (`check`'s result cache) can tell when it goes stale: the findings of a
//! file depend on its own text, the index, and the text of the files whose functions it called.

use std::cell::RefCell;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use rustc_hash::{FxHashMap, FxHashSet, FxHasher};
use tree_sitter::{Node, Tree};

use super::index::{extract, module_name, FileFacts, Import, ModelIndex};
use super::infer::{Semantics, Ty};
use super::syntax::{
    field::{self, FieldOf},
    undecorated, KindOf,
};

/// How many summaries may be in progress on one thread at once (a helper calling a helper
/// calling ...): past it, `Unknown`.
const MAX_NESTED: usize = 6;

/// How many parsed modules a program keeps at once. A cold `check` of Django's sdist asks for
/// about 240 modules for summaries: keeping 256 cost 109 MB of peak memory, 64 costs 88 MB and
/// about 1% more time (290 parses, evicting the least recently used), 32 costs 76 MB.
const MAX_PARSED_MODULES: usize = 64;

/// The modules parsed for summaries, by dotted name (`None`: not found or not parsable), at
/// most `MAX_PARSED_MODULES` trees at once. Trees are large, so the least recently used go
/// first (their summaries stay); a few modules (`django.db.models`, an app's `models`) are asked
/// for by almost every file and stay parsed.
#[derive(Default)]
struct ParsedModules {
    modules: FxHashMap<String, (Option<Arc<ParsedModule>>, u64)>,
    /// Counts lookups: each entry holds the count at its last use.
    clock: u64,
}

impl ParsedModules {
    fn get(&mut self, name: &str) -> Option<Option<Arc<ParsedModule>>> {
        self.clock += 1;
        let (module, used) = self.modules.get_mut(name)?;
        *used = self.clock;
        Some(module.clone())
    }

    fn insert(&mut self, name: &str, module: Option<Arc<ParsedModule>>) {
        self.clock += 1;
        if module.is_some() {
            let trees = self.modules.values().filter(|(m, _)| m.is_some()).count();
            if trees >= MAX_PARSED_MODULES {
                // A quarter at a time, so the scan is paid once per many insertions.
                let mut uses: Vec<u64> = self
                    .modules
                    .values()
                    .filter(|(m, _)| m.is_some())
                    .map(|(_, used)| *used)
                    .collect();
                let (_, oldest_kept, _) = uses.select_nth_unstable(MAX_PARSED_MODULES / 4);
                let oldest_kept = *oldest_kept;
                self.modules
                    .retain(|_, (m, used)| m.is_none() || *used >= oldest_kept);
            }
        }
        self.modules.insert(name.to_string(), (module, self.clock));
    }
}

/// A file read for a summary: its path and the hash of its text.
pub type Dependency = (PathBuf, u64);

/// What a call returns, with the files read to find out.
type Summary = (Ty, Vec<Dependency>);

/// What a call passes: each positional argument's type, then each keyword argument's.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Arguments {
    pub positional: Vec<Ty>,
    pub keyword: Vec<(String, Ty)>,
}

/// The function a call reaches: a top-level function of `module`, or a method of one of its
/// top-level classes. `bound` is what the method's first parameter is (`self`, `cls`), when the
/// call binds it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Callee {
    pub module: String,
    pub class: Option<String>,
    pub function: String,
    pub bound: Option<Ty>,
}

/// The hash a dependency records of a file's text (`check`'s cache compares it).
pub fn text_hash(text: &str) -> u64 {
    let mut hasher = FxHasher::default();
    text.hash(&mut hasher);
    hasher.finish()
}

/// A method asked for by module, class and name.
type MethodKey = (String, String, String);

/// A module's source as summaries read it.
pub struct ParsedModule {
    pub path: PathBuf,
    pub source: String,
    pub tree: Tree,
    pub facts: FileFacts,
    pub text_hash: u64,
}

/// The workspace's files as summaries read them, from disk: a new one whenever a file changes
/// there (shared by the programs of one state of the files).
pub struct DiskState {
    /// Tells one state from another.
    id: u64,
    /// Which modules mention each word, read once when first asked.
    mentions: OnceLock<Mentions>,
}

impl Default for DiskState {
    fn default() -> Self {
        Self::new(OnceLock::new())
    }
}

impl DiskState {
    fn new(mentions: OnceLock<Mentions>) -> Self {
        static STATES: AtomicU64 = AtomicU64::new(0);
        Self {
            id: STATES.fetch_add(1, Ordering::Relaxed),
            mentions,
        }
    }

    /// Whether anything asked who mentions what (then a change may answer otherwise).
    pub fn mentions_read(&self) -> bool {
        self.mentions.get().is_some()
    }

    /// A state whose mentions were read with the files.
    pub fn with_mentions(mentions: Mentions) -> Self {
        Self::new(OnceLock::from(mentions))
    }
}

/// The project's modules and the summaries computed so far, for one model index.
pub struct Program {
    /// The same for two programs over the same index and files on disk, whose summaries are
    /// then the same: a lint cache keys on it, so findings survive an index that changes and
    /// changes back (a bracket opened, then closed).
    fingerprint: u64,
    index: Arc<ModelIndex>,
    /// Every Python module of the workspace by dotted name (packages by their own name).
    modules: Arc<FxHashMap<String, PathBuf>>,
    disk: Arc<DiskState>,
    parsed: Mutex<ParsedModules>,
    /// `method`'s answers, by module, class and method name.
    methods: Mutex<FxHashMap<MethodKey, Option<(Callee, Binds)>>>,
    /// Every file a summary read, parsed or since dropped.
    read_paths: Mutex<FxHashSet<PathBuf>>,
    summaries: Mutex<FxHashMap<(Callee, Arguments), Summary>>,
}

thread_local! {
    /// The summaries being computed on this thread, innermost last (recursion ends at them).
    static ACTIVE: RefCell<Vec<(Callee, Arguments)>> = const { RefCell::new(Vec::new()) };
    /// The files read by the computations in progress, innermost last.
    static READ: RefCell<Vec<FxHashSet<Dependency>>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f`, returning with its result the files that summaries it asked for read.
pub fn recording_dependencies<R>(f: impl FnOnce() -> R) -> (R, Vec<Dependency>) {
    READ.with(|read| read.borrow_mut().push(FxHashSet::default()));
    let result = f();
    let read = READ
        .with(|read| read.borrow_mut().pop())
        .unwrap_or_default();
    let mut read: Vec<Dependency> = read.into_iter().collect();
    read.sort();
    (result, read)
}

fn note_read(dependencies: &[Dependency]) {
    READ.with(|read| {
        if let Some(top) = read.borrow_mut().last_mut() {
            top.extend(dependencies.iter().cloned());
        }
    });
}

impl Program {
    pub fn new(
        index: Arc<ModelIndex>,
        modules: Arc<FxHashMap<String, PathBuf>>,
        disk: Arc<DiskState>,
    ) -> Self {
        let mut hasher = FxHasher::default();
        (index.fingerprint(), disk.id).hash(&mut hasher);
        Self {
            fingerprint: hasher.finish(),
            index,
            modules,
            disk,
            parsed: Mutex::default(),
            methods: Mutex::default(),
            read_paths: Mutex::default(),
            summaries: Mutex::default(),
        }
    }

    /// No other files: a file analysed on its own.
    pub fn standalone(index: Arc<ModelIndex>) -> Self {
        Self::new(index, Arc::default(), Arc::default())
    }

    /// Whether some module other than `module` mentions every one of `words` (then it may call
    /// what they name). Without a workspace, any may.
    pub fn mentioned_outside(&self, module: &str, words: &[&str]) -> bool {
        if self.modules.is_empty() {
            return true;
        }
        let mentions = self
            .disk
            .mentions
            .get_or_init(|| Mentions::read(&self.modules));
        let Some(&own) = mentions.modules.get(module) else {
            return true;
        };
        let mut files: Option<Vec<u32>> = None;
        for word in words {
            let with_word = mentions
                .by_word
                .get(&word_hash(word))
                .map_or(&[][..], Vec::as_slice);
            files = Some(match files {
                None => with_word.to_vec(),
                Some(so_far) => so_far
                    .into_iter()
                    .filter(|f| with_word.binary_search(f).is_ok())
                    .collect(),
            });
        }
        files.is_none_or(|files| files.iter().any(|f| *f != own))
    }

    /// Every module's file by dotted name, from the paths of a workspace's Python files
    /// relative to their root.
    pub fn module_paths(
        files: impl IntoIterator<Item = (PathBuf, PathBuf)>,
    ) -> FxHashMap<String, PathBuf> {
        files
            .into_iter()
            .map(|(absolute, relative)| (module_name(&relative).0, absolute))
            .collect()
    }

    pub fn fingerprint(&self) -> u64 {
        self.fingerprint
    }

    /// Whether a summary read `path` (then it is stale once the file changes).
    pub fn has_read(&self, path: &Path) -> bool {
        self.read_paths
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(path)
    }

    /// The module `name` names, or the one module whose name ends with it (imports written
    /// relative to another source root: `src/shop/utils.py` imported as `shop.utils`).
    fn module(&self, name: &str) -> Option<Arc<ParsedModule>> {
        if let Some(known) = self
            .parsed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
        {
            return known;
        }
        let path = self.modules.get(name).cloned().or_else(|| {
            let suffix = format!(".{name}");
            let mut found = self.modules.iter().filter(|(m, _)| m.ends_with(&suffix));
            match (found.next(), found.next()) {
                (Some((_, path)), None) => Some(path.clone()),
                _ => None,
            }
        });
        let parsed = path.and_then(|path| {
            let source = std::fs::read_to_string(&path)
                .ok()
                .filter(|s| s.len() <= crate::store::MAX_PARSED_BYTES)?;
            let tree = crate::store::parse_python(&source)?;
            let is_package = path.file_stem().is_some_and(|s| s == "__init__");
            let facts = extract(&source, &tree, name, is_package);
            Some(Arc::new(ParsedModule {
                path,
                text_hash: text_hash(&source),
                source,
                tree,
                facts,
            }))
        });
        if let Some(module) = &parsed {
            self.read_paths
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(module.path.clone());
        }
        self.parsed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name, parsed.clone());
        parsed
    }

    /// The function `name` that `module` defines, following its re-exports (`from .helpers
    /// import paginate` in a package's `__init__`), or `None`.
    pub fn function(&self, module: &str, name: &str) -> Option<Callee> {
        let mut module = module.to_string();
        for _ in 0..4 {
            let parsed = self.module(&module)?;
            if top_level(&parsed, name).is_some() {
                return Some(Callee {
                    module,
                    class: None,
                    function: name.to_string(),
                    bound: None,
                });
            }
            module = parsed.facts.imports.iter().rev().find_map(|i| match i {
                Import::From {
                    module,
                    name: imported,
                    alias,
                } if alias == name && imported == name => Some(module.clone()),
                _ => None,
            })?;
        }
        None
    }

    /// The method `name` of class `class` of `module`, or of the first of its bases (in the
    /// order written, depth first) that defines it; with how the method binds its first
    /// parameter.
    pub fn method(&self, module: &str, class: &str, name: &str) -> Option<(Callee, Binds)> {
        // Asked for every method call on a model instance (`obj.save()` in a loop, ...).
        let key = (module.to_string(), class.to_string(), name.to_string());
        if let Some(known) = self
            .methods
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            return known.clone();
        }
        let found = self.method_at(module, class, name, 0);
        self.methods
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, found.clone());
        found
    }

    fn method_at(
        &self,
        module: &str,
        class: &str,
        name: &str,
        depth: usize,
    ) -> Option<(Callee, Binds)> {
        if depth > MAX_NESTED {
            return None;
        }
        let parsed = self.module(module)?;
        let facts = parsed.facts.classes.iter().find(|c| c.name == class)?;
        if facts.methods.iter().any(|m| m.name == name) {
            let definition = method(&parsed, class, name)?;
            let callee = Callee {
                module: module.to_string(),
                class: Some(class.to_string()),
                function: name.to_string(),
                bound: None,
            };
            return Some((callee, binds(&parsed, definition)?));
        }
        facts
            .bases
            .iter()
            .find_map(|base| match self.index.resolve(&parsed.facts, base) {
                super::index::Symbol::Class {
                    module,
                    name: class,
                } => self.method_at(&module, &class, name, depth + 1),
                _ => None,
            })
    }

    /// What calling `callee` with `arguments` returns (`Unknown` when the analyzer cannot
    /// say). Memoised; a summary that reaches itself again is `Unknown` there.
    pub fn returns(&self, callee: &Callee, arguments: &Arguments) -> Ty {
        let key = (callee.clone(), arguments.clone());
        if let Some((ty, read)) = self
            .summaries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            note_read(read);
            return ty.clone();
        }
        let busy = ACTIVE.with(|active| {
            let active = active.borrow();
            active.len() >= MAX_NESTED || active.contains(&key)
        });
        if busy {
            return Ty::Unknown;
        }
        ACTIVE.with(|active| active.borrow_mut().push(key.clone()));
        let ((ty, own), mut read) = recording_dependencies(|| self.compute(callee, arguments));
        ACTIVE.with(|active| active.borrow_mut().pop());
        read.extend(own);
        note_read(&read);
        self.summaries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, (ty.clone(), read));
        ty
    }

    /// What the call returns, and the callee's own file.
    fn compute(&self, callee: &Callee, arguments: &Arguments) -> (Ty, Option<Dependency>) {
        let Some(module) = self.module(&callee.module) else {
            return (Ty::Unknown, None);
        };
        let read = Some((module.path.clone(), module.text_hash));
        let Some(definition) = (match &callee.class {
            None => top_level(&module, &callee.function),
            Some(class) => method(&module, class, &callee.function),
        }) else {
            return (Ty::Unknown, read);
        };
        let sem = Semantics::new(
            &module.source,
            module.tree.root_node(),
            &self.index,
            &module.facts,
        )
        .with_program(self);
        (
            sem.returns_with(definition, callee.bound.clone(), arguments),
            read,
        )
    }
}

/// Which modules mention each name that some module defines (`def name`, `class name`), by the
/// name's hash: which files could call a function. A hash collision only makes a function look
/// mentioned elsewhere, which keeps its parameters unknown.
#[derive(Default)]
pub struct Mentions {
    modules: FxHashMap<String, u32>,
    /// Module numbers in increasing order.
    by_word: FxHashMap<u64, Vec<u32>>,
}

/// What `Mentions` keeps of one module's text: the hashes of its words, and of the names it
/// defines.
pub struct ModuleWords {
    words: Vec<u64>,
    defined: Vec<u64>,
}

impl ModuleWords {
    pub fn of(text: &str) -> Self {
        let mut words = Vec::new();
        let mut defined = Vec::new();
        let mut after_keyword = false;
        for word in text.split(|c: char| !(c.is_alphanumeric() || c == '_')) {
            if word.is_empty() {
                continue;
            }
            let hash = word_hash(word);
            if after_keyword {
                defined.push(hash);
            }
            after_keyword = matches!(word, "def" | "class");
            words.push(hash);
        }
        words.sort_unstable();
        words.dedup();
        Self { words, defined }
    }
}

fn word_hash(word: &str) -> u64 {
    let mut hasher = FxHasher::default();
    word.hash(&mut hasher);
    hasher.finish()
}

impl Mentions {
    /// From each module's words (the workspace scan reads every file anyway).
    pub fn new(modules: Vec<(String, ModuleWords)>) -> Self {
        let defined: FxHashSet<u64> = modules
            .iter()
            .flat_map(|(_, w)| w.defined.iter().copied())
            .collect();
        let mut mentions = Mentions::default();
        let mut modules = modules;
        modules.sort_by(|a, b| a.0.cmp(&b.0));
        for (i, (module, words)) in modules.into_iter().enumerate() {
            mentions.modules.insert(module, i as u32);
            for word in words.words.into_iter().filter(|w| defined.contains(w)) {
                mentions.by_word.entry(word).or_default().push(i as u32);
            }
        }
        mentions
    }

    /// Reads every module, on one thread: it is asked for from inside `check`'s parallel
    /// lints, where waiting on other tasks could wait on itself.
    fn read(modules: &FxHashMap<String, PathBuf>) -> Self {
        Self::new(
            modules
                .iter()
                .map(|(module, path)| {
                    let text = std::fs::read_to_string(path).unwrap_or_default();
                    (module.clone(), ModuleWords::of(&text))
                })
                .collect(),
        )
    }
}

/// How a method takes its first parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Binds {
    /// A plain method: the instance it is called on.
    Instance,
    /// `@classmethod`: the class.
    Class,
    /// `@staticmethod`: nothing.
    Nothing,
}

/// How `definition` binds its first parameter; `None` for a property or another decorator
/// that may change what calling it means.
fn binds(module: &ParsedModule, definition: Node) -> Option<Binds> {
    let Some(decorated) = definition
        .parent()
        .filter(|p| p.kind_name() == "decorated_definition")
    else {
        return Some(Binds::Instance);
    };
    match super::syntax::decorator_names(decorated, &module.source).as_slice() {
        ["classmethod"] => Some(Binds::Class),
        ["staticmethod"] => Some(Binds::Nothing),
        _ => None,
    }
}

/// A function defined once at the top level of `module` and bound nowhere else there.
fn top_level<'m>(module: &'m ParsedModule, name: &str) -> Option<Node<'m>> {
    let root = module.tree.root_node();
    let mut found = None;
    let mut cursor = root.walk();
    for statement in root.named_children(&mut cursor) {
        let definition = undecorated(statement);
        let defined = match definition.kind_name() {
            "function_definition" | "class_definition" => definition
                .field(&field::NAME)
                .is_some_and(|n| &module.source[n.byte_range()] == name),
            _ => super::syntax::simple_assignment(statement)
                .is_some_and(|(left, _)| &module.source[left.byte_range()] == name),
        };
        if defined {
            if found.is_some() || definition.kind_name() != "function_definition" {
                return None;
            }
            found = Some(definition);
        }
    }
    found
}

/// A method defined once in the body of `module`'s top-level class `class`.
fn method<'m>(module: &'m ParsedModule, class: &str, name: &str) -> Option<Node<'m>> {
    let root = module.tree.root_node();
    let mut cursor = root.walk();
    let class = root
        .named_children(&mut cursor)
        .map(undecorated)
        .find(|d| {
            d.kind_name() == "class_definition"
                && d.field(&field::NAME)
                    .is_some_and(|n| &module.source[n.byte_range()] == class)
        })?;
    let body = class.field(&field::BODY)?;
    let mut cursor = body.walk();
    let mut found = body
        .named_children(&mut cursor)
        .map(undecorated)
        .filter(|d| {
            d.kind_name() == "function_definition"
                && d.field(&field::NAME)
                    .is_some_and(|n| &module.source[n.byte_range()] == name)
        });
    match (found.next(), found.next()) {
        (Some(definition), None) => Some(definition),
        _ => None,
    }
}
