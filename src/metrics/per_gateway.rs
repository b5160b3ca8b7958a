//! The per-gateway gauges (`gateway_up`, `gateway_status`, `gateway_breaker_state`,
//! `gateway_consecutive_failures`, `gateway_info`, `acting_primary`), written as exposition text
//! straight from the registry's views at each scrape.
//!
//! Why not prometheus gauges: each series of a `GaugeVec` is a value with its own copy of the
//! label pairs, and gathering it copies them again into a protobuf family before the text is
//! written. At full detail (11 series a gateway) heaptrack put a scrape's peak at ~5 KB a
//! gateway for the gauges alone, on top of the text; at 19,000 gateways on one daemon that was
//! ~100 MB for the instant of every scrape, every 15–60 s. Written here, a scrape holds the
//! text and nothing else (docs/performance.md, per-gateway memory).
//!
//! The format is Prometheus' text exposition 0.0.4, as `prometheus::TextEncoder` writes it:
//! a family's `# HELP` and `# TYPE` once, then its samples, none when it has none. Label values
//! are escaped here (`\`, `"`, newline) whatever their source.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::sync::Arc;

use gateway_supervisor_actors::link_metrics::GatewayDetail;
use gateway_supervisor_actors::model::{
    BreakerState, GatewayRecord, GatewayStatus, GatewayView, LinkPhase,
};
use gateway_supervisor_actors::registry::peer_table::{Peer, PeersHeld};

const PREFIX: &str = "gateway_supervisor_";

/// Where a family's samples go: the label values (in the family's order) and the value.
type Emit<'a> = dyn FnMut(&[&str], i64) + 'a;

/// One family: its name (without the prefix), help, label names in the encoder's order (by
/// name), and each view's samples: the label values in that order (the view's id given), and
/// the value.
struct Family {
    name: &'static str,
    help: &'static str,
    labels: &'static [&'static str],
    samples: fn(&GatewayView, &str, &mut Emit),
}

const ACTING_PRIMARY: Family = Family {
    name: "acting_primary",
    help: "1 for the gateway acting as primary (the designated one, or its stand-in); no series when none is.",
    labels: &["gateway_id"],
    samples: |v, id, emit| {
        if v.acting_primary {
            emit(&[id], 1);
        }
    },
};

const BREAKER: Family = Family {
    name: "gateway_breaker_state",
    help: "1 for the gateway's circuit-breaker state (a state set).",
    labels: &["gateway_id", "state"],
    samples: |v, id, emit| {
        for (state, label) in [
            (BreakerState::Closed, "closed"),
            (BreakerState::Open, "open"),
            (BreakerState::HalfOpen, "half_open"),
        ] {
            emit(&[id, label], i64::from(v.breaker.state == state));
        }
    },
};

const FAILURES: Family = Family {
    name: "gateway_consecutive_failures",
    help: "Consecutive failures counted by the breaker.",
    labels: &["gateway_id"],
    samples: |v, id, emit| emit(&[id], i64::from(v.breaker.consecutive_failures)),
};

const INFO: Family = Family {
    name: "gateway_info",
    help: "1 per gateway with its name, its labels (`region=eu,tier=canary`: match with `labels=~\".*region=eu.*\"`), and the release, build and protocol its last hello reported.",
    labels: &[
        "build",
        "gateway_id",
        "labels",
        "name",
        "protocol",
        "version",
    ],
    samples: |v, id, emit| {
        // The version and build are the gateway's own strings, bounded by the link; not the
        // bootId (a new series at every restart). The labels' alphabet has no quote,
        // backslash or newline; escaped here all the same.
        let protocol = v.connection.protocol.map(|p| p.to_string());
        let labels = v.record.labels.to_string();
        emit(
            &[
                v.connection.build_id.as_deref().unwrap_or(""),
                id,
                labels.as_str(),
                v.record.name.as_str(),
                protocol.as_deref().unwrap_or(""),
                v.connection.server_version.as_deref().unwrap_or(""),
            ],
            1,
        );
    },
};

