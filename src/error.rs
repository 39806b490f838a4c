//! The one error type, and the one place that picks HTTP status codes, bodies and challenge
//! headers. Registry-facing bodies use the distribution errcode shape that docker, podman and
//! containerd parse (PROTOCOL.md §8); OAuth2 failures use RFC 6749's `{"error": ...}`.

use actix_web::http::header;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

use crate::domain::ValidationError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Missing, bad, expired or revoked credentials: one answer for all, so that a caller
    /// learns nothing about which part was wrong.
    #[error("authentication required")]
    Unauthorized,
    /// Valid credentials without any scope for the asked service.
    #[error("access forbidden")]
    Denied,
    #[error("unknown service {0:?}")]
    UnknownService(String),
    #[error("unsupported grant_type {0:?}")]
    UnsupportedGrantType(String),
    #[error("{0}")]
    InvalidRequest(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error(transparent)]
    Validation(#[from] ValidationError),
    #[error("{0}")]
    Conflict(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<StoreError> for Error {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::PathTaken(path) => Error::Conflict(format!("{path} is already taken")),
            other => Error::Internal(other.to_string()),
        }
    }
}

/// The realm named in Basic challenges.
const BASIC_REALM: &str = "regauth";

fn errcode_body(code: &str, message: &str) -> serde_json::Value {
    json!({ "errors": [{ "code": code, "message": message, "detail": null }] })
}

impl ResponseError for Error {
    fn status_code(&self) -> StatusCode {
        match self {
            Error::Unauthorized => StatusCode::UNAUTHORIZED,
            Error::Denied => StatusCode::FORBIDDEN,
            Error::UnknownService(_) | Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::UnsupportedGrantType(_) | Error::InvalidRequest(_) | Error::Validation(_) => {
                StatusCode::BAD_REQUEST
            }
            Error::Conflict(_) => StatusCode::CONFLICT,
            Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let mut response = HttpResponse::build(status);
        let body = match self {
            Error::Unauthorized => {
                response.insert_header((
                    header::WWW_AUTHENTICATE,
                    format!("Basic realm=\"{BASIC_REALM}\""),
                ));
                errcode_body("UNAUTHORIZED", "HTTP Basic: Access denied")
            }
            Error::Denied => errcode_body("DENIED", "access forbidden"),
            Error::UnknownService(_) | Error::NotFound(_) => {
                errcode_body("NOT_FOUND", &self.to_string())
            }
            Error::UnsupportedGrantType(_) => json!({
                "error": "unsupported_grant_type",
                "error_description": self.to_string(),
            }),
            Error::InvalidRequest(_) | Error::Validation(_) => json!({
                "error": "invalid_request",
                "error_description": self.to_string(),
            }),
            Error::Conflict(message) => errcode_body("CONFLICT", message),
            Error::Internal(detail) => {
                // The detail goes to the log only; a client learns nothing about internals.
                tracing::error!(error = %detail, "request failed");
                errcode_body("UNKNOWN", "internal server error")
            }
        };
        response.json(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unauthorized_carries_a_basic_challenge_and_an_errcode_body() {
        let response = Error::Unauthorized.error_response();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            response.headers().get(header::WWW_AUTHENTICATE).unwrap(),
            "Basic realm=\"regauth\""
        );
    }

    #[test]
    fn status_codes_follow_the_protocol() {
        assert_eq!(Error::Denied.status_code(), StatusCode::FORBIDDEN);
        assert_eq!(
            Error::UnknownService("x".into()).status_code(),
            StatusCode::NOT_FOUND
        );
        // containerd falls back to GET only on 400/401/404/405: never 403/415/422 on POST.
        assert_eq!(
            Error::UnsupportedGrantType("x".into()).status_code(),
            StatusCode::BAD_REQUEST
        );
    }
}
