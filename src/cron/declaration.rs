//! A declared job (docs/design.md, *Cron*): the job an operator wants on every gateway a
//! selector picks, read and checked here before anything is written to a gateway — a field
//! the gateway would refuse is named by this daemon, every time (2026.9.6's refusal of a bad
//! expression came once with the field's name and once with no message at all). Pure: what to
//! write to a gateway ([`Declaration::params`]), whether a gateway's job has drifted from it,
//! compared by value ([`Declaration::drift`]; `configRevision` is opaque and per gateway, and
//! `cron.add` answers `updated: true` even when nothing changed), and which gateway fires a
//! single-firing job ([`owner`]). Checked by its unit tests; carried out by the declarations'
//! rollout on the fleet engine.

use serde_json::{Map, Value, json};

use super::job::FLEET_OWNER;
use super::schedule::Schedule;
use gateway_supervisor_actors::labels::Selector;
use gateway_supervisor_actors::model::GatewayId;

/// The job fields a declaration may set: `cron.add`'s (2026.9.6), but `declarationKey`, which
/// is the daemon's, and `enabled`, which a single-firing declaration decides per gateway.
const JOB_FIELDS: [&str; 16] = [
    "name",
    "displayName",
    "owner",
    "agentId",
    "sessionKey",
    "description",
    "deleteAfterRun",
    "schedule",
    "pacing",
    "trigger",
    "sessionTarget",
    "wakeMode",
    "payload",
    "delivery",
    "failureAlert",
    "toolsAllow",
];
/// The payloads a declared job may carry (a `command` or `script` payload runs on the gateway's
/// host outside any agent: not declared fleet-wide from here).
const PAYLOADS: [&str; 2] = ["agentTurn", "systemEvent"];

/// What is wrong with a declaration, naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct Refused {
    pub field: String,
    pub message: String,
}

fn refused(field: &str, message: impl Into<String>) -> Refused {
    Refused {
        field: field.to_owned(),
        message: message.into(),
    }
}

/// Which risk moving a single-firing job takes when its gateway changes.
pub use crate::domain::CronMove as Move;

/// A declared job, checked.
#[derive(Debug, Clone)]
pub struct Declaration {
    pub name: String,
    pub selector: Selector,
    /// The job's fields, as `cron.add` takes them.
    pub job: Map<String, Value>,
    /// Fired by one matching gateway only, moved this way; `None`: by every one.
    pub single: Option<Move>,
}

