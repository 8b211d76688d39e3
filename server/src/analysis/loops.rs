//! Loops over the rows of a QuerySet, and where that QuerySet is built: what the N+1 rules
//! share. A relation read on a loop variable costs a query per row unless the QuerySet that the
//! loop iterates joins (`select_related`) or prefetches (`prefetch_related`) it.

use tree_sitter::Node;

use super::diagnostic::Edit;
use super::index::{string_value, ModelId};
use super::infer::{ModelRef, QuerySetTy, Semantics, Ty};
use super::scope::BindingKind;
use super::syntax::{
    contains,
    field::{self, FieldOf},
    method_call, relation_method_call, single_argument_call, strip_parens, KindOf,
};

/// A `for` loop or comprehension whose variable is a row of a QuerySet.
pub struct RowLoop<'a> {
    /// The loop statement or comprehension: code inside it runs once per row.
    pub node: Node<'a>,
    pub iterable: Node<'a>,
    pub queryset: QuerySetTy,
    pub model: ModelId,
}

/// The loop that binds the variable read at `read` to the rows of a QuerySet, if any.
pub fn row_loop<'a>(sem: &Semantics<'a>, read: Node<'a>) -> Option<RowLoop<'a>> {
    if read.kind_name() != "identifier" || !inside_loop_over(sem, read) {
        return None;
    }
    let scope = sem.scope_of(read);
    let reaching = scope.reaching(sem.text(read), read, &sem.parents);
    let [binding] = reaching.bindings.as_slice() else {
        return None;
    };
    let (iterable, node) = match binding.kind {
        BindingKind::ForTarget { iterable, .. } => (iterable, binding.statement),
        BindingKind::ComprehensionTarget {
            iterable,
            comprehension,
        } => (iterable, comprehension),
        _ => return None,
    };
    let mut queryset = match sem.ty(iterable) {
        Ty::QuerySet(qs) | Ty::Evaluated(qs) if !qs.values => qs,
        _ => return None,
    };
    // `for b in a.books.all()` inside `for a in Author.objects.prefetch_related("books__read_by")`:
    // the outer prefetch loads `read_by` for every book too.
    queryset
        .prefetch_related
        .extend(inherited_prefetches(sem, iterable));
    queryset
        .prefetch_related
        .extend(prefetched_objects(sem, iterable));
    let Some(ModelRef::Indexed(model)) = queryset.model.clone() else {
        return None;
    };
    Some(RowLoop {
        node,
        iterable,
        queryset,
        model,
    })
}

/// Whether `read` sits in the repeated part of a `for` loop or comprehension whose target
/// binds its name: a cheap walk up the tree that spares the scope analysis for the many
/// attribute reads (`self.x`, `models.CharField`) that are no loop's row, and keeps reads after
/// a loop (one read, not one per row) out.
fn inside_loop_over<'a>(sem: &Semantics<'a>, read: Node<'a>) -> bool {
    let name = sem.text(read);
    let binds_name = |target: Option<Node<'a>>| {
        target.is_some_and(|t| {
            let mut found = false;
            super::syntax::walk(t, |n| {
                found |= n.kind_name() == "identifier" && sem.text(n) == name;
                !found
            });
            found
        })
    };
    let mut child = read;
    while let Some(parent) = sem.parents.of(child) {
        match parent.kind_name() {
            "for_statement" => {
                let in_body = parent
                    .field(&field::BODY)
                    .is_some_and(|b| b.id() == child.id());
                if in_body && binds_name(parent.field(&field::LEFT)) {
                    return true;
                }
            }
            "list_comprehension"
            | "set_comprehension"
            | "dictionary_comprehension"
            | "generator_expression" => {
                let mut cursor = parent.walk();
                let clauses: Vec<Node> = parent
                    .named_children(&mut cursor)
                    .filter(|c| c.kind_name() == "for_in_clause")
                    .collect();
                if clauses.iter().any(|c| binds_name(c.field(&field::LEFT))) {
                    return true;
                }
            }
            "function_definition" | "lambda" | "class_definition" => return false,
            _ => {}
        }
        child = parent;
    }
    false
}

/// `row_loop`, for a rule about a cost paid on every row: `None` also when `read` runs at most
/// once per run of the loop (`runs_at_most_once`).
pub fn per_row_loop<'a>(sem: &Semantics<'a>, read: Node<'a>) -> Option<RowLoop<'a>> {
    row_loop(sem, read).filter(|rows| !runs_at_most_once(sem, read, rows.node))
}

