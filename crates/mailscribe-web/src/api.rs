//! The JSON API under `/api/v1`.

use axum::Json;
use axum::extract::{Path, Query, State};
use serde::Serialize;

use crate::AppState;
use crate::auth::ApiUser;
use crate::contract;
use crate::error::{ApiError, ErrorKind};
use crate::pages::{LogQuery, log_page, visible_entry};
use crate::people::field;

/// One entry: the columns of `mailscribe interactions export`, plus ids.
#[derive(Serialize)]
pub(crate) struct InteractionDto {
    entry_no: i64,
    date: String,
    time: String,
    occurred_at: String,
    direction: String,
    initiated_by: String,
    salesperson_code: String,
    contact_no: String,
    contact_company_no: Option<String>,
    subject: String,
    message_id: Option<String>,
    template_code: String,
    cost: String,
    duration_minutes: i64,
    canceled: bool,
    opportunity_no: Option<String>,
    message_record_id: Option<i64>,
    mailbox_name: String,
    run_id: Option<i64>,
    interaction_group: Option<String>,
    campaign_no: Option<String>,
    bc_entry_no: Option<i64>,
}

fn dto(row: mailscribe_store::EntryRow, tz: chrono_tz::Tz) -> InteractionDto {
    let local = row.occurred_at.with_timezone(&tz);
    InteractionDto {
        entry_no: row.entry_no,
        date: local.format("%Y-%m-%d").to_string(),
        time: local.format("%H:%M:%S").to_string(),
        occurred_at: row.occurred_at.to_rfc3339(),
        direction: row.direction,
        initiated_by: row.initiated_by,
        salesperson_code: row.salesperson_code,
        contact_no: row.contact_no,
        contact_company_no: row.contact_company_no,
        subject: row.subject,
        message_id: row.message_id,
        template_code: row.template_code,
        cost: row.cost.to_string(),
        duration_minutes: row.duration_minutes,
        canceled: row.canceled,
        opportunity_no: row.opportunity_no,
        message_record_id: row.message_record_id,
        mailbox_name: row.mailbox_name,
        run_id: row.run_id,
        interaction_group: row.interaction_group,
        campaign_no: row.campaign_no,
        bc_entry_no: row.bc_entry_no,
    }
}

#[derive(Serialize)]
pub(crate) struct Page {
    items: Vec<InteractionDto>,
    /// Pass both back as `before_at` and `before_no` for the next page;
    /// null when this was the last.
    next_before_at: Option<String>,
    next_before_no: Option<i64>,
}

/// The log's filters as the API takes them: an absent parameter is no
/// filter; a present one must be valid (an empty `direction` or `from` is
/// refused, as the document says), unlike the page's form, which sends
/// every field and means "any" by an empty one.
#[derive(serde::Deserialize)]
pub(crate) struct InteractionsQuery {
    contact: Option<String>,
    company: Option<String>,
    salesperson: Option<String>,
    from: Option<String>,
    to: Option<String>,
    direction: Option<String>,
    q: Option<String>,
    mailbox: Option<String>,
    campaign: Option<String>,
    before_at: Option<String>,
    before_no: Option<i64>,
    limit: Option<i64>,
}

const DIRECTIONS: [&str; 2] = ["inbound", "outbound"];

impl InteractionsQuery {
    /// The page's query and the page size, or what is wrong.
    fn checked(self) -> Result<(LogQuery, i64), ErrorKind> {
        if let Some(direction) = &self.direction
            && !DIRECTIONS.contains(&direction.as_str())
        {
            return Err(ErrorKind::BadRequest(
                "direction is inbound or outbound".into(),
            ));
        }
        for (field, day) in [("from", &self.from), ("to", &self.to)] {
            if let Some(day) = day {
                contract::check_date(field, day)?;
            }
        }
        if let Some(mailbox) = &self.mailbox {
            contract::check_mailbox("mailbox", mailbox)?;
        }
        if let Some(at) = &self.before_at {
            chrono::DateTime::parse_from_rfc3339(at)
                .map_err(|_| ErrorKind::BadRequest("before_at must be an RFC 3339 time".into()))?;
        }
        let limit = self.limit.unwrap_or(50);
        if !(1..=500).contains(&limit) {
            return Err(ErrorKind::BadRequest("limit is 1 to 500".into()));
        }
        let query = LogQuery {
            contact: self.contact.unwrap_or_default(),
            company: self.company.unwrap_or_default(),
            salesperson: self.salesperson.unwrap_or_default(),
            from: self.from.unwrap_or_default(),
            to: self.to.unwrap_or_default(),
            direction: self.direction.unwrap_or_default(),
            q: self.q.unwrap_or_default(),
            mailbox: self.mailbox.unwrap_or_default(),
            campaign: self.campaign.unwrap_or_default(),
            before_at: self.before_at.unwrap_or_default(),
            before_no: self.before_no,
        };
        Ok((query, limit))
    }
}

pub(crate) async fn me(ApiUser(user): ApiUser) -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "id": user.id,
        "name": user.name,
        "role": user.role.as_str(),
        "salesperson_code": user.salesperson.as_ref().map(|c| c.to_string()),
    }))
}

pub(crate) async fn interactions(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    Query(query): Query<InteractionsQuery>,
) -> Result<Json<Page>, ApiError> {
    let (query, limit) = query.checked()?;
    let (rows, tz) = log_page(&state, &user, &query, limit).await?;
    let next = (rows.len() as i64 == limit)
        .then(|| {
            rows.last()
                .map(|r| (r.occurred_at.to_rfc3339(), r.entry_no))
        })
        .flatten();
    Ok(Json(Page {
        next_before_at: next.as_ref().map(|n| n.0.clone()),
        next_before_no: next.map(|n| n.1),
        items: rows.into_iter().map(|r| dto(r, tz)).collect(),
    }))
}

pub(crate) async fn interaction(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    Path(entry_no): Path<i64>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let row = visible_entry(&state, &user, entry_no).await?;
    let tz = state.store.settings().await?.time_zone;
    let comments: Vec<serde_json::Value> = state
        .store
        .entry_comments(entry_no)
        .await?
        .into_iter()
        .map(|c| serde_json::json!({ "line_no": c.line_no, "created_at": c.created_at.to_rfc3339(), "comment": c.comment }))
        .collect();
    let mut value = serde_json::to_value(dto(row, tz))
        .map_err(|e| ApiError(ErrorKind::Internal(e.to_string())))?;
    value["comments"] = serde_json::Value::Array(comments);
    Ok(Json(value))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewOpportunityBody {
    description: String,
    #[serde(default)]
    contact_no: Option<String>,
    #[serde(default)]
    contact_company_no: Option<String>,
    #[serde(default)]
    salesperson_code: Option<String>,
    #[serde(default)]
    estimated_value: Option<String>,
}

fn non_blank(text: Option<String>) -> Option<String> {
    text.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty())
}

