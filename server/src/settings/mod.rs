//! Settings: `Settings` is what the analysis of one file sees; `ProjectSettings` is what a
//! project's configuration says for all its files (exclusions, per-file ignores), built from
//! layered `Options` (pyproject.toml, then the editor, then the command line).

pub mod file_kind;
pub mod options;
pub mod pyproject;

use std::fmt;
use std::hash::{Hash, Hasher};
use std::num::NonZeroUsize;
use std::path::Path;

pub use file_kind::FileKind;
pub use options::{KeyStyle, MigrationRules, Options, Problem};

use crate::analysis::hover::sql::Dialect;
use crate::analysis::rules::{self, PER_ROW};
use crate::analysis::Severity;
use options::{PathPatterns, PerFileIgnores};

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Settings {
    /// Codes or code prefixes to run (`ORM1` selects ORM101..ORM199); `None` means every rule.
    pub select: Option<Vec<String>>,
    /// Codes or code prefixes never to run; wins over `select`.
    pub ignore: Vec<String>,
    /// Severity overrides by code.
    pub severity: Vec<(String, Severity)>,
    /// The Django version fixes may rely on (major, minor).
    pub target_django: (u32, u32),
    /// How many objects a suggested `bulk_create`/`bulk_update` writes per query.
    pub bulk_batch_size: NonZeroUsize,
    /// Whose SQL hover shows when the settings module does not name the database's `ENGINE`.
    pub sql_dialect: Dialect,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            select: None,
            ignore: Vec::new(),
            severity: Vec::new(),
            target_django: (5, 2),
            bulk_batch_size: NonZeroUsize::new(500).unwrap(),
            sql_dialect: Dialect::Postgresql,
        }
    }
}

fn matches_code(pattern: &str, code: &str) -> bool {
    pattern.eq_ignore_ascii_case("ALL")
        || code
            .to_ascii_uppercase()
            .starts_with(&pattern.to_ascii_uppercase())
}

impl Settings {
    pub fn is_enabled(&self, code: &str) -> bool {
        let selected = self
            .select
            .as_ref()
            .is_none_or(|s| s.iter().any(|p| matches_code(p, code)));
        selected && !self.ignore.iter().any(|p| matches_code(p, code))
    }

    pub fn severity_of(&self, code: &str, default: Severity) -> Severity {
        self.severity
            .iter()
            .rev()
            .find(|(c, _)| c.eq_ignore_ascii_case(code))
            .map_or(default, |(_, s)| *s)
    }

    /// A fingerprint of everything that changes analysis results.
    pub fn fingerprint(&self) -> u64 {
        let mut hasher = rustc_hash::FxHasher::default();
        self.hash(&mut hasher);
        hasher.finish()
    }

    /// Parses `"4.2"` into (4, 2).
    pub fn parse_django_version(version: &str) -> Option<(u32, u32)> {
        let mut parts = version.trim().split('.');
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next().map_or(Some(0), |m| m.parse().ok())?;
        Some((major, minor))
    }
}

/// A project's settings: the base settings plus which files are excluded, which get extra
/// ignores, and how test code and migrations are reported. Paths are relative to the project
/// root (the folder holding pyproject.toml).
#[derive(Clone, Debug, Default)]
pub struct ProjectSettings {
    base: Settings,
    exclude: Option<PathPatterns>,
    per_file_ignores: Option<PerFileIgnores>,
    include_tests: bool,
    migrations: MigrationRules,
}

impl ProjectSettings {
    pub fn new(options: Options) -> Self {
        Self {
            base: options.base_settings(),
            exclude: options.exclude,
            per_file_ignores: options.per_file_ignores,
            include_tests: options.include_tests.unwrap_or(false),
            migrations: options.migrations.unwrap_or_default(),
        }
    }

    /// The settings of files outside the project and of those no `per-file-ignores` matches.
    pub fn base(&self) -> &Settings {
        &self.base
    }

    pub fn includes_tests(&self) -> bool {
        self.include_tests
    }

    pub fn is_excluded(&self, relative_path: &Path) -> bool {
        self.exclude
            .as_ref()
            .is_some_and(|e| e.is_match(relative_path))
    }

