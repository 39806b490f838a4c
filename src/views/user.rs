//! Users, their personal access tokens and preferences, as GitLab's users API answers them.

use chrono::{DateTime, NaiveTime, Utc};
use serde::{Serialize, Serializer};

use super::{optional, timestamp, Timestamp};
use crate::domain::{PersonalAccessToken, User};

/// A user: `GET /api/v4/user`; `regauth user list --json`.
#[derive(Debug, Serialize)]
pub struct UserView<'a> {
    pub id: i64,
    pub username: &'a str,
    /// GitLab's display name: regauth has none of its own and shows the username.
    pub name: &'a str,
    pub email: &'a str,
    pub is_admin: bool,
    /// `active` or `blocked`.
    pub state: &'static str,
    pub created_at: Timestamp,
}

impl<'a> UserView<'a> {
    pub fn new(user: &'a User) -> Self {
        UserView {
            id: user.id,
            username: &user.username,
            name: &user.username,
            email: &user.email,
            is_admin: user.admin,
            state: if user.blocked { "blocked" } else { "active" },
            created_at: Timestamp(user.created_at),
        }
    }
}

/// The caller's preferences: `GET` and `PUT /api/v4/user/preferences`.
#[derive(Debug, Serialize)]
pub struct PreferencesView {
    pub user_id: i64,
    pub new_address_mail: bool,
}

/// A personal access token's expiry as GitLab prints it: a date (`2027-01-31`) when it is at
/// midnight UTC, as GitLab's always is, else a [`Timestamp`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PatExpiry(pub DateTime<Utc>);

impl Serialize for PatExpiry {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.0.time() == NaiveTime::MIN {
            serializer.collect_str(&self.0.format("%Y-%m-%d"))
        } else {
            serializer.serialize_str(&timestamp(self.0))
        }
    }
}

/// A personal access token, never its secret (see [`RotatedPersonalAccessTokenView`]).
#[derive(Debug, Serialize)]
pub struct PersonalAccessTokenView<'a> {
    pub id: i64,
    pub name: &'a str,
    pub revoked: bool,
    pub created_at: Timestamp,
    pub scopes: Vec<&'static str>,
    pub user_id: i64,
    pub active: bool,
    pub expires_at: Option<PatExpiry>,
    pub rotated_at: Option<Timestamp>,
}

impl<'a> PersonalAccessTokenView<'a> {
    pub fn new(token: &'a PersonalAccessToken, now: DateTime<Utc>) -> Self {
        PersonalAccessTokenView {
            id: token.id,
            name: &token.name,
            revoked: token.revoked,
            created_at: Timestamp(token.created_at),
            scopes: token.scopes.iter().map(|scope| scope.as_str()).collect(),
            user_id: token.user_id,
            active: token.is_active(now),
            expires_at: token.expires_at.map(PatExpiry),
            rotated_at: optional(token.rotation.rotated_at),
        }
    }
}

/// A rotated personal access token with its new secret (GitLab's rotate answer): `POST
/// /api/v4/personal_access_tokens/:id/rotate`; `regauth user token rotate --json`.
/// No `Debug`: it holds a secret in clear, and must never reach a log line.
#[derive(Serialize)]
pub struct RotatedPersonalAccessTokenView<'a> {
    #[serde(flatten)]
    pub personal_access_token: PersonalAccessTokenView<'a>,
    /// The new secret.
    pub token: &'a str,
    pub previous_token_expires_at: Timestamp,
}

impl<'a> RotatedPersonalAccessTokenView<'a> {
    pub fn new(
        token: &'a PersonalAccessToken,
        secret: &'a str,
        previous_secret_expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Self {
        RotatedPersonalAccessTokenView {
            personal_access_token: PersonalAccessTokenView::new(token, now),
            token: secret,
            previous_token_expires_at: Timestamp(previous_secret_expires_at),
        }
    }
}

/// A new personal access token with its secret: `regauth user token create --json` (no API
/// creates one).
/// No `Debug`: it holds a secret in clear, and must never reach a log line.
#[derive(Serialize)]
pub struct CreatedPersonalAccessTokenView<'a> {
    pub id: i64,
    pub name: &'a str,
    pub username: &'a str,
    /// The secret.
    pub token: &'a str,
    pub scopes: Vec<&'static str>,
    pub expires_at: Option<Timestamp>,
    /// Comma-separated, `""` when the token may be used from anywhere.
    pub ip_restriction_ranges: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone as _;

    #[test]
    fn a_token_expiring_at_midnight_shows_a_date_and_any_other_a_time() {
        let midnight = Utc.with_ymd_and_hms(2027, 1, 31, 0, 0, 0).unwrap();
        let noon = Utc.with_ymd_and_hms(2027, 1, 31, 12, 0, 0).unwrap();
        assert_eq!(
            serde_json::to_value(PatExpiry(midnight)).unwrap(),
            "2027-01-31"
        );
        assert_eq!(
            serde_json::to_value(PatExpiry(noon)).unwrap(),
            "2027-01-31T12:00:00.000Z"
        );
    }
}
