//! The two JWT header forms (`token_header`) against real registries and real clients.
//!
//! In CI only registry 2.8 (Debian's `docker-registry`) exists: it accepts the `x5c` form and
//! refuses the `jwks` form. The registry 3.x trust matrix (bundle only, jwks only, both) is
//! compiled only with the `registry3-check` feature and needs a distribution 3.x `registry`
//! binary in `REGAUTH_REGISTRY3_BIN`: `scripts/check-registry3.sh` does both.
#![cfg_attr(not(feature = "registry3-check"), allow(dead_code, unused_imports))]

use std::path::PathBuf;

use regauth::domain::NamespaceKind::Project;
use regauth::jwt::TokenHeader;

use crate::helpers::{jwt_header, spawn_app_with, CreatedToken, TestApp};
use crate::support::{
    blocking, write_oci_image, Client, ImageRef, Podman, Registry, RegistryOptions, Skopeo, User,
};

/// How the registry trusts regauth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trust {
    BundleOnly,
    JwksOnly,
    Both,
}

async fn app_with(form: TokenHeader) -> (TestApp, CreatedToken) {
    let app = spawn_app_with(move |settings| settings.signing.token_header = form).await;
    app.create_project_with_groups("acme/web").await;
    let token = app
        .create_token(Project, "acme/web", &["read_registry", "write_registry"])
        .await;
    (app, token)
}

fn registry(app: &TestApp, trust: Trust, binary: Option<PathBuf>) -> Registry {
    let keys = &app.settings.signing.keys_dir;
    let jwks_file = keys.join("jwks.json");
    // The file regauth serve writes; tests build the app without `serve`, so write it here
    // from the document the server publishes.
    let ring = regauth::jwt::KeyRing::load_dir(keys).expect("keys");
    regauth::jwt::write_jwks_file(keys, &ring).expect("write jwks.json");
    Registry::start(RegistryOptions {
        realm: format!("{}/jwt/auth", app.address),
        service: "container_registry".into(),
        issuer: app.settings.signing.issuer.clone(),
        root_cert_bundle: match trust {
            Trust::JwksOnly => PathBuf::new(),
            _ => keys.join("bundle.crt"),
        },
        jwks: (trust != Trust::BundleOnly).then_some(jwks_file),
        binary,
        ..RegistryOptions::default()
    })
}

/// Login, push, pull back with skopeo; `Ok` or the first failure with the registry log.
fn skopeo_round_trip(registry: &Registry, token: &CreatedToken, repo: &str) -> Result<(), String> {
    let images = tempfile::tempdir().expect("tempdir");
    let image = write_oci_image(images.path(), "regauth token header", "v1");
    let skopeo = Skopeo::new();
    let host = registry.host();
    let fail = |what: &str, outcome: &dyn std::fmt::Display| {
        Err(format!(
            "skopeo {what}\n{outcome}\n--- registry log ---\n{}",
            registry.log()
        ))
    };
    let login = skopeo.login(&host, &token.token.username, &token.secret);
    if !login.success {
        return fail("login", &login);
    }
    let pushed = skopeo.push(&image, &host, repo, "v1");
    if !pushed.success {
        return fail("push", &pushed);
    }
    let dest = tempfile::tempdir().expect("tempdir");
    let pulled = skopeo.pull(&host, repo, "v1", dest.path());
    if !pulled.success {
        return fail("pull", &pulled);
    }
    match skopeo.inspect_digest(&host, repo, "v1") {
        Ok(digest) if digest == image.manifest_digest => Ok(()),
        Ok(digest) => Err(format!(
            "pulled digest {digest} != pushed {}",
            image.manifest_digest
        )),
        Err(outcome) => fail("inspect", &outcome),
    }
}

/// Login, build, push, pull back with podman.
#[cfg(feature = "registry3-check")]
fn podman_round_trip(registry: &Registry, token: &CreatedToken, repo: &str) -> Result<(), String> {
    let host = registry.host();
    let podman = Podman::start(&host);
    let user = User::new(&token.token.username, &token.secret);
    let image = ImageRef::new(&host, repo, "podman");
    let fail = |what: &str, outcome: &dyn std::fmt::Display| {
        Err(format!(
            "podman {what}\n{outcome}\n--- registry log ---\n{}",
            registry.log()
        ))
    };
    if let Some(login) = podman.login(&user, &host) {
        if !login.success {
            return fail("login", &login);
        }
    }
    let built = podman.build(&image, "token header");
    if !built.success {
        return fail("import", &built);
    }
    let pushed = podman.push(&user, &image);
    if !pushed.success() {
        return fail("push", &pushed.outcome);
    }
    let pulled = podman.pull(&user, &image);
    if !pulled.success() {
        return fail("pull", &pulled.outcome);
    }
    Ok(())
}

