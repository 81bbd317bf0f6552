//! Single sign-on with OpenID Connect (authorization code flow with PKCE):
//! the redirect to the provider, the callback that verifies the ID token and
//! starts a session, and the admins' page that configures the provider.
//!
//! The pending sign-in (state, nonce, PKCE verifier) is kept in the
//! database, tied to the browser by a cookie, so any `serve` instance can
//! answer the callback. The ID token is verified by `openidconnect` against
//! the provider's JWKS: signature (RS256), issuer (pinned to the configured
//! one, which discovery must repeat exactly), audience (the client id),
//! expiry and nonce.

use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use chrono::{Duration, Utc};
use mailscribe_core::{RoleMapping, SealedSecret, SecretRef, SsoConfig};
use mailscribe_store::{SsoIdentity, SsoPending, SsoSignIn};
use openidconnect::core::{CoreClient, CoreProviderMetadata, CoreResponseType};
use openidconnect::{
    AuthenticationFlow, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope,
};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::AppState;
use crate::auth::{SignedIn, client_address, cookie, generate_token, hash_token};
use crate::email_logging::{BoxFuture, admin, admin_form, respond};
use crate::error::{ErrorKind, PageError};

/// Ties a pending sign-in to the browser that started it. `SameSite=Lax`:
/// the callback is a top-level navigation coming from the provider's site,
/// which a `Strict` cookie would not accompany.
pub(crate) const SSO_COOKIE: &str = "mailscribe_sso";
/// How long a started sign-in may take at the provider.
const PENDING_MINUTES: i64 = 10;

/// What single sign-on needs from the binary: the client secret, which is
/// sealed under the key only the binary holds, or read from a source.
pub trait SsoBackend: Send + Sync {
    /// Seals a client secret typed into the admin page.
    fn seal_client_secret(&self, plain: &SecretString) -> Result<SealedSecret, String>;
    /// The client secret, opened or read from its source.
    fn client_secret<'a>(
        &'a self,
        secret: &'a SecretRef,
    ) -> BoxFuture<'a, Result<SecretString, String>>;
    /// Why a source typed into the web may not be used on this server.
    fn refuse_source(&self, source: &SecretRef) -> Option<String>;
}

/// Why a sign-in with the provider failed, before any account was looked at.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SsoError {
    #[error("single sign-on is not configured")]
    NotConfigured,
    #[error("the sign-in expired or was already used; start again")]
    UnknownState,
    #[error("the sign-in was started in another browser")]
    OtherBrowser,
    #[error("the provider refused: {0}")]
    Provider(String),
    #[error("the provider cannot be reached or answered wrongly: {0}")]
    Discovery(String),
    #[error("the token request failed: {0}")]
    TokenRequest(String),
    #[error("the provider returned no ID token")]
    NoIdToken,
    #[error("the ID token was refused: {0}")]
    IdToken(String),
    #[error("the client secret cannot be read: {0}")]
    Secret(String),
    #[error("{0}")]
    Config(String),
}

impl SsoError {
    /// A short code for the audit log.
    fn code(&self) -> &'static str {
        match self {
            SsoError::NotConfigured => "not_configured",
            SsoError::UnknownState => "unknown_state",
            SsoError::OtherBrowser => "other_browser",
            SsoError::Provider(_) => "provider_error",
            SsoError::Discovery(_) => "discovery_failed",
            SsoError::TokenRequest(_) => "token_request_failed",
            SsoError::NoIdToken => "no_id_token",
            SsoError::IdToken(_) => "id_token_refused",
            SsoError::Secret(_) => "client_secret_unreadable",
            SsoError::Config(_) => "bad_configuration",
        }
    }
}

/// The HTTP client for discovery, the JWKS and the token request: no
/// redirects (the token request carries the client secret), short timeouts.
fn http_client() -> Result<openidconnect::reqwest::Client, SsoError> {
    openidconnect::reqwest::Client::builder()
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(15))
        .build()
        .map_err(|err| SsoError::Discovery(err.to_string()))
}

