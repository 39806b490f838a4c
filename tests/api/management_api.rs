//! `/api/v4`: the GitLab-compatible deploy-token API, its permissions, pagination, body
//! encodings and error shapes.

use regauth::domain::NamespaceKind::{Group, Project};
use regauth::domain::Role;
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{spawn_app, TestApp};

/// acme (group) / acme/web (project) / acme/platform (subgroup) / acme/platform/infra
/// (project), and an admin.
async fn world() -> (TestApp, String) {
    let app = spawn_app().await;
    app.create_project_with_groups("acme/web").await;
    app.create_project_with_groups("acme/platform/infra").await;
    let admin = app.create_user("root", true, "api").await;
    (app, admin)
}

async fn json_of(response: reqwest::Response) -> Value {
    response.json().await.unwrap()
}

#[tokio::test]
async fn a_maintainer_creates_a_project_token_with_a_json_body_and_gets_the_secret_once() {
    let (app, _) = world().await;
    let alice = app.create_user("alice", false, "api").await;
    app.add_member("alice", Project, "acme/web", Role::Maintainer)
        .await;

    let response = app
        .api(Method::POST, "/projects/acme%2Fweb/deploy_tokens", &alice)
        .json(&json!({"name": "ci", "scopes": ["read_registry", "write_registry"], "expires_at": "2099-01-01"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let created = json_of(response).await;
    let id = created["id"].as_i64().unwrap();
    assert_eq!(created["name"], "ci");
    assert_eq!(created["username"], format!("gitlab+deploy-token-{id}"));
    assert_eq!(
        created["scopes"],
        json!(["read_registry", "write_registry"])
    );
    assert_eq!(created["expires_at"], "2099-01-01T00:00:00.000Z");
    assert_eq!(created["revoked"], false);
    assert_eq!(created["expired"], false);
    let secret = created["token"].as_str().unwrap();
    assert!(secret.starts_with("gldt-"));

    let fetched = json_of(
        app.api(
            Method::GET,
            &format!("/projects/acme%2Fweb/deploy_tokens/{id}"),
            &alice,
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert!(
        fetched.get("token").is_none(),
        "the secret is never shown again"
    );
    assert_eq!(fetched["id"], id);

    // The new token works at the registry realm.
    let status = app
        .get_token(
            Some((created["username"].as_str().unwrap(), secret)),
            &[("service", "container_registry")],
        )
        .await
        .status();
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_form_body_with_scopes_array_and_a_comma_list_both_work() {
    let (app, admin) = world().await;
    for (body, expected) in [
        ("name=one&scopes[]=read_registry&scopes[]=read_repository", json!(["read_repository", "read_registry"])),
        ("name=two&scopes=read_registry,write_registry&username=deployer&expires_at=2099-02-03T04:05:06Z", json!(["read_registry", "write_registry"])),
    ] {
        let response = app
            .api(Method::POST, "/projects/acme%2Fweb/deploy_tokens", &admin)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "{body}");
        let created = json_of(response).await;
        assert_eq!(created["scopes"], expected, "{body}");
    }
    let list = json_of(
        app.api(Method::GET, "/projects/acme%2Fweb/deploy_tokens", &admin)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(list[1]["username"], "deployer");
    assert_eq!(list[1]["expires_at"], "2099-02-03T04:05:06.000Z");
}

#[tokio::test]
async fn numeric_ids_and_url_encoded_paths_name_the_same_project_and_group() {
    let (app, admin) = world().await;
    let project = json_of(
        app.api(Method::GET, "/projects/acme%2Fweb", &admin)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(project["path_with_namespace"], "acme/web");
    assert_eq!(project["path"], "web");
    assert!(project["web_url"].as_str().unwrap().ends_with("/acme/web"));
    let by_id = json_of(
        app.api(Method::GET, &format!("/projects/{}", project["id"]), &admin)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(by_id, project);

    let group = json_of(
        app.api(Method::GET, "/groups/acme%2Fplatform", &admin)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(group["full_path"], "acme/platform");
    assert_eq!(group["path"], "platform");
    // A project is not a group and vice versa.
    let wrong_kind = app
        .api(Method::GET, "/groups/acme%2Fweb", &admin)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_kind.status(), 404);
    assert_eq!(
        json_of(wrong_kind).await,
        json!({"message": "404 Group Not Found"})
    );
}

#[tokio::test]
async fn get_user_tells_who_the_token_belongs_to() {
    let (app, admin) = world().await;
    let me = json_of(app.api(Method::GET, "/user", &admin).send().await.unwrap()).await;
    assert_eq!(me["username"], "root");
    assert_eq!(me["is_admin"], true);
    assert_eq!(me["state"], "active");
}

#[tokio::test]
async fn missing_wrong_or_deploy_token_credentials_get_401() {
    let (app, _) = world().await;
    let deploy = app
        .create_token(Project, "acme/web", &["read_registry"])
        .await;
    let no_token = app
        .client
        .get(format!("{}/api/v4/user", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(no_token.status(), 401);
    assert_eq!(
        json_of(no_token).await,
        json!({"message": "401 Unauthorized"})
    );
    for token in ["glpat-nonsense", deploy.secret.as_str()] {
        let response = app.api(Method::GET, "/user", token).send().await.unwrap();
        assert_eq!(response.status(), 401, "{token}");
    }
    let bearer = app
        .client
        .get(format!("{}/api/v4/user", app.address))
        .bearer_auth(&deploy.secret)
        .send()
        .await
        .unwrap();
    assert_eq!(bearer.status(), 401);
}

#[tokio::test]
async fn bearer_authorization_is_accepted_like_private_token() {
    let (app, admin) = world().await;
    let response = app
        .client
        .get(format!("{}/api/v4/user", app.address))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn an_expired_personal_token_or_a_blocked_user_gets_401_at_once() {
    let (app, _) = world().await;
    let alice = app.create_user("alice", true, "api").await;
    assert_eq!(
        app.api(Method::GET, "/user", &alice)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    regauth::service::users::set_blocked(
        app.store.as_ref(),
        &regauth::service::caller::Caller::operator(),
        "alice",
        true,
    )
    .await
    .unwrap();
    assert_eq!(
        app.api(Method::GET, "/user", &alice)
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    let list = app
        .api(Method::GET, "/deploy_tokens", &alice)
        .send()
        .await
        .unwrap();
    assert_eq!(list.status(), 401, "a blocked admin can do nothing");

    use sea_orm::{ActiveModelTrait, EntityTrait, Set};
    let bob = app.create_user("bob", false, "api").await;
    let row = entity::personal_access_token::Entity::find()
        .all(&app.db)
        .await
        .unwrap()
        .pop()
        .unwrap();
    let mut row: entity::personal_access_token::ActiveModel = row.into();
    row.expires_at = Set(Some(chrono::Utc::now()));
    row.update(&app.db).await.unwrap();
    assert_eq!(
        app.api(Method::GET, "/user", &bob)
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
}

#[tokio::test]
async fn roles_decide_who_may_manage_which_tokens() {
    let (app, admin) = world().await;
    let developer = app.create_user("dev", false, "api").await;
    app.add_member("dev", Project, "acme/web", Role::Developer)
        .await;
    let group_maintainer = app.create_user("gm", false, "api").await;
    app.add_member("gm", Group, "acme", Role::Maintainer).await;
    let group_owner = app.create_user("go", false, "api").await;
    app.add_member("go", Group, "acme", Role::Owner).await;
    let project_maintainer = app.create_user("pm", false, "api").await;
    app.add_member("pm", Project, "acme/web", Role::Maintainer)
        .await;
    let stranger = app.create_user("stranger", false, "api").await;
    let reader = app.create_user("reader", false, "read_api").await;
    app.add_member("reader", Group, "acme", Role::Owner).await;

    let create = |path: &str, token: &str| {
        app.api(Method::POST, path, token)
            .json(&json!({"name": "x", "scopes": ["read_registry"]}))
            .send()
    };
    let project = "/projects/acme%2Fweb/deploy_tokens";
    let group = "/groups/acme/deploy_tokens";
    // (who, path, expected status)
    let cases = [
        ("developer on project", project, developer.as_str(), 403),
        (
            "project maintainer on project",
            project,
            project_maintainer.as_str(),
            201,
        ),
        // No role on the group at all: the group is hidden, as for any non-member.
        (
            "project maintainer on parent group",
            group,
            project_maintainer.as_str(),
            404,
        ),
        (
            "group maintainer on group",
            group,
            group_maintainer.as_str(),
            403,
        ),
        (
            "group maintainer on a project below (inherited)",
            project,
            group_maintainer.as_str(),
            201,
        ),
        ("group owner on group", group, group_owner.as_str(), 201),
        ("read_api owner on group", group, reader.as_str(), 403),
        ("stranger on project", project, stranger.as_str(), 404),
        ("admin on group", group, admin.as_str(), 201),
    ];
    for (who, path, token, expected) in cases {
        let response = create(path, token).await.unwrap();
        assert_eq!(response.status(), expected, "{who}");
        if expected == 403 {
            assert_eq!(
                json_of(response).await,
                json!({"message": "403 Forbidden"}),
                "{who}"
            );
        } else if expected == 404 {
            let kind = if path == group { "Group" } else { "Project" };
            assert_eq!(
                json_of(response).await,
                json!({"message": format!("404 {kind} Not Found")}),
                "{who}"
            );
        }
    }
    // A group maintainer may list group tokens but not delete them.
    let listed = app
        .api(Method::GET, group, &group_maintainer)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), 200);
    let first_id = json_of(listed).await[0]["id"].as_i64().unwrap();
    let delete = app
        .api(
            Method::DELETE,
            &format!("{group}/{first_id}"),
            &group_maintainer,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(delete.status(), 403);
    // Only admins list the whole instance.
    assert_eq!(
        app.api(Method::GET, "/deploy_tokens", &group_owner)
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    let all = app
        .api(Method::GET, "/deploy_tokens", &admin)
        .send()
        .await
        .unwrap();
    assert_eq!(all.status(), 200);
    assert_eq!(json_of(all).await.as_array().unwrap().len(), 4);
}

#[tokio::test]
async fn validation_errors_name_the_field_and_the_rule() {
    let (app, admin) = world().await;
    let path = "/projects/acme%2Fweb/deploy_tokens";
    let post = |body: Value| app.api(Method::POST, path, &admin).json(&body).send();
    let cases = [
        (
            json!({"scopes": ["read_registry"]}),
            json!({"error": "name is missing"}),
        ),
        (json!({"name": "x"}), json!({"error": "scopes is missing"})),
        (
            json!({"name": "x", "scopes": ["read_regsitry"]}),
            json!("scopes"),
        ),
        (
            json!({"name": "x", "scopes": ["read_virtual_registry"]}),
            json!("scopes"),
        ),
        (
            json!({"name": "x", "scopes": ["read_registry"], "expires_at": "2001-01-01"}),
            json!("expires_at"),
        ),
        (
            json!({"name": "x", "scopes": ["read_registry"], "expires_at": "soon"}),
            json!("expires_at"),
        ),
        (
            json!({"name": "x", "scopes": ["read_registry"], "username": "bad name"}),
            json!("username"),
        ),
        (
            json!({"name": "x".repeat(256), "scopes": ["read_registry"]}),
            json!("name"),
        ),
    ];
    for (body, expected) in cases {
        let response = post(body.clone()).await.unwrap();
        assert_eq!(response.status(), 400, "{body}");
        let answer = json_of(response).await;
        match expected {
            Value::String(field) => {
                let message = &answer["message"][&field];
                assert!(message.is_array(), "{body} -> {answer}");
            }
            exact => assert_eq!(answer, exact, "{body}"),
        }
    }
    let garbage = app
        .api(Method::POST, path, &admin)
        .header("Content-Type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(garbage.status(), 400);
    // Nothing was created by any of the above.
    let list = json_of(app.api(Method::GET, path, &admin).send().await.unwrap()).await;
    assert_eq!(list, json!([]));
}

#[tokio::test]
async fn unknown_projects_groups_and_tokens_get_gitlabs_404s() {
    let (app, admin) = world().await;
    let cases = [
        (
            "/projects/acme%2Fnope/deploy_tokens",
            "404 Project Not Found",
        ),
        ("/groups/nope/deploy_tokens", "404 Group Not Found"),
        ("/projects/999999", "404 Project Not Found"),
        (
            "/projects/acme%2Fweb/deploy_tokens/424242",
            "404 Deploy token Not Found",
        ),
    ];
    for (path, message) in cases {
        let response = app.api(Method::GET, path, &admin).send().await.unwrap();
        assert_eq!(response.status(), 404, "{path}");
        assert_eq!(
            json_of(response).await,
            json!({"message": message}),
            "{path}"
        );
    }
    // A token of another project is not reachable through this project's URL.
    let other = app
        .create_token(Project, "acme/platform/infra", &["read_registry"])
        .await;
    let response = app
        .api(
            Method::DELETE,
            &format!("/projects/acme%2Fweb/deploy_tokens/{}", other.token.id),
            &admin,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
}

#[tokio::test]
async fn delete_answers_204_revokes_at_once_and_keeps_an_audit_record() {
    let (app, admin) = world().await;
    let token = app
        .create_token(Project, "acme/web", &["read_registry"])
        .await;
    let credentials = Some((token.token.username.as_str(), token.secret.as_str()));
    assert_eq!(
        app.get_token(credentials, &[("service", "container_registry")])
            .await
            .status(),
        200
    );

    let path = format!("/projects/acme%2Fweb/deploy_tokens/{}", token.token.id);
    let response = app.api(Method::DELETE, &path, &admin).send().await.unwrap();
    assert_eq!(response.status(), 204);
    assert_eq!(
        app.get_token(credentials, &[("service", "container_registry")])
            .await
            .status(),
        401
    );
    assert_eq!(
        app.api(Method::GET, &path, &admin)
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    assert_eq!(
        app.api(Method::DELETE, &path, &admin)
            .send()
            .await
            .unwrap()
            .status(),
        404
    );

    let events = app
        .store
        .audit_events_for_deploy_token(token.token.id)
        .await
        .unwrap();
    let actions: Vec<&str> = events.iter().map(|e| e.action.as_str()).collect();
    assert!(actions.starts_with(&["deploy_token.create"]), "{actions:?}");
    let deletion = events
        .iter()
        .find(|e| e.action.as_str() == "deploy_token.delete")
        .unwrap();
    assert_eq!(deletion.actor, "root");
    assert_eq!(deletion.ip_address.as_deref(), Some("127.0.0.1"));
    // The row itself is still there (soft delete).
    use sea_orm::EntityTrait;
    let row = entity::deploy_token::Entity::find_by_id(token.token.id)
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    assert!(row.deleted_at.is_some() && row.revoked);
}

#[tokio::test]
async fn lists_paginate_with_gitlabs_headers_and_filter_active_tokens() {
    let (app, admin) = world().await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(
            app.create_token(Project, "acme/web", &["read_registry"])
                .await
                .token
                .id,
        );
    }
    app.revoke(ids[1]).await;
    app.set_expiry(ids[2], chrono::Utc::now()).await;

    let response = app
        .api(
            Method::GET,
            "/projects/acme%2Fweb/deploy_tokens?per_page=2&page=2",
            &admin,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let header = |name: &str| response.headers()[name].to_str().unwrap().to_owned();
    assert_eq!(header("x-page"), "2");
    assert_eq!(header("x-per-page"), "2");
    assert_eq!(header("x-total"), "5");
    assert_eq!(header("x-total-pages"), "3");
    assert_eq!(header("x-next-page"), "3");
    assert_eq!(header("x-prev-page"), "1");
    let link = header("link");
    assert!(link.contains("page=3&per_page=2>; rel=\"next\""), "{link}");
    assert!(link.contains("page=1&per_page=2>; rel=\"prev\""), "{link}");
    assert!(
        link.contains("rel=\"first\"") && link.contains("rel=\"last\""),
        "{link}"
    );
    let page: Vec<i64> = json_of(response)
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_i64().unwrap())
        .collect();
    assert_eq!(page, ids[2..4]);

    let active = json_of(
        app.api(
            Method::GET,
            "/projects/acme%2Fweb/deploy_tokens?active=true",
            &admin,
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    let active: Vec<i64> = active
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_i64().unwrap())
        .collect();
    assert_eq!(active, vec![ids[0], ids[3], ids[4]]);
    // python-gitlab sends Python's spelling; GitLab reads the usual boolean spellings.
    for (spelling, expected) in [("True", 3), ("1", 3), ("yes", 3), ("F", 5), ("0", 5)] {
        let listed = json_of(
            app.api(
                Method::GET,
                &format!("/projects/acme%2Fweb/deploy_tokens?active={spelling}"),
                &admin,
            )
            .send()
            .await
            .unwrap(),
        )
        .await;
        assert_eq!(
            listed.as_array().map(Vec::len),
            Some(expected),
            "active={spelling}: {listed}"
        );
    }
    let bad = app
        .api(
            Method::GET,
            "/projects/acme%2Fweb/deploy_tokens?active=maybe",
            &admin,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let all = json_of(
        app.api(Method::GET, "/projects/acme%2Fweb/deploy_tokens", &admin)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(all[1]["revoked"], true);
    assert_eq!(all[2]["expired"], true);

    let last = app
        .api(
            Method::GET,
            "/projects/acme%2Fweb/deploy_tokens?per_page=2&page=3",
            &admin,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(last.headers()["x-next-page"], "");
    for bad_page in ["zero", "0", "1000000000000000000"] {
        let bad = app
            .api(
                Method::GET,
                &format!("/projects/acme%2Fweb/deploy_tokens?page={bad_page}"),
                &admin,
            )
            .send()
            .await
            .unwrap();
        assert_eq!(bad.status(), 400, "page={bad_page}");
    }
}

#[tokio::test]
async fn each_registry_token_issue_is_audited_and_last_used_is_kept() {
    let (app, _) = world().await;
    let token = app
        .create_token(Project, "acme/web", &["read_registry"])
        .await;
    for _ in 0..3 {
        app.token_access(&token, "container_registry", &["repository:acme/web:pull"])
            .await;
    }
    // The usage writer flushes in the background (every second): wait for it, bounded.
    let mut issued = 0;
    for _ in 0..100 {
        let events = app
            .store
            .audit_events_for_deploy_token(token.token.id)
            .await
            .unwrap();
        // Uses are aggregated: one record per token, address, service and grant per flush.
        issued = events
            .iter()
            .filter(|e| e.action.as_str() == "registry_token.issue")
            .map(|e| e.details["count"].as_u64().unwrap())
            .sum::<u64>();
        let used = app
            .store
            .find_deploy_token(token.token.id)
            .await
            .unwrap()
            .unwrap()
            .last_used_at;
        if issued == 3 && used.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(issued, 3);
    let events = app
        .store
        .audit_events_for_deploy_token(token.token.id)
        .await
        .unwrap();
    let issue = events
        .iter()
        .find(|e| e.action.as_str() == "registry_token.issue")
        .unwrap();
    assert_eq!(issue.actor, token.token.username);
    assert_eq!(issue.ip_address.as_deref(), Some("127.0.0.1"));
    assert_eq!(issue.details["granted"], "repository:acme/web:pull");
    assert_eq!(issue.details["service"], "container_registry");
    assert!(
        issue.details["last"]
            .as_str()
            .unwrap()
            .parse::<chrono::DateTime<chrono::Utc>>()
            .unwrap()
            >= issue.created_at
    );
    let stored = app
        .store
        .find_deploy_token(token.token.id)
        .await
        .unwrap()
        .unwrap();
    assert!(stored.last_used_at.is_some());
}

#[tokio::test]
async fn token_issue_records_past_the_retention_are_pruned_and_management_records_kept() {
    use chrono::{Duration, Utc};
    use regauth::domain::{ActorKind, AuditAction, AuditEvent};
    let (app, _) = world().await;
    let token = app
        .create_token(Project, "acme/web", &["read_registry"])
        .await;
    let event = |action, days_ago: i64| AuditEvent {
        created_at: Utc::now() - Duration::days(days_ago),
        actor_kind: ActorKind::DeployToken,
        actor: token.token.username.clone(),
        action,
        deploy_token_id: Some(token.token.id),
        namespace_id: Some(token.token.owner.id),
        ip_address: None,
        details: json!({}),
    };
    app.store
        .record_audit_events(&[
            event(AuditAction::RegistryTokenIssue, 100),
            event(AuditAction::RegistryTokenIssue, 10),
            event(AuditAction::DeployTokenRevoke, 100),
        ])
        .await
        .unwrap();
    let prune = regauth::service::audit_retention::prune_issue_records;
    assert_eq!(
        prune(app.store.as_ref(), 0, Utc::now()).await.unwrap(),
        0,
        "0 keeps everything"
    );
    assert_eq!(prune(app.store.as_ref(), 90, Utc::now()).await.unwrap(), 1);
    let left: Vec<(String, i64)> = app
        .store
        .audit_events_for_deploy_token(token.token.id)
        .await
        .unwrap()
        .iter()
        .map(|e| {
            (
                e.action.as_str().to_owned(),
                (Utc::now() - e.created_at).num_days(),
            )
        })
        .collect();
    assert!(
        left.contains(&("registry_token.issue".into(), 10)),
        "{left:?}"
    );
    assert!(
        left.contains(&("deploy_token.revoke".into(), 100)),
        "{left:?}"
    );
    assert!(
        !left.contains(&("registry_token.issue".into(), 100)),
        "{left:?}"
    );
}

#[tokio::test]
async fn a_custom_username_cannot_pose_as_a_default_one_and_names_refuse_control_characters() {
    let (app, admin) = world().await;
    let path = "/projects/acme%2Fweb/deploy_tokens";
    let existing = app
        .create_token(Project, "acme/web", &["read_registry"])
        .await;
    for (body, field, rule) in [
        (
            json!({"name": "x", "scopes": ["read_registry"], "username": existing.token.username}),
            "username",
            "reserved",
        ),
        (
            json!({"name": "x", "scopes": ["read_registry"], "username": "gitlab+deploy-token-999"}),
            "username",
            "reserved",
        ),
        (
            json!({"name": "\u{1b}[31mprod\u{1b}[0m", "scopes": ["read_registry"]}),
            "name",
            "must not contain control or invisible characters",
        ),
        (
            json!({"name": "ci\nINFO fake log line", "scopes": ["read_registry"]}),
            "name",
            "must not contain control or invisible characters",
        ),
        (
            json!({"name": "x", "scopes": ["read_registry"], "username": "ci\u{7}"}),
            "username",
            "must not contain control or invisible characters",
        ),
        // Zero-width and separator characters: names that look alike but differ, or a line
        // break to a log reader.
        (
            json!({"name": "x", "scopes": ["read_registry"], "username": "ci\u{200b}bot"}),
            "username",
            "must not contain control or invisible characters",
        ),
        (
            json!({"name": "prod\u{2028}INFO fake log line", "scopes": ["read_registry"]}),
            "name",
            "must not contain control or invisible characters",
        ),
    ] {
        let response = app
            .api(Method::POST, path, &admin)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{body}");
        let answer = json_of(response).await;
        let message = answer["message"][field][0].as_str().unwrap_or_default();
        assert!(message.contains(rule), "{body} -> {answer}");
    }
    // Only the token made above exists: nothing was created by the refused requests.
    let list = json_of(app.api(Method::GET, path, &admin).send().await.unwrap()).await;
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
}

#[tokio::test]
async fn a_path_is_decoded_once_so_a_double_encoded_slash_names_nothing() {
    let (app, admin) = world().await;
    let found = app
        .api(Method::GET, "/projects/acme%2Fweb", &admin)
        .send()
        .await
        .unwrap();
    assert_eq!(found.status(), 200);
    for double in [
        "/projects/acme%252Fweb",
        "/projects/acme%252fweb/deploy_tokens",
    ] {
        let response = app.api(Method::GET, double, &admin).send().await.unwrap();
        assert_eq!(response.status(), 404, "{double}");
    }
}

#[tokio::test]
async fn web_url_and_link_believe_forwarded_host_headers_only_from_a_trusted_proxy() {
    let (app, admin) = world().await;
    let ask = |path: &'static str| {
        app.api(Method::GET, path, &admin)
            .header("X-Forwarded-Host", "evil.example")
            .header("X-Forwarded-Proto", "https")
    };
    let project = json_of(ask("/projects/acme%2Fweb").send().await.unwrap()).await;
    let web_url = project["web_url"].as_str().unwrap();
    assert!(web_url.starts_with("http://127.0.0.1:"), "{web_url}");
    let listed = ask("/projects/acme%2Fweb/deploy_tokens")
        .send()
        .await
        .unwrap();
    let link = listed.headers()["link"].to_str().unwrap();
    assert!(!link.contains("evil.example"), "{link}");
    assert!(link.contains("<http://127.0.0.1:"), "{link}");

    // Behind a trusted proxy, the proxy's word is taken.
    let proxied = crate::helpers::spawn_app_with(|settings| {
        settings.server.trusted_proxies =
            regauth::config::TrustedProxies::parse(&["127.0.0.1".to_owned()]).unwrap();
    })
    .await;
    proxied.create_project_with_groups("acme/web").await;
    let root = proxied.create_user("root", true, "api").await;
    let project = json_of(
        proxied
            .api(Method::GET, "/projects/acme%2Fweb", &root)
            .header("X-Forwarded-Host", "registry.example.com")
            .header("X-Forwarded-Proto", "https")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(project["web_url"], "https://registry.example.com/acme/web");
}

/// (action, actor, namespace id, details) of every audit record of one of `actions`.
async fn audit_records(
    app: &TestApp,
    actions: &[&str],
) -> Vec<(String, String, Option<i64>, Value)> {
    use sea_orm::{ConnectionTrait, Statement};
    let list = actions
        .iter()
        .map(|action| format!("'{action}'"))
        .collect::<Vec<_>>()
        .join(",");
    app.db
        .query_all_raw(Statement::from_string(
            app.db.get_database_backend(),
            format!(
                "SELECT action, actor, namespace_id, details FROM audit_events \
                 WHERE action IN ({list}) ORDER BY id"
            ),
        ))
        .await
        .unwrap()
        .into_iter()
        .map(|row| {
            let details: String = row.try_get("", "details").unwrap();
            (
                row.try_get("", "action").unwrap(),
                row.try_get("", "actor").unwrap(),
                row.try_get("", "namespace_id").unwrap(),
                serde_json::from_str(&details).unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn namespace_user_membership_and_visibility_changes_are_audited() {
    let (app, admin) = world().await;
    app.create_user("alice", false, "api").await;
    app.add_member("alice", Project, "acme/web", Role::Maintainer)
        .await;
    app.block_user("alice").await;
    let changed = app
        .api(
            Method::PUT,
            "/projects/acme%2Fweb?visibility=internal",
            &admin,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), 200);
    let records = audit_records(
        &app,
        &[
            "namespace.create",
            "namespace.visibility_change",
            "user.create",
            "user.block",
            "member.set",
            "personal_access_token.create",
        ],
    )
    .await;
    let actions: Vec<&str> = records.iter().map(|(action, ..)| action.as_str()).collect();
    // acme, acme/web, acme/platform, acme/platform/infra; root and its token; alice, hers.
    assert_eq!(
        actions,
        [
            "namespace.create",
            "namespace.create",
            "namespace.create",
            "namespace.create",
            "user.create",
            "personal_access_token.create",
            "user.create",
            "personal_access_token.create",
            "member.set",
            "user.block",
            "namespace.visibility_change",
        ],
        "{records:#?}"
    );
    let web = app
        .store
        .find_namespace(&regauth::domain::NamespacePath::parse("acme/web").unwrap())
        .await
        .unwrap()
        .unwrap();
    let (_, actor, namespace_id, details) = &records[1];
    assert!(actor.starts_with("cli:"), "the operator: {actor}");
    assert_eq!(*namespace_id, Some(web.id));
    assert_eq!(details["full_path"], "acme/web");
    let (_, _, namespace_id, details) = &records[8];
    assert_eq!(*namespace_id, Some(web.id));
    assert_eq!(details["username"], "alice");
    assert_eq!(details["role"], "maintainer");
    let (_, actor, _, details) = &records[10];
    assert_eq!(actor, "root", "the API caller");
    assert_eq!(
        (details["from"].as_str(), details["to"].as_str()),
        (Some("private"), Some("internal"))
    );
    assert!(
        !records
            .iter()
            .any(|(.., details)| details.to_string().contains("glpat-")),
        "no secret in the trail"
    );
}
