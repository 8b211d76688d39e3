//! `django-orm-lsp check` through the real binary: output formats, exit codes, file walking.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::temp;
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
    let project = temp::project(&[("app/views.py", "from blog.models import Entry\n\ndef f():\n    s = 'é😀'; return len(Entry.objects.all())\n".as_bytes())]);
    let (code, stdout, _) = check(&["--output-format", "json", "app"], project.path());
    assert_eq!(code, 1);
    let items: Value = serde_json::from_str(&stdout).unwrap();
    let expected = serde_json::json!([{
        "path": "app/views.py",
        "line": 4, "column": 22, "end_line": 4, "end_column": 46,
        "code": "ORM101", "name": "len-queryset",
        "message": "`len()` fetches every row of the queryset to count them; use `.count()`",
        "severity": "info",
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
    let project = temp::project(&[(
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
    let clean = temp::project(&[("ok.py", b"x = 1\n")]);
    let (code, stdout, _) = check(&["."], clean.path());
    assert_eq!(code, 0);
    assert_eq!(stdout, "No ORM issues found in 1 file.\n");

    let (code, _, stderr) = check(&["missing-folder"], clean.path());
    assert_eq!(code, 2);
    assert_eq!(stderr, "error: missing-folder: no such file or directory\n");

    // Bad files get one error line each and the rest is still checked.
    let mixed = temp::project(&[
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
    let project = temp::project(&[
        (".gitignore", b"generated/\n"),
        ("generated/views.py", VIEW.as_bytes()),
        (".venv/lib/views.py", VIEW.as_bytes()),
        ("node_modules/x/views.py", VIEW.as_bytes()),
        ("app/migrations/0002_data.py", VIEW.as_bytes()),
        ("app/views.py", VIEW.as_bytes()),
        // Every rule in migrations, so that the walk into them shows.
        (
            "pyproject.toml",
            b"[tool.django-orm-lsp]\nmigrations = \"all\"\n",
        ),
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

const TWO_RULES: &str = "from blog.models import Entry\n\ndef f():\n    return len(Entry.objects.all())\n\ndef g():\n    return bool(Entry.objects.all())\n";

/// (path without `./`, code, severity) of every finding, from the JSON output.
fn findings(stdout: &str) -> Vec<(String, String, String)> {
    let items: Vec<Value> = serde_json::from_str(stdout).unwrap();
    items
        .iter()
        .map(|i| {
            let field = |k: &str| i[k].as_str().unwrap().to_string();
            let path = field("path");
            (
                path.trim_start_matches("./").to_string(),
                field("code"),
                field("severity"),
            )
        })
        .collect()
}

fn finding(path: &str, code: &str, severity: &str) -> (String, String, String) {
    (path.into(), code.into(), severity.into())
}

#[test]
fn pyproject_selects_ignores_excludes_and_sets_severity() {
    let project = temp::project(&[
        (
            "pyproject.toml",
            br#"
[project]
name = "blog"

[tool.django-orm-lsp]
select = ["ORM1"]
ignore = ["ORM103"]
exclude = ["legacy", "**/generated_*.py"]
per-file-ignores = { "tests/**" = ["ORM101"] }
severity = { ORM102 = "error" }
include-tests = true
"#,
        ),
        ("app/views.py", TWO_RULES.as_bytes()),
        ("app/generated_models.py", TWO_RULES.as_bytes()),
        ("legacy/old/views.py", TWO_RULES.as_bytes()),
        ("tests/test_views.py", TWO_RULES.as_bytes()),
    ]);
    let (code, stdout, stderr) = check(&["--output-format", "json", "."], project.path());
    assert_eq!(code, 1);
    assert_eq!(stderr, "");
    assert_eq!(
        findings(&stdout),
        [
            finding("app/views.py", "ORM101", "info"),
            finding("app/views.py", "ORM102", "error"),
            finding("tests/test_views.py", "ORM102", "error"),
        ]
    );

    // Settings are found from a sub-folder too, and globs stay relative to the project root.
    let (_, stdout, _) = check(
        &["--output-format", "json", "."],
        &project.path().join("app"),
    );
    assert_eq!(
        findings(&stdout),
        [
            finding("views.py", "ORM101", "info"),
            finding("views.py", "ORM102", "error"),
        ]
    );
}

#[test]
fn exclude_applies_to_files_named_on_the_command_line() {
    let project = temp::project(&[
        (
            "pyproject.toml",
            b"[tool.django-orm-lsp]\nexclude = [\"legacy/**\"]\n",
        ),
        ("legacy/views.py", VIEW.as_bytes()),
        ("views.py", VIEW.as_bytes()),
    ]);
    let (code, stdout, stderr) = check(&["legacy/views.py"], project.path());
    assert_eq!((code, stderr.as_str()), (0, ""));
    assert_eq!(stdout, "No ORM issues found in 0 files.\n");
    let (code, stdout, _) = check(&["legacy/views.py", "views.py"], project.path());
    assert_eq!(code, 1);
    assert_eq!(stdout.lines().next().unwrap(), "views.py:4:12: ORM101 `len()` fetches every row of the queryset to count them; use `.count()` [*]");
    assert!(
        stdout.ends_with("in 1 file (1 with a safe fix, marked [*]).\n"),
        "{stdout}"
    );
}

#[test]
fn command_line_codes_override_the_file() {
    let project = temp::project(&[
        (
            "pyproject.toml",
            b"[tool.django-orm-lsp]\nselect = [\"ORM101\"]\nignore = [\"ORM105\"]\n",
        ),
        ("v.py", TWO_RULES.as_bytes()),
    ]);
    let codes = |args: &[&str]| {
        let (_, stdout, stderr) = check(
            &[args, &["--output-format", "json", "v.py"]].concat(),
            project.path(),
        );
        assert_eq!(stderr, "");
        findings(&stdout)
            .into_iter()
            .map(|(_, code, _)| code)
            .collect::<Vec<_>>()
    };
    assert_eq!(codes(&[]), ["ORM101"]);
    assert_eq!(codes(&["--select", "ORM102"]), ["ORM102"]);
    assert_eq!(codes(&["--extend-select", "ORM102"]), ["ORM101", "ORM102"]);
    assert_eq!(codes(&["--ignore", "ORM101"]), Vec::<String>::new());

    let (code, _, stderr) = check(&["--select", "len", "v.py"], project.path());
    assert_eq!(code, 2);
    assert!(
        stderr.contains("\"len\" is not a rule code or prefix"),
        "{stderr}"
    );
}

#[test]
fn a_bad_key_is_one_error_line_and_the_other_keys_still_apply() {
    let project = temp::project(&[
        (
            "pyproject.toml",
            b"[tool.django-orm-lsp]\nignore = [\"ORM102\"]\nseverity = { ORM101 = \"loud\" }\n",
        ),
        ("v.py", TWO_RULES.as_bytes()),
    ]);
    let (code, stdout, stderr) = check(&["--output-format", "json", "v.py"], project.path());
    assert_eq!(code, 1);
    let config = project.path().join("pyproject.toml");
    assert_eq!(
        stderr,
        format!(
            "error: {}: ignored invalid setting `severity`: \"loud\" for ORM101 is not a severity (use \"error\", \"warning\", \"info\" or \"hint\")\n",
            config.display()
        )
    );
    // The default severity for the bad key; `ignore` still applies.
    assert_eq!(findings(&stdout), [finding("v.py", "ORM101", "info")]);
}

#[test]
fn invalid_toml_is_one_error_line_and_every_default_applies() {
    let project = temp::project(&[
        (
            "pyproject.toml",
            b"[tool.django-orm-lsp]\nignore = [\"ORM102\"\n",
        ),
        ("v.py", TWO_RULES.as_bytes()),
    ]);
    let (code, stdout, stderr) = check(&["--output-format", "json", "v.py"], project.path());
    assert_eq!(code, 1);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    let config = project.path().join("pyproject.toml");
    assert!(
        stderr.starts_with(&format!("error: {}:2:19: invalid TOML: ", config.display())),
        "{stderr}"
    );
    let codes: Vec<_> = findings(&stdout).into_iter().map(|f| f.1).collect();
    assert_eq!(codes, ["ORM101", "ORM102"]);
}

#[test]
fn a_config_error_without_findings_exits_2() {
    let project = temp::project(&[
        (
            "pyproject.toml",
            b"[tool.django-orm-lsp]\nselct = [\"ORM1\"]\n",
        ),
        ("ok.py", b"x = 1\n"),
    ]);
    let (code, _, stderr) = check(&["."], project.path());
    assert_eq!(code, 2);
    assert!(stderr.contains("`selct`: unknown key"), "{stderr}");
}

#[test]
fn show_settings_prints_the_effective_settings_without_linting() {
    let project = temp::project(&[
        (
            "pyproject.toml",
            br#"[tool.django-orm-lsp]
select = ["orm1"]
extend-select = ["ORM2"]
severity = { ORM102 = "hint", ORM101 = "error" }
exclude = ["legacy/**"]
per-file-ignores = { "tests/**" = ["ORM101", "ORM104"], "conftest.py" = ["ORM1"] }
target-django = "4.2"
bulk-batch-size = 100
include-tests = true
migrations = "all"
"#,
        ),
        ("v.py", TWO_RULES.as_bytes()),
    ]);
    let (code, stdout, stderr) = check(&["--show-settings", "--ignore", "ORM105"], project.path());
    assert_eq!((code, stderr.as_str()), (0, ""));
    let config = project.path().join("pyproject.toml");
    assert_eq!(
        stdout,
        format!(
            r#"# config: {}
select = ["ORM1", "ORM2"]
ignore = ["ORM105"]
severity = {{ ORM101 = "error", ORM102 = "hint" }}
exclude = ["legacy/**"]
per-file-ignores = {{ "conftest.py" = ["ORM1"], "tests/**" = ["ORM101", "ORM104"] }}
target-django = "4.2"
bulk-batch-size = 100
include-tests = true
migrations = "all"
"#,
            config.display()
        )
    );

    // Another file through --config; without any, the defaults.
    let other = temp::project(&[(
        "ci/orm.toml",
        b"[tool.django-orm-lsp]\nignore = [\"ORM101\"]\n",
    )]);
    let (code, stdout, _) = check(
        &["--show-settings", "--config", "ci/orm.toml"],
        other.path(),
    );
    assert_eq!(code, 0);
    assert!(stdout.contains("\nignore = [\"ORM101\"]\n"), "{stdout}");
    let (_, stdout, _) = check(&["--show-settings"], other.path());
    assert_eq!(
        stdout,
        "# config: none found, defaults\nselect = [\"ALL\"]\nignore = []\nseverity = {}\nexclude = []\nper-file-ignores = {}\ntarget-django = \"5.2\"\nbulk-batch-size = 500\ninclude-tests = false\nmigrations = \"none\"\n"
    );
}

/// A project with findings in code, in four kinds of test file, and in an excluded test file.
fn project_with_tests(pyproject: &str) -> temp::Dir {
    temp::project(&[
        ("pyproject.toml", pyproject.as_bytes()),
        ("app/views.py", VIEW.as_bytes()),
        ("app/tests.py", VIEW.as_bytes()),
        ("app/tests/factories.py", VIEW.as_bytes()),
        ("app/test_api.py", VIEW.as_bytes()),
        ("conftest.py", VIEW.as_bytes()),
        ("legacy/tests.py", VIEW.as_bytes()),
    ])
}

const WITH_TESTS: [&str; 5] = [
    "app/test_api.py",
    "app/tests/factories.py",
    "app/tests.py",
    "app/views.py",
    "conftest.py",
];

fn paths_found(stdout: &str) -> Vec<String> {
    findings(stdout).into_iter().map(|f| f.0).collect()
}

#[test]
fn test_code_is_silent_by_default_and_the_summary_counts_it() {
    let project = project_with_tests("[tool.django-orm-lsp]\nexclude = [\"legacy\"]\n");
    let (code, stdout, stderr) = check(&["."], project.path());
    assert_eq!((code, stderr.as_str()), (1, ""));
    assert_eq!(
        stdout,
        "./app/views.py:4:12: ORM101 `len()` fetches every row of the queryset to count them; use `.count()` [*]\n\
         Found 1 ORM issue in 1 file (1 with a safe fix, marked [*]; 4 test files not checked: --include-tests).\n"
    );

    // Machine formats keep their contract on stdout and say it on stderr.
    let (_, stdout, stderr) = check(&["--output-format", "json", "."], project.path());
    assert_eq!(paths_found(&stdout), ["app/views.py"]);
    assert_eq!(stderr, "note: 4 test files not checked: --include-tests\n");

    let (_, stdout, _) = check(&["--statistics", "."], project.path());
    assert_eq!(
        stdout,
        "1  ORM101  len-queryset  1 fixable\n4 test files not checked: --include-tests\n"
    );

    // Named on the command line, a test file is still test code, as it is in the editor.
    let (code, stdout, _) = check(&["app/tests.py"], project.path());
    assert_eq!(code, 0);
    assert_eq!(
        stdout,
        "No ORM issues found in 0 files (1 test file not checked: --include-tests).\n"
    );
}

#[test]
fn include_tests_reports_test_code_from_the_flag_or_the_file() {
    let project = project_with_tests("[tool.django-orm-lsp]\nexclude = [\"legacy\"]\n");
    let (code, stdout, stderr) = check(
        &["--include-tests", "--output-format", "json", "."],
        project.path(),
    );
    assert_eq!((code, stderr.as_str()), (1, ""));
    assert_eq!(paths_found(&stdout), WITH_TESTS);
    let (_, stdout, _) = check(&["--include-tests", "."], project.path());
    assert!(
        stdout.ends_with("Found 5 ORM issues in 5 files (5 with a safe fix, marked [*]).\n"),
        "{stdout}"
    );

    let included =
        project_with_tests("[tool.django-orm-lsp]\nexclude = [\"legacy\"]\ninclude-tests = true\n");
    let (_, stdout, stderr) = check(&["--output-format", "json", "."], included.path());
    assert_eq!(stderr, "");
    assert_eq!(paths_found(&stdout), WITH_TESTS);
}

#[test]
fn a_bad_value_for_the_new_keys_is_one_error_line_and_the_defaults_hold() {
    let project = project_with_tests(
        "[tool.django-orm-lsp]\nexclude = [\"legacy\"]\ninclude-tests = \"yes\"\nmigrations = \"writes\"\n",
    );
    let (code, stdout, stderr) = check(&["--output-format", "json", "."], project.path());
    assert_eq!(code, 1);
    let config = project.path().join("pyproject.toml");
    assert_eq!(
        stderr,
        format!(
            "error: {}: ignored invalid settings `include-tests`: expected true or false, got \"yes\"; \
             `migrations`: expected \"per-row\", \"all\" or \"none\", got \"writes\"\n\
             note: 4 test files not checked: --include-tests\n",
            config.display()
        )
    );
    assert_eq!(paths_found(&stdout), ["app/views.py"]);
}

const ENTRY_MODEL: &str = "from django.db import models\n\n\nclass Entry(models.Model):\n    title = models.CharField(max_length=10)\n";

/// A save per row (ORM302) and a count (ORM101) in a data migration.
const DATA_MIGRATION: &str = "from app.models import Entry\n\n\ndef forwards(apps, schema_editor):\n    for entry in Entry.objects.all():\n        entry.title = \"x\"\n        entry.save()\n    return len(Entry.objects.all())\n";

#[test]
fn migrations_are_left_out_by_default_and_report_the_per_row_rules_when_asked() {
    let codes_with = |setting: &str| {
        let project = temp::project(&[
            ("pyproject.toml", setting.as_bytes()),
            ("app/__init__.py", b""),
            ("app/models.py", ENTRY_MODEL.as_bytes()),
            ("app/migrations/__init__.py", b""),
            ("app/migrations/0002_titles.py", DATA_MIGRATION.as_bytes()),
        ]);
        let (_, stdout, stderr) = check(&["--output-format", "json", "."], project.path());
        assert_eq!(stderr, "");
        findings(&stdout)
            .into_iter()
            .map(|f| f.1)
            .collect::<Vec<_>>()
    };
    assert_eq!(codes_with(""), Vec::<String>::new());
    assert_eq!(
        codes_with("[tool.django-orm-lsp]\nmigrations = \"per-row\"\n"),
        ["ORM302"]
    );
    assert_eq!(
        codes_with("[tool.django-orm-lsp]\nmigrations = \"all\"\n"),
        ["ORM302", "ORM101"]
    );
    assert_eq!(
        codes_with("[tool.django-orm-lsp]\nmigrations = \"none\"\n"),
        Vec::<String>::new()
    );
}

#[test]
fn config_names_the_project_root_for_globs() {
    let project = temp::project(&[
        (
            "ci/orm.toml",
            b"[tool.django-orm-lsp]\nexclude = [\"views.py\"]\n",
        ),
        ("ci/views.py", VIEW.as_bytes()),
        ("views.py", VIEW.as_bytes()),
    ]);
    let (_, stdout, _) = check(
        &["--config", "ci/orm.toml", "--output-format", "json", "."],
        project.path(),
    );
    let paths: Vec<_> = findings(&stdout).into_iter().map(|f| f.0).collect();
    assert_eq!(paths, ["views.py"]);
}

fn read(dir: &Path, path: &str) -> String {
    std::fs::read_to_string(dir.join(path)).unwrap()
}

/// One safe fix that reveals another (`len() > 0` -> `count() > 0` -> `exists()`), one plain
/// safe fix, and a membership test in `values_list()`, which is reported without a fix.
const FIXABLE: &str = "from blog.models import Entry\n\ndef f():\n    if len(Entry.objects.all()) > 0:\n        return bool(Entry.objects.all())\n\ndef g(pk):\n    return pk in Entry.objects.values_list(\"pk\", flat=True)\n";
const FIXED: &str = "from blog.models import Entry\n\ndef f():\n    if Entry.objects.all().exists():\n        return Entry.objects.all().exists()\n\ndef g(pk):\n    return pk in Entry.objects.values_list(\"pk\", flat=True)\n";

#[test]
fn fix_rewrites_files_in_place_and_reports_what_remains() {
    let project = temp::project(&[
        ("app/views.py", FIXABLE.as_bytes()),
        ("app/clean.py", VIEW.replace("len(", "list(").as_bytes()),
        ("app/count.py", VIEW.as_bytes()),
    ]);
    let (code, stdout, stderr) = check(&["--fix", "app"], project.path());
    assert_eq!((code, stderr.as_str()), (1, ""));
    assert_eq!(read(project.path(), "app/views.py"), FIXED);
    assert_eq!(
        read(project.path(), "app/count.py"),
        VIEW.replace("len(Entry.objects.all())", "Entry.objects.all().count()")
    );
    assert_eq!(
        stdout,
        "app/views.py:8:12: ORM104 `in` fetches every row of the queryset to test membership in Python; ask the database\n\
         Found 1 ORM issue in 3 files (0 with a safe fix, marked [*]).\n\
         Fixed 4 issues in 2 files.\n"
    );

    // Nothing left to fix: files untouched, exit 0 once nothing remains.
    let (code, stdout, _) = check(&["--fix", "--unsafe-fixes", "app/count.py"], project.path());
    assert_eq!(code, 0);
    assert_eq!(
        stdout,
        "No ORM issues found in 1 file.\nFixed 0 issues in 0 files.\n"
    );

    // Machine-readable output keeps stdout to itself; the summary goes to stderr.
    std::fs::write(project.path().join("app/count.py"), VIEW).unwrap();
    let (code, stdout, stderr) = check(
        &["--fix", "--output-format", "json", "app/count.py"],
        project.path(),
    );
    assert_eq!((code, stdout.as_str()), (0, "[]\n"));
    assert_eq!(stderr, "Fixed 1 issue in 1 file.\n");
}

#[test]
fn diff_shows_the_fixes_without_writing_them() {
    let project = temp::project(&[("views.py", FIXABLE.as_bytes()), ("ok.py", b"x = 1\n")]);
    let (code, stdout, stderr) = check(&["--diff", "."], project.path());
    assert_eq!(code, 1);
    assert_eq!(read(project.path(), "views.py"), FIXABLE);
    assert_eq!(
        stdout,
        "--- ./views.py\n+++ ./views.py\n@@ -1,8 +1,8 @@\n from blog.models import Entry\n \n def f():\n-    if len(Entry.objects.all()) > 0:\n-        return bool(Entry.objects.all())\n+    if Entry.objects.all().exists():\n+        return Entry.objects.all().exists()\n \n def g(pk):\n     return pk in Entry.objects.values_list(\"pk\", flat=True)\n"
    );
    assert_eq!(stderr, "Would fix 3 issues in 1 file.\n");

    // The diff applies with `patch`, giving what --fix writes.
    let patched = Command::new("patch")
        .args(["-p0", "--quiet"])
        .current_dir(project.path())
        .stdin(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(stdout.as_bytes())?;
            child.wait()
        });
    if let Ok(status) = patched {
        assert!(status.success());
        assert_eq!(read(project.path(), "views.py"), FIXED);
    }

    // Nothing to fix: no diff and exit 0, even with findings that have no fix.
    let (code, stdout, stderr) = check(&["--diff", "."], project.path());
    assert_eq!((code, stdout.as_str()), (0, ""));
    assert_eq!(stderr, "Would fix 0 issues in 0 files.\n");
}

#[test]
fn github_annotations_one_per_finding_by_severity() {
    let project = temp::project(&[
        (
            "pyproject.toml",
            b"[tool.django-orm-lsp]\nseverity = { ORM101 = \"warning\", ORM102 = \"error\", ORM104 = \"hint\" }\n",
        ),
        ("app/views.py", FIXABLE.as_bytes()),
    ]);
    let (code, stdout, stderr) = check(&["--output-format", "github", "."], project.path());
    assert_eq!((code, stderr.as_str()), (1, ""));
    assert_eq!(
        stdout,
        "::warning file=app/views.py,line=4,col=8,endLine=4,endColumn=32,title=ORM101 (len-queryset)::`len()` fetches every row of the queryset to count them; use `.count()`\n\
         ::error file=app/views.py,line=5,col=16,endLine=5,endColumn=41,title=ORM102 (queryset-truthiness)::Testing a queryset for truth fetches every row; use `.exists()`\n\
         ::notice file=app/views.py,line=8,col=12,endLine=8,endColumn=60,title=ORM104 (in-queryset)::`in` fetches every row of the queryset to test membership in Python; ask the database\n"
    );
}

#[test]
fn sarif_output_is_one_run_with_rules_results_and_fixes() {
    let project = temp::project(&[("app/my views.py", VIEW.as_bytes())]);
    let (code, stdout, _) = check(&["--output-format", "sarif", "app"], project.path());
    assert_eq!(code, 1);
    let log: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(log["version"], "2.1.0");
    assert_eq!(log["runs"].as_array().unwrap().len(), 1);
    let run = &log["runs"][0];
    let driver = &run["tool"]["driver"];
    assert_eq!(driver["name"], "django-orm-lsp");
    assert_eq!(driver["version"], env!("CARGO_PKG_VERSION"));
    assert!(driver["informationUri"]
        .as_str()
        .unwrap()
        .starts_with("https://"));
    let rules = driver["rules"].as_array().unwrap();
    let orm101 = rules.iter().find(|r| r["id"] == "ORM101").unwrap();
    assert_eq!(orm101["name"], "len-queryset");
    assert_eq!(orm101["defaultConfiguration"]["level"], "note");
    let orm402 = rules.iter().find(|r| r["id"] == "ORM402").unwrap();
    assert_eq!(orm402["defaultConfiguration"]["level"], "warning");
    assert!(orm101["helpUri"]
        .as_str()
        .unwrap()
        .ends_with("/docs/rules/ORM101.md"));
    assert!(orm101["shortDescription"]["text"].is_string());
    assert_eq!(run["columnKind"], "unicodeCodePoints");
    let results = run["results"].as_array().unwrap();
    assert_eq!(results.len(), 1);
    let result = &results[0];
    assert_eq!(result["ruleId"], "ORM101");
    assert_eq!(
        rules[result["ruleIndex"].as_u64().unwrap() as usize]["id"],
        "ORM101"
    );
    assert_eq!(result["level"], "note");
    let location = &result["locations"][0]["physicalLocation"];
    assert_eq!(location["artifactLocation"]["uri"], "app/my%20views.py");
    assert_eq!(
        location["region"],
        serde_json::json!({"startLine": 4, "startColumn": 12, "endLine": 4, "endColumn": 36})
    );
    let replacement = &result["fixes"][0]["artifactChanges"][0]["replacements"][0];
    assert_eq!(
        replacement["insertedContent"]["text"],
        "Entry.objects.all().count()"
    );
    assert_eq!(replacement["deletedRegion"], location["region"]);
}

#[test]
fn statistics_count_findings_per_rule() {
    let project = temp::project(&[
        ("a.py", FIXABLE.as_bytes()),
        ("b.py", TWO_RULES.as_bytes()),
        ("c.py", VIEW.as_bytes()),
    ]);
    let (code, stdout, _) = check(&["--statistics", "."], project.path());
    assert_eq!(code, 1);
    assert_eq!(
        stdout,
        "3  ORM101  len-queryset         3 fixable\n\
         2  ORM102  queryset-truthiness  2 fixable\n\
         1  ORM104  in-queryset          0 fixable\n"
    );
    let (_, stdout, _) = check(
        &["--statistics", "--output-format", "json", "."],
        project.path(),
    );
    let rows: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        rows[0],
        serde_json::json!({"code": "ORM101", "name": "len-queryset", "count": 3, "fixable": 3})
    );
}

/// `len()` silenced where it is, and a stale `# noqa: ORM102` beside another tool's code.
const STALE_NOQA: &str = "from blog.models import Entry\n\ndef f():\n    return len(Entry.objects.all())  # noqa: ORM101\n\ndef g():\n    return Entry.objects.count()  # noqa: E501, ORM102\n";

#[test]
fn unused_noqa_is_reported_selectable_and_fixed() {
    let project = temp::project(&[("v.py", STALE_NOQA.as_bytes())]);
    let (code, stdout, _) = check(&["v.py"], project.path());
    assert_eq!(code, 1);
    assert_eq!(
        stdout,
        "v.py:7:35: ORM900 `ORM102` is suppressed on this line but nothing here is reported for it; remove it [*]\n\
         Found 1 ORM issue in 1 file (1 with a safe fix, marked [*]).\n"
    );
    let (code, stdout, _) = check(&["--ignore", "ORM900", "v.py"], project.path());
    assert_eq!((code, stdout.lines().count()), (0, 1));
    let (code, _, _) = check(&["--select", "ORM101", "v.py"], project.path());
    assert_eq!(code, 0);

    // A noqa for a rule the settings turn off silences nothing now, but is not wrong.
    let (code, stdout, _) = check(&["--ignore", "ORM102", "v.py"], project.path());
    assert_eq!(
        (code, stdout.as_str()),
        (0, "No ORM issues found in 1 file.\n")
    );
    let per_file = temp::project(&[
        (
            "pyproject.toml",
            b"[tool.django-orm-lsp]\nper-file-ignores = { \"v.py\" = [\"ORM102\"] }\n",
        ),
        ("v.py", STALE_NOQA.as_bytes()),
    ]);
    let (code, _, _) = check(&["v.py"], per_file.path());
    assert_eq!(code, 0);

    // --fix takes out the stale code and keeps the other tool's.
    let (code, stdout, _) = check(&["--fix", "v.py"], project.path());
    assert_eq!(code, 0, "{stdout}");
    assert_eq!(
        read(project.path(), "v.py"),
        STALE_NOQA.replace("# noqa: E501, ORM102", "# noqa: E501")
    );
}

const BASELINE: &str = r#"from blog.models import Entry

def f():
    return len(Entry.objects.all()), bool(Entry.objects.all())

def g():
    return len(Entry.objects.all())  # noqa: E501

def h():
    return len(Entry.objects.all())  # the old way

def i():
    return (len(Entry.objects.all()), """
    # noqa: not a comment
    """)
"#;

#[test]
fn add_noqa_writes_a_baseline_that_silences_every_finding() {
    let project = temp::project(&[("v.py", BASELINE.as_bytes()), ("ok.py", b"x = 1\n")]);
    let (code, stdout, stderr) = check(&["--add-noqa", "."], project.path());
    assert_eq!(code, 1, "one line could not take a comment");
    assert_eq!(stdout, "Added 4 noqa codes to 1 file.\n");
    assert_eq!(
        stderr,
        "warning: ./v.py:13: cannot add `# noqa: ORM101`: the line continues (a backslash, or a string that goes on to the next line); suppress it by hand\n"
    );
    let expected = BASELINE
        .replace(
            "bool(Entry.objects.all())\n",
            "bool(Entry.objects.all())  # noqa: ORM101, ORM102\n",
        )
        .replace("# noqa: E501", "# noqa: E501, ORM101")
        .replace("# the old way", "# the old way  # noqa: ORM101");
    assert_eq!(read(project.path(), "v.py"), expected);
    assert_eq!(read(project.path(), "ok.py"), "x = 1\n");

    // Only the line that could not take a comment is still reported, and nothing is unused.
    let (code, stdout, _) = check(&["."], project.path());
    assert_eq!(code, 1);
    assert!(stdout.starts_with("./v.py:13:13: ORM101 "), "{stdout}");
    assert_eq!(stdout.lines().count(), 2, "{stdout}");

    // Running it again adds nothing.
    let (_, stdout, _) = check(&["--add-noqa", "."], project.path());
    assert_eq!(stdout, "Added 0 noqa codes to 0 files.\n");
    assert_eq!(read(project.path(), "v.py"), expected);

    // A stale suppression is not baselined with `# noqa: ORM900`: it is for --fix to remove.
    let stale = temp::project(&[("v.py", STALE_NOQA.as_bytes())]);
    let (code, stdout, _) = check(&["--add-noqa", "v.py"], stale.path());
    assert_eq!(
        (code, stdout.as_str()),
        (0, "Added 0 noqa codes to 0 files.\n")
    );
    assert_eq!(read(stale.path(), "v.py"), STALE_NOQA);
}

/// Each hook of `.pre-commit-hooks.yaml` as pre-commit runs it: the entry's words, then the
/// staged files' names.
#[test]
fn pre_commit_hooks_run_on_the_files_they_are_given() {
    let hooks = std::fs::read_to_string(repo().join(".pre-commit-hooks.yaml")).unwrap();
    let field = |hook: &str, key: &str| -> String {
        let block = hooks.split("- id: ").find(|b| b.starts_with(hook)).unwrap();
        let line = block
            .lines()
            .find_map(|l| l.trim().strip_prefix(&format!("{key}: ")))
            .unwrap_or_else(|| panic!("{hook} has no {key}"));
        line.to_string()
    };
    let run = |hook: &str, dir: &Path| {
        assert_eq!(field(hook, "language"), "python");
        assert_eq!(field(hook, "types"), "[python]");
        assert_eq!(field(hook, "require_serial"), "true");
        let entry = field(hook, "entry");
        let mut words = entry.split_whitespace();
        assert_eq!(words.next(), Some("django-orm-lsp"));
        let out = Command::new(env!("CARGO_BIN_EXE_django-orm-lsp"))
            .args(words)
            .args(["app/views.py", "app/ok.py"])
            .current_dir(dir)
            .output()
            .unwrap();
        (
            out.status.code().unwrap(),
            String::from_utf8(out.stdout).unwrap(),
        )
    };
    let project = temp::project(&[
        ("app/views.py", FIXABLE.as_bytes()),
        ("app/ok.py", b"x = 1\n"),
    ]);
    let (code, stdout) = run("django-orm-lsp\n", project.path());
    assert_eq!(code, 1);
    assert!(
        stdout.ends_with("Found 3 ORM issues in 2 files (2 with a safe fix, marked [*]).\n"),
        "{stdout}"
    );
    assert_eq!(read(project.path(), "app/views.py"), FIXABLE);

    let (code, stdout) = run("django-orm-lsp-fix", project.path());
    assert_eq!(code, 1, "the ORM104 finding has no fix and remains");
    assert!(stdout.ends_with("Fixed 3 issues in 1 file.\n"), "{stdout}");
    assert_eq!(read(project.path(), "app/views.py"), FIXED);
}

const BLOG_MODELS: &str = r#"from django.db import models


class Author(models.Model):
    name = models.CharField(max_length=100)


class Entry(models.Model):
    author = models.ForeignKey(Author, on_delete=models.CASCADE)
    title = models.CharField(max_length=200)
    score = models.IntegerField()


class Comment(models.Model):
    entry = models.ForeignKey(Entry, on_delete=models.CASCADE, related_name="comments")
    approved = models.BooleanField(default=False)
"#;

/// One rule of each read-side kind in one file: a column kept (ORM201), an aggregate (ORM202),
/// relations read per row (ORM402, ORM405, ORM409) and a query per iteration (ORM404, unsafe).
const READ_SIDE: &str = r#"from django.db.models import Q

from .models import Comment, Entry


def titles():
    return [e.title for e in Entry.objects.filter(Q(score__gt=1))]


def total_score():
    return sum(e.score for e in Entry.objects.all())


def report():
    entries = Entry.objects.filter(score__gt=0)
    for entry in entries:
        print(entry.author.name, entry.comments.count())
        for comment in entry.comments.filter(approved=True):
            print(comment)


def by_ids(ids):
    pks = list(ids)
    for pk in pks:
        print(Entry.objects.get(pk=pk))
"#;

#[test]
fn read_side_rewrites_through_the_binary() {
    let project = temp::project(&[
        ("blog/__init__.py", b""),
        ("blog/models.py", BLOG_MODELS.as_bytes()),
        ("blog/views.py", READ_SIDE.as_bytes()),
    ]);
    let (_, stdout, _) = check(&["--output-format", "json", "blog"], project.path());
    let found: Vec<(String, String)> = serde_json::from_str::<Value>(&stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["code"].as_str().unwrap().to_string(),
                f["fix"]["applicability"]
                    .as_str()
                    .unwrap_or("none")
                    .to_string(),
            )
        })
        .collect();
    let expected = [
        ("ORM201", "safe"),
        ("ORM202", "safe"),
        ("ORM402", "safe"),
        ("ORM409", "safe"),
        ("ORM405", "safe"),
        ("ORM404", "unsafe"),
    ];
    assert_eq!(found, expected.map(|(c, a)| (c.to_string(), a.to_string())));

    let (code, _, _) = check(&["--fix", "blog"], project.path());
    assert_eq!(code, 1, "the unsafe ORM404 remains");
    let safe_fixed = r#"from django.db.models import Q, Sum, Count, Prefetch

from .models import Comment, Entry


def titles():
    return list(Entry.objects.filter(Q(score__gt=1)).values_list("title", flat=True))


def total_score():
    return Entry.objects.all().aggregate(Sum("score"))["score__sum"] or 0


def report():
    entries = Entry.objects.filter(score__gt=0).select_related("author").annotate(comments_count=Count("comments")).prefetch_related(Prefetch("comments", queryset=Comment.objects.filter(approved=True), to_attr="filtered_comments"))
    for entry in entries:
        print(entry.author.name, entry.comments_count)
        for comment in entry.filtered_comments:
            print(comment)


def by_ids(ids):
    pks = list(ids)
    for pk in pks:
        print(Entry.objects.get(pk=pk))
"#;
    assert_eq!(read(project.path(), "blog/views.py"), safe_fixed);

    let (code, _, _) = check(&["--fix", "--unsafe-fixes", "blog"], project.path());
    assert_eq!(code, 0);
    assert_eq!(
        read(project.path(), "blog/views.py"),
        safe_fixed.replace(
            "    for pk in pks:\n        print(Entry.objects.get(pk=pk))",
            "    entry_by_pk = Entry.objects.in_bulk(pks)\n    for pk in pks:\n        print(entry_by_pk[pk])"
        )
    );
}

/// ORM411 through the binary: the serializers are in other files than the views, and the
/// finding sits at the view's queryset with the fix where it is built.
#[test]
fn serializer_findings_on_the_blogapp_project() {
    let (code, stdout, stderr) = check(
        &[
            "--output-format",
            "json",
            "--select",
            "ORM411",
            "tests/fixtures/projects/blogapp",
        ],
        &repo(),
    );
    assert_eq!(code, 1, "{stderr}");
    let items: Vec<Value> = serde_json::from_str(&stdout).unwrap();
    let lines: Vec<(&str, u64)> = items
        .iter()
        .map(|i| (i["path"].as_str().unwrap(), i["line"].as_u64().unwrap()))
        .collect();
    let api = "tests/fixtures/projects/blogapp/blog/api.py";
    assert_eq!(
        lines,
        [
            (api, 11),
            (api, 19),
            (api, 19),
            (api, 19),
            (api, 28),
            (api, 28),
            (api, 32),
            (api, 32),
            (api, 38),
            (api, 38)
        ]
    );
    assert_eq!(
        items[0],
        serde_json::json!({
            "path": api,
            "line": 11, "column": 16, "end_line": 11, "end_column": 55,
            "code": "ORM411", "name": "n-plus-one-serializer",
            "message": "`AuthorSerializer.city` (accounts/serializers.py:7) reads `author__profile` for every row, one query each; add `select_related(\"author__profile\")` to this queryset",
            "severity": "warning",
            "fix": {
                "applicability": "safe",
                "message": "Add `select_related(\"author__profile\")` where the queryset is built",
                "edits": [{"line": 11, "column": 54, "end_line": 11, "end_column": 54, "content": ", \"author__profile\""}]
            }
        })
    );
    // Sliced rows (`[:20]`) and a queryset with `only()` get the finding without a fix.
    let fixes: Vec<bool> = items.iter().map(|i| i["fix"].is_object()).collect();
    assert_eq!(
        fixes,
        [true, true, true, true, true, false, false, false, true, true]
    );
}

/// ORM412 through the binary: the changelist of `shop/admin.py` shows model methods and
/// `__str__` declared in `shop/models.py`; the findings sit at the `list_display` entries and
/// name the read in the models file.
#[test]
fn admin_changelist_findings_on_the_adminsite_project() {
    let (code, stdout, stderr) = check(
        &[
            "--output-format",
            "json",
            "--select",
            "ORM412",
            "tests/fixtures/projects/adminsite",
        ],
        &repo(),
    );
    assert_eq!(code, 1, "{stderr}");
    let items: Vec<Value> = serde_json::from_str(&stdout).unwrap();
    let admin = "tests/fixtures/projects/adminsite/shop/admin.py";
    let lines: Vec<(&str, u64)> = items
        .iter()
        .map(|i| (i["path"].as_str().unwrap(), i["line"].as_u64().unwrap()))
        .collect();
    assert_eq!(lines, [(admin, 11), (admin, 12), (admin, 13)]);
    assert_eq!(
        items[1],
        serde_json::json!({
            "path": admin,
            "line": 12, "column": 9, "end_line": 12, "end_column": 28,
            "code": "ORM412", "name": "admin-list-n-plus-one",
            "message": "`Book.author_birthplace` (shop/models.py:28) reads `author__birthplace` for every row of `BookAdmin`'s changelist, one query each: `select_related()` without lookups follows only keys that cannot be null, and `author__birthplace` may be null; join it in `list_select_related`",
            "severity": "warning",
            "fix": {
                "applicability": "safe",
                "message": "Add `author__birthplace` to `list_select_related`",
                "edits": [{"line": 15, "column": 6, "end_line": 15, "end_column": 6, "content": "\n    list_select_related = (\"author__birthplace\",)"}]
            }
        })
    );
    // The prefetch that answers `tag_count` is offered as an unsafe fix only.
    assert_eq!(items[2]["fix"]["applicability"], "unsafe");
}

/// ORM410 through the binary: the templates under `blog/templates/` are indexed with the models,
/// and the finding sits in the view where the queryset is built, naming the template line.
#[test]
fn template_findings_on_the_blogapp_project() {
    let (code, stdout, stderr) = check(
        &[
            "--output-format",
            "json",
            "--select",
            "ORM410",
            "tests/fixtures/projects/blogapp",
        ],
        &repo(),
    );
    assert_eq!(code, 1, "{stderr}");
    let all: Vec<Value> = serde_json::from_str(&stdout).unwrap();
    let views = "tests/fixtures/projects/blogapp/blog/views.py";
    // The other modules' findings (paged and tag views) are the rules fixtures' business.
    let items: Vec<&Value> = all.iter().filter(|i| i["path"] == views).collect();
    assert!(
        items.len() < all.len(),
        "the other views' findings are missing"
    );
    let found: Vec<(&str, u64, bool)> = items
        .iter()
        .map(|i| {
            (
                i["path"].as_str().unwrap(),
                i["line"].as_u64().unwrap(),
                i["fix"].is_object(),
            )
        })
        .collect();
    // No fix for a queryset with `only("title")` (author), a slice (line 35), a bare `model` or
    // a relation's rows (line 57, where they are taken).
    assert_eq!(
        found,
        [
            (views, 10, true),
            (views, 10, true),
            (views, 15, true),
            (views, 20, false),
            (views, 20, true),
            (views, 25, true),
            (views, 30, true),
            (views, 35, false),
            (views, 42, false),
            (views, 42, false),
            (views, 48, true),
            (views, 57, false),
        ]
    );
    assert_eq!(
        *items[0],
        serde_json::json!({
            "path": views,
            "line": 10, "column": 13, "end_line": 10, "end_column": 44,
            "code": "ORM410", "name": "n-plus-one-template",
            "message": "`post.author.name` (blog/post_list.html:7) reads `author` for every row, one query each; add `select_related(\"author\")` to this queryset",
            "severity": "warning",
            "fix": {
                "applicability": "safe",
                "message": "Add `select_related(\"author\")` where the queryset is built",
                "edits": [{"line": 10, "column": 44, "end_line": 10, "end_column": 44, "content": ".select_related(\"author\")"}]
            }
        })
    );
    // Through an include: the message names the included template.
    assert!(items[5]["message"]
        .as_str()
        .unwrap()
        .starts_with("`c.name` (blog/row.html:1) reads `category`"));
}

/// A blog app whose view reads `entry.blog.id` (ORM401), and the texts of its models and view.
fn blog_project() -> (temp::Dir, &'static str, &'static str) {
    let models = "from django.db import models\n\nclass Blog(models.Model):\n    code = models.CharField(max_length=10, unique=True)\n\nclass Entry(models.Model):\n    blog = models.ForeignKey(Blog, on_delete=models.CASCADE)\n";
    let views = "from .models import Entry\n\ndef f():\n    for entry in Entry.objects.all():\n        print(entry.blog.id)\n";
    let project = temp::project(&[
        ("blog/__init__.py", b""),
        ("blog/models.py", models.as_bytes()),
        ("blog/views.py", views.as_bytes()),
    ]);
    (project, models, views)
}

#[test]
fn the_cache_reuses_unchanged_files_and_follows_every_change() {
    let (project, models, views) = blog_project();
    let run = |args: &[&str]| {
        let mut all = vec!["--output-format", "json"];
        all.extend_from_slice(args);
        all.push("blog");
        let (_, stdout, _) = check(&all, project.path());
        findings(&stdout)
            .into_iter()
            .map(|(_, code, _)| code)
            .collect::<Vec<_>>()
    };
    assert_eq!(run(&[]), ["ORM401"]);
    let cache = project.path().join(".django-orm-lsp-cache");
    assert_eq!(
        std::fs::read_to_string(cache.join(".gitignore")).unwrap(),
        "*\n"
    );
    // Served from the cache: the same findings, also after the cache proves it is used by
    // answering for a file whose text it knows (a corrupt entry would show here).
    assert_eq!(run(&[]), ["ORM401"]);

    // A file's own change.
    let more = format!("{views}\ndef g():\n    return len(Entry.objects.all())\n");
    std::fs::write(project.path().join("blog/views.py"), &more).unwrap();
    assert_eq!(run(&[]), ["ORM401", "ORM101"]);

    // A change only in models.py changes what views.py's analysis knows: with `to_field`,
    // `entry.blog.id` is no longer the key column (ORM402 instead of ORM401).
    let keyed = models.replace(
        "on_delete=models.CASCADE)",
        "on_delete=models.CASCADE, to_field=\"code\")",
    );
    std::fs::write(project.path().join("blog/models.py"), keyed).unwrap();
    assert_eq!(run(&[]), ["ORM402", "ORM101"]);
    assert_eq!(run(&["--no-cache"]), ["ORM402", "ORM101"]);
}

/// A view loops over what a helper in another module returns: its findings depend on the
/// helper's body, which the model index does not hold.
#[test]
fn the_cache_follows_a_change_in_a_helper_another_module_defines() {
    let (project, _, _) = blog_project();
    let helper = "def entries(qs):\n    return qs.all()\n";
    let views = "from .models import Entry\nfrom .helpers import entries\n\ndef f():\n    for entry in entries(Entry.objects.all()):\n        print(entry.blog.code)\n";
    std::fs::write(project.path().join("blog/helpers.py"), helper).unwrap();
    std::fs::write(project.path().join("blog/views.py"), views).unwrap();
    let run = || {
        let (_, stdout, _) = check(&["--output-format", "json", "blog"], project.path());
        findings(&stdout)
            .into_iter()
            .map(|(_, code, _)| code)
            .collect::<Vec<_>>()
    };
    assert_eq!(run(), ["ORM402"]);
    assert_eq!(run(), ["ORM402"]);
    // The helper now joins the relation: the view's cached finding is stale.
    let joining = helper.replace("qs.all()", "qs.select_related(\"blog\")");
    std::fs::write(project.path().join("blog/helpers.py"), joining).unwrap();
    assert_eq!(run(), Vec::<String>::new());
}

#[test]
fn the_cache_outlives_text_changes_that_leave_the_model_index_as_it_was() {
    let (project, models, _) = blog_project();
    let messages = || {
        let (_, stdout, _) = check(&["--output-format", "json", "blog"], project.path());
        let items: Vec<Value> = serde_json::from_str(&stdout).unwrap();
        items
            .iter()
            .map(|i| i["message"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    let reported = messages();
    assert_eq!(reported.len(), 1);
    // Mark the cached finding, so that the output tells whether views.py was linted again.
    let stored = project.path().join(".django-orm-lsp-cache/check.json");
    let text = std::fs::read_to_string(&stored).unwrap();
    assert!(text.contains(&serde_json::to_string(&reported[0]).unwrap()[1..]));
    std::fs::write(&stored, text.replace(&reported[0], "served from the cache")).unwrap();
    assert_eq!(messages(), ["served from the cache"]);

    // New lines in models.py change its text but not what the index knows: views.py's findings
    // still hold.
    let commented = models.replace("\nclass Entry", "\n# Entries.\n\nclass Entry");
    std::fs::write(project.path().join("blog/models.py"), commented).unwrap();
    assert_eq!(messages(), ["served from the cache"]);

    // A change to what the index knows invalidates them.
    let keyed = models.replace(
        "on_delete=models.CASCADE)",
        "on_delete=models.CASCADE, to_field=\"code\")",
    );
    std::fs::write(project.path().join("blog/models.py"), keyed).unwrap();
    let relinted = messages();
    assert_eq!(relinted.len(), 1);
    assert_ne!(relinted, ["served from the cache"]);
}

/// `check` on a folder or a file indexes the whole project the path belongs to (the folder
/// holding its `manage.py`): `articles/views.py` reads `article.author.profile` through a model
/// of the `authors` app, which naming only `articles` must not hide.
#[test]
fn a_folder_a_file_and_the_whole_project_give_the_same_findings() {
    let project = "tests/fixtures/projects/newsroom";
    let views = "tests/fixtures/projects/newsroom/articles/views.py";
    let of_views = |named: &str, cwd: &Path| {
        let (code, stdout, stderr) = check(&["--no-cache", "--output-format", "json", named], cwd);
        assert_eq!(code, 1, "{stderr}");
        let items: Vec<Value> = serde_json::from_str(&stdout).unwrap();
        items
            .iter()
            // The project's one views.py, whatever the path is relative to.
            .filter(|i| i["path"].as_str().unwrap().ends_with("views.py"))
            .map(|i| format!("{}:{} {}", i["line"], i["column"], i["code"]))
            .collect::<Vec<_>>()
    };
    let whole = of_views(project, &repo());
    assert!(whole.contains(&"16:29 \"ORM402\"".to_string()), "{whole:?}");
    assert_eq!(of_views(&format!("{project}/articles"), &repo()), whole);
    assert_eq!(of_views(views, &repo()), whole);
    // From inside the project, named relative to it.
    let inside = repo().join(project).join("articles");
    assert_eq!(of_views(".", &inside), whole);
    assert_eq!(of_views("views.py", &inside), whole);
    // Only the named paths are reported on.
    let (_, stdout, _) = check(&["--no-cache", "--output-format", "json", views], &repo());
    assert!(
        findings(&stdout).iter().all(|(path, _, _)| path == views),
        "{stdout}"
    );
}
