//! Key rotation with two keys configured: tokens signed by the old key keep verifying at the
//! registry until they expire, while new tokens are signed by the new key.

use regauth::domain::NamespaceKind::Project;
use regauth::jwt::{self, KeyAlgorithm};

use crate::helpers::{jwt_header, spawn_app, spawn_app_with};
use crate::support::{blocking, registry_for, Registry, RegistryOptions, Skopeo};

async fn registry_token(
    app: &crate::helpers::TestApp,
    username: &str,
    secret: &str,
    scope: &str,
) -> String {
    let response = app
        .get_token(
            Some((username, secret)),
            &[("service", "container_registry"), ("scope", scope)],
        )
        .await;
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    body["token"].as_str().unwrap().to_owned()
}

#[ignore = "needs docker-registry and skopeo: run by scripts/test.sh"]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_rotation_old_tokens_still_verify_and_new_ones_use_the_new_key() {
    // Before: one key (ES256), a token signed with it.
    let old_app = spawn_app().await;
    old_app.create_project_with_groups("acme/web").await;
    let token = old_app
        .create_token(Project, "acme/web", &["read_registry", "write_registry"])
        .await;
    let username = token.token.username.clone();
    let old_jwt = registry_token(
        &old_app,
        &username,
        &token.secret,
        "repository:acme/web:pull",
    )
    .await;

    // Rotation: a new RSA key beside the old one; a restarted regauth signs with it.
    let keys_dir = old_app.settings.signing.keys_dir.clone();
    let generated = jwt::generate_key(&keys_dir, KeyAlgorithm::Rs256, "regauth").unwrap();
    let bundle = std::fs::read_to_string(&generated.bundle_path).unwrap();
    assert_eq!(
        bundle.matches("BEGIN CERTIFICATE").count(),
        2,
        "the bundle holds both"
    );
    let database_url = old_app.settings.database.url.clone();
    let new_app = spawn_app_with({
        let keys_dir = keys_dir.clone();
        move |settings| {
            settings.database.url = database_url;
            settings.signing.keys_dir = keys_dir;
        }
    })
    .await;
    let new_jwt = registry_token(
        &new_app,
        &username,
        &token.secret,
        "repository:acme/web:pull",
    )
    .await;
    let (old_header, new_header) = (jwt_header(&old_jwt), jwt_header(&new_jwt));
    assert_eq!(old_header["alg"], "ES256");
    assert_eq!(new_header["alg"], "RS256");
    assert_ne!(old_header["kid"], new_header["kid"]);
    let jwks = new_app.jwks().await;
    assert_eq!(
        jwks["keys"].as_array().unwrap().len(),
        2,
        "old key still published"
    );

    // A registry whose bundle holds both certificates accepts both tokens.
    let registry = registry_for(&new_app, "container_registry", None);
    let skopeo = Skopeo::new();
    let image_dir = tempfile::tempdir().unwrap();
    let image = crate::support::write_oci_image(image_dir.path(), "rotation", "v1");
    let login = blocking(|| skopeo.login(&registry.host(), &username, &token.secret));
    assert!(login.success, "{login}\n{}", registry.log());
    let pushed = blocking(|| skopeo.push(&image, &registry.host(), "acme/web", "v1"));
    assert!(
        pushed.success,
        "push with new-key tokens\n{pushed}\n{}",
        registry.log()
    );
    let manifest = |registry: &Registry| {
        format!(
            "{}/v2/acme/web/manifests/{}",
            registry.url(),
            image.manifest_digest
        )
    };
    let client = reqwest::Client::new();
    let head = |url: String, jwt: &str| {
        client
            .head(url)
            .header("Accept", "application/vnd.oci.image.manifest.v1+json")
            .bearer_auth(jwt)
            .send()
    };
    for (which, jwt) in [("old", &old_jwt), ("new", &new_jwt)] {
        let response = head(manifest(&registry), jwt).await.unwrap();
        assert_eq!(
            response.status(),
            200,
            "{which}-key token\n{}",
            registry.log()
        );
    }

    // Once the old certificate leaves the bundle, its tokens stop verifying.
    let new_only = tempfile::NamedTempFile::new().unwrap();
    let new_cert = std::fs::read_to_string(&generated.cert_path).unwrap();
    std::fs::write(new_only.path(), new_cert).unwrap();
    let strict = Registry::start(RegistryOptions {
        realm: format!("{}/jwt/auth", new_app.address),
        service: "container_registry".into(),
        issuer: "regauth".into(),
        root_cert_bundle: new_only.path().to_path_buf(),
        ..RegistryOptions::default()
    });
    let old = head(manifest(&strict), &old_jwt).await.unwrap();
    assert_eq!(
        old.status(),
        401,
        "old-key token against a new-only bundle\n{}",
        strict.log()
    );
    let new = head(manifest(&strict), &new_jwt).await.unwrap();
    // Authorised, and this registry has no such manifest.
    assert_eq!(
        new.status(),
        404,
        "new-key token against a new-only bundle\n{}",
        strict.log()
    );
}
