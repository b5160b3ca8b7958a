//! `kill -9` during a burst of creates: every acknowledged create survives, and the database is
//! consistent afterwards.

use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::json;

use crate::support::{Daemon, Request, wait_until};

#[test]
fn acknowledged_creates_survive_kill_9() {
    let mut d = Daemon::start_with(&[("GATEWAY_SUPERVISOR__LIMITS__GATEWAY_OPS_PER_MINUTE", "0")]);
    let acked: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let stop = AtomicBool::new(false);
    let addr = d.addr;
    let key = d.admin_key.clone();
    std::thread::scope(|s| {
        for worker in 0..8 {
            let (acked, stop, key) = (&acked, &stop, &key);
            s.spawn(move || {
                for i in 0.. {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let name = format!("w{worker}-{i}");
                    let body = json!({"name": name, "host": "127.0.0.1", "port": 1000 + worker * 7000 + i % 7000, "token": format!("t-{name}"), "is_primary": i % 7 == 0});
                    match Request::new("POST", "/api/gateways").key(key).json(&body).send(addr) {
                        Ok(res) if res.status == 201 => acked.lock().unwrap().push(name),
                        Ok(res) => panic!("unexpected {}: {}", res.status, res.text()),
                        // The daemon died mid-request: not acknowledged.
                        Err(_) => break,
                    }
                }
            });
        }
        wait_until("40 acknowledged creates", Duration::from_secs(60), || {
            (acked.lock().unwrap().len() >= 40).then_some(())
        });
        d.kill9();
        stop.store(true, Ordering::Relaxed);
    });
    let acked = acked.into_inner().unwrap();
    assert!(acked.len() >= 40);

    d.launch();
    let list = d.gateways();
    let present: HashSet<String> = list
        .iter()
        .map(|g| g["name"].as_str().unwrap().to_owned())
        .collect();
    let missing: Vec<&String> = acked.iter().filter(|n| !present.contains(*n)).collect();
    assert!(missing.is_empty(), "acknowledged but lost: {missing:?}");
    assert_eq!(present.len(), list.len(), "names are unique");
    assert_eq!(
        list.iter().filter(|g| g["is_primary"] == true).count(),
        1,
        "exactly one primary"
    );
    assert!(
        list.iter().all(|g| g["token_set"] == true),
        "every token decrypts"
    );
    // Still fully working.
    d.create_gateway("after-crash", 5, None);
    let out = d.cli(&["migrate"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
