//! The registry's notifications with real parts: Debian's registry (distribution 2.8)
//! configured with the `notifications:` block `regauth serve` prints, skopeo pushing and
//! pulling with deploy tokens, and the trail showing exactly those tags and digests for
//! exactly those tokens. The receiving regauth is a process of its own (a replica on the same
//! database as the realm), stopped while the registry keeps pushing and started again: the
//! registry's retries land, and nothing is counted twice. A second endpoint with a wrong
//! secret is refused throughout.

use std::time::{Duration, Instant};

use regauth::config::RegistryEventsSecret;
use regauth::domain::NamespaceKind::Project;
use reqwest::Method;
use serde_json::Value;

use crate::helpers::{spawn_app_with, CreatedToken, TestApp};
use crate::server::ServerProcess;
use crate::support::{
    blocking, free_loopback_port, write_oci_image, CommandOutcome, OciImage, Registry,
    RegistryOptions, Skopeo,
};

const SECRET: &str = "Bearer e2e-registry-events-secret";
/// The endpoint's name in the printed `notifications:` block.
const ENDPOINT: &str = "regauth";

/// The `notifications:` block from `regauth serve`'s banner, with the secret filled in.
fn printed_notifications_block(stdout: &str) -> String {
    let mut lines = stdout.lines().skip_while(|line| *line != "notifications:");
    let mut block = vec![lines
        .next()
        .expect("serve prints a notifications: block")
        .to_owned()];
    block.extend(
        lines
            .take_while(|line| line.starts_with(' '))
            .map(str::to_owned),
    );
    let block = block.join("\n");
    assert!(
        block.contains("<the value of registry_events_secret>"),
        "{block}"
    );
    block.replace(
        "\"<the value of registry_events_secret>\"",
        &serde_json::to_string(SECRET).unwrap(),
    )
}

/// One `(action, target, tag, digest)` per event of the token, with its count.
async fn trail(
    app: &TestApp,
    admin: &str,
    token: &CreatedToken,
) -> Vec<(String, String, String, String, i64)> {
    let events: Vec<Value> = app
        .api(
            Method::GET,
            &format!(
                "/projects/acme%2Fweb/deploy_tokens/{}/events?per_page=100",
                token.token.id
            ),
            admin,
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let text = |value: &Value| value.as_str().unwrap_or("").to_owned();
    let mut rows: Vec<_> = events
        .iter()
        .map(|event| {
            (
                text(&event["action"]),
                text(&event["target"]),
                text(&event["tag"]),
                text(&event["digest"]),
                event["count"].as_i64().unwrap(),
            )
        })
        .collect();
    rows.sort();
    rows
}

async fn wait_for<T>(
    what: &str,
    registry: &Registry,
    mut check: impl AsyncFnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not within 60 s\n--- registry log ---\n{}",
            registry.log()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn expect(outcome: &CommandOutcome, what: &str, registry: &Registry) {
    assert!(
        outcome.success,
        "{what}\n{outcome}\n--- registry log ---\n{}",
        registry.log()
    );
}

fn manifest_push(image: &OciImage, tag: &str) -> (String, String, String, String, i64) {
    (
        "push".into(),
        "manifest".into(),
        tag.into(),
        image.manifest_digest.clone(),
        1,
    )
}

fn blob_push(digest: &str) -> (String, String, String, String, i64) {
    (
        "push".into(),
        "blob".into(),
        String::new(),
        digest.into(),
        1,
    )
}

#[ignore = "needs docker-registry and skopeo: run by scripts/test.sh"]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_trail_shows_what_each_token_did_and_retries_after_an_outage_land_once() {
    trail_through_an_outage(None).await;
}

/// The same with distribution 3.x (`REGAUTH_REGISTRY3_BIN`; its `…events.v2+json` envelopes):
/// `scripts/check-registry3.sh` builds one, then `cargo nextest run --features
/// registry3-check --test e2e -E 'test(registry3_notifications)'`.
#[cfg(feature = "registry3-check")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry3_notifications_trail_through_an_outage() {
    trail_through_an_outage(Some(crate::token_header::registry3_binary())).await;
}

