//! `JsonBody<T>`: the only way request bodies are read. Checks the content type, enforces the
//! size limit while streaming, and names the offending field in every parse error.

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::web::BytesMut;
use actix_web::{FromRequest, HttpRequest, web};
use futures_util::StreamExt;
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// `200 OK` with a body already serialised as JSON (a cached list). Made as a response, not
/// through `HttpResponse::Ok()`'s builder, which carries a possible error and converts the body
/// again (622 instructions a request with the header's insert, 439 made so: callgrind). Its
/// content type is a constant: `ContentType::json()` formats its `mime` on every request.
pub fn json_bytes(body: actix_web::web::Bytes) -> actix_web::HttpResponse {
    use actix_web::body::BoxBody;
    use actix_web::http::StatusCode;
    use actix_web::http::header::{CONTENT_TYPE, HeaderValue};
    const JSON: HeaderValue = HeaderValue::from_static("application/json");
    let mut res = actix_web::HttpResponse::with_body(StatusCode::OK, BoxBody::new(body));
    res.headers_mut().insert(CONTENT_TYPE, JSON);
    res
}

/// How long a whole request body may take to arrive (a client that stops sending mid-body
/// would otherwise hold its connection and a worker's attention forever).
pub const BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The body size limit, from `limits.max_body_bytes`.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

pub struct JsonBody<T>(pub T);

fn is_json(req: &HttpRequest) -> bool {
    let Some(value) = req.headers().get(header::CONTENT_TYPE) else {
        return false;
    };
    let Ok(text) = value.to_str() else {
        return false;
    };
    let essence = text
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

impl<T: DeserializeOwned + 'static> FromRequest for JsonBody<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let read = read_body(req, payload);
        Box::pin(async move { parse(&read.await?).map(JsonBody) })
    }
}

/// Reads a whole JSON body: checks the content type, enforces the size limit while streaming
/// and the time limit for the whole body.
fn read_body(
    req: &HttpRequest,
    payload: &mut Payload,
) -> LocalBoxFuture<'static, Result<BytesMut, ApiError>> {
    let limit = req
        .app_data::<web::Data<BodyLimit>>()
        .map(|l| l.0)
        .unwrap_or(1024 * 1024);
    let json = is_json(req);
    let declared: Option<usize> = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let mut payload = payload.take();
    Box::pin(async move {
        if !json {
            return Err(ApiError::UnsupportedMediaType(
                "Content-Type must be application/json".into(),
            ));
        }
        if declared.is_some_and(|n| n > limit) {
            return Err(ApiError::PayloadTooLarge { limit });
        }
        let read = async {
            let mut buf = BytesMut::new();
            while let Some(chunk) = payload.next().await {
                let chunk = chunk.map_err(|e| ApiError::InvalidRequest {
                    message: format!("could not read the request body: {e}"),
                    field: None,
                })?;
                if buf.len() + chunk.len() > limit {
                    return Err(ApiError::PayloadTooLarge { limit });
                }
                buf.extend_from_slice(&chunk);
            }
            Ok(buf)
        };
        tokio::time::timeout(BODY_TIMEOUT, read)
            .await
            .map_err(|_| ApiError::BodyTimeout(BODY_TIMEOUT.as_secs()))?
    })
}

/// A body that may be absent: no body at all (whatever the content type) is `None`, and so is
/// a JSON `null`; anything else must be a JSON object as for [`JsonBody`].
pub struct OptionalJsonBody<T>(pub Option<T>);

impl<T: DeserializeOwned + 'static> FromRequest for OptionalJsonBody<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let empty = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim() == "0")
            || (!req.headers().contains_key(header::CONTENT_LENGTH)
                && !req.headers().contains_key(header::TRANSFER_ENCODING));
        if empty {
            return Box::pin(std::future::ready(Ok(OptionalJsonBody(None))));
        }
        let read = read_body(req, payload);
        Box::pin(async move {
            let body = read.await?;
            if body.trim_ascii() == b"null" {
                return Ok(OptionalJsonBody(None));
            }
            parse(&body).map(|v| OptionalJsonBody(Some(v)))
        })
    }
}

