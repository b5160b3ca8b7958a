//! The daemon's background loops, started and stopped in one place (relay's service model,
//! reduced to what this daemon needs): each is a named future started once when serving
//! begins and aborted at the stop, after the HTTP server has finished its requests and before
//! the gateway links are closed — so no loop acts on a gateway whose socket is going away, and
//! none outlives the stop by a round. Every loop's steps are safe to cut between two awaits:
//! the engine's and the rollouts' are recorded step by step and repeated on a lost record, the
//! others only read or write one row at a time. The cluster's lease runner and event pump are
//! not among them: they have their own orderly stop (leases given up, the last events stored).

use std::future::Future;

use tracing::debug;

/// The loops started so far, by name.
#[derive(Default)]
pub(super) struct Background {
    tasks: Vec<(&'static str, tokio::task::JoinHandle<()>)>,
}

impl Background {
    /// Starts loop `name` on the daemon's runtime.
    pub(super) fn start(&mut self, name: &'static str, run: impl Future<Output = ()> + 'static) {
        self.tasks.push((name, actix::spawn(run)));
    }

    /// The names of the loops started, in order.
    #[cfg(test)]
    fn names(&self) -> Vec<&'static str> {
        self.tasks.iter().map(|(n, _)| *n).collect()
    }

    /// Stops every loop, and waits until each has let go of what it held.
    pub(super) async fn stop(self) {
        for (_, task) in &self.tasks {
            task.abort();
        }
        for (name, task) in self.tasks {
            // An aborted task answers `cancelled`; one that had ended by itself, its end.
            if let Err(e) = task.await
                && !e.is_cancelled()
            {
                tracing::warn!(loop_name = name, %e, "a background loop had failed");
            } else {
                debug!(loop_name = name, "background loop stopped");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Background;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// A loop that never ends on its own is stopped, and what it holds is let go by the time
    /// `stop` returns (an `Arc` it held is the only one left).
    #[actix_web::test]
    async fn stop_ends_every_loop_and_waits_for_each_to_let_go() {
        let held = Arc::new(AtomicBool::new(false));
        let mut background = Background::default();
        let mine = held.clone();
        background.start("forever", async move {
            mine.store(true, Ordering::SeqCst);
            std::future::pending::<()>().await;
        });
        background.start("ends", async {});
        assert_eq!(background.names(), ["forever", "ends"]);
        tokio::time::timeout(std::time::Duration::from_secs(5), async {
            while !held.load(Ordering::SeqCst) {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the loop ran");
        background.stop().await;
        assert_eq!(
            Arc::strong_count(&held),
            1,
            "the stopped loop still holds its state"
        );
    }
}
