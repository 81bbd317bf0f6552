//! Email logging setup of one mailbox, for admins: the setup page with
//! every field of PRODUCT.md section 6 and the mailbox's status, check
//! setup, enable (after accepting the data statement) and disable, clear
//! setup, and the assisted setup in steps, which creates a new mailbox.
//!
//! The pages of a mailbox live under `/admin/mailboxes/{name}`; today's
//! `/admin/email-logging` URLs are the same handlers on `default`, so that
//! bookmarks and scripts keep working (see [`Target`]).
//!
//! Talking to the mail server and sealing secrets happen outside this
//! crate, behind [`SetupBackend`], which the binary provides: the web crate
//! knows no IMAP and holds no key.

use std::future::Future;
use std::pin::Pin;

use askama::Template;
use axum::Form;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::response::{Html, IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use mailscribe_core::check::all_passed;
use mailscribe_core::setup::{EXCHANGE_ONLINE_SCOPE, entra_token_url};
use mailscribe_core::{
    Amount, AuthKind, CheckLine, Enablement, InteractionTemplate, MailboxName, MailboxSetup,
    OAuthSetup, SealedSecret, SecretRef, Security, Settings, TlsTrust, data_statement,
};
use mailscribe_store::{MailboxRow, MailboxStatus, StoreError};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

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
    fn list_folders<'a>(
        &'a self,
        setup: &'a MailboxSetup,
    ) -> BoxFuture<'a, Result<Vec<String>, String>>;
    /// The lines of `mailscribe check`, for this setup.
    fn check<'a>(&'a self, setup: &'a MailboxSetup) -> BoxFuture<'a, Vec<CheckLine>>;
    /// Why a secret source typed into the web may not be used on this
    /// server (e.g. the key file), if it may not.
    fn refuse_source(&self, source: &SecretRef) -> Option<String>;
}

/// The mailbox a setup URL works on: the `{name}` of
/// `/admin/mailboxes/{name}/...`, or `default` for today's
/// `/admin/email-logging/...` (the same handlers serve both). A name that
/// does not parse is a 400.
pub(crate) struct Target {
    name: MailboxName,
    /// Reached through `/admin/email-logging`: works before `default`
    /// exists (its page offers to set it up, its save creates it), as
    /// those URLs always did.
    legacy: bool,
}

impl Target {
    pub(crate) fn name(&self) -> &MailboxName {
        &self.name
    }

    /// Where this mailbox's page and forms are.
    fn base(&self) -> String {
        if self.legacy {
            "/admin/email-logging".to_owned()
        } else {
            mailbox_url(&self.name)
        }
    }

    /// The stored mailbox. Unknown names are "not found", except `default`
    /// through today's URLs.
    async fn stored(&self, state: &AppState) -> Result<Option<MailboxRow>, PageError> {
        match state.store.mailbox(&self.name).await? {
            Some(row) => Ok(Some(row)),
            None if self.legacy => Ok(None),
            None => Err(PageError(ErrorKind::NotFound)),
        }
    }
}

impl FromRequestParts<AppState> for Target {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Target, PageError> {
        let path =
            <Option<Path<String>> as FromRequestParts<AppState>>::from_request_parts(parts, state)
                .await
                .map_err(|err| PageError(ErrorKind::BadRequest(err.body_text())))?;
        match path {
            None => Ok(Target {
                name: MailboxName::default_name(),
                legacy: true,
            }),
            Some(Path(name)) => MailboxName::parse(&name)
                .map(|name| Target {
                    name,
                    legacy: false,
                })
                .map_err(|err| PageError(ErrorKind::BadRequest(err.to_string()))),
        }
    }
}

pub(crate) fn mailbox_url(name: &MailboxName) -> String {
    format!("/admin/mailboxes/{name}")
}

/// An unfinished assisted setup, one per admin, kept in the database (as
/// [`StoredDraft`]) so that every instance of `serve` sees it. Nothing
/// reaches the mailboxes before the last step, so leaving the flow changes
/// nothing.
#[derive(Clone)]
struct Draft {
    /// The name of the mailbox to create, as typed; checked at the first
    /// step and again at the last.
    name: String,
    setup: MailboxSetup,
    settings: Settings,
    template: InteractionTemplate,
    /// The server's folders, listed at the folders step.
    folders: Vec<String>,
}

/// A draft as stored: JSON of plain fields. A secret is only ever in its
/// stored form, a sealed value or an `env:`/`file:` source, never as typed.
#[derive(Serialize, Deserialize)]
struct StoredDraft {
    name: String,
    host: String,
    port: u16,
    security: String,
    auth: String,
    username: String,
    password: Option<String>,
    oauth: Option<StoredOAuth>,
    queue_folder: String,
    storage_folder: String,
    not_logged_folder: Option<String>,
    quarantine_folder: Option<String>,
    batch_size: u32,
    allow_plaintext: bool,
    ca_file: Option<String>,
    tls_trust: String,
    settings: Vec<(String, String)>,
    template_code: String,
    template_description: String,
    cost_hundredths: i64,
    duration_minutes: u32,
    folders: Vec<String>,
}

#[derive(Serialize, Deserialize)]
struct StoredOAuth {
    token_url: String,
    tenant: Option<String>,
    client_id: String,
    client_secret: String,
    scope: String,
}

