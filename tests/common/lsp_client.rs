//! A minimal LSP client over the real binary's stdio, for end-to-end tests.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub const TIMEOUT: Duration = Duration::from_secs(20);

pub struct Client {
    child: Child,
    stdin: Option<ChildStdin>,
    messages: Receiver<Value>,
    next_id: i64,
    /// Notifications and server requests seen while waiting for something else.
    pub backlog: Vec<Value>,
    /// What the server wrote on stderr, when spawned with `spawn_capturing_stderr`.
    stderr: Option<CapturedStderr>,
}

type CapturedStderr = (
    std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    Option<std::thread::JoinHandle<()>>,
);

impl Client {
    pub fn spawn() -> Self {
        Self::spawn_with(&["serve", "--stdio"], false)
    }

    /// The server started with `args`, as an editor's configuration names them.
    pub fn spawn_with_args(args: &[&str]) -> Self {
        Self::spawn_with(args, false)
    }

    /// A server whose stderr is kept, for `stderr()`.
    pub fn spawn_capturing_stderr() -> Self {
        Self::spawn_with(&["serve", "--stdio"], true)
    }

    fn spawn_with(args: &[&str], capture: bool) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_django-orm-lsp"))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(if capture {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .spawn()
            .expect("the server binary starts");
        let stderr = child.stderr.take().map(|mut pipe| {
            let kept = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
            let sink = kept.clone();
            let reader = std::thread::spawn(move || {
                let mut buf = [0; 4096];
                while let Ok(n) = pipe.read(&mut buf) {
                    if n == 0 {
                        return;
                    }
                    sink.lock().unwrap().extend_from_slice(&buf[..n]);
                }
            });
            (kept, Some(reader))
        });
        let stdout = child.stdout.take().unwrap();
        let stdin = child.stdin.take();
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            loop {
                let mut length = None;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let line = line.trim();
                    if line.is_empty() {
                        break;
                    }
                    if let Some(v) = line.strip_prefix("Content-Length:") {
                        length = v.trim().parse::<usize>().ok();
                    }
                }
                let mut body = vec![0; length.expect("Content-Length header")];
                if reader.read_exact(&mut body).is_err() {
                    return;
                }
                if tx
                    .send(serde_json::from_slice(&body).expect("the server sends JSON"))
                    .is_err()
                {
                    return;
                }
            }
        });
        Self {
            child,
            stdin,
            messages: rx,
            next_id: 0,
            backlog: Vec::new(),
            stderr,
        }
    }

    /// What the server has written on stderr so far, all of it once it has exited
    /// (`spawn_capturing_stderr` only).
    pub fn stderr(&mut self) -> String {
        let exited = matches!(self.child.try_wait(), Ok(Some(_)));
        let (kept, reader) = self
            .stderr
            .as_mut()
            .expect("spawned with spawn_capturing_stderr");
        if exited {
            if let Some(reader) = reader.take() {
                let _ = reader.join();
            }
        }
        let text = String::from_utf8_lossy(&kept.lock().unwrap()).into_owned();
        text
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Closes the server's stdin, as a client that goes away does.
    pub fn close_stdin(&mut self) {
        drop(self.stdin.take());
    }

    /// Sends a request with this `id` (any JSON value) and returns the response to it.
    pub fn request_with_id(&mut self, id: Value, method: &str, params: Value) -> Value {
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        self.response_to(&id)
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin.write_all(bytes).unwrap();
        stdin.flush().unwrap();
    }

    pub fn send(&mut self, message: Value) {
        let body = serde_json::to_vec(&message).unwrap();
        let mut frame = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
        frame.extend(body);
        self.send_raw(&frame);
    }

    pub fn request(&mut self, method: &str, params: Value) -> i64 {
        self.next_id += 1;
        let id = self.next_id;
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        id
    }

    pub fn notify(&mut self, method: &str, params: Value) {
        self.send(json!({"jsonrpc": "2.0", "method": method, "params": params}));
    }

    /// The next message, answering requests from the server on the way.
    fn next(&mut self, deadline: Instant) -> Option<Value> {
        let left = deadline.saturating_duration_since(Instant::now());
        match self.messages.recv_timeout(left) {
            Ok(message) => {
                if message.get("id").is_some() && message.get("method").is_some() {
                    let id = message["id"].clone();
                    self.send(json!({"jsonrpc": "2.0", "id": id, "result": null}));
                }
                Some(message)
            }
            Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => None,
        }
    }

    /// The next message from the server within `wait`, server requests answered (the backlog
    /// is left alone).
    pub fn next_message(&mut self, wait: Duration) -> Option<Value> {
        self.next(Instant::now() + wait)
    }

    pub fn response(&mut self, id: i64) -> Value {
        self.response_to(&json!(id))
    }

    pub fn response_to(&mut self, id: &Value) -> Value {
        let deadline = Instant::now() + TIMEOUT;
        while let Some(message) = self.next(deadline) {
            if message.get("id") == Some(id) && message.get("method").is_none() {
                return message;
            }
            self.backlog.push(message);
        }
        panic!("no response to request {id}");
    }

    pub fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.request(method, params);
        let response = self.response(id);
        assert!(
            response.get("error").is_none(),
            "{method} failed: {response}"
        );
        response["result"].clone()
    }

    /// The first notification `method` (from the backlog or new) whose params satisfy `accept`.
    pub fn notification(&mut self, method: &str, accept: impl Fn(&Value) -> bool) -> Value {
        self.try_notification(method, &accept, TIMEOUT)
            .unwrap_or_else(|| panic!("no {method} notification"))
    }

    pub fn try_notification(
        &mut self,
        method: &str,
        accept: &impl Fn(&Value) -> bool,
        wait: Duration,
    ) -> Option<Value> {
        if let Some(i) = self
            .backlog
            .iter()
            .position(|m| m["method"] == method && accept(&m["params"]))
        {
            return Some(self.backlog.remove(i)["params"].clone());
        }
        let deadline = Instant::now() + wait;
        while let Some(message) = self.next(deadline) {
            if message["method"] == method && accept(&message["params"]) {
                return Some(message["params"].clone());
            }
            self.backlog.push(message);
        }
        None
    }

    /// The next error response to a request without an id (e.g. a parse error).
    pub fn notification_or_response_error(&mut self) -> Value {
        let deadline = Instant::now() + TIMEOUT;
        while let Some(message) = self.next(deadline) {
            if message.get("error").is_some() && message.get("method").is_none() {
                return message["error"].clone();
            }
            self.backlog.push(message);
        }
        panic!("no error response");
    }

    /// `initialize` + `initialized` with the given client capabilities; returns the result.
    pub fn initialize(&mut self, capabilities: Value) -> Value {
        self.initialize_with(
            json!({"processId": null, "rootUri": null, "capabilities": capabilities}),
        )
    }

    /// `initialize` with these params + `initialized`; returns the result.
    pub fn initialize_with(&mut self, params: Value) -> Value {
        let result = self.call("initialize", params);
        self.notify("initialized", json!({}));
        result
    }

    pub fn open(&mut self, uri: &str, text: &str, version: i64) {
        self.notify(
            "textDocument/didOpen",
            json!({"textDocument": {"uri": uri, "languageId": "python", "version": version, "text": text}}),
        );
    }

    /// The diagnostics published for `uri` at `version`.
    pub fn diagnostics(&mut self, uri: &str, version: i64) -> Vec<Value> {
        let params = self.notification("textDocument/publishDiagnostics", |p| {
            p["uri"] == uri && p["version"] == version
        });
        params["diagnostics"].as_array().unwrap().clone()
    }

    pub fn shutdown_and_exit(mut self) -> i32 {
        self.call("shutdown", Value::Null);
        self.notify("exit", Value::Null);
        self.wait_for_exit()
    }

    pub fn wait_for_exit(&mut self) -> i32 {
        drop(self.stdin.take());
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code().unwrap_or(-1);
            }
            assert!(Instant::now() < deadline, "the server did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Applies LSP text edits with UTF-16 positions to `text` (an independent implementation, so
/// the tests do not trust the server's own position code). Lines end at \n, \r\n or \r.
pub fn apply_text_edits(text: &str, edits: &[Value]) -> String {
    let mut spans: Vec<(usize, usize, String)> = edits
        .iter()
        .map(|e| {
            let start = utf16_offset(text, &e["range"]["start"]);
            let end = utf16_offset(text, &e["range"]["end"]);
            (start, end, e["newText"].as_str().unwrap().to_string())
        })
        .collect();
    spans.sort_by_key(|s| std::cmp::Reverse(s.0));
    let mut out = text.to_string();
    for (start, end, new) in spans {
        out.replace_range(start..end, &new);
    }
    out
}

pub fn utf16_offset(text: &str, position: &Value) -> usize {
    let line = position["line"].as_u64().unwrap() as usize;
    let character = position["character"].as_u64().unwrap() as usize;
    let mut line_start = 0;
    let mut current = 0;
    let bytes = text.as_bytes();
    let mut i = 0;
    while current < line && i < bytes.len() {
        match bytes[i] {
            b'\n' => {
                current += 1;
                line_start = i + 1;
            }
            b'\r' if bytes.get(i + 1) != Some(&b'\n') => {
                current += 1;
                line_start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    let mut units = 0;
    for (offset, ch) in text[line_start..].char_indices() {
        if units >= character || ch == '\n' || ch == '\r' {
            return line_start + offset;
        }
        units += ch.len_utf16();
    }
    text.len()
}
