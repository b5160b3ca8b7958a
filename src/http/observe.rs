//! The outermost layer of every listener: each request gets an id and a trace, its route,
//! status and duration are recorded (bounded label set) and, with `log.access`, one access line
//! is written (never query strings, headers or bodies); a request whose body was not read to
//! the end has its connection closed after the response instead of drained.
//!
//! One hand-written service with a named future, not `from_fn` layers: each `from_fn` layer
//! boxed its future and its `Next` on every request. Serving a cached `GET /api/sessions` the
//! daemon spent 13.1–14.7 µs of CPU per request against the static limit's 9.8–10.4
//! (docs/design.md "Serving reads"). The route's label, taken by walking the resource map again
//! and formatted into a new `String` per request, and its series, looked up by hashing the
//! labels into the metric vectors, are now kept per route and worker ([`RouteSeries`]).

use std::cell::{OnceCell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use actix_web::body::{BodySize, BoxBody, EitherBody, MessageBody};
use actix_web::dev::{Payload, Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use actix_web::web::Bytes;
use actix_web::{Error, HttpMessage, HttpRequest};
use futures_util::StreamExt;
use gateway_supervisor_actors::trace::{CURRENT, TraceContext};
use prometheus::{Histogram, IntCounter};
use tokio::task::futures::TaskLocalFuture;
use tracing::instrument::{Instrument, Instrumented};

use super::middleware::method_label;
use crate::auth::Principal;
use crate::metrics::Metrics;
use crate::metrics::http::WorkerSeries;

/// The layer: `App::new().wrap(Observe::new(metrics, access_log))`.
#[derive(Clone)]
pub struct Observe {
    shared: Rc<Shared>,
}

struct Shared {
    /// This worker's own request series.
    series: WorkerSeries,
    /// `log.access`: one line per request.
    access_log: bool,
}

impl Observe {
    pub fn new(metrics: std::sync::Arc<Metrics>, access_log: bool) -> Self {
        Observe {
            shared: Rc::new(Shared {
                series: metrics.http.worker(),
                access_log,
            }),
        }
    }
}

impl<S, B> Transform<S, ServiceRequest> for Observe
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B, HoldPayload>>;
    type Error = Error;
    type Transform = ObserveService<S>;
    type InitError = ();
    type Future = std::future::Ready<Result<Self::Transform, ()>>;

    fn new_transform(&self, service: S) -> Self::Future {
        std::future::ready(Ok(ObserveService {
            service,
            shared: Rc::clone(&self.shared),
        }))
    }
}

pub struct ObserveService<S> {
    service: S,
    shared: Rc<Shared>,
}

impl<S, B> Service<ServiceRequest> for ObserveService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B, HoldPayload>>;
    type Error = Error;
    type Future = ObserveFuture<S::Future>;

    actix_web::dev::forward_ready!(service);

    fn call(&self, mut req: ServiceRequest) -> Self::Future {
        let started = Instant::now();
        let method = method_label(req.method());
        let given = Given::of(req.headers());
        let trace = given.trace_context();
        let id = request_id(req.headers_mut(), given.request_id);
        let payload = hold_unread_body(&mut req);
        let span = tracing::info_span!("request", request_id = %text(&id), trace_id = %trace.trace_id(), %method);
        if crate::otel::enabled() {
            use tracing_opentelemetry::OpenTelemetrySpanExt;
            let _ = span.set_parent(crate::otel::parent(&trace));
        }
        ObserveFuture {
            inner: CURRENT
                .scope(trace, self.service.call(req))
                .instrument(span),
            pending: Some(Pending {
                started,
                method,
                id,
                trace,
                payload,
                shared: Rc::clone(&self.shared),
            }),
        }
    }
}

pin_project_lite::pin_project! {
    /// The request's own future, then the record of how it ended.
    pub struct ObserveFuture<F> {
        #[pin]
        inner: Instrumented<TaskLocalFuture<TraceContext, F>>,
        pending: Option<Pending>,
    }
}

/// What the record needs once the response is there.
struct Pending {
    started: Instant,
    method: &'static str,
    id: HeaderValue,
    trace: TraceContext,
    payload: Option<Rc<RefCell<Payload>>>,
    shared: Rc<Shared>,
}

impl<F, B> Future for ObserveFuture<F>
where
    F: Future<Output = Result<ServiceResponse<B>, Error>>,
    B: MessageBody + 'static,
{
    type Output = Result<ServiceResponse<EitherBody<B, HoldPayload>>, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = ready!(this.inner.poll(cx));
        Poll::Ready(match this.pending.take() {
            Some(pending) => pending.finish(result),
            // Polled again after it finished: actix never does; nothing is recorded twice.
            None => result.map(ServiceResponse::map_into_left_body),
        })
    }
}

