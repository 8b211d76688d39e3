//! ORM410 n-plus-one-template: a view renders a template that, looping over a QuerySet the view
//! passes, reads a relation of each row (`{{ post.author.name }}`, `{% for c in
//! post.comments.all %}`): one query per row unless the QuerySet joins or prefetches it. Reported
//! in the view, where the fix goes — where the QuerySet is built, else the context entry — with
//! the template line as related information, and the fix ORM402/ORM403 make there.

use tree_sitter::Node;

use super::view_queryset::{HandedOn, Missing};
use super::{Captures, Rule, RuleContext, RuleMeta};
use crate::analysis::diagnostic::{Related, Severity};
use crate::analysis::index::{string_value, BaseStep, Symbol, Walk};
use crate::analysis::infer::{ModelRef, QuerySetTy, Ty};
use crate::analysis::scope::BindingKind;
use crate::analysis::syntax::{
    field::{self, FieldOf},
    simple_assignment, strip_parens, undecorated, walk, KindOf,
};
use crate::analysis::templates::{needs, Value};

pub static RULE: Rule = Rule {
    meta: &RuleMeta {
        code: "ORM410",
        name: "n-plus-one-template",
        severity: Severity::Warning,
    },
    query: include_str!("../../../../queries/orm410_n_plus_one_template.scm"),
    check,
};

fn check<'a>(cx: &mut RuleContext<'_, 'a>, m: &Captures<'_, 'a>) {
    if let Some(view) = m.get("view") {
        check_view(cx, view);
    } else if let (Some(call), Some(function)) = (m.get("call"), m.get("function")) {
        check_render(cx, call, function);
    }
}

/// Django's rendering shortcuts: the position and keyword of their template name argument (the
/// context is the next positional argument, or `context=`).
const RENDERERS: &[(&str, usize, &str)] = &[
    ("django.shortcuts.render", 1, "template_name"),
    // Removed in Django 3.0; older projects still call it.
    ("django.shortcuts.render_to_response", 0, "template_name"),
    ("django.template.response.TemplateResponse", 1, "template"),
    (
        "django.template.loader.render_to_string",
        0,
        "template_name",
    ),
];

/// `render(request, "blog/list.html", {"posts": posts})`, `self.render_to_response(context)`
/// in a method of a view that names its template, or `get_template(name).render(context)`:
/// reported where each context value is built.
fn check_render<'a>(cx: &mut RuleContext<'_, 'a>, call: Node<'a>, function: Node<'a>) {
    let (template, context) = if cx.sem.text(function) == "self.render_to_response" {
        let Some(template) = own_method_class(call).and_then(|class| declared_template(cx, class))
        else {
            return;
        };
        (template, argument(cx, call, 0, "context"))
    } else if let Some(template) = loaded_template(cx, function) {
        (template, argument(cx, call, 0, "context"))
    } else {
        let Symbol::External(qualified) = cx
            .sem
            .index()
            .resolve(cx.sem.file_facts(), cx.sem.text(function))
        else {
            return;
        };
        let Some(&(_, template_at, template_keyword)) =
            RENDERERS.iter().find(|(name, _, _)| qualified == *name)
        else {
            return;
        };
        let Some(template) = argument(cx, call, template_at, template_keyword)
            .and_then(|t| string_value(t, cx.sem.source))
        else {
            return;
        };
        (template, argument(cx, call, template_at + 1, "context"))
    };
    let Some(context) = context.and_then(|c| context_entries(cx, c)) else {
        return;
    };
    for (key, value) in context {
        if let Some(handed) = HandedOn::new(cx, assigned_value(cx, value), value) {
            report(cx, &handed, &template, &[key], Value::Rows(handed.model));
        }
    }
}

