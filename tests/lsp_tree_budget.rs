//! The server keeps syntax trees for the most recently used documents only (up to 1 MiB of
//! source between them): the others are re-parsed when needed. Findings must not change: a
//! document whose tree was dropped is re-checked after the model index changes, answers hovers,
//! and takes edits (the first parses in full, the next incrementally) like any other.

mod common;

use common::lsp_client::{apply_text_edits, Client};
use common::temp;
use serde_json::{json, Value};

const MODELS: &str = "from django.db import models\n\n\nclass Blog(models.Model):\n    code = models.CharField(max_length=10, unique=True)\n\n\nclass Entry(models.Model):\n    blog = models.ForeignKey(Blog, on_delete=models.CASCADE)\n";

/// `entry.blog.id` reads a foreign key column (ORM401) while `blog` points at the id. The
/// docstring makes the file 450 KB: three such files are over the tree budget.
fn views(n: usize) -> String {
    let padding = format!(
        "    \"\"\"{}\"\"\"\n",
        "padding line\n".repeat(450_000 / 13)
    );
    format!("from .models import Entry\n\n\ndef blog_ids_{n}():\n{padding}    for entry in Entry.objects.all():\n        print(entry.blog.id)\n")
}

fn codes(diagnostics: &[Value]) -> Vec<String> {
    diagnostics
        .iter()
        .map(|d| d["code"].as_str().unwrap().to_string())
        .collect()
}

/// The diagnostics published for `uri` (any version) whose codes are `expected`.
fn wait_for(client: &mut Client, uri: &str, expected: &[&str]) -> Vec<Value> {
    let params = client.notification("textDocument/publishDiagnostics", |p| {
        p["uri"] == uri && codes(p["diagnostics"].as_array().unwrap()) == expected
    });
    params["diagnostics"].as_array().unwrap().clone()
}

fn ranges(diagnostics: &[Value]) -> Vec<(String, Value)> {
    diagnostics
        .iter()
        .map(|d| (d["code"].as_str().unwrap().to_string(), d["range"].clone()))
        .collect()
}

#[test]
fn documents_beyond_the_tree_budget_keep_their_findings_through_reindexing_and_edits() {
    let project = temp::project(&[
        ("blog/__init__.py", b""),
        ("blog/models.py", MODELS.as_bytes()),
    ]);
    let root = project.path();
    let uri = |relative: &str| format!("file://{}", root.join(relative).display());
    let mut client = Client::spawn();
    client.call(
        "initialize",
        json!({"processId": null, "rootUri": uri(""), "capabilities": {"textDocument": {"publishDiagnostics": {"versionSupport": true}}}}),
    );
    client.notify("initialized", json!({}));
    client.notification("window/logMessage", |p| {
        p["message"].as_str().unwrap().contains("indexed")
    });

    // Four 450 KB documents: the first ones opened lose their trees.
    let names: Vec<String> = (0..4).map(|n| format!("blog/views_{n}.py")).collect();
    let texts: Vec<String> = (0..4).map(views).collect();
    for (name, text) in names.iter().zip(&texts) {
        client.open(&uri(name), text, 1);
        assert_eq!(codes(&client.diagnostics(&uri(name), 1)), ["ORM401"]);
    }

    // The model index changes: every document is re-checked, those without a tree on one parsed
    // for the occasion. With `to_field`, `entry.blog.id` loads each blog (ORM402).
    let models = uri("blog/models.py");
    client.open(&models, MODELS, 1);
    let to_field = MODELS.replace(
        "on_delete=models.CASCADE)",
        "on_delete=models.CASCADE, to_field=\"code\")",
    );
    client.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": models, "version": 2}, "contentChanges": [{"text": to_field}]}),
    );
    for name in &names {
        wait_for(&mut client, &uri(name), &["ORM402"]);
    }

    // A hover in a document without a tree parses one: the type, and on the finding the SQL
    // before and after its fix.
    let line = texts[1].lines().count() - 1;
    let hover = client.call(
        "textDocument/hover",
        json!({"textDocument": {"uri": uri(&names[1])}, "position": {"line": line, "character": 21}}),
    );
    let shown = hover["contents"]["value"].as_str().unwrap();
    assert!(
        shown.starts_with("```text\nblog.Blog\n```\n\n**Before the fix**\n")
            && shown.contains("INNER JOIN \"blog_blog\"")
            && shown.ends_with("*django-orm-lsp*"),
        "{shown}"
    );

    // Edits to the first document, long without a tree: a line of code added in the function
    // (a full parse), then a keystroke inside it (incremental), then one that removes a finding.
    let first = uri(&names[0]);
    let mut text = texts[0].clone();
    let last = text.lines().count() as u64;
    let edits = [
        json!({"range": {"start": {"line": last - 2, "character": 0}, "end": {"line": last - 2, "character": 0}}, "text": "    total = len(Entry.objects.filter(pk=1))\n"}),
        json!({"range": {"start": {"line": last - 2, "character": 41}, "end": {"line": last - 2, "character": 41}}, "text": "0"}),
        json!({"range": {"start": {"line": last, "character": 20}, "end": {"line": last, "character": 23}}, "text": ""}),
    ];
    let expected: [&[&str]; 3] = [&["ORM101", "ORM402"], &["ORM101", "ORM402"], &["ORM101"]];
    for (version, (edit, expected)) in edits.iter().zip(expected).enumerate() {
        let version = version as i64 + 2;
        client.notify(
            "textDocument/didChange",
            json!({"textDocument": {"uri": first, "version": version}, "contentChanges": [edit]}),
        );
        text = apply_text_edits(
            &text,
            &[json!({"range": edit["range"], "newText": edit["text"]})],
        );
        let found = client.diagnostics(&first, version);
        assert_eq!(codes(&found), expected, "after edit {version}");
        // The same findings, at the same places, as a fresh open of that text.
        let fresh = uri(&format!("blog/fresh_{version}.py"));
        client.open(&fresh, &text, 1);
        assert_eq!(ranges(&found), ranges(&client.diagnostics(&fresh, 1)));
        client.notify(
            "textDocument/didClose",
            json!({"textDocument": {"uri": fresh}}),
        );
    }
    assert!(text.contains("total = len(Entry.objects.filter(pk=10))\n"));
    assert_eq!(client.shutdown_and_exit(), 0);
}
