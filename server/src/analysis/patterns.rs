//! The rules' candidate patterns (`queries/*.scm`), matched by one plain walk over a tree.
//!
//! The patterns are written in tree-sitter's query language and mean what tree-sitter says they
//! mean: a test checks every match against tree-sitter's own `QueryCursor` on every fixture,
//! whole and cut short. They are not run by `QueryCursor` because of what it costs: at every
//! node it visits it works out the node's field, siblings, points and in-progress states, whatever
//! the query asks, which made its walk cost three times a plain walk of the same trees (a fifth
//! of a cold `check`). Here the walk looks each node's kind up in a table of the patterns rooted
//! at that kind and tries only those, testing a capture's text as soon as it is bound.
//!
//! The subset the rules use: node patterns `(kind child...)` and `(_)`, fields `name: pattern`,
//! alternations `[...]`, captures `@name`, anchors `.`, and the predicates `#eq?`, `#any-of?`
//! and `#match?` on one capture's text. Anything else (quantifiers, negated fields, anonymous
//! nodes) is refused when the patterns are compiled, which happens once, at start-up.

use std::cell::RefCell;

use regex::Regex;
use tree_sitter::{Node, TreeCursor};

use super::syntax::kind_ids;

/// Compiled patterns; a pattern's index is its place in the source text.
pub struct Patterns {
    patterns: Vec<Pattern>,
    capture_names: Vec<String>,
    /// The patterns that may start at a node, by the node's kind id.
    rooted_at: Vec<Vec<usize>>,
}

/// Where and why a pattern's source is outside the subset.
#[derive(Debug)]
pub struct Refused {
    pub at: usize,
    pub what: String,
}

/// What a match binds: each capture's index (`Patterns::capture_index`) and node.
pub type Bound<'a> = [(u32, Node<'a>)];

struct Pattern {
    root: Step,
    start_byte: usize,
}

/// One node of a pattern, with the field it must sit in and the captures it binds.
struct Step {
    field: Option<u16>,
    captures: Vec<u32>,
    shape: Shape,
    /// The predicates on this step's captures: the node's text must pass each.
    tests: Vec<TextTest>,
}

enum Shape {
    /// `(kind children...)`; `kinds` is `None` for `(_)`, any named node.
    Node {
        kinds: Option<Vec<u16>>,
        children: Vec<Child>,
        /// A `.` after the last child: it must be the last named child.
        last_anchored: bool,
    },
    /// `[a b ...]`: any one of them.
    Alternation(Vec<Step>),
}

struct Child {
    /// A `.` before it: it is the first named child, or the named child right after the
    /// previous step's.
    immediate: bool,
    step: Step,
}

#[derive(Clone)]
enum TextTest {
    Eq(String),
    AnyOf(Vec<String>),
    Match(Regex),
}

impl TextTest {
    fn accepts(&self, text: &str) -> bool {
        match self {
            TextTest::Eq(expected) => text == expected,
            TextTest::AnyOf(choices) => choices.iter().any(|c| c == text),
            TextTest::Match(regex) => regex.is_match(text),
        }
    }
}

impl Patterns {
    /// Compiles `source`, or says where and why it is outside the subset.
    pub fn new(source: &str) -> Result<Self, Refused> {
        let language: tree_sitter::Language = tree_sitter_python::LANGUAGE.into();
        let mut parser = Parser {
            source,
            at: 0,
            language: &language,
            capture_names: Vec::new(),
        };
        let mut patterns = Vec::new();
        while parser.skip_blank() {
            let start_byte = parser.at;
            let mut predicates = Vec::new();
            let mut root = parser.step(&mut predicates)?;
            if root.field.is_some() {
                return Err(parser.error("a field on a pattern's root"));
            }
            if root_kinds(&root).is_empty() {
                return Err(parser.error("a pattern rooted at `(_)`"));
            }
            for (capture, test) in predicates {
                if !attach(&mut root, capture, &test) {
                    return Err(parser.error("a predicate on a capture the pattern lacks"));
                }
            }
            patterns.push(Pattern { root, start_byte });
        }
        let mut rooted_at = vec![Vec::new(); language.node_kind_count()];
        for (i, pattern) in patterns.iter().enumerate() {
            for kind in root_kinds(&pattern.root) {
                rooted_at[usize::from(kind)].push(i);
            }
        }
        Ok(Self {
            patterns,
            capture_names: parser.capture_names,
            rooted_at,
        })
    }

