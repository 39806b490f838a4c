//! Requested scopes of a registry token request.
//!
//! Implements PROTOCOL.md §5 (scope grammar `type[(class)]:name:action[,action...]`) and the
//! request-level rules of PROTOCOL.md §3 (the `scope` parameter repeats; each value may hold
//! several scopes separated by spaces, as containerd sends them and GitLab splits them;
//! duplicates are tolerated and merged; a malformed scope is dropped, never an error).
//!
//! Decisions taken here:
//! - The type is split at the **first** `:` and the actions at the **last** `:`, so a name with
//!   a `host:port` prefix (`repository:localhost:5000/foo/bar:pull`) keeps its colon.
//! - The deprecated resource class is dropped: `repository(plugin):x/y:pull` parses as type
//!   `repository`, exactly like `repository:x/y:pull` (registry 3.x ignores the class too).
//! - The name is only checked for being non-empty and free of whitespace and control
//!   characters; whether it is a valid repository name is decided later by
//!   [`RepositoryPath::parse`](super::RepositoryPath::parse), which drops invalid names.
//! - Abuse limits: a scope longer than [`MAX_SCOPE_LEN`] bytes, or with more than
//!   [`MAX_ACTIONS_PER_SCOPE`] distinct actions, is rejected; at most
//!   [`MAX_SCOPES_PER_REQUEST`] distinct scopes are kept per request, the rest are rejected.

use std::fmt;

/// Longest accepted single scope, in bytes (the longest repository name is 255 bytes).
pub const MAX_SCOPE_LEN: usize = 1024;

/// Most distinct scopes (type + name) kept from one token request; later ones are rejected.
pub const MAX_SCOPES_PER_REQUEST: usize = 64;

/// Most distinct actions one scope may carry, also after merging duplicates.
pub const MAX_ACTIONS_PER_SCOPE: usize = 16;

/// One action of a requested scope.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// `pull`: read manifests and blobs.
    Pull,
    /// `push`: upload blobs and manifests.
    Push,
    /// `delete`: delete manifests and blobs.
    Delete,
    /// `*`: every action (what `registry:catalog:*` and `skopeo delete` ask for).
    Any,
    /// Any other syntactically valid (`[a-z]*`, non-empty) action; never granted.
    Other(String),
}

impl Action {
    /// Parses one action: `*` or `[a-z]+`. Empty entries are handled by the caller.
    fn parse(s: &str) -> Result<Action, ScopeParseError> {
        match s {
            "pull" => Ok(Action::Pull),
            "push" => Ok(Action::Push),
            "delete" => Ok(Action::Delete),
            "*" => Ok(Action::Any),
            other if other.bytes().all(|b| b.is_ascii_lowercase()) => {
                Ok(Action::Other(other.to_owned()))
            }
            other => Err(ScopeParseError::BadAction(other.to_owned())),
        }
    }