    /// The settings for the file at `relative_path`, or `None` when it is not checked: it is
    /// excluded, test code (unless `include-tests`), or a migration under `migrations = "none"`.
    pub fn for_file(&self, relative_path: &Path) -> Option<Settings> {
        if self.is_excluded(relative_path) {
            return None;
        }
        let mut settings = self.for_kind(file_kind::kind_of(relative_path))?;
        if let Some(per_file) = &self.per_file_ignores {
            settings
                .ignore
                .extend(per_file.codes_for(relative_path).cloned());
        }
        Some(settings)
    }

    /// The settings for `path`, given the project's `root`. A path outside the root gets the
    /// base settings, since no pattern can be relative to it, but is still test code or a
    /// migration by its name and its folder's.
    pub fn for_path(&self, root: &Path, path: &Path) -> Option<Settings> {
        match path.strip_prefix(root) {
            Ok(relative) => self.for_file(relative),
            Err(_) => self.for_outside_root(path),
        }
    }

    /// The settings for a file with no project root to be relative to.
    pub fn for_outside_root(&self, path: &Path) -> Option<Settings> {
        self.for_kind(file_kind::kind_of_outside_root(path))
    }

    /// Whether `path` (given the project's `root`, as in `for_path`) is left out for being test
    /// code, and for nothing else: what `include-tests` would add to a run.
    pub fn is_left_out_test_code(&self, root: &Path, path: &Path) -> bool {
        let kind = match path.strip_prefix(root) {
            Ok(relative) if self.is_excluded(relative) => return false,
            Ok(relative) => file_kind::kind_of(relative),
            Err(_) => file_kind::kind_of_outside_root(path),
        };
        !self.include_tests && kind == FileKind::Test
    }

    /// The base settings as a file of `kind` gets them, `None` when such files are not checked.
    fn for_kind(&self, kind: FileKind) -> Option<Settings> {
        match (kind, self.migrations) {
            (FileKind::Test, _) if !self.include_tests => None,
            (FileKind::Migration, MigrationRules::None) => None,
            (FileKind::Migration, MigrationRules::PerRow) => {
                let mut settings = self.base.clone();
                let unused_noqa = rules::orm900_unused_noqa::RULE.meta.code;
                let once = rules::ALL
                    .iter()
                    .map(|r| r.meta.code)
                    .filter(|code| !PER_ROW.contains(code) && *code != unused_noqa);
                settings.ignore.extend(once.map(str::to_string));
                Some(settings)
            }
            _ => Some(self.base.clone()),
        }
    }
}

