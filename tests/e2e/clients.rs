//! Every real client against the real registry with regauth as its token realm: skopeo,
//! podman, buildah, `ctr` (on a containerd the test starts) and docker (a dockerd the test
//! starts on such a containerd). The nine checks are written once, generic over [`Client`],
//! and [`every_check!`] runs them all in one test per client, `clients::<client>::every_check`.
//!
//! The checks of a client share one stack (regauth and the registry) and one client (its
//! store, and for ctr and docker its daemons): starting those for every check cost about a
//! fifth of these tests' CPU time. What a check proves stays its own: each works in a
//! top-level group named after it (`<check>/acme/web`), with tokens and users of its own, and
//! every image it builds has content no other check's has. A failing check does not stop the
//! next; the test fails at the end naming each one that failed.
//!
//! Like every test that needs tools beyond Rust, these are `#[ignore = "needs ..."]`: plain
//! `cargo test` lists them as ignored, `bash scripts/test.sh` runs them (`--run-ignored all`).
//! There, a client that is not installed or cannot start fails its tests with a message
//! saying so; nothing is skipped. Each failure message names the client and the step, shows the
//! client's commands and output, its versions / daemon log, and the registry's log.

use std::panic::AssertUnwindSafe;

use regauth::domain::NamespaceKind::{Group, Project};

use crate::helpers::CreatedToken;
use crate::support::{
    blocking, Buildah, Client, CommandOutcome, Ctr, Docker, ImageRef, Podman, SkopeoClient, Stack,
    Transfer, User,
};

const READ_WRITE: &[&str] = &["read_registry", "write_registry"];
const READ_ONLY: &[&str] = &["read_registry"];

/// Words a client's output shows when the registry or the realm refused it. A refusal for any
/// other reason (a broken command, a missing image) must not pass as "refused".
///
/// Seen: "HTTP Basic: Access denied" (regauth's 401, quoted by docker, podman, buildah and
/// skopeo), "invalid username/password" (containers/image logins), "requested access to the
/// resource is denied" / "authentication required" (the registry refusing our JWT's scope),
/// "failed to fetch oauth token: unexpected status: 401 Unauthorized" and
/// "insufficient_scope: authorization failed" (ctr).
const REFUSAL_MARKERS: &[&str] = &[
    "denied",
    "unauthorized",
    "authentication required",
    "insufficient_scope",
    "invalid username/password",
];

/// A stack (regauth + registry) and one client on it.
struct Scenario<C: Client> {
    client: C,
    stack: Stack,
    /// The running check's top-level group (`<check>/`): every namespace, token owner and
    /// repository the check names is below it.
    prefix: String,
}

impl<C: Client> Scenario<C> {
    /// Starts the stack, then the client. A client that cannot start fails the test (with its
    /// own message and the registry log); it is never skipped.
    async fn start(start: fn(&Stack) -> C) -> Scenario<C> {
        let stack = Stack::start().await;
        let started = blocking(|| std::panic::catch_unwind(AssertUnwindSafe(|| start(&stack))));
        match started {
            Ok(client) => Scenario {
                client,
                stack,
                prefix: String::new(),
            },
            Err(panic) => stack.fail(&format!(
                "the client could not start: {}",
                panic_message(panic.as_ref())
            )),
        }
    }

    fn assert_same_digest(&self, pulled: &str, pushed: &str, step: &str) {
        if pulled != pushed {
            self.stack.fail(&format!(
                "[{client}] {step}: the pulled manifest digest {pulled} differs from the pushed {pushed}\n--- {client} ---\n{}",
                self.client.diagnostics(),
                client = self.client.name(),
            ));
        }
    }

    fn app(&self) -> &crate::helpers::TestApp {
        &self.stack.app
    }

    async fn token(
        &self,
        kind: regauth::domain::NamespaceKind,
        owner: &str,
        scopes: &[&str],
    ) -> CreatedToken {
        self.app()
            .create_token(kind, &format!("{}{owner}", self.prefix), scopes)
            .await
    }

    fn image(&self, repo: &str, tag: &str) -> ImageRef {
        self.stack.image_ref(&format!("{}{repo}", self.prefix), tag)
    }

