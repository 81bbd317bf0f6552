//! `run_once`: every message that was in the queue when the run started,
//! batch by batch: fetch, parse, decide, commit, and only then move.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Duration, Utc};
use mailscribe_core::decision::ErrorClass;
use mailscribe_core::directory::DirectoryView;
use mailscribe_core::parse::sha256_hex;
use mailscribe_core::{
    DecisionInput, Direction, EmailAddress, InteractionTemplate, MailboxName, MailboxSetup,
    Outcome, ParsedMessage, Reason, Settings, StorageMode, decide, parse_message,
};
use mailscribe_mail::{
    ConnectionConfig, FetchedMessage, FolderInfo, MailError, MessageSummary, Session, plan_batches,
};
use mailscribe_store::{
    CommittedCopy, DecidedCopy, DispositionUpdate, Fence, LedgerState, RunCounts, Store,
};
use tokio::sync::watch;

use crate::lease::{self, HolderId, LeaseTimings};
use crate::{WorkerError, failpoint, metrics};

/// Everything one run needs, read from the store and the environment by
/// the caller.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The name of the mailbox setup (a label on what the run writes).
    pub mailbox_name: MailboxName,
    pub connection: ConnectionConfig,
    pub setup: MailboxSetup,
    pub settings: Settings,
    pub template: InteractionTemplate,
    /// Handle at most this many messages; the rest wait for the next run.
    pub max_per_run: Option<usize>,
    /// Who holds the lease.
    pub holder: HolderId,
    pub lease_timings: LeaseTimings,
    /// A batch is cut when its messages (by RFC822.SIZE) exceed this.
    pub max_batch_bytes: u64,
}

impl RunOptions {
    pub const DEFAULT_MAX_BATCH_BYTES: u64 = 16 * 1024 * 1024;
}

/// The most copies one commit takes when batches are grouped (a larger
/// mailbox batch size is kept as it is): past a few hundred copies, a
/// larger transaction saves little and holds the write lock longer.
const GROUP_MAX_COPIES: usize = 1000;

/// A message that failed in this run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedMessage {
    pub uid: u32,
    pub reason: Reason,
    pub error: String,
    pub attempts: u32,
    pub quarantined: bool,
}

/// Where a run's time went, for the log and the benchmark.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PhaseTimes {
    pub fetch: std::time::Duration,
    pub parse: std::time::Duration,
    pub decide: std::time::Duration,
    pub commit: std::time::Duration,
    pub mailbox: std::time::Duration,
    pub record: std::time::Duration,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunSummary {
    pub phases: PhaseTimes,
    pub run_id: i64,
    /// Copies decided in this run, by outcome and reason.
    pub counts: RunCounts,
    /// Copies an interrupted run had decided; this run only finished
    /// moving them.
    pub resumed: u64,
    /// Listed at the start but gone when fetched (someone else took them).
    pub vanished: u64,
    pub failed: Vec<FailedMessage>,
    /// A stop was requested; the remaining batches wait for the next run.
    pub stopped_early: bool,
    /// Logged or duplicate copies whose move the storage folder refused.
    pub moves_failed: u64,
    /// IMAP batches fetched, and the write transactions that committed
    /// them: fewer commits than batches when batches were grouped.
    pub batches: u64,
    pub commits: u64,
}

/// Performs one run. Takes the mailbox lease first and gives it back at
/// the end; a run that cannot get it fails with `LeaseHeld`.
pub async fn run_once(
    store: &Store,
    options: &RunOptions,
    stop: &watch::Receiver<bool>,
) -> Result<RunSummary, WorkerError> {
    let lease_name = lease::mailbox_lease_name(&options.setup.mailbox_key());
    let fence = lease::acquire(store, &lease_name, &options.holder, &options.lease_timings).await?;
    // Renewed in the background, so that one slow batch (a large message
    // on a slow server) never lets the lease lapse mid-run.
    let (lost, _lost_seen) = watch::channel(false);
    let heartbeat = lease::heartbeat(store.clone(), fence.clone(), options.lease_timings, lost);
    let result = run_under_lease(store, options, &fence, stop).await;
    heartbeat.abort();
    let _ = heartbeat.await;
    if let Err(err) = store.release_lease(&fence).await {
        tracing::warn!(error = %err, "could not release the mailbox lease; it expires by itself");
    }
    result
}

/// Performs one run under a lease the caller holds and renews (`serve`
/// holds its mailboxes' leases between runs). Every commit checks `fence`:
/// once the lease is lost, the run ends with `LeaseLost` and writes
/// nothing more.
pub async fn run_under_lease(
    store: &Store,
    options: &RunOptions,
    fence: &Fence,
    stop: &watch::Receiver<bool>,
) -> Result<RunSummary, WorkerError> {
    let mailbox = options.setup.mailbox_key();
    let started = std::time::Instant::now();
    let run_id = store
        .start_run(&mailbox, options.mailbox_name.as_str(), Utc::now())
        .await?;
    let mut summary = RunSummary {
        run_id,
        ..RunSummary::default()
    };
    // Every line the run logs carries its run and mailbox (never the
    // mailbox key: it holds the mailbox user's address).
    let span = tracing::info_span!("run", run_id, mailbox = %options.mailbox_name);
    let result = tracing::Instrument::instrument(
        process_queue(store, options, fence, stop, &mailbox, &mut summary),
        span,
    )
    .await;
    metrics::run_finished(
        options.mailbox_name.as_str(),
        started.elapsed(),
        result.as_ref().map(|_| ()),
        Utc::now(),
    );
    let (status, error) = match &result {
        Ok(()) => ("completed", None),
        Err(err) => ("aborted", Some(err.to_string())),
    };
    if let Err(err) = store
        .finish_run(
            run_id,
            Utc::now(),
            status,
            &summary.counts,
            error.as_deref(),
        )
        .await
    {
        tracing::warn!(error = %err, "could not record the end of the run");
    }
    result.map(|()| summary)
}

