//! `/-/forward-auth` at the HTTP level (the nginx end-to-end tests are in tests/forward_auth),
//! anonymous registry pulls of public projects, project visibility on the CLI and the API,
//! and the requests-by-scope-family metric.

use regauth::access::NamespacePath;
use regauth::domain::NamespaceKind::{Group, Project};
use regauth::domain::{Role, Visibility};
use reqwest::Method;
use serde_json::json;

use crate::cli::Cli;
use crate::helpers::{jwt_claims, spawn_app, spawn_app_with, CreatedToken, TestApp};

const REGISTRY: &str = "container_registry";
const CLONE_REFS: &str = "/acme/web.git/info/refs?service=git-upload-pack";
const CLONE_PACK: &str = "/acme/web.git/git-upload-pack";
const PUSH_REFS: &str = "/acme/web.git/info/refs?service=git-receive-pack";
const PACKAGE: &str = "/api/v4/projects/acme%2Fweb/packages/generic/tool/1.0.0/tool.tar.gz";

fn creds(token: &CreatedToken) -> Option<(&str, &str)> {
    Some((token.token.username.as_str(), token.secret.as_str()))
}

async fn status(app: &TestApp, method: &str, uri: &str, credentials: Option<(&str, &str)>) -> u16 {
    app.forward_auth(method, uri, credentials)
        .await
        .status()
        .as_u16()
}

#[tokio::test]
async fn git_fetch_needs_read_repository_on_the_project_and_push_is_always_refused() {
    let app = spawn_app().await;
    app.create_project_with_groups("acme/web").await;
    app.create_project_with_groups("acme/other").await;
    let reader = app
        .create_token(Project, "acme/web", &["read_repository"])
        .await;
    let registry = app
        .create_token(Project, "acme/web", &["read_registry", "write_registry"])
        .await;
    let stranger = app
        .create_token(Project, "acme/other", &["read_repository"])
        .await;
    assert_eq!(status(&app, "GET", CLONE_REFS, creds(&reader)).await, 200);
    assert_eq!(status(&app, "POST", CLONE_PACK, creds(&reader)).await, 200);
    assert_eq!(status(&app, "GET", PUSH_REFS, creds(&reader)).await, 403);
    assert_eq!(
        status(
            &app,
            "POST",
            "/acme/web.git/git-receive-pack",
            creds(&reader)
        )
        .await,
        403
    );
    assert_eq!(status(&app, "GET", CLONE_REFS, creds(&registry)).await, 403);
    assert_eq!(status(&app, "GET", CLONE_REFS, creds(&stranger)).await, 403);
    // A project that does not exist looks like one the token cannot reach.
    assert_eq!(
        status(&app, "GET", "/acme/nothing.git/info/refs", creds(&reader)).await,
        403
    );
}

#[tokio::test]
async fn bad_or_missing_credentials_get_a_basic_challenge() {
    let app = spawn_app().await;
    app.create_project_with_groups("acme/web").await;
    let reader = app
        .create_token(Project, "acme/web", &["read_repository"])
        .await;
    for credentials in [
        None,
        Some((reader.token.username.as_str(), "gldt-wrong")),
        Some(("someone-else", reader.secret.as_str())),
    ] {
        let response = app.forward_auth("GET", CLONE_REFS, credentials).await;
        assert_eq!(response.status(), 401, "{:?}", credentials.map(|c| c.0));
        assert_eq!(
            response.headers()["www-authenticate"],
            "Basic realm=\"regauth\""
        );
    }
    app.revoke(reader.token.id).await;
    assert_eq!(status(&app, "GET", CLONE_REFS, creds(&reader)).await, 401);
}

