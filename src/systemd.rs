//! sd_notify messages. Every call is a no-op without `NOTIFY_SOCKET`.

use std::time::Duration;

use sd_notify::NotifyState;

fn send(states: &[NotifyState]) {
    if let Err(err) = sd_notify::notify(states) {
        tracing::warn!(%err, "sd_notify failed");
    }
}

pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

pub fn reloading() {
    match NotifyState::monotonic_usec_now() {
        Ok(now) => send(&[NotifyState::Reloading, now]),
        Err(_) => send(&[NotifyState::Reloading]),
    }
}

/// Still starting, waiting for `status`: the start's timeout is extended by `extend` (a
/// daemon waiting for its database is not a start that hung).
pub fn waiting(status: &str, extend: Duration) {
    let usec = u32::try_from(extend.as_micros()).unwrap_or(u32::MAX);
    send(&[
        NotifyState::Status(status),
        NotifyState::ExtendTimeoutUsec(usec),
    ]);
}

pub fn stopping() {
    send(&[NotifyState::Stopping, NotifyState::Status("shutting down")]);
}

pub fn watchdog() {
    send(&[NotifyState::Watchdog]);
}

/// The interval at which to send `WATCHDOG=1` (half of `WatchdogSec=`), if enabled.
pub fn watchdog_interval() -> Option<Duration> {
    sd_notify::watchdog_enabled().map(|d| d / 2)
}
