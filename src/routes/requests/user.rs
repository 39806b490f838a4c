//! A user's own settings, and the administrator's token look-up.

use serde::Deserialize;

use super::{from_map, parse_gitlab_bool, Param, Sources};
use crate::domain::TokenSecret;
use crate::error::{ApiError, Error};

/// `PUT /api/v4/user/preferences`: `new_address_mail`, in the query string (which wins), a
/// form or a JSON body.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct PreferencesUpdate {
    pub new_address_mail: Param,
}

impl PreferencesUpdate {
    pub fn read(sources: &Sources<'_>) -> Result<Self, ApiError> {
        from_map(sources.query_first(&["new_address_mail"], &[])?)
    }

    pub fn new_address_mail(self) -> Result<bool, ApiError> {
        let text = self
            .new_address_mail
            .text("new_address_mail")?
            .ok_or(Error::MissingParameter("new_address_mail"))?;
        parse_gitlab_bool(&text).ok_or_else(|| {
            Error::InvalidRequest("new_address_mail is invalid: true or false".into()).into()
        })
    }
}

/// The body of `POST` and `DELETE /api/v4/admin/token`: `{"token": …}`, as JSON or a form.
#[derive(Deserialize)]
pub struct AdminTokenBody {
    token: String,
}

impl AdminTokenBody {
    pub fn parse(body: &[u8]) -> Result<Self, ApiError> {
        serde_json::from_slice(body)
            .ok()
            .or_else(|| serde_urlencoded::from_bytes(body).ok())
            .ok_or_else(|| Error::MissingParameter("token").into())
    }

    /// The token as presented (surrounding blanks dropped).
    pub fn secret(self) -> TokenSecret {
        TokenSecret::from_presented(self.token.trim().to_owned())
    }
}
