//! Groups and projects (DOMAIN.md "Namespaces").

use chrono::{DateTime, Utc};

use crate::access::repository::NamespacePath;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NamespaceKind {
    Group,
    Project,
}

impl NamespaceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NamespaceKind::Group => "group",
            NamespaceKind::Project => "project",
        }
    }

    pub fn parse(text: &str) -> Option<NamespaceKind> {
        match text {
            "group" => Some(NamespaceKind::Group),
            "project" => Some(NamespaceKind::Project),
            _ => None,
        }
    }
}

impl std::fmt::Display for NamespaceKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
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
    pub created_at: DateTime<Utc>,
}
