//! Applying every fix of a file at once: `source.fixAll` in the editor and `check --fix`.

use std::ops::Range;

use super::{apply_edits, lint, Diagnostic, Edit, FileContext, Fix};
use crate::analysis::syntax::KindOf;
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
    fix_rounds(source, mode, None, |text, tree| {
        lint(text, tree, settings, file)
    })
}

/// Every safe fix of the findings inside `region` (a loop, say) applied, round after round,
/// following the region as fixes move and resize it; `None` if nothing changed. The fixes may
/// edit outside the region (an import, the QuerySet where it is built).
pub fn fix_region(
    source: &str,
    settings: &Settings,
    file: &FileContext,
    region: Range<usize>,
) -> Option<Fixed> {
    fix_rounds(source, FixMode::Safe, Some(region), |text, tree| {
        lint(text, tree, settings, file)
    })
}

/// The outermost `for` loop of its function or module around `offset`: the region a "rewrite
/// this loop" action fixes.
pub fn loop_around(tree: &tree_sitter::Tree, offset: usize) -> Option<Range<usize>> {
    let mut node = tree.root_node().descendant_for_byte_range(offset, offset)?;
    let mut outermost = None;
    loop {
        match node.kind_name() {
            "for_statement" => outermost = Some(node.byte_range()),
            "function_definition" | "class_definition" | "lambda" => break,
            _ => {}
        }
        match node.parent() {
            Some(parent) => node = parent,
            None => break,
        }
    }
    outermost
}

/// `region` after `edits` (sorted, not overlapping) were applied to the text it lies in.
fn moved(mut region: Range<usize>, edits: &[&Edit]) -> Range<usize> {
    let (mut start_shift, mut end_shift) = (0isize, 0isize);
    for edit in edits {
        let delta = edit.content.len() as isize - edit.range.len() as isize;
        if edit.range.end <= region.start {
            start_shift += delta;
            end_shift += delta;
        } else if edit.range.start < region.end {
            if edit.range.start < region.start {
                region.start = edit.range.start;
            }
            end_shift += delta;
        }
    }
    region.start.wrapping_add_signed(start_shift)..region.end.wrapping_add_signed(end_shift)
}

/// The fix-all loop over any source of findings (tests give it fixes no rule would make).
fn fix_rounds(
    source: &str,
    mode: FixMode,
    mut region: Option<Range<usize>>,
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
            .filter(|d| {
                region
                    .as_ref()
                    .is_none_or(|r| r.start <= d.range.start && d.range.end <= r.end)
            })
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
        if let Some(r) = region.take() {
            let mut edits: Vec<&Edit> = chosen.iter().flat_map(|f| &f.edits).collect();
            edits.sort_by_key(|e| e.range.start);
            region = Some(moved(r, &edits));
        }
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

    #[test]
    fn fixes_one_loop_and_follows_it_as_the_file_changes() {
        let source = "from blog.models import Entry\n\ndef f():\n    if len(Entry.objects.all()):\n        pass\n    for e in Entry.objects.filter(a=1):\n        print(len(Entry.objects.all()), bool(Entry.objects.all()))\n";
        let tree = parse_python(source).unwrap();
        let at = source.find("print").unwrap();
        let region = loop_around(&tree, at).unwrap();
        assert!(source[region.clone()].starts_with("for e in"));
        let file = FileContext::standalone();
        let fixed = fix_region(source, &Settings::default(), &file, region).unwrap();
        // The loop's two findings are fixed; the one above it is not.
        assert_eq!(fixed.applied, 2);
        assert!(fixed.text.contains("if len(Entry.objects.all()):"));
        assert!(fixed
            .text
            .contains("print(Entry.objects.all().count(), Entry.objects.all().exists())"));
    }

    fn finding(fix: Fix) -> Diagnostic {
        Diagnostic {
            rule: rules::ALL[0].meta,
            range: fix.span().unwrap(),
            message: String::new(),
            severity: Severity::Warning,
            fix: Some(fix),
            related: Vec::new(),
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
        assert_eq!(fix_rounds(source, FixMode::Safe, None, fixes), None);
        let fixed = fix_rounds(source, FixMode::SafeAndUnsafe, None, fixes).unwrap();
        assert_eq!((fixed.text.as_str(), fixed.applied), ("x = c\ny = b\n", 1));

        // A fix whose result has a new syntax error is not applied.
        let breaking = |text: &str, _: &tree_sitter::Tree| {
            let at = text.find("= b").unwrap();
            vec![finding(Fix::safe(
                "b -> (",
                vec![Edit::replace(at + 2..at + 3, "(")],
            ))]
        };
        assert_eq!(fix_rounds(source, FixMode::Safe, None, breaking), None);

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
        let fixed = fix_rounds(source, FixMode::Safe, None, mixed).unwrap();
        assert_eq!((fixed.text.as_str(), fixed.applied), ("x = c\ny = b\n", 1));
    }
}
