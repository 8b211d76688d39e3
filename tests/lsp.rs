//! End-to-end protocol tests against the real binary over stdio.

mod common;

use common::fixes::syntax_errors;
use common::lsp_client::{apply_text_edits, Client};
use common::temp;
use serde_json::{json, Value};

const URI: &str = "file:///project/blog/views.py";

const VIEWS: &str = "from blog.models import Entry\n\n\ndef count_entries(blog):\n    return len(Entry.objects.filter(blog=blog))\n";

fn push_client() -> Client {
    let mut client = Client::spawn();
    client.initialize(json!({"textDocument": {"publishDiagnostics": {"versionSupport": true}}}));
    client
}

fn codes(diagnostics: &[Value]) -> Vec<String> {
    diagnostics
        .iter()
        .map(|d| d["code"].as_str().unwrap().to_string())
        .collect()
}

fn code_actions(client: &mut Client, diagnostic: &Value, only: Option<&[&str]>) -> Vec<Value> {
    let mut context = json!({"diagnostics": [diagnostic]});
    if let Some(only) = only {
        context["only"] = json!(only);
    }
    let result = client.call(
        "textDocument/codeAction",
        json!({"textDocument": {"uri": URI}, "range": diagnostic["range"], "context": context}),
    );
    result.as_array().cloned().unwrap_or_default()
}

fn edits_of(action: &Value) -> Vec<Value> {
    action["edit"]["changes"][URI]
        .as_array()
        .expect("edits for the document")
        .clone()
}

#[test]
fn open_publishes_diagnostics_with_code_docs_and_fix_data() {
    let mut client = push_client();
    client.open(URI, VIEWS, 1);
    let diagnostics = client.diagnostics(URI, 1);
    assert_eq!(codes(&diagnostics), ["ORM101"]);
    let d = &diagnostics[0];
    assert_eq!(
        d["range"],
        json!({"start": {"line": 4, "character": 11}, "end": {"line": 4, "character": 47}})
    );
    assert_eq!(d["severity"], 3);
    assert_eq!(d["source"], "django-orm-lsp");
    assert!(d["codeDescription"]["href"]
        .as_str()
        .unwrap()
        .ends_with("docs/rules/ORM101.md"));
    assert_eq!(d["data"]["fix"]["applicability"], "safe");
    assert_eq!(
        d["data"]["fix"]["edits"][0]["newText"],
        "Entry.objects.filter(blog=blog).count()"
    );
    assert_eq!(client.shutdown_and_exit(), 0);
}

#[test]
fn quick_fix_rewrites_the_call_and_the_result_parses() {
    let mut client = push_client();
    client.open(URI, VIEWS, 1);
    let diagnostic = client.diagnostics(URI, 1).remove(0);
    let actions = code_actions(&mut client, &diagnostic, Some(&["quickfix"]));
    let titles: Vec<_> = actions
        .iter()
        .map(|a| a["title"].as_str().unwrap())
        .collect();
    assert_eq!(
        titles,
        [
            "Replace with `Entry.objects.filter(blog=blog).count()`",
            "Disable ORM101 for this line"
        ]
    );
    assert_eq!(actions[0]["isPreferred"], true);
    let fixed = apply_text_edits(VIEWS, &edits_of(&actions[0]));
    assert_eq!(
        fixed,
        VIEWS.replace(
            "len(Entry.objects.filter(blog=blog))",
            "Entry.objects.filter(blog=blog).count()"
        )
    );
    assert_eq!(syntax_errors(&fixed), 0);

    // The edited document has nothing left to report.
    client.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": URI, "version": 2}, "contentChanges": [{"text": fixed}]}),
    );
    assert!(client.diagnostics(URI, 2).is_empty());
}

