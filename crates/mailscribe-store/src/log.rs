//! The interaction log as users browse it: filters, newest first, keyset
//! paging; one entry; comments; cancel.

use chrono::{DateTime, Utc};
use sqlx::{QueryBuilder, Row};

use crate::export::{EntryRow, entry_from_row};
use crate::{Result, Store, with_pool};

/// Filters of the log page and `GET /api/v1/interactions`. Empty means all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EntryFilter {
    pub contact_no: Option<String>,
    pub company_no: Option<String>,
    pub salesperson_code: Option<String>,
    pub from: Option<DateTime<Utc>>,
    /// Exclusive.
    pub to: Option<DateTime<Utc>>,
    pub direction: Option<String>,
    /// Words that must each start a word of the subject, ignoring case.
    pub text: Option<String>,
    /// The mailbox the message was logged through (any case).
    pub mailbox_name: Option<String>,
    /// The campaign the entry counts toward.
    pub campaign_no: Option<String>,
}

/// Where the next page starts: the last row of this one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryCursor {
    pub occurred_at: DateTime<Utc>,
    pub entry_no: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryComment {
    pub line_no: i64,
    pub created_at: DateTime<Utc>,
    pub comment: String,
}

/// The words of a search: runs of letters and digits, lower-cased. This is
/// all the syntax there is: no operator or quote from the user reaches the
/// query language. The databases split subjects almost alike; PostgreSQL's
/// parser keeps an address (`a@b.example`) or a dotted number as one word,
/// so a search for a part of one finds it on SQLite only.
pub(crate) fn search_words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

impl Store {
    /// A page of the log, newest first.
    pub async fn entries_page(
        &self,
        filter: &EntryFilter,
        before: Option<EntryCursor>,
        limit: i64,
    ) -> Result<Vec<EntryRow>> {
        // A subject search alone matches few entries spread over the whole
        // log: SQLite is then best walking the log newest first and testing
        // each entry against the search (it stops after one page), rather
        // than sorting every match.
        let walk_by_date = matches!(self.backend, crate::Backend::Sqlite(_))
            && filter.text.is_some()
            && filter.contact_no.is_none()
            && filter.company_no.is_none()
            && filter.salesperson_code.is_none()
            && filter.mailbox_name.is_none()
            && filter.campaign_no.is_none();
        let from = if walk_by_date {
            "SELECT e.*, m.message_id FROM interaction_entries e INDEXED BY interaction_entries_occurred \
             LEFT JOIN messages m ON m.id = e.message_record_id WHERE 1 = 1"
        } else {
            "SELECT e.*, m.message_id FROM interaction_entries e LEFT JOIN messages m ON m.id = e.message_record_id WHERE 1 = 1"
        };
        with_pool!(self, |pool| {
            let mut query = QueryBuilder::new(from);
            if let Some(contact) = &filter.contact_no {
                query
                    .push(" AND e.contact_no = ")
                    .push_bind(contact.clone());
            }
            if let Some(company) = &filter.company_no {
                query
                    .push(" AND e.contact_company_no = ")
                    .push_bind(company.clone());
            }
            if let Some(code) = &filter.salesperson_code {
                query
                    .push(" AND e.salesperson_code = ")
                    .push_bind(code.clone());
            }
            if let Some(from) = filter.from {
                query.push(" AND e.occurred_at >= ").push_bind(from);
            }
            if let Some(to) = filter.to {
                query.push(" AND e.occurred_at < ").push_bind(to);
            }
            if let Some(direction) = &filter.direction {
                query
                    .push(" AND e.direction = ")
                    .push_bind(direction.clone());
            }
            if let Some(campaign) = &filter.campaign_no {
                query
                    .push(" AND e.campaign_no = ")
                    .push_bind(campaign.clone());
            }
            if let Some(name) = &filter.mailbox_name {
                query
                    .push(" AND lower(e.mailbox_name) = ")
                    .push_bind(name.to_lowercase());
            }
            let words = filter.text.as_deref().map(search_words).unwrap_or_default();
            if !words.is_empty() {
                match &self.backend {
                    crate::Backend::Sqlite(_) => {
                        // FTS5: every word as a quoted prefix.
                        let expression = words
                            .iter()
                            .map(|w| format!("\"{}\"*", w.replace('"', "\"\"")))
                            .collect::<Vec<_>>()
                            .join(" AND ");
                        query
                            .push(" AND e.entry_no IN (SELECT rowid FROM entry_subjects WHERE entry_subjects MATCH ")
                            .push_bind(expression)
                            .push(")");
                    }
                    crate::Backend::Postgres(_) => {
                        let expression = words
                            .iter()
                            .map(|w| format!("'{}':*", w.replace('\'', "''").replace('\\', "\\\\")))
                            .collect::<Vec<_>>()
                            .join(" & ");
                        query
                            .push(" AND to_tsvector('simple', e.subject) @@ to_tsquery('simple', ")
                            .push_bind(expression)
                            .push(")");
                    }
                }
            }
            if let Some(cursor) = before {
                query
                    .push(" AND (e.occurred_at < ")
                    .push_bind(cursor.occurred_at)
                    .push(" OR (e.occurred_at = ")
                    .push_bind(cursor.occurred_at)
                    .push(" AND e.entry_no < ")
                    .push_bind(cursor.entry_no)
                    .push("))");
            }
            query
                .push(" ORDER BY e.occurred_at DESC, e.entry_no DESC LIMIT ")
                .push_bind(limit);
            query
                .build()
                .fetch_all(pool)
                .await?
                .iter()
                .map(entry_from_row)
                .collect()
        })
    }

