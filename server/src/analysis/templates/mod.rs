//! Django templates: which attribute chains a template reads on the variables its views pass
//! (`{% for post in posts %}{{ post.author.name }}`), through loops, `{% with %}`, and
//! `{% include %}`/`{% extends %}` and the workspace's inclusion tags (`{% post_list posts %}`)
//! up to `MAX_TEMPLATE_DEPTH` levels deep. ORM410 resolves those chains against the model index to find
//! relations loaded once per row.
//!
//! A read is kept as its context variable (`posts`) and a path from it, where `*` stands for
//! "each row of": `post.author.name` inside `{% for post in posts %}` is `posts` `* author name`.

pub mod lexer;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustc_hash::FxHashMap;

use super::diagnostic::Place;
use super::index::{FieldKind, ModelId, ModelIndex};
use crate::analysis::syntax::{
    field::{self, FieldOf},
    KindOf,
};
use lexer::{lex, Kind};

/// What one template file reads.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct TemplateFacts {
    pub reads: Vec<TemplateRead>,
    pub includes: Vec<Include>,
    /// `{% extends "base.html" %}`: the parent renders with the same context.
    pub extends: Option<String>,
    /// Other tags with positional arguments the template can follow (`{% post_list posts %}`):
    /// an inclusion tag of the workspace renders its own template with them.
    pub tags: Vec<TagUse>,
}

/// `{% name arg1 arg2 %}`: each positional argument as a chain of the template's context
/// (`None` for a literal or an expression the template cannot follow).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TagUse {
    pub name: String,
    pub arguments: Vec<Option<Chain>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TemplateRead {
    /// The context variable the chain starts at.
    pub root: String,
    /// Attribute names, `*` for each row of what precedes.
    pub path: Vec<String>,
    /// The expression as written: `post.author.name`.
    pub text: String,
    pub at: Place,
}

/// `{% include "name" with a=b only %}`: the names the included template sees, as chains of
/// the including one (a name bound to something the template cannot follow is `None`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Include {
    pub name: String,
    pub bindings: Vec<(String, Option<Chain>)>,
    /// With `only`, the included template sees nothing else of the context.
    pub only: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Chain {
    pub root: String,
    pub path: Vec<String>,
}

/// A name a template binds, and the chain of the including template it stands for.
type Binding = (String, Option<Chain>);

/// Names a loop, `{% with %}` or `{% include %}` binds, and which tag ends them.
struct Frame {
    end: &'static str,
    bindings: Vec<(String, Option<Chain>)>,
}

/// Reads the template's tags. Malformed input (unbalanced tags, junk) gives what can be read.
pub fn extract(source: &str) -> TemplateFacts {
    let place = |start: usize, end: usize| Place::new(source, start, end);
    let mut facts = TemplateFacts::default();
    let mut frames: Vec<Frame> = Vec::new();
    for token in lex(source) {
        let content = token.content;
        let words: Vec<(usize, &str)> = expression_words(content);
        let head = content.split_whitespace().next().unwrap_or_default();
        let read = |facts: &mut TemplateFacts, frames: &[Frame], offset: usize, word: &str| {
            if let Some(chain) = resolve(frames, word) {
                if !chain.path.is_empty() {
                    let start = token.content_start + offset;
                    facts.reads.push(TemplateRead {
                        root: chain.root,
                        path: chain.path,
                        text: word.to_string(),
                        at: place(start, start + word.len()),
                    });
                }
            }
        };
        if token.kind == Kind::Variable {
            for (offset, word) in words {
                read(&mut facts, &frames, offset, word);
            }
            continue;
        }
        match head {
            "for" => {
                let Some((targets, iterable)) = for_parts(content) else {
                    frames.push(Frame {
                        end: "endfor",
                        bindings: Vec::new(),
                    });
                    continue;
                };
                let rows = iterable.and_then(|(offset, word)| {
                    let mut chain = resolve(&frames, word)?;
                    chain.path.push("*".to_string());
                    let start = token.content_start + offset;
                    facts.reads.push(TemplateRead {
                        root: chain.root.clone(),
                        path: chain.path.clone(),
                        text: word.to_string(),
                        at: place(start, start + word.len()),
                    });
                    Some(chain)
                });
                // `{% for a, b in pairs %}` unpacks rows the analyzer does not follow.
                let bindings = match targets.as_slice() {
                    [one] => vec![(one.to_string(), rows)],
                    many => many.iter().map(|t| (t.to_string(), None)).collect(),
                };
                frames.push(Frame {
                    end: "endfor",
                    bindings,
                });
            }
            "with" => {
                let bindings = with_bindings(&frames, content);
                frames.push(Frame {
                    end: "endwith",
                    bindings,
                });
            }
            "endfor" | "endwith" => {
                if let Some(i) = frames.iter().rposition(|f| f.end == head) {
                    frames.truncate(i);
                }
            }
            "include" => {
                if let Some(include) = include(&frames, content) {
                    facts.includes.push(include);
                }
            }
            "extends" => facts.extends = quoted(content.split_whitespace().nth(1)),
            _ => {
                facts.tags.extend(tag_use(&frames, content));
                for (offset, word) in words {
                    read(&mut facts, &frames, offset, word);
                }
            }
        }
    }
    facts
}