fn amount(text: Option<String>) -> Result<Option<mailscribe_core::Amount>, ApiError> {
    Ok(text
        .map(|v| contract::check_amount("estimated_value", &v))
        .transpose()?)
}

/// Creates an opportunity by hand. A salesperson's are always their own.
pub(crate) async fn create_opportunity(
    State(state): State<AppState>,
    ApiWriter(user): ApiWriter,
    JsonBody(body): JsonBody<NewOpportunityBody>,
) -> Result<(axum::http::StatusCode, Json<serde_json::Value>), ApiError> {
    contract::check_non_blank("description", &body.description, None)?;
    let description = body.description.trim();
    let salesperson_code = match own_code(&user)? {
        Some(code) => Some(code),
        None => non_blank(body.salesperson_code),
    };
    let new = mailscribe_store::NewOpportunity {
        description: description.to_owned(),
        contact_no: non_blank(body.contact_no),
        contact_company_no: non_blank(body.contact_company_no),
        salesperson_code,
        estimated_value: amount(body.estimated_value)?,
    };
    let no = state
        .store
        .create_opportunity(&new, chrono::Utc::now())
        .await?;
    let created = state
        .store
        .opportunity(&no)
        .await?
        .ok_or(ApiError(ErrorKind::NotFound))?;
    Ok((
        axum::http::StatusCode::CREATED,
        Json(opportunity_json(created)),
    ))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct OpportunityChange {
    status: String,
    #[serde(default)]
    estimated_value: Option<String>,
}

/// Changes the status and estimated value of a visible opportunity.
pub(crate) async fn update_opportunity(
    State(state): State<AppState>,
    ApiWriter(user): ApiWriter,
    Path(no): Path<String>,
    JsonBody(body): JsonBody<OpportunityChange>,
) -> Result<Json<serde_json::Value>, ApiError> {
    // Not visible to the caller: "not found", as for reading it.
    let _visible = opportunity(
        State(state.clone()),
        ApiUser(user.clone()),
        Path(no.clone()),
    )
    .await?;
    if !OPPORTUNITY_STATUSES.contains(&body.status.as_str()) {
        return Err(ApiError(ErrorKind::BadRequest(format!(
            "status is one of {}",
            OPPORTUNITY_STATUSES.join(", ")
        ))));
    }
    match state
        .store
        .update_opportunity(&no, &body.status, amount(body.estimated_value)?)
        .await
    {
        Ok(()) => {}
        Err(mailscribe_store::StoreError::Conflict(why)) => {
            return Err(ApiError(ErrorKind::Conflict(why)));
        }
        Err(err) => return Err(err.into()),
    }
    opportunity(State(state), ApiUser(user), Path(no)).await
}

const OPPORTUNITY_STATUSES: [&str; 4] = ["not_started", "in_progress", "won", "lost"];

/// A JSON body, or a JSON error that says what is wrong with it.
pub(crate) struct JsonBody<T>(pub(crate) T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> axum::extract::FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(
        request: axum::extract::Request,
        state: &S,
    ) -> Result<JsonBody<T>, ApiError> {
        match Json::<T>::from_request(request, state).await {
            Ok(Json(value)) => Ok(JsonBody(value)),
            Err(rejection) => Err(ApiError(ErrorKind::BadRequest(rejection.body_text()))),
        }
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewComment {
    comment: String,
}

/// Adds a comment to an entry; answers with the entry and its comments.
pub(crate) async fn add_comment(
    State(state): State<AppState>,
    ApiWriter(user): ApiWriter,
    Path(entry_no): Path<i64>,
    JsonBody(body): JsonBody<NewComment>,
) -> Result<(axum::http::StatusCode, Json<serde_json::Value>), ApiError> {
    visible_entry(&state, &user, entry_no).await?;
    contract::check_non_blank("comment", &body.comment, Some(MAX_COMMENT_CHARS))?;
    let comment = body.comment.trim();
    state
        .store
        .add_entry_comment(entry_no, comment, chrono::Utc::now())
        .await?;
    let Json(entry) = interaction(State(state), ApiUser(user), Path(entry_no)).await?;
    Ok((axum::http::StatusCode::CREATED, Json(entry)))
}

const MAX_COMMENT_CHARS: usize = 500;

async fn set_canceled(
    state: AppState,
    user: mailscribe_core::User,
    entry_no: i64,
    canceled: bool,
) -> Result<Json<serde_json::Value>, ApiError> {
    visible_entry(&state, &user, entry_no).await?;
    state.store.set_entry_canceled(entry_no, canceled).await?;
    interaction(State(state), ApiUser(user), Path(entry_no)).await
}

pub(crate) async fn cancel(
    State(state): State<AppState>,
    ApiWriter(user): ApiWriter,
    Path(entry_no): Path<i64>,
) -> Result<Json<serde_json::Value>, ApiError> {
    set_canceled(state, user, entry_no, true).await
}

pub(crate) async fn restore(
    State(state): State<AppState>,
    ApiWriter(user): ApiWriter,
    Path(entry_no): Path<i64>,
) -> Result<Json<serde_json::Value>, ApiError> {
    set_canceled(state, user, entry_no, false).await
}

fn directory_admin(user: &mailscribe_core::User) -> Result<(), ApiError> {
    if !user.is_admin() {
        return Err(ApiError(ErrorKind::Forbidden(
            "only an admin can change the directory",
        )));
    }
    Ok(())
}

fn import_refused(errors: Vec<mailscribe_core::import::RowError>) -> ApiError {
    let listed: Vec<String> = errors.iter().map(ToString::to_string).collect();
    ApiError(ErrorKind::BadRequest(listed.join("; ")))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ContactBody {
    name: String,
    #[serde(default)]
    kind: Option<String>,
    /// The company's name, for a person.
    #[serde(default)]
    company: Option<String>,
    #[serde(default)]
    addresses: Vec<String>,
    /// Never log this contact's mail; absent leaves the flag as it is.
    #[serde(default)]
    privacy_blocked: Option<bool>,
}

/// Adds or changes one contact, by the rules of `mailscribe contacts import`.
pub(crate) async fn put_contact(
    State(state): State<AppState>,
    ApiWriter(user): ApiWriter,
    Path(no): Path<String>,
    JsonBody(body): JsonBody<ContactBody>,
) -> Result<Json<serde_json::Value>, ApiError> {
    directory_admin(&user)?;
    contract::check_code("no", &no)?;
    contract::check_non_blank("name", &body.name, None)?;
    for address in &body.addresses {
        contract::check_address(address)?;
    }
    let kind = body.kind.as_deref().unwrap_or("person");
    if kind != "person" && kind != "company" {
        return Err(ApiError(ErrorKind::BadRequest(
            "kind is person or company".into(),
        )));
    }
    let company = if kind == "company" {
        String::new()
    } else {
        body.company.unwrap_or_default()
    };
    let blocked = body
        .privacy_blocked
        .map(|b| b.to_string())
        .unwrap_or_default();
    let csv = format!(
        "no,name,email,company,type,privacy_blocked\n{},{},{},{},{kind},{blocked}\n",
        field(&no),
        field(&body.name),
        field(&body.addresses.join(";")),
        field(&company)
    );
    let rows = mailscribe_core::import::read_contacts(csv.as_bytes()).map_err(import_refused)?;
    let contacts: Vec<_> = rows.into_iter().map(|(_, c)| c).collect();
    match state.store.import_contacts(&contacts).await {
        Ok(_) => {}
        Err(mailscribe_store::StoreError::Conflict(message)) => {
            return Err(ApiError(ErrorKind::Conflict(message)));
        }
        Err(err) => return Err(err.into()),
    }
    let saved = state
        .store
        .contact(no.trim())
        .await?
        .ok_or(ApiError(ErrorKind::NotFound))?;
    Ok(Json(contact_json(saved)))
}

pub(crate) async fn delete_contact(
    State(state): State<AppState>,
    ApiWriter(user): ApiWriter,
    Path(no): Path<String>,
) -> Result<axum::http::StatusCode, ApiError> {
    directory_admin(&user)?;
    contract::check_code("no", &no)?;
    match state.store.delete_contact(&no).await {
        Ok(true) => Ok(axum::http::StatusCode::NO_CONTENT),
        Ok(false) => Err(ApiError(ErrorKind::NotFound)),
        Err(mailscribe_store::StoreError::Conflict(message)) => {
            Err(ApiError(ErrorKind::Conflict(message)))
        }
        Err(err) => Err(err.into()),
    }
}

fn summary_json(summary: mailscribe_store::ImportSummary) -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "created": summary.created,
        "updated": summary.updated,
        "companies_created": summary.companies_created,
    }))
}

