//! What a cached statement's findings read from the rest of its file, besides the module
//! context: the lint cache keys each statement (a top-level function or class, or a method of a
//! large class) on these too, so that an edit elsewhere re-lints exactly the statements whose
//! analysis it can change.
//!
//! Two things cross statements this way:
//! - An unannotated parameter is typed from the calls of its function in the module
//!   (`Semantics::call_site_param_ty`): a function's findings depend on every statement that
//!   names it, and, since what those pass may itself come from their own parameters, on the
//!   statements that name theirs, and so on.
//! - `self.x` in a method is typed from every assignment to it in the class
//!   (`Semantics::self_attribute_ty`): a method of a large class depends on the other methods
//!   that may assign what it reads.
//! - A relation of an instance handed to a function of the module that reads it first thing is
//!   loaded after the call (ORM401): a statement depends on the text of the functions with
//!   parameters that it names.
//!
//! Both are found from the text, erring towards a dependency: a word in a string or a comment
//! counts as a mention, and a `self.x` that is not plainly read counts as an assignment. One
//! mention settles the first: a use of the name that is not a call the analysis follows (`qs.filter`
//! for a method `filter`, a function passed as a value) leaves every parameter unknown, so
//! then no caller's text counts, only that some mention still leaves them unknown (typing
//! `Entry.objects.filter(` into one method must not re-lint the methods that reach a method
//! `filter` of the same class).

use std::hash::{Hash, Hasher};
use std::ops::Range;

use rustc_hash::{FxHashMap, FxHashSet, FxHasher};
use tree_sitter::Node;

use crate::analysis::syntax::{
    field::{self, FieldOf},
    KindOf,
};

/// A statement whose findings are cached: a top-level function or class, or a method of a
/// class linted method by method; or, not cached itself but read by those, another part of such
/// a class (its header, its other statements).
pub struct Piece<'s> {
    pub range: Range<usize>,
    /// `syntax::parse_hash` of it.
    pub hash: u64,
    pub cached: bool,
    /// The names others call it by, for the functions that take arguments (their parameters
    /// may be typed from their calls, and read what they are given): a function's name, a
    /// method's, a class's for its `__init__`.
    pub defines: Vec<Callee<'s>>,
    /// The large class it is a member of (an index of the caller's choosing).
    pub class: Option<usize>,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Callee<'s> {
    pub name: &'s str,
    /// Called as `self.name(...)`/`Class.name(...)` rather than `name(...)`.
    pub method: bool,
}

pub struct Dependencies<'s> {
    pieces: Vec<Piece<'s>>,
    hashes: Vec<u64>,
    /// The pieces whose text holds each callee's name as a word, for the callees no mention
    /// leaves with unknown parameters.
    mentions: FxHashMap<Callee<'s>, Vec<usize>>,
    /// The callees some mention leaves with unknown parameters: what any caller passes them is
    /// not read, so the callers' text is not part of their key, only that they stay unknown.
    settled: FxHashSet<Callee<'s>>,
    /// The pieces defining each callee.
    definitions: FxHashMap<Callee<'s>, Vec<usize>>,
    /// The callees each piece calls the way the analysis follows (`f(...)`, `self.f(...)`).
    named: Vec<FxHashSet<Callee<'s>>>,
    /// The `self.<name>`s each member of a large class mentions.
    reads: Vec<Vec<&'s str>>,
    /// The members of each large class that may assign each `self.<name>`.
    assigners: FxHashMap<(usize, &'s str), Vec<usize>>,
    read_through: std::cell::OnceCell<ReadThrough>,
}

/// What each node of a graph reaches, itself included, as bit sets over the nodes: one per
/// strongly connected component, whose nodes all reach the same.
struct ReadThrough {
    component: Vec<usize>,
    reached: Vec<Vec<u64>>,
}

