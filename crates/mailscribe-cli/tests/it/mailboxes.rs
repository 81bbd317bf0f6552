//! Several mailboxes, `serve` with IDLE and backoff, run requests, and
//! several instances sharing mailboxes through leases with fencing tokens,
//! all against the real binary, Dovecot, SQLite and PostgreSQL.
//!
//! Lease timings and backoff are shortened through the test-only variables
//! (`MAILSCRIBE_LEASE_*_MS`, `MAILSCRIBE_BACKOFF_*_MS`) so that nothing is
//! waited out; every wait polls a condition with a deadline.

use std::process::{Child, Stdio};
use std::time::Duration;

use mailscribe_core::MailboxName;
use mailscribe_testkit::{QUEUE, STORAGE, wait_until};

use crate::harness::{Backend, Env, decisions, entry_keys, numbered_message};

const QUEUE_EU: &str = "Public Folders/Email Logging/Queue EU";
const STORAGE_EU: &str = "Public Folders/Email Logging/Storage EU";

/// Lease and backoff timings short enough for a test.
const FAST: &[(&str, &str)] = &[
    ("MAILSCRIBE_LEASE_TTL_MS", "1500"),
    ("MAILSCRIBE_LEASE_HEARTBEAT_MS", "200"),
    ("MAILSCRIBE_LEASE_SCAN_MS", "200"),
    ("MAILSCRIBE_BACKOFF_BASE_MS", "100"),
    ("MAILSCRIBE_BACKOFF_CAP_MS", "400"),
];

/// A `mailscribe serve` child, killed when dropped; its log in `log`.
struct Serve {
    child: Child,
    log: std::path::PathBuf,
}

impl Serve {
    fn start(env: &Env, name: &str, extra: &[(&str, &str)]) -> Serve {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = env.dir.path().join(format!("serve-{name}.log"));
        let mut command = env.command();
        command
            .env("RUST_LOG", "info,mailscribe_worker=debug")
            .envs(FAST.iter().copied())
            .envs(extra.iter().copied())
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("serve log"));
        Serve {
            child: command.spawn().expect("start serve"),
            log,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn signal(&self, signal: &str) {
        let status = std::process::Command::new("kill")
            .arg(signal)
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success(), "kill {signal}");
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The state letter of a process (`R`, `S`, `T` stopped, `Z` zombie).
fn process_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 1..].trim_start().chars().next()
}

/// Entries expected from numbered messages `range`: one per message that
/// is not every fifth (those are between strangers).
fn expected_entries(range: std::ops::RangeInclusive<u32>) -> usize {
    range.filter(|n| n % 5 != 0).count()
}

/// `mailbox list` as rows of columns, header first.
fn mailbox_list(env: &Env) -> Vec<Vec<String>> {
    env.ok(&["mailbox", "list"])
        .lines()
        .map(|l| l.split('\t').map(str::to_owned).collect())
        .collect()
}

fn configure_eu(env: &Env) {
    env.dovecot.create_folder(QUEUE_EU);
    env.dovecot.create_folder(STORAGE_EU);
    env.configure(&[
        "--mailbox",
        "eu",
        "--queue",
        QUEUE_EU,
        "--storage",
        STORAGE_EU,
    ]);
}