/// The dotted names an expression reads, with their offsets: string literals, numbers, filters
/// (`|date`) and operators left out; filter arguments (`|default:post.title`) kept.
fn expression_words(content: &str) -> Vec<(usize, &str)> {
    let mut words = Vec::new();
    let bytes = content.as_bytes();
    let mut i = 0;
    let mut after_pipe = false;
    while i < bytes.len() {
        let c = bytes[i];
        if c == b'"' || c == b'\'' {
            i = content[i + 1..]
                .find(c as char)
                .map_or(bytes.len(), |j| i + j + 2);
            continue;
        }
        if c.is_ascii_alphabetic() || c == b'_' {
            let start = i;
            while i < bytes.len()
                && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_' || bytes[i] == b'.')
            {
                i += 1;
            }
            let word = content[start..i].trim_end_matches('.');
            // A filter's name is not a variable.
            if !after_pipe && !KEYWORDS.contains(&word) {
                words.push((start, word));
            }
            after_pipe = false;
            continue;
        }
        if c == b'|' {
            after_pipe = true;
        } else if !c.is_ascii_whitespace() {
            after_pipe = false;
        }
        i += 1;
    }
    words
}

const KEYWORDS: &[&str] = &[
    "and", "or", "not", "in", "is", "True", "False", "None", "as", "with", "only", "reversed",
];

/// The chain a dotted name in the template stands for: through the names the enclosing tags
/// bind, else from the context variable it names. `None` for a name bound to something the
/// analyzer does not follow.
fn resolve(frames: &[Frame], word: &str) -> Option<Chain> {
    let mut parts = word.split('.');
    let head = parts.next()?;
    let rest = parts.map(str::to_string);
    let bound = frames
        .iter()
        .rev()
        .flat_map(|f| f.bindings.iter().rev())
        .find(|(name, _)| name == head);
    let mut chain = match bound {
        Some((_, chain)) => chain.clone()?,
        None => Chain {
            root: head.to_string(),
            path: Vec::new(),
        },
    };
    chain.path.extend(rest);
    Some(chain)
}

/// A word of a tag and its offset in the tag's content.
type Word<'s> = (usize, &'s str);

/// Filters whose result holds some of the rows they are given, unchanged (`posts|slice:":5"`,
/// `posts|dictsort:"title"`): a loop over it reads each row as a loop over the rows would.
const ROW_KEEPING_FILTERS: &[&str] = &["slice", "dictsort", "dictsortreversed"];

/// `for x in items` / `for a, b in items reversed` / `for x in items|slice:":5"`: the targets and
/// the iterable word, when the iterable is a plain dotted name, maybe through filters that keep
/// its rows.
fn for_parts(content: &str) -> Option<(Vec<&str>, Option<Word<'_>>)> {
    let rest = content.strip_prefix("for")?;
    let (targets, iterable) = rest.split_once(" in ")?;
    let targets: Vec<&str> = targets.split(',').map(str::trim).collect();
    if targets.iter().any(|t| !is_name(t)) {
        return None;
    }
    let iterable = iterable.trim();
    let iterable = iterable
        .strip_suffix(" reversed")
        .unwrap_or(iterable)
        .trim();
    let offset = content.rfind(iterable)?;
    let mut filters = iterable.split('|');
    let iterable = filters.next().unwrap_or_default().trim_end();
    let rows_kept = filters.all(|f| {
        let name = f.split(':').next().unwrap_or_default().trim();
        ROW_KEEPING_FILTERS.contains(&name)
    });
    let plain = rows_kept
        && iterable
            .split('.')
            .all(|p| is_name(p) || p.bytes().all(|b| b.is_ascii_digit()) && !p.is_empty());
    Some((targets, plain.then_some((offset, iterable))))
}

