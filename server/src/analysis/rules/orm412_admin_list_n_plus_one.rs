//! ORM412 admin-list-n-plus-one: a `ModelAdmin`'s changelist renders every `list_display`
//! entry once per row of the page. A foreign-key column, an `x__y` column or a callable reading
//! `obj.<relation>` costs one query per row unless the changelist's QuerySet joins or prefetches
//! the relation (`analysis::admin` reads what it does). Reported at the read inside a callable
//! of the admin's file, else at the `list_display` entry, with the lookup added where the admin
//! joins (safe) or a prefetch in `get_queryset()` (unsafe).

use tree_sitter::Node;

use super::{Captures, Rule, RuleContext, RuleMeta};
use crate::analysis::admin::{
    self, model_method, shape, Changelist, Entry, Joins, KeyFixSite, Shape,
};
use crate::analysis::diagnostic::{Applicability, Edit, Fix, Related, Severity};
use crate::analysis::index::{string_value, FileFacts, MethodFacts, ModelId};
use crate::analysis::infer::Semantics;
use crate::analysis::loops::{add_argument, covers, quote_style};
use crate::analysis::serializers::{location, ObjectRead, NARROWING_METHODS};
use crate::analysis::syntax::{
    field::{self, FieldOf},
    indentation, KindOf,
};
use crate::settings::Settings;

pub static RULE: Rule = Rule {
    meta: &RuleMeta {
        code: "ORM412",
        name: "admin-list-n-plus-one",
        severity: Severity::Warning,
    },
    query: include_str!("../../../../queries/orm412_admin_list_n_plus_one.scm"),
    check,
};

/// Calls on a to-many relation that the prefetch cache answers.
const ANSWERED_BY_PREFETCH: &[&str] = &["all", "count", "exists"];

/// Calls on a to-many relation that query whatever is prefetched.
const ALWAYS_QUERY: &[&str] = &["get", "aggregate", "latest", "earliest", "in_bulk"];

fn check<'a>(cx: &mut RuleContext<'_, 'a>, m: &Captures<'_, 'a>) {
    let Some(class) = m.get("admin") else {
        return;
    };
    let Some(changelist) = Changelist::read(cx.sem, cx.settings, class) else {
        return;
    };
    for entry in &changelist.entries {
        match entry {
            Entry::Column { at, hops, shows } => {
                let column = string_value(*at, cx.sem.source).unwrap_or_default();
                let what = format!("The column `{column}`");
                changelist.report_keys(cx, *at, &what, hops, Vec::new());
                // The cell is the related object's `__str__`, and what it reads.
                let str_method = shows.and_then(|shown| {
                    let (file, method) = model_method(cx.sem, shown, "__str__")?;
                    Some((shown, file, method))
                });
                if let Some((shown, file, method)) = str_method {
                    let name = &cx.sem.index().model(shown).name;
                    let what = format!("{what} through `{name}.__str__`");
                    changelist.report_method_reads(cx, *at, &what, shown, hops, file, method);
                }
            }
            Entry::Callable { what, function, .. } => {
                changelist.report_callable(cx, what, *function)
            }
            Entry::ModelMethod { at, file, method } => {
                let what = format!(
                    "`{}.{}`",
                    cx.sem.index().model(changelist.model).name,
                    method.name
                );
                changelist.report_method_reads(cx, *at, &what, changelist.model, &[], file, method);
            }
        }
    }
}

/// Whether ORM412 owns the relation counted at `manager` (`obj.items` in `obj.items.count()`):
/// it is read on the row of a function that an admin's `list_display` names, where the cost is
/// the query per row, not how it counts.
pub fn owns<'a>(sem: &Semantics<'a>, settings: &Settings, manager: Node<'a>) -> bool {
    settings.is_enabled(RULE.meta.code)
        && manager.kind_name() == "attribute"
        && admin::read_on_a_listed_row(sem, manager)
}

impl<'a> Changelist<'a> {
    /// Reports the keys `hops` (a chain read in one row, from the model) when not joined.
    fn report_keys(
        &self,
        cx: &mut RuleContext<'_, 'a>,
        at: Node<'a>,
        what: &str,
        hops: &[String],
        related: Vec<Related>,
    ) {
        let lookup = hops.join("__");
        // `prefetch_related("author")` loads a key too, in a query of its own.
        if hops.is_empty() || self.joins(cx.sem, hops) || covers(&self.prefetched, &lookup) {
            return;
        }
        let why = match &self.joins {
            Joins::NonNullKeys => format!(
                "`select_related()` without lookups follows only keys that cannot be null, and `{lookup}` may be null"
            ),
            Joins::Lookups(_) if matches!(self.key_fix_site, KeyFixSite::SelectRelated(_)) => {
                "`get_queryset()` calls `select_related(...)` without it, which turns off Django's own joins".to_string()
            }
            Joins::Lookups(_) => "nothing joins it".to_string(),
        };
        let admin = self.admin_name;
        let remedy = match self.key_fix_site {
            KeyFixSite::SelectRelated(_) => "add it to that `select_related(...)`",
            _ => "join it in `list_select_related`",
        };
        let message = format!(
            "{what} reads `{lookup}` for every row of `{admin}`'s changelist, one query each: {why}; {remedy}"
        );
        let fix = self.key_fix(cx, &lookup);
        cx.report_related(at, message, fix, related);
    }

