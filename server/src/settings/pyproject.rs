//! `[tool.django-orm-lsp]` in pyproject.toml.

use std::path::{Path, PathBuf};

use super::options::{self, KeyStyle, Options, Problem};

pub const FILE_NAME: &str = "pyproject.toml";
const SECTION: &str = "django-orm-lsp";

/// The nearest pyproject.toml in `start` or one of its parents.
pub fn discover(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .map(|folder| folder.join(FILE_NAME))
        .find(|candidate| candidate.is_file())
}

/// The options in the file at `path`, and a one-line warning naming the file and every key that
/// could not be used. An unreadable file or invalid TOML gives no options at all.
pub fn load(path: &Path) -> (Options, Option<String>) {
    let source = path.display().to_string();
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) => {
            return (
                Options::default(),
                Some(format!("{source}: {e}; using the default settings")),
            )
        }
    };
    match parse(&text) {
        Ok((options, problems)) => (options, options::warning(&source, &problems)),
        Err(error) => (
            Options::default(),
            Some(format!("{source}:{error}; using the default settings")),
        ),
    }
}

/// The options in pyproject.toml's text and the keys that could not be used; `Err` is the
/// TOML parse error as `line:column: message`.
pub fn parse(text: &str) -> Result<(Options, Vec<Problem>), String> {
    let document: toml::Table = toml::from_str(text).map_err(|e| {
        let (line, column) = e
            .span()
            .map_or((1, 1), |span| line_column(text, span.start));
        let message: Vec<&str> = e
            .message()
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        format!("{line}:{column}: invalid TOML: {}", message.join("; "))
    })?;
    let Some(section) = document.get("tool").and_then(|tool| tool.get(SECTION)) else {
        return Ok((Options::default(), Vec::new()));
    };
    // One checker for every source: the editor's settings arrive as JSON already.
    match serde_json::to_value(section) {
        Ok(serde_json::Value::Object(table)) => Ok(Options::from_table(&table, KeyStyle::Kebab)),
        _ => Ok((
            Options::default(),
            vec![Problem {
                key: format!("tool.{SECTION}"),
                message: "expected a table".into(),
            }],
        )),
    }
}

/// 1-based line and column (in characters) of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (
        before.matches('\n').count() + 1,
        before[line_start..].chars().count() + 1,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_tool_section_only() {
        let text = r#"
[project]
name = "blog"

[tool.ruff]
select = ["E"]

[tool.django-orm-lsp]
ignore = ["ORM101"]
severity = { ORM102 = "hint" }
"#;
        let (options, problems) = parse(text).unwrap();
        assert_eq!(problems, []);
        assert_eq!(options.ignore, Some(vec!["ORM101".into()]));
        assert!(options.select.is_none());
    }

    #[test]
    fn no_section_means_no_options() {
        let (options, problems) = parse("[project]\nname = \"x\"\n").unwrap();
        assert_eq!(problems, []);
        assert!(options.ignore.is_none() && options.exclude.is_none());
    }

    #[test]
    fn invalid_toml_gives_the_position_and_the_message() {
        let error = parse("[tool.django-orm-lsp]\nignore = [\"ORM101\"\n").unwrap_err();
        assert_eq!(error, "2:19: invalid TOML: unclosed array, expected `]`");
    }

    #[test]
    fn the_section_must_be_a_table() {
        let (_, problems) = parse("[tool]\ndjango-orm-lsp = 3\n").unwrap();
        assert_eq!(
            problems[0].to_string(),
            "`tool.django-orm-lsp`: expected a table"
        );
    }

    #[test]
    fn camel_case_is_not_a_pyproject_key() {
        let (_, problems) = parse("[tool.django-orm-lsp]\nextendSelect = [\"ORM1\"]\n").unwrap();
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].key, "extendSelect");
    }
}