/// Whether `node`, in the body of `for_loop`, runs at most once per run of the loop: every path
/// from it leaves the loop (`return`, `raise`, `break`) before its iteration ends, as in a search
/// that returns what it found. A query there costs one query, not one per row. Unsure means
/// no: a `continue` on the way, an inner loop (or comprehension) that repeats `node`, a
/// `raise` that a `try` around `node` may catch, a `try` with `else:` or `finally:`, a `match`.
pub fn runs_at_most_once<'a>(sem: &Semantics<'a>, node: Node<'a>, for_loop: Node<'a>) -> bool {
    // Inside an inner loop, `break` and the end of the body go round that loop again.
    let scope = sem.scope_of(node).scope;
    let innermost = super::syntax::enclosing_loops(node, scope, &sem.parents)
        .first()
        .copied();
    if for_loop.kind_name() != "for_statement" || innermost.is_none_or(|l| l.id() != for_loop.id())
    {
        return false;
    }
    let exits = Exits {
        raise_may_be_caught: inside_a_try_body(sem, node, for_loop),
    };
    let is = |field: Option<Node>, child: Node| field.is_some_and(|f| f.id() == child.id());
    let mut child = node;
    while let Some(parent) = sem.parents.of(child) {
        if parent.id() == for_loop.id() {
            // The end of an iteration: the next one may run `node` again.
            return false;
        }
        match parent.kind_name() {
            "block" => match exits.rest_of_block(parent, child) {
                Flow::Leaves => return true,
                Flow::MayRepeat => return false,
                Flow::FallsThrough => {}
            },
            "return_statement" => return true,
            "raise_statement" => return !exits.raise_may_be_caught,
            // `node` in the header of a statement (an `if` test, an inner loop's iterable, a
            // `with` item): the rest of that statement runs after it, whole.
            "if_statement" | "elif_clause" | "for_statement" | "with_statement"
                if is(parent.field(&field::CONDITION), child)
                    || is(parent.field(&field::RIGHT), child)
                    || child.kind_name() == "with_clause" =>
            {
                let mut statement = parent;
                while statement.kind_name() == "elif_clause" {
                    statement = match sem.parents.of(statement) {
                        Some(s) => s,
                        None => return false,
                    };
                }
                match exits.statement(statement) {
                    Flow::Leaves => return true,
                    Flow::MayRepeat => return false,
                    Flow::FallsThrough => {
                        child = statement;
                        continue;
                    }
                }
            }
            "try_statement" => {
                let mut cursor = parent.walk();
                let more = parent
                    .named_children(&mut cursor)
                    .any(|c| matches!(c.kind_name(), "else_clause" | "finally_clause"));
                if more {
                    return false;
                }
            }
            "match_statement" | "case_clause" => return false,
            _ => {}
        }
        child = parent;
    }
    false
}

/// Whether a `try` between `node` and `for_loop` has `node` in its body: a `raise` after it may
/// be caught there, and the iteration go on.
fn inside_a_try_body<'a>(sem: &Semantics<'a>, node: Node<'a>, for_loop: Node<'a>) -> bool {
    let mut child = node;
    while let Some(parent) = sem.parents.of(child) {
        if parent.id() == for_loop.id() {
            return false;
        }
        if parent.kind_name() == "try_statement"
            && parent
                .field(&field::BODY)
                .is_some_and(|b| b.id() == child.id())
        {
            return true;
        }
        child = parent;
    }
    false
}

/// Where a statement of a loop's body sends the iteration.
enum Flow {
    /// Out of the loop on every path.
    Leaves,
    /// Maybe to the next iteration (`continue`).
    MayRepeat,
    /// On to the next statement.
    FallsThrough,
}

/// The statements that leave a loop, seen from inside its body (not inside an inner loop's).
struct Exits {
    raise_may_be_caught: bool,
}

impl Exits {
    /// The statements of `block` after `statement`, run in order.
    fn rest_of_block(&self, block: Node, statement: Node) -> Flow {
        let mut cursor = block.walk();
        let rest: Vec<Node> = block
            .named_children(&mut cursor)
            .skip_while(|s| s.id() != statement.id())
            .skip(1)
            .collect();
        self.sequence(rest)
    }

