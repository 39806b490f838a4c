//! Groups and projects (DOMAIN.md "Namespaces").

use chrono::{DateTime, Utc};

use crate::domain::NamespacePath;

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr, strum::EnumString, strum::Display,
)]
#[strum(serialize_all = "snake_case")]
pub enum NamespaceKind {
    Group,
    Project,
}

impl NamespaceKind {
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    pub fn parse(text: &str) -> Option<NamespaceKind> {
        text.parse().ok()
    }
}

/// Who may read a project without a token (GitLab's three levels). Deploy tokens are not
/// users, so `internal` ("any signed-in user") grants them nothing beyond their scopes, and
/// anonymous callers nothing at all: only `public` opens reads to everyone.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    Hash,
    strum::EnumCount,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::Display,
)]
#[strum(serialize_all = "snake_case", ascii_case_insensitive)]
pub enum Visibility {
    #[default]
    Private,
    Internal,
    Public,
}

impl Visibility {
    pub const ALL: [Visibility; 3] = [
        Visibility::Private,
        Visibility::Internal,
        Visibility::Public,
    ];

    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// Parses `private`, `internal` or `public` (case-insensitive, surrounding blanks ignored).
    pub fn parse(text: &str) -> Result<Visibility, crate::domain::ValidationError> {
        let text = text.trim();
        text.parse().map_err(|_| {
            crate::domain::ValidationError::new(
                "visibility",
                format!("{text:?} is not one of private, internal, public"),
            )
        })
    }
}

/// A group or a project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespace {
    pub id: i64,
    pub kind: NamespaceKind,
    pub parent_id: Option<i64>,
    pub full_path: NamespacePath,
    pub name: String,
    /// Meaningful for projects; groups keep the default.
    pub visibility: Visibility,
    pub created_at: DateTime<Utc>,
}

crate::every_variant_listed!(Visibility);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visibility_parses_the_three_levels_and_names_them_on_error() {
        assert_eq!(Visibility::parse("public"), Ok(Visibility::Public));
        assert_eq!(Visibility::parse(" Internal "), Ok(Visibility::Internal));
        assert_eq!(Visibility::parse("private"), Ok(Visibility::Private));
        assert_eq!(Visibility::default(), Visibility::Private);
        let error = Visibility::parse("secret").unwrap_err();
        assert_eq!(error.field, "visibility");
        assert!(
            error.message.contains("private, internal, public"),
            "{error}"
        );
    }
}
