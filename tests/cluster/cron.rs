//! Cron across a cluster: every gateway's jobs answered by any instance (the inventory is in
//! the database, written by the instance linking each gateway), and what needs the gateway —
//! a job's runs, the removal of extra copies — carried out by the instance that links it.

use std::time::Duration;

use serde_json::{Value, json};

use super::{cluster, cluster_view, fakes, owner, register, wait_one_socket_each};
use gs_test_support::daemon::wait_until;

#[test]
fn any_instance_shows_every_gateway_s_jobs_and_the_owner_reads_and_removes() {
    let nodes = cluster();
    let fakes = fakes(3);
    let ids = register(&nodes[0], &fakes);
    wait_one_socket_each(&fakes, Duration::from_secs(30));
    let job = json!({"name": "hourly-report", "schedule": {"kind": "cron", "expr": "0 * * * *"},
        "sessionTarget": "isolated", "payload": {"kind": "agentTurn", "message": "report"},
        "delivery": {"mode": "none"}});
    for f in &fakes {
        f.cron("cron.add", job.clone()).unwrap();
    }
    // Two copies on the first gateway.
    fakes[0].cron("cron.add", job).unwrap();
    let b = &nodes[1];
    let listed = wait_until("every gateway's job on b", Duration::from_secs(30), || {
        let res = b.get("/api/cron/jobs?q=hourly", &b.admin_key);
        let jobs = res.json()["jobs"].as_array()?.clone();
        (jobs.len() == 4).then_some(jobs)
    });
    let on = |g: i64| listed.iter().filter(|j| j["gateway_id"] == g).count();
    assert_eq!((on(ids[0]), on(ids[1]), on(ids[2])), (2, 1, 1));

    // A gateway b does not link: its job's runs come from its owner.
    let view = cluster_view(b);
    let owner_of = |id: i64| owner(&view, id);
    let elsewhere: Vec<i64> = ids
        .iter()
        .copied()
        .filter(|id| owner_of(*id) != "b")
        .collect();
    let gid = *elsewhere.first().expect("a gateway another instance links");
    let job_id = listed.iter().find(|j| j["gateway_id"] == gid).unwrap()["job_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = b.get(&format!("/api/cron/jobs/{gid}/{job_id}"), &b.admin_key);
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.header("x-gs-answered-by"), Some(owner_of(gid).as_str()));
    assert_eq!(res.json()["runs"], json!([]), "{}", res.text());

    // The extra copy on the first gateway, removed through b whoever links it.
    let res = b.call(
        "POST",
        &format!("/api/cron/gateways/{}/remove-duplicates", ids[0]),
        &b.admin_key,
        &json!({}),
    );
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(
        res.json()["removed"].as_array().map(Vec::len),
        Some(1),
        "{}",
        res.text()
    );
    if owner_of(ids[0]) != "b" {
        assert_eq!(
            res.header("x-gs-answered-by"),
            Some(owner_of(ids[0]).as_str())
        );
    }
    wait_until(
        "one copy left, seen from a",
        Duration::from_secs(30),
        || {
            let res = nodes[0].get("/api/cron/jobs?q=hourly", &nodes[0].admin_key);
            let jobs: Vec<Value> = res.json()["jobs"].as_array()?.clone();
            (jobs.len() == 3).then_some(())
        },
    );
}