    fn sequence<'t>(&self, statements: impl IntoIterator<Item = Node<'t>>) -> Flow {
        for statement in statements {
            match self.statement(statement) {
                Flow::FallsThrough => {}
                flow => return flow,
            }
        }
        Flow::FallsThrough
    }

    fn statement(&self, statement: Node) -> Flow {
        if self.always_leaves(statement) {
            Flow::Leaves
        } else if may_continue(statement) {
            Flow::MayRepeat
        } else {
            Flow::FallsThrough
        }
    }

    fn block_leaves(&self, block: Option<Node>) -> bool {
        block.is_some_and(|b| {
            let mut cursor = b.walk();
            let statements: Vec<Node> = b.named_children(&mut cursor).collect();
            matches!(self.sequence(statements), Flow::Leaves)
        })
    }

    fn always_leaves(&self, statement: Node) -> bool {
        match statement.kind_name() {
            "return_statement" | "break_statement" => true,
            "raise_statement" => !self.raise_may_be_caught,
            "with_statement" => self.block_leaves(statement.field(&field::BODY)),
            "if_statement" => {
                let mut cursor = statement.walk();
                let alternatives: Vec<Node> = statement
                    .children_by_field_name("alternative", &mut cursor)
                    .collect();
                let has_else = alternatives.iter().any(|a| a.kind_name() == "else_clause");
                has_else
                    && self.block_leaves(statement.field(&field::CONSEQUENCE))
                    && alternatives.iter().all(|a| {
                        self.block_leaves(
                            a.field(&field::CONSEQUENCE)
                                .or_else(|| a.field(&field::BODY)),
                        )
                    })
            }
            _ => false,
        }
    }
}

/// Whether `statement` holds a `continue` of the loop around it (not of an inner loop).
fn may_continue(statement: Node) -> bool {
    let mut found = false;
    super::syntax::walk(statement, |n| {
        found |= n.kind_name() == "continue_statement";
        !found
            && !matches!(
                n.kind_name(),
                "for_statement"
                    | "while_statement"
                    | "function_definition"
                    | "class_definition"
                    | "lambda"
            )
    });
    found
}
/// A lookup that loads no relation, among lookups that may be loaded or not: those through
/// the relations of an instance loaded out of sight. Rules that need a relation surely loaded
/// (ORM406) stay silent on it; the others read the lookups beside it as loaded. (Unlike
/// `infer::MAYBE_LOADED`, it covers nothing itself.)
const MAYBE: &str = "?some";

/// What an outer loop's QuerySet (or the query that fetched the instance, in plain sight)
/// prefetches through the relation an inner loop iterates (`row.relation.all()`), as lookups
/// relative to the inner rows. An instance from elsewhere (a parameter) may come with what any
/// prefetch of the program loads through that relation, and `MAYBE` says so.
fn inherited_prefetches<'a>(sem: &Semantics<'a>, iterable: Node<'a>) -> Vec<String> {
    let Some((outer_row, relation, "all")) = relation_method_call(iterable, sem.source) else {
        return Vec::new();
    };
    if !matches!(sem.ty(outer_row), Ty::Instance(_)) {
        return Vec::new();
    }
    let outer_prefetches = match row_loop(sem, outer_row) {
        Some(outer) => outer.queryset.prefetch_related,
        None => match fetched_with(sem, outer_row) {
            Some(prefetches) => prefetches,
            // Loaded where the analyzer does not look (a parameter, `self.user`): by some
            // query of the program, which prefetches no more than the program's prefetches.
            None => {
                let mut maybe = sem.index().prefetched_below(sem.text(relation));
                maybe.push(MAYBE.to_string());
                return maybe;
            }
        },
    };
    let prefix = format!("{}__", sem.text(relation));
    outer_prefetches
        .iter()
        .filter_map(|l| {
            if l == "*" || l == super::infer::MAYBE_LOADED || l == MAYBE {
                Some(l.clone())
            } else {
                l.strip_prefix(&prefix).map(str::to_string)
            }
        })
        .collect()
}

/// Whether `expr` is `x.rel.all()` for an instance `x` fetched in plain sight with `rel`
/// prefetched: evaluating it reads the prefetch cache, no query.
pub fn reads_prefetch_cache<'a>(sem: &Semantics<'a>, expr: Node<'a>) -> bool {
    let Some((instance, relation, "all")) = relation_method_call(expr, sem.source) else {
        return false;
    };
    fetched_with(sem, instance).is_some_and(|lookups| {
        lookups
            .iter()
            .any(|l| l.split("__").next() == Some(sem.text(relation)))
    })
}

