//! ORM409 count-per-row: `blog.entries.count()` in a loop over blogs runs one `COUNT(*)` per
//! row; `annotate(entries_count=Count("entries"))` on the QuerySet counts them all in the one
//! query that loads the rows.

use tree_sitter::Node;

use super::{Captures, Rule, RuleContext, RuleMeta};
use crate::analysis::diagnostic::{Applicability, Edit, Fix, Severity};
use crate::analysis::imports::import_names;
use crate::analysis::index::{FieldKind, Model, ModelId};
use crate::analysis::infer::Semantics;
use crate::analysis::loops::{
    construction_site, covers, per_row_loop, quote_style, reverse_query_name, RowLoop,
};
use crate::analysis::syntax::{
    field::{self, FieldOf},
    has_no_arguments, normalized, unused_name, walk, KindOf,
};
use crate::settings::Settings;

pub static RULE: Rule = Rule {
    meta: &RuleMeta {
        code: "ORM409",
        name: "count-per-row",
        severity: Severity::Warning,
    },
    query: include_str!("../../../../queries/orm409_count_per_row.scm"),
    check,
};

/// Relation methods that change what the count would be.
const RELATION_WRITES: &[&str] = &["add", "remove", "create", "clear", "set", "get_or_create"];

fn check<'a>(cx: &mut RuleContext<'_, 'a>, m: &Captures<'_, 'a>) {
    let (Some(call), Some(instance), Some(relation)) =
        (m.get("call"), m.get("instance"), m.get("relation"))
    else {
        return;
    };
    let sem = cx.sem;
    let counted_call = if sem.text(call).starts_with("len") {
        call.field(&field::ARGUMENTS).and_then(|a| a.named_child(0))
    } else {
        Some(call)
    };
    if !counted_call.is_some_and(has_no_arguments) {
        return;
    }
    let Some(row_loop) = counted_relation_loop(sem, instance, relation) else {
        return;
    };
    let relation = sem.text(relation);
    // A `related_query_name` the index cannot read: the count has no name to annotate by.
    let Some(lookup) = count_lookup(sem, row_loop.model, relation) else {
        return;
    };
    let fix = annotate_fix(sem, &row_loop, sem.text(instance), relation);
    cx.report(
        call,
        format!("`{}` runs a COUNT query for every row of the loop; annotate the count with `Count(\"{lookup}\")` where the queryset is built", sem.text(call)),
        fix,
    );
}

/// The loop over QuerySet rows in which `instance.relation` is a to-many relation the QuerySet
/// does not prefetch (a prefetched relation is counted from memory).
fn counted_relation_loop<'a>(
    sem: &Semantics<'a>,
    instance: Node<'a>,
    relation: Node<'a>,
) -> Option<RowLoop<'a>> {
    let row_loop = per_row_loop(sem, instance)?;
    let name = sem.text(relation);
    let model = sem.index().model(row_loop.model);
    let many = is_to_many(model, name) || model.reverse(name).is_some_and(|r| r.many);
    (many && !covers(&row_loop.queryset.prefetch_related, name)).then_some(row_loop)
}

fn annotate_fix<'a>(
    sem: &Semantics<'a>,
    row_loop: &RowLoop<'a>,
    instance: &str,
    relation: &str,
) -> Option<Fix> {
    // PostgreSQL refuses GROUP BY with FOR UPDATE: no `annotate(Count(...))` on rows locked
    // by `select_for_update()`.
    if row_loop.queryset.sliced || row_loop.queryset.locks {
        return None;
    }
    let site = construction_site(sem, row_loop.iterable)?;
    let import = import_names(sem, "django.db.models", &["Count"]).ok()?;
    let model = sem.index().model(row_loop.model);
    let lookup = count_lookup(sem, row_loop.model, relation)?;
    let mut wanted = format!("{lookup}_count");
    while model.field(&wanted).is_some() || model.reverse(&wanted).is_some() {
        wanted.push('_');
    }
    let name = unused_name(sem.source, &wanted);
    let counts = [
        format!("{instance} . {relation} . count ( )"),
        format!("len ( {instance} . {relation} . all ( ) )"),
    ];
    let mut replaced = Vec::new();
    let mut writes = false;
    walk(row_loop.node, |n| {
        if n.kind_name() == "call" {
            let text = normalized(n, sem.source);
            if counts.contains(&text) {
                replaced.push(Edit::replace(n.byte_range(), format!("{instance}.{name}")));
                return false;
            }
            let prefix = format!("{instance} . {relation} . ");
            writes |= RELATION_WRITES
                .iter()
                .any(|w| text.starts_with(&format!("{prefix}{w} (")));
        }
        true
    });
    // Joins of other to-many relations (a filter across one, another annotation) multiply the
    // rows each count sees.
    let mut joins = false;
    walk(site, |n| {
        if n.kind_name() == "keyword_argument" {
            joins |= n.field(&field::NAME).is_some_and(|k| {
                let first = sem.text(k).split("__").next().unwrap_or("");
                is_to_many(model, first)
                    || model
                        .reverse
                        .iter()
                        .any(|r| r.many && reverse_query_name(sem, r).as_deref() == Some(first))
            });
        }
        joins |= n.kind_name() == "identifier" && sem.text(n) == "annotate";
        true
    });
    let quote = quote_style(sem, site);
    let distinct = if joins { ", distinct=True" } else { "" };
    let annotate = format!(".annotate({name}=Count({quote}{lookup}{quote}{distinct}))");
    let mut edits: Vec<Edit> = import.into_iter().collect();
    edits.push(Edit::replace(site.end_byte()..site.end_byte(), &annotate));
    edits.extend(replaced);
    let (applicability, why) = if writes {
        (
            Applicability::Unsafe,
            " (unsafe: the loop changes the relation, the annotated count does not follow)",
        )
    } else if joins {
        (
            Applicability::Unsafe,
            " (unsafe: the queryset joins other relations; check the distinct count is what you mean)",
        )
    } else {
        (Applicability::Safe, "")
    };
    Some(Fix {
        title: format!(
            "Add `{annotate}` where the queryset is built and read `{instance}.{name}`{why}"
        ),
        applicability,
        edits,
    })
}

/// Whether ORM409 reports the count of `manager` (`row.relation`, counted with `count()` or
/// `len(....all())`): ORM101's `count()` and ORM103's `exists()` would still query per row.
pub fn owns<'a>(sem: &Semantics<'a>, settings: &Settings, manager: Node<'a>) -> bool {
    if !settings.is_enabled(RULE.meta.code) || manager.kind_name() != "attribute" {
        return false;
    }
    match (
        manager.field(&field::OBJECT),
        manager.field(&field::ATTRIBUTE),
    ) {
        (Some(instance), Some(relation)) if instance.kind_name() == "identifier" => {
            counted_relation_loop(sem, instance, relation).is_some()
        }
        _ => false,
    }
}

/// What `Count()` names the relation with: its query name (`None`: one the index cannot read).
fn count_lookup(sem: &Semantics, model: ModelId, relation: &str) -> Option<String> {
    match sem.index().model(model).reverse(relation) {
        Some(reverse) => reverse_query_name(sem, reverse),
        None => Some(relation.to_string()),
    }
}

fn is_to_many(model: &Model, name: &str) -> bool {
    model
        .field(name)
        .is_some_and(|f| f.kind == FieldKind::ManyToMany && f.target.is_some())
}
