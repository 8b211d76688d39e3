//! How many queries a loop over a QuerySet runs, as `a + bN` (the code lens on the loop's line):
//! `a` before the first row (the loop's SELECT and one query per prefetched relation), `b` each
//! row runs (a relation read the QuerySet did not join, a query method, a `save()`). A function
//! gets the same count for its whole body (its queries, its one loop with queries per row).
//!
//! A count is a claim, so it is made only where every part of the loop is understood: the
//! iterable is a QuerySet built in plain sight from `Model.objects` and evaluated by the loop,
//! and everything the body does is known to run no query or a known number of them. A call
//! the analyzer cannot see into, an object whose `__str__` may query, a query under a condition
//! or behind a `break`, a nullable key (no query when it is NULL), a write that cascades: the
//! loop gets no count.
//!
//! The counts assume rows have the relations they read (a prefetch whose parents have no
//! related rows skips the next level's query); `tests/query_counts.rs` holds them to what
//! Django's `CaptureQueriesContext` counts at two row counts.

use std::ops::Range;

use rustc_hash::FxHashSet;
use tree_sitter::{Node, Tree};

use super::hover::sql;
use super::index::{string_value, FieldKind, ModelId};
use super::infer::{FileContext, ModelRef, Semantics, Ty};
use super::loop_queries::QUERY_METHODS;
use super::loops::covers;
use super::scope::BindingKind;
use super::syntax::{
    enclosing_scope,
    field::{self, FieldOf},
    strip_parens, walk, KindOf,
};

/// The queries of one loop or function.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueryCount {
    /// The `for` statement, comprehension or function definition.
    pub range: Range<usize>,
    /// Queries before the first row: the loop's SELECT and its prefetches.
    pub before: u32,
    /// Queries each row runs.
    pub per_row: u32,
    /// What runs them, in source order within each part (once, then per row).
    pub queries: Vec<CountedQuery>,
}

/// Queries a count includes, and the expression that runs them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CountedQuery {
    pub range: Range<usize>,
    pub runs: Runs,
    pub count: u32,
    /// On every row of the loop (else once).
    pub per_row: bool,
}

/// What kind of expression runs a counted query.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Runs {
    /// A QuerySet evaluated: its rows.
    Rows,
    /// The prefetches of the QuerySet evaluated there, one query per level.
    Prefetches,
    /// `row.key`: the related row, loaded by its key.
    Relation,
    /// A query method (`count()`, `get()` ...), `create()` or `save()`.
    Call,
}

impl QueryCount {
    /// `1 query`, `2 queries`, `1 + N queries`, `1 + 2N queries`.
    pub fn title(&self) -> String {
        let a = self.before;
        match self.per_row {
            0 if a == 1 => "1 query".to_string(),
            0 => format!("{a} queries"),
            1 => format!("{a} + N queries"),
            b => format!("{a} + {b}N queries"),
        }
    }
}

/// Every loop and function of a file whose queries the analyzer can count, in source order.
pub fn query_counts(source: &str, tree: &Tree, file: &FileContext) -> Vec<QueryCount> {
    let facts = file.facts(source, tree);
    let sem =
        Semantics::new(source, tree.root_node(), &file.index, &facts).with_program(&file.program);
    counted_loops(&sem, tree.root_node())
}

/// What clicking the lens of the loop or function starting at byte `start` shows: its queries,
/// as a SQL document, each under a comment naming the code that runs it and its line, with the
/// SQL where hover renders it (for `target`, which `hover::sql_target` gives) and why not
/// elsewhere. `None` when no count starts there.
pub fn queries_shown(
    source: &str,
    tree: &Tree,
    file: &FileContext,
    start: usize,
    target: Result<sql::Target, String>,
) -> Option<String> {
    let facts = file.facts(source, tree);
    let sem =
        Semantics::new(source, tree.root_node(), &file.index, &facts).with_program(&file.program);
    // Only the loop or function the lens is on, among the nodes that start at `start`.
    let mut node = tree.root_node().descendant_for_byte_range(start, start)?;
    let count = loop {
        if node.start_byte() != start {
            return None;
        }
        if let Some(count) = count_of(&sem, node) {
            break count;
        }
        node = sem.parents.of(node)?;
    };
    let line = |offset: usize| source[..offset].matches('\n').count() + 1;
    let what = match node.kind_name() {
        "function_definition" => "function",
        _ => "loop",
    };
    let mut shown = format!(
        "-- The {what} on line {} runs {}.\n",
        line(start),
        count.title()
    );
    for per_row in [false, true] {
        let part: Vec<&CountedQuery> = count
            .queries
            .iter()
            .filter(|q| q.per_row == per_row)
            .collect();
        if part.is_empty() {
            continue;
        }
        shown.push_str(if per_row {
            "\n-- On each row:\n"
        } else {
            "\n-- Once:\n"
        });
        for query in part {
            let node = tree
                .root_node()
                .descendant_for_byte_range(query.range.start, query.range.end)?;
            let code = source[query.range.clone()]
                .split_whitespace()
                .collect::<Vec<_>>();
            let times = match query.count {
                1 => String::new(),
                n => format!(", {n} queries"),
            };
            let rows_sql = |node| match &target {
                Ok(target) => sql::sql_of(&sem, node, *target),
                Err(reason) => Some(Err(reason.clone())),
            };
            let shows: Vec<(String, Option<Result<String, String>>)> = match query.runs {
                Runs::Rows => vec![(format!("its rows{times}"), rows_sql(node))],
                Runs::Prefetches => prefetches_shown(&sem, node, &target, query.count),
                Runs::Relation => vec![(
                    format!("loads the related row by its key{times}"),
                    related_row(&sem, node, &target),
                )],
                Runs::Call => {
                    // A QuerySet method's call, or `row.save()`.
                    let sql = match &target {
                        Ok(target) => sql::sql_of_call(&sem, node, *target)
                            .or_else(|| sql::sql_of_save(&sem, node, *target)),
                        Err(reason) => Some(Err(reason.clone())),
                    };
                    vec![(format!("runs a query{times}"), sql)]
                }
            };
            for (label, sql) in shows {
                shown.push_str(&format!(
                    "-- `{}` (line {}): {label}\n",
                    code.join(" "),
                    line(query.range.start)
                ));
                match sql {
                    Some(Ok(sql)) => shown.push_str(&format!("{sql};\n")),
                    Some(Err(reason)) => shown.push_str(&format!("-- SQL not shown: {reason}\n")),
                    None => shown.push_str("-- SQL not shown: not a QuerySet of a known model\n"),
                }
            }
        }
    }
    Some(shown)
}

