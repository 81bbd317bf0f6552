//! What `serve` runs: every enabled mailbox worked by exactly one instance,
//! near real time with IDLE, a sweep every interval, "run now" requests,
//! and reconnection with backoff. Several instances share the mailboxes
//! through the database (leases with fencing tokens; see `lease`).
//!
//! Each mailbox gets its own task, so one broken mailbox never delays the
//! others; each task holds its mailbox's lease from when it starts until it
//! ends, renewing it every heartbeat.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use mailscribe_core::MailboxName;
use mailscribe_mail::{QueueWatcher, WatchEvent};
use mailscribe_store::{Fence, MailboxStatus, Store};
use rand::{Rng, SeedableRng};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::lease::{self, HolderId, LeaseTimings};
use crate::report::SummaryReport;
use crate::{RunOptions, WorkerError, run_under_lease};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why a mailbox cannot run now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanError {
    /// Logging is disabled or the setup is incomplete: not an error, the
    /// mailbox simply waits.
    Idle(String),
    /// Something is wrong (the secrets cannot be read, the database).
    Failed(String),
}

/// What the binary provides: everything a run of one mailbox needs (the
/// setup with its secrets resolved), read afresh before each run.
pub trait Planner: Send + Sync {
    fn plan<'a>(&'a self, name: &'a MailboxName) -> BoxFuture<'a, Result<RunOptions, PlanError>>;
}

/// Retry delays after failures: exponential with full jitter, from `base`
/// up to `cap` (1 s and 60 s; tests shorten them with the test-only
/// variables `MAILSCRIBE_BACKOFF_BASE_MS` and `MAILSCRIBE_BACKOFF_CAP_MS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(60),
        }
    }
}

impl Backoff {
    pub fn from_env() -> Backoff {
        let millis = |name: &str| {
            std::env::var(name)
                .ok()?
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|ms| *ms > 0)
                .map(Duration::from_millis)
        };
        let default = Backoff::default();
        Backoff {
            base: millis("MAILSCRIBE_BACKOFF_BASE_MS").unwrap_or(default.base),
            cap: millis("MAILSCRIBE_BACKOFF_CAP_MS").unwrap_or(default.cap),
        }
    }

    /// The ceiling of the delay after `failures` failures in a row.
    pub fn ceiling(&self, failures: u32) -> Duration {
        let exponent = failures.saturating_sub(1).min(30);
        self.base.saturating_mul(1u32 << exponent).min(self.cap)
    }

    /// Full jitter: uniformly between zero and the ceiling, so that many
    /// mailboxes failing together do not come back together.
    pub fn delay(&self, failures: u32, rng: &mut impl Rng) -> Duration {
        let ceiling = self.ceiling(failures);
        Duration::from_millis(
            rng.gen_range(0..=u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX)),
        )
    }
}

/// How `serve` schedules; `Default` is production.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SupervisorConfig {
    pub timings: LeaseTimings,
    pub backoff: Backoff,
    /// IDLE is ended and issued again at least this often (RFC 2177 allows
    /// servers to drop it after 30 minutes).
    pub idle_reissue: Duration,
    /// After a change is announced, wait this long for the rest of a burst.
    pub debounce: Duration,
}

impl Default for SupervisorConfig {
    fn default() -> SupervisorConfig {
        SupervisorConfig {
            timings: LeaseTimings::default(),
            backoff: Backoff::default(),
            idle_reissue: Duration::from_secs(25 * 60),
            debounce: Duration::from_millis(250),
        }
    }
}

impl SupervisorConfig {
    pub fn from_env() -> SupervisorConfig {
        let mut config = SupervisorConfig {
            timings: LeaseTimings::from_env(),
            backoff: Backoff::from_env(),
            ..Default::default()
        };
        if let Some(ms) = std::env::var("MAILSCRIBE_IDLE_REISSUE_MS")
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
        {
            config.idle_reissue = Duration::from_millis(ms.max(1));
        }
        config
    }
}