/// The provider's metadata and keys. Discovery itself refuses a document
/// whose `issuer` differs from the configured issuer.
async fn discover(
    config: &SsoConfig,
    http: &openidconnect::reqwest::Client,
) -> Result<CoreProviderMetadata, SsoError> {
    let issuer = IssuerUrl::new(config.issuer.clone())
        .map_err(|err| SsoError::Config(format!("issuer: {err}")))?;
    CoreProviderMetadata::discover_async(issuer, http)
        .await
        .map_err(|err| SsoError::Discovery(error_chain(&err)))
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The redirect URL: configured, or this server's `/sso/callback` as the
/// browser reached it (`https` when the request came over TLS, directly or
/// per a trusted proxy's `X-Forwarded-Proto`).
fn redirect_url(config: &SsoConfig, headers: &HeaderMap, https: bool) -> Result<String, SsoError> {
    if let Some(url) = &config.redirect_url {
        return Ok(url.clone());
    }
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.is_empty() && !h.contains(['/', '?', '#', '@', ' ']))
        .ok_or_else(|| {
            SsoError::Config("the request names no host: configure --redirect-url".into())
        })?;
    let scheme = if https { "https" } else { "http" };
    Ok(format!("{scheme}://{host}/sso/callback"))
}

/// Lax, unlike the session cookie: it must come back with the provider's
/// redirect to the callback. Named like the others (`cookie_name`).
fn sso_cookie(state: &AppState, value: &str, max_age_seconds: i64) -> String {
    let name = crate::auth::cookie_name(state, SSO_COOKIE);
    let secure = if state.secure_cookies { "; Secure" } else { "" };
    format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_seconds}{secure}")
}

/// `GET /sso/login`: redirects to the provider's authorization endpoint.
pub(crate) async fn start(
    State(state): State<AppState>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
) -> Result<Response, PageError> {
    let Some(config) = state.store.sso_config().await? else {
        return Err(PageError(ErrorKind::NotFound));
    };
    match authorization_redirect(&state, &config, &headers, came_over_tls(&extensions)).await {
        Ok(response) => Ok(response),
        Err(err) => {
            tracing::warn!(error = %err, "single sign-on could not start");
            failure_page(&state, StatusCode::BAD_GATEWAY, &err.to_string()).await
        }
    }
}

async fn authorization_redirect(
    state: &AppState,
    config: &SsoConfig,
    headers: &HeaderMap,
    https: bool,
) -> Result<Response, SsoError> {
    let http = http_client()?;
    let metadata = discover(config, &http).await?;
    let redirect = redirect_url(config, headers, https)?;
    let client =
        CoreClient::from_provider_metadata(metadata, ClientId::new(config.client_id.clone()), None)
            .set_redirect_uri(
                RedirectUrl::new(redirect.clone())
                    .map_err(|err| SsoError::Config(format!("redirect URL: {err}")))?,
            );
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, csrf_state, nonce) = client
        .authorize_url(
            AuthenticationFlow::<CoreResponseType>::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("profile".into()))
        .set_pkce_challenge(challenge)
        .url();
    let browser = generate_token();
    let now = Utc::now();
    let pending = SsoPending {
        state_hash: hash_token(csrf_state.secret()),
        browser_hash: hash_token(&browser),
        nonce: nonce.secret().clone(),
        pkce_verifier: verifier.secret().clone(),
        redirect_url: redirect,
        expires_at: now + Duration::minutes(PENDING_MINUTES),
    };
    state
        .store
        .put_sso_pending(&pending, now)
        .await
        .map_err(|err| SsoError::Config(err.to_string()))?;
    Ok((
        [(
            SET_COOKIE,
            sso_cookie(state, &browser, PENDING_MINUTES * 60),
        )],
        Redirect::to(url.as_str()),
    )
        .into_response())
}

#[derive(Deserialize, Default)]
pub(crate) struct CallbackQuery {
    #[serde(default)]
    code: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_description: String,
}

/// The verified ID token: who, and the claims as JSON for the name and
/// role claims.
struct Verified {
    issuer: String,
    subject: String,
    claims: serde_json::Map<String, serde_json::Value>,
}

/// The string values of a claim: a string is one value, a list of strings
/// its elements, anything else none.
fn claim_values(claims: &serde_json::Map<String, serde_json::Value>, name: &str) -> Vec<String> {
    match claims.get(name) {
        Some(serde_json::Value::String(value)) => vec![value.clone()],
        Some(serde_json::Value::Array(values)) => values
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        Some(serde_json::Value::Number(number)) => vec![number.to_string()],
        _ => Vec::new(),
    }
}