/// Each query the prefetches of the QuerySet `node` run, labelled with its level; one entry
/// saying why when they are not shown, or when what renders is not the `counted` queries.
fn prefetches_shown<'a>(
    sem: &Semantics<'a>,
    node: Node<'a>,
    target: &Result<sql::Target, String>,
    counted: u32,
) -> Vec<(String, Option<Result<String, String>>)> {
    let label = match counted {
        1 => "its prefetch, one query".to_string(),
        n => format!("its prefetches, {n} queries, one per level"),
    };
    let prefetches = match target {
        Ok(target) => sql::prefetch_queries_of(sem, node, *target),
        Err(reason) => Some(Err(reason.clone())),
    };
    match prefetches {
        Some(Ok(queries)) if queries.len() == counted as usize => queries
            .into_iter()
            .map(|q| (format!("its prefetch of `{}`", q.lookup), Some(q.sql)))
            .collect(),
        Some(Ok(_)) => vec![(
            label,
            Some(Err("the prefetch queries are not all known".into())),
        )],
        Some(Err(reason)) => vec![(label, Some(Err(reason)))],
        None => vec![(label, None)],
    }
}

/// The query `row.relation` runs on its first read.
fn related_row<'a>(
    sem: &Semantics<'a>,
    read: Node<'a>,
    target: &Result<sql::Target, String>,
) -> Option<Result<String, String>> {
    let object = read.field(&field::OBJECT)?;
    let relation = sem.text(read.field(&field::ATTRIBUTE)?);
    let Ty::Instance(ModelRef::Indexed(model)) = sem.ty(object) else {
        return None;
    };
    match target {
        Ok(target) => sql::sql_of_related_row(sem.index(), model, relation, target.dialect),
        Err(reason) => Some(Err(reason.clone())),
    }
}

/// Every loop and function of the tree under `root` whose queries the analyzer can count, in
/// source order.
fn counted_loops<'a>(sem: &Semantics<'a>, root: Node<'a>) -> Vec<QueryCount> {
    let mut counted = Vec::new();
    walk(root, |node| {
        counted.extend(count_of(sem, node));
        true
    });
    counted
}

/// The count of `node` when it is a loop or function the analyzer can count.
fn count_of<'a>(sem: &Semantics<'a>, node: Node<'a>) -> Option<QueryCount> {
    match node.kind_name() {
        "function_definition" => count_function(sem, node),
        _ => count_loop(sem, node),
    }
}

/// A function's queries, in the same form as a loop's: what its statements run, with at most
/// one loop whose rows run queries (two such loops would make `N` mean two things). `None`
/// when it runs none, or returns a QuerySet (its caller runs that one).
fn count_function<'a>(sem: &Semantics<'a>, function: Node<'a>) -> Option<QueryCount> {
    let body = function.field(&field::BODY)?;
    if !may_count(sem, body) {
        return None;
    }
    let mut counter = RowCounter {
        sem,
        rows: &Rows::default(),
        paths: Vec::new(),
        loaded: FxHashSet::default(),
        per_row: 0,
        loops_per_row: Some(Vec::new()),
        queries: Vec::new(),
    };
    let mut cursor = body.walk();
    let statements: Vec<Node<'a>> = body.named_children(&mut cursor).collect();
    for (i, statement) in statements.iter().enumerate() {
        let docstring = i == 0
            && statement.kind_name() == "expression_statement"
            && statement
                .named_child(0)
                .is_some_and(|e| e.kind_name() == "string");
        if docstring {
            continue;
        }
        if statement.kind_name() == "return_statement" && i + 1 == statements.len() {
            if let Some(value) = statement.named_child(0) {
                if matches!(sem.ty(value), Ty::QuerySet(_) | Ty::Manager(_)) {
                    return None;
                }
                counter.visit(value, Context::default())?;
            }
            continue;
        }
        counter.visit(*statement, Context::default())?;
    }
    let per_row = match counter.loops_per_row?.as_slice() {
        [] => 0,
        [per_row] => *per_row,
        _ => return None,
    };
    if counter.per_row == 0 && per_row == 0 {
        return None;
    }
    Some(QueryCount {
        range: function.byte_range(),
        before: counter.per_row,
        per_row,
        queries: counter.queries,
    })
}

/// A `for` statement (without `else:`) or comprehension taken apart: its target, iterable and
/// body, and for a comprehension its clauses after the first `for` (`if`s, more `for`s).
struct LoopParts<'a> {
    target: Node<'a>,
    iterable: Node<'a>,
    body: Node<'a>,
    rest: Vec<Node<'a>>,
}

fn loop_parts(node: Node) -> Option<LoopParts> {
    match node.kind_name() {
        "for_statement" if node.field(&field::ALTERNATIVE).is_none() => Some(LoopParts {
            target: node.field(&field::LEFT)?,
            iterable: node.field(&field::RIGHT)?,
            body: node.field(&field::BODY)?,
            rest: Vec::new(),
        }),
        "list_comprehension" | "set_comprehension" | "dictionary_comprehension" => {
            let (clause, rest) = only_clause(node)?;
            Some(LoopParts {
                target: clause.field(&field::LEFT)?,
                iterable: clause.field(&field::RIGHT)?,
                body: node.field(&field::BODY)?,
                rest,
            })
        }
        _ => None,
    }
}