/// Refuses a second `serve` on one SQLite file: SQLite stays
/// single-instance. A registered instance whose process is known dead does
/// not count. Returns the other instance, described, when there is one.
pub async fn other_live_instance(
    store: &Store,
    me: &HolderId,
    timings: &LeaseTimings,
) -> Result<Option<String>, WorkerError> {
    let ttl_ms = i64::try_from(timings.ttl.as_millis()).unwrap_or(i64::MAX);
    for instance in store.live_instances(ttl_ms).await? {
        if instance.id == me.to_text() {
            continue;
        }
        let dead = HolderId::parse(&instance.id).is_some_and(|other| me.knows_dead(&other));
        if !dead {
            return Ok(Some(format!(
                "host {}, pid {}",
                instance.host, instance.pid
            )));
        }
    }
    Ok(None)
}

struct MailboxTask {
    stop: watch::Sender<bool>,
    handle: JoinHandle<()>,
    /// Asked to give the mailbox back; it ends after its current batch.
    stopping: bool,
}

/// Runs until `stop` turns true, then lets each mailbox finish its batch and
/// gives the leases back.
///
/// `pulse` receives the time of each tick (Unix milliseconds), so that
/// readiness can tell a stuck scheduler.
pub async fn supervise(
    store: Store,
    planner: Arc<dyn Planner>,
    config: SupervisorConfig,
    pulse: Arc<std::sync::atomic::AtomicI64>,
    mut stop: watch::Receiver<bool>,
) -> Result<(), WorkerError> {
    let me = HolderId::current();
    let started_at = Utc::now();
    let ttl_ms = config.timings.ttl_ms();
    let mut tasks: HashMap<String, (MailboxName, MailboxTask)> = HashMap::new();
    let mut ticks = tokio::time::interval(config.timings.scan.min(config.timings.heartbeat));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tracing::info!(instance = %me.to_text(), "working the enabled mailboxes");
    // Register and let one scan pass before taking any mailbox, so that
    // instances starting together see each other and share from the start
    // (otherwise the first takes everything and gives back one per scan).
    let mut registered_once = false;
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = stop.changed() => {}
        }
        if *stop.borrow() {
            break;
        }
        pulse.store(
            Utc::now().timestamp_millis(),
            std::sync::atomic::Ordering::Relaxed,
        );
        tasks.retain(|_, (_, task)| !task.handle.is_finished());
        if let Err(err) = store
            .instance_heartbeat(&me.to_text(), &me.host, me.pid, started_at)
            .await
        {
            tracing::warn!(error = %err, "cannot reach the database; trying again");
            continue;
        }
        let (instances, mailboxes) =
            match (store.live_instances(ttl_ms).await, store.mailboxes().await) {
                (Ok(instances), Ok(mailboxes)) => (instances, mailboxes),
                (Err(err), _) | (_, Err(err)) => {
                    tracing::warn!(error = %err, "cannot read the mailboxes; trying again");
                    continue;
                }
            };
        if !registered_once {
            registered_once = true;
            continue;
        }
        let enabled: Vec<_> = mailboxes
            .into_iter()
            .filter(|m| m.enablement.enabled)
            .collect();
        // Work spreads: with N instances and M mailboxes, each holds at
        // most ceil(M / N).
        let share = enabled.len().div_ceil(instances.len().max(1));
        let held = |tasks: &HashMap<String, (MailboxName, MailboxTask)>| {
            tasks.values().filter(|(_, t)| !t.stopping).count()
        };
        for mailbox in &enabled {
            if held(&tasks) >= share {
                break;
            }
            let lease_name = lease::mailbox_lease_name(&mailbox.setup.mailbox_key());
            if tasks.contains_key(&lease_name) {
                continue;
            }
            match lease::acquire(&store, &lease_name, &me, &config.timings).await {
                Ok(fence) => {
                    tracing::info!(mailbox = %mailbox.name, generation = fence.generation, "took the mailbox");
                    let task = spawn_mailbox(
                        store.clone(),
                        planner.clone(),
                        config,
                        mailbox.name.clone(),
                        fence,
                    );
                    tasks.insert(lease_name, (mailbox.name.clone(), task));
                }
                Err(WorkerError::LeaseHeld { .. }) => {}
                Err(err) => {
                    tracing::warn!(mailbox = %mailbox.name, error = %err, "cannot take the mailbox lease")
                }
            }
        }
        if held(&tasks) > share {
            // Give one back at a time; another instance takes it at its
            // next scan.
            if let Some((_, (name, task))) = tasks.iter_mut().find(|(_, (_, t))| !t.stopping) {
                tracing::info!(mailbox = %name, "giving the mailbox to another instance");
                task.stopping = true;
                let _ = task.stop.send(true);
            }
        }
    }
    for (_, (_, task)) in tasks.drain() {
        let _ = task.stop.send(true);
        let _ = task.handle.await;
    }
    if let Err(err) = store.remove_instance(&me.to_text()).await {
        tracing::warn!(error = %err, "could not deregister this instance; its row expires by itself");
    }
    tracing::info!("stopped");
    Ok(())
}

