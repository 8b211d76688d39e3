//! Names in one scope: where each is bound and where it is read.
//!
//! Built once per scope (function, lambda, class body, module) on first use. Bindings in nested
//! scopes are not this scope's; reads in nested scopes are kept, because a closure that reads a
//! queryset may evaluate it. Every binding the analyzer cannot type (loop targets, unpacking,
//! imports, `with ... as`, walrus, augmented assignment) is `Other`, which makes the name unknown.

use rustc_hash::{FxHashMap, FxHashSet};
use tree_sitter::Node;

use super::syntax::{
    contains, enclosing_loops, enclosing_statement,
    field::{self, FieldOf},
    kind_ids, text, KindOf, Parents,
};

/// The kinds `ScopeIndex::build` asks of every node it visits, by id.
struct WalkedKinds {
    identifier: Vec<u16>,
    /// Definitions whose body and parameters are a scope of their own.
    scopes: Vec<u16>,
}

static WALKED_KINDS: std::sync::LazyLock<WalkedKinds> = std::sync::LazyLock::new(|| WalkedKinds {
    identifier: kind_ids("identifier"),
    scopes: ["function_definition", "class_definition", "lambda"]
        .iter()
        .flat_map(|kind| kind_ids(kind))
        .collect(),
});

#[derive(Clone, Copy, Debug)]
pub enum BindingKind<'a> {
    /// `name = value` or `name: annotation = value`, the only target of its statement.
    Assign {
        value: Node<'a>,
        annotation: Option<Node<'a>>,
    },
    Param {
        annotation: Option<Node<'a>>,
        /// The first parameter of a method: `self` (or `cls`).
        is_first_of_method: bool,
        /// The first parameter of a `@classmethod`: the class itself.
        is_class_of_classmethod: bool,
    },
    /// `name, other = value`: the element at `index` of what `value` unpacks to.
    Unpacked {
        value: Node<'a>,
        index: usize,
    },
    /// `for name in iterable:`
    ForTarget {
        iterable: Node<'a>,
        body: Option<Node<'a>>,
    },
    /// `[... for name in iterable]`: reaches reads inside `comprehension` only.
    ComprehensionTarget {
        iterable: Node<'a>,
        comprehension: Node<'a>,
    },
    Other,
}

#[derive(Clone, Copy, Debug)]
pub struct Binding<'a> {
    pub name: Node<'a>,
    pub kind: BindingKind<'a>,
    pub statement: Node<'a>,
}

/// The bindings that may give a name its value at a given read.
#[derive(Debug, Default)]
pub struct Reaching<'i, 'a> {
    pub bindings: Vec<&'i Binding<'a>>,
    /// False when some path reaches the read with no binding of this scope (a global, a
    /// closure variable, an unbound name): then the value is not known.
    pub complete: bool,
}

pub struct ScopeIndex<'a> {
    pub scope: Node<'a>,
    source: &'a str,
    bindings: FxHashMap<&'a str, Vec<Binding<'a>>>,
    references: FxHashMap<&'a str, Vec<Node<'a>>>,
    declared_outer: FxHashSet<&'a str>,
}