/// `get_template("blog/list.html").render(context, request)`, directly or through a name bound
/// once to the loaded template: the template's name.
fn loaded_template<'a>(cx: &RuleContext<'_, 'a>, function: Node<'a>) -> Option<String> {
    if function.kind_name() != "attribute"
        || function
            .field(&field::ATTRIBUTE)
            .is_none_or(|a| cx.sem.text(a) != "render")
    {
        return None;
    }
    let template = strip_parens(assigned_value(cx, function.field(&field::OBJECT)?));
    if template.kind_name() != "call" {
        return None;
    }
    let loader = template.field(&field::FUNCTION)?;
    let Symbol::External(qualified) = cx
        .sem
        .index()
        .resolve(cx.sem.file_facts(), cx.sem.text(loader))
    else {
        return None;
    };
    if qualified != "django.template.loader.get_template" {
        return None;
    }
    string_value(argument(cx, template, 0, "template_name")?, cx.sem.source)
}

/// A call's argument at `position` among the positional ones, else the one named `keyword`.
fn argument<'a>(
    cx: &RuleContext<'_, 'a>,
    call: Node<'a>,
    position: usize,
    keyword: &str,
) -> Option<Node<'a>> {
    let args = call.field(&field::ARGUMENTS)?;
    let mut cursor = args.walk();
    let children: Vec<Node<'a>> = args.named_children(&mut cursor).collect();
    children
        .iter()
        .filter(|a| a.kind_name() != "keyword_argument" && a.kind_name() != "comment")
        .nth(position)
        .copied()
        .or_else(|| {
            children.iter().find_map(|a| {
                (a.kind_name() == "keyword_argument"
                    && a.field(&field::NAME)
                        .is_some_and(|n| cx.sem.text(n) == keyword))
                .then(|| a.field(&field::VALUE))
                .flatten()
            })
        })
}

/// The class whose method (directly in its body) `node` is written in.
fn own_method_class(node: Node) -> Option<Node> {
    let mut current = node.parent()?;
    while current.kind_name() != "function_definition" {
        if matches!(current.kind_name(), "lambda" | "class_definition") {
            return None;
        }
        current = current.parent()?;
    }
    let method = match current.parent()? {
        decorated if decorated.kind_name() == "decorated_definition" => decorated,
        _ => current,
    };
    method
        .parent()
        .and_then(|body| body.parent())
        .filter(|class| class.kind_name() == "class_definition")
}

/// The template a view class names in its own body: the first literal name its
/// `get_template_names()` returns, else its `template_name`. `None` when it names none the
/// analyzer can read (a base's is not known).
fn declared_template(cx: &RuleContext, class: Node) -> Option<String> {
    let body = class.field(&field::BODY)?;
    let mut cursor = body.walk();
    let mut template_name = None;
    for statement in body.named_children(&mut cursor) {
        let statement = undecorated(statement);
        if statement.kind_name() == "function_definition"
            && statement
                .field(&field::NAME)
                .is_some_and(|n| cx.sem.text(n) == "get_template_names")
        {
            return first_template_name(cx, statement);
        }
        if let Some((left, right)) = simple_assignment(statement) {
            if cx.sem.text(left) == "template_name" {
                template_name = string_value(right, cx.sem.source);
            }
        }
    }
    template_name
}

/// Where a context value that is a name was made (`page = paginator.get_page(n)`): the finding
/// goes there when the QuerySet's own construction is out of sight.
fn assigned_value<'a>(cx: &RuleContext<'_, 'a>, value: Node<'a>) -> Node<'a> {
    if value.kind_name() != "identifier" {
        return value;
    }
    let scope = cx.sem.scope_of(value);
    let reaching = scope.reaching(cx.sem.text(value), value, &cx.sem.parents);
    match (reaching.bindings.as_slice(), reaching.complete) {
        ([binding], true) => match binding.kind {
            BindingKind::Assign { value, .. } => value,
            _ => value,
        },
        _ => value,
    }
}

