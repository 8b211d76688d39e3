//! The analysis: pure functions from (source, tree, settings) to diagnostics in byte offsets.
//! It never fails: what a rule cannot decide it leaves alone, and a rule that panics is caught,
//! logged once, and the other rules still report.

pub mod columns;
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
pub mod program;
mod returns;
pub mod rules;
pub mod scope;
pub mod serializers;
pub mod syntax;
pub mod templates;
pub mod writes;

use std::hash::{Hash, Hasher};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};

use rustc_hash::{FxHashMap, FxHashSet, FxHasher};
use tree_sitter::{Node, QueryCursor, StreamingIterator, Tree};

pub use diagnostic::{apply_edits, Applicability, Diagnostic, Edit, Fix, Place, Related, Severity};
pub(crate) use fix_all::count_errors;
pub use fix_all::{fix_all, fix_all_with, fix_region, loop_around, FixMode, Fixed};
use index::FileFacts;
pub use infer::FileContext;
use infer::{context_fingerprint, Semantics};
use rules::{Registry, RuleContext, REGISTRY};

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

/// Findings per top-level statement, keyed by the statement's text, relative to its start.
#[derive(Default)]
pub struct LintCache {
    context: u64,
    facts: index::FactsMemo,
    /// `returns::returns_key` of functions and methods, by their text's hash, and the hashes
    /// asked for by the current lint (the others are dropped after it).
    returns_keys: FxHashMap<u64, Option<u64>>,
    returns_keys_seen: FxHashSet<u64>,
    units: FxHashMap<u64, Arc<[Diagnostic]>>,
}

impl LintCache {
    fn returns_key(&mut self, definition: Node, source: &str) -> Option<u64> {
        let key = hash_of(&source[definition.byte_range()]);
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
        // A whole-file lint is an incremental one from an empty cache: the same statements,
        // checked in the same order (inference memoises what it has seen), so the editor and
        // `check` cannot disagree.
        let mut scratch = LintCache::default();
        let cache = cache.unwrap_or(&mut scratch);
        let root = tree.root_node();
        let facts = self.file.facts_memoised(source, tree, &mut cache.facts);
        let mut cursor = root.walk();
        let units: Vec<Node> = root
            .named_children(&mut cursor)
            .filter(|n| n.kind() != "comment")
            .collect();
        let context = self.module_context(source, &units, &facts, cache);
        if cache.context != context {
            cache.context = context;
            cache.units.clear();
        }
        let sem =
            Semantics::new(source, root, &self.file.index, &facts).with_program(&self.file.program);
        let mut diagnostics = self.lint_statements(&sem, units, cache);
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

    /// The findings of each top-level statement, from `cache` where its text is unchanged.
    fn lint_statements<'a>(
        &self,
        sem: &Semantics<'a>,
        units: Vec<Node<'a>>,
        cache: &mut LintCache,
    ) -> Vec<Diagnostic> {
        let mut seen = FxHashSet::default();
        let mut diagnostics = Vec::new();
        for unit in units {
            // Module-level code reads names that functions read too (a module-level QuerySet
            // evaluated inside a function): it depends on the whole file, so it is not cached.
            let self_contained = matches!(
                unit.kind(),
                "function_definition" | "class_definition" | "decorated_definition"
            );
            if !self_contained {
                diagnostics.extend(self.lint_unit(sem, unit));
            } else if let Some(class) = large_class(unit) {
                self.lint_large_class(sem, unit, class, cache, &mut seen, &mut diagnostics);
            } else {
                let key = hash_of(&sem.source[unit.byte_range()]);
                self.lint_cached(sem, unit, key, cache, &mut seen, &mut diagnostics);
            }
        }
        cache.units.retain(|key, _| seen.contains(key));
        cache.forget_unseen_returns_keys();
        diagnostics
    }

    /// What every statement's analysis may depend on besides its own text: the settings, the
    /// model index, the file's facts (its classes and imports), the module's top-level code
    /// other than functions and classes, and what its functions return (callers are typed from
    /// it).
    fn module_context(
        &self,
        source: &str,
        units: &[Node],
        facts: &FileFacts,
        cache: &mut LintCache,
    ) -> u64 {
        let mut hasher = FxHasher::default();
        self.settings.fingerprint().hash(&mut hasher);
        context_fingerprint(&self.file.index, facts).hash(&mut hasher);
        self.file.program.generation().hash(&mut hasher);
        for unit in units {
            match unit.kind() {
                "class_definition" => {}
                "function_definition" | "decorated_definition" => {
                    cache.returns_key(*unit, source).hash(&mut hasher)
                }
                _ => source[unit.byte_range()].hash(&mut hasher),
            }
        }
        hasher.finish()
    }

