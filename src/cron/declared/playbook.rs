//! A cron declaration's playbook on the one fleet engine (`fleet/operation/engine.rs`): the
//! engine plans (canaries first, `max_unavailable` at a time, the stop at the first failure
//! with `abort_on_failure`, a cancel), records and announces; this says what one gateway's
//! step is — [`rule::next`] decides, and a write is carried out here: what the gateway should
//! carry ([`rule::want`], from the declaration as stored now and the gateway's labels now),
//! its turn under the gateway's write limit, `cron.add` with the declaration's key (idempotent
//! on the gateway: a repeated write updates the same job) and `cron.get` to read it back, or
//! `cron.remove` of every job that carries the key. Each gateway's result is recorded in
//! `cron_declared` for the drift view and the keeper.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use serde_json::json;

use super::rule::{self, Held, Next, Outcome, Want};
use crate::cron::Cron;
use crate::cron::declaration::Declaration;
use crate::db::cron_declarations::DeclaredRow;
use crate::db::operations::Operation;
use crate::fleet::FleetError;
use crate::fleet::operation::engine::acting;
use crate::fleet::operation::model::{GatewayProgress, OperationKind, OperationState};
use crate::fleet::operation::rule::Facts;
use crate::fleet::operation::{Hands, Playbook, Round, Stepped};
use gateway_supervisor_actors::bounded;
use gateway_supervisor_actors::model::{Caller, GatewayId};
use gateway_supervisor_actors::protocol::frames::ErrorShape;
use gateway_supervisor_actors::unix_now_ms;

/// The kind this playbook carries out.
pub const KIND: OperationKind = OperationKind::CronDeclaration;
/// A write lost on the way (it is idempotent: sent again) is tried again after this long.
const AGAIN_MS: i64 = 2_000;

/// The cron declarations' playbook.
pub fn playbook(cron: Arc<Cron>) -> Arc<dyn Playbook> {
    Arc::new(Declarations(cron))
}

struct Declarations(Arc<Cron>);

impl Playbook for Declarations {
    fn kind(&self) -> OperationKind {
        KIND
    }

    fn plan(&self, op: &mut Operation, now_ms: i64) {
        crate::fleet::operation::engine::plan_in_order(op, now_ms);
    }

    fn round<'a>(
        &'a self,
        op: &Operation,
        _hands: &'a Hands,
    ) -> BoxFuture<'a, Result<Box<dyn Round + 'a>, FleetError>> {
        let name = op.params.declaration().map(str::to_owned);
        let by = acting(op);
        Box::pin(async move {
            let row = match name {
                Some(name) => self
                    .0
                    .stored(move |s| s.cron_declaration(&name))
                    .await
                    .map_err(super::super::CronError::into_fleet)?,
                None => None,
            };
            let declared = row.as_ref().and_then(|r| {
                let d = Declaration::from_row(r)?;
                let held = Held {
                    revision: r.revision,
                    deleted: r.deleted,
                    single: r.single,
                    owner: r.owner_gateway_id,
                };
                Some((d, held))
            });
            let round: Box<dyn Round + 'a> = Box::new(DeclarationRound {
                cron: &self.0,
                declared,
                by,
            });
            Ok(round)
        })
    }
}

/// One advance of a declaration's rollout: the declaration as stored now.
struct DeclarationRound<'a> {
    cron: &'a Cron,
    /// `None`: it is gone or unreadable (nothing is written; the gateways fail at their
    /// deadline, saying so).
    declared: Option<(Declaration, Held)>,
    by: Caller,
}

impl Round for DeclarationRound<'_> {
    fn step<'b>(&'b self, op: &'b Operation, mut p: GatewayProgress, f: Facts) -> Stepped<'b> {
        Box::pin(async move {
            let cancelling = op.state == OperationState::Cancelling;
            let now = unix_now_ms();
            let next = rule::next(&p, &f, op.params.wait_ready_s, cancelling, now);
            match (&next, &self.declared) {
                (Next::Write, Some((d, held))) => {
                    let outcome = self.write(op, p.gateway_id, d, held).await;
                    rule::after(&mut p, outcome, unix_now_ms());
                }
                (Next::Write, None) => {
                    p.detail = Some("its declaration is gone or cannot be read".into());
                }
                _ => rule::apply(&mut p, &next, now),
            }
            Ok(p)
        })
    }
}

/// What stopped a call: the gateway's refusal (its words), its write limit (retry after), or
/// a call that did not go or did not come back (it is idempotent: tried again).
fn failed(e: &FleetError) -> Outcome {
    match e.refusal() {
        Some(ErrorShape {
            retryable: Some(true),
            retry_after_ms: Some(ms),
            ..
        }) => Outcome::Again {
            after_ms: i64::try_from(*ms).unwrap_or(60_000),
            why: "the gateway's write limit: again when it says".into(),
        },
        Some(shape) => Outcome::Refused(bounded::text(
            &format!("{}: {}", shape.code, shape.message),
            240,
        )),
        None => Outcome::Again {
            after_ms: AGAIN_MS,
            why: bounded::text(&format!("not written yet: {e}"), 240),
        },
    }
}