/// Imports a contacts CSV (the body), all or nothing, by the rules and
/// with the line-numbered errors of `mailscribe contacts import`.
pub(crate) async fn import_contacts(
    State(state): State<AppState>,
    ApiWriter(user): ApiWriter,
    csv: axum::body::Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    directory_admin(&user)?;
    let rows = mailscribe_core::import::read_contacts(&csv[..]).map_err(import_refused)?;
    let contacts: Vec<_> = rows.into_iter().map(|(_, c)| c).collect();
    match state.store.import_contacts(&contacts).await {
        Ok(summary) => {
            let detail = format!(
                "{} contacts ({} new, {} updated), through the API",
                contacts.len(),
                summary.created,
                summary.updated
            );
            crate::audit::record_as(
                &state,
                &user.name,
                None,
                "contacts_imported",
                None,
                Some(detail),
            )
            .await?;
            Ok(summary_json(summary))
        }
        Err(mailscribe_store::StoreError::Conflict(message)) => {
            Err(ApiError(ErrorKind::Conflict(message)))
        }
        Err(err) => Err(err.into()),
    }
}

/// Imports a salespeople CSV (the body), all or nothing.
pub(crate) async fn import_salespeople(
    State(state): State<AppState>,
    ApiWriter(user): ApiWriter,
    csv: axum::body::Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    directory_admin(&user)?;
    let rows = mailscribe_core::import::read_salespeople(&csv[..]).map_err(import_refused)?;
    let people: Vec<_> = rows.into_iter().map(|(_, p)| p).collect();
    match state.store.import_salespeople(&people).await {
        Ok(summary) => {
            let detail = format!(
                "{} salespeople ({} new, {} updated), through the API",
                people.len(),
                summary.created,
                summary.updated
            );
            crate::audit::record_as(
                &state,
                &user.name,
                None,
                "salespeople_imported",
                None,
                Some(detail),
            )
            .await?;
            Ok(summary_json(summary))
        }
        Err(mailscribe_store::StoreError::Conflict(message)) => {
            Err(ApiError(ErrorKind::Conflict(message)))
        }
        Err(err) => Err(err.into()),
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SalespersonBody {
    name: String,
    #[serde(default)]
    addresses: Vec<String>,
}

/// Adds or changes one salesperson, by the rules of `mailscribe salespeople import`.
pub(crate) async fn put_salesperson(
    State(state): State<AppState>,
    ApiWriter(user): ApiWriter,
    Path(code): Path<String>,
    JsonBody(body): JsonBody<SalespersonBody>,
) -> Result<Json<serde_json::Value>, ApiError> {
    directory_admin(&user)?;
    contract::check_code("code", &code)?;
    contract::check_non_blank("name", &body.name, None)?;
    for address in &body.addresses {
        contract::check_address(address)?;
    }
    let csv = format!(
        "code,name,email\n{},{},{}\n",
        field(&code),
        field(&body.name),
        field(&body.addresses.join(";"))
    );
    let rows = mailscribe_core::import::read_salespeople(csv.as_bytes()).map_err(import_refused)?;
    let people: Vec<_> = rows.into_iter().map(|(_, p)| p).collect();
    match state.store.import_salespeople(&people).await {
        Ok(_) => {}
        Err(mailscribe_store::StoreError::Conflict(message)) => {
            return Err(ApiError(ErrorKind::Conflict(message)));
        }
        Err(err) => return Err(err.into()),
    }
    let code = people
        .first()
        .map(|p| p.code.to_string())
        .unwrap_or_default();
    let Json(list) = salespeople(State(state), ApiUser(user)).await?;
    list["items"]
        .as_array()
        .and_then(|items| items.iter().find(|p| p["code"] == code.as_str()).cloned())
        .map(Json)
        .ok_or(ApiError(ErrorKind::NotFound))
}

pub(crate) async fn delete_salesperson(
    State(state): State<AppState>,
    ApiWriter(user): ApiWriter,
    Path(code): Path<String>,
) -> Result<axum::http::StatusCode, ApiError> {
    directory_admin(&user)?;
    contract::check_code("code", &code)?;
    match state.store.delete_salesperson(&code).await? {
        true => Ok(axum::http::StatusCode::NO_CONTENT),
        false => Err(ApiError(ErrorKind::NotFound)),
    }
}

/// The OpenAPI 3 description of this API. The tests check it against the
/// router and against real answers.
pub(crate) async fn openapi() -> Json<serde_json::Value> {
    Json(openapi_document())
}

pub(crate) fn openapi_document() -> serde_json::Value {
    let string = serde_json::json!({ "type": "string" });
    let nullable_string = serde_json::json!({ "type": "string", "nullable": true });
    let integer = serde_json::json!({ "type": "integer", "format": "int64" });
    let boolean = serde_json::json!({ "type": "boolean" });
    let message_record_id = serde_json::json!({ "type": "integer", "format": "int64", "nullable": true,
        "description": "The logged message; null for an entry imported from Business Central" });
    let bc_entry_no = serde_json::json!({ "type": "integer", "format": "int64", "nullable": true,
        "description": "Business Central's entry number, for an entry imported with `interactions import-bc`" });
    let error = serde_json::json!({ "$ref": "#/components/responses/Error" });
    let unauthenticated = serde_json::json!({ "$ref": "#/components/responses/Unauthenticated" });
    // Every status an operation can answer besides its successes, each
    // with the JSON error shape (issue 10, item 10).
    let errors = |statuses: &[u16]| -> serde_json::Map<String, serde_json::Value> {
        statuses
            .iter()
            .map(|status| {
                (
                    status.to_string(),
                    if *status == 401 {
                        unauthenticated.clone()
                    } else {
                        error.clone()
                    },
                )
            })
            .collect()
    };
    let responses = |successes: serde_json::Value, statuses: &[u16]| {
        let mut all = successes.as_object().cloned().unwrap_or_default();
        all.extend(errors(statuses));
        serde_json::Value::Object(all)
    };
    let json_of = |description: &str, schema: serde_json::Value| serde_json::json!({ "description": description, "content": { "application/json": { "schema": schema } } });
    let schema = |name: &str| serde_json::json!({ "$ref": format!("#/components/schemas/{name}") });
    let list = |name: &str| serde_json::json!({ "type": "object", "required": ["items"], "properties": { "items": { "type": "array", "items": { "$ref": format!("#/components/schemas/{name}") } } } });
    let filter = |name: &str, description: &str| serde_json::json!({ "name": name, "in": "query", "required": false, "schema": { "type": "string" }, "description": description });
    let entry_no = serde_json::json!({ "name": "entry_no", "in": "path", "required": true, "schema": integer });
    let path_code = |name: &str| serde_json::json!({ "name": name, "in": "path", "required": true, "schema": contract::code_schema() });
    let opportunity_no =
        serde_json::json!({ "name": "no", "in": "path", "required": true, "schema": string });
    let json_body = |schema: serde_json::Value| serde_json::json!({ "required": true, "content": { "application/json": { "schema": schema } } });
    let csv_body = |header: &str| {
        serde_json::json!({ "required": true, "content": { "text/csv": { "schema": {
            "type": "string", "minLength": 1, "description": format!("A CSV file with {header}; the rows are checked by the rules of the CLI's import, and a file that breaks one is refused with 400 and line numbers") } } } })
    };
    let bearer_only = serde_json::json!([{ "bearer": [] }]);
    let addresses = serde_json::json!({ "type": "array", "items": contract::address_schema() });
    let reasons: Vec<&str> = mailscribe_core::Reason::ALL
        .iter()
        .map(|r| r.as_str())
        .collect();
    serde_json::json!({
        "openapi": "3.0.3",
        "info": {
            "title": "Mailscribe API",
            "version": "1",
            "description": "The interaction log of Mailscribe. Authenticate with `Authorization: Bearer <token>` (`mailscribe token create`); reads also take the session cookie, writes only the bearer token. A salesperson sees only their own entries. Every error, including a path, query or body that cannot be read, is the JSON `Error`; a 401 carries `WWW-Authenticate: Bearer`."
        },
        "servers": [{ "url": "/" }],
        "security": [{ "bearer": [] }, { "session": [] }],
        "paths": {
            "/api/v1/me": {
                "get": {
                    "summary": "Who the caller is",
                    "responses": responses(serde_json::json!({ "200": json_of("The caller", schema("Me")) }), &[401])
                }
            },
            "/api/v1/interactions": {
                "get": {
                    "summary": "The interaction log, newest first, a page at a time",
                    "parameters": [
                        filter("contact", "Contact number"),
                        filter("company", "Company contact number"),
                        filter("salesperson", "Salesperson code (ignored for salesperson accounts, which see only their own)"),
                        { "name": "from", "in": "query", "required": false, "schema": contract::date_schema("First day, in the configured time zone") },
                        { "name": "to", "in": "query", "required": false, "schema": contract::date_schema("Last day, in the configured time zone") },
                        { "name": "direction", "in": "query", "required": false, "schema": { "type": "string", "enum": DIRECTIONS } },
                        filter("q", "Words that must each start a word of the subject"),
                        { "name": "mailbox", "in": "query", "required": false, "schema": contract::mailbox_schema(),
                          "description": "The name of the mailbox the mail was logged through (any case)" },
                        filter("campaign", "The campaign number the entries count toward"),
                        { "name": "before_at", "in": "query", "required": false, "schema": { "type": "string", "format": "date-time" },
                          "description": "Cursor: next_before_at of the previous page (used with before_no)" },
                        { "name": "before_no", "in": "query", "required": false, "schema": integer, "description": "Cursor: next_before_no of the previous page" },
                        { "name": "limit", "in": "query", "required": false, "schema": { "type": "integer", "format": "int64", "minimum": 1, "maximum": 500, "default": 50 } }
                    ],
                    "responses": responses(serde_json::json!({ "200": json_of("A page", schema("InteractionPage")) }), &[400, 401])
                }
            },
            "/api/v1/interactions/{entry_no}": {
                "get": {
                    "summary": "One entry with its comments",
                    "parameters": [entry_no],
                    "responses": responses(serde_json::json!({ "200": json_of("The entry", schema("InteractionWithComments")) }), &[400, 401, 404])
                }
            },
            "/api/v1/interactions/{entry_no}/opportunity": {
                "post": {
                    "summary": "Create an opportunity from an entry (bearer token only); 409 when the entry is canceled or has one already",
                    "parameters": [entry_no],
                    "security": bearer_only,
                    "responses": responses(serde_json::json!({ "201": json_of("Created", schema("Opportunity")) }), &[400, 401, 404, 409])
                }
            },
            "/api/v1/interactions/{entry_no}/comments": {
                "post": {
                    "summary": "Add a comment to an entry (bearer token only)",
                    "parameters": [entry_no],
                    "security": bearer_only,
                    "requestBody": json_body(serde_json::json!({
                        "type": "object", "required": ["comment"], "additionalProperties": false,
                        "properties": { "comment": contract::non_blank_schema(Some(MAX_COMMENT_CHARS)) } })),
                    "responses": responses(serde_json::json!({ "201": json_of("The entry with its comments", schema("InteractionWithComments")) }), &[400, 401, 404])
                }
            },
            "/api/v1/interactions/{entry_no}/cancel": {
                "post": {
                    "summary": "Cancel an entry (bearer token only)",
                    "parameters": [entry_no],
                    "security": bearer_only,
                    "responses": responses(serde_json::json!({ "200": json_of("The entry", schema("InteractionWithComments")) }), &[400, 401, 404])
                }
            },
            "/api/v1/interactions/{entry_no}/restore": {
                "post": {
                    "summary": "Undo the cancelation of an entry (bearer token only)",
                    "parameters": [entry_no],
                    "security": bearer_only,
                    "responses": responses(serde_json::json!({ "200": json_of("The entry", schema("InteractionWithComments")) }), &[400, 401, 404])
                }
            },
            "/api/v1/opportunities": {
                "get": { "summary": "Opportunities, newest first",
                    "responses": responses(serde_json::json!({ "200": json_of("A list", list("Opportunity")) }), &[401, 404]) },
                "post": { "summary": "Create an opportunity by hand (bearer token only; a salesperson's are their own); 409 for a privacy-blocked contact",
                    "security": bearer_only,
                    "requestBody": json_body(serde_json::json!({
                        "type": "object", "required": ["description"], "additionalProperties": false,
                        "properties": {
                            "description": contract::non_blank_schema(None),
                            "contact_no": nullable_string, "contact_company_no": nullable_string, "salesperson_code": nullable_string,
                            "estimated_value": contract::amount_schema(true) } })),
                    "responses": responses(serde_json::json!({ "201": json_of("Created", schema("Opportunity")) }), &[400, 401, 404, 409]) }
            },
            "/api/v1/opportunities/{no}": {
                "get": { "summary": "One opportunity with its entries and comments",
                    "parameters": [opportunity_no],
                    "responses": responses(serde_json::json!({ "200": json_of("The opportunity", schema("OpportunityCard")) }), &[401, 404]) },
                "patch": { "summary": "Change the status and estimated value (bearer token only; a null or absent value clears it)",
                    "parameters": [opportunity_no],
                    "security": bearer_only,
                    "requestBody": json_body(serde_json::json!({
                        "type": "object", "required": ["status"], "additionalProperties": false,
                        "properties": {
                            "status": { "type": "string", "enum": OPPORTUNITY_STATUSES },
                            "estimated_value": contract::amount_schema(true) } })),
                    "responses": responses(serde_json::json!({ "200": json_of("The opportunity", schema("OpportunityCard")) }), &[400, 401, 404, 409]) }
            },
            "/api/v1/contacts": {
                "get": { "summary": "Contacts whose number or name contains q", "parameters": [filter("q", "Part of the number or name")],
                    "responses": responses(serde_json::json!({ "200": json_of("A list", list("Contact")) }), &[400, 401]) }
            },
            "/api/v1/contacts/{no}": {
                "get": { "summary": "One contact", "parameters": [path_code("no")],
                    "responses": responses(serde_json::json!({ "200": json_of("The contact", schema("Contact")) }), &[400, 401, 404]) },
                "put": { "summary": "Add or change a contact, by the rules of the CSV import (admins, bearer token only)",
                    "parameters": [path_code("no")],
                    "security": bearer_only,
                    "requestBody": json_body(schema("ContactInput")),
                    "responses": responses(serde_json::json!({ "200": json_of("The contact", schema("Contact")) }), &[400, 401, 403, 409]) },
                "delete": { "summary": "Delete a contact (admins, bearer token only); 409 while entries name it",
                    "parameters": [path_code("no")],
                    "security": bearer_only,
                    "responses": responses(serde_json::json!({ "204": { "description": "Deleted" } }), &[400, 401, 403, 404, 409]) }
            },
            "/api/v1/contacts/import": {
                "post": { "summary": "Import a CSV file, all or nothing, by the rules of `mailscribe contacts import` (admins, bearer token only; up to 2 MB, larger files with the CLI)",
                    "security": bearer_only,
                    "requestBody": csv_body("the header `no,name,email,company` and optionally `type` and `privacy_blocked`, or a Business Central contact list export (`No.`, `Name`, `E-Mail`, optionally `Type`, `Company No.`, `Company Name`, `Privacy Blocked`, `E-Mail 2`; `,` or `;`)"),
                    "responses": responses(serde_json::json!({ "200": json_of("What was imported", schema("ImportSummary")) }), &[400, 401, 403, 409, 413]) }
            },
            "/api/v1/salespeople/import": {
                "post": { "summary": "Import a CSV file, all or nothing, by the rules of `mailscribe salespeople import` (admins, bearer token only; up to 2 MB, larger files with the CLI)",
                    "security": bearer_only,
                    "requestBody": csv_body("the header `code,name,email`, or a Business Central Salespeople/Purchasers export (`Code`, `Name`, `E-Mail`, optionally `E-Mail 2`; `,` or `;`)"),
                    "responses": responses(serde_json::json!({ "200": json_of("What was imported", schema("ImportSummary")) }), &[400, 401, 403, 409, 413]) }
            },
            "/api/v1/salespeople/{code}": {
                "put": { "summary": "Add or change a salesperson, by the rules of the CSV import (admins, bearer token only)",
                    "parameters": [path_code("code")],
                    "security": bearer_only,
                    "requestBody": json_body(serde_json::json!({
                        "type": "object", "required": ["name"], "additionalProperties": false,
                        "properties": { "name": contract::non_blank_schema(None), "addresses": addresses } })),
                    "responses": responses(serde_json::json!({ "200": json_of("The salesperson", schema("Salesperson")) }), &[400, 401, 403, 404, 409]) },
                "delete": { "summary": "Delete a salesperson (admins, bearer token only); the accounts tied to the code are disabled",
                    "parameters": [path_code("code")],
                    "security": bearer_only,
                    "responses": responses(serde_json::json!({ "204": { "description": "Deleted" } }), &[400, 401, 403, 404]) }
            },
            "/api/v1/salespeople": {
                "get": { "summary": "Salespeople (a salesperson sees only themselves)",
                    "responses": responses(serde_json::json!({ "200": json_of("A list", list("Salesperson")) }), &[401]) }
            },
            "/api/v1/runs": {
                "get": { "summary": "The latest runs (admins and users; 404 for a salesperson)",
                    "responses": responses(serde_json::json!({ "200": json_of("A list", list("Run")) }), &[401, 404]) }
            },
            "/api/v1/decisions": {
                "get": { "summary": "The decision ledger, newest first (admins and users; 404 for a salesperson)",
                    "parameters": [{ "name": "reason", "in": "query", "required": false, "schema": { "type": "string", "enum": reasons }, "description": "A reason code" },
                                   filter("q", "Part of the Message-ID or sender"),
                                   { "name": "before", "in": "query", "required": false, "schema": integer, "description": "Cursor: next_before of the previous page" }],
                    "responses": responses(serde_json::json!({ "200": json_of("A page", schema("DecisionPage")) }), &[400, 401, 404]) }
            },
            "/api/v1/mailboxes/{name}/runs": {
                "post": { "summary": "Run now: ask the instance that works the mailbox to run it (admins, bearer token); waits up to `wait` seconds. 409 while logging is disabled for the mailbox",
                    "security": bearer_only,
                    "parameters": [
                        { "name": "name", "in": "path", "required": true, "schema": contract::mailbox_schema() },
                        { "name": "wait", "in": "query", "required": false, "schema": { "type": "integer", "format": "int64", "minimum": 0, "maximum": 60, "default": 30 } }
                    ],
                    "responses": responses(serde_json::json!({
                        "200": json_of("The run is done", schema("RunRequest")),
                        "202": json_of("Asked; not done yet: ask status_url", schema("RunRequest"))
                    }), &[400, 401, 403, 404, 409]) }
            },
            "/api/v1/mailboxes/{name}/runs/{id}": {
                "get": { "summary": "Where a run-now request stands (admins)",
                    "parameters": [
                        { "name": "name", "in": "path", "required": true, "schema": contract::mailbox_schema() },
                        { "name": "id", "in": "path", "required": true, "schema": integer }
                    ],
                    "responses": responses(serde_json::json!({ "200": json_of("The request", schema("RunRequest")) }), &[400, 401, 403, 404]) }
            },
            "/api/v1/openapi.json": {
                "get": { "summary": "This document", "security": [], "responses": { "200": { "description": "OpenAPI 3" } } }
            }
        },
        "components": {
            "securitySchemes": {
                "bearer": { "type": "http", "scheme": "bearer" },
                "session": { "type": "apiKey", "in": "cookie", "name": "mailscribe_session" }
            },
            "responses": {
                "Error": {
                    "description": "An error with a stable code; a 500 carries a request id instead of details",
                    "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } }
                },
                "Unauthenticated": {
                    "description": "No credential, or one that is not (or no longer) valid",
                    "headers": { "WWW-Authenticate": { "required": true, "schema": { "type": "string", "enum": ["Bearer"] } } },
                    "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } }
                }
            },
            "schemas": {
                "RunRequest": {
                    "type": "object",
                    "required": ["id", "mailbox", "finished", "run_id", "summary", "error", "status_url"],
                    "properties": {
                        "id": integer, "mailbox": string, "finished": boolean,
                        "run_id": { "type": "integer", "format": "int64", "nullable": true },
                        "summary": { "type": "object", "nullable": true, "description": "As `mailscribe run --once --format json` prints it" },
                        "error": nullable_string, "status_url": string
                    }
                },
                "Me": {
                    "type": "object",
                    "required": ["id", "name", "role", "salesperson_code"],
                    "properties": { "id": integer, "name": string, "role": { "type": "string", "enum": ["admin", "user", "salesperson"] }, "salesperson_code": nullable_string }
                },
                "Interaction": {
                    "type": "object",
                    "required": ["entry_no", "date", "time", "occurred_at", "direction", "initiated_by", "salesperson_code", "contact_no",
                                 "contact_company_no", "subject", "message_id", "template_code", "cost", "duration_minutes", "canceled",
                                 "opportunity_no", "message_record_id", "mailbox_name", "run_id", "interaction_group", "campaign_no",
                                 "bc_entry_no"],
                    "properties": {
                        "entry_no": integer, "date": string, "time": string, "occurred_at": { "type": "string", "format": "date-time" },
                        "direction": { "type": "string", "enum": ["inbound", "outbound"] },
                        "initiated_by": { "type": "string", "enum": ["us", "them"] },
                        "salesperson_code": string, "contact_no": string, "contact_company_no": nullable_string,
                        "subject": string, "message_id": nullable_string, "template_code": string,
                        "cost": { "type": "string", "description": "Decimal with two digits" },
                        "duration_minutes": integer, "canceled": boolean, "opportunity_no": nullable_string, "message_record_id": message_record_id,
                        "mailbox_name": { "type": "string", "description": "The mailbox the message was logged through" },
                        "run_id": { "type": "integer", "format": "int64", "nullable": true, "description": "The run that wrote the entry" },
                        "interaction_group": nullable_string, "campaign_no": nullable_string,
                        "bc_entry_no": bc_entry_no
                    }
                },
                "InteractionWithComments": {
                    "allOf": [
                        { "$ref": "#/components/schemas/Interaction" },
                        { "type": "object", "required": ["comments"], "properties": { "comments": { "type": "array", "items": {
                            "type": "object", "required": ["line_no", "created_at", "comment"],
                            "properties": { "line_no": integer, "created_at": { "type": "string", "format": "date-time" }, "comment": string }
                        } } } }
                    ]
                },
                "InteractionPage": {
                    "type": "object",
                    "required": ["items", "next_before_at", "next_before_no"],
                    "properties": {
                        "items": { "type": "array", "items": { "$ref": "#/components/schemas/Interaction" } },
                        "next_before_at": nullable_string,
                        "next_before_no": { "type": "integer", "format": "int64", "nullable": true }
                    }
                },
                "Opportunity": {
                    "type": "object",
                    "required": ["no", "description", "contact_no", "contact_company_no", "salesperson_code", "status", "estimated_value", "created_at"],
                    "properties": {
                        "no": string, "description": string, "contact_no": nullable_string, "contact_company_no": nullable_string,
                        "salesperson_code": nullable_string,
                        "status": { "type": "string", "enum": ["not_started", "in_progress", "won", "lost"] },
                        "estimated_value": nullable_string, "created_at": { "type": "string", "format": "date-time" }
                    }
                },
                "OpportunityCard": {
                    "allOf": [
                        { "$ref": "#/components/schemas/Opportunity" },
                        { "type": "object", "required": ["entries", "comments"], "properties": {
                            "entries": { "type": "array", "items": integer }, "comments": { "type": "array", "items": string } } }
                    ]
                },
                "Contact": {
                    "type": "object",
                    "required": ["no", "name", "kind", "company_no", "addresses", "privacy_blocked"],
                    "properties": { "no": string, "name": string, "kind": { "type": "string", "enum": ["person", "company"] },
                                    "company_no": nullable_string, "addresses": { "type": "array", "items": string },
                                    "privacy_blocked": { "type": "boolean", "description": "Mail with this contact is never logged for it, and no opportunity is made for it" } }
                },
                "ImportSummary": {
                    "type": "object",
                    "required": ["created", "updated", "companies_created"],
                    "properties": { "created": integer, "updated": integer, "companies_created": { "type": "array", "items": string } }
                },
                "ContactInput": {
                    "type": "object",
                    "required": ["name"],
                    "additionalProperties": false,
                    "properties": { "name": contract::non_blank_schema(None),
                                    "kind": { "type": "string", "enum": ["person", "company", null], "nullable": true, "description": "Absent or null: person" },
                                    "company": { "type": "string", "nullable": true, "description": "The company's name, for a person" },
                                    "addresses": addresses,
                                    "privacy_blocked": { "type": "boolean", "nullable": true, "description": "Absent or null: leave as it is" } }
                },
                "Salesperson": {
                    "type": "object",
                    "required": ["code", "name", "addresses"],
                    "properties": { "code": string, "name": string, "addresses": { "type": "array", "items": string } }
                },
                "Run": {
                    "type": "object",
                    "required": ["id", "started_at", "finished_at", "status", "seen", "logged", "duplicate", "not_logged", "failed", "entries", "by_reason", "error"],
                    "properties": {
                        "id": integer, "started_at": string, "finished_at": nullable_string, "status": string,
                        "seen": integer, "logged": integer, "duplicate": integer, "not_logged": integer, "failed": integer, "entries": integer,
                        "by_reason": { "type": "object", "additionalProperties": integer }, "error": nullable_string
                    }
                },
                "Decision": {
                    "type": "object",
                    "required": ["id", "message_id", "sha256", "outcome", "reason", "entries", "error", "decided_at", "sender", "subject", "ambiguous", "attempts", "disposition"],
                    "properties": {
                        "id": integer, "message_id": nullable_string, "sha256": string,
                        "outcome": { "type": "string", "enum": ["logged", "duplicate", "not_logged", "failed"] },
                        "reason": string, "entries": integer, "error": nullable_string, "decided_at": string, "sender": nullable_string,
                        "subject": nullable_string, "ambiguous": boolean, "attempts": integer, "disposition": nullable_string
                    }
                },
                "DecisionPage": {
                    "type": "object",
                    "required": ["items", "next_before"],
                    "properties": { "items": { "type": "array", "items": { "$ref": "#/components/schemas/Decision" } },
                                    "next_before": { "type": "integer", "format": "int64", "nullable": true } }
                },
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": { "error": { "type": "object", "required": ["code", "message", "request_id"], "properties": {
                        "code": { "type": "string", "enum": ["unauthenticated", "forbidden", "not_found", "gone", "bad_request", "conflict", "method_not_allowed", "payload_too_large", "too_many_attempts", "internal"] },
                        "message": string, "request_id": nullable_string
                    } } }
                }
            }
        }
    })
}

