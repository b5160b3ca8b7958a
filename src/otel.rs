//! Optional export of the daemon's spans (requests, use cases, gateway calls) to an
//! OpenTelemetry collector over OTLP/HTTP with protobuf, configured by the standard variables
//! and off unless they ask for it: `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (used as is) or
//! `OTEL_EXPORTER_OTLP_ENDPOINT` (`/v1/traces` appended) set, `OTEL_TRACES_EXPORTER` unset or
//! `otlp`, `OTEL_SDK_DISABLED` not `true`. `OTEL_SERVICE_NAME` (default `gateway-supervisor`),
//! `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_EXPORTER_OTLP_TIMEOUT` and `OTEL_BSP_*` are read by the SDK.
//!
//! Spans leave in batches from the SDK's own thread through [`PlainHttp`], an HTTP/1.1 POST
//! over a plain TCP connection: a collector beside the daemon (`http://127.0.0.1:4318`, the
//! usual sidecar or node agent) — not gRPC, not TLS, which would bring a second HTTP stack
//! into every daemon. An export that fails is dropped by the SDK (counted in its own log), never
//! retried against the serving threads.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};

/// How long one export may take on the wire.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the spans still batched may take to leave when the daemon stops.
const SHUTDOWN_FLUSH: Duration = Duration::from_millis(500);
/// Most of a collector's answer read (it is a status and a small body).
const MAX_ANSWER: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum OtelError {
    #[error("{var}: {reason}")]
    Setting { var: &'static str, reason: String },
    #[error("OTLP exporter: {0}")]
    Exporter(String),
}

static ENABLED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether spans are exported (so a request's trace is handed to the exporter as its parent).
pub fn enabled() -> bool {
    ENABLED.load(std::sync::atomic::Ordering::Relaxed)
}

/// The parent a request's span takes in the exported trace: the caller's (or the daemon's new)
/// W3C trace context.
pub fn parent(trace: &gateway_supervisor_actors::trace::TraceContext) -> opentelemetry::Context {
    use opentelemetry::trace::{
        SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState,
    };
    let (trace_id, span_id, flags) = trace.ids();
    opentelemetry::Context::new().with_remote_span_context(SpanContext::new(
        TraceId::from_bytes(trace_id),
        SpanId::from_bytes(span_id),
        TraceFlags::new(flags),
        true,
        TraceState::default(),
    ))
}

/// The exported id of the span being run (the `gateway.call` span, where a call reads it):
/// what a gateway receives as its parent, so its spans join under one the collector holds.
fn current_span_id() -> Option<[u8; 8]> {
    use opentelemetry::trace::TraceContextExt;
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    let context = tracing::Span::current().context();
    let span = context.span();
    let id = span.span_context();
    id.is_valid().then(|| id.span_id().to_bytes())
}

/// The tracer spans go to, and the provider that flushes them when dropped.
pub struct Otel {
    pub tracer: SdkTracer,
    provider: SdkTracerProvider,
}

impl Drop for Otel {
    fn drop(&mut self) {
        // Bounded: a collector that does not answer must not hold the daemon's exit (the
        // SDK would wait 5 s for it; what is not out by then is dropped).
        let _ = self.provider.shutdown_with_timeout(SHUTDOWN_FLUSH);
    }
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// The exporter the environment asks for; `None` when it asks for none (the default).
pub fn from_env() -> Result<Option<Otel>, OtelError> {
    if var("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        return Ok(None);
    }
    match var("OTEL_TRACES_EXPORTER").as_deref() {
        None | Some("otlp") => {}
        Some("none") => return Ok(None),
        Some(other) => {
            return Err(OtelError::Setting {
                var: "OTEL_TRACES_EXPORTER",
                reason: format!("`{other}` is not supported (otlp or none)"),
            });
        }
    }
    let endpoint = match (
        var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
        var("OTEL_EXPORTER_OTLP_ENDPOINT"),
    ) {
        (Some(traces), _) => traces,
        (None, Some(base)) => format!("{}/v1/traces", base.trim_end_matches('/')),
        (None, None) => return Ok(None),
    };
    if let Some(p) =
        var("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL").or_else(|| var("OTEL_EXPORTER_OTLP_PROTOCOL"))
        && p != "http/protobuf"
    {
        return Err(OtelError::Setting {
            var: "OTEL_EXPORTER_OTLP_PROTOCOL",
            reason: format!("`{p}` is not supported (http/protobuf)"),
        });
    }
    if !endpoint.starts_with("http://") {
        return Err(OtelError::Setting {
            var: "OTEL_EXPORTER_OTLP_ENDPOINT",
            reason: format!(
                "`{}`: only a plain http:// collector is supported (run one beside the daemon)",
                gateway_supervisor_actors::bounded::text(&endpoint, 256)
            ),
        });
    }
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(PlainHttp)
        .with_endpoint(endpoint)
        .build()
        .map_err(|e| OtelError::Exporter(e.to_string()))?;
    let service = var("OTEL_SERVICE_NAME").unwrap_or_else(|| "gateway-supervisor".into());
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(Resource::builder().with_service_name(service).build())
        .build();
    ENABLED.store(true, std::sync::atomic::Ordering::Relaxed);
    gateway_supervisor_actors::trace::set_call_span_id_source(current_span_id);
    Ok(Some(Otel {
        tracer: provider.tracer("gateway-supervisor"),
        provider,
    }))
}

/// One OTLP/HTTP POST per export over a fresh TCP connection.
#[derive(Debug)]
pub struct PlainHttp;

#[async_trait::async_trait]
impl opentelemetry_http::HttpClient for PlainHttp {
    async fn send_bytes(
        &self,
        request: http::Request<bytes::Bytes>,
    ) -> Result<http::Response<bytes::Bytes>, opentelemetry_http::HttpError> {
        // Called on the SDK's export thread: blocking here holds up nothing else.
        post(request).map_err(|e| Box::new(e) as opentelemetry_http::HttpError)
    }
}

fn post(request: http::Request<bytes::Bytes>) -> std::io::Result<http::Response<bytes::Bytes>> {
    let bad = |m: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, m);
    let uri = request.uri();
    let host = uri
        .host()
        .ok_or_else(|| bad("no host in the endpoint".into()))?;
    let port = uri.port_u16().unwrap_or(80);
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let addr = (host, port)
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| bad(format!("{host} has no address")))?;
    let mut stream = TcpStream::connect_timeout(&addr, EXPORT_TIMEOUT)?;
    stream.set_read_timeout(Some(EXPORT_TIMEOUT))?;
    stream.set_write_timeout(Some(EXPORT_TIMEOUT))?;
    let mut head = format!(
        "{} {path} HTTP/1.1\r\nhost: {host}:{port}\r\nconnection: close\r\ncontent-length: {}\r\n",
        request.method(),
        request.body().len()
    );
    for (name, value) in request.headers() {
        if let Ok(v) = value.to_str()
            && !matches!(name.as_str(), "host" | "connection" | "content-length")
        {
            head.push_str(&format!("{name}: {v}\r\n"));
        }
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(request.body())?;
    let mut answer = Vec::new();
    stream.take(MAX_ANSWER as u64).read_to_end(&mut answer)?;
    let status = answer
        .split(|b| *b == b'\n')
        .next()
        .and_then(|line| std::str::from_utf8(line).ok())
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse::<u16>().ok())
        .ok_or_else(|| bad("the collector's answer has no status line".into()))?;
    let body = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or_else(Vec::new, |end| answer[end + 4..].to_vec());
    http::Response::builder()
        .status(status)
        .body(bytes::Bytes::from(body))
        .map_err(|e| bad(e.to_string()))
}
