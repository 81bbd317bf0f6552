//! `soak`: a release `mailscribe serve` (SQLite, IDLE on the queue, default
//! settings, info-level JSON logs) works one Dovecot queue (maildir over
//! TLS) while the benchmark APPENDs real-looking messages into that queue
//! over IMAP at a steady rate for N minutes.
//!
//! It reports the latency from the end of each APPEND until the API lists
//! the message's entry (the `latency` module, shared with `idle-latency`),
//! the server's resident memory and open file descriptors every minute, and
//! every error: refused or failed APPENDs, API errors, warnings and errors
//! in the server's log, failed decisions, aborted runs, and messages left
//! in the queue or without a decision at the end.
//!
//! Flat memory means the mean RSS of the last 10 minutes within 5% of the
//! mean of minutes 10 to 20 (with fewer than 30 minutes: the last third
//! against the middle third).

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use mailscribe_mail::{FolderInfo, Session};
use mailscribe_testkit::{Dovecot, QUEUE};
use sqlx::Row;
use tokio::sync::mpsc;

use crate::install::{self, MailboxFolders, Transport, api_token, install};
use crate::latency::{Tracker, summary};
use crate::messages::soak_message;
use crate::queue::connection;
use crate::serve_process::ServeProcess;

pub(crate) const DEFAULT_MINUTES: u32 = 30;
pub(crate) const DEFAULT_RATE: u32 = 50;
/// How often the API is asked, and for how many of the newest entries:
/// at 50 messages a second a run commits a few dozen entries at once.
const POLL: Duration = Duration::from_millis(50);
const PAGE: usize = 200;
const GIVE_UP: Duration = Duration::from_secs(120);

/// One APPEND that the server accepted.
struct Appended {
    /// The subject to look for, when the message makes an entry.
    timed_subject: Option<String>,
    at: Instant,
}

/// What the appending task saw.
#[derive(Default)]
struct AppendStats {
    appended: u64,
    errors: u64,
    /// The furthest an APPEND started behind its schedule.
    max_lag: Duration,
}

/// A reading of the server process at the end of a minute.
struct Sample {
    rss_mb: f64,
    open_fds: usize,
}