/// API writes need a bearer token: a browser session must use the pages,
/// whose forms carry CSRF tokens.
pub(crate) struct ApiWriter(pub(crate) mailscribe_core::User);

impl axum::extract::FromRequestParts<AppState> for ApiWriter {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<ApiWriter, ApiError> {
        // Issue 10, item 10: a missing credential is a 401 (with
        // `WWW-Authenticate: Bearer`, added by `ApiError`), not a 403.
        if parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .is_none()
        {
            return Err(ApiError(ErrorKind::Unauthenticated));
        }
        let ApiUser(user) = ApiUser::from_request_parts(parts, state).await?;
        Ok(ApiWriter(user))
    }
}

fn opportunity_json(o: mailscribe_store::Opportunity) -> serde_json::Value {
    serde_json::json!({
        "no": o.no,
        "description": o.description,
        "contact_no": o.contact_no,
        "contact_company_no": o.contact_company_no,
        "salesperson_code": o.salesperson_code,
        "status": o.status,
        "estimated_value": o.estimated_value.map(|v| v.to_string()),
        "created_at": o.created_at.to_rfc3339(),
    })
}

fn own_code(user: &mailscribe_core::User) -> Result<Option<String>, ApiError> {
    match user.restricted_to() {
        None => Ok(None),
        Some(mailscribe_core::Restriction::Salesperson(code)) => Ok(Some(code.to_string())),
        Some(mailscribe_core::Restriction::Nothing) => Err(ApiError(ErrorKind::NotFound)),
    }
}