fn spawn_mailbox(
    store: Store,
    planner: Arc<dyn Planner>,
    config: SupervisorConfig,
    name: MailboxName,
    fence: Fence,
) -> MailboxTask {
    let (stop, stop_seen) = watch::channel(false);
    let handle = tokio::spawn(async move {
        let (lost, lost_seen) = watch::channel(false);
        let heartbeat = lease::heartbeat(store.clone(), fence.clone(), config.timings, lost);
        work_mailbox(
            &store,
            planner.as_ref(),
            &config,
            &name,
            &fence,
            stop_seen,
            lost_seen,
        )
        .await;
        heartbeat.abort();
        let _ = heartbeat.await;
        if let Err(err) = store.release_lease(&fence).await {
            tracing::warn!(mailbox = %name, error = %err, "could not release the lease; it expires by itself");
        }
    });
    MailboxTask {
        stop,
        handle,
        stopping: false,
    }
}

/// How soon a mailbox that is enabled but cannot run looks again.
const IDLE_RECHECK: Duration = Duration::from_secs(5);

/// Why the next run starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wake {
    Sweep,
    Changed,
    Requested,
    Stop,
}

/// One mailbox, while this instance holds it.
async fn work_mailbox(
    store: &Store,
    planner: &dyn Planner,
    config: &SupervisorConfig,
    name: &MailboxName,
    fence: &Fence,
    mut stop: watch::Receiver<bool>,
    mut lost: watch::Receiver<bool>,
) {
    // A run stops at a batch boundary when either the process stops or the
    // lease is lost.
    let (run_stop_tx, run_stop) = watch::channel(false);
    let mut rng = rand::rngs::StdRng::from_entropy();
    let (changes_tx, mut changes) = mpsc::channel::<()>(1);
    let mut watcher: Option<JoinHandle<()>> = None;
    let mut failures: u32 = 0;
    let mut next_sweep = tokio::time::Instant::now();
    let mut last_idle_reason: Option<String> = None;
    loop {
        let wake = tokio::select! {
            biased;
            // Only `()` may cross the awaits below: a watch guard is not Send.
            () = async { let _ = stop.wait_for(|s| *s).await; } => Wake::Stop,
            () = async { let _ = lost.wait_for(|l| *l).await; } => Wake::Stop,
            _ = tokio::time::sleep_until(next_sweep) => Wake::Sweep,
            Some(()) = changes.recv() => Wake::Changed,
            _ = tokio::time::sleep(config.timings.heartbeat) => {
                if store.run_requested(name.as_str()).await.unwrap_or(false) { Wake::Requested } else { continue }
            }
        };
        if wake == Wake::Stop {
            break;
        }
        if wake == Wake::Changed && failures > 0 && tokio::time::Instant::now() < next_sweep {
            // Backing off: new mail waits for the next attempt, which picks
            // it up, rather than making the broken part retry at once.
            continue;
        }
        if wake == Wake::Changed {
            // A burst of arrivals becomes one run.
            tokio::time::sleep(config.debounce).await;
            while changes.try_recv().is_ok() {}
        }
        let options = match planner.plan(name).await {
            Ok(options) => {
                last_idle_reason = None;
                options
            }
            Err(PlanError::Idle(reason)) => {
                answer_requests(store, name, fence, None, Some(&reason)).await;
                if last_idle_reason.as_deref() != Some(reason.as_str()) {
                    tracing::info!(mailbox = %name, "idle: {reason}");
                    let status = MailboxStatus {
                        status: "idle".into(),
                        last_error: Some(reason.clone()),
                        ..Default::default()
                    };
                    let _ = store.record_mailbox_status(name, &status).await;
                    last_idle_reason = Some(reason);
                }
                // Disabled: give the mailbox back. Enabled but incomplete
                // (a template removed, say): look again soon, holding on.
                if !store
                    .enablement(name)
                    .await
                    .map(|e| e.enabled)
                    .unwrap_or(true)
                {
                    break;
                }
                next_sweep = tokio::time::Instant::now() + IDLE_RECHECK;
                continue;
            }
            Err(PlanError::Failed(reason)) => {
                failures += 1;
                next_sweep = retry_after(store, name, config, failures, &reason, &mut rng).await;
                answer_requests(store, name, fence, None, Some(&reason)).await;
                continue;
            }
        };
        if watcher.as_ref().is_none_or(JoinHandle::is_finished) {
            watcher = Some(spawn_watcher(
                options.clone(),
                config.idle_reissue,
                config.backoff,
                changes_tx.clone(),
            ));
        }
        let requests = store
            .claim_run_requests(name.as_str(), &fence.holder)
            .await
            .unwrap_or_default();
        let forward = {
            let run_stop_tx = run_stop_tx.clone();
            let mut stop = stop.clone();
            let mut lost = lost.clone();
            tokio::spawn(async move {
                tokio::select! {
                    () = async { let _ = stop.wait_for(|s| *s).await; } => {}
                    () = async { let _ = lost.wait_for(|l| *l).await; } => {}
                }
                let _ = run_stop_tx.send(true);
            })
        };
        let result = run_under_lease(store, &options, fence, &run_stop).await;
        forward.abort();
        let interval = Duration::from_secs(u64::from(options.settings.interval_seconds.max(1)));
        crate::metrics::working(name.as_str(), interval);
        match result {
            Ok(summary) => {
                failures = 0;
                tracing::info!(
                    mailbox = %name,
                    run = summary.run_id,
                    seen = summary.counts.seen,
                    logged = summary.counts.logged,
                    entries = summary.counts.entries,
                    failed = summary.counts.failed,
                    "run completed"
                );
                next_sweep = tokio::time::Instant::now() + interval;
                let status = MailboxStatus {
                    status: "ok".into(),
                    last_run_at: Some(Utc::now()),
                    last_error: None,
                    next_attempt_at: Some(
                        Utc::now() + chrono::Duration::from_std(interval).unwrap_or_default(),
                    ),
                    consecutive_failures: 0,
                };
                if let Err(err) = store.record_mailbox_status(name, &status).await {
                    tracing::warn!(mailbox = %name, error = %err, "could not record the mailbox status");
                }
                if !requests.is_empty() {
                    let report = serde_json::to_string(&SummaryReport::new(&summary)).ok();
                    let _ = store
                        .finish_run_requests(
                            &requests,
                            Utc::now(),
                            Some(summary.run_id),
                            report.as_deref(),
                            None,
                        )
                        .await;
                }
            }
            Err(WorkerError::LeaseLost) => {
                tracing::warn!(mailbox = %name, "the lease was lost; another instance works this mailbox now");
                break;
            }
            Err(err) => {
                failures += 1;
                let reason = err.to_string();
                tracing::error!(mailbox = %name, error = %reason, failures, "run failed; retrying after a pause");
                next_sweep = retry_after(store, name, config, failures, &reason, &mut rng).await;
                if !requests.is_empty() {
                    let _ = store
                        .finish_run_requests(&requests, Utc::now(), None, None, Some(&reason))
                        .await;
                }
            }
        }
        if *run_stop.borrow() {
            break;
        }
    }
    if let Some(watcher) = watcher {
        watcher.abort();
    }
    crate::metrics::released(name.as_str());
}

