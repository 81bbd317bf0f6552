//! HTML pages: sign-in, the first-admin setup, the interaction log and an
//! entry with its actions.

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::header::SET_COOKIE;
use axum::response::{Html, IntoResponse, Redirect, Response};
use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use mailscribe_core::signin_throttle::{MAX_NAME_BYTES, Refusal};
use mailscribe_core::{Restriction, User};
use mailscribe_store::{EntryCursor, EntryFilter, EntryRow};
use serde::Deserialize;

use crate::AppState;
use crate::auth::{
    LOGIN_CSRF_COOKIE, SESSION_COOKIE, SESSION_HOURS, SignedIn, cookie, generate_token,
    hash_password, hash_token, set_cookie, verify_password,
};
use crate::error::{ErrorKind, PageError};

/// The page size of the log.
pub(crate) const PAGE_SIZE: i64 = 50;

/// One entry as shown: date and time in the configured zone.
pub(crate) struct EntryView {
    pub(crate) entry_no: i64,
    pub(crate) date: String,
    pub(crate) time: String,
    pub(crate) direction: String,
    pub(crate) initiated_by: String,
    pub(crate) salesperson: String,
    pub(crate) contact: String,
    pub(crate) company: String,
    pub(crate) subject: String,
    pub(crate) template: String,
    pub(crate) cost: String,
    pub(crate) duration: i64,
    pub(crate) opportunity: String,
    pub(crate) canceled: bool,
    pub(crate) message_id: String,
    /// The run that wrote the entry, when known.
    pub(crate) run: String,
    pub(crate) mailbox: String,
    /// Business Central's entry number, for an imported entry (which has
    /// no message to show).
    pub(crate) bc_entry_no: String,
    pub(crate) has_message: bool,
}

pub(crate) fn view(row: &EntryRow, tz: Tz) -> EntryView {
    let local = row.occurred_at.with_timezone(&tz);
    EntryView {
        entry_no: row.entry_no,
        date: local.format("%Y-%m-%d").to_string(),
        time: local.format("%H:%M:%S").to_string(),
        direction: row.direction.clone(),
        initiated_by: row.initiated_by.clone(),
        salesperson: row.salesperson_code.clone(),
        contact: row.contact_no.clone(),
        company: row.contact_company_no.clone().unwrap_or_default(),
        subject: row.subject.clone(),
        template: row.template_code.clone(),
        cost: row.cost.to_string(),
        duration: row.duration_minutes,
        opportunity: row.opportunity_no.clone().unwrap_or_default(),
        canceled: row.canceled,
        message_id: row.message_id.clone().unwrap_or_default(),
        run: row.run_id.map(|id| id.to_string()).unwrap_or_default(),
        mailbox: row.mailbox_name.clone(),
        bc_entry_no: row.bc_entry_no.map(|no| no.to_string()).unwrap_or_default(),
        has_message: row.message_record_id.is_some(),
    }
}

/// The filters of the log, as the page's form and the API send them.
/// Empty fields mean "any".
#[derive(Debug, Default, Clone, Deserialize)]
pub(crate) struct LogQuery {
    #[serde(default)]
    pub(crate) contact: String,
    #[serde(default)]
    pub(crate) company: String,
    #[serde(default)]
    pub(crate) salesperson: String,
    /// YYYY-MM-DD in the configured time zone, inclusive.
    #[serde(default)]
    pub(crate) from: String,
    /// YYYY-MM-DD in the configured time zone, inclusive.
    #[serde(default)]
    pub(crate) to: String,
    #[serde(default)]
    pub(crate) direction: String,
    #[serde(default)]
    pub(crate) q: String,
    /// The name of the mailbox the mail was logged through.
    #[serde(default)]
    pub(crate) mailbox: String,
    /// The campaign the entries count toward.
    #[serde(default)]
    pub(crate) campaign: String,
    /// The keyset cursor: the last row of the previous page.
    #[serde(default)]
    pub(crate) before_at: String,
    #[serde(default)]
    pub(crate) before_no: Option<i64>,
}

fn non_empty(text: &str) -> Option<String> {
    let trimmed = text.trim();
    (!trimmed.is_empty()).then(|| trimmed.to_owned())
}

