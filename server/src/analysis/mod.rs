//! The analysis: pure functions from (source, tree, settings) to diagnostics in byte offsets.
//! It never fails: what a rule cannot decide it leaves alone, and a rule that panics is caught,
//! logged once, and the other rules still report.

pub mod admin;
pub mod columns;
mod dependencies;
pub mod diagnostic;
pub mod evaluation;
mod fix_all;
pub mod hover;
pub mod imports;
pub mod index;
pub mod infer;
pub mod loop_queries;
pub mod loops;
pub mod noqa;
pub mod patterns;
pub mod program;
pub mod query_counts;
mod repair;
mod returns;
pub mod rules;
pub mod scope;
pub mod serializers;
pub mod syntax;
pub mod templates;
pub mod writes;

use std::hash::{Hash, Hasher};
use std::ops::Range;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};

use rustc_hash::{FxHashMap, FxHashSet, FxHasher};
use tree_sitter::{Node, Tree};

pub use diagnostic::{apply_edits, Applicability, Diagnostic, Edit, Fix, Place, Related, Severity};
pub(crate) use fix_all::count_errors;
pub use fix_all::{fix_all, fix_all_with, fix_region, loop_around, FixMode, Fixed};
use index::FileFacts;
pub use infer::FileContext;
use infer::Semantics;
use repair::Prelint;
use rules::{Registry, RuleContext, REGISTRY};

use crate::analysis::syntax::{
    field::{self, FieldOf},
    KindOf,
};
use crate::settings::Settings;

/// Compiles the rules' query, which the first lint would otherwise wait for.
pub fn prepare() {
    std::sync::LazyLock::force(&REGISTRY);
}

/// Lints a whole file.
pub fn lint(source: &str, tree: &Tree, settings: &Settings, file: &FileContext) -> Vec<Diagnostic> {
    Linter::new(&REGISTRY, settings, file).run(source, tree, None)
}

/// Lints a file, re-running the rules only on the top-level statements whose text changed since
/// the last call with the same cache. Each top-level statement (a function, a class, ...) is
/// analysed on its own plus the module's top-level code (imports and the like), so a statement
/// whose text is unchanged has the same findings, moved by however far it moved.
pub fn lint_incremental(
    source: &str,
    tree: &Tree,
    settings: &Settings,
    file: &FileContext,
    cache: &mut LintCache,
) -> Vec<Diagnostic> {
    Linter::new(&REGISTRY, settings, file).run(source, tree, Some(cache))
}

/// The tree `lint_typed` asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum WantedTree {
    /// The document's, parsed from its last tree with every edit since.
    Current,
    /// The definition the last lint left out parses again, and nothing else changed: the
    /// document is best parsed from its last tree without errors
    /// (`DocumentSnapshot::tree_mended`), not from the broken one.
    Mended,
}

/// A document's findings as the editor lints them.
pub struct Typed {
    pub found: Vec<Diagnostic>,
    /// The range the document's tree was predicted to collapse around (`repair::Prelint`),
    /// when the findings were made without parsing the document: they hold once
    /// `prediction_holds` for its tree.
    pub predicted: Option<Range<usize>>,
}

/// Lints a document's text the way the editor does: `lint_incremental`, but what the text
/// alone tells comes first (`repair::Linted::prelint`). While typing goes on inside an open
/// bracket or quote of one definition, the document is not parsed (its tree is predicted to
/// collapse around that definition); when that definition parses again, the tree asked for is
/// the one parsed from before the error. `None` when `tree` has none to give.
pub fn lint_typed<'t>(
    source: &str,
    settings: &Settings,
    file: &FileContext,
    cache: &mut LintCache,
    tree: impl FnOnce(WantedTree) -> Option<&'t Tree>,
) -> Option<Typed> {
    let linter = Linter::new(&REGISTRY, settings, file);
    // Most keystrokes follow a lint that left nothing out and bring no bracket: the context is
    // not hashed for them.
    let answer = match cache.linted.as_mut() {
        Some(linted) => linted.prelint(source, || linter.context_key()),
        None => Prelint::Parse,
    };
    let wanted = match answer {
        Prelint::Collapsed(region) => {
            let found = linter.run_collapsed(source, None, Some(region.clone()), Some(cache));
            if let Some(found) = found {
                return Some(Typed {
                    found,
                    predicted: Some(region),
                });
            }
            WantedTree::Current
        }
        // Typing in a comment changes nothing a lint reads but suppressions: no parse, no lint.
        Prelint::Moved(found) => {
            return Some(Typed {
                found,
                predicted: None,
            })
        }
        Prelint::Mended => WantedTree::Mended,
        Prelint::Parse => WantedTree::Current,
    };
    let found = linter.run(source, tree(wanted)?, Some(cache));
    Some(Typed {
        found,
        predicted: None,
    })
}

/// Whether `tree`, parsed from `source`, collapses around `predicted` (`Typed::predicted`):
/// then the findings made without it are those a lint with it makes.
pub fn prediction_holds(source: &str, tree: &Tree, predicted: &Range<usize>) -> bool {
    repair::collapsed(source, tree.root_node()).as_ref() == Some(predicted)
}

/// Findings per top-level statement (or method of a large class), relative to its start, keyed
/// by its text, the module context and what it reads from other statements
/// (`dependencies.rs`).
#[derive(Default)]
pub struct LintCache {
    facts: index::FactsMemo,
    /// `returns::returns_key` of functions and methods, by their text's hash, and the hashes
    /// asked for by the current lint (the others are dropped after it).
    returns_keys: FxHashMap<u64, Option<u64>>,
    returns_keys_seen: FxHashSet<u64>,
    units: FxHashMap<u64, CachedUnit>,
    dependencies: dependencies::DependencyMemo,
    /// The text and tree the last lint read, which a repair of the next reparses from.
    linted: Option<repair::Linted>,
    /// How many lints this cache has served.
    lints: u64,
}

