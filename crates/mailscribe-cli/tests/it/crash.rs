//! Crash safety: a run killed at any point, then another run, leaves
//! exactly the entries of a clean run, and no message is lost.

use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

use mailscribe_testkit::{QUEUE, STORAGE, wait_until};

use crate::harness::{
    Backend, Env, assert_stored_once_or_twice, decisions, entry_keys, numbered_message,
};

const MESSAGES: u32 = 24;

/// What a clean run of `numbered_message(1..=n)` logs.
fn expected_entries(n: u32) -> Vec<(String, String, String, String)> {
    let mut keys: Vec<_> = (1..=n)
        .filter(|i| i % 5 != 0)
        .map(|i| {
            let (contact, direction) = if i % 2 == 0 {
                ("1", "inbound")
            } else {
                ("2", "outbound")
            };
            (
                format!("<n{i}@test.example>"),
                "SP1".to_owned(),
                contact.to_owned(),
                direction.to_owned(),
            )
        })
        .collect();
    keys.sort();
    keys
}

async fn crash_then_recover(failpoint: &str, disable_move: bool, grouped: bool) {
    let env = Env::new(Backend::Sqlite).await;
    env.set_up(4);
    for n in 1..=MESSAGES {
        env.deliver(&numbered_message(n));
    }
    let mut crashing = env.command();
    crashing.env("MAILSCRIBE_FAILPOINT", failpoint);
    if grouped {
        // Every commit slow: the first batch commits alone, and the IMAP
        // side fetches the other five into one group meanwhile.
        crashing.env("MAILSCRIBE_FAILPOINT_SLOW_COMMIT_MS", "500");
    } else {
        // One batch a commit, so that "the n-th commit" is the same batch
        // whatever the timing.
        crashing.env("MAILSCRIBE_FAILPOINT_GROUP_MAX_COPIES", "4");
    }
    crashing.args(["run", "--once"]);
    if disable_move {
        crashing.env("MAILSCRIBE_IGNORE_CAPABILITIES", "MOVE");
    }
    let output = crashing.output().unwrap();
    assert_eq!(
        output.status.signal(),
        Some(6),
        "{failpoint}: the run should abort: {output:?}"
    );

    if grouped {
        // Two commits, the second of a group: more than two batches decided.
        assert!(
            decisions(&env).len() > 8,
            "{failpoint}: the second commit held a group"
        );
    }

    let mut recovering = env.command();
    recovering.args(["run", "--once"]);
    if disable_move {
        recovering.env("MAILSCRIBE_IGNORE_CAPABILITIES", "MOVE");
    }
    let output = recovering.output().unwrap();
    assert!(
        output.status.success(),
        "{failpoint}: {}",
        String::from_utf8_lossy(&output.stderr)
    );

    assert_eq!(entry_keys(&env), expected_entries(MESSAGES), "{failpoint}");
    assert_eq!(
        decisions(&env).len(),
        MESSAGES as usize,
        "{failpoint}: one ledger row per copy"
    );
    assert_eq!(
        env.dovecot.count(QUEUE),
        0,
        "{failpoint}: every message was decided and moved"
    );
    let logged = (1..=MESSAGES).filter(|i| i % 5 != 0).count();
    let stored = env.dovecot.count(STORAGE);
    if disable_move {
        // A crash between COPY and EXPUNGE leaves the group being moved
        // copied but still in the queue; it is copied again. PRODUCT.md
        // section 3 tolerates the second copy in storage (never a second
        // entry).
        assert_stored_once_or_twice(&env, MESSAGES, failpoint);
    } else {
        assert_eq!(
            stored, logged,
            "{failpoint}: MOVE is atomic, so exactly one copy each"
        );
    }
}

#[tokio::test]
async fn crash_before_the_commit() {
    crash_then_recover("before_commit:2", false, false).await;
}

#[tokio::test]
async fn crash_after_the_commit_before_the_move() {
    crash_then_recover("after_commit:2", false, false).await;
}

#[tokio::test]
async fn crash_after_the_move_before_recording_it() {
    crash_then_recover("after_move:2", false, false).await;
}

#[tokio::test]
async fn crash_after_a_whole_batch() {
    crash_then_recover("after_dispositions:3", false, false).await;
}

#[tokio::test]
async fn crash_after_the_commit_with_the_copy_expunge_fallback() {
    crash_then_recover("after_commit:3", true, false).await;
}

/// A crash right after a group of five batches committed, before any of
/// it moved, with the COPY + EXPUNGE fallback.
#[tokio::test]
async fn crash_after_a_group_commit() {
    crash_then_recover("after_commit:2", true, true).await;
}

/// A real `kill -9` at an arbitrary moment in the middle of a long run.
#[tokio::test(flavor = "multi_thread")]
async fn kill_9_in_the_middle_of_a_run() {
    const MANY: u32 = 300;
    let env = Env::new(Backend::Sqlite).await;
    env.set_up(10);
    for n in 1..=MANY {
        env.deliver(&numbered_message(n));
    }
    let store = mailscribe_store::Store::open(&env.db.url().parse().unwrap())
        .await
        .unwrap();
    let mut child = env.command().args(["run", "--once"]).spawn().unwrap();
    let runtime = tokio::runtime::Handle::current();
    wait_until(
        "the run to decide some messages",
        Duration::from_secs(60),
        || {
            let decided =
                tokio::task::block_in_place(|| runtime.block_on(store.decisions_after(0, 1000)))
                    .map(|rows| rows.len())
                    .unwrap_or(0);
            decided >= 40
        },
    );
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.signal(), Some(9), "the run was killed, not finished");
    store.close().await;

    env.ok(&["run", "--once"]);
    assert_eq!(entry_keys(&env), expected_entries(MANY));
    assert_eq!(decisions(&env).len(), MANY as usize);
    assert_eq!(env.dovecot.count(QUEUE), 0);
}
