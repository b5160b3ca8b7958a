//! A fake OpenAI-compatible model on loopback (openclaw-protocol.md §12.4): `GET /v1/models`
//! and streaming `POST /v1/chat/completions`. It answers `pong`; when the user's turn contains
//! `SLOW` it streams slowly for ten minutes (so a run can be killed mid-way); when it contains
//! `HANG` it answers the headers and then sends no data for ten minutes, only SSE comment lines
//! (which carry nothing to the gateway's stream parser), so the run is active and silent: what a
//! wedged provider looks like from the gateway. When it contains `EXEC:` it asks for the `exec`
//! tool with the command after it (`EXEC: printf smoke` → `{"command": "printf smoke"}`), and
//! the turn that carries the tool's result is answered `tool said: <result>`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{Value, json};

pub struct FakeModel {
    pub port: u16,
    pub requests: Arc<AtomicU64>,
}

impl FakeModel {
    pub fn start() -> FakeModel {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the fake model");
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(AtomicU64::new(0));
        let counter = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let counter = counter.clone();
                std::thread::spawn(move || serve(stream, &counter));
            }
        });
        FakeModel { port, requests }
    }

    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}/v1", self.port)
    }
}

fn serve(stream: TcpStream, counter: &AtomicU64) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
    let mut length = 0usize;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).is_err() || h == "\r\n" || h.is_empty() {
            break;
        }
        if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0u8; length];
    let _ = reader.read_exact(&mut body);
    let mut out = stream;
    if path.ends_with("/models") {
        let b = json!({"object": "list", "data": [{"id": "slow-model", "object": "model"}]})
            .to_string();
        let _ = write!(
            out,
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{b}",
            b.len()
        );
        return;
    }
    counter.fetch_add(1, Ordering::Relaxed);
    let req: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    // The user's turn: every user message after the last assistant message.
    let messages = req["messages"].as_array().cloned().unwrap_or_default();
    let last_assistant = messages
        .iter()
        .rposition(|m| m["role"] == "assistant")
        .map(|i| i + 1)
        .unwrap_or(0);
    let turn: String = messages[last_assistant..]
        .iter()
        .filter(|m| m["role"] == "user")
        .map(|m| m["content"].to_string())
        .collect();
    // The tool's result, if this request carries one (after the assistant's tool call).
    let tool_result: Option<String> = messages[last_assistant..]
        .iter()
        .find(|m| m["role"] == "tool")
        .map(|m| match &m["content"] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        });
    let exec = turn
        .find("EXEC:")
        .and_then(|i| turn[i + 5..].split(['"', '\\']).next())
        .map(|c| c.trim().to_owned())
        .filter(|_| tool_result.is_none());
    let slow = turn.contains("SLOW");
    let hang = turn.contains("HANG");
    let _ = write!(
        out,
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\nconnection: close\r\n\r\n"
    );
    let chunk = |content: &str, finish: Option<&str>| {
        json!({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 0, "model": "slow-model",
               "choices": [{"index": 0, "delta": {"role": "assistant", "content": content}, "finish_reason": finish}]})
    };
    if let Some(command) = exec {
        let args = json!({"command": command}).to_string();
        let call = json!({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 0, "model": "slow-model",
            "choices": [{"index": 0, "delta": {"role": "assistant", "tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                "function": {"name": "exec", "arguments": args}}]}, "finish_reason": null}]});
        let _ = write!(out, "data: {call}\n\n");
        let done = json!({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 0, "model": "slow-model",
            "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]});
        let _ = write!(out, "data: {done}\n\n");
        let _ = write!(out, "data: [DONE]\n\n");
        let _ = out.flush();
        return;
    }
    if let Some(result) = tool_result {
        let said = format!(
            "tool said: {}",
            result.chars().take(500).collect::<String>()
        );
        let _ = write!(out, "data: {}\n\n", chunk(&said, None));
        let _ = write!(out, "data: {}\n\n", chunk("", Some("stop")));
        let _ = write!(out, "data: [DONE]\n\n");
        let _ = out.flush();
        return;
    }
    if hang {
        for _ in 0..600 {
            if out
                .write_all(b": idle\n\n")
                .and_then(|_| out.flush())
                .is_err()
            {
                return; // the gateway cancelled the request
            }
            std::thread::sleep(Duration::from_secs(1));
        }
        return;
    }
    if slow {
        for _ in 0..600 {
            if write!(out, "data: {}\n\n", chunk(".", None))
                .and_then(|_| out.flush())
                .is_err()
            {
                return; // the gateway cancelled the request
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    }
    let _ = write!(out, "data: {}\n\n", chunk("pong", None));
    let _ = write!(out, "data: {}\n\n", chunk("", Some("stop")));
    let _ = write!(
        out,
        "data: {}\n\n",
        json!({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "choices": [], "usage": {"prompt_tokens": 10, "completion_tokens": 1, "total_tokens": 11}})
    );
    let _ = write!(out, "data: [DONE]\n\n");
    let _ = out.flush();
}