fn count_loop<'a>(sem: &Semantics<'a>, node: Node<'a>) -> Option<QueryCount> {
    let LoopParts {
        target,
        iterable,
        body,
        rest,
    } = loop_parts(node)?;
    if !rest.is_empty() {
        return None;
    }
    let rows = fresh_rows(sem, iterable)?;
    let iterable = strip_parens(iterable);
    // A row, or the names a `values_list()` row unpacks to (no instances: no relation reads).
    let names: Vec<&str> = match target.kind_name() {
        "identifier" => vec![sem.text(target)],
        "pattern_list" | "tuple_pattern" if rows.values => {
            let mut cursor = target.walk();
            let parts: Vec<Node> = target.named_children(&mut cursor).collect();
            if parts.iter().any(|p| p.kind_name() != "identifier") {
                return None;
            }
            parts.iter().map(|p| sem.text(*p)).collect()
        }
        _ => return None,
    };
    if names.iter().any(|name| rebinds(sem, body, name)) {
        return None;
    }
    let mut counter = RowCounter {
        sem,
        rows: &rows,
        paths: names.iter().map(|name| (*name, String::new())).collect(),
        loaded: FxHashSet::default(),
        per_row: 0,
        loops_per_row: None,
        queries: Vec::new(),
    };
    counter.visit(body, Context::default())?;
    let once = |runs, count| CountedQuery {
        range: iterable.byte_range(),
        runs,
        count,
        per_row: false,
    };
    let mut queries = vec![once(Runs::Rows, 1)];
    if rows.before > 1 {
        queries.push(once(Runs::Prefetches, rows.before - 1));
    }
    queries.extend(counter.queries);
    Some(QueryCount {
        range: node.byte_range(),
        before: rows.before,
        per_row: counter.per_row,
        queries,
    })
}

/// A look at a function's calls before any inference, which most functions would spend in vain:
/// whether it may run a query the count would show (a loop, a query method), and calls nothing
/// the count gives up on anyway (a function that is not a builtin or a class, a method of `self`
/// or of what a call returns).
fn may_count(sem: &Semantics, body: Node) -> bool {
    let (mut queries, mut hopeless) = (false, false);
    walk(body, |node| {
        match node.kind_name() {
            "for_statement"
            | "list_comprehension"
            | "set_comprehension"
            | "dictionary_comprehension" => queries = true,
            "function_definition" | "class_definition" | "lambda" => hopeless = true,
            "call" => match node.field(&field::FUNCTION) {
                Some(function) if function.kind_name() == "identifier" => {
                    let name = sem.text(function);
                    hopeless |= !(BUILTINS.contains(&name)
                        || PLAIN_CONTAINERS.contains(&name)
                        || name.starts_with(|c: char| c.is_ascii_uppercase()));
                }
                Some(function) if function.kind_name() == "attribute" => {
                    let method = function
                        .field(&field::ATTRIBUTE)
                        .map_or("", |m| sem.text(m));
                    // Joining and prefetching build the QuerySet too (the loop counts them).
                    let builds = CHAINABLE.contains(&method)
                        || matches!(method, "select_related" | "prefetch_related");
                    if runs_one_query(method) || matches!(method, "create" | "save") {
                        queries = true;
                    } else if !builds {
                        let receiver = function.field(&field::OBJECT);
                        hopeless |= receiver.is_none_or(|r| !plain_receiver_shape(sem, r));
                    }
                }
                _ => hopeless = true,
            },
            _ => {}
        }
        !hopeless
    });
    queries && !hopeless
}

/// A receiver that may hold a plain value (`names`, `by_author[key]`, `row.title`), not `self`,
/// `cls` or what a call returns.
fn plain_receiver_shape(sem: &Semantics, receiver: Node) -> bool {
    let mut base = strip_parens(receiver);
    loop {
        match base.kind_name() {
            "identifier" => return !matches!(sem.text(base), "self" | "cls"),
            "attribute" | "subscript" => {
                let field = if base.kind_name() == "attribute" {
                    "object"
                } else {
                    "value"
                };
                match base.child_by_field_name(field) {
                    Some(inner) => base = strip_parens(inner),
                    None => return false,
                }
            }
            "string" => return true,
            _ => return false,
        }
    }
}

/// The one `for` clause of a comprehension, and its other clauses (`if`, more `for`s).
fn only_clause(comprehension: Node) -> Option<(Node, Vec<Node>)> {
    let mut cursor = comprehension.walk();
    let mut clauses = comprehension
        .named_children(&mut cursor)
        .filter(|c| matches!(c.kind_name(), "for_in_clause" | "if_clause"));
    let first = clauses
        .next()
        .filter(|c| c.kind_name() == "for_in_clause")?;
    Some((first, clauses.collect()))
}

/// Whether `name` is assigned anywhere in `body`: the row's name no longer holds the row.
fn rebinds(sem: &Semantics, body: Node, name: &str) -> bool {
    let mut found = false;
    walk(body, |n| {
        let target = match n.kind_name() {
            "assignment" | "augmented_assignment" => n.field(&field::LEFT),
            "for_statement" | "for_in_clause" => n.field(&field::LEFT),
            "named_expression" => n.field(&field::NAME),
            _ => None,
        };
        if let Some(target) = target {
            // `row.x = ...` and `d[row] = ...` bind no name.
            walk(target, |t| {
                found |= t.kind_name() == "identifier" && sem.text(t) == name;
                !matches!(t.kind_name(), "attribute" | "subscript")
            });
        }
        !found
    });
    found
}

/// `x` in `obj.x`: a name that binds nothing.
fn is_attribute_name(identifier: Node) -> bool {
    identifier.parent().is_some_and(|p| {
        p.kind_name() == "attribute"
            && p.field(&field::ATTRIBUTE)
                .is_some_and(|a| a.id() == identifier.id())
    })
}

/// The rows a loop iterates, when evaluating its iterable runs a query the analyzer can count.
#[derive(Default)]
struct Rows {
    /// Lookups joined with `select_related`.
    joined: Vec<String>,
    /// Lookups prefetched with `prefetch_related` (a `Prefetch`'s own lookups below its own).
    prefetched: Vec<String>,
    /// The names `annotate(name=...)` gives the rows: values on each row, no query.
    annotations: Vec<String>,
    /// Built with `values()`/`values_list()`: the rows are dictionaries or tuples.
    values: bool,
    before: u32,
}

