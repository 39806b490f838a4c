//! Secret rotation against the real registry and skopeo (issue #27, item 4): a pipeline that
//! keeps pulling with a token's old secret loses no pull while the grace period lasts, is
//! refused once it is over, and the new secret pulls throughout. Rotating through the API,
//! as an operator's script does, while the pulls run.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use regauth::domain::NamespaceKind::Project;
use reqwest::Method;
use serde_json::json;

use super::helpers::eventually;
use super::support::{blocking, Skopeo, Stack, CREDENTIALS_REFUSED};

/// One pull of the loop: when it started (since the loop began) and how it ended.
struct Pull {
    started: Duration,
    outcome: regauth_test_support::e2e::CommandOutcome,
}

/// The grace period the rotation asks for: long enough for several pulls on a loaded machine.
const GRACE: Duration = Duration::from_secs(12);
/// A pull authenticates (asks regauth for a registry token) shortly after it starts; a pull
/// started this close before the grace period ends may authenticate after it, and is judged
/// neither way.
const AUTHENTICATES_WITHIN: Duration = Duration::from_secs(3);
/// How many pulls of the loop the test waits for before the rotation, and after the grace.
const PULLS_EACH_SIDE: usize = 2;

#[ignore = "needs docker-registry and skopeo: run by scripts/test.sh"]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_during_a_pull_loop_loses_no_pull_within_the_grace_and_refuses_the_old_secret_after(
) {
    let stack = Stack::start_with(|settings| {
        settings.tokens.rotation_grace = Duration::from_secs(3600);
    })
    .await;
    stack.app.create_project_with_groups("acme/web").await;
    let admin = stack.app.create_user("root", true, "api").await;
    let token = stack
        .app
        .create_token(Project, "acme/web", &["read_registry", "write_registry"])
        .await;
    let writer = stack.logged_in(&token);
    stack.expect(&stack.push(&writer, "acme/web/app"), true, "push the image");

    // The pipeline: pulls with the secret it holds (the old one), one after another. Each
    // finished pull is shared at once, so the test waits for pulls rather than for time.
    let stop = Arc::new(AtomicBool::new(false));
    let finished: Arc<Mutex<Vec<Pull>>> = Arc::default();
    let began = Instant::now();
    let pipeline = {
        let (stop, finished) = (Arc::clone(&stop), Arc::clone(&finished));
        let host = stack.host();
        let username = token.token.username.clone();
        let secret = token.secret.clone();
        std::thread::spawn(move || {
            let skopeo = Skopeo::new();
            while !stop.load(Ordering::Relaxed) {
                let dest = tempfile::tempdir().unwrap();
                let started = began.elapsed();
                let outcome = skopeo.pull_with_credentials(
                    &host,
                    "acme/web/app",
                    "v1",
                    dest.path(),
                    &username,
                    &secret,
                );
                finished.lock().unwrap().push(Pull { started, outcome });
            }
        })
    };
    // Pulls started from `since` on that have finished.
    let finished_since = |since: Duration| {
        let finished = Arc::clone(&finished);
        async move || {
            let pulls = finished.lock().unwrap();
            let count = pulls.iter().filter(|pull| pull.started >= since).count();
            (count >= PULLS_EACH_SIDE).then_some(())
        }
    };
    eventually(
        "a few pulls before the rotation",
        Duration::from_secs(60),
        finished_since(Duration::ZERO),
    )
    .await;
    let response = stack
        .app
        .api(
            Method::POST,
            &format!(
                "/projects/acme%2Fweb/deploy_tokens/{}/rotate",
                token.token.id
            ),
            &admin,
        )
        .json(&json!({"grace_period_seconds": GRACE.as_secs()}))
        .send()
        .await
        .unwrap();
    // The grace is counted from the rotation's own clock: from before the request at the latest.
    let rotated_before = began.elapsed();
    assert_eq!(response.status(), 200, "rotate");
    let rotated: serde_json::Value = response.json().await.unwrap();
    let rotated_after = began.elapsed();
    let new_secret = rotated["token"].as_str().unwrap().to_owned();
    let grace_ends = rotated_after + GRACE;

    // The new secret pulls at once, beside the pipeline still holding the old one.
    let fresh = Skopeo::new();
    let pull_with_new_secret = |when: &str| {
        let dest = tempfile::tempdir().unwrap();
        let outcome = blocking(|| {
            fresh.pull_with_credentials(
                &stack.host(),
                "acme/web/app",
                "v1",
                dest.path(),
                &token.token.username,
                &new_secret,
            )
        });
        stack.expect(&outcome, true, &format!("pull with the new secret {when}"));
    };
    pull_with_new_secret("during the grace period");

    // Run on until the grace period is over and the loop has pulled after it, then stop it.
    eventually(
        "pulls with the old secret after the grace period",
        GRACE + Duration::from_secs(60),
        finished_since(grace_ends),
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    blocking(|| pipeline.join().expect("the pull loop"));
    let pulls = std::mem::take(&mut *finished.lock().unwrap());

    let within: Vec<&Pull> = pulls
        .iter()
        .filter(|pull| pull.started + AUTHENTICATES_WITHIN < rotated_before + GRACE)
        .collect();
    let after: Vec<&Pull> = pulls
        .iter()
        .filter(|pull| pull.started >= grace_ends)
        .collect();
    let during_grace = within
        .iter()
        .filter(|pull| pull.started > rotated_after)
        .count();
    assert!(
        during_grace >= 2,
        "the loop must pull inside the grace period (only {during_grace} of {} pulls did)",
        pulls.len()
    );
    for pull in &within {
        stack.expect(
            &pull.outcome,
            true,
            &format!(
                "a pull with the old secret started at {:?} (rotation at {rotated_before:?}, grace {GRACE:?})",
                pull.started
            ),
        );
    }
    assert!(
        !after.is_empty(),
        "the loop must pull after the grace period"
    );
    for pull in &after {
        stack.expect_refused(
            &pull.outcome,
            CREDENTIALS_REFUSED,
            &format!(
                "a pull with the old secret started at {:?}, after the grace ended at {grace_ends:?}",
                pull.started
            ),
        );
    }

    // The new secret still pulls after the grace period.
    pull_with_new_secret("after the grace period");
}
