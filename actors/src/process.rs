//! Whether a gateway came back as another process or another release (docs/design.md, *Generation
//! fence*): two handshakes' facts in, the change out. Pure. A first handshake is no change
//! (nothing to compare with), and neither is a release that does not name its process.

use crate::model::ConnectionInfo;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProcessChange {
    /// Another release than before (its process is new too).
    Upgraded { from: String, to: String },
    /// The same release, another process: the gateway restarted.
    Restarted { from: String, to: String },
}

impl ProcessChange {
    /// The event's payload (`gateway.changed`).
    pub fn payload(&self) -> serde_json::Value {
        match self {
            ProcessChange::Upgraded { from, to } => {
                serde_json::json!({"action": "version_changed", "from": from, "to": to})
            }
            ProcessChange::Restarted { from, to } => {
                serde_json::json!({"action": "restarted", "previous_boot_id": from, "boot_id": to})
            }
        }
    }
}

pub fn change(before: &ConnectionInfo, after: &ConnectionInfo) -> Option<ProcessChange> {
    if let (Some(from), Some(to)) = (&before.server_version, &after.server_version)
        && from != to
    {
        return Some(ProcessChange::Upgraded {
            from: from.clone(),
            to: to.clone(),
        });
    }
    match (&before.boot_id, &after.boot_id) {
        (Some(from), Some(to)) if from != to => Some(ProcessChange::Restarted {
            from: from.clone(),
            to: to.clone(),
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(version: Option<&str>, boot: Option<&str>) -> ConnectionInfo {
        ConnectionInfo {
            server_version: version.map(str::to_owned),
            boot_id: boot.map(str::to_owned),
            ..ConnectionInfo::default()
        }
    }

    #[test]
    fn a_first_handshake_is_no_change() {
        assert_eq!(
            change(&seen(None, None), &seen(Some("2026.9.6"), Some("b1"))),
            None
        );
    }

    #[test]
    fn the_same_process_again_is_no_change() {
        let s = seen(Some("2026.9.6"), Some("b1"));
        assert_eq!(change(&s, &s), None);
    }

    #[test]
    fn a_new_boot_of_the_same_release_is_a_restart() {
        assert_eq!(
            change(
                &seen(Some("2026.9.6"), Some("b1")),
                &seen(Some("2026.9.6"), Some("b2"))
            ),
            Some(ProcessChange::Restarted {
                from: "b1".into(),
                to: "b2".into()
            })
        );
    }

    #[test]
    fn another_release_is_an_upgrade_whatever_the_boot() {
        assert_eq!(
            change(
                &seen(Some("2026.3.31"), None),
                &seen(Some("2026.9.6"), Some("b2"))
            ),
            Some(ProcessChange::Upgraded {
                from: "2026.3.31".into(),
                to: "2026.9.6".into()
            })
        );
    }

    #[test]
    fn a_release_that_names_no_process_never_reads_as_restarted() {
        assert_eq!(
            change(&seen(Some("dev"), None), &seen(Some("dev"), None)),
            None
        );
    }
}
