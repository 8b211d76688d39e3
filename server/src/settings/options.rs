//! What one source of settings says (pyproject.toml, the editor's `initializationOptions` or
//! `workspace/didChangeConfiguration`, the command line). Every key is optional so that sources
//! can be layered: a later source overrides exactly the keys it sets.

use std::fmt;
use std::num::NonZeroUsize;
use std::path::Path;

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use serde_json::{Map, Value};

use super::Settings;
use crate::analysis::hover::sql::Dialect;
use crate::analysis::Severity;

#[derive(Clone, Debug, Default)]
pub struct Options {
    pub select: Option<Vec<String>>,
    pub ignore: Option<Vec<String>>,
    pub extend_select: Option<Vec<String>>,
    pub severity: Option<Vec<(String, Severity)>>,
    pub exclude: Option<PathPatterns>,
    pub per_file_ignores: Option<PerFileIgnores>,
    pub target_django: Option<(u32, u32)>,
    pub bulk_batch_size: Option<NonZeroUsize>,
    pub include_tests: Option<bool>,
    pub migrations: Option<MigrationRules>,
    pub sql_dialect: Option<Dialect>,
}

/// Which rules report in data migrations (`migrations/*.py`): they run once, at deploy time,
/// over whole tables, so what costs a query per row there costs a query per row of the table,
/// while a count or an extra column costs one query, once.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MigrationRules {
    /// The rules whose findings cost a query or a write per row (`rules::PER_ROW`).
    PerRow,
    All,
    /// The default: a migration that has run is history no one edits; a project writing a data
    /// migration turns `per-row` on.
    #[default]
    None,
}

impl MigrationRules {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PerRow => "per-row",
            Self::All => "all",
            Self::None => "none",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        [Self::PerRow, Self::All, Self::None]
            .into_iter()
            .find(|m| m.as_str() == text)
    }
}

/// How a source may spell its keys: pyproject.toml is kebab-case only, while editors, whose
/// settings are JSON, commonly send camelCase.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyStyle {
    Kebab,
    KebabOrCamel,
}

/// (kebab-case, camelCase) for every key.
const KEYS: &[(&str, &str)] = &[
    ("select", "select"),
    ("ignore", "ignore"),
    ("extend-select", "extendSelect"),
    ("severity", "severity"),
    ("exclude", "exclude"),
    ("per-file-ignores", "perFileIgnores"),
    ("target-django", "targetDjango"),
    ("bulk-batch-size", "bulkBatchSize"),
    ("include-tests", "includeTests"),
    ("migrations", "migrations"),
    ("sql-dialect", "sqlDialect"),
];

/// A key that could not be used, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub key: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}`: {}", self.key, self.message)
    }
}

/// The one-line warning for the problems of one source, or `None` when there are none.
pub fn warning(source: &str, problems: &[Problem]) -> Option<String> {
    if problems.is_empty() {
        return None;
    }
    let plural = if problems.len() == 1 { "" } else { "s" };
    let details: Vec<String> = problems.iter().map(Problem::to_string).collect();
    Some(format!(
        "{source}: ignored invalid setting{plural} {}",
        details.join("; ")
    ))
}

impl Options {
    /// Reads the keys of `table`. A key that cannot be used is left unset and reported; the
    /// others still apply.
    pub fn from_table(table: &Map<String, Value>, style: KeyStyle) -> (Self, Vec<Problem>) {
        let mut options = Self::default();
        let mut problems = Vec::new();
        for (key, value) in table {
            // JSON clients send `null` for a setting the user left unset.
            if value.is_null() {
                continue;
            }
            if let Err(message) = options.set(key, value, style) {
                problems.push(Problem {
                    key: key.clone(),
                    message,
                });
            }
        }
        (options, problems)
    }

