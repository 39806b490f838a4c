//! Who may manage deploy tokens (DOMAIN.md "Roles and who may manage tokens"), as one pure
//! function tested as a table. GitLab's own history has mistakes here (group Maintainers
//! creating group tokens, Developers creating project tokens); the table pins each one.

use crate::domain::{NamespaceKind, Role};

/// What is being done to deploy tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenOperation {
    List,
    Read,
    Create,
    /// Revoke or delete.
    Revoke,
}

impl TokenOperation {
    pub fn writes(self) -> bool {
        matches!(self, TokenOperation::Create | TokenOperation::Revoke)
    }
}

/// The caller of a management operation as the permission rules see it: the operator, or a
/// person with their standing. `service::caller::Caller::principal` projects a caller onto it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Principal {
    /// The operator at the command line: has database access, so may do everything.
    Operator,
    /// A person through the API.
    User {
        admin: bool,
        blocked: bool,
        /// False for a `read_api` personal access token.
        token_may_write: bool,
    },
}

/// May `caller`, holding `role` (inherited, highest wins) on the owner, perform `operation`
/// on the tokens of an owner of `owner_kind`?
pub fn may_manage_tokens(
    caller: Principal,
    operation: TokenOperation,
    owner_kind: NamespaceKind,
    role: Option<Role>,
) -> bool {
    let (admin, blocked, token_may_write) = match caller {
        Principal::Operator => return true,
        Principal::User {
            admin,
            blocked,
            token_may_write,
        } => (admin, blocked, token_may_write),
    };
    if blocked || (operation.writes() && !token_may_write) {
        return false;
    }
    if admin {
        return true;
    }
    let needed = match (owner_kind, operation) {
        (NamespaceKind::Project, _) => Role::Maintainer,
        (NamespaceKind::Group, TokenOperation::List | TokenOperation::Read) => Role::Maintainer,
        (NamespaceKind::Group, TokenOperation::Create | TokenOperation::Revoke) => Role::Owner,
    };
    role.is_some_and(|role| role >= needed)
}

/// Only admins (and the operator) list every token of the instance.
pub fn may_list_instance_tokens(caller: Principal) -> bool {
    match caller {
        Principal::Operator => true,
        Principal::User { admin, blocked, .. } => admin && !blocked,
    }
}

/// Whether the caller may see that a group or project exists at all (any membership, or
/// admin); others get 404, as GitLab answers for private namespaces.
pub fn may_see_namespace(caller: Principal, role: Option<Role>) -> bool {
    match caller {
        Principal::Operator => true,
        Principal::User { admin, blocked, .. } => !blocked && (admin || role.is_some()),
    }
}

/// May `caller` be handed the CI credentials (`CI_DEPLOY_USER` / `CI_DEPLOY_PASSWORD`) of a
/// project's `gitlab-deploy-token`? Only the CLI operator and an unblocked instance admin
/// whose personal access token has the full `api` scope: these are a CI system's
/// credentials, and a password leaves the server.
pub fn may_read_ci_credentials(caller: Principal) -> bool {
    match caller {
        Principal::Operator => true,
        Principal::User {
            admin,
            blocked,
            token_may_write,
        } => admin && !blocked && token_may_write,
    }
}

/// Whether the caller may change a project's visibility: Owners (inherited from a group too)
/// and admins, as in GitLab, with a token that may write.
pub fn may_change_visibility(caller: Principal, role: Option<Role>) -> bool {
    match caller {
        Principal::Operator => true,
        Principal::User {
            admin,
            blocked,
            token_may_write,
        } => !blocked && token_may_write && (admin || role.is_some_and(|r| r >= Role::Owner)),
    }
}

/// Whether a person may change their own account's preferences: not blocked, with a token
/// that may write (a `read_api` token reads them only). The operator has no account.
pub fn may_change_own_account(caller: Principal) -> bool {
    match caller {
        Principal::Operator => false,
        Principal::User {
            blocked,
            token_may_write,
            ..
        } => !blocked && token_may_write,
    }
}

/// Whether the caller may change a group's token lifetime limits: the same people as a
/// project's visibility (Owners, inherited too, and admins, with a token that may write).
pub fn may_change_token_policy(caller: Principal, role: Option<Role>) -> bool {
    may_change_visibility(caller, role)
}

