//! Deleting interaction log entries: the one routine that every removal of
//! logged data goes through (an admin deleting an entry, "delete canceled
//! entries", and later purges and erasure).
//!
//! An entry goes with its comments; its message record, and the raw bytes
//! kept with it in `full` mode, go when no other entry uses them. The
//! ledger keeps every decision (why a message was or was not logged stays
//! answerable, and a later copy of the message is still a duplicate); only
//! its link to a removed message record becomes empty.

use chrono::{DateTime, Utc};
use sqlx::{QueryBuilder, Row};

use crate::{Result, Store, with_pool};

/// Which entries to delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntrySelection {
    /// These entry numbers.
    Entries(Vec<i64>),
    /// Canceled entries whose interaction happened before this instant.
    CanceledBefore(DateTime<Utc>),
}

/// What a deletion removed (or, in a dry run, would remove).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeletionSummary {
    pub entries: u64,
    /// Message records no entry used any more (with their stored bytes).
    pub messages: u64,
}

impl Store {
    /// Deletes the selected entries in one transaction; with `dry_run`,
    /// only counts what would go.
    pub async fn delete_entries(
        &self,
        selection: &EntrySelection,
        dry_run: bool,
    ) -> Result<DeletionSummary> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let mut select = QueryBuilder::new(
                "SELECT entry_no, message_record_id FROM interaction_entries WHERE ",
            );
            match selection {
                EntrySelection::Entries(numbers) if numbers.is_empty() => {
                    return Ok(DeletionSummary::default());
                }
                EntrySelection::Entries(numbers) => {
                    select.push("entry_no IN (");
                    let mut separated = select.separated(", ");
                    for number in numbers {
                        separated.push_bind(*number);
                    }
                    select.push(")");
                }
                EntrySelection::CanceledBefore(before) => {
                    select
                        .push("canceled = TRUE AND occurred_at < ")
                        .push_bind(*before);
                }
            }
            let rows = select.build().fetch_all(&mut *tx).await?;
            let mut entries: Vec<i64> = Vec::with_capacity(rows.len());
            let mut records: Vec<i64> = Vec::new();
            for row in &rows {
                entries.push(row.try_get("entry_no")?);
                // Entries imported from Business Central have no record.
                let record: Option<i64> = row.try_get("message_record_id")?;
                if let Some(record) = record
                    && !records.contains(&record)
                {
                    records.push(record);
                }
            }
            // Records that would be left without any entry.
            let mut orphaned: Vec<i64> = Vec::new();
            for record in &records {
                let mut others = QueryBuilder::new(
                    "SELECT COUNT(*) AS n FROM interaction_entries WHERE message_record_id = ",
                );
                others.push_bind(*record).push(" AND entry_no NOT IN (");
                let mut separated = others.separated(", ");
                for entry in &entries {
                    separated.push_bind(*entry);
                }
                others.push(")");
                let n: i64 = others.build().fetch_one(&mut *tx).await?.try_get("n")?;
                if n == 0 {
                    orphaned.push(*record);
                }
            }
            let summary = DeletionSummary {
                entries: entries.len() as u64,
                messages: orphaned.len() as u64,
            };
            if dry_run {
                return Ok(summary);
            }
            for chunk in entries.chunks(500) {
                // Comments go with their entry (ON DELETE CASCADE); the
                // subject index follows by its triggers on SQLite.
                let mut delete =
                    QueryBuilder::new("DELETE FROM interaction_entries WHERE entry_no IN (");
                let mut separated = delete.separated(", ");
                for entry in chunk {
                    separated.push_bind(*entry);
                }
                delete.push(")");
                delete.build().execute(&mut *tx).await?;
            }
            for record in &orphaned {
                sqlx::query(
                    "UPDATE decisions SET message_record_id = NULL WHERE message_record_id = $1",
                )
                .bind(*record)
                .execute(&mut *tx)
                .await?;
                sqlx::query("DELETE FROM messages WHERE id = $1")
                    .bind(*record)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(summary)
        })
    }
}
