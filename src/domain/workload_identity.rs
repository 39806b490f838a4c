//! Workload identity policies: which OIDC tokens (issuer, audience, claim conditions) stand in
//! for a deploy token of a project or group, with which scopes and for how long. The claim
//! matcher and the validation of a new policy are pure.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::deploy_token::{parse_scopes, ValidationError};
use super::namespace::{Namespace, NamespaceKind};
use super::text::refuse_control_characters;
use super::token_scope::{DeployTokenScope, ScopeSet};

/// Every policy's username is this prefix and its id; reserved for policies.
pub const WORKLOAD_USERNAME_PREFIX: &str = "gitlab+workload-";

/// A registry credential minted from a policy lives at most this long.
pub const MAX_TTL_SECONDS: u32 = 3600;
/// The default `max_ttl`: 15 minutes.
pub const DEFAULT_TTL_SECONDS: u32 = 900;

/// Conditions, claim names, values: bounded so that a policy stays a policy.
const MAX_CONDITIONS: usize = 32;
const MAX_VALUES: usize = 64;
const MAX_TEXT: usize = 1024;

/// What platform an issuer is: decides which claims pin an owner and which pin a ref.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, strum::IntoStaticStr)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "snake_case")]
pub enum IssuerKind {
    Gitlab,
    Github,
    Kubernetes,
    Generic,
}

impl IssuerKind {
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// Claims that name an owner by an id that is never reused (names can be).
    pub fn owner_id_claims(self) -> &'static [&'static str] {
        match self {
            IssuerKind::Gitlab => &["project_id", "namespace_id"],
            IssuerKind::Github => &["repository_id", "repository_owner_id"],
            IssuerKind::Kubernetes | IssuerKind::Generic => &[],
        }
    }
}

/// What a policy needs to know of its issuer to be validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IssuerTrust {
    pub kind: IssuerKind,
    /// gitlab.com or GitHub: everyone's jobs share the issuer.
    pub shared: bool,
}

/// One condition's expected value: a claim must equal it, or one of the list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Expected {
    One(String),
    AnyOf(Vec<String>),
}

impl Expected {
    fn values(&self) -> &[String] {
        match self {
            Expected::One(value) => std::slice::from_ref(value),
            Expected::AnyOf(values) => values,
        }
    }
}

/// Claim path → expected value; all must hold.
pub type Conditions = BTreeMap<String, Expected>;

/// The claim at a dotted path. A key may itself hold dots (Kubernetes'
/// `kubernetes.io`): at each level the longest key that prefixes the rest of the path wins.
pub fn claim_at<'a>(claims: &'a Value, path: &str) -> Option<&'a Value> {
    let object = claims.as_object()?;
    if let Some(value) = object.get(path) {
        return Some(value);
    }
    let mut dots: Vec<usize> = path.match_indices('.').map(|(at, _)| at).collect();
    dots.reverse();
    dots.into_iter().find_map(|at| {
        object
            .get(&path[..at])
            .and_then(|inner| claim_at(inner, &path[at + 1..]))
    })
}

/// A claim as the text conditions compare with: strings as they are, numbers and booleans
/// as written in JSON (GitLab sends `"20"`, others `20`; both match `"20"`).
fn claim_text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        _ => None,
    }
}

/// Whether one condition holds: the claim (or, for a list claim, one of its items) equals
/// one of the expected values. A missing claim never matches.
pub fn condition_holds(claims: &Value, path: &str, expected: &Expected) -> bool {
    let Some(claim) = claim_at(claims, path) else {
        return false;
    };
    let texts: Vec<String> = match claim {
        Value::Array(items) => items.iter().filter_map(claim_text).collect(),
        other => claim_text(other).into_iter().collect(),
    };
    texts
        .iter()
        .any(|text| expected.values().iter().any(|value| value == text))
}

/// Whether every condition holds (an empty set holds; validation refuses one on a shared
/// issuer).
pub fn conditions_match(conditions: &Conditions, claims: &Value) -> bool {
    conditions
        .iter()
        .all(|(path, expected)| condition_holds(claims, path, expected))
}

