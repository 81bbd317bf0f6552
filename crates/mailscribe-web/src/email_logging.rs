//! Email logging setup, for admins: the setup page with every field of
//! PRODUCT.md section 6, check setup, enable (after accepting the data
//! statement) and disable, clear setup, and the assisted setup in steps.
//!
//! Talking to the mail server and sealing secrets happen outside this
//! crate, behind [`SetupBackend`], which the binary provides: the web crate
//! knows no IMAP and holds no key.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;

use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use chrono::Utc;
use mailscribe_core::check::all_passed;
use mailscribe_core::setup::{EXCHANGE_ONLINE_SCOPE, entra_token_url};
use mailscribe_core::{
    Amount, AuthKind, CheckLine, Enablement, InteractionTemplate, MailboxSetup, OAuthSetup, SealedSecret, SecretRef,
    Security, Settings, TlsTrust, data_statement,
};
use secrecy::SecretString;
use serde::Deserialize;

use crate::AppState;
use crate::auth::SignedIn;
use crate::error::{ErrorKind, PageError};

/// Which secret a value is: sealed values are bound to their purpose, so
/// one cannot be swapped in for another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretField {
    Password,
    ClientId,
    ClientSecret,
}

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What the setup pages need from the binary.
pub trait SetupBackend: Send + Sync {
    /// Encrypts a secret typed into a form under the key kept outside the
    /// database.
    fn seal(&self, field: SecretField, plain: &SecretString) -> Result<SealedSecret, String>;
    /// The selectable folders of the server, as the folder fields take
    /// them (namespaces included).
    fn list_folders<'a>(&'a self, setup: &'a MailboxSetup) -> BoxFuture<'a, Result<Vec<String>, String>>;
    /// The lines of `mailscribe check`, for this setup.
    fn check<'a>(&'a self, setup: &'a MailboxSetup) -> BoxFuture<'a, Vec<CheckLine>>;
    /// Why a secret source typed into the web may not be used on this
    /// server (e.g. the key file), if it may not.
    fn refuse_source(&self, source: &SecretRef) -> Option<String>;
}

/// Unfinished assisted setups, one per admin. Nothing reaches the store
/// before the last step, so leaving the flow changes nothing.
#[derive(Default)]
pub(crate) struct Drafts(std::sync::Mutex<HashMap<i64, Draft>>);

#[derive(Clone)]
pub(crate) struct Draft {
    setup: MailboxSetup,
    settings: Settings,
    template: InteractionTemplate,
    /// The server's folders, listed at the folders step.
    folders: Vec<String>,
}

impl Drafts {
    fn get(&self, user: i64) -> Option<Draft> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).get(&user).cloned()
    }
    fn put(&self, user: i64, draft: Draft) {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).insert(user, draft);
    }
    fn remove(&self, user: i64) {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).remove(&user);
    }
}

/// Every field of the setup form; the assisted setup posts a subset.
/// Empty secret fields keep what is stored.
#[derive(Deserialize, Default, Clone)]
#[serde(default)]
pub(crate) struct SetupForm {
    csrf: String,
    step: u8,
    host: String,
    port: String,
    security: String,
    ca_file: String,
    trust: String,
    allow_plaintext: Option<String>,
    auth: String,
    username: String,
    password: String,
    password_source: String,
    tenant: String,
    token_url: String,
    client_id: String,
    client_id_source: String,
    client_secret: String,
    client_secret_source: String,
    scope: String,
    queue: String,
    storage: String,
    not_logged: String,
    quarantine: String,
    batch_size: String,
    interval: String,
    time_zone: String,
    storage_mode: String,
    sensitivity_rule: String,
    max_attempts: String,
    retention: String,
    cost: String,
    minutes: String,
    accept: Option<String>,
}

/// The mailbox today's setup URLs work on.
fn default_mailbox() -> mailscribe_core::MailboxName {
    mailscribe_core::MailboxName::default_name()
}

fn admin(signed_in: &SignedIn) -> Result<(), PageError> {
    if !signed_in.user.is_admin() {
        return Err(PageError(ErrorKind::Forbidden("only an admin can change the email logging setup")));
    }
    Ok(())
}

fn admin_form(signed_in: &SignedIn, csrf: &str) -> Result<(), PageError> {
    signed_in.check_csrf(csrf)?;
    admin(signed_in)
}

