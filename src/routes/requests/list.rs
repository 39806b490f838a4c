//! Lists: GitLab's pagination parameters.

use serde::Deserialize;

use super::{from_map, pairs_map, parse_gitlab_bool, Keep, Param};
use crate::error::{ApiError, Error};
use crate::service::deploy_tokens::ListOptions;

/// The query of a paginated list (`GET /api/v4/deploy_tokens`, `.../deploy_tokens`,
/// `.../events`): `page` and `per_page` (whole numbers from 1; `per_page` clamped to 100, as
/// GitLab does) and `active` (only active tokens). The first value of a key wins.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ListQuery {
    pub page: Param,
    pub per_page: Param,
    pub active: Param,
}

impl ListQuery {
    pub fn parse(query: &str) -> Result<Self, ApiError> {
        let pairs = serde_urlencoded::from_str(query).map_err(|_| {
            Error::InvalidRequest("the query string is not valid URL encoding".into())
        })?;
        from_map(pairs_map(
            pairs,
            &["page", "per_page", "active"],
            &[],
            Keep::First,
        ))
    }

    pub fn into_options(self) -> Result<ListOptions, ApiError> {
        let active_only = match text(&self.active) {
            None => false,
            Some(text) => parse_gitlab_bool(text)
                .ok_or_else(|| Error::InvalidRequest("active is invalid".into()))?,
        };
        let page = number(&self.page, "page", 1)?;
        // GitLab clamps per_page to 100 rather than refusing larger values.
        let per_page = number(&self.per_page, "per_page", 20)?.min(100);
        // The offset must fit the database's signed 64-bit integers.
        if (page - 1)
            .checked_mul(per_page)
            .is_none_or(|offset| offset > i64::MAX as u64)
        {
            return Err(Error::InvalidRequest("page is invalid".into()).into());
        }
        Ok(ListOptions {
            active_only,
            page,
            per_page,
        })
    }
}

/// A query value; empty is none.
fn text(param: &Param) -> Option<&str> {
    match param {
        Param::Text(text) if !text.is_empty() => Some(text),
        _ => None,
    }
}

fn number(param: &Param, key: &str, default: u64) -> Result<u64, ApiError> {
    match text(param) {
        None => Ok(default),
        Some(text) => text
            .parse::<u64>()
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| Error::InvalidRequest(format!("{key} is invalid")).into()),
    }
}