struct CachedUnit {
    findings: Arc<[Diagnostic]>,
    /// The lint that last asked for it.
    seen: u64,
}

/// How many lints a statement's findings outlive their last use. Typing an opening bracket
/// often swallows the rest of a class into an error (a class vanishes, the module context
/// changes, every statement is re-linted); the closing bracket brings the old text and context
/// back, and with them these findings.
const KEPT_FOR_LINTS: u64 = 64;

impl LintCache {
    fn returns_key(&mut self, definition: Node, source: &str) -> Option<u64> {
        let key = syntax::parse_hash(definition, definition.byte_range(), source);
        self.returns_keys_seen.insert(key);
        *self
            .returns_keys
            .entry(key)
            .or_insert_with(|| returns::returns_key(definition, source))
    }

    fn forget_unseen_returns_keys(&mut self) {
        let seen = std::mem::take(&mut self.returns_keys_seen);
        self.returns_keys.retain(|key, _| seen.contains(key));
    }
}

struct Linter<'r> {
    registry: &'r Registry,
    settings: &'r Settings,
    file: &'r FileContext,
}

impl<'r> Linter<'r> {
    fn new(registry: &'r Registry, settings: &'r Settings, file: &'r FileContext) -> Self {
        Self {
            registry,
            settings,
            file,
        }
    }

    fn run(&self, source: &str, tree: &Tree, cache: Option<&mut LintCache>) -> Vec<Diagnostic> {
        let collapsed = repair::collapsed(source, tree.root_node());
        // With its tree, a text is always linted.
        self.run_collapsed(source, Some(tree), collapsed, cache)
            .unwrap_or_default()
    }

    /// The lint of `source`, whose tree collapses around `collapsed` (`repair::collapsed`).
    /// `tree` is `None` when the collapse is predicted and the document not parsed: then `None`
    /// if the lint needs the tree after all (leaving the region out does not mend the text).
    fn run_collapsed(
        &self,
        source: &str,
        tree: Option<&Tree>,
        collapsed: Option<Range<usize>>,
        mut cache: Option<&mut LintCache>,
    ) -> Option<Vec<Diagnostic>> {
        let before = cache.as_deref().and_then(|c| c.linted.as_ref());
        let context = self.context_key();
        if let Some(found) = collapsed
            .as_ref()
            .zip(before)
            .and_then(|(now, before)| before.findings_if_same_outside(source, now, context))
        {
            return Some(found);
        }
        let repaired = collapsed.and_then(|region| repair::repaired(source, tree, region, before));
        let (linted, linted_tree) = match &repaired {
            Some(repaired) => (repaired.source.as_str(), &repaired.tree),
            None => (source, tree?),
        };
        let mut found = self.run_parsed(linted, linted_tree, context, cache.as_deref_mut());
        if let Some(repaired) = &repaired {
            found = repaired.keep_outside(found);
        }
        if let Some(cache) = cache {
            cache.linted = Some(repair::Linted::new(
                linted,
                linted_tree,
                repaired.as_ref(),
                context,
                &found,
                cache.linted.take(),
            ));
        }
        Some(found)
    }

    /// What a lint reads besides the file's text: the settings, the model index, the other
    /// modules and where this one sits among them.
    fn context_key(&self) -> u64 {
        let mut hasher = FxHasher::default();
        self.settings.fingerprint().hash(&mut hasher);
        self.file.index.fingerprint().hash(&mut hasher);
        self.file.program.fingerprint().hash(&mut hasher);
        self.file.module.hash(&mut hasher);
        self.file.is_package.hash(&mut hasher);
        hasher.finish()
    }

    fn run_parsed(
        &self,
        source: &str,
        tree: &Tree,
        context: u64,
        cache: Option<&mut LintCache>,
    ) -> Vec<Diagnostic> {
        // A whole-file lint is an incremental one from an empty cache: the same statements,
        // checked in the same order (inference memoises what it has seen), so the editor and
        // `check` cannot disagree.
        let mut scratch = LintCache::default();
        // An empty cache answers nothing: no statement needs a key.
        let keyed = cache.is_some();
        let cache = cache.unwrap_or(&mut scratch);
        let root = tree.root_node();
        let facts = self.file.facts_memoised(source, tree, &mut cache.facts);
        let mut cursor = root.walk();
        let units: Vec<Node> = root
            .named_children(&mut cursor)
            .filter(|n| n.kind_name() != "comment")
            .collect();
        let context = self.module_context(source, &units, &facts, context, cache);
        let sem =
            Semantics::new(source, root, &self.file.index, &facts).with_program(&self.file.program);
        let mut diagnostics = self.lint_statements(&sem, units, keyed.then_some(context), cache);
        // Two functions handing on what one helper builds report it there, once each: the same
        // finding, twice.
        let mut reported = FxHashSet::default();
        diagnostics.retain(|d| reported.insert((d.range.clone(), d.code(), d.message.clone())));
        // Suppressed findings go; which comment silenced which code is what ORM900 reads.
        let mut used = FxHashSet::default();
        diagnostics.retain(|d| {
            let Some((start, comment)) = noqa::line_comment(source, tree, d.range.start) else {
                return true;
            };
            let silenced = noqa::parse(comment).is_some_and(|s| s.covers(d.code()));
            if silenced {
                used.insert((start, d.code()));
            }
            !silenced
        });
        // Inside an error node tree-sitter's recovery may have misread the code (`for e in
        // Entry.objects.all():` after an open bracket reads as `e in Entry.objects.all()`): not
        // known, so silent. After the suppressions, so that a `noqa` there still counts as used.
        if root.has_error() {
            diagnostics.retain(|d| !within_an_error(&sem.parents, &d.range));
        }
        if self
            .settings
            .is_enabled(rules::orm900_unused_noqa::RULE.meta.code)
        {
            diagnostics.extend(rules::orm900_unused_noqa::check(
                source,
                tree,
                self.settings,
                &used,
            ));
        }
        for d in &mut diagnostics {
            d.severity = self.settings.severity_of(d.code(), d.rule.severity);
        }
        diagnostics.sort_by_key(|d| (d.range.start, d.range.end, d.code()));
        diagnostics
    }

