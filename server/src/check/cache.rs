//! `check`'s result cache: each file's findings, kept in `.django-orm-lsp-cache/` under the
//! project root, keyed by the file's text and settings. The whole cache holds for one state of
//! what every file's analysis reads besides its own text — the model index's inputs (every
//! module's imports and classes, the templates) and this binary's version — so a run that
//! finds them unchanged reuses the findings of unchanged files without parsing anything or
//! building the index.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rustc_hash::{FxHashMap, FxHasher};
use serde_json::{json, Value};

use crate::analysis::rules::by_code;
use crate::analysis::{Applicability, Diagnostic, Edit, Fix, Place, Related, Severity};

const DIR: &str = ".django-orm-lsp-cache";
const FILE: &str = "check.json";

pub fn text_hash(text: &str) -> u64 {
    let mut hasher = FxHasher::default();
    text.hash(&mut hasher);
    hasher.finish()
}

/// The findings cached for the files of one project, and the ones this run adds.
pub struct Cache {
    dir: PathBuf,
    key: u64,
    entries: FxHashMap<PathBuf, Entry>,
    fresh: Mutex<Vec<(PathBuf, Entry)>>,
}

#[derive(Clone)]
struct Entry {
    text: u64,
    settings: u64,
    diagnostics: Vec<Value>,
}

impl Cache {
    /// The cache under `root` if it was written for `key`, else an empty one for it.
    pub fn load(root: &Path, key: u64) -> Self {
        let dir = root.join(DIR);
        let stored: Option<Value> = std::fs::read(dir.join(FILE))
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok());
        let entries = stored
            .filter(|v| v["key"].as_str() == Some(&key.to_string()))
            .and_then(|v| v["files"].as_object().cloned())
            .map(|files| {
                files
                    .into_iter()
                    .filter_map(|(path, e)| {
                        let entry = Entry {
                            text: e["text"].as_str()?.parse().ok()?,
                            settings: e["settings"].as_str()?.parse().ok()?,
                            diagnostics: e["diagnostics"].as_array()?.clone(),
                        };
                        Some((PathBuf::from(path), entry))
                    })
                    .collect()
            })
            .unwrap_or_default();
        Self {
            dir,
            key,
            entries,
            fresh: Mutex::default(),
        }
    }

    /// The findings of `path` when its text and settings are the ones cached.
    pub fn get(&self, path: &Path, text: u64, settings: u64) -> Option<Vec<Diagnostic>> {
        let entry = self.entries.get(path)?;
        if entry.text != text || entry.settings != settings {
            return None;
        }
        entry.diagnostics.iter().map(from_json).collect()
    }

    pub fn put(&self, path: &Path, text: u64, settings: u64, diagnostics: &[Diagnostic]) {
        let entry = Entry {
            text,
            settings,
            diagnostics: diagnostics.iter().map(to_json).collect(),
        };
        let mut fresh = self.fresh.lock().unwrap_or_else(|e| e.into_inner());
        fresh.push((path.to_path_buf(), entry));
    }

    /// Writes the cache: the entries of this run's files (older ones kept, newer ones added).
    /// A cache that cannot be written is only a slower next run: errors are ignored.
    pub fn save(self) {
        let mut entries = self.entries;
        let fresh = self.fresh.into_inner().unwrap_or_else(|e| e.into_inner());
        if fresh.is_empty() {
            return;
        }
        entries.extend(fresh);
        let files: serde_json::Map<String, Value> = entries
            .into_iter()
            .map(|(path, e)| {
                let entry = json!({
                    "text": e.text.to_string(),
                    "settings": e.settings.to_string(),
                    "diagnostics": e.diagnostics,
                });
                (path.to_string_lossy().into_owned(), entry)
            })
            .collect();
        let document = json!({"key": self.key.to_string(), "files": files});
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
