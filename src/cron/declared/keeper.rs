//! The keeper of declared cron jobs between rollouts (docs/design.md, *Cron*): every watch
//! (and a second after a gateway links or goes), for each declaration whose own rollout
//! succeeded, what [`rule::keep`] says to write — a gateway that came to match, one that
//! stopped matching, one down over a change and back, the move of a single-firing job off a
//! gateway that went down — started as a small operation of the declaration's kind; and the
//! drift of the declared jobs of gateways linked here, judged again when their
//! `configRevision` moves. A gateway a running operation holds waits for the next round; two
//! instances that decide the same thing start it once (the second finds the gateways held),
//! and a move is recorded by compare-and-set first. Cost per round: one read of the store for
//! the declarations, what was written, the running operations and the declared jobs the lists
//! hold, then one per declaration (its rollout's state); a `cron.get` only for a job whose
//! revision moved.

use std::collections::{BTreeSet, HashMap};

use super::rule::{self, Seen};
use super::{DEADLINE_S, DeclareError, KEEPER_PARALLEL, MISSING_AFTER_MS, held, playbook};
use crate::cron::declaration::{Candidate, Declaration};
use crate::cron::{Cron, CronError};
use crate::db::cron::DeclaredListed;
use crate::db::cron_declarations::{DeclarationRow, DeclaredRow};
use crate::domain::operation::{KindParams, OperationParams, OperationState};
use crate::fleet::FleetError;
use crate::fleet::operation::OperationOrder;
use gateway_supervisor_actors::model::{Caller, GatewayId};
use gateway_supervisor_actors::unix_now_ms;

impl Cron {
    /// One round of the keeper over every declaration whose rollout succeeded: what
    /// [`rule::keep`] says to write, as a small operation of the declaration's kind (a
    /// gateway a running operation holds waits for the next round).
    pub async fn keep_declarations(&self) {
        if let Err(e) = self.keep_all().await {
            tracing::warn!(%e, "the cron declarations were not kept this round");
        }
    }

