//! The worker's Prometheus metrics: names and labels in one place.
//!
//! Values go to the process's metrics recorder, which `serve` installs; in
//! `run --once` and in tests there is none and recording costs nothing.
//! Counters are per process: several instances each count their own runs.
//! Labels name a mailbox by its name, never by its key (which holds the
//! mailbox user's address).

use chrono::{DateTime, Utc};
use mailscribe_core::Outcome;
use mailscribe_mail::MailError;
use mailscribe_store::{CommittedCopy, DecidedCopy};

use crate::WorkerError;

pub const MESSAGES: &str = "mailscribe_messages_total";
pub const ENTRIES: &str = "mailscribe_entries_total";
pub const QUEUE_MESSAGES: &str = "mailscribe_queue_messages";
pub const QUEUE_OLDEST: &str = "mailscribe_queue_oldest_seconds";
pub const RUN_DURATION: &str = "mailscribe_run_duration_seconds";
pub const LAST_SUCCESS: &str = "mailscribe_last_success_timestamp_seconds";
pub const ERRORS: &str = "mailscribe_errors_total";
pub const CERTIFICATE_EXPIRY: &str = "mailscribe_certificate_expiry_timestamp_seconds";
pub const SWEEP_INTERVAL: &str = "mailscribe_sweep_interval_seconds";

/// Every metric name the worker records.
pub const NAMES: &[&str] = &[
    MESSAGES,
    ENTRIES,
    QUEUE_MESSAGES,
    QUEUE_OLDEST,
    RUN_DURATION,
    LAST_SUCCESS,
    ERRORS,
    CERTIFICATE_EXPIRY,
    SWEEP_INTERVAL,
];

/// Bucket bounds of the run duration, in seconds.
pub const RUN_DURATION_BUCKETS: &[f64] = &[
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
];

/// HELP texts for the recorder.
pub fn describe() {
    metrics::describe_counter!(
        MESSAGES,
        "Copies decided, by mailbox, outcome and reason code"
    );
    metrics::describe_counter!(
        ENTRIES,
        "Interaction log entries written, by mailbox and direction"
    );
    metrics::describe_gauge!(
        QUEUE_MESSAGES,
        "Messages in the queue folder at the latest listing"
    );
    metrics::describe_gauge!(
        QUEUE_OLDEST,
        "Age of the oldest message in the queue at the latest listing"
    );
    metrics::describe_histogram!(
        RUN_DURATION,
        metrics::Unit::Seconds,
        "Duration of runs, successful or not"
    );
    metrics::describe_gauge!(
        LAST_SUCCESS,
        "When a run of the mailbox last completed (Unix time)"
    );
    metrics::describe_counter!(
        ERRORS,
        "Errors by class: connection, tls, auth, store, message"
    );
    metrics::describe_gauge!(
        CERTIFICATE_EXPIRY,
        "Expiry of the mail server's certificate at the latest TLS connection (Unix time)"
    );
    metrics::describe_gauge!(
        SWEEP_INTERVAL,
        metrics::Unit::Seconds,
        "The mailbox's sweep interval, for alerts on missed runs"
    );
}

pub(crate) fn committed(mailbox: &str, copies: &[DecidedCopy], results: &[CommittedCopy]) {
    for (copy, result) in copies.iter().zip(results) {
        let outcome = result.reason.outcome();
        metrics::counter!(MESSAGES, "mailbox" => mailbox.to_owned(), "outcome" => outcome.as_str(), "reason" => result.reason.as_str())
            .increment(1);
        if outcome == Outcome::Failed {
            error(mailbox, "message");
        }
        if outcome == Outcome::Logged {
            for entry in copy
                .entries
                .iter()
                .take(usize::try_from(result.entries).unwrap_or(0))
            {
                metrics::counter!(ENTRIES, "mailbox" => mailbox.to_owned(), "direction" => entry.direction.as_str()).increment(1);
            }
        }
    }
}

