//! Queries that run inside a loop (`M.objects.get(...)`, `.count()`, `.exists()` ...): once per
//! iteration. Whether their arguments change with the loop decides the advice: fetch everything
//! before the loop (ORM404) or run the same query once (ORM408).

use tree_sitter::Node;

use super::infer::{ModelRef, Semantics, Ty};
use super::loops::{built_from_a_model, construction_site, runs_at_most_once};
use super::scope::BindingKind;
use super::syntax::{
    contains, enclosing_loops, enclosing_scope,
    field::{self, FieldOf},
    method_call, strip_parens, walk, KindOf,
};

/// Methods that run a query and return one value or row.
pub const QUERY_METHODS: &[&str] = &[
    "get",
    "first",
    "last",
    "exists",
    "count",
    "aggregate",
    "earliest",
    "latest",
    "in_bulk",
];

/// Methods that write rows: a loop that calls any of them may change what a query returns.
const WRITE_METHODS: &[&str] = &[
    "save",
    "create",
    "delete",
    "update",
    "bulk_create",
    "bulk_update",
    "add",
    "remove",
    "set",
    "clear",
    "get_or_create",
    "update_or_create",
    "refresh_from_db",
    // A test client's requests and management commands run views and code that write.
    "post",
    "put",
    "patch",
    "call_command",
    "execute",
    "executemany",
];

pub struct LoopQuery<'a> {
    /// The innermost `for` statement or comprehension around the query.
    pub loop_node: Node<'a>,
    /// The query reads a name the loop binds (its target, or anything assigned in its body).
    pub depends_on_loop: bool,
    /// A lookup of the query (`get(pk=...)`, `filter(author=...)`, also where the QuerySet was
    /// built) takes its value from the loop: one query per row of data, the N+1 shape.
    pub looks_up_loop_values: bool,
    /// The loop calls a write method (`save()`, `create()` ...): the table may change between
    /// iterations.
    pub loop_writes: bool,
    /// The loop writes rows of the queried model (`obj.save()`, `M.objects.create()`): the
    /// query may read what this very iteration wrote, which no fetch before the loop can.
    pub writes_queried_model: bool,
}

/// `call` (a query method on a model's manager or QuerySet) seen as a query inside a loop.
pub fn query_in_loop<'a>(sem: &Semantics<'a>, call: Node<'a>) -> Option<LoopQuery<'a>> {
    let (receiver, method) = method_call(call, sem.source)?;
    if !QUERY_METHODS.contains(&method) {
        return None;
    }
    // Most calls are in no loop (`self.client.get(url)` in a test): finding that out is cheap,
    // inferring the receiver is not.
    let function = enclosing_scope(call, &sem.parents);
    let loop_node = *enclosing_loops(call, function, &sem.parents).first()?;
    if loop_node.kind_name() == "while_statement"
        || runs_at_most_once(sem, call, loop_node)
        || !queries_a_table(sem, receiver)
    {
        return None;
    }
    if expected_to_fail(sem, call, loop_node) {
        return None;
    }
    let scope = sem.scope_of(call);
    let bound_in_loop = |node: Node<'a>| {
        let mut found = false;
        walk(node, |n| {
            if n.kind_name() == "identifier" && is_read(sem, n) {
                found |= scope
                    .bindings(sem.text(n))
                    .iter()
                    .any(|b| contains(loop_node, b.name));
            }
            !found
        });
        found
    };
    let depends_on_loop = bound_in_loop(call);
    let looks_up_loop_values = lookup_values(sem, call).into_iter().any(bound_in_loop);
    let queried = model_of(sem, receiver);
    let (mut loop_writes, mut writes_queried_model) = (false, false);
    let repeated = loop_node.field(&field::BODY).unwrap_or(loop_node);
    walk(repeated, |n| {
        if let Some((written, name)) = method_call(n, sem.source) {
            if WRITE_METHODS.contains(&name) {
                loop_writes = true;
                writes_queried_model |= queried.is_some()
                    && model_of(sem, written) == queried
                    && !writes_another_table(sem, written, name)
                    && !is_row_fetched_by(sem, written, call);
            }
        }
        !writes_queried_model
    });
    Some(LoopQuery {
        loop_node,
        depends_on_loop,
        looks_up_loop_values,
        loop_writes,
        writes_queried_model,
    })
}

/// `row.tags.add(tag)`: a relation manager's `add`/`remove`/`set`/`clear` writes the join
/// table (or the other side's key), not the rows of the model it lists.
fn writes_another_table<'a>(sem: &Semantics<'a>, written: Node<'a>, method: &str) -> bool {
    matches!(method, "add" | "remove" | "set" | "clear")
        && matches!(sem.ty(written), Ty::Manager(manager) if manager.related)
}