    async fn keep_all(&self) -> Result<(), DeclareError> {
        let owner = crate::cron::job::FLEET_OWNER;
        // No declaration, nothing else read: the declared jobs are found by a scan of every
        // gateway's jobs (19,000 gateways: 4 ms each watch on SQLite), for a fleet that has none.
        let (rows, declared, running, listed) = self
            .stored(move |s| {
                let rows = s.cron_declarations(true)?;
                if rows.is_empty() {
                    return Ok((rows, Vec::new(), Vec::new(), Vec::new()));
                }
                Ok((
                    rows,
                    s.cron_declared(None)?,
                    s.running_operations()?,
                    s.cron_jobs_declared_by(owner)?,
                ))
            })
            .await?;
        if rows.is_empty() {
            return Ok(());
        }
        // Each declared job the gateways' lists hold, by gateway and key.
        let listed: HashMap<(GatewayId, &str), &DeclaredListed> = listed
            .iter()
            .map(|l| ((l.gateway_id, l.key.as_str()), l))
            .collect();
        if let Err(e) = self.judge_drift(&rows, &declared, &listed).await {
            tracing::debug!(%e, "declared cron jobs not all judged this round");
        }
        let targets = self.hands.gateway_states();
        for row in rows {
            let settled = match &row.operation_id {
                Some(op) => self.succeeded(op).await?,
                None => false,
            };
            if !settled {
                continue;
            }
            let Some(d) = Declaration::from_row(&row) else {
                continue;
            };
            let params = OperationParams {
                // A move goes one gateway at a time, in its policy's order.
                max_unavailable: if row.single.is_some() {
                    1
                } else {
                    KEEPER_PARALLEL
                },
                wait_ready_s: DEADLINE_S,
                abort_on_failure: false,
                canary: 0,
                of: KindParams::Cron {
                    declaration: row.name.clone(),
                },
            };
            // What a running operation holds, unless it may share the gateway with this one.
            let held_by_op: BTreeSet<GatewayId> = running
                .iter()
                .filter(|op| !params.may_share_gateways_with(&op.params))
                .flat_map(|op| op.progress.iter().filter(|p| !p.step.is_over()))
                .map(|p| p.gateway_id)
                .collect();
            let key = d.key();
            let written: HashMap<GatewayId, &DeclaredRow> = declared
                .iter()
                .filter(|r| r.name == row.name)
                .map(|r| (r.gateway_id, r))
                .collect();
            let carrying: BTreeSet<GatewayId> = listed
                .keys()
                .filter(|(_, k)| *k == key)
                .map(|(g, _)| *g)
                .chain(written.keys().copied())
                .collect();
            let seen: Vec<Seen> = targets
                .iter()
                .map(|t| Seen {
                    candidate: Candidate {
                        id: t.id,
                        up: t.up && !held_by_op.contains(&t.id),
                        acting_primary: t.acting_primary,
                    },
                    matches: d.selector.matches(&t.labels),
                    carries: carrying.contains(&t.id),
                    written: written
                        .get(&t.id)
                        .map(|r| (r.revision, r.enabled, r.error.is_some())),
                })
                .collect();
            let kept = rule::keep(&held(&row), &seen);
            if row.deleted && kept.write.is_empty() && carrying.is_empty() {
                let name = row.name.clone();
                self.stored(move |s| s.drop_cron_declaration(&name)).await?;
                continue;
            }
            if let Some(to) = kept.moved_to {
                let (name, rev, from) = (row.name.clone(), row.revision, row.owner_gateway_id);
                if !self
                    .stored(move |s| s.move_cron_declaration(&name, rev, from, to))
                    .await?
                {
                    continue; // another instance moved it first: next round reads it
                }
                tracing::info!(declaration = %row.name, gateway_id = to.get(), "a single-firing cron job moves");
            }
            if kept.write.is_empty() {
                continue;
            }
            let order = OperationOrder {
                kind: playbook::KIND,
                gateways: kept.write,
                params,
            };
            let by = Caller::system("cron-declarations");
            match self.operations.start_operation(order, &by).await {
                Ok(op) => {
                    tracing::info!(declaration = %row.name, operation = %op.id, gateways = op.progress.len(), "cron declaration kept")
                }
                // Held meanwhile by another operation (or another instance's keeper): next round.
                Err(FleetError::Busy { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Judges again the declared jobs of gateways linked here whose job changed since it was
    /// written (another `configRevision` in the inventory: `cron.get`, compared by value) or is
    /// gone from the gateway's list (drift `job`).
    async fn judge_drift(
        &self,
        rows: &[DeclarationRow],
        declared: &[DeclaredRow],
        listed: &HashMap<(GatewayId, &str), &DeclaredListed>,
    ) -> Result<(), CronError> {
        let now = unix_now_ms();
        for row in declared {
            let Some(job_id) = &row.job_id else { continue };
            let f = self.hands.facts(row.gateway_id);
            if f.elsewhere || !f.connected {
                continue;
            }
            let key = format!("{}:{}", crate::cron::job::FLEET_OWNER, row.name);
            let judged = match listed.get(&(row.gateway_id, key.as_str())) {
                None if now - row.checked_at_ms < MISSING_AFTER_MS => continue,
                None if row.drift_paths() == ["job"] => continue,
                None => vec!["job".to_owned()],
                Some(l) if l.config_revision == row.config_revision => continue,
                Some(l) => {
                    let id = &l.job_id;
                    let Some(d) = rows
                        .iter()
                        .find(|r| r.name == row.name)
                        .and_then(Declaration::from_row)
                    else {
                        continue;
                    };
                    let got = match self
                        .hands
                        .call(row.gateway_id, "cron.get", serde_json::json!({"id": id}))
                        .await
                    {
                        Ok(got) => got,
                        Err(e) => {
                            tracing::debug!(gateway_id = row.gateway_id.get(), %e, "a declared job not read back; at the next round");
                            continue;
                        }
                    };
                    let mut next = row.clone();
                    next.job_id = Some(id.clone());
                    next.config_revision = got["configRevision"]
                        .as_str()
                        .map(|r| gateway_supervisor_actors::bounded::text(r, 128));
                    next.drift = serde_json::to_string(&d.drift(&got, row.enabled))
                        .unwrap_or_else(|_| "[]".into());
                    next.checked_at_ms = now;
                    self.stored(move |s| s.record_cron_declared(&next)).await?;
                    continue;
                }
            };
            let mut next = row.clone();
            next.drift = serde_json::to_string(&judged).unwrap_or_else(|_| "[]".into());
            next.checked_at_ms = now;
            tracing::debug!(declaration = %row.name, gateway_id = row.gateway_id.get(), job = %job_id, "a declared job is gone from its gateway");
            self.stored(move |s| s.record_cron_declared(&next)).await?;
        }
        Ok(())
    }

    /// Whether operation `id` succeeded.
    async fn succeeded(&self, id: &str) -> Result<bool, CronError> {
        let id = crate::domain::OperationId::from(id.to_owned());
        let op = self.stored(move |s| s.operation(&id)).await?;
        Ok(op.is_some_and(|op| op.state == OperationState::Succeeded))
    }
}
