//! The decision ledger, message records and interaction log entries.
//!
//! Exactly-once rests on three things here: a batch's decisions and entries
//! commit in one transaction before the worker touches the mailbox; a copy
//! whose ledger row is final is never decided again; and the database
//! refuses a second entry for the same (message, salesperson, contact,
//! direction).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::io::{Read, Write};

use chrono::{DateTime, Utc};
use flate2::Compression;
use flate2::read::DeflateDecoder;
use flate2::write::DeflateEncoder;
use mailscribe_core::decision::ErrorClass;
use mailscribe_core::{InteractionTemplate, Outcome, PlannedEntry, Reason};
use sqlx::{Acquire, QueryBuilder, Row};

use crate::{Fence, Result, Store, StoreError, padded_len, push_padded_list, with_pool};

/// What the ledger knows about one copy already.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerState {
    pub id: i64,
    pub reason: Reason,
    pub attempts: u32,
    pub disposition: Option<String>,
    /// Refused moves of this copy to its folder, counted apart from
    /// `attempts`: the decision stands, only the move is retried.
    pub move_attempts: u32,
}

impl LedgerState {
    /// A final row is never decided again; only its disposition may be
    /// redone after a crash.
    pub fn is_final(&self) -> bool {
        self.reason.outcome() != Outcome::Failed
    }
}

/// One copy, decided, ready to commit.
#[derive(Debug, Clone)]
pub struct DecidedCopy {
    /// The mailbox key (`user@host:port/queue`): part of the copy's identity.
    pub mailbox: String,
    /// The name of the mailbox setup it came through: a label.
    pub mailbox_name: String,
    pub uid_validity: u32,
    pub uid: u32,
    pub run_id: i64,
    /// The Message-ID header as written, angle brackets included.
    pub message_id: Option<String>,
    pub message_key: String,
    pub sha256: String,
    pub sender: Option<String>,
    pub subject: String,
    pub reason: Reason,
    pub ambiguous: bool,
    pub error: Option<String>,
    pub entries: Vec<PlannedEntry>,
    /// When the interaction happened (sent for outbound, received for inbound).
    pub occurred_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
    pub received_at: DateTime<Utc>,
    /// `Date:` was missing or unparseable and INTERNALDATE was used.
    pub date_fallback: bool,
    pub size: u64,
    /// The raw message, kept (compressed) in `full` storage mode only.
    pub raw: Option<Vec<u8>>,
}

/// What the commit did with one copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedCopy {
    pub uid: u32,
    pub ledger_id: i64,
    /// The reason as committed: `error:store` when the database refused the
    /// copy's data, or the earlier final reason when the row was final.
    pub reason: Reason,
    pub attempts: u32,
    pub entries: u64,
}

/// Where a copy went in the mailbox, recorded after the move.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DispositionUpdate {
    pub ledger_id: i64,
    /// `stored`, `deleted`, `moved`, `quarantined` or `kept`.
    pub disposition: String,
    /// Folder, UIDVALIDITY and UID in the storage folder, when known.
    pub storage: Option<(String, u32, u32)>,
    /// The server refused to move this copy (it stays `kept` in the queue):
    /// its words. Counts one more refused move.
    pub move_error: Option<String>,
}

/// Rows in one multi-row statement of a commit: a batch of any size (up to
/// the 10,000 a mailbox may set) stays below SQLite's 32,766 bound
/// parameters and PostgreSQL's 65,535 (the ledger upsert binds 20 a row).
const ROWS_PER_STATEMENT: usize = 500;

