//! The daemon's own vocabulary, apart from how it is stored: the statuses of spawns, agents,
//! direct CLI connections and alert deliveries. Each is a closed set of words ([`words!`]):
//! stored as its word (`db/` reads a row's text into it and refuses a word outside the set —
//! that is damage, not a status), shown as that word in the API (the OpenAPI document lists
//! them), and matched exhaustively in code, so a new word is a compile error wherever it
//! matters instead of a string compared in five places. Beside them the typed ids the daemon
//! mints ([`SpawnId`], [`OperationId`]) and the records the store, the services and the API
//! share: a fleet operation ([`operation`]) and an approval ([`approval`]) — the store reads
//! and writes them, it does not define them.

pub mod approval;
mod ids;
pub mod operation;
pub mod spend;
pub use ids::{ApprovalId, OperationId, SpawnId};

/// A word read back that is none of its set's.
#[derive(Debug, thiserror::Error)]
#[error("unknown {set} `{word}` in the database")]
pub struct UnknownWord {
    pub set: &'static str,
    /// The word, bounded.
    pub word: String,
}

/// The member of `all` whose word (`word`) is `s`; `set` names the set in the error.
pub fn parse_word<T: Copy>(
    all: &[T],
    word: fn(T) -> &'static str,
    set: &'static str,
    s: &str,
) -> Result<T, UnknownWord> {
    all.iter()
        .copied()
        .find(|w| word(*w) == s)
        .ok_or_else(|| UnknownWord {
            set,
            word: s.chars().take(32).collect(),
        })
}

/// A closed set of words: the enum, `ALL`, `as_str`, `Display`, and parsing from the stored
/// text (`FromStr`, `TryFrom<String>` for diesel's `deserialize_as`), with serde and the
/// OpenAPI schema using the same words.
macro_rules! words {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $($(#[$vmeta:meta])* $variant:ident => $word:literal),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash,
            serde::Serialize, serde::Deserialize, utoipa::ToSchema,
        )]
        // The words are the variants' names in lower case (utoipa does not read a rename
        // given through a macro's literal; the tests hold each word to `as_str`).
        #[serde(rename_all = "lowercase")]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            pub const ALL: [$name; <[&str]>::len(&[$($word),+])] = [$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $word),+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::domain::UnknownWord;
            fn from_str(s: &str) -> Result<Self, $crate::domain::UnknownWord> {
                $crate::domain::parse_word(&$name::ALL, $name::as_str, stringify!($name), s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = $crate::domain::UnknownWord;
            fn try_from(s: String) -> Result<Self, $crate::domain::UnknownWord> {
                s.parse()
            }
        }
    };
}

words! {
    /// Where a spawn is: `pending` (recorded, the gateway not yet asked) → `running` → one of
    /// `ok | error | aborted | timeout`.
    pub enum SpawnStatus {
        Pending => "pending",
        Running => "running",
        Ok => "ok",
        Error => "error",
        Aborted => "aborted",
        Timeout => "timeout",
    }
}

impl SpawnStatus {
    /// Whether the run is over (it will not change again).
    pub fn is_final(self) -> bool {
        !matches!(self, SpawnStatus::Pending | SpawnStatus::Running)
    }
}

words! {
    /// A cron job's state, as the fleet's job list filters on it.
    pub enum CronJobStatus {
        Enabled => "enabled",
        Disabled => "disabled",
        /// Its last run failed.
        Failing => "failing",
        /// An enabled extra copy of another job on its gateway.
        Duplicate => "duplicate",
        /// A fire of it was missed and not recovered.
        Missed => "missed",
    }
}

words! {
    /// How a gateway says a job's last run ended (`lastRunStatus`: 2026.9.6's
    /// `CronRunStatusSchema`). The inventory keeps the gateway's word as text (bounded); these
    /// are the words it is asked about.
    pub enum CronRunStatus {
        Ok => "ok",
        Error => "error",
        Skipped => "skipped",
    }
}

words! {
    /// What a gateway's `cron` event says happened (`gateway.cron`'s `action`).
    pub enum CronAction {
        Added => "added",
        Updated => "updated",
        Removed => "removed",
        Started => "started",
        Finished => "finished",
        Other => "other",
    }
}