fn is_name(word: &str) -> bool {
    let mut bytes = word.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// `with a=x.y b=z` or the older `with x.y as a`.
fn with_bindings(frames: &[Frame], content: &str) -> Vec<(String, Option<Chain>)> {
    let words: Vec<&str> = content.split_whitespace().skip(1).collect();
    if let [value, "as", name] = words.as_slice() {
        return vec![(name.to_string(), value_chain(frames, value))];
    }
    words
        .iter()
        .filter_map(|w| w.split_once('='))
        .map(|(name, value)| (name.to_string(), value_chain(frames, value)))
        .collect()
}

/// A plain dotted name's chain; anything else (a literal, a filter) is not followed.
fn value_chain(frames: &[Frame], value: &str) -> Option<Chain> {
    if value.split('.').all(is_name) {
        resolve(frames, value)
    } else {
        None
    }
}

fn include(frames: &[Frame], content: &str) -> Option<Include> {
    let words: Vec<&str> = content.split_whitespace().collect();
    let name = quoted(words.get(1).copied())?;
    let only = words.contains(&"only");
    let mut bindings: Vec<(String, Option<Chain>)> = if only {
        Vec::new()
    } else {
        frames.iter().flat_map(|f| f.bindings.clone()).collect()
    };
    if let Some(with) = words.iter().position(|w| *w == "with") {
        for word in &words[with + 1..] {
            if let Some((key, value)) = word.split_once('=') {
                bindings.push((key.to_string(), value_chain(frames, value)));
            }
        }
    }
    Some(Include {
        name,
        bindings,
        only,
    })
}

/// Django's own tags that take expressions: never an inclusion tag of the project.
const BUILTIN_TAGS: &[&str] = &[
    "if",
    "elif",
    "ifchanged",
    "firstof",
    "cycle",
    "url",
    "load",
    "block",
    "filter",
    "now",
    "widthratio",
    "regroup",
    "trans",
    "translate",
    "blocktrans",
    "blocktranslate",
    "static",
];

/// A tag with positional arguments, up to the first `key=value` or `as`, when one of them is
/// a chain of the context.
fn tag_use(frames: &[Frame], content: &str) -> Option<TagUse> {
    let mut words = content.split_whitespace();
    let name = words
        .next()
        .filter(|n| is_name(n) && !BUILTIN_TAGS.contains(n))?;
    let arguments: Vec<Option<Chain>> = words
        .take_while(|w| *w != "as" && !w.contains('='))
        .map(|w| value_chain(frames, w))
        .collect();
    arguments.iter().any(Option::is_some).then(|| TagUse {
        name: name.to_string(),
        arguments,
    })
}

/// A template name written as a string literal.
fn quoted(word: Option<&str>) -> Option<String> {
    let word = word?;
    let inner = word
        .strip_prefix('"')
        .and_then(|w| w.strip_suffix('"'))
        .or_else(|| word.strip_prefix('\'').and_then(|w| w.strip_suffix('\'')))?;
    (!inner.is_empty()).then(|| inner.to_string())
}

/// The workspace's templates by name (`blog/post_list.html`), from every `templates` folder.
#[derive(Debug, Default)]
pub struct TemplateIndex {
    by_name: FxHashMap<String, Vec<(PathBuf, Arc<TemplateFacts>)>>,
}

impl TemplateIndex {
    /// Templates by name, with the path they are reported at.
    pub fn new(files: impl IntoIterator<Item = (String, PathBuf, Arc<TemplateFacts>)>) -> Self {
        let mut by_name: FxHashMap<String, Vec<(PathBuf, Arc<TemplateFacts>)>> =
            FxHashMap::default();
        for (name, path, facts) in files {
            by_name.entry(name).or_default().push((path, facts));
        }
        for found in by_name.values_mut() {
            found.sort_by(|a, b| a.0.cmp(&b.0));
        }
        Self { by_name }
    }

    /// The one template with that name; none when two folders hold one (which one Django picks
    /// depends on settings the analyzer does not read).
    pub fn get(&self, name: &str) -> Option<(&Path, &TemplateFacts)> {
        match self.by_name.get(name)?.as_slice() {
            [(path, facts)] => Some((path.as_path(), facts.as_ref())),
            _ => None,
        }
    }
}

impl TemplateIndex {
    /// The names of the templates that include or extend `name`, directly or through others
    /// (up to `MAX_TEMPLATE_DEPTH` levels, as `needs` follows them): their views render it too.
    pub fn names_using(&self, name: &str) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        let mut level = vec![name.to_string()];
        for _ in 0..MAX_TEMPLATE_DEPTH {
            let next: Vec<String> = self
                .by_name
                .iter()
                .filter(|(using, found)| {
                    *using != name
                        && !names.contains(using)
                        && found.iter().any(|(_, facts)| {
                            level.iter().any(|used| {
                                facts.extends.as_deref() == Some(used.as_str())
                                    || facts.includes.iter().any(|i| i.name == *used)
                            })
                        })
                })
                .map(|(n, _)| n.clone())
                .collect();
            if next.is_empty() {
                break;
            }
            names.extend(next.iter().cloned());
            level = next;
        }
        names.sort();
        names
    }
}