    pub async fn entry(&self, entry_no: i64) -> Result<Option<EntryRow>> {
        with_pool!(self, |pool| {
            sqlx::query(
                "SELECT e.*, m.message_id FROM interaction_entries e LEFT JOIN messages m ON m.id = e.message_record_id \
                 WHERE e.entry_no = $1",
            )
            .bind(entry_no)
            .fetch_optional(pool)
            .await?
            .as_ref()
            .map(entry_from_row)
            .transpose()
        })
    }

    pub async fn entry_comments(&self, entry_no: i64) -> Result<Vec<EntryComment>> {
        with_pool!(self, |pool| {
            sqlx::query("SELECT line_no, created_at, comment FROM entry_comments WHERE entry_no = $1 ORDER BY line_no")
                .bind(entry_no)
                .fetch_all(pool)
                .await?
                .iter()
                .map(|r| Ok(EntryComment { line_no: r.try_get("line_no")?, created_at: r.try_get("created_at")?, comment: r.try_get("comment")? }))
                .collect()
        })
    }

    /// Adds a comment line; line numbers step by 10000, as in BC.
    pub async fn add_entry_comment(
        &self,
        entry_no: i64,
        comment: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        with_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO entry_comments (entry_no, line_no, created_at, comment) \
                 SELECT $1, COALESCE(MAX(line_no), 0) + 10000, $2, $3 FROM entry_comments WHERE entry_no = $1",
            )
            .bind(entry_no)
            .bind(now)
            .bind(comment)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    pub async fn set_entry_canceled(&self, entry_no: i64, canceled: bool) -> Result<()> {
        with_pool!(self, |pool| {
            sqlx::query("UPDATE interaction_entries SET canceled = $1 WHERE entry_no = $2")
                .bind(canceled)
                .bind(entry_no)
                .execute(pool)
                .await?;
            Ok(())
        })
    }
}

/// A logged message: where it lies, and whether the store keeps its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageRecord {
    pub id: i64,
    pub message_id: Option<String>,
    pub subject: String,
    pub storage_folder: Option<String>,
    pub storage_uid_validity: Option<i64>,
    pub storage_uid: Option<i64>,
    pub has_raw: bool,
    /// The mailbox it was logged through: its storage folder holds it.
    pub mailbox_name: String,
}

impl Store {
    pub async fn message_record(&self, id: i64) -> Result<Option<MessageRecord>> {
        with_pool!(self, |pool| {
            sqlx::query(
                "SELECT id, message_id, subject, storage_folder, storage_uid_validity, storage_uid, \
                 raw_compressed IS NOT NULL AS has_raw, mailbox_name FROM messages WHERE id = $1",
            )
            .bind(id)
            .fetch_optional(pool)
            .await?
            .map(|r| {
                Ok(MessageRecord {
                    id: r.try_get("id")?,
                    message_id: r.try_get("message_id")?,
                    subject: r.try_get("subject")?,
                    storage_folder: r.try_get("storage_folder")?,
                    storage_uid_validity: r.try_get("storage_uid_validity")?,
                    storage_uid: r.try_get("storage_uid")?,
                    has_raw: r.try_get("has_raw")?,
                    mailbox_name: r.try_get("mailbox_name")?,
                })
            })
            .transpose()
        })
    }
}
