//! The registry's store writer: the links' background writes (link state, device tokens,
//! health samples, pruning, audit rows of link events) on one thread, gathered into batches,
//! off every hot path. Registry mutations do not come here: they are written in the registry's
//! own turn (docs/design.md, *Consistency model*).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use secrecy::SecretString;
use tokio::sync::oneshot;
use tracing::{debug, warn};

use crate::link::messages::HealthSample;
use crate::model::{Caller, GatewayId};
use crate::store::{GatewayStore, LinkRecord, StoreError};

pub(super) enum WriteOp {
    Audit(&'static str, Option<GatewayId>, serde_json::Value),
    Link(GatewayId, LinkRecord),
    DeviceToken(GatewayId, Option<SecretString>),
    Sample(HealthSample),
    Prune(i64),
    /// Acknowledged once everything queued before it is written (shutdown).
    Flush(oneshot::Sender<()>),
}

/// Serialises the links' background writes on one thread, gathered into batches.
#[derive(Clone)]
pub(super) struct StoreWriter {
    tx: mpsc::Sender<WriteOp>,
}

impl StoreWriter {
    pub(super) fn spawn(store: Arc<dyn GatewayStore>) -> Result<Self, StoreError> {
        let (tx, rx) = mpsc::channel::<WriteOp>();
        std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || {
                // Whatever queued up while the last write ran goes in one batch: link reports
                // and samples of a large fleet cost one transaction (one fsync), not one each.
                while let Ok(first) = rx.recv() {
                    let batch = WriteBatch::collect(first, &rx);
                    for err in batch.apply(store.as_ref()) {
                        warn!(%err, "background store write failed");
                    }
                }
            })
            .map_err(StoreError::backend)?;
        Ok(StoreWriter { tx })
    }

    /// Fires once everything queued before it is written (`None`: the writer is gone).
    pub(super) fn flushed(&self) -> Option<oneshot::Receiver<()>> {
        let (ack, written) = oneshot::channel();
        self.tx.send(WriteOp::Flush(ack)).ok().map(|()| written)
    }

    pub(super) fn send(&self, op: WriteOp) {
        // Only fails after the writer thread died, which is logged there.
        let _ = self.tx.send(op);
    }
}

/// Background writes collected for one go: the latest link record per gateway, samples in
/// order, the rest (rare) as they came.
#[derive(Default)]
struct WriteBatch {
    links: Vec<(GatewayId, LinkRecord)>,
    link_index: HashMap<GatewayId, usize>,
    samples: Vec<HealthSample>,
    others: Vec<WriteOp>,
    flushed: Vec<oneshot::Sender<()>>,
    len: usize,
}

impl WriteBatch {
    /// Bounded so one transaction never holds the database for long.
    const MAX: usize = 2_000;
    /// How long link reports and samples are gathered after the first: with 10,000 gateways
    /// they arrive a few hundred a second, and each transaction costs an fsync.
    const WINDOW: Duration = Duration::from_millis(200);

    fn collect(first: WriteOp, rx: &mpsc::Receiver<WriteOp>) -> WriteBatch {
        let mut batch = WriteBatch::default();
        let mut urgent = batch.add(first);
        let deadline = std::time::Instant::now() + Self::WINDOW;
        while !urgent && batch.len < Self::MAX {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(left) {
                Ok(op) => urgent = batch.add(op),
                Err(_) => break,
            }
        }
        batch
    }

    /// Adds `op`; true when it should be written without waiting for more (device tokens,
    /// audit rows, flushes).
    fn add(&mut self, op: WriteOp) -> bool {
        self.len += 1;
        match op {
            WriteOp::Link(id, rec) => match self.link_index.get(&id) {
                Some(&i) => self.links[i].1 = rec,
                None => {
                    self.link_index.insert(id, self.links.len());
                    self.links.push((id, rec));
                }
            },
            WriteOp::Sample(s) => self.samples.push(s),
            WriteOp::Flush(ack) => {
                self.flushed.push(ack);
                return true;
            }
            other => self.others.push(other),
        }
        !self.others.is_empty()
    }

    fn apply(self, store: &dyn GatewayStore) -> Vec<StoreError> {
        let mut errors = Vec::new();
        if !self.links.is_empty()
            && let Err(e) = store.save_link_records(&self.links)
        {
            errors.push(e);
        }
        if !self.samples.is_empty()
            && let Err(e) = store.add_health_samples(&self.samples)
        {
            errors.push(e);
        }
        for op in self.others {
            let result = match &op {
                WriteOp::Audit(action, id, details) => {
                    store.record_audit(&Caller::system("election"), action, *id, details)
                }
                WriteOp::DeviceToken(id, token) => store.save_device_token(*id, token.as_ref()),
                WriteOp::Prune(before) => store.prune_health_samples(*before).map(|n| {
                    if n > 0 {
                        debug!(pruned = n, "old health samples pruned");
                    }
                }),
                WriteOp::Link(..) | WriteOp::Sample(_) | WriteOp::Flush(_) => Ok(()),
            };
            if let Err(e) = result {
                errors.push(e);
            }
        }
        for ack in self.flushed {
            let _ = ack.send(());
        }
        errors
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::GatewayStatus;

    fn link(last_seen: i64) -> LinkRecord {
        LinkRecord {
            status: GatewayStatus::Online,
            last_seen: Some(last_seen),
            latency: Some(1),
            sessions_count: 0,
            agents_count: 0,
        }
    }

    #[test]
    fn a_batch_keeps_the_latest_link_record_per_gateway_and_every_sample() {
        let (tx, rx) = mpsc::channel();
        for (id, seen) in [(1, 10), (2, 20), (1, 30)] {
            tx.send(WriteOp::Link(GatewayId(id), link(seen))).unwrap();
        }
        tx.send(WriteOp::Prune(5)).unwrap();
        let batch = WriteBatch::collect(WriteOp::Link(GatewayId(3), link(40)), &rx);
        let seen: Vec<(GatewayId, Option<i64>)> = batch
            .links
            .iter()
            .map(|(id, r)| (*id, r.last_seen))
            .collect();
        assert_eq!(
            seen,
            vec![
                (GatewayId(3), Some(40)),
                (GatewayId(1), Some(30)),
                (GatewayId(2), Some(20))
            ]
        );
        assert_eq!(batch.others.len(), 1, "the prune ends the batch");
    }

    #[test]
    fn urgent_writes_end_the_gathering_window_at_once() {
        let (tx, rx) = mpsc::channel();
        let (ack, _done) = oneshot::channel();
        let started = std::time::Instant::now();
        let batch = WriteBatch::collect(WriteOp::Flush(ack), &rx);
        assert!(
            started.elapsed() < WriteBatch::WINDOW,
            "no wait after a flush"
        );
        assert_eq!(batch.flushed.len(), 1);
        drop(tx);
        // Link reports alone wait for company, up to the window.
        let (tx, rx) = mpsc::channel();
        let started = std::time::Instant::now();
        let batch = WriteBatch::collect(WriteOp::Link(GatewayId(1), link(1)), &rx);
        assert!(started.elapsed() >= WriteBatch::WINDOW);
        assert_eq!(batch.links.len(), 1);
        drop(tx);
    }
}
