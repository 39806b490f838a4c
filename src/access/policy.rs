//! Requested → granted: what a deploy token may do with the scopes it asked for.
//!
//! Implements DOMAIN.md "Scopes → actions" and "Which repositories a token reaches", and the
//! answer shape of PROTOCOL.md §2, §6 and §8:
//! - `container_registry`: a token without `read_registry` or `write_registry` is denied (403
//!   `DENIED`, never a JWT, not even for a login). `pull` needs `read_registry`, `push` needs
//!   `write_registry`, both only on a project the token reaches; `delete`, `*` and every
//!   non-`repository` type (`registry:catalog:*`) are never granted to deploy tokens.
//! - `dependency_proxy` (the group's virtual registry): a token needs `read_virtual_registry`,
//!   `write_virtual_registry`, or the legacy pair `read_registry` + `write_registry`, else it is
//!   denied. `pull` needs any of those; `push` and `delete` need `write_virtual_registry`; only
//!   for repositories under the token's group. The virtual registry belongs to a group, so a
//!   project token is denied outright (403 `DENIED` "access forbidden", as GitLab), which makes
//!   `docker login` against it fail at once instead of succeeding with an empty grant.
//! - A token's name never changes what it reaches: a group `gitlab-deploy-token` reaches every
//!   project of its group and subgroups like any group token (DOMAIN.md "The
//!   gitlab-deploy-token name"; GitLab's `GroupDeployToken#has_access_to?` ignores the name).
//! - Anonymous callers (no credentials) on `container_registry`: `pull` on public projects only
//!   ([`authorize_anonymous`]); never push, never the virtual registry.
//! - Git and package operations behind a reverse proxy ([`authorize_operation`], the
//!   `repository` and `package` scope families): git fetch needs `read_repository`, git push is
//!   never allowed to deploy tokens; package downloads need `read_package_registry` (or
//!   `write_package_registry`, which GitLab lets read too), uploads `write_package_registry`,
//!   deletes never. Reads of public projects are open to everyone; with external
//!   authorization on, deploy tokens are refused for both families (GitLab's rule).
//! - Valid credentials but disallowed actions: the actions are left out (PROTOCOL.md §8), never
//!   an error; entries left with no action are omitted; scopes for the same type + name merge.

use std::fmt;

use crate::access::repository::{NamespacePath, RepositoryPath};
use crate::access::requested_scope::{Action, RequestedScope};
use crate::domain::repository_pattern::RepositoryPatterns;
use crate::domain::{DeployTokenScope, ScopeSet, Visibility};

/// The resource type of repository scopes, the only type deploy tokens are granted.
const REPOSITORY: &str = "repository";

/// The service a token is requested for (the `service` parameter, the JWT `aud`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Service {
    /// The container registry proper (default name `container_registry`).
    ContainerRegistry,
    /// The group's virtual registry (default name `dependency_proxy`).
    DependencyProxy,
}

/// What owns a deploy token: exactly one project or one group.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum TokenOwner {
    /// A project token; reaches exactly this project.
    Project(NamespacePath),
    /// A group token (whatever its name, `gitlab-deploy-token` included); reaches every
    /// project in the group and its subgroups.
    Group(NamespacePath),
}

/// The facts about an authenticated deploy token that the policy needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenAccess {
    /// The token's scopes.
    pub scopes: ScopeSet,
    /// The token's owner.
    pub owner: TokenOwner,
    /// The repositories below the owner it is limited to (empty: no limit). Every grant —
    /// registry, virtual registry, git and packages — passes [`within_patterns`].
    pub repositories: RepositoryPatterns,
}

/// One requested scope plus, for container_registry repository scopes, the project its
/// repository resolved to (None = no such project / invalid name).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedScope {
    /// The scope as requested.
    pub requested: RequestedScope,
    /// The project found by [`resolve_project`](super::resolve_project); unused for
    /// [`Service::DependencyProxy`].
    pub project: Option<NamespacePath>,
}

/// One granted entry of the JWT `access` claim.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrantedAccess {
    resource_type: String,
    name: String,
    actions: Vec<&'static str>,
}

impl GrantedAccess {
    /// The resource type (always `repository` for deploy tokens).
    pub fn resource_type(&self) -> &str {
        &self.resource_type
    }

    /// The repository name, exactly as requested.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Granted actions, never empty, in the order `pull`, `push`, `delete`.
    pub fn actions(&self) -> &[&'static str] {
        &self.actions
    }
}

impl fmt::Display for GrantedAccess {
    /// Formats as `type:name:action,action`, the OAuth2 scope syntax.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}",
            self.resource_type,
            self.name,
            self.actions.join(",")
        )
    }
}

/// What [`authorize`] granted; only the policy can construct it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Granted {
    entries: Vec<GrantedAccess>,
}

impl Granted {
    /// The granted entries, in the order their scopes were first requested; each has at least
    /// one action.
    pub fn entries(&self) -> &[GrantedAccess] {
        &self.entries
    }

    /// True when nothing was granted (`access: []`, enough for `GET /v2/`).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The granted scopes, space-separated, for the OAuth2 `scope` response field
    /// (`repository:a/b:pull,push repository:a/c:pull`); empty when nothing was granted.
    pub fn scope_string(&self) -> String {
        self.entries
            .iter()
            .map(GrantedAccess::to_string)
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Why no registry token at all may be issued.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    /// The token holds no scope that opens this service; the caller answers 403 `DENIED`.
    #[error("access forbidden")]
    NoScopeForService,
    /// A project token asked for the group's virtual registry; the caller answers 403
    /// `DENIED` as for a missing scope.
    #[error("access forbidden")]
    NotAGroupToken,
}

/// True when a token with `scopes` may obtain any token for `service` (otherwise 403).
pub fn may_use_service(service: Service, scopes: ScopeSet) -> bool {
    use DeployTokenScope::*;
    match service {
        Service::ContainerRegistry => {
            scopes.contains(ReadRegistry) || scopes.contains(WriteRegistry)
        }
        Service::DependencyProxy => may_pull_virtual(scopes),
    }
}

/// `read_virtual_registry`, `write_virtual_registry`, or the legacy pair.
fn may_pull_virtual(scopes: ScopeSet) -> bool {
    use DeployTokenScope::*;
    scopes.contains(ReadVirtualRegistry)
        || scopes.contains(WriteVirtualRegistry)
        || (scopes.contains(ReadRegistry) && scopes.contains(WriteRegistry))
}

/// The grantable actions, kept as flags so merging is order-independent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Actions {
    pull: bool,
    push: bool,
    delete: bool,
}

impl Actions {
    fn is_empty(self) -> bool {
        !(self.pull || self.push || self.delete)
    }

    fn union(self, other: Actions) -> Actions {
        Actions {
            pull: self.pull || other.pull,
            push: self.push || other.push,
            delete: self.delete || other.delete,
        }
    }

    fn names(self) -> Vec<&'static str> {
        [
            (self.pull, "pull"),
            (self.push, "push"),
            (self.delete, "delete"),
        ]
        .into_iter()
        .filter_map(|(granted, name)| granted.then_some(name))
        .collect()
    }
}

