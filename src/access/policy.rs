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
//! - Valid credentials but disallowed actions: the actions are left out (PROTOCOL.md §8), never
//!   an error; entries left with no action are omitted; scopes for the same type + name merge.

use std::fmt;

use crate::access::repository::{NamespacePath, RepositoryPath};
use crate::access::scope::{Action, RequestedScope};
use crate::domain::{DeployTokenScope, ScopeSet};

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
    let reached = match &token.owner {
        TokenOwner::Project(own) => own == project,
        TokenOwner::Group(group) => group.is_same_or_ancestor_of(project),
    };
    if !reached {
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
    if !repo.is_within(group) {
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
}
