//! Deploy tokens as the rest of the code sees them, and the validation of a new one
//! (DOMAIN.md "Deploy tokens").

use chrono::{DateTime, Utc};

use super::expiry::is_expired;
use super::namespace::{Namespace, NamespaceKind};
use super::rotation::SecretRotation;
use super::text::refuse_control_characters;
use super::token_scope::{DeployTokenScope, ScopeSet};

/// The name that a CI system injects into jobs as `CI_DEPLOY_USER` / `CI_DEPLOY_PASSWORD`.
pub const GITLAB_DEPLOY_TOKEN_NAME: &str = "gitlab-deploy-token";

/// A stored deploy token with its owner resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeployToken {
    pub id: i64,
    pub name: String,
    /// The effective username: the custom one, or `gitlab+deploy-token-{id}`.
    pub username: String,
    pub owner: Namespace,
    pub scopes: ScopeSet,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked: bool,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    /// Address allow-lists and repository patterns (issue #27); shared, as a token read
    /// from the cache is cloned at every use.
    pub restrictions: std::sync::Arc<super::TokenRestrictions>,
    /// Its last rotation and, from a lookup by secret, which secret matched.
    pub rotation: SecretRotation,
}

impl DeployToken {
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        is_expired(self.expires_at, now)
    }

    /// Active = may authenticate: neither revoked nor expired, and (when a lookup found it
    /// by its previous secret) still within that secret's grace period.
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        !self.revoked && !self.is_expired(now) && self.rotation.presented_secret_works(now)
    }
}

/// The username a token without a custom one answers to.
pub fn default_username(id: i64) -> String {
    format!("{DEFAULT_USERNAME_PREFIX}{id}")
}

/// A validation failure that names the field and the rule, as GitLab's API does.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} {message}")]
pub struct ValidationError {
    pub field: &'static str,
    pub message: String,
}

impl ValidationError {
    pub fn new(field: &'static str, message: impl Into<String>) -> ValidationError {
        ValidationError {
            field,
            message: message.into(),
        }
    }
}

/// A deploy token request that passed every rule; only [`NewDeployToken::validate`] makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDeployToken {
    name: String,
    username: Option<String>,
    scopes: ScopeSet,
    expires_at: Option<DateTime<Utc>>,
    restrictions: super::TokenRestrictions,
}

/// What a caller asks for, before validation (scopes still as text).
#[derive(Debug, Clone, Default)]
pub struct DeployTokenRequest {
    pub name: String,
    pub username: Option<String>,
    pub scopes: Vec<String>,
    pub expires_at: Option<DateTime<Utc>>,
    /// Address blocks, each entry possibly GitLab's comma-separated list.
    pub ip_restriction_ranges: Vec<String>,
    /// Globs below the owner's path.
    pub repository_patterns: Vec<String>,
}

impl NewDeployToken {
    /// The first rule the request breaks (the API's one-error answer), or the token.
    pub fn validate(
        request: DeployTokenRequest,
        owner_kind: NamespaceKind,
        now: DateTime<Utc>,
    ) -> Result<NewDeployToken, ValidationError> {
        NewDeployToken::validate_all(request, owner_kind, now)
            .map_err(|mut errors| errors.remove(0))
    }

