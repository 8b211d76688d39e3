//! Suppression comments on the reported line: `# noqa` (every rule), `# noqa: ORM101, ORM102`,
//! and the alias `# orm: ignore[ORM101]`. Codes of other tools in the same comment are ignored.

use tree_sitter::Tree;

/// What a line's comment suppresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Suppression {
    All,
    Codes(Vec<String>),
}

impl Suppression {
    pub fn covers(&self, code: &str) -> bool {
        match self {
            Suppression::All => true,
            Suppression::Codes(codes) => codes.iter().any(|c| c.eq_ignore_ascii_case(code)),
        }
    }
}

/// Parses the suppression in one comment's text (starting at `#`).
pub fn parse(comment: &str) -> Option<Suppression> {
    let mut codes = Vec::new();
    let mut all = false;
    let lower = comment.to_ascii_lowercase();
    let mut search = 0;
    while let Some(found) = lower[search..].find("noqa") {
        let at = search + found;
        search = at + 4;
        // Only `# noqa` counts, not e.g. "mynoqa": the word follows a `#` and spaces.
        if !lower[..at].trim_end().ends_with('#') {
            continue;
        }
        let rest = comment[at + 4..].trim_start();
        match rest.strip_prefix(':') {
            Some(list) => codes.extend(code_list(list)),
            None => all = true,
        }
    }
    let mut search = 0;
    while let Some(found) = lower[search..].find("orm: ignore[") {
        let at = search + found + "orm: ignore[".len();
        search = at;
        if let Some(end) = comment[at..].find(']') {
            codes.extend(code_list(&comment[at..at + end]));
        }
    }
    if all {
        Some(Suppression::All)
    } else if codes.is_empty() {
        None
    } else {
        Some(Suppression::Codes(codes))
    }
}

/// `ORM101, E501 ORM102` -> the codes, stopping at the first word that is not a code.
fn code_list(list: &str) -> Vec<String> {
    list.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|w| !w.is_empty())
        .take_while(|w| {
            w.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                && w.chars().all(|c| c.is_ascii_alphanumeric())
        })
        .map(str::to_ascii_uppercase)
        .collect()
}

/// The comment that ends the line containing byte `offset`, if any, as (start byte, text).
pub fn line_comment<'s>(source: &'s str, tree: &Tree, offset: usize) -> Option<(usize, &'s str)> {
    let line_start = source[..offset.min(source.len())]
        .rfind(['\n', '\r'])
        .map_or(0, |i| i + 1);
    let line_end = source[line_start..]
        .find(['\n', '\r'])
        .map_or(source.len(), |i| line_start + i);
    let line = &source[line_start..line_end];
    for (i, _) in line.match_indices('#') {
        let at = line_start + i;
        let node = tree.root_node().descendant_for_byte_range(at, at + 1)?;
        if node.kind() == "comment" && node.start_byte() == at {
            return Some((at, &source[at..line_end.min(node.end_byte())]));
        }
    }
    None
}

/// The suppression on the line of byte `offset`.
pub fn suppression_at(source: &str, tree: &Tree, offset: usize) -> Option<Suppression> {
    line_comment(source, tree, offset).and_then(|(_, text)| parse(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_noqa_forms() {
        assert_eq!(parse("# noqa"), Some(Suppression::All));
        assert_eq!(parse("# NOQA"), Some(Suppression::All));
        assert_eq!(
            parse("# noqa: ORM101, e501"),
            Some(Suppression::Codes(vec!["ORM101".into(), "E501".into()]))
        );
        assert_eq!(
            parse("# noqa:ORM101 because"),
            Some(Suppression::Codes(vec!["ORM101".into(), "BECAUSE".into()]))
        );
        assert_eq!(
            parse("# comment  # noqa: ORM102"),
            Some(Suppression::Codes(vec!["ORM102".into()]))
        );
        assert_eq!(
            parse("# orm: ignore[ORM104]"),
            Some(Suppression::Codes(vec!["ORM104".into()]))
        );
        assert_eq!(parse("# a mynoqa thing"), None);
        assert_eq!(parse("# todo"), None);
    }
}
