//! Crash points for the crash-safety tests.
//!
//! `MAILSCRIBE_FAILPOINT=<name>[:<n>]` aborts the process (no unwinding,
//! no cleanup: as close to `kill -9` as a process can do to itself) the
//! n-th time (default: first) the named point is passed. Unset, this costs
//! one environment lookup per run.
//!
//! `MAILSCRIBE_FAILPOINT=<name>:stop` instead stops the whole process with
//! SIGSTOP there, as a long GC pause or a frozen VM would: the fencing test
//! lets another instance take the lease over, then continues it.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

/// The point, and the hit that triggers it (0: stop at the first hit).
static TARGET: OnceLock<Option<(String, u32)>> = OnceLock::new();
static HITS: AtomicU32 = AtomicU32::new(0);

pub(crate) fn hit(name: &str) {
    let target = TARGET.get_or_init(|| {
        let value = std::env::var("MAILSCRIBE_FAILPOINT").ok()?;
        let (point, count) = match value.split_once(':') {
            Some((point, "stop")) => (point.to_owned(), 0),
            Some((point, count)) => (point.to_owned(), count.parse().unwrap_or(1)),
            None => (value, 1),
        };
        Some((point, count))
    });
    if let Some((point, count)) = target {
        if point == name && *count == 0 && HITS.fetch_add(1, Ordering::SeqCst) == 0 {
            eprintln!("failpoint {name} reached: stopping the process (SIGSTOP)");
            let _ = std::process::Command::new("kill")
                .arg("-STOP")
                .arg(std::process::id().to_string())
                .status();
            return;
        }
        if point == name && *count > 0 && HITS.fetch_add(1, Ordering::SeqCst) + 1 >= *count {
            eprintln!("failpoint {name} reached: aborting");
            std::process::abort();
        }
    }
}

/// Test-only: `MAILSCRIBE_FAILPOINT_REFUSE_MOVE=UID[,UID...]` makes the
/// worker treat a move of those queue UIDs as refused by the server, as a
/// quota or a message the server cannot copy would: the one boundary the
/// tests cannot make Dovecot produce on demand for one chosen message.
pub(crate) fn refused_moves() -> Vec<u32> {
    static REFUSED: OnceLock<Vec<u32>> = OnceLock::new();
    REFUSED
        .get_or_init(|| {
            std::env::var("MAILSCRIBE_FAILPOINT_REFUSE_MOVE")
                .map(|list| {
                    list.split(',')
                        .filter_map(|uid| uid.trim().parse().ok())
                        .collect()
                })
                .unwrap_or_default()
        })
        .clone()
}

/// `MAILSCRIBE_FAILPOINT_SLOW_COMMIT_MS=<n>`: every commit first waits n
/// milliseconds, as a slow database would, so that a test sees the IMAP
/// side group batches while the database is busy.
pub(crate) fn slow_commit() -> Option<std::time::Duration> {
    static DELAY: OnceLock<Option<std::time::Duration>> = OnceLock::new();
    *DELAY.get_or_init(|| {
        std::env::var("MAILSCRIBE_FAILPOINT_SLOW_COMMIT_MS")
            .ok()
            .and_then(|ms| ms.trim().parse().ok())
            .map(std::time::Duration::from_millis)
    })
}

/// `MAILSCRIBE_FAILPOINT_GROUP_MAX_COPIES=<n>`: groups hold at most n
/// copies (the batch size turns grouping off), so that a crash test's
/// "the n-th commit" means the same batch whatever the timing.
pub(crate) fn group_max_copies() -> Option<usize> {
    static CAP: OnceLock<Option<usize>> = OnceLock::new();
    *CAP.get_or_init(|| {
        std::env::var("MAILSCRIBE_FAILPOINT_GROUP_MAX_COPIES")
            .ok()
            .and_then(|n| n.trim().parse().ok())
    })
}
