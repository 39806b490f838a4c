//! Property ("fuzz") tests of every parser that reads what a client or an operator sends:
//! scopes, the Basic header, the OAuth2 form, repository paths, the management API's JSON and
//! form bodies, names, the signing-key loader, and the registry's notification envelopes. Generated input must never panic, errors
//! must be clean (the right status, no echo of control characters), and what parses must
//! keep the parser's invariants.
//!
//! Every CI run tries a few cases per property; `scripts/fuzz.sh` runs the same properties
//! with a large count in release mode (`PROPTEST_CASES`). A failing case is saved by proptest
//! to `tests/fuzz.proptest-regressions` and replayed first on every later run.

use actix_web::http::StatusCode;
use actix_web::ResponseError;
use base64::Engine as _;
use chrono::{TimeZone, Utc};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;

use regauth::access::policy::{self, ResolvedScope, Service, TokenAccess, TokenOwner};
use regauth::access::repository::{resolve_project, NamespacePath, RepositoryPath, MAX_PATH_LEN};
use regauth::access::requested_scope::{
    parse_requested_scopes, RequestedScope, MAX_ACTIONS_PER_SCOPE, MAX_SCOPES_PER_REQUEST,
};
use regauth::auth::BasicCredentials;
use regauth::domain::deploy_token::{DeployTokenRequest, NewDeployToken};
use regauth::domain::text::{is_forbidden, printable, refuse_control_characters};
use regauth::domain::{DeployTokenScope, NamespaceKind, ScopeSet};
use regauth::error::Error;
use regauth::jwt::SigningKey;
use regauth::routes::requests::CreateDeployTokenBody;
use regauth::routes::token::form_pairs;

/// Cases per property: few in every CI run, many with `PROPTEST_CASES` (scripts/fuzz.sh).
fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(64);
    ProptestConfig {
        cases,
        max_shrink_iters: 2048,
        ..ProptestConfig::default()
    }
}

/// Strings mostly from `alphabet`, sometimes any character at all.
fn text_from(alphabet: &'static [char], max_len: usize) -> impl Strategy<Value = String> {
    vec(
        prop_oneof![9 => select(alphabet), 1 => any::<char>()],
        0..max_len,
    )
    .prop_map(String::from_iter)
}

fn any_text(max_len: usize) -> impl Strategy<Value = String> {
    vec(any::<char>(), 0..max_len).prop_map(String::from_iter)
}

const SCOPE_CHARS: &[char] = &[
    'r', 'e', 'p', 'o', 's', 'i', 't', 'y', ':', '/', 'a', 'c', 'm', 'w', 'b', ',', '*', 'u', 'l',
    'h', '(', ')', '.', '-', '_', ' ', 'A', '0', '9', '@', '\t', '\n', '\u{0}',
];

const PATH_CHARS: &[char] = &[
    'a', 'b', 'z', '0', '9', '/', '.', '-', '_', ':', 'A', ' ', '@', '\u{7f}', 'é',
];

const FORM_CHARS: &[char] = &[
    'a', 'g', 'r', 'n', 't', '=', '&', '%', '+', '2', 'F', '0', 'z', ';', '\u{0}', 'é',
];

const JSON_CHARS: &[char] = &[
    '{', '}', '[', ']', '"', ':', ',', 'n', 'a', 'm', 'e', 's', 'c', 'o', 'p', '1', '-', '\\', 'u',
    ' ', 't', 'r', 'l', 'x', '_', 'd', 'g',
];

/// A scope-shaped string: `type:name:actions` with pieces from the scope alphabet.
fn scope_like() -> impl Strategy<Value = String> {
    (
        prop_oneof![
            Just("repository".to_owned()),
            Just("repository(plugin)".to_owned()),
            Just("registry".to_owned()),
            text_from(SCOPE_CHARS, 12)
        ],
        text_from(PATH_CHARS, 40),
        vec(
            prop_oneof![
                Just("pull".to_owned()),
                Just("push".to_owned()),
                Just("*".to_owned()),
                Just("delete".to_owned()),
                text_from(SCOPE_CHARS, 6)
            ],
            0..20,
        ),
    )
        .prop_map(|(kind, name, actions)| format!("{kind}:{name}:{}", actions.join(",")))
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        any_text(20).prop_map(Value::String),
        select(
            &[
                "read_registry",
                "write_registry,read_registry",
                "read_virtual_registry",
                "2030-01-01",
                "2001-01-01T00:00:00Z",
                "gitlab+deploy-token-1",
                "ci\u{1b}[31m",
                "",
            ][..]
        )
        .prop_map(|text| Value::String(text.to_owned())),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(serde_json::Value::Array),
            vec(
                (
                    prop_oneof![
                        select(&["name", "username", "scopes", "expires_at", "other"][..])
                            .prop_map(str::to_owned),
                        any_text(8)
                    ],
                    inner
                ),
                0..6
            )
            .prop_map(|entries| serde_json::Value::Object(entries.into_iter().collect())),
        ]
    })
}