impl<'a> ScopeIndex<'a> {
    pub fn build(scope: Node<'a>, source: &'a str, parents: &Parents<'a>) -> Self {
        let mut index = Self {
            scope,
            source,
            bindings: FxHashMap::default(),
            references: FxHashMap::default(),
            declared_outer: FxHashSet::default(),
        };
        // Depth-first with a cursor, keeping each ancestor and whether it is inside a nested
        // scope; the parent links it sees are recorded for the rules' later questions.
        let kinds = &*WALKED_KINDS;
        let mut cursor = scope.walk();
        let mut ancestors: Vec<(Node<'a>, bool)> = vec![(scope, false)];
        if !cursor.goto_first_child() {
            return index;
        }
        loop {
            let node = cursor.node();
            let &(parent, parent_nested) =
                ancestors.last().expect("the scope is always an ancestor");
            // Punctuation and keywords: no rule asks for their parent (`Parents::of` would
            // still find it).
            if node.is_named() {
                parents.record(node, parent);
            }
            let opens = parent.id() != scope.id()
                && kinds.scopes.contains(&parent.kind_id())
                && is_scope_interior(parent, node);
            let nested = parent_nested || opens;
            if kinds.identifier.contains(&node.kind_id()) {
                index.classify(node, nested, source, parents);
            } else if cursor.goto_first_child() {
                ancestors.push((node, nested));
                continue;
            }
            while !cursor.goto_next_sibling() {
                if !cursor.goto_parent() {
                    return index;
                }
                ancestors.pop();
                if ancestors.is_empty() {
                    return index;
                }
            }
        }
    }

    fn classify(&mut self, ident: Node<'a>, nested: bool, source: &'a str, parents: &Parents<'a>) {
        let name = text(ident, source);
        let Some(parent) = parents.of(ident) else {
            return;
        };
        let is_field =
            |field: &field::Field| parent.field(field).is_some_and(|n| n.id() == ident.id());
        match parent.kind_name() {
            "attribute" if is_field(&field::ATTRIBUTE) => return,
            "keyword_argument" if is_field(&field::NAME) => return,
            "global_statement" | "nonlocal_statement" => {
                // A nested function's `nonlocal x` (or `global x`, seen from the module) may
                // rebind this scope's `x` whenever it is called: its value is then unknown.
                let rebinds_ours = !nested
                    || parent.kind_name() == "nonlocal_statement"
                    || self.scope.kind_name() == "module";
                if rebinds_ours {
                    self.declared_outer.insert(name);
                }
                return;
            }
            _ => {}
        }
        if nested {
            // Only reads matter from nested scopes; binding positions there are not ours.
            if !is_binding_position(ident, parent, parents) {
                self.references.entry(name).or_default().push(ident);
            }
            return;
        }
        if let Some(kind) = parameter_kind(ident, parent, self.scope, parents, source) {
            self.bind(name, ident, kind, parents);
            return;
        }
        if is_binding_position(ident, parent, parents) {
            let kind = assignment_kind(ident, parent, parents).unwrap_or(BindingKind::Other);
            self.bind(name, ident, kind, parents);
            if parent.kind_name() == "augmented_assignment" {
                self.references.entry(name).or_default().push(ident);
            }
            return;
        }
        self.references.entry(name).or_default().push(ident);
    }

    fn bind(
        &mut self,
        name: &'a str,
        ident: Node<'a>,
        kind: BindingKind<'a>,
        parents: &Parents<'a>,
    ) {
        let statement = enclosing_statement(ident, parents);
        self.bindings.entry(name).or_default().push(Binding {
            name: ident,
            kind,
            statement,
        });
    }

    /// Bindings of `name` that may reach the read `at`.
    pub fn reaching(&self, name: &str, at: Node<'a>, parents: &Parents<'a>) -> Reaching<'_, 'a> {
        let mut reaching = Reaching::default();
        if self.declared_outer.contains(name) {
            return reaching;
        }
        let Some(all) = self.bindings.get(name) else {
            return reaching;
        };
        // A comprehension's own variable shadows everything else inside it (innermost wins).
        let comprehension_target = all
            .iter()
            .filter(|b| match b.kind {
                BindingKind::ComprehensionTarget {
                    iterable,
                    comprehension,
                } => contains(comprehension, at) && !contains(iterable, at),
                _ => false,
            })
            .min_by_key(|b| match b.kind {
                BindingKind::ComprehensionTarget { comprehension, .. } => {
                    comprehension.byte_range().len()
                }
                _ => usize::MAX,
            });
        if let Some(binding) = comprehension_target {
            reaching.bindings.push(binding);
            reaching.complete = true;
            return reaching;
        }
        // An `if`/`else` (or a `try` and its handlers) that assigns the name in every branch
        // also settles it: once the scan leaves such a statement, earlier bindings cannot reach.
        let mut covering: Option<Node> = None;
        let outside_comprehensions =
            |b: &&Binding| !matches!(b.kind, BindingKind::ComprehensionTarget { .. });
        for binding in all
            .iter()
            .rev()
            .filter(outside_comprehensions)
            .filter(|b| precedes(b, at, parents))
        {
            if covering.is_some_and(|c| !contains(c, binding.name)) {
                break;
            }
            reaching.bindings.push(binding);
            if dominates(binding, at, parents) {
                reaching.complete = true;
                break;
            }
            covering = covering.or_else(|| self.covering_if(binding, name, at, parents));
        }
        reaching.complete |= covering.is_some();
        // A binding later in a loop around the read reaches it on the next iteration.
        let loops = enclosing_loops(at, self.scope, parents);
        for binding in all
            .iter()
            .filter(outside_comprehensions)
            .filter(|b| b.name.start_byte() >= at.end_byte())
        {
            if loops.iter().any(|l| contains(*l, binding.name)) {
                reaching.bindings.push(binding);
            }
        }
        reaching
    }

    /// The `if` (or `try`) statement around `binding` that runs before `at` and assigns `name` in
    /// all its branches (its body and every handler), if there is one.
    fn covering_if(
        &self,
        binding: &Binding<'a>,
        name: &str,
        at: Node<'a>,
        parents: &Parents<'a>,
    ) -> Option<Node<'a>> {
        let mut statement = binding.statement;
        loop {
            let block = parents.of(statement)?;
            if contains(block, at) {
                let runs_before = statement.end_byte() <= at.start_byte();
                return (runs_before
                    && matches!(statement.kind_name(), "if_statement" | "try_statement")
                    && self.assigns(statement, name))
                .then_some(statement);
            }
            statement = enclosing_statement(parents.of(block)?, parents);
        }
    }