#[tokio::test]
async fn packages_need_read_or_write_package_registry_and_deletes_are_refused() {
    let app = spawn_app().await;
    app.create_project_with_groups("acme/web").await;
    let reader = app
        .create_token(Project, "acme/web", &["read_package_registry"])
        .await;
    let writer = app
        .create_token(Project, "acme/web", &["write_package_registry"])
        .await;
    let git = app
        .create_token(Project, "acme/web", &["read_repository"])
        .await;
    assert_eq!(status(&app, "GET", PACKAGE, creds(&reader)).await, 200);
    assert_eq!(status(&app, "PUT", PACKAGE, creds(&reader)).await, 403);
    assert_eq!(status(&app, "PUT", PACKAGE, creds(&writer)).await, 200);
    assert_eq!(status(&app, "GET", PACKAGE, creds(&writer)).await, 200);
    assert_eq!(status(&app, "DELETE", PACKAGE, creds(&writer)).await, 403);
    assert_eq!(status(&app, "GET", PACKAGE, creds(&git)).await, 403);
    // The project by numeric id.
    let id = app
        .store
        .find_namespace(&NamespacePath::parse("acme/web").unwrap())
        .await
        .unwrap()
        .unwrap()
        .id;
    let by_id = format!("/api/v4/projects/{id}/packages/generic/tool/1.0.0/tool.tar.gz");
    assert_eq!(status(&app, "GET", &by_id, creds(&reader)).await, 200);
    // GitLab's Deploy-Token header, as its package docs use it.
    let response = app
        .client
        .get(format!("{}/-/forward-auth", app.address))
        .header("X-Original-URI", PACKAGE)
        .header("X-Original-Method", "PUT")
        .header("Deploy-Token", &writer.secret)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn without_the_original_method_header_forward_auth_refuses_whatever_the_sub_request() {
    let app = spawn_app().await;
    app.create_project_with_groups("acme/web").await;
    app.set_visibility("acme/web", regauth::domain::Visibility::Public)
        .await;
    let reader = app
        .create_token(Project, "acme/web", &["read_package_registry"])
        .await;
    // nginx's auth_request sub-request is a GET whatever the client sent; without the
    // method header regauth once decided on that GET: anonymous PUTs to public projects and
    // read-only tokens writing went through.
    for credentials in [None, creds(&reader)] {
        let mut request = app
            .client
            .get(format!("{}/-/forward-auth", app.address))
            .header("X-Original-URI", PACKAGE);
        if let Some((username, secret)) = credentials {
            request = request.basic_auth(username, Some(secret));
        }
        assert_eq!(request.send().await.unwrap().status(), 403);
    }
    // With it, the read is let through as before.
    assert_eq!(status(&app, "GET", PACKAGE, None).await, 200);
}

#[tokio::test]
async fn an_lfs_batch_download_needs_read_and_an_upload_or_a_batch_without_body_is_a_push() {
    let app = spawn_app().await;
    app.create_project_with_groups("acme/web").await;
    let reader = app
        .create_token(Project, "acme/web", &["read_repository"])
        .await;
    const BATCH: &str = "/acme/web.git/info/lfs/objects/batch";
    let batch = |token: &CreatedToken, body: Option<&'static str>| {
        let mut request = app
            .client
            .post(format!("{}/-/forward-auth", app.address))
            .header("X-Original-URI", BATCH)
            .header("X-Original-Method", "POST")
            .basic_auth(&token.token.username, Some(&token.secret));
        if let Some(body) = body {
            request = request
                .header("content-type", "application/vnd.git-lfs+json")
                .body(body);
        }
        request.send()
    };
    let download = r#"{"operation":"download","transfers":["basic"],"objects":[]}"#;
    let upload = r#"{"operation":"upload","transfers":["basic"],"objects":[]}"#;
    // Deploy tokens never push (GitLab's read_repository is their only repository scope).
    assert_eq!(batch(&reader, Some(download)).await.unwrap().status(), 200);
    assert_eq!(batch(&reader, Some(upload)).await.unwrap().status(), 403);
    assert_eq!(batch(&reader, None).await.unwrap().status(), 403);
}