/// Decides which of `requests` the token is granted for `service`.
///
/// Returns [`Denied::NoScopeForService`] when the token may not use the service at all (even
/// for a login with no scopes); otherwise every disallowed action is simply left out.
pub fn authorize(
    service: Service,
    token: &TokenAccess,
    requests: &[ResolvedScope],
) -> Result<Granted, Denied> {
    if !may_use_service(service, token.scopes) {
        return Err(Denied::NoScopeForService);
    }
    if service == Service::DependencyProxy && matches!(token.owner, TokenOwner::Project(_)) {
        return Err(Denied::NotAGroupToken);
    }
    // (name, actions) in first-requested order; only `repository` scopes are ever granted.
    let mut granted: Vec<(&str, Actions)> = Vec::new();
    for request in requests {
        if request.requested.resource_type != REPOSITORY {
            continue;
        }
        let actions = match service {
            Service::ContainerRegistry => registry_actions(token, request),
            Service::DependencyProxy => virtual_registry_actions(token, &request.requested),
        };
        if actions.is_empty() {
            continue;
        }
        let name = request.requested.name.as_str();
        match granted.iter_mut().find(|(n, _)| *n == name) {
            Some((_, existing)) => *existing = existing.union(actions),
            None => granted.push((name, actions)),
        }
    }
    Ok(Granted {
        entries: granted
            .into_iter()
            .map(|(name, actions)| GrantedAccess {
                resource_type: REPOSITORY.to_owned(),
                name: name.to_owned(),
                actions: actions.names(),
            })
            .collect(),
    })
}

/// `container_registry`: pull with read_registry, push with write_registry, on a reached
/// project; never delete or `*`.
fn registry_actions(token: &TokenAccess, request: &ResolvedScope) -> Actions {
    let Some(project) = &request.project else {
        return Actions::default();
    };
    // Defence in depth: the resolved project must be a candidate of the requested name.
    let Ok(repo) = RepositoryPath::parse(&request.requested.name) else {
        return Actions::default();
    };
    if !repo.has_candidate_project(project) {
        return Actions::default();
    }
    if !reaches_project(&token.owner, project) || !within_patterns(token, repo.as_str()) {
        return Actions::default();
    }
    let requested = &request.requested;
    Actions {
        pull: requested.has_action(&Action::Pull)
            && token.scopes.contains(DeployTokenScope::ReadRegistry),
        push: requested.has_action(&Action::Push)
            && token.scopes.contains(DeployTokenScope::WriteRegistry),
        delete: false,
    }
}

/// `dependency_proxy`: only under the token's group; pull with any virtual-registry scope or
/// the legacy pair, push and delete with write_virtual_registry; `*` adds nothing.
fn virtual_registry_actions(token: &TokenAccess, requested: &RequestedScope) -> Actions {
    let TokenOwner::Group(group) = &token.owner else {
        return Actions::default();
    };
    let Ok(repo) = RepositoryPath::parse(&requested.name) else {
        return Actions::default();
    };
    if !repo.is_within(group) || !within_patterns(token, repo.as_str()) {
        return Actions::default();
    }
    let write = token
        .scopes
        .contains(DeployTokenScope::WriteVirtualRegistry);
    Actions {
        pull: requested.has_action(&Action::Pull) && may_pull_virtual(token.scopes),
        push: requested.has_action(&Action::Push) && write,
        delete: requested.has_action(&Action::Delete) && write,
    }
}

/// Whether a token of `owner` reaches `project` (DOMAIN.md "Which repositories a token
/// reaches"); the one rule for the registry, git and packages alike.
fn reaches_project(owner: &TokenOwner, project: &NamespacePath) -> bool {
    match owner {
        TokenOwner::Project(own) => own == project,
        TokenOwner::Group(group) => group.is_same_or_ancestor_of(project),
    }
}

fn owner_path(owner: &TokenOwner) -> &NamespacePath {
    match owner {
        TokenOwner::Project(path) | TokenOwner::Group(path) => path,
    }
}

/// The segments of `path` below the token's owner; `None` when it is not at or below it.
fn below_owner<'p>(owner: &TokenOwner, path: &'p str) -> Option<Vec<&'p str>> {
    let owner = owner_path(owner).as_str();
    let rest = path.strip_prefix(owner)?;
    match rest.strip_prefix('/') {
        _ if rest.is_empty() => Some(Vec::new()),
        Some(rest) => Some(rest.split('/').collect()),
        None => None,
    }
}

/// Whether the repository (or project) at `path`, already known to be reached by the
/// owner, is one of the token's `repository_patterns` (issue #27). The paths here are
/// validated names (lowercase, no `..`, no `%`), so a pattern is compared with what the
/// registry, git or the package store will really serve.
fn within_patterns(token: &TokenAccess, path: &str) -> bool {
    token.repositories.is_empty()
        || below_owner(&token.owner, path).is_some_and(|below| token.repositories.allows(&below))
}

/// Whether a group-wide read of `group` stays within the token's patterns: only when they
/// allow everything below it (`**`, or `sub/**` for `acme/sub`).
fn within_patterns_everywhere_below(token: &TokenAccess, group: &NamespacePath) -> bool {
    token.repositories.is_empty()
        || below_owner(&token.owner, group.as_str())
            .is_some_and(|below| token.repositories.allows_everything_below(&below))
}

/// Whether a token of `owner` reaches the group-level endpoints of `group`: a group token
/// reaches its group and every subgroup; a project token reaches no group.
fn reaches_group(owner: &TokenOwner, group: &NamespacePath) -> bool {
    match owner {
        TokenOwner::Project(_) => false,
        TokenOwner::Group(own) => own.is_same_or_ancestor_of(group),
    }
}

/// Grants an anonymous `container_registry` request (no credentials): `pull`, and only on
/// repositories whose resolved project is among `public_projects`. Everything else is left
/// out, so a private project yields `access: []` and the registry refuses the pull, exactly
/// as for a token without access. Other services grant anonymous callers nothing.
pub fn authorize_anonymous(
    service: Service,
    requests: &[ResolvedScope],
    public_projects: &[NamespacePath],
) -> Granted {
    let mut granted: Vec<&str> = Vec::new();
    if service == Service::ContainerRegistry {
        for request in requests {
            let requested = &request.requested;
            if requested.resource_type != REPOSITORY || !requested.has_action(&Action::Pull) {
                continue;
            }
            let Some(project) = &request.project else {
                continue;
            };
            let Ok(repo) = RepositoryPath::parse(&requested.name) else {
                continue;
            };
            if !repo.has_candidate_project(project) || !public_projects.contains(project) {
                continue;
            }
            if !granted.contains(&requested.name.as_str()) {
                granted.push(&requested.name);
            }
        }
    }
    Granted {
        entries: granted
            .into_iter()
            .map(|name| GrantedAccess {
                resource_type: REPOSITORY.to_owned(),
                name: name.to_owned(),
                actions: vec!["pull"],
            })
            .collect(),
    }
}

/// The families of scopes, for the metrics and the logs: the container registry (and its
/// virtual registry), git repositories, package registries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum ScopeFamily {
    Registry,
    Repository,
    Package,
}

