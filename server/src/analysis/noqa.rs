//! Suppression comments on the reported line: `# noqa` (every rule), `# noqa: ORM101, ORM102`,
//! and the alias `# orm: ignore[ORM101]`. Codes of other tools in the same comment are ignored.

use tree_sitter::Tree;

use crate::analysis::syntax::KindOf;

/// The words a suppression starts with (`noqa`, `orm: ignore[`), matched in any case: a comment
/// without them suppresses nothing and is no concern of ORM900.
pub const SUPPRESSION_WORDS: [&[u8]; 2] = [b"noqa", b"orm: ignore["];

/// Whether `comment`'s text holds a suppression word.
pub fn may_suppress(comment: &[u8]) -> bool {
    SUPPRESSION_WORDS.iter().any(|word| {
        comment
            .windows(word.len())
            .any(|w| w.eq_ignore_ascii_case(word))
    })
}

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

/// `ORM101`, `E501`: letters, then digits.
fn is_code(word: &str) -> bool {
    let digits = word.trim_start_matches(|c: char| c.is_ascii_alphabetic());
    digits.len() < word.len() && !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit())
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
        if node.kind_name() == "comment" && node.start_byte() == at {
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

/// The edit that silences `code` on the line of byte `offset`: `  # noqa: CODE` at the end of
/// the line, or `, CODE` added to the line's existing `# noqa: ...` list. `None` where no comment
/// can go: the line continues with a backslash or ends inside a string.
pub fn suppression_edit(
    source: &str,
    tree: &Tree,
    offset: usize,
    code: &str,
) -> Option<super::Edit> {
    let line_start = source[..offset.min(source.len())]
        .rfind(['\n', '\r'])
        .map_or(0, |i| i + 1);
    let line_end = source[line_start..]
        .find(['\n', '\r'])
        .map_or(source.len(), |i| line_start + i);
    if let Some((comment_start, comment)) = line_comment(source, tree, offset) {
        if let Some(list_end) = noqa_list_end(comment) {
            return Some(super::Edit::replace(
                comment_start + list_end..comment_start + list_end,
                format!(", {code}"),
            ));
        }
        let end = comment_start + comment.len();
        return Some(super::Edit::replace(end..end, format!("  # noqa: {code}")));
    }
    let code_end = line_start + source[line_start..line_end].trim_end().len();
    if code_end == line_start || source[..code_end].ends_with('\\') {
        return None;
    }
    let last = tree
        .root_node()
        .descendant_for_byte_range(code_end - 1, code_end)?;
    let mut node = Some(last);
    while let Some(n) = node {
        if n.kind_name() == "string" && n.end_byte() > line_end {
            return None;
        }
        node = n.parent();
    }
    Some(super::Edit::replace(
        code_end..code_end,
        format!("  # noqa: {code}"),
    ))
}

/// In a comment with `# noqa: A, B`, the byte just after the last code.
fn noqa_list_end(comment: &str) -> Option<usize> {
    directives(comment)
        .into_iter()
        .find(|d| !comment[d.range.clone()].ends_with(']'))
        .map(|d| d.range.end)
}

#[cfg(test)]
mod edit_tests {
    use super::*;

    fn silence(source: &str, code: &str) -> Option<String> {
        let tree = crate::store::parse_python(source).unwrap();
        let edit = suppression_edit(source, &tree, source.find("len").unwrap(), code)?;
        super::super::apply_edits(source, &[edit])
    }

    #[test]
    fn adds_or_extends_noqa_comments() {
        assert_eq!(
            silence("x = len(qs)\n", "ORM101").unwrap(),
            "x = len(qs)  # noqa: ORM101\n"
        );
        assert_eq!(
            silence("x = len(qs)  # why\n", "ORM101").unwrap(),
            "x = len(qs)  # why  # noqa: ORM101\n"
        );
        assert_eq!(
            silence("x = len(qs)  # noqa: E501\n", "ORM101").unwrap(),
            "x = len(qs)  # noqa: E501, ORM101\n"
        );
        assert_eq!(
            silence("x = len(qs)  # noqa:E501 ok\r\ny", "ORM101").unwrap(),
            "x = len(qs)  # noqa:E501, ORM101 ok\r\ny"
        );
        assert_eq!(
            silence("x = len(qs)  # see noqa: here\n", "ORM101").unwrap(),
            "x = len(qs)  # see noqa: here  # noqa: ORM101\n"
        );
        assert_eq!(
            silence("x = len(qs)  # orm: ignore[ORM102]\n", "ORM101, ORM104").unwrap(),
            "x = len(qs)  # orm: ignore[ORM102]  # noqa: ORM101, ORM104\n"
        );
        assert_eq!(silence("x = len(qs) + \\\n  1\n", "ORM101"), None);
        assert_eq!(silence("x = (len(qs), '''\n''')\n", "ORM101"), None);
    }
}

/// One suppression directive inside a comment: `# noqa: A, B` or `# orm: ignore[A, B]`.
/// Ranges are byte offsets in the comment's text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Directive {
    /// From the `#` that opens it (or `orm:` when no `#` does) to its last code (`]` included).
    pub range: std::ops::Range<usize>,
    /// The codes (letters then digits, as written) and where each is.
    pub codes: Vec<(String, std::ops::Range<usize>)>,
}