    /// Every field's error at once (at most one per field: name, username, scopes, expiry),
    /// so a page can show them together; or the token.
    pub fn validate_all(
        request: DeployTokenRequest,
        owner_kind: NamespaceKind,
        now: DateTime<Utc>,
    ) -> Result<NewDeployToken, Vec<ValidationError>> {
        let name = validate_name(&request.name);
        let ip_ranges = super::address_range::IpRanges::parse_list(&request.ip_restriction_ranges);
        let patterns =
            super::repository_pattern::RepositoryPatterns::parse(&request.repository_patterns);
        let expires_at = match request.expires_at {
            Some(expires_at) if expires_at <= now => {
                Err(ValidationError::new("expires_at", "must be in the future"))
            }
            other => Ok(other),
        };
        let username = match request.username.map(|u| u.trim().to_owned()) {
            Some(username) if !username.is_empty() => parse_username(&username).map(Some),
            _ => Ok(None),
        };
        let scopes = parse_scopes(&request.scopes).and_then(|scopes| {
            match scopes.iter().find(|scope| scope.is_group_only()) {
                Some(scope) if owner_kind == NamespaceKind::Project => Err(ValidationError::new(
                    "scopes",
                    format!("{scope} is only available for group deploy tokens"),
                )),
                _ => Ok(scopes),
            }
        });
        match (name, expires_at, username, scopes, ip_ranges, patterns) {
            (
                Ok(name),
                Ok(expires_at),
                Ok(username),
                Ok(scopes),
                Ok(ip_ranges),
                Ok(repository_patterns),
            ) => Ok(NewDeployToken {
                name,
                username,
                scopes,
                expires_at,
                // Patterns are relative to the owner, so they can only narrow its reach.
                restrictions: super::TokenRestrictions {
                    ip_ranges,
                    group_ip_ranges: Default::default(),
                    repository_patterns,
                },
            }),
            // The order the API has always reported the first of.
            (name, expires_at, username, scopes, ip_ranges, patterns) => Err([
                name.err(),
                username.err(),
                scopes.err(),
                expires_at.err(),
                ip_ranges.err(),
                patterns.err(),
            ]
            .into_iter()
            .flatten()
            .collect()),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn username(&self) -> Option<&str> {
        self.username.as_deref()
    }
    pub fn scopes(&self) -> ScopeSet {
        self.scopes
    }
    pub fn expires_at(&self) -> Option<DateTime<Utc>> {
        self.expires_at
    }
    pub fn restrictions(&self) -> &super::TokenRestrictions {
        &self.restrictions
    }

    /// GitLab documents that pushing needs both registry scopes (the registry asks for
    /// `pull` on every upload); a write-only token is allowed but almost always a mistake.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        if self.scopes.contains(DeployTokenScope::WriteRegistry)
            && !self.scopes.contains(DeployTokenScope::ReadRegistry)
        {
            warnings.push(
                "write_registry without read_registry cannot push: the registry also requires pull for uploads"
                    .to_owned(),
            );
        }
        warnings
    }
}

fn validate_name(name: &str) -> Result<String, ValidationError> {
    let name = name.trim().to_owned();
    if name.is_empty() {
        return Err(ValidationError::new("name", "can't be blank"));
    }
    if name.chars().count() > 255 {
        return Err(ValidationError::new(
            "name",
            "is too long (maximum is 255 characters)",
        ));
    }
    refuse_control_characters("name", &name)?;
    Ok(name)
}

/// The prefix of every default username (`gitlab+deploy-token-{id}`): reserved, so that no
/// custom username can pass for another token in the JWT `sub`, the logs and the audit trail.
pub const DEFAULT_USERNAME_PREFIX: &str = "gitlab+deploy-token-";

/// Custom usernames: "can contain only letters, digits, '_', '-', '+', and '.'", ≤255, and
/// never the default form `gitlab+deploy-token-…` (compared without case).
pub fn parse_username(username: &str) -> Result<String, ValidationError> {
    refuse_control_characters("username", username)?;
    if username.chars().count() > 255 {
        return Err(ValidationError::new(
            "username",
            "is too long (maximum is 255 characters)",
        ));
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '+' | '.');
    if username.is_empty() || !username.chars().all(allowed) {
        return Err(ValidationError::new(
            "username",
            "can contain only letters, digits, '_', '-', '+', and '.'",
        ));
    }
    let reserved = username
        .get(..DEFAULT_USERNAME_PREFIX.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(DEFAULT_USERNAME_PREFIX));
    if reserved {
        return Err(ValidationError::new(
            "username",
            format!("cannot start with {DEFAULT_USERNAME_PREFIX:?}: that form is reserved for default usernames"),
        ));
    }
    refuse_workload_prefix(username)?;
    Ok(username.to_owned())
}

/// `gitlab+workload-…` names workload identity policies (see `workload_identity`).
fn refuse_workload_prefix(username: &str) -> Result<(), ValidationError> {
    let prefix = super::workload_identity::WORKLOAD_USERNAME_PREFIX;
    if username
        .get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
    {
        return Err(ValidationError::new(
            "username",
            format!("cannot start with {prefix:?}: that form is reserved for workload identities"),
        ));
    }
    Ok(())
}

/// Parses scope names (each entry may itself be a comma-separated list).
pub fn parse_scopes(names: &[String]) -> Result<ScopeSet, ValidationError> {
    let mut scopes = ScopeSet::empty();
    for name in names
        .iter()
        .flat_map(|entry| entry.split(','))
        .map(str::trim)
        .filter(|name| !name.is_empty())
    {
        let scope = DeployTokenScope::parse(name).ok_or_else(|| {
            let valid: Vec<&str> = DeployTokenScope::ALL.iter().map(|s| s.as_str()).collect();
            ValidationError::new(
                "scopes",
                format!(
                    "does not have a valid value: {name:?} (valid scopes: {})",
                    valid.join(", ")
                ),
            )
        })?;
        scopes.insert(scope);
    }
    if scopes.is_empty() {
        return Err(ValidationError::new("scopes", "can't be blank"));
    }
    Ok(scopes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap()
    }

    #[test]
    fn every_field_error_is_reported_at_once_and_the_api_keeps_the_first() {
        let now = Utc::now();
        let bad = DeployTokenRequest {
            name: " ".into(),
            username: Some("gitlab+deploy-token-7".into()),
            scopes: vec!["read_regsitry".into()],
            expires_at: Some(now - chrono::Duration::days(1)),
            ip_restriction_ranges: vec!["10.1.2.3/8".into()],
            repository_patterns: vec!["../other".into()],
        };
        let errors =
            NewDeployToken::validate_all(bad.clone(), NamespaceKind::Project, now).unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field).collect();
        assert_eq!(
            fields,
            [
                "name",
                "username",
                "scopes",
                "expires_at",
                "ip_restriction_ranges",
                "repository_patterns",
            ]
        );
        let first = NewDeployToken::validate(bad, NamespaceKind::Project, now).unwrap_err();
        assert_eq!(first.field, "name");
        let group_only = DeployTokenRequest {
            name: "ci".into(),
            scopes: vec!["read_virtual_registry".into()],
            ..Default::default()
        };
        let errors =
            NewDeployToken::validate_all(group_only, NamespaceKind::Project, now).unwrap_err();
        assert_eq!(errors.len(), 1);
        assert!(errors[0].message.contains("group deploy tokens"));
    }