impl ReadThrough {
    /// Tarjan's algorithm, without recursion (a file may hold thousands of pieces): it
    /// finishes each component after every component it reaches, so each one's set is its
    /// nodes and the sets of the others its edges lead to.
    fn new(successors: &[Vec<usize>]) -> Self {
        const UNVISITED: usize = usize::MAX;
        let count = successors.len();
        let words = count.div_ceil(64);
        let mut order = vec![UNVISITED; count];
        let mut low = vec![0; count];
        let mut on_stack = vec![false; count];
        let mut stack = Vec::new();
        let mut component = vec![UNVISITED; count];
        let mut reached: Vec<Vec<u64>> = Vec::new();
        let mut visited = 0;
        for root in 0..count {
            if order[root] != UNVISITED {
                continue;
            }
            let mut path = vec![(root, 0)];
            order[root] = visited;
            low[root] = visited;
            visited += 1;
            stack.push(root);
            on_stack[root] = true;
            while let Some((node, next)) = path.last_mut() {
                let node = *node;
                if let Some(&to) = successors[node].get(*next) {
                    *next += 1;
                    if order[to] == UNVISITED {
                        order[to] = visited;
                        low[to] = visited;
                        visited += 1;
                        stack.push(to);
                        on_stack[to] = true;
                        path.push((to, 0));
                    } else if on_stack[to] {
                        low[node] = low[node].min(order[to]);
                    }
                    continue;
                }
                path.pop();
                if let Some((parent, _)) = path.last() {
                    low[*parent] = low[*parent].min(low[node]);
                }
                if low[node] != order[node] {
                    continue;
                }
                let id = reached.len();
                let mut members = Vec::new();
                while let Some(member) = stack.pop() {
                    on_stack[member] = false;
                    component[member] = id;
                    members.push(member);
                    if member == node {
                        break;
                    }
                }
                let mut set = vec![0u64; words];
                for &member in &members {
                    set[member / 64] |= 1 << (member % 64);
                    for &to in &successors[member] {
                        if component[to] != id {
                            for (word, theirs) in set.iter_mut().zip(&reached[component[to]]) {
                                *word |= theirs;
                            }
                        }
                    }
                }
                reached.push(set);
            }
        }
        Self { component, reached }
    }

    fn of(&self, node: usize) -> &[u64] {
        &self.reached[self.component[node]]
    }
}

/// The nodes a bit set holds, in order: only the set bits are visited (every piece's key
/// reads its set on every keystroke).
fn pieces_in(set: &[u64]) -> impl Iterator<Item = usize> + '_ {
    set.iter().enumerate().flat_map(|(word, &bits)| {
        let mut left = bits;
        std::iter::from_fn(move || {
            (left != 0).then(|| {
                let bit = left.trailing_zeros() as usize;
                left &= left - 1;
                word * 64 + bit
            })
        })
    })
}