impl Declaration {
    /// Declaration `name` from a request's body `{selector, job, single?, move?}`.
    pub fn read(name: &str, body: &Value) -> Result<Declaration, Refused> {
        let name_ok = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !name.starts_with('-');
        if !name_ok {
            return Err(refused(
                "name",
                "a declaration's name is 1–64 lower-case letters, digits and dashes, not starting with a dash",
            ));
        }
        let selector = match &body["selector"] {
            Value::String(s) => {
                Selector::parse(s).map_err(|e| refused("selector", e.to_string()))?
            }
            _ => {
                return Err(refused(
                    "selector",
                    "selector is required: a label selector such as `team=payments` (empty: every gateway)",
                ));
            }
        };
        let job = body["job"]
            .as_object()
            .ok_or_else(|| refused("job", "job is required: the job as cron.add takes it"))?
            .clone();
        if let Some(k) = job.keys().find(|k| !JOB_FIELDS.contains(&k.as_str())) {
            let why = match k.as_str() {
                "declarationKey" => "is the daemon's own (gs:<declaration name>)".to_owned(),
                "enabled" => {
                    "is decided per gateway (every matching one, or one with `single`)".to_owned()
                }
                _ => format!("is not a job field (one of {})", JOB_FIELDS.join(", ")),
            };
            return Err(refused(&format!("job.{}", shown(k)), why));
        }
        let text = |k: &str, max: usize| -> Result<(), Refused> {
            match job.get(k) {
                None => Ok(()),
                Some(Value::String(s)) if !s.trim().is_empty() && s.chars().count() <= max => {
                    Ok(())
                }
                Some(_) => Err(refused(
                    &format!("job.{k}"),
                    format!("job.{k} must be 1–{max} characters"),
                )),
            }
        };
        if !job.contains_key("name") {
            return Err(refused("job.name", "job.name is required"));
        }
        text("name", 200)?;
        text("displayName", 200)?;
        text("description", 2000)?;
        text("agentId", 128)?;
        let schedule = job
            .get("schedule")
            .ok_or_else(|| refused("job.schedule", "job.schedule is required"))?;
        check_schedule(schedule)?;
        let payload = job
            .get("payload")
            .and_then(Value::as_object)
            .ok_or_else(|| {
                refused(
                    "job.payload",
                    "job.payload is required: {kind: \"agentTurn\", message}",
                )
            })?;
        let kind = payload.get("kind").and_then(Value::as_str).unwrap_or("");
        if !PAYLOADS.contains(&kind) {
            return Err(refused(
                "job.payload.kind",
                format!(
                    "job.payload.kind must be agentTurn or systemEvent (got `{}`)",
                    shown(kind)
                ),
            ));
        }
        let single = match (&body["single"], &body["move"]) {
            (Value::Null | Value::Bool(false), Value::Null) => None,
            (Value::Null | Value::Bool(false), _) => {
                return Err(refused(
                    "move",
                    "move applies to a single-firing declaration (`single: true`)",
                ));
            }
            (Value::Bool(true), Value::Null) => Some(Move::Overlap),
            (Value::Bool(true), Value::String(m)) if m == "overlap" => Some(Move::Overlap),
            (Value::Bool(true), Value::String(m)) if m == "gap" => Some(Move::Gap),
            (Value::Bool(true), _) => {
                return Err(refused(
                    "move",
                    "move must be `overlap` (risk one duplicate fire) or `gap` (risk one missed fire)",
                ));
            }
            _ => return Err(refused("single", "single must be true or false")),
        };
        Ok(Declaration {
            name: name.to_owned(),
            selector,
            job,
            single,
        })
    }

    /// A stored declaration read back (`None`: its job is not a JSON object, or its selector
    /// no longer parses: it is not written anywhere until it is put again).
    pub fn from_row(row: &crate::db::cron_declarations::DeclarationRow) -> Option<Declaration> {
        Some(Declaration {
            name: row.name.clone(),
            selector: Selector::parse(&row.selector).ok()?,
            job: serde_json::from_str::<Value>(&row.job)
                .ok()?
                .as_object()?
                .clone(),
            single: row.single,
        })
    }

    /// The `declarationKey` its jobs carry on the gateways.
    pub fn key(&self) -> String {
        format!("{FLEET_OWNER}:{}", self.name)
    }

    /// `cron.add`'s parameters for a gateway where it is `enabled`.
    pub fn params(&self, enabled: bool) -> Value {
        let mut p = self.job.clone();
        p.insert("declarationKey".into(), json!(self.key()));
        p.insert("enabled".into(), json!(enabled));
        Value::Object(p)
    }

    /// Where gateway job `live` (as `cron.get` or a full `cron.list` page shows it) differs
    /// from this declaration where it should be `enabled`: the job fields it declares, and
    /// `enabled`, compared by value (key order aside). Empty: in sync.
    pub fn drift(&self, live: &Value, enabled: bool) -> Vec<String> {
        let mut paths = Vec::new();
        for (k, want) in &self.job {
            differ(&format!("job.{k}"), want, &live[k], &mut paths);
        }
        if (live["enabled"] != false) != enabled {
            paths.push("job.enabled".into());
        }
        paths
    }
}

/// The fields of `want` that `have` lacks or holds otherwise, as paths. Only what is declared
/// is compared: a gateway adds fields of its own (`id`, `state`, its defaults).
fn differ(path: &str, want: &Value, have: &Value, out: &mut Vec<String>) {
    match (want, have) {
        (Value::Object(w), Value::Object(h)) => {
            for (k, v) in w {
                differ(
                    &format!("{path}.{k}"),
                    v,
                    h.get(k).unwrap_or(&Value::Null),
                    out,
                );
            }
        }
        (w, h) if w == h => {}
        _ => out.push(path.to_owned()),
    }
}