/// What the rows `expr` holds may come with from the relation they were read through: for the
/// rows of `x.rel.all()` (directly, or kept by a name, `list()`, or a comprehension that keeps
/// each row it keeps), what loaded `x` prefetches below `rel` (`inherited_prefetches`).
pub fn prefetched_with_the_relation<'a>(sem: &Semantics<'a>, expr: Node<'a>) -> Vec<String> {
    let mut rows = strip_parens(expr);
    // Names and wrappers followed: a name may be rebound from itself.
    for _ in 0..8 {
        if let Some((function, argument)) = single_argument_call(rows, sem.source) {
            if matches!(function, "list" | "sorted" | "tuple") {
                rows = strip_parens(argument);
                continue;
            }
        }
        match rows.kind_name() {
            "identifier" => {
                let scope = sem.scope_of(rows);
                let reaching = scope.reaching(sem.text(rows), rows, &sem.parents);
                let ([binding], true) = (reaching.bindings.as_slice(), reaching.complete) else {
                    return Vec::new();
                };
                let BindingKind::Assign { value, .. } = binding.kind else {
                    return Vec::new();
                };
                rows = strip_parens(value);
            }
            "list_comprehension" => match kept_rows(sem, rows) {
                Some(iterable) => rows = strip_parens(iterable),
                None => return Vec::new(),
            },
            _ => return inherited_prefetches(sem, rows),
        }
    }
    Vec::new()
}

/// `[row for row in rows if ...]`: `rows`, whose rows it keeps (some of them) as they are.
fn kept_rows<'a>(sem: &Semantics<'a>, comprehension: Node<'a>) -> Option<Node<'a>> {
    let body = comprehension.field(&field::BODY)?;
    let mut cursor = comprehension.walk();
    let clauses: Vec<Node> = comprehension
        .named_children(&mut cursor)
        .filter(|c| c.kind_name() == "for_in_clause")
        .collect();
    let [clause] = clauses.as_slice() else {
        return None;
    };
    let target = clause.field(&field::LEFT)?;
    (target.kind_name() == "identifier"
        && body.kind_name() == "identifier"
        && sem.text(target) == sem.text(body))
    .then(|| clause.field(&field::RIGHT))
    .flatten()
}

/// Whether `expr` is `x.rel.all()` that may read a prefetch cache: `x` is a row of a loop whose
/// QuerySet prefetches `rel`, or was fetched in plain sight with `rel` prefetched, or was loaded
/// out of the analyzer's sight (a parameter, `self`, an attribute) while some prefetch of the
/// program loads a relation named `rel`. A rewrite of such a call into another query
/// (`only()`, `exists()`) would bypass the cache and add a query where it is filled.
pub fn may_read_prefetch_cache<'a>(sem: &Semantics<'a>, expr: Node<'a>) -> bool {
    let Some((instance, relation, "all")) = relation_method_call(expr, sem.source) else {
        return false;
    };
    if !matches!(sem.ty(instance), Ty::Instance(_)) {
        return false;
    }
    let relation = sem.text(relation);
    let prefetched = match row_loop(sem, instance) {
        Some(rows) => rows.queryset.prefetch_related,
        None => match fetched_with(sem, instance) {
            Some(prefetched) => prefetched,
            None => return sem.index().may_prefetch(relation),
        },
    };
    covers(&prefetched, relation)
}

/// What an instance fetched in plain sight prefetches: `x = Qs...get(...)` (or `first()`,
/// `get_object_or_404(Qs, ...)`) as the only assignment that reaches `instance`. `None` when
/// the analyzer did not see it loaded.
fn fetched_with<'a>(sem: &Semantics<'a>, instance: Node<'a>) -> Option<Vec<String>> {
    let instance = strip_parens(instance);
    if instance.kind_name() != "identifier" {
        return None;
    }
    let scope = sem.scope_of(instance);
    let reaching = scope.reaching(sem.text(instance), instance, &sem.parents);
    let ([binding], true) = (reaching.bindings.as_slice(), reaching.complete) else {
        return None;
    };
    let BindingKind::Assign { value, .. } = binding.kind else {
        return None;
    };
    let value = strip_parens(value);
    let source = match method_call(value, sem.source) {
        Some((receiver, "get" | "first" | "last" | "latest" | "earliest")) => receiver,
        _ => value
            .field(&field::FUNCTION)
            .filter(|f| sem.text(*f) == "get_object_or_404")
            .and_then(|_| value.field(&field::ARGUMENTS)?.named_child(0))?,
    };
    match sem.ty(source) {
        Ty::QuerySet(qs) => Some(qs.prefetch_related),
        Ty::Manager(manager) if !manager.related => Some(Vec::new()),
        _ => None,
    }
}