/// The entries of the context a render call passes: a dict literal written in the call, or
/// returned by a helper (`returned_dict`), or assigned once to a name and then filled key by key
/// (`context["posts"] = ...`, `context.update({...})`) in statements of the same block, before
/// the call. Any other use of the name (a change under a condition, a read, a method call)
/// makes the context unknown.
fn context_entries<'a>(
    cx: &RuleContext<'_, 'a>,
    context: Node<'a>,
) -> Option<Vec<(String, Node<'a>)>> {
    let context = strip_parens(context);
    if let Some(wrapped) = (context.kind_name() == "call")
        .then(|| template_context_dict(cx, context))
        .flatten()
    {
        return context_entries(cx, wrapped);
    }
    if context.kind_name() != "identifier" {
        return made_entries(cx, context);
    }
    let name = cx.sem.text(context);
    let scope = cx.sem.scope_of(context);
    let reaching = scope.reaching(name, context, &cx.sem.parents);
    let ([binding], true) = (reaching.bindings.as_slice(), reaching.complete) else {
        return None;
    };
    let BindingKind::Assign { value, .. } = binding.kind else {
        return None;
    };
    let value = strip_parens(value);
    let mut filled = made_entries(cx, value)?;
    let block = value
        .parent()
        .and_then(|a| a.parent())
        .and_then(|s| s.parent())?;
    let mut known = true;
    walk(scope.scope, |n| {
        let object = match n.kind_name() {
            "subscript" => n.field(&field::VALUE),
            "attribute" => n.field(&field::OBJECT),
            _ => None,
        };
        if !object.is_some_and(|o| o.kind_name() == "identifier" && cx.sem.text(o) == name) {
            return known;
        }
        let statement = n.parent().and_then(|p| p.parent());
        let in_order = statement.is_some_and(|s| {
            s.kind_name() == "expression_statement"
                && s.parent().is_some_and(|p| p.id() == block.id())
                && s.start_byte() > value.end_byte()
                && s.end_byte() <= context.start_byte()
        });
        match statement
            .filter(|_| in_order)
            .and_then(|s| added_entries(cx, s, name))
        {
            Some(added) => {
                for (key, value) in added {
                    filled.retain(|(k, _)| *k != key);
                    filled.push((key, value));
                }
            }
            None => known = false,
        }
        known
    });
    known.then_some(filled)
}

/// The entries of a dict written where it is used: a literal, what a helper returns, the dict a
/// `Context`/`RequestContext` wraps, or the keywords of `self.get_context_data(...)`.
fn made_entries<'a>(cx: &RuleContext<'_, 'a>, value: Node<'a>) -> Option<Vec<(String, Node<'a>)>> {
    match value.kind_name() {
        "dictionary" => Some(entries(cx, value)),
        "call" => match template_context_dict(cx, value) {
            Some(dict) => made_entries(cx, strip_parens(dict)),
            None => returned_dict(cx, value)
                .map(|dict| entries(cx, dict))
                .or_else(|| context_data_keywords(cx, value)),
        },
        _ => None,
    }
}

/// The dict of `RequestContext(request, {...})` / `Context({...})` (django.template), which
/// renders with the dict's keys, as older views and `context_instance=` users write it.
fn template_context_dict<'a>(cx: &RuleContext<'_, 'a>, call: Node<'a>) -> Option<Node<'a>> {
    let function = call.field(&field::FUNCTION)?;
    let Symbol::External(qualified) = cx
        .sem
        .index()
        .resolve(cx.sem.file_facts(), cx.sem.text(function))
    else {
        return None;
    };
    let position = match qualified.as_str() {
        "django.template.RequestContext" | "django.template.context.RequestContext" => 1,
        "django.template.Context" | "django.template.context.Context" => 0,
        _ => return None,
    };
    argument(cx, call, position, "dict_")
}