impl From<&Draft> for StoredDraft {
    fn from(draft: &Draft) -> StoredDraft {
        let setup = &draft.setup;
        StoredDraft {
            name: draft.name.clone(),
            host: setup.host.clone(),
            port: setup.port,
            security: setup.security.as_str().to_owned(),
            auth: setup.auth.as_str().to_owned(),
            username: setup.username.clone(),
            password: setup.password.as_ref().map(SecretRef::to_storage),
            oauth: setup.oauth.as_ref().map(|o| StoredOAuth {
                token_url: o.token_url.clone(),
                tenant: o.tenant.clone(),
                client_id: o.client_id.to_storage(),
                client_secret: o.client_secret.to_storage(),
                scope: o.scope.clone(),
            }),
            queue_folder: setup.queue_folder.clone(),
            storage_folder: setup.storage_folder.clone(),
            not_logged_folder: setup.not_logged_folder.clone(),
            quarantine_folder: setup.quarantine_folder.clone(),
            batch_size: setup.batch_size,
            allow_plaintext: setup.allow_plaintext,
            ca_file: setup.ca_file.clone(),
            tls_trust: setup.tls_trust.as_str().to_owned(),
            settings: draft
                .settings
                .pairs()
                .into_iter()
                .map(|(key, value)| (key.to_owned(), value))
                .collect(),
            template_code: draft.template.code.clone(),
            template_description: draft.template.description.clone(),
            cost_hundredths: draft.template.cost.hundredths(),
            duration_minutes: draft.template.duration_minutes,
            folders: draft.folders.clone(),
        }
    }
}

impl TryFrom<StoredDraft> for Draft {
    type Error = String;

    fn try_from(stored: StoredDraft) -> Result<Draft, String> {
        let mut settings = Settings::default();
        for (key, value) in &stored.settings {
            settings.set(key, value).map_err(|err| err.to_string())?;
        }
        let setup = MailboxSetup {
            host: stored.host,
            port: stored.port,
            security: stored.security.parse().map_err(|err| format!("{err}"))?,
            auth: stored.auth.parse().map_err(|err| format!("{err}"))?,
            username: stored.username,
            password: stored.password.as_deref().map(SecretRef::from_storage),
            oauth: stored.oauth.map(|o| OAuthSetup {
                token_url: o.token_url,
                tenant: o.tenant,
                client_id: SecretRef::from_storage(&o.client_id),
                client_secret: SecretRef::from_storage(&o.client_secret),
                scope: o.scope,
            }),
            queue_folder: stored.queue_folder,
            storage_folder: stored.storage_folder,
            not_logged_folder: stored.not_logged_folder,
            quarantine_folder: stored.quarantine_folder,
            batch_size: stored.batch_size,
            allow_plaintext: stored.allow_plaintext,
            ca_file: stored.ca_file,
            tls_trust: stored.tls_trust.parse().map_err(|err| format!("{err}"))?,
        };
        let template = InteractionTemplate {
            code: stored.template_code,
            description: stored.template_description,
            cost: Amount::from_hundredths(stored.cost_hundredths),
            duration_minutes: stored.duration_minutes,
            interaction_group: None,
            campaign_no: None,
        };
        Ok(Draft {
            name: stored.name,
            setup,
            settings,
            template,
            folders: stored.folders,
        })
    }
}

/// The user's draft. One that no longer reads (written by another version)
/// is dropped: the assisted setup starts over.
async fn load_draft(state: &AppState, user: i64) -> Result<Option<Draft>, PageError> {
    let Some(text) = state.store.setup_draft(user).await? else {
        return Ok(None);
    };
    match serde_json::from_str::<StoredDraft>(&text)
        .map_err(|err| err.to_string())
        .and_then(Draft::try_from)
    {
        Ok(draft) => Ok(Some(draft)),
        Err(err) => {
            tracing::warn!(user, error = %err, "an assisted-setup draft that does not read is dropped");
            Ok(None)
        }
    }
}

async fn save_draft(state: &AppState, user: i64, draft: &Draft) -> Result<(), PageError> {
    let text = serde_json::to_string(&StoredDraft::from(draft))
        .map_err(|err| PageError(ErrorKind::Internal(format!("assisted-setup draft: {err}"))))?;
    state
        .store
        .save_setup_draft(user, &text, Utc::now())
        .await?;
    Ok(())
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
    /// The assisted setup's mailbox name.
    name: String,
    /// Set by the page of a mailbox that does not exist yet: the save
    /// creates it, and is refused if one of that name appeared meanwhile.
    create: Option<String>,
}

pub(crate) fn admin(signed_in: &SignedIn) -> Result<(), PageError> {
    if !signed_in.user.is_admin() {
        return Err(PageError(ErrorKind::Forbidden(
            "only an admin can change the email logging setup",
        )));
    }
    Ok(())
}

pub(crate) fn admin_form(signed_in: &SignedIn, csrf: &str) -> Result<(), PageError> {
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
        (false, Some(_)) => Err(format!(
            "give the {label} one way only: typed in, or as a source"
        )),
        (false, None) => {
            let sealed = backend(state)?.seal(field, &SecretString::from(typed.to_owned()))?;
            Ok(Some(SecretRef::Sealed(sealed)))
        }
        (true, Some(source)) => {
            let parsed =
                SecretRef::parse_source(&source).map_err(|err| format!("{label}: {err}"))?;
            if let Some(why) = parsed.refused_from_web() {
                return Err(format!("{label}: {why}"));
            }
            if let Some(why) = state
                .setup_backend
                .as_deref()
                .and_then(|backend| backend.refuse_source(&parsed))
            {
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
        Some(port) => port
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or("the port is a number from 1 to 65535")?,
    };
    setup.tls_trust = match trimmed(&form.trust) {
        None => TlsTrust::Bundled,
        Some(trust) => trust.parse().map_err(|err| format!("{err}"))?,
    };
    setup.ca_file = trimmed(&form.ca_file);
    setup.allow_plaintext = form.allow_plaintext.is_some();
    if let Some(size) = trimmed(&form.batch_size) {
        setup.batch_size = size
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=10_000).contains(n))
            .ok_or("the batch size is a number from 1 to 10000")?;
    }
    Ok(())
}