    /// The findings of each top-level statement, from `cache` where its text, the module
    /// `context` and what it reads from the other statements are unchanged.
    fn lint_statements<'a>(
        &self,
        sem: &Semantics<'a>,
        units: Vec<Node<'a>>,
        context: Option<u64>,
        cache: &mut LintCache,
    ) -> Vec<Diagnostic> {
        cache.lints += 1;
        let source = sem.source;
        let mut reads = context.map(|context| {
            let pieces = units.iter().flat_map(|u| pieces_of(*u, source)).collect();
            let classes: Vec<&str> = units
                .iter()
                .map(|u| syntax::undecorated(*u))
                .filter(|d| d.kind_name() == "class_definition")
                .filter_map(|c| c.field(&field::NAME))
                .map(|n| &source[n.byte_range()])
                .collect();
            let root = sem.parents.root();
            Reads {
                dependencies: dependencies::Dependencies::new(
                    source,
                    root,
                    &classes,
                    pieces,
                    &mut cache.dependencies,
                ),
                next: 0,
                context,
            }
        });
        let mut diagnostics = Vec::new();
        for unit in units {
            // Module-level code reads names that functions read too (a module-level QuerySet
            // evaluated inside a function): it depends on the whole file, so it is not cached.
            let self_contained = matches!(
                unit.kind_name(),
                "function_definition" | "class_definition" | "decorated_definition"
            );
            if !self_contained {
                diagnostics.extend(self.lint_unit(sem, unit));
            } else if let Some(class) = large_class(unit) {
                self.lint_large_class(sem, unit, class, &mut reads, cache, &mut diagnostics);
            } else {
                let key = reads.as_mut().map(|r| r.key_of_next(0));
                self.lint_cached(sem, unit, key, cache, &mut diagnostics);
            }
        }
        let lints = cache.lints;
        cache
            .units
            .retain(|_, unit| unit.seen + KEPT_FOR_LINTS > lints);
        cache.forget_unseen_returns_keys();
        diagnostics
    }

    /// What every statement's analysis may depend on besides its own text: the lint's
    /// `context` (`context_key`), the file's facts (its classes and imports), the module's top-level code
    /// other than functions and classes, and what its functions return (callers are typed from
    /// it).
    fn module_context(
        &self,
        source: &str,
        units: &[Node],
        facts: &FileFacts,
        context: u64,
        cache: &mut LintCache,
    ) -> u64 {
        let mut hasher = FxHasher::default();
        context.hash(&mut hasher);
        facts.hash(&mut hasher);
        for unit in units {
            match unit.kind_name() {
                "class_definition" => {}
                "function_definition" | "decorated_definition" => {
                    cache.returns_key(*unit, source).hash(&mut hasher)
                }
                _ => source[unit.byte_range()].hash(&mut hasher),
            }
        }
        hasher.finish()
    }

    /// The findings of `unit` from the cache under `key`, or linted and cached (with no key:
    /// linted).
    fn lint_cached<'a>(
        &self,
        sem: &Semantics<'a>,
        unit: Node<'a>,
        key: Option<u64>,
        cache: &mut LintCache,
        diagnostics: &mut Vec<Diagnostic>,
    ) {
        let Some(key) = key else {
            diagnostics.extend(self.lint_unit(sem, unit));
            return;
        };
        let start = unit.start_byte() as isize;
        if let Some(found) = cache.units.get_mut(&key) {
            found.seen = cache.lints;
            diagnostics.extend(found.findings.iter().map(|d| d.shifted(start)));
            return;
        }
        let found = self.lint_unit(sem, unit);
        // Findings whose fix reaches outside the statement depend on more than its text.
        if found.iter().all(|d| within(d, unit)) {
            cache.units.insert(
                key,
                CachedUnit {
                    findings: found.iter().map(|d| d.shifted(-start)).collect(),
                    seen: cache.lints,
                },
            );
        }
        diagnostics.extend(found);
    }

    /// A class of thousands of lines (a test case, a big view module) is one top-level
    /// statement: a keystroke in one method would re-lint them all. Its methods are cached one
    /// by one instead, keyed by their text and the class's shape (its decorators and header, its
    /// own statements, the names of its methods with what they return (`returns::returns_key`:
    /// `self.helper()` is typed from it) and the full text of the `get_*` hooks other
    /// methods' analysis reads, like `get_queryset`). Patterns about the class as a whole, its
    /// decorators and its other statements are re-linted each time; they are few and small.
    fn lint_large_class<'a>(
        &self,
        sem: &Semantics<'a>,
        unit: Node<'a>,
        class: Node<'a>,
        reads: &mut Option<Reads>,
        cache: &mut LintCache,
        diagnostics: &mut Vec<Diagnostic>,
    ) {
        let mut cursor = unit.walk();
        for decorator in unit
            .named_children(&mut cursor)
            .filter(|d| d.kind_name() == "decorator")
        {
            diagnostics.extend(self.lint_unit(sem, decorator));
        }
        diagnostics.extend(self.lint_matches(sem, class, Some(0)));
        let Some(body) = class.field(&field::BODY) else {
            return;
        };
        // The header: name, bases (`class Big(mixin(...))`), type parameters.
        let mut cursor = class.walk();
        for part in class
            .named_children(&mut cursor)
            .filter(|p| p.id() != body.id())
        {
            diagnostics.extend(self.lint_unit(sem, part));
        }
        let source = sem.source;
        let mut hasher = FxHasher::default();
        syntax::parse_hash(unit, unit.start_byte()..body.start_byte(), source).hash(&mut hasher);
        let mut cursor = body.walk();
        let members: Vec<Node> = body.named_children(&mut cursor).collect();
        let called = self_calls(&source[class.byte_range()]);
        for member in &members {
            match method_name(*member, source) {
                // Other methods read what a method they call returns (`self.helper()`); a test
                // method no one calls is keyed by its name alone, so typing in it (which may
                // leave its returns in an error node for a while) re-lints only itself.
                Some(name) if !name.starts_with("get_") => {
                    name.hash(&mut hasher);
                    if called.contains(name) {
                        cache.returns_key(*member, source).hash(&mut hasher);
                    }
                }
                _ => syntax::parse_hash(*member, member.byte_range(), source).hash(&mut hasher),
            }
        }
        let context = hasher.finish();
        for member in members {
            if method_name(member, source).is_none() {
                diagnostics.extend(self.lint_unit(sem, member));
                continue;
            }
            let key = reads.as_mut().map(|r| r.key_of_next(context));
            self.lint_cached(sem, member, key, cache, diagnostics);
        }
    }

    fn lint_unit<'a>(&self, sem: &Semantics<'a>, unit: Node<'a>) -> Vec<Diagnostic> {
        self.lint_matches(sem, unit, None)
    }

    /// The findings of the matches in `node` that start at most `depth` levels below it.
    fn lint_matches<'a>(
        &self,
        sem: &Semantics<'a>,
        unit: Node<'a>,
        depth: Option<u32>,
    ) -> Vec<Diagnostic> {
        let mut out = Vec::new();
        let mut loops: Vec<Node<'a>> = Vec::new();
        let patterns = &self.registry.patterns;
        patterns.for_each_match(unit, sem.source, depth, |pattern, bound| {
            match self.registry.rule_for_pattern(pattern) {
                Some(rule) => self.check(sem, rule, patterns, bound, &mut out),
                None => loops.push(bound[0].1),
            }
        });
        // The outermost loops: a nested one starts before the one holding it ends. Each is
        // searched from its own node, so the walk does not visit the statements before it.
        loops.sort_by_key(|l| (l.start_byte(), std::cmp::Reverse(l.end_byte())));
        loops.dedup_by(|inner, outer| inner.start_byte() < outer.end_byte());
        let patterns = &self.registry.loop_patterns;
        for node in loops {
            patterns.for_each_match(node, sem.source, None, |pattern, bound| {
                let rule = self.registry.rule_for_loop_pattern(pattern);
                self.check(sem, rule, patterns, bound, &mut out);
            });
        }
        out
    }

    fn check<'a>(
        &self,
        sem: &Semantics<'a>,
        rule: &'static rules::Rule,
        patterns: &patterns::Patterns,
        bound: &patterns::Bound<'a>,
        out: &mut Vec<Diagnostic>,
    ) {
        if !self.settings.is_enabled(rule.meta.code) {
            return;
        }
        let captures = self.registry.captures(patterns, bound);
        let mut cx = RuleContext {
            sem,
            settings: self.settings,
            rule: rule.meta,
            out,
        };
        let checked = catch_unwind(AssertUnwindSafe(|| (rule.check)(&mut cx, &captures)));
        if checked.is_err() {
            log_rule_panic_once(rule.meta.code);
        }
    }
}

