//! Groups and projects (DOMAIN.md "Namespaces"): groups nest, projects live in a group,
//! parents must exist, and one path names at most one of them.

use chrono::{DateTime, Utc};

use super::caller::Caller;
use crate::access::permissions;
use crate::domain::NamespacePath;
use crate::domain::{AuditAction, Namespace, NamespaceKind, Role, ValidationError, Visibility};
use crate::error::Error;
use crate::store::Store;

/// A new group's or project's path. Like GitLab, no component may end in `.git` or `.atom`:
/// git URLs end the project path at `.git`, and a group `acme/pub.git` would make
/// `/acme/pub.git/private.git` mean two projects.
pub fn parse_path(text: &str) -> Result<NamespacePath, Error> {
    let path = NamespacePath::parse(text.trim())
        .map_err(|error| ValidationError::new("path", error.to_string()))?;
    if let Some(component) = path
        .as_str()
        .split('/')
        .find(|component| component.ends_with(".git") || component.ends_with(".atom"))
    {
        return Err(ValidationError::new(
            "path",
            format!("component \"{component}\" must not end in '.git' or '.atom'"),
        )
        .into());
    }
    Ok(path)
}

/// How a caller names a namespace: the API takes a numeric id or a full path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamespaceRef {
    Id(i64),
    Path(String),
}

impl NamespaceRef {
    /// `42` is an id, anything else a (URL-decoded) full path.
    pub fn parse(text: &str) -> NamespaceRef {
        match text.parse::<i64>() {
            Ok(id) => NamespaceRef::Id(id),
            Err(_) => NamespaceRef::Path(text.to_owned()),
        }
    }
}

impl std::fmt::Display for NamespaceRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NamespaceRef::Id(id) => write!(f, "{id}"),
            NamespaceRef::Path(path) => f.write_str(path),
        }
    }
}

pub fn kind_label(kind: NamespaceKind) -> &'static str {
    match kind {
        NamespaceKind::Group => "Group",
        NamespaceKind::Project => "Project",
    }
}

/// Creates a group, or a private project.
#[tracing::instrument(skip_all)]
pub async fn create(
    store: &dyn Store,
    caller: &Caller,
    kind: NamespaceKind,
    path: &str,
    now: DateTime<Utc>,
) -> Result<Namespace, Error> {
    create_with_visibility(store, caller, kind, path, Visibility::default(), now).await
}

/// Creates a group or project with the given visibility.
#[tracing::instrument(skip_all)]
pub async fn create_with_visibility(
    store: &dyn Store,
    caller: &Caller,
    kind: NamespaceKind,
    path: &str,
    visibility: Visibility,
    now: DateTime<Utc>,
) -> Result<Namespace, Error> {
    let path = parse_path(path)?;
    let parent = match path.parent() {
        Some(parent_path) => {
            let parent = store
                .find_namespace(&parent_path)
                .await?
                .ok_or_else(|| Error::not_found("parent group", parent_path.as_str()))?;
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
    let audit = |created: &Namespace| {
        caller.audit(
            AuditAction::NamespaceCreate,
            Some(created.id),
            serde_json::json!({
                "kind": created.kind.as_str(),
                "full_path": created.full_path.as_str(),
                "visibility": created.visibility.as_str(),
            }),
            now,
        )
    };
    Ok(store
        .create_namespace(
            kind,
            &path,
            &name,
            parent.map(|p| p.id),
            visibility,
            now,
            &audit,
        )
        .await?)
}

/// Every group or every project, ordered by path (the operator's listing).
pub async fn list(store: &dyn Store, kind: NamespaceKind) -> Result<Vec<Namespace>, Error> {
    let all = store
        .search_namespaces(None, "", u64::from(u32::MAX))
        .await?;
    Ok(all.into_iter().filter(|n| n.kind == kind).collect())
}

/// Finds a namespace of the given kind; 404 when absent or of the other kind.
pub async fn find(
    store: &dyn Store,
    kind: NamespaceKind,
    reference: &NamespaceRef,
) -> Result<Namespace, Error> {
    let not_found = || Error::not_found(kind_label(kind), reference);
    let found = match reference {
        NamespaceRef::Id(id) => store.find_namespace_by_id(*id).await?,
        NamespaceRef::Path(path) => match NamespacePath::parse(path.trim()) {
            Ok(path) => store.find_namespace(&path).await?,
            Err(_) => None,
        },
    };
    match found {
        Some(namespace) if namespace.kind == kind => Ok(namespace),
        _ => Err(not_found()),
    }
}

/// The caller's role on a namespace (inherited from ancestor groups, highest wins).
pub async fn role_of(
    store: &dyn Store,
    caller: &Caller,
    namespace: &Namespace,
) -> Result<Option<Role>, Error> {
    match caller.user_id() {
        Some(user_id) => Ok(store.highest_role(user_id, namespace).await?),
        None => Ok(None),
    }
}

/// Finds a namespace the caller may see; a namespace they may not see is reported as absent,
/// as GitLab does, so that its existence does not leak.
pub async fn find_visible(
    store: &dyn Store,
    caller: &Caller,
    kind: NamespaceKind,
    reference: &NamespaceRef,
) -> Result<(Namespace, Option<Role>), Error> {
    let namespace = find(store, kind, reference).await?;
    let role = role_of(store, caller, &namespace).await?;
    if !permissions::may_see_namespace(caller.principal(), role) {
        return Err(Error::not_found(kind_label(kind), reference));
    }
    Ok((namespace, role))
}

/// Changes a project's visibility (Owner or admin; the operator always). A project the caller
/// may not see is reported as absent; one they see without being Owner is 403.
#[tracing::instrument(skip_all)]
pub async fn set_visibility(
    store: &dyn Store,
    caller: &Caller,
    reference: &NamespaceRef,
    visibility: Visibility,
) -> Result<Namespace, Error> {
    let (project, role) = find_visible(store, caller, NamespaceKind::Project, reference).await?;
    if !permissions::may_change_visibility(caller.principal(), role) {
        return Err(Error::Forbidden);
    }
    if project.visibility != visibility {
        tracing::info!(
            project = %project.full_path.as_str(),
            from = %project.visibility,
            to = %visibility,
            actor = %caller.actor_name(),
            "project visibility changed"
        );
    }
    let audit = caller.audit(
        AuditAction::NamespaceVisibilityChange,
        Some(project.id),
        serde_json::json!({
            "full_path": project.full_path.as_str(),
            "from": project.visibility.as_str(),
            "to": visibility.as_str(),
        }),
        Utc::now(),
    );
    store
        .set_visibility(project.id, visibility, &audit)
        .await?
        .ok_or_else(|| Error::not_found("Project", reference))
}

#[cfg(test)]
mod tests {
    use super::parse_path;

    #[test]
    fn a_new_namespace_path_may_not_end_a_component_in_git_or_atom() {
        for refused in ["acme/pub.git", "acme.git/web", "acme/feed.atom", "x.atom"] {
            let error = parse_path(refused).unwrap_err().to_string();
            assert!(
                error.contains("must not end in '.git' or '.atom'"),
                "{refused}: {error}"
            );
        }
        for accepted in ["acme/web", "acme/gitlab", "acme/web.github", "acme/atomic"] {
            assert_eq!(parse_path(accepted).unwrap().as_str(), accepted);
        }
    }
}