    /// The reads of a callable's row: each relation once, at its first read.
    fn report_callable(&self, cx: &mut RuleContext<'_, 'a>, what: &str, function: Node<'a>) {
        let Some(reads) = self.callable_reads(cx.sem, function) else {
            return;
        };
        let mut reported: Vec<String> = Vec::new();
        for read in reads {
            let Some(shape) = self.row_shape(cx.sem, &read) else {
                continue;
            };
            let lookup = match &shape {
                Shape::Keys(hops) | Shape::Many { hops, .. } => hops.join("__"),
            };
            if reported.contains(&lookup) {
                continue;
            }
            reported.push(lookup.clone());
            let what = format!("`{what}`");
            match shape {
                Shape::Keys(hops) => self.report_keys(cx, read.node, &what, &hops, Vec::new()),
                Shape::Many { hops, narrowed } => {
                    self.report_many(cx, read.node, &what, &hops, narrowed.as_deref(), Vec::new())
                }
            }
        }
    }

    /// Reports what a model method of another file (or a related object's `__str__`) reads, at
    /// the entry that shows it, naming the read: `prefix` leads from the rows to `model`.
    #[allow(clippy::too_many_arguments)]
    fn report_method_reads(
        &self,
        cx: &mut RuleContext<'_, 'a>,
        at: Node<'a>,
        what: &str,
        model: ModelId,
        prefix: &[String],
        file: &FileFacts,
        method: &MethodFacts,
    ) {
        let mut reported: Vec<String> = Vec::new();
        for read in &method.self_reads {
            let Some(shape) = shape(
                cx.sem,
                model,
                &read.path,
                read.call.as_deref(),
                read.narrowed_by.as_deref(),
            ) else {
                continue;
            };
            let (Shape::Keys(hops) | Shape::Many { hops, .. }) = &shape;
            let full: Vec<String> = prefix.iter().chain(hops).cloned().collect();
            let lookup = full.join("__");
            if reported.contains(&lookup) {
                continue;
            }
            reported.push(lookup);
            let related = related(cx, file, read, &method.name).into_iter().collect();
            let what = format!("{what} ({})", location(file, &read.at));
            match shape {
                Shape::Keys(_) => self.report_keys(cx, at, &what, &full, related),
                Shape::Many { narrowed, .. } => {
                    self.report_many(cx, at, &what, &full, narrowed.as_deref(), related)
                }
            }
        }
    }

    /// Reports a to-many read that the prefetch of `get_queryset()` does not answer.
    fn report_many(
        &self,
        cx: &mut RuleContext<'_, 'a>,
        at: Node<'a>,
        what: &str,
        hops: &[String],
        call: Option<&str>,
        related: Vec<Related>,
    ) {
        let lookup = hops.join("__");
        let prefetched = covers(&self.prefetched, &lookup);
        let call = call.unwrap_or_default();
        let narrowed = NARROWING_METHODS.contains(&call) || ALWAYS_QUERY.contains(&call);
        if narrowed {
            cx.report_related(
                at,
                format!(
                    "{what} calls `{lookup}.{call}()` for every row of `{}`'s changelist, one query each, prefetched or not; annotate the value in `get_queryset()`, or prefetch with `Prefetch(\"{lookup}\", queryset=...)` doing the `.{call}()` once",
                    self.admin_name
                ),
                None,
                related,
            );
            return;
        }
        // An unordered `first()` queries even when prefetched; an ordered one does not, and the
        // related model's ordering is not known here.
        let answered = ANSWERED_BY_PREFETCH.contains(&call) || matches!(call, "first" | "last");
        if prefetched || !answered {
            return;
        }
        cx.report_related(
            at,
            format!(
                "{what} reads `{lookup}` for every row of `{}`'s changelist, one query each; prefetch it in `get_queryset()` (or annotate what is read)",
                self.admin_name
            ),
            self.prefetch_fix(cx, &lookup),
            related,
        );
    }

    /// Adds `lookup` where the changelist's keys are joined.
    fn key_fix(&self, cx: &RuleContext<'_, 'a>, lookup: &str) -> Option<Fix> {
        let sem = cx.sem;
        let quote = quote_style(sem, self.class);
        let quoted = |l: &str| format!("{quote}{l}{quote}");
        let edit = match self.key_fix_site {
            KeyFixSite::SelectRelated(call) => add_to_arguments(call, &quoted(lookup))?,
            KeyFixSite::Literal(literal) => add_to_literal(sem, literal, &quoted(lookup))?,
            KeyFixSite::False(value) => {
                Edit::replace(value.byte_range(), self.new_tuple(cx.sem, lookup, &quoted))
            }
            KeyFixSite::After(statement) => {
                let indent = indentation(sem.source, statement)?;
                // At the end of the statement's last line, after any comment there.
                let rest = &sem.source[statement.end_byte()..];
                let line_end = statement.end_byte() + rest.find(['\r', '\n']).unwrap_or(rest.len());
                let newline = if sem.source[line_end..].starts_with("\r\n") {
                    "\r\n"
                } else {
                    "\n"
                };
                Edit::replace(
                    line_end..line_end,
                    format!(
                        "{newline}{indent}list_select_related = {}",
                        self.new_tuple(cx.sem, lookup, &quoted)
                    ),
                )
            }
            KeyFixSite::Unfixable => return None,
        };
        let title = match self.key_fix_site {
            KeyFixSite::SelectRelated(_) => {
                format!("Add `{lookup}` to `select_related(...)` in `get_queryset()`")
            }
            _ => format!("Add `{lookup}` to `list_select_related`"),
        };
        Some(Fix::safe(title, vec![edit]))
    }