#[tokio::test]
async fn a_mailbox_can_have_its_own_interval() {
    let env = Env::new(Backend::Sqlite).await;
    env.configure(&["--mailbox", "eu", "--interval", "5m"]);
    assert!(
        env.ok(&["mailbox", "show", "--mailbox", "eu"])
            .contains("interval = 300")
    );
    env.configure(&["--mailbox", "eu", "--interval", "global"]);
    assert!(
        env.ok(&["mailbox", "show", "--mailbox", "eu"])
            .contains("interval = global")
    );
    let bad = env.run(&[
        "mailbox",
        "configure",
        "--mailbox",
        "eu",
        "--host",
        "h",
        "--user",
        "u",
        "--password-env",
        "IMAP_PASSWORD",
        "--queue",
        "Q",
        "--storage",
        "S",
        "--interval",
        "soon",
    ]);
    assert_eq!(
        bad.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
}

#[tokio::test]
async fn two_mailboxes_log_overlapping_mail_once() {
    let env = Env::new(Backend::Sqlite).await;
    env.set_up(4);
    configure_eu(&env);
    // The same messages 6..=10 arrive in both queues.
    for n in 1..=10 {
        env.deliver(&numbered_message(n));
    }
    for n in 6..=15 {
        env.dovecot
            .deliver(QUEUE_EU, &numbered_message(n), None, false);
    }
    // Not enabled yet: --all skips it, and naming it says so.
    assert_eq!(
        env.run(&["run", "--once", "--mailbox", "eu"]).status.code(),
        Some(3)
    );
    assert_eq!(
        env.run(&["run", "--once", "--mailbox", "nope"])
            .status
            .code(),
        Some(3)
    );
    assert_eq!(
        env.run(&["run", "--once", "--mailbox", "all"])
            .status
            .code(),
        Some(2),
        "a reserved name"
    );
    env.ok(&["enable", "--mailbox", "EU", "--accept-data-statement"]);
    assert!(
        env.ok(&["mailbox", "show", "--mailbox", "eu"])
            .contains("interval = global")
    );

    let list = mailbox_list(&env);
    assert_eq!(
        list[0].join("\t"),
        "name\tenabled\thost\tqueue\tlast_run_at\tstatus\tlast_error\tnext_attempt_at"
    );
    let names: Vec<(&str, &str, &str)> = list[1..]
        .iter()
        .map(|r| (r[0].as_str(), r[1].as_str(), r[3].as_str()))
        .collect();
    assert_eq!(
        names,
        [("default", "true", QUEUE), ("eu", "true", QUEUE_EU)]
    );

    let json = env.ok(&["run", "--once", "--all", "--format", "json"]);
    let summaries: Vec<serde_json::Value> = serde_json::from_str(&json).expect("a JSON array");
    let per_mailbox: Vec<(&str, u64, u64)> = summaries
        .iter()
        .map(|s| {
            (
                s["mailbox"].as_str().unwrap(),
                s["seen"].as_u64().unwrap(),
                s["duplicate"].as_u64().unwrap(),
            )
        })
        .collect();
    // 6..=9 were logged through default first; 10 is between strangers.
    assert_eq!(per_mailbox, [("default", 10, 0), ("eu", 10, 4)]);
    assert_eq!(env.dovecot.count(QUEUE) + env.dovecot.count(QUEUE_EU), 0);

    let keys = entry_keys(&env);
    assert_eq!(
        keys.len(),
        expected_entries(1..=15),
        "each message's entries once: {keys:?}"
    );
    let rows = decisions(&env);
    let duplicates: Vec<&str> = rows
        .iter()
        .filter(|d| d["outcome"] == "duplicate")
        .map(|d| d["mailbox_name"].as_str().unwrap())
        .collect();
    assert_eq!(duplicates, ["eu"; 4]);

    // The exports end with the new column.
    let csv = env.ok(&["interactions", "export", "--format", "csv"]);
    assert!(
        csv.lines().next().unwrap().ends_with(
            ",date_fallback,mailbox_name,run_id,interaction_group,campaign_no,bc_entry_no"
        ),
        "{csv}"
    );
    assert!(csv.lines().skip(1).any(|l| l.contains(",eu,")));
    let csv = env.ok(&["decisions", "export", "--format", "csv"]);
    assert!(
        csv.lines()
            .next()
            .unwrap()
            .ends_with(",disposition,date_fallback,mailbox_name,run_id"),
        "{csv}"
    );
    // Each entry names the run that wrote it: the run of its mailbox.
    let entries: Vec<serde_json::Value> =
        serde_json::from_str(&env.ok(&["interactions", "export", "--format", "json"])).unwrap();
    let runs: Vec<i64> = summaries
        .iter()
        .map(|s| s["run_id"].as_i64().unwrap())
        .collect();
    assert!(
        entries.iter().all(|e| match e["mailbox_name"].as_str() {
            Some("default") => e["run_id"].as_i64() == Some(runs[0]),
            _ => e["run_id"].as_i64() == Some(runs[1]),
        }),
        "{entries:?}"
    );

    // Without a flag, run --once is today's: the default mailbox, today's text.
    env.deliver(&numbered_message(21));
    let text = env.ok(&["run", "--once"]);
    assert!(
        text.starts_with("run ") && text.contains("seen 1, logged 1"),
        "{text}"
    );
    assert_eq!(env.dovecot.count(QUEUE_EU), 0);
    // The status columns are filled in by runs of serve; a mailbox can be
    // cleared once disabled, and its entries stay.
    env.ok(&["disable", "--mailbox", "eu"]);
    env.ok(&["mailbox", "clear", "--mailbox", "eu"]);
    assert_eq!(mailbox_list(&env).len(), 2);
    assert_eq!(entry_keys(&env).len(), expected_entries(1..=15) + 1);
}

#[tokio::test]
async fn a_killed_run_that_is_not_reaped_is_taken_over_at_once() {
    let env = Env::new(Backend::Sqlite).await;
    env.set_up(100);
    for n in 1..=6 {
        env.deliver(&numbered_message(n));
    }
    // The run stops itself just before its commit, holding the lease; then
    // it is killed and, its parent not waiting for it, stays a zombie.
    let mut run = env
        .command()
        .env("MAILSCRIBE_FAILPOINT", "before_commit:stop")
        .args(["run", "--once"])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = run.id();
    wait_until(
        "the run to stop before its commit",
        Duration::from_secs(30),
        || process_state(pid) == Some('T'),
    );
    std::process::Command::new("kill")
        .arg("-KILL")
        .arg(pid.to_string())
        .status()
        .unwrap();
    wait_until(
        "the killed run to be a zombie",
        Duration::from_secs(10),
        || process_state(pid) == Some('Z'),
    );
    // The next run does not wait for the five-minute lease: it takes over.
    let text = env.ok(&["run", "--once"]);
    assert!(text.contains("seen 6"), "{text}");
    assert_eq!(entry_keys(&env).len(), expected_entries(1..=6));
    let _ = run.wait();
}

#[tokio::test]
async fn serve_logs_new_mail_through_idle_and_answers_run_now() {
    let env = Env::new(Backend::Sqlite).await;
    env.set_up(100);
    // The sweep is an hour away: only IDLE can bring a new message in.
    env.ok(&["settings", "set", "interval", "3600"]);
    let serve = Serve::start(&env, "a", &[]);
    wait_until("the first sweep", Duration::from_secs(30), || {
        mailbox_list(&env).get(1).is_some_and(|r| r[5] == "ok")
    });
    env.deliver(&numbered_message(1));
    wait_until(
        "the message logged through IDLE",
        Duration::from_secs(20),
        || entry_keys(&env).len() == 1,
    );

    // run --once asks the serve that holds the mailbox, and prints its run.
    env.deliver(&numbered_message(2));
    let text = env.ok(&["run", "--once", "--wait", "30"]);
    assert!(text.starts_with("run "), "{text}");
    wait_until("both logged", Duration::from_secs(20), || {
        entry_keys(&env).len() == 2
    });

    // A second serve on the same SQLite file refuses to start, naming the first.
    let second = env.run(&["serve", "--listen", "127.0.0.1:0"]);
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("pid {}", serve.child.id())),
        "{stderr}"
    );
    let list = mailbox_list(&env);
    assert!(!list[1][4].is_empty(), "last_run_at is shown: {list:?}");
    assert!(!list[1][7].is_empty(), "next_attempt_at is shown: {list:?}");
    assert!(serve.log().contains("run completed"), "{}", serve.log());
}