/// Folders the run works with, resolved once.
struct Folders {
    queue: FolderInfo,
    storage: FolderInfo,
    not_logged: Option<FolderInfo>,
    quarantine: Option<FolderInfo>,
}

async fn process_queue(
    store: &Store,
    options: &RunOptions,
    fence: &Fence,
    stop: &watch::Receiver<bool>,
    mailbox: &str,
    summary: &mut RunSummary,
) -> Result<(), WorkerError> {
    let retention = Duration::days(i64::from(options.settings.not_logged_retention_days));
    let purged = store.purge_not_logged(Utc::now() - retention).await?;
    if purged > 0 {
        tracing::info!(purged, "purged ledger rows of old not-logged messages");
    }

    let setup = &options.setup;
    let mut session = Session::connect(&options.connection).await?;
    if let Some(certificate) = session.certificate() {
        metrics::certificate(options.mailbox_name.as_str(), certificate.not_after);
    }
    let folders = Folders {
        queue: session.resolve_folder(&setup.queue_folder).await?,
        storage: session.resolve_folder(&setup.storage_folder).await?,
        not_logged: match &setup.not_logged_folder {
            Some(path) => Some(session.resolve_folder(path).await?),
            None => None,
        },
        quarantine: match &setup.quarantine_folder {
            Some(path) => Some(session.resolve_folder(path).await?),
            None => None,
        },
    };
    let selected = session.select(&folders.queue).await?;
    let uid_validity = selected.uid_validity;
    let mut listing = session.list_messages(selected).await?;
    let oldest = listing.iter().filter_map(|m| m.internal_date).min();
    metrics::listed(
        options.mailbox_name.as_str(),
        listing.len(),
        oldest,
        Utc::now(),
    );
    if let Some(cap) = options.max_per_run {
        listing.truncate(cap);
    }
    tracing::info!(messages = listing.len(), uid_validity, "queue listed");

    // The ledger rows of every listed copy, read once for the run rather
    // than once per batch on the IMAP side of the pipeline.
    let listed_uids: Vec<u32> = listing.iter().map(|m| m.uid).collect();
    let ledger = store
        .ledger_states(mailbox, uid_validity, &listed_uids)
        .await?;

    let batch_size = usize::try_from(setup.batch_size)
        .unwrap_or(usize::MAX)
        .max(1);
    let batches = plan_batches(&listing, batch_size, options.max_batch_bytes);
    // A pipeline on two resources. In each step the database half parses,
    // looks up, decides and commits one group of batches while the IMAP
    // connection moves the group committed in the step before and fetches
    // the next group. The IMAP half does nothing but IMAP, so that the
    // server is kept busy: on a fast server it is the longer half. A group
    // is one batch, and more while the database is still busy (group
    // commit): when the database is the slower side, its fixed cost per
    // transaction is shared by up to `GROUP_MAX_COPIES` copies. FETCH
    // keeps the mailbox's batch size; a group is moved with one UID MOVE.
    // Nothing is moved before its commit; a prefetch is a PEEK and
    // harmless.
    let group_max_copies =
        failpoint::group_max_copies().unwrap_or_else(|| batch_size.max(GROUP_MAX_COPIES));
    let shared_options = std::sync::Arc::new(options.clone());
    let mut next_batch = 0usize;
    let mut prefetched: Option<FetchedBatch> = None;
    let mut to_move: Option<CommittedBatch> = None;
    let mut unrecorded: Vec<DispositionUpdate> = Vec::new();
    let mut to_delete: Vec<(u32, i64)> = Vec::new();
    let mut steps = 0usize;
    // Batches in the group fetched last, which the next group grows to.
    let mut previous_group = 1usize;
    while prefetched.is_some() || next_batch < batches.len() {
        // A stop request ends the run at a group boundary; the rest waits
        // for the next run. So does logging disabled meanwhile, which the
        // database side checks below before deciding the group.
        if *stop.borrow() {
            summary.stopped_early = true;
            break;
        }
        let current = match prefetched.take() {
            Some(fetched) => fetched,
            None => {
                let fetched = fetch_batch(&ledger, &mut session, &batches[next_batch]).await?;
                next_batch += 1;
                summary.phases.add(&fetched.phases);
                fetched
            }
        };
        let to_record = std::mem::take(&mut unrecorded);
        let previous = to_move.take();
        let check_enabled = steps > 0;
        steps += 1;
        // The database half runs as a task of its own, on another thread
        // than the IMAP half. `database_busy` tells the IMAP half whether
        // to fetch one more batch into the next group.
        let database_busy = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let work = record_decide_and_commit(
            store.clone(),
            std::sync::Arc::clone(&shared_options),
            fence.clone(),
            mailbox.to_owned(),
            uid_validity,
            summary.run_id,
            to_record,
            check_enabled,
            current,
        );
        let busy = std::sync::Arc::clone(&database_busy);
        let mut database_half = AbortOnDrop(tokio::spawn(tracing::Instrument::instrument(
            async move {
                let result = work.await;
                busy.store(false, std::sync::atomic::Ordering::Release);
                result
            },
            tracing::Span::current(),
        )));
        let mut next_group = 0usize;
        let (committed, imap) = tokio::join!(
            async {
                (&mut database_half.0).await.map_err(|err| {
                    WorkerError::Store(mailscribe_store::StoreError::Corrupt(format!(
                        "database task: {err}"
                    )))
                })?
            },
            async {
                let moved = match &previous {
                    Some(previous) => {
                        Some(apply_dispositions(&mut session, &folders, &previous.plan).await?)
                    }
                    None => None,
                };
                // The next group, fetched a batch at a time as long as
                // `group_takes` allows.
                let mut next: Option<FetchedBatch> = None;
                let mut so_far = GroupSoFar::default();
                let limits = GroupLimits {
                    max_copies: group_max_copies,
                    max_bytes: options.max_batch_bytes,
                };
                while let Some(batch) = batches.get(next_batch) {
                    let candidate = GroupSoFar {
                        batches: 1,
                        copies: batch.len(),
                        bytes: batch_bytes(batch),
                    };
                    let busy = database_busy.load(std::sync::atomic::Ordering::Acquire);
                    let remaining = batches.len() - next_batch;
                    if *stop.borrow()
                        || !group_takes(so_far, candidate, remaining, busy, previous_group, limits)
                    {
                        break;
                    }
                    let fetched = fetch_batch(&ledger, &mut session, batch).await?;
                    next_batch += 1;
                    match &mut next {
                        Some(group) => group.absorb(fetched),
                        None => next = Some(fetched),
                    }
                    so_far = so_far.plus(candidate);
                }
                next_group = so_far.batches;
                Ok::<_, WorkerError>((moved, next))
            }
        );
        let committed = committed?;
        let (moved, next) = imap?;
        previous_group = next_group.max(1);
        if let Some((updates, deletions, took)) = moved {
            summary.moves_failed +=
                updates.iter().filter(|u| u.move_error.is_some()).count() as u64;
            unrecorded = updates;
            to_delete.extend(deletions);
            summary.phases.mailbox += took;
        }
        prefetched = next;
        let Some(committed) = committed else {
            // Logging was disabled: the group stays in the queue, undecided
            // (its prefetch was a PEEK).
            summary.stopped_early = true;
            break;
        };
        summary.commits += 1;
        summary.phases.add(&committed.phases);
        if let Some(fetched) = &prefetched {
            summary.phases.add(&fetched.phases);
        }
        metrics::committed(
            options.mailbox_name.as_str(),
            &committed.copies,
            &committed.results,
        );
        summary.vanished += committed.vanished;
        summary.resumed += committed.resumed;
        for (copy, result) in committed.copies.iter().zip(&committed.results) {
            count(
                summary,
                copy,
                result,
                target_for(result.reason, result.attempts, 0, options) == Target::Quarantine,
            );
        }
        to_move = Some(committed);
    }
    summary.batches = next_batch as u64;
    if let Some(last) = to_move.take() {
        let (updates, deletions, took) =
            apply_dispositions(&mut session, &folders, &last.plan).await?;
        summary.phases.mailbox += took;
        summary.moves_failed += updates.iter().filter(|u| u.move_error.is_some()).count() as u64;
        unrecorded.extend(updates);
        to_delete.extend(deletions);
    }
    // The last batch's dispositions have no next commit to ride with.
    let phase = std::time::Instant::now();
    record(store, &unrecorded).await?;
    summary.phases.record += phase.elapsed();
    // Not-logged copies go in one expunge at the end: on some servers
    // (Dovecot's maildir) every expunge costs in proportion to the folder.
    // Until then they sit in the queue, decided, and a crash only means the
    // next run deletes them.
    let phase = std::time::Instant::now();
    let uids: Vec<u32> = to_delete.iter().map(|(uid, _)| *uid).collect();
    session.mark_deleted(&uids).await?;
    session.expunge(&uids).await?;
    // A server may answer OK and keep the messages (Dovecot does, when the
    // user lacks the ACL right to delete): look, rather than claim.
    let kept = session.existing_uids(&uids).await?;
    summary.phases.mailbox += phase.elapsed();
    let deleted: Vec<DispositionUpdate> = to_delete
        .iter()
        .filter(|(uid, _)| !kept.contains(uid))
        .map(|(_, ledger_id)| DispositionUpdate {
            ledger_id: *ledger_id,
            disposition: "deleted".into(),
            storage: None,
            move_error: None,
        })
        .collect();
    record(store, &deleted).await?;
    if !kept.is_empty() {
        session.logout().await;
        return Err(WorkerError::DeletionIgnored { count: kept.len() });
    }
    // The queue as the run leaves it, for the queue gauges: what waits for
    // the next run (failed copies kept, the rest of a capped run), not what
    // was there when this one started.
    if let Ok(after) = session.select(&folders.queue).await
        && let Ok(left) = session.list_messages(after).await
    {
        metrics::listed(
            options.mailbox_name.as_str(),
            left.len(),
            left.iter().filter_map(|m| m.internal_date).min(),
            Utc::now(),
        );
    }
    session.logout().await;
    let phases = summary.phases;
    tracing::info!(
        fetch_ms = phases.fetch.as_millis() as u64,
        parse_ms = phases.parse.as_millis() as u64,
        decide_ms = phases.decide.as_millis() as u64,
        commit_ms = phases.commit.as_millis() as u64,
        mailbox_ms = phases.mailbox.as_millis() as u64,
        record_ms = phases.record.as_millis() as u64,
        batches = summary.batches,
        commits = summary.commits,
        "run phases"
    );
    Ok(())
}