/// A schedule the daemon can compute fires for, read as the gateway will.
fn check_schedule(s: &Value) -> Result<(), Refused> {
    match s["kind"].as_str() {
        Some("cron" | "every") => Schedule::read(s).map(drop).map_err(|e| {
            let field = match &e {
                super::schedule::ScheduleError::Expr { .. } => "job.schedule.expr",
                super::schedule::ScheduleError::TimeZone(_) => "job.schedule.tz",
                super::schedule::ScheduleError::Every(_) => "job.schedule.everyMs",
                super::schedule::ScheduleError::Shape(_) => "job.schedule",
            };
            refused(field, e.to_string())
        }),
        Some("at") if s["at"].is_string() || s["at"].is_i64() => Ok(()),
        _ => Err(refused(
            "job.schedule.kind",
            "job.schedule.kind must be cron {expr, tz?, staggerMs?}, every {everyMs} or at {at}",
        )),
    }
}

/// A peer's or a client's word, bounded for an error message.
fn shown(s: &str) -> String {
    gateway_supervisor_actors::bounded::text(s, 64)
}

/// A gateway a single-firing job could fire on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    pub id: GatewayId,
    /// Connected and healthy.
    pub up: bool,
    pub acting_primary: bool,
}

/// The gateway that fires a single-firing job: the one that does now while it is up, else the
/// group's acting primary, else the lowest id up; `None` while none is up (it stays where it
/// is: a job on a gateway that is down fires nowhere, and moving it there fires nothing more).
pub fn owner(now: Option<GatewayId>, matched: &[Candidate]) -> Option<GatewayId> {
    let up = |id: GatewayId| matched.iter().any(|c| c.id == id && c.up);
    if let Some(id) = now.filter(|id| up(*id)) {
        return Some(id);
    }
    matched
        .iter()
        .filter(|c| c.up)
        .min_by_key(|c| (!c.acting_primary, c.id))
        .map(|c| c.id)
        .or(now)
}