fn trimmed(text: &str) -> Option<String> {
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

fn backend(state: &AppState) -> Result<&dyn SetupBackend, String> {
    state.setup_backend.as_deref().ok_or_else(|| {
        "this server cannot reach the mail server (it was started without a setup backend); use `mailscribe serve`".to_owned()
    })
}

/// A secret field: a new value typed in (sealed now), a source
/// (`env:NAME` or `file:PATH`, read at each run), or empty to keep the
/// stored one. `exec:` is refused: a web session must not run commands.
fn secret(
    state: &AppState,
    field: SecretField,
    label: &str,
    typed: &str,
    source: &str,
    kept: Option<&SecretRef>,
) -> Result<Option<SecretRef>, String> {
    match (typed.is_empty(), trimmed(source)) {
        (false, Some(_)) => Err(format!("give the {label} one way only: typed in, or as a source")),
        (false, None) => {
            let sealed = backend(state)?.seal(field, &SecretString::from(typed.to_owned()))?;
            Ok(Some(SecretRef::Sealed(sealed)))
        }
        (true, Some(source)) => {
            let parsed = SecretRef::parse_source(&source).map_err(|err| format!("{label}: {err}"))?;
            if let Some(why) = parsed.refused_from_web() {
                return Err(format!("{label}: {why}"));
            }
            if let Some(why) = state.setup_backend.as_deref().and_then(|backend| backend.refuse_source(&parsed)) {
                return Err(format!("{label}: {why}"));
            }
            Ok(Some(parsed))
        }
        (true, None) => Ok(kept.cloned()),
    }
}

/// A setup with nothing filled in yet.
fn blank_setup() -> MailboxSetup {
    MailboxSetup {
        host: String::new(),
        port: 993,
        security: Security::Tls,
        auth: AuthKind::Basic,
        username: String::new(),
        password: None,
        oauth: None,
        queue_folder: String::new(),
        storage_folder: String::new(),
        not_logged_folder: None,
        quarantine_folder: None,
        batch_size: MailboxSetup::DEFAULT_BATCH_SIZE,
        allow_plaintext: false,
        ca_file: None,
        tls_trust: TlsTrust::Bundled,
    }
}

/// Server and security: host, port, TLS choices, batch size.
fn server_from_form(form: &SetupForm, setup: &mut MailboxSetup) -> Result<(), String> {
    setup.host = trimmed(&form.host).ok_or("the server host is needed")?;
    setup.security = form.security.parse().map_err(|err| format!("{err}"))?;
    setup.port = match trimmed(&form.port) {
        None if setup.security == Security::Tls => 993,
        None => 143,
        Some(port) => port.parse::<u16>().ok().filter(|p| *p > 0).ok_or("the port is a number from 1 to 65535")?,
    };
    setup.tls_trust = match trimmed(&form.trust) {
        None => TlsTrust::Bundled,
        Some(trust) => trust.parse().map_err(|err| format!("{err}"))?,
    };
    setup.ca_file = trimmed(&form.ca_file);
    setup.allow_plaintext = form.allow_plaintext.is_some();
    if let Some(size) = trimmed(&form.batch_size) {
        setup.batch_size =
            size.parse::<u32>().ok().filter(|n| (1..=10_000).contains(n)).ok_or("the batch size is a number from 1 to 10000")?;
    }
    Ok(())
}

/// Authentication: the mailbox user and its password or OAuth2 client.
/// Secrets left empty keep what `setup` holds.
fn auth_from_form(state: &AppState, form: &SetupForm, setup: &mut MailboxSetup) -> Result<(), String> {
    let auth: AuthKind = form.auth.parse().map_err(|err| format!("{err}"))?;
    let username = trimmed(&form.username).ok_or("the mailbox user is needed")?;
    let (password, oauth) = match auth {
        AuthKind::Basic => {
            let password = secret(state, SecretField::Password, "password", &form.password, &form.password_source, setup.password.as_ref())?
                .ok_or("basic authentication needs a password, or a source such as env:IMAP_PASSWORD")?;
            (Some(password), None)
        }
        AuthKind::OAuth2 => {
            let kept = setup.oauth.as_ref();
            let (token_url, tenant) = match (trimmed(&form.token_url), trimmed(&form.tenant)) {
                (Some(url), tenant) => (url, tenant),
                (None, Some(tenant)) => (entra_token_url(&tenant), Some(tenant)),
                (None, None) => return Err("OAuth2 needs the Entra ID tenant, or the token URL of another OAuth2 server".into()),
            };
            if !(token_url.starts_with("https://") || token_url.starts_with("http://")) {
                return Err("the token URL is a web address starting with https://".into());
            }
            let client_id = secret(state, SecretField::ClientId, "client id", form.client_id.trim(), &form.client_id_source, kept.map(|o| &o.client_id))?
                .ok_or("OAuth2 needs the application (client) id")?;
            let client_secret = secret(state, SecretField::ClientSecret, "client secret", &form.client_secret, &form.client_secret_source, kept.map(|o| &o.client_secret))?
                .ok_or("OAuth2 needs the client secret, or a source such as env:CLIENT_SECRET")?;
            let scope = trimmed(&form.scope).unwrap_or_else(|| EXCHANGE_ONLINE_SCOPE.to_owned());
            (None, Some(OAuthSetup { token_url, tenant, client_id, client_secret, scope }))
        }
    };
    setup.auth = auth;
    setup.username = username;
    setup.password = password;
    setup.oauth = oauth;
    Ok(())
}

/// The whole setup page: server, authentication and folders.
fn setup_from_form(state: &AppState, form: &SetupForm, kept: Option<&MailboxSetup>) -> Result<MailboxSetup, String> {
    let mut setup = kept.cloned().unwrap_or_else(blank_setup);
    server_from_form(form, &mut setup)?;
    auth_from_form(state, form, &mut setup)?;
    folders_from_form(form, &mut setup)?;
    Ok(setup)
}

/// The folder half of the form.
fn folders_from_form(form: &SetupForm, setup: &mut MailboxSetup) -> Result<(), String> {
    setup.queue_folder = trimmed(&form.queue).ok_or("choose the queue folder")?;
    setup.storage_folder = trimmed(&form.storage).ok_or("choose the storage folder")?;
    setup.not_logged_folder = trimmed(&form.not_logged);
    setup.quarantine_folder = trimmed(&form.quarantine);
    if setup.queue_folder == setup.storage_folder {
        return Err("the queue and the storage folder must be different folders".into());
    }
    Ok(())
}

/// The options half: settings and the interaction template. Storage mode
/// is only changed when `may_change_mode` (it is part of what the admin
/// accepted when enabling).
fn options_from_form(
    form: &SetupForm,
    settings: &mut Settings,
    template: &mut InteractionTemplate,
    may_change_mode: bool,
) -> Result<(), String> {
    let fields = [
        ("interval", &form.interval),
        ("time_zone", &form.time_zone),
        ("sensitivity_rule", &form.sensitivity_rule),
        ("max_attempts", &form.max_attempts),
        ("not_logged_retention_days", &form.retention),
    ];
    for (key, value) in fields {
        if let Some(value) = trimmed(value) {
            settings.set(key, &value).map_err(|err| err.to_string())?;
        }
    }
    if let Some(mode) = trimmed(&form.storage_mode) {
        if mode != settings.storage_mode.as_str() {
            if !may_change_mode {
                return Err("the storage mode is part of the accepted data statement: disable logging to change it".into());
            }
            settings.set("storage_mode", &mode).map_err(|err| err.to_string())?;
        }
    }
    if let Some(cost) = trimmed(&form.cost) {
        template.cost = cost.parse::<Amount>().map_err(|err| format!("cost: {err}"))?;
    }
    if let Some(minutes) = trimmed(&form.minutes) {
        template.duration_minutes =
            minutes.parse().ok().filter(|m| *m <= 24 * 60).ok_or("the duration is a number of minutes up to 1440")?;
    }
    Ok(())
}

async fn save_options(state: &AppState, settings: &Settings, template: &InteractionTemplate) -> Result<(), PageError> {
    for (key, value) in settings.pairs() {
        state.store.save_setting(key, &value).await?;
    }
    state.store.save_template(template).await?;
    Ok(())
}

async fn email_template(state: &AppState) -> Result<InteractionTemplate, PageError> {
    Ok(state.store.template(InteractionTemplate::EMAIL).await?.unwrap_or(InteractionTemplate {
        code: InteractionTemplate::EMAIL.into(),
        description: "Email".into(),
        cost: Amount::from_hundredths(0),
        duration_minutes: 0,
    }))
}

/// A setup as the page shows it: secrets as a mask or their source.
struct Shown {
    host: String,
    port: String,
    security: String,
    ca_file: String,
    trust: String,
    allow_plaintext: bool,
    auth: String,
    username: String,
    password: String,
    tenant: String,
    token_url: String,
    client_id: String,
    client_secret: String,
    scope: String,
    queue: String,
    storage: String,
    not_logged: String,
    quarantine: String,
    batch_size: String,
}

impl Shown {
    fn of(setup: Option<&MailboxSetup>) -> Shown {
        let oauth = setup.and_then(|s| s.oauth.as_ref());
        let described = |secret: Option<&SecretRef>| secret.map(SecretRef::describe).unwrap_or_default();
        Shown {
            host: setup.map(|s| s.host.clone()).unwrap_or_default(),
            port: setup.map(|s| s.port.to_string()).unwrap_or_else(|| "993".into()),
            security: setup.map_or("tls", |s| s.security.as_str()).into(),
            ca_file: setup.and_then(|s| s.ca_file.clone()).unwrap_or_default(),
            trust: setup.map_or("bundled", |s| s.tls_trust.as_str()).into(),
            allow_plaintext: setup.is_some_and(|s| s.allow_plaintext),
            auth: setup.map_or("basic", |s| s.auth.as_str()).into(),
            username: setup.map(|s| s.username.clone()).unwrap_or_default(),
            password: described(setup.and_then(|s| s.password.as_ref())),
            tenant: oauth.and_then(|o| o.tenant.clone()).unwrap_or_default(),
            token_url: oauth.filter(|o| o.tenant.is_none()).map(|o| o.token_url.clone()).unwrap_or_default(),
            client_id: described(oauth.map(|o| &o.client_id)),
            client_secret: described(oauth.map(|o| &o.client_secret)),
            scope: oauth.map_or(EXCHANGE_ONLINE_SCOPE.to_owned(), |o| o.scope.clone()),
            queue: setup.map(|s| s.queue_folder.clone()).unwrap_or_default(),
            storage: setup.map(|s| s.storage_folder.clone()).unwrap_or_default(),
            not_logged: setup.and_then(|s| s.not_logged_folder.clone()).unwrap_or_default(),
            quarantine: setup.and_then(|s| s.quarantine_folder.clone()).unwrap_or_default(),
            batch_size: setup.map_or(MailboxSetup::DEFAULT_BATCH_SIZE, |s| s.batch_size).to_string(),
        }
    }
}

/// The options as the page shows them.
struct OptionsShown {
    cost: String,
    minutes: u32,
    storage_mode: &'static str,
    interval: u32,
    time_zone: String,
    sensitivity_rule: &'static str,
    max_attempts: u32,
    retention: u32,
}

impl OptionsShown {
    fn of(settings: &Settings, template: &InteractionTemplate) -> OptionsShown {
        OptionsShown {
            cost: template.cost.to_string(),
            minutes: template.duration_minutes,
            storage_mode: settings.storage_mode.as_str(),
            interval: settings.interval_seconds,
            time_zone: settings.time_zone.name().to_owned(),
            sensitivity_rule: if settings.skip_sensitive { "on" } else { "off" },
            max_attempts: settings.max_attempts,
            retention: settings.not_logged_retention_days,
        }
    }
}

/// A rendered page: 400 when it shows why a form was refused.
fn respond(page: &impl Template, refused: bool) -> Result<Response, PageError> {
    let status = if refused { axum::http::StatusCode::BAD_REQUEST } else { axum::http::StatusCode::OK };
    Ok((status, Html(page.render()?)).into_response())
}

struct CheckRow {
    status: &'static str,
    check: &'static str,
    hint: String,
}

fn rows(lines: &[CheckLine]) -> Vec<CheckRow> {
    lines.iter().map(|l| CheckRow { status: l.status.as_str(), check: l.check, hint: l.hint.clone() }).collect()
}

#[derive(Template)]
#[template(path = "email_logging.html")]
struct SetupPage {
    user_name: String,
    role: String,
    csrf: String,
    configured: bool,
    enabled: bool,
    locked: bool,
    accepted: String,
    shown: Shown,
    options: OptionsShown,
    folders: Vec<String>,
    folders_problem: String,
    checks: Vec<CheckRow>,
    checks_passed: bool,
    statement: String,
    notice: String,
    problem: String,
}

#[derive(Deserialize, Default)]
pub(crate) struct PageQuery {
    #[serde(default)]
    folders: Option<String>,
    #[serde(default)]
    notice: String,
}

/// What the page shows besides the stored values.
#[derive(Default)]
struct Extras {
    folders: Vec<String>,
    folders_problem: String,
    checks: Vec<CheckLine>,
    notice: String,
    problem: String,
}

async fn setup_page(state: &AppState, signed_in: &SignedIn, extras: Extras) -> Result<Response, PageError> {
    let setup = state.store.mailbox_setup(&default_mailbox()).await?;
    let enablement = state.store.enablement(&default_mailbox()).await?;
    let settings = state.store.settings().await?;
    let template = email_template(state).await?;
    let accepted = match (&enablement.accepted_by, enablement.accepted_at) {
        (Some(by), Some(at)) => format!("{by} at {}", at.with_timezone(&settings.time_zone).format("%Y-%m-%d %H:%M %Z")),
        _ => String::new(),
    };
    let page = SetupPage {
        user_name: signed_in.user.name.clone(),
        role: signed_in.user.role.to_string(),
        csrf: signed_in.csrf.clone(),
        configured: setup.is_some(),
        enabled: enablement.enabled,
        locked: enablement.enabled,
        accepted,
        shown: Shown::of(setup.as_ref()),
        options: OptionsShown::of(&settings, &template),
        statement: data_statement(settings.storage_mode),
        folders: extras.folders,
        folders_problem: extras.folders_problem,
        checks_passed: !extras.checks.is_empty() && all_passed(&extras.checks),
        checks: rows(&extras.checks),
        notice: extras.notice,
        problem: extras.problem,
    };
    let refused = !page.problem.is_empty();
    respond(&page, refused)
}

pub(crate) async fn show(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Query(query): Query<PageQuery>,
) -> Result<Response, PageError> {
    admin(&signed_in)?;
    let mut extras = Extras { notice: query.notice, ..Extras::default() };
    if query.folders.is_some() {
        match (state.store.mailbox_setup(&default_mailbox()).await?, backend(&state)) {
            (None, _) => extras.folders_problem = "save the connection first".into(),
            (Some(_), Err(err)) => extras.folders_problem = err,
            (Some(setup), Ok(backend)) => match backend.list_folders(&setup).await {
                Ok(folders) => extras.folders = folders,
                Err(err) => extras.folders_problem = err,
            },
        }
    }
    setup_page(&state, &signed_in, extras).await
}

fn saved(notice: &str) -> Response {
    Redirect::to(&format!("/admin/email-logging?notice={}", crate::pages::percent_encode(notice))).into_response()
}

/// Saves the setup page. While logging is enabled only the options that
/// do not touch the connection or the accepted statement can change.
pub(crate) async fn save(State(state): State<AppState>, signed_in: SignedIn, Form(form): Form<SetupForm>) -> Result<Response, PageError> {
    admin_form(&signed_in, &form.csrf)?;
    let enabled = state.store.enablement(&default_mailbox()).await?.enabled;
    let kept = state.store.mailbox_setup(&default_mailbox()).await?;
    let mut settings = state.store.settings().await?;
    let mut template = email_template(&state).await?;
    let problem = |text: String| Extras { problem: text, ..Extras::default() };
    if let Err(err) = options_from_form(&form, &mut settings, &mut template, !enabled) {
        return setup_page(&state, &signed_in, problem(err)).await;
    }
    if !enabled {
        match setup_from_form(&state, &form, kept.as_ref()) {
            Ok(setup) => state.store.save_mailbox_setup(&default_mailbox(), &setup).await?,
            Err(err) => return setup_page(&state, &signed_in, problem(err)).await,
        }
    }
    save_options(&state, &settings, &template).await?;
    tracing::info!(admin = %signed_in.user.name, "email logging setup saved from the web");
    Ok(saved(if enabled { "Options saved. The connection is locked while logging is enabled." } else { "Setup saved. Run the check before enabling." }))
}

#[derive(Deserialize, Default)]
pub(crate) struct ActionForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    accept: Option<String>,
}

