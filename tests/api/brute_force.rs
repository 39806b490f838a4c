//! Brute-force protection: failed logins (and only those) per client address and per
//! username, escalating delay, then 429 with `Retry-After`, shared by replicas through the
//! database, audited without the secret. Other client addresses are real: the tests bind
//! their client sockets to 127.0.0.2, 127.0.0.3, ... (all loopback on Linux).

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use regauth::config::Settings;
use regauth::domain::NamespaceKind::Project;
use reqwest::{Method, Response, StatusCode};
use serde_json::Value;

use crate::helpers::{spawn_app_with, CreatedToken, TestApp};

const REGISTRY: &str = "container_registry";

fn limits(per_address: u32, per_username: u32) -> impl FnOnce(&mut Settings) {
    move |settings| {
        settings.login.throttle.max_failures_per_address = per_address;
        settings.login.throttle.max_failures_per_username = per_username;
    }
}

/// A client whose connections come from 127.0.0.`last`.
fn client_from(last: u8) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, last)))
        .build()
        .unwrap()
}

async fn login(app: &TestApp, client: &reqwest::Client, username: &str, secret: &str) -> Response {
    client
        .get(format!("{}/jwt/auth", app.address))
        .query(&[("service", REGISTRY), ("scope", "repository:acme/web:pull")])
        .basic_auth(username, Some(secret))
        .send()
        .await
        .unwrap()
}

async fn world(customise: impl FnOnce(&mut Settings)) -> (TestApp, CreatedToken) {
    let app = spawn_app_with(customise).await;
    app.create_project_with_groups("acme/web").await;
    let token = app
        .create_token(Project, "acme/web", &["read_registry"])
        .await;
    (app, token)
}

