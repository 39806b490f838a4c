//! docker with an identity token: `docker login` gets a refresh token (offline_token=true),
//! keeps it in its config file instead of the secret, and pushes and pulls through the OAuth2
//! refresh grant — until the deploy token is revoked.

use base64::Engine as _;
use regauth::domain::NamespaceKind::Project;

use crate::support::{blocking, Client, Docker, Stack};

#[ignore = "needs docker-registry and skopeo: run by scripts/test.sh"]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_keeps_an_identity_token_and_works_through_the_refresh_grant_until_revocation() {
    let stack = Stack::start().await;
    stack.app.create_project_with_groups("acme/web").await;
    let token = stack
        .app
        .create_token(Project, "acme/web", &["read_registry", "write_registry"])
        .await;
    let docker = blocking(Docker::start);
    let user = stack.user(&token);
    let host = stack.host();
    let context = |what: &str| {
        format!(
            "{what}\n{}\n--- registry log ---\n{}",
            docker.diagnostics(),
            stack.registry.log()
        )
    };

    let login = blocking(|| docker.login(&user, &host)).expect("docker has a login");
    assert!(
        login.success,
        "{}",
        context(&format!("docker login\n{login}"))
    );

    // The config file holds the identity token, and neither the secret nor user:secret.
    let config = std::fs::read_to_string(user.docker_config_dir().join("config.json")).unwrap();
    let parsed: serde_json::Value = serde_json::from_str(&config).unwrap();
    let entry = &parsed["auths"][&host];
    let identity = entry["identitytoken"]
        .as_str()
        .unwrap_or_else(|| panic!("no identitytoken in {config}"));
    assert!(identity.starts_with("regauth-rt-"), "{config}");
    let pair = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{}", token.token.username, token.secret));
    assert!(
        !config.contains(&token.secret) && !config.contains(&pair),
        "the secret stayed in {config}"
    );

    // With only the identity token, push and pull work: docker uses the refresh grant.
    let image = stack.image_ref("acme/web", "v1");
    let built = blocking(|| docker.build(&image, "identity token"));
    assert!(
        built.success,
        "{}",
        context(&format!("docker import\n{built}"))
    );
    let pushed = blocking(|| docker.push(&user, &image));
    assert!(
        pushed.success(),
        "{}",
        context(&format!("push with the identity token\n{}", pushed.outcome))
    );
    let pulled = blocking(|| docker.pull(&user, &image));
    assert!(
        pulled.success(),
        "{}",
        context(&format!("pull with the identity token\n{}", pulled.outcome))
    );
    assert_eq!(pulled.digest, pushed.digest, "same image back");

    // Revoking the deploy token ends its identity token at once.
    stack.app.revoke(token.token.id).await;
    let pulled = blocking(|| docker.pull(&user, &image));
    assert!(
        !pulled.success(),
        "{}",
        context(&format!("pull after revocation\n{}", pulled.outcome))
    );
    let pushed = blocking(|| docker.push(&user, &image));
    assert!(
        !pushed.success(),
        "{}",
        context(&format!("push after revocation\n{}", pushed.outcome))
    );
}
