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

/// Now, in Unix seconds.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Runs one SQL statement on the daemon's database, as an older daemon or an operator would
/// (SQLite through Python's `sqlite3`, PostgreSQL through `psql`).
pub fn sql(d: &Daemon, statement: &str) {
    let url = d.database_url();
    let status = if let Some(path) = url.strip_prefix("sqlite://") {
        let script = format!(
            "import sqlite3, sys\nc = sqlite3.connect({path:?})\nc.execute(sys.argv[1])\nc.commit()\n"
        );
        std::process::Command::new("python3")
            .args(["-c", &script, statement])
            .status()
    } else {
        std::process::Command::new("psql")
            .args([url.as_str(), "-q", "-v", "ON_ERROR_STOP=1", "-c", statement])
            .status()
    };
    assert!(status.unwrap().success(), "SQL failed: {statement}");
}

/// `gateway-supervisor ctl <args>` against daemon `d`, as key `key` (none: no key).
pub fn ctl_command(d: &Daemon, key: Option<&str>, args: &[&str]) -> std::process::Command {
    let mut cmd = std::process::Command::new(binary());
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("GATEWAY_SUPERVISOR_URL", format!("http://{}", d.addr))
        .arg("ctl")
        .args(args);
    if let Some(k) = key {
        cmd.env("GATEWAY_SUPERVISOR_API_KEY", k);
    }
    cmd
}

/// What `ctl <args>` prints as the admin; a panic with its error when it fails.
pub fn admin_ctl(d: &Daemon, args: &[&str]) -> String {
    let out = ctl_command(d, Some(&d.admin_key), args)
        .output()
        .expect("run ctl");
    assert!(
        out.status.success(),
        "ctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