    /// Whether running `node` always assigns `name` with a plain assignment.
    fn assigns(&self, node: Node, name: &str) -> bool {
        let mut cursor = node.walk();
        match node.kind_name() {
            "expression_statement" => node.named_child(0).is_some_and(|a| {
                a.kind_name() == "assignment"
                    && a.field(&field::LEFT)
                        .is_some_and(|l| text(l, self.source) == name)
            }),
            "block" => node
                .named_children(&mut cursor)
                .any(|s| self.assigns(s, name)),
            "if_statement" => {
                let body = node.field(&field::CONSEQUENCE);
                let branches: Vec<Node> = node
                    .children_by_field_name("alternative", &mut cursor)
                    .collect();
                let has_else = branches.iter().any(|b| b.kind_name() == "else_clause");
                has_else
                    && body.is_some_and(|b| self.assigns(b, name))
                    && branches.iter().all(|b| {
                        let body = b
                            .field(&field::CONSEQUENCE)
                            .or_else(|| b.field(&field::BODY));
                        body.is_some_and(|body| self.assigns(body, name))
                    })
            }
            // Past a `try`, either its body ran to the end or a handler did (an exception no
            // handler catches leaves the function).
            "try_statement" => {
                let body = node.field(&field::BODY);
                body.is_some_and(|b| self.assigns(b, name))
                    && node
                        .named_children(&mut cursor)
                        .filter(|c| {
                            matches!(c.kind_name(), "except_clause" | "except_group_clause")
                        })
                        .all(|handler| {
                            let mut cursor = handler.walk();
                            let block = handler
                                .named_children(&mut cursor)
                                .filter(|c| c.kind_name() == "block")
                                .last();
                            block.is_some_and(|b| self.assigns(b, name))
                        })
            }
            _ => false,
        }
    }

    /// Reads of `name` in this scope and its nested scopes, in document order.
    pub fn references(&self, name: &str) -> &[Node<'a>] {
        self.references.get(name).map_or(&[], Vec::as_slice)
    }

    /// Bindings of `name`, in document order.
    pub fn bindings(&self, name: &str) -> &[Binding<'a>] {
        self.bindings.get(name).map_or(&[], Vec::as_slice)
    }

    /// All plain assignments of this scope, in document order per name.
    pub fn assignments(&self) -> impl Iterator<Item = (&'a str, &Binding<'a>)> {
        self.bindings
            .iter()
            .flat_map(|(name, bs)| bs.iter().map(move |b| (*name, b)))
            .filter(|(_, b)| matches!(b.kind, BindingKind::Assign { .. }))
    }
}

/// Whether `child` of a function, class or lambda is evaluated in the new scope. Default values
/// are read outside, but counting them as inside only adds reads, which errs on the silent side.
fn is_scope_interior(owner: Node, child: Node) -> bool {
    [&field::BODY, &field::PARAMETERS]
        .iter()
        .any(|field| owner.field(field).is_some_and(|n| n.id() == child.id()))
}