#[test]
fn noqa_action_silences_the_line() {
    let mut client = push_client();
    client.open(URI, VIEWS, 1);
    let diagnostic = client.diagnostics(URI, 1).remove(0);
    let actions = code_actions(&mut client, &diagnostic, None);
    let noqa = actions
        .iter()
        .find(|a| a["title"] == "Disable ORM101 for this line")
        .expect("a noqa action");
    let silenced = apply_text_edits(VIEWS, &edits_of(noqa));
    assert!(silenced.contains("len(Entry.objects.filter(blog=blog))  # noqa: ORM101\n"));
    client.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": URI, "version": 2}, "contentChanges": [{"text": silenced}]}),
    );
    assert!(client.diagnostics(URI, 2).is_empty());

    // Once the code is fixed the comment silences nothing: ORM900, whose quick fix removes it.
    let stale = silenced.replace(
        "len(Entry.objects.filter(blog=blog))",
        "Entry.objects.filter(blog=blog).count()",
    );
    client.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": URI, "version": 3}, "contentChanges": [{"text": stale}]}),
    );
    let diagnostics = client.diagnostics(URI, 3);
    assert_eq!(codes(&diagnostics), ["ORM900"]);
    let actions = code_actions(&mut client, &diagnostics[0], Some(&["quickfix"]));
    assert_eq!(actions[0]["title"], "Remove the unused suppression");
    assert_eq!(
        apply_text_edits(&stale, &edits_of(&actions[0])),
        VIEWS.replace(
            "len(Entry.objects.filter(blog=blog))",
            "Entry.objects.filter(blog=blog).count()"
        )
    );
}