async fn checks(state: &AppState) -> Result<Vec<CheckLine>, String> {
    let setup = state.store.mailbox_setup(&default_mailbox()).await.map_err(|err| err.to_string())?.ok_or("there is no setup to check yet")?;
    Ok(backend(state)?.check(&setup).await)
}

pub(crate) async fn check(State(state): State<AppState>, signed_in: SignedIn, Form(form): Form<ActionForm>) -> Result<Response, PageError> {
    admin_form(&signed_in, &form.csrf)?;
    let extras = match checks(&state).await {
        Ok(lines) => Extras { checks: lines, ..Extras::default() },
        Err(err) => Extras { problem: err, ..Extras::default() },
    };
    setup_page(&state, &signed_in, extras).await
}

/// Enables logging: the data statement accepted, and a passing check.
pub(crate) async fn enable(State(state): State<AppState>, signed_in: SignedIn, Form(form): Form<ActionForm>) -> Result<Response, PageError> {
    admin_form(&signed_in, &form.csrf)?;
    if form.accept.is_none() {
        let problem = "logging stays disabled: accept the data statement to enable it".to_owned();
        return setup_page(&state, &signed_in, Extras { problem, ..Extras::default() }).await;
    }
    let lines = match checks(&state).await {
        Ok(lines) => lines,
        Err(err) => return setup_page(&state, &signed_in, Extras { problem: err, ..Extras::default() }).await,
    };
    if !all_passed(&lines) {
        let problem = "logging stays disabled because a check failed: fix what the failed lines say, then enable again".to_owned();
        return setup_page(&state, &signed_in, Extras { problem, checks: lines, ..Extras::default() }).await;
    }
    accept_and_enable(&state, &signed_in).await?;
    Ok(saved("Logging is enabled. The queue is read at every interval."))
}