fn now() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).unwrap()
}

/// What an API client would see for an error: a 4xx with a JSON body, never a 5xx.
fn assert_clean_api_error(error: &regauth::error::ApiError) {
    let status = error.status_code();
    assert!(status.is_client_error(), "{status} for {error}");
    let response = error.error_response();
    assert_eq!(response.status(), status);
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn scope_parsing_never_panics_and_keeps_its_limits(
        values in vec(prop_oneof![scope_like(), any_text(64), text_from(SCOPE_CHARS, 80)], 0..80),
    ) {
        let parsed = parse_requested_scopes(values.iter().map(String::as_str));
        prop_assert!(parsed.scopes.len() <= MAX_SCOPES_PER_REQUEST);
        for scope in &parsed.scopes {
            prop_assert!(scope.actions.len() <= MAX_ACTIONS_PER_SCOPE);
            prop_assert!(!scope.name.is_empty());
            prop_assert!(!scope.name.chars().any(|c| c.is_whitespace() || c.is_control()));
            // What parsed prints back to itself.
            let again = RequestedScope::parse(&scope.to_string()).unwrap();
            prop_assert_eq!(&again, scope);
        }
        for (raw, _) in &parsed.rejected {
            prop_assert!(raw.len() <= regauth::access::requested_scope::MAX_SCOPE_LEN + 8);
        }
    }

    #[test]
    fn fuzzed_scopes_never_grant_beyond_the_token(
        values in vec(scope_like(), 0..20),
        group_token in any::<bool>(),
        write in any::<bool>(),
        patterns in proptest::sample::subsequence(
            vec!["app", "web/*", "**/cache", "web-*", "**", "platform/**", "x/y"],
            0..3,
        ),
    ) {
        let parsed = parse_requested_scopes(values.iter().map(String::as_str));
        let existing = vec![
            NamespacePath::parse("acme/web").unwrap(),
            NamespacePath::parse("acme/platform/infra").unwrap(),
        ];
        let resolved: Vec<ResolvedScope> = parsed
            .scopes
            .into_iter()
            .map(|requested| {
                let project = RepositoryPath::parse(&requested.name)
                    .ok()
                    .and_then(|repository| resolve_project(&repository, &existing).cloned());
                ResolvedScope { requested, project }
            })
            .collect();
        let mut scopes = ScopeSet::empty();
        scopes.insert(DeployTokenScope::ReadRegistry);
        if write {
            scopes.insert(DeployTokenScope::WriteRegistry);
        }
        let owner_path = if group_token { "acme" } else { "acme/web" };
        let access = TokenAccess {
            scopes,
            owner: if group_token {
                TokenOwner::Group(NamespacePath::parse(owner_path).unwrap())
            } else {
                TokenOwner::Project(NamespacePath::parse(owner_path).unwrap())
            },
            repositories: Default::default(),
        };
        // Repository patterns only ever narrow: what a restricted token is granted, the same
        // token without patterns is granted too, and it matches one of the patterns.
        let restricted = TokenAccess {
            repositories: regauth::domain::repository_pattern::RepositoryPatterns::parse(&patterns)
                .unwrap(),
            ..access.clone()
        };
        if let (Ok(narrow), Ok(wide)) = (
            policy::authorize(Service::ContainerRegistry, &restricted, &resolved),
            policy::authorize(Service::ContainerRegistry, &access, &resolved),
        ) {
            for entry in narrow.entries() {
                prop_assert!(
                    wide.entries().iter().any(|w| w.name() == entry.name()
                        && entry.actions().iter().all(|a| w.actions().contains(a))),
                    "{} granted only with patterns {patterns:?}", entry
                );
                let below: Vec<&str> = entry.name()[owner_path.len()..]
                    .split('/')
                    .filter(|s| !s.is_empty())
                    .collect();
                prop_assert!(patterns.is_empty() || restricted.repositories.allows(&below), "{} vs {patterns:?}", entry);
            }
        }
        if let Ok(granted) = policy::authorize(Service::ContainerRegistry, &access, &resolved) {
            let owner = NamespacePath::parse(owner_path).unwrap();
            for entry in granted.entries() {
                prop_assert_eq!(entry.resource_type(), "repository");
                let repository = RepositoryPath::parse(entry.name()).unwrap();
                prop_assert!(repository.is_within(&owner), "{} outside {}", entry.name(), owner_path);
                for action in entry.actions() {
                    prop_assert!(*action == "pull" || (write && *action == "push"), "{action}");
                }
            }
        }
    }

    #[test]
    fn basic_headers_never_panic_and_round_trip(
        header in prop_oneof![
            any_text(80),
            any_text(60).prop_map(|text| format!("Basic {text}")),
            vec(any::<u8>(), 0..80).prop_map(|bytes| format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(bytes)
            )),
        ],
        username in text_from(&['g', 'i', 't', '+', '-', '1', 'é', ' '], 20),
        password in any_text(40),
    ) {
        let _ = BasicCredentials::from_header(&header);
        if !username.is_empty() && !username.contains(':') && !password.is_empty() {
            let encoded = base64::engine::general_purpose::STANDARD
                .encode(format!("{username}:{password}"));
            let parsed = BasicCredentials::from_header(&format!("Basic {encoded}")).unwrap();
            prop_assert_eq!(parsed.username, username);
            prop_assert_eq!(parsed.secret.expose(), password.as_str());
        }
    }

    #[test]
    fn oauth2_forms_never_panic_and_round_trip(
        body in prop_oneof![
            vec(any::<u8>(), 0..200),
            text_from(FORM_CHARS, 200).prop_map(String::into_bytes),
        ],
        pairs in vec((any_text(12), any_text(24)), 0..8),
    ) {
        match form_pairs(&body) {
            Ok(_) => {}
            Err(error) => {
                prop_assert!(matches!(error, Error::InvalidRequest(_)), "{error:?}");
                prop_assert_eq!(error.status_code(), StatusCode::BAD_REQUEST);
            }
        }
        let encoded = serde_urlencoded::to_string(&pairs).unwrap();
        prop_assert_eq!(form_pairs(encoded.as_bytes()).unwrap(), pairs);
    }

    #[test]
    fn repository_paths_parse_to_valid_names_or_are_refused(
        text in prop_oneof![text_from(PATH_CHARS, 300), any_text(40)],
    ) {
        if let Ok(path) = RepositoryPath::parse(&text) {
            let name = path.as_str();
            prop_assert!(name.len() <= MAX_PATH_LEN);
            prop_assert!(!name.starts_with('/') && !name.ends_with('/'));
            prop_assert!(!name.contains("//") && !name.contains(':'));
            prop_assert!(!name.chars().any(|c| c.is_ascii_uppercase() || c.is_whitespace() || c.is_control()));
            for candidate in path.candidate_project_paths() {
                prop_assert!(path.is_within(&candidate));
                prop_assert!(path.has_candidate_project(&candidate));
                prop_assert!(NamespacePath::parse(candidate.as_str()).is_ok());
            }
        }
        let _ = NamespacePath::parse(&text);
    }

    #[test]
    fn api_bodies_never_panic_and_errors_are_clean(
        raw in prop_oneof![
            vec(any::<u8>(), 0..200),
            text_from(JSON_CHARS, 200).prop_map(String::into_bytes),
        ],
        value in json_value(),
        form in text_from(FORM_CHARS, 120),
        group in any::<bool>(),
    ) {
        let kind = if group { NamespaceKind::Group } else { NamespaceKind::Project };
        let structured = serde_json::to_vec(&value).unwrap();
        for (content_type, body) in [
            ("application/json", raw.as_slice()),
            ("application/json; charset=utf-8", structured.as_slice()),
            ("application/x-www-form-urlencoded", form.as_bytes()),
            ("", raw.as_slice()),
        ] {
            match CreateDeployTokenBody::parse(content_type, body).and_then(CreateDeployTokenBody::into_request) {
                Err(error) => assert_clean_api_error(&error),
                Ok(request) => match NewDeployToken::validate(request, kind, now()) {
                    Ok(token) => {
                        prop_assert!(refuse_control_characters("name", token.name()).is_ok());
                        if let Some(username) = token.username() {
                            prop_assert!(!username.to_ascii_lowercase().starts_with("gitlab+deploy-token-"));
                        }
                        prop_assert!(!token.scopes().is_empty());
                    }
                    Err(error) => {
                        let error = regauth::error::ApiError(error.into());
                        assert_clean_api_error(&error);
                    }
                },
            }
        }
    }

    #[test]
    fn names_with_any_characters_are_validated_and_printed_safely(
        name in any_text(40),
        username in any_text(20),
    ) {
        let request = DeployTokenRequest {
            name: name.clone(),
            username: Some(username),
            scopes: vec!["read_registry".into()],
            expires_at: None,
            ..Default::default()
        };
        if let Ok(token) = NewDeployToken::validate(request, NamespaceKind::Project, now()) {
            prop_assert!(!token.name().chars().any(is_forbidden));
        }
        let shown = printable(&name);
        prop_assert!(!shown.chars().any(is_forbidden));
        if !name.chars().any(is_forbidden) {
            prop_assert_eq!(shown.as_ref(), name.as_str());
        }
    }

    #[test]
    fn the_key_loader_never_panics_on_arbitrary_or_mutated_pem(
        which in 0usize..3,
        garbage in vec(any::<u8>(), 0..400),
        edits in vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..4), 0..6),
        cut in any::<prop::sample::Index>(),
    ) {
        const PAIRS: [(&str, &str); 3] = [
            (include_str!("../src/jwt/testdata/ec_pkcs8.key"), include_str!("../src/jwt/testdata/ec.crt")),
            (include_str!("../src/jwt/testdata/rsa_pkcs8.key"), include_str!("../src/jwt/testdata/rsa.crt")),
            (include_str!("../src/jwt/testdata/rsa_pkcs1.key"), include_str!("../src/jwt/testdata/rsa.crt")),
        ];
        let (key, cert) = PAIRS[which];
        let garbage = String::from_utf8_lossy(&garbage).into_owned();
        let _ = SigningKey::from_pem(&garbage, cert);
        let _ = SigningKey::from_pem(key, &garbage);
        // Mutations of the real files: overwrite, insert, delete bytes; cut the file short.
        for target in [0, 1] {
            let mut bytes = if target == 0 { key.as_bytes().to_vec() } else { cert.as_bytes().to_vec() };
            for (at, byte, op) in &edits {
                if bytes.is_empty() {
                    break;
                }
                let index = at.index(bytes.len());
                match op {
                    0 => bytes[index] = *byte,
                    1 => bytes.insert(index, *byte),
                    2 => { bytes.remove(index); }
                    _ => bytes[index] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="[usize::from(*byte) % 65],
                }
            }
            if edits.is_empty() {
                bytes.truncate(cut.index(bytes.len() + 1));
            }
            let mutated = String::from_utf8_lossy(&bytes).into_owned();
            let result = if target == 0 {
                SigningKey::from_pem(&mutated, cert)
            } else {
                SigningKey::from_pem(key, &mutated)
            };
            if let Ok(loaded) = result {
                // Whatever loads must sign.
                let claims = serde_json::json!({"sub": "x"});
                let signed = loaded.sign_jwt(&claims);
                prop_assert!(signed.is_ok());
            }
        }
    }

    #[test]
    fn registry_envelopes_never_panic_and_what_parses_is_bounded(
        raw in vec(any::<u8>(), 0..300),
        events in vec(registry_event_like(), 0..8),
    ) {
        let _ = regauth::domain::registry_event::parse_envelope(&raw, now());
        let body = serde_json::to_vec(&serde_json::json!({ "events": events })).unwrap();
        let parsed = regauth::domain::registry_event::parse_envelope(&body, now()).unwrap();
        prop_assert_eq!(parsed.len(), events.len());
        for event in parsed.into_iter().flatten() {
            prop_assert!(!event.id.is_empty() && event.id.len() <= 200);
            prop_assert!(!event.repository.is_empty() && event.repository.len() <= 255);
            for text in [&event.id, &event.repository, &event.actor]
                .into_iter()
                .chain(event.tag.iter())
                .chain(event.digest.iter())
                .chain(event.address.iter())
                .chain(event.user_agent.iter())
                .chain(event.media_type.iter())
            {
                prop_assert!(!text.chars().any(char::is_control), "{text:?}");
            }
            prop_assert!(event.user_agent.as_ref().is_none_or(|agent| agent.chars().count() <= 300));
            prop_assert!(event.address.as_ref().is_none_or(|address| address.chars().count() <= 100));
            prop_assert!(event.size.is_none_or(|size| size >= 0));
        }
    }
}