/// The rows of `iterable` when the loop is what evaluates it: a chain from `Model.objects`, or
/// a name that one assignment binds to such a chain and that nothing else reads (an earlier
/// read may have evaluated it, and the loop would then run no query).
fn fresh_rows<'a>(sem: &Semantics<'a>, iterable: Node<'a>) -> Option<Rows> {
    let iterable = strip_parens(iterable);
    let Ty::QuerySet(queryset) = sem.ty(iterable) else {
        return None;
    };
    let Some(ModelRef::Indexed(model)) = queryset.model else {
        return None;
    };
    if queryset.empty || queryset.locks {
        return None;
    }
    let chain = match iterable.kind_name() {
        "identifier" => only_binding_read_once(sem, iterable)?,
        _ => iterable,
    };
    let mut joined = Vec::new();
    let mut prefetched = Vec::new();
    let built_from = loaded_by_chain(sem, chain, "", &mut joined, &mut prefetched)?;
    if built_from != model {
        return None;
    }
    let prefetches = prefetch_queries(sem, model, &joined, &prefetched)?;
    Some(Rows {
        joined,
        prefetched,
        annotations: annotations_of(sem, chain),
        values: queryset.values,
        before: 1 + prefetches,
    })
}

/// The names the `annotate()` calls of a chain give its rows.
fn annotations_of<'a>(sem: &Semantics<'a>, chain: Node<'a>) -> Vec<String> {
    let mut names = Vec::new();
    let mut node = strip_parens(chain);
    while node.kind_name() == "call" {
        let Some(function) = node.field(&field::FUNCTION) else {
            break;
        };
        let method = function.field(&field::ATTRIBUTE).map(|m| sem.text(m));
        let arguments = node.field(&field::ARGUMENTS);
        if let Some(arguments) = arguments.filter(|_| method == Some("annotate")) {
            let mut cursor = arguments.walk();
            for argument in arguments.named_children(&mut cursor) {
                let name = argument.field(&field::NAME);
                if let Some(name) = name.filter(|_| argument.kind_name() == "keyword_argument") {
                    names.push(sem.text(name).to_string());
                }
            }
        }
        match function.field(&field::OBJECT) {
            Some(object) => node = strip_parens(object),
            None => break,
        }
    }
    names
}

/// The value of the one assignment of `name`, when `name` is read nowhere else in its scope.
fn only_binding_read_once<'a>(sem: &Semantics<'a>, name: Node<'a>) -> Option<Node<'a>> {
    let scope = sem.scope_of(name);
    let text = sem.text(name);
    let reaching = scope.reaching(text, name, &sem.parents);
    let ([binding], true) = (reaching.bindings.as_slice(), reaching.complete) else {
        return None;
    };
    let BindingKind::Assign { value, .. } = binding.kind else {
        return None;
    };
    if scope.bindings(text).len() != 1 {
        return None;
    }
    let mut reads = 0;
    walk(enclosing_scope(name, &sem.parents), |n| {
        if n.kind_name() == "identifier" && sem.text(n) == text && !is_attribute_name(n) {
            reads += 1;
        }
        true
    });
    // The assignment's target and the loop's iterable.
    (reads == 2).then(|| strip_parens(value))
}

/// QuerySet methods that neither run a query nor change how many queries evaluating it runs.
const CHAINABLE: &[&str] = &[
    "all",
    "filter",
    "exclude",
    "order_by",
    "distinct",
    "reverse",
    "values",
    "values_list",
    "annotate",
];

/// Walks a chain from `Model.objects` outwards, collecting what it joins and prefetches (with
/// `prefix` before each lookup, for a `Prefetch`'s own QuerySet); returns the model. `None` for
/// anything else: another manager, a method that changes the queries (`only()`, `iterator()`),
/// a lookup not written as a literal.
fn loaded_by_chain<'a>(
    sem: &Semantics<'a>,
    chain: Node<'a>,
    prefix: &str,
    joined: &mut Vec<String>,
    prefetched: &mut Vec<String>,
) -> Option<ModelId> {
    let mut node = strip_parens(chain);
    loop {
        match node.kind_name() {
            "call" => {
                let function = node.field(&field::FUNCTION)?;
                let arguments = node.field(&field::ARGUMENTS)?;
                if function.kind_name() != "attribute" {
                    return None;
                }
                let method = sem.text(function.field(&field::ATTRIBUTE)?);
                match method {
                    "select_related" => {
                        let lookups = literal_arguments(sem, arguments)?;
                        if lookups.is_empty() {
                            // A bare `select_related()` joins only the non-null keys.
                            return None;
                        }
                        joined.extend(lookups.iter().flat_map(|l| joined_by(prefix, l)));
                    }
                    "prefetch_related" => {
                        prefetches_of(sem, arguments, prefix, joined, prefetched)?
                    }
                    _ if CHAINABLE.contains(&method) => {}
                    _ => return None,
                }
                node = strip_parens(function.field(&field::OBJECT)?);
            }
            "subscript" => node = strip_parens(node.field(&field::VALUE)?),
            "attribute" => return default_manager_model(sem, node),
            _ => return None,
        }
    }
}

/// The model of `Model.objects` when `objects` is Django's own manager: a custom one may
/// join, prefetch or filter in `get_queryset()`.
fn default_manager_model<'a>(sem: &Semantics<'a>, manager: Node<'a>) -> Option<ModelId> {
    let object = manager.field(&field::OBJECT)?;
    let name = manager.field(&field::ATTRIBUTE)?;
    let Ty::ModelClass(ModelRef::Indexed(model)) = sem.ty(object) else {
        return None;
    };
    let custom = sem
        .index()
        .model(model)
        .manager("objects")
        .is_some_and(|m| !m.classes.is_empty() || !m.queryset_methods.is_empty());
    (sem.text(name) == "objects" && !custom).then_some(model)
}

/// The arguments of a call when all are string literals.
fn literal_arguments(sem: &Semantics, arguments: Node) -> Option<Vec<String>> {
    let mut cursor = arguments.walk();
    arguments
        .named_children(&mut cursor)
        .filter(|a| a.kind_name() != "comment")
        .map(|a| string_value(a, sem.source))
        .collect()
}

