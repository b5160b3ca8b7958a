//! The integration tests' harness: the daemon runner and its waits come from the shared
//! test-support crate; gateway fixtures (`fleet`) and the WebSocket client are the suite's own.

pub mod fleet;
pub mod webdriver;
pub mod webhook;

pub use gs_test_support::daemon::*;
pub use gs_test_support::sse;

use std::net::SocketAddr;
use std::time::Duration;

/// A WebSocket client on `/api/ws{query}` with `key`, reads bounded by `deadline`.
pub fn open_ws(
    addr: SocketAddr,
    key: &str,
    query: &str,
    deadline: Duration,
) -> tungstenite::WebSocket<std::net::TcpStream> {
    let url = format!("ws://{addr}/api/ws{query}");
    let mut request =
        tungstenite::client::IntoClientRequest::into_client_request(url.as_str()).unwrap();
    request
        .headers_mut()
        .insert("x-api-key", key.parse().unwrap());
    let stream = std::net::TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(deadline)).unwrap();
    tungstenite::client::client(request, stream)
        .expect("websocket handshake")
        .0
}

/// The value of `gateway_supervisor_<series>` (with its labels as `/metrics` orders them) on
/// the daemon's `/metrics`; 0 when the series is absent.
pub fn metric(d: &Daemon, series: &str) -> f64 {
    let text = d.get("/metrics", "").text();
    let series = format!("gateway_supervisor_{series} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&series).and_then(|v| v.trim().parse().ok()))
        .unwrap_or(0.0)
}