    /// The findings of `unit` from the cache under `key`, or linted and cached.
    fn lint_cached<'a>(
        &self,
        sem: &Semantics<'a>,
        unit: Node<'a>,
        key: u64,
        cache: &mut LintCache,
        seen: &mut FxHashSet<u64>,
        diagnostics: &mut Vec<Diagnostic>,
    ) {
        seen.insert(key);
        let start = unit.start_byte() as isize;
        if let Some(found) = cache.units.get(&key) {
            diagnostics.extend(found.iter().map(|d| d.shifted(start)));
            return;
        }
        let found = self.lint_unit(sem, unit);
        // Findings whose fix reaches outside the statement depend on more than its text.
        if found.iter().all(|d| within(d, unit)) {
            cache
                .units
                .insert(key, found.iter().map(|d| d.shifted(-start)).collect());
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
        cache: &mut LintCache,
        seen: &mut FxHashSet<u64>,
        diagnostics: &mut Vec<Diagnostic>,
    ) {
        let mut cursor = unit.walk();
        for decorator in unit
            .named_children(&mut cursor)
            .filter(|d| d.kind() == "decorator")
        {
            diagnostics.extend(self.lint_unit(sem, decorator));
        }
        diagnostics.extend(self.lint_matches(sem, class, Some(0)));
        let Some(body) = class.child_by_field_name("body") else {
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
        source[unit.start_byte()..body.start_byte()].hash(&mut hasher);
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
                _ => source[member.byte_range()].hash(&mut hasher),
            }
        }
        let context = hasher.finish();
        for member in members {
            if method_name(member, source).is_none() {
                diagnostics.extend(self.lint_unit(sem, member));
                continue;
            }
            let mut hasher = FxHasher::default();
            context.hash(&mut hasher);
            source[member.byte_range()].hash(&mut hasher);
            self.lint_cached(sem, member, hasher.finish(), cache, seen, diagnostics);
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
        let mut cursor = QueryCursor::new();
        cursor.set_max_start_depth(depth);
        let query = &self.registry.query;
        let mut matches = cursor.matches(query, unit, sem.source.as_bytes());
        while let Some(m) = matches.next() {
            match self.registry.rule_for_pattern(m.pattern_index) {
                Some(rule) => self.check(sem, rule, query, m, &mut out),
                None => loops.push(m.captures[0].node),
            }
        }
        // The outermost loops: a nested one starts before the one holding it ends. Each is
        // searched from its own node, so the cursor does not walk the statements before it.
        loops.sort_by_key(|l| (l.start_byte(), std::cmp::Reverse(l.end_byte())));
        loops.dedup_by(|inner, outer| inner.start_byte() < outer.end_byte());
        let query = &self.registry.loop_query;
        cursor.set_max_start_depth(None);
        for node in loops {
            let mut matches = cursor.matches(query, node, sem.source.as_bytes());
            while let Some(m) = matches.next() {
                let rule = self.registry.rule_for_loop_pattern(m.pattern_index);
                self.check(sem, rule, query, m, &mut out);
            }
        }
        out
    }

    fn check<'a>(
        &self,
        sem: &Semantics<'a>,
        rule: &'static rules::Rule,
        query: &tree_sitter::Query,
        m: &tree_sitter::QueryMatch<'_, 'a>,
        out: &mut Vec<Diagnostic>,
    ) {
        if !self.settings.is_enabled(rule.meta.code) {
            return;
        }
        let captures = self.registry.captures(query, m.captures);
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

/// Classes longer than this are linted method by method (see `lint_large_class`).
const LARGE_CLASS: usize = 16 * 1024;

/// The class of a top-level statement long enough to be linted method by method: a class, or
/// one under decorators (`@override_settings(...)` on a test case).
fn large_class(unit: Node) -> Option<Node> {
    let class = syntax::undecorated(unit);
    (class.kind() == "class_definition" && unit.byte_range().len() > LARGE_CLASS).then_some(class)
}

/// The name of a method (plain or decorated) among a class body's statements.
fn method_name<'s>(member: Node, source: &'s str) -> Option<&'s str> {
    let function = match member.kind() {
        "function_definition" => member,
        "decorated_definition" => member
            .child_by_field_name("definition")
            .filter(|d| d.kind() == "function_definition")?,
        _ => return None,
    };
    function
        .child_by_field_name("name")
        .map(|n| &source[n.byte_range()])
}

/// The names called as `self.<name>(` in `text`: one pass over a class's text.
fn self_calls(text: &str) -> FxHashSet<&str> {
    text.match_indices("self.")
        .filter_map(|(at, _)| {
            let rest = &text[at + "self.".len()..];
            let end = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            rest[end..].starts_with('(').then(|| &rest[..end])
        })
        .collect()
}

fn within(d: &Diagnostic, unit: Node) -> bool {
    let range = unit.byte_range();
    let inside = |r: &std::ops::Range<usize>| range.start <= r.start && r.end <= range.end;
    inside(&d.range)
        && d.fix
            .as_ref()
            .is_none_or(|f| f.edits.iter().all(|e| inside(&e.range)))
}

fn hash_of(text: &str) -> u64 {
    let mut hasher = FxHasher::default();
    text.hash(&mut hasher);
    hasher.finish()
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
}