    /// The action as it is spelled in a scope.
    pub fn as_str(&self) -> &str {
        match self {
            Action::Pull => "pull",
            Action::Push => "push",
            Action::Delete => "delete",
            Action::Any => "*",
            Action::Other(other) => other,
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why one requested scope was rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ScopeParseError {
    /// The scope is the empty string.
    #[error("scope is empty")]
    Empty,
    /// The scope exceeds [`MAX_SCOPE_LEN`].
    #[error("scope is {len} bytes long; the limit is {max}")]
    TooLong {
        /// Length of the scope in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Nothing before the first `:`.
    #[error("scope has no resource type before the first ':' (expected type:name:actions)")]
    MissingType,
    /// The type is not `[a-z0-9]+` with an optional `([a-z0-9]+)` class.
    #[error("bad resource type \"{0}\": expected [a-z0-9]+ with an optional ([a-z0-9]+) class")]
    BadType(String),
    /// No `:` at all, or nothing between the first and the last `:`.
    #[error("scope has no name (expected type:name:actions)")]
    MissingName,
    /// Only one `:`: the name is not followed by `:actions`.
    #[error("scope has no ':' before its actions (expected type:name:actions)")]
    MissingActions,
    /// The name holds whitespace or a control character.
    #[error("bad name \"{0}\": whitespace and control characters are not allowed")]
    BadName(String),
    /// An action is neither `*` nor `[a-z]*`.
    #[error("bad action \"{0}\": expected [a-z]* or *")]
    BadAction(String),
    /// More than [`MAX_ACTIONS_PER_SCOPE`] distinct actions.
    #[error("scope has {count} distinct actions; the limit is {max}")]
    TooManyActions {
        /// Number of distinct actions (after merging duplicates of the same scope).
        count: usize,
        /// The limit.
        max: usize,
    },
    /// The request already holds [`MAX_SCOPES_PER_REQUEST`] distinct scopes.
    #[error("more than {max} distinct scopes in one request; the rest are ignored")]
    TooManyScopes {
        /// The limit.
        max: usize,
    },
}

/// One scope as the client requested it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestedScope {
    /// Resource type without its class (`repository`, `registry`, ...).
    pub resource_type: String,
    /// Resource name, as sent (may hold a `host:port` prefix; validated later).
    pub name: String,
    /// Requested actions, deduplicated, in first-seen order; possibly empty.
    pub actions: Vec<Action>,
}

impl RequestedScope {
    /// Parses one scope `type[(class)]:name:action[,action...]` (PROTOCOL.md §5).
    ///
    /// The class is dropped; empty action entries (`pull,,push`, a trailing `:`) are ignored.
    pub fn parse(s: &str) -> Result<RequestedScope, ScopeParseError> {
        if s.is_empty() {
            return Err(ScopeParseError::Empty);
        }
        if s.len() > MAX_SCOPE_LEN {
            return Err(ScopeParseError::TooLong {
                len: s.len(),
                max: MAX_SCOPE_LEN,
            });
        }
        let (raw_type, rest) = s.split_once(':').ok_or(ScopeParseError::MissingName)?;
        if raw_type.is_empty() {
            return Err(ScopeParseError::MissingType);
        }
        let resource_type = parse_type(raw_type)?;
        if rest.is_empty() {
            return Err(ScopeParseError::MissingName);
        }
        let (name, raw_actions) = rest
            .rsplit_once(':')
            .ok_or(ScopeParseError::MissingActions)?;
        if name.is_empty() {
            return Err(ScopeParseError::MissingName);
        }
        if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(ScopeParseError::BadName(name.to_owned()));
        }
        let mut actions: Vec<Action> = Vec::new();
        for raw in raw_actions.split(',').filter(|a| !a.is_empty()) {
            let action = Action::parse(raw)?;
            if !actions.contains(&action) {
                actions.push(action);
            }
        }
        if actions.len() > MAX_ACTIONS_PER_SCOPE {
            return Err(ScopeParseError::TooManyActions {
                count: actions.len(),
                max: MAX_ACTIONS_PER_SCOPE,
            });
        }
        Ok(RequestedScope {
            resource_type: resource_type.to_owned(),
            name: name.to_owned(),
            actions,
        })
    }

    /// True when `action` was requested.
    pub fn has_action(&self, action: &Action) -> bool {
        self.actions.contains(action)
    }

    fn same_resource(&self, other: &RequestedScope) -> bool {
        self.resource_type == other.resource_type && self.name == other.name
    }
}

impl fmt::Display for RequestedScope {
    /// Formats as `type:name:action,action` (class dropped).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:", self.resource_type, self.name)?;
        for (i, action) in self.actions.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(action.as_str())?;
        }
        Ok(())
    }
}

/// Checks `[a-z0-9]+` with an optional `([a-z0-9]+)` class and returns the type without it.
fn parse_type(raw: &str) -> Result<&str, ScopeParseError> {
    let bad = || ScopeParseError::BadType(raw.to_owned());
    let is_word =
        |s: &str| !s.is_empty() && s.bytes().all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9'));
    let base = match raw.split_once('(') {
        None => raw,
        Some((base, class)) => {
            let class = class.strip_suffix(')').ok_or_else(bad)?;
            if !is_word(class) {
                return Err(bad());
            }
            base
        }
    };
    if is_word(base) {
        Ok(base)
    } else {
        Err(bad())
    }
}

/// The outcome of parsing all `scope` values of one token request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ParsedScopes {
    /// Well-formed scopes, one per type + name, in first-seen order.
    pub scopes: Vec<RequestedScope>,
    /// Dropped scopes with the reason, for the caller to log. The raw text is cut to at most
    /// [`MAX_SCOPE_LEN`] bytes so a hostile request cannot flood the log.
    pub rejected: Vec<(String, ScopeParseError)>,
}