/// A stored policy with its owner resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadIdentity {
    pub id: i64,
    pub name: String,
    pub owner: Namespace,
    pub issuer: String,
    pub audience: String,
    pub conditions: Conditions,
    pub scopes: ScopeSet,
    pub max_ttl_seconds: u32,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    /// Its address allow-list (and, where it authenticates, its groups').
    pub restrictions: super::TokenRestrictions,
}

impl WorkloadIdentity {
    pub fn username(&self) -> String {
        workload_username(self.id)
    }
}

pub fn workload_username(id: i64) -> String {
    format!("{WORKLOAD_USERNAME_PREFIX}{id}")
}

/// The policy id a username names, if it is a policy's (`gitlab+workload-<id>`).
pub fn parse_workload_username(username: &str) -> Option<i64> {
    let id = username.strip_prefix(WORKLOAD_USERNAME_PREFIX)?;
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) || id.starts_with('0') {
        return None;
    }
    id.parse().ok()
}

/// What a caller asks for, before validation: the JSON body of `POST
/// /api/v4/{projects|groups}/:id/workload_identities` (unknown fields ignored) and what
/// `regauth workload-identity create` builds from its flags.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct WorkloadIdentityRequest {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub issuer: String,
    #[serde(default)]
    pub audience: String,
    #[serde(default)]
    pub conditions: Conditions,
    #[serde(default)]
    pub scopes: Vec<String>,
    pub max_ttl: Option<u32>,
    /// Where the policy's logins may come from (issue #27).
    #[serde(default, deserialize_with = "super::address_range::deserialize_ranges")]
    pub ip_restriction_ranges: Vec<String>,
}

/// A policy that passed every rule; only [`NewWorkloadIdentity::validate`] makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewWorkloadIdentity {
    pub name: String,
    pub issuer: String,
    pub audience: String,
    pub conditions: Conditions,
    pub scopes: ScopeSet,
    pub max_ttl_seconds: u32,
    pub warnings: Vec<String>,
    pub ip_restriction_ranges: super::address_range::IpRanges,
}

fn bounded_text(field: &'static str, value: &str) -> Result<(), ValidationError> {
    refuse_control_characters(field, value)?;
    if value.chars().count() > MAX_TEXT {
        return Err(ValidationError::new(
            field,
            format!("is too long (maximum is {MAX_TEXT} characters)"),
        ));
    }
    Ok(())
}

