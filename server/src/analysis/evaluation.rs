//! When a QuerySet held in a name is evaluated: the facts the counting rules share.
//!
//! A QuerySet caches its rows the first time it is evaluated. So `len(qs)` is the right call
//! when `qs` is also evaluated elsewhere in the scope (one query fills the cache for all), and
//! `qs.count()` the right one when `len` would be the only evaluation.

use tree_sitter::Node;

use super::infer::{Semantics, QUERYSET_METHODS};
use super::scope::{BindingKind, ScopeIndex};
use super::syntax::{
    contains, enclosing_loops, enclosing_statement,
    field::{self, FieldOf},
    first_iterable, method_call, normalized, single_argument_call, text, KindOf, Parents,
};

/// Attributes of a QuerySet whose use does not load all its rows.
const CACHE_BLIND: &[&str] = &[
    // These answer from the cache when there is one, but never need the rows loaded.
    "count",
    "exists",
    "first",
    "last",
    "earliest",
    "latest",
    "contains",
    "in_bulk",
    "update",
    "delete",
    "create",
    "get_or_create",
    "update_or_create",
    "bulk_create",
    "bulk_update",
    "aggregate",
    "iterator",
    "explain",
    "get",
    "model",
    "query",
    "db",
    "ordered",
];

/// Calls that write to the database: between two reads they may change what a query returns.
pub const WRITE_METHODS: &[&str] = &[
    "save",
    "create",
    "delete",
    "update",
    "bulk_create",
    "bulk_update",
    "add",
    "remove",
    "clear",
    "set",
    "get_or_create",
    "update_or_create",
];

/// Functions that iterate their single argument to the end.
const ITERATING_FUNCTIONS: &[&str] = &[
    "list",
    "tuple",
    "set",
    "frozenset",
    "sorted",
    "dict",
    "enumerate",
];

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OtherEvaluations {
    /// Evaluated (or read from the cache) before the read, since the name was bound.
    pub before: bool,
    /// May be evaluated after the read: a later use, or the read itself repeats in a loop.
    pub after: bool,
}

impl OtherEvaluations {
    pub fn any(self) -> bool {
        self.before || self.after
    }
}

/// How the name read at `read` is otherwise used in its scope. Any use that might evaluate it
/// (passed to a function, returned, iterated, stored) counts: unsure means "evaluated".
pub fn other_evaluations<'a>(sem: &Semantics<'a>, read: Node<'a>) -> OtherEvaluations {
    let scope = sem.scope_of(read);
    let name = sem.text(read);
    let reaching = scope.reaching(name, read, &sem.parents);
    let since = reaching
        .bindings
        .iter()
        .map(|b| match b.kind {
            BindingKind::Param { .. } => scope.scope.start_byte(),
            _ => b.statement.start_byte(),
        })
        .min()
        .unwrap_or(scope.scope.start_byte());
    let mut result = OtherEvaluations::default();
    for &other in scope.references(name) {
        if other.id() == read.id()
            || other.start_byte() < since
            || is_cache_blind(other, sem.source, &sem.parents)
        {
            continue;
        }
        if other.start_byte() < read.start_byte() {
            result.before = true;
        } else {
            result.after = true;
        }
    }
    // `render(request, "t.html", locals())` hands every local to the template.
    if !scope.references("locals").is_empty() {
        result.after = true;
    }
    // In a loop that does not also rebuild the QuerySet, the read repeats on a filled cache.
    let loops = enclosing_loops(read, scope.scope, &sem.parents);
    if loops
        .iter()
        .any(|l| reaching.bindings.iter().any(|b| !contains(*l, b.name)))
    {
        result.after = true;
    }
    result
}

fn is_cache_blind<'a>(reference: Node<'a>, source: &str, p: &Parents<'a>) -> bool {
    let Some(parent) = p.of(reference) else {
        return false;
    };
    if parent.kind_name() != "attribute"
        || parent
            .field(&field::OBJECT)
            .is_none_or(|o| o.id() != reference.id())
    {
        return false;
    }
    let attribute = parent
        .field(&field::ATTRIBUTE)
        .map_or("", |a| text(a, source));
    QUERYSET_METHODS.contains(&attribute) || CACHE_BLIND.contains(&attribute)
}

