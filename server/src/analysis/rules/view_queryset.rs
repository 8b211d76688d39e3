//! What ORM410 and ORM411 share: a QuerySet that a view hands to code elsewhere (a template, a
//! serializer), whether it already loads a lookup, and the ORM402/ORM403 fix that adds it
//! where the QuerySet is built.

use tree_sitter::Node;

use super::RuleContext;
use crate::analysis::diagnostic::Fix;
use crate::analysis::index::{string_value, FieldKind, ModelId};
use crate::analysis::infer::{ModelRef, QuerySetTy, Ty};
use crate::analysis::loops::{
    add_lookup, back_reference, construction_site, covers, prefetched_with_the_relation,
};
use crate::analysis::syntax::{
    field::{self, FieldOf},
    walk, KindOf,
};

/// A QuerySet as a view hands it on: reported and fixed at `site`, where it is built, when that
/// is known (the lookup is added there, and a view that narrows its QuerySet in several branches
/// builds them all from it), else where it is handed on.
pub struct HandedOn<'a> {
    pub at: Node<'a>,
    pub queryset: QuerySetTy,
    pub model: ModelId,
    site: Option<Node<'a>>,
    /// Whether the QuerySet is sliced where it is built (a page of it is sliced later, by the
    /// paginator, after the lookup added at the site).
    site_sliced: bool,
    /// `Prefetch("rel", queryset=...)` lookups at the site; `None` when the site is unknown.
    custom_prefetches: Option<Vec<String>>,
    /// The foreign key Django fills on rows of a reverse manager (`loops::back_reference`).
    back_reference: Option<String>,
}

/// A lookup the QuerySet does not load: the method that would, and the fix when there is one.
pub struct Missing {
    /// The lookup to load: the one asked about, less any hop back to a row it came from.
    pub lookup: String,
    pub method: &'static str,
    pub fix: Option<Fix>,
}

impl<'a> HandedOn<'a> {
    /// `expr`'s QuerySet (or the rows of one, `list(qs)`), when its model is indexed and its
    /// rows are instances.
    pub fn new(cx: &RuleContext<'_, 'a>, at: Node<'a>, expr: Node<'a>) -> Option<Self> {
        let queryset = match cx.sem.ty(expr) {
            Ty::QuerySet(qs) | Ty::Evaluated(qs) => qs,
            // `queryset = Entry.objects`: all rows, nothing loaded yet.
            Ty::Manager(m) if !m.related => QuerySetTy {
                model: m.model,
                ..QuerySetTy::default()
            },
            _ => return None,
        };
        Self::of(cx, at, expr, queryset)
    }

    pub fn of(
        cx: &RuleContext<'_, 'a>,
        at: Node<'a>,
        expr: Node<'a>,
        queryset: QuerySetTy,
    ) -> Option<Self> {
        // An empty QuerySet (`none()`) has no rows to read relations of.
        let (Some(ModelRef::Indexed(model)), false, false) =
            (&queryset.model, queryset.values, queryset.empty)
        else {
            return None;
        };
        let model = *model;
        let mut queryset = queryset;
        // `[d for d in period.data.all() if ...]`: rows that may come with `period`'s prefetches.
        queryset
            .prefetch_related
            .extend(prefetched_with_the_relation(cx.sem, expr));
        let site = construction_site(cx.sem, expr);
        let site_sliced = site.is_none_or(|s| match cx.sem.ty(s) {
            Ty::QuerySet(qs) | Ty::Evaluated(qs) => qs.sliced,
            _ => queryset.sliced,
        });
        Some(Self {
            at: site.unwrap_or(at),
            queryset,
            model,
            site,
            site_sliced,
            custom_prefetches: site.map(|s| custom_prefetches(cx, s)),
            back_reference: back_reference(cx.sem, expr, model),
        })
    }

    /// Whether `lookup` (many-valued when `many`) is missing, with the method and fix that add
    /// it; `None` when it is loaded, or may be (below a `Prefetch` with its own QuerySet).
    pub fn missing(&self, cx: &RuleContext<'_, 'a>, lookup: &str, many: bool) -> Option<Missing> {
        // `alerts__summary__push` on summaries, where `summary` is the key behind the reverse
        // `alerts`: each alert's `summary` is the summary it was loaded through, so this reads
        // the summary's own `push`.
        let collapsed = without_back_references(cx, self.model, lookup);
        if collapsed.as_deref() == Some("") {
            return None;
        }
        let (lookup, many) = match &collapsed {
            Some(shorter) => (shorter.as_str(), is_many(cx, self.model, shorter)),
            None => (lookup, many),
        };
        let qs = &self.queryset;
        let covered =
            covers(&qs.prefetch_related, lookup) || (!many && covers(&qs.select_related, lookup));
        let below_custom = qs.prefetch_related.iter().any(|p| {
            lookup.starts_with(&format!("{p}__"))
                && self
                    .custom_prefetches
                    .as_ref()
                    .is_none_or(|c| c.contains(p))
        });
        // The rows' back-reference is the one instance their manager belongs to: what is read
        // through it is loaded once, not per row.
        let through_back_reference = self
            .back_reference
            .as_deref()
            .is_some_and(|key| lookup.split("__").next() == Some(key));
        if covered || below_custom || through_back_reference {
            return None;
        }
        let method = if many {
            "prefetch_related"
        } else {
            "select_related"
        };
        let fix = match self.site {
            Some(site) if !self.site_sliced && !self.defers_first_hop(cx, lookup) => {
                Some(Fix::safe(
                    format!("Add `{method}(\"{lookup}\")` where the queryset is built"),
                    vec![add_lookup(cx.sem, site, method, lookup)],
                ))
            }
            _ => None,
        };
        Some(Missing {
            lookup: lookup.to_string(),
            method,
            fix,
        })
    }