/// Where a copy goes in the mailbox once its decision is committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Storage,
    NotLoggedFolder,
    Delete,
    Quarantine,
    Keep,
}

/// `move_attempts` counts the moves the server refused for a decided copy:
/// after the maximum it goes to quarantine, its decision unchanged.
fn target_for(reason: Reason, attempts: u32, move_attempts: u32, options: &RunOptions) -> Target {
    let quarantine = options.setup.quarantine_folder.is_some();
    match reason.outcome() {
        Outcome::Logged | Outcome::Duplicate | Outcome::NotLogged
            if move_attempts >= options.settings.max_attempts && quarantine =>
        {
            Target::Quarantine
        }
        Outcome::Logged | Outcome::Duplicate => Target::Storage,
        Outcome::NotLogged if options.setup.not_logged_folder.is_some() => Target::NotLoggedFolder,
        Outcome::NotLogged => Target::Delete,
        Outcome::Failed
            if attempts >= options.settings.max_attempts
                && options.setup.quarantine_folder.is_some() =>
        {
            Target::Quarantine
        }
        Outcome::Failed => Target::Keep,
    }
}

/// A batch fetched, with what the ledger already knew of it.
struct FetchedBatch {
    known: HashMap<u32, LedgerState>,
    /// Copies an interrupted run decided: only their move is left.
    resumed: Vec<u32>,
    fetched: Vec<FetchedMessage>,
    vanished: u64,
    phases: PhaseTimes,
}

