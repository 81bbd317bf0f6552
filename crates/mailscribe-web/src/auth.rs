//! Passwords, tokens, sessions and who is asking.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::request::Parts;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mailscribe_core::User;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::error::{ApiError, ErrorKind, PageError};

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

pub(crate) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_owned())
}

pub(crate) fn set_cookie(
    state: &AppState,
    name: &str,
    value: &str,
    max_age_seconds: i64,
) -> String {
    let secure = if state.secure_cookies { "; Secure" } else { "" };
    format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_seconds}{secure}")
}

/// Someone signed in to the web app with a session cookie.
pub(crate) struct SignedIn {
    pub(crate) user: User,
    pub(crate) csrf: String,
    pub(crate) token_hash: String,
    /// The peer's address, for the audit log (none without a socket).
    pub(crate) client: Option<String>,
}

/// The peer address of a request, when it came through a listener.
pub(crate) fn client_address(extensions: &axum::http::Extensions) -> Option<String> {
    extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|info| info.0.ip().to_string())
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
    let Some(token) = cookie(headers, SESSION_COOKIE) else {
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
/// the browser's session.
pub(crate) struct ApiUser(pub(crate) User);

impl FromRequestParts<AppState> for ApiUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<ApiUser, ApiError> {
        let bearer = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if let Some(token) = bearer {
            return state
                .store
                .api_token_user(&hash_token(token.trim()), chrono::Utc::now())
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

/// Slows down password guessing: after five failures for one user name,
/// each further attempt waits a lockout that doubles, up to 15 minutes.
#[derive(Default)]
pub(crate) struct LoginThrottle {
    failures: Mutex<HashMap<String, (u32, Instant)>>,
}

const FREE_FAILURES: u32 = 5;

impl LoginThrottle {
    /// Counts an attempt for `name`; `Err` while the name is locked out.
    /// Check and count are one step under the lock.
    pub(crate) fn begin(&self, name: &str) -> Result<(), ()> {
        let now = Instant::now();
        let mut failures = self
            .failures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if failures.len() > 10_000 {
            failures.retain(|_, (_, until)| *until > now);
        }
        let entry = failures.entry(name.to_lowercase()).or_insert((0, now));
        if entry.0 >= FREE_FAILURES && now < entry.1 {
            return Err(());
        }
        entry.0 += 1;
        if entry.0 >= FREE_FAILURES {
            let doublings = (entry.0 - FREE_FAILURES).min(4);
            entry.1 =
                now + Duration::from_secs(60 * (1 << doublings)).min(Duration::from_secs(900));
        } else {
            entry.1 = now + Duration::from_secs(900);
        }
        Ok(())
    }

    pub(crate) fn succeeded(&self, name: &str) {
        let mut failures = self
            .failures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        failures.remove(&name.to_lowercase());
    }
}
