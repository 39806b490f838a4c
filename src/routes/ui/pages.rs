//! The page templates (askama, compiled into the binary from `templates/`) and the plain
//! values they show. Everything a template prints is HTML-escaped by askama.

use askama::Template;
use chrono::{DateTime, Utc};

use crate::domain::registry_event::{RegistryAction, StoredRegistryEvent, TargetKind};
use crate::domain::{AuditAction, AuditEvent, DeployToken, DeployTokenScope, NamespaceKind};

#[derive(Template)]
#[template(path = "sign_in.html")]
pub struct SignInPage {
    pub user_name: Option<String>,
    pub csrf: String,
    pub username: String,
    /// Where to go after signing in (a local path).
    pub redirect_to: String,
    pub error: Option<String>,
    pub notice: Option<String>,
}

pub struct NamespaceRow {
    pub kind: &'static str,
    pub path: String,
    pub url: String,
    pub access: String,
}

#[derive(Template)]
#[template(path = "home.html")]
pub struct HomePage {
    pub user_name: Option<String>,
    pub csrf: String,
    pub search: String,
    pub namespaces: Vec<NamespaceRow>,
}

pub struct TokenRow {
    pub id: i64,
    pub name: String,
    pub username: String,
    pub scopes: String,
    pub created: String,
    pub expires: String,
    pub last_used: String,
    pub url: String,
    /// The address allow-list, or "Anywhere".
    pub allowed_from: String,
    /// The repository patterns, or "All".
    pub repositories: String,
}

pub struct ScopeOption {
    pub name: &'static str,
    pub description: &'static str,
    pub checked: bool,
}

/// What the add form was filled with, to show it again next to its errors.
#[derive(Default)]
pub struct FormValues {
    pub name: String,
    pub expires_at: String,
    pub username: String,
    pub scopes: Vec<String>,
    /// Comma-separated, as typed.
    pub ip_restriction_ranges: String,
    /// Comma-separated, as typed.
    pub repository_patterns: String,
}

/// Errors shown next to their field.
#[derive(Default)]
pub struct FieldErrors {
    pub name: Option<String>,
    pub expires_at: Option<String>,
    pub username: Option<String>,
    pub scopes: Option<String>,
    pub ip_restriction_ranges: Option<String>,
    pub repository_patterns: Option<String>,
    pub general: Option<String>,
}

impl FieldErrors {
    /// Puts a validation message next to the field it is about.
    pub fn set(&mut self, field: &str, message: String) {
        let slot = match field {
            "name" => &mut self.name,
            "expires_at" => &mut self.expires_at,
            "username" => &mut self.username,
            "scopes" => &mut self.scopes,
            "ip_restriction_ranges" => &mut self.ip_restriction_ranges,
            "repository_patterns" => &mut self.repository_patterns,
            _ => &mut self.general,
        };
        // The first message of a field stays: it is the one to fix first.
        if slot.is_none() {
            *slot = Some(message);
        }
    }

    /// The first field with an error, in the form's order: it gets the focus.
    pub fn first_field(&self) -> Option<&'static str> {
        [
            ("name", &self.name),
            ("expires_at", &self.expires_at),
            ("username", &self.username),
            ("scopes", &self.scopes),
            ("ip_restriction_ranges", &self.ip_restriction_ranges),
            ("repository_patterns", &self.repository_patterns),
        ]
        .into_iter()
        .find(|(_, error)| error.is_some())
        .map(|(field, _)| field)
    }

    /// How many fields have an error.
    pub fn count(&self) -> usize {
        [
            &self.name,
            &self.expires_at,
            &self.username,
            &self.scopes,
            &self.ip_restriction_ranges,
            &self.repository_patterns,
        ]
        .into_iter()
        .filter(|error| error.is_some())
        .count()
    }
}

/// The username and secret of a token just created: shown once, in this response only.
pub struct CreatedView {
    pub username: String,
    pub secret: String,
}

#[derive(Template)]
#[template(path = "settings.html")]
pub struct SettingsPage {
    pub user_name: Option<String>,
    pub csrf: String,
    pub kind: &'static str,
    pub path: String,
    pub create_url: String,
    pub tokens: Vec<TokenRow>,
    pub may_create: bool,
    pub may_revoke: bool,
    pub scopes: Vec<ScopeOption>,
    pub form: FormValues,
    pub errors: FieldErrors,
    pub created: Option<CreatedView>,
    pub nonce: String,
    pub notice: Option<String>,
    /// What the lifetime policy asks of a new token here, if anything.
    pub expiry_rule: Option<String>,
    /// The latest expiry date allowed (the date input's `max`).
    pub expires_max: Option<String>,
}

