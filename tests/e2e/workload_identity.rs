//! Keyless CI, end to end: a GitLab job's OIDC token from a real OpenID provider (npm
//! oidc-provider) logs skopeo in against the real registry, pushes and pulls its project, is
//! refused on another project and after its policy is deleted; the token exchange's
//! credential works with skopeo too, once per OIDC token.

use chrono::Utc;
use regauth::config::oidc::{IssuerKind, OidcIssuer};
use regauth::domain::workload_identity::WorkloadIdentityRequest;
use regauth::domain::NamespaceKind;
use regauth::service::caller::Caller;
use regauth::service::namespaces::{self, NamespaceRef};
use regauth::service::workload_identity;
use regauth_test_support::oidc::{Job, OidcProvider};
use serde_json::{json, Value};

use crate::support::{blocking, Skopeo, Stack, CREDENTIALS_REFUSED, REGISTRY_DENIAL};

const AUDIENCE: &str = "https://regauth.example.com";

fn job(client_id: &'static str, project_id: &str) -> Job {
    Job {
        client_id,
        claims: json!({
            "namespace_id": "10",
            "namespace_path": "acme",
            "project_id": project_id,
            "project_path": "acme/web",
            "pipeline_id": "1200",
            "job_id": "5021",
            "ref": "main",
            "ref_type": "branch",
            "ref_protected": "true",
            "sha": "714a629c0b401fdce83e847fc9589983fc6f46bc",
        }),
    }
}

#[ignore = "needs docker-registry, skopeo, node and npm oidc-provider: run by scripts/test.sh"]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ci_job_pushes_and_pulls_with_its_oidc_token_and_no_stored_secret() {
    let provider = OidcProvider::start(
        &["k1"],
        &[job("release-job", "20"), job("foreign-job", "21")],
        300,
    );
    let issuer = OidcIssuer {
        url: provider.issuer.clone(),
        kind: IssuerKind::Gitlab,
        jwks_file: None,
    };
    let stack = Stack::start_with(move |settings| settings.oidc_issuers = vec![issuer]).await;
    let app = &stack.app;
    app.create_project_with_groups("acme/web").await;
    app.create_project("acme/other").await;
    let owner = namespaces::find(
        app.store.as_ref(),
        NamespaceKind::Project,
        &NamespaceRef::parse("acme/web"),
    )
    .await
    .unwrap();
    let policy = workload_identity::create(
        app.store.as_ref(),
        &Caller::operator(),
        &owner,
        WorkloadIdentityRequest {
            name: "release".into(),
            issuer: provider.issuer.clone(),
            audience: AUDIENCE.into(),
            conditions: serde_json::from_value(
                json!({"project_id": "20", "ref_protected": "true"}),
            )
            .unwrap(),
            scopes: vec!["read_registry".into(), "write_registry".into()],
            max_ttl: Some(900),
            ..Default::default()
        },
        &app.settings.oidc_issuers,
        Utc::now(),
    )
    .await
    .unwrap()
    .policy;
    let username = policy.username();

    // Direct mode: `skopeo login -u gitlab+workload-N` with the job's ID token.
    let id_token = provider.token("release-job", AUDIENCE).await;
    let job_client = Skopeo::new();
    let login = blocking(|| job_client.login(&stack.host(), &username, &id_token));
    stack.expect(&login, true, "login with the job's OIDC token");
    stack.expect(
        &stack.push(&job_client, "acme/web/app"),
        true,
        "push to its project",
    );
    stack.expect(&stack.pull(&job_client, "acme/web/app"), true, "pull back");
    stack.expect_refused(
        &stack.push(&job_client, "acme/other/app"),
        REGISTRY_DENIAL,
        "push to another project",
    );

    // Another project's job, and the right job for another audience: refused at login.
    for (client, audience) in [
        ("foreign-job", AUDIENCE),
        ("release-job", "https://other.example.com"),
    ] {
        let token = provider.token(client, audience).await;
        let stranger = Skopeo::new();
        let login = blocking(|| stranger.login(&stack.host(), &username, &token));
        stack.expect_refused(
            &login,
            CREDENTIALS_REFUSED,
            &format!("login of {client} for {audience}"),
        );
    }

    // Exchange mode: one OIDC token, one short-lived credential, used as a deploy token.
    let exchange_token = provider.token("release-job", AUDIENCE).await;
    let form = [
        (
            "grant_type",
            "urn:ietf:params:oauth:grant-type:token-exchange",
        ),
        ("subject_token", exchange_token.as_str()),
        ("subject_token_type", "urn:ietf:params:oauth:token-type:jwt"),
        ("resource", username.as_str()),
        ("scope", "read_registry"),
    ];
    let response = app
        .client
        .post(format!("{}/oauth/token", app.address))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let credential = body["access_token"].as_str().unwrap().to_owned();
    let replay = app
        .client
        .post(format!("{}/oauth/token", app.address))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), 400, "a replayed OIDC token is refused");
    let puller = Skopeo::new();
    let login = blocking(|| puller.login(&stack.host(), &username, &credential));
    stack.expect(&login, true, "login with the exchanged credential");
    stack.expect(
        &stack.pull(&puller, "acme/web/app"),
        true,
        "pull with the exchanged credential",
    );
    stack.expect_refused(
        &stack.push(&puller, "acme/web/app"),
        REGISTRY_DENIAL,
        "push with a credential narrowed to read_registry",
    );

    // The policy deleted: neither the OIDC token nor the exchanged credential logs in.
    workload_identity::delete(
        app.store.as_ref(),
        &Caller::operator(),
        &owner,
        policy.id,
        Utc::now(),
    )
    .await
    .unwrap();
    for (what, password) in [
        ("OIDC token", &id_token),
        ("exchanged credential", &credential),
    ] {
        let client = Skopeo::new();
        let login = blocking(|| client.login(&stack.host(), &username, password));
        stack.expect_refused(
            &login,
            CREDENTIALS_REFUSED,
            &format!("{what} after the policy was deleted"),
        );
    }
}

