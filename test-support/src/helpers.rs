//! `spawn_app()`: a fresh database (SQLite by default, PostgreSQL when
//! `REGAUTH_TEST_DATABASE=postgres`), fresh keys, the app on port 0, and request helpers.

use std::sync::Arc;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use regauth::config::Settings;
use regauth::domain::deploy_token::DeployTokenRequest;
use regauth::domain::{DeployToken, NamespaceKind};
use regauth::service::caller::Caller;
use regauth::service::namespaces::NamespaceRef;
use regauth::service::{deploy_tokens, namespaces, users};
use regauth::startup::Application;
use regauth::store::{self, SeaStore, Store};
use sea_orm::{ActiveModelTrait, ConnectionTrait, DatabaseConnection, EntityTrait, Set};

pub struct TestApp {
    pub address: String,
    pub settings: Settings,
    pub store: Arc<dyn Store>,
    pub db: DatabaseConnection,
    pub client: reqwest::Client,
    /// The PostgreSQL database this app made for itself (not one a test handed it, which
    /// outlives the app), dropped with the app.
    own_postgres_database: Option<String>,
    _dir: tempfile::TempDir,
}

/// A database URL for one test: a file in `dir`, or a new PostgreSQL database.
pub async fn fresh_database_url(dir: &std::path::Path) -> String {
    if std::env::var("REGAUTH_TEST_DATABASE").as_deref() == Ok("postgres") {
        assert!(
            std::env::var_os("REGAUTH_TEST_POSTGRES_URL").is_some(),
            "REGAUTH_TEST_DATABASE=postgres needs REGAUTH_TEST_POSTGRES_URL"
        );
        fresh_postgres_url(dir)
            .await
            .expect("REGAUTH_TEST_POSTGRES_URL is set")
    } else {
        format!("sqlite://{}?mode=rwc", dir.join("regauth.db").display())
    }
}

/// A new, empty PostgreSQL database named after `dir` on the server of
/// `REGAUTH_TEST_POSTGRES_URL` (which `scripts/test.sh` provides), whatever
/// `REGAUTH_TEST_DATABASE` says; `None` when that variable is unset.
pub async fn fresh_postgres_url(dir: &std::path::Path) -> Option<String> {
    let admin_url = std::env::var("REGAUTH_TEST_POSTGRES_URL").ok()?;
    let name = format!(
        "regauth_test_{}",
        dir.file_name()
            .unwrap()
            .to_string_lossy()
            .to_lowercase()
            .replace(|c: char| !c.is_ascii_alphanumeric(), "")
    );
    let admin = sea_orm::Database::connect(&admin_url)
        .await
        .expect("connect to PostgreSQL");
    admin
        .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
        .await
        .expect("create test database");
    admin.close().await.ok();
    let (base, _) = admin_url.rsplit_once('/').expect("database name in URL");
    Some(format!("{base}/{name}"))
}