#[tokio::test]
async fn a_group_token_reaches_its_subgroups_projects_and_group_package_endpoints() {
    let app = spawn_app().await;
    app.create_project_with_groups("acme/platform/infra").await;
    app.create_project_with_groups("acme-evil/web").await;
    let token = app
        .create_token(Group, "acme", &["read_repository", "read_package_registry"])
        .await;
    let c = creds(&token);
    assert_eq!(
        status(
            &app,
            "GET",
            "/acme/platform/infra.git/info/refs?service=git-upload-pack",
            c
        )
        .await,
        200
    );
    assert_eq!(
        status(
            &app,
            "GET",
            "/acme-evil/web.git/info/refs?service=git-upload-pack",
            c
        )
        .await,
        403
    );
    assert_eq!(
        status(
            &app,
            "GET",
            "/api/v4/groups/acme%2Fplatform/-/packages/maven/com/acme/x/1/x-1.jar",
            c
        )
        .await,
        200
    );
    assert_eq!(
        status(
            &app,
            "PUT",
            "/api/v4/groups/acme%2Fplatform/-/packages/maven/com/acme/x/1/x-1.jar",
            c
        )
        .await,
        403
    );
}

#[tokio::test]
async fn public_projects_are_readable_anonymously_but_never_writable() {
    let app = spawn_app().await;
    app.create_project_with_groups("acme/web").await;
    assert_eq!(status(&app, "GET", CLONE_REFS, None).await, 401);
    assert_eq!(status(&app, "GET", PACKAGE, None).await, 401);
    app.set_visibility("acme/web", Visibility::Public).await;
    assert_eq!(status(&app, "GET", CLONE_REFS, None).await, 200);
    assert_eq!(status(&app, "POST", CLONE_PACK, None).await, 200);
    assert_eq!(status(&app, "GET", PACKAGE, None).await, 200);
    assert_eq!(status(&app, "GET", PUSH_REFS, None).await, 401);
    assert_eq!(status(&app, "PUT", PACKAGE, None).await, 401);
    app.set_visibility("acme/web", Visibility::Internal).await;
    assert_eq!(status(&app, "GET", CLONE_REFS, None).await, 401);
}

