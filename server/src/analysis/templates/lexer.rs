//! Django template tokens: text, `{{ variable }}`, `{% block tag %}` and comments, as Django's own
//! lexer splits them. A tag opens and closes on one line (`{{ a\n}}` is text, as in Django);
//! `{% comment %}...{% endcomment %}` and `{% verbatim %}...{% endverbatim %}` hide what they
//! enclose. Any input lexes: an unclosed tag is text.

use std::ops::Range;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `{{ ... }}`
    Variable,
    /// `{% ... %}`
    Block,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token<'s> {
    pub kind: Kind,
    /// What is between the delimiters, trimmed.
    pub content: &'s str,
    /// Where `content` starts in the template, in bytes.
    pub content_start: usize,
    /// The whole tag, delimiters included.
    pub range: Range<usize>,
}

/// The variable and block tags of `source`, in order; text and comments are left out.
pub fn lex(source: &str) -> Vec<Token<'_>> {
    let bytes = source.as_bytes();
    let mut tokens = Vec::new();
    // While inside `{% comment %}` or `{% verbatim %}`: the block that ends it.
    let mut hidden_until: Option<String> = None;
    let mut pos = 0;
    while let Some(offset) = source[pos..].find('{') {
        let start = pos + offset;
        let close = match bytes.get(start + 1) {
            Some(b'{') => "}}",
            Some(b'%') => "%}",
            Some(b'#') => "#}",
            _ => {
                pos = start + 1;
                continue;
            }
        };
        // The delimiters are ASCII, so every offset below is a character boundary.
        let line_end = source[start..]
            .find('\n')
            .map_or(source.len(), |i| start + i);
        let Some(end) = source[start + 2..line_end]
            .find(close)
            .map(|i| start + 2 + i)
        else {
            pos = start + 1;
            continue;
        };
        pos = end + 2;
        let raw = &source[start + 2..end];
        let content = raw.trim();
        let content_start = start + 2 + (raw.len() - raw.trim_start().len());
        let kind = match close {
            "}}" => Kind::Variable,
            "%}" => Kind::Block,
            _ => continue,
        };
        if let Some(end_tag) = &hidden_until {
            if kind == Kind::Block && content == end_tag {
                hidden_until = None;
            }
            continue;
        }
        if kind == Kind::Block {
            let mut words = content.split_whitespace();
            match words.next() {
                Some("comment") => {
                    hidden_until = Some("endcomment".to_string());
                    continue;
                }
                Some("verbatim") => {
                    // `{% verbatim name %}` ends at `{% endverbatim name %}`.
                    hidden_until = Some(match words.next() {
                        Some(name) => format!("endverbatim {name}"),
                        None => "endverbatim".to_string(),
                    });
                    continue;
                }
                _ => {}
            }
        }
        tokens.push(Token {
            kind,
            content,
            content_start,
            range: start..end + 2,
        });
    }
    tokens
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contents(source: &str) -> Vec<(Kind, &str)> {
        lex(source).iter().map(|t| (t.kind, t.content)).collect()
    }

    #[test]
    fn variables_blocks_and_comments() {
        let source =
            "<p>{{ post.title|upper }}</p>{# {{ hidden }} #}{% for p in posts %}{%endfor%}";
        assert_eq!(
            contents(source),
            [
                (Kind::Variable, "post.title|upper"),
                (Kind::Block, "for p in posts"),
                (Kind::Block, "endfor"),
            ]
        );
        let first = &lex(source)[0];
        assert_eq!(&source[first.range.clone()], "{{ post.title|upper }}");
        assert_eq!(&source[first.content_start..], &source[6..]);
    }

    #[test]
    fn comment_and_verbatim_blocks_hide_their_content() {
        let source = "{% comment \"why\" %}{{ a.b }}{% for x in y %}{% endcomment %}{{ c }}{% verbatim v %}{{ d }}{% endverbatim %}{% endverbatim v %}{{ e }}";
        assert_eq!(
            contents(source),
            [(Kind::Variable, "c"), (Kind::Variable, "e")]
        );
    }

    #[test]
    fn tags_do_not_span_lines_and_junk_lexes() {
        assert_eq!(contents("{{ a\n}} {% b %}"), [(Kind::Block, "b")]);
        assert!(contents("{{ unclosed {% also").is_empty());
        assert!(contents("{% comment %}{{ never closed }}").is_empty());
        let junk = "\u{0}\u{fffd}{{é😀}}{%{#}}%}{{";
        assert_eq!(
            contents(junk),
            [(Kind::Variable, "é😀"), (Kind::Block, "{#}}")]
        );
        assert!(contents("{").is_empty() && contents("").is_empty());
    }
}
