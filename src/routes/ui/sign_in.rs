//! `/users/sign_in` and `/users/sign_out`: the sign-in form (password or personal access
//! token, brute-force limited), the session cookie, and where sign-in may send the browser.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest};
use chrono::Utc;

use super::pages::SignInPage;
use super::{
    cookie_value, html, read_form, remove_cookie, see_other, session, session_form, set_cookie,
    PageError, PageResult, CSRF_FIELD, SESSION_COOKIE, SIGN_IN_CSRF_COOKIE,
};
use crate::client_address;
use crate::error::Error;
use crate::metrics::LoginRoute;
use crate::service::login_guard::Attempt;
use crate::service::web_sessions::{self, Password};
use crate::state::AppState;

#[derive(serde::Deserialize)]
pub(super) struct SignInQuery {
    redirect_to: Option<String>,
}

/// Where sign-in may send the browser: a local path of this site only, by a strict grammar —
/// one `/`, then RFC 3986 path characters (and a query), with no empty first segment, no
/// backslash, no white space or control character, and no percent-encoded slash, backslash or
/// control character. Browsers strip tabs and newlines and read `\` as `/`, so `/\t/evil`,
/// `/\evil` and `/%2F/evil` would otherwise leave the site; CR/LF would break the header.
/// Anything else is `/`.
fn local_path(target: Option<&str>) -> &str {
    match target {
        Some(path) if is_local_path(path) => path,
        _ => "/",
    }
}

const LOCAL_PATH_MAX: usize = 2048;

fn is_local_path(path: &str) -> bool {
    let bytes = path.as_bytes();
    if bytes.len() > LOCAL_PATH_MAX || bytes.first() != Some(&b'/') || bytes.get(1) == Some(&b'/') {
        return false;
    }
    let allowed =
        |byte: u8| byte.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/%?".contains(&byte);
    if !bytes.iter().all(|&byte| allowed(byte)) {
        return false;
    }
    // Every `%` starts an escape of two hex digits that is not `/`, `\` or a control.
    let mut rest = path;
    while let Some(at) = rest.find('%') {
        let escape = rest.get(at + 1..at + 3).unwrap_or("");
        let Ok(byte) = u8::from_str_radix(escape, 16) else {
            return false;
        };
        if escape.len() != 2 || byte < 0x20 || byte == 0x7f || byte == b'/' || byte == b'\\' {
            return false;
        }
        rest = &rest[at + 3..];
    }
    true
}

fn sign_in_form(
    state: &AppState,
    status: StatusCode,
    redirect_to: &str,
    username: String,
    error: Option<String>,
    notice: Option<String>,
) -> PageResult {
    let csrf = web_sessions::random_token()?;
    let mut response = html(
        status,
        &SignInPage {
            user_name: None,
            csrf: csrf.clone(),
            username,
            redirect_to: redirect_to.to_owned(),
            error,
            notice,
        },
    );
    set_cookie(
        &mut response,
        state,
        SIGN_IN_CSRF_COOKIE,
        &csrf,
        "/users",
        None,
    );
    Ok(response)
}

pub(super) async fn sign_in_page(
    request: HttpRequest,
    query: web::Query<SignInQuery>,
    state: web::Data<AppState>,
) -> PageResult {
    let redirect_to = local_path(query.redirect_to.as_deref());
    if let Some(id) = cookie_value(&request, &state, SESSION_COOKIE) {
        if web_sessions::resume(state.store.as_ref(), &id, Utc::now())
            .await?
            .is_some()
        {
            return Ok(see_other(redirect_to));
        }
    }
    sign_in_form(
        &state,
        StatusCode::OK,
        redirect_to,
        String::new(),
        None,
        None,
    )
}

pub(super) async fn sign_in(
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> PageResult {
    // Nobody is signed in yet: the small sign-in form is read at once, bounded in size and time.
    let limits = &state.settings.limits;
    let form = read_form(&request, payload, limits.token_body_limit, &state).await?;
    let redirect_to = local_path(Some(form.get("redirect_to")));
    let expected = cookie_value(&request, &state, SIGN_IN_CSRF_COOKIE).unwrap_or_default();
    if !web_sessions::csrf_matches(&expected, form.get(CSRF_FIELD)) {
        return Err(PageError::Csrf);
    }
    let username = form.get("username").trim().to_owned();
    let address = client_address::text_of_request(&request);
    // A failed sign-in counts toward the brute-force limits, per address and username.
    let attempt = Attempt::new(
        address.clone(),
        Some(&username),
        LoginRoute::Web,
        &state.token_formats,
    );
    let result = state
        .logins
        .check_password(
            &attempt,
            web_sessions::sign_in(
                state.store.as_ref(),
                &state.token_formats,
                &username,
                Password::new(form.get("password").to_owned()),
                address.as_deref(),
                state.settings.login.session_ttl,
                Utc::now(),
            ),
        )
        .await;
    match result {
        Ok(new) => {
            let mut response = see_other(redirect_to);
            set_cookie(
                &mut response,
                &state,
                SESSION_COOKIE,
                new.id.expose(),
                "/",
                Some(state.settings.login.session_ttl),
            );
            remove_cookie(&mut response, &state, SIGN_IN_CSRF_COOKIE, "/users");
            Ok(response)
        }
        // One message whatever was wrong, as GitLab says it.
        Err(Error::Unauthorized) => sign_in_form(
            &state,
            StatusCode::UNAUTHORIZED,
            redirect_to,
            username,
            Some("Invalid username or password.".into()),
            None,
        ),
        Err(other) => Err(other.into()),
    }
}

pub(super) async fn sign_out(
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> PageResult {
    let session = session(&request, &state).await?;
    let form = session_form(&request, payload, &state).await?;
    session.check_csrf(&form)?;
    web_sessions::sign_out(state.store.as_ref(), &session.session).await?;
    let mut response = see_other("/users/sign_in");
    remove_cookie(&mut response, &state, SESSION_COOKIE, "/");
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::local_path;

    #[test]
    fn sign_in_redirects_only_to_local_paths_of_a_strict_grammar() {
        for local in [
            "/",
            "/acme/web/-/settings/repository",
            "/groups/acme/-/deploy_tokens/7",
            "/?search=web%20app",
            "/acme/we%C3%BCb",
        ] {
            assert_eq!(local_path(Some(local)), local);
        }
        for hostile in [
            "//evil.example",
            "/\\evil.example",
            "\\/evil.example",
            "/\t/evil.example",
            "/%09/evil.example",
            "/%2F/evil.example",
            "/%2f/evil.example",
            "/%5C/evil.example",
            "/%5c%5cevil.example",
            "/%0d%0aSet-Cookie:x=1",
            "/\r\nSet-Cookie: x=1",
            "/x\ny",
            "javascript:alert(1)",
            "https://evil.example",
            "evil.example",
            "/ /evil.example",
            "/%",
            "/%zz",
            "/%0",
            "",
        ] {
            assert_eq!(local_path(Some(hostile)), "/", "{hostile:?}");
        }
        assert_eq!(local_path(Some(&format!("/{}", "a".repeat(3000)))), "/");
        assert_eq!(local_path(None), "/");
    }
}