impl<'s> Dependencies<'s> {
    /// `pieces` in the order of the text, none overlapping another; `root` the file's tree;
    /// `classes` the names of the module's top-level classes; `memo` what earlier calls read
    /// of pieces of the same text.
    pub fn new(
        source: &'s str,
        root: Node,
        classes: &[&str],
        pieces: Vec<Piece<'s>>,
        memo: &mut DependencyMemo,
    ) -> Self {
        let hashes: Vec<u64> = pieces.iter().map(|p| p.hash).collect();
        let classes_hash = {
            let mut hasher = FxHasher::default();
            classes.hash(&mut hasher);
            hasher.finish()
        };
        memo.forget_all_but(&hashes, classes_hash);
        let callees: FxHashSet<Callee> = pieces.iter().flat_map(|p| p.defines.clone()).collect();
        let mut by_name: FxHashMap<&str, Vec<Callee>> = FxHashMap::default();
        for callee in callees {
            by_name.entry(callee.name).or_default().push(callee);
        }
        let named_words = memo.named_words(source, &pieces, &hashes, &by_name);
        let mut definitions: FxHashMap<Callee, Vec<usize>> = FxHashMap::default();
        for (i, piece) in pieces.iter().enumerate() {
            for callee in &piece.defines {
                definitions.entry(*callee).or_default().push(i);
            }
        }
        let mut named: Vec<FxHashSet<Callee>> = vec![FxHashSet::default(); pieces.len()];
        let mut mentions: FxHashMap<Callee, Vec<usize>> = FxHashMap::default();
        let mut settled: FxHashSet<Callee> = FxHashSet::default();
        let mut piece = 0;
        for (at, word) in named_words {
            let Some(callees) = by_name.get(word) else {
                continue;
            };
            while piece < pieces.len() && pieces[piece].range.end <= at {
                piece += 1;
            }
            let holder = pieces
                .get(piece)
                .filter(|p| p.range.start <= at)
                .map(|_| piece);
            for callee in callees {
                // A settled callee needs a mention only for a piece not known to call it yet.
                let unknown_caller = holder.is_some_and(|h| !named[h].contains(callee));
                if settled.contains(callee) && !unknown_caller {
                    continue;
                }
                let kind = match holder {
                    Some(h) => *memo
                        .mentions
                        .entry((hashes[h], classes_hash))
                        .or_default()
                        .entry(((at - pieces[h].range.start) as u32, callee.method))
                        .or_insert_with(|| mention(root, source, at, *callee, classes)),
                    None => mention(root, source, at, *callee, classes),
                };
                if kind == Mention::Skipped {
                    continue;
                }
                if let Some(holder) = holder.filter(|_| kind == Mention::Call) {
                    named[holder].insert(*callee);
                }
                if settled.contains(callee) {
                    continue;
                }
                if kind == Mention::LeavesParametersUnknown {
                    mentions.remove(callee);
                    settled.insert(*callee);
                    continue;
                }
                let found = mentions.entry(*callee).or_default();
                if let Some(holder) = holder.filter(|h| found.last() != Some(h)) {
                    found.push(holder);
                }
            }
        }
        let mut assigners: FxHashMap<(usize, &str), Vec<usize>> = FxHashMap::default();
        let mut reads: Vec<Vec<&str>> = vec![Vec::new(); pieces.len()];
        for (i, piece) in pieces.iter().enumerate() {
            let Some(class) = piece.class else { continue };
            let text = &source[piece.range.clone()];
            let mut read = Vec::new();
            let found = memo.self_attributes.entry(hashes[i]).or_insert_with(|| {
                self_attributes(text)
                    .map(|(end, name)| SelfAttribute {
                        end: end as u32,
                        len: name.len() as u32,
                        may_assign: may_assign(text, end),
                    })
                    .collect()
            });
            for attribute in found.iter() {
                let end = attribute.end as usize;
                let name = &text[end - attribute.len as usize..end];
                read.push(name);
                if attribute.may_assign {
                    let found = assigners.entry((class, name)).or_default();
                    if found.last() != Some(&i) {
                        found.push(i);
                    }
                }
            }
            read.sort_unstable();
            read.dedup();
            reads[i] = read;
        }
        Self {
            pieces,
            hashes,
            mentions,
            definitions,
            named,
            reads,
            assigners,
            settled,
            read_through: std::cell::OnceCell::new(),
        }
    }

    pub fn is_cached(&self, i: usize) -> bool {
        self.pieces[i].cached
    }

    pub fn hash(&self, i: usize) -> u64 {
        self.hashes[i]
    }

    /// The text of every other piece that piece `i`'s analysis may read, hashed: the pieces
    /// defining what it calls; the pieces naming what it defines, those that may assign a
    /// `self.x` it reads, and, through them, theirs; and which of what those define some
    /// mention leaves with unknown parameters.
    pub fn key(&self, i: usize) -> u64 {
        let through = self.read_through.get_or_init(|| self.read_through());
        let mut reached = through.of(i).to_vec();
        for callee in &self.named[i] {
            for &definition in self.definitions.get(callee).into_iter().flatten() {
                reached[definition / 64] |= 1 << (definition % 64);
            }
        }
        let mut settled: Vec<Callee> = Vec::new();
        for at in pieces_in(through.of(i)) {
            settled.extend(
                self.pieces[at]
                    .defines
                    .iter()
                    .filter(|callee| self.settled.contains(*callee)),
            );
        }
        let mut hasher = FxHasher::default();
        for other in pieces_in(&reached).filter(|other| *other != i) {
            self.hashes[other].hash(&mut hasher);
        }
        settled.sort_unstable_by_key(|c| (c.name, c.method));
        settled.hash(&mut hasher);
        hasher.finish()
    }