/// The directives of one comment that name codes (a bare `# noqa` names none).
pub fn directives(comment: &str) -> Vec<Directive> {
    let lower = comment.to_ascii_lowercase();
    let mut found = Vec::new();
    for (at, _) in lower.match_indices("noqa") {
        let before = lower[..at].trim_end();
        if !before.ends_with('#') {
            continue;
        }
        let after = at + 4;
        let colon = after + (comment[after..].len() - comment[after..].trim_start().len());
        if !comment[colon..].starts_with(':') {
            continue;
        }
        let codes = codes_from(comment, colon + 1, None);
        if let Some(last) = codes.last() {
            let range = before.len() - 1..last.1.end;
            found.push(Directive { range, codes });
        }
    }
    for (at, pattern) in lower.match_indices("orm: ignore[") {
        let start = lower[..at]
            .trim_end()
            .strip_suffix('#')
            .map_or(at, |b| b.len());
        let open = at + pattern.len();
        let Some(close) = comment[open..].find(']').map(|i| open + i) else {
            continue;
        };
        let codes = codes_from(comment, open, Some(close));
        if !codes.is_empty() {
            found.push(Directive {
                range: start..close + 1,
                codes,
            });
        }
    }
    found.sort_by_key(|d| d.range.start);
    found
}

/// The codes from byte `from` of `comment`, separated by commas and spaces, up to the first
/// word that is not a code (or up to `end`).
fn codes_from(
    comment: &str,
    from: usize,
    end: Option<usize>,
) -> Vec<(String, std::ops::Range<usize>)> {
    let end = end.unwrap_or(comment.len());
    let mut codes = Vec::new();
    let mut at = from;
    loop {
        at += comment[at..end].len() - comment[at..end].trim_start_matches([' ', '\t', ',']).len();
        let len = comment[at..end]
            .find(|c: char| !c.is_ascii_alphanumeric())
            .unwrap_or(end - at);
        let word = &comment[at..at + len];
        if !is_code(word) {
            return codes;
        }
        codes.push((word.to_ascii_uppercase(), at..at + len));
        at += len;
    }
}

