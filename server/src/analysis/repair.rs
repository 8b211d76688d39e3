//! Half-typed code: one keystroke (`found = `, an open bracket or quote) can make tree-sitter's
//! error recovery fold a whole module, imports and every later definition, into one ERROR node.
//! The lint would then see no function or class (none of them cached, the module context new
//! on every keystroke) and re-run every rule over the whole file: a quarter of a second on a
//! module of 5,000 lines, on most keystrokes of a statement typed into it.
//!
//! So the lint reads such text with the definition being typed left out: the bytes of the
//! top-level definition holding the first syntax error become spaces (newlines kept, so every
//! offset and line stays where it was) and the rest parses as it did before the keystroke.
//! Findings inside the left-out definition are dropped (its code is half typed: they come back
//! when it parses), and so are fixes that would edit it. The editor and `check` both lint this
//! way, so they agree on broken text too.
//!
//! Inside a class, recovery more often keeps the class and lets the method being typed swallow
//! the methods after it (or cuts the class short there). Then that method alone is left out,
//! and keeps its name (`def name(self): ...`): a large class's other methods are cached under
//! the names beside them (`Linter::lint_large_class`), so they keep their findings instead of
//! being re-linted on every keystroke that opens a bracket.

use std::ops::Range;

use tree_sitter::{InputEdit, Node, Point, Tree};

use super::diagnostic::Diagnostic;
use super::noqa::may_suppress;
use crate::analysis::syntax::KindOf;

/// How many definitions are left out, one after another, before giving up on a file whose
/// errors are not in one place (then it is linted as it parses).
const MAX_LEFT_OUT: usize = 3;

/// The text to lint instead of a collapsed module, its tree, and what was left out of it.
pub struct Repaired {
    pub source: String,
    pub tree: Tree,
    left_out: Vec<Range<usize>>,
}

/// What the last lint of a document read (after its repair, if it had one): a text that
/// parses, whose tree the next repair reparses from; and what it left out and found, under
/// which context (`Linter::context_key`).
pub struct Linted {
    source: String,
    tree: Tree,
    left_out: Vec<Range<usize>>,
    context: u64,
    findings: Vec<Diagnostic>,
    /// The one definition left out, as typed since, parsed on its own (what the next
    /// keystroke's is reparsed from).
    typed: Option<(String, Tree)>,
    /// The definition after it, as last checked, and whether it parses on its own.
    next: Option<(String, bool)>,
}

/// What the lint of a document's new text can tell before the document is parsed.
pub enum Prelint {
    /// Typing went into one definition, which on its own holds an error that swallows the
    /// definition after it: the document's tree is taken to collapse around it (`collapsed`
    /// would give this range), and the text is linted with it left out without parsing the
    /// document. Whether tree-sitter's recovery folds the module is decided by the whole
    /// text, so this is a prediction, to be checked against the document's tree once it is
    /// parsed (`crate::analysis::prediction_holds`).
    Collapsed(Range<usize>),
    /// The definition the last lint left out parses again, and nothing else changed: the
    /// document is best parsed from its tree before the error (`DocumentSnapshot::tree_mended`).
    Mended,
    /// Only a comment changed, nowhere a finding reaches or a suppression may be
    /// (`Linted::findings_if_only_a_comment_changed`): the last lint's findings, moved.
    Moved(Vec<Diagnostic>),
    /// The lint needs the document's tree.
    Parse,
}

impl Linted {
    /// What a lint read and found. What `before`, the lint before it, parsed of a definition on
    /// its own is kept: the next keystroke bringing a bracket reparses it from there (about
    /// 0.3 ms for a method of QuerySet and the one after it, against 0.5 ms from nothing) and
    /// finds the definition after it already checked.
    pub fn new(
        source: &str,
        tree: &Tree,
        repaired: Option<&Repaired>,
        context: u64,
        findings: &[Diagnostic],
        before: Option<Linted>,
    ) -> Self {
        let (typed, next) = before.map_or((None, None), |before| (before.typed, before.next));
        Self {
            source: source.to_string(),
            tree: tree.clone(),
            left_out: repaired.map(|r| r.left_out.clone()).unwrap_or_default(),
            context,
            findings: findings.to_vec(),
            typed,
            next,
        }
    }

