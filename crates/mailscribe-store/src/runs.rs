//! Run records: when, how long, counts per outcome and reason, errors.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sqlx::Row;

use crate::{Result, Store, with_pool};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunCounts {
    pub seen: u64,
    pub logged: u64,
    pub duplicate: u64,
    pub not_logged: u64,
    pub failed: u64,
    pub entries: u64,
    /// Messages per reason code.
    pub by_reason: BTreeMap<String, u64>,
}

impl RunCounts {
    fn reasons_to_text(&self) -> String {
        self.by_reason
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(";")
    }

    fn reasons_from_text(text: &str) -> BTreeMap<String, u64> {
        text.split(';')
            .filter_map(|pair| {
                let (k, v) = pair.split_once('=')?;
                Some((k.to_owned(), v.parse().ok()?))
            })
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRecord {
    pub id: i64,
    /// The mailbox key (`user@host:port/queue`).
    pub mailbox: String,
    /// The name of the mailbox setup.
    pub mailbox_name: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// `running`, `completed`, or `aborted` (an infrastructure error ended it).
    pub status: String,
    pub counts: RunCounts,
    pub error: Option<String>,
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

impl Store {
    pub async fn start_run(
        &self,
        mailbox: &str,
        mailbox_name: &str,
        started_at: DateTime<Utc>,
    ) -> Result<i64> {
        with_pool!(self, |pool| {
            let row = sqlx::query(
                "INSERT INTO runs (mailbox, mailbox_name, started_at, status) VALUES ($1, $3, $2, 'running') RETURNING id",
            )
            .bind(mailbox)
            .bind(started_at)
            .bind(mailbox_name)
            .fetch_one(pool)
            .await?;
            Ok(row.try_get::<i64, _>("id")?)
        })
    }

    pub async fn finish_run(
        &self,
        run_id: i64,
        finished_at: DateTime<Utc>,
        status: &str,
        counts: &RunCounts,
        error: Option<&str>,
    ) -> Result<()> {
        with_pool!(self, |pool| {
            sqlx::query(
                "UPDATE runs SET finished_at = $1, status = $2, seen = $3, logged = $4, duplicate = $5, \
                 not_logged = $6, failed = $7, entries = $8, reasons = $9, error = $10 WHERE id = $11",
            )
            .bind(finished_at)
            .bind(status)
            .bind(to_i64(counts.seen))
            .bind(to_i64(counts.logged))
            .bind(to_i64(counts.duplicate))
            .bind(to_i64(counts.not_logged))
            .bind(to_i64(counts.failed))
            .bind(to_i64(counts.entries))
            .bind(counts.reasons_to_text())
            .bind(error)
            .bind(run_id)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// The newest runs first.
    pub async fn recent_runs(&self, limit: i64) -> Result<Vec<RunRecord>> {
        with_pool!(self, |pool| {
            sqlx::query("SELECT * FROM runs ORDER BY id DESC LIMIT $1")
                .bind(limit)
                .fetch_all(pool)
                .await?
                .iter()
                .map(|row| {
                    let reasons: String = row.try_get("reasons")?;
                    Ok(RunRecord {
                        id: row.try_get("id")?,
                        mailbox: row.try_get("mailbox")?,
                        mailbox_name: row.try_get("mailbox_name")?,
                        started_at: row.try_get("started_at")?,
                        finished_at: row.try_get("finished_at")?,
                        status: row.try_get("status")?,
                        counts: RunCounts {
                            seen: to_u64(row.try_get("seen")?),
                            logged: to_u64(row.try_get("logged")?),
                            duplicate: to_u64(row.try_get("duplicate")?),
                            not_logged: to_u64(row.try_get("not_logged")?),
                            failed: to_u64(row.try_get("failed")?),
                            entries: to_u64(row.try_get("entries")?),
                            by_reason: RunCounts::reasons_from_text(&reasons),
                        },
                        error: row.try_get("error")?,
                    })
                })
                .collect()
        })
    }
}
