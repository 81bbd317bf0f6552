//! `multi-instance`: three `serve` processes working six mailboxes on one
//! PostgreSQL database, against one process working one mailbox, on the
//! same messages.
//!
//! The messages (the queue benchmark's mix, with each second copy made
//! byte for byte the same as the first, see `with_exact_copies`) are in
//! the queues before any `serve` starts: all in one queue for the single
//! instance, dealt round robin over six queues of one Dovecot for the three
//! instances (which stand for three hosts through `MAILSCRIBE_INSTANCE_ID`). The time runs
//! from spawning the processes until the ledger holds a row for every
//! message and every queue is empty (a run moves or expunges its copies
//! only after committing them, so the entry count is final then). The
//! entry counts of the two set-ups must be equal.

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::bail;
use mailscribe_testkit::{Dovecot, QUEUE, STORAGE, TestDatabase};
use sqlx::PgPool;

use crate::install::{MailboxFolders, install};
use crate::messages::{self, Lcg};
use crate::serve_process::ServeProcess;

pub(crate) const DEFAULT_MESSAGES: u32 = 6000;
const POLL: Duration = Duration::from_millis(100);
const GIVE_UP: Duration = Duration::from_secs(900);

struct Outcome {
    seconds: f64,
    entries: i64,
    /// Per instance: how often it took a mailbox and gave one back.
    taken: Vec<(usize, usize)>,
}

fn mailboxes(count: usize) -> Vec<MailboxFolders> {
    (1..=count)
        .map(|i| match i {
            1 => MailboxFolders::default_mailbox(),
            _ => MailboxFolders {
                name: format!("box{i}"),
                queue: format!("{QUEUE} {i}"),
                storage: format!("{STORAGE} {i}"),
            },
        })
        .collect()
}

/// The instances stand for separate hosts, but they all connect from
/// 127.0.0.1, where Dovecot's limit of 10 connections per user and address
/// would count them together (each mailbox holds two: IDLE and its run).
fn raise_connection_limit(dovecot: &Dovecot) -> anyhow::Result<()> {
    let mut conf = std::fs::read_to_string(dovecot.conf())?;
    conf.push_str("mail_max_userip_connections = 100\n");
    std::fs::write(dovecot.conf(), conf)?;
    let status = Command::new("/usr/bin/doveadm")
        .arg("-c")
        .arg(dovecot.conf())
        .arg("reload")
        .status()?;
    if !status.success() {
        bail!("doveadm reload failed");
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while !dovecot.log().contains("reloading configuration") {
        if Instant::now() > deadline {
            bail!("Dovecot did not reload its configuration within 30 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

async fn work(mix: &[Vec<u8>], n_mailboxes: usize, n_instances: usize) -> anyhow::Result<Outcome> {
    let dovecot = Dovecot::start();
    raise_connection_limit(&dovecot)?;
    let mailboxes = mailboxes(n_mailboxes);
    for mailbox in &mailboxes[1..] {
        dovecot.create_folder(&mailbox.queue);
        dovecot.create_folder(&mailbox.storage);
    }
    for (i, raw) in mix.iter().enumerate() {
        dovecot.deliver(&mailboxes[i % n_mailboxes].queue, raw, None, false);
    }
    let database = TestDatabase::postgres().await;
    let dir = tempfile::tempdir()?;
    let env = install(dir.path(), database.url(), &dovecot, &mailboxes, &[])?;
    let pool = PgPool::connect(database.url()).await?;

    let started = Instant::now();
    let mut serves = Vec::new();
    for i in 1..=n_instances {
        let id = format!("host-{i}");
        serves.push(ServeProcess::start(&env, dir.path(), &id, Some(&id))?);
    }
    let total = i64::try_from(mix.len())?;
    loop {
        let decided: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM decisions")
            .fetch_one(&pool)
            .await?;
        if decided >= total && mailboxes.iter().all(|m| dovecot.count(&m.queue) == 0) {
            break;
        }
        if started.elapsed() > GIVE_UP {
            bail!("{decided} of {total} messages decided after {GIVE_UP:?}");
        }
        tokio::time::sleep(POLL).await;
    }
    let seconds = started.elapsed().as_secs_f64();
    let entries: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM interaction_entries")
        .fetch_one(&pool)
        .await?;
    let taken = serves
        .iter()
        .map(|s| {
            (
                s.count_in_log("took the mailbox"),
                s.count_in_log("giving the mailbox to another instance"),
            )
        })
        .collect();
    if std::env::var_os("BENCH_LOG").is_some() {
        for serve in &serves {
            eprint!("{}", serve.log());
        }
    }
    drop(serves);
    pool.close().await;
    Ok(Outcome {
        seconds,
        entries,
        taken,
    })
}

pub(crate) async fn multi_instance(count: u32) -> anyhow::Result<()> {
    let mut rng = Lcg(42);
    let mix = messages::with_exact_copies(
        (1..=count)
            .map(|n| messages::message(n, &mut rng))
            .collect(),
    );
    let bytes: usize = mix.iter().map(Vec::len).sum();
    println!(
        "== multi-instance: {count} messages ({:.1} MB, the queue benchmark's mix with exact second copies), PostgreSQL, \
         production lease timings, Dovecot's mail_max_userip_connections raised to 100; \
         from spawning serve until every message is decided and every queue is empty",
        bytes as f64 / 1e6
    );
    let mut results = Vec::new();
    for (n_mailboxes, n_instances) in [(1, 1), (6, 3)] {
        let outcome = work(&mix, n_mailboxes, n_instances).await?;
        let taken: Vec<String> = outcome
            .taken
            .iter()
            .enumerate()
            .map(|(i, (took, gave))| format!("host-{} took {took}, gave back {gave}", i + 1))
            .collect();
        println!(
            "   {n_instances} instance(s), {n_mailboxes} mailbox(es): {:.2} s = {:.0} msg/s, {} entries ({})",
            outcome.seconds,
            f64::from(count) / outcome.seconds,
            outcome.entries,
            taken.join("; ")
        );
        results.push(outcome);
    }
    if results[0].entries != results[1].entries {
        println!(
            "   MISMATCH: the two set-ups logged different numbers of entries from the same messages"
        );
    }
    println!(
        "   ratio (three instances / one): {:.2} of the time",
        results[1].seconds / results[0].seconds
    );
    Ok(())
}