/// Records a failure and returns when to try again.
async fn retry_after(
    store: &Store,
    name: &MailboxName,
    config: &SupervisorConfig,
    failures: u32,
    reason: &str,
    rng: &mut impl Rng,
) -> tokio::time::Instant {
    let delay = config.backoff.delay(failures, rng);
    let status = MailboxStatus {
        status: "retrying".into(),
        last_run_at: None,
        last_error: Some(reason.to_owned()),
        next_attempt_at: Some(Utc::now() + chrono::Duration::from_std(delay).unwrap_or_default()),
        consecutive_failures: failures,
    };
    if let Err(err) = store.record_mailbox_status(name, &status).await {
        tracing::warn!(mailbox = %name, error = %err, "could not record the mailbox status");
    }
    tokio::time::Instant::now() + delay
}

/// Answers the open "run now" requests of a mailbox that could not run.
async fn answer_requests(
    store: &Store,
    name: &MailboxName,
    fence: &Fence,
    run_id: Option<i64>,
    error: Option<&str>,
) {
    if let Ok(ids) = store.claim_run_requests(name.as_str(), &fence.holder).await
        && !ids.is_empty()
    {
        let _ = store
            .finish_run_requests(&ids, Utc::now(), run_id, None, error)
            .await;
    }
}

/// Keeps a connection in IDLE on the queue and reports changes. Ends when
/// the server does not offer IDLE (the mailbox is then only swept).
fn spawn_watcher(
    options: RunOptions,
    reissue: Duration,
    backoff: Backoff,
    changes: mpsc::Sender<()>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut rng = rand::rngs::StdRng::from_entropy();
        let mut failures = 0u32;
        loop {
            match QueueWatcher::start(&options.connection, &options.setup.queue_folder).await {
                Ok(None) => {
                    tracing::info!(mailbox = %options.mailbox_name, "the server does not offer IDLE; the queue is swept every interval");
                    // Stay finished without asking again at every run.
                    std::future::pending::<()>().await;
                }
                Ok(Some(mut watcher)) => {
                    failures = 0;
                    loop {
                        match watcher.wait(reissue).await {
                            Ok(WatchEvent::Changed) => {
                                // A full channel already holds a wake-up.
                                let _ = changes.try_send(());
                            }
                            Ok(WatchEvent::TimedOut) => {}
                            Err(err) => {
                                tracing::info!(mailbox = %options.mailbox_name, error = %err, "the IDLE connection ended; reconnecting");
                                break;
                            }
                        }
                    }
                }
                Err(err) => {
                    tracing::info!(mailbox = %options.mailbox_name, error = %err, "cannot open the IDLE connection")
                }
            }
            failures += 1;
            tokio::time::sleep(backoff.delay(failures, &mut rng)).await;
            // The sweep picks up what arrived while disconnected.
            let _ = changes.try_send(());
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_the_cap_with_full_jitter() {
        let backoff = Backoff::default();
        let ceilings: Vec<u64> = (1..=9).map(|n| backoff.ceiling(n).as_secs()).collect();
        assert_eq!(ceilings, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(backoff.ceiling(u32::MAX), Duration::from_secs(60));
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let delays: Vec<Duration> = (0..200).map(|_| backoff.delay(6, &mut rng)).collect();
        assert!(delays.iter().all(|d| *d <= Duration::from_secs(32)));
        // Full jitter spreads over the whole range, not just near the top.
        assert!(delays.iter().any(|d| *d < Duration::from_secs(8)));
        assert!(delays.iter().any(|d| *d > Duration::from_secs(24)));
    }
}