pub async fn test_settings(dir: &std::path::Path) -> Settings {
    let mut settings = Settings::defaults();
    settings.server.listen = "127.0.0.1:0".parse().unwrap();
    settings.database.url = fresh_database_url(dir).await;
    settings.signing.keys_dir = dir.join("keys");
    settings.database.max_connections = 5;
    // The server's hourly pruner runs once at start, at a moment the test does not control:
    // tests that write old records and prune them call `prune_issue_records` themselves.
    settings.housekeeping.audit_retention_days = 0;
    settings
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(customise: impl FnOnce(&mut Settings)) -> TestApp {
    // Quiet unless asked: `TEST_LOG=1 cargo test ...` shows the server's log (RUST_LOG
    // filters it as usual).
    if std::env::var_os("TEST_LOG").is_some() {
        regauth::telemetry::init(
            regauth::config::LogFormat::Text,
            regauth::telemetry::Verbosity::Informative,
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let mut settings = test_settings(dir.path()).await;
    let made_url = settings.database.url.clone();
    customise(&mut settings);
    let own_postgres_database = (settings.database.url == made_url)
        .then(|| postgres_database_name(&made_url))
        .flatten();
    let application = Application::build(settings.clone())
        .await
        .expect("build app");
    let scheme = if settings.server.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let address = format!("{scheme}://127.0.0.1:{}", application.port());
    settings.server.public_url = Some(address.clone());
    let db = store::connect(&settings.database.url, 2, false)
        .await
        .unwrap();
    // On SQLite the tests write through a connection of their own, as another process would,
    // and the server sees it on the next request. On PostgreSQL another writer is seen within
    // 1 s (the change counter is polled), so the tests write through the server's own store.
    let test_store: Arc<dyn Store> = if settings.database.url.starts_with("postgres") {
        Arc::new(application.store())
    } else {
        Arc::new(SeaStore::new(db.clone()))
    };
    tokio::spawn(application.run_until_stopped());
    TestApp {
        address,
        settings,
        store: test_store,
        db,
        // A server that stops answering fails the test instead of hanging it.
        client: reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(120))
            .build()
            .unwrap(),
        own_postgres_database,
        _dir: dir,
    }
}

pub struct CreatedToken {
    pub token: DeployToken,
    pub secret: String,
}

impl TestApp {
    pub async fn create_group(&self, path: &str) {
        namespaces::create(
            self.store.as_ref(),
            &Caller::operator(),
            NamespaceKind::Group,
            path,
            Utc::now(),
        )
        .await
        .unwrap();
    }

    pub async fn create_project(&self, path: &str) {
        namespaces::create(
            self.store.as_ref(),
            &Caller::operator(),
            NamespaceKind::Project,
            path,
            Utc::now(),
        )
        .await
        .unwrap();
    }

    /// Creates the groups and the project along `path` (`a/b/c` → groups a, a/b; project a/b/c).
    pub async fn create_project_with_groups(&self, path: &str) {
        let components: Vec<&str> = path.split('/').collect();
        for depth in 1..components.len() {
            let group = components[..depth].join("/");
            let exists = namespaces::find(
                self.store.as_ref(),
                NamespaceKind::Group,
                &NamespaceRef::Path(group.clone()),
            )
            .await
            .is_ok();
            if !exists {
                self.create_group(&group).await;
            }
        }
        self.create_project(path).await;
    }

    pub async fn create_token(
        &self,
        kind: NamespaceKind,
        owner: &str,
        scopes: &[&str],
    ) -> CreatedToken {
        self.create_token_with(kind, owner, scopes, None).await
    }

    pub async fn create_token_with(
        &self,
        kind: NamespaceKind,
        owner: &str,
        scopes: &[&str],
        username: Option<&str>,
    ) -> CreatedToken {
        self.create_token_full(kind, owner, "test token", scopes, username)
            .await
    }

    pub async fn create_named_token(
        &self,
        kind: NamespaceKind,
        owner: &str,
        name: &str,
        scopes: &[&str],
    ) -> CreatedToken {
        self.create_token_full(kind, owner, name, scopes, None)
            .await
    }

    async fn create_token_full(
        &self,
        kind: NamespaceKind,
        owner: &str,
        name: &str,
        scopes: &[&str],
        username: Option<&str>,
    ) -> CreatedToken {
        let request = DeployTokenRequest {
            name: name.into(),
            username: username.map(str::to_owned),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            expires_at: None,
            ..Default::default()
        };
        self.create_token_from(kind, owner, request).await
    }

    /// A token made from a whole request (restrictions included), as the CLI makes it.
    pub async fn create_token_from(
        &self,
        kind: NamespaceKind,
        owner: &str,
        request: DeployTokenRequest,
    ) -> CreatedToken {
        let owner = namespaces::find(self.store.as_ref(), kind, &NamespaceRef::Path(owner.into()))
            .await
            .unwrap();
        let (ci_key, _) = regauth::ci_secret::CiSecretKey::load_or_generate(
            &self.settings.signing.ci_secret_key_file(),
        )
        .unwrap();
        let operator = Caller::operator();
        let authorized = deploy_tokens::authorize(
            self.store.as_ref(),
            &operator,
            regauth::access::permissions::TokenOperation::Create,
            &owner,
        )
        .await
        .unwrap();
        let created = deploy_tokens::create(
            self.store.as_ref(),
            &authorized,
            request,
            self.settings.tokens.lifetime,
            &self.settings.tokens.formats(),
            &ci_key,
            Utc::now(),
        )
        .await
        .unwrap();
        CreatedToken {
            secret: created.secret.expose().to_owned(),
            token: created.token,
        }
    }

    /// Sets a token's expiry directly in the database (the service refuses past dates).
    pub async fn set_expiry(&self, token_id: i64, expires_at: DateTime<Utc>) {
        let row = entity::deploy_token::Entity::find_by_id(token_id)
            .one(&self.db)
            .await
            .unwrap()
            .unwrap();
        let mut row: entity::deploy_token::ActiveModel = row.into();
        row.expires_at = Set(Some(expires_at));
        row.update(&self.db).await.unwrap();
        if self.settings.database.url.starts_with("postgres") {
            // Written behind the server's back: a PostgreSQL server sees it within 1 s.
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        }
    }

    pub async fn revoke(&self, token_id: i64) {
        deploy_tokens::revoke_by_id(
            self.store.as_ref(),
            &Caller::operator(),
            token_id,
            Utc::now(),
        )
        .await
        .unwrap();
    }

    /// `GET /.well-known/jwks.json`: the public keys the server publishes.
    pub async fn jwks(&self) -> serde_json::Value {
        self.client
            .get(format!("{}/.well-known/jwks.json", self.address))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// The text of `GET /metrics`.
    pub async fn metrics_text(&self) -> String {
        self.client
            .get(format!("{}/metrics", self.address))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// `GET /jwt/auth` with Basic credentials.
    pub async fn get_token(
        &self,
        credentials: Option<(&str, &str)>,
        query: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut request = self
            .client
            .get(format!("{}/jwt/auth", self.address))
            .query(query);
        if let Some((username, password)) = credentials {
            request = request.basic_auth(username, Some(password));
        }
        request.send().await.unwrap()
    }

    /// `POST /jwt/auth` with a form body, as containerd sends it.
    pub async fn post_token(&self, form: &[(&str, &str)]) -> reqwest::Response {
        self.client
            .post(format!("{}/jwt/auth", self.address))
            .header(
                "Content-Type",
                "application/x-www-form-urlencoded; charset=utf-8",
            )
            .body(serde_urlencoded::to_string(form).unwrap())
            .send()
            .await
            .unwrap()
    }

    pub async fn token_access(
        &self,
        token: &CreatedToken,
        service: &str,
        scopes: &[&str],
    ) -> serde_json::Value {
        let mut query = vec![("service", service)];
        query.extend(scopes.iter().map(|s| ("scope", *s)));
        let response = self
            .get_token(Some((&token.token.username, &token.secret)), &query)
            .await;
        assert_eq!(response.status(), 200, "token request failed");
        let body: serde_json::Value = response.json().await.unwrap();
        jwt_claims(body["token"].as_str().unwrap())["access"].clone()
    }
}

impl TestApp {
    /// Sets a project's visibility, as `regauth project update --visibility` does.
    pub async fn set_visibility(&self, path: &str, visibility: regauth::domain::Visibility) {
        namespaces::set_visibility(
            self.store.as_ref(),
            &Caller::operator(),
            &NamespaceRef::Path(path.to_owned()),
            visibility,
        )
        .await
        .unwrap();
    }

    /// Asks `/-/forward-auth` about `method uri` as nginx's `auth_request` does when set up
    /// as the README says (the original URI in `X-Original-URI`, the method in
    /// `X-Original-Method`), with optional Basic credentials.
    pub async fn forward_auth(
        &self,
        method: &str,
        uri: &str,
        credentials: Option<(&str, &str)>,
    ) -> reqwest::Response {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self
            .client
            .request(method.clone(), format!("{}/-/forward-auth", self.address))
            .header("X-Original-URI", uri)
            .header("X-Original-Method", method.as_str());
        if let Some((username, password)) = credentials {
            request = request.basic_auth(username, Some(password));
        }
        request.send().await.unwrap()
    }

    /// Creates a user with a personal access token; returns the token's secret.
    pub async fn create_user(&self, username: &str, admin: bool, scopes: &str) -> String {
        users::create(
            self.store.as_ref(),
            &Caller::operator(),
            &regauth::domain::Username::parse(username).unwrap(),
            &regauth::domain::Email::parse(&format!("{username}@example.com")).unwrap(),
            admin,
            Utc::now(),
        )
        .await
        .unwrap();
        let (_, secret) = users::create_personal_access_token(
            self.store.as_ref(),
            &Caller::operator(),
            &self.settings.tokens.formats(),
            username,
            "test",
            users::parse_api_scopes(scopes).unwrap(),
            None,
            self.settings.tokens.lifetime,
            Utc::now(),
        )
        .await
        .unwrap();
        secret.expose().to_owned()
    }

    pub async fn add_member(
        &self,
        username: &str,
        kind: NamespaceKind,
        path: &str,
        role: regauth::domain::Role,
    ) {
        users::add_member(
            self.store.as_ref(),
            &Caller::operator(),
            username,
            kind,
            path,
            role,
            Utc::now(),
        )
        .await
        .unwrap();
    }

    pub async fn block_user(&self, username: &str) {
        users::set_blocked(self.store.as_ref(), &Caller::operator(), username, true)
            .await
            .unwrap();
    }

    /// A request to the management API with a personal access token.
    pub fn api(&self, method: reqwest::Method, path: &str, token: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}/api/v4{path}", self.address))
            .header("PRIVATE-TOKEN", token)
    }
}

/// The claims of a JWT, unverified (the registry end-to-end tests verify signatures).
pub fn jwt_claims(jwt: &str) -> serde_json::Value {
    jwt_part(jwt, 1)
}

pub fn jwt_header(jwt: &str) -> serde_json::Value {
    jwt_part(jwt, 0)
}

fn jwt_part(jwt: &str, index: usize) -> serde_json::Value {
    let part = jwt.split('.').nth(index).expect("JWT part");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("JSON")
}

/// Waits for `check` to answer `Some` (polled every 50 ms), or fails naming `what` after
/// `limit`: the tests wait on the condition, never for a fixed time.
pub async fn eventually<T>(
    what: &str,
    limit: std::time::Duration,
    mut check: impl AsyncFnMut() -> Option<T>,
) -> T {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: not within {limit:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

impl TestApp {
    /// Waits until the background usage writer has recorded a registry token issued to this
    /// deploy token (it flushes about once a second).
    pub async fn wait_for_token_issue_record(&self, deploy_token_id: i64) {
        let store = Arc::clone(&self.store);
        eventually(
            "the registry_token.issue record",
            std::time::Duration::from_secs(15),
            async || {
                store
                    .audit_events_for_deploy_token(deploy_token_id)
                    .await
                    .ok()?
                    .iter()
                    .any(|event| event.action == regauth::domain::AuditAction::RegistryTokenIssue)
                    .then_some(())
            },
        )
        .await;
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(name) = self.own_postgres_database.take() {
            drop_postgres_database(&name);
        }
    }
}

/// A test's own PostgreSQL database goes when the test ends (with `FORCE`: a server under
/// test may still hold connections), so a full PostgreSQL pass leaves no hundreds of
/// databases behind. In a thread of its own: `Drop` cannot wait on the test's runtime.
pub fn drop_postgres_database(name: &str) {
    let Ok(admin_url) = std::env::var("REGAUTH_TEST_POSTGRES_URL") else {
        return;
    };
    let statement = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
    let dropped = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .ok()?;
        runtime.block_on(async {
            let admin = sea_orm::Database::connect(&admin_url).await.ok()?;
            let result = admin.execute_unprepared(&statement).await;
            admin.close().await.ok();
            result.ok()
        })
    })
    .join();
    if !matches!(dropped, Ok(Some(_))) {
        eprintln!("note: the test database {name} was not dropped");
    }
}

/// The database of a `postgres://…/regauth_test_…` URL made by [`fresh_postgres_url`].
pub fn postgres_database_name(url: &str) -> Option<String> {
    if !url.starts_with("postgres") {
        return None;
    }
    let (_, name) = url.rsplit_once('/')?;
    let name = name.split('?').next()?;
    (name.starts_with("regauth_test_")
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
    .then(|| name.to_owned())
}