impl Pending {
    fn finish<B: MessageBody + 'static>(
        self,
        mut result: Result<ServiceResponse<B>, Error>,
    ) -> Result<ServiceResponse<EitherBody<B, HoldPayload>>, Error> {
        let shared = &self.shared;
        let elapsed = self.started.elapsed();
        let access = access_line(shared);
        let (status, key_id, series, label) = match &mut result {
            Ok(res) => {
                res.headers_mut().insert(REQUEST_ID_HEADER, self.id.clone());
                let req = res.request();
                // The key only matters to the access line, when it is written.
                let key_id = access
                    .then(|| req.extensions().get::<Principal>().map(|p| p.key_id))
                    .flatten();
                let series = req.app_data::<RouteSeries>();
                let label = series.map_or_else(|| pattern_label(req).into(), |s| s.label(req));
                (res.status(), key_id, series, label)
            }
            Err(err) => (
                err.as_response_error().status_code(),
                None,
                None,
                Rc::from("rejected"),
            ),
        };
        let route: &str = &label;
        match series {
            Some(series) => series.record(&shared.series, self.method, status, route, elapsed),
            // A request no resource of ours answered has its series looked up each time.
            None => {
                RouteSeries::default().record(&shared.series, self.method, status, route, elapsed)
            }
        }
        if access {
            // The route pattern, never the raw path (ids and keys in paths stay out of the log).
            let key = key_id.map_or_else(|| "-".to_owned(), |k| k.to_string());
            tracing::info!(target: "access", request_id = %text(&self.id), trace_id = %self.trace.trace_id(), method = %self.method, route = %route, status = status.as_u16(), elapsed_ms = (elapsed.as_secs_f64() * 1e4).round() / 10.0, key_id = %key, "request");
        }
        let res = result?;
        Ok(match self.payload {
            None => res.map_into_left_body(),
            Some(payload) => res
                .map_into_boxed_body()
                .map_body(move |_, body| HoldPayload {
                    body,
                    _payload: payload,
                })
                .map_into_right_body(),
        })
    }
}

/// Whether this request's access line is written: `log.access` and a log level that keeps
/// it (the key's id is formatted for the line only then).
fn access_line(shared: &Shared) -> bool {
    shared.access_log && tracing::enabled!(target: "access", tracing::Level::INFO)
}

