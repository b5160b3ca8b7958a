//! SIGHUP: the configuration read again; what can change at run time is applied, what needs a
//! restart is named in the log and left as it was.

use tracing::{error, info, warn};

use super::running::Running;
use crate::config::Config;
use crate::systemd;

/// SIGHUP: re-reads every config layer and applies what can change at run time (log level,
/// rate limits). Keys that need a restart are reported, not half-applied.
pub(super) fn reload(rt: &mut Running) {
    systemd::reloading();
    match Config::load(rt.config_file.as_deref(), &rt.flags) {
        Ok(new) => {
            if let Err(e) = rt.log.set_level(&new.log.level) {
                error!(%e, "reload: keeping the old log level");
            }
            rt.state
                .gateway_ops_limiter
                .reconfigure(new.limits.gateway_ops_per_minute);
            rt.state
                .manual_health_limiter
                .reconfigure_period(new.limits.manual_health_interval);
            rt.state
                .session_control_limiter
                .reconfigure(new.limits.session_control_per_minute);
            let restart_needed = [
                ("server.bind", new.server.bind != rt.cfg.server.bind),
                ("state.dir", new.state.dir != rt.cfg.state.dir),
                ("database.url", new.database.url != rt.cfg.database.url),
                ("log.format", new.log.format != rt.cfg.log.format),
                (
                    "limits.max_body_bytes",
                    new.limits.max_body_bytes != rt.cfg.limits.max_body_bytes,
                ),
                ("metrics.bind", new.metrics.bind != rt.cfg.metrics.bind),
                (
                    "server.stream_keepalive",
                    new.server.stream_keepalive != rt.cfg.server.stream_keepalive,
                ),
            ];
            for (key, changed) in restart_needed {
                if changed {
                    warn!(key, "reload: this setting changes only on restart");
                }
            }
            info!(log_level = %new.log.level, gateway_ops_per_minute = new.limits.gateway_ops_per_minute, "configuration reloaded");
            rt.cfg = new;
        }
        Err(e) => error!(%e, "reload failed; the running configuration is unchanged"),
    }
    systemd::ready("configuration reloaded");
}
