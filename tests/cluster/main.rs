//! A cluster of real daemon processes on one real PostgreSQL, with fake gateways: each gateway
//! has exactly one socket from the cluster at every sample (counted by the fakes themselves),
//! the fleet is spread evenly, and a dead or paused instance's gateways are adopted within the
//! lease, never by two instances at once. Needs GS_TEST_PG_URL (scripts/test.sh starts a
//! throwaway server and runs `cargo test --test cluster`).

mod addresses;
mod approvals;
mod budgets;
mod clocks;
mod cold_start;
mod cron;
mod first_primary;
mod maintenance;
mod managed;
mod notify;
mod pg_failover;
mod pg_restart;
use gs_test_support::private_pg;
mod scale;
mod spend;
mod store_locks;
mod stored_reads;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use fake_gateway::{FakeConfig, FakeGateway};
use gs_test_support::daemon::{Daemon, Database, psql, wait_for};
use serde_json::{Value, json};

/// Short leases so that the tests take seconds: a 3 s lease renewed every second.
const TTL: Duration = Duration::from_secs(3);

fn instance_env(id: &str, ttl: Duration) -> Vec<(String, String)> {
    vec![
        ("GATEWAY_SUPERVISOR__CLUSTER__INSTANCE_ID".into(), id.into()),
        (
            "GATEWAY_SUPERVISOR__CLUSTER__LEASE_TTL".into(),
            format!("{}ms", ttl.as_millis()),
        ),
        (
            "GATEWAY_SUPERVISOR__CLUSTER__RENEW_INTERVAL".into(),
            "1s".into(),
        ),
        (
            "GATEWAY_SUPERVISOR__GATEWAYS__HEARTBEAT_INTERVAL".into(),
            "500ms".into(),
        ),
        (
            "GATEWAY_SUPERVISOR__GATEWAYS__BACKOFF_MAX".into(),
            "1s".into(),
        ),
        (
            "GATEWAY_SUPERVISOR__GATEWAYS__CONNECT_TIMEOUT".into(),
            "1s".into(),
        ),
        (
            "GATEWAY_SUPERVISOR__LIMITS__GATEWAY_OPS_PER_MINUTE".into(),
            "0".into(),
        ),
    ]
}