/// Neovim asks for code actions with the cursor's position as the range and the line's
/// diagnostics in `context.diagnostics`: the cursor anywhere on the line gets the line's quick
/// fix and "Disable ... for this line", not only on the squiggle.
#[test]
fn the_cursor_anywhere_on_the_line_gets_the_quick_fixes_the_client_names() {
    let mut client = push_client();
    client.open(URI, VIEWS, 1);
    let diagnostic = client.diagnostics(URI, 1).remove(0);
    let titles = |client: &mut Client, context: Value| {
        let cursor =
            json!({"start": {"line": 4, "character": 2}, "end": {"line": 4, "character": 2}});
        let result = client.call(
            "textDocument/codeAction",
            json!({"textDocument": {"uri": URI}, "range": cursor, "context": context}),
        );
        result
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["title"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    // The cursor (column 2) is before the squiggle (column 11): the client names the line's
    // diagnostic, as published.
    assert_eq!(
        titles(
            &mut client,
            json!({"diagnostics": [diagnostic], "only": ["quickfix"]})
        ),
        [
            "Replace with `Entry.objects.filter(blog=blog).count()`",
            "Disable ORM101 for this line"
        ]
    );
    // Naming nothing, the same cursor is outside every finding's range: no quick fix.
    assert!(titles(
        &mut client,
        json!({"diagnostics": [], "only": ["quickfix"]})
    )
    .is_empty());
    // A diagnostic of another code at that range names no finding.
    let mut other = diagnostic.clone();
    other["code"] = json!("ORM102");
    assert!(titles(
        &mut client,
        json!({"diagnostics": [other], "only": ["quickfix"]})
    )
    .is_empty());
    assert_eq!(client.shutdown_and_exit(), 0);
}

#[test]
fn fix_all_applies_every_safe_fix() {
    let text = "from blog.models import Entry\n\n\ndef a(blog):\n    if len(Entry.objects.filter(blog=blog)) > 0:\n        return bool(Entry.objects.all())\n";
    let mut client = push_client();
    client.open(URI, text, 1);
    let diagnostics = client.diagnostics(URI, 1);
    assert_eq!(codes(&diagnostics), ["ORM101", "ORM102"]);
    let actions = code_actions(&mut client, &diagnostics[0], Some(&["source.fixAll"]));
    assert_eq!(actions.len(), 1, "{actions:?}");
    assert_eq!(actions[0]["kind"], "source.fixAll.django-orm-lsp");
    let fixed = apply_text_edits(text, &edits_of(&actions[0]));
    assert_eq!(
        fixed,
        "from blog.models import Entry\n\n\ndef a(blog):\n    if Entry.objects.filter(blog=blog).exists():\n        return Entry.objects.all().exists()\n"
    );
}

#[test]
fn close_clears_diagnostics() {
    let mut client = push_client();
    client.open(URI, VIEWS, 1);
    assert_eq!(client.diagnostics(URI, 1).len(), 1);
    client.notify(
        "textDocument/didClose",
        json!({"textDocument": {"uri": URI}}),
    );
    let cleared = client.notification("textDocument/publishDiagnostics", |p| {
        p["uri"] == URI && p["diagnostics"] == json!([])
    });
    assert!(cleared["diagnostics"].as_array().unwrap().is_empty());
}

#[test]
fn pull_diagnostics_for_clients_that_ask() {
    let mut client = Client::spawn();
    let init = client.initialize(json!({
        "textDocument": {"diagnostic": {"dynamicRegistration": false}},
        "workspace": {"diagnostics": {"refreshSupport": true}}
    }));
    assert_eq!(
        init["capabilities"]["diagnosticProvider"]["identifier"],
        "django-orm-lsp"
    );
    client.open(URI, VIEWS, 1);
    let report = client.call(
        "textDocument/diagnostic",
        json!({"textDocument": {"uri": URI}}),
    );
    assert_eq!(report["kind"], "full");
    assert_eq!(codes(report["items"].as_array().unwrap()), ["ORM101"]);
    // A pulling client is not also pushed to.
    let pushed = client.try_notification(
        "textDocument/publishDiagnostics",
        &|_| true,
        std::time::Duration::from_millis(300),
    );
    assert!(pushed.is_none());
}

#[test]
fn utf8_positions_when_the_client_offers_them() {
    let mut client = Client::spawn();
    let init = client.initialize(json!({"general": {"positionEncodings": ["utf-8", "utf-16"]}}));
    assert_eq!(init["capabilities"]["positionEncoding"], "utf-8");
    let text = "from blog.models import Entry\n\n\ndef f():\n    s = 'héé'; return len(Entry.objects.all())\n";
    client.open(URI, text, 1);
    let d = client.diagnostics(URI, 1).remove(0);
    // `len` starts after 4 spaces + "s = 'héé'; return " = 22 UTF-16 units, 24 bytes.
    assert_eq!(d["range"]["start"], json!({"line": 4, "character": 24}));
}

#[test]
fn incremental_edits_match_a_fresh_open_of_the_final_text() {
    let start = "from blog.models import Entry\r\n\r\ndef f(blog):\r\n    return 1\r\n";
    let mut client = push_client();
    client.open(URI, start, 1);
    assert!(client.diagnostics(URI, 1).is_empty());
    // One batch: each change's range refers to the text left by the change before it.
    let batch = json!([
        {"range": {"start": {"line": 3, "character": 11}, "end": {"line": 3, "character": 12}}, "text": "len(Entry.objects.all())"},
        {"range": {"start": {"line": 3, "character": 4}, "end": {"line": 3, "character": 4}}, "text": "title = '😀é'\r\n    "},
        {"range": {"start": {"line": 1, "character": 0}, "end": {"line": 2, "character": 0}}, "text": ""},
        {"range": {"start": {"line": 2, "character": 13}, "end": {"line": 2, "character": 13}}, "text": "  # 🐍 ünïcode"},
        {"range": {"start": {"line": 99, "character": 0}, "end": {"line": 99, "character": 5}}, "text": "\r\n\r\ndef g(qs):\r\n    return qs\r\n"}
    ]);
    client.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": URI, "version": 2}, "contentChanges": batch}),
    );
    let incremental = client.diagnostics(URI, 2);

    let mut expected_text = start.to_string();
    for change in batch.as_array().unwrap() {
        expected_text = apply_text_edits(
            &expected_text,
            &[json!({"range": change["range"], "newText": change["text"]})],
        );
    }
    let other = "file:///project/blog/fresh.py";
    client.open(other, &expected_text, 1);
    let fresh = client.diagnostics(other, 1);
    assert_eq!(codes(&incremental), ["ORM101"]);
    assert_eq!(
        incremental.iter().map(|d| &d["range"]).collect::<Vec<_>>(),
        fresh.iter().map(|d| &d["range"]).collect::<Vec<_>>()
    );
    assert_eq!(
        incremental[0]["range"]["start"],
        json!({"line": 3, "character": 11})
    );
}

#[test]
fn bad_input_gets_an_error_and_the_server_keeps_serving() {
    let mut client = push_client();
    // Malformed JSON: a parse error response.
    client.send_raw(b"Content-Length: 12\r\n\r\n{\"jsonrpc\":}");
    let error = client.notification_or_response_error();
    assert_eq!(error["code"], -32700);
    // Valid JSON that is not a JSON-RPC message: an invalid request.
    client.send_raw(b"Content-Length: 3\r\n\r\n[1]");
    assert_eq!(client.notification_or_response_error()["code"], -32600);
    // A message over the size limit is refused without being kept.
    let huge = 33 * 1024 * 1024;
    let mut frame = format!("Content-Length: {huge}\r\n\r\n").into_bytes();
    frame.resize(frame.len() + huge, b' ');
    client.send_raw(&frame);
    assert_eq!(client.notification_or_response_error()["code"], -32600);
    // An unknown method: method not found.
    let id = client.request("django/unknownMethod", json!({}));
    assert_eq!(client.response(id)["error"]["code"], -32601);
    // A change to a document that is not open, and out-of-range positions: logged, clamped.
    client.notify("textDocument/didChange", json!({"textDocument": {"uri": "file:///nope.py", "version": 2}, "contentChanges": [{"text": "x"}]}));
    client.open(URI, VIEWS, 1);
    client.diagnostics(URI, 1);
    let far =
        json!({"start": {"line": 900, "character": 900}, "end": {"line": 1000, "character": 0}});
    client.notify("textDocument/didChange", json!({"textDocument": {"uri": URI, "version": 2}, "contentChanges": [{"range": far, "text": "\nx = 1\n"}]}));
    assert_eq!(codes(&client.diagnostics(URI, 2)), ["ORM101"]);
    // Binary content, a 5 MB file and 3,000 nested parentheses.
    client.open("file:///project/binary.py", "x = 1\0\0\0", 1);
    client.open(
        "file:///project/huge.py",
        &"x = 1\n".repeat(5 * 1024 * 1024 / 6),
        1,
    );
    let deep = format!("x = {}1{}\n", "(".repeat(3000), ")".repeat(3000));
    client.open("file:///project/deep.py", &deep, 1);
    assert!(client.diagnostics("file:///project/deep.py", 1).is_empty());
    let warning = client.notification("window/logMessage", |p| {
        p["message"].as_str().unwrap().contains("binary.py")
    });
    assert_eq!(warning["type"], 2);
    client.notification("window/logMessage", |p| {
        p["message"].as_str().unwrap().contains("huge.py")
    });
    // Still serving: a request after all that succeeds.
    let actions = client.call(
        "textDocument/codeAction",
        json!({"textDocument": {"uri": URI}, "range": {"start": {"line": 4, "character": 11}, "end": {"line": 4, "character": 11}}, "context": {"diagnostics": []}}),
    );
    assert!(!actions.as_array().unwrap().is_empty());
    assert_eq!(client.shutdown_and_exit(), 0);
}

const TWO_RULES: &str = "from blog.models import Entry\n\n\ndef f():\n    return len(Entry.objects.all())\n\n\ndef g():\n    return bool(Entry.objects.all())\n";

/// A pushing client started with `initializationOptions` and, if given, a workspace root.
fn configured_client(options: Value, root: Option<&std::path::Path>) -> Client {
    let mut client = Client::spawn();
    let root_uri = root.map(|r| format!("file://{}", r.display()));
    client.initialize_with(json!({
        "processId": null,
        "rootUri": root_uri,
        "capabilities": {"textDocument": {"publishDiagnostics": {"versionSupport": true}}},
        "initializationOptions": options,
    }));
    client
}

fn severities(diagnostics: &[Value]) -> Vec<(String, i64)> {
    diagnostics
        .iter()
        .map(|d| {
            let code = d["code"].as_str().unwrap().to_string();
            (code, d["severity"].as_i64().unwrap())
        })
        .collect()
}

#[test]
fn initialization_options_configure_the_rules() {
    let mut client = configured_client(
        json!({"ignore": ["ORM102"], "severity": {"ORM101": "hint"}}),
        None,
    );
    client.open(URI, TWO_RULES, 1);
    assert_eq!(
        severities(&client.diagnostics(URI, 1)),
        [("ORM101".to_string(), 4)]
    );
}

#[test]
fn a_bad_option_is_one_warning_naming_it_and_the_rest_applies() {
    let mut client = configured_client(
        json!({"django-orm-lsp": {"ignore": "ORM101", "extendSelect": ["ORM1"], "select": ["ORM102"]}}),
        None,
    );
    let shown = client.notification("window/showMessage", |_| true);
    assert_eq!(shown["type"], 2);
    assert_eq!(
        shown["message"],
        "django-orm-lsp: initializationOptions: ignored invalid setting `ignore`: expected a list of strings, got a string"
    );
    client.open(URI, TWO_RULES, 1);
    // `select` and camelCase `extendSelect` applied; the bad `ignore` kept its default (none).
    assert_eq!(codes(&client.diagnostics(URI, 1)), ["ORM101", "ORM102"]);
    let another = client.try_notification(
        "window/showMessage",
        &|_| true,
        std::time::Duration::from_millis(300),
    );
    assert!(another.is_none(), "{another:?}");
}

#[test]
fn did_change_configuration_republishes_with_the_new_settings() {
    let mut client = configured_client(json!({"ignore": ["ORM102"]}), None);
    client.open(URI, TWO_RULES, 1);
    assert_eq!(codes(&client.diagnostics(URI, 1)), ["ORM101"]);

    // Wrapped in our section; initializationOptions' `ignore` still holds where not overridden.
    client.notify(
        "workspace/didChangeConfiguration",
        json!({"settings": {"django-orm-lsp": {"severity": {"ORM101": "error"}}}}),
    );
    assert_eq!(
        severities(&client.diagnostics(URI, 1)),
        [("ORM101".to_string(), 1)]
    );

    // The keys directly; this replaces the previous change and overrides the initial `ignore`.
    client.notify(
        "workspace/didChangeConfiguration",
        json!({"settings": {"ignore": ["ORM101"]}}),
    );
    assert_eq!(
        severities(&client.diagnostics(URI, 1)),
        [("ORM102".to_string(), 3)]
    );

    client.notify(
        "workspace/didChangeConfiguration",
        json!({"settings": {"select": 3}}),
    );
    let shown = client.notification("window/showMessage", |_| true);
    assert_eq!(
        shown["message"],
        "django-orm-lsp: workspace/didChangeConfiguration: ignored invalid setting `select`: expected a list of strings, got a number"
    );
    assert_eq!(codes(&client.diagnostics(URI, 1)), ["ORM101"]);
}

#[test]
fn pyproject_at_the_workspace_root_applies_under_the_client_options() {
    let project = temp::project(&[(
        "pyproject.toml",
        br#"[tool.django-orm-lsp]
exclude = ["legacy/**"]
per-file-ignores = { "tests/**" = ["ORM101"] }
severity = { ORM101 = "error", ORM102 = "hint" }
include-tests = true
target-djangoo = "4.2"
"#,
    )]);
    let root = project.path();
    let mut client = configured_client(json!({"severity": {"ORM102": "warning"}}), Some(root));
    let shown = client.notification("window/showMessage", |_| true);
    assert_eq!(
        shown["message"],
        format!(
            "django-orm-lsp: {}: ignored invalid setting `target-djangoo`: unknown key (known keys: select, ignore, extend-select, severity, exclude, per-file-ignores, target-django, bulk-batch-size, include-tests, migrations, sql-dialect)",
            root.join("pyproject.toml").display()
        )
    );
    let uri = |path: &str| format!("file://{}", root.join(path).display());

    let views = uri("app/views.py");
    client.open(&views, TWO_RULES, 1);
    // initializationOptions replace the whole `severity` table of pyproject.toml.
    assert_eq!(
        severities(&client.diagnostics(&views, 1)),
        [("ORM101".to_string(), 3), ("ORM102".to_string(), 2)]
    );
    let test = uri("tests/test_views.py");
    client.open(&test, TWO_RULES, 1);
    assert_eq!(codes(&client.diagnostics(&test, 1)), ["ORM102"]);
    let legacy = uri("legacy/views.py");
    client.open(&legacy, TWO_RULES, 1);
    assert!(client.diagnostics(&legacy, 1).is_empty());
    // Outside the root: the base settings, whatever the globs say.
    let outside = "file:///elsewhere/legacy/views.py";
    client.open(outside, TWO_RULES, 1);
    assert_eq!(codes(&client.diagnostics(outside, 1)), ["ORM101", "ORM102"]);
}

#[test]
fn an_open_test_file_shows_nothing_until_include_tests_is_on() {
    let project = temp::project(&[("pyproject.toml", b"[project]\nname = \"blog\"\n")]);
    let root = project.path();
    let uri = |path: &str| format!("file://{}", root.join(path).display());
    let mut client = configured_client(json!({}), Some(root));
    let test_files = [
        uri("app/tests.py"),
        uri("app/test_views.py"),
        uri("app/views_test.py"),
        uri("conftest.py"),
        uri("tests/helpers.py"),
        uri("app/test/factories.py"),
    ];
    for test_file in &test_files {
        client.open(test_file, TWO_RULES, 1);
        assert_eq!(
            codes(&client.diagnostics(test_file, 1)),
            Vec::<String>::new(),
            "{test_file}"
        );
    }
    let views = uri("app/views.py");
    client.open(&views, TWO_RULES, 1);
    assert_eq!(codes(&client.diagnostics(&views, 1)), ["ORM101", "ORM102"]);

    // The setting, camelCase as editors send it, re-publishes every open test file. (Earlier
    // publications, such as the re-check once the workspace is indexed, may still be queued.)
    let published = |client: &mut Client, uri: &str, expected: &[&str]| {
        client.notification("textDocument/publishDiagnostics", |p| {
            p["uri"] == uri && codes(p["diagnostics"].as_array().unwrap()) == expected
        });
    };
    client.notify(
        "workspace/didChangeConfiguration",
        json!({"settings": {"django-orm-lsp": {"includeTests": true}}}),
    );
    for test_file in &test_files {
        published(&mut client, test_file, &["ORM101", "ORM102"]);
    }
    client.notify(
        "workspace/didChangeConfiguration",
        json!({"settings": {"includeTests": false}}),
    );
    // A new version, so that no publication from before the change can answer.
    for test_file in &test_files {
        client.notify(
            "textDocument/didChange",
            json!({"textDocument": {"uri": test_file, "version": 2}, "contentChanges": [{"text": TWO_RULES}]}),
        );
        assert!(client.diagnostics(test_file, 2).is_empty(), "{test_file}");
    }
    assert_eq!(client.shutdown_and_exit(), 0);
}

#[test]
fn include_tests_from_pyproject_or_initialization_options() {
    let project = temp::project(&[(
        "pyproject.toml",
        b"[tool.django-orm-lsp]\ninclude-tests = true\n",
    )]);
    let root = project.path();
    let test_file = format!("file://{}", root.join("app/tests.py").display());
    let mut client = configured_client(json!({}), Some(root));
    client.open(&test_file, TWO_RULES, 1);
    assert_eq!(
        codes(&client.diagnostics(&test_file, 1)),
        ["ORM101", "ORM102"]
    );

    // Without a workspace root, a test file is known by its name and its folder's.
    let mut client = configured_client(json!({"include-tests": true}), None);
    let outside = "file:///elsewhere/app/tests.py";
    client.open(outside, TWO_RULES, 1);
    assert_eq!(codes(&client.diagnostics(outside, 1)), ["ORM101", "ORM102"]);
    let mut client = configured_client(json!({}), None);
    client.open(outside, TWO_RULES, 1);
    assert!(client.diagnostics(outside, 1).is_empty());
}

#[test]
fn a_bad_include_tests_is_one_warning_and_test_code_stays_silent() {
    let mut client = configured_client(
        json!({"django-orm-lsp": {"includeTests": "yes", "migrations": "writes"}}),
        None,
    );
    let shown = client.notification("window/showMessage", |_| true);
    assert_eq!(shown["type"], 2);
    assert_eq!(
        shown["message"],
        "django-orm-lsp: initializationOptions: ignored invalid settings `includeTests`: expected true or false, got \"yes\"; `migrations`: expected \"per-row\", \"all\" or \"none\", got \"writes\""
    );
    let test_file = "file:///elsewhere/app/tests.py";
    client.open(test_file, TWO_RULES, 1);
    assert!(client.diagnostics(test_file, 1).is_empty());
    client.open(URI, TWO_RULES, 1);
    assert_eq!(codes(&client.diagnostics(URI, 1)), ["ORM101", "ORM102"]);
    let another = client.try_notification(
        "window/showMessage",
        &|_| true,
        std::time::Duration::from_millis(300),
    );
    assert!(another.is_none(), "{another:?}");
}

#[test]
fn pulling_clients_are_asked_to_pull_again_after_a_change() {
    let mut client = Client::spawn();
    client.initialize(json!({
        "textDocument": {"diagnostic": {"dynamicRegistration": false}},
        "workspace": {"diagnostics": {"refreshSupport": true}}
    }));
    client.open(URI, TWO_RULES, 1);
    let pull = |client: &mut Client| {
        let report = client.call(
            "textDocument/diagnostic",
            json!({"textDocument": {"uri": URI}}),
        );
        codes(report["items"].as_array().unwrap())
    };
    assert_eq!(pull(&mut client), ["ORM101", "ORM102"]);
    client.notify(
        "workspace/didChangeConfiguration",
        json!({"settings": {"ignore": ["ORM101"]}}),
    );
    client.notification("workspace/diagnostic/refresh", |_| true);
    assert_eq!(pull(&mut client), ["ORM102"]);
}

#[test]
fn exit_without_shutdown_exits_with_1() {
    let mut client = push_client();
    client.notify("exit", Value::Null);
    assert_eq!(client.wait_for_exit(), 1);
}

#[test]
fn version_flag_and_stdio_flag_are_accepted() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_django-orm-lsp"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("django-orm-lsp "));
}

