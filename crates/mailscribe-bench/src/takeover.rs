//! `takeover`: how long a mailbox goes unworked when the instance holding
//! it is killed, with the production lease timings (ttl 20 s, heartbeat
//! 5 s, scan 5 s), on PostgreSQL.
//!
//! Two `serve` processes stand for two hosts (`MAILSCRIBE_INSTANCE_ID`
//! host-a and host-b) on one database and one mailbox, and a thread
//! delivers a message into the queue every 200 ms throughout. Each round
//! finds the holder in the `leases` table, SIGKILLs and reaps it, then
//! polls the database every 20 ms for two moments:
//! - the lease changing hands (its `holder` starts with the survivor's id);
//! - the survivor's first commit: the first ledger row (`decisions`) of a
//!   run whose id is above the highest run id read just after the kill.
//!   Only the survivor can start a run then, and a batch's ledger rows are
//!   written in the same transaction as its entries.
//!
//! The killed instance is restarted before the next round, so the rounds
//! alternate between the two. The kill waits a varying 0 to 5 s (where it
//! falls in the holder's heartbeat cycle decides how long the lease has
//! left, 15 to 20 s), and so do the start of the second instance and each
//! restart (the offset between the survivor's scan cycle and the holder's
//! heartbeat decides how long after the expiry the survivor looks).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use mailscribe_testkit::{Dovecot, QUEUE, TestDatabase};
use sqlx::PgPool;

use crate::install::{MailboxFolders, install};
use crate::measure::median;
use crate::messages::{Lcg, probe};
use crate::serve_process::ServeProcess;

pub(crate) const DEFAULT_ROUNDS: usize = 10;
const SPACING: Duration = Duration::from_millis(200);
const POLL: Duration = Duration::from_millis(20);
const INSTANCES: [&str; 2] = ["host-a", "host-b"];

/// Delivers probe messages every `SPACING` until stopped.
struct Feeder {
    stop: Arc<AtomicBool>,
    delivered: Arc<AtomicU32>,
    thread: std::thread::JoinHandle<()>,
}

impl Feeder {
    fn start(dovecot: Arc<Dovecot>) -> Feeder {
        let stop = Arc::new(AtomicBool::new(false));
        let delivered = Arc::new(AtomicU32::new(0));
        let thread = {
            let (stop, delivered) = (stop.clone(), delivered.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let n = delivered.load(Ordering::Relaxed) + 1;
                    dovecot.deliver(QUEUE, &probe(n), None, false);
                    delivered.store(n, Ordering::Relaxed);
                    std::thread::sleep(SPACING);
                }
            })
        };
        Feeder {
            stop,
            delivered,
            thread,
        }
    }

    /// Stops delivering; returns how many messages were delivered.
    fn stop(self) -> u32 {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
        self.delivered.load(Ordering::Relaxed)
    }
}

/// The mailbox lease's holder and how long it has left, on the database clock.
async fn holder(pool: &PgPool) -> anyhow::Result<Option<(String, i64)>> {
    let row: Option<(String, i64)> = sqlx::query_as(
        "SELECT holder, expires_at_ms - CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT) \
         FROM leases WHERE name LIKE 'mailbox:%'",
    )
    .fetch_optional(pool)
    .await?;
    Ok(row)
}

async fn last_run_id(pool: &PgPool) -> anyhow::Result<i64> {
    Ok(sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) FROM runs")
        .fetch_one(pool)
        .await?)
}

async fn committed_after_run(pool: &PgPool, run_id: i64) -> anyhow::Result<bool> {
    Ok(
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM decisions WHERE run_id > $1)")
            .bind(run_id)
            .fetch_one(pool)
            .await?,
    )
}

async fn entry_count(pool: &PgPool) -> anyhow::Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT COUNT(*) FROM interaction_entries")
            .fetch_one(pool)
            .await?,
    )
}

/// Which of `INSTANCES` a lease holder text names.
fn instance_index(holder: &str) -> Option<usize> {
    let host = holder.split('|').next()?;
    INSTANCES.iter().position(|id| *id == host)
}

/// Waits until one instance holds the lease and has committed since the
/// call; returns which.
async fn wait_for_working_holder(pool: &PgPool, timeout: Duration) -> anyhow::Result<usize> {
    let deadline = Instant::now() + timeout;
    let since = last_run_id(pool).await?;
    loop {
        if let Some((text, left_ms)) = holder(pool).await?
            && left_ms > 0
            && committed_after_run(pool, since).await?
        {
            return instance_index(&text).with_context(|| format!("unknown lease holder {text}"));
        }
        if Instant::now() > deadline {
            bail!("no instance held the mailbox and committed within {timeout:?}");
        }
        tokio::time::sleep(POLL).await;
    }
}

