//! Contacts, companies and salespeople: lists, cards with their history,
//! and CSV import from the browser (admins only; the same rules and errors
//! as `mailscribe contacts import`).

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::response::{Html, Redirect};
use mailscribe_core::import::{RowError, read_contacts, read_salespeople};
use mailscribe_store::StoreError;
use serde::Deserialize;

use crate::AppState;
use crate::auth::SignedIn;
use crate::error::{ErrorKind, PageError};
use crate::pages::{EntryView, LogQuery, log_page, percent_encode, view};

struct PersonRow {
    key: String,
    /// `key` for a URL path.
    href: String,
    name: String,
    kind: String,
    company: String,
    addresses: String,
}

#[derive(Template)]
#[template(path = "people.html")]
struct ListPage {
    user_name: String,
    role: String,
    csrf: String,
    title: String,
    base: String,
    key_label: String,
    csv_header: String,
    searchable: bool,
    q: String,
    is_admin: bool,
    rows: Vec<PersonRow>,
}

#[derive(Template)]
#[template(path = "person.html")]
struct CardPage {
    user_name: String,
    role: String,
    csrf: String,
    title: String,
    name: String,
    kind: String,
    company: String,
    company_href: String,
    addresses: String,
    /// A privacy-blocked contact: its mail is never logged.
    privacy_blocked: bool,
    history: Vec<EntryView>,
    log_link: String,
    is_admin: bool,
    delete_action: String,
}

#[derive(Deserialize, Default)]
pub(crate) struct Search {
    #[serde(default)]
    q: String,
}

fn list_page(
    signed_in: &SignedIn,
    title: &str,
    base: &str,
    key_label: &str,
    csv_header: &str,
    q: String,
    rows: Vec<PersonRow>,
) -> ListPage {
    ListPage {
        user_name: signed_in.user.name.clone(),
        role: signed_in.user.role.to_string(),
        csrf: signed_in.csrf.clone(),
        title: title.into(),
        base: base.into(),
        key_label: key_label.into(),
        csv_header: csv_header.into(),
        searchable: base == "/contacts",
        q,
        is_admin: signed_in.user.is_admin(),
        rows,
    }
}

pub(crate) async fn contacts(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Query(search): Query<Search>,
) -> Result<Html<String>, PageError> {
    let text = search.q.trim();
    let rows = state
        .store
        .contacts_page((!text.is_empty()).then_some(text), 500)
        .await?
        .into_iter()
        .map(|c| PersonRow {
            href: percent_encode(c.no.as_str()),
            key: c.no.to_string(),
            name: c.name,
            kind: c.kind.as_str().into(),
            company: c.company_no.map(|n| n.to_string()).unwrap_or_default(),
            addresses: c
                .addresses
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
        })
        .collect();
    let page = list_page(
        &signed_in,
        "Contacts",
        "/contacts",
        "No.",
        "no,name,email,company[,type]",
        search.q.clone(),
        rows,
    );
    Ok(Html(page.render()?))
}

pub(crate) async fn salespeople(
    State(state): State<AppState>,
    signed_in: SignedIn,
) -> Result<Html<String>, PageError> {
    let rows = state
        .store
        .list_salespeople()
        .await?
        .into_iter()
        .filter(|s| signed_in.user.may_see_entry_of(s.code.as_str()))
        .map(|s| PersonRow {
            href: percent_encode(s.code.as_str()),
            key: s.code.to_string(),
            name: s.name,
            kind: "salesperson".into(),
            company: String::new(),
            addresses: s
                .addresses
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
        })
        .collect();
    let page = list_page(
        &signed_in,
        "Salespeople",
        "/salespeople",
        "Code",
        "code,name,email",
        String::new(),
        rows,
    );
    Ok(Html(page.render()?))
}

async fn history(
    state: &AppState,
    signed_in: &SignedIn,
    query: LogQuery,
) -> Result<Vec<EntryView>, PageError> {
    let (rows, tz) = log_page(state, &signed_in.user, &query, 100).await?;
    Ok(rows.iter().map(|r| view(r, tz)).collect())
}

