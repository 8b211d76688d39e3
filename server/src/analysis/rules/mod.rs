//! The rule registry. A rule is a tree-sitter query in `queries/<rule>.scm` that finds
//! candidates (matched by `patterns.rs`, which reads the subset of the query language the rules
//! use), and a `check` function that asks `infer` what the candidates are and reports.
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

use tree_sitter::Node;

use super::diagnostic::{Diagnostic, Fix, Related, Severity};
use super::infer::Semantics;
use super::patterns::{Bound, Patterns};
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

/// The captures of one pattern match, by name.
pub struct Captures<'m, 'a> {
    patterns: &'m Patterns,
    bound: &'m Bound<'a>,
}

impl<'a> Captures<'_, 'a> {
    pub fn get(&self, name: &str) -> Option<Node<'a>> {
        let index = self.patterns.capture_index(name)?;
        self.bound
            .iter()
            .find(|(i, _)| *i == index)
            .map(|(_, node)| *node)
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

/// Every rule's patterns compiled into two sets (`patterns.rs`), so that one pass over a
/// statement finds the candidates of all rules. Patterns that can only matter inside a loop (a
/// query file that says `; within: loops`: its rule is silent anywhere but in the body of a `for`
/// statement or a comprehension) go into `loop_patterns`, which run only over the outermost
/// loops the first pass found. Those are the patterns that match almost every attribute read of
/// a file.
pub struct Registry {
    pub rules: Vec<&'static Rule>,
    pub patterns: Patterns,
    pub loop_patterns: Patterns,
    /// Which rule each of `patterns` belongs to; `None` for the pattern that finds loops.
    owner: Vec<Option<usize>>,
    loop_owner: Vec<usize>,
}

/// The directive in a rule's query file that puts its patterns in `Registry::loop_patterns`.
const WITHIN_LOOPS: &str = "; within: loops";

/// The first pass's own pattern: the loops whose ranges the second pass searches.
const LOOPS: &str = "[(for_statement) (list_comprehension) (set_comprehension) (dictionary_comprehension) (generator_expression)] @loop\n";

impl Registry {
    pub fn new(rules: &[&'static Rule]) -> Self {
        let [file_source, loop_source] = sources(rules);
        let (patterns, owner) = compile(rules, &file_source);
        let (loop_patterns, loop_owner) = compile(rules, &loop_source);
        Self {
            rules: rules.to_vec(),
            patterns,
            loop_patterns,
            owner,
            loop_owner: loop_owner
                .into_iter()
                .map(|o| o.expect("no loop pattern"))
                .collect(),
        }
    }

    /// The rule a match of `patterns` belongs to, `None` for a loop.
    pub fn rule_for_pattern(&self, pattern: usize) -> Option<&'static Rule> {
        self.owner[pattern].map(|i| self.rules[i])
    }

    pub fn rule_for_loop_pattern(&self, pattern: usize) -> &'static Rule {
        self.rules[self.loop_owner[pattern]]
    }

    pub fn captures<'m, 'a>(
        &'m self,
        patterns: &'m Patterns,
        bound: &'m Bound<'a>,
    ) -> Captures<'m, 'a> {
        Captures { patterns, bound }
    }
}

/// The source of a set of patterns, and where each rule's part of it starts (`None`: the
/// loop finder's).
type Source = (String, Vec<(usize, Option<usize>)>);