pub(crate) fn listed(
    mailbox: &str,
    count: usize,
    oldest: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) {
    metrics::gauge!(QUEUE_MESSAGES, "mailbox" => mailbox.to_owned()).set(count as f64);
    let age = oldest.map_or(0.0, |at| {
        (now - at).num_milliseconds().max(0) as f64 / 1000.0
    });
    metrics::gauge!(QUEUE_OLDEST, "mailbox" => mailbox.to_owned()).set(age);
}

pub(crate) fn run_finished(
    mailbox: &str,
    took: std::time::Duration,
    result: Result<(), &WorkerError>,
    now: DateTime<Utc>,
) {
    metrics::histogram!(RUN_DURATION, "mailbox" => mailbox.to_owned()).record(took.as_secs_f64());
    match result {
        Ok(()) => metrics::gauge!(LAST_SUCCESS, "mailbox" => mailbox.to_owned())
            .set(now.timestamp() as f64),
        Err(err) => {
            if let Some(class) = error_class(err) {
                error(mailbox, class);
            }
        }
    }
}

/// The instance works this mailbox, sweeping at `interval`.
pub(crate) fn working(mailbox: &str, interval: std::time::Duration) {
    metrics::gauge!(SWEEP_INTERVAL, "mailbox" => mailbox.to_owned()).set(interval.as_secs_f64());
}

/// The instance gave the mailbox up: its queue gauges no longer speak for
/// the queue (another instance's do), so they read empty here.
pub(crate) fn released(mailbox: &str) {
    metrics::gauge!(QUEUE_MESSAGES, "mailbox" => mailbox.to_owned()).set(0.0);
    metrics::gauge!(QUEUE_OLDEST, "mailbox" => mailbox.to_owned()).set(0.0);
}

pub(crate) fn certificate(mailbox: &str, not_after: DateTime<Utc>) {
    metrics::gauge!(CERTIFICATE_EXPIRY, "mailbox" => mailbox.to_owned())
        .set(not_after.timestamp() as f64);
}

fn error(mailbox: &str, class: &'static str) {
    metrics::counter!(ERRORS, "mailbox" => mailbox.to_owned(), "class" => class).increment(1);
}

/// The class of a run-ending error; `None` for a lease held or lost,
/// which is coordination, not failure.
fn error_class(err: &WorkerError) -> Option<&'static str> {
    Some(match err {
        WorkerError::LeaseHeld { .. } | WorkerError::LeaseLost => return None,
        WorkerError::Store(_) => "store",
        WorkerError::Mail(
            MailError::Tls { .. }
            | MailError::CaFile { .. }
            | MailError::NoStartTls
            | MailError::PlaintextRefused { .. },
        ) => "tls",
        WorkerError::Mail(MailError::AuthFailed(_) | MailError::Token { .. }) => "auth",
        WorkerError::Mail(_)
        | WorkerError::DeletionIgnored { .. }
        | WorkerError::FolderUnusable { .. } => "connection",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_classes() {
        let mail = |e| WorkerError::Mail(e);
        let cases: Vec<(WorkerError, Option<&str>)> = vec![
            (mail(MailError::AuthFailed("no".into())), Some("auth")),
            (
                mail(MailError::Token {
                    hint: "h".into(),
                    detail: "d".into(),
                }),
                Some("auth"),
            ),
            (
                mail(MailError::Tls {
                    host: "h".into(),
                    problem: mailscribe_mail::TlsProblem::Expired,
                }),
                Some("tls"),
            ),
            (
                mail(MailError::ConnectionLost("FETCH".into())),
                Some("connection"),
            ),
            (mail(MailError::Timeout("FETCH".into())), Some("connection")),
            (
                WorkerError::Store(mailscribe_store::StoreError::Corrupt("x".into())),
                Some("store"),
            ),
            (WorkerError::LeaseLost, None),
        ];
        for (err, expected) in cases {
            assert_eq!(error_class(&err), expected, "{err}");
        }
    }
}