#[tokio::test]
async fn a_broken_mailbox_backs_off_and_never_delays_another() {
    let env = Env::new(Backend::Sqlite).await;
    env.set_up(100);
    env.ok(&["settings", "set", "interval", "3600"]);
    let proxy = mailscribe_testkit::TcpProxy::start(env.dovecot.imaps_port);
    configure_eu(&env);
    env.configure(&[
        "--mailbox",
        "eu",
        "--queue",
        QUEUE_EU,
        "--storage",
        STORAGE_EU,
        "--port",
        &proxy.port.to_string(),
    ]);
    env.ok(&["enable", "--mailbox", "eu", "--accept-data-statement"]);
    proxy.cut();
    env.dovecot
        .deliver(QUEUE_EU, &numbered_message(3), None, false);
    let _serve = Serve::start(&env, "a", &[]);
    let store = mailscribe_store::Store::open(&env.db.url().parse().unwrap())
        .await
        .unwrap();
    let eu = MailboxName::parse("eu").unwrap();
    // The healthy mailbox works while the broken one fails again and again.
    wait_until(
        "the default mailbox's first run",
        Duration::from_secs(30),
        || mailbox_list(&env)[1][5] == "ok",
    );
    env.deliver(&numbered_message(1));
    wait_until(
        "mail in the healthy mailbox logged",
        Duration::from_secs(20),
        || entry_keys(&env).len() == 1,
    );
    let mut failures = 0;
    for _ in 0..400 {
        failures = store
            .mailbox(&eu)
            .await
            .unwrap()
            .unwrap()
            .status
            .consecutive_failures;
        if failures >= 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        failures >= 4,
        "the broken mailbox is retried, with backoff: {failures} failures"
    );
    let row = mailbox_list(&env)
        .into_iter()
        .find(|r| r[0] == "eu")
        .unwrap();
    assert_eq!(row[5], "retrying");
    assert!(
        !row[6].is_empty() && !row[7].is_empty(),
        "last error and next attempt: {row:?}"
    );
    // The server comes back: the next attempt succeeds and the count resets.
    proxy.restore();
    wait_until(
        "the broken mailbox recovers",
        Duration::from_secs(30),
        || entry_keys(&env).len() == 2,
    );
    // Its status is recorded once the run has finished its moves.
    wait_until("the recovered status", Duration::from_secs(30), || {
        mailbox_list(&env)
            .iter()
            .any(|r| r[0] == "eu" && r[5] == "ok")
    });
    let status = store.mailbox(&eu).await.unwrap().unwrap().status;
    assert_eq!(
        (
            status.status.as_str(),
            status.consecutive_failures,
            status.last_error
        ),
        ("ok", 0, None)
    );
    store.close().await;
}