impl NewWorkloadIdentity {
    /// `issuer` is `None` when the request names an issuer that is not configured.
    pub fn validate(
        request: WorkloadIdentityRequest,
        owner_kind: NamespaceKind,
        issuer: Option<IssuerTrust>,
    ) -> Result<NewWorkloadIdentity, ValidationError> {
        let name = request.name.trim().to_owned();
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
        let issuer_url = request.issuer.trim().to_owned();
        if issuer_url.is_empty() {
            return Err(ValidationError::new("issuer", "can't be blank"));
        }
        let Some(trust) = issuer else {
            return Err(ValidationError::new(
                "issuer",
                "is not a trusted issuer of this server (an administrator lists them in [[oidc_issuers]])",
            ));
        };
        let audience = request.audience.trim().to_owned();
        if audience.is_empty() {
            return Err(ValidationError::new(
                "audience",
                "can't be blank: tokens minted for another service must not be accepted here",
            ));
        }
        bounded_text("audience", &audience)?;
        if request.conditions.len() > MAX_CONDITIONS {
            return Err(ValidationError::new(
                "conditions",
                format!("has too many entries (maximum is {MAX_CONDITIONS})"),
            ));
        }
        for (path, expected) in &request.conditions {
            if path.is_empty() || path.starts_with('.') || path.ends_with('.') {
                return Err(ValidationError::new(
                    "conditions",
                    format!("{path:?} is not a claim name"),
                ));
            }
            bounded_text("conditions", path)?;
            let values = expected.values();
            if values.is_empty() || values.len() > MAX_VALUES {
                return Err(ValidationError::new(
                    "conditions",
                    format!("{path:?} needs between 1 and {MAX_VALUES} values"),
                ));
            }
            for value in values {
                bounded_text("conditions", value)?;
            }
        }
        let scopes = parse_scopes(&request.scopes)?;
        if owner_kind == NamespaceKind::Project {
            if let Some(scope) = scopes.iter().find(|scope| scope.is_group_only()) {
                return Err(ValidationError::new(
                    "scopes",
                    format!("{scope} is only available for group policies"),
                ));
            }
        }
        let max_ttl_seconds = request.max_ttl.unwrap_or(DEFAULT_TTL_SECONDS);
        if max_ttl_seconds == 0 || max_ttl_seconds > MAX_TTL_SECONDS {
            return Err(ValidationError::new(
                "max_ttl",
                format!("must be between 1 and {MAX_TTL_SECONDS} seconds"),
            ));
        }
        let owner_claims = trust.kind.owner_id_claims();
        if trust.shared
            && !owner_claims
                .iter()
                .any(|claim| request.conditions.contains_key(*claim))
        {
            return Err(ValidationError::new(
                "conditions",
                format!(
                    "must pin {} on a shared issuer: every {} user's jobs get tokens from it, and names can be taken over",
                    owner_claims.join(" or "),
                    trust.kind.as_str()
                ),
            ));
        }
        let warnings = write_warnings(trust.kind, scopes, &request.conditions);
        let ip_restriction_ranges =
            super::address_range::IpRanges::parse_list(&request.ip_restriction_ranges)?;
        Ok(NewWorkloadIdentity {
            ip_restriction_ranges,
            name,
            issuer: issuer_url,
            audience,
            conditions: request.conditions,
            scopes,
            max_ttl_seconds,
            warnings,
        })
    }
}