/// What the database knew of a fetched batch's addresses and keys when it
/// was looked up (`look_up`).
struct Lookups {
    directory: DirectoryView,
    /// Keys among the batch's that a copy was logged under.
    logged_before: HashSet<String>,
}

/// A group being fetched, or a batch that may join it, as the IMAP half
/// counts them.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct GroupSoFar {
    batches: usize,
    copies: usize,
    bytes: u64,
}

impl GroupSoFar {
    fn plus(self, other: GroupSoFar) -> GroupSoFar {
        GroupSoFar {
            batches: self.batches + other.batches,
            copies: self.copies + other.copies,
            bytes: self.bytes.saturating_add(other.bytes),
        }
    }
}

/// What one group may hold: copies, and bytes by RFC822.SIZE (memory is
/// bounded by a group as by a batch).
#[derive(Debug, Clone, Copy)]
struct GroupLimits {
    max_copies: usize,
    max_bytes: u64,
}

/// Whether the group being fetched takes the next planned batch
/// (`candidate`), with `remaining` batches left in the plan counting it.
/// A group always has its first batch. It grows while the database is
/// still busy with the group before (group commit), and to the size of
/// the group before: once the database has fallen behind, larger
/// transactions spend less of the CPU it shares with the IMAP side. Near
/// the end of the plan it holds at most as many batches as remain after
/// it, so that the last commit and the last move, which nothing overlaps,
/// are short. Never past `limits`.
fn group_takes(
    so_far: GroupSoFar,
    candidate: GroupSoFar,
    remaining: usize,
    database_busy: bool,
    previous_group: usize,
    limits: GroupLimits,
) -> bool {
    if so_far.batches == 0 {
        return true;
    }
    let grown = so_far.plus(candidate);
    (database_busy || so_far.batches < previous_group)
        && so_far.batches < remaining
        && grown.copies <= limits.max_copies
        && grown.bytes <= limits.max_bytes
}

/// A planned batch's size by RFC822.SIZE, as `plan_batches` counts it.
fn batch_bytes(batch: &[MessageSummary]) -> u64 {
    batch.iter().map(|m| m.size).sum()
}

impl FetchedBatch {
    /// Adds a batch fetched after this one: copies keep their order (UID
    /// order within the run), so a group decides as its batches would one
    /// after another.
    fn absorb(&mut self, later: FetchedBatch) {
        self.known.extend(later.known);
        self.resumed.extend(later.resumed);
        self.fetched.extend(later.fetched);
        self.vanished += later.vanished;
        self.phases.add(&later.phases);
    }
}

/// A batch decided and committed: what to do with each copy in the mailbox.
struct CommittedBatch {
    copies: Vec<DecidedCopy>,
    results: Vec<CommittedCopy>,
    plan: Vec<(u32, i64, Target)>,
    resumed: u64,
    vanished: u64,
    phases: PhaseTimes,
}

impl PhaseTimes {
    fn add(&mut self, other: &PhaseTimes) {
        self.fetch += other.fetch;
        self.parse += other.parse;
        self.decide += other.decide;
        self.commit += other.commit;
        self.mailbox += other.mailbox;
        self.record += other.record;
    }
}

