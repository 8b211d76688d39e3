//! What an expression is: a small, explainable lattice of QuerySets, managers, model instances
//! and model classes, or `Unknown`.
//!
//! Sources: manager chains on a model (`Entry.objects.filter(...)`, any manager the model
//! declares, custom QuerySet methods), relation traversal (`entry.blog`, `blog.entry_set`),
//! names whose every reaching binding is typed (assignments, `for` and comprehension targets,
//! annotated parameters, `self` in models, QuerySets, managers and class-based views). Models
//! come from the workspace index; an unresolved CapWords name with `.objects` still counts as a
//! model, since no other class has `objects`. Anything else is `Unknown`, and rules stay silent.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use rustc_hash::FxHashMap;
use tree_sitter::{Node, Tree};

use super::index::{
    extract, string_value, FieldKind, FileFacts, Import, ModelId, ModelIndex, Symbol,
};
use super::program::{Arguments, Binds, Callee, Program};
use super::scope::{Binding, BindingKind, ScopeIndex};
use super::syntax::{
    enclosing_scope,
    field::{self, FieldOf},
    method_call, strip_parens, text, undecorated, KindOf, Parents,
};

/// A model: from the index, or only a class name (`.objects` on a class the index cannot see).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ModelRef {
    Indexed(ModelId),
    Named(String),
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Ty {
    /// The model class itself: `Entry`.
    ModelClass(ModelRef),
    /// `Entry.objects`, a custom manager, or a relation manager (`blog.entry_set`). It has
    /// QuerySet methods but is not one (`len(Entry.objects)` is an error).
    Manager(ManagerTy),
    QuerySet(QuerySetTy),
    Instance(ModelRef),
    /// The rows of a QuerySet as a list (`list(qs)`, `sorted(qs)`): no longer a QuerySet, but
    /// iterating it gives instances.
    Evaluated(QuerySetTy),
    /// `Paginator(qs, n)`: its pages hold the QuerySet's rows.
    Paginator(QuerySetTy),
    /// A tuple of known length (`return page, paginator`), element by element.
    Tuple(Vec<Ty>),
    /// A generator: iterating it gives this (`yield rows`).
    Yields(Box<Ty>),
    Unknown,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ManagerTy {
    pub model: Option<ModelRef>,
    /// A relation's manager: its queries are per instance.
    pub related: bool,
    /// Custom methods that return a QuerySet.
    pub queryset_methods: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct QuerySetTy {
    pub model: Option<ModelRef>,
    /// Built with `values()`/`values_list()`/`dates()`: rows are not model instances.
    pub values: bool,
    pub sliced: bool,
    /// Built with `union()`/`intersection()`/`difference()`: Django refuses `filter()` and
    /// `contains()` on it.
    pub combined: bool,
    /// Built with `select_for_update()`: evaluating it locks the rows, counting does not.
    pub locks: bool,
    /// Built with `none()`: it has no rows, and evaluating it runs no query.
    pub empty: bool,
    /// Lookups already joined (`"*"` for a bare `select_related()`).
    pub select_related: Vec<String>,
    /// Lookups already prefetched (`Prefetch("rel", ...)` counts as `rel`).
    pub prefetch_related: Vec<String>,
    /// Fields loaded by `only(...)` (the last call wins), when it was called.
    pub only: Option<Vec<String>>,
    /// Fields left out by `defer(...)`.
    pub defer: Vec<String>,
    pub queryset_methods: Vec<String>,
}

impl Ty {
    /// A QuerySet the counting rules may rewrite: not one whose evaluation locks rows
    /// (`select_for_update()`), which `count()`/`exists()` would silently stop doing.
    pub fn is_countable_queryset(&self) -> bool {
        matches!(self, Ty::QuerySet(qs) if !qs.locks)
    }

    pub fn is_queryset(&self) -> bool {
        matches!(self, Ty::QuerySet(_))
    }

    pub fn queryset(&self) -> Option<&QuerySetTy> {
        match self {
            Ty::QuerySet(q) => Some(q),
            _ => None,
        }
    }

    /// QuerySet or manager: something `.count()`, `.filter()` can be called on.
    pub fn is_query_source(&self) -> bool {
        matches!(self, Ty::QuerySet(_) | Ty::Manager(_))
    }

    /// The join of two possible types of one expression: equal or unknown.
    fn join(self, other: Ty) -> Ty {
        match (self, other) {
            (Ty::QuerySet(a), Ty::QuerySet(b)) => Ty::QuerySet(QuerySetTy {
                model: if a.model == b.model { a.model } else { None },
                values: a.values || b.values,
                sliced: a.sliced || b.sliced,
                combined: a.combined || b.combined,
                locks: a.locks || b.locks,
                empty: a.empty && b.empty,
                select_related: loaded_by_both(a.select_related, &b.select_related),
                prefetch_related: loaded_by_both(a.prefetch_related, &b.prefetch_related),
                only: if a.only == b.only { a.only } else { None },
                defer: a
                    .defer
                    .into_iter()
                    .filter(|f| b.defer.contains(f))
                    .collect(),
                queryset_methods: a
                    .queryset_methods
                    .into_iter()
                    .filter(|m| b.queryset_methods.contains(m))
                    .collect(),
            }),
            (Ty::Evaluated(a), Ty::Evaluated(b)) => match Ty::QuerySet(a).join(Ty::QuerySet(b)) {
                Ty::QuerySet(joined) => Ty::Evaluated(joined),
                _ => Ty::Unknown,
            },
            (Ty::Tuple(a), Ty::Tuple(b)) if a.len() == b.len() => {
                Ty::Tuple(a.into_iter().zip(b).map(|(a, b)| a.join(b)).collect())
            }
            (Ty::Yields(a), Ty::Yields(b)) => match a.join(*b) {
                Ty::Unknown => Ty::Unknown,
                joined => Ty::Yields(Box::new(joined)),
            },
            (a, b) if a == b => a,
            _ => Ty::Unknown,
        }
    }

    /// What iterating a value of this type gives, when the analyzer knows.
    pub fn element(&self) -> Ty {
        match self {
            Ty::QuerySet(QuerySetTy {
                model: Some(model),
                values: false,
                ..
            })
            | Ty::Evaluated(QuerySetTy {
                model: Some(model),
                values: false,
                ..
            }) => Ty::Instance(model.clone()),
            Ty::Yields(element) => (**element).clone(),
            _ => Ty::Unknown,
        }
    }
}

/// A lookup standing for "may have loaded anything": what the analyzer cannot read (an
/// annotated parameter's QuerySet, a `Prefetch` held in a variable, what a loop adds). Rules
/// that need a relation not loaded stay silent on it.
pub const MAYBE_LOADED: &str = "?";

/// Methods of a QuerySet (or manager) that return a new QuerySet without running a query.
pub const QUERYSET_METHODS: &[&str] = &[
    "all",
    "filter",
    "exclude",
    "order_by",
    "reverse",
    "distinct",
    "select_related",
    "prefetch_related",
    "annotate",
    "alias",
    "defer",
    "only",
    "using",
    "select_for_update",
    "none",
    "union",
    "intersection",
    "difference",
    "extra",
    "complex_filter",
    "values",
    "values_list",
    "dates",
    "datetimes",
];

/// Methods that run a query and return one instance.
const INSTANCE_METHODS: &[&str] = &["get", "first", "last", "latest", "earliest", "create"];

const VALUES_METHODS: &[&str] = &["values", "values_list", "dates", "datetimes"];

/// Managers every model has whatever it declares.
const IMPLICIT_MANAGERS: &[&str] = &["_default_manager", "_base_manager"];

/// Names through which an unindexed model class reaches a manager.
const HEURISTIC_MANAGERS: &[&str] = &["objects", "_default_manager", "_base_manager"];

const QUERYSET_CLASSES: &[&str] = &[
    "django.db.models.QuerySet",
    "django.db.models.query.QuerySet",
    "django.contrib.gis.db.models.QuerySet",
];
const MANAGER_CLASSES: &[&str] = &[
    "django.db.models.Manager",
    "django.db.models.manager.Manager",
    "django.db.models.manager.BaseManager",
    "django.contrib.gis.db.models.Manager",
];

/// Past this depth of nested expressions or assignment chains, the answer is `Unknown`: it keeps
/// pathological input (thousands of nested parentheses) from exhausting the stack.
const MAX_DEPTH: u32 = 64;

/// Where a file sits in the workspace: the model index, and the file's module name (to resolve
/// its relative imports).
#[derive(Clone)]
pub struct FileContext {
    pub index: Arc<ModelIndex>,
    pub module: String,
    pub is_package: bool,
    /// The workspace's other modules, for calls into them.
    pub program: Arc<Program>,
}

impl FileContext {
    pub fn new(index: Arc<ModelIndex>, module: impl Into<String>, is_package: bool) -> Self {
        Self {
            program: Arc::new(Program::standalone(index.clone())),
            index,
            module: module.into(),
            is_package,
        }
    }

    /// The same file, with calls into `program`'s modules typed from their bodies.
    pub fn with_program(mut self, program: Arc<Program>) -> Self {
        self.program = program;
        self
    }

    /// A file analysed on its own: Django's built-in models only.
    pub fn standalone() -> Self {
        Self::new(ModelIndex::builtin(), "", false)
    }

    /// The file's facts, read from its current tree (fresher than the index's copy).
    pub fn facts(&self, source: &str, tree: &Tree) -> FileFacts {
        extract(source, tree, &self.module, self.is_package)
    }

    /// `facts`, reusing the facts of definitions whose text `memo` has seen.
    pub fn facts_memoised(
        &self,
        source: &str,
        tree: &Tree,
        memo: &mut super::index::FactsMemo,
    ) -> FileFacts {
        super::index::extract_memoised(source, tree, &self.module, self.is_package, memo)
    }
}

/// Type inference over one file, caching each scope's name index.
pub struct Semantics<'a> {
    pub source: &'a str,
    pub parents: Parents<'a>,
    index: &'a ModelIndex,
    /// This file's facts, to resolve its imports and classes.
    facts: &'a FileFacts,
    scopes: RefCell<FxHashMap<usize, Rc<ScopeIndex<'a>>>>,
    /// Types of name reads, by node id (`None` while being inferred: a read reached again
    /// through a loop-carried assignment is `Unknown` there, and counted in `cycles`), so
    /// cycles end and each read is inferred once.
    names: RefCell<FxHashMap<usize, Option<Ty>>>,
    /// How many times a read was reached again while being inferred.
    cycles: std::cell::Cell<u32>,
    /// What each function of this file returns, by its definition's node id (`Unknown` while
    /// being inferred, so recursion ends).
    returns: RefCell<FxHashMap<usize, Ty>>,
    /// What `self.<name>` holds in a class, by the class's node id and the name (`Unknown` while
    /// being inferred).
    attributes: RefCell<FxHashMap<(usize, &'a str), Ty>>,
    /// Each class's methods by name (`None` for a name defined twice), by the class's node id.
    class_methods: RefCell<FxHashMap<usize, Rc<MethodTable<'a>>>>,
    /// Parameters typed from their call sites, by the name's node id (`None` while inferred).
    call_site_params: RefCell<FxHashMap<usize, Option<Ty>>>,
    /// `module_functions`, once read.
    module_functions: RefCell<Option<FxHashMap<&'a str, Option<Node<'a>>>>>,
    /// The other files' functions, when the file sits in a workspace.
    program: Option<&'a Program>,
    /// What the caller passes to each parameter (by its name's node id), when this file is read
    /// to summarise one of its functions for a call in another file.
    arguments: RefCell<FxHashMap<usize, Ty>>,
    /// An argument node read as `Unknown` (`rows_passed_through` asks what a call returns
    /// without it).
    unknown_argument: std::cell::Cell<Option<usize>>,
}

/// What a `Prefetch(...)` call names.
struct PrefetchArguments<'a> {
    lookup: Option<Node<'a>>,
    queryset: Option<Node<'a>>,
    to_attr: bool,
}

/// A class's methods by name; `None` for a name defined twice.
type MethodTable<'a> = FxHashMap<&'a str, Option<Node<'a>>>;

impl<'a> Semantics<'a> {
    pub fn new(
        source: &'a str,
        root: Node<'a>,
        index: &'a ModelIndex,
        facts: &'a FileFacts,
    ) -> Self {
        Self {
            source,
            parents: Parents::new(root),
            index,
            facts,
            scopes: RefCell::default(),
            names: RefCell::default(),
            cycles: std::cell::Cell::new(0),
            returns: RefCell::default(),
            attributes: RefCell::default(),
            class_methods: RefCell::default(),
            module_functions: RefCell::default(),
            call_site_params: RefCell::default(),
            program: None,
            arguments: RefCell::default(),
            unknown_argument: std::cell::Cell::new(None),
        }
    }

    /// Calls into the workspace's other modules are typed from their functions' bodies.
    pub fn with_program(mut self, program: &'a Program) -> Self {
        self.program = Some(program);
        self
    }

    /// What `function` returns when called with `arguments` (and its first parameter `bound`,
    /// for a method called on an instance or a class): each parameter a positional or keyword
    /// argument reaches takes that argument's type, the others keep their own.
    pub fn returns_with(&self, function: Node<'a>, bound: Option<Ty>, arguments: &Arguments) -> Ty {
        let mut passed: FxHashMap<usize, Ty> = FxHashMap::default();
        let mut positional = bound
            .into_iter()
            .chain(arguments.positional.iter().cloned());
        let mut keyword_only = false;
        for entry in parameter_entries(function) {
            let name = match entry {
                ParameterEntry::Named { name, .. } => name,
                ParameterEntry::PositionalOnlyEnd => continue,
                ParameterEntry::Starred => {
                    keyword_only = true;
                    continue;
                }
            };
            let Some(name) = name.filter(|n| n.kind_name() == "identifier") else {
                continue;
            };
            let by_position = if keyword_only {
                None
            } else {
                positional.next()
            };
            let ty = by_position.or_else(|| {
                arguments
                    .keyword
                    .iter()
                    .find(|(k, _)| k == self.text(name))
                    .map(|(_, ty)| ty.clone())
            });
            if let Some(ty) = ty.filter(|ty| *ty != Ty::Unknown) {
                passed.insert(name.id(), ty);
            }
        }
        *self.arguments.borrow_mut() = passed;
        self.returns_of(function, 0)
    }

    pub fn index(&self) -> &'a ModelIndex {
        self.index
    }

    /// What this file itself declares and imports (fresher than the index's copy).
    pub fn file_facts(&self) -> &'a FileFacts {
        self.facts
    }

    pub fn text(&self, node: Node) -> &'a str {
        text(node, self.source)
    }

    /// The name index of the scope `node` reads its names from.
    pub fn scope_of(&self, node: Node<'a>) -> Rc<ScopeIndex<'a>> {
        let scope = enclosing_scope(node, &self.parents);
        if let Some(index) = self.scopes.borrow().get(&scope.id()) {
            return index.clone();
        }
        let index = Rc::new(ScopeIndex::build(scope, self.source, &self.parents));
        self.scopes.borrow_mut().insert(scope.id(), index.clone());
        index
    }

    pub fn ty(&self, expr: Node<'a>) -> Ty {
        self.ty_at_depth(expr, 0)
    }

    /// `blog.Entry` for an indexed model, `Entry` for one known only by name.
    pub fn model_label(&self, model: &ModelRef) -> String {
        match model {
            ModelRef::Indexed(id) => self.index().model(*id).label(),
            ModelRef::Named(name) => name.clone(),
        }
    }

    /// How hover shows a type: `QuerySet[blog.Entry] · select_related: author`.
    pub fn display(&self, ty: &Ty) -> Option<String> {
        let label =
            |m: &Option<ModelRef>| m.as_ref().map_or("?".to_string(), |m| self.model_label(m));
        Some(match ty {
            Ty::ModelClass(m) => format!("type[{}]", self.model_label(m)),
            Ty::Instance(m) => self.model_label(m),
            Ty::Evaluated(q) => format!("list[{}]", label(&q.model)),
            Ty::Manager(m) => format!(
                "{}[{}]",
                if m.related {
                    "RelatedManager"
                } else {
                    "Manager"
                },
                label(&m.model)
            ),
            Ty::QuerySet(q) => {
                let mut out = format!("QuerySet[{}]", label(&q.model));
                for (flag, name) in [(q.values, "values"), (q.sliced, "sliced")] {
                    if flag {
                        out.push_str(&format!(" · {name}"));
                    }
                }
                for (lookups, name) in [
                    (&q.select_related, "select_related"),
                    (&q.prefetch_related, "prefetch_related"),
                    (&q.defer, "defer"),
                ] {
                    if !lookups.is_empty() {
                        out.push_str(&format!(" · {name}: {}", lookups.join(", ")));
                    }
                }
                if let Some(only) = &q.only {
                    out.push_str(&format!(" · only: {}", only.join(", ")));
                }
                out
            }
            Ty::Paginator(q) => format!("Paginator[{}]", label(&q.model)),
            Ty::Tuple(elements) => {
                let shown: Vec<String> = elements
                    .iter()
                    .map(|e| self.display(e).unwrap_or_else(|| "?".into()))
                    .collect();
                format!("tuple[{}]", shown.join(", "))
            }
            Ty::Yields(element) => format!("Iterator[{}]", self.display(element)?),
            Ty::Unknown => return None,
        })
    }

    fn ty_at_depth(&self, expr: Node<'a>, depth: u32) -> Ty {
        if depth > MAX_DEPTH {
            return Ty::Unknown;
        }
        let expr = strip_parens(expr);
        match expr.kind_name() {
            "identifier" => self.name_ty(expr, depth),
            "attribute" => self.attribute_ty(expr, depth),
            "call" => self.call_ty(expr, depth),
            "subscript" => self.subscript_ty(expr, depth),
            "binary_operator" => self.combined_ty(expr, depth),
            "list_comprehension" => self.rows_list_ty(expr, depth),
            // `return page, paginator`: element by element.
            "expression_list" | "tuple" => {
                let mut cursor = expr.walk();
                let elements: Vec<Node<'a>> = expr
                    .named_children(&mut cursor)
                    .filter(|e| e.kind_name() != "comment")
                    .collect();
                if elements.iter().any(|e| e.kind_name() == "list_splat") {
                    return Ty::Unknown;
                }
                Ty::Tuple(
                    elements
                        .into_iter()
                        .map(|e| self.ty_at_depth(e, depth + 1))
                        .collect(),
                )
            }
            // `a if test else b`: what both branches agree on.
            "conditional_expression" => {
                let (Some(a), Some(b)) = (expr.named_child(0), expr.named_child(2)) else {
                    return Ty::Unknown;
                };
                match self.ty_at_depth(a, depth + 1) {
                    Ty::Unknown => Ty::Unknown,
                    ty => ty.join(self.ty_at_depth(b, depth + 1)),
                }
            }
            _ => Ty::Unknown,
        }
    }

    /// `[row for row in qs]` (maybe with `if` clauses): the rows as a list, like `list(qs)`.
    fn rows_list_ty(&self, comprehension: Node<'a>, depth: u32) -> Ty {
        let (Some(body), Some(clause)) = (
            comprehension.field(&field::BODY),
            comprehension.named_child(1),
        ) else {
            return Ty::Unknown;
        };
        let mut cursor = comprehension.walk();
        let clauses = comprehension
            .named_children(&mut cursor)
            .filter(|c| c.kind_name() == "for_in_clause")
            .count();
        let (Some(target), Some(iterable)) =
            (clause.field(&field::LEFT), clause.field(&field::RIGHT))
        else {
            return Ty::Unknown;
        };
        let identity = clauses == 1
            && clause.kind_name() == "for_in_clause"
            && target.kind_name() == "identifier"
            && body.kind_name() == "identifier"
            && self.text(target) == self.text(body);
        if !identity {
            return Ty::Unknown;
        }
        match self.ty_at_depth(iterable, depth + 1) {
            Ty::QuerySet(qs) | Ty::Evaluated(qs) if !qs.values => Ty::Evaluated(qs),
            _ => Ty::Unknown,
        }
    }

    /// `qs_a | qs_b`, `qs_a & qs_b`: a QuerySet of their model, loading what both load.
    fn combined_ty(&self, expr: Node<'a>, depth: u32) -> Ty {
        let operator = expr.field(&field::OPERATOR).map(|o| self.text(o));
        let (Some("|" | "&"), Some(left), Some(right)) = (
            operator,
            expr.field(&field::LEFT),
            expr.field(&field::RIGHT),
        ) else {
            return Ty::Unknown;
        };
        match (
            self.ty_at_depth(left, depth + 1),
            self.ty_at_depth(right, depth + 1),
        ) {
            (left @ Ty::QuerySet(_), right @ Ty::QuerySet(_)) => left.join(right),
            _ => Ty::Unknown,
        }
    }

    fn attribute_ty(&self, attribute: Node<'a>, depth: u32) -> Ty {
        let (Some(object), Some(name)) = (
            attribute.field(&field::OBJECT),
            attribute.field(&field::ATTRIBUTE),
        ) else {
            return Ty::Unknown;
        };
        let name = self.text(name);
        // `self.queryset` is the class attribute, also inside the `get_queryset()` overriding it.
        if name == "queryset" {
            if let Some(class) = self.self_class(object) {
                return self.view_queryset_attribute(self.view_sources(class), depth + 1);
            }
        }
        if name == "model" {
            if let Some(model) = self
                .self_class(object)
                .and_then(|class| self.class_model(class, depth + 1))
            {
                return Ty::ModelClass(model);
            }
        }
        if name == "user" && self.is_request(object) {
            return match self.index().user_model() {
                Some(id) => Ty::Instance(ModelRef::Indexed(id)),
                None => Ty::Unknown,
            };
        }
        match self.ty_at_depth(object, depth + 1) {
            // `self.__class__`: the instance's model (or a subclass, with the same fields).
            Ty::Instance(model) if name == "__class__" => Ty::ModelClass(model),
            // `queryset.model`, `manager.model`
            Ty::QuerySet(QuerySetTy {
                model: Some(model), ..
            })
            | Ty::Manager(ManagerTy {
                model: Some(model), ..
            }) if name == "model" => Ty::ModelClass(model),
            Ty::ModelClass(ModelRef::Indexed(id)) => {
                let model = self.index().model(id);
                let manager = model.manager(name).or_else(|| {
                    IMPLICIT_MANAGERS
                        .contains(&name)
                        .then(|| model.managers.first())
                        .flatten()
                });
                match manager {
                    Some(m) => Ty::Manager(ManagerTy {
                        model: Some(ModelRef::Indexed(id)),
                        related: false,
                        queryset_methods: m.queryset_methods.clone(),
                    }),
                    None => Ty::Unknown,
                }
            }
            Ty::ModelClass(named @ ModelRef::Named(_)) if HEURISTIC_MANAGERS.contains(&name) => {
                Ty::Manager(ManagerTy {
                    model: Some(named),
                    related: false,
                    queryset_methods: Vec::new(),
                })
            }
            Ty::Instance(ModelRef::Indexed(id)) => self.relation_ty(id, name),
            _ => match self.dotted_model(attribute) {
                Some(id) => Ty::ModelClass(ModelRef::Indexed(id)),
                None if self.text(object) == "self" => match self.self_class(object) {
                    Some(class) => self.self_attribute_ty(class, name, depth + 1),
                    None => Ty::Unknown,
                },
                None => Ty::Unknown,
            },
        }
    }

    /// `self.name` in a plain class: what every assignment to it in the class agrees on (its
    /// class attribute and each `self.name = ...` in its methods). Any other way of setting it
    /// (augmented, unpacked, in a nested function) makes it unknown.
    fn self_attribute_ty(&self, class: Node<'a>, name: &'a str, depth: u32) -> Ty {
        if depth > MAX_DEPTH {
            return Ty::Unknown;
        }
        let key = (class.id(), name);
        if let Some(ty) = self.attributes.borrow().get(&key) {
            return ty.clone();
        }
        self.attributes.borrow_mut().insert(key, Ty::Unknown);
        let ty = self.infer_self_attribute(class, name, depth);
        self.attributes.borrow_mut().insert(key, ty.clone());
        ty
    }

    /// What every one of `values` agrees on: their join, or `Unknown` if any is unknown (or
    /// there are none).
    fn join_all(&self, values: impl IntoIterator<Item = Node<'a>>, depth: u32) -> Ty {
        let mut result: Option<Ty> = None;
        for value in values {
            let ty = match self.ty_at_depth(value, depth + 1) {
                Ty::Unknown => return Ty::Unknown,
                ty => ty,
            };
            result = Some(match result {
                None => ty,
                Some(prev) => prev.join(ty),
            });
        }
        result.unwrap_or(Ty::Unknown)
    }

    fn infer_self_attribute(&self, class: Node<'a>, name: &str, depth: u32) -> Ty {
        let Some(values) = self.attribute_values(class, name) else {
            // `@property def name(self)`: what it returns.
            return match self.method_of(class, name) {
                Some(method) if decorators(self, method).iter().any(|d| is_property(d)) => {
                    self.returns_of(method, depth + 1)
                }
                _ => Ty::Unknown,
            };
        };
        self.join_all(values, depth)
    }

    /// The values a class gives `self.<name>`: its class attribute and every `self.name = value`
    /// in its methods. `None` when it is set no such way, or also some other way (augmented,
    /// unpacked, a loop or `with` target). Only methods whose text mentions `self.<name>` are
    /// walked: a test case of thousands of lines is linted on every keystroke.
    fn attribute_values(&self, class: Node<'a>, name: &str) -> Option<Vec<Node<'a>>> {
        let body = class.field(&field::BODY)?;
        let mentioned = format!("self.{name}");
        let is_ours = |node: Node<'a>| {
            node.kind_name() == "attribute"
                && node
                    .field(&field::OBJECT)
                    .is_some_and(|o| self.text(o) == "self")
                && node
                    .field(&field::ATTRIBUTE)
                    .is_some_and(|a| self.text(a) == name)
        };
        let mut values = Vec::new();
        let mut other_writes = false;
        let mut cursor = body.walk();
        let members: Vec<Node<'a>> = body.named_children(&mut cursor).collect();
        for member in members {
            if let Some((left, right)) = super::syntax::simple_assignment(member) {
                if left.kind_name() == "identifier" && self.text(left) == name {
                    values.push(right);
                }
                continue;
            }
            if !may_write(self.text(member), &mentioned) {
                continue;
            }
            super::syntax::walk(member, |n| {
                match n.kind_name() {
                    "assignment" => match (n.field(&field::LEFT), n.field(&field::RIGHT)) {
                        (Some(left), Some(right)) if is_ours(left) => values.push(right),
                        (Some(left), _) if left.kind_name() != "attribute" => {
                            super::syntax::walk(left, |t| {
                                other_writes |= is_ours(t);
                                true
                            });
                        }
                        _ => {}
                    },
                    "augmented_assignment" | "for_statement" => {
                        other_writes |= n.field(&field::LEFT).is_some_and(is_ours);
                    }
                    "with_item" | "as_pattern" => {
                        other_writes |= n.field(&field::ALIAS).is_some_and(is_ours);
                    }
                    _ => {}
                }
                !other_writes && !matches!(n.kind_name(), "lambda" | "class_definition")
            });
            if other_writes {
                return None;
            }
        }
        (!values.is_empty()).then_some(values)
    }

    /// The model a read is narrowed to by `if isinstance(name, M):` around it (the test alone
    /// or one operand of an `and`), when the name is not rebound between the test and the read.
    fn narrowed_by_isinstance(
        &self,
        scope: &ScopeIndex<'a>,
        name: Node<'a>,
        depth: u32,
    ) -> Option<ModelRef> {
        let written = self.text(name);
        let mut child = name;
        while let Some(parent) = self.parents.of(child) {
            if matches!(
                parent.kind_name(),
                "function_definition" | "lambda" | "class_definition"
            ) {
                return None;
            }
            let consequence = parent.field(&field::CONSEQUENCE);
            let in_consequence = consequence.is_some_and(|c| c.id() == child.id());
            if matches!(parent.kind_name(), "if_statement" | "elif_clause") && in_consequence {
                let tested = parent
                    .field(&field::CONDITION)
                    .and_then(|c| self.isinstance_model(c, written, depth));
                if let Some(model) = tested {
                    let rebound = scope.bindings(written).iter().any(|b| {
                        super::syntax::contains(child, b.name)
                            && b.name.start_byte() < name.start_byte()
                    });
                    return (!rebound).then_some(model);
                }
            }
            child = parent;
        }
        None
    }

    /// `isinstance(name, M)`, alone or as an operand of `and`: the model `M`.
    fn isinstance_model(&self, condition: Node<'a>, name: &str, depth: u32) -> Option<ModelRef> {
        let condition = strip_parens(condition);
        if condition.kind_name() == "boolean_operator"
            && condition
                .field(&field::OPERATOR)
                .is_some_and(|o| self.text(o) == "and")
        {
            return ["left", "right"].into_iter().find_map(|side| {
                self.isinstance_model(condition.child_by_field_name(side)?, name, depth)
            });
        }
        let (Some("isinstance"), Some(args)) = (
            condition.field(&field::FUNCTION).map(|f| self.text(f)),
            condition.field(&field::ARGUMENTS),
        ) else {
            return None;
        };
        let (Some(subject), Some(class), 2) = (
            args.named_child(0),
            args.named_child(1),
            args.named_child_count(),
        ) else {
            return None;
        };
        if subject.kind_name() != "identifier" || self.text(subject) != name {
            return None;
        }
        match self.ty_at_depth(class, depth + 1) {
            Ty::ModelClass(model) => Some(model),
            _ => None,
        }
    }

    /// A view's request: a parameter named `request` that nothing else binds, or `self.request`
    /// in a class-based view. Its `user` is an instance of the user model (or an anonymous user,
    /// whose relations are empty managers: no query either way).
    fn is_request(&self, object: Node<'a>) -> bool {
        match object.kind_name() {
            "identifier" if self.text(object) == "request" => {
                let scope = self.scope_of(object);
                let reaching = scope.reaching("request", object, &self.parents);
                matches!(
                    reaching.bindings.as_slice(),
                    [Binding {
                        kind: BindingKind::Param {
                            annotation: None,
                            ..
                        },
                        ..
                    }]
                )
            }
            "attribute" => {
                object
                    .field(&field::ATTRIBUTE)
                    .is_some_and(|a| self.text(a) == "request")
                    && object
                        .field(&field::OBJECT)
                        .and_then(|o| self.self_class(o))
                        .is_some()
            }
            _ => false,
        }
    }

    /// `models.Entry`, `blog.models.Entry`: a model reached through an imported module.
    fn dotted_model(&self, attribute: Node<'a>) -> Option<ModelId> {
        let dotted = self.text(attribute);
        if !dotted
            .bytes()
            .all(|b| b == b'.' || b == b'_' || b.is_ascii_alphanumeric())
        {
            return None;
        }
        let root = dotted.split('.').next()?;
        // Only an imported module's name can start one: asked first, it spares building the
        // scope's name index for every `obj.attr` read.
        let imported = self.facts.imports.iter().any(|i| match i {
            super::index::Import::Module { alias, .. }
            | super::index::Import::From { alias, .. } => alias == root,
            super::index::Import::Star { .. } => false,
        });
        if !imported {
            return None;
        }
        let scope = self.scope_of(attribute);
        let bound_here = scope.bindings(root);
        if scope.scope.kind_name() == "module" {
            if !bound_here.iter().all(is_definition) {
                return None;
            }
        } else if !bound_here.is_empty() {
            return None;
        }
        let symbol = self.index().resolve(self.facts, dotted);
        self.index().model_of(&symbol)
    }

    /// `instance.name` for an indexed model: a related instance or a relation manager.
    fn relation_ty(&self, id: ModelId, name: &str) -> Ty {
        let model = self.index().model(id);
        let manager = |target: ModelId| {
            let target_model = self.index().model(target);
            let methods = target_model
                .managers
                .first()
                .map(|m| m.queryset_methods.clone())
                .unwrap_or_default();
            Ty::Manager(ManagerTy {
                model: Some(ModelRef::Indexed(target)),
                related: true,
                queryset_methods: methods,
            })
        };
        if let Some(field) = model.field(name) {
            return match (field.kind, field.target) {
                (FieldKind::ForeignKey | FieldKind::OneToOne, Some(target)) => {
                    Ty::Instance(ModelRef::Indexed(target))
                }
                (FieldKind::ManyToMany, Some(target)) => manager(target),
                _ => Ty::Unknown,
            };
        }
        match model.reverse(name) {
            Some(reverse) if reverse.many => manager(reverse.source),
            Some(reverse) => Ty::Instance(ModelRef::Indexed(reverse.source)),
            None => Ty::Unknown,
        }
    }

    fn call_ty(&self, call: Node<'a>, depth: u32) -> Ty {
        let Some(function) = call.field(&field::FUNCTION) else {
            return Ty::Unknown;
        };
        if function.kind_name() == "identifier" {
            return self.function_call_ty(call, self.text(function), depth);
        }
        let Some((receiver, method)) = method_call(call, self.source) else {
            return Ty::Unknown;
        };
        if method == "get_model" {
            return self.get_model_ty(call);
        }
        if method == "get_queryset" {
            if let Some(class) = self.self_class(receiver) {
                return self.view_queryset(class, depth + 1);
            }
        }
        if let Some(function) = self
            .self_class(receiver)
            .and_then(|class| self.method_of(class, method))
        {
            return self.returns_of(function, depth + 1);
        }
        let (mut qs, custom) = match self.ty_at_depth(receiver, depth + 1) {
            Ty::Manager(m) => {
                let custom = m.queryset_methods.clone();
                (
                    QuerySetTy {
                        model: m.model,
                        queryset_methods: m.queryset_methods,
                        ..QuerySetTy::default()
                    },
                    custom,
                )
            }
            Ty::QuerySet(qs) => {
                let custom = qs.queryset_methods.clone();
                (qs, custom)
            }
            // A page holds a slice of the paginated rows.
            Ty::Paginator(qs) if matches!(method, "page" | "get_page") => {
                return Ty::Evaluated(QuerySetTy { sliced: true, ..qs })
            }
            Ty::ModelClass(ModelRef::Indexed(model)) => {
                return self.model_method_ty(call, model, false, method, depth)
            }
            Ty::Instance(ModelRef::Indexed(model)) => {
                return self.model_method_ty(call, model, true, method, depth)
            }
            Ty::Unknown => return self.module_member_call_ty(call, receiver, method, depth),
            _ => return Ty::Unknown,
        };
        if INSTANCE_METHODS.contains(&method) {
            return match qs.model {
                Some(model) if !qs.values => Ty::Instance(model),
                _ => Ty::Unknown,
            };
        }
        // `qs.iterator()` runs the query and streams its rows: iterating gives instances.
        if method == "iterator" && !custom.iter().any(|m| m == method) {
            return Ty::Evaluated(qs);
        }
        if !QUERYSET_METHODS.contains(&method) && !custom.iter().any(|m| m == method) {
            return Ty::Unknown;
        }
        qs.values |= VALUES_METHODS.contains(&method);
        qs.combined |= matches!(method, "union" | "intersection" | "difference");
        qs.locks |= method == "select_for_update";
        qs.empty |= method == "none";
        match method {
            // `select_related()` with no arguments follows every foreign key.
            "select_related" if self.argument_count(call) == 0 => {
                qs.select_related.push("*".into())
            }
            "select_related" => qs.select_related.extend(self.lookups(call)),
            "prefetch_related" if self.text(call).ends_with("prefetch_related(None)") => {
                qs.prefetch_related.clear()
            }
            "prefetch_related" => qs.prefetch_related.extend(self.lookups(call)),
            // Fields the analyzer cannot read (`only(*names)`) could be any: then it does not
            // know what is loaded.
            "only" => {
                let fields = self.string_arguments(call);
                let readable = call
                    .field(&field::ARGUMENTS)
                    .is_some_and(|a| a.named_child_count() == fields.len());
                qs.only = readable.then_some(fields);
            }
            // `defer(None)` clears the deferred set.
            "defer" if self.text(call).ends_with("defer(None)") => qs.defer.clear(),
            "defer" => qs.defer.extend(self.string_arguments(call)),
            _ => {}
        }
        Ty::QuerySet(qs)
    }

    /// `get_object_or_404(Entry, pk=1)` and other plain functions.
    fn function_call_ty(&self, call: Node<'a>, function: &str, depth: u32) -> Ty {
        // `load_model("geo", "Location")` (swapper and the projects built on it) names a model
        // by its app label, like `apps.get_model`.
        if function == "load_model" {
            return self.get_model_ty(call);
        }
        match function {
            "get_user_model" => {
                return match self.index().user_model() {
                    Some(id) => Ty::ModelClass(ModelRef::Indexed(id)),
                    None => Ty::Unknown,
                };
            }
            "list" | "sorted" => {
                let first = call.field(&field::ARGUMENTS).and_then(|a| a.named_child(0));
                return match first.map(|f| self.ty_at_depth(f, depth + 1)) {
                    Some(Ty::QuerySet(qs)) => Ty::Evaluated(qs),
                    _ => Ty::Unknown,
                };
            }
            // `type(self)`: the instance's model.
            "type" if self.argument_count(call) == 1 => {
                let first = call.field(&field::ARGUMENTS).and_then(|a| a.named_child(0));
                return match first.map(|f| self.ty_at_depth(f, depth + 1)) {
                    Some(Ty::Instance(model)) => Ty::ModelClass(model),
                    _ => Ty::Unknown,
                };
            }
            "get_object_or_404" => {}
            _ => {
                return match self.module_function(call, function) {
                    Some(definition) => self.returns_of(definition, depth + 1),
                    None => self.imported_call_ty(call, function, depth),
                }
            }
        }
        let Some(first) = call.field(&field::ARGUMENTS).and_then(|a| a.named_child(0)) else {
            return Ty::Unknown;
        };
        match self.ty_at_depth(first, depth + 1) {
            Ty::ModelClass(m) => Ty::Instance(m),
            Ty::Manager(ManagerTy { model: Some(m), .. }) => Ty::Instance(m),
            Ty::QuerySet(QuerySetTy {
                model: Some(m),
                values: false,
                ..
            }) => Ty::Instance(m),
            _ => Ty::Unknown,
        }
    }

    /// `apps.get_model("blog", "Entry")` / `apps.get_model("blog.Entry")` in migrations: the
    /// historical model, whose fields the index knows from the current one.
    fn get_model_ty(&self, call: Node<'a>) -> Ty {
        let label = self.string_arguments(call).join(".");
        match self.index().model_by_label(&label) {
            Some(id) => Ty::ModelClass(ModelRef::Indexed(id)),
            None => Ty::Unknown,
        }
    }

    fn argument_count(&self, call: Node<'a>) -> usize {
        call.field(&field::ARGUMENTS)
            .map_or(0, |a| a.named_child_count())
    }

    /// The lookups a `select_related`/`prefetch_related` call loads. An argument the analyzer
    /// cannot read (a variable holding a `Prefetch`) could load anything: `MAYBE_LOADED`.
    fn lookups(&self, call: Node<'a>) -> Vec<String> {
        let mut lookups = self.string_arguments(call);
        let readable = lookups.len() + self.prefetches_with_to_attr(call);
        if readable < self.argument_count(call) {
            lookups.push(MAYBE_LOADED.into());
        }
        lookups.extend(self.prefetched_queryset_lookups(call));
        lookups
    }

    /// What the QuerySets of `Prefetch("rel", queryset=...)` arguments load themselves, as
    /// lookups through `rel`: `Prefetch("comments", queryset=Comment.objects.select_related(
    /// "author"))` loads `comments__author`. With `to_attr`, the rows land in the attribute but
    /// the hops before the last are loaded as usual (`Prefetch("group__users", to_attr=...)`
    /// loads `group`).
    fn prefetched_queryset_lookups(&self, call: Node<'a>) -> Vec<String> {
        let mut nested = Vec::new();
        for prefetch in self.arguments(call).filter_map(|a| self.prefetch(a)) {
            let Some(lookup) = prefetch.lookup.and_then(|l| string_value(l, self.source)) else {
                continue;
            };
            if prefetch.to_attr {
                if let Some((through, _)) = lookup.rsplit_once("__") {
                    nested.push(through.to_string());
                }
                continue;
            }
            if let Some(Ty::QuerySet(inner)) = prefetch.queryset.map(|q| self.ty(q)) {
                nested.extend(
                    inner
                        .select_related
                        .iter()
                        .chain(&inner.prefetch_related)
                        .map(|l| format!("{lookup}__{l}")),
                );
            }
        }
        nested
    }

    /// How many arguments are `Prefetch(..., to_attr=...)`: readable, but load no lookup.
    fn prefetches_with_to_attr(&self, call: Node<'a>) -> usize {
        self.arguments(call)
            .filter_map(|a| self.prefetch(a))
            .filter(|p| p.to_attr)
            .count()
    }

    /// String arguments and `Prefetch("lookup", ...)` lookups of a call (not those with
    /// `to_attr`: their rows land in that attribute, `row.relation` stays unloaded).
    fn string_arguments(&self, call: Node<'a>) -> Vec<String> {
        self.arguments(call)
            .filter_map(|arg| match self.prefetch(arg) {
                Some(prefetch) if prefetch.to_attr => None,
                Some(prefetch) => prefetch.lookup,
                None => Some(arg),
            })
            .filter_map(|literal| string_value(literal, self.source))
            .collect()
    }

    fn arguments(&self, call: Node<'a>) -> impl Iterator<Item = Node<'a>> {
        let arguments = call.field(&field::ARGUMENTS);
        (0..arguments.map_or(0, |a| a.named_child_count()))
            .filter_map(move |i| arguments?.named_child(i))
    }

    /// The parts of a `Prefetch(lookup, queryset=None, to_attr=None)` call, positional or by
    /// keyword; `None` for any other expression.
    fn prefetch(&self, arg: Node<'a>) -> Option<PrefetchArguments<'a>> {
        let is_prefetch = arg.kind_name() == "call"
            && arg
                .field(&field::FUNCTION)
                .is_some_and(|f| self.text(f).ends_with("Prefetch"));
        if !is_prefetch {
            return None;
        }
        let mut parts = PrefetchArguments {
            lookup: None,
            queryset: None,
            to_attr: false,
        };
        for (i, part) in self.arguments(arg).enumerate() {
            let keyword = (part.kind_name() == "keyword_argument")
                .then(|| part.field(&field::NAME).map(|n| self.text(n)))
                .flatten();
            match keyword {
                Some("lookup") => parts.lookup = part.field(&field::VALUE),
                Some("queryset") => parts.queryset = part.field(&field::VALUE),
                Some("to_attr") => parts.to_attr = true,
                Some(_) => {}
                None if i == 0 => parts.lookup = Some(part),
                None if i == 1 => parts.queryset = Some(part),
                None if i == 2 => parts.to_attr = true,
                None => {}
            }
        }
        Some(parts)
    }

    /// `qs[a:b]` is a sliced QuerySet; `qs[i]` one instance; `qs[::step]` a list.
    fn subscript_ty(&self, subscript: Node<'a>, depth: u32) -> Ty {
        let (Some(value), Some(index)) = (
            subscript.field(&field::VALUE),
            subscript.field(&field::SUBSCRIPT),
        ) else {
            return Ty::Unknown;
        };
        let Ty::QuerySet(qs) = self.ty_at_depth(value, depth + 1) else {
            return Ty::Unknown;
        };
        if index.kind_name() != "slice" {
            return match qs.model {
                Some(model) if !qs.values => Ty::Instance(model),
                _ => Ty::Unknown,
            };
        }
        if self.text(index).matches(':').count() > 1 {
            return Ty::Unknown;
        }
        Ty::QuerySet(QuerySetTy { sliced: true, ..qs })
    }

    fn name_ty(&self, name: Node<'a>, depth: u32) -> Ty {
        match self.names.borrow().get(&name.id()) {
            Some(Some(ty)) => return ty.clone(),
            Some(None) => {
                self.cycles.set(self.cycles.get() + 1);
                return Ty::Unknown;
            }
            None => {}
        }
        self.names.borrow_mut().insert(name.id(), None);
        let ty = self.infer_name(name, depth);
        self.names.borrow_mut().insert(name.id(), Some(ty.clone()));
        ty
    }

    fn infer_name(&self, name: Node<'a>, depth: u32) -> Ty {
        let scope = self.scope_of(name);
        let written = self.text(name);

        // The name being bound (hover on `qs` in `qs = ...`): the type it gets.
        if let Some(binding) = scope
            .bindings(written)
            .iter()
            .find(|b| b.name.id() == name.id())
        {
            return self.binding_ty(binding, depth);
        }
        if let Some(model) = self.narrowed_by_isinstance(&scope, name, depth) {
            return Ty::Instance(model);
        }
        let reaching = scope.reaching(written, name, &self.parents);
        if reaching.bindings.is_empty() && scope.bindings(written).is_empty() {
            // Not bound in this scope: a module-level import or class, or a global.
            return self
                .module_model_alias(written, depth)
                .unwrap_or_else(|| self.module_name_ty(written));
        }
        // At module level, a name only imported or defined as a class is what the module says.
        if scope.scope.kind_name() == "module" && scope.bindings(written).iter().all(is_definition)
        {
            return self.module_name_ty(written);
        }
        // In a function, a path that reaches the read with no binding raises
        // `UnboundLocalError`: it gives no other value. Elsewhere it reads a global.
        let function_local = matches!(scope.scope.kind_name(), "function_definition" | "lambda");
        if reaching.bindings.is_empty() || !(reaching.complete || function_local) {
            return Ty::Unknown;
        }
        let mut result: Option<Ty> = None;
        let mut loop_carried = false;
        for binding in reaching.bindings {
            let cycles = self.cycles.get();
            let ty = self.binding_ty(binding, depth);
            // `qs = qs.filter(...)` in a loop reaches its own read: unknown only through
            // itself. The others say what it is built from; what the loop adds to it is not
            // known, so it may load anything.
            if ty == Ty::Unknown
                && self.cycles.get() > cycles
                && is_rebuilt_from_itself(self, binding, written)
            {
                loop_carried = true;
                continue;
            }
            if ty == Ty::Unknown {
                return Ty::Unknown;
            }
            result = Some(match result {
                None => ty,
                Some(prev) => prev.join(ty),
            });
        }
        match result {
            Some(Ty::QuerySet(mut qs)) if loop_carried => {
                qs.select_related = vec![MAYBE_LOADED.into()];
                qs.prefetch_related = vec![MAYBE_LOADED.into()];
                qs.only = None;
                Ty::QuerySet(qs)
            }
            Some(_) if loop_carried => Ty::Unknown,
            result => result.unwrap_or(Ty::Unknown),
        }
    }

    fn binding_ty(&self, binding: &Binding<'a>, depth: u32) -> Ty {
        if let BindingKind::Param { .. } = binding.kind {
            if let Some(ty) = self.arguments.borrow().get(&binding.name.id()) {
                return ty.clone();
            }
        }
        match binding.kind {
            BindingKind::Assign { value, annotation } => {
                match annotation.map(|a| self.annotation_ty(a)) {
                    Some(ty) if ty != Ty::Unknown => ty,
                    _ => self.ty_at_depth(value, depth + 1),
                }
            }
            BindingKind::Param {
                annotation: Some(a),
                ..
            } => match self.annotation_ty(a) {
                // `rows: QuerySet[Entry]` names the model, not what the rows come with: when
                // every call of the module passes a known QuerySet of that model, that is it.
                Ty::QuerySet(annotated) => match self.call_site_param_ty(binding.name, depth) {
                    Ty::QuerySet(passed) if passed.model == annotated.model => Ty::QuerySet(passed),
                    _ => Ty::QuerySet(annotated),
                },
                ty => ty,
            },
            BindingKind::Param {
                is_first_of_method: true,
                ..
            } => self.self_ty(binding.name),
            BindingKind::Param {
                annotation: None,
                is_first_of_method: false,
                is_class_of_classmethod: false,
            } => match self.convention_param_ty(binding.name) {
                Ty::Unknown => self.call_site_param_ty(binding.name, depth),
                ty => ty,
            },
            BindingKind::Param {
                is_class_of_classmethod: true,
                ..
            } => match self.self_ty(binding.name) {
                Ty::Instance(model) => Ty::ModelClass(model),
                _ => Ty::Unknown,
            },
            // `obj, created = M.objects.get_or_create(...)`
            BindingKind::Unpacked { value, index: 0 }
                if matches!(
                    method_call(value, self.source),
                    Some((_, "get_or_create" | "update_or_create"))
                ) =>
            {
                let receiver = method_call(value, self.source).map(|(r, _)| r);
                match receiver.map(|r| self.ty_at_depth(r, depth + 1)) {
                    Some(
                        Ty::Manager(ManagerTy { model: Some(m), .. })
                        | Ty::QuerySet(QuerySetTy {
                            model: Some(m),
                            values: false,
                            ..
                        }),
                    ) => Ty::Instance(m),
                    _ => Ty::Unknown,
                }
            }
            // `page, paginator = paginate(...)`
            BindingKind::Unpacked { value, index } => match self.ty_at_depth(value, depth + 1) {
                Ty::Tuple(elements) => elements.into_iter().nth(index).unwrap_or(Ty::Unknown),
                _ => Ty::Unknown,
            },
            BindingKind::Other
                if matches!(
                    binding.statement.kind_name(),
                    "import_from_statement" | "import_statement"
                ) =>
            {
                self.local_import_ty(binding)
            }
            BindingKind::ForTarget { iterable, .. }
            | BindingKind::ComprehensionTarget { iterable, .. } => {
                self.ty_at_depth(iterable, depth + 1).element()
            }
            _ => Ty::Unknown,
        }
    }

    /// A name imported inside a function: the model class the import names, if it is one.
    fn local_import_ty(&self, binding: &Binding<'a>) -> Ty {
        let imports = super::index::import_facts(
            self.source,
            binding.statement,
            &self.facts.module,
            self.facts.is_package,
        );
        let symbol = self.index().resolve(&imports, self.text(binding.name));
        match self.index().model_of(&symbol) {
            Some(id) => Ty::ModelClass(ModelRef::Indexed(id)),
            None => Ty::Unknown,
        }
    }

    /// A module-level name of this file that refers to `model` (an import, maybe aliased, or
    /// the class itself), for fixes that write the model's class.
    pub fn model_class_name(&self, model: ModelId) -> Option<String> {
        let own = self.index().model(model).name.clone();
        let imported = self.facts.imports.iter().filter_map(|i| match i {
            super::index::Import::From { alias, .. } => Some(alias.clone()),
            _ => None,
        });
        std::iter::once(own).chain(imported).find(|name| {
            matches!(self.module_name_ty(name), Ty::ModelClass(ModelRef::Indexed(id)) if id == model)
        })
    }

    /// A model class bound once at module level by an assignment (`Book = load_model("library",
    /// "Book")`, swapper's way to name a swappable model), read from a function or class.
    fn module_model_alias(&self, name: &str, depth: u32) -> Option<Ty> {
        // Asked for every name a function does not bind: the module's name index (a walk of
        // the whole file) only when a top-level statement assigns this name.
        let root = self.parents.root();
        let mut cursor = root.walk();
        let assigned_at_top = root.named_children(&mut cursor).any(|statement| {
            super::syntax::simple_assignment(statement)
                .is_some_and(|(left, _)| self.text(left) == name)
        });
        if !assigned_at_top {
            return None;
        }
        let module = self.scope_of(root);
        let [binding] = module.bindings(name) else {
            return None;
        };
        if !matches!(binding.kind, BindingKind::Assign { .. }) {
            return None;
        }
        match self.binding_ty(binding, depth + 1) {
            ty @ Ty::ModelClass(ModelRef::Indexed(_)) => Some(ty),
            _ => None,
        }
    }

    /// A name from the module's imports or classes: a model class, or unknown.
    fn module_name_ty(&self, name: &str) -> Ty {
        match self.index().resolve(self.facts, name) {
            symbol @ Symbol::Class { .. } => match self.index().model_of(&symbol) {
                Some(id) => Ty::ModelClass(ModelRef::Indexed(id)),
                None if self.is_local_model(name) => {
                    Ty::ModelClass(ModelRef::Named(name.to_string()))
                }
                None => Ty::Unknown,
            },
            Symbol::Unknown | Symbol::External(_) if looks_like_model_class(name) => {
                Ty::ModelClass(ModelRef::Named(name.to_string()))
            }
            _ => Ty::Unknown,
        }
    }

    /// A model class defined in this file that the index does not hold (yet): one of its bases
    /// is Django's `Model` or an indexed model.
    fn is_local_model(&self, name: &str) -> bool {
        let Some(class) = self.facts.classes.iter().find(|c| c.name == name) else {
            return false;
        };
        class
            .bases
            .iter()
            .any(|base| match self.index().resolve(self.facts, base) {
                Symbol::External(q) => super::index::MODEL_ROOTS.contains(&q.as_str()),
                symbol => self.index().model_of(&symbol).is_some(),
            })
    }

    /// `x: QuerySet[Entry]`, `x: "QuerySet[Entry]"`, `x: models.QuerySet`, `x: Entry`.
    fn annotation_ty(&self, annotation: Node<'a>) -> Ty {
        let written = self
            .text(annotation)
            .trim()
            .trim_matches(|c| c == '"' || c == '\'')
            .trim();
        // `QuerySet[Entry] | None`, `Optional[Entry]`: maybe not a QuerySet at all.
        if written.contains('|') || written.starts_with("Optional") || written.contains(".Optional")
        {
            return Ty::Unknown;
        }
        let (base, argument) = match written.split_once('[') {
            Some((base, rest)) => (
                base.trim(),
                rest.strip_suffix(']')
                    .map(|a| a.split(',').next().unwrap_or(a).trim()),
            ),
            None => (written, None),
        };
        let base_symbol = self.index().resolve(self.facts, base);
        let is_queryset = matches!(&base_symbol, Symbol::External(q) if QUERYSET_CLASSES.contains(&q.as_str()))
            || base.rsplit('.').next() == Some("QuerySet");
        if is_queryset {
            let model = argument.and_then(|a| {
                match self.module_name_ty(a.trim_matches(|c| c == '"' || c == '\'')) {
                    Ty::ModelClass(m) => Some(m),
                    _ => None,
                }
            });
            // What the caller joined or prefetched is not written in the annotation: the rows
            // may come with anything loaded.
            return Ty::QuerySet(QuerySetTy {
                model,
                select_related: vec![MAYBE_LOADED.into()],
                prefetch_related: vec![MAYBE_LOADED.into()],
                ..QuerySetTy::default()
            });
        }
        match self.index().model_of(&base_symbol) {
            Some(id) if argument.is_none() => Ty::Instance(ModelRef::Indexed(id)),
            _ => Ty::Unknown,
        }
    }

    /// The class whose method has `object` as its first parameter (`self`).
    fn self_class(&self, object: Node<'a>) -> Option<Node<'a>> {
        if object.kind_name() != "identifier" {
            return None;
        }
        let scope = self.scope_of(object);
        let reaching = scope.reaching(self.text(object), object, &self.parents);
        let [binding] = reaching.bindings.as_slice() else {
            return None;
        };
        match binding.kind {
            BindingKind::Param {
                is_first_of_method: true,
                ..
            } => self.class_of_method(scope.scope),
            _ => None,
        }
    }

    fn class_of_method(&self, function: Node<'a>) -> Option<Node<'a>> {
        let mut node = self.parents.of(function)?;
        if node.kind_name() == "decorated_definition" {
            node = self.parents.of(node)?;
        }
        self.parents
            .of(node)
            .filter(|c| c.kind_name() == "class_definition")
    }

    /// A parameter typed by the framework that calls the function: a signal receiver's
    /// `instance` (`@receiver(post_save, sender=M)`), a `ModelAdmin` method's `obj` and an admin
    /// action's `queryset`, a `ModelSerializer` method field's `obj` and the `instance` of its
    /// `to_representation` and `update`.
    fn convention_param_ty(&self, param: Node<'a>) -> Ty {
        let function = enclosing_scope(param, &self.parents);
        if function.kind_name() != "function_definition" {
            return Ty::Unknown;
        }
        let name = self.text(param);
        if name == "instance" {
            if let Some(model) = self.receiver_sender(function) {
                return Ty::Instance(model);
            }
        }
        let Some(class) = self.class_of_method(function) else {
            return Ty::Unknown;
        };
        let method = function.field(&field::NAME).map_or("", |n| self.text(n));
        let class_name = class.field(&field::NAME).map_or("", |n| self.text(n));
        let bases = class
            .field(&field::SUPERCLASSES)
            .map_or("", |b| self.text(b));
        if bases.contains("ModelAdmin") && !bases.contains("Inline") {
            let model = self.class_model(class, 0);
            return match (name, model) {
                ("obj", Some(model)) => Ty::Instance(model),
                ("queryset", Some(model)) => Ty::QuerySet(QuerySetTy {
                    model: Some(model),
                    ..QuerySetTy::default()
                }),
                _ => Ty::Unknown,
            };
        }
        let expected = match name {
            "obj" => method.starts_with("get_"),
            "instance" => matches!(method, "to_representation" | "update"),
            _ => false,
        };
        let is_second = function
            .field(&field::PARAMETERS)
            .and_then(|p| p.named_child(1))
            .is_some_and(|p| p.id() == param.id());
        if !expected || !is_second {
            return Ty::Unknown;
        }
        super::serializers::resolve(self.index(), self.facts, class_name)
            .and_then(|found| found.serialized_model(self.index()))
            .map_or(Ty::Unknown, |id| Ty::Instance(ModelRef::Indexed(id)))
    }

    /// The model of `sender=M` in a `@receiver(...)` decorator of `function`.
    fn receiver_sender(&self, function: Node<'a>) -> Option<ModelRef> {
        let decorated = self
            .parents
            .of(function)
            .filter(|d| d.kind_name() == "decorated_definition")?;
        let mut cursor = decorated.walk();
        let decorators: Vec<Node<'a>> = decorated
            .named_children(&mut cursor)
            .filter(|d| d.kind_name() == "decorator")
            .collect();
        decorators.into_iter().find_map(|decorator| {
            let call = decorator
                .named_child(0)
                .filter(|c| c.kind_name() == "call")?;
            let function = call.field(&field::FUNCTION)?;
            if self.text(function).rsplit('.').next() != Some("receiver") {
                return None;
            }
            let arguments = call.field(&field::ARGUMENTS)?;
            let mut cursor = arguments.walk();
            let sender = arguments.named_children(&mut cursor).find_map(|a| {
                (a.kind_name() == "keyword_argument"
                    && a.field(&field::NAME)
                        .is_some_and(|n| self.text(n) == "sender"))
                .then(|| a.field(&field::VALUE))
                .flatten()
            })?;
            match self.ty(sender) {
                Ty::ModelClass(model) => Some(model),
                _ => None,
            }
        })
    }

    /// `self` in a method: an instance of a model, a QuerySet in a QuerySet subclass, a manager
    /// in a manager subclass. (In views, `self.get_queryset()` is read from the class instead.)
    fn self_ty(&self, param: Node<'a>) -> Ty {
        let Some(class) = self.class_of_method(enclosing_scope(param, &self.parents)) else {
            return Ty::Unknown;
        };
        let Some(name) = class.field(&field::NAME).map(|n| self.text(n)) else {
            return Ty::Unknown;
        };
        let symbol = Symbol::Class {
            module: self.facts.module.clone(),
            name: name.to_string(),
        };
        if let Some(id) = self.index().model_of(&symbol) {
            return Ty::Instance(ModelRef::Indexed(id));
        }
        let Some(facts) = self.facts.classes.iter().find(|c| c.name == name) else {
            return Ty::Unknown;
        };
        let methods: Vec<String> = facts
            .methods
            .iter()
            .filter(|m| m.returns_queryset)
            .map(|m| m.name.clone())
            .collect();
        // The model whose manager is built on this class, when only one is (a QuerySet class
        // shared by several models could be any of them).
        let model = self
            .index()
            .only_model_using(&self.facts.module, name)
            .map(ModelRef::Indexed);
        for base in &facts.bases {
            match self.index().resolve(self.facts, base) {
                Symbol::External(q) if QUERYSET_CLASSES.contains(&q.as_str()) => {
                    return Ty::QuerySet(QuerySetTy {
                        model,
                        queryset_methods: methods,
                        ..QuerySetTy::default()
                    });
                }
                Symbol::External(q) if MANAGER_CLASSES.contains(&q.as_str()) => {
                    return Ty::Manager(ManagerTy {
                        model,
                        related: false,
                        queryset_methods: methods,
                    });
                }
                _ => {}
            }
        }
        Ty::Unknown
    }

    /// Where `self.get_queryset()` or `self.queryset` in a view is built: the one expression its
    /// `get_queryset()` returns, else its `queryset` attribute's value (`self.queryset` is always
    /// the attribute's).
    pub fn view_queryset_site(&self, expr: Node<'a>) -> Option<Node<'a>> {
        match expr.kind_name() {
            "call" => match method_call(expr, self.source) {
                Some((receiver, "get_queryset")) => {
                    self.view_class_queryset_site(self.self_class(receiver)?)
                }
                _ => None,
            },
            "attribute"
                if expr
                    .field(&field::ATTRIBUTE)
                    .is_some_and(|a| self.text(a) == "queryset") =>
            {
                let object = expr.field(&field::OBJECT)?;
                self.view_sources(self.self_class(object)?).queryset
            }
            _ => None,
        }
    }

    /// Where a view class builds its QuerySet: the one expression its `get_queryset()` returns,
    /// else its `queryset` attribute's value.
    pub fn view_class_queryset_site(&self, class: Node<'a>) -> Option<Node<'a>> {
        match self.view_sources(class) {
            ViewSources {
                get_queryset: Some(returns),
                ..
            } => match returns.as_slice() {
                [only] => Some(*only),
                _ => None,
            },
            ViewSources { queryset, .. } => queryset,
        }
    }

    /// What a view class says about its QuerySet.
    fn view_sources(&self, class: Node<'a>) -> ViewSources<'a> {
        let mut sources = ViewSources {
            get_queryset: None,
            queryset: None,
            model: None,
        };
        let Some(body) = class.field(&field::BODY) else {
            return sources;
        };
        let mut cursor = body.walk();
        for statement in body.named_children(&mut cursor) {
            if statement.kind_name() == "function_definition" {
                if statement
                    .field(&field::NAME)
                    .is_some_and(|n| self.text(n) == "get_queryset")
                {
                    let mut returns = Vec::new();
                    super::syntax::walk(statement, |n| {
                        if n.kind_name() == "return_statement" {
                            returns.extend(n.named_child(0));
                        }
                        !matches!(n.kind_name(), "lambda" | "class_definition")
                            && (n.id() == statement.id() || n.kind_name() != "function_definition")
                    });
                    sources.get_queryset = Some(returns);
                }
                continue;
            }
            let Some((left, right)) = super::syntax::simple_assignment(statement) else {
                continue;
            };
            match self.text(left) {
                "queryset" => sources.queryset = Some(right),
                "model" => sources.model = Some(right),
                _ => {}
            }
        }
        sources
    }

    /// The QuerySet a class-based view or viewset works on: its `get_queryset()` when it returns
    /// one expression, else its `queryset` attribute, else `model = M`.
    fn view_queryset(&self, class: Node<'a>, depth: u32) -> Ty {
        if depth > MAX_DEPTH {
            return Ty::Unknown;
        }
        let sources = self.view_sources(class);
        if let Some(returns) = sources.get_queryset {
            let mut result: Option<Ty> = None;
            for value in returns {
                let ty = match self.ty_at_depth(value, depth + 1) {
                    Ty::Manager(m) => Ty::QuerySet(QuerySetTy {
                        model: m.model,
                        queryset_methods: m.queryset_methods,
                        ..QuerySetTy::default()
                    }),
                    ty => ty,
                };
                result = Some(match result {
                    None => ty,
                    Some(prev) => prev.join(ty),
                });
            }
            return result.filter(Ty::is_queryset).unwrap_or(Ty::Unknown);
        }
        self.view_queryset_attribute(sources, depth)
    }

    /// The QuerySet of a view's `queryset` attribute, else of `model = M`.
    fn view_queryset_attribute(&self, sources: ViewSources<'a>, depth: u32) -> Ty {
        if depth > MAX_DEPTH {
            return Ty::Unknown;
        }
        if let Some(queryset) = sources.queryset {
            return match self.ty_at_depth(queryset, depth + 1) {
                Ty::Manager(m) => Ty::QuerySet(QuerySetTy {
                    model: m.model,
                    queryset_methods: m.queryset_methods,
                    ..QuerySetTy::default()
                }),
                ty @ Ty::QuerySet(_) => ty,
                _ => Ty::Unknown,
            };
        }
        match sources.model.map(|m| self.ty_at_depth(m, depth + 1)) {
            Some(Ty::ModelClass(model)) => Ty::QuerySet(QuerySetTy {
                model: Some(model),
                ..QuerySetTy::default()
            }),
            _ => Ty::Unknown,
        }
    }
}

impl<'a> Semantics<'a> {
    /// A call of a function another module of the workspace defines (`from .utils import
    /// paginate`), typed from its body with this call's arguments; or `Paginator(qs, n)`.
    fn imported_call_ty(&self, call: Node<'a>, function: &str, depth: u32) -> Ty {
        let Some(program) = self.program else {
            return Ty::Unknown;
        };
        // A name the enclosing function binds is not the import.
        let scope = call.field(&field::FUNCTION).map(|f| self.scope_of(f));
        if scope
            .is_some_and(|s| s.scope.kind_name() != "module" && !s.bindings(function).is_empty())
        {
            return Ty::Unknown;
        }
        let imported = self.facts.imports.iter().rev().find_map(|i| match i {
            Import::From {
                module,
                name,
                alias,
            } if alias == function => Some((module, name)),
            _ => None,
        });
        let Some((module, name)) = imported else {
            return Ty::Unknown;
        };
        if name == "Paginator" && module.starts_with("django.core.paginator") {
            let first = call.field(&field::ARGUMENTS).and_then(|a| a.named_child(0));
            return match first.map(|f| self.ty_at_depth(f, depth + 1)) {
                Some(Ty::QuerySet(qs) | Ty::Evaluated(qs)) if !qs.values => Ty::Paginator(qs),
                _ => Ty::Unknown,
            };
        }
        match program.function(module, name) {
            Some(callee) => self.summary_ty(program, &callee, call, depth),
            None => Ty::Unknown,
        }
    }

    /// `helpers.paginate(...)`, where `helpers` names a module of the workspace.
    fn module_member_call_ty(
        &self,
        call: Node<'a>,
        receiver: Node<'a>,
        method: &str,
        depth: u32,
    ) -> Ty {
        let Some(program) = self.program else {
            return Ty::Unknown;
        };
        if !matches!(receiver.kind_name(), "identifier" | "attribute") {
            return Ty::Unknown;
        }
        let module = match self.index().resolve(self.facts, self.text(receiver)) {
            Symbol::Module(module) | Symbol::External(module) => module,
            Symbol::Class { module, name } => {
                return self.class_method_ty(program, call, &module, &name, None, method, depth)
            }
            Symbol::Unknown => return Ty::Unknown,
        };
        match program.function(&module, method) {
            Some(callee) => self.summary_ty(program, &callee, call, depth),
            None => Ty::Unknown,
        }
    }

    /// A method of a project model called on the class or on an instance: a classmethod
    /// (`Entry.visible_to(user)`), a staticmethod, or a plain method of an instance
    /// (`blog.recent_entries()`), found on the model or its bases in whichever file defines it.
    fn model_method_ty(
        &self,
        call: Node<'a>,
        model: ModelId,
        on_instance: bool,
        method: &str,
        depth: u32,
    ) -> Ty {
        let Some(program) = self.program else {
            return Ty::Unknown;
        };
        let declared = self.index().model(model);
        let receiver = match on_instance {
            true => Ty::Instance(ModelRef::Indexed(model)),
            false => Ty::ModelClass(ModelRef::Indexed(model)),
        };
        self.class_method_ty(
            program,
            call,
            &declared.module,
            &declared.name,
            Some(receiver),
            method,
            depth,
        )
    }

    /// `Class.method(...)` or `instance.method(...)` for a class of the workspace: `receiver`
    /// is what it is called on (`None`: a class the index does not model).
    #[allow(clippy::too_many_arguments)]
    fn class_method_ty(
        &self,
        program: &Program,
        call: Node<'a>,
        module: &str,
        class: &str,
        receiver: Option<Ty>,
        method: &str,
        depth: u32,
    ) -> Ty {
        let Some((mut callee, binds)) = program.method(module, class, method) else {
            return Ty::Unknown;
        };
        callee.bound = match (binds, receiver) {
            (Binds::Nothing, _) => None,
            (Binds::Class, Some(Ty::Instance(model) | Ty::ModelClass(model))) => {
                Some(Ty::ModelClass(model))
            }
            (Binds::Instance, Some(instance @ Ty::Instance(_))) => Some(instance),
            // A plain method called on the class takes the instance as its first argument;
            // a classmethod of a class the index does not model gets a class it cannot type.
            _ => return Ty::Unknown,
        };
        self.summary_ty(program, &callee, call, depth)
    }

    /// What `callee` returns for this call's arguments.
    fn summary_ty(&self, program: &Program, callee: &Callee, call: Node<'a>, depth: u32) -> Ty {
        match self.call_arguments(call, depth) {
            Some(arguments) => program.returns(callee, &arguments),
            None => Ty::Unknown,
        }
    }

    /// The types of a call's arguments; `None` when it unpacks some (`*args`, `**kwargs`), so
    /// which parameter gets what is unknown.
    fn call_arguments(&self, call: Node<'a>, depth: u32) -> Option<Arguments> {
        let mut arguments = Arguments::default();
        for argument in self.arguments(call) {
            match argument.kind_name() {
                "comment" => {}
                "list_splat" | "dictionary_splat" => return None,
                "keyword_argument" => {
                    let (Some(name), Some(value)) =
                        (argument.field(&field::NAME), argument.field(&field::VALUE))
                    else {
                        return None;
                    };
                    let ty = self.argument_ty(value, depth);
                    arguments.keyword.push((self.text(name).to_string(), ty));
                }
                _ => {
                    let ty = self.argument_ty(argument, depth);
                    arguments.positional.push(ty);
                }
            }
        }
        Some(arguments)
    }

    fn argument_ty(&self, argument: Node<'a>, depth: u32) -> Ty {
        if self.unknown_argument.get() == Some(argument.id()) {
            return Ty::Unknown;
        }
        self.ty_at_depth(argument, depth + 1)
    }

    /// The argument of `call` (a workspace function typed from its body) whose rows the result
    /// (its tuple element `element`) holds: the one QuerySet, list of rows or paginator argument
    /// without which the result would not be rows at all (`paginate(request, posts)`), not one
    /// the function only filters by (`Post.objects.filter(id__in=ids)`).
    pub fn rows_passed_through(&self, call: Node<'a>, element: Option<usize>) -> Option<Node<'a>> {
        let rows = |ty: Ty| {
            let ty = match (ty, element) {
                (Ty::Tuple(items), Some(i)) => items.into_iter().nth(i),
                (ty, None) => Some(ty),
                _ => None,
            };
            matches!(
                ty,
                Some(Ty::QuerySet(_) | Ty::Evaluated(_) | Ty::Paginator(_))
            )
        };
        if !rows(self.ty(call)) {
            return None;
        }
        let mut passed = None;
        for argument in self.arguments(call) {
            let value = match argument.kind_name() {
                "keyword_argument" => argument.field(&field::VALUE)?,
                "comment" => continue,
                _ => argument,
            };
            if !matches!(
                self.ty(value),
                Ty::QuerySet(_) | Ty::Evaluated(_) | Ty::Paginator(_)
            ) {
                continue;
            }
            self.unknown_argument.set(Some(value.id()));
            let without = rows(self.ty(call));
            self.unknown_argument.set(None);
            if !without && passed.replace(value).is_some() {
                return None;
            }
        }
        passed
    }

    /// The function a plain call names: defined once at this module's top level and bound
    /// nowhere else in the module (a name rebound or deleted could be anything).
    fn module_function(&self, call: Node<'a>, name: &str) -> Option<Node<'a>> {
        let definition = *self.module_functions().get(name)?;
        let function = call.field(&field::FUNCTION)?;
        let scope = self.scope_of(function);
        if scope.scope.kind_name() != "module" && !scope.bindings(name).is_empty() {
            return None;
        }
        definition
    }

    /// The module's top-level functions by name, `None` for a name the module binds more than
    /// once (a second `def`, an assignment, an import, a class): read once per file, from its
    /// top-level statements only.
    fn module_functions(&self) -> std::cell::Ref<'_, FxHashMap<&'a str, Option<Node<'a>>>> {
        if self.module_functions.borrow().is_none() {
            let mut functions: FxHashMap<&'a str, Option<Node<'a>>> = FxHashMap::default();
            let mut rebound: Vec<&'a str> = Vec::new();
            let root = self.parents.root();
            let mut cursor = root.walk();
            for statement in root.named_children(&mut cursor) {
                let definition = undecorated(statement);
                let name = definition.field(&field::NAME).map(|n| self.text(n));
                match (definition.kind_name(), name) {
                    ("function_definition", Some(name)) => {
                        functions
                            .entry(name)
                            .and_modify(|f| *f = None)
                            .or_insert(Some(definition));
                    }
                    ("class_definition", Some(name)) => rebound.push(name),
                    _ => {
                        if let Some((left, _)) = super::syntax::simple_assignment(statement) {
                            rebound.push(self.text(left));
                        }
                    }
                }
            }
            for import in &self.facts.imports {
                if let super::index::Import::From { alias, .. }
                | super::index::Import::Module { alias, .. } = import
                {
                    functions.insert(alias.as_str(), None);
                }
            }
            for name in rebound {
                if let Some(f) = functions.get_mut(name) {
                    *f = None;
                }
            }
            *self.module_functions.borrow_mut() = Some(functions);
        }
        std::cell::Ref::map(self.module_functions.borrow(), |f| {
            f.as_ref().expect("filled above")
        })
    }

    /// A method defined once in `class`'s own body.
    fn method_of(&self, class: Node<'a>, name: &str) -> Option<Node<'a>> {
        if let Some(methods) = self.class_methods.borrow().get(&class.id()) {
            return methods.get(name).copied().flatten();
        }
        // Read once per class: a large test case calls `self.assert...` thousands of times.
        let mut methods = MethodTable::default();
        if let Some(body) = class.field(&field::BODY) {
            let mut cursor = body.walk();
            for statement in body.named_children(&mut cursor) {
                let definition = undecorated(statement);
                if definition.kind_name() != "function_definition" {
                    continue;
                }
                if let Some(method) = definition.field(&field::NAME) {
                    // Defined twice: which one runs depends on more than the analyzer reads.
                    methods
                        .entry(self.text(method))
                        .and_modify(|m| *m = None)
                        .or_insert(Some(definition));
                }
            }
        }
        let found = methods.get(name).copied().flatten();
        self.class_methods
            .borrow_mut()
            .insert(class.id(), Rc::new(methods));
        found
    }

    /// What calling `function` returns: its return annotation when it names a QuerySet or a
    /// model, else the join of every `return`'s value (unknown for generators, for a function
    /// that can end without `return`, and for any value the analyzer cannot type).
    fn returns_of(&self, function: Node<'a>, depth: u32) -> Ty {
        if depth > MAX_DEPTH {
            return Ty::Unknown;
        }
        if let Some(ty) = self.returns.borrow().get(&function.id()) {
            return ty.clone();
        }
        self.returns.borrow_mut().insert(function.id(), Ty::Unknown);
        let ty = self.infer_returns(function, depth);
        self.returns.borrow_mut().insert(function.id(), ty.clone());
        ty
    }

    fn infer_returns(&self, function: Node<'a>, depth: u32) -> Ty {
        // The returns say what is loaded; an annotation only names the model.
        let returned = self.returned_ty(function, depth);
        if returned != Ty::Unknown {
            return returned;
        }
        match function.field(&field::RETURN_TYPE) {
            Some(annotation) => self.annotation_ty(annotation),
            None => Ty::Unknown,
        }
    }

    /// The join of every `return`'s value; for a generator, what it yields.
    fn returned_ty(&self, function: Node<'a>, depth: u32) -> Ty {
        let Some(body) = function.field(&field::BODY) else {
            return Ty::Unknown;
        };
        let (mut values, mut yielded) = (Vec::new(), Vec::new());
        let (mut bare_return, mut opaque_yield) = (false, false);
        super::syntax::walk(body, |n| {
            match n.kind_name() {
                "return_statement" => match n.named_child(0) {
                    Some(value) => values.push(value),
                    None => bare_return = true,
                },
                // `yield from other`, or a bare `yield`: not read.
                "yield" if n.is_named() => match n.named_child(0) {
                    Some(value) if !self.text(n).starts_with("yield from") => yielded.push(value),
                    _ => opaque_yield = true,
                },
                _ => {}
            }
            !matches!(
                n.kind_name(),
                "function_definition" | "lambda" | "class_definition"
            )
        });
        if opaque_yield {
            return Ty::Unknown;
        }
        if !yielded.is_empty() {
            return match self.join_all(yielded, depth) {
                Ty::Unknown => Ty::Unknown,
                element => Ty::Yields(Box::new(element)),
            };
        }
        // A body that can fall off its end returns `None` there (comments after the last
        // statement are not statements).
        let mut cursor = body.walk();
        let ends_in_return = body
            .named_children(&mut cursor)
            .filter(|s| s.kind_name() != "comment")
            .last()
            .is_some_and(|last| matches!(last.kind_name(), "return_statement" | "raise_statement"));
        if bare_return || values.is_empty() || !ends_in_return {
            return Ty::Unknown;
        }
        self.join_all(values, depth)
    }

    /// The model a class works on: `model = M` in its body, `class Meta: model = M`, or
    /// `@admin.register(M)` on it.
    pub fn model_of_class(&self, class: Node<'a>) -> Option<ModelRef> {
        self.class_model(class, 0)
    }

    fn class_model(&self, class: Node<'a>, depth: u32) -> Option<ModelRef> {
        let body = class.field(&field::BODY)?;
        let model_of = |value: Node<'a>| match self.ty_at_depth(value, depth + 1) {
            Ty::ModelClass(model) => Some(model),
            _ => None,
        };
        let mut cursor = body.walk();
        for statement in body.named_children(&mut cursor) {
            if let Some((left, right)) = super::syntax::simple_assignment(statement) {
                if self.text(left) == "model" {
                    return model_of(right);
                }
            }
        }
        let mut cursor = body.walk();
        let meta = body.named_children(&mut cursor).find(|s| {
            s.kind_name() == "class_definition"
                && s.field(&field::NAME)
                    .is_some_and(|n| self.text(n) == "Meta")
        });
        if let Some(meta_body) = meta.and_then(|m| m.field(&field::BODY)) {
            let mut cursor = meta_body.walk();
            for statement in meta_body.named_children(&mut cursor) {
                if let Some((left, right)) = super::syntax::simple_assignment(statement) {
                    if self.text(left) == "model" {
                        return model_of(right);
                    }
                }
            }
        }
        let decorated = self
            .parents
            .of(class)
            .filter(|d| d.kind_name() == "decorated_definition")?;
        let mut cursor = decorated.walk();
        let registered = decorated.named_children(&mut cursor).find_map(|d| {
            let call = d.named_child(0).filter(|c| c.kind_name() == "call")?;
            let function = call.field(&field::FUNCTION)?;
            (self.text(function).rsplit('.').next() == Some("register"))
                .then(|| call.field(&field::ARGUMENTS)?.named_child(0))
                .flatten()
        });
        registered.and_then(model_of)
    }
}

/// The statements of a view class that say what it queries.
struct ViewSources<'a> {
    /// The values `get_queryset()` returns, when the class defines it.
    get_queryset: Option<Vec<Node<'a>>>,
    queryset: Option<Node<'a>>,
    model: Option<Node<'a>>,
}

/// Whether `text` may write `attribute` (`self.x`): an occurrence followed by `=` (not `==`),
/// an augmented operator, `,` (unpacking) or `:` (an annotation), or preceded by `for ` or
/// `as `. A cheap test before walking a method: most methods of a large class only read.
fn may_write(text: &str, attribute: &str) -> bool {
    text.match_indices(attribute).any(|(at, _)| {
        let rest = &text[at + attribute.len()..];
        if rest.starts_with(|c: char| c.is_alphanumeric() || c == '_') {
            return false;
        }
        let before = text[..at].trim_end_matches(' ');
        let next = rest.trim_start_matches(' ');
        before.ends_with("for")
            || before.ends_with("as")
            || next.starts_with(',')
            || next.starts_with(':')
            || (next.starts_with('=') && !next.starts_with("=="))
            || [
                "+=", "-=", "*=", "/=", "%=", "|=", "&=", "^=", "//=", "**=", "@=", ">>=", "<<=",
            ]
            .iter()
            .any(|op| next.starts_with(op))
    })
}

/// An import or a class definition: names the module defines rather than computes.
fn is_definition(binding: &Binding) -> bool {
    matches!(
        binding.statement.kind_name(),
        "import_statement" | "import_from_statement" | "class_definition" | "decorated_definition"
    )
}

/// `Entry`, `BlogPost`: a CapWords name, as Django model classes are written. Constants
/// (`MAX`) and private names are not.
fn looks_like_model_class(name: &str) -> bool {
    name.chars().next().is_some_and(|c| c.is_ascii_uppercase())
        && name.chars().any(|c| c.is_ascii_lowercase())
}

/// `name = name.method(...)...`: an assignment that rebuilds the name's QuerySet from itself.
fn is_rebuilt_from_itself(sem: &Semantics, binding: &Binding, name: &str) -> bool {
    let BindingKind::Assign { value, .. } = binding.kind else {
        return false;
    };
    let mut node = value;
    while let Some((receiver, method)) = method_call(node, sem.source) {
        // Rows that stop being instances are another kind of value.
        if VALUES_METHODS.contains(&method) {
            return false;
        }
        node = strip_parens(receiver);
    }
    node.kind_name() == "identifier" && sem.text(node) == name && node.id() != value.id()
}

/// The lookups two QuerySets that one expression may hold both load. `MAYBE_LOADED` on either
/// side stays (a finding there would be a guess); a bare `select_related()` (`"*"`) loads
/// whatever the other side does.
fn loaded_by_both(a: Vec<String>, b: &[String]) -> Vec<String> {
    let has = |lookups: &[String], l: &str| lookups.iter().any(|x| x == l);
    if has(&a, MAYBE_LOADED) || has(b, MAYBE_LOADED) {
        return vec![MAYBE_LOADED.into()];
    }
    if has(&a, "*") {
        return b.to_vec();
    }
    if has(b, "*") {
        return a;
    }
    a.into_iter().filter(|l| b.contains(l)).collect()
}

/// The decorators of a function definition, as written without `@`.
fn decorators<'a>(sem: &Semantics<'a>, function: Node<'a>) -> Vec<&'a str> {
    sem.parents.of(function).map_or_else(Vec::new, |d| {
        crate::analysis::syntax::decorator_names(d, sem.source)
    })
}

/// `@property`, `@cached_property`, `@functools.cached_property`.
fn is_property(decorator: &str) -> bool {
    matches!(
        decorator.rsplit('.').next(),
        Some("property" | "cached_property")
    )
}

/// What the calls of a function in its module pass to one parameter.
struct PassedArguments<'a> {
    /// Per call: the argument, or `None` when the call leaves the parameter to its default.
    arguments: Vec<Option<Node<'a>>>,
    default: Option<Node<'a>>,
    /// The words another module must mention to call the function (the class and the method).
    callee_words: Vec<&'a str>,
}

/// How the calls of a function reach its parameters.
#[derive(Clone, Copy, PartialEq, Eq)]
enum CallForm {
    /// `f(...)`: a module-level function.
    Function,
    /// `self.m(...)` in its class, or `Class.m(...)` for a class or static method.
    Method { skipped: usize },
    /// `Class(...)`: the parameters of `__init__`.
    Constructor,
}

impl<'a> Semantics<'a> {
    /// An unannotated parameter typed from the calls of its function, when every call in the
    /// workspace is in this file and passes one type: no other module mentions the function
    /// (for a method: the class and the method), this file names it only to call it, and no
    /// call unpacks its arguments. Anything else, or a call passing an unknown, is `Unknown`.
    fn call_site_param_ty(&self, name: Node<'a>, depth: u32) -> Ty {
        if let Some(known) = self.call_site_params.borrow().get(&name.id()) {
            return known.clone().unwrap_or(Ty::Unknown);
        }
        self.call_site_params.borrow_mut().insert(name.id(), None);
        let ty = self
            .infer_call_site_param(name, depth)
            .unwrap_or(Ty::Unknown);
        self.call_site_params
            .borrow_mut()
            .insert(name.id(), Some(ty.clone()));
        ty
    }

    fn infer_call_site_param(&self, name: Node<'a>, depth: u32) -> Option<Ty> {
        let program = self.program?;
        if depth > MAX_DEPTH {
            return None;
        }
        let passed = self.arguments_in_module(name)?;
        if program.mentioned_outside(&self.facts.module, &passed.callee_words) {
            return None;
        }
        let mut joined: Option<Ty> = None;
        for argument in passed.arguments {
            let ty = match argument {
                Some(argument) => self.ty_at_depth(argument, depth + 1),
                None => self.ty_at_depth(passed.default?, depth + 1),
            };
            if ty == Ty::Unknown {
                return None;
            }
            joined = Some(match joined {
                None => ty,
                Some(so_far) => so_far.join(ty),
            });
        }
        joined.filter(|ty| *ty != Ty::Unknown)
    }

    /// The parameter of a function of this module that `argument` of `call` fills: `call` runs
    /// a top-level function called by name, or a method of the class around called on `self`,
    /// neither decorated (a decorator may wrap it in anything). `None` when the module does not
    /// say which function runs, or which of its parameters the argument fills.
    pub fn parameter_filled(&self, call: Node<'a>, argument: Node<'a>) -> Option<Node<'a>> {
        let function = call.field(&field::FUNCTION)?;
        let (definition, skipped) = if function.kind_name() == "identifier" {
            (self.module_function(call, self.text(function))?, 0)
        } else {
            let (receiver, method) = method_call(call, self.source)?;
            (self.method_of(self.self_class(receiver)?, method)?, 1)
        };
        if !decorators(self, definition).is_empty() {
            return None;
        }
        let mut parameters = Vec::new();
        for entry in parameter_entries(definition) {
            let name = match entry {
                ParameterEntry::Named { name, .. } => name,
                ParameterEntry::PositionalOnlyEnd => continue,
                // Positions after `*args`, `**kwargs`, `*` are not plain parameters.
                ParameterEntry::Starred => break,
            };
            parameters.push(name.filter(|n| n.kind_name() == "identifier")?);
        }
        let holder = self.parents.of(argument)?;
        if holder.kind_name() == "keyword_argument" {
            let keyword = self.text(holder.field(&field::NAME)?);
            return parameters
                .into_iter()
                .skip(skipped)
                .find(|p| self.text(*p) == keyword);
        }
        if holder.kind_name() != "argument_list" {
            return None;
        }
        let mut cursor = holder.walk();
        let mut position = 0;
        for passed in holder.named_children(&mut cursor) {
            match passed.kind_name() {
                "comment" => continue,
                "list_splat" | "dictionary_splat" => return None,
                _ if passed.id() == argument.id() => {
                    return parameters.get(position + skipped).copied()
                }
                _ => position += 1,
            }
        }
        None
    }

    /// The parameter a read of a name refers to, when every binding that reaches it is that
    /// parameter.
    pub fn parameter_of(&self, read: Node<'a>) -> Option<Node<'a>> {
        if read.kind_name() != "identifier" {
            return None;
        }
        let scope = self.scope_of(read);
        let reaching = scope.reaching(self.text(read), read, &self.parents);
        match reaching.bindings.as_slice() {
            [binding] if matches!(binding.kind, BindingKind::Param { .. }) => Some(binding.name),
            _ => None,
        }
    }

    /// What the calls in this module pass to the parameter `name` (a row a caller loops over
    /// may come with relations loaded); empty when the module names its function other than
    /// to call it.
    pub fn arguments_passed_in_module(&self, name: Node<'a>) -> Vec<Node<'a>> {
        self.arguments_in_module(name)
            .map(|passed| passed.arguments.into_iter().flatten().collect())
            .unwrap_or_default()
    }

    /// Each call in this module of the function whose parameter `name` is, and the argument it
    /// passes there; `None` when the module names the function any other way, or the function
    /// is one whose calls the analyzer does not follow (nested, decorated, a dunder method).
    fn arguments_in_module(&self, name: Node<'a>) -> Option<PassedArguments<'a>> {
        let function = enclosing_scope(name, &self.parents);
        if function.kind_name() != "function_definition" {
            return None;
        }
        let (position, default) = parameter_position(function, name)?;
        let function_name = self.text(function.field(&field::NAME)?);
        let class = self.class_of_method(function);
        let decorators = decorators(self, function);
        let (form, callee_name, mentioned_with) = match class {
            None => {
                // Only module-level functions: a nested one's name may be reused elsewhere.
                let container = self.parents.of(function)?;
                let container = match container.kind_name() {
                    "decorated_definition" => self.parents.of(container)?,
                    _ => container,
                };
                if container.kind_name() != "module" || !decorators.is_empty() {
                    return None;
                }
                (CallForm::Function, function_name, None)
            }
            Some(class) => {
                let class_name = self.text(class.field(&field::NAME)?);
                if self.parents.of(class)?.kind_name() != "module" {
                    return None;
                }
                match (function_name, decorators.as_slice()) {
                    ("__init__", []) => (CallForm::Constructor, class_name, None),
                    (_, [] | ["classmethod"]) => (
                        CallForm::Method { skipped: 1 },
                        function_name,
                        Some(class_name),
                    ),
                    (_, ["staticmethod"]) => (
                        CallForm::Method { skipped: 0 },
                        function_name,
                        Some(class_name),
                    ),
                    _ => return None,
                }
            }
        };
        if function_name.starts_with("__") && form != CallForm::Constructor {
            return None;
        }
        let calls = self.calls_in_file(function, class, form, callee_name)?;
        let skipped = match form {
            CallForm::Function => 0,
            CallForm::Method { skipped } => skipped,
            CallForm::Constructor => 1,
        };
        let position = position.and_then(|p| p.checked_sub(skipped));
        let arguments = calls
            .into_iter()
            .map(|call| self.argument_for(call, position, self.text(name)))
            .collect();
        Some(PassedArguments {
            arguments,
            default,
            callee_words: mentioned_with.into_iter().chain([callee_name]).collect(),
        })
    }

    /// Every call of the function in this file; `None` when the file names it any other way
    /// (passes it as a value, defines the name twice, calls it on something else).
    fn calls_in_file(
        &self,
        function: Node<'a>,
        class: Option<Node<'a>>,
        form: CallForm,
        callee_name: &str,
    ) -> Option<Vec<Node<'a>>> {
        let root = self.parents.root();
        let class_name = class
            .and_then(|c| c.field(&field::NAME))
            .map(|n| self.text(n));
        // A class that builds its instances itself (`cls(...)`) has calls this does not see.
        if form == CallForm::Constructor
            && class.is_some_and(|c| {
                let text = self.text(c);
                text.contains("cls(") || text.contains("__class__(") || text.contains("type(self)(")
            })
        {
            return None;
        }
        let mut calls = Vec::new();
        // memchr's search, not `match_indices`: the whole file, on every keystroke that
        // re-lints a method with unannotated parameters.
        for at in memchr::memmem::find_iter(self.source.as_bytes(), callee_name.as_bytes()) {
            let Some(word) = root.descendant_for_byte_range(at, at + callee_name.len()) else {
                continue;
            };
            if word.kind_name() != "identifier" || word.byte_range() != (at..at + callee_name.len())
            {
                continue;
            }
            let parent = self.parents.of(word)?;
            let is_definition = matches!(
                parent.kind_name(),
                "function_definition" | "class_definition"
            ) && parent
                .field(&field::NAME)
                .is_some_and(|n| n.id() == word.id());
            if is_definition {
                let defined_here = match form {
                    CallForm::Constructor => class.is_some_and(|c| c.id() == parent.id()),
                    _ => parent.id() == function.id(),
                };
                // Another class's method of the same name is another function.
                let other_method = matches!(form, CallForm::Method { .. })
                    && self
                        .class_of_method(parent)
                        .is_some_and(|c| Some(c) != class);
                if defined_here || other_method {
                    continue;
                }
                return None;
            }
            let call = match form {
                CallForm::Function | CallForm::Constructor => (parent.kind_name() == "call"
                    && parent
                        .field(&field::FUNCTION)
                        .is_some_and(|f| f.id() == word.id()))
                .then_some(parent)?,
                CallForm::Method { skipped } => {
                    let call = self.parents.of(parent).filter(|c| {
                        parent.kind_name() == "attribute"
                            && c.kind_name() == "call"
                            && c.field(&field::FUNCTION)
                                .is_some_and(|f| f.id() == parent.id())
                    })?;
                    let receiver = self.text(parent.field(&field::OBJECT)?);
                    let inside_class = class.is_some_and(|c| c.byte_range().contains(&at));
                    let bound_in_class = inside_class && matches!(receiver, "self" | "cls");
                    // `Class.method(...)` binds nothing for a plain method: its first argument
                    // is the instance.
                    let on_class = Some(receiver) == class_name && skipped == 0
                        || Some(receiver) == class_name && self.is_classmethod(function);
                    if !(bound_in_class || on_class) {
                        // `Other.method(...)` for another class of this module is not ours.
                        if receiver != class_name.unwrap_or_default()
                            && self.is_module_class(receiver)
                        {
                            continue;
                        }
                        return None;
                    }
                    call
                }
            };
            calls.push(call);
        }
        (!calls.is_empty()).then_some(calls)
    }

    /// A class this module defines at its top level.
    fn is_module_class(&self, name: &str) -> bool {
        self.facts.classes.iter().any(|c| c.name == name)
    }

    fn is_classmethod(&self, function: Node<'a>) -> bool {
        decorators(self, function) == ["classmethod"]
    }

    /// The argument a call passes to the parameter at `position` (after the bound ones) or
    /// named `name`; `None` when it passes none. A call that unpacks arguments passes unknowns.
    fn argument_for(
        &self,
        call: Node<'a>,
        position: Option<usize>,
        name: &str,
    ) -> Option<Node<'a>> {
        let mut positional = 0;
        for argument in self.arguments(call) {
            match argument.kind_name() {
                "comment" => {}
                "list_splat" | "dictionary_splat" => return Some(argument),
                "keyword_argument" => {
                    if argument
                        .field(&field::NAME)
                        .is_some_and(|n| self.text(n) == name)
                    {
                        return argument.field(&field::VALUE);
                    }
                }
                _ => {
                    if Some(positional) == position {
                        return Some(argument);
                    }
                    positional += 1;
                }
            }
        }
        None
    }
}

/// One entry of a function's parameter list, as a call fills it.
enum ParameterEntry<'a> {
    /// A named parameter (its name: a splat pattern for `*args: T`) and its default.
    Named {
        name: Option<Node<'a>>,
        default: Option<Node<'a>>,
    },
    /// `/`.
    PositionalOnlyEnd,
    /// `*`, `*args`, `**kwargs`: the parameters after it take keywords only.
    Starred,
}

/// `function`'s parameter list, entry by entry (empty without one).
fn parameter_entries(function: Node<'_>) -> Vec<ParameterEntry<'_>> {
    let Some(parameters) = function.field(&field::PARAMETERS) else {
        return Vec::new();
    };
    let mut cursor = parameters.walk();
    parameters
        .named_children(&mut cursor)
        .filter(|parameter| parameter.kind_name() != "comment")
        .map(|parameter| match parameter.kind_name() {
            "identifier" => ParameterEntry::Named {
                name: Some(parameter),
                default: None,
            },
            "typed_parameter" => ParameterEntry::Named {
                name: parameter.named_child(0),
                default: None,
            },
            "default_parameter" | "typed_default_parameter" => ParameterEntry::Named {
                name: parameter.field(&field::NAME),
                default: parameter.field(&field::VALUE),
            },
            "positional_separator" => ParameterEntry::PositionalOnlyEnd,
            _ => ParameterEntry::Starred,
        })
        .collect()
}

/// The parameter's place among the function's positional parameters (counting `self`), and its
/// default; `None` for `*args`/`**kwargs`. A keyword-only parameter has no place.
fn parameter_position<'a>(
    function: Node<'a>,
    name: Node<'a>,
) -> Option<(Option<usize>, Option<Node<'a>>)> {
    function.field(&field::PARAMETERS)?;
    let mut position = 0;
    let mut keyword_only = false;
    for entry in parameter_entries(function) {
        let (identifier, default) = match entry {
            ParameterEntry::Named { name, default } => (name, default),
            ParameterEntry::PositionalOnlyEnd => continue,
            ParameterEntry::Starred => {
                keyword_only = true;
                continue;
            }
        };
        if identifier.is_some_and(|i| i.id() == name.id()) {
            return Some(((!keyword_only).then_some(position), default));
        }
        position += 1;
    }
    None
}
