//! What an expression is: a QuerySet, a manager, or unknown.
//!
//! Local evidence only (this is the interface the workspace model index will extend): manager
//! chains on a model-like class name (`Entry.objects.filter(...)`, `Entry._default_manager`),
//! names whose every reaching assignment is one of those, and parameters annotated `QuerySet`.
//! Anything else is `Unknown`, and rules stay silent on it.

use std::cell::RefCell;
use std::rc::Rc;

use rustc_hash::FxHashMap;
use tree_sitter::Node;

use super::scope::{BindingKind, ScopeIndex};
use super::syntax::{enclosing_scope, method_call, strip_parens, text, Parents};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ty {
    /// `Model.objects`: has QuerySet methods, but is not one (`len(M.objects)` is an error).
    Manager {
        model: String,
    },
    QuerySet(QuerySetTy),
    Unknown,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QuerySetTy {
    /// The model's class name, when known.
    pub model: Option<String>,
    /// Built with `values()`/`values_list()`/`dates()`: rows are not model instances.
    pub values: bool,
    pub sliced: bool,
}

impl Ty {
    pub fn is_queryset(&self) -> bool {
        matches!(self, Ty::QuerySet(_))
    }

    pub fn queryset(&self) -> Option<&QuerySetTy> {
        match self {
            Ty::QuerySet(q) => Some(q),
            _ => None,
        }
    }

    /// The join of two possible types of one expression: equal or unknown.
    fn join(self, other: Ty) -> Ty {
        match (self, other) {
            (Ty::QuerySet(a), Ty::QuerySet(b)) => Ty::QuerySet(QuerySetTy {
                model: if a.model == b.model { a.model } else { None },
                values: a.values || b.values,
                sliced: a.sliced || b.sliced,
            }),
            (a, b) if a == b => a,
            _ => Ty::Unknown,
        }
    }
}

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

const VALUES_METHODS: &[&str] = &["values", "values_list", "dates", "datetimes"];

/// Names through which a model class reaches a manager without the model index.
const MANAGER_ATTRIBUTES: &[&str] = &["objects", "_default_manager", "_base_manager"];

/// Annotation spellings that mean "a QuerySet" (with or without a subscript or quotes).
const QUERYSET_ANNOTATIONS: &[&str] = &[
    "QuerySet",
    "models.QuerySet",
    "query.QuerySet",
    "django.db.models.QuerySet",
];

/// Past this depth of nested expressions or assignment chains, the answer is `Unknown`: it keeps
/// pathological input (thousands of nested parentheses) from exhausting the stack.
const MAX_DEPTH: u32 = 64;

/// Type inference over one file, caching each scope's name index.
pub struct Semantics<'a> {
    pub source: &'a str,
    pub parents: Parents<'a>,
    scopes: RefCell<FxHashMap<usize, Rc<ScopeIndex<'a>>>>,
    /// Types of name reads, by node id. A read being inferred is `Unknown` here, so cycles
    /// through loop-carried assignments end, and each read is inferred once.
    names: RefCell<FxHashMap<usize, Ty>>,
}