/// The lookups of `prefetch_related(...)`'s arguments: literals, and `Prefetch("rel",
/// queryset=...)` with what its own QuerySet joins and prefetches below `rel`.
fn prefetches_of<'a>(
    sem: &Semantics<'a>,
    arguments: Node<'a>,
    prefix: &str,
    joined: &mut Vec<String>,
    prefetched: &mut Vec<String>,
) -> Option<()> {
    let mut cursor = arguments.walk();
    for argument in arguments.named_children(&mut cursor) {
        if let Some(lookup) = string_value(argument, sem.source) {
            prefetched.push(format!("{prefix}{lookup}"));
            continue;
        }
        let function = argument.field(&field::FUNCTION)?;
        if argument.kind_name() != "call" || !sem.text(function).ends_with("Prefetch") {
            return None;
        }
        let parts = argument.field(&field::ARGUMENTS)?;
        let mut inner = parts.walk();
        let parts: Vec<Node> = parts.named_children(&mut inner).collect();
        let (lookup, queryset) = match parts.as_slice() {
            [lookup] => (*lookup, None),
            [lookup, queryset] if queryset.kind_name() == "keyword_argument" => {
                let name = queryset.field(&field::NAME)?;
                if sem.text(name) != "queryset" {
                    // `to_attr=` keeps the rows under another name.
                    return None;
                }
                (*lookup, queryset.field(&field::VALUE))
            }
            _ => return None,
        };
        let lookup = format!("{prefix}{}", string_value(lookup, sem.source)?);
        if let Some(queryset) = queryset {
            loaded_by_chain(sem, queryset, &format!("{lookup}__"), joined, prefetched)?;
        }
        prefetched.push(lookup);
    }
    Some(())
}

/// One query per relation a prefetch loads: every level of every lookup, once, except the
/// levels `select_related` joined already. `None` when a level is not a relation the index
/// knows, or is a nullable key (whose prefetch runs no query when every row's key is NULL).
fn prefetch_queries(
    sem: &Semantics,
    model: ModelId,
    joined: &[String],
    prefetched: &[String],
) -> Option<u32> {
    let mut levels = FxHashSet::default();
    for lookup in prefetched {
        let mut current = model;
        let mut path = String::new();
        for segment in lookup.split("__") {
            if !path.is_empty() {
                path.push_str("__");
            }
            path.push_str(segment);
            let (target, nullable) = relation(sem, current, segment)?;
            if nullable {
                return None;
            }
            current = target;
            if !joined.contains(&path) {
                levels.insert(path.clone());
            }
        }
    }
    Some(levels.len() as u32)
}

/// The relations `select_related(lookup)` joins, below `prefix` (a `Prefetch`'s level):
/// `author__publisher` joins `author` on the way.
pub(crate) fn joined_by(prefix: &str, lookup: &str) -> Vec<String> {
    let segments: Vec<&str> = lookup.split("__").collect();
    (1..=segments.len())
        .map(|n| format!("{prefix}{}", segments[..n].join("__")))
        .collect()
}

/// The model a relation of `model` leads to, and whether it is a nullable key.
fn relation(sem: &Semantics, model: ModelId, name: &str) -> Option<(ModelId, bool)> {
    let model = sem.index().model(model);
    if let Some(field) = model.field(name) {
        return match field.kind {
            FieldKind::ForeignKey | FieldKind::OneToOne => Some((field.target?, field.may_be_null)),
            FieldKind::ManyToMany => Some((field.target?, false)),
            _ => None,
        };
    }
    model.reverse(name).map(|r| (r.source, false))
}

/// Where the walk of a loop's body is.
#[derive(Clone, Copy, Default)]
struct Context {
    /// Under a condition: runs on some rows only.
    conditional: bool,
    /// Inside an inner loop: runs a number of times per row the analyzer does not know.
    repeated: bool,
}

impl Context {
    fn conditional(self) -> Self {
        Self {
            conditional: true,
            ..self
        }
    }

    fn repeated(self) -> Self {
        Self {
            repeated: true,
            ..self
        }
    }
}

/// Counts the queries one row of a loop runs, walking its body; every method returns `None`
/// when the body does something it cannot count.
struct RowCounter<'s, 'a> {
    sem: &'s Semantics<'a>,
    rows: &'s Rows,
    /// Names bound to the row or to rows reached from it, with their relation path from it.
    paths: Vec<(&'a str, String)>,
    /// Relations read already on this row: Django caches a loaded relation on the instance.
    loaded: FxHashSet<String>,
    /// The queries counted: each row's, or for a function, what its statements run once.
    per_row: u32,
    /// For a function: what each row runs of each of its loops whose rows run queries.
    loops_per_row: Option<Vec<u32>>,
    /// What runs the queries counted.
    queries: Vec<CountedQuery>,
}

/// Functions that run no query unless handed a QuerySet or an instance (whose `__str__` may).
const BUILTINS: &[&str] = &[
    "print",
    "len",
    "str",
    "repr",
    "int",
    "float",
    "bool",
    "abs",
    "round",
    "min",
    "max",
    "sum",
    "sorted",
    "list",
    "tuple",
    "set",
    "dict",
    "range",
    "enumerate",
    "zip",
    "isinstance",
];

/// `collections`' containers, which run no query either.
const PLAIN_CONTAINERS: &[&str] = &["defaultdict", "Counter", "OrderedDict"];

/// The builtins above that evaluate a QuerySet handed to them, running its one query.
const EVALUATING: &[&str] = &["len", "list", "tuple", "set", "sorted", "bool"];

/// Whether a QuerySet method runs exactly one query: the query methods the loop rules know but
/// `in_bulk()` (none for an empty list of keys), and `update()`.
fn runs_one_query(method: &str) -> bool {
    (QUERY_METHODS.contains(&method) && method != "in_bulk") || method == "update"
}

impl<'a> RowCounter<'_, 'a> {
    fn count(&mut self, queries: u32, at: Range<usize>, runs: Runs, cx: Context) -> Option<()> {
        if queries == 0 {
            return Some(());
        }
        if cx.conditional || cx.repeated {
            return None;
        }
        self.per_row += queries;
        self.queries.push(CountedQuery {
            range: at,
            runs,
            count: queries,
            // A loop's counter counts each row's queries; a function's, its own.
            per_row: self.loops_per_row.is_none(),
        });
        Some(())
    }

