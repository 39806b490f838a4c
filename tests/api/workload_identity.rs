//! Workload identity federation: policies through the API, and federated logins on
//! `/jwt/auth` with OIDC tokens of GitHub Actions and Kubernetes shapes (signed by fixture
//! issuers whose keys are files) and of a real OpenID provider (npm oidc-provider) serving
//! GitLab's `id_tokens` claims over discovery.

use chrono::Utc;
use regauth::config::oidc::{IssuerKind, OidcIssuer};
use regauth::domain::workload_identity::{WorkloadIdentity, WorkloadIdentityRequest};
use regauth::domain::{NamespaceKind, Role};
use regauth::service::caller::Caller;
use regauth::service::namespaces::{self, NamespaceRef};
use regauth::service::workload_identity;
use regauth_test_support::helpers::{jwt_claims, spawn_app_with, TestApp};
use regauth_test_support::oidc::{
    b64, compact, github_claims, kubernetes_claims, FixtureIssuer, Job, OidcProvider,
};
use serde_json::{json, Value};

const AUDIENCE: &str = "https://regauth.example.com";
pub(crate) const GITHUB: &str = "https://token.actions.githubusercontent.com";
const CLUSTER: &str = "https://kubernetes.default.svc.cluster.local";

pub(crate) fn issuer(url: &str, kind: IssuerKind, jwks_file: Option<&FixtureIssuer>) -> OidcIssuer {
    OidcIssuer {
        url: url.to_owned(),
        kind,
        jwks_file: jwks_file.map(|fixture| fixture.jwks_file.clone()),
    }
}