/// `self.get_context_data(posts=rows)` in a view's method: Django's `ContextMixin` puts the
/// keywords into the context. The class's own `get_context_data` is reported by `check_view`
/// with its additions; here only the keywords it does not overwrite, and only when it hands
/// them on to `super().get_context_data(**kwargs)` (else they may never reach the template).
fn context_data_keywords<'a>(
    cx: &RuleContext<'_, 'a>,
    call: Node<'a>,
) -> Option<Vec<(String, Node<'a>)>> {
    let function = call.field(&field::FUNCTION)?;
    if cx.sem.text(function) != "self.get_context_data" {
        return None;
    }
    let class = own_method_class(call)?;
    let own = class.field(&field::BODY).and_then(|body| {
        let mut cursor = body.walk();
        let found = body.named_children(&mut cursor).map(undecorated).find(|s| {
            s.kind_name() == "function_definition"
                && s.field(&field::NAME)
                    .is_some_and(|n| cx.sem.text(n) == "get_context_data")
        });
        found
    });
    let overwritten: Vec<String> = match own {
        Some(own) if forwards_keywords(cx, own) => context_additions(cx, own)
            .into_iter()
            .map(|(key, _)| key)
            .collect(),
        Some(_) => return None,
        None => Vec::new(),
    };
    let passed = update_entries(cx, call)?;
    Some(
        passed
            .into_iter()
            .filter(|(key, _)| !overwritten.contains(key))
            .collect(),
    )
}

/// Whether a `get_context_data(self, **kwargs)` calls `super().get_context_data(**kwargs)`.
fn forwards_keywords(cx: &RuleContext, function: Node) -> bool {
    let mut forwards = false;
    walk(function, |n| {
        if n.kind_name() == "call"
            && n.field(&field::FUNCTION)
                .is_some_and(|f| cx.sem.text(f) == "super().get_context_data")
            && n.field(&field::ARGUMENTS).is_some_and(|args| {
                let mut cursor = args.walk();
                let splat = args
                    .named_children(&mut cursor)
                    .any(|a| a.kind_name() == "dictionary_splat");
                splat
            })
        {
            forwards = true;
        }
        !forwards
    });
    forwards
}

/// What a statement adds to the dict `name`: `name["key"] = value`, or `name.update({...})` /
/// `name.update(key=value)`; `None` for any other statement.
fn added_entries<'a>(
    cx: &RuleContext<'_, 'a>,
    statement: Node<'a>,
    name: &str,
) -> Option<Vec<(String, Node<'a>)>> {
    let is_name = |n: Option<Node>| {
        n.is_some_and(|n| n.kind_name() == "identifier" && cx.sem.text(n) == name)
    };
    if let Some((left, right)) = simple_assignment(statement) {
        if left.kind_name() != "subscript" || !is_name(left.field(&field::VALUE)) {
            return None;
        }
        let key = string_value(left.field(&field::SUBSCRIPT)?, cx.sem.source)?;
        return Some(vec![(key, right)]);
    }
    let call = statement
        .named_child(0)
        .filter(|c| c.kind_name() == "call")?;
    let function = call.field(&field::FUNCTION)?;
    if function.kind_name() != "attribute"
        || !is_name(function.field(&field::OBJECT))
        || function
            .field(&field::ATTRIBUTE)
            .is_none_or(|a| cx.sem.text(a) != "update")
    {
        return None;
    }
    update_entries(cx, call)
}

/// The entries `d.update({"key": value})` or `d.update(key=value)` adds; `None` for arguments
/// the analyzer cannot read (`d.update(other)`, `**extra`).
fn update_entries<'a>(cx: &RuleContext<'_, 'a>, call: Node<'a>) -> Option<Vec<(String, Node<'a>)>> {
    let args = call.field(&field::ARGUMENTS)?;
    let mut cursor = args.walk();
    let mut added = Vec::new();
    for argument in args.named_children(&mut cursor) {
        match argument.kind_name() {
            "dictionary" if added.is_empty() => added.extend(entries(cx, argument)),
            "keyword_argument" => added.push((
                cx.sem.text(argument.field(&field::NAME)?).to_string(),
                argument.field(&field::VALUE)?,
            )),
            "comment" => {}
            _ => return None,
        }
    }
    Some(added)
}

