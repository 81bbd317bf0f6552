//! The JSON API under `/api/v1`.

use axum::Json;
use axum::extract::{Path, Query, State};
use serde::Serialize;

use crate::AppState;
use crate::auth::ApiUser;
use crate::error::ApiError;
use crate::pages::{LogQuery, log_page, visible_entry};

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
    message_record_id: i64,
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

#[derive(serde::Deserialize)]
pub(crate) struct Limit {
    #[serde(default)]
    limit: Option<i64>,
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
    Query(query): Query<LogQuery>,
    Query(limit): Query<Limit>,
) -> Result<Json<Page>, ApiError> {
    let limit = limit.limit.unwrap_or(50).clamp(1, 500);
    let (rows, tz) = log_page(&state, &user, &query, limit).await?;
    let next = (rows.len() as i64 == limit).then(|| rows.last().map(|r| (r.occurred_at.to_rfc3339(), r.entry_no))).flatten();
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
    let mut value = serde_json::to_value(dto(row, tz)).map_err(|e| ApiError(crate::error::ErrorKind::Internal(e.to_string())))?;
    value["comments"] = serde_json::Value::Array(comments);
    Ok(Json(value))
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
    let error = serde_json::json!({ "$ref": "#/components/responses/Error" });
    let filter = |name: &str, description: &str| {
        serde_json::json!({ "name": name, "in": "query", "required": false, "schema": { "type": "string" }, "description": description })
    };
    serde_json::json!({
        "openapi": "3.0.3",
        "info": {
            "title": "Mailscribe API",
            "version": "1",
            "description": "The interaction log of Mailscribe. Authenticate with `Authorization: Bearer <token>` (`mailscribe token create`) or the session cookie. A salesperson sees only their own entries."
        },
        "servers": [{ "url": "/" }],
        "security": [{ "bearer": [] }, { "session": [] }],
        "paths": {
            "/api/v1/me": {
                "get": {
                    "summary": "Who the caller is",
                    "responses": {
                        "200": { "description": "The caller", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Me" } } } },
                        "401": error
                    }
                }
            },
            "/api/v1/interactions": {
                "get": {
                    "summary": "The interaction log, newest first, a page at a time",
                    "parameters": [
                        filter("contact", "Contact number"),
                        filter("company", "Company contact number"),
                        filter("salesperson", "Salesperson code (ignored for salesperson accounts, which see only their own)"),
                        filter("from", "First day, YYYY-MM-DD in the configured time zone"),
                        filter("to", "Last day, YYYY-MM-DD in the configured time zone"),
                        filter("direction", "inbound or outbound"),
                        filter("q", "Words that must each start a word of the subject"),
                        filter("before_at", "Cursor: next_before_at of the previous page"),
                        { "name": "before_no", "in": "query", "required": false, "schema": integer, "description": "Cursor: next_before_no of the previous page" },
                        { "name": "limit", "in": "query", "required": false, "schema": { "type": "integer", "minimum": 1, "maximum": 500, "default": 50 } }
                    ],
                    "responses": {
                        "200": { "description": "A page", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/InteractionPage" } } } },
                        "400": error,
                        "401": error
                    }
                }
            },
            "/api/v1/interactions/{entry_no}": {
                "get": {
                    "summary": "One entry with its comments",
                    "parameters": [{ "name": "entry_no", "in": "path", "required": true, "schema": integer }],
                    "responses": {
                        "200": { "description": "The entry", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/InteractionWithComments" } } } },
                        "401": error,
                        "404": error
                    }
                }
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
                }
            },
            "schemas": {
                "Me": {
                    "type": "object",
                    "required": ["id", "name", "role", "salesperson_code"],
                    "properties": { "id": integer, "name": string, "role": { "type": "string", "enum": ["admin", "user", "salesperson"] }, "salesperson_code": nullable_string }
                },
                "Interaction": {
                    "type": "object",
                    "required": ["entry_no", "date", "time", "occurred_at", "direction", "initiated_by", "salesperson_code", "contact_no",
                                 "contact_company_no", "subject", "message_id", "template_code", "cost", "duration_minutes", "canceled",
                                 "opportunity_no", "message_record_id"],
                    "properties": {
                        "entry_no": integer, "date": string, "time": string, "occurred_at": { "type": "string", "format": "date-time" },
                        "direction": { "type": "string", "enum": ["inbound", "outbound"] },
                        "initiated_by": { "type": "string", "enum": ["us", "them"] },
                        "salesperson_code": string, "contact_no": string, "contact_company_no": nullable_string,
                        "subject": string, "message_id": nullable_string, "template_code": string,
                        "cost": { "type": "string", "description": "Decimal with two digits" },
                        "duration_minutes": integer, "canceled": boolean, "opportunity_no": nullable_string, "message_record_id": integer
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
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": { "error": { "type": "object", "required": ["code", "message", "request_id"], "properties": {
                        "code": { "type": "string", "enum": ["unauthenticated", "forbidden", "not_found", "gone", "bad_request", "too_many_attempts", "internal"] },
                        "message": string, "request_id": nullable_string
                    } } }
                }
            }
        }
    })
}