    fn set(&mut self, key: &str, value: &Value, style: KeyStyle) -> Result<(), String> {
        let canonical = KEYS
            .iter()
            .find(|(kebab, camel)| {
                key == *kebab || (style == KeyStyle::KebabOrCamel && key == *camel)
            })
            .map(|(kebab, _)| *kebab);
        match canonical {
            Some("select") => self.select = Some(code_list(value)?),
            Some("ignore") => self.ignore = Some(code_list(value)?),
            Some("extend-select") => self.extend_select = Some(code_list(value)?),
            Some("severity") => self.severity = Some(severity_table(value)?),
            Some("exclude") => self.exclude = Some(PathPatterns::new(string_list(value)?)?),
            Some("per-file-ignores") => self.per_file_ignores = Some(per_file_ignores(value)?),
            Some("target-django") => self.target_django = Some(django_version(value)?),
            Some("bulk-batch-size") => self.bulk_batch_size = Some(batch_size(value)?),
            Some("include-tests") => self.include_tests = Some(boolean(value)?),
            Some("migrations") => self.migrations = Some(migration_rules(value)?),
            Some("sql-dialect") => self.sql_dialect = Some(sql_dialect(value)?),
            _ => {
                let known: Vec<&str> = KEYS.iter().map(|(kebab, _)| *kebab).collect();
                return Err(format!("unknown key (known keys: {})", known.join(", ")));
            }
        }
        Ok(())
    }

    /// These options with every key that `later` sets taken from `later` instead.
    pub fn merged(self, later: Self) -> Self {
        Self {
            select: later.select.or(self.select),
            ignore: later.ignore.or(self.ignore),
            extend_select: later.extend_select.or(self.extend_select),
            severity: later.severity.or(self.severity),
            exclude: later.exclude.or(self.exclude),
            per_file_ignores: later.per_file_ignores.or(self.per_file_ignores),
            target_django: later.target_django.or(self.target_django),
            bulk_batch_size: later.bulk_batch_size.or(self.bulk_batch_size),
            include_tests: later.include_tests.or(self.include_tests),
            migrations: later.migrations.or(self.migrations),
            sql_dialect: later.sql_dialect.or(self.sql_dialect),
        }
    }

    /// The settings these options give a file that no `per-file-ignores` pattern matches.
    pub fn base_settings(&self) -> Settings {
        let defaults = Settings::default();
        let select = self.select.clone().map(|mut select| {
            select.extend(self.extend_select.iter().flatten().cloned());
            select
        });
        Settings {
            select,
            ignore: self.ignore.clone().unwrap_or_default(),
            severity: self.severity.clone().unwrap_or_default(),
            target_django: self.target_django.unwrap_or(defaults.target_django),
            bulk_batch_size: self.bulk_batch_size.unwrap_or(defaults.bulk_batch_size),
            sql_dialect: self.sql_dialect.unwrap_or(defaults.sql_dialect),
        }
    }
}

/// Checks one rule code or prefix (`ORM101`, `ORM1`, `ALL`) and returns it upper-cased.
pub fn rule_code(code: &str) -> Result<String, String> {
    let upper = code.trim().to_ascii_uppercase();
    let well_formed = upper == "ALL"
        || upper
            .strip_prefix("ORM")
            .is_some_and(|digits| digits.len() <= 3 && digits.bytes().all(|b| b.is_ascii_digit()));
    if well_formed {
        Ok(upper)
    } else {
        Err(format!(
            "{code:?} is not a rule code or prefix (like ORM101, ORM1 or ALL)"
        ))
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a table",
    }
}

fn string_list(value: &Value) -> Result<Vec<String>, String> {
    let expected = || format!("expected a list of strings, got {}", kind(value));
    let items = value.as_array().ok_or_else(expected)?;
    items
        .iter()
        .map(|item| item.as_str().map(str::to_string).ok_or_else(expected))
        .collect()
}

fn code_list(value: &Value) -> Result<Vec<String>, String> {
    string_list(value)?.iter().map(|c| rule_code(c)).collect()
}

fn severity_table(value: &Value) -> Result<Vec<(String, Severity)>, String> {
    let Some(table) = value.as_object() else {
        return Err(format!(
            "expected a table of rule code = severity, got {}",
            kind(value)
        ));
    };
    table
        .iter()
        .map(|(code, severity)| {
            let code = rule_code(code)?;
            if code.len() != "ORM101".len() {
                return Err(format!("{code:?} is not a full rule code (like ORM101)"));
            }
            let severity = severity.as_str().and_then(Severity::parse).ok_or_else(|| {
                format!("{severity} for {code} is not a severity (use \"error\", \"warning\", \"info\" or \"hint\")")
            })?;
            Ok((code, severity))
        })
        .collect()
}