pub(crate) async fn contact(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(no): Path<String>,
) -> Result<Html<String>, PageError> {
    let contact = state
        .store
        .contact(&no)
        .await?
        .ok_or(PageError(ErrorKind::NotFound))?;
    // A company's history is that of its people and its own.
    let is_company = contact.kind == mailscribe_core::ContactKind::Company;
    let query = if is_company {
        LogQuery {
            company: no.clone(),
            ..Default::default()
        }
    } else {
        LogQuery {
            contact: no.clone(),
            ..Default::default()
        }
    };
    let log_link = if is_company {
        format!("/interactions?company={}", percent_encode(&no))
    } else {
        format!("/interactions?contact={}", percent_encode(&no))
    };
    let page = CardPage {
        user_name: signed_in.user.name.clone(),
        role: signed_in.user.role.to_string(),
        csrf: signed_in.csrf.clone(),
        title: format!("Contact {no}"),
        name: contact.name,
        kind: contact.kind.as_str().into(),
        company_href: contact
            .company_no
            .as_ref()
            .map(|c| percent_encode(c.as_str()))
            .unwrap_or_default(),
        company: contact
            .company_no
            .map(|c| c.to_string())
            .filter(|c| c != &no)
            .unwrap_or_default(),
        addresses: contact
            .addresses
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        privacy_blocked: contact.privacy_blocked,
        history: history(&state, &signed_in, query).await?,
        log_link,
        is_admin: signed_in.user.is_admin(),
        delete_action: format!("/contacts/{}/delete", percent_encode(&no)),
    };
    Ok(Html(page.render()?))
}

pub(crate) async fn salesperson(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(code): Path<String>,
) -> Result<Html<String>, PageError> {
    if !signed_in.user.may_see_entry_of(&code) {
        return Err(PageError(ErrorKind::NotFound));
    }
    let person = state
        .store
        .list_salespeople()
        .await?
        .into_iter()
        .find(|s| s.code.as_str() == code)
        .ok_or(PageError(ErrorKind::NotFound))?;
    let page = CardPage {
        user_name: signed_in.user.name.clone(),
        role: signed_in.user.role.to_string(),
        csrf: signed_in.csrf.clone(),
        title: format!("Salesperson {code}"),
        name: person.name,
        kind: "salesperson".into(),
        company: String::new(),
        company_href: String::new(),
        addresses: person
            .addresses
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        privacy_blocked: false,
        history: history(
            &state,
            &signed_in,
            LogQuery {
                salesperson: code.clone(),
                ..Default::default()
            },
        )
        .await?,
        log_link: format!("/interactions?salesperson={}", percent_encode(&code)),
        is_admin: signed_in.user.is_admin(),
        delete_action: format!("/salespeople/{}/delete", percent_encode(&code)),
    };
    Ok(Html(page.render()?))
}

#[derive(Deserialize)]
pub(crate) struct ImportForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    csv: String,
}

fn refused(errors: Vec<RowError>) -> PageError {
    let listed: Vec<String> = errors.iter().map(ToString::to_string).collect();
    PageError(ErrorKind::BadRequest(format!(
        "nothing was imported: {}",
        listed.join("; ")
    )))
}

fn admin_only(signed_in: &SignedIn, csrf: &str) -> Result<(), PageError> {
    signed_in.check_csrf(csrf)?;
    if !signed_in.user.is_admin() {
        return Err(PageError(ErrorKind::Forbidden(
            "only an admin can change the directory",
        )));
    }
    Ok(())
}

pub(crate) async fn import_contacts(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Form(form): Form<ImportForm>,
) -> Result<Redirect, PageError> {
    admin_only(&signed_in, &form.csrf)?;
    let rows = read_contacts(form.csv.as_bytes()).map_err(refused)?;
    let contacts: Vec<_> = rows.into_iter().map(|(_, c)| c).collect();
    let summary = state.store.import_contacts(&contacts).await?;
    let detail = format!(
        "{} contacts ({} new, {} updated)",
        contacts.len(),
        summary.created,
        summary.updated
    );
    crate::audit::record(&state, &signed_in, "contacts_imported", None, Some(detail)).await?;
    Ok(Redirect::to("/contacts"))
}