pub(crate) async fn policy(
    app: &TestApp,
    project: &str,
    issuer: &str,
    conditions: Value,
    scopes: &[&str],
) -> WorkloadIdentity {
    let owner = namespaces::find(
        app.store.as_ref(),
        NamespaceKind::Project,
        &NamespaceRef::parse(project),
    )
    .await
    .unwrap();
    workload_identity::create(
        app.store.as_ref(),
        &Caller::operator(),
        &owner,
        WorkloadIdentityRequest {
            name: "release".into(),
            issuer: issuer.into(),
            audience: AUDIENCE.into(),
            conditions: serde_json::from_value(conditions).unwrap(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            max_ttl: Some(600),
            ..Default::default()
        },
        &app.settings.oidc_issuers,
        Utc::now(),
    )
    .await
    .unwrap()
    .policy
}

/// `GET /jwt/auth` with the policy's username and the OIDC token as password: the status and
/// the granted access (when 200).
async fn direct_login(app: &TestApp, username: &str, jwt: &str, scope: &str) -> (u16, Value) {
    let response = app
        .get_token(
            Some((username, jwt)),
            &[("service", "container_registry"), ("scope", scope)],
        )
        .await;
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if status != 200 {
        return (status, body);
    }
    let claims = jwt_claims(body["token"].as_str().unwrap());
    assert_eq!(claims["sub"], username, "the registry JWT names the policy");
    (status, claims["access"].clone())
}

fn push_pull(repository: &str) -> Value {
    json!([{"type": "repository", "name": repository, "actions": ["pull", "push"]}])
}

#[tokio::test]
async fn github_and_kubernetes_tokens_log_in_through_their_policies() {
    let github = FixtureIssuer::new(GITHUB, "gh-key-1");
    let cluster = FixtureIssuer::new(CLUSTER, "k8s-key-1");
    let (github_file, cluster_file) = (
        issuer(GITHUB, IssuerKind::Github, Some(&github)),
        issuer(CLUSTER, IssuerKind::Kubernetes, Some(&cluster)),
    );
    let app = spawn_app_with(move |settings| {
        settings.oidc_issuers = vec![github_file, cluster_file];
    })
    .await;
    app.create_project_with_groups("acme/web").await;
    app.create_project("acme/other").await;
    let pusher = policy(
        &app,
        "acme/web",
        GITHUB,
        json!({"repository_id": "74", "ref": "refs/heads/main"}),
        &["read_registry", "write_registry"],
    )
    .await;
    let puller = policy(
        &app,
        "acme/web",
        CLUSTER,
        json!({"kubernetes.io.namespace": "ci", "kubernetes.io.serviceaccount.name": ["builder", "deployer"]}),
        &["read_registry"],
    )
    .await;
    let now = Utc::now().timestamp();

    // GitHub Actions: push and pull, by GET (docker) and by the password grant (containerd).
    let token = github.sign(&github_claims(GITHUB, AUDIENCE, now));
    let (status, access) = direct_login(
        &app,
        &pusher.username(),
        &token,
        "repository:acme/web/app:push,pull",
    )
    .await;
    assert_eq!(status, 200, "{access}");
    assert_eq!(access, push_pull("acme/web/app"));
    let response = app
        .post_token(&[
            ("grant_type", "password"),
            ("username", &pusher.username()),
            ("password", &token),
            ("service", "container_registry"),
            ("scope", "repository:acme/web/app:pull"),
        ])
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["scope"], "repository:acme/web/app:pull");
    assert!(body["expires_in"].as_u64().unwrap() <= 300);

    // Another project through the same policy: nothing granted.
    let (status, access) = direct_login(
        &app,
        &pusher.username(),
        &token,
        "repository:acme/other/app:push,pull",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(access, json!([]));

    // Kubernetes: the pod's service-account token pulls, never pushes.
    let token = cluster.sign(&kubernetes_claims(CLUSTER, AUDIENCE, now));
    let (status, access) = direct_login(
        &app,
        &puller.username(),
        &token,
        "repository:acme/web/app:push,pull",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        access,
        json!([{"type": "repository", "name": "acme/web/app", "actions": ["pull"]}])
    );

    // The audit trail names the job and links to its run; never the token.
    let mut uses = Vec::new();
    for _ in 0..50 {
        uses = app.store.recent_workload_logins(&pusher, 10).await.unwrap();
        if uses.len() >= 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(uses.len(), 3, "{uses:?}");
    let details = &uses[0].details;
    assert_eq!(details["issuer"], GITHUB);
    assert_eq!(details["subject"], "repo:acme/web:ref:refs/heads/main");
    assert_eq!(details["job"]["repository"], "acme/web");
    assert_eq!(
        details["job"]["link"],
        "https://github.com/acme/web/actions/runs/6245127395/attempts/1"
    );
    assert_eq!(uses[0].actor, pusher.username());
    let github_token = github.sign(&github_claims(GITHUB, AUDIENCE, now));
    assert!(!details.to_string().contains(&github_token[..40]));

    // A refused federated login counts for the brute-force guard like any other.
    let wrong_audience = {
        let mut claims = github_claims(GITHUB, AUDIENCE, now);
        claims["aud"] = json!("https://other.example.com");
        github.sign(&claims)
    };
    let (status, _) = direct_login(
        &app,
        &pusher.username(),
        &wrong_audience,
        "repository:acme/web/app:pull",
    )
    .await;
    assert_eq!(status, 401);
    let metrics = app.metrics_text().await;
    for line in [
        format!("regauth_workload_logins_total{{issuer=\"{GITHUB}\",outcome=\"accepted\"}} 3"),
        format!("regauth_workload_logins_total{{issuer=\"{GITHUB}\",outcome=\"audience\"}} 1"),
        "regauth_login_failures_total{route=\"registry\"} 1".to_owned(),
    ] {
        assert!(metrics.contains(&line), "{line} in {metrics}");
    }
}

#[tokio::test]
async fn forged_expired_and_foreign_tokens_are_refused_alike() {
    let github = FixtureIssuer::new(GITHUB, "gh-key-1");
    let stranger = FixtureIssuer::new("https://evil.example.com", "gh-key-1");
    let github_file = issuer(GITHUB, IssuerKind::Github, Some(&github));
    let app = spawn_app_with(move |settings| {
        settings.oidc_issuers = vec![github_file];
        // Every refusal here would be delayed by the brute-force guard (which counts
        // federated failures like any other: see the first test).
        settings.login.throttle.max_failures_per_address = 0;
        settings.login.throttle.max_failures_per_username = 0;
    })
    .await;
    app.create_project_with_groups("acme/web").await;
    let pusher = policy(
        &app,
        "acme/web",
        GITHUB,
        json!({"repository_id": "74"}),
        &["read_registry", "write_registry"],
    )
    .await;
    let username = pusher.username();
    let now = Utc::now().timestamp();
    let claims = github_claims(GITHUB, AUDIENCE, now);
    let with = |change: &dyn Fn(&mut Value)| {
        let mut claims = claims.clone();
        change(&mut claims);
        claims
    };
    let hs256_with_public_key = {
        let key =
            ring::hmac::Key::new(ring::hmac::HMAC_SHA256, github.public_jwk_text().as_bytes());
        compact(
            &json!({"alg": "HS256", "kid": "gh-key-1"}),
            &claims,
            |input| ring::hmac::sign(&key, input).as_ref().to_vec(),
        )
    };
    let forged = [
        (
            "wrong audience",
            github.sign(&with(&|c| c["aud"] = json!("https://other.example.com"))),
        ),
        (
            "expired",
            github.sign(&with(&|c| c["exp"] = json!(now - 1))),
        ),
        (
            "no exp",
            github.sign(&with(&|c| {
                c.as_object_mut().unwrap().remove("exp");
            })),
        ),
        (
            "issued in the future",
            github.sign(&with(&|c| c["iat"] = json!(now + 600))),
        ),
        (
            "another repository",
            github.sign(&with(&|c| c["repository_id"] = json!("75"))),
        ),
        (
            "unknown issuer",
            stranger.sign(&with(&|c| c["iss"] = json!("https://evil.example.com"))),
        ),
        ("issuer spoofed in claims", stranger.sign(&claims)),
        ("unknown kid", github.sign_with_kid(&claims, "gh-key-2")),
        (
            "alg none",
            compact(&json!({"alg": "none", "kid": "gh-key-1"}), &claims, |_| {
                Vec::new()
            }),
        ),
        ("HS256 with the public key", hs256_with_public_key),
        (
            "oversized",
            github.sign(&with(&|c| c["padding"] = json!("x".repeat(9000)))),
        ),
        ("tampered claims", {
            let token = github.sign(&claims);
            let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
            parts[1] = b64(with(&|c| c["repository_id"] = json!("75"))
                .to_string()
                .as_bytes());
            parts.join(".")
        }),
    ];
    for (case, token) in &forged {
        let (status, body) =
            direct_login(&app, &username, token, "repository:acme/web/app:pull").await;
        assert_eq!(status, 401, "{case}: {body}");
        // One answer for every failure: nothing says which check failed.
        assert_eq!(
            body["errors"][0]["message"], "HTTP Basic: Access denied",
            "{case}"
        );
    }
    // The good token works with its own policy's username only.
    let good = github.sign(&claims);
    assert_eq!(
        direct_login(&app, &username, &good, "repository:acme/web/app:pull")
            .await
            .0,
        200
    );
    assert_eq!(
        direct_login(
            &app,
            "gitlab+workload-999",
            &good,
            "repository:acme/web/app:pull"
        )
        .await
        .0,
        401
    );
    // A deleted policy logs nobody in, even with a token that worked a moment ago.
    let owner = pusher.owner.clone();
    workload_identity::delete(
        app.store.as_ref(),
        &Caller::operator(),
        &owner,
        pusher.id,
        Utc::now(),
    )
    .await
    .unwrap();
    assert_eq!(
        direct_login(&app, &username, &good, "repository:acme/web/app:pull")
            .await
            .0,
        401
    );
}

#[tokio::test]
async fn an_unreachable_issuer_refuses_only_its_own_tokens() {
    // A loopback port with nothing listening: the issuer is down.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://127.0.0.1:{}", dead.local_addr().unwrap().port());
    drop(dead);
    let fixture = FixtureIssuer::new(&dead_url, "k1");
    let configured = issuer(&dead_url, IssuerKind::Generic, None);
    let app = spawn_app_with(move |settings| {
        settings.oidc_issuers = vec![configured];
    })
    .await;
    app.create_project_with_groups("acme/web").await;
    let pull = policy(
        &app,
        "acme/web",
        &dead_url,
        json!({"sub": "job"}),
        &["read_registry"],
    )
    .await;
    let now = Utc::now().timestamp();
    let token =
        fixture.sign(&json!({"iss": dead_url, "sub": "job", "aud": AUDIENCE, "exp": now + 300}));
    let (status, body) = direct_login(
        &app,
        &pull.username(),
        &token,
        "repository:acme/web/app:pull",
    )
    .await;
    assert_eq!(status, 503, "{body}");
    // Asked again within the minute: refused at once, the issuer is not asked again.
    let (status, _) = direct_login(
        &app,
        &pull.username(),
        &token,
        "repository:acme/web/app:pull",
    )
    .await;
    assert_eq!(status, 503);
    // Deploy tokens are unaffected.
    let deploy = app
        .create_token(NamespaceKind::Project, "acme/web", &["read_registry"])
        .await;
    let access = app
        .token_access(
            &deploy,
            "container_registry",
            &["repository:acme/web/app:pull"],
        )
        .await;
    assert_eq!(access[0]["actions"], json!(["pull"]));
    let metrics = app.metrics_text().await;
    assert!(
        metrics.contains(&format!(
            "regauth_oidc_key_fetch_failures_total{{issuer=\"{dead_url}\"}} 1"
        )),
        "{metrics}"
    );
}

#[tokio::test]
async fn policies_are_managed_through_the_api_by_maintainers() {
    let github = FixtureIssuer::new(GITHUB, "gh-key-1");
    let github_file = issuer(GITHUB, IssuerKind::Github, Some(&github));
    let app = spawn_app_with(move |settings| {
        settings.oidc_issuers = vec![github_file];
    })
    .await;
    app.create_project_with_groups("acme/web").await;
    let maintainer = app.create_user("maria", false, "api").await;
    let developer = app.create_user("dev", false, "api").await;
    app.add_member(
        "maria",
        NamespaceKind::Project,
        "acme/web",
        Role::Maintainer,
    )
    .await;
    app.add_member("dev", NamespaceKind::Project, "acme/web", Role::Developer)
        .await;
    let path = "/projects/acme%2Fweb/workload_identities";
    let body = json!({
        "name": "release",
        "issuer": GITHUB,
        "audience": AUDIENCE,
        "conditions": {"repository_id": "74"},
        "scopes": ["read_registry", "write_registry"],
        "max_ttl": 900
    });
    let response = app
        .api(reqwest::Method::POST, path, &developer)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);

    let response = app
        .api(reqwest::Method::POST, path, &maintainer)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.unwrap();
    let id = created["id"].as_i64().unwrap();
    assert_eq!(created["username"], format!("gitlab+workload-{id}"));
    assert_eq!(
        created["scopes"],
        json!(["read_registry", "write_registry"])
    );
    assert_eq!(created["conditions"], json!({"repository_id": "74"}));
    assert_eq!(created["max_ttl"], 900);
    assert!(
        created["warnings"][0]
            .as_str()
            .unwrap()
            .contains("write_registry"),
        "{created}"
    );

    // A shared issuer without an owner id, an unknown issuer, a TTL over an hour: refused
    // with a message naming the field.
    for (change, field, words) in [
        (
            json!({"conditions": {"repository": "acme/web"}}),
            "conditions",
            "repository_id",
        ),
        (
            json!({"issuer": "https://gitlab.example.com"}),
            "issuer",
            "trusted issuer",
        ),
        (json!({"max_ttl": 7200}), "max_ttl", "3600"),
        (json!({"audience": ""}), "audience", "blank"),
    ] {
        let mut bad = body.clone();
        for (key, value) in change.as_object().unwrap() {
            bad[key] = value.clone();
        }
        let response = app
            .api(reqwest::Method::POST, path, &maintainer)
            .json(&bad)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{change}");
        let error: Value = response.json().await.unwrap();
        let message = error["message"][field][0].as_str().unwrap_or_default();
        assert!(message.contains(words), "{change}: {error}");
    }

    let response = app
        .api(reqwest::Method::GET, path, &developer)
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        403,
        "developers do not see deploy credentials"
    );
    let listed: Value = app
        .api(reqwest::Method::GET, path, &maintainer)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    let one = app
        .api(reqwest::Method::GET, &format!("{path}/{id}"), &maintainer)
        .send()
        .await
        .unwrap();
    assert_eq!(one.status(), 200);
    let response = app
        .api(reqwest::Method::DELETE, &format!("{path}/{id}"), &developer)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let response = app
        .api(
            reqwest::Method::DELETE,
            &format!("{path}/{id}"),
            &maintainer,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let gone = app
        .api(reqwest::Method::GET, &format!("{path}/{id}"), &maintainer)
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 404);
}

