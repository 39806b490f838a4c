//! Every route the app registers, held with a stalled body: an answer comes within the body
//! deadline whoever asks, and at once to a caller without credentials wherever credentials
//! come in headers. The routes come from `routes::listed_routes()`, the list the app itself
//! registers from, so a route added later is held here too.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use chrono::Utc;
use regauth::routes::listed_routes;
use regauth::routes::route_list::ListedRoute;
use regauth::service::web_sessions::{self, Password};

use crate::helpers::{spawn_app_with, TestApp};

/// Routes whose credentials come in the body (a form's password, the OAuth2 grants): these
/// must read it before they know who asks, bounded by the deadline.
const CREDENTIALS_IN_BODY: [(&str, &str); 3] = [
    ("POST", "/users/sign_in"),
    ("POST", "/jwt/auth"),
    // RFC 8693: the subject token is a form field.
    ("POST", "/oauth/token"),
];

/// A concrete path for a pattern: `{kind}` is `projects`, other parameters a path or an id.
fn concrete(pattern: &str) -> String {
    pattern
        .split('/')
        .map(|segment| match segment {
            "{kind}" => "projects",
            "{path:.+}" => "acme/web",
            "{id}" | "{token_id}" | "{policy_id}" | "{id:[0-9]+}" => "1",
            other => {
                assert!(
                    !other.contains('{'),
                    "no sample value for {other} in {pattern}"
                );
                other
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn method_of(route: &ListedRoute) -> String {
    route
        .method
        .as_ref()
        .map_or_else(|| "PUT".to_owned(), |method| method.as_str().to_owned())
}

/// Sends a head announcing 64 bytes of form body, then 5 bytes of it, then nothing.
fn stall(port: u16, method: &str, path: &str, headers: &[(&str, String)]) -> TcpStream {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 64\r\n"
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\nname=");
    stream.write_all(head.as_bytes()).unwrap();
    stream
}

/// The first bytes of the answer, or `None` if none came within `limit`.
fn answer_within(stream: &mut TcpStream, limit: Duration) -> Option<String> {
    stream.set_read_timeout(Some(limit)).unwrap();
    let mut buffer = [0u8; 256];
    match stream.read(&mut buffer) {
        Ok(n) if n > 0 => Some(String::from_utf8_lossy(&buffer[..n]).into_owned()),
        _ => None,
    }
}

async fn app_with_body_timeout(seconds: u64) -> (TestApp, u16) {
    let app = spawn_app_with(|settings| {
        settings.limits.request_body_timeout = Duration::from_secs(seconds);
        // The registry-event receiver on, so that it is held like every other route.
        settings.registry.events_secret = Some(
            regauth::config::RegistryEventsSecret::parse(crate::registry_events::SECRET).unwrap(),
        );
    })
    .await;
    app.create_project_with_groups("acme/web").await;
    let port = app.address.rsplit(':').next().unwrap().parse().unwrap();
    (app, port)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_a_stalled_body_by_the_deadline_even_for_an_administrator() {
    let (app, port) = app_with_body_timeout(2).await;
    let pat = app.create_user("root", true, "api").await;
    let session = web_sessions::sign_in(
        app.store.as_ref(),
        &app.settings.tokens.formats(),
        "root",
        Password::new(pat.clone()),
        None,
        Duration::from_secs(3600),
        Utc::now(),
    )
    .await
    .unwrap();
    let credentials = [
        ("PRIVATE-TOKEN", pat.clone()),
        (
            "Cookie",
            format!("_regauth_session={}", session.id.expose()),
        ),
    ];
    let routes = listed_routes();
    assert!(routes.len() >= 20, "too few routes listed: {routes:?}");
    // All at once: each holds a connection while the others wait for their deadline.
    let mut held: Vec<(String, TcpStream)> = routes
        .iter()
        .map(|route| {
            let (method, path) = (method_of(route), concrete(&route.pattern));
            let stream = stall(port, &method, &path, &credentials);
            (format!("{method} {path}"), stream)
        })
        .collect();
    let started = Instant::now();
    let unanswered: Vec<&String> = tokio::task::block_in_place(|| {
        held.iter_mut()
            .filter_map(|(name, stream)| {
                // Far beyond the 2 s deadline: a hang, not a slow answer.
                let left = Duration::from_secs(20).saturating_sub(started.elapsed());
                answer_within(stream, left.max(Duration::from_millis(100)))
                    .is_none()
                    .then_some(&*name)
            })
            .collect()
    });
    assert!(
        unanswered.is_empty(),
        "still waiting for a body: {unanswered:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_credentials_every_route_answers_before_reading_a_body() {
    // A deadline no answer below waits for.
    let (_app, port) = app_with_body_timeout(120).await;
    let routes = listed_routes();
    let mut held: Vec<(String, TcpStream)> = routes
        .iter()
        .filter(|route| {
            let method = method_of(route);
            !CREDENTIALS_IN_BODY.contains(&(method.as_str(), route.pattern.as_str()))
        })
        .map(|route| {
            let (method, path) = (method_of(route), concrete(&route.pattern));
            let stream = stall(port, &method, &path, &[]);
            (format!("{method} {path}"), stream)
        })
        .collect();
    let unanswered: Vec<&String> = tokio::task::block_in_place(|| {
        held.iter_mut()
            .filter_map(|(name, stream)| {
                answer_within(stream, Duration::from_secs(10))
                    .is_none()
                    .then_some(&*name)
            })
            .collect()
    });
    assert!(
        unanswered.is_empty(),
        "waited for the body of a caller without credentials: {unanswered:?}"
    );
}

#[test]
fn the_route_list_names_every_route_with_its_methods() {
    let routes = listed_routes();
    let has = |method: &str, pattern: &str| {
        routes.iter().any(|route| {
            route.pattern == pattern && route.method.as_ref().map(|m| m.as_str()) == Some(method)
        })
    };
    assert!(has("PUT", "/api/v4/{kind}/{id}"));
    assert!(has("POST", "/users/sign_in"));
    assert!(has("POST", "/{path:.+}/-/deploy_tokens/{id:[0-9]+}/revoke"));
    assert!(routes
        .iter()
        .any(|route| route.pattern == "/-/forward-auth" && route.method.is_none()));
}