    /// What the lint of `source` can tell from its text alone, when it differs from what the
    /// last lint read only inside one definition: the one that lint left out (the module
    /// collapsed around it), or, after a lint that left nothing out, the one an edit bringing a
    /// bracket or quote went into. That definition is reparsed on its own, with the one after
    /// it (the error may be in how the two meet, and whether recovery swallows the next one is
    /// what makes the collapse): a few milliseconds for a class of 20 KB, from its last tree,
    /// where reparsing the module costs tens of milliseconds on a large one when the keystroke
    /// opens a bracket or quote (tree-sitter redoes its recovery over the rest of the module).
    /// - Only a comment changed, after a lint that left nothing out: `Moved`, the last findings
    ///   (`findings_if_only_a_comment_changed`).
    /// - It parses, after a lint that left it out: `Mended`, the document is best parsed from
    ///   its tree before the error.
    /// - Its error swallows the next definition: `Collapsed`, the module is taken to collapse
    ///   around it (a prediction, see `Prelint::Collapsed`).
    pub fn prelint(&mut self, source: &str, context: impl Fn() -> u64) -> Prelint {
        let typing = match self.left_out.as_slice() {
            [] => {
                // One comparison of the texts for both questions.
                let ends = common_ends(&self.source, source);
                if let Some(found) = self.findings_if_only_a_comment_changed(source, ends, &context)
                {
                    return Prelint::Moved(found);
                }
                self.opened(source, ends)
            }
            [before] => self.typed_inside(before.clone(), source),
            _ => None,
        };
        let Some(now) = typing else {
            return Prelint::Parse;
        };
        if context() != self.context {
            return Prelint::Parse;
        }
        // The region must still be one definition, as `collapsed` would find it: a top-level
        // one, or a method at the indentation of its first line.
        let indent = indentation(source, now.start);
        let one_definition = {
            let mut starts = definition_starts(source, indent, now.clone());
            starts
                .next()
                .is_some_and(|def| with_decorators(source, indent, def) == now.start)
                && starts.next().is_none()
        };
        if !one_definition {
            return Prelint::Parse;
        }
        // With the definition after it, if any (a method: in its class).
        let end = match indent {
            "" => source.len(),
            _ => class_end(source, now.end.saturating_sub(1)),
        };
        let next_end = definition_starts(source, indent, now.end..end)
            .nth(1)
            .map_or(end, |at| with_decorators(source, indent, at));
        // A method parses on its own inside a class.
        let header = match indent {
            "" => "",
            _ => "class _:\n",
        };
        let typed = format!("{header}{}", &source[now.start..next_end]);
        let tree = match self.typed.take() {
            Some((old_text, old_tree)) => reparse(&old_text, &old_tree, &typed),
            None => crate::store::parse_python(&typed),
        };
        let Some(tree) = tree else {
            return Prelint::Parse;
        };
        let root = tree.root_node();
        let alone = header.len()..header.len() + now.len();
        let answer = if !root.has_error() && !self.left_out.is_empty() {
            Prelint::Mended
        } else if root.has_error()
            && error_outside(root, &alone)
            && self.next_parses_alone(&format!("{header}{}", &source[now.end..next_end]))
        {
            // The definition after it parses on its own: the error reaching it comes from the
            // one being typed, not from where the text was cut (a string of the next method
            // with lines at the first column ends the class early for `class_end`).
            Prelint::Collapsed(now)
        } else {
            Prelint::Parse
        };
        self.typed = Some((typed, tree));
        answer
    }

    /// Whether `next`, the definition after the one being typed, parses on its own: parsed
    /// once while it stays the same (typing goes on in the definition before it).
    fn next_parses_alone(&mut self, next: &str) -> bool {
        if let Some((text, parses)) = &self.next {
            if text == next {
                return *parses;
            }
        }
        let parses = crate::store::parse_python(next).is_some_and(|t| !t.root_node().has_error());
        self.next = Some((next.to_string(), parses));
        parses
    }

    /// The range of `source` of the definition the last lint left out (`before` in what it
    /// read), when `source` differs from that only inside it.
    fn typed_inside(&self, before: Range<usize>, source: &str) -> Option<Range<usize>> {
        let end = (before.end + source.len()).checked_sub(self.source.len())?;
        let now = before.start..end;
        let same_outside = now.start <= now.end
            && source.get(..now.start) == self.source.get(..before.start)
            && source.get(now.end..) == self.source.get(before.end..);
        same_outside.then_some(now)
    }

    /// The definition of `source` (a method of a top-level class, else a top-level one) that
    /// holds all that differs from what the last lint read, when what differs holds a bracket
    /// or quote: the edits that can open one. Other edits are left to the parse, which is
    /// cheap for them, rather than paying a reparse of the definition on every keystroke.
    fn opened(&self, source: &str, (prefix, suffix): (usize, usize)) -> Option<Range<usize>> {
        let (old, new) = (self.source.as_bytes(), source.as_bytes());
        let (removed, inserted) = (
            &old[prefix..old.len() - suffix],
            &new[prefix..new.len() - suffix],
        );
        let brackets = |changed: &[u8]| changed.iter().any(|b| b"()[]{}'\"".contains(b));
        if !brackets(removed) && !brackets(inserted) {
            return None;
        }
        // Closing brackets typed into a text holding an error most likely close what it left
        // open (had that swallowed the definitions after it, the last lint would have left one
        // out): the document's parse settles it, cheaply then, and a reparse of the definition
        // here would be wasted. Into a text without error, a closing bracket matches nothing,
        // and recovery may then fold the module: that is asked here.
        let opening = inserted.iter().any(|b| b"([{'\"".contains(b));
        if removed.is_empty() && !opening && self.tree.root_node().has_error() {
            return None;
        }
        let changed = prefix..new.len() - suffix;
        // A class whose method the text does not tell (a string at the first column ends it
        // early for `class_end`) is not taken whole: it can be most of the module.
        let definition = method_at(source, changed.start).or_else(|| {
            let definition = top_level_definition_at(source, changed.start);
            definition_starts(source, "", definition.clone())
                .next()
                .is_some_and(|def| !source[def..].starts_with("class "))
                .then_some(definition)
        })?;
        (definition.start <= changed.start && changed.end < definition.end).then_some(definition)
    }

    /// The last lint's findings, moved, when `source` differs from what it read only inside
    /// the one definition it left out, which still holds the first error and still swallows
    /// the rest (`now`, `collapsed` of `source`): a repair would read the same code around it again and find the same. Typing
    /// inside an open bracket keeps a module in that state for many keystrokes, and the repair's
    /// reparse costs tens of milliseconds on a large module (tree-sitter reparses the
    /// definitions after the edit), where this costs a comparison of the texts.
    pub fn findings_if_same_outside(
        &self,
        source: &str,
        now: &Range<usize>,
        context: u64,
    ) -> Option<Vec<Diagnostic>> {
        let [before] = self.left_out.as_slice() else {
            return None;
        };
        if context != self.context {
            return None;
        }
        // What was linted outside the region must have parsed: text in a bracket left open
        // before the region parses otherwise when the region's blank stand-in grows a line (a
        // repair that held then fails now, and the broken tree is linted).
        if self.tree.root_node().has_error() {
            return None;
        }
        if self.typed_inside(before.clone(), source).as_ref() != Some(now) {
            return None;
        }
        let delta = now.end as isize - before.end as isize;
        Some(
            self.findings
                .iter()
                .map(|d| d.shifted_from(before.end, delta))
                .collect(),
        )
    }

