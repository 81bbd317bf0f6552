//! The mailbox list, for admins: every mailbox with its state and what the
//! worker last saw, and adding a mailbox by name (its page then takes the
//! setup, or the assisted setup does it all).

use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use mailscribe_core::MailboxName;
use serde::Deserialize;

use crate::AppState;
use crate::auth::SignedIn;
use crate::email_logging::{StatusShown, admin, admin_form, mailbox_url, respond};
use crate::error::PageError;

#[derive(Template)]
#[template(path = "mailboxes.html")]
struct MailboxesPage {
    user_name: String,
    role: String,
    csrf: String,
    mailboxes: Vec<Listed>,
    /// The name typed into "add a mailbox", shown again when refused.
    name: String,
    notice: String,
    problem: String,
}

struct Listed {
    name: String,
    url: String,
    enabled: bool,
    host: String,
    queue: String,
    status: StatusShown,
}

#[derive(Deserialize, Default)]
pub(crate) struct ListQuery {
    #[serde(default)]
    notice: String,
}

#[derive(Deserialize, Default)]
pub(crate) struct AddForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
}

async fn list_page(
    state: &AppState,
    signed_in: &SignedIn,
    name: String,
    notice: String,
    problem: String,
) -> Result<Response, PageError> {
    let settings = state.store.settings().await?;
    let mailboxes = state
        .store
        .mailboxes()
        .await?
        .into_iter()
        .map(|m| Listed {
            name: m.name.to_string(),
            url: mailbox_url(&m.name),
            enabled: m.enablement.enabled,
            host: m.setup.host,
            queue: m.setup.queue_folder,
            status: StatusShown::of(&m.status, &settings),
        })
        .collect();
    let page = MailboxesPage {
        user_name: signed_in.user.name.clone(),
        role: signed_in.user.role.to_string(),
        csrf: signed_in.csrf.clone(),
        mailboxes,
        name,
        notice,
        problem,
    };
    let refused = !page.problem.is_empty();
    respond(&page, refused)
}

pub(crate) async fn list(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Query(query): Query<ListQuery>,
) -> Result<Response, PageError> {
    admin(&signed_in)?;
    list_page(
        &state,
        &signed_in,
        String::new(),
        query.notice,
        String::new(),
    )
    .await
}

/// Adds a mailbox by name: a valid name that no mailbox has leads to the
/// new mailbox's page, where saving the setup creates it.
pub(crate) async fn add(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Form(form): Form<AddForm>,
) -> Result<Response, PageError> {
    admin_form(&signed_in, &form.csrf)?;
    let name = match MailboxName::parse(&form.name) {
        Ok(name) => name,
        Err(err) => {
            return list_page(
                &state,
                &signed_in,
                form.name,
                String::new(),
                err.to_string(),
            )
            .await;
        }
    };
    if let Some(existing) = state.store.mailbox(&name).await? {
        let problem = format!(
            "a mailbox named {} exists already (names ignore case): choose another name, or open it from the list to change it",
            existing.name
        );
        return list_page(&state, &signed_in, form.name, String::new(), problem).await;
    }
    Ok(Redirect::to(&format!("{}?new=1", mailbox_url(&name))).into_response())
}
