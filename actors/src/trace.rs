//! W3C trace context (`traceparent`) from an API request to the gateway calls it causes.
//!
//! The HTTP layer takes a caller's `traceparent` (or starts a trace) and runs the request in
//! [`CURRENT`]; a gateway call made while handling it carries a child context — the same trace
//! id, a span id of its own — in the request frame's `traceparent`, so the gateway's own
//! diagnostics (2026.9's OpenTelemetry plugin reads it) join the caller's trace. Only gateways
//! whose request frame has the field get it: frames are closed objects, and releases before
//! 2026.9 have no `traceparent` ([`accepts_traceparent`]).

use std::fmt;

tokio::task_local! {
    /// The trace of the API request being handled.
    pub static CURRENT: TraceContext;
}

/// The oldest release verified to accept `traceparent` on a request frame (2026.9.6's frame
/// schema: `traceparent?: string ≤ 128`; 2026.2.25's and 2026.3.31's have no such key).
const FIRST_RELEASE_WITH_TRACEPARENT: (u32, u32, u32, u32) = (2026, 9, 6, 0);

#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TraceContext {
    trace_id: [u8; 16],
    span_id: [u8; 8],
    flags: u8,
}

impl fmt::Debug for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.traceparent())
    }
}

impl TraceContext {
    /// A `traceparent` header as W3C Trace Context level 1 reads it: version `00` with exactly
    /// four fields, or a later version with at least them; lower-case hex; neither id all
    /// zeros. Anything else is `None` (the request starts a trace of its own).
    pub fn parse(header: &str) -> Option<TraceContext> {
        let header = header.trim();
        let mut fields = header.split('-');
        let version = fields.next()?;
        let (trace, span, flags) = (fields.next()?, fields.next()?, fields.next()?);
        let version = hex::<1>(version)?[0];
        if version == 0xff || (version == 0 && fields.next().is_some()) {
            return None;
        }
        let (trace_id, span_id) = (hex::<16>(trace)?, hex::<8>(span)?);
        if trace_id == [0; 16] || span_id == [0; 8] {
            return None;
        }
        Some(TraceContext {
            trace_id,
            span_id,
            flags: hex::<1>(flags)?[0],
        })
    }

    /// A new trace (sampled), its ids random.
    pub fn root() -> TraceContext {
        let mut trace_id = [0u8; 16];
        trace_id[..8].copy_from_slice(&random_u64().to_be_bytes());
        trace_id[8..].copy_from_slice(&random_u64().to_be_bytes());
        TraceContext {
            trace_id,
            span_id: random_u64().to_be_bytes(),
            flags: 0x01,
        }
    }

    /// The same trace, a new span (for one call made on its behalf).
    pub fn child(&self) -> TraceContext {
        TraceContext {
            span_id: random_u64().to_be_bytes(),
            ..*self
        }
    }

    /// The same trace, span `span_id` (a span an exporter created for the call).
    pub fn with_span_id(&self, span_id: [u8; 8]) -> TraceContext {
        if span_id == [0; 8] {
            return self.child();
        }
        TraceContext { span_id, ..*self }
    }

    /// `00-<trace id>-<span id>-<flags>`.
    pub fn traceparent(&self) -> String {
        format!(
            "00-{}-{}-{:02x}",
            self.trace_id(),
            self.span_id(),
            self.flags
        )
    }

    /// The raw ids and flags (for an exporter's own context type).
    pub fn ids(&self) -> ([u8; 16], [u8; 8], u8) {
        (self.trace_id, self.span_id, self.flags)
    }

    /// The trace id as 32 hex digits (`Display`; `to_string()` for a `String`).
    pub fn trace_id(&self) -> Hex<16> {
        Hex(self.trace_id)
    }

    /// The span id as 16 hex digits.
    pub fn span_id(&self) -> Hex<8> {
        Hex(self.span_id)
    }
}

/// Where the span id of a gateway call comes from when spans are exported: the exported
/// `gateway.call` span's own (set once at start by the exporter), so the gateway's spans hang
/// under a span the collector holds. Without it, a fresh id.
static CALL_SPAN_ID: std::sync::OnceLock<fn() -> Option<[u8; 8]>> = std::sync::OnceLock::new();

/// Installs the exporter's reader of the current span's id (once; later calls are ignored).
pub fn set_call_span_id_source(source: fn() -> Option<[u8; 8]>) {
    let _ = CALL_SPAN_ID.set(source);
}

/// The `traceparent` for a gateway call made now: a child of the request being handled, if any.
pub fn for_call() -> Option<String> {
    CURRENT
        .try_with(|c| match CALL_SPAN_ID.get().and_then(|source| source()) {
            Some(span_id) => c.with_span_id(span_id),
            None => c.child(),
        })
        .ok()
        .map(|c| c.traceparent())
}

/// Whether a gateway of `version` (its hello's `server.version`) takes `traceparent`.
pub fn accepts_traceparent(version: Option<&str>) -> bool {
    version
        .and_then(crate::protocol::version::calver)
        .is_some_and(|v| v >= FIRST_RELEASE_WITH_TRACEPARENT)
}

/// A non-zero random id. Trace ids need to be unique, not secret: a SplitMix64 sequence per
/// thread, seeded once from the kernel, instead of a `getrandom` system call per API request
/// on the busiest routes.
fn random_u64() -> u64 {
    use std::cell::Cell;
    thread_local! {
        static STATE: Cell<u64> = Cell::new(seed());
    }
    fn seed() -> u64 {
        let mut b = [0u8; 8];
        if getrandom::getrandom(&mut b).is_ok() {
            return u64::from_le_bytes(b);
        }
        // No randomness: distinct per thread and process is enough to tell traces apart.
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        (crate::unix_now_ms() as u64) << 20
            ^ u64::from(std::process::id())
            ^ NEXT.fetch_add(0x9E37_79B9, std::sync::atomic::Ordering::Relaxed)
    }
    STATE.with(|state| {
        loop {
            let x = state.get().wrapping_add(0x9E37_79B9_7F4A_7C15);
            state.set(x);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            if z != 0 {
                return z;
            }
        }
    })
}