pub struct EventRow {
    pub at: String,
    pub action: String,
    pub actor: String,
    pub from: String,
}

/// One line of what the token did at the registry (its notifications).
pub struct RegistryEventRow {
    pub at: String,
    /// `pushed`, `pulled` (`pulled 12 blobs` for a day's blob pulls), `mounted`, `deleted`.
    pub action: String,
    /// `repository:tag`, `repository@digest`, or the repository alone.
    pub target: String,
    pub from: String,
}

pub fn registry_event_row(event: &StoredRegistryEvent) -> RegistryEventRow {
    let verb = match event.action {
        RegistryAction::Push => "pushed",
        RegistryAction::Pull => "pulled",
        RegistryAction::Mount => "mounted",
        RegistryAction::Delete => "deleted",
    };
    let action = match (event.kind, event.count) {
        (TargetKind::Blob, 1) => format!("{verb} a blob"),
        (TargetKind::Blob, count) => format!("{verb} {count} blobs"),
        (TargetKind::Manifest, _) => format!("{verb} a manifest"),
        (TargetKind::Tag, _) => format!("{verb} a tag"),
        (TargetKind::Repository, _) => format!("{verb} the repository"),
    };
    let target = match (&event.tag, &event.digest) {
        (Some(tag), Some(digest)) => format!("{}:{tag} ({digest})", event.repository),
        (Some(tag), None) => format!("{}:{tag}", event.repository),
        (None, Some(digest)) => format!("{}@{digest}", event.repository),
        (None, None) => event.repository.clone(),
    };
    RegistryEventRow {
        at: when(event.last_at),
        action,
        target,
        from: event.address.clone().unwrap_or_else(|| "—".into()),
    }
}

#[derive(Template)]
#[template(path = "token.html")]
pub struct TokenPage {
    pub user_name: Option<String>,
    pub csrf: String,
    pub kind: &'static str,
    pub path: String,
    pub settings_url: String,
    pub revoke_url: String,
    pub rotation: super::rotation::RotationView,
    pub token: TokenRow,
    pub status: &'static str,
    pub may_revoke: bool,
    pub created_by: Option<String>,
    pub last_used_from: Option<String>,
    pub events: Vec<EventRow>,
    pub events_truncated: bool,
    pub registry_events: Vec<RegistryEventRow>,
    /// How many registry events the token has in all (more than shown: see the API).
    pub registry_events_total: u64,
}

#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage {
    pub user_name: Option<String>,
    pub csrf: String,
    pub heading: &'static str,
    pub message: String,
}

pub fn kind_word(kind: NamespaceKind) -> &'static str {
    match kind {
        NamespaceKind::Group => "group",
        NamespaceKind::Project => "project",
    }
}

/// `/acme/web` for a project, `/groups/acme` for a group: GitLab's own addresses.
pub fn namespace_url(kind: NamespaceKind, path: &str) -> String {
    match kind {
        NamespaceKind::Group => format!("/groups/{path}"),
        NamespaceKind::Project => format!("/{path}"),
    }
}

pub fn settings_url(kind: NamespaceKind, path: &str) -> String {
    format!("{}/-/settings/repository", namespace_url(kind, path))
}

pub fn token_url(kind: NamespaceKind, path: &str, id: i64) -> String {
    format!("{}/-/deploy_tokens/{id}", namespace_url(kind, path))
}

pub fn when(instant: DateTime<Utc>) -> String {
    instant.format("%Y-%m-%d %H:%M UTC").to_string()
}

pub fn token_row(token: &DeployToken) -> TokenRow {
    let path = token.owner.full_path.as_str();
    let restrictions = &token.restrictions;
    TokenRow {
        allowed_from: if restrictions.ip_ranges.is_empty() {
            "Anywhere".into()
        } else {
            restrictions.ip_ranges.to_text().replace(',', ", ")
        },
        repositories: if restrictions.repository_patterns.is_empty() {
            "All".into()
        } else {
            restrictions.repository_patterns.texts().join(", ")
        },
        id: token.id,
        name: token.name.clone(),
        username: token.username.clone(),
        scopes: token.scopes.names().join(", "),
        created: when(token.created_at),
        expires: token
            .expires_at
            .map(|at| at.format("%Y-%m-%d").to_string())
            .unwrap_or_else(|| "Never".into()),
        last_used: token
            .last_used_at
            .map(when)
            .unwrap_or_else(|| "Never".into()),
        url: token_url(token.owner.kind, path, token.id),
    }
}