/// Pushing from any branch of a pipeline is rarely meant: a write policy should pin a
/// protected ref or environment.
fn write_warnings(kind: IssuerKind, scopes: ScopeSet, conditions: &Conditions) -> Vec<String> {
    let writes = scopes.contains(DeployTokenScope::WriteRegistry);
    let pinned = |claim: &str, value: Option<&str>| {
        conditions.get(claim).is_some_and(|expected| match value {
            Some(value) => expected.values().iter().all(|v| v == value),
            None => true,
        })
    };
    let pins_ref = match kind {
        IssuerKind::Gitlab => {
            pinned("ref_protected", Some("true")) || pinned("environment_protected", Some("true"))
        }
        IssuerKind::Github => pinned("ref", None) || pinned("environment", None),
        // Pods and other issuers have no refs.
        IssuerKind::Kubernetes | IssuerKind::Generic => true,
    };
    if writes && !pins_ref {
        let hint = match kind {
            IssuerKind::Gitlab => "ref_protected = \"true\" or environment_protected = \"true\"",
            _ => "ref or environment",
        };
        vec![format!(
            "write_registry without a pinned protected ref or environment: any branch can push (pin {hint})"
        )]
    } else {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn conditions(value: Value) -> Conditions {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn equality_any_of_and_dotted_paths() {
        let claims = json!({
            "project_id": "20",
            "repository_id": 42,
            "ref_protected": "true",
            "groups_direct": ["a", "b"],
            "kubernetes.io": {"namespace": "ci", "serviceaccount": {"name": "builder", "uid": "u-1"}},
            "nested": {"deep": {"flag": true}}
        });
        let cases = [
            (json!({"project_id": "20"}), true),
            (json!({"project_id": "21"}), false),
            (json!({"project_id": ["19", "20"]}), true),
            (json!({"repository_id": "42"}), true),
            (json!({"groups_direct": "b"}), true),
            (json!({"groups_direct": ["c", "a"]}), true),
            (json!({"groups_direct": "c"}), false),
            (json!({"kubernetes.io.serviceaccount.uid": "u-1"}), true),
            (json!({"kubernetes.io.namespace": "ci"}), true),
            (json!({"kubernetes.io.namespace": "prod"}), false),
            (json!({"nested.deep.flag": "true"}), true),
            (json!({"missing": "x"}), false),
            (json!({"nested": "x"}), false),
            (json!({"project_id": "20", "ref_protected": "false"}), false),
            (json!({}), true),
        ];
        for (condition, expected) in cases {
            assert_eq!(
                conditions_match(&conditions(condition.clone()), &claims),
                expected,
                "{condition}"
            );
        }
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn claim_set() -> impl Strategy<Value = BTreeMap<String, String>> {
            proptest::collection::btree_map("[a-z_]{1,12}", "[ -~]{0,16}", 1..8)
        }

        proptest! {
            /// Conditions taken from a token's own claims always hold; changing one expected
            /// value to anything else makes the whole set fail.
            #[test]
            fn own_claims_match_and_one_changed_value_does_not(
                claims in claim_set(),
                pick in any::<prop::sample::Index>(),
                other in "[ -~]{0,16}",
            ) {
                let value = serde_json::to_value(&claims).unwrap();
                let all: Conditions = claims
                    .iter()
                    .map(|(k, v)| (k.clone(), Expected::One(v.clone())))
                    .collect();
                prop_assert!(conditions_match(&all, &value));
                let (key, actual) = claims.iter().nth(pick.index(claims.len())).unwrap();
                prop_assume!(&other != actual);
                let mut changed = all.clone();
                changed.insert(key.clone(), Expected::One(other));
                prop_assert!(!conditions_match(&changed, &value));
            }

            /// Any-of holds exactly when the claim is one of the list.
            #[test]
            fn any_of_holds_iff_the_claim_is_listed(
                actual in "[a-z0-9]{1,8}",
                others in proptest::collection::vec("[a-z0-9]{1,8}", 0..6),
                include in any::<bool>(),
            ) {
                let mut listed: Vec<String> = others.into_iter().filter(|o| o != &actual).collect();
                if include {
                    listed.push(actual.clone());
                }
                prop_assume!(!listed.is_empty());
                let claims = json!({"ref": actual});
                let conditions: Conditions =
                    [("ref".to_owned(), Expected::AnyOf(listed))].into_iter().collect();
                prop_assert_eq!(conditions_match(&conditions, &claims), include);
            }

            /// A value nested under dotted keys is reached by its dotted path, whatever dots
            /// the keys themselves hold.
            #[test]
            fn dotted_paths_reach_nested_claims(
                outer in "[a-z]{1,6}(\\.[a-z]{1,6})?",
                inner in "[a-z]{1,6}",
                value in "[a-z0-9]{1,8}",
            ) {
                let claims = json!({ outer.clone(): { inner.clone(): value.clone() } });
                let path = format!("{outer}.{inner}");
                prop_assert!(condition_holds(&claims, &path, &Expected::One(value.clone())));
                let different = Expected::One(format!("{}x", value));
                prop_assert!(!condition_holds(&claims, &path, &different));
            }
        }
    }

    #[test]
    fn usernames_round_trip_and_strangers_are_not_policies() {
        assert_eq!(workload_username(3), "gitlab+workload-3");
        assert_eq!(parse_workload_username("gitlab+workload-3"), Some(3));
        for other in [
            "gitlab+workload-",
            "gitlab+workload-03",
            "gitlab+workload-3a",
            "gitlab+deploy-token-3",
            "gitlab+workload--1",
        ] {
            assert_eq!(parse_workload_username(other), None, "{other}");
        }
    }

    fn request(conditions: Value, scopes: &[&str]) -> WorkloadIdentityRequest {
        WorkloadIdentityRequest {
            name: "release".into(),
            issuer: "https://gitlab.com".into(),
            audience: "https://regauth.example.com".into(),
            conditions: serde_json::from_value(conditions).unwrap(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            max_ttl: None,
            ip_restriction_ranges: Vec::new(),
        }
    }

    const SHARED_GITLAB: Option<IssuerTrust> = Some(IssuerTrust {
        kind: IssuerKind::Gitlab,
        shared: true,
    });

    #[test]
    fn a_shared_issuer_needs_an_owner_id() {
        let error = NewWorkloadIdentity::validate(
            request(json!({"project_path": "acme/web"}), &["read_registry"]),
            NamespaceKind::Project,
            SHARED_GITLAB,
        )
        .unwrap_err();
        assert_eq!(error.field, "conditions");
        assert!(
            error.message.contains("project_id or namespace_id"),
            "{error}"
        );
        let github = Some(IssuerTrust {
            kind: IssuerKind::Github,
            shared: true,
        });
        let error = NewWorkloadIdentity::validate(
            request(json!({"repository": "acme/web"}), &["read_registry"]),
            NamespaceKind::Project,
            github,
        )
        .unwrap_err();
        assert!(error
            .message
            .contains("repository_id or repository_owner_id"));
        assert!(NewWorkloadIdentity::validate(
            request(json!({"repository_owner_id": "7"}), &["read_registry"]),
            NamespaceKind::Project,
            github,
        )
        .is_ok());
    }

    #[test]
    fn writing_without_a_protected_ref_warns() {
        let unpinned = NewWorkloadIdentity::validate(
            request(
                json!({"project_id": "20"}),
                &["read_registry", "write_registry"],
            ),
            NamespaceKind::Project,
            SHARED_GITLAB,
        )
        .unwrap();
        assert_eq!(unpinned.warnings.len(), 1);
        assert!(unpinned.warnings[0].contains("ref_protected"));
        let pinned = NewWorkloadIdentity::validate(
            request(
                json!({"project_id": "20", "ref_protected": "true"}),
                &["read_registry", "write_registry"],
            ),
            NamespaceKind::Project,
            SHARED_GITLAB,
        )
        .unwrap();
        assert!(pinned.warnings.is_empty());
        let reading = NewWorkloadIdentity::validate(
            request(json!({"project_id": "20"}), &["read_registry"]),
            NamespaceKind::Project,
            SHARED_GITLAB,
        )
        .unwrap();
        assert!(reading.warnings.is_empty());
    }

    #[test]
    fn fields_are_checked_with_named_messages() {
        let base = || request(json!({"project_id": "20"}), &["read_registry"]);
        let cases: Vec<(WorkloadIdentityRequest, Option<IssuerTrust>, &str)> = vec![
            (
                WorkloadIdentityRequest {
                    name: " ".into(),
                    ..base()
                },
                SHARED_GITLAB,
                "name",
            ),
            (base(), None, "issuer"),
            (
                WorkloadIdentityRequest {
                    audience: "".into(),
                    ..base()
                },
                SHARED_GITLAB,
                "audience",
            ),
            (
                WorkloadIdentityRequest {
                    max_ttl: Some(3601),
                    ..base()
                },
                SHARED_GITLAB,
                "max_ttl",
            ),
            (
                WorkloadIdentityRequest {
                    max_ttl: Some(0),
                    ..base()
                },
                SHARED_GITLAB,
                "max_ttl",
            ),
            (
                WorkloadIdentityRequest {
                    scopes: vec![],
                    ..base()
                },
                SHARED_GITLAB,
                "scopes",
            ),
            (
                WorkloadIdentityRequest {
                    scopes: vec!["read_virtual_registry".into()],
                    ..base()
                },
                SHARED_GITLAB,
                "scopes",
            ),
            (
                request(json!({"project_id": []}), &["read_registry"]),
                SHARED_GITLAB,
                "conditions",
            ),
            (
                request(json!({"project_id": "20", ".x": "1"}), &["read_registry"]),
                SHARED_GITLAB,
                "conditions",
            ),
        ];
        for (request, trust, field) in cases {
            let error =
                NewWorkloadIdentity::validate(request, NamespaceKind::Project, trust).unwrap_err();
            assert_eq!(error.field, field, "{error}");
        }
        let valid =
            NewWorkloadIdentity::validate(base(), NamespaceKind::Project, SHARED_GITLAB).unwrap();
        assert_eq!(valid.max_ttl_seconds, DEFAULT_TTL_SECONDS);
    }
}