    /// The last lint's findings, moved, when `source` is the text it read or differs from it
    /// only inside one comment, after its `#`, by text without line breaks, and the comment
    /// holds no suppression word (`noqa`, `orm: ignore[`) before or after. No token but the
    /// comment changes, and a comment is read for suppressions only, so a lint would find the
    /// same, further on by what the comment grew.
    /// Typing a comment (or in one) then costs a comparison of the texts, not a parse and a
    /// lint of the definition around it. Only after a lint that left nothing out and parsed
    /// without error, and only when no finding (its range, its fix's edits, anything between)
    /// reaches the comment, and none quotes a `#` in its message or fix: a fix rewriting code
    /// around the comment carries its old text.
    fn findings_if_only_a_comment_changed(
        &self,
        source: &str,
        (prefix, suffix): (usize, usize),
        context: impl Fn() -> u64,
    ) -> Option<Vec<Diagnostic>> {
        if !self.left_out.is_empty() || self.tree.root_node().has_error() {
            return None;
        }
        let (old, new) = (self.source.as_bytes(), source.as_bytes());
        let old_end = old.len() - suffix;
        let new_end = new.len() - suffix;
        let (removed, inserted) = (&old[prefix..old_end], &new[prefix..new_end]);
        // A line break ends the comment; other control characters are left to the parser.
        let plain = |bytes: &[u8]| bytes.iter().all(|b| !b.is_ascii_control() || *b == b'\t');
        if !plain(removed) || !plain(inserted) {
            return None;
        }
        if removed.is_empty() && inserted.is_empty() {
            return (context() == self.context).then(|| self.findings.clone());
        }
        let comment = self
            .tree
            .root_node()
            .descendant_for_byte_range(prefix.saturating_sub(1), old_end.max(prefix))?;
        if comment.kind_name() != "comment"
            || comment.start_byte() >= prefix
            || comment.end_byte() < old_end
        {
            return None;
        }
        let delta = new.len() as isize - old.len() as isize;
        let new_comment_end = comment.end_byte().checked_add_signed(delta)?;
        if may_suppress(&old[comment.byte_range()])
            || may_suppress(&new[comment.start_byte()..new_comment_end])
        {
            return None;
        }
        let reaches = |d: &Diagnostic| {
            let fixed = d
                .fix
                .as_ref()
                .and_then(|f| f.span())
                .unwrap_or(d.range.clone());
            d.range.start.min(fixed.start) <= old_end && prefix <= d.range.end.max(fixed.end)
        };
        let quotes_a_comment = |d: &Diagnostic| {
            d.message.contains('#')
                || d.related.iter().any(|r| r.message.contains('#'))
                || d.fix.as_ref().is_some_and(|f| {
                    f.title.contains('#') || f.edits.iter().any(|e| e.content.contains('#'))
                })
        };
        if self
            .findings
            .iter()
            .any(|d| reaches(d) || quotes_a_comment(d))
        {
            return None;
        }
        if context() != self.context {
            return None;
        }
        Some(
            self.findings
                .iter()
                .map(|d| d.shifted_from(old_end, delta))
                .collect(),
        )
    }
}

/// `source` with the definitions holding its syntax errors left out, starting with `region`
/// (`collapsed` of its tree), when leaving them out gives a tree without a collapse; `None` when
/// it does not. `before` is the last lint's, if any: the text is reparsed from it, else from
/// `tree`, the tree of `source` (`None` when it is not parsed: then `before` is needed).
pub fn repaired(
    source: &str,
    tree: Option<&Tree>,
    region: Range<usize>,
    before: Option<&Linted>,
) -> Option<Repaired> {
    // A method left out may not be all that broke its class: then the class is.
    repaired_from(source, tree, region.clone(), before).or_else(|| {
        let definition = top_level_definition_at(source, region.start);
        (definition != region)
            .then(|| repaired_from(source, tree, definition, before))
            .flatten()
    })
}

fn repaired_from(
    source: &str,
    tree: Option<&Tree>,
    mut region: Range<usize>,
    before: Option<&Linted>,
) -> Option<Repaired> {
    let mut text = source.to_string();
    let mut left_out = Vec::new();
    leave_out(&mut text, region.clone());
    left_out.push(region);
    // Reparsed from the text linted before this keystroke (it parsed, and the definition left
    // out is about all that differs from it), which costs a few milliseconds; else from the
    // broken tree, whose statements after the error mostly parse anew.
    let mut tree = match before {
        Some(before) => reparse(&before.source, &before.tree, &text)?,
        None => reparse(source, tree?, &text)?,
    };
    for _ in 1..MAX_LEFT_OUT {
        let Some(next) = collapsed(&text, tree.root_node()) else {
            return Some(Repaired {
                source: text,
                tree,
                left_out,
            });
        };
        region = next;
        let broken = text.clone();
        leave_out(&mut text, region.clone());
        left_out.push(region);
        tree = reparse(&broken, &tree, &text)?;
    }
    None
}

/// `text` parsed from `old`, the tree of `old_text`.
fn reparse(old_text: &str, old: &Tree, text: &str) -> Option<Tree> {
    let (prefix, suffix) = common_ends(old_text, text);
    let mut tree = old.clone();
    tree.edit(&InputEdit {
        start_byte: prefix,
        old_end_byte: old_text.len() - suffix,
        new_end_byte: text.len() - suffix,
        start_position: point_at(old_text, prefix),
        old_end_position: point_at(old_text, old_text.len() - suffix),
        new_end_position: point_at(text, text.len() - suffix),
    });
    crate::store::reparse_python(text, &tree)
}

/// How many bytes `old` and `new` share at their start, and then at their end: what lies
/// between differs.
fn common_ends(old: &str, new: &str) -> (usize, usize) {
    let (old, new) = (old.as_bytes(), new.as_bytes());
    let prefix = shared_start(old, new);
    (prefix, shared_end(&old[prefix..], &new[prefix..]))
}