async fn record(store: &Store, updates: &[DispositionUpdate]) -> Result<(), WorkerError> {
    if updates.is_empty() {
        return Ok(());
    }
    store.record_dispositions(updates).await?;
    failpoint::hit("after_dispositions");
    Ok(())
}

/// Fetches and parses a batch. `ledger` holds what the ledger knew at the
/// start of the run of every listed copy that has a row: under the lease
/// only this run writes those rows, and each copy is in one batch, so the
/// rows read once are the rows a read per batch would find.
async fn fetch_batch(
    ledger: &HashMap<u32, LedgerState>,
    session: &mut Session,
    batch: &[MessageSummary],
) -> Result<FetchedBatch, WorkerError> {
    let uids: Vec<u32> = batch.iter().map(|m| m.uid).collect();
    let known: HashMap<u32, LedgerState> = uids
        .iter()
        .filter_map(|uid| ledger.get(uid).map(|state| (*uid, state.clone())))
        .collect();
    // Final rows were decided by an interrupted run: only their move is
    // left to do. Everything else (new, or failed before) is decided now.
    let (resumed, to_decide): (Vec<u32>, Vec<u32>) = uids
        .iter()
        .partition(|uid| known.get(uid).is_some_and(LedgerState::is_final));
    let mut phases = PhaseTimes::default();
    let phase = std::time::Instant::now();
    let fetched = fetch_tolerating_refusals(session, &to_decide).await?;
    phases.fetch = phase.elapsed();
    let vanished = to_decide.len().saturating_sub(fetched.len()) as u64;
    Ok(FetchedBatch {
        known,
        resumed,
        fetched,
        vanished,
        phases,
    })
}

/// The database's half of one step of the pipeline: checks that logging
/// is still enabled (`check_enabled`), parses `batch`, looks up what
/// deciding it needs, decides it, and commits it together with where the
/// copies of an earlier batch went (`to_record`), in one write
/// transaction. The parse runs on a blocking thread beside the enablement
/// read; the two lookups run side by side on connections of the pool; the
/// commit starts once they are done. It starts after the previous step's
/// commit, so its lookups see every copy logged before. `None` when
/// logging was disabled meanwhile: nothing is decided, and `to_record` is
/// recorded on its own.
///
/// Owns its arguments, so that it can run as a task of its own, on another
/// thread than the IMAP half.
#[allow(clippy::too_many_arguments)]
async fn record_decide_and_commit(
    store: Store,
    options: std::sync::Arc<RunOptions>,
    fence: Fence,
    mailbox: String,
    uid_validity: u32,
    run_id: i64,
    to_record: Vec<DispositionUpdate>,
    check_enabled: bool,
    batch: FetchedBatch,
) -> Result<Option<CommittedBatch>, WorkerError> {
    let FetchedBatch {
        known,
        resumed,
        fetched,
        vanished,
        phases: _,
    } = batch;
    let (store, options, fence, mailbox) = (&store, options.as_ref(), &fence, mailbox.as_str());
    let mut phases = PhaseTimes::default();
    let phase = std::time::Instant::now();
    let enablement = async {
        Ok::<_, WorkerError>(
            !check_enabled || store.enablement(&options.mailbox_name).await?.enabled,
        )
    };
    let (enabled, parsed) = tokio::try_join!(enablement, parse_batch(fetched))?;
    phases.parse = phase.elapsed();
    if !enabled {
        record(store, &to_record).await?;
        return Ok(None);
    }
    let phase = std::time::Instant::now();
    let now = Utc::now();
    let lookups = look_up(store, &parsed).await?;
    let copies = decide_batch(
        options,
        mailbox,
        uid_validity,
        run_id,
        &parsed,
        &lookups,
        now,
    );
    drop(parsed);
    phases.decide = phase.elapsed();
    failpoint::hit("before_commit");
    if let Some(delay) = failpoint::slow_commit() {
        tokio::time::sleep(delay).await;
    }
    let phase = std::time::Instant::now();
    let results = store
        .commit_batch_recording(&copies, &to_record, &options.template, now, Some(fence))
        .await?;
    phases.commit = phase.elapsed();
    failpoint::hit("after_commit");
    if !to_record.is_empty() {
        failpoint::hit("after_dispositions");
    }

    let mut plan: Vec<(u32, i64, Target)> = Vec::with_capacity(resumed.len() + results.len());
    for uid in &resumed {
        let state = &known[uid];
        plan.push((
            *uid,
            state.id,
            target_for(state.reason, state.attempts, state.move_attempts, options),
        ));
    }
    for result in &results {
        plan.push((
            result.uid,
            result.ledger_id,
            target_for(result.reason, result.attempts, 0, options),
        ));
    }
    Ok(Some(CommittedBatch {
        copies,
        results,
        plan,
        resumed: resumed.len() as u64,
        vanished,
        phases,
    }))
}