words! {
    /// Why an expected fire has no run: the gateway was up and skipped it (openclaw#139215),
    /// or the daemon could not reach it over the slot (it may have been down).
    pub enum CronMissCause {
        Missed => "missed",
        Unreachable => "unreachable",
    }
}

words! {
    /// A missed fire's forced run: claimed (`forcing`, before it is sent: never sent twice),
    /// taken by the gateway (`forced`), or refused (`failed`); or none needed, the gateway
    /// having fired it after all, later than the grace (`late`).
    pub enum CronRecovery {
        Forcing => "forcing",
        Forced => "forced",
        Failed => "failed",
        Late => "late",
    }
}

words! {
    /// How a single-firing declared job moves when the gateway firing it changes: enable the
    /// new one before disabling the old (`overlap`: one fire may happen twice) or disable the
    /// old one first (`gap`: one fire may be missed).
    pub enum CronMove {
        Overlap => "overlap",
        Gap => "gap",
    }
}

/// The `cron.missed` event's payload: an expected fire of a gateway's job with no run, found
/// once per slot by the cron watchdog (`cron/watchdog.rs`), and what its recovery did. Read
/// typed by the alerts.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct CronMissedEvent {
    #[schema(value_type = i64)]
    pub gateway_id: gateway_supervisor_actors::model::GatewayId,
    pub job_id: String,
    pub job_name: String,
    /// The expected fire (Unix ms).
    pub slot_ms: i64,
    pub cause: CronMissCause,
    /// Absent: found, nothing done (`[cron] recover = "off"`, or the gateway unreachable).
    pub recovery: Option<CronRecovery>,
    /// The forced run's id, or why it was refused.
    pub detail: Option<String>,
}

words! {
    /// An agent as its gateway (or its CLI connection) last showed it.
    pub enum AgentStatus {
        Online => "online",
        Offline => "offline",
    }
}

words! {
    /// A spawn's row in the spend ledger (docs/design.md, *Spend*): `reserved` at admission
    /// (its estimate held), then `settled` when its run ends or `released` when it never
    /// started.
    pub enum LedgerState {
        Reserved => "reserved",
        Settled => "settled",
        Released => "released",
    }
}

words! {
    /// A direct CLI connection: live until it disconnects, times out or is replaced.
    pub enum ConnectionStatus {
        Connected => "connected",
        Disconnected => "disconnected",
    }
}

words! {
    /// An alert's webhook delivery: on record before the first attempt, then delivered, or
    /// failed after the last.
    pub enum DeliveryStatus {
        Pending => "pending",
        Delivered => "delivered",
        Failed => "failed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_stored_and_read_back_by_the_names_the_api_shows() {
        for status in SpawnStatus::ALL {
            assert_eq!(status.as_str().parse::<SpawnStatus>().unwrap(), status);
            assert_eq!(
                serde_json::to_value(status).unwrap(),
                serde_json::json!(status.as_str())
            );
        }
        let damaged = "finished".parse::<SpawnStatus>().unwrap_err();
        assert!(damaged.to_string().contains("`finished`"));
    }

    #[test]
    fn only_a_pending_or_running_spawn_can_still_change() {
        let open: Vec<SpawnStatus> = SpawnStatus::ALL
            .into_iter()
            .filter(|s| !s.is_final())
            .collect();
        assert_eq!(open, [SpawnStatus::Pending, SpawnStatus::Running]);
    }

    #[test]
    fn every_word_reads_back_as_itself_and_serializes_as_stored() {
        for s in DeliveryStatus::ALL {
            assert_eq!(DeliveryStatus::try_from(s.as_str().to_owned()).unwrap(), s);
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        for s in AgentStatus::ALL {
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        for s in ConnectionStatus::ALL {
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        assert_eq!(AgentStatus::ALL.len(), 2);
        assert_eq!(ConnectionStatus::Disconnected.to_string(), "disconnected");
    }

    #[test]
    fn a_stored_word_outside_the_set_is_refused_and_bounded() {
        let err = "x".repeat(500).parse::<AgentStatus>().unwrap_err();
        assert_eq!(err.set, "AgentStatus");
        assert_eq!(err.word.len(), 32);
        assert!("Online".parse::<AgentStatus>().is_err(), "words are exact");
    }
}