async fn accept_and_enable(state: &AppState, signed_in: &SignedIn) -> Result<(), PageError> {
    let accepted = Enablement { enabled: true, accepted_by: Some(signed_in.user.name.clone()), accepted_at: Some(Utc::now()) };
    state.store.set_enablement(&default_mailbox(), &accepted).await?;
    tracing::info!(admin = %signed_in.user.name, "email logging enabled from the web; data statement accepted");
    Ok(())
}

pub(crate) async fn disable(State(state): State<AppState>, signed_in: SignedIn, Form(form): Form<ActionForm>) -> Result<Response, PageError> {
    admin_form(&signed_in, &form.csrf)?;
    let mut enablement = state.store.enablement(&default_mailbox()).await?;
    if enablement.enabled {
        enablement.enabled = false;
        state.store.set_enablement(&default_mailbox(), &enablement).await?;
        tracing::info!(admin = %signed_in.user.name, "email logging disabled from the web");
    }
    Ok(saved("Logging is disabled. A run in progress stops after its current batch."))
}

pub(crate) async fn clear(State(state): State<AppState>, signed_in: SignedIn, Form(form): Form<ActionForm>) -> Result<Response, PageError> {
    admin_form(&signed_in, &form.csrf)?;
    match state.store.clear_mailbox_setup(&default_mailbox()).await {
        Ok(_) => {
            tracing::info!(admin = %signed_in.user.name, "email logging setup cleared from the web");
            Ok(saved("Setup cleared: the connection, the folders and the stored secrets are removed."))
        }
        Err(mailscribe_store::StoreError::Conflict(_)) => {
            let problem = "logging is enabled: disable it before clearing the setup".to_owned();
            setup_page(&state, &signed_in, Extras { problem, ..Extras::default() }).await
        }
        Err(err) => Err(err.into()),
    }
}

