//! A real PostgreSQL restart (`pg_ctl restart -m fast`, on a server of the test's own) under
//! three instances: every connection dropped, the server down and back within a lease. No
//! gateway ever has two sockets, none ends without an owner, and every instance is ready again.

use std::sync::Arc;
use std::time::Duration;

use gs_test_support::daemon::Database;

use super::private_pg::PrivatePg;
use super::{
    Sampler, TTL, cluster_on, fakes, register, wait_every_gateway_owned, wait_one_socket_each,
    wait_ready_again,
};

#[test]
fn a_real_postgresql_restart_leaves_every_gateway_with_one_owner() {
    let pg = PrivatePg::start();
    let nodes = cluster_on(Database::Postgres { url: pg.url("gs") }, TTL);
    let fakes = Arc::new(fakes(30));
    register(&nodes[0], &fakes);
    wait_one_socket_each(&fakes, Duration::from_secs(30));
    let sampler = Sampler::start(&fakes);
    for _ in 0..2 {
        pg.restart();
        wait_every_gateway_owned(&nodes[0], 30);
        wait_one_socket_each(&fakes, TTL + Duration::from_secs(15));
        for d in &nodes {
            wait_ready_again(d);
        }
    }
    assert_eq!(sampler.finish(), 1, "a gateway had two sockets at once");
}