/// A registry notification event: the real keys with plausible or arbitrary values.
fn registry_event_like() -> impl Strategy<Value = serde_json::Value> {
    let text = |known: &'static [&'static str]| {
        prop_oneof![
            3 => select(known).prop_map(|text| serde_json::Value::String(text.to_owned())),
            1 => any_text(12).prop_map(serde_json::Value::String),
            1 => json_value(),
        ]
    };
    (
        text(&["3206-78d8", "", "a\u{7}b"]),
        text(&["push", "pull", "mount", "delete", "frobnicate"]),
        text(&["acme/web", "", "a/b/c"]),
        text(&["sha256:abc", ""]),
        text(&["v1", "latest", ""]),
        text(&[
            "application/octet-stream",
            "application/vnd.oci.image.manifest.v1+json",
        ]),
        text(&["127.0.0.1:5000", "[::1]:80", "10.0.0.1", "host"]),
        text(&["gitlab+deploy-token-1", "", "ci"]),
        text(&[
            "2026-12-05T10:00:00Z",
            "2016-03-09T14:44:26.402973972-08:00",
            "yesterday",
        ]),
        prop_oneof![
            Just(serde_json::Value::Null),
            any::<i64>().prop_map(serde_json::Value::from)
        ],
    )
        .prop_map(
            |(id, action, repository, digest, tag, media_type, addr, actor, timestamp, size)| {
                serde_json::json!({
                    "id": id, "action": action, "timestamp": timestamp,
                    "target": {"repository": repository, "digest": digest, "tag": tag,
                               "mediaType": media_type, "size": size},
                    "request": {"addr": addr, "useragent": addr},
                    "actor": {"name": actor},
                })
            },
        )
}