/// A task that is aborted when its handle is dropped (a run cancelled
/// mid-step), so that nothing outlives the run that started it.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Fetches a batch. When the server refuses the batch (one message it
/// cannot deliver makes some servers answer NO for the whole command), the
/// UIDs are fetched one by one, and a refused one comes back without
/// content, to be recorded as `error:fetch`: one bad message never blocks
/// the others.
async fn fetch_tolerating_refusals(
    session: &mut Session,
    uids: &[u32],
) -> Result<Vec<FetchedMessage>, WorkerError> {
    match session.fetch(uids).await {
        Err(MailError::Refused { text, .. }) => {
            tracing::warn!(reason = %text, "the server refused a batch FETCH; fetching one message at a time");
            let mut fetched = Vec::with_capacity(uids.len());
            for uid in uids {
                match session.fetch(&[*uid]).await {
                    Ok(mut one) => fetched.append(&mut one),
                    Err(MailError::Refused { text, .. }) => {
                        tracing::warn!(uid, reason = %text, "the server refused to return a message");
                        fetched.push(FetchedMessage {
                            uid: *uid,
                            raw: None,
                            internal_date: None,
                            draft: false,
                            size: None,
                        });
                    }
                    Err(other) => return Err(other.into()),
                }
            }
            Ok(fetched)
        }
        other => Ok(other?),
    }
}

/// Parses a fetched batch on a blocking thread: parsing is CPU work.
async fn parse_batch(
    fetched: Vec<FetchedMessage>,
) -> Result<Vec<(FetchedMessage, Option<ParsedMessage>)>, WorkerError> {
    tokio::task::spawn_blocking(move || {
        fetched
            .into_iter()
            .map(|message| {
                let parsed = message.raw.as_deref().map(parse_message);
                (message, parsed)
            })
            .collect()
    })
    .await
    .map_err(|err| {
        WorkerError::Store(mailscribe_store::StoreError::Corrupt(format!(
            "parse task: {err}"
        )))
    })
}

/// Reads what deciding a parsed batch needs from the database: the
/// directory entries of its addresses and which of its keys were logged
/// before. Two reads on two connections of the pool, side by side.
async fn look_up(
    store: &Store,
    batch: &[(FetchedMessage, Option<ParsedMessage>)],
) -> Result<Lookups, WorkerError> {
    let parsed = || batch.iter().filter_map(|(_, p)| p.as_ref());
    let addresses: Vec<EmailAddress> = parsed()
        .flat_map(|p| p.sender().into_iter().chain(&p.to).chain(&p.cc))
        .cloned()
        .collect();
    let keys: Vec<String> = parsed().map(|p| p.key().to_storage()).collect();
    let (directory, logged_before) =
        tokio::try_join!(store.lookup_addresses(&addresses), store.logged_keys(&keys))?;
    Ok(Lookups {
        directory,
        logged_before,
    })
}

/// Decides a batch from its lookups.
fn decide_batch(
    options: &RunOptions,
    mailbox: &str,
    uid_validity: u32,
    run_id: i64,
    parsed: &[(FetchedMessage, Option<ParsedMessage>)],
    lookups: &Lookups,
    now: DateTime<Utc>,
) -> Vec<DecidedCopy> {
    let Lookups {
        directory,
        logged_before,
    } = lookups;
    let mut logged_in_batch: HashSet<String> = HashSet::new();

    let mut copies = Vec::with_capacity(parsed.len());
    // `fetch` returns UID order, so copies of one message in one batch are
    // decided oldest first.
    for (message, parsed) in parsed {
        let received_at = message.internal_date.unwrap_or(now);
        let Some(parsed) = parsed else {
            copies.push(DecidedCopy {
                mailbox: mailbox.to_owned(),
                mailbox_name: options.mailbox_name.as_str().to_owned(),
                uid_validity,
                uid: message.uid,
                run_id,
                message_id: None,
                message_key: format!("uid:{uid_validity}:{}", message.uid),
                sha256: sha256_hex(b""),
                sender: None,
                subject: String::new(),
                reason: Reason::Error(ErrorClass::Fetch),
                ambiguous: false,
                error: Some("the server listed the message but returned no content".into()),
                entries: Vec::new(),
                occurred_at: received_at,
                sent_at: None,
                received_at,
                date_fallback: false,
                size: message.size.unwrap_or(0),
                raw: None,
            });
            continue;
        };
        let key = parsed.key().to_storage();
        let already_logged = logged_before.contains(&key) || logged_in_batch.contains(&key);
        let decision = decide(&DecisionInput {
            message: parsed,
            is_draft: message.draft,
            skip_sensitive: options.settings.skip_sensitive,
            already_logged,
            directory,
        });
        let outcome = decision.outcome();
        // Debug only: a Message-ID may hold an address.
        tracing::debug!(uid = message.uid, message_key = %key, reason = decision.reason.as_str(), "decided");
        if outcome == Outcome::Logged {
            logged_in_batch.insert(key.clone());
        }
        // Outbound: when it was sent (Date:); inbound: when it was
        // received (INTERNALDATE). A bad Date: falls back, flagged.
        let outbound = decision
            .entries
            .first()
            .is_some_and(|e| e.direction == Direction::Outbound);
        let (occurred_at, date_fallback) = match (outbound, parsed.date) {
            (true, Some(sent)) => (sent, false),
            (true, None) => (received_at, true),
            (false, _) => (received_at, false),
        };
        let keep_raw =
            outcome == Outcome::Logged && options.settings.storage_mode == StorageMode::Full;
        copies.push(DecidedCopy {
            mailbox: mailbox.to_owned(),
            mailbox_name: options.mailbox_name.as_str().to_owned(),
            uid_validity,
            uid: message.uid,
            run_id,
            message_id: parsed
                .message_id
                .as_ref()
                .map(|m| m.as_written().to_owned()),
            message_key: key,
            sha256: parsed.sha256.clone(),
            sender: parsed.sender().map(EmailAddress::to_string),
            subject: parsed.subject.clone(),
            reason: decision.reason,
            ambiguous: decision.ambiguous,
            error: (outcome == Outcome::Failed)
                .then(|| "the message has no header section".to_owned()),
            entries: decision.entries,
            occurred_at,
            sent_at: parsed.date,
            received_at,
            date_fallback,
            size: message
                .size
                .unwrap_or_else(|| message.raw.as_ref().map_or(0, |r| r.len() as u64)),
            raw: if keep_raw { message.raw.clone() } else { None },
        });
    }
    copies
}

