//! One run of the queue, and the setup checks: the only place where the
//! IMAP connector and the store meet.
//!
//! Invariant (PRODUCT.md section 3): a batch's decisions and entries are
//! committed before any message of that batch is moved or deleted in the
//! mailbox, and a copy whose ledger row is final is never decided again.
//! Together these make a crash at any point harmless: the next run finds
//! the decided copies still in the queue and only finishes moving them.

pub mod check;
mod stored;
mod failpoint;
mod lease;
mod run;

pub use check::{CheckLine, CheckStatus, run_checks};
pub use lease::lease_holder_id;
pub use stored::fetch_stored_message;
pub use run::{FailedMessage, PhaseTimes, RunOptions, RunSummary, run_once};

use mailscribe_mail::MailError;
use mailscribe_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("another run holds the mailbox ({holder}, until {expires_at}); try again when it has finished")]
    LeaseHeld { holder: String, expires_at: chrono::DateTime<chrono::Utc> },
    #[error(
        "the server kept {count} messages Mailscribe deleted from the queue (it ignored \\Deleted or the expunge); \
         give the mailbox user the right to delete messages there (IMAP ACL rights t and e)"
    )]
    DeletionIgnored { count: usize },
    #[error(transparent)]
    Mail(#[from] MailError),
    #[error(transparent)]
    Store(#[from] StoreError),
}