/// The two sets' sources: the loop finder and the patterns of rules that may match anywhere;
/// the patterns of rules silent outside loops.
fn sources(rules: &[&'static Rule]) -> [Source; 2] {
    let mut sets = [
        (String::from(LOOPS), vec![(0, None)]),
        (String::new(), vec![]),
    ];
    for (i, rule) in rules.iter().enumerate() {
        let within_loops = rule.query.lines().any(|l| l.trim() == WITHIN_LOOPS);
        let (source, starts) = &mut sets[usize::from(within_loops)];
        starts.push((source.len(), Some(i)));
        source.push_str(rule.query);
        source.push('\n');
    }
    sets
}

/// A set's patterns, and the rule each pattern came from.
fn compile(rules: &[&'static Rule], (source, starts): &Source) -> (Patterns, Vec<Option<usize>>) {
    let rule_at = |offset: usize| starts[starts.partition_point(|(s, _)| *s <= offset) - 1].1;
    let patterns = Patterns::new(source).unwrap_or_else(|refused| {
        let code = rule_at(refused.at).map_or("the loop finder", |i| rules[i].meta.code);
        panic!("the patterns of {code}: {}", refused.what)
    });
    let owner = (0..patterns.pattern_count())
        .map(|p| rule_at(patterns.start_byte(p)))
        .collect();
    (patterns, owner)
}

pub static REGISTRY: LazyLock<Registry> = LazyLock::new(|| Registry::new(ALL));

#[cfg(test)]
mod tests {
    use super::*;
    use tree_sitter::{Query, QueryCursor, StreamingIterator, Tree};

    /// Each match as (pattern, its captures by name and node), sorted: the order of matches is
    /// not part of what a pattern means.
    type Listed = Vec<(usize, Vec<(String, usize)>)>;

    fn tree_sitters_matches(query: &Query, tree: &Tree, source: &str) -> Listed {
        let mut cursor = QueryCursor::new();
        let mut matches = cursor.matches(query, tree.root_node(), source.as_bytes());
        let mut listed = Vec::new();
        while let Some(m) = matches.next() {
            let mut captures: Vec<(String, usize)> = m
                .captures
                .iter()
                .map(|c| {
                    (
                        query.capture_names()[c.index as usize].to_string(),
                        c.node.id(),
                    )
                })
                .collect();
            captures.sort();
            listed.push((m.pattern_index, captures));
        }
        listed.sort();
        listed
    }

    fn our_matches(patterns: &Patterns, tree: &Tree, source: &str) -> Listed {
        let mut listed = Vec::new();
        patterns.for_each_match(tree.root_node(), source, None, |pattern, bound| {
            let mut captures: Vec<(String, usize)> = bound
                .iter()
                .map(|(i, node)| (patterns.capture_name(*i).to_string(), node.id()))
                .collect();
            captures.sort();
            listed.push((pattern, captures));
        });
        listed.sort();
        listed
    }

    /// The rules' patterns are matched by `patterns.rs`, not by tree-sitter; they must match
    /// exactly what tree-sitter would, on every fixture, whole and cut short at a few places
    /// (cut text leaves error nodes and missing ones, as typing does).
    #[test]
    fn patterns_match_what_tree_sitter_matches() {
        let language = tree_sitter_python::LANGUAGE.into();
        let sets: Vec<(Query, Patterns)> = sources(ALL)
            .iter()
            .map(|(source, _)| {
                (
                    Query::new(&language, source).expect("tree-sitter compiles the patterns"),
                    Patterns::new(source).expect("the patterns are in the subset"),
                )
            })
            .collect();
        let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures");
        let mut files = vec![fixtures];
        let (mut compared, mut matched) = (0, 0);
        while let Some(path) = files.pop() {
            if path.is_dir() {
                files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
                continue;
            }
            if path.extension().is_none_or(|e| e != "py") {
                continue;
            }
            let whole = std::fs::read_to_string(&path).unwrap();
            let cuts = [
                whole.len(),
                whole.len() / 3,
                whole.len() / 2 + 7,
                whole.len() * 4 / 5,
            ];
            for cut in cuts {
                let source = &whole[..whole.floor_char_boundary(cut)];
                let tree = crate::store::parse_python(source).unwrap();
                for (query, patterns) in &sets {
                    let expected = tree_sitters_matches(query, &tree, source);
                    assert_eq!(
                        our_matches(patterns, &tree, source),
                        expected,
                        "{} cut at byte {cut}",
                        path.display()
                    );
                    compared += 1;
                    matched += expected.len();
                }
            }
        }
        assert!(
            compared > 100 && matched > 1000,
            "{compared} trees, {matched} matches"
        );
    }

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