/// Whether `reference` (a read of a QuerySet name) iterates it every time its statement runs,
/// and if so the statement: a `for` loop over it, `list(qs)`, a comprehension over it. (`len`,
/// truth tests and `in` evaluate too, but those are findings of ORM101/102/104 themselves.)
pub fn iterating_statement<'a>(
    reference: Node<'a>,
    source: &str,
    p: &Parents<'a>,
) -> Option<Node<'a>> {
    let parent = p.of(reference)?;
    let iterates = match parent.kind_name() {
        "for_statement" | "for_in_clause" => parent
            .field(&field::RIGHT)
            .is_some_and(|r| r.id() == reference.id()),
        "argument_list" => p.of(parent).is_some_and(|call| {
            single_argument_call(call, source)
                .is_some_and(|(f, _)| ITERATING_FUNCTIONS.contains(&f))
        }),
        _ => false,
    };
    if !iterates {
        return None;
    }
    evaluating_statement(reference, p)
}

/// The statement that evaluates `node` every time it runs: `None` when `node` sits in a part of
/// it that may not run (the right of `and`, a branch of `x if c else y`, an `elif` test, a
/// lambda, a comprehension's body).
pub fn evaluating_statement<'a>(node: Node<'a>, p: &Parents<'a>) -> Option<Node<'a>> {
    let statement = enclosing_statement(node, p);
    // Every node between the read and its statement must run whenever the statement runs.
    let mut child = node;
    while let Some(parent) = p.of(child) {
        if parent.id() == statement.id() {
            break;
        }
        let conditional = match parent.kind_name() {
            "boolean_operator" => parent
                .field(&field::LEFT)
                .is_none_or(|l| l.id() != child.id()),
            "conditional_expression" | "lambda" | "elif_clause" | "case_clause" => true,
            "list_comprehension"
            | "set_comprehension"
            | "dictionary_comprehension"
            | "generator_expression" => first_iterable(parent).is_none_or(|it| !contains(it, node)),
            _ => false,
        };
        if conditional {
            return None;
        }
        child = parent;
    }
    Some(statement)
}

/// Whether `earlier` has been evaluated whenever `later` runs: the statement that evaluates it
/// every time has run before `later` (see `runs_before`), and does not contain it.
pub fn evaluated_before<'a>(earlier: Node<'a>, later: Node<'a>, p: &Parents<'a>) -> bool {
    evaluating_statement(earlier, p).is_some_and(|statement| {
        statement.end_byte() <= later.start_byte() && runs_before(statement, later, p)
    })
}

/// Whether `statement` has run whenever `at` runs: it sits in a block around `at`, and either
/// ended before `at` or contains it in a body it runs after the evaluation (a `for` body).
pub fn runs_before<'a>(statement: Node<'a>, at: Node<'a>, p: &Parents<'a>) -> bool {
    let Some(block) = p.of(statement) else {
        return false;
    };
    if !contains(block, at) {
        return false;
    }
    if statement.end_byte() <= at.start_byte() {
        return true;
    }
    // Inside a `for` over the queryset, the rows were fetched before the body runs.
    contains(statement, at)
        && statement.kind_name() == "for_statement"
        && statement
            .field(&field::BODY)
            .is_some_and(|body| contains(body, at))
}

/// Whether any of `names` is rebound in the scope between byte offsets `from` and `to`.
pub fn rebound_between(scope: &ScopeIndex, names: &[&str], from: usize, to: usize) -> bool {
    names.iter().any(|n| {
        scope
            .bindings(n)
            .iter()
            .any(|b| (from..to).contains(&b.name.start_byte()))
    })
}

/// Whether any call between byte offsets `from` and `to` in the scope may write to the
/// database: a write method, or a function of the project's whose body the analyzer does not
/// read (`do_import(...)` may well delete the rows loaded before it).
pub fn writes_between(scope: &ScopeIndex, from: usize, to: usize, source: &str) -> bool {
    let mut writes = false;
    super::syntax::walk(scope.scope, |node| {
        if writes || node.end_byte() <= from || node.start_byte() >= to {
            return false;
        }
        if node.kind_name() == "call" {
            writes = match method_call(node, source) {
                Some((_, m)) => WRITE_METHODS.contains(&m),
                None => node
                    .field(&field::FUNCTION)
                    .is_some_and(|f| !PURE_FUNCTIONS.contains(&text(f, source))),
            };
        }
        true
    });
    writes
}

/// Builtins that read their arguments and touch no database.
const PURE_FUNCTIONS: &[&str] = &[
    "abs",
    "all",
    "any",
    "bool",
    "dict",
    "enumerate",
    "filter",
    "float",
    "format",
    "frozenset",
    "getattr",
    "hasattr",
    "hash",
    "int",
    "isinstance",
    "issubclass",
    "iter",
    "len",
    "list",
    "map",
    "max",
    "min",
    "next",
    "print",
    "range",
    "repr",
    "reversed",
    "round",
    "set",
    "sorted",
    "str",
    "sum",
    "tuple",
    "type",
    "zip",
];