/// The order a move writes the gateways of a single-firing job: the new owner first (enable,
/// then disable the rest) to risk a duplicate, or last to risk a gap.
pub fn move_order(owner: GatewayId, mut gateways: Vec<GatewayId>, how: Move) -> Vec<GatewayId> {
    gateways.sort_unstable();
    gateways.retain(|g| *g != owner);
    match how {
        Move::Overlap => std::iter::once(owner).chain(gateways).collect(),
        Move::Gap => gateways.into_iter().chain(std::iter::once(owner)).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body() -> Value {
        json!({"selector": "team=payments", "job": {
            "name": "nightly-report",
            "schedule": {"kind": "cron", "expr": "0 3 * * *", "tz": "Europe/Oslo"},
            "sessionTarget": "isolated",
            "payload": {"kind": "agentTurn", "message": "write the report"},
            "delivery": {"mode": "none"}}})
    }

    fn with(path: &str, value: Value) -> Value {
        let mut b = body();
        let mut at = &mut b;
        let parts: Vec<&str> = path.split('.').collect();
        for p in &parts[..parts.len() - 1] {
            at = &mut at[*p];
        }
        at[*parts.last().unwrap()] = value;
        b
    }

    fn field(b: &Value) -> String {
        Declaration::read("nightly", b).unwrap_err().field
    }

    #[test]
    fn a_declaration_is_written_with_its_key_and_each_gateway_s_enabled() {
        let d = Declaration::read("nightly", &body()).unwrap();
        assert_eq!(d.key(), "gs:nightly");
        assert_eq!(d.single, None);
        let p = d.params(true);
        assert_eq!(p["declarationKey"], "gs:nightly");
        assert_eq!(p["enabled"], true);
        assert_eq!(p["schedule"]["tz"], "Europe/Oslo");
        assert_eq!(d.params(false)["enabled"], false);
    }

    #[test]
    fn each_bad_field_is_named_before_anything_is_written() {
        for (b, f) in [
            (
                with("job.schedule.expr", json!("61 * * * *")),
                "job.schedule.expr",
            ),
            (
                with("job.schedule.tz", json!("Mars/Olympus")),
                "job.schedule.tz",
            ),
            (
                with("job.schedule", json!({"kind": "every", "everyMs": 10})),
                "job.schedule.everyMs",
            ),
            (
                with("job.schedule", json!({"kind": "stream"})),
                "job.schedule.kind",
            ),
            (
                with("job.payload.kind", json!("command")),
                "job.payload.kind",
            ),
            (with("job.declarationKey", json!("x")), "job.declarationKey"),
            (with("job.enabled", json!(false)), "job.enabled"),
            (with("job.nmae", json!("typo")), "job.nmae"),
            (with("job.name", json!("")), "job.name"),
            (with("selector", json!("=x")), "selector"),
            (with("selector", json!(null)), "selector"),
            (with("job", json!(null)), "job"),
            (with("move", json!("gap")), "move"),
            (with("single", json!("yes")), "single"),
        ] {
            assert_eq!(field(&b), f, "{b}");
        }
        for name in ["", "Nightly", "-x", &"x".repeat(65), "a b"] {
            assert_eq!(
                Declaration::read(name, &body()).unwrap_err().field,
                "name",
                "{name}"
            );
        }
        let long = with("job.name", json!("\u{1b}[2J".repeat(500)));
        let e = Declaration::read("nightly", &long).unwrap_err().to_string();
        assert!(!e.contains('\u{1b}') && e.len() < 200, "{e}");
    }

    #[test]
    fn drift_is_by_value_only_over_what_is_declared() {
        let d = Declaration::read("nightly", &body()).unwrap();
        // The gateway's job: its own fields added, its keys in another order.
        let live = json!({"id": "j1", "configRevision": "sha256:x", "enabled": true,
            "state": {"nextRunAtMs": 1}, "name": "nightly-report", "declarationKey": "gs:nightly",
            "sessionTarget": "isolated", "wakeMode": "now",
            "payload": {"message": "write the report", "kind": "agentTurn"},
            "schedule": {"tz": "Europe/Oslo", "expr": "0 3 * * *", "kind": "cron"},
            "delivery": {"mode": "none"}});
        assert!(d.drift(&live, true).is_empty());
        assert_eq!(d.drift(&live, false), ["job.enabled"]);
        let mut edited = live.clone();
        edited["schedule"]["expr"] = json!("0 4 * * *");
        edited["payload"]["message"] = json!("something else");
        assert_eq!(
            d.drift(&edited, true),
            ["job.payload.message", "job.schedule.expr"]
        );
    }

    #[test]
    fn a_single_firing_job_stays_where_it_fires_and_moves_to_the_primary_then_the_lowest() {
        let c = |id: i64, up: bool, acting_primary: bool| Candidate {
            id: GatewayId(id),
            up,
            acting_primary,
        };
        let group = [c(1, true, false), c(2, true, true), c(3, true, false)];
        assert_eq!(
            owner(None, &group),
            Some(GatewayId(2)),
            "the acting primary"
        );
        assert_eq!(
            owner(Some(GatewayId(3)), &group),
            Some(GatewayId(3)),
            "it stays"
        );
        let three_down = [c(1, true, false), c(2, false, true), c(3, false, false)];
        assert_eq!(owner(Some(GatewayId(3)), &three_down), Some(GatewayId(1)));
        let all_down = [c(1, false, false), c(3, false, false)];
        assert_eq!(owner(Some(GatewayId(3)), &all_down), Some(GatewayId(3)));
        assert_eq!(owner(None, &all_down), None);
        let ids = vec![GatewayId(3), GatewayId(1), GatewayId(2)];
        assert_eq!(
            move_order(GatewayId(2), ids.clone(), Move::Overlap),
            [GatewayId(2), GatewayId(1), GatewayId(3)]
        );
        assert_eq!(
            move_order(GatewayId(2), ids, Move::Gap),
            [GatewayId(1), GatewayId(3), GatewayId(2)]
        );
        let single = Declaration::read("nightly", &with("single", json!(true))).unwrap();
        assert_eq!(single.single, Some(Move::Overlap));
        let mut gap = with("single", json!(true));
        gap["move"] = json!("gap");
        assert_eq!(
            Declaration::read("nightly", &gap).unwrap().single,
            Some(Move::Gap)
        );
    }
}
