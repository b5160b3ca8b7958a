//! Duplicated jobs on one gateway (openclaw/openclaw#86451: on a 14-gateway fleet, updates
//! duplicated jobs from 28 to 74): jobs with the same name, schedule and payload, more than
//! one of them enabled. Compared by value — the schedule and payload objects as the gateway
//! reports them, key order aside — never by id or `configRevision` (both differ between copies).
//! Which copy to keep is the oldest (`createdAtMs`, then id): the one the operator knew first.
//! Pure; checked by its unit tests.

use std::collections::BTreeMap;

use serde_json::Value;

/// One set of copies: the job kept, and the extras an admin may remove.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Duplicates {
    pub name: String,
    pub keep: String,
    pub extras: Vec<String>,
}

/// What makes two jobs copies: name, schedule and payload (as JSON text).
type Sameness = (String, String, String);
/// A copy: when it was made, its id, whether it is enabled.
type Found = (i64, String, bool);

/// The duplicated jobs among one gateway's `jobs` (as `cron.list` gives them, not compact: the
/// payload is needed), largest set first.
pub fn find(jobs: &[Value]) -> Vec<Duplicates> {
    let mut groups: BTreeMap<Sameness, Vec<Found>> = BTreeMap::new();
    for job in jobs {
        let (Some(id), Some(name)) = (job["id"].as_str(), job["name"].as_str()) else {
            continue;
        };
        // serde_json's maps are sorted: the text is the same whatever order the gateway used.
        let key = (
            name.to_owned(),
            job["schedule"].to_string(),
            job["payload"].to_string(),
        );
        let created = job["createdAtMs"].as_i64().unwrap_or(i64::MAX);
        let enabled = job["enabled"] != false;
        groups
            .entry(key)
            .or_default()
            .push((created, id.to_owned(), enabled));
    }
    let mut out: Vec<Duplicates> = groups
        .into_iter()
        .filter(|(_, copies)| copies.iter().filter(|c| c.2).count() > 1)
        .map(|((name, _, _), mut copies)| {
            copies.sort();
            let keep = copies[0].1.clone();
            Duplicates {
                name,
                keep,
                extras: copies.into_iter().skip(1).map(|c| c.1).collect(),
            }
        })
        .collect();
    out.sort_by(|a, b| {
        b.extras
            .len()
            .cmp(&a.extras.len())
            .then(a.name.cmp(&b.name))
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn job(id: &str, created: i64, enabled: bool, expr: &str, message: &str) -> Value {
        json!({"id": id, "name": "daily-report", "createdAtMs": created, "enabled": enabled,
            "schedule": {"kind": "cron", "expr": expr, "tz": "UTC"},
            "payload": {"kind": "agentTurn", "message": message}})
    }

    #[test]
    fn copies_by_value_are_found_and_the_oldest_is_kept() {
        let jobs = [
            job("c", 3, true, "0 9 * * *", "report"),
            job("a", 1, true, "0 9 * * *", "report"),
            job("b", 2, true, "0 9 * * *", "report"),
            // Not a copy: another message, another schedule.
            job("d", 4, true, "0 9 * * *", "other"),
            job("e", 5, true, "0 10 * * *", "report"),
        ];
        assert_eq!(
            find(&jobs),
            [Duplicates {
                name: "daily-report".into(),
                keep: "a".into(),
                extras: vec!["b".into(), "c".into()],
            }]
        );
    }

    #[test]
    fn key_order_does_not_matter_and_one_enabled_copy_is_no_finding() {
        let reordered = json!({"id": "b", "name": "daily-report", "createdAtMs": 2, "enabled": true,
            "payload": {"message": "report", "kind": "agentTurn"},
            "schedule": {"tz": "UTC", "expr": "0 9 * * *", "kind": "cron"}});
        let jobs = [job("a", 1, true, "0 9 * * *", "report"), reordered.clone()];
        assert_eq!(find(&jobs).len(), 1);
        // A disabled copy beside one enabled: what an operator does on purpose.
        let jobs = [
            job("a", 1, true, "0 9 * * *", "report"),
            job("b", 2, false, "0 9 * * *", "report"),
        ];
        assert!(find(&jobs).is_empty());
    }

    #[test]
    fn a_fresh_gateway_has_none() {
        let capture = crate::cron::capture();
        let fresh = &capture["calls"][1]["answer"]["jobs"];
        assert_eq!(fresh.as_array().unwrap().len(), 3);
        assert!(find(fresh.as_array().unwrap()).is_empty());
    }
}