fn per_file_ignores(value: &Value) -> Result<PerFileIgnores, String> {
    let Some(table) = value.as_object() else {
        return Err(format!(
            "expected a table of glob = list of rule codes, got {}",
            kind(value)
        ));
    };
    let mut globs = Vec::new();
    let mut codes = Vec::new();
    for (glob, list) in table {
        codes.push(code_list(list).map_err(|e| format!("{glob:?}: {e}"))?);
        globs.push(glob.clone());
    }
    Ok(PerFileIgnores {
        patterns: PathPatterns::new(globs)?,
        codes,
    })
}

fn django_version(value: &Value) -> Result<(u32, u32), String> {
    value
        .as_str()
        .and_then(Settings::parse_django_version)
        .ok_or_else(|| format!("expected a Django version as a string like \"4.2\", got {value}"))
}

fn batch_size(value: &Value) -> Result<NonZeroUsize, String> {
    value
        .as_u64()
        .and_then(|n| usize::try_from(n).ok())
        .and_then(NonZeroUsize::new)
        .ok_or_else(|| format!("expected a positive integer, got {value}"))
}

fn boolean(value: &Value) -> Result<bool, String> {
    value
        .as_bool()
        .ok_or_else(|| format!("expected true or false, got {value}"))
}

fn migration_rules(value: &Value) -> Result<MigrationRules, String> {
    value
        .as_str()
        .and_then(MigrationRules::parse)
        .ok_or_else(|| format!("expected \"per-row\", \"all\" or \"none\", got {value}"))
}

fn sql_dialect(value: &Value) -> Result<Dialect, String> {
    value.as_str().and_then(Dialect::parse).ok_or_else(|| {
        format!("expected \"sqlite\", \"postgresql\", \"mysql\" or \"oracle\", got {value}")
    })
}

/// `--migrations` on the command line: the same values as the key.
pub fn migration_rules_argument(text: &str) -> Result<MigrationRules, String> {
    migration_rules(&Value::from(text))
}

/// Globs matched against paths relative to the project root. A path matches when a glob
/// matches it or one of its folders, so `legacy` and `legacy/**` both cover everything under
/// `legacy/`. `*` stays within one path component; `**` crosses folders.
#[derive(Clone, Debug)]
pub struct PathPatterns {
    globs: Vec<String>,
    set: GlobSet,
}

impl PathPatterns {
    pub fn new(globs: Vec<String>) -> Result<Self, String> {
        let mut builder = GlobSetBuilder::new();
        for glob in &globs {
            // Paths are matched relative to the root, never with a leading `./`.
            let pattern = glob.strip_prefix("./").unwrap_or(glob);
            let compiled = GlobBuilder::new(pattern)
                .literal_separator(true)
                .build()
                .map_err(|e| format!("invalid glob {glob:?}: {}", e.kind()))?;
            builder.add(compiled);
        }
        let set = builder.build().map_err(|e| e.to_string())?;
        Ok(Self { globs, set })
    }

    pub fn globs(&self) -> &[String] {
        &self.globs
    }

    pub fn is_match(&self, relative: &Path) -> bool {
        folders_and_self(relative).any(|p| self.set.is_match(p))
    }

    /// The indices of the globs that match `relative` or one of its folders.
    fn matching(&self, relative: &Path) -> Vec<usize> {
        let mut found: Vec<usize> = folders_and_self(relative)
            .flat_map(|p| self.set.matches(p))
            .collect();
        found.sort_unstable();
        found.dedup();
        found
    }
}

fn folders_and_self(relative: &Path) -> impl Iterator<Item = &Path> {
    relative.ancestors().filter(|p| !p.as_os_str().is_empty())
}