    /// The pieces each piece's analysis reads through what it defines (the pieces naming it)
    /// and the `self.x` it reads (the pieces that may assign them), and through theirs in turn.
    /// One pass over the graph's strongly connected components, for every piece at once: a
    /// search from each piece cost half a millisecond a keystroke in a class of a hundred
    /// methods that all read `self.query`.
    fn read_through(&self) -> ReadThrough {
        let successors: Vec<Vec<usize>> = (0..self.pieces.len())
            .map(|at| {
                let mut next: Vec<usize> = self.pieces[at]
                    .defines
                    .iter()
                    .filter(|callee| !self.settled.contains(*callee))
                    .flat_map(|callee| self.mentions.get(callee).into_iter().flatten().copied())
                    .chain(self.assigners_read_by(at))
                    .collect();
                next.sort_unstable();
                next.dedup();
                next
            })
            .collect();
        ReadThrough::new(&successors)
    }

    /// The other members of piece `at`'s class that may assign a `self.x` it mentions.
    fn assigners_read_by(&self, at: usize) -> impl Iterator<Item = usize> + '_ {
        let class = self.pieces[at].class;
        class
            .into_iter()
            .flat_map(move |class| {
                self.reads[at].iter().flat_map(move |name| {
                    self.assigners
                        .get(&(class, *name))
                        .map_or(&[][..], Vec::as_slice)
                        .iter()
                        .copied()
                })
            })
            .filter(move |other| *other != at)
    }
}

/// What `Dependencies::new` read of pieces, by their text (`Piece::hash`): the same text reads
/// the same way, and reading every piece of a large file on each keystroke cost milliseconds.
#[derive(Default)]
pub struct DependencyMemo {
    /// What the mentions in a piece are, by the piece's text and the module's classes (which
    /// receivers are classes of the module), then by the mention's offset in the piece and
    /// whether a method's or a function's.
    mentions: FxHashMap<(u64, u64), FxHashMap<(u32, bool), Mention>>,
    /// Where a piece's words that name a callee are (offset in the piece, length), by the
    /// piece's text and the callees' names.
    named_words: FxHashMap<(u64, u64), Vec<(u32, u32)>>,
    /// The hashes of the last two sets of names `named_words` was asked for, the latest last.
    recent_names: Vec<u64>,
    /// The `self.<name>`s of a member of a large class.
    self_attributes: FxHashMap<u64, Vec<SelfAttribute>>,
}

struct SelfAttribute {
    /// The offset in the piece just past the name.
    end: u32,
    len: u32,
    may_assign: bool,
}

impl DependencyMemo {
    /// Keeps only what was read of the pieces `hashes` has, and of their mentions only what
    /// was read with the module's current classes (other sets of them would pile up while a
    /// class name is typed).
    fn forget_all_but(&mut self, hashes: &[u64], classes_hash: u64) {
        let kept: FxHashSet<u64> = hashes.iter().copied().collect();
        self.mentions
            .retain(|(piece, classes), _| kept.contains(piece) && *classes == classes_hash);
        self.named_words
            .retain(|(piece, _), _| kept.contains(piece));
        self.self_attributes.retain(|piece, _| kept.contains(piece));
    }