fn gitlab_job(client_id: &'static str, project_id: &str, ref_protected: &str) -> Job {
    Job {
        client_id,
        claims: json!({
            "namespace_id": "10",
            "namespace_path": "acme",
            "project_id": project_id,
            "project_path": "acme/web",
            "user_id": "3",
            "user_login": "maria",
            "pipeline_id": "1200",
            "pipeline_source": "push",
            "job_id": "5021",
            "ref": "main",
            "ref_type": "branch",
            "ref_path": "refs/heads/main",
            "ref_protected": ref_protected,
            "runner_environment": "self-hosted",
            "sha": "714a629c0b401fdce83e847fc9589983fc6f46bc",
            "project_visibility": "private",
        }),
    }
}

#[tokio::test]
#[ignore = "needs node and npm oidc-provider: run by scripts/test.sh"]
async fn a_gitlab_job_logs_in_with_a_token_from_a_real_openid_provider() {
    let provider = OidcProvider::start(
        &["rotated-in", "older"],
        &[
            gitlab_job("release-job", "20", "true"),
            gitlab_job("branch-job", "20", "false"),
            gitlab_job("foreign-job", "21", "true"),
        ],
        300,
    );
    let configured = issuer(&provider.issuer, IssuerKind::Gitlab, None);
    let app = spawn_app_with(move |settings| {
        settings.oidc_issuers = vec![configured];
    })
    .await;
    app.create_project_with_groups("acme/web").await;
    let release = policy(
        &app,
        "acme/web",
        &provider.issuer,
        json!({"project_id": "20", "ref_protected": "true"}),
        &["read_registry", "write_registry"],
    )
    .await;
    let token = provider.token("release-job", AUDIENCE).await;
    let (status, access) = direct_login(
        &app,
        &release.username(),
        &token,
        "repository:acme/web:push,pull",
    )
    .await;
    assert_eq!(status, 200, "{access}");
    assert_eq!(access, push_pull("acme/web"));

    for (job, audience) in [
        ("branch-job", AUDIENCE),
        ("foreign-job", AUDIENCE),
        ("release-job", "https://other.example.com"),
    ] {
        let token = provider.token(job, audience).await;
        let (status, body) = direct_login(
            &app,
            &release.username(),
            &token,
            "repository:acme/web:pull",
        )
        .await;
        assert_eq!(status, 401, "{job} for {audience}: {body}");
    }

    // HS256 with the provider's published RSA key as the HMAC secret: refused.
    let jwks = provider.jwks().await;
    let public_key = jwks["keys"][0].to_string();
    let claims = jwt_claims(&token);
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, public_key.as_bytes());
    let confused = compact(
        &json!({"alg": "HS256", "kid": "rotated-in"}),
        &claims,
        |input| ring::hmac::sign(&key, input).as_ref().to_vec(),
    );
    let (status, _) = direct_login(
        &app,
        &release.username(),
        &confused,
        "repository:acme/web:pull",
    )
    .await;
    assert_eq!(status, 401);

    // The audit trail links to the GitLab job.
    let mut uses = Vec::new();
    for _ in 0..50 {
        uses = app.store.recent_workload_logins(&release, 5).await.unwrap();
        if !uses.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        uses[0].details["job"]["link"],
        format!("{}/acme/web/-/jobs/5021", provider.issuer)
    );
}

/// `POST /oauth/token` with the token-exchange grant: (status, body).
async fn exchange(app: &TestApp, form: &[(&str, &str)]) -> (u16, Value) {
    let response = app
        .client
        .post(format!("{}/oauth/token", app.address))
        .form(form)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    assert_eq!(
        response.headers().get("cache-control").unwrap(),
        "no-store",
        "token responses are never cached"
    );
    (status, response.json().await.unwrap())
}

const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const JWT_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";