    /// Whether the QuerySet leaves out (`only()`/`defer()`) the foreign key column the lookup
    /// starts with: Django refuses to both defer and `select_related` a field, and the fix
    /// would need the `only()` call changed too.
    fn defers_first_hop(&self, cx: &RuleContext, lookup: &str) -> bool {
        let first = lookup.split("__").next().unwrap_or_default();
        let forward = cx
            .sem
            .index()
            .model(self.model)
            .field(first)
            .is_some_and(|f| matches!(f.kind, FieldKind::ForeignKey | FieldKind::OneToOne));
        if !forward {
            return false;
        }
        let named = |fields: &[String]| fields.iter().any(|f| f.split("__").next() == Some(first));
        let qs = &self.queryset;
        qs.only.as_deref().is_some_and(|only| !named(only)) || named(&qs.defer)
    }
}

/// The lookups of `Prefetch("rel", queryset=...)` calls where the QuerySet is built: their own
/// QuerySet may join or prefetch anything below `rel`.
fn custom_prefetches(cx: &RuleContext, site: Node) -> Vec<String> {
    let mut lookups = Vec::new();
    walk(site, |n| {
        let prefetch = n.kind_name() == "call"
            && n.field(&field::FUNCTION)
                .is_some_and(|f| cx.sem.text(f).ends_with("Prefetch"));
        if let Some(args) = n.field(&field::ARGUMENTS).filter(|_| prefetch) {
            let mut cursor = args.walk();
            let with_queryset = args.named_children(&mut cursor).any(|a| {
                a.kind_name() == "keyword_argument"
                    && a.field(&field::NAME)
                        .is_some_and(|k| cx.sem.text(k) == "queryset")
            });
            if with_queryset {
                lookups.extend(
                    args.named_child(0)
                        .and_then(|a| string_value(a, cx.sem.source)),
                );
            }
        }
        true
    });
    lookups
}

/// `lookup` with every hop back through a reverse foreign key to the row it came from removed
/// (`alerts__summary__push` → `push` when `summary` is the key behind `alerts`), or `None`
/// when it has no such hop. Django sets that key on every row a reverse manager or its prefetch
/// loads.
fn without_back_references(cx: &RuleContext, model: ModelId, lookup: &str) -> Option<String> {
    let index = cx.sem.index();
    // The hops kept, each with the model it reaches.
    let mut kept: Vec<(&str, ModelId)> = Vec::new();
    let mut current = model;
    let mut collapsed = false;
    let mut hops = lookup.split("__").peekable();
    while let Some(hop) = hops.next() {
        let declared = index.model(current);
        if let Some(reverse) = declared.reverse(hop).filter(|r| r.many) {
            let key = index.model(reverse.source).field(&reverse.field);
            let is_foreign_key = key.is_some_and(|f| f.kind == FieldKind::ForeignKey);
            if is_foreign_key && hops.peek() == Some(&reverse.field.as_str()) {
                hops.next();
                collapsed = true;
                continue;
            }
            kept.push((hop, reverse.source));
            current = reverse.source;
            continue;
        }
        match declared.field(hop).and_then(|f| f.target) {
            Some(target) => {
                kept.push((hop, target));
                current = target;
            }
            // Not a relation the index knows: leave the rest as written.
            None => {
                kept.push((hop, current));
                kept.extend(hops.map(|h| (h, current)));
                break;
            }
        }
    }
    collapsed.then(|| {
        kept.iter()
            .map(|(hop, _)| *hop)
            .collect::<Vec<_>>()
            .join("__")
    })
}

/// Whether some hop of `lookup` from `model` is to-many (then it needs `prefetch_related`).
fn is_many(cx: &RuleContext, model: ModelId, lookup: &str) -> bool {
    let index = cx.sem.index();
    let mut current = model;
    for hop in lookup.split("__") {
        let declared = index.model(current);
        if let Some(reverse) = declared.reverse(hop) {
            if reverse.many {
                return true;
            }
            current = reverse.source;
            continue;
        }
        match declared.field(hop) {
            Some(field) if field.kind == FieldKind::ManyToMany => return true,
            Some(field) => match field.target {
                Some(target) => current = target,
                None => return false,
            },
            None => return false,
        }
    }
    false
}
