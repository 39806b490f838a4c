//! Project and group settings.

use serde::Deserialize;

use super::{from_map, parse_gitlab_bool, Param, Sources};
use crate::domain::{ValidationError, Visibility};
use crate::error::{ApiError, Error};
use crate::service::token_lifecycle::GroupLimitsChange;

/// `PUT /api/v4/projects/:id` (GitLab's "Edit a project"; the one setting kept here): in the
/// query string (which wins), a form or a JSON body.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ProjectUpdate {
    pub visibility: Param,
}

impl ProjectUpdate {
    pub fn read(sources: &Sources<'_>) -> Result<Self, ApiError> {
        from_map(sources.query_first(&["visibility"], &[])?)
    }

    pub fn visibility(self) -> Result<Visibility, ApiError> {
        let text = self
            .visibility
            .text("visibility")?
            .ok_or(Error::MissingParameter("visibility"))?;
        Visibility::parse(&text).map_err(|error| Error::from(error).into())
    }
}

/// A group's limits on new tokens, with `PUT /api/v4/groups/:id` (beside its
/// `ip_restriction_ranges`, [`super::DeployTokenUpdate`]): `max_token_lifetime_days` (a
/// number of days; `null`, blank or `0` removes the group's own maximum) and
/// `require_token_expiry`. In the query string, a form or a JSON body (which wins).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct GroupLimitsParams {
    pub max_token_lifetime_days: Param,
    pub require_token_expiry: Param,
}

impl GroupLimitsParams {
    pub fn read(sources: &Sources<'_>) -> Result<Self, ApiError> {
        // The allow-list may be a JSON list.
        from_map(sources.merged(&[super::DeployTokenUpdate::FIELD])?)
    }

    /// The change; `None` when neither is given.
    pub fn change(self) -> Result<Option<GroupLimitsChange>, ApiError> {
        let max_token_lifetime_days = self
            .max_token_lifetime_days
            .setting()
            .map(|value| match value {
                None | Some("0") => Ok(None),
                Some(text) => text.parse::<u32>().map(Some).map_err(|_| {
                    Error::from(ValidationError::new(
                        "max_token_lifetime_days",
                        "is invalid: a whole number of days",
                    ))
                }),
            })
            .transpose()?;
        let require_token_expiry = self
            .require_token_expiry
            .setting()
            .map(|value| {
                value.and_then(parse_gitlab_bool).ok_or_else(|| {
                    Error::from(ValidationError::new(
                        "require_token_expiry",
                        "is invalid: true or false",
                    ))
                })
            })
            .transpose()?;
        if max_token_lifetime_days.is_none() && require_token_expiry.is_none() {
            return Ok(None);
        }
        Ok(Some(GroupLimitsChange {
            max_token_lifetime_days,
            require_token_expiry,
        }))
    }
}