fn parameter_kind<'a>(
    ident: Node<'a>,
    parent: Node<'a>,
    scope: Node<'a>,
    parents: &Parents<'a>,
    source: &str,
) -> Option<BindingKind<'a>> {
    let (param, annotation) = match parent.kind_name() {
        "parameters" | "lambda_parameters" => (parent, None),
        "typed_parameter" => {
            if parent.named_child(0).is_none_or(|n| n.id() != ident.id()) {
                return None;
            }
            (parents.of(parent)?, parent.field(&field::TYPE))
        }
        "default_parameter" | "typed_default_parameter" => {
            if parent
                .field(&field::NAME)
                .is_none_or(|n| n.id() != ident.id())
            {
                return None;
            }
            // `qs: QuerySet = None` may well be None: the annotation does not settle it.
            let defaults_to_none = parent
                .field(&field::VALUE)
                .is_some_and(|v| v.kind_name() == "none");
            let annotation = parent.field(&field::TYPE).filter(|_| !defaults_to_none);
            (parents.of(parent)?, annotation)
        }
        "list_splat_pattern" | "dictionary_splat_pattern" => {
            let list = parents.of(parent)?;
            if !matches!(
                list.kind_name(),
                "parameters" | "lambda_parameters" | "typed_parameter"
            ) {
                return None;
            }
            return Some(BindingKind::Other);
        }
        _ => return None,
    };
    let params = if matches!(param.kind_name(), "parameters" | "lambda_parameters") {
        param
    } else {
        return None;
    };
    let owner = parents.of(params)?;
    if owner.id() != scope.id() {
        return None;
    }
    let is_first = params
        .named_child(0)
        .is_some_and(|first| first.id() == ident.id() || first.id() == parent.id());
    let mut container = parents.of(owner);
    if let Some(decorated) = container.filter(|c| c.kind_name() == "decorated_definition") {
        // A static method has no `self`; a class method's first parameter is the class.
        let decorator_named = |name: &str| {
            let mut cursor = decorated.walk();
            let found = decorated.named_children(&mut cursor).any(|d| {
                d.kind_name() == "decorator"
                    && d.named_child(0)
                        .is_some_and(|e| text(e, source).rsplit('.').next() == Some(name))
            });
            found
        };
        let is_classmethod = decorator_named("classmethod");
        if is_classmethod || decorator_named("staticmethod") {
            return Some(BindingKind::Param {
                annotation,
                is_first_of_method: false,
                is_class_of_classmethod: is_first && is_classmethod,
            });
        }
        container = parents.of(decorated);
    }
    let in_class = container
        .and_then(|body| parents.of(body))
        .is_some_and(|c| c.kind_name() == "class_definition");
    Some(BindingKind::Param {
        annotation,
        is_first_of_method: is_first && in_class && owner.kind_name() == "function_definition",
        is_class_of_classmethod: false,
    })
}

/// Whether the identifier is written to: an assignment target (not inside `a.b` or `a[i]`), a
/// loop, `with`, `except` or walrus target, an import, a `def`/`class` name, a `del`, a pattern.
fn is_binding_position<'a>(ident: Node<'a>, parent: Node<'a>, parents: &Parents<'a>) -> bool {
    let mut child = ident;
    let mut node = parent;
    loop {
        let is_field =
            |field: &field::Field| node.field(field).is_some_and(|n| n.id() == child.id());
        match node.kind_name() {
            "pattern_list"
            | "tuple_pattern"
            | "list_pattern"
            | "tuple"
            | "list"
            | "parenthesized_expression"
            | "list_splat_pattern"
            | "list_splat"
            | "as_pattern_target"
            | "expression_list" => {}
            "assignment" | "augmented_assignment" => return is_field(&field::LEFT),
            "for_statement" | "for_in_clause" => return is_field(&field::LEFT),
            "named_expression" => return is_field(&field::NAME),
            "as_pattern" => return is_field(&field::ALIAS),
            "function_definition" | "class_definition" => return is_field(&field::NAME),
            "delete_statement" => return true,
            "import_statement" | "import_from_statement" | "aliased_import" | "dotted_name" => {
                return !matches!(node.kind_name(), "import_from_statement")
                    || !is_field(&field::MODULE_NAME);
            }
            "case_pattern" | "keyword_pattern" | "splat_pattern" | "dict_pattern"
            | "class_pattern" => return true,
            _ => return false,
        }
        child = node;
        match parents.of(node) {
            Some(p) => node = p,
            None => return false,
        }
    }
}