impl<'a> Semantics<'a> {
    pub fn new(source: &'a str, root: Node<'a>) -> Self {
        Self {
            source,
            parents: Parents::new(root),
            scopes: RefCell::default(),
            names: RefCell::default(),
        }
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

    fn ty_at_depth(&self, expr: Node<'a>, depth: u32) -> Ty {
        if depth > MAX_DEPTH {
            return Ty::Unknown;
        }
        let expr = strip_parens(expr);
        match expr.kind() {
            "identifier" => self.name_ty(expr, depth),
            "attribute" => self.attribute_ty(expr),
            "call" => self.call_ty(expr, depth),
            "subscript" => self.subscript_ty(expr, depth),
            _ => Ty::Unknown,
        }
    }

    fn attribute_ty(&self, attribute: Node<'a>) -> Ty {
        let (Some(object), Some(name)) = (
            attribute.child_by_field_name("object"),
            attribute.child_by_field_name("attribute"),
        ) else {
            return Ty::Unknown;
        };
        if object.kind() == "identifier" && MANAGER_ATTRIBUTES.contains(&self.text(name)) {
            let model = self.text(object);
            if looks_like_model_class(model) {
                return Ty::Manager {
                    model: model.to_string(),
                };
            }
        }
        Ty::Unknown
    }

    fn call_ty(&self, call: Node<'a>, depth: u32) -> Ty {
        let Some((receiver, method)) = method_call(call, self.source) else {
            return Ty::Unknown;
        };
        if !QUERYSET_METHODS.contains(&method) {
            return Ty::Unknown;
        }
        let mut qs = match self.ty_at_depth(receiver, depth + 1) {
            Ty::Manager { model } => QuerySetTy {
                model: Some(model),
                ..QuerySetTy::default()
            },
            Ty::QuerySet(qs) => qs,
            Ty::Unknown => return Ty::Unknown,
        };
        qs.values |= VALUES_METHODS.contains(&method);
        Ty::QuerySet(qs)
    }

    /// `qs[a:b]` is a sliced QuerySet; `qs[i]` and `qs[::step]` run a query.
    fn subscript_ty(&self, subscript: Node<'a>, depth: u32) -> Ty {
        let Some(value) = subscript.child_by_field_name("value") else {
            return Ty::Unknown;
        };
        let Some(index) = subscript.child_by_field_name("subscript") else {
            return Ty::Unknown;
        };
        if index.kind() != "slice" || self.text(index).matches(':').count() > 1 {
            return Ty::Unknown;
        }
        match self.ty_at_depth(value, depth + 1) {
            Ty::QuerySet(qs) => Ty::QuerySet(QuerySetTy { sliced: true, ..qs }),
            _ => Ty::Unknown,
        }
    }

    fn name_ty(&self, name: Node<'a>, depth: u32) -> Ty {
        if let Some(ty) = self.names.borrow().get(&name.id()) {
            return ty.clone();
        }
        self.names.borrow_mut().insert(name.id(), Ty::Unknown);
        let ty = self.infer_name(name, depth);
        self.names.borrow_mut().insert(name.id(), ty.clone());
        ty
    }

    fn infer_name(&self, name: Node<'a>, depth: u32) -> Ty {
        let scope = self.scope_of(name);
        let reaching = scope.reaching(self.text(name), name, &self.parents);
        if !reaching.complete || reaching.bindings.is_empty() {
            return Ty::Unknown;
        }
        let mut result: Option<Ty> = None;
        for binding in reaching.bindings {
            let ty = match binding.kind {
                BindingKind::Assign { value, annotation } => match annotation {
                    Some(a) if annotation_is_queryset(self.text(a)) => {
                        Ty::QuerySet(QuerySetTy::default())
                    }
                    _ => self.ty_at_depth(value, depth + 1),
                },
                BindingKind::Param {
                    annotation: Some(a),
                } if annotation_is_queryset(self.text(a)) => Ty::QuerySet(QuerySetTy {
                    model: annotation_model(self.text(a)),
                    ..QuerySetTy::default()
                }),
                _ => Ty::Unknown,
            };
            if ty == Ty::Unknown {
                return Ty::Unknown;
            }
            result = Some(match result {
                None => ty,
                Some(prev) => prev.join(ty),
            });
        }
        result.unwrap_or(Ty::Unknown)
    }
}

/// `Entry`, `BlogPost`: a CapWords name, as Django model classes are written. Constants
/// (`MAX`) and private names are not.
fn looks_like_model_class(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_uppercase())
        && name.chars().any(|c| c.is_ascii_lowercase())
}

fn annotation_base(annotation: &str) -> &str {
    let a = annotation
        .trim()
        .trim_matches(|c| c == '"' || c == '\'')
        .trim();
    a.split('[').next().unwrap_or(a).trim()
}

fn annotation_is_queryset(annotation: &str) -> bool {
    QUERYSET_ANNOTATIONS.contains(&annotation_base(annotation))
}

/// `QuerySet[Entry]` -> `Entry`.
fn annotation_model(annotation: &str) -> Option<String> {
    let a = annotation.trim().trim_matches(|c| c == '"' || c == '\'');
    let inner = a.split_once('[')?.1.strip_suffix(']')?;
    let first = inner
        .split(',')
        .next()?
        .trim()
        .trim_matches(|c| c == '"' || c == '\'');
    let last = first.rsplit('.').next()?;
    looks_like_model_class(last).then(|| last.to_string())
}