fn count(summary: &mut RunSummary, copy: &DecidedCopy, result: &CommittedCopy, quarantined: bool) {
    let counts = &mut summary.counts;
    counts.seen += 1;
    counts.entries += result.entries;
    *counts
        .by_reason
        .entry(result.reason.as_str().to_owned())
        .or_default() += 1;
    match result.reason.outcome() {
        Outcome::Logged => counts.logged += 1,
        Outcome::Duplicate => counts.duplicate += 1,
        Outcome::NotLogged => counts.not_logged += 1,
        Outcome::Failed => {
            counts.failed += 1;
            summary.failed.push(FailedMessage {
                uid: result.uid,
                reason: result.reason,
                error: match result.reason {
                    Reason::Error(ErrorClass::Store) => {
                        "the database refused the message's data".to_owned()
                    }
                    _ => copy.error.clone().unwrap_or_default(),
                },
                attempts: result.attempts,
                quarantined,
            });
        }
    }
}

/// Moves in the mailbox, one command per target folder. Copies to delete
/// are returned (UID, ledger id) for the one expunge at the end of the run;
/// their dispositions are recorded then. A copy the server refuses to move
/// stays in the queue (`kept`, with the server's words) and the rest go on.
async fn apply_dispositions(
    session: &mut Session,
    folders: &Folders,
    plan: &[(u32, i64, Target)],
) -> Result<(Vec<DispositionUpdate>, Vec<(u32, i64)>, std::time::Duration), WorkerError> {
    let started = std::time::Instant::now();
    let uids_for = |target: Target| -> Vec<u32> {
        plan.iter()
            .filter(|(_, _, t)| *t == target)
            .map(|(uid, _, _)| *uid)
            .collect()
    };
    let mut storage_locations: HashMap<u32, (String, u32, u32)> = HashMap::new();
    let mut refused: HashMap<u32, String> = HashMap::new();
    let to_storage = uids_for(Target::Storage);
    if !to_storage.is_empty() {
        let (moved, refusals) =
            move_isolating_refusals(session, &to_storage, &folders.storage).await?;
        failpoint::hit("after_move");
        if let Some(validity) = moved.dest_uid_validity {
            for (source, dest) in moved.mapping {
                storage_locations.insert(
                    source,
                    (folders.storage.display_name.clone(), validity, dest),
                );
            }
        }
        refused.extend(refusals);
    }
    if let Some(folder) = &folders.not_logged {
        let (_, refusals) =
            move_isolating_refusals(session, &uids_for(Target::NotLoggedFolder), folder).await?;
        refused.extend(refusals);
    }
    let to_delete: Vec<(u32, i64)> = plan
        .iter()
        .filter(|(_, _, t)| *t == Target::Delete)
        .map(|(uid, id, _)| (*uid, *id))
        .collect();
    if let Some(folder) = &folders.quarantine {
        let (_, refusals) =
            move_isolating_refusals(session, &uids_for(Target::Quarantine), folder).await?;
        refused.extend(refusals);
    }
    let updates = plan
        .iter()
        .filter(|(_, _, target)| *target != Target::Delete)
        .map(|(uid, ledger_id, target)| match refused.get(uid) {
            Some(error) => DispositionUpdate {
                ledger_id: *ledger_id,
                disposition: "kept".to_owned(),
                storage: None,
                move_error: Some(error.clone()),
            },
            None => DispositionUpdate {
                ledger_id: *ledger_id,
                disposition: match target {
                    Target::Storage => "stored",
                    Target::NotLoggedFolder => "moved",
                    Target::Delete => "deleted",
                    Target::Quarantine => "quarantined",
                    Target::Keep => "kept",
                }
                .to_owned(),
                storage: storage_locations.get(uid).cloned(),
                move_error: None,
            },
        })
        .collect();
    Ok((updates, to_delete, started.elapsed()))
}