    async fn create_project(&self, path: &str) {
        self.app()
            .create_project_with_groups(&format!("{}{path}", self.prefix))
            .await;
    }

    async fn set_visibility(&self, path: &str, visibility: regauth::domain::Visibility) {
        self.app()
            .set_visibility(&format!("{}{path}", self.prefix), visibility)
            .await;
    }

    /// Content unique to this test run and check: the registry's port is private to the test
    /// and the repository to the check, so no blob is ever shared with another test or check
    /// (podman/buildah share one blob-info cache).
    fn seed(&self, image: &ImageRef) -> String {
        format!(
            "{} {} pid {}",
            self.client.name(),
            image,
            std::process::id()
        )
    }

    fn fail(&self, step: &str, outcome: &CommandOutcome) -> ! {
        self.stack.fail(&format!(
            "[{client}] {step}\n{outcome}\n--- {client} ---\n{diagnostics}",
            client = self.client.name(),
            diagnostics = self.client.diagnostics(),
        ))
    }

    /// Logs `user` in and expects success; clients without a login (ctr) skip this step.
    fn login_ok(&self, user: &User, step: &str) {
        if let Some(outcome) = blocking(|| self.client.login(user, &self.stack.host())) {
            if !outcome.success {
                self.fail(&format!("{step}: expected the login to succeed"), &outcome);
            }
        }
    }

    /// Expects the login to be refused. Returns false if the client has no login.
    fn login_refused(&self, user: &User, step: &str) -> bool {
        match blocking(|| self.client.login(user, &self.stack.host())) {
            None => false,
            Some(outcome) => {
                self.expect_refusal(&outcome, step, "login");
                true
            }
        }
    }

    fn expect_refusal(&self, outcome: &CommandOutcome, step: &str, what: &str) {
        if outcome.success {
            self.fail(
                &format!("{step}: expected the {what} to be refused, but it succeeded"),
                outcome,
            );
        }
        let text = format!("{}\n{}", outcome.stdout, outcome.stderr).to_lowercase();
        if !REFUSAL_MARKERS.iter().any(|m| text.contains(m)) {
            self.fail(
                &format!(
                    "{step}: the {what} failed, but not with an authorization error \
                     (none of {REFUSAL_MARKERS:?} in its output)"
                ),
                outcome,
            );
        }
    }

    /// Builds a fresh local image named `image` (must succeed: it needs no registry).
    fn build(&self, image: &ImageRef) {
        let seed = self.seed(image);
        let outcome = blocking(|| self.client.build(image, &seed));
        if !outcome.success {
            self.fail(
                &format!("building the local image {image} failed (no registry involved)"),
                &outcome,
            );
        }
    }

    /// Builds `image` and pushes it as `user`; expects success and returns the digest, after
    /// checking the registry serves that digest (read with skopeo and `auditor`).
    fn push_ok(&self, user: &User, image: &ImageRef, auditor: &CreatedToken, step: &str) -> String {
        self.build(image);
        let pushed = blocking(|| self.client.push(user, image));
        let digest = self.transfer_ok(&pushed, step, "push");
        let served = self.stack.registry_digest(auditor, &image.repo, &image.tag);
        if served != digest {
            self.fail(
                &format!("{step}: the client pushed {digest} but the registry serves {served}"),
                &pushed.outcome,
            );
        }
        digest
    }

    /// Builds `image` and pushes it as `user`; expects a refusal and that nothing was
    /// written: the tag does not exist (skopeo inspect with `auditor`) and, for a repository
    /// that did not exist before, the registry's storage has no directory for it.
    fn push_refused(&self, user: &User, image: &ImageRef, auditor: &CreatedToken, step: &str) {
        let repository_existed = self.stack.repository_dir(&image.repo).exists();
        self.build(image);
        let pushed = blocking(|| self.client.push(user, image));
        self.expect_refusal(&pushed.outcome, step, "push");
        self.stack.assert_tag_absent(
            auditor,
            &image.repo,
            &image.tag,
            &format!("[{}] {step}", self.client.name()),
        );
        let dir = self.stack.repository_dir(&image.repo);
        if !repository_existed && dir.exists() {
            self.fail(
                &format!(
                    "{step}: the refused push created {} in the registry's storage",
                    dir.display()
                ),
                &pushed.outcome,
            );
        }
    }