#[tokio::test]
async fn a_paused_instance_never_commits_after_another_took_over() {
    let env = Env::new(Backend::Postgres).await;
    env.set_up(100);
    for n in 1..=20 {
        env.deliver(&numbered_message(n));
    }
    // Instance A takes the mailbox and is frozen just before its commit,
    // as a long GC pause or a stopped VM would freeze it.
    let a = Serve::start(
        &env,
        "a",
        &[
            ("MAILSCRIBE_INSTANCE_ID", "host-a"),
            ("MAILSCRIBE_FAILPOINT", "before_commit:stop"),
        ],
    );
    wait_until(
        "instance A to freeze before its commit",
        Duration::from_secs(30),
        || process_state(a.child.id()) == Some('T'),
    );
    // Instance B, on "another host", takes over once A's lease expires.
    let _b = Serve::start(&env, "b", &[("MAILSCRIBE_INSTANCE_ID", "host-b")]);
    wait_until(
        "instance B to log the queue",
        Duration::from_secs(30),
        || env.dovecot.count(QUEUE) == 0 && entry_keys(&env).len() == expected_entries(1..=20),
    );
    // A wakes up and tries to commit what it had decided: the fence refuses.
    a.signal("-CONT");
    wait_until("A to find its lease lost", Duration::from_secs(30), || {
        a.log().contains("the lease was lost")
    });
    assert_eq!(entry_keys(&env).len(), expected_entries(1..=20));
    assert_eq!(
        decisions(&env).len(),
        20,
        "one ledger row per copy, none from the stale holder"
    );
    assert_eq!(
        env.dovecot.count(STORAGE),
        16,
        "the logged copies are stored once"
    );
}