fn local_midnight(date: &str, tz: Tz, field: &str) -> Result<DateTime<Utc>, ErrorKind> {
    let day = NaiveDate::parse_from_str(date.trim(), "%Y-%m-%d")
        .ok()
        .filter(|d| (1..=9999).contains(&chrono::Datelike::year(d)))
        .ok_or_else(|| ErrorKind::BadRequest(format!("{field} must be a date like 2026-03-31")))?;
    let midnight = day.and_hms_opt(0, 0, 0).expect("midnight exists");
    tz.from_local_datetime(&midnight)
        .earliest()
        .map(|d| d.with_timezone(&Utc))
        .ok_or_else(|| ErrorKind::BadRequest(format!("{field}: no such time in {tz}")))
}

impl LogQuery {
    /// The store filter, with the caller's restriction applied: a
    /// salesperson's filter is always their own code, whatever was asked.
    /// `None` when the caller may see nothing at all.
    pub(crate) fn to_filter(
        &self,
        user: &User,
        tz: Tz,
    ) -> Result<Option<(EntryFilter, Option<EntryCursor>)>, ErrorKind> {
        let direction = non_empty(&self.direction);
        if let Some(direction) = &direction
            && direction != "inbound"
            && direction != "outbound"
        {
            return Err(ErrorKind::BadRequest(
                "direction is inbound or outbound".into(),
            ));
        }
        let mut filter = EntryFilter {
            contact_no: non_empty(&self.contact),
            company_no: non_empty(&self.company),
            salesperson_code: non_empty(&self.salesperson),
            from: non_empty(&self.from)
                .map(|d| local_midnight(&d, tz, "from"))
                .transpose()?,
            to: non_empty(&self.to)
                .map(|d| {
                    local_midnight(&d, tz, "to")?
                        .checked_add_signed(Duration::days(1))
                        .ok_or_else(|| ErrorKind::BadRequest("to is too far in the future".into()))
                })
                .transpose()?,
            direction,
            text: non_empty(&self.q),
            mailbox_name: non_empty(&self.mailbox)
                .map(|name| {
                    mailscribe_core::MailboxName::parse(&name)
                        .map(|n| n.as_str().to_owned())
                        .map_err(|err| ErrorKind::BadRequest(format!("mailbox: {err}")))
                })
                .transpose()?,
            campaign_no: non_empty(&self.campaign).map(|c| c.to_uppercase()),
        };
        match user.restricted_to() {
            None => {}
            Some(Restriction::Salesperson(code)) => {
                filter.salesperson_code = Some(code.to_string())
            }
            Some(Restriction::Nothing) => return Ok(None),
        }
        let cursor = match (non_empty(&self.before_at), self.before_no) {
            (Some(at), Some(entry_no)) => Some(EntryCursor {
                occurred_at: DateTime::parse_from_rfc3339(&at)
                    .map_err(|_| {
                        ErrorKind::BadRequest("before_at must be an RFC 3339 time".into())
                    })?
                    .with_timezone(&Utc),
                entry_no,
            }),
            _ => None,
        };
        Ok(Some((filter, cursor)))
    }

    /// The same filters with the cursor moved to after `last`.
    fn next_page(&self, last: &EntryRow) -> String {
        let pairs = [
            ("contact", self.contact.as_str()),
            ("company", self.company.as_str()),
            ("salesperson", self.salesperson.as_str()),
            ("from", self.from.as_str()),
            ("to", self.to.as_str()),
            ("direction", self.direction.as_str()),
            ("q", self.q.as_str()),
            ("mailbox", self.mailbox.as_str()),
            ("campaign", self.campaign.as_str()),
        ];
        let mut url = String::from("/interactions?");
        for (key, value) in pairs {
            url.push_str(&format!("{key}={}&", percent_encode(value)));
        }
        url.push_str(&format!(
            "before_at={}&before_no={}",
            percent_encode(&last.occurred_at.to_rfc3339()),
            last.entry_no
        ));
        url
    }
}

pub(crate) fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// A page of the log for `user`, newest first.
pub(crate) async fn log_page(
    state: &AppState,
    user: &User,
    query: &LogQuery,
    limit: i64,
) -> Result<(Vec<EntryRow>, Tz), ErrorKind> {
    let tz = state.store.settings().await?.time_zone;
    let Some((filter, cursor)) = query.to_filter(user, tz)? else {
        return Ok((Vec::new(), tz));
    };
    Ok((state.store.entries_page(&filter, cursor, limit).await?, tz))
}

fn render(template: impl Template) -> Result<Html<String>, PageError> {
    Ok(Html(template.render()?))
}

pub(crate) async fn home() -> Redirect {
    Redirect::to("/interactions")
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    csrf: String,
    problem: Option<String>,
    no_users: bool,
    /// "Sign in with <provider>", when single sign-on is configured.
    sso: Option<String>,
    local_passwords: bool,
}

