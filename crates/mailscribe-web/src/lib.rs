//! The web app and the JSON API: axum handlers, askama templates, sessions.
//!
//! Boundary: only this crate knows HTTP, cookies, HTML and JSON. Handlers
//! extract, call the store, and render; the rules (who sees what) are in
//! `mailscribe_core::access`.

mod api;
mod audit;
mod auth;
mod client;
mod contract;
mod deletion;
mod email_logging;
mod error;
mod headers;
mod mailboxes;
mod message;
pub mod operations;
mod pages;
mod people;
mod run_now;
mod sales;
mod sso;
mod users;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use mailscribe_store::Store;

pub use auth::{generate_token, hash_password, hash_token};
pub use client::{Cidr, CidrError, Clock, SystemClock};
pub use email_logging::{BoxFuture, SecretField, SetupBackend};
pub use message::{FetchedRaw, MessageSource};
pub use operations::{MetricsRenderer, SchedulerPulse, describe_metrics};
pub use sso::SsoBackend;

/// What every handler can reach. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    /// Mark cookies `Secure` and name them `__Host-…` (the default of
    /// `serve`; off with `--insecure-cookies`).
    pub secure_cookies: bool,
    /// Peers whose `X-Forwarded-For` and `X-Forwarded-Proto` count.
    pub trusted_proxies: Arc<Vec<Cidr>>,
    /// Reads `reference`-mode messages from the mail server.
    pub message_source: Option<Arc<dyn MessageSource>>,
    /// Checks, lists folders and seals secrets for the setup pages.
    pub setup_backend: Option<Arc<dyn SetupBackend>>,
    /// Renders `/metrics`, when this process records metrics.
    pub metrics: Option<operations::MetricsRenderer>,
    /// The scheduler's pulse, for `/readyz`.
    pub scheduler_pulse: Option<operations::SchedulerPulse>,
    /// Opens the single sign-on client secret.
    pub sso_backend: Option<Arc<dyn SsoBackend>>,
    throttle: Arc<auth::LoginThrottle>,
    password_checks: Arc<tokio::sync::Semaphore>,
}

impl AppState {
    pub fn new(store: Store, secure_cookies: bool) -> AppState {
        AppState {
            store,
            secure_cookies,
            trusted_proxies: Arc::default(),
            message_source: None,
            setup_backend: None,
            metrics: None,
            scheduler_pulse: None,
            sso_backend: None,
            throttle: Arc::new(auth::LoginThrottle::new(Arc::new(SystemClock))),
            password_checks: Arc::new(tokio::sync::Semaphore::new(4)),
        }
    }

    /// `serve --trusted-proxy`: the proxies in front of Mailscribe.
    pub fn with_trusted_proxies(mut self, proxies: Vec<Cidr>) -> AppState {
        self.trusted_proxies = Arc::new(proxies);
        self
    }