/// `blog/templates/blog/list.html` -> `blog/list.html`: a path relative to the workspace root,
/// after the deepest template folder it is in — any `templates` folder, or a folder of `dirs`
/// (`DIRS` entries relative to the project, `frontend/views`).
pub fn template_name(path: &Path, dirs: &[String]) -> Option<String> {
    let parts: Vec<&str> = path
        .components()
        .filter_map(|c| match c {
            std::path::Component::Normal(s) => s.to_str(),
            _ => None,
        })
        .collect();
    let folders = std::iter::once("templates").chain(dirs.iter().map(String::as_str));
    let end = folders
        .filter_map(|folder| {
            let folder: Vec<&str> = folder.split('/').filter(|p| !p.is_empty()).collect();
            (folder.len()..parts.len())
                .rev()
                .find(|&end| parts[end - folder.len()..end] == folder[..])
        })
        .max()?;
    let rest = &parts[end..];
    (!rest.is_empty() && end > 0).then(|| rest.join("/"))
}

/// The folders `TEMPLATES = [{..., "DIRS": [BASE_DIR / "templates", ...]}]` names in a
/// settings module, as the last string of each entry (`BASE_DIR / "frontend" / "views"` gives
/// `views`; `os.path.join(BASE_DIR, "shared/templates")` gives `shared/templates`).
pub fn dirs_from_settings(source: &str, root: tree_sitter::Node) -> Vec<String> {
    let mut dirs = Vec::new();
    let mut cursor = root.walk();
    for statement in root.named_children(&mut cursor) {
        let Some((left, right)) = super::syntax::simple_assignment(statement) else {
            continue;
        };
        if super::syntax::text(left, source) != "TEMPLATES" {
            continue;
        }
        super::syntax::walk(right, |n| {
            let is_dirs = n.kind_name() == "pair"
                && n.field(&field::KEY)
                    .and_then(|k| super::index::string_value(k, source))
                    .is_some_and(|k| k == "DIRS");
            let entries = n
                .field(&field::VALUE)
                .filter(|v| is_dirs && matches!(v.kind_name(), "list" | "tuple"));
            if let Some(entries) = entries {
                let mut cursor = entries.walk();
                for entry in entries.named_children(&mut cursor) {
                    let mut last = None;
                    super::syntax::walk(entry, |s| {
                        if let Some(v) = super::index::string_value(s, source) {
                            last = Some(v);
                        }
                        true
                    });
                    dirs.extend(last.map(|d| d.trim_matches('/').to_string()));
                }
            }
            true
        });
    }
    dirs.retain(|d| !d.is_empty());
    dirs
}

/// What a context variable holds, as far as the view tells.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Value {
    /// A QuerySet of this model: the template iterates its rows.
    Rows(ModelId),
    /// One row of a QuerySet (a detail view's object): relations read through its own loops.
    Row(ModelId),
}

/// A relation loaded for every row: the lookup that loads it with the rows, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TemplateNeed {
    pub lookup: String,
    pub many: bool,
    /// The template that reads it (the rendered one, or one it includes or extends).
    pub template: String,
    pub path: PathBuf,
    pub at: Place,
    /// The expression as the template writes it: `post.author.name`.
    pub text: String,
}

/// How many levels of `{% include %}`, `{% extends %}` and inclusion tags are followed from the
/// template a view renders.
const MAX_TEMPLATE_DEPTH: usize = 4;

