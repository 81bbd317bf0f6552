//! `idle-latency`: how soon a message delivered into the queue can be read
//! through the API while `mailscribe serve` idles on the queue, on SQLite
//! and then PostgreSQL.
//!
//! The sweep interval is 300 s, so within the measurement only IDLE brings
//! mail in. Messages are delivered straight into the queue's maildir
//! (`Dovecot::deliver`, as a mail server's delivery would; no IMAP APPEND),
//! each with a unique subject word: first a steady stream, one every
//! 200 ms, then 20 that each arrive alone, 3 s apart. The benchmark polls
//! `GET /api/v1/interactions` (the newest 100 entries, bearer token) every
//! 20 ms; a message's latency is the time from the end of its delivery
//! (the rename into `new/`) to the arrival of the first response that
//! lists it.

use std::time::{Duration, Instant};

use anyhow::Context;
use mailscribe_testkit::{Dovecot, QUEUE, TestDatabase};

use crate::install::{MailboxFolders, api_token, install};
use crate::latency::{Tracker, summary};
use crate::messages::{probe, probe_subject};
use crate::serve_process::ServeProcess;

pub(crate) const DEFAULT_MESSAGES: u32 = 1000;
/// The steady stream: a message every 200 ms.
const STEADY: Duration = Duration::from_millis(200);
/// Then messages that each arrive alone.
const ISOLATED: u32 = 20;
const APART: Duration = Duration::from_secs(3);
const POLL: Duration = Duration::from_millis(20);
const PAGE: usize = 100;
const GIVE_UP: Duration = Duration::from_secs(120);

pub(crate) async fn idle_latency(count: u32) -> anyhow::Result<()> {
    println!(
        "== idle-latency: {count} messages delivered into the queue's maildir one every {} ms, then {ISOLATED} one every {} s; \
         latency = delivery until listed by GET /api/v1/interactions (polled every {} ms); sweep interval 300 s",
        STEADY.as_millis(),
        APART.as_secs(),
        POLL.as_millis()
    );
    for (database, backend) in [
        (TestDatabase::sqlite(), "SQLite"),
        (TestDatabase::postgres().await, "PostgreSQL"),
    ] {
        let measured = measure(&database, count)?;
        println!(
            "   {backend}, {count} messages {} ms apart: {} (goal p95 < 2 s, p99 < 5 s); {} runs for them",
            STEADY.as_millis(),
            summary(measured.steady),
            measured.steady_runs
        );
        println!(
            "   {backend}, {ISOLATED} messages {} s apart: {}",
            APART.as_secs(),
            summary(measured.isolated)
        );
    }
    Ok(())
}

/// Latencies in seconds.
struct Measured {
    steady: Vec<f64>,
    /// How many runs `serve` made while the steady stream was measured.
    steady_runs: usize,
    isolated: Vec<f64>,
}

/// A `serve` idling on the queue, and how to ask its API.
struct Probe<'a> {
    dovecot: &'a Dovecot,
    serve: &'a ServeProcess,
    token: &'a str,
}

fn measure(database: &TestDatabase, count: u32) -> anyhow::Result<Measured> {
    let dovecot = Dovecot::start();
    let dir = tempfile::tempdir()?;
    let env = install(
        dir.path(),
        database.url(),
        &dovecot,
        &[MailboxFolders::default_mailbox()],
        &[("interval", "300")],
    )?;
    let token = api_token(&env, dir.path())?;
    let serve = ServeProcess::start(&env, dir.path(), "a", None)?;
    serve.wait_healthy(Duration::from_secs(60))?;
    serve
        .wait_for_log("run completed", 0, Duration::from_secs(60))
        .context("the first sweep")?;
    let probe = Probe {
        dovecot: &dovecot,
        serve: &serve,
        token: &token,
    };
    // A warm-up message, not counted: with the sweep 300 s away, seeing it
    // proves that IDLE works.
    probe.stream(0..=0, STEADY)?;
    let runs_before = serve.count_in_log("run completed");
    let steady = probe.stream(1..=count, STEADY)?;
    let steady_runs = serve.count_in_log("run completed") - runs_before;
    let isolated = probe.stream(count + 1..=count + ISOLATED, APART)?;
    if std::env::var_os("BENCH_LOG").is_some() {
        eprint!("{}", serve.log());
    }
    Ok(Measured {
        steady,
        steady_runs,
        isolated,
    })
}

impl Probe<'_> {
    /// Delivers probes `numbers`, one every `spacing`, and returns the
    /// latency of each once all are listed.
    fn stream(
        &self,
        numbers: std::ops::RangeInclusive<u32>,
        spacing: Duration,
    ) -> anyhow::Result<Vec<f64>> {
        let mut tracker = Tracker::new(self.serve.port, self.token, PAGE, GIVE_UP);
        let started = Instant::now();
        let mut numbers = numbers.peekable();
        let mut n_delivered = 0;
        loop {
            if let Some(&n) = numbers.peek()
                && Instant::now() >= started + spacing * n_delivered
            {
                self.dovecot.deliver(QUEUE, &probe(n), None, false);
                tracker.arrived(probe_subject(n), Instant::now());
                numbers.next();
                n_delivered += 1;
            }
            if tracker.n_pending() == 0 {
                if numbers.peek().is_none() {
                    return Ok(tracker.latencies);
                }
            } else {
                tracker.check(|| self.serve.log())?;
            }
            std::thread::sleep(POLL);
        }
    }
}
