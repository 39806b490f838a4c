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

/// What a client is told to wait before retrying a 503.
const UNAVAILABLE_RETRY_AFTER_SECONDS: u64 = 5;
/// ... and a 503 for a full queue, which drains within a second.
const BUSY_RETRY_AFTER_SECONDS: u64 = 1;

/// Everything the renderings of one error need, decided in one place ([`Error::parts`]):
/// the status, the registry's body, GitLab's body, the OAuth 2.0 code, `Retry-After`.
pub(crate) struct Parts {
    pub status: StatusCode,
    /// `/jwt/auth`'s body.
    registry: RegistryBody,
    /// `/api/v4`'s body (GitLab's `{"message"}` / `{"error"}`).
    api: serde_json::Value,
    /// `/oauth/token`'s RFC 6749 / RFC 8693 error code and the status it is sent with.
    oauth: (&'static str, StatusCode),
    /// Seconds for `Retry-After` (RFC 6585 on 429, and 503), whichever client reads it.
    pub retry_after: Option<u64>,
}

/// The registry-facing body: distribution's errcode shape, or RFC 6749's `{"error"}` with
/// the error's text as its description (for malformed requests).
enum RegistryBody {
    Errcode(&'static str, String),
    OAuth(&'static str),
}

impl Parts {
    fn new(
        status: StatusCode,
        registry: RegistryBody,
        api: serde_json::Value,
        oauth: (&'static str, StatusCode),
    ) -> Parts {
        Parts {
            status,
            registry,
            api,
            oauth,
            retry_after: None,
        }
    }

    fn retry_after(self, seconds: u64) -> Parts {
        Parts {
            retry_after: Some(seconds),
            ..self
        }
    }

    /// Every rendering's common headers: `Retry-After`, the Basic challenge on 401 (only
    /// for a client that may present credentials again), and a closed connection after
    /// 408 and 413, whose body was not read.
    fn response(&self, challenge: bool) -> actix_web::HttpResponseBuilder {
        let mut response = HttpResponse::build(self.status);
        if let Some(seconds) = self.retry_after {
            response.insert_header((header::RETRY_AFTER, seconds.to_string()));
        }
        if challenge && self.status == StatusCode::UNAUTHORIZED {
            response.insert_header((
                header::WWW_AUTHENTICATE,
                format!("Basic realm=\"{BASIC_REALM}\""),
            ));
        }
        if matches!(
            self.status,
            StatusCode::PAYLOAD_TOO_LARGE | StatusCode::REQUEST_TIMEOUT
        ) {
            // The rest of the body is not read: the connection cannot carry another request.
            response.force_close();
        }
        response
    }
}

impl Error {
    /// How this error is answered, to every family of client: one row per variant.
    pub(crate) fn parts(&self) -> Parts {
        use RegistryBody::{Errcode, OAuth};
        use StatusCode as S;
        let text = self.to_string();
        let unavailable = ("temporarily_unavailable", S::SERVICE_UNAVAILABLE);
        match self {
            Error::Unauthorized | Error::AddressNotAllowed => Parts::new(
                S::UNAUTHORIZED,
                Errcode("UNAUTHORIZED", "HTTP Basic: Access denied".into()),
                json!({ "message": "401 Unauthorized" }),
                ("invalid_grant", S::BAD_REQUEST),
            ),
            Error::Denied | Error::Forbidden => Parts::new(
                S::FORBIDDEN,
                Errcode("DENIED", "access forbidden".into()),
                json!({ "message": "403 Forbidden" }),
                ("invalid_grant", S::BAD_REQUEST),
            ),
            Error::UnknownService(_) => Parts::new(
                S::NOT_FOUND,
                Errcode("NOT_FOUND", text),
                json!({ "message": "404 Not found" }),
                ("server_error", S::INTERNAL_SERVER_ERROR),
            ),
            Error::NotFound { kind, .. } => Parts::new(
                S::NOT_FOUND,
                Errcode("NOT_FOUND", text),
                json!({ "message": format!("404 {kind} Not Found") }),
                ("invalid_target", S::BAD_REQUEST),
            ),
            Error::UnsupportedGrantType(message) => Parts::new(
                S::BAD_REQUEST,
                OAuth("unsupported_grant_type"),
                json!({ "error": message }),
                ("unsupported_grant_type", S::BAD_REQUEST),
            ),
            Error::InvalidRequest(_) | Error::MissingParameter(_) => Parts::new(
                S::BAD_REQUEST,
                OAuth("invalid_request"),
                json!({ "error": text }),
                ("invalid_request", S::BAD_REQUEST),
            ),
            // GitLab's model-validation shape: the field and the rule it broke.
            Error::Validation(error) => Parts::new(
                S::BAD_REQUEST,
                OAuth("invalid_request"),
                json!({ "message": { error.field: [error.message] } }),
                if error.field == "scope" {
                    ("invalid_scope", S::BAD_REQUEST)
                } else {
                    ("invalid_request", S::BAD_REQUEST)
                },
            ),
            Error::Conflict(message) => Parts::new(
                S::CONFLICT,
                Errcode("CONFLICT", message.clone()),
                json!({ "message": message }),
                ("server_error", S::INTERNAL_SERVER_ERROR),
            ),
            Error::TooManyRequests { retry_after } => Parts::new(
                S::TOO_MANY_REQUESTS,
                Errcode(
                    "TOO_MANY_REQUESTS",
                    "too many failed logins; retry later".into(),
                ),
                json!({ "message": "429 Too Many Requests" }),
                ("slow_down", S::TOO_MANY_REQUESTS),
            )
            .retry_after(*retry_after),
            Error::PayloadTooLarge(_) => Parts::new(
                S::PAYLOAD_TOO_LARGE,
                OAuth("invalid_request"),
                json!({ "message": "413 Request Entity Too Large" }),
                ("invalid_request", S::BAD_REQUEST),
            ),
            Error::RequestTimeout(_) => Parts::new(
                S::REQUEST_TIMEOUT,
                OAuth("invalid_request"),
                json!({ "message": "408 Request Timeout" }),
                ("invalid_request", S::BAD_REQUEST),
            ),
            Error::Internal { .. } => Parts::new(
                S::INTERNAL_SERVER_ERROR,
                Errcode("UNKNOWN", "internal server error".into()),
                json!({ "message": "500 Internal Server Error" }),
                ("server_error", S::INTERNAL_SERVER_ERROR),
            ),
            Error::Unavailable { reason, .. } => Parts::new(
                S::SERVICE_UNAVAILABLE,
                Errcode("UNAVAILABLE", text),
                json!({ "message": "503 Service Unavailable", "error": reason }),
                unavailable,
            )
            .retry_after(UNAVAILABLE_RETRY_AFTER_SECONDS),
            Error::Busy(what) => Parts::new(
                S::SERVICE_UNAVAILABLE,
                Errcode("UNAVAILABLE", text),
                json!({ "message": "503 Service Unavailable", "error": what }),
                unavailable,
            )
            .retry_after(BUSY_RETRY_AFTER_SECONDS),
            Error::IssuerUnavailable => Parts::new(
                S::SERVICE_UNAVAILABLE,
                Errcode("UNAVAILABLE", text.clone()),
                json!({ "message": "503 Service Unavailable", "error": text }),
                unavailable,
            )
            .retry_after(UNAVAILABLE_RETRY_AFTER_SECONDS),
        }
    }
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
        self.parts().status
    }

    fn error_response(&self) -> HttpResponse {
        log_internal(self);
        let parts = self.parts();
        let body = match &parts.registry {
            RegistryBody::Errcode(code, message) => {
                json!({ "errors": [{ "code": code, "message": message, "detail": null }] })
            }
            RegistryBody::OAuth(code) => json!({
                "error": code,
                "error_description": self.to_string(),
            }),
        };
        parts.response(true).json(body)
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
        self.0.parts().status
    }

    fn error_response(&self) -> HttpResponse {
        log_internal(&self.0);
        let parts = self.0.parts();
        parts.response(false).json(&parts.api)
    }
}

/// OAuth 2.0 rendering (RFC 6749 §5.2, RFC 8693 §2.2.2) of the same errors, for the token
/// exchange at `/oauth/token`. Credentials that fail any check are one `invalid_grant`, so
/// that the answer never says which check failed (the log does).
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct OAuthError(#[from] pub Error);

impl ResponseError for OAuthError {
    fn status_code(&self) -> StatusCode {
        self.0.parts().oauth.1
    }

    fn error_response(&self) -> HttpResponse {
        log_internal(&self.0);
        let parts = self.0.parts();
        let (code, status) = parts.oauth;
        let mut response = parts.response(false);
        response.status(status);
        response.insert_header((header::CACHE_CONTROL, "no-store"));
        // Descriptions only for malformed requests: they say nothing about credentials.
        let body = match code {
            "invalid_request" | "unsupported_grant_type" | "invalid_scope" => {
                json!({ "error": code, "error_description": self.0.to_string() })
            }
            _ => json!({ "error": code }),
        };
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

    #[actix_web::test]
    async fn the_three_renderings_share_retry_after_and_the_closed_connection() {
        use actix_web::http::ConnectionType;
        for response in [
            Error::Busy("hashing").error_response(),
            ApiError(Error::Busy("hashing")).error_response(),
            OAuthError(Error::Busy("hashing")).error_response(),
        ] {
            assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(response.headers().get(header::RETRY_AFTER).unwrap(), "1");
        }
        let registry = Error::PayloadTooLarge(16).error_response();
        let api = ApiError(Error::PayloadTooLarge(16)).error_response();
        let oauth = OAuthError(Error::PayloadTooLarge(16)).error_response();
        assert_eq!(registry.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(api.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(oauth.status(), StatusCode::BAD_REQUEST);
        for response in [&registry, &api, &oauth] {
            assert_eq!(response.head().connection_type(), ConnectionType::Close);
        }
        assert_eq!(
            body_of(oauth).await,
            json!({"error": "invalid_request", "error_description": "the request body is larger than 16 bytes"})
        );
        assert_eq!(
            body_of(registry).await["error_description"],
            "the request body is larger than 16 bytes"
        );
        // Only the registry's 401 challenges.
        let api = ApiError(Error::Unauthorized).error_response();
        assert!(api.headers().get(header::WWW_AUTHENTICATE).is_none());
        assert_eq!(body_of(api).await, json!({"message": "401 Unauthorized"}));
        let oauth = OAuthError(Error::Unauthorized).error_response();
        assert_eq!(oauth.status(), StatusCode::BAD_REQUEST);
        assert_eq!(body_of(oauth).await, json!({"error": "invalid_grant"}));
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
