//! ORM411 n-plus-one-serializer: a REST framework serializer that reads a relation of every
//! object it serializes (a nested serializer, `source="author.name"`, a related field, a
//! `SerializerMethodField` reading `obj.author`) runs one query per row unless the QuerySet it
//! is given joins or prefetches that relation. Reported where the QuerySet is built — a view's
//! `queryset` / `get_queryset()`, or the rows passed to `XSerializer(rows, many=True)` — with
//! the fix ORM402/ORM403 make there.

use tree_sitter::Node;

use super::view_queryset::{HandedOn, Missing};
use super::{Captures, Rule, RuleContext, RuleMeta};
use crate::analysis::diagnostic::{Related, Severity};
use crate::analysis::index::{BaseStep, Walk};
use crate::analysis::serializers::{self, relation_reads, Found, RelationRead};
use crate::analysis::syntax::{
    field::{self, FieldOf},
    simple_assignment, strip_parens, walk, KindOf,
};

pub static RULE: Rule = Rule {
    meta: &RuleMeta {
        code: "ORM411",
        name: "n-plus-one-serializer",
        severity: Severity::Warning,
    },
    query: include_str!("../../../../queries/orm411_n_plus_one_serializer.scm"),
    check,
};

fn check<'a>(cx: &mut RuleContext<'_, 'a>, m: &Captures<'_, 'a>) {
    if let Some(view) = m.get("view") {
        check_view(cx, view);
    } else if let (Some(call), Some(serializer)) = (m.get("call"), m.get("serializer")) {
        check_call(cx, call, serializer);
    }
}

/// A view naming its serializer: reported where its `queryset` or `get_queryset()`'s QuerySet
/// is built. A view choosing among serializers reports the reads every choice makes.
fn check_view<'a>(cx: &mut RuleContext<'_, 'a>, view: Node<'a>) {
    let Some(classes) = serializer_classes(cx, view) else {
        return;
    };
    let index = cx.sem.index();
    let Some(candidates) = classes
        .iter()
        .map(|class| serializers::resolve(index, cx.sem.file_facts(), class))
        .collect::<Option<Vec<Found>>>()
    else {
        return;
    };
    // A view that only retrieves one object reads its relations once, not per row.
    if !lists_rows(cx, view) {
        return;
    }
    let Some(site) = cx.sem.view_class_queryset_site(view) else {
        return;
    };
    if let Some(handed) = HandedOn::new(cx, site, site) {
        report(cx, handed, &candidates);
    }
}

/// REST framework's views and viewsets that serialize a list of rows.
const LISTING_VIEWS: &[&str] = &[
    "ListAPIView",
    "ListCreateAPIView",
    "ModelViewSet",
    "ReadOnlyModelViewSet",
    "ListModelMixin",
];

/// Whether the view class lists rows: one of its bases (or a base of a base declared in the
/// workspace) is a listing view of REST framework.
fn lists_rows(cx: &RuleContext, view: Node) -> bool {
    let Some(bases) = view.field(&field::SUPERCLASSES) else {
        return false;
    };
    let mut cursor = bases.walk();
    let written: Vec<String> = bases
        .named_children(&mut cursor)
        .map(|b| cx.sem.text(b).to_string())
        .collect();
    let mut lists = false;
    cx.sem
        .index()
        .walk_bases(cx.sem.file_facts(), written, |step| match step {
            BaseStep::External(q, _)
                if q.starts_with("rest_framework.")
                    && q.rsplit('.')
                        .next()
                        .is_some_and(|n| LISTING_VIEWS.contains(&n)) =>
            {
                lists = true;
                Walk::Stop
            }
            BaseStep::External(..) => Walk::Next,
            BaseStep::Class(_) => Walk::Descend,
        });
    lists
}

/// `XSerializer(rows, many=True)`: reported at `rows`.
fn check_call<'a>(cx: &mut RuleContext<'_, 'a>, call: Node<'a>, serializer: Node<'a>) {
    let Some(found) =
        serializers::resolve(cx.sem.index(), cx.sem.file_facts(), cx.sem.text(serializer))
    else {
        return;
    };
    let Some(rows) = call
        .field(&field::ARGUMENTS)
        .and_then(|a| a.named_child(0))
        .filter(|a| a.kind_name() != "keyword_argument")
    else {
        return;
    };
    if let Some(handed) = HandedOn::new(cx, rows, rows) {
        report(cx, handed, &[found]);
    }
}