/// Lookups `prefetch_related_objects(rows, "lookup", ...)` loads anywhere in the scope for the
/// name a loop iterates (conservatively, before or after: the analyzer does not order them).
fn prefetched_objects<'a>(sem: &Semantics<'a>, iterable: Node<'a>) -> Vec<String> {
    let iterable = strip_parens(iterable);
    if iterable.kind_name() != "identifier" {
        return Vec::new();
    }
    let name = sem.text(iterable);
    let scope = sem.scope_of(iterable);
    let mut lookups = Vec::new();
    // Asked for every attribute read of a loop variable: most scopes never call it.
    if !sem.text(scope.scope).contains("prefetch_related_objects") {
        return lookups;
    }
    super::syntax::walk(scope.scope, |n| {
        if n.kind_name() == "call"
            && n.field(&field::FUNCTION)
                .is_some_and(|f| sem.text(f).ends_with("prefetch_related_objects"))
        {
            if let Some(args) = n.field(&field::ARGUMENTS) {
                let mut cursor = args.walk();
                let mut arguments = args.named_children(&mut cursor);
                if arguments
                    .next()
                    .is_some_and(|first| sem.text(first) == name)
                {
                    // Lookups the analyzer cannot read could be anything.
                    lookups.extend(
                        arguments.map(|a| {
                            string_value(a, sem.source).unwrap_or_else(|| "*".to_string())
                        }),
                    );
                }
            }
        }
        true
    });
    lookups
}

/// The foreign key of the rows of `rows` that Django fills with the instance whose reverse
/// manager they come from: the rows of `blog.entry_set.filter(...)` have `entry.blog` set to
/// `blog` already (the manager's QuerySet carries it in `_known_related_objects`, which
/// `ModelIterable` assigns to each row, and a `prefetch_related("entry_set")` sets it on each
/// prefetched row with `set_cached_value`), so reading it costs no query. Every row shares that
/// one instance: what is read through it is loaded once, not per row. A many-to-many manager
/// fills nothing. `rows_model` is the model of the rows: a chain that ends elsewhere (a custom
/// method returning another model's rows) fills nothing of theirs.
pub fn back_reference<'a>(
    sem: &Semantics<'a>,
    rows: Node<'a>,
    rows_model: ModelId,
) -> Option<String> {
    let mut expr = strip_parens(rows);
    // Names followed, and chains walked down: a loop may rebind a name from itself.
    let mut steps = 12;
    while steps > 0 {
        steps -= 1;
        if let Some((function, argument)) = single_argument_call(expr, sem.source) {
            if matches!(function, "list" | "sorted" | "tuple") {
                expr = strip_parens(argument);
                continue;
            }
        }
        // The clones a QuerySet method makes keep the known related objects.
        if let Some((receiver, _)) = method_call(expr, sem.source) {
            expr = strip_parens(receiver);
            continue;
        }
        if let Some(sliced) = expr
            .field(&field::VALUE)
            .filter(|_| expr.kind_name() == "subscript")
        {
            expr = strip_parens(sliced);
            continue;
        }
        if expr.kind_name() == "identifier" {
            let scope = sem.scope_of(expr);
            let reaching = scope.reaching(sem.text(expr), expr, &sem.parents);
            let ([binding], true) = (reaching.bindings.as_slice(), reaching.complete) else {
                return None;
            };
            let BindingKind::Assign { value, .. } = binding.kind else {
                return None;
            };
            expr = strip_parens(value);
            continue;
        }
        break;
    }
    if expr.kind_name() != "attribute" {
        return None;
    }
    let (Some(owner), Some(accessor)) = (expr.field(&field::OBJECT), expr.field(&field::ATTRIBUTE))
    else {
        return None;
    };
    let Ty::Instance(ModelRef::Indexed(owner)) = sem.ty(owner) else {
        return None;
    };
    let index = sem.index();
    let reverse = index.model(owner).reverse(sem.text(accessor))?;
    let key = index.model(reverse.source).field(&reverse.field)?;
    let fills = reverse.many
        && reverse.source == rows_model
        && key.kind == super::index::FieldKind::ForeignKey;
    fills.then(|| reverse.field.clone())
}

