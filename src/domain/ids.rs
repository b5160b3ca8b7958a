//! Ids as text: the daemon's own, a spawn's (a random UUID's shape) and an operation's
//! (`op_` and 24 random hex digits), and a gateway's for an approval. A typed id is not a `String`: a spawn's id
//! cannot be handed where a session key, a run id or an idempotency key is wanted, which the
//! bare strings allowed (`spawn_id`, `run_id` and `session_key` sat side by side in the same
//! tuples). Stored and shown as its text: diesel reads the column as a `String` into it
//! (`#[diesel(deserialize_as = String)]`) and writes [`as_str`](SpawnId::as_str); serde and the
//! OpenAPI document see a string.

macro_rules! text_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                $name(s)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                $name(s.to_owned())
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }
    };
}

text_id! {
    /// An approval, as its gateway names it (a UUID, `plugin:` and a UUID for a plugin's): the
    /// gateway's id, not one this daemon mints, so unique only with the gateway's
    /// ([`GatewayId`](gateway_supervisor_actors::model::GatewayId)) beside it. Bounded and
    /// escaped where it is read (the gateway's frames, `protocol::approvals`; the API's path).
    ApprovalId
}

text_id! {
    /// A fleet operation (a drain, a rolling restart, an upgrade, a config rollout): `op_` and
    /// 24 random hex digits, minted when it is recorded; a config rollout's secrets are bound
    /// to it.
    OperationId
}

text_id! {
    /// A spawn: 32 random hex digits as a UUID is written (8-4-4-4-12), minted when the spawn
    /// is recorded.
    SpawnId
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spawn_id_is_its_text_in_json_and_in_messages() {
        let id = SpawnId::from("sp_0123");
        assert_eq!(
            serde_json::to_value(&id).unwrap(),
            serde_json::json!("sp_0123")
        );
        assert_eq!(serde_json::from_str::<SpawnId>("\"sp_0123\"").unwrap(), id);
        assert_eq!(format!("spawn {id}"), "spawn sp_0123");
        assert!(id == *"sp_0123");
    }
}