/// Blocks compared as slices (one `memcmp` each) before the bytes of the last one: the texts
/// are compared whole on keystrokes, where a loop over bytes costs tenths of a millisecond on a
/// large module.
const COMPARED_BLOCK: usize = 256;

/// How many bytes `a` and `b` share at their start.
fn shared_start(a: &[u8], b: &[u8]) -> usize {
    let shorter = a.len().min(b.len());
    let mut same = 0;
    while same + COMPARED_BLOCK <= shorter
        && a[same..same + COMPARED_BLOCK] == b[same..same + COMPARED_BLOCK]
    {
        same += COMPARED_BLOCK;
    }
    same + a[same..shorter]
        .iter()
        .zip(&b[same..shorter])
        .take_while(|(x, y)| x == y)
        .count()
}

/// How many bytes `a` and `b` share at their end.
fn shared_end(a: &[u8], b: &[u8]) -> usize {
    let shorter = a.len().min(b.len());
    fn block(text: &[u8], same: usize) -> &[u8] {
        &text[text.len() - same - COMPARED_BLOCK..text.len() - same]
    }
    let mut same = 0;
    while same + COMPARED_BLOCK <= shorter && block(a, same) == block(b, same) {
        same += COMPARED_BLOCK;
    }
    same + a[..a.len() - same]
        .iter()
        .rev()
        .zip(b[..b.len() - same].iter().rev())
        .take_while(|(x, y)| x == y)
        .count()
}

impl Repaired {
    /// The findings of the repaired text that hold for the real one: none inside what was left
    /// out, and no fix editing it.
    pub fn keep_outside(&self, mut found: Vec<Diagnostic>) -> Vec<Diagnostic> {
        let touches = |r: &Range<usize>| {
            self.left_out
                .iter()
                .any(|out| r.start < out.end && out.start < r.end.max(r.start + 1))
        };
        found.retain(|d| !touches(&d.range));
        for d in &mut found {
            if d.fix
                .as_ref()
                .is_some_and(|f| f.edits.iter().any(|e| touches(&e.range)))
            {
                d.fix = None;
            }
        }
        found
    }
}

/// The definition the lint leaves out of `source`, if any: the one holding the first syntax
/// error of a top-level statement that spans more than one top-level definition's start
/// (recovery swallowed the definitions after it), or the first error of all when it lies
/// outside the method holding it (the method swallowed the ones after it, or the class was cut
/// short there and they fell to the top level). Inside a top-level class that definition is
/// the method holding the error (`method_at`), else the top-level definition with the
/// decorators above it.
pub fn collapsed(source: &str, root: Node) -> Option<Range<usize>> {
    if !root.has_error() {
        return None;
    }
    let mut cursor = root.walk();
    let swallowing = root.children(&mut cursor).find(|child| {
        child.has_error()
            && definition_starts(source, "", child.byte_range())
                .nth(1)
                .is_some()
    });
    let error = break_before(source, first_error(swallowing.unwrap_or(root)));
    match (swallowing, method_at(source, error)) {
        (_, Some(method)) if swallowing.is_some() || error_outside(root, &method) => Some(method),
        (Some(_), _) => Some(top_level_definition_at(source, error)),
        _ => None,
    }
}

fn top_level_definition_at(source: &str, at: usize) -> Range<usize> {
    definition_at(source, "", 0..source.len(), at)
}

/// The definition starting with `indent` in `range` that holds offset `at`: from its
/// decorators to the next one's (or to the end of `range`). Before the first one, from the
/// line of `at`.
fn definition_at(source: &str, indent: &str, range: Range<usize>, at: usize) -> Range<usize> {
    let starts: Vec<usize> = definition_starts(source, indent, range.clone())
        .map(|def| with_decorators(source, indent, def))
        .collect();
    let next = starts.partition_point(|s| *s <= at);
    let start = next
        .checked_sub(1)
        .map_or_else(|| line_start(source, at), |k| starts[k]);
    let end = starts.get(next).copied().unwrap_or(range.end);
    start..end
}

/// The method (or other member definition) of a top-level class that holds offset `at`.
fn method_at(source: &str, at: usize) -> Option<Range<usize>> {
    let definition = top_level_definition_at(source, at);
    let class = definition_starts(source, "", definition)
        .next()
        .filter(|start| source[*start..].starts_with("class "))?;
    let class = class..class_end(source, class);
    let indent = member_indent(source, class.clone())?;
    let first_member = definition_starts(source, indent, class.clone()).next()?;
    if at < with_decorators(source, indent, first_member) || at >= class.end {
        return None;
    }
    Some(definition_at(source, indent, class, at))
}

/// The indentation of the line starting at `at`.
fn indentation(source: &str, at: usize) -> &str {
    let line = &source[at..];
    &line[..line.len() - line.trim_start_matches([' ', '\t']).len()]
}

/// Where the top-level statement holding offset `at` ends: the first line after `at` that
/// starts at the first column with code (not a comment, nor the bracket closing a header).
fn class_end(source: &str, at: usize) -> usize {
    memchr::memchr_iter(b'\n', &source.as_bytes()[at..])
        .map(|i| at + i + 1)
        .find(|line| {
            source.as_bytes()[*line..]
                .first()
                .is_some_and(|b| !b" \t\r\n#)".contains(b))
        })
        .unwrap_or(source.len())
}

/// The indentation of a class's member definitions: the shallowest one of a line in `class`
/// that starts a definition or a decorator.
fn member_indent(source: &str, class: Range<usize>) -> Option<&str> {
    ["def ", "class ", "@"]
        .into_iter()
        .flat_map(|word| lines_starting_with(source, class.clone(), word))
        .filter(|(_, indent)| !indent.is_empty())
        .min_by_key(|(line, indent)| (indent.len(), *line))
        .map(|(_, indent)| indent)
}