    /// The words of `source` that `by_name` has, with their offsets, in the order of the text:
    /// a piece's from the memo when its text and the names are unchanged.
    fn named_words<'s>(
        &mut self,
        source: &'s str,
        pieces: &[Piece],
        hashes: &[u64],
        by_name: &FxHashMap<&str, Vec<Callee>>,
    ) -> Vec<(usize, &'s str)> {
        let names_hash = {
            let mut names: Vec<&&str> = by_name.keys().collect();
            names.sort_unstable();
            let mut hasher = FxHasher::default();
            names.hash(&mut hasher);
            hasher.finish()
        };
        // Words read for other names go, or typing a method's name would pile them up; but not
        // those of the names before, which come back when a bracket opened in a method closes
        // (the method left out while it was open defined no callee).
        if self.recent_names.last() != Some(&names_hash) {
            self.recent_names.push(names_hash);
            if self.recent_names.len() > 2 {
                self.recent_names.remove(0);
            }
        }
        let recent = &self.recent_names;
        self.named_words
            .retain(|(_, names), _| recent.contains(names));
        let mut found = Vec::new();
        let scan = |range: Range<usize>, found: &mut Vec<(usize, &'s str)>| {
            let text = &source[range.clone()];
            found.extend(
                words(text)
                    .filter(|(_, word)| by_name.contains_key(word))
                    .map(|(at, word)| (range.start + at, word)),
            );
        };
        let mut scanned = 0;
        for (piece, hash) in pieces.iter().zip(hashes) {
            scan(scanned..piece.range.start, &mut found);
            let start = piece.range.start;
            let words = self
                .named_words
                .entry((*hash, names_hash))
                .or_insert_with(|| {
                    let mut words = Vec::new();
                    scan(piece.range.clone(), &mut words);
                    words
                        .into_iter()
                        .map(|(at, word)| ((at - start) as u32, word.len() as u32))
                        .collect()
                });
            found.extend(words.iter().map(|&(at, len)| {
                let at = start + at as usize;
                (at, &source[at..at + len as usize])
            }));
            scanned = piece.range.end;
        }
        scan(scanned..source.len(), &mut found);
        found
    }
}

/// What `Semantics::calls_in_file` makes of a mention of a function's name.
#[derive(Clone, Copy, PartialEq)]
pub enum Mention {
    /// Not a use of the name: in a string or a comment, or a definition (another definition
    /// of a top-level function's name changes the module context, of a large class's method's
    /// the class's; either re-lints every statement).
    Skipped,
    /// A call it follows: `f(...)`, or `self.f(...)`, `cls.f(...)`, `Class.f(...)` for a
    /// method (some of which it may still give up on: a dependency too many, never one short).
    Call,
    /// A use after which it gives up, so that the parameters are unknown whatever the other
    /// mentions: a function named other than called, a method of something else.
    LeavesParametersUnknown,
}

fn mention(root: Node, source: &str, at: usize, callee: Callee, classes: &[&str]) -> Mention {
    let word = callee.name;
    // The nodes from the root down to the word, with one cursor: `Node::parent` walks down
    // from the root on every call, and common names have hundreds of mentions.
    let mut cursor = root.walk();
    let mut path = Vec::new();
    while cursor.goto_first_child_for_byte(at).is_some() {
        if cursor.node().start_byte() > at {
            break;
        }
        path.push(cursor.node());
    }
    let [.., grandparent, parent, node] = path[..] else {
        return Mention::Skipped;
    };
    if node.kind_name() != "identifier" || node.byte_range() != (at..at + word.len()) {
        return Mention::Skipped;
    }
    let is_field = |field: &field::Field| parent.field(field).is_some_and(|n| n.id() == node.id());
    if matches!(
        parent.kind_name(),
        "function_definition" | "class_definition"
    ) && is_field(&field::NAME)
    {
        return Mention::Skipped;
    }
    let called = if callee.method {
        let called = parent.kind_name() == "attribute"
            && is_field(&field::ATTRIBUTE)
            && grandparent.kind_name() == "call"
            && grandparent
                .field(&field::FUNCTION)
                .is_some_and(|f| f.id() == parent.id());
        let on_known_receiver = parent.field(&field::OBJECT).is_some_and(|object| {
            let receiver = &source[object.byte_range()];
            object.kind_name() == "identifier"
                && (receiver == "self" || receiver == "cls" || classes.contains(&receiver))
        });
        called && on_known_receiver
    } else {
        parent.kind_name() == "call" && is_field(&field::FUNCTION)
    };
    if called {
        Mention::Call
    } else {
        Mention::LeavesParametersUnknown
    }
}

