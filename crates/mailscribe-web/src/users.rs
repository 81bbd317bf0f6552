//! Accounts on the web: the admins' Users page (role, disable, enable,
//! remove) and each user's own account (change the password, sign out
//! everywhere). Every change ends the user's sessions and revokes their
//! API tokens; the store refuses to lose the last active admin.

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::header::SET_COOKIE;
use axum::response::{IntoResponse, Redirect, Response};
use mailscribe_core::{Role, SalespersonCode};
use mailscribe_store::{StoreError, UserChange};
use serde::Deserialize;

use crate::AppState;
use crate::auth::{SESSION_COOKIE, SignedIn, hash_password, set_cookie, verify_password};
use crate::email_logging::{admin_form, respond};
use crate::error::{ErrorKind, PageError};

#[derive(Template)]
#[template(path = "users.html")]
struct UsersPage {
    user_name: String,
    role: String,
    csrf: String,
    users: Vec<Listed>,
    notice: String,
    problem: String,
}

struct Listed {
    name: String,
    role: String,
    salesperson: String,
    disabled: bool,
    last_sign_in: String,
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage {
    user_name: String,
    role: String,
    csrf: String,
    problem: String,
}

#[derive(Deserialize, Default)]
pub(crate) struct NoticeQuery {
    #[serde(default)]
    notice: String,
}

#[derive(Deserialize, Default)]
pub(crate) struct ActionForm {
    #[serde(default)]
    csrf: String,
}

#[derive(Deserialize, Default)]
pub(crate) struct RoleForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    salesperson: String,
}

#[derive(Deserialize, Default)]
pub(crate) struct PasswordForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    current: String,
    #[serde(default)]
    new: String,
    #[serde(default)]
    repeat: String,
}

fn only_admins(signed_in: &SignedIn) -> Result<(), PageError> {
    if !signed_in.user.is_admin() {
        return Err(PageError(ErrorKind::Forbidden(
            "only an admin manages users",
        )));
    }
    Ok(())
}

async fn users_page(
    state: &AppState,
    signed_in: &SignedIn,
    notice: String,
    problem: String,
) -> Result<Response, PageError> {
    let tz = state.store.settings().await?.time_zone;
    let users = state
        .store
        .list_users()
        .await?
        .into_iter()
        .map(|row| Listed {
            name: row.user.name,
            role: row.user.role.as_str().to_owned(),
            salesperson: row
                .user
                .salesperson
                .as_ref()
                .map(SalespersonCode::as_str)
                .unwrap_or("")
                .to_owned(),
            disabled: row.disabled,
            last_sign_in: row
                .last_sign_in_at
                .map(|at| at.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string())
                .unwrap_or_default(),
        })
        .collect();
    let page = UsersPage {
        user_name: signed_in.user.name.clone(),
        role: signed_in.user.role.to_string(),
        csrf: signed_in.csrf.clone(),
        users,
        notice,
        problem,
    };
    let refused = !page.problem.is_empty();
    respond(&page, refused)
}

pub(crate) async fn list(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Query(query): Query<NoticeQuery>,
) -> Result<Response, PageError> {
    only_admins(&signed_in)?;
    users_page(&state, &signed_in, query.notice, String::new()).await
}

/// Applies a change; a refusal (the last admin, an unknown user) is shown
/// on the list.
async fn apply_change(
    state: &AppState,
    signed_in: &SignedIn,
    name: &str,
    change: UserChange,
    done: &str,
) -> Result<Response, PageError> {
    match state.store.change_user(name, &change).await {
        Ok(()) => {
            tracing::info!(admin = %signed_in.user.name, user = %name, "{done}");
            let event = format!("user_{}", done.replace(' ', "_"));
            crate::audit::record(state, signed_in, &event, Some(name), None).await?;
            let notice =
                format!("{name}: {done}; their sessions ended and their API tokens were revoked");
            Ok(Redirect::to(&format!(
                "/admin/users?notice={}",
                crate::pages::percent_encode(&notice)
            ))
            .into_response())
        }
        Err(StoreError::Conflict(reason)) => {
            users_page(state, signed_in, String::new(), reason).await
        }
        Err(err) => Err(err.into()),
    }
}