/// The identity a verified token stands for, with the role a new account
/// would get.
fn identity(config: &SsoConfig, verified: &Verified) -> SsoIdentity {
    let values = |claim: &str| claim_values(&verified.claims, claim);
    SsoIdentity {
        issuer: verified.issuer.clone(),
        subject: verified.subject.clone(),
        name: values(&config.name_claim).into_iter().next(),
        role: config
            .roles
            .as_ref()
            .and_then(|mapping: &RoleMapping| mapping.role_for(values)),
    }
}

/// Exchanges the code and verifies the ID token.
async fn verify_callback(
    state: &AppState,
    query: &CallbackQuery,
    headers: &HeaderMap,
) -> Result<(SsoConfig, Verified), SsoError> {
    let config = state
        .store
        .sso_config()
        .await
        .map_err(|err| SsoError::Config(err.to_string()))?
        .ok_or(SsoError::NotConfigured)?;
    if query.state.is_empty() {
        return Err(SsoError::UnknownState);
    }
    let pending = state
        .store
        .take_sso_pending(&hash_token(&query.state), Utc::now())
        .await
        .map_err(|err| SsoError::Config(err.to_string()))?
        .ok_or(SsoError::UnknownState)?;
    let browser = cookie(state, headers, SSO_COOKIE).unwrap_or_default();
    if browser.is_empty() || hash_token(&browser) != pending.browser_hash {
        return Err(SsoError::OtherBrowser);
    }
    if !query.error.is_empty() {
        let description: String = query.error_description.chars().take(300).collect();
        return Err(SsoError::Provider(format!(
            "{} {description}",
            query.error.chars().take(64).collect::<String>()
        )));
    }
    if query.code.is_empty() {
        return Err(SsoError::Provider("no authorization code".into()));
    }
    let backend = state.sso_backend.as_deref().ok_or_else(|| {
        SsoError::Secret("this server was started without a secret backend".into())
    })?;
    let secret = backend
        .client_secret(&config.client_secret)
        .await
        .map_err(SsoError::Secret)?;
    let http = http_client()?;
    let metadata = discover(&config, &http).await?;
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(config.client_id.clone()),
        Some(ClientSecret::new(secret.expose_secret().to_owned())),
    )
    .set_redirect_uri(
        RedirectUrl::new(pending.redirect_url.clone())
            .map_err(|err| SsoError::Config(err.to_string()))?,
    );
    let response = client
        .exchange_code(AuthorizationCode::new(query.code.clone()))
        .map_err(|err| SsoError::Config(err.to_string()))?
        .set_pkce_verifier(PkceCodeVerifier::new(pending.pkce_verifier.clone()))
        .request_async(&http)
        .await
        .map_err(|err| SsoError::TokenRequest(error_chain(&err)))?;
    let id_token = openidconnect::TokenResponse::id_token(&response).ok_or(SsoError::NoIdToken)?;
    let verifier = client.id_token_verifier();
    let claims = id_token
        .claims(&verifier, &Nonce::new(pending.nonce.clone()))
        .map_err(|err| SsoError::IdToken(error_chain(&err)))?;
    let issuer = claims.issuer().as_str().to_owned();
    let subject = claims.subject().as_str().to_owned();
    // The signature is verified: the payload's other claims can be read.
    let compact = id_token.to_string();
    let payload = compact.split('.').nth(1).unwrap_or("");
    let claims = base64::Engine::decode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        payload.trim_end_matches('='),
    )
    .ok()
    .and_then(|bytes| {
        serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&bytes).ok()
    })
    .ok_or_else(|| SsoError::IdToken("the payload is not a JSON object".into()))?;
    Ok((
        config,
        Verified {
            issuer,
            subject,
            claims,
        },
    ))
}

