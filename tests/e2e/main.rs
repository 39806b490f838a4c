//! End to end: the real registry (Debian's `docker-registry`, CNCF distribution 2.8) with
//! regauth as its token realm, driven by the real `skopeo` (this file) and by every real
//! client — skopeo, podman, buildah, `ctr` and docker — through the checks in `clients.rs`.
//! Every failure message carries the registry's log, since clients report any rejected JWT as
//! "invalid username/password".

#[path = "../api/helpers.rs"]
#[allow(dead_code)]
mod helpers;
mod identity_token;
mod replicas;
mod rotation;
mod support;
mod token_header;
mod virtual_registry;

mod clients;

use helpers::CreatedToken;
use regauth::domain::NamespaceKind::{Group, Project};
use support::{Skopeo, Stack};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_with_a_read_write_token_and_pull_back_with_a_read_only_token() {
    let stack = Stack::start().await;
    stack.app.create_project_with_groups("acme/web").await;
    let writer = stack
        .app
        .create_token(Project, "acme/web", &["read_registry", "write_registry"])
        .await;
    let reader = stack
        .app
        .create_token(Project, "acme/web", &["read_registry"])
        .await;

    let writer_client = stack.logged_in(&writer);
    let pushed = stack.push(&writer_client, "acme/web/app");
    stack.expect(&pushed, true, "push with a read+write token");

    let reader_client = stack.logged_in(&reader);
    let pulled = stack.pull(&reader_client, "acme/web/app");
    stack.expect(&pulled, true, "pull with a read-only token");
    let digest = stack
        .digest(&reader_client, "acme/web/app")
        .unwrap_or_else(|outcome| {
            panic!(
                "inspect failed\n{outcome}\n--- registry log ---\n{}",
                stack.registry.log()
            )
        });
    assert_eq!(digest, stack.image.manifest_digest, "same image back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_token_cannot_push_and_nothing_is_written() {
    let stack = Stack::start().await;
    stack.app.create_project_with_groups("acme/web").await;
    let reader = stack
        .app
        .create_token(Project, "acme/web", &["read_registry"])
        .await;
    let client = stack.logged_in(&reader);
    let pushed = stack.push(&client, "acme/web");
    stack.expect(&pushed, false, "push with a read-only token");
    assert!(
        stack.digest(&client, "acme/web").is_err(),
        "no manifest may exist after a refused push"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_of_another_project_is_refused() {
    let stack = Stack::start().await;
    stack.app.create_project_with_groups("acme/web").await;
    stack.app.create_project_with_groups("acme/other").await;
    let owner = stack
        .app
        .create_token(Project, "acme/web", &["read_registry", "write_registry"])
        .await;
    let stranger = stack
        .app
        .create_token(Project, "acme/other", &["read_registry", "write_registry"])
        .await;
    stack.expect(
        &stack.push(&stack.logged_in(&owner), "acme/web"),
        true,
        "push by the owner",
    );

    let client = stack.logged_in(&stranger);
    stack.expect(
        &stack.pull(&client, "acme/web"),
        false,
        "pull by another project's token",
    );
    stack.expect(
        &stack.push(&client, "acme/web"),
        false,
        "push by another project's token",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_token_reaches_a_project_two_subgroups_down_but_not_a_sibling_group() {
    let stack = Stack::start().await;
    stack
        .app
        .create_project_with_groups("acme/platform/infra/deploy")
        .await;
    stack.app.create_project_with_groups("acme-evil/web").await;
    let token = stack
        .app
        .create_token(Group, "acme", &["read_registry", "write_registry"])
        .await;
    let client = stack.logged_in(&token);
    stack.expect(
        &stack.push(&client, "acme/platform/infra/deploy"),
        true,
        "group token push two subgroups down",
    );
    stack.expect(
        &stack.pull(&client, "acme/platform/infra/deploy"),
        true,
        "group token pull",
    );
    stack.expect(
        &stack.push(&client, "acme-evil/web"),
        false,
        "group token push into a lookalike group",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_secret_fails_login() {
    let stack = Stack::start().await;
    stack.app.create_project_with_groups("acme/web").await;
    let token = stack
        .app
        .create_token(Project, "acme/web", &["read_registry"])
        .await;
    let wrong = CreatedToken {
        secret: format!("{}x", token.secret),
        token: token.token.clone(),
    };
    let outcome = stack.login(&Skopeo::new(), &wrong);
    stack.expect(&outcome, false, "login with a wrong secret");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_token_fails_at_once() {
    let stack = Stack::start().await;
    stack.app.create_project_with_groups("acme/web").await;
    let token = stack
        .app
        .create_token(Project, "acme/web", &["read_registry", "write_registry"])
        .await;
    let client = stack.logged_in(&token);
    stack.expect(
        &stack.push(&client, "acme/web"),
        true,
        "push before revocation",
    );
    stack.app.revoke(token.token.id).await;
    stack.expect(
        &stack.pull(&client, "acme/web"),
        false,
        "pull right after revocation",
    );
    stack.expect(
        &stack.login(&Skopeo::new(), &token),
        false,
        "login after revocation",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_token_fails() {
    let stack = Stack::start().await;
    stack.app.create_project_with_groups("acme/web").await;
    let token = stack
        .app
        .create_token(Project, "acme/web", &["read_registry", "write_registry"])
        .await;
    let client = stack.logged_in(&token);
    stack
        .app
        .set_expiry(token.token.id, chrono::Utc::now())
        .await;
    stack.expect(
        &stack.push(&client, "acme/web"),
        false,
        "push with an expired token",
    );
    stack.expect(
        &stack.login(&Skopeo::new(), &token),
        false,
        "login with an expired token",
    );
}