#[tokio::test]
async fn an_exchanged_credential_works_like_a_deploy_token_once_per_oidc_token() {
    let github = FixtureIssuer::new(GITHUB, "gh-key-1");
    let github_file = issuer(GITHUB, IssuerKind::Github, Some(&github));
    let app = spawn_app_with(move |settings| {
        settings.oidc_issuers = vec![github_file];
        settings.login.throttle.max_failures_per_address = 0;
        settings.login.throttle.max_failures_per_username = 0;
    })
    .await;
    app.create_project_with_groups("acme/web").await;
    let release = policy(
        &app,
        "acme/web",
        GITHUB,
        json!({"repository_id": "74", "ref": "refs/heads/main"}),
        &["read_repository", "read_registry", "write_registry"],
    )
    .await;
    let username = release.username();
    let now = Utc::now().timestamp();
    let oidc_token = github.sign(&github_claims(GITHUB, AUDIENCE, now));
    let (status, body) = exchange(
        &app,
        &[
            ("grant_type", EXCHANGE),
            ("subject_token", &oidc_token),
            ("subject_token_type", JWT_TYPE),
            ("resource", &username),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let secret = body["access_token"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("regauth-wl-"), "{secret}");
    // The checksummed format: a scanner tells it from a look-alike offline.
    assert_eq!(
        regauth::domain::token_format::TokenFormats::default().shape(&secret),
        regauth::domain::token_format::Shape::Valid(
            regauth::domain::token_format::TokenKind::WorkloadCredential
        )
    );
    assert_eq!(
        body["issued_token_type"],
        "urn:ietf:params:oauth:token-type:access_token"
    );
    assert_eq!(body["token_type"], "N_A");
    assert_eq!(body["expires_in"], 600);
    assert_eq!(body["username"], username);
    assert_eq!(
        body["scope"],
        "read_repository read_registry write_registry"
    );

    // The same OIDC token again: refused (its jti was exchanged).
    let (status, body) = exchange(
        &app,
        &[
            ("grant_type", EXCHANGE),
            ("subject_token", &oidc_token),
            ("subject_token_type", JWT_TYPE),
            ("resource", &username),
        ],
    )
    .await;
    assert_eq!((status, body), (400, json!({"error": "invalid_grant"})));

    // The credential pushes, pulls and clones, as a deploy token of the project would.
    let (status, access) = direct_login(
        &app,
        &username,
        &secret,
        "repository:acme/web/app:push,pull",
    )
    .await;
    assert_eq!(status, 200, "{access}");
    assert_eq!(access, push_pull("acme/web/app"));
    let clone = app
        .forward_auth(
            "GET",
            "/acme/web.git/info/refs?service=git-upload-pack",
            Some((&username, &secret)),
        )
        .await;
    assert_eq!(clone.status(), 200);
    let (status, _) = direct_login(
        &app,
        "gitlab+workload-999",
        &secret,
        "repository:acme/web/app:pull",
    )
    .await;
    assert_eq!(status, 401, "only under its policy's username");

    // Without `resource` (the one policy that accepts the token), narrowed to pulling.
    let mut claims = github_claims(GITHUB, AUDIENCE, now);
    claims["jti"] = json!("second-run");
    let (status, body) = exchange(
        &app,
        &[
            ("grant_type", EXCHANGE),
            ("subject_token", &github.sign(&claims)),
            ("subject_token_type", JWT_TYPE),
            ("scope", "read_registry"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["scope"], "read_registry");
    let reader = body["access_token"].as_str().unwrap();
    let (_, access) =
        direct_login(&app, &username, reader, "repository:acme/web/app:push,pull").await;
    assert_eq!(
        access,
        json!([{"type": "repository", "name": "acme/web/app", "actions": ["pull"]}])
    );

    // OAuth errors: nothing says which check of a token failed.
    claims["jti"] = json!("third-run");
    let fresh = github.sign(&claims);
    let mut wrong_audience = github_claims(GITHUB, "https://other.example.com", now);
    wrong_audience["jti"] = json!("fourth-run");
    let wrong_audience = github.sign(&wrong_audience);
    for (form, expected) in [
        (
            vec![
                ("grant_type", "password"),
                ("subject_token", fresh.as_str()),
            ],
            "unsupported_grant_type",
        ),
        (
            vec![("grant_type", EXCHANGE), ("subject_token", fresh.as_str())],
            "invalid_request",
        ),
        (
            vec![
                ("grant_type", EXCHANGE),
                ("subject_token", fresh.as_str()),
                ("subject_token_type", JWT_TYPE),
                ("resource", "not-a-policy"),
            ],
            "invalid_target",
        ),
        (
            vec![
                ("grant_type", EXCHANGE),
                ("subject_token", fresh.as_str()),
                ("subject_token_type", JWT_TYPE),
                ("scope", "write_package_registry"),
            ],
            "invalid_scope",
        ),
        (
            vec![
                ("grant_type", EXCHANGE),
                ("subject_token", wrong_audience.as_str()),
                ("subject_token_type", JWT_TYPE),
            ],
            "invalid_grant",
        ),
        (
            vec![
                ("grant_type", EXCHANGE),
                ("subject_token", "eyJhbGciOiJub25lIn0.e30."),
                ("subject_token_type", JWT_TYPE),
            ],
            "invalid_grant",
        ),
    ] {
        let (status, body) = exchange(&app, &form).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some(expected)),
            "{body}"
        );
    }

    // The exchange is in the audit trail with the job's identity, and so is the clone.
    let clone_audited = |uses: &[regauth::domain::AuditEvent]| {
        uses.iter().any(|event| {
            event.action.as_str() == "workload.login"
                && event.details["granted"]
                    .as_str()
                    .is_some_and(|granted| granted.contains("/acme/web.git/info/refs"))
        })
    };
    let mut uses = Vec::new();
    for _ in 0..50 {
        uses = app
            .store
            .recent_workload_logins(&release, 20)
            .await
            .unwrap();
        if clone_audited(&uses) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(clone_audited(&uses), "the git clone is audited: {uses:?}");
    let exchanges: Vec<_> = uses
        .iter()
        .filter(|event| event.action.as_str() == "workload.exchange")
        .collect();
    assert_eq!(exchanges.len(), 2, "{uses:?}");
    assert_eq!(exchanges[1].details["jti"], format!("gh-{now}"));
    assert_eq!(exchanges[1].details["job"]["run_id"], "6245127395");
    assert!(!exchanges[1].details.to_string().contains("regauth-wl-"));

    // Expired, or its policy deleted: the credential is refused.
    use sea_orm::{ConnectionTrait, Statement};
    app.db
        .execute_raw(Statement::from_string(
            app.db.get_database_backend(),
            "UPDATE workload_credentials SET expires_at = '2020-01-01 00:00:00+00:00' WHERE scopes = 'read_registry'",
        ))
        .await
        .unwrap();
    let (status, _) = direct_login(&app, &username, reader, "repository:acme/web/app:pull").await;
    assert_eq!(status, 401, "expired");
    workload_identity::delete(
        app.store.as_ref(),
        &Caller::operator(),
        &release.owner,
        release.id,
        Utc::now(),
    )
    .await
    .unwrap();
    let (status, _) = direct_login(&app, &username, &secret, "repository:acme/web/app:pull").await;
    assert_eq!(status, 401, "policy deleted");
    let clone = app
        .forward_auth(
            "GET",
            "/acme/web.git/info/refs?service=git-upload-pack",
            Some((&username, &secret)),
        )
        .await;
    assert_eq!(clone.status(), 401);
}

#[tokio::test]
async fn an_exchanged_credential_carries_the_instance_prefix_and_dies_when_reported_as_leaked() {
    use regauth::domain::token_format::{Shape, TokenFormats, TokenKind};
    let github = FixtureIssuer::new(GITHUB, "gh-key-1");
    let github_file = issuer(GITHUB, IssuerKind::Github, Some(&github));
    let app = spawn_app_with(move |settings| {
        settings.oidc_issuers = vec![github_file];
        settings.tokens.instance_prefix = Some("acme-".into());
    })
    .await;
    app.create_project_with_groups("acme/web").await;
    let admin = app.create_user("root", true, "api").await;
    let release = policy(
        &app,
        "acme/web",
        GITHUB,
        json!({"repository_id": "74"}),
        &["read_registry", "write_registry"],
    )
    .await;
    let username = release.username();
    let now = Utc::now().timestamp();
    let mut exchanged = Vec::new();
    for jti in ["job-1", "job-2"] {
        let mut claims = github_claims(GITHUB, AUDIENCE, now);
        claims["jti"] = json!(jti);
        let (status, body) = exchange(
            &app,
            &[
                ("grant_type", EXCHANGE),
                ("subject_token", &github.sign(&claims)),
                ("subject_token_type", JWT_TYPE),
                ("resource", &username),
            ],
        )
        .await;
        assert_eq!(status, 200, "{body}");
        exchanged.push(body["access_token"].as_str().unwrap().to_owned());
    }
    let (leaked, other) = (&exchanged[0], &exchanged[1]);
    // The instance's own prefix, checksummed: a scanner routes it to this instance.
    assert!(leaked.starts_with("acme-wt-"), "{leaked}");
    let formats = TokenFormats::new("gldt-", Some("acme-"));
    assert_eq!(
        formats.shape(leaked),
        Shape::Valid(TokenKind::WorkloadCredential)
    );
    let scope = "repository:acme/web/app:push,pull";
    assert_eq!(direct_login(&app, &username, leaked, scope).await.0, 200);
    // A look-alike with a broken checksum is no credential.
    let mut look_alike = leaked.clone();
    let last = look_alike.pop().unwrap();
    look_alike.push(if last == 'a' { 'b' } else { 'a' });
    assert_eq!(
        direct_login(&app, &username, &look_alike, scope).await.0,
        401
    );

    // An administrator asks what the string is, then revokes it by value.
    let ask = |method: reqwest::Method, secret: &str| {
        app.api(method, "/admin/token", &admin)
            .json(&json!({ "token": secret }))
            .send()
    };
    let info = ask(reqwest::Method::POST, leaked).await.unwrap();
    assert_eq!(info.status(), 200);
    let info: Value = info.json().await.unwrap();
    assert_eq!(info["kind"], "workload_credential", "{info}");
    assert_eq!(info["revoked"], false);
    assert_eq!(info["scopes"], json!(["read_registry", "write_registry"]));
    assert_eq!(info["owner"]["full_path"], "acme/web");
    assert_eq!(info["workload_identity"]["username"], username);
    assert!(!info.to_string().contains(leaked.as_str()), "{info}");
    assert_eq!(
        ask(reqwest::Method::DELETE, leaked).await.unwrap().status(),
        204
    );
    assert_eq!(direct_login(&app, &username, leaked, scope).await.0, 401);
    // Gone: it is unknown from now on. The policy and its other credential are untouched.
    assert_eq!(
        ask(reqwest::Method::POST, leaked).await.unwrap().status(),
        404
    );
    assert_eq!(direct_login(&app, &username, other, scope).await.0, 200);
    // The policy's page lists the revocation beside its uses.
    let (_, uses) = workload_identity::recent_uses(
        app.store.as_ref(),
        &Caller::operator(),
        &release.owner,
        release.id,
        20,
    )
    .await
    .unwrap();
    let revocation = uses
        .iter()
        .find(|event| event.action == regauth::domain::AuditAction::WorkloadCredentialRevoke)
        .expect("the revocation is in the policy's trail");
    assert_eq!(revocation.actor, "root");
    assert_eq!(revocation.details["reason"], "leaked");
    assert_eq!(revocation.details["reporter"], "admin");
}

#[tokio::test]
async fn the_command_line_manages_policies_with_the_api_rules() {
    let github = FixtureIssuer::new(GITHUB, "gh-key-1");
    let cli = crate::cli::Cli::new().await;
    std::fs::write(
        cli.dir.path().join("regauth.toml"),
        format!(
            "[[oidc_issuers]]\nurl = \"{GITHUB}\"\nkind = \"github\"\njwks_file = \"{}\"\n",
            github.jwks_file.display()
        ),
    )
    .unwrap();
    cli.ok(&["group", "create", "acme"]);
    cli.ok(&["project", "create", "acme/web"]);
    let refused = cli.fails(&[
        "workload-identity",
        "create",
        "--project",
        "acme/web",
        "--name",
        "release",
        "--issuer",
        GITHUB,
        "--audience",
        AUDIENCE,
        "--condition",
        "repository=acme/web",
        "--scopes",
        "read_registry",
    ]);
    assert!(refused.contains("repository_id"), "{refused}");
    let created = cli.ok(&[
        "workload-identity",
        "create",
        "--project",
        "acme/web",
        "--name",
        "release",
        "--issuer",
        GITHUB,
        "--audience",
        AUDIENCE,
        "--condition",
        "repository_id=74",
        "--condition",
        "ref=refs/heads/main",
        "--condition",
        "ref=refs/heads/release",
        "--scopes",
        "read_registry,write_registry",
        "--max-ttl",
        "600",
        "--json",
    ]);
    let created: Value = serde_json::from_str(&created).unwrap();
    assert_eq!(
        created["conditions"],
        json!({"repository_id": "74", "ref": ["refs/heads/main", "refs/heads/release"]})
    );
    let username = created["username"].as_str().unwrap().to_owned();
    let listed = cli.ok(&["workload-identity", "list", "--project", "acme/web"]);
    assert!(listed.contains(&username), "{listed}");

    // A server on the same database, trusting the issuer, lets the job in through it.
    let (database_url, keys_dir) = (cli.database_url.clone(), cli.dir.path().join("keys"));
    let github_file = issuer(GITHUB, IssuerKind::Github, Some(&github));
    let app = spawn_app_with(move |settings| {
        settings.database.url = database_url;
        settings.signing.keys_dir = keys_dir;
        settings.oidc_issuers = vec![github_file];
    })
    .await;
    let now = Utc::now().timestamp();
    let token = github.sign(&github_claims(GITHUB, AUDIENCE, now));
    let (status, access) =
        direct_login(&app, &username, &token, "repository:acme/web/app:push,pull").await;
    assert_eq!(status, 200);
    assert_eq!(access, push_pull("acme/web/app"));

    let id = created["id"].to_string();
    cli.ok(&["workload-identity", "delete", "--project", "acme/web", &id]);
    let listed = cli.ok(&[
        "workload-identity",
        "list",
        "--project",
        "acme/web",
        "--json",
    ]);
    assert_eq!(listed.trim(), "[]");
}

/// Runs `regauth credential-provider ARGS` with `request` on stdin, as the kubelet does (on
/// the blocking pool: the plugin may call the server under test).
async fn credential_provider(args: &[&str], request: &Value) -> (bool, Value, String) {
    let args: Vec<String> = args.iter().map(|arg| arg.to_string()).collect();
    let request = request.clone();
    tokio::task::spawn_blocking(move || run_credential_provider(&args, &request))
        .await
        .unwrap()
}

fn run_credential_provider(args: &[String], request: &Value) -> (bool, Value, String) {
    use std::io::Write as _;
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_regauth"))
        .arg("credential-provider")
        .args(args)
        .current_dir(dir.path())
        .env_remove("REGAUTH_CONFIG")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(request.to_string().as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let stdout: Value = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
    (
        output.status.success(),
        stdout,
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn the_kubelet_plugin_hands_a_pod_its_registry_credentials() {
    let cluster = FixtureIssuer::new(CLUSTER, "k8s-key-1");
    let cluster_file = issuer(CLUSTER, IssuerKind::Kubernetes, Some(&cluster));
    let app = spawn_app_with(move |settings| settings.oidc_issuers = vec![cluster_file]).await;
    app.create_project_with_groups("acme/web").await;
    let puller = policy(
        &app,
        "acme/web",
        CLUSTER,
        json!({"sub": "system:serviceaccount:ci:builder"}),
        &["read_registry"],
    )
    .await;
    let username = puller.username();
    let now = Utc::now().timestamp();
    let request = |token: &str| {
        json!({
            "apiVersion": "credentialprovider.kubelet.k8s.io/v1",
            "kind": "CredentialProviderRequest",
            "image": "registry.example.com/acme/web/app:1.0",
            "serviceAccountToken": token,
            "serviceAccountAnnotations": {"regauth/identity": username},
        })
    };

    // Pass-through: the pod's token is the password, never cached by the kubelet.
    let sa_token = cluster.sign(&kubernetes_claims(CLUSTER, AUDIENCE, now));
    let (ok, response, stderr) = credential_provider(&[], &request(&sa_token)).await;
    assert!(ok, "{stderr}");
    assert_eq!(response["kind"], "CredentialProviderResponse");
    assert_eq!(response["cacheDuration"], "0s");
    let auth = &response["auth"]["registry.example.com"];
    assert_eq!(auth["username"], username);
    assert_eq!(auth["password"], sa_token);
    let (status, _) = direct_login(
        &app,
        auth["username"].as_str().unwrap(),
        auth["password"].as_str().unwrap(),
        "repository:acme/web/app:pull",
    )
    .await;
    assert_eq!(status, 200);

    // Exchange: a short-lived credential, cached until a minute before it expires.
    let mut claims = kubernetes_claims(CLUSTER, AUDIENCE, now);
    claims["jti"] = json!("pod-2");
    let (ok, response, stderr) = credential_provider(
        &["--mode", "exchange", "--url", &app.address],
        &request(&cluster.sign(&claims)),
    )
    .await;
    assert!(ok, "{stderr}");
    assert_eq!(response["cacheDuration"], "540s");
    let auth = &response["auth"]["registry.example.com"];
    let password = auth["password"].as_str().unwrap();
    assert!(password.starts_with("regauth-wl-"));
    let (status, access) = direct_login(
        &app,
        auth["username"].as_str().unwrap(),
        password,
        "repository:acme/web/app:pull",
    )
    .await;
    assert_eq!(status, 200, "{access}");

    // The same token again: the exchange refuses, the plugin fails with the reason.
    let (ok, _, stderr) = credential_provider(
        &["--mode", "exchange", "--url", &app.address],
        &request(&cluster.sign(&claims)),
    )
    .await;
    assert!(!ok);
    assert!(stderr.contains("invalid_grant"), "{stderr}");
    let (ok, _, stderr) =
        credential_provider(&[], &json!({"kind": "CredentialProviderRequest"})).await;
    assert!(!ok);
    assert!(stderr.contains("CredentialProviderRequest"), "{stderr}");
}

#[tokio::test]
async fn a_refresh_token_keeps_a_push_alive_past_the_oidc_token_up_to_max_ttl() {
    let github = FixtureIssuer::new(GITHUB, "gh-key-1");
    let github_file = issuer(GITHUB, IssuerKind::Github, Some(&github));
    let app = spawn_app_with(move |settings| settings.oidc_issuers = vec![github_file]).await;
    app.create_project_with_groups("acme/web").await;
    let pusher = policy(
        &app,
        "acme/web",
        GITHUB,
        json!({"repository_id": "74"}),
        &["read_registry", "write_registry"],
    )
    .await;
    let username = pusher.username();
    // A job token about to expire (a GitLab job without a timeout gets 5 minutes).
    let now = Utc::now().timestamp();
    let mut claims = github_claims(GITHUB, AUDIENCE, now);
    claims["exp"] = json!(now + 2);
    let short = github.sign(&claims);
    let response = app
        .get_token(
            Some((&username, &short)),
            &[
                ("service", "container_registry"),
                ("scope", "repository:acme/web/app:push,pull"),
                ("offline_token", "true"),
            ],
        )
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert!(body["expires_in"].as_u64().unwrap() <= 2, "{body}");
    let refresh = body["refresh_token"].as_str().unwrap().to_owned();
    assert!(refresh.starts_with("regauth-wl-"));

    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let (status, _) =
        direct_login(&app, &username, &short, "repository:acme/web/app:push,pull").await;
    assert_eq!(status, 401, "the OIDC token has expired");
    let refreshed = |refresh: String| {
        let app = &app;
        async move {
            app.post_token(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", &refresh),
                ("service", "container_registry"),
                ("scope", "repository:acme/web/app:push,pull"),
            ])
            .await
        }
    };
    let response = refreshed(refresh.clone()).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["scope"], "repository:acme/web/app:pull,push");
    assert_eq!(body["refresh_token"], refresh.as_str());
    let claims = jwt_claims(body["access_token"].as_str().unwrap());
    assert_eq!(claims["sub"], username);

    // The refresh token dies with its policy.
    workload_identity::delete(
        app.store.as_ref(),
        &Caller::operator(),
        &pusher.owner,
        pusher.id,
        Utc::now(),
    )
    .await
    .unwrap();
    assert_eq!(refreshed(refresh).await.status(), 401);
}

#[tokio::test]
#[ignore = "needs node and npm oidc-provider: run by scripts/test.sh"]
async fn a_rotated_key_is_fetched_once_the_refetch_interval_has_passed() {
    use regauth::oidc::{Rejection, Verifier};
    let keys = tempfile::tempdir().unwrap();
    let keys_file = keys.path().join("keys.json");
    let jobs = || vec![gitlab_job("release-job", "20", "true")];
    let first = OidcProvider::start_on(0, &["k1"], Some(&keys_file), &jobs(), 300);
    let port = first.port();
    let configured = issuer(&first.issuer, IssuerKind::Gitlab, None);
    let verifier = Verifier::new(std::slice::from_ref(&configured), None)
        .with_refetch_every(std::time::Duration::from_secs(2));
    let old_token = first.token("release-job", AUDIENCE).await;
    let verified = verifier.verify(&old_token, Utc::now()).await.unwrap();
    assert_eq!(verified.claims.text("project_id"), Some("20"));

    // The provider rotates: a new key signs, the old one is still published.
    drop(first);
    let rotated = OidcProvider::start_on(port, &["k2"], Some(&keys_file), &jobs(), 300);
    assert_eq!(rotated.issuer, configured.url);
    let new_token = rotated.token("release-job", AUDIENCE).await;
    assert_eq!(
        regauth_test_support::helpers::jwt_header(&new_token)["kid"],
        "k2"
    );
    // Keys were fetched moments ago: the unknown kid is refused without asking again.
    assert_eq!(
        verifier.verify(&new_token, Utc::now()).await.unwrap_err(),
        Rejection::UnknownKey
    );
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert!(verifier.verify(&new_token, Utc::now()).await.is_ok());
    assert!(
        verifier.verify(&old_token, Utc::now()).await.is_ok(),
        "the old key is still published"
    );
}

#[tokio::test]
async fn the_page_shows_a_policys_recent_uses_with_links_to_the_jobs() {
    use crate::web_pages::{get_page, signed_in, user_with_password, PASSWORD};
    let github = FixtureIssuer::new(GITHUB, "gh-key-1");
    let github_file = issuer(GITHUB, IssuerKind::Github, Some(&github));
    let app = spawn_app_with(move |settings| settings.oidc_issuers = vec![github_file]).await;
    app.create_project_with_groups("acme/web").await;
    user_with_password(&app, "maria").await;
    user_with_password(&app, "dev").await;
    app.add_member(
        "maria",
        NamespaceKind::Project,
        "acme/web",
        Role::Maintainer,
    )
    .await;
    app.add_member("dev", NamespaceKind::Project, "acme/web", Role::Developer)
        .await;
    let pusher = policy(
        &app,
        "acme/web",
        GITHUB,
        json!({"repository_id": "74", "ref": ["refs/heads/main", "refs/heads/release"]}),
        &["read_registry", "write_registry"],
    )
    .await;
    let now = Utc::now().timestamp();
    let token = github.sign(&github_claims(GITHUB, AUDIENCE, now));
    let (status, _) = direct_login(
        &app,
        &pusher.username(),
        &token,
        "repository:acme/web/app:pull",
    )
    .await;
    assert_eq!(status, 200);

    let cookie = signed_in(&app, "maria", PASSWORD).await;
    let page_path = "/acme/web/-/settings/workload_identities";
    let mut body = String::new();
    for _ in 0..50 {
        let (status, html) = get_page(&app, &cookie, page_path).await;
        assert_eq!(status, 200, "{html}");
        body = html;
        if body.contains("acme/web @ refs/heads/main") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(body.contains(&pusher.username()), "{body}");
    assert!(
        body.contains("ref ∈ {refs/heads/main, refs/heads/release}"),
        "{body}"
    );
    assert!(
        body.contains("href=\"https://github.com/acme/web/actions/runs/6245127395/attempts/1\""),
        "{body}"
    );
    assert!(body.contains("acme/web @ refs/heads/main"), "{body}");
    assert!(!body.contains(&token[..40]), "never the token");

    let dev = signed_in(&app, "dev", PASSWORD).await;
    let (status, _) = get_page(&app, &dev, page_path).await;
    assert_eq!(status, 403, "developers do not see deploy credentials");

    // Adding through the form: refused with the rule's message on a shared issuer without an
    // owner id (the form keeps what was typed), then accepted with one.
    let csrf = {
        let marker = "name=\"authenticity_token\" value=\"";
        let start = body.find(marker).unwrap() + marker.len();
        body[start..].split('"').next().unwrap().to_owned()
    };
    let post = |path: String, form: Vec<(&'static str, String)>, cookie: String| {
        let app = &app;
        async move {
            let response = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap()
                .post(format!("{}{path}", app.address))
                .header("cookie", cookie)
                .form(&form)
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let location = response
                .headers()
                .get("location")
                .map(|value| value.to_str().unwrap().to_owned());
            (status, location, response.text().await.unwrap())
        }
    };
    let form = |conditions: &str| {
        vec![
            ("authenticity_token", csrf.clone()),
            ("name", "pull from main".to_owned()),
            ("issuer", GITHUB.to_owned()),
            ("audience", AUDIENCE.to_owned()),
            ("conditions", conditions.to_owned()),
            ("scopes", "read_registry".to_owned()),
            ("max_ttl", "300".to_owned()),
        ]
    };
    let (status, _, html) = post(
        page_path.to_owned(),
        form("repository=acme/web"),
        cookie.clone(),
    )
    .await;
    assert_eq!(status, 422, "{html}");
    assert!(
        html.contains("repository_id or repository_owner_id"),
        "{html}"
    );
    assert!(html.contains("repository=acme/web</textarea>"), "{html}");
    let (status, _, html) = post(
        page_path.to_owned(),
        form("repository_id=74\nref=refs/heads/main\nref=refs/heads/release"),
        cookie.clone(),
    )
    .await;
    assert_eq!(status, 201, "{html}");
    let created = app
        .store
        .list_workload_identities(&pusher.owner)
        .await
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!(created.name, "pull from main");
    assert_eq!(created.max_ttl_seconds, 300);
    assert!(html.contains(&created.username()), "{html}");

    // A developer may not add or delete; the maintainer deletes.
    let delete_path = format!("/acme/web/-/workload_identities/{}/delete", created.id);
    let dev_csrf = {
        let (_, html) = get_page(&app, &dev, "/").await;
        let marker = "name=\"authenticity_token\" value=\"";
        html.find(marker)
            .map(|at| {
                html[at + marker.len()..]
                    .split('"')
                    .next()
                    .unwrap()
                    .to_owned()
            })
            .expect("the sign-out form carries the session's CSRF token")
    };
    let (status, _, _) = post(
        delete_path.clone(),
        vec![("authenticity_token", dev_csrf)],
        dev.clone(),
    )
    .await;
    assert_eq!(status, 403);
    let (status, location, _) = post(
        delete_path,
        vec![("authenticity_token", csrf.clone())],
        cookie.clone(),
    )
    .await;
    assert_eq!(status, 303);
    assert_eq!(
        location.as_deref(),
        Some("/acme/web/-/settings/workload_identities?deleted=1")
    );
    assert!(app
        .store
        .find_workload_identity(created.id)
        .await
        .unwrap()
        .is_none());
}

/// A loopback HTTP server answering every request with the body `route` gives for its path
/// (status 200, JSON), until dropped.
struct StaticIssuer {
    url: String,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl StaticIssuer {
    fn start(route: impl Fn(&str, &str) -> String + Send + 'static) -> StaticIssuer {
        use std::io::{BufRead as _, BufReader, Write as _};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (base, stopped) = (url.clone(), std::sync::Arc::clone(&stop));
        std::thread::spawn(move || {
            while !stopped.load(std::sync::atomic::Ordering::Relaxed) {
                let Ok((stream, _)) = listener.accept() else {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                    continue;
                };
                stream.set_nonblocking(false).unwrap();
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut request_line = String::new();
                reader.read_line(&mut request_line).unwrap();
                let path = request_line.split(' ').nth(1).unwrap_or("/").to_owned();
                let mut line = String::new();
                while reader.read_line(&mut line).unwrap_or(0) > 2 {
                    line.clear();
                }
                let body = route(&base, &path);
                let mut stream = stream;
                write!(
                    stream,
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                )
                .ok();
            }
        });
        StaticIssuer { url, stop }
    }
}

impl Drop for StaticIssuer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

#[tokio::test]
async fn an_issuer_with_oversized_keys_or_a_foreign_discovery_document_is_not_trusted() {
    use regauth::oidc::{Rejection, Verifier};
    let fixture = FixtureIssuer::new("placeholder", "k1");
    let jwks = fixture.public_jwk_text();
    type Route = Box<dyn Fn(&str, &str) -> String + Send>;
    let cases: Vec<(&str, Route)> = vec![
        (
            "a JWKS over 64 KiB",
            Box::new(|base: &str, path: &str| match path {
                "/.well-known/openid-configuration" => {
                    json!({"issuer": base, "jwks_uri": format!("{base}/jwks")}).to_string()
                }
                _ => format!("{{\"keys\": [], \"padding\": \"{}\"}}", "x".repeat(70_000)),
            }),
        ),
        (
            "a discovery document naming another issuer",
            Box::new(move |base: &str, path: &str| match path {
                "/.well-known/openid-configuration" => json!({
                    "issuer": "https://evil.example.com",
                    "jwks_uri": format!("{base}/jwks")
                })
                .to_string(),
                _ => jwks.clone(),
            }),
        ),
        (
            "keys at a plain-HTTP address that is not loopback",
            Box::new(|base: &str, _: &str| {
                json!({"issuer": base, "jwks_uri": "http://keys.example.com/jwks"}).to_string()
            }),
        ),
    ];
    for (case, route) in cases {
        let server = StaticIssuer::start(route);
        let verifier = Verifier::new(&[issuer(&server.url, IssuerKind::Generic, None)], None);
        let now = Utc::now().timestamp();
        let token = fixture.sign(&json!({"iss": server.url, "aud": AUDIENCE, "exp": now + 60}));
        assert_eq!(
            verifier.verify(&token, Utc::now()).await.unwrap_err(),
            Rejection::IssuerUnavailable,
            "{case}"
        );
    }
    // The same issuer serving its real keys: accepted (the cases above fail for their reason).
    let jwks = fixture.public_jwk_text();
    let server = StaticIssuer::start(move |base, path| match path {
        "/.well-known/openid-configuration" => {
            json!({"issuer": base, "jwks_uri": format!("{base}/jwks")}).to_string()
        }
        _ => jwks.clone(),
    });
    let verifier = Verifier::new(&[issuer(&server.url, IssuerKind::Generic, None)], None);
    let now = Utc::now().timestamp();
    let token = fixture.sign(&json!({"iss": server.url, "aud": AUDIENCE, "exp": now + 60}));
    assert!(verifier.verify(&token, Utc::now()).await.is_ok());
}

#[tokio::test]
async fn an_issuer_that_never_answers_is_given_up_on_after_the_fetch_timeout() {
    use regauth::oidc::{Rejection, Verifier};
    let fixture = FixtureIssuer::new("placeholder", "k1");
    let server = StaticIssuer::start(|_, _| {
        std::thread::sleep(std::time::Duration::from_secs(8));
        String::new()
    });
    let verifier = Verifier::new(&[issuer(&server.url, IssuerKind::Generic, None)], None);
    let now = Utc::now().timestamp();
    let token = fixture.sign(&json!({"iss": server.url, "aud": AUDIENCE, "exp": now + 60}));
    let started = std::time::Instant::now();
    assert_eq!(
        verifier.verify(&token, Utc::now()).await.unwrap_err(),
        Rejection::IssuerUnavailable
    );
    let waited = started.elapsed();
    println!("gave up after {waited:?}");
    assert!(waited < std::time::Duration::from_secs(8), "{waited:?}");
}

#[tokio::test]
async fn an_unknown_kid_rereads_the_keys_at_most_once_per_interval() {
    use regauth::oidc::{Rejection, Verifier};
    let old_key = FixtureIssuer::new(CLUSTER, "k1");
    let new_key = FixtureIssuer::new(CLUSTER, "k2");
    let configured = issuer(CLUSTER, IssuerKind::Kubernetes, Some(&old_key));
    let verifier = Verifier::new(std::slice::from_ref(&configured), None)
        .with_refetch_every(std::time::Duration::from_secs(1));
    let now = Utc::now().timestamp();
    let claims = kubernetes_claims(CLUSTER, AUDIENCE, now);
    assert!(verifier
        .verify(&old_key.sign(&claims), Utc::now())
        .await
        .is_ok());
    // The cluster rotates: both keys in the file now.
    let mut keys: Value = serde_json::from_str(&old_key.public_jwk_text()).unwrap();
    let added: Value = serde_json::from_str(&new_key.public_jwk_text()).unwrap();
    keys["keys"]
        .as_array_mut()
        .unwrap()
        .push(added["keys"][0].clone());
    std::fs::write(&old_key.jwks_file, keys.to_string()).unwrap();
    let rotated = new_key.sign(&claims);
    assert_eq!(
        verifier.verify(&rotated, Utc::now()).await.unwrap_err(),
        Rejection::UnknownKey,
        "read moments ago: not read again yet"
    );
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert!(verifier.verify(&rotated, Utc::now()).await.is_ok());
    assert!(verifier
        .verify(&old_key.sign(&claims), Utc::now())
        .await
        .is_ok());
}

#[tokio::test]
async fn refused_exchanges_count_for_the_brute_force_protection() {
    let github = FixtureIssuer::new(GITHUB, "gh-key-1");
    let github_file = issuer(GITHUB, IssuerKind::Github, Some(&github));
    let app = spawn_app_with(move |settings| {
        settings.oidc_issuers = vec![github_file];
        settings.login.throttle.max_failures_per_address = 2;
    })
    .await;
    app.create_project_with_groups("acme/web").await;
    policy(
        &app,
        "acme/web",
        GITHUB,
        json!({"repository_id": "74"}),
        &["read_registry"],
    )
    .await;
    let now = Utc::now().timestamp();
    let wrong_audience = github.sign(&github_claims(GITHUB, "https://other.example.com", now));
    let form = [
        ("grant_type", EXCHANGE),
        ("subject_token", wrong_audience.as_str()),
        ("subject_token_type", JWT_TYPE),
    ];
    let mut answers = Vec::new();
    for _ in 0..5 {
        let response = app
            .client
            .post(format!("{}/oauth/token", app.address))
            .form(&form)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let retry_after = response.headers().get("retry-after").is_some();
        let body: Value = response.json().await.unwrap();
        answers.push((
            status,
            body["error"].as_str().unwrap_or_default().to_owned(),
            retry_after,
        ));
        if status == 429 {
            break;
        }
    }
    assert_eq!(
        answers[0],
        (400, "invalid_grant".to_owned(), false),
        "{answers:?}"
    );
    assert_eq!(
        answers.last().unwrap(),
        &(429, "slow_down".to_owned(), true),
        "{answers:?}"
    );
}