    fn request(scopes: &[&str]) -> DeployTokenRequest {
        DeployTokenRequest {
            name: "ci".into(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn scopes_may_be_an_array_or_a_comma_list() {
        let scopes = parse_scopes(&[
            "read_registry,write_registry".into(),
            "read_repository".into(),
        ])
        .unwrap();
        assert_eq!(
            scopes.names(),
            vec!["read_repository", "read_registry", "write_registry"]
        );
    }

    #[test]
    fn empty_scopes_cannot_be_blank() {
        let error = parse_scopes(&[]).unwrap_err();
        assert_eq!(error.to_string(), "scopes can't be blank");
        assert!(parse_scopes(&[" , ".into()]).is_err());
    }

    #[test]
    fn an_unknown_scope_is_named_with_the_valid_ones() {
        let error = parse_scopes(&["read_regsitry".into()])
            .unwrap_err()
            .to_string();
        assert!(error.contains("read_regsitry"), "{error}");
        assert!(error.contains("write_package_registry"), "{error}");
    }

    #[test]
    fn virtual_registry_scopes_are_only_for_group_tokens() {
        let project = NewDeployToken::validate(
            request(&["read_virtual_registry"]),
            NamespaceKind::Project,
            now(),
        );
        assert_eq!(project.unwrap_err().field, "scopes");
        assert!(NewDeployToken::validate(
            request(&["read_virtual_registry"]),
            NamespaceKind::Group,
            now()
        )
        .is_ok());
    }

    #[test]
    fn a_blank_or_too_long_name_is_refused() {
        let mut blank = request(&["read_registry"]);
        blank.name = "  ".into();
        assert_eq!(
            NewDeployToken::validate(blank, NamespaceKind::Project, now())
                .unwrap_err()
                .to_string(),
            "name can't be blank"
        );
        let mut long = request(&["read_registry"]);
        long.name = "x".repeat(256);
        assert!(NewDeployToken::validate(long, NamespaceKind::Project, now()).is_err());
    }

    #[test]
    fn custom_usernames_follow_gitlabs_character_rule() {
        assert!(parse_username("deployer+ci.1_a-b").is_ok());
        assert!(parse_username("bad name").is_err());
        assert!(parse_username("bad/name").is_err());
        assert!(parse_username(&"a".repeat(256)).is_err());
    }

    #[test]
    fn a_custom_username_cannot_take_the_default_form() {
        for taken in [
            "gitlab+deploy-token-1",
            "gitlab+deploy-token-999999",
            "GitLab+Deploy-Token-7",
            "gitlab+deploy-token-",
            "gitlab+deploy-token-x",
        ] {
            let error = parse_username(taken).unwrap_err();
            assert_eq!(error.field, "username", "{taken}");
            assert!(error.message.contains("reserved"), "{error}");
        }
        assert!(parse_username("gitlab+deploy-tokens").is_ok());
        assert!(parse_username("my-gitlab+deploy-token-1").is_ok());
    }

    #[test]
    fn names_and_usernames_refuse_control_characters() {
        let mut coloured = request(&["read_registry"]);
        coloured.name = "\u{1b}[31mprod".into();
        let error = NewDeployToken::validate(coloured, NamespaceKind::Project, now()).unwrap_err();
        assert_eq!(
            error.to_string(),
            "name must not contain control or invisible characters"
        );
        let mut newline = request(&["read_registry"]);
        newline.name = "ci\nFAKE LOG LINE".into();
        assert_eq!(
            NewDeployToken::validate(newline, NamespaceKind::Project, now())
                .unwrap_err()
                .field,
            "name"
        );
        let error = parse_username("ci\u{1b}[0m").unwrap_err();
        assert_eq!(
            error.to_string(),
            "username must not contain control or invisible characters"
        );
    }

    #[test]
    fn an_expiry_in_the_past_or_now_is_refused() {
        let mut past = request(&["read_registry"]);
        past.expires_at = Some(now());
        assert_eq!(
            NewDeployToken::validate(past, NamespaceKind::Project, now())
                .unwrap_err()
                .field,
            "expires_at"
        );
    }

    #[test]
    fn a_write_only_registry_token_gets_a_warning() {
        let token =
            NewDeployToken::validate(request(&["write_registry"]), NamespaceKind::Project, now())
                .unwrap();
        assert_eq!(token.warnings().len(), 1);
        let both = NewDeployToken::validate(
            request(&["read_registry", "write_registry"]),
            NamespaceKind::Project,
            now(),
        )
        .unwrap();
        assert!(both.warnings().is_empty());
    }

    #[test]
    fn the_default_username_carries_the_id() {
        assert_eq!(default_username(42), "gitlab+deploy-token-42");
    }
}
