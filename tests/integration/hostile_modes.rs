//! Every hostile-gateway mode of the fake, one table: beside a healthy gateway, a peer that
//! sends binary, bytes that are not UTF-8, garbage, oversize frames, event floods, broken
//! challenges, absurd hellos, or drips its handshake. For each: the daemon stays up, its
//! memory stays bounded, the hostile gateway's status and `last_error` say what happened (in
//! bounded, printable text), and the healthy gateway stays online.

use std::time::Duration;

use fake_gateway::hostile::Hostile;
use serde_json::{Value, json};

use crate::support::fleet::{add, fake, gateway, link_daemon};
use crate::support::{Daemon, online, wait_until};

const DEADLINE: Duration = Duration::from_secs(30);

/// What the daemon should make of a mode.
enum Verdict {
    /// The link fails with one of these codes.
    Fails(&'static [&'static str]),
    /// The peer is odd but within what the daemon tolerates: online, with what it reported
    /// kept within bounds.
    Tolerated,
    /// Tolerated, and once this log line is served the peer's whole flood has been taken in.
    Absorbed(&'static str),
}

struct Mode {
    name: &'static str,
    hostile: Hostile,
    verdict: Verdict,
}

fn modes() -> Vec<Mode> {
    use Verdict::{Absorbed, Fails, Tolerated};
    let methods: Vec<String> = (0..50_000).map(|i| format!("method.{i}")).collect();
    vec![
        Mode {
            name: "binary",
            hostile: Hostile::BinaryAfterHello,
            verdict: Fails(&["PROTOCOL_ERROR"]),
        },
        Mode {
            name: "invalid-utf8",
            hostile: Hostile::InvalidUtf8AfterHello,
            verdict: Fails(&["PROTOCOL_ERROR"]),
        },
        Mode {
            name: "garbage",
            hostile: Hostile::GarbageAfterHello,
            verdict: Fails(&["PROTOCOL_ERROR"]),
        },
        Mode {
            name: "oversize",
            hostile: Hostile::oversize(20 * 1024 * 1024),
            verdict: Fails(&["MESSAGE_TOO_BIG"]),
        },
        Mode {
            name: "flood",
            hostile: Hostile::flood(20_000),
            verdict: Absorbed("flood 19999"),
        },
        Mode {
            name: "challenge-without-nonce",
            hostile: Hostile::Challenge(
                json!({"type": "event", "event": "connect.challenge", "payload": {"ts": 1}}),
            ),
            verdict: Fails(&["PROTOCOL_ERROR"]),
        },
        Mode {
            name: "challenge-nonce-not-text",
            hostile: Hostile::Challenge(
                json!({"type": "event", "event": "connect.challenge", "payload": {"nonce": {"a": [1, 2]}, "ts": 1}}),
            ),
            verdict: Fails(&["PROTOCOL_ERROR"]),
        },
        Mode {
            name: "challenge-not-an-event",
            hostile: Hostile::Challenge(json!({"type": "res", "id": "x", "ok": true})),
            verdict: Fails(&["PROTOCOL_ERROR", "TIMEOUT"]),
        },
        Mode {
            name: "hello-absurd-protocol",
            hostile: Hostile::Hello(json!({"protocol": 18_446_744_073_709_551_615u64})),
            verdict: Fails(&["PROTOCOL_MISMATCH", "PROTOCOL_ERROR"]),
        },
        Mode {
            name: "hello-wrong-types",
            hostile: Hostile::Hello(json!({
                "policy": {"tickIntervalMs": -5, "maxPayload": 1e300, "maxBufferedBytes": -1},
            })),
            verdict: Fails(&["PROTOCOL_ERROR"]),
        },
        Mode {
            name: "hello-absurd-sizes",
            hostile: Hostile::Hello(json!({
                "server": {"version": format!("9\n{}\u{1b}[31m", "9".repeat(70_000))},
                "policy": {"tickIntervalMs": u64::MAX, "maxPayload": u64::MAX, "maxBufferedBytes": u64::MAX},
                "features": {"methods": methods},
            })),
            verdict: Tolerated,
        },
        Mode {
            name: "hello-zero-tick",
            hostile: Hostile::Hello(json!({"policy": {"tickIntervalMs": 0, "maxPayload": 0}})),
            verdict: Tolerated,
        },
        Mode {
            name: "drip",
            hostile: Hostile::Drip(Duration::from_millis(200)),
            verdict: Fails(&["TIMEOUT"]),
        },
    ]
}

