//! The one error type, and the one place that picks HTTP status codes, bodies and challenge
//! headers. Two families of clients read our errors:
//! - registry clients (`/jwt/auth`): the distribution errcode shape that docker, podman and
//!   containerd parse (PROTOCOL.md §8), and RFC 6749's `{"error": ...}` for OAuth2 failures;
//! - GitLab API clients (`/api/v4`): GitLab's `{"message": ...}` / `{"error": ...}` bodies
//!   (DOMAIN.md), through the [`ApiError`] wrapper.

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
    /// Valid credentials without any scope for the asked registry service.
    #[error("access forbidden")]
    Denied,
    /// A management operation the caller's role does not allow.
    #[error("forbidden")]
    Forbidden,
    #[error("unknown service {0:?}")]
    UnknownService(String),
    #[error("unsupported grant_type {0:?}")]
    UnsupportedGrantType(String),
    #[error("{0}")]
    InvalidRequest(String),
    #[error("{0} is missing")]
    MissingParameter(&'static str),
    /// `kind` is what GitLab names in its 404 ("Project", "Group", "Deploy token", "User").
    #[error("{kind} {detail} not found")]
    NotFound { kind: &'static str, detail: String },
    #[error(transparent)]
    Validation(#[from] ValidationError),
    #[error("{0}")]
    Conflict(String),
    #[error("the request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    #[error("the request body did not arrive within {} s", .0.as_secs())]
    RequestTimeout(std::time::Duration),
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    pub fn not_found(kind: &'static str, detail: impl std::fmt::Display) -> Error {
        Error::NotFound {
            kind,
            detail: detail.to_string(),
        }
    }
}

impl From<StoreError> for Error {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Taken(what) => Error::Conflict(format!("{what} is already taken")),
            other => Error::Internal(other.to_string()),
        }
    }
}

/// The realm named in Basic challenges.
const BASIC_REALM: &str = "regauth";

fn errcode_body(code: &str, message: &str) -> serde_json::Value {
    json!({ "errors": [{ "code": code, "message": message, "detail": null }] })
}

fn status_of(error: &Error) -> StatusCode {
    match error {
        Error::Unauthorized => StatusCode::UNAUTHORIZED,
        Error::Denied | Error::Forbidden => StatusCode::FORBIDDEN,
        Error::UnknownService(_) | Error::NotFound { .. } => StatusCode::NOT_FOUND,
        Error::UnsupportedGrantType(_)
        | Error::InvalidRequest(_)
        | Error::MissingParameter(_)
        | Error::Validation(_) => StatusCode::BAD_REQUEST,
        Error::Conflict(_) => StatusCode::CONFLICT,
        Error::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
        Error::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
        Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn log_internal(error: &Error) {
    if let Error::Internal(detail) = error {
        // The detail goes to the log only; a client learns nothing about internals.
        tracing::error!(error = %detail, "request failed");
    }
}

/// Registry-facing rendering (`/jwt/auth`).
impl ResponseError for Error {
    fn status_code(&self) -> StatusCode {
        status_of(self)
    }

    fn error_response(&self) -> HttpResponse {
        log_internal(self);
        let mut response = HttpResponse::build(self.status_code());
        let body = match self {
            Error::Unauthorized => {
                response.insert_header((
                    header::WWW_AUTHENTICATE,
                    format!("Basic realm=\"{BASIC_REALM}\""),
                ));
                errcode_body("UNAUTHORIZED", "HTTP Basic: Access denied")
            }
            Error::Denied | Error::Forbidden => errcode_body("DENIED", "access forbidden"),
            Error::UnknownService(_) | Error::NotFound { .. } => {
                errcode_body("NOT_FOUND", &self.to_string())
            }
            Error::UnsupportedGrantType(_) => json!({
                "error": "unsupported_grant_type",
                "error_description": self.to_string(),
            }),
            Error::InvalidRequest(_) | Error::MissingParameter(_) | Error::Validation(_) => json!({
                "error": "invalid_request",
                "error_description": self.to_string(),
            }),
            Error::Conflict(message) => errcode_body("CONFLICT", message),
            Error::PayloadTooLarge(_) | Error::RequestTimeout(_) => json!({
                "error": "invalid_request",
                "error_description": self.to_string(),
            }),
            Error::Internal(_) => errcode_body("UNKNOWN", "internal server error"),
        };
        if matches!(self, Error::PayloadTooLarge(_) | Error::RequestTimeout(_)) {
            // The rest of the body is not read: the connection cannot carry another request.
            response.force_close();
        }
        response.json(body)
    }
}

/// GitLab-API rendering of the same errors (`/api/v4`).
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct ApiError(#[from] pub Error);

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        ApiError(error.into())
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        status_of(&self.0)
    }

    fn error_response(&self) -> HttpResponse {
        log_internal(&self.0);
        let body = match &self.0 {
            Error::Unauthorized => json!({ "message": "401 Unauthorized" }),
            Error::Denied | Error::Forbidden => json!({ "message": "403 Forbidden" }),
            Error::NotFound { kind, .. } => json!({ "message": format!("404 {kind} Not Found") }),
            Error::UnknownService(_) => json!({ "message": "404 Not found" }),
            Error::MissingParameter(field) => json!({ "error": format!("{field} is missing") }),
            Error::InvalidRequest(message) | Error::UnsupportedGrantType(message) => {
                json!({ "error": message })
            }
            // GitLab's model-validation shape: the field and the rule it broke.
            Error::Validation(error) => json!({ "message": { error.field: [error.message] } }),
            Error::Conflict(message) => json!({ "message": message }),
            Error::PayloadTooLarge(_) => json!({ "message": "413 Request Entity Too Large" }),
            Error::RequestTimeout(_) => json!({ "message": "408 Request Timeout" }),
            Error::Internal(_) => json!({ "message": "500 Internal Server Error" }),
        };
        let mut response = HttpResponse::build(self.status_code());
        if matches!(self.0, Error::PayloadTooLarge(_) | Error::RequestTimeout(_)) {
            response.force_close();
        }
        response.json(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body_of(response: HttpResponse) -> serde_json::Value {
        let bytes = actix_web::body::to_bytes(response.into_body())
            .await
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

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

    #[actix_web::test]
    async fn api_errors_use_gitlabs_bodies() {
        let not_found = ApiError(Error::not_found("Project", "acme/x")).error_response();
        assert_eq!(not_found.status(), StatusCode::NOT_FOUND);
        assert_eq!(
            body_of(not_found).await,
            json!({"message": "404 Project Not Found"})
        );
        let missing = ApiError(Error::MissingParameter("name")).error_response();
        assert_eq!(body_of(missing).await, json!({"error": "name is missing"}));
        let invalid =
            ApiError(ValidationError::new("scopes", "can't be blank").into()).error_response();
        assert_eq!(
            body_of(invalid).await,
            json!({"message": {"scopes": ["can't be blank"]}})
        );
        let internal = ApiError(Error::Internal("db password in here".into())).error_response();
        assert!(!body_of(internal).await.to_string().contains("password"));
    }
}