/// `binary`: the registry to run (`None`: Debian's 2.8).
async fn trail_through_an_outage(binary: Option<std::path::PathBuf>) {
    let app = spawn_app_with(|settings| {
        settings.registry.events_secret = Some(RegistryEventsSecret::parse(SECRET).unwrap());
    })
    .await;
    app.create_project_with_groups("acme/web").await;
    let admin = app.create_user("root", true, "api").await;
    let writer = app
        .create_token(Project, "acme/web", &["read_registry", "write_registry"])
        .await;
    let reader = app
        .create_token_with(Project, "acme/web", &["read_registry"], Some("web-reader"))
        .await;
    let bystander = app
        .create_token(Project, "acme/web", &["read_registry"])
        .await;

    // The receiver: another regauth on the same database and keys, on a port of its own.
    let receiver_dir = tempfile::tempdir().unwrap();
    let listen = format!("127.0.0.1:{}", free_loopback_port());
    let keys = app.settings.signing.keys_dir.display().to_string();
    let ci_key = app
        .settings
        .signing
        .ci_secret_key_file()
        .display()
        .to_string();
    let env = [
        ("REGAUTH_DATABASE_URL", app.settings.database.url.as_str()),
        ("REGAUTH_KEYS_DIR", keys.as_str()),
        ("REGAUTH_CI_SECRET_KEY_FILE", ci_key.as_str()),
        ("REGAUTH_REGISTRY_EVENTS_SECRET", SECRET),
        ("REGAUTH_LISTEN", listen.as_str()),
    ];
    let mut receiver = ServerProcess::start(receiver_dir.path(), &env);
    let mut notifications = printed_notifications_block(&receiver.stdout());
    // A second endpoint whose secret is wrong: refused every time, never recorded.
    notifications.push_str(&format!(
        "\n    - name: wrong-secret\n      url: http://{listen}/api/v4/container_registry_event/events\n      \
         headers:\n        Authorization: [\"Bearer not-the-registry-events-secret\"]\n      \
         timeout: 2s\n      threshold: 5\n      backoff: 1s"
    ));
    let registry = Registry::start(RegistryOptions {
        realm: format!("{}/jwt/auth", app.address),
        service: "container_registry".into(),
        issuer: app.settings.signing.issuer.clone(),
        root_cert_bundle: app.settings.signing.keys_dir.join("bundle.crt"),
        extra_config: notifications,
        binary,
        debug: true,
        ..RegistryOptions::default()
    });
    let host = registry.host();
    let images = tempfile::tempdir().unwrap();
    let first = write_oci_image(&images.path().join("first"), "regauth events one", "v1");
    let second = write_oci_image(&images.path().join("second"), "regauth events two", "v2");

    let writer_skopeo = Skopeo::new();
    expect(
        &blocking(|| writer_skopeo.login(&host, &writer.token.username, &writer.secret)),
        "writer login",
        &registry,
    );
    let reader_skopeo = Skopeo::new();
    expect(
        &blocking(|| reader_skopeo.login(&host, &reader.token.username, &reader.secret)),
        "reader login",
        &registry,
    );
    expect(
        &blocking(|| writer_skopeo.push(&first, &host, "acme/web/app", "v1")),
        "push v1 with the read+write token",
        &registry,
    );
    let pulled = tempfile::tempdir().unwrap();
    expect(
        &blocking(|| reader_skopeo.pull(&host, "acme/web/app", "v1", pulled.path())),
        "pull v1 with the read-only token",
        &registry,
    );
    // Delivery is not ordered: until the manifest and both blobs (config, layer) are in.
    let reader_trail = wait_for("the reader's pulls in the trail", &registry, async || {
        let rows = trail(&app, &admin, &reader).await;
        let blobs: i64 = rows
            .iter()
            .filter(|row| row.1 == "blob")
            .map(|row| row.4)
            .sum();
        (rows.iter().any(|row| row.1 == "manifest") && blobs >= 2).then_some(rows)
    })
    .await;
    assert!(
        reader_trail.iter().all(|row| row.0 == "pull"),
        "the reader only pulled: {reader_trail:#?}"
    );
    assert!(
        reader_trail
            .iter()
            .any(|row| row.1 == "manifest" && row.3 == first.manifest_digest),
        "{reader_trail:#?}"
    );
    // Config and layer: one row for the day, counting both.
    let blob_pulls: i64 = reader_trail
        .iter()
        .filter(|row| row.1 == "blob")
        .map(|row| row.4)
        .sum();
    assert_eq!(blob_pulls, 2, "{reader_trail:#?}");

    // The receiver goes away; the registry keeps taking pushes and retries its notifications.
    receiver.terminate();
    assert!(receiver.wait(Duration::from_secs(30)).success());
    let before = registry.notification_endpoint(ENDPOINT).await;
    expect(
        &blocking(|| writer_skopeo.push(&second, &host, "acme/web/app", "v2")),
        "push v2 while the receiver is down",
        &registry,
    );
    // The registry has tried to deliver since the receiver went away, and failed.
    wait_for(
        "a failed delivery to the stopped receiver",
        &registry,
        async || {
            let now = registry.notification_endpoint(ENDPOINT).await;
            (now.errors > before.errors && now.pending > 0).then_some(())
        },
    )
    .await;
    assert!(
        !trail(&app, &admin, &writer)
            .await
            .contains(&manifest_push(&second, "v2")),
        "v2 cannot be in the trail while the receiver is down"
    );
    let receiver = ServerProcess::start(receiver_dir.path(), &env);

    let expected: Vec<_> = {
        let mut rows = vec![
            manifest_push(&first, "v1"),
            manifest_push(&second, "v2"),
            blob_push(&first.config_digest),
            blob_push(&first.layer_digest),
            blob_push(&second.config_digest),
            blob_push(&second.layer_digest),
        ];
        rows.sort();
        rows
    };
    let pushes_of = |rows: &[(String, String, String, String, i64)]| -> Vec<_> {
        rows.iter().filter(|row| row.0 == "push").cloned().collect()
    };
    let writer_trail = wait_for("v2's pushes after the restart", &registry, async || {
        let rows = trail(&app, &admin, &writer).await;
        (pushes_of(&rows).len() >= expected.len()).then_some(rows)
    })
    .await;
    // Nothing is left for the registry to retry (a batch stays queued until it is answered
    // with a 2xx): any retry has landed by now, and must not have counted twice.
    wait_for(
        "the registry's queue to the receiver to drain",
        &registry,
        async || (registry.notification_endpoint(ENDPOINT).await.pending == 0).then_some(()),
    )
    .await;
    let writer_trail_after = trail(&app, &admin, &writer).await;
    assert_eq!(writer_trail, writer_trail_after);
    assert_eq!(
        pushes_of(&writer_trail),
        expected,
        "exactly what was pushed, once each"
    );
    assert!(trail(&app, &admin, &bystander).await.is_empty());
    // Each push linked to the registry token regauth issued for it, from skopeo's address.
    let events: Vec<Value> = app
        .api(
            Method::GET,
            &format!(
                "/projects/acme%2Fweb/deploy_tokens/{}/events?per_page=100",
                writer.token.id
            ),
            &admin,
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for event in &events {
        assert_eq!(event["address"], "127.0.0.1", "{event:#}");
        assert_eq!(event["issued_token"]["match"], "same_address", "{event:#}");
        assert!(
            event["issued_token"]["granted"]
                .as_str()
                .unwrap()
                .contains("repository:acme/web/app:"),
            "{event:#}"
        );
    }

    let metrics = app
        .client
        .get(format!("{}/metrics", receiver.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let counter = |name: &str| -> u64 {
        metrics
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|value| value.trim().parse().ok())
            .unwrap_or(0)
    };
    assert!(
        counter("regauth_registry_event_envelopes_total{outcome=\"unauthorized\"}") > 0,
        "the wrong-secret endpoint is refused:\n{metrics}"
    );
    drop(receiver);
}
