//! Applying every safe fix of a file, as `source.fixAll` (and later `check --fix`) does.

use super::{apply_edits, lint, Edit, FileContext};
use crate::settings::Settings;
use crate::store::parse_python;

/// Fixes may overlap (a fix can only be computed on the text another produces), so rounds of
/// lint-and-apply repeat until nothing safe is left; this bounds them.
const MAX_ROUNDS: usize = 8;

/// The text with every safe fix applied, or `None` if there is nothing to fix. A round whose
/// result would not parse as well as its input is discarded and ends the process.
pub fn fix_all(source: &str, settings: &Settings, file: &FileContext) -> Option<String> {
    let mut text = source.to_string();
    for _ in 0..MAX_ROUNDS {
        let tree = parse_python(&text)?;
        let mut edits: Vec<Edit> = Vec::new();
        let mut taken_until = 0;
        let mut fixes: Vec<_> = lint(&text, &tree, settings, file)
            .into_iter()
            .filter_map(|d| d.fix)
            .filter(|f| f.is_safe())
            .collect();
        fixes.sort_by_key(|f| f.span().map(|s| s.start));
        for fix in fixes {
            let Some(span) = fix.span() else { continue };
            if span.start < taken_until {
                continue;
            }
            taken_until = span.end.max(span.start + 1);
            edits.extend(fix.edits);
        }
        if edits.is_empty() {
            break;
        }
        let next = apply_edits(&text, &edits)?;
        let errors =
            |t: &str| parse_python(t).map_or(usize::MAX, |tree| count_errors(tree.root_node()));
        if errors(&next) > errors(&text) {
            break;
        }
        text = next;
    }
    (text != source).then_some(text)
}

fn count_errors(root: tree_sitter::Node) -> usize {
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
    use super::*;

    #[test]
    fn applies_every_safe_fix_including_ones_revealed_by_earlier_fixes() {
        let source =
            "def f(blog):\n    if len(Entry.objects.filter(blog=blog)) > 0:\n        return 1\n";
        let file = FileContext::standalone();
        let fixed = fix_all(source, &Settings::default(), &file).unwrap();
        // len() -> count() first, then count() > 0 -> exists() on the next round.
        assert_eq!(
            fixed,
            "def f(blog):\n    if Entry.objects.filter(blog=blog).exists():\n        return 1\n"
        );
        assert_eq!(fix_all(&fixed, &Settings::default(), &file), None);
    }
}