pub(crate) async fn login_page(
    state: &AppState,
    status: axum::http::StatusCode,
    problem: Option<String>,
) -> Result<Response, PageError> {
    let csrf = generate_token();
    let page = LoginPage {
        csrf: csrf.clone(),
        problem,
        no_users: state.store.count_users().await? == 0,
        sso: crate::sso::provider_label(state).await?,
        local_passwords: state.store.settings().await?.local_passwords,
    };
    Ok((
        status,
        [(
            SET_COOKIE,
            set_cookie(state, LOGIN_CSRF_COOKIE, &csrf, 3600),
        )],
        render(page)?,
    )
        .into_response())
}

pub(crate) async fn login_form(State(state): State<AppState>) -> Result<Response, PageError> {
    login_page(&state, axum::http::StatusCode::OK, None).await
}

#[derive(Deserialize)]
pub(crate) struct LoginForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: String,
}

/// A lower-case error message as a sentence for a page.
pub(crate) fn sentence(message: &str) -> String {
    let mut chars = message.chars();
    match chars.next() {
        Some(first) => format!("{}{}.", first.to_uppercase(), chars.as_str()),
        None => String::new(),
    }
}

/// An Argon2 hash of a random password, so that an unknown user name costs
/// as much time as a wrong password.
async fn dummy_hash() -> String {
    static DUMMY: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
    DUMMY
        .get_or_init(|| async { hash_password(generate_token()).await.unwrap_or_default() })
        .await
        .clone()
}

pub(crate) async fn start_session(state: &AppState, user_id: i64) -> Result<Response, PageError> {
    let token = generate_token();
    let now = Utc::now();
    state
        .store
        .create_session(
            &hash_token(&token),
            user_id,
            &generate_token(),
            now,
            now + Duration::hours(SESSION_HOURS),
        )
        .await?;
    let cookie = set_cookie(state, SESSION_COOKIE, &token, SESSION_HOURS * 3600);
    let mut response = ([(SET_COOKIE, cookie)], Redirect::to("/interactions")).into_response();
    if state.secure_cookies
        && let Ok(value) =
            axum::http::HeaderValue::from_str(&crate::auth::delete_plain_cookie(SESSION_COOKIE))
    {
        response.headers_mut().append(SET_COOKIE, value);
    }
    Ok(response)
}

pub(crate) async fn login(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    extensions: axum::http::Extensions,
    Form(form): Form<LoginForm>,
) -> Result<Response, PageError> {
    let client = crate::auth::client_address(&extensions);
    let expected = cookie(&state, &headers, LOGIN_CSRF_COOKIE).unwrap_or_default();
    if expected.is_empty() || form.csrf != expected {
        return Err(PageError(ErrorKind::Forbidden(
            "the sign-in form has expired; reload the page and try again",
        )));
    }
    if !state.store.settings().await?.local_passwords {
        return Err(PageError(ErrorKind::Forbidden(
            "sign-in with a password is turned off: use single sign-on",
        )));
    }
    let name = form.name.trim();
    // The throttle decides before any password is hashed; the attempt
    // counts as a failure from here, so that a burst of parallel guesses is
    // throttled too.
    let attempt = match state
        .throttle
        .begin(crate::auth::client_ip(&extensions), name)
    {
        Ok(attempt) => attempt,
        Err(Refusal::NameTooLong) => {
            return Err(PageError(ErrorKind::BadRequest(format!(
                "a user name has at most {MAX_NAME_BYTES} bytes"
            ))));
        }
        Err(refusal) => return Ok(too_many_attempts(refusal.retry_after_seconds())),
    };
    let found = state.store.user_by_name(name).await?;
    let hash = match &found {
        Some((_, hash)) => hash.clone(),
        None => dummy_hash().await,
    };
    let verified = {
        // Each check takes ~19 MiB for a moment: a few at a time.
        let _permit = state
            .password_checks
            .acquire()
            .await
            .map_err(|e| ErrorKind::Internal(e.to_string()))?;
        verify_password(form.password, hash).await
    };
    match found {
        Some((user, _)) if verified => {
            state.throttle.succeeded(attempt);
            crate::audit::record_as(&state, name, client, "sign_in", Some(name), None).await?;
            let now = Utc::now();
            state.store.record_sign_in(user.id, now).await?;
            // Sessions that ended meanwhile (expired or idle) go now.
            let idle = Duration::minutes(i64::from(
                state.store.settings().await?.session_idle_minutes,
            ));
            state.store.purge_sessions(now, now - idle).await?;
            start_session(&state, user.id).await
        }
        _ => {
            // The name tried, cut short: a failed sign-in may carry anything.
            let tried: String = name.chars().take(64).collect();
            crate::audit::record_as(&state, &tried, client, "sign_in_failed", Some(&tried), None)
                .await?;
            login_page(
                &state,
                axum::http::StatusCode::UNAUTHORIZED,
                Some("Wrong user name or password.".into()),
            )
            .await
        }
    }
}

