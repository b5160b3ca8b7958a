//! A daemon links at most as many gateways as it can hold (its open-file limit less a
//! reserve, or `cluster.max_gateways`): the rest are `unplaced`, shown in `GET /api/cluster`,
//! counted in `gateway_supervisor_gateways_unplaced` and linked as room is made. Alone on
//! SQLite the registry keeps the bound; on PostgreSQL the daemon is a one-instance cluster and
//! placement keeps it — the same answers either way.

use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::support::fleet::{add, fake, link_daemon};
use crate::support::{Request, metric, wait_for};

const DEADLINE: Duration = Duration::from_secs(20);

#[test]
fn gateways_beyond_the_daemon_s_capacity_are_unplaced_named_counted_and_linked_as_room_is_made() {
    let d = link_daemon(&[("GATEWAY_SUPERVISOR__CLUSTER__MAX_GATEWAYS", "3")]);
    let fakes: Vec<_> = (0..5).map(|_| fake(|_| {})).collect();
    let ids: Vec<i64> = fakes
        .iter()
        .enumerate()
        .map(|(i, f)| add(&d, &format!("gw{i}"), f, Some("fake-token")))
        .collect();
    let sockets = || -> Vec<i64> {
        fakes
            .iter()
            .map(|f| f.counters().active.load(Ordering::Relaxed))
            .collect()
    };
    let cluster = wait_for("three linked and two unplaced", DEADLINE, || {
        let view = d.get("/api/cluster", &d.admin_key).json();
        let open = sockets();
        if view["gateways_unplaced"] == 2 && open.iter().sum::<i64>() == 3 {
            Ok(view)
        } else {
            Err(format!("{view} sockets {open:?}"))
        }
    });
    let unplaced: Vec<i64> = cluster["unplaced"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    assert_eq!(unplaced.len(), 2, "{cluster}");
    for id in &unplaced {
        let i = ids
            .iter()
            .position(|g| g == id)
            .expect("a registered gateway");
        assert_eq!(sockets()[i], 0, "unplaced gateway {id} is not linked");
    }
    wait_for("the metric", DEADLINE, || {
        let n = metric(&d, "gateways_unplaced");
        if n == 2.0 { Ok(()) } else { Err(n.to_string()) }
    });
    if cluster["clustered"] == false {
        // Alone, each waiting gateway says why where a link's error shows.
        let g = d
            .get(&format!("/api/gateways/{}", unplaced[0]), &d.admin_key)
            .json();
        let error = &g["gateway"]["connection"]["last_error"];
        assert_eq!(error["code"], "unplaced", "{g}");
        assert!(
            error["message"]
                .as_str()
                .unwrap_or_default()
                .contains("at most 3 gateways"),
            "{g}"
        );
    }

    // Room made: a linked gateway deleted, a waiting one is linked in its place.
    // (Not the first: it is the primary, which is not deleted.)
    let linked = *ids[1..].iter().find(|id| !unplaced.contains(id)).unwrap();
    let res = d.send(Request::new("DELETE", &format!("/api/gateways/{linked}")).key(&d.admin_key));
    assert!(res.status == 200 || res.status == 204, "{}", res.text());
    wait_for("one waiting gateway linked", DEADLINE, || {
        let view = d.get("/api/cluster", &d.admin_key).json();
        let open = sockets();
        if view["gateways_unplaced"] == 1 && open.iter().sum::<i64>() == 3 {
            Ok(())
        } else {
            Err(format!("{view} sockets {open:?}"))
        }
    });
    wait_for("the metric to follow", DEADLINE, || {
        let n = metric(&d, "gateways_unplaced");
        if n == 1.0 { Ok(()) } else { Err(n.to_string()) }
    });
}