/// Parses every `scope` value of a token request (PROTOCOL.md §3 and §5).
///
/// Each value may hold several scopes separated by spaces (containerd sends all in ONE value;
/// GitLab splits on spaces). Duplicates (same type+name) are merged with the union of actions
/// (podman repeats scopes). Malformed ones go to `rejected`, never an error. At most
/// [`MAX_SCOPES_PER_REQUEST`] distinct scopes are kept; a repeat of a kept scope still merges.
pub fn parse_requested_scopes<'a, I: IntoIterator<Item = &'a str>>(values: I) -> ParsedScopes {
    let mut parsed = ParsedScopes::default();
    for raw in values.into_iter().flat_map(str::split_ascii_whitespace) {
        let scope = match RequestedScope::parse(raw) {
            Ok(scope) => scope,
            Err(err) => {
                parsed.rejected.push((truncate_for_log(raw), err));
                continue;
            }
        };
        if let Some(existing) = parsed.scopes.iter_mut().find(|s| s.same_resource(&scope)) {
            let new_actions: Vec<&Action> = scope
                .actions
                .iter()
                .filter(|a| !existing.actions.contains(a))
                .collect();
            let count = existing.actions.len() + new_actions.len();
            if count > MAX_ACTIONS_PER_SCOPE {
                parsed.rejected.push((
                    truncate_for_log(raw),
                    ScopeParseError::TooManyActions {
                        count,
                        max: MAX_ACTIONS_PER_SCOPE,
                    },
                ));
            } else {
                let new_actions: Vec<Action> = new_actions.into_iter().cloned().collect();
                existing.actions.extend(new_actions);
            }
        } else if parsed.scopes.len() >= MAX_SCOPES_PER_REQUEST {
            parsed.rejected.push((
                truncate_for_log(raw),
                ScopeParseError::TooManyScopes {
                    max: MAX_SCOPES_PER_REQUEST,
                },
            ));
        } else {
            parsed.scopes.push(scope);
        }
    }
    parsed
}