/// The reads of the template `name` and of those it includes, extends or renders through an
/// inclusion tag (up to `MAX_TEMPLATE_DEPTH` levels; a template that includes itself, maybe
/// through others, is not followed again), as chains of `name`'s context, each with the
/// template that writes it. `stack` holds the templates that led here.
fn reads_through(
    index: &ModelIndex,
    templates: &TemplateIndex,
    name: &str,
    stack: &mut Vec<String>,
) -> Vec<(String, PathBuf, TemplateRead)> {
    let Some((path, facts)) = templates.get(name) else {
        return Vec::new();
    };
    if stack.iter().any(|s| s == name) {
        return Vec::new();
    }
    let mut reads: Vec<(String, PathBuf, TemplateRead)> = facts
        .reads
        .iter()
        .map(|r| (name.to_string(), path.to_path_buf(), r.clone()))
        .collect();
    if stack.len() >= MAX_TEMPLATE_DEPTH {
        return reads;
    }
    // (the names an include binds, whether it passes `only` those, the template)
    type Bindings<'b> = Option<&'b [(String, Option<Chain>)]>;
    // An inclusion tag renders its template with only the dict it returns: each key its
    // function passes a parameter through to is bound to that tag argument.
    let tags: Vec<(Vec<Binding>, &str)> = facts
        .tags
        .iter()
        .filter_map(|used| {
            let tag = index.inclusion_tag(&used.name)?;
            let bindings = tag
                .passed
                .iter()
                .map(|(key, i)| (key.clone(), used.arguments.get(*i).cloned().flatten()))
                .collect();
            Some((bindings, tag.template.as_str()))
        })
        .collect();
    let related: Vec<(Bindings, bool, &str)> = facts
        .includes
        .iter()
        .map(|i| (Some(i.bindings.as_slice()), i.only, i.name.as_str()))
        .chain(facts.extends.as_deref().map(|e| (None, false, e)))
        .chain(tags.iter().map(|(b, t)| (Some(b.as_slice()), true, *t)))
        .collect();
    stack.push(name.to_string());
    for (bindings, only, other) in related {
        for (template, other_path, read) in reads_through(index, templates, other, stack) {
            let bound = bindings.and_then(|b| b.iter().rev().find(|(n, _)| *n == read.root));
            let rebased = match bound {
                Some((_, Some(chain))) => TemplateRead {
                    root: chain.root.clone(),
                    path: chain.path.iter().chain(&read.path).cloned().collect(),
                    text: read.text.clone(),
                    at: read.at.clone(),
                },
                Some((_, None)) => continue,
                None if only => continue,
                None => read.clone(),
            };
            reads.push((template, other_path, rebased));
        }
    }
    stack.pop();
    reads
}

/// The reads of the template `name` (and of what it includes, extends or renders through an
/// inclusion tag, `MAX_TEMPLATE_DEPTH` levels deep) on the context variable `variable`, resolved
/// against `value`'s model.
pub fn needs(
    index: &ModelIndex,
    templates: &TemplateIndex,
    name: &str,
    variable: &str,
    value: Value,
) -> Vec<TemplateNeed> {
    let reads = reads_through(index, templates, name, &mut Vec::new());
    let mut out: Vec<TemplateNeed> = Vec::new();
    for (template, path, read) in reads.into_iter().filter(|(_, _, r)| r.root == variable) {
        let Some((lookup, many)) = walk(index, value, &read.path) else {
            continue;
        };
        if out.iter().any(|n| n.lookup == lookup) {
            continue;
        }
        out.push(TemplateNeed {
            lookup,
            many,
            template,
            path,
            at: read.at,
            text: read.text,
        });
    }
    // A deeper lookup loads the shorter one too.
    let all: Vec<(String, bool)> = out.iter().map(|n| (n.lookup.clone(), n.many)).collect();
    out.retain(|n| {
        !all.iter()
            .any(|(l, many)| *many == n.many && l.starts_with(&format!("{}__", n.lookup)))
    });
    out
}

enum State {
    Rows(ModelId),
    Row(ModelId),
    /// A relation manager (many-to-many, reverse foreign key), and whether it was evaluated.
    Manager(ModelId),
}