/// Authentication: the mailbox user and its password or OAuth2 client.
/// A secret left empty keeps the one `stored_with` holds, but only while
/// the target is the one it was stored with
/// ([`mailscribe_core::may_reuse_kept_secrets`]); otherwise it must be
/// given again. `setup` already carries the server half of the target.
fn auth_from_form(
    state: &AppState,
    form: &SetupForm,
    setup: &mut MailboxSetup,
    stored_with: Option<&MailboxSetup>,
) -> Result<(), String> {
    let auth: AuthKind = form.auth.parse().map_err(|err| format!("{err}"))?;
    let username = trimmed(&form.username).ok_or("the mailbox user is needed")?;
    let token = match auth {
        AuthKind::Basic => None,
        AuthKind::OAuth2 => {
            let (token_url, tenant) = match (trimmed(&form.token_url), trimmed(&form.tenant)) {
                (Some(url), tenant) => (url, tenant),
                (None, Some(tenant)) => (entra_token_url(&tenant), Some(tenant)),
                (None, None) => return Err(
                    "OAuth2 needs the Entra ID tenant, or the token URL of another OAuth2 server"
                        .into(),
                ),
            };
            if let Err(why) = mailscribe_core::check_token_url(&token_url) {
                return Err(why.to_string());
            }
            Some((token_url, tenant))
        }
    };
    // The target as the form asks for it, to judge the kept secrets by.
    let mut target = setup.clone();
    target.auth = auth;
    target.username = username.clone();
    if token.is_none() {
        target.oauth = None;
    }
    if let (Some((token_url, _)), Some(oauth)) = (&token, target.oauth.as_mut()) {
        oauth.token_url = token_url.clone();
    }
    let refused = stored_with
        .and_then(|stored| mailscribe_core::may_reuse_kept_secrets(stored, &target).err());
    let kept = if refused.is_some() { None } else { stored_with };
    // A secret that was kept but may not be reused says why it is needed.
    let needed = |kept_before: bool, otherwise: &str| match (&refused, kept_before) {
        (Some(refused), true) => refused.to_string(),
        _ => otherwise.to_owned(),
    };
    let (password, oauth) = match token {
        None => {
            let had = stored_with.is_some_and(|s| s.password.is_some());
            let password = secret(
                state,
                SecretField::Password,
                "password",
                &form.password,
                &form.password_source,
                kept.and_then(|k| k.password.as_ref()),
            )?
            .ok_or_else(|| {
                needed(
                    had,
                    "basic authentication needs a password, or a source such as env:IMAP_PASSWORD",
                )
            })?;
            (Some(password), None)
        }
        Some((token_url, tenant)) => {
            let kept_oauth = kept.and_then(|k| k.oauth.as_ref());
            let had = stored_with.is_some_and(|s| s.oauth.is_some());
            let client_id = secret(
                state,
                SecretField::ClientId,
                "client id",
                form.client_id.trim(),
                &form.client_id_source,
                kept_oauth.map(|o| &o.client_id),
            )?
            .ok_or_else(|| needed(had, "OAuth2 needs the application (client) id"))?;
            let client_secret = secret(
                state,
                SecretField::ClientSecret,
                "client secret",
                &form.client_secret,
                &form.client_secret_source,
                kept_oauth.map(|o| &o.client_secret),
            )?
            .ok_or_else(|| {
                needed(
                    had,
                    "OAuth2 needs the client secret, or a source such as env:CLIENT_SECRET",
                )
            })?;
            let scope = trimmed(&form.scope).unwrap_or_else(|| EXCHANGE_ONLINE_SCOPE.to_owned());
            (
                None,
                Some(OAuthSetup {
                    token_url,
                    tenant,
                    client_id,
                    client_secret,
                    scope,
                }),
            )
        }
    };
    setup.auth = auth;
    setup.username = username;
    setup.password = password;
    setup.oauth = oauth;
    Ok(())
}

