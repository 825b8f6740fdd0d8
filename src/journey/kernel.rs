//! One kernel's websocket and the Jupyter messaging protocol (5.x, JSON text frames):
//! send an `execute_request` on the shell channel, then read until both the shell's
//! `execute_reply` and the iopub `status: idle` for that request have come, collecting
//! its output on the way. The handshake goes through reqwest, so the websocket carries
//! the same TLS settings, `Authorization` header and cookies as every other request.

use futures::{SinkExt, StreamExt};
use reqwest::header::{HeaderMap, CONNECTION, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, UPGRADE};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::handshake::client::generate_key;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use url::Url;

use super::JourneyError;

/// Output kept from one execution; more is cut (memory stays bounded).
const MAX_OUTPUT: usize = 64 * 1024;
/// A traceback is cut to this much for the debug log.
const MAX_TRACEBACK: usize = 16 * 1024;
/// The largest websocket message accepted.
const MAX_MESSAGE: usize = 16 * 1024 * 1024;

/// An open websocket to one kernel.
pub struct KernelChannel {
    ws: WebSocketStream<reqwest::Upgraded>,
    session: String,
}

impl KernelChannel {
    /// Opens `url` (`…/api/kernels/{id}/channels`) as a websocket, `headers` on the handshake.
    pub async fn connect(
        http: &reqwest::Client,
        url: Url,
        headers: HeaderMap,
    ) -> Result<KernelChannel, JourneyError> {
        let session = uuid::Uuid::new_v4().simple().to_string();
        let mut url = url;
        url.query_pairs_mut().append_pair("session_id", &session);
        let key = generate_key();
        let response = http
            .get(url)
            .version(reqwest::Version::HTTP_11)
            .headers(headers)
            .header(CONNECTION, "Upgrade")
            .header(UPGRADE, "websocket")
            .header("Sec-WebSocket-Version", "13")
            .header(SEC_WEBSOCKET_KEY, &key)
            .send()
            .await
            .map_err(JourneyError::from_reqwest)?;
        let status = response.status();
        if status != reqwest::StatusCode::SWITCHING_PROTOCOLS {
            return Err(JourneyError::Status(status.as_u16()));
        }
        let accept = response
            .headers()
            .get(SEC_WEBSOCKET_ACCEPT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if accept != derive_accept_key(key.as_bytes()) {
            return Err(JourneyError::Protocol(
                "websocket handshake: wrong Sec-WebSocket-Accept".into(),
            ));
        }
        let upgraded = response
            .upgrade()
            .await
            .map_err(JourneyError::from_reqwest)?;
        let config = WebSocketConfig::default()
            .max_message_size(Some(MAX_MESSAGE))
            .max_frame_size(Some(MAX_MESSAGE));
        let ws = WebSocketStream::from_raw_socket(upgraded, Role::Client, Some(config)).await;
        Ok(KernelChannel { ws, session })
    }

    /// Runs `code`; its text output (streams, results, displays) or the kernel's error.
    /// No timeout here: the caller bounds it.
    pub async fn execute(&mut self, code: &str) -> Result<String, JourneyError> {
        let msg_id = uuid::Uuid::new_v4().simple().to_string();
        let request = json!({
            "header": {
                "msg_id": msg_id,
                "username": "hubsoak",
                "session": self.session,
                "msg_type": "execute_request",
                "version": "5.3",
                "date": chrono::Utc::now().to_rfc3339(),
            },
            "parent_header": {},
            "metadata": {},
            "content": {
                "code": code,
                "silent": false,
                "store_history": false,
                "user_expressions": {},
                "allow_stdin": false,
                "stop_on_error": true,
            },
            "channel": "shell",
            "buffers": [],
        });
        self.ws
            .send(Message::text(request.to_string()))
            .await
            .map_err(|e| JourneyError::Connection(e.to_string()))?;
        let mut output = String::new();
        let mut error: Option<String> = None;
        let mut traceback = String::new();
        let (mut replied, mut idle) = (false, false);
        while !(replied && idle) {
            let frame = match self.ws.next().await {
                Some(Ok(frame)) => frame,
                Some(Err(e)) => return Err(JourneyError::Connection(e.to_string())),
                None => return Err(JourneyError::Connection("the kernel closed".into())),
            };
            let text = match frame {
                Message::Text(text) => text,
                Message::Close(_) => {
                    return Err(JourneyError::Connection("the kernel closed".into()))
                }
                // Pings are answered by tungstenite; binary frames are another protocol.
                _ => continue,
            };
            let Ok(msg) = serde_json::from_str::<Value>(&text) else {
                return Err(JourneyError::Protocol("a frame is not JSON".into()));
            };
            if msg["parent_header"]["msg_id"].as_str() != Some(msg_id.as_str()) {
                continue;
            }
            let content = &msg["content"];
            match msg["header"]["msg_type"].as_str().unwrap_or_default() {
                "stream" => push(&mut output, content["text"].as_str()),
                "execute_result" | "display_data" => {
                    push(&mut output, content["data"]["text/plain"].as_str())
                }
                "error" => {
                    error = Some(format!(
                        "{}: {}",
                        content["ename"].as_str().unwrap_or("Error"),
                        content["evalue"].as_str().unwrap_or("")
                    ));
                    traceback = content["traceback"]
                        .as_array()
                        .map(|lines| {
                            let lines: Vec<&str> = lines.iter().filter_map(Value::as_str).collect();
                            lines.join("\n")
                        })
                        .unwrap_or_default();
                }
                "status" => idle |= content["execution_state"].as_str() == Some("idle"),
                "execute_reply" => {
                    replied = true;
                    if content["status"].as_str() != Some("ok") && error.is_none() {
                        error = Some(format!(
                            "execute_reply status {}",
                            content["status"].as_str().unwrap_or("missing")
                        ));
                    }
                }
                _ => {}
            }
        }
        match error {
            Some(e) => Err(JourneyError::Kernel {
                error: plain(&e, 300),
                traceback: plain(&traceback, MAX_TRACEBACK),
            }),
            None => Ok(output),
        }
    }

    /// Closes the websocket politely (best effort).
    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}

/// `text` as a log can show it: colour codes out (IPython colours its errors), any
/// token redacted, at most `max` bytes.
fn plain(text: &str, max: usize) -> String {
    let text = console::strip_ansi_codes(text);
    crate::hub::cut(&crate::hub::redact(&text), max).into_owned()
}

fn push(output: &mut String, text: Option<&str>) {
    let Some(text) = text else { return };
    let room = MAX_OUTPUT.saturating_sub(output.len());
    let mut cut = text.len().min(room);
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    output.push_str(&text[..cut]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_codes_are_stripped_from_errors() {
        let raw = "\u{1b}[0;31mZeroDivisionError\u{1b}[0m: division by zero";
        assert_eq!(plain(raw, 300), "ZeroDivisionError: division by zero");
        assert_eq!(
            plain(&"x".repeat(400), 300),
            format!("{}…", "x".repeat(300))
        );
    }

    #[test]
    fn output_is_bounded_on_a_char_boundary() {
        let mut out = String::new();
        let big = "é".repeat(MAX_OUTPUT);
        push(&mut out, Some(&big));
        push(&mut out, Some("more"));
        assert!(out.len() <= MAX_OUTPUT && out.len() > MAX_OUTPUT - 2);
        assert!(out.chars().all(|c| c == 'é'));
    }
}
