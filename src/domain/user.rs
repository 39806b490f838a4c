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

/// A person's username, checked once where it comes in (the CLI's `user create`): GitLab's
/// rule, letters, digits, '_', '-', '.', 1–255 characters, not starting with '-' or '.'.
/// A name looked up (to sign in, to block someone) stays text: one that breaks the rule is
/// simply nobody's.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Username(String);

impl Username {
    /// The name without surrounding blanks, if it follows the rule.
    pub fn parse(text: &str) -> Result<Username, super::ValidationError> {
        let username = text.trim();
        let valid = !username.is_empty()
            && username.len() <= 255
            && !username.starts_with(['-', '.'])
            && username
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if valid {
            Ok(Username(username.to_owned()))
        } else {
            Err(super::ValidationError::new(
                "username",
                "can contain only letters, digits, '_', '-' and '.', and cannot start with '-' or '.'",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Username {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A person's email address, checked once where it comes in: notices are sent to it, so
/// lettre, which sends them, is the judge.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    /// The address without surrounding blanks, if lettre can send to it.
    pub fn parse(text: &str) -> Result<Email, super::ValidationError> {
        let email = text.trim();
        if email.parse::<lettre::Address>().is_err() {
            return Err(super::ValidationError::new("email", "is invalid"));
        }
        Ok(Email(email.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Email {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
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
        assert_eq!(
            Username::parse(" alice.b-c_d ").unwrap().as_str(),
            "alice.b-c_d"
        );
        for refused in [
            "-alice",
            ".alice",
            "al ice",
            "",
            "alice+ci",
            &"a".repeat(256),
        ] {
            assert!(Username::parse(refused).is_err(), "{refused}");
        }
    }

    #[test]
    fn emails_are_what_lettre_can_send_to() {
        assert_eq!(
            Email::parse(" a@example.com\n").unwrap().as_str(),
            "a@example.com"
        );
        for refused in ["", "alice", "a@", "a b@example.com", "<a@example.com>"] {
            let error = Email::parse(refused).unwrap_err();
            assert_eq!(
                (error.field, error.message.as_str()),
                ("email", "is invalid")
            );
        }
    }
}
