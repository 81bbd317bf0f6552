//! `interactions export` and `decisions export`: CSV (RFC 4180, UTF-8, no
//! BOM, header row) or one JSON array, rows in id order, read a page at a
//! time so that memory stays flat however long the log is.

use std::io::Write;

use anyhow::Context;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use mailscribe_store::{DecisionRow, EntryRow, Store};
use serde::Serialize;

const PAGE: i64 = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    Csv,
    Json,
}

/// One row of `interactions export`. The first ten columns are the
/// contract; new columns are only ever appended.
#[derive(Serialize)]
struct InteractionRecord {
    entry_no: i64,
    date: String,
    time: String,
    direction: String,
    initiated_by: String,
    salesperson_code: String,
    contact_no: String,
    contact_company_no: Option<String>,
    subject: String,
    message_id: Option<String>,
    template_code: String,
    cost: String,
    duration_minutes: i64,
    canceled: bool,
    opportunity_no: Option<String>,
    date_fallback: bool,
    mailbox_name: String,
    run_id: Option<i64>,
    interaction_group: Option<String>,
    campaign_no: Option<String>,
    bc_entry_no: Option<i64>,
}

impl InteractionRecord {
    fn new(row: EntryRow, tz: Tz) -> InteractionRecord {
        let local = row.occurred_at.with_timezone(&tz);
        InteractionRecord {
            entry_no: row.entry_no,
            date: local.format("%Y-%m-%d").to_string(),
            time: local.format("%H:%M:%S").to_string(),
            direction: row.direction,
            initiated_by: row.initiated_by,
            salesperson_code: row.salesperson_code,
            contact_no: row.contact_no,
            contact_company_no: row.contact_company_no,
            subject: row.subject,
            message_id: row.message_id,
            template_code: row.template_code,
            cost: row.cost.to_string(),
            duration_minutes: row.duration_minutes,
            canceled: row.canceled,
            opportunity_no: row.opportunity_no,
            date_fallback: row.date_fallback,
            mailbox_name: row.mailbox_name,
            run_id: row.run_id,
            interaction_group: row.interaction_group,
            campaign_no: row.campaign_no,
            bc_entry_no: row.bc_entry_no,
        }
    }
}

/// One row of `decisions export`; the first six columns are the contract.
#[derive(Serialize)]
struct DecisionRecord {
    message_id: Option<String>,
    sha256: String,
    outcome: String,
    reason: String,
    entries: i64,
    error: Option<String>,
    decided_at: String,
    sender: Option<String>,
    subject: Option<String>,
    ambiguous: bool,
    attempts: i64,
    mailbox: String,
    uid_validity: i64,
    uid: i64,
    disposition: Option<String>,
    date_fallback: bool,
    mailbox_name: String,
    run_id: Option<i64>,
}

fn local_time(at: DateTime<Utc>, tz: Tz) -> String {
    at.with_timezone(&tz)
        .format("%Y-%m-%dT%H:%M:%S%:z")
        .to_string()
}

impl DecisionRecord {
    fn new(row: DecisionRow, tz: Tz) -> DecisionRecord {
        DecisionRecord {
            message_id: row.message_id,
            sha256: row.sha256,
            outcome: row.outcome,
            reason: row.reason,
            entries: row.entries,
            error: row.error,
            decided_at: local_time(row.decided_at, tz),
            sender: row.sender,
            subject: row.subject,
            ambiguous: row.ambiguous,
            attempts: row.attempts,
            mailbox: row.mailbox,
            uid_validity: row.uid_validity,
            uid: row.uid,
            disposition: row.disposition,
            date_fallback: row.date_fallback,
            mailbox_name: row.mailbox_name,
            run_id: row.run_id,
        }
    }
}

/// Writes records either as CSV or as one JSON array, streaming.
struct RecordWriter<W: Write> {
    format: Format,
    csv: Option<csv::Writer<W>>,
    json: Option<W>,
    first: bool,
}

impl<W: Write> RecordWriter<W> {
    fn new(format: Format, out: W) -> RecordWriter<W> {
        match format {
            Format::Csv => RecordWriter {
                format,
                // RFC 4180 ends records with CRLF.
                csv: Some(
                    csv::WriterBuilder::new()
                        .terminator(csv::Terminator::CRLF)
                        .from_writer(out),
                ),
                json: None,
                first: true,
            },
            Format::Json => RecordWriter {
                format,
                csv: None,
                json: Some(out),
                first: true,
            },
        }
    }

    fn write<T: Serialize>(&mut self, record: &T) -> anyhow::Result<()> {
        match (self.format, &mut self.csv, &mut self.json) {
            (Format::Csv, Some(csv), _) => csv.serialize(record)?,
            (Format::Json, _, Some(out)) => {
                out.write_all(if self.first { b"[\n" } else { b",\n" })?;
                serde_json::to_writer(&mut *out, record)?;
            }
            _ => unreachable!("the writer matches its format"),
        }
        self.first = false;
        Ok(())
    }