/// A resource's series, kept per worker: its route as a label (`/api/gateways/{id}`), worked
/// out from its pattern the first time the resource answers, and the handles of the series it
/// has counted into, so that a request is counted without its labels being hashed into the
/// metric vectors again. Every resource the daemon registers carries one (`http::resource`);
/// a request no such resource answered is labelled by the pattern actix matched, if any (the
/// API viewer's files), else `unmatched`. Bounded: a method label (ten) by the statuses the
/// route answers.
#[derive(Default)]
pub struct RouteSeries {
    label: OnceCell<Rc<str>>,
    counts: RefCell<Vec<(&'static str, StatusCode, IntCounter)>>,
    durations: RefCell<Vec<(&'static str, Histogram)>>,
}

impl RouteSeries {
    fn label(&self, req: &HttpRequest) -> Rc<str> {
        Rc::clone(self.label.get_or_init(|| pattern_label(req).into()))
    }

    fn record(
        &self,
        worker: &WorkerSeries,
        method: &'static str,
        status: StatusCode,
        route: &str,
        elapsed: std::time::Duration,
    ) {
        let mut counts = self.counts.borrow_mut();
        match counts.iter().find(|(m, s, _)| *m == method && *s == status) {
            Some((_, _, count)) => count.inc(),
            None => {
                let count = worker
                    .requests
                    .with_label_values(&[method, route, status.as_str()]);
                count.inc();
                counts.push((method, status, count));
            }
        }
        let mut durations = self.durations.borrow_mut();
        match durations.iter().find(|(m, _)| *m == method) {
            Some((_, duration)) => duration.observe(elapsed.as_secs_f64()),
            None => {
                let duration = worker.duration.with_label_values(&[method, route]);
                duration.observe(elapsed.as_secs_f64());
                durations.push((method, duration));
            }
        }
    }
}

fn pattern_label(req: &HttpRequest) -> String {
    req.match_pattern()
        .map_or_else(|| "unmatched".into(), |p| route_label(&p))
}

/// Keeps the payload of a request that has a body until its response has been written.
///
/// actix drains the rest of an unread chunked body to keep the connection alive; a refused
/// client whose body never ends (401 before the body is read, say) then holds its socket for
/// as long as it likes. With its payload kept alive until the response has been written, actix
/// answers with `Connection: close` and drops the socket (after `client_disconnect_timeout`)
/// instead of draining. A fully read body changes nothing. Refusals arrive as responses (the
/// route's own, `roles.rs`; the gated 404 and 405, `http::unrouted`), so they carry the payload
/// too.
fn hold_unread_body(req: &mut ServiceRequest) -> Option<Rc<RefCell<Payload>>> {
    // Most requests (every GET) have no body: nothing to hold, and their responses keep
    // actix's whole-body fast path. actix gives a request without one no payload at all, which
    // says so without a lookup of a header by name.
    if matches!(req.parts_mut().1, Payload::None) {
        return None;
    }
    let headers = req.headers();
    let has_body = headers.contains_key(actix_web::http::header::TRANSFER_ENCODING)
        || headers
            .get(actix_web::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim() != "0");
    if !has_body {
        return None;
    }
    let original = Rc::new(RefCell::new(req.take_payload()));
    let reader = Rc::clone(&original);
    let proxy = futures_util::stream::poll_fn(move |cx| reader.borrow_mut().poll_next_unpin(cx));
    req.set_payload(Payload::Stream {
        payload: Box::pin(proxy),
    });
    Some(original)
}

/// A response body that keeps the request's payload alive until it is dropped.
pub struct HoldPayload {
    body: BoxBody,
    _payload: Rc<RefCell<Payload>>,
}

impl MessageBody for HoldPayload {
    type Error = <BoxBody as MessageBody>::Error;

    fn size(&self) -> BodySize {
        self.body.size()
    }

    fn poll_next(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        Pin::new(&mut self.body).poll_next(cx)
    }
}

pub const REQUEST_ID: &str = "x-request-id";
/// Looked up by `&str`, a header's name is parsed again on every request.
pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static(REQUEST_ID);
const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");

/// What a client may have said about its request's identity, found in one pass over its
/// headers: a lookup by name hashes the name (SipHash) each time, and most requests carry
/// neither. The first value of each, as a lookup finds.
struct Given {
    request_id: Option<HeaderValue>,
    traceparent: Option<HeaderValue>,
}

impl Given {
    fn of(headers: &HeaderMap) -> Self {
        let mut given = Given {
            request_id: None,
            traceparent: None,
        };
        for (name, value) in headers {
            if *name == REQUEST_ID_HEADER {
                given.request_id.get_or_insert_with(|| value.clone());
            } else if *name == TRACEPARENT {
                given.traceparent.get_or_insert_with(|| value.clone());
            }
        }
        given
    }

    /// The request's trace: the caller's `traceparent` when it is well formed, else a new one.
    fn trace_context(&self) -> TraceContext {
        self.traceparent
            .as_ref()
            .and_then(|v| v.to_str().ok())
            .and_then(TraceContext::parse)
            .unwrap_or_else(TraceContext::root)
    }
}

/// A request's id: the client's `X-Request-Id` when it is a plain token (1–128 of
/// `A-Z a-z 0-9 . _ -`), else a new random one, which takes the place of the client's in the
/// request's headers. Whatever else records the request reads it there (a hop to another
/// instance passes it on); it is echoed in the response and logged in the access line.
fn request_id(headers: &mut HeaderMap, given: Option<HeaderValue>) -> HeaderValue {
    if let Some(given) = given.filter(|v| {
        let id = v.as_bytes();
        (1..=128).contains(&id.len())
            && id
                .iter()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
    }) {
        return given;
    }
    // Its own allocation, shared by the request's header and the response's (a `String` made
    // into a header and cloned was two).
    let made = HeaderValue::from_maybe_shared(Bytes::from_owner(new_request_id()))
        .unwrap_or_else(|_| HeaderValue::from_static("0"));
    headers.insert(REQUEST_ID_HEADER, made.clone());
    made
}

/// A request id as text (it is a plain token: see [`request_id`]).
fn text(id: &HeaderValue) -> &str {
    id.to_str().unwrap_or("-")
}

/// 32 hex digits: a random half drawn once per process, then a count — unique without a trip
/// to the kernel's randomness on every request. Each thread counts in a block of its own (its
/// number in the top 24 bits, 2^40 ids a block, reused after that): one counter for the process
/// was a cache line every worker wrote on every request.
fn new_request_id() -> [u8; 32] {
    use std::sync::atomic::{AtomicU64, Ordering};
    const BLOCK_BITS: u32 = 40;
    static PREFIX: std::sync::OnceLock<[u8; 16]> = std::sync::OnceLock::new();
    static THREADS: AtomicU64 = AtomicU64::new(0);
    thread_local! {
        static COUNT: std::cell::Cell<(u64, u64)> =
            std::cell::Cell::new((THREADS.fetch_add(1, Ordering::Relaxed) << BLOCK_BITS, 0));
    }
    let prefix = PREFIX.get_or_init(|| {
        let hex = crate::secrets::random_hex::<8>()
            .unwrap_or_else(|_| format!("{:016x}", std::process::id()));
        std::array::from_fn(|i| hex.as_bytes().get(i).copied().unwrap_or(b'0'))
    });
    let n = COUNT.with(|count| {
        let (block, next) = count.get();
        count.set((block, (next + 1) & ((1 << BLOCK_BITS) - 1)));
        block | next
    });
    // Not `format!("{n:016x}")`: padded through the formatter it cost 1.6 % of the daemon's CPU
    // serving a cached `GET /api/sessions` (perf, 64 connections).
    // Nor `hex::encode`: it collects its digits one `char` at a time.
    let mut id = [0; 32];
    id[..16].copy_from_slice(prefix);
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (i, shift) in (0..16).rev().enumerate() {
        id[16 + i] = DIGITS[(n >> (shift * 4)) as usize & 0xf];
    }
    id
}

/// A route pattern as a label: its parameters' names without their regexes
/// (`/api/gateways/{id:\d+}` → `/api/gateways/{id}`), the way the OpenAPI document spells it.
fn route_label(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    // Depth of braces; inside a parameter, everything after its `:` is its regex.
    let (mut depth, mut in_regex) = (0u32, false);
    for c in pattern.chars() {
        match c {
            '{' => {
                depth += 1;
                if depth == 1 {
                    out.push(c);
                }
            }
            '}' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    in_regex = false;
                    out.push(c);
                }
            }
            ':' if depth == 1 => in_regex = true,
            _ if depth >= 1 && in_regex => {}
            _ if depth > 1 => {}
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_labels_name_parameters_without_their_regexes() {
        assert_eq!(route_label(r"/api/gateways/{id:\d+}"), "/api/gateways/{id}");
        assert_eq!(
            route_label(r"/api/gateways/{id:\d+}/suspend"),
            "/api/gateways/{id}/suspend"
        );
        assert_eq!(route_label(r"/a/{x:[0-9]{1,3}}/b"), "/a/{x}/b");
        assert_eq!(
            route_label("/api/sessions/{key}/control"),
            "/api/sessions/{key}/control"
        );
        assert_eq!(route_label("/metrics"), "/metrics");
    }

    #[test]
    fn a_client_s_plain_request_id_is_kept_and_any_other_is_replaced_in_the_request() {
        let headers = |id: Option<&'static str>| {
            let mut h = HeaderMap::new();
            h.insert(
                HeaderName::from_static("host"),
                HeaderValue::from_static("x"),
            );
            if let Some(id) = id {
                h.append(REQUEST_ID_HEADER, HeaderValue::from_static(id));
                h.append(REQUEST_ID_HEADER, HeaderValue::from_static("second"));
            }
            h
        };
        let mut kept = headers(Some("client-id.1"));
        let given = Given::of(&kept).request_id;
        assert_eq!(
            request_id(&mut kept, given),
            "client-id.1",
            "the first value"
        );
        for bad in [None, Some("has space"), Some("")] {
            let mut h = headers(bad);
            let given = Given::of(&h).request_id;
            let id = request_id(&mut h, given);
            assert_eq!(id.len(), 32, "{bad:?}: {id:?}");
            let in_request: Vec<_> = h.get_all(REQUEST_ID_HEADER).collect();
            assert_eq!(
                in_request,
                [&id],
                "{bad:?}: the request carries the made id alone"
            );
        }
    }

    #[test]
    fn a_well_formed_traceparent_is_continued_and_any_other_starts_a_trace() {
        let parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        let mut h = HeaderMap::new();
        h.insert(TRACEPARENT, HeaderValue::from_static(parent));
        assert_eq!(
            Given::of(&h).trace_context().trace_id().to_string(),
            "0af7651916cd43dd8448eb211c80319c"
        );
        h.insert(TRACEPARENT, HeaderValue::from_static("00-zz-01"));
        assert_ne!(
            Given::of(&h).trace_context().trace_id().to_string(),
            "0af7651916cd43dd8448eb211c80319c"
        );
    }

    #[test]
    fn request_ids_made_on_different_threads_never_collide() {
        let ids = || (0..100).map(|_| new_request_id()).collect::<Vec<_>>();
        let there = std::thread::spawn(ids).join().unwrap();
        let here = ids();
        let all: std::collections::HashSet<&[u8; 32]> = here.iter().chain(&there).collect();
        assert_eq!(all.len(), 200);
    }

    #[test]
    fn a_new_request_id_is_32_hex_digits_ending_in_its_count() {
        let text = |id: [u8; 32]| String::from_utf8(id.to_vec()).unwrap();
        let (a, b) = (text(new_request_id()), text(new_request_id()));
        for id in [&a, &b] {
            assert_eq!(id.len(), 32, "{id}");
            assert!(
                id.chars()
                    .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
            );
        }
        assert_eq!(a[..16], b[..16], "one prefix per process");
        let count = |id: &str| u64::from_str_radix(&id[16..], 16).unwrap();
        assert!(count(&b) > count(&a), "{a} then {b}");
    }
}