impl ScopeFamily {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// A git or package operation a reverse proxy asks about (`/-/forward-auth`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, strum::EnumCount)]
pub enum Operation {
    /// Clone, fetch, pull (`git-upload-pack`, and any read of the repository).
    GitFetch,
    /// Push (`git-receive-pack`) and any other write to the repository.
    GitPush,
    /// Package download (GET, HEAD).
    PackageRead,
    /// Package upload (PUT, POST, PATCH).
    PackageWrite,
    /// Package deletion.
    PackageDelete,
}

impl Operation {
    pub const ALL: [Operation; 5] = [
        Operation::GitFetch,
        Operation::GitPush,
        Operation::PackageRead,
        Operation::PackageWrite,
        Operation::PackageDelete,
    ];

    pub fn family(self) -> ScopeFamily {
        match self {
            Operation::GitFetch | Operation::GitPush => ScopeFamily::Repository,
            Operation::PackageRead | Operation::PackageWrite | Operation::PackageDelete => {
                ScopeFamily::Package
            }
        }
    }

    /// Reads are what public projects open to everyone.
    pub fn is_read(self) -> bool {
        matches!(self, Operation::GitFetch | Operation::PackageRead)
    }

    /// The scopes of which a deploy token needs one; empty: never allowed to deploy tokens.
    pub fn required_scopes(self) -> &'static [DeployTokenScope] {
        use DeployTokenScope::*;
        match self {
            Operation::GitFetch => &[ReadRepository],
            Operation::PackageRead => &[ReadPackageRegistry, WritePackageRegistry],
            Operation::PackageWrite => &[WritePackageRegistry],
            // Deploy tokens never push code (GitLab has no write_repository deploy scope)
            // and never delete packages (Maintainers only, like registry deletes).
            Operation::GitPush | Operation::PackageDelete => &[],
        }
    }
}

/// What an operation is done to, as found in the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// A project (git repository or project-level package endpoint).
    Project {
        path: NamespacePath,
        visibility: Visibility,
    },
    /// A group-level package endpoint (`/groups/:id/-/packages/...`): reads only.
    Group(NamespacePath),
    /// The path named no project or group that exists.
    Missing,
}

/// The answer to the reverse proxy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// 200: let the request through.
    Allow,
    /// 401 with a Basic challenge: credentials are needed (the client retries with them).
    Unauthenticated,
    /// 403: these credentials may not do this.
    Forbidden,
}

/// Decides a git or package operation for a deploy token (`None`: anonymous).
///
/// Reads of a public project are open to everyone; anonymous callers get nothing else (401,
/// so that git and curl send credentials). With `external_authorization`, deploy tokens are
/// refused outright (403). Otherwise the target must exist, be reached by the token (the
/// same reach as the registry), and the token must hold one of the operation's
/// [`required_scopes`](Operation::required_scopes); group targets allow reads only.
pub fn authorize_operation(
    operation: Operation,
    token: Option<&TokenAccess>,
    target: &Target,
    external_authorization: bool,
) -> Verdict {
    let public = matches!(
        target,
        Target::Project {
            visibility: Visibility::Public,
            ..
        }
    );
    let Some(token) = token else {
        return if public && operation.is_read() {
            Verdict::Allow
        } else {
            Verdict::Unauthenticated
        };
    };
    if external_authorization {
        return Verdict::Forbidden;
    }
    if public && operation.is_read() {
        return Verdict::Allow;
    }
    let reached = match target {
        Target::Project { path, .. } => {
            reaches_project(&token.owner, path) && within_patterns(token, path.as_str())
        }
        Target::Group(group) => {
            operation.is_read()
                && reaches_group(&token.owner, group)
                && within_patterns_everywhere_below(token, group)
        }
        Target::Missing => false,
    };
    let scoped = operation
        .required_scopes()
        .iter()
        .any(|scope| token.scopes.contains(*scope));
    if reached && scoped {
        Verdict::Allow
    } else {
        Verdict::Forbidden
    }
}

