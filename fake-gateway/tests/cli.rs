//! The `fake-gateway` binary as an operator runs it.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};

#[test]
fn help_lists_the_commands_and_releases() {
    let out = Command::new(env!("CARGO_BIN_EXE_fake-gateway"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for word in [
        "restart",
        "hang",
        "drop-pongs",
        "close",
        "rotate-token",
        "stats",
        "--release",
        "2026.3.31",
    ] {
        assert!(help.contains(word), "--help lacks {word}: {help}");
    }
}

#[test]
fn the_end_of_stdin_does_not_stop_the_gateways() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_fake-gateway"))
        .args(["--count", "1"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let port: u16 = lines.next().unwrap().unwrap()["port ".len()..]
        .parse()
        .unwrap();
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        seen.push(line.clone());
        if line.starts_with("stdin closed") {
            break;
        }
    }
    assert!(seen.iter().any(|l| l == "ready 1"), "{seen:?}");
    assert!(
        child.try_wait().unwrap().is_none(),
        "still running after stdin closed"
    );
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    s.write_all(b"GET /health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    child.kill().unwrap();
    child.wait().unwrap();
}
