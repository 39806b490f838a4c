//! Deploy token requests (and the rotation of any token).

use serde::Deserialize;
use serde_json::Value;

use super::{form_pairs, from_map, json_value, non_blank, pairs_map, Keep, Param, Sources};
use crate::domain::address_range::IpRanges;
use crate::domain::deploy_token::DeployTokenRequest;
use crate::domain::expiry::parse_expires_at;
use crate::domain::ValidationError;
use crate::error::{ApiError, Error};
use crate::service::token_lifecycle::RotateRequest;

/// The body of `POST /api/v4/{projects|groups}/:id/deploy_tokens`: JSON, or a form (what
/// `curl --data` sends; also when there is no `Content-Type`). `scopes`,
/// `ip_restriction_ranges` and `repository_patterns` as a JSON array, a comma list or a
/// repeated `key[]`; `expires_at` as a date or a date-time. In a form, the last `name`,
/// `username` and `expires_at` win.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CreateDeployTokenBody {
    pub name: Param,
    pub username: Param,
    pub scopes: Param,
    pub expires_at: Param,
    pub ip_restriction_ranges: Param,
    pub repository_patterns: Param,
}

impl CreateDeployTokenBody {
    const TEXTS: [&'static str; 3] = ["name", "username", "expires_at"];
    const LISTS: [&'static str; 3] = ["scopes", "ip_restriction_ranges", "repository_patterns"];

    pub fn parse(content_type: &str, body: &[u8]) -> Result<Self, ApiError> {
        if content_type
            .to_ascii_lowercase()
            .starts_with("application/json")
        {
            return match json_value(body)? {
                Value::Object(object) => from_map(object),
                // Not an object: no fields, so `name` is missing.
                _ => Ok(Self::default()),
            };
        }
        from_map(pairs_map(
            form_pairs(body)?,
            &Self::TEXTS,
            &Self::LISTS,
            Keep::Last,
        ))
    }

    /// What the service takes: every field's type checked first (in this order), then that
    /// `name` and `scopes` are there, then `expires_at`.
    pub fn into_request(self) -> Result<DeployTokenRequest, ApiError> {
        let name = self.name.string("name")?;
        let username = self.username.string("username")?;
        let scopes = self.scopes.list("scopes")?;
        let expires_at = self.expires_at.string("expires_at")?;
        let ip_restriction_ranges = self.ip_restriction_ranges.list("ip_restriction_ranges")?;
        // One pattern may not hold a comma, so a string is one pattern per comma-separated
        // entry, as for scopes.
        let repository_patterns =
            split_commas(self.repository_patterns.list("repository_patterns")?);
        let name = non_blank(name).ok_or(Error::MissingParameter("name"))?;
        if scopes.is_empty() {
            return Err(Error::MissingParameter("scopes").into());
        }
        let expires_at = non_blank(expires_at)
            .map(|text| parse_expiry(&text))
            .transpose()?;
        Ok(DeployTokenRequest {
            name,
            username,
            scopes,
            expires_at,
            ip_restriction_ranges,
            repository_patterns,
        })
    }
}

fn split_commas(entries: Vec<String>) -> Vec<String> {
    entries
        .iter()
        .flat_map(|entry| entry.split(','))
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(str::to_owned)
        .collect()
}

fn parse_expiry(text: &str) -> Result<chrono::DateTime<chrono::Utc>, ApiError> {
    parse_expires_at(text).map_err(|_| {
        Error::from(ValidationError::new(
            "expires_at",
            "is invalid: use YYYY-MM-DD or an ISO 8601 date-time",
        ))
        .into()
    })
}

/// A token's or a group's address allow-list: `PUT
/// /api/v4/{projects|groups}/:id/deploy_tokens/:token_id` (required) and `PUT
/// /api/v4/groups/:id` (optional). GitLab's comma list or a JSON list, in the query string
/// (which wins), a form or a JSON body; `""` or `null` clears.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct DeployTokenUpdate {
    pub ip_restriction_ranges: Param,
}

impl DeployTokenUpdate {
    pub const FIELD: &'static str = "ip_restriction_ranges";

    pub fn read(sources: &Sources<'_>) -> Result<Self, ApiError> {
        from_map(sources.query_first(&[], &[Self::FIELD])?)
    }

    /// The new allow-list; `None` when not given.
    pub fn ranges(self) -> Result<Option<IpRanges>, ApiError> {
        let entries = match self.ip_restriction_ranges {
            Param::Absent => return Ok(None),
            // JSON null clears, like "".
            Param::Null => Vec::new(),
            given => given.list(Self::FIELD)?,
        };
        IpRanges::parse_list(&entries)
            .map(Some)
            .map_err(|error| Error::from(error).into())
    }
}

/// The parameters of a rotation: `POST
/// /api/v4/{projects|groups}/:id/deploy_tokens/:token_id/rotate` and `POST
/// /api/v4/personal_access_tokens/:id/rotate`. In the query string, a form or a JSON body
/// (which wins); blank or `null` is not given.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RotateParams {
    /// The new expiry: a date or a date-time.
    pub expires_at: Param,
    /// How long the replaced secret keeps working.
    pub grace_period_seconds: Param,
}

impl RotateParams {
    pub fn read(sources: &Sources<'_>) -> Result<Self, ApiError> {
        from_map(sources.merged(&[])?)
    }

    pub fn into_request(self) -> Result<RotateRequest, ApiError> {
        let expires_at = self
            .expires_at
            .setting()
            .flatten()
            .map(parse_expiry)
            .transpose()?;
        let grace_period_seconds = self
            .grace_period_seconds
            .setting()
            .flatten()
            .map(|text| {
                text.parse::<i64>().map_err(|_| {
                    Error::from(ValidationError::new(
                        "grace_period_seconds",
                        "is invalid: a whole number of seconds",
                    ))
                })
            })
            .transpose()?;
        Ok(RotateRequest {
            expires_at,
            grace_period_seconds,
        })
    }
}