/// The cache key of each cached statement, handed out in the order the linter meets them
/// (`pieces_of`'s order).
struct Reads<'s> {
    dependencies: dependencies::Dependencies<'s>,
    next: usize,
    context: u64,
}

impl Reads<'_> {
    /// The key of the next cached piece: its text (`syntax::parse_hash`), the module
    /// context, `class_context` (a large class's, for its members) and what it reads from
    /// other statements.
    fn key_of_next(&mut self, class_context: u64) -> u64 {
        while !self.dependencies.is_cached(self.next) {
            self.next += 1;
        }
        let mut hasher = FxHasher::default();
        self.context.hash(&mut hasher);
        class_context.hash(&mut hasher);
        self.dependencies.key(self.next).hash(&mut hasher);
        self.dependencies.hash(self.next).hash(&mut hasher);
        self.next += 1;
        hasher.finish()
    }
}

/// The statements of `unit` whose findings are cached, in the order `lint_statements` lints
/// them: a top-level function or class, or each method of a large class (with the class's
/// other parts, which are not cached but may call a function).
fn pieces_of<'t, 's>(unit: Node<'t>, source: &'s str) -> Vec<dependencies::Piece<'s>> {
    if !matches!(
        unit.kind_name(),
        "function_definition" | "class_definition" | "decorated_definition"
    ) {
        return Vec::new();
    }
    let definition = syntax::undecorated(unit);
    let class_name = (definition.kind_name() == "class_definition")
        .then(|| definition.field(&field::NAME))
        .flatten()
        .map(|n| &source[n.byte_range()]);
    let members = |class: Node<'t>| -> Vec<Node<'t>> {
        let Some(body) = class.field(&field::BODY) else {
            return Vec::new();
        };
        let mut cursor = body.walk();
        body.named_children(&mut cursor).collect()
    };
    if large_class(unit).is_some() {
        let members = members(definition);
        let header = unit.start_byte()..members.first().map_or(unit.end_byte(), |m| m.start_byte());
        let header = dependencies::Piece {
            hash: syntax::parse_hash(unit, header.clone(), source),
            range: header,
            cached: false,
            defines: Vec::new(),
            class: Some(unit.start_byte()),
        };
        let members = members.into_iter().map(|member| {
            let method = method_name(member, source).is_some();
            dependencies::Piece {
                range: member.byte_range(),
                hash: syntax::parse_hash(member, member.byte_range(), source),
                cached: method,
                defines: taking_arguments(member, class_name, source)
                    .into_iter()
                    .collect(),
                class: Some(unit.start_byte()),
            }
        });
        return std::iter::once(header).chain(members).collect();
    }
    let defines = match class_name {
        None => taking_arguments(unit, None, source).into_iter().collect(),
        Some(_) => members(definition)
            .into_iter()
            .filter_map(|member| taking_arguments(member, class_name, source))
            .collect(),
    };
    vec![dependencies::Piece {
        range: unit.byte_range(),
        hash: syntax::parse_hash(unit, unit.byte_range(), source),
        cached: true,
        defines,
        class: None,
    }]
}