/// `get_context(request, rows)`: the dict literal that a function of this module (defined once
/// at its top level, not rebound) returns from its one `return`.
fn returned_dict<'a>(cx: &RuleContext<'_, 'a>, call: Node<'a>) -> Option<Node<'a>> {
    let function = call.field(&field::FUNCTION)?;
    if function.kind_name() != "identifier" {
        return None;
    }
    let name = cx.sem.text(function);
    let scope = cx.sem.scope_of(function);
    if scope.scope.kind_name() != "module" && !scope.bindings(name).is_empty() {
        return None;
    }
    let root = cx.sem.parents.root();
    if cx.sem.scope_of(root).bindings(name).len() != 1 {
        return None;
    }
    let mut cursor = root.walk();
    let definition = root
        .named_children(&mut cursor)
        .map(undecorated)
        .find(|d| {
            d.kind_name() == "function_definition"
                && d.field(&field::NAME)
                    .is_some_and(|n| cx.sem.text(n) == name)
        })?;
    let only = crate::analysis::syntax::only_return(definition)?;
    only.named_child(0)
        .map(strip_parens)
        .filter(|v| v.kind_name() == "dictionary")
}

/// The `"key": value` pairs of a dict literal with string keys.
fn entries<'a>(cx: &RuleContext<'_, 'a>, dict: Node<'a>) -> Vec<(String, Node<'a>)> {
    let mut cursor = dict.walk();
    let pairs: Vec<Node<'a>> = dict
        .named_children(&mut cursor)
        .filter(|p| p.kind_name() == "pair")
        .collect();
    pairs
        .into_iter()
        .filter_map(|pair| {
            let key = string_value(pair.field(&field::KEY)?, cx.sem.source)?;
            Some((key, pair.field(&field::VALUE)?))
        })
        .collect()
}

