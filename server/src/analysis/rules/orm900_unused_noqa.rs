//! ORM900 unused-noqa: a `# noqa: ORMxxx` (or `# orm: ignore[ORMxxx]`) code that silences
//! nothing on its line. It has no query: it needs every other rule's findings on the file, so
//! the linter runs `check` once they are known and before they are filtered by suppressions.

use rustc_hash::FxHashSet;
use tree_sitter::Tree;

use super::{by_code, Captures, Rule, RuleContext, RuleMeta};
use crate::analysis::diagnostic::{Diagnostic, Fix, Severity};
use crate::analysis::noqa;
use crate::settings::Settings;

pub static RULE: Rule = Rule {
    meta: &RuleMeta {
        code: "ORM900",
        name: "unused-noqa",
        severity: Severity::Warning,
    },
    query: "",
    check: |_: &mut RuleContext, _: &Captures| {},
};

/// The unused codes of every suppression comment in `source`. `used` holds (comment start,
/// code) for each finding a comment silenced. Codes that are not this tool's (`E501`), codes of
/// rules the settings turn off for this file (their noqa may matter again once they are on),
/// codes of rules this version does not know, ORM900 itself and bare `# noqa` are left alone.
pub fn check(
    source: &str,
    tree: &Tree,
    settings: &Settings,
    used: &FxHashSet<(usize, &'static str)>,
) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let mut comments: Vec<(usize, &str)> = suppression_words(source)
        .into_iter()
        .filter_map(|at| {
            let (start, text) = noqa::line_comment(source, tree, at)?;
            (start <= at && at < start + text.len()).then_some((start, text))
        })
        .collect();
    comments.sort_by_key(|c| c.0);
    comments.dedup_by_key(|c| c.0);
    for (start, text) in comments {
        // A bare `# noqa` names nothing that could be unused; `# noqa: ..., ORM900` silences
        // this rule on its line like any other.
        if noqa::parse(text).is_some_and(|s| s.covers(RULE.meta.code)) {
            continue;
        }
        for directive in noqa::directives(text) {
            let unused: Vec<&'static str> = directive
                .codes
                .iter()
                .filter_map(|(code, _)| by_code(code))
                .map(|rule| rule.meta.code)
                .filter(|code| {
                    *code != RULE.meta.code
                        && settings.is_enabled(code)
                        && !used.contains(&(start, *code))
                })
                .collect();
            if unused.is_empty() {
                continue;
            }
            let edit = noqa::removal_edit(source, start, text, &directive, &unused);
            let all_go = unused.len() == directive.codes.len();
            let listed = unused
                .iter()
                .map(|c| format!("`{c}`"))
                .collect::<Vec<_>>()
                .join(", ");
            let (verb, pronoun) = if unused.len() == 1 {
                ("is", "it")
            } else {
                ("are", "them")
            };
            let message = format!(
                "{listed} {verb} suppressed on this line but nothing here is reported for {pronoun}; remove {pronoun}"
            );
            let title = if all_go {
                "Remove the unused suppression".to_string()
            } else {
                format!("Remove {listed} from the suppression comment")
            };
            out.push(Diagnostic {
                rule: RULE.meta,
                range: start + directive.range.start..start + directive.range.end,
                message,
                severity: RULE.meta.severity,
                fix: Some(Fix::safe(title, vec![edit])),
                related: Vec::new(),
            });
        }
    }
    out
}

/// Where `noqa` or `orm: ignore[` (in any case) follows a `#` on its line: the candidates for
/// suppression comments. This runs on every keystroke over the whole file, so it looks for `#`
/// (memchr) rather than for the words through a lowercased copy of the text.
fn suppression_words(source: &str) -> Vec<usize> {
    let bytes = source.as_bytes();
    let mut found = Vec::new();
    let mut next_line = 0;
    for hash in memchr::memchr_iter(b'#', bytes) {
        if hash < next_line {
            continue;
        }
        let end = memchr::memchr2(b'\n', b'\r', &bytes[hash..]).map_or(bytes.len(), |i| hash + i);
        next_line = end;
        let rest = &bytes[hash..end];
        for word in noqa::SUPPRESSION_WORDS {
            found.extend(
                rest.windows(word.len())
                    .enumerate()
                    .filter(|(_, w)| w.eq_ignore_ascii_case(word))
                    .map(|(i, _)| hash + i),
            );
        }
    }
    found
}