    pub fn pattern_count(&self) -> usize {
        self.patterns.len()
    }

    /// Where pattern `pattern` starts in the source it was compiled from.
    pub fn start_byte(&self, pattern: usize) -> usize {
        self.patterns[pattern].start_byte
    }

    pub fn capture_index(&self, name: &str) -> Option<u32> {
        let i = self.capture_names.iter().position(|n| n == name)?;
        Some(i as u32)
    }

    pub fn capture_name(&self, index: u32) -> &str {
        &self.capture_names[index as usize]
    }

    /// Calls `found` with each match in `node`'s subtree, in document order of where the match
    /// starts (then in pattern order), starting at most `max_start_depth` levels below `node`.
    /// Two ways of matching that bind the same nodes are one match, as in tree-sitter.
    pub fn for_each_match<'a>(
        &self,
        node: Node<'a>,
        source: &str,
        max_start_depth: Option<u32>,
        mut found: impl FnMut(usize, &Bound<'a>),
    ) {
        let mut cursor = node.walk();
        let matcher = Matcher {
            source,
            cursor: RefCell::new(node.walk()),
            listed: RefCell::default(),
        };
        let mut matches: Vec<Vec<(u32, Node<'a>)>> = Vec::new();
        let mut bound = Vec::new();
        let max_depth = max_start_depth.unwrap_or(u32::MAX);
        let mut depth = 0;
        loop {
            let current = cursor.node();
            let rooted = match current.is_named() {
                true => self.rooted_at.get(usize::from(current.kind_id())),
                false => None,
            };
            if let Some(rooted) = rooted.filter(|r| !r.is_empty()) {
                matcher.forget_listed();
                for &p in rooted {
                    matcher.step(&self.patterns[p].root, current, &mut bound, &mut |bound| {
                        if !matches.iter().any(|m| m == bound) {
                            matches.push(bound.clone());
                        }
                    });
                    for bound in matches.drain(..) {
                        found(p, &bound);
                    }
                }
            }
            if depth < max_depth && cursor.goto_first_child() {
                depth += 1;
                continue;
            }
            loop {
                if depth == 0 {
                    return;
                }
                if cursor.goto_next_sibling() {
                    break;
                }
                cursor.goto_parent();
                depth -= 1;
            }
        }
    }
}

/// Matches steps against nodes, calling a continuation once per way a step matches.
struct Matcher<'s, 'a> {
    source: &'s str,
    /// Reset to each node whose children a step lists.
    cursor: RefCell<TreeCursor<'a>>,
    /// The named children of the nodes listed since the walk reached its current node (each
    /// pattern rooted there lists the same few), with their fields, one node after another.
    listed: RefCell<Listed<'a>>,
}

#[derive(Default)]
struct Listed<'a> {
    children: Vec<(Node<'a>, Option<u16>)>,
    /// Which node's children `children[start..end]` are: (node id, start, end).
    spans: Vec<(usize, usize, usize)>,
}

type Continue<'k, 'a> = &'k mut dyn FnMut(&mut Vec<(u32, Node<'a>)>);