const STATUS_FULL: Family = Family {
    name: "gateway_status",
    help: "1 for the gateway's current status (a state set).",
    labels: &["gateway_id", "status"],
    samples: |v, id, emit| {
        for status in GatewayStatus::ALL {
            emit(&[id, status.as_str()], i64::from(status == v.record.status));
        }
    },
};

/// `basic` detail: the current status only.
const STATUS_BASIC: Family = Family {
    samples: |v, id, emit| emit(&[id, v.record.status.as_str()], 1),
    ..STATUS_FULL
};

const UP: Family = Family {
    name: "gateway_up",
    help: "1 when the gateway's socket is connected.",
    labels: &["gateway_id"],
    samples: |v, id, emit| {
        emit(
            &[id],
            i64::from(v.connection.state == Some(LinkPhase::Connected)),
        )
    },
};

/// Appends the per-gateway families for `views` and `peers` to `out`, as `detail` has them. A
/// gateway linked by another live instance of a cluster is left to that instance
/// ([`GatewayView::linked_elsewhere`], a peer's owner's heartbeat), except for
/// `acting_primary`, which every instance shows for the gateway it elects; a gateway no live
/// instance links (unplaced, or its owner gone) is shown by every instance, as its row says.
pub fn write(
    out: &mut String,
    views: &[Arc<GatewayView>],
    peers: &PeersHeld,
    detail: GatewayDetail,
) {
    let families: &[Family] = match detail {
        GatewayDetail::None => &[],
        GatewayDetail::Basic => &[INFO, STATUS_BASIC, UP],
        GatewayDetail::Full => &[BREAKER, FAILURES, INFO, STATUS_FULL, UP],
    };
    let acting = (peers.iter())
        .filter(|p| p.candidate.acting_primary)
        .map(|p| Cow::Owned(shown(p)));
    family(
        out,
        &ACTING_PRIMARY,
        views.iter().map(|v| Cow::Borrowed(&**v)).chain(acting),
    );
    for f in families {
        let here = (views.iter().map(|v| &**v))
            .filter(|v| !v.linked_elsewhere())
            .map(Cow::Borrowed);
        // One view at a time, made for the scrape and dropped: none in a placed fleet.
        let nobody_s = (peers.iter())
            .filter(|p| !p.vouched.live())
            .map(|p| Cow::Owned(shown(p)));
        family(out, f, here.chain(nobody_s));
    }
}

/// A peer as the families read a gateway not linked here: its stored status and name, no link.
fn shown(p: &Peer) -> GatewayView {
    let record = GatewayRecord {
        status: p.status,
        ..GatewayRecord::new(p.id(), p.candidate.name.to_string(), String::new(), 0)
    };
    GatewayView::unlinked(record, p.candidate.acting_primary)
}

fn family<'a>(out: &mut String, f: &Family, views: impl Iterator<Item = Cow<'a, GatewayView>>) {
    let mut header = false;
    // One buffer for every view's id, not a string allocated per family per gateway.
    let mut id = String::new();
    for v in views {
        let v = &*v;
        id.clear();
        let _ = write!(id, "{}", v.record.id);
        (f.samples)(v, &id, &mut |values, value| {
            if !header {
                header = true;
                let _ = write!(
                    out,
                    "# HELP {PREFIX}{} {}\n# TYPE {PREFIX}{} gauge\n",
                    f.name,
                    escape_help(f.help),
                    f.name
                );
            }
            let _ = write!(out, "{PREFIX}{}{{", f.name);
            for (i, (name, value)) in f.labels.iter().zip(values).enumerate() {
                let comma = if i == 0 { "" } else { "," };
                let _ = write!(out, "{comma}{name}=\"");
                escape_label(out, value);
                out.push('"');
            }
            let _ = writeln!(out, "}} {value}");
        });
    }
}