/// The name of an already iterated QuerySet equal to `receiver` (the receiver of a `.count()` or
/// `.exists()` at `call`): written the same way (ignoring spacing, comments, trailing commas and
/// a trailing `.all()`), iterated on every path to the call, and with nothing since then that
/// could change its rows: no rebinding of the name or of the names and attributes its
/// expression uses, no database write. Inside a loop, the whole loop counts as "since".
pub fn loaded_equal_queryset<'a>(
    sem: &Semantics<'a>,
    call: Node<'a>,
    receiver: Node<'a>,
) -> Option<&'a str> {
    let source = sem.source;
    let receiver_tokens = normalized(receiver, source);
    let wanted = without_all(&receiver_tokens);
    let scope = sem.scope_of(call);
    let loops = enclosing_loops(call, scope.scope, &sem.parents);
    let found = scope.assignments().find_map(|(name, binding)| {
        let BindingKind::Assign { value, .. } = binding.kind else {
            return None;
        };
        if binding.name.end_byte() > call.start_byte()
            || without_all(&normalized(value, source)) != wanted
        {
            return None;
        }
        // The name must still hold that assignment at the call...
        let reaching = scope.reaching(name, call, &sem.parents);
        if !reaching.complete
            || reaching.bindings.len() != 1
            || reaching.bindings[0].name.id() != binding.name.id()
        {
            return None;
        }
        // ...and have been iterated on every path to it, with nothing changed since.
        let evaluated = scope.references(name).iter().find_map(|r| {
            let statement = iterating_statement(*r, source, &sem.parents)?;
            (r.start_byte() > binding.name.end_byte() && runs_before(statement, call, &sem.parents))
                .then_some(statement)
        })?;
        let until = loops
            .iter()
            .map(|l| l.end_byte())
            .max()
            .unwrap_or(call.start_byte())
            .max(call.start_byte());
        let writes_from = loops
            .iter()
            .map(|l| l.start_byte())
            .min()
            .unwrap_or(evaluated.start_byte())
            .min(evaluated.start_byte());
        let (names, attributes) = names_and_attributes(value, source, &sem.parents);
        let changed = rebound_between(&scope, &names, binding.statement.end_byte(), until)
            || attributes_assigned_between(
                scope.scope,
                &attributes,
                binding.statement.end_byte(),
                until,
                source,
            )
            || writes_between(&scope, writes_from, until, source);
        (!changed).then_some(name)
    });
    found
}

/// `Entry.objects.all()` and `Entry.objects` count the same rows.
fn without_all(tokens: &str) -> &str {
    tokens.strip_suffix(" . all ( )").unwrap_or(tokens)
}

/// The plain names an expression reads, and the attribute accesses on them (`self.blog`).
fn names_and_attributes<'s, 'a>(
    node: Node<'a>,
    source: &'s str,
    parents: &Parents<'a>,
) -> (Vec<&'s str>, Vec<&'s str>) {
    let (mut names, mut attributes) = (Vec::new(), Vec::new());
    super::syntax::walk(node, |n| {
        match n.kind_name() {
            "identifier" => {
                let is_attribute_name = parents.of(n).is_some_and(|p| {
                    p.kind_name() == "attribute"
                        && p.field(&field::ATTRIBUTE).is_some_and(|a| a.id() == n.id())
                });
                if !is_attribute_name {
                    names.push(&source[n.byte_range()]);
                }
            }
            "attribute" => attributes.push(&source[n.byte_range()]),
            _ => {}
        }
        true
    });
    (names, attributes)
}

/// Whether an assignment in `scope` between `from` and `to` writes one of `attributes`
/// (`self.blog = other`).
fn attributes_assigned_between(
    scope: Node,
    attributes: &[&str],
    from: usize,
    to: usize,
    source: &str,
) -> bool {
    let mut assigned = false;
    super::syntax::walk(scope, |n| {
        if assigned || n.end_byte() <= from || n.start_byte() >= to {
            return false;
        }
        if matches!(n.kind_name(), "assignment" | "augmented_assignment") {
            if let Some(left) = n.field(&field::LEFT) {
                assigned |= attributes.contains(&&source[left.byte_range()]);
            }
        }
        true
    });
    assigned
}
