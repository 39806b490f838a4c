//! End to end: the real registry (Debian's `docker-registry`, CNCF distribution 2.8) with
//! regauth as its token realm, driven by the real `skopeo` (this file) and by every real
//! client — skopeo, podman, buildah, `ctr` and docker — through the checks in `clients.rs`.
//! Every failure message carries the registry's log, since clients report any rejected JWT as
//! "invalid username/password".

mod hostile;
mod identity_token;
mod leaked_token;
mod registry_config;
mod registry_events;
mod replicas;
mod restrictions;
mod rotation;
mod secret_rotation;
mod token_header;
mod virtual_registry;
mod walkthrough;
mod workload_identity;

mod clients;

use regauth_test_support::{e2e as support, helpers, server, test_ca};

use regauth::domain::NamespaceKind::{Group, Project};
use support::{Skopeo, Stack, CREDENTIALS_REFUSED, REGISTRY_DENIAL};

#[ignore = "needs docker-registry and skopeo: run by scripts/test.sh"]
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

/// What the shared client checks (`clients::skopeo::every_check`: wrong secret, read-only push,
/// another project, a sibling group, revocation) leave out, with the refusal's source pinned
/// down: the registry refuses a group token in a lookalike group (`acme-evil` is no subgroup
/// of `acme`) for lack of scope, and regauth refuses an expired token's credentials.
#[ignore = "needs docker-registry and skopeo: run by scripts/test.sh"]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skopeo_is_refused_in_a_lookalike_group_and_with_an_expired_token_for_the_right_reason() {
    let stack = Stack::start().await;
    stack.app.create_project_with_groups("acme/web").await;
    stack.app.create_project_with_groups("acme-evil/web").await;
    let group = stack
        .app
        .create_token(Group, "acme", &["read_registry", "write_registry"])
        .await;
    let evil_owner = stack
        .app
        .create_token(
            Project,
            "acme-evil/web",
            &["read_registry", "write_registry"],
        )
        .await;
    stack.expect(
        &stack.push(&stack.logged_in(&evil_owner), "acme-evil/web"),
        true,
        "push by acme-evil/web's own token (setup)",
    );

    let client = stack.logged_in(&group);
    stack.expect_refused(
        &stack.push(&client, "acme-evil/web/new"),
        REGISTRY_DENIAL,
        "push by the acme group token into the lookalike group acme-evil",
    );
    stack.assert_tag_absent(
        &evil_owner,
        "acme-evil/web/new",
        "v1",
        "refused push into acme-evil",
    );
    stack.expect_refused(
        &stack.pull(&client, "acme-evil/web"),
        REGISTRY_DENIAL,
        "pull by the acme group token from the lookalike group acme-evil",
    );

    stack
        .app
        .set_expiry(group.token.id, chrono::Utc::now())
        .await;
    stack.expect_refused(
        &stack.push(&client, "acme/web"),
        CREDENTIALS_REFUSED,
        "push with a token that has expired since its login",
    );
    stack.expect_refused(
        &stack.login(&Skopeo::new(), &group),
        CREDENTIALS_REFUSED,
        "login with an expired token",
    );
}
