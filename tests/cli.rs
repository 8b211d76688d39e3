//! `django-orm-lsp check` through the real binary: output formats, exit codes, file walking.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn check(args: &[&str], cwd: &Path) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_django-orm-lsp"))
        .arg("check")
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn temp_project(files: &[(&str, &[u8])]) -> tempdir::Dir {
    let dir = tempdir::Dir::new();
    for (path, content) in files {
        let full = dir.path().join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, content).unwrap();
    }
    dir
}

/// A scratch folder removed on drop (no extra crate for one helper).
mod tempdir {
    use std::path::{Path, PathBuf};

    pub struct Dir(PathBuf);

    impl Dir {
        pub fn new() -> Self {
            use std::sync::atomic::{AtomicUsize, Ordering};
            static N: AtomicUsize = AtomicUsize::new(0);
            let n = N.fetch_add(1, Ordering::SeqCst);
            let path =
                std::env::temp_dir().join(format!("django-orm-lsp-cli-{}-{n}", std::process::id()));
            let _ = std::fs::remove_dir_all(&path);
            std::fs::create_dir_all(&path).unwrap();
            Self(path)
        }

        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

const VIEW: &str =
    "from blog.models import Entry\n\ndef f():\n    return len(Entry.objects.all())\n";

#[test]
fn text_output_on_the_demo_project() {
    let (code, stdout, stderr) = check(&["tests/fixtures/demo_project"], &repo());
    assert_eq!(code, 1, "{stderr}");
    assert!(stdout.contains("tests/fixtures/demo_project/blog/views.py:21:35: ORM101 `len()` fetches every row of the queryset to count them; use `.count()` [*]\n"), "{stdout}");
    // The one suppressed finding stays silent.
    assert!(!stdout.contains("blog/views.py:59:"), "{stdout}");
    let last = stdout.lines().last().unwrap();
    assert!(
        last.starts_with("Found ") && last.contains("ORM issues"),
        "{last}"
    );
}

#[test]
fn json_output_is_the_documented_contract() {
    let project = temp_project(&[("app/views.py", "from blog.models import Entry\n\ndef f():\n    s = 'é😀'; return len(Entry.objects.all())\n".as_bytes())]);
    let (code, stdout, _) = check(&["--output-format", "json", "app"], project.path());
    assert_eq!(code, 1);
    let items: Value = serde_json::from_str(&stdout).unwrap();
    let expected = serde_json::json!([{
        "path": "app/views.py",
        "line": 4, "column": 22, "end_line": 4, "end_column": 46,
        "code": "ORM101", "name": "len-queryset",
        "message": "`len()` fetches every row of the queryset to count them; use `.count()`",
        "severity": "warning",
        "fix": {
            "applicability": "safe",
            "message": "Replace with `Entry.objects.all().count()`",
            "edits": [{"line": 4, "column": 22, "end_line": 4, "end_column": 46, "content": "Entry.objects.all().count()"}]
        }
    }]);
    assert_eq!(items, expected);
}

#[test]
fn select_and_ignore_filter_rules() {
    let project = temp_project(&[(
        "v.py",
        format!("{VIEW}\ndef g():\n    return bool(Entry.objects.all())\n").as_bytes(),
    )]);
    let codes = |args: &[&str]| {
        let (_, stdout, _) = check(
            &[args, &["--output-format", "json", "."]].concat(),
            project.path(),
        );
        let items: Vec<Value> = serde_json::from_str(&stdout).unwrap();
        items
            .iter()
            .map(|i| i["code"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(codes(&[]), ["ORM101", "ORM102"]);
    assert_eq!(codes(&["--select", "ORM101"]), ["ORM101"]);
    assert_eq!(codes(&["--ignore", "ORM101"]), ["ORM102"]);
    assert_eq!(
        codes(&["--select", "ORM1", "--ignore", "ORM102"]),
        ["ORM101"]
    );
}

#[test]
fn exit_codes_and_bad_files() {
    let clean = temp_project(&[("ok.py", b"x = 1\n")]);
    let (code, stdout, _) = check(&["."], clean.path());
    assert_eq!(code, 0);
    assert_eq!(stdout, "No ORM issues found in 1 file.\n");

    let (code, _, stderr) = check(&["missing-folder"], clean.path());
    assert_eq!(code, 2);
    assert_eq!(stderr, "error: missing-folder: no such file or directory\n");

    // Bad files get one error line each and the rest is still checked.
    let mixed = temp_project(&[
        ("bin.py", b"x = 1\0\0"),
        ("latin1.py", b"x = '\xe9'\n"),
        ("views.py", VIEW.as_bytes()),
    ]);
    let (code, stdout, stderr) = check(&["."], mixed.path());
    assert_eq!(code, 1);
    assert_eq!(stderr.lines().count(), 2, "{stderr}");
    assert!(
        stderr.contains("bin.py: skipped, binary file")
            && stderr.contains("latin1.py: skipped, not valid UTF-8"),
        "{stderr}"
    );
    assert!(stdout.contains("views.py:4:12: ORM101"), "{stdout}");
}

#[test]
fn walking_respects_gitignore_and_skips_environments() {
    let project = temp_project(&[
        (".gitignore", b"generated/\n"),
        ("generated/views.py", VIEW.as_bytes()),
        (".venv/lib/views.py", VIEW.as_bytes()),
        ("node_modules/x/views.py", VIEW.as_bytes()),
        ("app/migrations/0002_data.py", VIEW.as_bytes()),
        ("app/views.py", VIEW.as_bytes()),
    ]);
    let (_, stdout, _) = check(&["--output-format", "json", "."], project.path());
    let items: Vec<Value> = serde_json::from_str(&stdout).unwrap();
    let mut paths: Vec<_> = items
        .iter()
        .map(|i| {
            i["path"]
                .as_str()
                .unwrap()
                .trim_start_matches("./")
                .to_string()
        })
        .collect();
    paths.sort();
    assert_eq!(paths, ["app/migrations/0002_data.py", "app/views.py"]);
}