/// The name the calls of `definition` (a function, or a method of `class`) use, when it takes
/// arguments besides `self`/`cls` (its parameters may be typed from its calls, and it may read
/// what it is given) and has no decorator but `classmethod` or `staticmethod`. `Class(...)` for
/// `__init__`.
fn taking_arguments<'s>(
    definition: Node,
    class: Option<&'s str>,
    source: &'s str,
) -> Option<dependencies::Callee<'s>> {
    let function = syntax::undecorated(definition);
    if function.kind_name() != "function_definition" {
        return None;
    }
    let name = &source[function.field(&field::NAME)?.byte_range()];
    let decorated_otherwise = syntax::decorator_names(definition, source)
        .iter()
        .any(|d| !matches!(*d, "classmethod" | "staticmethod"));
    if decorated_otherwise {
        return None;
    }
    let parameters = function.field(&field::PARAMETERS)?;
    if parameters.named_child_count() <= usize::from(class.is_some()) {
        return None;
    }
    Some(match (name, class) {
        ("__init__", Some(class)) => dependencies::Callee {
            name: class,
            method: false,
        },
        _ => dependencies::Callee {
            name,
            method: class.is_some(),
        },
    })
}

/// Classes longer than this are linted method by method (see `lint_large_class`).
const LARGE_CLASS: usize = 16 * 1024;

/// The class of a top-level statement long enough to be linted method by method: a class, or
/// one under decorators (`@override_settings(...)` on a test case).
fn large_class(unit: Node) -> Option<Node> {
    let class = syntax::undecorated(unit);
    (class.kind_name() == "class_definition" && unit.byte_range().len() > LARGE_CLASS)
        .then_some(class)
}

/// The name of a method (plain or decorated) among a class body's statements.
fn method_name<'s>(member: Node, source: &'s str) -> Option<&'s str> {
    let function = match member.kind_name() {
        "function_definition" => member,
        "decorated_definition" => member
            .field(&field::DEFINITION)
            .filter(|d| d.kind_name() == "function_definition")?,
        _ => return None,
    };
    function
        .field(&field::NAME)
        .map(|n| &source[n.byte_range()])
}

/// The names called as `self.<name>(` in `text`: one pass over a class's text.
fn self_calls(text: &str) -> FxHashSet<&str> {
    // memchr's search, not `match_indices`: it runs over a large class on every keystroke.
    memchr::memmem::find_iter(text.as_bytes(), b"self.")
        .filter_map(|at| {
            let rest = &text[at + "self.".len()..];
            let end = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            rest[end..].starts_with('(').then(|| &rest[..end])
        })
        .collect()
}

/// Whether the smallest node holding `range` is, or lies inside, an error node. Walked up
/// through `parents` (`Node::parent` walks down from the root on every call).
fn within_an_error(parents: &syntax::Parents, range: &std::ops::Range<usize>) -> bool {
    let mut node = parents
        .root()
        .descendant_for_byte_range(range.start, range.end);
    while let Some(at) = node {
        if at.is_error() {
            return true;
        }
        node = parents.of(at);
    }
    false
}

fn within(d: &Diagnostic, unit: Node) -> bool {
    let range = unit.byte_range();
    let inside = |r: &std::ops::Range<usize>| range.start <= r.start && r.end <= range.end;
    inside(&d.range)
        && d.fix
            .as_ref()
            .is_none_or(|f| f.edits.iter().all(|e| inside(&e.range)))
}

fn log_rule_panic_once(code: &'static str) {
    static LOGGED: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());
    let mut logged = LOGGED.lock().unwrap_or_else(|e| e.into_inner());
    if !logged.contains(&code) {
        logged.push(code);
        eprintln!("django-orm-lsp: rule {code} panicked; its findings are skipped (reported once)");
    }
}

#[cfg(test)]
mod tests {
    use super::rules::{Captures, Rule, RuleMeta, ALL};
    use super::*;

    static PANICKING: Rule = Rule {
        meta: &RuleMeta {
            code: "ORM999",
            name: "always-panics",
            severity: Severity::Error,
        },
        query: "(call) @call",
        check: |_: &mut RuleContext, _: &Captures| panic!("boom"),
    };

    #[test]
    fn a_panicking_rule_does_not_stop_the_others() {
        let source =
            "from blog.models import Entry\n\ndef f():\n    return len(Entry.objects.all())\n";
        let tree = crate::store::parse_python(source).unwrap();
        let mut rules = vec![&PANICKING];
        rules.extend(ALL.iter().copied());
        let registry = Registry::new(&rules);
        let file = FileContext::standalone();
        let found = Linter::new(&registry, &Settings::default(), &file).run(source, &tree, None);
        let codes: Vec<_> = found.iter().map(|d| d.code()).collect();
        assert_eq!(codes, ["ORM101"]);
    }