#[ignore = "needs docker-registry and skopeo: run by scripts/test.sh"]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_2_8_accepts_x5c_form_tokens_from_skopeo() {
    let (app, token) = app_with(TokenHeader::X5c).await;
    let response = app
        .get_token(
            Some((&token.token.username, &token.secret)),
            &[
                ("service", "container_registry"),
                ("scope", "repository:acme/web:pull"),
            ],
        )
        .await;
    let body: serde_json::Value = response.json().await.expect("json");
    assert!(jwt_header(body["token"].as_str().expect("token"))["x5c"].is_array());
    let registry = registry(&app, Trust::BundleOnly, None);
    blocking(|| skopeo_round_trip(&registry, &token, "acme/web/app"))
        .unwrap_or_else(|e| panic!("{e}"));
}

#[ignore = "needs docker-registry and skopeo: run by scripts/test.sh"]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_2_8_refuses_jwks_form_tokens_naming_the_untrusted_key() {
    let (app, token) = app_with(TokenHeader::Jwks).await;
    let registry = registry(&app, Trust::BundleOnly, None);
    let skopeo = Skopeo::new();
    let login = blocking(|| skopeo.login(&registry.host(), &token.token.username, &token.secret));
    assert!(
        !login.success,
        "registry 2.8 accepted a jwks-form token\n{login}\n{}",
        registry.log()
    );
    let log = registry.log();
    assert!(
        log.contains("token signed by untrusted key with ID"),
        "registry 2.8 refused for another reason:\n{log}"
    );
}

/// The distribution 3.x binary from `REGAUTH_REGISTRY3_BIN`.
#[cfg(feature = "registry3-check")]
pub(crate) fn registry3_binary() -> PathBuf {
    let path = std::env::var_os("REGAUTH_REGISTRY3_BIN").map(PathBuf::from).unwrap_or_else(|| {
        panic!("set REGAUTH_REGISTRY3_BIN to a distribution 3.x `registry` binary (scripts/check-registry3.sh builds one)")
    });
    assert!(
        path.is_file(),
        "REGAUTH_REGISTRY3_BIN={} is not a file",
        path.display()
    );
    path
}

/// Every form × trust set-up through registry 3.x with `client`; prints the matrix.
#[cfg(feature = "registry3-check")]
async fn registry3_matrix(
    client: &str,
    round_trip: fn(&Registry, &CreatedToken, &str) -> Result<(), String>,
) {
    let binary = registry3_binary();
    let mut report = Vec::new();
    let mut unexpected = Vec::new();
    for form in [TokenHeader::X5c, TokenHeader::Jwks] {
        let (app, token) = app_with(form).await;
        for trust in [Trust::BundleOnly, Trust::JwksOnly, Trust::Both] {
            let registry = registry(&app, trust, Some(binary.clone()));
            let outcome = blocking(|| round_trip(&registry, &token, "acme/web/app"));
            let expect_ok = !(form == TokenHeader::X5c && trust == Trust::JwksOnly);
            let line = format!(
                "{client}: token_header={form} trust={trust:?}: {}",
                match &outcome {
                    Ok(()) => "login, push, pull ok".to_owned(),
                    Err(_) => "refused".to_owned(),
                }
            );
            println!("{line}");
            report.push(line);
            match (outcome, expect_ok) {
                (Ok(()), true) => {}
                (Err(_), false) => {
                    let log = registry.log();
                    assert!(
                        log.contains("x509: certificate signed by unknown authority"),
                        "x5c form with jwks only refused for another reason:\n{log}"
                    );
                }
                (Ok(()), false) => unexpected.push(format!("{form} {trust:?}: accepted")),
                (Err(e), true) => unexpected.push(format!("{form} {trust:?}: {e}")),
            }
        }
    }
    assert!(
        unexpected.is_empty(),
        "{}\n\n{}",
        report.join("\n"),
        unexpected.join("\n\n")
    );
}

#[cfg(feature = "registry3-check")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry3_trust_matrix_with_skopeo() {
    registry3_matrix("skopeo", skopeo_round_trip).await;
}

#[cfg(feature = "registry3-check")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry3_trust_matrix_with_podman() {
    registry3_matrix("podman", podman_round_trip).await;
}
