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
    /// Valid credentials used from outside their address allow-list (issue #27). The login
    /// guard counts it and turns it into `Unauthorized`; should it get further, it is
    /// answered exactly as `Unauthorized`, so that no caller learns the secret was right.
    #[error("authentication required")]
    AddressNotAllowed,
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
    /// Too many failed logins from this address or for this username (or too many
    /// attempts already waiting out their delay): try again after `retry_after` seconds.
    #[error("too many failed logins; retry in {retry_after} s")]
    TooManyRequests { retry_after: u64 },
    #[error("the request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    #[error("the request body did not arrive within {} s", .0.as_secs())]
    RequestTimeout(std::time::Duration),
    /// Something failed inside regauth. The client gets a bare 500; the log gets `context` and
    /// the whole chain of causes (see [`Report`]).
    #[error("{context}")]
    Internal {
        context: &'static str,
        #[source]
        source: Option<BoxError>,
    },
    /// A bounded resource (password hashing) is at capacity: 503, retry in a second. `what`
    /// is shown to the client.
    #[error("busy: {0}")]
    Busy(&'static str),
    /// The database cannot be reached or refuses writes: 503, worth a retry. `reason` is
    /// shown to the client, the cause only logged.
    #[error("service unavailable: {reason}")]
    Unavailable {
        reason: &'static str,
        #[source]
        source: StoreError,
    },
    /// A trusted OIDC issuer's keys cannot be fetched: 503 for its tokens only (the cause is
    /// logged where the fetch failed).
    #[error("service unavailable: the OIDC issuer cannot be reached")]
    IssuerUnavailable,
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
            source @ StoreError::Unavailable(_) => Error::Unavailable {
                reason: "the database is unavailable",
                source,
            },
            source @ StoreError::ReadOnly(_) => Error::Unavailable {
                reason: "the database refuses writes (read-only file system or full disk)",
                source,
            },
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

pub(crate) fn status_of(error: &Error) -> StatusCode {
    match error {
        Error::Unauthorized | Error::AddressNotAllowed => StatusCode::UNAUTHORIZED,
        Error::Denied | Error::Forbidden => StatusCode::FORBIDDEN,
        Error::UnknownService(_) | Error::NotFound { .. } => StatusCode::NOT_FOUND,
        Error::UnsupportedGrantType(_)
        | Error::InvalidRequest(_)
        | Error::MissingParameter(_)
        | Error::Validation(_) => StatusCode::BAD_REQUEST,
        Error::Conflict(_) => StatusCode::CONFLICT,
        Error::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
        Error::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
        Error::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
        Error::Internal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        Error::Unavailable { .. } | Error::IssuerUnavailable | Error::Busy(_) => {
            StatusCode::SERVICE_UNAVAILABLE
        }
    }
}

/// What a client is told to wait before retrying a 503.
pub(crate) const UNAVAILABLE_RETRY_AFTER_SECONDS: u64 = 5;
/// ... and a 503 for a full queue, which drains within a second.
pub(crate) const BUSY_RETRY_AFTER_SECONDS: u64 = 1;

/// `Retry-After` on 429 (RFC 6585) and 503, whichever family of client reads the error.
fn retry_after(response: &mut actix_web::HttpResponseBuilder, error: &Error) {
    let seconds = match error {
        Error::TooManyRequests { retry_after } => *retry_after,
        Error::Unavailable { .. } | Error::IssuerUnavailable => UNAVAILABLE_RETRY_AFTER_SECONDS,
        Error::Busy(_) => BUSY_RETRY_AFTER_SECONDS,
        _ => return,
    };
    response.insert_header((header::RETRY_AFTER, seconds.to_string()));
}

pub(crate) fn log_internal(error: &Error) {
    if let Error::Internal { .. } = error {
        // The chain goes to the log only; a client learns nothing about internals.
        tracing::error!(error = %Report(error), "request failed");
    }
    if let Error::Unavailable { reason, source } = error {
        tracing::warn!(error = %source, "{reason}");
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
        retry_after(&mut response, self);
        let body = match self {
            Error::Unauthorized | Error::AddressNotAllowed => {
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
            Error::TooManyRequests { .. } => {
                errcode_body("TOO_MANY_REQUESTS", "too many failed logins; retry later")
            }
            Error::PayloadTooLarge(_) | Error::RequestTimeout(_) => json!({
                "error": "invalid_request",
                "error_description": self.to_string(),
            }),
            Error::Internal { .. } => errcode_body("UNKNOWN", "internal server error"),
            Error::Unavailable { reason, .. } => {
                errcode_body("UNAVAILABLE", &format!("service unavailable: {reason}"))
            }
            Error::Busy(what) => errcode_body("UNAVAILABLE", &format!("busy: {what}")),
            Error::IssuerUnavailable => errcode_body("UNAVAILABLE", &self.to_string()),
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
            Error::Unauthorized | Error::AddressNotAllowed => {
                json!({ "message": "401 Unauthorized" })
            }
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
            Error::TooManyRequests { .. } => json!({ "message": "429 Too Many Requests" }),
            Error::PayloadTooLarge(_) => json!({ "message": "413 Request Entity Too Large" }),
            Error::RequestTimeout(_) => json!({ "message": "408 Request Timeout" }),
            Error::Internal { .. } => json!({ "message": "500 Internal Server Error" }),
            Error::Unavailable { reason, .. } => {
                json!({ "message": "503 Service Unavailable", "error": reason })
            }
            Error::Busy(what) => json!({ "message": "503 Service Unavailable", "error": what }),
            Error::IssuerUnavailable => {
                json!({ "message": "503 Service Unavailable", "error": self.0.to_string() })
            }
        };
        let mut response = HttpResponse::build(self.status_code());
        retry_after(&mut response, &self.0);
        if matches!(self.0, Error::PayloadTooLarge(_) | Error::RequestTimeout(_)) {
            response.force_close();
        }
        response.json(body)
    }
}

/// OAuth 2.0 rendering (RFC 6749 §5.2, RFC 8693 §2.2.2) of the same errors, for the token
/// exchange at `/oauth/token`. Credentials that fail any check are one `invalid_grant`, so
/// that the answer never says which check failed (the log does).
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct OAuthError(#[from] pub Error);

impl OAuthError {
    /// The RFC's error code and the status it is sent with.
    fn code(&self) -> (&'static str, StatusCode) {
        match &self.0 {
            Error::Unauthorized | Error::AddressNotAllowed => {
                ("invalid_grant", StatusCode::BAD_REQUEST)
            }
            Error::NotFound { .. } => ("invalid_target", StatusCode::BAD_REQUEST),
            Error::Validation(error) if error.field == "scope" => {
                ("invalid_scope", StatusCode::BAD_REQUEST)
            }
            Error::UnsupportedGrantType(_) => ("unsupported_grant_type", StatusCode::BAD_REQUEST),
            Error::InvalidRequest(_)
            | Error::MissingParameter(_)
            | Error::Validation(_)
            | Error::PayloadTooLarge(_)
            | Error::RequestTimeout(_) => ("invalid_request", StatusCode::BAD_REQUEST),
            Error::TooManyRequests { .. } => ("slow_down", StatusCode::TOO_MANY_REQUESTS),
            Error::Unavailable { .. } | Error::IssuerUnavailable | Error::Busy(_) => {
                ("temporarily_unavailable", StatusCode::SERVICE_UNAVAILABLE)
            }
            Error::Denied | Error::Forbidden => ("invalid_grant", StatusCode::BAD_REQUEST),
            Error::UnknownService(_) | Error::Conflict(_) | Error::Internal { .. } => {
                ("server_error", StatusCode::INTERNAL_SERVER_ERROR)
            }
        }
    }
}

impl ResponseError for OAuthError {
    fn status_code(&self) -> StatusCode {
        self.code().1
    }

    fn error_response(&self) -> HttpResponse {
        log_internal(&self.0);
        let (code, status) = self.code();
        let mut response = HttpResponse::build(status);
        retry_after(&mut response, &self.0);
        response.insert_header((header::CACHE_CONTROL, "no-store"));
        // Descriptions only for malformed requests: they say nothing about credentials.
        let body = match code {
            "invalid_request" | "unsupported_grant_type" | "invalid_scope" => {
                json!({ "error": code, "error_description": self.0.to_string() })
            }
            _ => json!({ "error": code }),
        };
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
    async fn too_many_requests_carries_retry_after_in_both_shapes() {
        let error = Error::TooManyRequests { retry_after: 42 };
        let registry = error.error_response();
        assert_eq!(registry.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(registry.headers().get(header::RETRY_AFTER).unwrap(), "42");
        assert_eq!(
            body_of(registry).await["errors"][0]["code"],
            "TOO_MANY_REQUESTS"
        );
        let api = ApiError(Error::TooManyRequests { retry_after: 7 }).error_response();
        assert_eq!(api.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(api.headers().get(header::RETRY_AFTER).unwrap(), "7");
        assert_eq!(
            body_of(api).await,
            json!({"message": "429 Too Many Requests"})
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
