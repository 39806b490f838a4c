//! Creating groups and projects (DOMAIN.md "Namespaces"): groups nest, projects live in a
//! group, parents must exist, and one path names at most one of them.

use chrono::{DateTime, Utc};

use crate::access::repository::NamespacePath;
use crate::domain::{Namespace, NamespaceKind, ValidationError};
use crate::error::Error;
use crate::store::Store;

pub fn parse_path(text: &str) -> Result<NamespacePath, Error> {
    NamespacePath::parse(text.trim())
        .map_err(|error| ValidationError::new("path", error.to_string()).into())
}

pub async fn create(
    store: &dyn Store,
    kind: NamespaceKind,
    path: &str,
    now: DateTime<Utc>,
) -> Result<Namespace, Error> {
    let path = parse_path(path)?;
    let parent = match path.parent() {
        Some(parent_path) => {
            let parent = store.find_namespace(&parent_path).await?.ok_or_else(|| {
                Error::NotFound(format!("parent group {}", parent_path.as_str()))
            })?;
            if parent.kind != NamespaceKind::Group {
                return Err(ValidationError::new(
                    "path",
                    format!("parent {} is a project, not a group", parent_path.as_str()),
                )
                .into());
            }
            Some(parent)
        }
        None if kind == NamespaceKind::Project => {
            return Err(ValidationError::new(
                "path",
                "a project must live in a group (use group/project)",
            )
            .into())
        }
        None => None,
    };
    let name = path.last_component().to_owned();
    Ok(store
        .create_namespace(kind, &path, &name, parent.map(|p| p.id), now)
        .await?)
}

/// Finds a namespace of the given kind by full path.
pub async fn find(
    store: &dyn Store,
    kind: NamespaceKind,
    path: &str,
) -> Result<Namespace, Error> {
    let not_found = || {
        let label = match kind {
            NamespaceKind::Group => "Group",
            NamespaceKind::Project => "Project",
        };
        Error::NotFound(format!("{label} {}", path.trim()))
    };
    let path = NamespacePath::parse(path.trim()).map_err(|_| not_found())?;
    match store.find_namespace(&path).await? {
        Some(namespace) if namespace.kind == kind => Ok(namespace),
        _ => Err(not_found()),
    }
}