/// Parses a body, turning serde errors into API errors that name the field.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::InvalidJson(
            "request body is empty; expected a JSON object".into(),
        ));
    }
    // Every request body is an object. serde would also fill a struct from an array in field
    // order (`[1]` to the health probe named gateway 1), which no client means.
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        let got = match first {
            Some(b'[') => "an array",
            Some(b'"') => "a string",
            Some(b'n') => "null",
            Some(b't' | b'f') => "a boolean",
            Some(b'-' | b'0'..=b'9') => "a number",
            _ => "something that is not JSON",
        };
        return Err(ApiError::InvalidRequest {
            message: format!("request body must be a JSON object, not {got}"),
            field: None,
        });
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let strict = serde_path_to_error::deserialize(&mut de)
        .map_err(|err| {
            let path = err.path().to_string();
            describe(&path, &err.into_inner())
        })
        .and_then(|value: T| de.end().map(|()| value).map_err(|e| describe(".", &e)));
    let Err(refusal) = strict else {
        return strict;
    };
    // The fast path refuses `4.0` for an integer; read such a body once more with integral
    // numbers as integers. Any other refusal stands.
    let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(bytes) else {
        return Err(refusal);
    };
    if !integral_numbers_as_integers(&mut value) {
        return Err(refusal);
    }
    serde_path_to_error::deserialize(value).map_err(|err| {
        let path = err.path().to_string();
        describe(&path, &err.into_inner())
    })
}

/// `4.0` is the integer 4: JSON has one number type, and JSON Schema (so the OpenAPI
/// document) calls any number without a fractional part an `integer`. serde would refuse
/// `4.0` for an `i64` field; clients generated from the document, and JavaScript ones, send it.
fn integral_numbers_as_integers(value: &mut serde_json::Value) -> bool {
    use serde_json::Value;
    match value {
        Value::Number(n) => {
            // Beyond ±2^53 a float no longer names one integer; those stay floats (and are
            // refused where an integer is expected).
            const EXACT: f64 = 9_007_199_254_740_992.0;
            match n
                .as_f64()
                .filter(|f| n.is_f64() && f.fract() == 0.0 && f.abs() <= EXACT)
            {
                Some(f) => {
                    *n = serde_json::Number::from(f as i64);
                    true
                }
                None => false,
            }
        }
        // Every element is visited (no short cut once one changed).
        Value::Array(items) => items
            .iter_mut()
            .map(integral_numbers_as_integers)
            .fold(false, |a, b| a | b),
        Value::Object(map) => map
            .values_mut()
            .map(integral_numbers_as_integers)
            .fold(false, |a, b| a | b),
        Value::Null | Value::Bool(_) | Value::String(_) => false,
    }
}

fn describe(path: &str, err: &serde_json::Error) -> ApiError {
    use serde_json::error::Category;
    match err.classify() {
        Category::Syntax | Category::Eof | Category::Io => ApiError::InvalidJson(format!(
            "malformed JSON at line {} column {}: {}",
            err.line(),
            err.column(),
            strip_position(&err.to_string())
        )),
        Category::Data => {
            let text = strip_position(&err.to_string());
            let field = if path != "." && !path.is_empty() {
                Some(path.to_owned())
            } else {
                // serde names unknown and missing fields only in the message.
                text.split('`').nth(1).map(str::to_owned)
            };
            let message = match (&field, path) {
                (Some(f), p) if p != "." && !p.is_empty() => format!("field `{f}`: {text}"),
                _ => text,
            };
            ApiError::InvalidRequest { message, field }
        }
    }
}

fn strip_position(text: &str) -> String {
    let text = match text.rfind(" at line ") {
        Some(idx) => &text[..idx],
        None => text,
    };
    plain_types(text)
}