pub(crate) async fn import_salespeople(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Form(form): Form<ImportForm>,
) -> Result<Redirect, PageError> {
    admin_only(&signed_in, &form.csrf)?;
    let rows = read_salespeople(form.csv.as_bytes()).map_err(refused)?;
    let people: Vec<_> = rows.iter().map(|(_, p)| p.clone()).collect();
    match state.store.import_salespeople(&people).await {
        Ok(summary) => {
            let detail = format!(
                "{} salespeople ({} new, {} updated)",
                people.len(),
                summary.created,
                summary.updated
            );
            crate::audit::record(
                &state,
                &signed_in,
                "salespeople_imported",
                None,
                Some(detail),
            )
            .await?;
            Ok(Redirect::to("/salespeople"))
        }
        Err(StoreError::Conflict(message)) => {
            let line = rows
                .iter()
                .find(|(_, p)| p.addresses.iter().any(|a| message.contains(a.as_str())))
                .map_or(0, |(l, _)| *l);
            Err(refused(vec![RowError { line, message }]))
        }
        Err(err) => Err(err.into()),
    }
}

#[derive(Deserialize)]
pub(crate) struct OneForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    key: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    company: String,
    #[serde(default)]
    kind: String,
    /// The contact form's choice: `true`, `false`, or empty to leave the
    /// flag as it is (a form that changes a name must not unblock anyone).
    #[serde(default)]
    privacy_blocked: String,
}

/// One CSV field, quoted (RFC 4180), so that a form goes through exactly
/// the rules of a file import.
/// One CSV field, quoted: a single row goes through the import rules.
pub(crate) fn field(value: &str) -> String {
    format!("\"{}\"", value.replace('"', "\"\""))
}

pub(crate) async fn save_contact(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Form(form): Form<OneForm>,
) -> Result<Redirect, PageError> {
    admin_only(&signed_in, &form.csrf)?;
    let kind = if form.kind == "company" {
        "company"
    } else {
        "person"
    };
    // Through the import rules: an empty cell leaves the flag as it is,
    // anything but true or false is refused with its reason.
    let blocked = field(&form.privacy_blocked);
    let csv = format!(
        "no,name,email,company,type,privacy_blocked\n{},{},{},{},{kind},{blocked}\n",
        field(&form.key),
        field(&form.name),
        field(&form.email),
        field(if kind == "company" { "" } else { &form.company })
    );
    let rows = read_contacts(csv.as_bytes()).map_err(refused)?;
    let contacts: Vec<_> = rows.into_iter().map(|(_, c)| c).collect();
    state.store.import_contacts(&contacts).await?;
    Ok(Redirect::to(&format!(
        "/contacts/{}",
        percent_encode(form.key.trim())
    )))
}

pub(crate) async fn save_salesperson(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Form(form): Form<OneForm>,
) -> Result<Redirect, PageError> {
    admin_only(&signed_in, &form.csrf)?;
    let csv = format!(
        "code,name,email\n{},{},{}\n",
        field(&form.key),
        field(&form.name),
        field(&form.email)
    );
    let rows = read_salespeople(csv.as_bytes()).map_err(refused)?;
    let people: Vec<_> = rows.into_iter().map(|(_, p)| p).collect();
    match state.store.import_salespeople(&people).await {
        Ok(_) => Ok(Redirect::to(&format!(
            "/salespeople/{}",
            percent_encode(form.key.trim())
        ))),
        Err(StoreError::Conflict(message)) => Err(PageError(ErrorKind::BadRequest(message))),
        Err(err) => Err(err.into()),
    }
}

#[derive(Deserialize)]
pub(crate) struct DeleteForm {
    #[serde(default)]
    csrf: String,
}

pub(crate) async fn delete_contact(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(no): Path<String>,
    Form(form): Form<DeleteForm>,
) -> Result<Redirect, PageError> {
    admin_only(&signed_in, &form.csrf)?;
    match state.store.delete_contact(&no).await {
        Ok(true) => Ok(Redirect::to("/contacts")),
        Ok(false) => Err(PageError(ErrorKind::NotFound)),
        Err(StoreError::Conflict(message)) => Err(PageError(ErrorKind::BadRequest(message))),
        Err(err) => Err(err.into()),
    }
}

pub(crate) async fn delete_salesperson(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(code): Path<String>,
    Form(form): Form<DeleteForm>,
) -> Result<Redirect, PageError> {
    admin_only(&signed_in, &form.csrf)?;
    match state.store.delete_salesperson(&code).await? {
        true => Ok(Redirect::to("/salespeople")),
        false => Err(PageError(ErrorKind::NotFound)),
    }
}
