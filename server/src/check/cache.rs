//! `check`'s result cache: each file's findings, kept in `.django-orm-lsp-cache/` under the
//! project root, keyed by the file's text and settings. The whole cache holds for one state of
//! what every file's analysis reads besides its own text: the model index. Two keys say so. The
//! first, of the index's inputs as text (every module's imports and classes, the templates) and
//! this binary's version, is cheap: a run that finds it unchanged reuses the findings of
//! unchanged files without parsing anything or building the index. When it changed (a line
//! added to a models file), the index is built and the second key, the index's own
//! fingerprint, decides: equal facts keep every unchanged file's findings.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use rustc_hash::{FxHashMap, FxHasher};
use serde_json::{json, Value};

use crate::analysis::program::Dependency;
use crate::analysis::rules::by_code;
use crate::analysis::{Applicability, Diagnostic, Edit, Fix, Place, Related, Severity};

const DIR: &str = ".django-orm-lsp-cache";
const FILE: &str = "check.json";

/// `fingerprint` joined with this binary's version: both keys change when the binary does (its
/// rules may have changed).
pub fn with_version(fingerprint: u64) -> u64 {
    let mut hasher = FxHasher::default();
    (env!("CARGO_PKG_VERSION"), fingerprint).hash(&mut hasher);
    hasher.finish()
}

pub use crate::analysis::program::text_hash;

/// The findings cached for the files of one project, and the ones this run adds.
pub struct Cache {
    dir: PathBuf,
    key: u64,
    /// Whether the stored findings were written for `key`.
    key_matched: bool,
    /// The fingerprint of the model index the stored findings were computed against.
    index: Option<u64>,
    /// Whether the stored findings hold: decided once, by `key_matched` or else by building
    /// the index and comparing fingerprints.
    valid: OnceLock<bool>,
    entries: FxHashMap<PathBuf, Entry>,
    fresh: Mutex<Vec<(PathBuf, Entry)>>,
}

#[derive(Clone)]
struct Entry {
    text: u64,
    settings: u64,
    diagnostics: Vec<Value>,
    /// Other files whose functions the findings were inferred from, with their text's hash.
    read: Vec<Dependency>,
}

impl Cache {
    /// The cache under `root`, for a run whose index inputs have the fingerprint `key`.
    pub fn load(root: &Path, key: u64) -> Self {
        let dir = root.join(DIR);
        let stored: Option<Value> = std::fs::read(dir.join(FILE))
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok());
        let number = |v: &Value| v.as_str().and_then(|s| s.parse::<u64>().ok());
        let key_matched = stored
            .as_ref()
            .is_some_and(|v| number(&v["key"]) == Some(key));
        let index = stored.as_ref().and_then(|v| number(&v["index"]));
        let entries = stored
            .and_then(|v| v["files"].as_object().cloned())
            .map(|files| {
                files
                    .into_iter()
                    .filter_map(|(path, e)| {
                        let read = e["read"]
                            .as_array()?
                            .iter()
                            .map(|r| Some((PathBuf::from(r[0].as_str()?), number(&r[1])?)))
                            .collect::<Option<_>>()?;
                        let entry = Entry {
                            text: number(&e["text"])?,
                            settings: number(&e["settings"])?,
                            diagnostics: e["diagnostics"].as_array()?.clone(),
                            read,
                        };
                        Some((PathBuf::from(path), entry))
                    })
                    .collect()
            })
            .unwrap_or_default();
        Self {
            dir,
            key,
            key_matched,
            index,
            valid: OnceLock::new(),
            entries,
            fresh: Mutex::default(),
        }
    }

    /// The findings of `path` when its text and settings are the ones cached; they stand only
    /// if `holds`.
    pub fn get(&self, path: &Path, text: u64, settings: u64) -> Option<Vec<Diagnostic>> {
        let entry = self.entries.get(path)?;
        if entry.text != text || entry.settings != settings {
            return None;
        }
        // A helper in another file changed: what the file's calls return may have too.
        let unchanged = |(path, hash): &Dependency| {
            std::fs::read_to_string(path).is_ok_and(|now| text_hash(&now) == *hash)
        };
        if !entry.read.iter().all(unchanged) {
            return None;
        }
        entry.diagnostics.iter().map(from_json).collect()
    }

    /// The key this cache was loaded for.
    pub fn key(&self) -> u64 {
        self.key
    }

    /// Whether the stored findings hold for this run: written for its key, or else for a model
    /// index with the fingerprint `index` gives (which builds the index; `with_version` of it).
    pub fn holds(&self, index: impl FnOnce() -> u64) -> bool {
        *self
            .valid
            .get_or_init(|| self.key_matched || self.index == Some(index()))
    }

    pub fn put(
        &self,
        path: &Path,
        text: u64,
        settings: u64,
        diagnostics: &[Diagnostic],
        read: Vec<Dependency>,
    ) {
        let entry = Entry {
            text,
            settings,
            diagnostics: diagnostics.iter().map(to_json).collect(),
            read,
        };
        let mut fresh = self.fresh.lock().unwrap_or_else(|e| e.into_inner());
        fresh.push((path.to_path_buf(), entry));
    }

    /// Writes the cache: the entries of this run's files (older ones kept while they hold,
    /// newer ones added), under `key` (`None` when the index's inputs changed during the run:
    /// the next run then compares indexes) and `index`, the versioned fingerprint of the model
    /// index if this run built one. A cache that cannot be written is only a slower next run:
    /// errors are ignored.
    pub fn save(self, key: Option<u64>, index: Option<u64>) {
        let fresh = self.fresh.into_inner().unwrap_or_else(|e| e.into_inner());
        if fresh.is_empty() && self.key_matched && key == Some(self.key) {
            return;
        }
        let valid = match self.valid.get() {
            Some(valid) => *valid,
            None => self.key_matched || (index.is_some() && self.index == index),
        };
        let index = index.or(self.index.filter(|_| self.key_matched));
        let mut entries = if valid {
            self.entries
        } else {
            FxHashMap::default()
        };
        entries.extend(fresh);
        let files: serde_json::Map<String, Value> = entries
            .into_iter()
            .map(|(path, e)| {
                let entry = json!({
                    "text": e.text.to_string(),
                    "settings": e.settings.to_string(),
                    "diagnostics": e.diagnostics,
                    "read": e.read.iter().map(|(p, h)| json!([p.to_string_lossy(), h.to_string()])).collect::<Vec<_>>(),
                });
                (path.to_string_lossy().into_owned(), entry)
            })
            .collect();
        let document = json!({
            "key": key.map(|k| k.to_string()),
            "index": index.map(|i| i.to_string()),
            "files": files,
        });
        if std::fs::create_dir_all(&self.dir).is_err() {
            return;
        }
        // Nobody should commit the cache; `git status` stays quiet about it.
        let _ = std::fs::write(self.dir.join(".gitignore"), "*\n");
        let temporary = self.dir.join(format!("{FILE}.{}", std::process::id()));
        if std::fs::write(&temporary, document.to_string()).is_ok() {
            let _ = std::fs::rename(&temporary, self.dir.join(FILE));
        }
    }
}