/// Whether the caller may rotate a personal access token of `owner_user_id`: its own user
/// with a token that may write, or an admin; the operator always.
pub fn may_rotate_personal_access_token(
    caller: Principal,
    caller_user_id: Option<i64>,
    owner_user_id: i64,
) -> bool {
    match caller {
        Principal::Operator => true,
        Principal::User {
            admin,
            blocked,
            token_may_write,
        } => !blocked && token_may_write && (admin || caller_user_id == Some(owner_user_id)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use NamespaceKind::{Group, Project};
    use TokenOperation::{Create, List, Read, Revoke};

    #[test]
    fn only_an_unblocked_person_with_a_writing_token_changes_their_own_account() {
        let person = |blocked, token_may_write| Principal::User {
            admin: false,
            blocked,
            token_may_write,
        };
        assert!(may_change_own_account(person(false, true)));
        assert!(!may_change_own_account(person(false, false)));
        assert!(!may_change_own_account(person(true, true)));
        assert!(!may_change_own_account(Principal::Operator));
    }

    fn user(role_admin: bool) -> Principal {
        Principal::User {
            admin: role_admin,
            blocked: false,
            token_may_write: true,
        }
    }

    /// (owner kind, operation, minimum role that may)
    const TABLE: [(NamespaceKind, TokenOperation, Role); 8] = [
        (Project, List, Role::Maintainer),
        (Project, Read, Role::Maintainer),
        (Project, Create, Role::Maintainer),
        (Project, Revoke, Role::Maintainer),
        (Group, List, Role::Maintainer),
        (Group, Read, Role::Maintainer),
        (Group, Create, Role::Owner),
        (Group, Revoke, Role::Owner),
    ];

    #[test]
    fn every_role_operation_and_owner_kind_follows_the_table() {
        for (kind, operation, minimum) in TABLE {
            assert!(
                !may_manage_tokens(user(false), operation, kind, None),
                "{kind} {operation:?} without a role"
            );
            for role in Role::ALL {
                assert_eq!(
                    may_manage_tokens(user(false), operation, kind, Some(role)),
                    role >= minimum,
                    "{role} {operation:?} on {kind} tokens"
                );
            }
        }
    }

    #[test]
    fn only_owners_admins_and_the_operator_change_visibility() {
        assert!(may_change_visibility(Principal::Operator, None));
        assert!(may_change_visibility(user(true), None));
        for role in Role::ALL {
            assert_eq!(
                may_change_visibility(user(false), Some(role)),
                role == Role::Owner,
                "{role}"
            );
        }
        let read_only = Principal::User {
            admin: true,
            blocked: false,
            token_may_write: false,
        };
        assert!(!may_change_visibility(read_only, Some(Role::Owner)));
        let blocked = Principal::User {
            admin: true,
            blocked: true,
            token_may_write: true,
        };
        assert!(!may_change_visibility(blocked, Some(Role::Owner)));
    }

    #[test]
    fn a_group_maintainer_cannot_create_or_delete_group_tokens() {
        assert!(may_manage_tokens(
            user(false),
            List,
            Group,
            Some(Role::Maintainer)
        ));
        assert!(!may_manage_tokens(
            user(false),
            Create,
            Group,
            Some(Role::Maintainer)
        ));
        assert!(!may_manage_tokens(
            user(false),
            Revoke,
            Group,
            Some(Role::Maintainer)
        ));
    }

    #[test]
    fn a_developer_cannot_create_project_tokens() {
        assert!(!may_manage_tokens(
            user(false),
            Create,
            Project,
            Some(Role::Developer)
        ));
        assert!(!may_manage_tokens(
            user(false),
            List,
            Project,
            Some(Role::Developer)
        ));
    }

    #[test]
    fn admins_may_do_everything_but_a_blocked_admin_nothing() {
        let blocked_admin = Principal::User {
            admin: true,
            blocked: true,
            token_may_write: true,
        };
        for (kind, operation, _) in TABLE {
            assert!(may_manage_tokens(user(true), operation, kind, None));
            assert!(!may_manage_tokens(
                blocked_admin,
                operation,
                kind,
                Some(Role::Owner)
            ));
        }
        assert!(may_list_instance_tokens(user(true)));
        assert!(!may_list_instance_tokens(blocked_admin));
        assert!(!may_list_instance_tokens(user(false)));
        assert!(!may_see_namespace(blocked_admin, Some(Role::Owner)));
    }

    #[test]
    fn a_read_api_token_reads_but_never_writes_even_for_an_owner_or_admin() {
        for admin in [false, true] {
            let reader = Principal::User {
                admin,
                blocked: false,
                token_may_write: false,
            };
            for (kind, operation, _) in TABLE {
                assert_eq!(
                    may_manage_tokens(reader, operation, kind, Some(Role::Owner)),
                    !operation.writes(),
                    "admin={admin} {operation:?} {kind}"
                );
            }
        }
    }

    #[test]
    fn the_operator_at_the_command_line_may_do_everything() {
        for (kind, operation, _) in TABLE {
            assert!(may_manage_tokens(
                Principal::Operator,
                operation,
                kind,
                None
            ));
        }
    }

    #[test]
    fn seeing_a_namespace_needs_a_membership_or_admin() {
        assert!(may_see_namespace(user(false), Some(Role::Guest)));
        assert!(!may_see_namespace(user(false), None));
        assert!(may_see_namespace(user(true), None));
    }

    #[test]
    fn only_an_api_scoped_admin_or_the_operator_may_read_ci_credentials() {
        assert!(may_read_ci_credentials(Principal::Operator));
        for admin in [false, true] {
            for blocked in [false, true] {
                for token_may_write in [false, true] {
                    assert_eq!(
                        may_read_ci_credentials(Principal::User {
                            admin,
                            blocked,
                            token_may_write
                        }),
                        admin && !blocked && token_may_write,
                        "admin {admin}, blocked {blocked}, api {token_may_write}"
                    );
                }
            }
        }
    }
}