impl<'a> Matcher<'_, 'a> {
    fn step(
        &self,
        step: &Step,
        node: Node<'a>,
        bound: &mut Vec<(u32, Node<'a>)>,
        then: Continue<'_, 'a>,
    ) {
        if !step.tests.is_empty() {
            let text = self.source.get(node.byte_range()).unwrap_or("");
            if !step.tests.iter().all(|t| t.accepts(text)) {
                return;
            }
        }
        let mark = bound.len();
        bound.extend(step.captures.iter().map(|&c| (c, node)));
        match &step.shape {
            Shape::Alternation(alternatives) => {
                for alternative in alternatives {
                    self.step(alternative, node, bound, then);
                }
            }
            Shape::Node {
                kinds,
                children,
                last_anchored,
            } => {
                let kind_matches = match kinds {
                    Some(kinds) => kinds.contains(&node.kind_id()),
                    None => node.is_named(),
                };
                if kind_matches {
                    if children.is_empty() {
                        then(bound);
                    } else {
                        let named = self.named_children(node);
                        self.children(children, *last_anchored, named, 0, None, bound, then);
                    }
                }
            }
        }
        bound.truncate(mark);
    }

    /// Matches `children[step..]` against the named children after index `after`.
    #[allow(clippy::too_many_arguments)]
    fn children(
        &self,
        children: &[Child],
        last_anchored: bool,
        named: (usize, usize),
        step: usize,
        after: Option<usize>,
        bound: &mut Vec<(u32, Node<'a>)>,
        then: Continue<'_, 'a>,
    ) {
        let (first, end) = named;
        let Some(child) = children.get(step) else {
            if !last_anchored || after.is_some_and(|i| i + 1 == end) {
                then(bound);
            }
            return;
        };
        let from = after.map_or(first, |i| i + 1);
        let to = if child.immediate {
            (from + 1).min(end)
        } else {
            end
        };
        for i in from..to {
            let (node, field) = self.listed.borrow().children[i];
            if child.step.field.is_some() && field != child.step.field {
                continue;
            }
            self.step(&child.step, node, bound, &mut |bound| {
                self.children(
                    children,
                    last_anchored,
                    named,
                    step + 1,
                    Some(i),
                    bound,
                    then,
                )
            });
        }
    }

    /// Where `node`'s named children are in `listed.children`, listed if they are not yet.
    fn named_children(&self, node: Node<'a>) -> (usize, usize) {
        let mut listed = self.listed.borrow_mut();
        if let Some(&(_, start, end)) = listed.spans.iter().find(|(id, ..)| *id == node.id()) {
            return (start, end);
        }
        let start = listed.children.len();
        let mut cursor = self.cursor.borrow_mut();
        cursor.reset(node);
        if cursor.goto_first_child() {
            loop {
                let child = cursor.node();
                if child.is_named() {
                    listed
                        .children
                        .push((child, cursor.field_id().map(u16::from)));
                }
                if !cursor.goto_next_sibling() {
                    break;
                }
            }
        }
        let end = listed.children.len();
        listed.spans.push((node.id(), start, end));
        (start, end)
    }

    fn forget_listed(&self) {
        let mut listed = self.listed.borrow_mut();
        listed.children.clear();
        listed.spans.clear();
    }
}

/// The kinds a pattern can start at; a pattern rooted at `(_)` is refused when compiled.
fn root_kinds(step: &Step) -> Vec<u16> {
    match &step.shape {
        Shape::Node { kinds, .. } => kinds.clone().unwrap_or_default(),
        Shape::Alternation(alternatives) => alternatives.iter().flat_map(root_kinds).collect(),
    }
}

/// Adds `test` to every step of the pattern that binds `capture`; false if none does.
fn attach(step: &mut Step, capture: u32, test: &TextTest) -> bool {
    let mut found = false;
    if step.captures.contains(&capture) {
        step.tests.push(test.clone());
        found = true;
    }
    let nested: Vec<&mut Step> = match &mut step.shape {
        Shape::Node { children, .. } => children.iter_mut().map(|c| &mut c.step).collect(),
        Shape::Alternation(alternatives) => alternatives.iter_mut().collect(),
    };
    for inner in nested {
        found |= attach(inner, capture, test);
    }
    found
}

/// Reads the query subset, one token at a time.
struct Parser<'s, 'l> {
    source: &'s str,
    at: usize,
    language: &'l tree_sitter::Language,
    capture_names: Vec<String>,
}

impl Parser<'_, '_> {
    /// Skips blanks and `;` comments; false at the end of the source.
    fn skip_blank(&mut self) -> bool {
        loop {
            let rest = &self.source[self.at..];
            let trimmed = rest.trim_start();
            self.at += rest.len() - trimmed.len();
            match trimmed.strip_prefix(';') {
                Some(_) => self.at += trimmed.find('\n').unwrap_or(trimmed.len()),
                None => return !trimmed.is_empty(),
            }
        }
    }

    fn peek(&mut self) -> Option<char> {
        self.skip_blank();
        self.source[self.at..].chars().next()
    }

    fn error(&self, what: &str) -> Refused {
        Refused {
            at: self.at,
            what: what.to_string(),
        }
    }

    /// A name: a node kind, a field, a capture or a predicate.
    fn word(&mut self) -> &str {
        let rest = &self.source[self.at..];
        let len = rest
            .find(|c: char| !(c.is_alphanumeric() || "_-?!#".contains(c)))
            .unwrap_or(rest.len());
        self.at += len;
        &rest[..len]
    }

    fn capture(&mut self) -> u32 {
        self.at += 1; // '@'
        let name = self.word().to_string();
        let index = match self.capture_names.iter().position(|n| *n == name) {
            Some(i) => i,
            None => {
                self.capture_names.push(name);
                self.capture_names.len() - 1
            }
        };
        index as u32
    }

    fn string(&mut self) -> Result<String, Refused> {
        self.at += 1; // '"'
        let mut text = String::new();
        let mut chars = self.source[self.at..].char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    self.at += i + 1;
                    return Ok(text);
                }
                '\\' => match chars.next() {
                    Some((_, 'n')) => text.push('\n'),
                    Some((_, 't')) => text.push('\t'),
                    Some((_, escaped)) => text.push(escaped),
                    None => break,
                },
                c => text.push(c),
            }
        }
        Err(self.error("an unterminated string"))
    }

    /// `field: pattern @captures`.
    fn step(&mut self, predicates: &mut Vec<(u32, TextTest)>) -> Result<Step, Refused> {
        self.skip_blank();
        let start = self.at;
        self.word();
        let field = if self.source[self.at..].starts_with(':') {
            let name = &self.source[start..self.at];
            self.at += 1;
            let id = self
                .language
                .field_id_for_name(name)
                .ok_or_else(|| self.error(&format!("an unknown field `{name}`")))?;
            Some(u16::from(id))
        } else {
            self.at = start;
            None
        };
        let shape = match self.peek() {
            Some('(') => {
                self.at += 1;
                self.node(predicates)?
            }
            Some('[') => {
                self.at += 1;
                let mut alternatives = Vec::new();
                while self.peek() != Some(']') {
                    if self.peek().is_none() {
                        return Err(self.error("an unclosed `[`"));
                    }
                    alternatives.push(self.step(predicates)?);
                }
                self.at += 1;
                Shape::Alternation(alternatives)
            }
            _ => return Err(self.error("a pattern outside the subset")),
        };
        let mut captures = Vec::new();
        while self.peek() == Some('@') {
            captures.push(self.capture());
        }
        if self.source[self.at..].starts_with(['*', '+', '?']) {
            return Err(self.error("a quantifier"));
        }
        Ok(Step {
            field,
            captures,
            shape,
            tests: Vec::new(),
        })
    }

    /// The rest of `(kind children...)`, after its `(`.
    fn node(&mut self, predicates: &mut Vec<(u32, TextTest)>) -> Result<Shape, Refused> {
        self.skip_blank();
        let name = self.word().to_string();
        let kinds = match name.as_str() {
            "_" => None,
            kind => {
                let ids = kind_ids(kind);
                if ids.is_empty() {
                    return Err(self.error(&format!("an unknown named node `{kind}`")));
                }
                Some(ids)
            }
        };
        let mut children = Vec::new();
        let mut anchored = false;
        loop {
            match self.peek() {
                Some(')') => {
                    self.at += 1;
                    break;
                }
                Some('.') => {
                    self.at += 1;
                    anchored = true;
                }
                Some('(') if self.source[self.at + 1..].trim_start().starts_with('#') => {
                    self.at += 1;
                    predicates.push(self.predicate()?);
                }
                Some(_) => {
                    let step = self.step(predicates)?;
                    children.push(Child {
                        immediate: std::mem::take(&mut anchored),
                        step,
                    });
                }
                None => return Err(self.error("an unclosed `(`")),
            }
        }
        Ok(Shape::Node {
            kinds,
            children,
            last_anchored: anchored,
        })
    }

    /// The rest of `(#eq? @capture "text")`, after its `(`.
    fn predicate(&mut self) -> Result<(u32, TextTest), Refused> {
        self.skip_blank();
        let name = self.word().to_string();
        let capture = match self.peek() {
            Some('@') => self.capture(),
            _ => return Err(self.error("a predicate whose first argument is not a capture")),
        };
        let mut texts = Vec::new();
        loop {
            match self.peek() {
                Some('"') => texts.push(self.string()?),
                Some(')') => {
                    self.at += 1;
                    break;
                }
                _ => return Err(self.error("a predicate argument that is not a string")),
            }
        }
        let test = match (name.as_str(), texts.len()) {
            ("#eq?", 1) => TextTest::Eq(texts.remove(0)),
            ("#any-of?", n) if n > 0 => TextTest::AnyOf(texts),
            ("#match?", 1) => TextTest::Match(
                Regex::new(&texts[0]).map_err(|e| self.error(&format!("a bad regex: {e}")))?,
            ),
            _ => return Err(self.error(&format!("the predicate `{name}`"))),
        };
        Ok((capture, test))
    }
}