fn retry_after(response: &Response) -> u64 {
    response
        .headers()
        .get("retry-after")
        .expect("Retry-After on 429")
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn a_burst_of_wrong_secrets_gets_429_with_retry_after_and_a_valid_token_from_elsewhere_is_unaffected(
) {
    let (app, token) = world(limits(5, 0)).await;
    let attacker = client_from(1);
    let username = token.token.username.as_str();
    for attempt in 1..=5 {
        let response = login(&app, &attacker, username, "gldt-wrong-guess").await;
        assert_eq!(response.status(), 401, "guess {attempt}");
    }
    let refused = login(&app, &attacker, username, "gldt-wrong-guess").await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait = retry_after(&refused);
    assert!((1..=300).contains(&wait), "Retry-After {wait}");
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["errors"][0]["code"], "TOO_MANY_REQUESTS", "{body}");
    // The address is locked for wrong secrets, on every route that checks them; the right
    // secret (192 random bits, which no guessing finds) is still served, so that a guesser
    // behind the same NAT cannot lock a CI fleet out.
    let right = login(&app, &attacker, username, &token.secret).await;
    assert_eq!(right.status(), 200);
    let wrong_grant = attacker
        .post(format!("{}/jwt/auth", app.address))
        .form(&[
            ("grant_type", "password"),
            ("username", username),
            ("password", "gldt-wrong-guess"),
            ("service", REGISTRY),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_grant.status(), 429);
    let password_grant = attacker
        .post(format!("{}/jwt/auth", app.address))
        .form(&[
            ("grant_type", "password"),
            ("username", username),
            ("password", token.secret.as_str()),
            ("service", REGISTRY),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(password_grant.status(), 200);
    // The same token from another address is served as usual.
    let elsewhere = login(&app, &client_from(2), username, &token.secret).await;
    assert_eq!(elsewhere.status(), 200);
    let text = app.metrics_text().await;
    assert!(
        text.contains("regauth_login_lockouts_total{key=\"address\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("regauth_login_failures_total{route=\"registry\"} 5"),
        "{text}"
    );
    assert!(
        text.contains("regauth_registry_token_requests_total{service=\"container_registry\",outcome=\"throttled\"} 2"),
        "{text}"
    );
}

#[tokio::test]
async fn a_ci_running_parallel_pulls_with_a_valid_token_is_never_counted_or_delayed() {
    // A generous wait for a pooled connection: this test is about the login guard, not about
    // 200 requests sharing a test pool of 5 connections on a loaded machine.
    let (app, token) = world(|settings| {
        limits(2, 2)(settings);
        settings.database.acquire_timeout = Duration::from_secs(120);
    })
    .await;
    let client = client_from(1);
    let mut pulls = tokio::task::JoinSet::new();
    for _ in 0..200 {
        let request = client
            .get(format!("{}/jwt/auth", app.address))
            .query(&[("service", REGISTRY), ("scope", "repository:acme/web:pull")])
            .basic_auth(&token.token.username, Some(&token.secret));
        pulls.spawn(async move { request.send().await.unwrap().status() });
    }
    while let Some(status) = pulls.join_next().await {
        assert_eq!(status.unwrap(), 200);
    }
    let text = app.metrics_text().await;
    assert!(
        text.contains("regauth_login_failures_total{route=\"registry\"} 0"),
        "{text}"
    );
    assert!(text.contains("regauth_login_delayed_total 0"), "{text}");
    assert!(
        text.contains("regauth_login_throttled_total{reason=\"locked\"} 0"),
        "{text}"
    );
}

#[tokio::test]
async fn unknown_and_known_usernames_get_the_same_answers() {
    let (app, token) = world(limits(0, 3)).await;
    let client = client_from(1);
    let known = token.token.username.as_str();
    let unknown = "gitlab+deploy-token-4242";
    let answer = |response: Response| async move {
        let status = response.status();
        let challenge = response.headers().get("www-authenticate").cloned();
        let has_retry_after = response.headers().contains_key("retry-after");
        let body = response.text().await.unwrap();
        (status, challenge, has_retry_after, body)
    };
    for attempt in 1..=4 {
        let for_known = answer(login(&app, &client, known, "gldt-wrong").await).await;
        let for_unknown = answer(login(&app, &client, unknown, "gldt-wrong").await).await;
        assert_eq!(for_known, for_unknown, "attempt {attempt}");
        let expected = if attempt <= 3 { 401 } else { 429 };
        assert_eq!(for_known.0, expected, "attempt {attempt}");
        assert_eq!(for_known.2, attempt > 3, "Retry-After on 429 only");
    }
    // Another username from the same address is not locked by these.
    let other = app
        .create_token(Project, "acme/web", &["read_registry"])
        .await;
    assert_eq!(
        login(&app, &client, &other.token.username, &other.secret)
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn a_username_guessed_from_many_addresses_locks_each_of_them_but_not_the_real_client() {
    let (app, token) = world(limits(0, 3)).await;
    let username = token.token.username.as_str();
    for last in 1..=3 {
        let response = login(&app, &client_from(last), username, "gldt-wrong").await;
        assert_eq!(response.status(), 401);
    }
    // The username is locked for every address that failed...
    for last in 1..=3 {
        let response = login(&app, &client_from(last), username, "gldt-wrong").await;
        assert_eq!(response.status(), 429, "127.0.0.{last}");
    }
    // ... but the CI with the real secret, from an address without failures, is served.
    assert_eq!(
        login(&app, &client_from(9), username, &token.secret)
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn a_lockout_is_seen_by_a_second_replica_on_the_same_database() {
    const LIMIT: u32 = 20;
    let (first, token) = world(limits(LIMIT, 0)).await;
    let attacker = client_from(1);
    let username = token.token.username.as_str();
    for _ in 0..LIMIT {
        login(&first, &attacker, username, "gldt-wrong").await;
    }
    assert_eq!(
        login(&first, &attacker, username, "gldt-wrong")
            .await
            .status(),
        429
    );
    let database_url = first.settings.database.url.clone();
    let keys_dir = first.settings.signing.keys_dir.clone();
    let second = spawn_app_with(move |settings| {
        limits(LIMIT, 0)(settings);
        settings.database.url = database_url;
        settings.signing.keys_dir = keys_dir;
    })
    .await;
    // Wrong guesses at the second replica: it answers 401 (and counts them) until it has read
    // the first replica's failures from the database, then 429 — long before its own guesses
    // alone could reach the limit.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut own_failures = 0;
    loop {
        let response = login(&second, &attacker, username, "gldt-wrong").await;
        if response.status() == 429 {
            assert!(retry_after(&response) >= 1);
            break;
        }
        assert_eq!(response.status(), 401);
        own_failures += 1;
        assert!(
            Instant::now() < deadline && own_failures < LIMIT,
            "the second replica never saw the lockout"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // The right secret is served from there as from anywhere.
    for client in [attacker, client_from(2)] {
        assert_eq!(
            login(&second, &client, username, &token.secret)
                .await
                .status(),
            200
        );
    }
}

#[tokio::test]
async fn the_api_and_the_refresh_grant_count_failures_and_answer_429_in_their_shapes() {
    let (app, _) = world(limits(3, 0)).await;
    let pat = app.create_user("alice", false, "api").await;
    let api = |client: &reqwest::Client, secret: &str| {
        client
            .request(Method::GET, format!("{}/api/v4/user", app.address))
            .header("PRIVATE-TOKEN", secret)
            .send()
    };
    let attacker = client_from(1);
    for _ in 0..3 {
        assert_eq!(api(&attacker, "glpat-wrong").await.unwrap().status(), 401);
    }
    let refused = api(&attacker, "glpat-wrong").await.unwrap();
    assert_eq!(refused.status(), 429);
    assert!(retry_after(&refused) >= 1);
    assert_eq!(
        refused.json::<Value>().await.unwrap(),
        serde_json::json!({"message": "429 Too Many Requests"})
    );
    // A valid token is served from the locked address and from anywhere else.
    assert_eq!(api(&attacker, &pat).await.unwrap().status(), 200);
    assert_eq!(api(&client_from(2), &pat).await.unwrap().status(), 200);
    // No credentials at all is not a failed login (docker asks anonymously first).
    let anonymous = client_from(3);
    for _ in 0..10 {
        let response = anonymous
            .get(format!("{}/jwt/auth?service={REGISTRY}", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401);
    }
    let refresh = |client: &reqwest::Client| {
        client
            .post(format!("{}/jwt/auth", app.address))
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", "regauth-rt-wrong"),
                ("service", REGISTRY),
            ])
            .send()
    };
    for _ in 0..3 {
        assert_eq!(refresh(&anonymous).await.unwrap().status(), 401);
    }
    let refused = refresh(&anonymous).await.unwrap();
    assert_eq!(refused.status(), 429);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["errors"][0]["code"], "TOO_MANY_REQUESTS");
}

#[tokio::test]
async fn refused_logins_are_audited_with_address_and_username_but_never_the_secret() {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    let (app, _) = world(limits(3, 0)).await;
    let attacker = client_from(1);
    for _ in 0..3 {
        login(
            &app,
            &attacker,
            "gitlab+deploy-token-77",
            "gldt-SECRETGUESS",
        )
        .await;
    }
    client_from(2)
        .get(format!("{}/api/v4/user", app.address))
        .header("PRIVATE-TOKEN", "glpat-PATGUESS")
        .send()
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let rows = loop {
        let rows = entity::audit_event::Entity::find()
            .filter(entity::audit_event::Column::Action.is_in(["login.failure", "login.lockout"]))
            .all(&app.db)
            .await
            .unwrap();
        if rows.len() >= 5 {
            break rows;
        }
        assert!(Instant::now() < deadline, "audit rows missing: {rows:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let registry_failures: Vec<_> = rows
        .iter()
        .filter(|row| row.action == "login.failure" && row.details.contains("registry"))
        .collect();
    assert_eq!(registry_failures.len(), 3, "{rows:?}");
    for row in &registry_failures {
        assert_eq!(row.actor_kind, "anonymous");
        assert_eq!(row.actor, "gitlab+deploy-token-77");
        assert_eq!(row.ip_address.as_deref(), Some("127.0.0.1"));
    }
    let lockout = rows
        .iter()
        .find(|row| row.action == "login.lockout")
        .expect("a lockout record");
    assert!(
        lockout.details.contains("\"locked\":\"address\""),
        "{lockout:?}"
    );
    assert!(rows
        .iter()
        .any(|row| row.action == "login.failure" && row.details.contains("\"api\"")));
    let everything = format!(
        "{:?} {:?}",
        entity::audit_event::Entity::find()
            .all(&app.db)
            .await
            .unwrap(),
        entity::login_failure::Entity::find()
            .all(&app.db)
            .await
            .unwrap()
    );
    for secret in ["SECRETGUESS", "PATGUESS"] {
        assert!(
            !everything.contains(secret),
            "{secret} stored: {everything}"
        );
    }
}

#[tokio::test]
async fn a_username_with_this_instances_token_prefix_is_recorded_as_a_digest() {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    let (app, _) = world(|settings| {
        limits(10, 10)(settings);
        settings.tokens.prefix = "corp_".into();
        settings.tokens.instance_prefix = Some("acme-".into());
    })
    .await;
    // Short and plain: only the instance's prefixes tell these apart from names.
    for pasted in ["corp_pastedsecret", "acme-dt-pastedsecret"] {
        let response = login(&app, &client_from(1), pasted, "wrong").await;
        assert_eq!(response.status(), 401);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let rows = loop {
        let rows = entity::audit_event::Entity::find()
            .filter(entity::audit_event::Column::Action.eq("login.failure"))
            .all(&app.db)
            .await
            .unwrap();
        if rows.len() >= 2 {
            break rows;
        }
        assert!(Instant::now() < deadline, "audit rows missing: {rows:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    for row in &rows {
        assert!(row.actor.starts_with("secret-like:sha256:"), "{row:?}");
    }
    let everything = format!(
        "{:?} {:?}",
        rows,
        entity::login_failure::Entity::find()
            .all(&app.db)
            .await
            .unwrap()
    );
    assert!(
        !everything.contains("pastedsecret"),
        "stored in clear: {everything}"
    );
}

/// The sign-in form's CSRF cookie and field, fetched once (the double-submit pair may be
/// posted any number of times).
async fn sign_in_csrf(app: &TestApp, client: &reqwest::Client) -> (String, String) {
    let page = client
        .get(format!("{}/users/sign_in", app.address))
        .send()
        .await
        .unwrap();
    let cookie = page
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let html = page.text().await.unwrap();
    let marker = "name=\"authenticity_token\" value=\"";
    let start = html.find(marker).unwrap() + marker.len();
    let field = html[start..].split('"').next().unwrap().to_owned();
    (cookie, field)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_secrets_and_passwords_sent_at_once_are_checked_only_up_to_the_limit() {
    const LIMIT: u32 = 20;
    const SENT: usize = 100;
    let (app, token) = world(limits(LIMIT, 0)).await;
    let username = token.token.username.clone();
    // Deploy-token guesses, all at once from one address: at most the limit are answered as
    // checked-and-wrong (401, counted); the others find the limit reached (429).
    let attacker = client_from(1);
    let guesses = (0..SENT).map(|_| {
        attacker
            .get(format!("{}/jwt/auth", app.address))
            .query(&[("service", REGISTRY), ("scope", "repository:acme/web:pull")])
            .basic_auth(&username, Some("gldt-wrong-guess"))
            .send()
    });
    let statuses: Vec<u16> = join_all(guesses)
        .await
        .into_iter()
        .map(|response| response.unwrap().status().as_u16())
        .collect();
    let unauthorized = statuses.iter().filter(|&&status| status == 401).count();
    assert_eq!(unauthorized, LIMIT as usize, "{statuses:?}");
    assert!(statuses
        .iter()
        .all(|&status| status == 401 || status == 429));
    let text = app.metrics_text().await;
    assert!(
        text.contains(&format!(
            "regauth_login_failures_total{{route=\"registry\"}} {LIMIT}"
        )),
        "{text}"
    );
    // Web passwords, all at once from another address: at most the limit are checked, the
    // others are refused before their password is looked at.
    let guesser = reqwest::Client::builder()
        .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    app.create_user("alice", false, "api").await;
    let (cookie, csrf) = sign_in_csrf(&app, &guesser).await;
    let sign_ins = (0..SENT).map(|n| {
        guesser
            .post(format!("{}/users/sign_in", app.address))
            .header("cookie", cookie.clone())
            .form(&[
                ("authenticity_token", csrf.clone()),
                ("username", "alice".to_owned()),
                ("password", format!("wrong password {n}")),
            ])
            .send()
    });
    let mut statuses = Vec::new();
    for response in join_all(sign_ins).await {
        statuses.push(response.unwrap().status().as_u16());
    }
    let checked = statuses.iter().filter(|&&status| status == 401).count();
    assert!(checked <= LIMIT as usize, "{checked} checked: {statuses:?}");
    assert!(checked >= 1, "{statuses:?}");
    assert!(
        statuses
            .iter()
            .all(|&status| status == 401 || status == 429 || status == 503),
        "{statuses:?}"
    );
    let text = app.metrics_text().await;
    let web_failures: usize = text
        .lines()
        .find_map(|line| line.strip_prefix("regauth_login_failures_total{route=\"web\"} "))
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(web_failures, checked, "{text}");
}

/// Runs the futures at once (each on its own task) and returns their outputs in order.
async fn join_all<T: Send + 'static>(
    futures: impl Iterator<Item = impl std::future::Future<Output = T> + Send + 'static>,
) -> Vec<T> {
    let tasks: Vec<_> = futures.map(tokio::spawn).collect();
    let mut outputs = Vec::new();
    for task in tasks {
        outputs.push(task.await.unwrap());
    }
    outputs
}
