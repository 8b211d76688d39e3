//! ORM410 n-plus-one-template: a view renders a template that, looping over a QuerySet the view
//! passes, reads a relation of each row (`{{ post.author.name }}`, `{% for c in
//! post.comments.all %}`): one query per row unless the QuerySet joins or prefetches it. Reported
//! in the view, where the fix goes — where the QuerySet is built, else the context entry — with
//! the template line as related information, and the fix ORM402/ORM403 make there.

use tree_sitter::Node;

use super::view_queryset::{HandedOn, Missing};
use super::{Captures, Rule, RuleContext, RuleMeta};
use crate::analysis::diagnostic::{Related, Severity};
use crate::analysis::index::{string_value, Symbol};
use crate::analysis::infer::{ModelRef, QuerySetTy, Ty};
use crate::analysis::scope::BindingKind;
use crate::analysis::syntax::{simple_assignment, strip_parens, undecorated, walk};
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
    ("django.template.response.TemplateResponse", 1, "template"),
    (
        "django.template.loader.render_to_string",
        0,
        "template_name",
    ),
];

/// `render(request, "blog/list.html", {"posts": posts})`: reported where each context value is
/// built.
fn check_render<'a>(cx: &mut RuleContext<'_, 'a>, call: Node<'a>, function: Node<'a>) {
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
    let Some(args) = call.child_by_field_name("arguments") else {
        return;
    };
    let argument = |position: usize, keyword: &str| -> Option<Node<'a>> {
        let mut cursor = args.walk();
        let children: Vec<Node<'a>> = args.named_children(&mut cursor).collect();
        children
            .iter()
            .filter(|a| a.kind() != "keyword_argument" && a.kind() != "comment")
            .nth(position)
            .copied()
            .or_else(|| {
                children.iter().find_map(|a| {
                    (a.kind() == "keyword_argument"
                        && a.child_by_field_name("name")
                            .is_some_and(|n| cx.sem.text(n) == keyword))
                    .then(|| a.child_by_field_name("value"))
                    .flatten()
                })
            })
    };
    let Some(template) =
        argument(template_at, template_keyword).and_then(|t| string_value(t, cx.sem.source))
    else {
        return;
    };
    let Some(context) = argument(template_at + 1, "context").and_then(|c| context_dict(cx, c))
    else {
        return;
    };
    for (key, value) in entries(cx, context) {
        if let Some(handed) = HandedOn::new(cx, assigned_value(cx, value), value) {
            report(cx, &handed, &template, &[key], Value::Rows(handed.model));
        }
    }
}

/// Where a context value that is a name was made (`page = paginator.get_page(n)`): the finding
/// goes there when the QuerySet's own construction is out of sight.
fn assigned_value<'a>(cx: &RuleContext<'_, 'a>, value: Node<'a>) -> Node<'a> {
    if value.kind() != "identifier" {
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

/// The dict literal a context is: written in the call, or the one assignment of a name that is
/// not changed afterwards (`context["x"] = ...`, `context.update(...)`): a context built
/// elsewhere is not known.
fn context_dict<'a>(cx: &RuleContext<'_, 'a>, context: Node<'a>) -> Option<Node<'a>> {
    let context = strip_parens(context);
    if context.kind() == "dictionary" {
        return Some(context);
    }
    if context.kind() == "call" {
        return returned_dict(cx, context);
    }
    if context.kind() != "identifier" {
        return None;
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
    let dict = match value.kind() {
        "dictionary" => value,
        "call" => returned_dict(cx, value)?,
        _ => return None,
    };
    let mut changed = false;
    walk(scope.scope, |n| {
        let object = match n.kind() {
            "subscript" => n.child_by_field_name("value"),
            "attribute" => n.child_by_field_name("object"),
            _ => None,
        };
        if object.is_some_and(|o| o.kind() == "identifier" && cx.sem.text(o) == name) {
            changed = true;
        }
        !changed
    });
    (!changed).then_some(dict)
}

