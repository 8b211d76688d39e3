//! Settings: `Settings` is what the analysis of one file sees; `ProjectSettings` is what a
//! project's configuration says for all its files (exclusions, per-file ignores), built from
//! layered `Options` (pyproject.toml, then the editor, then the command line).

pub mod options;
pub mod pyproject;

use std::fmt;
use std::hash::{Hash, Hasher};
use std::num::NonZeroUsize;
use std::path::Path;

pub use options::{KeyStyle, Options, Problem};

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
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            select: None,
            ignore: Vec::new(),
            severity: Vec::new(),
            target_django: (5, 2),
            bulk_batch_size: NonZeroUsize::new(500).unwrap(),
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

/// A project's settings: the base settings plus which files are excluded and which get extra
/// ignores. Paths are relative to the project root (the folder holding pyproject.toml).
#[derive(Clone, Debug, Default)]
pub struct ProjectSettings {
    base: Settings,
    exclude: Option<PathPatterns>,
    per_file_ignores: Option<PerFileIgnores>,
}

impl ProjectSettings {
    pub fn new(options: Options) -> Self {
        Self {
            base: options.base_settings(),
            exclude: options.exclude,
            per_file_ignores: options.per_file_ignores,
        }
    }

    /// The settings of files outside the project and of those no `per-file-ignores` matches.
    pub fn base(&self) -> &Settings {
        &self.base
    }

    pub fn is_excluded(&self, relative_path: &Path) -> bool {
        self.exclude
            .as_ref()
            .is_some_and(|e| e.is_match(relative_path))
    }

    /// The settings for the file at `relative_path`, or `None` when it is excluded.
    pub fn for_file(&self, relative_path: &Path) -> Option<Settings> {
        if self.is_excluded(relative_path) {
            return None;
        }
        let mut settings = self.base.clone();
        if let Some(per_file) = &self.per_file_ignores {
            settings
                .ignore
                .extend(per_file.codes_for(relative_path).cloned());
        }
        Some(settings)
    }

    /// The settings for `path`, given the project's `root`: a path outside the root gets the
    /// base settings, since no pattern can be relative to it.
    pub fn for_path(&self, root: &Path, path: &Path) -> Option<Settings> {
        match path.strip_prefix(root) {
            Ok(relative) => self.for_file(relative),
            Err(_) => Some(self.base.clone()),
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
        writeln!(f, "bulk-batch-size = {}", base.bulk_batch_size)
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