/// Whether `written` is the row that `query` itself fetched in this iteration (`n =
/// M.objects.get(id=i)` ... `n.save()`): saving it changes no row a later iteration's query
/// looks up by another value.
fn is_row_fetched_by<'a>(sem: &Semantics<'a>, written: Node<'a>, query: Node<'a>) -> bool {
    if written.kind_name() != "identifier" {
        return false;
    }
    let scope = sem.scope_of(written);
    let reaching = scope.reaching(sem.text(written), written, &sem.parents);
    !reaching.bindings.is_empty()
        && reaching.bindings.iter().all(|b| match b.kind {
            BindingKind::Assign { value, .. } => contains(value, query),
            _ => false,
        })
}

/// The model of an instance, a manager or a QuerySet, or of a name bound to `M(...)`.
fn model_of<'a>(sem: &Semantics<'a>, expr: Node<'a>) -> Option<ModelRef> {
    match sem.ty(expr) {
        Ty::Instance(model) => Some(model),
        Ty::Manager(manager) => manager.model,
        Ty::QuerySet(qs) => qs.model,
        _ if expr.kind_name() == "identifier" => {
            let scope = sem.scope_of(expr);
            let reaching = scope.reaching(sem.text(expr), expr, &sem.parents);
            let [binding] = reaching.bindings.as_slice() else {
                return None;
            };
            let BindingKind::Assign { value, .. } = binding.kind else {
                return None;
            };
            match sem.ty(value.field(&field::FUNCTION)?) {
                Ty::ModelClass(model) if value.kind_name() == "call" => Some(model),
                _ => None,
            }
        }
        _ => None,
    }
}

/// Inside `with self.assertRaises(...)` (or `pytest.raises`) in the loop: the query is expected
/// to fail before any SQL runs.
fn expected_to_fail<'a>(sem: &Semantics<'a>, call: Node<'a>, loop_node: Node<'a>) -> bool {
    let mut node = call;
    while let Some(parent) = sem.parents.of(node) {
        if parent.id() == loop_node.id() {
            return false;
        }
        if parent.kind_name() == "with_statement" {
            let items = parent.named_child(0).map_or("", |c| sem.text(c));
            if items.contains("assertRaises") || items.contains("raises(") {
                return true;
            }
        }
        node = parent;
    }
    false
}

/// The values of the lookups (`get`/`filter`/`exclude` keyword arguments) along the chain of
/// `call`, and along the chain that built the QuerySet a name at its root holds.
fn lookup_values<'a>(sem: &Semantics<'a>, call: Node<'a>) -> Vec<Node<'a>> {
    let mut values = Vec::new();
    let mut node = call;
    for _ in 0..2 {
        while let Some((receiver, method)) = method_call(node, sem.source) {
            if matches!(method, "get" | "filter" | "exclude") {
                if let Some(arguments) = node.field(&field::ARGUMENTS) {
                    let mut cursor = arguments.walk();
                    values.extend(
                        arguments
                            .named_children(&mut cursor)
                            .filter(|a| a.kind_name() == "keyword_argument")
                            .filter_map(|a| a.field(&field::VALUE)),
                    );
                }
            }
            node = strip_parens(receiver);
        }
        match construction_site(sem, node) {
            Some(site) if node.kind_name() == "identifier" => node = site,
            _ => break,
        }
    }
    values
}

/// A model's manager or a QuerySet built from one: not a relation of some row, whose queries
/// are the relation rules' concern.
fn queries_a_table<'a>(sem: &Semantics<'a>, receiver: Node<'a>) -> bool {
    let receiver = strip_parens(receiver);
    match sem.ty(receiver) {
        Ty::Manager(manager) => !manager.related && manager.model.is_some(),
        Ty::QuerySet(qs) if qs.model.is_some() => {
            let mut root = receiver;
            while let Some((inner, _)) = method_call(root, sem.source) {
                root = strip_parens(inner);
            }
            if root.kind_name() == "identifier" {
                construction_site(sem, root).is_some()
            } else {
                built_from_a_model(sem, receiver)
            }
        }
        _ => false,
    }
}

fn is_read<'a>(sem: &Semantics<'a>, identifier: Node<'a>) -> bool {
    let Some(parent) = sem.parents.of(identifier) else {
        return true;
    };
    let is_field = |field: &str| {
        parent
            .child_by_field_name(field)
            .is_some_and(|f| f.id() == identifier.id())
    };
    !((parent.kind_name() == "attribute" && is_field("attribute"))
        || (parent.kind_name() == "keyword_argument" && is_field("name")))
}