/// A label value as the text format wants it: `\`, `"` and newline escaped.
fn escape_label(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Help text as the text format wants it: `\` and newline escaped.
fn escape_help(help: &str) -> String {
    help.replace('\\', "\\\\").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use gateway_supervisor_actors::model::{
        BreakerInfo, ConnectionInfo, GatewayId, GatewayRecord, LiveReadings,
    };

    use super::*;

    fn view(id: i64, version: &str) -> Arc<GatewayView> {
        let connection = ConnectionInfo {
            server_version: Some(version.to_owned()),
            ..ConnectionInfo::default()
        };
        Arc::new(GatewayView {
            record: GatewayRecord::new(GatewayId(id), format!("gw{id}"), "127.0.0.1".into(), 1),
            acting_primary: false,
            connection: Arc::new(connection),
            breaker: BreakerInfo::default(),
            live: LiveReadings::default(),
            vouched: Default::default(),
        })
    }

    /// What a gateway reports is escaped in the text; a family with no sample (no acting
    /// primary) has no header either; each family's header comes once, before its samples.
    #[test]
    fn a_scrape_escapes_what_gateways_report_and_writes_a_family_only_with_samples() {
        let mut out = String::new();
        write(
            &mut out,
            &[view(1, "2026\"9\\x\ny"), view(2, "2026.9.6")],
            &PeersHeld::default(),
            GatewayDetail::Basic,
        );
        assert!(
            out.contains(
                "gateway_supervisor_gateway_info{build=\"\",gateway_id=\"1\",labels=\"\",name=\"gw1\",protocol=\"\",version=\"2026\\\"9\\\\x\\ny\"} 1\n"
            ),
            "{out}"
        );
        assert!(!out.contains("acting_primary"), "{out}");
        for family in ["gateway_info", "gateway_status", "gateway_up"] {
            let header = format!("# TYPE gateway_supervisor_{family} gauge\n");
            assert_eq!(out.matches(&header).count(), 1, "{out}");
            let first = out.find(&format!("gateway_supervisor_{family}{{")).unwrap();
            assert!(out.find(&header).unwrap() < first, "{out}");
        }
        assert_eq!(out.lines().count(), 3 * 2 + 3 * 2, "{out}");
    }

    /// In a cluster, a peer no live instance links (unplaced, or its owner gone) is shown by
    /// every instance as its row says — down, in its stored status — so that `max by
    /// (gateway_id)` still sees it; one whose owner lives is left to that owner; the acting
    /// primary is shown whoever links it.
    #[test]
    fn a_peer_nobody_links_is_shown_down_and_one_linked_elsewhere_is_left_to_its_owner() {
        use gateway_supervisor_actors::model::{OwnerBeat, Vouched};
        let peer = |id: i64, status, acting, owner: Option<&Arc<OwnerBeat>>| {
            let mut r = GatewayRecord::new(GatewayId(id), format!("gw{id}"), "h".into(), 1);
            r.status = status;
            let mut p = Peer::of(&r, acting);
            p.vouched = owner.map(Vouched::by).unwrap_or_default();
            p
        };
        let owner = Arc::new(OwnerBeat::default());
        let peers = PeersHeld::of(vec![
            peer(7, GatewayStatus::Offline, false, None),
            peer(8, GatewayStatus::Online, true, Some(&owner)),
        ]);
        let mut out = String::new();
        write(&mut out, &[], &peers, GatewayDetail::Basic);
        assert!(
            out.contains("gateway_supervisor_gateway_up{gateway_id=\"7\"} 0\n"),
            "{out}"
        );
        assert!(
            out.contains(
                "gateway_supervisor_gateway_status{gateway_id=\"7\",status=\"offline\"} 1\n"
            ),
            "{out}"
        );
        assert!(
            !out.contains("gateway_id=\"8\",") && !out.contains("up{gateway_id=\"8\"}"),
            "{out}"
        );
        assert!(
            out.contains("gateway_supervisor_acting_primary{gateway_id=\"8\"} 1\n"),
            "{out}"
        );
    }

    #[test]
    fn label_values_are_escaped() {
        let mut out = String::new();
        escape_label(&mut out, "a\"b\\c\nd");
        assert_eq!(out, "a\\\"b\\\\c\\nd");
    }
}
