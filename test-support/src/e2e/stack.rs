//! A registry pointed at a fresh regauth, plus an image to push, and the assertions every
//! end-to-end test shares. Every failure message carries the registry's log, since clients
//! report any rejected JWT as "invalid username/password".

use std::path::PathBuf;

use crate::helpers::{spawn_app_with, CreatedToken, TestApp};

use super::client::{ImageRef, User};
use super::{write_oci_image, CommandOutcome, OciImage, Registry, RegistryOptions, Skopeo};

/// What skopeo (containers/image) prints when the registry refuses a token for lack of scope:
/// distribution's `DENIED` and `UNAUTHORIZED` errcodes, or the `insufficient_scope` challenge.
pub const REGISTRY_DENIAL: &[&str] = &[
    "requested access to the resource is denied",
    "authentication required",
    "insufficient_scope",
];

/// What skopeo prints when regauth refuses the credentials themselves (our 401 body, quoted,
/// and containers/image's wording for a failed token request).
pub const CREDENTIALS_REFUSED: &[&str] =
    &["http basic: access denied", "invalid username/password"];

pub struct Stack {
    pub app: TestApp,
    pub registry: Registry,
    pub image: OciImage,
    _images: tempfile::TempDir,
}

impl Stack {
    pub async fn start() -> Stack {
        Stack::start_with(|_| {}).await
    }

    /// [`Stack::start`] with settings of the test's own (e.g. trusted OIDC issuers).
    pub async fn start_with(customise: impl FnOnce(&mut regauth::config::Settings)) -> Stack {
        let app = spawn_app_with(customise).await;
        let registry = registry_for(&app, "container_registry", None);
        let images = tempfile::tempdir().unwrap();
        let image = write_oci_image(images.path(), "regauth e2e", "v1");
        Stack {
            app,
            registry,
            image,
            _images: images,
        }
    }

    /// A registry whose token realm is `realm` (e.g. a separate `regauth serve` process over
    /// `app`'s database and keys) instead of `app`'s own server.
    /// `registry_tls`: certificate and key files for a registry serving HTTPS.
    pub fn for_realm(app: TestApp, realm: &str, registry_tls: Option<(PathBuf, PathBuf)>) -> Stack {
        let registry = Registry::start(RegistryOptions {
            realm: realm.to_owned(),
            service: "container_registry".into(),
            issuer: app.settings.signing.issuer.clone(),
            root_cert_bundle: app.settings.signing.keys_dir.join("bundle.crt"),
            proxy_remote_url: None,
            proxy_credentials: None,
            tls: registry_tls,
            ..RegistryOptions::default()
        });
        let images = tempfile::tempdir().unwrap();
        let image = write_oci_image(images.path(), "regauth e2e", "v1");
        Stack {
            app,
            registry,
            image,
            _images: images,
        }
    }

    /// `app` with a registry started elsewhere (as from `regauth registry-config`).
    pub fn with_registry(app: TestApp, registry: Registry) -> Stack {
        let images = tempfile::tempdir().unwrap();
        let image = write_oci_image(images.path(), "regauth e2e", "v1");
        Stack {
            app,
            registry,
            image,
            _images: images,
        }
    }

    pub fn host(&self) -> String {
        self.registry.host()
    }

    /// `HOST/REPO:TAG` on this registry.
    pub fn image_ref(&self, repo: &str, tag: &str) -> ImageRef {
        ImageRef::new(&self.host(), repo, tag)
    }

    /// A client user with `token`'s credentials.
    pub fn user(&self, token: &CreatedToken) -> User {
        User::new(&token.token.username, &token.secret)
    }

    /// Asserts with the registry log in the message.
    pub fn expect(&self, outcome: &CommandOutcome, success: bool, what: &str) {
        assert_eq!(
            outcome.success,
            success,
            "{what}: expected {}\n{outcome}\n--- registry log ---\n{}",
            if success { "success" } else { "failure" },
            self.registry.log()
        );
    }

    /// Asserts that `outcome` failed, and failed because it was refused: one of `markers`
    /// ([`REGISTRY_DENIAL`] or [`CREDENTIALS_REFUSED`]) is in its output. Any other failure
    /// (a broken command line, a missing image) fails the test.
    pub fn expect_refused(&self, outcome: &CommandOutcome, markers: &[&str], what: &str) {
        self.expect(outcome, false, what);
        let text = format!("{}\n{}", outcome.stdout, outcome.stderr).to_lowercase();
        if !markers.iter().any(|marker| text.contains(marker)) {
            self.fail(&format!(
                "{what}: failed, but not with the expected refusal (none of {markers:?})\n{outcome}"
            ));
        }
    }