fn to_json(d: &Diagnostic) -> Value {
    json!({
        "code": d.code(),
        "range": [d.range.start, d.range.end],
        "message": d.message,
        "severity": d.severity.as_str(),
        "fix": d.fix.as_ref().map(|f| json!({
            "title": f.title,
            "safe": f.is_safe(),
            "edits": f.edits.iter().map(|e| json!([e.range.start, e.range.end, e.content])).collect::<Vec<_>>(),
        })),
        "related": d.related.iter().map(|r| json!({
            "path": r.path,
            "line": r.place.line,
            "bytes": [r.place.bytes.start, r.place.bytes.end],
            "utf16": [r.place.utf16.start, r.place.utf16.end],
            "chars": [r.place.chars.start, r.place.chars.end],
            "message": r.message,
        })).collect::<Vec<_>>(),
    })
}

fn from_json(v: &Value) -> Option<Diagnostic> {
    let range = |v: &Value| -> Option<std::ops::Range<usize>> {
        Some(v[0].as_u64()? as usize..v[1].as_u64()? as usize)
    };
    let range32 = |v: &Value| -> Option<std::ops::Range<u32>> {
        Some(v[0].as_u64()? as u32..v[1].as_u64()? as u32)
    };
    let fix = match &v["fix"] {
        Value::Null => None,
        f => Some(Fix {
            title: f["title"].as_str()?.to_string(),
            applicability: if f["safe"].as_bool()? {
                Applicability::Safe
            } else {
                Applicability::Unsafe
            },
            edits: f["edits"]
                .as_array()?
                .iter()
                .map(|e| {
                    Some(Edit::replace(
                        e[0].as_u64()? as usize..e[1].as_u64()? as usize,
                        e[2].as_str()?,
                    ))
                })
                .collect::<Option<_>>()?,
        }),
    };
    let related = v["related"]
        .as_array()?
        .iter()
        .map(|r| {
            Some(Related {
                path: PathBuf::from(r["path"].as_str()?),
                place: Place {
                    line: r["line"].as_u64()? as u32,
                    bytes: range32(&r["bytes"])?,
                    utf16: range32(&r["utf16"])?,
                    chars: range32(&r["chars"])?,
                },
                message: r["message"].as_str()?.to_string(),
            })
        })
        .collect::<Option<_>>()?;
    Some(Diagnostic {
        rule: by_code(v["code"].as_str()?)?.meta,
        range: range(&v["range"])?,
        message: v["message"].as_str()?.to_string(),
        severity: Severity::parse(v["severity"].as_str()?)?,
        fix,
        related,
    })
}