    fn pull_ok(&self, user: &User, image: &ImageRef, step: &str) -> String {
        let pulled = blocking(|| self.client.pull(user, image));
        self.transfer_ok(&pulled, step, "pull")
    }

    fn pull_refused(&self, user: &User, image: &ImageRef, step: &str) {
        let pulled = blocking(|| self.client.pull(user, image));
        self.expect_refusal(&pulled.outcome, step, "pull");
    }

    fn transfer_ok(&self, transfer: &Transfer, step: &str, what: &str) -> String {
        match (&transfer.digest, transfer.success()) {
            (Some(digest), true) => digest.clone(),
            _ => self.fail(
                &format!("{step}: expected the {what} to succeed"),
                &transfer.outcome,
            ),
        }
    }
}

/// The nine checks, each a complete test body for any client, run on a shared [`Scenario`]
/// below its own group (the paths they name are relative to [`Scenario::prefix`]).
mod checks {
    use super::*;

    /// 1. A login with a good token succeeds (ctr has none: a push with `--user U:P` works).
    pub async fn login_with_a_good_token_succeeds<C: Client>(s: &Scenario<C>) {
        s.create_project("acme/web").await;
        let token = s.token(Project, "acme/web", READ_WRITE).await;
        let user = s.stack.user(&token);
        match blocking(|| s.client.login(&user, &s.stack.host())) {
            Some(outcome) if outcome.success => {}
            Some(outcome) => s.fail("login with a good read+write token", &outcome),
            None => {
                s.push_ok(
                    &user,
                    &s.image("acme/web/app", "v1"),
                    &token,
                    "push with --user U:P of a good token (the client has no login)",
                );
            }
        }
    }

    /// 2. A login with a wrong secret is refused, and so is a pull with it.
    pub async fn login_with_a_wrong_secret_is_refused<C: Client>(s: &Scenario<C>) {
        s.create_project("acme/web").await;
        let token = s.token(Project, "acme/web", READ_WRITE).await;
        let good = s.stack.user(&token);
        let image = s.image("acme/web/app", "v1");
        s.login_ok(&good, "login with the good secret");
        s.push_ok(&good, &image, &token, "push with the good secret (setup)");

        let wrong = User::new(&token.token.username, &format!("{}x", token.secret));
        s.login_refused(&wrong, "login with a wrong secret");
        s.pull_refused(
            &wrong,
            &image,
            "pull after a refused login / with a wrong secret",
        );
    }

    /// 3. A push with a read+write token works, and the registry serves what was pushed.
    pub async fn push_with_a_read_write_token_works<C: Client>(s: &Scenario<C>) {
        s.create_project("acme/web").await;
        let token = s.token(Project, "acme/web", READ_WRITE).await;
        let user = s.stack.user(&token);
        s.login_ok(&user, "login with a read+write token");
        s.push_ok(
            &user,
            &s.image("acme/web", "v1"),
            &token,
            "push to the project's own repository",
        );
        s.push_ok(
            &user,
            &s.image("acme/web/app", "v1"),
            &token,
            "push to a repository below the project",
        );
    }

    /// 4. A push with a read-only token is refused and writes nothing.
    pub async fn push_with_a_read_only_token_is_refused_and_writes_nothing<C: Client>(
        s: &Scenario<C>,
    ) {
        s.create_project("acme/web").await;
        let writer = s.token(Project, "acme/web", READ_WRITE).await;
        let reader = s.token(Project, "acme/web", READ_ONLY).await;
        let user = s.stack.user(&reader);
        s.login_ok(&user, "login with a read-only token");
        s.push_refused(
            &user,
            &s.image("acme/web/readonly", "v1"),
            &writer,
            "push with a read-only token",
        );
    }