/// The serializer classes a view may use: `serializer_class = X`, or every class its
/// `get_serializer_class()` returns (`self.serializer_class` meaning the attribute). `None` when
/// it names none, or returns something else.
fn serializer_classes<'a>(cx: &RuleContext<'_, 'a>, view: Node<'a>) -> Option<Vec<&'a str>> {
    let body = view.field(&field::BODY)?;
    let mut cursor = body.walk();
    let mut named = None;
    let mut chooser = None;
    for statement in body.named_children(&mut cursor) {
        let statement = crate::analysis::syntax::undecorated(statement);
        if statement.kind_name() == "function_definition" {
            if statement
                .field(&field::NAME)
                .is_some_and(|n| cx.sem.text(n) == "get_serializer_class")
            {
                chooser = Some(statement);
            }
            continue;
        }
        if let Some((left, right)) = simple_assignment(statement) {
            if cx.sem.text(left) == "serializer_class"
                && matches!(right.kind_name(), "identifier" | "attribute")
            {
                named = Some(cx.sem.text(right));
            }
        }
    }
    // A `get_serializer_class()` overrides the attribute.
    let Some(chooser) = chooser else {
        return named.map(|n| vec![n]);
    };
    let mut classes = returned_names(cx, chooser)?;
    for class in &mut classes {
        if *class == "self.serializer_class" {
            *class = named?;
        }
    }
    classes.dedup();
    Some(classes)
}

/// The class names `function`'s `return`s give, when every one gives a name.
fn returned_names<'a>(cx: &RuleContext<'_, 'a>, function: Node<'a>) -> Option<Vec<&'a str>> {
    let mut names = Vec::new();
    let mut other = false;
    walk(function, |n| {
        if n.kind_name() == "return_statement" {
            match n.named_child(0).map(strip_parens) {
                Some(v) if matches!(v.kind_name(), "identifier" | "attribute") => {
                    names.push(cx.sem.text(v));
                }
                _ => other = true,
            }
        }
        n.id() == function.id()
            || !matches!(
                n.kind_name(),
                "function_definition" | "lambda" | "class_definition"
            )
    });
    (!other && !names.is_empty()).then_some(names)
}

/// Reports the relations every one of `candidates` reads of the rows and `handed` leaves
/// unloaded: whichever serializer the view picks reads them.
fn report<'a>(cx: &mut RuleContext<'_, 'a>, handed: HandedOn<'a>, candidates: &[Found]) {
    let index = cx.sem.index();
    if candidates
        .iter()
        .any(|found| found.model(index).is_some_and(|m| m != handed.model))
    {
        return;
    }
    let Some((first, others)) = candidates.split_first() else {
        return;
    };
    let mut reads = relation_reads(index, *first, handed.model);
    for other in others {
        let theirs = relation_reads(index, *other, handed.model);
        reads.retain(|read| {
            theirs
                .iter()
                .any(|t| t.lookup == read.lookup && t.many == read.many)
        });
    }
    for read in reads {
        let lookup = &read.lookup;
        let Some(Missing {
            ref lookup,
            method,
            fix,
        }) = handed.missing(cx, lookup, read.many)
        else {
            continue;
        };
        let related = related(cx, &read).into_iter().collect();
        let (message, fix) = match &read.narrowed_by {
            // `rel.all().order_by(...)` queries per row even when `rel` is prefetched.
            Some(narrowing) => (
                format!(
                    "`{}` ({}) reads `{lookup}` with `.{narrowing}()` for every row, one query each; prefetch it with `Prefetch(\"{lookup}\", queryset=...)` doing the `.{narrowing}()` once, and drop it from the read",
                    read.what,
                    read.location(),
                ),
                None,
            ),
            None => (
                format!(
                    "`{}` ({}) reads `{lookup}` for every row, one query each; add `{method}(\"{lookup}\")` to this queryset",
                    read.what,
                    read.location(),
                ),
                fix,
            ),
        };
        cx.report_related(handed.at, message, fix, related);
    }
}

/// The serializer field behind a finding, for editors to show next to it. The facts of the file
/// being linted are read from its text, not from disk: their path is the index's copy's.
fn related(cx: &RuleContext, read: &RelationRead) -> Option<Related> {
    let path = read.file.path.clone().or_else(|| {
        cx.sem
            .index()
            .facts(&read.file.module)
            .and_then(|f| f.path.clone())
    })?;
    Some(Related {
        path,
        place: read.at.clone(),
        message: format!("`{}` reads `{}` of every row", read.what, read.lookup),
    })
}