/// `per-file-ignores`: the codes to ignore in the files each glob matches.
#[derive(Clone, Debug)]
pub struct PerFileIgnores {
    patterns: PathPatterns,
    codes: Vec<Vec<String>>,
}

impl PerFileIgnores {
    /// (glob, codes) in the order they were given.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &[String])> {
        self.patterns
            .globs()
            .iter()
            .map(String::as_str)
            .zip(self.codes.iter().map(Vec::as_slice))
    }

    /// Every code to ignore in the file at `relative`.
    pub fn codes_for(&self, relative: &Path) -> impl Iterator<Item = &String> {
        self.patterns
            .matching(relative)
            .into_iter()
            .flat_map(|i| &self.codes[i])
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse(value: Value, style: KeyStyle) -> (Options, Vec<Problem>) {
        Options::from_table(value.as_object().unwrap(), style)
    }

    #[test]
    fn every_key_is_read() {
        let (options, problems) = parse(
            json!({
                "select": ["orm1"], "ignore": ["ORM102"], "extend-select": ["ORM2"],
                "severity": {"ORM101": "error"}, "exclude": ["legacy/**"],
                "per-file-ignores": {"tests/**": ["ORM101"]}, "target-django": "4.2",
                "bulk-batch-size": 100, "include-tests": true, "migrations": "all",
                "sql-dialect": "sqlite"
            }),
            KeyStyle::Kebab,
        );
        assert_eq!(problems, []);
        let settings = options.base_settings();
        assert_eq!(settings.select, Some(vec!["ORM1".into(), "ORM2".into()]));
        assert_eq!(settings.ignore, ["ORM102"]);
        assert_eq!(settings.severity, [("ORM101".into(), Severity::Error)]);
        assert_eq!(settings.target_django, (4, 2));
        assert_eq!(settings.bulk_batch_size.get(), 100);
        assert_eq!(settings.sql_dialect, Dialect::Sqlite);
        for (setting, dialect) in [("mysql", Dialect::Mysql), ("oracle", Dialect::Oracle)] {
            let (options, problems) = parse(json!({ "sql-dialect": setting }), KeyStyle::Kebab);
            assert_eq!(problems, []);
            assert_eq!(options.base_settings().sql_dialect, dialect);
        }
        assert_eq!(options.include_tests, Some(true));
        assert_eq!(options.migrations, Some(MigrationRules::All));
        assert!(options.exclude.unwrap().is_match(Path::new("legacy/a.py")));
        let per_file = options.per_file_ignores.unwrap();
        let codes: Vec<_> = per_file.codes_for(Path::new("tests/t.py")).collect();
        assert_eq!(codes, ["ORM101"]);
    }

    #[test]
    fn camel_case_only_where_allowed() {
        let value = json!({"extendSelect": ["ORM1"], "bulkBatchSize": 7, "includeTests": true});
        let (options, problems) = parse(value.clone(), KeyStyle::KebabOrCamel);
        assert_eq!(problems, []);
        assert_eq!(options.extend_select, Some(vec!["ORM1".into()]));
        assert_eq!(options.bulk_batch_size.map(NonZeroUsize::get), Some(7));
        assert_eq!(options.include_tests, Some(true));

        let (options, problems) = parse(value, KeyStyle::Kebab);
        let keys: Vec<_> = problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, ["bulkBatchSize", "extendSelect", "includeTests"]);
        assert!(problems[0].message.starts_with("unknown key"));
        assert!(options.extend_select.is_none());
    }

    #[test]
    fn a_bad_key_is_reported_and_the_good_keys_still_apply() {
        let (options, problems) = parse(
            json!({
                "ignore": ["ORM102"],
                "select": "ORM101",
                "severity": {"ORM101": "loud"},
                "exclude": ["legacy/[a"],
                "target-django": 4.2,
                "bulk-batch-size": 0,
                "per-file-ignores": {"tests/**": ["len"]},
                "include-tests": "yes",
                "migrations": "writes",
                "sql-dialect": "mssql",
                "colour": true
            }),
            KeyStyle::Kebab,
        );
        let messages: Vec<String> = problems.iter().map(Problem::to_string).collect();
        assert_eq!(
            messages,
            [
                "`bulk-batch-size`: expected a positive integer, got 0",
                "`colour`: unknown key (known keys: select, ignore, extend-select, severity, exclude, per-file-ignores, target-django, bulk-batch-size, include-tests, migrations, sql-dialect)",
                "`exclude`: invalid glob \"legacy/[a\": unclosed character class; missing ']'",
                "`include-tests`: expected true or false, got \"yes\"",
                "`migrations`: expected \"per-row\", \"all\" or \"none\", got \"writes\"",
                "`per-file-ignores`: \"tests/**\": \"len\" is not a rule code or prefix (like ORM101, ORM1 or ALL)",
                "`select`: expected a list of strings, got a string",
                "`severity`: \"loud\" for ORM101 is not a severity (use \"error\", \"warning\", \"info\" or \"hint\")",
                "`sql-dialect`: expected \"sqlite\", \"postgresql\", \"mysql\" or \"oracle\", got \"mssql\"",
                "`target-django`: expected a Django version as a string like \"4.2\", got 4.2",
            ]
        );
        assert_eq!(options.ignore, Some(vec!["ORM102".into()]));
        let settings = options.base_settings();
        assert_eq!(settings.select, None);
        assert_eq!(settings.target_django, Settings::default().target_django);
        assert_eq!(
            settings.bulk_batch_size,
            Settings::default().bulk_batch_size
        );
    }

    #[test]
    fn severity_needs_a_full_code() {
        let (_, problems) = parse(json!({"severity": {"ORM1": "hint"}}), KeyStyle::Kebab);
        assert_eq!(
            problems[0].to_string(),
            "`severity`: \"ORM1\" is not a full rule code (like ORM101)"
        );
    }

    #[test]
    fn null_means_unset() {
        let (options, problems) = parse(json!({"ignore": null}), KeyStyle::KebabOrCamel);
        assert_eq!(problems, []);
        assert!(options.ignore.is_none());
    }

    #[test]
    fn later_sources_override_only_the_keys_they_set() {
        let (first, _) = parse(
            json!({"select": ["ORM1"], "ignore": ["ORM101"], "target-django": "3.2"}),
            KeyStyle::Kebab,
        );
        let (second, _) = parse(
            json!({"ignore": [], "extend-select": ["ORM2"]}),
            KeyStyle::Kebab,
        );
        let settings = first.merged(second).base_settings();
        assert_eq!(settings.select, Some(vec!["ORM1".into(), "ORM2".into()]));
        assert_eq!(settings.ignore, Vec::<String>::new());
        assert_eq!(settings.target_django, (3, 2));
    }

    #[test]
    fn extend_select_adds_nothing_to_every_rule() {
        let (options, _) = parse(json!({"extend-select": ["ORM1"]}), KeyStyle::Kebab);
        assert_eq!(options.base_settings().select, None);
    }

    #[test]
    fn globs_match_the_path_or_a_folder_and_star_stays_in_one_component() {
        let patterns = PathPatterns::new(vec![
            "legacy".into(),
            "./**/generated_*.py".into(),
            "app/*.py".into(),
        ])
        .unwrap();
        for (path, expected) in [
            ("legacy/old/views.py", true),
            ("legacy.py", false),
            ("generated_models.py", true),
            ("a/b/generated_x.py", true),
            ("a/generated.py", false),
            ("app/views.py", true),
            ("app/sub/views.py", false),
        ] {
            assert_eq!(patterns.is_match(Path::new(path)), expected, "{path}");
        }
    }

    #[test]
    fn warning_is_one_line_naming_every_bad_key() {
        let problems = [
            Problem {
                key: "a".into(),
                message: "unknown key".into(),
            },
            Problem {
                key: "b".into(),
                message: "expected a list".into(),
            },
        ];
        assert_eq!(warning("src", &[]), None);
        assert_eq!(
            warning("src", &problems[..1]).unwrap(),
            "src: ignored invalid setting `a`: unknown key"
        );
        assert_eq!(
            warning("src", &problems).unwrap(),
            "src: ignored invalid settings `a`: unknown key; `b`: expected a list"
        );
    }
}