/// `GET /sso/callback`: the provider sends the browser back here.
pub(crate) async fn callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    Query(query): Query<CallbackQuery>,
) -> Result<Response, PageError> {
    let client = client_address(&extensions);
    let (config, verified) = match verify_callback(&state, &query, &headers).await {
        Ok(verified) => verified,
        Err(err) => {
            tracing::warn!(error = %err, "single sign-on refused");
            crate::audit::record_as(
                &state,
                "sso",
                client,
                "sso_sign_in_failed",
                None,
                Some(format!("{}: {err}", err.code())),
            )
            .await?;
            return failure_page(&state, StatusCode::FORBIDDEN, &err.to_string()).await;
        }
    };
    let identity = identity(&config, &verified);
    let outcome = state.store.sso_sign_in(&identity, Utc::now()).await?;
    let (user, how) = match outcome {
        SsoSignIn::Known(user) => (user, "linked account".to_owned()),
        SsoSignIn::LinkedExisting(user) => (
            user,
            "first sign-in: linked to the existing user".to_owned(),
        ),
        SsoSignIn::Created(user) => {
            let how = format!(
                "first sign-in: user created with role {}",
                user.role.as_str()
            );
            crate::audit::record_as(
                &state,
                "sso",
                client.clone(),
                "user_added",
                Some(&user.name),
                Some(how.clone()),
            )
            .await?;
            (user, how)
        }
        SsoSignIn::Refused(refusal) => {
            // Name a local user only by their user name; otherwise the
            // provider's opaque subject, never a claim that may be an
            // e-mail address.
            let target = match &refusal {
                mailscribe_store::SsoRefusal::Disabled(name)
                | mailscribe_store::SsoRefusal::NameLinkedElsewhere(name) => name.clone(),
                _ => format!(
                    "sub:{}",
                    identity.subject.chars().take(128).collect::<String>()
                ),
            };
            crate::audit::record_as(
                &state,
                "sso",
                client,
                "sso_sign_in_failed",
                Some(&target),
                Some(refusal.code().to_owned()),
            )
            .await?;
            let message = match refusal {
                mailscribe_store::SsoRefusal::Disabled(_) => "This account is disabled.",
                mailscribe_store::SsoRefusal::NameLinkedElsewhere(_) => {
                    "A user of this name is linked to another account of the provider; ask an admin."
                }
                _ => "Your account at the provider has no role in Mailscribe; ask an admin.",
            };
            return failure_page(&state, StatusCode::FORBIDDEN, message).await;
        }
    };
    crate::audit::record_as(
        &state,
        &user.name,
        client,
        "sso_sign_in",
        Some(&user.name),
        Some(how),
    )
    .await?;
    let now = Utc::now();
    state.store.record_sign_in(user.id, now).await?;
    let idle = Duration::minutes(i64::from(
        state.store.settings().await?.session_idle_minutes,
    ));
    state.store.purge_sessions(now, now - idle).await?;
    let session = crate::pages::start_session(&state, user.id).await?;
    // The session cookie is `SameSite=Strict`: a redirect chain that began
    // at the provider's site would not send it, so the browser is sent on
    // by a page of our own (a same-site navigation).
    let mut response = (StatusCode::OK, Html(SignedInPage.render()?)).into_response();
    for value in session.headers().get_all(SET_COOKIE) {
        response.headers_mut().append(SET_COOKIE, value.clone());
    }
    if let Ok(clear) = sso_cookie(&state, "", 0).parse() {
        response.headers_mut().append(SET_COOKIE, clear);
    }
    Ok(response)
}

#[derive(Template)]
#[template(path = "sso_signed_in.html")]
struct SignedInPage;

async fn failure_page(
    state: &AppState,
    status: StatusCode,
    problem: &str,
) -> Result<Response, PageError> {
    crate::pages::login_page(
        state,
        status,
        Some(format!("Single sign-on failed: {problem}")),
    )
    .await
}

/// The provider's button on the sign-in page, when SSO is configured.
pub(crate) async fn provider_label(state: &AppState) -> Result<Option<String>, PageError> {
    Ok(state
        .store
        .sso_config()
        .await?
        .map(|config| config.provider_label()))
}

#[derive(Template)]
#[template(path = "sso_admin.html")]
struct AdminPage {
    user_name: String,
    role: String,
    csrf: String,
    configured: bool,
    form: SsoForm,
    secret_shown: String,
    local_passwords: bool,
    callback_hint: String,
    notice: String,
    problem: String,
}

