//! A database failover as an instance sees it (issue 61; docs/design.md, *Cluster*). Each
//! heartbeat names the server that answered (`db::cluster::ServerIdentity`); another than the
//! last round's — a new timeline (a replica was promoted) or system identifier (another
//! database under the same URL) — is a failover. [`news`] decides, pure; [`report`] logs,
//! counts and audits it. What follows is the brake's hold (`brake::Database::FailedOver`) and
//! the runner's comparison of its leases with the new server's.

use tracing::warn;

use super::Cluster;
use super::brake::Database;
use crate::db::Store;
use crate::db::cluster::ServerIdentity;

/// What a round learned of the database: the server the last round reached (`None`: none
/// yet), the one this round reached, and whether the last round could not reach any.
pub fn news(before: Option<&ServerIdentity>, now: &ServerIdentity, came_back: bool) -> Database {
    match before {
        Some(b) if b.system != now.system => {
            Database::FailedOver(format!("system {} -> {}", b.system, now.system))
        }
        Some(b) if b.timeline != now.timeline => {
            Database::FailedOver(format!("timeline {} -> {}", b.timeline, now.timeline))
        }
        _ if came_back => Database::CameBack,
        _ => Database::Steady,
    }
}

/// A failover `what` from `before` to `now`, seen by `instance`, holding adoption `hold_ms`:
/// a log line, `database_failovers_total`, and an audit row (`cluster.db_failover`).
pub fn report(
    store: &Store,
    cluster: &Cluster,
    instance: &str,
    (before, now): (&ServerIdentity, &ServerIdentity),
    what: &str,
    hold_ms: i64,
) {
    warn!(
        change = %what,
        hold_ms,
        "the database failed over: nothing is adopted for the hold, and this instance's leases are compared with the new server's"
    );
    cluster.metrics.database_failovers.inc();
    let by = gateway_supervisor_actors::model::Caller::system("cluster");
    let details = serde_json::json!({
        "from": {"system_identifier": before.system, "timeline": before.timeline},
        "to": {"system_identifier": now.system, "timeline": now.timeline},
        "hold_ms": hold_ms,
    });
    let (s, me) = (store.clone(), instance.to_owned());
    tokio::task::spawn_blocking(move || {
        if let Err(e) = s.audit(&by, "cluster.db_failover", "instance", me, &details) {
            warn!(%e, "could not write the audit row of a database failover");
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(system: &str, timeline: u32) -> ServerIdentity {
        ServerIdentity {
            system: system.into(),
            timeline,
        }
    }

    #[test]
    fn another_timeline_or_system_is_a_failover_and_the_same_server_is_not() {
        let primary = server("7713", 1);
        assert_eq!(news(None, &primary, false), Database::Steady);
        assert_eq!(news(Some(&primary), &primary, false), Database::Steady);
        assert_eq!(news(Some(&primary), &primary, true), Database::CameBack);
        assert_eq!(
            news(Some(&primary), &server("7713", 2), true),
            Database::FailedOver("timeline 1 -> 2".into())
        );
        assert_eq!(
            news(Some(&primary), &server("9001", 1), false),
            Database::FailedOver("system 7713 -> 9001".into())
        );
    }
}
