//! Opportunities, the run history and the decision ledger.

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::response::{Html, Redirect};
use chrono::Utc;
use mailscribe_core::{Amount, Reason, Restriction, User};
use mailscribe_store::{NewOpportunity, OPPORTUNITY_STATUSES, Opportunity, StoreError};
use serde::Deserialize;

use crate::AppState;
use crate::auth::SignedIn;
use crate::error::{ErrorKind, PageError};
use crate::pages::{percent_encode, visible_entry};

pub(crate) struct OpportunityView {
    no: String,
    description: String,
    contact: String,
    company: String,
    salesperson: String,
    status: String,
    created: String,
    value: String,
}

fn view(o: Opportunity, tz: chrono_tz::Tz) -> OpportunityView {
    OpportunityView {
        no: o.no,
        description: o.description,
        contact: o.contact_no.unwrap_or_default(),
        company: o.contact_company_no.unwrap_or_default(),
        salesperson: o.salesperson_code.unwrap_or_default(),
        status: o.status,
        created: o
            .created_at
            .with_timezone(&tz)
            .format("%Y-%m-%d")
            .to_string(),
        value: o.estimated_value.map(|v| v.to_string()).unwrap_or_default(),
    }
}

/// `Some(code)` restricts to one salesperson; `Err` when the user may see none.
fn own_code(user: &User) -> Result<Option<String>, ()> {
    match user.restricted_to() {
        None => Ok(None),
        Some(Restriction::Salesperson(code)) => Ok(Some(code.to_string())),
        Some(Restriction::Nothing) => Err(()),
    }
}

async fn visible_opportunity(
    state: &AppState,
    user: &User,
    no: &str,
) -> Result<Opportunity, PageError> {
    match state.store.opportunity(no).await? {
        Some(o)
            if o.salesperson_code
                .as_deref()
                .is_some_and(|c| user.may_see_entry_of(c))
                || user.restricted_to().is_none() =>
        {
            Ok(o)
        }
        _ => Err(PageError(ErrorKind::NotFound)),
    }
}

#[derive(Deserialize)]
pub(crate) struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

pub(crate) async fn from_entry(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(entry_no): Path<i64>,
    Form(form): Form<CsrfForm>,
) -> Result<Redirect, PageError> {
    signed_in.check_csrf(&form.csrf)?;
    visible_entry(&state, &signed_in.user, entry_no).await?;
    match state
        .store
        .create_opportunity_from_entry(entry_no, Utc::now())
        .await
    {
        Ok(no) => Ok(Redirect::to(&format!("/opportunities/{no}"))),
        Err(StoreError::Conflict(why)) => Err(PageError(ErrorKind::BadRequest(why))),
        Err(err) => Err(err.into()),
    }
}

#[derive(Template)]
#[template(path = "opportunities.html")]
struct ListPage {
    user_name: String,
    role: String,
    csrf: String,
    restricted: bool,
    rows: Vec<OpportunityView>,
}

pub(crate) async fn list(
    State(state): State<AppState>,
    signed_in: SignedIn,
) -> Result<Html<String>, PageError> {
    let tz = state.store.settings().await?.time_zone;
    let rows = match own_code(&signed_in.user) {
        Ok(code) => state.store.opportunities(code.as_deref(), 200).await?,
        Err(()) => Vec::new(),
    };
    Ok(Html(
        ListPage {
            user_name: signed_in.user.name.clone(),
            role: signed_in.user.role.to_string(),
            csrf: signed_in.csrf.clone(),
            restricted: signed_in.user.restricted_to().is_some(),
            rows: rows.into_iter().map(|o| view(o, tz)).collect(),
        }
        .render()?,
    ))
}

#[derive(Deserialize)]
pub(crate) struct NewForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    contact: String,
    #[serde(default)]
    company: String,
    #[serde(default)]
    salesperson: String,
    #[serde(default)]
    value: String,
}

