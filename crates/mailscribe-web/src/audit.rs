//! The audit log on the web: recording what admins and sign-ins do, and the
//! admins' page that reads it (newest first, by event and actor).

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use mailscribe_store::{AuditEvent, StoreError};
use serde::Deserialize;

use crate::AppState;
use crate::auth::SignedIn;
use crate::email_logging::respond;
use crate::error::{ErrorKind, PageError};

/// Records an event by the signed-in user.
pub(crate) async fn record(
    state: &AppState,
    signed_in: &SignedIn,
    event: &str,
    target: Option<&str>,
    detail: Option<String>,
) -> Result<(), StoreError> {
    record_as(
        state,
        &signed_in.user.name,
        signed_in.client.clone(),
        event,
        target,
        detail,
    )
    .await
}

/// Records an event by `actor` (a sign-in names the user it tried).
pub(crate) async fn record_as(
    state: &AppState,
    actor: &str,
    client: Option<String>,
    event: &str,
    target: Option<&str>,
    detail: Option<String>,
) -> Result<(), StoreError> {
    let event = AuditEvent {
        actor: actor.to_owned(),
        client_address: client,
        event: event.to_owned(),
        target: target.map(str::to_owned),
        detail,
    };
    state.store.record_audit(&event, chrono::Utc::now()).await
}

#[derive(Deserialize, Default)]
pub(crate) struct AuditQuery {
    #[serde(default)]
    event: String,
    #[serde(default)]
    actor: String,
    #[serde(default)]
    before: Option<i64>,
}

struct Shown {
    id: i64,
    at: String,
    actor: String,
    client: String,
    event: String,
    target: String,
    detail: String,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    user_name: String,
    role: String,
    csrf: String,
    event: String,
    actor: String,
    rows: Vec<Shown>,
    next: Option<String>,
}

const PAGE: i64 = 100;

pub(crate) async fn page(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Query(query): Query<AuditQuery>,
) -> Result<Response, PageError> {
    if !signed_in.user.is_admin() {
        return Err(PageError(ErrorKind::Forbidden(
            "only an admin reads the audit log",
        )));
    }
    let tz = state.store.settings().await?.time_zone;
    let trimmed = |s: &str| (!s.trim().is_empty()).then(|| s.trim().to_owned());
    let (event, actor) = (trimmed(&query.event), trimmed(&query.actor));
    let rows = state
        .store
        .audit_page(event.as_deref(), actor.as_deref(), query.before, PAGE)
        .await?;
    let next = (rows.len() as i64 == PAGE)
        .then(|| {
            rows.last().map(|last| {
                format!(
                    "/admin/audit?event={}&actor={}&before={}",
                    crate::pages::percent_encode(&query.event),
                    crate::pages::percent_encode(&query.actor),
                    last.id
                )
            })
        })
        .flatten();
    let page = AuditPage {
        user_name: signed_in.user.name.clone(),
        role: signed_in.user.role.to_string(),
        csrf: signed_in.csrf.clone(),
        event: query.event,
        actor: query.actor,
        rows: rows
            .into_iter()
            .map(|r| Shown {
                id: r.id,
                at: r
                    .at
                    .with_timezone(&tz)
                    .format("%Y-%m-%d %H:%M:%S")
                    .to_string(),
                actor: r.event.actor,
                client: r.event.client_address.unwrap_or_default(),
                event: r.event.event,
                target: r.event.target.unwrap_or_default(),
                detail: r.event.detail.unwrap_or_default(),
            })
            .collect(),
        next,
    };
    respond(&page, false)
}
