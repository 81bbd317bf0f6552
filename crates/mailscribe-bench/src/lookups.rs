//! Address lookups in a directory of a million addresses.

use std::time::Instant;

use mailscribe_core::{Contact, ContactKind, ContactNo, EmailAddress};
use mailscribe_store::Store;

use crate::measure::percentile;
use crate::messages::Lcg;

const DIRECTORY: u32 = 1_000_000;
const IMPORT_CHUNK: u32 = 50_000;
const LOOKUPS: usize = 20_000;

fn address(i: u32) -> EmailAddress {
    EmailAddress::parse(&format!("person{i}@company{}.example", i % 5000)).expect("valid address")
}

async fn bench(store: &Store, label: &str) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut first = 1;
    while first <= DIRECTORY {
        let last = (first + IMPORT_CHUNK - 1).min(DIRECTORY);
        let chunk: Vec<Contact> = (first..=last)
            .map(|i| Contact {
                no: ContactNo::parse(&i.to_string()).expect("number"),
                name: format!("Person {i}"),
                kind: ContactKind::Person,
                company_name: None,
                addresses: vec![address(i)],
                privacy_blocked: None,
            })
            .collect();
        store.import_contacts(&chunk).await?;
        first = last + 1;
    }
    let import_seconds = started.elapsed().as_secs_f64();

    let mut rng = Lcg(7);
    let mut timings = Vec::with_capacity(LOOKUPS);
    for n in 0..LOOKUPS {
        // Half the lookups hit, half miss (most recipients are strangers).
        let i = 1 + rng.next(u64::from(DIRECTORY)) as u32;
        let wanted = if n % 2 == 0 {
            address(i)
        } else {
            EmailAddress::parse(&format!("nobody{i}@nowhere.example"))?
        };
        let started = Instant::now();
        let view = store
            .lookup_addresses(std::slice::from_ref(&wanted))
            .await?;
        timings.push(started.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(view.contact(&wanted).is_some(), n % 2 == 0);
    }
    timings.sort_by(|a, b| a.total_cmp(b));
    let batch: Vec<EmailAddress> = (0..500)
        .map(|_| address(1 + rng.next(u64::from(DIRECTORY)) as u32))
        .collect();
    let started = Instant::now();
    store.lookup_addresses(&batch).await?;
    let batch_ms = started.elapsed().as_secs_f64() * 1000.0;
    println!(
        "   {label}: import {DIRECTORY} contacts in {import_seconds:.1} s; {LOOKUPS} single-address lookups: p50 {:.3} ms, p95 {:.3} ms, p99 {:.3} ms (goal < 1 ms), max {:.3} ms; one batch of 500 addresses {batch_ms:.1} ms",
        percentile(&timings, 0.50),
        percentile(&timings, 0.95),
        percentile(&timings, 0.99),
        timings.last().copied().unwrap_or(0.0),
    );
    Ok(())
}

pub(crate) async fn lookups() -> anyhow::Result<()> {
    println!("== address lookups in a directory of {DIRECTORY} addresses");
    crate::measure::on_sqlite_and_postgres(async |store, backend| bench(store, backend).await).await
}
