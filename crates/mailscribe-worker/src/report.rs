//! A run's summary as data: what `run --once` prints, and what an instance
//! answers a "run now" request with (through the database, as JSON).

use std::collections::BTreeMap;

use mailscribe_core::Outcome;
use serde::{Deserialize, Serialize};

use crate::RunSummary;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureReport {
    pub uid: u32,
    pub reason: String,
    pub error: String,
    pub attempts: u32,
    pub quarantined: bool,
}

/// The fields of `run --once --format json`, in that order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SummaryReport {
    pub run_id: i64,
    pub seen: u64,
    pub logged: u64,
    pub duplicate: u64,
    pub entries: u64,
    pub not_logged: u64,
    pub not_logged_by_reason: BTreeMap<String, u64>,
    pub failed: u64,
    pub failures: Vec<FailureReport>,
    pub resumed: u64,
    pub vanished: u64,
    pub stopped_early: bool,
    /// Logged or duplicate copies the storage folder refused: they stay in
    /// the queue and only their move is tried again.
    #[serde(default)]
    pub moves_failed: u64,
    /// IMAP batches fetched and the transactions that committed them
    /// (several batches commit together while the database is busy).
    #[serde(default)]
    pub batches: u64,
    #[serde(default)]
    pub commits: u64,
    /// The mailbox's name; only in the JSON of `run --once --all`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mailbox: Option<String>,
}

impl SummaryReport {
    pub fn new(summary: &RunSummary) -> SummaryReport {
        let counts = &summary.counts;
        SummaryReport {
            run_id: summary.run_id,
            seen: counts.seen,
            logged: counts.logged,
            duplicate: counts.duplicate,
            entries: counts.entries,
            not_logged: counts.not_logged,
            not_logged_by_reason: counts
                .by_reason
                .iter()
                .filter(|(reason, _)| {
                    reason
                        .parse::<mailscribe_core::Reason>()
                        .is_ok_and(|r| r.outcome() == Outcome::NotLogged)
                })
                .map(|(reason, n)| (reason.clone(), *n))
                .collect(),
            failed: counts.failed,
            failures: summary
                .failed
                .iter()
                .map(|f| FailureReport {
                    uid: f.uid,
                    reason: f.reason.as_str().to_owned(),
                    error: f.error.clone(),
                    attempts: f.attempts,
                    quarantined: f.quarantined,
                })
                .collect(),
            resumed: summary.resumed,
            vanished: summary.vanished,
            stopped_early: summary.stopped_early,
            moves_failed: summary.moves_failed,
            batches: summary.batches,
            commits: summary.commits,
            mailbox: None,
        }
    }

    /// The text `run --once` prints.
    pub fn to_text(&self, max_attempts: u32) -> String {
        let mut out = format!(
            "run {}: seen {}, logged {} ({} entries), duplicate {}, not logged {}, failed {}\n",
            self.run_id,
            self.seen,
            self.logged,
            self.entries,
            self.duplicate,
            self.not_logged,
            self.failed
        );
        if !self.not_logged_by_reason.is_empty() {
            let parts: Vec<String> = self
                .not_logged_by_reason
                .iter()
                .map(|(r, n)| format!("{r} {n}"))
                .collect();
            out.push_str(&format!("not logged by reason: {}\n", parts.join(", ")));
        }
        for failure in &self.failures {
            let fate = if failure.quarantined {
                "quarantined".to_owned()
            } else {
                format!(
                    "attempt {} of {max_attempts}, left in the queue",
                    failure.attempts
                )
            };
            out.push_str(&format!(
                "failed: uid {} {} ({fate}): {}\n",
                failure.uid, failure.reason, failure.error
            ));
        }
        if self.moves_failed > 0 {
            out.push_str(&format!(
                "{} logged messages could not be moved to the storage folder; they stay in the queue and the move is retried\n",
                self.moves_failed
            ));
        }
        if self.resumed > 0 {
            out.push_str(&format!(
                "finished moving {} messages decided by an interrupted run\n",
                self.resumed
            ));
        }
        if self.stopped_early {
            out.push_str("stopped early on request; the rest waits for the next run\n");
        }
        out
    }
}
