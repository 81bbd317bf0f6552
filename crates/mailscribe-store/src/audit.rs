//! The audit log: security-relevant events, appended and read, never
//! changed (there is no update or delete here).

use chrono::{DateTime, Utc};
use sqlx::{QueryBuilder, Row};

use crate::{Result, Store, with_pool};

/// One event to record. Name people by user name, contact number or
/// salesperson code only, and never put a secret's value in `detail`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuditEvent {
    /// The user name of who acted, or `cli:<system user>` from a shell.
    pub actor: String,
    pub client_address: Option<String>,
    /// A short code, such as `sign_in_failed` or `setup_saved`.
    pub event: String,
    pub target: Option<String>,
    pub detail: Option<String>,
}

/// An event as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRow {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub event: AuditEvent,
}

fn row_from<R: Row>(r: &R) -> Result<AuditRow>
where
    for<'c> &'c str: sqlx::ColumnIndex<R>,
    i64: for<'d> sqlx::Decode<'d, R::Database> + sqlx::Type<R::Database>,
    String: for<'d> sqlx::Decode<'d, R::Database> + sqlx::Type<R::Database>,
    Option<String>: for<'d> sqlx::Decode<'d, R::Database> + sqlx::Type<R::Database>,
    DateTime<Utc>: for<'d> sqlx::Decode<'d, R::Database> + sqlx::Type<R::Database>,
{
    Ok(AuditRow {
        id: r.try_get("id")?,
        at: r.try_get("at")?,
        event: AuditEvent {
            actor: r.try_get("actor")?,
            client_address: r.try_get("client_address")?,
            event: r.try_get("event")?,
            target: r.try_get("target")?,
            detail: r.try_get("detail")?,
        },
    })
}

impl Store {
    pub async fn record_audit(&self, event: &AuditEvent, at: DateTime<Utc>) -> Result<()> {
        with_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO audit_log (at, actor, client_address, event, target, detail) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(at)
            .bind(&event.actor)
            .bind(&event.client_address)
            .bind(&event.event)
            .bind(&event.target)
            .bind(&event.detail)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// Newest first, optionally one event kind and one actor, before an id.
    pub async fn audit_page(
        &self,
        event: Option<&str>,
        actor: Option<&str>,
        before_id: Option<i64>,
        limit: i64,
    ) -> Result<Vec<AuditRow>> {
        with_pool!(self, |pool| {
            let mut query = QueryBuilder::new("SELECT * FROM audit_log WHERE 1 = 1");
            if let Some(event) = event {
                query.push(" AND event = ").push_bind(event.to_owned());
            }
            if let Some(actor) = actor {
                query.push(" AND actor = ").push_bind(actor.to_owned());
            }
            if let Some(before) = before_id {
                query.push(" AND id < ").push_bind(before);
            }
            query.push(" ORDER BY id DESC LIMIT ").push_bind(limit);
            query
                .build()
                .fetch_all(pool)
                .await?
                .iter()
                .map(row_from)
                .collect()
        })
    }

    /// Events with `id > after`, oldest first, for the export.
    pub async fn audit_after(&self, after: i64, limit: i64) -> Result<Vec<AuditRow>> {
        with_pool!(self, |pool| {
            sqlx::query("SELECT * FROM audit_log WHERE id > $1 ORDER BY id LIMIT $2")
                .bind(after)
                .bind(limit)
                .fetch_all(pool)
                .await?
                .iter()
                .map(row_from)
                .collect()
        })
    }
}