// ---- The assisted setup ----

const STEPS: [&str; 7] = [
    "Before you start",
    "Server and security",
    "Authentication",
    "Folders",
    "Connection test",
    "Template and options",
    "Finish",
];

#[derive(Template)]
#[template(path = "assisted.html")]
struct AssistedPage {
    user_name: String,
    role: String,
    csrf: String,
    step: u8,
    title: &'static str,
    steps: Vec<(u8, &'static str)>,
    enabled: bool,
    locked: bool,
    shown: Shown,
    folders: Vec<String>,
    folders_problem: String,
    checks: Vec<CheckRow>,
    checks_passed: bool,
    options: OptionsShown,
    statement: String,
    problem: String,
}

#[derive(Deserialize, Default)]
pub(crate) struct StepQuery {
    #[serde(default)]
    step: Option<u8>,
}

async fn new_draft(state: &AppState) -> Result<Draft, PageError> {
    let setup = state.store.mailbox_setup(&default_mailbox()).await?.unwrap_or_else(blank_setup);
    Ok(Draft { setup, settings: state.store.settings().await?, template: email_template(state).await?, folders: Vec::new() })
}

async fn assisted_page(state: &AppState, signed_in: &SignedIn, step: u8, draft: &Draft, problem: String) -> Result<Response, PageError> {
    let step = step.clamp(1, STEPS.len() as u8);
    let enabled = state.store.enablement(&default_mailbox()).await?.enabled;
    let mut folders = draft.folders.clone();
    let mut folders_problem = String::new();
    let mut checks = Vec::new();
    if !enabled && step == 4 && folders.is_empty() {
        match backend(state) {
            Ok(backend) => match backend.list_folders(&draft.setup).await {
                Ok(listed) => {
                    folders = listed;
                    let mut updated = draft.clone();
                    updated.folders = folders.clone();
                    state.drafts.put(signed_in.user.id, updated);
                }
                Err(err) => folders_problem = format!("cannot list the folders: {err}. Go back and correct the connection, or type the folder names."),
            },
            Err(err) => folders_problem = err,
        }
    }
    if !enabled && step == 5 {
        checks = match backend(state) {
            Ok(backend) => backend.check(&draft.setup).await,
            Err(err) => vec![CheckLine::fail("server_reachable", err)],
        };
    }
    let page = AssistedPage {
        user_name: signed_in.user.name.clone(),
        role: signed_in.user.role.to_string(),
        csrf: signed_in.csrf.clone(),
        step,
        title: STEPS[usize::from(step) - 1],
        steps: (1..).zip(STEPS).collect(),
        enabled,
        locked: false,
        shown: Shown::of(Some(&draft.setup)),
        folders,
        folders_problem,
        checks_passed: !checks.is_empty() && all_passed(&checks),
        checks: rows(&checks),
        options: OptionsShown::of(&draft.settings, &draft.template),
        statement: data_statement(draft.settings.storage_mode),
        problem,
    };
    let refused = !page.problem.is_empty();
    respond(&page, refused)
}

pub(crate) async fn assisted(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Query(query): Query<StepQuery>,
) -> Result<Response, PageError> {
    admin(&signed_in)?;
    let step = query.step.unwrap_or(1);
    let draft = match state.drafts.get(signed_in.user.id) {
        Some(draft) if step > 1 => draft,
        _ => {
            // Step 1 starts over from what is stored.
            let draft = new_draft(&state).await?;
            state.drafts.put(signed_in.user.id, draft.clone());
            draft
        }
    };
    assisted_page(&state, &signed_in, step, &draft, String::new()).await
}

/// One step's answers: kept in the draft, then on to the next step. The
/// last step saves everything and enables logging.
pub(crate) async fn assisted_step(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Form(form): Form<SetupForm>,
) -> Result<Response, PageError> {
    admin_form(&signed_in, &form.csrf)?;
    let Some(mut draft) = state.drafts.get(signed_in.user.id) else {
        return Ok(Redirect::to("/admin/email-logging/assisted").into_response());
    };
    if state.store.enablement(&default_mailbox()).await?.enabled {
        return assisted_page(&state, &signed_in, 1, &draft, "logging is enabled: disable it before changing the setup".into()).await;
    }
    let step = form.step;
    let outcome: Result<(), String> = match step {
        2 => server_from_form(&form, &mut draft.setup),
        3 => auth_from_form(&state, &form, &mut draft.setup).map(|()| {
            // Another login may see other folders.
            draft.folders.clear();
        }),
        4 => folders_from_form(&form, &mut draft.setup),
        6 => options_from_form(&form, &mut draft.settings, &mut draft.template, true),
        7 => {
            if form.accept.is_none() {
                Err("accept the data statement to enable logging, or leave the assisted setup: nothing has been saved".into())
            } else {
                return finish(&state, &signed_in, draft).await;
            }
        }
        _ => Ok(()),
    };
    match outcome {
        Ok(()) => {
            state.drafts.put(signed_in.user.id, draft);
            Ok(Redirect::to(&format!("/admin/email-logging/assisted?step={}", step.saturating_add(1))).into_response())
        }
        Err(problem) => assisted_page(&state, &signed_in, step, &draft, problem).await,
    }
}

/// The last step: check once more, then save and enable in one go.
async fn finish(state: &AppState, signed_in: &SignedIn, draft: Draft) -> Result<Response, PageError> {
    let lines = match backend(state) {
        Ok(backend) => backend.check(&draft.setup).await,
        Err(err) => return assisted_page(state, signed_in, 7, &draft, err).await,
    };
    if !all_passed(&lines) {
        return assisted_page(state, signed_in, 5, &draft, "a check failed since the connection test: see the lines below".into()).await;
    }
    state.store.save_mailbox_setup(&default_mailbox(), &draft.setup).await?;
    save_options(state, &draft.settings, &draft.template).await?;
    accept_and_enable(state, signed_in).await?;
    state.drafts.remove(signed_in.user.id);
    Ok(saved("Assisted setup finished: logging is enabled."))
}

/// The mail-server guide, for the assisted setup's first step.
pub(crate) async fn guide(signed_in: SignedIn) -> Result<Response, PageError> {
    admin(&signed_in)?;
    #[derive(Template)]
    #[template(path = "guide.html")]
    struct GuidePage {
        user_name: String,
        role: String,
        csrf: String,
        text: &'static str,
    }
    let page = GuidePage {
        user_name: signed_in.user.name.clone(),
        role: signed_in.user.role.to_string(),
        csrf: signed_in.csrf.clone(),
        text: include_str!("../../../docs/mail-server-setup.md"),
    };
    Ok(Html(page.render()?).into_response())
}

#[cfg(test)]
mod tests {
    use mailscribe_core::StorageMode;