/// A loop with three safe fixes (and a query per row, ORM404, with none). The model file is not
/// in the workspace, so the analyzer knows `Entry` only by name: the counting rules apply, the
/// relation rules do not.
const LOOP: &str = "from blog.models import Entry\n\n\ndef report(blogs):\n    for blog in blogs:\n        print(len(Entry.objects.filter(blog=blog)))\n        if Entry.objects.filter(blog=blog).count() > 0:\n            print(bool(Entry.objects.all()))\n";

#[test]
fn the_rewritten_loop_is_resolved_lazily_as_a_preview() {
    let mut client = Client::spawn();
    client.initialize(json!({
        "textDocument": {
            "publishDiagnostics": {"versionSupport": true},
            "codeAction": {"resolveSupport": {"properties": ["edit"]}},
        },
        "workspace": {"workspaceEdit": {"changeAnnotationSupport": {"groupsOnLabel": true}}},
    }));
    client.open(URI, LOOP, 1);
    let diagnostics = client.diagnostics(URI, 1);
    assert_eq!(
        codes(&diagnostics),
        ["ORM101", "ORM404", "ORM103", "ORM102"]
    );
    let actions = code_actions(&mut client, &diagnostics[0], Some(&["refactor.rewrite"]));
    assert_eq!(actions.len(), 1, "{actions:?}");
    let action = &actions[0];
    assert_eq!(action["title"], "Show the rewritten loop (3 safe fixes)");
    assert!(action.get("edit").is_none(), "the edit waits for resolve");

    let resolved = client.call("codeAction/resolve", action.clone());
    let change = &resolved["edit"]["documentChanges"][0];
    assert_eq!(change["textDocument"]["uri"], URI);
    let annotation = change["edits"][0]["annotationId"].as_str().unwrap();
    assert_eq!(
        resolved["edit"]["changeAnnotations"][annotation]["needsConfirmation"],
        true
    );
    let fixed = apply_text_edits(LOOP, change["edits"].as_array().unwrap());
    assert_eq!(
        fixed,
        LOOP.replace(
            "len(Entry.objects.filter(blog=blog))",
            "Entry.objects.filter(blog=blog).count()"
        )
        .replace(
            "if Entry.objects.filter(blog=blog).count() > 0:",
            "if Entry.objects.filter(blog=blog).exists():"
        )
        .replace("bool(Entry.objects.all())", "Entry.objects.all().exists()")
    );

    // Once the document changes, the offered rewrite is stale.
    client.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": URI, "version": 2}, "contentChanges": [{"text": LOOP}]}),
    );
    let id = client.request("codeAction/resolve", action.clone());
    assert_eq!(client.response(id)["error"]["code"], -32801);
    assert_eq!(client.shutdown_and_exit(), 0);
}

