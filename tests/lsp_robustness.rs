//! Server survival against misbehaving clients, end to end over the real binary's stdio: a
//! client that goes away mid-message, Content-Lengths that lie, a 100 MB message, requests
//! after `shutdown`, and cancelled requests. (Malformed JSON, non-JSON-RPC bodies, a message
//! just over the size limit, binary and huge documents and `exit` without `shutdown` are in
//! tests/lsp.rs; arbitrary frames are fuzzed in tests/fuzz.rs.)

mod common;

use common::lsp_client::Client;
use serde_json::{json, Value};

const URI: &str = "file:///project/blog/views.py";

fn frame(body: &str, length: usize) -> Vec<u8> {
    let mut out = format!("Content-Length: {length}\r\n\r\n").into_bytes();
    out.extend_from_slice(body.as_bytes());
    out
}

fn hover_body(id: i64) -> String {
    json!({"jsonrpc": "2.0", "id": id, "method": "textDocument/hover",
           "params": {"textDocument": {"uri": URI}, "position": {"line": 0, "character": 0}}})
    .to_string()
}

#[test]
fn a_client_gone_mid_message_ends_the_server() {
    let mut client = Client::spawn_capturing_stderr();
    client.initialize(json!({}));
    let body = hover_body(99);
    let whole = frame(&body, body.len());
    client.send_raw(&whole[..whole.len() - body.len() / 2]);
    client.close_stdin();
    // No `shutdown` came first: exit code 1, promptly (wait_for_exit fails after a timeout).
    assert_eq!(client.wait_for_exit(), 1);
    assert!(!client.stderr().contains("panicked"));

    // Gone in the middle of the headers, before `initialize` even.
    let mut client = Client::spawn();
    client.send_raw(b"Content-Length: 12\r\nContent-Ty");
    client.close_stdin();
    assert_eq!(client.wait_for_exit(), 1);
}

#[test]
fn a_content_length_that_lies_costs_only_its_own_frame() {
    let mut client = Client::spawn();
    client.initialize(json!({}));
    client.open(URI, "x = 1\n", 1);

    // Shorter than the body: an error, and the next frame is read whole.
    let body = hover_body(1);
    let mut input = frame(&body, body.len() - 7);
    input.extend(frame(&hover_body(2), hover_body(2).len()));
    client.send_raw(&input);
    assert_eq!(client.notification_or_response_error()["code"], -32700);
    let response = client.response(2);
    assert!(response.get("error").is_none(), "{response}");

    // Longer than the body: it swallows the start of the next frame, which is lost with it
    // (its request is never answered); the frame after that is served.
    let mut input = frame(&hover_body(3), hover_body(3).len() + 10);
    input.extend(frame(&hover_body(4), hover_body(4).len()));
    input.extend(frame(&hover_body(5), hover_body(5).len()));
    client.send_raw(&input);
    let response = client.response(5);
    assert!(response.get("error").is_none(), "{response}");
    assert!(client
        .backlog
        .iter()
        .all(|m| m.get("id") != Some(&json!(3)) && m.get("id") != Some(&json!(4))));
    assert_eq!(client.shutdown_and_exit(), 0);
}

/// Peak resident memory of a process, from /proc (Linux only; elsewhere `None`).
fn peak_rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

#[test]
fn a_100_mb_message_is_refused_without_being_buffered() {
    let mut client = Client::spawn();
    client.initialize(json!({}));
    let size = 100 * 1024 * 1024;
    client.send_raw(format!("Content-Length: {size}\r\n\r\n").as_bytes());
    let chunk = vec![b' '; 1024 * 1024];
    for _ in 0..100 {
        client.send_raw(&chunk);
    }
    let error = client.notification_or_response_error();
    assert_eq!(error["code"], -32600);
    assert!(error["message"].as_str().unwrap().contains("refused"));
    // The next request is served, and the body was skipped, never held.
    let id = client.request("django/unknownMethod", json!({}));
    assert_eq!(client.response(id)["error"]["code"], -32601);
    if let Some(peak) = peak_rss_bytes(client.pid()) {
        assert!(peak < 64 * 1024 * 1024, "peak RSS {} MB", peak >> 20);
    }
    assert_eq!(client.shutdown_and_exit(), 0);
}

#[test]
fn requests_after_shutdown_are_invalid_and_exit_then_gives_0() {
    let mut client = Client::spawn();
    client.initialize(json!({}));
    client.open(URI, "x = 1\n", 1);
    assert_eq!(client.call("shutdown", Value::Null), Value::Null);
    for method in ["textDocument/hover", "shutdown", "initialize"] {
        let params = match method {
            "textDocument/hover" => {
                json!({"textDocument": {"uri": URI}, "position": {"line": 0, "character": 0}})
            }
            "initialize" => json!({"processId": null, "rootUri": null, "capabilities": {}}),
            _ => Value::Null,
        };
        let id = client.request(method, params);
        let response = client.response(id);
        assert_eq!(response["error"]["code"], -32600, "{method}: {response}");
    }
    // Notifications other than `exit` are dropped; `exit` ends the server with 0.
    client.notify(
        "textDocument/didClose",
        json!({"textDocument": {"uri": URI}}),
    );
    client.notify("exit", Value::Null);
    assert_eq!(client.wait_for_exit(), 0);
}

#[test]
fn a_cancelled_request_is_answered_and_the_server_stays() {
    let mut client = Client::spawn();
    client.initialize(json!({
        "textDocument": {"diagnostic": {"dynamicRegistration": false}},
        "workspace": {"diagnostics": {"refreshSupport": true}}
    }));
    // A large document, so the analysis takes a while.
    let text = common::synthetic::django_views(6_000, 5);
    client.open(URI, &text, 1);
    let whole =
        json!({"start": {"line": 0, "character": 0}, "end": {"line": 6_000, "character": 0}});
    let requests = [
        (
            "textDocument/diagnostic",
            json!({"textDocument": {"uri": URI}}),
        ),
        (
            "textDocument/codeAction",
            json!({"textDocument": {"uri": URI}, "range": whole, "context": {"diagnostics": [], "only": ["source.fixAll"]}}),
        ),
    ];
    for (method, params) in requests {
        let id = client.request(method, params);
        client.notify("$/cancelRequest", json!({"id": id}));
        let response = client.response(id);
        // Either it finished first, or it was cancelled: never silence, never another error.
        match response.get("error") {
            Some(error) => assert_eq!(error["code"], -32800, "{method}: {response}"),
            None => assert!(response.get("result").is_some(), "{method}: {response}"),
        }
    }
    // Cancelling what is already answered, or was never asked, is harmless.
    client.notify("$/cancelRequest", json!({"id": 1}));
    client.notify("$/cancelRequest", json!({"id": "never-sent"}));
    let report = client.call(
        "textDocument/diagnostic",
        json!({"textDocument": {"uri": URI}}),
    );
    assert!(!report["items"].as_array().unwrap().is_empty());
    assert_eq!(client.shutdown_and_exit(), 0);
}
