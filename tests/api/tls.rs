//! HTTPS for the realm: the configured certificate is served (curl verifies it against the
//! CA), and SIGHUP swaps in a new one without dropping an open keep-alive connection; a bad
//! new pair keeps the old one.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

use crate::cli::Cli;
use crate::server::ServerProcess;
use crate::test_ca::TestCa;

type TlsStream = StreamOwned<ClientConnection, TcpStream>;

fn client_config(ca_pem: &str) -> Arc<ClientConfig> {
    use rustls::pki_types::pem::PemObject as _;
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap())
        .unwrap();
    Arc::new(
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

/// A verified TLS connection to 127.0.0.1:`port` as `localhost`.
fn connect(config: &Arc<ClientConfig>, port: u16) -> TlsStream {
    let tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let connection = ClientConnection::new(
        Arc::clone(config),
        ServerName::try_from("localhost").unwrap(),
    )
    .unwrap();
    let mut stream = StreamOwned::new(connection, tcp);
    while stream.conn.is_handshaking() {
        stream.conn.complete_io(&mut stream.sock).unwrap();
    }
    stream
}

fn served_certificate(stream: &TlsStream) -> Vec<u8> {
    stream.conn.peer_certificates().unwrap()[0].to_vec()
}

/// One keep-alive `GET /-/health` on the stream; the status line.
fn health(stream: &mut TlsStream) -> String {
    stream
        .write_all(b"GET /-/health HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    // Headers, then the body announced by Content-Length.
    loop {
        let n = stream.read(&mut buffer).unwrap();
        assert!(
            n > 0,
            "connection closed: {}",
            String::from_utf8_lossy(&received)
        );
        received.extend_from_slice(&buffer[..n]);
        let text = String::from_utf8_lossy(&received).to_string();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length: usize = head
                .lines()
                .find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().unwrap())
                })
                .unwrap_or(0);
            if body.len() >= length {
                return head.lines().next().unwrap().to_owned();
            }
        }
    }
}

fn curl(args: &[&str]) -> std::process::Output {
    Command::new("curl")
        .args(["--silent", "--show-error", "--max-time", "20"])
        .args(args)
        .output()
        .expect("curl (apt-get install curl)")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs curl: run by scripts/test.sh"]
async fn the_realm_serves_https_and_reloads_its_certificate_on_sighup_keeping_connections() {
    let cli = Cli::new().await;
    let tls_dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new();
    let ca_path = ca.write_ca(tls_dir.path());
    let first = ca.issue(tls_dir.path());
    let server = ServerProcess::start(
        cli.dir.path(),
        &[
            ("REGAUTH_DATABASE_URL", &cli.database_url),
            ("REGAUTH_TLS_CERTIFICATE", first.cert_path.to_str().unwrap()),
            ("REGAUTH_TLS_KEY", first.key_path.to_str().unwrap()),
            ("REGAUTH_KEEP_ALIVE", "120"),
            ("REGAUTH_REQUEST_HEAD_TIMEOUT", "120"),
            ("REGAUTH_TLS_HANDSHAKE_TIMEOUT", "1"),
            ("REGAUTH_MAX_CONNECTION_RATE", "8"),
        ],
    );
    // Connections that never start the TLS handshake fill every handshake slot; they are
    // closed at the handshake deadline (not the far longer head deadline), so a real client
    // behind them is served soon after.
    let idle: Vec<TcpStream> = (0..16)
        .map(|_| TcpStream::connect(("127.0.0.1", server.port)).unwrap())
        .collect();
    let mut silent = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    silent
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut buffer = [0u8; 16];
    match silent.read(&mut buffer) {
        Ok(0) => {}
        Err(error) if error.kind() == std::io::ErrorKind::ConnectionReset => {}
        other => panic!("a connection without a handshake is still open: {other:?}"),
    }
    drop(idle);
    let port = server.port.to_string();
    let url = format!("https://localhost:{port}/-/health");
    let resolve = format!("localhost:{port}:127.0.0.1");

    // curl verifies the chain against the CA; without the CA it refuses; plain HTTP fails.
    let verified = curl(&[
        "--cacert",
        ca_path.to_str().unwrap(),
        "--resolve",
        &resolve,
        &url,
    ]);
    assert!(
        verified.status.success(),
        "curl --cacert: {}\n{}",
        String::from_utf8_lossy(&verified.stderr),
        server.stderr()
    );
    let unverified = curl(&["--resolve", &resolve, &url]);
    assert!(
        !unverified.status.success(),
        "a certificate no CA vouches for"
    );
    let plain = curl(&[&format!("http://127.0.0.1:{port}/-/health")]);
    assert!(
        !plain.status.success() || !String::from_utf8_lossy(&plain.stdout).contains("ok"),
        "plain HTTP must not be served on the TLS port"
    );
    assert!(
        server.stdout().contains("(https;"),
        "the start says it serves HTTPS:\n{}",
        server.stdout()
    );

    let config = client_config(&ca.pem);
    let mut kept = connect(&config, server.port);
    assert!(health(&mut kept).contains("200"));
    assert_eq!(served_certificate(&kept), first.cert_der);

    // A new key and certificate in the same files, then SIGHUP.
    let second = ca.issue(tls_dir.path());
    assert_ne!(second.cert_der, first.cert_der);
    server.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let fresh = connect(&config, server.port);
        if served_certificate(&fresh) == second.cert_der {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the new certificate is not served after SIGHUP:\n{}",
            server.stderr()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        health(&mut kept).contains("200"),
        "the connection opened before the reload still serves"
    );
    let verified = curl(&[
        "--cacert",
        ca_path.to_str().unwrap(),
        "--resolve",
        &resolve,
        &url,
    ]);
    assert!(verified.status.success());

    // A broken certificate file: logged, and the last good pair stays.
    std::fs::write(
        &second.cert_path,
        "-----BEGIN CERTIFICATE-----\nnot base64\n",
    )
    .unwrap();
    server.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !server.stderr().contains("not reloaded") {
        assert!(
            Instant::now() < deadline,
            "no error logged for a bad certificate:\n{}",
            server.stderr()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        server.stderr().contains("server.crt"),
        "{}",
        server.stderr()
    );
    assert_eq!(
        served_certificate(&connect(&config, server.port)),
        second.cert_der
    );
    assert!(health(&mut kept).contains("200"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_with_a_key_that_does_not_match_the_certificate_fails_naming_the_files() {
    let cli = Cli::new().await;
    let tls_dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new();
    let first = ca.issue(tls_dir.path());
    let cert = std::fs::read(&first.cert_path).unwrap();
    let other_dir = tempfile::tempdir().unwrap();
    let other = ca.issue(other_dir.path());
    std::fs::write(&first.cert_path, cert).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_regauth"))
        .arg("serve")
        .current_dir(cli.dir.path())
        .env_remove("REGAUTH_CONFIG")
        .env("REGAUTH_LISTEN", "127.0.0.1:0")
        .env("REGAUTH_DATABASE_URL", &cli.database_url)
        .env("REGAUTH_KEYS_DIR", cli.dir.path().join("keys"))
        .env("REGAUTH_TLS_CERTIFICATE", &first.cert_path)
        .env("REGAUTH_TLS_KEY", &other.key_path)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("does not match") && stderr.contains("server.crt"),
        "{stderr}"
    );
    assert!(!stderr.contains("PRIVATE KEY"), "{stderr}");
}
