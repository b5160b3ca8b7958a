//! Wake-ups from the database: one connection per instance LISTENs on `gs_gateways` (a gateway
//! row changed in a way decisions need) and `gs_events` (events were stored), and wakes the
//! cluster runner or the event pump at once (the triggers are in the `cluster_notify`
//! migration). Notifications are only a hint: a listener that reconnects misses what was sent
//! meanwhile, so the runner and the pump keep polling the tables, which stay the source of
//! truth — the wake-ups only make a change visible in milliseconds instead of at the next poll.

use std::sync::Arc;
use std::time::Duration;

use diesel::{Connection, PgConnection, RunQueryDsl};
use tokio::sync::{Notify, watch};
use tracing::{info, warn};

/// How often the listener reads its socket for notifications (no query: libpq consumes what
/// the server sent).
const READ_EVERY: Duration = Duration::from_millis(20);
/// How long it waits before connecting again after losing its connection.
const RECONNECT_AFTER: Duration = Duration::from_secs(1);

pub const GATEWAYS: &str = "gs_gateways";
pub const EVENTS: &str = "gs_events";

/// What the listener wakes. Each `Notify` keeps one permit, so a burst is one wake-up.
#[derive(Clone, Default)]
pub struct Wakeups {
    pub gateways: Arc<Notify>,
    pub events: Arc<Notify>,
}

impl Wakeups {
    fn wake(&self, channel: &str) {
        match channel {
            GATEWAYS => self.gateways.notify_one(),
            EVENTS => self.events.notify_one(),
            _ => {}
        }
    }
}

/// Listens on its own thread (a blocking connection) until `stop` turns true.
pub fn listen(url: String, wake: Wakeups, stop: watch::Receiver<bool>) {
    let spawned = std::thread::Builder::new()
        .name("cluster-listen".into())
        .spawn(move || run(&url, &wake, &stop));
    if let Err(e) = spawned {
        warn!(%e, "no listener thread; changes are seen at the next poll");
    }
}

fn run(url: &str, wake: &Wakeups, stop: &watch::Receiver<bool>) {
    let mut was_lost = false;
    while !*stop.borrow() {
        match listening(url) {
            Ok(mut conn) => {
                if was_lost {
                    info!("listening for the cluster's notifications again");
                }
                // Whatever changed while not listening is read now.
                wake.wake(GATEWAYS);
                wake.wake(EVENTS);
                let lost = follow(&mut conn, wake, stop);
                if let Some(e) = lost {
                    warn!(%e, "lost the notification connection; polling until it is back");
                    was_lost = true;
                }
            }
            Err(e) => {
                if !was_lost {
                    warn!(%e, "cannot listen for the cluster's notifications; polling until it can");
                }
                was_lost = true;
            }
        }
        std::thread::sleep(RECONNECT_AFTER);
    }
}

fn listening(url: &str) -> Result<PgConnection, diesel::result::Error> {
    let mut conn = PgConnection::establish(url).map_err(|e| {
        diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UnableToSendCommand,
            Box::new(e.to_string()),
        )
    })?;
    diesel::sql_query(format!("LISTEN {GATEWAYS}")).execute(&mut conn)?;
    diesel::sql_query(format!("LISTEN {EVENTS}")).execute(&mut conn)?;
    Ok(conn)
}

/// Reads notifications until the connection fails (its error) or `stop` (`None`).
fn follow(
    conn: &mut PgConnection,
    wake: &Wakeups,
    stop: &watch::Receiver<bool>,
) -> Option<diesel::result::Error> {
    while !*stop.borrow() {
        for n in conn.notifications_iter() {
            match n {
                Ok(n) => wake.wake(&n.channel),
                Err(e) => return Some(e),
            }
        }
        std::thread::sleep(READ_EVERY);
    }
    None
}
