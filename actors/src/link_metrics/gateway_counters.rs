//! The links' per-gateway counters at full detail, kept as one small table per gateway and
//! turned into metric families at each scrape.
//!
//! A prometheus series costs ~600 bytes whatever it counts: it keeps its own copy of the
//! family's description (name, help, label names) and its own label pairs. A gateway has ~8
//! counters (`gateway_rpc_calls_total` per method and outcome, probes, handshakes,
//! reconnects): ~4.5 KB of series for ~8 numbers, ~45 MB at 10,000 gateways (heaptrack,
//! docs/performance.md, *Performance*). Here a counter is its family, its other label values
//! (the daemon's own `'static` words, never a peer's) and its count — 40 bytes.
//!
//! Which gateways are kept is the table's keys: a gateway is [`track`](GatewayCounters::track)ed
//! when its link starts and [`forget`](GatewayCounters::forget)ten when it is deleted, and a
//! count for a gateway not in the table is dropped (a late write after a delete).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use prometheus::core::{Collector, Desc};
use prometheus::proto::{Counter, LabelPair, Metric, MetricFamily, MetricType};

use crate::model::GatewayId;

/// One of the counter families kept per gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    Reconnects,
    HandshakeFailures,
    RpcCalls,
    Probes,
}

impl Family {
    pub const ALL: [Family; 4] = [
        Family::Reconnects,
        Family::HandshakeFailures,
        Family::RpcCalls,
        Family::Probes,
    ];

    /// Where it is in [`Family::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// Name, help, and the labels after `gateway_id`.
    pub fn describe(self) -> (&'static str, &'static str, &'static [&'static str]) {
        match self {
            Family::Reconnects => (
                "gateway_reconnects_total",
                "Connection attempts after the first.",
                &[],
            ),
            Family::HandshakeFailures => (
                "gateway_handshake_failures_total",
                "Failed connects and handshakes by error code.",
                &["code"],
            ),
            Family::RpcCalls => (
                "gateway_rpc_calls_total",
                "RPC calls to gateways by method and outcome.",
                &["method", "outcome"],
            ),
            Family::Probes => (
                "gateway_probes_total",
                "Health probes by outcome (healthy, unhealthy, timeout).",
                &["outcome"],
            ),
        }
    }
}

/// One counter of one gateway: its family, its other label values, its count.
type Count = (Family, [&'static str; 2], u64);

/// The per-gateway counters, a prometheus collector of their four families. A clone shares
/// the table (as prometheus' own vectors do): the links write it, the registry collects it.
#[derive(Clone)]
pub struct GatewayCounters {
    descs: Arc<[Desc]>,
    table: Arc<Mutex<HashMap<GatewayId, Vec<Count>>>>,
}

impl GatewayCounters {
    pub fn new() -> Result<Self, prometheus::Error> {
        let descs = Family::ALL
            .into_iter()
            .map(|f| {
                let (name, help, rest) = f.describe();
                let mut labels = vec!["gateway_id".to_owned()];
                labels.extend(rest.iter().map(|l| (*l).to_owned()));
                Desc::new(name.to_owned(), help.to_owned(), labels, HashMap::new())
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(GatewayCounters {
            descs: descs.into(),
            table: Arc::default(),
        })
    }

    fn table(&self) -> std::sync::MutexGuard<'_, HashMap<GatewayId, Vec<Count>>> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The gateway's counters may be written (its link is starting).
    pub fn track(&self, id: GatewayId) {
        self.table().entry(id).or_default();
    }

    /// The gateway is gone, with its counters; a later write for it is dropped.
    pub fn forget(&self, id: GatewayId) {
        self.table().remove(&id);
    }

    /// `make`'s result while the gateway is kept, made under the table's lock (a
    /// [`forget`](Self::forget) comes wholly before or after it).
    pub fn while_tracked<T>(&self, id: GatewayId, make: impl FnOnce() -> T) -> Option<T> {
        let table = self.table();
        table.contains_key(&id).then(make)
    }

    /// Adds one to the gateway's counter of `family` with the other label values `rest` (as
    /// many as the family has; the daemon's own words).
    pub fn inc(&self, id: GatewayId, family: Family, rest: &[&'static str]) {
        let key = [
            rest.first().copied().unwrap_or(""),
            rest.get(1).copied().unwrap_or(""),
        ];
        let mut table = self.table();
        let Some(counts) = table.get_mut(&id) else {
            return;
        };
        match counts
            .iter_mut()
            .find(|(f, k, _)| *f == family && *k == key)
        {
            Some((_, _, n)) => *n += 1,
            None => {
                // One more slot, not double: a gateway gathers 5–8 counters, once each, and a
                // doubled vector kept room for 8 of 48 bytes from the fifth on.
                counts.reserve_exact(1);
                counts.push((family, key, 1));
            }
        }
    }
}

fn pair(name: &str, value: &str) -> LabelPair {
    let mut p = LabelPair::default();
    p.set_name(name.to_owned());
    p.set_value(value.to_owned());
    p
}

impl Collector for GatewayCounters {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    /// Built at the scrape, let go after it; label pairs sorted by name, as prometheus' own
    /// vectors write them.
    fn collect(&self) -> Vec<MetricFamily> {
        // The counts copied out under the lock (a few MB at 10,000 gateways), the series built
        // after it: a link's count does not wait for the scrape's allocations.
        let counts: Vec<(GatewayId, Count)> = self
            .table()
            .iter()
            .flat_map(|(id, counts)| counts.iter().map(|c| (*id, *c)))
            .collect();
        let mut metrics: [Vec<Metric>; 4] = Default::default();
        for (id, (family, values, n)) in counts {
            let (_, _, rest) = family.describe();
            let mut labels = vec![pair("gateway_id", &id.to_string())];
            labels.extend(rest.iter().zip(values).map(|(name, v)| pair(name, v)));
            labels.sort_by(|a, b| a.name().cmp(b.name()));
            let mut counter = Counter::default();
            counter.set_value(n as f64);
            let mut m = Metric::from_label(labels);
            m.set_counter(counter);
            metrics[family.index()].push(m);
        }
        metrics
            .into_iter()
            .zip(self.descs.iter())
            .filter(|(ms, _)| !ms.is_empty())
            .map(|(ms, desc)| {
                // In no order: the registry's gather sorts each family's series.
                let mut f = MetricFamily::default();
                f.set_name(desc.fq_name.clone());
                f.set_help(desc.help.clone());
                f.set_field_type(MetricType::COUNTER);
                f.set_metric(ms);
                f
            })
            .collect()
    }
}
