//! An instance whose clock runs slow (issue 61): libfaketime makes `b`'s clocks — the wall
//! clock and the monotonic one its lease guards run on — 5 % slow, and `b` alone is cut from
//! the database. Its guard, moved to a round's start plus the TTL less a fifth, must still end
//! its links before its row's expiry by the database's clock lets `a` and `c` adopt: the fakes
//! must never receive frames from two instances at once. A fifth of the TTL covers a clock up
//! to 20 % slow (docs/design.md, *Cluster*).

use std::sync::Arc;
use std::time::Duration;

use gs_test_support::daemon::{Daemon, Database, wait_for};

use super::private_pg::libfaketime;
use super::{
    Sampler, TTL, cluster_view, env_refs, fakes, instance_env, owners, register, relayed,
    wait_every_gateway_owned, wait_one_socket_each,
};

#[test]
fn an_instance_whose_clock_runs_slow_stops_its_links_before_anyone_adopts_them() {
    let db = Database::postgres();
    let (relay, relayed) = relayed(&db);
    let lib = libfaketime();

    let a = Daemon::start_on(db, &env_refs(&instance_env("a", TTL)));
    let mut slow = instance_env("b", TTL);
    slow.extend([
        ("GATEWAY_SUPERVISOR__DATABASE__URL".to_owned(), relayed),
        ("LD_PRELOAD".to_owned(), lib.display().to_string()),
        ("FAKETIME".to_owned(), "+0 x0.95".to_owned()),
    ]);
    let b = Daemon::join(&a, &env_refs(&slow));
    let c = Daemon::join(&a, &env_refs(&instance_env("c", TTL)));
    // The fault is in place: b runs with libfaketime loaded.
    let maps = std::fs::read_to_string(format!("/proc/{}/maps", b.pid())).unwrap();
    assert!(maps.contains("libfaketime"), "libfaketime not loaded in b");

    let fakes = Arc::new(fakes(30));
    register(&a, &fakes);
    wait_one_socket_each(&fakes, Duration::from_secs(30));
    wait_for("b to link its share", Duration::from_secs(30), || {
        let by = owners(&cluster_view(&a));
        match by.get("b") {
            Some(n) if *n >= 5 => Ok(()),
            _ => Err(format!("{by:?}")),
        }
    });
    let sampler = Sampler::start(&fakes);
    relay.cut();
    // a and c adopt b's gateways once its row expires by the database's clock.
    wait_for(
        "a and c to hold every gateway",
        TTL + Duration::from_secs(15),
        || {
            let by = owners(&cluster_view(&a));
            if !by.contains_key("b") && by.values().sum::<usize>() == 30 {
                Ok(())
            } else {
                Err(format!("{by:?}"))
            }
        },
    );
    wait_one_socket_each(&fakes, TTL + Duration::from_secs(15));
    for (i, f) in fakes.iter().enumerate() {
        let frames = f.dialer_frames();
        assert_eq!(
            fake_gateway::frame_overlaps(&frames),
            0,
            "gateway {i} received frames from two instances at once: {frames:#?}"
        );
    }
    relay.restore();
    wait_every_gateway_owned(&c, 30);
    wait_one_socket_each(&fakes, TTL + Duration::from_secs(15));
    assert_eq!(sampler.finish(), 1, "a gateway had two sockets at once");
}
