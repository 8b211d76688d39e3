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
            finding("app/views.py", "ORM101", "warning"),
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
            finding("views.py", "ORM101", "warning"),
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
    assert_eq!(findings(&stdout), [finding("v.py", "ORM101", "warning")]);
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
        "# config: none found, defaults\nselect = [\"ALL\"]\nignore = []\nseverity = {}\nexclude = []\nper-file-ignores = {}\ntarget-django = \"5.2\"\nbulk-batch-size = 500\n"
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
            (api, 20),
            (api, 20),
            (api, 20),
            (api, 28),
            (api, 28),
            (api, 33),
            (api, 33)
        ]
    );
    assert_eq!(
        items[0],
        serde_json::json!({
            "path": api,
            "line": 11, "column": 16, "end_line": 11, "end_column": 55,
            "code": "ORM411", "name": "n-plus-one-serializer",
            "message": "`AuthorSerializer.city` (tests/fixtures/projects/blogapp/accounts/serializers.py:7) reads `author__profile` for every row, one query each; add `select_related(\"author__profile\")` to this queryset",
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
    assert_eq!(fixes, [true, true, true, true, true, false, false, false]);
}

/// ORM410 through the binary: the templates under `blog/templates/` are indexed with the models,
/// and the finding sits in the view, naming the template line.
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
    let items: Vec<Value> = serde_json::from_str(&stdout).unwrap();
    let views = "tests/fixtures/projects/blogapp/blog/views.py";
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
    // No fix for a queryset with `only("title")` (author), a slice (line 35) or a bare `model`.
    assert_eq!(
        found,
        [
            (views, 11, true),
            (views, 11, true),
            (views, 15, true),
            (views, 21, false),
            (views, 21, true),
            (views, 25, true),
            (views, 30, true),
            (views, 35, false),
            (views, 42, false),
            (views, 42, false),
            (views, 48, true),
        ]
    );
    assert_eq!(
        items[0],
        serde_json::json!({
            "path": views,
            "line": 11, "column": 61, "end_line": 11, "end_column": 66,
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