/// Inserts `(copy, entry, message record id)` rows into the interaction
/// log, the template's cost and duration copied to each. A macro, not a
/// function, so that it expands for each backend's connection type.
macro_rules! insert_entries {
    ($connection:expr, $rows:expr, $template:expr) => {{
        let template: &InteractionTemplate = $template;
        let mut insert = QueryBuilder::new(
            "INSERT INTO interaction_entries (message_record_id, contact_no, contact_company_no, \
             salesperson_code, occurred_at, description, subject, direction, initiated_by, \
             correspondence_type, template_code, cost_hundredths, duration_minutes, email_logged, \
             attempt_failed, canceled, opportunity_no, date_fallback, mailbox_name, run_id, interaction_group, campaign_no) ",
        );
        // Padded with rows of NULLs that the WHERE leaves out, so that the
        // statement text (and its prepared statement) repeats across
        // batches (see `padded_len`).
        let rows: &[(&DecidedCopy, &PlannedEntry, i64)] = $rows;
        let padding = std::iter::repeat_n(None, padded_len(rows.len()) - rows.len());
        insert.push("SELECT * FROM (");
        insert.push_values(rows.iter().map(Some).chain(padding), |mut b, row| match row {
            Some((copy, entry, record)) => {
                b.push_bind(Some(*record))
                    .push_bind(Some(entry.contact.no.as_str()))
                    .push_bind(entry.contact.company_no.as_ref().map(|c| c.as_str()))
                    .push_bind(Some(entry.salesperson.as_str()))
                    .push_bind(Some(copy.occurred_at))
                    .push_bind(Some(copy.subject.as_str()))
                    .push_bind(Some(copy.subject.as_str()))
                    .push_bind(Some(entry.direction.as_str()))
                    .push_bind(Some(entry.direction.initiated_by().as_str()))
                    .push_bind(Some("email"))
                    .push_bind(Some(template.code.as_str()))
                    .push_bind(Some(template.cost.hundredths()))
                    .push_bind(Some(i64::from(template.duration_minutes)))
                    .push_bind(Some(true))
                    .push_bind(Some(false))
                    .push_bind(Some(false))
                    .push_bind(None::<&str>)
                    .push_bind(Some(copy.date_fallback))
                    .push_bind(Some(copy.mailbox_name.as_str()))
                    .push_bind(Some(copy.run_id))
                    .push_bind(template.interaction_group.as_deref())
                    .push_bind(template.campaign_no.as_deref());
            }
            None => {
                b.push_bind(None::<i64>)
                    .push_bind(None::<&str>)
                    .push_bind(None::<&str>)
                    .push_bind(None::<&str>)
                    .push_bind(None::<DateTime<Utc>>)
                    .push_bind(None::<&str>)
                    .push_bind(None::<&str>)
                    .push_bind(None::<&str>)
                    .push_bind(None::<&str>)
                    .push_bind(None::<&str>)
                    .push_bind(None::<&str>)
                    .push_bind(None::<i64>)
                    .push_bind(None::<i64>)
                    .push_bind(None::<bool>)
                    .push_bind(None::<bool>)
                    .push_bind(None::<bool>)
                    .push_bind(None::<&str>)
                    .push_bind(None::<bool>)
                    .push_bind(None::<&str>)
                    .push_bind(None::<i64>)
                    .push_bind(None::<&str>)
                    .push_bind(None::<&str>);
            }
        });
        insert.push(") AS v WHERE v.column1 IS NOT NULL");
        insert.build().execute($connection).await?;
    }};
}

/// Records where copies went (`Store::record_dispositions`) on a
/// connection inside a transaction the caller commits.
macro_rules! record_dispositions_in {
    ($connection:expr, $updates:expr) => {{
        let updates: &[DispositionUpdate] = $updates;
        let mut by_disposition: HashMap<&str, Vec<i64>> = HashMap::new();
        for update in updates {
            by_disposition
                .entry(update.disposition.as_str())
                .or_default()
                .push(update.ledger_id);
        }
        let stored: Vec<(i64, &str, i64, i64)> = updates
            .iter()
            .filter_map(|u| {
                let (folder, uid_validity, uid) = u.storage.as_ref()?;
                Some((
                    u.ledger_id,
                    folder.as_str(),
                    i64::from(*uid_validity),
                    i64::from(*uid),
                ))
            })
            .collect();
        for (disposition, ids) in &by_disposition {
            for chunk in ids.chunks(500) {
                let mut update = QueryBuilder::new("UPDATE decisions SET disposition = ");
                update.push_bind(*disposition).push(" WHERE id IN (");
                push_padded_list!(update, chunk, |id| *id);
                update.push(")");
                update.build().execute($connection).await?;
            }
        }
        // Refused moves: counted, with the server's words, so that the
        // copy goes to quarantine after the maximum attempts.
        for update in updates.iter().filter(|u| u.move_error.is_some()) {
            sqlx::query("UPDATE decisions SET move_attempts = move_attempts + 1, move_error = $1 WHERE id = $2")
                .bind(&update.move_error)
                .bind(update.ledger_id)
                .execute($connection)
                .await?;
        }
        // Where each logged message now lies. VALUES columns are named
        // column1, column2... in both dialects.
        for chunk in stored.chunks(200) {
            let mut update = QueryBuilder::new(
                "UPDATE messages SET storage_folder = v.column2, storage_uid_validity = v.column3, \
                 storage_uid = v.column4 FROM (",
            );
            // Padded with copies of the last row (which set the same
            // values again), so that the statement text repeats.
            let padding =
                std::iter::repeat_n(chunk.last(), padded_len(chunk.len()) - chunk.len())
                    .flatten();
            update.push_values(
                chunk.iter().chain(padding),
                |mut b, (ledger_id, folder, uid_validity, uid)| {
                    b.push_bind(*ledger_id)
                        .push_bind(*folder)
                        .push_bind(*uid_validity)
                        .push_bind(*uid);
                },
            );
            update.push(
                ") AS v WHERE messages.id = \
                 (SELECT d.message_record_id FROM decisions d WHERE d.id = v.column1 AND d.outcome = 'logged')",
            );
            update.build().execute($connection).await?;
        }
    }};
}

