//! The rule registry. A rule is a tree-sitter query in `queries/<rule>.scm` that finds
//! candidates, and a `check` function that asks `infer` what the candidates are and reports.
//!
//! To add a rule: write `queries/ormNNN_name.scm` and `rules/ormNNN_name.rs` (a `RULE` with its
//! metadata and `check`), list it in `ALL` below, add `docs/rules/ORMNNN.md` and a fixture in
//! `tests/fixtures/rules/`.

mod orm101_len_queryset;
mod orm102_queryset_truthiness;
mod orm103_count_for_existence;
mod orm104_in_queryset;
mod orm105_count_after_evaluation;
mod orm106_exists_then_create;
mod orm201_single_field_iteration;
mod orm202_python_side_aggregate;
mod orm203_unused_columns;
mod orm204_iterator_for_large_scan;
mod orm205_deferred_field_access;
mod orm301_create_in_loop;
mod orm302_save_in_loop_constant;
mod orm303_save_in_loop_field_copy;
mod orm304_save_in_loop_computed;
mod orm305_delete_in_loop;
mod orm306_m2m_write_in_loop;
mod orm401_fk_id_through_relation;
mod orm402_n_plus_one_forward;
mod orm403_n_plus_one_reverse;
mod orm404_query_in_loop;
mod orm405_filter_on_prefetched;
mod orm406_prefetch_bypassed;
mod orm407_unconstrained_subquery;
mod orm408_loop_invariant_query;
mod orm409_count_per_row;
mod orm410_n_plus_one_template;
mod orm411_n_plus_one_serializer;
mod orm412_admin_list_n_plus_one;
pub mod orm900_unused_noqa;
mod save_in_loop;
mod view_queryset;

use std::sync::LazyLock;

use tree_sitter::{Node, Query, QueryCapture};

use super::diagnostic::{Diagnostic, Fix, Related, Severity};
use super::infer::Semantics;
use crate::settings::Settings;

/// Where each rule's documentation page is published.
pub const DOCS_BASE_URL: &str =
    "https://github.com/django-orm-lsp/django-orm-lsp/blob/main/docs/rules/";

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct RuleMeta {
    pub code: &'static str,
    pub name: &'static str,
    pub severity: Severity,
}

impl RuleMeta {
    pub fn docs_url(&self) -> String {
        format!("{DOCS_BASE_URL}{}.md", self.code)
    }
}

/// What a rule's `check` sees: the file's semantics, the settings, and where to report.
pub struct RuleContext<'c, 'a> {
    pub sem: &'c Semantics<'a>,
    pub settings: &'c Settings,
    pub rule: &'static RuleMeta,
    pub(super) out: &'c mut Vec<Diagnostic>,
}

impl RuleContext<'_, '_> {
    pub fn report(&mut self, node: Node, message: impl Into<String>, fix: Option<Fix>) {
        self.report_span(node.byte_range(), message, fix);
    }

    /// Reports a range that spans several nodes: a pattern of two statements, say.
    pub fn report_span(
        &mut self,
        range: std::ops::Range<usize>,
        message: impl Into<String>,
        fix: Option<Fix>,
    ) {
        self.out.push(Diagnostic {
            rule: self.rule,
            range,
            message: message.into(),
            severity: self.rule.severity,
            fix,
            related: Vec::new(),
        });
    }

    /// Reports with related information: other places that explain the finding.
    pub fn report_related(
        &mut self,
        node: Node,
        message: impl Into<String>,
        fix: Option<Fix>,
        related: Vec<Related>,
    ) {
        let message = message.into();
        // A QuerySet handed on twice (two serializer calls, two templates) is reported where it
        // is built: once.
        let repeated = self.out.iter().any(|d| {
            d.rule.code == self.rule.code && d.range == node.byte_range() && d.message == message
        });
        if repeated {
            return;
        }
        self.report(node, message, fix);
        if let Some(d) = self.out.last_mut() {
            d.related = related;
        }
    }
}

/// The captures of one query match, by name.
pub struct Captures<'m, 'a> {
    query: &'m Query,
    captures: &'m [QueryCapture<'a>],
}

impl<'a> Captures<'_, 'a> {
    pub fn get(&self, name: &str) -> Option<Node<'a>> {
        let index = self.query.capture_index_for_name(name)?;
        self.captures
            .iter()
            .find(|c| c.index == index)
            .map(|c| c.node)
    }
}

pub struct Rule {
    pub meta: &'static RuleMeta,
    pub query: &'static str,
    pub check: for<'c, 'a> fn(&mut RuleContext<'c, 'a>, &Captures<'c, 'a>),
}

pub static ALL: &[&Rule] = &[
    &orm101_len_queryset::RULE,
    &orm102_queryset_truthiness::RULE,
    &orm103_count_for_existence::RULE,
    &orm104_in_queryset::RULE,
    &orm105_count_after_evaluation::RULE,
    &orm106_exists_then_create::RULE,
    &orm201_single_field_iteration::RULE,
    &orm202_python_side_aggregate::RULE,
    &orm203_unused_columns::RULE,
    &orm204_iterator_for_large_scan::RULE,
    &orm205_deferred_field_access::RULE,
    &orm301_create_in_loop::RULE,
    &orm302_save_in_loop_constant::RULE,
    &orm303_save_in_loop_field_copy::RULE,
    &orm304_save_in_loop_computed::RULE,
    &orm305_delete_in_loop::RULE,
    &orm306_m2m_write_in_loop::RULE,
    &orm401_fk_id_through_relation::RULE,
    &orm402_n_plus_one_forward::RULE,
    &orm403_n_plus_one_reverse::RULE,
    &orm404_query_in_loop::RULE,
    &orm405_filter_on_prefetched::RULE,
    &orm406_prefetch_bypassed::RULE,
    &orm407_unconstrained_subquery::RULE,
    &orm408_loop_invariant_query::RULE,
    &orm409_count_per_row::RULE,
    &orm900_unused_noqa::RULE,
    &orm410_n_plus_one_template::RULE,
    &orm411_n_plus_one_serializer::RULE,
    &orm412_admin_list_n_plus_one::RULE,
];