pub(crate) async fn soak(minutes: u32, rate: u32) -> anyhow::Result<()> {
    let total = u64::from(minutes) * 60 * u64::from(rate);
    println!(
        "== soak: {minutes} min at {rate} msg/s ({total} messages) APPENDed over IMAP (TLS) into the queue \
         (Dovecot maildir) while a release `mailscribe serve` (SQLite, IDLE, JSON logs at info) works it; \
         latency = end of APPEND until GET /api/v1/interactions lists the entry (polled every {} ms)",
        POLL.as_millis()
    );
    let dovecot = Dovecot::start();
    let dir = tempfile::tempdir()?;
    let mut env = install(
        dir.path(),
        &install::sqlite_url(dir.path()),
        &dovecot,
        &[MailboxFolders::default_mailbox()],
        &[],
    )?;
    let token = api_token(&env, dir.path())?;
    env.push(("MAILSCRIBE_LOG_FORMAT", "json".to_owned()));
    let mut serve = ServeProcess::start_logging(&env, dir.path(), "soak", None, "info")?;
    serve.wait_healthy(Duration::from_secs(60))?;
    serve
        .wait_for_log("run completed", 0, Duration::from_secs(60))
        .context("the first sweep")?;
    let pid = serve.pid();
    let start_sample = sample(pid)?;
    println!(
        "   serve started: RSS {:.1} MB, {} open fds",
        start_sample.rss_mb, start_sample.open_fds
    );

    let (sender, mut receiver) = mpsc::unbounded_channel::<Appended>();
    let appender = tokio::spawn(append_steadily(
        connection(&dovecot, Transport::Tls),
        total,
        rate,
        sender,
    ));
    let mut tracker = Tracker::new(serve.port, &token, PAGE, GIVE_UP);
    let started = Instant::now();
    let mut samples: Vec<Sample> = Vec::new();
    let (mut n_appended, mut n_timed, mut timed_before) = (0u64, 0u64, 0usize);
    loop {
        while let Ok(appended) = receiver.try_recv() {
            n_appended += 1;
            if let Some(subject) = appended.timed_subject {
                n_timed += 1;
                tracker.arrived(subject, appended.at);
            }
        }
        tracker.check(|| serve.log())?;
        if samples.len() < minutes as usize
            && started.elapsed() >= Duration::from_secs(60 * (samples.len() as u64 + 1))
        {
            let reading = sample(pid)?;
            let this_minute = tracker.latencies[timed_before..].to_vec();
            timed_before = tracker.latencies.len();
            println!(
                "   minute {:>2}: appended {n_appended}, entries listed {} ({} pending); this minute {}; RSS {:.1} MB, {} open fds",
                samples.len() + 1,
                tracker.latencies.len(),
                tracker.n_pending(),
                summary(this_minute),
                reading.rss_mb,
                reading.open_fds
            );
            samples.push(reading);
        }
        if appender.is_finished() && receiver.is_empty() && tracker.n_pending() == 0 {
            break;
        }
        if serve.exited() {
            bail!("serve exited during the soak; its log:\n{}", serve.log());
        }
        std::thread::sleep(POLL);
    }
    let stats = appender.await??;
    let drained = started.elapsed();

    // Everything decided and out of the queue? Not-logged copies leave at
    // the end of a run, so give the last run a moment.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut left_in_queue = dovecot.count(QUEUE);
    while left_in_queue > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
        left_in_queue = dovecot.count(QUEUE);
    }
    let final_sample = sample(pid)?;
    let ledger = read_ledger(dir.path()).await?;
    let log = serve.log();
    let warnings: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("\"level\":\"WARN\""))
        .collect();
    let errors: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("\"level\":\"ERROR\""))
        .collect();
    serve.kill()?;

    println!(
        "   appended {} of {total} (APPEND errors {}, furthest behind schedule {:.3} s); every entry listed {:.1} s after the start",
        stats.appended,
        stats.errors,
        stats.max_lag.as_secs_f64(),
        drained.as_secs_f64()
    );
    println!(
        "   latency APPEND to entry, {} messages: {}",
        n_timed,
        summary(tracker.latencies.clone())
    );
    let rss: Vec<String> = samples.iter().map(|s| format!("{:.1}", s.rss_mb)).collect();
    println!("   RSS by minute (MB): {}", rss.join(" "));
    let fds: Vec<String> = samples.iter().map(|s| s.open_fds.to_string()).collect();
    println!(
        "   open fds by minute: {}; at the end {}",
        fds.join(" "),
        final_sample.open_fds
    );
    let (reference, last, label) = windows(&samples);
    if let (Some(reference), Some(last)) = (reference, last) {
        println!(
            "   flat memory: mean RSS {label}: {reference:.1} MB -> {last:.1} MB ({:+.1}%, goal within 5%)",
            (last / reference - 1.0) * 100.0
        );
    }
    println!(
        "   ledger: {} decisions for {} appended ({}), {} entries; runs {}",
        ledger.decisions,
        stats.appended,
        ledger.by_outcome.join(", "),
        ledger.entries,
        ledger.runs.join(", ")
    );
    println!(
        "   errors: APPEND {}, API {}, serve log {} ERROR and {} WARN lines, failed decisions {}, aborted runs {}, \
         left in the queue {left_in_queue}, undecided {}",
        stats.errors,
        tracker.api_errors,
        errors.len(),
        warnings.len(),
        ledger.failed,
        ledger.aborted_runs,
        stats.appended.saturating_sub(ledger.decisions)
    );
    for line in errors.iter().chain(&warnings).take(10) {
        println!("     {line}");
    }
    Ok(())
}