pub(crate) async fn opportunities(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
) -> Result<Json<serde_json::Value>, ApiError> {
    let code = own_code(&user)?;
    let rows = state.store.opportunities(code.as_deref(), 500).await?;
    Ok(Json(
        serde_json::json!({ "items": rows.into_iter().map(opportunity_json).collect::<Vec<_>>() }),
    ))
}

pub(crate) async fn opportunity(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    Path(no): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let found = state
        .store
        .opportunity(&no)
        .await?
        .ok_or(ApiError(ErrorKind::NotFound))?;
    let visible = user.restricted_to().is_none()
        || found
            .salesperson_code
            .as_deref()
            .is_some_and(|c| user.may_see_entry_of(c));
    if !visible {
        return Err(ApiError(ErrorKind::NotFound));
    }
    let mut value = opportunity_json(found);
    value["entries"] = serde_json::json!(state.store.opportunity_entries(&no).await?);
    value["comments"] = serde_json::json!(state.store.opportunity_comments(&no).await?);
    Ok(Json(value))
}

/// Makes an opportunity from an entry (not canceled, none yet): 201 with it.
pub(crate) async fn opportunity_from_entry(
    State(state): State<AppState>,
    ApiWriter(user): ApiWriter,
    Path(entry_no): Path<i64>,
) -> Result<(axum::http::StatusCode, Json<serde_json::Value>), ApiError> {
    visible_entry(&state, &user, entry_no).await?;
    let no = match state
        .store
        .create_opportunity_from_entry(entry_no, chrono::Utc::now())
        .await
    {
        Ok(no) => no,
        Err(mailscribe_store::StoreError::Conflict(why)) => {
            return Err(ApiError(ErrorKind::Conflict(why)));
        }
        Err(err) => return Err(err.into()),
    };
    let created = state
        .store
        .opportunity(&no)
        .await?
        .ok_or(ApiError(ErrorKind::NotFound))?;
    Ok((
        axum::http::StatusCode::CREATED,
        Json(opportunity_json(created)),
    ))
}

