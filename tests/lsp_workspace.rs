//! The server's model index end to end: indexing a workspace with progress, cross-file findings,
//! hover, code lenses, and re-indexing when a models file changes in the editor or on disk.

mod common;

use std::path::PathBuf;

use common::lsp_client::Client;
use serde_json::{json, Value};

const MODELS: &str = "from django.db import models\n\n\nclass Blog(models.Model):\n    code = models.CharField(max_length=10, unique=True)\n\n\nclass Entry(models.Model):\n    blog = models.ForeignKey(Blog, on_delete=models.CASCADE)\n";
const VIEWS: &str = "from .models import Entry\n\n\ndef blog_ids():\n    for entry in Entry.objects.all():\n        print(entry.blog.id)\n";

struct Project(PathBuf);

impl Project {
    fn new(name: &str) -> Self {
        let root =
            std::env::temp_dir().join(format!("django-orm-lsp-ws-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("blog")).unwrap();
        std::fs::write(root.join("blog/__init__.py"), "").unwrap();
        std::fs::write(root.join("blog/models.py"), MODELS).unwrap();
        Self(root)
    }

    fn uri(&self, relative: &str) -> String {
        format!("file://{}", self.0.join(relative).display())
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn codes(diagnostics: &[Value]) -> Vec<String> {
    diagnostics
        .iter()
        .map(|d| d["code"].as_str().unwrap().to_string())
        .collect()
}

/// Waits for diagnostics of `uri` (any version) satisfying `accept`.
fn diagnostics_where(
    client: &mut Client,
    uri: &str,
    accept: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let params = client.notification("textDocument/publishDiagnostics", |p| {
        p["uri"] == uri && accept(p["diagnostics"].as_array().unwrap())
    });
    params["diagnostics"].as_array().unwrap().clone()
}

#[test]
fn indexes_the_workspace_with_progress_and_finds_cross_file_issues() {
    let project = Project::new("index");
    let mut client = Client::spawn();
    client.call(
        "initialize",
        json!({
            "processId": null,
            "rootUri": format!("file://{}", project.0.display()),
            "capabilities": {
                "window": {"workDoneProgress": true, "showDocument": {"support": true}},
                "workspace": {
                    "didChangeWatchedFiles": {"dynamicRegistration": true},
                    "codeLens": {"refreshSupport": true},
                },
                "textDocument": {"publishDiagnostics": {"versionSupport": true}},
            },
        }),
    );
    client.notify("initialized", json!({}));
    let views = project.uri("blog/views.py");
    client.open(&views, VIEWS, 1);
    // Once the models are indexed, `entry.blog.id` is known to read a foreign key.
    let found = diagnostics_where(&mut client, &views, |d| !d.is_empty());
    assert_eq!(codes(&found), ["ORM401"]);
    let begin = client.notification("$/progress", |p| p["value"]["kind"] == "begin");
    assert_eq!(begin["value"]["title"], "Indexing models");
    client.notification("$/progress", |p| p["value"]["kind"] == "end");
    let registered = client.backlog.iter().any(|m| {
        m["method"] == "client/registerCapability"
            && m["params"]["registrations"][0]["method"] == "workspace/didChangeWatchedFiles"
    });
    assert!(registered, "the server asks to watch Python files");

    // Hover on `blog` in `entry.blog.id` shows what the analyzer knows.
    let hover = client.call(
        "textDocument/hover",
        json!({"textDocument": {"uri": views}, "position": {"line": 5, "character": 21}}),
    );
    assert_eq!(
        hover["contents"]["value"],
        "```text\nblog.Blog\n```\n*django-orm-lsp*"
    );

    // The loop's lens counts its SELECT and the blog each row loads; so does the function's. The server asked for
    // lenses again once the index was built: the count needs the models.
    client.notification("workspace/codeLens/refresh", |_| true);
    let lenses = client.call(
        "textDocument/codeLens",
        json!({"textDocument": {"uri": views}}),
    );
    let lens = |line: u32, character: u32| {
        let start = json!({"line": line, "character": character});
        json!({
            "range": {"start": start, "end": start},
            "command": {
                "title": "1 + N queries",
                "command": "django-orm-lsp.showQueries",
                "arguments": [views, start],
            },
        })
    };
    // The function's, on its `def` line, and the loop's.
    assert_eq!(lenses, json!([lens(3, 0), lens(4, 4)]));

    // Clicking the loop's lens opens its queries in a tab: the SQL of the rows, then what each
    // row runs.
    client.call("workspace/executeCommand", lenses[1]["command"].clone());
    let shown = client.notification("window/showDocument", |_| true);
    let path = shown["uri"]
        .as_str()
        .unwrap()
        .strip_prefix("file://")
        .unwrap();
    assert!(path.ends_with("views-5.sql"), "{shown}");
    assert_eq!(
        std::fs::read_to_string(path).unwrap(),
        "-- The loop on line 5 runs 1 + N queries.\n\n\
         -- Once:\n\
         -- `Entry.objects.all()` (line 5): its rows\n\
         SELECT \"blog_entry\".\"id\", \"blog_entry\".\"blog_id\" FROM \"blog_entry\";\n\n\
         -- On each row:\n\
         -- `entry.blog` (line 6): loads the related row by its key\n\
         SELECT \"blog_blog\".\"id\", \"blog_blog\".\"code\" FROM \"blog_blog\" \
         WHERE \"blog_blog\".\"id\" = %s LIMIT 21;\n"
    );

    // Editing the models document re-indexes: with `to_field`, `blog_id` is no longer the id, so
    // `entry.blog.id` loads each blog (ORM402) instead of reading a column (ORM401).
    let models = project.uri("blog/models.py");
    client.open(&models, MODELS, 1);
    let changed = MODELS.replace(
        "on_delete=models.CASCADE)",
        "on_delete=models.CASCADE, to_field=\"code\")",
    );
    client.notify("textDocument/didChange", json!({"textDocument": {"uri": models, "version": 2}, "contentChanges": [{"text": changed}]}));
    // As below: an earlier push may come first; the client must be left with the new finding.
    let after = diagnostics_where(&mut client, &views, |d| codes(d) == ["ORM402"]);
    assert_eq!(codes(&after), ["ORM402"]);

    // Hover on the finding adds the SQL before its fix (the rows, then each row's blog, by its
    // `to_field`) and after it (one SELECT joining the blogs).
    let hover = client.call(
        "textDocument/hover",
        json!({"textDocument": {"uri": views}, "position": {"line": 5, "character": 21}}),
    );
    let shown = hover["contents"]["value"].as_str().unwrap();
    assert!(
        shown.starts_with("```text\nblog.Blog\n```\n\n**Before the fix**\n")
            && shown.contains(
                "then on each row\n```sql\nSELECT \"blog_blog\".\"id\", \"blog_blog\".\"code\" \
                 FROM \"blog_blog\" WHERE \"blog_blog\".\"code\" = %s LIMIT 21\n```"
            )
            && shown.contains(
                "INNER JOIN \"blog_blog\" ON (\"blog_entry\".\"blog_id\" = \"blog_blog\".\"code\")"
            ),
        "{shown}"
    );
    assert_eq!(client.shutdown_and_exit(), 0);
}

#[test]
fn files_changed_on_disk_are_reindexed() {
    let project = Project::new("disk");
    std::fs::write(project.0.join("blog/models.py"), "x = 1\n").unwrap();
    let mut client = Client::spawn();
    client.call(
        "initialize",
        json!({"processId": null, "rootUri": format!("file://{}", project.0.display()), "capabilities": {"textDocument": {"publishDiagnostics": {"versionSupport": true}}}}),
    );
    client.notify("initialized", json!({}));
    client.notification("window/logMessage", |p| {
        p["message"].as_str().unwrap().contains("indexed")
    });
    let views = project.uri("blog/views.py");
    client.open(&views, VIEWS, 1);
    // No models yet: `entry` is not known to be an instance, so nothing is reported.
    assert!(client.diagnostics(&views, 1).is_empty());
    std::fs::write(project.0.join("blog/models.py"), MODELS).unwrap();
    client.notify(
        "workspace/didChangeWatchedFiles",
        json!({"changes": [{"uri": project.uri("blog/models.py"), "type": 2}]}),
    );
    let found = diagnostics_where(&mut client, &views, |d| !d.is_empty());
    assert_eq!(codes(&found), ["ORM401"]);

    // A pyproject.toml appearing at the root is read and applied to open documents.
    std::fs::write(
        project.0.join("pyproject.toml"),
        "[tool.django-orm-lsp]\nignore = [\"ORM401\"]\n",
    )
    .unwrap();
    client.notify(
        "workspace/didChangeWatchedFiles",
        json!({"changes": [{"uri": project.uri("pyproject.toml"), "type": 1}]}),
    );
    diagnostics_where(&mut client, &views, |d| d.is_empty());
}

/// A client that pulls diagnostics but cannot be asked to pull again (Neovim 0.10 and 0.11) is
/// pushed to: it sees the findings that need the model index with no edit, once the index is
/// ready, and again after a models file changes on disk.
#[test]
fn a_pulling_client_without_refresh_support_gets_index_findings_with_no_edit() {
    let project = Project::new("pull-no-refresh");
    let keyed = MODELS.replace(
        "on_delete=models.CASCADE)",
        "on_delete=models.CASCADE, to_field=\"code\")",
    );
    std::fs::write(project.0.join("blog/models.py"), &keyed).unwrap();
    let mut client = Client::spawn();
    let init = client.call(
        "initialize",
        json!({
            "processId": null,
            "rootUri": format!("file://{}", project.0.display()),
            "capabilities": {
                "workspace": {"didChangeWatchedFiles": {"dynamicRegistration": true}},
                "textDocument": {
                    "diagnostic": {"dynamicRegistration": false},
                    "publishDiagnostics": {"versionSupport": true}
                },
            },
        }),
    );
    client.notify("initialized", json!({}));
    // It is not offered pulls, so it does not make its one pull before the index is ready.
    assert!(
        init["capabilities"].get("diagnosticProvider").is_none(),
        "{init}"
    );
    let views = project.uri("blog/views.py");
    client.open(&views, VIEWS, 1);
    // With `to_field`, `entry.blog.id` loads each blog: ORM402, which needs the models.
    let found = diagnostics_where(&mut client, &views, |d| !d.is_empty());
    assert_eq!(codes(&found), ["ORM402"]);

    // The models change on disk, never opened: the open view is re-checked and pushed.
    std::fs::write(project.0.join("blog/models.py"), MODELS).unwrap();
    client.notify(
        "workspace/didChangeWatchedFiles",
        json!({"changes": [{"uri": project.uri("blog/models.py"), "type": 2}]}),
    );
    // A push of a lint that started while the index was being rebuilt may come first (with
    // nothing, or the old finding); what the client is left with must be the new finding.
    let after = diagnostics_where(&mut client, &views, |d| codes(d) == ["ORM401"]);
    assert_eq!(codes(&after), ["ORM401"]);
    assert_eq!(client.shutdown_and_exit(), 0);
}

/// The server, initialized on the `blogapp` fixture project, and the project's folder.
fn serve_blogapp() -> (Client, PathBuf) {
    let root = std::fs::canonicalize(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/projects/blogapp"),
    )
    .unwrap();
    let mut client = Client::spawn();
    client.call(
        "initialize",
        json!({"processId": null, "rootUri": format!("file://{}", root.display()), "capabilities": {}}),
    );
    client.notify("initialized", json!({}));
    (client, root)
}

#[test]
fn a_serializer_finding_points_at_the_serializer_field_in_its_own_file() {
    let (mut client, root) = serve_blogapp();
    let api = format!("file://{}", root.join("blog/api.py").display());
    let text = std::fs::read_to_string(root.join("blog/api.py")).unwrap();
    client.open(&api, &text, 1);
    // Once serializers.py and the models are indexed, the view's queryset is reported.
    let found = diagnostics_where(&mut client, &api, |d| !d.is_empty());
    let first = &found[0];
    assert_eq!(first["code"], "ORM411");
    assert_eq!(
        first["range"]["start"],
        json!({"line": 10, "character": 15})
    );
    let related = first["relatedInformation"].as_array().unwrap();
    assert_eq!(related.len(), 1);
    assert_eq!(
        related[0]["location"]["uri"],
        format!("file://{}", root.join("accounts/serializers.py").display())
    );
    assert_eq!(
        related[0]["location"]["range"],
        json!({"start": {"line": 6, "character": 4}, "end": {"line": 6, "character": 8}})
    );
    assert_eq!(
        related[0]["message"],
        "`AuthorSerializer.city` reads `author__profile` of every row"
    );
    assert_eq!(client.shutdown_and_exit(), 0);
}

#[test]
fn an_admin_changelist_finding_points_at_the_model_method_it_renders() {
    let root = std::fs::canonicalize(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/projects/adminsite"),
    )
    .unwrap();
    let mut client = Client::spawn();
    client.call(
        "initialize",
        json!({"processId": null, "rootUri": format!("file://{}", root.display()), "capabilities": {}}),
    );
    client.notify("initialized", json!({}));
    let admin = format!("file://{}", root.join("shop/admin.py").display());
    let text = std::fs::read_to_string(root.join("shop/admin.py")).unwrap();
    client.open(&admin, &text, 1);
    // Once models.py is indexed, the entries whose reads are not loaded are reported.
    let found = diagnostics_where(&mut client, &admin, |d| d.len() == 3);
    assert_eq!(codes(&found), ["ORM412", "ORM412", "ORM412"]);
    let method = &found[1];
    assert_eq!(
        method["range"],
        json!({"start": {"line": 11, "character": 8}, "end": {"line": 11, "character": 27}})
    );
    let related = &method["relatedInformation"][0];
    assert_eq!(
        related["location"]["uri"],
        format!("file://{}", root.join("shop/models.py").display())
    );
    assert_eq!(
        related["location"]["range"],
        json!({"start": {"line": 27, "character": 15}, "end": {"line": 27, "character": 42}})
    );
    assert_eq!(
        related["message"],
        "`author_birthplace` reads `self.author.birthplace.name` of every row"
    );
    assert_eq!(client.shutdown_and_exit(), 0);
}

#[test]
fn a_template_document_shows_the_findings_of_the_views_that_render_it() {
    let (mut client, root) = serve_blogapp();
    let path = root.join("blog/templates/blog/row.html");
    let uri = format!("file://{}", path.display());
    let text = std::fs::read_to_string(&path).unwrap();
    client.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": uri, "languageId": "django-html", "version": 1, "text": text}}),
    );
    // The Archive view renders archive.html, which includes row.html with each post.
    let found = diagnostics_where(&mut client, &uri, |d| !d.is_empty());
    assert_eq!(codes(&found), ["ORM410"]);
    assert_eq!(
        found[0]["range"],
        json!({"start": {"line": 0, "character": 62}, "end": {"line": 0, "character": 68}})
    );
    assert!(found[0]["message"]
        .as_str()
        .unwrap()
        .ends_with("(the view: blog/views.py:25)"));
    let related = &found[0]["relatedInformation"][0]["location"];
    assert_eq!(
        related["uri"],
        format!("file://{}", root.join("blog/views.py").display())
    );
    assert_eq!(
        related["range"]["start"],
        json!({"line": 24, "character": 15})
    );
    // Reading the category no more: the edited template has nothing to report.
    client.notify(
        "textDocument/didChange",
        json!({
            "textDocument": {"uri": uri, "version": 2},
            "contentChanges": [{"text": "<tr><td>{{ post.title }}</td></tr>\n"}],
        }),
    );
    let found = diagnostics_where(&mut client, &uri, |d| d.is_empty());
    assert!(found.is_empty());
    assert_eq!(client.shutdown_and_exit(), 0);
}

/// Opens the blogapp template at `relative` in the editor: its one finding is ORM410's, over
/// `range` (LSP positions), naming the view that renders it (`view`: "path:line").
fn assert_template_shows_its_finding(relative: &str, range: Value, view: &str) {
    let (mut client, root) = serve_blogapp();
    let path = root.join(relative);
    let uri = format!("file://{}", path.display());
    let text = std::fs::read_to_string(&path).unwrap();
    client.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": uri, "languageId": "django-html", "version": 1, "text": text}}),
    );
    let found = diagnostics_where(&mut client, &uri, |d| !d.is_empty());
    assert_eq!(codes(&found), ["ORM410"]);
    assert_eq!(found[0]["range"], range);
    assert!(found[0]["message"]
        .as_str()
        .unwrap()
        .ends_with(&format!("(the view: {view})")));
    assert_eq!(client.shutdown_and_exit(), 0);
}

/// Through `{% include "blog/cell.html" with post=p only %}`: the included template shows the
/// finding of the view that renders the including one, at the line that reads; the template
/// that includes it `only`, passing nothing, adds none.
#[test]
fn an_included_template_shows_the_finding_at_its_own_reading_line() {
    assert_template_shows_its_finding(
        "blog/templates/blog/cell.html",
        json!({"start": {"line": 0, "character": 32}, "end": {"line": 0, "character": 50}}),
        "blog/string_views.py:9",
    );
}

/// Two includes deep (deep_list.html includes deep_row.html with each post, which includes
/// deep_cell.html): the innermost template shows the finding of the view at its reading line.
#[test]
fn a_template_included_two_levels_deep_shows_the_finding_at_its_reading_line() {
    assert_template_shows_its_finding(
        "blog/templates/blog/deep_cell.html",
        json!({"start": {"line": 1, "character": 7}, "end": {"line": 1, "character": 25}}),
        "blog/deep_views.py:8",
    );
}

#[test]
fn a_template_finding_in_a_view_points_at_the_template_line_in_utf16() {
    let (mut client, root) = serve_blogapp();
    let views = format!("file://{}", root.join("blog/views.py").display());
    let text = std::fs::read_to_string(root.join("blog/views.py")).unwrap();
    client.open(&views, &text, 1);
    let found = diagnostics_where(&mut client, &views, |d| !d.is_empty());
    let author = found
        .iter()
        .find(|d| {
            d["range"]["start"]["line"] == 9
                && d["message"].as_str().unwrap().contains("post.author.name")
        })
        .unwrap();
    let related = &author["relatedInformation"][0];
    assert_eq!(
        related["location"]["uri"],
        format!(
            "file://{}",
            root.join("blog/templates/blog/post_list.html").display()
        )
    );
    // `—` before it is three bytes but one UTF-16 unit.
    assert_eq!(
        related["location"]["range"],
        json!({"start": {"line": 6, "character": 28}, "end": {"line": 6, "character": 44}})
    );
    assert_eq!(client.shutdown_and_exit(), 0);
}

#[test]
fn a_template_rendered_only_by_test_code_shows_its_findings_only_with_include_tests() {
    let project = Project::new("template-tests");
    std::fs::create_dir_all(project.0.join("blog/templates/blog")).unwrap();
    let template = "{% for entry in entries %}{{ entry.blog.code }}{% endfor %}\n";
    std::fs::write(project.0.join("blog/templates/blog/entries.html"), template).unwrap();
    std::fs::write(
        project.0.join("blog/tests.py"),
        "from django.shortcuts import render\n\nfrom .models import Entry\n\n\ndef render_entries(request):\n    return render(request, \"blog/entries.html\", {\"entries\": Entry.objects.all()})\n",
    )
    .unwrap();
    let mut client = Client::spawn();
    client.call(
        "initialize",
        json!({
            "processId": null,
            "rootUri": format!("file://{}", project.0.display()),
            "capabilities": {"textDocument": {"publishDiagnostics": {"versionSupport": true}}},
            "initializationOptions": {"includeTests": true},
        }),
    );
    client.notify("initialized", json!({}));
    let uri = project.uri("blog/templates/blog/entries.html");
    client.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": uri, "languageId": "django-html", "version": 1, "text": template}}),
    );
    // Test code included: once the workspace is indexed, the test's render call is reported.
    let found = diagnostics_where(&mut client, &uri, |d| !d.is_empty());
    assert_eq!(codes(&found), ["ORM410"]);

    // Left out: the same template, at a new version so that no earlier publication answers.
    client.notify(
        "workspace/didChangeConfiguration",
        json!({"settings": {"includeTests": false}}),
    );
    client.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": uri, "version": 2}, "contentChanges": [{"text": template}]}),
    );
    let params = client.notification("textDocument/publishDiagnostics", |p| {
        p["uri"] == uri.as_str() && p["version"] == 2
    });
    assert_eq!(params["diagnostics"], json!([]));
    assert_eq!(client.shutdown_and_exit(), 0);
}

