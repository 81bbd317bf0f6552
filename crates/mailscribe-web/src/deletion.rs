//! Deleting entries from the web, for admins: one entry from its page, or
//! every canceled entry older than a day from the log page. Both go through
//! the store's one deletion routine (the ledger keeps every decision).

use axum::Form;
use axum::extract::{Path, State};
use axum::response::Redirect;
use chrono::{NaiveDate, TimeZone, Utc};
use mailscribe_store::EntrySelection;
use serde::Deserialize;

use crate::AppState;
use crate::auth::SignedIn;
use crate::error::{ErrorKind, PageError};
use crate::pages::percent_encode;

#[derive(Deserialize, Default)]
pub(crate) struct DeleteForm {
    #[serde(default)]
    csrf: String,
}

#[derive(Deserialize, Default)]
pub(crate) struct CanceledForm {
    #[serde(default)]
    csrf: String,
    /// YYYY-MM-DD in the configured time zone: canceled entries before it go.
    #[serde(default)]
    before: String,
}

fn admin_form(signed_in: &SignedIn, csrf: &str) -> Result<(), PageError> {
    signed_in.check_csrf(csrf)?;
    if !signed_in.user.is_admin() {
        return Err(PageError(ErrorKind::Forbidden(
            "only an admin can delete entries",
        )));
    }
    Ok(())
}

fn back_with(notice: &str) -> Redirect {
    Redirect::to(&format!("/interactions?notice={}", percent_encode(notice)))
}

pub(crate) async fn delete_entry(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(entry_no): Path<i64>,
    Form(form): Form<DeleteForm>,
) -> Result<Redirect, PageError> {
    admin_form(&signed_in, &form.csrf)?;
    let summary = state
        .store
        .delete_entries(&EntrySelection::Entries(vec![entry_no]), false)
        .await?;
    if summary.entries == 0 {
        return Err(PageError(ErrorKind::NotFound));
    }
    tracing::info!(admin = %signed_in.user.name, entry_no, "entry deleted from the web");
    crate::audit::record(
        &state,
        &signed_in,
        "entries_deleted",
        Some(&format!("entry {entry_no}")),
        Some(format!("{} message records", summary.messages)),
    )
    .await?;
    Ok(back_with(&format!("Entry {entry_no} deleted.")))
}

pub(crate) async fn delete_canceled(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Form(form): Form<CanceledForm>,
) -> Result<Redirect, PageError> {
    admin_form(&signed_in, &form.csrf)?;
    let tz = state.store.settings().await?.time_zone;
    let day = NaiveDate::parse_from_str(form.before.trim(), "%Y-%m-%d")
        .map_err(|_| ErrorKind::BadRequest("the day is like 2026-03-31".into()))?;
    let before = day
        .and_hms_opt(0, 0, 0)
        .and_then(|midnight| tz.from_local_datetime(&midnight).earliest())
        .ok_or_else(|| ErrorKind::BadRequest(format!("no such midnight in {tz}")))?
        .with_timezone(&Utc);
    let summary = state
        .store
        .delete_entries(&EntrySelection::CanceledBefore(before), false)
        .await?;
    tracing::info!(admin = %signed_in.user.name, entries = summary.entries, "canceled entries deleted from the web");
    crate::audit::record(
        &state,
        &signed_in,
        "entries_deleted",
        Some(&format!("canceled before {day}")),
        Some(format!(
            "{} entries, {} message records",
            summary.entries, summary.messages
        )),
    )
    .await?;
    Ok(back_with(&format!(
        "{} canceled entries from before {day} deleted.",
        summary.entries
    )))
}