/// The whole setup page: server, authentication and folders. Kept
/// secrets are judged against the setup as stored (`kept`).
fn setup_from_form(
    state: &AppState,
    form: &SetupForm,
    kept: Option<&MailboxSetup>,
) -> Result<MailboxSetup, String> {
    let mut setup = kept.cloned().unwrap_or_else(blank_setup);
    server_from_form(form, &mut setup)?;
    auth_from_form(state, form, &mut setup, kept)?;
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

/// The options half: settings and the interaction template. The storage
/// mode is not changed while `mode_lock` says why (it is part of what the
/// admins accepted when enabling).
fn options_from_form(
    form: &SetupForm,
    settings: &mut Settings,
    template: &mut InteractionTemplate,
    mode_lock: Option<&str>,
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
    if let Some(mode) = trimmed(&form.storage_mode)
        && mode != settings.storage_mode.as_str()
    {
        if let Some(why) = mode_lock {
            return Err(why.to_owned());
        }
        settings
            .set("storage_mode", &mode)
            .map_err(|err| err.to_string())?;
    }
    if let Some(cost) = trimmed(&form.cost) {
        template.cost = cost
            .parse::<Amount>()
            .map_err(|err| format!("cost: {err}"))?;
    }
    if let Some(minutes) = trimmed(&form.minutes) {
        template.duration_minutes = minutes
            .parse()
            .ok()
            .filter(|m| *m <= 24 * 60)
            .ok_or("the duration is a number of minutes up to 1440")?;
    }
    Ok(())
}

/// The mailboxes with logging on.
async fn enabled_mailboxes(state: &AppState) -> Result<Vec<MailboxName>, PageError> {
    Ok(state
        .store
        .mailboxes()
        .await?
        .into_iter()
        .filter(|m| m.enablement.enabled)
        .map(|m| m.name)
        .collect())
}

/// Why the storage mode cannot change now, if it cannot. It is global, and
/// part of the data statement accepted for every enabled mailbox, so it
/// changes only while no mailbox logs (`this` is the page's mailbox).
fn mode_lock_reason(this: Option<&MailboxName>, enabled: &[MailboxName]) -> Option<String> {
    match enabled {
        [] => None,
        [only] if this == Some(only) => Some(
            "the storage mode is part of the accepted data statement: disable logging to change it"
                .into(),
        ),
        _ => {
            let names: Vec<&str> = enabled.iter().map(MailboxName::as_str).collect();
            Some(format!(
                "the storage mode is shared by every mailbox and part of the data statement accepted for each, \
                 and logging is enabled on {}: disable logging on every mailbox to change it",
                names.join(", ")
            ))
        }
    }
}

async fn save_options(
    state: &AppState,
    settings: &Settings,
    template: &InteractionTemplate,
) -> Result<(), PageError> {
    // `local_passwords` is the CLI's alone: the web never writes it, not
    // even back as it read it.
    for (key, value) in settings
        .pairs()
        .into_iter()
        .filter(|(key, _)| *key != "local_passwords")
    {
        state.store.save_setting(key, &value).await?;
    }
    state.store.save_template(template).await?;
    Ok(())
}

async fn email_template(state: &AppState) -> Result<InteractionTemplate, PageError> {
    let code = state.store.settings().await?.email_template;
    Ok(state
        .store
        .template(&code)
        .await?
        .unwrap_or(InteractionTemplate {
            code,
            description: "Email".into(),
            cost: Amount::from_hundredths(0),
            duration_minutes: 0,
            interaction_group: None,
            campaign_no: None,
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
        let described =
            |secret: Option<&SecretRef>| secret.map(SecretRef::describe).unwrap_or_default();
        Shown {
            host: setup.map(|s| s.host.clone()).unwrap_or_default(),
            port: setup
                .map(|s| s.port.to_string())
                .unwrap_or_else(|| "993".into()),
            security: setup.map_or("tls", |s| s.security.as_str()).into(),
            ca_file: setup.and_then(|s| s.ca_file.clone()).unwrap_or_default(),
            trust: setup.map_or("bundled", |s| s.tls_trust.as_str()).into(),
            allow_plaintext: setup.is_some_and(|s| s.allow_plaintext),
            auth: setup.map_or("basic", |s| s.auth.as_str()).into(),
            username: setup.map(|s| s.username.clone()).unwrap_or_default(),
            password: described(setup.and_then(|s| s.password.as_ref())),
            tenant: oauth.and_then(|o| o.tenant.clone()).unwrap_or_default(),
            token_url: oauth
                .filter(|o| o.tenant.is_none())
                .map(|o| o.token_url.clone())
                .unwrap_or_default(),
            client_id: described(oauth.map(|o| &o.client_id)),
            client_secret: described(oauth.map(|o| &o.client_secret)),
            scope: oauth.map_or(EXCHANGE_ONLINE_SCOPE.to_owned(), |o| o.scope.clone()),
            queue: setup.map(|s| s.queue_folder.clone()).unwrap_or_default(),
            storage: setup.map(|s| s.storage_folder.clone()).unwrap_or_default(),
            not_logged: setup
                .and_then(|s| s.not_logged_folder.clone())
                .unwrap_or_default(),
            quarantine: setup
                .and_then(|s| s.quarantine_folder.clone())
                .unwrap_or_default(),
            batch_size: setup
                .map_or(MailboxSetup::DEFAULT_BATCH_SIZE, |s| s.batch_size)
                .to_string(),
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
pub(crate) fn respond(page: &impl Template, refused: bool) -> Result<Response, PageError> {
    let status = if refused {
        axum::http::StatusCode::BAD_REQUEST
    } else {
        axum::http::StatusCode::OK
    };
    Ok((status, Html(page.render()?)).into_response())
}

struct CheckRow {
    status: &'static str,
    check: &'static str,
    hint: String,
}

fn rows(lines: &[CheckLine]) -> Vec<CheckRow> {
    lines
        .iter()
        .map(|l| CheckRow {
            status: l.status.as_str(),
            check: l.check,
            hint: l.hint.clone(),
        })
        .collect()
}

#[derive(Template)]
#[template(path = "email_logging.html")]
struct SetupPage {
    user_name: String,
    role: String,
    csrf: String,
    /// The mailbox, as stored (or as written in the URL when new).
    name: String,
    /// Where this page and its forms are.
    base: String,
    /// The mailbox does not exist yet: saving the form creates it.
    creating: bool,
    configured: bool,
    enabled: bool,
    locked: bool,
    accepted: String,
    status: Option<StatusShown>,
    shown: Shown,
    options: OptionsShown,
    mode_lock: String,
    folders: Vec<String>,
    folders_problem: String,
    checks: Vec<CheckRow>,
    checks_passed: bool,
    statement: String,
    notice: String,
    problem: String,
}

/// What the worker last saw of a mailbox, times in the configured zone.
pub(crate) struct StatusShown {
    pub(crate) status: String,
    pub(crate) last_run: String,
    pub(crate) last_error: String,
    pub(crate) next_attempt: String,
    pub(crate) failures: u32,
}

impl StatusShown {
    pub(crate) fn of(status: &MailboxStatus, settings: &Settings) -> StatusShown {
        let local =
            |at: Option<DateTime<Utc>>| at.map(|at| local_time(at, settings)).unwrap_or_default();
        StatusShown {
            status: status.status.clone(),
            last_run: local(status.last_run_at),
            last_error: status.last_error.clone().unwrap_or_default(),
            next_attempt: local(status.next_attempt_at),
            failures: status.consecutive_failures,
        }
    }
}

pub(crate) fn local_time(at: DateTime<Utc>, settings: &Settings) -> String {
    at.with_timezone(&settings.time_zone)
        .format("%Y-%m-%d %H:%M %Z")
        .to_string()
}

#[derive(Deserialize, Default)]
pub(crate) struct PageQuery {
    #[serde(default)]
    folders: Option<String>,
    #[serde(default)]
    notice: String,
    /// From "add a mailbox": the page of a name that does not exist yet.
    #[serde(default)]
    new: Option<String>,
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

fn problem(text: impl Into<String>) -> Extras {
    Extras {
        problem: text.into(),
        ..Extras::default()
    }
}

async fn setup_page(
    state: &AppState,
    signed_in: &SignedIn,
    target: &Target,
    extras: Extras,
) -> Result<Response, PageError> {
    let mailboxes = state.store.mailboxes().await?;
    let row = mailboxes.iter().find(|m| m.name == target.name);
    let enabled_names: Vec<MailboxName> = mailboxes
        .iter()
        .filter(|m| m.enablement.enabled)
        .map(|m| m.name.clone())
        .collect();
    let setup = row.map(|m| &m.setup);
    let enablement = row.map(|m| m.enablement.clone()).unwrap_or_default();
    let settings = state.store.settings().await?;
    let template = email_template(state).await?;
    let accepted = match (&enablement.accepted_by, enablement.accepted_at) {
        (Some(by), Some(at)) => format!("{by} at {}", local_time(at, &settings)),
        _ => String::new(),
    };
    let page = SetupPage {
        user_name: signed_in.user.name.clone(),
        role: signed_in.user.role.to_string(),
        csrf: signed_in.csrf.clone(),
        name: row.map_or_else(|| target.name.to_string(), |m| m.name.to_string()),
        base: target.base(),
        creating: row.is_none() && !target.legacy,
        configured: setup.is_some(),
        enabled: enablement.enabled,
        locked: enablement.enabled,
        accepted,
        status: row.map(|m| StatusShown::of(&m.status, &settings)),
        shown: Shown::of(setup),
        options: OptionsShown::of(&settings, &template),
        mode_lock: mode_lock_reason(Some(&target.name), &enabled_names).unwrap_or_default(),
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

/// The page of one mailbox. `?new=1` (from "add a mailbox") opens the
/// page of a name that does not exist yet; any other unknown name is 404.
pub(crate) async fn show(
    State(state): State<AppState>,
    signed_in: SignedIn,
    target: Target,
    Query(query): Query<PageQuery>,
) -> Result<Response, PageError> {
    admin(&signed_in)?;
    let row = if query.new.is_some() {
        state.store.mailbox(&target.name).await?
    } else {
        target.stored(&state).await?
    };
    let mut extras = Extras {
        notice: query.notice,
        ..Extras::default()
    };
    if query.folders.is_some() {
        match (row.map(|m| m.setup), backend(&state)) {
            (None, _) => extras.folders_problem = "save the connection first".into(),
            (Some(_), Err(err)) => extras.folders_problem = err,
            (Some(setup), Ok(backend)) => match backend.list_folders(&setup).await {
                Ok(folders) => extras.folders = folders,
                Err(err) => extras.folders_problem = err,
            },
        }
    }
    setup_page(&state, &signed_in, &target, extras).await
}

fn saved(base: &str, notice: &str) -> Response {
    Redirect::to(&format!(
        "{base}?notice={}",
        crate::pages::percent_encode(notice)
    ))
    .into_response()
}

/// Saves the setup page. While logging is enabled only the options that
/// do not touch the connection or the accepted statement can change.
pub(crate) async fn save(
    State(state): State<AppState>,
    signed_in: SignedIn,
    target: Target,
    Form(form): Form<SetupForm>,
) -> Result<Response, PageError> {
    admin_form(&signed_in, &form.csrf)?;
    // Today's URL creates `default` as it always did; elsewhere a new
    // mailbox comes from its "new" page, which says so.
    let creating = form.create.is_some() && !target.legacy;
    let kept = if creating {
        state.store.mailbox(&target.name).await?
    } else {
        target.stored(&state).await?
    };
    if creating && kept.is_some() {
        let exists = format!(
            "a mailbox named {} exists already: this is its page. Choose another name to add a new one.",
            target.name
        );
        return setup_page(&state, &signed_in, &target, problem(exists)).await;
    }
    let enabled = kept.as_ref().is_some_and(|m| m.enablement.enabled);
    let mut settings = state.store.settings().await?;
    let mut template = email_template(&state).await?;
    let mode_lock = mode_lock_reason(Some(&target.name), &enabled_mailboxes(&state).await?);
    if let Err(err) = options_from_form(&form, &mut settings, &mut template, mode_lock.as_deref()) {
        return setup_page(&state, &signed_in, &target, problem(err)).await;
    }
    if !enabled {
        let setup = match setup_from_form(&state, &form, kept.as_ref().map(|m| &m.setup)) {
            Ok(setup) => setup,
            Err(err) => return setup_page(&state, &signed_in, &target, problem(err)).await,
        };
        if creating {
            match state.store.create_mailbox_setup(&target.name, &setup).await {
                Ok(()) => {}
                Err(StoreError::Conflict(why)) => {
                    return setup_page(&state, &signed_in, &target, problem(why)).await;
                }
                Err(err) => return Err(err.into()),
            }
        } else {
            state.store.save_mailbox_setup(&target.name, &setup).await?;
        }
    }
    save_options(&state, &settings, &template).await?;
    tracing::info!(admin = %signed_in.user.name, mailbox = %target.name, "email logging setup saved from the web");
    let changed = if enabled {
        "options only".to_owned()
    } else {
        match &kept {
            None => "new mailbox".to_owned(),
            Some(before) => match state.store.mailbox_setup(&target.name).await? {
                Some(after) => {
                    format!("fields: {}", after.changed_fields(&before.setup).join(", "))
                }
                None => "fields: unknown".to_owned(),
            },
        }
    };
    crate::audit::record(
        &state,
        &signed_in,
        "setup_saved",
        Some(target.name.as_str()),
        Some(changed),
    )
    .await?;
    let notice = match (enabled, creating) {
        (true, _) => "Options saved. The connection is locked while logging is enabled.",
        (false, true) => "Mailbox added. Run the check before enabling.",
        (false, false) => "Setup saved. Run the check before enabling.",
    };
    Ok(saved(&target.base(), notice))
}

#[derive(Deserialize, Default)]
pub(crate) struct ActionForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    accept: Option<String>,
}

async fn checks(state: &AppState, row: Option<MailboxRow>) -> Result<Vec<CheckLine>, String> {
    let setup = row.ok_or("there is no setup to check yet")?.setup;
    Ok(backend(state)?.check(&setup).await)
}

pub(crate) async fn check(
    State(state): State<AppState>,
    signed_in: SignedIn,
    target: Target,
    Form(form): Form<ActionForm>,
) -> Result<Response, PageError> {
    admin_form(&signed_in, &form.csrf)?;
    let row = target.stored(&state).await?;
    let extras = match checks(&state, row).await {
        Ok(lines) => Extras {
            checks: lines,
            ..Extras::default()
        },
        Err(err) => problem(err),
    };
    setup_page(&state, &signed_in, &target, extras).await
}

/// Enables logging: the data statement accepted, and a passing check.
pub(crate) async fn enable(
    State(state): State<AppState>,
    signed_in: SignedIn,
    target: Target,
    Form(form): Form<ActionForm>,
) -> Result<Response, PageError> {
    admin_form(&signed_in, &form.csrf)?;
    let row = target.stored(&state).await?;
    if form.accept.is_none() {
        let why = "logging stays disabled: accept the data statement to enable it";
        return setup_page(&state, &signed_in, &target, problem(why)).await;
    }
    let lines = match checks(&state, row).await {
        Ok(lines) => lines,
        Err(err) => return setup_page(&state, &signed_in, &target, problem(err)).await,
    };
    if !all_passed(&lines) {
        let why = "logging stays disabled because a check failed: fix what the failed lines say, then enable again";
        return setup_page(
            &state,
            &signed_in,
            &target,
            Extras {
                checks: lines,
                ..problem(why)
            },
        )
        .await;
    }
    accept_and_enable(&state, &signed_in, &target.name).await?;
    Ok(saved(
        &target.base(),
        "Logging is enabled. The queue is read at every interval.",
    ))
}

async fn accept_and_enable(
    state: &AppState,
    signed_in: &SignedIn,
    name: &MailboxName,
) -> Result<(), PageError> {
    let accepted = Enablement {
        enabled: true,
        accepted_by: Some(signed_in.user.name.clone()),
        accepted_at: Some(Utc::now()),
    };
    state.store.set_enablement(name, &accepted).await?;
    tracing::info!(admin = %signed_in.user.name, mailbox = %name, "email logging enabled from the web; data statement accepted");
    let mode = state.store.settings().await?.storage_mode;
    crate::audit::record(
        state,
        signed_in,
        "logging_enabled",
        Some(name.as_str()),
        Some(format!(
            "data statement accepted (storage mode {})",
            mode.as_str()
        )),
    )
    .await?;
    Ok(())
}

pub(crate) async fn disable(
    State(state): State<AppState>,
    signed_in: SignedIn,
    target: Target,
    Form(form): Form<ActionForm>,
) -> Result<Response, PageError> {
    admin_form(&signed_in, &form.csrf)?;
    if let Some(mut enablement) = target
        .stored(&state)
        .await?
        .map(|m| m.enablement)
        .filter(|e| e.enabled)
    {
        enablement.enabled = false;
        state
            .store
            .set_enablement(&target.name, &enablement)
            .await?;
        tracing::info!(admin = %signed_in.user.name, mailbox = %target.name, "email logging disabled from the web");
        crate::audit::record(
            &state,
            &signed_in,
            "logging_disabled",
            Some(target.name.as_str()),
            None,
        )
        .await?;
    }
    Ok(saved(
        &target.base(),
        "Logging is disabled. A run in progress stops after its current batch.",
    ))
}

/// Clears the setup: the mailbox is gone, so the mailbox list says so
/// (today's URL keeps showing the empty page of `default`).
pub(crate) async fn clear(
    State(state): State<AppState>,
    signed_in: SignedIn,
    target: Target,
    Form(form): Form<ActionForm>,
) -> Result<Response, PageError> {
    admin_form(&signed_in, &form.csrf)?;
    target.stored(&state).await?;
    match state.store.clear_mailbox_setup(&target.name).await {
        Ok(_) => {
            tracing::info!(admin = %signed_in.user.name, mailbox = %target.name, "email logging setup cleared from the web");
            crate::audit::record(
                &state,
                &signed_in,
                "setup_cleared",
                Some(target.name.as_str()),
                Some("with its stored secrets".into()),
            )
            .await?;
            let notice = format!(
                "Setup cleared: the mailbox {}, its connection, folders and stored secrets are removed.",
                target.name
            );
            let back = if target.legacy {
                target.base()
            } else {
                "/admin/mailboxes".to_owned()
            };
            Ok(saved(&back, &notice))
        }
        Err(StoreError::Conflict(_)) => {
            let why = "logging is enabled: disable it before clearing the setup";
            setup_page(&state, &signed_in, &target, problem(why)).await
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
    /// The name of the mailbox to create, as typed so far.
    name: String,
    locked: bool,
    shown: Shown,
    folders: Vec<String>,
    folders_problem: String,
    checks: Vec<CheckRow>,
    checks_passed: bool,
    options: OptionsShown,
    mode_lock: String,
    statement: String,
    problem: String,
}

#[derive(Deserialize, Default)]
pub(crate) struct StepQuery {
    #[serde(default)]
    step: Option<u8>,
    /// A name to suggest at the first step.
    #[serde(default)]
    name: Option<String>,
}

/// A fresh draft for a new mailbox. The name suggested is `name`, else
/// `default` while no mailbox exists, else nothing.
async fn new_draft(state: &AppState, name: Option<String>) -> Result<Draft, PageError> {
    let name = match name {
        Some(name) => name,
        None if state.store.mailboxes().await?.is_empty() => MailboxName::DEFAULT.to_owned(),
        None => String::new(),
    };
    Ok(Draft {
        name,
        setup: blank_setup(),
        settings: state.store.settings().await?,
        template: email_template(state).await?,
        folders: Vec::new(),
    })
}

async fn assisted_page(
    state: &AppState,
    signed_in: &SignedIn,
    step: u8,
    draft: &Draft,
    problem: String,
) -> Result<Response, PageError> {
    let step = step.clamp(1, STEPS.len() as u8);
    let mut folders = draft.folders.clone();
    let mut folders_problem = String::new();
    let mut checks = Vec::new();
    if step == 4 && folders.is_empty() {
        match backend(state) {
            Ok(backend) => match backend.list_folders(&draft.setup).await {
                Ok(listed) => {
                    folders = listed;
                    let mut updated = draft.clone();
                    updated.folders = folders.clone();
                    save_draft(state, signed_in.user.id, &updated).await?;
                }
                Err(err) => {
                    folders_problem = format!(
                        "cannot list the folders: {err}. Go back and correct the connection, or type the folder names."
                    )
                }
            },
            Err(err) => folders_problem = err,
        }
    }
    if step == 5 {
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
        name: draft.name.clone(),
        locked: false,
        shown: Shown::of(Some(&draft.setup)),
        folders,
        folders_problem,
        checks_passed: !checks.is_empty() && all_passed(&checks),
        checks: rows(&checks),
        options: OptionsShown::of(&draft.settings, &draft.template),
        mode_lock: mode_lock_reason(None, &enabled_mailboxes(state).await?).unwrap_or_default(),
        statement: data_statement(draft.settings.storage_mode),
        problem,
    };
    let refused = !page.problem.is_empty();
    respond(&page, refused)
}

/// A step of the assisted setup. Without `?step` it starts over with a
/// new draft; a step keeps the draft (going back to the first step to
/// change the name loses nothing).
pub(crate) async fn assisted(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Query(query): Query<StepQuery>,
) -> Result<Response, PageError> {
    admin(&signed_in)?;
    let kept = match query.step {
        Some(_) => load_draft(&state, signed_in.user.id).await?,
        None => None,
    };
    let draft = match kept {
        Some(draft) => draft,
        None => {
            let draft = new_draft(&state, query.name).await?;
            save_draft(&state, signed_in.user.id, &draft).await?;
            draft
        }
    };
    assisted_page(
        &state,
        &signed_in,
        query.step.unwrap_or(1),
        &draft,
        String::new(),
    )
    .await
}

/// The name of a new mailbox: valid, and not taken.
async fn new_name(state: &AppState, typed: &str) -> Result<Result<MailboxName, String>, PageError> {
    let name = match MailboxName::parse(typed) {
        Ok(name) => name,
        Err(err) => return Ok(Err(err.to_string())),
    };
    if let Some(existing) = state.store.mailbox(&name).await? {
        return Ok(Err(format!(
            "a mailbox named {} exists already: the assisted setup adds a new mailbox, so choose another name \
             (to change {0}, open it from the mailbox list)",
            existing.name
        )));
    }
    Ok(Ok(name))
}

/// One step's answers: kept in the draft, then on to the next step. The
/// last step creates the mailbox and enables logging.
pub(crate) async fn assisted_step(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Form(form): Form<SetupForm>,
) -> Result<Response, PageError> {
    admin_form(&signed_in, &form.csrf)?;
    let Some(mut draft) = load_draft(&state, signed_in.user.id).await? else {
        return Ok(Redirect::to("/admin/email-logging/assisted").into_response());
    };
    let step = form.step;
    let outcome: Result<(), String> = match step {
        1 => {
            draft.name = form.name.trim().to_owned();
            new_name(&state, &form.name).await?.map(|_| ())
        }
        2 => {
            let before = draft.setup.clone();
            let outcome = server_from_form(&form, &mut draft.setup);
            // Secrets given for another server are not carried to this one.
            if let (Ok(()), Err(changed)) = (
                &outcome,
                mailscribe_core::may_reuse_kept_secrets(&before, &draft.setup),
            ) && (before.password.is_some() || before.oauth.is_some())
            {
                draft.setup.forget_secrets();
                draft.folders.clear();
                let detail = format!(
                    "assisted setup: secrets discarded, fields: {}",
                    changed.fields.join(", ")
                );
                crate::audit::record(
                    &state,
                    &signed_in,
                    "kept_secret_discarded",
                    None,
                    Some(detail),
                )
                .await?;
            }
            outcome
        }
        3 => {
            let before = draft.setup.clone();
            auth_from_form(&state, &form, &mut draft.setup, Some(&before)).map(|()| {
                // Another login may see other folders.
                draft.folders.clear();
            })
        }
        4 => folders_from_form(&form, &mut draft.setup),
        6 => {
            let mode_lock = mode_lock_reason(None, &enabled_mailboxes(&state).await?);
            options_from_form(
                &form,
                &mut draft.settings,
                &mut draft.template,
                mode_lock.as_deref(),
            )
        }
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
            save_draft(&state, signed_in.user.id, &draft).await?;
            Ok(Redirect::to(&format!(
                "/admin/email-logging/assisted?step={}",
                step.saturating_add(1)
            ))
            .into_response())
        }
        Err(problem) => {
            // What was typed stays in the draft, as the page shows it.
            if step == 1 {
                save_draft(&state, signed_in.user.id, &draft).await?;
            }
            assisted_page(&state, &signed_in, step, &draft, problem).await
        }
    }
}

/// The last step: check the name, the storage mode and the connection once
/// more, then create the mailbox and enable it in one go.
async fn finish(
    state: &AppState,
    signed_in: &SignedIn,
    draft: Draft,
) -> Result<Response, PageError> {
    let name = match new_name(state, &draft.name).await? {
        Ok(name) => name,
        Err(why) => return assisted_page(state, signed_in, 1, &draft, why).await,
    };
    // Another mailbox may have been enabled since the options step.
    let mode_changes = draft.settings.storage_mode != state.store.settings().await?.storage_mode;
    let mode_lock = if mode_changes {
        mode_lock_reason(None, &enabled_mailboxes(state).await?)
    } else {
        None
    };
    if let Some(why) = mode_lock {
        return assisted_page(state, signed_in, 6, &draft, why).await;
    }
    let lines = match backend(state) {
        Ok(backend) => backend.check(&draft.setup).await,
        Err(err) => return assisted_page(state, signed_in, 7, &draft, err).await,
    };
    if !all_passed(&lines) {
        return assisted_page(
            state,
            signed_in,
            5,
            &draft,
            "a check failed since the connection test: see the lines below".into(),
        )
        .await;
    }
    match state.store.create_mailbox_setup(&name, &draft.setup).await {
        Ok(()) => {}
        Err(StoreError::Conflict(why)) => {
            return assisted_page(state, signed_in, 1, &draft, why).await;
        }
        Err(err) => return Err(err.into()),
    }
    save_options(state, &draft.settings, &draft.template).await?;
    crate::audit::record(
        state,
        signed_in,
        "setup_saved",
        Some(name.as_str()),
        Some("new mailbox (assisted setup)".into()),
    )
    .await?;
    accept_and_enable(state, signed_in, &name).await?;
    state.store.delete_setup_draft(signed_in.user.id).await?;
    Ok(saved(
        &mailbox_url(&name),
        &format!("Assisted setup finished: the mailbox {name} is added and logging is enabled."),
    ))
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
        serde_urlencoded::from_str(&serde_urlencoded::to_string(pairs).unwrap())
            .expect("a valid form")
    }

    #[test]
    fn options_are_validated_and_the_mode_is_locked_when_asked() {
        let mut settings = Settings::default();
        let mut template = InteractionTemplate {
            code: "EMAIL".into(),
            description: "Email".into(),
            cost: Amount::from_hundredths(0),
            duration_minutes: 0,
            interaction_group: None,
            campaign_no: None,
        };
        let answers = form(&[
            ("interval", "5m"),
            ("time_zone", "Europe/Helsinki"),
            ("cost", "2.50"),
            ("minutes", "5"),
            ("storage_mode", "full"),
        ]);
        options_from_form(&answers, &mut settings, &mut template, None).unwrap();
        assert_eq!(
            (settings.interval_seconds, settings.storage_mode),
            (300, StorageMode::Full)
        );
        assert_eq!(
            (
                template.cost.to_string().as_str(),
                template.duration_minutes
            ),
            ("2.50", 5)
        );

        let back = form(&[("storage_mode", "reference")]);
        let lock = mode_lock_reason(
            Some(&MailboxName::default_name()),
            &[MailboxName::default_name()],
        );
        let err =
            options_from_form(&back, &mut settings, &mut template, lock.as_deref()).unwrap_err();
        assert!(err.contains("disable logging to change it"), "{err}");
        for bad in [
            ("interval", "1"),
            ("time_zone", "Mars/Olympus"),
            ("cost", "abc"),
            ("minutes", "9999"),
        ] {
            assert!(
                options_from_form(&form(&[bad]), &mut settings, &mut template, None).is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn the_storage_mode_is_locked_while_any_mailbox_logs() {
        let name = |text: &str| MailboxName::parse(text).unwrap();
        assert_eq!(mode_lock_reason(Some(&name("eu")), &[]), None);
        assert!(
            mode_lock_reason(Some(&name("eu")), &[name("EU")])
                .unwrap()
                .contains("disable logging to change it")
        );
        for this in [Some(name("eu")), None] {
            let why = mode_lock_reason(this.as_ref(), &[name("us")]).unwrap();
            assert!(
                why.contains("logging is enabled on us") && why.contains("every mailbox"),
                "{why}"
            );
        }
        let why = mode_lock_reason(Some(&name("eu")), &[name("eu"), name("us")]).unwrap();
        assert!(why.contains("eu, us"), "{why}");
    }

    #[test]
    fn a_stored_draft_reads_back_and_holds_secrets_only_in_their_stored_form() {
        let mut setup = blank_setup();
        setup.host = "imap.example.com".into();
        setup.password = Some(SecretRef::Sealed(SealedSecret(
            "v1:k1:nonce:ciphertext".into(),
        )));
        setup.oauth = Some(OAuthSetup {
            token_url: "https://login.example/token".into(),
            tenant: None,
            client_id: SecretRef::Env("CID".into()),
            client_secret: SecretRef::File("/run/secret".into()),
            scope: EXCHANGE_ONLINE_SCOPE.into(),
        });
        let mut settings = Settings::default();
        settings.set("storage_mode", "full").unwrap();
        settings.set("time_zone", "Europe/Helsinki").unwrap();
        let template = InteractionTemplate {
            code: "EMAIL".into(),
            description: "Email".into(),
            cost: Amount::from_hundredths(250),
            duration_minutes: 5,
            interaction_group: None,
            campaign_no: None,
        };
        let draft = Draft {
            name: "eu".into(),
            setup,
            settings,
            template,
            folders: vec!["Queue".into()],
        };
        let text = serde_json::to_string(&StoredDraft::from(&draft)).unwrap();
        assert!(
            text.contains("v1:k1:nonce:ciphertext")
                && text.contains("env:CID")
                && text.contains("file:/run/secret"),
            "{text}"
        );
        let back = Draft::try_from(serde_json::from_str::<StoredDraft>(&text).unwrap()).unwrap();
        assert_eq!(
            (
                back.name,
                back.setup,
                back.settings,
                back.template,
                back.folders
            ),
            (
                draft.name,
                draft.setup,
                draft.settings,
                draft.template,
                draft.folders
            )
        );
    }

    #[test]
    fn folders_must_be_chosen_and_differ() {
        let mut setup = blank_setup();
        assert!(folders_from_form(&form(&[("queue", "Queue")]), &mut setup).is_err());
        assert!(
            folders_from_form(
                &form(&[("queue", "Queue"), ("storage", "Queue")]),
                &mut setup
            )
            .is_err()
        );
        folders_from_form(
            &form(&[
                ("queue", "Queue"),
                ("storage", "Storage"),
                ("quarantine", "Bad"),
            ]),
            &mut setup,
        )
        .unwrap();
        assert_eq!(
            (
                setup.queue_folder.as_str(),
                setup.quarantine_folder.as_deref(),
                setup.not_logged_folder
            ),
            ("Queue", Some("Bad"), None)
        );
    }
}