/// Whether a syntax error under `node` lies outside `range`.
fn error_outside(node: Node, range: &Range<usize>) -> bool {
    if range.start <= node.start_byte() && node.end_byte() <= range.end {
        return false;
    }
    if node.is_error() || node.is_missing() {
        return true;
    }
    let mut cursor = node.walk();
    let outside = node
        .children(&mut cursor)
        .filter(|child| child.has_error() || child.is_missing())
        .any(|child| error_outside(child, range));
    outside
}

/// Where the break an error at `error` shows lies. An error at the first word of a definition
/// (or of its decorators) shows that definition whole and what came before it unfinished: an
/// open bracket ran on into its `def`, which recovery could not take as an argument. The break
/// is then just before that definition.
fn break_before(source: &str, error: usize) -> usize {
    let line = line_start(source, error);
    let indent = indentation(source, line);
    let code = &source[line + indent.len()..];
    let at_definition = line + indent.len() == error
        && ["def ", "async def ", "class ", "@"]
            .iter()
            .any(|keyword| code.starts_with(keyword));
    if !at_definition {
        return error;
    }
    with_decorators(source, indent, line)
        .checked_sub(1)
        .unwrap_or(error)
}

/// The start of the decorators written right above the definition starting at `at`, at its
/// indentation `indent`, also those whose arguments run over several lines
/// (`@override_settings(\n    DEBUG=True,\n)`).
fn with_decorators(source: &str, indent: &str, at: usize) -> usize {
    let mut start = at;
    let mut line = at;
    while line > 0 {
        line = line_start(source, line - 1);
        let Some(code) = source[line..].strip_prefix(indent) else {
            break;
        };
        if code.starts_with('@') {
            start = line;
        } else if !code.starts_with([' ', '\t', ')', ']', '}']) {
            // Not inside a decorator's brackets (deeper lines, or the bracket closing them).
            break;
        }
    }
    start
}

/// Where the first error under `node` starts: its first descendant that is an error node or
/// a missing token (or the start of the innermost node holding one, if none is found). An
/// error node that wraps whole statements, the last of them holding the error, is looked into:
/// recovery wraps so the statements before a break (a module's only class cut short by the
/// method being typed, or the methods before that one), and the break is inside.
fn first_error(node: Node) -> usize {
    let mut node = node;
    'descend: loop {
        let mut cursor = node.walk();
        for child in node.children(&mut cursor) {
            if child.is_missing() || (child.is_error() && !wraps_statements(child)) {
                return child.start_byte();
            }
            if child.has_error() {
                node = child;
                continue 'descend;
            }
        }
        return node.start_byte();
    }
}

/// Whether an error node holds whole statements up to one holding an error.
fn wraps_statements(error: Node) -> bool {
    let is_statement = |node: Node| {
        let kind = node.kind_name();
        node.is_named()
            && (kind.ends_with("_statement") || kind.ends_with("_definition") || kind == "comment")
    };
    let mut cursor = error.walk();
    let mut children = error.children(&mut cursor);
    children
        .find(|child| child.has_error() || !is_statement(*child))
        .is_some_and(|child| child.has_error() && !child.is_error() && is_statement(child))
}

/// The offsets of the lines in `range` that start a definition at indentation `indent` (a
/// top-level one for `""`): `def`, `async def` or `class`.
fn definition_starts<'s>(
    source: &'s str,
    indent: &'s str,
    range: Range<usize>,
) -> impl Iterator<Item = usize> + 's {
    let at_indent = move |(line, found): (usize, &str)| (found == indent).then_some(line);
    let mut defs = lines_starting_with(source, range.clone(), "def ")
        .filter_map(at_indent)
        .peekable();
    let mut classes = lines_starting_with(source, range, "class ")
        .filter_map(at_indent)
        .peekable();
    // The two in the order of the text.
    std::iter::from_fn(move || match (defs.peek(), classes.peek()) {
        (Some(def), Some(class)) if class < def => classes.next(),
        (Some(_), _) => defs.next(),
        (None, _) => classes.next(),
    })
}