#[tokio::test]
async fn a_refused_storage_move_keeps_that_message_and_logs_the_rest() {
    const QUARANTINE: &str = "Public Folders/Email Logging/Quarantine";
    let env = Env::new(Backend::Sqlite).await;
    env.dovecot.create_folder(QUARANTINE);
    env.import_directory();
    env.configure(&["--quarantine-folder", QUARANTINE]);
    env.ok(&["enable", "--accept-data-statement"]);
    for n in 1..=6 {
        env.deliver(&numbered_message(n));
    }
    // The server refuses to store UID 2 (as a quota would): the others go on.
    let refuse = |args: &[&str]| {
        let output = env
            .command()
            .env("MAILSCRIBE_FAILPOINT_REFUSE_MOVE", "2")
            .args(args)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    };
    let text = refuse(&["run", "--once"]);
    assert!(
        text.contains("1 logged messages could not be moved to the storage folder"),
        "{text}"
    );
    assert_eq!(
        (env.dovecot.count(QUEUE), env.dovecot.count(STORAGE)),
        (1, 4)
    );
    assert_eq!(
        entry_keys(&env).len(),
        5,
        "the refused copy is logged all the same"
    );
    let store = mailscribe_store::Store::open(&env.db.url().parse().unwrap())
        .await
        .unwrap();
    let row_of_uid_2 = || async {
        store
            .decisions_after(0, 100)
            .await
            .unwrap()
            .into_iter()
            .find(|d| d.uid == 2)
            .unwrap()
    };
    let row = row_of_uid_2().await;
    assert_eq!(
        (
            row.outcome.as_str(),
            row.disposition.as_deref(),
            row.move_attempts
        ),
        ("logged", Some("kept"), 1)
    );
    assert!(
        row.move_error
            .as_deref()
            .is_some_and(|e| e.contains("refused")),
        "{row:?}"
    );
    // Later runs retry only the move; after the maximum attempts (3) the
    // copy goes to quarantine, its decision and entries unchanged.
    refuse(&["run", "--once"]);
    refuse(&["run", "--once"]);
    assert_eq!(row_of_uid_2().await.move_attempts, 3);
    let json = env.ok(&["run", "--once", "--format", "json"]);
    let summary: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        (summary["seen"].as_u64(), summary["resumed"].as_u64()),
        (Some(0), Some(1)),
        "{json}"
    );
    assert_eq!(
        (env.dovecot.count(QUEUE), env.dovecot.count(QUARANTINE)),
        (0, 1)
    );
    assert_eq!(
        row_of_uid_2().await.disposition.as_deref(),
        Some("quarantined")
    );
    assert_eq!(entry_keys(&env).len(), 5);
    assert_eq!(
        decisions(&env).len(),
        6,
        "no ledger row was added by the retries"
    );
    store.close().await;
}