fn optional(text: &str) -> Option<String> {
    let trimmed = text.trim();
    (!trimmed.is_empty()).then(|| trimmed.to_owned())
}

fn amount(text: &str) -> Result<Option<Amount>, PageError> {
    optional(text)
        .map(|v| v.parse::<Amount>())
        .transpose()
        .map_err(|err| PageError(ErrorKind::BadRequest(err.to_string())))
}

pub(crate) async fn create(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Form(form): Form<NewForm>,
) -> Result<Redirect, PageError> {
    signed_in.check_csrf(&form.csrf)?;
    let description = form.description.trim();
    if description.is_empty() {
        return Err(PageError(ErrorKind::BadRequest(
            "an opportunity needs a description".into(),
        )));
    }
    // A salesperson's opportunities are their own.
    let salesperson = match own_code(&signed_in.user) {
        Ok(Some(code)) => Some(code),
        Ok(None) => optional(&form.salesperson),
        Err(()) => {
            return Err(PageError(ErrorKind::Forbidden(
                "this account is not linked to a salesperson",
            )));
        }
    };
    let new = NewOpportunity {
        description: description.to_owned(),
        contact_no: optional(&form.contact),
        contact_company_no: optional(&form.company),
        salesperson_code: salesperson,
        estimated_value: amount(&form.value)?,
    };
    let no = state.store.create_opportunity(&new, Utc::now()).await?;
    Ok(Redirect::to(&format!("/opportunities/{no}")))
}

#[derive(Template)]
#[template(path = "opportunity.html")]
struct CardPage {
    user_name: String,
    role: String,
    csrf: String,
    o: OpportunityView,
    entries: Vec<i64>,
    comments: Vec<String>,
    statuses: Vec<String>,
}

pub(crate) async fn card(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(no): Path<String>,
) -> Result<Html<String>, PageError> {
    let opportunity = visible_opportunity(&state, &signed_in.user, &no).await?;
    let tz = state.store.settings().await?.time_zone;
    Ok(Html(
        CardPage {
            user_name: signed_in.user.name.clone(),
            role: signed_in.user.role.to_string(),
            csrf: signed_in.csrf.clone(),
            entries: state.store.opportunity_entries(&no).await?,
            comments: state.store.opportunity_comments(&no).await?,
            statuses: OPPORTUNITY_STATUSES
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            o: view(opportunity, tz),
        }
        .render()?,
    ))
}

#[derive(Deserialize)]
pub(crate) struct UpdateForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    value: String,
}

pub(crate) async fn update(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(no): Path<String>,
    Form(form): Form<UpdateForm>,
) -> Result<Redirect, PageError> {
    signed_in.check_csrf(&form.csrf)?;
    visible_opportunity(&state, &signed_in.user, &no).await?;
    match state
        .store
        .update_opportunity(&no, &form.status, amount(&form.value)?)
        .await
    {
        Ok(()) => Ok(Redirect::to(&format!("/opportunities/{no}"))),
        Err(StoreError::Conflict(why)) => Err(PageError(ErrorKind::BadRequest(why))),
        Err(err) => Err(err.into()),
    }
}

struct RunView {
    id: i64,
    mailbox: String,
    started: String,
    took: String,
    status: String,
    seen: u64,
    logged: u64,
    entries: u64,
    duplicate: u64,
    not_logged: u64,
    failed: u64,
    reasons: String,
    error: String,
}

#[derive(Template)]
#[template(path = "runs.html")]
struct RunsPage {
    user_name: String,
    role: String,
    csrf: String,
    rows: Vec<RunView>,
}

fn ledger_reader(user: &User) -> Result<(), PageError> {
    if user.may_see_ledger() {
        Ok(())
    } else {
        Err(PageError(ErrorKind::NotFound))
    }
}

