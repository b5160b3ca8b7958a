//! Starting a cluster from nothing: instances started at the same instant on an empty database
//! all come up (one sets the database up, the others find it done), and an instance whose
//! database is not there yet waits for it, answering 503, instead of exiting.

use std::time::Duration;

use gs_test_support::daemon::{Daemon, Database, Request, wait_for};

use super::psql;

/// Every instance of a cluster has the same master key.
const MASTER_KEY: &str = "Y29sZC1zdGFydC1tYXN0ZXIta2V5LTMyLWJ5dGVzISE=";

fn instance(db: &Database, id: &str) -> Daemon {
    Daemon::spawn_on(
        db.clone(),
        &[
            ("GATEWAY_SUPERVISOR__SECRETS__MASTER_KEY", MASTER_KEY),
            ("GATEWAY_SUPERVISOR__CLUSTER__INSTANCE_ID", id),
        ],
    )
}

#[test]
fn three_instances_started_together_on_an_empty_database_all_serve() {
    for round in 0..10 {
        let db = Database::postgres();
        let Database::Postgres { url } = &db else {
            unreachable!()
        };
        // Three processes started back to back, before any has opened the database.
        let mut all: Vec<Daemon> = ["a", "b", "c"].iter().map(|id| instance(&db, id)).collect();
        for d in &mut all {
            d.wait_ready();
        }
        // The database was set up once: one first admin key, one device identity, and every
        // migration recorded once.
        assert_eq!(
            psql(url, "SELECT count(*) FROM api_keys"),
            "1",
            "round {round}"
        );
        let admin_files = all
            .iter()
            .filter(|d| d.state_dir().join("admin.key").exists())
            .count();
        assert_eq!(
            admin_files, 1,
            "round {round}: one instance wrote admin.key"
        );
        let migrations = psql(url, "SELECT count(*) FROM __diesel_schema_migrations");
        let distinct = psql(
            url,
            "SELECT count(DISTINCT version) FROM __diesel_schema_migrations",
        );
        assert_eq!(migrations, distinct, "round {round}");
        for d in &all {
            let res = d.send(Request::new("GET", "/healthz"));
            assert_eq!(res.status, 200, "round {round}");
        }
    }
}

#[test]
fn a_daemon_waits_for_its_database_answering_503_and_serves_when_it_comes() {
    let base = std::env::var("GS_TEST_PG_URL").expect("GS_TEST_PG_URL");
    let name = format!("gs_later_{}", std::process::id());
    let db = Database::Postgres {
        url: format!("{base}/{name}"),
    };
    let mut d = instance(&db, "late");
    let addr = d.wait_listening();
    // Alive and saying what it waits for, not ready: every path answers 503.
    for path in ["/healthz", "/readyz", "/api/gateways"] {
        let res = Request::new("GET", path).send(addr).expect("an answer");
        assert_eq!(res.status, 503, "{path}: {}", res.text());
        assert_eq!(res.json()["error"], "not_ready");
        let message = res.json()["message"].as_str().unwrap().to_owned();
        assert!(message.contains(&name), "{message}");
        assert!(!message.contains(MASTER_KEY));
    }
    // One log line per try, naming the database.
    wait_for("a second try logged", Duration::from_secs(30), || {
        let log = String::from_utf8_lossy(&d.logs()).into_owned();
        let tries = log.matches("the database cannot be reached yet").count();
        if tries >= 2 {
            Ok(())
        } else {
            Err(format!("{tries} tries"))
        }
    });
    psql(
        &format!("{base}/postgres"),
        &format!("CREATE DATABASE {name}"),
    );
    wait_for(
        "/readyz 200 once the database exists",
        Duration::from_secs(60),
        || {
            let res = Request::new("GET", "/readyz")
                .send(addr)
                .map_err(|e| e.to_string())?;
            if res.status == 200 {
                Ok(())
            } else {
                Err(res.text())
            }
        },
    );
    let key = std::fs::read_to_string(d.state_dir().join("admin.key")).unwrap();
    let res = d.get("/api/gateways", key.trim());
    assert_eq!(res.status, 200, "{}", res.text());
    assert!(d.terminate().success());
}
