//! The group's virtual registry (dependency proxy): a second registry, a pull-through cache
//! of the first, whose `auth.token.service` is `dependency_proxy` (DOMAIN.md table), and the
//! `delete` rules on both services, shown with the real registry.

use regauth::domain::NamespaceKind::{Group, Project};

use crate::helpers::CreatedToken;
use crate::support::{blocking, registry_for, Registry, Skopeo, Stack};

/// The upstream (`Stack`, container_registry) holds `acme/team/alpine:v1`; `proxy` caches it
/// for the `dependency_proxy` service.
struct VirtualRegistry {
    stack: Stack,
    proxy: Registry,
}

impl VirtualRegistry {
    async fn start() -> VirtualRegistry {
        let stack = Stack::start().await;
        stack.app.create_project_with_groups("acme/team").await;
        stack.app.create_group("other").await;
        let pusher = stack
            .app
            .create_token(Group, "acme", &["read_registry", "write_registry"])
            .await;
        let pushed = stack.push(&stack.logged_in(&pusher), "acme/team/alpine");
        stack.expect(&pushed, true, "push to the upstream");
        // The cache authenticates upstream with a read-only group token.
        let upstream = stack
            .app
            .create_token(Group, "acme", &["read_registry"])
            .await;
        let proxy = registry_for(
            &stack.app,
            "dependency_proxy",
            Some((
                stack.registry.url(),
                upstream.token.username.clone(),
                upstream.secret.clone(),
            )),
        );
        VirtualRegistry { stack, proxy }
    }

    /// Pulls `acme/team/alpine:v1` through the cache with `token`; returns the digest or the
    /// failure.
    fn pull_through(&self, token: &CreatedToken) -> Result<String, String> {
        let skopeo = Skopeo::new();
        let login =
            blocking(|| skopeo.login(&self.proxy.host(), &token.token.username, &token.secret));
        if !login.success {
            return Err(format!("login refused\n{login}"));
        }
        blocking(|| skopeo.inspect_digest(&self.proxy.host(), "acme/team/alpine", "v1"))
            .map_err(|outcome| outcome.to_string())
    }

    fn logs(&self) -> String {
        format!(
            "--- proxy log ---\n{}\n--- upstream log ---\n{}",
            self.proxy.log(),
            self.stack.registry.log()
        )
    }

    fn assert_pulls(&self, token: &CreatedToken, what: &str) {
        match self.pull_through(token) {
            Ok(digest) => assert_eq!(digest, self.stack.image.manifest_digest, "{what}"),
            Err(failure) => panic!(
                "{what}: expected a pull through the cache\n{failure}\n{}",
                self.logs()
            ),
        }
    }

    fn assert_refused(&self, token: &CreatedToken, what: &str) {
        if let Ok(digest) = self.pull_through(token) {
            panic!(
                "{what}: expected a refusal, pulled {digest}\n{}",
                self.logs()
            );
        }
    }
}

#[ignore = "needs docker-registry and skopeo: run by scripts/test.sh"]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn virtual_registry_scopes_pull_through_the_cache_and_others_are_refused() {
    let vr = VirtualRegistry::start().await;
    let app = &vr.stack.app;
    let read = app
        .create_token(Group, "acme", &["read_virtual_registry"])
        .await;
    let write = app
        .create_token(Group, "acme", &["write_virtual_registry"])
        .await;
    let legacy = app
        .create_token(Group, "acme", &["read_registry", "write_registry"])
        .await;
    let read_registry_only = app.create_token(Group, "acme", &["read_registry"]).await;
    let project_token = app
        .create_token(Project, "acme/team", &["read_registry", "write_registry"])
        .await;
    let other_group = app
        .create_token(
            Group,
            "other",
            &["read_virtual_registry", "write_virtual_registry"],
        )
        .await;

    vr.assert_pulls(&read, "read_virtual_registry");
    vr.assert_pulls(&write, "write_virtual_registry");
    vr.assert_pulls(&legacy, "legacy read_registry + write_registry");
    vr.assert_refused(&read_registry_only, "read_registry alone");
    vr.assert_refused(&project_token, "a project token");
    vr.assert_refused(&other_group, "another group's token");

    // write_virtual_registry is granted push and delete in the JWT as well.
    let access = app
        .token_access(
            &write,
            "dependency_proxy",
            &["repository:acme/team/alpine:pull,push,delete"],
        )
        .await;
    assert_eq!(
        access[0]["actions"],
        serde_json::json!(["pull", "push", "delete"])
    );
}