#[tokio::test]
async fn requests_regauth_does_not_guard_or_without_the_original_uri_are_refused() {
    let app = spawn_app().await;
    app.create_project_with_groups("acme/web").await;
    app.set_visibility("acme/web", Visibility::Public).await;
    assert_eq!(status(&app, "GET", "/acme/web", None).await, 403);
    assert_eq!(
        status(&app, "GET", "/acme/other.git/../web.git/info/refs", None).await,
        403
    );
    let response = app
        .client
        .get(format!("{}/-/forward-auth", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
}

#[tokio::test]
async fn the_method_and_uri_headers_of_traefik_and_caddy_work_too() {
    let app = spawn_app().await;
    app.create_project_with_groups("acme/web").await;
    let writer = app
        .create_token(Project, "acme/web", &["write_package_registry"])
        .await;
    let ask = |method: &'static str| {
        app.client
            .get(format!("{}/-/forward-auth", app.address))
            .header("X-Forwarded-Method", method)
            .header("X-Forwarded-Uri", PACKAGE)
            .basic_auth(&writer.token.username, Some(&writer.secret))
            .send()
    };
    assert_eq!(ask("PUT").await.unwrap().status(), 200);
    assert_eq!(ask("DELETE").await.unwrap().status(), 403);
}

#[tokio::test]
async fn a_client_sent_uri_or_method_header_that_disagrees_with_the_proxys_is_refused() {
    let app = spawn_app().await;
    app.create_project_with_groups("acme/web").await;
    app.create_project_with_groups("acme/pub").await;
    app.set_visibility("acme/pub", Visibility::Public).await;
    let reader = app
        .create_token(Project, "acme/web", &["read_package_registry"])
        .await;
    // Traefik sets X-Forwarded-*; a client adds X-Original-* of its own.
    let ask = |uri_headers: Vec<(&'static str, &'static str)>,
               method_headers: Vec<(&'static str, &'static str)>| {
        let mut request = app
            .client
            .get(format!("{}/-/forward-auth", app.address))
            .basic_auth(&reader.token.username, Some(&reader.secret));
        for (name, value) in uri_headers.into_iter().chain(method_headers) {
            request = request.header(name, value);
        }
        request.send()
    };
    let spoofed_uri = ask(
        vec![
            (
                "X-Original-URI",
                "/acme/pub.git/info/refs?service=git-upload-pack",
            ),
            (
                "X-Forwarded-Uri",
                "/acme/web.git/info/refs?service=git-upload-pack",
            ),
        ],
        vec![],
    );
    assert_eq!(spoofed_uri.await.unwrap().status(), 403);
    let spoofed_method = ask(
        vec![("X-Forwarded-Uri", PACKAGE)],
        vec![("X-Original-Method", "GET"), ("X-Forwarded-Method", "PUT")],
    );
    assert_eq!(spoofed_method.await.unwrap().status(), 403);
    // The same value twice is no conflict.
    let agreeing = ask(
        vec![("X-Original-URI", PACKAGE), ("X-Forwarded-Uri", PACKAGE)],
        vec![("X-Original-Method", "GET"), ("X-Forwarded-Method", "GET")],
    );
    assert_eq!(agreeing.await.unwrap().status(), 200);
}

#[tokio::test]
async fn external_authorization_refuses_deploy_tokens_for_git_and_packages_but_not_the_registry() {
    let app = spawn_app_with(|settings| settings.forward_auth.external_authorization = true).await;
    app.create_project_with_groups("acme/web").await;
    let token = app
        .create_token(
            Project,
            "acme/web",
            &["read_repository", "read_package_registry", "read_registry"],
        )
        .await;
    assert_eq!(status(&app, "GET", CLONE_REFS, creds(&token)).await, 403);
    assert_eq!(status(&app, "GET", PACKAGE, creds(&token)).await, 403);
    let access = app
        .token_access(&token, REGISTRY, &["repository:acme/web:pull"])
        .await;
    assert_eq!(
        access,
        json!([{"type": "repository", "name": "acme/web", "actions": ["pull"]}])
    );
}

// ---- anonymous registry tokens

async fn anonymous_token(app: &TestApp, scopes: &[&str]) -> reqwest::Response {
    let mut query = vec![("service", REGISTRY)];
    query.extend(scopes.iter().map(|s| ("scope", *s)));
    app.get_token(None, &query).await
}

#[tokio::test]
async fn an_anonymous_pull_of_a_public_project_gets_pull_only_with_an_empty_subject() {
    let app = spawn_app().await;
    app.create_project_with_groups("acme/web").await;
    app.create_project_with_groups("acme/private").await;
    app.set_visibility("acme/web", Visibility::Public).await;
    let response = anonymous_token(
        &app,
        &[
            "repository:acme/web/api:pull,push",
            "repository:acme/private:pull",
        ],
    )
    .await;
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    let claims = jwt_claims(body["access_token"].as_str().unwrap());
    assert_eq!(claims["sub"], "");
    assert_eq!(claims["aud"], REGISTRY);
    assert_eq!(
        claims["access"],
        json!([{"type": "repository", "name": "acme/web/api", "actions": ["pull"]}])
    );
}

#[tokio::test]
async fn an_anonymous_caller_gets_nothing_on_private_projects_and_needs_credentials_to_log_in() {
    let app = spawn_app().await;
    app.create_project_with_groups("acme/web").await;
    let response = anonymous_token(&app, &["repository:acme/web:pull"]).await;
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(
        jwt_claims(body["token"].as_str().unwrap())["access"],
        json!([])
    );
    // A login (no scope), the virtual registry, an unknown service: credentials needed.
    assert_eq!(anonymous_token(&app, &[]).await.status(), 401);
    for service in ["dependency_proxy", "nope"] {
        let response = app
            .get_token(
                None,
                &[("service", service), ("scope", "repository:acme/web:pull")],
            )
            .await;
        assert_eq!(response.status(), 401, "{service}");
    }
}

// ---- visibility on the command line and the API

#[tokio::test]
async fn the_command_line_creates_and_updates_project_visibility() {
    let cli = Cli::new().await;
    cli.ok(&["migrate"]);
    cli.ok(&["group", "create", "acme"]);
    let created = cli.ok(&["project", "create", "acme/web", "--visibility", "public"]);
    assert!(created.contains("public"), "{created}");
    let default = cli.ok(&["project", "create", "acme/other"]);
    assert!(default.contains("private"), "{default}");
    let updated = cli.ok(&["project", "update", "acme/web", "--visibility", "internal"]);
    assert!(updated.contains("acme/web is now internal"), "{updated}");
    let error = cli.fails(&["project", "update", "acme/web", "--visibility", "open"]);
    assert!(error.contains("visibility"), "{error}");
    let error = cli.fails(&["project", "update", "acme/nope", "--visibility", "public"]);
    assert!(error.contains("not found"), "{error}");
    let app = cli.spawn_app().await;
    let admin = app.create_user("root", true, "api").await;
    let project: serde_json::Value = app
        .api(Method::GET, "/projects/acme%2Fweb", &admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(project["visibility"], "internal");
}

#[tokio::test]
async fn the_api_changes_visibility_for_owners_only() {
    let app = spawn_app().await;
    app.create_project_with_groups("acme/web").await;
    let owner = app.create_user("olga", false, "api").await;
    let maintainer = app.create_user("max", false, "api").await;
    app.add_member("olga", Group, "acme", Role::Owner).await;
    app.add_member("max", Project, "acme/web", Role::Maintainer)
        .await;
    let put = |token: &str| app.api(Method::PUT, "/projects/acme%2Fweb", token);
    let refused = put(&maintainer)
        .json(&json!({"visibility": "public"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    let response = put(&owner)
        .json(&json!({"visibility": "public"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["visibility"], "public");
    assert_eq!(body["path_with_namespace"], "acme/web");
    // GitLab also takes it in the query string.
    let response = app
        .api(
            Method::PUT,
            "/projects/acme%2Fweb?visibility=private",
            &owner,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let bad = put(&owner)
        .json(&json!({"visibility": "everyone"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let body: serde_json::Value = bad.json().await.unwrap();
    assert!(body["message"]["visibility"][0]
        .as_str()
        .unwrap()
        .contains("private, internal, public"));
    let missing = put(&owner).send().await.unwrap();
    assert_eq!(missing.status(), 400);
    let project: serde_json::Value = app
        .api(Method::GET, "/projects/acme%2Fweb", &maintainer)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(project["visibility"], "private");
}

// ---- metrics

#[tokio::test]
async fn requests_are_counted_by_scope_family_and_outcome() {
    let app = spawn_app().await;
    app.create_project_with_groups("acme/web").await;
    let token = app
        .create_token(Project, "acme/web", &["read_repository", "read_registry"])
        .await;
    assert_eq!(status(&app, "GET", CLONE_REFS, creds(&token)).await, 200);
    assert_eq!(status(&app, "GET", PACKAGE, creds(&token)).await, 403);
    assert_eq!(status(&app, "GET", PACKAGE, Some(("x", "y"))).await, 401);
    app.token_access(&token, REGISTRY, &["repository:acme/web:pull"])
        .await;
    let text = app.metrics_text().await;
    for line in [
        "regauth_scope_family_requests_total{family=\"repository\",outcome=\"allowed\"} 1",
        "regauth_scope_family_requests_total{family=\"package\",outcome=\"denied\"} 1",
        "regauth_scope_family_requests_total{family=\"package\",outcome=\"unauthorized\"} 1",
        "regauth_scope_family_requests_total{family=\"registry\",outcome=\"issued\"} 1",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
    }
}