/// The fencing check: the first statement of a commit under a lease. An
/// UPDATE rather than a SELECT, so that it takes the row lock (PostgreSQL)
/// or the write lock (SQLite) at once: a takeover cannot slip in between
/// the check and the commit.
macro_rules! check_fence {
    ($connection:expr, $fence:expr) => {{
        if let Some(fence) = $fence {
            let fence: &Fence = fence;
            let affected = sqlx::query(
                "UPDATE leases SET generation = generation WHERE name = $1 AND holder = $2 AND generation = $3",
            )
            .bind(&fence.lease)
            .bind(&fence.holder)
            .bind(fence.generation)
            .execute($connection)
            .await?
            .rows_affected();
            if affected != 1 {
                return Err(StoreError::LeaseLost(fence.lease.clone()));
            }
        }
    }};
}

fn compress(raw: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut encoder = DeflateEncoder::new(Vec::with_capacity(raw.len() / 3), Compression::fast());
    encoder.write_all(raw)?;
    encoder.finish()
}

fn decompress(compressed: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(compressed.len() * 3);
    DeflateDecoder::new(compressed).read_to_end(&mut out)?;
    Ok(out)
}

fn bad_reason(text: &str) -> StoreError {
    StoreError::Corrupt(format!("unknown reason code '{text}' in the ledger"))
}

impl Store {
    /// Ledger rows of the given copies, by UID.
    pub async fn ledger_states(
        &self,
        mailbox: &str,
        uid_validity: u32,
        uids: &[u32],
    ) -> Result<HashMap<u32, LedgerState>> {
        let mut states = HashMap::new();
        for chunk in uids.chunks(500) {
            let rows: Vec<(i64, i64, String, i64, Option<String>, i64)> = with_pool!(
                self,
                |pool| {
                    let mut query = QueryBuilder::new(
                        "SELECT id, uid, reason, attempts, disposition, move_attempts FROM decisions WHERE mailbox = ",
                    );
                    query
                        .push_bind(mailbox)
                        .push(" AND uid_validity = ")
                        .push_bind(i64::from(uid_validity));
                    query.push(" AND uid IN (");
                    push_padded_list!(query, chunk, |uid| i64::from(*uid));
                    query.push(")");
                    query
                        .build()
                        .fetch_all(pool)
                        .await?
                        .iter()
                        .map(|r| {
                            Ok((
                                r.try_get("id")?,
                                r.try_get("uid")?,
                                r.try_get("reason")?,
                                r.try_get("attempts")?,
                                r.try_get("disposition")?,
                                r.try_get("move_attempts")?,
                            ))
                        })
                        .collect::<Result<Vec<_>>>()?
                }
            );
            for (id, uid, reason, attempts, disposition, move_attempts) in rows {
                let uid =
                    u32::try_from(uid).map_err(|_| StoreError::Corrupt(format!("uid {uid}")))?;
                states.insert(
                    uid,
                    LedgerState {
                        id,
                        reason: reason.parse().map_err(|_| bad_reason(&reason))?,
                        attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
                        disposition,
                        move_attempts: u32::try_from(move_attempts).unwrap_or(u32::MAX),
                    },
                );
            }
        }
        Ok(states)
    }

    /// Which of `keys` an earlier copy was logged under.
    pub async fn logged_keys(&self, keys: &[String]) -> Result<HashSet<String>> {
        let mut found = HashSet::new();
        for chunk in keys.chunks(500) {
            let rows: Vec<String> = with_pool!(self, |pool| {
                let mut query = QueryBuilder::new(
                    "SELECT DISTINCT message_key FROM decisions WHERE outcome = 'logged' AND message_key IN (",
                );
                push_padded_list!(query, chunk, |key| key.as_str());
                query.push(")");
                query
                    .build()
                    .fetch_all(pool)
                    .await?
                    .iter()
                    .map(|r| Ok(r.try_get("message_key")?))
                    .collect::<Result<Vec<_>>>()?
            });
            found.extend(rows);
        }
        Ok(found)
    }