/// Moves `uids` to `folder`. When the server refuses the command (a quota,
/// one message it cannot copy), the UIDs are moved one at a time, so that
/// only the messages it refuses stay behind; those come back with the
/// server's words. When it refuses every one, the folder itself is looked
/// at: gone, or without the right to insert, ends the run.
async fn move_isolating_refusals(
    session: &mut Session,
    uids: &[u32],
    folder: &FolderInfo,
) -> Result<(mailscribe_mail::MoveOutcome, Vec<(u32, String)>), WorkerError> {
    let refuse = failpoint::refused_moves();
    let refusal = |uid: u32| MailError::Refused {
        command: "UID MOVE".into(),
        text: format!("uid {uid}: refused by the test-only MAILSCRIBE_FAILPOINT_REFUSE_MOVE"),
    };
    let whole = match uids.iter().find(|uid| refuse.contains(uid)) {
        Some(uid) => Err(refusal(*uid)),
        None => session.move_messages(uids, folder).await,
    };
    let text = match whole {
        Ok(moved) => return Ok((moved, Vec::new())),
        Err(MailError::Refused { text, .. }) => text,
        Err(other) => return Err(other.into()),
    };
    tracing::warn!(folder = %folder.display_name, reason = %text, "the server refused a move; moving one message at a time");
    let mut moved = mailscribe_mail::MoveOutcome::default();
    let mut refused = Vec::new();
    for uid in uids {
        let one = if refuse.contains(uid) {
            Err(refusal(*uid))
        } else {
            session.move_messages(&[*uid], folder).await
        };
        match one {
            Ok(outcome) => {
                moved.dest_uid_validity = moved.dest_uid_validity.or(outcome.dest_uid_validity);
                moved.mapping.extend(outcome.mapping);
            }
            Err(MailError::Refused { text, .. }) => {
                tracing::warn!(uid, folder = %folder.display_name, reason = %text, "the server refused to move a message; it stays in the queue");
                refused.push((*uid, text));
            }
            Err(other) => return Err(other.into()),
        }
    }
    if refused.len() == uids.len() {
        // Everything refused: a folder that vanished or lost its rights is
        // the mailbox's problem, not the messages'.
        let current = session
            .resolve_folder(&folder.display_name)
            .await
            .map_err(|err| WorkerError::FolderUnusable {
                folder: folder.display_name.clone(),
                detail: err.to_string(),
            })?;
        if let Some(rights) = session.my_rights(&current).await?
            && !rights.contains('i')
        {
            return Err(WorkerError::FolderUnusable {
                folder: folder.display_name.clone(),
                detail: format!(
                    "the mailbox user lacks the right to add messages there (IMAP ACL rights: {rights})"
                ),
            });
        }
    }
    Ok((moved, refused))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: GroupLimits = GroupLimits {
        max_copies: 1000,
        max_bytes: 16 * 1024 * 1024,
    };

    fn batches(batches: usize, copies: usize, bytes: u64) -> GroupSoFar {
        GroupSoFar {
            batches,
            copies,
            bytes,
        }
    }

    #[test]
    fn when_a_group_takes_another_batch() {
        let batch = batches(1, 100, 100_000);
        // (so far, remaining counting the candidate, database busy,
        // previous group, takes it, why)
        let cases = [
            (
                batches(0, 0, 0),
                1,
                false,
                1,
                true,
                "the first batch always",
            ),
            (
                batches(0, 0, 0),
                5,
                false,
                1,
                true,
                "the first batch even when the database is idle",
            ),
            (
                batches(1, 100, 100_000),
                20,
                true,
                1,
                true,
                "the database is busy",
            ),
            (
                batches(1, 100, 100_000),
                20,
                false,
                1,
                false,
                "idle, as large as the one before",
            ),
            (
                batches(2, 200, 200_000),
                20,
                false,
                4,
                true,
                "idle, smaller than the one before",
            ),
            (
                batches(4, 400, 400_000),
                20,
                false,
                4,
                false,
                "idle, reached the one before",
            ),
            (
                batches(3, 300, 300_000),
                3,
                true,
                1,
                false,
                "as many as remain after it",
            ),
            (
                batches(2, 200, 200_000),
                3,
                true,
                1,
                true,
                "fewer than remain after it",
            ),
            (
                batches(10, 1000, 1_000_000),
                50,
                true,
                1,
                false,
                "the copies would pass the cap",
            ),
            (
                batches(9, 900, 900_000),
                50,
                true,
                1,
                true,
                "the copies reach the cap exactly",
            ),
            (
                batches(2, 200, 16 * 1024 * 1024 - 50_000),
                50,
                true,
                1,
                false,
                "the bytes would pass the cap",
            ),
        ];
        for (so_far, remaining, busy, previous, expected, why) in cases {
            assert_eq!(
                group_takes(so_far, batch, remaining, busy, previous, LIMITS),
                expected,
                "{why}: {so_far:?}, {remaining} remaining, busy {busy}, previous {previous}"
            );
        }
    }

    /// With the database always busy, the groups of a plan: they grow to
    /// the cap and shrink towards the end of the plan.
    fn groups_while_busy(plan: usize, copies_per_batch: usize) -> Vec<usize> {
        let candidate = batches(1, copies_per_batch, 1_000);
        let (mut next, mut groups) = (0, Vec::new());
        while next < plan {
            let mut so_far = GroupSoFar::default();
            while next < plan && group_takes(so_far, candidate, plan - next, true, 1, LIMITS) {
                so_far = so_far.plus(candidate);
                next += 1;
            }
            groups.push(so_far.batches);
        }
        groups
    }

    #[test]
    fn groups_shrink_towards_the_end_of_the_queue() {
        assert_eq!(groups_while_busy(14, 100), vec![7, 4, 2, 1]);
        assert_eq!(groups_while_busy(1, 100), vec![1]);
        // The cap of 1,000 copies holds groups to ten batches of 100
        // until the end draws near.
        assert_eq!(groups_while_busy(40, 100), vec![10, 10, 10, 5, 3, 1, 1]);
    }
}