pub(crate) async fn takeover(rounds: usize) -> anyhow::Result<()> {
    println!(
        "== takeover: two serve instances (host-a, host-b) on one PostgreSQL database and one mailbox, \
         production lease timings (ttl 20 s, heartbeat 5 s, scan 5 s), a message every {} ms; \
         each round SIGKILLs the holder",
        SPACING.as_millis()
    );
    let dovecot = Arc::new(Dovecot::start());
    let database = TestDatabase::postgres().await;
    let dir = tempfile::tempdir()?;
    let env = install(
        dir.path(),
        database.url(),
        &dovecot,
        &[MailboxFolders::default_mailbox()],
        &[],
    )?;
    let pool = PgPool::connect(database.url()).await?;
    let mut rng = Lcg(7);
    let mut serves = Vec::new();
    for id in INSTANCES {
        // Staggered, so that the instances' scan cycles are out of step.
        tokio::time::sleep(Duration::from_millis(rng.next(5000))).await;
        let serve = ServeProcess::start(&env, dir.path(), id, Some(id))?;
        serve.wait_healthy(Duration::from_secs(60))?;
        serves.push(serve);
    }
    let feeder = Feeder::start(dovecot.clone());
    let (mut lease_times, mut commit_times) = (Vec::new(), Vec::new());
    for round in 1..=rounds {
        let victim = wait_for_working_holder(&pool, Duration::from_secs(120)).await?;
        let survivor = 1 - victim;
        tokio::time::sleep(Duration::from_millis(rng.next(5000))).await;
        let (text, left_ms) = holder(&pool).await?.context("the lease vanished")?;
        if instance_index(&text) != Some(victim) {
            bail!("the lease changed hands without a kill: {text}");
        }
        let victim_pid = serves[victim].pid();
        let killed_at = serves[victim].kill()?;
        let last_run = last_run_id(&pool).await?;
        let (mut lease_taken, mut committed) = (None, None);
        while committed.is_none() {
            if lease_taken.is_none()
                && let Some((text, _)) = holder(&pool).await?
                && instance_index(&text) == Some(survivor)
            {
                lease_taken = Some(killed_at.elapsed());
            }
            if committed_after_run(&pool, last_run).await? {
                committed = Some(killed_at.elapsed());
            }
            if killed_at.elapsed() > Duration::from_secs(180) {
                bail!(
                    "{} did not take over within 180 s; its log:\n{}",
                    INSTANCES[survivor],
                    serves[survivor].log()
                );
            }
            tokio::time::sleep(POLL).await;
        }
        let committed = committed.unwrap_or_default().as_secs_f64();
        let lease_taken = lease_taken.map_or(committed, |d| d.as_secs_f64());
        println!(
            "   round {round}: killed {} (pid {victim_pid}) with {:.1} s left on its lease; \
             {} took the lease after {lease_taken:.1} s and committed after {committed:.1} s",
            INSTANCES[victim],
            left_ms as f64 / 1000.0,
            INSTANCES[survivor],
        );
        lease_times.push(lease_taken);
        commit_times.push(committed);
        // A random pause puts the restarted instance's scan cycle at a new
        // offset from the holder's heartbeat, which decides how long after
        // the lease expires the next takeover comes.
        tokio::time::sleep(Duration::from_millis(rng.next(5000))).await;
        let started_before = serves[victim].count_in_log("working the enabled mailboxes");
        serves[victim] =
            ServeProcess::start(&env, dir.path(), INSTANCES[victim], Some(INSTANCES[victim]))?;
        serves[victim].wait_healthy(Duration::from_secs(60))?;
        serves[victim].wait_for_log(
            "working the enabled mailboxes",
            started_before,
            Duration::from_secs(60),
        )?;
    }
    let delivered = feeder.stop();
    // Every message gives one entry: after the last round the survivor must
    // log all of them, none twice.
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut entries = entry_count(&pool).await?;
    while (entries != i64::from(delivered) || dovecot.count(QUEUE) != 0)
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(200)).await;
        entries = entry_count(&pool).await?;
    }
    let (lease_max, commit_max) = (
        lease_times.iter().copied().fold(0.0, f64::max),
        commit_times.iter().copied().fold(0.0, f64::max),
    );
    println!(
        "   kill to first commit by the other instance: median {:.1} s, max {commit_max:.1} s (goal < 30 s); \
         kill to lease taken: median {:.1} s, max {lease_max:.1} s",
        median(&mut commit_times),
        median(&mut lease_times),
    );
    println!(
        "   {delivered} messages delivered, {entries} entries, {} left in the queue{}",
        dovecot.count(QUEUE),
        if entries == i64::from(delivered) {
            ""
        } else {
            " (MISMATCH: every message should give exactly one entry)"
        }
    );
    if std::env::var_os("BENCH_LOG").is_some() {
        for serve in &serves {
            eprint!("{}", serve.log());
        }
    }
    pool.close().await;
    Ok(())
}
