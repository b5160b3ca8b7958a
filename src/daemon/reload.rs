//! SIGHUP: the configuration read again; what can change at run time is applied, what needs a
//! restart is named in the log and left as it was.

use tracing::{error, info, warn};

use super::running::Running;
use crate::config::Config;
use crate::config::changes::changed_keys;
use crate::systemd;

/// The settings a reload applies at once. Every other changed setting keeps its running value
/// until a restart, and each reload names it again while the file still differs.
const APPLIED: [&str; 4] = [
    "log.level",
    "limits.gateway_ops_per_minute",
    "limits.manual_health_interval",
    "limits.session_control_per_minute",
];

/// SIGHUP: re-reads every config layer and applies what can change at run time (log level,
/// rate limits). Keys that need a restart are reported, not half-applied.
pub(super) fn reload(rt: &mut Running) {
    systemd::reloading();
    match Config::load(rt.config_file.as_deref(), &rt.flags) {
        Ok(new) => {
            for key in changed_keys(&rt.cfg, &new) {
                if !APPLIED.contains(&key.as_str()) {
                    warn!(key, "reload: this setting changes only on restart");
                }
            }
            if let Err(e) = rt.log.set_level(&new.log.level) {
                error!(%e, "reload: keeping the old log level");
            } else {
                rt.cfg.log.level = new.log.level;
            }
            let limits = &mut rt.cfg.limits;
            limits.gateway_ops_per_minute = new.limits.gateway_ops_per_minute;
            limits.manual_health_interval = new.limits.manual_health_interval;
            limits.session_control_per_minute = new.limits.session_control_per_minute;
            rt.state
                .gateway_ops_limiter
                .reconfigure(limits.gateway_ops_per_minute);
            rt.state
                .manual_health_limiter
                .reconfigure_period(limits.manual_health_interval);
            rt.state
                .session_control_limiter
                .reconfigure(limits.session_control_per_minute);
            info!(log_level = %rt.cfg.log.level, gateway_ops_per_minute = limits.gateway_ops_per_minute, "configuration reloaded");
        }
        Err(e) => error!(%e, "reload failed; the running configuration is unchanged"),
    }
    systemd::ready("configuration reloaded");
}