    /// 5. A pull with a read-only token gives the manifest digest that was pushed.
    pub async fn pull_with_a_read_only_token_gives_the_pushed_digest<C: Client>(s: &Scenario<C>) {
        s.create_project("acme/web").await;
        let writer_token = s.token(Project, "acme/web", READ_WRITE).await;
        let reader_token = s.token(Project, "acme/web", READ_ONLY).await;
        let image = s.image("acme/web/app", "v1");
        let writer = s.stack.user(&writer_token);
        s.login_ok(&writer, "login with a read+write token");
        let pushed = s.push_ok(
            &writer,
            &image,
            &writer_token,
            "push with a read+write token",
        );

        let reader = s.stack.user(&reader_token);
        s.login_ok(&reader, "login with a read-only token");
        let pulled = s.pull_ok(&reader, &image, "pull with a read-only token");
        s.assert_same_digest(&pulled, &pushed, "pull with a read-only token");
    }

    /// 6. A token of another project, and a group token of a sibling group, are refused
    ///    (pull and push) — although their logins succeed, since a login proves only the
    ///    credentials.
    pub async fn tokens_of_another_project_and_of_a_sibling_group_are_refused<C: Client>(
        s: &Scenario<C>,
    ) {
        s.create_project("acme/platform/web").await;
        s.create_project("acme/platform/other").await;
        s.create_project("acme/marketing/site").await;
        let owner_token = s.token(Project, "acme/platform/web", READ_WRITE).await;
        let other_project = s.token(Project, "acme/platform/other", READ_WRITE).await;
        let sibling_group = s.token(Group, "acme/marketing", READ_WRITE).await;

        let owner = s.stack.user(&owner_token);
        s.login_ok(&owner, "login of the project's own token");
        let image = s.image("acme/platform/web", "v1");
        s.push_ok(
            &owner,
            &image,
            &owner_token,
            "push by the project's own token (setup)",
        );

        for (token, who) in [
            (
                &other_project,
                "a token of another project (acme/platform/other)",
            ),
            (
                &sibling_group,
                "a group token of the sibling group acme/marketing",
            ),
        ] {
            let user = s.stack.user(token);
            s.login_ok(&user, &format!("login of {who} (valid credentials)"));
            s.pull_refused(
                &user,
                &image,
                &format!("pull of acme/platform/web by {who}"),
            );
            let tag = format!("by-{}", token.token.id);
            s.push_refused(
                &user,
                &s.image("acme/platform/web", &tag),
                &owner_token,
                &format!("push to acme/platform/web by {who}"),
            );
        }
    }

    /// 7. A group token reaches a project two subgroups down.
    pub async fn a_group_token_reaches_a_project_two_subgroups_down<C: Client>(s: &Scenario<C>) {
        s.create_project("acme/platform/infra/deploy").await;
        let token = s.token(Group, "acme", READ_WRITE).await;
        let user = s.stack.user(&token);
        let image = s.image("acme/platform/infra/deploy", "v1");
        s.login_ok(&user, "login with the group token of acme");
        let pushed = s.push_ok(
            &user,
            &image,
            &token,
            "push to acme/platform/infra/deploy with the acme group token",
        );
        let pulled = s.pull_ok(
            &user,
            &image,
            "pull of acme/platform/infra/deploy with the acme group token",
        );
        s.assert_same_digest(&pulled, &pushed, "pull with the acme group token");
    }

    /// 8. A revoked token is refused at once: the very next operation fails.
    pub async fn a_revoked_token_is_refused_at_once<C: Client>(s: &Scenario<C>) {
        s.create_project("acme/web").await;
        let token = s.token(Project, "acme/web", READ_WRITE).await;
        let auditor = s.token(Project, "acme/web", READ_ONLY).await;
        let user = s.stack.user(&token);
        let image = s.image("acme/web/app", "v1");
        s.login_ok(&user, "login before revocation");
        s.push_ok(&user, &image, &auditor, "push before revocation");

        s.app().revoke(token.token.id).await;
        s.pull_refused(&user, &image, "pull right after revocation");
        s.push_refused(
            &user,
            &s.image("acme/web/app", "v2"),
            &auditor,
            "push after revocation",
        );
        s.login_refused(&user, "login after revocation");
    }