fn env_refs(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// Three instances `a`, `b`, `c` on one fresh database, with leases of `ttl`.
fn cluster_with(ttl: Duration) -> Vec<Daemon> {
    cluster_on(Database::postgres(), ttl)
}

/// Three instances on `db`.
fn cluster_on(db: Database, ttl: Duration) -> Vec<Daemon> {
    let a = Daemon::start_on(db, &env_refs(&instance_env("a", ttl)));
    let b = Daemon::join(&a, &env_refs(&instance_env("b", ttl)));
    let c = Daemon::join(&a, &env_refs(&instance_env("c", ttl)));
    vec![a, b, c]
}

fn cluster() -> Vec<Daemon> {
    cluster_with(TTL)
}

/// Each `(instance, body)` asks its instance to register a gateway, all at the same moment
/// (released by one barrier): the answers, status and body, in the order asked.
fn create_at_once(asks: &[(&Daemon, Value)]) -> Vec<(u16, Value)> {
    let at_once = std::sync::Barrier::new(asks.len());
    thread::scope(|s| {
        let asks: Vec<_> = asks
            .iter()
            .map(|(d, body)| {
                let at_once = &at_once;
                s.spawn(move || {
                    at_once.wait();
                    let res = d.call("POST", "/api/gateways", &d.admin_key, body);
                    (res.status, res.json())
                })
            })
            .collect();
        asks.into_iter()
            .map(|t| t.join().expect("a create"))
            .collect()
    })
}

/// Waits until `d` holds `n` gateways in memory (`/metrics` reads memory): what it routes,
/// elects and writes on, which the change feed fills a moment after another instance's write
/// (docs/design.md, *Cluster*, "Reading the fleet").
fn wait_held(d: &Daemon, n: usize, deadline: Duration) {
    wait_for(&format!("{n} gateways in memory"), deadline, || {
        let held: f64 = d
            .get("/metrics", "")
            .text()
            .lines()
            .filter_map(|l| l.strip_prefix("gateway_supervisor_gateways{status="))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        (held == n as f64)
            .then_some(())
            .ok_or(format!("{held} held"))
    });
}

fn fakes(n: usize) -> Vec<FakeGateway> {
    fakes_ticking(n, Duration::from_secs(1))
}

/// `n` fake gateways sending a tick every `tick` (the link reads a gateway silent for two as
/// gone).
fn fakes_ticking(n: usize, tick: Duration) -> Vec<FakeGateway> {
    (0..n)
        .map(|_| {
            FakeGateway::start(FakeConfig {
                token: Some("fake-token".into()),
                tick_interval: tick,
                ping_interval: None,
                sessions: 1,
                ..FakeConfig::default()
            })
            .expect("start a fake gateway")
        })
        .collect()
}

fn register(d: &Daemon, fakes: &[FakeGateway]) -> Vec<i64> {
    fakes
        .iter()
        .enumerate()
        .map(|(i, f)| register_one(d, &format!("gw{i}"), f))
        .collect()
}

/// Registers fake gateway `f` as `name` through `d`; its id.
fn register_one(d: &Daemon, name: &str, f: &FakeGateway) -> i64 {
    let res = d.call(
        "POST",
        "/api/gateways",
        &d.admin_key,
        &json!({"name": name, "host": "127.0.0.1", "port": f.port(), "token": "fake-token"}),
    );
    assert_eq!(res.status, 201, "{}", res.text());
    res.json()["gateway"]["id"].as_i64().unwrap()
}

fn active(f: &FakeGateway) -> i64 {
    f.counters().active.load(Ordering::Relaxed)
}

/// Waits until every fake has exactly one socket open.
fn wait_one_socket_each(fakes: &[FakeGateway], deadline: Duration) {
    wait_for("one socket per gateway", deadline, || {
        let counts: Vec<i64> = fakes.iter().map(active).collect();
        if counts.iter().all(|c| *c == 1) {
            Ok(())
        } else {
            Err(format!("{counts:?}"))
        }
    });
}

/// Samples every fake every 100 ms on a thread; [`Sampler::finish`] returns the most sockets
/// any gateway ever had at once.
struct Sampler {
    stop: std::sync::mpsc::Sender<()>,
    max: Arc<AtomicI64>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Sampler {
    fn start(fakes: &Arc<Vec<FakeGateway>>) -> Sampler {
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let max = Arc::new(AtomicI64::new(0));
        let (m, f) = (max.clone(), fakes.clone());
        let thread = thread::spawn(move || {
            // A sample, then up to 100 ms waiting for the stop.
            loop {
                for fake in f.iter() {
                    m.fetch_max(active(fake), Ordering::Relaxed);
                }
                match stopped.recv_timeout(Duration::from_millis(100)) {
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                    _ => return,
                }
            }
        });
        Sampler {
            stop,
            max,
            thread: Some(thread),
        }
    }

    fn finish(mut self) -> i64 {
        let _ = self.stop.send(());
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
        self.max.load(Ordering::Relaxed)
    }
}

fn cluster_view(d: &Daemon) -> Value {
    let res = d.get("/api/cluster", &d.admin_key);
    assert_eq!(res.status, 200, "{}", res.text());
    res.json()
}

/// Waits until `count` gateways have an unexpired lease, as `d` reads the leases.
fn wait_every_gateway_owned(d: &Daemon, count: usize) {
    wait_for(
        "every gateway owned again",
        TTL + Duration::from_secs(15),
        || {
            let view = cluster_view(d);
            let by = owners(&view);
            if by.values().sum::<usize>() == count {
                Ok(())
            } else {
                let lapsed: Vec<String> = view["leases"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|l| l["expires_in_ms"].as_i64().unwrap() <= 0)
                    .map(|l| l.to_string())
                    .collect();
                Err(format!(
                    "{by:?}; lapsed: {lapsed:?}; {} {}",
                    view["adoption"], view["gateways_unplaced"]
                ))
            }
        },
    );
}

/// A relay in front of `db`'s server (the test can cut it), and `db`'s URL through it.
fn relayed(db: &Database) -> (gs_test_support::relay::Relay, String) {
    let Database::Postgres { url } = db else {
        panic!("a relay stands in front of PostgreSQL")
    };
    let (base, name) = url.rsplit_once('/').unwrap();
    let server: std::net::SocketAddr = base
        .rsplit_once('@')
        .map_or(base, |(_, hostport)| hostport)
        .parse()
        .expect("GS_TEST_PG_URL names host:port");
    let relay = gs_test_support::relay::Relay::start(server);
    let url = format!("postgres://postgres@{}/{name}", relay.addr);
    (relay, url)
}

/// Waits until `d` answers `/readyz` with 200 again.
fn wait_ready_again(d: &Daemon) {
    wait_for("ready again", Duration::from_secs(10), || {
        let status = d.get("/readyz", "").status;
        if status == 200 {
            Ok(())
        } else {
            Err(format!("/readyz {status}"))
        }
    });
}

/// Unexpired leases by owner.
/// The instance that links gateway `id`, as `cluster_view` says.
fn owner(view: &Value, id: i64) -> String {
    view["leases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["gateway_id"] == id)
        .map(|l| l["owner"].as_str().unwrap().to_owned())
        .unwrap()
}

fn owners(view: &Value) -> std::collections::BTreeMap<String, usize> {
    let mut by = std::collections::BTreeMap::new();
    for l in view["leases"].as_array().unwrap() {
        if l["expires_in_ms"].as_i64().unwrap() > 0 {
            *by.entry(l["owner"].as_str().unwrap().to_owned())
                .or_insert(0) += 1;
        }
    }
    by
}

#[test]
fn three_instances_share_the_fleet_with_one_socket_per_gateway() {
    let nodes = cluster();
    let fakes = Arc::new(fakes(300));
    let sampler = Sampler::start(&fakes);
    register(&nodes[0], &fakes);
    wait_one_socket_each(&fakes, Duration::from_secs(60));
    // Spread within ±20 % of even.
    wait_every_gateway_owned(&nodes[1], 300);
    let by = owners(&cluster_view(&nodes[1]));
    for (owner, n) in &by {
        assert!((80..=120).contains(n), "{owner} links {n}: {by:?}");
    }
    // Every instance answers for the whole fleet, online, whoever links it — and says each has
    // a token, though it holds only the tokens of the gateways it links itself.
    for d in &nodes {
        wait_for(
            "every gateway online on every instance",
            Duration::from_secs(20),
            || {
                let list = d.gateways();
                let online = list.iter().filter(|g| g["status"] == "online").count();
                let tokens = list.iter().filter(|g| g["token_set"] == true).count();
                if tokens != list.len() {
                    return Err(format!("{tokens} of {} show a token", list.len()));
                }
                if list.len() == 300 && online == 300 {
                    Ok(())
                } else {
                    Err(format!("{} listed, {online} online", list.len()))
                }
            },
        );
    }
    let view = cluster_view(&nodes[2]);
    assert_eq!(view["instance_id"], "c");
    assert_eq!(view["instances"].as_array().unwrap().len(), 3, "{view:#}");
    let metrics = nodes[0].get("/metrics", "").text();
    assert!(
        metrics.contains("gateway_supervisor_cluster_instances 3"),
        "{metrics}"
    );
    // What the Prometheus mixin's cluster alert and panels read is there.
    let exported = gs_test_support::mixin::exported(&metrics);
    for name in gs_test_support::mixin::CLUSTER_ONLY {
        assert!(exported.contains(*name), "{name} not exported\n{metrics}");
    }
    assert_eq!(view["gateways_unowned"], 0, "{view:#}");
    // The leases a page at a time: every gateway once, and each instance's count is what its
    // pages say it holds.
    let (mut listed, mut after, mut pages) = (Vec::new(), None::<i64>, 0);
    loop {
        let path = match after {
            Some(a) => format!("/api/cluster?limit=128&after={a}"),
            None => "/api/cluster?limit=128".to_owned(),
        };
        let res = nodes[2].get(&path, &nodes[2].admin_key);
        assert_eq!(res.status, 200, "{}", res.text());
        let page = res.json();
        let leases = page["leases"].as_array().unwrap().clone();
        assert!(
            leases.len() <= 128,
            "{} leases in a page of 128",
            leases.len()
        );
        listed.extend(leases);
        pages += 1;
        match page["next_after"].as_i64() {
            Some(next) => after = Some(next),
            None => break,
        }
        assert!(pages < 10, "the pages never end: {page:#}");
    }
    assert_eq!(pages, 3);
    let mut ids: Vec<i64> = listed
        .iter()
        .map(|l| l["gateway_id"].as_i64().unwrap())
        .collect();
    ids.dedup();
    assert_eq!(ids.len(), 300, "each gateway once, in order");
    let paged = owners(&json!({ "leases": listed }));
    let counted: std::collections::BTreeMap<String, usize> = view["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            let n = i["gateways"].as_u64().unwrap() as usize;
            (i["instance_id"].as_str().unwrap().to_owned(), n)
        })
        .filter(|(_, n)| *n > 0)
        .collect();
    assert_eq!(paged, counted, "the counts and the pages disagree");
    let refused = nodes[2].get("/api/cluster?limit=0", &nodes[2].admin_key);
    assert_eq!(refused.status, 400, "{}", refused.text());
    assert!(refused.text().contains("limit"), "{}", refused.text());
    // The same from the command line, read from the database.
    let out = nodes[1].cli(&["cluster", "status"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for id in ["a", "b", "c"] {
        assert!(
            text.lines()
                .any(|l| l.starts_with(&format!("{id} ")) && l.contains(" yes ")),
            "{id} not live in:\n{text}"
        );
    }
    assert!(
        text.contains("gateways linked by nobody right now: 0"),
        "{text}"
    );
    assert_eq!(sampler.finish(), 1, "a gateway had two sockets at once");
}

#[test]
fn a_killed_instance_s_gateways_are_adopted_within_the_lease() {
    let mut nodes = cluster();
    let fakes = Arc::new(fakes(30));
    register(&nodes[0], &fakes);
    wait_one_socket_each(&fakes, Duration::from_secs(30));
    let sampler = Sampler::start(&fakes);
    let before = owners(&cluster_view(&nodes[0]));
    assert!(before.get("b").copied().unwrap_or(0) > 0, "{before:?}");
    let last_audit = nodes[0]
        .get("/api/audit?limit=1", &nodes[0].admin_key)
        .json()["entries"][0]["id"]
        .as_i64()
        .unwrap_or(0);
    nodes[1].kill9();
    let killed = Instant::now();
    // Its sockets died with it; within the lease and 5 s, every gateway is held by a
    // survivor and linked again.
    wait_for("b's gateways adopted", TTL + Duration::from_secs(5), || {
        let after = owners(&cluster_view(&nodes[0]));
        if !after.contains_key("b") && after.values().sum::<usize>() == 30 {
            Ok(())
        } else {
            Err(format!("{after:?}"))
        }
    });
    wait_one_socket_each(&fakes, Duration::from_secs(5));
    let adopted_in = killed.elapsed();
    assert!(adopted_in <= TTL + Duration::from_secs(5), "{adopted_in:?}");
    // The survivors still serve the fleet: a gateway the dead instance linked reads online.
    wait_for("all online on a", Duration::from_secs(10), || {
        let online = nodes[0]
            .gateways()
            .iter()
            .filter(|g| g["status"] == "online")
            .count();
        if online == 30 {
            Ok(())
        } else {
            Err(format!("{online} online"))
        }
    });
    assert_eq!(sampler.finish(), 1, "a gateway had two sockets at once");
    eprintln!("adopted within {adopted_in:?}");
    // On the record: the survivors' adoptions (taken over from the dead instance's expired
    // leases), and the coordinator's lease.
    wait_for("the adoptions audited", Duration::from_secs(5), || {
        let audit = nodes[0]
            .get("/api/audit?limit=1000", &nodes[0].admin_key)
            .json();
        let entries = audit["entries"].as_array().cloned().unwrap_or_default();
        let taken_over: u64 = entries
            .iter()
            .filter(|e| e["id"].as_i64() > Some(last_audit))
            .filter(|e| e["action"] == "cluster.adopt" && e["target_id"] != "b")
            .filter_map(|e| serde_json::from_str::<Value>(e["details"].as_str()?).ok())
            .filter_map(|d| d["taken_over"].as_u64())
            .sum();
        let coordinator = entries.iter().any(|e| e["action"] == "cluster.coordinator");
        if taken_over >= before["b"] as u64 && coordinator {
            Ok(())
        } else {
            Err(format!(
                "taken over {taken_over}, coordinator {coordinator}"
            ))
        }
    });
}

#[test]
fn a_cleanly_stopped_instance_hands_its_gateways_over_at_once() {
    // A long lease: waiting for it to expire would take 20 s.
    let long = Duration::from_secs(20);
    let mut nodes = cluster_with(long);
    let fakes = Arc::new(fakes(30));
    register(&nodes[0], &fakes);
    wait_one_socket_each(&fakes, Duration::from_secs(30));
    let sampler = Sampler::start(&fakes);
    assert!(nodes[2].terminate().success());
    let stopped = Instant::now();
    // Released, not left to expire: adopted well within one lease.
    wait_one_socket_each(&fakes, long / 2);
    let handed_over = stopped.elapsed();
    let view = cluster_view(&nodes[0]);
    let c = view["instances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["instance_id"] == "c")
        .unwrap()
        .clone();
    assert_eq!(
        (c["stopping"].as_bool(), c["live"].as_bool()),
        (Some(true), Some(false)),
        "{view:#}"
    );
    assert_eq!(sampler.finish(), 1, "a gateway had two sockets at once");
    eprintln!("handed over within {handed_over:?}");
}

/// A paused instance (SIGSTOP past its lease) finds its gateways adopted when it resumes: it
/// closes its stale sockets without a word, never dials them again while others hold them,
/// and rejoins (gateways come back to it by handover, one socket each throughout). Checked
/// at the gateways, frame by frame: they ping every second, so the paused instance owes pongs
/// when it resumes, and no gateway receives a frame from it once another instance has sent
/// one (each fake keeps every socket's sender and its frames' times).
#[test]
fn a_paused_instance_never_touches_its_gateways_again_and_rejoins() {
    let nodes = cluster();
    let fakes: Vec<FakeGateway> = (0..30)
        .map(|_| {
            FakeGateway::start(FakeConfig {
                token: Some("fake-token".into()),
                tick_interval: Duration::from_secs(1),
                ping_interval: Some(Duration::from_secs(1)),
                sessions: 1,
                ..FakeConfig::default()
            })
            .expect("start a fake gateway")
        })
        .collect();
    let fakes = Arc::new(fakes);
    let ids = register(&nodes[0], &fakes);
    wait_one_socket_each(&fakes, Duration::from_secs(30));
    let leases = |d: &Daemon| -> Vec<(i64, String, i64, i64)> {
        cluster_view(d)["leases"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                (
                    l["gateway_id"].as_i64().unwrap(),
                    l["owner"].as_str().unwrap().to_owned(),
                    l["epoch"].as_i64().unwrap(),
                    l["expires_in_ms"].as_i64().unwrap(),
                )
            })
            .collect()
    };
    let before = leases(&nodes[0]);
    let on_b: Vec<(i64, i64)> = before
        .iter()
        .filter(|l| l.1 == "b")
        .map(|l| (l.0, l.2))
        .collect();
    assert!(!on_b.is_empty(), "{before:?}");
    nodes[1].signal("STOP");
    // Past its lease, the others hold b's gateways, each under a newer epoch.
    wait_for(
        "b's gateways adopted",
        TTL * 2 + Duration::from_secs(5),
        || {
            let now = leases(&nodes[0]);
            let adopted = on_b.iter().all(|(id, epoch)| {
                now.iter()
                    .any(|l| l.0 == *id && l.1 != "b" && l.2 > *epoch && l.3 > 0)
            });
            if adopted {
                Ok(())
            } else {
                Err(format!("{now:?}"))
            }
        },
    );
    // Paused for 2 × TTL: until the cluster has not heard from b for that long.
    wait_for("b silent for 2 × TTL", TTL * 4, || {
        let view = cluster_view(&nodes[0]);
        let age = view["instances"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["instance_id"] == "b")
            .and_then(|i| i["heartbeat_age_ms"].as_u64())
            .unwrap_or(0);
        if age >= (TTL * 2).as_millis() as u64 {
            Ok(())
        } else {
            Err(format!("b silent for {age} ms"))
        }
    });
    nodes[1].signal("CONT");
    // Its stale sockets close; it dials none of them while others hold them.
    wait_one_socket_each(&fakes, Duration::from_secs(5));
    wait_for("b to say its leases ended", Duration::from_secs(5), || {
        let log = String::from_utf8_lossy(&nodes[1].logs()).into_owned();
        if log.contains("lease ended") {
            Ok(())
        } else {
            Err(log)
        }
    });
    let sampler = Sampler::start(&fakes);
    // It rejoins: a share of the fleet comes back to it by handover.
    wait_for("b links gateways again", Duration::from_secs(30), || {
        let by = owners(&cluster_view(&nodes[0]));
        match by.get("b") {
            Some(n) if *n >= 5 => Ok(()),
            _ => Err(format!("{by:?}")),
        }
    });
    wait_one_socket_each(&fakes, Duration::from_secs(10));
    assert_eq!(
        sampler.finish(),
        1,
        "a gateway had two sockets at once after the resume"
    );
    // Epochs never went back.
    let after = leases(&nodes[0]);
    for (id, _, epoch, _) in &before {
        let now = after.iter().find(|l| l.0 == *id).unwrap();
        assert!(
            now.2 >= *epoch,
            "gateway {id}: epoch {} after {epoch}",
            now.2
        );
    }
    assert_eq!(after.len(), ids.len());
    // At the gateways: b's sockets of before the pause fell silent before another instance's
    // first frame, pongs owed or not; no two instances' frames interleaved anywhere.
    for (i, f) in fakes.iter().enumerate() {
        let dialers = f.dialer_frames();
        assert_eq!(
            fake_gateway::frame_overlaps(&dialers),
            0,
            "gateway {i} received frames from two instances at once: {dialers:#?}"
        );
    }
    let b_then: usize = fakes
        .iter()
        .filter(|f| {
            f.dialer_frames()
                .first()
                .is_some_and(|d| d.instance() == "b")
        })
        .count();
    assert!(b_then > 0, "b linked some gateways before the pause");
}

/// Any instance serves the whole API: an action on a gateway another instance links is
/// forwarded there (the caller's key, the cluster's hop credential) and answered with the
/// owner's answer; a forged hop is refused.
#[test]
fn an_action_on_a_gateway_linked_elsewhere_is_carried_out_by_its_owner() {
    let nodes = cluster();
    let fakes = Arc::new(fakes(6));
    let ids = register(&nodes[0], &fakes);
    wait_one_socket_each(&fakes, Duration::from_secs(30));
    let view = cluster_view(&nodes[0]);
    let owner_of = |id: i64| owner(&view, id);
    // A gateway b does not link, asked through b.
    let (gid, owner) = ids
        .iter()
        .map(|id| (*id, owner_of(*id)))
        .find(|(_, o)| o != "b")
        .expect("some gateway is not b's");
    let b = &nodes[1];
    let res = b.send(
        gs_test_support::daemon::Request::new("POST", "/api/spawn")
            .key(&b.admin_key)
            .header("Idempotency-Key", "fwd-1")
            .json(&json!({"agent": "main", "task": "say pong", "gateway_id": gid})),
    );
    assert_eq!(res.status, 202, "{}", res.text());
    assert_eq!(res.header("x-gs-answered-by"), Some(owner.as_str()));
    let spawn = res.json();
    assert_eq!(spawn["gateway_id"], gid);
    let spawn_id = spawn["spawn_id"].as_str().unwrap().to_owned();
    // Read back through any instance (spawns are in the shared database): it ran to ok.
    let done =
        gs_test_support::daemon::spawn_finished(&nodes[2], &spawn_id, Duration::from_secs(20));
    assert_eq!(done["status"], "ok", "{done}");
    // The same Idempotency-Key through yet another instance: the same spawn, no second run.
    let again = nodes[2].send(
        gs_test_support::daemon::Request::new("POST", "/api/spawn")
            .key(&nodes[2].admin_key)
            .header("Idempotency-Key", "fwd-1")
            .json(&json!({"agent": "main", "task": "say pong", "gateway_id": gid})),
    );
    assert_eq!(
        again.json()["spawn_id"],
        spawn_id.as_str(),
        "{}",
        again.text()
    );
    let runs: usize = fakes.iter().map(|f| f.runs_started()).sum();
    assert_eq!(runs, 1);
    // A v1 update that checks the gateway with its current token, through an instance that does
    // not hold that token (secrets stay with the owner): the check reads it from the database,
    // and the gateway, which refuses a connect without it, is reached.
    let port = fakes[ids.iter().position(|id| *id == gid).unwrap()].port();
    let res = b.call(
        "PATCH",
        &format!("/api/v1/gateways/{gid}"),
        &b.admin_key,
        &json!({"url": format!("ws://127.0.0.1:{port}")}),
    );
    assert_eq!(res.status, 200, "{}", res.text());
    // A gateway operation, through a non-owner. Not on the primary: its restart would leave
    // the cluster without an acting primary until the coordinator's next round, and the agent
    // sync below (which reads the primary) raced that in a full run.
    let restarted = ids[1];
    let restarted_owner = owner_of(restarted);
    let via = &nodes[["a", "b", "c"]
        .iter()
        .position(|n| *n != restarted_owner)
        .unwrap()];
    let res = via.call(
        "POST",
        &format!("/api/gateways/{restarted}/restart"),
        &via.admin_key,
        &json!({}),
    );
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(
        res.header("x-gs-answered-by"),
        Some(restarted_owner.as_str())
    );
    // The audit row names the caller's key, whichever instance carried it out.
    let audit = nodes[0]
        .get("/api/audit?limit=50", &nodes[0].admin_key)
        .json();
    assert!(
        audit["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "gateway.restart" && e["api_key_id"].is_i64()),
        "{audit:#}"
    );
    // A session on that gateway, killed through an instance that does not see it.
    let res = b.call(
        "POST",
        &format!("/api/sessions/agent:main:s0/control?gateway_id={gid}"),
        &b.admin_key,
        &json!({"action": "kill"}),
    );
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.header("x-gs-answered-by"), Some(owner.as_str()));
    assert_eq!(
        (
            res.json()["gateway_id"].as_i64(),
            res.json()["method"].as_str()
        ),
        (Some(gid), Some("sessions.abort"))
    );
    // Agent sync reads the acting primary (the first gateway): through an instance that does
    // not link it, its owner runs it.
    let primary_owner = owner_of(ids[0]);
    let elsewhere = ["a", "b", "c"]
        .iter()
        .position(|n| *n != primary_owner)
        .unwrap();
    let owner_node = ["a", "b", "c"]
        .iter()
        .position(|n| *n == primary_owner)
        .unwrap();
    // The coordinator's word that it is online and elected must have reached both: this
    // instance forwards the sync because it sees the primary elected, and its owner runs it
    // only if it does too (it answered 503 when it had not heard yet).
    for node in [&nodes[elsewhere], &nodes[owner_node]] {
        wait_for(
            "the primary online and elected on both",
            Duration::from_secs(10),
            || {
                let g = node
                    .get(&format!("/api/gateways/{}", ids[0]), &node.admin_key)
                    .json();
                if g["gateway"]["status"] == "online" && g["gateway"]["acting_primary"] == true {
                    Ok(())
                } else {
                    Err(format!("{g}"))
                }
            },
        );
    }
    let res = nodes[elsewhere].call(
        "POST",
        "/api/agents/sync",
        &nodes[elsewhere].admin_key,
        &json!({}),
    );
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.header("x-gs-answered-by"), Some(primary_owner.as_str()));
    assert!(res.json()["synced"].as_u64() > Some(0), "{}", res.text());
    // A spawn naming no gateway goes to the acting primary, whichever instance links it.
    let res = nodes[elsewhere].call(
        "POST",
        "/api/spawn",
        &nodes[elsewhere].admin_key,
        &json!({"agent": "main", "task": "say pong"}),
    );
    assert_eq!(res.status, 202, "{}", res.text());
    assert_eq!(res.header("x-gs-answered-by"), Some(primary_owner.as_str()));
    assert_eq!(res.json()["gateway_id"], ids[0]);
    // A cordon recorded on any instance holds on all: the primary's owner moves the role and
    // routes spawns elsewhere.
    let res = nodes[elsewhere].send(
        gs_test_support::daemon::Request::new("POST", &format!("/api/gateways/{}/cordon", ids[0]))
            .key(&nodes[elsewhere].admin_key),
    );
    assert_eq!(res.status, 200, "{}", res.text());
    for node in [&nodes[owner_node], &nodes[elsewhere]] {
        wait_for(
            "the cordon seen, the role moved",
            Duration::from_secs(10),
            || {
                let g = node
                    .get(&format!("/api/gateways/{}", ids[0]), &node.admin_key)
                    .json();
                if g["gateway"]["cordoned"] == true && g["gateway"]["acting_primary"] == false {
                    Ok(())
                } else {
                    Err(format!("{g}"))
                }
            },
        );
    }
    let res = nodes[owner_node].call(
        "POST",
        "/api/spawn",
        &nodes[owner_node].admin_key,
        &json!({"agent": "main", "task": "say pong"}),
    );
    assert_eq!(res.status, 202, "{}", res.text());
    assert_ne!(res.json()["gateway_id"], ids[0], "{}", res.text());
    // Sessions are listed cluster-wide from any instance: six gateways' `agent:main:s0`, and
    // the three runs' sessions.
    for node in &nodes {
        wait_for(
            "every instance lists every session",
            Duration::from_secs(10),
            || {
                let list = node.get("/api/sessions?limit=1000", &node.admin_key).json();
                let gateways: std::collections::BTreeSet<i64> = list["sessions"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter_map(|s| s["gateway_id"].as_i64())
                    .collect();
                if list["total"] == 9
                    && gateways.len() == 6
                    && list["unreachable_instances"] == json!([])
                {
                    Ok(())
                } else {
                    Err(format!("{list}"))
                }
            },
        );
    }
    // A key on one gateway only, killed through an instance that does not link it, without
    // naming the gateway: found on its owner, carried out there.
    let key = spawn["session_key"].as_str().unwrap();
    let res = b.call(
        "POST",
        &format!("/api/sessions/{key}/control"),
        &b.admin_key,
        &json!({"action": "kill"}),
    );
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.header("x-gs-answered-by"), Some(owner.as_str()));
    assert_eq!(res.json()["gateway_id"], gid);
    // A key every gateway has names no one session, wherever they are linked.
    let res = b.call(
        "POST",
        "/api/sessions/agent:main:s0/control",
        &b.admin_key,
        &json!({"action": "kill"}),
    );
    assert_eq!(res.status, 409, "{}", res.text());
    assert_eq!(
        res.json()["details"]["candidates"].as_array().map(Vec::len),
        Some(6),
        "{}",
        res.text()
    );
    // A hop without the cluster's credential is refused.
    let forged = b.send(
        gs_test_support::daemon::Request::new("POST", &format!("/api/gateways/{gid}/restart"))
            .key(&b.admin_key)
            .header("x-gs-forwarded-by", "a")
            .header("x-gs-forward-ts", "0")
            .header("x-gs-forward-sig", "00"),
    );
    assert_eq!(forged.status, 401, "{}", forged.text());
}

/// Every instance's event streams carry every instance's events, under the same ids: a client
/// follows a gateway linked by `a` on `b`, and resumes on `c` with `Last-Event-ID`.
/// A console session (the browser's cookie, no key in a header) acts on a gateway another
/// instance links: the hop carries the session, and the owner carries the action out. Before,
/// the hop carried no credential and the owner answered 401 — a console behind a load balancer,
/// or single sign-on (whose users have no key), could act only on its own instance's gateways.
#[test]
fn a_console_session_acts_on_a_gateway_linked_elsewhere() {
    let nodes = cluster();
    let fakes = Arc::new(fakes(3));
    let ids = register(&nodes[0], &fakes);
    wait_one_socket_each(&fakes, Duration::from_secs(30));
    let view = cluster_view(&nodes[0]);
    let b = &nodes[1];
    let (gid, owner) = ids
        .iter()
        .filter_map(|id| {
            view["leases"]
                .as_array()
                .unwrap()
                .iter()
                .find(|l| l["gateway_id"] == *id)
                .map(|l| (*id, l["owner"].as_str().unwrap().to_owned()))
        })
        .find(|(_, o)| o != "b")
        .expect("some gateway is not b's");
    let origin = format!("http://{}", b.addr);
    let login = b.send(
        gs_test_support::daemon::Request::new("POST", "/console/login")
            .header("origin", origin.clone())
            .json(&json!({"key": b.admin_key})),
    );
    assert_eq!(login.status, 200, "{}", login.text());
    let cookie = login
        .header("set-cookie")
        .and_then(|c| c.split(';').next())
        .unwrap()
        .to_owned();
    let res = b.send(
        gs_test_support::daemon::Request::new("POST", "/api/spawn")
            .header("cookie", cookie.clone())
            .header("origin", origin.clone())
            .header("Idempotency-Key", "console-fwd-1")
            .json(&json!({"agent": "main", "task": "say pong", "gateway_id": gid})),
    );
    assert_eq!(res.status, 202, "{}", res.text());
    assert_eq!(res.header("x-gs-answered-by"), Some(owner.as_str()));
    // The browser's origin checks still hold at the instance it reached.
    let elsewhere = b.send(
        gs_test_support::daemon::Request::new("POST", "/api/spawn")
            .header("cookie", cookie)
            .header("origin", "http://evil.example")
            .json(&json!({"agent": "main", "task": "say pong", "gateway_id": gid})),
    );
    assert_eq!(elsewhere.status, 403, "{}", elsewhere.text());
    assert_eq!(elsewhere.json()["error"], "cross_origin");
}

#[test]
fn events_are_cluster_wide_and_resume_on_any_instance() {
    use gs_test_support::sse::Sse;
    let nodes = cluster();
    let fakes = Arc::new(fakes(6));
    let ids = register(&nodes[0], &fakes);
    wait_one_socket_each(&fakes, Duration::from_secs(30));
    let view = cluster_view(&nodes[0]);
    let (at, gid) = ids
        .iter()
        .enumerate()
        .find(|(_, id)| {
            view["leases"]
                .as_array()
                .unwrap()
                .iter()
                .any(|l| l["gateway_id"] == **id && l["owner"] == "a")
        })
        .map(|(i, id)| (i, *id))
        .expect("a links a gateway");
    let mut on_b = Sse::open(nodes[1].addr, &nodes[1].admin_key, None, "");
    // The gateway restarts: its owner, a, sees the socket close; b's stream says so.
    fakes[at].close_all(1012, "service restart");
    let first = on_b.until(Duration::from_secs(20), |e| e.data["gateway_id"] == gid);
    // Something later, from yet another instance: a rename through c.
    let res = nodes[2].call(
        "PUT",
        &format!("/api/gateways/{gid}"),
        &nodes[2].admin_key,
        &json!({"name": "renamed"}),
    );
    assert_eq!(res.status, 200, "{}", res.text());
    let later = on_b.until(Duration::from_secs(20), |e| {
        e.data["type"] == "gateway.changed" && e.data["gateway_id"] == gid
    });
    assert!(later.id > first.id);
    // Resumed on c after the first: the same event under the same id comes next, in order.
    let mut on_c = Sse::open(nodes[2].addr, &nodes[2].admin_key, Some(first.id), "");
    let next = on_c
        .next(Duration::from_secs(20))
        .expect("an event after the first");
    assert_eq!(
        next.id,
        first.id + 1,
        "resumed right after the last one seen"
    );
    let resumed = if next.id == later.id {
        next
    } else {
        on_c.until(Duration::from_secs(20), |e| e.id == later.id)
    };
    assert_eq!(resumed.data, later.data);
}

/// One coordinator elects the acting primary for the whole cluster: every instance shows the
/// same one, a failover is announced once (one event on every stream, one audit row), and
/// when the coordinator dies another instance takes the role.
#[test]
fn one_coordinator_elects_the_acting_primary_for_every_instance() {
    use gs_test_support::sse::Sse;
    let mut nodes = cluster();
    let fakes = Arc::new(fakes(6));
    let ids = register(&nodes[0], &fakes);
    wait_one_socket_each(&fakes, Duration::from_secs(30));
    let acting_on = |d: &Daemon| -> Vec<i64> {
        d.gateways()
            .iter()
            .filter(|g| g["acting_primary"] == true)
            .map(|g| g["id"].as_i64().unwrap())
            .collect()
    };
    // Every instance shows one acting primary, the same (`want`, when given).
    let all_agree = |nodes: &[&Daemon], want: Option<i64>| {
        wait_for(
            "every instance on the same acting primary",
            Duration::from_secs(20),
            || {
                let seen: Vec<Vec<i64>> = nodes.iter().map(|d| acting_on(d)).collect();
                let first = seen[0].clone();
                if first.len() == 1
                    && want.is_none_or(|w| first == vec![w])
                    && seen.iter().all(|s| *s == first)
                {
                    Ok(())
                } else {
                    let said: Vec<String> = nodes
                        .iter()
                        .map(|d| {
                            String::from_utf8_lossy(&d.logs())
                                .lines()
                                .filter(|l| {
                                    l.contains("acting primary")
                                        || l.contains("coordinator")
                                        || l.contains("leases changed")
                                        || l.contains("renewal failed")
                                })
                                .map(|l| l.chars().take(200).collect::<String>())
                                .collect::<Vec<_>>()
                                .join("\n")
                        })
                        .collect();
                    Err(format!("{seen:?}\n{}", said.join("\n---\n")))
                }
            },
        );
    };
    // The designated primary (the first registered) acts, on every instance.
    all_agree(&nodes.iter().collect::<Vec<_>>(), Some(ids[0]));
    let coordinator = cluster_view(&nodes[0])["coordinator"]
        .as_str()
        .expect("a coordinator")
        .to_owned();
    let mut on_b = Sse::open(
        nodes[1].addr,
        &nodes[1].admin_key,
        None,
        "?types=gateway.primary",
    );
    // The designated primary goes away: one stand-in, for everyone.
    fakes[0].stop();
    let change = on_b.until(Duration::from_secs(30), |e| {
        e.data["type"] == "gateway.primary" && e.data["payload"]["acting_primary"] != ids[0]
    });
    let stand_in = change.data["payload"]["acting_primary"]
        .as_i64()
        .expect("a stand-in");
    assert_ne!(stand_in, ids[0]);
    all_agree(&nodes.iter().collect::<Vec<_>>(), Some(stand_in));
    // Announced once: no second event for it, one audit row.
    let until = Instant::now() + Duration::from_secs(2);
    while let Some(e) = on_b.next(until.saturating_duration_since(Instant::now())) {
        assert_ne!(
            e.data["payload"]["acting_primary"], stand_in,
            "the change was announced more than once"
        );
    }
    let audit = nodes[2]
        .get("/api/audit?limit=100", &nodes[2].admin_key)
        .json();
    let rows = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "gateway.primary")
        .filter(|e| {
            e["details"]
                .as_str()
                .and_then(|d| serde_json::from_str::<Value>(d).ok())
                .is_some_and(|d| d["acting_primary"] == stand_in)
        })
        .count();
    assert_eq!(rows, 1, "{audit:#}");
    // The coordinator dies: another instance takes the role within the lease.
    let at = ["a", "b", "c"]
        .iter()
        .position(|n| *n == coordinator)
        .unwrap();
    nodes[at].kill9();
    let survivor = (at + 1) % 3;
    wait_for("a new coordinator", TTL + Duration::from_secs(5), || {
        let view = cluster_view(&nodes[survivor]);
        match view["coordinator"].as_str() {
            Some(c) if c != coordinator => Ok(()),
            other => Err(format!("{other:?}")),
        }
    });
    // (The killed one stays in `nodes`: the first daemon owns the test database.)
    let alive: Vec<&Daemon> = nodes
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != at)
        .map(|(_, d)| d)
        .collect();
    // One choice for the survivors (a coordinator change with a hand-over may move the role:
    // noted as a known flap).
    all_agree(&alive, None);
}

/// The database out of reach for longer than a lease (every connection cut and new ones
/// refused by a proxy; `pg_restart.rs` restarts a real server), then back: every instance stops touching its gateways before its leases can
/// expire, and afterwards every gateway is linked again — by exactly one instance throughout.
#[test]
fn the_database_out_of_reach_longer_than_a_lease_fences_every_link_then_recovers() {
    // The same database, reached through a relay the test can cut: for the daemons behind it,
    // the database restarting, without touching the server the other tests share.
    let (proxy, url) = relayed(&Database::postgres());
    let proxied = Database::Postgres { url };
    let nodes = cluster_on(proxied, TTL);
    let fakes = Arc::new(fakes(30));
    register(&nodes[0], &fakes);
    wait_one_socket_each(&fakes, Duration::from_secs(30));
    let sampler = Sampler::start(&fakes);
    proxy.cut();
    // Without the database no instance can renew: every link stops within the lease.
    wait_for("every link stopped", TTL + Duration::from_secs(5), || {
        let open: i64 = fakes.iter().map(active).sum();
        if open == 0 {
            Ok(())
        } else {
            Err(format!("{open} sockets open"))
        }
    });
    for d in &nodes {
        assert_eq!(d.get("/readyz", "").status, 503, "readyz without a view");
    }
    // The fleet's records are read from the database: no list it may no longer hold is shown,
    // and the scrape, from the instance's memory, still answers (docs/operations.md).
    let list = nodes[0].get("/api/gateways", &nodes[0].admin_key);
    assert_eq!(list.status, 503, "{}", list.text());
    assert!(
        list.text().contains("storage_unavailable"),
        "{}",
        list.text()
    );
    assert_eq!(nodes[0].get("/metrics", "").status, 200);
    proxy.restore();
    wait_one_socket_each(&fakes, TTL + Duration::from_secs(15));
    // Every gateway owned: waited for, not read once — on a loaded machine a late round lets
    // a lease lapse (its link fenced first) and the next round takes it again (it failed CI
    // read once).
    wait_every_gateway_owned(&nodes[0], 30);
    assert_eq!(sampler.finish(), 1, "a gateway had two sockets at once");
}

/// A rolling restart of every instance, one at a time, under a steady spawn load: every spawn
/// an instance acknowledged (202) runs to `ok`, once; no gateway ever has two sockets.
#[test]
fn a_rolling_restart_under_load_loses_no_acknowledged_spawn() {
    let mut nodes = cluster();
    let fakes = Arc::new(fakes(9));
    register(&nodes[0], &fakes);
    wait_one_socket_each(&fakes, Duration::from_secs(30));
    let sampler = Sampler::start(&fakes);
    let stop = Arc::new(AtomicBool::new(false));
    // Clients spread over the instances (as behind a load balancer), one spawn at a time.
    let targets: Vec<(std::net::SocketAddr, String)> = nodes
        .iter()
        .map(|d| (d.addr, d.admin_key.clone()))
        .collect();
    let (s, t) = (stop.clone(), targets.clone());
    let load = thread::spawn(move || {
        let mut acknowledged = Vec::new();
        let mut i = 0usize;
        while !s.load(Ordering::Relaxed) {
            let (addr, key) = &t[i % t.len()];
            i += 1;
            let res = gs_test_support::daemon::Request::new("POST", "/api/spawn")
                .key(key)
                .json(&json!({"agent": "main", "task": format!("say {i}")}))
                .send(*addr);
            if let Ok(res) = res
                && res.status == 202
            {
                acknowledged.push((*addr, res.json()["spawn_id"].as_str().unwrap().to_owned()));
            }
        }
        acknowledged
    });
    for d in nodes.iter_mut() {
        // A clean restart (SIGTERM, then start again), as `systemctl restart` does.
        assert!(d.terminate().success());
        d.launch();
        // The restarted instance is back in the cluster before the next one goes.
        wait_for("the instance rejoined", Duration::from_secs(30), || {
            let view = cluster_view(d);
            if view["instances"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|i| i["live"] == true)
                .count()
                == 3
            {
                Ok(())
            } else {
                Err(format!("{view:#}"))
            }
        });
        wait_one_socket_each(&fakes, Duration::from_secs(30));
    }
    stop.store(true, Ordering::Relaxed);
    let acknowledged = load.join().unwrap();
    assert!(
        acknowledged.len() >= 10,
        "only {} spawns acknowledged",
        acknowledged.len()
    );
    for (_, id) in &acknowledged {
        let done = gs_test_support::daemon::spawn_finished(&nodes[0], id, Duration::from_secs(30));
        assert_eq!(done["status"], "ok", "{done}");
    }
    let runs: usize = fakes.iter().map(|f| f.runs_started()).sum();
    assert_eq!(
        runs,
        acknowledged.len(),
        "every acknowledged spawn ran once"
    );
    assert_eq!(sampler.finish(), 1, "a gateway had two sockets at once");
}
