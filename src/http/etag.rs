//! Validators for the gateway reads (`GET /api/gateways`, a page of it, one gateway), so a client
//! that polls sends `If-None-Match` and gets `304 Not Modified` for the price of a counter load.
//!
//! The tag is weak (`W/"…"`, RFC 9110 §8.8.1): it names the registry's own changes — a record, a
//! status, a connection, a breaker, the acting primary — not the live numbers a pong refreshes
//! (latency, last seen, frame age), which move every few seconds for every gateway and would make
//! every tag stale at once at fleet scale (the registry separates the two for its own readers
//! too: `GatewaysChangedSince`). A client that wants those numbers fresh asks without
//! `If-None-Match`, or follows the event stream. The tag also carries this process's start (a
//! counter that starts again after a restart must not match a tag from before it) and the query
//! (a page's tag is not another page's).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};

/// Makes the tags of the gateway reads.
pub struct Validator {
    /// This process's start (Unix ms).
    boot: u64,
    /// The registry's count of its own changes.
    changes: Arc<AtomicU64>,
}

impl Validator {
    pub fn new(changes: Arc<AtomicU64>) -> Self {
        let boot = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        Validator { boot, changes }
    }

    /// The tag of the representation of `scope` (the route and its normalized query) as of now.
    /// Taken before the body is built: a body built meanwhile is newer than its tag, so a tag
    /// never claims more than its body shows.
    pub fn tag(&self, scope: &str) -> String {
        let changes = self.changes.load(Ordering::Acquire);
        format!(
            "W/\"{:x}-{changes:x}-{:016x}\"",
            self.boot,
            crate::cluster::placement::fnv1a(scope.as_bytes())
        )
    }
}

/// Whether the request's `If-None-Match` names `tag` (weak comparison, as RFC 9110 §13.1.2
/// asks of `If-None-Match`; `*` matches any current representation).
pub fn matches(req: &HttpRequest, tag: &str) -> bool {
    fn opaque(t: &str) -> &str {
        t.trim().trim_start_matches("W/")
    }
    let want = opaque(tag);
    req.headers()
        .get_all(header::IF_NONE_MATCH)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim() == "*" || opaque(t) == want)
}

/// `304 Not Modified`, carrying the tag.
pub fn not_modified(tag: &str) -> HttpResponse {
    HttpResponse::NotModified()
        .insert_header((header::ETAG, tag.to_owned()))
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn a_tag_moves_with_the_registry_and_differs_by_query() {
        let changes = Arc::new(AtomicU64::new(4));
        let v = Validator::new(changes.clone());
        let first = v.tag("list");
        assert_eq!(first, v.tag("list"));
        assert_ne!(first, v.tag("page?limit=100"));
        assert!(first.starts_with("W/\""), "{first}");
        changes.store(5, Ordering::Release);
        assert_ne!(first, v.tag("list"));
    }

    #[test]
    fn if_none_match_is_compared_weakly_among_a_list_and_star_matches() {
        let tag = "W/\"1-2-3\"";
        let req = |h: &str| {
            TestRequest::default()
                .insert_header((header::IF_NONE_MATCH, h))
                .to_http_request()
        };
        assert!(matches(&req("W/\"1-2-3\""), tag));
        assert!(matches(&req("\"1-2-3\""), tag));
        assert!(matches(&req("\"x\", W/\"1-2-3\""), tag));
        assert!(matches(&req("*"), tag));
        assert!(!matches(&req("W/\"1-2-4\""), tag));
        assert!(!matches(&TestRequest::default().to_http_request(), tag));
    }
}