    #[test]
    fn module_level_findings_follow_edits_inside_functions() {
        let before = "from m import Entry\nqs = Entry.objects.all()\nif qs:\n    pass\n\ndef f():\n    return 1\n";
        let after = before.replace("return 1", "return list(qs)");
        let settings = Settings::default();
        let file = FileContext::standalone();
        let mut cache = LintCache::default();
        let tree = crate::store::parse_python(before).unwrap();
        assert_eq!(
            lint_incremental(before, &tree, &settings, &file, &mut cache).len(),
            1
        );
        let tree = crate::store::parse_python(&after).unwrap();
        // `qs` is now evaluated in f(): the truth test fills its cache, nothing to report.
        assert_eq!(
            lint_incremental(&after, &tree, &settings, &file, &mut cache),
            lint(&after, &tree, &settings, &file)
        );
    }

    #[test]
    fn large_classes_are_cached_per_method_and_follow_their_hooks() {
        // Decorated or not, plain bases or not: findings in the decorators and the bases
        // (ORM101) are reported every time.
        let counted = "len(Entry.objects.all())";
        for (decorator, base) in [
            (String::new(), String::new()),
            (
                format!("@decorate({counted})\n"),
                format!("mixin({counted}), "),
            ),
        ] {
            large_class_follows_its_hooks(&decorator, &base);
        }
    }

    fn large_class_follows_its_hooks(decorator: &str, base: &str) {
        let models = "from django.db import models\n\nclass Blog(models.Model):\n    name = models.CharField(max_length=10)\n\nclass Entry(models.Model):\n    blog = models.ForeignKey(Blog, on_delete=models.CASCADE)\n";
        // ORM406 (no fix, so cached with its method) holds only while get_queryset prefetches.
        let mut view = format!(
            "from django.views.generic import ListView\nfrom blog.models import Blog, Entry\n\n{decorator}class Blogs({base}ListView):\n    def get_queryset(self):\n        return Blog.objects.prefetch_related(\"entry_set\")\n",
        );
        let mut i = 0;
        while view.len() <= 2 * LARGE_CLASS {
            view.push_str(&format!(
                "\n    def first_{i}(self):\n        for blog in self.get_queryset():\n            print(blog.entry_set.get(pk={i}), len(Entry.objects.filter(pk={i})))\n"
            ));
            i += 1;
        }
        let models_tree = crate::store::parse_python(models).unwrap();
        let facts = std::sync::Arc::new(index::extract(models, &models_tree, "blog.models", false));
        let file = FileContext::new(
            std::sync::Arc::new(index::ModelIndex::build(vec![facts])),
            "blog.views",
            false,
        );
        let settings = Settings::default();
        let mut cache = LintCache::default();
        let check = |text: &str, cache: &mut LintCache| {
            let tree = crate::store::parse_python(text).unwrap();
            let incremental = lint_incremental(text, &tree, &settings, &file, cache);
            assert_eq!(incremental, lint(text, &tree, &settings, &file));
            incremental
        };
        let count =
            |found: &[Diagnostic], code: &str| found.iter().filter(|d| d.code() == code).count();
        let decorated = usize::from(!decorator.is_empty()) + usize::from(!base.is_empty());
        let found = check(&view, &mut cache);
        assert_eq!(
            (count(&found, "ORM406"), count(&found, "ORM101")),
            (i, i + decorated)
        );
        // A keystroke in one method, then in the hook every method's analysis reads.
        let edited = view.replace("pk=3)", "pk=33)");
        let found = check(&edited, &mut cache);
        assert_eq!(
            (count(&found, "ORM406"), count(&found, "ORM101")),
            (i, i + decorated)
        );
        let unprefetched = edited.replace(".prefetch_related(\"entry_set\")", ".all()");
        assert_eq!(count(&check(&unprefetched, &mut cache), "ORM406"), 0);
    }

    /// An admin's changelist findings read other statements of its file: the model's `__str__`,
    /// its mixins, which functions `list_display` names. Each edit there must show in the
    /// incremental lint as in a full one.
    #[test]
    fn admin_findings_follow_edits_to_the_statements_they_read() {
        let source = "from django.contrib import admin\nfrom django.db import models\n\nclass Country(models.Model):\n    name = models.CharField(max_length=9)\n\nclass Author(models.Model):\n    country = models.ForeignKey(Country, null=True, on_delete=models.SET_NULL)\n\n    def __str__(self):\n        return self.country.name\n\nclass Book(models.Model):\n    author = models.ForeignKey(Author, on_delete=models.CASCADE)\n    items = models.ManyToManyField(Country, related_name=\"+\")\n\n    def empty(self):\n        return self.items.count() == 0\n\nclass Columns:\n    pass\n\n@admin.register(Book)\nclass BookAdmin(Columns, admin.ModelAdmin):\n    list_display = (\"author\", \"empty\")\n";
        let tree = crate::store::parse_python(source).unwrap();
        let facts = std::sync::Arc::new(index::extract(source, &tree, "shop.admin", false));
        let file = FileContext::new(
            std::sync::Arc::new(index::ModelIndex::build(vec![facts])),
            "shop.admin",
            false,
        );
        let settings = Settings::default();
        let mut cache = LintCache::default();
        let mut codes = |text: &str| {
            let tree = crate::store::parse_python(text).unwrap();
            let incremental = lint_incremental(text, &tree, &settings, &file, &mut cache);
            assert_eq!(incremental, lint(text, &tree, &settings, &file), "{text}");
            incremental.iter().map(|d| d.code()).collect::<Vec<_>>()
        };
        // `author` shows `Author.__str__`, which reads a nullable key; `empty` counts per row.
        assert_eq!(codes(source), ["ORM412", "ORM412"]);
        // `__str__` stops reading the key.
        let edited = source.replace("return self.country.name", "return \"author\"");
        assert_eq!(codes(&edited), ["ORM412"]);
        // `empty` leaves the changelist: the count is ORM103's again.
        let edited = edited.replace("(\"author\", \"empty\")", "(\"author\",)");
        assert_eq!(codes(&edited), ["ORM103"]);
        // A mixin that joins makes the changelist unknown: nothing of ORM412's is sure.
        let edited = source.replace(
            "class Columns:\n",
            "class Columns:\n    list_select_related = True\n\n",
        );
        assert_eq!(codes(&edited), Vec::<&str>::new());
    }