    fn visit(&mut self, node: Node<'a>, cx: Context) -> Option<()> {
        match node.kind_name() {
            "function_definition"
            | "class_definition"
            | "decorated_definition"
            | "lambda"
            | "return_statement"
            | "break_statement"
            | "continue_statement"
            | "raise_statement"
            | "yield"
            | "await"
            | "global_statement"
            | "nonlocal_statement"
            | "delete_statement"
            | "match_statement"
            | "while_statement"
            | "generator_expression"
            | "named_expression" => None,
            "if_statement" => {
                let condition = node.field(&field::CONDITION)?;
                self.visit(condition, cx)?;
                self.children_except(node, condition, cx.conditional())
            }
            "conditional_expression" => {
                // `a if condition else b`
                let condition = node.named_child(1)?;
                self.visit(condition, cx)?;
                self.children_except(node, condition, cx.conditional())
            }
            "boolean_operator" => {
                self.visit(node.field(&field::LEFT)?, cx)?;
                self.visit(node.field(&field::RIGHT)?, cx.conditional())
            }
            "except_clause" => self.children(node, cx.conditional()),
            "for_statement" => self.inner_loop(node, cx),
            "list_comprehension" | "set_comprehension" | "dictionary_comprehension" => {
                self.inner_loop(node, cx)
            }
            "call" => self.call(node, cx),
            "attribute" => self.attribute(node, cx),
            "assignment" if self.keeps_a_queryset_for_a_loop(node) => {
                // Evaluated, and counted, by the loop.
                self.per_row_chain(node.field(&field::RIGHT)?, cx)
                    .map(|_| ())
            }
            "assignment" | "augmented_assignment" => {
                let left = node.field(&field::LEFT)?;
                if left.kind_name() == "attribute" {
                    // Setting a field or relation runs no query; reading the object may.
                    self.visit(left.field(&field::OBJECT)?, cx)?;
                } else {
                    self.visit(left, cx)?;
                }
                match node.field(&field::RIGHT) {
                    Some(right) => self.visit(right, cx),
                    None => Some(()),
                }
            }
            "interpolation" => {
                let expression = node.field(&field::EXPRESSION)?;
                if matches!(self.sem.ty(expression), Ty::Instance(_)) {
                    return None;
                }
                self.children(node, cx)
            }
            "binary_operator" => {
                let formats_an_instance = node
                    .field(&field::OPERATOR)
                    .is_some_and(|o| o.kind_name() == "%")
                    && matches!(
                        self.sem.ty(node.field(&field::RIGHT)?),
                        Ty::Instance(_) | Ty::Tuple(_)
                    );
                if formats_an_instance {
                    return None;
                }
                self.children(node, cx)
            }
            _ => self.children(node, cx),
        }
    }

    /// `rows = Model.objects...` whose name is read once, by a loop that iterates it.
    fn keeps_a_queryset_for_a_loop(&self, assignment: Node<'a>) -> bool {
        let (Some(left), Some(right)) = (
            assignment.field(&field::LEFT),
            assignment.field(&field::RIGHT),
        ) else {
            return false;
        };
        if left.kind_name() != "identifier" || !matches!(self.sem.ty(right), Ty::QuerySet(_)) {
            return false;
        }
        let name = self.sem.text(left);
        let mut reads = Vec::new();
        walk(enclosing_scope(left, &self.sem.parents), |n| {
            if n.kind_name() == "identifier" && self.sem.text(n) == name && !is_attribute_name(n) {
                reads.push(n);
            }
            true
        });
        let [target, read] = reads.as_slice() else {
            return false;
        };
        target.id() == left.id()
            && self.sem.parents.of(*read).is_some_and(|p| {
                matches!(p.kind_name(), "for_statement" | "for_in_clause")
                    && p.field(&field::RIGHT).is_some_and(|r| r.id() == read.id())
            })
    }

    fn children(&mut self, node: Node<'a>, cx: Context) -> Option<()> {
        let mut cursor = node.walk();
        let children: Vec<Node<'a>> = node.named_children(&mut cursor).collect();
        children.into_iter().try_for_each(|c| self.visit(c, cx))
    }

    fn children_except(&mut self, node: Node<'a>, skipped: Node<'a>, cx: Context) -> Option<()> {
        let mut cursor = node.walk();
        let children: Vec<Node<'a>> = node
            .named_children(&mut cursor)
            .filter(|c| c.id() != skipped.id())
            .collect();
        children.into_iter().try_for_each(|c| self.visit(c, cx))
    }

    /// A loop inside the row's loop: its iterable runs once per row, its body a number of times
    /// the analyzer does not know, so any query there is not counted.
    fn inner_loop(&mut self, node: Node<'a>, cx: Context) -> Option<()> {
        if let Some(inner) = count_loop(self.sem, node) {
            let (before, per_row): (Vec<_>, Vec<_>) =
                inner.queries.into_iter().partition(|q| !q.per_row);
            if inner.per_row > 0 {
                // A loop with queries per row: `N` of a function's count, once.
                match &mut self.loops_per_row {
                    Some(loops) if !cx.conditional && !cx.repeated => loops.push(inner.per_row),
                    _ => return None,
                }
                self.queries.extend(per_row);
            }
            // Its SELECT and prefetches run each time the loop starts.
            for query in before {
                self.count(query.count, query.range, query.runs, cx)?;
            }
            return Some(());
        }
        let LoopParts {
            target,
            iterable,
            body,
            rest,
        } = loop_parts(node)?;
        if rest.iter().any(|c| c.kind_name() != "if_clause") {
            return None;
        }
        let iterable = strip_parens(iterable);
        let inner_rows_path = match self.sem.ty(iterable) {
            Ty::QuerySet(_) => self.evaluated(iterable, cx)?,
            _ => {
                self.visit(iterable, cx)?;
                None
            }
        };
        let mut bound = Vec::new();
        walk(target, |t| {
            if t.kind_name() == "identifier" {
                bound.push(self.sem.text(t));
            }
            true
        });
        if bound
            .iter()
            .any(|name| self.paths.iter().any(|(p, _)| p == name))
        {
            return None;
        }
        let pushed = match (target.kind_name(), inner_rows_path) {
            ("identifier", Some(path)) => {
                self.paths.push((self.sem.text(target), path));
                true
            }
            _ => false,
        };
        let inner = cx.repeated();
        let mut result = rest
            .iter()
            .try_for_each(|clause| self.children(*clause, inner));
        if result.is_some() {
            let body_cx = if rest.is_empty() {
                inner
            } else {
                inner.conditional()
            };
            result = self.visit(body, body_cx);
        }
        if pushed {
            self.paths.pop();
        }
        result
    }