/// Whether `lookup` (`author`, `author__profile`) may be loaded already by `lookups` (the
/// QuerySet's `select_related` or `prefetch_related` arguments).
pub fn covers(lookups: &[String], lookup: &str) -> bool {
    lookups.iter().any(|l| {
        l == "*"
            || l == super::infer::MAYBE_LOADED
            || l == lookup
            || l.starts_with(&format!("{lookup}__"))
    })
}

/// Whether `lookup` is surely loaded by `lookups`: loaded, with no lookup unknown or maybe.
pub fn surely_covers(lookups: &[String], lookup: &str) -> bool {
    covers(lookups, lookup)
        && !lookups
            .iter()
            .any(|l| l == "*" || l == MAYBE || l == super::infer::MAYBE_LOADED)
}

/// The expression where the loop's QuerySet is built, to be extended with a `select_related` or
/// `prefetch_related` lookup: the iterable itself when it is a model's manager chain, or the
/// value of the one assignment that gives the iterated name its QuerySet, or what a view's
/// `get_queryset()` returns or its `queryset` attribute holds. `None` when the QuerySet comes
/// from elsewhere (a parameter, a relation, a view that only names its `model`).
pub fn construction_site<'a>(sem: &Semantics<'a>, iterable: Node<'a>) -> Option<Node<'a>> {
    built_at(sem, iterable).map(|(site, _)| site)
}

/// `construction_site`, for a fix that adds a prefetch: not when the rows are streamed with
/// `iterator()`, which ignores prefetches before Django 4.1 and refuses them without
/// `chunk_size` since 5.0.
pub fn prefetch_site<'a>(sem: &Semantics<'a>, iterable: Node<'a>) -> Option<Node<'a>> {
    built_at(sem, iterable).and_then(|(site, streamed)| (!streamed).then_some(site))
}

/// Where the iterated QuerySet is built, and whether the loop streams it through `iterator()`.
fn built_at<'a>(sem: &Semantics<'a>, iterable: Node<'a>) -> Option<(Node<'a>, bool)> {
    let mut steps = 12;
    built_within(sem, iterable, &mut steps)
}

