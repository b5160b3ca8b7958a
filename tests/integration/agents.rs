//! Agents, agent sync, the preferred gateway, CLI connections, heartbeats, the reaper.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::fleet::{add, fake, link_daemon, wait_gateway};
use crate::support::{Request, online, wait_until};

const DEADLINE: Duration = Duration::from_secs(20);

#[test]
fn sync_reads_the_primary_and_is_idempotent_and_preferred_gateway_steers_spawns() {
    let a = fake(|c| c.agents = vec!["main".into(), "research".into()]);
    let b = fake(|_| {});
    let d = link_daemon(&[]);
    let a_id = add(&d, "a", &a, Some("fake-token"));
    let b_id = add(&d, "b", &b, Some("fake-token"));
    wait_gateway(&d, a_id, "a online", online);
    wait_gateway(&d, b_id, "b online", online);
    let viewer = d.create_key("viewer", "v");
    assert_eq!(
        d.send(Request::new("POST", "/api/agents/sync").key(&viewer))
            .status,
        403
    );
    let first = d.send(Request::new("POST", "/api/agents/sync").key(&d.admin_key));
    assert_eq!(first.status, 200, "{}", first.text());
    let r = first.json();
    assert_eq!(
        (
            r["synced"].as_u64(),
            r["created"].as_u64(),
            r["updated"].as_u64()
        ),
        (Some(2), Some(2), Some(0))
    );
    let again = d
        .send(Request::new("POST", "/api/agents/sync").key(&d.admin_key))
        .json();
    assert_eq!(
        (
            again["synced"].as_u64(),
            again["created"].as_u64(),
            again["updated"].as_u64()
        ),
        (Some(2), Some(0), Some(0))
    );

    let agents = d.get("/api/agents", &viewer).json()["agents"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(agents.len(), 2);
    let research = agents
        .iter()
        .find(|x| x["name"] == "research")
        .unwrap()
        .clone();
    assert_eq!(
        (research["source"].as_str(), research["gateway_id"].as_i64()),
        (Some("gateway"), Some(a_id))
    );
    assert_eq!(
        research["config"]["gateway_agent"]["workspace"],
        "/fake/research"
    );
    let rid = research["id"].as_i64().unwrap();
    assert_eq!(
        d.get(&format!("/api/agents/{rid}"), &viewer).json()["agent"]["name"],
        "research"
    );
    assert_eq!(d.get("/api/agents/9999", &viewer).status, 404);

    // The agent prefers gateway b: its spawns go there while b is healthy.
    let res = d.call(
        "PUT",
        &format!("/api/agents/{rid}"),
        &d.admin_key,
        &json!({"config": {"gateway_config": {"preferred_gateway": "b"}}}),
    );
    assert_eq!(res.status, 200, "{}", res.text());
    let spawn = d.call(
        "POST",
        "/api/spawn",
        &d.admin_key,
        &json!({"agent": "research", "task": "t"}),
    );
    assert_eq!(spawn.status, 202, "{}", spawn.text());
    assert_eq!(spawn.json()["gateway_id"], b_id);
    // Others still go to the acting primary.
    assert_eq!(
        d.call(
            "POST",
            "/api/spawn",
            &d.admin_key,
            &json!({"agent": "main", "task": "t"})
        )
        .json()["gateway_id"],
        a_id
    );
    let bad = d.call(
        "PUT",
        &format!("/api/agents/{rid}"),
        &d.admin_key,
        &json!({"config": {"gateway_config": {"preferred_gateway": "nope"}}}),
    );
    assert_eq!(bad.status, 400);
    assert_eq!(
        bad.json()["details"]["field"],
        "config.gateway_config.preferred_gateway"
    );
    assert_eq!(
        d.call(
            "PUT",
            &format!("/api/agents/{rid}"),
            &viewer,
            &json!({"role": "x"})
        )
        .status,
        403
    );
}

fn connections(d: &crate::support::Daemon) -> Vec<Value> {
    d.get("/api/connect", &d.admin_key).json()["connections"]
        .as_array()
        .unwrap()
        .clone()
}

/// A sync with no primary to read says why: none registered, or the primary not connected.
#[test]
fn a_sync_without_a_primary_to_read_names_the_reason() {
    let d = link_daemon(&[]);
    // A 503 with `code` whose message says `why`.
    let refused_for = |code: &str, why: &str| {
        let res = d.send(Request::new("POST", "/api/agents/sync").key(&d.admin_key));
        assert_eq!(res.status, 503, "{}", res.text());
        assert_eq!(res.json()["error"], code);
        let message = res.json()["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(message.contains(why), "{message}");
    };
    refused_for("no_healthy_gateway", "no gateway is registered");
    // Registered, refused at the handshake (a wrong token): the designated primary, never
    // connected.
    let g = fake(|_| {});
    let id = add(&d, "refused", &g, Some("not-the-token"));
    wait_gateway(&d, id, "the handshake refused", |g| {
        g["connection"]["state"] == "halted"
    });
    refused_for(
        "gateway_unavailable",
        "the primary gateway `refused` is not connected",
    );
}

#[test]
fn cli_connections_heartbeats_and_disconnects() {
    let d = link_daemon(&[]);
    let res = d.call(
        "POST",
        "/api/connect",
        &d.admin_key,
        &json!({"agent_name": "codex-session-01", "tool_name": "codex", "tool_version": "2.1.0", "metadata": {"workspace": "/home/user/project"}}),
    );
    assert_eq!(res.status, 201, "{}", res.text());
    let c = res.json();
    assert_eq!(c["status"], "connected");
    let (cid, agent_id) = (
        c["connection_id"].as_str().unwrap().to_owned(),
        c["agent_id"].as_i64().unwrap(),
    );
    assert_eq!(
        c["heartbeat_url"],
        format!("/api/agents/{agent_id}/heartbeat")
    );
    let list = connections(&d);
    let row = list
        .iter()
        .find(|x| x["connection_id"] == cid.as_str())
        .unwrap();
    for field in [
        "id",
        "agent_id",
        "tool_name",
        "tool_version",
        "connection_id",
        "status",
        "last_heartbeat",
        "metadata",
        "created_at",
        "agent_name",
        "agent_status",
        "agent_role",
    ] {
        assert!(row.get(field).is_some(), "{field} missing: {row}");
    }
    assert_eq!(
        (row["agent_name"].as_str(), row["agent_status"].as_str()),
        (Some("codex-session-01"), Some("online"))
    );
    for _ in 0..2 {
        let hb = d.call(
            "POST",
            &format!("/api/agents/{agent_id}/heartbeat"),
            &d.admin_key,
            &json!({"connection_id": cid, "tokens": {"input": 1500, "output": 800, "model": "claude-3-5-sonnet-20241022"}}),
        );
        assert_eq!(hb.status, 200, "{}", hb.text());
        assert_eq!(hb.json()["status"], "HEARTBEAT_OK");
    }
    let row = connections(&d)
        .into_iter()
        .find(|x| x["connection_id"] == cid.as_str())
        .unwrap();
    assert_eq!(
        (row["input_tokens"].as_i64(), row["output_tokens"].as_i64()),
        (Some(3000), Some(1600))
    );
    assert_eq!(row["last_model"], "claude-3-5-sonnet-20241022");
    // Wrong agent or unknown connection: 404.
    let hb = d.call(
        "POST",
        &format!("/api/agents/{}/heartbeat", agent_id + 1),
        &d.admin_key,
        &json!({"connection_id": cid}),
    );
    assert_eq!(hb.status, 404);
    let res = d.call(
        "DELETE",
        "/api/connect",
        &d.admin_key,
        &json!({"connection_id": cid}),
    );
    assert_eq!(res.status, 200, "{}", res.text());
    let row = connections(&d)
        .into_iter()
        .find(|x| x["connection_id"] == cid.as_str())
        .unwrap();
    assert_eq!(
        (row["status"].as_str(), row["agent_status"].as_str()),
        (Some("disconnected"), Some("offline"))
    );
    assert_eq!(
        d.call(
            "DELETE",
            "/api/connect",
            &d.admin_key,
            &json!({"connection_id": "conn-nope"})
        )
        .status,
        404
    );
    let bad = d.call(
        "POST",
        "/api/connect",
        &d.admin_key,
        &json!({"agent_name": "", "tool_name": "x"}),
    );
    assert_eq!(bad.json()["details"]["field"], "agent_name");
}

#[test]
fn the_reaper_disconnects_silent_connections() {
    let d = link_daemon(&[("GATEWAY_SUPERVISOR__CONNECTIONS__TIMEOUT", "2s")]);
    let c = d
        .call(
            "POST",
            "/api/connect",
            &d.admin_key,
            &json!({"agent_name": "quiet", "tool_name": "cli"}),
        )
        .json();
    let cid = c["connection_id"].as_str().unwrap().to_owned();
    let row = wait_until("the reaper", DEADLINE, || {
        connections(&d)
            .into_iter()
            .find(|x| x["connection_id"] == cid.as_str() && x["status"] == "disconnected")
    });
    assert_eq!(row["agent_status"], "offline");
    // A heartbeat brings it back.
    let hb = d.call(
        "POST",
        &format!("/api/agents/{}/heartbeat", c["agent_id"]),
        &d.admin_key,
        &json!({"connection_id": cid}),
    );
    assert_eq!(hb.status, 200);
    let row = connections(&d)
        .into_iter()
        .find(|x| x["connection_id"] == cid.as_str())
        .unwrap();
    assert_eq!(
        (row["status"].as_str(), row["agent_status"].as_str()),
        (Some("connected"), Some("online"))
    );
}