    use super::*;

    fn form(pairs: &[(&str, &str)]) -> SetupForm {
        serde_urlencoded::from_str(&serde_urlencoded::to_string(pairs).unwrap()).expect("a valid form")
    }

    #[test]
    fn options_are_validated_and_the_mode_is_locked_when_asked() {
        let mut settings = Settings::default();
        let mut template = InteractionTemplate { code: "EMAIL".into(), description: "Email".into(), cost: Amount::from_hundredths(0), duration_minutes: 0 };
        let answers = form(&[("interval", "5m"), ("time_zone", "Europe/Helsinki"), ("cost", "2.50"), ("minutes", "5"), ("storage_mode", "full")]);
        options_from_form(&answers, &mut settings, &mut template, true).unwrap();
        assert_eq!((settings.interval_seconds, settings.storage_mode), (300, StorageMode::Full));
        assert_eq!((template.cost.to_string().as_str(), template.duration_minutes), ("2.50", 5));

        let back = form(&[("storage_mode", "reference")]);
        let err = options_from_form(&back, &mut settings, &mut template, false).unwrap_err();
        assert!(err.contains("disable logging"), "{err}");
        for bad in [("interval", "1"), ("time_zone", "Mars/Olympus"), ("cost", "abc"), ("minutes", "9999")] {
            assert!(options_from_form(&form(&[bad]), &mut settings, &mut template, true).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn folders_must_be_chosen_and_differ() {
        let mut setup = blank_setup();
        assert!(folders_from_form(&form(&[("queue", "Queue")]), &mut setup).is_err());
        assert!(folders_from_form(&form(&[("queue", "Queue"), ("storage", "Queue")]), &mut setup).is_err());
        folders_from_form(&form(&[("queue", "Queue"), ("storage", "Storage"), ("quarantine", "Bad")]), &mut setup).unwrap();
        assert_eq!((setup.queue_folder.as_str(), setup.quarantine_folder.as_deref(), setup.not_logged_folder), ("Queue", Some("Bad"), None));
    }
}