    /// The tuple that replaces Django's own join: `lookup`, and the keys the changelist reads
    /// that the bare `select_related()` it replaces joined.
    fn new_tuple(
        &self,
        sem: &Semantics<'a>,
        lookup: &str,
        quoted: &dyn Fn(&str) -> String,
    ) -> String {
        let mut lookups: Vec<String> = Vec::new();
        if matches!(self.joins, Joins::NonNullKeys) {
            for keys in self.key_reads(sem) {
                if self.joins(sem, &keys) {
                    let joined = keys.join("__");
                    if !lookups.contains(&joined) {
                        lookups.push(joined);
                    }
                }
            }
        }
        lookups.push(lookup.to_string());
        // `author` goes when `author__country` joins it too.
        let kept: Vec<String> = lookups
            .iter()
            .filter(|l| {
                !lookups
                    .iter()
                    .any(|other| other.starts_with(&format!("{l}__")))
            })
            .map(|l| quoted(l))
            .collect();
        match kept.as_slice() {
            [only] => format!("({only},)"),
            _ => format!("({})", kept.join(", ")),
        }
    }

    /// `prefetch_related(lookup)` chained to what `get_queryset()` returns, or a
    /// `get_queryset()` that does. Unsafe: it loads every related row of the page's rows.
    fn prefetch_fix(&self, cx: &RuleContext<'_, 'a>, lookup: &str) -> Option<Fix> {
        let sem = cx.sem;
        let quote = quote_style(sem, self.class);
        let literal = format!("{quote}{lookup}{quote}");
        let edit = match self.get_queryset {
            Some(returned) => add_argument(sem, returned, "prefetch_related", &literal),
            None => {
                let body = self.class.field(&field::BODY)?;
                let last = body.named_children(&mut body.walk()).last()?;
                let indent = indentation(sem.source, last)?;
                Edit::replace(
                    last.end_byte()..last.end_byte(),
                    format!(
                        "\n\n{indent}def get_queryset(self, request):\n{indent}    return super().get_queryset(request).prefetch_related({literal})"
                    ),
                )
            }
        };
        Some(Fix {
            title: format!(
                "Prefetch `{lookup}` in `{}.get_queryset()` (unsafe: loads every related row of the page at once)",
                self.admin_name
            ),
            applicability: Applicability::Unsafe,
            edits: vec![edit],
        })
    }
}

/// The read behind a finding in another place, for editors to show next to it.
fn related(cx: &RuleContext, file: &FileFacts, read: &ObjectRead, method: &str) -> Option<Related> {
    let path = file.path.clone().or_else(|| {
        cx.sem
            .index()
            .facts(&file.module)
            .and_then(|f| f.path.clone())
    })?;
    Some(Related {
        path,
        place: read.at.clone(),
        message: format!(
            "`{method}` reads `self.{}` of every row",
            read.path.join(".")
        ),
    })
}

/// The edit adding `literal` to the arguments of `call`.
fn add_to_arguments(call: Node, literal: &str) -> Option<Edit> {
    let arguments = call.field(&field::ARGUMENTS)?;
    let close = arguments.end_byte() - 1;
    let separator = if arguments.named_child_count() > 0 {
        ", "
    } else {
        ""
    };
    Some(Edit::replace(close..close, format!("{separator}{literal}")))
}

/// The edit adding `literal` to a tuple or list literal.
fn add_to_literal(sem: &Semantics, literal_node: Node, literal: &str) -> Option<Edit> {
    let mut cursor = literal_node.walk();
    let last = literal_node
        .named_children(&mut cursor)
        .filter(|c| c.kind_name() != "comment")
        .last();
    match last {
        // `("a",)` → `("a", "b")`
        Some(last) if last.next_sibling().is_some_and(|n| n.kind_name() == ",") => {
            let comma = last.next_sibling()?.end_byte();
            Some(Edit::replace(comma..comma, format!(" {literal}")))
        }
        Some(last) => Some(Edit::replace(
            last.end_byte()..last.end_byte(),
            format!(", {literal}"),
        )),
        None => {
            let replacement = if sem.text(literal_node).starts_with('[') {
                format!("[{literal}]")
            } else {
                format!("({literal},)")
            };
            Some(Edit::replace(literal_node.byte_range(), replacement))
        }
    }
}