/// Follows a read's path from a context value: the lookup of the relations it loads inside a
/// loop (one query per row each), with whether it crosses a many-valued relation. `None` when
/// nothing is loaded per row, or the read runs a query a lookup cannot remove (`.count`).
fn walk(index: &ModelIndex, value: Value, path: &[String]) -> Option<(String, bool)> {
    let mut state = match value {
        Value::Rows(m) => State::Rows(m),
        Value::Row(m) => State::Row(m),
    };
    let mut in_loop = false;
    // (relation, many, read inside a loop)
    let mut hops: Vec<(&str, bool, bool)> = Vec::new();
    let mut evaluated_last = true;
    for segment in path {
        state = match state {
            State::Rows(m) => match segment.as_str() {
                "all" => State::Rows(m),
                "*" => {
                    in_loop = true;
                    State::Row(m)
                }
                _ => return None,
            },
            State::Manager(m) => match segment.as_str() {
                "all" => {
                    evaluated_last = true;
                    State::Manager(m)
                }
                "*" => {
                    evaluated_last = true;
                    in_loop = true;
                    State::Row(m)
                }
                // `.count`, `.first`, ...: a query per row that prefetching does not remove.
                _ => return None,
            },
            State::Row(m) => {
                let model = index.model(m);
                let (target, many) = match model.field(segment) {
                    Some(f) => match (f.kind, f.target) {
                        (FieldKind::ForeignKey | FieldKind::OneToOne, Some(t)) => (t, false),
                        (FieldKind::ManyToMany, Some(t)) => (t, true),
                        // A generic key loads its object with a query of its own, which only
                        // `prefetch_related` batches; its model is known at run time only, so
                        // the walk ends there.
                        (FieldKind::GenericForeignKey, _) => {
                            hops.push((segment, true, in_loop));
                            break;
                        }
                        _ => break,
                    },
                    None => match model.reverse(segment) {
                        Some(r) => (r.source, r.many),
                        None => break,
                    },
                };
                hops.push((segment, many, in_loop));
                if many {
                    evaluated_last = false;
                    State::Manager(target)
                } else {
                    State::Row(target)
                }
            }
        };
    }
    // `{{ post.tags }}` prints the manager: no query.
    if !evaluated_last {
        hops.pop();
    }
    let last = hops.iter().rposition(|(_, _, in_loop)| *in_loop)?;
    let hops = &hops[..=last];
    let lookup = hops
        .iter()
        .map(|(n, _, _)| *n)
        .collect::<Vec<_>>()
        .join("__");
    Some((lookup, hops.iter().any(|(_, many, _)| *many)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reads(source: &str) -> Vec<String> {
        extract(source)
            .reads
            .iter()
            .map(|r| format!("{}:{}", r.root, r.path.join(".")))
            .collect()
    }

    #[test]
    fn loops_bind_rows_and_nest() {
        let source = "{% for post in posts %}\n  {{ post.author.name|upper }} {{ post.get_status_display }}\n  {% for c in post.comments.all %}{{ c.author }}{% empty %}none{% endfor %}\n{% endfor %}{{ post.title }}";
        assert_eq!(
            reads(source),
            [
                "posts:*",
                "posts:*.author.name",
                "posts:*.get_status_display",
                "posts:*.comments.all.*",
                "posts:*.comments.all.*.author",
                "post:title",
            ]
        );
        let facts = extract(source);
        assert_eq!(
            (facts.reads[1].at.line, facts.reads[1].at.bytes.clone()),
            (1, 5..21)
        );
    }

    #[test]
    fn loops_through_filters_that_keep_the_rows() {
        let source = "{% for p in posts|slice:\":5\" %}{{ p.author }}{% endfor %}{% for p in posts|dictsort:\"title\" reversed %}{{ p.blog }}{% endfor %}{% for p in posts|join:\",\" %}{{ p.editor }}{% endfor %}";
        assert_eq!(
            reads(source),
            ["posts:*", "posts:*.author", "posts:*", "posts:*.blog"]
        );
        assert_eq!(extract(source).reads[0].at.bytes, 12..17);
    }

    #[test]
    fn with_include_extends_and_literals() {
        let source = "{% extends 'base.html' %}{% for p in object_list %}{% with a=p.author %}{{ a.name }}{% endwith %}{% with p.blog as b %}{% if b.owner and 'x.y' %}{% endif %}{% endwith %}{% include \"row.html\" with post=p n=3 %}{% include 'x.html' only %}{% endfor %}{% for k, v in pairs %}{{ v.x }}{% endfor %}{{ p.author|default:p.editor }}";
        assert_eq!(
            reads(source),
            [
                "object_list:*",
                "object_list:*.author.name",
                "object_list:*.blog.owner",
                "pairs:*",
                "p:author",
                "p:editor",
            ]
        );
        let facts = extract(source);
        assert_eq!(facts.extends.as_deref(), Some("base.html"));
        assert!(facts.tags.is_empty(), "{:?}", facts.tags);
        let include = &facts.includes[0];
        assert_eq!(include.name, "row.html");
        let post = include.bindings.iter().find(|(n, _)| n == "post").unwrap();
        assert_eq!(
            post.1,
            Some(Chain {
                root: "object_list".into(),
                path: vec!["*".into()]
            })
        );
        assert!(facts.includes[1].only && facts.includes[1].bindings.is_empty());
        // Without `only`, the included template also sees the loop variable by its own name.
        assert!(include
            .bindings
            .iter()
            .any(|(n, c)| n == "p" && c == &post.1));
        let index = TemplateIndex::new([(
            "list.html".to_string(),
            PathBuf::from("list.html"),
            Arc::new(facts),
        )]);
        assert_eq!(index.names_using("row.html"), ["list.html"]);
        assert_eq!(index.names_using("base.html"), ["list.html"]);
        assert!(index.names_using("other.html").is_empty());
    }

    #[test]
    fn tags_keep_their_positional_arguments() {
        let facts = extract("{% load x %}{% for p in posts %}{% rows p.tags 'T' n=p as out %}{% endfor %}{% now 'Y' %}");
        let [tag] = facts.tags.as_slice() else {
            panic!("{:?}", facts.tags);
        };
        assert_eq!(tag.name, "rows");
        let chain = tag.arguments[0].as_ref().unwrap();
        assert_eq!(
            (chain.root.as_str(), chain.path.clone()),
            ("posts", vec!["*".to_string(), "tags".to_string()])
        );
        assert_eq!(tag.arguments.len(), 2);
        assert!(tag.arguments[1].is_none());
    }

    #[test]
    fn malformed_templates_give_what_can_be_read() {
        for junk in [
            "{% for %}{% for in %}{% endfor %}{% endfor %}{% endwith %}",
            "{% for x in %}{{ x.a }}",
            "{% with = %}{% include %}{% include 'a' with =b %}{% extends %}",
            "\u{0}\u{1}{{ \u{fffd}.a }}{% for é in ü %}{{ é.b }}",
        ] {
            extract(junk);
        }
        assert_eq!(
            reads("{% for x in posts %}{{ x.a }}"),
            ["posts:*", "posts:*.a"]
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 500, ..Default::default() })]
        /// Whatever a template file holds, reading it ends without panicking.
        #[test]
        fn any_text_reads(parts in proptest::collection::vec(proptest::sample::select(vec![
            "{{", "}}", "{%", "%}", "{#", "#}", "for ", " in ", "endfor", "with ", "=", " as ",
            "endwith", "include ", "extends ", "comment", "endcomment", "verbatim", "\"", "'",
            "|", ":", ".", "p", "posts", ",", "\n", " ", "é", "\u{0}", "0", "only",
        ]), 0..40)) {
            let source: String = parts.concat();
            extract(&source);
        }
    }

    #[test]
    fn template_names_are_paths_below_a_templates_folder() {
        let name = |p: &str| template_name(Path::new(p), &[]);
        assert_eq!(
            name("blog/templates/blog/list.html").as_deref(),
            Some("blog/list.html")
        );
        assert_eq!(name("templates/base.html").as_deref(), Some("base.html"));
        assert_eq!(name("blog/views.py"), None);
        assert_eq!(name("templates"), None);
        let dirs = ["frontend/views".to_string()];
        let named = |p: &str| template_name(Path::new(p), &dirs);
        assert_eq!(
            named("frontend/views/a/b.html").as_deref(),
            Some("a/b.html")
        );
        assert_eq!(named("views/a.html"), None);
    }

    #[test]
    fn dirs_are_read_from_the_templates_setting() {
        let source = "import os\nTEMPLATES = [{\"BACKEND\": \"x\", \"DIRS\": [BASE_DIR / \"frontend\" / \"views\", os.path.join(BASE_DIR, \"shared/\"), SOMEWHERE], \"OPTIONS\": {}}]\nDIRS = ['no']\n";
        let tree = crate::store::parse_python(source).unwrap();
        assert_eq!(
            dirs_from_settings(source, tree.root_node()),
            ["views", "shared"]
        );
    }
}
