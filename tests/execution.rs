//! Fixes proven by running them: the executable fixtures in `tests/fixtures/execution/` (each
//! folder a Django app with `models.py`, `seeds.py` and a `cases/` module per rule) run on real
//! Django, before and after `check --fix`, and with each unsafe fix applied alone. The driver,
//! `tests/execution/run.py`, says what is compared; this file prepares the three copies, runs it
//! once per Django version (the oldest supported LTS, 4.2, and the newest release) and fails on
//! any difference a safe fix makes, any safe fix that is not cheaper, and any unsafe fix that
//! changes nothing observable.
//!
//! Django (and REST framework) are installed from PyPI into git-ignored virtual environments
//! under `.cache/execution/`, reused by later runs. Without python3 or PyPI the test prints
//! `skipped: <reason>` and passes: it proves nothing then, and says so.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};

use common::django_env::Installed;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs `check ARGS cases` in the app folder `app` (its own project root, so its
/// `pyproject.toml` applies) and returns stdout.
fn check(app: &Path, args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_django-orm-lsp"))
        .arg("check")
        .args(args)
        .args(["--no-cache", "cases"])
        .current_dir(app)
        .output()
        .unwrap();
    assert!(
        matches!(output.status.code(), Some(0 | 1)),
        "check {args:?} in {}: {}",
        app.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// The byte offset of a 1-based line and column counted in characters, as the JSON gives them.
fn offset(text: &str, line: u64, column: u64) -> usize {
    let start: usize = text
        .split_inclusive('\n')
        .take(line as usize - 1)
        .map(str::len)
        .sum();
    start
        + text[start..]
            .chars()
            .take(column as usize - 1)
            .map(char::len_utf8)
            .sum::<usize>()
}

fn apply_json_edits(text: &str, edits: &[Value]) -> String {
    let mut ranges: Vec<(usize, usize, &str)> = edits
        .iter()
        .map(|e| {
            let at =
                |l: &str, c: &str| offset(text, e[l].as_u64().unwrap(), e[c].as_u64().unwrap());
            (
                at("line", "column"),
                at("end_line", "end_column"),
                e["content"].as_str().unwrap(),
            )
        })
        .collect();
    ranges.sort_by_key(|r| std::cmp::Reverse(r.0));
    let mut out = text.to_string();
    for (start, end, content) in ranges {
        out.replace_range(start..end, content);
    }
    out
}

/// The module name (`orm101`) of a finding's path (`cases/orm101.py`).
fn module_of(path: &str) -> String {
    Path::new(path)
        .file_stem()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string()
}

/// The three kinds of copies of every fixture app, and the manifest that tells the driver
/// where they are and what the linter offered.
fn prepare(root: &Path) -> Value {
    let fixtures = repo().join("tests/fixtures/execution");
    let (original_root, fixed_root) = (root.join("original"), root.join("fixed"));
    let mut apps = Vec::new();
    let mut variants = 0;
    let mut names: Vec<PathBuf> = std::fs::read_dir(&fixtures)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("models.py").is_file())
        .collect();
    names.sort();
    for source in names {
        let name = source.file_name().unwrap().to_str().unwrap().to_string();
        let original = original_root.join(&name);
        common::copy_dir(&source, &original);
        common::copy_dir(&source, &fixed_root.join(&name));
        let report: Value =
            serde_json::from_str(&check(&original, &["--output-format", "json"])).unwrap();
        check(&fixed_root.join(&name), &["--fix"]);
        let mut findings = Vec::new();
        let mut unsafe_fixes = Vec::new();
        for finding in report.as_array().unwrap() {
            let path = finding["path"].as_str().unwrap();
            let fix = &finding["fix"];
            let applicability = fix["applicability"].as_str();
            findings.push(json!({
                "module": module_of(path),
                "line": finding["line"],
                "code": finding["code"],
                "applicability": applicability,
            }));
            if applicability != Some("unsafe") {
                continue;
            }
            // A whole copy of the app with this fix alone applied.
            let alone = root.join(format!("unsafe-{variants}"));
            common::copy_dir(&source, &alone.join(&name));
            let file = alone.join(&name).join(path);
            let text = std::fs::read_to_string(&file).unwrap();
            let edits = fix["edits"].as_array().unwrap();
            std::fs::write(&file, apply_json_edits(&text, edits)).unwrap();
            unsafe_fixes.push(json!({
                "module": module_of(path),
                "line": finding["line"],
                "code": finding["code"],
                "message": fix["message"],
                "root": alone,
                "index": variants,
            }));
            variants += 1;
        }
        let mut modules: Vec<String> = common::python_files(&source.join("cases"))
            .iter()
            .map(|p| module_of(p.to_str().unwrap()))
            .filter(|m| m != "__init__")
            .collect();
        modules.sort();
        apps.push(json!({
            "name": name,
            "modules": modules,
            "findings": findings,
            "unsafe": unsafe_fixes,
        }));
    }
    json!({"original_root": original_root, "fixed_root": fixed_root, "apps": apps})
}

#[test]
fn fixes_keep_behaviour_on_real_django() {
    let Some(installed) = common::django_env::installed() else {
        return;
    };
    let temp = common::temp::Dir::new();
    let manifest = temp.path().join("manifest.json");
    std::fs::write(&manifest, prepare(temp.path()).to_string()).unwrap();
    let driver = repo().join("tests/execution/run.py");
    for Installed {
        requirement,
        interpreter,
        ..
    } in installed
    {
        let output = Command::new(&interpreter)
            .arg(&driver)
            .arg(&manifest)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        println!("{stdout}");
        assert!(
            output.status.success(),
            "on {requirement}, see the failures above:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
