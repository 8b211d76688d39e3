//! A guard between stdio and tower-lsp-server's framing.
//!
//! tower-lsp-server stops reading its input for good after the first frame it cannot decode
//! (tokio-util ends a framed stream on a decoder error), so one malformed message would cost the
//! user their server. Frames are therefore checked here first: a frame that is not a JSON-RPC
//! message gets an error response with id `null` and is dropped, an oversized one is skipped
//! without being buffered, and everything else is passed on untouched.

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

/// Larger messages are refused: a document that big is not analysed anyway, and buffering it
/// would hold that much memory per message.
pub const MAX_MESSAGE_BYTES: usize = 32 * 1024 * 1024;
const MAX_HEADER_LINE: u64 = 8 * 1024;

/// Reads frames from `input`, forwards valid ones to `server`, and sends error responses for the
/// others to `errors`. Returns at end of input (or when the server side closes).
pub async fn pump_input(
    input: impl AsyncRead + Unpin,
    mut server: impl AsyncWrite + Unpin,
    errors: mpsc::UnboundedSender<Vec<u8>>,
) {
    let mut input = BufReader::new(input);
    loop {
        let length = match read_headers(&mut input).await {
            Headers::End => return,
            Headers::Length(length) => length,
            Headers::Invalid(reason) => {
                let _ = errors.send(error_frame(-32700, &reason));
                continue;
            }
        };
        if length > MAX_MESSAGE_BYTES {
            let reason = format!(
                "message of {length} bytes refused: the limit is {MAX_MESSAGE_BYTES} bytes"
            );
            let _ = errors.send(error_frame(-32600, &reason));
            let skipped = tokio::io::copy(
                &mut (&mut input).take(length as u64),
                &mut tokio::io::sink(),
            )
            .await;
            if skipped.map_or(true, |n| n < length as u64) {
                return;
            }
            continue;
        }
        let mut body = vec![0; length];
        if input.read_exact(&mut body).await.is_err() {
            return; // The client went away mid-message.
        }
        if let Err((code, reason)) = check_message(&body) {
            let _ = errors.send(error_frame(code, &reason));
            continue;
        }
        if server.write_all(&frame(&body)).await.is_err() || server.flush().await.is_err() {
            return;
        }
    }
}

/// Copies the server's frames and the guard's error frames to `output`, whole frames at a time.
pub async fn pump_output(
    server: impl AsyncRead + Unpin,
    mut errors: mpsc::UnboundedReceiver<Vec<u8>>,
    mut output: impl AsyncWrite + Unpin,
) {
    let mut server = BufReader::new(server);
    let mut server_open = true;
    loop {
        let next = tokio::select! {
            frame = read_frame(&mut server), if server_open => match frame {
                Some(frame) => frame,
                None => { server_open = false; continue; }
            },
            error = errors.recv() => match error {
                Some(frame) => frame,
                None if server_open => { continue; }
                None => return,
            },
            else => return,
        };
        if output.write_all(&next).await.is_err() || output.flush().await.is_err() {
            return;
        }
        if !server_open && errors.is_empty() {
            return;
        }
    }
}

enum Headers {
    End,
    Length(usize),
    Invalid(String),
}

async fn read_headers(input: &mut (impl AsyncBufReadExt + Unpin)) -> Headers {
    let mut length = None;
    let mut invalid = None;
    let mut any = false;
    loop {
        let mut line = Vec::new();
        match input
            .take(MAX_HEADER_LINE)
            .read_until(b'\n', &mut line)
            .await
        {
            Ok(0) | Err(_) => return Headers::End,
            Ok(_) => {}
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches(['\r', '\n']);
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
                        invalid = Some(format!("invalid Content-Length header: {}", value.trim()))
                    }
                }
            }
            Some(_) => {} // Content-Type and any other header are not needed.
            None => invalid = Some(format!("invalid header line: {}", truncate(text))),
        }
    }
    match (invalid, length) {
        (Some(reason), _) => Headers::Invalid(reason),
        (None, Some(n)) => Headers::Length(n),
        (None, None) => Headers::Invalid("missing Content-Length header".into()),
    }
}

async fn read_frame(input: &mut (impl AsyncBufReadExt + Unpin)) -> Option<Vec<u8>> {
    let Headers::Length(length) = read_headers(input).await else {
        return None;
    };
    let mut body = vec![0; length];
    input.read_exact(&mut body).await.ok()?;
    Some(frame(&body))
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
}
