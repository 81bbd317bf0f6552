//! Reading entries and decisions back, in id order, a page at a time.

use chrono::{DateTime, Utc};
use mailscribe_core::Amount;

use crate::{Result, Store, with_pool};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryRow {
    pub entry_no: i64,
    pub occurred_at: DateTime<Utc>,
    pub direction: String,
    pub initiated_by: String,
    pub salesperson_code: String,
    pub contact_no: String,
    pub contact_company_no: Option<String>,
    pub subject: String,
    pub description: String,
    /// As written in the header, angle brackets included.
    pub message_id: Option<String>,
    /// `None` for an entry imported from Business Central.
    pub message_record_id: Option<i64>,
    pub template_code: String,
    pub cost: Amount,
    pub duration_minutes: i64,
    pub canceled: bool,
    pub opportunity_no: Option<String>,
    pub date_fallback: bool,
    /// The mailbox the message was logged through.
    pub mailbox_name: String,
    /// The run that wrote it.
    pub run_id: Option<i64>,
    /// Copied from the template when the entry was made.
    pub interaction_group: Option<String>,
    pub campaign_no: Option<String>,
    /// Business Central's entry number, for an imported entry.
    pub bc_entry_no: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecisionRow {
    pub id: i64,
    pub message_id: Option<String>,
    pub sha256: String,
    pub outcome: String,
    pub reason: String,
    pub entries: i64,
    pub error: Option<String>,
    pub decided_at: DateTime<Utc>,
    pub first_seen_at: DateTime<Utc>,
    pub sender: Option<String>,
    pub subject: Option<String>,
    pub ambiguous: bool,
    pub attempts: i64,
    pub mailbox: String,
    pub uid_validity: i64,
    pub uid: i64,
    pub disposition: Option<String>,
    pub date_fallback: bool,
    /// The name of the mailbox setup the copy came through.
    pub mailbox_name: String,
    /// The run that decided it last.
    pub run_id: Option<i64>,
    /// Refused moves to the storage folder, and the last refusal.
    pub move_attempts: i64,
    pub move_error: Option<String>,
}

impl Store {
    /// Entries with `entry_no > after`, in entry order.
    pub async fn entries_after(&self, after: i64, limit: i64) -> Result<Vec<EntryRow>> {
        with_pool!(self, |pool| {
            sqlx::query(
                "SELECT e.*, m.message_id FROM interaction_entries e \
                 LEFT JOIN messages m ON m.id = e.message_record_id \
                 WHERE e.entry_no > $1 ORDER BY e.entry_no LIMIT $2",
            )
            .bind(after)
            .bind(limit)
            .fetch_all(pool)
            .await?
            .iter()
            .map(entry_from_row)
            .collect()
        })
    }

    /// Ledger rows, newest first, for "why was this email not logged?":
    /// by reason code, and by a piece of the Message-ID or sender address.
    pub async fn decisions_page(
        &self,
        reason: Option<&str>,
        text: Option<&str>,
        before_id: Option<i64>,
        limit: i64,
    ) -> Result<Vec<DecisionRow>> {
        with_pool!(self, |pool| {
            let mut query = sqlx::QueryBuilder::new("SELECT * FROM decisions WHERE 1 = 1");
            if let Some(reason) = reason {
                query.push(" AND reason = ").push_bind(reason.to_owned());
            }
            if let Some(text) = text {
                let pattern = format!(
                    "%{}%",
                    text.to_lowercase()
                        .replace('\\', "\\\\")
                        .replace('%', "\\%")
                        .replace('_', "\\_")
                );
                query
                    .push(" AND (LOWER(COALESCE(message_id, '')) LIKE ")
                    .push_bind(pattern.clone())
                    .push(" ESCAPE '\\' OR LOWER(COALESCE(sender, '')) LIKE ")
                    .push_bind(pattern)
                    .push(" ESCAPE '\\')");
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
                .map(decision_from_row)
                .collect()
        })
    }

    /// Ledger rows with `id > after`, in id order.
    pub async fn decisions_after(&self, after: i64, limit: i64) -> Result<Vec<DecisionRow>> {
        with_pool!(self, |pool| {
            sqlx::query("SELECT * FROM decisions WHERE id > $1 ORDER BY id LIMIT $2")
                .bind(after)
                .bind(limit)
                .fetch_all(pool)
                .await?
                .iter()
                .map(decision_from_row)
                .collect()
        })
    }
}

pub(crate) fn entry_from_row<R: sqlx::Row>(r: &R) -> Result<EntryRow>
where
    for<'c> &'c str: sqlx::ColumnIndex<R>,
    i64: for<'d> sqlx::Decode<'d, R::Database> + sqlx::Type<R::Database>,
    bool: for<'d> sqlx::Decode<'d, R::Database> + sqlx::Type<R::Database>,
    String: for<'d> sqlx::Decode<'d, R::Database> + sqlx::Type<R::Database>,
    Option<String>: for<'d> sqlx::Decode<'d, R::Database> + sqlx::Type<R::Database>,
    Option<i64>: for<'d> sqlx::Decode<'d, R::Database> + sqlx::Type<R::Database>,
    DateTime<Utc>: for<'d> sqlx::Decode<'d, R::Database> + sqlx::Type<R::Database>,
{
    Ok(EntryRow {
        entry_no: r.try_get("entry_no")?,
        occurred_at: r.try_get("occurred_at")?,
        direction: r.try_get("direction")?,
        initiated_by: r.try_get("initiated_by")?,
        salesperson_code: r.try_get("salesperson_code")?,
        contact_no: r.try_get("contact_no")?,
        contact_company_no: r.try_get("contact_company_no")?,
        subject: r.try_get("subject")?,
        description: r.try_get("description")?,
        message_id: r.try_get("message_id")?,
        message_record_id: r.try_get("message_record_id")?,
        template_code: r.try_get("template_code")?,
        cost: Amount::from_hundredths(r.try_get("cost_hundredths")?),
        duration_minutes: r.try_get("duration_minutes")?,
        canceled: r.try_get("canceled")?,
        opportunity_no: r.try_get("opportunity_no")?,
        date_fallback: r.try_get("date_fallback")?,
        mailbox_name: r.try_get("mailbox_name")?,
        run_id: r.try_get("run_id")?,
        interaction_group: r.try_get("interaction_group")?,
        campaign_no: r.try_get("campaign_no")?,
        bc_entry_no: r.try_get("bc_entry_no")?,
    })
}

fn decision_from_row<R: sqlx::Row>(r: &R) -> Result<DecisionRow>
where
    for<'c> &'c str: sqlx::ColumnIndex<R>,
    i64: for<'d> sqlx::Decode<'d, R::Database> + sqlx::Type<R::Database>,
    bool: for<'d> sqlx::Decode<'d, R::Database> + sqlx::Type<R::Database>,
    String: for<'d> sqlx::Decode<'d, R::Database> + sqlx::Type<R::Database>,
    Option<String>: for<'d> sqlx::Decode<'d, R::Database> + sqlx::Type<R::Database>,
    Option<i64>: for<'d> sqlx::Decode<'d, R::Database> + sqlx::Type<R::Database>,
    DateTime<Utc>: for<'d> sqlx::Decode<'d, R::Database> + sqlx::Type<R::Database>,
{
    Ok(DecisionRow {
        id: r.try_get("id")?,
        message_id: r.try_get("message_id")?,
        sha256: r.try_get("sha256")?,
        outcome: r.try_get("outcome")?,
        reason: r.try_get("reason")?,
        entries: r.try_get("entries")?,
        error: r.try_get("error")?,
        decided_at: r.try_get("decided_at")?,
        first_seen_at: r.try_get("first_seen_at")?,
        sender: r.try_get("sender")?,
        subject: r.try_get("subject")?,
        ambiguous: r.try_get("ambiguous")?,
        attempts: r.try_get("attempts")?,
        mailbox: r.try_get("mailbox")?,
        uid_validity: r.try_get("uid_validity")?,
        uid: r.try_get("uid")?,
        disposition: r.try_get("disposition")?,
        date_fallback: r.try_get("date_fallback")?,
        mailbox_name: r.try_get("mailbox_name")?,
        run_id: r.try_get("run_id")?,
        move_attempts: r.try_get("move_attempts")?,
        move_error: r.try_get("move_error")?,
    })
}
