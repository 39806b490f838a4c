//! Signing in to the web pages: passwords (argon2id, verified on the bounded password threads
//! of `password_pool`, hashed off the async executor),
//! server-side sessions stored by the digest of their id, CSRF tokens, and the namespaces a
//! signed-in person may manage. Permission rules stay in `access::permissions`.

use argon2::password_hash::{PasswordHasher, SaltString};
use argon2::Argon2;
use chrono::{DateTime, Utc};
use ring::rand::SecureRandom as _;

use super::caller::Caller;
use crate::access::permissions::{self, TokenOperation};
use crate::auth::authenticate_personal_access_token;
use crate::domain::token_format::TokenFormats;
use crate::domain::NamespacePath;
use crate::domain::{Namespace, Role, TokenSecret, User, ValidationError};
use crate::error::Error;
use crate::store::{NewWebSession, Store, WebSession};

/// GitLab's bounds for passwords.
const PASSWORD_MIN_CHARS: usize = 8;
const PASSWORD_MAX_BYTES: usize = 128;

/// How many groups and projects the start page lists at most.
pub const NAMESPACE_LIST_LIMIT: u64 = 200;

/// A password as typed; `Debug` never prints it.
pub struct Password(String);

impl Password {
    pub fn new(text: String) -> Password {
        Password(text)
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// A session just created: the id goes into the cookie and is never stored.
#[derive(Debug)]
pub struct NewSession {
    pub id: TokenSecret,
    pub session: WebSession,
    pub user: User,
}

fn random_text() -> Result<TokenSecret, Error> {
    TokenSecret::generate("").map_err(|_| Error::internal("the system random generator failed"))
}

/// A fresh random value for a CSRF token or a form nonce (192 bits, base64url).
pub fn random_token() -> Result<String, Error> {
    Ok(random_text()?.expose().to_owned())
}

/// Compares a presented CSRF token with the expected one in constant time.
pub fn csrf_matches(expected: &str, presented: &str) -> bool {
    crate::domain::secret::constant_time_eq(expected.as_bytes(), presented.as_bytes())
}

fn hash_blocking(password: &str) -> Result<String, Error> {
    let mut salt = [0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut salt)
        .map_err(|_| Error::internal("the system random generator failed"))?;
    let salt = SaltString::encode_b64(&salt)
        .map_err(|error| Error::internal_from("cannot encode a salt", error.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|error| Error::internal_from("cannot hash the password", error.to_string()))
}

/// The hash a sign-in for a user without a password is checked against, so that the time
/// taken does not tell whether the user or password exists.
async fn dummy_hash() -> Result<String, Error> {
    static DUMMY: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
    DUMMY
        .get_or_try_init(|| async { blocking(|| hash_blocking("regauth-dummy-password")).await? })
        .await
        .cloned()
}

/// Verifies in constant work whatever the stored hash, on the bounded password threads.
async fn verify(password: &str, stored: Option<String>) -> Result<bool, Error> {
    let (hash, real) = match stored {
        Some(hash) => (hash, true),
        None => (dummy_hash().await?, false),
    };
    let verified = super::password_pool::verify(password.to_owned(), hash).await?;
    Ok(real && verified)
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Error> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| Error::internal_from("a password hashing task failed", error))
}

/// Sets a user's web password (`regauth user password`); their sessions end.
pub async fn set_password(
    store: &dyn Store,
    caller: &Caller,
    username: &str,
    password: Password,
    now: DateTime<Utc>,
) -> Result<User, Error> {
    let user = super::users::find(store, username).await?;
    let Password(password) = password;
    if password.chars().count() < PASSWORD_MIN_CHARS {
        return Err(ValidationError::new(
            "password",
            format!("is too short (minimum is {PASSWORD_MIN_CHARS} characters)"),
        )
        .into());
    }
    if password.len() > PASSWORD_MAX_BYTES {
        return Err(ValidationError::new(
            "password",
            format!("is too long (maximum is {PASSWORD_MAX_BYTES} bytes)"),
        )
        .into());
    }
    let hash = blocking(move || hash_blocking(&password)).await??;
    let audit = caller.audit(
        crate::domain::AuditAction::UserPasswordChange,
        None,
        serde_json::json!({"user_id": user.id, "username": user.username}),
        now,
    );
    store.set_user_password(user.id, &hash, now, &audit).await?;
    store.delete_web_sessions_of_user(user.id).await?;
    Ok(user)
}

/// Logs a failed web sign-in. The brute-force limits count it through `LoginGuard::check`
/// around this function's caller (`routes/ui`), as for every other credential check.
fn record_failed_sign_in(username: &str, formats: &TokenFormats, ip_address: Option<&str>) {
    // A secret typed into the username field must not reach the log.
    let username = crate::domain::secret::username_for_records(username, formats);
    tracing::warn!(
        username = %username,
        client = ip_address.unwrap_or("unknown"),
        "web sign-in failed"
    );
}

/// Signs in with a password or a personal access token. Every failure is the same
/// `Unauthorized`: unknown user, wrong password, blocked user, revoked token.
pub async fn sign_in(
    store: &dyn Store,
    formats: &TokenFormats,
    username: &str,
    password: Password,
    ip_address: Option<&str>,
    ttl: std::time::Duration,
    now: DateTime<Utc>,
) -> Result<NewSession, Error> {
    let username = username.trim();
    let user = store.find_user_by_username(username).await?;
    let stored = match &user {
        Some(user) => store.find_user_password(user.id).await?,
        None => None,
    };
    let Password(password) = password;
    let verified = verify(&password, stored).await?;
    let mut signed_in = match user {
        Some(user) if verified && !user.blocked => Some((user, None)),
        _ => None,
    };
    if signed_in.is_none() {
        // A personal access token in the password field, as GitLab accepts for Git over HTTP.
        let secret = TokenSecret::from_presented(password);
        if let Ok((user, token)) =
            authenticate_personal_access_token(store, formats, &secret, now).await
        {
            if user.username == username {
                signed_in = Some((user, Some(token)));
            }
        }
    }
    let Some((user, access_token)) = signed_in else {
        record_failed_sign_in(username, formats, ip_address);
        return Err(Error::Unauthorized);
    };
    let id = random_text()?;
    let csrf_token = random_token()?;
    let ttl = chrono::Duration::from_std(ttl)
        .map_err(|error| Error::internal_from("session lifetime out of range", error))?;
    // A session signed in with a token never outlives it: it ends when the token expires (and
    // `resume` ends it when the token is revoked).
    let expires_at = access_token
        .as_ref()
        .and_then(|token| token.expires_at)
        .map_or(now + ttl, |token_expiry| token_expiry.min(now + ttl));
    let session = store
        .create_web_session(NewWebSession {
            digest: &id.digest(),
            user_id: user.id,
            csrf_token: &csrf_token,
            may_write: access_token.as_ref().is_none_or(|token| token.can_write()),
            personal_access_token_id: access_token.as_ref().map(|token| token.id),
            created_at: now,
            expires_at,
        })
        .await?;
    // Expired sessions are swept here, where sessions are made: no extra job.
    store.delete_expired_web_sessions(now).await?;
    tracing::info!(user = user.username, "signed in to the web pages");
    Ok(NewSession { id, session, user })
}

/// The session behind a cookie, if it is still valid. An expired session, one whose user is
/// blocked, or one signed in with a personal access token that is no longer active (revoked,
/// expired) is deleted and reported as absent.
pub async fn resume(
    store: &dyn Store,
    session_id: &str,
    now: DateTime<Utc>,
) -> Result<Option<(WebSession, User)>, Error> {
    let digest = TokenSecret::from_presented(session_id.to_owned()).digest();
    let Some((session, user)) = store.find_web_session(&digest).await? else {
        return Ok(None);
    };
    let ended = if user.blocked {
        Some("its user is blocked")
    } else if now >= session.expires_at {
        Some("it expired")
    } else if !signed_in_with_active_token(store, &session, now).await? {
        Some("the personal access token it was signed in with is revoked or expired")
    } else {
        None
    };
    if let Some(reason) = ended {
        store.delete_web_session(session.id).await?;
        tracing::info!(user = user.username, reason, "web session ended");
        return Ok(None);
    }
    Ok(Some((session, user)))
}

/// True for a password session, or one whose personal access token is still active.
async fn signed_in_with_active_token(
    store: &dyn Store,
    session: &WebSession,
    now: DateTime<Utc>,
) -> Result<bool, Error> {
    let Some(token_id) = session.personal_access_token_id else {
        return Ok(true);
    };
    Ok(store
        .find_personal_access_token(token_id)
        .await?
        .is_some_and(|token| token.is_active(now) && token.can_read()))
}

/// True the first time this session submits the form carrying `nonce`; false for a
/// repeat (a reload re-posting it), which must neither act again nor show a secret again.
pub async fn first_submission(
    store: &dyn Store,
    session: &WebSession,
    nonce: &str,
) -> Result<bool, Error> {
    if nonce.is_empty() {
        return Ok(false);
    }
    Ok(store.consume_form_nonce(session.id, nonce).await?)
}

pub async fn sign_out(store: &dyn Store, session: &WebSession) -> Result<(), Error> {
    store.delete_web_session(session.id).await?;
    Ok(())
}

/// The caller a session acts as, for the deploy-token services.
pub fn caller(session: &WebSession, user: User, ip_address: Option<String>) -> Caller {
    Caller::user(user, session.may_write, ip_address)
}

/// A group or project on the start page, with what the caller may do there.
#[derive(Debug, Clone)]
pub struct ManageableNamespace {
    pub namespace: Namespace,
    pub role: Option<Role>,
    pub may_create: bool,
}

/// The groups and projects whose deploy tokens the caller may at least list, paths
/// containing `search`. Roles are inherited down the tree, as `UserStore::highest_role`
/// computes them; the decision is `permissions::may_manage_tokens`'s.
pub async fn manageable_namespaces(
    store: &dyn Store,
    caller: &Caller,
    user: &User,
    search: &str,
) -> Result<Vec<ManageableNamespace>, Error> {
    let memberships = if user.admin {
        Vec::new()
    } else {
        store.memberships_of_user(user.id).await?
    };
    let namespaces = if user.admin {
        store
            .search_namespaces(None, search, NAMESPACE_LIST_LIMIT)
            .await?
    } else {
        let roots: Vec<NamespacePath> = memberships
            .iter()
            .map(|(namespace, _)| namespace.full_path.clone())
            .collect();
        store
            .search_namespaces(Some(&roots), search, NAMESPACE_LIST_LIMIT)
            .await?
    };
    let principal = caller.principal();
    Ok(namespaces
        .into_iter()
        .filter_map(|namespace| {
            let role = memberships
                .iter()
                .filter(|(member_of, _)| {
                    member_of
                        .full_path
                        .is_same_or_ancestor_of(&namespace.full_path)
                })
                .map(|(_, role)| *role)
                .max();
            let kind = namespace.kind;
            let may = |operation| permissions::may_manage_tokens(principal, operation, kind, role);
            may(TokenOperation::List).then(|| ManageableNamespace {
                may_create: may(TokenOperation::Create),
                namespace,
                role,
            })
        })
        .collect())
}
