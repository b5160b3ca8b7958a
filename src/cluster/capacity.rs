//! How many gateways this instance can link (issue 60). Each link is one socket, so the bound
//! is the process's open-file limit: at start the soft limit is raised to the hard one (as Go's
//! runtime does; systemd's `LimitNOFILE` sets both), and the capacity is that less a reserve
//! for everything else that opens files — [`RESERVE`] for the HTTP side, probes, the log and
//! the state files, plus the database pool — or `cluster.max_gateways` when lower. The
//! instance advertises it in its heartbeat, and placement never gives it more
//! (`placement::assign_within`): an instance asked for more than it can hold would fail at the
//! socket, one gateway at a time, instead of saying so once.

use nix::sys::resource::{Resource, getrlimit, setrlimit};

/// Files kept for what is not a gateway link: API clients, SSE streams, probes, logs.
pub const RESERVE: u64 = 512;

/// The gateways an instance with `open_files` descriptors and a database pool of `pool` can
/// link, at most `max` (`cluster.max_gateways`).
pub fn of(open_files: u64, pool: u32, max: Option<u64>) -> u64 {
    let room = open_files.saturating_sub(RESERVE + u64::from(pool));
    max.map_or(room, |m| m.min(room))
}

/// Raises the soft open-file limit to the hard one; returns the limit now (`None`: it could
/// not be read — no bound is then assumed from it).
pub fn raise_open_files() -> Option<u64> {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).ok()?;
    if soft < hard {
        match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => {
                tracing::info!(
                    from = soft,
                    to = hard,
                    "open-file limit raised to the hard limit"
                );
                return Some(hard);
            }
            Err(e) => tracing::warn!(%e, soft, hard, "could not raise the open-file limit"),
        }
    }
    Some(soft)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_capacity_is_the_file_limit_less_the_reserve_and_the_pool_or_the_configured_bound() {
        // This machine's hard limit, and a systemd unit's LimitNOFILE.
        assert_eq!(of(20_000, 10, None), 19_478);
        assert_eq!(of(65_536, 32, None), 64_992);
        assert_eq!(of(65_536, 32, Some(10_000)), 10_000);
        // A bound above what the files allow does not raise it.
        assert_eq!(of(20_000, 10, Some(50_000)), 19_478);
        // A limit below the reserve leaves no room, not an underflow.
        assert_eq!(of(256, 10, None), 0);
    }
}