crate::every_variant_listed!(Operation);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::repository::resolve_project;
    use DeployTokenScope::*;

    fn ns(s: &str) -> NamespacePath {
        match NamespacePath::parse(s) {
            Ok(path) => path,
            Err(err) => panic!("test path {s:?} is invalid: {err}"),
        }
    }

    fn requested(s: &str) -> RequestedScope {
        match RequestedScope::parse(s) {
            Ok(scope) => scope,
            Err(err) => panic!("test scope {s:?} is invalid: {err}"),
        }
    }

    /// Resolves like the caller would: against a fixed set of existing projects.
    fn resolved(s: &str) -> ResolvedScope {
        let existing = [
            ns("acme/web"),
            ns("acme/other"),
            ns("acme/platform/web"),
            ns("acme-evil/web"),
            ns("other/web"),
        ];
        let requested = requested(s);
        let project = RepositoryPath::parse(&requested.name)
            .ok()
            .and_then(|repo| resolve_project(&repo, &existing).cloned());
        ResolvedScope { requested, project }
    }

    fn token(scopes: &[DeployTokenScope], owner: TokenOwner) -> TokenAccess {
        TokenAccess {
            scopes: scopes.iter().copied().collect(),
            owner,
            repositories: RepositoryPatterns::default(),
        }
    }

    fn project_token(scopes: &[DeployTokenScope]) -> TokenAccess {
        token(scopes, TokenOwner::Project(ns("acme/web")))
    }

    fn group_token(scopes: &[DeployTokenScope]) -> TokenAccess {
        token(scopes, TokenOwner::Group(ns("acme")))
    }

    fn scope_string(
        service: Service,
        token: &TokenAccess,
        scopes: &[&str],
    ) -> Result<String, Denied> {
        let requests: Vec<ResolvedScope> = scopes.iter().map(|s| resolved(s)).collect();
        authorize(service, token, &requests).map(|g| g.scope_string())
    }

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum Owner {
        Project,
        Group,
    }

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum Expect {
        /// 403: no JWT at all.
        Denied,
        /// Which single requested actions are granted on a reached repository.
        Grants(&'static [&'static str]),
    }

    const ALL: &[DeployTokenScope] = &DeployTokenScope::ALL;

    /// Every scope alone, the key pairs, none and all, × owner × service.
    /// The expectation is for a repository the token reaches; an unreached one always gets
    /// nothing (checked by the test for every row).
    const TABLE: &[(&[DeployTokenScope], Owner, Service, Expect)] = {
        use Expect::*;
        use Owner::*;
        use Service::*;
        &[
            // container_registry, project token
            (&[], Project, ContainerRegistry, Denied),
            (&[ReadRepository], Project, ContainerRegistry, Denied),
            (
                &[ReadRegistry],
                Project,
                ContainerRegistry,
                Grants(&["pull"]),
            ),
            (
                &[WriteRegistry],
                Project,
                ContainerRegistry,
                Grants(&["push"]),
            ),
            (&[ReadVirtualRegistry], Project, ContainerRegistry, Denied),
            (&[WriteVirtualRegistry], Project, ContainerRegistry, Denied),
            (&[ReadPackageRegistry], Project, ContainerRegistry, Denied),
            (&[WritePackageRegistry], Project, ContainerRegistry, Denied),
            (
                &[ReadRegistry, WriteRegistry],
                Project,
                ContainerRegistry,
                Grants(&["pull", "push"]),
            ),
            (
                &[ReadVirtualRegistry, WriteVirtualRegistry],
                Project,
                ContainerRegistry,
                Denied,
            ),
            (
                &[ReadRegistry, ReadVirtualRegistry],
                Project,
                ContainerRegistry,
                Grants(&["pull"]),
            ),
            (
                &[WriteRegistry, WriteVirtualRegistry],
                Project,
                ContainerRegistry,
                Grants(&["push"]),
            ),
            (
                &[ReadRepository, ReadPackageRegistry, WritePackageRegistry],
                Project,
                ContainerRegistry,
                Denied,
            ),
            (ALL, Project, ContainerRegistry, Grants(&["pull", "push"])),
            // container_registry, group token
            (&[], Group, ContainerRegistry, Denied),
            (&[ReadRepository], Group, ContainerRegistry, Denied),
            (&[ReadRegistry], Group, ContainerRegistry, Grants(&["pull"])),
            (
                &[WriteRegistry],
                Group,
                ContainerRegistry,
                Grants(&["push"]),
            ),
            (&[ReadVirtualRegistry], Group, ContainerRegistry, Denied),
            (&[WriteVirtualRegistry], Group, ContainerRegistry, Denied),
            (&[ReadPackageRegistry], Group, ContainerRegistry, Denied),
            (&[WritePackageRegistry], Group, ContainerRegistry, Denied),
            (
                &[ReadRegistry, WriteRegistry],
                Group,
                ContainerRegistry,
                Grants(&["pull", "push"]),
            ),
            (
                &[ReadVirtualRegistry, WriteVirtualRegistry],
                Group,
                ContainerRegistry,
                Denied,
            ),
            (
                &[ReadRegistry, ReadVirtualRegistry],
                Group,
                ContainerRegistry,
                Grants(&["pull"]),
            ),
            (
                &[WriteRegistry, WriteVirtualRegistry],
                Group,
                ContainerRegistry,
                Grants(&["push"]),
            ),
            (
                &[ReadRepository, ReadPackageRegistry, WritePackageRegistry],
                Group,
                ContainerRegistry,
                Denied,
            ),
            (ALL, Group, ContainerRegistry, Grants(&["pull", "push"])),
            // dependency_proxy, group token
            (&[], Group, DependencyProxy, Denied),
            (&[ReadRepository], Group, DependencyProxy, Denied),
            (&[ReadRegistry], Group, DependencyProxy, Denied),
            (&[WriteRegistry], Group, DependencyProxy, Denied),
            (
                &[ReadVirtualRegistry],
                Group,
                DependencyProxy,
                Grants(&["pull"]),
            ),
            (
                &[WriteVirtualRegistry],
                Group,
                DependencyProxy,
                Grants(&["pull", "push", "delete"]),
            ),
            (&[ReadPackageRegistry], Group, DependencyProxy, Denied),
            (&[WritePackageRegistry], Group, DependencyProxy, Denied),
            (
                &[ReadRegistry, WriteRegistry],
                Group,
                DependencyProxy,
                Grants(&["pull"]),
            ),
            (
                &[ReadVirtualRegistry, WriteVirtualRegistry],
                Group,
                DependencyProxy,
                Grants(&["pull", "push", "delete"]),
            ),
            (
                &[ReadRegistry, ReadVirtualRegistry],
                Group,
                DependencyProxy,
                Grants(&["pull"]),
            ),
            (
                &[WriteRegistry, WriteVirtualRegistry],
                Group,
                DependencyProxy,
                Grants(&["pull", "push", "delete"]),
            ),
            (
                &[ReadRepository, ReadPackageRegistry, WritePackageRegistry],
                Group,
                DependencyProxy,
                Denied,
            ),
            (
                ALL,
                Group,
                DependencyProxy,
                Grants(&["pull", "push", "delete"]),
            ),
            // dependency_proxy, project token: always denied, whatever its scopes (the virtual
            // registry belongs to a group).
            (&[], Project, DependencyProxy, Denied),
            (&[ReadRepository], Project, DependencyProxy, Denied),
            (&[ReadRegistry], Project, DependencyProxy, Denied),
            (&[WriteRegistry], Project, DependencyProxy, Denied),
            (&[ReadVirtualRegistry], Project, DependencyProxy, Denied),
            (&[WriteVirtualRegistry], Project, DependencyProxy, Denied),
            (&[ReadPackageRegistry], Project, DependencyProxy, Denied),
            (&[WritePackageRegistry], Project, DependencyProxy, Denied),
            (
                &[ReadRegistry, WriteRegistry],
                Project,
                DependencyProxy,
                Denied,
            ),
            (
                &[ReadVirtualRegistry, WriteVirtualRegistry],
                Project,
                DependencyProxy,
                Denied,
            ),
            (
                &[ReadRegistry, ReadVirtualRegistry],
                Project,
                DependencyProxy,
                Denied,
            ),
            (
                &[WriteRegistry, WriteVirtualRegistry],
                Project,
                DependencyProxy,
                Denied,
            ),
            (
                &[ReadRepository, ReadPackageRegistry, WritePackageRegistry],
                Project,
                DependencyProxy,
                Denied,
            ),
            (ALL, Project, DependencyProxy, Denied),
        ]
    };

    /// A repository the token reaches and one it does not, per owner and service.
    fn repositories(owner: Owner, service: Service) -> (&'static str, &'static str) {
        match (owner, service) {
            // Project token of acme/web: an image below its project vs a sibling project.
            (Owner::Project, Service::ContainerRegistry) => ("acme/web/api", "acme/other"),
            // Group token of acme: a project in a subgroup vs a look-alike top-level group.
            (Owner::Group, Service::ContainerRegistry) => {
                ("acme/platform/web/api", "acme-evil/web")
            }
            (Owner::Group, Service::DependencyProxy) => {
                ("acme/platform/cache/alpine", "acme-evil/alpine")
            }
            // A project token reaches nothing in the virtual registry, not even its own path.
            (Owner::Project, Service::DependencyProxy) => ("acme/web", "acme/other"),
        }
    }

    #[test]
    fn every_scope_combination_grants_exactly_the_documented_actions() {
        let single_actions = ["pull", "push", "delete", "*"];
        for (scopes, owner, service, expect) in TABLE {
            let token = match owner {
                Owner::Project => project_token(scopes),
                Owner::Group => group_token(scopes),
            };
            let (reached, unreached) = repositories(*owner, *service);
            for action in single_actions {
                for (repo, is_reached) in [(reached, true), (unreached, false)] {
                    let scope = format!("repository:{repo}:{action}");
                    let got = scope_string(*service, &token, &[&scope]);
                    let want = match expect {
                        Expect::Denied if may_use_service(*service, token.scopes) => {
                            Err(Denied::NotAGroupToken)
                        }
                        Expect::Denied => Err(Denied::NoScopeForService),
                        Expect::Grants(granted) if is_reached && granted.contains(&action) => {
                            Ok(format!("repository:{repo}:{action}"))
                        }
                        Expect::Grants(_) => Ok(String::new()),
                    };
                    assert_eq!(
                        got, want,
                        "scopes {scopes:?}, {owner:?} token, {service:?}, {scope} (reached: {is_reached})"
                    );
                }
            }
        }
    }

    #[test]
    fn the_table_covers_every_scope_alone_for_every_owner_and_service() {
        for scope in DeployTokenScope::ALL {
            for owner in [Owner::Project, Owner::Group] {
                for service in [Service::ContainerRegistry, Service::DependencyProxy] {
                    assert!(
                        TABLE
                            .iter()
                            .any(|(s, o, sv, _)| *s == [scope] && *o == owner && *sv == service),
                        "missing row for {scope} / {owner:?} / {service:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn may_use_service_follows_the_scope_rules_for_each_service() {
        use Service::*;
        let cases: &[(&[DeployTokenScope], bool, bool)] = &[
            // scopes, container_registry, dependency_proxy
            (&[], false, false),
            (&[ReadRepository], false, false),
            (&[ReadRegistry], true, false),
            (&[WriteRegistry], true, false),
            (&[ReadRegistry, WriteRegistry], true, true),
            (&[ReadVirtualRegistry], false, true),
            (&[WriteVirtualRegistry], false, true),
            (&[ReadPackageRegistry, WritePackageRegistry], false, false),
        ];
        for (scopes, registry, proxy) in cases {
            let set: ScopeSet = scopes.iter().copied().collect();
            assert_eq!(
                may_use_service(ContainerRegistry, set),
                *registry,
                "{scopes:?}"
            );
            assert_eq!(may_use_service(DependencyProxy, set), *proxy, "{scopes:?}");
        }
    }

    #[test]
    fn a_login_without_scopes_gets_an_empty_grant_with_a_registry_scope() {
        let granted = authorize(
            Service::ContainerRegistry,
            &project_token(&[ReadRegistry]),
            &[],
        );
        assert_eq!(granted.as_ref().map(Granted::is_empty), Ok(true));
        assert_eq!(granted.map(|g| g.scope_string()), Ok(String::new()));
    }

    #[test]
    fn a_login_with_a_read_repository_only_token_is_denied() {
        let denied = authorize(
            Service::ContainerRegistry,
            &project_token(&[ReadRepository]),
            &[],
        );
        assert_eq!(denied, Err(Denied::NoScopeForService));
        assert_eq!(Denied::NoScopeForService.to_string(), "access forbidden");
    }

    #[test]
    fn the_catalog_and_other_resource_types_are_never_granted() {
        let token = group_token(ALL);
        for service in [Service::ContainerRegistry, Service::DependencyProxy] {
            let got = scope_string(
                service,
                &token,
                &[
                    "registry:catalog:*",
                    "registry:catalog:pull",
                    "plugin:acme/web:pull",
                ],
            );
            assert_eq!(got, Ok(String::new()), "{service:?}");
        }
    }

    #[test]
    fn a_classed_repository_scope_is_treated_as_a_plain_repository_scope() {
        let got = scope_string(
            Service::ContainerRegistry,
            &project_token(&[ReadRegistry]),
            &["repository(plugin):acme/web:pull"],
        );
        assert_eq!(got, Ok("repository:acme/web:pull".to_owned()));
    }

    #[test]
    fn skopeo_delete_gets_only_pull_and_never_delete_or_star() {
        let got = scope_string(
            Service::ContainerRegistry,
            &project_token(ALL),
            &[
                "repository:acme/web:*",
                "repository:acme/web:*,pull",
                "repository:acme/web:*,pull,delete",
            ],
        );
        assert_eq!(got, Ok("repository:acme/web:pull".to_owned()));
    }

    #[test]
    fn unknown_actions_are_left_out_without_an_error() {
        let got = scope_string(
            Service::ContainerRegistry,
            &project_token(&[ReadRegistry, WriteRegistry]),
            &["repository:acme/web:mount,push,frobnicate,pull"],
        );
        assert_eq!(got, Ok("repository:acme/web:pull,push".to_owned()));
    }

    #[test]
    fn scopes_for_the_same_repository_merge_with_actions_in_canonical_order() {
        let requests = [
            resolved("repository:acme/web:push"),
            resolved("repository:acme/web:pull"),
        ];
        let granted = authorize(
            Service::ContainerRegistry,
            &project_token(&[ReadRegistry, WriteRegistry]),
            &requests,
        );
        let Ok(granted) = granted else {
            panic!("expected a grant, got {granted:?}");
        };
        assert_eq!(granted.entries().len(), 1);
        let entry = &granted.entries()[0];
        assert_eq!(entry.resource_type(), "repository");
        assert_eq!(entry.name(), "acme/web");
        assert_eq!(entry.actions(), ["pull", "push"]);
    }

    #[test]
    fn a_docker_push_with_a_mount_grants_each_repository_its_own_entry() {
        let got = scope_string(
            Service::ContainerRegistry,
            &group_token(&[ReadRegistry, WriteRegistry]),
            &[
                "repository:acme/web/api:push,pull",
                "repository:acme/platform/web:pull",
                "repository:other/web:pull",
            ],
        );
        assert_eq!(
            got,
            Ok("repository:acme/web/api:pull,push repository:acme/platform/web:pull".to_owned())
        );
    }

    #[test]
    fn entries_without_granted_actions_are_omitted() {
        let granted = authorize(
            Service::ContainerRegistry,
            &project_token(&[ReadRegistry]),
            &[
                resolved("repository:acme/web:push"),
                resolved("repository:acme/web:delete"),
            ],
        );
        assert_eq!(granted.map(|g| g.is_empty()), Ok(true));
    }

    #[test]
    fn a_project_token_reaches_exactly_its_project() {
        let token = project_token(&[ReadRegistry]);
        let cases = [
            ("acme/web", true),
            ("acme/web/api", true),
            ("acme/web/api/v2", true),
            ("acme/web/api/v2/too-deep", false),
            ("acme/other", false),
            ("acme/platform/web", false),
            ("acme-evil/web", false),
            ("acme/web-api", false),
            ("acme", false),
        ];
        for (repo, reached) in cases {
            let scope = format!("repository:{repo}:pull");
            let want = if reached {
                scope.clone()
            } else {
                String::new()
            };
            assert_eq!(
                scope_string(Service::ContainerRegistry, &token, &[&scope]),
                Ok(want),
                "{repo}"
            );
        }
    }

    #[test]
    fn a_group_token_reaches_projects_at_any_depth_below_it_and_never_siblings() {
        let cases: &[(&str, &str, bool)] = &[
            ("acme", "acme/web", true),
            ("acme", "acme/platform/web/api", true),
            ("acme/platform", "acme/platform/web", true),
            ("acme/platform", "acme/web", false),
            ("acme", "acme-evil/web", false),
            ("acme", "other/web", false),
            ("acme", "acme/nonexistent", false),
        ];
        for (group, repo, reached) in cases {
            let token = token(&[ReadRegistry], TokenOwner::Group(ns(group)));
            let scope = format!("repository:{repo}:pull");
            let want = if *reached {
                scope.clone()
            } else {
                String::new()
            };
            assert_eq!(
                scope_string(Service::ContainerRegistry, &token, &[&scope]),
                Ok(want),
                "{group} -> {repo}"
            );
        }
    }

    #[test]
    fn an_unresolved_or_invalid_repository_grants_nothing() {
        let token = group_token(&[ReadRegistry, WriteRegistry, WriteVirtualRegistry]);
        for service in [Service::ContainerRegistry, Service::DependencyProxy] {
            let got = scope_string(
                service,
                &token,
                &[
                    "repository:Acme/web:pull",
                    "repository:acme/../web:pull",
                    "repository:localhost:5000/acme/web:pull",
                    "repository:acme/web/:pull",
                    "repository:acme//web:pull",
                ],
            );
            assert_eq!(got, Ok(String::new()), "{service:?}");
        }
        let unresolved = ResolvedScope {
            requested: requested("repository:acme/web:pull"),
            project: None,
        };
        let got = authorize(Service::ContainerRegistry, &token, &[unresolved]);
        assert_eq!(got.map(|g| g.is_empty()), Ok(true));
    }

    #[test]
    fn a_resolved_project_that_does_not_match_the_name_grants_nothing() {
        let token = project_token(&[ReadRegistry]);
        let cases = [
            ("repository:other/web:pull", "acme/web"),
            ("repository:acme/web/a/b/c:pull", "acme/web"),
            ("repository:acme-evil/web:pull", "acme/web"),
        ];
        for (scope, project) in cases {
            let request = ResolvedScope {
                requested: requested(scope),
                project: Some(ns(project)),
            };
            let got = authorize(Service::ContainerRegistry, &token, &[request]);
            assert_eq!(
                got.map(|g| g.is_empty()),
                Ok(true),
                "{scope} resolved to {project}"
            );
        }
    }

    #[test]
    fn the_virtual_registry_needs_no_project_and_checks_the_group_by_whole_components() {
        let token = token(
            &[WriteVirtualRegistry],
            TokenOwner::Group(ns("acme/platform")),
        );
        let cases = [
            ("acme/platform/alpine", true),
            ("acme/platform/sub/deep/alpine/x", true),
            ("acme/platform", true),
            ("acme/platform-evil/alpine", false),
            ("acme/alpine", false),
            ("acme", false),
        ];
        for (repo, reached) in cases {
            let request = ResolvedScope {
                requested: requested(&format!("repository:{repo}:pull,push,delete,*")),
                project: None,
            };
            let got =
                authorize(Service::DependencyProxy, &token, &[request]).map(|g| g.scope_string());
            let want = if reached {
                format!("repository:{repo}:pull,push,delete")
            } else {
                String::new()
            };
            assert_eq!(got, Ok(want), "{repo}");
        }
    }

    #[test]
    fn a_project_token_is_denied_on_the_virtual_registry_even_for_a_login() {
        for scopes in [
            &[ReadVirtualRegistry][..],
            &[WriteVirtualRegistry],
            &[ReadRegistry, WriteRegistry],
        ] {
            let token = project_token(scopes);
            assert_eq!(
                authorize(Service::DependencyProxy, &token, &[]),
                Err(Denied::NotAGroupToken),
                "{scopes:?}"
            );
            assert_eq!(Denied::NotAGroupToken.to_string(), "access forbidden");
            // The same token still works on its project's container registry.
            if scopes.contains(&ReadRegistry) {
                assert!(authorize(Service::ContainerRegistry, &token, &[]).is_ok());
            }
        }
    }

    // ---- anonymous registry pulls

    #[test]
    fn an_anonymous_caller_may_pull_public_projects_only_and_never_push() {
        let public = [ns("acme/web")];
        let requests: Vec<ResolvedScope> = [
            "repository:acme/web/api:pull,push,delete,*",
            "repository:acme/other:pull",
            "repository:acme/web:push",
            "repository:other/web:pull",
            "registry:catalog:*",
        ]
        .iter()
        .map(|s| resolved(s))
        .collect();
        let granted = authorize_anonymous(Service::ContainerRegistry, &requests, &public);
        assert_eq!(granted.scope_string(), "repository:acme/web/api:pull");
        let nothing_public = authorize_anonymous(Service::ContainerRegistry, &requests, &[]);
        assert!(nothing_public.is_empty());
    }

    #[test]
    fn an_anonymous_caller_gets_nothing_from_the_virtual_registry() {
        let requests = [resolved("repository:acme/web:pull")];
        let granted = authorize_anonymous(Service::DependencyProxy, &requests, &[ns("acme/web")]);
        assert!(granted.is_empty());
    }

    #[test]
    fn an_anonymous_grant_checks_the_resolved_project_against_the_name() {
        let request = ResolvedScope {
            requested: requested("repository:acme/private:pull"),
            project: Some(ns("acme/web")),
        };
        let granted =
            authorize_anonymous(Service::ContainerRegistry, &[request], &[ns("acme/web")]);
        assert!(granted.is_empty());
    }

    // ---- git and package operations (the repository and package families)

    fn private(path: &str) -> Target {
        Target::Project {
            path: ns(path),
            visibility: Visibility::Private,
        }
    }

    /// Which single scopes allow each operation on a project the token reaches: the spec.
    const OPERATIONS: &[(Operation, &[DeployTokenScope])] = &[
        (Operation::GitFetch, &[ReadRepository]),
        (Operation::GitPush, &[]),
        (
            Operation::PackageRead,
            &[ReadPackageRegistry, WritePackageRegistry],
        ),
        (Operation::PackageWrite, &[WritePackageRegistry]),
        (Operation::PackageDelete, &[]),
    ];

    #[test]
    fn the_operation_table_covers_every_operation() {
        for operation in Operation::ALL {
            let row = OPERATIONS.iter().find(|(op, _)| *op == operation);
            assert_eq!(
                row.map(|(_, scopes)| *scopes),
                Some(operation.required_scopes()),
                "{operation:?}"
            );
        }
    }

    /// Every subset of the seven scopes × project and group owner × operation × visibility ×
    /// reached or not × external authorization on or off, and the anonymous caller.
    #[test]
    fn every_scope_set_owner_operation_and_visibility_gets_the_documented_verdict() {
        let mut checks = 0;
        for bits in 0u32..(1 << DeployTokenScope::ALL.len()) {
            let scopes: Vec<DeployTokenScope> = DeployTokenScope::ALL
                .into_iter()
                .enumerate()
                .filter(|(i, _)| bits & (1 << i) != 0)
                .map(|(_, scope)| scope)
                .collect();
            for (operation, needs) in OPERATIONS {
                for visibility in Visibility::ALL {
                    for owner in [Owner::Project, Owner::Group] {
                        let token = match owner {
                            Owner::Project => project_token(&scopes),
                            Owner::Group => group_token(&scopes),
                        };
                        let (reached, unreached) = match owner {
                            Owner::Project => ("acme/web", "acme/other"),
                            Owner::Group => ("acme/platform/web", "acme-evil/web"),
                        };
                        for (path, is_reached) in [(reached, true), (unreached, false)] {
                            let target = Target::Project {
                                path: ns(path),
                                visibility,
                            };
                            for external in [false, true] {
                                let public_read =
                                    visibility == Visibility::Public && operation.is_read();
                                let want = if external {
                                    Verdict::Forbidden
                                } else if public_read
                                    || (is_reached && needs.iter().any(|n| scopes.contains(n)))
                                {
                                    Verdict::Allow
                                } else {
                                    Verdict::Forbidden
                                };
                                let got = authorize_operation(
                                    *operation,
                                    Some(&token),
                                    &target,
                                    external,
                                );
                                assert_eq!(
                                    got, want,
                                    "{scopes:?} {owner:?} {operation:?} on {visibility} {path} (external {external})"
                                );
                                checks += 1;
                            }
                            let anonymous = authorize_operation(*operation, None, &target, false);
                            let want = if visibility == Visibility::Public && operation.is_read() {
                                Verdict::Allow
                            } else {
                                Verdict::Unauthenticated
                            };
                            assert_eq!(
                                anonymous, want,
                                "anonymous {operation:?} on {visibility} {path}"
                            );
                        }
                    }
                }
            }
        }
        assert_eq!(checks, 128 * 5 * 3 * 2 * 2 * 2);
    }

    #[test]
    fn git_fetch_needs_read_repository_and_push_is_never_allowed() {
        let target = private("acme/web");
        let reader = project_token(&[ReadRepository]);
        let registry_only = project_token(&[ReadRegistry, WriteRegistry]);
        let everything = project_token(ALL);
        use Operation::*;
        assert_eq!(
            authorize_operation(GitFetch, Some(&reader), &target, false),
            Verdict::Allow
        );
        assert_eq!(
            authorize_operation(GitFetch, Some(&registry_only), &target, false),
            Verdict::Forbidden
        );
        assert_eq!(
            authorize_operation(GitPush, Some(&everything), &target, false),
            Verdict::Forbidden
        );
        assert_eq!(
            authorize_operation(
                GitPush,
                Some(&everything),
                &Target::Project {
                    path: ns("acme/web"),
                    visibility: Visibility::Public
                },
                false
            ),
            Verdict::Forbidden
        );
    }

    #[test]
    fn packages_read_with_either_package_scope_write_with_write_and_never_delete() {
        let target = private("acme/web");
        let reader = project_token(&[ReadPackageRegistry]);
        let writer = project_token(&[WritePackageRegistry]);
        use Operation::*;
        assert_eq!(
            authorize_operation(PackageRead, Some(&reader), &target, false),
            Verdict::Allow
        );
        assert_eq!(
            authorize_operation(PackageWrite, Some(&reader), &target, false),
            Verdict::Forbidden
        );
        assert_eq!(
            authorize_operation(PackageRead, Some(&writer), &target, false),
            Verdict::Allow
        );
        assert_eq!(
            authorize_operation(PackageWrite, Some(&writer), &target, false),
            Verdict::Allow
        );
        assert_eq!(
            authorize_operation(PackageDelete, Some(&project_token(ALL)), &target, false),
            Verdict::Forbidden
        );
    }

    #[test]
    fn an_internal_project_is_private_to_deploy_tokens_and_anonymous_callers() {
        let target = Target::Project {
            path: ns("acme/web"),
            visibility: Visibility::Internal,
        };
        let stranger = token(&[ReadRepository], TokenOwner::Project(ns("acme/other")));
        assert_eq!(
            authorize_operation(Operation::GitFetch, Some(&stranger), &target, false),
            Verdict::Forbidden
        );
        assert_eq!(
            authorize_operation(Operation::GitFetch, None, &target, false),
            Verdict::Unauthenticated
        );
    }

    #[test]
    fn group_package_endpoints_are_read_only_and_need_a_group_token_above_them() {
        let target = Target::Group(ns("acme/platform"));
        let parent = token(
            &[ReadPackageRegistry, WritePackageRegistry],
            TokenOwner::Group(ns("acme")),
        );
        let sibling = token(&[ReadPackageRegistry], TokenOwner::Group(ns("acme/other")));
        let below = token(
            &[ReadPackageRegistry],
            TokenOwner::Group(ns("acme/platform/sub")),
        );
        let project = token(
            &[ReadPackageRegistry],
            TokenOwner::Project(ns("acme/platform/web")),
        );
        use Operation::*;
        assert_eq!(
            authorize_operation(PackageRead, Some(&parent), &target, false),
            Verdict::Allow
        );
        assert_eq!(
            authorize_operation(PackageWrite, Some(&parent), &target, false),
            Verdict::Forbidden
        );
        assert_eq!(
            authorize_operation(PackageRead, Some(&sibling), &target, false),
            Verdict::Forbidden
        );
        assert_eq!(
            authorize_operation(PackageRead, Some(&below), &target, false),
            Verdict::Forbidden
        );
        assert_eq!(
            authorize_operation(PackageRead, Some(&project), &target, false),
            Verdict::Forbidden
        );
        assert_eq!(
            authorize_operation(PackageRead, None, &target, false),
            Verdict::Unauthenticated
        );
    }

    #[test]
    fn a_missing_target_is_forbidden_to_tokens_and_a_challenge_to_anonymous_callers() {
        let token = group_token(ALL);
        for operation in Operation::ALL {
            assert_eq!(
                authorize_operation(operation, Some(&token), &Target::Missing, false),
                Verdict::Forbidden
            );
            assert_eq!(
                authorize_operation(operation, None, &Target::Missing, false),
                Verdict::Unauthenticated
            );
        }
    }

    #[test]
    fn external_authorization_refuses_deploy_tokens_but_not_the_registry() {
        let target = private("acme/web");
        let token = project_token(ALL);
        for operation in Operation::ALL {
            assert_eq!(
                authorize_operation(operation, Some(&token), &target, true),
                Verdict::Forbidden,
                "{operation:?}"
            );
        }
        // The registry policy has no such switch: the same token still pulls.
        assert_eq!(
            scope_string(
                Service::ContainerRegistry,
                &token,
                &["repository:acme/web:pull"]
            ),
            Ok("repository:acme/web:pull".to_owned())
        );
    }
}

/// `repository_patterns` (issue #27): one table for the registry, the virtual registry, git
/// and packages, since all of them ask the same functions above.
#[cfg(test)]
mod repository_pattern_tests {
    use super::*;
    use crate::access::repository::resolve_project;
    use DeployTokenScope::*;

    const EXISTING: [&str; 5] = [
        "acme/web",
        "acme/other",
        "acme/platform/web",
        "acme-evil/web",
        "acme/web-app",
    ];

    fn ns(s: &str) -> NamespacePath {
        NamespacePath::parse(s).unwrap_or_else(|error| panic!("{s:?}: {error}"))
    }

    fn token(owner: TokenOwner, patterns: &[&str]) -> TokenAccess {
        TokenAccess {
            scopes: [
                ReadRegistry,
                WriteRegistry,
                ReadVirtualRegistry,
                WriteVirtualRegistry,
                ReadRepository,
                ReadPackageRegistry,
                WritePackageRegistry,
            ]
            .into_iter()
            .collect(),
            owner,
            repositories: RepositoryPatterns::parse(patterns)
                .unwrap_or_else(|error| panic!("{patterns:?}: {error}")),
        }
    }

    /// What a registry token request for `name` (pull and push) is granted.
    fn registry_grant(token: &TokenAccess, service: Service, name: &str) -> String {
        let existing: Vec<NamespacePath> = EXISTING.iter().map(|p| ns(p)).collect();
        let Ok(requested) = RequestedScope::parse(&format!("repository:{name}:pull,push")) else {
            return "malformed".to_owned();
        };
        let project = RepositoryPath::parse(&requested.name)
            .ok()
            .and_then(|repo| resolve_project(&repo, &existing).cloned());
        match authorize(service, token, &[ResolvedScope { requested, project }]) {
            Ok(granted) => granted
                .entries()
                .first()
                .map(|entry| entry.actions().join(","))
                .unwrap_or_default(),
            Err(denied) => format!("denied: {denied}"),
        }
    }

    #[test]
    fn the_registry_grant_honours_the_patterns() {
        let project = |patterns: &[&str]| token(TokenOwner::Project(ns("acme/web")), patterns);
        let group = |patterns: &[&str]| token(TokenOwner::Group(ns("acme")), patterns);
        let both = "pull,push";
        for (token, name, expect) in [
            // The example: `acme/web` with ["app", "tools/*"].
            (project(&["app", "tools/*"]), "acme/web/app", both),
            (project(&["app", "tools/*"]), "acme/web/tools/x", both),
            (project(&["app", "tools/*"]), "acme/web/other", ""),
            (project(&["app", "tools/*"]), "acme/web", ""),
            (project(&["app", "tools/*"]), "acme/web/tools", ""),
            (project(&["app", "tools/*"]), "acme/web/app/sub", ""),
            (project(&["app", "tools/*"]), "acme/web/apps", ""),
            // No pattern: the whole project, as before.
            (project(&[]), "acme/web/other", both),
            (project(&[]), "acme/web", both),
            (project(&["**"]), "acme/web", both),
            (project(&["**"]), "acme/web/a/b", both),
            (project(&["app/**"]), "acme/web/app", both),
            (project(&["app/**"]), "acme/web/app/x", both),
            (project(&["app-*"]), "acme/web/app-x", both),
            (project(&["app-*"]), "acme/web/app", ""),
            // Never beyond the owner, whatever the pattern.
            (project(&["**"]), "acme/other/app", ""),
            (project(&["**"]), "acme/web-app", ""),
            (project(&["*"]), "acme/web-app/x", ""),
            // Tricks in the requested name never match: the name grammar refuses them
            // before any pattern is looked at.
            (project(&["app"]), "acme/web/App", ""),
            (project(&["app"]), "ACME/web/app", ""),
            (project(&["app"]), "acme/web/../other/app", ""),
            (project(&["app"]), "acme/web/app/..", ""),
            (project(&["app"]), "acme/web/./app", ""),
            (project(&["app"]), "acme/web//app", ""),
            (project(&["app"]), "acme/web%2fapp", ""),
            (project(&["app"]), "acme/web/app%2f..%2fother", ""),
            (project(&["app"]), "acme%2Fweb/app", ""),
            (project(&["app"]), "acme/web/app/", ""),
            (project(&["app"]), "/acme/web/app", ""),
            // Group tokens: patterns below the group.
            (group(&["web/app"]), "acme/web/app", both),
            (group(&["web/app"]), "acme/web/other", ""),
            (group(&["web/app"]), "acme/other/app", ""),
            (group(&["web/**"]), "acme/web", both),
            (group(&["web/**"]), "acme/web/x/y", both),
            (group(&["web/**"]), "acme/web-app/x", ""),
            (group(&["*/app"]), "acme/other/app", both),
            (group(&["*/app"]), "acme/platform/web/app", ""),
            (group(&["**/app"]), "acme/platform/web/app", both),
            (group(&["platform/web"]), "acme/platform/web", both),
            (group(&["**"]), "acme-evil/web/app", ""),
        ] {
            assert_eq!(
                registry_grant(&token, Service::ContainerRegistry, name),
                expect,
                "{:?} asking for {name}",
                token.repositories.texts()
            );
        }
    }

    #[test]
    fn the_virtual_registry_honours_the_patterns() {
        let group = |patterns: &[&str]| token(TokenOwner::Group(ns("acme")), patterns);
        for (token, name, granted) in [
            (group(&[]), "acme/cache/alpine", true),
            (group(&["cache/**"]), "acme/cache/alpine", true),
            (group(&["cache/**"]), "acme/cache/library/alpine", true),
            (group(&["cache/**"]), "acme/web/alpine", false),
            (group(&["cache/*"]), "acme/cache/library/alpine", false),
            (group(&["cache/**"]), "acme/cache/../web/alpine", false),
            (group(&["cache/**"]), "acme-evil/cache/alpine", false),
        ] {
            let grant = registry_grant(&token, Service::DependencyProxy, name);
            assert_eq!(
                !grant.is_empty(),
                granted,
                "{:?} {name}: {grant:?}",
                token.repositories.texts()
            );
        }
    }

    #[test]
    fn git_and_packages_honour_the_patterns() {
        use Operation::*;
        let project = |path: &str| Target::Project {
            path: ns(path),
            visibility: Visibility::Private,
        };
        let group_target = |path: &str| Target::Group(ns(path));
        let group = |patterns: &[&str]| token(TokenOwner::Group(ns("acme")), patterns);
        let project_token =
            |patterns: &[&str]| token(TokenOwner::Project(ns("acme/web")), patterns);
        for (token, operation, target, verdict) in [
            // A project is the repository at its own path.
            (
                group(&["web"]),
                PackageRead,
                project("acme/web"),
                Verdict::Allow,
            ),
            (
                group(&["web"]),
                PackageWrite,
                project("acme/web"),
                Verdict::Allow,
            ),
            (
                group(&["web"]),
                GitFetch,
                project("acme/web"),
                Verdict::Allow,
            ),
            (
                group(&["web"]),
                PackageRead,
                project("acme/other"),
                Verdict::Forbidden,
            ),
            (
                group(&["web"]),
                GitFetch,
                project("acme/other"),
                Verdict::Forbidden,
            ),
            (
                group(&["web/*"]),
                PackageRead,
                project("acme/web"),
                Verdict::Forbidden,
            ),
            (
                group(&["web/**"]),
                PackageRead,
                project("acme/web"),
                Verdict::Allow,
            ),
            (
                group(&["platform/*"]),
                PackageRead,
                project("acme/platform/web"),
                Verdict::Allow,
            ),
            (
                group(&["*"]),
                PackageRead,
                project("acme/platform/web"),
                Verdict::Forbidden,
            ),
            (
                group(&["**"]),
                PackageRead,
                project("acme-evil/web"),
                Verdict::Forbidden,
            ),
            // A project token limited to images below it reaches no git or package of the
            // project itself; `**` lets it.
            (
                project_token(&["app"]),
                PackageRead,
                project("acme/web"),
                Verdict::Forbidden,
            ),
            (
                project_token(&["app"]),
                GitFetch,
                project("acme/web"),
                Verdict::Forbidden,
            ),
            (
                project_token(&["**"]),
                PackageRead,
                project("acme/web"),
                Verdict::Allow,
            ),
            (
                project_token(&[]),
                PackageRead,
                project("acme/web"),
                Verdict::Allow,
            ),
            // Group-wide package reads: only when everything below that group is allowed.
            (
                group(&[]),
                PackageRead,
                group_target("acme/platform"),
                Verdict::Allow,
            ),
            (
                group(&["platform/**"]),
                PackageRead,
                group_target("acme/platform"),
                Verdict::Allow,
            ),
            (
                group(&["**"]),
                PackageRead,
                group_target("acme"),
                Verdict::Allow,
            ),
            (
                group(&["platform/web"]),
                PackageRead,
                group_target("acme/platform"),
                Verdict::Forbidden,
            ),
            (
                group(&["platform/*"]),
                PackageRead,
                group_target("acme/platform"),
                Verdict::Forbidden,
            ),
            (
                group(&["web/**"]),
                PackageRead,
                group_target("acme"),
                Verdict::Forbidden,
            ),
            (
                group(&["*/**"]),
                PackageRead,
                group_target("acme/platform"),
                Verdict::Allow,
            ),
        ] {
            assert_eq!(
                authorize_operation(operation, Some(&token), &target, false),
                verdict,
                "{:?} {operation:?} {target:?}",
                token.repositories.texts()
            );
        }
    }
}