/// Every identifier-like word of `text` with its offset.
fn words(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let bytes = text.as_bytes();
    let is_word = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80;
    let mut at = 0;
    std::iter::from_fn(move || {
        while at < bytes.len() && !is_word(bytes[at]) {
            at += 1;
        }
        if at >= bytes.len() {
            return None;
        }
        let start = at;
        while at < bytes.len() && is_word(bytes[at]) {
            at += 1;
        }
        Some((start, &text[start..at]))
    })
}

/// Each `self.<name>` in `text`: the offset just past the name, and the name.
fn self_attributes(text: &str) -> impl Iterator<Item = (usize, &str)> {
    memchr::memmem::find_iter(text.as_bytes(), b"self.").filter_map(move |at| {
        let before = text[..at].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '.') {
            return None;
        }
        let start = at + "self.".len();
        let rest = &text[start..];
        let len = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        (len > 0).then(|| (start + len, &text[start..start + len]))
    })
}

/// Whether the `self.x` ending at `end` may be assigned there (`=`, augmented, annotated,
/// unpacked, a `for`/`with`/`del` target) rather than plainly read.
fn may_assign(text: &str, end: usize) -> bool {
    let line_start = text[..end].rfind('\n').map_or(0, |n| n + 1);
    let before = text[line_start..end].trim_start();
    let target = before.rfind("self.").map_or(before, |at| &before[..at]);
    // A `for` target (of a statement or a comprehension) stands before its `in`; a `with`
    // target right after `as`.
    let loop_target = ["for ", "async for "].iter().any(|k| target.starts_with(k))
        && !target.contains(" in ")
        || target
            .rfind(" for ")
            .is_some_and(|at| !target[at..].contains(" in "));
    let with_target = target
        .trim_end_matches(['(', '[', ' ', ','])
        .ends_with(" as");
    if loop_target || with_target || target.starts_with("del ") {
        return true;
    }
    let after = text[end..].trim_start_matches([' ', '\t']);
    let mut chars = after.chars();
    match (chars.next(), chars.next(), chars.next()) {
        (Some('.' | '(' | '['), _, _) => false,
        (Some('='), Some('='), _) => false,
        (Some('='), _, _) => true,
        (Some('!' | '<' | '>'), Some('='), _) => false,
        (Some('<'), Some('<'), Some('=')) | (Some('>'), Some('>'), Some('=')) => true,
        (Some('*'), Some('*'), Some('=')) | (Some('/'), Some('/'), Some('=')) => true,
        (Some('+' | '-' | '*' | '/' | '%' | '&' | '|' | '^' | '@'), Some('='), _) => true,
        // An annotated assignment starts its statement; `if self.x:` does not.
        (Some(':'), _, _) => target.is_empty(),
        (Some(',' | ')' | ']' | '}'), _, _) => assigns_later_in_statement(after),
        _ => false,
    }
}