#[test]
fn no_rewrite_action_for_clients_that_cannot_resolve() {
    let mut client = push_client();
    client.open(URI, LOOP, 1);
    let diagnostics = client.diagnostics(URI, 1);
    let actions = code_actions(&mut client, &diagnostics[0], None);
    assert!(
        actions.iter().all(|a| a["kind"] != "refactor.rewrite"),
        "{actions:?}"
    );
    assert_eq!(client.shutdown_and_exit(), 0);
}

/// A burst of 1,000 one-character edits sent at once to a 5,000-line file (typed or deleted in
/// code, breaking and repairing it): edits apply in order and the text is parsed once a lint or
/// the hover needs it, so neither waits behind a backlog of parses. Prints how long after the
/// last edit the final version's diagnostics and the answer to a hover sent after the burst
/// arrived (figures, not assertions); asserts the final diagnostics are the final version's and
/// equal a fresh open of the final text.
#[test]
fn a_burst_of_edits_costs_one_parse_and_one_lint_after_it() {
    use std::time::{Duration, Instant};
    let mut text = common::synthetic::django_views(5_000, 5);
    let mut client = push_client();
    client.open(URI, &text, 1);
    let before = client.diagnostics(URI, 1);

    // Deterministic positions: the first column of code on pseudo-random indented lines of the
    // first half.
    let mut seed: u64 = 19;
    let mut edits = Vec::new();
    while edits.len() < 1_000 {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let lines: Vec<&str> = text.lines().collect();
        let line = (seed >> 33) as usize % (lines.len() / 2);
        let current = lines[line];
        // A word at the start of a statement, or of an `if`'s condition (`len(` becoming
        // `xlen(` or `en(` ends a finding). Block headers are kept: tree-sitter recovers from
        // a broken `if` header (`f len(...):` over an indented block) by giving up on the rest
        // of the file, which would silence every finding after it.
        let column = if current.starts_with("    if ") { 7 } else { 4 };
        let word = |i: usize| {
            current
                .as_bytes()
                .get(i)
                .is_some_and(u8::is_ascii_alphanumeric)
        };
        let header = current.ends_with(':') && column == 4;
        if !current.starts_with("    ") || header || !word(column) || !word(column + 1) {
            continue;
        }
        let at = json!({"line": line, "character": column});
        let (range, new_text) = if edits.len() % 2 == 0 {
            (json!({"start": at, "end": at}), "x")
        } else {
            let end = json!({"line": line, "character": column + 1});
            (json!({"start": at, "end": end}), "")
        };
        let change = json!({"range": range, "text": new_text});
        text = apply_text_edits(&text, &[json!({"range": range, "newText": new_text})]);
        edits.push(change);
    }
    let last_version = edits.len() as i64 + 1;
    for (i, change) in edits.into_iter().enumerate() {
        client.notify(
            "textDocument/didChange",
            json!({"textDocument": {"uri": URI, "version": i + 2}, "contentChanges": [change]}),
        );
    }
    let sent = Instant::now();
    let hover_id = client.request(
        "textDocument/hover",
        json!({"textDocument": {"uri": URI}, "position": {"line": 5, "character": 20}}),
    );
    let (mut hovered, mut final_diagnostics) = (None, None);
    while hovered.is_none() || final_diagnostics.is_none() {
        let message = client
            .next_message(Duration::from_secs(60))
            .expect("the hover answer and the final diagnostics");
        if message["id"] == hover_id && message.get("method").is_none() {
            assert!(message.get("error").is_none(), "{message}");
            hovered = Some(sent.elapsed());
        } else if message["method"] == "textDocument/publishDiagnostics" {
            let version = message["params"]["version"].as_i64().unwrap();
            if version == last_version {
                final_diagnostics =
                    Some((sent.elapsed(), message["params"]["diagnostics"].clone()));
            }
        }
    }
    let (diagnosed, found) = final_diagnostics.unwrap();
    println!(
        "1,000 edits to a 5,000-line file: final diagnostics {:.0} ms, hover {:.0} ms after the last edit",
        diagnosed.as_secs_f64() * 1e3,
        hovered.unwrap().as_secs_f64() * 1e3
    );
    let fresh_uri = "file:///project/blog/fresh.py";
    client.open(fresh_uri, &text, 1);
    let fresh = client.diagnostics(fresh_uri, 1);
    assert!(!fresh.is_empty(), "the final text still has findings");
    assert_eq!(found.as_array().unwrap(), &fresh);
    assert_ne!(fresh, before, "the edits changed the findings");
    assert_eq!(client.shutdown_and_exit(), 0);
}

#[test]
fn a_bad_command_gets_an_invalid_params_error_and_the_server_goes_on() {
    let mut client = push_client();
    client.open(URI, VIEWS, 1);
    client.diagnostics(URI, 1);
    let bad = [
        json!({"command": "django-orm-lsp.unknown", "arguments": []}),
        json!({"command": "django-orm-lsp.showQueries", "arguments": ["not a uri"]}),
        json!({"command": "django-orm-lsp.showQueries", "arguments": ["file:///closed.py", {"line": 0, "character": 0}]}),
    ];
    for params in bad {
        let id = client.request("workspace/executeCommand", params.clone());
        let response = client.response(id);
        assert_eq!(response["error"]["code"], -32602, "{params}: {response}");
    }
    // A position where no lens starts: a message says so, the request succeeds.
    let result = client.call(
        "workspace/executeCommand",
        json!({"command": "django-orm-lsp.showQueries", "arguments": [URI, {"line": 0, "character": 0}]}),
    );
    assert_eq!(result, Value::Null);
    let message = client.notification("window/showMessage", |_| true);
    assert_eq!(
        message["message"],
        "The loop changed: no count to show there now."
    );
    assert_eq!(client.shutdown_and_exit(), 0);
}
