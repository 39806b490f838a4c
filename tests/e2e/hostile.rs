//! Hostile clients against a real `regauth serve` process, with the real registry and skopeo:
//! hundreds of connections that stall in the request head or the body do not keep an honest
//! client from logging in, pushing and pulling; each stalled connection is closed at its
//! deadline, and the server's memory stays bounded. And an HTTPS realm that skopeo verifies.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use regauth::domain::NamespaceKind::Project;

use crate::helpers::{spawn_app, spawn_app_with};
use crate::server::ServerProcess;
use crate::support::{Skopeo, Stack};
use crate::test_ca::TestCa;

const SLOW_HEADS: usize = 200;
const SLOW_BODIES: usize = 200;
/// The deadlines the server is started with (seconds).
const HEAD_DEADLINE: u64 = 5;
const BODY_DEADLINE: u64 = 5;

fn vm_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .expect("VmRSS in /proc/<pid>/status")
}

/// A connection that sent a part of a request and then nothing.
struct Stalled {
    stream: TcpStream,
    opened: Instant,
}

fn open_stalled(port: u16, slow_body: bool) -> Stalled {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let text = if slow_body {
        // A complete head announcing a form the route accepts; a few bytes of it.
        "POST /jwt/auth HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 8000\r\n\r\ngrant_type=pass"
    } else {
        "POST /jwt/auth HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-"
    };
    stream.write_all(text.as_bytes()).unwrap();
    stream.set_nonblocking(true).unwrap();
    Stalled {
        stream,
        opened: Instant::now(),
    }
}