#[derive(serde::Deserialize, Default)]
pub(crate) struct TextQuery {
    #[serde(default)]
    q: String,
    /// Absent: any reason; present: a reason code.
    reason: Option<String>,
    #[serde(default)]
    before: Option<i64>,
}

fn contact_json(c: mailscribe_store::ContactRow) -> serde_json::Value {
    serde_json::json!({
        "no": c.no.to_string(),
        "name": c.name,
        "kind": c.kind.as_str(),
        "company_no": c.company_no.map(|n| n.to_string()),
        "addresses": c.addresses.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "privacy_blocked": c.privacy_blocked,
    })
}

pub(crate) async fn contacts(
    State(state): State<AppState>,
    ApiUser(_): ApiUser,
    Query(query): Query<TextQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let text = query.q.trim();
    let rows = state
        .store
        .contacts_page((!text.is_empty()).then_some(text), 500)
        .await?;
    Ok(Json(
        serde_json::json!({ "items": rows.into_iter().map(contact_json).collect::<Vec<_>>() }),
    ))
}

pub(crate) async fn contact(
    State(state): State<AppState>,
    ApiUser(_): ApiUser,
    Path(no): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    contract::check_code("no", &no)?;
    let found = state
        .store
        .contact(&no)
        .await?
        .ok_or(ApiError(ErrorKind::NotFound))?;
    Ok(Json(contact_json(found)))
}