/// Whether an assignment's `=` follows in the rest of the statement (`self.a, self.b = ...`),
/// at the bracket depth it starts at or outside it. The statement is taken to end at the first
/// line break once a bracket open before the start has closed; where that is wrong, it runs on
/// and finds more `=`, never fewer.
fn assigns_later_in_statement(rest: &str) -> bool {
    let bytes = rest.as_bytes();
    let mut depth = 0i32;
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => depth -= 1,
            b'\n' if depth < 0 && (i == 0 || bytes[i - 1] != b'\\') => return false,
            b'=' if depth <= 0 => {
                let previous = i.checked_sub(1).map(|p| bytes[p]);
                let next = bytes.get(i + 1).copied();
                let comparison =
                    matches!(previous, Some(b'=' | b'!' | b'<' | b'>')) || next == Some(b'=');
                if !comparison {
                    return true;
                }
            }
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_each_node_reaches_is_what_a_search_from_it_finds() {
        // Graphs with cycles, chains and nodes past the first 64, from a fixed pseudo-random
        // sequence.
        let mut seed = 7u64;
        let mut next = |below: usize| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) as usize % below
        };
        for (count, edges) in [(1, 0), (5, 8), (70, 60), (150, 300), (200, 150)] {
            let mut successors = vec![Vec::new(); count];
            for _ in 0..edges {
                let from = next(count);
                successors[from].push(next(count));
            }
            let through = ReadThrough::new(&successors);
            for node in 0..count {
                let mut found = vec![node];
                let mut pending = vec![node];
                while let Some(at) = pending.pop() {
                    for &to in &successors[at] {
                        if !found.contains(&to) {
                            found.push(to);
                            pending.push(to);
                        }
                    }
                }
                found.sort_unstable();
                let reached: Vec<usize> = pieces_in(through.of(node)).collect();
                assert_eq!(reached, found, "node {node} of {count}");
            }
        }
    }

    #[test]
    fn memoised_named_words_are_those_a_scan_of_the_whole_text_finds() {
        // Each `def` is a piece; what lies between (module-level code) is scanned each time.
        let pieces_of = |source: &str| -> Vec<Piece<'static>> {
            let starts: Vec<usize> = source.match_indices("def ").map(|(at, _)| at).collect();
            starts
                .iter()
                .enumerate()
                .map(|(i, &start)| {
                    let end = starts.get(i + 1).map_or(source.len(), |next| next - 1);
                    let mut hasher = FxHasher::default();
                    source[start..end].hash(&mut hasher);
                    Piece {
                        range: start..end,
                        hash: hasher.finish(),
                        cached: true,
                        defines: Vec::new(),
                        class: None,
                    }
                })
                .collect()
        };
        let first = "x = export\ndef export(rows):\n    return rows\nexport(1)\ndef view():\n    export(rows=2)\n";
        let versions = [
            first.to_string(),
            first.replace("export(rows=2)", "export(rows=2, also=export)"),
            first.replace("export(1)", "export(1); export(2)"),
            format!("export\n{first}"),
        ];
        let mut memo = DependencyMemo::default();
        for names in [&["export"][..], &["export", "rows"][..]] {
            let by_name: FxHashMap<&str, Vec<Callee>> =
                names.iter().map(|n| (*n, Vec::new())).collect();
            for source in &versions {
                let pieces = pieces_of(source);
                let hashes: Vec<u64> = pieces.iter().map(|p| p.hash).collect();
                memo.forget_all_but(&hashes, 0);
                let scanned: Vec<(usize, &str)> = words(source)
                    .filter(|(_, w)| by_name.contains_key(w))
                    .collect();
                assert_eq!(
                    memo.named_words(source, &pieces, &hashes, &by_name),
                    scanned,
                    "{names:?} in {source:?}"
                );
                // Nothing read for other text is kept, nor for names before the last two.
                assert!(memo.named_words.len() <= 2 * pieces.len());
            }
        }
    }

    #[test]
    fn assignments_are_told_from_reads() {
        let assigned = |line: &str| {
            let (end, _) = self_attributes(line).next().unwrap();
            may_assign(line, end)
        };
        for line in [
            "self.x = 1",
            "self.x: int = 1",
            "self.x += 1",
            "self.x //= 2",
            "self.x, self.y = pair",
            "(self.x, y) = pair",
            "for self.x in rows:",
            "with open(p) as self.x:",
            "with open(p) as (self.x, y):",
            "for a, self.x in pairs:",
            "rows = [1 for self.x in range(3)]",
            "del self.x",
        ] {
            assert!(assigned(line), "{line}");
        }
        for line in [
            "self.x.save()",
            "self.x(1)",
            "self.x[0] = 1",
            "self.x == 1",
            "self.x <= 1",
            "f(self.x)",
            "self.assertEqual(self.x, 1)",
            "y = f(self.x)\nz = 1",
            "for row in self.x:",
            "rows = [r for r in self.x]",
            "with self.x:",
        ] {
            let ends: Vec<_> = self_attributes(line)
                .filter(|(_, n)| *n == "x")
                .map(|(end, _)| end)
                .collect();
            assert!(ends.iter().all(|&end| !may_assign(line, end)), "{line}");
        }
    }
}
