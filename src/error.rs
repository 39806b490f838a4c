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
    /// Something failed inside regauth. The client gets a bare 500; the log gets `context` and
    /// the whole chain of causes (see [`Report`]).
    #[error("{context}")]
    Internal {
        context: &'static str,
        #[source]
        source: Option<BoxError>,
    },
}

/// Any underlying error, kept whole so that its own causes stay reachable.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

impl Error {
    pub fn not_found(kind: &'static str, detail: impl std::fmt::Display) -> Error {
        Error::NotFound {
            kind,
            detail: detail.to_string(),
        }
    }

    /// An internal failure with no error value behind it (ring's `Unspecified`, for one).
    pub fn internal(context: &'static str) -> Error {
        Error::Internal {
            context,
            source: None,
        }
    }

    /// An internal failure caused by `source`, which is kept, not flattened into text.
    pub fn internal_from(context: &'static str, source: impl Into<BoxError>) -> Error {
        Error::Internal {
            context,
            source: Some(source.into()),
        }
    }
}

impl From<StoreError> for Error {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Taken(what) => Error::Conflict(format!("{what} is already taken")),
            other => Error::internal_from("the store failed", other),
        }
    }
}

/// Displays an error and every cause below it, `outer: inner: innermost`, for log lines and
/// the CLI. A cause whose text its parent's message already quotes (`"read x: {source}"`
/// style) is not repeated.
pub struct Report<'a>(pub &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parent = self.0.to_string();
        f.write_str(&parent)?;
        let mut cause = self.0.source();
        while let Some(error) = cause {
            let text = error.to_string();
            if !parent.contains(&text) {
                write!(f, ": {text}")?;
            }
            parent = text;
            cause = error.source();
        }
        Ok(())
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
        Error::Internal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn log_internal(error: &Error) {
    if let Error::Internal { .. } = error {
        // The chain goes to the log only; a client learns nothing about internals.
        tracing::error!(error = %Report(error), "request failed");
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
            Error::Internal { .. } => errcode_body("UNKNOWN", "internal server error"),
        };
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
            Error::Internal { .. } => json!({ "message": "500 Internal Server Error" }),
        };
        HttpResponse::build(self.status_code()).json(body)
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
        let internal = ApiError(Error::internal_from(
            "the store failed",
            std::io::Error::other("db password in here"),
        ))
        .error_response();
        assert!(!body_of(internal).await.to_string().contains("password"));
    }

    #[test]
    fn an_internal_error_keeps_its_cause_and_the_report_shows_the_chain() {
        let database = sea_orm::DbErr::Custom("connection reset".into());
        let error = Error::from(StoreError::from(database));
        let source = std::error::Error::source(&error).expect("the store error is kept");
        assert!(source.downcast_ref::<StoreError>().is_some());
        assert_eq!(
            Report(&error).to_string(),
            "the store failed: database error: Custom Error: connection reset"
        );
        // A message that already quotes its cause does not get it twice.
        let quoting = crate::jwt::KeyError::Io {
            action: "read",
            path: "keys/a.key".into(),
            source: std::io::Error::other("permission denied"),
        };
        assert_eq!(
            Report(&quoting).to_string(),
            "read keys/a.key: permission denied"
        );
    }
}