#[test]
fn hover_renders_sql_as_the_installed_django_prints_it() {
    let project = Project::new("release");
    let django = project.0.join(".venv/lib/python3.11/site-packages/django");
    std::fs::create_dir_all(&django).unwrap();
    std::fs::write(
        django.join("__init__.py"),
        "from django.utils.version import get_version\n\nVERSION = (4, 2, 30, \"final\", 0)\n",
    )
    .unwrap();
    let mut client = Client::spawn();
    client.call(
        "initialize",
        json!({
            "processId": null,
            "rootUri": format!("file://{}", project.0.display()),
            "capabilities": {"window": {"workDoneProgress": true}},
        }),
    );
    client.notify("initialized", json!({}));
    client.notification("$/progress", |p| p["value"]["kind"] == "end");
    let views = project.uri("blog/views.py");
    client.open(
        &views,
        "from .models import Entry\n\ncodes = Entry.objects.values(\"blog__code\")\n",
        1,
    );
    let hover = client.call(
        "textDocument/hover",
        json!({"textDocument": {"uri": views}, "position": {"line": 2, "character": 24}}),
    );
    // Before 5.2 a `values()` column carries no `AS` name.
    assert_eq!(
        hover["contents"]["value"],
        "```text\nQuerySet[blog.Entry] · values\n```\n```sql\nSELECT \"blog_blog\".\"code\" FROM \
         \"blog_entry\" INNER JOIN \"blog_blog\" ON (\"blog_entry\".\"blog_id\" = \
         \"blog_blog\".\"id\")\n```\n*SQL as Django 4.2 prints it for PostgreSQL*\n\
         *django-orm-lsp*"
    );
    assert_eq!(client.shutdown_and_exit(), 0);
}