/// The admin page's form; empty fields are "none".
#[derive(Deserialize, Default, Clone)]
pub(crate) struct SsoForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    issuer: String,
    #[serde(default)]
    client_id: String,
    /// A secret typed in: sealed at once. Empty: keep the stored one.
    #[serde(default)]
    client_secret: String,
    /// Or a source, `env:NAME` or `file:PATH`.
    #[serde(default)]
    client_secret_from: String,
    #[serde(default)]
    redirect_url: String,
    #[serde(default)]
    name_claim: String,
    #[serde(default)]
    role_claim: String,
    #[serde(default)]
    admin_value: String,
    #[serde(default)]
    user_value: String,
    #[serde(default)]
    salesperson_claim: String,
}

impl SsoForm {
    fn of(config: &SsoConfig) -> SsoForm {
        let roles = config.roles.as_ref();
        SsoForm {
            csrf: String::new(),
            issuer: config.issuer.clone(),
            client_id: config.client_id.clone(),
            client_secret: String::new(),
            client_secret_from: match &config.client_secret {
                SecretRef::Sealed(_) => String::new(),
                other => other.to_storage(),
            },
            redirect_url: config.redirect_url.clone().unwrap_or_default(),
            name_claim: config.name_claim.clone(),
            role_claim: roles.map(|r| r.claim.clone()).unwrap_or_default(),
            admin_value: roles.map(|r| r.admin_value.clone()).unwrap_or_default(),
            user_value: roles.map(|r| r.user_value.clone()).unwrap_or_default(),
            salesperson_claim: roles
                .and_then(|r| r.salesperson_claim.clone())
                .unwrap_or_default(),
        }
    }
}

#[derive(Deserialize, Default)]
pub(crate) struct NoticeQuery {
    #[serde(default)]
    notice: String,
}

async fn admin_page(
    state: &AppState,
    signed_in: &SignedIn,
    headers: &HeaderMap,
    https: bool,
    form: Option<SsoForm>,
    notice: String,
    problem: String,
) -> Result<Response, PageError> {
    let stored = state.store.sso_config().await?;
    let callback_hint = match &stored {
        Some(config) => redirect_url(config, headers, https).unwrap_or_default(),
        None => {
            let blank = SsoConfig {
                issuer: String::new(),
                client_id: String::new(),
                client_secret: SecretRef::Env(String::new()),
                redirect_url: None,
                name_claim: String::new(),
                roles: None,
            };
            redirect_url(&blank, headers, https).unwrap_or_default()
        }
    };
    let page = AdminPage {
        user_name: signed_in.user.name.clone(),
        role: signed_in.user.role.to_string(),
        csrf: signed_in.csrf.clone(),
        configured: stored.is_some(),
        secret_shown: stored
            .as_ref()
            .map(|c| c.client_secret.describe())
            .unwrap_or_default(),
        form: form
            .or_else(|| stored.as_ref().map(SsoForm::of))
            .unwrap_or_else(|| SsoForm {
                name_claim: mailscribe_core::sso::DEFAULT_NAME_CLAIM.to_owned(),
                ..SsoForm::default()
            }),
        local_passwords: state.store.settings().await?.local_passwords,
        callback_hint,
        notice,
        problem,
    };
    let refused = !page.problem.is_empty();
    respond(&page, refused)
}

/// `GET /admin/sso`.
pub(crate) async fn show(
    State(state): State<AppState>,
    signed_in: SignedIn,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    Query(query): Query<NoticeQuery>,
) -> Result<Response, PageError> {
    admin(&signed_in)?;
    admin_page(
        &state,
        &signed_in,
        &headers,
        came_over_tls(&extensions),
        None,
        query.notice,
        String::new(),
    )
    .await
}