    #[test]
    fn incremental_lint_equals_full_lint_after_statements_move() {
        let before = "from m import Entry\n\ndef f():\n    return len(Entry.objects.all())\n\ndef g():\n    return 1\n";
        let after = "from m import Entry\n\ndef g():\n    return 2\n\n\ndef f():\n    return len(Entry.objects.all())\n";
        let settings = Settings::default();
        let mut cache = LintCache::default();
        let tree = crate::store::parse_python(before).unwrap();
        let file = FileContext::standalone();
        lint_incremental(before, &tree, &settings, &file, &mut cache);
        let tree = crate::store::parse_python(after).unwrap();
        let incremental = lint_incremental(after, &tree, &settings, &file, &mut cache);
        assert_eq!(incremental, lint(after, &tree, &settings, &file));
        assert_eq!(incremental.len(), 1);
    }

    /// A workspace of `blog/models.py` (Blog, Entry with a key to it) and `blog/views.py`, on
    /// disk: parameters are typed from their callers only when no other module may call them.
    fn blog_views() -> FileContext {
        let models = "from django.db import models\n\nclass Blog(models.Model):\n    name = models.CharField(max_length=10)\n\nclass Entry(models.Model):\n    blog = models.ForeignKey(Blog, on_delete=models.CASCADE)\n";
        let root = std::env::temp_dir().join(format!("orm-lsp-lint-{}", std::process::id()));
        std::fs::create_dir_all(root.join("blog")).unwrap();
        std::fs::write(root.join("blog/models.py"), models).unwrap();
        std::fs::write(root.join("blog/views.py"), "").unwrap();
        let tree = crate::store::parse_python(models).unwrap();
        let facts = std::sync::Arc::new(index::extract(models, &tree, "blog.models", false));
        let index = std::sync::Arc::new(index::ModelIndex::build(vec![facts]));
        let modules = program::Program::module_paths(
            ["blog/models.py", "blog/views.py"].map(|p| (root.join(p), p.into())),
        );
        let program = program::Program::new(
            index.clone(),
            std::sync::Arc::new(modules),
            Default::default(),
        );
        FileContext::new(index, "blog.views", false).with_program(std::sync::Arc::new(program))
    }