/// serde's messages name Rust types (`…, expected u16`, `…, expected struct SpawnRequest`); a
/// client reads JSON, so the expectation (always the message's tail) says what the JSON must be.
fn plain_types(text: &str) -> String {
    const TYPES: [(&str, &str); 12] = [
        ("u8", "an integer from 0 to 255"),
        ("u16", "an integer from 0 to 65535"),
        ("u32", "an integer from 0 to 4294967295"),
        ("u64", "a non-negative integer"),
        ("usize", "a non-negative integer"),
        ("i8", "an integer"),
        ("i16", "an integer"),
        ("i32", "an integer"),
        ("i64", "an integer"),
        ("isize", "an integer"),
        ("f32", "a number"),
        ("f64", "a number"),
    ];
    let Some((head, expected)) = text.rsplit_once(", expected ") else {
        return text.to_owned();
    };
    let plain = match TYPES.iter().find(|(t, _)| *t == expected) {
        Some((_, plain)) => plain,
        None if expected.starts_with("struct ") || expected == "map" => "a JSON object",
        None => expected,
    };
    format!("{head}, expected {plain}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[test]
    fn messages_name_json_not_rust_types() {
        assert_eq!(
            plain_types("invalid value: integer `70000`, expected u16"),
            "invalid value: integer `70000`, expected an integer from 0 to 65535"
        );
        assert_eq!(
            plain_types("invalid type: string \"x\", expected i64"),
            "invalid type: string \"x\", expected an integer"
        );
        assert_eq!(
            plain_types("invalid type: array, expected struct SpawnRequest"),
            "invalid type: array, expected a JSON object"
        );
        assert_eq!(
            plain_types("invalid type: string \"x\", expected a boolean"),
            "invalid type: string \"x\", expected a boolean"
        );
        assert_eq!(plain_types("expected u160 things"), "expected u160 things");
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Req {
        name: String,
        port: Option<u16>,
    }

    fn field_of(err: ApiError) -> (String, Option<String>) {
        match err {
            ApiError::InvalidRequest { field, .. } => ("invalid_request".into(), field),
            ApiError::InvalidJson(_) => ("invalid_json".into(), None),
            other => (other.code().into(), None),
        }
    }

    #[test]
    fn errors_name_the_field() {
        assert_eq!(
            field_of(parse::<Req>(br#"{"name":"a","port":"x"}"#).unwrap_err()),
            ("invalid_request".into(), Some("port".into()))
        );
        assert_eq!(
            field_of(parse::<Req>(br#"{"name":"a","colour":1}"#).unwrap_err()),
            ("invalid_request".into(), Some("colour".into()))
        );
        assert_eq!(
            field_of(parse::<Req>(br#"{"port":1}"#).unwrap_err()),
            ("invalid_request".into(), Some("name".into()))
        );
        assert_eq!(
            field_of(parse::<Req>(br#"{"name":"#).unwrap_err()).0,
            "invalid_json"
        );
        assert_eq!(
            field_of(parse::<Req>(b"   ").unwrap_err()).0,
            "invalid_json"
        );
        assert_eq!(
            field_of(parse::<Req>(b"{\"name\":\"a\"} trailing").unwrap_err()).0,
            "invalid_json"
        );
        assert_eq!(
            field_of(parse::<Req>(b"{\"name\":\"\xff\xfe\"}").unwrap_err()).0,
            "invalid_json"
        );
        assert!(parse::<Req>(br#"{"name":"a","port":80}"#).is_ok());
    }

    #[test]
    fn integral_numbers_are_integers_as_json_schema_says() {
        let req = parse::<Req>(br#"{"name":"a","port":80.0}"#).unwrap();
        assert_eq!(req.port, Some(80));
        let req = parse::<Req>(br#"{"name":"a","port":8e1}"#).unwrap();
        assert_eq!(req.port, Some(80));
        // A fraction is still refused, naming the field.
        assert_eq!(
            field_of(parse::<Req>(br#"{"name":"a","port":80.5}"#).unwrap_err()),
            ("invalid_request".into(), Some("port".into()))
        );
        // The retry does not weaken other refusals: a duplicate field stays refused.
        assert!(parse::<Req>(br#"{"name":"a","name":"b"}"#).is_err());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 512, ..Default::default() })]

        /// Any body gives a value or a 4xx error naming the problem, never a panic.
        #[test]
        fn any_body_decodes_or_is_refused(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256)) {
            if let Err(e) = parse::<Req>(&bytes) {
                use actix_web::ResponseError;
                proptest::prop_assert!(e.status_code().is_client_error(), "{e:?}");
            }
        }

        /// Object-shaped text with arbitrary content, the likelier fuzz.
        #[test]
        fn any_object_text_decodes_or_is_refused(inner in ".{0,128}") {
            let body = format!("{{{inner}}}");
            if let Err(e) = parse::<Req>(body.as_bytes()) {
                use actix_web::ResponseError;
                proptest::prop_assert!(e.status_code().is_client_error(), "{e:?}");
            }
        }
    }
}