/// TOML-like, one `key = value` per line, in a fixed order: what `check --show-settings` prints.
impl fmt::Display for ProjectSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let quoted = |s: &str| serde_json::Value::from(s).to_string();
        let list = |items: &[String]| {
            let items: Vec<String> = items.iter().map(|i| quoted(i)).collect();
            format!("[{}]", items.join(", "))
        };
        let table = |entries: Vec<String>| {
            if entries.is_empty() {
                "{}".to_string()
            } else {
                format!("{{ {} }}", entries.join(", "))
            }
        };
        let base = &self.base;
        let all = ["ALL".to_string()];
        writeln!(
            f,
            "select = {}",
            list(base.select.as_deref().unwrap_or(&all))
        )?;
        writeln!(f, "ignore = {}", list(&base.ignore))?;
        let severity = base
            .severity
            .iter()
            .map(|(code, severity)| format!("{code} = {}", quoted(severity.as_str())))
            .collect();
        writeln!(f, "severity = {}", table(severity))?;
        let exclude = self.exclude.as_ref().map_or(&[][..], |e| e.globs());
        writeln!(f, "exclude = {}", list(exclude))?;
        let per_file = self
            .per_file_ignores
            .iter()
            .flat_map(|p| p.entries())
            .map(|(glob, codes)| format!("{} = {}", quoted(glob), list(codes)))
            .collect();
        writeln!(f, "per-file-ignores = {}", table(per_file))?;
        let (major, minor) = base.target_django;
        writeln!(f, "target-django = \"{major}.{minor}\"")?;
        writeln!(f, "bulk-batch-size = {}", base.bulk_batch_size)?;
        writeln!(f, "include-tests = {}", self.include_tests)?;
        writeln!(f, "migrations = {}", quoted(self.migrations.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use serde_json::json;

    use super::*;

    fn project(value: serde_json::Value) -> ProjectSettings {
        let (options, problems) = Options::from_table(value.as_object().unwrap(), KeyStyle::Kebab);
        assert_eq!(problems, []);
        ProjectSettings::new(options)
    }

    #[test]
    fn per_file_ignores_add_to_ignore_and_exclude_wins() {
        let project = project(json!({
            "ignore": ["ORM105"],
            "exclude": ["legacy"],
            "include-tests": true,
            "per-file-ignores": {"tests/**": ["ORM101"], "**/test_*.py": ["ORM102"]}
        }));
        let ignore_of = |path: &str| {
            project.for_file(Path::new(path)).map(|s| {
                let mut ignore = s.ignore;
                ignore.sort();
                ignore
            })
        };
        assert_eq!(
            ignore_of("tests/unit/test_views.py"),
            Some(vec!["ORM101".into(), "ORM102".into(), "ORM105".into()])
        );
        assert_eq!(ignore_of("app/views.py"), Some(vec!["ORM105".into()]));
        assert_eq!(ignore_of("legacy/tests/test_views.py"), None);
        let settings = project.for_file(Path::new("tests/a.py")).unwrap();
        assert!(!settings.is_enabled("ORM101") && settings.is_enabled("ORM102"));
        assert_ne!(settings.fingerprint(), project.base().fingerprint());
    }

    #[test]
    fn test_code_is_left_out_unless_included() {
        let root = Path::new("/work/blog");
        let default = project(json!({"exclude": ["legacy"]}));
        for path in ["app/tests.py", "app/tests/factories.py", "conftest.py"] {
            assert_eq!(default.for_file(Path::new(path)), None, "{path}");
            assert!(
                default.is_left_out_test_code(root, &root.join(path)),
                "{path}"
            );
        }
        // Excluded test code is excluded, not left out; code is neither.
        assert!(!default.is_left_out_test_code(root, &root.join("legacy/tests.py")));
        assert!(!default.is_left_out_test_code(root, &root.join("app/views.py")));
        // Outside the root only the name and the folder count.
        assert_eq!(
            default.for_path(root, Path::new("/elsewhere/tests.py")),
            None
        );
        let fixture = Path::new("/elsewhere/tests/fixtures/app/views.py");
        assert!(default.for_path(root, fixture).is_some());

        let included = project(json!({"include-tests": true}));
        assert_eq!(
            included.for_file(Path::new("app/tests.py")).as_ref(),
            Some(included.base())
        );
        assert!(!included.is_left_out_test_code(root, &root.join("app/tests.py")));
    }

    #[test]
    fn migrations_are_left_out_unless_told_otherwise() {
        let migration = Path::new("shop/migrations/0002_backfill.py");
        let enabled = |project: &ProjectSettings| {
            project.for_file(migration).map(|settings| {
                rules::ALL
                    .iter()
                    .map(|r| r.meta.code)
                    .filter(|code| settings.is_enabled(code))
                    .collect::<Vec<_>>()
            })
        };
        assert_eq!(enabled(&project(json!({}))), None);
        let per_row = enabled(&project(json!({"migrations": "per-row"}))).unwrap();
        let mut expected: Vec<&str> = PER_ROW.to_vec();
        expected.push("ORM900");
        assert_eq!(per_row.len(), expected.len());
        assert!(expected.iter().all(|code| per_row.contains(code)));
        assert_eq!(
            enabled(&project(json!({"migrations": "all"}))).map(|e| e.len()),
            Some(rules::ALL.len())
        );
        assert_eq!(enabled(&project(json!({"migrations": "none"}))), None);
        // Other files are not narrowed.
        let app = project(json!({}))
            .for_file(Path::new("shop/views.py"))
            .unwrap();
        assert!(app.is_enabled("ORM101"));
    }

    #[test]
    fn paths_outside_the_root_get_the_base_settings() {
        let project = project(json!({"exclude": ["**"], "ignore": ["ORM1"]}));
        let root = Path::new("/work/blog");
        assert_eq!(
            project.for_path(root, Path::new("/work/blog/views.py")),
            None
        );
        assert_eq!(
            project
                .for_path(root, Path::new("/elsewhere/views.py"))
                .as_ref(),
            Some(project.base())
        );
    }
}