/// The daemon's resident memory, from `/proc`.
fn rss_mb(d: &Daemon) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", d.pid())).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<u64>().ok())
        .expect("VmRSS in /proc/<pid>/status")
        >> 10
}

/// Text the daemon shows from a peer is bounded and printable.
fn assert_shown_safely(mode: &str, what: &str, text: &str) {
    assert!(text.len() <= 2048, "{mode}: {what} is {} bytes", text.len());
    assert!(
        !text.chars().any(char::is_control),
        "{mode}: {what} has control characters: {text:?}"
    );
}

#[test]
fn every_hostile_mode_leaves_the_daemon_up_truthful_and_the_neighbour_online() {
    // A keepalive of 1 s, dead after three missed pongs (3 s): a flooded socket delivers its
    // pong behind the flood, and a debug build on a loaded machine takes more than 600 ms to
    // read 20,000 frames; yet a hostile mode that starves the pongs is still caught within
    // the test's deadline. The keepalive has its own tests.
    let d = link_daemon(&[
        ("GATEWAY_SUPERVISOR__GATEWAYS__HEARTBEAT_INTERVAL", "1s"),
        ("GATEWAY_SUPERVISOR__GATEWAYS__MISSED_PONGS", "3"),
    ]);
    let healthy = fake(|_| {});
    let healthy_id = add(&d, "healthy", &healthy, Some("fake-token"));
    wait_until("the healthy gateway online", DEADLINE, || {
        online(&gateway(&d, healthy_id)).then_some(())
    });
    let baseline = rss_mb(&d);

    for mode in modes() {
        let hostile = fake(|_| {});
        hostile.update_faults(|f| f.hostile = Some(mode.hostile.clone()));
        let id = add(&d, mode.name, &hostile, Some("fake-token"));
        let g: Value = match mode.verdict {
            Verdict::Fails(codes) => {
                let g = wait_until(mode.name, DEADLINE, || {
                    let g = gateway(&d, id);
                    let code = g["connection"]["last_error"]["code"].as_str()?;
                    assert!(
                        codes.contains(&code),
                        "{}: the link reports {code}, expected one of {codes:?}: {g}",
                        mode.name
                    );
                    Some(g)
                });
                // Truthful: a peer that cannot keep a link is not reported online once it
                // has failed (it may flap through `hello-ok`; give the breaker its turn).
                wait_until("the gateway not online", DEADLINE, || {
                    let g = gateway(&d, id);
                    (!online(&g)).then_some(())
                });
                g
            }
            Verdict::Tolerated | Verdict::Absorbed(_) => wait_until(mode.name, DEADLINE, || {
                let g = gateway(&d, id);
                assert!(
                    g["connection"]["last_error"].is_null(),
                    "{}: a tolerable peer's link failed: {g}",
                    mode.name
                );
                online(&g).then_some(g)
            }),
        };
        if let Verdict::Absorbed(last) = mode.verdict {
            wait_until("the whole flood taken in", DEADLINE, || {
                let logs = d.get("/api/logs?limit=1", &d.admin_key).json();
                (logs["logs"][0]["message"] == last).then_some(())
            });
            let g = gateway(&d, id);
            assert!(online(&g), "{}: went offline: {g}", mode.name);
        }
        if let Some(message) = g["connection"]["last_error"]["message"].as_str() {
            assert_shown_safely(mode.name, "last_error.message", message);
        }
        if let Some(version) = g["connection"]["server_version"].as_str() {
            assert_shown_safely(mode.name, "server_version", version);
            // 128 bytes and the marker of the cut (`…[+N bytes]`).
            assert!(
                version.len() <= 160,
                "{}: version {} bytes",
                mode.name,
                version.len()
            );
        }

        // The daemon is up and answering, its memory bounded, the neighbour untouched.
        let res = d.get("/healthz", "");
        assert_eq!(res.status, 200, "{}: /healthz {}", mode.name, res.text());
        let rss = rss_mb(&d);
        assert!(
            rss < baseline + 96,
            "{}: RSS {baseline} MB → {rss} MB",
            mode.name
        );
        let neighbour = gateway(&d, healthy_id);
        assert!(
            online(&neighbour),
            "{}: the healthy gateway: {neighbour}",
            mode.name
        );

        let res = d.call(
            "DELETE",
            &format!("/api/gateways/{id}"),
            &d.admin_key,
            &json!({}),
        );
        assert_eq!(res.status, 200, "{}: delete {}", mode.name, res.text());
        eprintln!(
            "{}: {} / RSS {rss} MB",
            mode.name, g["connection"]["last_error"]
        );
    }
}