/// The rules whose findings cost a query (or a write) per row: inside a loop over a QuerySet, a
/// template's or a serializer's rows, the number of queries grows with the data. Their default
/// severity is warning (every other rule's is info or hint, but ORM900's, which is about the
/// suppression comments), and they are the rules reported in data migrations by default, where
/// the loop runs over whole tables at deploy time.
pub const PER_ROW: &[&str] = &[
    "ORM205", "ORM301", "ORM302", "ORM303", "ORM304", "ORM305", "ORM306", "ORM401", "ORM402",
    "ORM403", "ORM404", "ORM405", "ORM406", "ORM409", "ORM410", "ORM411", "ORM412",
];

pub fn by_code(code: &str) -> Option<&'static Rule> {
    ALL.iter()
        .copied()
        .find(|r| r.meta.code.eq_ignore_ascii_case(code))
}

/// Every rule's patterns compiled into two queries, so that one pass over a statement finds the
/// candidates of all rules. Patterns that can only matter inside a loop (a query file that says
/// `; within: loops`: its rule is silent anywhere but in the body of a `for` statement or a
/// comprehension) go into `loop_query`, which runs only over the outermost loops the first pass
/// found. Those are the patterns that match almost every attribute read of a file.
pub struct Registry {
    pub rules: Vec<&'static Rule>,
    pub query: Query,
    pub loop_query: Query,
    /// Which rule each pattern of `query` belongs to; `None` for the pattern that finds loops.
    owner: Vec<Option<usize>>,
    loop_owner: Vec<usize>,
}

/// The directive in a rule's query file that puts its patterns in `Registry::loop_query`.
const WITHIN_LOOPS: &str = "; within: loops";

/// The first pass's own pattern: the loops whose ranges the second pass searches.
const LOOPS: &str = "[(for_statement) (list_comprehension) (set_comprehension) (dictionary_comprehension) (generator_expression)] @loop\n";

impl Registry {
    pub fn new(rules: &[&'static Rule]) -> Self {
        let (mut file_rules, mut loop_rules) = (Vec::new(), Vec::new());
        for (i, rule) in rules.iter().enumerate() {
            if rule.query.lines().any(|l| l.trim() == WITHIN_LOOPS) {
                loop_rules.push(i);
            } else {
                file_rules.push(i);
            }
        }
        let (query, owner) = compile(rules, &file_rules, LOOPS);
        let (loop_query, loop_owner) = compile(rules, &loop_rules, "");
        Self {
            rules: rules.to_vec(),
            query,
            loop_query,
            owner,
            loop_owner: loop_owner
                .into_iter()
                .map(|o| o.expect("no loop pattern"))
                .collect(),
        }
    }

    /// The rule a match of `query` belongs to, `None` for a loop.
    pub fn rule_for_pattern(&self, pattern: usize) -> Option<&'static Rule> {
        self.owner[pattern].map(|i| self.rules[i])
    }

    pub fn rule_for_loop_pattern(&self, pattern: usize) -> &'static Rule {
        self.rules[self.loop_owner[pattern]]
    }

    pub fn captures<'m, 'a>(
        &'m self,
        query: &'m Query,
        captures: &'m [QueryCapture<'a>],
    ) -> Captures<'m, 'a> {
        Captures { query, captures }
    }
}

/// `prelude` and the queries of `rules[chosen]` as one query, and the rule each pattern came
/// from (`None` for the prelude's). Compiled once: a query's analysis is the slow part.
fn compile(
    rules: &[&'static Rule],
    chosen: &[usize],
    prelude: &str,
) -> (Query, Vec<Option<usize>>) {
    let language = tree_sitter_python::LANGUAGE.into();
    let mut source = String::from(prelude);
    let mut starts = vec![(0, None)];
    for &i in chosen {
        starts.push((source.len(), Some(i)));
        source.push_str(rules[i].query);
        source.push('\n');
    }
    let rule_at = |offset: usize| starts[starts.partition_point(|(s, _)| *s <= offset) - 1].1;
    let query = Query::new(&language, &source).unwrap_or_else(|e| {
        let code = rule_at(e.offset).map_or("the loop finder", |i| rules[i].meta.code);
        panic!("query of {code} does not compile: {e}")
    });
    let owner = (0..query.pattern_count())
        .map(|p| rule_at(query.start_byte_for_pattern(p)))
        .collect();
    (query, owner)
}

pub static REGISTRY: LazyLock<Registry> = LazyLock::new(|| Registry::new(ALL));

#[cfg(test)]
mod tests {
    use super::*;

    /// A warning means a query per row; a rule that changes its default severity changes
    /// what `migrations = "per-row"` reports too, so both are decided together here.
    #[test]
    fn warnings_are_the_per_row_rules_and_unused_noqa() {
        for rule in ALL {
            let code = rule.meta.code;
            let per_row = PER_ROW.contains(&code);
            let warning = rule.meta.severity == Severity::Warning;
            assert_eq!(
                warning,
                per_row || code == orm900_unused_noqa::RULE.meta.code,
                "{code}"
            );
        }
        assert!(PER_ROW.iter().all(|code| by_code(code).is_some()));
    }
}