/// The edit that takes the codes in `remove` out of `directive`, in the comment that starts at
/// byte `comment_start` of `source`: the other codes stay (`, `-separated); with none left the
/// directive goes, and with it the whole comment and the spaces before it when nothing else
/// was in the comment.
pub fn removal_edit(
    source: &str,
    comment_start: usize,
    comment: &str,
    directive: &Directive,
    remove: &[&str],
) -> super::Edit {
    let kept: Vec<&str> = directive
        .codes
        .iter()
        .map(|(code, _)| code.as_str())
        .filter(|code| !remove.iter().any(|r| r.eq_ignore_ascii_case(code)))
        .collect();
    let absolute = |r: std::ops::Range<usize>| comment_start + r.start..comment_start + r.end;
    if !kept.is_empty() {
        let first = directive.codes[0].1.start;
        let last = directive.codes[directive.codes.len() - 1].1.end;
        let written: Vec<&str> = directive
            .codes
            .iter()
            .filter(|(code, _)| kept.contains(&code.as_str()))
            .map(|(_, r)| &comment[r.clone()])
            .collect();
        return super::Edit::replace(absolute(first..last), written.join(", "));
    }
    let rest = comment[directive.range.end..].trim_start();
    let before = comment[..directive.range.start].trim_end();
    if !before.is_empty() {
        // `# why  # noqa: ORM101 rest` -> `# why rest`
        let end = comment.len() - rest.len();
        let gap = if rest.is_empty() { "" } else { " " };
        return super::Edit::replace(absolute(before.len()..end), gap);
    }
    if rest.is_empty() {
        // The whole comment, and the spaces between it and the code.
        let line_start = source[..comment_start]
            .rfind(['\n', '\r'])
            .map_or(0, |i| i + 1);
        let spaces = source[line_start..comment_start].trim_end_matches([' ', '\t']);
        return super::Edit::replace(line_start + spaces.len()..comment_start + comment.len(), "");
    }
    // `# noqa: ORM101  # type: ignore` -> `# type: ignore`; `# noqa: ORM101 why` -> `# why`.
    let replacement = if rest.starts_with('#') { "" } else { "# " };
    super::Edit::replace(
        comment_start..comment_start + comment.len() - rest.len(),
        replacement,
    )
}

#[cfg(test)]
mod directive_tests {
    use super::*;

    fn codes(comment: &str) -> Vec<Vec<String>> {
        directives(comment)
            .into_iter()
            .map(|d| {
                assert!(comment[d.range.clone()].len() <= comment.len());
                d.codes
                    .into_iter()
                    .map(|(c, r)| {
                        assert!(comment[r].eq_ignore_ascii_case(&c));
                        c
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn finds_directives_and_their_codes() {
        assert_eq!(codes("# noqa"), Vec::<Vec<String>>::new());
        assert_eq!(codes("# noqa: orm101,E501 why"), [["ORM101", "E501"]]);
        assert_eq!(codes("# noqa:ORM101 because"), [["ORM101"]]);
        assert_eq!(
            codes("# orm: ignore[ORM101, ORM102]"),
            [["ORM101", "ORM102"]]
        );
        assert_eq!(
            codes("# noqa: E501  # orm: ignore[ORM104]"),
            [vec!["E501"], vec!["ORM104"]]
        );
        assert_eq!(codes("# see noqa: ORM101"), Vec::<Vec<String>>::new());
        let d = &directives("# why  # noqa: ORM101 ok")[0];
        assert_eq!(d.range, 7..21);
    }

    fn remove(line: &str, codes: &[&str]) -> String {
        let start = line.find('#').unwrap();
        let comment = &line[start..];
        let directive = &directives(comment)[0];
        let edit = removal_edit(line, start, comment, directive, codes);
        super::super::apply_edits(line, &[edit]).unwrap()
    }

    #[test]
    fn removes_unused_codes() {
        assert_eq!(remove("x = 1  # noqa: ORM101", &["ORM101"]), "x = 1");
        assert_eq!(
            remove("x = 1  # noqa: ORM101, E501", &["ORM101"]),
            "x = 1  # noqa: E501"
        );
        assert_eq!(
            remove("x = 1  # noqa:ORM101,ORM102,E501 ok", &["ORM101", "ORM102"]),
            "x = 1  # noqa:E501 ok"
        );
        assert_eq!(
            remove("x = 1  # orm: ignore[ORM101, ORM104]", &["ORM104"]),
            "x = 1  # orm: ignore[ORM101]"
        );
        assert_eq!(remove("x = 1  # orm: ignore[ORM101]", &["ORM101"]), "x = 1");
        assert_eq!(
            remove("x = 1  # why  # noqa: ORM101", &["ORM101"]),
            "x = 1  # why"
        );
        assert_eq!(
            remove("x = 1  # why  # noqa: ORM101 ok", &["ORM101"]),
            "x = 1  # why ok"
        );
        assert_eq!(
            remove("x = 1  # noqa: ORM101  # type: ignore", &["ORM101"]),
            "x = 1  # type: ignore"
        );
        assert_eq!(
            remove("x = 1  # noqa: ORM101 slow on purpose", &["ORM101"]),
            "x = 1  # slow on purpose"
        );
        assert_eq!(remove("    # noqa: ORM101", &["ORM101"]), "");
    }
}
