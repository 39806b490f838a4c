//! Least privilege with the real registry and skopeo (issue #27): a token limited to
//! `acme/web/app` pushes there and is refused on `acme/web/other`; a token limited to
//! 10.0.0.0/8 is refused from 127.0.0.1 and accepted through a trusted proxy (Debian's nginx)
//! that says the client is 10.1.2.3.

use std::process::Command;
use std::time::Duration;

use regauth::config::TrustedProxies;
use regauth::domain::deploy_token::DeployTokenRequest;
use regauth::domain::NamespaceKind::Project;
use sea_orm::EntityTrait as _;

use crate::helpers::CreatedToken;
use crate::support::process::{require_binary, Daemon};
use crate::support::{
    blocking, free_loopback_port, Registry, RegistryOptions, Skopeo, Stack, CREDENTIALS_REFUSED,
    REGISTRY_DENIAL,
};

async fn restricted_token(stack: &Stack, ranges: &[&str], patterns: &[&str]) -> CreatedToken {
    stack
        .app
        .create_token_from(
            Project,
            "acme/web",
            DeployTokenRequest {
                name: "fenced".into(),
                scopes: vec!["read_registry".into(), "write_registry".into()],
                ip_restriction_ranges: ranges.iter().map(|r| r.to_string()).collect(),
                repository_patterns: patterns.iter().map(|p| p.to_string()).collect(),
                ..Default::default()
            },
        )
        .await
}

#[ignore = "needs docker-registry and skopeo: run by scripts/test.sh"]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_limited_to_one_repository_pushes_there_and_nowhere_else() {
    let stack = Stack::start().await;
    stack.app.create_project_with_groups("acme/web").await;
    let token = restricted_token(&stack, &[], &["app"]).await;
    let skopeo = stack.logged_in(&token);
    let pushed = stack.push(&skopeo, "acme/web/app");
    stack.expect(&pushed, true, "push to acme/web/app");
    stack.expect(
        &stack.pull(&skopeo, "acme/web/app"),
        true,
        "pull acme/web/app",
    );
    let refused = stack.push(&skopeo, "acme/web/other");
    stack.expect_refused(&refused, REGISTRY_DENIAL, "push to acme/web/other");
    let refused = stack.push(&skopeo, "acme/web");
    stack.expect_refused(&refused, REGISTRY_DENIAL, "push to acme/web itself");
}

/// Debian's nginx in front of regauth, telling it every client is 10.1.2.3.
struct Proxy {
    _daemon: Daemon,
    address: String,
    _dir: tempfile::TempDir,
}

impl Proxy {
    fn start(upstream_port: u16) -> Proxy {
        require_binary("nginx", "nginx");
        let dir = tempfile::Builder::new()
            .prefix("regauth-proxy-")
            .tempdir()
            .unwrap();
        let port = free_loopback_port();
        let root = dir.path().display();
        let config = format!(
            "daemon off;\nworker_processes 1;\npid {root}/nginx.pid;\nerror_log {root}/error.log info;\n\
             events {{ worker_connections 64; }}\n\
             http {{\n  access_log {root}/access.log;\n\
             client_body_temp_path {root}/body;\n  proxy_temp_path {root}/proxy;\n\
             fastcgi_temp_path {root}/fastcgi;\n  uwsgi_temp_path {root}/uwsgi;\n  scgi_temp_path {root}/scgi;\n\
             server {{\n    listen 127.0.0.1:{port};\n\
             location / {{\n      proxy_pass http://127.0.0.1:{upstream_port};\n\
             proxy_set_header Host $http_host;\n\
             proxy_set_header X-Forwarded-For 10.1.2.3;\n    }}\n  }}\n}}\n"
        );
        let config_path = dir.path().join("nginx.conf");
        std::fs::write(&config_path, config).unwrap();
        let mut cmd = Command::new("nginx");
        cmd.arg("-c").arg(&config_path).arg("-p").arg(dir.path());
        let mut daemon = Daemon::spawn(
            "nginx",
            cmd,
            dir.path().join("nginx.out"),
            Duration::from_secs(5),
        );
        let address = format!("http://127.0.0.1:{port}");
        let health = format!("{address}/-/health");
        daemon.wait_until(Duration::from_secs(20), "GET /-/health via nginx", || {
            Command::new("curl")
                .args(["-fs", "-o", "/dev/null", "--max-time", "2", &health])
                .status()
                .is_ok_and(|status| status.success())
        });
        Proxy {
            _daemon: daemon,
            address,
            _dir: dir,
        }
    }
}

#[ignore = "needs docker-registry, skopeo, nginx and curl: run by scripts/test.sh"]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_limited_to_10_0_0_0_8_is_refused_from_127_0_0_1_and_accepted_through_a_trusted_proxy(
) {
    let stack = Stack::start_with(|settings| {
        settings.server.trusted_proxies = TrustedProxies::parse(&["127.0.0.1".to_owned()]).unwrap();
    })
    .await;
    stack.app.create_project_with_groups("acme/web").await;
    let token = restricted_token(&stack, &["10.0.0.0/8"], &[]).await;

    // The stack's registry sends clients straight to regauth: from 127.0.0.1, refused.
    let direct = Skopeo::new();
    let refused = stack.login(&direct, &token);
    stack.expect_refused(&refused, CREDENTIALS_REFUSED, "login from 127.0.0.1");
    let refused = stack.push(&direct, "acme/web/app");
    stack.expect(&refused, false, "push from 127.0.0.1");

    // A second registry (its own storage) whose token realm is the proxy.
    let port: u16 = stack
        .app
        .address
        .rsplit(':')
        .next()
        .and_then(|port| port.parse().ok())
        .expect("the app's port");
    let proxy = blocking(|| Proxy::start(port));
    let proxied = Registry::start(RegistryOptions {
        realm: format!("{}/jwt/auth", proxy.address),
        service: "container_registry".into(),
        issuer: stack.app.settings.signing.issuer.clone(),
        root_cert_bundle: stack.app.settings.signing.keys_dir.join("bundle.crt"),
        ..RegistryOptions::default()
    });
    let through_proxy = Skopeo::new();
    let host = proxied.host();
    let login = blocking(|| through_proxy.login(&host, &token.token.username, &token.secret));
    assert!(
        login.success,
        "login through the proxy\n{login}\n{}",
        proxied.log()
    );
    let pushed = blocking(|| through_proxy.push(&stack.image, &host, "acme/web/app", "v1"));
    assert!(
        pushed.success,
        "push through the proxy\n{pushed}\n{}",
        proxied.log()
    );
    let dest = tempfile::tempdir().unwrap();
    let pulled = blocking(|| through_proxy.pull(&host, "acme/web/app", "v1", dest.path()));
    assert!(
        pulled.success,
        "pull through the proxy\n{pulled}\n{}",
        proxied.log()
    );

    // The refusals are in the audit trail (written in batches) with the address; the
    // accepted uses through the proxy are not among them.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let refusals = loop {
        let refusals: Vec<_> = entity::audit_event::Entity::find()
            .all(&stack.app.db)
            .await
            .unwrap()
            .into_iter()
            .filter(|row| row.details.contains("address_not_allowed"))
            .collect();
        if !refusals.is_empty() || std::time::Instant::now() > deadline {
            break refusals;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(!refusals.is_empty(), "no address_not_allowed record");
    assert!(
        refusals
            .iter()
            .all(|row| row.ip_address.as_deref() == Some("127.0.0.1")),
        "{refusals:?}"
    );
}
