//! The authenticated caller, put into the request by the route's own service before its role
//! is checked (`middleware::admission`, `roles.rs`).

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpMessage, HttpRequest};
use std::future::{Ready, ready};

use super::error::ApiError;
use crate::auth::Principal;

pub struct Authenticated(pub Principal);

impl FromRequest for Authenticated {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(
            req.extensions()
                .get::<Principal>()
                .cloned()
                .map(Authenticated)
                .ok_or_else(|| ApiError::Unauthorized("missing API key".into())),
        )
    }
}