    /// Lints `versions` one after the other with one cache, each equal to a fresh lint;
    /// returns the codes found in each.
    fn lint_in_turn(file: &FileContext, versions: &[String]) -> Vec<Vec<&'static str>> {
        let settings = Settings::default();
        let mut cache = LintCache::default();
        versions
            .iter()
            .map(|text| {
                let tree = crate::store::parse_python(text).unwrap();
                let incremental = lint_incremental(text, &tree, &settings, file, &mut cache);
                assert_eq!(incremental, lint(text, &tree, &settings, file));
                incremental.iter().map(|d| d.code()).collect()
            })
            .collect()
    }

    #[test]
    fn a_function_is_linted_again_when_a_call_of_it_changes() {
        // `rows` is typed from the one call: the rows of `all()` read `blog` per row, those of
        // `select_related("blog")` do not.
        let before = "from blog.models import Entry\n\ndef export(rows):\n    for row in rows:\n        print(row.blog.name)\n\ndef view():\n    export(Entry.objects.all())\n";
        let after = before.replace("objects.all()", "objects.select_related('blog')");
        let found = lint_in_turn(
            &blog_views(),
            &[before.to_string(), after.clone(), before.to_string()],
        );
        assert_eq!(found, [vec!["ORM402"], vec![], vec!["ORM402"]]);
    }

    #[test]
    fn a_function_whose_parameters_stay_unknown_is_not_linted_again_when_its_mentions_change() {
        // `chosen = export` leaves `rows` unknown whatever calls pass: typing in `pick` (or
        // in `view`'s call) re-lints only the statement typed in.
        let before = "from blog.models import Entry\n\ndef export(rows):\n    for row in rows:\n        print(row.blog.name)\n\ndef pick():\n    chosen = export\n\ndef view():\n    export(Entry.objects.all())\n";
        let file = blog_views();
        let settings = Settings::default();
        let mut cache = LintCache::default();
        let mut cached_after = |text: &str| {
            let tree = crate::store::parse_python(text).unwrap();
            let incremental = lint_incremental(text, &tree, &settings, &file, &mut cache);
            assert_eq!(incremental, lint(text, &tree, &settings, &file));
            cache.units.len()
        };
        let cached = cached_after(before);
        assert_eq!(cached, 3);
        let picked_twice = before.replace("chosen = export", "chosen = export\n    again = export");
        assert_eq!(cached_after(&picked_twice), cached + 1);
        let called_otherwise = picked_twice.replace("objects.all()", "objects.none()");
        assert_eq!(cached_after(&called_otherwise), cached + 2);
    }

    /// Lints each version in turn with one cache, as the editor does (`lint_typed`), checking
    /// each against a whole lint: for each, its codes and whether the lint asked for the tree.
    fn typed_in_turn(versions: &[String]) -> Vec<(Vec<&'static str>, bool)> {
        let (settings, file) = (Settings::default(), blog_views());
        let mut cache = LintCache::default();
        versions
            .iter()
            .map(|text| {
                let tree = crate::store::parse_python(text).unwrap();
                let mut parsed = false;
                let typed = lint_typed(text, &settings, &file, &mut cache, |_| {
                    parsed = true;
                    Some(&tree)
                })
                .unwrap();
                assert_eq!(typed.found, lint(text, &tree, &settings, &file), "{text}");
                (typed.found.iter().map(|d| d.code()).collect(), parsed)
            })
            .collect()
    }

    #[test]
    fn typing_in_a_comment_is_answered_without_parsing_unless_it_may_matter() {
        let text = |note: &str, noted: &str| {
            format!("from blog.models import Entry\n\n{note}\ndef count():\n    entries = Entry.objects.all()\n    for e in entries:\n        e.rating = 0\n        e.save()\n    if Entry.objects.filter({noted}\n        blog=None).count() > 0:\n        return len(entries)\n")
        };
        let versions = [
            text("# a note", ""),
            // Typing into a comment above the findings, then deleting from it: moved.
            text("# a longer note", ""),
            text("# a note", ""),
            // Typing `noqa` or `orm: ignore[` (a suppression may begin), then taking it out, and
            // the `#` of a new comment: parsed.
            text("# a noqa", ""),
            text("# a note", ""),
            text("# a orm: ignore[", ""),
            text("# a note", ""),
            text("# a note", "  #"),
            // Inside the `filter(...)` whose `.count() > 0` ORM103 rewrites, its fix quoting the
            // comment: parsed.
            text("# a note", "  # x"),
            // A line break ends the comment: parsed.
            text("# a\nnote", "  # x"),
        ];
        let found = typed_in_turn(&versions);
        let parsed: Vec<bool> = found.iter().map(|(_, parsed)| *parsed).collect();
        assert_eq!(
            parsed,
            [true, false, false, true, true, true, true, true, true, true]
        );
        let codes = &found[0].0;
        assert!(
            codes.contains(&"ORM103") && codes.contains(&"ORM302"),
            "{codes:?}"
        );
        assert!(found.iter().all(|(c, _)| c == codes));
    }

    #[test]
    fn findings_are_kept_while_typing_in_a_left_out_region_only_if_the_rest_parsed() {
        // The `(` left open at `qs =(` runs on into the rest of the module: leaving out the
        // `if` after it mends the module, but not once a line is typed into that `if`. Then the
        // module is linted as it parses, everything after the bracket inside an error node, so
        // `tail`'s finding goes (the editor must not keep it from the lint before).
        let before = "from blog.models import Entry\n\nqs =( Entry.objects.all()\nif qs:\n    pass\n\n\ndef count(blog):\n    entries = Entry.objects.filter(blog=blog)\n    return len(entries)\n\n\ndef show(blog):\n    for e in Entry.objects.all():\n        print(e)\n    return 1\n\n\ndef tail():\n    return bool(Entry.objects.filter(rating=1))\n";
        let after = before.replace("if qs:", "if    return list(qs)\n qs:");
        let found = lint_in_turn(&FileContext::standalone(), &[before.to_string(), after]);
        assert_eq!(found, [vec!["ORM102"], vec![]]);
    }

    #[test]
    fn a_caller_whose_broken_text_parses_otherwise_is_read_again() {
        // `use`'s text is the same in both versions, but a `)` typed further down makes error
        // recovery read its `export(...)` as an error rather than a call: `rows` is unknown
        // then, and the finding goes.
        let text = |close: &str| {
            format!("from blog.models import Entry\n\ndef export(rows):\n    for row in rows:\n        print(row.blog.name)\n\ndef view():\n    export(Entry.objects.all())\n\ndef use():\n    for e in []:\n        print(e)\n        s    export(Entry.objects.select_related('blog'))\nelf.entries = []\n\nclass Report:\n    def setUp(self):\n    {close}    self.entries = Entry.objects.all()\n")
        };
        let found = lint_in_turn(&blog_views(), &[text(""), text(")"), text("")]);
        assert_eq!(found, [vec!["ORM402"], vec![], vec!["ORM402"]]);
    }

    #[test]
    fn a_function_is_linted_again_when_another_definition_of_its_name_goes() {
        // A second `export` leaves the first one's parameter unknown: which one a call reaches
        // depends on more than the analyzer reads.
        let single = "from blog.models import Entry\n\ndef export(rows):\n    for row in rows:\n        print(row.blog.name)\n\ndef view():\n    export(Entry.objects.all())\n";
        let twice = format!("{single}\ndef export(rows):\n    return rows\n");
        let found = lint_in_turn(&blog_views(), &[twice.clone(), single.to_string(), twice]);
        assert_eq!(found, [vec![], vec!["ORM402"], vec![]]);
    }

    #[test]
    fn a_function_is_linted_again_when_a_function_it_calls_reads_otherwise() {
        // `entry.blog` is loaded after `blog_name(entry)` only while that reads it first thing.
        let before = "from blog.models import Entry\n\ndef blog_name(entry: Entry):\n    return entry.blog.name\n\ndef verify(entry: Entry):\n    name = blog_name(entry)\n    return name, entry.blog.id\n";
        let after = before.replace("return entry.blog.name", "return entry.pk");
        let found = lint_in_turn(
            &blog_views(),
            &[before.to_string(), after, before.to_string()],
        );
        assert_eq!(found, [vec![], vec!["ORM401"], vec![]]);
    }

    #[test]
    fn a_method_of_a_large_class_is_linted_again_when_what_it_reads_is_assigned_otherwise() {
        let mut view = "from blog.models import Entry\n\nclass Report:\n    def setUp(self):\n        self.entries = Entry.objects.all()\n\n    def total(self):\n        return len(self.entries)\n".to_string();
        let mut i = 0;
        while view.len() <= 2 * LARGE_CLASS {
            view.push_str(&format!("\n    def other_{i}(self):\n        return {i}\n"));
            i += 1;
        }
        let listed = view.replace("Entry.objects.all()", "list(Entry.objects.all())");
        let found = lint_in_turn(&blog_views(), &[view.clone(), listed, view]);
        assert_eq!(found, [vec!["ORM101"], vec![], vec!["ORM101"]]);
    }
}
