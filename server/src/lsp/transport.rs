//! The stdio transport: framing checked before tower-lsp-server sees it, and plain threads for
//! the blocking reads and writes.
//!
//! tower-lsp-server stops reading its input for good after the first frame it cannot decode
//! (tokio-util ends a framed stream on a decoder error), so one malformed message would cost the
//! user their server. Frames are therefore checked here first: a frame that is not a JSON-RPC
//! message gets an error response with id `null` and is dropped, an oversized one is skipped
//! without being buffered, and everything else is passed on untouched. Reading and writing the
//! real stdin/stdout on their own threads also keeps tokio's blocking-pool hand-offs off the
//! keystroke path.

use std::io::{self, BufRead, Read, Write};
use std::sync::mpsc as std_mpsc;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

/// Larger messages are refused: a document that big is not analysed anyway, and buffering it
/// would hold that much memory per message.
pub const MAX_MESSAGE_BYTES: usize = 32 * 1024 * 1024;
const MAX_HEADER_LINE: u64 = 8 * 1024;

/// Reads frames from `input` until it ends, sending valid message bodies to `messages` and error
/// responses for the others to `output`.
pub fn read_input(
    input: impl Read,
    messages: mpsc::UnboundedSender<Vec<u8>>,
    output: std_mpsc::Sender<Vec<u8>>,
) {
    let mut input = io::BufReader::new(input);
    loop {
        let length = match read_headers(&mut input, &output) {
            Headers::End => return,
            Headers::Length(length) => length,
            Headers::Invalid(reason, length) => {
                let _ = output.send(error_frame(-32700, &reason));
                // With a usable length, the body is skipped so the next message is read whole.
                if let Some(length) = length.filter(|n| *n <= MAX_MESSAGE_BYTES) {
                    if io::copy(&mut (&mut input).take(length as u64), &mut io::sink()).is_err() {
                        return;
                    }
                }
                continue;
            }
        };
        if length > MAX_MESSAGE_BYTES {
            let reason = format!(
                "message of {length} bytes refused: the limit is {MAX_MESSAGE_BYTES} bytes"
            );
            let _ = output.send(error_frame(-32600, &reason));
            match io::copy(&mut (&mut input).take(length as u64), &mut io::sink()) {
                Ok(n) if n == length as u64 => continue,
                _ => return,
            }
        }
        let mut body = vec![0; length];
        if input.read_exact(&mut body).is_err() {
            return; // The client went away mid-message.
        }
        match check_message(&body) {
            Ok(()) => {
                if messages.send(body).is_err() {
                    return;
                }
            }
            Err((code, reason)) => {
                let _ = output.send(error_frame(code, &reason));
            }
        }
    }
}

/// Writes checked message bodies into the server's input pipe, framed.
pub async fn feed_server(
    mut messages: mpsc::UnboundedReceiver<Vec<u8>>,
    mut server: impl AsyncWrite + Unpin,
) {
    while let Some(body) = messages.recv().await {
        if server.write_all(&frame(&body)).await.is_err() || server.flush().await.is_err() {
            return;
        }
    }
}

/// Passes the server's frames, whole, to the output thread.
pub async fn drain_server(server: impl AsyncRead + Unpin, output: std_mpsc::Sender<Vec<u8>>) {
    let mut server = BufReader::new(server);
    loop {
        let mut length = None;
        loop {
            let mut line = String::new();
            match server.read_line(&mut line).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((_, value)) = line.split_once(':') {
                length = value.trim().parse::<usize>().ok().or(length);
            }
        }
        let Some(length) = length else { continue };
        let mut body = vec![0; length];
        if server.read_exact(&mut body).await.is_err() || output.send(frame(&body)).is_err() {
            return;
        }
    }
}

/// Writes frames to `out` until an empty frame (the server is done) or every sender is gone.
pub fn write_output(frames: std_mpsc::Receiver<Vec<u8>>, mut out: impl Write) {
    for frame in frames {
        if frame.is_empty() {
            return;
        }
        if out.write_all(&frame).and_then(|_| out.flush()).is_err() {
            return;
        }
    }
}

enum Headers {
    End,
    Length(usize),
    /// Why the headers are unusable, and the body's length if it was still given.
    Invalid(String, Option<usize>),
}

fn read_headers(input: &mut impl BufRead, output: &std_mpsc::Sender<Vec<u8>>) -> Headers {
    let mut length = None;
    let mut invalid = None;
    let mut any = false;
    loop {
        let mut line = Vec::new();
        match input.take(MAX_HEADER_LINE).read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return Headers::End,
            Ok(_) => {}
        }
        let text = String::from_utf8_lossy(&line);
        let mut text = text.trim_end_matches(['\r', '\n']);
        // After a Content-Length shorter than its body, the rest of the body runs into the next
        // frame's header line (bodies rarely hold a line break). That header starts a new frame:
        // what came before it is reported and dropped, so one lying frame costs only itself.
        if let Some(at) = text
            .to_ascii_lowercase()
            .find("content-length:")
            .filter(|at| *at > 0)
        {
            let reason = format!("unexpected data before a header: {}", truncate(&text[..at]));
            let _ = output.send(error_frame(-32700, &reason));
            text = &text[at..];
            length = None;
            invalid = None;
        }
        if text.is_empty() {
            if !any {
                continue; // Blank lines between messages.
            }
            break;
        }
        any = true;
        match text.split_once(':') {
            Some((name, value)) if name.trim().eq_ignore_ascii_case("content-length") => {
                match value.trim().parse::<usize>() {
                    Ok(n) => length = Some(n),
                    Err(_) => {
                        invalid = Some(format!(
                            "invalid Content-Length header: {}",
                            truncate(value.trim())
                        ))
                    }
                }
            }
            Some(_) => {} // Content-Type and any other header are not needed.
            None => invalid = Some(format!("invalid header line: {}", truncate(text))),
        }
    }
    match (invalid, length) {
        (Some(reason), length) => Headers::Invalid(reason, length),
        (None, Some(n)) => Headers::Length(n),
        (None, None) => Headers::Invalid("missing Content-Length header".into(), None),
    }
}