/// Whether the server closed it (EOF or reset after any answer, such as a 408).
fn closed(stalled: &mut Stalled) -> bool {
    let mut buffer = [0u8; 1024];
    loop {
        match stalled.stream.read(&mut buffer) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(error) if error.kind() == ErrorKind::WouldBlock => return false,
            Err(_) => return true,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs docker-registry and skopeo: run by scripts/test.sh"]
async fn skopeo_is_served_while_hundreds_of_stalled_connections_are_held() {
    let app = spawn_app().await;
    app.create_project_with_groups("acme/web").await;
    let token = app
        .create_token(Project, "acme/web", &["read_registry", "write_registry"])
        .await;
    let dir = tempfile::tempdir().unwrap();
    let keys_dir = app.settings.signing.keys_dir.to_str().unwrap().to_owned();
    let server = ServerProcess::start(
        dir.path(),
        &[
            ("REGAUTH_DATABASE_URL", &app.settings.database.url),
            ("REGAUTH_KEYS_DIR", &keys_dir),
            ("REGAUTH_REQUEST_HEAD_TIMEOUT", &HEAD_DEADLINE.to_string()),
            ("REGAUTH_REQUEST_BODY_TIMEOUT", &BODY_DEADLINE.to_string()),
        ],
    );
    let stack = Stack::for_realm(app, &format!("{}/jwt/auth", server.address), None);
    let port = server.port;
    let pid = server.pid();
    let rss_before = vm_rss_kib(pid);

    // The attacker: keeps SLOW_HEADS + SLOW_BODIES stalled connections open, reopening
    // each one the server closes, until told to stop; then hands back the last batch.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let attacker = {
        let stop = std::sync::Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut held: Vec<(bool, Stalled)> = (0..SLOW_HEADS)
                .map(|_| (false, open_stalled(port, false)))
                .chain((0..SLOW_BODIES).map(|_| (true, open_stalled(port, true))))
                .collect();
            let mut closed_total = 0usize;
            let mut longest = Duration::ZERO;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                for (slow_body, stalled) in held.iter_mut() {
                    if closed(stalled) {
                        closed_total += 1;
                        longest = longest.max(stalled.opened.elapsed());
                        *stalled = open_stalled(port, *slow_body);
                    }
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            (held, closed_total, longest)
        })
    };
    // Let the connections pile up past one deadline.
    tokio::time::sleep(Duration::from_secs(HEAD_DEADLINE + 2)).await;
    let rss_under_attack = vm_rss_kib(pid);

    let started = Instant::now();
    let skopeo = Skopeo::new();
    stack.expect(&stack.login(&skopeo, &token), true, "login under attack");
    stack.expect(&stack.push(&skopeo, "acme/web"), true, "push under attack");
    stack.expect(&stack.pull(&skopeo, "acme/web"), true, "pull under attack");
    let honest = started.elapsed();
    let rss_after_clients = vm_rss_kib(pid);

    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (mut held, closed_total, longest) = attacker.join().unwrap();
    // Every connection still held is closed by the server at its deadline.
    let wait_limit = Duration::from_secs(HEAD_DEADLINE.max(BODY_DEADLINE) + 30);
    let waiting = Instant::now();
    let mut open = held.len();
    while open > 0 {
        open = held
            .iter_mut()
            .map(|(_, stalled)| !closed(stalled))
            .filter(|still_open| *still_open)
            .count();
        assert!(
            waiting.elapsed() < wait_limit,
            "{open} stalled connections still open {wait_limit:?} after the attack stopped\n{}",
            server.stderr()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let longest = held
        .iter()
        .map(|(_, stalled)| stalled.opened.elapsed())
        .fold(longest, Duration::max);
    println!(
        "{} stalled connections held ({SLOW_HEADS} in the head, {SLOW_BODIES} in the body; \
         deadlines {HEAD_DEADLINE} s / {BODY_DEADLINE} s): skopeo login+push+pull took {:.1} s; \
         {closed_total} stalled connections closed by the server during the attack, the \
         longest lived {:.1} s; VmRSS {} KiB before, {} KiB under attack, {} KiB after the \
         clients",
        SLOW_HEADS + SLOW_BODIES,
        honest.as_secs_f64(),
        longest.as_secs_f64(),
        rss_before,
        rss_under_attack,
        rss_after_clients,
    );
    // How many closed during the attack depends on how fast the attacker reopens on a loaded
    // machine; that every held connection closes at its deadline is asserted above.
    assert!(
        closed_total > 0,
        "no stalled connection was closed during the attack"
    );
    // Generous: a bounded server stays far below this; an unbounded one grows with the attack.
    let bound_kib = 256 * 1024;
    assert!(
        rss_under_attack.max(rss_after_clients) < bound_kib,
        "VmRSS {rss_under_attack} / {rss_after_clients} KiB exceeds {bound_kib} KiB"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs docker-registry and skopeo: run by scripts/test.sh"]
async fn skopeo_logs_in_pushes_and_pulls_through_an_https_realm_it_verifies() {
    let tls_dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new();
    let ca_file = ca.write_ca(tls_dir.path());
    let server_cert = ca.issue(tls_dir.path());
    let app = spawn_app_with(|settings| {
        settings.server.tls = Some(regauth::config::TlsFiles {
            certificate: server_cert.cert_path.clone(),
            key: server_cert.key_path.clone(),
        });
    })
    .await;
    assert!(app.address.starts_with("https://127.0.0.1:"));
    app.create_project_with_groups("acme/web").await;
    let token = app
        .create_token(Project, "acme/web", &["read_registry", "write_registry"])
        .await;
    let realm = format!("{}/jwt/auth", app.address.replace("127.0.0.1", "localhost"));
    // The registry serves HTTPS too (its own certificate from the same CA), so that skopeo
    // runs with --tls-verify=true: only then does it verify the realm.
    let registry_dir = tempfile::tempdir().unwrap();
    let registry_cert = ca.issue(registry_dir.path());
    let stack = Stack::for_realm(
        app,
        &realm,
        Some((registry_cert.cert_path, registry_cert.key_path)),
    );

    let skopeo = Skopeo::trusting(&ca_file);
    stack.expect(&stack.login(&skopeo, &token), true, "login, https realm");
    stack.expect(&stack.push(&skopeo, "acme/web"), true, "push, https realm");
    stack.expect(&stack.pull(&skopeo, "acme/web"), true, "pull, https realm");

    // A client that does not trust the CA cannot get a token from the realm.
    let other_ca = TestCa::new();
    let other_dir = tempfile::tempdir().unwrap();
    let stranger = Skopeo::trusting(&other_ca.write_ca(other_dir.path()));
    let refused = stack.login(&stranger, &token);
    stack.expect(
        &refused,
        false,
        "login with a realm certificate not trusted",
    );
    assert!(
        format!("{}{}", refused.stdout, refused.stderr).contains("certificate"),
        "refused for the certificate: {refused}"
    );
}