    /// 9. A public project is pulled without a login (the same digest); before it was made
    ///    public the same pull was refused, and an anonymous push is refused and writes
    ///    nothing.
    pub async fn a_public_project_is_pulled_without_a_login_and_never_pushed<C: Client>(
        s: &Scenario<C>,
    ) {
        s.create_project("acme/web").await;
        let writer_token = s.token(Project, "acme/web", READ_WRITE).await;
        let image = s.image("acme/web/app", "v1");
        let writer = s.stack.user(&writer_token);
        s.login_ok(&writer, "login with a read+write token");
        let pushed = s.push_ok(
            &writer,
            &image,
            &writer_token,
            "push with a read+write token",
        );

        let anonymous = User::new("", "");
        s.pull_refused(&anonymous, &image, "anonymous pull of a private project");
        s.set_visibility("acme/web", regauth::domain::Visibility::Public)
            .await;
        let pulled = s.pull_ok(&anonymous, &image, "anonymous pull of a public project");
        s.assert_same_digest(&pulled, &pushed, "anonymous pull of a public project");
        s.push_refused(
            &anonymous,
            &s.image("acme/web/anonymous", "v1"),
            &writer_token,
            "anonymous push into a public project",
        );
    }
}

/// `clients::$client::every_check`: the nine checks on one stack and one `$client` (started
/// with `$start`), one after the other, each in a namespace of its own. A failing check does
/// not stop the others: the test fails at the end, naming every check that failed (each
/// check's own message is printed as it fails).
macro_rules! every_check {
    ($client:ident, $start:expr) => {
        mod $client {
            use super::*;

            fn start(stack: &Stack) -> impl Client {
                #[allow(clippy::redundant_closure_call)]
                ($start)(stack)
            }

            #[ignore = "needs docker-registry and the real client (root for ctr and docker): run by scripts/test.sh"]
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn every_check() {
                let mut s = Scenario::start(start).await;
                let mut failed = Vec::new();
                every_check!(@run s, failed;
                    login_with_a_good_token_succeeds,
                    login_with_a_wrong_secret_is_refused,
                    push_with_a_read_write_token_works,
                    push_with_a_read_only_token_is_refused_and_writes_nothing,
                    pull_with_a_read_only_token_gives_the_pushed_digest,
                    tokens_of_another_project_and_of_a_sibling_group_are_refused,
                    a_group_token_reaches_a_project_two_subgroups_down,
                    a_revoked_token_is_refused_at_once,
                    a_public_project_is_pulled_without_a_login_and_never_pushed,
                );
                assert!(
                    failed.is_empty(),
                    "[{}] {} of the nine checks failed (each one's message is above):\n{}",
                    s.client.name(),
                    failed.len(),
                    failed.join("\n")
                );
            }
        }
    };
    (@run $s:ident, $failed:ident; $($check:ident),* $(,)?) => {
        $(
            // Its own top-level group: `<check>/acme/...`.
            $s.prefix = format!("{}/", stringify!($check).replace('_', "-"));
            if let Err(message) = caught(checks::$check(&$s)).await {
                let first_line = message.lines().next().unwrap_or_default().to_owned();
                $failed.push(format!("{}: {first_line}", stringify!($check)));
            }
        )*
    };
}

/// Runs `check` to completion; a panic (a failed assertion) becomes `Err` with its message.
async fn caught(check: impl std::future::Future<Output = ()>) -> Result<(), String> {
    let mut check = std::pin::pin!(check);
    std::future::poll_fn(|cx| {
        match std::panic::catch_unwind(AssertUnwindSafe(|| check.as_mut().poll(cx))) {
            Ok(std::task::Poll::Ready(())) => std::task::Poll::Ready(Ok(())),
            Ok(std::task::Poll::Pending) => std::task::Poll::Pending,
            Err(panic) => std::task::Poll::Ready(Err(panic_message(panic.as_ref()).to_owned())),
        }
    })
    .await
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("<no message>")
}

every_check!(skopeo, |_: &Stack| SkopeoClient::start());
every_check!(podman, |stack: &Stack| Podman::start(&stack.host()));
every_check!(buildah, |stack: &Stack| Buildah::start(&stack.host()));
every_check!(ctr, |_: &Stack| Ctr::start());
every_check!(docker, |_: &Stack| Docker::start());
