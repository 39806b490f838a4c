//! Web-page rendering of the one error type (`error::Error`): an HTML page, or the sign-in
//! page for a request without a valid session. Here, beside the pages it renders, so that
//! `error` names nothing above it.

use actix_web::http::header;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

use crate::error::{log_internal, Error};
use crate::store::StoreError;

/// Web-page rendering of the same errors (the deploy-token pages): an HTML page, or the
/// sign-in page for a request without a valid session.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    #[error(transparent)]
    Error(#[from] Error),
    /// No valid session: sign in, then come back to `back_to`.
    #[error("sign in first")]
    SignIn { back_to: Option<String> },
    /// A form without the session's CSRF token.
    #[error("invalid authenticity token")]
    Csrf,
}

impl From<StoreError> for PageError {
    fn from(error: StoreError) -> Self {
        PageError::Error(error.into())
    }
}

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        match self {
            PageError::Error(Error::Unauthorized) | PageError::SignIn { .. } => {
                StatusCode::SEE_OTHER
            }
            PageError::Error(error) => error.parts().status,
            PageError::Csrf => StatusCode::FORBIDDEN,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let (heading, message) = match self {
            PageError::Error(Error::Unauthorized) | PageError::SignIn { .. } => {
                let location = match self {
                    PageError::SignIn {
                        back_to: Some(path),
                    } => {
                        let encoded: String =
                            url::form_urlencoded::byte_serialize(path.as_bytes()).collect();
                        format!("/users/sign_in?redirect_to={encoded}")
                    }
                    _ => "/users/sign_in".to_owned(),
                };
                return HttpResponse::SeeOther()
                    .insert_header((header::LOCATION, location))
                    .insert_header((header::CACHE_CONTROL, "no-store"))
                    .finish();
            }
            PageError::Csrf => (
                "The form has expired",
                "The form was not sent from this site's current page (its authenticity token is \
                 missing or stale). Nothing was changed. Go back, reload the page and try again."
                    .to_owned(),
            ),
            PageError::Error(error) => {
                log_internal(error);
                match error {
                    Error::Denied | Error::Forbidden => (
                        "Forbidden",
                        "Your role does not allow this here. Nothing was changed.".to_owned(),
                    ),
                    Error::NotFound { kind, .. } => (
                        "Not found",
                        format!("{kind} not found, or you do not have access to it."),
                    ),
                    Error::UnknownService(_) => ("Not found", "Page not found.".to_owned()),
                    Error::TooManyRequests { retry_after } => (
                        "Too many attempts",
                        format!(
                            "Too many failed sign-in attempts. Try again in {retry_after} seconds."
                        ),
                    ),
                    Error::Unavailable { reason, .. } => (
                        "Temporarily unavailable",
                        format!("{reason}. Nothing was changed; try again in a moment."),
                    ),
                    Error::Busy(what) => (
                        "Temporarily unavailable",
                        format!("regauth is busy ({what}). Try again in a moment."),
                    ),
                    Error::Internal { .. } => (
                        "Something went wrong",
                        "regauth could not complete this request; it has been logged.".to_owned(),
                    ),
                    other => ("Bad request", other.to_string()),
                }
            }
        };
        let mut response = super::html(
            self.status_code(),
            &super::pages::ErrorPage {
                user_name: None,
                csrf: String::new(),
                heading,
                message,
            },
        );
        let retry = match self {
            PageError::Error(error) => error.parts().retry_after,
            PageError::SignIn { .. } | PageError::Csrf => None,
        };
        if let Some(seconds) = retry {
            if let Ok(value) = header::HeaderValue::from_str(&seconds.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
        }
        response
    }
}
