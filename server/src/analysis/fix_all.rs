//! Applying every fix of a file at once: `source.fixAll` in the editor and `check --fix`.

use super::{apply_edits, lint, Diagnostic, Edit, FileContext, Fix};
use crate::settings::Settings;
use crate::store::parse_python;

/// Fixes may overlap (a fix can only be computed on the text another produces), so rounds of
/// lint-and-apply repeat until nothing fixable is left; this bounds them.
const MAX_ROUNDS: usize = 10;

/// Which fixes a fix-all applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum FixMode {
    /// Only fixes that keep the program's meaning (the editor's fix-all, `check --fix`).
    #[default]
    Safe,
    /// Unsafe fixes too (`check --fix --unsafe-fixes`).
    SafeAndUnsafe,
}

impl FixMode {
    pub fn applies(self, fix: &super::Fix) -> bool {
        fix.is_safe() || self == FixMode::SafeAndUnsafe
    }
}

/// The outcome of a fix-all that changed something.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fixed {
    pub text: String,
    /// How many findings' fixes were applied, over every round.
    pub applied: usize,
}

/// The text with every safe fix applied, or `None` if there is nothing to fix. A fix whose
/// result would not parse as well as its input is left out.
pub fn fix_all(source: &str, settings: &Settings, file: &FileContext) -> Option<String> {
    fix_all_with(source, settings, file, FixMode::Safe).map(|f| f.text)
}

/// Every fix `mode` allows applied, round after round, or `None` if nothing changed.
pub fn fix_all_with(
    source: &str,
    settings: &Settings,
    file: &FileContext,
    mode: FixMode,
) -> Option<Fixed> {
    fix_rounds(source, mode, |text, tree| lint(text, tree, settings, file))
}

/// The fix-all loop over any source of findings (tests give it fixes no rule would make).
fn fix_rounds(
    source: &str,
    mode: FixMode,
    mut findings: impl FnMut(&str, &tree_sitter::Tree) -> Vec<Diagnostic>,
) -> Option<Fixed> {
    let errors =
        |t: &str| parse_python(t).map_or(usize::MAX, |tree| count_errors(tree.root_node()));
    let mut text = source.to_string();
    let mut applied = 0;
    for _ in 0..MAX_ROUNDS {
        let Some(tree) = parse_python(&text) else {
            break;
        };
        let mut taken_until = 0;
        let mut fixes: Vec<_> = findings(&text, &tree)
            .into_iter()
            .filter_map(|d| d.fix)
            .filter(|f| mode.applies(f))
            .collect();
        fixes.sort_by_key(|f| f.span().map(|s| s.start));
        // One fix per region per round: overlapping ones wait for the next round's findings.
        let mut chosen: Vec<Fix> = Vec::new();
        for fix in fixes {
            let Some(span) = fix.span() else { continue };
            if span.start < taken_until {
                continue;
            }
            taken_until = span.end.max(span.start + 1);
            chosen.push(fix);
        }
        if chosen.is_empty() {
            break;
        }
        let errors_before = count_errors(tree.root_node());
        // New ERROR or MISSING nodes: some fix would break the code. Keep only the fixes that
        // are harmless on their own and try those together; if even that fails, stop here.
        let mut next = apply_all(&text, &chosen).filter(|t| errors(t) <= errors_before);
        if next.is_none() {
            chosen.retain(|fix| {
                apply_edits(&text, &fix.edits).is_some_and(|t| errors(&t) <= errors_before)
            });
            next = apply_all(&text, &chosen).filter(|t| errors(t) <= errors_before);
        }
        let Some(next) = next.filter(|_| !chosen.is_empty()) else {
            break;
        };
        text = next;
        applied += chosen.len();
    }
    (text != source).then_some(Fixed { text, applied })
}

fn apply_all(text: &str, fixes: &[Fix]) -> Option<String> {
    let edits: Vec<Edit> = fixes.iter().flat_map(|f| f.edits.iter().cloned()).collect();
    apply_edits(text, &edits)
}

/// The ERROR and MISSING nodes under `root`: a rewrite must not add any.
pub(crate) fn count_errors(root: tree_sitter::Node) -> usize {
    let mut count = 0;
    super::syntax::walk(root, |n| {
        if n.is_error() || n.is_missing() {
            count += 1;
        }
        n.has_error()
    });
    count
}

#[cfg(test)]
mod tests {
    use super::super::{rules, Severity};
    use super::*;

    #[test]
    fn applies_every_safe_fix_including_ones_revealed_by_earlier_fixes() {
        let source =
            "def f(blog):\n    if len(Entry.objects.filter(blog=blog)) > 0:\n        return 1\n";
        let file = FileContext::standalone();
        let fixed = fix_all_with(source, &Settings::default(), &file, FixMode::Safe).unwrap();
        // len() -> count() first, then count() > 0 -> exists() on the next round.
        assert_eq!(
            fixed.text,
            "def f(blog):\n    if Entry.objects.filter(blog=blog).exists():\n        return 1\n"
        );
        assert_eq!(fixed.applied, 2);
        assert_eq!(fix_all(&fixed.text, &Settings::default(), &file), None);
    }

    fn finding(fix: Fix) -> Diagnostic {
        Diagnostic {
            rule: rules::ALL[0].meta,
            range: fix.span().unwrap(),
            message: String::new(),
            severity: Severity::Warning,
            fix: Some(fix),
        }
    }

    #[test]
    fn unsafe_fixes_only_when_asked_and_never_a_fix_that_breaks_the_syntax() {
        let source = "x = a\ny = b\n";
        let fixes = |text: &str, _: &tree_sitter::Tree| {
            let mut out = Vec::new();
            if let Some(at) = text.find("= a") {
                let mut fix = Fix::safe("a -> c", vec![Edit::replace(at + 2..at + 3, "c")]);
                fix.applicability = super::super::Applicability::Unsafe;
                out.push(finding(fix));
            }
            out
        };
        assert_eq!(fix_rounds(source, FixMode::Safe, fixes), None);
        let fixed = fix_rounds(source, FixMode::SafeAndUnsafe, fixes).unwrap();
        assert_eq!((fixed.text.as_str(), fixed.applied), ("x = c\ny = b\n", 1));

        // A fix whose result has a new syntax error is not applied.
        let breaking = |text: &str, _: &tree_sitter::Tree| {
            let at = text.find("= b").unwrap();
            vec![finding(Fix::safe(
                "b -> (",
                vec![Edit::replace(at + 2..at + 3, "(")],
            ))]
        };
        assert_eq!(fix_rounds(source, FixMode::Safe, breaking), None);

        // Beside a good fix in the same round, the breaking one is dropped, the good one kept.
        let mixed = |text: &str, tree: &tree_sitter::Tree| {
            let mut out = breaking(text, tree);
            if let Some(at) = text.find("= a") {
                out.push(finding(Fix::safe(
                    "a -> c",
                    vec![Edit::replace(at + 2..at + 3, "c")],
                )));
            }
            out
        };
        let fixed = fix_rounds(source, FixMode::Safe, mixed).unwrap();
        assert_eq!((fixed.text.as_str(), fixed.applied), ("x = c\ny = b\n", 1));
    }
}
