//! One run of the queue, and the setup checks: the only place where the
//! IMAP connector and the store meet.
//!
//! Invariant (PRODUCT.md section 3): a batch's decisions and entries are
//! committed before any message of that batch is moved or deleted in the
//! mailbox, and a copy whose ledger row is final is never decided again.
//! Together these make a crash at any point harmless: the next run finds
//! the decided copies still in the queue and only finishes moving them.

pub mod check;
mod failpoint;
pub mod lease;
pub mod metrics;
mod report;
mod run;
mod stored;
pub mod supervisor;

pub use check::{CheckLine, CheckStatus, run_checks};
pub use lease::{HolderId, LeaseTimings, mailbox_lease_name};
pub use report::{FailureReport, SummaryReport};
pub use run::{FailedMessage, PhaseTimes, RunOptions, RunSummary, run_once, run_under_lease};
pub use stored::fetch_stored_message;

use mailscribe_mail::MailError;
use mailscribe_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error(
        "another run holds the mailbox ({holder}, until {expires_at}); try again when it has finished"
    )]
    LeaseHeld {
        holder: String,
        expires_at: chrono::DateTime<chrono::Utc>,
    },
    /// The lease was taken over while this run worked (it was paused, or
    /// cut off from the database): it stopped, committing nothing more.
    #[error(
        "the mailbox lease was taken over by another instance; this run stopped without committing more"
    )]
    LeaseLost,
    #[error(
        "the server kept {count} messages Mailscribe deleted from the queue (it ignored \\Deleted or the expunge); \
         give the mailbox user the right to delete messages there (IMAP ACL rights t and e)"
    )]
    DeletionIgnored { count: usize },
    /// A folder copies are moved to is gone or refuses every message: the
    /// mailbox's problem, so the run ends (the copies stay in the queue).
    #[error(
        "the folder {folder} cannot take messages: {detail}; check it exists and the mailbox user may add messages to it"
    )]
    FolderUnusable { folder: String, detail: String },
    #[error(transparent)]
    Mail(#[from] MailError),
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for WorkerError {
    fn from(err: StoreError) -> WorkerError {
        match err {
            StoreError::LeaseLost(_) => WorkerError::LeaseLost,
            other => WorkerError::Store(other),
        }
    }
}

impl WorkerError {
    /// A lost connection to the mail server or the database: worth trying
    /// again after a pause, and never a message's fault.
    pub fn is_transient(&self) -> bool {
        match self {
            WorkerError::Mail(mail) => mail.is_connection(),
            WorkerError::Store(store) => store.is_unavailable(),
            _ => false,
        }
    }
}