/// `get_context(request, rows)`: the dict literal that a function of this module (defined once
/// at its top level, not rebound) returns from its one `return`.
fn returned_dict<'a>(cx: &RuleContext<'_, 'a>, call: Node<'a>) -> Option<Node<'a>> {
    let function = call.child_by_field_name("function")?;
    if function.kind() != "identifier" {
        return None;
    }
    let name = cx.sem.text(function);
    let scope = cx.sem.scope_of(function);
    if scope.scope.kind() != "module" && !scope.bindings(name).is_empty() {
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
            d.kind() == "function_definition"
                && d.child_by_field_name("name")
                    .is_some_and(|n| cx.sem.text(n) == name)
        })?;
    let only = crate::analysis::syntax::only_return(definition)?;
    only.named_child(0)
        .map(strip_parens)
        .filter(|v| v.kind() == "dictionary")
}

/// The `"key": value` pairs of a dict literal with string keys.
fn entries<'a>(cx: &RuleContext<'_, 'a>, dict: Node<'a>) -> Vec<(String, Node<'a>)> {
    let mut cursor = dict.walk();
    let pairs: Vec<Node<'a>> = dict
        .named_children(&mut cursor)
        .filter(|p| p.kind() == "pair")
        .collect();
    pairs
        .into_iter()
        .filter_map(|pair| {
            let key = string_value(pair.child_by_field_name("key")?, cx.sem.source)?;
            Some((key, pair.child_by_field_name("value")?))
        })
        .collect()
}

/// A class-based view with a template: `ListView`/`DetailView` pass their QuerySet's rows (or
/// object) under `object_list`/`object` and the model's name; `get_context_data` may add more.
fn check_view<'a>(cx: &mut RuleContext<'_, 'a>, view: Node<'a>) {
    let Some(body) = view.child_by_field_name("body") else {
        return;
    };
    let mut attributes: Vec<(&str, Node<'a>)> = Vec::new();
    let mut context_data = None;
    let mut own_object = false;
    let mut cursor = body.walk();
    for statement in body.named_children(&mut cursor) {
        let method = (statement.kind() == "function_definition")
            .then(|| statement.child_by_field_name("name"))
            .flatten()
            .map(|n| cx.sem.text(n));
        if method == Some("get_context_data") {
            context_data = Some(statement);
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
    if kind.is_none() && attribute("template_name").is_none() {
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
    let template = match attribute("template_name") {
        Some(name) => string_value(name, cx.sem.source),
        // Django's default name, unless the view changes its suffix.
        None if attribute("template_name_suffix").is_none() => {
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
        None => None,
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
        let variables: Vec<String> = std::iter::once(own.to_string()).chain(named).collect();
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

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    List,
    Detail,
}

/// Whether the view is one of Django's `ListView`/`DetailView` (by a base that resolves there).
fn generic_kind(cx: &RuleContext, view: Node) -> Option<Kind> {
    let bases = view.child_by_field_name("superclasses")?;
    let mut cursor = bases.walk();
    let kinds: Vec<Kind> = bases
        .named_children(&mut cursor)
        .filter_map(|base| {
            let Symbol::External(q) = cx
                .sem
                .index()
                .resolve(cx.sem.file_facts(), cx.sem.text(base))
            else {
                return None;
            };
            if !q.starts_with("django.views.generic") {
                return None;
            }
            match q.rsplit('.').next() {
                Some("ListView") => Some(Kind::List),
                Some("DetailView") => Some(Kind::Detail),
                _ => None,
            }
        })
        .collect();
    match kinds.as_slice() {
        [one] => Some(*one),
        _ => None,
    }
}

/// `context["key"] = value` statements in `get_context_data`; the last one of each key is what
/// the template sees.
fn context_additions<'a>(cx: &RuleContext<'_, 'a>, function: Node<'a>) -> Vec<(String, Node<'a>)> {
    let mut out = Vec::new();
    walk(function, |n| {
        if let Some((left, right)) = (n.kind() == "expression_statement")
            .then(|| simple_assignment(n))
            .flatten()
        {
            if left.kind() == "subscript" {
                if let Some(key) = left
                    .child_by_field_name("subscript")
                    .and_then(|k| string_value(k, cx.sem.source))
                {
                    out.push((key, right));
                }
            }
        }
        n.id() == function.id()
            || !matches!(
                n.kind(),
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