    /// Panics with `message`, then the registry log.
    pub fn fail(&self, message: &str) -> ! {
        panic!("{message}\n--- registry log ---\n{}", self.registry.log())
    }

    pub fn login(&self, skopeo: &Skopeo, token: &CreatedToken) -> CommandOutcome {
        blocking(|| skopeo.login(&self.host(), &token.token.username, &token.secret))
    }

    pub fn push(&self, skopeo: &Skopeo, repo: &str) -> CommandOutcome {
        blocking(|| skopeo.push(&self.image, &self.host(), repo, "v1"))
    }

    pub fn pull(&self, skopeo: &Skopeo, repo: &str) -> CommandOutcome {
        let dest = tempfile::tempdir().unwrap();
        blocking(|| skopeo.pull(&self.host(), repo, "v1", dest.path()))
    }

    pub fn digest(&self, skopeo: &Skopeo, repo: &str) -> Result<String, CommandOutcome> {
        blocking(|| skopeo.inspect_digest(&self.host(), repo, "v1"))
    }

    /// A skopeo logged in with `token` (the login must succeed).
    pub fn logged_in(&self, token: &CreatedToken) -> Skopeo {
        let skopeo = Skopeo::new();
        let outcome = self.login(&skopeo, token);
        self.expect(&outcome, true, "login");
        skopeo
    }

    /// The manifest digest the registry serves for `repo:tag`, read with skopeo and `token`
    /// (which must be allowed to pull).
    pub fn registry_digest(&self, token: &CreatedToken, repo: &str, tag: &str) -> String {
        let skopeo = self.logged_in(token);
        blocking(|| skopeo.inspect_digest(&self.host(), repo, tag)).unwrap_or_else(|outcome| {
            self.fail(&format!(
                "skopeo inspect {repo}:{tag} with a token that may pull failed\n{outcome}"
            ))
        })
    }

    /// The repository's directory in the registry's filesystem storage.
    pub fn repository_dir(&self, repo: &str) -> PathBuf {
        self.registry
            .dir()
            .join("storage/docker/registry/v2/repositories")
            .join(repo)
    }

    /// Asserts that `repo:tag` does not exist: `skopeo inspect` with `auditor` (a token that
    /// may pull `repo`) fails with "manifest unknown" / "name unknown", and the registry's
    /// storage holds no tag link for it.
    pub fn assert_tag_absent(&self, auditor: &CreatedToken, repo: &str, tag: &str, context: &str) {
        let skopeo = self.logged_in(auditor);
        match blocking(|| skopeo.inspect_digest(&self.host(), repo, tag)) {
            Ok(digest) => self.fail(&format!(
                "{context}: {repo}:{tag} exists in the registry (digest {digest}) but nothing may have been written"
            )),
            Err(outcome) => {
                let text = format!("{}\n{}", outcome.stdout, outcome.stderr).to_lowercase();
                if !(text.contains("manifest unknown") || text.contains("name unknown")) {
                    self.fail(&format!(
                        "{context}: expected skopeo inspect of {repo}:{tag} to say the manifest or \
                         repository is unknown (proving the tag is absent), but it failed otherwise\n{outcome}"
                    ));
                }
            }
        }
        let link = self.repository_dir(repo).join("_manifests/tags").join(tag);
        if link.exists() {
            self.fail(&format!(
                "{context}: the registry storage has a tag link {}",
                link.display()
            ));
        }
    }
}

/// The clients block; the server runs on the same multi-threaded runtime.
/// A registry that trusts `app` for `service`, optionally a pull-through cache of `upstream`
/// (url, username, password).
pub fn registry_for(
    app: &TestApp,
    service: &str,
    upstream: Option<(String, String, String)>,
) -> Registry {
    let (proxy_remote_url, proxy_credentials) = match upstream {
        Some((url, username, password)) => (Some(url), Some((username, password))),
        None => (None, None),
    };
    Registry::start(RegistryOptions {
        realm: format!("{}/jwt/auth", app.address),
        service: service.into(),
        issuer: app.settings.signing.issuer.clone(),
        root_cert_bundle: app.settings.signing.keys_dir.join("bundle.crt"),
        proxy_remote_url,
        proxy_credentials,
        tls: None,
        ..RegistryOptions::default()
    })
}

pub fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}
