//! Keystroke latency over the real stdio protocol, and `check` throughput. Prints figures; it
//! asserts nothing about time (machines differ; ratios within one run are what matter).
//!
//!     cargo bench --bench latency
//!
//! For a comparison with another server on the same file, the bench writes the file it types into
//! and `../shared/tools/lsp_latency.py FILE -- SERVER...` measures any stdio server the same way.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;

#[path = "../../tests/common/lsp_client.rs"]
mod lsp_client;
#[path = "../../tests/common/synthetic.rs"]
mod synthetic;

use lsp_client::Client;

fn percentiles(mut samples: Vec<Duration>) -> String {
    samples.sort();
    let at =
        |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1000.0;
    format!(
        "p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms (n={})",
        at(0.5),
        at(0.95),
        at(0.99),
        samples.len()
    )
}

/// Types `count` characters at (line, column) and waits for each version's diagnostics.
fn type_into(
    client: &mut Client,
    uri: &str,
    line: usize,
    column: usize,
    count: usize,
    first_version: i64,
) -> Vec<Duration> {
    type_text(client, uri, line, column, &"x".repeat(count), first_version)
}

/// Types `text` (one line's worth) at (line, column), a character per version, and waits for
/// each version's diagnostics.
fn type_text(
    client: &mut Client,
    uri: &str,
    line: usize,
    column: usize,
    text: &str,
    first_version: i64,
) -> Vec<Duration> {
    let mut samples = Vec::new();
    for (i, character) in text.chars().enumerate() {
        let version = first_version + i as i64;
        let at = json!({"line": line, "character": column + i});
        let started = Instant::now();
        client.notify(
            "textDocument/didChange",
            json!({"textDocument": {"uri": uri, "version": version}, "contentChanges": [{"range": {"start": at, "end": at}, "text": character.to_string()}]}),
        );
        client.diagnostics(uri, version);
        samples.push(started.elapsed());
    }
    samples
}

fn keystrokes(dir: &Path) {
    let source = synthetic::django_views(5_000, 10);
    let path = dir.join("views_5000_lines.py");
    std::fs::write(&path, &source).unwrap();
    let uri = format!("file://{}", path.display());
    let mut client = Client::spawn();
    client.initialize(json!({"textDocument": {"publishDiagnostics": {"versionSupport": true}}}));
    let opened = Instant::now();
    client.open(&uri, &source, 1);
    let findings = client.diagnostics(&uri, 1).len();
    println!(
        "didOpen -> diagnostics on a 5,000-line file: {:.1} ms ({findings} findings)",
        opened.elapsed().as_secs_f64() * 1e3
    );

    // Inside a function body, in code: `entries = ...` line of a view near the middle.
    let line = source
        .lines()
        .enumerate()
        .filter(|(_, l)| l.starts_with("    entries = "))
        .map(|(i, _)| i)
        .nth(250)
        .unwrap();
    type_into(&mut client, &uri, line, 4, 10, 2); // warm-up
    let code = type_into(&mut client, &uri, line, 14, 200, 12);
    println!(
        "didChange -> publishDiagnostics, typing in code:    {}",
        percentiles(code)
    );

    // A new comment line between two functions, then typing into it.
    let comment_line = source
        .lines()
        .enumerate()
        .filter(|(_, l)| l.starts_with("def "))
        .map(|(i, _)| i)
        .nth(300)
        .unwrap()
        - 1;
    let at = json!({"line": comment_line, "character": 0});
    client.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": uri, "version": 300}, "contentChanges": [{"range": {"start": at, "end": at}, "text": "#\n"}]}),
    );
    client.diagnostics(&uri, 300);
    let comment = type_into(&mut client, &uri, comment_line, 1, 200, 301);
    println!(
        "didChange -> publishDiagnostics, typing in a comment: {}",
        percentiles(comment)
    );

    // A statement typed into a new line of a view, character by character: most keystrokes
    // leave partial, often invalid, code (an open bracket swallows what follows), as real
    // typing does. Four statements, on four new lines.
    let statement = "found = Entry.objects.filter(title='x').count() > 0";
    let mut version = 600;
    let mut typed = Vec::new();
    for round in 0..4 {
        let at = json!({"line": line + 1 + round, "character": 0});
        client.notify(
            "textDocument/didChange",
            json!({"textDocument": {"uri": uri, "version": version}, "contentChanges": [{"range": {"start": at, "end": at}, "text": "    \n"}]}),
        );
        client.diagnostics(&uri, version);
        typed.extend(type_text(
            &mut client,
            &uri,
            line + 1 + round,
            4,
            statement,
            version + 1,
        ));
        version += 1 + statement.len() as i64;
    }
    println!(
        "didChange -> publishDiagnostics, typing a statement: {}",
        percentiles(typed)
    );
    println!(
        "(compare: python3 ../shared/tools/lsp_latency.py [--typing code] {} -- <server>)",
        path.display()
    );
    client.shutdown_and_exit();
}

/// Every Python file under `root` is counted and checked (test code included), so that the
/// figure is per file read and comparable over time.
fn check_throughput(label: &str, root: &Path) {
    let (mut files, mut bytes) = (0usize, 0u64);
    for entry in walk(root) {
        files += 1;
        bytes += std::fs::metadata(entry).unwrap().len();
    }
    let binary = env!("CARGO_BIN_EXE_django-orm-lsp");
    let _ = Command::new(binary)
        .args([
            "check",
            "--no-cache",
            "--include-tests",
            "--output-format",
            "json",
        ])
        .arg(root)
        .output(); // warm the page cache
    let runs = 3;
    let started = Instant::now();
    for _ in 0..runs {
        Command::new(binary)
            .args([
                "check",
                "--no-cache",
                "--include-tests",
                "--output-format",
                "json",
            ])
            .arg(root)
            .output()
            .unwrap();
    }
    let seconds = started.elapsed().as_secs_f64() / runs as f64;
    println!(
        "check {label}: {files} files, {:.1} MB in {:.1} ms: {:.0} files/s, {:.1} MB/s",
        bytes as f64 / 1e6,
        seconds * 1e3,
        files as f64 / seconds,
        bytes as f64 / 1e6 / seconds
    );
}

fn walk(root: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "py") {
                out.push(path);
            }
        }
    }
    out
}

fn main() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("latency-bench");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    keystrokes(&dir);

    check_throughput(
        "on the demo project",
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/demo_project"),
    );
    let tree = dir.join("generated_tree");
    for app in 0..40 {
        let app_dir = tree.join(format!("app{app}"));
        std::fs::create_dir_all(&app_dir).unwrap();
        for module in ["views", "services", "tasks", "api", "reports"] {
            std::fs::write(
                app_dir.join(format!("{module}.py")),
                synthetic::django_views(1_000, 20),
            )
            .unwrap();
        }
    }
    check_throughput("on a generated tree (200 files x 1,000 lines)", &tree);
}