/// APPENDs `total` soak messages into the queue, one every 1/`rate` s on
/// a fixed schedule (a late APPEND does not shift the ones after it). A
/// failed APPEND is counted and the connection opened again.
async fn append_steadily(
    config: mailscribe_mail::ConnectionConfig,
    total: u64,
    rate: u32,
    sender: mpsc::UnboundedSender<Appended>,
) -> anyhow::Result<AppendStats> {
    let connect = async |config: &mailscribe_mail::ConnectionConfig| -> anyhow::Result<(Session, FolderInfo)> {
        let mut session = Session::connect(config).await?;
        let queue = session.resolve_folder(QUEUE).await?;
        Ok((session, queue))
    };
    let (mut session, mut queue) = connect(&config).await?;
    let mut stats = AppendStats::default();
    let started = tokio::time::Instant::now();
    for n in 1..=total {
        let due = started + Duration::from_secs_f64((n - 1) as f64 / f64::from(rate));
        tokio::time::sleep_until(due).await;
        stats.max_lag = stats.max_lag.max(tokio::time::Instant::now() - due);
        let message = soak_message(n);
        match session.append(&queue, &message.raw, None).await {
            Ok(()) => {
                stats.appended += 1;
                let _ = sender.send(Appended {
                    timed_subject: message.timed_subject,
                    at: Instant::now(),
                });
            }
            Err(err) => {
                stats.errors += 1;
                eprintln!("   APPEND of message {n} failed: {err}");
                (session, queue) = connect(&config).await?;
            }
        }
    }
    session.logout().await;
    Ok(stats)
}

fn sample(pid: u32) -> anyhow::Result<Sample> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS")?;
    let open_fds = std::fs::read_dir(format!("/proc/{pid}/fd"))?.count();
    Ok(Sample {
        rss_mb: kb / 1024.0,
        open_fds,
    })
}

/// The two windows compared for flat memory: minutes 11 to 20 (the end
/// of minute 10 to the end of minute 20) against the last 10, or with
/// fewer than 30 samples the middle third against the last third.
fn windows(samples: &[Sample]) -> (Option<f64>, Option<f64>, String) {
    let mean = |window: &[Sample]| {
        (!window.is_empty())
            .then(|| window.iter().map(|s| s.rss_mb).sum::<f64>() / window.len() as f64)
    };
    let n = samples.len();
    if n >= 30 {
        (
            mean(&samples[10..20]),
            mean(&samples[n - 10..]),
            format!("minutes 11-20 vs {}-{n}", n - 9),
        )
    } else {
        let third = n / 3;
        (
            mean(&samples[third..2 * third]),
            mean(&samples[n - third..]),
            format!(
                "minutes {}-{} vs {}-{n}",
                third + 1,
                2 * third,
                n - third + 1
            ),
        )
    }
}

/// What the ledger holds at the end.
struct Ledger {
    decisions: u64,
    by_outcome: Vec<String>,
    failed: u64,
    entries: u64,
    runs: Vec<String>,
    aborted_runs: u64,
}

async fn read_ledger(dir: &std::path::Path) -> anyhow::Result<Ledger> {
    let pool = sqlx::SqlitePool::connect(&install::sqlite_url(dir)).await?;
    let mut ledger = Ledger {
        decisions: 0,
        by_outcome: Vec::new(),
        failed: 0,
        entries: 0,
        runs: Vec::new(),
        aborted_runs: 0,
    };
    for row in sqlx::query(
        "SELECT outcome, COUNT(*) AS n FROM decisions GROUP BY outcome ORDER BY outcome",
    )
    .fetch_all(&pool)
    .await?
    {
        let (outcome, n): (String, i64) = (row.try_get("outcome")?, row.try_get("n")?);
        ledger.decisions += n as u64;
        if outcome == "failed" {
            ledger.failed = n as u64;
        }
        ledger.by_outcome.push(format!("{outcome} {n}"));
    }
    ledger.entries = sqlx::query("SELECT COUNT(*) AS n FROM interaction_entries")
        .fetch_one(&pool)
        .await?
        .try_get::<i64, _>("n")? as u64;
    for row in sqlx::query("SELECT status, COUNT(*) AS n FROM runs GROUP BY status ORDER BY status")
        .fetch_all(&pool)
        .await?
    {
        let (status, n): (String, i64) = (row.try_get("status")?, row.try_get("n")?);
        if status == "aborted" {
            ledger.aborted_runs = n as u64;
        }
        ledger.runs.push(format!("{status} {n}"));
    }
    pool.close().await;
    Ok(ledger)
}
