//! Every answer that carries a secret or a token says `Cache-Control: no-store`, so that no
//! proxy or browser cache keeps it; what is meant to be cached says so itself.

use regauth::domain::NamespaceKind::Project;
use reqwest::Method;

use crate::helpers::spawn_app;

fn cache_control(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("cache-control")
        .map(|value| value.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

#[tokio::test]
async fn answers_with_secrets_or_tokens_are_never_stored_and_static_files_are_cached() {
    let app = spawn_app().await;
    app.create_project_with_groups("acme/web").await;
    let token = app
        .create_token(Project, "acme/web", &["read_registry"])
        .await;
    let admin = app.create_user("root", true, "api").await;
    let query = [
        ("service", "container_registry"),
        ("scope", "repository:acme/web:pull"),
        ("offline_token", "true"),
    ];
    let registry_token = app
        .get_token(Some((&token.token.username, &token.secret)), &query)
        .await;
    assert_eq!(registry_token.status(), 200);
    let refresh_token: serde_json::Value = {
        assert_eq!(cache_control(&registry_token), "no-store");
        registry_token.json().await.unwrap()
    };
    let refreshed = app
        .post_token(&[
            ("grant_type", "refresh_token"),
            ("service", "container_registry"),
            (
                "refresh_token",
                refresh_token["refresh_token"].as_str().unwrap_or("x"),
            ),
        ])
        .await;
    assert_eq!(cache_control(&refreshed), "no-store");
    let created = app
        .api(Method::POST, "/projects/acme%2Fweb/deploy_tokens", &admin)
        .json(&serde_json::json!({"name": "ci", "scopes": ["read_registry"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    assert_eq!(cache_control(&created), "no-store");
    let refused = app.get_token(Some(("nobody", "wrong")), &query).await;
    assert_eq!(cache_control(&refused), "no-store");
    for (path, expected) in [
        ("/-/static/regauth.css", "public, max-age=3600"),
        ("/.well-known/jwks.json", "public, max-age=300"),
    ] {
        let response = app
            .client
            .get(format!("{}{path}", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(cache_control(&response), expected, "{path}");
    }
}
