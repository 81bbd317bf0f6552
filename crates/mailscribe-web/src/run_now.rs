//! "Run now" for an enabled mailbox, on its setup page and in the API. The
//! request is a row in the database: whichever instance of `serve` holds
//! the mailbox claims it at its next heartbeat, runs, and writes the run's
//! summary back, so it works with any number of instances.

use std::time::Duration;

use askama::Template;
use axum::Form;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use mailscribe_core::MailboxName;
use mailscribe_store::RunRequest;
use serde::Deserialize;

use crate::AppState;
use crate::api::ApiWriter;
use crate::auth::{ApiUser, SignedIn};
use crate::email_logging::{Target, admin_form, mailbox_url, respond};
use crate::error::{ApiError, ErrorKind, PageError};

#[derive(Deserialize, Default)]
pub(crate) struct ActionForm {
    #[serde(default)]
    csrf: String,
}

/// The counts shown of a finished run, read from its summary.
struct Shown {
    run_id: i64,
    seen: u64,
    logged: u64,
    entries: u64,
    duplicate: u64,
    not_logged: u64,
    failed: u64,
}

#[derive(Template)]
#[template(path = "run_request.html")]
struct RunRequestPage {
    user_name: String,
    role: String,
    csrf: String,
    mailbox: String,
    mailbox_url: String,
    id: i64,
    finished: bool,
    summary: Option<Shown>,
    error: String,
}

/// Refuses a mailbox that does not exist or does not log: nobody would run it.
async fn enabled_mailbox(state: &AppState, name: &MailboxName) -> Result<(), ErrorKind> {
    match state.store.mailbox(name).await? {
        None => Err(ErrorKind::NotFound),
        Some(row) if !row.enablement.enabled => Err(ErrorKind::BadRequest(format!(
            "logging is disabled for the mailbox {name}: enable it first"
        ))),
        Some(_) => Ok(()),
    }
}

pub(crate) async fn request(
    State(state): State<AppState>,
    signed_in: SignedIn,
    target: Target,
    Form(form): Form<ActionForm>,
) -> Result<Response, PageError> {
    admin_form(&signed_in, &form.csrf)?;
    let name = target.name();
    enabled_mailbox(&state, name).await?;
    let id = state
        .store
        .request_run(name.as_str(), &signed_in.user.name, chrono::Utc::now())
        .await?;
    Ok(Redirect::to(&format!("{}/runs/{id}", mailbox_url(name))).into_response())
}

fn shown(request: &RunRequest) -> Option<Shown> {
    let summary: serde_json::Value = serde_json::from_str(request.summary.as_deref()?).ok()?;
    let n = |key: &str| summary[key].as_u64().unwrap_or(0);
    Some(Shown {
        run_id: summary["run_id"].as_i64().unwrap_or(0),
        seen: n("seen"),
        logged: n("logged"),
        entries: n("entries"),
        duplicate: n("duplicate"),
        not_logged: n("not_logged"),
        failed: n("failed"),
    })
}

async fn request_of(
    state: &AppState,
    name: &MailboxName,
    id: i64,
) -> Result<RunRequest, ErrorKind> {
    match state.store.run_request(id).await {
        Ok(request) if MailboxName::parse(&request.mailbox_name).is_ok_and(|n| n == *name) => {
            Ok(request)
        }
        Ok(_) | Err(mailscribe_store::StoreError::Conflict(_)) => Err(ErrorKind::NotFound),
        Err(err) => Err(err.into()),
    }
}

pub(crate) async fn show(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path((name, id)): Path<(String, i64)>,
) -> Result<Response, PageError> {
    if !signed_in.user.is_admin() {
        return Err(PageError(ErrorKind::Forbidden(
            "only an admin can run a mailbox",
        )));
    }
    let name = MailboxName::parse(&name).map_err(|err| ErrorKind::BadRequest(err.to_string()))?;
    let request = request_of(&state, &name, id).await?;
    let page = RunRequestPage {
        user_name: signed_in.user.name.clone(),
        role: signed_in.user.role.to_string(),
        csrf: signed_in.csrf.clone(),
        mailbox: name.to_string(),
        mailbox_url: mailbox_url(&name),
        id,
        finished: request.finished_at.is_some(),
        summary: shown(&request),
        error: request.error.clone().unwrap_or_default(),
    };
    respond(&page, false)
}

#[derive(Deserialize, Default)]
pub(crate) struct WaitQuery {
    /// Seconds to wait for the run before answering 202 (0 to 60, default 30).
    #[serde(default)]
    wait: Option<u64>,
}

fn status_json(name: &MailboxName, request: &RunRequest) -> serde_json::Value {
    let summary: Option<serde_json::Value> = request
        .summary
        .as_deref()
        .and_then(|s| serde_json::from_str(s).ok());
    serde_json::json!({
        "id": request.id,
        "mailbox": name.as_str(),
        "finished": request.finished_at.is_some(),
        "run_id": request.run_id,
        "summary": summary,
        "error": request.error,
        "status_url": format!("/api/v1/mailboxes/{name}/runs/{}", request.id),
    })
}

/// `POST /api/v1/mailboxes/{name}/runs`: admins, with a bearer token. Waits
/// up to `wait` seconds: 200 with the summary when the run is done, else
/// 202 with where to ask again.
pub(crate) async fn api_request(
    State(state): State<AppState>,
    ApiWriter(user): ApiWriter,
    Path(name): Path<String>,
    Query(query): Query<WaitQuery>,
) -> Result<Response, ApiError> {
    if !user.is_admin() {
        return Err(ApiError(ErrorKind::Forbidden(
            "only an admin can run a mailbox",
        )));
    }
    crate::contract::check_mailbox("name", &name)?;
    let wait = query.wait.unwrap_or(30);
    if wait > 60 {
        return Err(ApiError(ErrorKind::BadRequest(
            "wait is 0 to 60 seconds".into(),
        )));
    }
    // The characters are right; a reserved name is a mailbox that cannot exist.
    let name = MailboxName::parse(&name).map_err(|_| ApiError(ErrorKind::NotFound))?;
    // To an API client a well-formed request for a disabled mailbox is a
    // conflict with its state (409), not a malformed one.
    enabled_mailbox(&state, &name)
        .await
        .map_err(|err| match err {
            ErrorKind::BadRequest(why) => ApiError(ErrorKind::Conflict(why)),
            other => ApiError(other),
        })?;
    let id = state
        .store
        .request_run(name.as_str(), &user.name, chrono::Utc::now())
        .await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(wait);
    loop {
        let request = state.store.run_request(id).await?;
        if request.finished_at.is_some() {
            return Ok((
                axum::http::StatusCode::OK,
                Json(status_json(&name, &request)),
            )
                .into_response());
        }
        if tokio::time::Instant::now() >= deadline {
            return Ok((
                axum::http::StatusCode::ACCEPTED,
                Json(status_json(&name, &request)),
            )
                .into_response());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `GET /api/v1/mailboxes/{name}/runs/{id}`: where a request stands.
pub(crate) async fn api_status(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    Path((name, id)): Path<(String, i64)>,
) -> Result<Json<serde_json::Value>, ApiError> {
    if !user.is_admin() {
        return Err(ApiError(ErrorKind::Forbidden(
            "only an admin can run a mailbox",
        )));
    }
    crate::contract::check_mailbox("name", &name)?;
    let name = MailboxName::parse(&name).map_err(|_| ApiError(ErrorKind::NotFound))?;
    let request = request_of(&state, &name, id).await.map_err(ApiError)?;
    Ok(Json(status_json(&name, &request)))
}