/// The lines starting in `range` whose code starts with `word` (`def ` also after `async `),
/// as their offset and indentation, in order. The word is searched for (`memmem`), not each
/// line looked at: these scans run over every line of a large module or class on keystrokes.
fn lines_starting_with<'s>(
    source: &'s str,
    range: Range<usize>,
    word: &'static str,
) -> impl Iterator<Item = (usize, &'s str)> + 's {
    let (start, end) = (range.start, range.end);
    memchr::memmem::find_iter(&source.as_bytes()[start..], word.as_bytes())
        .map(move |found| {
            let at = start + found;
            let code = match source[..at].strip_suffix("async ") {
                Some(before) if word == "def " => before.len(),
                _ => at,
            };
            let line = line_start(source, code);
            (line, &source[line..code])
        })
        .take_while(move |(line, _)| *line < end)
        .filter(move |(line, indent)| {
            *line >= start && indent.bytes().all(|b| b == b' ' || b == b'\t')
        })
}

/// The row and byte column of offset `at`, which need not fall between characters.
fn point_at(source: &str, at: usize) -> Point {
    let before = &source.as_bytes()[..at];
    let line_start = line_start(source, at);
    Point::new(
        before.iter().filter(|b| **b == b'\n').count(),
        at - line_start,
    )
}

fn line_start(source: &str, at: usize) -> usize {
    memchr::memrchr(b'\n', &source.as_bytes()[..at]).map_or(0, |i| i + 1)
}

/// `range` of `text` left out: blanked, and a method keeps its name where its `def` line was
/// (`def name(self): ...`), so that the class around it keeps its shape.
fn leave_out(text: &mut String, range: Range<usize>) {
    let indent = indentation(text, range.start);
    let stand_in = (!indent.is_empty())
        .then(|| definition_starts(text, indent, range.clone()).next())
        .flatten()
        .filter(|def| with_decorators(text, indent, *def) == range.start)
        .and_then(|def| {
            let line = &text[def + indent.len()..];
            let keyword = ["def ", "async def "]
                .into_iter()
                .find(|k| line.starts_with(k))?;
            let name: String = line[keyword.len()..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            let stand_in = format!("{indent}{keyword}{name}(self): ...");
            // Its last line end stays: what follows keeps its line.
            (!name.is_empty() && def + stand_in.len() < range.end).then_some((def, stand_in))
        });
    blank(text, range);
    if let Some((at, stand_in)) = stand_in {
        text.replace_range(at..at + stand_in.len(), &stand_in);
    }
}

/// Every byte of `range` but line ends becomes a space: the text keeps its length, its lines
/// and valid UTF-8.
fn blank(text: &mut String, range: Range<usize>) {
    let blanked: String = text[range.clone()]
        .bytes()
        .map(|b| {
            if b == b'\n' || b == b'\r' {
                b as char
            } else {
                ' '
            }
        })
        .collect();
    text.replace_range(range, &blanked);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The definitions found by searching for their keywords are those a look at every line
    /// finds: after `async `, in tab-indented code, in ranges that cut lines, not in words
    /// ending in `def` nor after code on the line.
    #[test]
    fn definitions_are_found_as_by_looking_at_every_line() {
        let source = "class A:\n    @property\n    def a(self): return undef \n    async def b(self):\n\tdef c(): pass\n    x = 1; def_ = 2; def g(): pass\n  class D: pass\nasync def e(): class_ = 1\ndef f(): pass\n";
        let every_line = |indent: &str, range: Range<usize>| -> Vec<usize> {
            (range.clone())
                .filter(|at| *at == 0 || source.as_bytes()[at - 1] == b'\n')
                .filter(|at| {
                    let code = &source[*at..];
                    code.strip_prefix(indent).is_some_and(|code| {
                        ["def ", "async def ", "class "]
                            .iter()
                            .any(|keyword| code.starts_with(keyword))
                    })
                })
                .collect()
        };
        for indent in ["", "    ", "\t", "  "] {
            for start in 0..source.len() {
                for end in [start, start + 7, start + 30, source.len()] {
                    let range = start..end.min(source.len());
                    assert_eq!(
                        definition_starts(source, indent, range.clone()).collect::<Vec<_>>(),
                        every_line(indent, range.clone()),
                        "{indent:?} in {range:?}"
                    );
                }
            }
        }
        assert_eq!(member_indent(source, 0..source.len()), Some("\t"));
        assert_eq!(
            member_indent(source, 0..source.find("\tdef").unwrap()),
            Some("    ")
        );
    }

    /// Four views; `typed` is a line being typed into the second.
    fn views(typed: &str) -> String {
        let mut out = String::from("from blog.models import Entry\n");
        for i in 0..4 {
            out.push_str(&format!(
                "\n\ndef view_{i}(request):\n    entries = Entry.objects.filter(rating={i})\n"
            ));
            if i == 1 {
                out.push_str(&format!("    {typed}\n"));
            }
            out.push_str(
                "    if len(Entry.objects.all()) > 3:\n        return None\n    return entries\n",
            );
        }
        out
    }

    /// A class of four methods; `typed` is a line being typed into the second.
    fn methods(typed: &str) -> String {
        let mut out = String::from("from blog.models import Entry\n\n\nclass Report:\n");
        for i in 0..4 {
            out.push_str(&format!(
                "    @property\n    def view_{i}(self):\n        entries = Entry.objects.filter(rating={i})\n"
            ));
            if i == 1 {
                out.push_str(&format!("        {typed}\n"));
            }
            out.push_str(
                "        if len(Entry.objects.all()) > 3:\n            return None\n        return entries\n\n",
            );
        }
        out.push_str("\nclass Other:\n    pass\n");
        out
    }

    /// What the lint reads instead of `source`, if anything, with no lint before it.
    fn repair(source: &str, tree: &Tree) -> Option<Repaired> {
        repaired(
            source,
            Some(tree),
            collapsed(source, tree.root_node())?,
            None,
        )
    }

    #[test]
    fn an_open_quote_leaves_out_only_the_definition_being_typed() {
        let source = views("found = Entry.objects.filter(title='");
        let tree = crate::store::parse_python(&source).unwrap();
        // Recovery folds the whole module, imports included, into one error.
        assert_eq!(tree.root_node().child_count(), 1);
        let repaired = repair(&source, &tree).unwrap();
        assert!(!repaired.tree.root_node().has_error());
        assert_eq!(repaired.source.len(), source.len());
        assert_eq!(repaired.source.lines().count(), source.lines().count());
        let start = source.find("def view_1").unwrap();
        let end = source.find("def view_2").unwrap();
        assert_eq!(repaired.left_out, vec![start..end]);
        assert_eq!(repaired.source[..start], source[..start]);
        assert_eq!(repaired.source[end..], source[end..]);
        assert!(repaired.source[start..end].trim().is_empty());
    }

    #[test]
    fn an_open_quote_in_a_method_leaves_out_only_that_method_and_keeps_its_name() {
        // An open bracket alone breaks only its line here; the quote swallows the rest.
        for typed in ["found = Entry.objects.filter(title='", "found = ['"] {
            let source = methods(typed);
            let tree = crate::store::parse_python(&source).unwrap();
            let repaired = repair(&source, &tree).expect(typed);
            assert!(!repaired.tree.root_node().has_error(), "{typed}");
            assert_eq!(repaired.source.len(), source.len());
            let start = source.find("    @property\n    def view_1").unwrap();
            let end = source.find("    @property\n    def view_2").unwrap();
            assert_eq!(repaired.left_out, vec![start..end], "{typed}");
            assert_eq!(repaired.source[..start], source[..start]);
            assert_eq!(repaired.source[end..], source[end..]);
            assert_eq!(
                repaired.source[start..end].trim(),
                "def view_1(self): ...",
                "{typed}"
            );
        }
    }

    /// Recovery can wrap a module's only class in an error node when the method being typed
    /// cuts it short: that method is left out, and the class's other methods are linted.
    #[test]
    fn a_class_cut_short_and_wrapped_in_an_error_leaves_out_only_the_method_being_typed() {
        use crate::analysis::lint;
        let source = "from blog.models import Entry\n\n\nclass Report:\n    def first(self):\n        found = Entry.objects.filter(\n        with open(\"f\") as f:\n            (f.name, f.mode),\n\n    def second(self):\n        return len(Entry.objects.all())\n";
        let tree = crate::store::parse_python(source).unwrap();
        let wrapper = tree.root_node().child(0).unwrap();
        assert!(wrapper.is_error() && wrapper.end_byte() + 1 >= source.len());
        let repaired = repair(source, &tree).unwrap();
        let first = source.find("    def first").unwrap();
        let second = source.find("    def second").unwrap();
        assert_eq!(repaired.left_out, vec![first..second]);
        assert!(!repaired.tree.root_node().has_error());
        let found = lint(source, &tree, &Default::default(), &views_context());
        let codes: Vec<_> = found
            .iter()
            .map(|d| (d.code(), d.range.start > second))
            .collect();
        assert_eq!(codes, [("ORM101", true)]);
    }

    /// An open bracket can run on into the next method's `def`, which recovery then takes for
    /// a broken argument: the break is in the method before it, which is left out, and the
    /// methods after it are linted.
    #[test]
    fn a_bracket_running_into_the_next_def_leaves_out_the_method_before_it() {
        use crate::analysis::lint;
        let source = "from blog.models import Entry\n\n\nclass Report:\n    def first(self):\n        for e in Entry.objects.all(\n        print(len(Entry.objects.all()))\n\n    def second(self):\n        return len(Entry.objects.all())\n\n    def third(self):\n        return len(Entry.objects.all())\n";
        let tree = crate::store::parse_python(source).unwrap();
        let first = source.find("    def first").unwrap();
        let second = source.find("    def second").unwrap();
        let repaired = repair(source, &tree).unwrap();
        assert_eq!(repaired.left_out, vec![first..second]);
        let found = lint(source, &tree, &Default::default(), &views_context());
        let after: Vec<_> = found
            .iter()
            .map(|d| (d.code(), d.range.start > second))
            .collect();
        assert_eq!(after, [("ORM101", true), ("ORM101", true)]);
    }

    #[test]
    fn text_that_parses_or_breaks_in_one_place_is_linted_as_it_is() {
        for typed in ["found = Entry", "found = Entry."] {
            let source = views(typed);
            let tree = crate::store::parse_python(&source).unwrap();
            assert!(repair(&source, &tree).is_none(), "{typed}");
        }
    }

    /// The block-wise comparison finds what a byte-wise one does, wherever the texts differ.
    #[test]
    fn common_ends_are_those_a_byte_loop_finds() {
        let naive = |old: &str, new: &str| {
            let (old, new) = (old.as_bytes(), new.as_bytes());
            let prefix = old.iter().zip(new).take_while(|(a, b)| a == b).count();
            let suffix = (old[prefix..].iter().rev())
                .zip(new[prefix..].iter().rev())
                .take_while(|(a, b)| a == b)
                .count();
            (prefix, suffix)
        };
        let text: String = (0..1500)
            .map(|i| char::from(b'a' + (i % 23) as u8))
            .collect();
        for at in [0, 1, 255, 256, 257, 700, 1243, 1244, 1499] {
            for (removed, inserted) in [(0, "("), (1, ""), (1, "xyz"), (3, "'")] {
                let end = (at + removed).min(text.len());
                let edited = format!("{}{inserted}{}", &text[..at], &text[end..]);
                assert_eq!(common_ends(&text, &edited), naive(&text, &edited), "{at}");
                assert_eq!(common_ends(&edited, &text), naive(&edited, &text), "{at}");
            }
        }
        assert_eq!(common_ends(&text, &text), naive(&text, &text));
        assert_eq!(common_ends("", &text), (0, 0));
    }

    #[test]
    fn decorators_go_with_their_definition() {
        let source = "x = 1\n\n@login_required\n@cache\ndef view(request):\n    pass\n";
        let def = source.find("def view").unwrap();
        assert_eq!(
            with_decorators(source, "", def),
            source.find("@login").unwrap()
        );
        assert_eq!(with_decorators(source, "", 0), 0);
        let source = "class T:\n    x = f(\n        1,\n    )\n\n    @override_settings(\n        DEBUG=True,\n    )\n    @tag\n    def test(self):\n        pass\n";
        let def = source.find("    def test").unwrap();
        let decorated = source.find("    @override").unwrap();
        assert_eq!(with_decorators(source, "    ", def), decorated);
        // What comes above without a decorator is not taken.
        let source = "class T:\n    x = f(\n        1,\n    )\n    def test(self):\n        pass\n";
        let def = source.find("    def test").unwrap();
        assert_eq!(with_decorators(source, "    ", def), def);
    }

    /// `views`' module, with the `Entry` model it reads.
    fn views_context() -> crate::analysis::FileContext {
        use crate::analysis::{index, FileContext};
        let models = "from django.db import models\n\nclass Entry(models.Model):\n    title = models.CharField(max_length=9)\n";
        let tree = crate::store::parse_python(models).unwrap();
        let facts = std::sync::Arc::new(index::extract(models, &tree, "blog.models", false));
        let index = std::sync::Arc::new(index::ModelIndex::build(vec![facts]));
        FileContext::new(index, "blog.views", false)
    }

    #[test]
    fn findings_and_fixes_in_what_was_left_out_are_dropped() {
        use crate::analysis::lint;
        let file = views_context();
        let settings = crate::settings::Settings::default();
        let lines = |source: &str| -> Vec<usize> {
            let tree = crate::store::parse_python(source).unwrap();
            lint(source, &tree, &settings, &file)
                .iter()
                .filter(|d| d.code() == "ORM101")
                .map(|d| source[..d.range.start].lines().count())
                .collect()
        };
        // `len(Entry.objects.all())` in every view; while the second is half typed, in the other three.
        let whole = lines(&views("found = Entry"));
        assert_eq!(whole.len(), 4);
        let typing = lines(&views("found = Entry.objects.filter(title='"));
        assert_eq!(typing, [whole[0], whole[2], whole[3]]);
    }

    /// Typing on inside an open bracket keeps the module collapsed: each keystroke answers with
    /// the last findings, moved, and they must be what a whole lint of that text finds.
    #[test]
    fn typing_inside_the_left_out_definition_moves_the_last_findings() {
        typing_inside_moves_the_last_findings(views);
        typing_inside_moves_the_last_findings(methods);
    }

    fn typing_inside_moves_the_last_findings(layout: fn(&str) -> String) {
        use crate::analysis::{lint, lint_incremental, LintCache};
        let file = views_context();
        let settings = crate::settings::Settings::default();
        let mut cache = LintCache::default();
        let typed = "found = Entry.objects.filter(title='a b\n        c";
        for end in 0..=typed.len() {
            let source = layout(&typed[..end]);
            let tree = crate::store::parse_python(&source).unwrap();
            let incremental = lint_incremental(&source, &tree, &settings, &file, &mut cache);
            let whole = lint(&source, &tree, &settings, &file);
            assert_eq!(incremental, whole, "{}", &typed[..end]);
            assert!(whole.iter().filter(|d| d.code() == "ORM101").count() >= 3);
        }
    }

    /// A keystroke that replaces the text (select all, paste) can leave the left-out method's
    /// old range past the new end: told apart, not sliced.
    #[test]
    fn a_paste_over_the_left_out_definition_is_parsed() {
        use crate::analysis::{lint_incremental, lint_typed, LintCache, WantedTree};
        let file = views_context();
        let settings = crate::settings::Settings::default();
        let mut cache = LintCache::default();
        let source = "class Report:\n    def first(self):\n        return 1\n\n    def typed(self):\n        found = ['\n\n\ndef after():\n    pass\n";
        let tree = crate::store::parse_python(source).unwrap();
        lint_incremental(source, &tree, &settings, &file, &mut cache);
        let left_out = cache
            .linted
            .as_ref()
            .map(|l| l.left_out.clone())
            .unwrap_or_default();
        let typed = source.find("    def typed").unwrap();
        let after = source.find("def after").unwrap();
        assert_eq!(left_out.len(), 1);
        assert_eq!(left_out[0], typed..after);
        // Longer than what followed the method, shorter than what came before it.
        let pasted = "x = 1\n".repeat(6);
        let pasted_tree = crate::store::parse_python(&pasted).unwrap();
        let mut asked = None;
        lint_typed(&pasted, &settings, &file, &mut cache, |wanted| {
            asked = Some(wanted);
            Some(&pasted_tree)
        });
        assert_eq!(asked, Some(WantedTree::Current));
    }

    /// What the editor does with each keystroke of `typed`, typed into the second definition
    /// of `layout`: the tree the lint asked for (`None`: answered without parsing), and its
    /// findings, checked against a whole lint of a fresh parse (a prediction first against
    /// that tree).
    fn type_through(
        layout: fn(&str) -> String,
        typed: &str,
    ) -> Vec<Option<crate::analysis::WantedTree>> {
        use crate::analysis::{lint, lint_typed, prediction_holds, LintCache};
        let file = views_context();
        let settings = crate::settings::Settings::default();
        let mut cache = LintCache::default();
        let mut asked_for = Vec::new();
        for end in 0..=typed.len() {
            let source = layout(&typed[..end]);
            let tree = crate::store::parse_python(&source).unwrap();
            let whole = lint(&source, &tree, &settings, &file);
            let mut asked = None;
            let linted = lint_typed(&source, &settings, &file, &mut cache, |wanted| {
                asked = Some(wanted);
                Some(&tree)
            })
            .unwrap();
            if let Some(region) = &linted.predicted {
                assert!(asked.is_none());
                assert!(
                    prediction_holds(&source, &tree, region),
                    "{}",
                    &typed[..end]
                );
            }
            assert_eq!(linted.found, whole, "{}", &typed[..end]);
            // The definition being typed has its finding back once it parses.
            let other_findings = whole.iter().filter(|d| d.code() == "ORM101").count();
            assert!(other_findings >= 3, "{}", &typed[..end]);
            asked_for.push(asked);
        }
        asked_for
    }

    /// Typing through an open bracket: the keystroke that closes it is told apart before
    /// parsing (the document is then parsed from its tree before the bracket), and every lint
    /// is what a whole lint of that text finds.
    #[test]
    fn the_keystroke_that_closes_the_bracket_is_told_apart_before_parsing() {
        use crate::analysis::WantedTree;
        let typed = "found = Entry.objects.filter(title='a', rating=1).count()";
        for layout in [views, methods] {
            let asked = type_through(layout, typed);
            let close = typed.find(')').unwrap();
            assert_eq!(asked[close + 1], Some(WantedTree::Mended));
        }
    }

    /// The keystrokes that open a bracket or quote swallowing the definitions after the one
    /// being typed, and those typed inside it, are answered without parsing the document.
    #[test]
    fn typing_inside_an_open_bracket_is_answered_without_parsing() {
        let typed = "found = Entry.objects.filter(title='a', rating=1).count()";
        for layout in [views, methods] {
            let asked = type_through(layout, typed);
            let (open, close) = (typed.find('(').unwrap(), typed.find(')').unwrap());
            // `asked[end]` answers `typed[..end]`: from the one that opens the quote to the
            // one before the closing bracket (in `views` the bracket alone swallows too).
            let quote = typed.find('\'').unwrap();
            for end in quote + 1..=close {
                assert_eq!(asked[end], None, "{}", &typed[..end]);
            }
            assert!(asked[open].is_some());
        }
    }
}