/// Three instances on one PostgreSQL database share three mailboxes with
/// overlapping mail; one is killed and another frozen past its lease in the
/// middle of the work. The log must end exactly as one clean run leaves it.
#[tokio::test]
async fn three_instances_survive_a_kill_and_a_pause_and_log_exactly_once() {
    const QUEUE_US: &str = "Public Folders/Email Logging/Queue US";
    const STORAGE_US: &str = "Public Folders/Email Logging/Storage US";
    let env = Env::new(Backend::Postgres).await;
    env.set_up(10);
    configure_eu(&env);
    env.dovecot.create_folder(QUEUE_US);
    env.dovecot.create_folder(STORAGE_US);
    // Small batches: many commits, so that the faults land between them.
    env.configure(&[
        "--mailbox",
        "us",
        "--queue",
        QUEUE_US,
        "--storage",
        STORAGE_US,
        "--batch-size",
        "10",
    ]);
    env.configure(&[
        "--mailbox",
        "eu",
        "--queue",
        QUEUE_EU,
        "--storage",
        STORAGE_EU,
        "--batch-size",
        "10",
    ]);
    env.ok(&["enable", "--mailbox", "eu", "--accept-data-statement"]);
    env.ok(&["enable", "--mailbox", "us", "--accept-data-statement"]);
    let spans = [
        (QUEUE, 1..=700),
        (QUEUE_EU, 500..=1300),
        (QUEUE_US, 1100..=1800),
    ];
    let mut copies = 0;
    for (queue, range) in spans.clone() {
        for n in range {
            env.dovecot
                .deliver(queue, &numbered_message(n), None, false);
            copies += 1;
        }
    }
    let store = mailscribe_store::Store::open(&env.db.url().parse().unwrap())
        .await
        .unwrap();
    let instances: Vec<Serve> = ["a", "b", "c"]
        .iter()
        .map(|id| {
            Serve::start(
                &env,
                id,
                &[("MAILSCRIBE_INSTANCE_ID", &format!("host-{id}"))],
            )
        })
        .collect();
    let holders = || async {
        store
            .leases("mailbox:")
            .await
            .unwrap()
            .into_iter()
            .map(|l| l.holder.split('|').next().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    // Work spreads: three mailboxes, three instances, one each.
    let mut spread = Vec::new();
    for _ in 0..600 {
        spread = holders().await;
        spread.sort();
        if spread == ["host-a", "host-b", "host-c"] {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        spread,
        ["host-a", "host-b", "host-c"],
        "each instance holds one mailbox"
    );
    // Mid-work: kill one instance, freeze another for longer than a lease.
    wait_until("some entries", Duration::from_secs(60), || {
        !entry_keys(&env).is_empty()
    });
    std::process::Command::new("kill")
        .arg("-KILL")
        .arg(instances[0].child.id().to_string())
        .status()
        .unwrap();
    instances[1].signal("-STOP");
    let left: usize = spans
        .iter()
        .map(|(queue, _)| env.dovecot.count(queue))
        .sum();
    assert!(left > 0, "the faults must land in the middle of the work");
    tokio::time::sleep(Duration::from_millis(3000)).await;
    instances[1].signal("-CONT");
    let expected = expected_entries(1..=1800);
    wait_until(
        "every queue empty and every entry written",
        Duration::from_secs(240),
        || {
            spans.iter().all(|(queue, _)| env.dovecot.count(queue) == 0)
                && entry_keys(&env).len() >= expected
        },
    );
    let keys = entry_keys(&env);
    let mut unique = keys.clone();
    unique.dedup();
    assert_eq!(
        (keys.len(), unique.len()),
        (expected, expected),
        "every entry once"
    );
    let logged_ids: std::collections::BTreeSet<String> = keys.iter().map(|k| k.0.clone()).collect();
    let expected_ids: std::collections::BTreeSet<String> = (1..=1800)
        .filter(|n| n % 5 != 0)
        .map(|n| format!("<n{n}@test.example>"))
        .collect();
    assert_eq!(logged_ids, expected_ids);
    assert_eq!(decisions(&env).len(), copies, "one ledger row per copy");
    store.close().await;
}

#[tokio::test]
async fn json_logs_carry_the_run_and_no_address() {
    let env = Env::new(Backend::Sqlite).await;
    env.set_up(100);
    for n in 1..=4 {
        env.deliver(&numbered_message(n));
    }
    let output = env
        .command()
        .args(["run", "--once", "--log-format", "json", "-vv"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stderr = String::from_utf8(output.stderr).unwrap();
    let lines: Vec<serde_json::Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    for line in &lines {
        for key in ["ts", "level", "msg", "target"] {
            assert!(line.get(key).is_some(), "{key} missing: {line}");
        }
        if ["info", "warn", "error"].contains(&line["level"].as_str().unwrap()) {
            assert!(
                !line.to_string().contains('@'),
                "an address at info or above: {line}"
            );
        }
    }
    let listed = lines
        .iter()
        .find(|l| l["msg"] == "queue listed")
        .expect("the listing is logged");
    assert_eq!(listed["mailbox"], "default");
    assert!(listed["run_id"].as_i64().is_some(), "{listed}");
    let decided: Vec<&serde_json::Value> = lines.iter().filter(|l| l["msg"] == "decided").collect();
    assert_eq!(decided.len(), 4);
    assert!(decided.iter().all(|l| l["uid"].as_u64().is_some()
        && l["message_key"].as_str().is_some()
        && l["run_id"] == listed["run_id"]));
    // The environment variable does the same.
    let output = env
        .command()
        .env("MAILSCRIBE_LOG_FORMAT", "json")
        .args(["run", "--once", "--mailbox", "nope"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3));
    assert!(
        stderr.contains("there is no mailbox named nope"),
        "{stderr}"
    );
}

/// A plain HTTP/1.1 GET: (status, body).
fn http_get(port: u16, path: &str, extra_headers: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra_headers}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// The value of one sample line, `name{labels} value`.
fn sample(metrics: &str, name_and_labels: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(name_and_labels)?.trim().parse().ok())
}

#[tokio::test]
async fn metrics_match_the_runs_and_readiness_is_reported() {
    let env = Env::new(Backend::Sqlite).await;
    env.set_up(100);
    for n in 1..=10 {
        env.deliver(&numbered_message(n));
    }
    let free_port = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    let (main_port, metrics_port) = (free_port(), free_port());
    let log = env.dir.path().join("serve-metrics.log");
    let mut child = env
        .command()
        .envs(FAST.iter().copied())
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{main_port}"),
            "--metrics-listen",
            &format!("127.0.0.1:{metrics_port}"),
        ])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    wait_until("the run", Duration::from_secs(30), || {
        mailbox_list(&env).get(1).is_some_and(|r| r[5] == "ok")
    });
    assert_eq!(entry_keys(&env).len(), expected_entries(1..=10));

    let (status, text) = http_get(metrics_port, "/metrics", "");
    assert_eq!(status, 200, "{text}");
    // The counters equal what the runs recorded.
    let store = mailscribe_store::Store::open(&env.db.url().parse().unwrap())
        .await
        .unwrap();
    let runs = store.recent_runs(100).await.unwrap();
    let total = |f: fn(&mailscribe_store::RunCounts) -> u64| {
        runs.iter().map(|r| f(&r.counts)).sum::<u64>() as f64
    };
    let logged = r#"mailscribe_messages_total{mailbox="default",outcome="logged",reason="logged"}"#;
    let unknown = r#"mailscribe_messages_total{mailbox="default",outcome="not_logged",reason="unknown_sender"}"#;
    assert_eq!(sample(&text, logged), Some(total(|c| c.logged)), "{text}");
    assert_eq!(
        sample(&text, unknown),
        Some(total(|c| c.not_logged)),
        "{text}"
    );
    let inbound = sample(
        &text,
        r#"mailscribe_entries_total{mailbox="default",direction="inbound"}"#,
    )
    .unwrap_or(0.0);
    let outbound = sample(
        &text,
        r#"mailscribe_entries_total{mailbox="default",direction="outbound"}"#,
    )
    .unwrap_or(0.0);
    assert_eq!(inbound + outbound, total(|c| c.entries));
    assert_eq!(
        sample(&text, r#"mailscribe_queue_messages{mailbox="default"}"#),
        Some(0.0),
        "the latest listing: {text}"
    );
    assert!(
        sample(
            &text,
            r#"mailscribe_last_success_timestamp_seconds{mailbox="default"}"#
        )
        .is_some_and(|t| t > 1.7e9)
    );
    assert!(
        sample(
            &text,
            r#"mailscribe_certificate_expiry_timestamp_seconds{mailbox="default"}"#
        )
        .is_some_and(|t| t > 1.7e9)
    );
    assert!(
        sample(
            &text,
            r#"mailscribe_run_duration_seconds_count{mailbox="default"}"#
        )
        .is_some_and(|n| n >= 1.0)
    );
    assert!(sample(&text, "process_resident_memory_bytes").is_some_and(|b| b > 1e6));
    assert!(sample(&text, "process_open_fds").is_some_and(|n| n > 3.0));
    assert!(!text.contains('@'), "no address in any label");
    // promtool (Prometheus's own checker) accepts the exposition.
    let mut promtool = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus) is installed by scripts/test.sh");
    std::io::Write::write_all(promtool.stdin.as_mut().unwrap(), text.as_bytes()).unwrap();
    let checked = promtool.wait_with_output().unwrap();
    assert!(
        checked.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );

    // The main listener serves metrics to loopback clients that did not come
    // through a proxy, and counts its own requests by route template.
    let (status, _) = http_get(main_port, "/metrics", "X-Forwarded-For: 203.0.113.9\r\n");
    assert_eq!(status, 403);
    http_get(main_port, "/interactions/123", "");
    let (status, text) = http_get(main_port, "/metrics", "");
    assert_eq!(status, 200);
    assert!(
        sample(
            &text,
            r#"mailscribe_http_requests_total{route="/interactions/{entry_no}",status="303"}"#
        )
        .is_some(),
        "{text}"
    );
    assert!(
        !text.contains("/interactions/123"),
        "raw paths never become labels"
    );

    let (status, body) = http_get(metrics_port, "/readyz", "");
    assert_eq!(
        (status, body.contains(r#""ready":true"#)),
        (200, true),
        "{body}"
    );
    assert_eq!(http_get(main_port, "/healthz", "").0, 200);
    // Disabling logging is not a reason to be unready.
    env.ok(&["disable"]);
    assert_eq!(http_get(main_port, "/readyz", "").0, 200);
    let _ = child.kill();
    let _ = child.wait();
    store.close().await;
}

/// A plain HTTP/1.1 POST with a bearer token: (status, body).
fn http_post(port: u16, path: &str, token: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (
        status,
        response
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default(),
    )
}

#[tokio::test]
async fn run_now_through_the_api_is_answered_by_the_instance_holding_the_mailbox() {
    let env = Env::new(Backend::Sqlite).await;
    env.set_up(100);
    // The sweep is an hour away and IDLE is off: only the request runs it.
    env.ok(&["settings", "set", "interval", "3600"]);
    let output = env
        .command()
        .env("PW", "a-long-password-1")
        .args([
            "user",
            "add",
            "root",
            "--role",
            "admin",
            "--password-env",
            "PW",
        ])
        .output()
        .unwrap();
    assert!(output.status.success());
    let token = env
        .ok(&["token", "create", "--user", "root"])
        .trim()
        .to_owned();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let log = env.dir.path().join("serve-run-now.log");
    let mut serve = env
        .command()
        .envs(FAST.iter().copied())
        .env("MAILSCRIBE_IGNORE_CAPABILITIES", "IDLE")
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    wait_until("the first sweep", Duration::from_secs(30), || {
        mailbox_list(&env).get(1).is_some_and(|r| r[5] == "ok")
    });
    for n in 1..=3 {
        env.deliver(&numbered_message(n));
    }
    let (status, body) = http_post(port, "/api/v1/mailboxes/default/runs?wait=30", &token);
    assert_eq!(status, 200, "{body}");
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (
            answer["finished"].as_bool(),
            answer["summary"]["seen"].as_u64()
        ),
        (Some(true), Some(3)),
        "{answer}"
    );
    assert_eq!(entry_keys(&env).len(), 3);
    // A mailbox that does not log, or does not exist, is refused.
    env.ok(&["disable"]);
    assert_eq!(
        http_post(port, "/api/v1/mailboxes/default/runs?wait=0", &token).0,
        409
    );
    assert_eq!(
        http_post(port, "/api/v1/mailboxes/nope/runs?wait=0", &token).0,
        404
    );
    let _ = serve.kill();
    let _ = serve.wait();
}