/// Disable, enable or remove a user: `/admin/users/{name}/{action}`.
pub(crate) async fn act(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path((name, action)): Path<(String, String)>,
    Form(form): Form<ActionForm>,
) -> Result<Response, PageError> {
    admin_form(&signed_in, &form.csrf)?;
    let (change, done) = match action.as_str() {
        "disable" => (UserChange::Disable, "disabled"),
        "enable" => (UserChange::Enable, "enabled"),
        "remove" => (UserChange::Remove, "removed"),
        _ => return Err(PageError(ErrorKind::NotFound)),
    };
    apply_change(&state, &signed_in, &name, change, done).await
}

pub(crate) async fn set_role(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(name): Path<String>,
    Form(form): Form<RoleForm>,
) -> Result<Response, PageError> {
    admin_form(&signed_in, &form.csrf)?;
    let role: Role = match form.role.parse() {
        Ok(role) => role,
        Err(_) => {
            return users_page(
                &state,
                &signed_in,
                String::new(),
                "the role is admin, user or salesperson".into(),
            )
            .await;
        }
    };
    let code = match (role, form.salesperson.trim()) {
        (Role::Salesperson, "") => {
            return users_page(
                &state,
                &signed_in,
                String::new(),
                "a salesperson account needs its salesperson code".into(),
            )
            .await;
        }
        (Role::Salesperson, code) => match SalespersonCode::parse(code) {
            Ok(code) => Some(code),
            Err(err) => {
                return users_page(
                    &state,
                    &signed_in,
                    String::new(),
                    format!("salesperson code: {err}"),
                )
                .await;
            }
        },
        _ => None,
    };
    apply_change(
        &state,
        &signed_in,
        &name,
        UserChange::Role(role, code),
        "role changed",
    )
    .await
}

fn account_page(signed_in: &SignedIn, problem: String) -> Result<Response, PageError> {
    let page = AccountPage {
        user_name: signed_in.user.name.clone(),
        role: signed_in.user.role.to_string(),
        csrf: signed_in.csrf.clone(),
        problem,
    };
    let refused = !page.problem.is_empty();
    respond(&page, refused)
}

pub(crate) async fn account(signed_in: SignedIn) -> Result<Response, PageError> {
    account_page(&signed_in, String::new())
}

/// Changing one's own password needs the current one; it ends every
/// session, this one too, so the user signs in again with the new one.
pub(crate) async fn change_password(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Form(form): Form<PasswordForm>,
) -> Result<Response, PageError> {
    signed_in.check_csrf(&form.csrf)?;
    let Some((_, hash)) = state.store.user_by_name(&signed_in.user.name).await? else {
        return Err(PageError(ErrorKind::Unauthenticated));
    };
    let current_ok = {
        let _permit = state
            .password_checks
            .acquire()
            .await
            .map_err(|e| ErrorKind::Internal(e.to_string()))?;
        verify_password(form.current, hash).await
    };
    if !current_ok {
        return account_page(&signed_in, "The current password is wrong.".into());
    }
    if let Err(weak) = mailscribe_core::check_new_password(&form.new, &signed_in.user.name) {
        return account_page(&signed_in, crate::pages::sentence(&weak.to_string()));
    }
    if form.new != form.repeat {
        return account_page(&signed_in, "The two new passwords differ.".into());
    }
    let hash = hash_password(form.new).await.map_err(ErrorKind::Internal)?;
    state
        .store
        .change_user(&signed_in.user.name, &UserChange::Password(hash))
        .await?;
    crate::audit::record(
        &state,
        &signed_in,
        "user_password_changed",
        Some(&signed_in.user.name),
        Some("by the user".into()),
    )
    .await?;
    Ok((
        [(SET_COOKIE, set_cookie(&state, SESSION_COOKIE, "", 0))],
        Redirect::to("/login"),
    )
        .into_response())
}

pub(crate) async fn sign_out_everywhere(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Form(form): Form<ActionForm>,
) -> Result<Response, PageError> {
    signed_in.check_csrf(&form.csrf)?;
    state.store.end_sessions(signed_in.user.id).await?;
    crate::audit::record(
        &state,
        &signed_in,
        "signed_out_everywhere",
        Some(&signed_in.user.name),
        None,
    )
    .await?;
    Ok((
        [(SET_COOKIE, set_cookie(&state, SESSION_COOKIE, "", 0))],
        Redirect::to("/login"),
    )
        .into_response())
}