#[ignore = "needs docker-registry and skopeo: run by scripts/test.sh"]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_deploy_token_can_delete_on_the_container_registry() {
    let stack = Stack::start().await;
    stack.app.create_project_with_groups("acme/web").await;
    let writer = stack
        .app
        .create_token(Project, "acme/web", &["read_registry", "write_registry"])
        .await;
    let client = stack.logged_in(&writer);
    stack.expect(&stack.push(&client, "acme/web"), true, "push");
    let deleted = blocking(|| client.delete(&stack.host(), "acme/web", "v1"));
    stack.expect(&deleted, false, "delete with a read+write deploy token");
    assert_eq!(
        stack.digest(&client, "acme/web").ok().as_deref(),
        Some(stack.image.manifest_digest.as_str()),
        "the manifest is still there\n{}",
        stack.registry.log()
    );
}

#[ignore = "needs docker-registry and skopeo: run by scripts/test.sh"]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_virtual_registry_token_deletes_a_manifest_on_a_dependency_proxy_registry() {
    let stack = Stack::start().await;
    stack.app.create_group("acme").await;
    let registry = registry_for(&stack.app, "dependency_proxy", None);
    let token = stack
        .app
        .create_token(Group, "acme", &["write_virtual_registry"])
        .await;
    let skopeo = Skopeo::new();
    let log = || registry.log();
    let login = blocking(|| skopeo.login(&registry.host(), &token.token.username, &token.secret));
    assert!(login.success, "{login}\n{}", log());
    let pushed =
        blocking(|| skopeo.push(&stack.image, &registry.host(), "acme/cache/alpine", "v1"));
    assert!(pushed.success, "{pushed}\n{}", log());

    // DELETE /v2/<name>/manifests/<digest> with a token asking for delete, as the API does it.
    let client = reqwest::Client::new();
    let response = client
        .get(format!("{}/jwt/auth", stack.app.address))
        .basic_auth(&token.token.username, Some(&token.secret))
        .query(&[
            ("service", "dependency_proxy"),
            ("scope", "repository:acme/cache/alpine:delete"),
        ])
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = response.json().await.unwrap();
    let jwt = body["token"].as_str().unwrap();
    let manifest = format!(
        "{}/v2/acme/cache/alpine/manifests/{}",
        registry.url(),
        stack.image.manifest_digest
    );
    let deleted = client
        .delete(&manifest)
        .bearer_auth(jwt)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 202, "{}", log());
    let gone = blocking(|| skopeo.inspect_digest(&registry.host(), "acme/cache/alpine", "v1"));
    assert!(gone.is_err(), "the manifest is gone\n{}", log());

    // A read-only virtual-registry token gets no delete: the registry refuses it.
    let reader = stack
        .app
        .create_token(Group, "acme", &["read_virtual_registry"])
        .await;
    let response = client
        .get(format!("{}/jwt/auth", stack.app.address))
        .basic_auth(&reader.token.username, Some(&reader.secret))
        .query(&[
            ("service", "dependency_proxy"),
            ("scope", "repository:acme/cache/alpine:delete"),
        ])
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = response.json().await.unwrap();
    let refused = client
        .delete(&manifest)
        .bearer_auth(body["token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401, "{}", log());
}
