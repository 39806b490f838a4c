//! The tokens regauth hands out: their secrets' prefixes, refresh tokens, lifetime limits
//! and rotation.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{invalid, Seconds, SettingsError};
use crate::domain::token_format::{TokenFormats, TokenKind};
use crate::domain::token_lifetime::{LifetimeLimits, MAX_LIFETIME_DAYS};

#[derive(Clone, Serialize, Deserialize)]
pub(super) struct Raw {
    /// Prefix of new secrets (secret scanners look for it).
    token_prefix: String,
    /// With it (`acme-`), new secrets are `acme-dt-…`, `acme-pat-…`, `acme-rt-…` (GitLab's
    /// instance prefixes), so scanners can tell this instance's leaks apart; at most 20
    /// lowercase letters, digits or `-`. Not set: `token_prefix`, `glpat-`, `regauth-rt-`.
    token_instance_prefix: String,
    /// Lifetime of refresh (docker identity) tokens (30 days by default); never beyond the
    /// deploy token's own expiry.
    refresh_token_ttl: Seconds,
    /// Live refresh tokens kept per deploy token (1–1000); a login beyond that removes the
    /// oldest. Expired ones are swept at start and hourly, and all of a token's go when it is
    /// revoked.
    refresh_tokens_per_deploy_token: u32,
    /// The longest a new deploy token or personal access token may live, in days (at most
    /// 36500); `0`: no limit. A group may set a shorter one for the tokens created in it and
    /// below it. Existing tokens keep their expiry. See [Token lifetime and
    /// rotation](token-lifetime-and-rotation.md).
    max_token_lifetime_days: u32,
    /// New deploy tokens and personal access tokens must have an expiry date (implied by
    /// `max_token_lifetime_days`). A deploy token without one is refused; a personal access
    /// token without one gets the longest allowed (365 days without a maximum), as in GitLab.
    require_token_expiry: bool,
    /// How long the replaced secret of a rotated token keeps working (at most 30 days);
    /// a rotation may ask for less. `0`: the old secret stops at once.
    token_rotation_grace: Seconds,
}

impl Default for Raw {
    fn default() -> Self {
        Raw {
            token_prefix: TokenKind::DeployToken.default_prefix().into(),
            token_instance_prefix: String::new(),
            refresh_token_ttl: Seconds(30 * 86_400),
            refresh_tokens_per_deploy_token: 10,
            max_token_lifetime_days: 0,
            require_token_expiry: false,
            token_rotation_grace: Seconds(0),
        }
    }
}

#[derive(Debug, Clone)]
pub struct TokenSettings {
    pub prefix: String,
    /// With it, new secrets are `<instance>dt-…`, `<instance>pat-…`, `<instance>rt-…` (GitLab's
    /// instance prefixes), so that scanners can route this instance's leaks to it.
    pub instance_prefix: Option<String>,
    /// Lifetime of refresh tokens (docker identity tokens); the deploy token's own expiry
    /// and revocation still end them earlier.
    pub refresh_token_ttl: Duration,
    /// Live refresh tokens kept per deploy token; creating one more removes the oldest.
    pub refresh_tokens_per_deploy_token: u32,
    /// The instance's limits on the lifetime of new tokens (groups may add stricter ones).
    pub lifetime: LifetimeLimits,
    /// The longest a rotated token's previous secret keeps working (and the default).
    pub rotation_grace: Duration,
}

impl TokenSettings {
    /// The token kinds' prefixes in force (`token_prefix`, `token_instance_prefix`).
    pub fn formats(&self) -> TokenFormats {
        TokenFormats::new(&self.prefix, self.instance_prefix.as_deref())
    }
}

impl Raw {
    pub(super) fn validate(self) -> Result<TokenSettings, SettingsError> {
        if self.token_prefix.len() > 20
            || !self
                .token_prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(invalid(
                "token_prefix",
                "at most 20 letters, digits, '-' or '_'",
            ));
        }
        if self.token_instance_prefix.len() > 20
            || !self
                .token_instance_prefix
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return Err(invalid(
                "token_instance_prefix",
                "at most 20 lowercase letters, digits or '-' (e.g. \"acme-\")",
            ));
        }
        let refresh_token_ttl =
            self.refresh_token_ttl
                .within("refresh_token_ttl", 60, 366 * 86_400, " (366d)")?;
        if !(1..=1000).contains(&self.refresh_tokens_per_deploy_token) {
            return Err(invalid(
                "refresh_tokens_per_deploy_token",
                format!(
                    "{} is out of range: between 1 and 1000",
                    self.refresh_tokens_per_deploy_token
                ),
            ));
        }
        if self.max_token_lifetime_days > MAX_LIFETIME_DAYS {
            return Err(invalid(
                "max_token_lifetime_days",
                format!(
                    "{} is out of range: at most {MAX_LIFETIME_DAYS} (0: no limit)",
                    self.max_token_lifetime_days,
                ),
            ));
        }
        if self.token_rotation_grace.0 > 30 * 86_400 {
            return Err(invalid(
                "token_rotation_grace",
                format!(
                    "{} s is out of range: at most 2592000 s (30d)",
                    self.token_rotation_grace.0
                ),
            ));
        }
        Ok(TokenSettings {
            prefix: self.token_prefix,
            instance_prefix: Some(self.token_instance_prefix).filter(|prefix| !prefix.is_empty()),
            refresh_token_ttl,
            refresh_tokens_per_deploy_token: self.refresh_tokens_per_deploy_token,
            lifetime: LifetimeLimits {
                max_days: (self.max_token_lifetime_days > 0)
                    .then_some(self.max_token_lifetime_days),
                require_expiry: self.require_token_expiry,
            },
            rotation_grace: self.token_rotation_grace.duration(),
        })
    }
}
