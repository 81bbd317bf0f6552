//! Passwords, tokens, sessions and who is asking.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::request::Parts;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mailscribe_core::User;
use mailscribe_core::signin_throttle::{Attempt, Refusal, SignInThrottle};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::client::Clock;
use crate::error::{ApiError, ErrorKind, PageError};

/// Cookies are named here and only here; [`cookie_name`] gives the name a
/// browser sees.
pub(crate) const SESSION_COOKIE: &str = "mailscribe_session";
pub(crate) const LOGIN_CSRF_COOKIE: &str = "mailscribe_login_csrf";
pub(crate) const SESSION_HOURS: i64 = 12;

/// 32 random bytes, URL-safe base64.
pub fn generate_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// What is stored of a token: its SHA-256, hex.
pub fn hash_token(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Argon2id, off the async executor (it takes tens of milliseconds on
/// purpose).
pub async fn hash_password(password: String) -> Result<String, String> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| e.to_string())
    })
    .await
    .map_err(|err| err.to_string())?
}

pub(crate) async fn verify_password(password: String, hash: String) -> bool {
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash).is_ok_and(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
    })
    .await
    .unwrap_or(false)
}

/// The name a cookie has in the browser: with `Secure` cookies (the
/// default), `__Host-` + `base`, which a browser only accepts when Secure,
/// for path `/` and without a domain, so that neither a sibling host nor a
/// plain-HTTP page can plant or overwrite it. With `--insecure-cookies` the
/// prefix cannot be used and the plain name is.
///
/// A request is read under the current name only: a session cookie of the
/// other name (one from before an upgrade, or planted) is ignored, and
/// signing in deletes the plain one.
pub(crate) fn cookie_name(state: &AppState, base: &str) -> String {
    if state.secure_cookies {
        format!("__Host-{base}")
    } else {
        base.to_owned()
    }
}

/// The value of the cookie `base` (see [`cookie_name`]).
pub(crate) fn cookie(state: &AppState, headers: &HeaderMap, base: &str) -> Option<String> {
    let name = cookie_name(state, base);
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_owned())
}

/// A `Set-Cookie` value for the cookie `base` (see [`cookie_name`]).
pub(crate) fn set_cookie(
    state: &AppState,
    base: &str,
    value: &str,
    max_age_seconds: i64,
) -> String {
    let name = cookie_name(state, base);
    let secure = if state.secure_cookies { "; Secure" } else { "" };
    format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_seconds}{secure}")
}

/// Deletes the plain-named cookie `base` left from before `__Host-` names.
pub(crate) fn delete_plain_cookie(base: &str) -> String {
    format!("{base}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
}

/// Someone signed in to the web app with a session cookie.
pub(crate) struct SignedIn {
    pub(crate) user: User,
    pub(crate) csrf: String,
    pub(crate) token_hash: String,
    /// The peer's address, for the audit log (none without a socket).
    pub(crate) client: Option<String>,
}

/// The client address of a request (the peer, or per `X-Forwarded-For` from
/// a trusted proxy; see `client.rs`), when it came through a listener.
pub(crate) fn client_address(extensions: &axum::http::Extensions) -> Option<String> {
    client_ip(extensions).map(|address| address.to_string())
}

pub(crate) fn client_ip(extensions: &axum::http::Extensions) -> Option<std::net::IpAddr> {
    match extensions.get::<crate::client::ClientInfo>() {
        Some(info) => info.address,
        None => extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|info| info.0.ip()),
    }
}

impl SignedIn {
    /// Every form carries the session's CSRF token.
    pub(crate) fn check_csrf(&self, submitted: &str) -> Result<(), PageError> {
        if submitted.is_empty() || submitted != self.csrf {
            return Err(PageError(ErrorKind::Forbidden(
                "the form has expired; reload the page and try again",
            )));
        }
        Ok(())
    }
}

async fn session_user(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<SignedIn>, ErrorKind> {
    let Some(token) = cookie(state, headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    let token_hash = hash_token(&token);
    let now = chrono::Utc::now();
    let idle = chrono::Duration::minutes(i64::from(
        state.store.settings().await?.session_idle_minutes,
    ));
    Ok(state
        .store
        .session_user(&token_hash, now, now - idle)
        .await?
        .map(|(user, csrf)| SignedIn {
            user,
            csrf,
            token_hash,
            client: None,
        }))
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = PageError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<SignedIn, PageError> {
        let mut signed_in = session_user(state, &parts.headers)
            .await?
            .ok_or(PageError(ErrorKind::Unauthenticated))?;
        signed_in.client = client_address(&parts.extensions);
        Ok(signed_in)
    }
}

/// The caller of the API: a bearer token (`mailscribe token create`), or
/// the browser's session. Writes take `ApiWriter` instead, which only
/// accepts a token.
pub(crate) struct ApiUser(pub(crate) User);

impl FromRequestParts<AppState> for ApiUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<ApiUser, ApiError> {
        if let Some(token) = bearer_token(&parts.headers) {
            return state
                .store
                .api_token_user(&hash_token(token), chrono::Utc::now())
                .await?
                .map(ApiUser)
                .ok_or(ApiError(ErrorKind::Unauthenticated));
        }
        session_user(state, &parts.headers)
            .await?
            .map(|s| ApiUser(s.user))
            .ok_or(ApiError(ErrorKind::Unauthenticated))
    }
}

/// The bearer token of `Authorization: Bearer <token>`, if that is what the
/// header holds.
pub(crate) fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|token| !token.is_empty())
}

/// The sign-in throttle of this process (the rules are in
/// `mailscribe_core::signin_throttle`). Per process on purpose: with several
/// `serve` instances an attacker gets each instance's allowance, which the
/// operator can see in the audit log; the lock per pair and the hash budget
/// still hold per instance.
pub(crate) struct LoginThrottle {
    state: Mutex<SignInThrottle>,
    pub(crate) clock: Arc<dyn Clock>,
}

impl LoginThrottle {
    pub(crate) fn new(clock: Arc<dyn Clock>) -> LoginThrottle {
        LoginThrottle {
            state: Mutex::new(SignInThrottle::default()),
            clock,
        }
    }

    /// Lets an attempt through to the password check, or refuses it. Check
    /// and count are one step under the lock.
    pub(crate) fn begin(&self, address: Option<IpAddr>, name: &str) -> Result<Attempt, Refusal> {
        let now = self.clock.now();
        // Without a socket (the router's tests without one) every request
        // shares one address.
        let address = address.unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .begin(address, name, now)
    }

    pub(crate) fn succeeded(&self, attempt: Attempt) {
        let now = self.clock.now();
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .succeeded(attempt, now);
    }
}