/// A class-based view with a template: `ListView`/`DetailView` pass their QuerySet's rows (or
/// object) under `object_list`/`object` and the model's name (and a paginated list its page as
/// `page_obj`); `get_context_data` may add more.
fn check_view<'a>(cx: &mut RuleContext<'_, 'a>, view: Node<'a>) {
    let Some(body) = view.field(&field::BODY) else {
        return;
    };
    let mut attributes: Vec<(&str, Node<'a>)> = Vec::new();
    let mut context_data = None;
    let mut template_names = None;
    let mut own_object = false;
    let mut cursor = body.walk();
    for statement in body.named_children(&mut cursor) {
        let method = (statement.kind_name() == "function_definition")
            .then(|| statement.field(&field::NAME))
            .flatten()
            .map(|n| cx.sem.text(n));
        if method == Some("get_context_data") {
            context_data = Some(statement);
        } else if method == Some("get_template_names") {
            template_names = Some(statement);
        } else if method == Some("get_object") {
            own_object = true;
        } else if let Some((left, right)) = simple_assignment(statement) {
            attributes.push((cx.sem.text(left), right));
        }
    }
    let attribute = |name: &str| {
        attributes
            .iter()
            .rev()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
    };
    // A detail view that finds its object itself may not take it from its QuerySet.
    let kind = generic_kind(cx, view).filter(|k| !(own_object && *k == Kind::Detail));
    // Most classes are no template views: decided before inferring any QuerySet.
    if kind.is_none() && attribute("template_name").is_none() && template_names.is_none() {
        return;
    }
    // The view's own QuerySet: its `get_queryset()`/`queryset`, else `model = M` (all rows,
    // and no place to add a lookup: the finding has no fix).
    let handed = match cx.sem.view_class_queryset_site(view) {
        Some(site) => HandedOn::new(cx, site, site),
        None => attribute("model").and_then(|model| match cx.sem.ty(model) {
            Ty::ModelClass(m @ ModelRef::Indexed(_)) => HandedOn::of(
                cx,
                model,
                model,
                QuerySetTy {
                    model: Some(m),
                    ..QuerySetTy::default()
                },
            ),
            _ => None,
        }),
    };
    let template = match (template_names, attribute("template_name")) {
        (Some(function), _) => first_template_name(cx, function),
        (None, Some(name)) => string_value(name, cx.sem.source),
        // Django's default name, unless the view changes its suffix.
        (None, None) if attribute("template_name_suffix").is_none() => {
            kind.zip(handed.as_ref()).map(|(kind, handed)| {
                let model = cx.sem.index().model(handed.model);
                format!(
                    "{}/{}{}.html",
                    model.app_label,
                    model.name.to_lowercase(),
                    if kind == Kind::List {
                        "_list"
                    } else {
                        "_detail"
                    }
                )
            })
        }
        (None, None) => None,
    };
    let Some(template) = template else {
        return;
    };
    if let (Some(kind), Some(handed)) = (kind, &handed) {
        let model_name = cx.sem.index().model(handed.model).name.to_lowercase();
        let named = match attribute("context_object_name") {
            Some(name) => string_value(name, cx.sem.source),
            None if kind == Kind::List => Some(format!("{model_name}_list")),
            None => Some(model_name),
        };
        let (own, value) = match kind {
            Kind::List => ("object_list", Value::Rows(handed.model)),
            Kind::Detail => ("object", Value::Row(handed.model)),
        };
        // With `paginate_by`, a list view also passes the page, whose rows are the QuerySet's.
        let page = (kind == Kind::List && attribute("paginate_by").is_some())
            .then(|| "page_obj".to_string());
        let variables: Vec<String> = std::iter::once(own.to_string())
            .chain(named)
            .chain(page)
            .collect();
        report(cx, handed, &template, &variables, value);
    }
    if let Some(function) = context_data {
        for (key, value) in context_additions(cx, function) {
            if let Some(handed) = HandedOn::new(cx, value, value) {
                report(cx, &handed, &template, &[key], Value::Rows(handed.model));
            }
        }
    }
}

/// The template `get_template_names()` gives: the first name of the list (or tuple) its one
/// `return` writes, which Django tries first. `None` for names built at run time.
fn first_template_name(cx: &RuleContext, function: Node) -> Option<String> {
    let returned = strip_parens(crate::analysis::syntax::only_return(function)?.named_child(0)?);
    let first = match returned.kind_name() {
        "list" | "tuple" => {
            let mut cursor = returned.walk();
            let first = returned
                .named_children(&mut cursor)
                .find(|n| n.kind_name() != "comment");
            first?
        }
        _ => returned,
    };
    string_value(first, cx.sem.source)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    List,
    Detail,
}

/// Methods of Django's generic views that decide which template renders which rows.
const GENERIC_VIEW_METHODS: &[&str] = &[
    "get_queryset",
    "get_context_data",
    "get_context_object_name",
    "get_template_names",
    "get_object",
    "get_paginate_by",
];

/// Whether the view is one of Django's `ListView`/`DetailView`: by a base that resolves there,
/// or through the workspace's own base classes and mixins when none of them says anything
/// about the template or its rows (`GENERIC_VIEW_ATTRIBUTES`, `GENERIC_VIEW_METHODS`): then the
/// view's own body decides them, as if it derived from Django's class itself.
fn generic_kind(cx: &RuleContext, view: Node) -> Option<Kind> {
    let bases = view.field(&field::SUPERCLASSES)?;
    let mut cursor = bases.walk();
    let written: Vec<String> = bases
        .named_children(&mut cursor)
        .map(|b| cx.sem.text(b).to_string())
        .collect();
    let mut kinds: Vec<Kind> = Vec::new();
    let mut through_workspace = false;
    let mut workspace_base_decides = false;
    cx.sem
        .index()
        .walk_bases(cx.sem.file_facts(), written, |step| match step {
            BaseStep::External(q, depth) if q.starts_with("django.views.generic") => {
                let kind = match q.rsplit('.').next() {
                    Some("ListView") => Kind::List,
                    Some("DetailView") => Kind::Detail,
                    _ => return Walk::Next,
                };
                through_workspace |= depth > 0;
                if !kinds.contains(&kind) {
                    kinds.push(kind);
                }
                Walk::Next
            }
            BaseStep::External(..) => Walk::Next,
            BaseStep::Class(class) => {
                let decides = !class.view_attributes.is_empty()
                    || class
                        .methods
                        .iter()
                        .any(|m| GENERIC_VIEW_METHODS.contains(&m.name.as_str()));
                workspace_base_decides |= decides;
                if decides {
                    Walk::Next
                } else {
                    Walk::Descend
                }
            }
        });
    // Reached through the workspace's classes while one of them decides something: unsure.
    if through_workspace && workspace_base_decides {
        return None;
    }
    match kinds.as_slice() {
        [one] => Some(*one),
        _ => None,
    }
}

/// `context["key"] = value` statements in `get_context_data`, and `context.update(...)` of the
/// dict it returns; the last one of each key is what the template sees.
fn context_additions<'a>(cx: &RuleContext<'_, 'a>, function: Node<'a>) -> Vec<(String, Node<'a>)> {
    let returned = crate::analysis::syntax::only_return(function)
        .and_then(|r| r.named_child(0))
        .filter(|v| v.kind_name() == "identifier")
        .map(|v| cx.sem.text(v));
    let mut out = Vec::new();
    walk(function, |n| {
        if let Some((left, right)) = (n.kind_name() == "expression_statement")
            .then(|| simple_assignment(n))
            .flatten()
        {
            if left.kind_name() == "subscript" {
                if let Some(key) = left
                    .field(&field::SUBSCRIPT)
                    .and_then(|k| string_value(k, cx.sem.source))
                {
                    out.push((key, right));
                }
            }
        } else if let Some(added) = (n.kind_name() == "expression_statement")
            .then_some(returned)
            .flatten()
            .and_then(|name| added_entries(cx, n, name))
        {
            out.extend(added);
        }
        n.id() == function.id()
            || !matches!(
                n.kind_name(),
                "function_definition" | "lambda" | "class_definition"
            )
    });
    let mut last: Vec<(String, Node<'a>)> = Vec::new();
    for (key, value) in out.into_iter().rev() {
        if !last.iter().any(|(k, _)| *k == key) {
            last.push((key, value));
        }
    }
    last.reverse();
    last
}

fn report<'a>(
    cx: &mut RuleContext<'_, 'a>,
    handed: &HandedOn<'a>,
    template: &str,
    variables: &[String],
    value: Value,
) {
    let index = cx.sem.index();
    let mut reported: Vec<String> = Vec::new();
    for need in variables
        .iter()
        .flat_map(|v| needs(index, index.templates(), template, v, value))
    {
        let lookup = &need.lookup;
        if reported.contains(lookup) {
            continue;
        }
        reported.push(lookup.clone());
        let Some(Missing {
            ref lookup,
            method,
            fix,
        }) = handed.missing(cx, lookup, need.many)
        else {
            continue;
        };
        let related = Related {
            path: need.path.clone(),
            place: need.at.clone(),
            message: format!("`{}` reads `{lookup}` of every row", need.text),
        };
        cx.report_related(
            handed.at,
            format!(
                "`{}` ({}:{}) reads `{lookup}` for every row, one query each; add `{method}(\"{lookup}\")` to this queryset",
                need.text,
                need.template,
                need.at.line + 1,
            ),
            fix,
            vec![related],
        );
    }
}