    /// A QuerySet evaluated here (iterated, or handed to `list()`): one query, or none when it
    /// is `row.relation.all()` and the row's QuerySet prefetched the relation. Returns the
    /// relation path of its rows from the loop's row, when they are a prefetched relation's.
    fn evaluated(&mut self, queryset: Node<'a>, cx: Context) -> Option<Option<String>> {
        let chain = self.per_row_chain(queryset, cx)?;
        if chain.prefetches {
            return None;
        }
        match chain.relation_path {
            Some(path) if chain.methods == ["all"] && covers(&self.rows.prefetched, &path) => {
                Some(Some(path))
            }
            _ => {
                self.count(1, queryset.byte_range(), Runs::Rows, cx)?;
                Some(None)
            }
        }
    }

    /// Walks a QuerySet chain built in the row's loop (`Tag.objects.filter(...)`,
    /// `row.tags.all()`), visiting its arguments.
    fn per_row_chain(&mut self, queryset: Node<'a>, cx: Context) -> Option<PerRowChain<'a>> {
        let mut node = strip_parens(queryset);
        let mut methods = Vec::new();
        let mut prefetches = false;
        loop {
            match node.kind_name() {
                "call" => {
                    let function = node.field(&field::FUNCTION)?;
                    if function.kind_name() != "attribute" {
                        return None;
                    }
                    let method = self.sem.text(function.field(&field::ATTRIBUTE)?);
                    match method {
                        "select_related" => {}
                        "prefetch_related" => prefetches = true,
                        _ if CHAINABLE.contains(&method) => {}
                        _ => return None,
                    }
                    methods.push(method);
                    self.visit(node.field(&field::ARGUMENTS)?, cx)?;
                    node = strip_parens(function.field(&field::OBJECT)?);
                }
                "attribute" => {
                    let object = node.field(&field::OBJECT)?;
                    let name = self.sem.text(node.field(&field::ATTRIBUTE)?);
                    methods.reverse();
                    if default_manager_model(self.sem, node).is_some() {
                        return Some(PerRowChain {
                            methods,
                            prefetches,
                            relation_path: None,
                        });
                    }
                    let Ty::Instance(ModelRef::Indexed(model)) = self.sem.ty(object) else {
                        return None;
                    };
                    super::loops::to_many_target(self.sem, model, name)?;
                    // Whose relation it is decides whether a prefetch covers it.
                    let path = self.path_of(object)?;
                    self.visit(object, cx)?;
                    return Some(PerRowChain {
                        methods,
                        prefetches,
                        relation_path: Some(join(&path, name)),
                    });
                }
                _ => return None,
            }
        }
    }

    fn call(&mut self, call: Node<'a>, cx: Context) -> Option<()> {
        let function = call.field(&field::FUNCTION)?;
        let arguments = call.field(&field::ARGUMENTS)?;
        match function.kind_name() {
            "attribute" => {
                let receiver = strip_parens(function.field(&field::OBJECT)?);
                let method = self.sem.text(function.field(&field::ATTRIBUTE)?);
                match self.sem.ty(receiver) {
                    Ty::QuerySet(_) | Ty::Manager(_) => {
                        if method == "create" {
                            let model = default_manager_model(self.sem, receiver)?;
                            if !self.plain_save(model) {
                                return None;
                            }
                            self.count(1, call.byte_range(), Runs::Call, cx)?;
                        } else if runs_one_query(method) {
                            let chain = self.per_row_chain(receiver, cx)?;
                            // A prefetched relation answers some of these from its cache.
                            if chain.prefetches
                                || chain
                                    .relation_path
                                    .is_some_and(|p| covers(&self.rows.prefetched, &p))
                            {
                                return None;
                            }
                            self.count(1, call.byte_range(), Runs::Call, cx)?;
                        } else {
                            return None;
                        }
                        self.visit(arguments, cx)
                    }
                    Ty::Instance(ModelRef::Indexed(model)) if method == "save" => {
                        if arguments.named_child_count() > 0 || !self.plain_save(model) {
                            return None;
                        }
                        self.visit(receiver, cx)?;
                        self.count(1, call.byte_range(), Runs::Call, cx)
                    }
                    _ if self.holds_a_plain_value(receiver) => {
                        self.visit(receiver, cx)?;
                        self.arguments(arguments, false, cx)
                    }
                    _ => None,
                }
            }
            "identifier" => {
                let name = self.sem.text(function);
                if matches!(self.sem.ty(function), Ty::ModelClass(ModelRef::Indexed(_))) {
                    // `Tag(name=...)` builds an instance; saving it is another call.
                    return self.arguments(arguments, false, cx);
                }
                if PLAIN_CONTAINERS.contains(&name) {
                    return self.arguments(arguments, false, cx);
                }
                if !BUILTINS.contains(&name) || self.bound_here(function) {
                    return None;
                }
                if matches!(name, "str" | "repr" | "print") && self.hands_an_instance(arguments) {
                    return None;
                }
                self.arguments(arguments, EVALUATING.contains(&name), cx)
            }
            _ => None,
        }
    }

    /// Visits a call's arguments; a QuerySet among them is evaluated when `evaluates`, and
    /// otherwise hands it to code the analyzer does not follow.
    fn arguments(&mut self, arguments: Node<'a>, evaluates: bool, cx: Context) -> Option<()> {
        let mut cursor = arguments.walk();
        let arguments: Vec<Node<'a>> = arguments.named_children(&mut cursor).collect();
        for argument in arguments {
            let argument = strip_parens(argument);
            match self.sem.ty(argument) {
                Ty::QuerySet(_) if evaluates => {
                    self.evaluated(argument, cx)?;
                }
                // Its rows go where the analyzer does not follow them.
                Ty::QuerySet(_) | Ty::Manager(_) | Ty::Paginator(_) => return None,
                _ => self.visit(argument, cx)?,
            }
        }
        Some(())
    }

    fn hands_an_instance(&self, arguments: Node<'a>) -> bool {
        let mut cursor = arguments.walk();
        let found = arguments
            .named_children(&mut cursor)
            .any(|a| matches!(self.sem.ty(a), Ty::Instance(_)));
        found
    }

    /// Whether `model`'s `save()` runs exactly one query: no override, no signal receiver, no
    /// parent table (multi-table inheritance saves each).
    fn plain_save(&self, model: ModelId) -> bool {
        let model = self.sem.index().model(model);
        !model.overrides_save && model.signals.is_empty() && model.concrete_parents.is_empty()
    }

    /// Whether a name is bound in its scope or the module: not the builtin it spells.
    fn bound_here(&self, name: Node<'a>) -> bool {
        let scope = self.sem.scope_of(name);
        let text = self.sem.text(name);
        !scope.bindings(text).is_empty()
            || !self
                .sem
                .scope_of(self.sem.parents.root())
                .bindings(text)
                .is_empty()
    }

    /// Whether calling a method of `receiver` runs no query: a string, a name bound only to a
    /// list, dict or set built in plain sight, or a plain field's value of an instance.
    fn holds_a_plain_value(&self, receiver: Node<'a>) -> bool {
        match receiver.kind_name() {
            "string" | "integer" | "float" => true,
            "identifier" => {
                let scope = self.sem.scope_of(receiver);
                let bindings = scope.bindings(self.sem.text(receiver));
                !bindings.is_empty()
                    && bindings.iter().all(|b| match b.kind {
                        BindingKind::Assign { value, .. } => self.is_plain_container(value),
                        _ => false,
                    })
            }
            "subscript" => receiver
                .field(&field::VALUE)
                .is_some_and(|v| self.holds_a_plain_value(strip_parens(v))),
            "attribute" => {
                let (Some(object), Some(name)) = (
                    receiver.field(&field::OBJECT),
                    receiver.field(&field::ATTRIBUTE),
                ) else {
                    return false;
                };
                let Ty::Instance(ModelRef::Indexed(model)) = self.sem.ty(object) else {
                    return false;
                };
                self.sem
                    .index()
                    .model(model)
                    .field(self.sem.text(name))
                    .is_some_and(|f| f.kind == FieldKind::Concrete && f.plain_value)
            }
            _ => false,
        }
    }

    fn is_plain_container(&self, value: Node<'a>) -> bool {
        let value = strip_parens(value);
        match value.kind_name() {
            "list" | "dictionary" | "set" | "string" => true,
            "call" => value.field(&field::FUNCTION).is_some_and(|f| {
                let name = self.sem.text(f);
                matches!(name, "list" | "dict" | "set") || PLAIN_CONTAINERS.contains(&name)
            }),
            _ => false,
        }
    }

    /// An attribute read (not a method call, not an assignment's target).
    fn attribute(&mut self, node: Node<'a>, cx: Context) -> Option<()> {
        let object = strip_parens(node.field(&field::OBJECT)?);
        let name = self.sem.text(node.field(&field::ATTRIBUTE)?);
        let model = match self.sem.ty(object) {
            Ty::Instance(ModelRef::Indexed(model)) => model,
            Ty::Instance(_) => return None,
            _ => return self.visit(object, cx),
        };
        let model = self.sem.index().model(model);
        let automatic_id = name == "id" && !model.fields.iter().any(|f| f.primary_key);
        if name == "pk" || automatic_id {
            return self.visit(object, cx);
        }
        if let Some(field) = model.field(name) {
            return match field.kind {
                FieldKind::Concrete => self.visit(object, cx),
                FieldKind::ForeignKey | FieldKind::OneToOne if !field.may_be_null => {
                    self.relation_read(node, name, cx)
                }
                // A nullable key runs no query on the rows where it is NULL; a bare manager
                // goes where the analyzer does not follow it.
                _ => None,
            };
        }
        if let Some(key) = name.strip_suffix("_id").and_then(|n| model.field(n)) {
            return matches!(key.kind, FieldKind::ForeignKey | FieldKind::OneToOne)
                .then(|| self.visit(object, cx))
                .flatten();
        }
        match model.reverse(name) {
            Some(reverse) if !reverse.many => self.relation_read(node, name, cx),
            // What `annotate()` computed, on the loop's own row.
            None if self.rows.annotations.iter().any(|a| a == name)
                && self.path_of(object).is_some_and(|p| p.is_empty()) =>
            {
                self.visit(object, cx)
            }
            // A property or method may run queries.
            _ => None,
        }
    }

    /// `object.name`, a relation to one row: a query the first time on each row, unless the
    /// row's QuerySet joined or prefetched it.
    fn relation_read(&mut self, read: Node<'a>, name: &str, cx: Context) -> Option<()> {
        let object = strip_parens(read.field(&field::OBJECT)?);
        let path = join(&self.path_of(object)?, name);
        self.visit(object, cx)?;
        if covers(&self.rows.joined, &path)
            || covers(&self.rows.prefetched, &path)
            || self.loaded.contains(&path)
        {
            return Some(());
        }
        self.count(1, read.byte_range(), Runs::Relation, cx)?;
        self.loaded.insert(path);
        Some(())
    }

    /// The relation path from the loop's row to the instance `expr` holds: `""` for the row,
    /// `author__publisher` for `row.author.publisher`. `None` for an instance from elsewhere.
    fn path_of(&self, expr: Node<'a>) -> Option<String> {
        let expr = strip_parens(expr);
        match expr.kind_name() {
            "identifier" => {
                let name = self.sem.text(expr);
                self.paths
                    .iter()
                    .rev()
                    .find(|(bound, _)| *bound == name)
                    .map(|(_, path)| path.clone())
            }
            "attribute" => {
                let object = expr.field(&field::OBJECT)?;
                let name = self.sem.text(expr.field(&field::ATTRIBUTE)?);
                let Ty::Instance(ModelRef::Indexed(model)) = self.sem.ty(object) else {
                    return None;
                };
                let model = self.sem.index().model(model);
                let to_one = match model.field(name) {
                    Some(f) => matches!(f.kind, FieldKind::ForeignKey | FieldKind::OneToOne),
                    None => model.reverse(name).is_some_and(|r| !r.many),
                };
                if !to_one {
                    return None;
                }
                Some(join(&self.path_of(object)?, name))
            }
            _ => None,
        }
    }
}

struct PerRowChain<'a> {
    /// Its methods, from the manager outwards.
    methods: Vec<&'a str>,
    prefetches: bool,
    /// For a chain from a relation of an instance reached from the row, its path.
    relation_path: Option<String>,
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}__{name}")
    }
}