    /// `header` is written for an empty CSV export, so that even no rows
    /// gives a file with the columns.
    fn finish(mut self, header: &[&str]) -> anyhow::Result<()> {
        match (self.format, self.csv.take(), self.json.take()) {
            (Format::Csv, Some(mut csv), _) => {
                if self.first {
                    csv.write_record(header)?;
                }
                csv.flush()?;
            }
            (Format::Json, _, Some(mut out)) => {
                out.write_all(if self.first { b"[]\n" } else { b"\n]\n" })?;
                out.flush()?;
            }
            _ => unreachable!("the writer matches its format"),
        }
        Ok(())
    }
}

const INTERACTION_COLUMNS: &[&str] = &[
    "entry_no",
    "date",
    "time",
    "direction",
    "initiated_by",
    "salesperson_code",
    "contact_no",
    "contact_company_no",
    "subject",
    "message_id",
    "template_code",
    "cost",
    "duration_minutes",
    "canceled",
    "opportunity_no",
    "date_fallback",
    "mailbox_name",
    "run_id",
    "interaction_group",
    "campaign_no",
    "bc_entry_no",
];

const DECISION_COLUMNS: &[&str] = &[
    "message_id",
    "sha256",
    "outcome",
    "reason",
    "entries",
    "error",
    "decided_at",
    "sender",
    "subject",
    "ambiguous",
    "attempts",
    "mailbox",
    "uid_validity",
    "uid",
    "disposition",
    "date_fallback",
    "mailbox_name",
    "run_id",
];

const AUDIT_COLUMNS: &[&str] = &[
    "id",
    "at",
    "actor",
    "client_address",
    "event",
    "target",
    "detail",
];

/// One row of `audit export`.
#[derive(Serialize)]
struct AuditRecord {
    id: i64,
    at: String,
    actor: String,
    client_address: Option<String>,
    event: String,
    target: Option<String>,
    detail: Option<String>,
}

/// `audit export`: every event, oldest first; `at` in the configured time zone.
pub(crate) async fn audit(
    store: &Store,
    format: Format,
    output: Option<&std::path::Path>,
) -> anyhow::Result<u64> {
    let tz = store.settings().await?.time_zone;
    let mut writer = RecordWriter::new(format, open_output(output)?);
    let written = write_pages(
        &mut writer,
        async |after| store.audit_after(after, PAGE).await,
        |row: &mailscribe_store::AuditRow| row.id,
        |row| AuditRecord {
            id: row.id,
            at: local_time(row.at, tz),
            actor: row.event.actor,
            client_address: row.event.client_address,
            event: row.event.event,
            target: row.event.target,
            detail: row.event.detail,
        },
    )
    .await?;
    writer.finish(AUDIT_COLUMNS)?;
    Ok(written)
}

fn open_output(output: Option<&std::path::Path>) -> anyhow::Result<Box<dyn Write>> {
    Ok(match output {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path)
                .with_context(|| format!("cannot create {}", path.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    })
}

pub(crate) async fn interactions(
    store: &Store,
    format: Format,
    output: Option<&std::path::Path>,
) -> anyhow::Result<u64> {
    let tz = store.settings().await?.time_zone;
    let mut writer = RecordWriter::new(format, open_output(output)?);
    let written = write_pages(
        &mut writer,
        async |after| store.entries_after(after, PAGE).await,
        |row: &EntryRow| row.entry_no,
        |row| InteractionRecord::new(row, tz),
    )
    .await?;
    writer.finish(INTERACTION_COLUMNS)?;
    Ok(written)
}

pub(crate) async fn decisions(
    store: &Store,
    format: Format,
    output: Option<&std::path::Path>,
) -> anyhow::Result<u64> {
    let tz = store.settings().await?.time_zone;
    let mut writer = RecordWriter::new(format, open_output(output)?);
    let written = write_pages(
        &mut writer,
        async |after| store.decisions_after(after, PAGE).await,
        |row: &DecisionRow| row.id,
        |row| DecisionRecord::new(row, tz),
    )
    .await?;
    writer.finish(DECISION_COLUMNS)?;
    Ok(written)
}

/// Writes every row, a page at a time in id order (`fetch` gives the rows
/// after an id), so that memory stays flat whatever the table's size.
async fn write_pages<Row, Record: Serialize>(
    writer: &mut RecordWriter<impl Write>,
    fetch: impl AsyncFn(i64) -> Result<Vec<Row>, mailscribe_store::StoreError>,
    id: impl Fn(&Row) -> i64,
    record: impl Fn(Row) -> Record,
) -> anyhow::Result<u64> {
    let (mut after, mut written) = (0, 0);
    loop {
        let page = fetch(after).await?;
        let Some(last) = page.last() else { break };
        after = id(last);
        for row in page {
            writer.write(&record(row))?;
            written += 1;
        }
    }
    Ok(written)
}