/// 429 at once, with when to try again: nothing waits in a queue.
fn too_many_attempts(retry_after_seconds: u64) -> Response {
    let mut response = PageError(ErrorKind::TooManyAttempts).into_response();
    response.headers_mut().insert(
        axum::http::header::RETRY_AFTER,
        axum::http::HeaderValue::from(retry_after_seconds),
    );
    response
}

#[derive(Deserialize)]
pub(crate) struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

pub(crate) async fn logout(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Form(form): Form<CsrfForm>,
) -> Result<Response, PageError> {
    signed_in.check_csrf(&form.csrf)?;
    state.store.delete_session(&signed_in.token_hash).await?;
    Ok((
        [(SET_COOKIE, set_cookie(&state, SESSION_COOKIE, "", 0))],
        Redirect::to("/login"),
    )
        .into_response())
}

#[derive(Template)]
#[template(path = "setup.html")]
struct SetupPage {
    token: String,
    problem: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct SetupQuery {
    #[serde(default)]
    token: String,
}

pub(crate) async fn first_admin_form(
    State(state): State<AppState>,
    Query(query): Query<SetupQuery>,
) -> Result<Response, PageError> {
    if query.token.is_empty()
        || !state
            .store
            .setup_token_valid(&hash_token(&query.token), Utc::now())
            .await?
    {
        return Err(PageError(ErrorKind::NotFound));
    }
    Ok(render(SetupPage {
        token: query.token,
        problem: None,
    })?
    .into_response())
}

#[derive(Deserialize)]
pub(crate) struct SetupForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    password_again: String,
}

pub(crate) async fn first_admin(
    State(state): State<AppState>,
    Form(form): Form<SetupForm>,
) -> Result<Response, PageError> {
    let token_hash = hash_token(&form.token);
    if form.token.is_empty()
        || !state
            .store
            .setup_token_valid(&token_hash, Utc::now())
            .await?
    {
        return Err(PageError(ErrorKind::NotFound));
    }
    let problem = if form.name.trim().is_empty() {
        Some("Give a user name.".to_owned())
    } else if let Err(weak) = mailscribe_core::check_new_password(&form.password, form.name.trim())
    {
        Some(sentence(&weak.to_string()))
    } else if form.password != form.password_again {
        Some("The two passwords differ.".to_owned())
    } else {
        None
    };
    if let Some(problem) = problem {
        let page = SetupPage {
            token: form.token,
            problem: Some(problem),
        };
        return Ok((axum::http::StatusCode::BAD_REQUEST, render(page)?).into_response());
    }
    let hash = hash_password(form.password)
        .await
        .map_err(ErrorKind::Internal)?;
    match state
        .store
        .create_first_admin(&token_hash, form.name.trim(), &hash, Utc::now())
        .await?
    {
        Some(id) => start_session(&state, id).await,
        None => Err(PageError(ErrorKind::NotFound)),
    }
}