pub(crate) async fn salespeople(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
) -> Result<Json<serde_json::Value>, ApiError> {
    let items: Vec<serde_json::Value> = state
        .store
        .list_salespeople()
        .await?
        .into_iter()
        .filter(|s| user.may_see_entry_of(s.code.as_str()))
        .map(|s| {
            serde_json::json!({
                "code": s.code.to_string(),
                "name": s.name,
                "addresses": s.addresses.iter().map(ToString::to_string).collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(Json(serde_json::json!({ "items": items })))
}

fn ledger_reader(user: &mailscribe_core::User) -> Result<(), ApiError> {
    if user.may_see_ledger() {
        Ok(())
    } else {
        Err(ApiError(ErrorKind::NotFound))
    }
}

pub(crate) async fn runs(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
) -> Result<Json<serde_json::Value>, ApiError> {
    ledger_reader(&user)?;
    let items: Vec<serde_json::Value> = state
        .store
        .recent_runs(100)
        .await?
        .into_iter()
        .map(|r| {
            serde_json::json!({
                "id": r.id,
                "started_at": r.started_at.to_rfc3339(),
                "finished_at": r.finished_at.map(|f| f.to_rfc3339()),
                "status": r.status,
                "seen": r.counts.seen,
                "logged": r.counts.logged,
                "duplicate": r.counts.duplicate,
                "not_logged": r.counts.not_logged,
                "failed": r.counts.failed,
                "entries": r.counts.entries,
                "by_reason": r.counts.by_reason,
                "error": r.error,
            })
        })
        .collect();
    Ok(Json(serde_json::json!({ "items": items })))
}

pub(crate) async fn decisions(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    Query(query): Query<TextQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    ledger_reader(&user)?;
    let reason = query.reason.as_deref().unwrap_or("");
    if query.reason.is_some()
        && !mailscribe_core::Reason::ALL
            .iter()
            .any(|r| r.as_str() == reason)
    {
        return Err(ApiError(ErrorKind::BadRequest(format!(
            "reason: unknown reason code '{reason}'"
        ))));
    }
    let text = query.q.trim();
    let rows = state
        .store
        .decisions_page(
            (!reason.is_empty()).then_some(reason),
            (!text.is_empty()).then_some(text),
            query.before,
            100,
        )
        .await?;
    let next_before = (rows.len() == 100)
        .then(|| rows.last().map(|r| r.id))
        .flatten();
    let items: Vec<serde_json::Value> = rows
        .into_iter()
        .map(|d| {
            serde_json::json!({
                "id": d.id, "message_id": d.message_id, "sha256": d.sha256, "outcome": d.outcome, "reason": d.reason,
                "entries": d.entries, "error": d.error, "decided_at": d.decided_at.to_rfc3339(), "sender": d.sender,
                "subject": d.subject, "ambiguous": d.ambiguous, "attempts": d.attempts, "disposition": d.disposition,
            })
        })
        .collect();
    Ok(Json(
        serde_json::json!({ "items": items, "next_before": next_before }),
    ))
}
