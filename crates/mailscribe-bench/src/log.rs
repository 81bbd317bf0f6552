//! The interaction log with 1,000,000 entries: the server-side time of the
//! first page, unfiltered and filtered by contact, salesperson and subject
//! text, on SQLite and PostgreSQL.

use std::time::Instant;

use chrono::{Duration, TimeZone, Utc};
use mailscribe_core::{
    ContactNo, ContactRef, Direction, InteractionTemplate, PlannedEntry, Reason, SalespersonCode,
};
use mailscribe_store::{DecidedCopy, EntryFilter, Store};

use crate::measure::percentile;
use crate::messages::Lcg;

const ENTRIES: u32 = 1_000_000;
pub(crate) const CONTACTS: u64 = 10_000;
const SALESPEOPLE: u64 = 50;
const BATCH: u32 = 1000;
const QUERIES: usize = 50;
const PAGE: i64 = 50;

/// Topic words, two per subject: a word matches just under 1% of the
/// entries (1 - (219/220)^2, about 0.9%), as the issue asks of the search terms.
const TOPICS: u64 = 220;

/// Every topic has three digits, so that no word is a prefix of another.
pub(crate) fn topic(n: u64) -> String {
    format!("topic{:03}", n % TOPICS)
}

/// Fills the log; returns the seconds it took and the largest share of
/// entries any one topic word matches.
pub(crate) async fn fill(store: &Store, entries: u32) -> anyhow::Result<(f64, f64)> {
    let mut matches = vec![0u64; TOPICS as usize];
    let started = Instant::now();
    let mut rng = Lcg(99);
    let template = InteractionTemplate {
        code: "EMAIL".into(),
        description: "Email".into(),
        cost: Default::default(),
        duration_minutes: 0,
        interaction_group: None,
        campaign_no: None,
    };
    let epoch = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
    let mut first = 0;
    while first < entries {
        let copies: Vec<DecidedCopy> = (first..first + BATCH)
            .map(|i| {
                let at = epoch + Duration::seconds(i64::from(i) * 60);
                let contact = 1 + rng.next(CONTACTS);
                DecidedCopy {
                    mailbox: "bench".into(),
                    mailbox_name: "default".into(),
                    uid_validity: 1,
                    uid: i + 1,
                    run_id: 1,
                    message_id: Some(format!("<log-{i}@bench.example>")),
                    message_key: format!("mid:log-{i}@bench.example"),
                    sha256: String::new(),
                    sender: None,
                    subject: {
                        let (a, b) = (rng.next(TOPICS), rng.next(TOPICS));
                        matches[a as usize] += 1;
                        if b != a {
                            matches[b as usize] += 1;
                        }
                        format!("Re: {} about {} order {i}", topic(a), topic(b))
                    },
                    reason: Reason::Logged,
                    ambiguous: false,
                    error: None,
                    entries: vec![PlannedEntry {
                        direction: if i % 2 == 0 {
                            Direction::Inbound
                        } else {
                            Direction::Outbound
                        },
                        salesperson: SalespersonCode::parse(&format!(
                            "SP{}",
                            1 + rng.next(SALESPEOPLE)
                        ))
                        .expect("code"),
                        contact: ContactRef {
                            no: ContactNo::parse(&contact.to_string()).expect("number"),
                            company_no: ContactNo::parse(&format!("CO-{}", contact % 1000)).ok(),
                        },
                    }],
                    occurred_at: at,
                    sent_at: Some(at),
                    received_at: at,
                    date_fallback: false,
                    size: 0,
                    raw: None,
                }
            })
            .collect();
        store
            .commit_batch(&copies, &template, Utc::now(), None)
            .await?;
        first += BATCH;
    }
    let widest = matches.iter().copied().max().unwrap_or(0) as f64 / f64::from(entries);
    Ok((started.elapsed().as_secs_f64(), widest))
}

async fn time_first_pages(
    store: &Store,
    label: &str,
    make: impl Fn(&mut Lcg) -> EntryFilter,
) -> anyhow::Result<()> {
    let mut rng = Lcg(5);
    let mut timings = Vec::with_capacity(QUERIES);
    let mut rows = 0;
    for _ in 0..QUERIES {
        let filter = make(&mut rng);
        let started = Instant::now();
        rows += store.entries_page(&filter, None, PAGE).await?.len();
        timings.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    timings.sort_by(|a, b| a.total_cmp(b));
    println!(
        "     {label:<26} p50 {:>7.2} ms  p95 {:>7.2} ms  max {:>7.2} ms  ({} rows per page on average)",
        percentile(&timings, 0.5),
        percentile(&timings, 0.95),
        timings.last().copied().unwrap_or(0.0),
        rows / QUERIES
    );
    Ok(())
}

async fn bench(store: &Store, backend: &str) -> anyhow::Result<()> {
    let (seconds, widest) = fill(store, ENTRIES).await?;
    println!(
        "   {backend}: {ENTRIES} entries written in {seconds:.0} s; first page ({PAGE} rows, newest first), {QUERIES} queries each:"
    );
    println!(
        "     (each search word matches at most {:.2}% of the entries)",
        widest * 100.0
    );
    time_first_pages(store, "unfiltered", |_| EntryFilter::default()).await?;
    time_first_pages(store, "by contact", |rng| EntryFilter {
        contact_no: Some((1 + rng.next(CONTACTS)).to_string()),
        ..Default::default()
    })
    .await?;
    time_first_pages(store, "by salesperson", |rng| EntryFilter {
        salesperson_code: Some(format!("SP{}", 1 + rng.next(SALESPEOPLE))),
        ..Default::default()
    })
    .await?;
    time_first_pages(store, "by subject word (<=1%)", |rng| EntryFilter {
        text: Some(topic(rng.next(TOPICS))),
        ..Default::default()
    })
    .await?;
    Ok(())
}

pub(crate) async fn log() -> anyhow::Result<()> {
    println!(
        "== interaction log: {ENTRIES} entries, {CONTACTS} contacts, {SALESPEOPLE} salespeople (goal: p95 under 50 ms)"
    );
    crate::measure::on_sqlite_and_postgres(async |store, backend| bench(store, backend).await).await
}
