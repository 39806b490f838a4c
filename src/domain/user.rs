//! People, their roles and their personal access tokens (DOMAIN.md "Roles").

use chrono::{DateTime, Utc};

use super::expiry::is_expired;

/// GitLab access levels; the numbers are GitLab's and appear in its API.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::Display,
)]
#[strum(serialize_all = "snake_case", ascii_case_insensitive)]
pub enum Role {
    Guest = 10,
    Reporter = 20,
    Developer = 30,
    Maintainer = 40,
    Owner = 50,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Guest,
        Role::Reporter,
        Role::Developer,
        Role::Maintainer,
        Role::Owner,
    ];

    pub fn access_level(self) -> i32 {
        self as i32
    }

    pub fn from_access_level(level: i32) -> Option<Role> {
        Role::ALL
            .into_iter()
            .find(|role| role.access_level() == level)
    }

    pub fn as_str(self) -> &'static str {
        self.into()
    }

    pub fn parse(name: &str) -> Option<Role> {
        name.trim().parse().ok()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub email: String,
    pub admin: bool,
    pub blocked: bool,
    pub created_at: DateTime<Utc>,
}

/// Scopes of a personal access token: `api` reads and writes, `read_api` only reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, strum::IntoStaticStr, strum::EnumString)]
#[strum(serialize_all = "snake_case")]
pub enum ApiScope {
    Api,
    ReadApi,
}

impl ApiScope {
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    pub fn parse(name: &str) -> Option<ApiScope> {
        name.trim().parse().ok()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonalAccessToken {
    pub id: i64,
    pub user_id: i64,
    pub name: String,
    pub scopes: Vec<ApiScope>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked: bool,
    pub created_at: DateTime<Utc>,
    /// Where it may be used from (issue #27); empty: anywhere.
    pub ip_ranges: super::address_range::IpRanges,
    /// Its last rotation and, from a lookup by secret, which secret matched.
    pub rotation: super::rotation::SecretRotation,
}

impl PersonalAccessToken {
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        !self.revoked
            && !is_expired(self.expires_at, now)
            && self.rotation.presented_secret_works(now)
    }

    pub fn can_write(&self) -> bool {
        self.scopes.contains(&ApiScope::Api)
    }

    pub fn can_read(&self) -> bool {
        self.can_write() || self.scopes.contains(&ApiScope::ReadApi)
    }
}

/// Usernames follow GitLab's rule: letters, digits, '_', '-', '.', 1–255 characters, not
/// starting with '-' or '.'.
pub fn parse_username(username: &str) -> Result<String, super::ValidationError> {
    let username = username.trim();
    let valid = !username.is_empty()
        && username.len() <= 255
        && !username.starts_with(['-', '.'])
        && username
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if valid {
        Ok(username.to_owned())
    } else {
        Err(super::ValidationError::new(
            "username",
            "can contain only letters, digits, '_', '-' and '.', and cannot start with '-' or '.'",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_carry_gitlabs_access_levels_and_order() {
        assert_eq!(Role::Maintainer.access_level(), 40);
        assert_eq!(Role::from_access_level(50), Some(Role::Owner));
        assert_eq!(Role::from_access_level(45), None);
        assert!(Role::Owner > Role::Maintainer && Role::Maintainer > Role::Developer);
        assert_eq!(Role::parse("Maintainer"), Some(Role::Maintainer));
        assert_eq!(Role::parse("admin"), None);
    }

    #[test]
    fn read_api_reads_and_api_writes() {
        let mut token = PersonalAccessToken {
            id: 1,
            user_id: 1,
            name: "t".into(),
            scopes: vec![ApiScope::ReadApi],
            expires_at: None,
            revoked: false,
            created_at: Utc::now(),
            ip_ranges: Default::default(),
            rotation: Default::default(),
        };
        assert!(token.can_read() && !token.can_write());
        token.scopes = vec![ApiScope::Api];
        assert!(token.can_read() && token.can_write());
    }

    #[test]
    fn usernames_follow_gitlabs_rule() {
        assert!(parse_username("alice.b-c_d").is_ok());
        assert!(parse_username("-alice").is_err());
        assert!(parse_username("al ice").is_err());
        assert!(parse_username("").is_err());
    }
}