    /// Commits the decisions and entries of one batch in one transaction.
    ///
    /// Each copy is written under a savepoint: when the database refuses
    /// one copy's data, that copy alone is recorded as `error:store` and the
    /// rest of the batch commits. When the database is unavailable the whole
    /// batch is rolled back and nothing counts as an attempt.
    ///
    /// With a `fence`, the transaction first checks that the lease is still
    /// held at that generation, and writes nothing (`LeaseLost`) otherwise.
    ///
    /// A copy decided `logged` whose key another mailbox logged meanwhile
    /// (two instances, one message) is recorded as a `duplicate` of it.
    pub async fn commit_batch(
        &self,
        copies: &[DecidedCopy],
        template: &InteractionTemplate,
        now: DateTime<Utc>,
        fence: Option<&Fence>,
    ) -> Result<Vec<CommittedCopy>> {
        self.commit_batch_recording(copies, &[], template, now, fence)
            .await
    }

    /// `commit_batch`, recording in the same transaction where the copies
    /// of an earlier batch went (`record_dispositions`): one write
    /// transaction per batch instead of two, which on SQLite writes the
    /// pages both touch once. Nothing is recorded when nothing commits.
    pub async fn commit_batch_recording(
        &self,
        copies: &[DecidedCopy],
        dispositions: &[DispositionUpdate],
        template: &InteractionTemplate,
        now: DateTime<Utc>,
        fence: Option<&Fence>,
    ) -> Result<Vec<CommittedCopy>> {
        // Compression is CPU work: keep it off the async executor. In
        // `reference` mode there is nothing to compress, and no thread to
        // wake.
        let raws: Vec<Option<Vec<u8>>> = if copies.iter().all(|c| c.raw.is_none()) {
            vec![None; copies.len()]
        } else {
            let to_compress: Vec<Option<Vec<u8>>> = copies.iter().map(|c| c.raw.clone()).collect();
            tokio::task::spawn_blocking(move || {
                to_compress
                    .into_iter()
                    .map(|raw| raw.map(|r| compress(&r)).transpose())
                    .collect::<std::io::Result<Vec<_>>>()
            })
            .await
            .map_err(|err| StoreError::Corrupt(format!("compression task failed: {err}")))?
            .map_err(|err| StoreError::Corrupt(format!("compression failed: {err}")))?
        };

        match self
            .commit_batch_whole(copies, dispositions, &raws, template, now, fence)
            .await
        {
            Err(StoreError::Refused(_) | StoreError::Conflict(_)) => {
                tracing::info!("a copy in the batch was refused; committing copy by copy");
                self.commit_batch_copy_by_copy(copies, dispositions, &raws, template, now, fence)
                    .await
            }
            other => other,
        }
    }