    /// The clock of the sign-in throttle (tests move one by hand); a fresh
    /// throttle goes with it.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> AppState {
        self.throttle = Arc::new(auth::LoginThrottle::new(clock));
        self
    }

    pub fn with_message_source(mut self, source: Arc<dyn MessageSource>) -> AppState {
        self.message_source = Some(source);
        self
    }

    pub fn with_setup_backend(mut self, backend: Arc<dyn SetupBackend>) -> AppState {
        self.setup_backend = Some(backend);
        self
    }

    pub fn with_metrics(mut self, renderer: operations::MetricsRenderer) -> AppState {
        self.metrics = Some(renderer);
        self
    }

    pub fn with_sso_backend(mut self, backend: Arc<dyn SsoBackend>) -> AppState {
        self.sso_backend = Some(backend);
        self
    }

    pub fn with_scheduler_pulse(mut self, pulse: operations::SchedulerPulse) -> AppState {
        self.scheduler_pulse = Some(pulse);
        self
    }
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(operations::readyz))
        .route("/metrics", get(operations::metrics_on_main_listener))
        .route("/static/mailscribe.js", get(headers::script))
        .route("/", get(pages::home))
        .route("/login", get(pages::login_form).post(pages::login))
        .route("/logout", post(pages::logout))
        .route("/sso/login", get(sso::start))
        .route("/sso/callback", get(sso::callback))
        .route("/admin/sso", get(sso::show).post(sso::save))
        .route("/admin/sso/disable", post(sso::disable))
        .route(
            "/setup",
            get(pages::first_admin_form).post(pages::first_admin),
        )
        .route("/interactions", get(pages::interactions))
        .route("/interactions/{entry_no}", get(pages::entry))
        .route(
            "/interactions/{entry_no}/comments",
            post(pages::add_comment),
        )
        .route("/interactions/{entry_no}/cancel", post(pages::cancel))
        .route("/interactions/{entry_no}/restore", post(pages::restore))
        .route(
            "/interactions/{entry_no}/delete",
            post(deletion::delete_entry),
        )
        .route(
            "/interactions/delete-canceled",
            post(deletion::delete_canceled),
        )
        .route(
            "/interactions/{entry_no}/opportunity",
            post(sales::from_entry),
        )
        .route("/opportunities", get(sales::list).post(sales::create))
        .route("/opportunities/{no}", get(sales::card).post(sales::update))
        .route(
            "/contacts",
            get(people::contacts).post(people::save_contact),
        )
        .route("/contacts/import", post(people::import_contacts))
        .route("/contacts/{no}", get(people::contact))
        .route("/contacts/{no}/delete", post(people::delete_contact))
        .route(
            "/salespeople",
            get(people::salespeople).post(people::save_salesperson),
        )
        .route("/salespeople/import", post(people::import_salespeople))
        .route("/salespeople/{code}", get(people::salesperson))
        .route(
            "/salespeople/{code}/delete",
            post(people::delete_salesperson),
        )
        .route(
            "/admin/mailboxes",
            get(mailboxes::list).post(mailboxes::add),
        )
        .route(
            "/admin/mailboxes/{name}",
            get(email_logging::show).post(email_logging::save),
        )
        .route("/admin/mailboxes/{name}/check", post(email_logging::check))
        .route(
            "/admin/mailboxes/{name}/enable",
            post(email_logging::enable),
        )
        .route(
            "/admin/mailboxes/{name}/disable",
            post(email_logging::disable),
        )
        .route("/admin/mailboxes/{name}/clear", post(email_logging::clear))
        .route("/admin/mailboxes/{name}/run", post(run_now::request))
        .route("/admin/mailboxes/{name}/runs/{id}", get(run_now::show))
        // Today's URLs: the same handlers, on the mailbox `default`.
        .route(
            "/admin/email-logging",
            get(email_logging::show).post(email_logging::save),
        )
        .route("/admin/email-logging/check", post(email_logging::check))
        .route("/admin/email-logging/enable", post(email_logging::enable))
        .route("/admin/email-logging/disable", post(email_logging::disable))
        .route("/admin/email-logging/clear", post(email_logging::clear))
        .route("/admin/email-logging/run", post(run_now::request))
        .route(
            "/admin/email-logging/assisted",
            get(email_logging::assisted).post(email_logging::assisted_step),
        )
        .route("/admin/mail-server-guide", get(email_logging::guide))
        .route("/admin/users", get(users::list))
        .route("/admin/audit", get(audit::page))
        .route("/admin/users/{name}/role", post(users::set_role))
        .route("/admin/users/{name}/{action}", post(users::act))
        .route("/account", get(users::account))
        .route("/account/password", post(users::change_password))
        .route(
            "/account/sign-out-everywhere",
            post(users::sign_out_everywhere),
        )
        .route("/runs", get(sales::runs))
        .route("/decisions", get(sales::decisions))
        .route("/interactions/{entry_no}/message", get(message::show))
        .route(
            "/interactions/{entry_no}/message/attachments/{index}",
            get(message::attachment),
        )
        .route("/api/v1/openapi.json", get(api::openapi))
        .route("/api/v1/me", get(api::me))
        .route("/api/v1/interactions", get(api::interactions))
        .route("/api/v1/interactions/{entry_no}", get(api::interaction))
        .route(
            "/api/v1/interactions/{entry_no}/opportunity",
            post(api::opportunity_from_entry),
        )
        .route(
            "/api/v1/interactions/{entry_no}/comments",
            post(api::add_comment),
        )
        .route("/api/v1/interactions/{entry_no}/cancel", post(api::cancel))
        .route(
            "/api/v1/interactions/{entry_no}/restore",
            post(api::restore),
        )
        .route(
            "/api/v1/opportunities",
            get(api::opportunities).post(api::create_opportunity),
        )
        .route(
            "/api/v1/opportunities/{no}",
            get(api::opportunity).patch(api::update_opportunity),
        )
        .route("/api/v1/contacts", get(api::contacts))
        .route("/api/v1/contacts/import", post(api::import_contacts))
        .route("/api/v1/salespeople/import", post(api::import_salespeople))
        .route(
            "/api/v1/contacts/{no}",
            get(api::contact)
                .put(api::put_contact)
                .delete(api::delete_contact),
        )
        .route("/api/v1/salespeople", get(api::salespeople))
        .route(
            "/api/v1/salespeople/{code}",
            axum::routing::put(api::put_salesperson).delete(api::delete_salesperson),
        )
        .route("/api/v1/runs", get(api::runs))
        .route("/api/v1/decisions", get(api::decisions))
        .route("/api/v1/mailboxes/{name}/runs", post(run_now::api_request))
        .route(
            "/api/v1/mailboxes/{name}/runs/{id}",
            get(run_now::api_status),
        )
        .layer(axum::middleware::from_fn(error::json_rejections))
        .layer(axum::middleware::from_fn(operations::track))
        .layer(axum::middleware::from_fn(headers::security_headers))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            client::client_info,
        ))
        .with_state(state)
}

/// The operations listener of `serve --metrics-listen`: health, readiness
/// and metrics, without the loopback rule of the main listener.
pub fn operations_router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(operations::readyz))
        .route("/metrics", get(operations::metrics_open))
        .with_state(state)
}