/// `built_at`, following at most `steps` names and chains (a loop may rebind a name from
/// itself).
fn built_within<'a>(
    sem: &Semantics<'a>,
    iterable: Node<'a>,
    steps: &mut u32,
) -> Option<(Node<'a>, bool)> {
    let mut expr = strip_parens(iterable);
    let mut streamed = false;
    // The tuple element a name was unpacked from (`page, paginator = paginate(...)`).
    let mut element = None;
    while *steps > 0 {
        *steps -= 1;
        if let Some(rows) = paged_rows(sem, expr, element) {
            expr = strip_parens(rows);
            element = None;
            continue;
        }
        if element.is_some() {
            return None;
        }
        if let Some((function, argument)) = single_argument_call(expr, sem.source) {
            if matches!(function, "list" | "sorted" | "tuple") {
                expr = strip_parens(argument);
                continue;
            }
        }
        // `qs.iterator()` streams the rows of `qs`: the lookup goes before it.
        if let Some((receiver, "iterator")) = method_call(expr, sem.source) {
            expr = strip_parens(receiver);
            streamed = true;
            continue;
        }
        if expr.kind_name() == "identifier" {
            let scope = sem.scope_of(expr);
            let reaching = scope.reaching(sem.text(expr), expr, &sem.parents);
            if !reaching.complete || reaching.bindings.is_empty() {
                return None;
            }
            if let [binding] = reaching.bindings.as_slice() {
                if let BindingKind::Unpacked { value, index } = binding.kind {
                    expr = strip_parens(value);
                    element = Some(index);
                    continue;
                }
            }
            let mut agreed: Option<(Node<'a>, bool)> = None;
            for binding in &reaching.bindings {
                let BindingKind::Assign { value, .. } = binding.kind else {
                    return None;
                };
                if reaching.bindings.len() == 1 {
                    expr = strip_parens(value);
                    break;
                }
                // Assigned in several branches: one site when every value is built there
                // (`qs = self.queryset`, then `qs = self.queryset.filter(...)` under an `if`).
                // `qs = qs.filter(...)` in a loop reaches its own read: it narrows what the
                // other bindings built.
                if contains(value, expr) {
                    continue;
                }
                let (site, also_streamed) = built_within(sem, value, steps)?;
                match agreed {
                    Some((agreed_site, _)) if agreed_site.id() != site.id() => return None,
                    _ => agreed = Some((site, also_streamed || agreed.is_some_and(|a| a.1))),
                }
            }
            if reaching.bindings.len() == 1 {
                continue;
            }
            let (site, also_streamed) = agreed?;
            return Some((site, streamed || also_streamed));
        }
        if let Some(site) = sem.view_queryset_site(expr) {
            expr = strip_parens(site);
            continue;
        }
        // `self.queryset.filter(...)` in a view: the rows are the view's QuerySet's, narrowed.
        if let Some(site) = view_queryset_root(sem, expr) {
            expr = strip_parens(site);
            continue;
        }
        if built_from_a_model(sem, expr) || model_method_rows(sem, expr) {
            return Some((expr, streamed));
        }
        // `posts.filter(...)`: the rows of `posts`, narrowed; the lookup goes where it is built.
        expr = narrowed_name(sem, expr)?;
    }
    None
}

/// The QuerySet whose rows a paginated `expr` holds: `paginator.page(n)`/`get_page(n)` the
/// paginator's, `Paginator(qs, n)` `qs`, and a workspace function's result (`element` of it, when
/// unpacked) the one argument it passes the rows of through (`Semantics::rows_passed_through`).
fn paged_rows<'a>(sem: &Semantics<'a>, expr: Node<'a>, element: Option<usize>) -> Option<Node<'a>> {
    if expr.kind_name() != "call" {
        return None;
    }
    if let Some((receiver, method)) = method_call(expr, sem.source) {
        let paginator = matches!(sem.ty(receiver), Ty::Paginator(_));
        if paginator && element.is_none() && matches!(method, "page" | "get_page") {
            return Some(receiver);
        }
        if matches!(sem.ty(receiver), Ty::QuerySet(_) | Ty::Manager(_)) {
            return None;
        }
    } else if element.is_none() && matches!(sem.ty(expr), Ty::Paginator(_)) {
        let arguments = expr.field(&field::ARGUMENTS)?;
        return arguments
            .named_child(0)
            .filter(|a| !matches!(a.kind_name(), "keyword_argument" | "list_splat" | "comment"));
    }
    sem.rows_passed_through(expr, element)
}

/// `request.user.updates()`: a model's method that returns a QuerySet; the lookup goes on the
/// call (what it builds inside is the method's own business).
fn model_method_rows<'a>(sem: &Semantics<'a>, expr: Node<'a>) -> bool {
    let Some((receiver, _)) = method_call(expr, sem.source) else {
        return false;
    };
    matches!(
        sem.ty(receiver),
        Ty::Instance(ModelRef::Indexed(_)) | Ty::ModelClass(ModelRef::Indexed(_))
    ) && matches!(sem.ty(expr), Ty::QuerySet(_))
}

/// The name a chain of QuerySet calls starts from, when every step keeps the rows' model
/// (`posts.filter(...).order_by(...)` narrows `posts`).
fn narrowed_name<'a>(sem: &Semantics<'a>, expr: Node<'a>) -> Option<Node<'a>> {
    let Ty::QuerySet(narrowed) = sem.ty(expr) else {
        return None;
    };
    let mut node = expr;
    while let Some((receiver, _)) = method_call(node, sem.source) {
        node = strip_parens(receiver);
        match sem.ty(node) {
            Ty::QuerySet(qs) if qs.model == narrowed.model => {}
            _ => return None,
        }
        if node.kind_name() == "identifier" {
            return Some(node);
        }
    }
    None
}

/// Where the view QuerySet a chain of calls starts from (`self.queryset.filter(...)`,
/// `self.get_queryset().order_by(...)`) is built.
fn view_queryset_root<'a>(sem: &Semantics<'a>, chain: Node<'a>) -> Option<Node<'a>> {
    let mut node = chain;
    while let Some((receiver, _)) = method_call(node, sem.source) {
        node = strip_parens(receiver);
        if let Some(site) = sem.view_queryset_site(node) {
            return Some(site);
        }
    }
    None
}

/// A chain of QuerySet calls that starts at a model's manager (`Entry.objects...`), not at a
/// relation of some instance (`blog.entry_set.all()`), whose rows are loaded per instance.
pub fn built_from_a_model<'a>(sem: &Semantics<'a>, expr: Node<'a>) -> bool {
    let mut node = expr;
    loop {
        match node.kind_name() {
            "call" => match method_call(node, sem.source) {
                Some((receiver, _)) => node = strip_parens(receiver),
                None => return false,
            },
            "subscript" => match node.field(&field::VALUE) {
                Some(value) => node = strip_parens(value),
                None => return false,
            },
            "attribute" => {
                return match node.field(&field::OBJECT) {
                    Some(object) => matches!(sem.ty(object), Ty::ModelClass(_)),
                    None => false,
                };
            }
            _ => return false,
        }
    }
}

