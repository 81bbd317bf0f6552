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