#[ignore = "needs docker-registry, docker, node and npm oidc-provider: run by scripts/test.sh"]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_logs_in_with_a_job_token_and_pushes_and_pulls() {
    use crate::support::{Client as _, Docker, User};
    let provider = OidcProvider::start(&["k1"], &[job("release-job", "20")], 300);
    let issuer = OidcIssuer {
        url: provider.issuer.clone(),
        kind: IssuerKind::Gitlab,
        jwks_file: None,
    };
    let stack = Stack::start_with(move |settings| settings.oidc_issuers = vec![issuer]).await;
    let app = &stack.app;
    app.create_project_with_groups("acme/web").await;
    app.create_project("acme/other").await;
    let owner = namespaces::find(
        app.store.as_ref(),
        NamespaceKind::Project,
        &NamespaceRef::parse("acme/web"),
    )
    .await
    .unwrap();
    let policy = workload_identity::create(
        app.store.as_ref(),
        &Caller::operator(),
        &owner,
        WorkloadIdentityRequest {
            name: "release".into(),
            issuer: provider.issuer.clone(),
            audience: AUDIENCE.into(),
            conditions: serde_json::from_value(json!({"project_id": "20"})).unwrap(),
            scopes: vec!["read_registry".into(), "write_registry".into()],
            max_ttl: Some(900),
            ..Default::default()
        },
        &app.settings.oidc_issuers,
        Utc::now(),
    )
    .await
    .unwrap()
    .policy;
    let id_token = provider.token("release-job", AUDIENCE).await;
    let user = User::new(&policy.username(), &id_token);
    let docker = blocking(Docker::start);
    let image = stack.image_ref("acme/web/app", "v1");
    let login = blocking(|| docker.login(&user, &stack.host()));
    stack.expect(
        &login.unwrap(),
        true,
        "docker login with the job's OIDC token",
    );
    stack.expect(
        &blocking(|| docker.build(&image, "federated docker")),
        true,
        "docker import",
    );
    let pushed = blocking(|| docker.push(&user, &image));
    stack.expect(&pushed.outcome, true, "docker push to its project");
    let pulled = blocking(|| docker.pull(&user, &image));
    stack.expect(&pulled.outcome, true, "docker pull back");
    assert_eq!(pulled.digest, pushed.digest, "the same manifest comes back");
    let elsewhere = stack.image_ref("acme/other/app", "v1");
    stack.expect(
        &blocking(|| docker.build(&elsewhere, "elsewhere")),
        true,
        "docker import",
    );
    let refused = blocking(|| docker.push(&user, &elsewhere));
    stack.expect_refused(
        &refused.outcome,
        REGISTRY_DENIAL,
        "docker push to another project",
    );
}