    /// The fast path: the whole batch in a handful of multi-row statements.
    /// Any refusal rolls it all back, and the caller retries copy by copy.
    async fn commit_batch_whole(
        &self,
        copies: &[DecidedCopy],
        dispositions: &[DispositionUpdate],
        raws: &[Option<Vec<u8>>],
        template: &InteractionTemplate,
        now: DateTime<Utc>,
        fence: Option<&Fence>,
    ) -> Result<Vec<CommittedCopy>> {
        if copies.is_empty() {
            if !dispositions.is_empty() {
                self.record_dispositions(dispositions).await?;
            }
            return Ok(Vec::new());
        }
        let outcome_of = |copy: &DecidedCopy| copy.reason.outcome();
        let logged: Vec<(&DecidedCopy, &Option<Vec<u8>>)> = copies
            .iter()
            .zip(raws)
            .filter(|(c, _)| outcome_of(c) == Outcome::Logged)
            .collect();
        let duplicate_keys: BTreeSet<&str> = copies
            .iter()
            .filter(|c| outcome_of(c) == Outcome::Duplicate)
            .map(|c| c.message_key.as_str())
            .collect();
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            check_fence!(&mut *tx, fence);
            record_dispositions_in!(&mut *tx, dispositions);
            // 1. Message records of logged copies, by key (one logged copy
            //    per key: the unique index refuses a second).
            let mut record_of_key: HashMap<String, i64> = HashMap::new();
            for logged in logged.chunks(ROWS_PER_STATEMENT) {
                let mut insert = QueryBuilder::new(
                    "INSERT INTO messages (message_id, message_key, subject, sender, sent_at, received_at, \
                     date_fallback, size, raw_compressed, created_at, mailbox_name) ",
                );
                // Padded with rows of NULLs that the WHERE leaves out, so
                // that the statement text repeats (see `padded_len`).
                let padding = std::iter::repeat_n(None, padded_len(logged.len()) - logged.len());
                insert.push("SELECT * FROM (");
                insert.push_values(
                    logged.iter().map(Some).chain(padding),
                    |mut b, row| match row {
                        Some((copy, raw)) => {
                            b.push_bind(copy.message_id.as_deref())
                                .push_bind(Some(copy.message_key.as_str()))
                                .push_bind(Some(copy.subject.as_str()))
                                .push_bind(copy.sender.as_deref())
                                .push_bind(copy.sent_at)
                                .push_bind(Some(copy.received_at))
                                .push_bind(Some(copy.date_fallback))
                                .push_bind(Some(i64::try_from(copy.size).unwrap_or(i64::MAX)))
                                .push_bind(raw.as_deref())
                                .push_bind(Some(now))
                                .push_bind(Some(copy.mailbox_name.as_str()));
                        }
                        None => {
                            b.push_bind(None::<&str>)
                                .push_bind(None::<&str>)
                                .push_bind(None::<&str>)
                                .push_bind(None::<&str>)
                                .push_bind(None::<DateTime<Utc>>)
                                .push_bind(None::<DateTime<Utc>>)
                                .push_bind(None::<bool>)
                                .push_bind(None::<i64>)
                                .push_bind(None::<&[u8]>)
                                .push_bind(None::<DateTime<Utc>>)
                                .push_bind(None::<&str>);
                        }
                    },
                );
                insert.push(") AS v WHERE v.column2 IS NOT NULL");
                insert.push(" RETURNING id, message_key");
                for row in insert.build().fetch_all(&mut *tx).await? {
                    let key: String = row.try_get("message_key")?;
                    if record_of_key
                        .insert(key.clone(), row.try_get("id")?)
                        .is_some()
                    {
                        return Err(StoreError::Conflict(format!(
                            "two copies of {key} logged in one batch"
                        )));
                    }
                }
            }
            // 2. Duplicates point at the record of the logged copy.
            let earlier: Vec<&str> = duplicate_keys
                .iter()
                .copied()
                .filter(|k| !record_of_key.contains_key(*k))
                .collect();
            for earlier in earlier.chunks(ROWS_PER_STATEMENT) {
                let mut query = QueryBuilder::new(
                    "SELECT message_key, message_record_id FROM decisions WHERE outcome = 'logged' AND message_key IN (",
                );
                push_padded_list!(query, earlier, |key| *key);
                query.push(")");
                for row in query.build().fetch_all(&mut *tx).await? {
                    if let Some(id) = row.try_get::<Option<i64>, _>("message_record_id")? {
                        record_of_key.insert(row.try_get("message_key")?, id);
                    }
                }
            }
            if let Some(orphan) = duplicate_keys
                .iter()
                .find(|k| !record_of_key.contains_key(**k))
            {
                return Err(StoreError::Conflict(format!(
                    "{orphan} is a duplicate of a copy that was not logged"
                )));
            }
            // 3. The ledger rows. A row that is already final is left alone
            //    and does not come back from RETURNING.
            let mut written: HashMap<u32, (i64, u32)> = HashMap::new();
            for chunk in copies.chunks(ROWS_PER_STATEMENT) {
                let mut upsert = QueryBuilder::new(
                    "INSERT INTO decisions (mailbox, uid_validity, uid, message_id, message_key, sha256, sender, \
                 subject, outcome, reason, entries, ambiguous, date_fallback, attempts, error, first_seen_at, \
                 decided_at, run_id, message_record_id, mailbox_name) ",
                );
                upsert.push_values(chunk, |mut b, copy| {
                    let outcome = outcome_of(copy);
                    let record = if outcome.goes_to_storage() {
                        record_of_key.get(&copy.message_key).copied()
                    } else {
                        None
                    };
                    b.push_bind(copy.mailbox.as_str())
                        .push_bind(i64::from(copy.uid_validity))
                        .push_bind(i64::from(copy.uid))
                        .push_bind(copy.message_id.as_deref())
                        .push_bind(copy.message_key.as_str())
                        .push_bind(copy.sha256.as_str())
                        .push_bind(copy.sender.as_deref())
                        .push_bind(outcome.goes_to_storage().then_some(copy.subject.as_str()))
                        .push_bind(outcome.as_str())
                        .push_bind(copy.reason.as_str())
                        .push_bind(copy.entries.len() as i64)
                        .push_bind(copy.ambiguous)
                        .push_bind(copy.date_fallback)
                        .push_bind(1i64)
                        .push_bind(copy.error.as_deref())
                        .push_bind(now)
                        .push_bind(now)
                        .push_bind(copy.run_id)
                        .push_bind(record)
                        .push_bind(copy.mailbox_name.as_str());
                });
                upsert.push(
                " ON CONFLICT (mailbox, uid_validity, uid) DO UPDATE SET message_id = excluded.message_id, \
                 message_key = excluded.message_key, sha256 = excluded.sha256, sender = excluded.sender, \
                 subject = excluded.subject, outcome = excluded.outcome, reason = excluded.reason, \
                 entries = excluded.entries, ambiguous = excluded.ambiguous, \
                 date_fallback = excluded.date_fallback, attempts = decisions.attempts + 1, \
                 error = excluded.error, decided_at = excluded.decided_at, run_id = excluded.run_id, \
                 message_record_id = excluded.message_record_id, mailbox_name = excluded.mailbox_name \
                 WHERE decisions.outcome = 'failed' RETURNING id, uid, attempts",
            );
                for row in upsert.build().fetch_all(&mut *tx).await? {
                    let uid = u32::try_from(row.try_get::<i64, _>("uid")?).unwrap_or(0);
                    let attempts =
                        u32::try_from(row.try_get::<i64, _>("attempts")?).unwrap_or(u32::MAX);
                    written.insert(uid, (row.try_get("id")?, attempts));
                }
            }
            if written.len() != copies.len() {
                // Some copy was already final (a worker deciding twice):
                // let the careful path report what the ledger holds.
                return Err(StoreError::Conflict(
                    "a copy in the batch was already decided".into(),
                ));
            }
            // 4. The entries.
            let entries: Vec<(&DecidedCopy, &PlannedEntry, i64)> = logged
                .iter()
                .flat_map(|(copy, _)| {
                    let record = record_of_key[&copy.message_key];
                    copy.entries.iter().map(move |entry| (*copy, entry, record))
                })
                .collect();
            for chunk in entries.chunks(200) {
                insert_entries!(&mut *tx, chunk, template);
            }
            tx.commit().await?;
            Ok(copies
                .iter()
                .map(|copy| {
                    let (ledger_id, attempts) = written[&copy.uid];
                    CommittedCopy {
                        uid: copy.uid,
                        ledger_id,
                        reason: copy.reason,
                        attempts,
                        entries: copy.entries.len() as u64,
                    }
                })
                .collect())
        })
    }

    /// The careful path: each copy under its own savepoint, so that a copy
    /// the database refuses fails alone.
    async fn commit_batch_copy_by_copy(
        &self,
        copies: &[DecidedCopy],
        dispositions: &[DispositionUpdate],
        raws: &[Option<Vec<u8>>],
        template: &InteractionTemplate,
        now: DateTime<Utc>,
        fence: Option<&Fence>,
    ) -> Result<Vec<CommittedCopy>> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            check_fence!(&mut *tx, fence);
            record_dispositions_in!(&mut *tx, dispositions);
            let mut committed = Vec::with_capacity(copies.len());
            for (copy, raw) in copies.iter().zip(raws) {
                // Another mailbox may log this key at the same moment
                // (PRODUCT.md section 8): the unique index on logged keys
                // then refuses this copy, and it becomes that copy's
                // duplicate, never an error.
                let mut as_duplicate: Option<DecidedCopy> = None;
                loop {
                    let copy = as_duplicate.as_ref().unwrap_or(copy);
                    let mut savepoint = Acquire::begin(&mut *tx).await?;
                    let written: Result<CommittedCopy> = async {
                    let outcome = copy.reason.outcome();
                    let keeps_subject = outcome.goes_to_storage();
                    let row = sqlx::query(
                        "INSERT INTO decisions (mailbox, uid_validity, uid, message_id, message_key, sha256, sender, \
                         subject, outcome, reason, entries, ambiguous, date_fallback, attempts, error, first_seen_at, \
                         decided_at, run_id, mailbox_name) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 1, $14, $15, $15, $16, $17) \
                         ON CONFLICT (mailbox, uid_validity, uid) DO UPDATE SET message_id = excluded.message_id, \
                         message_key = excluded.message_key, sha256 = excluded.sha256, sender = excluded.sender, \
                         subject = excluded.subject, outcome = excluded.outcome, reason = excluded.reason, \
                         entries = excluded.entries, ambiguous = excluded.ambiguous, \
                         date_fallback = excluded.date_fallback, attempts = decisions.attempts + 1, \
                         error = excluded.error, decided_at = excluded.decided_at, run_id = excluded.run_id, \
                         mailbox_name = excluded.mailbox_name \
                         WHERE decisions.outcome = 'failed' \
                         RETURNING id, attempts",
                    )
                    .bind(&copy.mailbox)
                    .bind(i64::from(copy.uid_validity))
                    .bind(i64::from(copy.uid))
                    .bind(&copy.message_id)
                    .bind(&copy.message_key)
                    .bind(&copy.sha256)
                    .bind(&copy.sender)
                    .bind(keeps_subject.then_some(copy.subject.as_str()))
                    .bind(outcome.as_str())
                    .bind(copy.reason.as_str())
                    .bind(copy.entries.len() as i64)
                    .bind(copy.ambiguous)
                    .bind(copy.date_fallback)
                    .bind(&copy.error)
                    .bind(now)
                    .bind(copy.run_id)
                    .bind(&copy.mailbox_name)
                    .fetch_optional(&mut *savepoint)
                    .await?;
                    let Some(row) = row else {
                        // The row is already final: an earlier run decided
                        // this copy. Report what it decided.
                        let row = sqlx::query(
                            "SELECT id, reason, attempts, entries FROM decisions \
                             WHERE mailbox = $1 AND uid_validity = $2 AND uid = $3",
                        )
                        .bind(&copy.mailbox)
                        .bind(i64::from(copy.uid_validity))
                        .bind(i64::from(copy.uid))
                        .fetch_one(&mut *savepoint)
                        .await?;
                        let reason: String = row.try_get("reason")?;
                        return Ok(CommittedCopy {
                            uid: copy.uid,
                            ledger_id: row.try_get("id")?,
                            reason: reason.parse().map_err(|_| bad_reason(&reason))?,
                            attempts: u32::try_from(row.try_get::<i64, _>("attempts")?).unwrap_or(u32::MAX),
                            entries: u64::try_from(row.try_get::<i64, _>("entries")?).unwrap_or(0),
                        });
                    };
                    let ledger_id: i64 = row.try_get("id")?;
                    let attempts: i64 = row.try_get("attempts")?;

                    let message_record_id: Option<i64> = match outcome {
                        Outcome::Logged => {
                            let row = sqlx::query(
                                "INSERT INTO messages (message_id, message_key, subject, sender, sent_at, received_at, \
                                 date_fallback, size, raw_compressed, created_at, mailbox_name) \
                                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
                            )
                            .bind(&copy.message_id)
                            .bind(&copy.message_key)
                            .bind(&copy.subject)
                            .bind(&copy.sender)
                            .bind(copy.sent_at)
                            .bind(copy.received_at)
                            .bind(copy.date_fallback)
                            .bind(i64::try_from(copy.size).unwrap_or(i64::MAX))
                            .bind(raw.as_deref())
                            .bind(now)
                            .bind(&copy.mailbox_name)
                            .fetch_one(&mut *savepoint)
                            .await?;
                            let message_record_id: i64 = row.try_get("id")?;
                            if !copy.entries.is_empty() {
                                let rows: Vec<(&DecidedCopy, &PlannedEntry, i64)> =
                                    copy.entries.iter().map(|entry| (copy, entry, message_record_id)).collect();
                                insert_entries!(&mut *savepoint, &rows, template);
                            }
                            Some(message_record_id)
                        }
                        // A duplicate points at the message record of the
                        // copy that was logged, so "why no entries?" leads
                        // to the entries that exist. Without one (the logged
                        // copy was refused in this very batch) the copy must
                        // be decided again.
                        Outcome::Duplicate => {
                            let original = sqlx::query(
                                "SELECT message_record_id FROM decisions WHERE message_key = $1 AND outcome = 'logged' \
                                 ORDER BY id LIMIT 1",
                            )
                            .bind(&copy.message_key)
                            .fetch_optional(&mut *savepoint)
                            .await?;
                            match original {
                                Some(row) => row.try_get::<Option<i64>, _>("message_record_id")?,
                                None => {
                                    return Err(StoreError::Conflict(
                                        "judged a duplicate of a copy whose logging failed; it is decided again next run"
                                            .into(),
                                    ));
                                }
                            }
                        }
                        Outcome::NotLogged | Outcome::Failed => None,
                    };
                    if let Some(message_record_id) = message_record_id {
                        sqlx::query("UPDATE decisions SET message_record_id = $1 WHERE id = $2")
                            .bind(message_record_id)
                            .bind(ledger_id)
                            .execute(&mut *savepoint)
                            .await?;
                    }
                    Ok(CommittedCopy {
                        uid: copy.uid,
                        ledger_id,
                        reason: copy.reason,
                        attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
                        entries: copy.entries.len() as u64,
                    })
                }
                .await;

                    match written {
                        Ok(result) => {
                            savepoint.commit().await?;
                            committed.push(result);
                            break;
                        }
                        Err(err @ (StoreError::Refused(_) | StoreError::Conflict(_))) => {
                            savepoint.rollback().await?;
                            if as_duplicate.is_none() && copy.reason.outcome() == Outcome::Logged {
                                let logged_elsewhere = sqlx::query(
                                "SELECT id FROM decisions WHERE message_key = $1 AND outcome = 'logged' LIMIT 1",
                            )
                            .bind(&copy.message_key)
                            .fetch_optional(&mut *tx)
                            .await?
                            .is_some();
                                if logged_elsewhere {
                                    as_duplicate = Some(DecidedCopy {
                                        reason: Reason::Duplicate,
                                        entries: Vec::new(),
                                        ..copy.clone()
                                    });
                                    continue;
                                }
                            }
                            tracing::warn!(uid = copy.uid, error = %err, "the database refused a message; recorded as failed");
                            let row = sqlx::query(
                            "INSERT INTO decisions (mailbox, uid_validity, uid, message_id, message_key, sha256, \
                             sender, outcome, reason, entries, ambiguous, date_fallback, attempts, error, \
                             first_seen_at, decided_at, run_id, mailbox_name) \
                             VALUES ($1, $2, $3, NULL, $4, $5, NULL, 'failed', $6, 0, FALSE, FALSE, 1, $7, $8, $8, $9, $10) \
                             ON CONFLICT (mailbox, uid_validity, uid) DO UPDATE SET attempts = decisions.attempts + 1, \
                             outcome = 'failed', reason = excluded.reason, error = excluded.error, \
                             decided_at = excluded.decided_at, run_id = excluded.run_id \
                             WHERE decisions.outcome = 'failed' \
                             RETURNING id, attempts",
                        )
                        .bind(&copy.mailbox)
                        .bind(i64::from(copy.uid_validity))
                        .bind(i64::from(copy.uid))
                        .bind(&copy.message_key)
                        .bind(&copy.sha256)
                        .bind(Reason::Error(ErrorClass::Store).as_str())
                        .bind(err.to_string())
                        .bind(now)
                        .bind(copy.run_id)
                        .bind(&copy.mailbox_name)
                        .fetch_one(&mut *tx)
                        .await?;
                            committed.push(CommittedCopy {
                                uid: copy.uid,
                                ledger_id: row.try_get("id")?,
                                reason: Reason::Error(ErrorClass::Store),
                                attempts: u32::try_from(row.try_get::<i64, _>("attempts")?)
                                    .unwrap_or(u32::MAX),
                                entries: 0,
                            });
                            break;
                        }
                        Err(other) => return Err(other),
                    }
                }
            }
            tx.commit().await?;
            Ok(committed)
        })
    }

    /// Records where copies went, after the mailbox change. A second,
    /// separate transaction: losing it only loses the storage UID, and the
    /// message is then found again by Message-ID.
    pub async fn record_dispositions(&self, updates: &[DispositionUpdate]) -> Result<()> {
        if updates.is_empty() {
            return Ok(());
        }
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            record_dispositions_in!(&mut *tx, updates);
            tx.commit().await?;
            Ok(())
        })
    }

    /// Deletes ledger rows of not-logged messages decided before `before`.
    pub async fn purge_not_logged(&self, before: DateTime<Utc>) -> Result<u64> {
        with_pool!(self, |pool| {
            Ok(sqlx::query(
                "DELETE FROM decisions WHERE outcome = 'not_logged' AND decided_at < $1",
            )
            .bind(before)
            .execute(pool)
            .await?
            .rows_affected())
        })
    }

    /// The raw bytes of a logged message kept in `full` storage mode.
    pub async fn stored_raw_message(&self, message_record_id: i64) -> Result<Option<Vec<u8>>> {
        let compressed: Option<Vec<u8>> = with_pool!(self, |pool| {
            sqlx::query("SELECT raw_compressed FROM messages WHERE id = $1")
                .bind(message_record_id)
                .fetch_optional(pool)
                .await?
                .map(|r| r.try_get::<Option<Vec<u8>>, _>("raw_compressed"))
                .transpose()?
                .flatten()
        });
        compressed
            .map(|c| decompress(&c))
            .transpose()
            .map_err(|err| {
                StoreError::Corrupt(format!("stored message {message_record_id}: {err}"))
            })
    }
}