fn non_empty(text: &str) -> Option<String> {
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

/// The record a form describes, with the secret sealed or as a source. A
/// kept secret goes only to the issuer and client it was stored for.
fn config_from_form(
    state: &AppState,
    form: &SsoForm,
    stored: Option<&SsoConfig>,
) -> Result<SsoConfig, String> {
    let backend = state.sso_backend.as_deref().ok_or("this server cannot seal secrets (it was started without a secret backend); use `mailscribe serve`")?;
    let issuer = form.issuer.trim().trim_end_matches('/').to_owned();
    let client_id = form.client_id.trim().to_owned();
    let client_secret = if let Some(plain) = non_empty(&form.client_secret) {
        SecretRef::Sealed(backend.seal_client_secret(&SecretString::from(plain))?)
    } else if let Some(source) = non_empty(&form.client_secret_from) {
        let source = SecretRef::parse_source(&source).map_err(|err| err.to_string())?;
        if let SecretRef::Sealed(_) = source {
            return Err("give the client secret itself or a source (env:NAME, file:PATH)".into());
        }
        if let Some(reason) = source.refused_from_web() {
            return Err(reason.to_owned());
        }
        if let Some(reason) = backend.refuse_source(&source) {
            return Err(reason);
        }
        source
    } else {
        match stored {
            Some(old) if old.issuer == issuer && old.client_id == client_id => {
                old.client_secret.clone()
            }
            Some(_) => {
                return Err("the issuer or client id changed: give the client secret again".into());
            }
            None => {
                return Err(
                    "give the client secret, or a source for it (env:NAME, file:PATH)".into(),
                );
            }
        }
    };
    let roles = non_empty(&form.role_claim).map(|claim| RoleMapping {
        claim,
        admin_value: form.admin_value.trim().to_owned(),
        user_value: form.user_value.trim().to_owned(),
        salesperson_claim: non_empty(&form.salesperson_claim),
    });
    let config = SsoConfig {
        issuer,
        client_id,
        client_secret,
        redirect_url: non_empty(&form.redirect_url),
        name_claim: non_empty(&form.name_claim)
            .unwrap_or_else(|| mailscribe_core::sso::DEFAULT_NAME_CLAIM.to_owned()),
        roles,
    };
    config.validate().map_err(|err| err.to_string())?;
    Ok(config)
}

/// `POST /admin/sso`: saves the provider.
pub(crate) async fn save(
    State(state): State<AppState>,
    signed_in: SignedIn,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    Form(form): Form<SsoForm>,
) -> Result<Response, PageError> {
    admin_form(&signed_in, &form.csrf)?;
    let stored = state.store.sso_config().await?;
    match config_from_form(&state, &form, stored.as_ref()) {
        Ok(config) => {
            state.store.save_sso_config(&config, Utc::now()).await?;
            let detail = format!("issuer {}, client id {}", config.issuer, config.client_id);
            crate::audit::record(&state, &signed_in, "sso_configured", None, Some(detail)).await?;
            Ok(Redirect::to("/admin/sso?notice=Single%20sign-on%20saved").into_response())
        }
        Err(problem) => {
            let mut shown = form;
            shown.client_secret.clear();
            admin_page(
                &state,
                &signed_in,
                &headers,
                came_over_tls(&extensions),
                Some(shown),
                String::new(),
                problem,
            )
            .await
        }
    }
}

#[derive(Deserialize, Default)]
pub(crate) struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /admin/sso/disable`.
pub(crate) async fn disable(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Form(form): Form<CsrfForm>,
) -> Result<Response, PageError> {
    admin_form(&signed_in, &form.csrf)?;
    if state.store.remove_sso_config().await? {
        crate::audit::record(&state, &signed_in, "sso_disabled", None, None).await?;
    }
    Ok(Redirect::to("/admin/sso?notice=Single%20sign-on%20is%20off").into_response())
}

/// Whether the request came over TLS, as the client layer decided.
fn came_over_tls(extensions: &axum::http::Extensions) -> bool {
    extensions
        .get::<crate::client::ClientInfo>()
        .is_some_and(|client| client.https)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claim_values_take_strings_and_lists() {
        let claims: serde_json::Map<String, serde_json::Value> = serde_json::from_str(
            r#"{"roles": ["a", 1, "b"], "name": "sally", "n": 7, "o": {"x": 1}}"#,
        )
        .unwrap();
        assert_eq!(claim_values(&claims, "roles"), ["a", "b"]);
        assert_eq!(claim_values(&claims, "name"), ["sally"]);
        assert_eq!(claim_values(&claims, "n"), ["7"]);
        assert!(claim_values(&claims, "o").is_empty());
        assert!(claim_values(&claims, "missing").is_empty());
    }
}