fn assignment_kind<'a>(
    ident: Node<'a>,
    parent: Node<'a>,
    parents: &Parents<'a>,
) -> Option<BindingKind<'a>> {
    let is_left = parent
        .field(&field::LEFT)
        .is_some_and(|l| l.id() == ident.id());
    match parent.kind_name() {
        "for_statement" if is_left => {
            return Some(BindingKind::ForTarget {
                iterable: parent.field(&field::RIGHT)?,
                body: parent.field(&field::BODY),
            });
        }
        "for_in_clause" if is_left => {
            return Some(BindingKind::ComprehensionTarget {
                iterable: parent.field(&field::RIGHT)?,
                comprehension: parents.of(parent)?,
            });
        }
        _ => {}
    }
    if matches!(parent.kind_name(), "pattern_list" | "tuple_pattern") {
        return unpacked_kind(ident, parent, parents);
    }
    if parent.kind_name() != "assignment" || !is_left {
        return None;
    }
    let annotation = parent.field(&field::TYPE);
    // `a = b = value`: follow the chain to the value.
    let mut value = parent.field(&field::RIGHT)?;
    while value.kind_name() == "assignment" {
        value = value.field(&field::RIGHT)?;
    }
    if value.kind_name() == "expression_list" || value.kind_name() == "yield" {
        return None;
    }
    Some(BindingKind::Assign { value, annotation })
}

/// `a, b = value` (or `(a, b) = value`): a plain name at a fixed position of the only target of
/// an assignment, with no starred element to shift the positions.
fn unpacked_kind<'a>(
    ident: Node<'a>,
    pattern: Node<'a>,
    parents: &Parents<'a>,
) -> Option<BindingKind<'a>> {
    let assignment = parents.of(pattern)?;
    let is_target = assignment.kind_name() == "assignment"
        && assignment
            .field(&field::LEFT)
            .is_some_and(|l| l.id() == pattern.id());
    let value = assignment.field(&field::RIGHT)?;
    if !is_target
        || matches!(
            value.kind_name(),
            "assignment" | "expression_list" | "yield"
        )
    {
        return None;
    }
    let mut cursor = pattern.walk();
    let elements: Vec<Node> = pattern.named_children(&mut cursor).collect();
    if elements.iter().any(|e| e.kind_name() != "identifier") {
        return None;
    }
    let index = elements.iter().position(|e| e.id() == ident.id())?;
    Some(BindingKind::Unpacked { value, index })
}

/// The binding happens before the read on the way through the code: after it textually, and not
/// in the header of the binding's own statement (`qs = qs.filter(...)` reads the old `qs`).
fn precedes<'a>(binding: &Binding<'a>, at: Node<'a>, parents: &Parents<'a>) -> bool {
    if binding.name.end_byte() > at.start_byte() {
        return false;
    }
    if !contains(binding.statement, at) {
        return true;
    }
    // Inside the binding's own statement, only its body runs after the binding.
    let mut node = at;
    while node.id() != binding.statement.id() {
        if node.kind_name() == "block" {
            return node.start_byte() >= binding.name.end_byte();
        }
        let Some(parent) = parents.of(node) else {
            return false;
        };
        node = parent;
    }
    false
}

/// Every path to the read goes through the binding: a plain assignment or parameter whose
/// statement sits in a block that contains the read.
fn dominates<'a>(binding: &Binding<'a>, at: Node<'a>, parents: &Parents<'a>) -> bool {
    match binding.kind {
        BindingKind::Param { .. } => true,
        BindingKind::ForTarget { body, .. } => body.is_some_and(|b| contains(b, at)),
        BindingKind::Assign { .. } | BindingKind::Unpacked { .. } => parents
            .of(binding.statement)
            .is_some_and(|block| contains(block, at)),
        BindingKind::ComprehensionTarget { .. } | BindingKind::Other => false,
    }
}
