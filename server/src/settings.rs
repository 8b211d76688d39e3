//! Effective settings for the analysis: which rules run, at what severity, for which Django.

use std::hash::{Hash, Hasher};

use crate::analysis::Severity;

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
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            select: None,
            ignore: Vec::new(),
            severity: Vec::new(),
            target_django: (5, 2),
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