/// Cuts `raw` to at most [`MAX_SCOPE_LEN`] bytes, at a character boundary.
fn truncate_for_log(raw: &str) -> String {
    if raw.len() <= MAX_SCOPE_LEN {
        return raw.to_owned();
    }
    let mut end = MAX_SCOPE_LEN;
    while !raw.is_char_boundary(end) {
        end -= 1;
    }
    raw[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(resource_type: &str, name: &str, actions: &[Action]) -> RequestedScope {
        RequestedScope {
            resource_type: resource_type.to_owned(),
            name: name.to_owned(),
            actions: actions.to_vec(),
        }
    }

    #[test]
    fn well_formed_scopes_parse_into_type_name_and_actions() {
        use Action::*;
        let cases: Vec<(&str, &str, &str, Vec<Action>)> = vec![
            (
                "repository:acme/web:pull",
                "repository",
                "acme/web",
                vec![Pull],
            ),
            (
                "repository:group/sub/project:pull,push",
                "repository",
                "group/sub/project",
                vec![Pull, Push],
            ),
            (
                "repository:acme/web:push,pull",
                "repository",
                "acme/web",
                vec![Push, Pull],
            ),
            ("repository:acme/web:*", "repository", "acme/web", vec![Any]),
            (
                "repository:acme/web:delete",
                "repository",
                "acme/web",
                vec![Delete],
            ),
            ("registry:catalog:*", "registry", "catalog", vec![Any]),
            (
                "repository:localhost:5000/foo/bar:pull",
                "repository",
                "localhost:5000/foo/bar",
                vec![Pull],
            ),
            (
                "repository:registry.example.com:443/acme/web:pull,push",
                "repository",
                "registry.example.com:443/acme/web",
                vec![Pull, Push],
            ),
            (
                "repository(plugin):x/y:pull",
                "repository",
                "x/y",
                vec![Pull],
            ),
            ("repository2:x:pull", "repository2", "x", vec![Pull]),
            (
                "repository:acme/web:pull,pull,push,pull",
                "repository",
                "acme/web",
                vec![Pull, Push],
            ),
            (
                "repository:acme/web:pull,,push,",
                "repository",
                "acme/web",
                vec![Pull, Push],
            ),
            ("repository:acme/web:", "repository", "acme/web", vec![]),
            (
                "repository:acme/web:mount,pull",
                "repository",
                "acme/web",
                vec![Other("mount".to_owned()), Pull],
            ),
            // Names are validated later, by RepositoryPath; the scope grammar keeps them.
            (
                "repository:Acme/Web:pull",
                "repository",
                "Acme/Web",
                vec![Pull],
            ),
        ];
        for (input, resource_type, name, actions) in cases {
            let expected = scope(resource_type, name, &actions);
            assert_eq!(
                RequestedScope::parse(input),
                Ok(expected),
                "input {input:?}"
            );
        }
    }

    #[test]
    fn malformed_scopes_are_rejected_with_a_precise_reason() {
        use ScopeParseError::*;
        let too_long = format!("repository:{}:pull", "a".repeat(MAX_SCOPE_LEN));
        let many_actions = format!(
            "repository:a/b:{}",
            ('a'..='q').map(String::from).collect::<Vec<_>>().join(",")
        );
        let cases: Vec<(&str, ScopeParseError)> = vec![
            ("", Empty),
            (":", MissingType),
            (":acme/web:pull", MissingType),
            ("repository", MissingName),
            ("repository:", MissingName),
            ("repository::pull", MissingName),
            ("repository:foo", MissingActions),
            ("repository:foo:PULL", BadAction("PULL".to_owned())),
            ("repository:foo:pull,Push", BadAction("Push".to_owned())),
            ("repository:foo:pull2", BadAction("pull2".to_owned())),
            ("repository:foo:**", BadAction("**".to_owned())),
            (
                "repository:foo:pull push",
                BadAction("pull push".to_owned()),
            ),
            ("Repository:foo:pull", BadType("Repository".to_owned())),
            ("repo-sitory:foo:pull", BadType("repo-sitory".to_owned())),
            ("repository():foo:pull", BadType("repository()".to_owned())),
            (
                "repository(plugin:foo:pull",
                BadType("repository(plugin".to_owned()),
            ),
            (
                "repository(Plugin):foo:pull",
                BadType("repository(Plugin)".to_owned()),
            ),
            ("(plugin):foo:pull", BadType("(plugin)".to_owned())),
            ("repository:a b:pull", BadName("a b".to_owned())),
            ("repository:a\tb:pull", BadName("a\tb".to_owned())),
            ("repository:a\u{7}b:pull", BadName("a\u{7}b".to_owned())),
            (
                too_long.as_str(),
                TooLong {
                    len: too_long.len(),
                    max: MAX_SCOPE_LEN,
                },
            ),
            (
                many_actions.as_str(),
                TooManyActions {
                    count: 17,
                    max: MAX_ACTIONS_PER_SCOPE,
                },
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(
                RequestedScope::parse(input),
                Err(expected),
                "input {input:?}"
            );
        }
    }

    #[test]
    fn the_resource_class_is_dropped_so_a_classed_scope_equals_the_plain_one() {
        assert_eq!(
            RequestedScope::parse("repository(plugin):x/y:pull"),
            RequestedScope::parse("repository:x/y:pull")
        );
    }

    #[test]
    fn error_messages_name_the_rule_broken() {
        assert_eq!(
            ScopeParseError::BadAction("PULL".to_owned()).to_string(),
            "bad action \"PULL\": expected [a-z]* or *"
        );
        assert_eq!(
            ScopeParseError::MissingType.to_string(),
            "scope has no resource type before the first ':' (expected type:name:actions)"
        );
        assert_eq!(
            ScopeParseError::TooManyScopes { max: 64 }.to_string(),
            "more than 64 distinct scopes in one request; the rest are ignored"
        );
    }

    #[test]
    fn a_scope_displays_in_its_canonical_form_without_the_class() {
        let parsed = RequestedScope::parse("repository(plugin):localhost:5000/a/b:push,pull,*");
        assert_eq!(
            parsed.map(|s| s.to_string()),
            Ok("repository:localhost:5000/a/b:push,pull,*".to_owned())
        );
    }

    #[test]
    fn no_scope_values_give_an_empty_result_as_for_a_login() {
        assert_eq!(parse_requested_scopes([]), ParsedScopes::default());
        assert_eq!(parse_requested_scopes([""]), ParsedScopes::default());
        assert_eq!(parse_requested_scopes(["   "]), ParsedScopes::default());
    }

    #[test]
    fn space_separated_scopes_in_one_value_are_split_as_containerd_sends_them() {
        let parsed = parse_requested_scopes([
            "repository:acme/web:pull,push repository:acme/base:pull",
            "repository:acme/api:pull",
        ]);
        assert_eq!(
            parsed.scopes,
            vec![
                scope("repository", "acme/web", &[Action::Pull, Action::Push]),
                scope("repository", "acme/base", &[Action::Pull]),
                scope("repository", "acme/api", &[Action::Pull]),
            ]
        );
        assert!(parsed.rejected.is_empty());
    }

    #[test]
    fn repeated_scopes_are_merged_with_the_union_of_their_actions() {
        let parsed = parse_requested_scopes([
            "repository:acme/web:*",
            "repository:acme/web:pull",
            "repository:acme/web:pull,delete",
            "repository(plugin):acme/web:push",
            "registry:catalog:*",
            "registry:catalog:*",
        ]);
        assert_eq!(
            parsed.scopes,
            vec![
                scope(
                    "repository",
                    "acme/web",
                    &[Action::Any, Action::Pull, Action::Delete, Action::Push]
                ),
                scope("registry", "catalog", &[Action::Any]),
            ]
        );
        assert!(parsed.rejected.is_empty());
    }

    #[test]
    fn scopes_of_the_same_name_but_another_type_are_kept_apart() {
        let parsed = parse_requested_scopes(["repository:catalog:pull registry:catalog:*"]);
        assert_eq!(parsed.scopes.len(), 2);
    }

    #[test]
    fn malformed_scopes_are_dropped_into_rejected_and_the_rest_kept() {
        let parsed = parse_requested_scopes([
            "repository:foo:PULL repository:acme/web:pull",
            ":",
            "repository:foo",
        ]);
        assert_eq!(
            parsed.scopes,
            vec![scope("repository", "acme/web", &[Action::Pull])]
        );
        assert_eq!(
            parsed.rejected,
            vec![
                (
                    "repository:foo:PULL".to_owned(),
                    ScopeParseError::BadAction("PULL".to_owned())
                ),
                (":".to_owned(), ScopeParseError::MissingType),
                ("repository:foo".to_owned(), ScopeParseError::MissingActions),
            ]
        );
    }

    #[test]
    fn at_most_64_distinct_scopes_are_kept_and_the_rest_rejected() {
        let values: Vec<String> = (0..70)
            .map(|i| format!("repository:acme/r{i}:pull"))
            .collect();
        let mut refs: Vec<&str> = values.iter().map(String::as_str).collect();
        refs.push("repository:acme/r0:push");
        let parsed = parse_requested_scopes(refs);
        assert_eq!(parsed.scopes.len(), MAX_SCOPES_PER_REQUEST);
        assert_eq!(parsed.scopes[63].name, "acme/r63");
        // A repeat of a kept scope still merges after the cap was reached.
        assert_eq!(parsed.scopes[0].actions, vec![Action::Pull, Action::Push]);
        assert_eq!(parsed.rejected.len(), 6);
        assert_eq!(
            parsed.rejected[0],
            (
                "repository:acme/r64:pull".to_owned(),
                ScopeParseError::TooManyScopes { max: 64 }
            )
        );
    }

    #[test]
    fn merging_that_would_exceed_the_action_limit_rejects_the_repeat() {
        let first = format!(
            "repository:a/b:{}",
            ('a'..='p').map(String::from).collect::<Vec<_>>().join(",")
        );
        let parsed = parse_requested_scopes([first.as_str(), "repository:a/b:pull"]);
        assert_eq!(parsed.scopes[0].actions.len(), MAX_ACTIONS_PER_SCOPE);
        assert_eq!(
            parsed.rejected,
            vec![(
                "repository:a/b:pull".to_owned(),
                ScopeParseError::TooManyActions { count: 17, max: 16 }
            )]
        );
    }

    #[test]
    fn an_overlong_rejected_scope_is_cut_for_the_log() {
        let long = format!("repository:{}:pull", "é".repeat(MAX_SCOPE_LEN));
        let parsed = parse_requested_scopes([long.as_str()]);
        assert_eq!(parsed.rejected.len(), 1);
        let (raw, err) = &parsed.rejected[0];
        assert!(raw.len() <= MAX_SCOPE_LEN);
        assert!(long.starts_with(raw.as_str()));
        assert!(matches!(err, ScopeParseError::TooLong { .. }));
    }
}