impl DeclarationRound<'_> {
    fn hands(&self) -> &Hands {
        &self.cron.hands
    }

    /// Writes what gateway `id` should carry of `d` now.
    async fn write(&self, op: &Operation, id: GatewayId, d: &Declaration, held: &Held) -> Outcome {
        let matches = self
            .hands()
            .gateway_labels(Some(id))
            .first()
            .is_some_and(|(_, _, labels)| d.selector.matches(labels));
        if let Err(ms) = self.hands().write_turn(id) {
            return Outcome::Again {
                after_ms: ms,
                why: format!(
                    "paced: at most {} writes a minute to a gateway, 2 s apart",
                    crate::fleet::operation::pace::LIMIT
                ),
            };
        }
        match rule::want(held, id, matches) {
            Want::Put { enabled } => self.put(op, id, d, held, enabled).await,
            Want::Remove => self.remove(op, id, d).await,
        }
    }

    /// `cron.add` with the declaration's key, then `cron.get` to read back what the gateway
    /// keeps (the add's answer leaves the payload's message out: captured).
    async fn put(
        &self,
        op: &Operation,
        id: GatewayId,
        d: &Declaration,
        held: &Held,
        enabled: bool,
    ) -> Outcome {
        let mut row = DeclaredRow {
            name: d.name.clone(),
            gateway_id: id,
            revision: held.revision,
            job_id: None,
            enabled,
            config_revision: None,
            drift: "[]".into(),
            error: None,
            checked_at_ms: unix_now_ms(),
        };
        let answer = match self.hands().call(id, "cron.add", d.params(enabled)).await {
            Ok(answer) => answer,
            Err(e) => {
                let outcome = failed(&e);
                if let Outcome::Refused(words) = &outcome {
                    row.error = Some(words.clone());
                    self.record(row).await;
                }
                return outcome;
            }
        };
        let Some(job_id) = answer["job"]["id"].as_str().and_then(bounded::identifier) else {
            return Outcome::Refused("cron.add answered with no job id".into());
        };
        let job_id = job_id.to_owned();
        let live = match self
            .hands()
            .call(id, "cron.get", json!({"id": job_id}))
            .await
        {
            Ok(live) => live,
            Err(e) => {
                return Outcome::Again {
                    after_ms: AGAIN_MS,
                    why: bounded::text(&format!("written; not read back yet: {e}"), 240),
                };
            }
        };
        let drift = d.drift(&live, enabled);
        row.job_id = Some(job_id.clone());
        row.config_revision = live["configRevision"]
            .as_str()
            .map(|r| bounded::text(r, 128));
        row.drift = serde_json::to_string(&drift).unwrap_or_else(|_| "[]".into());
        self.record(row).await;
        let details = json!({"operation_id": op.id, "declaration": d.name, "job_id": job_id,
            "enabled": enabled, "created": answer["created"] == true});
        self.hands()
            .audited(&self.by, "cron.declaration.write", id, details)
            .await;
        Outcome::Put { enabled, drift }
    }

    /// `cron.remove` of each job carrying the declaration's key, as the gateway lists them now
    /// (one per step: a gateway with copies of it takes a step per copy, each paced).
    async fn remove(&self, op: &Operation, id: GatewayId, d: &Declaration) -> Outcome {
        if let Err(e) = self.cron.read(id).await {
            return Outcome::Again {
                after_ms: AGAIN_MS,
                why: bounded::text(&format!("its jobs not read: {e}"), 240),
            };
        }
        let key = d.key();
        let carrying = match self.cron.stored(move |s| s.cron_jobs_of(id)).await {
            Ok(rows) => rows
                .into_iter()
                .filter(|r| r.declaration_key.as_deref() == Some(key.as_str()))
                .map(|r| r.job_id)
                .collect::<Vec<String>>(),
            Err(e) => {
                return Outcome::Again {
                    after_ms: AGAIN_MS,
                    why: bounded::text(&format!("storage: {e}"), 240),
                };
            }
        };
        let Some(job_id) = carrying.first() else {
            let name = d.name.clone();
            if let Err(e) = self
                .cron
                .stored(move |s| s.forget_cron_declared(&name, id))
                .await
            {
                tracing::warn!(gateway_id = id.get(), %e, "a removed declared job not forgotten");
            }
            return Outcome::Removed;
        };
        match self
            .hands()
            .call(id, "cron.remove", json!({"id": job_id}))
            .await
        {
            Ok(_) => {
                let details =
                    json!({"operation_id": op.id, "declaration": d.name, "job_id": job_id});
                self.hands()
                    .audited(&self.by, "cron.declaration.remove", id, details)
                    .await;
                if let Err(e) = self.cron.read(id).await {
                    tracing::debug!(gateway_id = id.get(), %e, "cron.list not read after a removal");
                }
                Outcome::Again {
                    after_ms: 0,
                    why: "removed one copy; checking for more".into(),
                }
            }
            Err(e) => failed(&e),
        }
    }

    async fn record(&self, row: DeclaredRow) {
        let id = row.gateway_id;
        if let Err(e) = self
            .cron
            .stored(move |s| s.record_cron_declared(&row))
            .await
        {
            tracing::warn!(gateway_id = id.get(), %e, "a declared job's write not recorded");
        }
    }
}