/// The scopes valid for this kind of namespace, each with its meaning.
pub fn scope_options(kind: NamespaceKind, checked: &[String]) -> Vec<ScopeOption> {
    DeployTokenScope::ALL
        .into_iter()
        .filter(|scope| kind == NamespaceKind::Group || !scope.is_group_only())
        .map(|scope| ScopeOption {
            name: scope.as_str(),
            description: scope.description(),
            checked: checked.iter().any(|name| name == scope.as_str()),
        })
        .collect()
}

/// "revoked as leaked (reported by github, found at https://…)".
fn leaked_text(event: &AuditEvent) -> String {
    let what = match event.action {
        AuditAction::RefreshTokenRevoke => "a refresh token revoked as leaked",
        AuditAction::WorkloadCredentialRevoke => "an exchanged credential revoked as leaked",
        _ => "revoked as leaked",
    };
    let reporter = event.details["reporter"].as_str().unwrap_or("unknown");
    match event.details["location"].as_str() {
        Some(location) => format!("{what} (reported by {reporter}, found at {location})"),
        None => format!("{what} (reported by {reporter})"),
    }
}

/// "rotated (the previous secret works until 2026-12-05 10:40 UTC)".
fn rotated_text(event: &AuditEvent) -> String {
    match event.details["grace_period_seconds"].as_i64() {
        Some(seconds) if seconds > 0 => format!(
            "rotated (the previous secret works {seconds} s more, until {})",
            event.details["previous_secret_expires_at"]
                .as_str()
                .unwrap_or("?")
        ),
        _ => "rotated (the previous secret stopped at once)".to_owned(),
    }
}

pub fn event_row(event: &AuditEvent) -> EventRow {
    EventRow {
        at: when(event.created_at),
        action: match event.action {
            AuditAction::DeployTokenRevoke
            | AuditAction::RefreshTokenRevoke
            | AuditAction::WorkloadCredentialRevoke
                if event.details["reason"] == "leaked" =>
            {
                leaked_text(event)
            }
            AuditAction::DeployTokenRotate => rotated_text(event),
            other => match other {
                AuditAction::DeployTokenCreate => "created",
                AuditAction::DeployTokenRevoke => "revoked",
                AuditAction::DeployTokenDelete => "deleted",
                AuditAction::RegistryTokenIssue => "used for a registry token",
                AuditAction::CiCredentialsRead => "credentials handed to CI",
                AuditAction::LoginFailure => "failed sign-in",
                AuditAction::LoginLockout => "sign-ins locked out",
                AuditAction::PersonalAccessTokenRevoke => "personal access token revoked",
                AuditAction::RefreshTokenRevoke => "a refresh token revoked",
                AuditAction::WorkloadIdentityCreate => "workload identity created",
                AuditAction::WorkloadIdentityDelete => "workload identity deleted",
                AuditAction::WorkloadLogin => "workload login",
                AuditAction::WorkloadExchange => "workload token exchange",
                AuditAction::DeployTokenNewAddress => "used from a new address",
                AuditAction::WorkloadCredentialRevoke => "an exchanged credential revoked",
                AuditAction::NamespaceCreate => "created",
                AuditAction::NamespaceVisibilityChange => "visibility changed",
                AuditAction::UserCreate => "user created",
                AuditAction::UserBlock => "user blocked",
                AuditAction::UserUnblock => "user unblocked",
                AuditAction::UserPasswordChange => "password set",
                AuditAction::MemberSet => "member added or changed",
                AuditAction::MemberRemove => "member removed",
                AuditAction::PersonalAccessTokenCreate => "personal access token created",
                AuditAction::DeployTokenUpdate => "address allow-list changed",
                AuditAction::GroupUpdate => "group address allow-list changed",
                AuditAction::DeployTokenRotate => "rotated",
                AuditAction::PersonalAccessTokenRotate => "personal access token rotated",
                AuditAction::GroupTokenPolicyChange => "group token lifetime limits changed",
            }
            .to_owned(),
        },
        actor: event.actor.clone(),
        from: event.ip_address.clone().unwrap_or_else(|| "—".into()),
    }
}
