//! Token uses are aggregated in per-thread slots (no wake-up per request) and collected by the
//! writer: every use must still reach the audit trail exactly once, on the timer and when the
//! recorder stops.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use regauth::domain::NamespaceKind::Project;
use regauth::service::usage::{TokenUse, UsageRecorder};

use crate::helpers::{spawn_app, CreatedToken, TestApp};

fn token_use(token: &CreatedToken, address: String) -> TokenUse {
    TokenUse {
        deploy_token_id: token.token.id,
        namespace_id: token.token.owner.id,
        username: token.token.username.clone(),
        at: Utc::now(),
        ip_address: Some(address),
        service: "container_registry".into(),
        granted: "repository:acme/web:pull".into(),
        marks_last_used: true,
    }
}

/// The `registry_token.issue` records of the token: (address, count) each.
async fn issue_counts(app: &TestApp, token: &CreatedToken) -> Vec<(String, u64)> {
    app.store
        .audit_events_for_deploy_token(token.token.id)
        .await
        .unwrap()
        .iter()
        .filter(|event| event.action.as_str() == "registry_token.issue")
        .map(|event| {
            (
                event.ip_address.clone().unwrap_or_default(),
                event.details["count"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn uses_recorded_on_many_threads_at_once_are_written_exactly_once_when_the_recorder_stops() {
    const THREADS: u64 = 8;
    const USES_PER_THREAD: u64 = 5_000;
    let app = spawn_app().await;
    app.create_project_with_groups("acme/web").await;
    let token = Arc::new(
        app.create_token(Project, "acme/web", &["read_registry"])
            .await,
    );
    // An interval longer than the test: only the final flush writes.
    let (recorder, writer) =
        UsageRecorder::start(Arc::clone(&app.store), Duration::from_secs(3600));
    let threads: Vec<_> = (0..THREADS)
        .map(|thread| {
            let recorder = recorder.clone();
            let token = Arc::clone(&token);
            std::thread::spawn(move || {
                for i in 0..USES_PER_THREAD {
                    // Two addresses per thread, one of them shared by all threads.
                    let address = if i % 2 == 0 {
                        "10.0.0.1".to_owned()
                    } else {
                        format!("10.0.1.{thread}")
                    };
                    recorder.record(token_use(&token, address));
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    drop(recorder);
    writer.await.unwrap();

    let counts = issue_counts(&app, &token).await;
    let total: u64 = counts.iter().map(|(_, count)| count).sum();
    assert_eq!(total, THREADS * USES_PER_THREAD, "{counts:?}");
    let shared: u64 = counts
        .iter()
        .filter(|(address, _)| address == "10.0.0.1")
        .map(|(_, count)| count)
        .sum();
    assert_eq!(shared, THREADS * USES_PER_THREAD / 2);
    for thread in 0..THREADS {
        let own: u64 = counts
            .iter()
            .filter(|(address, _)| *address == format!("10.0.1.{thread}"))
            .map(|(_, count)| count)
            .sum();
        assert_eq!(own, USES_PER_THREAD / 2, "thread {thread}: {counts:?}");
    }
}

#[tokio::test]
async fn a_use_is_written_on_the_timer_with_no_further_request_and_only_once() {
    let app = spawn_app().await;
    app.create_project_with_groups("acme/web").await;
    let token = app
        .create_token(Project, "acme/web", &["read_registry"])
        .await;
    let (recorder, writer) =
        UsageRecorder::start(Arc::clone(&app.store), Duration::from_millis(50));
    recorder.record(token_use(&token, "10.0.0.9".into()));
    // Nothing else happens: the writer's own timer collects the slot.
    let mut counts = Vec::new();
    for _ in 0..200 {
        counts = issue_counts(&app, &token).await;
        if !counts.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(counts, vec![("10.0.0.9".to_owned(), 1)]);
    drop(recorder);
    writer.await.unwrap();
    assert_eq!(
        issue_counts(&app, &token).await,
        vec![("10.0.0.9".to_owned(), 1)],
        "a collected use is not written again at the stop"
    );
}

/// Through the server: concurrent token requests on both HTTP workers, each counted once.
#[tokio::test]
async fn every_token_request_served_is_counted_once_in_the_audit_trail() {
    const REQUESTS: u64 = 200;
    let app = spawn_app().await;
    app.create_project_with_groups("acme/web").await;
    let token = app
        .create_token(Project, "acme/web", &["read_registry"])
        .await;
    let mut requests = tokio::task::JoinSet::new();
    for _ in 0..REQUESTS {
        let request = app
            .client
            .get(format!("{}/jwt/auth", app.address))
            .query(&[
                ("service", "container_registry"),
                ("scope", "repository:acme/web/app:pull"),
            ])
            .basic_auth(&token.token.username, Some(&token.secret));
        requests.spawn(async move { request.send().await.unwrap().status() });
    }
    while let Some(status) = requests.join_next().await {
        assert_eq!(status.unwrap(), 200);
    }
    let mut total = 0;
    for _ in 0..100 {
        total = issue_counts(&app, &token)
            .await
            .iter()
            .map(|(_, count)| count)
            .sum();
        if total >= REQUESTS {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(total, REQUESTS);
}