fn hex<const N: usize>(s: &str) -> Option<[u8; N]> {
    if s.len() != 2 * N
        || !s
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return None;
    }
    let mut out = [0u8; N];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// Bytes shown as lower-case hex digits, written in one piece: at the default log level every
/// request's span and access line show its trace id, and formatted a byte at a time (`{:02x}`
/// sixteen times, collected into a `String`) a cached read ran 70,000 instructions where it now
/// runs 51,000 (callgrind; docs/design.md *Serving reads*, "At the default log level").
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Hex<const N: usize>(pub [u8; N]);

impl<const N: usize> std::fmt::Display for Hex<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.pieces(|digits| f.write_str(digits).is_ok()) {
            Ok(())
        } else {
            Err(std::fmt::Error)
        }
    }
}

impl<const N: usize> std::fmt::Debug for Hex<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

impl<const N: usize> PartialEq<&str> for Hex<N> {
    fn eq(&self, other: &&str) -> bool {
        let mut rest = *other;
        self.pieces(|digits| match rest.strip_prefix(digits) {
            Some(after) => {
                rest = after;
                true
            }
            None => false,
        }) && rest.is_empty()
    }
}

impl<const N: usize> Hex<N> {
    /// Hands `each` the digits a stack buffer's worth at a time (no allocation), while it
    /// returns true; true when every piece was taken. The digits come from a table, not from
    /// `hex::encode_to_slice`: that walks two stepped index ranges per byte, and at `info` it
    /// cost a cached read 1,000 instructions where the table costs 460 with its formatting
    /// (callgrind, 51,978 against 51,064 a request, 2026-11-28).
    fn pieces(&self, mut each: impl FnMut(&str) -> bool) -> bool {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut buf = [0u8; 64];
        self.0.chunks(buf.len() / 2).all(|chunk| {
            let out = &mut buf[..2 * chunk.len()];
            for (pair, byte) in out.chunks_exact_mut(2).zip(chunk) {
                pair[0] = DIGITS[usize::from(byte >> 4)];
                pair[1] = DIGITS[usize::from(byte & 0x0f)];
            }
            // Only ASCII digits were written.
            std::str::from_utf8(out).is_ok_and(&mut each)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIVEN: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn ids_are_shown_as_lower_case_hex_of_every_byte() {
        assert_eq!(Hex([0x00, 0x0f, 0xa0, 0xff]).to_string(), "000fa0ff");
        assert_eq!(Hex([0xab; 40]).to_string(), "ab".repeat(40));
        assert_eq!(Hex::<0>([]).to_string(), "");
        let c = TraceContext::parse(GIVEN).unwrap();
        assert_eq!(c.traceparent(), GIVEN);
        assert_eq!(format!("{:?}", c.span_id()), "00f067aa0ba902b7");
        assert_ne!(c.span_id(), "00f067aa0ba902b8");
        assert_ne!(c.span_id(), "00f067aa0ba902b");
    }

    #[test]
    fn a_call_can_take_an_exported_span_s_id_in_the_same_trace() {
        let given = TraceContext::parse(GIVEN).unwrap();
        let call = given.with_span_id([7; 8]);
        assert_eq!(call.trace_id(), given.trace_id());
        assert_eq!(call.span_id(), "0707070707070707");
        assert_ne!(given.with_span_id([0; 8]).span_id(), "0000000000000000");
    }

    #[test]
    fn a_valid_header_is_kept_and_a_child_shares_its_trace() {
        let c = TraceContext::parse(GIVEN).unwrap();
        assert_eq!(c.traceparent(), GIVEN);
        let child = c.child();
        assert_eq!(child.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_ne!(child.span_id(), c.span_id());
        assert!(child.traceparent().ends_with("-01"));
        // A later version may add fields; the first four are read.
        assert!(TraceContext::parse(&format!("01{}-extra", &GIVEN[2..])).is_some());
    }

    #[test]
    fn malformed_headers_start_a_new_trace() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
            "0x-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            assert_eq!(TraceContext::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_root_is_well_formed_and_new_each_time() {
        let (a, b) = (TraceContext::root(), TraceContext::root());
        assert_ne!(a.trace_id(), b.trace_id());
        assert_eq!(TraceContext::parse(&a.traceparent()), Some(a));
        assert_eq!(a.traceparent().len(), 55);
    }

    #[test]
    fn only_releases_with_the_field_get_it() {
        assert!(accepts_traceparent(Some("2026.9.6")));
        assert!(accepts_traceparent(Some("2026.10.1")));
        assert!(!accepts_traceparent(Some("2026.3.31")));
        assert!(!accepts_traceparent(Some("2026.2.25")));
        assert!(!accepts_traceparent(Some("dev")));
        assert!(!accepts_traceparent(None));
    }

    #[tokio::test]
    async fn a_call_inside_a_request_carries_a_child_of_its_trace() {
        assert_eq!(for_call(), None);
        let c = TraceContext::parse(GIVEN).unwrap();
        let sent = CURRENT.scope(c, async { for_call() }).await.unwrap();
        let sent = TraceContext::parse(&sent).unwrap();
        assert_eq!(sent.trace_id(), c.trace_id());
        assert_ne!(sent.span_id(), c.span_id());
    }
}