/// Whether tower-lsp-server can decode `body`: one JSON-RPC 2.0 request, notification or
/// response, with an integer, string or null id. Otherwise the JSON-RPC error code and why.
fn check_message(body: &[u8]) -> Result<(), (i64, String)> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| (-32700, format!("invalid JSON: {e}")))?;
    let Value::Object(message) = value else {
        return Err((
            -32600,
            "a message must be a JSON object (batches are not supported)".into(),
        ));
    };
    if message.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err((-32600, "\"jsonrpc\" must be \"2.0\"".into()));
    }
    let id_ok = message
        .get("id")
        .is_none_or(|id| id.is_i64() || id.is_string() || id.is_null());
    let is_request = message.get("method").is_some_and(Value::is_string);
    let is_response = message.contains_key("id")
        && (message.contains_key("result") || message.contains_key("error"));
    if !id_ok || !(is_request || is_response) {
        return Err((
            -32600,
            "not a JSON-RPC request, notification or response".into(),
        ));
    }
    Ok(())
}

fn frame(body: &[u8]) -> Vec<u8> {
    let mut out = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
    out.extend_from_slice(body);
    out
}

fn error_frame(code: i64, message: &str) -> Vec<u8> {
    let body = json!({"jsonrpc": "2.0", "id": null, "error": {"code": code, "message": message}});
    frame(body.to_string().as_bytes())
}

fn truncate(text: &str) -> &str {
    let end = text.char_indices().nth(80).map_or(text.len(), |(i, _)| i);
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_message_shapes() {
        assert!(check_message(br#"{"jsonrpc":"2.0","id":1,"method":"x"}"#).is_ok());
        assert!(check_message(br#"{"jsonrpc":"2.0","method":"x"}"#).is_ok());
        assert!(check_message(br#"{"jsonrpc":"2.0","id":"a","result":null}"#).is_ok());
        assert_eq!(check_message(br#"{"jsonrpc":}"#).unwrap_err().0, -32700);
        assert_eq!(check_message(br#"[1]"#).unwrap_err().0, -32600);
        assert_eq!(
            check_message(br#"{"jsonrpc":"2.0","id":1.5,"method":"x"}"#)
                .unwrap_err()
                .0,
            -32600
        );
        assert_eq!(
            check_message(br#"{"jsonrpc":"2.0","id":1}"#).unwrap_err().0,
            -32600
        );
    }

    #[test]
    fn a_bad_header_line_with_a_length_skips_its_body() {
        let input = b"Content-Length: 30\r\nbogus header line\r\n\r\n{\"jsonrpc\":\"2.0\",\"method\":\"a\"}Content-Length: 30\r\n\r\n{\"jsonrpc\":\"2.0\",\"method\":\"b\"}";
        let (messages_tx, mut messages_rx) = mpsc::unbounded_channel();
        let (output_tx, output_rx) = std_mpsc::channel();
        read_input(&input[..], messages_tx, output_tx);
        assert_eq!(output_rx.try_iter().count(), 1);
        assert_eq!(
            messages_rx.try_recv().unwrap(),
            br#"{"jsonrpc":"2.0","method":"b"}"#
        );
        assert!(messages_rx.try_recv().is_err());
    }

    #[test]
    fn a_content_length_that_lies_costs_only_its_own_frame() {
        let good = br#"{"jsonrpc":"2.0","method":"x"}"#;
        let framed = |length: usize| {
            let mut f = format!("Content-Length: {length}\r\n\r\n").into_bytes();
            f.extend_from_slice(good);
            f
        };
        // Too short: the rest of its body runs into the next header line.
        let mut input = framed(10);
        input.extend(framed(good.len()));
        // Too long: it swallows the start of the next frame, which is lost too.
        input.extend(framed(good.len() + 12));
        input.extend(framed(good.len()));
        input.extend(framed(good.len()));
        let (messages_tx, mut messages_rx) = mpsc::unbounded_channel();
        let (output_tx, output_rx) = std_mpsc::channel();
        read_input(&input[..], messages_tx, output_tx);
        let mut passed = 0;
        while let Ok(body) = messages_rx.try_recv() {
            assert_eq!(body, good);
            passed += 1;
        }
        assert_eq!(passed, 2);
        assert!(output_rx.try_iter().count() >= 2);
    }

    #[test]
    fn bad_frames_get_errors_and_good_ones_pass() {
        let input = b"Content-Length: 2\r\n\r\n{}garbage line\r\n\r\nContent-Length: 30\r\n\r\n{\"jsonrpc\":\"2.0\",\"method\":\"x\"}";
        let (messages_tx, mut messages_rx) = mpsc::unbounded_channel();
        let (output_tx, output_rx) = std_mpsc::channel();
        read_input(&input[..], messages_tx, output_tx);
        let errors: Vec<String> = output_rx
            .try_iter()
            .map(|f| String::from_utf8(f).unwrap())
            .collect();
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[0].contains("-32600") && errors[1].contains("invalid header line"));
        assert_eq!(
            messages_rx.try_recv().unwrap(),
            br#"{"jsonrpc":"2.0","method":"x"}"#
        );
    }
}
