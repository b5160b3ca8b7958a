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
            let buf = tokio::time::timeout(BODY_TIMEOUT, read)
                .await
                .map_err(|_| ApiError::BodyTimeout(BODY_TIMEOUT.as_secs()))??;
            parse(&buf).map(JsonBody)
        })
    }
}

/// A body that may be absent: no body at all (whatever the content type) is `None`; anything
/// else must be valid JSON as for [`JsonBody`].
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
        let inner = JsonBody::<T>::from_request(req, payload);
        Box::pin(async move { inner.await.map(|b| OptionalJsonBody(Some(b.0))) })
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
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        describe(&path, &inner)
    })?;
    de.end().map_err(|e| describe(".", &e))?;
    Ok(value)
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
    match text.rfind(" at line ") {
        Some(idx) => text[..idx].to_owned(),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

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