pub(crate) async fn runs(
    State(state): State<AppState>,
    signed_in: SignedIn,
) -> Result<Html<String>, PageError> {
    ledger_reader(&signed_in.user)?;
    let tz = state.store.settings().await?.time_zone;
    let rows = state
        .store
        .recent_runs(100)
        .await?
        .into_iter()
        .map(|r| RunView {
            id: r.id,
            mailbox: r.mailbox_name,
            started: r
                .started_at
                .with_timezone(&tz)
                .format("%Y-%m-%d %H:%M:%S")
                .to_string(),
            took: r
                .finished_at
                .map(|f| {
                    format!(
                        "{:.1} s",
                        (f - r.started_at).num_milliseconds() as f64 / 1000.0
                    )
                })
                .unwrap_or_else(|| "running".into()),
            status: r.status,
            seen: r.counts.seen,
            logged: r.counts.logged,
            entries: r.counts.entries,
            duplicate: r.counts.duplicate,
            not_logged: r.counts.not_logged,
            failed: r.counts.failed,
            reasons: r
                .counts
                .by_reason
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", "),
            error: r.error.unwrap_or_default(),
        })
        .collect();
    Ok(Html(
        RunsPage {
            user_name: signed_in.user.name.clone(),
            role: signed_in.user.role.to_string(),
            csrf: signed_in.csrf.clone(),
            rows,
        }
        .render()?,
    ))
}

struct DecisionView {
    when: String,
    sender: String,
    message_id: String,
    outcome: String,
    reason: String,
    ambiguous: bool,
    entries: i64,
    attempts: i64,
    disposition: String,
    subject: String,
    error: String,
}

#[derive(Template)]
#[template(path = "decisions.html")]
struct DecisionsPage {
    user_name: String,
    role: String,
    csrf: String,
    reasons: Vec<String>,
    reason: String,
    q: String,
    rows: Vec<DecisionView>,
    next: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct DecisionQuery {
    #[serde(default)]
    reason: String,
    #[serde(default)]
    q: String,
    #[serde(default)]
    before: Option<i64>,
}

pub(crate) async fn decisions(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Query(query): Query<DecisionQuery>,
) -> Result<Html<String>, PageError> {
    ledger_reader(&signed_in.user)?;
    let reason = optional(&query.reason);
    if let Some(reason) = &reason {
        reason
            .parse::<Reason>()
            .map_err(|err| PageError(ErrorKind::BadRequest(err.to_string())))?;
    }
    let tz = state.store.settings().await?.time_zone;
    const PAGE: i64 = 100;
    let rows = state
        .store
        .decisions_page(
            reason.as_deref(),
            optional(&query.q).as_deref(),
            query.before,
            PAGE,
        )
        .await?;
    let next = (rows.len() as i64 == PAGE)
        .then(|| {
            rows.last().map(|last| {
                format!(
                    "/decisions?reason={}&q={}&before={}",
                    percent_encode(&query.reason),
                    percent_encode(&query.q),
                    last.id
                )
            })
        })
        .flatten();
    let rows = rows
        .into_iter()
        .map(|d| DecisionView {
            when: d
                .decided_at
                .with_timezone(&tz)
                .format("%Y-%m-%d %H:%M:%S")
                .to_string(),
            sender: d.sender.unwrap_or_default(),
            message_id: d.message_id.unwrap_or_default(),
            outcome: d.outcome,
            reason: d.reason,
            ambiguous: d.ambiguous,
            entries: d.entries,
            attempts: d.attempts,
            disposition: d.disposition.unwrap_or_default(),
            subject: d.subject.unwrap_or_default(),
            error: d.error.unwrap_or_default(),
        })
        .collect();
    Ok(Html(
        DecisionsPage {
            user_name: signed_in.user.name.clone(),
            role: signed_in.user.role.to_string(),
            csrf: signed_in.csrf.clone(),
            reasons: Reason::ALL.iter().map(|r| r.as_str().to_owned()).collect(),
            reason: query.reason.clone(),
            q: query.q.clone(),
            rows,
            next,
        }
        .render()?,
    ))
}