#[derive(Template)]
#[template(path = "interactions.html")]
struct LogPage {
    user_name: String,
    role: String,
    csrf: String,
    restricted: bool,
    query: LogQuery,
    time_zone: String,
    rows: Vec<EntryView>,
    next: Option<String>,
    /// Until some mailbox logs: the steps that lead there.
    first_steps: Option<FirstSteps>,
    /// Any filter set: an empty page means "nothing matches".
    filtered: bool,
    notice: String,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct NoticeQuery {
    #[serde(default)]
    notice: String,
}

/// The first-run checklist, each step done or not.
struct FirstSteps {
    salespeople: bool,
    contacts: bool,
    mailbox: bool,
    enabled: bool,
}

impl LogQuery {
    fn has_filters(&self) -> bool {
        [
            &self.contact,
            &self.company,
            &self.salesperson,
            &self.from,
            &self.to,
            &self.direction,
            &self.q,
            &self.mailbox,
            &self.campaign,
        ]
        .iter()
        .any(|value| !value.trim().is_empty())
    }
}

pub(crate) async fn interactions(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Query(query): Query<LogQuery>,
    Query(notice): Query<NoticeQuery>,
) -> Result<Html<String>, PageError> {
    let (rows, tz) = log_page(&state, &signed_in.user, &query, PAGE_SIZE).await?;
    let next = (rows.len() as i64 == PAGE_SIZE)
        .then(|| rows.last().map(|last| query.next_page(last)))
        .flatten();
    let first_steps = if state.store.any_mailbox_enabled().await? {
        None
    } else {
        Some(FirstSteps {
            salespeople: state.store.count_salespeople_with_address().await? > 0,
            contacts: state.store.has_contact_addresses().await?,
            mailbox: !state.store.mailboxes().await?.is_empty(),
            enabled: false,
        })
    };
    render(LogPage {
        first_steps,
        filtered: query.has_filters(),
        notice: notice.notice,
        user_name: signed_in.user.name.clone(),
        role: signed_in.user.role.to_string(),
        csrf: signed_in.csrf.clone(),
        restricted: signed_in.user.restricted_to().is_some(),
        time_zone: tz.name().to_owned(),
        rows: rows.iter().map(|r| view(r, tz)).collect(),
        next,
        query,
    })
}

/// The entry, if this user may see it. Another salesperson's entry is
/// "not found", so that guessing numbers reveals nothing.
pub(crate) async fn visible_entry(
    state: &AppState,
    user: &User,
    entry_no: i64,
) -> Result<EntryRow, ErrorKind> {
    match state.store.entry(entry_no).await? {
        Some(row) if user.may_see_entry_of(&row.salesperson_code) => Ok(row),
        _ => Err(ErrorKind::NotFound),
    }
}

#[derive(Template)]
#[template(path = "entry.html")]
struct EntryPage {
    user_name: String,
    role: String,
    csrf: String,
    time_zone: String,
    row: EntryView,
    comments: Vec<(String, String)>,
}

pub(crate) async fn entry(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(entry_no): Path<i64>,
) -> Result<Html<String>, PageError> {
    let row = visible_entry(&state, &signed_in.user, entry_no).await?;
    let tz = state.store.settings().await?.time_zone;
    let comments = state
        .store
        .entry_comments(entry_no)
        .await?
        .into_iter()
        .map(|c| {
            (
                c.created_at
                    .with_timezone(&tz)
                    .format("%Y-%m-%d")
                    .to_string(),
                c.comment,
            )
        })
        .collect();
    render(EntryPage {
        user_name: signed_in.user.name.clone(),
        role: signed_in.user.role.to_string(),
        csrf: signed_in.csrf.clone(),
        time_zone: tz.name().to_owned(),
        row: view(&row, tz),
        comments,
    })
}

#[derive(Deserialize)]
pub(crate) struct CommentForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    comment: String,
}

pub(crate) async fn add_comment(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(entry_no): Path<i64>,
    Form(form): Form<CommentForm>,
) -> Result<Redirect, PageError> {
    signed_in.check_csrf(&form.csrf)?;
    visible_entry(&state, &signed_in.user, entry_no).await?;
    let comment = form.comment.trim();
    if comment.is_empty() || comment.chars().count() > 500 {
        return Err(PageError(ErrorKind::BadRequest(
            "a comment has 1 to 500 characters".into(),
        )));
    }
    state
        .store
        .add_entry_comment(entry_no, comment, Utc::now())
        .await?;
    Ok(Redirect::to(&format!("/interactions/{entry_no}")))
}

async fn set_canceled(
    state: AppState,
    signed_in: SignedIn,
    entry_no: i64,
    csrf: &str,
    canceled: bool,
) -> Result<Redirect, PageError> {
    signed_in.check_csrf(csrf)?;
    visible_entry(&state, &signed_in.user, entry_no).await?;
    state.store.set_entry_canceled(entry_no, canceled).await?;
    Ok(Redirect::to(&format!("/interactions/{entry_no}")))
}

pub(crate) async fn cancel(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(entry_no): Path<i64>,
    Form(form): Form<CsrfForm>,
) -> Result<Redirect, PageError> {
    set_canceled(state, signed_in, entry_no, &form.csrf, true).await
}

pub(crate) async fn restore(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(entry_no): Path<i64>,
    Form(form): Form<CsrfForm>,
) -> Result<Redirect, PageError> {
    set_canceled(state, signed_in, entry_no, &form.csrf, false).await
}