/// The edit that adds `lookup` to the `method` call (`select_related`, `prefetch_related`) of
/// the chain at `site`: into an existing call's arguments, or as a new call at the chain's end.
pub fn add_lookup(sem: &Semantics, site: Node, method: &str, lookup: &str) -> Edit {
    let quote = quote_style(sem, site);
    add_argument(sem, site, method, &format!("{quote}{lookup}{quote}"))
}

/// The edit that adds the expression `argument` to the `method` call of the chain at `site`,
/// or chains a new call.
pub fn add_argument(sem: &Semantics, site: Node, method: &str, literal: &str) -> Edit {
    let mut node = site;
    while node.kind_name() == "call" {
        let Some((receiver, name)) = method_call(node, sem.source) else {
            break;
        };
        if name == method {
            if let Some(args) = node.field(&field::ARGUMENTS) {
                let close = args.end_byte() - 1;
                let separator = if args.named_child_count() > 0 {
                    ", "
                } else {
                    ""
                };
                return Edit::replace(close..close, format!("{separator}{literal}"));
            }
        }
        node = strip_parens(receiver);
    }
    let end = site.end_byte();
    Edit::replace(end..end, format!(".{method}({literal})"))
}

/// The quote character the site's own strings use, else double quotes.
pub fn quote_style(sem: &Semantics, site: Node) -> char {
    let mut quote = '"';
    super::syntax::walk(site, |n| {
        if n.kind_name() == "string_start" {
            if let Some(c) = sem.text(n).chars().find(|c| *c == '"' || *c == '\'') {
                quote = c;
            }
            return false;
        }
        true
    });
    quote
}

/// Whether an equal read (same text) occurs in the loop before `node`: the first read of a
/// relation in a pass loads it, later ones read the cached object.
pub fn read_before_in_loop(sem: &Semantics, row_loop: &RowLoop, node: Node) -> bool {
    let wanted = sem.text(node);
    let mut found = false;
    super::syntax::walk(row_loop.node, |n| {
        if found || n.start_byte() >= node.start_byte() {
            return false;
        }
        if n.kind_name() == node.kind_name()
            && n.end_byte() <= node.start_byte()
            && sem.text(n) == wanted
            && !contains(row_loop.iterable, n)
        {
            found = true;
        }
        true
    });
    found
}

/// Whether `manager` (`row.relation`) is a relation that the QuerySet of the row's loop
/// prefetches: reading it costs no query.
pub fn prefetched_relation<'a>(sem: &Semantics<'a>, manager: Node<'a>) -> bool {
    let (Some(instance), Some(relation)) = (
        manager.field(&field::OBJECT),
        manager.field(&field::ATTRIBUTE),
    ) else {
        return false;
    };
    row_loop(sem, instance)
        .is_some_and(|l| covers(&l.queryset.prefetch_related, sem.text(relation)))
}

/// The related model of a to-many relation `name` of `model` (a many-to-many field, or the
/// accessor of a reverse foreign key or many-to-many), if it is one.
pub fn to_many_target(sem: &Semantics, model: ModelId, name: &str) -> Option<ModelId> {
    let model = sem.index().model(model);
    match model.field(name) {
        Some(f) if f.kind == super::index::FieldKind::ManyToMany => f.target,
        Some(_) => None,
        None => model.reverse(name).filter(|r| r.many).map(|r| r.source),
    }
}

/// The name queries use for a reverse relation: the accessor `entry_set` is `entry` in
/// `Count("entry")` and `filter(entry__...)`; a `related_name` is both; a `related_query_name`
/// wins. `None` when the field names one the index cannot read.
pub fn reverse_query_name(sem: &Semantics, reverse: &super::index::Reverse) -> Option<String> {
    let source = sem.index().model(reverse.source);
    if let Some(written) = source
        .field(&reverse.field)
        .and_then(|f| f.related_query_name.as_ref())
    {
        return (!written.is_empty()).then(|| written.clone());
    }
    let lowered = source.name.to_lowercase();
    Some(if reverse.name == format!("{lowered}_set") {
        lowered
    } else {
        reverse.name.clone()
    })
}