proptest! {
    #![proptest_config(config())]

    /// Secret-scanning reports (GitHub's and GitLab's) and the GitHub key list: any bytes,
    /// and JSON arrays of arbitrary values, never panic; what parses is bounded.
    #[test]
    fn secret_scanning_reports_never_panic_and_stay_bounded(
        bytes in vec(any::<u8>(), 0..512),
        values in vec(json_value(), 0..8),
        signature in any_text(120),
    ) {
        use regauth::service::secret_scanning::{
            parse_github_report, parse_gitlab_report, GitHubKeys, MAX_REPORTED_TOKENS,
        };
        let array = serde_json::Value::Array(values).to_string();
        for body in [bytes.as_slice(), array.as_bytes()] {
            for findings in [parse_github_report(body), parse_gitlab_report(body)]
                .into_iter()
                .flatten()
            {
                prop_assert!(findings.len() <= MAX_REPORTED_TOKENS);
                for finding in findings {
                    prop_assert!(finding.location.map_or(0, |l| l.chars().count()) <= 2048);
                }
            }
            if let Ok(keys) = GitHubKeys::parse(body) {
                prop_assert!(keys.verify("k", &signature, body).is_err() || keys.knows("k"));
            }
        }
    }

    /// The token format's judge and scanner take any text: a v2 secret is recognised inside
    /// any surrounding text, and one changed character of it never passes.
    #[test]
    fn the_token_format_finds_real_secrets_in_any_text_and_refuses_altered_ones(
        before in any_text(40),
        after in any_text(40),
        at in any::<proptest::sample::Index>(),
        replacement in select(&b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"[..]),
        instance in prop_oneof![Just(None), Just(Some("acme-"))],
    ) {
        use regauth::domain::token_format::{Shape, TokenFormats, TokenKind};
        let formats = TokenFormats::new("gldt-", instance);
        let _ = formats.shape(&before);
        let _ = formats.find_in(&before);
        let secret = formats.generate(TokenKind::DeployToken).unwrap();
        let secret = secret.expose().to_owned();
        // Separated from its neighbours as in any real text.
        let text = format!("{before} {secret}\n{after}");
        let found = formats.find_in(&text);
        prop_assert!(found.iter().any(|(kind, token)| *kind == TokenKind::DeployToken && *token == secret));
        let prefix = formats.prefix(TokenKind::DeployToken).len();
        let index = prefix + at.index(secret.len() - prefix);
        let mut altered = secret.clone().into_bytes();
        if altered[index] != replacement {
            altered[index] = replacement;
            let altered = String::from_utf8(altered).unwrap();
            prop_assert_eq!(formats.shape(&altered), Shape::Malformed);
        }
    }
}
